// The end-to-end harness: the real reference server, a real browser (the
// engine OUTBOX_ENGINE names, through ./engines), and helpers for what tests
// do again and again.
import { spawn } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { launch } from './engines/index.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const SERVER = process.env.OUTBOX_SERVER || join(root, 'target', 'debug', 'outbox-demo');
const DIST = process.env.OUTBOX_DIST || join(root, 'dist', 'outbox');
export { ENGINE, needs } from './engines/index.mjs';
export { CHROMIUM_ARGS } from './engines/chromium.mjs';

// Servers still running, stopped when this process exits however it exits
// (Playwright turns Ctrl-C into a plain exit after closing its browsers).
const runningServers = new Set();
process.on('exit', () => {
  for (const child of runningServers) child.kill();
});

/**
 * Starts the reference server on free loopback ports, serving `site`
 * (default: the test site) and `dist` at /outbox/.
 */
export async function startServer({ delayMs = 0, site = join(here, 'site'), binary = SERVER, dist = DIST } = {}) {
  const child = spawn(
    binary,
    ['--port', '0', '--control-port', '0', '--site', site, '--outbox', dist, '--delay-ms', String(delayMs)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  runningServers.add(child);
  child.once('exit', () => runningServers.delete(child));
  const line = await new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`${binary} exited with ${code} before listening`)));
    createInterface({ input: child.stdout }).once('line', resolve);
  });
  const match = /app=(\S+) control=(\S+)/.exec(line);
  if (!match) {
    child.kill();
    throw new Error(`unexpected first line from ${binary}: ${line}`);
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
    reset: () => call('/control/reset', {}),
    entities: () => call('/control/entities'),
    down: () => call('/control/down', {}),
    up: () => call('/control/up', {}),
    fail: (rule) => call('/control/fail', rule),
    drop: (rule) => call('/control/drop', rule),
    delay: (ms) => call('/control/delay', { ms }),
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) {
        resolve();
        return;
      }
      child.once('exit', resolve);
      child.kill();
    }),
  };
}

/** The default test config: every API route queued, fast backoff. */
/**
 * Triggers for scenarios where only the page's flush (and the commands a
 * test sends) start drains, so every send is one the test asked for.
 */
export const FLUSH_ONLY = Object.freeze({ sync: false, start: false, timer: false, flush: true });

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
 * Launches the browser with a fresh (or given) profile and opens the test
 * page with `config`, waiting until the page is controlled and the shim
 * ready. The result is the engine's driver (see ./engines/index.mjs) with
 * the page's `url`.
 */
export async function openBrowser(server, config = testConfig(), { profile } = {}) {
  const browser = await launch({ profile });
  const url = `${server.app}/index.html?config=${encodeURIComponent(JSON.stringify(config))}`;
  try {
    await browser.goto(url);
    await pageReady(browser);
  } catch (error) {
    await browser.close();
    throw error;
  }
  browser.url = url;
  return browser;
}

/**
 * Waits until the test page's shim is registered and the page controlled
 * (`window.outboxReady` resolved to true); a page whose script did not run
 * or whose registration failed is an error, not a silent `undefined`.
 */
export async function pageReady(page, timeoutMs = 30000) {
  const ready = await page.run((timeoutMs) => new Promise((resolve, reject) => {
    const start = Date.now();
    const poll = () => {
      if (window.outboxReady) {
        window.outboxReady.then(resolve, (error) => reject(new Error(`Outbox.register failed: ${error}`)));
      } else if (Date.now() - start > timeoutMs) {
        const loaded = performance.getEntriesByType('resource').map((entry) => entry.name).join(', ');
        import('/outbox/outbox.js').then(
          () => 'the shim imports now',
          (error) => `importing the shim fails: ${error}`,
        ).then((shim) => reject(new Error(
          `the test page's script did not start within ${timeoutMs} ms (document ${document.readyState}; loaded: ${loaded || 'nothing'}; ${shim})`)));
      } else {
        setTimeout(poll, 20);
      }
    };
    poll();
  }), timeoutMs).catch((error) => {
    const said = page.said();
    throw new Error(`${error.message}${said.length ? `\nthe page said:\n  ${said.join('\n  ')}` : ''}`);
  });
  if (ready !== true) throw new Error(`the test page is not ready: ${JSON.stringify(ready)}`);
  if (!(await page.run(() => Boolean(navigator.serviceWorker.controller && window.outbox)))) {
    throw new Error('the test page is ready but not controlled by the worker');
  }
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

/** Waits until the server has applied `n` mutations (`what` names them in a timeout). */
export async function waitApplied(server, n, timeoutMs = 20000, what = `${n} applied mutations`) {
  return waitFor(async () => {
    const stats = await server.stats();
    return stats.applied >= n ? stats : false;
  }, { timeoutMs, what });
}

/** Applied-log entries by path, in order. */
export function appliedPaths(stats) {
  return stats.log.map((entry) => `${entry.method} ${entry.path}`);
}

/**
 * Opens another tab on the same origin (a second page in the browser's
 * context) at the test page, waiting until it is controlled and its shim is
 * ready. The result works with `status`, `entries`, `send`, `pageFetch`.
 */
export async function openTab(browser) {
  const tab = await browser.newTab(browser.url);
  await pageReady(tab);
  return tab;
}

/**
 * Sends a list of JSON mutations `[{method, path, body}]` one after the
 * other from inside the page; gives `[{status, entry, body}]` (`entry` is the
 * `Outbox-Entry` header as a number, or null).
 */
export function sendAll(browser, mutations) {
  return browser.run(async (mutations) => {
    const results = [];
    for (const { method, path, body } of mutations) {
      const response = await fetch(path, {
        method,
        headers: { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const entry = response.headers.get('outbox-entry');
      results.push({ status: response.status, entry: entry === null ? null : Number(entry), body: await response.text() });
    }
    return results;
  }, mutations);
}

/**
 * Wakes the (possibly stopped) worker with a message the outbox ignores: the
 * test site's own `ping`; resolves when its `pong` arrives, so the worker's
 * top level has run again.
 */
export function wakeWorker(browser, timeoutMs = 15000) {
  return browser.run((timeoutMs) => new Promise((resolve, reject) => {
    const container = navigator.serviceWorker;
    const timer = setTimeout(() => {
      container.removeEventListener('message', onMessage);
      reject(new Error(`no pong from the worker within ${timeoutMs} ms`));
    }, timeoutMs);
    function onMessage(event) {
      if (event.data && event.data.site === 'pong') {
        clearTimeout(timer);
        container.removeEventListener('message', onMessage);
        resolve(true);
      }
    }
    container.addEventListener('message', onMessage);
    if (!container.controller) {
      clearTimeout(timer);
      reject(new Error('the page has no controller'));
      return;
    }
    container.controller.postMessage({ site: 'ping' });
  }), timeoutMs);
}

/**
 * Polls for `ms` and throws if `check` ever returns something other than
 * true: proves that nothing happens on its own during a short window.
 */
export async function staysTrue(check, { ms = 600, intervalMs = 50, what = 'condition' } = {}) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const value = await check();
    if (value !== true) {
      throw new Error(`expected ${what} to hold for ${ms} ms; it broke with ${JSON.stringify(value)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Waits until the outbox holds no entries at all (every entry sent and removed). */
export function waitQueueEmpty(browser, timeoutMs = 20000) {
  return waitFor(async () => {
    const s = await status(browser);
    return s.total === 0 && !s.draining ? s : false;
  }, { timeoutMs, what: 'an empty outbox queue' });
}

/**
 * Checks that each key in `keys` was applied exactly once and that nothing
 * else was applied; with `received`, also that the server received each key
 * exactly once (no duplicate ever reached it). Gives a list of problems.
 */
export function exactlyOnceProblems(stats, keys, { received = false } = {}) {
  const problems = [];
  if (stats.applied !== keys.length) problems.push(`applied ${stats.applied}, expected ${keys.length}`);
  for (const key of keys) {
    const times = stats.appliedByKey[key] ?? 0;
    if (times !== 1) problems.push(`key ${key} applied ${times} times`);
    if (received) {
      const got = stats.receivedByKey[key] ?? 0;
      if (got !== 1) problems.push(`key ${key} received ${got} times`);
    }
  }
  const known = new Set(keys);
  for (const [key, times] of Object.entries(stats.appliedByKey)) {
    if (!known.has(key)) problems.push(`unknown key ${key} applied ${times} times`);
  }
  return problems;
}

/**
 * Groups the applied log by path: `{path: [{method, seq}]}` in applied order,
 * `seq` read from the JSON body's `seq` field.
 */
export function appliedByPath(stats) {
  const byPath = {};
  for (const entry of stats.log) {
    (byPath[entry.path] ||= []).push({ method: entry.method, seq: entry.body && entry.body.seq });
  }
  return byPath;
}

/**
 * The same grouping for a list of mutations as sent, `[{method, path, body}]`:
 * what `appliedByPath` must equal when every mutation was applied once, in
 * order per entity.
 */
export function expectedByPath(mutations) {
  const byPath = {};
  for (const { method, path, body } of mutations) {
    (byPath[path] ||= []).push({ method, seq: body && body.seq });
  }
  return byPath;
}

/**
 * Every record of one object store of the outbox database (`sw-outbox`),
 * read directly from the page: `[{key, type, text}]`, where `text` is the
 * value as text (strings as they are, bytes decoded as UTF-8, anything else
 * as JSON), so tests can search what is really on disk.
 */
export function idbRecords(browser, storeName = 'entries') {
  return browser.run((storeName) => new Promise((resolve, reject) => {
    const open = indexedDB.open('sw-outbox');
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const store = db.transaction(storeName).objectStore(storeName);
      const keys = store.getAllKeys();
      const values = store.getAll();
      values.onerror = () => reject(values.error);
      values.onsuccess = () => {
        const describe = (value) => {
          if (typeof value === 'string') return { type: 'string', text: value };
          if (value instanceof ArrayBuffer) return { type: 'ArrayBuffer', text: new TextDecoder().decode(value) };
          if (ArrayBuffer.isView(value)) {
            return { type: value.constructor.name, text: new TextDecoder().decode(value) };
          }
          return { type: typeof value, text: JSON.stringify(value) };
        };
        const records = keys.result.map((key, index) => ({ key, ...describe(values.result[index]) }));
        db.close();
        resolve(records);
      };
    };
  }), storeName);
}

/** Writes `value` under `key` into a store of `sw-outbox`, from the page (to damage it). */
export function idbPut(browser, storeName, key, value) {
  return browser.run(({ storeName, key, value }) => new Promise((resolve, reject) => {
    const open = indexedDB.open('sw-outbox');
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const transaction = db.transaction(storeName, 'readwrite');
      transaction.objectStore(storeName).put(value, key);
      transaction.oncomplete = () => { db.close(); resolve(true); };
      transaction.onerror = () => reject(transaction.error);
    };
  }), { storeName, key, value });
}

/**
 * Posts `message` to the page's controller with a MessageChannel port and
 * gives the first reply on that port, or null when none came within
 * `timeoutMs`.
 */
export function postRaw(browser, message, { timeoutMs = 3000 } = {}) {
  return browser.run(({ message, timeoutMs }) => new Promise((resolve) => {
    const channel = new MessageChannel();
    const timer = setTimeout(() => { channel.port1.close(); resolve(null); }, timeoutMs);
    channel.port1.onmessage = ({ data }) => { clearTimeout(timer); channel.port1.close(); resolve(data); };
    navigator.serviceWorker.controller.postMessage(message, [channel.port2]);
  }), { message, timeoutMs });
}

/** The outbox events the test page recorded, optionally only those named `name`. */
export function recordedEvents(browser, name) {
  return browser.run((name) => window.outboxEvents.filter((e) => name === undefined || e.name === name), name);
}

/**
 * Every API request the server received since its last reset, oldest first,
 * with all its headers (names lower-case): `[{method, path, headers}]`.
 */
export function receivedRequests(server) {
  return server.call('/control/received');
}

/**
 * Sends a JSON mutation that must be queued (the server being down): asserts
 * nothing, gives `{status, id, body}` with the entry id from the response.
 */
export async function queueJson(browser, method, path, body, headers = {}) {
  const response = await send(browser, method, path, body, headers);
  const id = response.headers['outbox-entry'] === undefined ? null : Number(response.headers['outbox-entry']);
  return { status: response.status, id, body: response.body };
}

/**
 * Starts recording, in the page, every change of one entry as `entries()`
 * shows it (state, attempts, lastAttemptAt, nextAttemptAt), about every
 * 10 ms, until it leaves the queue. `entryHistory` gives the snapshots.
 */
export function trackEntry(browser, id) {
  return browser.run((id) => {
    window.__outboxTrack = window.__outboxTrack || {};
    const history = (window.__outboxTrack[id] = []);
    (async () => {
      for (;;) {
        const list = await window.outbox.entries();
        const entry = list.find((e) => e.id === id);
        const last = history[history.length - 1];
        if (!entry) { history.push({ gone: true, at: Date.now() }); return; }
        const snap = { state: entry.state, attempts: entry.attempts, lastAttemptAt: entry.lastAttemptAt, nextAttemptAt: entry.nextAttemptAt, at: Date.now() };
        if (!last || last.state !== snap.state || last.attempts !== snap.attempts || last.lastAttemptAt !== snap.lastAttemptAt || last.nextAttemptAt !== snap.nextAttemptAt) {
          history.push(snap);
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    return true;
  }, id);
}

/** The snapshots `trackEntry` recorded for an entry. */
export function entryHistory(browser, id) {
  return browser.run((id) => (window.__outboxTrack && window.__outboxTrack[id]) || [], id);
}
