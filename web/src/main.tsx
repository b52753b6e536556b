import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { BrowserRouter } from "react-router";
import { ApiError } from "./api/client.ts";
import { LiveEvents } from "./api/events.ts";
import { App } from "./App.tsx";
import { LiveContext } from "./live.ts";
import { printersQuery } from "./pages/farm-queries.ts";
import "./styles.css";

const client = new QueryClient({
  defaultOptions: {
    queries: {
      // Live events keep what is shown current; nothing is fetched again on a timer or on focus.
      staleTime: Infinity,
      refetchOnWindowFocus: false,
      retry: (count, error) => !(error instanceof ApiError && error.status < 500) && count < 2,
    },
  },
});
const live = new LiveEvents(client);
// The farm grid's data is asked for at once, beside "who am I", not after it: the first page
// fills one round trip sooner. Without a session it is a 401, dropped (the login page shows).
if (location.pathname === "/") client.query(printersQuery).catch(() => undefined);
const root = document.getElementById("root");
if (!root) throw new Error("index.html has no #root");
createRoot(root).render(
  <StrictMode>
    <QueryClientProvider client={client}>
      <LiveContext value={live}>
        <BrowserRouter>
          <App />
        </BrowserRouter>
      </LiveContext>
    </QueryClientProvider>
  </StrictMode>,
);
