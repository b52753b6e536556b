import { createContext, useContext, useEffect, useState } from "react";
import type { LiveEvents, StreamStatus } from "./api/events.ts";
import type { Envelope } from "./api/events-types.ts";

export const LiveContext = createContext<LiveEvents | null>(null);

export function useLive(): LiveEvents {
  const live = useContext(LiveContext);
  if (!live) throw new Error("useLive outside LiveContext");
  return live;
}

/** Calls `listener` for every live event while mounted. */
export function useLiveEvent(listener: (event: Envelope) => void): void {
  const live = useLive();
  useEffect(() => live.subscribe(listener), [live, listener]);
}

export function useStreamStatus(): StreamStatus {
  const live = useLive();
  const [status, setStatus] = useState(live.status);
  useEffect(() => live.onStatus(setStatus), [live]);
  return status;
}
