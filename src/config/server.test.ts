import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ROLES } from "../auth/roles.ts";
import { parseListen, SERVER_ROLES } from "./server.ts";
import { brief, configError, parse, problemAt } from "./test-fixtures.ts";

describe("server: in ferry.yaml", () => {
  it("is absent unless written; `server:` alone means the defaults", () => {
    assert.equal(parse("data_dir: ./d\n").server, undefined);
    assert.deepEqual(parse("server:\n").server, {
      listen: { host: "127.0.0.1", port: 8080 },
      trustProxy: false,
    });
  });

  it("takes listen, public_url and trust_proxy", () => {
    const config = parse(
      "server:\n  listen: '[::1]:9000'\n  public_url: https://ferry.example.com/\n  trust_proxy: 10.0.0.1, 10.0.0.2\n",
    );
    assert.deepEqual(config.server, {
      listen: { host: "::1", port: 9000 },
      publicUrl: "https://ferry.example.com",
      trustProxy: ["10.0.0.1", "10.0.0.2"],
    });
    assert.equal(parse("server: { trust_proxy: 1 }\n").server?.trustProxy, 1);
  });

  it("names the field at fault, with its line", () => {
    const error = configError(() =>
      parse(
        [
          "server:",
          "  listen: localhost",
          "  public_url: ftp://x",
          "  trust_proxy: -2",
          "  tls: { cert_file: ./c.pem }",
          "  port: 80",
        ].join("\n"),
      ),
    );
    assert.match(problemAt(error.problems, "server.listen").message, /expected HOST:PORT/);
    assert.equal(problemAt(error.problems, "server.listen").line, 2);
    assert.match(problemAt(error.problems, "server.public_url").message, /http:\/\/ or https:\/\//);
    assert.match(problemAt(error.problems, "server.trust_proxy").message, /hop count/);
    assert.match(problemAt(error.problems, "server.tls.key_file").message, /required/);
    assert.match(
      problemAt(error.problems, "server.port").message,
      /unknown key "port"; known keys: listen, public_url, tls, trust_proxy, auth/,
    );
    assert.equal(error.problems.length, 5, brief(error.problems).join("\n"));
  });

  describe("tls", () => {
    let dir: string;
    after(() => rm(dir, { recursive: true, force: true }));

    it("resolves the files next to ferry.yaml and says which one is missing", async () => {
      dir = await mkdtemp(join(tmpdir(), "ferry-server-config-"));
      await writeFile(join(dir, "cert.pem"), "x");
      const file = join(dir, "ferry.yaml");
      const error = configError(() =>
        parse("server:\n  tls:\n    cert_file: ./cert.pem\n    key_file: ./key.pem\n", {}, file),
      );
      assert.deepEqual(brief(error.problems), [
        `4:15 server.tls.key_file: ${join(dir, "key.pem")} not found`,
      ]);
      await writeFile(join(dir, "key.pem"), "x");
      const config = parse("server:\n  tls: { cert_file: ./cert.pem, key_file: ./key.pem }\n", {}, file);
      assert.deepEqual(config.server?.tls, {
        certFile: join(dir, "cert.pem"),
        keyFile: join(dir, "key.pem"),
      });
    });
  });

  describe("auth.oidc", () => {
    const oidc = (lines: string[]) =>
      `server:\n  auth:\n    oidc:\n${lines.map((l) => `      ${l}\n`).join("")}`;

    it("takes the provider and client, the secret from the environment, with defaults", () => {
      const config = parse(
        oidc([
          "issuer: https://login.example.com/realms/lab",
          "client_id: ferry",
          "client_secret: ${OIDC_SECRET}",
        ]),
        { env: { OIDC_SECRET: "s3cret-from-env" } },
      );
      const got = config.server?.oidc;
      assert.ok(got);
      assert.equal(got.clientSecret.reveal(), "s3cret-from-env");
      assert.equal(String(got.clientSecret), "[redacted]");
      assert.deepEqual(
        { ...got, clientSecret: undefined },
        {
          issuer: "https://login.example.com/realms/lab",
          clientId: "ferry",
          clientSecret: undefined,
          roleClaim: "ferry_role",
          scopes: ["openid", "profile"],
        },
      );
    });

    it("takes a role claim, a roles map, a default role and scopes (openid always among them)", () => {
      const got = parse(
        oidc([
          "issuer: http://127.0.0.1:9000",
          "client_id: ferry",
          "client_secret: x",
          "role_claim: groups",
          "roles: { lab-admins: admin, technicians: operator }",
          "default_role: viewer",
          "scopes: profile, groups",
        ]),
      ).server?.oidc;
      assert.equal(got?.roleClaim, "groups");
      assert.deepEqual(got.roles, { "lab-admins": "admin", technicians: "operator" });
      assert.equal(got.defaultRole, "viewer");
      assert.deepEqual(got.scopes, ["openid", "profile", "groups"]);
      assert.deepEqual(
        parse(oidc(["issuer: http://localhost:1", "client_id: a", "client_secret: b", "scopes: [openid, x]"]))
          .server?.oidc?.scopes,
        ["openid", "x"],
      );
    });

    it("names each field at fault", () => {
      const error = configError(() =>
        parse(
          oidc([
            "issuer: http://login.example.com",
            "client_secret: ${NOT_SET}",
            "roles: { techs: superuser }",
            "default_role: root",
            "scopes: []",
            "role_claim: ''",
            "redirect_uri: x",
          ]),
          { env: {} },
        ),
      );
      assert.match(
        problemAt(error.problems, "server.auth.oidc.issuer").message,
        /must be https:\/\/ \(http:\/\/ only on this machine/,
      );
      assert.match(problemAt(error.problems, "server.auth.oidc.client_id").message, /required/);
      assert.match(problemAt(error.problems, "server.auth.oidc.client_secret").message, /NOT_SET is not set/);
      assert.match(
        problemAt(error.problems, "server.auth.oidc.roles.techs").message,
        /expected one of viewer, user, operator, admin/,
      );
      assert.match(problemAt(error.problems, "server.auth.oidc.default_role").message, /expected one of/);
      assert.match(problemAt(error.problems, "server.auth.oidc.scopes").message, /list at least one scope/);
      assert.match(problemAt(error.problems, "server.auth.oidc.role_claim").message, /must not be empty/);
      assert.match(
        problemAt(error.problems, "server.auth.oidc.redirect_uri").message,
        /unknown key "redirect_uri"; known keys: issuer, client_id, client_secret, role_claim, roles, default_role, scopes/,
      );
      const auth = configError(() => parse("server:\n  auth:\n    saml: {}\n"));
      assert.match(problemAt(auth.problems, "server.auth.saml").message, /known keys: oidc/);
    });

    it("knows the roles the server knows", () => {
      assert.deepEqual(SERVER_ROLES, ROLES);
    });
  });

  it("parses listen addresses as --listen takes them", () => {
    assert.deepEqual(parseListen("0.0.0.0:80"), { host: "0.0.0.0", port: 80 });
    assert.deepEqual(parseListen("127.0.0.1:0"), { host: "127.0.0.1", port: 0 });
    assert.match(JSON.stringify(parseListen(":80")), /expected HOST:PORT/);
    assert.match(JSON.stringify(parseListen("h:70000")), /out of range/);
    assert.match(JSON.stringify(parseListen("::1:80")), /expected HOST:PORT/);
  });
});
