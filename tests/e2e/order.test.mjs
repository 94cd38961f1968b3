// Scenarios 7 and 8: replay order (priorities, same entity, explicit
// dependencies, blocked dependents) and exactly-once delivery across a
// connection dropped after the server applied the mutation.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, openBrowser, entries, testConfig, waitFor, staysTrue,
  queueJson, recordedEvents, appliedPaths,
} from './harness.mjs';

// Only the page's flush drains (a backoff timer could send one entry early,
// before the others are due, and make the order a race).
const triggers = { sync: false, start: false, timer: false, flush: true };
const routes = [
  { match: '/api/concepts/', kind: 'concept' },
  { match: '/api/connections/', kind: 'connection', priority: 'low' },
  { match: '/api/checkpoints/', kind: 'checkpoint', priority: 'critical' },
];
const serialConfig = testConfig({ routes, triggers, limits: { concurrency: 1 } });
const parallelConfig = testConfig({ routes, triggers, limits: { concurrency: 6 } });
const DELAY = 150;

let server;
let serial;
let parallel;
before(async () => {
  server = await startServer();
  serial = await openBrowser(server, serialConfig);
  parallel = await openBrowser(server, parallelConfig);
});
after(async () => {
  await serial?.close();
  await parallel?.close();
  await server?.stop();
});
beforeEach(async () => {
  await server.call('/control/reset', {});
  await serial.run(() => window.outbox.clear());
  await parallel.run(() => window.outbox.clear());
});

/** Queues JSON mutations with the server down; gives their entries. */
async function queueAll(browser, mutations) {
  await server.down();
  const ids = [];
  for (const { method, path, body, headers } of mutations) {
    const queued = await queueJson(browser, method, path, body, headers);
    assert.equal(queued.status, 202, `${method} ${path}: ${queued.body}`);
    ids.push(queued.id);
  }
  const list = await entries(browser);
  return ids.map((id) => list.find((e) => e.id === id));
}

function entryState(browser, id) {
  return entries(browser).then((list) => list.find((e) => e.id === id)?.state ?? 'gone');
}

test('7: a critical entry goes before normal ones queued earlier; low goes last (concurrency 1)', async () => {
  await queueAll(serial, [
    { method: 'PUT', path: '/api/connections/low1', body: { n: 'low1' } },
    { method: 'PUT', path: '/api/concepts/n1', body: { n: 'n1' } },
    { method: 'PUT', path: '/api/concepts/n2', body: { n: 'n2' } },
    { method: 'PUT', path: '/api/checkpoints/c1', body: { n: 'c1' } },
    { method: 'PUT', path: '/api/concepts/n3', body: { n: 'n3' } },
  ]);
  await server.up();
  await serial.run(() => window.outbox.flush());
  const stats = await waitFor(async () => {
    const s = await server.stats();
    return s.applied >= 5 ? s : false;
  }, { what: '5 applied' });
  assert.deepEqual(appliedPaths(stats), [
    'PUT /api/checkpoints/c1',
    'PUT /api/concepts/n1',
    'PUT /api/concepts/n2',
    'PUT /api/concepts/n3',
    'PUT /api/connections/low1',
  ]);
});

test('7: mutations of one entity are applied in queue order, one at a time (concurrency 6)', async () => {
  const mutations = [];
  for (let n = 1; n <= 4; n++) {
    mutations.push({ method: 'PUT', path: '/api/concepts/same', body: { n } });
    mutations.push({ method: 'PUT', path: `/api/concepts/other${n}`, body: { n } });
  }
  const queued = await queueAll(parallel, mutations);
  assert.equal(new Set(queued.map((e) => e.id)).size, mutations.length);
  await server.up();
  // With the server back but the queue not yet drained, a new mutation of
  // the same entity must queue behind the others, not overtake them.
  const patch = { method: 'PATCH', path: '/api/concepts/same', body: { n: 5, patched: true } };
  const behind = await queueJson(parallel, patch.method, patch.path, patch.body);
  assert.equal(behind.status, 202, `queued behind the same entity: ${behind.body}`);
  mutations.push(patch);
  assert.equal((await server.stats()).requests, 0, 'nothing went to the server before the flush');
  await server.delay(DELAY);
  await parallel.run(() => window.outbox.flush());
  const stats = await waitFor(async () => {
    const s = await server.stats();
    return s.applied >= mutations.length ? s : false;
  }, { what: `${mutations.length} applied` });
  const same = stats.log.filter((e) => e.path === '/api/concepts/same');
  assert.deepEqual(same.map((e) => `${e.method} ${e.body.n}`), ['PUT 1', 'PUT 2', 'PUT 3', 'PUT 4', 'PATCH 5']);
  // Each waited for the answer to the one before: never two in flight at once.
  for (let i = 1; i < same.length; i++) {
    const gap = same[i].at - same[i - 1].at;
    assert.ok(gap >= DELAY - 5, `same-entity mutation ${i + 1} applied ${gap} ms after the one before (server delay ${DELAY} ms)`);
  }
  const entity = (await server.entities()).concepts.find((c) => c.id === 'same');
  assert.equal(entity.n, 5);
  assert.equal(entity.patched, true);
  assert.equal(entity.version, 5);
  // Other entities did go in parallel: they did not wait one delay each.
  const others = stats.log.filter((e) => e.path.startsWith('/api/concepts/other'));
  const spread = Math.max(...others.map((e) => e.at)) - Math.min(...others.map((e) => e.at));
  assert.ok(spread < DELAY * 3, `independent entities replayed concurrently (spread ${spread} ms)`);
});

test('7: Outbox-Depends-On holds an entry until the one it names is done', async () => {
  // Serial: the dependent is critical, so only the dependency keeps it back.
  const [a] = await queueAll(serial, [{ method: 'PUT', path: '/api/concepts/dep-a', body: { n: 'a' } }]);
  const [b] = await queueAll(serial, [
    { method: 'PUT', path: '/api/checkpoints/dep-b', body: { n: 'b' }, headers: { 'Outbox-Depends-On': String(a.id) } },
  ]);
  assert.deepEqual(b.dependsOn, [a.id]);
  await server.up();
  await serial.run(() => window.outbox.flush());
  let stats = await waitFor(async () => {
    const s = await server.stats();
    return s.applied >= 2 ? s : false;
  }, { what: '2 applied' });
  assert.deepEqual(appliedPaths(stats), ['PUT /api/concepts/dep-a', 'PUT /api/checkpoints/dep-b']);

  // Parallel, with a slow server: the dependent is sent only after the answer.
  await server.call('/control/reset', {});
  const [c] = await queueAll(parallel, [{ method: 'PUT', path: '/api/concepts/dep-c', body: { n: 'c' } }]);
  await server.up();
  // The server is back, but the dependency is still queued: the dependent
  // must queue behind it rather than go out at once.
  const dependent = await queueJson(parallel, 'PUT', '/api/connections/dep-d', { n: 'd' }, { 'Outbox-Depends-On': `${c.id}` });
  assert.equal(dependent.status, 202, `queued behind its dependency: ${dependent.body}`);
  const d = (await entries(parallel)).find((e) => e.id === dependent.id);
  assert.deepEqual(d.dependsOn, [c.id]);
  assert.equal((await server.stats()).requests, 0, 'nothing went to the server before the flush');
  await server.delay(DELAY);
  await parallel.run(() => window.outbox.flush());
  stats = await waitFor(async () => {
    const s = await server.stats();
    return s.applied >= 2 ? s : false;
  }, { what: '2 applied' });
  assert.deepEqual(appliedPaths(stats), ['PUT /api/concepts/dep-c', 'PUT /api/connections/dep-d']);
  const gap = stats.log[1].at - stats.log[0].at;
  assert.ok(gap >= DELAY - 5, `the dependent was applied ${gap} ms after its dependency (server delay ${DELAY} ms)`);
});

test('7: a dependent of a failed entry is blocked and never sent; retrying the dependency releases it', async () => {
  const [a] = await queueAll(serial, [{ method: 'PUT', path: '/api/concepts/blk-a', body: { n: 'a' } }]);
  const [b] = await queueAll(serial, [
    { method: 'PUT', path: '/api/checkpoints/blk-b', body: { n: 'b' }, headers: { 'Outbox-Depends-On': String(a.id) } },
  ]);
  await server.fail({ count: 1, status: 400, path: '/api/concepts/blk-a' });
  await server.up();
  await serial.run(() => window.outbox.flush());
  await waitFor(async () => (await entryState(serial, a.id)) === 'failed', { what: 'the dependency to fail' });
  await waitFor(async () => (await entryState(serial, b.id)) === 'blocked', { what: 'the dependent to be blocked' });
  const s = await serial.run(() => window.outbox.status());
  assert.equal(s.counts.failed, 1);
  assert.equal(s.counts.blocked, 1);
  // Blocked means never sent, even when more drains run.
  await serial.run(() => window.outbox.flush());
  await staysTrue(async () => {
    const state = await entryState(serial, b.id);
    const received = (await server.stats()).receivedByKey[b.idempotencyKey];
    return (state === 'blocked' && received === undefined) || { state, received };
  }, { ms: 1000, what: 'the dependent to stay blocked and unsent' });
  assert.equal((await server.stats()).applied, 0);

  await serial.run((id) => window.outbox.retry(id), a.id);
  const stats = await waitFor(async () => {
    const st = await server.stats();
    return st.applied >= 2 ? st : false;
  }, { what: 'both applied after the retry' });
  assert.deepEqual(appliedPaths(stats), ['PUT /api/concepts/blk-a', 'PUT /api/checkpoints/blk-b']);
  assert.equal(stats.receivedByKey[b.idempotencyKey], 1);
  await waitFor(async () => (await entries(serial)).length === 0, { what: 'an empty queue' });
});

test('7: a dependent of a cancelled entry is blocked and never sent', async () => {
  const [a] = await queueAll(serial, [{ method: 'PUT', path: '/api/concepts/cnl-a', body: { n: 'a' } }]);
  const [b] = await queueAll(serial, [
    { method: 'PUT', path: '/api/concepts/cnl-b', body: { n: 'b' }, headers: { 'Outbox-Depends-On': String(a.id) } },
  ]);
  await serial.run((id) => window.outbox.cancel(id), a.id);
  await waitFor(async () => (await entryState(serial, b.id)) === 'blocked', { what: 'the dependent to be blocked' });
  await server.up();
  await serial.run(() => window.outbox.flush());
  assert.equal(await entryState(serial, b.id), 'blocked');
  const stats = await server.stats();
  assert.equal(stats.requests, 0, 'neither was sent');
});

test('8: a mutation applied before the connection dropped is replayed with the same key and applied once', async () => {
  const [entry] = await queueAll(serial, [{ method: 'POST', path: '/api/concepts/once', body: { name: 'once' } }]);
  const key = entry.idempotencyKey;
  await server.drop({ count: 1, path: '/api/concepts/once' });
  await server.up();
  // The first replay reaches the server and is applied; its answer is lost,
  // which ends that drain like a network failure. Flush again to replay.
  await serial.run(() => window.outbox.flush());
  const afterDrop = (await entries(serial)).find((e) => e.id === entry.id);
  assert.ok(afterDrop && afterDrop.state === 'pending', `kept after the dropped answer: ${JSON.stringify(afterDrop)}`);
  assert.equal((await server.stats()).appliedByKey[key], 1, 'the dropped attempt was applied');
  const sent = await waitFor(async () => {
    await serial.run(() => window.outbox.flush());
    return (await recordedEvents(serial, 'sent')).find((e) => e.detail.entry.id === entry.id);
  }, { what: 'the entry to be sent', timeoutMs: 15000, intervalMs: 200 });
  assert.equal(sent.detail.status, 201, 'the replay got the stored response');
  assert.equal(sent.detail.entry.idempotencyKey, key);
  const stats = await server.stats();
  assert.equal(stats.receivedByKey[key], 2, 'the server saw the key twice (the dropped attempt and the replay)');
  assert.equal(stats.appliedByKey[key], 1, 'and applied it once');
  assert.equal(stats.applied, 1);
  assert.equal(stats.faults.drop.length, 0, 'the drop was used');
  assert.equal(await entryState(serial, entry.id), 'gone', 'the entry is done and removed');
  const concept = (await server.entities()).concepts.find((c) => c.id === 'once');
  assert.equal(concept.version, 1);
});
