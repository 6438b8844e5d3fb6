// Usable by everyone: on the demo data, the owner (alice) builds the weekend rule and a
// follow-up rule with the rule builder's controls alone and both are enforced for bob (an
// editor); axe-core finds no serious or critical violation on the sign-in page, the list, a
// collaboration, the approvals inbox and the rule builder; at 375 px wide no page scrolls
// sideways and the collaboration page stacks its panels (screenshots: mobile-*.png); and every
// flow of the browser tests works with the keyboard alone.

import assert from 'node:assert/strict';

import { assertNoSidewaysScroll, checkA11y, tabAndPress, tabAndSelect, tabAndType, tabAndTypeDateTime, tabTo } from './a11y.mjs';
import { defineSuite, TIMEOUTS, until } from './harness.mjs';

const suite = defineSuite('accessibility');

const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const DEMO = 'Weekend in the mountains';
const HUT = 'Book the mountain hut'; // proposed by bob in the demo data
const FOOD = 'Pack the food'; // proposed by alice

const shared = { alice: null, bob: null };

function need(...keys) {
  for (const key of keys) if (!shared[key]) throw new Error(`an earlier test did not get this far (no ${key})`);
}

function activityIn(person, group, title) {
  return person.page.getByRole('list', { name: `${group} activities` }).getByRole('listitem', { name: title, exact: true });
}

function messages(person) {
  return person.page.getByRole('log', { name: 'Messages' }).getByTestId('message');
}

async function openDemo(person) {
  await person.page.getByRole('link', { name: DEMO }).click();
  await person.page.getByRole('heading', { level: 1, name: DEMO }).waitFor();
  await messages(person).first().waitFor();
  await person.waitLive();
}

/** The next `weekday` (1 = Monday … 7 = Sunday) at least two days away, at noon UTC, for <input type="datetime-local">. */
function next(weekday, hour = 12) {
  const date = new Date(Date.now() + 2 * 86_400_000);
  while (((date.getUTCDay() + 6) % 7) + 1 !== weekday) date.setUTCDate(date.getUTCDate() + 1);
  date.setUTCHours(hour, 0, 0, 0);
  return date.toISOString().slice(0, 16);
}

suite.test('the owner builds the weekend rule and a follow-up rule with the controls alone; both are enforced', async () => {
  const env = suite.env;
  const alice = await env.signIn(ALICE);
  const bob = await env.signIn(BOB);
  await openDemo(alice);
  await openDemo(bob);
  const builder = alice.page.getByRole('form', { name: 'Add a rule' });

  // The weekend rule: when anyone schedules an activity, on a Saturday or Sunday, refuse it.
  await builder.getByLabel('Rule name').fill('Nobody schedules on weekends');
  await builder.getByLabel('Someone does').selectOption({ label: 'Schedule an activity' });
  await builder.getByLabel('Done by').selectOption({ label: 'Anyone' });
  await builder.getByRole('button', { name: 'Add a condition' }).click();
  const condition = builder.getByRole('group', { name: 'Condition 1' });
  assert.equal(await condition.getByLabel('Kind of condition').inputValue(), 'weekday');
  for (const day of ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday']) assert.equal(await condition.getByRole('checkbox', { name: day }).isChecked(), false);
  await condition.getByRole('checkbox', { name: 'Saturday' }).check();
  await condition.getByRole('checkbox', { name: 'Sunday' }).check();
  await builder.getByLabel('What happens').selectOption({ label: 'Refuse it, with a message' });
  await builder.getByLabel('Message for whoever is refused').fill('We do not schedule on weekends.');
  const words = builder.getByTestId('rule-in-words');
  assert.equal(
    (await words.textContent()).trim(),
    'In plain words: Nobody may schedule an activity on a Saturday or Sunday. They are told: “We do not schedule on weekends.”',
  );
  await checkA11y(alice.page, 'the rule builder');
  // The builder alone, without the sticky header over its top.
  await alice.page.evaluate(() => (document.querySelector('.topbar').style.position = 'static'));
  await env.screenshot(alice.page, 'rule-builder', { element: builder });
  await alice.page.evaluate(() => (document.querySelector('.topbar').style.position = ''));
  await builder.getByRole('button', { name: 'Add rule' }).click();
  const rules = alice.page.getByRole('list', { name: 'Rules' });
  await rules.getByRole('listitem', { name: 'Nobody schedules on weekends' }).waitFor({ timeout: TIMEOUTS.live });
  assert.equal(await builder.getByLabel('Rule name').inputValue(), '', 'the builder starts again once the rule is saved');

  // A problem the server finds shows at its control: a follow-up message left empty.
  await builder.getByLabel('Rule name').fill('Thank whoever finishes an activity');
  await builder.getByLabel('Someone does').selectOption({ label: 'Mark an activity done' });
  await builder.getByLabel('What happens').selectOption({ label: 'Follow it with a message' });
  await builder.getByRole('button', { name: 'Add rule' }).click();
  const text = builder.getByLabel('Message to send');
  await until(async () => (await text.getAttribute('aria-invalid')) === 'true', { message: 'the empty message to be marked invalid' });
  const problem = await alice.page.locator(`#${(await text.getAttribute('aria-describedby')).replace(/:/g, '\\:')}`).textContent();
  console.log(`server's problem at "Message to send": ${problem}`);
  assert.ok(problem.length > 0);
  // The follow-up rule: when an activity is marked done, send a thank-you message.
  await text.fill('Thank you for finishing it!');
  assert.match(await words.textContent(), /When anyone marks an activity done, Tandem then sends the message “Thank you for finishing it!”\./);
  await builder.getByRole('button', { name: 'Add rule' }).click();
  await rules.getByRole('listitem', { name: 'Thank whoever finishes an activity' }).waitFor({ timeout: TIMEOUTS.live });

  // Bob (an editor) cannot schedule on a Saturday: the rule's message says why.
  const hut = activityIn(bob, 'Proposed', HUT);
  await hut.getByRole('button', { name: 'Schedule' }).click();
  await hut.getByLabel('Date and time').fill(next(6));
  await hut.getByRole('button', { name: 'Save schedule' }).click();
  await hut.getByRole('alert').filter({ hasText: 'We do not schedule on weekends.' }).waitFor();
  assert.equal(await activityIn(bob, 'Scheduled', HUT).count(), 0);
  // On a Wednesday he can.
  await hut.getByLabel('Date and time').fill(next(3));
  await hut.getByRole('button', { name: 'Save schedule' }).click();
  await activityIn(alice, 'Scheduled', HUT).waitFor({ timeout: TIMEOUTS.live });

  // Bob marks it done: the follow-up rule thanks him, in both feeds.
  await activityIn(bob, 'Scheduled', HUT).getByRole('button', { name: 'Mark done' }).click();
  for (const person of [alice, bob]) {
    const thanks = messages(person).filter({ hasText: 'Thank you for finishing it!' });
    await thanks.waitFor({ timeout: TIMEOUTS.live });
    assert.equal(await thanks.getAttribute('data-author-type'), 'rule');
    await thanks.getByText('Rule: Thank whoever finishes an activity').waitFor();
  }
  Object.assign(shared, { alice, bob });
});

suite.test('axe finds no serious or critical violation on the sign-in page, the list, a collaboration and the approvals inbox', async () => {
  need('alice', 'bob');
  const env = suite.env;
  const { alice } = shared;
  const visitor = await env.newPerson('visitor@example.com');
  await visitor.page.goto(env.url('/sign-in'));
  await visitor.page.getByLabel('Email').waitFor();
  await checkA11y(visitor.page, 'the sign-in page');
  await visitor.context.close();
  env.people = env.people.filter((p) => p !== visitor);

  await checkA11y(alice.page, 'a collaboration');
  await alice.page.getByRole('link', { name: 'Collaborations', exact: true }).click();
  await alice.page.getByRole('link', { name: DEMO }).waitFor();
  await checkA11y(alice.page, 'the collaborations list');
  // An approval to look at: a rule sends an editor's cancellations to the owners.
  await env.api('POST', '/api/actions/addRule', {
    token: await env.devLogin(ALICE),
    body: {
      collaborationId: await collaborationId(alice),
      payload: { rule: { name: 'Cancellations need an owner', when: { action: 'cancelActivity' }, then: { require_approval: { reason: 'Ask first.' } } } },
    },
  }).then((r) => assert.equal(r.status, 200, r.text));
  const bobToken = await env.devLogin(BOB);
  const food = (await env.api('GET', `/api/collaborations/${await collaborationId(alice)}`, { token: bobToken })).json.activities.find((a) => a.title === FOOD);
  const cancel = await env.api('POST', '/api/actions/cancelActivity', { token: bobToken, body: { collaborationId: await collaborationId(alice), payload: { activityId: food.id, reason: 'Rain' } } });
  assert.equal(cancel.status, 202, cancel.text);
  await alice.page.getByRole('link', { name: /^Approvals/ }).click();
  await alice.page.getByRole('list', { name: 'Pending approvals' }).getByRole('listitem').first().waitFor({ timeout: TIMEOUTS.live });
  await checkA11y(alice.page, 'the approvals inbox');
});

let demoId = null;
async function collaborationId(person) {
  if (demoId) return demoId;
  const token = await suite.env.devLogin(person.email);
  const list = await suite.env.api('GET', '/api/collaborations', { token });
  demoId = list.json.collaborations.find((c) => c.title === DEMO).id;
  return demoId;
}

suite.test('at 375 px wide no page scrolls sideways and the collaboration page stacks its panels', async () => {
  need('alice');
  const env = suite.env;
  const { alice } = shared;
  const phone = await env.newPerson('phone@example.com');
  await phone.page.setViewportSize({ width: 375, height: 812 });
  await phone.page.goto(env.url('/sign-in'));
  await phone.page.getByLabel('Email').waitFor();
  await assertNoSidewaysScroll(phone.page, 'the sign-in page');
  await env.screenshot(phone.page, 'mobile-sign-in');
  await phone.context.close();
  env.people = env.people.filter((p) => p !== phone);

  const { page } = alice;
  await page.setViewportSize({ width: 375, height: 812 });
  try {
    await page.getByRole('list', { name: 'Pending approvals' }).getByRole('listitem').first().waitFor();
    await env.dismissNotices(page);
    await assertNoSidewaysScroll(page, 'the approvals inbox');
    await env.screenshot(page, 'mobile-approvals', { fullPage: true });

    await page.getByRole('link', { name: 'Collaborations', exact: true }).click();
    await page.getByRole('link', { name: DEMO }).waitFor();
    await assertNoSidewaysScroll(page, 'the collaborations list');
    await env.screenshot(page, 'mobile-collaborations', { fullPage: true });

    await openDemo(alice);
    await assertNoSidewaysScroll(page, 'a collaboration');
    const main = await page.locator('.main-column').boundingBox();
    const side = await page.locator('.side-column').boundingBox();
    assert.ok(side.y >= main.y + main.height - 1 && Math.abs(side.x - main.x) < 2, `the panels stack: main ${JSON.stringify(main)}, side ${JSON.stringify(side)}`);
    await env.screenshot(page, 'mobile-collaboration', { fullPage: true });

    const builder = page.getByRole('form', { name: 'Add a rule' });
    await builder.getByRole('button', { name: 'Add a condition' }).click();
    await builder.getByRole('button', { name: 'Show the JSON (advanced)' }).click();
    await assertNoSidewaysScroll(page, 'the rule builder');
    // The whole builder, 375 px wide, under the header.
    await page.setViewportSize({ width: 375, height: 1400 });
    await builder.evaluate((el) => window.scrollTo(0, el.getBoundingClientRect().top + window.scrollY - document.querySelector('.topbar').offsetHeight - 8));
    await env.screenshot(page, 'mobile-rule-builder');
  } finally {
    await page.setViewportSize({ width: 1280, height: 860 });
  }
});

/** Sign in on the sign-in page with the keyboard alone. */
async function keyboardSignIn(env, email) {
  const person = await env.newPerson(email);
  const { page } = person;
  await page.goto(env.url('/'));
  await page.waitForURL(/\/sign-in/);
  await tabAndType(page, page.getByLabel('Email'), email);
  await tabAndPress(page, page.getByRole('button', { name: 'Sign in' }));
  await page.getByRole('heading', { name: 'My collaborations' }).waitFor();
  await person.waitLive(TIMEOUTS.live);
  return person;
}

suite.test('every flow works with the keyboard alone', async () => {
  const env = suite.env;
  const OWNER = 'erin@example.com';
  const EDITOR = 'finn@example.com';
  const TITLE = 'Keyboard club';
  const erin = await keyboardSignIn(env, OWNER);
  const { page } = erin;

  // Create a collaboration and add an editor.
  await tabAndType(page, page.getByLabel('Title', { exact: true }), TITLE);
  await tabAndPress(page, page.getByRole('button', { name: 'Create collaboration' }));
  await page.getByRole('heading', { level: 1, name: TITLE }).waitFor();
  await erin.waitLive();
  const addMember = page.getByRole('form', { name: 'Add a member' });
  await tabAndType(page, addMember.getByLabel('Email'), EDITOR);
  await tabAndSelect(page, addMember.getByLabel('Role'), 'Editor');
  await tabAndPress(page, addMember.getByRole('button', { name: 'Add member' }));
  await page.getByLabel(`Role for ${EDITOR}`).waitFor({ timeout: TIMEOUTS.live });

  // A message (Enter sends it).
  await tabAndType(page, page.getByLabel('New message'), 'Hello from the keyboard');
  await page.keyboard.press('Enter');
  await messages(erin).filter({ hasText: 'Hello from the keyboard' }).waitFor({ timeout: TIMEOUTS.live });

  // Propose two activities, schedule one and mark it done.
  for (const title of ['Read chapter one', 'Pick a cafe']) {
    await tabAndPress(page, page.getByRole('button', { name: 'Propose an activity' }));
    await tabAndType(page, page.getByLabel('Activity title'), title);
    await tabAndPress(page, page.getByRole('button', { name: 'Propose', exact: true }));
    await activityIn(erin, 'Proposed', title).waitFor({ timeout: TIMEOUTS.live });
  }
  const chapter = activityIn(erin, 'Proposed', 'Read chapter one');
  await tabAndPress(page, chapter.getByRole('button', { name: 'Schedule' }));
  await tabAndTypeDateTime(page, chapter.getByLabel('Date and time'), next(3));
  await tabAndPress(page, chapter.getByRole('button', { name: 'Save schedule' }));
  const scheduled = activityIn(erin, 'Scheduled', 'Read chapter one');
  await scheduled.waitFor({ timeout: TIMEOUTS.live });
  await tabAndPress(page, scheduled.getByRole('button', { name: 'Mark done' }));
  await activityIn(erin, 'Done', 'Read chapter one').waitFor({ timeout: TIMEOUTS.live });

  // A rule, with the builder's controls: editors' cancellations need an owner's approval.
  const builder = page.getByRole('form', { name: 'Add a rule' });
  await tabAndType(page, builder.getByLabel('Rule name'), 'Editors cancel with approval');
  await tabAndSelect(page, builder.getByLabel('Someone does'), 'Cancel an activity');
  await tabAndSelect(page, builder.getByLabel('Done by'), 'Editors');
  await tabAndPress(page, builder.getByRole('button', { name: 'Add a condition' }));
  const condition = builder.getByRole('group', { name: 'Condition 1' });
  await tabAndSelect(page, condition.getByLabel('Kind of condition'), 'A date falls on certain weekdays');
  await tabAndSelect(page, condition.getByLabel('Of', { exact: true }), 'the day it happens');
  for (const day of ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday']) await tabAndPress(page, condition.getByRole('checkbox', { name: day }), 'Space');
  await tabAndSelect(page, builder.getByLabel('What happens'), 'Ask an owner to approve it first');
  await tabAndType(page, builder.getByLabel('Reason for the owners (optional)'), 'Ask me first.');
  assert.match(await builder.getByTestId('rule-in-words').textContent(), /When an editor cancels an activity while it is a Monday, Tuesday, Wednesday, Thursday, Friday, Saturday or Sunday, an owner must approve it first\./);
  await tabAndPress(page, builder.getByRole('button', { name: 'Show the JSON (advanced)' }));
  assert.match(await builder.getByLabel('Rule (JSON)').inputValue(), /"require_approval"/);
  await tabAndPress(page, builder.getByRole('button', { name: 'Add rule' }));
  await page.getByRole('list', { name: 'Rules' }).getByRole('listitem', { name: 'Editors cancel with approval' }).waitFor({ timeout: TIMEOUTS.live });

  // The editor opens it from his list and cancels the other activity: it waits for erin.
  const finn = await keyboardSignIn(env, EDITOR);
  await tabAndPress(finn.page, finn.page.getByRole('link', { name: TITLE }), 'Enter', { max: 200 }).catch(async (error) => {
    // The list polls every 10 s: it may not show the new collaboration yet.
    await finn.page.getByRole('link', { name: TITLE }).waitFor({ timeout: TIMEOUTS.poll });
    await tabAndPress(finn.page, finn.page.getByRole('link', { name: TITLE }));
    return error;
  });
  await finn.page.getByRole('heading', { level: 1, name: TITLE }).waitFor();
  await finn.waitLive();
  const cafe = activityIn(finn, 'Proposed', 'Pick a cafe');
  await tabAndPress(finn.page, cafe.getByRole('button', { name: 'Cancel activity' }));
  await tabAndType(finn.page, cafe.getByLabel('Reason (optional)'), 'Too far');
  await tabAndPress(finn.page, cafe.getByRole('button', { name: 'Confirm cancel' }));
  await cafe.getByText('Awaiting owner approval').waitFor({ timeout: TIMEOUTS.live });

  // Erin approves from her inbox.
  await tabAndPress(page, page.getByRole('link', { name: /^Approvals/ }));
  const card = page.getByRole('list', { name: 'Pending approvals' }).getByRole('listitem').first();
  await tabAndPress(page, card.getByRole('button', { name: 'Approve' }));
  await page.getByText('Nothing is waiting for your approval.').waitFor({ timeout: TIMEOUTS.live });
  await activityIn(finn, 'Cancelled', 'Pick a cafe').waitFor({ timeout: TIMEOUTS.live });

  // Back to the collaboration: ask the AI, and run a suggestion if it makes one.
  await tabAndPress(page, page.getByRole('link', { name: 'Collaborations', exact: true }));
  await tabAndPress(page, page.getByRole('link', { name: TITLE }));
  await page.getByRole('heading', { level: 1, name: TITLE }).waitFor();
  await tabAndType(page, page.getByLabel('Question for the AI'), 'What should we plan next?');
  await tabAndPress(page, page.getByRole('button', { name: 'Ask', exact: true }));
  const answer = messages(erin).and(page.locator('[data-author-type="ai"]')).first();
  await answer.waitFor({ timeout: 30_000 });
  const run = answer.getByRole('button', { name: /^Run: / }).first();
  if ((await run.count()) > 0) {
    await tabAndPress(page, run);
    await answer.getByText('Done', { exact: true }).first().waitFor();
  }

  // The AI check-in (dev mode), from the header.
  await tabAndPress(page, page.getByRole('button', { name: 'Run AI check-in now' }));
  await page.getByRole('status').filter({ hasText: 'AI check-in finished' }).waitFor({ timeout: 30_000 });

  // Signing out, too.
  await tabAndPress(page, page.getByRole('button', { name: 'Sign out' }));
  await page.waitForURL(/\/sign-in/);
});
