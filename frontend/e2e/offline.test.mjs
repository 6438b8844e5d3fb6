// Offline and back (issue 13 items 4 and 5): while Frank's browser is offline he
// writes three messages, marks an activity done and cancels another; they show in
// place as pending, survive a reload, and once he is back they are sent in order
// with their original Idempotency-Keys: Erin sees each exactly once. The cancel,
// refused because Erin finished that activity meanwhile, shows on the activity
// with Retry and Discard. An answer lost on the way (the server applied it, the
// browser saw a network error) is sent again with the same key and applied once
// (skipped, saying why, on a server without Idempotency-Key support).
//
// "Offline" is Playwright's context.setOffline(true): the test checks that it
// really cuts the page's HTTP and WebSocket through Nginx on 127.0.0.1 in this
// Chromium before relying on it.

import assert from 'node:assert/strict';

import { checkA11y } from './a11y.mjs';
import { defineSuite, sleep, TIMEOUTS, until } from './harness.mjs';

const suite = defineSuite('offline');

const OWNER = 'erin@example.com';
const EDITOR = 'frank@example.com';
const TITLE = 'Garden club';
const SEEDS = 'Order seeds';
const FENCE = 'Fix the fence';
const OFFLINE_TEXTS = ['Offline one: seed list attached', 'Offline two: I can water on Tuesday', 'Offline three: who has the key?'];

const shared = { erin: null, frank: null, collaborationId: null };

function need(...keys) {
  for (const key of keys) if (!shared[key]) throw new Error(`an earlier test did not get this far (no ${key})`);
}

function messages(person) {
  return person.page.getByRole('log', { name: 'Messages' }).getByTestId('message');
}

function messageWithText(person, text) {
  return messages(person).filter({ has: person.page.locator('.message-text', { hasText: text }) });
}

function pendingMessages(person) {
  return person.page.getByRole('log', { name: 'Messages' }).getByTestId('pending-message');
}

function activityIn(person, group, title) {
  return person.page.getByRole('list', { name: `${group} activities` }).getByRole('listitem', { name: title, exact: true });
}

function collaborationUrl() {
  return suite.env.url(`/collaborations/${encodeURIComponent(shared.collaborationId)}`);
}

async function openCollaboration(person) {
  await person.page.goto(collaborationUrl());
  await person.page.getByRole('heading', { level: 1, name: TITLE }).waitFor();
  await person.waitLive();
}

/** The actions in the browser's offline queue (IndexedDB), oldest first. */
function queuedInBrowser(page) {
  return page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open('tandem-offline-queue');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const db = open.result;
          const read = db.transaction('actions', 'readonly').objectStore('actions').getAll();
          read.onerror = () => reject(read.error);
          read.onsuccess = () => {
            db.close();
            const items = read.result.sort((a, b) => a.order - b.order);
            resolve(items.map((item) => ({ key: item.key, name: item.name, payload: item.payload, state: item.state })));
          };
        };
      }),
  );
}

/** Does the page reach the server? Over HTTP, and with a new WebSocket. */
async function pageReachesServer(page) {
  return page.evaluate(async () => {
    const http = await fetch('/api/health', { cache: 'no-store' }).then(
      (response) => `answered ${response.status}`,
      () => 'failed',
    );
    const ws = await new Promise((resolve) => {
      const socket = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
      const timer = setTimeout(() => resolve('no answer'), 5_000);
      socket.onopen = () => {
        clearTimeout(timer);
        socket.close();
        resolve('opened');
      };
      socket.onerror = () => {
        clearTimeout(timer);
        resolve('failed');
      };
    });
    return { http, ws, onLine: navigator.onLine };
  });
}

/** Does the server store and replay answers by Idempotency-Key (DESIGN.md §4)? */
let idempotencySupport = null;
async function serverReplaysByKey() {
  if (idempotencySupport !== null) return idempotencySupport;
  const env = suite.env;
  const token = await env.devLogin('offline-probe@example.com');
  const headers = { 'Idempotency-Key': `offline-probe-${Date.now()}` };
  const first = await env.api('POST', '/api/collaborations', { token, body: { title: 'Idempotency probe' }, headers });
  const second = await env.api('POST', '/api/collaborations', { token, body: { title: 'Idempotency probe' }, headers });
  idempotencySupport = first.status === 201 && second.status === 201 && second.headers.get('idempotent-replayed') === 'true';
  return idempotencySupport;
}

suite.test('setup: Erin owns a collaboration with two scheduled activities; Frank, an editor, has it open', async () => {
  const env = suite.env;
  const token = await env.devLogin(OWNER);
  const created = await env.api('POST', '/api/collaborations', { token, body: { title: TITLE } });
  assert.equal(created.status, 201, created.text);
  const collaborationId = created.json?.collaborationId ?? created.json?.id;
  assert.ok(collaborationId, created.text);
  const run = async (name, payload) => {
    const answer = await env.api('POST', `/api/actions/${name}`, { token, body: { collaborationId, payload } });
    assert.equal(answer.status, 200, `${name}: ${answer.text}`);
  };
  await run('addMember', { email: EDITOR, role: 'editor' });
  for (const title of [SEEDS, FENCE]) await run('proposeActivity', { title });
  const read = await env.api('GET', `/api/collaborations/${collaborationId}`, { token });
  for (const activity of read.json.activities) await run('scheduleActivity', { activityId: activity.id, scheduledFor: '2026-12-20T10:00:00Z' });
  shared.collaborationId = collaborationId;

  const erin = await env.signIn(OWNER);
  const frank = await env.signIn(EDITOR);
  await openCollaboration(erin);
  await openCollaboration(frank);
  await activityIn(frank, 'Scheduled', SEEDS).waitFor();
  Object.assign(shared, { erin, frank });
});

suite.test(
  'made offline: pending in place, kept over a reload, sent in order with the original keys once back; Erin sees each exactly once',
  async () => {
    need('erin', 'frank', 'collaborationId');
    const { erin, frank } = shared;
    const page = frank.page;

    // Offline, and check it really cuts this page off from Nginx on 127.0.0.1 (HTTP and WebSocket).
    assert.deepEqual(await pageReachesServer(page), { http: 'answered 200', ws: 'opened', onLine: true });
    await frank.context.setOffline(true);
    const cut = await pageReachesServer(page);
    console.log(`# context.setOffline(true) in this Chromium: HTTP ${cut.http}, a new WebSocket ${cut.ws}, navigator.onLine ${cut.onLine}`);
    assert.deepEqual(cut, { http: 'failed', ws: 'failed', onLine: false }, 'setOffline(true) must cut HTTP and WebSocket');
    await until(async () => (await frank.connectionState()) === 'offline', { message: "Frank's app to notice it is offline" });

    // Three messages: each clears the composer at once and shows as pending.
    for (const text of OFFLINE_TEXTS) {
      await page.getByLabel('New message').fill(text);
      await page.getByRole('button', { name: 'Send', exact: true }).click();
      await until(async () => (await page.getByLabel('New message').inputValue()) === '', { message: 'the composer to clear' });
    }
    await until(async () => (await pendingMessages(frank).count()) === 3, { message: 'three pending messages' });
    for (const [index, text] of OFFLINE_TEXTS.entries()) {
      const item = pendingMessages(frank).nth(index);
      assert.equal(await item.locator('.message-text').textContent(), text);
      assert.equal(await item.locator('.queued-status').textContent(), 'Waiting for connection');
    }
    assert.equal(await messageWithText(frank, 'Offline one').count(), 0, 'not shown as sent');

    // An activity change: Mark done, pending on the card.
    const seeds = activityIn(frank, 'Scheduled', SEEDS);
    await seeds.getByRole('button', { name: 'Mark done' }).click();
    const seedsPending = seeds.getByTestId('pending-activity-change');
    await seedsPending.waitFor();
    assert.match(await seedsPending.textContent(), /Mark done\s*Waiting for connection/);
    assert.equal(await seeds.getByRole('button', { name: 'Mark done' }).isDisabled(), true);

    // And a cancel Erin will make impossible meanwhile (she finishes that activity first).
    const fence = activityIn(frank, 'Scheduled', FENCE);
    await fence.getByRole('button', { name: 'Cancel activity' }).click();
    await fence.getByLabel('Reason (optional)').fill('Rain all week');
    await fence.getByRole('button', { name: 'Confirm cancel' }).click();
    await fence.getByTestId('pending-activity-change').waitFor();

    assert.equal(await page.getByTestId('unsent-count').textContent(), '5 unsent');
    await checkA11y(page, 'a collaboration with actions waiting for the connection');
    await suite.env.screenshot(page, 'offline-pending', { element: page.locator('.main-column') });

    const queued = await queuedInBrowser(page);
    assert.deepEqual(
      queued.map((item) => [item.name, item.payload.text ?? 'activity']),
      [...OFFLINE_TEXTS.map((text) => ['sendMessage', text]), ['completeActivity', 'activity'], ['cancelActivity', 'activity']],
    );
    const keys = queued.map((item) => item.key);
    assert.equal(new Set(keys).size, 5, 'a key per action');
    for (const key of keys) assert.match(key, /^[A-Za-z0-9_-]{1,128}$/);

    // Erin has seen none of it; she finishes the fence herself.
    await sleep(1_000);
    assert.equal(await messageWithText(erin, 'Offline').count(), 0);
    await activityIn(erin, 'Scheduled', FENCE).getByRole('button', { name: 'Mark done' }).click();
    await activityIn(erin, 'Done', FENCE).waitFor({ timeout: TIMEOUTS.live });

    // A reload while offline. With setOffline Chromium cannot load the page at all (there is no service
    // worker) and keeps the old document, so the reload happens with the server cut off instead: the SPA's
    // files still load, while every /api request fails as the network would and /ws is closed at once.
    let serverCut = true;
    await frank.context.route('**/api/**', (route) => (serverCut ? route.abort('internetdisconnected') : route.continue()));
    await frank.context.routeWebSocket(/\/ws$/, (ws) => {
      if (serverCut) ws.close({ code: 4000, reason: 'e2e: server unreachable' });
      else ws.connectToServer();
    });
    await frank.context.setOffline(false);
    await frank.markLoad();
    await page.reload();
    await page.getByRole('heading', { name: 'Tandem is not reachable' }).waitFor();
    await assert.rejects(frank.assertNoReload(), /reloaded/, 'the page really reloaded');
    assert.deepEqual(
      (await queuedInBrowser(page)).map((item) => item.key),
      keys,
      'the reloaded page still holds the five actions, with their keys',
    );

    // Back: the app starts with the queue it had and sends it in order, with the same keys.
    const sent = [];
    const onRequest = (request) => {
      const match = /\/api\/actions\/([A-Za-z]+)$/.exec(new URL(request.url()).pathname);
      if (request.method() === 'POST' && match) sent.push({ name: match[1], key: request.headers()['idempotency-key'] });
    };
    serverCut = false;
    await frank.context.unroute('**/api/**');
    page.on('request', onRequest);
    await page.getByRole('button', { name: 'Try again' }).click();
    await page.getByRole('heading', { level: 1, name: TITLE }).waitFor();
    await frank.waitLive();

    // Erin sees the three messages and the activity change, once each.
    for (const text of OFFLINE_TEXTS) await messageWithText(erin, text).waitFor({ timeout: TIMEOUTS.live });
    await activityIn(erin, 'Done', SEEDS).waitFor({ timeout: TIMEOUTS.live });
    await until(() => sent.length >= 5, { message: 'the five queued actions to be sent' });
    await sleep(1_500); // anything sent twice would show by now
    page.off('request', onRequest);
    for (const person of [erin, frank]) {
      for (const text of OFFLINE_TEXTS) assert.equal(await messageWithText(person, text).count(), 1, `${person.email} sees “${text}” once`);
    }
    const texts = await messages(erin).locator('.message-text').allTextContents();
    assert.deepEqual(
      texts.filter((text) => text.startsWith('Offline')),
      OFFLINE_TEXTS,
      'in the order they were written',
    );
    assert.deepEqual(
      sent.map((request) => request.key),
      keys,
      'sent in order, each once, with the key it was queued with',
    );

    // The refused cancel stays on Frank's card (now in Done), with Retry and Discard.
    await until(async () => (await pendingMessages(frank).count()) === 0, { message: "Frank's pending messages to go" });
    assert.equal(await page.getByTestId('unsent-count').count(), 0, 'nothing left unsent (the refused one is not counted)');
    const fenceDone = activityIn(frank, 'Done', FENCE);
    const refused = fenceDone.getByTestId('pending-activity-change');
    await refused.getByRole('alert').waitFor();
    assert.equal(await refused.getAttribute('class'), 'queued queued-failed');
    await refused.getByRole('button', { name: `Retry cancel “${FENCE}”` }).waitFor();
    await checkA11y(page, 'a collaboration with a refused queued action');
    await suite.env.screenshot(page, 'offline-refused', { element: fenceDone });
    await refused.getByRole('button', { name: `Discard cancel “${FENCE}”` }).click();
    await refused.waitFor({ state: 'detached' });
    assert.deepEqual(await queuedInBrowser(page), []);
  },
  { timeout: 120_000 },
);

suite.test('an answer lost on the way is sent again with the same Idempotency-Key and applied once', async (t) => {
  need('erin', 'frank');
  if (!(await serverReplaysByKey())) {
    const reason = 'the server does not replay a repeated request by Idempotency-Key yet (Idempotent-Replayed; the `idem` branch): skipped';
    console.log(`# SKIP ${reason}`);
    t.skip(reason);
    return;
  }
  const { erin, frank } = shared;
  const page = frank.page;
  const TEXT = 'This one lost its answer';
  const attempts = [];
  let dropped = false;
  await page.route('**/api/actions/sendMessage', async (route) => {
    const key = route.request().headers()['idempotency-key'];
    const response = await route.fetch();
    attempts.push({ key, status: response.status(), replayed: response.headers()['idempotent-replayed'] ?? null });
    if (!dropped) {
      dropped = true; // the server applied it; the browser sees the connection fail
      await route.abort('connectionreset');
    } else {
      await route.fulfill({ response });
    }
  });
  try {
    await page.getByLabel('New message').fill(TEXT);
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    await messageWithText(erin, TEXT).waitFor({ timeout: TIMEOUTS.live });
    await until(() => attempts.length >= 2, { message: 'the resend', timeout: TIMEOUTS.reconnect });
    await until(async () => (await pendingMessages(frank).count()) === 0, { message: 'the pending message to go' });
    await sleep(1_500);
  } finally {
    await page.unroute('**/api/actions/sendMessage');
  }
  assert.equal(attempts.length, 2, JSON.stringify(attempts));
  assert.equal(attempts[1].key, attempts[0].key, 'the resend carries the same key');
  assert.deepEqual(
    attempts.map((a) => [a.status, a.replayed]),
    [
      [200, null],
      [200, 'true'],
    ],
  );
  assert.equal(await messageWithText(erin, TEXT).count(), 1, 'Erin sees it once');
  assert.equal(await messageWithText(frank, TEXT).count(), 1, 'Frank sees it once');
});

suite.test('after a dropped socket the realtime client resumes with sinceSeq and shows what it missed once', async (t) => {
  need('erin', 'frank');
  const { erin, frank } = shared;
  const TEXT = 'Written while Erin was cut off';
  const sentFrames = [];
  const receivedFrames = [];
  const onSocket = (ws) => {
    ws.on('framesent', (frame) => sentFrames.push(JSON.parse(String(frame.payload))));
    ws.on('framereceived', (frame) => receivedFrames.push(JSON.parse(String(frame.payload))));
  };
  erin.page.on('websocket', onSocket);
  try {
    await erin.waitLive();
    await erin.page.evaluate(() => window.__e2eSockets.drop());
    await until(async () => (await erin.connectionState()) !== 'live', { message: "Erin's socket to drop" });
    await frank.page.getByLabel('New message').fill(TEXT);
    await frank.page.getByRole('button', { name: 'Send', exact: true }).click();
    await messageWithText(frank, TEXT).waitFor({ timeout: TIMEOUTS.live });
    await sleep(500);
    assert.equal(await messageWithText(erin, TEXT).count(), 0, 'nothing arrives while the socket is down');
    await erin.page.evaluate(() => window.__e2eSockets.restore());
    await messageWithText(erin, TEXT).waitFor({ timeout: TIMEOUTS.reconnect });
    await erin.waitLive();
    await sleep(1_000);
  } finally {
    erin.page.off('websocket', onSocket);
  }
  const subscribed = receivedFrames.find((frame) => frame.type === 'subscribed' && frame.collaborationId === shared.collaborationId);
  assert.ok(subscribed, 'the reconnected socket subscribed again');
  const subscribe = sentFrames.find((frame) => frame.type === 'subscribe' && frame.collaborationId === shared.collaborationId);
  if (typeof subscribed.seq !== 'number') {
    // Before the server numbers its events the client resumes by version and message id.
    assert.equal(typeof subscribe.sinceVersion, 'number', JSON.stringify(subscribe));
    const reason = 'the server sends no seq in `subscribed` yet (the `seq` branch): resuming with sinceSeq not checked';
    console.log(`# SKIP ${reason}`);
    t.skip(reason);
    return;
  }
  assert.equal(typeof subscribe.sinceSeq, 'number', `resumes with sinceSeq: ${JSON.stringify(subscribe)}`);
  assert.equal('sinceVersion' in subscribe, false, JSON.stringify(subscribe));
  const replayed = receivedFrames.filter((frame) => frame.type === 'message_created' && frame.message?.text === TEXT);
  assert.equal(replayed.length, 1, 'replayed once');
  assert.equal(replayed[0].seq > subscribe.sinceSeq, true);
  assert.equal(await messageWithText(erin, TEXT).count(), 1, 'Erin sees it once');
});
