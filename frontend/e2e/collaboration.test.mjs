// Two people in two browser contexts work on one collaboration through Nginx:
// one creates it and adds the other, both see each other's messages and
// activity changes live, and a dropped WebSocket loses nothing.
//
// The tests run in order and build on each other (the collaboration of the
// first is used by the next ones).

import assert from 'node:assert/strict';

import { defineSuite, sleep, TIMEOUTS, until } from './harness.mjs';

const suite = defineSuite('collaboration');

const OWNER = 'carol@example.com';
const EDITOR = 'dan@example.com';
const TITLE = 'Book club';

const shared = { carol: null, dan: null, collaborationId: null };

function need(...keys) {
  for (const key of keys) if (!shared[key]) throw new Error(`an earlier test did not get this far (no ${key})`);
}

/** The page's collaboration, as shown: its version (data-version) and sync status. */
async function pageVersion(person) {
  const value = await person.page.locator('.collaboration-page').getAttribute('data-version', { timeout: TIMEOUTS.action });
  return Number(value);
}

function messages(person) {
  return person.page.getByRole('log', { name: 'Messages' }).getByTestId('message');
}

function messageWithText(person, text) {
  return messages(person).filter({ has: person.page.locator('.message-text', { hasText: text }) });
}

/** An activity card in one of the status groups ("Proposed", "Scheduled", "Done", "Cancelled"). */
function activityIn(person, group, title) {
  return person.page.getByRole('list', { name: `${group} activities` }).getByRole('listitem', { name: title, exact: true });
}

/** Wait until `locator` is visible; report how long it took (ms). */
async function seen(locator, timeout = TIMEOUTS.live) {
  const start = Date.now();
  await locator.waitFor({ state: 'visible', timeout });
  return Date.now() - start;
}

async function sendMessage(person, text) {
  const { page } = person;
  await page.getByLabel('New message').fill(text);
  await page.getByRole('button', { name: 'Send', exact: true }).click();
  // The composer empties once the server accepted it; it shows when it comes back over the socket.
  await until(async () => (await page.getByLabel('New message').inputValue()) === '', { message: `${person.email}'s composer to clear` });
}

async function proposeActivity(person, title) {
  const { page } = person;
  await page.getByRole('button', { name: 'Propose an activity' }).click();
  await page.getByLabel('Activity title').fill(title);
  await page.getByRole('button', { name: 'Propose', exact: true }).click();
  await page.getByRole('form', { name: 'Propose an activity' }).waitFor({ state: 'detached' });
}

/** A date-time a week from now, as an <input type="datetime-local"> value (the contexts run in UTC). */
function nextWeek(hour = 19) {
  const date = new Date(Date.now() + 7 * 86_400_000);
  date.setUTCHours(hour, 0, 0, 0);
  return date.toISOString().slice(0, 16);
}

suite.test('the owner creates a collaboration and adds an editor, who sees it appear and opens it', async () => {
  const env = suite.env;
  const carol = await env.signIn(OWNER);
  const dan = await env.signIn(EDITOR);
  await dan.page.getByText('You are not in any collaboration yet').waitFor();

  // Carol creates it and lands on its page.
  await carol.page.getByLabel('Title', { exact: true }).fill(TITLE);
  await carol.page.getByLabel('Description (optional)').fill('One book a month, chosen together.');
  await carol.page.getByRole('button', { name: 'Create collaboration' }).click();
  await carol.page.waitForURL(/\/collaborations\/[^/]+$/);
  const collaborationId = decodeURIComponent(new URL(carol.page.url()).pathname.split('/').pop());
  await carol.page.getByRole('heading', { level: 1, name: TITLE }).waitFor();
  await carol.waitLive();

  // …and adds Dan as an editor.
  const addForm = carol.page.getByRole('form', { name: 'Add a member' });
  await addForm.getByLabel('Email').fill(EDITOR);
  await addForm.getByLabel('Role').selectOption('editor');
  await addForm.getByRole('button', { name: 'Add member' }).click();
  const danRole = carol.page.getByLabel(`Role for ${EDITOR}`);
  await danRole.waitFor({ timeout: TIMEOUTS.live });
  assert.equal(await danRole.inputValue(), 'editor');
  assert.equal(await carol.page.getByRole('list', { name: 'Members' }).getByRole('listitem').count(), 2);

  // Dan's list polls every 10 s: the collaboration appears without a reload.
  await dan.markLoad();
  const link = dan.page.getByRole('link', { name: TITLE });
  const waited = await seen(link, TIMEOUTS.poll);
  console.log(`${EDITOR} saw the new collaboration in the list after ${waited} ms`);
  await dan.assertNoReload();
  await link.click();
  await dan.page.waitForURL(`**/collaborations/${collaborationId}`);
  await dan.page.getByRole('heading', { level: 1, name: TITLE }).waitFor();
  await dan.waitLive();
  // An editor: can propose, can't manage members.
  await dan.page.getByRole('button', { name: 'Propose an activity' }).waitFor();
  assert.equal(await dan.page.getByRole('form', { name: 'Add a member' }).count(), 0);

  Object.assign(shared, { carol, dan, collaborationId });
});

suite.test("both see each other's messages and activity changes live, without a reload", async () => {
  need('carol', 'dan');
  const { carol, dan } = shared;
  await carol.markLoad();
  await dan.markLoad();
  const latencies = {};

  // Messages both ways.
  await sendMessage(dan, 'Hello Carol, Dan here!');
  latencies['message dan→carol'] = await seen(messageWithText(carol, 'Hello Carol, Dan here!'));
  await sendMessage(carol, 'Welcome Dan. Ideas for the first book?');
  latencies['message carol→dan'] = await seen(messageWithText(dan, 'Welcome Dan. Ideas for the first book?'));
  await messageWithText(dan, 'Hello Carol, Dan here!').waitFor();
  await messageWithText(carol, 'Welcome Dan. Ideas for the first book?').waitFor();

  // Carol proposes, Dan sees it proposed.
  await proposeActivity(carol, 'Pick the first book');
  latencies['propose carol→dan'] = await seen(activityIn(dan, 'Proposed', 'Pick the first book'));
  await activityIn(carol, 'Proposed', 'Pick the first book').waitFor();

  // Dan schedules it, Carol sees it scheduled.
  const when = nextWeek();
  const proposed = activityIn(dan, 'Proposed', 'Pick the first book');
  await proposed.getByRole('button', { name: 'Schedule' }).click();
  await proposed.getByLabel('Date and time').fill(when);
  await proposed.getByRole('button', { name: 'Save schedule' }).click();
  const scheduled = activityIn(carol, 'Scheduled', 'Pick the first book');
  latencies['schedule dan→carol'] = await seen(scheduled);
  const shown = new Intl.DateTimeFormat('en-US', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' }).format(new Date(`${when}:00Z`));
  await scheduled.getByText(shown).waitFor();
  await activityIn(dan, 'Scheduled', 'Pick the first book').waitFor();

  // Carol marks it done, Dan sees it done.
  await scheduled.getByRole('button', { name: 'Mark done' }).click();
  latencies['complete carol→dan'] = await seen(activityIn(dan, 'Done', 'Pick the first book'));
  await activityIn(carol, 'Done', 'Pick the first book').waitFor();

  // Dan proposes another one and cancels it; Carol sees both steps.
  await proposeActivity(dan, 'Start a reading list');
  latencies['propose dan→carol'] = await seen(activityIn(carol, 'Proposed', 'Start a reading list'));
  const toCancel = activityIn(dan, 'Proposed', 'Start a reading list');
  await toCancel.waitFor();
  await toCancel.getByRole('button', { name: 'Cancel activity' }).click();
  await toCancel.getByRole('button', { name: 'Confirm cancel' }).click();
  latencies['cancel dan→carol'] = await seen(activityIn(carol, 'Cancelled', 'Start a reading list'));

  await carol.assertNoReload();
  await dan.assertNoReload();
  assert.equal(await pageVersion(carol), await pageVersion(dan), 'both copies are at the same version');
  assert.equal(await carol.connectionState(), 'live');
  assert.equal(await dan.connectionState(), 'live');
  console.log(`live latencies (ms): ${JSON.stringify(latencies)}`);
});

suite.test('a forced WebSocket drop loses no change made meanwhile, and the connection comes back live', async () => {
  need('carol', 'dan');
  const { carol, dan } = shared;
  await dan.markLoad();
  const before = await pageVersion(dan);

  // Drop Dan's socket as a network failure would (the client did not ask for
  // it), and keep every new connection failing until restore().
  const dropped = await dan.page.evaluate(() => window.__e2eSockets.drop());
  assert.equal(dropped, 1, 'the page had one open WebSocket');
  await until(async () => (await dan.connectionState()) === 'reconnecting', {
    timeout: TIMEOUTS.live,
    message: "Dan's connection state to become reconnecting",
  });

  // Carol changes things while Dan is disconnected.
  await sendMessage(carol, 'Sent while Dan was away');
  await proposeActivity(carol, 'Choose a meeting place');
  await activityIn(carol, 'Proposed', 'Choose a meeting place').waitFor();
  await messageWithText(carol, 'Sent while Dan was away').waitFor();
  const target = await pageVersion(carol);
  assert.ok(target > before, `Carol's changes raised the version (${before} → ${target})`);

  // Dan really is cut off: none of it has arrived.
  await sleep(1_000);
  assert.equal(await messageWithText(dan, 'Sent while Dan was away').count(), 0, 'no message arrives while the socket is down');
  assert.equal(await activityIn(dan, 'Proposed', 'Choose a meeting place').count(), 0);
  assert.equal(await pageVersion(dan), before);
  assert.notEqual(await dan.connectionState(), 'live');

  // The network comes back: the client reconnects by itself and catches up.
  const start = Date.now();
  await dan.page.evaluate(() => window.__e2eSockets.restore());
  await dan.waitLive(TIMEOUTS.reconnect);
  await messageWithText(dan, 'Sent while Dan was away').waitFor({ timeout: TIMEOUTS.live });
  await activityIn(dan, 'Proposed', 'Choose a meeting place').waitFor({ timeout: TIMEOUTS.live });
  await until(async () => (await pageVersion(dan)) === target, { timeout: TIMEOUTS.live, message: `Dan's copy to reach version ${target}` });
  console.log(`${EDITOR} was live again and caught up ${Date.now() - start} ms after the network came back`);
  assert.equal(await messageWithText(dan, 'Sent while Dan was away').count(), 1, 'the missed message shows once');
  assert.equal(await dan.page.getByRole('heading', { level: 1 }).textContent(), TITLE);
  await dan.assertNoReload();

  // And it is live again: a new change arrives at once.
  await sendMessage(carol, 'Back online?');
  await seen(messageWithText(dan, 'Back online?'));
});

suite.test('the browser going offline and back loses no change either', async () => {
  need('carol', 'dan');
  const { carol, dan } = shared;
  await dan.markLoad();

  await dan.context.setOffline(true);
  await until(async () => (await dan.connectionState()) !== 'live', { timeout: TIMEOUTS.live, message: "Dan's page to notice it is offline" });
  await sendMessage(carol, 'Written while Dan was offline');
  const scheduled = activityIn(carol, 'Proposed', 'Choose a meeting place');
  await scheduled.getByRole('button', { name: 'Schedule' }).click();
  await scheduled.getByLabel('Date and time').fill(nextWeek(18));
  await scheduled.getByRole('button', { name: 'Save schedule' }).click();
  await activityIn(carol, 'Scheduled', 'Choose a meeting place').waitFor();
  const target = await pageVersion(carol);
  await sleep(500);
  assert.equal(await messageWithText(dan, 'Written while Dan was offline').count(), 0, 'nothing arrives while offline');

  await dan.context.setOffline(false);
  await dan.waitLive(TIMEOUTS.reconnect);
  await messageWithText(dan, 'Written while Dan was offline').waitFor({ timeout: TIMEOUTS.live });
  await activityIn(dan, 'Scheduled', 'Choose a meeting place').waitFor({ timeout: TIMEOUTS.live });
  await until(async () => (await pageVersion(dan)) === target, { timeout: TIMEOUTS.live, message: `Dan's copy to reach version ${target}` });
  await dan.assertNoReload();
});

/** How `viewer`'s members list shows `email`: data-presence is here, away or absent. */
function presenceOf(viewer, email) {
  return viewer.page
    .getByRole('list', { name: 'Members' })
    .getByRole('listitem')
    .filter({ has: viewer.page.locator('.member-name', { hasText: email }) })
    .getAttribute('data-presence', { timeout: TIMEOUTS.action });
}

suite.test('presence: dan sees carol here while she is on the page, and not once she navigates away', async () => {
  need('carol', 'dan', 'collaborationId');
  const { carol, dan } = shared;
  await until(async () => (await presenceOf(dan, OWNER)) === 'here', { timeout: TIMEOUTS.live, message: 'dan to see carol here' });
  assert.equal(await presenceOf(carol, EDITOR), 'here', 'carol sees dan here too');

  // Carol goes to her list. She owns the collaboration, so her app stays subscribed to it (for the
  // approvals): presence must still say she left.
  await carol.page.getByRole('link', { name: 'Collaborations', exact: true }).click();
  await carol.page.getByRole('heading', { name: 'My collaborations' }).waitFor();
  await until(async () => (await presenceOf(dan, OWNER)) !== 'here', {
    timeout: TIMEOUTS.live,
    message: 'dan to see that carol left the page',
  });
  assert.equal(await presenceOf(dan, OWNER), 'absent');

  // She comes back: here again.
  await carol.page.getByRole('link', { name: TITLE }).click();
  await carol.page.getByRole('heading', { level: 1, name: TITLE }).waitFor();
  await until(async () => (await presenceOf(dan, OWNER)) === 'here', { timeout: TIMEOUTS.live, message: 'dan to see carol back' });
});

/** Make the page's tab hidden or visible again (the Page Visibility API, as switching tabs does). */
async function setHidden(person, hidden) {
  await person.page.evaluate((value) => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (value ? 'hidden' : 'visible') });
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => value });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}

suite.test('what happened while carol looked away: a toast for each change, unread counts in her list and the tab title', async () => {
  need('carol', 'dan', 'collaborationId');
  const { carol, dan } = shared;
  await carol.markLoad();
  await setHidden(carol, true);
  await sendMessage(dan, 'Are you there, Carol?');
  await proposeActivity(dan, 'Choose a venue');
  await messageWithText(carol, 'Are you there, Carol?').waitFor({ timeout: TIMEOUTS.live });
  await activityIn(carol, 'Proposed', 'Choose a venue').waitFor({ timeout: TIMEOUTS.live });
  // Nothing is toasted while she is away; the tab title counts the unread message.
  await until(async () => (await carol.page.title()) === '(1) Tandem', { message: "carol's tab title to count 1 unread message" });
  assert.equal(await carol.page.locator('.notice').filter({ hasText: 'Dan ' }).count(), 0);

  await setHidden(carol, false);
  const notices = carol.page.locator('.notifications');
  await notices.getByText('Dan wrote: “Are you there, Carol?”').waitFor();
  await notices.getByText("Dan proposed 'Choose a venue'").waitFor();
  // Back on the page: read.
  await until(async () => (await carol.page.title()) === 'Tandem', { message: 'the tab title to drop the count' });

  // In her list, a collaboration with new messages since her last visit says how many.
  await carol.page.getByRole('link', { name: 'Collaborations', exact: true }).click();
  await carol.page.getByRole('heading', { name: 'My collaborations' }).waitFor();
  await sendMessage(dan, 'First meeting on Friday?');
  await sendMessage(dan, 'Or Saturday?');
  const item = carol.page.getByRole('list', { name: 'My collaborations' }).getByRole('listitem').filter({ hasText: TITLE });
  await item.getByLabel('2 new messages').waitFor({ timeout: TIMEOUTS.live });
  assert.equal(await carol.page.title(), '(2) Tandem');
  await item.getByRole('link', { name: TITLE }).click();
  await carol.page.getByRole('heading', { level: 1, name: TITLE }).waitFor();
  await until(async () => (await carol.page.title()) === 'Tandem', { message: 'the count to go once she opened it' });
  await carol.assertNoReload();
});
