/**
 * Who may do what on the server, in four roles, each allowed what the ones below it are:
 * admin (users and tokens) > operator (runs the farm) > user (submits and watches own jobs) >
 * viewer (reads).
 */
export const ROLES = ["viewer", "user", "operator", "admin"] as const;

export type Role = (typeof ROLES)[number];

export function isRole(value: unknown): value is Role {
  return typeof value === "string" && (ROLES as readonly string[]).includes(value);
}

/** True when `have` is `need` or above it. */
export function roleAllows(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

/** The lower of two roles: what a token may do is bounded by its owner's role. */
export function lowerRole(a: Role, b: Role): Role {
  return roleAllows(a, b) ? b : a;
}
