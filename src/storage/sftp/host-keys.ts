/**
 * Host key verification, which is never skipped: the server's key must match a pinned SHA-256
 * fingerprint (as `ssh-keygen -lf` prints it) or a known_hosts entry for the host and port. The
 * check runs in the key exchange, before any credential is sent.
 *
 * known_hosts is read the way OpenSSH reads it: comma-separated host patterns with `*`/`?` and
 * `!` negation, `[host]:port` for ports other than 22, hashed names (`|1|salt|hmac`), `@revoked`
 * keys (refused); `@cert-authority` lines are skipped (no certificates here).
 */
import { createHash, createHmac } from "node:crypto";

/** What the check saw: the offered key's fingerprint and type, for messages. */
export interface OfferedKey {
  fingerprint: string;
  type: string;
}

export interface HostKeyCheck {
  /** Called with the server's key blob during the key exchange: true to go on. */
  verify(blob: Buffer): boolean;
  /** Host key algorithms to ask for (the types known for this host), or undefined for ssh2's list. */
  readonly algorithms: string[] | undefined;
  /** The key the server offered last, once it offered one. */
  readonly offered: OfferedKey | undefined;
  /** Why the last offered key was refused. */
  readonly refusal: string | undefined;
}

/** `SHA256:<base64 without padding>` of an SSH public key blob. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** The key type named inside an SSH public key blob (its first string). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return "unknown";
  const length = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + length).toString("latin1");
}

/** A fingerprint as configured, compared without padding and prefix case. */
export function normalizeFingerprint(input: string): string | undefined {
  const match = /^sha256:([A-Za-z0-9+/]{43})=?$/i.exec(input.trim());
  return match ? `SHA256:${match[1] ?? ""}` : undefined;
}

/** Accepts only keys whose fingerprint is one of `pins`. */
export function pinnedHostKey(pins: readonly string[]): HostKeyCheck {
  const wanted = new Set(pins.map((pin) => normalizeFingerprint(pin) ?? pin));
  return checker(undefined, (_blob, fingerprint) =>
    wanted.has(fingerprint) ? undefined : `not the pinned host_key ${[...wanted].join(" or ")}`,
  );
}

interface KnownKey {
  type: string;
  blob: Buffer;
  revoked: boolean;
}

/** Accepts keys known_hosts lists for `host` (and `port`), unless listed as @revoked. */
export function knownHostsCheck(text: string, file: string, host: string, port: number): HostKeyCheck {
  const keys = knownKeysFor(text, host, port);
  const lookup = port === 22 ? host : `[${host}]:${port}`;
  const trusted = keys.filter((k) => !k.revoked);
  const types = [...new Set(trusted.flatMap((k) => algorithmsFor(k.type)))];
  return checker(types.length > 0 ? types : undefined, (blob) => {
    if (keys.some((k) => k.revoked && k.blob.equals(blob))) return `a key revoked in ${file}`;
    if (trusted.some((k) => k.blob.equals(blob))) return undefined;
    return trusted.length === 0
      ? `and ${file} has no key for ${lookup} (unknown host: add it, or pin host_key)`
      : `which does not match the key ${file} has for ${lookup} (the key changed, or this is not that server)`;
  });
}

function checker(
  algorithms: string[] | undefined,
  refuse: (blob: Buffer, fingerprint: string) => string | undefined,
): HostKeyCheck {
  const state: { offered?: OfferedKey; refusal?: string } = {};
  return {
    algorithms,
    get offered() {
      return state.offered;
    },
    get refusal() {
      return state.refusal;
    },
    verify(blob) {
      const fingerprint = fingerprintOf(blob);
      state.offered = { fingerprint, type: keyTypeOf(blob) };
      const refusal = refuse(blob, fingerprint);
      if (refusal === undefined) delete state.refusal;
      else state.refusal = refusal;
      return refusal === undefined;
    },
  };
}

/** Host key algorithms that make a server present a key of this known_hosts type. */
function algorithmsFor(type: string): string[] {
  if (type === "ssh-rsa") return ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"];
  if (["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"].includes(type))
    return [type];
  return [];
}

/** The keys of the lines of a known_hosts file that match `host` on `port`. */
export function knownKeysFor(text: string, host: string, port: number): KnownKey[] {
  const names = port === 22 ? [host] : [`[${host}]:${port}`];
  const keys: KnownKey[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const fields = line.split(/\s+/);
    let marker: string | undefined;
    if (fields[0]?.startsWith("@")) marker = fields.shift();
    if (marker !== undefined && marker !== "@revoked") continue; // @cert-authority: not supported
    const [patterns, type, base64] = fields;
    if (patterns === undefined || type === undefined || base64 === undefined) continue;
    if (!names.some((name) => hostMatches(patterns, name))) continue;
    const blob = Buffer.from(base64, "base64");
    if (blob.length === 0 || keyTypeOf(blob) !== type) continue;
    keys.push({ type, blob, revoked: marker === "@revoked" });
  }
  return keys;
}

/** OpenSSH's match_hostname: a negated pattern that matches wins, else any positive match. */
function hostMatches(patterns: string, name: string): boolean {
  if (patterns.startsWith("|1|")) return hashedMatches(patterns, name);
  let matched = false;
  for (const pattern of patterns.split(",")) {
    const negated = pattern.startsWith("!");
    if (!globMatches(negated ? pattern.slice(1) : pattern, name.toLowerCase())) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

function hashedMatches(field: string, name: string): boolean {
  const [, , salt, hash] = field.split("|");
  if (salt === undefined || hash === undefined) return false;
  const digest = createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64");
  return digest === hash;
}

function globMatches(pattern: string, name: string): boolean {
  const regex = pattern
    .toLowerCase()
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${regex}$`).test(name);
}
