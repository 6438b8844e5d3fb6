import { api, unwrapList } from '@/lib/api-client';
import type { Message } from '@/types/api';

export const PAGE_SIZE = 50;

export type MessagePage = { messages: Message[]; hasMore: boolean };

/** GET /api/collaborations/{id}/messages?before=&limit=: a page of messages older than `before`, oldest first. */
export async function getMessages(collaborationId: string, before?: string, limit = PAGE_SIZE): Promise<MessagePage> {
  const data = await api.get<unknown>(`/api/collaborations/${encodeURIComponent(collaborationId)}/messages`, {
    params: { before, limit },
  });
  const messages = unwrapList<Message>(data, 'messages').sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const flag = data && typeof data === 'object' && !Array.isArray(data) ? (data as { hasMore?: unknown }).hasMore : undefined;
  return { messages, hasMore: typeof flag === 'boolean' ? flag : messages.length >= limit };
}
