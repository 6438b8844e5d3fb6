// Apply a `collaboration_updated` event's changes to a copy of the document,
// immutably: `updatedFields` first, then `removedFields`. Paths are dotted and
// numeric segments index arrays, the way MongoDB change streams report them:
//
//   {"updatedFields": {"title": "x", "activities.2.status": "done", "members.3": {...}},
//    "removedFields": ["description"]}
//
// A truncated array arrives as its whole new value in `updatedFields`. Only the
// objects and arrays on a changed path are copied; everything else is shared,
// so React can compare by reference.

import type { FieldChanges } from '@/types/api';

type Container = Record<string, unknown> | unknown[];

const INDEX = /^(0|[1-9]\d*)$/;

function isContainer(value: unknown): value is Container {
  return typeof value === 'object' && value !== null;
}

function copyOf(value: Container): Container {
  return Array.isArray(value) ? value.slice() : { ...value };
}

function getChild(container: Container, key: string): unknown {
  if (Array.isArray(container)) return INDEX.test(key) ? container[Number(key)] : undefined;
  return container[key];
}

function setChild(container: Container, key: string, value: unknown): void {
  if (Array.isArray(container)) {
    if (!INDEX.test(key)) throw new Error(`cannot use ${JSON.stringify(key)} as an array index`);
    const index = Number(key);
    // MongoDB pads with null when an index lies past the end; appending is index === length.
    while (container.length < index) container.push(null);
    container[index] = value;
  } else {
    container[key] = value;
  }
}

/** A copy of `root` with `value` set at `path`; missing parents become objects (as in MongoDB). */
export function setPath<T>(root: T, path: string, value: unknown): T {
  const keys = path.split('.');
  const top = copyOf(isContainer(root) ? root : {});
  let node = top;
  for (let i = 0; i < keys.length - 1; i++) {
    const key = keys[i]!;
    const child = getChild(node, key);
    const next = isContainer(child) ? copyOf(child) : {};
    setChild(node, key, next);
    node = next;
  }
  setChild(node, keys[keys.length - 1]!, value);
  return top as T;
}

/** A copy of `root` without `path`. Unsetting an array element leaves null (MongoDB's $unset). */
export function removePath<T>(root: T, path: string): T {
  if (!isContainer(root)) return root;
  const keys = path.split('.');
  const top = copyOf(root);
  let node = top;
  for (let i = 0; i < keys.length - 1; i++) {
    const child = getChild(node, keys[i]!);
    if (!isContainer(child)) return root; // nothing there to remove
    const next = copyOf(child);
    setChild(node, keys[i]!, next);
    node = next;
  }
  const last = keys[keys.length - 1]!;
  if (Array.isArray(node)) {
    if (INDEX.test(last) && Number(last) < node.length) node[Number(last)] = null;
  } else {
    if (!(last in node)) return root;
    delete node[last];
  }
  return top as T;
}

export function applyChanges<T>(doc: T, changes: FieldChanges): T {
  let next = doc;
  for (const [path, value] of Object.entries(changes.updatedFields ?? {})) {
    next = setPath(next, path, value);
  }
  for (const path of changes.removedFields ?? []) {
    next = removePath(next, path);
  }
  return next;
}
