/**
 * What is worth telling (pure): an event of the bus becomes a notice — what happened, to which
 * job, printer or device, when, with a link — and a notice becomes a subject and a text through
 * the rule's templates or the event's own.
 */
import type { NotifyEvent } from "../config/index.ts";
import type { Envelope } from "../core/events.ts";
import type { NotifyBusEvents } from "./events.ts";

/** Task kinds of notifications themselves: a dead notification is never notified (no loop). */
export const NOTIFY_TASK_PREFIX = "notify.";

export interface Notice {
  /** The event's envelope id: one notice per event, the key of its deliveries. */
  id: string;
  event: NotifyEvent;
  /** ms since the epoch, when it happened. */
  at: number;
  node: string;
  job?: { id: string; file: string; owner: string | null; state: string };
  printer?: string;
  device?: string;
  /** What happened, in a line (the printer's message, a task's error). */
  message: string;
}

export type AnyEnvelope = {
  [K in keyof NotifyBusEvents]: Envelope<NotifyBusEvents, K>;
}[keyof NotifyBusEvents];

const JOB_ENDS: Record<string, NotifyEvent> = {
  printed: "job.finished",
  failed: "job.failed",
  cancelled: "job.cancelled",
};

/**
 * The notice an event makes, or undefined when it makes none. `job.waiting_bed_clear` notices have
 * no owner yet (the event does not carry it; the notifier looks it up).
 */
export function noticeOf(event: AnyEnvelope): Notice | undefined {
  const base = { id: event.id, at: event.at, node: event.node };
  switch (event.type) {
    case "job.state": {
      const p = event.payload;
      const kind = JOB_ENDS[p.to];
      if (kind === undefined) return undefined;
      return {
        ...base,
        event: kind,
        job: { id: p.id, file: p.file, owner: p.owner, state: p.to },
        ...(p.printer === null ? {} : { printer: p.printer }),
        message: p.reason ?? `${p.file} is ${p.to}`,
      };
    }
    case "printer.waiting_bed_clear": {
      const p = event.payload;
      return {
        ...base,
        event: "job.waiting_bed_clear",
        job: { id: p.job, file: p.file, owner: null, state: "printed" },
        printer: p.printer,
        message: `${p.file} is done on ${p.printer}: take it off and mark the bed clear`,
      };
    }
    case "printer.error": {
      const p = event.payload;
      return {
        ...base,
        event: p.problem === "offline" ? "printer.offline" : "printer.error",
        printer: p.printer,
        message: p.message,
      };
    }
    case "device.state": {
      const p = event.payload;
      if (p.state !== "offline" && p.state !== "attention") return undefined;
      if (p.before === p.state) return undefined;
      return {
        ...base,
        event: p.state === "offline" ? "device.offline" : "device.attention",
        device: p.device,
        message: p.detail,
      };
    }
    case "task.failed": {
      const p = event.payload;
      if (p.outcome !== "dead" || p.kind.startsWith(NOTIFY_TASK_PREFIX)) return undefined;
      const device = p.target?.split(":")[0];
      return {
        ...base,
        event: "transfer.dead",
        ...(device === undefined || device === "source" ? {} : { device }),
        message: `${p.what}: ${p.error}`,
      };
    }
    default:
      return undefined;
  }
}

/** The dashboard's page of what a notice is about; undefined without a dashboard address. */
export function linkOf(notice: Notice, dashboardUrl: string | undefined): string | undefined {
  if (dashboardUrl === undefined) return undefined;
  if (notice.job) return `${dashboardUrl}/jobs/${encodeURIComponent(notice.job.id)}`;
  if (notice.printer !== undefined) return `${dashboardUrl}/printers/${encodeURIComponent(notice.printer)}`;
  if (notice.device !== undefined) return `${dashboardUrl}/devices/${encodeURIComponent(notice.device)}`;
  return dashboardUrl;
}

/** "2026-12-06 07:50:12 UTC": one form for every reader, whatever their zone. */
export function formatTime(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, " UTC");
}

const DEFAULT_SUBJECTS: Record<NotifyEvent, string> = {
  "job.finished": "Printed: {{file}} on {{printer}}",
  "job.failed": "Failed: {{file}} on {{printer}}",
  "job.cancelled": "Cancelled: {{file}}",
  "job.waiting_bed_clear": "Take {{file}} off {{printer}}",
  "printer.error": "{{printer}} needs attention",
  "printer.offline": "{{printer}} is offline",
  "device.offline": "{{device}} is offline",
  "device.attention": "{{device}} needs attention",
  "transfer.dead": "A transfer to {{device}} gave up",
};

const DEFAULT_TEXT =
  "{{message}}\n\nJob: {{file}}\nPrinter: {{printer}}\nDevice: {{device}}\nTime: {{time}}\n{{link}}\n";

/** The values a template may name. */
export function templateValues(notice: Notice, link: string | undefined): Record<string, string> {
  return {
    event: notice.event,
    job: notice.job?.id ?? "",
    file: notice.job?.file ?? "",
    owner: notice.job?.owner ?? "",
    state: notice.job?.state ?? "",
    printer: notice.printer ?? "",
    device: notice.device ?? "",
    message: notice.message,
    time: formatTime(notice.at),
    link: link ?? "",
    node: notice.node,
  };
}

/** `{{name}}` replaced by its value; an unknown name stays as written, so a typo shows. */
export function render(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{\s*([a-z]+)\s*\}\}/g, (whole, name: string) => values[name] ?? whole);
}

/** The subject and text of a notice: the rule's templates, else the event's; empty lines of the default dropped. */
export function compose(
  notice: Notice,
  link: string | undefined,
  templates: { subject?: string; text?: string },
): { subject: string; text: string } {
  const values = templateValues(notice, link);
  const subject = render(templates.subject ?? DEFAULT_SUBJECTS[notice.event], values).replace(/\s+/g, " ");
  const text =
    templates.text === undefined
      ? render(DEFAULT_TEXT, values)
          .split("\n")
          .filter((line) => !/^(Job|Printer|Device): $/.test(line))
          .join("\n")
          .replace(/\n{3,}/g, "\n\n")
          .replace(/\n+$/, "\n")
      : render(templates.text, values);
  return { subject: subject.trim(), text };
}
