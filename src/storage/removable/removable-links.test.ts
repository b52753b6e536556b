/**
 * Symbolic links on a removable volume (docs/adr/0015-links.md): a stick is nobody's to trust, so
 * a link on it never leads Ferry's writes or deletions off the volume, the served folder included.
 */
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { isFerryError } from "../../core/errors.ts";
import { collect, put } from "../../../test/conformance/storage-helpers.ts";
import { StagedVolume, UUID } from "./test-support.ts";

let volume: StagedVolume;
let outside: string;
beforeEach(async () => {
  volume = await StagedVolume.create();
  outside = join(volume.base, "home");
  await fs.mkdir(outside);
  await fs.writeFile(join(outside, "precious.txt"), "precious");
  await volume.attach();
});
afterEach(() => volume.cleanup());

async function refused(action: Promise<unknown>, link: string, what: string): Promise<void> {
  await assert.rejects(action, (error: unknown) => {
    assert.ok(isFerryError(error, "PERMISSION"), `${what}: ${String(error)}`);
    assert.ok(error.message.includes(link), `${what}: "${error.message}" names ${link}`);
    assert.match(error.message, /symbolic link/, what);
    return true;
  });
}

async function outsideUntouched(): Promise<void> {
  assert.deepEqual(await fs.readdir(outside), ["precious.txt"]);
  assert.equal(await fs.readFile(join(outside, "precious.txt"), "utf8"), "precious");
}

describe("removable: symbolic links on the volume", () => {
  it("neither lists, writes nor deletes through a link inside the served folder", async () => {
    await fs.symlink(outside, join(volume.mountPoint, "logs"));
    const stick = volume.open();
    assert.deepEqual(await collect(stick.list("")), [], "the link is not followed");
    await refused(put(stick, "logs/new.bin", Buffer.from("x")), "logs", "write");
    await refused(stick.remove("logs/precious.txt"), "logs", "remove");
    await outsideUntouched();
  });

  it("refuses a served folder (path) that is a link on the volume", async () => {
    await fs.symlink(outside, join(volume.mountPoint, "DCIM"));
    const stick = volume.open({ uuid: UUID, path: "/DCIM" });
    await refused(collect(stick.list("")), "DCIM", "list");
    await refused(stick.remove("precious.txt"), "DCIM", "remove");
    await refused(put(stick, "new.bin", Buffer.from("x")), "DCIM", "write");
    await outsideUntouched();
  });
});
