import { useEffect, useLayoutEffect, useMemo, useRef, useState, type ReactNode } from 'react';

import { ErrorMessage } from '@/components/ui/error-message';
import { useMutation } from '@/hooks/use-mutation';
import type { Member, Message, Rule } from '@/types/api';
import { formatDateTime, formatRelative } from '@/utils/format';

import { getMessages } from '../api/get-messages';

import { MessageComposer } from './message-composer';
import { PendingMessageItems, usePendingMessageCount } from './pending-messages';

type Props = {
  collaborationId: string;
  /** The live messages of the realtime copy (latest snapshot page + every new one). */
  messages: Message[];
  /** Changes when the live list was replaced by a snapshot: older pages are loaded again. */
  epoch: number;
  members: Member[];
  /** The collaboration's rules: a message a rule sent is shown with the rule's name. */
  rules: Rule[];
  userId: string;
  canSend: boolean;
  /** The longest message the server takes (GET /api/config). */
  maxMessageChars: number;
  /** False while the realtime copy is stale: then the latest page is read over HTTP. */
  live: boolean;
  /** Shown under a message (the AI's suggestions under its answer). */
  renderAfter?: (message: Message) => ReactNode;
};

/** A snapshot carries the latest 50 messages: with fewer there is nothing older to load. */
const SNAPSHOT_MESSAGES = 50;

function excerpt(text: string): string {
  const chars = Array.from(text);
  return chars.length > 80 ? `${chars.slice(0, 79).join('')}…` : text;
}

function byId(a: Message, b: Message) {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export function MessageFeed({ collaborationId, messages, epoch, members, rules, userId, canSend, maxMessageChars, live, renderAfter }: Props) {
  const [older, setOlder] = useState<Message[]>([]);
  const pendingCount = usePendingMessageCount(collaborationId);
  const [hasMore, setHasMore] = useState(() => messages.length >= SNAPSHOT_MESSAGES);
  const listRef = useRef<HTMLOListElement>(null);
  const stickToBottom = useRef(true);
  const fetchedLatest = useRef(false);
  const liveCount = useRef(messages.length);
  liveCount.current = messages.length;

  useEffect(() => {
    setOlder([]);
    setHasMore(liveCount.current >= SNAPSHOT_MESSAGES);
  }, [collaborationId, epoch]);
  useEffect(() => {
    fetchedLatest.current = false;
  }, [collaborationId]);

  const all = useMemo(() => {
    const seen = new Set<string>();
    const merged: Message[] = [];
    for (const message of [...older, ...messages]) {
      if (seen.has(message.id)) continue;
      seen.add(message.id);
      merged.push(message);
    }
    return merged.sort(byId);
  }, [older, messages]);

  const loadOlder = useMutation(async () => {
    const page = await getMessages(collaborationId, all[0]?.id);
    setOlder((current) => [...page.messages, ...current]);
    setHasMore(page.hasMore);
    stickToBottom.current = all.length === 0;
  });

  // Without the socket there are no live messages yet: show the latest page from HTTP.
  useEffect(() => {
    if (live || fetchedLatest.current || messages.length > 0) return;
    fetchedLatest.current = true;
    void loadOlder.run();
    // eslint-disable-next-line react-hooks/exhaustive-deps -- run is what it calls; the object around it is new each render
  }, [live, messages.length, loadOlder.run]);

  const byMessageId = useMemo(() => new Map(all.map((m) => [m.id, m])), [all]);
  const emails = useMemo(() => new Map(members.map((m) => [m.userId, m.email ?? m.userId])), [members]);
  const ruleNames = useMemo(() => new Map((rules ?? []).map((r) => [r.id, r.name])), [rules]);

  const authorOf = (message: Message): { name: string; kind: 'ai' | 'rule' | 'me' | 'user' } => {
    const author = message.author;
    if (author?.type === 'ai') return { name: 'AI assistant', kind: 'ai' };
    if (author?.type === 'rule') {
      const ruleId = author.id ?? author.ruleId ?? '';
      const name = ruleNames.get(ruleId);
      return { name: name ? `Rule: ${name}` : 'A rule that was removed', kind: 'rule' };
    }
    if (author?.id === userId) return { name: 'You', kind: 'me' };
    return { name: emails.get(author?.id ?? '') ?? 'Former member', kind: 'user' };
  };

  useLayoutEffect(() => {
    const list = listRef.current;
    if (list && stickToBottom.current) list.scrollTop = list.scrollHeight;
  }, [all.length]);

  const onScroll = () => {
    const list = listRef.current;
    if (list) stickToBottom.current = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
  };

  return (
    <section className="card stack feed" aria-labelledby="messages-heading">
      <h2 id="messages-heading">Messages</h2>
      {hasMore && all.length > 0 && (
        <div className="row center">
          <button type="button" className="button link" onClick={() => void loadOlder.run()} disabled={loadOlder.pending}>
            {loadOlder.pending ? 'Loading…' : 'Show older messages'}
          </button>
        </div>
      )}
      {loadOlder.error !== null && <ErrorMessage error={loadOlder.error} onDismiss={loadOlder.reset} />}
      <div role="log" aria-label="Messages" aria-live="off">
        {/* Focusable, so the list scrolls with the keyboard too. */}
      <ol className="message-list" ref={listRef} onScroll={onScroll} tabIndex={0} aria-label="Messages, oldest first">
        {all.length === 0 && pendingCount === 0 && <li className="muted empty">No messages yet. Say hello!</li>}
        {all.map((message) => {
          const author = authorOf(message);
          const style = author.kind === 'ai' ? 'from-ai' : author.kind === 'rule' ? 'from-rule' : author.kind === 'me' ? 'from-me' : '';
          const question = message.replyTo ? byMessageId.get(message.replyTo) : undefined;
          return (
            <li
              key={message.id}
              className={`message ${style}${message.replyTo ? ' is-reply' : ''}`}
              data-author-type={message.author?.type ?? 'user'}
              data-testid="message"
              data-message-id={message.id}
              data-reply-to={message.replyTo ?? undefined}
            >
              {message.replyTo && (
                <p className="reply-to small muted">
                  <span aria-hidden="true">↳ </span>
                  {question ? (
                    <>
                      In reply to {authorOf(question).name === 'You' ? 'you' : authorOf(question).name}: “{excerpt(question.text)}”
                    </>
                  ) : (
                    'In reply to an earlier message'
                  )}
                </p>
              )}
              <div className="message-meta small">
                <span className="message-author">{author.name}</span>
                {author.kind === 'ai' && <span className="badge ai">AI</span>}
                {author.kind === 'rule' && <span className="badge rule">Rule</span>}
                <time dateTime={message.createdAt} title={formatDateTime(message.createdAt)}>
                  {formatRelative(message.createdAt)}
                </time>
              </div>
              <p className="message-text">{message.text}</p>
              {renderAfter?.(message)}
            </li>
          );
        })}
        <PendingMessageItems collaborationId={collaborationId} />
      </ol>
      </div>
      {canSend ? (
        <MessageComposer collaborationId={collaborationId} maxChars={maxMessageChars} />
      ) : (
        <p className="muted small">This collaboration is archived: no new messages.</p>
      )}
    </section>
  );
}
