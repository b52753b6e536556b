import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { findMount, parseMountinfo, unescapeMountField, type MountLine } from "./mountinfo.ts";

const TEXT = [
  "22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw,errors=remount-ro",
  // No optional fields at all.
  "97 22 8:17 / /media/me/USB\\040STICK rw,nosuid,nodev - vfat /dev/sdb1 rw,fmask=0022",
  // Several optional fields; a bind mount of a folder, its mount point with a backslash and a tab.
  "98 22 8:17 /DCIM /srv/a\\134b\\011c rw shared:7 master:2 propagate_from:1 - vfat /dev/sdb1 rw",
  "garbage that is not a mount line",
  "",
].join("\n");

const sdb1 = (line: MountLine) => line.source === "/dev/sdb1";

describe("mountinfo", () => {
  it("reads octal escapes back: space, backslash, tab", () => {
    assert.equal(unescapeMountField("a\\040b\\134c\\011d\\012e"), "a b\\c\td\ne");
  });

  it("parses lines with any number of optional fields and skips malformed ones", () => {
    const lines = parseMountinfo(TEXT);
    assert.deepEqual(
      lines.map((l) => [l.devId, l.root, l.mountPoint, l.fsType, l.source]),
      [
        ["8:2", "/", "/", "ext4", "/dev/sda2"],
        ["8:17", "/", "/media/me/USB STICK", "vfat", "/dev/sdb1"],
        ["8:17", "/DCIM", "/srv/a\\b\tc", "vfat", "/dev/sdb1"],
      ],
    );
  });

  it("prefers the mount of the whole filesystem over a bind mount of a folder, whatever the order", () => {
    const lines = parseMountinfo(TEXT);
    const reversed = [lines[0], lines[2], lines[1]].filter((l) => l !== undefined);
    for (const order of [lines, reversed]) {
      assert.equal(findMount(order, sdb1, "/")?.folder, "/media/me/USB STICK");
      assert.equal(findMount(order, sdb1, "/DCIM/100")?.folder, "/media/me/USB STICK/DCIM/100");
    }
  });

  it("serves a folder from a bind mount only when the folder lies inside what it shows", () => {
    const bindOnly = parseMountinfo(TEXT).filter((l) => l.root !== "/" || l.source !== "/dev/sdb1");
    assert.equal(findMount(bindOnly, sdb1, "/DCIM")?.folder, "/srv/a\\b\tc");
    assert.equal(findMount(bindOnly, sdb1, "/DCIM/100/")?.folder, "/srv/a\\b\tc/100");
    assert.equal(findMount(bindOnly, sdb1, "/"), undefined);
    assert.equal(findMount(bindOnly, sdb1, "/DCIMX"), undefined, "a sibling with the same prefix");
  });

  it("skips a mount hidden by a later one on the same mount point", () => {
    const lines = parseMountinfo(
      [
        "97 22 8:17 / /mnt/usb rw - vfat /dev/sdb1 rw",
        "99 22 8:17 / /media/usb rw - vfat /dev/sdb1 rw",
        "100 97 0:40 / /mnt/usb rw - tmpfs tmpfs rw",
      ].join("\n"),
    );
    assert.equal(findMount(lines, sdb1, "/")?.folder, "/media/usb");
    assert.equal(
      findMount(lines.slice(0, 2), sdb1, "/")?.folder,
      "/mnt/usb",
      "the first when none is hidden",
    );
  });

  it("finds nothing for a device that is not mounted", () => {
    assert.equal(
      findMount(parseMountinfo(TEXT), (l) => l.source === "/dev/sdc1", "/"),
      undefined,
    );
  });
});
