import type { Role } from "./api/client.ts";

const RANK: Record<Role, number> = { viewer: 0, user: 1, operator: 2, admin: 3 };

/** Whether a role may do what `least` may (viewer < user < operator < admin), as the server decides. */
export const allows = (role: Role, least: Role): boolean => RANK[role] >= RANK[least];
