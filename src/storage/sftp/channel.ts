/**
 * One SFTP channel (ssh2's SFTPWrapper) with promise-returning calls. Errors are ssh2's own (an
 * SFTP status in `code`, or a connection failure): callers translate them with the Ferry path.
 * A request sent on a channel that already closed would never be answered, so calls on a closed
 * channel fail at once.
 */
import type { FileEntryWithStats, InputAttributes, SFTPWrapper, Stats } from "ssh2";

/** statvfs@openssh.com's answer (the fields Ferry reads). */
export interface FsInfo {
  f_frsize: number;
  f_blocks: number;
  f_bfree: number;
  f_bavail: number;
  f_favail: number;
}

export class ChannelClosed extends Error {
  constructor() {
    super("the SFTP channel is closed (connection lost)");
    this.name = "ChannelClosed";
  }
}

type Done<T> = (error: Error | undefined | null, value: T) => void;

export class Channel {
  readonly #sftp: SFTPWrapper;
  readonly extensions: Readonly<Record<string, string>>;
  /**
   * The longest WRITE ssh2 sends as one request (OpenSSH's limits@openssh.com, else ~32 KiB).
   * Up to it, ssh2 copies the data into the packet at once, so the caller's buffer is free again.
   */
  readonly maxWriteBytes: number;
  #closed = false;

  constructor(sftp: SFTPWrapper, onClose: () => void) {
    this.#sftp = sftp;
    // ssh2 keeps these on the wrapper without public getters.
    const raw = sftp as unknown as { _extensions?: Record<string, string>; _maxWriteLen?: number };
    this.extensions = Object.freeze({ ...(raw._extensions ?? {}) });
    this.maxWriteBytes = raw._maxWriteLen ?? 32 * 1024;
    // A garbled packet: ssh2 emits "error", then closes the channel (and fails its requests).
    sftp.on("error", () => undefined);
    sftp.once("close", () => {
      this.#closed = true;
      onClose();
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  #call<T>(send: (done: Done<T>) => void): Promise<T> {
    if (this.#closed) return Promise.reject(new ChannelClosed());
    return new Promise<T>((resolve, reject) => {
      try {
        send((error, value) => (error ? reject(error) : resolve(value)));
      } catch (error) {
        // ssh2 throws synchronously for an extension the server lacks, or a closed channel.
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  open(path: string, flags: number, attrs: InputAttributes = {}): Promise<Buffer> {
    return this.#call<Buffer>((done) => this.#sftp.open(path, flags, attrs, done));
  }

  close(handle: Buffer): Promise<void> {
    return this.#call<undefined>((done) => this.#sftp.close(handle, (e) => done(e, undefined)));
  }

  /** Writes `length` bytes of `buffer` from `offset` at `position` (ssh2 copies them at once). */
  write(handle: Buffer, buffer: Buffer, offset: number, length: number, position: number): Promise<void> {
    return this.#call<undefined>((done) =>
      this.#sftp.write(handle, buffer, offset, length, position, (e) => done(e, undefined)),
    );
  }

  /** Bytes read into `buffer` at `offset`; 0 at the end of the file. */
  read(handle: Buffer, buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
    return this.#call<number>((done) =>
      this.#sftp.read(handle, buffer, offset, length, position, (e, bytes) => done(e, bytes)),
    );
  }

  fstat(handle: Buffer): Promise<Stats> {
    return this.#call<Stats>((done) => this.#sftp.fstat(handle, done));
  }

  fsetstat(handle: Buffer, attrs: InputAttributes): Promise<void> {
    return this.#call<undefined>((done) => this.#sftp.fsetstat(handle, attrs, (e) => done(e, undefined)));
  }

  stat(path: string): Promise<Stats> {
    return this.#call<Stats>((done) => this.#sftp.stat(path, done));
  }

  lstat(path: string): Promise<Stats> {
    return this.#call<Stats>((done) => this.#sftp.lstat(path, done));
  }

  setstat(path: string, attrs: InputAttributes): Promise<void> {
    return this.#call<undefined>((done) => this.#sftp.setstat(path, attrs, (e) => done(e, undefined)));
  }

  readdir(path: string): Promise<FileEntryWithStats[]> {
    return this.#call<FileEntryWithStats[]>((done) => this.#sftp.readdir(path, done));
  }

  mkdir(path: string): Promise<void> {
    return this.#call<undefined>((done) => this.#sftp.mkdir(path, (e) => done(e, undefined)));
  }

  rmdir(path: string): Promise<void> {
    return this.#call<undefined>((done) => this.#sftp.rmdir(path, (e) => done(e, undefined)));
  }

  unlink(path: string): Promise<void> {
    return this.#call<undefined>((done) => this.#sftp.unlink(path, (e) => done(e, undefined)));
  }

  realpath(path: string): Promise<string> {
    return this.#call<string>((done) => this.#sftp.realpath(path, done));
  }

  /** Whether the server offers posix-rename@openssh.com (rename that replaces, atomically). */
  get posixRename(): boolean {
    return this.extensions["posix-rename@openssh.com"] === "1";
  }

  /** SFTP v3 rename: fails when `to` exists. */
  rename(from: string, to: string): Promise<void> {
    return this.#call<undefined>((done) => this.#sftp.rename(from, to, (e) => done(e, undefined)));
  }

  /** rename(2) on the server: replaces `to` atomically. Only where `posixRename`. */
  posixRenameTo(from: string, to: string): Promise<void> {
    return this.#call<undefined>((done) =>
      this.#sftp.ext_openssh_rename(from, to, (e) => done(e, undefined)),
    );
  }

  get statvfs(): boolean {
    return this.extensions["statvfs@openssh.com"] === "2";
  }

  fsInfo(path: string): Promise<FsInfo> {
    return this.#call<FsInfo>((done) =>
      this.#sftp.ext_openssh_statvfs(path, (e, info: FsInfo) => done(e, info)),
    );
  }

  /** Closes the channel (its pending requests fail). */
  end(): void {
    this.#closed = true;
    this.#sftp.end();
  }
}
