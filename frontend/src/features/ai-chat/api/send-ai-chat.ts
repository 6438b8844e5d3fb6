import { api } from '@/lib/api-client';
import type { Message, Suggestion } from '@/types/api';

export type AiChatResponse = { reply: Message | null; suggestions: Suggestion[] };

/**
 * POST /api/collaborations/{id}/ai/chat {"message"} →
 * {"reply": {...message}, "suggestions": [{"action", "payload", "reason"}]}.
 * The reply is also posted to the feed as an AI message.
 */
export async function sendAiChat(collaborationId: string, message: string): Promise<AiChatResponse> {
  const data = await api.post<Partial<AiChatResponse> | null>(
    `/api/collaborations/${encodeURIComponent(collaborationId)}/ai/chat`,
    { message },
  );
  const suggestions = Array.isArray(data?.suggestions)
    ? data.suggestions.filter((s): s is Suggestion => Boolean(s && typeof s.action === 'string'))
    : [];
  return { reply: data?.reply ?? null, suggestions };
}
