// Accessibility checks for the browser tests: axe-core in the page, no sideways scrolling,
// and moving through a page with the keyboard alone.
//
// axe is injected with page.evaluate(<its source>), not page.addScriptTag: Nginx's CSP
// (script-src 'self') refuses an inline <script>, and relaxing it for the tests (bypassCSP)
// would hide CSP violations that e2e/nginx.test.mjs looks for. Code evaluated over the
// DevTools protocol is not subject to the page's CSP.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** Impacts that fail a test. */
export const FAILING_IMPACTS = ['serious', 'critical'];

/**
 * Run axe-core on the page as it is; fail on a violation of impact serious or critical.
 * Returns every violation (minor and moderate ones are logged, not failed).
 */
export async function checkA11y(page, label) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')}${n.failureSummary ? ` — ${n.failureSummary.split('\n').slice(1).join(' ').trim()}` : ''}`),
    }));
  });
  const failing = violations.filter((v) => FAILING_IMPACTS.includes(v.impact));
  const others = violations.filter((v) => !FAILING_IMPACTS.includes(v.impact));
  if (others.length) console.log(`axe (${label}): ${others.map((v) => `${v.impact} ${v.id}`).join(', ')}`);
  assert.deepEqual(
    failing,
    [],
    `axe found serious or critical violations on ${label}:\n${failing.map((v) => `- ${v.impact} ${v.id}: ${v.help}\n    ${v.nodes.join('\n    ')}`).join('\n')}`,
  );
  return violations;
}

/** The page does not scroll sideways: nothing is wider than the viewport. */
export async function assertNoSidewaysScroll(page, label) {
  const { scrollWidth, clientWidth, widest } = await page.evaluate(() => {
    const root = document.documentElement;
    let widest = '';
    let right = root.clientWidth;
    for (const el of document.body.querySelectorAll('*')) {
      const box = el.getBoundingClientRect();
      if (box.right > right + 1 && getComputedStyle(el).position !== 'fixed') {
        right = box.right;
        widest = `${el.tagName.toLowerCase()}${el.className && typeof el.className === 'string' ? `.${el.className.trim().split(/\s+/).join('.')}` : ''} (right edge ${Math.round(box.right)})`;
      }
    }
    return { scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, widest };
  });
  assert.ok(scrollWidth <= clientWidth, `${label} scrolls sideways: ${scrollWidth} px of content in ${clientWidth} px; widest: ${widest}`);
}

/** What has the keyboard focus, for messages. */
async function focused(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return '(nothing)';
    const name = el.getAttribute('aria-label') || el.labels?.[0]?.textContent || el.textContent || el.getAttribute('name') || '';
    return `${el.tagName.toLowerCase()} “${name.trim().slice(0, 40)}”`;
  });
}

/**
 * Press Tab (or Shift+Tab, when it is before the focus) until `locator` has the focus, at most
 * `max` times: proves it can be reached with the keyboard. Never clicks.
 */
export async function tabTo(page, locator, { max = 150 } = {}) {
  await locator.waitFor();
  // Forwards when it comes after the focus in the page, else backwards (Shift+Tab).
  const backwards = await locator.evaluate((el) => {
    const active = document.activeElement;
    if (!active || active === document.body || active === el) return false;
    return Boolean(active.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_PRECEDING);
  });
  for (let i = 0; i <= max; i += 1) {
    if (await locator.evaluate((el) => el === document.activeElement)) return;
    await page.keyboard.press(backwards ? 'Shift+Tab' : 'Tab');
  }
  throw new Error(`could not reach ${locator} with ${max} presses of Tab; the focus is on ${await focused(page)}`);
}

/** Reach a control with Tab and press a key on it (Enter for links and buttons, Space for checkboxes). */
export async function tabAndPress(page, locator, key = 'Enter', options) {
  await tabTo(page, locator, options);
  await page.keyboard.press(key);
}

/** Reach a text field with Tab and type into it (replacing what it holds). */
export async function tabAndType(page, locator, text, options) {
  await tabTo(page, locator, options);
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('Delete');
  await page.keyboard.type(text);
}

/** Reach a <select> with Tab and move through its options with the arrow keys until `label` is chosen. */
export async function tabAndSelect(page, locator, label, options) {
  await tabTo(page, locator, options);
  const wanted = await locator.evaluate((el, text) => [...el.options].findIndex((o) => o.label === text || o.value === text), label);
  if (wanted < 0) throw new Error(`${locator} has no option ${label}`);
  for (let i = 0; i < 40; i += 1) {
    const index = await locator.evaluate((el) => el.selectedIndex);
    if (index === wanted) return;
    await page.keyboard.press(index < wanted ? 'ArrowDown' : 'ArrowUp');
  }
  throw new Error(`could not choose ${label} in ${locator} with the arrow keys`);
}

/**
 * Reach an <input type="datetime-local"> with Tab and type a date and time into its parts, as a
 * person does in Chromium's en-US field (mm/dd/yyyy, Tab, hh:mm, AM/PM). `value`: "YYYY-MM-DDTHH:MM".
 */
export async function tabAndTypeDateTime(page, locator, value) {
  await tabTo(page, locator);
  const [, year, month, day, hour, minute] = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$/.exec(value);
  const h = Number(hour) % 12 === 0 ? 12 : Number(hour) % 12;
  await page.keyboard.type(`${month}${day}${year}`);
  await page.keyboard.press('Tab');
  await page.keyboard.type(`${String(h).padStart(2, '0')}${minute}`);
  await page.keyboard.type(Number(hour) < 12 ? 'A' : 'P');
  const got = await locator.inputValue();
  assert.equal(got, value, `typed ${value} into the date and time field with the keyboard`);
}
