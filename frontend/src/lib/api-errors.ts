// Error codes of the API (shared/DESIGN.md section 4) in words a person
// understands. Components render the result with <ErrorMessage>.

import { ApiError } from '@/lib/api-client';

export type FieldProblem = { field: string; message: string };

export type ErrorDescription = {
  code: string;
  /** One sentence for the person using the app. */
  message: string;
  /** The server's own explanation, when it adds something. */
  detail: string | null;
  /** validation_failed: which fields are wrong and why. */
  fields: FieldProblem[];
  /** rate_limited: seconds to wait. */
  retryAfter: number | null;
};

const SENTENCES: Record<string, string> = {
  invalid_request: 'That request could not be understood. Please check what you entered and try again.',
  unauthenticated: 'Your session has ended. Please sign in again.',
  forbidden: "You don't have permission to do that in this collaboration.",
  rule_denied: "A rule set by this collaboration's owner doesn't allow that.",
  not_found: "We couldn't find that. It may have been removed, or you may no longer be a member.",
  version_conflict:
    'Someone else changed this collaboration at the same time. You now see the latest version, so please try again.',
  invalid_transition: "That isn't possible in the current state of things.",
  conflict: 'That has already been decided by someone else.',
  payload_too_large: 'That is too large to send. Please shorten it and try again.',
  document_too_large: 'This collaboration has reached its size limit. Remove something before adding more.',
  validation_failed: 'Some of the information needs fixing:',
  rate_limited: "You're doing that too often. Please wait a moment and try again.",
  unavailable: 'The service is starting up or briefly unavailable. Please try again in a moment.',
  internal: 'Something went wrong on our side. Please try again in a moment.',
  network: "Can't reach the server. Check your connection and try again.",
};

const FIELD_NAMES: Record<string, string> = {
  title: 'Title',
  description: 'Description',
  email: 'Email',
  role: 'Role',
  text: 'Message',
  message: 'Message',
  reason: 'Reason',
  scheduledFor: 'Date and time',
  dueAt: 'Due date',
  activityId: 'Activity',
  userId: 'Member',
  assigneeId: 'Assignee',
};

export function fieldLabel(path: string): string {
  const last = path.split('.').filter((part) => part && part !== 'payload' && part !== 'body').pop();
  if (!last) return 'Request';
  return FIELD_NAMES[last] ?? last;
}

function readFields(details: Record<string, unknown>, label: (path: string) => string = fieldLabel): FieldProblem[] {
  const raw = details.fields ?? details.errors;
  const problems: FieldProblem[] = [];
  if (Array.isArray(raw)) {
    for (const item of raw) {
      if (!item || typeof item !== 'object') continue;
      const record = item as Record<string, unknown>;
      const path = record.path ?? record.field ?? record.loc ?? '';
      const message = record.message ?? record.msg ?? 'is not valid';
      problems.push({
        field: label(Array.isArray(path) ? path.join('.') : String(path)),
        message: String(message),
      });
    }
  } else if (raw && typeof raw === 'object') {
    for (const [path, message] of Object.entries(raw as Record<string, unknown>)) {
      problems.push({ field: label(path), message: String(message) });
    }
  }
  return problems;
}

function sentence(text: string): string {
  const trimmed = text.trim();
  return /[.!?…]$/.test(trimmed) ? trimmed : `${trimmed}.`;
}

function plural(n: number, unit: string): string {
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}

export function formatWait(seconds: number): string {
  const s = Math.max(1, Math.ceil(seconds));
  if (s < 90) return plural(s, 'second');
  return plural(Math.ceil(s / 60), 'minute');
}

export type DescribeOptions = {
  /** Names a validation_failed path in words (default: the payload field's name, e.g. "Title"). */
  fieldLabel?: (path: string) => string;
};

export function describeError(error: unknown, options: DescribeOptions = {}): ErrorDescription {
  if (!(error instanceof ApiError)) {
    const text = error instanceof Error ? error.message : String(error);
    return { code: 'unknown', message: text || SENTENCES.internal!, detail: null, fields: [], retryAfter: null };
  }
  const fields = error.code === 'validation_failed' ? readFields(error.details, options.fieldLabel) : [];
  let message = SENTENCES[error.code] ?? (error.message || SENTENCES.internal!);
  if (error.code === 'rate_limited' && error.retryAfter) {
    message = `You're doing that too often. Please try again in ${formatWait(error.retryAfter)}.`;
  }
  if (error.code === 'rule_denied') {
    const ruleMessage = typeof error.details.message === 'string' ? error.details.message : error.message;
    if (ruleMessage) message = `${SENTENCES.rule_denied!.slice(0, -1)}: ${ruleMessage}`;
  }
  if (error.code === 'invalid_transition' && error.message) {
    // The server says what isn't possible ("The last owner cannot leave."): that is the sentence.
    return { code: error.code, message: sentence(error.message), detail: null, fields, retryAfter: null };
  }
  if (error.code === 'validation_failed' && fields.length === 0) {
    return { code: error.code, message: 'Some of the information needs fixing.', detail: error.message || null, fields, retryAfter: null };
  }
  const showDetail = !['internal', 'network', 'unauthenticated', 'rule_denied', 'validation_failed', 'rate_limited'].includes(
    error.code,
  );
  const detail = showDetail && error.message && error.message !== message ? error.message : null;
  return { code: error.code, message, detail, fields, retryAfter: error.retryAfter };
}
