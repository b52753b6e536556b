import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type SyntheticEvent } from "react";
import { api, ok, setCsrfToken } from "../api/client.ts";
import { ErrorNote } from "../components/error-note.tsx";

export function Login() {
  const client = useQueryClient();
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const options = useQuery({
    queryKey: ["session-options"],
    queryFn: () => ok(api.GET("/api/v1/session/options")),
  });
  const signIn = useMutation({
    mutationFn: () => ok(api.POST("/api/v1/session", { body: { name, password } })),
    onSuccess: (answer) => {
      setCsrfToken(answer.csrfToken);
      // Who am I, with the role this session acts with.
      void client.invalidateQueries({ queryKey: ["me"] });
    },
  });
  const submit = (event: SyntheticEvent) => {
    event.preventDefault();
    signIn.mutate();
  };
  return (
    <main className="login" id="main">
      <h1>Ferry</h1>
      <form onSubmit={submit} aria-label="Sign in">
        <label>
          User name
          <input
            name="username"
            autoComplete="username"
            required
            value={name}
            onChange={(e) => setName(e.target.value)}
          />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        <button type="submit" disabled={signIn.isPending}>
          {signIn.isPending ? "Signing in…" : "Sign in"}
        </button>
        <ErrorNote error={signIn.error} />
      </form>
      {options.data?.oidc && (
        <p>
          <a className="button" href={options.data.oidc}>
            Sign in with your organisation’s account
          </a>
        </p>
      )}
    </main>
  );
}
