import { useState, type FormEvent } from 'react';

import { ErrorMessage } from '@/components/ui/error-message';
import { useMutation } from '@/hooks/use-mutation';
import { useAuth } from '@/lib/auth/auth-context';

/** Dev mode: any email signs in. Supabase mode: email and password (or a new account). */
export function SignInForm({ onSignedIn }: { onSignedIn: () => void }) {
  const { config, service } = useAuth();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [creating, setCreating] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const supabase = config.authMode === 'supabase';

  const submit = useMutation(async () => {
    setNotice(null);
    if (!supabase) {
      await service.signInDev(email.trim());
      onSignedIn();
      return;
    }
    if (creating) {
      const session = await service.signUp(email.trim(), password);
      if (!session) {
        setNotice('Account created. Check your email to confirm it, then sign in.');
        setCreating(false);
        return;
      }
    } else {
      await service.signInWithPassword(email.trim(), password);
    }
    onSignedIn();
  });

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    void submit.run();
  };

  const heading = creating ? 'Create your account' : 'Sign in to Tandem';
  return (
    <form className="card narrow stack" onSubmit={onSubmit} aria-labelledby="sign-in-heading">
      <h1 id="sign-in-heading">{heading}</h1>
      {!supabase && (
        <p className="muted">
          Development mode: enter any email address to sign in as that person. No password is needed.
        </p>
      )}
      <label className="field">
        <span>Email</span>
        <input
          type="email"
          autoComplete="email"
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          required
          placeholder="you@example.com"
        />
      </label>
      {supabase && (
        <label className="field">
          <span>Password</span>
          <input
            type="password"
            autoComplete={creating ? 'new-password' : 'current-password'}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            required
            minLength={6}
          />
        </label>
      )}
      {submit.error !== null && <ErrorMessage error={submit.error} />}
      {notice && (
        <p className="notice notice-success" role="status">
          {notice}
        </p>
      )}
      <button type="submit" className="button primary" disabled={submit.pending}>
        {submit.pending ? 'Please wait…' : creating ? 'Create account' : 'Sign in'}
      </button>
      {supabase && (
        <button type="button" className="button link" onClick={() => setCreating((value) => !value)}>
          {creating ? 'I already have an account' : 'Create an account'}
        </button>
      )}
    </form>
  );
}
