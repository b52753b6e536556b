/** `ferry status` and `ferry tasks`: what the store says about devices, queues and failures. */
import { formatBytes, formatDuration } from "../core/units.ts";
import type { Task } from "../tasks/queue.ts";
import { describeSyncTask as describeTask } from "../sync/engine/handlers.ts";
import { openConfiguredStore } from "./store-open.ts";
import { loadOrExit } from "./sync-command.ts";
import { EXIT, UsageError } from "./exit.ts";

function ago(ms: number): string {
  return `${formatDuration(Math.max(0, Date.now() - ms) / 1000)} ago`;
}

function taskLine(task: Task): Record<string, unknown> {
  const ref = describeTask(task);
  const size = (task.payload as { size?: number }).size;
  return {
    id: task.id,
    sync: ref.sync,
    target: ref.target,
    what: ref.what,
    status: task.status,
    attempts: task.attempts,
    ...(task.progress === null ? {} : { bytes: task.progress }),
    ...(typeof size === "number" ? { size } : {}),
    ...(task.lastError === null ? {} : { lastError: task.lastError }),
    updatedAt: new Date(task.updatedAt).toISOString(),
  };
}

export async function statusCommand(options: { config?: string; json?: boolean }): Promise<number> {
  const config = await loadOrExit(options.config);
  if (typeof config === "number") return config;
  const opened = await openConfiguredStore(config);
  try {
    const known = new Map((await opened.deviceStates.all()).map((d) => [d.name, d]));
    const devices = [...new Set([...config.devices.keys(), ...known.keys()])].map((name) => {
      const d = known.get(name);
      return d
        ? { name, state: d.state, since: d.since, detail: d.detail }
        : { name, state: "unknown" as const };
    });
    const counts = await opened.queue.counts();
    const running = await opened.queue.list({ status: "running", limit: 50 });
    const dead = await opened.queue.list({ status: "dead", limit: 20 });
    const held = (await opened.queue.list({ status: "queued", limit: 500 })).filter(
      (t) => t.lastError !== null,
    );
    // A parked task (a printer printing, a device away) spent no attempt: it waits, it did not fail.
    const retrying = held.filter((t) => t.attempts > 0).slice(0, 20);
    const waiting = held.filter((t) => t.attempts === 0).slice(0, 20);
    const unknown = devices.filter((d) => d.state === "unknown").length;
    const hint =
      unknown > 0
        ? "device states come from a running `ferry serve` (its connection checker); none has recorded " +
          (unknown === devices.length ? "any here yet" : `${unknown} of these yet`)
        : undefined;
    if (options.json) {
      process.stdout.write(
        JSON.stringify(
          {
            devices,
            counts,
            inFlight: running.map(taskLine),
            waiting: waiting.map(taskLine),
            failures: [...retrying, ...dead].map(taskLine),
            ...(hint === undefined ? {} : { hint }),
          },
          null,
          2,
        ) + "\n",
      );
      return EXIT.ok;
    }
    const out: string[] = ["Devices:"];
    for (const d of devices) {
      out.push(
        `  ${d.name.padEnd(16)} ${d.state.padEnd(9)} ${"since" in d ? `since ${ago(d.since)}` : ""}${"detail" in d && d.detail ? `  ${d.detail}` : ""}`,
      );
    }
    if (hint !== undefined) out.push(`  (${hint})`);
    out.push(
      `Queue: ${counts.queued} queued, ${counts.running} running, ${counts.done} done, ${counts.dead} dead`,
    );
    if (running.length > 0) out.push("In flight:");
    for (const t of running) {
      const ref = describeTask(t);
      const size = (t.payload as { size?: number }).size;
      const pct =
        typeof size === "number" && size > 0 && t.progress !== null
          ? ` ${Math.floor((t.progress / size) * 100)}% of ${formatBytes(size)}`
          : "";
      out.push(`  ${ref.sync} → ${ref.target}: ${ref.what}${pct}`);
    }
    if (waiting.length > 0) out.push("Waiting:");
    for (const t of waiting) {
      const ref = describeTask(t);
      out.push(`  ${ref.sync} → ${ref.target}: ${ref.what}: ${t.lastError ?? ""}`);
    }
    if (retrying.length + dead.length > 0) out.push("Recent failures:");
    for (const t of [...retrying, ...dead]) {
      const ref = describeTask(t);
      out.push(
        `  [${t.status === "dead" ? "dead" : "retrying"}] ${t.id} ${ref.sync} → ${ref.target}: ${ref.what}: ${t.lastError ?? ""} (${ago(t.updatedAt)})`,
      );
    }
    process.stdout.write(out.join("\n") + "\n");
    return EXIT.ok;
  } finally {
    await opened.close();
  }
}

export async function tasksCommand(
  action: string | undefined,
  ids: string[],
  options: { config?: string; json?: boolean; all?: boolean },
): Promise<number> {
  const config = await loadOrExit(options.config);
  if (typeof config === "number") return config;
  const opened = await openConfiguredStore(config);
  try {
    if (action === undefined || action === "list") {
      const dead = await opened.queue.list({ status: "dead", limit: 1000 });
      if (options.json) process.stdout.write(JSON.stringify(dead.map(taskLine), null, 2) + "\n");
      else if (dead.length === 0) process.stdout.write("no dead tasks\n");
      else
        for (const t of dead)
          process.stdout.write(
            `${t.id}  ${describeTask(t).sync} → ${describeTask(t).target}: ${describeTask(t).what}: ${t.lastError ?? ""}\n`,
          );
      return EXIT.ok;
    }
    if (action !== "retry")
      throw new UsageError(`unknown tasks action "${action}"; use: ferry tasks [retry ID...|--all]`);
    if (!options.all && ids.length === 0) throw new UsageError("ferry tasks retry needs task ids or --all");
    if (options.all) {
      process.stdout.write(`${await opened.queue.retry("all-dead")} task(s) queued again\n`);
      return EXIT.ok;
    }
    const unknown: string[] = [];
    const dead: string[] = [];
    for (const id of new Set(ids)) {
      const task = await opened.queue.get(id);
      if (task === undefined) unknown.push(id);
      else if (task.status === "dead") dead.push(id);
      else process.stderr.write(`ferry: task ${id} is ${task.status}, not dead: left as it is\n`);
    }
    if (unknown.length > 0)
      process.stderr.write(
        `ferry: unknown task id(s): ${unknown.join(", ")} (\`ferry tasks\` lists the dead ones)\n`,
      );
    const n = dead.length === 0 ? 0 : await opened.queue.retry(dead);
    process.stdout.write(`${n} task(s) queued again\n`);
    if (n < dead.length)
      // The queue keeps a dead task dead when a newer task for the same change is already queued.
      process.stdout.write(`${dead.length - n} stay dead: a newer task for the same file is queued\n`);
    return unknown.length > 0 ? EXIT.failed : EXIT.ok;
  } finally {
    await opened.close();
  }
}
