import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Secret } from "../core/secret.ts";
import { brief, configError, parse, problemAt } from "./test-fixtures.ts";

const PRINTER = "devices:\n  mk4-a: { type: prusalink, url: http://10.0.0.5, password: x, farm: true }\n";

describe("opcua: in ferry.yaml", () => {
  it("is absent unless written; the server alone takes its defaults", () => {
    assert.equal(parse("data_dir: ./d\n").opcua, undefined);
    assert.deepEqual(parse("opcua:\n  server:\n").opcua, {
      server: {
        port: 4840,
        host: "127.0.0.1",
        securityModes: ["None", "Sign", "SignAndEncrypt"],
        securityPolicies: ["Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"],
        anonymous: false,
      },
    });
  });

  it("takes a mirror with a user, a folder, names and an interval", () => {
    const config = parse(
      `${PRINTER}opcua:\n  mirror:\n    endpoint: opc.tcp://lab:4840\n    security_mode: SignAndEncrypt\n    username: ferry\n    password: s3cret\n    folder: Lab/Printers\n    names: { mk4-a: Printer1 }\n    interval: 500ms\n`,
    );
    const mirror = config.opcua?.mirror;
    assert.ok(mirror);
    assert.equal(mirror.securityPolicy, "Basic256Sha256", "a secure mode defaults to Basic256Sha256");
    assert.deepEqual(mirror.folder, ["Lab", "Printers"]);
    assert.deepEqual(mirror.names, { "mk4-a": "Printer1" });
    assert.equal(mirror.intervalS, 0.5);
    assert.equal(mirror.namespace, "urn:ferry:printers");
    assert.ok(mirror.identity.type === "username", "signs in with the username");
    assert.ok(mirror.identity.password instanceof Secret);
    assert.equal(JSON.stringify(mirror).includes("s3cret"), false, "the password never shows");
  });

  it("names each field at fault", () => {
    const problems = (text: string) => brief(configError(() => parse(`${PRINTER}opcua:\n${text}`)).problems);
    assert.deepEqual(
      problems("  mirror:\n    endpoint: http://lab:4840\n    interval: 0\n  server:\n    port: 70000\n"),
      [
        "5:15 opcua.mirror.endpoint: expected an OPC UA endpoint such as opc.tcp://host:4840",
        '6:15 opcua.mirror.interval: expected a duration from 100ms to 3600s, such as "1s"',
        "8:11 opcua.server.port: a port is 0-65535",
      ],
    );
    assert.deepEqual(
      problems(
        "  mirror:\n    endpoint: opc.tcp://lab:4840\n    security_mode: None\n    security_policy: Basic256Sha256\n    username: ferry\n",
      ),
      [
        "5:5 opcua.mirror.password: username and password go together",
        "7:22 opcua.mirror.security_policy: security_mode None takes no security policy; set security_mode Sign or SignAndEncrypt for Basic256Sha256",
      ],
    );
    assert.deepEqual(problems("  server:\n    security_modes: [Encrypt]\n"), [
      "5:22 opcua.server.security_modes[0]: expected one of None, Sign, SignAndEncrypt",
    ]);
    assert.deepEqual(problems("  server:\n    users: [x]\n"), [
      '5:5 opcua.server.users: unknown key "users"; known keys: port, host, security_modes, security_policies, anonymous',
    ]);
  });

  it("refuses names for printers that are not in the farm", () => {
    const error = configError(() =>
      parse(`${PRINTER}opcua:\n  mirror:\n    endpoint: opc.tcp://lab:4840\n    names: { mk4-b: P2 }\n`),
    );
    assert.match(problemAt(error.problems, "opcua.mirror.names.mk4-b").message, /no farm printer mk4-b/);
  });
});
