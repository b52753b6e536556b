/**
 * Opens one logged-in FTP connection: TCP (or implicit TLS), AUTH TLS for explicit FTPS, UTF-8,
 * login, binary mode. Certificates are always checked, against `ca` when given, else against
 * Node's CA store. Failures are FerryErrors that say which step failed.
 */
import { Client, FTPError } from "basic-ftp";
import type { ConnectionOptions } from "node:tls";
import { FerryError } from "../../core/errors.ts";
import type { Secret } from "../../core/secret.ts";
import { ftpError, type FtpAction } from "./errors.ts";

/** Control connection timeout (and the time to open a data connection), in ms. */
export const CONTROL_TIMEOUT_MS = 30_000;

export interface ConnectOptions {
  device: string;
  host: string;
  port: number;
  username: string;
  password: Secret;
  secure: boolean | "implicit";
  /** The CA certificates to trust (PEM), or undefined for Node's store. */
  ca: () => Promise<Buffer | undefined>;
}

export interface Session {
  client: Client;
  /** The server's FEAT answer: command → parameters. */
  features: Map<string, string>;
}

export async function connect(options: ConnectOptions, withFeatures: boolean): Promise<Session> {
  const client = new Client(CONTROL_TIMEOUT_MS);
  let step: FtpAction = "connect";
  try {
    const tls: ConnectionOptions | undefined =
      options.secure === false ? undefined : await tlsOptions(options);
    if (options.secure === "implicit") {
      step = "tls";
      await client.connectImplicitTLS(options.host, options.port, tls);
    } else {
      await client.connect(options.host, options.port);
      if (options.secure) {
        step = "tls";
        await client.useTLS(tls);
      }
    }
    step = "login";
    // Before login too: some servers take names and passwords in UTF-8 only after it.
    await client.sendIgnoringError("OPTS UTF8 ON");
    await client.login(options.username, options.password.reveal());
    step = "connect";
    // TYPE I, OPTS UTF8 ON, PBSZ 0 / PROT P on TLS (data connections encrypted too), MLSD if offered.
    await client.useDefaultSettings();
    const features = withFeatures ? await client.features() : new Map<string, string>();
    return { client, features };
  } catch (error) {
    client.close();
    const failure = ftpError(error, { device: options.device, path: "", action: step });
    const where = `${options.host}:${options.port}`;
    if (failure.code === "AUTH" && step === "login") {
      throw new FerryError(
        "AUTH",
        `${options.device}: ${where} refused the login as "${options.username}" (${said(error)})`,
        { subject: options.device, cause: error },
      );
    }
    throw new FerryError(failure.code, `${failure.message} [${where}]`, {
      subject: options.device,
      cause: error,
      retryable: failure.retryable,
    });
  }
}

async function tlsOptions(options: ConnectOptions): Promise<ConnectionOptions> {
  const ca = await options.ca();
  return {
    // Data connections resume this session under the same identity (basic-ftp issue #166).
    host: options.host,
    rejectUnauthorized: true,
    ...(ca === undefined ? {} : { ca }),
  };
}

const said = (error: unknown) => (error instanceof FTPError ? error.message.trim() : String(error));
