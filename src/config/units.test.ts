import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Secret } from "../core/secret.ts";
import { isLocalSyntax, overlaps, parseEndpoint, type EndpointContext } from "./endpoints.ts";
import { ConfigError, formatProblem } from "./errors.ts";
import { describeConfig, toJsonSafe } from "./redact.ts";
import { parseDuration } from "./schema.ts";
import { formatPath, isUnder } from "./source.ts";
import { EXAMPLE, parse } from "./test-fixtures.ts";
import type { Endpoint } from "./types.ts";

describe("parseDuration", () => {
  it("reads seconds and units", () => {
    const cases: [unknown, number][] = [
      [60, 60],
      [0, 0],
      ["60", 60],
      ["1.5", 1.5],
      ["60s", 60],
      ["2m", 120],
      ["1m30s", 90],
      ["250ms", 0.25],
      ["1h", 3600],
      ["1d", 86400],
      [" 5s ", 5],
    ];
    for (const [input, seconds] of cases) assert.equal(parseDuration(input), seconds, String(input));
  });

  it("refuses what is not a duration", () => {
    for (const input of [
      -1,
      Number.NaN,
      Infinity,
      "",
      "s",
      "5 minutes",
      "5x",
      "-3s",
      "1m 30s",
      null,
      true,
      [60],
    ]) {
      assert.equal(parseDuration(input), undefined, JSON.stringify(input));
    }
  });
});

describe("parseEndpoint", () => {
  const context: EndpointContext = {
    baseDir: "/farm",
    homeDir: "/home/op",
    devices: new Set(["mk4-a", "mk4-b", "nas"]),
    groups: new Map([["farm", ["mk4-a", "mk4-b"]]]),
  };

  it("tells local folders by their first characters", () => {
    for (const text of [".", "..", "~", "./a", "../a", "/a", "~/a"])
      assert.equal(isLocalSyntax(text), true, text);
    for (const text of ["a", "a/b", ".hidden", "~op/a", "mk4-a:./x"])
      assert.equal(isLocalSyntax(text), false, text);
  });

  it("parses devices, paths and groups", () => {
    assert.deepEqual(parseEndpoint("nas", context), {
      ok: true,
      endpoints: [{ type: "device", device: "nas", path: "", label: "nas" }],
    });
    assert.deepEqual(parseEndpoint("nas:/a//b/./c/", context), {
      ok: true,
      endpoints: [{ type: "device", device: "nas", path: "a/b/c", label: "nas:a/b/c" }],
    });
    assert.deepEqual(parseEndpoint("farm:x", context), {
      ok: true,
      group: "farm",
      endpoints: [
        { type: "device", device: "mk4-a", path: "x", label: "mk4-a:x" },
        { type: "device", device: "mk4-b", path: "x", label: "mk4-b:x" },
      ],
    });
    assert.deepEqual(parseEndpoint("nas:a:b", context), {
      ok: true,
      endpoints: [{ type: "device", device: "nas", path: "a:b", label: "nas:a:b" }],
    });
  });

  it("refuses unknown names and paths that climb out", () => {
    assert.deepEqual(parseEndpoint("mk4-c", context), {
      ok: false,
      message: 'unknown device or group "mk4-c"',
    });
    assert.deepEqual(parseEndpoint("nas:a/../../b", context), {
      ok: false,
      message: `path of "nas:a/../../b" climbs out of the device's root`,
    });
  });

  it("knows when two endpoints overlap", () => {
    const one = (text: string): Endpoint => {
      const result = parseEndpoint(text, context);
      assert.ok(result.ok && result.endpoints[0], text);
      return result.endpoints[0];
    };
    const [a, ab, root, other, ax] = ["nas:a", "nas:a/b", "nas", "mk4-a:a", "nas:ax"].map(one) as [
      Endpoint,
      Endpoint,
      Endpoint,
      Endpoint,
      Endpoint,
    ];
    assert.equal(overlaps(a, ab), true);
    assert.equal(overlaps(root, ab), true);
    assert.equal(overlaps(a, other), false);
    assert.equal(overlaps(a, ax), false);
    const local = (path: string) => ({ type: "local" as const, path, label: path });
    assert.equal(overlaps(local("/a"), local("/a/b")), true);
    assert.equal(overlaps(local("/a"), local("/ab")), false);
    assert.equal(overlaps(local("/a"), local("/a/..b")), true);
    assert.equal(overlaps(local("/a"), a), false);
  });
});

describe("paths and messages", () => {
  it("formats field paths", () => {
    assert.equal(formatPath([]), "");
    assert.equal(formatPath(["devices", "mk4-a", "url"]), "devices.mk4-a.url");
    assert.equal(formatPath(["groups", "farm", 1]), "groups.farm[1]");
    assert.equal(formatPath(["devices", "bad name"]), 'devices["bad name"]');
    assert.equal(formatPath(["devices", "mk4.a"]), "devices.mk4.a");
  });

  it("knows when a path lies under another", () => {
    assert.equal(isUnder(["a", "b", 0], ["a", "b"]), true);
    assert.equal(isUnder(["a", "b"], ["a", "b"]), true);
    assert.equal(isUnder(["a"], ["a", "b"]), false);
    assert.equal(isUnder(["a", 1], ["a", "1"]), true);
  });

  it("formats problems with and without a place", () => {
    assert.equal(
      formatProblem("f.yaml", { path: "a.b", line: 3, column: 7, message: "m" }),
      "f.yaml:3:7 a.b: m",
    );
    assert.equal(formatProblem("f.yaml", { path: "", line: 3, column: 7, message: "m" }), "f.yaml:3:7: m");
    assert.equal(formatProblem("f.yaml", { path: "", message: "file not found" }), "f.yaml: file not found");
  });

  it("sorts problems: the file as a whole first, then by line and column", () => {
    const error = new ConfigError("f.yaml", [
      { path: "b", line: 9, column: 1, message: "later" },
      { path: "a", line: 2, column: 8, message: "second" },
      { path: "", message: "whole file" },
      { path: "a", line: 2, column: 3, message: "first" },
    ]);
    assert.deepEqual(
      error.problems.map((p) => p.message),
      ["whole file", "first", "second", "later"],
    );
    assert.match(error.message, /^f\.yaml: 4 problems\n {2}f\.yaml: whole file\n/);
  });
});

describe("describeConfig", () => {
  it("summarizes the config as plain JSON with secrets redacted", () => {
    const summary = describeConfig(parse(EXAMPLE));
    assert.deepEqual(JSON.parse(JSON.stringify(summary)), summary, "JSON-safe");
    assert.deepEqual(summary.devices["mk4-a"], {
      type: "prusalink",
      url: "http://127.0.0.1:18100",
      username: "maker",
      password: "[redacted]",
    });
    assert.deepEqual(summary.groups, { farm: ["mk4-a", "mk4-b"] });
    const gcode = summary.syncs.gcode;
    assert.ok(gcode);
    assert.deepEqual(
      gcode.targets.map((t) => t.label),
      ["mk4-a", "mk4-b"],
    );
    assert.equal(gcode.mtime_tolerance, 60);
    assert.equal(summary.dataDir, "/farm/ferry-data");
  });

  it("makes any options JSON-safe", () => {
    const cyclic: Record<string, unknown> = { name: "c" };
    cyclic.self = cyclic;
    assert.deepEqual(
      toJsonSafe({
        secret: new Secret("x"),
        nested: [new Secret("y"), undefined, () => 1],
        url: new URL("http://h/p"),
        date: new Date(0),
        map: new Map([["k", new Secret("z")]]),
        set: new Set([1]),
        big: 10n,
        nan: Number.NaN,
        fn: () => 1,
        cyclic,
      }),
      {
        secret: "[redacted]",
        nested: ["[redacted]", null, null],
        url: "http://h/p",
        date: "1970-01-01T00:00:00.000Z",
        map: { k: "[redacted]" },
        set: [1],
        big: "10",
        nan: null,
        cyclic: { name: "c", self: "[circular]" },
      },
    );
  });
});

describe("ConfigError", () => {
  it("names a file in the working folder by its relative path", () => {
    const error = new ConfigError(`${process.cwd()}/ferry.yaml`, [{ path: "", message: "file not found" }]);
    assert.equal(error.message, "ferry.yaml: 1 problem\n  ferry.yaml: file not found");
    assert.equal(error.file, `${process.cwd()}/ferry.yaml`);
    const outside = new ConfigError("/elsewhere/ferry.yaml", [{ path: "", message: "file not found" }]);
    assert.match(outside.message, /^\/elsewhere\/ferry\.yaml: 1 problem/);
  });
});
