// Scenario 12: bad input. Malformed outbox messages get an error and change
// nothing; the site's own messages and fetches are left to the site; an
// oversized body gets 413 and is not stored; a corrupted IndexedDB record is
// reported and skipped while the rest of the queue drains.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, openBrowser, testConfig, waitFor, entries, pageFetch, queueJson,
  postRaw, idbRecords, idbPut, recordedEvents, needs, FLUSH_ONLY,
} from './harness.mjs';

const LIMIT = 1024;
// Nothing drains unless the test flushes.
const config = testConfig({
  triggers: FLUSH_ONLY,
  limits: { maxBodyBytes: LIMIT },
});

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

/** Queues `n` JSON mutations with the server down; gives their ids. */
async function queueSome(browser, n, prefix) {
  await server.down();
  const ids = [];
  for (let i = 0; i < n; i++) {
    const queued = await queueJson(browser, 'PUT', `/api/concepts/${prefix}${i}`, { i });
    assert.equal(queued.status, 202, queued.body);
    ids.push(queued.id);
  }
  return ids;
}

test('12: malformed outbox messages get an error reply and change nothing', async () => {
  await server.call('/control/reset', {});
  const browser = await openBrowser(server, config);
  try {
    await queueSome(browser, 3, 'm');
    const before = await entries(browser);
    const recordsBefore = await idbRecords(browser, 'entries');
    assert.equal(before.length, 3);

    const malformed = [
      [{ outbox: 1, id: 5, type: 'explode' }, 5],
      [{ outbox: 1, type: 'status' }, null],
      [{ outbox: 2, id: 1, type: 'status' }, 1],
      [{ outbox: 1, id: 2, type: 'cancel', entry: 'x' }, 2],
      // Commands that would change the queue, each with one thing wrong.
      [{ outbox: 1, id: -3, type: 'clear' }, null],
      [{ outbox: 1, id: 3.5, type: 'clear' }, null],
      [{ outbox: '1', id: 6, type: 'clear' }, 6],
      [{ outbox: 0, id: 7, type: 'clear' }, 7],
      [{ outbox: 1, id: 8, type: 'clear', states: 'pending' }, 8],
      [{ outbox: 1, id: 9, type: 'clear', states: ['pending', 'nonsense'] }, 9],
      [{ outbox: 1, id: 10, type: 'cancel' }, 10],
      [{ outbox: 1, id: 11, type: 'cancel', entry: -1 }, 11],
      [{ outbox: 1, id: 12, type: 'retry' }, 12],
      [{ outbox: 1, id: 13, type: 'entries', filter: { states: ['bogus'] } }, 13],
      [{ outbox: 1, id: 14, type: 'entries', filter: 'pending' }, 14],
      [{ outbox: 1, id: 15, type: 'auth', headers: 'Bearer x' }, 15],
      [{ outbox: 1, id: 16, type: 'auth', headers: { 'bad name': 'x' } }, 16],
      [{ outbox: 1, id: 17, type: 'resolve', entry: before[0].id, use: 'sideways' }, 17],
      [{ outbox: 1, id: 18, type: 'resolve', entry: before[0].id, use: 'merged' }, 18],
      [{ outbox: 1, id: 19, type: 42 }, 19],
      [{ outbox: 1, id: 20 }, 20],
      [{ outbox: null, id: 21, type: 'clear' }, 21],
    ];
    for (const [message, id] of malformed) {
      const reply = await postRaw(browser, message);
      assert.ok(reply, `a reply to ${JSON.stringify(message)}`);
      assert.equal(reply.type, 'error', `error reply to ${JSON.stringify(message)}: ${JSON.stringify(reply)}`);
      assert.equal(typeof reply.message, 'string');
      assert.ok(reply.message.length > 0);
      assert.equal(reply.outbox, 1);
      assert.equal(reply.id, id, `reply id for ${JSON.stringify(message)}`);
    }
    // Well-formed commands on entries that do not exist are errors too.
    for (const message of [
      { outbox: 1, id: 30, type: 'cancel', entry: 99999 },
      { outbox: 1, id: 31, type: 'retry', entry: 99999 },
      { outbox: 1, id: 32, type: 'retry', entry: before[0].id }, // pending, not failed
    ]) {
      const reply = await postRaw(browser, message);
      assert.equal(reply?.type, 'error', `error reply to ${JSON.stringify(message)}: ${JSON.stringify(reply)}`);
      assert.equal(reply.id, message.id);
    }

    assert.deepEqual(await entries(browser), before, 'the queue is unchanged');
    assert.deepEqual(await idbRecords(browser, 'entries'), recordsBefore, 'the stored records are unchanged');
    assert.equal((await server.stats()).requests, 0, 'nothing was sent');
    // The worker still answers properly.
    const ok = await postRaw(browser, { outbox: 1, id: 40, type: 'status' });
    assert.equal(ok.type, 'ok');
    assert.equal(ok.result.total, 3);
  } finally {
    await server.up();
    await browser.close();
  }
});

test('12: messages without the marker are the site\'s: no outbox reply, the site\'s listeners still work', async () => {
  await server.call('/control/reset', {});
  const browser = await openBrowser(server, config);
  try {
    // The site's own listener answers a ping through event.source; the
    // outbox does not answer on the port. One page call does both, so it
    // works where the driver runs page calls one at a time (WebKit).
    const { reply, pong } = await browser.run(() => new Promise((resolve) => {
      const result = { reply: null, pong: null };
      const channel = new MessageChannel();
      channel.port1.onmessage = ({ data }) => { result.reply = data; };
      navigator.serviceWorker.addEventListener('message', (event) => {
        if (event.data && event.data.site === 'pong') result.pong = event.data;
      });
      navigator.serviceWorker.controller.postMessage({ site: 'ping' }, [channel.port2]);
      const start = Date.now();
      const check = () => {
        const waited = Date.now() - start;
        if ((result.pong && waited >= 1000) || waited >= 5000) {
          channel.port1.close();
          resolve(result);
        } else {
          setTimeout(check, 50);
        }
      };
      check();
    }));
    assert.equal(reply, null, `no reply on the port: ${JSON.stringify(reply)}`);
    assert.deepEqual(pong, { site: 'pong' });
    for (const message of [{ type: 'status', id: 1 }, 'status', 42, [1, 2], null, { hello: 'world' }]) {
      assert.equal(await postRaw(browser, message, { timeoutMs: 500 }), null, `no reply to ${JSON.stringify(message)}`);
    }
    // The site's own fetch listener, for any method.
    const own = await pageFetch(browser, '/own/echo', { method: 'POST', body: 'x' });
    assert.equal(own.status, 200);
    assert.equal(own.body, 'own fetch listener');
    const ownGet = await pageFetch(browser, '/own/echo');
    assert.equal(ownGet.body, 'own fetch listener');
    const s = await browser.run(() => window.outbox.status());
    assert.equal(s.total, 0);
    const failed = await recordedEvents(browser, 'failed');
    assert.deepEqual(failed, [], 'no outbox failure was reported');
  } finally {
    await browser.close();
  }
});

test('12: a body over limits.maxBodyBytes gets 413 and nothing is stored', async () => {
  await server.call('/control/reset', {});
  const browser = await openBrowser(server, config);
  try {
    await queueSome(browser, 1, 'small');
    const countBefore = {
      entries: (await idbRecords(browser, 'entries')).length,
      bodies: (await idbRecords(browser, 'bodies')).length,
    };
    const results = await browser.run(async (limit) => {
      const post = async (path, size) => {
        const response = await fetch(path, { method: 'POST', body: new Uint8Array(size).fill(65), headers: { 'content-type': 'application/octet-stream' } });
        return { status: response.status, entry: response.headers.get('outbox-entry'), body: await response.text() };
      };
      return {
        over: await post('/api/uploads/big', limit + 1),
        wayOver: await post('/api/uploads/huge', limit * 100),
        at: await post('/api/uploads/exact', limit),
      };
    }, LIMIT);
    for (const name of ['over', 'wayOver']) {
      const r = results[name];
      assert.equal(r.status, 413, `${name}: ${r.body}`);
      assert.equal(r.entry, null);
      const body = JSON.parse(r.body);
      assert.equal(body.error, 'body_too_large');
      assert.equal(body.limit, LIMIT);
    }
    assert.equal(results.at.status, 202, `a body exactly at the limit is queued: ${results.at.body}`);
    const list = await entries(browser);
    assert.deepEqual(list.map((e) => e.url.replace(/^.*\/api/, '/api')), ['/api/concepts/small0', '/api/uploads/exact']);
    assert.equal((await idbRecords(browser, 'entries')).length, countBefore.entries + 1);
    assert.equal((await idbRecords(browser, 'bodies')).length, countBefore.bodies + 1);
    // Nothing oversized reached the server either, once it is back.
    await server.up();
    await browser.run(() => window.outbox.flush());
    await waitFor(async () => (await server.stats()).applied >= 2, { what: 'the two queued entries applied' });
    const uploads = (await server.entities()).uploads.map((u) => u.id);
    assert.deepEqual(uploads, ['exact']);
  } finally {
    await server.up();
    await browser.close();
  }
});

test('12: a corrupted IndexedDB record is reported and moved aside; the rest of the queue drains', { skip: needs('stopWorker') }, async () => {
  await server.call('/control/reset', {});
  const browser = await openBrowser(server, config);
  try {
    const ids = await queueSome(browser, 3, 'c');
    // Damage the store: a garbage string, a value that is not text, and
    // JSON that is not an entry, each under a new numeric key.
    const max = Math.max(...ids);
    const garbage = max + 10;
    const notText = max + 11;
    const notEntry = max + 12;
    await idbPut(browser, 'entries', garbage, 'this is not json {{{');
    await idbPut(browser, 'entries', notText, { some: 'object' });
    await idbPut(browser, 'entries', notEntry, JSON.stringify({ hello: 'world' }));
    // A readable record under the wrong key (a copy of a real one): loading
    // it would send that entry twice.
    const copied = max + 13;
    const original = (await idbRecords(browser, 'entries')).find((r) => r.key === ids[0]);
    await idbPut(browser, 'entries', copied, original.text);

    await browser.stopWorker();
    await server.up();

    // The next command starts the worker again, which loads the damaged store.
    const s = await browser.run(() => window.outbox.status());
    const unreadable = (s.unreadable || []).map((u) => u.id).sort((a, b) => a - b);
    const corruptEvents = () => recordedEvents(browser, 'failed')
      .then((events) => events.filter((e) => e.detail.reason === 'corrupt').map((e) => e.detail.id));
    const reported = await waitFor(async () => {
      const fromEvents = await corruptEvents();
      const all = new Set([...unreadable, ...fromEvents]);
      return [garbage, notText, notEntry, copied].every((id) => all.has(id)) ? { unreadable, fromEvents } : false;
    }, { what: 'the damaged records to be reported', timeoutMs: 5000 }).catch(async (error) => {
      throw new Error(`${error.message}; status.unreadable=${JSON.stringify(s.unreadable)} events=${JSON.stringify(await corruptEvents())}`);
    });
    assert.ok(reported);
    assert.equal(s.total, 3, 'the readable entries are all there');
    assert.deepEqual((await entries(browser)).map((e) => e.id), ids);

    // The rest drains; the damaged records are not sent, and not lost.
    await browser.run(() => window.outbox.flush());
    await waitFor(async () => (await server.stats()).applied >= 3, { what: 'the 3 readable entries applied' });
    const stats = await server.stats();
    assert.equal(stats.applied, 3);
    assert.equal(stats.requests, 3, 'each readable entry was sent once; the copy was not sent');
    assert.equal(Object.keys(stats.appliedByKey).length, 3);
    assert.ok(Object.values(stats.appliedByKey).every((n) => n === 1), JSON.stringify(stats.appliedByKey));
    assert.deepEqual(await entries(browser), []);
    assert.deepEqual(await idbRecords(browser, 'entries'), [], 'no damaged record is left in the queue');
    const aside = (await idbRecords(browser, 'corrupt')).map((r) => r.key).sort((a, b) => a - b);
    assert.deepEqual(aside, [garbage, notText, notEntry, copied], 'the damaged records are moved aside, not lost');

    // New mutations still queue, under ids that do not collide with them.
    await server.down();
    const again = await queueJson(browser, 'PUT', '/api/concepts/after', { after: true });
    assert.equal(again.status, 202, again.body);
    assert.ok(again.id > copied, `new id ${again.id} comes after every key in the store`);
    await server.up();
    await browser.run(() => window.outbox.flush());
    await waitFor(async () => (await server.stats()).applied >= 4, { what: 'the new entry applied' });
  } finally {
    await server.up();
    await browser.close();
  }
});
