// Workbox BackgroundSync as its documentation suggests for offline POSTs:
// a mutation that cannot reach the network is stored with
// Queue.pushRequest and answered 202; replayRequests() sends the queue
// when the browser fires `sync`, or when the page asks. Bundled with
// esbuild into one classic worker script by the benchmark.
import { Queue } from 'workbox-background-sync';

const API = '/api/';
const queue = new Queue('bench-outbox');

async function handle(original) {
  const copy = original.clone();
  try {
    return await fetch(original);
  } catch (error) {
    await queue.pushRequest({ request: copy });
    return new Response(JSON.stringify({ queued: true }), {
      status: 202,
      headers: { 'content-type': 'application/json' },
    });
  }
}

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method === 'GET' || request.method === 'HEAD' || request.mode === 'navigate') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || !url.pathname.startsWith(API)) return;
  event.respondWith(handle(request));
});

self.addEventListener('message', (event) => {
  const { data } = event;
  const port = event.ports[0];
  if (!data || !port) return;
  const answer = (work) => event.waitUntil(work.then(
    (result) => port.postMessage(result),
    (error) => port.postMessage({ error: String(error) }),
  ));
  if (data.bench === 'size') answer(queue.size().then((size) => ({ size })));
  else if (data.bench === 'replay') answer(queue.replayRequests().then(() => ({ replayed: true })));
});
