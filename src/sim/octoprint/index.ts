/**
 * A faithful OctoPrint server simulator (see README.md): OctoPrint 1.11's REST API with its API
 * key check, its file API on the `local` storage (sanitized names with their display names,
 * SHA-1 hashes, several uploads at once, a rate-limited ingest), the printer behind it on the
 * shared virtual printer, and a control API under /_sim/. Binds 127.0.0.1 only.
 */
import type { IncomingMessage, Server } from "node:http";
import type { AddressInfo } from "node:net";
import { VirtualPrinter, type SimFault, type SimTemperature } from "../printer/index.ts";
import { Pacer } from "../prusalink/pacer.ts";
import { startOnConsecutivePorts } from "../ports.ts";
import { simFiles, simStartPrint, simState, type ControlContext, type SimFileInfo } from "./control.ts";
import type { FilesContext, InflightUpload } from "./files-api.ts";
import { STOCK_EXTENSIONS } from "./names.ts";
import { OctoPrinter, type OctoPrintState } from "./octo-printer.ts";
import { analysisOf } from "./printer-api.ts";
import { createSimServer } from "./server.ts";
import { OctoStorage } from "./tree.ts";

export { OCTOPRINT_STATES, type OctoPrintState } from "./octo-printer.ts";
export type { SimFileInfo } from "./control.ts";

export const DEFAULT_CAPACITY = 16 * 1024 ** 3;
/** OctoPrint's `server.uploads.maxSize` default. */
export const DEFAULT_MAX_UPLOAD = 1024 ** 3;
export const OCTOPRINT_VERSION = "1.11.2";

export interface OctoPrintSimOptions {
  /** 0 or undefined: any free port. */
  port?: number;
  /** The API key OctoPrint accepts (default "octoprint"). */
  apiKey?: string;
  /** The key's user, shown as the owner of uploads and jobs (default "admin"). */
  user?: string;
  /** Upload ingest limit in bytes per second, shared by all uploads at once; undefined = unlimited. */
  rate?: number;
  /** Bytes of the uploads folder's disk (default 16 GiB). */
  capacity?: number;
  /** Longest upload body in bytes (default 1 GiB); a longer one is cut off unanswered. */
  maxUploadSize?: number;
  /** Print file extensions it takes (default stock: gcode, gco, g, gc~; add "bgcode" as the OctoPrint-BGCode plugin does). */
  extensions?: readonly string[];
  name?: string;
  /** ms since the epoch; drives print progress, heaters and timestamps (not the ingest rate). */
  clock?: () => number;
  /** Printer time runs this many times faster than the clock (default 1): a 10-minute print takes 6 s at 100. */
  speed?: number;
  /** Keep uploaded bytes (default true); false keeps sizes and hashes only, for big benchmarks. */
  storeContent?: boolean;
}

export class OctoPrintSim {
  readonly url: string;
  readonly port: number;
  readonly name: string;
  readonly apiKey: string;
  readonly #server: Server;
  readonly #octo: OctoPrinter;
  readonly #control: ControlContext;
  #closed: Promise<void> | undefined;

  private constructor(
    server: Server,
    octo: OctoPrinter,
    control: ControlContext,
    port: number,
    apiKey: string,
  ) {
    this.#server = server;
    this.#octo = octo;
    this.#control = control;
    this.port = port;
    this.name = control.name;
    this.apiKey = apiKey;
    this.url = `http://127.0.0.1:${port}`;
  }

  static async start(options: OctoPrintSimOptions = {}): Promise<OctoPrintSim> {
    const clock = options.clock ?? Date.now;
    const storage = new OctoStorage(options.capacity ?? DEFAULT_CAPACITY, Math.floor(clock() / 1000));
    const printer = new VirtualPrinter({
      storages: [storage.sim],
      clock,
      model: "OctoPrint",
      ...(options.speed === undefined ? {} : { speed: options.speed }),
    });
    const octo = new OctoPrinter(printer, storage);
    const apiKey = options.apiKey ?? "octoprint";
    const user = options.user ?? "admin";
    const inflight = new Set<InflightUpload>();
    // One pacer for the server: uploads at once share its link.
    const pacer = options.rate === undefined ? undefined : new Pacer(options.rate);
    const resets = new WeakMap<IncomingMessage, number | undefined>();
    const files: FilesContext = {
      storage,
      jobs: octo,
      clock,
      storeContent: options.storeContent ?? true,
      extensions: options.extensions ?? STOCK_EXTENSIONS,
      maxUploadSize: options.maxUploadSize ?? DEFAULT_MAX_UPLOAD,
      inflight,
      async afterChunk(req, bytes, total) {
        if (!resets.has(req)) {
          resets.set(req, printer.resetAfterBytes);
          printer.resetAfterBytes = undefined;
        }
        const resetAfter = resets.get(req);
        if (resetAfter !== undefined && total >= resetAfter) req.socket.destroy();
        await printer.uploadGate();
        await pacer?.take(bytes);
      },
      wire: (req) => ({
        origin: `http://${req.headers.host ?? "127.0.0.1"}`,
        storage,
        user,
        analysis: analysisOf,
        history: (file) => octo.history(file),
      }),
    };
    const control: ControlContext = { octo, name: options.name ?? "", version: OCTOPRINT_VERSION, inflight };
    const server = createSimServer({
      files,
      printerApi: { octo, user },
      control,
      apiKey,
      version: OCTOPRINT_VERSION,
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port ?? 0, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    const port = (server.address() as AddressInfo).port;
    if (control.name === "") control.name = `octoprint-${port}`;
    return new OctoPrintSim(server, octo, control, port, apiKey);
  }

  /** Stops listening and drops open connections (a running upload is lost, as on power-off). */
  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      this.#server.close(() => {
        resolve();
      });
      this.#server.closeAllConnections();
      this.#octo.printer.releaseUploads();
    });
    return this.#closed;
  }

  /** The virtual printer behind this face (for code that drives every face alike). */
  get printer(): VirtualPrinter {
    return this.#octo.printer;
  }

  /** OctoPrint's state word now. */
  state(): OctoPrintState {
    return this.#octo.state;
  }

  /** Forces OctoPrint's state word; see OctoPrinter.setState. */
  setState(state: OctoPrintState): void {
    this.#octo.setState(state);
  }

  /**
   * Prints `path` (OctoPrint's path of the file) as someone at the printer would: for `durationS`
   * seconds of printer time, else the G-code's estimate, else 600.
   */
  startPrint(path: string, durationS?: number): void {
    simStartPrint(this.#octo, path, durationS);
  }

  /** The filament runs out: the print halts and OctoPrint shows Paused until resumed. */
  runout(): void {
    this.#octo.printer.runout();
  }

  /** The firmware reports an error: OctoPrint shows Error, a running job ends. */
  fail(message?: string): void {
    this.#octo.printer.fail(message);
  }

  /**
   * The OctoPrint host leaves the network: API connections are reset (the control API still
   * answers); the printer prints on. (A lost serial port is `setState("Offline after error")`.)
   */
  disconnect(): void {
    this.#octo.printer.disconnect();
  }

  /** Back on the network. */
  reconnect(): void {
    this.#octo.printer.reconnect();
  }

  setSpeed(speed: number): void {
    this.#octo.printer.setSpeed(speed);
  }

  temperatures(): SimTemperature[] {
    return this.#octo.printer.temperatures();
  }

  injectFault(fault: SimFault): void {
    this.#octo.printer.injectFault(fault);
  }

  clearFaults(): void {
    this.#octo.printer.clearFaults();
  }

  /** Holds uploads until `releaseUploads()`: they start and take no bytes (see the printer's holds). */
  holdUploads(): void {
    this.#octo.printer.holdUploads();
  }

  releaseUploads(): void {
    this.#octo.printer.releaseUploads();
  }

  /** Uploads in progress (bytes of their file taken so far). */
  uploads(): { transferred: number }[] {
    return [...this.#control.inflight].map((u) => ({ transferred: u.transferred }));
  }

  /** Every file of the uploads folder. */
  files(): SimFileInfo[] {
    return simFiles(this.#octo);
  }

  /** What GET /_sim/state answers. */
  snapshot(): Record<string, unknown> {
    return simState(this.#control);
  }
}

/** `count` simulators on consecutive ports from `port` (any free ports when 0 or absent). */
export function startOctoPrintSims(
  options: OctoPrintSimOptions & { count: number },
): Promise<OctoPrintSim[]> {
  const { count, ...rest } = options;
  return startOnConsecutivePorts(count, rest.port ?? 0, (port, i) => {
    const name = rest.name === undefined ? undefined : count > 1 ? `${rest.name}-${i + 1}` : rest.name;
    return OctoPrintSim.start({ ...rest, port, ...(name === undefined ? {} : { name }) });
  });
}
