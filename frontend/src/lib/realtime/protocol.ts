// Frames of the WebSocket protocol (shared/DESIGN.md section 5).

import type { Actor, Approval, Collaboration, FieldChanges, Message, PresenceEntry } from '@/types/api';

export type ClientFrame =
  | { type: 'auth'; token: string }
  | { type: 'subscribe'; collaborationId: string; sinceSeq?: number; sinceVersion?: number; sinceMessageId?: string }
  | { type: 'unsubscribe'; collaborationId: string }
  | { type: 'presence'; collaborationId: string; state: Record<string, unknown> }
  | { type: 'refresh_token'; token: string }
  | { type: 'ping' };

export type ServerEvent =
  | { type: 'ready'; userId: string; connectionId: string }
  | { type: 'pong' }
  // `seq` (DESIGN.md §5 "Stream sequence"): absent from a server that does not number its events yet.
  | { type: 'subscribed'; collaborationId: string; version: number; seq?: number }
  | { type: 'unsubscribed'; collaborationId: string }
  | { type: 'snapshot'; collaborationId: string; version: number; seq?: number; collaboration: Collaboration; messages: Message[] }
  | {
      type: 'collaboration_updated';
      collaborationId: string;
      version: number;
      seq?: number;
      action: string;
      actor: Actor;
      at: string;
      changes: FieldChanges;
    }
  | { type: 'message_created'; collaborationId: string; seq?: number; message: Message }
  | { type: 'approval_created' | 'approval_updated'; collaborationId: string; approval: Approval }
  | { type: 'presence'; collaborationId: string; members: PresenceEntry[] }
  | { type: 'membership_removed'; collaborationId: string }
  | { type: 'resync_required'; collaborationId: string; reason?: string }
  | { type: 'error'; code: string; message?: string; collaborationId?: string }
  | { type: 'token_refreshed' };

/** Close codes the server uses. */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  unauthenticated: 4401,
  authTimeout: 4408,
  slowConsumer: 4009,
  rateLimited: 4429,
} as const;

/** The part of the browser's WebSocket the client uses (a fake one is injected in tests). */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason?: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketFactory = (url: string) => WebSocketLike;

export const OPEN = 1;
