/**
 * Sign-in through an OpenID Connect provider (`server.auth.oidc`, ADR 0017 addendum), with
 * openid-client: the authorization code flow with PKCE (S256), state and nonce.
 *
 * `begin()` gives the provider's authorization URL and the value of a short-lived cookie that
 * binds the flow to this browser: state, nonce and PKCE verifier, signed with a key derived from
 * the client secret (every node of a cluster has it, so the callback may land on any of them).
 * `finish()` checks that cookie against the callback, exchanges the code, validates the ID token,
 * and says who signed in and with which Ferry role; routes/oidc.ts opens the session.
 */
import { createHash, createHmac } from "node:crypto";
import * as client from "openid-client";
import { isRole, ROLES, type Role } from "../auth/roles.ts";
import { sameSecret } from "../auth/secrets.ts";
import { isLoopbackHttp, type OidcConfig } from "../config/index.ts";
import type { Clock } from "../core/clock.ts";
import { FerryError } from "../core/errors.ts";
import { HttpProblem } from "./problems.ts";

export const OIDC_LOGIN_PATH = "/api/v1/session/oidc";
export const OIDC_CALLBACK_PATH = "/api/v1/session/oidc/callback";
/** How long a browser has between leaving for the provider and coming back. */
export const OIDC_FLOW_TTL_MS = 10 * 60_000;
/** Discovery and token requests give up after this long (seconds). */
const PROVIDER_TIMEOUT_S = 10;

/** What the provider vouched for. */
export interface OidcIdentity {
  issuer: string;
  subject: string;
  /** A valid Ferry user name made from the claims, for a first sign-in. */
  name: string;
  /** undefined: the claim maps to no role (and there is no default_role). */
  role: Role | undefined;
  /** The role claim's value as the provider gave it, for messages. */
  claim: unknown;
}

interface Flow {
  state: string;
  nonce: string;
  verifier: string;
  /** When the flow began (ms, the server's clock). */
  at: number;
}

export class OidcLogin {
  readonly config: OidcConfig;
  readonly cookieName: string;
  readonly #clock: Clock;
  readonly #redirectUri: () => string;
  readonly #key: Buffer;
  #discovered: Promise<client.Configuration> | undefined;

  /** `redirectUri` is read at each sign-in: the server's public URL is known once it listens. */
  constructor(config: OidcConfig, options: { clock: Clock; redirectUri: () => string; secure: boolean }) {
    this.config = config;
    this.#clock = options.clock;
    this.#redirectUri = options.redirectUri;
    this.cookieName = options.secure ? "__Host-ferry_oidc" : "ferry_oidc";
    this.#key = createHmac("sha256", config.clientSecret.reveal()).update("ferry oidc flow cookie").digest();
  }

  /** The provider's authorization URL and the flow cookie's value. UNAVAILABLE when the provider is. */
  async begin(): Promise<{ location: string; cookie: string }> {
    const provider = await this.#provider();
    const flow: Flow = {
      state: client.randomState(),
      nonce: client.randomNonce(),
      verifier: client.randomPKCECodeVerifier(),
      at: this.#clock.now(),
    };
    const location = client.buildAuthorizationUrl(provider, {
      redirect_uri: this.#redirectUri(),
      scope: this.config.scopes.join(" "),
      state: flow.state,
      nonce: flow.nonce,
      code_challenge: await client.calculatePKCECodeChallenge(flow.verifier),
      code_challenge_method: "S256",
    });
    return { location: location.href, cookie: this.#seal(flow) };
  }

  /**
   * Checks the callback (its query as received) against the flow cookie, exchanges the code and
   * reads the claims: the ID token's, and the userinfo's when the role claim is not in it.
   */
  async finish(query: string, cookie: string | undefined): Promise<OidcIdentity> {
    const flow = this.#open(cookie);
    const params = new URLSearchParams(query);
    const state = params.get("state");
    // Checked here too (openid-client checks it again) to say plainly what is wrong.
    if (params.get("error") === null && (state === null || !sameSecret(state, flow.state)))
      throw refused(400, "the state of the callback is not the one this browser's sign-in began with");
    const provider = await this.#provider();
    const current = new URL(this.#redirectUri());
    current.search = query;
    let claims: Record<string, unknown>;
    try {
      const tokens = await client.authorizationCodeGrant(provider, current, {
        pkceCodeVerifier: flow.verifier,
        expectedState: flow.state,
        expectedNonce: flow.nonce,
        idTokenExpected: true,
      });
      const idToken = tokens.claims();
      if (!idToken) throw refused(401, "the identity provider answered without an ID token");
      claims = { ...idToken };
      if (!(this.config.roleClaim in claims) && provider.serverMetadata().userinfo_endpoint !== undefined)
        claims = { ...(await client.fetchUserInfo(provider, tokens.access_token, idToken.sub)), ...claims };
    } catch (error) {
      throw providerError(error, this.config.issuer);
    }
    const subject = String(claims.sub);
    const claim = claims[this.config.roleClaim];
    return {
      issuer: provider.serverMetadata().issuer,
      subject,
      name: ferryName(claims, subject),
      role: roleFromClaim(claim, this.config),
      claim,
    };
  }

  /** Discovery, once; a failed one is tried again at the next sign-in. */
  #provider(): Promise<client.Configuration> {
    this.#discovered ??= client
      .discovery(
        new URL(this.config.issuer),
        this.config.clientId,
        undefined,
        client.ClientSecretBasic(this.config.clientSecret.reveal()),
        {
          timeout: PROVIDER_TIMEOUT_S,
          // http only for a provider on this machine (the config refuses it anywhere else).
          // eslint-disable-next-line @typescript-eslint/no-deprecated -- marked so only to stand out; this is its one use
          ...(isLoopbackHttp(new URL(this.config.issuer)) ? { execute: [client.allowInsecureRequests] } : {}),
        },
      )
      .catch((error: unknown) => {
        this.#discovered = undefined;
        throw new FerryError(
          "UNAVAILABLE",
          `cannot use the identity provider ${this.config.issuer} (server.auth.oidc.issuer): ${describe(error)}`,
          { cause: error, subject: "server.auth.oidc.issuer" },
        );
      });
    return this.#discovered;
  }

  #seal(flow: Flow): string {
    const body = Buffer.from(JSON.stringify(flow)).toString("base64url");
    return `${body}.${this.#sign(body)}`;
  }

  #open(cookie: string | undefined): Flow {
    const lost = "this browser has no sign-in under way: start again from GET " + OIDC_LOGIN_PATH;
    if (cookie === undefined || cookie === "") throw refused(400, lost);
    const [body = "", signature = ""] = cookie.split(".");
    if (!sameSecret(signature, this.#sign(body)))
      throw refused(400, "the sign-in cookie was altered or made by another server: start again");
    const flow = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as Flow;
    if (this.#clock.now() - flow.at > OIDC_FLOW_TTL_MS)
      throw refused(400, `the sign-in took more than ${OIDC_FLOW_TTL_MS / 60_000} minutes: start again`);
    return flow;
  }

  #sign(body: string): string {
    return createHmac("sha256", this.#key).update(body).digest("base64url");
  }
}

/** The highest role the claim's values map to (`roles`, else role names), else `default_role`. */
export function roleFromClaim(
  claim: unknown,
  config: Pick<OidcConfig, "roles" | "defaultRole">,
): Role | undefined {
  const values = Array.isArray(claim) ? claim : [claim];
  let best: Role | undefined;
  for (const value of values) {
    if (typeof value !== "string") continue;
    const { roles } = config;
    // Object.hasOwn: a claim value such as "constructor" is no key of the map.
    const role = roles
      ? Object.hasOwn(roles, value)
        ? roles[value]
        : undefined
      : isRole(value)
        ? value
        : undefined;
    if (role !== undefined && (best === undefined || ROLES.indexOf(role) > ROLES.indexOf(best))) best = role;
  }
  return best ?? config.defaultRole;
}

/**
 * The Ferry name of a first sign-in: `preferred_username`, else the e-mail address, with what a
 * Ferry name cannot hold made "-"; else (or when nothing is left) `oidc-` and a digest of `sub`.
 */
export function ferryName(claims: Record<string, unknown>, subject: string): string {
  for (const key of ["preferred_username", "email"]) {
    const value = claims[key];
    if (typeof value !== "string") continue;
    const name = value
      .replace(/[^A-Za-z0-9_.-]+/g, "-")
      .replace(/^[^A-Za-z0-9]+/, "")
      .slice(0, 64);
    if (name !== "") return name;
  }
  return `oidc-${createHash("sha256").update(subject).digest("hex").slice(0, 16)}`;
}

function refused(status: number, detail: string): HttpProblem {
  return new HttpProblem(status, "oidc", "Sign-in through the identity provider failed", detail);
}

/** openid-client's errors as problems: the provider said no, answered wrongly, or was not there. */
function providerError(error: unknown, issuer: string): Error {
  if (error instanceof HttpProblem || error instanceof FerryError) return error;
  if (error instanceof client.AuthorizationResponseError)
    return refused(
      401,
      `the identity provider refused the sign-in: ${error.error}${error.error_description ? ` (${error.error_description})` : ""}`,
    );
  if (error instanceof client.ResponseBodyError)
    return refused(
      401,
      `the identity provider refused the code: ${error.error}${error.error_description ? ` (${error.error_description})` : ""}`,
    );
  if (error instanceof client.ClientError)
    return refused(401, `the identity provider's answer did not check out: ${error.message}`);
  return new FerryError("UNAVAILABLE", `cannot reach the identity provider ${issuer}: ${describe(error)}`, {
    cause: error,
    subject: "server.auth.oidc.issuer",
  });
}

/** An error with its cause's code (fetch says only "fetch failed"). */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
  const detail =
    typeof cause?.code === "string"
      ? cause.code
      : typeof cause?.message === "string"
        ? cause.message
        : undefined;
  return detail === undefined ? error.message : `${error.message} (${detail})`;
}
