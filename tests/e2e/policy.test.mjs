// Scenarios 5 and 6: retry with backoff and Retry-After; the outcome policy
// for 400 (failed, retried by hand) and 401 (paused until fresh auth, which
// is sent but never stored).
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, openBrowser, entries, testConfig, waitFor, staysTrue,
  queueJson, trackEntry, entryHistory, recordedEvents, receivedRequests, idbRecords,
} from './harness.mjs';

const BASE = 400;
const FACTOR = 3;
// Only the page's flush and the backoff timer drain: no sync, no start.
const config = testConfig({
  retry: { baseDelayMs: BASE, factor: FACTOR, maxDelayMs: 10000 },
  triggers: { sync: false, start: false, timer: true, flush: true },
});

let server;
let browser;
before(async () => {
  server = await startServer();
  browser = await openBrowser(server, config);
});
after(async () => {
  await browser?.close();
  await server?.stop();
});
beforeEach(async () => {
  await server.call('/control/reset', {});
  await browser.run(() => window.outbox.clear());
});

/** Queues one JSON mutation with the server down; gives the entry. */
async function queueOne(method, path, body, headers) {
  await server.down();
  const queued = await queueJson(browser, method, path, body, headers);
  assert.equal(queued.status, 202, `queued: ${queued.body}`);
  const entry = (await entries(browser)).find((e) => e.id === queued.id);
  assert.ok(entry, 'the entry is listed');
  return entry;
}

function sentEvent(id) {
  return waitFor(async () => (await recordedEvents(browser, 'sent')).find((e) => e.detail.entry.id === id),
    { what: `a sent event for entry ${id}`, timeoutMs: 15000 });
}

/**
 * Brings the server up and flushes; gives the time the server came up. Until
 * then the backoff timer may have made more offline attempts (they never
 * reach the server); `attemptsBefore` counts them from the entry's history.
 */
async function upAndFlush() {
  const upStart = Date.now();
  await server.up();
  await browser.run(() => window.outbox.flush());
  return upStart;
}

/** The entry's attempt count when the server came up at `upStart`. */
function attemptsBefore(history, upStart, initial) {
  const offline = history.filter((s) => s.lastAttemptAt != null && s.lastAttemptAt < upStart).map((s) => s.attempts);
  return Math.max(initial, ...offline);
}

/** The snapshot of the entry after its attempt number `n`, waiting for its retry. */
function waitingAfter(history, attempts) {
  return history.find((s) => s.state === 'waiting_retry' && s.attempts === attempts);
}

test('5: 503 twice then success: applied once after three attempts, with growing backoff', async () => {
  const entry = await queueOne('PUT', '/api/concepts/backoff', { v: 1 });
  const key = entry.idempotencyKey;
  await server.fail({ count: 2, status: 503, path: '/api/concepts/backoff' });
  await trackEntry(browser, entry.id);
  const upStart = await upAndFlush();

  const sent = await sentEvent(entry.id);
  assert.equal(sent.detail.status, 201);
  const history = await entryHistory(browser, entry.id);
  const a0 = attemptsBefore(history, upStart, entry.attempts);
  const stats = await server.stats();
  assert.equal(stats.receivedByKey[key], 3, 'the server received three attempts with the same key');
  assert.equal(stats.appliedByKey[key], 1, 'applied once');
  assert.equal(stats.applied, 1);
  assert.equal(sent.detail.entry.attempts, a0 + 3, 'the entry counts three more attempts');

  const first = waitingAfter(history, a0 + 1);
  const second = waitingAfter(history, a0 + 2);
  assert.ok(first && second, `the entry waited after each 503: ${JSON.stringify(history)}`);
  const t1 = first.lastAttemptAt;
  const t2 = second.lastAttemptAt;
  const t3 = sent.detail.entry.lastAttemptAt;
  const d1 = t2 - t1;
  const d2 = t3 - t2;
  // Equal jitter: retry n waits between half and all of base * factor^(n-1).
  assert.ok(d1 >= BASE / 2, `first retry waited ${d1} ms, expected >= ${BASE / 2}`);
  assert.ok(d2 >= (BASE * FACTOR) / 2, `second retry waited ${d2} ms, expected >= ${(BASE * FACTOR) / 2}`);
  assert.ok(d2 > d1, `delays grow: ${d1} ms then ${d2} ms`);
  assert.ok(d1 < BASE * 4 && d2 < BASE * FACTOR * 4, `delays stay near the policy: ${d1}, ${d2}`);
  // No attempt went before its scheduled time.
  assert.ok(t2 >= first.nextAttemptAt && t3 >= second.nextAttemptAt, JSON.stringify({ t2, t3, first, second }));
});

test('5: 429 with Retry-After: 2 delays the next attempt by at least 2 s', async () => {
  const entry = await queueOne('PUT', '/api/concepts/retry-after', { v: 1 });
  await server.fail({ count: 1, status: 429, retryAfter: 2, path: '/api/concepts/retry-after' });
  await trackEntry(browser, entry.id);
  const upStart = await upAndFlush();

  const sent = await sentEvent(entry.id);
  const history = await entryHistory(browser, entry.id);
  const a0 = attemptsBefore(history, upStart, entry.attempts);
  const waiting = waitingAfter(history, a0 + 1);
  assert.ok(waiting, `the entry waited after the 429: ${JSON.stringify(history)}`);
  assert.ok(waiting.nextAttemptAt - waiting.lastAttemptAt >= 2000,
    `next attempt scheduled ${waiting.nextAttemptAt - waiting.lastAttemptAt} ms after the 429 attempt`);
  const gap = sent.detail.entry.lastAttemptAt - waiting.lastAttemptAt;
  assert.ok(gap >= 2000, `the retry came ${gap} ms after the 429, expected >= 2000`);
  assert.equal(sent.detail.entry.attempts, a0 + 2);
  const stats = await server.stats();
  assert.equal(stats.receivedByKey[entry.idempotencyKey], 2);
  assert.equal(stats.appliedByKey[entry.idempotencyKey], 1);
});

test('5: 503 with Retry-After as an HTTP date is honoured too', async () => {
  const entry = await queueOne('PUT', '/api/concepts/retry-date', { v: 1 });
  // HTTP dates have whole seconds: 3 s from now is 2 to 3 s away.
  const retryAfter = new Date(Date.now() + 3000).toUTCString();
  await server.fail({ count: 1, status: 503, retryAfter, path: '/api/concepts/retry-date' });
  await trackEntry(browser, entry.id);
  const upStart = await upAndFlush();
  const sent = await sentEvent(entry.id);
  const history = await entryHistory(browser, entry.id);
  const a0 = attemptsBefore(history, upStart, entry.attempts);
  const waiting = waitingAfter(history, a0 + 1);
  assert.ok(waiting, `the entry waited after the 503: ${JSON.stringify(history)}`);
  const gap = sent.detail.entry.lastAttemptAt - waiting.lastAttemptAt;
  assert.ok(gap >= 1500, `the retry came ${gap} ms after the 503 (Retry-After: ${retryAfter}), expected about 2-3 s`);
  assert.ok(gap <= 4000, `the retry came ${gap} ms after the 503 (Retry-After: ${retryAfter})`);
});

test('6: 400 fails the entry (dead letter, surfaced) and retry() sends it again', async () => {
  const entry = await queueOne('POST', '/api/concepts/bad', { name: 'bad' });
  const key = entry.idempotencyKey;
  await server.fail({ count: 1, status: 400, path: '/api/concepts/bad' });
  await server.up();
  await browser.run(() => window.outbox.flush());

  const failed = await waitFor(async () => {
    const e = (await entries(browser)).find((x) => x.id === entry.id);
    return e && e.state === 'failed' ? e : false;
  }, { what: 'the entry to fail' });
  assert.deepEqual(failed.failure, { reason: 'http_status', status: 400 });
  const event = await waitFor(async () => (await recordedEvents(browser, 'failed')).find((e) => e.detail.entry?.id === entry.id),
    { what: 'a failed event' });
  assert.equal(event.detail.reason, 'http_status');
  assert.equal(event.detail.status, 400);
  assert.equal((await browser.run(() => window.outbox.status())).counts.failed, 1);
  // A dead letter is not retried on its own.
  await staysTrue(async () => {
    const e = (await entries(browser)).find((x) => x.id === entry.id);
    const received = (await server.stats()).receivedByKey[key];
    return (e?.state === 'failed' && received === 1) || { state: e?.state, received };
  }, { ms: 1500, what: 'the failed entry to stay failed and unsent' });
  assert.equal((await server.stats()).applied, 0);

  // The server is fixed (the fail rule is used up): retry by hand.
  const retried = await browser.run((id) => window.outbox.retry(id), entry.id);
  assert.deepEqual(retried, { retried: [entry.id] });
  const sent = await sentEvent(entry.id);
  assert.equal(sent.detail.status, 201);
  const stats = await server.stats();
  assert.equal(stats.appliedByKey[key], 1, 'applied once, with the same key');
  assert.equal(stats.receivedByKey[key], 2);
  assert.equal((await entries(browser)).length, 0);
});

test('6: 401 pauses for auth; setAuth resumes with the header, which is never stored', async () => {
  // The page's own Authorization must not be stored either.
  const entry = await queueOne('POST', '/api/concepts/auth1', { name: 'a' }, { Authorization: 'Bearer p4ge' });
  const key = entry.idempotencyKey;
  const secrets = ['t0k3n', 'p4ge'];
  const onDisk = async () => {
    const found = [];
    for (const store of ['entries', 'bodies', 'meta']) {
      for (const record of await idbRecords(browser, store)) {
        for (const secret of secrets) {
          if (record.text.includes(secret) || String(record.key).includes(secret)) found.push(`${store}[${record.key}] has ${secret}`);
        }
      }
    }
    return found;
  };
  assert.ok((await idbRecords(browser, 'entries')).length >= 1, 'the entry is in IndexedDB');
  assert.deepEqual(await onDisk(), [], 'the page\'s Authorization header is not in IndexedDB');

  // First replay: 401. After fresh auth: one 503 (so the entry is saved again
  // after an attempt with the token), then success.
  await server.fail({ count: 1, status: 401, path: '/api/concepts/auth1' });
  await server.fail({ count: 1, status: 503, path: '/api/concepts/auth1' });
  await server.up();
  await browser.run(() => window.outbox.flush());
  const paused = await waitFor(async () => {
    const e = (await entries(browser)).find((x) => x.id === entry.id);
    return e && e.state === 'paused_auth' ? e : false;
  }, { what: 'the entry to pause for auth' });
  assert.equal(paused.state, 'paused_auth');
  const authEvent = await waitFor(async () => (await recordedEvents(browser, 'auth-required')).find((e) => e.detail.entry?.id === entry.id),
    { what: 'an auth-required event' });
  assert.equal(authEvent.detail.status, 401);
  assert.equal((await browser.run(() => window.outbox.status())).counts.paused_auth, 1);

  const resumed = await browser.run(() => window.outbox.setAuth(async () => ({ Authorization: 'Bearer t0k3n' })));
  assert.deepEqual(resumed, { resumed: 1 });
  // After the attempt with the token (503), the entry is written back: still no token on disk.
  await waitFor(async () => {
    const e = (await entries(browser)).find((x) => x.id === entry.id);
    return e && e.state === 'waiting_retry';
  }, { what: 'the entry to wait after the 503' });
  assert.deepEqual(await onDisk(), [], 'the fresh token is not in IndexedDB');

  const sent = await sentEvent(entry.id);
  assert.equal(sent.detail.status, 201);
  const stats = await server.stats();
  assert.equal(stats.appliedByKey[key], 1);
  assert.equal(stats.receivedByKey[key], 3);

  // What the server really received (the page's own try found it down): the
  // 401 replay without any Authorization, then two replays with the token.
  const sentByWorker = (await receivedRequests(server)).filter((r) => r.path === '/api/concepts/auth1' && r.method === 'POST');
  assert.equal(sentByWorker.length, 3, JSON.stringify(sentByWorker.map((r) => r.headers.authorization)));
  assert.equal(sentByWorker[0].headers.authorization, undefined, 'the stored entry carries no Authorization');
  assert.equal(sentByWorker[1].headers.authorization, 'Bearer t0k3n');
  assert.equal(sentByWorker[2].headers.authorization, 'Bearer t0k3n');
  for (const r of sentByWorker) assert.equal(r.headers['idempotency-key'], key);
  assert.deepEqual(await onDisk(), []);
});
