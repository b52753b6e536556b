/**
 * The dashboard's API types (web/src/api/schema.ts) are the server's OpenAPI document as it is
 * now: a route changed without `npm run web:api` fails here, before the page breaks.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { SCHEMA_FILE, schemaSource } from "../scripts/web-api.ts";

test("web/src/api/schema.ts matches the server's OpenAPI document", async () => {
  const committed = await readFile(SCHEMA_FILE, "utf8");
  const current = await schemaSource();
  assert.ok(
    committed === current,
    "web/src/api/schema.ts differs from the server's OpenAPI document: run npm run web:api",
  );
  // It is the real document: the routes the dashboard calls are in it, with their schemas.
  for (const path of [
    "/api/v1/printers",
    "/api/v1/jobs",
    "/api/v1/events",
    "/api/v1/printers/{name}/temperatures",
  ])
    assert.ok(current.includes(`"${path}": {`), path);
  assert.match(current, /Printer: \{/);
});
