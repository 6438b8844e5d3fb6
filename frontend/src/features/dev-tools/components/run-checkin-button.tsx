import { useMutation } from '@/hooks/use-mutation';
import { describeError } from '@/lib/api-errors';
import { notifications } from '@/stores/notifications';

import { describeCheckin, runCheckin } from '../api/run-checkin';

/** Dev mode only: run the nightly AI check-in now. */
export function RunCheckinButton() {
  const checkin = useMutation(async () => {
    try {
      notifications.show(describeCheckin(await runCheckin()), 'success', 8000);
    } catch (error) {
      notifications.show(`AI check-in failed: ${describeError(error).message}`, 'error', 10000);
    }
  });
  return (
    <button type="button" className="button small dev" onClick={() => void checkin.run()} disabled={checkin.pending}>
      {checkin.pending ? 'Running AI check-in…' : 'Run AI check-in now'}
    </button>
  );
}
