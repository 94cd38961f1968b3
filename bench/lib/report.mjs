// From raw results to the summary (medians over repetitions, ratios, the
// issue's goals) and the Markdown table.
import { SUBJECTS } from './sites.mjs';
import { median } from './stats.mjs';

const LIMIT = 'strict';
/** Requests per repetition the issue names for the offline enqueue, pass-through and drain measures. */
const ISSUE_REQUESTS = 1000;

function sum(values) {
  return values.reduce((total, value) => total + (value || 0), 0);
}

/** The per-subject medians the table shows. */
export function summarize(results) {
  const none = results.subjects.none;
  const summary = {};
  for (const [id, subject] of Object.entries(results.subjects)) {
    const reps = subject.reps;
    const pick = (read) => median(reps.map(read));
    const hasWorker = reps.some((rep) => rep.enqueue);
    // A drain-only subject's enqueue only fills its queue.
    const measured = hasWorker && !SUBJECTS.find((known) => known.id === id)?.drainOnly;
    const drainMs = hasWorker ? pick((rep) => rep.drain.ms) : null;
    const depths = {};
    for (const [depth, outcome] of Object.entries(subject.depths)) {
      depths[depth] = { reached: outcome.reached, enqueueP50: outcome.enqueueP50, statusMs: outcome.statusMs };
    }
    summary[id] = {
      label: subject.label,
      enqueueP50: measured ? pick((rep) => rep.enqueue.p50) : null,
      enqueueP99: measured ? pick((rep) => rep.enqueue.p99) : null,
      passThroughP50: pick((rep) => rep.passThrough?.p50),
      // Paired by repetition, so a slow spell shifts both sides alike.
      overheadMs: id === 'none' ? null : median(reps.map((rep, index) => {
        const baseline = none.reps[index];
        return baseline && rep.passThrough ? rep.passThrough.p50 - baseline.passThrough.p50 : null;
      })),
      drainMs,
      drainPerSecond: drainMs ? results.config.enqueue / (drainMs / 1000) : null,
      lost: hasWorker ? sum(reps.map((rep) => rep.drain.lost)) : null,
      duplicates: hasWorker ? sum(reps.map((rep) => rep.drain.duplicates)) : null,
      outOfOrder: hasWorker ? sum(reps.map((rep) => rep.drain.outOfOrder)) : null,
      coldMs: measured ? pick((rep) => rep.cold?.ms) : null,
      depths,
      rawBytes: subject.size.files > 0 ? subject.size.raw : null,
      gzipBytes: subject.size.files > 0 ? subject.size.gzip : null,
    };
  }
  return summary;
}

function ratio(a, b) {
  return typeof a === 'number' && typeof b === 'number' && b > 0 && a >= 0 ? a / b : null;
}

/** The table's rows: a label, a value per subject, the two ratios and the goal. */
export function rows(results, summary) {
  const { config } = results;
  const out = [];
  const add = (measure, read, { decimals = 2, goal = null, ratios = true, note = () => null } = {}) => {
    const values = Object.fromEntries(SUBJECTS.map((subject) => [subject.id, read(summary[subject.id])]));
    out.push({
      measure,
      values,
      notes: Object.fromEntries(SUBJECTS.map((subject) => [subject.id, note(summary[subject.id])])),
      decimals,
      versusWorkbox: ratios ? ratio(values.outbox, values.workbox) : null,
      versusLimit: ratios ? ratio(values.outbox, values[LIMIT]) : null,
      goal: goal ? goal(values) : null,
    });
  };
  const goal = (text, met) => ({ text, met });
  const swo = summary.outbox;
  // The issue's workload is 1,000 POSTs for measures 1 to 3; a smaller one says so.
  const fewer = (n) => (n < ISSUE_REQUESTS ? `, fewer than the issue's ${ISSUE_REQUESTS.toLocaleString('en-US')}` : '');
  const count = (n) => n.toLocaleString('en-US');

  add(`offline enqueue p50, ms (${count(config.enqueue)} sequential 1 KB POSTs${fewer(config.enqueue)})`, (s) => s.enqueueP50, {
    goal: (v) => goal('≤ 1.2× limit', ratio(v.outbox, v[LIMIT]) !== null && ratio(v.outbox, v[LIMIT]) <= 1.2),
  });
  add('offline enqueue p99, ms', (s) => s.enqueueP99, {
    goal: (v) => goal('≤ Workbox', v.outbox !== null && v.workbox !== null && v.outbox <= v.workbox),
  });
  add(`online POST p50, ms (${count(config.passThrough)} sequential${fewer(config.passThrough)}, server +${config.serverDelayMs} ms)`,
    (s) => s.passThroughP50);
  add('pass-through overhead p50 vs no worker, ms', (s) => s.overheadMs, {
    goal: (v) => goal('≤ Workbox', v.outbox !== null && v.workbox !== null && v.outbox <= v.workbox),
  });
  add(`drain ${count(config.enqueue)} queued over ${config.entities} entities${fewer(config.enqueue)}, ms`, (s) => s.drainMs, {
    decimals: 0,
    goal: (v) => goal('≥ 3× faster than Workbox, ≤ 1.25× limit',
      ratio(v.outbox, v.workbox) !== null && ratio(v.outbox, v.workbox) <= 1 / 3 &&
      ratio(v.outbox, v[LIMIT]) !== null && ratio(v.outbox, v[LIMIT]) <= 1.25),
  });
  add('drain rate, requests/s', (s) => s.drainPerSecond, { decimals: 0, ratios: false });
  add(`drain lost + duplicated (all ${config.reps} repetitions)`, (s) => (s.lost === null ? null : s.lost + s.duplicates), {
    decimals: 0,
    ratios: false,
    goal: (v) => goal('0', v.outbox === 0),
  });
  add('drain order breaks within an entity', (s) => s.outOfOrder, { decimals: 0, ratios: false });
  add('cold start to first offline 202, ms', (s) => s.coldMs, {
    goal: (v) => goal('≤ 1.5× Workbox', ratio(v.outbox, v.workbox) !== null && ratio(v.outbox, v.workbox) <= 1.5),
  });
  const deepest = Math.max(...config.depths);
  // A queue that did not reach the depth says where it was.
  const shortOf = (depth) => (s) => {
    const reached = s.depths[depth]?.reached;
    return typeof reached === 'number' && reached < depth ? `at ${reached.toLocaleString('en-US')}` : null;
  };
  for (const [key, what] of [['enqueueP50', 'enqueue p50'], ['statusMs', 'status read']]) {
    for (const depth of config.depths) {
      const deep = depth === deepest && depth > 0;
      add(`${what} at depth ${depth.toLocaleString('en-US')}, ms`, (s) => s.depths[depth]?.[key] ?? null, {
        goal: deep ? () => depthGoal(swo, depth, key) : null,
        note: shortOf(depth),
      });
    }
  }
  add('worker scripts raw, KB', (s) => (s.rawBytes === null ? null : s.rawBytes / 1000), { decimals: 1 });
  add('worker scripts gzip -9, KB', (s) => (s.gzipBytes === null ? null : s.gzipBytes / 1000), {
    decimals: 1,
    goal: (v) => goal('< 80 KB', v.outbox !== null && v.outbox < 80),
  });
  return out;
}

function depthGoal(swo, depth, key) {
  const deep = swo.depths[depth]?.[key];
  const shallow = swo.depths[0]?.[key];
  const factor = ratio(deep, shallow);
  const reached = swo.depths[depth]?.reached;
  const short = typeof reached === 'number' && reached < depth;
  return {
    text: `≤ 1.2× depth 0 (${factor === null ? 'n/a' : `${factor.toFixed(2)}×`}` +
      `${short ? `, and only ${reached.toLocaleString('en-US')} queued` : ''})`,
    met: !short && factor !== null && factor <= 1.2,
  };
}

function cell(value, decimals) {
  if (value === null || value === undefined) return 'n/a';
  return value.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

function ratioCell(value) {
  return value === null ? '–' : `${value.toFixed(2)}×`;
}

/** The Markdown report: what ran where, the table, and how to read it. */
export function markdown(results, table, command) {
  const { machine, config } = results;
  const header = ['measure', ...SUBJECTS.map((subject) => subject.label), 'sw-outbox/Workbox', 'sw-outbox/limit', 'goal'];
  const lines = [
    `Made by \`${command}\` on ${results.date.slice(0, 10)} (${results.mode} mode, ` +
      `median of ${config.reps} repetition${config.reps === 1 ? '' : 's'}, ${Math.round(results.seconds)} s): ` +
      `${results.chromium} headless; ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; ` +
      `reference server on loopback, +${config.serverDelayMs} ms per request.`,
    '',
    `| ${header.join(' | ')} |`,
    `|${header.map((_, index) => (index === 0 || index === header.length - 1 ? '---' : '---:')).join('|')}|`,
  ];
  for (const row of table) {
    const goal = row.goal ? `${row.goal.text}: ${row.goal.met ? 'met' : '**missed**'}` : '';
    lines.push(`| ${[
      row.measure,
      ...SUBJECTS.map((subject) => {
        const note = row.notes[subject.id];
        return `${cell(row.values[subject.id], row.decimals)}${note ? ` (${note})` : ''}`;
      }),
      ratioCell(row.versusWorkbox),
      ratioCell(row.versusLimit),
      goal,
    ].join(' | ')} |`);
  }
  lines.push(
    '',
    '"limit": a bare worker that tries the network, stores a failed request with one IndexedDB `put` ' +
      '(`durability: strict` or `relaxed`) and answers 202, and drains with a plain loop of 16 concurrent ' +
      '`fetch`es (no order, no retries, no idempotency keys); the ratios use the strict one, and the ' +
      'relaxed one is not measured online, where it runs the same code. ' +
      'Status read: sw-outbox `outbox.status()`, Workbox `Queue.size()`, limit an IndexedDB `count()`, ' +
      'each asked from the page over a MessageChannel. Offline = Chromium offline for page and worker. ' +
      'Lost and duplicated are counted from the server\'s applied log by a unique id in each body.',
  );
  const all = summarize(results);
  const atSixteen = all.outbox16;
  if (atSixteen?.drainMs) {
    lines.push(
      '',
      `"sw-outbox, concurrency 16" is the same worker with \`limits.concurrency: 16\`, as many requests at ` +
        `once as the limit's loop (the default is 6); only its drain is measured: ` +
        `${cell(atSixteen.drainMs, 0)} ms, ${ratioCell(ratio(atSixteen.drainMs, all[LIMIT].drainMs))} the limit's and ` +
        `${ratioCell(ratio(atSixteen.drainMs, all.workbox.drainMs))} Workbox's.`,
    );
  }
  if (results.mode === 'full' && Math.min(config.enqueue, config.passThrough) < ISSUE_REQUESTS) {
    lines.push(
      '',
      `The issue names ${ISSUE_REQUESTS.toLocaleString('en-US')} POSTs per repetition for the offline enqueue, ` +
        `the pass-through and the drain; this run sends ${config.enqueue.toLocaleString('en-US')} ` +
        `(offline enqueue, then drained) and ${config.passThrough.toLocaleString('en-US')} (pass-through) ` +
        `so that ${config.reps} interleaved repetitions of every measure fit, with what a fresh machine installs first, in 15 minutes on a 2-core machine.`,
    );
  }
  if (results.problems.length > 0) {
    lines.push('', 'Problems seen:', ...results.problems.map((problem) => `- ${problem}`));
  }
  return `${lines.join('\n')}\n`;
}
