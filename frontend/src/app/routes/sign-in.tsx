import { Navigate, useNavigate, useSearchParams } from 'react-router';

import { SignInForm } from '@/features/auth/components/sign-in-form';
import { useAuth } from '@/lib/auth/auth-context';

function safeNext(value: string | null): string {
  return value && value.startsWith('/') && !value.startsWith('//') ? value : '/';
}

export function SignInRoute() {
  const { session } = useAuth();
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const next = safeNext(params.get('next'));
  if (session) return <Navigate to={next} replace />;
  return (
    <main className="page-center">
      <div className="sign-in">
        <p className="brand big">
          <span className="brand-mark" aria-hidden="true" />
          Tandem
        </p>
        <SignInForm onSignedIn={() => navigate(next, { replace: true })} />
      </div>
    </main>
  );
}
