/**
 * A faithful PrusaLink printer simulator (see README.md): the v1 HTTP API with Digest or API-key
 * authentication, FAT names, one transfer at a time, a rate-limited ingest, a virtual print, and
 * a control API under /_sim/. Binds 127.0.0.1 only.
 */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { startOnConsecutivePorts } from "../ports.ts";
import { simFiles, simStartPrint, simState, type SimFileInfo } from "./control.ts";
import { DigestGuard } from "./digest.ts";
import { createSimServer } from "./server.ts";
import type { SimFault, SimTemperature, VirtualPrinter } from "../printer/index.ts";
import {
  createPrusaPrinter,
  prusaState,
  setPrusaState,
  type PrinterModel,
  type PrusaLinkState,
} from "./prusa-printer.ts";

export { DEFAULT_PRINT_S } from "../printer/index.ts";
export type { SimFault } from "../printer/index.ts";
export { PRUSALINK_STATES } from "./prusa-printer.ts";
export type { PrusaLinkState, PrinterModel } from "./prusa-printer.ts";
export type { SimFileInfo } from "./control.ts";
export { REALM } from "./digest.ts";

export const DEFAULT_CAPACITY = 8 * 1024 ** 3;
export const DEFAULT_NONCE_LIFETIME_MS = 5000;

export interface PrusaLinkSimOptions {
  /** 0 or undefined: any free port. */
  port?: number;
  /** Digest user (default "maker"). */
  username?: string;
  /** Digest password; default "maker" unless only `apiKey` is given (then Digest is off). */
  password?: string;
  /** The X-Api-Key to accept (default: the password, as the firmware does). */
  apiKey?: string;
  /** Upload ingest limit in bytes per second; undefined = unlimited. */
  rate?: number;
  /** Bytes of storage (default 8 GiB). */
  capacity?: number;
  model?: PrinterModel;
  name?: string;
  /** How long a Digest nonce stays valid (default 5000 ms). */
  nonceLifetimeMs?: number;
  /** ms since the epoch; drives nonces, print progress, heaters and timestamps (not the ingest rate). */
  clock?: () => number;
  /** Printer time runs this many times faster than the clock (default 1): a 10-minute print takes 6 s at 100. */
  speed?: number;
  /** Keep uploaded bytes (default true); false keeps sizes only, for big benchmarks. */
  storeContent?: boolean;
}

export class PrusaLinkSim {
  readonly url: string;
  readonly port: number;
  readonly name: string;
  readonly #server: Server;
  readonly #printer: VirtualPrinter;
  #closed: Promise<void> | undefined;

  private constructor(server: Server, printer: VirtualPrinter, port: number, name: string) {
    this.#server = server;
    this.#printer = printer;
    this.port = port;
    this.name = name;
    this.url = `http://127.0.0.1:${port}`;
  }

  static async start(options: PrusaLinkSimOptions = {}): Promise<PrusaLinkSim> {
    const clock = options.clock ?? Date.now;
    const model = options.model ?? "MK4";
    const printer = createPrusaPrinter({
      model,
      capacity: options.capacity ?? DEFAULT_CAPACITY,
      clock,
      ...(options.speed === undefined ? {} : { speed: options.speed }),
    });
    const password = options.password ?? (options.apiKey === undefined ? "maker" : undefined);
    const guard = new DigestGuard({
      username: options.username ?? "maker",
      password,
      // The firmware compares X-Api-Key with its PrusaLink password; `apiKey` sets another key.
      apiKey: options.apiKey ?? password,
      nonceLifetimeMs: options.nonceLifetimeMs ?? DEFAULT_NONCE_LIFETIME_MS,
      clock,
    });
    let port = 0;
    let name = options.name ?? "";
    const server = createSimServer({
      printer,
      guard,
      files: { printer, rate: options.rate, storeContent: options.storeContent ?? true },
      get name() {
        return name;
      },
      port: () => port,
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port ?? 0, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    port = (server.address() as AddressInfo).port;
    if (name === "") name = `prusa-${model.toLowerCase()}-${port}`;
    return new PrusaLinkSim(server, printer, port, name);
  }

  /** Stops listening and drops open connections (a running upload is lost, as on power-off). */
  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      this.#server.close(() => {
        resolve();
      });
      this.#server.closeAllConnections();
      this.#printer.releaseUploads();
    });
    return this.#closed;
  }

  /** The virtual printer behind this face (for code that drives every face alike). */
  get printer(): VirtualPrinter {
    return this.#printer;
  }

  /** Forces the printer's state word; see setPrusaState for what happens to a job. */
  setState(state: PrusaLinkState): void {
    setPrusaState(this.#printer, state);
  }

  /** The printer's state word now. */
  state(): PrusaLinkState {
    return prusaState(this.#printer);
  }

  /**
   * Prints `path` (relative to the main storage, long or 8.3 names), as someone at the printer
   * would: for `durationS` seconds of printer time, else the G-code's estimate, else 600.
   */
  startPrint(path: string, durationS?: number): void {
    simStartPrint(this.#printer, path, durationS);
  }

  /**
   * Puts a file on the main storage as a computer would, writing the USB stick directly: any name
   * FAT allows (a .txt too, which uploads refuse), folders made as needed, an existing file replaced.
   */
  putFile(path: string, content: Buffer | string): void {
    const storage = this.#printer.primary;
    const names = path.split("/").filter((name) => name !== "");
    const name = names.pop();
    if (name === undefined) throw new Error(`putFile: ${JSON.stringify(path)} names no file`);
    const now = Math.floor(this.#printer.clock() / 1000);
    let folder = storage.root;
    for (const part of names) {
      const next = storage.lookup(folder, part) ?? storage.addFolder(folder, part, now);
      if (next.kind !== "folder") throw new Error(`putFile: ${part} in ${path} is a file`);
      folder = next;
    }
    const bytes = Buffer.from(content);
    storage.putFile(folder, name, bytes, bytes.length, now);
  }

  /** The filament runs out: the print halts and the printer shows ATTENTION until resumed. */
  runout(): void {
    this.#printer.runout();
  }

  /** The printer fails (ERROR; a running job ends) until set IDLE. */
  fail(message?: string): void {
    this.#printer.fail(message);
  }

  /** The printer stops answering its API (connections are reset); the control API still works. */
  disconnect(): void {
    this.#printer.disconnect();
  }

  reconnect(): void {
    this.#printer.reconnect();
  }

  /** Printer time runs `speed` times faster than the clock from now on. */
  setSpeed(speed: number): void {
    this.#printer.setSpeed(speed);
  }

  temperatures(): SimTemperature[] {
    return this.#printer.temperatures();
  }

  injectFault(fault: SimFault): void {
    this.#printer.injectFault(fault);
  }

  clearFaults(): void {
    this.#printer.clearFaults();
  }

  /**
   * Holds uploads until `releaseUploads()`: one that starts meanwhile shows as the transfer and
   * takes no bytes (a running one stops after its current chunk). For a test that needs an
   * upload in progress, as long as it likes, however slow the machine.
   */
  holdUploads(): void {
    this.#printer.holdUploads();
  }

  releaseUploads(): void {
    this.#printer.releaseUploads();
  }

  /** The upload in progress (path, size, bytes taken so far), or undefined. */
  transfer(): { path: string; size: number; transferred: number } | undefined {
    const transfer = this.#printer.transfer;
    return transfer && { path: transfer.path, size: transfer.size, transferred: transfer.transferred };
  }

  /** Complete files on the main storage, by long path. */
  files(): SimFileInfo[] {
    return simFiles(this.#printer);
  }

  /** What GET /_sim/state answers. */
  snapshot(): Record<string, unknown> {
    return simState(this.#printer, this.name);
  }
}

/**
 * `count` simulators on consecutive ports from `port` (any free ports when `port` is 0 or absent).
 * When one of those ports is taken, none is kept and the error (code EADDRINUSE) names it.
 */
export async function startPrusaLinkSims(
  options: PrusaLinkSimOptions & { count: number },
): Promise<PrusaLinkSim[]> {
  const { count, ...rest } = options;
  return startOnConsecutivePorts(count, rest.port ?? 0, (port, i) => {
    const name = rest.name === undefined ? undefined : count > 1 ? `${rest.name}-${i + 1}` : rest.name;
    return PrusaLinkSim.start({ ...rest, port, ...(name === undefined ? {} : { name }) });
  });
}
