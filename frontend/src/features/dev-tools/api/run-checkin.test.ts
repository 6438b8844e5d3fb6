import { describe, expect, it } from 'vitest';

import { describeCheckin } from './run-checkin';

describe('describeCheckin', () => {
  it('counts in the singular for one and the plural otherwise', () => {
    expect(describeCheckin({ collaborations: 1, actionsRun: 1, approvalsMade: 1, invalidProposals: 0 })).toBe(
      'AI check-in finished: 1 collaboration checked, 1 action run, 1 sent for approval, 0 invalid proposals.',
    );
    expect(describeCheckin({ collaborations: 3, actionsRun: 2, approvalsMade: 0, invalidProposals: 1 })).toBe(
      'AI check-in finished: 3 collaborations checked, 2 actions run, 0 sent for approval, 1 invalid proposal.',
    );
  });

  it('reads the counters the server sends (the invalid breakdown is an object, not a count)', () => {
    expect(describeCheckin({ collaborations: 2, invalidProposals: 0, invalid: { malformed: 0 } })).toBe(
      'AI check-in finished: 2 collaborations checked, 0 invalid proposals.',
    );
    expect(describeCheckin({})).toBe('AI check-in finished.');
  });
});
