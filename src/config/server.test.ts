import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { parseListen } from "./server.ts";
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

  it("parses listen addresses as --listen takes them", () => {
    assert.deepEqual(parseListen("0.0.0.0:80"), { host: "0.0.0.0", port: 80 });
    assert.deepEqual(parseListen("127.0.0.1:0"), { host: "127.0.0.1", port: 0 });
    assert.match(JSON.stringify(parseListen(":80")), /expected HOST:PORT/);
    assert.match(JSON.stringify(parseListen("h:70000")), /out of range/);
    assert.match(JSON.stringify(parseListen("::1:80")), /expected HOST:PORT/);
  });
});
