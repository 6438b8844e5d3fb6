import { useEffect } from 'react';
import { Link, useNavigate, useParams } from 'react-router';

import { Spinner } from '@/components/ui/spinner';
import { ActivitiesBoard } from '@/features/activities/components/activities-board';
import { AiChatPanel } from '@/features/ai-chat/components/ai-chat-panel';
import { AiAnswerSuggestions } from '@/features/ai-chat/components/ai-suggestions';
import { CollaborationDetails } from '@/features/collaboration-details/components/collaboration-details';
import { MembersPanel } from '@/features/members/components/members-panel';
import { MessageFeed } from '@/features/messages/components/message-feed';
import { RulesCard } from '@/features/rules/components/rules-card';
import { usePageVisible } from '@/hooks/use-page-visible';
import { useAuth, useSession } from '@/lib/auth/auth-context';
import { useCollaborationSubscription, usePresence, useRealtimeClient } from '@/lib/realtime/use-realtime';
import { unreadStore } from '@/stores/unread';
import { canRun, myRole } from '@/utils/roles';

/** Why the server refused the subscription, in words. */
function subscriptionProblem(code: string | null, message: string | null): string {
  if (code === 'invalid_request' && message && /subscriptions per connection/i.test(message)) {
    return 'too many collaborations are open in this browser at once (the server follows at most 100 per connection). Close some other tabs, then try again.';
  }
  if (code === 'unavailable') return 'the server is briefly unavailable. Try again in a moment.';
  if (code === 'rate_limited') return "you're doing that too often. Wait a moment, then try again.";
  return message ? `the server said “${message}”.` : 'the server refused to send live updates.';
}

function capitalised(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function CollaborationRoute() {
  const { collaborationId = '' } = useParams();
  const session = useSession();
  const { config } = useAuth();
  const navigate = useNavigate();
  const client = useRealtimeClient();
  const view = useCollaborationSubscription(collaborationId);
  const visible = usePageVisible();
  usePresence(collaborationId, { status: visible ? 'online' : 'away', view: 'collaboration' });
  // While this page is in a visible tab its messages are read: nothing here is unread.
  const lastMessageId = view.messages.length > 0 ? view.messages[view.messages.length - 1]!.id : '';
  const loaded = view.collaboration !== null;
  useEffect(() => {
    if (!visible || !loaded) return undefined;
    unreadStore.setViewing(collaborationId);
    unreadStore.markSeen(collaborationId, lastMessageId);
    return () => unreadStore.setViewing(null);
  }, [collaborationId, visible, loaded, lastMessageId]);

  if (view.status === 'removed') {
    return (
      <div className="card narrow stack" role="alert">
        <h1>You are no longer a member</h1>
        <p>You left this collaboration or an owner removed you, so you can't see it any more.</p>
        <Link to="/">Back to my collaborations</Link>
      </div>
    );
  }
  if (view.status === 'not_found') {
    return (
      <div className="card narrow stack" role="alert">
        <h1>Collaboration not found</h1>
        <p>It doesn't exist, or you are not a member of it.</p>
        <Link to="/">Back to my collaborations</Link>
      </div>
    );
  }
  const collaboration = view.collaboration;
  const retry = () => client.retry(collaborationId);
  if (!collaboration && view.status === 'error') {
    return (
      <div className="card narrow stack" role="alert">
        <h1>This collaboration could not be opened</h1>
        <p>{capitalised(subscriptionProblem(view.errorCode, view.error))}</p>
        <div className="row">
          <button type="button" className="button primary" onClick={retry}>
            Try again
          </button>
          <Link to="/">Back to my collaborations</Link>
        </div>
      </div>
    );
  }
  if (!collaboration) return <Spinner label="Loading collaboration…" />;

  const role = myRole(collaboration, session.user.id);
  const active = collaboration.status !== 'archived';

  return (
    <div className="collaboration-page" data-version={view.version} data-status={view.status}>
      <div className="main-column stack">
        {view.status === 'stale' && (
          <p className="warning" role="status">
            Live updates are paused while we reconnect. You are seeing the latest copy we could load.
          </p>
        )}
        {view.status === 'error' && (
          <div className="warning row spread wrap" role="alert">
            <p>
              Live updates for this collaboration are off: {subscriptionProblem(view.errorCode, view.error)} You are
              seeing the latest copy we could load.
            </p>
            <button type="button" className="button small" onClick={retry}>
              Try again
            </button>
          </div>
        )}
        <CollaborationDetails collaboration={collaboration} role={role} />
        <ActivitiesBoard collaboration={collaboration} role={role} />
        <MessageFeed
          collaborationId={collaboration.id}
          messages={view.messages}
          epoch={view.messagesEpoch}
          members={collaboration.members}
          rules={collaboration.rules ?? []}
          userId={session.user.id}
          canSend={active && canRun(role, 'sendMessage')}
          maxMessageChars={config.maxMessageChars}
          live={view.status !== 'stale'}
          renderAfter={(message) =>
            message.author?.type === 'ai' && active ? <AiAnswerSuggestions message={message} collaboration={collaboration} role={role} /> : null
          }
        />
      </div>
      <aside className="side-column stack">
        <MembersPanel
          collaboration={collaboration}
          role={role}
          userId={session.user.id}
          presence={view.presence}
          onLeft={() => navigate('/')}
        />
        {active && role !== null && <AiChatPanel collaboration={collaboration} role={role} maxChars={config.maxMessageChars} />}
        <RulesCard collaboration={collaboration} role={role} />
      </aside>
    </div>
  );
}
