// Shapes of the Tandem API (shared/DESIGN.md sections 2-5). A document's `_id`
// arrives as `id`; times are ISO 8601 strings in UTC.

export type Role = 'owner' | 'editor' | 'viewer';
export type ActivityStatus = 'proposed' | 'scheduled' | 'done' | 'cancelled';
export type CollaborationStatus = 'active' | 'archived';
export type ApprovalStatus = 'pending' | 'approved' | 'rejected' | 'expired' | 'failed';

export type User = {
  id: string;
  email: string | null;
};

export type Actor = {
  type: 'user' | 'ai' | 'rule';
  id?: string | null;
  runId?: string | null;
  ruleId?: string | null;
};

export type Member = {
  userId: string;
  email: string | null;
  role: Role;
  joinedAt: string;
  /** Added by email and not signed in yet: when, and by whom (userId). Gone once they sign in. */
  invitedAt?: string | null;
  invitedBy?: string | null;
};

export type Activity = {
  id: string;
  title: string;
  description: string | null;
  status: ActivityStatus;
  dueAt: string | null;
  scheduledFor: string | null;
  assigneeId: string | null;
  createdBy: Actor;
  createdAt: string;
  updatedAt: string;
  cancelReason?: string | null;
  completedAt?: string | null;
};

/** An owner's rule (docs/rules.md): JSON data the server validates and evaluates. */
export type Rule = {
  id: string;
  name: string;
  enabled?: boolean;
  when: { action: string; actor?: 'user' | 'ai' | 'any' };
  if?: unknown;
  then: { deny?: { message: string }; require_approval?: { reason?: string }; action?: { name: string; payload: Record<string, unknown> } };
};

export type Collaboration = {
  id: string;
  title: string;
  description: string | null;
  status: CollaborationStatus;
  members: Member[];
  memberIds: string[];
  activities: Activity[];
  settings: { protectedActions: string[]; timezone?: string };
  rules: Rule[];
  version: number;
  createdAt: string;
  updatedAt: string;
  lastActivityAt: string;
};

export type Message = {
  id: string;
  collaborationId: string;
  author: Actor;
  text: string;
  createdAt: string;
  /** The id of the message this one answers (an AI answer names the question it answers). */
  replyTo?: string | null;
  /** The AI chat's answer: the actions it suggests, for every member (none is ever run by itself). */
  suggestions?: Suggestion[];
};

export type Approval = {
  id: string;
  collaborationId: string;
  action: string;
  payload: Record<string, unknown>;
  reason: string | null;
  proposedBy: Actor;
  status: ApprovalStatus;
  createdAt: string;
  expiresAt: string;
  decidedBy?: string | null;
  decidedAt?: string | null;
  result?: unknown;
  error?: { code?: string; message?: string } | null;
};

export type PresenceEntry = {
  userId: string;
  state: Record<string, unknown>;
  since: string;
};

export type ActionApplied = {
  collaborationId: string;
  version: number;
  result: unknown;
};

/** What POST /api/actions/{name} answered: applied (200) or sent for approval (202). */
export type ActionOutcome =
  | ({ kind: 'applied' } & ActionApplied)
  | { kind: 'pending_approval'; approval: Approval };

export type Suggestion = {
  action: string;
  payload: Record<string, unknown>;
  reason?: string | null;
  collaborationId?: string;
};

export type FieldChanges = {
  updatedFields?: Record<string, unknown>;
  removedFields?: string[];
};
