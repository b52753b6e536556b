/** Passwords, hashed with argon2id (OWASP's parameters: 19 MiB, 2 passes, 1 lane). */
import { hash, verify } from "@node-rs/argon2";
import { FerryError } from "../core/errors.ts";

export const PASSWORD_MIN_LENGTH = 8;
/** Long enough for any passphrase, short enough that hashing it costs nothing extra. */
export const PASSWORD_MAX_LENGTH = 1024;

const OPTIONS = { memoryCost: 19_456, timeCost: 2, parallelism: 1 };

/** Throws NAME_INVALID naming `field` when the password is too short or too long. */
export function checkPassword(password: string, field = "password"): void {
  if (password.length < PASSWORD_MIN_LENGTH)
    throw new FerryError("NAME_INVALID", `${field} must be at least ${PASSWORD_MIN_LENGTH} characters`, {
      subject: field,
    });
  if (password.length > PASSWORD_MAX_LENGTH)
    throw new FerryError("NAME_INVALID", `${field} must be at most ${PASSWORD_MAX_LENGTH} characters`, {
      subject: field,
    });
}

/** The argon2id PHC string of a password (salted: two hashes of one password differ). */
export function hashPassword(password: string): Promise<string> {
  return hash(password, OPTIONS);
}

/** Compares in constant time; a malformed stored hash is a mismatch, never a crash. */
export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  try {
    return await verify(stored, password);
  } catch {
    return false;
  }
}

/** Checked against when the user does not exist, so that an unknown name takes as long as a known one. */
let decoy: Promise<string> | undefined;
export function decoyHash(): Promise<string> {
  decoy ??= hashPassword("ferry decoy password, never anyone's");
  return decoy;
}
