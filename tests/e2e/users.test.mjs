// Several users on one device: entries carry the user the page set with
// `setUser`; entries of another user are held — never sent, with anyone's
// credentials — until that user is current again; `logout` discards or keeps
// the current user's entries; the current user survives a browser restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, openBrowser, testConfig, entries, status, queueJson, waitFor, idbRecords,
  waitApplied, FLUSH_ONLY,
} from './harness.mjs';

// Only the page's flush and the user commands start drains.
const config = testConfig({ triggers: FLUSH_ONLY });

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

/** Runs a shim method in the page: `call(browser, 'setUser', 'alice')`. */
function call(browser, method, ...args) {
  return browser.run(({ method, args }) => window.outbox[method](...args), { method, args });
}

/** Like `call`, but gives `{error: name, message}` when it rejects. */
function callCatching(browser, method, ...args) {
  return browser.run(({ method, args }) => Promise.resolve()
    .then(() => window.outbox[method](...args))
    .then((result) => ({ result }), (error) => ({ error: error.name, message: error.message })), { method, args });
}

/** Queues a mutation with the server down; asserts the 202. */
async function queued(browser, path, body) {
  const response = await queueJson(browser, 'PUT', path, body);
  assert.equal(response.status, 202, `${path}: ${response.body}`);
  return response.id;
}

test('users: entries of another user are held, never sent, until that user is current again; the user survives a browser restart', async () => {
  await server.reset();
  let browser = await openBrowser(server, config);
  try {
    await server.down();
    const nobody = await queued(browser, '/api/concepts/nobody', { who: 'nobody' });
    assert.deepEqual(await call(browser, 'setUser', 'alice'), { user: 'alice', held: 0 });
    const alice1 = await queued(browser, '/api/concepts/shared', { who: 'alice', seq: 1 });
    const alice2 = await queued(browser, '/api/concepts/alice', { who: 'alice', seq: 2 });
    assert.deepEqual(await call(browser, 'setUser', 'bob'), { user: 'bob', held: 2 });
    // Bob's edit of the same entity does not wait behind alice's held one.
    const bob1 = await queued(browser, '/api/concepts/shared', { who: 'bob', seq: 3 });

    const listed = await entries(browser);
    assert.deepEqual(listed.map((e) => [e.id, e.user]),
      [[nobody, null], [alice1, 'alice'], [alice2, 'alice'], [bob1, 'bob']]);
    const aliceKeys = listed.filter((e) => e.user === 'alice').map((e) => e.idempotencyKey);
    let s = await status(browser);
    assert.equal(s.user, 'bob');
    assert.equal(s.held, 2);

    await server.up();
    await call(browser, 'flush');
    let stats = await waitApplied(server, 2, 20000, 'the entry without a user and bob\'s');
    // Independent entities go concurrently, in either order.
    assert.deepEqual(stats.log.map((e) => [e.path, e.body.who]).sort(),
      [['/api/concepts/nobody', 'nobody'], ['/api/concepts/shared', 'bob']]);
    for (const key of aliceKeys) assert.equal(stats.receivedByKey[key] ?? 0, 0, `alice's ${key} never reached the server`);
    assert.deepEqual((await entries(browser)).map((e) => [e.id, e.state, e.user]),
      [[alice1, 'pending', 'alice'], [alice2, 'pending', 'alice']]);

    // A restart (worker and browser) keeps bob as the current user.
    await browser.close({ keepProfile: true });
    browser = await openBrowser(server, config, { profile: browser.profile });
    s = await status(browser);
    assert.equal(s.user, 'bob');
    assert.equal(s.held, 2);
    await call(browser, 'flush');
    stats = await server.stats();
    assert.equal(stats.applied, 2, 'nothing more was applied');
    for (const key of aliceKeys) assert.equal(stats.receivedByKey[key] ?? 0, 0, `alice's ${key} still held`);

    // Alice is back: her entries go, each once.
    assert.deepEqual(await call(browser, 'setUser', 'alice'), { user: 'alice', held: 0 });
    stats = await waitApplied(server, 4, 20000, 'alice\'s entries');
    for (const key of aliceKeys) assert.equal(stats.appliedByKey[key], 1);
    assert.equal(stats.applied, 4);
    await waitFor(async () => (await status(browser)).total === 0, { what: 'an empty queue' });
  } finally {
    await server.up();
    await browser.close();
  }
});

test('users: logout({discard: true}) removes the user\'s queued entries and reports them; logout({keep: true}) holds them; then there is no user', async () => {
  await server.reset();
  const browser = await openBrowser(server, config);
  try {
    await browser.run(() => {
      window.discarded = [];
      window.outbox.addEventListener('discarded', (event) => window.discarded.push(event.detail));
    });
    await server.down();
    const nobody = await queued(browser, '/api/concepts/nobody', { who: 'nobody' });
    await call(browser, 'setUser', 'alice');
    const alice = [
      await queued(browser, '/api/concepts/a1', { who: 'alice' }),
      await queued(browser, '/api/concepts/a2', { who: 'alice' }),
    ];
    const aliceKeys = (await entries(browser)).filter((e) => e.user === 'alice').map((e) => e.idempotencyKey);

    const out = await call(browser, 'logout', { discard: true });
    assert.deepEqual(out, { user: null, previous: 'alice', discarded: alice, held: 0 });
    const reported = await waitFor(async () => {
      const seen = await browser.run(() => window.discarded);
      return seen.length > 0 && seen;
    }, { what: 'a discarded event' });
    assert.equal(reported.length, 1);
    assert.equal(reported[0].reason, 'logout');
    assert.equal(reported[0].user, 'alice');
    assert.deepEqual(reported[0].entries.map((e) => [e.id, e.user, e.url.replace(/^.*\/api/, '/api')]),
      [[alice[0], 'alice', '/api/concepts/a1'], [alice[1], 'alice', '/api/concepts/a2']]);
    assert.deepEqual((await entries(browser)).map((e) => e.id), [nobody]);
    assert.deepEqual((await idbRecords(browser, 'entries')).map((r) => r.key), [nobody], 'gone from disk too');
    assert.deepEqual((await idbRecords(browser, 'bodies')).map((r) => r.key), [nobody]);
    let s = await status(browser);
    assert.equal(s.user, null);
    assert.equal(s.held, 0);

    // The shim refuses a logout that asks for both.
    const both = await callCatching(browser, 'logout', { discard: true, keep: true });
    assert.equal(both.error, 'TypeError', JSON.stringify(both));
    const empty = await callCatching(browser, 'setUser', '');
    assert.equal(empty.error, 'TypeError', JSON.stringify(empty));

    await call(browser, 'setUser', 'bob');
    const bob = await queued(browser, '/api/concepts/b1', { who: 'bob' });
    const bobKey = (await entries(browser)).find((e) => e.id === bob).idempotencyKey;
    assert.deepEqual(await call(browser, 'logout', { keep: true }), { user: null, previous: 'bob', discarded: [], held: 1 });
    s = await status(browser);
    assert.equal(s.user, null);
    assert.equal(s.held, 1, 'bob\'s entry is held while nobody is signed in');
    // A logout with no user changes nothing, and the default keeps.
    assert.deepEqual(await call(browser, 'logout'), { user: null, previous: null, discarded: [], held: 1 });
    // The logouts' drains tried the entry while the server was down; the
    // flush below comes after those attempts ended (an attempt that fails
    // after a flush joined its drain still stops that drain: see the note
    // in the README under Drain triggers).
    await waitFor(async () => (await status(browser)).counts.in_flight === 0, { what: 'no attempt in flight' });

    await server.up();
    await call(browser, 'flush');
    let stats = await waitApplied(server, 1, 20000, 'the entry without a user');
    assert.deepEqual(stats.log.map((e) => e.path), ['/api/concepts/nobody']);
    assert.equal(stats.receivedByKey[bobKey] ?? 0, 0, 'bob\'s entry was not sent with nobody signed in');
    assert.equal((await browser.run(() => window.discarded)).length, 1, 'keep reports nothing discarded');

    await call(browser, 'setUser', 'bob');
    stats = await waitApplied(server, 2, 20000, 'bob\'s kept entry');
    assert.equal(stats.appliedByKey[bobKey], 1);
    for (const key of aliceKeys) assert.equal(stats.receivedByKey[key] ?? 0, 0, 'discarded entries are never sent');
  } finally {
    await server.up();
    await browser.close();
  }
});

test('users: auth headers given for one user never go out with another user\'s entries', async () => {
  await server.reset();
  const browser = await openBrowser(server, config);
  try {
    // The page's token follows whoever is signed in; the shim asks for it
    // again at each user switch.
    await browser.run(() => {
      window.token = 'alice-token';
      return window.outbox.setAuth(() => ({ Authorization: `Bearer ${window.token}` }));
    });
    await call(browser, 'setUser', 'alice');
    await server.down();
    const alice = await queued(browser, '/api/concepts/a', { who: 'alice' });
    await browser.run(() => { window.token = 'bob-token'; });
    await call(browser, 'setUser', 'bob');
    const bob = await queued(browser, '/api/concepts/b', { who: 'bob' });
    const keys = Object.fromEntries((await entries(browser)).map((e) => [e.id, e.idempotencyKey]));

    await server.up();
    await call(browser, 'flush');
    await waitApplied(server, 1, 20000, 'bob\'s entry');
    await browser.run(() => { window.token = 'alice-token'; });
    await call(browser, 'setUser', 'alice');
    await waitApplied(server, 2, 20000, 'alice\'s entry');

    const received = await server.call('/control/received');
    const authOf = (id) => received
      .filter((r) => r.headers['idempotency-key'] === keys[id])
      .map((r) => r.headers.authorization);
    assert.deepEqual(authOf(bob), ['Bearer bob-token']);
    assert.deepEqual(authOf(alice), ['Bearer alice-token']);
  } finally {
    await server.up();
    await browser.close();
  }
});
