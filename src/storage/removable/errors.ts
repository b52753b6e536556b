/**
 * The removable adapter's own errors: a volume that is away, was pulled mid-transfer, or could not
 * be mounted. Each names the device and the volume. Filesystem errors on an attached volume are
 * local's (../local/errors.ts: EIO and friends are UNAVAILABLE there too).
 */
import { FerryError, type ErrorCode } from "../../core/errors.ts";

/** How a volume is named in messages: `volume UUID 1234-ABCD`, `volume labelled "DRONE LOGS"`. */
export function volumeWords(spec: { uuid?: string | undefined; label?: string | undefined }): string {
  return spec.uuid !== undefined
    ? `volume UUID ${spec.uuid}`
    : `volume labelled ${JSON.stringify(spec.label)}`;
}

export function notAttached(device: string, volume: string): FerryError {
  return new FerryError("UNAVAILABLE", `${device}: ${volume} is not attached`, { subject: device });
}

export function notMounted(device: string, volume: string, node: string): FerryError {
  return new FerryError(
    "UNAVAILABLE",
    `${device}: ${volume} (${node}) is attached but not mounted; mount it, or set mount: true`,
    { subject: device },
  );
}

/** The volume went away (or moved to another mount) while `path` was being read or written. */
export function detached(device: string, volume: string, path: string, cause?: unknown): FerryError {
  const where = path === "" ? "" : `${path}: `;
  return new FerryError("UNAVAILABLE", `${device}: ${where}${volume} was detached`, {
    subject: path === "" ? device : path,
    cause,
  });
}

export function mountFailed(
  device: string,
  volume: string,
  command: string,
  detail: string,
  code: ErrorCode,
  cause?: unknown,
): FerryError {
  return new FerryError(code, `${device}: cannot mount ${volume}: ${command}: ${detail}`, {
    subject: device,
    cause,
  });
}

export function mountinfoUnreadable(device: string, file: string, cause: unknown): FerryError {
  const missing = cause instanceof Error && "code" in cause && cause.code === "ENOENT";
  return missing
    ? new FerryError(
        "UNSUPPORTED",
        `${device}: ${file} does not exist: removable volumes are found through Linux's mount table`,
        { subject: device, cause },
      )
    : new FerryError("UNAVAILABLE", `${device}: cannot read ${file}`, { subject: device, cause });
}
