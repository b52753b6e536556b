/** Multi-Status replies as servers write them: prefixes, entities, several propstats, cut bodies. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { FerryError } from "../../core/errors.ts";
import { parseMultistatus } from "./propfind.ts";

const context = { device: "nas", operation: "list", path: "logs" };
const base = ["dav", "logs"];

/** As Apache mod_dav writes it: live properties under an lp1 prefix, a 404 propstat after the 200. */
const apache = `<?xml version="1.0" encoding="utf-8"?>
<D:multistatus xmlns:D="DAV:" xmlns:ns0="DAV:">
<D:response xmlns:lp1="DAV:">
<D:href>/dav/logs/</D:href>
<D:propstat><D:prop><lp1:resourcetype><D:collection/></lp1:resourcetype>
<lp1:getlastmodified>Sat, 05 Dec 2026 10:00:00 GMT</lp1:getlastmodified></D:prop>
<D:status>HTTP/1.1 200 OK</D:status></D:propstat>
<D:propstat><D:prop><D:getcontentlength/></D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>
</D:response>
<D:response xmlns:lp1="DAV:">
<D:href>/dav/logs/fl%C3%BCg%201.bin</D:href>
<D:propstat><D:prop><lp1:resourcetype/><lp1:getcontentlength>0123</lp1:getcontentlength>
<lp1:getlastmodified>Sat, 05 Dec 2026 10:00:01 GMT</lp1:getlastmodified></D:prop>
<D:status>HTTP/1.1 200 OK</D:status></D:propstat>
</D:response>
</D:multistatus>`;

test("Apache's reply: the folder itself, a file with its size and time", () => {
  assert.deepEqual(parseMultistatus(apache, base, context), [
    { path: "", type: "dir", modTime: Date.parse("2026-12-05T10:00:00Z") },
    { path: "flüg 1.bin", type: "file", size: 123, modTime: Date.parse("2026-12-05T10:00:01Z") },
  ]);
});

test("lower-case prefixes, a 404 propstat before the 200, entities and absolute hrefs", () => {
  const xml = `<?xml version="1.0"?>
<d:multistatus xmlns:d="DAV:">
<d:response><d:href>http://127.0.0.1:8080/dav/logs/a&amp;b.txt</d:href>
<d:propstat><d:prop><d:getlastmodified/></d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat>
<d:propstat><d:prop><d:resourcetype/><d:getcontentlength>7</d:getcontentlength></d:prop>
<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>
<d:response><d:href>/dav/logs/sub/</d:href>
<d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop>
<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>
<d:response><d:href>/elsewhere/x</d:href>
<d:propstat><d:prop><d:resourcetype/></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>
</d:multistatus>`;
  assert.deepEqual(parseMultistatus(xml, base, context), [
    { path: "a&b.txt", type: "file", size: 7 },
    { path: "sub", type: "dir" },
  ]);
});

test("a response with no property found is no entry; an empty Multi-Status lists nothing", () => {
  const notFound = `<D:multistatus xmlns:D="DAV:"><D:response><D:href>/dav/logs/gone</D:href>
<D:propstat><D:prop><D:resourcetype/></D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>
</D:response></D:multistatus>`;
  assert.deepEqual(parseMultistatus(notFound, base, context), []);
  assert.deepEqual(parseMultistatus(`<D:multistatus xmlns:D="DAV:"/>`, base, context), []);
  assert.deepEqual(parseMultistatus(`<D:multistatus xmlns:D="DAV:"></D:multistatus>`, base, context), []);
});

test("a reply cut short, an HTML page or another XML document is a PROTOCOL error naming the request", () => {
  const cut = apache.slice(0, apache.indexOf("</D:response>") + 40);
  for (const xml of [cut, "<html><body>Login</body></html>", "<error>denied</error>", "not xml at all"]) {
    assert.throws(
      () => parseMultistatus(xml, base, context),
      (error: unknown) =>
        error instanceof FerryError &&
        error.code === "PROTOCOL" &&
        error.message === "nas: list logs: not a WebDAV Multi-Status reply",
      xml,
    );
  }
});
