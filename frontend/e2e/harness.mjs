// The browser tests' setup: a real `tandem dev`, the repository's Nginx in
// front of it, and Debian's Chromium driven by playwright-core.
//
//   const env = await startEnvironment('collaboration');   // in before()
//   const alice = await env.signIn('alice@example.com');   // a browser context + page, signed in
//   await env.close();                                      // in after(): chromium, nginx, server
//
// Every page goes through Nginx's URL (env.baseUrl), never to the API directly.
// Outputs go to <repo>/test-output/e2e/: screenshots of the main screens, the
// server's and Nginx's logs, and on a failure a screenshot of every open page
// (failures/<suite>/). E2E_UPDATE_SCREENSHOTS=1 also copies the screenshots
// into docs/screenshots/.
//
// Settings (environment): TANDEM_BIN (default ../.venv/bin/tandem), NGINX_BIN
// (default nginx on PATH or /usr/sbin/nginx), CHROMIUM_BIN (default /usr/bin/chromium),
// E2E_HEADED=1 (show the browser, for debugging).

import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, rmSync, copyFileSync, readFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';

import { chromium } from 'playwright-core';

export const FRONTEND = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = path.resolve(FRONTEND, '..');
export const OUTPUT = path.join(ROOT, 'test-output', 'e2e');
export const DOCS_SCREENSHOTS = path.join(ROOT, 'docs', 'screenshots');

/** Bounded waits: every wait in the tests uses one of these. */
export const TIMEOUTS = {
  serverStart: 40_000,
  nginxStart: 10_000,
  action: 10_000, // a click, a fill, an element to appear after a local action
  live: 8_000, // a change made on one page to show on another
  reconnect: 25_000, // a dropped socket to come back (backoff grows while it is down)
  poll: 16_000, // the collaborations list polls every 10 s
  test: 90_000,
};

const SPA_DIST = path.join(FRONTEND, 'dist');

// ---- processes ------------------------------------------------------------

const running = new Set(); // child processes we started and have not reaped yet

function killGroup(child, signal) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal); // its own process group (detached)
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

// If the test process dies without running after(), still stop what we started.
process.once('exit', () => {
  for (const child of running) killGroup(child, 'SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    for (const child of running) killGroup(child, 'SIGKILL');
    process.exit(130);
  });
}

function startProcess(command, args, { logFile, env }) {
  const log = createWriteStream(logFile, { flags: 'w' });
  const child = spawn(command, args, {
    cwd: ROOT,
    env,
    detached: true, // own process group, so stopping it stops its children too
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
    child.once('error', (error) => {
      running.delete(child);
      log.write(`\n[e2e] could not start ${command}: ${error.message}\n`);
      resolve({ code: null, signal: null, error });
    });
  });
  const stop = async (timeout = 8_000) => {
    if (child.exitCode === null && child.signalCode === null) {
      const start = Date.now();
      killGroup(child, 'SIGTERM');
      let killed = false;
      const timer = setTimeout(() => {
        killed = true;
        killGroup(child, 'SIGKILL');
      }, timeout);
      await exited;
      clearTimeout(timer);
      if (killed) {
        const note = `${path.basename(command)} did not exit within ${timeout} ms of SIGTERM: killed (SIGKILL)`;
        log.write(`\n[e2e] ${note}\n`);
        console.log(`warning: ${note}; its log: ${path.relative(process.cwd(), logFile)}`);
      } else {
        log.write(`\n[e2e] stopped with SIGTERM in ${Date.now() - start} ms\n`);
      }
    }
    await new Promise((resolve) => log.end(resolve));
  };
  return { child, exited, stop, logFile };
}

function tail(file, lines = 40) {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function findBinary(envName, candidates) {
  if (process.env[envName]) return process.env[envName];
  for (const candidate of candidates) {
    if (candidate.includes('/')) {
      if (existsSync(candidate)) return candidate;
    } else {
      const found = spawnSync('sh', ['-c', `command -v ${candidate}`], { encoding: 'utf8' });
      if (found.status === 0 && found.stdout.trim()) return found.stdout.trim();
    }
  }
  return candidates[candidates.length - 1];
}

/** `tandem dev --port 0`; resolves with its URL once it prints "Tandem is ready at …". */
async function startServer(logFile) {
  const bin = process.env.TANDEM_BIN || path.join(ROOT, '.venv', 'bin', 'tandem');
  const env = { ...process.env, AI_PROVIDER: 'offline', LOG_LEVEL: 'INFO', PYTHONUNBUFFERED: '1' };
  delete env.MONGODB_URI; // the embedded store: every suite starts from the demo data
  delete env.GROQ_API_KEY;
  const proc = startProcess(bin, ['dev', '--host', '127.0.0.1', '--port', '0'], { logFile, env });
  const url = await new Promise((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => done(new Error(`tandem dev did not print its URL within ${TIMEOUTS.serverStart} ms`)), TIMEOUTS.serverStart);
    const onData = (chunk) => {
      buffer = (buffer + chunk.toString()).slice(-8192);
      const match = buffer.match(/Tandem is ready at (http:\/\/127\.0\.0\.1:\d+)/);
      if (match) done(null, match[1]);
    };
    function done(error, value) {
      clearTimeout(timer);
      proc.child.stdout.off('data', onData);
      proc.child.stderr.off('data', onData);
      if (error) reject(error);
      else resolve(value);
    }
    proc.child.stdout.on('data', onData);
    proc.child.stderr.on('data', onData);
    proc.exited.then(({ code, signal, error }) =>
      done(new Error(`tandem dev (${bin}) exited before it was ready (code ${code}, signal ${signal}${error ? `, ${error.message}` : ''})`)),
    );
  }).catch(async (error) => {
    await proc.stop();
    throw new Error(`${error.message}\n--- ${logFile} (last lines) ---\n${tail(logFile)}`);
  });
  return { ...proc, url };
}

/** Render nginx/nginx.conf.template for a free loopback port and run it in front of `apiUrl`. */
async function startNginx(apiUrl, logFile, accessLog) {
  if (!existsSync(path.join(SPA_DIST, 'index.html'))) {
    throw new Error(`${SPA_DIST}/index.html is missing: build the SPA first (cd frontend && npm run build)`);
  }
  const nginx = findBinary('NGINX_BIN', ['nginx', '/usr/sbin/nginx']);
  const upstream = new URL(apiUrl).host;
  let lastError = null;
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const prefix = mkdtempSync(path.join(tmpdir(), 'tandem-e2e-nginx-'));
    const port = await freePort();
    const rendered = spawnSync(
      'python3',
      [path.join(ROOT, 'nginx', 'render.py'), '--prefix', prefix, '--port', String(port), '--upstream', upstream, '--root', SPA_DIST, '--access-log', accessLog],
      { encoding: 'utf8', timeout: 10_000 },
    );
    if (rendered.status !== 0) throw new Error(`nginx/render.py failed: ${rendered.stderr || rendered.stdout}`);
    const conf = rendered.stdout.trim();
    const proc = startProcess(nginx, ['-e', 'stderr', '-p', prefix, '-c', conf], { logFile, env: process.env });
    const baseUrl = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + TIMEOUTS.nginxStart;
    let up = false;
    while (Date.now() < deadline && proc.child.exitCode === null) {
      try {
        const response = await fetch(`${baseUrl}/api/health`, { signal: AbortSignal.timeout(2_000) });
        if (response.ok) {
          up = true;
          break;
        }
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    if (up) {
      const stop = async () => {
        await proc.stop();
        rmSync(prefix, { recursive: true, force: true });
      };
      return { ...proc, stop, baseUrl, port, prefix };
    }
    await proc.stop();
    rmSync(prefix, { recursive: true, force: true });
    lastError = new Error(`nginx did not answer on ${baseUrl} within ${TIMEOUTS.nginxStart} ms\n--- ${logFile} ---\n${tail(logFile)}`);
  }
  throw lastError;
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Poll `check` (sync or async; truthy = done) until it holds or `timeout` ms pass. */
export async function until(check, { timeout = TIMEOUTS.action, interval = 100, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? `: ${last.message}` : '';
      throw new Error(`timed out after ${timeout} ms waiting for ${message}${detail}`);
    }
    await sleep(interval);
  }
}

// ---- the page side ----------------------------------------------------------

/**
 * Installed in every page before the SPA runs:
 * - window.__e2eSockets wraps WebSocket so a test can drop the realtime socket
 *   the way a network failure would (the client did not ask for it) and keep
 *   new connections failing until restore();
 * - window.__e2eLoadId tells whether the page was reloaded.
 */
function pageInstrumentation() {
  const Native = window.WebSocket;
  const open = new Set();
  let blocked = false;
  let opened = 0;
  class InstrumentedWebSocket extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      opened += 1;
      open.add(this);
      this.addEventListener('close', () => open.delete(this));
      // While blocked, every new connection fails as an unreachable server would.
      if (blocked) this.close(4000, 'e2e: network down');
    }
  }
  window.WebSocket = InstrumentedWebSocket;
  window.__e2eSockets = {
    drop() {
      blocked = true;
      const n = open.size;
      for (const socket of [...open]) socket.close(4000, 'e2e: forced drop');
      return n;
    },
    restore() {
      blocked = false;
    },
    get open() {
      return [...open].filter((s) => s.readyState === Native.OPEN).length;
    },
    get opened() {
      return opened;
    },
  };
  window.__e2eLoadId = Math.random().toString(36).slice(2);
}

/** A signed-in person: one browser context and its page. */
export class Person {
  constructor(env, email, context, page) {
    this.env = env;
    this.email = email;
    this.context = context;
    this.page = page;
    this.loadId = null;
    this.log = [];
    page.on('console', (msg) => this.log.push(`[console.${msg.type()}] ${msg.text()}`));
    page.on('pageerror', (error) => this.log.push(`[pageerror] ${error.stack || error.message}`));
    page.on('requestfailed', (request) =>
      this.log.push(`[requestfailed] ${request.method()} ${request.url()} ${request.failure()?.errorText ?? ''}`),
    );
    page.on('response', (response) => {
      if (response.status() >= 400) this.log.push(`[http ${response.status()}] ${response.request().method()} ${response.url()}`);
    });
    // Every request of the page must go to Nginx (or be a data:/blob: URL).
    this.foreign = [];
    page.on('request', (request) => {
      const url = request.url();
      if (/^(data|blob|about):/.test(url)) return;
      if (new URL(url).host !== new URL(env.baseUrl).host) this.foreign.push(`${request.method()} ${url}`);
    });
    page.on('websocket', (ws) => {
      if (new URL(ws.url()).host !== new URL(env.baseUrl).host) this.foreign.push(`WebSocket ${ws.url()}`);
      this.log.push(`[ws open] ${ws.url()}`);
      ws.on('close', () => this.log.push(`[ws close] ${ws.url()}`));
    });
  }

  /** The connection state shown in the header (data-state). */
  async connectionState() {
    return this.page.getByTestId('connection-state').getAttribute('data-state', { timeout: TIMEOUTS.action });
  }

  async waitLive(timeout = TIMEOUTS.reconnect) {
    await until(async () => (await this.connectionState()) === 'live', { timeout, message: `${this.email}'s connection to be live` });
  }

  /** Remember the current page load; assertNoReload() fails if the page reloaded since. */
  async markLoad() {
    this.loadId = await this.page.evaluate(() => window.__e2eLoadId);
  }

  async assertNoReload() {
    const now = await this.page.evaluate(() => window.__e2eLoadId);
    if (!this.loadId || now !== this.loadId) throw new Error(`${this.email}'s page was reloaded (load ${this.loadId} → ${now})`);
  }
}

// ---- the environment --------------------------------------------------------

export async function startEnvironment(suite) {
  mkdirSync(path.join(OUTPUT, 'logs'), { recursive: true });
  const failures = path.join(OUTPUT, 'failures', suite);
  rmSync(failures, { recursive: true, force: true });
  const serverLog = path.join(OUTPUT, 'logs', `${suite}-server.log`);
  const nginxLog = path.join(OUTPUT, 'logs', `${suite}-nginx.log`);
  const accessLog = path.join(OUTPUT, 'logs', `${suite}-nginx-access.log`);
  rmSync(accessLog, { force: true });
  const env = new Environment(suite, serverLog, nginxLog, failures);
  env.accessLog = accessLog;
  try {
    env.server = await startServer(serverLog);
    env.nginx = await startNginx(env.server.url, nginxLog, accessLog);
    env.browser = await chromium.launch({
      executablePath: findBinary('CHROMIUM_BIN', ['/usr/bin/chromium', 'chromium']),
      headless: !process.env.E2E_HEADED,
      timeout: 30_000,
      // Playwright gives every launch a fresh temporary profile of its own
      // (it refuses --user-data-dir here) and deletes it on close.
      args: [
        ...(process.env.E2E_HEADED ? [] : ['--headless']),
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  } catch (error) {
    await env.close();
    throw error;
  }
  return env;
}

class Environment {
  constructor(suite, serverLog, nginxLog, failures) {
    this.suite = suite;
    this.serverLog = serverLog;
    this.nginxLog = nginxLog;
    this.failures = failures;
    this.server = null;
    this.nginx = null;
    this.browser = null;
    this.people = [];
  }

  get baseUrl() {
    return this.nginx.baseUrl;
  }

  url(pathname = '/') {
    return new URL(pathname, this.nginx.baseUrl).toString();
  }

  /** A fresh browser context (its own storage: its own person) with the instrumentation installed. */
  async newPerson(email) {
    const context = await this.browser.newContext({
      viewport: { width: 1280, height: 860 },
      deviceScaleFactor: 1,
      locale: 'en-US',
      timezoneId: 'UTC',
      colorScheme: 'light',
    });
    context.setDefaultTimeout(TIMEOUTS.action);
    context.setDefaultNavigationTimeout(15_000);
    await context.addInitScript(pageInstrumentation);
    const page = await context.newPage();
    const person = new Person(this, email, context, page);
    this.people.push(person);
    return person;
  }

  /** Open the SPA, sign in with the dev login form, wait for the collaborations list. */
  async signIn(email, { screenshot } = {}) {
    const person = await this.newPerson(email);
    const { page } = person;
    await page.goto(this.url('/'));
    await page.waitForURL(/\/sign-in/);
    await page.getByLabel('Email').fill(email);
    if (screenshot) await this.screenshot(page, screenshot);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'My collaborations' }).waitFor();
    await person.waitLive(TIMEOUTS.live);
    return person;
  }

  /** Save a screenshot of a main screen into test-output/e2e/ (and docs/screenshots with E2E_UPDATE_SCREENSHOTS=1); `element`: of one part. */
  async screenshot(page, name, { element, ...options } = {}) {
    mkdirSync(OUTPUT, { recursive: true });
    const file = path.join(OUTPUT, `${name}.png`);
    // Let transient notices and the caret settle so the picture shows the screen itself.
    // `element`: a locator, to picture that part of the page only (scrolled into view, whole).
    await (element ?? page).screenshot({ path: file, animations: 'disabled', caret: 'hide', ...options });
    if (process.env.E2E_UPDATE_SCREENSHOTS) {
      mkdirSync(DOCS_SCREENSHOTS, { recursive: true });
      copyFileSync(file, path.join(DOCS_SCREENSHOTS, `${name}.png`));
    }
    return file;
  }

  /** Fail if a page made a request anywhere but Nginx's origin (say, straight to the API). */
  assertOnlyThroughNginx() {
    const foreign = this.people.flatMap((person) => person.foreign.map((request) => `${person.email}: ${request}`));
    if (foreign.length > 0) throw new Error(`requests that bypassed Nginx (${this.baseUrl}):\n${foreign.join('\n')}`);
  }

  /** Close the transient notices (bottom right) so a screenshot shows the screen itself. */
  async dismissNotices(page) {
    const buttons = page.getByRole('button', { name: 'Dismiss notice' });
    while ((await buttons.count()) > 0) await buttons.first().click();
  }

  /** After a failed test: every open page's screenshot and browser log, and where the server's and Nginx's logs are. */
  async saveFailure(testName, error) {
    const dir = path.join(this.failures, testName.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase());
    mkdirSync(dir, { recursive: true });
    const saved = [];
    for (const person of this.people) {
      const base = path.join(dir, person.email.replace(/[^a-z0-9]+/gi, '_'));
      try {
        if (!person.page.isClosed()) {
          await person.page.screenshot({ path: `${base}.png`, fullPage: true, timeout: 5_000 });
          saved.push(`${base}.png`);
        }
      } catch (screenshotError) {
        person.log.push(`[e2e] screenshot failed: ${screenshotError.message}`);
      }
      writeFileSync(`${base}.browser.log`, `${person.page.url()}\n${person.log.join('\n')}\n`);
      saved.push(`${base}.browser.log`);
    }
    writeFileSync(path.join(dir, 'error.txt'), `${error?.stack || error}\n`);
    for (const log of [this.serverLog, this.nginxLog, this.accessLog]) {
      if (existsSync(log)) {
        copyFileSync(log, path.join(dir, path.basename(log)));
        saved.push(path.join(dir, path.basename(log)));
      }
    }
    console.log(`e2e failure in ${this.suite} › ${testName}: artifacts in ${path.relative(process.cwd(), dir) || dir}`);
    for (const file of saved) console.log(`  ${path.relative(process.cwd(), file)}`);
    console.log(`server log tail (${path.relative(process.cwd(), this.serverLog)}):\n${tail(this.serverLog, 15).replace(/^/gm, '  ')}`);
    console.log(`nginx log tail (${path.relative(process.cwd(), this.nginxLog)}):\n${tail(this.nginxLog, 10).replace(/^/gm, '  ')}`);
  }

  /** A dev token for direct HTTP checks, through Nginx like everything else. */
  async devLogin(email) {
    const response = await fetch(this.url('/api/auth/dev-login'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email }),
      signal: AbortSignal.timeout(TIMEOUTS.action),
    });
    if (!response.ok) throw new Error(`dev-login ${email}: ${response.status} ${await response.text()}`);
    return (await response.json()).access_token;
  }

  async api(method, pathname, { token, body, headers } = {}) {
    const response = await fetch(this.url(pathname), {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body ? { 'content-type': 'application/json' } : {}),
        ...(headers ?? {}),
      },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: response.status, headers: response.headers, text, json };
  }

  async close() {
    const errors = [];
    for (const person of this.people) {
      await person.context.close().catch((error) => errors.push(error));
    }
    this.people = [];
    if (this.browser) await this.browser.close().catch((error) => errors.push(error));
    if (this.nginx) await this.nginx.stop().catch((error) => errors.push(error));
    if (this.server) await this.server.stop().catch((error) => errors.push(error));
    this.browser = this.nginx = this.server = null;
    if (errors.length) console.log(`e2e cleanup: ${errors.map((e) => e.message).join('; ')}`);
  }
}

/**
 * One test file's environment: started in before(), stopped in after() (also
 * when a test fails), and a `test` whose failures save screenshots and logs.
 *
 *   const suite = defineSuite('collaboration');
 *   suite.test('two people…', async () => { const env = suite.env; … });
 */
export function defineSuite(name) {
  let env = null;
  before(async () => {
    env = await startEnvironment(name);
  }, { timeout: TIMEOUTS.serverStart + TIMEOUTS.nginxStart + 40_000 });
  after(async () => {
    await env?.close();
  }, { timeout: 30_000 });
  return {
    get env() {
      if (!env) throw new Error('the e2e environment did not start (see the before hook)');
      return env;
    },
    test(testName, fn, { timeout = TIMEOUTS.test } = {}) {
      return test(testName, { timeout }, async (t) => {
        try {
          await fn(t);
          env?.assertOnlyThroughNginx();
        } catch (error) {
          if (env) {
            await env.saveFailure(testName, error).catch((saveError) => console.log(`could not save failure artifacts: ${saveError.message}`));
          }
          throw error;
        }
      });
    },
  };
}
