/**
 * A log-upload web form (after PX4 Flight Review's /upload) as an HTTP server on 127.0.0.1: takes
 * multipart/form-data POSTs, keeps each file with its name and fields, answers with a redirect to
 * the log's page; optional Basic auth, a size limit, required fields and injected faults. See
 * README.md. Tests, `ferry sim upload-form` and the benchmarks use it.
 */
import { readFile, mkdtemp, rm } from "node:fs/promises";
import type { Server } from "node:http";
import type { Server as TlsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createUploadFormServer, type TlsOptions } from "./server.ts";
import { FormSite, type ReceivedUpload, type RedirectStatus, type SimFault } from "./site.ts";

export type { ReceivedUpload, SimFault, FaultStatus, RedirectStatus } from "./site.ts";
export type { TlsOptions } from "./server.ts";

export interface UploadFormSimOptions {
  /** 0 or undefined: any free port. */
  port?: number;
  /** Path the form posts to (default "/upload"). */
  path?: string;
  /** Name of the file field (default "filearg", as on Flight Review). */
  fileField?: string;
  /** Text fields an upload must carry, non-empty; missing ones get 400. */
  requiredFields?: readonly string[];
  /** Basic credentials; both or neither. */
  username?: string;
  password?: string;
  /** Request bodies over this many bytes get 413 (default: no limit). */
  maxSize?: number;
  /** Keep the uploaded bytes (default true); false keeps name, size and sha256 only. */
  storeContent?: boolean;
  /** Where to keep the files (default: a temp folder, removed by close()). */
  dir?: string;
  /** "redirect" (default) or "json": 200 with `{"url": "/plot_app?log=<id>"}`. */
  answer?: "redirect" | "json";
  /** Status of the redirect (default 302, what Flight Review's Tornado sends). */
  redirectStatus?: RedirectStatus;
  /** Serve https with this certificate. */
  tls?: TlsOptions;
  /** ms since the epoch, for receivedAt (default Date.now). */
  clock?: () => number;
}

export class UploadFormSim {
  /** Base URL, e.g. http://127.0.0.1:8090 */
  readonly url: string;
  /** The URL the form posts to, e.g. http://127.0.0.1:8090/upload */
  readonly uploadUrl: string;
  readonly port: number;
  readonly #server: Server | TlsServer;
  readonly #site: FormSite;
  readonly #ownDir: boolean;
  #closed: Promise<void> | undefined;

  private constructor(
    server: Server | TlsServer,
    site: FormSite,
    port: number,
    https: boolean,
    ownDir: boolean,
  ) {
    this.#server = server;
    this.#site = site;
    this.#ownDir = ownDir;
    this.port = port;
    this.url = `${https ? "https" : "http"}://127.0.0.1:${port}`;
    this.uploadUrl = `${this.url}${site.config.path}`;
  }

  static async start(options: UploadFormSimOptions = {}): Promise<UploadFormSim> {
    if ((options.username === undefined) !== (options.password === undefined)) {
      throw new Error("upload-form simulator: give both username and password, or neither");
    }
    const path = options.path ?? "/upload";
    if (!path.startsWith("/") || path.startsWith("/_sim/") || path === "/plot_app") {
      throw new Error(`upload-form simulator: path must start with / and not be taken: ${path}`);
    }
    const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "ferry-upload-form-")));
    const site = new FormSite({
      path,
      fileField: options.fileField ?? "filearg",
      requiredFields: options.requiredFields ?? [],
      credentials:
        options.username === undefined || options.password === undefined
          ? undefined
          : { username: options.username, password: options.password },
      maxSize: options.maxSize,
      storeContent: options.storeContent ?? true,
      answer: options.answer ?? "redirect",
      redirectStatus: options.redirectStatus ?? 302,
      dir,
      clock: options.clock ?? Date.now,
    });
    const server = createUploadFormServer(site, options.tls);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(options.port ?? 0, "127.0.0.1", () => {
          server.off("error", reject);
          resolve();
        });
      });
    } catch (error) {
      if (options.dir === undefined) await rm(dir, { recursive: true, force: true });
      throw error;
    }
    const port = (server.address() as AddressInfo).port;
    return new UploadFormSim(server, site, port, options.tls !== undefined, options.dir === undefined);
  }

  /** Every upload the site accepted, oldest first. */
  received(): ReceivedUpload[] {
    return this.#site.received();
  }

  /** The bytes of an accepted upload (needs storeContent). */
  async content(id: string): Promise<Buffer> {
    const upload = this.#site.find(id);
    if (upload?.file === undefined) throw new Error(`upload-form simulator: no content for upload ${id}`);
    return readFile(upload.file);
  }

  injectFault(fault: SimFault): void {
    this.#site.injectFault(fault);
  }

  clearFaults(): void {
    this.#site.clearFaults();
  }

  /** Stops listening, drops open connections (a running upload is lost) and removes its temp folder. */
  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      this.#server.close(() => {
        resolve();
      });
      this.#server.closeAllConnections();
    }).then(async () => {
      if (this.#ownDir) await rm(this.#site.config.dir, { recursive: true, force: true });
    });
    return this.#closed;
  }
}
