import { runAction } from '@/lib/run-action';
import type { Role } from '@/types/api';

/** changeRole (owner). */
export function changeRole(collaborationId: string, userId: string, role: Role) {
  return runAction('changeRole', { collaborationId, payload: { userId, role } });
}
