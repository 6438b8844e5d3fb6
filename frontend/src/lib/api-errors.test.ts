import { describe, expect, it } from 'vitest';

import { ApiError } from './api-client';
import { describeError } from './api-errors';

const error = (status: number, code: string, message = '', details: Record<string, unknown> = {}, retryAfter: number | null = null) =>
  new ApiError(status, { code, message, details }, retryAfter);

describe('describeError', () => {
  it('has a sentence for every error code of the API', () => {
    // invalid_transition is the exception: the server's own sentence says what isn't possible (below).
    const codes = [
      'invalid_request', 'unauthenticated', 'forbidden', 'rule_denied', 'not_found', 'version_conflict',
      'payload_too_large', 'document_too_large', 'validation_failed', 'rate_limited', 'internal',
    ];
    const sentences = new Set<string>();
    for (const code of codes) {
      const { message } = describeError(error(400, code, 'raw server text'));
      expect(message).not.toBe('raw server text');
      expect(message.length).toBeGreaterThan(10);
      sentences.add(message);
    }
    expect(sentences.size).toBe(codes.length);
  });

  it('lists the failing fields of validation_failed', () => {
    const described = describeError(
      error(422, 'validation_failed', 'payload.title: too long', {
        fields: [
          { path: 'payload.title', message: 'Expected `str` of length <= 200' },
          { path: 'payload.scheduledFor', message: 'Invalid datetime' },
        ],
      }),
    );
    expect(described.fields).toEqual([
      { field: 'Title', message: 'Expected `str` of length <= 200' },
      { field: 'Date and time', message: 'Invalid datetime' },
    ]);
  });

  it('says how long to wait when rate limited', () => {
    expect(describeError(error(429, 'rate_limited', '', {}, 12)).message).toBe(
      "You're doing that too often. Please try again in 12 seconds.",
    );
    expect(describeError(error(429, 'rate_limited', '', {}, 1)).message).toContain('1 second.');
  });

  it("quotes the owner's rule when a rule refused", () => {
    const described = describeError(error(403, 'rule_denied', 'No cancelling on weekends', { ruleId: 'rul_1', message: 'No cancelling on weekends' }));
    expect(described.message).toBe("A rule set by this collaboration's owner doesn't allow that: No cancelling on weekends");
  });

  it('keeps the server explanation as a detail where it helps', () => {
    const described = describeError(error(403, 'forbidden', 'Only owners add members.'));
    expect(described.detail).toBe('Only owners add members.');
    expect(describeError(error(500, 'internal', 'Traceback...')).detail).toBeNull();
  });

  it("makes the server's message the sentence of invalid_transition, with no unrelated example", () => {
    const described = describeError(error(409, 'invalid_transition', 'The last owner cannot leave the collaboration.', { from: 'owner' }));
    expect(described.message).toBe('The last owner cannot leave the collaboration.');
    expect(described.message).not.toMatch(/for example|cancelled/);
    expect(described.detail).toBeNull();
    expect(describeError(error(409, 'invalid_transition', 'The collaboration is archived')).message).toBe('The collaboration is archived.');
    // Without a message from the server, a general sentence.
    expect(describeError(error(409, 'invalid_transition', '')).message).toBe("That isn't possible in the current state of things.");
  });

  it('explains network failures', () => {
    expect(describeError(error(0, 'network', 'TypeError: fetch failed')).message).toMatch(/can't reach the server/i);
  });
});
