/** The store of a config, for the commands that only read it (status, tasks). */
export { openConfiguredStore, type OpenedStore } from "../app.ts";
