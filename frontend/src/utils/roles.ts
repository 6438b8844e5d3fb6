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
