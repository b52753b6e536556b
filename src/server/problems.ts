/**
 * Every error the server answers is an RFC 9457 problem (`application/problem+json`), made in one
 * place: the error handler. Route code throws a FerryError (mapped by its code) or an
 * HttpProblem; validation, body size, media type and JSON errors of Fastify come here too, and a
 * validation problem names each field at fault in `errors`.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { isFerryError, type ErrorCode } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";

/** Problem types are tag URIs (RFC 4151): stable names, not links to follow. */
export const PROBLEM_TYPE_PREFIX = "tag:ferry,2026:problem:";

export interface FieldError {
  /** Where in the request: `body.name`, `params.id`, `query.limit`, `body.items[0].path`. */
  path: string;
  message: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  /** The device, user or field the problem is about, when there is one. */
  subject?: string;
  errors?: FieldError[];
}

/** The problem schema, for the OpenAPI document. */
export const problemSchema = z.object({
  type: z.string().describe(`${PROBLEM_TYPE_PREFIX}<kind>, e.g. ${PROBLEM_TYPE_PREFIX}validation`),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  subject: z.string().optional(),
  errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});

/** An HTTP-level problem a route or hook throws: 401, 403, 429 and the like. */
export class HttpProblem extends Error {
  override readonly name = "HttpProblem";
  readonly status: number;
  /** The last part of the type URI, e.g. "unauthenticated". */
  readonly kind: string;
  readonly title: string;
  readonly headers: Record<string, string>;
  readonly subject: string | undefined;

  constructor(
    status: number,
    kind: string,
    title: string,
    detail: string,
    options: { headers?: Record<string, string>; subject?: string } = {},
  ) {
    super(detail);
    this.status = status;
    this.kind = kind;
    this.title = title;
    this.headers = options.headers ?? {};
    this.subject = options.subject;
  }
}

/** FerryError codes as HTTP: what the client may do about it. */
const FERRY_STATUS: Record<ErrorCode, { status: number; title: string }> = {
  NOT_FOUND: { status: 404, title: "Not found" },
  EXISTS: { status: 409, title: "Already exists" },
  NOT_EMPTY: { status: 409, title: "Not empty" },
  CONFLICT: { status: 409, title: "Conflict with the current state" },
  PERMISSION: { status: 403, title: "Not allowed" },
  NAME_INVALID: { status: 422, title: "Invalid name or value" },
  UNSUPPORTED: { status: 422, title: "Not supported" },
  BUSY: { status: 409, title: "Busy" },
  NO_SPACE: { status: 507, title: "No space left" },
  // A device refused Ferry's own credentials, or answered nonsense: not the client's doing.
  AUTH: { status: 502, title: "A device refused Ferry's credentials" },
  PROTOCOL: { status: 502, title: "A device answered unexpectedly" },
  UNAVAILABLE: { status: 503, title: "Unavailable" },
  TRANSIENT: { status: 503, title: "Temporarily unavailable" },
  ABORTED: { status: 503, title: "Aborted" },
};

const FASTIFY_PROBLEMS: Record<string, { kind: string; title: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { kind: "body-too-large", title: "Request body too large" },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { kind: "unsupported-media-type", title: "Unsupported media type" },
  FST_ERR_CTP_EMPTY_JSON_BODY: { kind: "validation", title: "Invalid request" },
  FST_ERR_CTP_INVALID_JSON_BODY: { kind: "validation", title: "Invalid request" },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { kind: "bad-request", title: "Bad request" },
};

/** `["items", 0, "path"]` → `items[0].path`, prefixed by the request part. */
function fieldPath(part: string, segments: readonly PropertyKey[]): string {
  let path = part;
  for (const segment of segments)
    path += typeof segment === "number" ? `[${segment}]` : `.${String(segment)}`;
  return path;
}

const PARTS: Record<string, string> = {
  body: "body",
  params: "params",
  querystring: "query",
  headers: "headers",
};

/**
 * The validator of every route schema: zod's parse, with "required" for a missing field (zod
 * would say what type it expected), and the issues in the shape Fastify passes on as
 * `error.validation`.
 */
export function validatorCompiler({ schema }: { schema: unknown }) {
  const zod = schema as z.ZodType;
  return (data: unknown) => {
    const result = zod.safeParse(data, {
      error: (issue) =>
        issue.input === undefined && issue.code !== "unrecognized_keys" ? "required" : undefined,
    });
    if (result.success) return { value: result.data };
    return {
      error: result.error.issues.map((issue) => ({
        keyword: issue.code,
        instancePath: `/${issue.path.map(String).join("/")}`,
        schemaPath: "",
        message: issue.message,
        params: issue.code === "unrecognized_keys" ? { keys: issue.keys } : {},
      })),
    };
  };
}

/** Zod issues as one FieldError per field (an unknown key is named as the field itself). */
function fieldErrors(error: FastifyError): FieldError[] {
  const part = PARTS[error.validationContext ?? "body"] ?? "body";
  const out: FieldError[] = [];
  for (const item of error.validation ?? []) {
    const segments = item.instancePath
      .split("/")
      .slice(1)
      .filter((s) => s !== "");
    const path = segments.map((s) => (/^\d+$/.test(s) ? Number(s) : s));
    const keys = (item.params as { keys?: unknown }).keys;
    if (item.keyword === "unrecognized_keys" && Array.isArray(keys)) {
      for (const key of keys)
        out.push({ path: fieldPath(part, [...path, String(key)]), message: "unknown field" });
    } else {
      const message = item.message ?? "invalid";
      out.push({
        path: fieldPath(part, path),
        message: /received undefined/.test(message) ? "required" : message,
      });
    }
  }
  return out;
}

export function problemOf(error: unknown): { problem: Problem; headers: Record<string, string> } {
  if (error instanceof HttpProblem) {
    return {
      problem: {
        type: PROBLEM_TYPE_PREFIX + error.kind,
        title: error.title,
        status: error.status,
        detail: error.message,
        ...(error.subject === undefined ? {} : { subject: error.subject }),
      },
      headers: error.headers,
    };
  }
  if (isFerryError(error)) {
    const { status, title } = FERRY_STATUS[error.code];
    return {
      problem: {
        type: PROBLEM_TYPE_PREFIX + error.code.toLowerCase().replace(/_/g, "-"),
        title,
        status,
        detail: error.message,
        ...(error.subject === undefined ? {} : { subject: error.subject }),
      },
      headers: error.retryable && status === 503 ? { "retry-after": "5" } : {},
    };
  }
  const fastify = error as FastifyError;
  if (Array.isArray(fastify.validation) && fastify.validation.length > 0) {
    const errors = fieldErrors(fastify);
    return {
      problem: {
        type: PROBLEM_TYPE_PREFIX + "validation",
        title: "Invalid request",
        status: 400,
        detail: errors.map((e) => `${e.path}: ${e.message}`).join("; "),
        errors,
      },
      headers: {},
    };
  }
  // Any error may land here: only Fastify's own carry a code and a status.
  const { code, statusCode } = error as { code?: string; statusCode?: number };
  const known = code === undefined ? undefined : FASTIFY_PROBLEMS[code];
  const status = statusCode ?? 500;
  if (known !== undefined || (status >= 400 && status < 500)) {
    const detail = code === "FST_ERR_CTP_INVALID_JSON_BODY" ? "body is not valid JSON" : fastify.message;
    return {
      problem: {
        type: PROBLEM_TYPE_PREFIX + (known?.kind ?? "bad-request"),
        title: known?.title ?? "Bad request",
        status: status >= 400 && status < 500 ? status : 400,
        detail,
        ...(known?.kind === "validation" ? { errors: [{ path: "body", message: detail }] } : {}),
      },
      headers: {},
    };
  }
  return {
    problem: {
      type: PROBLEM_TYPE_PREFIX + "internal",
      title: "Internal server error",
      status: 500,
      detail: "the server failed; its log has the details",
    },
    headers: {},
  };
}

/** The one error handler: logs what a human must look at, answers a problem. */
export function errorHandler(logger: Logger) {
  return (error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const { problem, headers } = problemOf(error);
    if (problem.status >= 500 && !isFerryError(error))
      logger.error(
        {
          request: request.id,
          method: request.method,
          route: request.routeOptions.url,
          err: errorText(error),
        },
        "request failed",
      );
    return reply.code(problem.status).headers(headers).type("application/problem+json").send(problem);
  };
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply) {
  const problem: Problem = {
    type: PROBLEM_TYPE_PREFIX + "not-found",
    title: "Not found",
    status: 404,
    detail: `no route ${request.method} ${request.url.split("?")[0] ?? ""}`,
  };
  return reply.code(404).type("application/problem+json").send(problem);
}

function errorText(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}
