import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError } from "./errors.ts";
import { brief, configError, parse, problemAt } from "./test-fixtures.ts";

// Every kind of problem, in one file; each is reported, at its line and column, in one error.
const BROKEN = `devices:
  mk4-a: { type: prusalink, url: "not a url", password: x, colour: red }
  mk4-b: { type: prusa, url: "http://b" }
  mk4-c: { url: "http://c" }
  usb: { type: folder, path: 3 }
  nas: { type: ftp, host: nas, host: nas2 }
  farm: { type: ftp, host: nas }
  "bad name": { type: ftp, host: nas }
groups:
  farm: [mk4-a]
  lab: [mk4-a, mk4-z, office]
  office: []
syncs:
  gcode:
    source: lab
    targets: [mk4-b:../up, nowhere, mk4-c:jobs]
    mode: moving
    include: ["**/*.{gcode"]
    when: sometimes
    mtime_tolerance: soon
    compare: md5
    schedule: hourly
  loop:
    source: mk4-a:jobs
    targets: [mk4-a]
    mode: copy
  none: { source: ./m, targets: [], mode: mirror }
  noisy: { source: "\${UNSET_VAR}", targets: [mk4-a], mode: copy, when: "\${ALSO_UNSET}" }
database: sqlite
`;

describe("problems", () => {
  it("reports every problem at once, each at its line and column", () => {
    const error = configError(() => parse(BROKEN, { env: {} }, "ferry.yaml"));
    assert.deepEqual(brief(error.problems), [
      "2:34 devices.mk4-a.url: Invalid URL",
      '2:60 devices.mk4-a.colour: unknown key "colour"; known keys: type, url, username, password, farm, model, tags, auto_clear, camera_url',
      '3:18 devices.mk4-b.type: unknown type "prusa"; known types: prusalink, folder, ftp, form',
      '4:10 devices.mk4-c.type: missing "type"; known types: prusalink, folder, ftp, form',
      "5:30 devices.usb.path: Invalid input: expected string, received number",
      '6:32 devices.nas.host: duplicate key "host"',
      '8:3 devices["bad name"]: device name "bad name" is not valid: use letters, digits, ".", "_" and "-", starting with a letter or digit',
      '10:3 groups.farm: "farm" is both a device and a group',
      '11:16 groups.lab[1]: unknown device "mk4-z"',
      '11:23 groups.lab[2]: "office" is a group; a group lists devices only',
      "12:11 groups.office: a group needs at least one device",
      '15:13 syncs.gcode.source: "lab" is a group; the source must be one device or one folder',
      '16:15 syncs.gcode.targets[0]: path of "mk4-b:../up" climbs out of the device\'s root',
      '16:28 syncs.gcode.targets[1]: unknown device or group "nowhere"',
      '17:11 syncs.gcode.mode: Invalid option: expected one of "mirror"|"copy"|"move"',
      '18:15 syncs.gcode.include[0]: not a valid glob: Missing closing: "}" - use "\\\\}" to match literal characters',
      '19:11 syncs.gcode.when: Invalid option: expected one of "idle"|"always"',
      '20:22 syncs.gcode.mtime_tolerance: expected a duration such as 60, "60s", "2m" or "1m30s"',
      '21:14 syncs.gcode.compare: Invalid option: expected one of "size-mtime"|"checksum"',
      "22:15 syncs.gcode.schedule: not a cron schedule: CronPattern: invalid configuration format ('hourly'), exactly five, six, or seven space separated parts are required.",
      '25:15 syncs.loop.targets[0]: target "mk4-a" overlaps the source "mk4-a:jobs"; a sync cannot copy a folder into itself',
      "27:33 syncs.none.targets: a sync needs at least one target",
      "28:20 syncs.noisy.source: environment variable UNSET_VAR is not set (nor in .env next to the config)",
      "28:72 syncs.noisy.when: environment variable ALSO_UNSET is not set (nor in .env next to the config)",
      '29:1 database: unknown key "database"; known keys: data_dir, devices, groups, syncs, server, farm, notify, opcua',
    ]);
    assert.ok(error instanceof ConfigError);
    assert.equal(error.name, "ConfigError");
    assert.equal(error.file, "ferry.yaml");
  });

  it("formats the message as a count and one problem per line", () => {
    const error = configError(() =>
      parse(
        `devices:\n  mk4-a: { type: prusalink, url: nope, password: x }\ngroups:\n  farm: [mk4-a, mk4-c]\n`,
        {},
        "ferry.yaml",
      ),
    );
    assert.equal(
      error.message,
      [
        "ferry.yaml: 2 problems",
        "  ferry.yaml:2:34 devices.mk4-a.url: Invalid URL",
        '  ferry.yaml:4:17 groups.farm[1]: unknown device "mk4-c"',
      ].join("\n"),
    );
  });

  it("reports YAML syntax errors with their lines, together with the other problems", () => {
    const error = configError(() =>
      parse(
        `devices:\n  p: { type: prusalink, url: "http://p", password: x\nsyncs:\n  s: { source: ./a, targets: [q], mode: copy }\n`,
        {},
        "f.yaml",
      ),
    );
    const lines = brief(error.problems);
    assert.ok(
      lines.some((line) => /^3:1 : /.test(line)),
      lines.join("\n"),
    );
    assert.ok(
      error.problems.every((p) => p.line !== undefined),
      "every problem has a line",
    );
  });

  it("reports keys that are lists or mappings", () => {
    const error = configError(() => parse("devices:\n  [a, b]: { type: ftp, host: h }\n"));
    assert.equal(
      problemAt(error.problems, "devices").message,
      "keys must be plain names, not lists or mappings",
    );
  });

  it("says which shape the file should have when it is not a mapping", () => {
    const error = configError(() => parse("- a\n- b\n"));
    assert.deepEqual(brief(error.problems), [
      "1:1 : expected a mapping with the keys data_dir, devices, groups, syncs, server, farm, notify, opcua",
    ]);
  });

  it("says `required` for a missing key, at the mapping that lacks it", () => {
    const error = configError(() => parse("syncs:\n  s:\n    source: ./a\n    targets: [./b]\n"));
    assert.deepEqual(brief(error.problems), ["3:5 syncs.s.mode: required"]);
  });

  it("reports a group member written as DEVICE:PATH", () => {
    const error = configError(() =>
      parse("devices:\n  p: { type: ftp, host: h }\ngroups:\n  g: [p:models]\n"),
    );
    assert.equal(problemAt(error.problems, "groups.g[0]").message, 'unknown device "p:models"');
  });

  it("reports local targets nested in the local source", () => {
    const error = configError(() =>
      parse("syncs:\n  s: { source: ./a, targets: [./a/b, ./ab], mode: copy }\n"),
    );
    assert.deepEqual(brief(error.problems), [
      '2:31 syncs.s.targets[0]: target "./a/b" overlaps the source "./a"; a sync cannot copy a folder into itself',
    ]);
  });

  it("reports targets of one sync that contain one another", () => {
    const error = configError(() =>
      parse(
        [
          "devices:",
          "  p: { type: folder, path: /srv/p }",
          "  q: { type: folder, path: /srv/q }",
          "groups:",
          "  all: [p, q]",
          "syncs:",
          '  s: { source: ./src, targets: [all, "p:jobs", ./out, ./out/deep, "q:x", "q:xy"], mode: mirror }',
          "",
        ].join("\n"),
      ),
    );
    assert.deepEqual(brief(error.problems), [
      '7:38 syncs.s.targets[1]: target "p:jobs" overlaps the target "p"; one folder would hold the other\'s copy',
      '7:55 syncs.s.targets[3]: target "./out/deep" overlaps the target "./out"; one folder would hold the other\'s copy',
      '7:67 syncs.s.targets[4]: target "q:x" overlaps the target "q"; one folder would hold the other\'s copy',
      '7:74 syncs.s.targets[5]: target "q:xy" overlaps the target "q"; one folder would hold the other\'s copy',
    ]);
  });

  it("refuses a write-only device as a source or as a mirror target; copy and move are fine", () => {
    const error = configError(() =>
      parse(
        [
          "devices:",
          '  web: { type: form, url: "http://127.0.0.1:8090/upload" }',
          "syncs:",
          "  a: { source: web, targets: [./out], mode: copy }",
          "  b: { source: ./logs, targets: [web], mode: mirror }",
          "  c: { source: ./logs, targets: [web], mode: move }",
          "  d: { source: ./logs, targets: [web], mode: copy }",
          "",
        ].join("\n"),
      ),
    );
    assert.deepEqual(brief(error.problems), [
      '4:16 syncs.a.source: "web" only takes files in; it cannot be a source',
      '5:34 syncs.b.targets[0]: "web" only takes files in and cannot delete them, so it cannot mirror; use mode copy or move',
    ]);
  });

  it("hints at local syntax when a target looks like a path", () => {
    const error = configError(() =>
      parse("syncs:\n  s: { source: ./a, targets: [backup/out], mode: copy }\n"),
    );
    assert.match(
      problemAt(error.problems, "syncs.s.targets[0]").message,
      /a local folder starts with "\.\/"/,
    );
  });

  it("guards against alias bombs", () => {
    const lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 9; i++)
      lines.push(
        `a${i}: &a${i} [${Array(10)
          .fill(`*a${i - 1}`)
          .join(", ")}]`,
      );
    const error = configError(() => parse(lines.join("\n")));
    assert.match(error.message, /alias/i);
  });
});
