/**
 * How `ferry sync` shows its work: live bars per target on a terminal, plain lines otherwise, one
 * JSON summary with --json. Renderers only subscribe to the bus; the engine never prints.
 */
import type { EventBus } from "../core/events.ts";
import { formatBytes, formatDuration } from "../core/units.ts";
import type { EngineEvents, TargetReport } from "../sync/events.ts";
import type { TaskEvents } from "../tasks/events.ts";

type TaskFailed = TaskEvents["task.failed"];
import type { Action, UploadReason } from "../sync/plan.ts";

export type OutputMode = "tty" | "plain" | "json";

/** Plain output is written at least this often, and whenever this much has gathered. */
const FLUSH_MS = 100;
const FLUSH_BYTES = 64 * 1024;

export interface Live {
  label: string;
  file?: string;
  fileBytes: number;
  fileSize: number;
  doneBytes: number;
  totalBytes: number;
  startedAt: number;
  status: string;
}

const UPLOAD_REASONS: Record<UploadReason, string> = {
  missing: "new",
  newer: "newer",
  size: "size differs",
  content: "content differs",
  changed: "changed since sent",
};

const describe = (a: Action): string => {
  switch (a.type) {
    case "upload":
      return `send ${a.path} (${formatBytes(a.size)}, ${UPLOAD_REASONS[a.reason]})`;
    case "delete":
      return `delete ${a.path}`;
    case "rmdir":
      return `remove folder ${a.path}`;
    case "skip":
      return `leave ${a.path} (${a.reason})`;
    case "invalid":
      return `cannot send ${a.path}: ${a.reason}`;
  }
};

export function attachSyncOutput(
  bus: EventBus<EngineEvents>,
  mode: OutputMode,
  out: NodeJS.WriteStream,
): () => void {
  if (mode === "json") return () => undefined;
  const key = (e: { sync?: string | undefined; target?: string | undefined }) =>
    `${e.sync ?? ""} → ${e.target ?? ""}`;
  const offs: (() => void)[] = [];
  const kept = (e: { sync: string; path: string; reason: string }) =>
    `${e.sync}: kept source ${e.path}: ${oneLine(e.reason)}`;
  const failedLine = (e: TaskFailed) =>
    `${key(e)}: ${e.what} failed: ${oneLine(e.error)}${e.outcome === "retry" ? " (retrying)" : ""}`;

  if (mode === "plain") {
    // Not a terminal: lines go out a batch at a time (a file or a pipe took one write per file
    // sent, a CPU cost of its own with thousands of small files), at the latest after FLUSH_MS.
    let pending = "";
    let timer: NodeJS.Timeout | undefined;
    const flush = () => {
      clearTimeout(timer);
      timer = undefined;
      if (pending === "") return;
      const text = pending;
      pending = "";
      out.write(text);
    };
    const line = (text: string) => {
      pending += text + "\n";
      if (pending.length >= FLUSH_BYTES) flush();
      else timer ??= setTimeout(flush, FLUSH_MS).unref();
    };
    offs.push(
      bus.on("sync.planned", ({ payload: e }) => {
        line(`${key(e)}: ${planLine(e.actions, e.bytes)}${e.dryRun ? " (dry run)" : ""}`);
        if (e.dryRun) for (const a of e.actions) line(`  ${describe(a)}`);
      }),
      bus.on("sync.note", ({ payload: e }) => line(`${key(e)}: note: ${e.note}`)),
      bus.on("task.done", ({ payload: e }) => {
        if (e.target === "source") return;
        const rate = e.bytes > 0 && e.ms > 0 ? `, ${formatBytes((e.bytes / e.ms) * 1000)}/s` : "";
        const how =
          e.skipped === undefined ? `ok in ${formatDuration(e.ms / 1000)}${rate}` : `left: ${e.skipped}`;
        line(`${key(e)}: ${e.what} ${how}`);
      }),
      bus.on("task.failed", ({ payload: e }) => line(failedLine(e))),
      bus.on("sync.target.finished", ({ payload: r }) => {
        if (!quietFinish(r)) line(finishLine(r));
      }),
      bus.on("sync.source.removed", ({ payload: e }) => line(`${e.sync}: moved ${e.path} (source deleted)`)),
      bus.on("sync.source.kept", ({ payload: e }) => line(kept(e))),
    );
    return () => {
      offs.forEach((off) => off());
      flush();
    };
  }

  // TTY: a live block of one line per target, redrawn in place.
  const live = new Map<string, Live>();
  let drawn = 0;
  const draw = () => {
    const width = Math.max(60, out.columns || 100);
    const lines = liveBlock([...live.values()], width, out.rows || 24);
    // Up to the block's first line, clear what was there (it may have been longer), redraw.
    let text = (drawn > 0 ? `\x1b[${drawn}F` : "") + "\x1b[0J";
    for (const l of lines) text += `${l}\n`;
    out.write(text);
    drawn = lines.length;
  };
  const timer = setInterval(draw, 200);
  timer.unref();
  const above = (text: string) => {
    // Print a permanent line above the live block.
    out.write((drawn > 0 ? `\x1b[${drawn}F\x1b[0J` : "") + text + "\n");
    drawn = 0;
    draw();
  };
  offs.push(
    bus.on("sync.planned", ({ payload: e }) => {
      const n = e.actions.filter((a) => a.type !== "skip").length;
      if (e.dryRun) {
        above(`${key(e)}: ${planLine(e.actions, e.bytes)} (dry run)`);
        for (const a of e.actions) above(`  ${describe(a)}`);
        return;
      }
      live.set(key(e), {
        label: key(e),
        fileBytes: 0,
        fileSize: 0,
        doneBytes: 0,
        totalBytes: e.bytes,
        startedAt: performance.now(),
        status: n === 0 ? "up to date" : "starting",
      });
    }),
    bus.on("task.started", ({ payload: e }) => {
      const l = live.get(key(e));
      if (!l) return;
      l.file = e.path ?? e.what;
      l.fileBytes = 0;
      l.fileSize = e.size ?? 0;
      l.status = e.size === undefined ? "deleting" : "sending";
    }),
    bus.on("task.progress", ({ payload: e }) => {
      const l = live.get(key(e));
      if (l) l.fileBytes = e.bytes;
    }),
    bus.on("task.done", ({ payload: e }) => {
      const l = live.get(key(e));
      if (l) {
        l.doneBytes += e.bytes;
        l.fileBytes = 0;
      }
    }),
    bus.on("sync.note", ({ payload: e }) => above(`${key(e)}: note: ${e.note}`)),
    bus.on("task.failed", ({ payload: e }) => {
      const l = live.get(key(e));
      if (l) l.fileBytes = 0;
      above(failedLine(e));
    }),
    bus.on("sync.source.kept", ({ payload: e }) => above(kept(e))),
    bus.on("sync.target.finished", ({ payload: r }) => {
      const wasLive = live.delete(key(r));
      if (!(quietFinish(r) && !wasLive)) above(finishLine(r));
    }),
  );
  return () => {
    clearInterval(timer);
    draw();
    offs.forEach((off) => off());
  };
}

/**
 * A reason fit for one line of a terminal: tags of an HTML error page and runs of white space go,
 * and a long text is cut (the whole stays in --json and the logs).
 */
export function oneLine(text: string, max = 160): string {
  const flat = text
    .replace(/<(script|style)[^>]*>[\s\S]*?<\/\1>/gi, " ")
    .replace(/<[^>]+>/g, " ")
    .replace(/\s+/g, " ")
    .trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function bar(fraction: number, width: number): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return "█".repeat(filled) + "░".repeat(width - filled);
}

/**
 * The live block: a line per target while they fit the terminal (a cursor cannot move back above
 * its top); beyond that the busiest targets and one line that sums up the rest.
 */
export function liveBlock(targets: readonly Live[], width: number, rows: number): string[] {
  const room = Math.max(3, rows - 4);
  if (targets.length <= room) return targets.map((l) => liveLine(l, width));
  const busy = (l: Live) => (l.status === "sending" || l.status === "deleting" ? 0 : 1);
  const shown = [...targets].sort((a, b) => busy(a) - busy(b)).slice(0, room - 1);
  const hidden = targets.filter((l) => !shown.includes(l));
  const sending = hidden.filter((l) => busy(l) === 0).length;
  const sent = hidden.reduce((n, l) => n + l.doneBytes + l.fileBytes, 0);
  const total = hidden.reduce((n, l) => n + l.totalBytes, 0);
  const rest = `… ${hidden.length} more: ${sending} sending, ${hidden.length - sending} waiting, ${formatBytes(sent)}/${formatBytes(total)}`;
  return [...shown.map((l) => liveLine(l, width)), rest.slice(0, width - 1)];
}

function liveLine(l: Live, width: number): string {
  const sent = l.doneBytes + l.fileBytes;
  const seconds = (performance.now() - l.startedAt) / 1000;
  const rate = seconds > 0.5 ? sent / seconds : 0;
  const eta = rate > 0 ? (l.totalBytes - sent) / rate : Infinity;
  const fraction = l.totalBytes > 0 ? sent / l.totalBytes : 1;
  const stats = `${String(Math.floor(fraction * 100)).padStart(3)}% ${formatBytes(sent)}/${formatBytes(l.totalBytes)} ${formatBytes(rate)}/s ETA ${formatDuration(eta)}`;
  const head = l.label.padEnd(18).slice(0, 18);
  const room = width - head.length - stats.length - 26;
  const file = (l.file ?? l.status).slice(-Math.max(8, room)).padEnd(Math.max(8, room));
  return `${head} ${bar(fraction, 20)} ${file} ${stats}`.slice(0, width - 1);
}

/** A finish that adds nothing to the plan line already shown: up to date, or a dry run. */
function quietFinish(r: TargetReport): boolean {
  return r.outcome === "done" && (r.dryRun || r.planned === 0);
}

function planLine(actions: readonly Action[], bytes: number): string {
  const n = actions.filter((a) => a.type !== "skip").length;
  const left = actions.length - n;
  const plan = n === 0 ? "up to date" : `${n} to do, ${formatBytes(bytes)} to send`;
  return left > 0 ? `${plan}, ${left} left alone` : plan;
}

export function finishLine(r: TargetReport): string {
  const who = `${r.sync} → ${r.target}`;
  switch (r.outcome) {
    case "skipped":
      return `${who}: skipped, ${oneLine(r.reason ?? "not idle")}`;
    case "unreachable":
      return `${who}: UNREACHABLE, ${oneLine(r.reason ?? "no answer")}${r.done > 0 ? ` (${r.done} done before)` : ""}`;
    default: {
      // "up to date" only when nothing was to do and nothing failed.
      if (r.outcome === "done" && r.planned === 0 && r.failed === 0)
        return `${who}: up to date${r.skipped > 0 ? `, ${r.skipped} left alone` : ""}`;
      if (r.outcome === "failed" && r.planned === 0 && r.failed === 0)
        return `${who}: FAILED, ${oneLine(r.reason ?? "no reason given")}`;
      const parts = [`${r.done}/${r.planned} done`];
      if (r.failed > 0) parts.push(`${r.failed} FAILED`);
      if (r.skipped > 0) parts.push(`${r.skipped} left alone`);
      parts.push(`${formatBytes(r.bytes)} in ${formatDuration(r.seconds)}`);
      if (r.reason !== undefined) parts.push(oneLine(r.reason));
      const errors = r.errors.map((e) => `\n    ${e.path}: ${e.code} ${oneLine(e.message)}`).join("");
      return `${who}: ${r.outcome === "failed" ? "FAILED" : "ok"}, ${parts.join(", ")}${errors}`;
    }
  }
}

/** The final table after a TTY run. */
export function summaryTable(reports: readonly TargetReport[]): string {
  const rows = [["sync", "target", "result", "planned", "done", "failed", "skipped", "sent", "time", "why"]];
  for (const r of reports) {
    rows.push([
      r.sync,
      r.target,
      r.outcome + (r.state ? ` (${r.state})` : ""),
      String(r.planned),
      String(r.done),
      String(r.failed),
      String(r.skipped),
      formatBytes(r.bytes),
      formatDuration(r.seconds),
      oneLine(r.reason ?? r.errors[0]?.message ?? "", 60),
    ]);
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? "").length))) ?? [];
  return rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** The machine-readable summary of --json: no plan details beyond counts, never a secret. */
export function jsonSummary(reports: readonly TargetReport[]) {
  return {
    ok: reports.every((r) => r.outcome === "done" || r.outcome === "skipped"),
    targets: reports.map((r) => ({
      sync: r.sync,
      target: r.target,
      outcome: r.outcome,
      dryRun: r.dryRun,
      ...(r.reason === undefined ? {} : { reason: r.reason }),
      ...(r.state === undefined ? {} : { state: r.state }),
      planned: r.planned,
      done: r.done,
      failed: r.failed,
      skipped: r.skipped,
      bytes: r.bytes,
      seconds: Math.round(r.seconds * 1000) / 1000,
      errors: r.errors,
      notes: r.notes,
      actions: r.actions,
    })),
  };
}
