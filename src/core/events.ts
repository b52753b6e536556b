/**
 * A typed, synchronous event bus. Domain code publishes; the CLI, the server and bridges subscribe.
 * A failing listener is reported to `onListenerError` and never breaks the publisher.
 */
// An object type of event name → payload (interfaces qualify: no index signature needed).
export type EventMap = object;
export type Listener<T> = (event: T) => void;

export class EventBus<Events extends EventMap> {
  readonly #listeners = new Map<keyof Events, Set<Listener<never>>>();
  readonly #onListenerError: (error: unknown) => void;

  constructor(options: { onListenerError?: (error: unknown) => void } = {}) {
    this.#onListenerError =
      options.onListenerError ??
      ((error) =>
        queueMicrotask(() => {
          throw error;
        }));
  }

  on<K extends keyof Events>(type: K, listener: Listener<Events[K]>): () => void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  emit<K extends keyof Events>(type: K, event: Events[K]): void {
    const set = this.#listeners.get(type);
    if (!set) return;
    for (const listener of set) {
      try {
        (listener as Listener<Events[K]>)(event);
      } catch (error) {
        this.#onListenerError(error);
      }
    }
  }
}
