import assert from "node:assert/strict";
import { test } from "node:test";
import { fileFilter } from "./filters.ts";
import { plan } from "./plan.ts";

test("a name with a line break is selected like any other, then reported where a target cannot take it", () => {
  const all = fileFilter(["**"], []);
  const logs = fileFilter(["**/*.log"], ["old/**"]);
  assert.equal(all("a\nb.log"), true);
  assert.equal(all("dir/a\r\nb.log"), true);
  assert.equal(logs("a\nb.log"), true);
  assert.equal(logs("old/a\nb.log"), false);
  const actions = plan({
    source: [{ path: "a\nb.log", size: 1 }],
    target: [],
    rules: { mode: "mirror", toleranceMs: 0, caseInsensitive: false, forbiddenChars: "", maxNameBytes: 255 },
  });
  assert.deepEqual(
    actions.map((a) => [a.type, a.type === "invalid" ? a.reason : ""]),
    [["invalid", 'the target does not allow "\\n" in names']],
  );
});
