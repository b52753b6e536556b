/** The library: thumbnails and the slicer's metadata (time, filament, material), search, delete. */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api, ok, type Me } from "../api/client.ts";
import { allows } from "../roles.ts";
import { useConfirm } from "../components/confirm.tsx";
import { ErrorNote } from "../components/error-note.tsx";
import { bytes, duration, time } from "../format.ts";
import { useFiles } from "./farm-queries.ts";

export default function Files({ me }: { me: Me }) {
  const files = useFiles();
  const client = useQueryClient();
  const confirm = useConfirm();
  const [search, setSearch] = useState("");
  const remove = useMutation({
    mutationFn: (id: string) => ok(api.DELETE("/api/v1/files/{id}", { params: { path: { id } } })),
    onSuccess: () => client.invalidateQueries({ queryKey: ["files"] }),
  });
  const needle = search.trim().toLowerCase();
  const shown = (files.data?.files ?? []).filter(
    (f) =>
      needle === "" ||
      [f.name, f.metadata?.material, f.metadata?.printerModel, f.uploadedBy]
        .filter((v) => v !== undefined && v !== null)
        .some((v) => v.toLowerCase().includes(needle)),
  );
  return (
    <section aria-labelledby="files-title">
      <div className="page-head">
        <h1 id="files-title">Files</h1>
        <p className="summary">{files.data ? `${files.data.total} in the library` : ""}</p>
        <label>
          Search
          <input
            type="search"
            value={search}
            onChange={(e) => setSearch(e.target.value)}
            placeholder="name, material, model"
          />
        </label>
      </div>
      <ErrorNote error={files.error ?? remove.error} />
      <ul className="files">
        {shown.map((f) => {
          const thumb = f.thumbnails.at(-1);
          const m = f.metadata;
          return (
            <li key={f.id} className="file-card">
              {thumb ? (
                <img src={thumb.url} width={96} height={96} alt="" loading="lazy" />
              ) : (
                <div className="no-thumb" aria-hidden="true" />
              )}
              <div>
                <h2>
                  <a href={f.url} download>
                    {f.name}
                  </a>
                </h2>
                <dl>
                  <dt>Time</dt>
                  <dd>{duration(m?.estimatedTimeS)}</dd>
                  <dt>Filament</dt>
                  <dd>
                    {m?.filamentUsedG !== undefined
                      ? `${m.filamentUsedG.toFixed(1)} g`
                      : m?.filamentUsedMm !== undefined
                        ? `${(m.filamentUsedMm / 1000).toFixed(2)} m`
                        : "–"}
                  </dd>
                  <dt>Material</dt>
                  <dd>{m?.material ?? "–"}</dd>
                  <dt>Printer</dt>
                  <dd>{m?.printerModel ?? "–"}</dd>
                  <dt>Size</dt>
                  <dd>{bytes(f.size)}</dd>
                  <dt>Uploaded</dt>
                  <dd>
                    {time(f.createdAt)} by {f.uploadedBy ?? "–"}
                  </dd>
                </dl>
                {f.noMetadataReason && <p className="reason">No metadata: {f.noMetadataReason}</p>}
                {(allows(me.role, "operator") || f.uploadedBy === me.user.name) && (
                  <button
                    type="button"
                    className="danger"
                    onClick={() =>
                      void confirm({
                        title: `Delete ${f.name}?`,
                        body: "It is removed from the library.",
                        action: "Delete",
                      }).then((yes) => {
                        if (yes) remove.mutate(f.id);
                      })
                    }
                  >
                    Delete
                  </button>
                )}
              </div>
            </li>
          );
        })}
      </ul>
    </section>
  );
}
