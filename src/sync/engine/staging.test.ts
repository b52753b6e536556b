/** Staging resumes from its last synced byte: a source that goes away mid-file is not read twice. */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { isFerryError } from "../../core/errors.ts";
import { silentLogger } from "../../core/logger.ts";
import { localAdapter } from "../../storage/local/local.ts";
import { withFaults } from "../../storage/wrappers/faults.ts";
import type { TransferCheckpoint } from "./payloads.ts";
import { stageFile } from "./staging.ts";

const SIZE = 5 * 1024 * 1024;

describe("staging", () => {
  let dir: string;
  const data = randomBytes(SIZE);
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-staging-"));
    await writeFile(join(dir, "flight.log"), data);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test("an unplug mid-file keeps the synced bytes; the resume reads only the rest", async () => {
    const source = withFaults(
      localAdapter.create({ path: dir }, { name: "usb", logger: silentLogger, baseDir: dir }),
      { failReadsAfter: 3_500_000 },
    );
    const root = join(dir, "staging");
    // As the plan saw the file: its size and time (a changed file would be staged afresh).
    const { modTime } = await source.adapter.stat("flight.log");
    const file = {
      sync: "logs",
      path: "flight.log",
      size: SIZE,
      ...(modTime === undefined ? {} : { modTime }),
    };
    let checkpoint: TransferCheckpoint | null = null;
    const run = () => ({
      signal: new AbortController().signal,
      checkpoint,
      progress: (_bytes: number, cp?: TransferCheckpoint) => {
        if (cp) checkpoint = cp;
      },
      save: (cp: TransferCheckpoint) => {
        checkpoint = cp;
        return Promise.resolve();
      },
    });
    await assert.rejects(stageFile(source.adapter, root, file, run()), (error) =>
      isFerryError(error, "UNAVAILABLE"),
    );
    const kept = (checkpoint as TransferCheckpoint | null)?.bytes ?? 0;
    assert.ok(kept >= 3 * 1024 * 1024 && kept <= 3_500_000, `checkpoint at ${kept} bytes`);

    source.set({});
    const before = source.bytesRead;
    const staged = await stageFile(source.adapter, root, file, run());
    assert.equal(staged.size, SIZE);
    assert.equal(
      source.bytesRead - before,
      SIZE - kept,
      "only the bytes after the checkpoint are read again",
    );
    assert.ok(
      (await readFile(join(root, "flight.log"))).equals(data),
      "the staged copy is byte for byte the source",
    );
  });
});
