import { parseDocument, LineCounter, isMap, isScalar } from "yaml";
const texts = [
  "devices:\n  a: { type: x, url: 1 }\n  a: 2\nsyncs:\n  s: [\n",
  "a: b: c\nd: 1\n",
  "a:\n  - x\n - y\n",
  '{\n\t"devices": {\n\t\t"a": {"type": "x", "password": "hunter2"}\n\t}\n}\n',
  "password: [hunter2\n",
  "",
  "# only a comment\n",
  "a: &x {b: 1}\nc: *x\n",
  "- 1\n- 2\n",
];
for (const t of texts) {
  const lc = new LineCounter();
  const doc = parseDocument(t, { lineCounter: lc, prettyErrors: false });
  console.log("----", JSON.stringify(t));
  for (const e of doc.errors) console.log("ERR", e.code, JSON.stringify(e.message), e.pos, lc.linePos(e.pos[0]));
  for (const e of doc.warnings) console.log("WARN", e.code, e.message);
  try { console.log(JSON.stringify(doc.toJS())); } catch (e) { console.log("toJS throws", (e as Error).message); }
  console.log(doc.contents === null, isMap(doc.contents));
}
const lc = new LineCounter();
const doc = parseDocument("devices:\n  mk4-a: { type: prusalink, url: 'x' }\ngroups:\n  farm: [mk4-a, mk4-c]\n", { lineCounter: lc });
const n = doc.getIn(["groups", "farm", 1], true);
console.log(isScalar(n), n && (n as any).range, lc.linePos((n as any).range[0]));
const m = doc.getIn(["devices", "mk4-a"], true) as any;
console.log(m.range, lc.linePos(m.range[0]), m.items[1].key.range);
console.log(doc.getIn(["devices", "mk4-a", "nope"], true));
