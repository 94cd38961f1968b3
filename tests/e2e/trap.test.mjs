// A trap in the wasm instance never leaves a request unanswered and never
// loses or doubles a write: the loader answers the requests it had taken from
// the network (with the key the replay will carry) and starts a fresh
// instance. The test site's worker makes a real `unreachable` trap unwind
// through the outbox's wasm frames on demand (see site/sw.js).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, openBrowser, send, status, testConfig, postRaw, idbRecords, waitFor, waitQueueEmpty,
  FLUSH_ONLY,
} from './harness.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server.stop(); });

const manualOnly = testConfig({ triggers: FLUSH_ONLY });

/** Arms a trap at the next call from the outbox's wasm to an import named `prefix…`. */
async function armTrap(browser, prefix) {
  const reply = await postRaw(browser, { site: 'arm-trap', prefix });
  assert.deepEqual(reply, { site: 'armed' });
}

/** Asserts how many armed traps fired in the worker. */
async function assertTrapsFired(browser, fired) {
  assert.deepEqual(await postRaw(browser, { site: 'traps' }), { site: 'traps', fired });
}

/** A JSON mutation from the page that reports a network error instead of throwing. */
function sendOrError(browser, method, path, body) {
  return browser.run(async ({ method, path, body }) => {
    try {
      const response = await fetch(path, {
        method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
      });
      return { status: response.status, body: await response.text() };
    } catch (error) {
      return { error: String(error) };
    }
  }, { method, path, body });
}

test('a trap while routing a request lets it pass to the network, and the next request is queued', async () => {
  await server.call('/control/reset', {});
  const browser = await openBrowser(server, manualOnly);
  try {
    await armTrap(browser, '__wbg_method_');
    const passed = await send(browser, 'PUT', '/api/concepts/1', { name: 'through the trap' });
    assert.equal(passed.status, 201, passed.body);
    await assertTrapsFired(browser, 1);
    assert.equal((await server.stats()).applied, 1);
    // A fresh instance takes the next request.
    await server.down();
    const queued = await send(browser, 'PUT', '/api/concepts/2', { name: 'queued after' });
    assert.equal(queued.status, 202, queued.body);
    assert.equal((await status(browser)).counts.pending, 1);
    await server.up();
    await browser.run(() => window.outbox.flush());
    await waitQueueEmpty(browser);
    const stats = await server.stats();
    assert.equal(stats.applied, 2);
    assert.deepEqual(stats.log.map((e) => e.path).sort(), ['/api/concepts/1', '/api/concepts/2']);
  } finally {
    await server.up();
    await browser.close();
  }
});

test('a trap after the entry is stored: a fresh instance finds the entry, answers 202, and it drains once', async () => {
  await server.call('/control/reset', {});
  const browser = await openBrowser(server, manualOnly);
  try {
    await server.down();
    // The 202 is built after the strict transaction committed; the trap
    // comes from the instance's asynchronous work.
    await armTrap(browser, '__wbg_new_with_opt_str_and_init_');
    const answer = await sendOrError(browser, 'PUT', '/api/concepts/3', { name: 'stored before the trap' });
    assert.equal(answer.status, 202, JSON.stringify(answer));
    await assertTrapsFired(browser, 1);
    const stored = (await idbRecords(browser, 'entries')).map((r) => JSON.parse(r.text));
    assert.equal(stored.length, 1, 'stored once, not copied');
    assert.equal(JSON.parse(answer.body).id, stored[0].id, 'the answer names the stored entry');
    const key = stored[0].idempotencyKey;
    assert.match(key, /^[0-9a-f-]{36}$/);
    await server.up();
    await browser.run(() => window.outbox.flush());
    await waitQueueEmpty(browser);
    const stats = await server.stats();
    assert.equal(stats.applied, 1);
    assert.equal(stats.receivedByKey[key], 1);
  } finally {
    await server.up();
    await browser.close();
  }
});

test('a trap after storing a write queued behind another keeps their order and sends each once', async () => {
  await server.call('/control/reset', {});
  const browser = await openBrowser(server, manualOnly);
  try {
    // An older write of the entity waits in the queue...
    await server.down();
    assert.equal((await send(browser, 'PUT', '/api/concepts/4', { name: 'older' })).status, 202);
    await server.up();
    // ...so the next one is queued behind it even online, and the instance
    // traps after storing it.
    await armTrap(browser, '__wbg_new_with_opt_str_and_init_');
    const answer = await sendOrError(browser, 'PUT', '/api/concepts/4', { name: 'newer' });
    assert.equal(answer.status, 202, JSON.stringify(answer));
    await assertTrapsFired(browser, 1);
    const stored = (await idbRecords(browser, 'entries')).map((r) => JSON.parse(r.text));
    assert.equal(stored.length, 2, 'both writes are queued, neither twice');
    assert.equal((await server.stats()).requests, 0, 'nothing went around the queue');
    await browser.run(() => window.outbox.flush());
    await waitQueueEmpty(browser);
    const stats = await server.stats();
    assert.equal(stats.applied, 2);
    for (const entry of stored) {
      assert.equal(stats.receivedByKey[entry.idempotencyKey], 1, `${entry.id} sent once`);
    }
    const entities = await server.entities();
    assert.equal(entities.concepts.find((c) => c.id === '4').name, 'newer', 'the newer write is last');
  } finally {
    await server.up();
    await browser.close();
  }
});

test('a trap in the middle of a drain: a fresh instance takes the drain lock over and drains', async () => {
  await server.call('/control/reset', {});
  const browser = await openBrowser(server, manualOnly);
  try {
    await server.down();
    for (const id of [5, 6]) {
      assert.equal((await send(browser, 'PUT', `/api/concepts/${id}`, { name: `n${id}` })).status, 202);
    }
    await server.up();
    // The trap comes as the drain (holding the origin's drain lock) sends.
    await armTrap(browser, '__wbg_fetch_');
    await browser.run(() => { window.outbox.flush().catch(() => {}); });
    await waitFor(async () => (await postRaw(browser, { site: 'traps' })).fired === 1, { what: 'the trap' });
    // The trapped instance never releases the lock; the fresh one takes it.
    await browser.run(() => window.outbox.flush());
    await waitQueueEmpty(browser);
    const stats = await server.stats();
    assert.equal(stats.applied, 2);
    assert.deepEqual(Object.values(stats.receivedByKey), [1, 1], 'each sent once');
  } finally {
    await server.up();
    await browser.close();
  }
});
