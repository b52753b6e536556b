/**
 * Data transfers on one basic-ftp connection, with what basic-ftp's own uploadFrom/downloadTo do
 * not give: an upload whose data connection breaks waits for the server's reply on the control
 * connection, which says why (vsftpd resets the data connection when the disk is full, then
 * answers 451); a download is handed out only once the server said 150, so a missing file is an
 * error of `read` itself, and its stream ends only when both the data and the 226 arrived.
 *
 * A connection whose transfer failed is in an unknown state (a late reply could be taken for the
 * answer to the next command): callers close it.
 */
import type { Client, FTPResponse } from "basic-ftp";
import type { Socket } from "node:net";
import { PassThrough, pipeline, type Readable } from "node:stream";
import type { TLSSocket } from "node:tls";

/** How long a broken upload waits for the server to say why, in ms. */
const REPLY_GRACE_MS = 5_000;
/** A data connection that moves nothing this long while we wait for the server has stalled, in ms. */
const STALL_MS = 60_000;
const TICK_MS = 1_000;

type DataSocket = Socket | TLSSocket;

/** Opens the passive data connection and takes its errors away from basic-ftp's close-all handlers. */
async function openData(client: Client): Promise<DataSocket> {
  await client.prepareTransfer(client.ftp);
  const data = client.ftp.dataSocket;
  if (!data) throw new Error("no data connection after EPSV/PASV");
  for (const event of ["error", "close", "timeout"]) data.removeAllListeners(event);
  return data;
}

/**
 * Calls `start` once the data connection can carry bytes (TLS: after its handshake). An empty
 * upload waits for the server's session ticket too (or 100 ms, TLS 1.2 may send none): vsftpd
 * fails a TLS data connection closed right after the handshake (426 on TLS 1.2, a plaintext
 * "500 OOPS" on the control connection with TLS 1.3), which is what an empty upload does.
 */
function whenReady(data: DataSocket, empty: boolean, start: () => void): void {
  if (!("getCipher" in data)) return start();
  // getCipher() is undefined until the handshake is done (typed as always there).
  const cipher: unknown = data.getCipher();
  if (!empty) {
    if (cipher) start();
    else data.once("secureConnect", start);
    return;
  }
  let started = false;
  const go = () => {
    if (started) return;
    started = true;
    clearTimeout(timer);
    start();
  };
  data.once("session", go);
  const timer = setTimeout(go, 100);
}

/** Fails the transfer when `idle()` holds for STALL_MS in a row. */
function watchdog(idle: () => boolean, onStall: () => void): NodeJS.Timeout {
  let idleMs = 0;
  const timer = setInterval(() => {
    idleMs = idle() ? idleMs + TICK_MS : 0;
    if (idleMs >= STALL_MS) onStall();
  }, TICK_MS);
  timer.unref();
  return timer;
}

/**
 * Sends `source` with STOR or APPE and resolves on the server's 2xx once all of it went. Rejects
 * with the source's own error when the source failed (`hooks.sourceError`), else with the server's
 * reply or the socket's error. `hooks.onStart` is called as the first byte is about to go.
 */
export async function upload(
  client: Client,
  command: "STOR" | "APPE",
  remotePath: string,
  source: Readable,
  hooks: { empty: boolean; sourceError: () => Error | undefined; onStart: () => void },
): Promise<FTPResponse> {
  const ftp = client.ftp;
  const data = await openData(client);
  let socketError: Error | undefined;
  data.on("error", (error: Error) => (socketError ??= error));
  let started = false;
  let sent = false;
  let reply: FTPResponse | undefined;
  let broken: Error | undefined;
  let grace: NodeJS.Timeout | undefined;
  let stall: NodeJS.Timeout | undefined;
  const stop = () => {
    clearTimeout(grace);
    clearInterval(stall);
    ftp.dataSocket = undefined;
  };
  // handle() is typed Promise<any>: it gives what the handler resolves, an FTPResponse here.
  return ftp.handle(`${command} ${remotePath}`, (res, task): void => {
    const fail = (error: Error) => {
      stop();
      task.reject(error);
    };
    if (res instanceof Error) return fail(res);
    if (res.code === 150 || res.code === 125) {
      if (started) return;
      started = true;
      // A long upload leaves the control connection idle: its timeout must not fire meanwhile.
      ftp.socket.setTimeout(0);
      stall = watchdog(
        () => data.writableNeedDrain,
        () => ftp.closeWithError(new Error("Timeout (data socket): the server takes no more data")),
      );
      whenReady(data, hooks.empty, () => {
        hooks.onStart();
        pipeline(source, data, (error) => {
          ftp.socket.setTimeout(ftp.timeout);
          if (!error) {
            sent = true;
            if (reply) {
              stop();
              task.resolve(reply);
            }
            return;
          }
          const own = hooks.sourceError();
          if (own) return fail(own);
          // The server broke the data connection: its reply says why, if one comes.
          broken = socketError ?? error;
          const why = broken;
          grace = setTimeout(() => fail(why), REPLY_GRACE_MS);
        });
      });
      return;
    }
    if (res.code >= 200 && res.code < 300) {
      // "Transfer complete" after a broken data connection means "stored what I got".
      if (broken) return fail(broken);
      reply = res;
      if (sent) {
        stop();
        task.resolve(res);
      }
      return;
    }
    if (res.code >= 300) fail(new Error(`unexpected reply to ${command}: ${res.message}`));
  }) as Promise<FTPResponse>;
}

export interface Download {
  /** The file's bytes from the offset on; errors when the transfer fails. */
  stream: Readable;
  /** Settles when the transfer is over: fulfilled once all data and the 226 arrived. */
  done: Promise<void>;
}

/**
 * Starts RETR (after REST when `offset` > 0) and resolves once the server sent 150, with a stream
 * that ends only after the data connection ended and the server confirmed the transfer; a failure
 * before 150 rejects with the raw error, one after it destroys the stream with `mapError`'s.
 */
export async function download(
  client: Client,
  remotePath: string,
  offset: number,
  mapError: (error: unknown) => Error,
): Promise<Download> {
  const ftp = client.ftp;
  const data = await openData(client);
  // Before the 150 an error of the data connection is the server's to explain (its reply comes).
  data.on("error", () => undefined);
  const stream = new PassThrough();
  let opened: ((download: Download) => void) | undefined;
  let refused: ((error: Error) => void) | undefined;
  const ready = new Promise<Download>((resolve, reject) => {
    opened = resolve;
    refused = reject;
  });
  let started = false;
  let ended = false;
  let reply: FTPResponse | undefined;
  let stall: NodeJS.Timeout | undefined;
  const done = ftp.handle(offset > 0 ? `REST ${offset}` : `RETR ${remotePath}`, (res, task) => {
    const fail = (error: Error) => {
      clearInterval(stall);
      ftp.dataSocket = undefined;
      if (started) stream.destroy(mapError(error));
      else refused?.(error);
      task.reject(error);
    };
    const finish = () => {
      if (!ended || !reply) return;
      clearInterval(stall);
      ftp.dataSocket = undefined;
      stream.end();
      task.resolve(undefined);
    };
    if (res instanceof Error) return fail(res);
    if (res.code === 350) {
      ftp.send(`RETR ${remotePath}`);
      return;
    }
    if (res.code === 150 || res.code === 125) {
      if (started) return;
      started = true;
      // A slow reader leaves the control connection idle: its timeout must not fire meanwhile.
      ftp.socket.setTimeout(0);
      data.on("error", fail);
      const onEnd = () => {
        ended = true;
        ftp.socket.setTimeout(ftp.timeout);
        finish();
      };
      // An empty file's data connection may have ended before the 150 was read.
      if (data.readableEnded) setImmediate(onEnd);
      else data.once("end", onEnd);
      let lastBytes = -1;
      stall = watchdog(
        () => {
          const moved = data.bytesRead !== lastBytes;
          lastBytes = data.bytesRead;
          return !moved && !data.isPaused();
        },
        () => ftp.closeWithError(new Error("Timeout (data socket): the server sends no data")),
      );
      data.pipe(stream, { end: false });
      opened?.({ stream, done });
      return;
    }
    if (res.code >= 200 && res.code < 300) {
      reply = res;
      return finish();
    }
    if (res.code >= 300) fail(new Error(`unexpected reply to RETR: ${res.message}`));
  }) as Promise<void>;
  // `ready` settles first either way; a failure after it reaches the stream and `done`.
  done.catch(() => undefined);
  return ready;
}
