// The control strip: drives the reference server's control API to try the
// outbox out. The API is on a port of its own that stays up while the app
// port is down; `/control/info` on the app port says where it is.

import { h } from './format.js';

const CONTROL_KEY = 'concept-map:control';

export class Controls {
  #root;
  #model;
  #outbox;
  #notify;
  #url = null;

  constructor(root, { model, outbox, notify }) {
    this.#root = root;
    this.#model = model;
    this.#outbox = outbox;
    this.#notify = notify;
    const on = (selector, event, action) => root.querySelector(selector).addEventListener(event, (e) => {
      e.preventDefault();
      action(e.currentTarget).catch((error) => notify(`Control: ${error.message}`));
    });
    on('[data-action="down"]', 'click', () => this.#down());
    on('[data-action="up"]', 'click', () => this.#up());
    on('[data-action="reset"]', 'click', () => this.#reset());
    on('form[data-action="fail"]', 'submit', (form) => this.#fail(form));
    on('form[data-action="edit"]', 'submit', (form) => this.#edit(form));
  }

  /** Finds the control port and shows the server's state. */
  async start() {
    try {
      const info = await (await fetch('/control/info')).json();
      this.#url = info.control;
      localStorage.setItem(CONTROL_KEY, this.#url);
    } catch {
      // The app port is down (the page came from the worker's cache).
      this.#url = localStorage.getItem(CONTROL_KEY) ?? `${location.protocol}//${location.hostname}:${Number(location.port) + 1}`;
    }
    const stats = await this.#call('stats');
    this.#showServer(!stats.down);
  }

  /** Lists the items "another client" can edit. */
  render(concepts, connections, describeConnection) {
    const select = this.#root.querySelector('select[name="target"]');
    const chosen = select.value;
    const options = [
      ...concepts.map((c) => h('option', { value: `concepts/${c.id}` }, `concept ${c.name}`)),
      ...connections.map((c) => h('option', { value: `connections/${c.id}` }, `connection ${describeConnection(c)}`)),
    ];
    select.replaceChildren(...options);
    if (options.some((option) => option.value === chosen)) select.value = chosen;
  }

  async #down() {
    await this.#call('down', {});
    this.#showServer(false);
    await this.#model.refresh();
  }

  /** Like a page that learns the server is back: read it, then drain. */
  async #up() {
    await this.#call('up', {});
    this.#showServer(true);
    await this.#model.refresh();
    await this.#outbox.flush();
  }

  async #fail(form) {
    const count = Number(form.elements.count.value);
    const status = Number(form.elements.status.value);
    await this.#call('fail', { count, status });
    this.#notify(`The server answers the next ${count} changes with ${status}.`);
  }

  async #edit(form) {
    const [kind, id] = form.elements.target.value.split('/');
    if (!id) throw new Error('there is nothing to edit yet');
    const value = form.elements.value.value;
    const body = kind === 'concepts' ? { name: value } : { label: value };
    const edited = await this.#call('edit', { kind, id, body, mode: 'patch' }).catch((error) => {
      throw new Error(`another client cannot edit ${kind}/${id}: ${error.message} (is it on the server yet?)`);
    });
    this.#notify(`Another client set ${kind === 'concepts' ? 'the name' : 'the label'} of ${kind}/${id} to "${value}" (now v${edited.version}).`);
    await this.#model.refresh();
  }

  async #reset() {
    await this.#call('reset', {});
    await this.#outbox.clear();
    this.#model.forget();
    this.#showServer(true);
    await this.#model.refresh();
  }

  #showServer(up) {
    const state = this.#root.querySelector('.server-state');
    state.textContent = up ? 'up' : 'down';
    state.dataset.up = String(up);
  }

  async #call(action, body) {
    const response = await fetch(`${this.#url}/control/${action}`, body === undefined ? {} : {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.message ?? answer.error ?? `HTTP ${response.status}`);
    return answer;
  }
}
