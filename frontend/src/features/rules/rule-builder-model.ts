// The rule builder's model: a rule made of controls (when, by whom, conditions, effect), the
// JSON of docs/rules.md it stands for, the way back from that JSON, the rule in plain words,
// and where a validation problem of the server belongs among the controls.
// (Over 300 lines: the four translations, controls to JSON, JSON to controls, plain words and
// problem placement, walk the same condition kinds and stay in step only side by side.)

import type { Role } from '@/types/api';
import { actionLabel } from '@/utils/describe-action';

import { payloadFields, RULE_COUNTS, ruleActions } from './rule-vocabulary';

export type Who = 'any' | 'user' | 'ai' | Role;
export type CountOp = 'more' | 'atLeast' | 'fewer';

export type Condition =
  | { kind: 'weekday'; field: string; days: number[] }
  | { kind: 'before' | 'after'; field: string; date: string } // date: YYYY-MM-DD (UTC midnight)
  | { kind: 'contains'; field: string; text: string }
  | { kind: 'role'; field: string; role: Role }
  | { kind: 'count'; field: string; op: CountOp; n: number }; // field: a RULE_COUNTS variable

export type ConditionKind = Condition['kind'];

export type Effect =
  | { kind: 'deny'; message: string }
  | { kind: 'approval'; reason: string }
  | { kind: 'message'; text: string }
  | { kind: 'propose'; title: string };

export type EffectKind = Effect['kind'];

export type BuiltRule = { name: string; action: string; who: Who; conditions: Condition[]; effect: Effect };

export const WHO_OPTIONS: ReadonlyArray<{ value: Who; label: string }> = [
  { value: 'any', label: 'Anyone' },
  { value: 'user', label: 'Any person (not the AI)' },
  { value: 'owner', label: 'Owners' },
  { value: 'editor', label: 'Editors' },
  { value: 'viewer', label: 'Viewers' },
  { value: 'ai', label: 'The AI' },
];

export const CONDITION_KINDS: ReadonlyArray<{ value: ConditionKind; label: string }> = [
  { value: 'weekday', label: 'A date falls on certain weekdays' },
  { value: 'before', label: 'A date is before…' },
  { value: 'after', label: 'A date is after…' },
  { value: 'contains', label: 'A text contains…' },
  { value: 'role', label: 'A role is…' },
  { value: 'count', label: 'The number of members or activities is…' },
];

export const EFFECT_KINDS: ReadonlyArray<{ value: EffectKind; label: string }> = [
  { value: 'deny', label: 'Refuse it, with a message' },
  { value: 'approval', label: 'Ask an owner to approve it first' },
  { value: 'message', label: 'Follow it with a message' },
  { value: 'propose', label: 'Follow it by proposing an activity' },
];

export const COUNT_OPS: ReadonlyArray<{ value: CountOp; label: string; operator: '>' | '>=' | '<' }> = [
  { value: 'more', label: 'more than', operator: '>' },
  { value: 'atLeast', label: 'at least', operator: '>=' },
  { value: 'fewer', label: 'fewer than', operator: '<' },
];

export const WEEKDAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'] as const;

const ROLE_VALUES: readonly Role[] = ['owner', 'editor', 'viewer'];
const TEXT_FIELDS = ['title', 'description', 'text', 'reason', 'email'];

type FieldInfo = { label: string; weekday: string; before: string; after: string };

/** Variables the conditions name, in words. Phrases take the days / the date. */
const FIELD_INFO: Record<string, FieldInfo> = {
  'payload.scheduledFor': { label: 'the time it is scheduled for', weekday: 'on %', before: 'for a time before %', after: 'for a time after %' },
  'payload.dueAt': { label: 'its due date', weekday: 'due on %', before: 'due before %', after: 'due after %' },
  now: { label: 'the day it happens', weekday: 'while it is %', before: 'before %', after: 'after %' },
  'payload.title': { label: 'the title', weekday: '', before: '', after: '' },
  'payload.description': { label: 'the description', weekday: '', before: '', after: '' },
  'payload.text': { label: 'the message', weekday: '', before: '', after: '' },
  'payload.reason': { label: 'the reason', weekday: '', before: '', after: '' },
  'payload.email': { label: 'the email address', weekday: '', before: '', after: '' },
  'actor.role': { label: 'the role of whoever does it', weekday: '', before: '', after: '' },
  'payload.role': { label: 'the role it gives', weekday: '', before: '', after: '' },
  'collaboration.memberCount': { label: 'members', weekday: '', before: '', after: '' },
  'collaboration.activityCount': { label: 'activities (any status)', weekday: '', before: '', after: '' },
  'collaboration.openActivityCount': { label: 'open activities (proposed or scheduled)', weekday: '', before: '', after: '' },
};

export function fieldLabel(path: string): string {
  return FIELD_INFO[path]?.label ?? path;
}

/** The variables a condition of `kind` can look at in a rule on `action`. */
export function fieldsFor(kind: ConditionKind, action: string): string[] {
  const payload = payloadFields(action);
  switch (kind) {
    case 'weekday':
    case 'before':
    case 'after':
      return [...Object.keys(payload).filter((name) => payload[name]!.type === 'date').map((name) => `payload.${name}`), 'now'];
    case 'contains':
      return Object.keys(payload)
        .filter((name) => payload[name]!.type === 'string' && TEXT_FIELDS.includes(name))
        .map((name) => `payload.${name}`);
    case 'role':
      return ['actor.role', ...('role' in payload ? ['payload.role'] : [])];
    case 'count':
      return Object.keys(RULE_COUNTS);
  }
}

/** The condition kinds that make sense on `action` (a text condition needs a text field). */
export function kindsFor(action: string): ConditionKind[] {
  return CONDITION_KINDS.map((k) => k.value).filter((kind) => kind === 'count' || fieldsFor(kind, action).length > 0);
}

function isOptional(path: string, action: string): boolean {
  if (!path.startsWith('payload.')) return false;
  const field = payloadFields(action)[path.slice('payload.'.length)];
  return field ? !field.required : true;
}

export function newCondition(kind: ConditionKind, action: string): Condition {
  const field = fieldsFor(kind, action)[0] ?? '';
  switch (kind) {
    case 'weekday':
      return { kind, field, days: [6, 7] };
    case 'before':
    case 'after':
      return { kind, field, date: '' };
    case 'contains':
      return { kind, field, text: '' };
    case 'role':
      return { kind, field, role: 'editor' };
    case 'count':
      return { kind, field, op: 'more', n: 5 };
  }
}

export function newEffect(kind: EffectKind, previous?: Effect): Effect {
  const words = previous ? effectText(previous) : '';
  switch (kind) {
    case 'deny':
      return { kind, message: words };
    case 'approval':
      return { kind, reason: words };
    case 'message':
      return { kind, text: words };
    case 'propose':
      return { kind, title: words };
  }
}

export function effectText(effect: Effect): string {
  switch (effect.kind) {
    case 'deny':
      return effect.message;
    case 'approval':
      return effect.reason;
    case 'message':
      return effect.text;
    case 'propose':
      return effect.title;
  }
}

export function emptyRule(): BuiltRule {
  return { name: '', action: 'scheduleActivity', who: 'any', conditions: [], effect: { kind: 'deny', message: '' } };
}

/** A condition that moves with the action: fields the new action lacks are swapped for one it has. */
export function withAction(rule: BuiltRule, action: string): BuiltRule {
  const conditions = rule.conditions
    .filter((c) => kindsFor(action).includes(c.kind))
    .map((c) => ('field' in c && !fieldsFor(c.kind, action).includes(c.field) ? { ...c, field: fieldsFor(c.kind, action)[0]! } : c));
  return { ...rule, action, conditions };
}

// ---- to JSON ----------------------------------------------------------------------------

type Json = unknown;

function variable(path: string, fallback?: string): Json {
  return fallback === undefined ? { var: path } : { var: [path, fallback] };
}

/** "2027-01-04" → "2027-01-04T00:00:00Z" (a date is an instant; midnight UTC). */
function instant(date: string): string {
  return /^\d{4}-\d{2}-\d{2}$/.test(date) ? `${date}T00:00:00Z` : date;
}

/** One condition's parts of the rule's "and" (an optional date field is checked for null first). */
function conditionParts(condition: Condition, action: string): Json[] {
  switch (condition.kind) {
    case 'weekday':
    case 'before':
    case 'after': {
      const guard = isOptional(condition.field, action) ? [{ '!=': [variable(condition.field), null] }] : [];
      const test =
        condition.kind === 'weekday'
          ? { in: [{ weekday: variable(condition.field) }, [...condition.days].sort((a, b) => a - b)] }
          : { [condition.kind === 'before' ? '<' : '>']: [variable(condition.field), { date: instant(condition.date) }] };
      return [...guard, test];
    }
    case 'contains': {
      const value = isOptional(condition.field, action) ? variable(condition.field, '') : variable(condition.field);
      return [{ contains: [{ lower: value }, condition.text.toLowerCase()] }];
    }
    case 'role':
      return [{ '==': [variable(condition.field), condition.role] }];
    case 'count':
      return [{ [countOperator(condition.op)]: [variable(condition.field), condition.n] }];
  }
}

function countOperator(op: CountOp): string {
  return COUNT_OPS.find((o) => o.value === op)!.operator;
}

/** Which control each part of the rule's "and" came from: 'who' or a condition's index. */
function partOwners(rule: BuiltRule): Array<'who' | number> {
  const owners: Array<'who' | number> = ROLE_VALUES.includes(rule.who as Role) ? ['who'] : [];
  rule.conditions.forEach((condition, index) => {
    for (const _ of conditionParts(condition, rule.action)) owners.push(index);
  });
  return owners;
}

function effectJson(effect: Effect): Record<string, Json> {
  switch (effect.kind) {
    case 'deny':
      return { deny: { message: effect.message } };
    case 'approval':
      return { require_approval: effect.reason.trim() ? { reason: effect.reason } : {} };
    case 'message':
      return { action: { name: 'sendMessage', payload: { text: effect.text } } };
    case 'propose':
      return { action: { name: 'proposeActivity', payload: { title: effect.title } } };
  }
}

/** The rule as the server takes it (docs/rules.md). */
export function toRuleJson(rule: BuiltRule): Record<string, Json> {
  const parts: Json[] = [];
  const byRole = ROLE_VALUES.includes(rule.who as Role);
  if (byRole) parts.push({ '==': [variable('actor.role'), rule.who] });
  for (const condition of rule.conditions) parts.push(...conditionParts(condition, rule.action));
  const json: Record<string, Json> = {
    name: rule.name,
    when: { action: rule.action, actor: byRole ? 'user' : rule.who },
  };
  if (parts.length === 1) json.if = parts[0];
  if (parts.length > 1) json.if = { and: parts };
  json.then = effectJson(rule.effect);
  return json;
}

// ---- from JSON --------------------------------------------------------------------------

type Obj = Record<string, unknown>;

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function only(value: unknown, ...keys: string[]): value is Obj {
  return isObject(value) && Object.keys(value).every((key) => keys.includes(key));
}

/** The operator of `{op: args}` and its arguments as a list. */
function operator(value: unknown): [string, unknown[]] | null {
  if (!isObject(value)) return null;
  const keys = Object.keys(value);
  if (keys.length !== 1) return null;
  const args = value[keys[0]!];
  return [keys[0]!, Array.isArray(args) ? args : [args]];
}

/** The path of `{"var": path}` (or `{"var": [path, fallback]}` when `fallback` is allowed). */
function varPath(value: unknown, fallback?: unknown): string | null {
  const op = operator(value);
  if (!op || op[0] !== 'var') return null;
  const [path, ...rest] = op[1];
  if (typeof path !== 'string') return null;
  if (rest.length === 0) return path;
  if (rest.length === 1 && fallback !== undefined && rest[0] === fallback) return path;
  return null;
}

function dateLiteral(value: unknown): string | null {
  const op = operator(value);
  if (!op || op[0] !== 'date' || typeof op[1][0] !== 'string') return null;
  const match = /^(\d{4}-\d{2}-\d{2})(T00:00(:00(\.0+)?)?(Z|\+00:00))?$/.exec(op[1][0]);
  return match ? match[1]! : null;
}

function isNullGuard(part: unknown, path: string): boolean {
  const op = operator(part);
  return !!op && op[0] === '!=' && op[1].length === 2 && varPath(op[1][0]) === path && op[1][1] === null;
}

function parseCondition(part: unknown, action: string): Condition | null {
  const op = operator(part);
  if (!op) return null;
  const [name, args] = op;
  if (name === 'in' && args.length === 2) {
    const inner = operator(args[0]);
    const days = args[1];
    if (!inner || inner[0] !== 'weekday' || !Array.isArray(days) || days.length === 0) return null;
    const field = varPath(inner[1][0]);
    if (!field || !days.every((d) => Number.isInteger(d) && (d as number) >= 1 && (d as number) <= 7)) return null;
    if (!fieldsFor('weekday', action).includes(field)) return null;
    return { kind: 'weekday', field, days: [...new Set(days as number[])].sort((a, b) => a - b) };
  }
  const count = COUNT_OPS.find((o) => o.operator === name);
  if (count && args.length === 2) {
    const field = varPath(args[0]);
    if (field && field in RULE_COUNTS && Number.isInteger(args[1]) && (args[1] as number) >= 0) {
      return { kind: 'count', field, op: count.value, n: args[1] as number };
    }
  }
  if ((name === '<' || name === '>') && args.length === 2) {
    const field = varPath(args[0]);
    const date = dateLiteral(args[1]);
    if (!field || !date || !fieldsFor('before', action).includes(field)) return null;
    return { kind: name === '<' ? 'before' : 'after', field, date };
  }
  if (name === 'contains' && args.length === 2) {
    const lower = operator(args[0]);
    if (!lower || lower[0] !== 'lower' || typeof args[1] !== 'string' || args[1] !== args[1].toLowerCase()) return null;
    const field = varPath(lower[1][0], '');
    if (!field || !fieldsFor('contains', action).includes(field)) return null;
    return { kind: 'contains', field, text: args[1] };
  }
  if (name === '==' && args.length === 2) {
    const field = varPath(args[0]);
    if (!field || !fieldsFor('role', action).includes(field) || !ROLE_VALUES.includes(args[1] as Role)) return null;
    return { kind: 'role', field, role: args[1] as Role };
  }
  return null;
}

function parseEffect(then: unknown): Effect | null {
  if (!isObject(then) || Object.keys(then).length !== 1) return null;
  if (only(then.deny, 'message') && typeof then.deny.message === 'string') return { kind: 'deny', message: then.deny.message };
  if (only(then.require_approval, 'reason')) {
    const reason = then.require_approval.reason;
    if (reason === undefined || typeof reason === 'string') return { kind: 'approval', reason: reason ?? '' };
  }
  if (only(then.action, 'name', 'payload') && isObject(then.action.payload)) {
    const { name, payload } = then.action;
    if (name === 'sendMessage' && only(payload, 'text') && typeof payload.text === 'string') return { kind: 'message', text: payload.text };
    if (name === 'proposeActivity' && only(payload, 'title') && typeof payload.title === 'string') return { kind: 'propose', title: payload.title };
  }
  return null;
}

/**
 * The controls for a rule written as JSON, or null when it says something the controls cannot
 * (then it is edited as JSON only). The exact inverse of toRuleJson.
 */
export function fromRuleJson(json: unknown): BuiltRule | null {
  if (!only(json, 'name', 'when', 'if', 'then', 'enabled')) return null;
  if (json.enabled !== undefined && json.enabled !== true) return null;
  if (typeof json.name !== 'string' || !only(json.when, 'action', 'actor')) return null;
  const action = json.when.action;
  const actor = json.when.actor ?? 'any';
  if (typeof action !== 'string' || !ruleActions().includes(action)) return null;
  if (actor !== 'any' && actor !== 'user' && actor !== 'ai') return null;
  const effect = parseEffect(json.then);
  if (!effect) return null;

  let parts: unknown[] = [];
  if (json.if !== undefined && json.if !== true) {
    const op = operator(json.if);
    parts = op && op[0] === 'and' ? op[1] : [json.if];
  }
  let who: Who = actor;
  if (actor === 'user' && parts.length > 0) {
    const first = operator(parts[0]);
    if (first && first[0] === '==' && varPath(first[1][0]) === 'actor.role' && ROLE_VALUES.includes(first[1][1] as Role)) {
      who = first[1][1] as Role;
      parts = parts.slice(1);
    }
  }
  const conditions: Condition[] = [];
  for (let index = 0; index < parts.length; index += 1) {
    let part = parts[index];
    const guarded = operator(part);
    if (guarded && guarded[0] === '!=' && index + 1 < parts.length) {
      const path = varPath(guarded[1][0]);
      if (path && isNullGuard(part, path)) {
        index += 1;
        part = parts[index];
      }
    }
    const condition = parseCondition(part, action);
    if (!condition) return null;
    conditions.push(condition);
  }
  const rule: BuiltRule = { name: json.name, action, who, conditions, effect };
  // Only what the controls would write back the same way (a guard where it belongs, and only there).
  return canonical(toRuleJson(rule)) === canonical(normalise(json)) ? rule : null;
}

/** JSON with every object's keys sorted: the same rule, however its keys were ordered. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (isObject(value)) {
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The JSON as toRuleJson would order it (enabled: true and actor "any" are the defaults). */
function normalise(json: Obj): Obj {
  const when = json.when as Obj;
  const out: Obj = { name: json.name, when: { action: when.action, actor: when.actor ?? 'any' } };
  if (json.if !== undefined && json.if !== true) out.if = json.if;
  out.then = json.then;
  return out;
}

// ---- in words ---------------------------------------------------------------------------

function joinOr(words: string[]): string {
  return words.length <= 1 ? (words[0] ?? '') : `${words.slice(0, -1).join(', ')} or ${words[words.length - 1]}`;
}

export function daysInWords(days: number[]): string {
  const names = [...days].sort((a, b) => a - b).map((d) => WEEKDAYS[d - 1] ?? `day ${d}`);
  return names.length ? `a ${joinOr(names)}` : 'no day at all';
}

function dateInWords(date: string): string {
  const parsed = new Date(instant(date));
  if (!date || Number.isNaN(parsed.getTime())) return 'a date still to choose';
  return parsed.toLocaleDateString('en-GB', { day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' });
}

function article(word: string): string {
  return /^[aeiou]/i.test(word) ? `an ${word}` : `a ${word}`;
}

export function conditionInWords(condition: Condition): string {
  switch (condition.kind) {
    case 'weekday':
    case 'before':
    case 'after': {
      const info = FIELD_INFO[condition.field];
      const value = condition.kind === 'weekday' ? daysInWords(condition.days) : dateInWords(condition.date);
      const template = info?.[condition.kind] || `when ${fieldLabel(condition.field)} is ${condition.kind === 'weekday' ? 'on' : condition.kind} %`;
      return template.replace('%', value);
    }
    case 'contains':
      return condition.field === 'payload.text'
        ? `containing “${condition.text}”`
        : `with “${condition.text}” in ${fieldLabel(condition.field)}`;
    case 'role':
      return condition.field === 'actor.role' ? `if they are ${article(condition.role)}` : `giving the role ${condition.role}`;
    case 'count': {
      const op = COUNT_OPS.find((o) => o.value === condition.op)?.label ?? condition.op;
      return `while the collaboration has ${op} ${condition.n} ${RULE_COUNTS[condition.field] ?? condition.field}`;
    }
  }
}

const WHO_SUBJECT: Record<Who, string> = { any: 'anyone', user: 'a person', ai: 'the AI', owner: 'an owner', editor: 'an editor', viewer: 'a viewer' };
const WHO_NOBODY: Record<Who, string> = {
  any: 'Nobody may',
  user: 'No person may',
  ai: 'The AI may not',
  owner: 'No owner may',
  editor: 'No editor may',
  viewer: 'No viewer may',
};

/** "Schedule an activity" → "schedule an activity"; third person: "schedules an activity". */
function verb(action: string, thirdPerson: boolean): string {
  const label = actionLabel(action);
  const phrase = label.charAt(0).toLowerCase() + label.slice(1);
  if (!thirdPerson) return phrase;
  const [first, ...rest] = phrase.split(' ');
  return [`${first}s`, ...rest].join(' ');
}

/** The rule in plain words: "Nobody may schedule an activity on a Saturday or Sunday." */
export function ruleInWords(rule: BuiltRule): string {
  const conditions = rule.conditions.map(conditionInWords).join(' and ');
  const tail = conditions ? ` ${conditions}` : '';
  const effect = rule.effect;
  if (effect.kind === 'deny') {
    const told = effect.message.trim() ? ` They are told: “${effect.message.trim()}”` : '';
    return `${WHO_NOBODY[rule.who]} ${verb(rule.action, false)}${tail}.${told}`;
  }
  const when = `When ${WHO_SUBJECT[rule.who]} ${verb(rule.action, true)}${tail}`;
  if (effect.kind === 'approval') {
    return `${when}, an owner must approve it first.${effect.reason.trim() ? ` The reason given: “${effect.reason.trim()}”` : ''}`;
  }
  if (effect.kind === 'message') return `${when}, Tandem then sends the message “${effect.text}”.`;
  return `${when}, Tandem then proposes the activity “${effect.title}”.`;
}

// ---- validation problems at their control -----------------------------------------------

export type Target = 'name' | 'action' | 'who' | 'effect' | 'rule' | { condition: number };

/**
 * Which control a validation_failed path of addRule concerns, for a rule built with the
 * controls: "payload.rule.if.and.2.in.0" is the "and"'s third part, which came from a condition.
 */
export function targetOf(path: string, rule: BuiltRule): Target {
  const segments = path.split('.').filter(Boolean);
  if (segments[0] === 'payload') segments.shift();
  if (segments[0] === 'rule') segments.shift();
  const [head, next, index] = segments;
  if (head === 'name') return 'name';
  if (head === 'when') return next === 'actor' ? 'who' : 'action';
  if (head === 'then') return 'effect';
  if (head === 'if') {
    const owners = partOwners(rule);
    const owner = next === 'and' && index !== undefined && /^\d+$/.test(index) && owners.length > 1 ? owners[Number(index)] : owners[0];
    if (owner === 'who') return 'who';
    if (typeof owner === 'number') return { condition: owner };
  }
  return 'rule';
}

export function targetKey(target: Target): string {
  return typeof target === 'string' ? target : `condition-${target.condition}`;
}
