import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseConfig } from "../config/index.ts";
import { silentLogger } from "../core/logger.ts";
import { Devices, deviceKinds } from "../devices/devices.ts";
import { runSync, SourceUnreadable } from "./run.ts";

async function tree(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = prefix + entry.name;
    if (entry.isDirectory()) out.push(path + "/", ...(await tree(join(dir, entry.name), path + "/")));
    else out.push(`${path}=${await readFile(join(dir, entry.name), "utf8")}`);
  }
  return out.sort();
}

describe("runSync between local folders", () => {
  let dir: string;
  const setup = (mode: "mirror" | "copy", extra = "") => {
    const config = parseConfig(
      `syncs:\n  s: { source: ./src, targets: [./dst], mode: ${mode}, include: ["**/*.gcode"]${extra} }\n`,
      join(dir, "ferry.yaml"),
      { deviceKinds, env: {} },
    );
    const sync = config.syncs.get("s");
    assert.ok(sync);
    return { sync, devices: new Devices(config, silentLogger) };
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-run-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test("mirror adds, replaces and deletes only selected files, then plans nothing", async () => {
    await mkdir(join(dir, "src/a/b"), { recursive: true });
    await mkdir(join(dir, "dst/old"), { recursive: true });
    await writeFile(join(dir, "src/a/b/x.gcode"), "x1");
    await writeFile(join(dir, "src/y.gcode"), "y-new");
    await writeFile(join(dir, "dst/y.gcode"), "y");
    await writeFile(join(dir, "dst/old/z.gcode"), "z");
    await writeFile(join(dir, "dst/keep.txt"), "not selected");
    const { sync, devices } = setup("mirror");
    const [report] = await runSync(sync, devices);
    assert.equal(report?.outcome, "done");
    assert.equal(report.done, 4); // x, y (size differs), delete z, remove old/
    assert.deepEqual(await tree(join(dir, "dst")), [
      "a/",
      "a/b/",
      "a/b/x.gcode=x1",
      "keep.txt=not selected",
      "y.gcode=y-new",
    ]);
    const [again] = await runSync(sync, devices);
    assert.equal(again?.planned, 0);
    await devices.close();
  });

  test("a mirror from an empty source deletes nothing unless allowed", async () => {
    await rm(join(dir, "src"), { recursive: true });
    await mkdir(join(dir, "src"));
    const { sync, devices } = setup("mirror");
    const [refused] = await runSync(sync, devices);
    assert.equal(refused?.outcome, "failed");
    assert.match(refused.reason ?? "", /source \.\/src has no files: refusing to delete 2 file/);
    assert.equal((await tree(join(dir, "dst"))).length, 5);
    const [allowed] = await runSync(sync, devices, { allowEmptySource: true });
    assert.equal(allowed?.outcome, "done");
    assert.deepEqual(await tree(join(dir, "dst")), ["keep.txt=not selected"]);
    await devices.close();
  });

  test("a missing source is an error for every target, never a reason to delete", async () => {
    await writeFile(join(dir, "dst/precious.gcode"), "p");
    await rm(join(dir, "src"), { recursive: true });
    const { sync, devices } = setup("mirror");
    // A configuration problem: named, and raised before any target is touched.
    await assert.rejects(runSync(sync, devices, { allowEmptySource: true }), (error: Error) => {
      assert.ok(error instanceof SourceUnreadable);
      assert.match(error.message, /^sync s: source \.\/src does not exist \(\/.*\/src\)$/);
      return true;
    });
    assert.ok((await tree(join(dir, "dst"))).includes("precious.gcode=p"));
    await devices.close();
  });

  test("compare: checksum sends what differs in content and leaves equal content alone", async () => {
    await rm(join(dir, "src"), { recursive: true, force: true });
    await rm(join(dir, "dst"), { recursive: true, force: true });
    await mkdir(join(dir, "src"));
    await mkdir(join(dir, "dst"));
    const old = new Date("2024-01-01T00:00:00Z");
    const recent = new Date("2025-01-01T00:00:00Z");
    // Same size and time, other bytes: size and time cannot tell, the digest can.
    await writeFile(join(dir, "src/swapped.gcode"), "AAAA");
    await writeFile(join(dir, "dst/swapped.gcode"), "BBBB");
    // Same bytes, the source touched a year later: size and time would send it again.
    await writeFile(join(dir, "src/touched.gcode"), "same");
    await writeFile(join(dir, "dst/touched.gcode"), "same");
    await utimes(join(dir, "src/swapped.gcode"), old, old);
    await utimes(join(dir, "dst/swapped.gcode"), old, old);
    await utimes(join(dir, "src/touched.gcode"), recent, recent);
    await utimes(join(dir, "dst/touched.gcode"), old, old);

    const bySizeAndTime = setup("copy");
    const [timed] = await runSync(bySizeAndTime.sync, bySizeAndTime.devices, { dryRun: true });
    assert.deepEqual(
      timed?.actions.map((a) => (a.type === "upload" ? `${a.path}:${a.reason}` : a.type)),
      ["touched.gcode:newer"],
    );
    await bySizeAndTime.devices.close();

    const { sync, devices } = setup("copy", ", compare: checksum");
    const [report] = await runSync(sync, devices);
    assert.equal(report?.outcome, "done");
    assert.deepEqual(report.notes, []);
    assert.deepEqual(
      report.actions.map((a) => (a.type === "upload" ? `${a.path}:${a.reason}` : a.type)),
      ["swapped.gcode:content"],
    );
    assert.deepEqual(await tree(join(dir, "dst")), ["swapped.gcode=AAAA", "touched.gcode=same"]);
    const [again] = await runSync(sync, devices);
    assert.equal(again?.planned, 0);
    await devices.close();
  });

  test("move delivers to every target, verifies, and only then deletes the source", async () => {
    for (const folder of ["src", "dst", "dst2"])
      await rm(join(dir, folder), { recursive: true, force: true });
    await mkdir(join(dir, "src/flight 7"), { recursive: true });
    await writeFile(join(dir, "src/flight 7/log.gcode"), "log");
    await writeFile(join(dir, "src/photo.gcode"), "photo");
    await writeFile(join(dir, "src/notes.txt"), "not selected");
    const config = parseConfig(
      // overwrite: a folder in the way makes the write fail (rename would put the file beside it).
      'syncs:\n  s: { source: ./src, targets: [./dst, ./dst2], mode: move, settle: 0s, on_conflict: overwrite, include: ["**/*.gcode"] }\n',
      join(dir, "ferry.yaml"),
      { deviceKinds, env: {} },
    );
    const sync = config.syncs.get("s");
    assert.ok(sync);
    const devices = new Devices(config, silentLogger);
    // A target that cannot take the file keeps its source copy: dst2 has a folder in its way.
    await mkdir(join(dir, "dst2/photo.gcode"), { recursive: true });
    const reports = await runSync(sync, devices);
    assert.deepEqual(
      reports.map((r) => [r.target, r.done, r.failed]),
      [
        ["./dst", 2, 0],
        ["./dst2", 1, 1],
      ],
    );
    assert.deepEqual(await tree(join(dir, "src")), [
      "flight 7/",
      "notes.txt=not selected",
      "photo.gcode=photo",
    ]);
    assert.deepEqual(await tree(join(dir, "dst")), [
      "flight 7/",
      "flight 7/log.gcode=log",
      "photo.gcode=photo",
    ]);
    // Once the way is clear, the next run delivers it and lets the source go.
    await rm(join(dir, "dst2/photo.gcode"), { recursive: true });
    await runSync(sync, devices);
    assert.deepEqual(await tree(join(dir, "src")), ["flight 7/", "notes.txt=not selected"]);
    assert.deepEqual(await tree(join(dir, "dst2")), [
      "flight 7/",
      "flight 7/log.gcode=log",
      "photo.gcode=photo",
    ]);
    await devices.close();
  });
});

describe("move onto a target that holds a different file of the same name", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-conflict-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const moveRun = async (onConflict?: string) => {
    const extra = onConflict === undefined ? "" : `, on_conflict: ${onConflict}`;
    const config = parseConfig(
      `syncs:\n  logs: { source: ./flights, targets: [./archive], mode: move, settle: 0s${extra} }\n`,
      join(dir, "ferry.yaml"),
      { deviceKinds, env: {} },
    );
    const sync = config.syncs.get("logs");
    assert.ok(sync);
    const devices = new Devices(config, silentLogger);
    const reports = await runSync(sync, devices);
    await devices.close();
    return reports;
  };

  test("keeps both by default: the new log lands as 'log1 (1).ulg', then 'log1 (2).ulg'", async () => {
    await mkdir(join(dir, "flights"), { recursive: true });
    await mkdir(join(dir, "archive"), { recursive: true });
    await writeFile(join(dir, "archive/log1.ulg"), "archived flight");
    await writeFile(join(dir, "flights/log1.ulg"), "new flight");
    const [report] = await moveRun();
    assert.equal(report?.outcome, "done", JSON.stringify(report));
    assert.deepEqual(await tree(join(dir, "archive")), [
      "log1 (1).ulg=new flight",
      "log1.ulg=archived flight",
    ]);
    assert.deepEqual(await tree(join(dir, "flights")), []);
    await writeFile(join(dir, "flights/log1.ulg"), "third flight!");
    await moveRun();
    assert.deepEqual(await tree(join(dir, "archive")), [
      "log1 (1).ulg=new flight",
      "log1 (2).ulg=third flight!",
      "log1.ulg=archived flight",
    ]);
    assert.deepEqual(await tree(join(dir, "flights")), []);
  });

  test("on_conflict: skip leaves the source; overwrite replaces the archived file", async () => {
    await writeFile(join(dir, "flights/log1.ulg"), "fourth");
    const [skipped] = await moveRun("skip");
    assert.equal(skipped?.skipped, 1);
    assert.deepEqual(await tree(join(dir, "flights")), ["log1.ulg=fourth"]);
    assert.equal((await tree(join(dir, "archive"))).length, 3);
    await moveRun("overwrite");
    assert.ok((await tree(join(dir, "archive"))).includes("log1.ulg=fourth"));
    assert.deepEqual(await tree(join(dir, "flights")), []);
  });
});

describe("move of a file that is still being written", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-settle-"));
    await mkdir(join(dir, "flights"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test("is not taken until it has been unchanged for the settle time; then it moves whole", async () => {
    const config = parseConfig(
      "syncs:\n  logs: { source: ./flights, targets: [./archive], mode: move }\n",
      join(dir, "ferry.yaml"),
      { deviceKinds, env: {} },
    );
    const sync = config.syncs.get("logs");
    assert.ok(sync);
    assert.equal(sync.settleS, 10, "move waits 10 s by default");
    const devices = new Devices(config, silentLogger);
    // A logger wrote to it just now (and may write again).
    await writeFile(join(dir, "flights/log.ulg"), "first 50 kB");
    const [early] = await runSync(sync, devices);
    assert.equal(early?.skipped, 1);
    assert.equal(early.done, 0);
    assert.deepEqual(await tree(join(dir, "flights")), ["log.ulg=first 50 kB"]);
    await assert.rejects(readdir(join(dir, "archive")), { code: "ENOENT" });
    // The logger appended and then went quiet a minute ago: now it goes, all of it.
    await writeFile(join(dir, "flights/log.ulg"), "first 50 kB and the rest");
    const quiet = new Date(Date.now() - 60_000);
    await utimes(join(dir, "flights/log.ulg"), quiet, quiet);
    const [late] = await runSync(sync, devices);
    assert.equal(late?.done, 1, JSON.stringify(late));
    assert.deepEqual(await tree(join(dir, "archive")), ["log.ulg=first 50 kB and the rest"]);
    assert.deepEqual(await tree(join(dir, "flights")), []);
    await devices.close();
  });
});
