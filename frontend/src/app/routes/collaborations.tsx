import { useNavigate } from 'react-router';

import { CollaborationsList } from '@/features/collaborations/components/collaborations-list';
import { CreateCollaborationForm } from '@/features/collaborations/components/create-collaboration-form';
import { useSession } from '@/lib/auth/auth-context';

export function CollaborationsRoute() {
  const session = useSession();
  const navigate = useNavigate();
  return (
    <div className="two-columns">
      <section className="stack" aria-labelledby="my-collaborations-heading">
        <h1 id="my-collaborations-heading">My collaborations</h1>
        <CollaborationsList userId={session.user.id} />
      </section>
      <aside>
        <CreateCollaborationForm onCreated={(c) => navigate(`/collaborations/${c.id}`)} />
      </aside>
    </div>
  );
}
