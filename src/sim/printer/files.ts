/**
 * The virtual printer's storages: folder trees held in memory with a byte capacity. How names
 * compare and whether entries get a second name (FAT's 8.3 alias on a PrusaLink USB stick) is the
 * face's choice (`SimNaming`); by default names compare in NFC, case-sensitively, as on Linux.
 */

/** How a storage compares names and which second name it gives an entry. */
export interface SimNaming {
  /** The key two names are compared by (default: NFC). */
  key(name: string): string;
  /**
   * A second name for a new entry, unique among `taken` (the upper-cased aliases of the folder);
   * absent: entries have only their name.
   */
  alias?(name: string, taken: ReadonlySet<string>): string;
}

export const PLAIN_NAMING: SimNaming = { key: (name) => name.normalize("NFC") };

export interface SimFile {
  kind: "file";
  name: string;
  /** The alias the storage's naming gave it (FAT's 8.3 name), or the name itself. */
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
  /** By the naming's key of the name. */
  children: Map<string, SimNode>;
  /** By upper-cased alias (empty without aliases). */
  shorts: Map<string, SimNode>;
}

export type SimNode = SimFile | SimFolder;

export interface SimStorageOptions {
  /** Its name in paths: "usb", "local", "gcodes". */
  name: string;
  /** Its name for people (PrusaLink MK3: "PrusaLink gcodes"; default: `name`). */
  displayName?: string;
  readOnly?: boolean;
  /** Bytes. */
  capacity: number;
  naming?: SimNaming;
}

export class SimStorage {
  readonly name: string;
  readonly displayName: string;
  readonly readOnly: boolean;
  readonly capacity: number;
  readonly naming: SimNaming;
  readonly root: SimFolder;
  #used = 0;

  /** `now`: seconds since the epoch, the root's mTimestamp. */
  constructor(options: SimStorageOptions, now: number) {
    this.name = options.name;
    this.displayName = options.displayName ?? options.name;
    this.readOnly = options.readOnly ?? false;
    this.capacity = options.capacity;
    this.naming = options.naming ?? PLAIN_NAMING;
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

  /** Whether entries have aliases besides their names (FAT's 8.3 names). */
  get aliases(): boolean {
    return this.naming.alias !== undefined;
  }

  /** A child of `folder` by its name or alias, compared as the storage's naming does. */
  lookup(folder: SimFolder, component: string): SimNode | undefined {
    return (
      folder.children.get(this.naming.key(component)) ??
      (this.aliases ? folder.shorts.get(component.toUpperCase()) : undefined)
    );
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
    return this.naming.alias?.(name, new Set(parent.shorts.keys())) ?? name;
  }

  #attach(parent: SimFolder, node: SimNode): void {
    parent.children.set(this.naming.key(node.name), node);
    if (this.aliases) parent.shorts.set(node.shortName.toUpperCase(), node);
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
    const existing = parent.children.get(this.naming.key(name));
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
    parent.children.delete(this.naming.key(node.name));
    if (this.aliases) parent.shorts.delete(node.shortName.toUpperCase());
    for (const file of walkFiles(node)) this.#used -= file.size;
  }
}

/** Names from the storage root down to `node` (excluded the root), or their aliases. */
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
