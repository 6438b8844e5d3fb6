// @vitest-environment jsdom
import { AuthApiError } from '@supabase/supabase-js';
import { render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { AuthContext } from '@/lib/auth/auth-context';
import { AuthService } from '@/lib/auth/auth-service';
import { sessionStore } from '@/lib/auth/session-store';
import type { RuntimeConfig } from '@/lib/runtime-config';
import { fakeAuth, reply, supabaseSession } from '@/testing/fake-supabase';

import { SignInForm } from './sign-in-form';

vi.mock('@supabase/supabase-js', async (original) => ({
  ...(await original<typeof import('@supabase/supabase-js')>()),
  createClient: (await import('@/testing/fake-supabase')).createClient,
}));

const config: RuntimeConfig = { authMode: 'supabase', supabaseUrl: 'https://sb.example', supabaseAnonKey: 'anon', maxMessageChars: 4000 };
let service: AuthService;

beforeEach(async () => {
  fakeAuth.reset();
  sessionStore.set(null);
  service = new AuthService(config);
  await service.start();
});

afterEach(() => service.dispose());

function renderForm(onSignedIn = vi.fn()) {
  render(
    <AuthContext.Provider value={{ config, session: null, service }}>
      <SignInForm onSignedIn={onSignedIn} />
    </AuthContext.Provider>,
  );
  return onSignedIn;
}

describe('<SignInForm> with Supabase', () => {
  it('signs in with email and password, and says so when they do not match', async () => {
    const user = userEvent.setup();
    const onSignedIn = renderForm();
    expect(screen.queryByText(/Development mode/)).not.toBeInTheDocument();
    await user.type(screen.getByLabelText('Email'), ' ann@example.com ');
    await user.type(screen.getByLabelText('Password'), 'wrong-one');

    fakeAuth.signInReply = reply.error(new AuthApiError('Invalid login credentials', 400, 'invalid_credentials'));
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByText('That email and password do not match an account.')).toBeInTheDocument();
    expect(onSignedIn).not.toHaveBeenCalled();

    fakeAuth.signInReply = reply.session(supabaseSession('ann@example.com', 'sb-token'));
    await user.clear(screen.getByLabelText('Password'));
    await user.type(screen.getByLabelText('Password'), 'right-one');
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    await waitFor(() => expect(onSignedIn).toHaveBeenCalledTimes(1));
    expect(fakeAuth.calls.at(-1)).toEqual({ method: 'signInWithPassword', args: { email: 'ann@example.com', password: 'right-one' } });
    expect(sessionStore.get()?.accessToken).toBe('sb-token');
  });

  it('creates an account and asks to confirm the email when Supabase wants that first', async () => {
    const user = userEvent.setup();
    const onSignedIn = renderForm();
    await user.click(screen.getByRole('button', { name: 'Create an account' }));
    expect(screen.getByRole('heading', { name: 'Create your account' })).toBeInTheDocument();
    await user.type(screen.getByLabelText('Email'), 'bo@example.com');
    await user.type(screen.getByLabelText('Password'), 'secret1');
    await user.click(screen.getByRole('button', { name: 'Create account' }));
    expect(await screen.findByRole('status')).toHaveTextContent('Account created. Check your email to confirm it, then sign in.');
    expect(fakeAuth.calls.at(-1)).toEqual({ method: 'signUp', args: { email: 'bo@example.com', password: 'secret1' } });
    expect(screen.getByRole('heading', { name: 'Sign in to Tandem' })).toBeInTheDocument();
    expect(onSignedIn).not.toHaveBeenCalled();
  });
});
