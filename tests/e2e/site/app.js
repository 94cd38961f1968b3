// The test page: registers the worker with the config from the page URL and
// records every outbox event in `window.outboxEvents`.
import { Outbox } from '/outbox/outbox.js';

const params = new URLSearchParams(location.search);
const config = params.get('config');
const script = config ? `/sw.js?config=${encodeURIComponent(config)}` : '/sw.js';
window.outboxEvents = [];
// Every message from the worker, as it came.
window.rawMessages = [];
navigator.serviceWorker.addEventListener('message', (event) => window.rawMessages.push(event.data));
const persist = params.get('persist') === '1';
window.outboxReady = params.get('raw') === '1' ? listenOnly() : register();

// A page without the shim (as one with an older shim): it only listens, and
// is ready once a worker controls it.
async function listenOnly() {
  await navigator.serviceWorker.ready;
  navigator.serviceWorker.startMessages();
  return true;
}

async function register() {
  const outbox = await Outbox.register(script, { timeoutMs: 20000, persist });
  window.outbox = outbox;
  for (const name of ['status', 'queued', 'sent', 'failed', 'conflict', 'resolved', 'auth-required']) {
    outbox.addEventListener(name, (event) => window.outboxEvents.push({ name, detail: event.detail }));
  }
  document.getElementById('state').textContent = 'ready';
  return true;
}
