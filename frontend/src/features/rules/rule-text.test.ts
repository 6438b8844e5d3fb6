import { describe, expect, it } from 'vitest';

import type { Rule } from '@/types/api';

import { describeEffect, describeWhen, rulePathLabel } from './rule-text';

describe('rulePathLabel', () => {
  it('names the places of validation problems in words', () => {
    expect(rulePathLabel('payload.rule.if.and.1.>=.0')).toBe('Condition › “and”, argument 2 › “>=”, argument 1');
    expect(rulePathLabel('payload.rule.name')).toBe('Name');
    expect(rulePathLabel('payload.rule.when.action')).toBe('When › action');
    expect(rulePathLabel('payload.rule.then.deny.message')).toBe('Effect › refuse › message');
    expect(rulePathLabel('payload.rule.then.action.payload.text.cat.1')).toBe('Effect › action › payload › “text” › “cat”, argument 2');
    expect(rulePathLabel('payload.rule.foo')).toBe('“foo”');
    expect(rulePathLabel('payload.rule')).toBe('The rule');
    expect(rulePathLabel('rules')).toBe("This collaboration's rules");
    expect(rulePathLabel('rules.3.id')).toBe('Rule 4 › id');
  });
});

describe('describeWhen / describeEffect', () => {
  const rule: Rule = {
    id: 'rul_1',
    name: 'No weekends',
    enabled: true,
    when: { action: 'scheduleActivity', actor: 'any' },
    if: { in: [{ weekday: { var: 'payload.scheduledFor' } }, [6, 7]] },
    then: { deny: { message: 'We do not schedule on weekends.' } },
  };

  it('says when a rule applies and what it does', () => {
    expect(describeWhen(rule)).toBe('Schedule an activity, by anyone, when its condition holds');
    expect(describeEffect(rule)).toBe('Refuse: “We do not schedule on weekends.”');
    expect(describeWhen({ ...rule, when: { action: '*', actor: 'ai' }, if: undefined })).toBe('Any action, by the AI');
    expect(describeEffect({ ...rule, then: { require_approval: {} } })).toBe('Ask an owner to approve');
    expect(describeEffect({ ...rule, then: { action: { name: 'sendMessage', payload: {} } } })).toBe('Then: Send a message');
  });
});
