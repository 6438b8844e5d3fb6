import { useSyncExternalStore } from 'react';

import { notifications } from '@/stores/notifications';

export function Notifications() {
  const notices = useSyncExternalStore(notifications.subscribe, notifications.get);
  return (
    <div className="notifications" aria-live="polite">
      {notices.map((notice) => (
        <div key={notice.id} className={`notice notice-${notice.kind}`} role="status">
          <span>{notice.text}</span>
          <button type="button" className="button link" aria-label="Dismiss notice" onClick={() => notifications.dismiss(notice.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
