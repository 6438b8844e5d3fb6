import { describe, expect, it } from 'vitest';

import {
  conditionInWords,
  fieldsFor,
  fromRuleJson,
  kindsFor,
  newCondition,
  ruleInWords,
  targetOf,
  toRuleJson,
  withAction,
  type BuiltRule,
  type Condition,
} from './rule-builder-model';
import { ruleActions } from './rule-vocabulary';

const weekend: BuiltRule = {
  name: 'Nobody schedules on weekends',
  action: 'scheduleActivity',
  who: 'any',
  conditions: [{ kind: 'weekday', field: 'payload.scheduledFor', days: [7, 6] }],
  effect: { kind: 'deny', message: 'We do not schedule on weekends.' },
};

describe('the rule builder model', () => {
  it("writes the weekend rule exactly as docs/rules.md's example, and says it in plain words", () => {
    expect(toRuleJson(weekend)).toEqual({
      name: 'Nobody schedules on weekends',
      when: { action: 'scheduleActivity', actor: 'any' },
      if: { in: [{ weekday: { var: 'payload.scheduledFor' } }, [6, 7]] },
      then: { deny: { message: 'We do not schedule on weekends.' } },
    });
    expect(ruleInWords(weekend)).toBe(
      'Nobody may schedule an activity on a Saturday or Sunday. They are told: “We do not schedule on weekends.”',
    );
  });

  it('turns "members of a role" into actor "user" and an actor.role test first, and guards optional dates against null', () => {
    const rule: BuiltRule = {
      name: 'Editors propose nothing due soon',
      action: 'proposeActivity',
      who: 'editor',
      conditions: [
        { kind: 'before', field: 'payload.dueAt', date: '2027-01-04' },
        { kind: 'contains', field: 'payload.description', text: 'Urgent' },
        { kind: 'count', field: 'collaboration.memberCount', op: 'more', n: 3 },
      ],
      effect: { kind: 'approval', reason: '' },
    };
    const json = toRuleJson(rule);
    expect(json).toEqual({
      name: 'Editors propose nothing due soon',
      when: { action: 'proposeActivity', actor: 'user' },
      if: {
        and: [
          { '==': [{ var: 'actor.role' }, 'editor'] },
          { '!=': [{ var: 'payload.dueAt' }, null] },
          { '<': [{ var: 'payload.dueAt' }, { date: '2027-01-04T00:00:00Z' }] },
          { contains: [{ lower: { var: ['payload.description', ''] } }, 'urgent'] },
          { '>': [{ var: 'collaboration.memberCount' }, 3] },
        ],
      },
      then: { require_approval: {} },
    });
    expect(ruleInWords(rule)).toBe(
      'When an editor proposes an activity due before 4 January 2027 and with “urgent” in the description and while the collaboration has more than 3 members, an owner must approve it first.'
        .replace('“urgent”', '“Urgent”'),
    );
    expect(fromRuleJson(json)).toEqual({ ...rule, conditions: [rule.conditions[0], { ...rule.conditions[1], text: 'urgent' }, rule.conditions[2]] });
  });

  it('counts members, activities or open activities, more than / at least / fewer than N, and reads each back', () => {
    const cases: Array<[Condition, unknown, string]> = [
      [{ kind: 'count', field: 'collaboration.activityCount', op: 'more', n: 20 }, { '>': [{ var: 'collaboration.activityCount' }, 20] }, 'while the collaboration has more than 20 activities'],
      [{ kind: 'count', field: 'collaboration.openActivityCount', op: 'atLeast', n: 5 }, { '>=': [{ var: 'collaboration.openActivityCount' }, 5] }, 'while the collaboration has at least 5 open activities'],
      [{ kind: 'count', field: 'collaboration.memberCount', op: 'fewer', n: 2 }, { '<': [{ var: 'collaboration.memberCount' }, 2] }, 'while the collaboration has fewer than 2 members'],
    ];
    for (const [condition, part, words] of cases) {
      const rule: BuiltRule = { name: 'n', action: 'sendMessage', who: 'any', conditions: [condition], effect: { kind: 'deny', message: 'x' } };
      expect(toRuleJson(rule).if).toEqual(part);
      expect(conditionInWords(condition)).toBe(words);
      expect(fromRuleJson(toRuleJson(rule))).toEqual(rule);
    }
    // Every action offers the counts (they are the collaboration's), members first.
    expect(fieldsFor('count', 'proposeActivity')).toEqual(['collaboration.memberCount', 'collaboration.activityCount', 'collaboration.openActivityCount']);
    expect(newCondition('count', 'archiveCollaboration')).toEqual({ kind: 'count', field: 'collaboration.memberCount', op: 'more', n: 5 });
    // A count the builder does not offer, or a number that is not a whole one, is JSON only.
    const other = (part: unknown) => fromRuleJson({ name: 'n', when: { action: 'sendMessage' }, if: part, then: { deny: { message: 'x' } } });
    expect(other({ '>': [{ var: 'collaboration.version' }, 3] })).toBeNull();
    expect(other({ '>=': [{ var: 'collaboration.activityCount' }, 2.5] })).toBeNull();
    expect(other({ '<=': [{ var: 'collaboration.activityCount' }, 2] })).toBeNull();
  });

  it('reads back what it writes, whatever the key order, and refuses what the controls cannot show', () => {
    const followUp: BuiltRule = {
      name: 'Thanks',
      action: 'completeActivity',
      who: 'any',
      conditions: [],
      effect: { kind: 'message', text: 'Thanks for finishing it!' },
    };
    for (const rule of [weekend, followUp, { ...weekend, who: 'ai' as const }, { ...followUp, effect: { kind: 'propose' as const, title: 'Celebrate' } }]) {
      const json = toRuleJson(rule);
      const back = fromRuleJson(JSON.parse(JSON.stringify(json)));
      expect(back && toRuleJson(back)).toEqual(json);
    }
    expect(fromRuleJson({ then: { deny: { message: 'x' } }, if: { in: [{ weekday: { var: 'payload.scheduledFor' } }, [6, 7]] }, when: { actor: 'any', action: 'scheduleActivity' }, name: 'n' })).toMatchObject({ name: 'n', conditions: [{ kind: 'weekday', days: [6, 7] }] });
    expect(fromRuleJson({ name: 'n', when: { action: 'scheduleActivity' }, then: { deny: { message: 'x' } } })).toMatchObject({ who: 'any', conditions: [] });
    // More than the controls say: an operator they do not write, an unguarded optional date, an unknown field, an exempt action.
    expect(fromRuleJson({ name: 'n', when: { action: 'sendMessage' }, if: { '>': [{ len: { var: 'payload.text' } }, 5] }, then: { deny: { message: 'x' } } })).toBeNull();
    expect(fromRuleJson({ name: 'n', when: { action: 'proposeActivity' }, if: { '<': [{ var: 'payload.dueAt' }, { date: '2027-01-01T00:00:00Z' }] }, then: { deny: { message: 'x' } } })).toBeNull();
    expect(fromRuleJson({ ...toRuleJson(weekend), id: 'rul_1' })).toBeNull();
    expect(fromRuleJson({ ...toRuleJson(weekend), when: { action: 'addRule' } })).toBeNull();
    expect(fromRuleJson('not a rule')).toBeNull();
  });

  it('offers the catalogue less the actions no rule applies to, and only conditions that fit the action', () => {
    expect(ruleActions()).not.toContain('addRule');
    expect(ruleActions()).not.toContain('leaveCollaboration');
    expect(ruleActions()).toContain('scheduleActivity');
    expect(kindsFor('completeActivity')).toEqual(['weekday', 'before', 'after', 'role', 'count']);
    expect(kindsFor('sendMessage')).toContain('contains');
    // Moving to an action without the field swaps it for one the action has.
    expect(withAction(weekend, 'sendMessage').conditions).toEqual([{ kind: 'weekday', field: 'now', days: [7, 6] }]);
    expect(withAction({ ...weekend, conditions: [{ kind: 'contains', field: 'payload.text', text: 'x' }] }, 'scheduleActivity').conditions).toEqual([]);
  });

  it("puts the server's validation problems at the control they concern", () => {
    const rule: BuiltRule = { ...weekend, who: 'editor', conditions: [weekend.conditions[0]!, { kind: 'before', field: 'now', date: '' }] };
    expect(targetOf('payload.rule.name', rule)).toBe('name');
    expect(targetOf('payload.rule.when.action', rule)).toBe('action');
    expect(targetOf('payload.rule.then.deny.message', rule)).toBe('effect');
    expect(targetOf('payload.rule.if.and.0.==.1', rule)).toBe('who');
    expect(targetOf('payload.rule.if.and.1.in.0', rule)).toEqual({ condition: 0 });
    expect(targetOf('payload.rule.if.and.2.<.1.date.0', rule)).toEqual({ condition: 1 });
    expect(targetOf('payload.rule.if.in.0', weekend)).toEqual({ condition: 0 });
    expect(targetOf('payload.rule', weekend)).toBe('rule');
  });
});
