// Nginx in front of the SPA and the API: history fallback, cached hashed
// assets, security headers, the API's error shape for what Nginx refuses, and
// a deep link opened in the browser.

import assert from 'node:assert/strict';

import { defineSuite, TIMEOUTS } from './harness.mjs';

const suite = defineSuite('nginx');

const SECURITY_HEADERS = {
  'x-content-type-options': /^nosniff$/,
  'x-frame-options': /^DENY$/,
  'referrer-policy': /^strict-origin-when-cross-origin$/,
  'permissions-policy': /camera=\(\)/,
  'content-security-policy': /default-src 'self'.*connect-src 'self' ws: wss:.*frame-ancestors 'none'/,
};

function assertSecurityHeaders(headers, what) {
  for (const [name, pattern] of Object.entries(SECURITY_HEADERS)) {
    const value = headers.get(name);
    assert.ok(value, `${what}: missing ${name}`);
    assert.match(value, pattern, `${what}: ${name} is ${value}`);
  }
}

async function get(pathname, init = {}) {
  const response = await fetch(suite.env.url(pathname), { ...init, signal: AbortSignal.timeout(TIMEOUTS.action) });
  return { response, body: Buffer.from(await response.arrayBuffer()) };
}

/** The demo collaboration's id, through Nginx. */
async function demoCollaborationId(env) {
  const token = await env.devLogin('alice@example.com');
  const { status, json } = await env.api('GET', '/api/collaborations', { token });
  assert.equal(status, 200);
  const list = Array.isArray(json) ? json : json.collaborations ?? json.items;
  const demo = list.find((c) => c.title === 'Weekend in the mountains');
  assert.ok(demo, `the demo collaboration is in alice's list: ${JSON.stringify(json).slice(0, 300)}`);
  return demo.id;
}

suite.test('index.html and SPA routes: history fallback, no-cache, security headers', async () => {
  const index = await get('/');
  assert.equal(index.response.status, 200);
  assert.match(index.response.headers.get('content-type'), /^text\/html/);
  assert.equal(index.response.headers.get('cache-control'), 'no-cache');
  assertSecurityHeaders(index.response.headers, 'GET /');
  const html = index.body.toString();
  assert.match(html, /<div id="root">/);

  const id = await demoCollaborationId(suite.env);
  for (const route of [`/collaborations/${id}`, '/approvals', '/sign-in?next=%2Fapprovals', '/no/such/page']) {
    const deep = await get(route);
    assert.equal(deep.response.status, 200, `GET ${route}`);
    assert.match(deep.response.headers.get('content-type'), /^text\/html/, `GET ${route}`);
    assert.equal(deep.response.headers.get('cache-control'), 'no-cache', `GET ${route}`);
    assert.equal(deep.body.toString(), html, `GET ${route} serves index.html`);
    assertSecurityHeaders(deep.response.headers, `GET ${route}`);
  }
});

suite.test('hashed assets: long-lived immutable cache, right types, gzip, no source maps; a missing one is a 404', async () => {
  const html = (await get('/')).body.toString();
  const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
  assert.ok(assets.some((a) => a.endsWith('.js')), `index.html links a script: ${assets.join(', ')}`);
  assert.ok(assets.some((a) => a.endsWith('.css')), `index.html links a stylesheet: ${assets.join(', ')}`);
  for (const asset of assets) {
    assert.match(asset, /-[A-Za-z0-9_-]{8,}\.(js|css)$/, `${asset} has a content hash`);
    const { response, body } = await get(asset, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(response.status, 200, asset);
    assert.equal(response.headers.get('cache-control'), 'public, max-age=31536000, immutable', asset);
    assert.match(response.headers.get('content-type'), asset.endsWith('.js') ? /javascript/ : /text\/css/, asset);
    assertSecurityHeaders(response.headers, asset);
    assert.ok(body.length > 0, `${asset} is not empty`);
    // No public source maps: the build has none, and nothing points to one.
    assert.doesNotMatch(body.toString(), /sourceMappingURL=/, `${asset} names no source map`);
    const map = await get(`${asset}.map`);
    assert.equal(map.response.status, 404, `${asset}.map is not served`);
  }
  // Node's fetch decodes gzip itself; ask again without decoding to see the encoding.
  const main = assets.find((a) => a.endsWith('.js'));
  const raw = await fetch(suite.env.url(main), { headers: { 'accept-encoding': 'gzip' }, signal: AbortSignal.timeout(TIMEOUTS.action) });
  assert.equal(raw.headers.get('content-encoding'), 'gzip', `${main} is served gzipped`);
  await raw.arrayBuffer();

  const missing = await get('/assets/index-DoesNotExist.js');
  assert.equal(missing.response.status, 404, 'a missing asset is a 404');
  assert.doesNotMatch(missing.body.toString(), /<div id="root">/, 'a missing asset is never index.html');
});

suite.test('the API through Nginx: health, its own errors, and 413 in the API shape', async () => {
  const env = suite.env;
  const health = await env.api('GET', '/api/health');
  assert.equal(health.status, 200);
  assert.deepEqual(health.json, { status: 'ok' });
  assert.notEqual(health.headers.get('cache-control'), 'no-cache', 'the SPA cache rule does not apply to the API');

  const unauthenticated = await env.api('GET', '/api/collaborations');
  assert.equal(unauthenticated.status, 401);
  assert.equal(unauthenticated.json?.error?.code, 'unauthenticated');

  const token = await env.devLogin('alice@example.com');
  const big = await fetch(env.url('/api/actions/sendMessage'), {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ collaborationId: 'col_x', payload: { text: 'x'.repeat(1_100_000) } }),
    signal: AbortSignal.timeout(TIMEOUTS.action),
  });
  assert.equal(big.status, 413);
  const bigBody = await big.json();
  assert.equal(bigBody.error.code, 'payload_too_large');
});

suite.test('a deep link opens the SPA in the browser, through sign-in, with no CSP violation', async () => {
  const env = suite.env;
  const id = await demoCollaborationId(env);
  const person = await env.newPerson('alice@example.com');
  const { page } = person;
  const violations = [];
  page.on('console', (msg) => {
    if (/Content Security Policy|Refused to/i.test(msg.text())) violations.push(msg.text());
  });

  const response = await page.goto(env.url(`/collaborations/${id}`));
  assert.equal(response.status(), 200);
  assertSecurityHeaders(new Headers(response.headers()), 'the deep link in the browser');
  // Not signed in yet: the SPA sends us to sign in, and back to the deep link after.
  await page.waitForURL((url) => url.pathname === '/sign-in' && url.searchParams.get('next') === `/collaborations/${id}`);
  await page.getByLabel('Email').fill('alice@example.com');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((url) => url.pathname === `/collaborations/${id}`);
  await page.getByRole('heading', { name: 'Activities' }).waitFor();
  await page.getByRole('heading', { level: 1, name: 'Weekend in the mountains' }).waitFor();
  await person.waitLive(TIMEOUTS.live);

  // Signed in: a reload of the deep link (a fresh document from Nginx) lands on the page again.
  await page.reload();
  await page.getByRole('heading', { name: 'Activities' }).waitFor();
  assert.equal(new URL(page.url()).pathname, `/collaborations/${id}`);
  await person.waitLive(TIMEOUTS.live);
  assert.deepEqual(violations, [], 'no Content-Security-Policy violations');
});
