// The status badge: connection, queue counts, last sync and drain progress,
// from the outbox's status.

import { clock } from './format.js';

export class Badge {
  #root;

  constructor(root) {
    this.#root = root;
  }

  /** Shows the outbox's status (null until known) and whether the browser
   * and the server can be reached. */
  render(status, { browserOnline, serverReachable }) {
    const root = this.#root;
    let connection = 'online';
    let text = 'Online';
    if (!browserOnline) {
      connection = 'offline';
      text = 'Offline: no network';
    } else if (!serverReachable) {
      connection = 'offline';
      text = 'Offline: server unreachable';
    }
    root.dataset.connection = connection;
    root.querySelector('.connection-text').textContent = text;
    if (!status) return;

    const c = status.counts;
    const counts = {
      pending: c.pending + c.waiting_retry + c.paused_auth,
      inFlight: status.inFlight,
      failed: c.failed,
      blocked: c.blocked,
      conflict: c.conflict,
    };
    for (const [name, value] of Object.entries(counts)) {
      const element = root.querySelector(`[data-count="${name}"]`);
      element.querySelector('b').textContent = String(value);
      element.classList.toggle('zero', value === 0);
    }
    root.querySelector('[data-count="pending"]').title =
      `${c.pending} waiting to be sent, ${c.waiting_retry} waiting to retry, ${c.paused_auth} waiting for auth`;
    root.querySelector('.last-sync time').textContent = clock(status.lastSuccessAt, 'never');

    const progress = root.querySelector('progress');
    progress.hidden = !status.draining;
    progress.max = Math.max(status.progress.total, 1);
    progress.value = status.progress.done;
    progress.title = `sending: ${status.progress.done} of ${status.progress.total}`;
    const unreadable = status.unreadable.length + status.corrupt;
    const trouble = status.storeError ?? (unreadable > 0 ? `${unreadable} unreadable entries` : null);
    root.querySelector('.trouble').textContent = trouble ?? '';
  }
}
