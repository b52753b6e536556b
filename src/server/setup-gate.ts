/**
 * The first start of a server without an admin. With FERRY_ADMIN_PASSWORD set, the user `admin`
 * is made with it; else a one-time setup link (`<public_url>/setup?token=…`) is shown on the
 * console, and POST /api/v1/setup with that token makes the first admin, once: when an admin
 * exists, setup refuses for ever (the token is forgotten, and Accounts checks again in the store).
 */
import type { Accounts } from "../auth/accounts.ts";
import { digest, randomSecret, sameSecret } from "../auth/secrets.ts";
import { FerryError } from "../core/errors.ts";

export const FIRST_ADMIN = "admin";

export class SetupGate {
  #digest: string | undefined;

  /**
   * Makes the first admin from `adminPassword`, or opens the gate; returns the setup token to
   * show (undefined when an admin exists or was just made).
   */
  async open(accounts: Accounts, adminPassword: string | undefined): Promise<string | undefined> {
    if (await accounts.hasAdmin()) return undefined;
    if (adminPassword !== undefined && adminPassword !== "") {
      try {
        await accounts.addFirstAdmin(FIRST_ADMIN, adminPassword);
      } catch (error) {
        if (error instanceof FerryError && error.subject === "password")
          throw new FerryError("NAME_INVALID", `FERRY_ADMIN_PASSWORD: ${error.message}`, {
            subject: "FERRY_ADMIN_PASSWORD",
          });
        throw error;
      }
      return undefined;
    }
    const token = randomSecret();
    this.#digest = digest(token);
    return token;
  }

  get isOpen(): boolean {
    return this.#digest !== undefined;
  }

  /** True when `token` is the one shown (in constant time). */
  accepts(token: string): boolean {
    return this.#digest !== undefined && sameSecret(digest(token), this.#digest);
  }

  close(): void {
    this.#digest = undefined;
  }
}
