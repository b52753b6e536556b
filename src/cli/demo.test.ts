/**
 * `ferry demo --dir X` starts X afresh, so it must only ever remove a folder it made itself, and
 * what it leaves there for the user to read must be readable.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { DEMO_MARKER, prepareDemoFolder } from "./demo.ts";

const cli = new URL("../../bin/ferry.js", import.meta.url).pathname;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ferry-demo-test-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("ferry demo --dir", () => {
  it("refuses a folder it did not make, names it, exits 2 and leaves every file in it", async () => {
    const mine = join(dir, "my-files");
    await mkdir(join(mine, "photos"), { recursive: true });
    await writeFile(join(mine, "photos", "holiday.jpg"), "precious");
    const run = promisify(execFile)(process.execPath, [cli, "demo", "--dir", mine, "--seconds", "0"], {
      env: { ...process.env, FERRY_LOG_LEVEL: "error" },
    });
    const failure = await run.then(
      () => assert.fail("the demo ran in a folder it did not make"),
      (error: unknown) => error as { code: number; stderr: string },
    );
    assert.equal(failure.code, 2);
    assert.ok(failure.stderr.includes(mine), `the message names ${mine}: ${failure.stderr}`);
    assert.match(failure.stderr, /not made by `ferry demo`/);
    assert.doesNotMatch(failure.stderr, /\n\s+at /, "no stack trace");
    assert.equal(await readFile(join(mine, "photos", "holiday.jpg"), "utf8"), "precious");
    assert.deepEqual(await readdir(mine), ["photos"]);
  });

  it("refuses a file given as the folder", async () => {
    const file = join(dir, "a-file");
    await writeFile(file, "mine");
    await assert.rejects(prepareDemoFolder(file), { name: "UsageError", message: new RegExp(file) });
    assert.equal(await readFile(file, "utf8"), "mine");
  });

  it("makes a new or empty folder, marks it, and starts its own folder afresh on the next run", async () => {
    const fresh = join(dir, "fresh");
    await prepareDemoFolder(fresh);
    assert.ok((await readdir(fresh)).includes(DEMO_MARKER));
    await writeFile(join(fresh, "master", "left-over.gcode"), "old");
    await prepareDemoFolder(fresh);
    assert.equal((await readdir(join(fresh, "master"))).includes("left-over.gcode"), false);

    const empty = join(dir, "empty");
    await mkdir(empty);
    await prepareDemoFolder(empty);
    assert.ok((await readdir(empty)).includes(DEMO_MARKER));
  });

  it("leaves a README.txt of readable text in master/", async () => {
    const root = join(dir, "readme");
    await prepareDemoFolder(root);
    const bytes = await readFile(join(root, "master", "README.txt"));
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    assert.match(text, /^[\p{L}\p{N}\p{P}\p{S} \n]+$/u, "letters, digits, punctuation and spaces only");
    assert.match(text, /Ferry demo/);
  });
});
