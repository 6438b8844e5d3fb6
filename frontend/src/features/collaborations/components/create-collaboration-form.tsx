import { useState, type FormEvent } from 'react';

import { ErrorMessage } from '@/components/ui/error-message';
import { useMutation } from '@/hooks/use-mutation';
import type { Collaboration } from '@/types/api';

import { createCollaboration } from '../api/create-collaboration';

export function CreateCollaborationForm({ onCreated }: { onCreated: (collaboration: Collaboration) => void }) {
  const [title, setTitle] = useState('');
  const [description, setDescription] = useState('');
  const create = useMutation(createCollaboration);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const created = await create.run({ title: title.trim(), description: description.trim() || undefined });
    if (created) {
      setTitle('');
      setDescription('');
      onCreated(created);
    }
  };

  return (
    <form className="card stack" onSubmit={submit} aria-labelledby="create-collaboration-heading">
      <h2 id="create-collaboration-heading">New collaboration</h2>
      <label className="field">
        <span>Title</span>
        <input value={title} onChange={(e) => setTitle(e.target.value)} required maxLength={200} placeholder="Summer trip" />
      </label>
      <label className="field">
        <span>Description (optional)</span>
        <textarea value={description} onChange={(e) => setDescription(e.target.value)} maxLength={5000} rows={2} />
      </label>
      {create.error !== null && <ErrorMessage error={create.error} />}
      <div className="row">
        <button type="submit" className="button primary" disabled={create.pending || !title.trim()}>
          {create.pending ? 'Creating…' : 'Create collaboration'}
        </button>
      </div>
    </form>
  );
}
