/**
 * The event stream's payloads, typed by the server's own declarations (type-only imports, erased
 * from the build): the OpenAPI document describes the stream but not each event's payload.
 */
import type { DeviceEvents } from "../../../src/devices/events.ts";
import type { FarmEvents } from "../../../src/farm/events.ts";
import type { EngineEvents } from "../../../src/sync/events.ts";
import type { TaskEvents } from "../../../src/tasks/events.ts";

export type StreamEvents = FarmEvents & TaskEvents & DeviceEvents & EngineEvents;
export type StreamType = Extract<keyof StreamEvents, string>;

export interface Envelope<K extends StreamType = StreamType> {
  id: string;
  at: number;
  node: string;
  type: K;
  payload: StreamEvents[K];
}
