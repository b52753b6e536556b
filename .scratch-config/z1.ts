import { z } from "zod";
const a = z.object({ url: z.url(), username: z.string(), password: z.string() });
const b = z.object({ path: z.string() }).transform((o) => o);
const A = a.extend({ type: z.literal("prusalink") }).strict();
const B = z.object({ type: z.literal("local") }).loose().pipe(z.transform((o: Record<string, unknown>) => { const { type: _t, ...rest } = o; return rest; })).pipe(b);
const U = z.discriminatedUnion("type", [A, B]);
const err = (iss: any) => { console.log("ERRFN", iss.code, iss.input, iss.path); return undefined; };
for (const v of [{ type: "nope", x: 1 }, { url: "x" }, { type: "prusalink", url: "bad", extra: 1 }, { type: "local", path: 3 }, { type: "local", path: "a" }, 5, null]) {
  const r = U.safeParse(v, { error: err });
  console.log(JSON.stringify(v), r.success ? r.data : JSON.stringify(r.error.issues));
}
const M = z.enum(["mirror", "copy"], { error: (iss) => (iss.input === "move" ? "move comes later" : undefined) });
console.log(JSON.stringify(M.safeParse("move").error?.issues), JSON.stringify(M.safeParse("x").error?.issues));
console.log(a instanceof z.ZodObject, b instanceof z.ZodObject);
