// The map the page shows: the server's last known state plus the changes
// this page queued, both kept in localStorage so that a reload, even without
// a server, shows everything the user did.
//
// The outbox lists each queued entry's method, URL and state, but not its
// body, so the page keeps a copy of what it sent, keyed by the entry id the
// worker answers with (`Outbox-Entry`), until the entry leaves the queue.

import { clock, pathOf } from './format.js';

export const KINDS = ['concepts', 'connections', 'checkpoints'];
/** Kinds the page edits in place; their routes are conditional. */
const EDITABLE = ['concepts', 'connections'];
const FINAL_STATES = new Set(['done', 'cancelled', 'superseded']);
/** Fields the server sets on every write. */
export const SERVER_FIELDS = ['id', 'version', 'updatedAt'];
const SNAPSHOT_KEY = 'concept-map:snapshot';
const QUEUED_KEY = 'concept-map:queued';

export class MapModel extends EventTarget {
  constructor(outbox) {
    super();
    this.outbox = outbox;
    /** kind -> id -> entity, as the server last showed it. */
    this.snapshot = load(SNAPSHOT_KEY, emptySnapshot());
    /** Changes waiting in the outbox: `{entry, method, kind, id, body, base}`. */
    this.queued = load(QUEUED_KEY, []).map((record) => ({ ...record, generation: 0 }));
    /** The outbox's entries by id, as last listed. */
    this.entries = new Map();
    /** Conflict event details by entry id, for the dialog. */
    this.conflicts = new Map();
    /** The outbox's status, from its events and from asking. */
    this.status = null;
    this.reachableAt = 0;
    this.unreachableAt = 0;
    // Counts queued records, so an entries() answer requested before a
    // record existed never makes the page forget it.
    this.generation = 0;
    this.touched = new Set();

    outbox.addEventListener('status', (event) => {
      this.status = event.detail;
      this.dispatchEvent(new Event('status'));
    });
    outbox.addEventListener('sent', (event) => this.#onSent(event.detail));
    outbox.addEventListener('resolved', (event) => this.#onResolved(event.detail));
    outbox.addEventListener('conflict', (event) => {
      this.reachableAt = Date.now();
      this.conflicts.set(event.detail.entry.id, event.detail);
    });
    outbox.addEventListener('failed', (event) => {
      const { entry, message, reason } = event.detail;
      if (reason === 'http_status') this.reachableAt = Date.now();
      const what = entry ? `#${entry.id} ${entry.method} ${pathOf(entry.url)}` : 'A change';
      this.#notify(`${what} failed (${message}). Retry or cancel it in the queue below.`);
    });
    for (const name of ['queued', 'sent', 'failed', 'conflict', 'resolved']) {
      outbox.addEventListener(name, () => this.syncEntries());
    }
  }

  /** Whether the server answered more recently than it failed to. */
  get reachable() {
    return this.reachableAt >= this.unreachableAt;
  }

  /** The items of a kind as the page shows them, queued changes applied. */
  view(kind) {
    const items = new Map(
      Object.entries(this.snapshot[kind]).map(([id, entity]) => [id, { ...entity, $state: null, $entry: null }]),
    );
    for (const record of this.queued) {
      if (record.kind !== kind) continue;
      const state = this.entries.get(record.entry)?.state ?? 'pending';
      if (FINAL_STATES.has(state)) continue;
      const current = items.get(record.id);
      if (record.method === 'DELETE') {
        if (current) items.set(record.id, { ...current, $state: state, $entry: record.entry, $deleting: true });
      } else {
        items.set(record.id, { ...current, ...record.body, id: record.id, $state: state, $entry: record.entry });
      }
    }
    const list = [...items.values()];
    list.sort((a, b) => (a.createdAt ?? 0) - (b.createdAt ?? 0) || String(a.id).localeCompare(String(b.id)));
    return list;
  }

  item(kind, id) {
    return this.view(kind).find((item) => item.id === id) ?? null;
  }

  // ---- what the user does ------------------------------------------------

  addConcept(name) {
    return this.#mutate('POST', 'concepts', newId(), { name, createdAt: Date.now() });
  }

  renameConcept(id, name) {
    const item = this.item('concepts', id);
    return this.#mutate('PUT', 'concepts', id, { ...plain(item), name });
  }

  /** Deletes the concept's connections first, then the concept after them. */
  async deleteConcept(id) {
    const attached = this.view('connections').filter((c) => !c.$deleting && (c.from === id || c.to === id));
    for (const connection of attached) await this.#mutate('DELETE', 'connections', connection.id);
    const dependsOn = attached.flatMap((connection) => this.#openEntries('connections', connection.id));
    return this.#mutate('DELETE', 'concepts', id, undefined, dependsOn);
  }

  /** A connection waits in the queue for the concepts it joins. */
  connect(from, to, label, weight) {
    const dependsOn = [...this.#openEntries('concepts', from), ...this.#openEntries('concepts', to)];
    return this.#mutate('POST', 'connections', newId(), { from, to, label, weight, createdAt: Date.now() }, dependsOn);
  }

  editConnection(id, label, weight) {
    const item = this.item('connections', id);
    return this.#mutate('PUT', 'connections', id, { ...plain(item), label, weight });
  }

  deleteConnection(id) {
    return this.#mutate('DELETE', 'connections', id);
  }

  saveCheckpoint() {
    const concepts = this.view('concepts').filter((c) => !c.$deleting).map(({ id, name }) => ({ id, name }));
    const connections = this.view('connections')
      .filter((c) => !c.$deleting)
      .map(({ id, from, to, label, weight }) => ({ id, from, to, label, weight }));
    const createdAt = Date.now();
    const name = `Map at ${clock(createdAt)}`;
    return this.#mutate('POST', 'checkpoints', newId(), { name, createdAt, concepts, connections });
  }

  /** Settles a conflict the worker left to the page. */
  async resolve(entryId, use, body) {
    await this.outbox.resolve(entryId, body === undefined ? { use } : { use, body });
    this.conflicts.delete(entryId);
    const record = this.queued.find((r) => r.entry === entryId);
    if (use === 'merged' && record) record.body = body;
    if (use === 'remote') {
      this.#drop(entryId);
      await this.refresh();
    }
    this.#save();
    this.syncEntries();
  }

  /** What the conflict dialog shows for an entry: the event's detail, or
   * after a reload the entry's conflict with the page's own copy. */
  conflictOf(entryId) {
    const detail = this.conflicts.get(entryId);
    if (detail) return detail;
    const entry = this.entries.get(entryId);
    if (!entry?.conflict) return null;
    const record = this.queued.find((r) => r.entry === entryId);
    const { remote, pointers, reason } = entry.conflict;
    return { entry, base: record?.base ?? null, local: record?.body ?? null, remote, pointers, reason };
  }

  /** Forgets everything the page kept (for "start over"). */
  forget() {
    this.snapshot = emptySnapshot();
    this.queued = [];
    this.conflicts.clear();
    this.#save();
    this.#changed();
  }

  // ---- keeping the view current ------------------------------------------

  /** Lists the outbox's entries and reads its status again; calls made
   * meanwhile are folded into one. */
  syncEntries() {
    if (this.syncing) {
      this.syncAgain = true;
      return;
    }
    this.syncing = true;
    (async () => {
      do {
        this.syncAgain = false;
        const generation = this.generation;
        try {
          const [list, status] = await Promise.all([this.outbox.entries(), this.outbox.status()]);
          this.status = status;
          this.entries = new Map(list.map((entry) => [entry.id, entry]));
          this.#forgetFinished(generation);
          this.#noteAttempts(list);
        } catch (error) {
          console.warn('concept map: listing the outbox failed:', error);
        }
        this.#changed();
      } while (this.syncAgain);
      this.syncing = false;
    })();
  }

  /** Reads the server's state; false when it cannot be reached. Calls made
   * meanwhile are folded into one more read. */
  refresh() {
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      let reached;
      do {
        this.refreshAgain = false;
        reached = await this.#refreshOnce();
      } while (this.refreshAgain);
      return reached;
    })().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  async #refreshOnce() {
    this.touched = new Set();
    const next = emptySnapshot();
    try {
      const lists = await Promise.all(KINDS.map((kind) => getJson(`/api/${kind}/`)));
      KINDS.forEach((kind, index) => {
        for (const entity of lists[index] ?? []) next[kind][entity.id] = entity;
      });
      // Reading an entity by its own URL records it in the outbox as the
      // version the next edit starts from; reading a list does not.
      const reads = [];
      for (const kind of EDITABLE) {
        for (const [id, entity] of Object.entries(next[kind])) {
          if (this.snapshot[kind][id]?.version === entity.version) continue;
          reads.push(getJson(`/api/${kind}/${encodeURIComponent(id)}`).then((read) => {
            if (read) next[kind][id] = read;
            else delete next[kind][id];
          }));
        }
      }
      await Promise.all(reads);
    } catch (error) {
      if (error instanceof TypeError) this.unreachableAt = Date.now();
      else this.#notify(`Reading the map failed: ${error.message}`);
      this.#changed();
      return false;
    }
    // Answers that arrived while the lists were read are newer than them.
    for (const key of this.touched) {
      const [kind, id] = key.split('/');
      if (this.snapshot[kind][id]) next[kind][id] = this.snapshot[kind][id];
      else delete next[kind][id];
    }
    this.snapshot = next;
    this.reachableAt = Date.now();
    this.#save();
    this.#changed();
    return true;
  }

  // ---- internals ---------------------------------------------------------

  /** Sends a change with plain fetch: the outbox sends it or queues it. */
  async #mutate(method, kind, id, body, dependsOn = []) {
    const path = `/api/${kind}/${encodeURIComponent(id)}`;
    const headers = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (dependsOn.length > 0) headers['outbox-depends-on'] = dependsOn.join(', ');
    const base = this.snapshot[kind][id] ?? null;
    let response;
    try {
      response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (error) {
      this.#notify(`${method} ${path} failed: ${error.message}`);
      return;
    }
    const entry = response.headers.get('outbox-entry');
    if (response.status === 202 && entry !== null) {
      this.generation += 1;
      this.queued.push({ entry: Number(entry), generation: this.generation, method, kind, id, body: body ?? null, base });
      this.#save();
      this.#changed();
      this.syncEntries();
      return;
    }
    this.reachableAt = Date.now();
    // The answer went through the outbox: its last sync time moved.
    this.syncEntries();
    const answer = await readJson(response);
    if (response.ok) {
      this.#apply(kind, id, method, answer);
    } else if (response.status === 409 || response.status === 412) {
      this.#notify(`Not saved: ${path} was changed elsewhere meanwhile. The page now shows the server's version; edit it again.`);
      await this.refresh();
    } else {
      this.#notify(
        `Not saved: the server answered ${method} ${path} with ${response.status}. ` +
          'The outbox hands a live answer to the page as it is; it queues only what cannot reach the server.',
      );
    }
    this.#changed();
  }

  /** The latest attempts tell whether the server answers: a network error
   * says it does not, an HTTP status that it does. */
  #noteAttempts(entries) {
    for (const { lastAttemptAt, lastError } of entries) {
      if (lastAttemptAt === null) continue;
      if (lastError?.startsWith('network')) this.unreachableAt = Math.max(this.unreachableAt, lastAttemptAt);
      else if (lastError?.startsWith('HTTP')) this.reachableAt = Math.max(this.reachableAt, lastAttemptAt);
    }
  }

  /** Entry ids of this entity's changes still in the queue. */
  #openEntries(kind, id) {
    return this.queued
      .filter((r) => r.kind === kind && r.id === id && !FINAL_STATES.has(this.entries.get(r.entry)?.state))
      .map((r) => r.entry);
  }

  #onSent({ entry, body }) {
    this.reachableAt = Date.now();
    this.#drop(entry.id);
    const target = parseTarget(entry.url);
    if (target) this.#apply(target.kind, target.id, entry.method, body);
    this.#save();
    this.#changed();
  }

  #onResolved({ entry, kept }) {
    this.conflicts.delete(entry.id);
    const what = `#${entry.id} ${entry.method} ${pathOf(entry.url)}`;
    if (kept === 'remote') {
      this.#drop(entry.id);
      this.#save();
      this.#notify(`${what}: the change made elsewhere stands; yours was superseded.`);
      this.refresh();
    } else if (kept === 'merged') {
      this.#notify(`${what}: merged with a change made elsewhere; sending the result.`);
    }
    this.#changed();
  }

  /** Applies the server's answer to a change. */
  #apply(kind, id, method, body) {
    this.touched.add(`${kind}/${id}`);
    if (method === 'DELETE') {
      delete this.snapshot[kind][id];
    } else if (body && typeof body === 'object' && typeof body.id === 'string') {
      const known = this.snapshot[kind][body.id];
      if (!known || !(known.version > body.version)) this.snapshot[kind][body.id] = body;
    }
    this.#save();
  }

  /** Drops copies of entries that left the queue or ended; re-reads the
   * server when one left without this page seeing it sent. */
  #forgetFinished(generation) {
    let unseen = false;
    this.queued = this.queued.filter((record) => {
      if (record.generation > generation) return true;
      const entry = this.entries.get(record.entry);
      if (!entry) unseen = true;
      return entry !== undefined && !FINAL_STATES.has(entry.state);
    });
    for (const id of this.conflicts.keys()) {
      if (this.entries.get(id)?.state !== 'conflict') this.conflicts.delete(id);
    }
    this.#save();
    if (unseen) this.refresh();
  }

  #drop(entryId) {
    this.queued = this.queued.filter((record) => record.entry !== entryId);
  }

  #save() {
    const queued = this.queued.map(({ generation, ...record }) => record);
    localStorage.setItem(SNAPSHOT_KEY, JSON.stringify(this.snapshot));
    localStorage.setItem(QUEUED_KEY, JSON.stringify(queued));
  }

  #changed() {
    this.dispatchEvent(new Event('change'));
  }

  #notify(message) {
    this.dispatchEvent(new CustomEvent('notice', { detail: message }));
  }
}

function emptySnapshot() {
  return Object.fromEntries(KINDS.map((kind) => [kind, {}]));
}

function load(key, fallback) {
  try {
    return JSON.parse(localStorage.getItem(key)) ?? fallback;
  } catch {
    return fallback;
  }
}

function newId() {
  return crypto.randomUUID().slice(0, 8);
}

/** An item without the page's own bookkeeping fields. */
function plain(item) {
  return Object.fromEntries(Object.entries(item ?? {}).filter(([name]) => !name.startsWith('$')));
}

/** `{kind, id}` of an API URL, or null. */
function parseTarget(url) {
  const match = /^\/api\/([^/]+)\/([^/]+)$/.exec(pathOf(url));
  return match && KINDS.includes(match[1]) ? { kind: match[1], id: decodeURIComponent(match[2]) } : null;
}

/** JSON of a GET; null for 404; throws TypeError when the server cannot be reached. */
async function getJson(path) {
  const response = await fetch(path, { headers: { accept: 'application/json' } });
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(`GET ${path}: HTTP ${response.status}`);
  return response.json();
}

async function readJson(response) {
  const text = await response.text();
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return text;
  }
}
