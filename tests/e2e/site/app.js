// The test page: registers the worker with the config from the page URL and
// records every outbox event in `window.outboxEvents`.
import { Outbox } from '/outbox/outbox.js';

const params = new URLSearchParams(location.search);
const config = params.get('config');
const script = config ? `/sw.js?config=${encodeURIComponent(config)}` : '/sw.js';
window.outboxEvents = [];
const persist = params.get('persist') === '1';
window.outboxReady = Outbox.register(script, { timeoutMs: 20000, persist }).then((outbox) => {
  window.outbox = outbox;
  for (const name of ['status', 'queued', 'sent', 'failed', 'conflict', 'resolved', 'auth-required']) {
    outbox.addEventListener(name, (event) => window.outboxEvents.push({ name, detail: event.detail }));
  }
  document.getElementById('state').textContent = 'ready';
  return true;
});
