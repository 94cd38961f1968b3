// The queue's byte budget and entry limit, retention, page commands a site
// switches off, persistent storage, and which request headers are stored.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, openBrowser, testConfig, entries, queueJson, postRaw, recordedEvents, waitFor, idbRecords,
  receivedRequests, waitQueueEmpty, needs,
} from './harness.mjs';

const manualOnly = { sync: false, start: false, timer: false, flush: true };

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

test('past limits.maxQueueBytes a new mutation gets 507 with a reason and a failed event; the queue is untouched', async () => {
  await server.call('/control/reset', {});
  const browser = await openBrowser(server, testConfig({ triggers: manualOnly, limits: { maxQueueBytes: 2000 } }));
  try {
    await server.down();
    const body = { text: 'x'.repeat(989) }; // 1,000 bytes of JSON
    assert.equal(JSON.stringify(body).length, 1000);
    for (const id of [1, 2]) {
      const queued = await queueJson(browser, 'PUT', `/api/concepts/${id}`, body);
      assert.equal(queued.status, 202, queued.body);
    }
    const refused = await queueJson(browser, 'PUT', '/api/concepts/3', body);
    assert.equal(refused.status, 507);
    const reason = JSON.parse(refused.body);
    assert.equal(reason.error, 'queue_full');
    assert.match(reason.message, /limits\.maxQueueBytes \(2000\)/);
    const failed = await waitFor(async () => {
      const events = await recordedEvents(browser, 'failed');
      return events.find((e) => e.detail.reason === 'queue_full');
    }, { what: 'a failed event' });
    assert.match(failed.detail.message, /PUT .*\/api\/concepts\/3: not queued/);
    const listed = await entries(browser);
    assert.deepEqual(listed.map((e) => e.url.replace(/^.*\/api/, '/api')), ['/api/concepts/1', '/api/concepts/2']);
    assert.equal((await idbRecords(browser, 'bodies')).length, 2, 'nothing more was stored');
    // The budget is full to the byte: even an empty object does not fit.
    const tiny = await queueJson(browser, 'PUT', '/api/concepts/4', {});
    assert.equal(tiny.status, 507, 'the budget is exact');
    // Once the queue drains, there is room again.
    await server.up();
    await browser.run(() => window.outbox.flush());
    await waitFor(async () => (await entries(browser)).length === 0, { what: 'the queue to drain' });
    assert.equal((await queueJson(browser, 'PUT', '/api/concepts/5', body)).status, 201);
  } finally {
    await server.up();
    await browser.close();
  }
});

test('past limits.maxEntries a new mutation gets 507 with a reason and a failed event; the queue is untouched', async () => {
  await server.call('/control/reset', {});
  const browser = await openBrowser(server, testConfig({ triggers: manualOnly, limits: { maxEntries: 3 } }));
  try {
    await server.down();
    for (const id of [1, 2, 3]) {
      const queued = await queueJson(browser, 'POST', `/api/concepts/e${id}`, { id });
      assert.equal(queued.status, 202, queued.body);
    }
    const refused = await queueJson(browser, 'POST', '/api/concepts/e4', { id: 4 });
    assert.equal(refused.status, 507);
    const reason = JSON.parse(refused.body);
    assert.equal(reason.error, 'queue_full');
    assert.match(reason.message, /limits\.maxEntries \(3\)/);
    const failed = await waitFor(async () => (await recordedEvents(browser, 'failed')).find((e) => e.detail.reason === 'queue_full'),
      { what: 'a failed event' });
    assert.match(failed.detail.message, /POST .*\/api\/concepts\/e4: not queued/);
    const listed = await entries(browser);
    assert.deepEqual(listed.map((e) => e.url.replace(/^.*\/api/, '/api')), ['/api/concepts/e1', '/api/concepts/e2', '/api/concepts/e3']);
    assert.ok(listed.every((e) => e.state === 'pending' || e.state === 'waiting_retry'), JSON.stringify(listed.map((e) => e.state)));
    await server.up();
    await browser.run(() => window.outbox.flush());
    await waitFor(async () => (await entries(browser)).length === 0, { what: 'the queue to drain' });
    assert.deepEqual(Object.keys((await server.stats()).appliedByKey).length, 3, 'the three queued entries were sent, the refused one never');
  } finally {
    await server.up();
    await browser.close();
  }
});

test('an entry older than retry.retentionMs fails as expired, reported, never sent and never silently deleted; clear removes it', async () => {
  await server.call('/control/reset', {});
  const retry = { baseDelayMs: 200, maxDelayMs: 2000, retentionMs: 1000 };
  const browser = await openBrowser(server, testConfig({ triggers: manualOnly, retry }));
  try {
    await server.down();
    const queued = await queueJson(browser, 'PUT', '/api/concepts/old', { old: true });
    assert.equal(queued.status, 202, queued.body);
    await new Promise((resolve) => setTimeout(resolve, 1300));
    await server.up();
    await browser.run(() => window.outbox.flush());
    const event = await waitFor(async () => (await recordedEvents(browser, 'failed')).find((e) => e.detail.reason === 'expired'),
      { what: 'an expired event' });
    assert.equal(event.detail.entry.id, queued.id);
    const [entry] = await entries(browser);
    assert.equal(entry.id, queued.id, 'the expired entry is still listed');
    assert.equal(entry.state, 'failed');
    assert.equal((await server.stats()).requests, 0, 'the expired entry was not sent');
    assert.equal((await idbRecords(browser, 'entries')).length, 1, 'and it is still stored');
    const cleared = await browser.run(() => window.outbox.clear(['failed']));
    assert.equal(cleared.removed, 1);
    assert.deepEqual(await entries(browser), []);
  } finally {
    await server.up();
    await browser.close();
  }
});

test('commands a site switched off get an error reply and change nothing', async () => {
  await server.call('/control/reset', {});
  const config = testConfig({ triggers: manualOnly, commands: { clear: false, cancel: false, resolve: false } });
  const browser = await openBrowser(server, config);
  try {
    await server.down();
    const queued = await queueJson(browser, 'PUT', '/api/concepts/1', { a: 1 });
    assert.equal(queued.status, 202);
    const cases = [
      [{ outbox: 1, id: 31, type: 'clear' }, 'clear'],
      [{ outbox: 1, id: 32, type: 'cancel', entry: queued.id }, 'cancel'],
      [{ outbox: 1, id: 33, type: 'resolve', entry: queued.id, use: 'local' }, 'resolve'],
    ];
    for (const [message, name] of cases) {
      const reply = await postRaw(browser, message);
      assert.equal(reply?.type, 'error', JSON.stringify(reply));
      assert.equal(reply.id, message.id);
      assert.equal(reply.message, `the ${name} command is switched off in this site's outbox config (commands.${name})`);
    }
    // Through the shim too.
    const thrown = await browser.run(() => window.outbox.clear().then(() => 'cleared', (error) => String(error.message)));
    assert.match(thrown, /clear command is switched off/);
    const listed = await entries(browser);
    assert.equal(listed.length, 1);
    assert.equal(listed[0].state, 'pending', 'not cancelled');
    // Commands that do not change the queue still work.
    assert.equal((await postRaw(browser, { outbox: 1, id: 34, type: 'status' })).type, 'ok');
  } finally {
    await server.up();
    await browser.close();
  }
});

// Chromium only: the permission is granted, and persist() counted, through
// CDP and Playwright's init scripts.
test('register(url, {persist: true}) asks for persistent storage and status() shows the answer', { skip: needs('cdp') }, async () => {
  await server.call('/control/reset', {});
  const browser = await openBrowser(server, testConfig({ triggers: manualOnly }));
  try {
    // Count the page's calls to the real persist().
    await browser.context.addInitScript(() => {
      window.persistCalls = 0;
      const persist = StorageManager.prototype.persist;
      StorageManager.prototype.persist = function () {
        window.persistCalls += 1;
        return persist.call(this);
      };
    });
    await browser.page.reload();
    await browser.run(() => window.outboxReady);
    assert.equal(await browser.run(() => window.persistCalls), 0, 'not asked unless the page wants it');
    assert.equal((await browser.run(() => window.outbox.status())).persisted, false, 'best-effort storage');

    const origin = new URL(browser.url).origin;
    await browser.session.send('Browser.grantPermissions', { origin, permissions: ['durableStorage'] });
    await browser.page.goto(`${browser.url}&persist=1`);
    await browser.run(() => window.outboxReady);
    assert.equal(await browser.run(() => window.persistCalls), 1, 'asked while registering');
    const status = await browser.run(() => window.outbox.status());
    assert.equal(status.persisted, true, 'granted');
    // Status events carry it too.
    await server.down();
    await queueJson(browser, 'PUT', '/api/concepts/1', { a: 1 });
    const event = await waitFor(async () => (await recordedEvents(browser, 'status')).at(-1), { what: 'a status event' });
    assert.equal(event.detail.persisted, true);
  } finally {
    await server.up();
    await browser.close();
  }
});

test('only the default headers and those named in storeHeaders are stored and replayed', async () => {
  await server.call('/control/reset', {});
  const browser = await openBrowser(server, testConfig({ triggers: manualOnly, storeHeaders: ['X-Client-Version'] }));
  try {
    await server.down();
    const queued = await queueJson(browser, 'PUT', '/api/concepts/h1', { a: 1 }, {
      'X-Client-Version': '7', 'X-Trace': 'trace-me', Accept: 'application/json',
    });
    assert.equal(queued.status, 202, queued.body);
    const [record] = (await idbRecords(browser, 'entries')).map((r) => JSON.parse(r.text));
    const names = record.headers.map(([name]) => name.toLowerCase()).sort();
    assert.deepEqual(names, ['accept', 'content-type', 'idempotency-key', 'x-client-version']);
    assert.ok(!JSON.stringify(record).includes('trace-me'), 'the unlisted header is nowhere on disk');
    await server.up();
    await browser.run(() => window.outbox.flush());
    await waitQueueEmpty(browser);
    const replay = await waitFor(async () => {
      const puts = (await receivedRequests(server)).filter((r) => r.method === 'PUT' && r.path === '/api/concepts/h1');
      return puts.at(-1);
    }, { what: 'the replay' });
    assert.equal(replay.headers['x-client-version'], '7');
    assert.equal(replay.headers['x-trace'], undefined);
    assert.equal((await server.stats()).appliedByKey[record.idempotencyKey], 1);
  } finally {
    await server.up();
    await browser.close();
  }
});
