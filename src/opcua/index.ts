/**
 * OPC UA for the farm (docs/opcua.md): the bridge that follows the farm, the mirror into the
 * lab's server and Ferry's own server, each present when ferry.yaml's `opcua:` asks for it.
 * Started after the farm and stopped before it (app.ts); neither waits on a server that is away.
 */
import { join } from "node:path";
import { format } from "node:util";
import { setDebugLogger, setErrorLogger, setWarningLogger } from "node-opcua-client";
import type { Accounts } from "../auth/accounts.ts";
import type { FerryConfig } from "../config/index.ts";
import type { Clock } from "../core/clock.ts";
import type { Subscriber } from "../core/events.ts";
import type { Logger } from "../core/logger.ts";
import { OpcuaBridge, type BridgeEvents, type FarmReader } from "./bridge.ts";
import { OpcuaMirror } from "./mirror.ts";
import { EmbeddedServer, type FarmControl } from "./server.ts";

export type { FarmPicture } from "./bridge.ts";
export type { MirrorStatus } from "./mirror.ts";

export interface OpcuaOptions {
  config: FerryConfig;
  bus: Subscriber<BridgeEvents>;
  farm: FarmReader & FarmControl;
  accounts: Pick<Accounts, "passwordIdentity" | "getUser">;
  /** A printer's URL, "" when it has none. */
  urlOf: (printer: string) => string;
  node: string;
  clock: Clock;
  logger: Logger;
}

export class Opcua {
  readonly bridge: OpcuaBridge;
  readonly mirror: OpcuaMirror | undefined;
  readonly server: EmbeddedServer | undefined;
  #off: (() => void) | undefined;

  constructor(options: OpcuaOptions) {
    const { config, logger, clock } = options;
    const opcua = config.opcua ?? {};
    const dir = join(config.dataDir, "opcua");
    const log = logger.child({ part: "opcua" });
    routeLibraryLogs(log);
    this.bridge = new OpcuaBridge({
      bus: options.bus,
      farm: options.farm,
      node: options.node,
      urlOf: options.urlOf,
      clock,
      logger: log,
      intervalMs: (opcua.mirror?.intervalS ?? 1) * 1000,
    });
    this.mirror = opcua.mirror && new OpcuaMirror({ config: opcua.mirror, dir, clock, logger });
    this.server =
      opcua.server &&
      new EmbeddedServer({
        config: opcua.server,
        dir,
        farm: options.farm,
        accounts: options.accounts,
        logger,
        node: options.node,
      });
  }

  async start(): Promise<void> {
    await this.server?.start();
    this.mirror?.start();
    this.#off = this.bridge.onPicture((picture) => {
      this.mirror?.update(picture);
      this.server?.update(picture);
    });
    this.bridge.start();
  }

  /** Writes the farm's last state to the lab's server if it is there (briefly), then closes both. */
  async stop(): Promise<void> {
    await this.bridge.stop();
    this.#off?.();
    await this.mirror?.stop();
    await this.server?.stop();
  }
}

/**
 * node-opcua prints to the console by itself, which would break `ferry serve --json`'s stdout:
 * its lines go to Ferry's logger at debug level instead (Ferry reports what matters itself).
 */
function routeLibraryLogs(log: Logger): void {
  const library = log.child({ library: "node-opcua" });
  const print = (...args: unknown[]) => library.debug(format(...args));
  setDebugLogger(print);
  setWarningLogger(print);
  setErrorLogger(print);
}
