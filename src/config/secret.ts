/** Schema helper for secret options: a non-empty string from ferry.yaml that becomes a Secret. */
import { z } from "zod";
import { Secret } from "../core/secret.ts";

export function secretString() {
  return z
    .string()
    .min(1)
    .transform((value) => new Secret(value));
}
