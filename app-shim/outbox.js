// sw-outbox page shim: registers the worker, sends commands, re-dispatches
// the worker's events. Protocol: README.md, "Protocol" (version 1). Types: outbox.d.ts.

const PROTOCOL = 1;
// Protocol features this shim reads: `events`, several events in one message.
const FEATURES = ['events'];
const DEFAULT_TIMEOUT_MS = 10000;
const DEFAULT_CONTROL_TIMEOUT_MS = 15000;
// How long a reply waits for the events the worker posted before it.
const AFTER_EVENTS_TIMEOUT_MS = 2000;

// Module-wide so request ids stay unique across Outbox objects on one page.
let nextRequestId = 1;

export class Outbox extends EventTarget {
  /** @type {ServiceWorkerRegistration} */ registration;
  #timeoutMs;
  #listening = new AbortController();
  #authProvider = null;
  #authRunning = false;
  #authAgain = false;
  /** Whether the origin's storage is persistent: null until known or where the API is missing. */
  #persisted = null;
  /** The last envelope of events dispatched: its worker instance and number. */
  #seen = { worker: null, seq: 0 };
  /** Replies waiting for an envelope: `{after, release}`. */
  #waiting = [];

  /** Use `Outbox.register`; the constructor only wires listeners. */
  constructor(registration, options = {}) {
    super();
    this.registration = registration;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const signal = this.#listening.signal;

    navigator.serviceWorker.addEventListener('message', (event) => this.#onMessage(event), { signal });
    // NOTE: messages from a worker wait in the client's queue until the page
    // has finished parsing or startMessages() is called; start now so events
    // sent while this module loads are not held back.
    navigator.serviceWorker.startMessages();
    // Tells each worker that controls this page that it may batch events.
    navigator.serviceWorker.addEventListener('controllerchange', () => this.#hello(), { signal });
    if (navigator.serviceWorker.controller) this.#hello();

    if (options.flushOnOnline ?? true) {
      window.addEventListener('online', () => this.#flushInBackground('online'), { signal });
    }
    if (options.flushOnVisible ?? true) {
      document.addEventListener('visibilitychange', () => {
        if (document.visibilityState === 'visible') this.#flushInBackground('visibilitychange');
      }, { signal });
    }
  }

  static async register(scriptUrl, options = {}) {
    if (typeof navigator === 'undefined' || !('serviceWorker' in navigator)) {
      throw new Error('outbox: service workers are not available here (they need a secure context: https or localhost)');
    }
    let registration;
    try {
      registration = await navigator.serviceWorker.register(
        scriptUrl, options.scope === undefined ? undefined : { scope: options.scope });
    } catch (error) {
      throw new Error(`outbox: could not register the service worker ${scriptUrl}: ${error?.message ?? error}`, { cause: error });
    }
    // Listen before waiting, so events sent while the worker activates arrive.
    const outbox = new Outbox(registration, options);
    if (options.persist) {
      // Asks the browser not to evict the queue under storage pressure; the
      // answer shows in status().persisted.
      await outbox.#askPersist();
    }
    try {
      await waitForControl(registration, options.controlTimeoutMs ?? DEFAULT_CONTROL_TIMEOUT_MS);
    } catch (error) {
      outbox.close();
      throw error;
    }
    return outbox;
  }

  /** Stops events and automatic flushes. Commands still work. */
  close() {
    this.#listening.abort();
    // No envelope reaches this object any more: waiting replies settle now.
    for (const waiting of [...this.#waiting]) waiting.release();
  }

  /** The worker's status, with `persisted` from this page's StorageManager. */
  async status() {
    const status = await this.#send('status');
    await this.#readPersisted();
    return { ...status, persisted: this.#persisted };
  }

  async #askPersist() {
    if (typeof navigator.storage?.persist !== 'function') return;
    try {
      this.#persisted = await navigator.storage.persist();
    } catch (error) {
      console.warn('outbox: navigator.storage.persist() failed:', error);
    }
  }

  async #readPersisted() {
    if (typeof navigator.storage?.persisted !== 'function') return;
    try {
      this.#persisted = await navigator.storage.persisted();
    } catch {
      // Keeps the last known answer.
    }
  }

  async entries(filter) {
    const result = await this.#send('entries', filter === undefined ? {} : { filter });
    return result.entries;
  }

  /** No timeout: the reply comes when the drain it started or joined ends. */
  flush() { return this.#send('flush', {}, { timed: false }); }

  retry(entry) { return this.#send('retry', { entry }); }

  cancel(entry) { return this.#send('cancel', { entry }); }

  /**
   * Without states the worker removes every entry, unsent ones included, and
   * every record set aside as corrupt; 'corrupt' in the list names those.
   */
  clear(states) { return this.#send('clear', states === undefined ? {} : { states }); }

  /**
   * Makes `user` (a string id, or null) the current user: entries stored
   * from now on carry it, and entries of other users are held, never sent
   * with this user's credentials, until their user is current again. The
   * worker forgets auth headers given for the previous user; the provider
   * given to setAuth, if any, is asked for this user's, which the worker
   * takes in the same step as the switch.
   */
  async setUser(user) {
    if (user !== null && (typeof user !== 'string' || user === '')) {
      throw new TypeError('outbox: setUser takes a non-empty string id, or null');
    }
    let headers;
    if (this.#authProvider !== null) {
      try {
        headers = await this.#authHeaders();
      } catch (error) {
        console.warn('outbox: could not get auth headers for the new user:', error);
      }
    }
    return this.#send('user', headers === undefined ? { user } : { user, headers });
  }

  /**
   * The current user signs out; then there is no current user, and the
   * worker has forgotten the auth headers it was given. With
   * `{discard: true}` their queued entries are removed (a `discarded` event
   * lists them); by default (`{keep: true}`) they stay, held until that user
   * is current again.
   */
  async logout(options = {}) {
    const { discard = false, keep = false } = options;
    if (typeof discard !== 'boolean' || typeof keep !== 'boolean') {
      throw new TypeError('outbox: logout takes {discard: true} or {keep: true}');
    }
    if (discard && keep) {
      throw new TypeError('outbox: logout takes {discard: true} or {keep: true}, not both');
    }
    return this.#send('logout', { discard });
  }

  resolve(entry, { use, body }) {
    return this.#send('resolve', body === undefined ? { entry, use } : { entry, use, body });
  }

  /** Stores the provider and sends its headers now, so paused entries resume. */
  setAuth(provider) {
    this.#authProvider = provider;
    return this.#sendAuth();
  }

  async #sendAuth() {
    return this.#send('auth', { headers: await this.#authHeaders() });
  }

  async #authHeaders() {
    const init = await this.#authProvider();
    // A plain object goes as written; Headers or pairs become one (postMessage
    // cannot clone Headers). Building Headers also rejects bad names and values.
    const checked = new Headers(init);
    return init instanceof Headers || Array.isArray(init) ? Object.fromEntries(checked) : { ...init };
  }

  // Many entries can pause at once: ask the provider once per burst, and once
  // more if another entry paused while it was running.
  async #onAuthRequired() {
    if (this.#authProvider === null) return;
    if (this.#authRunning) { this.#authAgain = true; return; }
    this.#authRunning = true;
    try {
      do {
        this.#authAgain = false;
        try {
          await this.#sendAuth();
        } catch (error) {
          console.warn('outbox: could not send fresh auth headers:', error);
        }
      } while (this.#authAgain);
    } finally {
      this.#authRunning = false;
    }
  }

  /**
   * Names the protocol features this shim reads, before any other command
   * (every command names them too, as a restarted worker has forgotten).
   * A worker that knows `events` then posts a batch of events as one
   * message; an older one answers with an error, and keeps posting each
   * event alone.
   */
  #hello() {
    this.#send('hello').catch(() => {});
  }

  #onMessage(event) {
    const data = event.data;
    // Anything without the marker belongs to the site's own code: leave it be.
    if (data === null || typeof data !== 'object' || data.outbox !== PROTOCOL) return;
    if (data.type === 'event') {
      this.#dispatch(data);
    } else if (data.type === 'events' && Array.isArray(data.events)) {
      for (const one of data.events) {
        if (one !== null && typeof one === 'object') this.#dispatch(one);
      }
      if (typeof data.worker === 'string' && Number.isInteger(data.seq)) this.#dispatched(data.worker, data.seq);
    }
  }

  #dispatched(worker, seq) {
    this.#seen = worker === this.#seen.worker ? { worker, seq: Math.max(seq, this.#seen.seq) } : { worker, seq };
    for (const waiting of [...this.#waiting]) {
      if (this.#hasSeen(waiting.after)) waiting.release();
    }
  }

  #hasSeen(after) {
    return after.worker === this.#seen.worker && after.seq <= this.#seen.seq;
  }

  /**
   * Resolves once this page has dispatched the events of the envelope a
   * reply names in `after` (the last the worker posted to it before the
   * reply, which the browser may deliver later than the reply); at once
   * without one, and after a while if it never comes.
   */
  #afterEvents(after) {
    if (after === null || typeof after !== 'object' || typeof after.worker !== 'string' ||
        !Number.isInteger(after.seq) || this.#listening.signal.aborted || this.#hasSeen(after)) {
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const waiting = {
        after,
        release: () => {
          clearTimeout(timer);
          this.#waiting = this.#waiting.filter((other) => other !== waiting);
          resolve();
        },
      };
      const timer = setTimeout(waiting.release, AFTER_EVENTS_TIMEOUT_MS);
      this.#waiting.push(waiting);
    });
  }

  #dispatch({ event, detail }) {
    if (typeof event !== 'string') return;
    const shown = event === 'status' && detail !== null && typeof detail === 'object'
      ? { ...detail, persisted: this.#persisted }
      : detail;
    this.dispatchEvent(new CustomEvent(event, { detail: shown }));
    if (event === 'auth-required') this.#onAuthRequired();
  }

  #flushInBackground(reason) {
    this.flush().catch((error) => console.warn(`outbox: flush on ${reason} failed:`, error));
  }

  async #send(type, fields = {}, { timed = true } = {}) {
    const timeoutMs = this.#timeoutMs;
    // Read the controller at send time: an updated worker may have taken over.
    const controller = await currentController(type, timeoutMs);
    const id = nextRequestId++;
    const channel = new MessageChannel();
    const reply = new Promise((resolve, reject) => {
      channel.port1.onmessage = ({ data }) => {
        // The reply settles after the events the worker posted before it.
        this.#afterEvents(data?.after).then(() => {
          if (data?.type === 'ok') resolve(data.result);
          else if (data?.type === 'error') reject(new Error(data.message));
          else reject(new Error(`outbox: unexpected reply to '${type}'`));
        });
      };
      channel.port1.onmessageerror = () => reject(new Error(`outbox: unreadable reply to '${type}'`));
    });
    controller.postMessage({ outbox: PROTOCOL, id, type, features: FEATURES, ...fields }, [channel.port2]);
    try {
      return await (timed
        ? withTimeout(reply, timeoutMs, `outbox: no reply to '${type}' within ${timeoutMs} ms`)
        : reply);
    } finally {
      channel.port1.close();
    }
  }
}

async function waitForControl(registration, timeoutMs) {
  if (navigator.serviceWorker.controller) return;
  // A worker whose install throws (e.g. a bad Outbox.install config) never
  // controls anything: fail at once rather than after the timeout.
  const worker = registration.installing ?? registration.waiting;
  const failed = new Promise((_, reject) => worker?.addEventListener('statechange', () => {
    if (worker.state === 'redundant' && !navigator.serviceWorker.controller) {
      reject(new Error('outbox: the service worker failed to install or activate (see its console)'));
    }
  }));
  failed.catch(() => {}); // losing the race to control is not an error
  await Promise.race([failed, controllerChange(timeoutMs,
    `outbox: the page is not controlled by the service worker after ${timeoutMs} ms ` +
    '(the worker must call clients.claim() on activate, its scope must cover this page, ' +
    'and a hard reload (Shift+Reload) bypasses service workers)')]);
}

async function currentController(type, timeoutMs) {
  const message = `outbox: no service worker controls this page; '${type}' not sent within ${timeoutMs} ms`;
  if (!navigator.serviceWorker.controller) await controllerChange(timeoutMs, message);
  // controllerchange also fires when the controller goes away.
  const controller = navigator.serviceWorker.controller;
  if (!controller) throw new Error(message);
  return controller;
}

/** Resolves on the next controllerchange; rejects with `message` after timeoutMs. */
function controllerChange(timeoutMs, message) {
  const listening = new AbortController();
  const changed = new Promise((resolve) => navigator.serviceWorker.addEventListener(
    'controllerchange', resolve, { once: true, signal: listening.signal }));
  return withTimeout(changed, timeoutMs, message).finally(() => listening.abort());
}

function withTimeout(promise, ms, message) {
  if (!Number.isFinite(ms)) return promise; // setTimeout(fn, Infinity) would fire at once
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(message)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
