/**
 * The farm's file library: the print files operators upload once and print on any printer. Bytes
 * are content-addressed under `<data_dir>/library` (content.ts); each content has one row in the
 * store's `library_files` with the name it was first uploaded under and the metadata its slicer
 * wrote (metadata/). A second upload of the same bytes, under any name, is the same entry
 * (`duplicate: true`): nothing is stored twice and the first name stays. A file a job uses cannot
 * be removed: the caller says which are in use (the job store), the library asks before removing.
 */
import { randomUUID } from "node:crypto";
import { join, relative } from "node:path";
import type { Readable } from "node:stream";
import type { Selectable } from "kysely";
import { systemClock, type Clock } from "../../core/clock.ts";
import { FerryError } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { localAdapter } from "../../storage/local/local.ts";
import type { JobFiles } from "../upload.ts";
import type { LibraryFilesTable } from "../../store/schema.ts";
import type { Store } from "../../store/store.ts";
import { ContentStore } from "./content.ts";
import { kindOfName, readMetadata, type LibraryFileKind } from "./metadata/read.ts";
import type {
  MetadataResult,
  PrintMetadata,
  Thumbnail,
  ThumbnailFormat,
  ThumbnailInfo,
} from "./metadata/types.ts";

export interface LibraryFile {
  id: string;
  sha256: string;
  /** The name it was first uploaded under. */
  name: string;
  size: number;
  kind: LibraryFileKind;
  /** What the file's slicer wrote; null when the file tells nothing (then `noMetadataReason` says why). */
  metadata: PrintMetadata | null;
  noMetadataReason?: string;
  /** The embedded pictures, in file order; `thumbnail(id, index)` gives one's bytes. */
  thumbnails: ThumbnailInfo[];
  uploadedBy?: string;
  /** ms since the epoch. */
  createdAt: number;
}

export interface AddedFile {
  file: LibraryFile;
  /** The same bytes were in the library already: `file` is that entry, under its first name. */
  duplicate: boolean;
}

export interface LibraryOptions {
  store: Store;
  /** The data folder: the library keeps its bytes in `<dataDir>/library`. */
  dataDir: string;
  /** Largest file accepted, in bytes (default 1 GiB). */
  maxBytes?: number;
  clock?: Clock;
  /** A temp file untouched this long is a crashed upload's, removed at open (default 1 h). */
  staleTempMs?: number;
}

export const DEFAULT_MAX_BYTES = 1 << 30;
const DEFAULT_STALE_TEMP_MS = 60 * 60 * 1000;
const MAX_NAME_BYTES = 255;

export const THUMBNAIL_CONTENT_TYPES: Readonly<Record<ThumbnailFormat, string>> = {
  png: "image/png",
  jpg: "image/jpeg",
  qoi: "image/qoi",
};

/** Opens the library: its folder made, temps of crashed uploads swept. */
export async function openLibrary(options: LibraryOptions): Promise<Library> {
  const library = new Library(options);
  await library.sweep();
  return library;
}

export class Library {
  readonly #store: Store;
  readonly #content: ContentStore;
  readonly #clock: Clock;
  readonly #maxBytes: number;
  readonly #staleTempMs: number;
  /** Adds and removes of one content run one at a time in this process (see #exclusive). */
  readonly #busy = new Map<string, Promise<unknown>>();

  constructor(options: LibraryOptions) {
    this.#store = options.store;
    this.#content = new ContentStore(join(options.dataDir, "library"));
    this.#clock = options.clock ?? systemClock;
    this.#maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    this.#staleTempMs = options.staleTempMs ?? DEFAULT_STALE_TEMP_MS;
  }

  get maxBytes(): number {
    return this.#maxBytes;
  }

  /** Removes what crashed uploads left; `openLibrary` does it. Returns how many temps went. */
  sweep(): Promise<number> {
    return this.#content.sweepTemps(this.#clock.now(), this.#staleTempMs);
  }

  /**
   * Stores an upload, streamed: hashed while written, at most `maxBytes`. The name must be a print
   * file's (.gcode, .bgcode, .3mf; NAME_INVALID before any byte is read); past the limit NO_SPACE,
   * and nothing is kept. Its metadata is read once, here.
   */
  async add(
    input: Readable | AsyncIterable<Uint8Array>,
    options: { name: string; uploadedBy?: string | undefined; signal?: AbortSignal | undefined },
  ): Promise<AddedFile> {
    const name = checkName(options.name);
    const kind = kindOfName(name);
    if (!kind) {
      throw new FerryError(
        "NAME_INVALID",
        `${name}: not a print file; the library takes .gcode, .bgcode and .3mf`,
        {
          subject: name,
        },
      );
    }
    const written = await this.#content.write(input, {
      maxBytes: this.#maxBytes,
      signal: options.signal,
      subject: name,
    });
    return this.#exclusive(written.sha256, () =>
      this.#enter(written, name, kind, options.uploadedBy).finally(() => this.#content.drop(written.temp)),
    );
  }

  /** The bytes into place and the entry into the store (or the entry that has them already). */
  async #enter(
    written: { sha256: string; size: number; temp: string },
    name: string,
    kind: LibraryFileKind,
    uploadedBy: string | undefined,
  ): Promise<AddedFile> {
    const existing = await this.#bySha(written.sha256);
    if (existing) {
      // Drops the temp; or, when the entry's bytes were lost (deleted by hand), puts them back.
      await this.#content.place(written.temp, written.sha256);
      return { file: existing, duplicate: true };
    }
    await this.#content.place(written.temp, written.sha256);
    const found = await this.#read(written.sha256, kind);
    const row: Selectable<LibraryFilesTable> = {
      id: randomUUID(),
      sha256: written.sha256,
      name,
      size: written.size,
      kind,
      metadata: found.metadata === null ? null : JSON.stringify(found.metadata),
      metadata_problem: found.metadata === null ? found.reason : null,
      thumbnails: JSON.stringify(found.thumbnails.map(summary)),
      uploaded_by: uploadedBy ?? null,
      created_at: this.#clock.now(),
    };
    const inserted = await this.#store.db
      .insertInto("library_files")
      .values(row)
      .onConflict((oc) => oc.column("sha256").doNothing())
      .returning("id")
      .executeTakeFirst();
    if (inserted) return { file: toFile(row), duplicate: false };
    // Another process added the same bytes at the same moment.
    const other = await this.#bySha(written.sha256);
    if (!other)
      throw new FerryError("TRANSIENT", `${name}: the library entry vanished while it was added`, {
        subject: name,
      });
    return { file: other, duplicate: true };
  }

  async get(id: string): Promise<LibraryFile | undefined> {
    const row = await this.#store.db
      .selectFrom("library_files")
      .select(COLUMNS)
      .where("id", "=", id)
      .executeTakeFirst();
    return row && toFile(row);
  }

  /**
   * The farm's way to read a job's file (an upload to a printer is an ordinary transfer): the
   * library's content folder as a local storage adapter, the file at `<sha[0..2]>/<sha>`.
   */
  jobFiles(logger: Logger): JobFiles {
    const root = this.#content.root;
    const storage = localAdapter.create({ path: root }, { name: "library", logger, baseDir: root });
    return {
      open: async (file) => {
        const entry = file.id === null ? undefined : await this.get(file.id);
        if (!entry)
          throw new FerryError("NOT_FOUND", `${file.name} is not in the file library`, {
            subject: file.name,
            retryable: false,
          });
        const path = relative(root, this.#content.path(entry.sha256));
        return { storage, path, size: entry.size };
      },
    };
  }

  /** Newest first. */
  async list(options: { limit?: number; offset?: number } = {}): Promise<LibraryFile[]> {
    const rows = await this.#store.db
      .selectFrom("library_files")
      .select(COLUMNS)
      .orderBy("created_at", "desc")
      .orderBy("id", "desc")
      .limit(options.limit ?? 100)
      .offset(options.offset ?? 0)
      .execute();
    return rows.map(toFile);
  }

  async count(): Promise<number> {
    const row = await this.#store.db
      .selectFrom("library_files")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .executeTakeFirstOrThrow();
    return row.n;
  }

  /** The file's bytes, for a download. NOT_FOUND for an unknown id. */
  async read(
    id: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<{ file: LibraryFile; stream: Readable }> {
    const file = await this.#require(id);
    if (!(await this.#content.has(file.sha256))) throw missingContent(file);
    return { file, stream: this.#content.read(file.sha256, options) };
  }

  /** One embedded picture (index as in `file.thumbnails`), read again from the file. */
  async thumbnail(id: string, index: number): Promise<Thumbnail> {
    const file = await this.#require(id);
    if (!Number.isInteger(index) || index < 0 || index >= file.thumbnails.length) {
      throw new FerryError(
        "NOT_FOUND",
        `${file.name} has no thumbnail ${index} (it has ${file.thumbnails.length})`,
        {
          subject: file.name,
        },
      );
    }
    const found = await this.#read(file.sha256, file.kind, file);
    const thumbnail = found.thumbnails[index];
    if (!thumbnail)
      throw new FerryError("NOT_FOUND", `${file.name}: thumbnail ${index} is no longer readable`, {
        subject: file.name,
      });
    return thumbnail;
  }

  /**
   * Deletes a file and its bytes. `inUse` answers whether a job uses it (the job store): then
   * CONFLICT, and nothing changes. NOT_FOUND for an unknown id.
   */
  async remove(id: string, options: { inUse: (id: string) => Promise<boolean> }): Promise<void> {
    const file = await this.#require(id);
    if (await options.inUse(id)) {
      throw new FerryError("CONFLICT", `${file.name} is used by a print job and cannot be deleted`, {
        subject: file.name,
        retryable: false,
      });
    }
    await this.#exclusive(file.sha256, async () => {
      await this.#store.db.deleteFrom("library_files").where("id", "=", id).execute();
      await this.#content.remove(file.sha256);
    });
  }

  async #require(id: string): Promise<LibraryFile> {
    const file = await this.get(id);
    if (!file) throw new FerryError("NOT_FOUND", `no file ${id} in the library`, { subject: id });
    return file;
  }

  async #bySha(sha256: string): Promise<LibraryFile | undefined> {
    const row = await this.#store.db
      .selectFrom("library_files")
      .select(COLUMNS)
      .where("sha256", "=", sha256)
      .executeTakeFirst();
    return row && toFile(row);
  }

  async #read(sha256: string, kind: LibraryFileKind, file?: LibraryFile): Promise<MetadataResult> {
    let source;
    try {
      source = await this.#content.source(sha256);
    } catch (error) {
      if (file && (error as NodeJS.ErrnoException).code === "ENOENT") throw missingContent(file);
      throw error;
    }
    try {
      return await readMetadata(kind, source);
    } finally {
      await source.close();
    }
  }

  /**
   * Runs `work` alone among this process's adds and removes of one content, so a remove cannot
   * delete the bytes an add of the same content has just found in place.
   */
  async #exclusive<T>(sha256: string, work: () => Promise<T>): Promise<T> {
    const before = this.#busy.get(sha256) ?? Promise.resolve();
    const run = before.catch(() => undefined).then(work);
    this.#busy.set(sha256, run);
    try {
      return await run;
    } finally {
      if (this.#busy.get(sha256) === run) this.#busy.delete(sha256);
    }
  }
}

const COLUMNS = [
  "id",
  "sha256",
  "name",
  "size",
  "kind",
  "metadata",
  "metadata_problem",
  "thumbnails",
  "uploaded_by",
  "created_at",
] as const;

function toFile(row: Selectable<LibraryFilesTable>): LibraryFile {
  const file: LibraryFile = {
    id: row.id,
    sha256: row.sha256,
    name: row.name,
    size: row.size,
    kind: row.kind,
    metadata: row.metadata === null ? null : (JSON.parse(row.metadata) as PrintMetadata),
    thumbnails: JSON.parse(row.thumbnails) as ThumbnailInfo[],
    createdAt: row.created_at,
  };
  if (row.metadata_problem !== null) file.noMetadataReason = row.metadata_problem;
  if (row.uploaded_by !== null) file.uploadedBy = row.uploaded_by;
  return file;
}

const summary = ({ format, width, height, bytes }: Thumbnail): ThumbnailInfo => ({
  format,
  width,
  height,
  bytes,
});

function missingContent(file: LibraryFile): FerryError {
  return new FerryError(
    "NOT_FOUND",
    `${file.name}: its bytes (${file.sha256}) are missing from the library folder`,
    {
      subject: file.name,
    },
  );
}

/** A name as uploaded, without folders: a base name of at most 255 UTF-8 bytes, no control characters. */
function checkName(raw: string): string {
  const name = raw.trim();
  const problem =
    name === ""
      ? "is empty"
      : /[/\\]/.test(name)
        ? "holds a folder separator"
        : // eslint-disable-next-line no-control-regex -- control characters are what it looks for
          /[\u0000-\u001f\u007f]/.test(name)
          ? "holds a control character"
          : Buffer.byteLength(name) > MAX_NAME_BYTES
            ? `is longer than ${MAX_NAME_BYTES} bytes`
            : undefined;
  if (problem)
    throw new FerryError("NAME_INVALID", `file name ${JSON.stringify(raw)} ${problem}`, { subject: raw });
  return name;
}
