import { api } from '@/lib/api-client';
import type { Approval, Message, Suggestion } from '@/types/api';

export type AiChatResponse = { reply: Message | null; approval: Approval | null; suggestions: Suggestion[] };

/**
 * POST /api/collaborations/{id}/ai/chat {"message"} →
 * {"reply": {...message}, "suggestions": [{"action", "payload", "reason"}]}.
 * The reply is also posted to the feed as an AI message — unless the owner made
 * the AI's messages need approval: then 202 with `reply: null` and the `approval`.
 */
export async function sendAiChat(collaborationId: string, message: string): Promise<AiChatResponse> {
  const data = await api.post<Partial<AiChatResponse> | null>(
    `/api/collaborations/${encodeURIComponent(collaborationId)}/ai/chat`,
    { message },
  );
  const suggestions = Array.isArray(data?.suggestions)
    ? data.suggestions.filter((s): s is Suggestion => Boolean(s && typeof s.action === 'string'))
    : [];
  return { reply: data?.reply ?? null, approval: data?.approval ?? null, suggestions };
}
