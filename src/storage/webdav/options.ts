/** The options of a WebDAV device in ferry.yaml, and what the adapter can do. */
import { z } from "zod";
import { secretString } from "../../core/secret.ts";
import type { Capabilities, StorageKind } from "../adapter.ts";

export const webdavOptionsSchema = z
  .strictObject({
    /** The collection that is the root, e.g. http://nas:8080/dav/. */
    url: z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }),
    username: z.string().min(1).optional(),
    password: secretString().optional(),
    /** auto: the scheme the server asks for (Digest when offered); basic, digest: only that one. */
    auth: z.enum(["auto", "basic", "digest"]).default("auto"),
    /** PEM file of the CA that signed the server's certificate (https). */
    ca_file: z.string().min(1).optional(),
  })
  .superRefine((options, ctx) => {
    if ((options.username === undefined) !== (options.password === undefined)) {
      ctx.addIssue({
        code: "custom",
        message: "set both username and password, or neither",
        path: ["password"],
      });
    }
    const url = new URL(options.url);
    if (url.username !== "" || url.password !== "" || url.search !== "" || url.hash !== "") {
      const message = "the url names the collection only (credentials go in username and password)";
      ctx.addIssue({ code: "custom", message, path: ["url"] });
    }
    if (options.ca_file !== undefined && url.protocol !== "https:") {
      ctx.addIssue({ code: "custom", message: "ca_file needs an https:// url", path: ["ca_file"] });
    }
  });

export type WebdavOptions = z.output<typeof webdavOptionsSchema>;

const capabilities: Readonly<Capabilities> = Object.freeze({
  read: true,
  write: true,
  list: "flat",
  listSizes: true,
  // getlastmodified is an HTTP date: whole seconds, stamped by the server.
  modTimePrecisionMs: 1000,
  setModTime: false,
  hashes: [],
  rangeRead: true,
  resumableWrite: "offset",
  partialWritesVisible: false,
  atomicRename: true,
  serverSideMove: true,
  maxConcurrency: 8,
  forbiddenChars: "\0",
  maxNameBytes: 255,
  caseInsensitive: false,
  watch: false,
  usage: false,
  removable: false,
});

export const webdavKind: StorageKind<WebdavOptions> = {
  kind: "webdav",
  optionsSchema: webdavOptionsSchema,
  capabilities,
  cleartext: (options) =>
    options.username !== undefined && options.url.startsWith("http:") && options.auth !== "digest"
      ? "Basic authentication over http:// sends the password in clear (use https://, or auth: digest)"
      : undefined,
};
