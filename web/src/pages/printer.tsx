/** One printer: its card's facts, the temperature chart, job history, files on it, its event log. */
import { useQuery } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { Link, useParams } from "react-router";
import { api, ok, type Role } from "../api/client.ts";
import type { Envelope } from "../api/events-types.ts";
import { ErrorNote } from "../components/error-note.tsx";
import { TemperatureChart } from "../components/temperature-chart.tsx";
import { bytes, percent, time, words } from "../format.ts";
import { printerStatus } from "./farm.tsx";
import { usePrinters } from "./farm-queries.ts";

export default function PrinterPage({ role }: { role: Role }) {
  const { name = "" } = useParams();
  const printers = usePrinters();
  const printer = printers.data?.find((p) => p.name === name);
  if (printers.isPending) return <p role="status">Loading…</p>;
  if (!printer)
    return (
      <p role="alert">
        There is no farm printer {name}. <Link to="/">Back to the farm</Link>
      </p>
    );
  return (
    <section aria-labelledby="printer-title" data-role={role}>
      <div className="page-head">
        <h1 id="printer-title">{printer.name}</h1>
        <p className={`summary status-${printerStatus(printer)}`}>
          {printer.model ?? printer.type} · {printer.connection ?? "not seen yet"} · {printer.activity ?? "–"}
          {printer.rawState ? ` (${printer.rawState})` : ""}
          {printer.job ? ` · ${printer.job.file.name} ${percent(printer.job.progress)}` : ""}
        </p>
      </div>
      {printer.lastError && <p className="error">{printer.lastError}</p>}
      <TemperatureChart printer={printer.name} />
      <div className="columns">
        <JobHistory printer={printer.name} />
        <PrinterFiles printer={printer.name} />
      </div>
      <EventLog printer={printer.name} />
    </section>
  );
}

function JobHistory({ printer }: { printer: string }) {
  const jobs = useQuery({
    queryKey: ["jobs", "printer", printer],
    queryFn: () => ok(api.GET("/api/v1/jobs", { params: { query: { printer, limit: 50 } } })),
  });
  return (
    <section aria-labelledby="history-title">
      <h2 id="history-title">Jobs</h2>
      <ErrorNote error={jobs.error} />
      {jobs.data?.length === 0 && <p className="none">No jobs yet.</p>}
      <ul className="plain">
        {jobs.data?.map((j) => (
          <li key={j.id}>
            {j.file.name} · {words(j.state)} · {j.owner ?? "at the printer"} ·{" "}
            {time(j.finishedAt ?? j.startedAt ?? j.createdAt)}
          </li>
        ))}
      </ul>
    </section>
  );
}

function PrinterFiles({ printer }: { printer: string }) {
  const [dir, setDir] = useState("");
  const files = useQuery({
    queryKey: ["printer-files", printer, dir],
    queryFn: () =>
      ok(api.GET("/api/v1/printers/{name}/files", { params: { path: { name: printer }, query: { dir } } })),
  });
  return (
    <section aria-labelledby="pfiles-title">
      <h2 id="pfiles-title">Files on the printer {dir && <small>/{dir}</small>}</h2>
      <ErrorNote error={files.error} />
      {dir && (
        <button type="button" onClick={() => setDir(dir.split("/").slice(0, -1).join("/"))}>
          Up
        </button>
      )}
      <ul className="plain">
        {files.data?.map((f) => (
          <li key={f.path}>
            {f.type === "dir" ? (
              <button type="button" className="link" onClick={() => setDir(f.path)}>
                {f.path.split("/").at(-1)}/
              </button>
            ) : (
              <>
                {f.path.split("/").at(-1)} <small>{bytes(f.size)}</small>
              </>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}

/** The printer's events: the recorded ones first (the stream's history), then live. */
function EventLog({ printer }: { printer: string }) {
  const [events, setEvents] = useState<Envelope[]>([]);
  useEffect(() => {
    const source = new EventSource(`/api/v1/events?device=${encodeURIComponent(printer)}&last_event_id=0`);
    const add = (message: MessageEvent<string>) => {
      const event = JSON.parse(message.data) as Envelope;
      if (event.type === "printer.temperatures" || event.type === "job.progress") return;
      setEvents((list) => [event, ...list].slice(0, 200));
    };
    for (const type of [
      "printer.state",
      "printer.error",
      "printer.bed",
      "printer.maintenance",
      "printer.waiting_bed_clear",
      "job.state",
      "device.state",
    ])
      source.addEventListener(type, add);
    return () => source.close();
  }, [printer]);
  return (
    <section aria-labelledby="log-title">
      <h2 id="log-title">Events</h2>
      {events.length === 0 && <p className="none">No events yet.</p>}
      <ol className="log">
        {events.map((e) => (
          <li key={e.id}>
            <time dateTime={new Date(e.at).toISOString()}>{new Date(e.at).toLocaleString()}</time>{" "}
            <strong>{e.type}</strong> {describe(e)}
          </li>
        ))}
      </ol>
    </section>
  );
}

function describe(e: Envelope): string {
  switch (e.type) {
    case "printer.state": {
      const p = (e as Envelope<"printer.state">).payload;
      return `${p.connection}, ${p.activity}${p.rawState ? ` (${p.rawState})` : ""}`;
    }
    case "printer.error": {
      const p = (e as Envelope<"printer.error">).payload;
      return `${p.problem}: ${p.message}`;
    }
    case "job.state": {
      const p = (e as Envelope<"job.state">).payload;
      return `${p.file}: ${words(p.from ?? "new")} → ${words(p.to)} by ${p.actor}`;
    }
    case "printer.bed": {
      const p = (e as Envelope<"printer.bed">).payload;
      return `${p.clear ? "clear" : "taken"} (${p.by})`;
    }
    case "printer.maintenance": {
      const p = (e as Envelope<"printer.maintenance">).payload;
      return p.reason ? `began: ${p.reason} (${p.by})` : `ended (${p.by})`;
    }
    case "printer.waiting_bed_clear": {
      const p = (e as Envelope<"printer.waiting_bed_clear">).payload;
      return `${p.file} is done: the bed waits to be cleared`;
    }
    default:
      return "";
  }
}
