/** Every feature's routes, one plugin each (see route.ts for how to write one). */
import type { FerryRoutes } from "../route.ts";
import devices from "./devices.ts";
import events from "./events.ts";
import files from "./files.ts";
import health from "./health.ts";
import jobs from "./jobs.ts";
import metrics from "./metrics.ts";
import notifications from "./notifications.ts";
import octoprint from "./octoprint-compat.ts";
import oidc from "./oidc.ts";
import printers from "./printers.ts";
import session from "./session.ts";
import setup from "./setup.ts";
import syncs from "./syncs.ts";
import tasks from "./tasks.ts";
import tokens from "./tokens.ts";
import users from "./users.ts";

export const ROUTES: readonly FerryRoutes[] = [
  health,
  session,
  oidc,
  setup,
  users,
  tokens,
  devices,
  syncs,
  tasks,
  events,
  printers,
  files,
  jobs,
  octoprint,
  notifications,
  metrics,
];
