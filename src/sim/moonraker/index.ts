/**
 * A faithful Moonraker (Klipper) simulator (see README.md): Moonraker's HTTP API and its JSON-RPC
 * websocket over the virtual printer, an optional API key, uploads with a SHA-256 checksum, a
 * rate-limited ingest, and a control API under /_sim/. Binds 127.0.0.1 only.
 */
import type { AddressInfo } from "node:net";
import { startOnConsecutivePorts } from "../ports.ts";
import type { SimFault, SimTemperature, VirtualPrinter } from "../printer/index.ts";
import {
  handleControl,
  setSimState,
  simFiles,
  simStartPrint,
  simState,
  type MoonrakerSimState,
  type SimFileInfo,
} from "./control.ts";
import { MoonrakerFace } from "./face.ts";
import { createMoonrakerPrinter } from "./klipper.ts";
import { MoonrakerServer } from "./server.ts";
import { createUploadContext, type UploadContext } from "./uploads.ts";

export { MOONRAKER_SIM_STATES, type MoonrakerSimState, type SimFileInfo } from "./control.ts";

export const DEFAULT_CAPACITY = 8 * 1024 ** 3;

export interface MoonrakerSimOptions {
  /** 0 or undefined: any free port. */
  port?: number;
  /** Require this X-Api-Key of every client (Moonraker's [authorization]); none: every client is trusted. */
  apiKey?: string;
  /** Upload ingest limit in bytes per second; undefined = unlimited. */
  rate?: number;
  /** Bytes of the gcodes root's disk (default 8 GiB). */
  capacity?: number;
  name?: string;
  /** ms since the epoch; drives print progress, heaters and timestamps (not the ingest rate). */
  clock?: () => number;
  /** Printer time runs this many times faster than the clock (default 1). */
  speed?: number;
  /** Two extruders (`extruder1`). */
  extruders?: 1 | 2;
  /** A heated chamber (`heater_generic chamber`). */
  chamber?: boolean;
  /** Keep uploaded bytes (default true); false keeps sizes only, for big benchmarks. */
  storeContent?: boolean;
}

export class MoonrakerSim {
  readonly url: string;
  readonly port: number;
  readonly name: string;
  readonly #server: MoonrakerServer;
  readonly #face: MoonrakerFace;
  readonly #uploads: UploadContext;
  #closed: Promise<void> | undefined;

  private constructor(
    server: MoonrakerServer,
    face: MoonrakerFace,
    uploads: UploadContext,
    port: number,
    name: string,
  ) {
    this.#server = server;
    this.#face = face;
    this.#uploads = uploads;
    this.port = port;
    this.name = name;
    this.url = `http://127.0.0.1:${port}`;
  }

  static async start(options: MoonrakerSimOptions = {}): Promise<MoonrakerSim> {
    const clock = options.clock ?? Date.now;
    const printer = createMoonrakerPrinter({
      capacity: options.capacity ?? DEFAULT_CAPACITY,
      clock,
      ...(options.speed === undefined ? {} : { speed: options.speed }),
      ...(options.chamber === true ? { chamber: true } : {}),
    });
    const face = new MoonrakerFace(printer, {
      extruders: options.extruders ?? 1,
      chamber: options.chamber ?? false,
      apiKey: options.apiKey,
    });
    const uploads = createUploadContext(face, {
      rate: options.rate,
      storeContent: options.storeContent ?? true,
    });
    let name = options.name ?? "";
    const server = new MoonrakerServer({
      face,
      uploads,
      control: (req, res, route) => handleControl(req, res, face, uploads, name, route),
    });
    // The virtual printer's disconnect is the host leaving the network.
    let connected = printer.connected;
    printer.onChange(() => {
      if (printer.connected === connected) return;
      connected = printer.connected;
      if (connected) server.comeBack();
      else server.goDown();
    });
    await new Promise<void>((resolve, reject) => {
      server.http.once("error", reject);
      server.http.listen(options.port ?? 0, "127.0.0.1", () => {
        server.http.off("error", reject);
        resolve();
      });
    });
    const port = (server.http.address() as AddressInfo).port;
    if (name === "") name = `klipper-${port}`;
    return new MoonrakerSim(server, face, uploads, port, name);
  }

  /** Stops listening and drops open connections (a running upload is lost, as on power-off). */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#face.printer.releaseUploads();
      await this.#server.close();
    })();
    return this.#closed;
  }

  /** The virtual printer behind the face (tests drive its clock-bound behaviour directly). */
  get printer(): VirtualPrinter {
    return this.#face.printer;
  }

  /** Klipper's state, as PUT /_sim/state sets it. */
  setState(state: MoonrakerSimState): void {
    setSimState(this.#face, state);
  }

  /** Klippy's state now (ready, startup, shutdown, error, disconnected). */
  klippyState(): string {
    return this.#face.klippy();
  }

  /** print_stats.state now. */
  state(): string {
    return simState(this.#face, this.#uploads, this.name).print_stats_state as string;
  }

  /** A print started at the printer, of `path` in the gcodes root, for `durationS` (default: from its G-code). */
  startPrint(path: string, durationS?: number): void {
    simStartPrint(this.#face, path, durationS);
  }

  pause(): void {
    this.#face.printer.pause();
  }

  resume(): void {
    this.#face.printer.resume();
  }

  runout(): void {
    this.#face.printer.runout();
  }

  fail(message?: string): void {
    this.#face.printer.fail(message);
  }

  /** The host leaves the network (connections reset, websockets closed) until `reconnect()`. */
  disconnect(): void {
    this.#face.printer.disconnect();
  }

  reconnect(): void {
    this.#face.printer.reconnect();
  }

  setSpeed(speed: number): void {
    this.#face.printer.setSpeed(speed);
  }

  temperatures(): SimTemperature[] {
    return this.#face.printer.temperatures();
  }

  injectFault(fault: SimFault): void {
    this.#face.printer.injectFault(fault);
  }

  clearFaults(): void {
    this.#face.printer.clearFaults();
  }

  /** Holds uploads until `releaseUploads()`: they start and take no bytes. */
  holdUploads(): void {
    this.#face.printer.holdUploads();
  }

  releaseUploads(): void {
    this.#face.printer.releaseUploads();
  }

  /** Uploads in progress: the file name, bytes received, and the temp file they write. */
  uploads(): { filename: string; received: number; temp: string }[] {
    return [...this.#uploads.active].map((u) => ({ ...u }));
  }

  /** Files of the gcodes root. */
  files(): SimFileInfo[] {
    return simFiles(this.#face);
  }

  /** The bytes of a file of the gcodes root, or undefined. */
  content(path: string): Buffer | undefined {
    const node = this.#face.storage.resolve(path.split("/"));
    return node?.kind === "file" ? node.content : undefined;
  }

  /** What GET /_sim/state answers. */
  snapshot(): Record<string, unknown> {
    return simState(this.#face, this.#uploads, this.name);
  }
}

/**
 * `count` simulators on consecutive ports from `port` (any free ports when `port` is 0 or absent).
 * When one of those ports is taken, none is kept and the error (code EADDRINUSE) names it.
 */
export async function startMoonrakerSims(
  options: MoonrakerSimOptions & { count: number },
): Promise<MoonrakerSim[]> {
  const { count, ...rest } = options;
  return startOnConsecutivePorts(count, rest.port ?? 0, (port, i) => {
    const name = rest.name === undefined ? undefined : count > 1 ? `${rest.name}-${i + 1}` : rest.name;
    return MoonrakerSim.start({ ...rest, port, ...(name === undefined ? {} : { name }) });
  });
}
