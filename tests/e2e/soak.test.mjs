// The chaos soak (soak/run.mjs) in small: 500 mutations over 50 entities
// from 3 tabs with a few of every fault — worker stops, browser restarts,
// offline spells, server outages, injected 500/503/429 and apply-then-drop —
// on a fixed seed. Every acknowledged mutation must be applied exactly once,
// each entity's mutations in the order they were issued, and the queue must
// end empty with nothing in flight. `cargo xtask soak` runs the full size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { soak } from '../../soak/run.mjs';
import { needs } from './harness.mjs';

const SMALL = {
  seed: 20261129,
  mutations: 500,
  entities: 50,
  tabs: 3,
  kills: 4,
  restarts: 2,
  offline: 3,
  downs: 3,
  fails: 4,
  drops: 4,
};

test('chaos soak: 500 mutations from 3 tabs under every fault are each applied once, in order', { timeout: 300000, skip: needs('stopWorker', 'offline') }, async (t) => {
  const lines = [];
  const result = await soak({ ...SMALL, log: (line) => lines.push(line) });
  t.diagnostic(result.line);
  const context = [...lines, ...result.notes.map((note) => `note: ${note}`), `fault events: ${result.events.join(', ')}`, `replay: ${result.replay}`].join('\n');
  assert.deepEqual(result.problems, [], context);
  const f = result.figures;
  assert.equal(f.lost, 0, context);
  assert.equal(f.appliedTwice, 0, context);
  assert.equal(f.orderViolations, 0, context);
  assert.equal(f.acked, SMALL.mutations, `every mutation was acknowledged\n${context}`);
  // Every kind of fault happened.
  assert.equal(f.kills, SMALL.kills, context);
  assert.equal(f.restarts, SMALL.restarts, context);
  assert.ok(f.offline > 0 && f.downs > 0, `offline ${f.offline}, down ${f.downs}\n${context}`);
  assert.ok(f.faultsServed[500] + f.faultsServed[503] + f.faultsServed[429] > 0, `no injected error was served\n${context}`);
  assert.ok(f.faultsServed.drop > 0, `no connection was dropped\n${context}`);
  assert.ok(f.queued > 0 && f.direct > 0, `both paths taken: ${f.direct} answered, ${f.queued} queued\n${context}`);
});
