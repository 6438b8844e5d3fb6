import { queueAction } from '@/lib/offline-queue';

export type ProposeActivityInput = {
  title: string;
  description?: string;
  dueAt?: string;
  assigneeId?: string;
};

/** proposeActivity (editor). Through the offline queue. */
export function proposeActivity(collaborationId: string, input: ProposeActivityInput) {
  const payload: Record<string, unknown> = { title: input.title };
  if (input.description) payload.description = input.description;
  if (input.dueAt) payload.dueAt = input.dueAt;
  if (input.assigneeId) payload.assigneeId = input.assigneeId;
  return queueAction('proposeActivity', collaborationId, payload);
}
