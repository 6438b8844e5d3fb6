// @vitest-environment jsdom
import { render, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';

import type { Member, Message, Rule } from '@/types/api';

import { MessageFeed } from './message-feed';

const members: Member[] = [
  { userId: 'u1', email: 'ann@example.com', role: 'owner', joinedAt: '' },
  { userId: 'u2', email: 'bo@example.com', role: 'editor', joinedAt: '' },
];
const rules: Rule[] = [
  {
    id: 'rul_1',
    name: 'Thank whoever completes an activity',
    enabled: true,
    when: { action: 'completeActivity' },
    then: { action: { name: 'sendMessage', payload: { text: 'Thanks!' } } },
  },
];

const message = (id: string, author: Message['author'], text: string): Message => ({
  id,
  collaborationId: 'col_1',
  author,
  text,
  createdAt: '2026-11-20T10:00:00Z',
});

describe('<MessageFeed> authors', () => {
  it('names people, the AI, and the rule a message came from, with a badge', () => {
    render(
      <MessageFeed
        collaborationId="col_1"
        messages={[
          message('msg_1', { type: 'user', id: 'u1' }, 'Mine'),
          message('msg_2', { type: 'user', id: 'u2' }, 'From Bo'),
          message('msg_3', { type: 'ai' }, 'From the AI'),
          message('msg_4', { type: 'rule', id: 'rul_1' }, 'Thanks for finishing it!'),
          message('msg_5', { type: 'rule', id: 'rul_gone' }, 'From a removed rule'),
          message('msg_6', { type: 'user', id: 'u9' }, 'From someone who left'),
        ]}
        epoch={1}
        members={members}
        rules={rules}
        userId="u1"
        canSend={false}
        maxMessageChars={4000}
        live
      />,
    );
    const items = within(screen.getByRole('log', { name: 'Messages' })).getAllByTestId('message');
    const authors = items.map((item) => item.querySelector('.message-author')?.textContent);
    expect(authors).toEqual([
      'You',
      'bo@example.com',
      'AI assistant',
      'Rule: Thank whoever completes an activity',
      'A rule that was removed',
      'Former member',
    ]);
    expect(within(items[3]!).getByText('Rule', { selector: '.badge' })).toBeInTheDocument();
    expect(items[3]).toHaveAttribute('data-author-type', 'rule');
    expect(within(items[5]!).queryByText('Rule', { selector: '.badge' })).not.toBeInTheDocument();
  });
});

describe('<MessageFeed> conversations', () => {
  it('shows a reply under what it answers, naming the question, and what the page adds under a message', () => {
    const question = message('msg_1', { type: 'user', id: 'u2' }, 'What should we plan next?');
    const answer = { ...message('msg_2', { type: 'ai' }, 'Book the hut.'), replyTo: 'msg_1' };
    const orphan = { ...message('msg_3', { type: 'ai' }, 'And bring a map.'), replyTo: 'msg_0' };
    render(
      <MessageFeed
        collaborationId="col_1"
        messages={[question, answer, orphan]}
        epoch={1}
        members={members}
        rules={rules}
        userId="u1"
        canSend={false}
        maxMessageChars={4000}
        live
        renderAfter={(m) => (m.author.type === 'ai' ? <p>Suggestions for {m.id}</p> : null)}
      />,
    );
    const items = within(screen.getByRole('log', { name: 'Messages' })).getAllByTestId('message');
    expect(items[0]).not.toHaveClass('is-reply');
    expect(items[1]).toHaveClass('is-reply');
    expect(items[1]).toHaveAttribute('data-reply-to', 'msg_1');
    expect(items[1]).toHaveTextContent('In reply to bo@example.com: “What should we plan next?”');
    expect(items[1]).toHaveTextContent('Suggestions for msg_2');
    expect(items[2]).toHaveTextContent('In reply to an earlier message');
    expect(items[0]).not.toHaveTextContent('Suggestions for');
  });
});
