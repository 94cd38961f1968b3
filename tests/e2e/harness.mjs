// The end-to-end harness: the real reference server, real Chromium, and
// helpers for what tests do again and again.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const SERVER = process.env.OUTBOX_SERVER || join(root, 'target', 'debug', 'outbox-demo');
const DIST = process.env.OUTBOX_DIST || join(root, 'dist', 'outbox');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Starts the reference server on free ports. */
export async function startServer({ delayMs = 0 } = {}) {
  const child = spawn(
    SERVER,
    ['--port', '0', '--control-port', '0', '--site', join(here, 'site'), '--outbox', DIST, '--delay-ms', String(delayMs)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const line = await new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`outbox-demo exited with ${code} before listening`)));
  });
  const match = /app=(\S+) control=(\S+)/.exec(line);
  if (!match) {
    child.kill();
    throw new Error(`unexpected first line from outbox-demo: ${line}`);
  }
  const [, app, control] = match;
  const call = async (path, body) => {
    const response = await fetch(control + path, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) {
      throw new Error(`control ${path}: HTTP ${response.status} ${await response.text()}`);
    }
    return response.json();
  };
  return {
    app,
    control,
    call,
    stats: () => call('/control/stats'),
    entities: () => call('/control/entities'),
    down: () => call('/control/down', {}),
    up: () => call('/control/up', {}),
    fail: (rule) => call('/control/fail', rule),
    drop: (rule) => call('/control/drop', rule),
    delay: (ms) => call('/control/delay', { ms }),
    stop: () => new Promise((resolve) => {
      child.once('exit', resolve);
      child.kill();
    }),
  };
}

/** The default test config: every API route queued, fast backoff. */
export function testConfig(overrides = {}) {
  return {
    routes: [
      { match: '/api/concepts/', kind: 'concept' },
      { match: '/api/connections/', kind: 'connection' },
      { match: '/api/checkpoints/', kind: 'checkpoint', priority: 'critical' },
      { match: '/api/uploads/', kind: 'upload' },
    ],
    retry: { baseDelayMs: 200, maxDelayMs: 2000 },
    ...overrides,
  };
}

/**
 * Launches Chromium with a fresh (or given) profile and opens the test page
 * with `config`, waiting until the page is controlled and the shim ready.
 */
export async function openBrowser(server, config = testConfig(), { profile } = {}) {
  const dir = profile || mkdtempSync(join(tmpdir(), 'outbox-e2e-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
  });
  const page = context.pages()[0] || (await context.newPage());
  page.on('console', (message) => {
    if (process.env.OUTBOX_E2E_VERBOSE) console.log(`[page] ${message.text()}`);
  });
  const url = `${server.app}/index.html?config=${encodeURIComponent(JSON.stringify(config))}`;
  await page.goto(url);
  await page.evaluate(() => window.outboxReady);
  const session = await context.newCDPSession(page);
  const browser = {
    context,
    page,
    session,
    profile: dir,
    url,
    /** Runs a function in the page. */
    run: (fn, arg) => page.evaluate(fn, arg),
    /** Closes the browser; keeps the profile when asked (for a restart). */
    close: async ({ keepProfile = false } = {}) => {
      await context.close();
      if (!keepProfile) rmSync(dir, { recursive: true, force: true });
    },
  };
  return browser;
}

/** Sends a request from the page and gives status, headers and body text. */
export function pageFetch(browser, path, init = {}) {
  return browser.run(
    async ({ path, init }) => {
      const response = await fetch(path, init);
      return {
        status: response.status,
        headers: Object.fromEntries(response.headers.entries()),
        body: await response.text(),
      };
    },
    { path, init },
  );
}

/** A JSON mutation from the page. */
export function send(browser, method, path, body, headers = {}) {
  return pageFetch(browser, path, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** Polls `check` until it returns a truthy value or the time runs out. */
export async function waitFor(check, { timeoutMs = 20000, intervalMs = 50, what = 'condition' } = {}) {
  const start = Date.now();
  let last;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() - start > timeoutMs) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value: ${JSON.stringify(last)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** The outbox status, through the shim. */
export function status(browser) {
  return browser.run(() => window.outbox.status());
}

/** The outbox entries, through the shim. */
export function entries(browser, filter) {
  return browser.run((filter) => window.outbox.entries(filter), filter);
}

/** Counts of open entries (everything but final states). */
export function openCount(s) {
  const c = s.counts;
  return c.pending + c.in_flight + c.waiting_retry + c.paused_auth + c.conflict + c.failed + c.blocked;
}

/** Waits until the server has applied `n` mutations. */
export async function waitApplied(server, n, timeoutMs = 20000) {
  return waitFor(async () => {
    const stats = await server.stats();
    return stats.applied >= n ? stats : false;
  }, { timeoutMs, what: `${n} applied mutations` });
}

/** Enables the ServiceWorker CDP domain and gives the registration id. */
export async function serviceWorkerDomain(browser) {
  const registrations = [];
  const versions = [];
  browser.session.on('ServiceWorker.workerRegistrationUpdated', (event) => registrations.push(...event.registrations));
  browser.session.on('ServiceWorker.workerVersionUpdated', (event) => versions.push(...event.versions));
  await browser.session.send('ServiceWorker.enable');
  await waitFor(() => registrations.length > 0, { what: 'a service worker registration' });
  const origin = new URL(browser.url).origin;
  return {
    registrationId: registrations.find((r) => !r.isDeleted).registrationId,
    versions,
    origin,
    stopAll: () => browser.session.send('ServiceWorker.stopAllWorkers'),
    dispatchSync: (tag = 'sw-outbox', lastChance = false) =>
      browser.session.send('ServiceWorker.dispatchSyncEvent', {
        origin,
        registrationId: registrations.find((r) => !r.isDeleted).registrationId,
        tag,
        lastChance,
      }),
    /** Waits until the worker is stopped. */
    waitStopped: () => waitFor(() => {
      const latest = new Map();
      for (const v of versions) latest.set(v.versionId, v);
      return [...latest.values()].every((v) => v.runningStatus === 'stopped');
    }, { what: 'the worker to stop' }),
  };
}

/** Applied-log entries by path, in order. */
export function appliedPaths(stats) {
  return stats.log.map((entry) => `${entry.method} ${entry.path}`);
}
