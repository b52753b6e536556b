/**
 * A secret value (password, API key). It cannot leak by accident: printing, logging, inspecting or
 * serializing it shows "[redacted]"; only `reveal()` gives the value, at the point of use.
 */
import { inspect } from "node:util";
import { z } from "zod";

const REDACTED = "[redacted]";

export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}

/** Schema for a secret option: a non-empty string in ferry.yaml that becomes a Secret. */
export function secretString() {
  return z
    .string()
    .min(1)
    .transform((value) => new Secret(value));
}
