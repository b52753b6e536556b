/**
 * One S3 client per device: kept-alive sockets (enough for every transfer's parts at once), no SDK
 * retries (the task runner retries), no default CRC32 trailers (RGW and other S3 servers refuse
 * streamed aws-chunked bodies with them), every request cancellable and its errors translated.
 */
import { S3Client } from "@aws-sdk/client-s3";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { throwIfAborted } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import type { Secret } from "../../core/secret.ts";
import { s3Error } from "./errors.ts";
import type { Keys } from "./keys.ts";
import { PartBudget } from "./part-budget.ts";

export interface ClientOptions {
  endpoint: string | undefined;
  region: string;
  accessKeyId: string;
  secretAccessKey: Secret;
  forcePathStyle: boolean;
  /** Sockets kept: every transfer at once, each with its parts in flight, plus a few for stat and list. */
  sockets: number;
  /** Part buffers all uploads of the device may fill at once. */
  partBuffers: number;
}

/** Socket inactivity after which a request fails (TRANSIENT): a server that stopped answering, a source that stalled. */
const IDLE_MS = 120_000;
/** A connection not established by then is an unreachable server (UNAVAILABLE). */
const CONNECT_MS = 10_000;
/**
 * Kept-alive sockets idle this long are closed by us, before the server's own idle timeout (RGW
 * beast: 65 s, AWS: ~20 s) can close one under a request just sent on it.
 */
const FREE_SOCKET_MS = 15_000;

/** The SDK's own notes (it would print them on the console) as debug lines of ours. */
function sdkLogger(logger: Logger) {
  const note = (...content: unknown[]) => logger.debug({ sdk: content.map(String).join(" ") }, "s3 sdk");
  return { trace: note, debug: note, info: note, warn: note, error: note };
}

/** What every part of the adapter needs to talk to the bucket. */
export class S3Session {
  readonly client: S3Client;
  readonly bucket: string;
  readonly name: string;
  readonly keys: Keys;
  readonly logger: Logger;
  readonly partBudget: PartBudget;
  readonly #agent: HttpAgent | HttpsAgent;

  constructor(options: ClientOptions, bucket: string, name: string, keys: Keys, logger: Logger) {
    this.bucket = bucket;
    this.name = name;
    this.keys = keys;
    this.logger = logger;
    this.partBudget = new PartBudget(options.partBuffers);
    const secure = options.endpoint === undefined || options.endpoint.startsWith("https:");
    const agentOptions = { keepAlive: true, maxSockets: options.sockets, timeout: FREE_SOCKET_MS };
    this.#agent = secure ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
    this.client = new S3Client({
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      region: options.region,
      forcePathStyle: options.forcePathStyle,
      credentials: {
        accessKeyId: options.accessKeyId,
        secretAccessKey: options.secretAccessKey.reveal(),
      },
      maxAttempts: 1,
      // Without a logger of its own the SDK prints some failures on the console.
      logger: sdkLogger(logger),
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      requestHandler: {
        ...(secure ? { httpsAgent: this.#agent } : { httpAgent: this.#agent }),
        connectionTimeout: CONNECT_MS,
        socketTimeout: IDLE_MS,
        // Requests queued for a socket are expected (parts wait for their turn): not worth a warning.
        socketAcquisitionWarningTimeout: 24 * 3600_000,
        logger: sdkLogger(logger),
      },
    });
  }

  /**
   * Runs one request (`send` gets the options for `client.send`), rejecting with ABORTED when the
   * signal fires and with a translated FerryError for anything else.
   */
  async call<T>(
    operation: string,
    path: string,
    signal: AbortSignal | undefined,
    send: (options: { abortSignal?: AbortSignal }) => Promise<T>,
  ): Promise<T> {
    throwIfAborted(signal);
    try {
      return await send(signal ? { abortSignal: signal } : {});
    } catch (error) {
      throw s3Error(error, { storage: this.name, bucket: this.bucket, operation, path, signal });
    }
  }

  close(): void {
    this.client.destroy();
    this.#agent.destroy();
  }
}
