/**
 * The scheduler, a pure function: queued jobs and the printers' states in, assignments and a
 * reason for every job left waiting out. A job goes to a farm printer that is online, idle (or
 * showing its last print finished or stopped), holds no job, has a bed known to be clear, is not
 * in maintenance, and has the model and every tag the job asks for; jobs by priority, then age.
 * At most `maxHeating` printers heat at once (a start draws the most power): starts beyond that
 * wait their turn, so they are staggered.
 */
import type { Activity } from "../printers/driver.ts";
import type { JobState } from "./states.ts";

export interface SchedulerPrinter {
  name: string;
  model: string | null;
  tags: readonly string[];
  online: boolean;
  /** What the printer is doing; null before it was first seen. */
  activity: Activity | null;
  /** The state of the job holding it, if any. */
  job: JobState | null;
  bedClear: boolean;
  /** Why it is in maintenance, or null. */
  maintenance: string | null;
  /** A heater is still far below its target. */
  heating: boolean;
  /** Another node drives it (and schedules onto it), if so. */
  drivenBy?: string;
}

export interface SchedulerJob {
  id: string;
  priority: number;
  createdAt: number;
  model: string | null;
  tags: readonly string[];
}

/**
 * Why a job waits: `reason` in full, and its `cause`, the reason without the printers' details
 * (`no idle MK4 printer`, not which printers are busy). The details change whenever one of a
 * thousand printers does, for every job of a kind at once; the cause changes with what the job
 * waits for. Jobs of one kind share one Waiting.
 */
export interface Waiting {
  reason: string;
  cause: string;
}

export interface Schedule {
  assignments: { job: string; printer: string }[];
  /** Why each job that got no printer still waits. */
  waiting: Map<string, Waiting>;
}

/** Activities in which a printer can take a new print (its bed permitting). */
const READY: readonly Activity[] = ["idle", "finished", "stopped"];
/** A job in these states is about to heat its printer. */
const STARTING: readonly JobState[] = ["scheduled", "uploading"];
/** Printers named in a reason, at most. */
const NAMED = 5;

const key = (tag: string) => tag.trim().toLowerCase();

/** Why a printer cannot take a job now, or undefined when it can. */
export function notReady(printer: SchedulerPrinter): string | undefined {
  if (printer.drivenBy !== undefined) return `driven by ${printer.drivenBy}`;
  if (printer.activity === null) return "not seen yet";
  if (!printer.online) return "offline";
  if (printer.maintenance !== null) return `in maintenance (${printer.maintenance})`;
  if (printer.job !== null) return `has a job (${printer.job.replace("_", " ")})`;
  if (!READY.includes(printer.activity)) return printer.activity;
  if (!printer.bedClear) return "bed not marked clear";
  return undefined;
}

function fits(job: SchedulerJob, printer: SchedulerPrinter): boolean {
  if (job.model !== null && key(printer.model ?? "") !== key(job.model)) return false;
  const has = new Set(printer.tags.map(key));
  return job.tags.every((tag) => has.has(key(tag)));
}

/** "MK4 printer with tags PETG, 0.6mm", "printer with tag PLA", "printer". */
function wanted(job: SchedulerJob): string {
  const model = job.model === null ? "" : `${job.model} `;
  const tags =
    job.tags.length === 0 ? "" : ` with tag${job.tags.length === 1 ? "" : "s"} ${job.tags.join(", ")}`;
  return `${model}printer${tags}`;
}

/** The printers a kind of job fits, the free ones among them (as of `at` assignments), and why none is. */
interface Kind {
  matching: SchedulerPrinter[];
  ready: SchedulerPrinter[];
  at: number;
  why?: Waiting;
}

export function schedule(
  jobs: readonly SchedulerJob[],
  printers: readonly SchedulerPrinter[],
  options: { maxHeating: number },
): Schedule {
  const order = [...jobs].sort(
    (a, b) => b.priority - a.priority || a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1),
  );
  const byName = [...printers].sort((a, b) => (a.name < b.name ? -1 : 1));
  const free = new Set(byName.filter((p) => notReady(p) === undefined).map((p) => p.name));
  let heating = printers.filter((p) => p.heating || (p.job !== null && STARTING.includes(p.job))).length;
  const assignments: Schedule["assignments"] = [];
  const waiting = new Map<string, Waiting>();
  /** The reason of the jobs that wait for their turn to heat, while `heating` stays the same. */
  let turn: Waiting | undefined;
  // Jobs that ask for the same model and tags see the same printers: those, the free ones among
  // them and why none is free are worked out once per kind of job (again only after an assignment),
  // so a long queue costs a lookup per job, not a walk over every printer. The queue's jobs of one
  // kind share their tags list (Jobs.queued), so a kind is found by that list, then the model, with
  // no key built per job; lists that only look alike make kinds of their own, with the same answers.
  const kinds = new Map<readonly string[], Map<string | null, Kind>>();
  let assigned = 0;

  for (const job of order) {
    let byModel = kinds.get(job.tags);
    if (!byModel) kinds.set(job.tags, (byModel = new Map<string | null, Kind>()));
    let kind = byModel.get(job.model);
    if (!kind) {
      const matching = byName.filter((p) => fits(job, p));
      kind = { matching, ready: matching.filter((p) => free.has(p.name)), at: assigned };
      byModel.set(job.model, kind);
    } else if (kind.at !== assigned) {
      kind.ready = kind.matching.filter((p) => free.has(p.name));
      kind.at = assigned;
      delete kind.why;
    }
    if (kind.ready.length === 0) {
      kind.why ??= explain(job, byName, kind.matching);
      waiting.set(job.id, kind.why);
      continue;
    }
    if (heating >= options.maxHeating) {
      turn ??= {
        reason: `waiting for its turn to start: ${heating} printer${heating === 1 ? " is" : "s are"} heating (max_heating ${options.maxHeating})`,
        cause: "waiting for its turn to start",
      };
      waiting.set(job.id, turn);
      continue;
    }
    // The printer with the fewest tags beyond the job's: versatile printers stay free for jobs that need them.
    const [chosen] = [...kind.ready].sort((a, b) => a.tags.length - b.tags.length);
    if (!chosen) continue;
    free.delete(chosen.name);
    heating++;
    turn = undefined;
    assigned++;
    assignments.push({ job: job.id, printer: chosen.name });
  }
  return { assignments, waiting };
}

function explain(
  job: SchedulerJob,
  printers: readonly SchedulerPrinter[],
  matching: readonly SchedulerPrinter[],
): Waiting {
  const only = (reason: string) => ({ reason, cause: reason });
  if (printers.length === 0) return only("no printer is in the farm");
  if (matching.length === 0) return only(`no ${wanted(job)} in the farm`);
  const reasons = matching.map((p) => `${p.name} ${notReady(p) ?? "went to a job ahead of it"}`);
  const named = reasons.slice(0, NAMED).join(", ");
  const more = reasons.length > NAMED ? `, and ${reasons.length - NAMED} more` : "";
  const cause = `no idle ${wanted(job)}`;
  return { reason: `${cause}: ${named}${more}`, cause };
}
