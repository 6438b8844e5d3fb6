import { ACTION_NAMES, CATALOGUE } from '@/generated/catalogue';
import type { Collaboration, Role } from '@/types/api';

const RANK: Record<Role, number> = { viewer: 1, editor: 2, owner: 3 };

export const ROLES: Role[] = ['owner', 'editor', 'viewer'];

export function roleAtLeast(role: Role | null | undefined, least: Role): boolean {
  return role ? RANK[role] >= RANK[least] : false;
}

export function myRole(collaboration: Collaboration | null | undefined, userId: string): Role | null {
  return collaboration?.members.find((member) => member.userId === userId)?.role ?? null;
}

export function roleLabel(role: Role): string {
  return role.charAt(0).toUpperCase() + role.slice(1);
}

/**
 * The least role of every action (DESIGN.md §3, "least role"); null: any
 * signed-in user. Derived from the server's catalogue (src/generated/catalogue.ts,
 * written by `tandem catalogue-ts` from backend/domain/catalogue.py): the UI
 * offers an action only to a role that passes.
 */
export const ACTION_LEAST_ROLE: Readonly<Record<string, Role | null>> = Object.freeze(
  Object.fromEntries(ACTION_NAMES.map((name) => [name, CATALOGUE[name].leastRole])),
);

/** The least role `action` needs; undefined for an action the catalogue doesn't have. */
export function leastRole(action: string): Role | null | undefined {
  return Object.prototype.hasOwnProperty.call(ACTION_LEAST_ROLE, action) ? ACTION_LEAST_ROLE[action] : undefined;
}

/** Whether a member with `role` may run `action` (never an unknown action). */
export function canRun(role: Role | null | undefined, action: string): boolean {
  const least = leastRole(action);
  if (least === undefined) return false;
  if (least === null) return true;
  return roleAtLeast(role, least);
}

/** The role `role` lacks for `action` ("editor" for a viewer's cancelActivity), or null when it may run it. */
export function missingRole(role: Role | null | undefined, action: string): Role | null {
  const least = leastRole(action);
  if (least === undefined || least === null || roleAtLeast(role, least)) return null;
  return least;
}
