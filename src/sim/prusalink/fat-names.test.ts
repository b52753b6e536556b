import assert from "node:assert/strict";
import { test } from "node:test";
import { invalidNameReason, isPrintFile, makeShortName, nameKey } from "./fat-names.ts";

void test("short names look like the ones FAT makes", () => {
  const taken = new Set<string>();
  const add = (name: string) => {
    const short = makeShortName(name, taken);
    taken.add(short);
    return short;
  };
  assert.equal(add("Spice_Harvester_0.3mm_PLA_MK3S_12m.gcode"), "SPICE_~1.GCO");
  assert.equal(add("Spice_Harvester_0.3mm_PLA_MK3S_42m.gcode"), "SPICE_~2.GCO");
  assert.equal(add("BENCHY.GCO"), "BENCHY.GCO");
  assert.equal(add("benchy.gco"), "BENCHY~1.GCO", "a taken plain name gets an alias");
  assert.equal(add("temperature tower.bgcode"), "TEMPER~1.BGC");
  assert.equal(add("кронштейн.gcode"), "______~1.GCO");
  assert.equal(add(".hidden"), "HIDDEN~1");
  assert.equal(add("a+b=c[1].txt"), "A_B_C_~1.TXT");
  assert.equal(add("MixedCase.txt"), "MIXEDC~1.TXT");
  for (let i = 3; i <= 12; i++) add(`Spice_Harvester_${i}.gcode`);
  assert.ok(taken.has("SPICE~10.GCO"), "the base shrinks to fit a two-digit suffix");
  for (const short of taken) assert.match(short, /^[^.]{1,8}(\.[^.]{1,3})?$/);
});

void test("names are validated and compared as FAT does", () => {
  for (const bad of [
    'a"b',
    "a*b",
    "a:b",
    "a<b",
    "a>b",
    "a?b",
    "a\\b",
    "a|b",
    "a\x01b",
    "a/b",
    "",
    ".",
    "..",
  ]) {
    assert.notEqual(invalidNameReason(bad), undefined, bad);
  }
  for (const good of ["#%&+ ok.gcode", ".leading dot", "Клиенты", "x".repeat(255)])
    assert.equal(invalidNameReason(good), undefined, good);
  assert.notEqual(invalidNameReason("x".repeat(256)), undefined);
  assert.equal(nameKey("Cafe\u0301.GCODE"), nameKey("café.gcode"));
  assert.ok(isPrintFile("a.gcode") && isPrintFile("b.BGCODE") && !isPrintFile("c.txt"));
});
