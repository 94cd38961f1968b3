// The benchmark harness (bench/) in its smoke mode: a few requests per
// subject, so it cannot rot. No timing is asserted; only that every subject
// ran every measure and that none lost or duplicated a mutation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { benchmark } from '../../bench/run.mjs';
import { needs } from './harness.mjs';

test('the benchmark harness runs every subject, and no subject loses or duplicates a mutation', { timeout: 300000, skip: needs('playwright') }, async () => {
  const lines = [];
  const { results, summary, table } = await benchmark({ mode: 'smoke', log: (line) => lines.push(line) });
  assert.deepEqual(results.problems, [], lines.join('\n'));

  for (const id of ['outbox', 'workbox', 'strict', 'relaxed']) {
    const subject = summary[id];
    assert.equal(subject.lost, 0, `${subject.label} lost mutations`);
    assert.equal(subject.duplicates, 0, `${subject.label} applied mutations twice`);
    for (const measure of ['enqueueP50', 'enqueueP99', 'drainMs', 'coldMs', 'gzipBytes']) {
      assert.equal(typeof subject[measure], 'number', `${subject.label}: no ${measure}`);
    }
    if (id === 'relaxed') {
      // Left out of the depth measures (see bench/README.md).
      assert.deepEqual(subject.depths, {}, `${subject.label}: measured at depth`);
      continue;
    }
    for (const depth of results.config.depths) {
      assert.equal(typeof subject.depths[depth].enqueueP50, 'number', `${subject.label}: no enqueue at depth ${depth}`);
      assert.equal(typeof subject.depths[depth].statusMs, 'number', `${subject.label}: no status at depth ${depth}`);
    }
  }
  for (const id of ['outbox', 'workbox', 'strict', 'none']) {
    assert.equal(typeof summary[id].passThroughP50, 'number', `${summary[id].label}: no pass-through`);
  }
  // The drain-only subject: sw-outbox at the limit's concurrency.
  const sixteen = summary.outbox16;
  assert.equal(typeof sixteen.drainMs, 'number', `${sixteen.label}: no drain`);
  assert.equal(sixteen.lost + sixteen.duplicates, 0, `${sixteen.label} lost or duplicated mutations`);
  assert.equal(sixteen.coldMs, null, `${sixteen.label}: only the drain is measured`);
  // sw-outbox keeps each entity's order; the bare limit does not try to.
  assert.equal(summary.outbox.outOfOrder, 0, 'sw-outbox replayed an entity out of order');
  assert.equal(sixteen.outOfOrder, 0, `${sixteen.label} replayed an entity out of order`);
  assert.ok(table.some((row) => row.goal), 'the table carries the goals');
});
