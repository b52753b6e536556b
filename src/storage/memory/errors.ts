/**
 * Errors of the memory adapter. It has no native errors to translate, so this file only builds
 * FerryErrors worded like the other adapters' (device name, then path).
 */
import { FerryError, type ErrorCode } from "../../core/errors.ts";

export function memoryError(code: ErrorCode, storage: string, path: string, what: string): FerryError {
  return new FerryError(code, `${storage}: ${path === "" ? "/" : path}: ${what}`, { subject: path });
}

export function notFound(storage: string, path: string): FerryError {
  return memoryError("NOT_FOUND", storage, path, "no such file or folder");
}
