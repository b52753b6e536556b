/**
 * Transfers: syncs with their state and next run ("sync now", pause, resume), devices online or
 * offline since when, the transfers running now with per-file bars, rate and time left, and recent
 * failures with their reasons (dead tasks can be retried).
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ok, type Role } from "../api/client.ts";
import { allows } from "../roles.ts";
import { ErrorNote } from "../components/error-note.tsx";
import { Progress } from "../components/progress.tsx";
import { bytes, duration, since, time } from "../format.ts";

export default function Transfers({ role }: { role: Role }) {
  const client = useQueryClient();
  const operator = allows(role, "operator");
  const syncs = useQuery({ queryKey: ["syncs"], queryFn: () => ok(api.GET("/api/v1/syncs")) });
  const devices = useQuery({ queryKey: ["devices"], queryFn: () => ok(api.GET("/api/v1/devices")) });
  const transfers = useQuery({ queryKey: ["transfers"], queryFn: () => ok(api.GET("/api/v1/transfers")) });
  const dead = useQuery({
    queryKey: ["tasks", "dead"],
    queryFn: () => ok(api.GET("/api/v1/tasks", { params: { query: { state: "dead", limit: 50 } } })),
  });
  const act = useMutation({
    mutationFn: (action: () => Promise<unknown>) => action(),
    onSuccess: () => client.invalidateQueries({ queryKey: ["syncs"] }),
  });
  return (
    <section aria-labelledby="transfers-title">
      <div className="page-head">
        <h1 id="transfers-title">Transfers</h1>
      </div>
      <ErrorNote error={act.error} />

      <section aria-labelledby="live-title">
        <h2 id="live-title">Now</h2>
        <ErrorNote error={transfers.error} />
        {transfers.data?.length === 0 && <p className="none">Nothing is being sent now.</p>}
        <ul className="transfers" aria-label="Transfers now">
          {transfers.data?.map((t) => (
            <li key={t.id} data-transfer={t.id}>
              <p>
                <strong>{t.path ?? t.what}</strong> → {t.target ?? "–"} {t.sync && <small>({t.sync})</small>}
              </p>
              <Progress value={t.size ? t.bytes / t.size : null} label={`${t.path ?? t.what} sent`} />
              <p className="numbers">
                {bytes(t.bytes)} of {bytes(t.size)} ·{" "}
                {t.bytesPerSecond === null ? "–" : `${bytes(t.bytesPerSecond)}/s`} · {duration(t.secondsLeft)}{" "}
                left
              </p>
            </li>
          ))}
        </ul>
      </section>

      <section aria-labelledby="syncs-title">
        <h2 id="syncs-title">Syncs</h2>
        <ErrorNote error={syncs.error} />
        <table>
          <thead>
            <tr>
              <th scope="col">Sync</th>
              <th scope="col">State</th>
              <th scope="col">Last pass</th>
              <th scope="col">Next</th>
              <th scope="col">Tasks</th>
              {operator && <th scope="col">Actions</th>}
            </tr>
          </thead>
          <tbody>
            {syncs.data?.map((s) => {
              const params = { params: { path: { name: s.name } } };
              return (
                <tr key={s.name}>
                  <th scope="row">
                    {s.name}{" "}
                    <small>
                      {s.mode}: {s.source} → {s.targets.join(", ")}
                    </small>
                  </th>
                  <td>
                    {s.paused ? (
                      `paused by ${s.paused.by ?? "–"}`
                    ) : s.lastError ? (
                      <span className="bad">{s.lastError.error}</span>
                    ) : (
                      "running"
                    )}
                  </td>
                  <td>
                    {s.lastPass
                      ? `${time(s.lastPass.at)} (${s.lastPass.reason}, ${s.lastPass.changes} change${s.lastPass.changes === 1 ? "" : "s"})`
                      : "–"}
                  </td>
                  <td>
                    {s.next.kind}
                    {s.next.at ? ` ${time(s.next.at)}` : ""}
                  </td>
                  <td>
                    {s.tasks.queued} queued, {s.tasks.running} running, {s.tasks.dead} dead
                  </td>
                  {operator && (
                    <td>
                      <button
                        type="button"
                        disabled={s.paused !== null}
                        onClick={() => act.mutate(() => ok(api.POST("/api/v1/syncs/{name}/run", params)))}
                      >
                        Sync now
                      </button>{" "}
                      {s.paused ? (
                        <button
                          type="button"
                          onClick={() =>
                            act.mutate(() => ok(api.POST("/api/v1/syncs/{name}/resume", params)))
                          }
                        >
                          Resume
                        </button>
                      ) : (
                        <button
                          type="button"
                          onClick={() => act.mutate(() => ok(api.POST("/api/v1/syncs/{name}/pause", params)))}
                        >
                          Pause
                        </button>
                      )}
                    </td>
                  )}
                </tr>
              );
            })}
          </tbody>
        </table>
        {syncs.data?.length === 0 && <p className="none">No syncs in ferry.yaml.</p>}
      </section>

      <section aria-labelledby="devices-title">
        <h2 id="devices-title">Devices</h2>
        <ErrorNote error={devices.error} />
        <ul className="devices">
          {devices.data?.map((d) => (
            <li key={d.name} data-device={d.name} className={`device state-${d.state ?? "unknown"}`}>
              <strong>{d.name}</strong> <small>{d.kind}</small>{" "}
              <span className="state">{d.state ?? "not looked at"}</span>
              {d.since && <span> since {since(d.since)}</span>}
              {d.detail && d.state !== "online" && <p className="reason">{d.detail}</p>}
            </li>
          ))}
        </ul>
      </section>

      <section aria-labelledby="failures-title">
        <h2 id="failures-title">Failures</h2>
        <ErrorNote error={dead.error} />
        {dead.data?.length === 0 && <p className="none">No task has given up.</p>}
        <ul className="failures">
          {dead.data?.map((t) => (
            <li key={t.id}>
              <strong>{t.what}</strong> <small>{t.target ?? ""}</small>
              <p className="reason">
                {t.lastError ?? "failed"} (after {t.attempts} attempts, {time(t.updatedAt)})
              </p>
              {operator && (
                <button
                  type="button"
                  onClick={() =>
                    act.mutate(async () => {
                      await ok(api.POST("/api/v1/tasks/{id}/retry", { params: { path: { id: t.id } } }));
                      await client.invalidateQueries({ queryKey: ["tasks"] });
                    })
                  }
                >
                  Retry
                </button>
              )}
            </li>
          ))}
        </ul>
      </section>
    </section>
  );
}
