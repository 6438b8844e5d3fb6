import { useState } from 'react';

import { ErrorMessage } from '@/components/ui/error-message';
import { useMutation } from '@/hooks/use-mutation';
import { announceOutcome } from '@/lib/run-action';
import type { Collaboration, Role, Rule } from '@/types/api';
import { actionLabel } from '@/utils/describe-action';
import { canRun } from '@/utils/roles';

import { removeRule } from '../api/remove-rule';
import { setProtectedActions } from '../api/set-protected-actions';
import { updateRule } from '../api/update-rule';
import { AI_ACTIONS, describeEffect, describeWhen, rulePathLabel } from '../rule-text';

import { RuleBuilder } from './rule-builder';

type Props = { collaboration: Collaboration; role: Role | null };

/**
 * The owner's rules (docs/rules.md) and which AI actions need approval. Owners of an active
 * collaboration change them; everyone else sees the rules read-only, so they know why an action
 * was refused or waits for an owner (and, when there are none, sees no card at all).
 */
export function RulesCard({ collaboration, role }: Props) {
  const rules = collaboration.rules ?? [];
  const active = collaboration.status !== 'archived';
  const canEditRules = active && canRun(role, 'addRule');
  const canProtect = active && canRun(role, 'setProtectedActions');
  if (!canEditRules && !canProtect && rules.length === 0) return null;

  return (
    <section className="card stack rules-card" aria-labelledby="rules-heading">
      <h2 id="rules-heading">
        Rules <span className="count">{rules.length}</span>
      </h2>
      {rules.length === 0 ? (
        <p className="muted small">No rules yet. A rule can refuse an action, send it to an owner for approval, or follow it with another.</p>
      ) : (
        <ul className="rule-list" aria-label="Rules">
          {rules.map((rule) => (
            <RuleItem key={rule.id} collaborationId={collaboration.id} rule={rule} canEdit={canEditRules} />
          ))}
        </ul>
      )}
      {!canEditRules && <p className="muted small">Only an owner changes the rules{active ? '' : ', and not once the collaboration is archived'}.</p>}
      {canEditRules && <RuleBuilder collaborationId={collaboration.id} />}
      {canProtect && <ProtectedActionsForm collaboration={collaboration} />}
    </section>
  );
}

function RuleItem({ collaborationId, rule, canEdit }: { collaborationId: string; rule: Rule; canEdit: boolean }) {
  const enabled = rule.enabled !== false;
  const toggle = useMutation(async () =>
    announceOutcome(await updateRule(collaborationId, { ...rule, enabled: !enabled }), `Rule “${rule.name}” ${enabled ? 'disabled' : 'enabled'}.`),
  );
  const remove = useMutation(async () => announceOutcome(await removeRule(collaborationId, rule.id), `Rule “${rule.name}” removed.`));

  return (
    <li className={`rule-item ${enabled ? '' : 'disabled'}`} aria-label={rule.name} data-testid={`rule-${rule.id}`}>
      <div className="row spread wrap">
        <strong className="rule-name">{rule.name}</strong>
        <span className={`badge ${enabled ? 'success' : 'muted'}`}>{enabled ? 'Enabled' : 'Disabled'}</span>
      </div>
      <dl className="facts small">
        <dt>When</dt>
        <dd>{describeWhen(rule)}</dd>
        <dt>Does</dt>
        <dd>{describeEffect(rule)}</dd>
      </dl>
      {canEdit && (
        <div className="row tight wrap">
          <button type="button" className="button small" disabled={toggle.pending} onClick={() => void toggle.run()}>
            {enabled ? 'Disable' : 'Enable'}
          </button>
          <button
            type="button"
            className="button small danger-outline"
            aria-label={`Remove rule ${rule.name}`}
            disabled={remove.pending}
            onClick={() => {
              if (window.confirm(`Remove the rule “${rule.name}”?`)) void remove.run();
            }}
          >
            Remove
          </button>
        </div>
      )}
      {toggle.error !== null && <ErrorMessage error={toggle.error} onDismiss={toggle.reset} fieldLabel={rulePathLabel} />}
      {remove.error !== null && <ErrorMessage error={remove.error} onDismiss={remove.reset} />}
    </li>
  );
}

function ProtectedActionsForm({ collaboration }: { collaboration: Collaboration }) {
  const saved = collaboration.settings?.protectedActions ?? [];
  // null: showing what is saved; a list: my unsaved choice.
  const [draft, setDraft] = useState<string[] | null>(null);
  const chosen = draft ?? saved;
  const save = useMutation(async (actions: string[]) => {
    announceOutcome(await setProtectedActions(collaboration.id, actions), 'Saved which AI actions need approval.');
    setDraft(null);
  });
  const changed = draft !== null && [...draft].sort().join() !== [...saved].sort().join();

  const toggle = (action: string) => {
    const base = draft ?? saved;
    setDraft(base.includes(action) ? base.filter((a) => a !== action) : [...base, action]);
  };

  return (
    <div className="stack tight protected-actions" role="group" aria-labelledby="protected-heading">
      <h3 id="protected-heading">AI actions that need your approval</h3>
      <p className="muted small">The AI runs the others at once. People act within their role; use a rule to hold back theirs.</p>
      <div className="checkbox-list">
        {AI_ACTIONS.map((action) => (
          <label key={action} className="checkbox">
            <input type="checkbox" checked={chosen.includes(action)} onChange={() => toggle(action)} disabled={save.pending} />
            <span>{actionLabel(action)}</span>
          </label>
        ))}
      </div>
      {save.error !== null && <ErrorMessage error={save.error} onDismiss={save.reset} />}
      <div className="row tight">
        <button type="button" className="button small primary" disabled={!changed || save.pending} onClick={() => void save.run(chosen)}>
          {save.pending ? 'Saving…' : 'Save approvals'}
        </button>
        {draft !== null && (
          <button type="button" className="button small" onClick={() => setDraft(null)}>
            Undo changes
          </button>
        )}
      </div>
    </div>
  );
}
