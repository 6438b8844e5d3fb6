import { runAction } from '@/lib/run-action';
import type { Role } from '@/types/api';

/** addMember (owner): invite someone by email with a role. */
export function addMember(collaborationId: string, email: string, role: Role) {
  return runAction('addMember', { collaborationId, payload: { email, role } });
}
