/**
 * The farm: a card per printer (state colour, temperatures, job with thumbnail, progress and time
 * left, camera, bed and maintenance badges), filters by state and tag, and the operators' actions.
 * Cards are memoized: a live event re-renders only the printer it changed.
 */
import { useMutation } from "@tanstack/react-query";
import { memo, useMemo, useState } from "react";
import { Link } from "react-router";
import { api, ok, type LibraryFile, type Printer, type Role } from "../api/client.ts";
import { allows } from "../roles.ts";
import { useConfirm } from "../components/confirm.tsx";
import { ErrorNote } from "../components/error-note.tsx";
import { Progress } from "../components/progress.tsx";
import { duration, percent, words } from "../format.ts";
import { useFiles, usePrinters } from "./farm-queries.ts";

/** One word for a card's colour and the state filter. */
export function printerStatus(p: Printer): string {
  if (p.connection === null) return "unknown";
  if (p.connection !== "online") return "offline";
  if (p.maintenance) return "maintenance";
  if (p.activity === "error" || p.activity === "attention") return "error";
  if (p.job?.state === "printed" && !p.bedClear) return "bed";
  return p.activity ?? "unknown";
}

const STATUS_WORDS: Record<string, string> = {
  idle: "Idle",
  busy: "Busy",
  printing: "Printing",
  paused: "Paused",
  finished: "Finished",
  stopped: "Stopped",
  error: "Needs attention",
  offline: "Offline",
  maintenance: "Maintenance",
  bed: "Waiting for bed clear",
  unknown: "Not seen yet",
};

export function Farm({ role }: { role: Role }) {
  const printers = usePrinters();
  const files = useFiles();
  const [status, setStatus] = useState("");
  const [tag, setTag] = useState("");
  const all = printers.data;
  const tags = useMemo(() => [...new Set((all ?? []).flatMap((p) => p.tags))].sort(), [all]);
  const shown = (all ?? []).filter(
    (p) => (status === "" || printerStatus(p) === status) && (tag === "" || p.tags.includes(tag)),
  );
  const counts = new Map<string, number>();
  for (const p of all ?? []) counts.set(printerStatus(p), (counts.get(printerStatus(p)) ?? 0) + 1);

  return (
    <section aria-labelledby="farm-title">
      <div className="page-head">
        <h1 id="farm-title">Farm</h1>
        <p className="summary" aria-live="polite">
          {[...counts].map(([s, n]) => `${n} ${(STATUS_WORDS[s] ?? s).toLowerCase()}`).join(" · ")}
        </p>
        <div className="filters">
          <label>
            State
            <select value={status} onChange={(e) => setStatus(e.target.value)}>
              <option value="">all</option>
              {Object.entries(STATUS_WORDS).map(([value, text]) => (
                <option key={value} value={value}>
                  {text}
                </option>
              ))}
            </select>
          </label>
          <label>
            Tag
            <select value={tag} onChange={(e) => setTag(e.target.value)}>
              <option value="">all</option>
              {tags.map((t) => (
                <option key={t} value={t}>
                  {t}
                </option>
              ))}
            </select>
          </label>
        </div>
      </div>
      <ErrorNote error={printers.error} />
      {printers.isPending && <p role="status">Loading printers…</p>}
      {all?.length === 0 && (
        <p>No farm printers yet: add one in ferry.yaml (farm: true) or on the Admin page.</p>
      )}
      <ul className="grid" aria-label="Printers" data-count={shown.length}>
        {shown.map((p) => (
          <PrinterCard
            key={p.name}
            printer={p}
            file={p.job?.file.id ? files.data?.byId.get(p.job.file.id) : undefined}
            operator={allows(role, "operator")}
          />
        ))}
      </ul>
    </section>
  );
}

const PrinterCard = memo(function PrinterCard({
  printer: p,
  file,
  operator,
}: {
  printer: Printer;
  file: LibraryFile | undefined;
  operator: boolean;
}) {
  const status = printerStatus(p);
  const job = p.job;
  const thumbnail = file?.thumbnails.at(-1);
  const failed = status === "offline" || status === "error";
  return (
    <li className={`card status-${status}`} data-printer={p.name} data-status={status}>
      <div className="card-head">
        <h2>
          <Link to={`/printers/${encodeURIComponent(p.name)}`}>{p.name}</Link>
        </h2>
        <span className="state">{STATUS_WORDS[status] ?? status}</span>
      </div>
      <p className="meta">
        {p.model ?? p.type}
        {p.tags.map((t) => (
          <span key={t} className="tag">
            {t}
          </span>
        ))}
      </p>
      <p className="temps" aria-label="Temperatures">
        {p.temperatures.length === 0
          ? "–"
          : p.temperatures.map((t) => (
              <span key={t.name}>
                {t.name} {Math.round(t.actual)}°{t.target ? `/${Math.round(t.target)}°` : ""}
              </span>
            ))}
      </p>
      {(p.maintenance ?? (!p.bedClear || (p.lastError && !failed))) && (
        <p className="badges">
          {p.maintenance && <span className="badge warn">Maintenance: {p.maintenance.reason}</span>}
          {!p.bedClear && <span className="badge">Bed not clear</span>}
          {p.lastError && !failed && <span className="badge bad">{p.lastError}</span>}
        </p>
      )}
      {failed && (
        <p className="reason" role="note">
          {p.offlineReason ?? p.lastError ?? p.rawState ?? p.waiting ?? "no answer"}
        </p>
      )}
      {job ? (
        <div className="job">
          {thumbnail && (
            <img src={thumbnail.url} width={64} height={64} alt="" loading="lazy" decoding="async" />
          )}
          <div>
            <p className="file" title={job.file.name}>
              {job.file.name}
            </p>
            <p className="job-state">
              {words(job.state)} · {percent(job.progress)} · {duration(job.remainingS)} left
            </p>
            <Progress value={job.progress} label={`${p.name} progress`} />
          </div>
        </div>
      ) : (
        !failed && <p className="job none">{p.waiting ?? "No job"}</p>
      )}
      {p.cameraUrl && <img className="camera" src={p.cameraUrl} alt={`${p.name} camera`} loading="lazy" />}
      {operator && <CardActions printer={p} />}
    </li>
  );
});

function CardActions({ printer: p }: { printer: Printer }) {
  const confirm = useConfirm();
  const name = { path: { name: p.name } };
  const act = useMutation({
    mutationFn: async (action: () => Promise<unknown>) => action(),
  });
  const job = p.job;
  const run = (action: () => Promise<unknown>) => act.mutate(action);
  return (
    <div className="card-actions">
      {job?.state === "printing" && (
        <button
          type="button"
          onClick={() => run(() => ok(api.POST("/api/v1/printers/{name}/pause", { params: name })))}
        >
          Pause
        </button>
      )}
      {job?.state === "paused" && (
        <button
          type="button"
          onClick={() => run(() => ok(api.POST("/api/v1/printers/{name}/resume", { params: name })))}
        >
          Resume
        </button>
      )}
      {job && ["scheduled", "uploading", "printing", "paused"].includes(job.state) && (
        <button
          type="button"
          className="danger"
          onClick={() =>
            void confirm({
              title: `Cancel the print on ${p.name}?`,
              body: `${job.file.name} stops and cannot be resumed.`,
              action: "Cancel print",
            }).then((yes) => {
              if (yes) run(() => ok(api.POST("/api/v1/printers/{name}/cancel", { params: name, body: {} })));
            })
          }
        >
          Cancel
        </button>
      )}
      {!p.bedClear && (
        <button
          type="button"
          onClick={() =>
            void confirm({
              title: `Is the bed of ${p.name} clear?`,
              body: "The next print starts on it: take the part off first.",
              action: "Mark bed clear",
            }).then((yes) => {
              if (yes) run(() => ok(api.POST("/api/v1/printers/{name}/bed-clear", { params: name })));
            })
          }
        >
          Mark bed clear
        </button>
      )}
      {p.maintenance ? (
        <button
          type="button"
          onClick={() => run(() => ok(api.DELETE("/api/v1/printers/{name}/maintenance", { params: name })))}
        >
          End maintenance
        </button>
      ) : (
        <button
          type="button"
          onClick={() =>
            void confirm({
              title: `Put ${p.name} in maintenance?`,
              body: "The scheduler gives it no jobs until maintenance ends.",
              action: "Start maintenance",
              input: { label: "Reason", required: true },
            }).then((reason) => {
              if (typeof reason === "string" && reason !== "")
                run(() =>
                  ok(api.PUT("/api/v1/printers/{name}/maintenance", { params: name, body: { reason } })),
                );
            })
          }
        >
          Maintenance
        </button>
      )}
      <ErrorNote error={act.error} />
    </div>
  );
}
