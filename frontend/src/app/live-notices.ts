// Live changes in words, for the toasts shown when I come back to a hidden tab and for the
// screen-reader announcements: "Bob scheduled 'Check the tent'".

import type { RealtimeEvent } from '@/lib/realtime/realtime-client';
import type { Actor, Collaboration } from '@/types/api';
import { actionDone } from '@/utils/describe-action';

/** "bob@example.com" → "Bob". */
export function personName(email: string | null | undefined): string {
  const local = (email ?? '').split('@')[0] ?? '';
  return local ? local.charAt(0).toUpperCase() + local.slice(1) : 'Someone';
}

/** Who did it, or null when it was me. */
export function whoDid(actor: Actor | undefined, collaboration: Collaboration | null, me: string): string | null {
  if (!actor) return 'Someone';
  if (actor.type === 'ai') return 'The AI';
  if (actor.type === 'rule') {
    const ruleId = actor.ruleId ?? actor.id;
    const rule = collaboration?.rules?.find((r) => r.id === ruleId);
    return rule ? `The rule “${rule.name}”` : 'A rule';
  }
  if (actor.id === me) return null;
  return personName(collaboration?.members.find((m) => m.userId === actor.id)?.email);
}

function excerpt(text: string, max = 80): string {
  const chars = Array.from(text);
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : text;
}

/** The activity an update touched: the one changed at the event's time, else the first path's index. */
function touchedActivity(event: Extract<RealtimeEvent, { type: 'collaboration_updated' }>, collaboration: Collaboration | null): string | null {
  const activities = collaboration?.activities ?? [];
  const byTime = activities.find((a) => a.updatedAt === event.at);
  if (byTime) return byTime.title;
  for (const path of Object.keys(event.changes?.updatedFields ?? {})) {
    const match = /^activities\.(\d+)/.exec(path);
    if (match) return activities[Number(match[1])]?.title ?? null;
  }
  return null;
}

export type LiveNotice = { collaborationId: string; text: string; kind: 'change' | 'message' | 'approval' };

/**
 * A change someone else made, in words, or null (mine, or nothing to say). `collaboration` is the
 * live copy after the change; `here`: that collaboration's page is the one open (no "in …").
 */
export function describeLiveEvent(event: RealtimeEvent, collaboration: Collaboration | null, me: string, here: boolean): LiveNotice | null {
  const where = !here && collaboration ? ` in “${collaboration.title}”` : '';
  if (event.type === 'collaboration_updated') {
    const who = whoDid(event.actor, collaboration, me);
    if (!who) return null;
    const title = touchedActivity(event, collaboration);
    return { collaborationId: event.collaborationId, kind: 'change', text: `${who} ${actionDone(event.action, title ? `'${title}'` : null)}${where}` };
  }
  if (event.type === 'message_created') {
    const who = whoDid(event.message.author, collaboration, me);
    if (!who) return null;
    return { collaborationId: event.collaborationId, kind: 'message', text: `${who} wrote${where}: “${excerpt(event.message.text)}”` };
  }
  if (event.type === 'approval_created') {
    const proposer = event.approval?.proposedBy;
    if (proposer?.type === 'user' && proposer.id === me) return null; // my own action, held for approval
    return { collaborationId: event.collaborationId, kind: 'approval', text: `A new approval waits for you${where}` };
  }
  return null;
}
