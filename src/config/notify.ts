/**
 * `notify:` of ferry.yaml: who hears about what, and through which channel (docs/notifications.md).
 *
 *     notify:
 *       dashboard_url: https://ferry.example.com   # links in messages (default: server.public_url)
 *       channels:
 *         ops:    { type: webhook, url: "https://hooks.example.com/ferry", secret: "${HOOK_SECRET}" }
 *         broker: { type: mqtt, url: "mqtts://broker.lab:8883", username: ferry, password: "${MQTT_PASSWORD}" }
 *         mail:   { type: email, host: smtp.lab, port: 587, username: ferry, password: "${SMTP_PASSWORD}",
 *                   from: "Ferry <ferry@lab.example>" }
 *       rules:
 *         - on: [job.finished, job.failed]
 *           to: owner                   # owner | role:operator | user:ada | ada@example.com
 *           via: [mail, ops, broker]
 *         - on: printer.offline
 *           after: 5m                   # only when it stays offline this long
 *           to: role:operator
 *           via: mail
 */
import { statSync } from "node:fs";
import { z } from "zod";
import { Secret, secretString } from "../core/secret.ts";
import type { ConfigProblem } from "./errors.ts";
import type { ConfigSource } from "./source.ts";

export const NOTIFY_KEYS = ["dashboard_url", "channels", "rules"] as const;
export const RULE_KEYS = ["on", "to", "via", "after", "subject", "text"] as const;
export const CHANNEL_KEYS: Record<ChannelType, readonly string[]> = {
  webhook: ["type", "url", "secret", "timeout", "attempts"],
  mqtt: [
    "type",
    "url",
    "username",
    "password",
    "ca_file",
    "client_id",
    "topic_prefix",
    "qos",
    "printer_state",
  ],
  email: ["type", "host", "port", "secure", "username", "password", "ca_file", "from", "timeout", "attempts"],
};

/** What a rule may watch (docs/notifications.md says when each fires). */
export const NOTIFY_EVENTS = [
  "job.finished",
  "job.failed",
  "job.cancelled",
  "job.waiting_bed_clear",
  "printer.error",
  "printer.offline",
  "device.offline",
  "device.attention",
  "transfer.dead",
] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];
/** Events that wait `after` before they fire (and do not when the device is back by then). */
export const DELAYED_EVENTS: readonly NotifyEvent[] = ["printer.offline", "device.offline"];

export type ChannelType = "webhook" | "mqtt" | "email";
/** Roles of src/auth/roles.ts (config does not import auth/; server.ts keeps the same list). */
const ROLES = ["viewer", "user", "operator", "admin"] as const;

export const DEFAULT_WEBHOOK_TIMEOUT_S = 10;
export const DEFAULT_NOTIFY_ATTEMPTS = 10;
export const DEFAULT_TOPIC_PREFIX = "ferry";

/** Whom a rule tells. */
export type Recipient =
  | { kind: "owner" }
  | { kind: "role"; role: (typeof ROLES)[number] }
  | { kind: "user"; name: string }
  | { kind: "address"; address: string };

export interface WebhookChannel {
  type: "webhook";
  name: string;
  url: string;
  /** Signs every request (HMAC-SHA256); absent: requests are not signed. */
  secret?: Secret;
  timeoutS: number;
  attempts: number;
}

export interface MqttChannel {
  type: "mqtt";
  name: string;
  /** mqtt://, mqtts://, ws:// or wss:// */
  url: string;
  username?: string;
  password?: Secret;
  /** Absolute path of a CA certificate to trust (beside the system's). */
  caFile?: string;
  clientId?: string;
  topicPrefix: string;
  qos: 0 | 1 | 2;
  /** Publish each farm printer's state, retained, under <prefix>/printers/<name>/state (default true). */
  printerState: boolean;
}

export interface EmailChannel {
  type: "email";
  name: string;
  host: string;
  port: number;
  /** TLS from the first byte (port 465); false: STARTTLS when the server offers it. */
  secure: boolean;
  username?: string;
  password?: Secret;
  caFile?: string;
  from: string;
  timeoutS: number;
  attempts: number;
}

export type NotifyChannel = WebhookChannel | MqttChannel | EmailChannel;

export interface NotifyRule {
  /** Its place in `rules` (for logs and keys). */
  index: number;
  on: NotifyEvent[];
  /** Empty: nobody in particular (webhooks and MQTT carry it anyway; e-mail needs someone). */
  to: Recipient[];
  via: string[];
  /** printer.offline / device.offline: how long it must stay away first (seconds; default 0). */
  afterS: number;
  /** Templates ({{job}}, {{file}}, {{printer}}, {{time}}, {{link}}, ...); absent: the event's own. */
  subject?: string;
  text?: string;
}

export interface NotifyConfig {
  /** Without a trailing slash; absent: server.public_url, else no links. */
  dashboardUrl?: string;
  channels: Map<string, NotifyChannel>;
  rules: NotifyRule[];
}

const toList = (value: unknown): unknown => (typeof value === "string" ? [value] : value);
const ADDRESS = /^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

const recipient = z.string().transform((text, ctx): Recipient => {
  if (text === "owner") return { kind: "owner" };
  const [prefix, rest] = [text.slice(0, text.indexOf(":")), text.slice(text.indexOf(":") + 1)];
  if (prefix === "role" && (ROLES as readonly string[]).includes(rest))
    return { kind: "role", role: rest as (typeof ROLES)[number] };
  if (prefix === "user" && rest !== "") return { kind: "user", name: rest };
  if (ADDRESS.test(text)) return { kind: "address", address: text };
  ctx.addIssue({
    code: "custom",
    message: `expected owner, role:${ROLES.join("|role:")}, user:NAME or an e-mail address, got "${text}"`,
  });
  return z.NEVER;
});

const fileField = z.string().min(1, "must not be empty");
const attempts = z.number().int("must be a whole number").min(1, "at least 1").max(100, "at most 100");

function channelSchema(duration: (fallback?: number) => z.ZodType<number | undefined>) {
  const webhook = z.strictObject({
    type: z.literal("webhook"),
    url: z.url({ protocol: /^https?$/, error: "expected an http:// or https:// URL" }),
    secret: secretString().optional(),
    timeout: duration(DEFAULT_WEBHOOK_TIMEOUT_S),
    attempts: attempts.default(DEFAULT_NOTIFY_ATTEMPTS),
  });
  const mqtt = z.strictObject({
    type: z.literal("mqtt"),
    url: z.url({ protocol: /^(mqtts?|wss?)$/, error: "expected an mqtt://, mqtts://, ws:// or wss:// URL" }),
    username: z.string().min(1, "must not be empty").optional(),
    password: secretString().optional(),
    ca_file: fileField.optional(),
    client_id: z.string().min(1, "must not be empty").max(128).optional(),
    topic_prefix: z
      .string()
      .regex(/^[^#+\s]+$/, "a topic prefix has no spaces, # or +")
      .transform((text) => text.replace(/\/+$/, ""))
      .default(DEFAULT_TOPIC_PREFIX),
    qos: z.union([z.literal(0), z.literal(1), z.literal(2)], { error: "expected 0, 1 or 2" }).default(1),
    printer_state: z.boolean().default(true),
  });
  const email = z.strictObject({
    type: z.literal("email"),
    host: z.string().min(1, "must not be empty"),
    port: z.number().int().min(1).max(65535).optional(),
    secure: z.boolean().default(false),
    username: z.string().min(1, "must not be empty").optional(),
    password: secretString().optional(),
    ca_file: fileField.optional(),
    from: z.string().min(3, "expected an address such as Ferry <ferry@lab.example>"),
    timeout: duration(DEFAULT_WEBHOOK_TIMEOUT_S),
    attempts: attempts.default(DEFAULT_NOTIFY_ATTEMPTS),
  });
  return z.discriminatedUnion("type", [webhook, mqtt, email], {
    error: () => "expected type: webhook, mqtt or email",
  });
}

/** `notify:`; `duration` is the config's own duration field (schema.ts), given to avoid an import cycle. */
export function notifySchema(duration: (fallback?: number) => z.ZodType<number | undefined>) {
  const rule = z.strictObject({
    on: z.preprocess(
      toList,
      z
        .array(z.enum(NOTIFY_EVENTS, { error: `expected one of ${NOTIFY_EVENTS.join(", ")}` }))
        .min(1, "name at least one event"),
    ),
    to: z.preprocess(toList, z.array(recipient)).default([]),
    via: z.preprocess(toList, z.array(z.string().min(1)).min(1, "name at least one channel")),
    after: duration(0),
    subject: z.string().min(1).optional(),
    text: z.string().min(1).optional(),
  });
  return z.preprocess(
    (value) => value ?? {},
    z.strictObject({
      dashboard_url: z
        .url({ protocol: /^https?$/, error: "expected an http:// or https:// URL" })
        .transform((url) => url.replace(/\/+$/, ""))
        .optional(),
      channels: z
        .record(z.string().regex(NAME, 'letters, digits, "_", "." or "-"'), channelSchema(duration))
        .default({}),
      rules: z.array(rule).default([]),
    }),
  );
}

type ParsedNotify = z.output<ReturnType<typeof notifySchema>>;

/**
 * The typed `notify:`; rules must name channels that exist, an e-mail channel needs recipients,
 * `after` only applies to the offline events, CA files must be files. Problems go to `problems`.
 */
export function notifyConfig(
  parsed: ParsedNotify,
  resolvePath: (text: string) => string,
  source: ConfigSource,
  problems: ConfigProblem[],
): NotifyConfig {
  const channels = new Map<string, NotifyChannel>();
  for (const [name, c] of Object.entries(parsed.channels)) {
    const caFile = "ca_file" in c && c.ca_file !== undefined ? resolvePath(c.ca_file) : undefined;
    if (caFile !== undefined) {
      const problem = fileProblem(caFile);
      if (problem) problems.push(source.problem(["notify", "channels", name, "ca_file"], problem));
    }
    const ca = caFile === undefined ? {} : { caFile };
    if (c.type === "webhook") {
      channels.set(name, {
        type: "webhook",
        name,
        url: c.url,
        ...(c.secret ? { secret: c.secret } : {}),
        timeoutS: c.timeout ?? DEFAULT_WEBHOOK_TIMEOUT_S,
        attempts: c.attempts,
      });
    } else if (c.type === "mqtt") {
      channels.set(name, {
        type: "mqtt",
        name,
        url: c.url,
        ...(c.username === undefined ? {} : { username: c.username }),
        ...(c.password ? { password: c.password } : {}),
        ...ca,
        ...(c.client_id === undefined ? {} : { clientId: c.client_id }),
        topicPrefix: c.topic_prefix,
        qos: c.qos,
        printerState: c.printer_state,
      });
    } else {
      if ((c.username === undefined) !== (c.password === undefined))
        problems.push(
          source.problem(
            // At the one that is written (the other has no place in the file).
            ["notify", "channels", name, c.username === undefined ? "password" : "username"],
            "username and password go together",
          ),
        );
      channels.set(name, {
        type: "email",
        name,
        host: c.host,
        port: c.port ?? (c.secure ? 465 : 587),
        secure: c.secure,
        ...(c.username === undefined ? {} : { username: c.username }),
        ...(c.password ? { password: c.password } : {}),
        ...ca,
        from: c.from,
        timeoutS: c.timeout ?? DEFAULT_WEBHOOK_TIMEOUT_S,
        attempts: c.attempts,
      });
    }
  }
  const rules = parsed.rules.map((r, index): NotifyRule => {
    r.via.forEach((name, i) => {
      const channel = channels.get(name);
      if (!channel) {
        const known = [...channels.keys()];
        problems.push(
          source.problem(
            ["notify", "rules", index, "via", i],
            `unknown channel "${name}"; ${known.length > 0 ? `channels: ${known.join(", ")}` : "notify.channels has none"}`,
          ),
        );
      } else if (channel.type === "email" && r.to.length === 0) {
        problems.push(
          source.problem(
            ["notify", "rules", index, "to"],
            `channel "${name}" sends e-mail: say to whom (owner, role:NAME, user:NAME or an address)`,
          ),
        );
      }
    });
    const afterS = r.after ?? 0;
    if (afterS > 0 && !r.on.some((event) => DELAYED_EVENTS.includes(event)))
      problems.push(
        source.problem(
          ["notify", "rules", index, "after"],
          `after applies to ${DELAYED_EVENTS.join(" and ")} only`,
        ),
      );
    return {
      index,
      on: r.on,
      to: r.to,
      via: r.via,
      afterS,
      ...(r.subject === undefined ? {} : { subject: r.subject }),
      ...(r.text === undefined ? {} : { text: r.text }),
    };
  });
  return {
    ...(parsed.dashboard_url === undefined ? {} : { dashboardUrl: parsed.dashboard_url }),
    channels,
    rules,
  };
}

function fileProblem(file: string): string | undefined {
  try {
    return statSync(file).isFile() ? undefined : `${file} is not a file`;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? `${file} not found` : `cannot read ${file} (${code ?? String(error)})`;
  }
}
