// Short-lived notices ("Sent to the owner for approval"), shown by <Notifications>.

export type Notice = { id: number; kind: 'info' | 'success' | 'error'; text: string };

type Listener = (notices: Notice[]) => void;

let notices: Notice[] = [];
let nextId = 1;
const listeners = new Set<Listener>();

function publish(next: Notice[]): void {
  notices = next;
  for (const listener of [...listeners]) listener(notices);
}

export const notifications = {
  get: (): Notice[] => notices,
  subscribe(listener: Listener): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
  show(text: string, kind: Notice['kind'] = 'info', timeout = 6000): number {
    const id = nextId++;
    publish([...notices, { id, kind, text }]);
    if (timeout > 0) setTimeout(() => notifications.dismiss(id), timeout);
    return id;
  },
  dismiss(id: number): void {
    publish(notices.filter((notice) => notice.id !== id));
  },
};
