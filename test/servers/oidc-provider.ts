/**
 * A real OpenID Connect provider for tests: the `oidc-provider` package on 127.0.0.1, port 0,
 * with its development login and consent pages (any password), one confidential client and
 * accounts whose claims a test changes between sign-ins.
 *
 *   const idp = await startOidcProvider();            // listening: idp.issuer is known
 *   ... start Ferry with issuer: idp.issuer ...
 *   idp.register({ clientId, clientSecret, redirectUri: ferryUrl + "/api/v1/session/oidc/callback" });
 *   idp.accounts.set("ada", { preferred_username: "ada", ferry_role: "technicians" });
 *   after(() => idp.close());
 *
 * Ferry's URL is known only once Ferry listens, and Ferry needs the issuer first: so the provider
 * listens at once and takes its client later.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import Provider from "oidc-provider";

export interface TestOidcProvider {
  /** http://127.0.0.1:PORT */
  issuer: string;
  /** sub → claims given at each sign-in (changed by tests). */
  accounts: Map<string, Record<string, unknown>>;
  register(client: { clientId: string; clientSecret: string; redirectUri: string }): void;
  close(): Promise<void>;
}

export async function startOidcProvider(): Promise<TestOidcProvider> {
  let handler: ((request: IncomingMessage, response: ServerResponse) => void) | undefined;
  const server = createServer((request, response) => {
    if (handler) handler(request, response);
    else response.writeHead(503).end("no client registered yet");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const accounts = new Map<string, Record<string, unknown>>();
  const signingKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" });

  return {
    issuer,
    accounts,
    register({ clientId, clientSecret, redirectUri }) {
      const provider = new Provider(issuer, {
        clients: [
          {
            client_id: clientId,
            client_secret: clientSecret,
            redirect_uris: [redirectUri],
            response_types: ["code"],
            grant_types: ["authorization_code"],
            token_endpoint_auth_method: "client_secret_basic",
          },
        ],
        // The role claim comes with a scope of its own, as providers commonly do it.
        claims: { openid: ["sub"], profile: ["preferred_username", "email"], ferry: ["ferry_role"] },
        findAccount: (_ctx, sub) => {
          const claims = accounts.get(sub);
          return claims && { accountId: sub, claims: () => ({ ...claims, sub }) };
        },
        jwks: { keys: [{ ...signingKey, kid: "test", alg: "RS256", use: "sig" }] },
        cookies: { keys: [randomBytes(16).toString("hex")] },
        features: { devInteractions: { enabled: true } },
        pkce: { required: () => true },
      });
      const callback = provider.callback();
      handler = (request, response) => void callback(request, response);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
