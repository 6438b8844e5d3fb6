import { api } from '@/lib/api-client';
import type { Approval, Message, Suggestion } from '@/types/api';

export type AiChatResponse = { question: Message | null; reply: Message | null; approval: Approval | null; suggestions: Suggestion[] };

/**
 * POST /api/collaborations/{id}/ai/chat {"message"} →
 * 200 {"question": <my message>, "reply": <the AI's message, replyTo = question.id>, "suggestions": [...]}.
 * Both messages reach every member over the WebSocket. When an owner made the AI's messages
 * need approval: 202 with `reply: null` and the `approval`.
 */
export async function sendAiChat(collaborationId: string, message: string): Promise<AiChatResponse> {
  const data = await api.post<Partial<AiChatResponse> | null>(
    `/api/collaborations/${encodeURIComponent(collaborationId)}/ai/chat`,
    { message },
  );
  const suggestions = Array.isArray(data?.suggestions)
    ? data.suggestions.filter((s): s is Suggestion => Boolean(s && typeof s.action === 'string'))
    : [];
  return { question: data?.question ?? null, reply: data?.reply ?? null, approval: data?.approval ?? null, suggestions };
}
