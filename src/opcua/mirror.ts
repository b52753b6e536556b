/**
 * The mirror: Ferry as an OPC UA client writing each printer's values into the lab's server, one
 * folder per printer (values.ts). Nodes are found by their browse path (so a server laid out by
 * hand is written as it is) and made with AddNodes where missing and the server allows it; where
 * it does not, each node is reported once, naming the node and the server's answer, and the rest
 * go on.
 *
 * An unreachable or restarting server never holds the farm up: `update` only records the latest
 * values (older unwritten ones are dropped, coalesced); a loop of its own connects, writes what
 * changed, and after any loss connects again with a growing pause and writes everything anew, as
 * the server may have restarted without its nodes or values.
 */
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  AttributeIds,
  DataType,
  MessageSecurityMode,
  NodeId,
  OPCUAClient,
  SecurityPolicy,
  StatusCodes,
  UserTokenType,
  Variant,
  WriteValue,
  coerceNodeId,
  type ClientSession,
  type StatusCode,
  type UserIdentityInfo,
} from "node-opcua-client";
import { OPCUACertificateManager } from "node-opcua-certificate-manager";
import { AddNodesRequest, type AddNodesResponse } from "node-opcua-types";
import type { OpcuaMirrorConfig } from "../config/index.ts";
import type { Clock } from "../core/clock.ts";
import { toFerryError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import type { FarmPicture } from "./bridge.ts";
import { addNodesRequest, browsePath, nodeSpecs, printerKey, type NodeSpec } from "./mirror-nodes.ts";
import { PRINTER_VARIABLES, sameValue, type PrinterValues, type Value, type ValueType } from "./values.ts";

const MAX_BACKOFF_MS = 10_000;
/** Nodes the server would not make are asked for again this often (someone may have fixed it). */
const RETRY_MISSING_MS = 60_000;
const WRITES_PER_REQUEST = 500;

const DATA_TYPES: Record<ValueType, DataType> = {
  String: DataType.String,
  Double: DataType.Double,
  DateTime: DataType.DateTime,
  Boolean: DataType.Boolean,
};

export interface MirrorStatus {
  connected: boolean;
  /** The last connection error, while not connected. */
  error: string | null;
  /** Values waiting to be written. */
  pending: number;
  /** Nodes that could not be made or written, with why. */
  problems: Record<string, string>;
  /** Writes the server took since start. */
  written: number;
}

export interface MirrorOptions {
  config: OpcuaMirrorConfig;
  /** data_dir/opcua: Ferry's client certificate lives under pki/. */
  dir: string;
  clock: Clock;
  logger: Logger;
}

/** The minimum of a node-opcua session used here beyond ClientSession: raw service calls. */
interface Transactions {
  performMessageTransaction(
    request: AddNodesRequest,
    callback: (err: Error | null, response?: unknown) => void,
  ): void;
}

export class OpcuaMirror {
  readonly #o: MirrorOptions;
  readonly #log: Logger;
  readonly #stop = new AbortController();
  /** Printer → its latest values (this node's printers only). */
  readonly #desired = new Map<string, PrinterValues>();
  /** Node key → the value the server has (as far as this connection knows). */
  readonly #written = new Map<string, Value>();
  /** Node key → its NodeId on the server (this connection). */
  readonly #ids = new Map<string, NodeId>();
  readonly #problems = new Map<string, string>();
  #problemsAt = 0;
  #wake = new AbortController();
  #loop: Promise<void> | undefined;
  #client: OPCUAClient | undefined;
  #certificates: OPCUACertificateManager | undefined;
  #connected = false;
  #lost = false;
  #error: string | null = null;
  #count = 0;
  #namespace = 0;

  constructor(options: MirrorOptions) {
    this.#o = options;
    this.#log = options.logger.child({ part: "opcua-mirror", endpoint: options.config.endpoint });
  }

  status(): MirrorStatus {
    return {
      connected: this.#connected,
      error: this.#error,
      pending: this.#pending().length,
      problems: Object.fromEntries(this.#problems),
      written: this.#count,
    };
  }

  /** The farm as it is now: remembered, written when the server can take it. Never waits. */
  update(picture: FarmPicture): void {
    for (const [name, { values, mine }] of picture.printers) if (mine) this.#desired.set(name, values);
    this.#poke();
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /**
   * Stops; values not yet written get `graceMs` to go out while connected (a server that is away
   * is not waited for: the next start writes everything anyway).
   */
  async stop(graceMs = 2000): Promise<void> {
    const { clock } = this.#o;
    const until = clock.now() + graceMs;
    while (this.#connected && this.#pending().length > 0 && clock.now() < until) await clock.sleep(20);
    this.#stop.abort();
    this.#poke();
    await this.#disconnect();
    await this.#loop;
    await this.#certificates?.dispose();
  }

  #isLost(): boolean {
    return this.#lost;
  }

  #poke(): void {
    const wake = this.#wake;
    this.#wake = new AbortController();
    wake.abort();
  }

  async #run(): Promise<void> {
    const { clock } = this.#o;
    const signal = this.#stop.signal;
    const stopped = () => signal.aborted;
    let failures = 0;
    while (!stopped()) {
      try {
        const session = await this.#connect();
        failures = 0;
        await this.#serve(session);
      } catch (error) {
        if (stopped()) break;
        const message = describe(error);
        if (message !== this.#error)
          this.#log.warn({ err: message }, "opcua mirror: the server cannot be reached; values wait for it");
        this.#error = message;
        failures++;
      }
      this.#connected = false;
      await this.#disconnect();
      if (stopped()) break;
      const delay = Math.min(MAX_BACKOFF_MS, 250 * 2 ** Math.min(failures, 6));
      await clock.sleep(delay, signal).catch(() => undefined);
    }
  }

  async #connect(): Promise<ClientSession> {
    const { config, dir } = this.#o;
    this.#certificates ??= new OPCUACertificateManager({
      rootFolder: join(dir, "pki"),
      // The server's certificate is taken as it comes (and kept under pki/trusted).
      automaticallyAcceptUnknownCertificate: true,
    });
    const certificates = this.#certificates;
    const client = OPCUAClient.create({
      applicationName: "Ferry",
      securityMode: MessageSecurityMode[config.securityMode],
      securityPolicy: SecurityPolicy[config.securityPolicy],
      endpointMustExist: false,
      keepSessionAlive: true,
      // Ferry reconnects by itself (#run): node-opcua's own retries would hide a lost server.
      connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 1000 },
      requestedSessionTimeout: 60_000,
      clientCertificateManager: certificates,
    });
    this.#client = client;
    this.#lost = false;
    const lost = () => {
      // A client closed earlier may say so late: only the current one counts.
      if (this.#client !== client) return;
      this.#lost = true;
      this.#poke();
    };
    client.on("connection_lost", lost);
    client.on("close", lost);
    await client.connect(config.endpoint);
    const session = await client.createSession(this.#identity());
    session.on("session_closed", lost);
    const namespaces = await session.readNamespaceArray();
    const index = namespaces.indexOf(config.namespace);
    if (index < 0)
      throw new Error(
        `the server has no namespace ${config.namespace} (set opcua.mirror.namespace to one of: ${namespaces.join(", ")})`,
      );
    this.#namespace = index;
    this.#connected = true;
    if (this.#error !== null) this.#log.info("opcua mirror: connected again; writing every value anew");
    else this.#log.info("opcua mirror: connected");
    this.#error = null;
    // A new connection may meet a server that restarted empty: find and write everything again.
    this.#ids.clear();
    this.#written.clear();
    this.#problems.clear();
    return session;
  }

  #identity(): UserIdentityInfo {
    const identity = this.#o.config.identity;
    switch (identity.type) {
      case "anonymous":
        return { type: UserTokenType.Anonymous };
      case "username":
        return {
          type: UserTokenType.UserName,
          userName: identity.username,
          password: identity.password.reveal(),
        };
      case "certificate":
        return {
          type: UserTokenType.Certificate,
          certificateData: new X509Certificate(readFileSync(identity.certificateFile)).raw,
          privateKey: readFileSync(identity.privateKeyFile, "utf8"),
        };
    }
  }

  async #disconnect(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    if (!client) return;
    let timer: NodeJS.Timeout | undefined;
    // A dead server must not hold a stop up.
    await Promise.race([
      client.disconnect().catch(() => undefined),
      new Promise((resolve) => (timer = setTimeout(resolve, 3000))),
    ]);
    clearTimeout(timer);
  }

  /** Writes what changed until the connection is lost or the mirror stops. */
  async #serve(session: ClientSession): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted && !this.#lost) {
      const wake = this.#wake.signal;
      if (this.#problems.size > 0 && this.#o.clock.now() - this.#problemsAt > RETRY_MISSING_MS) {
        for (const key of this.#problems.keys()) this.#ids.delete(key);
        this.#problems.clear();
      }
      const pending = this.#pending();
      if (pending.length > 0) {
        await this.#ensure(session, [...new Set(pending.map((p) => p.printer))]);
        await this.#write(session, this.#pending());
      }
      if (this.#isLost()) break;
      await new Promise<void>((resolve) => {
        if (wake.aborted || signal.aborted) return resolve();
        wake.addEventListener("abort", () => resolve(), { once: true });
        signal.addEventListener("abort", () => resolve(), { once: true });
      });
    }
    if (this.#lost) throw new Error("the connection to the server was lost");
  }

  /** Values that differ from what the server has, for nodes not known to be refused. */
  #pending(): { printer: string; key: string; value: Value; type: ValueType }[] {
    const out: { printer: string; key: string; value: Value; type: ValueType }[] = [];
    for (const [printer, values] of this.#desired) {
      for (const [path, type] of PRINTER_VARIABLES) {
        const key = `${this.#printerKey(printer)}/${path}`;
        if (this.#problems.has(key) || sameValue(this.#written.get(key), values[path])) continue;
        out.push({ printer, key, value: values[path], type });
      }
    }
    return out;
  }

  #printerKey(printer: string): string {
    return printerKey(this.#o.config, printer);
  }

  /** Finds the printers' nodes, and makes the missing ones where the server lets it. */
  async #ensure(session: ClientSession, printers: string[]): Promise<void> {
    const wanted = new Map<string, NodeSpec>();
    for (const printer of printers)
      for (const spec of nodeSpecs(this.#o.config, printer))
        if (!this.#ids.has(spec.key) && !this.#problems.has(spec.key)) wanted.set(spec.key, spec);
    if (wanted.size === 0) return;
    const specs = [...wanted.values()];
    const results = await session.translateBrowsePath(
      specs.map((spec) => browsePath(spec.key, this.#namespace)),
    );
    const missing: NodeSpec[] = [];
    specs.forEach((spec, i) => {
      const target = results[i]?.targets?.[0]?.targetId;
      if (results[i]?.statusCode.isGood() && target) this.#ids.set(spec.key, coerceNodeId(target.toString()));
      else missing.push(spec);
    });
    // Parents first: one AddNodes request per depth.
    const depth = (key: string) => key.split("/").length;
    for (const level of [...new Set(missing.map((s) => depth(s.key)))].sort((a, b) => a - b)) {
      const items = missing.filter((s) => depth(s.key) === level);
      const ready = items.filter((s) => s.parent === null || this.#ids.has(s.parent));
      for (const spec of items.filter((s) => !ready.includes(s)))
        this.#refuse(spec.key, `its folder ${spec.parent ?? ""} is missing`);
      if (ready.length > 0) await this.#add(session, ready);
    }
  }

  async #add(session: ClientSession, specs: NodeSpec[]): Promise<void> {
    const request = addNodesRequest(specs, this.#ids, this.#namespace);
    let response: AddNodesResponse;
    try {
      response = await new Promise<AddNodesResponse>((resolve, reject) =>
        (session as unknown as Transactions).performMessageTransaction(request, (err, res) =>
          err ? reject(err) : resolve(res as AddNodesResponse),
        ),
      );
    } catch (error) {
      // A whole-service refusal (BadServiceUnsupported, BadUserAccessDenied) comes as an error.
      if (this.#lost) throw error;
      for (const spec of specs)
        this.#refuse(spec.key, `the server does not let Ferry make it: ${describe(error)}`);
      return;
    }
    const made: string[] = [];
    specs.forEach((spec, i) => {
      const result = response.results?.[i];
      if (result?.statusCode.isGood()) {
        this.#ids.set(spec.key, result.addedNodeId);
        made.push(spec.key);
      } else {
        this.#refuse(
          spec.key,
          `the server does not let Ferry make it: ${result?.statusCode.name ?? "no answer"}`,
        );
      }
    });
    if (made.length > 0) this.#log.info({ nodes: made }, `opcua mirror: made ${made.length} missing nodes`);
  }

  #refuse(key: string, why: string): void {
    if (this.#problems.get(key) === why) return;
    if (this.#problems.size === 0) this.#problemsAt = this.#o.clock.now();
    this.#problems.set(key, why);
    this.#log.error(
      { node: key },
      `opcua mirror: ${key} is missing on ${this.#o.config.endpoint} and ${why}; create it there (namespace ${this.#o.config.namespace}) or allow Ferry to`,
    );
  }

  async #write(
    session: ClientSession,
    pending: { printer: string; key: string; value: Value; type: ValueType }[],
  ): Promise<void> {
    const ready = pending.flatMap((p) => {
      const nodeId = this.#ids.get(p.key);
      return nodeId ? [{ ...p, nodeId }] : [];
    });
    for (let at = 0; at < ready.length; at += WRITES_PER_REQUEST) {
      const batch = ready.slice(at, at + WRITES_PER_REQUEST);
      const results: StatusCode[] = await session.write(
        batch.map(
          (p) =>
            new WriteValue({
              nodeId: p.nodeId,
              attributeId: AttributeIds.Value,
              value: { value: new Variant({ dataType: DATA_TYPES[p.type], value: p.value }) },
            }),
        ),
      );
      batch.forEach((p, i) => {
        const status = results[i];
        if (status?.isGood()) {
          this.#written.set(p.key, p.value);
          this.#count++;
        } else if (status?.equals(StatusCodes.BadNodeIdUnknown)) {
          // Gone (deleted on the server): found or made again on the next pass.
          this.#ids.delete(p.key);
        } else {
          const why = `the server refuses the write: ${status?.name ?? "no answer"}`;
          if (this.#problems.get(p.key) !== why) {
            if (this.#problems.size === 0) this.#problemsAt = this.#o.clock.now();
            this.#problems.set(p.key, why);
            this.#log.error({ node: p.key }, `opcua mirror: ${p.key} on ${this.#o.config.endpoint}: ${why}`);
          }
        }
      });
    }
  }
}

function describe(error: unknown): string {
  return toFerryError(error).message;
}
