// The chaos soak: real Chromium against the reference server. T tabs send N
// mutations over M entities while, at moments a seeded PRNG picks, the
// harness stops the service worker, restarts the whole browser on the same
// profile, takes the browser offline, takes the server down, and makes the
// server answer 500/503/429 or apply a request and then drop the connection.
// At the end, with faults off and a final drain, it checks what the outbox
// promises: every acknowledged mutation applied exactly once, each entity's
// mutations applied in the order the pages issued them, the queue empty and
// nothing left in flight. See soak/README.md.
//
// `node soak/run.mjs [--seed N] [--mutations N] [--entities N] [--tabs N]
//   [--kills N] [--restarts N] [--offline N] [--downs N] [--fails N]
//   [--drops N] [--quiet]`
//
// Environment: OUTBOX_SERVER (reference server binary), OUTBOX_DIST
// (dist/outbox), CHROMIUM, as for the end-to-end tests; `cargo xtask soak`
// sets all three.
import { fileURLToPath } from 'node:url';
import { rmSync } from 'node:fs';
import {
  startServer, openBrowser, openTab, testConfig, status, entries,
} from '../tests/e2e/harness.mjs';

/** The outbox config of the soak: the test routes, fast retries. */
export const SOAK_CONFIG = testConfig({
  retry: { baseDelayMs: 100, maxDelayMs: 1000, maxAttempts: 100 },
  limits: { attemptTimeoutMs: 10000 },
});

/** Statuses the server's fault injection answers with. */
const FAULT_STATUSES = [500, 503, 429];

/** A page fetch that gets no answer within this time is given up and sent again. */
const PAGE_FETCH_TIMEOUT_MS = 30000;

/** A mutation sent this many times without an acknowledgement is given up (a problem; never acknowledged). */
const MAX_DELIVERY_ATTEMPTS = 500;

/** How long after a worker stop or browser restart a page fetch may be left without an answer by it. */
const DISRUPTION_EFFECT_MS = 5000;

/** The longest an offline or down window lasts, whatever the progress. */
const WINDOW_CAP_MS = 4000;

/** Fault counts for `mutations` when none are given: the full soak's share. */
export function defaultFaults(mutations) {
  const scaled = (per, least) => Math.max(least, Math.round(mutations / per));
  return {
    kills: scaled(200, 2),
    restarts: scaled(1000, 1),
    offline: scaled(500, 1),
    downs: scaled(500, 1),
    fails: scaled(250, 2),
    drops: scaled(250, 2),
  };
}

/** A small, fast PRNG (mulberry32) on a 32-bit seed; gives floats in [0, 1). */
export function prng(seed) {
  let state = (Number(BigInt.asUintN(32, BigInt(seed))) ^ 0x9e3779b9) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The whole schedule for a seed: the mutations (entity, method, body, key,
 * tab) and the fault events, each at a number of acknowledged mutations.
 * Each entity's methods follow its state (created with PUT or POST, then
 * PUT, PATCH or DELETE), so every mutation changes the server's state when
 * applied in order, and the server logs it.
 */
export function plan({ seed, mutations: count, entities, tabs, kills, restarts, offline, downs, fails, drops }) {
  const random = prng(seed);
  const int = (low, high) => low + Math.floor(random() * (high - low + 1));
  const pick = (list) => list[Math.floor(random() * list.length)];

  const models = new Map();
  const mutations = [];
  for (let index = 0; index < count; index++) {
    const id = int(1, entities);
    const model = models.get(id) || { fields: null, count: 0, last: null };
    models.set(id, model);
    const k = model.count++;
    const r = random();
    let method;
    let body;
    if (model.fields === null) {
      method = r < 0.5 ? 'PUT' : 'POST';
      body = { seq: index, k, name: `c${id}-${k}` };
      model.fields = { ...body };
    } else if (r < 0.35) {
      method = 'PUT';
      body = { seq: index, k, name: `c${id}-${k}` };
      model.fields = { ...body };
    } else if (r < 0.8) {
      method = 'PATCH';
      body = { seq: index, k, note: `n${k}` };
      model.fields = { ...model.fields, ...body };
    } else {
      method = 'DELETE';
      body = { seq: index, k };
      model.fields = null;
    }
    const mutation = {
      index,
      k,
      id,
      path: `/api/concepts/${id}`,
      method,
      body,
      key: `soak-${seed}-${index}`,
      tab: int(0, tabs - 1),
      prev: model.last,
    };
    model.last = mutation;
    mutations.push(mutation);
  }
  const finalState = new Map([...models].map(([id, model]) => [id, model.fields]));

  // Fault events between 2 % and 95 % of the run, at acknowledgement counts.
  const low = Math.floor(count * 0.02);
  const high = Math.max(low, Math.floor(count * 0.95));
  const positions = (n) => Array.from({ length: n }, () => int(low, high)).sort((a, b) => a - b);
  const events = [];
  for (const at of positions(kills)) events.push({ at, kind: 'kill' });
  for (const at of positions(restarts)) events.push({ at, kind: 'restart' });
  // Window starts at least 2 apart, so that each makes a window (when the
  // run is long enough to hold them).
  const starts = (n) => {
    const chosen = [];
    for (let tries = 0; chosen.length < n && tries < n * 100; tries++) {
      const at = int(low, high);
      if (!chosen.some((c) => Math.abs(c - at) < 2)) chosen.push(at);
    }
    return chosen.sort((a, b) => a - b);
  };
  for (const [kind, n] of [['offline', offline], ['down', downs]]) {
    const begins = starts(n);
    begins.forEach((at, i) => {
      const next = i + 1 < begins.length ? begins[i + 1] : count;
      // Windows of one kind never overlap: each ends before the next begins.
      const length = Math.max(1, Math.min(int(Math.ceil(count / 100), Math.ceil(count / 25)), next - at - 1));
      if (next - at > 1) events.push({ at, kind, until: at + length });
    });
  }
  for (const at of positions(fails)) {
    const status = pick(FAULT_STATUSES);
    const retryAfter = status === 500 ? null : pick(['1', null]);
    events.push({ at, kind: 'fail', count: int(2, 10), status, retryAfter });
  }
  for (const at of positions(drops)) events.push({ at, kind: 'drop', count: int(1, 4) });
  // Stable: events at the same count keep the order of their kinds above.
  events.sort((a, b) => a.at - b.at);
  return { mutations, events, finalState };
}

/** Sends one mutation from inside a page; never throws. */
async function sendInPage({ method, path, body, key, timeoutMs }) {
  const controlled = navigator.serviceWorker.controller !== null;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  let stage = 'fetch';
  let status = null;
  try {
    const response = await fetch(path, {
      method,
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      body,
      signal: abort.signal,
    });
    stage = 'body';
    status = response.status;
    const text = await response.text();
    return {
      status: response.status,
      entry: response.headers.get('outbox-entry'),
      body: text.length > 300 ? `${text.slice(0, 300)}…` : text,
      controlled,
    };
  } catch (error) {
    return { error: `${stage}${status === null ? '' : ` of a ${status}`}: ${error.name}: ${error.message}`, controlled };
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function firstLine(error) {
  return String((error && error.message) || error).split('\n')[0];
}

/** A promise with its resolve function outside. */
function deferred() {
  let resolve;
  const promise = new Promise((r) => { resolve = r; });
  return { promise, resolve };
}

/** Counts how often each text occurs, keeping at most `limit` distinct texts. */
function tally(map, text, limit = 20) {
  if (map.has(text) || map.size < limit) map.set(text, (map.get(text) || 0) + 1);
}

/**
 * Runs the soak. Options: `seed`, `mutations`, `entities`, `tabs`, fault
 * counts (`kills`, `restarts`, `offline`, `downs`, `fails`, `drops`; each
 * defaults to `defaultFaults(mutations)`), `log` (a function given progress
 * lines), `drainTimeoutMs`, `stallMs`. Gives `{ok, figures, problems, line,
 * replay}`; `line` is the one line of figures.
 */
export async function soak(options = {}) {
  const started = Date.now();
  const settings = {
    seed: 1,
    mutations: 500,
    entities: 50,
    tabs: 3,
    ...defaultFaults(options.mutations ?? 500),
    ...Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)),
  };
  const log = settings.log || (() => {});
  const drainTimeoutMs = settings.drainTimeoutMs ?? 180000;
  const stallMs = settings.stallMs ?? 120000;
  const { mutations, events, finalState } = plan(settings);
  const problems = [];
  const figures = {
    seed: settings.seed,
    mutations: mutations.length,
    entities: settings.entities,
    tabs: settings.tabs,
    acked: 0,
    direct: 0,
    queued: 0,
    unanswered: 0,
    refused: 0,
    uncontrolled: 0,
    kills: 0,
    restarts: 0,
    offline: 0,
    downs: 0,
    faultsArmed: { 500: 0, 503: 0, 429: 0, drop: 0 },
    faultsServed: { 500: 0, 503: 0, 429: 0, drop: 0 },
    serverFaults: 0,
    lost: 0,
    unacknowledged: 0,
    appliedTwice: 0,
    orderViolations: 0,
    stateMismatches: 0,
    unexplainedNoAnswer: 0,
    receivedTwice: 0,
    conflictResends: 0,
    wallSeconds: 0,
  };
  const unansweredWhy = new Map();
  // When the worker was last stopped or the browser restarted: a page fetch
  // left without an answer soon after is explained by it.
  let lastDisruptionAt = 0;
  const notes = [];
  const eventLog = [];
  const replay = replayCommand(settings);

  const server = await startServer();
  let session = null;
  let profile = null;
  let acked = 0;
  let aborted = null;
  let gate = null;
  const windows = { offline: null, down: null };

  const openSession = async () => {
    const browser = await openBrowser(server, SOAK_CONFIG, { profile: profile ?? undefined });
    profile = browser.profile;
    const tabs = [browser];
    while (tabs.length < settings.tabs) tabs.push(await openTab(browser));
    for (const tab of tabs) {
      if (!(await tab.run(() => Boolean(window.outbox)))) {
        throw new Error(`the test page did not load the outbox shim (is ${server.app}/outbox/outbox.js served?)`);
      }
    }
    return { browser, tabs };
  };

  for (const mutation of mutations) {
    mutation.ack = deferred();
    mutation.acked = null;
    mutation.unanswered = 0;
    mutation.refused = 0;
  }

  const deliver = async (mutation) => {
    const body = JSON.stringify(mutation.body);
    for (let attempt = 1; ; attempt++) {
      while (gate) await gate;
      if (aborted) return;
      if (attempt > MAX_DELIVERY_ATTEMPTS) {
        problems.push(`mutation ${mutation.index} (${mutation.method} ${mutation.path}) got no acknowledgement in ${MAX_DELIVERY_ATTEMPTS} attempts`);
        break;
      }
      const tab = session.tabs[mutation.tab];
      let result;
      try {
        result = await tab.run(sendInPage, {
          method: mutation.method, path: mutation.path, body, key: mutation.key, timeoutMs: PAGE_FETCH_TIMEOUT_MS,
        });
      } catch (error) {
        result = { error: `page: ${firstLine(error)}`, controlled: true };
      }
      if (!result.controlled) figures.uncontrolled += 1;
      if (result.error) {
        // No answer: the request may or may not have been stored or applied.
        // Send it again with the same Idempotency-Key, as an app would.
        mutation.unanswered += 1;
        figures.unanswered += 1;
        tally(unansweredWhy, result.error.replace(/\d+/g, 'N'));
        if (!gate && Date.now() - lastDisruptionAt > DISRUPTION_EFFECT_MS) {
          figures.unexplainedNoAnswer += 1;
          if (notes.length < 10) {
            notes.push(`${((Date.now() - started) / 1000).toFixed(1)} s: mutation #${mutation.index} (${mutation.method} ${mutation.path}) got no answer (${result.error}) with no worker stop or browser restart in the ${DISRUPTION_EFFECT_MS / 1000} s before`);
          }
        }
        await sleep(50);
        continue;
      }
      if (result.status === 202 && result.entry !== null) {
        mutation.acked = 'queued';
        figures.queued += 1;
      } else if (result.status >= 200 && result.status < 300) {
        mutation.acked = 'direct';
        figures.direct += 1;
      } else if (FAULT_STATUSES.includes(result.status) && result.body.includes('injected')) {
        // The server's answer reached the page unchanged, as promised; the
        // mutation was not applied. Send it again with the same key.
        mutation.refused += 1;
        figures.refused += 1;
        await sleep(50);
        continue;
      } else {
        mutation.acked = `answered ${result.status}`;
        problems.push(`mutation ${mutation.index} (${mutation.method} ${mutation.path}, key ${mutation.key}) was answered ${result.status}: ${result.body}`);
      }
      break;
    }
    acked += 1;
    if (mutation.acked === 'queued' || mutation.acked === 'direct') figures.acked += 1;
    if (acked % Math.max(1, Math.round(mutations.length / 10)) === 0) {
      log(`soak: ${acked}/${mutations.length} acknowledged after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
  };

  // Each tab sends its mutations one after the other. A mutation waits until
  // the previous mutation of its entity (from any tab) was acknowledged, so
  // each entity's mutations are issued in a known order.
  const tabLoop = async (tab) => {
    for (const mutation of mutations) {
      if (mutation.tab !== tab) continue;
      if (mutation.prev) await mutation.prev.ack.promise;
      if (aborted) return;
      await deliver(mutation);
      mutation.ack.resolve();
    }
  };

  const perform = async (event) => {
    const at = acked;
    const begin = Date.now();
    switch (event.kind) {
      case 'kill':
        lastDisruptionAt = Date.now();
        try {
          await session.browser.stopWorker();
          figures.kills += 1;
        } catch (error) {
          problems.push(`stopping the worker failed: ${firstLine(error)}`);
        }
        break;
      case 'restart': {
        let release;
        gate = new Promise((resolve) => { release = resolve; });
        lastDisruptionAt = Date.now();
        try {
          await session.browser.close({ keepProfile: true });
          // The pages come from the app port, so it must be up to reopen them.
          if (windows.down) await endWindow('down');
          session = await openSession();
          if (windows.offline) await session.browser.offline(true);
          figures.restarts += 1;
        } finally {
          lastDisruptionAt = Date.now();
          gate = null;
          release();
        }
        break;
      }
      case 'offline':
        await session.browser.offline(true);
        windows.offline = { until: event.until, deadline: Date.now() + WINDOW_CAP_MS };
        break;
      case 'down':
        await server.down();
        windows.down = { until: event.until, deadline: Date.now() + WINDOW_CAP_MS };
        break;
      case 'fail':
        await server.fail({ count: event.count, status: event.status, retryAfter: event.retryAfter });
        figures.faultsArmed[event.status] += event.count;
        break;
      case 'drop':
        await server.drop({ count: event.count });
        figures.faultsArmed.drop += event.count;
        break;
      default:
        throw new Error(`unknown event ${event.kind}`);
    }
    const line = `${event.kind}${event.count ? `×${event.count}` : ''}${event.status ? ` ${event.status}` : ''} at ${at} acks (${Date.now() - begin} ms)`;
    eventLog.push(line);
    log(`soak: ${((Date.now() - started) / 1000).toFixed(1)} s: ${line}`);
  };

  const endWindow = async (kind) => {
    windows[kind] = null;
    if (kind === 'offline') {
      await session.browser.offline(false);
      figures.offline += 1;
    } else {
      await server.up();
      figures.downs += 1;
    }
    eventLog.push(`${kind} ends at ${acked} acks`);
    log(`soak: ${((Date.now() - started) / 1000).toFixed(1)} s: ${kind} ends at ${acked} acks`);
  };

  // The chaos loop: performs each event once enough mutations were
  // acknowledged, one at a time, and every event even when the pages were
  // faster; watches for a stall.
  let tabsFinished = false;
  const chaos = async () => {
    let next = 0;
    let lastAcked = -1;
    let lastProgress = Date.now();
    while (!aborted && !(tabsFinished && next >= events.length)) {
      for (const kind of ['offline', 'down']) {
        const window = windows[kind];
        if (window && (acked >= window.until || Date.now() >= window.deadline)) await endWindow(kind);
      }
      if (next < events.length && acked >= events[next].at) {
        const event = events[next++];
        if ((event.kind === 'offline' || event.kind === 'down') && windows[event.kind]) continue;
        await perform(event);
        continue;
      }
      if (acked !== lastAcked) {
        lastAcked = acked;
        lastProgress = Date.now();
      } else if (Date.now() - lastProgress > stallMs) {
        aborted = `no mutation was acknowledged for ${stallMs / 1000} s (${acked}/${mutations.length} acknowledged)`;
        break;
      }
      await sleep(10);
    }
    for (const kind of ['offline', 'down']) if (windows[kind]) await endWindow(kind);
  };

  let queueStatus = null;
  let leftEntries = [];
  let stats = null;
  try {
    session = await openSession();
    log(`soak: seed ${settings.seed}, ${mutations.length} mutations over ${settings.entities} entities from ${settings.tabs} tabs, ${events.length} fault events`);
    const chaosDone = chaos().catch((error) => { aborted = `the fault loop failed: ${firstLine(error)}`; });
    const tabsDone = Promise.all(Array.from({ length: settings.tabs }, (_, tab) => tabLoop(tab)))
      .then(() => { tabsFinished = true; });
    await Promise.race([tabsDone, chaosDone.then(() => { if (aborted) throw new Error(aborted); return tabsDone; })]);
    await chaosDone;
    if (aborted) throw new Error(aborted);

    // Faults off (what was armed and not yet served is counted first), then
    // the final drain.
    const armedLeft = (await server.stats()).faults;
    const left = { 500: 0, 503: 0, 429: 0, drop: 0 };
    for (const rule of armedLeft.fail) left[rule.status] = (left[rule.status] || 0) + rule.count;
    for (const rule of armedLeft.drop) left.drop += rule.count;
    for (const key of Object.keys(figures.faultsArmed)) figures.faultsServed[key] = figures.faultsArmed[key] - left[key];
    await server.fail({ count: 0 });
    await server.drop({ count: 0 });
    await server.up();
    await session.browser.offline(false);
    log(`soak: every mutation acknowledged after ${((Date.now() - started) / 1000).toFixed(1)} s; faults off; final drain`);
    if (unansweredWhy.size) log(`soak: page fetches without an answer: ${JSON.stringify(Object.fromEntries(unansweredWhy))}`);
    ({ queueStatus, leftEntries } = await finalDrain(session.tabs[0], drainTimeoutMs));
    stats = await server.stats();
    stats.entities = await server.entities();
  } catch (error) {
    problems.push(`the run stopped: ${firstLine(error)}`);
  } finally {
    aborted ||= 'the run ended';
    if (session) await session.browser.close({ keepProfile: true }).catch(() => {});
    await server.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  }

  if (stats) check({ stats, mutations, finalState, figures, problems });
  if (queueStatus) {
    if (queueStatus.total !== 0) {
      const byState = {};
      for (const entry of leftEntries) byState[entry.state] = (byState[entry.state] || 0) + 1;
      problems.push(`the queue is not empty after the final drain: ${JSON.stringify(byState)}; first: ${JSON.stringify(leftEntries.slice(0, 3))}`);
    }
    if (queueStatus.counts.in_flight !== 0) problems.push(`${queueStatus.counts.in_flight} entries stuck in flight`);
  }
  figures.unacknowledged = mutations.filter((m) => m.acked === null).length;
  figures.serverFaults = Object.values(figures.faultsServed).reduce((a, b) => a + b, 0);
  figures.wallSeconds = (Date.now() - started) / 1000;
  const ok = problems.length === 0;
  return {
    ok,
    figures,
    problems,
    events: eventLog,
    notes,
    unansweredWhy: Object.fromEntries(unansweredWhy),
    line: figuresLine(figures, ok),
    replay,
  };
}

/** Flushes from `tab` until the queue is empty, nothing sendable is left, or the time is up. */
async function finalDrain(tab, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let timer;
    await Promise.race([
      tab.run(() => window.outbox.flush()).catch(() => null),
      new Promise((resolve) => { timer = setTimeout(resolve, Math.max(0, Math.min(30000, deadline - Date.now()))); }),
    ]);
    clearTimeout(timer);
    const queueStatus = await status(tab);
    if (queueStatus.total === 0 && !queueStatus.draining) return { queueStatus, leftEntries: [] };
    const leftEntries = await entries(tab);
    const sendable = leftEntries.filter((e) => ['pending', 'waiting_retry', 'in_flight'].includes(e.state));
    if ((sendable.length === 0 && !queueStatus.draining) || Date.now() > deadline) return { queueStatus, leftEntries };
    await sleep(250);
  }
}

/** The mutation an Idempotency-Key belongs to: a re-send after a conflict carries `<key>.<n>`. */
function baseKey(key) {
  return String(key).split('.')[0];
}

/**
 * The checks against the server's counters: each acknowledged mutation
 * applied exactly once, each entity's applied mutations in the order they
 * were issued, and each entity's final state the one its mutations make.
 */
export function check({ stats, mutations, finalState, figures, problems }) {
  const byKey = new Map(mutations.map((m) => [m.key, m]));
  for (const m of mutations) m.applied = 0;
  for (const [key, times] of Object.entries(stats.appliedByKey)) {
    const mutation = byKey.get(baseKey(key));
    if (!mutation) {
      problems.push(`a key the pages never sent was applied ${times} times: ${key}`);
      continue;
    }
    mutation.applied += times;
    if (key !== mutation.key) figures.conflictResends += times;
  }
  for (const [key, times] of Object.entries(stats.receivedByKey)) {
    if (times > 1 && byKey.has(baseKey(key))) figures.receivedTwice += 1;
  }
  const examples = { lost: [], twice: [], order: [] };
  for (const m of mutations) {
    const acknowledged = m.acked === 'queued' || m.acked === 'direct';
    if (acknowledged && m.applied === 0) {
      figures.lost += 1;
      examples.lost.push(m);
    }
    if (m.applied > 1) {
      figures.appliedTwice += 1;
      examples.twice.push(m);
    }
  }

  // Every mutation of an entity was issued only after the previous one was
  // acknowledged, so the outbox must apply them in that order.
  const highest = new Map();
  for (const entry of stats.log) {
    if (!entry.key) {
      problems.push(`the server applied a mutation without an Idempotency-Key: ${entry.method} ${entry.path}`);
      continue;
    }
    const mutation = byKey.get(baseKey(entry.key));
    if (!mutation) continue;
    if (entry.path !== mutation.path || entry.method !== mutation.method) {
      problems.push(`key ${entry.key} was applied as ${entry.method} ${entry.path}, sent as ${mutation.method} ${mutation.path}`);
    }
    const before = highest.get(mutation.path) ?? -1;
    if (mutation.k < before) {
      figures.orderViolations += 1;
      examples.order.push(`${mutation.path}: #${mutation.k} (${mutation.method}, key ${mutation.key}) applied after #${before}`);
    } else {
      highest.set(mutation.path, mutation.k);
    }
  }

  // The server's final state of each entity against the model.
  const entities = new Map((stats.entities?.concepts || []).map((e) => [Number(e.id), e]));
  if (stats.entities) {
    for (const [id, fields] of finalState) {
      const remote = entities.get(id) || null;
      let same;
      if (fields === null || remote === null) same = fields === remote;
      else {
        const { id: _id, version: _version, updatedAt: _updatedAt, ...rest } = remote;
        same = JSON.stringify(sorted(rest)) === JSON.stringify(sorted(fields));
      }
      if (!same) {
        figures.stateMismatches += 1;
        if (figures.stateMismatches <= 3) problems.push(`concept ${id} is ${JSON.stringify(remote)} on the server; its mutations make ${JSON.stringify(fields)}`);
      }
    }
  }

  const describe = (m) => `#${m.index} ${m.method} ${m.path} (key ${m.key}, ${m.acked}, applied ${m.applied}, sent again ${m.unanswered} after no answer and ${m.refused} after an injected error)`;
  if (figures.lost) problems.push(`${figures.lost} acknowledged mutations were never applied, e.g. ${examples.lost.slice(0, 5).map(describe).join('; ')}`);
  if (figures.appliedTwice) problems.push(`${figures.appliedTwice} mutations were applied more than once, e.g. ${examples.twice.slice(0, 5).map(describe).join('; ')}`);
  if (figures.orderViolations) problems.push(`${figures.orderViolations} mutations were applied out of their entity's order, e.g. ${examples.order.slice(0, 5).join('; ')}`);
}

function sorted(object) {
  return Object.fromEntries(Object.entries(object).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The one line of figures. */
export function figuresLine(f, ok) {
  const served = f.faultsServed;
  return [
    `soak seed ${f.seed}: ${f.mutations} mutations over ${f.entities} entities from ${f.tabs} tabs`,
    ` (${f.direct} answered by the server, ${f.queued} queued; sent again: ${f.unanswered} after no answer, ${f.refused} after an injected error)`,
    `, worker kills ${f.kills}, browser restarts ${f.restarts}, offline toggles ${f.offline}, server down/ups ${f.downs}`,
    `, server faults ${f.serverFaults} (500×${served[500]}, 503×${served[503]}, 429×${served[429]}, apply-then-drop×${served.drop})`,
    `, lost ${f.lost}, applied twice ${f.appliedTwice}, order violations ${f.orderViolations}`,
    f.unacknowledged ? `, never acknowledged ${f.unacknowledged}` : '',
    f.stateMismatches ? `, state mismatches ${f.stateMismatches}` : '',
    f.uncontrolled ? `, sent from a page without a controller ${f.uncontrolled}` : '',
    f.unexplainedNoAnswer ? `, page fetches left without an answer by no worker stop or restart ${f.unexplainedNoAnswer}` : '',
    `, wall ${f.wallSeconds.toFixed(1)} s`,
    ok ? '' : ' — FAILED',
  ].join('');
}

const OPTIONS = ['seed', 'mutations', 'entities', 'tabs', 'kills', 'restarts', 'offline', 'downs', 'fails', 'drops'];

/** The command that replays a run. */
function replayCommand(settings) {
  return `node soak/run.mjs ${OPTIONS.map((name) => `--${name} ${settings[name]}`).join(' ')}`;
}

/** Parses the command line; a missing option keeps its default. */
export function parseArguments(argv) {
  const options = { quiet: false };
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index];
    const name = argument.replace(/^--/, '');
    if (argument === '--quiet') options.quiet = true;
    else if (argument.startsWith('--') && OPTIONS.includes(name)) {
      const value = argv[++index];
      const number = Number(value);
      const least = name === 'mutations' || name === 'entities' || name === 'tabs' ? 1 : 0;
      if (value === undefined || !Number.isSafeInteger(number) || number < least) {
        throw new Error(`--${name} needs a whole number of at least ${least}, not ${value === undefined ? 'nothing' : `'${value}'`}`);
      }
      options[name] = number;
    } else {
      throw new Error(`unknown argument ${argument}; usage: node soak/run.mjs ${OPTIONS.map((o) => `[--${o} N]`).join(' ')} [--quiet]`);
    }
  }
  return options;
}

/** The full soak's size, unless the command line says otherwise. */
export const FULL = { mutations: 10000, entities: 500, tabs: 3 };

async function main() {
  let parsed;
  try {
    parsed = parseArguments(process.argv.slice(2));
  } catch (error) {
    console.error(`soak: ${error.message}`);
    process.exitCode = 2;
    return;
  }
  const { quiet, ...given } = parsed;
  const options = { ...FULL, seed: Math.floor(Math.random() * 2 ** 31), ...given };
  const result = await soak({ ...options, log: quiet ? undefined : (line) => console.error(line) });
  for (const note of result.notes) console.error(`soak: note: ${note}`);
  if (!result.ok) {
    for (const problem of result.problems) console.error(`soak: ${problem}`);
    if (Object.keys(result.unansweredWhy).length) console.error(`soak: page fetches without an answer: ${JSON.stringify(result.unansweredWhy)}`);
    console.error(`soak: fault events: ${result.events.join(', ')}`);
    console.error(`soak: FAILED with seed ${result.figures.seed}; replay it with: ${result.replay}`);
  }
  console.log(result.line);
  process.exitCode = result.ok ? 0 : 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((error) => {
    console.error(`soak: ${error.stack || error}`);
    process.exitCode = 1;
  });
}
