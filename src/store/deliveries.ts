/**
 * What Ferry delivered to one target of one sync, kept as a JSON file in the data folder until the
 * database arrives (docs/adr/0009-delivery-records.md). Each record says which source file (size,
 * time) a target file came from and how the target showed it right after (size, time): while the
 * target still shows it so, the copy is that source file, whatever the target's clock says.
 *
 * The records only spare transfers. Losing them (a crash between two saves, a deleted folder)
 * costs at most a file sent again, so a file that cannot be read is started afresh, with a warning.
 */
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Logger } from "../core/logger.ts";

/** A source file as it was when Ferry sent it, and the copy as the target showed it right after. */
export interface DeliveryRecord {
  source: { size: number; modTime?: number };
  target: { size?: number; modTime?: number };
}

/** The record of a source file (size, time) sent and stored as `stored` shows it. */
export function deliveryRecord(
  source: { size: number; modTime?: number | undefined },
  stored: { size?: number | undefined; modTime?: number | undefined },
): DeliveryRecord {
  return {
    source: { size: source.size, ...(source.modTime === undefined ? {} : { modTime: source.modTime }) },
    target: {
      ...(stored.size === undefined ? {} : { size: stored.size }),
      ...(stored.modTime === undefined ? {} : { modTime: stored.modTime }),
    },
  };
}

/** The records of one target of one sync, keyed by the target path's comparison key. */
export interface DeliveryRecords {
  get(key: string): DeliveryRecord | undefined;
  set(key: string, record: DeliveryRecord): void;
  delete(key: string): void;
  keys(): IterableIterator<string>;
  /** Makes the changes durable. */
  save(): Promise<void>;
}

/** Where a run finds the records of each of its targets. */
export type DeliveryRecordsOpener = (sync: string, target: string) => Promise<DeliveryRecords>;

/** Records kept in `dataDir/deliveries`, one file per target of a sync. */
export function deliveryFiles(dataDir: string, logger: Logger): DeliveryRecordsOpener {
  return (sync, target) => DeliveryFile.open(dataDir, sync, target, logger);
}

const FORMAT = 1;

interface FileShape {
  format: number;
  sync: string;
  target: string;
  records: Record<string, DeliveryRecord>;
}

export class DeliveryFile implements DeliveryRecords {
  /** The JSON file these records live in. */
  readonly path: string;
  readonly #sync: string;
  readonly #target: string;
  readonly #records: Map<string, DeliveryRecord>;
  #saving: Promise<void> = Promise.resolve();
  #dirty = false;

  private constructor(path: string, sync: string, target: string, records: Map<string, DeliveryRecord>) {
    this.path = path;
    this.#sync = sync;
    this.#target = target;
    this.#records = records;
  }

  static async open(dataDir: string, sync: string, target: string, logger: Logger): Promise<DeliveryFile> {
    const digest = createHash("sha256").update(`${sync}\0${target}`).digest("hex").slice(0, 24);
    const path = join(dataDir, "deliveries", `${digest}.json`);
    const records = new Map<string, DeliveryRecord>();
    try {
      const shape = JSON.parse(await fs.readFile(path, "utf8")) as Partial<FileShape>;
      if (shape.format === FORMAT && shape.sync === sync && shape.target === target && shape.records) {
        for (const [key, record] of Object.entries(shape.records)) records.set(key, record);
      } else {
        logger.warn({ path }, "delivery records of another format or sync; starting afresh");
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
        logger.warn({ path, err: error }, "delivery records cannot be read; starting afresh");
      }
    }
    await removeLeftovers(path);
    return new DeliveryFile(path, sync, target, records);
  }

  get(key: string): DeliveryRecord | undefined {
    return this.#records.get(key);
  }

  set(key: string, record: DeliveryRecord): void {
    this.#records.set(key, record);
    this.#dirty = true;
  }

  delete(key: string): void {
    this.#dirty = this.#records.delete(key) || this.#dirty;
  }

  keys(): IterableIterator<string> {
    return this.#records.keys();
  }

  /** Writes the records if they changed; saves run one after another, never two at once. */
  save(): Promise<void> {
    this.#saving = this.#saving.then(() => this.#write());
    return this.#saving;
  }

  async #write(): Promise<void> {
    if (!this.#dirty) return;
    this.#dirty = false;
    const shape: FileShape = {
      format: FORMAT,
      sync: this.#sync,
      target: this.#target,
      records: Object.fromEntries(this.#records),
    };
    // Whole or not at all: a temp file, flushed, renamed over the old one.
    await fs.mkdir(dirname(this.path), { recursive: true });
    const temp = `${this.path}.${randomBytes(6).toString("hex")}.tmp`;
    try {
      const handle = await fs.open(temp, "w");
      try {
        await handle.writeFile(JSON.stringify(shape));
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.rename(temp, this.path);
    } catch (error) {
      this.#dirty = true;
      await fs.rm(temp, { force: true });
      throw error;
    }
  }
}

/**
 * Temp files of a save that a crash interrupted. One run at a time holds the data folder (the run
 * lock) and opens each target's records once, so any temp file of this target is a leftover.
 */
async function removeLeftovers(path: string): Promise<void> {
  const folder = dirname(path);
  const prefix = `${basename(path)}.`;
  let names: string[];
  try {
    names = await fs.readdir(folder);
  } catch {
    return;
  }
  for (const name of names) {
    if (name.startsWith(prefix) && name.endsWith(".tmp")) await fs.rm(join(folder, name), { force: true });
  }
}
