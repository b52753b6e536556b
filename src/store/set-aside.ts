/**
 * `ferry store reset`: a damaged SQLite store is moved aside, never deleted (it may still be read
 * with sqlite3's .recover, or be wanted by whoever looks into the damage). The next open creates a
 * fresh one.
 */
import { access, rename } from "node:fs/promises";
import { join } from "node:path";

/** The store file and its WAL companions, which belong to it: moved together, they still open as one. */
const COMPANIONS = ["", "-wal", "-shm"];

/**
 * Moves `<dataDir>/ferry.db` (with -wal, -shm) to `ferry.db.corrupt-<time>` (with -wal, -shm).
 * Returns the new names; empty when there was no store. The caller holds the run lock.
 */
export async function setStoreAside(dataDir: string, now = new Date()): Promise<string[]> {
  const file = join(dataDir, "ferry.db");
  if (!(await exists(file))) return [];
  const stamp = now
    .toISOString()
    .replace(/\.\d+Z$/, "Z")
    .replaceAll(":", "-");
  let aside = `${file}.corrupt-${stamp}`;
  for (let n = 2; await anyExists(aside); n++) aside = `${file}.corrupt-${stamp}-${n}`;
  const moved: string[] = [];
  // The WAL first: one left behind would be replayed into the fresh store created after.
  for (const suffix of [...COMPANIONS].reverse()) {
    if (!(await exists(file + suffix))) continue;
    await rename(file + suffix, aside + suffix);
    moved.unshift(aside + suffix);
  }
  return moved;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

async function anyExists(base: string): Promise<boolean> {
  for (const suffix of COMPANIONS) if (await exists(base + suffix)) return true;
  return false;
}
