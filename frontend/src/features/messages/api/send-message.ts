import { queueAction } from '@/lib/offline-queue';

/**
 * sendMessage (viewer): 1–4000 characters, through the offline queue (stored, then sent in order with
 * its Idempotency-Key). The message itself arrives as `message_created`; until then it shows as pending.
 */
export function sendMessage(collaborationId: string, text: string) {
  return queueAction('sendMessage', collaborationId, { text });
}
