import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { nameProblem, plan, roomNeeded, type PlanRules, type SourceFile, type TargetEntry } from "./plan.ts";

const rules: PlanRules = {
  mode: "mirror",
  toleranceMs: 60_000,
  caseInsensitive: false,
  forbiddenChars: "",
  maxNameBytes: 255,
};
const T = 1_700_000_000_000;
const file = (path: string, size = 10, modTime = T): SourceFile => ({ path, size, modTime });
const remote = (
  path: string,
  over: Omit<Partial<TargetEntry>, "size"> & { size?: number | null } = {},
): TargetEntry => {
  const { size = 10, ...rest } = over;
  const entry: TargetEntry = { path, type: "file", modTime: T, selected: true, ...rest };
  if (size !== null) entry.size = size;
  return entry;
};
const dir = (path: string): TargetEntry => ({ path, type: "dir", selected: false });
const summary = (actions: ReturnType<typeof plan>) => actions.map((a) => `${a.type} ${a.path}`);

describe("plan", () => {
  test("adds missing files, keeps up-to-date ones", () => {
    const actions = plan({
      source: [file("a.gcode"), file("d/b.gcode")],
      target: [remote("a.gcode")],
      rules,
    });
    assert.deepEqual(summary(actions), ["upload d/b.gcode"]);
    assert.equal(actions[0]?.type === "upload" && actions[0].reason, "missing");
  });

  test("replaces when the source is newer beyond the tolerance or the size differs", () => {
    const actions = plan({
      source: [file("new.gcode", 10, T + 61_000), file("near.gcode", 10, T + 59_000), file("size.gcode", 11)],
      target: [remote("new.gcode"), remote("near.gcode"), remote("size.gcode")],
      rules,
    });
    assert.deepEqual(
      actions.map((a) => (a.type === "upload" ? `${a.path}:${a.reason}` : a.type)),
      ["new.gcode:newer", "size.gcode:size"],
    );
  });

  test("with a digest on both sides, content decides: equal is up to date whatever the times say", () => {
    const actions = plan({
      source: [
        { ...file("same.gcode", 10, T + 3_600_000), hashes: { sha256: "aa" } },
        { ...file("changed.gcode"), hashes: { sha256: "bb" } },
        { ...file("unhashed.gcode", 10, T + 3_600_000), hashes: { sha256: "cc" } },
      ],
      target: [
        remote("same.gcode", { hashes: { sha256: "aa" } }),
        remote("changed.gcode", { hashes: { sha256: "b0" } }),
        remote("unhashed.gcode"),
      ],
      rules: { ...rules, hash: "sha256" },
    });
    assert.deepEqual(
      actions.map((a) => (a.type === "upload" ? `${a.path}:${a.reason}` : a.type)),
      ["changed.gcode:content", "unhashed.gcode:newer"],
    );
  });

  test("a copy Ferry delivered is judged by the source it came from, not by the target's clock", () => {
    const sent = { size: 10, modTime: T };
    const actions = plan({
      // The printer's clock runs hours behind: by time alone every file would look stale.
      source: [file("same.gcode"), file("edited.gcode", 10, T + 1), file("resized.gcode", 12)],
      target: [
        remote("same.gcode", { modTime: T - 3_600_000, delivered: sent }),
        remote("edited.gcode", { modTime: T - 3_600_000, delivered: sent }),
        remote("resized.gcode", { modTime: T - 3_600_000, delivered: sent }),
      ],
      rules,
    });
    assert.deepEqual(
      actions.map((a) => (a.type === "upload" ? `${a.path}:${a.reason}` : a.type)),
      ["edited.gcode:changed", "resized.gcode:size"],
    );
  });

  test("room needed counts new files whole and replacements by what they add", () => {
    const target = [remote("grow.gcode", { size: 100 }), remote("SHRINK.gcode", { size: 500 }), dir("d")];
    const actions = plan({
      source: [file("new.gcode", 1_000), file("grow.gcode", 300), file("shrink.gcode", 200)],
      target,
      rules: { ...rules, caseInsensitive: true },
    });
    assert.equal(roomNeeded(actions, target, true), 1_000 + 200 - 300);
  });

  test("digests are ignored unless the rules compare by them", () => {
    const actions = plan({
      source: [{ ...file("a.gcode"), hashes: { sha256: "aa" } }],
      target: [remote("a.gcode", { hashes: { sha256: "zz" } })],
      rules,
    });
    assert.deepEqual(actions, []);
  });

  test("an older source file or an unknown target size is not a reason to send", () => {
    const actions = plan({
      source: [file("old.gcode", 10, T - 3_600_000), file("nosize.gcode", 99)],
      target: [remote("old.gcode"), remote("nosize.gcode", { size: null })],
      rules,
    });
    assert.deepEqual(actions, []);
  });

  test("mirror deletes selected excess files and the folders they leave empty, deepest first", () => {
    const actions = plan({
      source: [file("keep/a.gcode")],
      target: [
        dir("keep"),
        remote("keep/a.gcode"),
        dir("old"),
        dir("old/deep"),
        remote("old/deep/x.gcode"),
        remote("keep/z.gcode"),
      ],
      rules,
    });
    assert.deepEqual(summary(actions), [
      "delete old/deep/x.gcode",
      "delete keep/z.gcode",
      "rmdir old/deep",
      "rmdir old",
    ]);
  });

  test("never deletes unselected files nor their folders", () => {
    const actions = plan({
      source: [],
      target: [dir("notes"), remote("notes/readme.txt", { selected: false }), remote("x.gcode")],
      rules,
    });
    assert.deepEqual(summary(actions), ["delete x.gcode"]);
  });

  test("copy mode never deletes", () => {
    const actions = plan({
      source: [],
      target: [dir("d"), remote("d/x.gcode")],
      rules: { ...rules, mode: "copy" },
    });
    assert.deepEqual(actions, []);
  });

  test("keeps source folders even when empty", () => {
    const actions = plan({ source: [], sourceDirs: ["a/b"], target: [dir("a"), dir("a/b")], rules });
    assert.deepEqual(actions, []);
  });

  test("the protected (printed) file is neither replaced nor deleted", () => {
    const replace = plan({
      source: [file("p.gcode", 20)],
      target: [remote("p.gcode")],
      rules: { ...rules, protectedPath: "p.gcode" },
    });
    assert.deepEqual(summary(replace), ["skip p.gcode"]);
    const remove = plan({
      source: [],
      target: [dir("d"), remote("d/P.gcode")],
      rules: { ...rules, caseInsensitive: true, protectedPath: "d/p.gcode" },
    });
    assert.deepEqual(summary(remove), ["skip d/P.gcode"]);
  });

  test("matches names across Unicode normalization and, where the target ignores case, across case", () => {
    const nfd = "Привет/café.gcode".normalize("NFD");
    const actions = plan({
      source: [file("Привет/café.gcode"), file("UPPER.gcode")],
      target: [remote(nfd), remote("upper.gcode", { size: 3 })],
      rules: { ...rules, caseInsensitive: true },
    });
    assert.deepEqual(
      actions.map((a) => (a.type === "upload" ? `${a.path}->${a.targetPath}` : a.type)),
      ["UPPER.gcode->upper.gcode"],
    );
  });

  test("refuses names the target cannot store, and case clashes on case-insensitive targets", () => {
    const actions = plan({
      source: [file("a:b.gcode"), file("x".repeat(300) + ".gcode"), file("Dup.gcode"), file("dup.gcode")],
      target: [],
      rules: { ...rules, forbiddenChars: ":", caseInsensitive: true },
    });
    assert.deepEqual(
      actions.map((a) => a.type),
      ["upload", "invalid", "invalid", "invalid"],
    );
  });

  test("names: every forbidden character, control characters and long names are found, wherever they are", () => {
    // Characters that mean something in a regular expression's class, and one beyond the BMP.
    const strict = { ...rules, forbiddenChars: '\\]^-:"\u{1F600}', maxNameBytes: 20 };
    const cases: [string, string | undefined][] = [
      ["a/b.gcode", undefined],
      [`${"d/".repeat(40)}b.gcode`, undefined], // a long path of short names
      ["a/b]c.gcode", 'the target does not allow "]" in names'],
      ["a\\b.gcode", 'the target does not allow "\\\\" in names'],
      ["a^b", 'the target does not allow "^" in names'],
      ["a-b", 'the target does not allow "-" in names'],
      ["a/\u{1F600}.gcode", 'the target does not allow "\u{1F600}" in names'],
      ["a\tb", 'the target does not allow "\\t" in names'],
      [
        "ok/é".padEnd(16, "é") + ".gcode",
        `"${"é".repeat(13)}.gcode" is longer than the target's 20-byte name limit`,
      ],
    ];
    for (const [path, reason] of cases) assert.equal(nameProblem(path, strict), reason, path);
  });

  test("two spellings of one name (NFC and NFD) are named as such, with both forms", () => {
    const nfc = "\u0439.gcode"; // й
    const nfd = "\u0438\u0306.gcode"; // и + combining breve
    const actions = plan({ source: [file(nfc), file(nfd)], target: [], rules });
    assert.deepEqual(summary(actions), [`upload ${nfc}`, `invalid ${nfd}`]);
    const invalid = actions[1];
    assert.ok(invalid?.type === "invalid");
    assert.equal(
      invalid.reason,
      `"${nfd}" and "${nfc}" are one name in two Unicode forms (U+0438 U+0306 and U+0439); names are compared in NFC, so only "${nfc}" is sent: rename one of them`,
    );
    assert.doesNotMatch(invalid.reason, /case-insensitive/);
  });

  test("unicode: nfc sends names in NFC; keep sends them as spelled", () => {
    const nfd = "\u0438\u0306.gcode";
    const sent = (unicode: "keep" | "nfc") =>
      plan({ source: [file(nfd)], target: [], rules: { ...rules, unicode } }).map((a) =>
        a.type === "upload" ? a.targetPath : a.type,
      );
    assert.deepEqual(sent("keep"), [nfd]);
    assert.deepEqual(sent("nfc"), ["\u0439.gcode"]);
  });
});
