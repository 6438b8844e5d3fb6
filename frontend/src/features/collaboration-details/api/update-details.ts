import { runAction } from '@/lib/run-action';

export type UpdateDetailsInput = {
  collaborationId: string;
  expectedVersion?: number;
  title?: string;
  description?: string;
};

/** updateDetails (editor). Sends the version the form was based on, so a concurrent edit is refused, not lost. */
export function updateDetails({ collaborationId, expectedVersion, ...payload }: UpdateDetailsInput) {
  return runAction('updateDetails', { collaborationId, expectedVersion, payload });
}
