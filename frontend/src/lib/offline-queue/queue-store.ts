// Where queued actions are kept: IndexedDB in the browser (they survive a reload
// and a closed tab), memory where there is none. The queue only sees this
// small interface, so tests can use either.

export type QueuedError = { status: number; code: string; message: string; details: Record<string, unknown> };

export type QueuedAction = {
  /** The Idempotency-Key sent with every attempt of this action (also its id). */
  key: string;
  /** Order of sending: the queue sends lower first. */
  order: number;
  /** Whose action it is: only the signed-in user's are shown and sent. */
  userId: string;
  name: string;
  collaborationId: string;
  payload: Record<string, unknown>;
  createdAt: string;
  /** queued: to be sent; failed: the server refused it (`error` says why), waiting for retry or discard. */
  state: 'queued' | 'failed';
  error?: QueuedError;
};

export interface QueueStore {
  /** Every stored action, in no particular order. */
  load(): Promise<QueuedAction[]>;
  put(action: QueuedAction): Promise<void>;
  remove(key: string): Promise<void>;
}

export function memoryQueueStore(initial: QueuedAction[] = []): QueueStore {
  const items = new Map(initial.map((item) => [item.key, structuredClone(item)]));
  return {
    load: async () => [...items.values()].map((item) => structuredClone(item)),
    put: async (action) => {
      items.set(action.key, structuredClone(action));
    },
    remove: async (key) => {
      items.delete(key);
    },
  };
}

const DB_VERSION = 1;

function done<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error ?? new Error('IndexedDB request failed'));
  });
}

/** IndexedDB database `dbName`, object store `actions` keyed by `key`. Null where the browser has no IndexedDB. */
export function indexedDbQueueStore(dbName = 'tandem-offline-queue', factory: IDBFactory | undefined = globalThis.indexedDB): QueueStore | null {
  if (!factory) return null;
  let opening: Promise<IDBDatabase> | null = null;
  const open = () => {
    opening ??= new Promise<IDBDatabase>((resolve, reject) => {
      const request = factory.open(dbName, DB_VERSION);
      request.onupgradeneeded = () => {
        if (!request.result.objectStoreNames.contains('actions')) request.result.createObjectStore('actions', { keyPath: 'key' });
      };
      request.onsuccess = () => {
        const db = request.result;
        // Another tab upgrading the schema: let it, and open again next time.
        db.onversionchange = () => {
          db.close();
          opening = null;
        };
        resolve(db);
      };
      request.onerror = () => {
        opening = null;
        reject(request.error ?? new Error('IndexedDB could not be opened'));
      };
      request.onblocked = () => undefined;
    });
    return opening;
  };
  const write = async (fn: (store: IDBObjectStore) => IDBRequest) => {
    const db = await open();
    const tx = db.transaction('actions', 'readwrite');
    fn(tx.objectStore('actions'));
    await new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error ?? new Error('IndexedDB write failed'));
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB write aborted'));
    });
  };
  return {
    load: async () => {
      const db = await open();
      return (await done(db.transaction('actions', 'readonly').objectStore('actions').getAll())) as QueuedAction[];
    },
    put: (action) => write((store) => store.put(action)),
    remove: (key) => write((store) => store.delete(key)),
  };
}
