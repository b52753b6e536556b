/** Every feature's routes, one plugin each (see route.ts for how to write one). */
import type { FerryRoutes } from "../route.ts";
import files from "./files.ts";
import health from "./health.ts";
import jobs from "./jobs.ts";
import octoprint from "./octoprint-compat.ts";
import printers from "./printers.ts";
import session from "./session.ts";
import setup from "./setup.ts";
import tokens from "./tokens.ts";
import users from "./users.ts";

export const ROUTES: readonly FerryRoutes[] = [
  health,
  session,
  setup,
  users,
  tokens,
  printers,
  files,
  jobs,
  octoprint,
];
