// Resume, each trigger separately: 20 mutations queued while the server is
// unreachable are drained by one trigger alone — Background Sync, the
// window's `online` event, `outbox.flush()`, a worker restart, the backoff
// timer, the page becoming visible — each exactly once and in order per
// entity. Engines without Background Sync (Firefox, WebKit) skip (a); the
// others run in every engine that has the control they need.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, openBrowser, testConfig, status, entries, waitFor, waitApplied,
  needs, sendAll, wakeWorker, staysTrue, waitQueueEmpty,
  exactlyOnceProblems, appliedByPath, expectedByPath, queueJson,
} from './harness.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server.stop(); });

const ONLY = {
  sync: { sync: true, flush: false, start: false, timer: false },
  flush: { sync: false, flush: true, start: false, timer: false },
  start: { sync: false, flush: false, start: true, timer: false },
  timer: { sync: false, flush: false, start: false, timer: true },
};

/**
 * 20 mutations over /api/concepts/1..5, four per entity, in an order the
 * server accepts only when kept per entity: POST (create), PUT, DELETE, POST
 * (create again). A POST overtaking the DELETE gets 409, a DELETE before the
 * create gets 404: neither is applied. Every body carries a global `seq`.
 */
function twentyMutations() {
  const methods = ['POST', 'PUT', 'DELETE', 'POST'];
  const list = [];
  let seq = 0;
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < 5; i++) {
      const id = ((i + round) % 5) + 1; // a different entity order each round
      list.push({ method: methods[round], path: `/api/concepts/${id}`, body: { seq: seq++, name: `c${id}-r${round}` } });
    }
  }
  return list;
}

function config(triggers) {
  return testConfig({ triggers, retry: { baseDelayMs: 100, maxDelayMs: 400 } });
}

/** Sends the mutations while the network fails; all must be queued. Gives their idempotency keys. */
async function queueAll(browser, mutations) {
  const results = await sendAll(browser, mutations);
  results.forEach((r, i) => assert.equal(r.status, 202, `mutation ${i} was not queued: ${r.status} ${r.body}`));
  const ids = results.map((r) => r.entry);
  assert.equal(new Set(ids).size, mutations.length, 'every queued mutation has its own entry id');
  const list = await entries(browser);
  assert.deepEqual(list.map((e) => e.id), ids, 'the entries are listed in enqueue order');
  for (const e of list) {
    assert.ok(['pending', 'waiting_retry', 'in_flight'].includes(e.state), `entry ${e.id} is ${e.state}`);
  }
  return list.map((e) => e.idempotencyKey);
}

/** Nothing reaches the server on its own for a short while, and the queue still holds everything. */
async function nothingHappensAlone(browser, n) {
  await staysTrue(async () => {
    const stats = await server.stats();
    return stats.applied === 0 || { applied: stats.applied, log: stats.log.slice(0, 3) };
  }, { ms: 600, what: 'no mutation being applied without the trigger' });
  const s = await status(browser);
  assert.equal(s.total, n, `the outbox still holds all ${n} entries: ${JSON.stringify(s.counts)}`);
}

/**
 * Queues the twenty mutations with the server down, brings it back and
 * checks nothing drains on its own; gives the mutations and their keys.
 */
async function queuedWhileDown(browser) {
  await server.down();
  const mutations = twentyMutations();
  const keys = await queueAll(browser, mutations);
  await server.up();
  await nothingHappensAlone(browser, mutations.length);
  return { mutations, keys };
}

/** All mutations were applied exactly once, in order per entity, and the outbox is empty. */
async function assertDrained(browser, mutations, keys, timeoutMs = 20000) {
  await waitApplied(server, mutations.length, timeoutMs);
  const s = await waitQueueEmpty(browser, timeoutMs);
  assert.equal(s.total, 0);
  const stats = await server.stats();
  assert.deepEqual(exactlyOnceProblems(stats, keys, { received: true }), [], 'each mutation applied and received exactly once');
  assert.deepEqual(appliedByPath(stats), expectedByPath(mutations), 'applied in order per entity');
}

test('resume (a): the sync event alone drains the queue', { timeout: 60000, skip: needs('sync') }, async () => {
  await server.call('/control/reset', {});
  const browser = await openBrowser(server, config(ONLY.sync));
  try {
    await server.down();
    const mutations = twentyMutations();
    const keys = await queueAll(browser, mutations);
    // Queuing registered the sync tag; the browser fires `sync` by itself
    // (it thinks it is online) and that drain fails against the down server.
    // Wait for it to have happened and to be over: the head entries were
    // tried again (attempts >= 2) and the attempts stopped changing.
    let previous = null;
    let stable = 0;
    await waitFor(async () => {
      const [s, list] = await Promise.all([status(browser), entries(browser)]);
      const heads = new Map();
      for (const e of list) if (!heads.has(e.entity)) heads.set(e.entity, e);
      const retried = [...heads.values()].every((e) => e.attempts >= 2);
      const sum = list.reduce((n, e) => n + e.attempts, 0);
      stable = !s.draining && retried && sum === previous ? stable + 1 : 0;
      previous = sum;
      return stable >= 4 ? true : false;
    }, { timeoutMs: 15000, intervalMs: 100, what: 'the automatic sync to fail against the down server and end' });

    await server.up();
    await nothingHappensAlone(browser, mutations.length);
    await browser.dispatchSync();
    await assertDrained(browser, mutations, keys);
  } finally {
    await server.up();
    await browser.close();
  }
});

test('resume (b): the window online event alone drains the queue', { timeout: 60000, skip: needs('offline') }, async () => {
  await server.call('/control/reset', {});
  const browser = await openBrowser(server, config(ONLY.flush));
  try {
    await browser.offline(true);
    const mutations = twentyMutations();
    const keys = await queueAll(browser, mutations);
    assert.equal((await server.stats()).applied, 0);
    assert.equal(await browser.run(() => navigator.onLine), false);
    // The shim forwards the window's `online` event as `flush`.
    await browser.offline(false);
    await assertDrained(browser, mutations, keys);
  } finally {
    await browser.offline(false);
    await browser.close();
  }
});

test('resume (c): outbox.flush() alone drains the queue', { timeout: 60000 }, async () => {
  await server.call('/control/reset', {});
  const browser = await openBrowser(server, config(ONLY.flush));
  try {
    const { mutations, keys } = await queuedWhileDown(browser);
    // flush resolves with the status after the drain it started ends.
    const after = await browser.run(() => window.outbox.flush());
    assert.equal(after.total, 0, `flush resolved with entries left: ${JSON.stringify(after.counts)}`);
    const stats = await server.stats();
    assert.equal(stats.applied, mutations.length, 'everything was applied when flush resolved');
    await assertDrained(browser, mutations, keys);
  } finally {
    await server.up();
    await browser.close();
  }
});

test('resume (d): a worker restart alone drains the queue', { timeout: 60000, skip: needs('stopWorker') }, async () => {
  await server.call('/control/reset', {});
  const browser = await openBrowser(server, config(ONLY.start));
  try {
    const { mutations, keys } = await queuedWhileDown(browser);
    await browser.stopWorker();
    // Any event starts the worker again; its script load starts the drain.
    await wakeWorker(browser);
    await assertDrained(browser, mutations, keys);
  } finally {
    await server.up();
    await browser.close();
  }
});

test('resume (e): the backoff timer alone drains the queue', { timeout: 60000 }, async () => {
  await server.call('/control/reset', {});
  const browser = await openBrowser(server, config(ONLY.timer));
  try {
    await server.down();
    const mutations = twentyMutations();
    const keys = await queueAll(browser, mutations);
    await server.up();
    // No page command, no event: the timer armed on enqueue retries, backs
    // off (at most maxDelayMs = 400) while the server is down, and sends once
    // it is back.
    await assertDrained(browser, mutations, keys, 10000);
  } finally {
    await server.up();
    await browser.close();
  }
});

test('resume (f): the page becoming visible alone drains the queue', { timeout: 60000 }, async () => {
  await server.call('/control/reset', {});
  const browser = await openBrowser(server, config(ONLY.flush));
  try {
    const { mutations, keys } = await queuedWhileDown(browser);
    // No driver here can hide and show a page, so the page is told it
    // changed visibility; it is visible, and the shim flushes.
    await browser.run(() => document.dispatchEvent(new Event('visibilitychange')));
    await assertDrained(browser, mutations, keys);
  } finally {
    await server.up();
    await browser.close();
  }
});

test('a flush that joins a drain still waiting for the drain lock sends what waited for the network', { timeout: 60000 }, async () => {
  await server.reset();
  // Only the flush and page commands start drains, and a backoff far longer
  // than the test: only a trigger saying the network may be back sends it.
  const config = testConfig({ triggers: ONLY.flush, retry: { baseDelayMs: 60000, maxDelayMs: 60000 } });
  const browser = await openBrowser(server, config);
  try {
    await server.down();
    const waiting = await queueJson(browser, 'PUT', '/api/concepts/waiting', { name: 'waiting' });
    const other = await queueJson(browser, 'PUT', '/api/concepts/other', { name: 'other' });
    assert.deepEqual([waiting.status, other.status], [202, 202]);
    await server.up();

    // The page takes the origin's drain lock, so the worker's next drain waits for it.
    await browser.run(() => new Promise((taken) => {
      const held = new Promise((release) => { window.releaseDrainLock = release; });
      navigator.locks.request('sw-outbox-drain', () => { taken(); return held; });
    }));
    // Cancelling starts a drain that does not say the network is back...
    await browser.run((id) => window.outbox.cancel(id), other.id);
    // ...and the flush joins it while it waits.
    await browser.run(() => { window.flushed = window.outbox.flush(); });
    await staysTrue(async () => (await server.stats()).applied === 0, { what: 'nothing going out while the lock is held' });
    await browser.run(() => window.releaseDrainLock());
    await browser.run(() => window.flushed);

    const stats = await waitApplied(server, 1, 10000, 'the entry the flush sent');
    assert.deepEqual(stats.log.map((e) => e.path), ['/api/concepts/waiting']);
    // What is left is the cancelled entry, kept for the page to see.
    await waitFor(async () => {
      const left = await entries(browser);
      return left.length === 1 && left[0].id === other.id && left[0].state === 'cancelled';
    }, { what: 'only the cancelled entry left' });
  } finally {
    await browser.close();
  }
});
