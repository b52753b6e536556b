import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { coalesce, type FileIdentity } from "./watch.ts";

describe("coalescing filesystem events", () => {
  const id = (ino: number, size: number, mtimeMs = 1000): FileIdentity => ({ ino, size, mtimeMs });

  test("an unlink and an add of the same file is a rename", () => {
    const inodes = new Map([["a.gcode", id(7, 10)]]);
    const changes = coalesce(
      [
        { type: "unlink", path: "a.gcode" },
        { type: "add", path: "b.gcode", id: id(7, 10) },
      ],
      inodes,
    );
    assert.deepEqual(changes, [{ type: "move", path: "b.gcode", from: "a.gcode" }]);
  });

  test("a new file that only reuses a deleted file's inode is a deletion and a new file", () => {
    // The file system hands a freed inode to the next file: notes4.txt is no renamed print.
    const inodes = new Map([["sub/part.gcode", id(7, 10)]]);
    const changes = coalesce(
      [
        { type: "unlink", path: "sub/part.gcode" },
        { type: "add", path: "notes4.txt", id: id(7, 3, 2000) },
      ],
      inodes,
    );
    assert.deepEqual(changes, [
      { type: "delete", path: "sub/part.gcode" },
      { type: "upsert", path: "notes4.txt" },
    ]);
  });
});
