// The rule builder's controls. (Over 300 lines: one small component per part of a rule, when,
// who, each condition kind and the effect, sharing the form's state; the model is
// rule-builder-model.ts.)

import { useId, useState, type FormEvent, type ReactNode } from 'react';

import { ErrorMessage } from '@/components/ui/error-message';
import { useMutation } from '@/hooks/use-mutation';
import { ApiError } from '@/lib/api-client';
import { announceOutcome } from '@/lib/run-action';
import type { Role, Rule } from '@/types/api';
import { actionLabel } from '@/utils/describe-action';
import { ROLES, roleLabel } from '@/utils/roles';

import { addRule } from '../api/add-rule';
import {
  CONDITION_KINDS,
  COUNT_OPS,
  EFFECT_KINDS,
  emptyRule,
  fieldLabel,
  fieldsFor,
  fromRuleJson,
  kindsFor,
  newCondition,
  newEffect,
  ruleInWords,
  targetKey,
  targetOf,
  toRuleJson,
  WEEKDAYS,
  WHO_OPTIONS,
  withAction,
  type BuiltRule,
  type Condition,
  type ConditionKind,
  type CountOp,
  type EffectKind,
  type Who,
} from '../rule-builder-model';
import { describeEffect, describeWhen, EXAMPLE_RULE, rulePathLabel } from '../rule-text';
import { ruleActions } from '../rule-vocabulary';

const EFFECT_INPUT: Record<EffectKind, string> = {
  deny: 'Message for whoever is refused',
  approval: 'Reason for the owners (optional)',
  message: 'Message to send',
  propose: 'Title of the activity to propose',
};

type Problems = Map<string, string[]>;

/** validation_failed problems of the rule that was sent, by the control they concern. */
function problemsOf(error: unknown, rule: BuiltRule | null): Problems {
  const problems: Problems = new Map();
  if (!rule || !(error instanceof ApiError) || error.code !== 'validation_failed') return problems;
  const fields = Array.isArray(error.details?.fields) ? (error.details.fields as Array<{ path?: unknown; message?: unknown }>) : [];
  for (const field of fields) {
    const key = targetKey(targetOf(String(field.path ?? ''), rule));
    problems.set(key, [...(problems.get(key) ?? []), String(field.message ?? 'is not valid')]);
  }
  return problems;
}

/**
 * Add a rule with controls (when, by whom, conditions, what happens), said in plain words
 * before it is saved. The JSON of docs/rules.md is the same rule's "advanced" view: editing
 * either updates the other; a rule the controls cannot show is edited as JSON only.
 */
export function RuleBuilder({ collaborationId }: { collaborationId: string }) {
  const [rule, setRule] = useState<BuiltRule>(emptyRule);
  // What is sent: the controls write it, or the person types it. '' until something is chosen.
  const [text, setText] = useState('');
  const [jsonOnly, setJsonOnly] = useState(false);
  const [showJson, setShowJson] = useState(false);
  const [parseError, setParseError] = useState<string | null>(null);
  const [sentRule, setSentRule] = useState<BuiltRule | null>(null);
  const add = useMutation(async (json: Record<string, unknown>) => {
    announceOutcome(await addRule(collaborationId, json), `Rule “${String(json.name ?? '')}” added.`);
    setRule(emptyRule());
    setText('');
    setJsonOnly(false);
  });
  const problems = problemsOf(add.error, sentRule);
  const id = useId();

  const change = (next: BuiltRule) => {
    setRule(next);
    setText(JSON.stringify(toRuleJson(next), null, 2));
    setJsonOnly(false);
    setParseError(null);
  };

  const editJson = (value: string) => {
    setText(value);
    setParseError(null);
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      return; // not JSON (yet): the controls keep the last rule they could read
    }
    const built = fromRuleJson(parsed);
    if (built) setRule(built);
    setJsonOnly(!built);
  };

  const submit = (event: FormEvent) => {
    event.preventDefault();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      setShowJson(true);
      setParseError(`That isn't valid JSON: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    if (!json || typeof json !== 'object' || Array.isArray(json)) {
      setShowJson(true);
      setParseError('A rule is a JSON object: {"name": …, "when": …, "if": …, "then": …}.');
      return;
    }
    setParseError(null);
    setSentRule(jsonOnly ? null : rule);
    void add.run(json as Record<string, unknown>);
  };

  const fillExample = () => editJson(JSON.stringify(EXAMPLE_RULE, null, 2));

  let inWords: string;
  if (!jsonOnly) inWords = ruleInWords(rule);
  else {
    try {
      const parsed = JSON.parse(text) as Rule;
      inWords = `${describeWhen(parsed)}. ${describeEffect(parsed)}.`;
    } catch {
      inWords = 'The JSON is not complete yet.';
    }
  }

  const problem = (key: string) => problems.get(key);
  const actions = ruleActions();

  return (
    <form className="stack tight add-rule rule-builder" onSubmit={submit} aria-label="Add a rule" noValidate>
      <h3>Add a rule</h3>
      {jsonOnly ? (
        <p className="muted small" role="status">
          This rule says more than the controls can show: edit it as JSON below.
        </p>
      ) : (
        <>
          <p className="muted small">Choose when the rule applies, optionally a condition, and what it does.</p>
          <Control label="Rule name" problems={problem('name')} id={`${id}-name`}>
            {(props) => (
              <input
                {...props}
                value={rule.name}
                maxLength={100}
                placeholder="Nobody schedules on weekends"
                onChange={(e) => change({ ...rule, name: e.target.value })}
              />
            )}
          </Control>
          <fieldset className="rule-part">
            <legend>When</legend>
            <div className="row wrap">
              <Control label="Someone does" problems={problem('action')} id={`${id}-action`}>
                {(props) => (
                  <select {...props} value={rule.action} onChange={(e) => change(withAction(rule, e.target.value))}>
                    {actions.map((action) => (
                      <option key={action} value={action}>
                        {actionLabel(action)}
                      </option>
                    ))}
                  </select>
                )}
              </Control>
              <Control label="Done by" problems={problem('who')} id={`${id}-who`}>
                {(props) => (
                  <select {...props} value={rule.who} onChange={(e) => change({ ...rule, who: e.target.value as Who })}>
                    {WHO_OPTIONS.map((option) => (
                      <option key={option.value} value={option.value}>
                        {option.label}
                      </option>
                    ))}
                  </select>
                )}
              </Control>
            </div>
          </fieldset>
          <fieldset className="rule-part stack tight">
            <legend>Only if (optional)</legend>
            {rule.conditions.length === 0 && <p className="muted small">Always, whenever it is done.</p>}
            {rule.conditions.map((condition, index) => (
              <ConditionControls
                key={index}
                index={index}
                action={rule.action}
                condition={condition}
                problems={problem(`condition-${index}`)}
                onChange={(next) => change({ ...rule, conditions: rule.conditions.map((c, i) => (i === index ? next : c)) })}
                onRemove={() => change({ ...rule, conditions: rule.conditions.filter((_, i) => i !== index) })}
              />
            ))}
            <div className="row">
              <button
                type="button"
                className="button small"
                onClick={() => change({ ...rule, conditions: [...rule.conditions, newCondition(kindsFor(rule.action)[0]!, rule.action)] })}
              >
                Add a condition
              </button>
            </div>
          </fieldset>
          <fieldset className="rule-part stack tight">
            <legend>Then</legend>
            <Control label="What happens" problems={undefined} id={`${id}-effect`}>
              {(props) => (
                <select
                  {...props}
                  value={rule.effect.kind}
                  onChange={(e) => change({ ...rule, effect: newEffect(e.target.value as EffectKind, rule.effect) })}
                >
                  {EFFECT_KINDS.map((option) => (
                    <option key={option.value} value={option.value}>
                      {option.label}
                    </option>
                  ))}
                </select>
              )}
            </Control>
            <Control label={EFFECT_INPUT[rule.effect.kind]} id={`${id}-effect-text`} problems={problem('effect')}>
              {(props) => (
                <input
                  {...props}
                  value={effectValue(rule)}
                  maxLength={rule.effect.kind === 'deny' || rule.effect.kind === 'approval' ? 500 : undefined}
                  onChange={(e) => change({ ...rule, effect: { ...newEffect(rule.effect.kind), ...effectPatch(rule.effect.kind, e.target.value) } })}
                />
              )}
            </Control>
          </fieldset>
        </>
      )}
      <div className="rule-preview" aria-live="polite" data-testid="rule-in-words">
        <strong>In plain words:</strong> <span>{inWords}</span>
      </div>
      <div className="row">
        <button type="button" className="button link" aria-expanded={showJson} aria-controls={`${id}-json`} onClick={() => setShowJson(!showJson)}>
          {showJson ? 'Hide the JSON' : 'Show the JSON (advanced)'}
        </button>
      </div>
      {showJson && (
        <label className="field" id={`${id}-json`}>
          <span>Rule (JSON)</span>
          <textarea
            className="code"
            value={text}
            onChange={(e) => editJson(e.target.value)}
            rows={8}
            spellCheck={false}
            placeholder={JSON.stringify(EXAMPLE_RULE, null, 2)}
          />
        </label>
      )}
      {parseError && (
        <div className="error-message" role="alert">
          <p>{parseError}</p>
        </div>
      )}
      {add.error !== null && <ErrorMessage error={add.error} onDismiss={add.reset} fieldLabel={rulePathLabel} />}
      <div className="row tight wrap">
        <button type="submit" className="button primary small" disabled={add.pending || !text.trim()}>
          {add.pending ? 'Adding…' : 'Add rule'}
        </button>
        <button type="button" className="button small" onClick={fillExample}>
          Use an example
        </button>
      </div>
    </form>
  );
}

function effectValue(rule: BuiltRule): string {
  const effect = rule.effect;
  return effect.kind === 'deny' ? effect.message : effect.kind === 'approval' ? effect.reason : effect.kind === 'message' ? effect.text : effect.title;
}

function effectPatch(kind: EffectKind, value: string): Record<string, string> {
  return { deny: { message: value }, approval: { reason: value }, message: { text: value }, propose: { title: value } }[kind];
}

type ControlProps = { id: string; 'aria-invalid'?: true; 'aria-describedby'?: string };

/** A labelled control with the server's problems about it underneath. */
function Control({
  label,
  id,
  problems,
  children,
}: {
  label: string;
  id: string;
  problems: string[] | undefined;
  children: (props: ControlProps) => ReactNode;
}) {
  const invalid = problems && problems.length > 0;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children({ id, ...(invalid ? { 'aria-invalid': true, 'aria-describedby': `${id}-problem` } : {}) })}
      {invalid && <FieldProblems id={`${id}-problem`} problems={problems} />}
    </div>
  );
}

function FieldProblems({ id, problems }: { id: string; problems: string[] }) {
  return (
    <p className="field-error small" id={id}>
      {problems.join(' ')}
    </p>
  );
}

type ConditionProps = {
  index: number;
  action: string;
  condition: Condition;
  problems: string[] | undefined;
  onChange: (next: Condition) => void;
  onRemove: () => void;
};

function ConditionControls({ index, action, condition, problems, onChange, onRemove }: ConditionProps) {
  const id = useId();
  const fields = fieldsFor(condition.kind, action);
  const invalid = problems && problems.length > 0;
  const describedBy = invalid ? { 'aria-invalid': true as const, 'aria-describedby': `${id}-problem` } : {};
  const kinds = CONDITION_KINDS.filter((kind) => kindsFor(action).includes(kind.value));

  return (
    <fieldset className="rule-condition stack tight" data-testid={`condition-${index}`}>
      <legend>Condition {index + 1}</legend>
      <div className="row wrap">
        <div className="field">
          <label htmlFor={`${id}-kind`}>Kind of condition</label>
          <select
            id={`${id}-kind`}
            value={condition.kind}
            onChange={(e) => {
              const kind = e.target.value as ConditionKind;
              const next = newCondition(kind, action);
              onChange('field' in condition && 'field' in next && fields.includes(condition.field) && fieldsFor(kind, action).includes(condition.field) ? { ...next, field: condition.field } : next);
            }}
          >
            {kinds.map((kind) => (
              <option key={kind.value} value={kind.value}>
                {kind.label}
              </option>
            ))}
          </select>
        </div>
        {'field' in condition && (
          <div className="field">
            <label htmlFor={`${id}-field`}>Of</label>
            <select id={`${id}-field`} value={condition.field} onChange={(e) => onChange({ ...condition, field: e.target.value })}>
              {fields.map((field) => (
                <option key={field} value={field}>
                  {fieldLabel(field)}
                </option>
              ))}
            </select>
          </div>
        )}
      </div>
      {condition.kind === 'weekday' && (
        <fieldset className="weekdays" aria-describedby={invalid ? `${id}-problem` : undefined}>
          <legend>Days</legend>
          <div className="row wrap tight">
            {WEEKDAYS.map((day, i) => (
              <label key={day} className="checkbox">
                <input
                  type="checkbox"
                  checked={condition.days.includes(i + 1)}
                  onChange={() =>
                    onChange({
                      ...condition,
                      days: condition.days.includes(i + 1) ? condition.days.filter((d) => d !== i + 1) : [...condition.days, i + 1].sort(),
                    })
                  }
                />
                <span>{day}</span>
              </label>
            ))}
          </div>
        </fieldset>
      )}
      {(condition.kind === 'before' || condition.kind === 'after') && (
        <div className="field">
          <label htmlFor={`${id}-date`}>{condition.kind === 'before' ? 'Before' : 'After'} (date, UTC)</label>
          <input id={`${id}-date`} type="date" value={condition.date} onChange={(e) => onChange({ ...condition, date: e.target.value })} {...describedBy} />
        </div>
      )}
      {condition.kind === 'contains' && (
        <div className="field">
          <label htmlFor={`${id}-text`}>Contains the text (any case)</label>
          <input id={`${id}-text`} value={condition.text} onChange={(e) => onChange({ ...condition, text: e.target.value })} {...describedBy} />
        </div>
      )}
      {condition.kind === 'role' && (
        <div className="field">
          <label htmlFor={`${id}-role`}>Is</label>
          <select id={`${id}-role`} value={condition.role} onChange={(e) => onChange({ ...condition, role: e.target.value as Role })} {...describedBy}>
            {ROLES.map((role) => (
              <option key={role} value={role}>
                {roleLabel(role)}
              </option>
            ))}
          </select>
        </div>
      )}
      {condition.kind === 'count' && (
        <div className="row wrap">
          <div className="field">
            <label htmlFor={`${id}-op`}>Is</label>
            <select id={`${id}-op`} value={condition.op} onChange={(e) => onChange({ ...condition, op: e.target.value as CountOp })}>
              {COUNT_OPS.map((op) => (
                <option key={op.value} value={op.value}>
                  {op.label}
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor={`${id}-n`}>Number</label>
            <input
              id={`${id}-n`}
              type="number"
              min={0}
              step={1}
              value={condition.n}
              onChange={(e) => onChange({ ...condition, n: Math.max(0, Math.trunc(Number(e.target.value) || 0)) })}
              {...describedBy}
            />
          </div>
        </div>
      )}
      {invalid && <FieldProblems id={`${id}-problem`} problems={problems} />}
      <div className="row">
        <button type="button" className="button small danger-outline" onClick={onRemove} aria-label={`Remove condition ${index + 1}`}>
          Remove condition
        </button>
      </div>
    </fieldset>
  );
}
