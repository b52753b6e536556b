/**
 * The vehicle's side of MAVLink FTP over a folder of the host: what PX4's and ArduPilot's FTP
 * servers answer, request by request. One file session (PX4 has one), owned by the ground station
 * that opened it; a request that repeats the last sequence number gets the last answer again
 * without being done twice; answers carry the request's number plus one. BurstReadFile streams
 * the file from the offset to its end, the last packet with burst_complete set, at the pace the
 * link takes them (the caller pulls packets as its transmit buffer drains).
 */
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmdirSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeSync,
  type Stats,
} from "node:fs";
import { join, normalize } from "node:path";
import {
  DATA_BYTES,
  encodePayload,
  formatEntry,
  FTP_ERROR,
  OP,
  VehicleCrc,
  type FtpPayload,
} from "../../core/mavlink-ftp.ts";

export interface FtpServerOptions {
  /** Host folder served as the vehicle's log folder. */
  dir: string;
  /** The vehicle path of that folder ("/fs/microsd/log", "/APM/LOGS"); "@MAV_LOG" names it too. */
  mount: string;
  /** Whether ListDirectoryWithTime is answered (false: UnknownCommand, like older firmware). */
  listWithTime: boolean;
}

interface Session {
  id: number;
  owner: string;
  fd: number;
  path: string;
  writable: boolean;
}

/** A burst in progress: packets are taken from it as the link has room. */
export interface Burst {
  owner: string;
  session: number;
  next: number;
  seq: number;
  chunk: number;
}

export interface ServerStats {
  /** File bytes sent in burst packets and ReadFile answers. */
  fileBytesSent: number;
  requests: number;
  duplicates: number;
}

class Nak extends Error {
  readonly code: number;
  readonly errno: number | undefined;
  constructor(code: number, errno?: number) {
    super(`NAK ${code}`);
    this.code = code;
    this.errno = errno;
  }
}

const errnoOf = (error: unknown): number => {
  const code = (error as NodeJS.ErrnoException).code;
  const numbers: Record<string, number> = {
    ENOENT: 2,
    EEXIST: 17,
    ENOTDIR: 20,
    EISDIR: 21,
    ENOTEMPTY: 39,
    EACCES: 13,
    ENOSPC: 28,
  };
  return (code === undefined ? undefined : numbers[code]) ?? 5;
};

export class FtpServer {
  readonly #options: FtpServerOptions;
  #session: Session | undefined;
  #nextSessionId = 0;
  /** Last request number and answer per ground station (answers to repeats). */
  readonly #last = new Map<string, { seq: number; opcode: number; answer: Buffer | undefined }>();
  burst: Burst | undefined;
  readonly stats: ServerStats = { fileBytesSent: 0, requests: 0, duplicates: 0 };
  /** A second ground station holding the session: the vehicle is busy for everyone else. */
  heldBy: string | undefined;

  constructor(options: FtpServerOptions) {
    this.#options = options;
  }

  /** Forgets everything, as a reboot does. */
  reset(): void {
    if (this.#session) closeSync(this.#session.fd);
    this.#session = undefined;
    this.burst = undefined;
    this.#last.clear();
  }

  get sessionOwner(): string | undefined {
    return this.heldBy ?? this.#session?.owner;
  }

  /** The host path of a vehicle path, or FileNotFound when it is outside the served folder. */
  #host(path: string): string {
    const mount = this.#options.mount.replace(/\/+$/, "");
    let rest: string;
    if (path === "@MAV_LOG" || path.startsWith("@MAV_LOG/")) rest = path.slice("@MAV_LOG".length);
    else if (path === mount || path.startsWith(`${mount}/`)) rest = path.slice(mount.length);
    else throw new Nak(FTP_ERROR.FileNotFound);
    const relative = normalize(`.${rest.startsWith("/") ? rest : `/${rest}`}`);
    if (relative.startsWith("..")) throw new Nak(FTP_ERROR.FileNotFound);
    return join(this.#options.dir, relative);
  }

  #stat(host: string): Stats | undefined {
    try {
      return statSync(host);
    } catch {
      return undefined;
    }
  }

  #pathOf(request: FtpPayload): string {
    const text = request.data.toString("utf8");
    const end = text.indexOf("\0");
    return end < 0 ? text : text.slice(0, end);
  }

  #mySession(owner: string, id: number): Session {
    const session = this.#session;
    if (!session || session.id !== id || session.owner !== owner) throw new Nak(FTP_ERROR.InvalidSession);
    return session;
  }

  #newSession(owner: string, host: string, flags: string, writable: boolean): Session {
    if (this.heldBy !== undefined && this.heldBy !== owner) throw new Nak(FTP_ERROR.NoSessionsAvailable);
    if (this.#session) {
      if (this.#session.owner !== owner) throw new Nak(FTP_ERROR.NoSessionsAvailable);
      // PX4 has one session: a station that opens another while one is open gets Busy as well.
      throw new Nak(FTP_ERROR.NoSessionsAvailable);
    }
    let fd: number;
    try {
      fd = openSync(host, flags);
    } catch (error) {
      const errno = errnoOf(error);
      if (errno === 2 || errno === 20) throw new Nak(FTP_ERROR.FileNotFound);
      throw new Nak(FTP_ERROR.FailErrno, errno);
    }
    this.#nextSessionId = (this.#nextSessionId + 1) & 0xff;
    this.#session = { id: this.#nextSessionId, owner, fd, path: host, writable };
    return this.#session;
  }

  #close(): void {
    if (this.#session) closeSync(this.#session.fd);
    this.#session = undefined;
    this.burst = undefined;
  }

  /**
   * Handles one request from ground station `owner` ("sysid:compid"); returns the answer's payload,
   * or undefined when there is none (a burst starts, or the repeat of a burst already running).
   */
  handle(owner: string, request: FtpPayload): Buffer | undefined {
    this.stats.requests++;
    const last = this.#last.get(owner);
    if (last && last.seq === request.seq && last.opcode === request.opcode) {
      this.stats.duplicates++;
      if (request.opcode !== OP.BurstReadFile) return last.answer;
      if (this.burst?.owner === owner) return undefined;
    }
    let answer: Buffer | undefined;
    try {
      answer = this.#do(owner, request);
    } catch (error) {
      if (!(error instanceof Nak)) throw error;
      const data = Buffer.from(error.errno === undefined ? [error.code] : [error.code, error.errno]);
      answer = encodePayload({
        seq: request.seq + 1,
        opcode: OP.Nak,
        reqOpcode: request.opcode,
        session: request.session,
        data,
      });
    }
    this.#last.set(owner, { seq: request.seq, opcode: request.opcode, answer });
    return answer;
  }

  #ack(request: FtpPayload, fields: Partial<FtpPayload> = {}): Buffer {
    return encodePayload({
      seq: request.seq + 1,
      opcode: OP.Ack,
      reqOpcode: request.opcode,
      session: request.session,
      offset: request.offset,
      ...fields,
    });
  }

  #do(owner: string, request: FtpPayload): Buffer | undefined {
    switch (request.opcode) {
      case OP.None:
        return this.#ack(request);
      case OP.TerminateSession:
        this.#mySession(owner, request.session);
        this.#close();
        return this.#ack(request);
      case OP.ResetSessions:
        // Only this station's: another ground station's transfer goes on (ArduPilot keeps owners).
        if (this.#session?.owner === owner) this.#close();
        return this.#ack(request);
      case OP.ListDirectory:
      case OP.ListDirectoryWithTime:
        if (request.opcode === OP.ListDirectoryWithTime && !this.#options.listWithTime)
          throw new Nak(FTP_ERROR.UnknownCommand);
        return this.#list(request, request.opcode === OP.ListDirectoryWithTime);
      case OP.OpenFileRO: {
        const host = this.#host(this.#pathOf(request));
        const stats = this.#stat(host);
        if (!stats) throw new Nak(FTP_ERROR.FileNotFound);
        if (!stats.isFile()) throw new Nak(FTP_ERROR.FailErrno, 21);
        const session = this.#newSession(owner, host, "r", false);
        const size = Buffer.alloc(4);
        size.writeUInt32LE(stats.size);
        return this.#ack(request, { session: session.id, data: size });
      }
      case OP.ReadFile: {
        const session = this.#mySession(owner, request.session);
        // A read request carries the wanted byte count in `size` (decoded as that many data bytes).
        const want = Math.min(request.data.length || DATA_BYTES, DATA_BYTES);
        const data = Buffer.alloc(want);
        const got = readSync(session.fd, data, 0, want, request.offset);
        if (got === 0) throw new Nak(FTP_ERROR.EOF);
        this.stats.fileBytesSent += got;
        return this.#ack(request, { data: data.subarray(0, got) });
      }
      case OP.BurstReadFile: {
        const session = this.#mySession(owner, request.session);
        const size = statSync(session.path).size;
        if (request.offset >= size) throw new Nak(FTP_ERROR.EOF);
        const chunk = Math.max(1, Math.min(request.data.length || DATA_BYTES, DATA_BYTES));
        this.burst = { owner, session: session.id, next: request.offset, seq: request.seq + 1, chunk };
        return undefined;
      }
      case OP.CreateFile:
      case OP.OpenFileWO: {
        const host = this.#host(this.#pathOf(request));
        const session = this.#newSession(owner, host, request.opcode === OP.CreateFile ? "w" : "a", true);
        return this.#ack(request, { session: session.id });
      }
      case OP.WriteFile: {
        const session = this.#mySession(owner, request.session);
        if (!session.writable) throw new Nak(FTP_ERROR.Fail);
        writeSync(session.fd, request.data, 0, request.data.length, request.offset);
        return this.#ack(request);
      }
      case OP.TruncateFile: {
        const host = this.#host(this.#pathOf(request));
        this.#fs(() => {
          truncateSync(host, request.offset);
        });
        return this.#ack(request);
      }
      case OP.RemoveFile: {
        const host = this.#host(this.#pathOf(request));
        const stats = this.#stat(host);
        if (!stats) throw new Nak(FTP_ERROR.FileNotFound);
        if (stats.isDirectory()) throw new Nak(FTP_ERROR.FailErrno, 21);
        this.#fs(() => {
          unlinkSync(host);
        });
        return this.#ack(request);
      }
      case OP.CreateDirectory: {
        const host = this.#host(this.#pathOf(request));
        if (this.#stat(host)) throw new Nak(FTP_ERROR.FileExists);
        this.#fs(() => {
          mkdirSync(host);
        });
        return this.#ack(request);
      }
      case OP.RemoveDirectory: {
        const host = this.#host(this.#pathOf(request));
        this.#fs(() => {
          rmdirSync(host);
        });
        return this.#ack(request);
      }
      case OP.Rename: {
        const [from = "", to = ""] = request.data.toString("utf8").split("\0");
        const source = this.#host(from);
        const target = this.#host(to);
        this.#fs(() => {
          renameSync(source, target);
        });
        return this.#ack(request);
      }
      case OP.CalcFileCRC32: {
        const host = this.#host(this.#pathOf(request));
        const crc = new VehicleCrc();
        this.#fs(() => {
          const fd = openSync(host, "r");
          try {
            const buffer = Buffer.alloc(64 * 1024);
            for (let at = 0; ;) {
              const got = readSync(fd, buffer, 0, buffer.length, at);
              if (got === 0) break;
              crc.update(buffer.subarray(0, got));
              at += got;
            }
          } finally {
            closeSync(fd);
          }
        });
        const data = Buffer.alloc(4);
        data.writeUInt32LE(crc.value);
        return this.#ack(request, { data });
      }
      default:
        throw new Nak(FTP_ERROR.UnknownCommand);
    }
  }

  /** Runs a filesystem call, answering its errno the way PX4 does. */
  #fs(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      const errno = errnoOf(error);
      if (errno === 2) throw new Nak(FTP_ERROR.FileNotFound);
      if (errno === 17) throw new Nak(FTP_ERROR.FileExists);
      throw new Nak(FTP_ERROR.FailErrno, errno);
    }
  }

  #list(request: FtpPayload, withTime: boolean): Buffer {
    const path = this.#pathOf(request);
    const host = this.#host(path);
    const stats = this.#stat(host);
    if (!stats) throw new Nak(FTP_ERROR.FileNotFound);
    if (!stats.isDirectory()) throw new Nak(FTP_ERROR.FailErrno, 20);
    const names = readdirSync(host).sort();
    if (request.offset >= names.length) throw new Nak(FTP_ERROR.EOF);
    let data = "";
    for (let i = request.offset; i < names.length; i++) {
      const name = names[i] ?? "";
      const entryStats = this.#stat(join(host, name));
      const text =
        !entryStats || name.includes("\t")
          ? formatEntry({ type: "skip" }, withTime)
          : entryStats.isDirectory()
            ? formatEntry({ type: "dir", name }, withTime)
            : formatEntry(
                { type: "file", name, size: entryStats.size, mtime: Math.floor(entryStats.mtimeMs / 1000) },
                withTime,
              );
      if (Buffer.byteLength(data + text) > DATA_BYTES) break;
      data += text;
    }
    return this.#ack(request, { data: Buffer.from(data) });
  }

  /** The next packet of the running burst, or undefined when none runs. */
  nextBurstPacket(): Buffer | undefined {
    const burst = this.burst;
    const session = this.#session;
    if (!burst || !session || session.id !== burst.session) {
      this.burst = undefined;
      return undefined;
    }
    const data = Buffer.alloc(burst.chunk);
    const got = readSync(session.fd, data, 0, burst.chunk, burst.next);
    const size = statSync(session.path).size;
    const offset = burst.next;
    burst.next += got;
    const complete = got === 0 || burst.next >= size;
    if (complete) this.burst = undefined;
    this.stats.fileBytesSent += got;
    const packet = encodePayload({
      seq: burst.seq,
      opcode: OP.Ack,
      reqOpcode: OP.BurstReadFile,
      session: burst.session,
      offset,
      burstComplete: complete,
      data: data.subarray(0, got),
    });
    burst.seq = (burst.seq + 1) & 0xffff;
    return packet;
  }
}
