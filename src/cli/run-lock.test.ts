import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { acquireRunLock, LockedError } from "./run-lock.ts";

describe("the sync run lock", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-lock-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test("one holder per data folder; a second is told who holds it; release lets the next in", async () => {
    const data = join(dir, "a");
    const first = await acquireRunLock(data);
    await assert.rejects(acquireRunLock(data), (error: unknown) => {
      assert.ok(error instanceof LockedError);
      assert.match(error.message, new RegExp(`pid ${process.pid}, started \\d{4}-`));
      assert.match(error.message, /this run changes nothing/);
      return true;
    });
    const other = await acquireRunLock(join(dir, "b"));
    await other.release();
    await first.release();
    const again = await acquireRunLock(data);
    await again.release();
  });

  test("a holder killed with SIGKILL leaves nothing that blocks the next run", async () => {
    const data = join(dir, "killed");
    const child = spawn(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `const { acquireRunLock } = await import(${JSON.stringify(new URL("./run-lock.ts", import.meta.url).href)});
         await acquireRunLock(${JSON.stringify(data)});
         console.log("held");
         setInterval(() => {}, 1000);`,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const [line] = (await once(child.stdout, "data")) as [Buffer];
    assert.equal(line.toString().trim(), "held");
    await assert.rejects(acquireRunLock(data), LockedError);
    child.kill("SIGKILL");
    await once(child, "exit");
    const lock = await acquireRunLock(data);
    await lock.release();
  });
});
