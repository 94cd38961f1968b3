// The queue inspector: every entry the outbox holds, with retry, cancel and
// flush.

import { clock, h, pathOf } from './format.js';

const RETRYABLE = new Set(['failed', 'waiting_retry']);
const CANCELLABLE = new Set(['pending', 'waiting_retry', 'paused_auth', 'conflict', 'failed', 'blocked']);

export class Inspector {
  #body;
  #outbox;
  #onResolve;
  #onError;

  /** `onResolve(entryId)` opens the conflict dialog; `onError(message)` reports. */
  constructor(root, outbox, { onResolve, onError }) {
    this.#body = root.querySelector('tbody');
    this.#outbox = outbox;
    this.#onResolve = onResolve;
    this.#onError = onError;
    const run = (what, action) => () => action().catch((error) => onError(`${what}: ${error.message}`));
    root.querySelector('[data-action="flush"]').addEventListener('click', run('flush', () => outbox.flush()));
    root.querySelector('[data-action="retry-failed"]').addEventListener('click', run('retry', () => outbox.retry('failed')));
    root.querySelector('[data-action="clear-finished"]').addEventListener('click',
      run('clear', () => outbox.clear(['cancelled', 'superseded'])));
  }

  render(entries) {
    const sorted = [...entries].sort((a, b) => a.id - b.id);
    if (sorted.length === 0) {
      this.#body.replaceChildren(h('tr', { class: 'empty' },
        h('td', { colspan: 10 }, 'The queue is empty: every change has reached the server.')));
      return;
    }
    this.#body.replaceChildren(...sorted.map((entry) => this.#row(entry)));
  }

  #row(entry) {
    const act = (what, action) => () =>
      action().catch((error) => this.#onError(`${what} #${entry.id}: ${error.message}`));
    const buttons = [];
    if (RETRYABLE.has(entry.state)) {
      buttons.push(h('button', { type: 'button', onclick: act('retry', () => this.#outbox.retry(entry.id)) }, 'Retry'));
    }
    if (entry.state === 'conflict') {
      buttons.push(h('button', { type: 'button', onclick: () => this.#onResolve(entry.id) }, 'Resolve…'));
    }
    if (CANCELLABLE.has(entry.state)) {
      buttons.push(h('button', { type: 'button', onclick: act('cancel', () => this.#outbox.cancel(entry.id)) }, 'Cancel'));
    }
    const dependsOn = entry.dependsOn.length > 0 ? ` after #${entry.dependsOn.join(', #')}` : '';
    return h('tr', { 'data-entry': entry.id, 'data-state': entry.state },
      h('td', {}, `#${entry.id}`),
      h('td', { class: 'method' }, entry.method),
      h('td', { class: 'url' }, pathOf(entry.url), dependsOn ? h('small', {}, dependsOn) : null),
      h('td', {}, entry.kind ?? '—'),
      h('td', {}, entry.priority),
      h('td', {}, h('span', { class: `state state-${entry.state}` }, entry.state.replace('_', ' '))),
      h('td', { class: 'number' }, String(entry.attempts)),
      h('td', {}, clock(entry.nextAttemptAt)),
      h('td', { class: 'error' }, entry.lastError ?? '—'),
      h('td', { class: 'actions' }, buttons));
  }
}
