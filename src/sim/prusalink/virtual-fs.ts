/**
 * The simulated printer's storages: folder trees held in memory, with FAT behaviour (long and
 * short names, case-insensitive NFC lookup) and a byte capacity.
 */
import { makeShortName, nameKey } from "./fat-names.ts";

export interface SimFile {
  kind: "file";
  name: string;
  shortName: string;
  parent: SimFolder;
  /** undefined when the simulator keeps sizes only (`storeContent: false`). */
  content: Buffer | undefined;
  size: number;
  /** Seconds since the epoch. */
  mTimestamp: number;
}

export interface SimFolder {
  kind: "folder";
  name: string;
  shortName: string;
  parent: SimFolder | undefined;
  mTimestamp: number;
  /** By nameKey(long name). */
  children: Map<string, SimNode>;
  /** By upper-case short name. */
  shorts: Map<string, SimNode>;
}

export type SimNode = SimFile | SimFolder;

export type StorageType = "USB" | "LOCAL" | "SDCARD";

export interface SimStorageOptions {
  /** Path component in URLs: "usb", "local", "sdcard". */
  name: string;
  type: StorageType;
  /** Shown by /api/v1/storage and in display paths (MK3: "PrusaLink gcodes"). */
  displayName: string;
  readOnly: boolean;
  capacity: number;
  /** MK4 (FAT on USB): listings name entries by their 8.3 alias. MK3: long names only. */
  shortNames: boolean;
}

export class SimStorage {
  readonly name: string;
  readonly type: StorageType;
  readonly displayName: string;
  readonly readOnly: boolean;
  readonly capacity: number;
  readonly shortNames: boolean;
  readonly root: SimFolder;
  #used = 0;

  constructor(options: SimStorageOptions, now: number) {
    this.name = options.name;
    this.type = options.type;
    this.displayName = options.displayName;
    this.readOnly = options.readOnly;
    this.capacity = options.capacity;
    this.shortNames = options.shortNames;
    this.root = {
      kind: "folder",
      name: options.name,
      shortName: options.name,
      parent: undefined,
      mTimestamp: now,
      children: new Map(),
      shorts: new Map(),
    };
  }

  get used(): number {
    return this.#used;
  }

  get free(): number {
    return Math.max(0, this.capacity - this.#used);
  }

  /** A child of `folder` by its long or short name, compared as FAT does. */
  lookup(folder: SimFolder, component: string): SimNode | undefined {
    return folder.children.get(nameKey(component)) ?? folder.shorts.get(component.toUpperCase());
  }

  /** Walks `components` from the root; undefined when any of them is missing or not a folder. */
  resolve(components: readonly string[]): SimNode | undefined {
    let node: SimNode = this.root;
    for (const component of components) {
      if (node.kind !== "folder") return undefined;
      const next = this.lookup(node, component);
      if (!next) return undefined;
      node = next;
    }
    return node;
  }

  #alias(parent: SimFolder, name: string): string {
    if (!this.shortNames) return name;
    return makeShortName(name, new Set(parent.shorts.keys()));
  }

  #attach(parent: SimFolder, node: SimNode): void {
    parent.children.set(nameKey(node.name), node);
    parent.shorts.set(node.shortName.toUpperCase(), node);
  }

  addFolder(parent: SimFolder, name: string, now: number): SimFolder {
    const folder: SimFolder = {
      kind: "folder",
      name,
      shortName: this.#alias(parent, name),
      parent,
      mTimestamp: now,
      children: new Map(),
      shorts: new Map(),
    };
    this.#attach(parent, folder);
    return folder;
  }

  /**
   * Stores a complete file. An existing file of the same name keeps its directory entry (long and
   * short name) and gets the new content, as FAT does when a file is rewritten.
   */
  putFile(parent: SimFolder, name: string, content: Buffer | undefined, size: number, now: number): SimFile {
    const existing = parent.children.get(nameKey(name));
    if (existing?.kind === "file") {
      this.#used += size - existing.size;
      existing.content = content;
      existing.size = size;
      existing.mTimestamp = now;
      return existing;
    }
    const file: SimFile = {
      kind: "file",
      name,
      shortName: this.#alias(parent, name),
      parent,
      content,
      size,
      mTimestamp: now,
    };
    this.#attach(parent, file);
    this.#used += size;
    return file;
  }

  /** Detaches a node (a folder with everything below it). */
  remove(node: SimNode): void {
    const parent = node.parent;
    if (!parent) return;
    parent.children.delete(nameKey(node.name));
    parent.shorts.delete(node.shortName.toUpperCase());
    for (const file of walkFiles(node)) this.#used -= file.size;
  }
}

/** Names from the storage root down to `node` (excluded the root), long or short. */
export function nodeNames(node: SimNode, short = false): string[] {
  const names: string[] = [];
  for (let at: SimNode = node; at.parent; at = at.parent) names.unshift(short ? at.shortName : at.name);
  return names;
}

export function* walkFiles(node: SimNode): Generator<SimFile> {
  if (node.kind === "file") {
    yield node;
    return;
  }
  for (const child of node.children.values()) yield* walkFiles(child);
}

/** Whether `node` is `ancestor` or lies below it. */
export function isInside(node: SimNode, ancestor: SimNode): boolean {
  for (let at: SimNode | undefined = node; at; at = at.parent) if (at === ancestor) return true;
  return false;
}
