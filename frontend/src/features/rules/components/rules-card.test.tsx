// @vitest-environment jsdom
import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import type { Collaboration, Role, Rule } from '@/types/api';

import { RulesCard } from './rules-card';

const weekend: Rule = {
  id: 'rul_1',
  name: 'Nobody schedules on weekends',
  enabled: true,
  when: { action: 'scheduleActivity', actor: 'any' },
  if: { in: [{ weekday: { var: 'payload.scheduledFor' } }, [6, 7]] },
  then: { deny: { message: 'We do not schedule on weekends.' } },
};
const thanks: Rule = {
  id: 'rul_2',
  name: 'Thank whoever completes an activity',
  enabled: false,
  when: { action: 'completeActivity', actor: 'any' },
  if: true,
  then: { action: { name: 'sendMessage', payload: { text: 'Thanks!' } } },
};

function collaboration(overrides: Partial<Collaboration> = {}): Collaboration {
  return {
    id: 'col_1',
    title: 'Summer trip',
    description: null,
    status: 'active',
    members: [{ userId: 'u1', email: 'ann@example.com', role: 'owner', joinedAt: '' }],
    memberIds: ['u1'],
    activities: [],
    settings: { protectedActions: ['addMember', 'cancelActivity'] },
    rules: [weekend, thanks],
    version: 7,
    createdAt: '',
    updatedAt: '',
    lastActivityAt: '',
    ...overrides,
  };
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

let fetchMock: ReturnType<typeof vi.fn>;

beforeEach(() => {
  fetchMock = vi.fn(async () => json(200, { collaborationId: 'col_1', version: 8, result: {} }));
  vi.stubGlobal('fetch', fetchMock);
  vi.spyOn(window, 'confirm').mockReturnValue(true);
});

afterEach(() => vi.unstubAllGlobals());

function sent(): Array<{ url: string; body: { collaborationId: string; payload: Record<string, unknown> } }> {
  return fetchMock.mock.calls.map(([url, init]) => ({ url: String(url), body: JSON.parse(String((init as RequestInit).body)) }));
}

function renderCard(role: Role | null, overrides: Partial<Collaboration> = {}) {
  return render(<RulesCard collaboration={collaboration(overrides)} role={role} />);
}

describe('<RulesCard> for an owner', () => {
  it('lists each rule: its name, when it applies, what it does, and whether it is enabled', () => {
    renderCard('owner');
    const rules = within(screen.getByRole('list', { name: 'Rules' })).getAllByRole('listitem');
    expect(rules).toHaveLength(2);
    expect(rules[0]).toHaveTextContent('Nobody schedules on weekends');
    expect(rules[0]).toHaveTextContent('Schedule an activity, by anyone, when its condition holds');
    expect(rules[0]).toHaveTextContent('Refuse: “We do not schedule on weekends.”');
    expect(rules[0]).toHaveTextContent('Enabled');
    expect(rules[1]).toHaveTextContent('Then: Send a message');
    expect(rules[1]).toHaveTextContent('Disabled');
  });

  it('disables and enables a rule with updateRule (the whole rule, enabled flipped) and removes one with removeRule', async () => {
    renderCard('owner');
    await userEvent.click(within(screen.getByRole('listitem', { name: weekend.name })).getByRole('button', { name: 'Disable' }));
    await userEvent.click(within(screen.getByRole('listitem', { name: thanks.name })).getByRole('button', { name: 'Enable' }));
    await userEvent.click(screen.getByRole('button', { name: `Remove rule ${thanks.name}` }));
    expect(sent()).toEqual([
      { url: '/api/actions/updateRule', body: { collaborationId: 'col_1', payload: { rule: { ...weekend, enabled: false } } } },
      { url: '/api/actions/updateRule', body: { collaborationId: 'col_1', payload: { rule: { ...thanks, enabled: true } } } },
      { url: '/api/actions/removeRule', body: { collaborationId: 'col_1', payload: { ruleId: 'rul_2' } } },
    ]);
  });

  it('adds a rule written as JSON, and says what is wrong with bad JSON before sending anything', async () => {
    renderCard('owner');
    const form = screen.getByRole('form', { name: 'Add a rule' });
    await userEvent.click(within(form).getByRole('button', { name: 'Show the JSON (advanced)' }));
    const box = within(form).getByLabelText('Rule (JSON)');
    await userEvent.click(box);
    await userEvent.paste('{"name": "x",');
    await userEvent.click(within(form).getByRole('button', { name: 'Add rule' }));
    expect(within(form).getByRole('alert')).toHaveTextContent("That isn't valid JSON");
    expect(fetchMock).not.toHaveBeenCalled();

    await userEvent.click(within(form).getByRole('button', { name: 'Use an example' }));
    await userEvent.click(within(form).getByRole('button', { name: 'Add rule' }));
    const [call] = sent();
    expect(call!.url).toBe('/api/actions/addRule');
    expect(call!.body.payload.rule).toMatchObject({ name: "Editors' cancellations need my approval", when: { action: 'cancelActivity' } });
    expect(box).toHaveValue('');
  });

  it("shows validation_failed's places in words", async () => {
    fetchMock.mockImplementation(async () =>
      json(422, {
        error: {
          code: 'validation_failed',
          message: 'payload.rule.foo: unknown field; payload.rule.if.and.1.>=.0: >= takes number, not boolean',
          details: {
            fields: [
              { path: 'payload.rule.foo', message: 'unknown field: a rule has id, name, enabled, when, if, then' },
              { path: 'payload.rule.if.and.1.>=.0', message: '>= takes number, string, date or duration here, not boolean' },
            ],
          },
        },
      }),
    );
    renderCard('owner');
    const form = screen.getByRole('form', { name: 'Add a rule' });
    await userEvent.click(within(form).getByRole('button', { name: 'Show the JSON (advanced)' }));
    await userEvent.click(within(form).getByLabelText('Rule (JSON)'));
    await userEvent.paste('{"name": "x", "foo": 1}');
    await userEvent.click(within(form).getByRole('button', { name: 'Add rule' }));
    const alert = await within(form).findByRole('alert');
    expect(alert).toHaveTextContent('Some of the information needs fixing');
    expect(alert).toHaveTextContent('“foo”: unknown field');
    expect(alert).toHaveTextContent('Condition › “and”, argument 2 › “>=”, argument 1: >= takes number');
  });

  it('chooses which AI actions need approval with setProtectedActions', async () => {
    renderCard('owner');
    const group = screen.getByRole('group', { name: 'AI actions that need your approval' });
    expect(within(group).getByRole('checkbox', { name: 'Add a member' })).toBeChecked();
    expect(within(group).getByRole('checkbox', { name: 'Cancel an activity' })).toBeChecked();
    expect(within(group).getByRole('checkbox', { name: 'Send a message' })).not.toBeChecked();
    const save = within(group).getByRole('button', { name: 'Save approvals' });
    expect(save).toBeDisabled();

    await userEvent.click(within(group).getByRole('checkbox', { name: 'Send a message' }));
    await userEvent.click(within(group).getByRole('checkbox', { name: 'Add a member' }));
    await userEvent.click(save);
    expect(sent()).toEqual([
      { url: '/api/actions/setProtectedActions', body: { collaborationId: 'col_1', payload: { actions: ['cancelActivity', 'sendMessage'] } } },
    ]);
  });
});

describe('<RulesCard> for everyone else', () => {
  it('shows an editor or a viewer the rules read-only', () => {
    for (const role of ['editor', 'viewer'] as const) {
      const { unmount } = renderCard(role);
      expect(within(screen.getByRole('list', { name: 'Rules' })).getAllByRole('listitem')).toHaveLength(2);
      expect(screen.queryByRole('button')).not.toBeInTheDocument();
      expect(screen.queryByRole('form', { name: 'Add a rule' })).not.toBeInTheDocument();
      expect(screen.queryByRole('group', { name: 'AI actions that need your approval' })).not.toBeInTheDocument();
      expect(screen.getByText(/Only an owner changes the rules/)).toBeInTheDocument();
      unmount();
    }
  });

  it('shows nothing to a non-owner when there are no rules', () => {
    const { container } = renderCard('editor', { rules: [] });
    expect(container).toBeEmptyDOMElement();
  });

  it('is read-only on an archived collaboration, for owners too', () => {
    renderCard('owner', { status: 'archived' });
    expect(screen.getAllByRole('listitem')).toHaveLength(2);
    expect(screen.queryByRole('button')).not.toBeInTheDocument();
    expect(screen.getByText(/not once the collaboration is archived/)).toBeInTheDocument();
  });
});
