// @vitest-environment jsdom
import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';

import type { Collaboration, Message, Suggestion } from '@/types/api';

import { AiChatPanel } from './ai-chat-panel';
import { AiAnswerSuggestions, suggestionsOf } from './ai-suggestions';

/** The AI's answer msg_9 as the server keeps it (and sends it to every member): with its suggestions. */
function answer(suggestions: Suggestion[], author: Message['author'] = { type: 'ai', id: 'chat_1' }): Message {
  return { id: 'msg_9', collaborationId: 'col_1', author, text: 'Some ideas', createdAt: '', replyTo: 'msg_8', suggestions };
}

/** The panel, and the AI answer msg_9's suggestions as the feed shows them under it. */
function Panel({ role, suggestions }: { role: 'viewer' | 'editor'; suggestions: Suggestion[] }) {
  return (
    <>
      <AiChatPanel collaboration={collaboration} role={role} maxChars={4000} />
      <AiAnswerSuggestions message={answer(suggestions)} collaboration={collaboration} role={role} />
    </>
  );
}

const collaboration = {
  id: 'col_1',
  title: 'Summer trip',
  members: [],
  activities: [{ id: 'act_1', title: 'Plan picnic', status: 'proposed' }],
  status: 'active',
  version: 3,
} as unknown as Collaboration;

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('<AiChatPanel>', () => {
  it('shows the suggestions kept on the answer (msg_9) under it and runs one as me, saying when it went for approval', async () => {
    const picnic: Suggestion[] = [
      { action: 'scheduleActivity', payload: { activityId: 'act_1', scheduledFor: '2026-12-05T11:00:00Z' }, reason: 'Sunny' },
      { action: 'cancelActivity', payload: { activityId: 'act_1' }, reason: 'Or not' },
    ];
    const fetchMock = vi.fn(async (url: string, init?: RequestInit) => {
      if (url === '/api/collaborations/col_1/ai/chat') {
        return json(200, {
          question: { id: 'msg_8', collaborationId: 'col_1', author: { type: 'user', id: 'u1' }, text: 'What next?', createdAt: '' },
          reply: { ...answer(picnic), text: 'Schedule the picnic!' },
          suggestions: picnic.map((s) => ({ ...s, allowed: true, needs: null })),
        });
      }
      const body = JSON.parse(String(init?.body)) as { payload: unknown };
      if (url === '/api/actions/scheduleActivity') return json(200, { collaborationId: 'col_1', version: 4, result: body.payload });
      return json(202, { approval: { id: 'apr_1', status: 'pending' } });
    });
    vi.stubGlobal('fetch', fetchMock);
    render(<Panel role="editor" suggestions={picnic} />);

    await userEvent.type(screen.getByLabelText('Question for the AI'), 'What next?');
    await userEvent.click(screen.getByRole('button', { name: 'Ask' }));
    expect(await screen.findByRole('status')).toHaveTextContent('You asked “What next?”: the answer is in the messages, as a reply to your question.');
    expect(JSON.parse(String(fetchMock.mock.calls[0]![1]!.body))).toEqual({ message: 'What next?' });

    const suggestions = screen.getByRole('list', { name: 'Suggested actions' });
    const items = within(suggestions).getAllByRole('listitem');
    expect(items[0]).toHaveTextContent("Schedule activity 'Plan picnic' for");
    expect(items[0]).toHaveTextContent('Why: Sunny');

    await userEvent.click(within(items[0]!).getByRole('button', { name: /^Run:/ }));
    expect(await within(items[0]!).findByText('Done')).toBeInTheDocument();
    const [, init] = fetchMock.mock.calls[1] as [string, RequestInit];
    expect(JSON.parse(String(init.body))).toEqual({
      collaborationId: 'col_1',
      payload: { activityId: 'act_1', scheduledFor: '2026-12-05T11:00:00Z' },
    });

    await userEvent.click(within(items[1]!).getByRole('button', { name: /^Run:/ }));
    expect(await within(items[1]!).findByText('Sent to the owner for approval')).toBeInTheDocument();
  });

  it('offers Run only to a role that may run the action, and says which role it needs otherwise', async () => {
    const ideas: Suggestion[] = [
      { action: 'cancelActivity', payload: { activityId: 'act_1' }, reason: 'Rain' },
      { action: 'sendMessage', payload: { text: 'Who brings the food?' } },
      { action: 'addMember', payload: { email: 'cy@example.com', role: 'editor' } },
    ];
    const fetchMock = vi.fn(async () => json(200, { reply: answer(ideas), suggestions: ideas }));
    vi.stubGlobal('fetch', fetchMock);
    const { rerender } = render(<Panel role="viewer" suggestions={ideas} />);
    await userEvent.type(screen.getByLabelText('Question for the AI'), 'Ideas?');
    await userEvent.click(screen.getByRole('button', { name: 'Ask' }));
    const items = within(await screen.findByRole('list', { name: 'Suggested actions' })).getAllByRole('listitem');

    // A viewer: only sending a message is theirs to run.
    expect(within(items[0]!).queryByRole('button', { name: /^Run:/ })).not.toBeInTheDocument();
    expect(items[0]).toHaveTextContent('Needs editor');
    expect(within(items[1]!).getByRole('button', { name: /^Run:/ })).toBeInTheDocument();
    expect(within(items[2]!).queryByRole('button', { name: /^Run:/ })).not.toBeInTheDocument();
    expect(items[2]).toHaveTextContent('Needs owner');

    // An editor may cancel, not add members.
    rerender(<Panel role="editor" suggestions={ideas} />);
    expect(within(items[0]!).getByRole('button', { name: /^Run:/ })).toBeInTheDocument();
    expect(items[2]).toHaveTextContent('Needs owner');
    expect(fetchMock).toHaveBeenCalledTimes(1);
  });

  it('says so when the AI\'s answer waits for an owner\'s approval', async () => {
    vi.stubGlobal('fetch', vi.fn(async () =>
      json(202, { reply: null, approval: { id: 'apr_2', action: 'sendMessage', status: 'pending' }, suggestions: [] })));
    render(<AiChatPanel collaboration={collaboration} role="editor" maxChars={4000} />);
    await userEvent.type(screen.getByLabelText('Question for the AI'), 'What to pack?');
    await userEvent.click(screen.getByRole('button', { name: 'Ask' }));
    expect(await screen.findByText(/waits for an owner's approval/)).toBeInTheDocument();
    expect(screen.queryByRole('list', { name: 'Suggested actions' })).not.toBeInTheDocument();
    expect(screen.getByText(/What to pack\?/)).toBeInTheDocument();
  });
});

describe('<AiAnswerSuggestions>', () => {
  it("shows the answer's suggestions to every member, whoever asked, each with Run for what their own role may run", () => {
    const ideas: Suggestion[] = [
      { action: 'sendMessage', payload: { text: 'Who brings the food?' }, reason: 'Nobody said' },
      { action: 'cancelActivity', payload: { activityId: 'act_1' } },
    ];
    // No chat was asked in this tab: the suggestions come with the message alone.
    const { rerender } = render(<AiAnswerSuggestions message={answer(ideas)} collaboration={collaboration} role="viewer" />);
    let items = within(screen.getByRole('list', { name: 'Suggested actions' })).getAllByRole('listitem');
    expect(items).toHaveLength(2);
    expect(items[0]).toHaveTextContent('Why: Nobody said');
    expect(within(items[0]!).getByRole('button', { name: /^Run:/ })).toBeInTheDocument();
    expect(within(items[1]!).queryByRole('button', { name: /^Run:/ })).not.toBeInTheDocument();
    expect(items[1]).toHaveTextContent('Needs editor');
    rerender(<AiAnswerSuggestions message={answer(ideas)} collaboration={collaboration} role="editor" />);
    items = within(screen.getByRole('list', { name: 'Suggested actions' })).getAllByRole('listitem');
    expect(within(items[1]!).getByRole('button', { name: /^Run:/ })).toBeInTheDocument();
  });

  it("shows nothing for a member's message, for an answer without suggestions, and drops what is not a suggestion", () => {
    const one: Suggestion = { action: 'sendMessage', payload: { text: 'Hi' } };
    const { container, rerender } = render(
      <AiAnswerSuggestions message={answer([one], { type: 'user', id: 'u1' })} collaboration={collaboration} role="owner" />,
    );
    expect(container).toBeEmptyDOMElement();
    rerender(<AiAnswerSuggestions message={{ ...answer([]), suggestions: undefined }} collaboration={collaboration} role="owner" />);
    expect(container).toBeEmptyDOMElement();
    const odd = [one, null, 'run me', { action: 5 }, { action: 'sendMessage', payload: 'x' }] as unknown as Suggestion[];
    expect(suggestionsOf(answer(odd))).toEqual([one]);
    expect(suggestionsOf({ ...answer([]), suggestions: 'x' as unknown as Suggestion[] })).toEqual([]);
  });
});
