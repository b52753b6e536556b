/**
 * A removable volume staged in a temp folder, for the removable adapter's tests: a fake device node
 * (a plain file), udev-style by-uuid and by-label links to it, a mountinfo file whose line maps the
 * node to a mount folder, and that folder (named so that mountinfo must write `\040`). Attaching
 * and detaching edit the links and the line, as udev and the kernel would.
 */
import fs from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../core/logger.ts";
import {
  createRemovable,
  removableOptionsSchema,
  type RemovableStorage,
  type RemovableTuning,
} from "./removable.ts";

export const UUID = "1234-ABCD";
export const LABEL = "DRONE LOGS";
/** How udev names the label's link. */
export const LABEL_LINK = "DRONE\\x20LOGS";

/** Escapes a path the way the kernel writes it in mountinfo. */
export function escapeMountPath(path: string): string {
  return path.replace(/[\\ \t\n]/g, (char) => `\\${char.charCodeAt(0).toString(8).padStart(3, "0")}`);
}

/** One mountinfo line: `mountPoint` shows `root` of the filesystem on `source`. */
export function mountLine(
  id: number,
  source: string,
  mountPoint: string,
  root = "/",
  fsType = "vfat",
): string {
  const optional = id % 2 === 0 ? "shared:52 master:3" : "";
  return [
    `${id} 29 8:17 ${escapeMountPath(root)} ${escapeMountPath(mountPoint)} rw,nosuid,nodev,relatime`,
    ...(optional === "" ? [] : [optional]),
    `- ${fsType} ${escapeMountPath(source)} rw,fmask=0022,dmask=0022,codepage=437,errors=remount-ro`,
  ].join(" ");
}

/** Lines of an ordinary system around the volume's. */
const SYSTEM_LINES = [
  "22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw",
  "25 22 0:23 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw",
  "26 22 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw,size=4010000k,mode=755",
];

export class StagedVolume {
  readonly base: string;
  readonly node: string;
  readonly byUuid: string;
  readonly byLabel: string;
  readonly mountinfo: string;
  /** Where the volume shows when attached (its name has a space). */
  readonly mountPoint: string;
  /** Extra mountinfo lines (bind mounts...) written with the volume's. */
  extraLines: string[] = [];

  private constructor(base: string) {
    this.base = base;
    this.node = join(base, "dev", "sdz1");
    this.byUuid = join(base, "by-uuid");
    this.byLabel = join(base, "by-label");
    this.mountinfo = join(base, "mountinfo");
    this.mountPoint = join(base, "media", "usb stick");
  }

  static async create(): Promise<StagedVolume> {
    const volume = new StagedVolume(await fs.mkdtemp(join(tmpdir(), "ferry-removable-")));
    for (const dir of [join(volume.base, "dev"), volume.byUuid, volume.byLabel, volume.mountPoint]) {
      await fs.mkdir(dir, { recursive: true });
    }
    await fs.writeFile(volume.node, "");
    await fs.writeFile(volume.mountinfo, `${SYSTEM_LINES.join("\n")}\n`);
    return volume;
  }

  /** Plugs the volume in: links appear; with `mounted`, its mountinfo line too. */
  async attach(mounted = true): Promise<void> {
    // Relative links, as udev makes them (../../sdb1).
    await fs.symlink(join("..", "dev", "sdz1"), join(this.byUuid, UUID)).catch(ignoreExists);
    await fs.symlink(join("..", "dev", "sdz1"), join(this.byLabel, LABEL_LINK)).catch(ignoreExists);
    if (mounted) await this.mount();
  }

  /** Adds the volume's mountinfo line (and the extra ones). */
  async mount(): Promise<void> {
    const lines = [...SYSTEM_LINES, mountLine(97, this.node, this.mountPoint), ...this.extraLines];
    await fs.writeFile(this.mountinfo, `${lines.join("\n")}\n`);
  }

  /** Only the mount goes; the links stay (an unmount without an unplug). */
  async unmount(): Promise<void> {
    await fs.writeFile(this.mountinfo, `${SYSTEM_LINES.join("\n")}\n`);
  }

  /** Pulls the volume: links and mount line go; the files stay in the folder, as a lazy unmount leaves them. */
  async detach(): Promise<void> {
    await fs.rm(join(this.byUuid, UUID), { force: true });
    await fs.rm(join(this.byLabel, LABEL_LINK), { force: true });
    await this.unmount();
  }

  /** Options as ferry.yaml would give them, pointed at the staged folders. */
  options(extra: Record<string, unknown> = { uuid: UUID }) {
    return removableOptionsSchema.parse({
      by_uuid_dir: this.byUuid,
      by_label_dir: this.byLabel,
      mountinfo: this.mountinfo,
      ...extra,
    });
  }

  open(extra?: Record<string, unknown>, tuning?: RemovableTuning, name = "usb-logs"): RemovableStorage {
    return createRemovable(this.options(extra), { name, logger: silentLogger, baseDir: this.base }, tuning);
  }

  cleanup(): Promise<void> {
    return fs.rm(this.base, { recursive: true, force: true });
  }
}

function ignoreExists(error: unknown): void {
  if (!(error instanceof Error && "code" in error && error.code === "EEXIST")) throw error;
}
