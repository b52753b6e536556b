/**
 * /proc/self/mountinfo (proc(5)), parsed: where a device's filesystem is mounted. A line reads
 *
 *   36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
 *
 * mount id, parent id, major:minor, root inside the filesystem, mount point, mount options, zero
 * or more optional fields closed by a lone "-", filesystem type, mount source, super options.
 * The kernel writes space, tab, newline and backslash in paths as octal escapes (`\040`).
 */

export interface MountLine {
  /** "major:minor" of the mounted filesystem's device. */
  devId: string;
  /** The folder of the filesystem shown at the mount point: "/" unless a bind mount shows a subfolder. */
  root: string;
  mountPoint: string;
  fsType: string;
  source: string;
}

export function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_match, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Every well-formed line, in the file's order (mount order); malformed ones are left out. */
export function parseMountinfo(text: string): MountLine[] {
  const lines: MountLine[] = [];
  for (const line of text.split("\n")) {
    const fields = line.split(" ");
    // The optional fields vary in number: the separator is the first lone "-" after the sixth field.
    const dash = fields.indexOf("-", 6);
    const [, , devId, root, mountPoint] = fields;
    const fsType = fields[dash + 1];
    const source = fields[dash + 2];
    if (dash < 0 || devId === undefined || root === undefined || mountPoint === undefined) continue;
    if (fsType === undefined || source === undefined) continue;
    lines.push({
      devId,
      root: unescapeMountField(root),
      mountPoint: unescapeMountField(mountPoint),
      fsType,
      source: unescapeMountField(source),
    });
  }
  return lines;
}

export interface FoundMount {
  line: MountLine;
  /** Absolute folder on this machine that shows `within` of the filesystem. */
  folder: string;
}

const joinAbs = (base: string, rest: string) => (rest === "" ? base : `${base.replace(/\/$/, "")}/${rest}`);

/**
 * The mount of the device `matches` picks that shows the folder `within` ("/"-rooted, inside the
 * filesystem). A mount hidden by a later one on the same mount point is skipped; a mount of the
 * whole filesystem (root "/") is preferred over bind mounts of a subfolder, which serve only when
 * `within` lies inside what they show.
 */
export function findMount(
  lines: readonly MountLine[],
  matches: (line: MountLine) => boolean,
  within: string,
): FoundMount | undefined {
  const inside = within.replace(/^\/+|\/+$/g, "");
  const visible = lines.filter(
    (line, i) => matches(line) && !lines.slice(i + 1).some((later) => later.mountPoint === line.mountPoint),
  );
  const whole = visible.find((line) => line.root === "/");
  if (whole) return { line: whole, folder: joinAbs(whole.mountPoint, inside) };
  for (const line of visible) {
    const shown = line.root.replace(/^\/+|\/+$/g, "");
    if (inside === shown) return { line, folder: line.mountPoint };
    if (inside.startsWith(`${shown}/`)) {
      return { line, folder: joinAbs(line.mountPoint, inside.slice(shown.length + 1)) };
    }
  }
  return undefined;
}
