/**
 * The job state machine (DESIGN.md §5): the states, which of them hold a printer, and the one
 * table of legal transitions. Pure data, shared by the repository, the scheduler and the reconciler.
 *
 *   pending_approval → queued → scheduled → uploading → printing ⇄ paused → printed → completed
 *   plus cancelling → cancelled, and failed, from the live states; a failed job may be queued again.
 */
export const JOB_STATES = [
  "pending_approval",
  "queued",
  "scheduled",
  "uploading",
  "printing",
  "paused",
  "printed",
  "completed",
  "cancelling",
  "cancelled",
  "failed",
] as const;
export type JobState = (typeof JOB_STATES)[number];

/** States in which a job holds its printer (one such job per printer, kept so by the store). */
export const ON_PRINTER: readonly JobState[] = [
  "scheduled",
  "uploading",
  "printing",
  "paused",
  "printed",
  "cancelling",
];

export const FINAL: readonly JobState[] = ["completed", "cancelled", "failed"];

/**
 * Where each state may go. Cancelling is the way out of states where the printer must be stopped
 * (uploading, printing, paused); jobs that hold nothing on a printer are cancelled at once, and a
 * print cancelled at the printer itself is cancelled at once too. Scheduled and uploading may go
 * back to queued: the printer went away, or someone started a print at it, before ours began.
 */
export const TRANSITIONS: Readonly<Record<JobState, readonly JobState[]>> = {
  pending_approval: ["queued", "cancelled"],
  queued: ["scheduled", "cancelled"],
  scheduled: ["uploading", "queued", "cancelled", "failed"],
  uploading: ["printing", "queued", "cancelling", "cancelled", "failed"],
  printing: ["paused", "printed", "cancelling", "cancelled", "failed"],
  // Resumed and finished at the printer while Ferry was not watching.
  paused: ["printing", "printed", "cancelling", "cancelled", "failed"],
  printed: ["completed"],
  cancelling: ["cancelled", "failed"],
  completed: [],
  cancelled: [],
  // An operator re-queues it (Farm.requeue): printed again, from the start, on any printer that fits.
  failed: ["queued"],
};

export function canTransition(from: JobState, to: JobState): boolean {
  return TRANSITIONS[from].includes(to);
}

export function isJobState(value: string): value is JobState {
  return (JOB_STATES as readonly string[]).includes(value);
}
