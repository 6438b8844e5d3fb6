import { ApprovalsInbox } from '@/features/approvals/components/approvals-inbox';

export function ApprovalsRoute() {
  return <ApprovalsInbox />;
}
