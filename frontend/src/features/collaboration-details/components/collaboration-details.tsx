import { useState, type FormEvent } from 'react';

import { ErrorMessage } from '@/components/ui/error-message';
import { useMutation } from '@/hooks/use-mutation';
import { announceOutcome } from '@/lib/run-action';
import type { Collaboration, Role } from '@/types/api';
import { canRun, roleLabel } from '@/utils/roles';

import { archiveCollaboration } from '../api/archive-collaboration';
import { updateDetails } from '../api/update-details';

type Props = { collaboration: Collaboration; role: Role | null };

export function CollaborationDetails({ collaboration, role }: Props) {
  const [editing, setEditing] = useState(false);
  const active = collaboration.status !== 'archived';
  const canEdit = active && canRun(role, 'updateDetails');
  const canArchive = active && canRun(role, 'archiveCollaboration');
  const archive = useMutation(async () => announceOutcome(await archiveCollaboration(collaboration.id), 'Collaboration archived.'));

  return (
    <section className="card stack" aria-labelledby="details-heading">
      <div className="row spread details-head">
        <div className="details-title">
          <h1 id="details-heading" className="collaboration-title">
            {collaboration.title}
          </h1>
          <p className="meta">
            {role && <span className={`badge role-${role}`}>You are {roleLabel(role).toLowerCase()}</span>}
            {collaboration.status === 'archived' && <span className="badge muted">Archived</span>}
            <span className="muted">Version {collaboration.version}</span>
          </p>
        </div>
        <div className="row wrap details-actions">
          {canEdit && !editing && (
            <button type="button" className="button" onClick={() => setEditing(true)}>
              Edit details
            </button>
          )}
          {canArchive && (
            <button
              type="button"
              className="button danger-outline"
              disabled={archive.pending}
              onClick={() => {
                if (window.confirm('Archive this collaboration? It becomes read-only.')) void archive.run();
              }}
            >
              Archive
            </button>
          )}
        </div>
      </div>
      {editing ? (
        <DetailsForm collaboration={collaboration} onDone={() => setEditing(false)} />
      ) : (
        <p className="description">{collaboration.description || <span className="muted">No description yet.</span>}</p>
      )}
      {archive.error !== null && <ErrorMessage error={archive.error} onDismiss={archive.reset} />}
    </section>
  );
}

function DetailsForm({ collaboration, onDone }: { collaboration: Collaboration; onDone: () => void }) {
  const [title, setTitle] = useState(collaboration.title);
  const [description, setDescription] = useState(collaboration.description ?? '');
  // The details this edit started from: if someone else changes them meanwhile, say so before overwriting.
  const [base, setBase] = useState({ title: collaboration.title, description: collaboration.description ?? '' });
  const [overwriteWarning, setOverwriteWarning] = useState(false);
  const save = useMutation(updateDetails);
  const current = { title: collaboration.title, description: collaboration.description ?? '' };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (current.title !== base.title || current.description !== base.description) {
      setBase(current);
      setOverwriteWarning(true);
      return;
    }
    const payload: { title?: string; description?: string } = {};
    if (title.trim() !== current.title) payload.title = title.trim();
    if (description !== current.description) payload.description = description;
    if (Object.keys(payload).length === 0) {
      onDone();
      return;
    }
    const outcome = await save.run({ collaborationId: collaboration.id, expectedVersion: collaboration.version, ...payload });
    if (outcome) {
      announceOutcome(outcome);
      onDone();
    }
  };

  return (
    <form className="stack" onSubmit={submit} aria-label="Edit details">
      <label className="field">
        <span>Title</span>
        <input value={title} onChange={(e) => setTitle(e.target.value)} required maxLength={200} />
      </label>
      <label className="field">
        <span>Description</span>
        <textarea value={description} onChange={(e) => setDescription(e.target.value)} maxLength={5000} rows={3} />
      </label>
      {overwriteWarning && (
        <p className="warning" role="alert">
          Someone else changed the details while you were editing (the title is now “{current.title}”). Press Save
          details again to replace them with yours.
        </p>
      )}
      {save.error !== null && <ErrorMessage error={save.error} />}
      <div className="row">
        <button type="submit" className="button primary" disabled={save.pending || !title.trim()}>
          {save.pending ? 'Saving…' : 'Save details'}
        </button>
        <button type="button" className="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}
