/**
 * The one API client: openapi-fetch over the types generated from the server's OpenAPI document
 * (schema.ts). Changes carry the session's CSRF token; every error is an ApiError whose text is
 * the server's problem in words, with the field at fault.
 */
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.ts";

type Schemas = components["schemas"];
export type Printer = Schemas["Printer"];
export type Job = Schemas["Job"];
export type JobHistoryEntry = Schemas["JobHistoryEntry"];
export type LibraryFile = Schemas["LibraryFile"];
export type User = Schemas["User"];
export type ApiToken = Schemas["ApiToken"];
export type Sync = Schemas["Sync"];
export type Task = Schemas["Task"];
export type Transfer = Schemas["Transfer"];
export type Device = Schemas["Device"];
export type Role = User["role"];
export type JobState = Job["state"];
export type Me = paths["/api/v1/me"]["get"]["responses"][200]["content"]["application/json"];
export type UploadAnswer = paths["/api/v1/files"]["post"]["responses"][201]["content"]["application/json"];

let csrfToken: string | undefined;
export function setCsrfToken(token: string | undefined): void {
  csrfToken = token;
}

export const api = createClient<paths>({ baseUrl: "" });
api.use({
  onRequest({ request }) {
    if (request.method !== "GET" && request.method !== "HEAD" && csrfToken !== undefined)
      request.headers.set("X-CSRF-Token", csrfToken);
    return request;
  },
});

interface Problem {
  title?: string;
  detail?: string;
  subject?: string;
  errors?: { path: string; message: string }[];
}

/** An error answer of the API, in words. */
export class ApiError extends Error {
  readonly status: number;
  /** The field or thing at fault, when the server named one. */
  readonly field: string | undefined;

  constructor(status: number, body: unknown) {
    const problem = (typeof body === "object" && body !== null ? body : {}) as Problem;
    const fields = problem.errors?.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)) ?? [];
    const text =
      fields.length > 0
        ? fields.join("; ")
        : (problem.detail ?? problem.title ?? (typeof body === "string" && body ? body : `HTTP ${status}`));
    super(text);
    this.name = "ApiError";
    this.status = status;
    this.field = problem.errors?.[0]?.path ?? problem.subject;
  }
}

/** The answer's data, or an ApiError. */
export async function ok<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) throw new ApiError(response.status, error);
  return data as T;
}

/** Words for any error shown to the user. */
export function errorText(error: unknown): string {
  if (error instanceof ApiError) return error.field ? `${error.message} (${error.field})` : error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * Uploads a print file to the library with progress (fetch has none for request bodies): the
 * server streams it in, answering the file's entry.
 */
export function uploadFile(file: File, onProgress: (fraction: number) => void): Promise<UploadAnswer> {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", "/api/v1/files");
    if (csrfToken !== undefined) request.setRequestHeader("X-CSRF-Token", csrfToken);
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    request.onerror = () => reject(new Error(`the upload of ${file.name} failed: the server did not answer`));
    request.onload = () => {
      let body: unknown = request.responseText;
      try {
        body = JSON.parse(request.responseText) as unknown;
      } catch {
        // Not JSON: shown as text.
      }
      if (request.status === 201) resolve(body as UploadAnswer);
      else reject(new ApiError(request.status, body));
    };
    const form = new FormData();
    form.append("file", file, file.name);
    request.send(form);
  });
}
