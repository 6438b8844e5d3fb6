// Which collaborations the signed-in shell keeps subscribed over the one WebSocket.
//
// The server follows at most 100 collaborations per connection (`invalid_request` "At most 100
// subscriptions per connection." past that), so the shell does not subscribe to every
// collaboration of mine. What needs a subscription:
//   - the collaboration page: it subscribes to the one it shows, itself;
//   - the approvals badge and inbox: `approval_created` / `approval_updated` reach only owners
//     subscribed to the collaboration, so the shell keeps the ones I own — active ones first, the
//     most recently active first, at most SHELL_SUBSCRIPTION_CAP (the inbox adds the collaborations
//     of the approvals it lists; past the cap the badge still learns of new approvals from its
//     30-second poll);
//   - the list of my collaborations shows a live copy where there is one and the polled one
//     (every 10 s) otherwise.

import type { Collaboration } from '@/types/api';
import { myRole } from '@/utils/roles';

/** Well under the server's 100: room for the page being viewed, the inbox's and lingering ones. */
export const SHELL_SUBSCRIPTION_CAP = 50;

export function shellSubscriptions(
  collaborations: readonly Collaboration[] | null | undefined,
  userId: string,
  cap: number = SHELL_SUBSCRIPTION_CAP,
): string[] {
  const owned = (collaborations ?? []).filter((c) => myRole(c, userId) === 'owner');
  const rank = (c: Collaboration) => (c.status === 'archived' ? 1 : 0);
  return owned
    .slice()
    .sort((a, b) => rank(a) - rank(b) || (b.lastActivityAt ?? '').localeCompare(a.lastActivityAt ?? ''))
    .slice(0, Math.max(0, cap))
    .map((c) => c.id);
}
