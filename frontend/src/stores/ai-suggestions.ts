// The AI's suggested actions, kept by the id of the answer they came with (in this tab only:
// the server sends them to the member who asked). The AI panel puts them here; the message
// feed shows them under that answer.

import { useSyncExternalStore } from 'react';

import type { Suggestion } from '@/types/api';

type Listener = () => void;

let byMessage: ReadonlyMap<string, Suggestion[]> = new Map();
const listeners = new Set<Listener>();

export const aiSuggestions = {
  get: (messageId: string): Suggestion[] | undefined => byMessage.get(messageId),
  set(messageId: string, suggestions: Suggestion[]): void {
    const next = new Map(byMessage);
    next.set(messageId, suggestions);
    byMessage = next;
    for (const listener of [...listeners]) listener();
  },
  clear(): void {
    byMessage = new Map();
    for (const listener of [...listeners]) listener();
  },
  subscribe(listener: Listener): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
};

export function useAiSuggestions(messageId: string): Suggestion[] | undefined {
  return useSyncExternalStore(aiSuggestions.subscribe, () => byMessage.get(messageId));
}
