/**
 * Jobs: the queue by state; submit a print (drop or pick a file, upload with progress, or take one
 * from the library; quantity, priority, tags); approve, reject, cancel, reprioritize; why a job
 * waits; a job's history. A user account sees only its own jobs (the server decides).
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type DragEvent, type SyntheticEvent } from "react";
import { api, ok, uploadFile, type Job, type JobState, type Me } from "../api/client.ts";
import { allows } from "../roles.ts";
import { useConfirm } from "../components/confirm.tsx";
import { ErrorNote } from "../components/error-note.tsx";
import { Progress } from "../components/progress.tsx";
import { duration, percent, time, words } from "../format.ts";
import { useFiles } from "./farm-queries.ts";

const SECTIONS: { title: string; states: JobState[] }[] = [
  { title: "Waiting for approval", states: ["pending_approval"] },
  { title: "Queued", states: ["queued"] },
  { title: "On printers", states: ["scheduled", "uploading", "printing", "paused", "cancelling"] },
  { title: "Printed, waiting for the bed to be cleared", states: ["printed"] },
  { title: "Finished", states: ["completed", "cancelled", "failed"] },
];

export default function Jobs({ me }: { me: Me }) {
  const jobs = useQuery({
    queryKey: ["jobs", "all"],
    queryFn: () => ok(api.GET("/api/v1/jobs", { params: { query: { limit: 500 } } })),
  });
  return (
    <section aria-labelledby="jobs-title">
      <div className="page-head">
        <h1 id="jobs-title">Jobs</h1>
        {!allows(me.role, "operator") && <p className="summary">Your jobs</p>}
      </div>
      {allows(me.role, "user") && <Submit me={me} />}
      <ErrorNote error={jobs.error} />
      {SECTIONS.map((section) => {
        const list = (jobs.data ?? []).filter((j) => section.states.includes(j.state));
        return (
          <section key={section.title} aria-label={section.title} className="job-section">
            <h2>
              {section.title} <small>({list.length})</small>
            </h2>
            {list.length === 0 ? (
              <p className="none">None</p>
            ) : (
              <ul className="jobs">
                {list.map((job) => (
                  <JobRow key={job.id} job={job} me={me} />
                ))}
              </ul>
            )}
          </section>
        );
      })}
    </section>
  );
}

function Submit({ me }: { me: Me }) {
  const client = useQueryClient();
  const files = useFiles();
  const [picked, setPicked] = useState("");
  const [dropped, setDropped] = useState<File | null>(null);
  const [uploaded, setUploaded] = useState<number | null>(null);
  const [quantity, setQuantity] = useState(1);
  const [priority, setPriority] = useState(0);
  const [tags, setTags] = useState("");
  const [dragging, setDragging] = useState(false);
  const submit = useMutation({
    mutationFn: async () => {
      let fileId = picked;
      if (dropped) {
        setUploaded(0);
        const answer = await uploadFile(dropped, setUploaded);
        fileId = answer.file.id;
        void client.invalidateQueries({ queryKey: ["files"] });
      }
      if (!fileId) throw new Error("choose a file to print: drop one here, or pick one from the library");
      const tagList = tags
        .split(",")
        .map((t) => t.trim())
        .filter((t) => t !== "");
      return ok(
        api.POST("/api/v1/jobs", {
          body: {
            fileId,
            quantity,
            ...(allows(me.role, "operator") && priority !== 0 ? { priority } : {}),
            ...(tagList.length > 0 ? { tags: tagList } : {}),
          },
        }),
      );
    },
    onSuccess: () => {
      setDropped(null);
      setUploaded(null);
      void client.invalidateQueries({ queryKey: ["jobs"] });
    },
  });
  const onDrop = (event: DragEvent) => {
    event.preventDefault();
    setDragging(false);
    const file = event.dataTransfer.files[0];
    if (file) setDropped(file);
  };
  const onSubmit = (event: SyntheticEvent) => {
    event.preventDefault();
    submit.mutate();
  };
  return (
    <form className="submit" onSubmit={onSubmit} aria-labelledby="submit-title">
      <h2 id="submit-title">Submit a print</h2>
      <div
        className={`drop ${dragging ? "over" : ""}`}
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={onDrop}
      >
        <label>
          Upload a file (.gcode, .bgcode, .3mf), or drop it here
          <input
            type="file"
            name="file"
            accept=".gcode,.gco,.gc,.g,.bgcode,.bgc,.3mf"
            onChange={(e) => setDropped(e.target.files?.[0] ?? null)}
          />
        </label>
        {dropped && <p>{dropped.name}</p>}
        {uploaded !== null && <Progress value={uploaded} label="Upload" />}
      </div>
      <label>
        or print a file of the library
        <select value={picked} onChange={(e) => setPicked(e.target.value)} disabled={dropped !== null}>
          <option value="">–</option>
          {files.data?.files.map((f) => (
            <option key={f.id} value={f.id}>
              {f.name}
            </option>
          ))}
        </select>
      </label>
      <label>
        Copies
        <input
          type="number"
          min={1}
          max={1000}
          value={quantity}
          onChange={(e) => setQuantity(Number(e.target.value))}
        />
      </label>
      {allows(me.role, "operator") && (
        <label>
          Priority
          <input
            type="number"
            min={-1000}
            max={1000}
            value={priority}
            onChange={(e) => setPriority(Number(e.target.value))}
          />
        </label>
      )}
      <label>
        Printer tags (comma-separated)
        <input value={tags} onChange={(e) => setTags(e.target.value)} placeholder="PETG, 0.6" />
      </label>
      <button type="submit" disabled={submit.isPending}>
        {submit.isPending ? "Submitting…" : "Submit"}
      </button>
      <ErrorNote error={submit.error} />
      {submit.data && (
        <p role="status">
          Submitted {submit.data.jobs.length} job{submit.data.jobs.length === 1 ? "" : "s"} (
          {words(submit.data.jobs[0]?.state ?? "")})
        </p>
      )}
    </form>
  );
}

function JobRow({ job, me }: { job: Job; me: Me }) {
  const confirm = useConfirm();
  const [open, setOpen] = useState(false);
  const operator = allows(me.role, "operator");
  const own = job.owner === me.user.name;
  const id = { path: { id: job.id } };
  const act = useMutation({ mutationFn: (action: () => Promise<unknown>) => action() });
  const live = !["completed", "cancelled", "failed", "cancelling"].includes(job.state);
  return (
    <li className={`job-row state-${job.state}`} data-job={job.id} data-state={job.state}>
      <div className="job-main">
        <span className="file">{job.file.name}</span>
        <span className="state">{words(job.state)}</span>
        <span>{job.owner ?? "started at the printer"}</span>
        <span>{job.printer ?? "no printer yet"}</span>
        <span>priority {job.priority}</span>
        {job.tags.length > 0 && <span>tags {job.tags.join(", ")}</span>}
        {(job.state === "printing" || job.state === "paused") && (
          <span className="progress-text">
            {percent(job.progress)}, {duration(job.remainingS)} left
          </span>
        )}
      </div>
      {(job.state === "printing" || job.state === "paused") && (
        <Progress value={job.progress} label={`${job.file.name} progress`} />
      )}
      {job.waiting && <p className="waiting">Waits: {job.waiting}</p>}
      {job.reason && !job.waiting && <p className="reason">{job.reason}</p>}
      <div className="job-actions">
        {operator && job.state === "pending_approval" && (
          <>
            <button
              type="button"
              onClick={() => act.mutate(() => ok(api.POST("/api/v1/jobs/{id}/approve", { params: id })))}
            >
              Approve
            </button>
            <button
              type="button"
              className="danger"
              onClick={() =>
                void confirm({
                  title: `Reject ${job.file.name}?`,
                  action: "Reject",
                  input: { label: "Reason (shown to its owner)" },
                }).then((reason) => {
                  if (reason !== false)
                    act.mutate(() =>
                      ok(
                        api.POST("/api/v1/jobs/{id}/reject", {
                          params: id,
                          body: typeof reason === "string" && reason !== "" ? { reason } : {},
                        }),
                      ),
                    );
                })
              }
            >
              Reject
            </button>
          </>
        )}
        {operator && (job.state === "pending_approval" || job.state === "queued") && (
          <label className="inline">
            Priority
            <input
              type="number"
              defaultValue={job.priority}
              min={-1000}
              max={1000}
              onBlur={(e) => {
                const priority = Number(e.target.value);
                if (priority !== job.priority)
                  act.mutate(() =>
                    ok(api.POST("/api/v1/jobs/{id}/priority", { params: id, body: { priority } })),
                  );
              }}
            />
          </label>
        )}
        {live && (operator || own) && job.state !== "printed" && (
          <button
            type="button"
            className="danger"
            onClick={() =>
              void confirm({
                title: `Cancel ${job.file.name}?`,
                ...(job.printer ? { body: `Its print on ${job.printer} stops.` } : {}),
                action: "Cancel job",
              }).then((yes) => {
                if (yes) act.mutate(() => ok(api.POST("/api/v1/jobs/{id}/cancel", { params: id, body: {} })));
              })
            }
          >
            Cancel
          </button>
        )}
        <button type="button" aria-expanded={open} onClick={() => setOpen(!open)}>
          History
        </button>
      </div>
      <ErrorNote error={act.error} />
      {open && <History id={job.id} />}
    </li>
  );
}

function History({ id }: { id: string }) {
  const history = useQuery({
    queryKey: ["job-history", id],
    queryFn: () => ok(api.GET("/api/v1/jobs/{id}/history", { params: { path: { id } } })),
  });
  return (
    <>
      <ErrorNote error={history.error} />
      <ol className="timeline" aria-label="History">
        {history.data?.map((h) => (
          <li key={h.seq}>
            <time dateTime={h.at}>{time(h.at)}</time> <span className="to">{words(h.to)}</span> by {h.actor}
            {h.reason ? ` (${h.reason})` : ""}
          </li>
        ))}
      </ol>
    </>
  );
}
