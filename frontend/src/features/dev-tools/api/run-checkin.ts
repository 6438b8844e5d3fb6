import { api } from '@/lib/api-client';

export type CheckinSummary = Record<string, unknown>;

/** POST /api/dev/checkin (dev mode only): run the AI check-in now; the run's summary. */
export async function runCheckin(): Promise<CheckinSummary> {
  const data = await api.post<CheckinSummary | { run?: CheckinSummary; summary?: CheckinSummary } | null>('/api/dev/checkin');
  if (!data) return {};
  if ('summary' in data && data.summary && typeof data.summary === 'object') return data.summary as CheckinSummary;
  if ('run' in data && data.run && typeof data.run === 'object') return data.run as CheckinSummary;
  return data;
}

function count(value: unknown): number | null {
  if (typeof value === 'number') return value;
  if (Array.isArray(value)) return value.length;
  return null;
}

/** "1 collaboration checked, 3 actions run, 1 sent for approval" from whatever counters the summary has. */
export function describeCheckin(summary: CheckinSummary): string {
  const parts: string[] = [];
  const pick = (keys: string[], one: string, many: string) => {
    for (const key of keys) {
      const n = count(summary[key]);
      if (n !== null) {
        parts.push(`${n} ${n === 1 ? one : many}`);
        return;
      }
    }
  };
  pick(['collaborations', 'collaborationCount'], 'collaboration checked', 'collaborations checked');
  pick(['actionsRun', 'actions_run', 'actions'], 'action run', 'actions run');
  pick(['approvalsCreated', 'approvalsMade', 'approvals_made', 'approvals'], 'sent for approval', 'sent for approval');
  pick(['invalidProposals', 'invalid_proposals', 'invalid'], 'invalid proposal', 'invalid proposals');
  return parts.length ? `AI check-in finished: ${parts.join(', ')}.` : 'AI check-in finished.';
}
