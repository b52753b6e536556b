/**
 * A run loads the protocol libraries of the device kinds its config uses, and no others: `ferry
 * sync` between local folders took 0.4 s and 50 MB more when every adapter came with it.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";

const cli = new URL("../bin/ferry.js", import.meta.url).pathname;
const hook = new URL("./support/loaded-packages.ts", import.meta.url).pathname;
const run = promisify(execFile);

/** Every library behind a network adapter, a printer driver or the server. */
const PROTOCOL_LIBRARIES = [
  "@aws-sdk/client-s3",
  "basic-ftp",
  "fast-xml-parser",
  "fastify",
  "node-mavlink",
  "node-opcua",
  "ssh2",
  "undici",
  "ws",
];

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ferry-lazy-"));
  await mkdir(join(dir, "src"));
  await mkdir(join(dir, "dst"));
  await writeFile(join(dir, "src", "a.gcode"), "G28\n");
});
after(() => rm(dir, { recursive: true, force: true }));

/** The packages `ferry ARGS` loaded with this ferry.yaml, and how it ended. */
async function loadedBy(
  config: string,
  args: string[],
): Promise<{ packages: string[]; code: number; output: string }> {
  await writeFile(join(dir, "ferry.yaml"), config);
  const list = join(dir, "loaded");
  const { code, output } = await run(
    process.execPath,
    ["--import", hook, cli, ...args, "-c", join(dir, "ferry.yaml")],
    { env: { ...process.env, FERRY_LOADED_PACKAGES_FILE: list } },
  ).then(
    ({ stdout, stderr }) => ({ code: 0, output: stdout + stderr }),
    (error: unknown) => {
      const { code, stdout, stderr } = error as { code?: number; stdout?: string; stderr?: string };
      return { code: code ?? -1, output: `${stdout ?? ""}${stderr ?? ""}` };
    },
  );
  return { packages: (await readFile(list, "utf8")).split("\n"), code, output };
}

describe("loading what a run needs", () => {
  it("a sync between local folders loads no protocol library", async () => {
    const { packages, code } = await loadedBy(
      `data_dir: ./data\nsyncs:\n  s: { source: ./src, targets: [./dst], mode: copy }\n`,
      ["sync"],
    );
    assert.equal(code, 0);
    assert.ok(packages.includes("better-sqlite3"), `the check sees packages: ${packages.join(", ")}`);
    assert.deepEqual(
      PROTOCOL_LIBRARIES.filter((name) => packages.includes(name)),
      [],
    );
  });

  /**
   * `ferry sync` to device `name` of these options, where nothing listens (port 9, discard): the run
   * fails to connect, after opening the adapter. The protocol libraries it loaded, and its words.
   */
  async function syncToNobody(
    name: string,
    options: string,
  ): Promise<{ libraries: string[]; output: string }> {
    const config = [
      "data_dir: ./data",
      "devices:",
      `  ${name}: ${options}`,
      "syncs:",
      `  s: { source: ./src, targets: ['${name}:'], mode: copy }`,
      "",
    ].join("\n");
    const { packages, code, output } = await loadedBy(config, ["sync"]);
    assert.equal(code, 1, output);
    return { libraries: PROTOCOL_LIBRARIES.filter((library) => packages.includes(library)), output };
  }

  it("a sync to an SFTP server loads ssh2, and no other protocol library", async () => {
    const { libraries, output } = await syncToNobody(
      "box",
      `{ type: sftp, host: 127.0.0.1, port: 9, username: u, password: p, host_key: 'SHA256:${"A".repeat(43)}' }`,
    );
    assert.match(output, /box: server unreachable/);
    assert.deepEqual(libraries, ["ssh2"]);
  });

  // undici and fast-xml-parser are pre-bundled when .cache/vendor is built: loaded all the same.
  it("a sync to a WebDAV server loads undici and the XML parser, and no other protocol library", async () => {
    const { libraries, output } = await syncToNobody(
      "nas",
      "{ type: webdav, url: 'http://127.0.0.1:9/dav/' }",
    );
    assert.match(output, /nas: list \/: server unreachable/);
    assert.deepEqual(libraries, ["fast-xml-parser", "undici"]);
  });
});
