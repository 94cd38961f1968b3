// The limit: the least a service-worker outbox can do. A mutation that
// cannot reach the network is stored with one IndexedDB put and answered
// 202; a drain sends every stored request with a plain concurrent fetch
// loop and deletes each one the server accepted. No ordering, no retry
// policy, no idempotency keys. `?durability=strict|relaxed` picks the
// transactions' durability, so the cost of a durable write shows.

const DURABILITY = new URL(self.location.href).searchParams.get('durability') || 'strict';
const API = '/api/';
const IN_FLIGHT = 16;

let database = null;

function request(idbRequest) {
  return new Promise((resolve, reject) => {
    idbRequest.onsuccess = () => resolve(idbRequest.result);
    idbRequest.onerror = () => reject(idbRequest.error);
  });
}

function open() {
  if (database === null) {
    const opening = indexedDB.open('bench-bare', 1);
    opening.onupgradeneeded = () => {
      opening.result.createObjectStore('requests', { keyPath: 'id', autoIncrement: true });
    };
    database = request(opening);
  }
  return database;
}

async function write(mode, work) {
  const db = await open();
  const transaction = db.transaction('requests', mode, { durability: DURABILITY });
  const result = work(transaction.objectStore('requests'));
  await new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve();
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error || new Error('transaction aborted'));
  });
  return result;
}

async function store(copy) {
  const record = {
    url: copy.url,
    method: copy.method,
    headers: [...copy.headers],
    body: await copy.arrayBuffer(),
  };
  // Answered only once the transaction has committed.
  const id = await write('readwrite', (requests) => request(requests.put(record)));
  return new Response(JSON.stringify({ queued: true, id }), {
    status: 202,
    headers: { 'content-type': 'application/json' },
  });
}

async function handle(original) {
  const copy = original.clone();
  try {
    return await fetch(original);
  } catch (error) {
    return store(copy);
  }
}

async function size() {
  const db = await open();
  return request(db.transaction('requests').objectStore('requests').count());
}

async function replay() {
  const db = await open();
  const records = await request(db.transaction('requests').objectStore('requests').getAll());
  let next = 0;
  let sent = 0;
  const lane = async () => {
    while (next < records.length) {
      const record = records[next++];
      try {
        const response = await fetch(record.url, { method: record.method, headers: record.headers, body: record.body });
        if (response.ok) {
          await write('readwrite', (requests) => requests.delete(record.id));
          sent += 1;
        }
      } catch (error) {
        // Left in the store for the next drain.
      }
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  return sent;
}

self.addEventListener('install', (event) => {
  event.waitUntil(open());
  self.skipWaiting();
});
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  const { request: incoming } = event;
  if (incoming.method === 'GET' || incoming.method === 'HEAD' || incoming.mode === 'navigate') return;
  const url = new URL(incoming.url);
  if (url.origin !== self.location.origin || !url.pathname.startsWith(API)) return;
  event.respondWith(handle(incoming));
});

self.addEventListener('message', (event) => {
  const { data } = event;
  const port = event.ports[0];
  if (!data || !port) return;
  const answer = (work) => event.waitUntil(work.then(
    (result) => port.postMessage(result),
    (error) => port.postMessage({ error: String(error) }),
  ));
  if (data.bench === 'size') answer(size().then((count) => ({ size: count })));
  else if (data.bench === 'replay') answer(replay().then((sent) => ({ sent })));
});
