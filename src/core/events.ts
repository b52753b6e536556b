/**
 * A typed, synchronous event bus. Domain code publishes; the CLI, the server and bridges subscribe.
 * Every event is delivered in one envelope `{id, at, node, type, payload}` (docs/events.md lists
 * the vocabulary): `id` orders events within a process and names each once, `at` is the time of
 * publication, `node` the Ferry instance that published it (one of several on a shared database).
 * A failing listener is reported to `onListenerError` and never breaks the publisher.
 */
import { randomBytes } from "node:crypto";

// An object type of event name → payload (interfaces qualify: no index signature needed).
export type EventMap = object;

export interface Envelope<Events extends EventMap, K extends keyof Events = keyof Events> {
  /** `<boot>-<sequence>`: unique, and increasing within one process. */
  id: string;
  /** ms since the epoch. */
  at: number;
  node: string;
  type: K;
  payload: Events[K];
}

export type Listener<T> = (event: T) => void;

/** The publishing side of a bus: what a part that only publishes its own events needs. */
export interface Publisher<Events extends EventMap> {
  emit<K extends keyof Events>(type: K, payload: Events[K]): void;
}

/** The listening side of a bus: what a part that only follows some events needs. */
export interface Subscriber<Events extends EventMap> {
  on<K extends keyof Events>(type: K, listener: Listener<Envelope<Events, K>>): () => void;
}

/** Both sides: what a part that publishes its own events and follows others' needs (any bus of a wider vocabulary fits). */
export type Bus<Events extends EventMap> = Publisher<Events> & Subscriber<Events>;

export interface EventBusOptions {
  /** This Ferry instance's name (default: "local"). */
  node?: string;
  clock?: () => number;
  onListenerError?: (error: unknown) => void;
}

export class EventBus<Events extends EventMap> implements Publisher<Events>, Subscriber<Events> {
  readonly node: string;
  readonly #listeners = new Map<keyof Events, Set<Listener<never>>>();
  readonly #any = new Set<Listener<Envelope<Events>>>();
  readonly #onListenerError: (error: unknown) => void;
  readonly #clock: () => number;
  // A new prefix per bus: ids of two runs never collide, and sort by sequence within one.
  readonly #boot = randomBytes(4).toString("hex");
  #sequence = 0;

  constructor(options: EventBusOptions = {}) {
    this.node = options.node ?? "local";
    this.#clock = options.clock ?? Date.now;
    this.#onListenerError =
      options.onListenerError ??
      ((error) =>
        queueMicrotask(() => {
          throw error;
        }));
  }

  on<K extends keyof Events>(type: K, listener: Listener<Envelope<Events, K>>): () => void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Every event of every type (the server's event stream, `serve --json`). */
  onAny(listener: Listener<Envelope<Events>>): () => void {
    this.#any.add(listener);
    return () => this.#any.delete(listener);
  }

  emit<K extends keyof Events>(type: K, payload: Events[K]): void {
    const set = this.#listeners.get(type);
    if (!set && this.#any.size === 0) return;
    const envelope: Envelope<Events, K> = {
      id: `${this.#boot}-${(++this.#sequence).toString(36).padStart(8, "0")}`,
      at: this.#clock(),
      node: this.node,
      type,
      payload,
    };
    for (const listener of [...(set ?? []), ...this.#any]) {
      try {
        (listener as Listener<Envelope<Events, K>>)(envelope);
      } catch (error) {
        this.#onListenerError(error);
      }
    }
  }
}
