// Scenarios 1 and 2: online pass-through and offline queueing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, openBrowser, send, pageFetch, status, entries, testConfig } from './harness.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server.stop(); });

test('online: a matched POST reaches the server once and the page gets its own response', async () => {
  await server.call('/control/reset', {});
  const browser = await openBrowser(server);
  try {
    const created = await send(browser, 'POST', '/api/concepts/1', { name: 'first' });
    assert.equal(created.status, 201);
    assert.equal(JSON.parse(created.body).name, 'first');
    assert.ok(created.headers.etag, 'the server ETag reaches the page');
    const stats = await server.stats();
    assert.equal(stats.applied, 1);
    const [applied] = stats.log;
    assert.match(applied.key, /^[0-9a-f-]{36}$/, 'an Idempotency-Key was added');
    // A 4xx goes to the page unchanged and nothing is queued.
    const conflict = await send(browser, 'POST', '/api/concepts/1', { name: 'again' });
    assert.equal(conflict.status, 409);
    const missing = await send(browser, 'PATCH', '/api/concepts/404', { name: 'x' });
    assert.equal(missing.status, 404);
    // A 5xx too.
    await server.fail({ count: 1, status: 500 });
    const broken = await send(browser, 'PUT', '/api/concepts/2', { name: 'x' });
    assert.equal(broken.status, 500);
    assert.equal((await status(browser)).total, 0);
    // The page's own Idempotency-Key is kept.
    await send(browser, 'PUT', '/api/concepts/3', { name: 'k' }, { 'Idempotency-Key': 'page-key-1' });
    assert.equal((await server.stats()).appliedByKey['page-key-1'], 1);
    // GETs, unmatched routes and the site's own listener are untouched.
    const before = (await server.stats()).requests;
    const got = await pageFetch(browser, '/api/concepts/1');
    assert.equal(got.status, 200);
    const own = await pageFetch(browser, '/own/echo', { method: 'POST', body: 'x' });
    assert.equal(own.body, 'own fetch listener');
    const stats2 = await server.stats();
    assert.equal(stats2.requests, before + 1, 'only the GET reached the API');
    assert.equal(stats2.receivedByKey[Object.keys(stats2.receivedByKey)[0]] >= 1, true);
  } finally {
    await browser.close();
  }
});

test('offline: 20 mutations with the server down each get 202 and are stored', async () => {
  await server.call('/control/reset', {});
  const config = testConfig({ triggers: { sync: false, start: false, timer: false, flush: false } });
  const browser = await openBrowser(server, config);
  try {
    await server.down();
    const ids = [];
    for (let i = 0; i < 20; i++) {
      const method = ['POST', 'PUT', 'DELETE'][i % 3];
      const response = await send(browser, method, `/api/concepts/${i % 7}`, method === 'DELETE' ? undefined : { n: i });
      assert.equal(response.status, 202, `request ${i}: ${response.body}`);
      const body = JSON.parse(response.body);
      assert.equal(body.queued, true);
      assert.equal(String(body.id), response.headers['outbox-entry']);
      ids.push(body.id);
    }
    assert.equal(new Set(ids).size, 20);
    const s = await status(browser);
    assert.equal(s.counts.pending, 20);
    const list = await entries(browser);
    assert.deepEqual(list.map((e) => e.id), ids);
    // They are in IndexedDB, read directly from the page.
    const stored = await browser.run(() => new Promise((resolve, reject) => {
      const open = indexedDB.open('sw-outbox');
      open.onsuccess = () => {
        const request = open.result.transaction('entries').objectStore('entries').count();
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      };
      open.onerror = () => reject(open.error);
    }));
    assert.equal(stored, 20);
  } finally {
    await server.up();
    await browser.close();
  }
});
