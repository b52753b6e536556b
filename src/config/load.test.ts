import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Secret } from "../core/secret.ts";
import { findConfigFile, loadConfig, parseConfig } from "./load.ts";
import {
  configError,
  configErrorAsync,
  EXAMPLE,
  KINDS,
  parse,
  PASSWORD,
  printerKind,
} from "./test-fixtures.ts";

describe("the documented example", () => {
  it("loads as written", () => {
    const config = parse(EXAMPLE);
    assert.equal(config.file, "/farm/ferry.yaml");
    assert.equal(config.baseDir, "/farm");
    assert.equal(config.dataDir, "/farm/ferry-data");
    assert.deepEqual([...config.devices.keys()], ["mk4-a", "mk4-b"]);
    const device = config.devices.get("mk4-a");
    assert.equal(device?.name, "mk4-a");
    assert.equal(device.kind, "prusalink");
    const options = device.options as { url: string; username: string; password: Secret };
    assert.equal(options.url, "http://127.0.0.1:18100");
    assert.equal(options.username, "maker");
    assert.ok(options.password instanceof Secret);
    assert.equal(options.password.reveal(), PASSWORD);
    assert.equal("type" in options, false, "options come without `type`");
    assert.deepEqual(config.groups, new Map([["farm", ["mk4-a", "mk4-b"]]]));
    assert.deepEqual(config.syncs.get("gcode"), {
      name: "gcode",
      source: { type: "local", path: "/farm/master", label: "./master" },
      targets: [
        { type: "device", device: "mk4-a", path: "", label: "mk4-a" },
        { type: "device", device: "mk4-b", path: "", label: "mk4-b" },
      ],
      mode: "mirror",
      include: ["**/*.gcode", "**/*.bgcode"],
      exclude: [],
      when: "idle",
      modTimeToleranceS: 60,
      compare: "size-mtime",
      onConflict: "rename",
      unicode: "keep",
      settleS: 0,
      watch: false,
      rescanS: 600,
      staging: false,
    });
  });

  it("in docs/configuration.md loads too", async () => {
    const doc = await readFile(join(import.meta.dirname, "../../docs/configuration.md"), "utf8");
    const yaml = /```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
    assert.ok(yaml);
    const config = parse(yaml);
    assert.deepEqual(
      config.syncs.get("gcode")?.targets.map((t) => t.label),
      ["mk4-a", "mk4-b"],
    );
  });

  it("loads from disk with the password in .env next to it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ferry-config-"));
    try {
      await writeFile(join(dir, "ferry.yaml"), EXAMPLE);
      await writeFile(join(dir, ".env"), `# printers\nPRUSA_PASSWORD=${PASSWORD}\n`);
      const config = await loadConfig(join(dir, "ferry.yaml"), { deviceKinds: KINDS, env: {} });
      const options = config.devices.get("mk4-b")?.options as { password: Secret };
      assert.equal(options.password.reveal(), PASSWORD);
      assert.equal(config.baseDir, dir);
      assert.deepEqual(config.syncs.get("gcode")?.source, {
        type: "local",
        path: join(dir, "master"),
        label: "./master",
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("defaults and values", () => {
  const minimal = `
devices:
  p: { type: prusalink, url: "http://p", password: x }
syncs:
  s: { source: ./in, targets: p, mode: copy }
`;

  it("fills in every default", () => {
    const config = parse(minimal);
    const sync = config.syncs.get("s");
    assert.deepEqual(sync?.include, ["**"]);
    assert.deepEqual(sync.exclude, []);
    assert.equal(sync.when, "always");
    assert.equal(sync.modTimeToleranceS, 60);
    assert.equal(sync.compare, "size-mtime");
    assert.deepEqual(sync.targets, [{ type: "device", device: "p", path: "", label: "p" }]);
    assert.equal((config.devices.get("p")?.options as { username: string }).username, "maker");
    assert.deepEqual(config.groups, new Map());
  });

  it("reads every sync key", () => {
    const config = parse(`
devices:
  p: { type: prusalink, url: "http://p", password: x }
syncs:
  s:
    source: p:models
    targets: [./backup]
    mode: copy
    include: "**/*.3mf"
    exclude: ["tmp/**", "**/.*"]
    when: always
    mtime_tolerance: 1m30s
    compare: checksum
`);
    const sync = config.syncs.get("s");
    assert.deepEqual(sync?.source, { type: "device", device: "p", path: "models", label: "p:models" });
    assert.deepEqual(sync.targets, [{ type: "local", path: "/farm/backup", label: "./backup" }]);
    assert.deepEqual(sync.include, ["**/*.3mf"]);
    assert.deepEqual(sync.exclude, ["tmp/**", "**/.*"]);
    assert.equal(sync.modTimeToleranceS, 90);
    assert.equal(sync.compare, "checksum");
  });

  it("takes mtime_tolerance as a number of seconds too", () => {
    for (const [value, seconds] of [
      ["0", 0],
      ["2.5", 2.5],
      ['"120"', 120],
      ["500ms", 0.5],
      ["2h", 7200],
    ] as const) {
      const config = parse(minimal.replace("mode: copy", `mode: copy, mtime_tolerance: ${value}`));
      assert.equal(config.syncs.get("s")?.modTimeToleranceS, seconds, value);
    }
  });

  it("resolves data_dir against the config's folder, and ~ against the home folder", () => {
    assert.equal(parse("data_dir: state\n").dataDir, "/farm/state");
    assert.equal(parse("data_dir: ../state\n").dataDir, "/state");
    assert.equal(parse("data_dir: /var/lib/ferry\n").dataDir, "/var/lib/ferry");
    assert.equal(parse("data_dir: ~/ferry\n", { env: { HOME: "/home/op" } }).dataDir, "/home/op/ferry");
  });

  it("accepts an empty file, and empty sections", () => {
    for (const text of ["", "# nothing yet\n", "devices:\ngroups:\nsyncs:\n", "{}"]) {
      const config = parse(text);
      assert.equal(config.devices.size + config.groups.size + config.syncs.size, 0, JSON.stringify(text));
    }
  });

  it("gives relative paths of a config given by a relative name from the working folder", () => {
    const config = parseConfig("syncs: {}\n", "ferry.yaml", { deviceKinds: KINDS, env: {} });
    assert.equal(config.file, join(process.cwd(), "ferry.yaml"));
    assert.equal(config.baseDir, process.cwd());
  });
});

describe("endpoints", () => {
  const devices = `
devices:
  mk4-a: { type: prusalink, url: "http://a", password: x }
  mk4-b: { type: prusalink, url: "http://b", password: x }
  nas: { type: ftp, host: nas.lan }
groups:
  farm: [mk4-a, mk4-b]
`;

  it("expands a group into its devices, each keeping the path", () => {
    const config = parse(
      `${devices}syncs:\n  s: { source: nas:prints/gcode, targets: [farm:models/, nas:copy], mode: mirror }\n`,
    );
    const sync = config.syncs.get("s");
    assert.deepEqual(sync?.source, {
      type: "device",
      device: "nas",
      path: "prints/gcode",
      label: "nas:prints/gcode",
    });
    assert.deepEqual(sync.targets, [
      { type: "device", device: "mk4-a", path: "models", label: "mk4-a:models" },
      { type: "device", device: "mk4-b", path: "models", label: "mk4-b:models" },
      { type: "device", device: "nas", path: "copy", label: "nas:copy" },
    ]);
  });

  it("normalizes device paths and drops targets named twice", () => {
    const config = parse(
      `${devices}syncs:\n  s: { source: ./m, targets: [farm, mk4-a, "mk4-b:/", "nas:./x//y/", nas:x/y], mode: copy }\n`,
    );
    assert.deepEqual(
      config.syncs.get("s")?.targets.map((t) => t.label),
      ["mk4-a", "mk4-b", "nas:x/y"],
    );
  });

  it("resolves local folders against the config's folder, and ~ against the home folder", () => {
    const config = parse(
      `${devices}syncs:\n  s: { source: ../master, targets: [/srv/out, ~/out, ./a/../../b, .], mode: copy }\n`,
      { env: { HOME: "/home/op" } },
      "/farm/conf/ferry.yaml",
    );
    const sync = config.syncs.get("s");
    assert.deepEqual(sync?.source, { type: "local", path: "/farm/master", label: "../master" });
    assert.deepEqual(
      sync.targets.map((t) => [t.path, t.label]),
      [
        ["/srv/out", "/srv/out"],
        ["/home/op/out", "~/out"],
        ["/farm/b", "./a/../../b"],
        ["/farm/conf", "."],
      ],
    );
  });
});

describe("device kinds", () => {
  it("parses a kind whose options schema is not an object, without `type`", () => {
    const config = parse("devices:\n  usb: { type: folder, path: /media/usb }\n");
    assert.deepEqual(config.devices.get("usb"), {
      name: "usb",
      kind: "folder",
      options: { path: "/media/usb", resolved: true },
    });
  });

  it("parses a kind whose options object has refinements", () => {
    const config = parse("devices:\n  nas: { type: ftp, host: nas.lan, password: pw }\n");
    const options = config.devices.get("nas")?.options as { host: string; port: number; password: Secret };
    assert.equal(options.host, "nas.lan");
    assert.equal(options.port, 21);
    assert.equal(options.password.reveal(), "pw");
    const error = configError(() => parse("devices:\n  nas: { type: ftp, host: forbidden }\n"));
    assert.deepEqual(
      error.problems.map((p) => [p.path, p.message]),
      [["devices.nas.host", "that host is forbidden"]],
    );
  });

  it("makes every kind's options strict, refined or not", () => {
    const error = configError(() => parse("devices:\n  nas: { type: ftp, host: nas.lan, colour: red }\n"));
    assert.deepEqual(
      error.problems.map((p) => [p.path, p.message]),
      [["devices.nas.colour", 'unknown key "colour"; known keys: type, host, port, password']],
    );
  });

  it("refuses a build that defines one kind twice", () => {
    assert.throws(
      () => parseConfig("", "ferry.yaml", { deviceKinds: [...KINDS, printerKind], env: {} }),
      /device kind "prusalink" is defined twice/,
    );
  });

  it("says so when no kinds are known", () => {
    const error = configError(() =>
      parseConfig("devices:\n  p: { type: prusalink }\n", "ferry.yaml", { deviceKinds: [], env: {} }),
    );
    assert.match(error.message, /devices\.p: this build of Ferry knows no device types/);
  });
});

describe("JSON", () => {
  const json = `{
  "devices": {
    "mk4-a": { "type": "prusalink", "url": "http://127.0.0.1:18100", "password": "\${PRUSA_PASSWORD}" }
  },
  "syncs": {
\t"gcode": { "source": "./master", "targets": ["mk4-a:jobs"], "mode": "mirror", "when": "idle" }
  }
}
`;

  it("loads a JSON config", () => {
    const config = parse(json, {}, "/farm/ferry.json");
    assert.equal((config.devices.get("mk4-a")?.options as { password: Secret }).password.reveal(), PASSWORD);
    assert.deepEqual(
      config.syncs.get("gcode")?.targets.map((t) => t.label),
      ["mk4-a:jobs"],
    );
  });

  it("reports problems in a JSON config with their lines", () => {
    const error = configError(() =>
      parse(json.replace('"mirror"', '"mirrror"').replace('"url"', '"uri"'), {}, "ferry.json"),
    );
    assert.deepEqual(
      error.problems.map((p) => `${p.line}:${p.column} ${p.path}`),
      ["3:14 devices.mk4-a.url", "3:37 devices.mk4-a.uri", "6:70 syncs.gcode.mode"],
    );
  });
});

describe("files on disk", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-config-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("finds ferry.yaml, then ferry.yml, then ferry.json", async () => {
    const here = join(dir, "find");
    await mkdir(here);
    assert.equal(findConfigFile(here), undefined);
    await writeFile(join(here, "ferry.json"), "{}");
    assert.equal(findConfigFile(here), join(here, "ferry.json"));
    await writeFile(join(here, "ferry.yml"), "");
    assert.equal(findConfigFile(here), join(here, "ferry.yml"));
    await mkdir(join(here, "ferry.yaml"));
    assert.equal(findConfigFile(here), join(here, "ferry.yml"), "a folder named ferry.yaml is not a config");
    await rm(join(here, "ferry.yaml"), { recursive: true });
    await writeFile(join(here, "ferry.yaml"), "");
    assert.equal(findConfigFile(here), join(here, "ferry.yaml"));
  });

  it("reports a missing file as one problem", async () => {
    const file = join(dir, "nope", "ferry.yaml");
    const error = await configErrorAsync(() => loadConfig(file, { deviceKinds: KINDS }));
    assert.equal(error.file, file);
    assert.deepEqual(error.problems, [{ path: "", message: "file not found" }]);
    assert.equal(error.message, `${file}: 1 problem\n  ${file}: file not found`);
  });

  it("reports a folder given as the config file", async () => {
    const error = await configErrorAsync(() => loadConfig(dir, { deviceKinds: KINDS }));
    assert.deepEqual(error.problems, [{ path: "", message: "is a folder, not a file" }]);
  });

  it("reads a file with a byte order mark", async () => {
    const file = join(dir, "bom.yaml");
    await writeFile(file, "\uFEFFdata_dir: ./state\n");
    const config = await loadConfig(file, { deviceKinds: KINDS, env: {} });
    assert.equal(config.dataDir, join(dir, "state"));
  });

  it("reports a .env it cannot read, together with what that causes", async () => {
    const sub = join(dir, "env-folder");
    await mkdir(join(sub, ".env"), { recursive: true });
    await writeFile(join(sub, "ferry.yaml"), EXAMPLE);
    const error = await configErrorAsync(() =>
      loadConfig(join(sub, "ferry.yaml"), { deviceKinds: KINDS, env: {} }),
    );
    assert.deepEqual(
      error.problems.map((p) => p.message),
      [
        `cannot read ${join(sub, ".env")} (EISDIR)`,
        "environment variable PRUSA_PASSWORD is not set (nor in .env next to the config)",
        "environment variable PRUSA_PASSWORD is not set (nor in .env next to the config)",
      ],
    );
  });

  it("loads without a .env", async () => {
    const sub = join(dir, "no-env");
    await mkdir(sub);
    await writeFile(join(sub, "ferry.yml"), "syncs: {}\n");
    const config = await loadConfig(join(sub, "ferry.yml"), { deviceKinds: KINDS, env: {} });
    assert.equal(config.syncs.size, 0);
  });
});
