// Issue 4, scenarios 1–6: conflicts detected over HTTP (If-Match with the
// base ETag, 409/412 with the current entity) and resolved by the route's
// strategy, or by the page. "Another client" edits through /control/edit.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, openBrowser, send, pageFetch, entries, testConfig, waitFor,
  queueJson, recordedEvents, receivedRequests, postRaw,
} from './harness.mjs';

// Every route conditional, with the per-kind default strategies of the
// concept-map app; three concept prefixes for custom and manual resolution
// (the first route that matches wins).
const config = testConfig({
  routes: [
    { match: '/api/concepts/custom-', kind: 'concept', conditional: true, strategy: 'custom', resolve: 'prefer-local-name' },
    { match: '/api/concepts/throws-', kind: 'concept', conditional: true, strategy: 'custom', resolve: 'throws' },
    { match: '/api/concepts/manual-', kind: 'concept', conditional: true, strategy: 'manual' },
    { match: '/api/concepts/', kind: 'concept', conditional: true, strategy: 'last-write-wins' },
    { match: '/api/connections/site-', kind: 'connection', conditional: true, strategy: 'merge', recordGets: false },
    { match: '/api/connections/', kind: 'connection', conditional: true, strategy: 'merge' },
    { match: '/api/checkpoints/', kind: 'checkpoint', conditional: true, strategy: 'first-write-wins', priority: 'critical' },
  ],
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

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
  await browser.run(async () => {
    await window.outbox.clear();
    window.outboxEvents.length = 0;
  });
});

/**
 * Creates `/api/{kind}/{id}` online, then GETs it from the page so the
 * worker records it as the base version; gives the entity as read.
 */
async function createAndRead(b, kind, id, body) {
  const created = await send(b, 'POST', `/api/${kind}/${id}`, body);
  assert.equal(created.status, 201, `create ${kind}/${id}: ${created.body}`);
  const read = await pageFetch(b, `/api/${kind}/${id}`);
  assert.equal(read.status, 200);
  assert.equal(read.headers.etag, '"1"');
  // The worker stores the base after answering the GET.
  await sleep(250);
  return JSON.parse(read.body);
}

/** A change by "another client"; gives the entity it produced. */
function remoteEdit(kind, id, body, mode = 'patch') {
  return server.call('/control/edit', { kind, id, body, mode });
}

/** Queues a JSON mutation with the app port down; gives the entry id and key. */
async function queueOffline(b, method, path, body) {
  await server.down();
  const queued = await queueJson(b, method, path, body);
  assert.equal(queued.status, 202, `queued: ${queued.body}`);
  const entry = (await entries(b)).find((e) => e.id === queued.id);
  assert.ok(entry, 'the entry is listed');
  return entry;
}

/** The entry with `id`, or null once it left the queue (done). */
async function entryOf(b, id) {
  return (await entries(b)).find((e) => e.id === id) || null;
}

/** Flushes until `check(entry or null)` holds; gives the entry (or null). */
async function flushUntil(b, id, check, what) {
  let last;
  await waitFor(async () => {
    await b.run(() => window.outbox.flush());
    last = await entryOf(b, id);
    return check(last);
  }, { what: `${what}: entry ${id}`, intervalMs: 150, timeoutMs: 10000 });
  return last;
}

async function entity(kind, id) {
  return (await server.entities())[kind].find((e) => e.id === id);
}

/** Mutations the server applied to `path`: `[{method, key, body}]`. */
async function appliedTo(path) {
  return (await server.stats()).log.filter((l) => l.path === path);
}

/** Events named `name` for entry `id`. */
async function eventsFor(b, name, id) {
  return (await recordedEvents(b, name)).filter((e) => e.detail.entry && e.detail.entry.id === id);
}

/** The mutations the server received for `path` with Idempotency-Key `key`. */
async function workerSends(path, key) {
  const matching = (await receivedRequests(server)).filter((r) => r.path === path && r.method !== 'GET');
  return matching.filter((r) => key === undefined || r.headers['idempotency-key'] === key);
}

test('1: concept, last-write-wins: an earlier remote edit loses to the offline edit, sent with the fresh ETag', async () => {
  const path = '/api/concepts/lww-1';
  const got = await createAndRead(browser, 'concepts', 'lww-1', { name: 'original' });
  const remote = await remoteEdit('concepts', 'lww-1', { name: 'remote' });
  assert.equal(remote.version, 2);
  await sleep(30);
  const entry = await queueOffline(browser, 'PUT', path, { ...got, name: 'local' });
  assert.ok(entry.createdAt > remote.updatedAt, 'the local edit is the later one');
  await server.up();
  await flushUntil(browser, entry.id, (e) => e === null, 'the winning local edit sent');

  const current = await entity('concepts', 'lww-1');
  assert.equal(current.name, 'local', 'the local write won');
  assert.equal(current.version, 3);
  const applied = await appliedTo(path);
  assert.deepEqual(applied.map((l) => l.method), ['POST', 'PUT'], 'the local write applied once');
  assert.notEqual(applied[1].key, entry.idempotencyKey, 'the re-send carries a new Idempotency-Key');
  assert.equal(applied[1].body.name, 'local');
  // The first attempt carried the base ETag and met 412; the re-send the remote ETag.
  const first = await workerSends(path, entry.idempotencyKey);
  assert.ok(first.length >= 1 && first.every((r) => r.headers['if-match'] === '"1"'),
    `attempts with the first key carry If-Match "1": ${JSON.stringify(first.map((r) => r.headers['if-match']))}`);
  assert.ok((await server.stats()).receivedByKey[entry.idempotencyKey] >= 1, 'the conditional attempt reached the server');
  const resent = await workerSends(path, applied[1].key);
  assert.deepEqual(resent.map((r) => r.headers['if-match']), ['"2"'], 'the re-send carries If-Match with the remote ETag');

  const resolved = await eventsFor(browser, 'resolved', entry.id);
  assert.equal(resolved.length, 1, 'one resolved event');
  assert.equal(resolved[0].detail.kept, 'local');
  assert.equal((await eventsFor(browser, 'conflict', entry.id)).length, 0, 'no manual conflict');
});

test('1: concept, last-write-wins: a later remote edit supersedes the offline edit; reported, nothing re-sent', async () => {
  const path = '/api/concepts/lww-2';
  const got = await createAndRead(browser, 'concepts', 'lww-2', { name: 'original' });
  const entry = await queueOffline(browser, 'PUT', path, { ...got, name: 'local' });
  await sleep(30);
  const remote = await remoteEdit('concepts', 'lww-2', { name: 'remote' });
  assert.ok(remote.updatedAt > entry.createdAt, 'the remote edit is the later one');
  await server.up();
  const final = await flushUntil(browser, entry.id, (e) => e && e.state === 'superseded', 'superseded');
  assert.equal(final.state, 'superseded', 'superseded and still inspectable');

  const current = await entity('concepts', 'lww-2');
  assert.equal(current.name, 'remote');
  assert.equal(current.version, 2);
  const stats = await server.stats();
  assert.deepEqual((await appliedTo(path)).map((l) => l.method), ['POST'], 'the local write never applied');
  const postKey = stats.log[0].key;
  assert.deepEqual(Object.keys(stats.receivedByKey).sort(), [postKey, entry.idempotencyKey].sort(),
    'nothing sent after the conflict: no other key reached the server');
  assert.equal(stats.receivedByKey[entry.idempotencyKey], 1, 'the conditional attempt reached the server once');

  const resolved = await eventsFor(browser, 'resolved', entry.id);
  assert.equal(resolved.length, 1, 'the supersession is reported');
  assert.equal(resolved[0].detail.kept, 'remote');
  assert.equal((await eventsFor(browser, 'conflict', entry.id)).length, 0, 'no manual conflict');
});

test('2: connection, merge: label changed offline, strength remotely: the server ends with both', async () => {
  const path = '/api/connections/m-1';
  const got = await createAndRead(browser, 'connections', 'm-1', { from: 'a', to: 'b', label: 'l0', strength: 1 });
  const entry = await queueOffline(browser, 'PUT', path, { ...got, label: 'local' });
  await remoteEdit('connections', 'm-1', { strength: 5 });
  await server.up();
  await flushUntil(browser, entry.id, (e) => e === null, 'the merged document sent');

  const current = await entity('connections', 'm-1');
  assert.equal(current.label, 'local', 'the local change is kept');
  assert.equal(current.strength, 5, 'the remote change is kept');
  assert.equal(current.from, 'a');
  assert.equal(current.version, 3);
  const applied = await appliedTo(path);
  assert.deepEqual(applied.map((l) => l.method), ['POST', 'PUT']);
  assert.equal(applied[1].body.label, 'local', 'the full merged document was sent');
  assert.equal(applied[1].body.strength, 5, 'the full merged document was sent');
  assert.notEqual(applied[1].key, entry.idempotencyKey, 'the re-send carries a new Idempotency-Key');
  const resent = await workerSends(path, applied[1].key);
  assert.deepEqual(resent.map((r) => r.headers['if-match']), ['"2"'], 'the merged document goes with the remote ETag');

  const resolved = await eventsFor(browser, 'resolved', entry.id);
  assert.equal(resolved.length, 1);
  assert.equal(resolved[0].detail.kept, 'merged');
  assert.equal((await eventsFor(browser, 'conflict', entry.id)).length, 0, 'no manual conflict');
});

test('Outbox.recordBase: the site serves the GETs; the base it hands over lets a partial PUT merge', async () => {
  const path = '/api/connections/site-1';
  await createAndRead(browser, 'connections', 'site-1', { from: 'a', to: 'b', label: 'l0', strength: 1 });
  const served = await postRaw(browser, { site: 'served-gets' });
  assert.ok(served.count >= 1, `the site's own listener served the GET: ${JSON.stringify(served)}`);
  // The page sends the fields it edits, without the server's id/version/updatedAt.
  const entry = await queueOffline(browser, 'PUT', path, { from: 'a', to: 'b', label: 'local', strength: 1 });
  await remoteEdit('connections', 'site-1', { strength: 5 });
  await server.up();
  await flushUntil(browser, entry.id, (e) => e === null, 'the merged document sent');

  const current = await entity('connections', 'site-1');
  assert.equal(current.label, 'local', 'the local change is kept');
  assert.equal(current.strength, 5, 'the remote change is kept');
  const firstSend = await workerSends(path, entry.idempotencyKey);
  // (Attempts while the app port was down count too.)
  assert.ok(firstSend.length >= 1, 'the queued write was sent');
  assert.deepEqual(new Set(firstSend.map((r) => r.headers['if-match'])), new Set(['"1"']), 'with the recorded base ETag');
  const resolved = await eventsFor(browser, 'resolved', entry.id);
  assert.equal(resolved.length, 1);
  assert.equal(resolved[0].detail.kept, 'merged');
});

test('2: connection, merge: label changed both ways is a manual conflict; the page resolves with a merged body', async () => {
  const path = '/api/connections/m-2';
  const got = await createAndRead(browser, 'connections', 'm-2', { from: 'a', to: 'b', label: 'l0', strength: 1 });
  const entry = await queueOffline(browser, 'PUT', path, { ...got, label: 'local' });
  await remoteEdit('connections', 'm-2', { label: 'remote' });
  await server.up();
  const waiting = await flushUntil(browser, entry.id, (e) => e && e.state === 'conflict', 'a manual conflict');
  assert.equal(waiting.state, 'conflict');

  const [conflict] = await waitFor(() => eventsFor(browser, 'conflict', entry.id).then((list) => list.length && list),
    { what: 'a conflict event' });
  assert.deepEqual(conflict.detail.pointers, ['/label']);
  assert.equal(conflict.detail.base.label, 'l0');
  assert.equal(conflict.detail.local.label, 'local');
  assert.equal(conflict.detail.remote.label, 'remote');
  assert.equal((await eventsFor(browser, 'resolved', entry.id)).length, 0, 'not resolved automatically');
  assert.equal((await entity('connections', 'm-2')).label, 'remote', 'nothing sent while in conflict');
  assert.deepEqual((await appliedTo(path)).map((l) => l.method), ['POST']);

  const body = { ...conflict.detail.remote, label: 'local and remote' };
  const answer = await browser.run(({ id, body }) => window.outbox.resolve(id, { use: 'merged', body }), { id: entry.id, body });
  assert.equal(answer.kept, 'merged');
  await flushUntil(browser, entry.id, (e) => e === null, 'the page-merged document sent');

  const current = await entity('connections', 'm-2');
  assert.equal(current.label, 'local and remote');
  assert.equal(current.version, 3);
  const applied = await appliedTo(path);
  assert.deepEqual(applied.map((l) => l.method), ['POST', 'PUT']);
  assert.equal(applied[1].body.label, 'local and remote');
  assert.notEqual(applied[1].key, entry.idempotencyKey, 'the re-send carries a new Idempotency-Key');
});

test('3: checkpoint, first-write-wins: the earlier remote checkpoint stands, the local one is superseded', async () => {
  const path = '/api/checkpoints/c-1';
  const got = await createAndRead(browser, 'checkpoints', 'c-1', { map: 'v0' });
  // The remote write comes first (last-write-wins would keep the local one).
  await remoteEdit('checkpoints', 'c-1', { map: 'remote' });
  await sleep(30);
  const entry = await queueOffline(browser, 'PUT', path, { ...got, map: 'local' });
  await server.up();
  const final = await flushUntil(browser, entry.id, (e) => e && e.state === 'superseded', 'superseded');
  assert.equal(final.state, 'superseded');

  const current = await entity('checkpoints', 'c-1');
  assert.equal(current.map, 'remote', 'the remote checkpoint stands');
  assert.equal(current.version, 2);
  const stats = await server.stats();
  assert.deepEqual((await appliedTo(path)).map((l) => l.method), ['POST']);
  assert.deepEqual(Object.keys(stats.receivedByKey).sort(), [stats.log[0].key, entry.idempotencyKey].sort(),
    'nothing sent after the conflict');
  const resolved = await eventsFor(browser, 'resolved', entry.id);
  assert.equal(resolved.length, 1, 'the supersession is reported');
  assert.equal(resolved[0].detail.kept, 'remote');
  assert.equal((await eventsFor(browser, 'conflict', entry.id)).length, 0, 'no manual conflict');
});

test('4: custom: the function decides (remote document, local name)', async () => {
  const path = '/api/concepts/custom-1';
  const got = await createAndRead(browser, 'concepts', 'custom-1', { name: 'n0', color: 'grey' });
  const entry = await queueOffline(browser, 'PUT', path, { ...got, name: 'local' });
  // Later than the local edit: last-write-wins would drop the local name.
  await sleep(30);
  await remoteEdit('concepts', 'custom-1', { name: 'remote', color: 'red' });
  await server.up();
  await flushUntil(browser, entry.id, (e) => e === null, 'the custom answer sent');

  const current = await entity('concepts', 'custom-1');
  assert.equal(current.name, 'local', 'the local name, as the function chose');
  assert.equal(current.color, 'red', 'the remote colour, as the function chose');
  assert.equal(current.version, 3);
  const applied = await appliedTo(path);
  assert.deepEqual(applied.map((l) => l.method), ['POST', 'PUT']);
  assert.deepEqual([applied[1].body.name, applied[1].body.color], ['local', 'red'], 'the function\'s body was sent');
  assert.notEqual(applied[1].key, entry.idempotencyKey, 'the re-send carries a new Idempotency-Key');
  assert.equal((await eventsFor(browser, 'resolved', entry.id)).length, 1, 'the resolution is reported');
  assert.equal((await eventsFor(browser, 'conflict', entry.id)).length, 0, 'no manual conflict');
});

test('4: custom: a throwing function becomes a manual conflict with its error', async () => {
  const path = '/api/concepts/throws-1';
  const got = await createAndRead(browser, 'concepts', 'throws-1', { name: 'n0' });
  const entry = await queueOffline(browser, 'PUT', path, { ...got, name: 'local' });
  await remoteEdit('concepts', 'throws-1', { name: 'remote' });
  await server.up();
  const waiting = await flushUntil(browser, entry.id, (e) => e && e.state === 'conflict', 'a manual conflict');
  assert.equal(waiting.state, 'conflict');
  const conflicts = await waitFor(() => eventsFor(browser, 'conflict', entry.id).then((list) => list.length && list),
    { what: 'a conflict event' });
  assert.equal(conflicts[0].detail.local.name, 'local');
  assert.equal(conflicts[0].detail.remote.name, 'remote');
  assert.equal((await eventsFor(browser, 'resolved', entry.id)).length, 0);
  assert.equal((await entity('concepts', 'throws-1')).name, 'remote', 'nothing sent');
  assert.deepEqual((await appliedTo(path)).map((l) => l.method), ['POST']);
  assert.match(JSON.stringify({ entry: waiting, event: conflicts[0].detail }), /resolver exploded/,
    'the function\'s error is reported with the conflict');
});

test('5: 412 after an applied, dropped attempt (no server dedupe): the entry ends done, applied once', async () => {
  const path = '/api/concepts/idem-1';
  await server.call('/control/dedupe', { path: '/api/concepts/', enabled: false });
  const got = await createAndRead(browser, 'concepts', 'idem-1', { name: 'original' });
  const entry = await queueOffline(browser, 'PUT', path, { ...got, name: 'once' });
  // The first attempt is applied, then its connection dropped.
  await server.drop({ count: 1, path, methods: ['PUT'] });
  await server.up();
  await flushUntil(browser, entry.id, (e) => e === null || e.state === 'superseded' || e.state === 'conflict',
    'the entry to settle');
  const left = await entryOf(browser, entry.id);
  assert.equal(left, null, `the entry is done, not ${left && left.state}`);

  const stats = await server.stats();
  assert.equal(stats.faults.drop.length, 0, 'the drop was used');
  const applied = await appliedTo(path);
  assert.deepEqual(applied.map((l) => [l.method, l.key]), [['POST', stats.log[0].key], ['PUT', entry.idempotencyKey]],
    'applied once, by the first attempt');
  assert.ok(stats.receivedByKey[entry.idempotencyKey] >= 2, 'the retry reached the server (and met 412)');
  const current = await entity('concepts', 'idem-1');
  assert.equal(current.name, 'once');
  assert.equal(current.version, 2);
  assert.equal((await eventsFor(browser, 'conflict', entry.id)).length, 0, 'no conflict');
  const resolved = await eventsFor(browser, 'resolved', entry.id);
  assert.ok(resolved.every((e) => e.detail.kept !== 'remote'), 'not reported as superseded');
});

test('6: a manual conflict survives a browser restart and is resolved after it', async () => {
  const path = '/api/concepts/manual-1';
  const first = await openBrowser(server, config);
  let second;
  try {
    const got = await createAndRead(first, 'concepts', 'manual-1', { name: 'original' });
    const entry = await queueOffline(first, 'PUT', path, { ...got, name: 'local' });
    await remoteEdit('concepts', 'manual-1', { name: 'remote' });
    await server.up();
    await flushUntil(first, entry.id, (e) => e && e.state === 'conflict', 'a manual conflict');
    await waitFor(() => eventsFor(first, 'conflict', entry.id).then((list) => list.length > 0), { what: 'a conflict event' });
    await first.close({ keepProfile: true });

    second = await openBrowser(server, config, { profile: first.profile });
    await sleep(300);
    const after = await entryOf(second, entry.id);
    assert.ok(after, 'the conflict is still there after the restart');
    assert.equal(after.state, 'conflict');
    assert.equal((await entity('concepts', 'manual-1')).name, 'remote', 'nothing sent');

    const answer = await second.run((id) => window.outbox.resolve(id, { use: 'local' }), entry.id);
    assert.equal(answer.kept, 'local');
    await flushUntil(second, entry.id, (e) => e === null, 'the local write sent');
    const current = await entity('concepts', 'manual-1');
    assert.equal(current.name, 'local');
    assert.equal(current.version, 3);
    const applied = await appliedTo(path);
    assert.deepEqual(applied.map((l) => l.method), ['POST', 'PUT']);
    assert.notEqual(applied[1].key, entry.idempotencyKey, 'the re-send carries a new Idempotency-Key');
  } finally {
    await server.up();
    if (second) await second.close();
    else await first.close().catch(() => {});
  }
});
