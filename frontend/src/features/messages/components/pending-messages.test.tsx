// @vitest-environment jsdom
import { render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { offlineQueue } from '@/lib/offline-queue';

import { MessageFeed } from './message-feed';
import { PendingMessageItems } from './pending-messages';

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

beforeEach(() => offlineQueue.setUser('u1'));
afterEach(async () => {
  await offlineQueue.setUser(null);
  vi.unstubAllGlobals();
});

function renderList(collaborationId = 'col_1') {
  return render(
    <ol aria-label="Messages">
      <PendingMessageItems collaborationId={collaborationId} />
    </ol>,
  );
}

describe('<PendingMessageItems>', () => {
  it('shows my queued messages of this collaboration only, waiting while offline', async () => {
    vi.spyOn(navigator, 'onLine', 'get').mockReturnValue(false);
    vi.stubGlobal('fetch', vi.fn());
    renderList();
    await offlineQueue.submit('sendMessage', 'col_1', { text: 'first' });
    await offlineQueue.submit('sendMessage', 'col_2', { text: 'elsewhere' });
    await offlineQueue.submit('completeActivity', 'col_1', { activityId: 'a1' });
    const items = await screen.findAllByTestId('pending-message');
    expect(items).toHaveLength(1);
    expect(items[0]).toHaveTextContent('first');
    expect(items[0]).toHaveTextContent('Waiting for connection');
    await Promise.all(offlineQueue.getEntries().map((entry) => offlineQueue.discard(entry.key)));
  });

  it('shows a refusal that came once back online with Retry and Discard; Discard removes it', async () => {
    const online = vi.spyOn(navigator, 'onLine', 'get').mockReturnValue(false);
    vi.stubGlobal('fetch', vi.fn(async () => json(403, { error: { code: 'forbidden', message: 'no', details: {} } })));
    renderList();
    await offlineQueue.submit('sendMessage', 'col_1', { text: 'refused one' });
    const item = await screen.findByTestId('pending-message');
    online.mockReturnValue(true);
    offlineQueue.networkChanged();
    expect(await within(item).findByRole('alert')).toHaveTextContent("You don't have permission");
    expect(within(item).getByRole('button', { name: 'Retry the message “refused one”' })).toBeEnabled();
    await userEvent.click(within(item).getByRole('button', { name: 'Discard the message “refused one”' }));
    await waitFor(() => expect(screen.queryByTestId('pending-message')).not.toBeInTheDocument());
    expect(offlineQueue.getEntries()).toEqual([]);
  });

  it('in the feed: no "No messages yet" while one of mine waits', async () => {
    vi.spyOn(navigator, 'onLine', 'get').mockReturnValue(false);
    vi.stubGlobal('fetch', vi.fn());
    render(
      <MessageFeed
        collaborationId="col_1"
        messages={[]}
        epoch={0}
        members={[]}
        rules={[]}
        userId="u1"
        canSend
        maxMessageChars={100}
        live
      />,
    );
    expect(screen.getByText('No messages yet. Say hello!')).toBeInTheDocument();
    const submitted = await offlineQueue.submit('sendMessage', 'col_1', { text: 'hello from the train' });
    expect(await screen.findByTestId('pending-message')).toHaveTextContent('hello from the train');
    expect(screen.queryByText('No messages yet. Say hello!')).not.toBeInTheDocument();
    await offlineQueue.discard(submitted.key);
  });
});
