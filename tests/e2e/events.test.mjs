// Events reach every window: in envelopes to a page whose shim reads them,
// one by one to any other page, in the same order; a command settles after
// the events the worker posted before its reply.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, openBrowser, postRaw, sendAll, testConfig, waitApplied, waitFor, FLUSH_ONLY } from './harness.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server.stop(); });

/** The outbox events a page received, in order, as `name:entry id` (the entry id empty for a status). */
function received(page) {
  return page.run(() => window.rawMessages
    .filter((m) => m !== null && typeof m === 'object' && m.outbox === 1)
    .map((m) => ({ type: m.type, events: m.type === 'events' ? m.events : [m], mark: { worker: m.worker, seq: m.seq } })));
}

const label = ({ event, detail }) => `${event}:${detail?.entry?.id ?? ''}`;
const entryEvents = (labels) => labels.filter((l) => l.startsWith('queued:') || l.startsWith('sent:'));

test('events: a burst reaches the shim in envelopes and a page without the shim one by one, in the same order; flush resolves after its events', async () => {
  await server.call('/control/reset', {});
  const browser = await openBrowser(server, testConfig({ triggers: FLUSH_ONLY }));
  try {
    const plain = await browser.newTab(`${server.app}/index.html?raw=1`);
    // The page's module script may still be starting when the tab reports it loaded (seen in WebKit).
    await waitFor(() => plain.run(() => window.outboxReady !== undefined), { what: 'the page without the shim to run its script' });
    assert.equal(await plain.run(() => window.outboxReady.then(() => Boolean(navigator.serviceWorker.controller))), true,
      'the page without the shim is controlled');
    await server.down();
    const count = 12;
    const results = await sendAll(browser, Array.from({ length: count }, (_, i) => (
      { method: 'PUT', path: `/api/concepts/${i % 3}`, body: { n: i } })));
    assert.deepEqual(results.map((r) => r.status), Array(count).fill(202));
    const ids = results.map((r) => r.entry);
    await server.up();

    // flush() resolves once the drain has ended, and its reply settles once
    // the shim has dispatched the events posted before it: every `sent`.
    const sentAtReply = await browser.run(async () => {
      await window.outbox.flush();
      return window.outboxEvents.filter((e) => e.name === 'sent').map((e) => e.detail.entry.id);
    });
    assert.deepEqual([...sentAtReply].sort((a, b) => a - b), ids, 'every sent event came before flush resolved');
    await waitApplied(server, count);

    const shimMessages = await received(browser);
    const envelopes = shimMessages.filter((m) => m.type === 'events');
    assert.ok(envelopes.some((m) => m.events.length > 1),
      `some envelope carries several events: ${JSON.stringify(shimMessages.map((m) => m.events.length))}`);
    const shimOrder = entryEvents(shimMessages.flatMap((m) => m.events.map(label)));

    // What the shim dispatched is what came in the envelopes.
    const dispatched = await browser.run(() => window.outboxEvents
      .filter((e) => e.name === 'queued' || e.name === 'sent')
      .map((e) => `${e.name}:${e.detail.entry.id}`));
    assert.deepEqual(dispatched, shimOrder);

    // The page without the shim gets each event alone, the same ones in the
    // same order, ending with a status.
    const plainMessages = await waitFor(async () => {
      const messages = await received(plain);
      const order = entryEvents(messages.flatMap((m) => m.events.map(label)));
      return order.length >= shimOrder.length ? messages : false;
    }, { what: 'the events at the page without the shim' });
    assert.deepEqual([...new Set(plainMessages.map((m) => m.type))], ['event']);
    assert.deepEqual(entryEvents(plainMessages.flatMap((m) => m.events.map(label))), shimOrder);

    // Every entry was queued before it was sent; one entity's entries were
    // sent in queue order.
    for (const id of ids) {
      const queued = shimOrder.indexOf(`queued:${id}`);
      const sent = shimOrder.indexOf(`sent:${id}`);
      assert.ok(queued >= 0 && sent > queued, `entry ${id}: queued at ${queued}, sent at ${sent}`);
    }
    for (let entity = 0; entity < 3; entity++) {
      const mine = ids.filter((_, i) => i % 3 === entity).map((id) => `sent:${id}`);
      assert.deepEqual(shimOrder.filter((l) => mine.includes(l)), mine, `entity ${entity} in queue order`);
    }
    // Each envelope names its worker instance and number, counting up.
    const marks = envelopes.map((m) => m.mark);
    assert.equal(new Set(marks.map((m) => m.worker)).size, 1, 'one worker instance');
    for (let i = 1; i < marks.length; i++) assert.ok(marks[i].seq > marks[i - 1].seq, `numbers count up: ${JSON.stringify(marks)}`);
    // A reply names the last envelope its page got; a page without
    // envelopes gets replies as before.
    const shimReply = await postRaw(browser, { outbox: 1, id: 1, type: 'status', features: ['events'] });
    assert.equal(shimReply.type, 'ok');
    assert.equal(shimReply.after.worker, marks[0].worker);
    assert.ok(shimReply.after.seq >= marks[marks.length - 1].seq, JSON.stringify(shimReply.after));
    const plainReply = await postRaw(plain, { outbox: 1, id: 1, type: 'status' });
    assert.equal(plainReply.type, 'ok');
    assert.equal(plainReply.after, undefined);
    // A batch's status comes after its other events.
    for (const { events } of envelopes) {
      const status = events.findIndex((e) => e.event === 'status');
      assert.ok(status === -1 || status === events.length - 1, `status last: ${events.map((e) => e.event)}`);
      assert.ok(events.filter((e) => e.event === 'status').length <= 1);
    }
  } finally {
    await browser.close();
  }
});
