// Durability scenarios 4, 9, 11 and 13: the queue survives a browser restart
// and a worker stopped mid-drain, two tabs never cause a double send, and a
// worker started with no network still queues.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import {
  startServer, openBrowser, testConfig, status, entries, waitFor, waitApplied,
  needs, sendAll, send, wakeWorker, waitQueueEmpty, openTab,
  exactlyOnceProblems, appliedByPath, expectedByPath,
} from './harness.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server.stop(); });

const FAST_RETRY = { baseDelayMs: 100, maxDelayMs: 500 };

/**
 * `n` mutations over /api/concepts/<first>..<first+entities-1>: each entity
 * is created with PUT, then alternately PATCHed and PUT. A PATCH before the
 * create gets 404 (not applied). Every body carries a global `seq`.
 */
function mutations(n, { entities = 5, first = 1, seqFrom = 0 } = {}) {
  const list = [];
  const count = new Map();
  for (let i = 0; i < n; i++) {
    const id = first + (i % entities);
    const k = count.get(id) || 0;
    count.set(id, k + 1);
    const method = k === 0 ? 'PUT' : k % 2 === 1 ? 'PATCH' : 'PUT';
    list.push({ method, path: `/api/concepts/${id}`, body: { seq: seqFrom + i, name: `c${id}-${k}` } });
  }
  return list;
}

/** Sends the mutations while the network fails; all must be queued. Gives the entries' idempotency keys. */
async function queueAll(browser, list) {
  const results = await sendAll(browser, list);
  results.forEach((r, i) => assert.equal(r.status, 202, `mutation ${i} was not queued: ${r.status} ${r.body}`));
  const ids = new Set(results.map((r) => r.entry));
  assert.equal(ids.size, list.length, 'every queued mutation has its own entry id');
  const listed = (await entries(browser)).filter((e) => ids.has(e.id));
  assert.equal(listed.length, list.length, 'every queued mutation is listed');
  return results.map((r) => listed.find((e) => e.id === r.entry).idempotencyKey);
}

async function assertAppliedOnce(list, keys, { received = false } = {}) {
  const stats = await server.stats();
  assert.deepEqual(exactlyOnceProblems(stats, keys, { received }), [], 'each mutation applied exactly once');
  assert.deepEqual(appliedByPath(stats), expectedByPath(list), 'applied in order per entity');
  return stats;
}

test('durability 4: the queue persists across browser sessions', { timeout: 60000 }, async () => {
  await server.call('/control/reset', {});
  const config = testConfig({ retry: FAST_RETRY });
  const first = await openBrowser(server, config);
  let second = null;
  let firstClosed = false;
  try {
    await server.down();
    const list = mutations(20);
    const keys = await queueAll(first, list);
    const s = await status(first);
    assert.equal(s.total, 20);
    await first.close({ keepProfile: true });
    firstClosed = true;

    await server.up();
    second = await openBrowser(server, config, { profile: first.profile });
    await waitApplied(server, 20);
    await waitQueueEmpty(second);
    await assertAppliedOnce(list, keys, { received: true });
  } finally {
    await server.up();
    if (second) await second.close();
    else if (!firstClosed) await first.close();
    else rmSync(first.profile, { recursive: true, force: true });
  }
});

test('durability 9: a worker stopped in the middle of a drain of 200 entries loses and repeats nothing', { timeout: 90000, skip: needs('stopWorker') }, async () => {
  await server.call('/control/reset', {});
  const config = testConfig({ retry: FAST_RETRY });
  const browser = await openBrowser(server, config);
  try {
    await server.down();
    const list = mutations(200, { entities: 10 });
    const keys = await queueAll(browser, list);
    assert.equal((await status(browser)).total, 200);

    await server.delay(30);
    await server.up();
    // Start the drain now (the timer would too); its reply is not awaited.
    await browser.run(() => { window.outbox.flush().catch(() => {}); });
    const atStop = await waitFor(async () => {
      const stats = await server.stats();
      return stats.applied >= 20 ? stats : false;
    }, { timeoutMs: 20000, intervalMs: 20, what: 'the drain to be under way' });
    await browser.stopWorker();
    const stopped = await server.stats();
    assert.ok(stopped.applied < 200, `the worker must be stopped mid-drain (applied ${stopped.applied} of 200 when stopped; ${atStop.applied} before)`);

    // The next event starts the worker again; it resumes the queue.
    await wakeWorker(browser);
    await waitApplied(server, 200, 40000);
    const s = await waitQueueEmpty(browser, 20000);
    assert.equal(s.total, 0);
    const stats = await assertAppliedOnce(list, keys);
    assert.equal(stats.applied, 200);
    assert.ok(Object.values(stats.appliedByKey).every((n) => n === 1), 'appliedByKey all 1');
  } finally {
    await server.delay(0);
    await server.up();
    await browser.close();
  }
});

test('durability 11: two tabs queue and flush at once without a duplicate', { timeout: 60000 }, async () => {
  await server.call('/control/reset', {});
  const config = testConfig({ retry: FAST_RETRY, triggers: { sync: false, flush: true, start: false, timer: false } });
  const browser = await openBrowser(server, config);
  const tab = await openTab(browser);
  try {
    await server.down();
    // Both tabs write the same entities, taking turns: 12 from each.
    const all = mutations(24, { entities: 6 });
    const keys = [];
    for (let i = 0; i < all.length; i++) {
      const from = i % 2 === 0 ? browser : tab;
      keys.push(...(await queueAll(from, [all[i]])));
    }
    assert.equal((await status(browser)).total, 24);
    assert.equal((await status(tab)).total, 24, 'both tabs see one queue');

    await server.delay(20);
    await server.up();
    const [a, b] = await Promise.all([
      browser.run(() => window.outbox.flush()),
      tab.run(() => window.outbox.flush()),
    ]);
    // Each flush ends after the drain it started or joined.
    assert.deepEqual([a.total, b.total], [0, 0], `a flush ended with entries left: ${JSON.stringify([a.counts, b.counts])}`);
    await waitQueueEmpty(browser);
    await assertAppliedOnce(all, keys, { received: true });
  } finally {
    await server.delay(0);
    await server.up();
    await browser.close();
  }
});

test('durability 13: a worker started offline (server down, browser offline) still queues', { timeout: 60000, skip: needs('offline', 'stopWorker') }, async () => {
  await server.call('/control/reset', {});
  const browser = await openBrowser(server, testConfig({ retry: FAST_RETRY }));
  try {
    await server.down();
    await browser.offline(true);
    await browser.stopWorker();

    const response = await send(browser, 'POST', '/api/concepts/77', { seq: 0, name: 'offline' });
    assert.equal(response.status, 202, `answered ${response.status} ${response.body}`);
    const body = JSON.parse(response.body);
    assert.equal(body.queued, true);
    assert.equal(String(body.id), response.headers['outbox-entry']);
    const list = await entries(browser);
    assert.equal(list.length, 1);
    assert.equal(list[0].id, body.id);
    assert.equal(list[0].method, 'POST');

    // Back online, it goes out once.
    await server.up();
    await browser.offline(false);
    await waitApplied(server, 1);
    await waitQueueEmpty(browser);
    await assertAppliedOnce([{ method: 'POST', path: '/api/concepts/77', body: { seq: 0 } }], [list[0].idempotencyKey], { received: true });
  } finally {
    await browser.offline(false);
    await server.up();
    await browser.close();
  }
});
