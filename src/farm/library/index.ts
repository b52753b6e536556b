/** The farm's file library (docs/farm.md): upload, metadata, thumbnails, download, removal. */
export {
  DEFAULT_MAX_BYTES,
  Library,
  openLibrary,
  THUMBNAIL_CONTENT_TYPES,
  type AddedFile,
  type LibraryFile,
  type LibraryOptions,
} from "./library.ts";
export { kindOfName, LIBRARY_FILE_KINDS, readMetadata, type LibraryFileKind } from "./metadata/read.ts";
export {
  bufferSource,
  type ByteSource,
  type MetadataResult,
  type PrintMetadata,
  type Thumbnail,
  type ThumbnailFormat,
  type ThumbnailInfo,
} from "./metadata/types.ts";
