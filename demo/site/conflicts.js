// The conflict dialog: base, mine and theirs side by side with the fields
// that differ highlighted; keep mine, keep theirs, or edit a merged version.

import { h, pathOf, show } from './format.js';
import { SERVER_FIELDS } from './model.js';

/** Fields kept out of the table: the server's and the page's bookkeeping. */
const HIDDEN_FIELDS = new Set([...SERVER_FIELDS, 'createdAt']);

export class ConflictDialog {
  #dialog;
  #model;
  #describe;
  #showValue;
  #onError;
  #entryId = null;
  #conflict = null;
  #waiting = [];

  /** `describe(entry)` names the item for the title; `showValue(field,
   * value)` gives a field's value as text. */
  constructor(dialog, model, { describe, showValue = (field, value) => show(value), onError }) {
    this.#dialog = dialog;
    this.#model = model;
    this.#describe = describe;
    this.#showValue = showValue;
    this.#onError = onError;
    for (const button of dialog.querySelectorAll('[data-use]')) {
      button.addEventListener('click', () => this.#settle(button.dataset.use));
    }
    dialog.querySelector('[data-action="edit"]').addEventListener('click', () => this.#edit());
    dialog.querySelector('[data-action="later"]').addEventListener('click', () => this.#next());
    dialog.addEventListener('cancel', (event) => {
      event.preventDefault();
      this.#next();
    });
  }

  /** Shows the conflict of `entryId` now, or after the one on screen. */
  ask(entryId) {
    if (this.#entryId === entryId || this.#waiting.includes(entryId)) return;
    if (this.#entryId === null) this.#show(entryId);
    else this.#waiting.push(entryId);
  }

  #show(entryId) {
    const conflict = this.#model.conflictOf(entryId);
    if (!conflict) {
      this.#next();
      return;
    }
    this.#entryId = entryId;
    this.#conflict = conflict;
    const { entry, base, local, remote, pointers, reason } = conflict;
    const dialog = this.#dialog;
    dialog.classList.remove('editing');
    dialog.querySelector('[data-use="merged"]').hidden = true;
    dialog.querySelector('[data-action="edit"]').hidden = false;
    dialog.querySelector('h2').textContent = `Conflict: ${this.#describe(entry)}`;
    dialog.querySelector('.conflict-reason').textContent =
      `#${entry.id} ${entry.method} ${pathOf(entry.url)}: ${reason}. ` +
      'Your change was queued while someone else changed the same item.';

    const fields = [...new Set([base, local, remote].flatMap((side) => (isObject(side) ? Object.keys(side) : [])))]
      .filter((field) => !HIDDEN_FIELDS.has(field));
    const clashing = new Set(pointers.map((pointer) => pointer.slice(1).split('/')[0]));
    const rows = fields.map((field) => {
      const [b, l, r] = [base, local, remote].map((side) => (isObject(side) ? side[field] : undefined));
      const differs = !same(l, r);
      const cell = (value, side) => h('td', {
        class: [side, isObject(base) && !same(value, b) ? 'changed' : ''].join(' ').trim(),
      }, this.#showValue(field, value));
      const kind = typeof (l ?? r);
      const input = h('input', {
        'aria-label': `Merged ${field}`,
        'data-field': field,
        'data-kind': kind === 'number' || kind === 'string' ? kind : 'json',
        type: kind === 'number' ? 'number' : 'text',
        value: editable(clashing.has(field) || !same(l, b) ? l : r),
      });
      return h('tr', {
        'data-field': field,
        class: [differs ? 'differs' : '', clashing.has(field) ? 'clash' : ''].join(' ').trim(),
      }, h('th', { scope: 'row' }, field), cell(b, 'base'), cell(l, 'local'), cell(r, 'remote'), h('td', { class: 'merged' }, input));
    });
    dialog.querySelector('tbody').replaceChildren(...rows);
    const version = (side) => (isObject(side) && side.version !== undefined ? `v${side.version}` : 'unknown');
    dialog.querySelector('.versions').textContent =
      `Base ${version(base)}, theirs ${version(remote)}. Highlighted: fields that differ; red: changed on both sides.`;
    if (!dialog.open) dialog.showModal();
  }

  #edit() {
    const dialog = this.#dialog;
    dialog.classList.add('editing');
    dialog.querySelector('[data-use="merged"]').hidden = false;
    dialog.querySelector('[data-action="edit"]').hidden = true;
    dialog.querySelector('input[data-field]')?.focus();
  }

  async #settle(use) {
    const entryId = this.#entryId;
    let body;
    if (use === 'merged') {
      const remote = isObject(this.#conflict.remote) ? this.#conflict.remote : {};
      body = { ...remote };
      for (const input of this.#dialog.querySelectorAll('input[data-field]')) {
        const value = parseInput(input);
        if (value === undefined) delete body[input.dataset.field];
        else body[input.dataset.field] = value;
      }
    }
    try {
      await this.#model.resolve(entryId, use, body);
    } catch (error) {
      this.#onError(`resolving #${entryId}: ${error.message}`);
    }
    this.#next();
  }

  #next() {
    this.#entryId = null;
    this.#conflict = null;
    const waiting = this.#waiting.shift();
    if (waiting !== undefined) this.#show(waiting);
    else this.#dialog.close();
  }
}

/** A value as an input's text; a missing field is empty. */
function editable(value) {
  return value === undefined ? '' : show(value);
}

/** An input's value as the type its field had; undefined drops the field. */
function parseInput(input) {
  if (input.dataset.kind === 'number') return Number(input.value);
  if (input.dataset.kind === 'json') {
    if (input.value === '') return undefined;
    try {
      return JSON.parse(input.value);
    } catch {
      return input.value;
    }
  }
  return input.value;
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}
