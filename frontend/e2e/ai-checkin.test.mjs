// The demo data's owner (alice) runs the AI check-in from the browser: the
// AI's reminder shows in the messages, its proposal to cancel the stale
// activity waits in the approvals inbox, and once alice approves it bob's page
// and a second tab of alice's open on the collaboration show the activity
// cancelled, live. Then alice asks the AI a question. Screenshots of the main
// screens are taken along the way.

import assert from 'node:assert/strict';

import { defineSuite, TIMEOUTS, until } from './harness.mjs';

const suite = defineSuite('ai-checkin');

const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const DEMO = 'Weekend in the mountains';
const STALE = 'Check the tent and stove'; // scheduled nine days ago by the demo data

const shared = { alice: null, bob: null };

function need(...keys) {
  for (const key of keys) if (!shared[key]) throw new Error(`an earlier test did not get this far (no ${key})`);
}

function activityIn(person, group, title) {
  return person.page.getByRole('list', { name: `${group} activities` }).getByRole('listitem', { name: title, exact: true });
}

function aiMessages(person, text) {
  return person.page
    .getByRole('log', { name: 'Messages' })
    .locator('[data-testid="message"][data-author-type="ai"]')
    .filter({ hasText: text });
}

async function openDemo(person) {
  await person.page.getByRole('link', { name: DEMO }).click();
  await person.page.getByRole('heading', { level: 1, name: DEMO }).waitFor();
  await person.page.getByRole('log', { name: 'Messages' }).getByTestId('message').first().waitFor();
  await person.waitLive();
}

suite.test('alice and bob sign in and open the demo collaboration', async () => {
  const env = suite.env;
  const alice = await env.signIn(ALICE, { screenshot: 'sign-in' });
  await alice.page.getByRole('link', { name: DEMO }).waitFor();
  await env.screenshot(alice.page, 'collaborations');
  const bob = await env.signIn(BOB);
  await openDemo(alice);
  await openDemo(bob);
  await activityIn(alice, 'Scheduled', STALE).waitFor();
  await activityIn(bob, 'Scheduled', STALE).waitFor();
  // Only two messages: the snapshot holds them all, nothing older to offer.
  assert.equal(await alice.page.getByRole('button', { name: 'Show older messages' }).count(), 0);
  await env.screenshot(alice.page, 'collaboration', { fullPage: true });

  // On a phone (390 px wide) the details card's buttons wrap under the title, inside the card.
  await alice.page.setViewportSize({ width: 390, height: 844 });
  const details = alice.page.locator('section[aria-labelledby="details-heading"]');
  await details.getByRole('button', { name: 'Archive' }).waitFor();
  const card = await details.boundingBox();
  for (const name of ['Edit details', 'Archive']) {
    const box = await details.getByRole('button', { name }).boundingBox();
    assert.ok(box.x >= card.x && box.x + box.width <= card.x + card.width, `at 390 px, ${name} (${JSON.stringify(box)}) is inside the details card (${JSON.stringify(card)})`);
  }
  await alice.page.setViewportSize({ width: 1280, height: 860 });
  Object.assign(shared, { alice, bob });
});

suite.test("the AI check-in's reminder shows live, its cancel proposal waits for alice's approval, and approving cancels the activity for both", async () => {
  need('alice', 'bob');
  const env = suite.env;
  const { alice, bob } = shared;
  await alice.markLoad();
  await bob.markLoad();

  const checkin = alice.page.waitForResponse((r) => r.url().endsWith('/api/dev/checkin') && r.request().method() === 'POST', {
    timeout: 30_000,
  });
  await alice.page.getByRole('button', { name: 'Run AI check-in now' }).click();
  const response = await checkin;
  const summary = await response.json().catch(() => null);
  assert.equal(response.status(), 200, `POST /api/dev/checkin → ${response.status()} ${JSON.stringify(summary)}`);
  const { provider, collaborations, actionsRun, approvalsMade, invalidProposals } = summary ?? {};
  console.log(`check-in: ${JSON.stringify({ provider, collaborations, actionsRun, approvalsMade, invalidProposals })}`);
  await alice.page.getByRole('status').filter({ hasText: 'AI check-in finished' }).waitFor();

  // The reminder message (a safe action: it runs at once) reaches both pages live.
  await aiMessages(alice, 'Friendly reminder').waitFor({ timeout: TIMEOUTS.live });
  await aiMessages(bob, 'Friendly reminder').waitFor({ timeout: TIMEOUTS.live });
  await aiMessages(bob, 'Book the mountain hut').waitFor();

  // Cancelling is protected: nothing changed yet, an approval waits for the owner.
  assert.equal(await activityIn(bob, 'Scheduled', STALE).count(), 1, 'the stale activity is still scheduled before approval');
  const badge = alice.page.getByRole('navigation', { name: 'Main' }).getByLabel('1 pending');
  await badge.waitFor({ timeout: TIMEOUTS.live });
  await alice.page.getByRole('link', { name: /^Approvals/ }).click();
  await alice.page.getByRole('heading', { name: 'Approvals', level: 1 }).waitFor();
  const approvals = alice.page.getByRole('list', { name: 'Pending approvals' }).getByRole('listitem');
  await approvals.first().waitFor();
  assert.equal(await approvals.count(), 1, 'one pending approval');
  const card = approvals.first();
  const summaryText = await card.locator('.approval-summary').textContent();
  assert.match(summaryText, new RegExp(`Cancel activity '${STALE}'`), summaryText);
  await card.getByText('proposed by the AI assistant').waitFor();
  await card.getByText(DEMO).waitFor();
  await env.screenshot(alice.page, 'approvals');

  // Bob, an editor, has nothing to approve.
  assert.equal(await bob.page.getByRole('navigation', { name: 'Main' }).getByLabel(/pending/).count(), 0);

  // Alice also has the collaboration open in a second tab while she decides from the inbox.
  const second = await alice.context.newPage();
  second.on('pageerror', (error) => alice.log.push(`[second tab pageerror] ${error.stack || error.message}`));
  await second.goto(bob.page.url());
  await second.getByRole('heading', { level: 1, name: DEMO }).waitFor();
  await until(async () => (await second.getByTestId('connection-state').getAttribute('data-state')) === 'live', {
    timeout: TIMEOUTS.reconnect,
    message: "alice's second tab to be live",
  });
  const secondTab = { page: second };
  await activityIn(secondTab, 'Scheduled', STALE).waitFor();
  const secondLoad = await second.evaluate(() => window.__e2eLoadId);

  // Alice approves: the action runs and both see the activity cancelled.
  await card.getByRole('button', { name: 'Approve' }).click();
  await alice.page.getByText('Nothing is waiting for your approval.').waitFor({ timeout: TIMEOUTS.live });
  await alice.page.getByRole('status').filter({ hasText: 'Approved:' }).waitFor();
  const cancelled = activityIn(bob, 'Cancelled', STALE);
  await cancelled.waitFor({ timeout: TIMEOUTS.live });
  await cancelled.getByText('never marked done').waitFor();
  assert.equal(await activityIn(bob, 'Scheduled', STALE).count(), 0);
  // …and so does alice's second tab, live, without a reload.
  await activityIn(secondTab, 'Cancelled', STALE).waitFor({ timeout: TIMEOUTS.live });
  assert.equal(await activityIn(secondTab, 'Scheduled', STALE).count(), 0);
  assert.equal(await second.evaluate(() => window.__e2eLoadId), secondLoad, "alice's second tab was not reloaded");
  await second.close();
  await until(async () => (await badge.count()) === 0, { message: 'the approvals badge to go away' });

  await alice.page.getByRole('link', { name: 'Collaborations', exact: true }).click();
  await openDemo(alice);
  await activityIn(alice, 'Cancelled', STALE).waitFor();
  assert.equal(await activityIn(alice, 'Scheduled', STALE).count(), 0);
  await alice.assertNoReload();
  await bob.assertNoReload();
});

suite.test('alice asks the AI: its answer shows, live, in both message feeds, with its suggestions under it for both', async () => {
  need('alice', 'bob');
  const env = suite.env;
  const { alice, bob } = shared;
  const question = 'What should we plan next?';
  const aiBefore = await aiMessages(bob, '').count();
  await alice.page.getByLabel('Question for the AI').fill(question);
  await alice.page.getByRole('button', { name: 'Ask', exact: true }).click();
  await alice.page.locator('.ai-panel').getByRole('status').filter({ hasText: `You asked “${question}”` }).waitFor({ timeout: 30_000 });
  // The answer is posted as an AI message: both feeds show it (the newest AI message).
  await until(async () => (await aiMessages(bob, '').count()) > aiBefore, { timeout: TIMEOUTS.live, message: "the AI's answer in bob's feed" });
  const answer = aiMessages(alice, '').last();
  const reply = (await answer.locator('.message-text').textContent()) ?? '';
  assert.ok(reply.length > 20, `the AI replied: ${reply}`);
  await aiMessages(bob, reply.slice(0, 40)).first().waitFor({ timeout: TIMEOUTS.live });
  // Its suggestions (if any) show under the answer, for alice, who asked, and for bob; she can run them herself.
  const suggestions = answer.getByRole('list', { name: 'Suggested actions' }).getByRole('listitem');
  console.log(`AI reply: ${reply} (${await suggestions.count()} suggestions)`);
  // They are on the answer's message: bob sees the same ones under it, live.
  const bobs = aiMessages(bob, reply.slice(0, 40)).last().getByRole('list', { name: 'Suggested actions' }).getByRole('listitem');
  await until(async () => (await bobs.count()) === (await suggestions.count()), { timeout: TIMEOUTS.live, message: "the suggestions under the answer in bob's feed" });
  await env.dismissNotices(alice.page);
  await answer.scrollIntoViewIfNeeded();
  await env.screenshot(alice.page, 'ai-chat');

  // Running a suggestion runs it as alice (a reminder message: applied at once, seen by bob).
  if ((await suggestions.count()) > 0) {
    const first = suggestions.first();
    const text = (await first.locator('strong').textContent()) ?? '';
    await first.getByRole('button', { name: /^Run: / }).click();
    await first.getByText('Done', { exact: true }).waitFor();
    const quoted = text.match(/“(.{10,40})/)?.[1];
    if (text.startsWith('Send the message') && quoted) {
      const fromAlice = bob.page.getByRole('log', { name: 'Messages' }).locator('[data-testid="message"][data-author-type="user"]').filter({ hasText: quoted });
      await fromAlice.first().waitFor({ timeout: TIMEOUTS.live });
    }
  }
});
