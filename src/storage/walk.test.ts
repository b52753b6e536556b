import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import { isFerryError } from "../core/errors.ts";
import { silentLogger } from "../core/logger.ts";
import { collect, put } from "../../test/conformance/storage-helpers.ts";
import type { Entry, ListOptions, StorageAdapter } from "./adapter.ts";
import { memoryAdapter } from "./memory/memory.ts";
import { walk } from "./walk.ts";

async function tree(): Promise<StorageAdapter> {
  const adapter = memoryAdapter.create(
    {},
    { name: `walk-${randomUUID()}`, logger: silentLogger, baseDir: "/" },
  );
  for (const path of ["top.gcode", "a/one.gcode", "a/b/two.gcode", "a/b/c/three.gcode", "z/four.gcode"]) {
    await put(adapter, path, Buffer.from(path));
  }
  await adapter.mkdir("empty");
  return adapter;
}

/** The same adapter seen as one that lists a folder at a time, counting its list calls. */
function flat(inner: StorageAdapter, onList: (dir: string) => void = () => undefined): StorageAdapter {
  return {
    kind: inner.kind,
    name: inner.name,
    capabilities: { ...inner.capabilities, list: "flat" },
    list(dir: string, options?: ListOptions) {
      assert.notEqual(options?.recursive, true, "a flat adapter is never asked for a recursive listing");
      onList(dir);
      return inner.list(dir, options);
    },
    stat: (path, options) => inner.stat(path, options),
    read: (path, options) => inner.read(path, options),
    write: (path, source, options) => inner.write(path, source, options),
    remove: (path, options) => inner.remove(path, options),
    mkdir: (path, options) => inner.mkdir(path, options),
    close: () => inner.close(),
  };
}

const paths = (entries: Entry[]) => entries.map((e) => `${e.type === "dir" ? "d" : "f"}:${e.path}`);

const ALL = [
  "d:a",
  "d:a/b",
  "d:a/b/c",
  "f:a/b/c/three.gcode",
  "f:a/b/two.gcode",
  "f:a/one.gcode",
  "d:empty",
  "f:top.gcode",
  "d:z",
  "f:z/four.gcode",
];

describe("walk", () => {
  it("yields every file and folder once with one recursive listing", async () => {
    const adapter = await tree();
    const entries = await collect(walk(adapter, ""));
    assert.deepEqual(paths(entries).sort(), [...ALL].sort());
    assert.equal(entries.find((e) => e.path === "a/b/two.gcode")?.size, "a/b/two.gcode".length);
  });

  it("lists folder by folder on a flat adapter, each folder before its contents", async () => {
    const listed: string[] = [];
    const entries = await collect(
      walk(
        flat(await tree(), (dir) => listed.push(dir)),
        "",
      ),
    );
    assert.deepEqual(paths(entries).sort(), [...ALL].sort());
    for (const [i, entry] of entries.entries()) {
      const parent = entry.path.split("/").slice(0, -1).join("/");
      if (parent !== "")
        assert.ok(
          entries.slice(0, i).some((e) => e.path === parent),
          `${entry.path} after its folder`,
        );
    }
    assert.deepEqual(listed.sort(), ["", "a", "a/b", "a/b/c", "empty", "z"]);
  });

  it("walks a subfolder with paths relative to the adapter's root", async () => {
    for (const adapter of [await tree(), flat(await tree())]) {
      assert.deepEqual(paths(await collect(walk(adapter, "a/b"))).sort(), [
        "d:a/b/c",
        "f:a/b/c/three.gcode",
        "f:a/b/two.gcode",
      ]);
    }
  });

  it("streams: the first entry arrives before deeper folders are listed", async () => {
    const listed: string[] = [];
    const iterator = walk(
      flat(await tree(), (dir) => listed.push(dir)),
      "",
    )[Symbol.asyncIterator]();
    const first = await iterator.next();
    assert.equal(first.done, false);
    assert.deepEqual(listed, [""]);
    await iterator.return?.();
  });

  it("is NOT_FOUND for a missing folder and skips a subfolder removed meanwhile", async () => {
    const adapter = flat(await tree());
    await assert.rejects(collect(walk(adapter, "nope")), (error) => isFerryError(error, "NOT_FOUND"));
    const seen: string[] = [];
    for await (const entry of walk(adapter, "")) {
      seen.push(entry.path);
      if (entry.path === "z") {
        await adapter.remove("z/four.gcode");
        await adapter.remove("z");
      }
    }
    assert.ok(seen.includes("z") && !seen.includes("z/four.gcode"));
  });

  it("stops with ABORTED when its signal fires", async () => {
    const controller = new AbortController();
    const seen: string[] = [];
    const walking = (async () => {
      for await (const entry of walk(flat(await tree()), "", { signal: controller.signal })) {
        seen.push(entry.path);
        controller.abort();
      }
    })();
    await assert.rejects(walking, (error) => isFerryError(error, "ABORTED"));
    assert.equal(seen.length, 1);
  });

  it("is UNSUPPORTED on an adapter that cannot list", async () => {
    const adapter = await tree();
    const blind = { ...adapter, capabilities: { ...adapter.capabilities, list: "none" as const } };
    await assert.rejects(collect(walk(blind, "")), (error) => isFerryError(error, "UNSUPPORTED"));
  });
});
