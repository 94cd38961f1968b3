// Damaged and hostile input: records that cannot be read are moved aside
// into the `corrupt` store and reported once while the rest of the queue
// drains; a record of the older format is upgraded and sent; when the
// browser itself refuses to store for lack of space the page is told so;
// and config data cannot pass for one of the config's functions.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, openBrowser, testConfig, entries, status, queueJson, waitFor, idbRecords, idbPut,
  recordedEvents, needs,
  waitApplied, FLUSH_ONLY,
} from './harness.mjs';

const config = testConfig({ triggers: FLUSH_ONLY });

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

/** Stores `text` as bytes in the outbox's `bodies` store under `key`, from the page. */
function putBody(browser, key, text) {
  return browser.run(({ key, text }) => new Promise((resolve, reject) => {
    const open = indexedDB.open('sw-outbox');
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const transaction = db.transaction('bodies', 'readwrite');
      transaction.objectStore('bodies').put(new TextEncoder().encode(text), key);
      transaction.oncomplete = () => { db.close(); resolve(true); };
      transaction.onerror = () => reject(transaction.error);
    };
  }), { key, text });
}

/** The records of the `corrupt` store: `[{key, id, record, body, error, movedAt}]`, bodies as text. */
function corruptRecords(browser) {
  return browser.run(() => new Promise((resolve, reject) => {
    const open = indexedDB.open('sw-outbox');
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const store = db.transaction('corrupt').objectStore('corrupt');
      const keys = store.getAllKeys();
      const values = store.getAll();
      values.onsuccess = () => {
        db.close();
        resolve(keys.result.map((key, index) => {
          const value = values.result[index];
          return {
            key,
            ...value,
            body: value.body instanceof Uint8Array ? new TextDecoder().decode(value.body) : null,
            record: typeof value.record === 'string' ? value.record : JSON.stringify(value.record),
          };
        }));
      };
      values.onerror = () => reject(values.error);
    };
  }));
}

/**
 * Starts a fresh worker instance that loads the store again: the page
 * registers the same worker script under a new URL (an extra query
 * parameter the script ignores), which installs, activates and takes over.
 */
function freshWorker(browser, name) {
  return browser.run(async (name) => {
    const url = new URL(navigator.serviceWorker.controller.scriptURL);
    url.searchParams.set('instance', name);
    const changed = new Promise((resolve) => navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }));
    await navigator.serviceWorker.register(url.pathname + url.search);
    await changed;
    return navigator.serviceWorker.controller.scriptURL;
  }, name);
}

test('corrupt: unreadable records are moved aside and reported once, an older record is upgraded and sent, the rest drains; clear removes them', async () => {
  await server.reset();
  const browser = await openBrowser(server, config);
  try {
    await server.down();
    const ids = [];
    for (const n of [1, 2, 3]) {
      const response = await queueJson(browser, 'PUT', `/api/concepts/c${n}`, { n });
      assert.equal(response.status, 202, response.body);
      ids.push(response.id);
    }
    const max = Math.max(...ids);
    const garbage = max + 10;
    const newer = max + 11;
    const older = max + 12;
    await idbPut(browser, 'entries', garbage, 'this is not json {{{');
    await putBody(browser, garbage, 'the garbage record\'s body');
    // A readable record of a format this outbox does not know yet.
    const original = JSON.parse((await idbRecords(browser, 'entries')).find((r) => r.key === ids[0]).text);
    await idbPut(browser, 'entries', newer, JSON.stringify({ ...original, v: 3, id: newer }));
    // A record as the first format (version 1, before users) wrote it.
    const url = original.url.replace(/\/api\/.*$/, '/api/concepts/older');
    await idbPut(browser, 'entries', older, JSON.stringify({
      v: 1, id: older, method: 'PUT', url,
      headers: [['content-type', 'application/json'], ['Idempotency-Key', 'older-key']],
      credentials: 'same-origin', idempotencyKey: 'older-key', route: 0, kind: 'concept',
      entity: '/api/concepts/older', base: null, priority: 'normal', dependsOn: [], state: 'pending',
      attempts: 0, offlineAttempts: 0, createdAt: Date.now(), lastAttemptAt: null, nextAttemptAt: null,
      leaseUntil: null, uncertain: false, lastError: null, failure: null, conflict: null, bodyBytes: 14,
    }));
    await putBody(browser, older, '{"older":true}');

    // The server serves the worker script; the drain waits for a flush.
    await server.up();
    await freshWorker(browser, 'after-damage');
    const corruptIds = async () => (await recordedEvents(browser, 'failed'))
      .filter((e) => e.detail.reason === 'corrupt').map((e) => e.detail);
    const reported = await waitFor(async () => {
      const events = await corruptIds();
      return events.length >= 2 ? events : false;
    }, { what: 'the two unreadable records to be reported' });
    assert.deepEqual(reported.map((e) => [e.id, e.entry, e.movedAside]).sort(), [[garbage, null, true], [newer, null, true]]);
    assert.match(reported.find((e) => e.id === newer).message, /format version 3, written by a newer outbox/);
    assert.match(reported.find((e) => e.id === garbage).message, /not JSON/);

    let s = await status(browser);
    assert.equal(s.corrupt, 2);
    assert.deepEqual(s.unreadable, []);
    assert.equal(s.total, 4, 'the three readable entries and the upgraded one');
    const listed = await entries(browser);
    assert.deepEqual(listed.map((e) => [e.id, e.state, e.user]), [...ids, older].map((id) => [id, 'pending', null]));
    assert.deepEqual((await idbRecords(browser, 'entries')).map((r) => r.key), [...ids, older]);
    assert.ok(!(await idbRecords(browser, 'bodies')).some((r) => r.key === garbage), 'the body moved too');
    const aside = await corruptRecords(browser);
    assert.deepEqual(aside.map((r) => r.key), [garbage, newer]);
    assert.equal(aside[0].record, 'this is not json {{{');
    assert.equal(aside[0].body, 'the garbage record\'s body');
    assert.match(aside[0].error, /not JSON/);
    assert.match(aside[1].error, /newer outbox/);
    assert.equal(JSON.parse(aside[1].record).v, 3, 'kept as it was');

    // The rest drains, the upgraded record included; nothing set aside is sent.
    await browser.run(() => window.outbox.flush());
    const stats = await waitApplied(server, 4);
    assert.equal(stats.applied, 4);
    assert.equal(stats.requests, 4, 'the copy under the newer format was not sent');
    assert.equal(stats.appliedByKey['older-key'], 1);
    assert.ok(Object.values(stats.appliedByKey).every((n) => n === 1), JSON.stringify(stats.appliedByKey));
    assert.deepEqual(stats.log.find((e) => e.key === 'older-key').body, { older: true });
    await waitFor(async () => (await status(browser)).total === 0, { what: 'an empty queue' });

    // Another instance finds them aside: counted, not reported again.
    await freshWorker(browser, 'again');
    s = await status(browser);
    assert.equal(s.corrupt, 2);
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal((await corruptIds()).length, 2, 'reported once');

    // Their ids are never given again.
    await server.down();
    const after = await queueJson(browser, 'PUT', '/api/concepts/after', { after: true });
    assert.equal(after.status, 202, after.body);
    assert.ok(after.id > newer, `new id ${after.id} comes after the ids set aside`);

    // clear(['corrupt']) removes them and nothing else.
    assert.deepEqual(await browser.run(() => window.outbox.clear(['corrupt'])), { removed: 2 });
    s = await status(browser);
    assert.equal(s.corrupt, 0);
    assert.equal(s.total, 1);
    assert.deepEqual(await corruptRecords(browser), []);
  } finally {
    await server.up();
    await browser.close();
  }
});

// Chromium only: the origin's quota is lowered through the Chrome DevTools
// Protocol (Storage.overrideQuotaForOrigin), so IndexedDB itself refuses.
test('quota: when IndexedDB refuses for lack of space the page gets 507 with a reason, a failed event says why, and nothing queued is touched', { skip: needs('cdp') }, async () => {
  await server.reset();
  const browser = await openBrowser(server, config);
  const origin = new URL(browser.url).origin;
  try {
    // The quota is lowered before anything is stored: Chromium's IndexedDB
    // keeps the space it last found free and only asks again when a write
    // would not fit in it, so the small writes below make it ask.
    const { usage } = await browser.run(() => navigator.storage.estimate());
    await browser.session.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: usage + 256 * 1024 });
    let refused;
    let kept;
    let bodiesBefore;
    try {
      await server.down();
      kept = [];
      for (const n of [1, 2]) {
        const response = await queueJson(browser, 'PUT', `/api/concepts/q${n}`, { n });
        assert.equal(response.status, 202, response.body);
        kept.push(response.id);
      }
      bodiesBefore = await idbRecords(browser, 'bodies');
      // 2 MiB of random bytes: IndexedDB cannot compress them under the quota.
      refused = await browser.run(async () => {
        const body = new Uint8Array(2 * 1024 * 1024);
        for (let at = 0; at < body.length; at += 65536) crypto.getRandomValues(body.subarray(at, at + 65536));
        const response = await fetch('/api/uploads/big', {
          method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body,
        });
        return { status: response.status, type: response.headers.get('content-type'), body: await response.text() };
      });
    } finally {
      await browser.session.send('Storage.overrideQuotaForOrigin', { origin });
    }
    assert.equal(refused.status, 507, refused.body);
    assert.equal(refused.type, 'application/json');
    const reason = JSON.parse(refused.body);
    assert.equal(reason.error, 'quota');
    assert.match(reason.message, /POST .*\/api\/uploads\/big: not queued: .*QuotaExceededError: the browser has no more room/);
    const failed = await waitFor(async () => (await recordedEvents(browser, 'failed'))
      .find((e) => e.detail.reason === 'quota'), { what: 'a failed event' });
    assert.equal(failed.detail.entry, null);
    assert.match(failed.detail.message, /QuotaExceededError/);

    // Nothing queued was touched, on disk or in the queue.
    assert.deepEqual((await entries(browser)).map((e) => [e.id, e.state]), kept.map((id) => [id, 'pending']));
    assert.deepEqual(await idbRecords(browser, 'bodies'), bodiesBefore);
    await server.up();
    await browser.run(() => window.outbox.flush());
    const stats = await waitApplied(server, 2);
    assert.deepEqual(stats.log.map((e) => e.path).sort(), ['/api/concepts/q1', '/api/concepts/q2']);
    assert.equal(stats.requests, 2, 'the refused upload was never sent later');
  } finally {
    await server.up();
    await browser.close();
  }
});

/**
 * Registers the test site's worker with `config` under a scope of its own
 * and gives the state its worker ends in: `activated`, or `refused: <why>`
 * when registering failed (`Outbox.install` throws at the top of the script).
 */
function installOutcome(browser, config, scope) {
  return browser.run(async ({ config, scope }) => {
    const url = `/sw.js?config=${encodeURIComponent(JSON.stringify(config))}`;
    let registration;
    try {
      registration = await navigator.serviceWorker.register(url, { scope });
    } catch (error) {
      return `refused: ${error.message}`;
    }
    const worker = registration.installing || registration.waiting || registration.active;
    const state = await new Promise((resolve) => {
      const settled = () => ['activated', 'redundant'].includes(worker.state);
      if (settled()) resolve(worker.state);
      worker.addEventListener('statechange', () => { if (settled()) resolve(worker.state); });
    });
    await registration.unregister();
    return state;
  }, { config, scope });
}

/** The worker failed to install; where the engine passes its error on, it names `field`. */
function assertRefused(outcome, field) {
  assert.match(outcome, /^refused: /);
  if (outcome.includes('outbox config')) {
    assert.ok(outcome.includes(`outbox config: ${field}: an object with the key "$fn" cannot be part of the config`), outcome);
  } else {
    assert.match(outcome, /script evaluation/i);
  }
}

test('config: data shaped like the outbox\'s function marker is refused at install, real functions are taken', async () => {
  await server.reset();
  const browser = await openBrowser(server, config);
  try {
    // The test site's worker turns the name 'prefer-local-name' into a real function.
    const real = { routes: [{ match: '/api/a/', strategy: 'custom', resolve: 'prefer-local-name' }] };
    assert.equal(await installOutcome(browser, real, '/real/'), 'activated');
    // The same with a second route whose replayHeaders is plain data that
    // names the first route's function by its index.
    const borrowed = { routes: [...real.routes, { match: '/api/b/', replayHeaders: { $fn: 0 } }] };
    assertRefused(await installOutcome(browser, borrowed, '/borrowed/'), 'routes[1].replayHeaders');
    // A marker that names no function at all.
    const dangling = { routes: [{ match: '/api/a/', strategy: 'custom', resolve: { $fn: 7 } }] };
    assertRefused(await installOutcome(browser, dangling, '/dangling/'), 'routes[0].resolve');
  } finally {
    await browser.close();
  }
});
