import { useState, type FormEvent } from 'react';

import { ErrorMessage } from '@/components/ui/error-message';
import { useMutation } from '@/hooks/use-mutation';
import { firstAnswer } from '@/lib/offline-queue';
import { announceOutcome } from '@/lib/run-action';
import type { Collaboration } from '@/types/api';
import { localInputToIso } from '@/utils/format';

import { proposeActivity } from '../api/propose-activity';

export function ProposeActivityForm({ collaboration }: { collaboration: Collaboration }) {
  const [open, setOpen] = useState(false);
  const [title, setTitle] = useState('');
  const [description, setDescription] = useState('');
  const [due, setDue] = useState('');
  const [assigneeId, setAssigneeId] = useState('');
  // Through the offline queue: a refusal shows here; without a connection the board lists it as not
  // sent yet until the server has it.
  const propose = useMutation(async () => {
    const submitted = await proposeActivity(collaboration.id, {
      title: title.trim(),
      description: description.trim() || undefined,
      dueAt: localInputToIso(due) ?? undefined,
      assigneeId: assigneeId || undefined,
    });
    const answer = await firstAnswer(submitted);
    if (answer) announceOutcome(answer);
    else void submitted.outcome.then((outcome) => announceOutcome(outcome ?? undefined));
    setTitle('');
    setDescription('');
    setDue('');
    setAssigneeId('');
    setOpen(false);
  });

  if (!open) {
    return (
      <div className="row">
        <button type="button" className="button primary" onClick={() => setOpen(true)}>
          Propose an activity
        </button>
      </div>
    );
  }

  const submit = (event: FormEvent) => {
    event.preventDefault();
    void propose.run();
  };

  return (
    <form className="stack inset" onSubmit={submit} aria-label="Propose an activity">
      <label className="field">
        <span>Activity title</span>
        <input value={title} onChange={(e) => setTitle(e.target.value)} required maxLength={200} placeholder="Plan picnic" />
      </label>
      <label className="field">
        <span>Activity description (optional)</span>
        <textarea value={description} onChange={(e) => setDescription(e.target.value)} rows={2} maxLength={5000} />
      </label>
      <div className="row wrap">
        <label className="field">
          <span>Due (optional)</span>
          <input type="datetime-local" value={due} onChange={(e) => setDue(e.target.value)} />
        </label>
        <label className="field">
          <span>Assignee (optional)</span>
          <select value={assigneeId} onChange={(e) => setAssigneeId(e.target.value)}>
            <option value="">Nobody</option>
            {collaboration.members.map((member) => (
              <option key={member.userId} value={member.userId}>
                {member.email ?? member.userId}
              </option>
            ))}
          </select>
        </label>
      </div>
      {propose.error !== null && <ErrorMessage error={propose.error} onDismiss={propose.reset} />}
      <div className="row">
        <button type="submit" className="button primary" disabled={propose.pending || !title.trim()}>
          {propose.pending ? 'Proposing…' : 'Propose'}
        </button>
        <button type="button" className="button" onClick={() => setOpen(false)}>
          Close
        </button>
      </div>
    </form>
  );
}
