// @vitest-environment jsdom
import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';

import { MessageComposer } from './message-composer';

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

afterEach(() => vi.unstubAllGlobals());

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
    expect(fetchMock).toHaveBeenCalledWith('/api/actions/sendMessage', expect.objectContaining({ method: 'POST' }));
  });
});
