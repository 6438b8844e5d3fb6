// @vitest-environment jsdom
import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { RuleBuilder } from './rule-builder';

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

let fetchMock: ReturnType<typeof vi.fn>;

beforeEach(() => {
  fetchMock = vi.fn(async () => json(200, { collaborationId: 'col_1', version: 8, result: {} }));
  vi.stubGlobal('fetch', fetchMock);
});

afterEach(() => vi.unstubAllGlobals());

function sentRules(): unknown[] {
  return fetchMock.mock.calls.map(([, init]) => JSON.parse(String((init as RequestInit).body)).payload.rule);
}

function form() {
  return screen.getByRole('form', { name: 'Add a rule' });
}

describe('<RuleBuilder>', () => {
  it('builds the weekend rule with the controls alone, says it in plain words, and sends exactly the rule JSON', async () => {
    render(<RuleBuilder collaborationId="col_1" />);
    const f = within(form());
    await userEvent.type(f.getByLabelText('Rule name'), 'No weekends');
    await userEvent.selectOptions(f.getByLabelText('Someone does'), 'Schedule an activity');
    await userEvent.selectOptions(f.getByLabelText('Done by'), 'Anyone');
    await userEvent.click(f.getByRole('button', { name: 'Add a condition' }));
    const condition = within(f.getByRole('group', { name: 'Condition 1' }));
    expect(condition.getByLabelText('Kind of condition')).toHaveDisplayValue('A date falls on certain weekdays');
    expect(condition.getByLabelText('Of')).toHaveDisplayValue('the time it is scheduled for');
    expect(condition.getByRole('checkbox', { name: 'Saturday' })).toBeChecked();
    expect(condition.getByRole('checkbox', { name: 'Sunday' })).toBeChecked();
    expect(condition.getByRole('checkbox', { name: 'Friday' })).not.toBeChecked();
    await userEvent.selectOptions(f.getByLabelText('What happens'), 'Refuse it, with a message');
    await userEvent.type(f.getByLabelText('Message for whoever is refused'), 'Not on weekends.');
    expect(f.getByTestId('rule-in-words')).toHaveTextContent(
      'In plain words: Nobody may schedule an activity on a Saturday or Sunday. They are told: “Not on weekends.”',
    );
    await userEvent.click(f.getByRole('button', { name: 'Add rule' }));
    expect(sentRules()).toEqual([
      {
        name: 'No weekends',
        when: { action: 'scheduleActivity', actor: 'any' },
        if: { in: [{ weekday: { var: 'payload.scheduledFor' } }, [6, 7]] },
        then: { deny: { message: 'Not on weekends.' } },
      },
    ]);
    // Saved: the form starts again.
    expect(f.getByLabelText('Rule name')).toHaveValue('');
  });

  it('caps the open activities: "the collaboration has at least 20 open activities", in plain words and as JSON', async () => {
    render(<RuleBuilder collaborationId="col_1" />);
    const f = within(form());
    await userEvent.type(f.getByLabelText('Rule name'), 'At most 20 open');
    await userEvent.selectOptions(f.getByLabelText('Someone does'), 'Propose an activity');
    await userEvent.click(f.getByRole('button', { name: 'Add a condition' }));
    const condition = within(f.getByRole('group', { name: 'Condition 1' }));
    await userEvent.selectOptions(condition.getByLabelText('Kind of condition'), 'The number of members or activities is…');
    expect(condition.getByLabelText('Of')).toHaveDisplayValue('members');
    expect(within(condition.getByLabelText('Of')).getAllByRole('option').map((o) => o.textContent)).toEqual([
      'members',
      'activities (any status)',
      'open activities (proposed or scheduled)',
    ]);
    await userEvent.selectOptions(condition.getByLabelText('Of'), 'open activities (proposed or scheduled)');
    await userEvent.selectOptions(condition.getByLabelText('Is'), 'at least');
    await userEvent.clear(condition.getByLabelText('Number'));
    await userEvent.type(condition.getByLabelText('Number'), '20');
    await userEvent.type(f.getByLabelText('Message for whoever is refused'), 'Finish something first.');
    expect(f.getByTestId('rule-in-words')).toHaveTextContent(
      'In plain words: Nobody may propose an activity while the collaboration has at least 20 open activities. They are told: “Finish something first.”',
    );
    await userEvent.click(f.getByRole('button', { name: 'Add rule' }));
    expect(sentRules()).toEqual([
      {
        name: 'At most 20 open',
        when: { action: 'proposeActivity', actor: 'any' },
        if: { '>=': [{ var: 'collaboration.openActivityCount' }, 20] },
        then: { deny: { message: 'Finish something first.' } },
      },
    ]);
  });

  it('keeps the controls and the JSON in sync both ways, and falls back to JSON only for what the controls cannot show', async () => {
    render(<RuleBuilder collaborationId="col_1" />);
    const f = within(form());
    await userEvent.type(f.getByLabelText('Rule name'), 'Thanks');
    await userEvent.selectOptions(f.getByLabelText('Someone does'), 'Mark an activity done');
    await userEvent.selectOptions(f.getByLabelText('What happens'), 'Follow it with a message');
    await userEvent.type(f.getByLabelText('Message to send'), 'Well done!');
    await userEvent.click(f.getByRole('button', { name: 'Show the JSON (advanced)' }));
    const box = f.getByLabelText('Rule (JSON)');
    expect(JSON.parse((box as HTMLTextAreaElement).value)).toEqual({
      name: 'Thanks',
      when: { action: 'completeActivity', actor: 'any' },
      then: { action: { name: 'sendMessage', payload: { text: 'Well done!' } } },
    });

    // JSON → controls.
    await userEvent.clear(box);
    await userEvent.click(box);
    await userEvent.paste(
      JSON.stringify({
        name: 'Editors cancel with approval',
        when: { action: 'cancelActivity', actor: 'user' },
        if: { '==': [{ var: 'actor.role' }, 'editor'] },
        then: { require_approval: { reason: 'Ask me first.' } },
      }),
    );
    expect(f.getByLabelText('Rule name')).toHaveValue('Editors cancel with approval');
    expect(f.getByLabelText('Someone does')).toHaveDisplayValue('Cancel an activity');
    expect(f.getByLabelText('Done by')).toHaveDisplayValue('Editors');
    expect(f.getByLabelText('Reason for the owners (optional)')).toHaveValue('Ask me first.');
    expect(f.getByTestId('rule-in-words')).toHaveTextContent('When an editor cancels an activity, an owner must approve it first. The reason given: “Ask me first.”');

    // Something the controls cannot say: JSON only, still said in words.
    await userEvent.clear(box);
    await userEvent.click(box);
    await userEvent.paste('{"name": "Long messages", "when": {"action": "sendMessage"}, "if": {">": [{"len": {"var": "payload.text"}}, 500]}, "then": {"deny": {"message": "Too long"}}}');
    expect(f.getByRole('status')).toHaveTextContent('more than the controls can show');
    expect(f.queryByLabelText('Rule name')).not.toBeInTheDocument();
    expect(f.getByTestId('rule-in-words')).toHaveTextContent('Send a message, by anyone, when its condition holds. Refuse: “Too long”.');
  });

  it("shows the server's validation problems at the control they concern", async () => {
    fetchMock.mockImplementation(async () =>
      json(422, {
        error: {
          code: 'validation_failed',
          message: 'invalid rule',
          details: {
            fields: [
              { path: 'payload.rule.name', message: 'must be 1 to 100 characters' },
              { path: 'payload.rule.if.and.1.>.1.date.0', message: 'not an ISO 8601 date' },
              { path: 'payload.rule.then.deny.message', message: 'must be 1 to 500 characters' },
            ],
          },
        },
      }),
    );
    render(<RuleBuilder collaborationId="col_1" />);
    const f = within(form());
    await userEvent.selectOptions(f.getByLabelText('Someone does'), 'Send a message');
    await userEvent.click(f.getByRole('button', { name: 'Add a condition' }));
    await userEvent.click(f.getByRole('button', { name: 'Add a condition' }));
    await userEvent.selectOptions(within(f.getByRole('group', { name: 'Condition 2' })).getByLabelText('Kind of condition'), 'A date is after…');
    await userEvent.click(f.getByRole('button', { name: 'Add rule' }));

    const name = await f.findByLabelText('Rule name');
    await vi.waitFor(() => expect(name).toHaveAttribute('aria-invalid', 'true'));
    expect(name).toHaveAccessibleDescription('must be 1 to 100 characters');
    expect(f.getByLabelText('Message for whoever is refused')).toHaveAccessibleDescription('must be 1 to 500 characters');
    const second = within(f.getByRole('group', { name: 'Condition 2' }));
    expect(second.getByLabelText('After (date, UTC)')).toHaveAccessibleDescription('not an ISO 8601 date');
    expect(within(f.getByRole('group', { name: 'Condition 1' })).queryByText('not an ISO 8601 date')).not.toBeInTheDocument();
  });
});
