/**
 * Files kept in the process's memory: a storage adapter for tests and the demo that behaves like a
 * well-mannered filesystem (atomic writes, recursive listings, names matched in NFC). Adapters
 * created with the same device name share one volume for the life of the process, so a second
 * instance sees what the first wrote.
 */
import { createHash } from "node:crypto";
import { Readable, addAbortSignal } from "node:stream";
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { z } from "zod";
import { raceAbort, throwIfAborted, toFerryError } from "../../core/errors.ts";
import { basename, dirname, isWithin, joinPath, normalizePath, pathKey } from "../../core/paths.ts";
import {
  defineStorageAdapter,
  type Capabilities,
  type Entry,
  type HashKind,
  type ListOptions,
  type OpOptions,
  type ReadOptions,
  type StorageAdapter,
  type Usage,
  type WriteOptions,
} from "../adapter.ts";
import { sizeMismatch } from "../errors.ts";
import { memoryError, notFound } from "./errors.ts";

interface FileNode {
  kind: "file";
  name: string;
  data: Buffer;
  modTime: number;
}

interface DirNode {
  kind: "dir";
  name: string;
  modTime: number;
  /** Keyed by the NFC form of the child's name. */
  children: Map<string, FileNode | DirNode>;
}

type Node = FileNode | DirNode;

/** One in-memory tree of folders and files; several adapters may share it. */
export class MemoryVolume {
  readonly root: DirNode = { kind: "dir", name: "", modTime: Date.now(), children: new Map() };
}

const volumes = new Map<string, MemoryVolume>();

/** The volume adapters named `name` share, created on first use. */
export function memoryVolume(name: string): MemoryVolume {
  let volume = volumes.get(name);
  if (!volume) {
    volume = new MemoryVolume();
    volumes.set(name, volume);
  }
  return volume;
}

/** Forgets a named volume (its files go with it once no adapter holds it). */
export function dropMemoryVolume(name: string): void {
  volumes.delete(name);
}

const capabilities: Capabilities = {
  read: true,
  write: true,
  list: "recursive",
  listSizes: true,
  modTimePrecisionMs: 1,
  setModTime: true,
  hashes: ["sha256"],
  rangeRead: true,
  resumableWrite: "none",
  partialWritesVisible: false,
  atomicRename: true,
  serverSideMove: true,
  maxConcurrency: 16,
  forbiddenChars: "\0",
  maxNameBytes: 255,
  caseInsensitive: false,
  watch: false,
  usage: true,
  removable: false,
};

const CHUNK = 64 * 1024;

/** Runs synchronous work as a promise, so that its errors reject rather than throw. */
function settle<T>(signal: AbortSignal | undefined, work: () => T): Promise<T> {
  return new Promise<T>((resolve) => {
    throwIfAborted(signal);
    resolve(work());
  });
}

class MemoryStorage implements StorageAdapter {
  readonly kind = "memory";
  readonly name: string;
  readonly capabilities: Readonly<Capabilities> = memoryAdapter.capabilities;
  readonly #volume: MemoryVolume;

  constructor(volume: MemoryVolume, name: string) {
    this.#volume = volume;
    this.name = name;
  }

  /** Normalizes a contract path and refuses names this target cannot store. */
  #check(input: string): string {
    const path = normalizePath(input);
    for (const name of path === "" ? [] : path.split("/")) {
      for (const char of this.capabilities.forbiddenChars) {
        if (name.includes(char)) {
          throw memoryError("NAME_INVALID", this.name, path, `names may not contain ${JSON.stringify(char)}`);
        }
      }
      const max = this.capabilities.maxNameBytes;
      if (max !== null && Buffer.byteLength(name) > max) {
        throw memoryError("NAME_INVALID", this.name, path, `a name may have at most ${max} bytes`);
      }
    }
    return path;
  }

  /** The node at `path` and its stored path, or undefined. */
  #find(path: string): { node: Node; path: string } | undefined {
    let node: Node = this.#volume.root;
    let stored = "";
    for (const part of path === "" ? [] : path.split("/")) {
      if (node.kind !== "dir") return undefined;
      const child: Node | undefined = node.children.get(pathKey(part));
      if (!child) return undefined;
      node = child;
      stored = joinPath(stored, child.name);
    }
    return { node, path: stored };
  }

  /** Creates the folder `path` and its parents; returns it and its stored path. */
  #mkdirs(path: string): { node: DirNode; path: string } {
    let node: DirNode = this.#volume.root;
    let stored = "";
    for (const part of path === "" ? [] : path.split("/")) {
      let child = node.children.get(pathKey(part));
      if (!child) {
        child = { kind: "dir", name: part, modTime: Date.now(), children: new Map() };
        node.children.set(pathKey(part), child);
        node.modTime = Date.now();
      }
      stored = joinPath(stored, child.name);
      if (child.kind !== "dir")
        throw memoryError("EXISTS", this.name, stored, "a file is in the way of a folder");
      node = child;
    }
    return { node, path: stored };
  }

  #entry(node: Node, path: string): Entry {
    return node.kind === "dir"
      ? { path, type: "dir", modTime: node.modTime }
      : { path, type: "file", size: node.data.length, modTime: node.modTime };
  }

  async *list(dir: string, options: ListOptions = {}): AsyncIterable<Entry> {
    const { signal } = options;
    throwIfAborted(signal);
    const found = this.#find(this.#check(dir));
    if (found?.node.kind !== "dir") throw notFound(this.name, dir);
    let count = 0;
    for (const entry of this.#walk(found.node, found.path, options.recursive === true)) {
      // Let other work run now and then while a big tree is listed.
      if (++count % 256 === 0) await yieldToEventLoop();
      throwIfAborted(signal);
      yield entry;
    }
  }

  *#walk(dir: DirNode, path: string, recursive: boolean): Iterable<Entry> {
    const children = [...dir.children.values()].sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    for (const child of children) {
      const childPath = joinPath(path, child.name);
      yield this.#entry(child, childPath);
      if (recursive && child.kind === "dir") yield* this.#walk(child, childPath, true);
    }
  }

  stat(path: string, options: OpOptions = {}): Promise<Entry> {
    return settle(options.signal, () => {
      const found = this.#find(this.#check(path));
      if (!found) throw notFound(this.name, path);
      return this.#entry(found.node, found.path);
    });
  }

  #file(path: string): FileNode {
    const found = this.#find(this.#check(path));
    if (found?.node.kind !== "file") throw notFound(this.name, path);
    return found.node;
  }

  read(path: string, options: ReadOptions = {}): Promise<Readable> {
    return settle(options.signal, () => {
      const data = this.#file(path).data.subarray(options.offset ?? 0);
      function* chunks() {
        for (let at = 0; at < data.length; at += CHUNK) yield data.subarray(at, at + CHUNK);
      }
      const stream = Readable.from(chunks(), { objectMode: false });
      return options.signal ? addAbortSignal(options.signal, stream) : stream;
    });
  }

  async write(
    path: string,
    source: Readable | AsyncIterable<Uint8Array>,
    options: WriteOptions,
  ): Promise<Entry> {
    const { signal, size } = options;
    throwIfAborted(signal);
    const target = this.#check(path);
    if (target === "") throw memoryError("NAME_INVALID", this.name, path, "cannot write to the root folder");
    if (!Number.isSafeInteger(size) || size < 0) {
      throw memoryError("PROTOCOL", this.name, target, `size ${size} is not a byte count`);
    }
    const chunks: Buffer[] = [];
    let received = 0;
    const collect = async () => {
      for await (const chunk of source as AsyncIterable<Uint8Array | string>) {
        throwIfAborted(signal);
        // A copy: some sources reuse their buffer for the next chunk.
        const buffer = Buffer.from(chunk);
        received += buffer.length;
        if (received > size) throw sizeMismatch(this.name, target, size, "more");
        chunks.push(buffer);
      }
    };
    try {
      await raceAbort(collect(), signal);
    } catch (error) {
      if (source instanceof Readable) source.destroy();
      throw toFerryError(error);
    }
    if (received !== size) throw sizeMismatch(this.name, target, size, `only ${received}`);
    throwIfAborted(signal);
    // Everything below is synchronous: the new content appears at once or not at all.
    const parent = this.#mkdirs(dirname(target));
    const name = basename(target);
    const existing = parent.node.children.get(pathKey(name));
    if (existing?.kind === "dir") throw memoryError("EXISTS", this.name, target, "a folder has that name");
    const node: FileNode = {
      kind: "file",
      name: existing?.name ?? name,
      data: Buffer.concat(chunks),
      modTime: options.modTime ?? Date.now(),
    };
    parent.node.children.set(pathKey(name), node);
    parent.node.modTime = Date.now();
    return this.#entry(node, joinPath(parent.path, node.name));
  }

  remove(path: string, options: OpOptions = {}): Promise<void> {
    return settle(options.signal, () => {
      const target = this.#check(path);
      if (target === "")
        throw memoryError("NAME_INVALID", this.name, path, "will not remove the root folder");
      const parent = this.#find(dirname(target));
      if (parent?.node.kind !== "dir") return;
      const key = pathKey(basename(target));
      const node = parent.node.children.get(key);
      if (node?.kind === "dir" && node.children.size > 0) {
        throw memoryError("NOT_EMPTY", this.name, target, "folder is not empty");
      }
      if (node) {
        parent.node.children.delete(key);
        parent.node.modTime = Date.now();
      }
    });
  }

  mkdir(path: string, options: OpOptions = {}): Promise<void> {
    return settle(options.signal, () => {
      this.#mkdirs(this.#check(path));
    });
  }

  move(from: string, to: string, options: OpOptions = {}): Promise<void> {
    return settle(options.signal, () => {
      const source = this.#check(from);
      const target = this.#check(to);
      const found = this.#find(source);
      if (!found || source === "") throw notFound(this.name, from);
      if (pathKey(source) === pathKey(target)) return;
      if (isWithin(pathKey(target), pathKey(source))) {
        throw memoryError("NAME_INVALID", this.name, to, "cannot move a folder into itself");
      }
      const parent = this.#mkdirs(dirname(target));
      const key = pathKey(basename(target));
      if (parent.node.children.get(key)?.kind === "dir") {
        throw memoryError("EXISTS", this.name, to, "a folder has that name");
      }
      const oldParent = this.#find(dirname(source))?.node as DirNode;
      oldParent.children.delete(pathKey(basename(source)));
      oldParent.modTime = Date.now();
      found.node.name = basename(target);
      parent.node.children.set(key, found.node);
      parent.node.modTime = Date.now();
    });
  }

  setModTime(path: string, modTime: number, options: OpOptions = {}): Promise<void> {
    return settle(options.signal, () => {
      const found = this.#find(this.#check(path));
      if (!found) throw notFound(this.name, path);
      found.node.modTime = modTime;
    });
  }

  hash(path: string, kind: HashKind, options: OpOptions = {}): Promise<string> {
    return settle(options.signal, () => {
      if (kind !== "sha256") throw memoryError("UNSUPPORTED", this.name, path, `no ${kind} hashes here`);
      return createHash("sha256").update(this.#file(path).data).digest("hex");
    });
  }

  usage(options: OpOptions = {}): Promise<Usage> {
    return settle(options.signal, () => {
      let usedBytes = 0;
      const count = (dir: DirNode) => {
        for (const child of dir.children.values()) {
          if (child.kind === "dir") count(child);
          else usedBytes += child.data.length;
        }
      };
      count(this.#volume.root);
      return { usedBytes };
    });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Opens an adapter on a given volume (tests that want a private one). */
export function openMemoryStorage(volume: MemoryVolume, name = "memory"): StorageAdapter {
  return new MemoryStorage(volume, name);
}

export const memoryAdapter = defineStorageAdapter({
  kind: "memory",
  optionsSchema: z.object({}),
  capabilities,
  create: (_options, context) => new MemoryStorage(memoryVolume(context.name), context.name),
});
