// `node bench/run.mjs [--quick | --smoke] [--reps N]`: runs the benchmark
// (see bench/README.md), prints the table and writes it with the raw
// results. A full run writes bench/results/latest.{json,md}; quick and
// smoke runs write target/bench/<mode>.{json,md}, so they never replace
// the published table. Exits 1 when any subject lost or duplicated a
// mutation or answered something unexpected.
//
// Environment: OUTBOX_SERVER (reference server binary), OUTBOX_DIST
// (dist/outbox), CHROMIUM; `cargo xtask bench` sets all three.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBench, MODES } from './lib/bench.mjs';
import { markdown, rows, summarize } from './lib/report.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export function parseArguments(argv) {
  const options = { mode: 'full', reps: null };
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index];
    if (argument === '--quick') options.mode = 'quick';
    else if (argument === '--smoke') options.mode = 'smoke';
    else if (argument === '--reps') {
      const reps = Number(argv[++index]);
      if (!Number.isInteger(reps) || reps < 1) throw new Error('--reps needs a whole number of at least 1');
      options.reps = reps;
    } else {
      throw new Error(`unknown argument ${argument}; usage: node bench/run.mjs [--quick | --smoke] [--reps N]`);
    }
  }
  return options;
}

/** Where a run's files go, and the command line shown with the table. */
function destination({ mode, reps }) {
  const command = ['cargo xtask bench', mode === 'full' ? '' : `--${mode}`, reps ? `--reps ${reps}` : '']
    .filter(Boolean).join(' ');
  const folder = mode === 'full' ? join(root, 'bench', 'results') : join(root, 'target', 'bench');
  const name = mode === 'full' ? 'latest' : mode;
  return { command, json: join(folder, `${name}.json`), md: join(folder, `${name}.md`) };
}

/** Runs the benchmark, writes and prints the report; gives the results, summary and table. */
export async function benchmark({ mode = 'full', reps = null, log } = {}) {
  if (!MODES[mode]) throw new Error(`unknown mode ${mode}`);
  const results = await runBench({
    mode,
    reps,
    root,
    serverBinary: process.env.OUTBOX_SERVER || join(root, 'target', 'debug', 'outbox-demo'),
    dist: process.env.OUTBOX_DIST || join(root, 'dist', 'outbox'),
    chromium: process.env.CHROMIUM || '/usr/bin/chromium',
    work: join(root, 'target', 'bench'),
    log,
  });
  const summary = summarize(results);
  const table = rows(results, summary);
  const where = destination({ mode, reps });
  const report = markdown(results, table, where.command);
  mkdirSync(dirname(where.json), { recursive: true });
  writeFileSync(where.json, `${JSON.stringify({ ...results, summary, table }, null, 2)}\n`);
  writeFileSync(where.md, report);
  return { results, summary, table, report, files: where };
}

async function main() {
  const options = parseArguments(process.argv.slice(2));
  const { results, report, files } = await benchmark(options);
  console.log(`\n${report}`);
  console.log(`bench: wrote ${files.md} and ${files.json}`);
  if (results.problems.length > 0) {
    console.error(`bench: ${results.problems.length} problem(s); see the list above`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((error) => {
    console.error(`bench: ${error.stack || error}`);
    process.exitCode = 1;
  });
}
