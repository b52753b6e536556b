/**
 * A MAVLink 2 link to one vehicle over UDP, TCP or a serial port, framed and parsed by node-mavlink
 * (messages from mavlink-mappings). It sends FILE_TRANSFER_PROTOCOL messages to the configured
 * target system/component, hands the vehicle's FTP replies and heartbeats to its listeners, and
 * sends a ground-station HEARTBEAT each second so that the vehicle (or a router between) knows
 * where to answer.
 *
 *   udp://HOST:PORT     Ferry sends to the vehicle at HOST:PORT from a port of its own
 *   udpin://HOST:PORT   Ferry listens on HOST:PORT and answers whoever the vehicle sends from
 *   tcp://HOST:PORT     a TCP connection to the vehicle (or a router), re-opened when it drops
 *   serial:///dev/ttyACM0?baud=921600   a serial port (the serialport package)
 */
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { EventEmitter } from "node:events";
import { connect as tcpConnect, type Socket } from "node:net";
import {
  common,
  minimal,
  MavLinkPacketParser,
  MavLinkPacketSplitter,
  MavLinkProtocolV2,
  type MavLinkPacket,
} from "node-mavlink";
import type { Logger } from "../../core/logger.ts";
import { decodePayload, type FtpPayload } from "../../core/mavlink-ftp.ts";
import type { LinkAddress } from "./options.ts";

export interface LinkOptions {
  address: LinkAddress;
  /** Our system and component id (a ground station: 255/190). */
  systemId: number;
  componentId: number;
  /** The vehicle's. */
  targetSystem: number;
  targetComponent: number;
  logger: Logger;
}

interface LinkEvents {
  ftp: [FtpPayload];
  heartbeat: [];
}

const GCS_HEARTBEAT_MS = 1000;
const TCP_RETRY_MS = 1000;

/** The transport under the MAVLink framing: bytes out, bytes in. */
interface Transport {
  write(frame: Buffer): void;
  close(): void;
}

export class MavlinkLink extends EventEmitter<LinkEvents> {
  readonly #options: LinkOptions;
  readonly #protocol: MavLinkProtocolV2;
  #transport: Transport | undefined;
  #opening: Promise<void> | undefined;
  #seq = 0;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** When the vehicle's last HEARTBEAT came (ms, performance clock), or undefined. */
  lastHeartbeat: number | undefined;
  /** Frames and bytes sent, for the benchmark. */
  readonly sent = { frames: 0, bytes: 0 };

  constructor(options: LinkOptions) {
    super();
    this.#options = options;
    this.#protocol = new MavLinkProtocolV2(options.systemId, options.componentId);
  }

  /** Opens the transport once (later calls wait for the same opening). */
  open(): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("the link is closed"));
    this.#opening ??= this.#open().catch((error: unknown) => {
      this.#opening = undefined;
      throw error;
    });
    return this.#opening;
  }

  async #open(): Promise<void> {
    const feed = this.#parser();
    const address = this.#options.address;
    if (address.kind === "udp" || address.kind === "udpin") this.#transport = await openUdp(address, feed);
    else if (address.kind === "tcp") this.#transport = openTcp(address, feed, this.#options.logger);
    else this.#transport = await openSerial(address, feed);
    this.#sendHeartbeat();
    this.#heartbeatTimer = setInterval(() => {
      this.#sendHeartbeat();
    }, GCS_HEARTBEAT_MS);
    this.#heartbeatTimer.unref();
  }

  #parser(): (bytes: Buffer) => void {
    const splitter = new MavLinkPacketSplitter();
    const parser = new MavLinkPacketParser();
    splitter.pipe(parser);
    parser.on("data", (packet: MavLinkPacket) => {
      this.#receive(packet);
    });
    splitter.on("error", () => undefined);
    parser.on("error", () => undefined);
    return (bytes) => splitter.write(bytes);
  }

  #receive(packet: MavLinkPacket): void {
    const { sysid, compid, msgid } = packet.header;
    if (sysid !== this.#options.targetSystem) return;
    if (msgid === minimal.Heartbeat.MSG_ID) {
      if (compid !== this.#options.targetComponent) return;
      this.lastHeartbeat = performance.now();
      this.emit("heartbeat");
      return;
    }
    if (msgid !== common.FileTransferProtocol.MSG_ID || compid !== this.#options.targetComponent) return;
    const message = packet.protocol.data(packet.payload, common.FileTransferProtocol);
    if (message.targetSystem !== 0 && message.targetSystem !== this.#options.systemId) return;
    if (message.targetComponent !== 0 && message.targetComponent !== this.#options.componentId) return;
    const payload = decodePayload(message.payload);
    if (payload) this.emit("ftp", payload);
  }

  #write(
    message: InstanceType<typeof common.FileTransferProtocol> | InstanceType<typeof minimal.Heartbeat>,
  ): void {
    if (!this.#transport) return;
    const frame = this.#protocol.serialize(message, this.#seq);
    this.#seq = (this.#seq + 1) & 0xff;
    this.sent.frames++;
    this.sent.bytes += frame.length;
    this.#transport.write(frame);
  }

  #sendHeartbeat(): void {
    const heartbeat = new minimal.Heartbeat();
    heartbeat.type = minimal.MavType.GCS;
    heartbeat.autopilot = minimal.MavAutopilot.INVALID;
    heartbeat.systemStatus = minimal.MavState.ACTIVE;
    heartbeat.mavlinkVersion = 3;
    this.#write(heartbeat);
  }

  /** Sends one FTP payload to the vehicle. */
  sendFtp(payload: Buffer): void {
    const message = new common.FileTransferProtocol();
    message.targetNetwork = 0;
    message.targetSystem = this.#options.targetSystem;
    message.targetComponent = this.#options.targetComponent;
    message.payload = [...payload];
    this.#write(message);
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#heartbeatTimer);
    this.#transport?.close();
    this.#transport = undefined;
    this.removeAllListeners();
  }
}

async function openUdp(
  address: { kind: "udp" | "udpin"; host: string; port: number },
  feed: (b: Buffer) => void,
): Promise<Transport> {
  const v6 = address.host.includes(":");
  const socket: UdpSocket = createSocket({ type: v6 ? "udp6" : "udp4" });
  let remote: { address: string; port: number } | undefined =
    address.kind === "udp" ? { address: address.host, port: address.port } : undefined;
  socket.on("message", (bytes, from) => {
    // Listening: answer whoever the vehicle sends from (it may move ports when it reboots).
    if (address.kind === "udpin") remote = { address: from.address, port: from.port };
    feed(bytes);
  });
  // A refused datagram (nobody listens yet) is an ICMP error on Linux; the vehicle may come later.
  socket.on("error", () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    const bound = () => {
      socket.off("error", reject);
      resolve();
    };
    if (address.kind === "udpin") socket.bind(address.port, address.host, bound);
    // A vehicle on this machine (a simulator, a router): nothing else may reach our port.
    else if (/^(127\.|::1$)/.test(address.host)) socket.bind(0, address.host, bound);
    else socket.bind(0, bound);
  });
  return {
    write(frame) {
      if (remote) socket.send(frame, remote.port, remote.address);
    },
    close() {
      socket.close();
    },
  };
}

function openTcp(
  address: { host: string; port: number },
  feed: (b: Buffer) => void,
  logger: Logger,
): Transport {
  let socket: Socket | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  const dial = () => {
    const s = tcpConnect({ host: address.host, port: address.port });
    s.setNoDelay(true);
    s.on("data", feed);
    s.on("error", (error) => {
      logger.debug({ err: error }, "mavlink-ftp: TCP link failed");
    });
    s.on("close", () => {
      if (socket === s) socket = undefined;
      // Requests time out meanwhile; the link comes back by itself when the vehicle does.
      if (!closed) {
        retry = setTimeout(dial, TCP_RETRY_MS);
        retry.unref();
      }
    });
    socket = s;
  };
  dial();
  return {
    write(frame) {
      if (socket && !socket.connecting) socket.write(frame);
    },
    close() {
      closed = true;
      clearTimeout(retry);
      socket?.destroy();
    },
  };
}

async function openSerial(
  address: { path: string; baud: number },
  feed: (b: Buffer) => void,
): Promise<Transport> {
  // Loaded only for serial links: its native binding is not needed otherwise.
  const { SerialPort } = await import("serialport");
  const port = new SerialPort({ path: address.path, baudRate: address.baud, autoOpen: false });
  await new Promise<void>((resolve, reject) => {
    port.open((error) => {
      if (error) reject(error);
      else resolve();
    });
  });
  port.on("data", feed);
  port.on("error", () => undefined);
  return {
    write(frame) {
      if (port.isOpen) port.write(frame);
    },
    close() {
      if (port.isOpen) port.close();
    },
  };
}
