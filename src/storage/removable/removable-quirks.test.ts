/** What the removable adapter does beyond the shared suite: volumes that come, go and come back. */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { parseConfig } from "../../config/load.ts";
import { isFerryError } from "../../core/errors.ts";
import { deviceKinds } from "../../devices/devices.ts";
import {
  assertSameBytes,
  collect,
  expectFerryError,
  put,
  readAll,
  stallingSource,
} from "../../../test/conformance/storage-helpers.ts";
import { LABEL, LABEL_LINK, StagedVolume, UUID, mountLine } from "./test-support.ts";

let volume: StagedVolume;
beforeEach(async () => {
  volume = await StagedVolume.create();
});
afterEach(() => volume.cleanup());

/** Files and temp files left in a folder of the staged volume. */
const onDisk = (dir: string) => fs.readdir(join(volume.mountPoint, dir)).catch(() => []);

/** Rejects with UNAVAILABLE (retryable) whose message contains `words`. */
async function expectUnavailable(action: Promise<unknown>, words: string, what: string): Promise<void> {
  await assert.rejects(action, (error: unknown) => {
    assert.ok(isFerryError(error, "UNAVAILABLE"), `${what}: got ${String(error)}`);
    assert.ok(error.retryable, `${what}: retryable`);
    assert.ok(error.message.includes(words), `${what}: "${error.message}" lacks "${words}"`);
    return true;
  });
}

describe("removable: finding the volume", () => {
  it("finds it by UUID, by label (udev's \\x20 spelling) and by UUID in another case", async () => {
    await volume.attach();
    assert.ok((await fs.readdir(volume.byLabel)).includes(LABEL_LINK));
    await put(volume.open(), "logs/flight.bin", Buffer.from("flight"));
    assert.equal(await fs.readFile(join(volume.mountPoint, "logs", "flight.bin"), "utf8"), "flight");
    for (const extra of [{ label: LABEL }, { uuid: UUID.toLowerCase() }]) {
      assert.equal((await readAll(volume.open(extra), "logs/flight.bin")).toString(), "flight");
    }
  });

  it("serves a folder inside the volume with path", async () => {
    await volume.attach();
    await put(volume.open({ uuid: UUID, path: "/DCIM/100" }), "a.jpg", Buffer.from("jpg"));
    assert.deepEqual(await onDisk("DCIM/100"), ["a.jpg"]);
  });

  it("uses the whole filesystem's mount when a bind mount of a folder is listed too", async () => {
    const bindPoint = join(volume.base, "bind");
    await fs.mkdir(bindPoint);
    volume.extraLines = [mountLine(120, volume.node, bindPoint, "/DCIM")];
    await volume.attach();
    await put(volume.open(), "DCIM/x.jpg", Buffer.from("x"));
    assert.deepEqual(await onDisk("DCIM"), ["x.jpg"]);
    assert.deepEqual(await fs.readdir(bindPoint), []);
  });

  it("serves a folder through a bind mount when only that is mounted", async () => {
    const bindPoint = join(volume.base, "bind point");
    await fs.mkdir(bindPoint);
    await volume.attach(false);
    await fs.appendFile(volume.mountinfo, `${mountLine(120, volume.node, bindPoint, "/DCIM")}\n`);
    await put(volume.open({ uuid: UUID, path: "DCIM/100" }), "y.jpg", Buffer.from("y"));
    assert.deepEqual(await fs.readdir(join(bindPoint, "100")), ["y.jpg"]);
    await expectUnavailable(volume.open().stat(""), "is attached but not mounted", "volume root");
  });
});

describe("removable: away", () => {
  /** Every method of the contract, called once. */
  const everyCall = (adapter: ReturnType<StagedVolume["open"]>): [string, () => Promise<unknown>][] => [
    ["list", () => collect(adapter.list(""))],
    ["stat", () => adapter.stat("a.bin")],
    ["read", () => adapter.read("a.bin", { offset: 3 })],
    ["write", () => put(adapter, "a.bin", Buffer.from("a"))],
    ["remove", () => adapter.remove("a.bin")],
    ["mkdir", () => adapter.mkdir("d")],
    ["move", () => adapter.move("a.bin", "b.bin")],
    ["setModTime", () => adapter.setModTime("a.bin", 0)],
    ["hash", () => adapter.hash("a.bin", "sha256")],
    ["usage", () => adapter.usage()],
  ];

  it("fails every call with UNAVAILABLE naming the device and the volume when it is not attached", async () => {
    for (const [extra, words] of [
      [{ uuid: UUID }, `usb-logs: volume UUID ${UUID} is not attached`],
      [{ label: LABEL }, `usb-logs: volume labelled "${LABEL}" is not attached`],
    ] as const) {
      for (const [method, call] of everyCall(volume.open(extra)))
        await expectUnavailable(call(), words, method);
    }
  });

  it("fails every call with UNAVAILABLE when it is attached but not mounted", async () => {
    await volume.attach(false);
    const words = `usb-logs: volume UUID ${UUID} (${volume.node}) is attached but not mounted; mount it, or set mount: true`;
    for (const [method, call] of everyCall(volume.open())) await expectUnavailable(call(), words, method);
  });

  it("never answers from its cache across a detach, and sees a re-attach at once", async () => {
    await volume.attach();
    const adapter = volume.open();
    await put(adapter, "a.bin", Buffer.from("abc"));
    await volume.detach();
    await expectUnavailable(adapter.stat("a.bin"), "is not attached", "right after the detach");
    await volume.attach();
    assert.equal((await adapter.stat("a.bin")).size, 3);
  });

  it("reports a call that failed because the mount went as a detach, not as a missing file", async () => {
    await volume.attach();
    const adapter = volume.open({ uuid: UUID }, { cacheMs: 60_000 });
    await adapter.stat("");
    await volume.unmount(); // the links stay: only a fresh look at the mount table tells
    await expectUnavailable(adapter.stat("nowhere.bin"), "was detached", "stat");
  });
});

/** A pull that goes unnoticed must fail the test, not hang it. */
const timed = { timeout: 10_000 };

describe("removable: pulled mid-transfer", () => {
  it("fails a streamed read with UNAVAILABLE within about 256 KiB of a detach", timed, async () => {
    await volume.attach();
    const data = randomBytes(4 * 1024 * 1024);
    const adapter = volume.open();
    await put(adapter, "big.bin", data);
    let afterDetach = -1;
    await expectUnavailable(
      (async () => {
        for await (const chunk of (await adapter.read("big.bin")) as AsyncIterable<Buffer>) {
          if (afterDetach < 0) {
            afterDetach = 0;
            await volume.detach();
          } else afterDetach += chunk.length;
        }
      })(),
      `usb-logs: big.bin: volume UUID ${UUID} was detached`,
      "read",
    );
    assert.ok(afterDetach >= 0 && afterDetach < 512 * 1024, `${afterDetach} bytes read after the detach`);
  });

  it("fails a read whose reader dawdles, by the timer, once only the mount goes", timed, async () => {
    await volume.attach();
    const adapter = volume.open();
    await put(adapter, "big.bin", randomBytes(1024 * 1024));
    const stream = await adapter.read("big.bin");
    await volume.unmount();
    const failed = new Promise<unknown>((resolve) => stream.once("error", resolve));
    const error = await Promise.race([failed, new Promise((resolve) => setTimeout(resolve, 2000, "late"))]);
    assert.ok(isFerryError(error, "UNAVAILABLE"), `got ${String(error)}`);
  });

  for (const replacing of [false, true]) {
    it(
      `fails a write with UNAVAILABLE on a detach and ${replacing ? "keeps the old file" : "leaves no file"}`,
      timed,
      async () => {
        await volume.attach();
        const adapter = volume.open();
        const old = Buffer.from("old copy");
        if (replacing) await put(adapter, "w/file.bin", old);
        const chunk = randomBytes(64 * 1024);
        async function* source() {
          for (let i = 0; i < 32; i++) {
            if (i === 4) await volume.detach();
            yield chunk;
          }
        }
        await expectUnavailable(
          adapter.write("w/file.bin", source(), { size: 32 * chunk.length }),
          `usb-logs: w/file.bin: volume UUID ${UUID} was detached`,
          "write",
        );
        // The files stay in the staged folder after the "detach": so it can be seen what was left.
        assert.deepEqual(await onDisk("w"), replacing ? ["file.bin"] : [], "no partial file, no temp file");
        if (replacing) assert.deepEqual(await fs.readFile(join(volume.mountPoint, "w", "file.bin")), old);
      },
    );
  }

  it("clears the temp files a pulled write could not remove once the volume is back", timed, async () => {
    await volume.attach();
    const adapter = volume.open();
    // As a lazy unmount leaves them: the write's temp file stays on the volume, out of reach.
    const left = join(volume.mountPoint, "w", ".ferry-0123456789abcdef.part");
    const other = join(volume.mountPoint, "w", ".ferry-fedcba9876543210.part");
    await fs.mkdir(join(volume.mountPoint, "w"));
    for (const file of [left, other]) await fs.writeFile(file, "half");
    await fs.utimes(left, new Date(), new Date(Date.now() - 60_000));
    await fs.utimes(other, new Date(), new Date(Date.now() + 60_000)); // someone else's, still growing
    await adapter.stat("");
    assert.equal((await onDisk("w")).length, 2, "nothing is cleared without a pulled write");
    async function* source() {
      yield Buffer.alloc(10);
      await volume.detach();
      await new Promise((resolve) => setTimeout(resolve, 1000)); // the timer notices meanwhile
      yield Buffer.alloc(10);
    }
    await expectUnavailable(adapter.write("w/file.bin", source(), { size: 20 }), "was detached", "write");
    await volume.attach();
    await adapter.stat("");
    assert.deepEqual(await onDisk("w"), [".ferry-fedcba9876543210.part"]);
  });

  it("fails a write whose source stalls, by the timer, and lets go of the source", timed, async () => {
    await volume.attach();
    const adapter = volume.open();
    const { source, consumed } = stallingSource(randomBytes(64 * 1024));
    const started = Date.now();
    const writing = adapter.write("stalled.bin", source, { size: 1024 * 1024 });
    const outcome = expectUnavailable(writing, "was detached", "stalled write");
    await consumed;
    await volume.detach();
    await outcome;
    assert.ok(Date.now() - started < 2000, "noticed within a few checks");
    assert.ok(source.destroyed, "source destroyed");
    assert.deepEqual(await onDisk(""), []);
  });

  it(
    "resumes after a re-attach: a read from the checkpoint gives exactly the remaining bytes",
    timed,
    async () => {
      await volume.attach();
      const data = randomBytes(1024 * 1024 + 123);
      const first = volume.open();
      await put(first, "resume.bin", data);
      const received: Buffer[] = [];
      await expectUnavailable(
        (async () => {
          for await (const chunk of (await first.read("resume.bin")) as AsyncIterable<Buffer>) {
            received.push(chunk);
            if (received.length === 2) await volume.detach();
          }
        })(),
        "was detached",
        "first read",
      );
      const checkpoint = Buffer.concat(received).length;
      assert.ok(checkpoint > 0 && checkpoint < data.length, `checkpoint ${checkpoint}`);
      await expectUnavailable(readAll(first, "resume.bin", checkpoint), "is not attached", "while away");
      await volume.attach();
      for (const adapter of [first, volume.open()]) {
        const rest = await readAll(adapter, "resume.bin", checkpoint);
        assertSameBytes(Buffer.concat([Buffer.concat(received), rest]), data, "checkpoint + rest");
      }
    },
  );
});

describe("removable: mount: true", () => {
  /** A stand-in for mount(8) that logs its arguments and then runs `body`. */
  async function fakeMount(body: string): Promise<string> {
    const script = join(volume.base, "fake-mount");
    const log = join(volume.base, "mount.log");
    await fs.writeFile(script, `#!/bin/sh\necho "$1|$2" >> '${log}'\n${body}\n`, { mode: 0o755 });
    return script;
  }
  const mountDir = () => join(volume.base, "ferry-mnt");
  const options = () => ({ uuid: UUID, mount: true, mount_dir: mountDir() });

  it("mounts an attached volume with the configured command and serves it", async () => {
    const mountCommand = await fakeMount(
      `printf '99 22 8:17 / %s rw - vfat %s rw\\n' "$2" "$1" >> '${volume.mountinfo}'`,
    );
    await volume.attach(false);
    const adapter = volume.open(options(), { mountCommand });
    await Promise.all([put(adapter, "m.bin", Buffer.from("m")), adapter.stat("")]);
    assert.deepEqual(await fs.readdir(mountDir()), ["m.bin"]);
    const calls = (await fs.readFile(join(volume.base, "mount.log"), "utf8")).trim().split("\n");
    assert.deepEqual(calls, [`${volume.node}|${mountDir()}`], "mounted once, node then folder");
  });

  const failures = [
    [
      "a refusal",
      'echo "mount: /mnt: must be superuser to use mount." >&2; exit 1',
      "PERMISSION",
      "must be superuser",
    ],
    [
      "a failure",
      'echo "mount: /mnt: wrong fs type, bad option." >&2; exit 32',
      "UNAVAILABLE",
      "exited with 32: mount: /mnt: wrong fs type",
    ],
    [
      "a mount that does not show",
      "exit 0",
      "UNAVAILABLE",
      "it succeeded, yet the volume is not in the mount table",
    ],
  ] as const;
  for (const [what, body, code, words] of failures) {
    it(`reports ${what} of the mount command clearly`, async () => {
      const mountCommand = await fakeMount(body);
      await volume.attach(false);
      const adapter = volume.open(options(), { mountCommand });
      await assert.rejects(adapter.stat(""), (error: unknown) => {
        assert.ok(isFerryError(error, code), String(error));
        const start = `usb-logs: cannot mount volume UUID ${UUID}: ${mountCommand} ${volume.node} ${mountDir()}: `;
        assert.ok(error.message.startsWith(start), error.message);
        assert.ok(error.message.includes(words), error.message);
        return true;
      });
    });
  }

  it("reports a missing mount command as UNSUPPORTED, and never mounts what is not attached", async () => {
    const adapter = volume.open(options(), { mountCommand: join(volume.base, "no-such-mount") });
    await expectUnavailable(adapter.stat(""), "is not attached", "absent volume");
    await volume.attach(false);
    await expectFerryError(adapter.stat(""), "UNSUPPORTED", "missing command");
  });
});

describe("removable: names and options", () => {
  it("refuses to create names FAT cannot store, and still reads such names that exist", async () => {
    await volume.attach();
    const adapter = volume.open();
    for (const name of ["a:b.txt", 'say "hi".txt', "tab\there.txt", "trailing.", "trailing "]) {
      await expectFerryError(put(adapter, `n/${name}`, Buffer.from("x")), "NAME_INVALID", name);
    }
    await expectFerryError(adapter.mkdir("what?"), "NAME_INVALID", "mkdir");
    await expectFerryError(adapter.move("a", "b|c"), "NAME_INVALID", "move");
    // An ext4 stick can hold them: reading one off it must work.
    await fs.writeFile(join(volume.mountPoint, "a:b.txt"), "from ext4");
    assert.equal((await readAll(adapter, "a:b.txt")).toString(), "from ext4");
    assert.deepEqual(
      (await collect(adapter.list(""))).map((e) => e.path),
      ["a:b.txt"],
    );
  });

  it("declares FAT-safe capabilities and removable", () => {
    const c = volume.open().capabilities;
    assert.equal(c.removable, true);
    assert.equal(c.caseInsensitive, true);
    assert.equal(c.modTimePrecisionMs, 2000);
    for (const char of '"*:<>?\\|') assert.ok(c.forbiddenChars.includes(char), char);
  });

  it("accepts exactly one of uuid and label, and paths inside the volume only", () => {
    const problems = (extra: Record<string, unknown>) => {
      try {
        volume.options(extra);
        return [];
      } catch (error) {
        return (error as { issues: { path: PropertyKey[]; message: string }[] }).issues.map(
          (i) => `${i.path.join(".")}: ${i.message}`,
        );
      }
    };
    assert.deepEqual(problems({ uuid: UUID, label: LABEL }), ["label: set either uuid or label, not both"]);
    assert.deepEqual(problems({}), ["uuid: set uuid or label to say which volume"]);
    assert.deepEqual(problems({ uuid: UUID, path: "../etc" }), ["path: must stay inside the volume"]);
    assert.equal(problems({ uuid: UUID, mount: "yes" }).length, 1);
    assert.equal(problems({ uuid: UUID, mountpoint: "/mnt" }).length, 1, "unknown keys are refused");
    const defaults = volume.options({ label: LABEL });
    assert.equal(defaults.mount, false);
    assert.equal(defaults.path, "");
  });

  it("is a device type of ferry.yaml, with its option problems reported there", () => {
    const load = (device: string) =>
      parseConfig(`devices:\n  usb: ${device}\n`, "ferry.yaml", { deviceKinds, env: {} });
    const usb = load("{ type: removable, uuid: 1234-ABCD, path: logs }").devices.get("usb");
    assert.equal(usb?.kind, "removable");
    assert.throws(
      () => load("{ type: removable, uuid: 1234-ABCD, label: LOGS }"),
      /devices\.usb\.label: set either uuid or label, not both/,
    );
  });
});
