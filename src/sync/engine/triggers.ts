/**
 * What makes a sync plan again: live filesystem events of a watched local source (turned straight
 * into tasks, coalesced), a periodic rescan so nothing missed by the watcher is lost, `poll:` and
 * `schedule:` (cron). Each trigger runs until the engine stops.
 */
import { Cron } from "croner";
import { systemClock, type Clock } from "../../core/clock.ts";
import type { SyncConfig } from "../../config/index.ts";
import { isFerryError, toFerryError } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { fileFilter } from "../filters.ts";
import { watchFolder, type WatchChange } from "../watch.ts";
import type { EngineContext } from "./context.ts";
import { enqueueFileTask, enqueueSourceTask } from "./enqueue.ts";
import { STAGE_TASK, type FilePayload } from "./payloads.ts";

export interface Scanner {
  scan(sync: string, reason: string): void;
  notify(): void;
  readonly context: EngineContext;
}

export async function startTriggers(
  syncs: readonly SyncConfig[],
  engine: Scanner,
  logger: Logger,
  signal: AbortSignal,
  clock: Clock = systemClock,
): Promise<void> {
  const every = (seconds: number, fn: () => void) => repeat(clock, seconds, fn, signal);
  const running: Promise<void>[] = [];
  for (const sync of syncs) {
    if (sync.watch) {
      if (sync.source.type === "local") {
        running.push(watch(sync, engine, logger, signal));
      } else {
        logger.warn(
          { sync: sync.name },
          `sync ${sync.name}: watch needs a local folder as source; rescanning every ${sync.rescanS}s instead`,
        );
      }
      running.push(every(sync.rescanS, () => engine.scan(sync.name, "rescan")));
    }
    if (sync.pollS !== undefined) running.push(every(sync.pollS, () => engine.scan(sync.name, "poll")));
    if (sync.schedule !== undefined) {
      const job = new Cron(sync.schedule, () => engine.scan(sync.name, "schedule"));
      signal.addEventListener("abort", () => job.stop(), { once: true });
    }
  }
  await Promise.allSettled(running);
}

async function repeat(clock: Clock, seconds: number, fn: () => void, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    try {
      await clock.sleep(seconds * 1000, signal);
    } catch {
      return;
    }
    fn();
  }
}

async function watch(sync: SyncConfig, engine: Scanner, logger: Logger, signal: AbortSignal): Promise<void> {
  if (sync.source.type !== "local") return;
  const filter = fileFilter(sync.include, sync.exclude);
  try {
    for await (const batch of watchFolder(sync.source.path, {
      filter,
      signal,
      onError: (error) => logger.warn({ sync: sync.name, err: toFerryError(error).message }, "watcher error"),
    })) {
      let queued = 0;
      for (const change of batch) {
        try {
          queued += await enqueueChange(sync, change, engine.context);
        } catch (error) {
          logger.warn(
            { sync: sync.name, path: change.path, err: toFerryError(error).message },
            "could not queue a change; the next rescan will",
          );
        }
      }
      if (queued > 0) engine.notify();
    }
  } catch (error) {
    if (signal.aborted) return;
    logger.error(
      { sync: sync.name, err: toFerryError(error).message },
      `sync ${sync.name}: watching stopped; rescans go on`,
    );
  }
}

/** One filesystem change → the tasks it calls for on every target. Returns how many were queued. */
export async function enqueueChange(
  sync: SyncConfig,
  change: WatchChange,
  ctx: EngineContext,
): Promise<number> {
  let queued = 0;
  const put = async (target: SyncConfig["targets"][number], payload: FilePayload) => {
    if (await enqueueFileTask(ctx, target, payload)) queued++;
  };
  const selected = ctx.filter(sync);
  const sourceFile = async (path: string) => {
    const entry = await ctx
      .adapter(sync.source)
      .stat(path)
      .catch((error: unknown) => {
        if (isFerryError(error, "NOT_FOUND")) return undefined;
        throw error;
      });
    if (entry?.type !== "file" || entry.size === undefined) return undefined;
    return { path, size: entry.size, ...(entry.modTime === undefined ? {} : { modTime: entry.modTime }) };
  };
  const send = async (
    file: { path: string; size: number; modTime?: number },
    targets: SyncConfig["targets"],
  ) => {
    if (sync.staging) {
      // Staging reads the file once and then queues the uploads to every target.
      await enqueueSourceTask(ctx, STAGE_TASK, sync, file);
      queued++;
      return;
    }
    for (const target of targets) {
      await put(target, {
        op: "upload",
        sync: sync.name,
        target: target.label,
        targetPath: file.path,
        ...file,
      });
    }
  };

  // A rename across the filter's edge is a deletion (into what the sync leaves out) or a new file (out of it).
  if (change.type === "move" && !selected(change.path)) change = { type: "delete", path: change.from };
  else if (change.type === "move" && !selected(change.from)) change = { type: "upsert", path: change.path };
  if (change.type !== "move" && !selected(change.path)) return 0;
  switch (change.type) {
    case "upsert": {
      const file = await sourceFile(change.path);
      if (file) await send(file, sync.targets);
      break;
    }
    case "delete":
      if (sync.mode === "mirror") {
        for (const target of sync.targets)
          await put(target, {
            op: "delete",
            sync: sync.name,
            target: target.label,
            path: change.path,
          });
      }
      break;
    case "move": {
      const from = change.from;
      const resend: SyncConfig["targets"] = [];
      for (const target of sync.targets) {
        const canMove =
          sync.mode === "mirror" &&
          !sync.staging &&
          ctx.adapter(target).capabilities.serverSideMove &&
          (await ctx.records(sync.name, target.label)).get(ctx.recordKey(target, from)) !== undefined;
        if (canMove) {
          await put(target, {
            op: "move",
            sync: sync.name,
            target: target.label,
            from,
            to: change.path,
          });
          continue;
        }
        if (sync.mode === "mirror") {
          await put(target, { op: "delete", sync: sync.name, target: target.label, path: from });
        }
        resend.push(target);
      }
      const file = resend.length > 0 ? await sourceFile(change.path) : undefined;
      if (file) await send(file, resend);
      break;
    }
  }
  return queued;
}
