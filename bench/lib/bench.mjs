// The benchmark: every subject in its own Chromium profile and on its own
// reference server (so its own origin), the same workload against each.
// Repetitions are interleaved across subjects (repetition 1 of every
// subject, then repetition 2, ...), so a slow spell on the machine does not
// land on one subject only.
import { mkdirSync, rmSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { openSubject, waitFor } from './browser.mjs';
import { startServer } from '../../tests/e2e/harness.mjs';
import { SUBJECTS, prepareSites, workerSizes } from './sites.mjs';
import { mean, median, percentile } from './stats.mjs';

/**
 * Workload sizes per mode. `full` is the benchmark proper; `quick` is a
 * look in about a minute; `smoke` only proves that the harness and every
 * subject work and lose nothing. `full` sends 500 requests per repetition
 * where the issue names 1,000 (offline enqueue, then drained) and 250 for
 * the pass-through: five interleaved repetitions of 1,000 do not fit in the
 * issue's 15 minutes on a fresh 2-core machine (see bench/README.md).
 */
export const MODES = {
  full: {
    reps: 5, enqueue: 500, entities: 100, passThrough: 250,
    depths: [0, 10000, 50000], depthEnqueues: 50, depthStatuses: 15,
  },
  quick: {
    reps: 1, enqueue: 200, entities: 20, passThrough: 200,
    depths: [0, 2000], depthEnqueues: 20, depthStatuses: 5,
  },
  smoke: {
    reps: 1, enqueue: 12, entities: 4, passThrough: 6,
    depths: [0, 30], depthEnqueues: 3, depthStatuses: 2,
  },
};

const SERVER_DELAY_MS = 5;
const DRAIN_TIMEOUT_MS = 300000;
/** How long Workbox gets to start its own `sync` replay before the page asks. */
const WORKBOX_SYNC_GRACE_MS = 5000;

/**
 * Runs the benchmark and gives the raw results (see `summarize` in
 * report.mjs for the table). Throws when the harness breaks; lost or
 * duplicated mutations are results, listed in `problems`.
 */
export async function runBench({
  mode = 'full',
  reps,
  root,
  serverBinary,
  dist,
  chromium,
  work,
  log = (line) => console.log(line),
}) {
  const config = { ...MODES[mode], ...(reps ? { reps } : {}) };
  const started = Date.now();
  // Sites and profiles of this run only, so two runs in one tree never meet.
  const run = join(work, `run-${process.pid}`);
  const removeRun = () => rmSync(run, { recursive: true, force: true });
  process.once('exit', removeRun);
  mkdirSync(run, { recursive: true });
  const profiles = join(run, 'profiles');
  const folders = await prepareSites({ benchDirectory: join(root, 'bench'), work: run });
  const sizes = workerSizes(folders, dist);

  const servers = [];
  const browsers = [];
  const problems = [];
  const results = {};
  try {
    // Servers and browsers start side by side: nothing is measured yet.
    const opened = await Promise.allSettled(SUBJECTS.map(async (subject, index) => {
      const server = await startServer({ binary: serverBinary, site: folders[subject.id], dist, delayMs: SERVER_DELAY_MS });
      servers[index] = server;
      browsers[index] = await openSubject({ subject, server, executablePath: chromium, profiles });
    }));
    const failed = opened.find((outcome) => outcome.status === 'rejected');
    if (failed) throw failed.reason;
    for (const subject of SUBJECTS) {
      results[subject.id] = { label: subject.label, size: sizes[subject.id], reps: [], depths: {} };
    }
    const chromiumVersion = await browsers[0].browserVersion();

    const phases = { setupSeconds: (Date.now() - started) / 1000 };
    let phaseStarted = Date.now();
    for (let rep = 1; rep <= config.reps; rep++) {
      for (const browser of browsers) {
        const outcome = await repetition(browser, config, rep, problems);
        results[browser.subject.id].reps.push(outcome);
        log(`bench: rep ${rep}/${config.reps} ${browser.subject.label}: ${describeRep(outcome)}`);
      }
    }

    phases.repetitionsSeconds = (Date.now() - phaseStarted) / 1000;
    phaseStarted = Date.now();
    const withWorker = browsers.filter(({ subject }) => subject.worker && !subject.drainOnly && subject.atDepth !== false);
    for (const depth of config.depths) {
      // The stores are filled side by side (not measured), then the
      // repetitions at this depth run one subject after the other.
      const filled = await Promise.all(withWorker.map((browser) => fillTo(browser, depth, problems)));
      const samples = withWorker.map(() => ({ enqueueP50: [], statusMs: [] }));
      for (let rep = 1; rep <= config.reps; rep++) {
        for (const [index, browser] of withWorker.entries()) {
          const sample = await atDepth(browser, config, depth, rep, problems);
          samples[index].enqueueP50.push(sample.enqueueP50);
          samples[index].statusMs.push(sample.statusMs);
        }
      }
      for (const [index, browser] of withWorker.entries()) {
        const outcome = {
          ...filled[index],
          enqueueP50: median(samples[index].enqueueP50),
          statusMs: median(samples[index].statusMs),
          perRep: samples[index],
        };
        results[browser.subject.id].depths[depth] = outcome;
        log(`bench: depth ${depth} ${browser.subject.label} (${outcome.reached} queued): ` +
          `enqueue p50 ${format(outcome.enqueueP50)} ms, ` +
          `status ${format(outcome.statusMs)} ms${outcome.fillMs ? `, filled in ${(outcome.fillMs / 1000).toFixed(1)} s` : ''}`);
      }
    }

    phases.depthsSeconds = (Date.now() - phaseStarted) / 1000;
    return {
      mode,
      config: { ...config, serverDelayMs: SERVER_DELAY_MS },
      date: new Date().toISOString(),
      seconds: (Date.now() - started) / 1000,
      phases,
      chromium: chromiumVersion,
      machine: machine(),
      subjects: results,
      problems,
    };
  } finally {
    for (const browser of browsers.filter(Boolean)) await browser.close().catch(() => {});
    for (const server of servers.filter(Boolean)) await server.stop().catch(() => {});
    process.removeListener('exit', removeRun);
    removeRun();
  }
}

function machine() {
  const processors = cpus();
  return {
    cpu: processors.length > 0 ? processors[0].model.trim() : 'unknown',
    cores: processors.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    platform: `${process.platform} ${process.arch}`,
    node: process.version,
  };
}

function format(value) {
  return value === null || value === undefined ? 'n/a' : value.toFixed(2);
}

function describeRep(outcome) {
  const parts = [];
  if (outcome.cold) parts.push(`cold ${format(outcome.cold.ms)} ms`);
  if (outcome.enqueue) parts.push(`enqueue p50 ${format(outcome.enqueue.p50)} p99 ${format(outcome.enqueue.p99)} ms`);
  if (outcome.drain) {
    parts.push(`drain ${format(outcome.drain.ms)} ms (lost ${outcome.drain.lost}, duplicates ${outcome.drain.duplicates})`);
  }
  if (outcome.passThrough) parts.push(`pass-through p50 ${format(outcome.passThrough.p50)} ms`);
  const steps = Object.entries(outcome.seconds).map(([name, seconds]) => `${name} ${seconds.toFixed(1)}`);
  return `${parts.join(', ')} [s: ${steps.join(', ')}]`;
}

/** Checks that every request got `expected`; records a problem otherwise. */
function expectStatuses(problems, subject, what, statuses, expected) {
  const other = Object.entries(statuses).filter(([status]) => Number(status) !== expected);
  if (other.length > 0) {
    problems.push(`${subject.label}: ${what}: expected every answer ${expected}, got ${JSON.stringify(statuses)}`);
  }
}

/**
 * One repetition for one subject, starting online with an empty queue:
 * cold start and offline enqueue (offline), then the drain of what was
 * queued as the browser comes back online, then online pass-through.
 */
async function repetition(browser, config, rep, problems) {
  const { subject, server } = browser;
  const outcome = { rep, seconds: {} };
  let stepStarted = Date.now();
  const step = (name) => {
    outcome.seconds[name] = (Date.now() - stepStarted) / 1000;
    stepStarted = Date.now();
  };
  if (subject.worker) {
    await browser.offline(true);
    if (!subject.drainOnly) {
      outcome.cold = await coldStart(browser, rep, problems);
      step('cold');
    }

    const prefix = `q${rep}`;
    const queued = await browser.run((options) => window.bench.sequence(options), {
      prefix, count: config.enqueue, entities: config.entities,
    });
    expectStatuses(problems, subject, 'offline enqueue', queued.statuses, 202);
    outcome.enqueue = {
      p50: percentile(queued.latencies, 50),
      p99: percentile(queued.latencies, 99),
      mean: mean(queued.latencies),
      statuses: queued.statuses,
    };
    step('enqueue');
    outcome.drain = await drain(browser, config, prefix, problems);
    step('drain');
  }

  await browser.offline(false);
  if (!subject.online) return outcome;
  await server.reset();
  const passed = await browser.run((options) => window.bench.sequence(options), {
    prefix: `p${rep}`, count: config.passThrough,
  });
  expectStatuses(problems, subject, 'online pass-through', passed.statuses, 200);
  outcome.passThrough = {
    p50: percentile(passed.latencies, 50),
    p99: percentile(passed.latencies, 99),
    mean: mean(passed.latencies),
    statuses: passed.statuses,
  };
  await server.reset();
  step('passThrough');
  return outcome;
}

/** Stops the worker, then times one offline POST until its 202 arrives. */
async function coldStart(browser, rep, problems) {
  await browser.stopWorker();
  const result = await browser.run((options) => window.bench.sequence(options), { prefix: `c${rep}`, count: 1 });
  expectStatuses(problems, browser.subject, 'cold-start POST', result.statuses, 202);
  await browser.run(() => window.bench.clear());
  return { ms: result.latencies[0] };
}

/**
 * The browser comes back online with `config.enqueue` entries queued; the
 * clock runs from then until the server has applied the last of them.
 * sw-outbox drains on its own (the shim's `online` flush and `sync`) and is
 * also asked once; the bare worker is asked by the page. Workbox replays on
 * the `sync` event Chromium fires on reconnection and is not also asked:
 * two overlapping replayRequests() send the same entries twice (each
 * reads an entry and deletes it in separate transactions), which would
 * measure that bug instead of its speed. The page asks only if no sync
 * replay started.
 */
async function drain(browser, config, prefix, problems) {
  const { subject, server } = browser;
  await server.reset();
  const startedAt = Date.now();
  await browser.offline(false);
  if (subject.kind !== 'workbox') await browser.run(() => window.bench.trigger());
  let askedWorkbox = false;
  const stats = await waitFor(async () => {
    const current = await server.stats();
    if (current.applied >= config.enqueue) return current;
    if (subject.kind === 'workbox' && !askedWorkbox && current.applied === 0 &&
        Date.now() - startedAt > WORKBOX_SYNC_GRACE_MS) {
      askedWorkbox = true;
      await browser.run(() => window.bench.trigger());
    }
    return false;
  }, { timeoutMs: DRAIN_TIMEOUT_MS, intervalMs: 250, what: `${subject.label} to drain ${config.enqueue} entries` });
  const finishedAt = Math.max(...stats.log.map((entry) => entry.at));

  // Let the drain end (and anything it would still send arrive) before counting.
  if (subject.kind !== 'workbox' || askedWorkbox) {
    await browser.run(() => window.benchDrain);
  }
  await waitFor(async () => (await browser.run(() => window.bench.queued())).total === 0, {
    timeoutMs: 60000, intervalMs: 100, what: `${subject.label}'s queue to empty`,
  });
  await new Promise((resolve) => setTimeout(resolve, 300));
  const final = await server.stats();
  const check = exactlyOnce(final, prefix, config.enqueue);
  if (check.lost > 0 || check.duplicates > 0 || check.unexpected > 0) {
    problems.push(`${subject.label}: drain ${prefix}: lost ${check.lost}, duplicates ${check.duplicates}, ` +
      `unexpected ${check.unexpected}`);
  }
  return { ms: finishedAt - startedAt, askedWorkbox, ...check };
}

/**
 * What the server applied for batch `prefix` of `count` mutations, by the
 * unique `mid` in each body (Workbox sends no idempotency key): lost,
 * applied twice or more, unknown; sent again (received more than once,
 * for subjects that send an Idempotency-Key); and per-entity order breaks.
 */
export function exactlyOnce(stats, prefix, count) {
  const times = new Map();
  let unexpected = 0;
  const lastSeq = new Map();
  let outOfOrder = 0;
  for (const entry of stats.log) {
    const mid = entry.body && entry.body.mid;
    if (typeof mid !== 'string' || !mid.startsWith(`${prefix}-`)) {
      unexpected += 1;
      continue;
    }
    times.set(mid, (times.get(mid) || 0) + 1);
    const previous = lastSeq.get(entry.path);
    if (previous !== undefined && entry.body.seq < previous) outOfOrder += 1;
    lastSeq.set(entry.path, entry.body.seq);
  }
  let lost = 0;
  let duplicates = 0;
  for (let i = 0; i < count; i++) {
    const applied = times.get(`${prefix}-${i}`) || 0;
    if (applied === 0) lost += 1;
    else duplicates += applied - 1;
  }
  const resent = Object.values(stats.receivedByKey || {}).filter((received) => received > 1).length;
  return { applied: stats.applied, lost, duplicates, unexpected, resent, outOfOrder };
}

/**
 * Fills the queue to `depth` (offline); gives the depth reached and the time
 * the fill took. Every store is written directly, since what matters here is
 * only that the records exist: sw-outbox and Workbox get copies of one
 * record each stored itself through the real path, the bare workers plain
 * records. sw-outbox reads its queue when its worker starts, so its worker
 * is stopped after the fill and the next call starts a fresh one.
 */
async function fillTo(browser, depth, problems) {
  const { subject } = browser;
  await browser.offline(true);
  const queuedNow = async () => (await browser.run(() => window.bench.queued())).total;
  const before = await queuedNow();
  let fillMs = null;
  if (depth > before) {
    const started = Date.now();
    const method = { outbox: 'fillOutbox', workbox: 'fillWorkbox', bare: 'fillDirect' }[subject.kind];
    await browser.run(({ method, options }) => window.bench[method](options), {
      method, options: { prefix: `f${depth}`, count: depth - before },
    });
    if (subject.kind === 'outbox') await browser.stopWorker();
    fillMs = Date.now() - started;
  }
  // For sw-outbox this starts the worker, which loads the whole queue.
  const reached = await queuedNow();
  if (reached < depth) {
    problems.push(`${subject.label}: filled to ${depth}, but the queue reports only ${reached} entries`);
  }
  return { reached, fillMs };
}

/**
 * One repetition at a depth (offline): `depthEnqueues` sequential POSTs
 * (their p50) and `depthStatuses` status reads (their median). At depth 0
 * the queue is emptied again afterwards.
 */
async function atDepth(browser, config, depth, rep, problems) {
  const { subject } = browser;
  const queued = await browser.run((options) => window.bench.sequence(options), {
    prefix: `d${depth}-${rep}`, count: config.depthEnqueues,
  });
  expectStatuses(problems, subject, `enqueue at depth ${depth}`, queued.statuses, 202);
  const reads = await browser.run((count) => window.bench.statuses(count), config.depthStatuses);
  if (depth === 0) await browser.run(() => window.bench.clear());
  return { enqueueP50: percentile(queued.latencies, 50), statusMs: percentile(reads, 50) };
}
