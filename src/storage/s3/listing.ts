/**
 * Folder listings from ListObjectsV2. Flat: one level, with `/` as the delimiter (sub-folders come
 * back as common prefixes). Recursive: every key under the folder in one paged stream, the folders
 * made from the keys' paths. Keys come sorted, so all keys of a folder come together and each
 * folder is announced once, before its contents, holding only the current key's folders in memory.
 */
import { ListObjectsV2Command, type ListObjectsV2CommandOutput } from "@aws-sdk/client-s3";
import { throwIfAborted } from "../../core/errors.ts";
import { joinPath } from "../../core/paths.ts";
import type { Entry } from "../adapter.ts";
import type { S3Session } from "./client.ts";
import { s3Failure } from "./errors.ts";
import { md5OfEtag, spellings } from "./keys.ts";

type Page = ListObjectsV2CommandOutput;

/** The pages of one listing of `prefix`. */
async function* pages(
  s3: S3Session,
  path: string,
  prefix: string,
  delimiter: boolean,
  signal: AbortSignal | undefined,
): AsyncIterable<Page> {
  let token: string | undefined;
  do {
    const page = await s3.call("list", path, signal, (options) =>
      s3.client.send(
        new ListObjectsV2Command({
          Bucket: s3.bucket,
          Prefix: prefix,
          ...(delimiter ? { Delimiter: "/" } : {}),
          ...(token === undefined ? {} : { ContinuationToken: token }),
        }),
        options,
      ),
    );
    yield page;
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
}

const isEmpty = (page: Page) =>
  (page.Contents ?? []).length === 0 && (page.CommonPrefixes ?? []).length === 0;

/**
 * Opens the listing of `dir` under whichever spelling (as given, NFC, NFD) has keys; the root
 * always exists. NOT_FOUND when no spelling has any.
 */
async function firstPages(
  s3: S3Session,
  dir: string,
  delimiter: boolean,
  signal: AbortSignal | undefined,
): Promise<{ dir: string; prefix: string; iterator: AsyncIterator<Page>; first: Page }> {
  for (const spelling of spellings(dir)) {
    const prefix = s3.keys.folder(spelling);
    const iterator = pages(s3, dir, prefix, delimiter, signal)[Symbol.asyncIterator]();
    const first = await iterator.next();
    if (first.done !== true && (dir === "" || !isEmpty(first.value))) {
      return { dir: spelling, prefix, iterator, first: first.value };
    }
  }
  throw s3Failure(
    "NOT_FOUND",
    { storage: s3.name, bucket: s3.bucket, operation: "list", path: dir },
    "no such folder",
  );
}

function fileEntry(path: string, size: number | undefined, etag: string | undefined): Entry {
  const md5 = md5OfEtag(etag);
  return { path, type: "file", size: size ?? 0, ...(md5 === undefined ? {} : { hashes: { md5 } }) };
}

export async function* listFolder(
  s3: S3Session,
  dir: string,
  recursive: boolean,
  signal: AbortSignal | undefined,
): AsyncIterable<Entry> {
  const opened = await firstPages(s3, dir, !recursive, signal);
  const { prefix } = opened;
  const skipped = (key: string) => s3.logger.debug({ key }, "s3: skipping a key Ferry cannot address");
  /** Folder names of the last key, below `dir`: the folders already announced. */
  let announced: string[] = [];
  for (let page: Page | undefined = opened.first; page;) {
    throwIfAborted(signal);
    for (const common of page.CommonPrefixes ?? []) {
      const name =
        common.Prefix === undefined ? undefined : s3.keys.relative(common.Prefix.slice(0, -1), prefix);
      if (name === undefined) skipped(common.Prefix ?? "");
      else yield { path: joinPath(opened.dir, name), type: "dir" };
    }
    for (const object of page.Contents ?? []) {
      const key = object.Key ?? "";
      if (key === prefix) continue; // the folder's own marker
      const marker = key.endsWith("/");
      const rel = s3.keys.relative(marker ? key.slice(0, -1) : key, prefix);
      if (rel === undefined) {
        skipped(key);
        continue;
      }
      if (!recursive) {
        // A marker below this level cannot come without its common prefix, which announced it.
        if (!marker) yield fileEntry(joinPath(opened.dir, rel), object.Size, object.ETag);
        continue;
      }
      const names = rel.split("/");
      const folders = marker ? names : names.slice(0, -1);
      let same = 0;
      while (same < folders.length && same < announced.length && folders[same] === announced[same]) same++;
      for (let depth = same; depth < folders.length; depth++) {
        yield { path: joinPath(opened.dir, ...folders.slice(0, depth + 1)), type: "dir" };
      }
      announced = folders;
      if (!marker) yield fileEntry(joinPath(opened.dir, rel), object.Size, object.ETag);
    }
    const next = await opened.iterator.next();
    page = next.done === true ? undefined : next.value;
  }
}
