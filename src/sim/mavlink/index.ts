/**
 * A flight controller for tests, `ferry sim mavlink` and the benchmark: MAVLink 2 over UDP on
 * 127.0.0.1 (or a serial pseudo-terminal pair made by socat), a HEARTBEAT each second, and the FTP
 * server of ftp-server.ts over a folder of logs in PX4 or ArduPilot layout. Faults come from
 * `faults` (or the control API, control.ts): packet loss and reordering in both directions, a link
 * rate limit in baud (10 bits a byte, as a UART sends them), a reboot (silent for a while, sessions
 * gone), and a second ground station holding the session.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { mkdtemp, rm, stat } from "node:fs/promises";
import type { Server } from "node:http";
import {
  createServer as createTcpServer,
  type AddressInfo,
  type Server as TcpServer,
  type Socket,
} from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import {
  common,
  minimal,
  MavLinkPacketParser,
  MavLinkPacketSplitter,
  MavLinkProtocolV2,
  type MavLinkPacket,
} from "node-mavlink";
import { decodePayload } from "../../core/mavlink-ftp.ts";
import { startControlServer } from "./control.ts";
import { FtpServer, type ServerStats } from "./ftp-server.ts";

export type Layout = "px4" | "ardupilot";

/** Where each autopilot keeps its logs. */
export const LOG_FOLDERS: Readonly<Record<Layout, string>> = {
  px4: "/fs/microsd/log",
  ardupilot: "/APM/LOGS",
};

export interface SimFaults {
  /** Share of packets lost, each direction (0..1). */
  loss: number;
  /** Share of packets sent after the one behind them. */
  reorder: number;
  /** Link rate in baud (0: no limit). */
  baud: number;
  /** Reboot once this many file bytes went out (for a reboot mid-transfer). */
  rebootAfterBytes?: number | undefined;
  /** How long a reboot keeps the vehicle silent (ms). */
  rebootDownMs: number;
}

export interface MavlinkSimOptions {
  /** Served folder: the vehicle's log folder. */
  logs: string;
  layout?: Layout;
  /** UDP address to listen on (default 127.0.0.1, any free port). */
  udp?: { host: string; port: number };
  /** Also send to this ground station from the start (it listens: Ferry's `udpin://`). */
  sendTo?: { host: string; port: number };
  /** Listen for TCP connections here instead of UDP. */
  tcp?: { host: string; port: number };
  /** Make a serial pseudo-terminal pair with socat instead of UDP. */
  pty?: boolean;
  systemId?: number;
  componentId?: number;
  /** Whether ListDirectoryWithTime is answered (default true). */
  listWithTime?: boolean;
  heartbeatMs?: number;
  faults?: Partial<SimFaults>;
  /** Seed of the fault dice, so that a test sees the same losses each run. */
  seed?: number;
  /** Port of the HTTP control API on 127.0.0.1 (0: any free port; undefined: none). */
  controlPort?: number;
}

export interface SimLinkStats {
  framesSent: number;
  framesDropped: number;
  framesReceived: number;
  requestsDropped: number;
}

/**
 * The serial driver's transmit buffer: a pump timer that fires late still finds this much queued
 * for the wire, so the host's lateness costs no link time up to it (as on a real UART).
 */
const TX_BUFFER_BYTES = 4096;
const UNLIMITED_BATCH = 32;

interface Peer {
  send(frame: Buffer): void;
  feed(bytes: Buffer): void;
}

/** A small deterministic generator (mulberry32). */
function dice(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class MavlinkSim {
  readonly layout: Layout;
  readonly mount: string;
  readonly logs: string;
  readonly faults: SimFaults;
  readonly server: FtpServer;
  readonly link: SimLinkStats = { framesSent: 0, framesDropped: 0, framesReceived: 0, requestsDropped: 0 };
  /** "udp://127.0.0.1:PORT" or the serial URL of the pty's other end. */
  url = "";
  /** The pty end a ground station opens (with --pty). */
  ptyPath: string | undefined;
  controlUrl: string | undefined;
  reboots = 0;
  readonly #systemId: number;
  readonly #componentId: number;
  readonly #protocol: MavLinkProtocolV2;
  readonly #random: () => number;
  readonly #peers = new Map<string, Peer>();
  readonly #queue: Buffer[] = [];
  #held: Buffer | undefined;
  #freeAt = 0;
  #pumpTimer: NodeJS.Timeout | undefined;
  #pumpQueued = false;
  #seq = 0;
  #down = false;
  #downTimer: NodeJS.Timeout | undefined;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #socket: UdpSocket | undefined;
  #tcp: TcpServer | undefined;
  readonly #tcpSockets = new Set<Socket>();
  #socat: ChildProcess | undefined;
  #ptyDir: string | undefined;
  #serial: { close(): void } | undefined;
  #control: Server | undefined;
  #closed = false;

  private constructor(options: MavlinkSimOptions) {
    this.layout = options.layout ?? "px4";
    this.mount = LOG_FOLDERS[this.layout];
    this.logs = options.logs;
    this.#systemId = options.systemId ?? 1;
    this.#componentId = options.componentId ?? 1;
    this.#protocol = new MavLinkProtocolV2(this.#systemId, this.#componentId);
    this.#random = dice(options.seed ?? 1);
    this.faults = { loss: 0, reorder: 0, baud: 0, rebootDownMs: 2000, ...options.faults };
    this.server = new FtpServer({
      dir: options.logs,
      mount: this.mount,
      listWithTime: options.listWithTime ?? true,
    });
  }

  static async start(options: MavlinkSimOptions): Promise<MavlinkSim> {
    const sim = new MavlinkSim(options);
    try {
      if (options.pty === true) await sim.#openPty();
      else if (options.tcp) await sim.#openTcp(options.tcp);
      else await sim.#openUdp(options.udp ?? { host: "127.0.0.1", port: 0 }, options.sendTo);
      if (options.controlPort !== undefined) {
        sim.#control = await startControlServer(sim, options.controlPort);
        sim.controlUrl = `http://127.0.0.1:${(sim.#control.address() as AddressInfo).port}/_sim/`;
      }
    } catch (error) {
      await sim.close();
      throw error;
    }
    sim.#heartbeatTimer = setInterval(() => {
      sim.#heartbeat();
    }, options.heartbeatMs ?? 1000);
    sim.#heartbeat();
    return sim;
  }

  get stats(): ServerStats & SimLinkStats {
    return { ...this.server.stats, ...this.link };
  }

  get down(): boolean {
    return this.#down;
  }

  // --- transports -------------------------------------------------------------------------------

  #parserFor(onPacket: (packet: MavLinkPacket) => void): (bytes: Buffer) => void {
    const splitter = new MavLinkPacketSplitter();
    const parser = new MavLinkPacketParser();
    splitter.pipe(parser);
    parser.on("data", onPacket);
    splitter.on("error", () => undefined);
    return (bytes) => splitter.write(bytes);
  }

  async #openUdp(
    address: { host: string; port: number },
    sendTo?: { host: string; port: number },
  ): Promise<void> {
    const socket = createSocket({ type: address.host.includes(":") ? "udp6" : "udp4" });
    this.#socket = socket;
    const peerOf = (host: string, port: number): Peer => {
      const key = `${host}:${port}`;
      let peer = this.#peers.get(key);
      if (!peer) {
        const feed = this.#parserFor((packet) => {
          this.#receive(packet);
        });
        peer = {
          send: (frame) => {
            socket.send(frame, port, host);
          },
          feed,
        };
        this.#peers.set(key, peer);
        // A new ground station: let it know at once that the vehicle is there.
        this.#heartbeat();
      }
      return peer;
    };
    socket.on("message", (bytes, from) => {
      peerOf(from.address, from.port).feed(bytes);
    });
    socket.on("error", () => undefined);
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(address.port, address.host, () => {
        socket.off("error", reject);
        resolve();
      });
    });
    const bound = socket.address();
    this.url = `udp://${bound.address.includes(":") ? `[${bound.address}]` : bound.address}:${bound.port}`;
    if (sendTo) {
      peerOf(sendTo.host, sendTo.port);
      this.url = `udpin://${sendTo.host}:${sendTo.port}`;
    }
  }

  async #openTcp(address: { host: string; port: number }): Promise<void> {
    const server = createTcpServer((socket) => {
      socket.setNoDelay(true);
      this.#tcpSockets.add(socket);
      const key = `tcp:${socket.remoteAddress ?? ""}:${socket.remotePort ?? 0}`;
      const feed = this.#parserFor((packet) => {
        this.#receive(packet);
      });
      this.#peers.set(key, {
        send: (frame) => {
          if (!socket.destroyed) socket.write(frame);
        },
        feed,
      });
      socket.on("data", feed);
      socket.on("error", () => undefined);
      socket.on("close", () => {
        this.#peers.delete(key);
        this.#tcpSockets.delete(socket);
      });
      this.#heartbeat();
    });
    this.#tcp = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(address.port, address.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const bound = server.address() as AddressInfo;
    this.url = `tcp://${address.host}:${bound.port}`;
  }

  async #openPty(): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), "ferry-mavlink-pty-"));
    this.#ptyDir = dir;
    const vehicleEnd = join(dir, "vehicle");
    const gcsEnd = join(dir, "gcs");
    const socat = spawn("socat", [`pty,raw,echo=0,link=${vehicleEnd}`, `pty,raw,echo=0,link=${gcsEnd}`], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let complaint = "";
    socat.stderr.on("data", (chunk: Buffer) => {
      complaint += chunk.toString();
    });
    this.#socat = socat;
    const failed = new Promise<never>((_, reject) => {
      socat.once("error", (error) => {
        reject(new Error(`cannot run socat for --pty (apt-get install socat): ${error.message}`));
      });
      socat.once("exit", (code) => {
        reject(
          new Error(
            `socat exited (${code ?? "signal"}) before it made a pseudo-terminal pair: ${complaint.trim()}`,
          ),
        );
      });
    });
    failed.catch(() => undefined);
    for (let waited = 0; ; waited += 20) {
      const ready = await Promise.race([
        Promise.all([stat(vehicleEnd), stat(gcsEnd)]).then(
          () => true,
          () => false,
        ),
        failed,
      ]);
      if (ready) break;
      if (waited > 10_000) throw new Error("socat made no pseudo-terminal pair in 10 s");
      await delay(20);
    }
    const { SerialPort } = await import("serialport");
    const port = new SerialPort({ path: vehicleEnd, baudRate: this.faults.baud || 921_600, autoOpen: false });
    await new Promise<void>((resolve, reject) => {
      port.open((error) => {
        if (error) reject(error);
        else resolve();
      });
    });
    const feed = this.#parserFor((packet) => {
      this.#receive(packet);
    });
    port.on("data", feed);
    port.on("error", () => undefined);
    this.#peers.set("pty", {
      send: (frame) => {
        if (port.isOpen) port.write(frame);
      },
      feed,
    });
    this.#serial = {
      close: () => {
        if (port.isOpen) port.close();
      },
    };
    this.ptyPath = gcsEnd;
    this.url = `serial://${gcsEnd}?baud=${this.faults.baud || 921_600}`;
  }

  // --- receiving --------------------------------------------------------------------------------

  #receive(packet: MavLinkPacket): void {
    if (this.#down || this.#closed) return;
    this.link.framesReceived++;
    if (packet.header.msgid !== common.FileTransferProtocol.MSG_ID) return;
    if (this.faults.loss > 0 && this.#random() < this.faults.loss) {
      this.link.requestsDropped++;
      return;
    }
    const message = packet.protocol.data(packet.payload, common.FileTransferProtocol);
    if (message.targetSystem !== 0 && message.targetSystem !== this.#systemId) return;
    if (message.targetComponent !== 0 && message.targetComponent !== this.#componentId) return;
    const request = decodePayload(message.payload);
    if (!request) return;
    const { sysid, compid } = packet.header;
    const answer = this.server.handle(`${sysid}:${compid}`, request);
    if (answer) this.#enqueue(this.#ftpFrame(answer, sysid, compid));
    this.#pump();
  }

  // --- sending ----------------------------------------------------------------------------------

  #frame(
    message: InstanceType<typeof common.FileTransferProtocol> | InstanceType<typeof minimal.Heartbeat>,
  ): Buffer {
    const frame = this.#protocol.serialize(message, this.#seq);
    this.#seq = (this.#seq + 1) & 0xff;
    return frame;
  }

  #ftpFrame(payload: Buffer, system: number, component: number): Buffer {
    const message = new common.FileTransferProtocol();
    message.targetNetwork = 0;
    message.targetSystem = system;
    message.targetComponent = component;
    message.payload = [...payload];
    return this.#frame(message);
  }

  #heartbeat(): void {
    if (this.#down || this.#closed) return;
    const heartbeat = new minimal.Heartbeat();
    heartbeat.type = minimal.MavType.QUADROTOR;
    heartbeat.autopilot =
      this.layout === "px4" ? minimal.MavAutopilot.PX4 : minimal.MavAutopilot.ARDUPILOTMEGA;
    heartbeat.systemStatus = minimal.MavState.STANDBY;
    heartbeat.mavlinkVersion = 3;
    this.#enqueue(this.#frame(heartbeat));
    this.#pump();
  }

  #enqueue(frame: Buffer): void {
    this.#queue.push(frame);
  }

  /** The next frame to go: answers first, then the running burst's next packet. */
  #nextFrame(): Buffer | undefined {
    const queued = this.#queue.shift();
    if (queued) return queued;
    const burst = this.server.burst;
    if (!burst) return undefined;
    const payload = this.server.nextBurstPacket();
    if (!payload) return undefined;
    const [system = 0, component = 0] = burst.owner.split(":").map(Number);
    const frame = this.#ftpFrame(payload, system, component);
    const after = this.faults.rebootAfterBytes;
    if (after !== undefined && this.server.stats.fileBytesSent >= after) {
      this.faults.rebootAfterBytes = undefined;
      this.reboot();
      return undefined;
    }
    return frame;
  }

  #pump(): void {
    if (this.#pumpTimer !== undefined || this.#pumpQueued || this.#closed) return;
    const baud = this.faults.baud;
    let sent = 0;
    for (;;) {
      if (this.#down) {
        this.#queue.length = 0;
        return;
      }
      const now = performance.now();
      if (baud > 0 && this.#freeAt > now) {
        this.#pumpTimer = setTimeout(() => {
          this.#pumpTimer = undefined;
          this.#pump();
        }, this.#freeAt - now);
        return;
      }
      if (baud === 0 && sent >= UNLIMITED_BATCH) {
        // Let requests in between (a vehicle answers while it streams).
        this.#pumpQueued = true;
        setImmediate(() => {
          this.#pumpQueued = false;
          this.#pump();
        });
        return;
      }
      const frame = this.#nextFrame();
      if (!frame) return;
      sent++;
      if (baud > 0) {
        const buffered = (TX_BUFFER_BYTES * 10 * 1000) / baud;
        this.#freeAt = Math.max(this.#freeAt, now - buffered) + (frame.length * 10 * 1000) / baud;
      }
      this.#transmit(frame);
    }
  }

  #transmit(frame: Buffer): void {
    if (this.faults.loss > 0 && this.#random() < this.faults.loss) {
      this.link.framesDropped++;
      return;
    }
    if (this.#held === undefined && this.faults.reorder > 0 && this.#random() < this.faults.reorder) {
      // Goes after the next frame, or a moment later when none follows.
      this.#held = frame;
      setTimeout(() => {
        if (this.#held !== frame) return;
        this.#held = undefined;
        if (!this.#down && !this.#closed) this.#send(frame);
      }, 5).unref();
      return;
    }
    this.#send(frame);
    const held = this.#held;
    if (held) {
      this.#held = undefined;
      this.#send(held);
    }
  }

  #send(frame: Buffer): void {
    this.link.framesSent++;
    for (const peer of this.#peers.values()) peer.send(frame);
  }

  // --- faults -----------------------------------------------------------------------------------

  /** The vehicle reboots: silent for `downMs`, every session and burst gone, then heartbeats again. */
  reboot(downMs = this.faults.rebootDownMs): void {
    this.reboots++;
    this.#down = true;
    this.server.reset();
    this.#queue.length = 0;
    this.#held = undefined;
    clearTimeout(this.#downTimer);
    this.#downTimer = setTimeout(() => {
      this.#down = false;
      this.#heartbeat();
    }, downMs);
  }

  /** A second ground station opens the session and keeps it: everyone else gets Busy. */
  holdSession(): void {
    this.server.heldBy = "254:190";
  }

  releaseSession(): void {
    this.server.heldBy = undefined;
  }

  setFaults(faults: Partial<SimFaults>): void {
    Object.assign(this.faults, faults);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#heartbeatTimer);
    clearTimeout(this.#pumpTimer);
    clearTimeout(this.#downTimer);
    this.server.reset();
    this.#socket?.close();
    if (this.#tcp) {
      const tcp = this.#tcp;
      for (const socket of this.#tcpSockets) socket.destroy();
      await new Promise((resolve) => tcp.close(resolve));
    }
    this.#serial?.close();
    this.#socat?.kill();
    if (this.#control) {
      this.#control.closeAllConnections();
      await new Promise((resolve) => this.#control?.close(resolve));
    }
    if (this.#ptyDir) await rm(this.#ptyDir, { recursive: true, force: true });
  }
}
