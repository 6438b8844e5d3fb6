// @vitest-environment jsdom
import { render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { offlineQueue } from '@/lib/offline-queue';

import { MessageComposer } from './message-composer';

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

// Messages go through the offline queue, which sends for the signed-in user.
beforeEach(() => offlineQueue.setUser('u1'));
afterEach(async () => {
  await offlineQueue.setUser(null);
  vi.unstubAllGlobals();
});

describe('<MessageComposer>', () => {
  it("holds messages to the server's limit (maxMessageChars), not a fixed 4000", async () => {
    const fetchMock = vi.fn(async () => json(200, { collaborationId: 'col_1', version: 3, result: { messageId: 'msg_1' } }));
    vi.stubGlobal('fetch', fetchMock);
    render(<MessageComposer collaborationId="col_1" maxChars={10} />);

    await userEvent.type(screen.getByLabelText('New message'), 'Eleven char');
    expect(screen.getByText('Too long: 11/10 characters')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Send' })).toBeDisabled();

    await userEvent.type(screen.getByLabelText('New message'), '{Backspace}');
    expect(screen.queryByText(/Too long/)).not.toBeInTheDocument();
    await userEvent.click(screen.getByRole('button', { name: 'Send' }));
    await waitFor(() =>
      expect(fetchMock).toHaveBeenCalledWith('/api/actions/sendMessage', expect.objectContaining({ method: 'POST' })),
    );
  });

  it('sends with an Idempotency-Key, and clears at once while offline, keeping the message queued', async () => {
    const online = vi.spyOn(navigator, 'onLine', 'get').mockReturnValue(false);
    const fetchMock = vi.fn(async () => json(200, { collaborationId: 'col_1', version: 3, result: { messageId: 'msg_1' } }));
    vi.stubGlobal('fetch', fetchMock);
    render(<MessageComposer collaborationId="col_1" maxChars={100} />);
    await userEvent.type(screen.getByLabelText('New message'), 'while offline{Enter}');
    await waitFor(() => expect(screen.getByLabelText('New message')).toHaveValue(''));
    expect(fetchMock).not.toHaveBeenCalled();
    expect(offlineQueue.getEntries()).toEqual([expect.objectContaining({ name: 'sendMessage', status: 'waiting', payload: { text: 'while offline' } })]);

    online.mockReturnValue(true);
    offlineQueue.networkChanged();
    await waitFor(() => expect(offlineQueue.getEntries()).toEqual([]));
    const [, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect((init.headers as Record<string, string>)['Idempotency-Key']).toMatch(/^[A-Za-z0-9_-]+$/);
  });
});
