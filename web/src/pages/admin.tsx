/** Admin: users and roles, API tokens (created once shown, revoked), printers (add, edit, retire). */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type SyntheticEvent } from "react";
import { api, ok, type Me, type Printer, type Role } from "../api/client.ts";
import { useConfirm } from "../components/confirm.tsx";
import { ErrorNote } from "../components/error-note.tsx";
import type { paths } from "../api/schema.ts";
import { time } from "../format.ts";
import { usePrinters } from "./farm-queries.ts";

const ROLES: Role[] = ["viewer", "user", "operator", "admin"];

export default function Admin({ me }: { me: Me }) {
  return (
    <section aria-labelledby="admin-title">
      <div className="page-head">
        <h1 id="admin-title">Admin</h1>
      </div>
      <Users me={me} />
      <Tokens />
      <Printers />
    </section>
  );
}

function useAction(keys: string[]) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (action: () => Promise<unknown>) => action(),
    onSuccess: () => Promise.all(keys.map((key) => client.invalidateQueries({ queryKey: [key] }))),
  });
}

function Users({ me }: { me: Me }) {
  const users = useQuery({ queryKey: ["users"], queryFn: () => ok(api.GET("/api/v1/users")) });
  const act = useAction(["users"]);
  const confirm = useConfirm();
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("user");
  const [password, setPassword] = useState("");
  const add = (event: SyntheticEvent) => {
    event.preventDefault();
    act.mutate(async () => {
      await ok(api.POST("/api/v1/users", { body: { name, role, ...(password ? { password } : {}) } }));
      setName("");
      setPassword("");
    });
  };
  return (
    <section aria-labelledby="users-title">
      <h2 id="users-title">Users</h2>
      <ErrorNote error={users.error ?? act.error} />
      <table>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Role</th>
            <th scope="col">Signs in with</th>
            <th scope="col">Since</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {users.data?.map((u) => (
            <tr key={u.name}>
              <th scope="row">
                {u.name} {u.disabled && <small>(disabled)</small>}
              </th>
              <td>
                <select
                  aria-label={`Role of ${u.name}`}
                  value={u.role}
                  onChange={(e) => {
                    const next = e.target.value as Role;
                    act.mutate(() =>
                      ok(
                        api.PATCH("/api/v1/users/{name}", {
                          params: { path: { name: u.name } },
                          body: { role: next },
                        }),
                      ),
                    );
                  }}
                >
                  {ROLES.map((r) => (
                    <option key={r}>{r}</option>
                  ))}
                </select>
              </td>
              <td>{u.external ? "identity provider" : u.hasPassword ? "password" : "API tokens only"}</td>
              <td>{time(u.createdAt)}</td>
              <td>
                <button
                  type="button"
                  onClick={() =>
                    act.mutate(() =>
                      ok(
                        api.PATCH("/api/v1/users/{name}", {
                          params: { path: { name: u.name } },
                          body: { disabled: !u.disabled },
                        }),
                      ),
                    )
                  }
                >
                  {u.disabled ? "Enable" : "Disable"}
                </button>{" "}
                {u.name !== me.user.name && (
                  <button
                    type="button"
                    className="danger"
                    onClick={() =>
                      void confirm({
                        title: `Remove ${u.name}?`,
                        body: "Their sessions and API tokens end.",
                        action: "Remove user",
                      }).then((yes) => {
                        if (yes)
                          act.mutate(() =>
                            ok(api.DELETE("/api/v1/users/{name}", { params: { path: { name: u.name } } })),
                          );
                      })
                    }
                  >
                    Remove
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form className="inline-form" onSubmit={add} aria-label="Add a user">
        <label>
          Name
          <input value={name} onChange={(e) => setName(e.target.value)} required />
        </label>
        <label>
          Role
          <select value={role} onChange={(e) => setRole(e.target.value as Role)}>
            {ROLES.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
        <label>
          Password (none: API tokens only)
          <input
            type="password"
            autoComplete="new-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        <button type="submit">Add user</button>
      </form>
    </section>
  );
}

function Tokens() {
  const tokens = useQuery({ queryKey: ["tokens"], queryFn: () => ok(api.GET("/api/v1/tokens")) });
  const act = useAction(["tokens"]);
  const confirm = useConfirm();
  const [name, setName] = useState("");
  const [user, setUser] = useState("");
  const [expires, setExpires] = useState("90d");
  const [secret, setSecret] = useState<string | null>(null);
  const create = (event: SyntheticEvent) => {
    event.preventDefault();
    act.mutate(async () => {
      const answer = await ok(
        api.POST("/api/v1/tokens", { body: { name, expires, ...(user ? { user } : {}) } }),
      );
      setSecret(answer.secret);
      setName("");
    });
  };
  return (
    <section aria-labelledby="tokens-title">
      <h2 id="tokens-title">API tokens</h2>
      <ErrorNote error={tokens.error ?? act.error} />
      {secret && (
        <div className="secret" role="status">
          <p>The new token, shown this once: copy it now.</p>
          <code>{secret}</code>{" "}
          <button type="button" onClick={() => void navigator.clipboard.writeText(secret)}>
            Copy
          </button>{" "}
          <button type="button" onClick={() => setSecret(null)}>
            Done
          </button>
        </div>
      )}
      <table>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">User</th>
            <th scope="col">Role</th>
            <th scope="col">Expires</th>
            <th scope="col">Last used</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {tokens.data?.map((t) => (
            <tr key={t.id}>
              <th scope="row">{t.name}</th>
              <td>{t.user}</td>
              <td>{t.role}</td>
              <td>{t.expiresAt ? time(t.expiresAt) : "never"}</td>
              <td>{time(t.lastUsedAt)}</td>
              <td>
                <button
                  type="button"
                  className="danger"
                  onClick={() =>
                    void confirm({
                      title: `Revoke the token ${t.name} of ${t.user}?`,
                      body: "Whatever uses it stops working.",
                      action: "Revoke",
                    }).then((yes) => {
                      if (yes)
                        act.mutate(() =>
                          ok(api.DELETE("/api/v1/tokens/{id}", { params: { path: { id: t.id } } })),
                        );
                    })
                  }
                >
                  Revoke
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form className="inline-form" onSubmit={create} aria-label="Create a token">
        <label>
          Name
          <input value={name} onChange={(e) => setName(e.target.value)} required />
        </label>
        <label>
          For user (default: you)
          <input value={user} onChange={(e) => setUser(e.target.value)} />
        </label>
        <label>
          Expires after
          <input value={expires} onChange={(e) => setExpires(e.target.value)} placeholder="90d, 12h, never" />
        </label>
        <button type="submit">Create token</button>
      </form>
    </section>
  );
}

type PrinterType = NonNullable<
  paths["/api/v1/printers"]["post"]["requestBody"]
>["content"]["application/json"]["type"];
const TYPES: PrinterType[] = ["prusalink", "octoprint", "moonraker"];

function Printers() {
  const printers = usePrinters();
  const act = useAction(["printers"]);
  const confirm = useConfirm();
  const [editing, setEditing] = useState<Printer | null>(null);
  return (
    <section aria-labelledby="printers-title">
      <h2 id="printers-title">Printers</h2>
      <ErrorNote error={printers.error ?? act.error} />
      <table>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Type</th>
            <th scope="col">Model</th>
            <th scope="col">Tags</th>
            <th scope="col">Defined in</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {printers.data?.map((p) => (
            <tr key={p.name}>
              <th scope="row">{p.name}</th>
              <td>{p.type}</td>
              <td>{p.model ?? "–"}</td>
              <td>{p.tags.join(", ")}</td>
              <td>{p.source === "config" ? "ferry.yaml" : "the API"}</td>
              <td>
                {p.source === "api" && (
                  <>
                    <button type="button" onClick={() => setEditing(p)}>
                      Edit
                    </button>{" "}
                    <button
                      type="button"
                      className="danger"
                      onClick={() =>
                        void confirm({
                          title: `Retire ${p.name}?`,
                          body: "It leaves the farm.",
                          action: "Retire",
                        }).then((yes) => {
                          if (yes)
                            act.mutate(() =>
                              ok(
                                api.DELETE("/api/v1/printers/{name}", { params: { path: { name: p.name } } }),
                              ),
                            );
                        })
                      }
                    >
                      Retire
                    </button>
                  </>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <PrinterForm key={editing?.name ?? "new"} editing={editing} done={() => setEditing(null)} />
    </section>
  );
}

function PrinterForm({ editing, done }: { editing: Printer | null; done: () => void }) {
  const act = useAction(["printers"]);
  const [name, setName] = useState(editing?.name ?? "");
  const [type, setType] = useState<PrinterType>((editing?.type as PrinterType | undefined) ?? "prusalink");
  const [url, setUrl] = useState("");
  const [secret, setSecret] = useState("");
  const [model, setModel] = useState(editing?.model ?? "");
  const [tags, setTags] = useState(editing?.tags.join(", ") ?? "");
  const submit = (event: SyntheticEvent) => {
    event.preventDefault();
    const options: Record<string, unknown> = {};
    if (url) options.url = url;
    if (secret) options[type === "prusalink" ? "password" : "api_key"] = secret;
    const keys = {
      model: model || null,
      tags: tags
        .split(",")
        .map((t) => t.trim())
        .filter((t) => t !== ""),
    };
    act.mutate(async () => {
      if (editing)
        await ok(
          api.PATCH("/api/v1/printers/{name}", {
            params: { path: { name: editing.name } },
            body: { type, options, ...keys },
          }),
        );
      else await ok(api.POST("/api/v1/printers", { body: { name, type, options, ...keys } }));
      done();
    });
  };
  return (
    <form
      className="inline-form"
      onSubmit={submit}
      aria-label={editing ? `Edit ${editing.name}` : "Add a printer"}
    >
      <h3>{editing ? `Edit ${editing.name}` : "Add a printer"}</h3>
      {!editing && (
        <label>
          Name
          <input value={name} onChange={(e) => setName(e.target.value)} required />
        </label>
      )}
      <label>
        Type
        <select value={type} onChange={(e) => setType(e.target.value as PrinterType)}>
          {TYPES.map((t) => (
            <option key={t}>{t}</option>
          ))}
        </select>
      </label>
      <label>
        Address
        <input
          type="url"
          value={url}
          onChange={(e) => setUrl(e.target.value)}
          placeholder="http://192.168.1.50"
          required={!editing}
        />
      </label>
      <label>
        {type === "prusalink" ? "Password" : "API key"}
        <input
          type="password"
          autoComplete="off"
          value={secret}
          onChange={(e) => setSecret(e.target.value)}
        />
      </label>
      <label>
        Model
        <input value={model} onChange={(e) => setModel(e.target.value)} placeholder="MK4" />
      </label>
      <label>
        Tags
        <input value={tags} onChange={(e) => setTags(e.target.value)} placeholder="PLA, 0.4" />
      </label>
      <button type="submit">{editing ? "Save" : "Add printer"}</button>
      {editing && (
        <button type="button" onClick={done}>
          Cancel
        </button>
      )}
      <ErrorNote error={act.error} />
    </form>
  );
}
