import { runAction } from '@/lib/run-action';

/** sendMessage (viewer): 1–4000 characters. The message itself arrives as `message_created`. */
export function sendMessage(collaborationId: string, text: string) {
  return runAction('sendMessage', { collaborationId, payload: { text } });
}
