// POST /api/actions/{name}: the one way to change a collaboration.

import { api } from '@/lib/api-client';
import { notifications } from '@/stores/notifications';
import type { ActionApplied, ActionOutcome, Approval } from '@/types/api';

export type RunActionInput = {
  collaborationId: string;
  payload?: Record<string, unknown>;
  /** Refuse with version_conflict when the collaboration moved past this version. */
  expectedVersion?: number;
  /** The Idempotency-Key to send (the offline queue keeps one per action); fresh when not given. */
  idempotencyKey?: string;
};

export async function runAction(name: string, input: RunActionInput): Promise<ActionOutcome> {
  const body: Record<string, unknown> = { collaborationId: input.collaborationId, payload: input.payload ?? {} };
  if (input.expectedVersion !== undefined) body.expectedVersion = input.expectedVersion;
  const { status, data } = await api.request<ActionApplied | { approval: Approval }>(
    'POST',
    `/api/actions/${encodeURIComponent(name)}`,
    { body, idempotencyKey: input.idempotencyKey },
  );
  if (status === 202 && data && 'approval' in data) return { kind: 'pending_approval', approval: data.approval };
  return { kind: 'applied', ...(data as ActionApplied) };
}

/** Tell the person what happened when an action went to the owner instead of running. */
export function announceOutcome(outcome: ActionOutcome | undefined, applied?: string): void {
  if (!outcome) return;
  if (outcome.kind === 'pending_approval') {
    notifications.show('Sent to the owner for approval. It will happen once an owner approves it.', 'info', 8000);
  } else if (applied) {
    notifications.show(applied, 'success');
  }
}
