import { useQuery, useQueryClient } from "@tanstack/react-query";
import { lazy, Suspense, useEffect } from "react";
import { NavLink, Route, Routes } from "react-router";
import { api, ApiError, ok, setCsrfToken, type Me } from "./api/client.ts";
import { ConfirmProvider } from "./components/confirm.tsx";
import { ErrorNote } from "./components/error-note.tsx";
import { useLive, useStreamStatus } from "./live.ts";
import { Farm } from "./pages/farm.tsx";
import { Login } from "./pages/login.tsx";
import { allows } from "./roles.ts";

// The farm grid is the first page; the others load when opened.
const PrinterPage = lazy(() => import("./pages/printer.tsx"));
const Jobs = lazy(() => import("./pages/jobs.tsx"));
const Files = lazy(() => import("./pages/files.tsx"));
const Transfers = lazy(() => import("./pages/transfers.tsx"));
const Admin = lazy(() => import("./pages/admin.tsx"));

/** Who is signed in (null: nobody); the CSRF token for changes comes with it. */
export function useMe() {
  return useQuery({
    queryKey: ["me"],
    queryFn: async (): Promise<Me | null> => {
      try {
        const me = await ok(api.GET("/api/v1/me"));
        setCsrfToken(me.csrfToken);
        return me;
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) return null;
        throw error;
      }
    },
  });
}

export function App() {
  const me = useMe();
  const live = useLive();
  const signedIn = me.data !== null && me.data !== undefined;
  useEffect(() => {
    if (!signedIn) return;
    live.open();
    return () => live.close();
  }, [signedIn, live]);

  if (me.isPending)
    return (
      <p className="loading" role="status">
        Loading…
      </p>
    );
  if (me.isError) return <ErrorNote error={me.error} />;
  if (me.data === null) return <Login />;
  return <Shell me={me.data} />;
}

function Shell({ me }: { me: Me }) {
  const client = useQueryClient();
  const status = useStreamStatus();
  const signOut = async () => {
    await api.DELETE("/api/v1/session");
    setCsrfToken(undefined);
    client.clear();
    client.setQueryData(["me"], null);
  };
  return (
    <ConfirmProvider>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">Ferry</span>
        <nav aria-label="Pages">
          <NavLink to="/" end>
            Farm
          </NavLink>
          <NavLink to="/jobs">Jobs</NavLink>
          <NavLink to="/files">Files</NavLink>
          <NavLink to="/transfers">Transfers</NavLink>
          {allows(me.role, "admin") && <NavLink to="/admin">Admin</NavLink>}
        </nav>
        <span className={`live live-${status}`} role="status" title="live updates">
          {status === "live" ? "● live" : status === "reconnecting" ? "○ reconnecting" : "○ connecting"}
        </span>
        <span className="who">
          {me.user.name} <small>({me.role})</small>
        </span>
        <button type="button" onClick={() => void signOut()}>
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        <Suspense
          fallback={
            <p className="loading" role="status">
              Loading…
            </p>
          }
        >
          <Routes>
            <Route path="/" element={<Farm role={me.role} />} />
            <Route path="/printers/:name" element={<PrinterPage role={me.role} />} />
            <Route path="/jobs" element={<Jobs me={me} />} />
            <Route path="/files" element={<Files me={me} />} />
            <Route path="/transfers" element={<Transfers role={me.role} />} />
            <Route path="/admin" element={allows(me.role, "admin") ? <Admin me={me} /> : <NotAllowed />} />
            <Route path="*" element={<NotFound />} />
          </Routes>
        </Suspense>
      </main>
    </ConfirmProvider>
  );
}

function NotAllowed() {
  return <p role="alert">This page is for admins.</p>;
}

function NotFound() {
  return <p role="alert">There is no such page.</p>;
}
