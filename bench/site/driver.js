// The benchmark page's driver: the same workload for every subject, sent
// with plain `fetch` from the page, and the few subject-specific calls
// (status, drain trigger, queue size, clearing) behind one interface.
// Loaded by each subject's generated index.html as `start(subject)`.

const BODY_BYTES = 1024;
const API = '/api/uploads/';
const DIRECT_BATCH = 5000;

/** A JSON body of exactly BODY_BYTES bytes carrying a unique mutation id. */
export function body(mid, seq, entity) {
  const head = JSON.stringify({ mid, seq, entity, pad: '' });
  return JSON.stringify({ mid, seq, entity, pad: 'x'.repeat(Math.max(0, BODY_BYTES - head.length)) });
}

/** Path and body of mutation `i` of a batch (`entities` 0: one path per mutation). */
function mutation(prefix, i, entities) {
  const entity = entities > 0 ? `${prefix}-e${i % entities}` : `${prefix}-${i}`;
  const mid = `${prefix}-${i}`;
  return { path: API + entity, mid, body: body(mid, Math.floor(entities > 0 ? i / entities : 0), entity) };
}

async function post(path, text) {
  const response = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: text });
  await response.arrayBuffer();
  return response.status;
}

function tally(statuses, status) {
  statuses[status] = (statuses[status] || 0) + 1;
}

/** Posts to the controlling worker over a MessageChannel and waits for its one reply. */
function ask(message, timeoutMs = 600000) {
  return new Promise((resolve, reject) => {
    const controller = navigator.serviceWorker.controller;
    if (!controller) {
      reject(new Error('the page has no controlling worker'));
      return;
    }
    const channel = new MessageChannel();
    const timer = setTimeout(() => reject(new Error(`no reply to ${JSON.stringify(message)}`)), timeoutMs);
    channel.port1.onmessage = ({ data }) => {
      clearTimeout(timer);
      channel.port1.close();
      if (data && data.error) reject(new Error(data.error));
      else resolve(data);
    };
    controller.postMessage(message, [channel.port2]);
  });
}

function request(idbRequest) {
  return new Promise((resolve, reject) => {
    idbRequest.onsuccess = () => resolve(idbRequest.result);
    idbRequest.onerror = () => reject(idbRequest.error);
  });
}

function done(transaction) {
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve();
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error || new Error('transaction aborted'));
  });
}

/** Removes every record of one object store of a database the worker made. */
async function clearStore(name, store) {
  const db = await request(indexedDB.open(name));
  try {
    if (!db.objectStoreNames.contains(store)) return;
    const transaction = db.transaction(store, 'readwrite');
    transaction.objectStore(store).clear();
    await done(transaction);
  } finally {
    db.close();
  }
}

function controlled() {
  if (navigator.serviceWorker.controller) return Promise.resolve();
  return new Promise((resolve) => {
    navigator.serviceWorker.addEventListener('controllerchange', () => resolve(), { once: true });
  });
}

/**
 * Registers the subject's worker (if any) and defines `window.bench`.
 * `subject`: `{kind: 'outbox'|'workbox'|'bare'|'none', worker: script URL or null}`.
 */
export async function start(subject) {
  let outbox = null;
  if (subject.kind === 'outbox') {
    const { Outbox } = await import('/outbox/outbox.js');
    // Generous: at a deep queue a slow status() is a result, not an error.
    outbox = await Outbox.register(subject.worker, { timeoutMs: 600000, controlTimeoutMs: 60000 });
  } else if (subject.worker) {
    await navigator.serviceWorker.register(subject.worker);
    await controlled();
  }

  const bench = {
    kind: subject.kind,

    /** `count` sequential POSTs, each timed from fetch() to its whole answer. */
    async sequence({ prefix, count, entities = 0 }) {
      const latencies = [];
      const statuses = {};
      for (let i = 0; i < count; i++) {
        const { path, body: text } = mutation(prefix, i, entities);
        const started = performance.now();
        const status = await post(path, text);
        latencies.push(performance.now() - started);
        tally(statuses, status);
      }
      return { latencies, statuses };
    },

    /** One status read, timed: the outbox's status(), the queue's size elsewhere. */
    async status() {
      const started = performance.now();
      let value;
      if (outbox) value = (await outbox.status()).total;
      else if (subject.worker) value = (await ask({ bench: 'size' })).size;
      else value = null;
      return { ms: performance.now() - started, value };
    },

    /** `count` status reads one after the other; each one's time, in ms. */
    async statuses(count) {
      const times = [];
      for (let i = 0; i < count; i++) times.push((await bench.status()).ms);
      return times;
    },

    /** Entries waiting in the queue (null without a worker). */
    async queued() {
      if (outbox) {
        const status = await outbox.status();
        return { total: status.total, draining: status.draining, pending: status.counts.pending };
      }
      if (subject.worker) return { total: (await ask({ bench: 'size' })).size, draining: false };
      return null;
    },

    /** Starts a drain and returns at once; the server's log tells when it ends. */
    trigger() {
      if (outbox) {
        window.benchDrain = outbox.flush();
      } else {
        window.benchDrain = ask({ bench: 'replay' });
      }
      window.benchDrain.catch((error) => console.error('drain failed', error));
      return true;
    },

    /** Empties the queue. */
    async clear() {
      if (outbox) {
        await outbox.clear();
      } else if (subject.kind === 'workbox') {
        await clearStore('workbox-background-sync', 'requests');
      } else if (subject.kind === 'bare') {
        await clearStore('bench-bare', 'requests');
      }
      return true;
    },

    /**
     * Adds `count` entries to Workbox's queue (offline): one through the real
     * path, the rest as copies of its stored record with their own URL and
     * body, written straight into Workbox's store in large transactions.
     */
    async fillWorkbox({ prefix, count }) {
      const first = mutation(prefix, 0, 0);
      if ((await post(first.path, first.body)) !== 202) throw new Error('the template entry was not queued');
      const db = await request(indexedDB.open('workbox-background-sync'));
      try {
        const cursor = await request(db.transaction('requests').objectStore('requests').openCursor(null, 'prev'));
        const template = cursor.value;
        for (let start = 1; start < count; start += DIRECT_BATCH) {
          const transaction = db.transaction('requests', 'readwrite', { durability: 'relaxed' });
          const store = transaction.objectStore('requests');
          for (let i = start; i < Math.min(count, start + DIRECT_BATCH); i++) {
            const { path, body: text } = mutation(prefix, i, 0);
            const { id, ...copy } = template;
            copy.requestData = {
              ...template.requestData,
              url: new URL(path, location.href).href,
              body: new TextEncoder().encode(text).buffer,
            };
            copy.timestamp = Date.now();
            store.add(copy);
          }
          await done(transaction);
        }
      } finally {
        db.close();
      }
      return true;
    },

    /**
     * Adds `count` entries to sw-outbox's queue (offline): one through the
     * real path, the rest as copies of the record it stored, each with its
     * own id, URL, entity, Idempotency-Key and body, written straight into
     * its database (`entries`, `bodies`, and `meta.nextId` past the last id)
     * in large transactions. The worker reads the queue when it starts, so
     * the caller stops it afterwards.
     */
    async fillOutbox({ prefix, count }) {
      const first = mutation(prefix, 0, 0);
      if ((await post(first.path, first.body)) !== 202) throw new Error('the template entry was not queued');
      const db = await request(indexedDB.open('sw-outbox'));
      try {
        const reading = db.transaction(['entries', 'meta']);
        const cursor = await request(reading.objectStore('entries').openCursor(null, 'prev'));
        const stored = await request(reading.objectStore('meta').get('nextId'));
        const template = JSON.parse(cursor.value);
        if (template.v !== 2 || template.id !== cursor.key || template.entity !== new URL(template.url).pathname ||
            new URL(template.url).pathname !== first.path) {
          throw new Error(`unexpected stored record ${cursor.value}`);
        }
        let nextId = Math.max(Number(stored) || 1, cursor.key + 1);
        for (let start = 1; start < count; start += DIRECT_BATCH) {
          const transaction = db.transaction(['entries', 'bodies', 'meta'], 'readwrite', { durability: 'relaxed' });
          const entries = transaction.objectStore('entries');
          const bodies = transaction.objectStore('bodies');
          for (let i = start; i < Math.min(count, start + DIRECT_BATCH); i++) {
            const { path, body: text } = mutation(prefix, i, 0);
            const bytes = new TextEncoder().encode(text);
            const key = crypto.randomUUID();
            const id = nextId++;
            const record = {
              ...template,
              id,
              url: new URL(path, location.href).href,
              entity: path,
              idempotencyKey: key,
              headers: template.headers.map(([name, value]) =>
                [name, name.toLowerCase() === 'idempotency-key' ? key : value]),
              bodyBytes: bytes.length,
            };
            entries.add(JSON.stringify(record), id);
            bodies.add(bytes, id);
          }
          transaction.objectStore('meta').put(nextId, 'nextId');
          await done(transaction);
        }
      } finally {
        db.close();
      }
      return true;
    },

    /** Writes `count` queued records straight into the bare worker's store. */
    async fillDirect({ prefix, count }) {
      const db = await request(indexedDB.open('bench-bare'));
      try {
        for (let first = 0; first < count; first += DIRECT_BATCH) {
          const transaction = db.transaction('requests', 'readwrite', { durability: 'relaxed' });
          const store = transaction.objectStore('requests');
          for (let i = first; i < Math.min(count, first + DIRECT_BATCH); i++) {
            const { path, body: text } = mutation(prefix, i, 0);
            store.add({
              url: new URL(path, location.href).href,
              method: 'POST',
              headers: [['content-type', 'application/json']],
              body: new TextEncoder().encode(text).buffer,
            });
          }
          await done(transaction);
        }
      } finally {
        db.close();
      }
      return true;
    },
  };
  window.bench = bench;
  return true;
}
