/**
 * OctoPrint's `local` storage (its uploads folder on the Pi's disk) on the virtual printer's
 * SimStorage: names compared byte for byte as Linux does (NFC and NFD are two names), and what
 * OctoPrint keeps in its `.metadata.json` beside them: the display name the client gave and, for
 * files, the SHA-1 of the content.
 */
import {
  isInside,
  nodeNames,
  SimStorage,
  walkFiles,
  type SimFile,
  type SimFolder,
  type SimNode,
} from "../printer/index.ts";

export { isInside, nodeNames, walkFiles };
export type { SimFile, SimFolder, SimNode };

/** What an upload stored: its bytes (unless sizes only are kept), size and SHA-1. */
export interface StoredData {
  content: Buffer | undefined;
  size: number;
  hash: string;
}

/** OctoPrint's `path` of an entry: its on-disk names joined by "/". */
export function nodePath(node: SimNode): string {
  return nodeNames(node).join("/");
}

export class OctoStorage {
  readonly sim: SimStorage;
  readonly #display = new WeakMap<SimNode, string>();
  readonly #hash = new WeakMap<SimFile, string>();

  /** `now`: seconds since the epoch. */
  constructor(capacity: number, now: number) {
    this.sim = new SimStorage({ name: "local", capacity, naming: { key: (name) => name } }, now);
  }

  get root(): SimFolder {
    return this.sim.root;
  }

  get capacity(): number {
    return this.sim.capacity;
  }

  get free(): number {
    return this.sim.free;
  }

  /** Walks on-disk names from the root; undefined when one is missing or not a folder. */
  resolve(names: readonly string[]): SimNode | undefined {
    return this.sim.resolve(names);
  }

  /** The name the client gave (OctoPrint's `display`), or the on-disk name. */
  display(node: SimNode): string {
    return this.#display.get(node) ?? node.name;
  }

  setDisplay(node: SimNode, display: string): void {
    if (display === node.name) this.#display.delete(node);
    else this.#display.set(node, display);
  }

  hash(file: SimFile): string {
    return this.#hash.get(file) ?? "";
  }

  addFolder(parent: SimFolder, name: string, display: string, now: number): SimFolder {
    const folder = this.sim.addFolder(parent, name, now);
    this.setDisplay(folder, display);
    parent.mTimestamp = now;
    return folder;
  }

  /**
   * Stores a complete file. A file replaced with other content takes the new display name (OctoPrint
   * throws away a file's metadata when its hash changes); with the same content it keeps its own.
   */
  putFile(parent: SimFolder, name: string, display: string, data: StoredData, now: number): SimFile {
    const existing = parent.children.get(name);
    const file = this.sim.putFile(parent, name, data.content, data.size, now);
    if (existing !== file || this.hash(file) !== data.hash) this.setDisplay(file, display);
    this.#hash.set(file, data.hash);
    if (existing !== file) parent.mTimestamp = now;
    return file;
  }

  remove(node: SimNode, now: number): void {
    const parent = node.parent;
    this.sim.remove(node);
    if (parent) parent.mTimestamp = now;
  }
}
