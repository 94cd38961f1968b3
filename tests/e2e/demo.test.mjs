// The demo site (demo/site), driven as a person would: changes made while
// the server is down wait in the queue and go out when it is back; a change
// made by another client meanwhile is settled in the conflict dialog.
// Screenshots go to target/screenshots/; with OUTBOX_DOCS_SCREENSHOT set
// (`cargo xtask screenshots`), the page with queued changes also goes there.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer, waitFor, CHROMIUM_ARGS, needs } from './harness.mjs';

// The walkthrough clicks through the demo with Playwright's locators.
const skip = needs('playwright');

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCREENSHOTS = join(root, 'target', 'screenshots');
const DOCS_SCREENSHOT = process.env.OUTBOX_DOCS_SCREENSHOT;

let server;
let context;
let page;
let profile;
const pageErrors = [];

before(async () => {
  if (skip) return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  server = await startServer({ site: join(root, 'demo', 'site') });
  profile = mkdtempSync(join(tmpdir(), 'outbox-demo-e2e-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
  });
  page = context.pages()[0] || (await context.newPage());
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    if (process.env.OUTBOX_E2E_VERBOSE) console.log(`[demo] ${message.text()}`);
  });
  await page.goto(`${server.app}/`);
  await pageReady();
});

after(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await server?.stop();
});

// ---- reading the page ----------------------------------------------------------

const badge = () => page.locator('#badge');
const count = (name) => page.locator(`#badge [data-count="${name}"] b`).textContent().then(Number);
const button = (name) => page.getByRole('button', { name, exact: true });
const inspectorRows = () => page.locator('#inspector tbody tr[data-entry]');

/** Waits until the page shows the outbox and the server as it starts. */
async function pageReady() {
  await page.locator('#inspector tbody tr').first().waitFor();
  await waitFor(async () => (await page.locator('#controls .server-state').textContent()) !== '?',
    { what: 'the control strip to know the server state' });
}

/** Waits until the badge shows `expected` counts, e.g. `{pending: 3}`. */
async function waitCounts(expected) {
  await waitFor(async () => {
    for (const [name, value] of Object.entries(expected)) {
      if ((await count(name)) !== value) return false;
    }
    return true;
  }, { what: `badge counts ${JSON.stringify(expected)}` });
}

/** The map's concepts and connections as drawn: `{text, state}` by class. */
function drawnMap() {
  return page.evaluate(() => {
    const state = (g) => ['settled', 'queued', 'conflict', 'failed', 'blocked'].find((c) => g.classList.contains(c));
    return {
      concepts: [...document.querySelectorAll('#map g.concept')].map((g) => ({ text: g.textContent, state: state(g) })),
      connections: [...document.querySelectorAll('#map g.connection')].map((g) => ({ text: g.textContent, state: state(g) })),
    };
  });
}

/** The inspector's rows as text, cell by cell. */
function inspectorTable() {
  return page.evaluate(() => [...document.querySelectorAll('#inspector tbody tr[data-entry]')].map((row) => {
    const [id, method, url, kind, priority, state, attempts] = [...row.cells].map((cell) => cell.textContent.trim());
    return { id, method, url, kind, priority, state, attempts };
  }));
}

/** Waits until the badge says the server cannot be reached. */
function waitOffline(what = 'the badge to show the server unreachable') {
  return waitFor(async () => (await badge().getAttribute('data-connection')) === 'offline', { what });
}

async function addConcept(name) {
  await page.locator('#concept-form').getByLabel('New concept').fill(name);
  await button('Add concept').click();
  await page.locator('#map g.concept', { hasText: name }).waitFor();
}

// ---- the scenarios ---------------------------------------------------------------

test('demo: changes made while the server is down wait as pending, survive a reload and go out when it is back', { skip }, async () => {
  assert.equal(await badge().getAttribute('data-connection'), 'online');
  await button('Take server down').click();
  await waitOffline();
  assert.equal(await page.locator('#controls .server-state').textContent(), 'down');

  await addConcept('Clouds');
  await addConcept('Rain');
  const connect = page.locator('#connect-form');
  await connect.getByLabel('From').selectOption({ label: 'Clouds' });
  await connect.getByLabel('To').selectOption({ label: 'Rain' });
  await connect.getByLabel('Label').fill('causes');
  await connect.getByLabel('Weight').fill('3');
  await button('Connect').click();

  await waitCounts({ pending: 3, inFlight: 0, failed: 0, blocked: 0, conflict: 0 });
  assert.match(await badge().textContent(), /Offline: server unreachable/);
  await badge().screenshot({ path: join(SCREENSHOTS, 'demo-badge-offline.png') });

  const rows = await inspectorTable();
  assert.equal(rows.length, 3, 'the inspector lists the three queued changes');
  assert.deepEqual(rows.map((r) => [r.method, r.kind, r.priority, r.state]), [
    ['POST', 'concept', 'normal', 'pending'],
    ['POST', 'concept', 'normal', 'pending'],
    ['POST', 'connection', 'normal', 'pending'],
  ]);
  assert.match(rows[0].url, /^\/api\/concepts\/[\w-]+$/);
  assert.match(rows[2].url, new RegExp(`^/api/connections/[\\w-]+ after ${rows[0].id}, ${rows[1].id}$`),
    'the connection waits for both concepts');
  await page.locator('#inspector').screenshot({ path: join(SCREENSHOTS, 'demo-inspector-pending.png') });

  const expectedMap = (state) => ({
    concepts: [{ text: 'Clouds', state }, { text: 'Rain', state }],
    connections: [{ text: 'causes · 3', state }],
  });
  assert.deepEqual(await drawnMap(), expectedMap('queued'), 'the map shows the changes as queued');
  assert.equal((await server.stats()).applied, 0, 'nothing reached the server');

  // The page and its queued changes come back without the server.
  await page.reload();
  await pageReady();
  await waitCounts({ pending: 3 });
  await waitFor(async () => JSON.stringify(await drawnMap()) === JSON.stringify(expectedMap('queued')),
    { what: 'the map to show the queued changes after a reload' });
  await waitOffline('the badge to show the server unreachable after the reload');
  if (DOCS_SCREENSHOT) {
    // From the top, so the sticky header is drawn where it belongs.
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: DOCS_SCREENSHOT, fullPage: true });
  }

  await button('Bring server up').click();
  await waitCounts({ pending: 0, inFlight: 0, failed: 0, blocked: 0, conflict: 0 });
  await waitFor(async () => JSON.stringify(await drawnMap()) === JSON.stringify(expectedMap('settled')),
    { what: 'the map to settle' });
  assert.equal(await badge().getAttribute('data-connection'), 'online');
  assert.notEqual(await page.locator('#badge .last-sync time').textContent(), 'never');
  assert.equal(await inspectorRows().count(), 0, 'the queue is empty');

  const stats = await server.stats();
  assert.equal(stats.applied, 3, 'each change applied once');
  const { concepts, connections } = await server.entities();
  assert.deepEqual(concepts.map((c) => c.name).sort(), ['Clouds', 'Rain']);
  const byName = Object.fromEntries(concepts.map((c) => [c.name, c.id]));
  assert.equal(connections.length, 1);
  assert.deepEqual(
    { from: connections[0].from, to: connections[0].to, label: connections[0].label, weight: connections[0].weight },
    { from: byName.Clouds, to: byName.Rain, label: 'causes', weight: 3 },
  );
});

test('demo: a label changed here and by another client while the server is down is settled in the conflict dialog', { skip }, async () => {
  await page.locator('#connection-list').getByRole('button', { name: /causes/ }).click();
  const editor = page.locator('#selection form[data-kind="connections"]');
  assert.equal(await editor.getByLabel('Label').inputValue(), 'causes');

  await button('Take server down').click();
  await waitOffline();
  await editor.getByLabel('Label').fill('brings');
  await button('Save').click();
  await waitCounts({ pending: 1 });

  const strip = page.locator('#controls form[data-action="edit"]');
  await strip.getByLabel('Change').selectOption({ label: 'connection Clouds → Rain' });
  await strip.getByLabel('to').fill('prevents');
  await button('Edit as another client').click();
  await waitFor(async () => (await server.entities()).connections[0].label === 'prevents',
    { what: 'the other client\'s edit on the server' });

  await button('Bring server up').click();
  const dialog = page.locator('#conflict-dialog');
  await page.locator('#conflict-dialog[open]').waitFor();
  await waitCounts({ conflict: 1, pending: 0 });

  assert.match(await dialog.locator('h2').textContent(), /connection Clouds → Rain/);
  const sides = await dialog.evaluate((element) => [...element.querySelectorAll('tbody tr')].map((row) => ({
    field: row.dataset.field,
    classes: [...row.classList].sort(),
    base: row.querySelector('td.base').textContent,
    local: row.querySelector('td.local').textContent,
    remote: row.querySelector('td.remote').textContent,
  })));
  const label = sides.find((row) => row.field === 'label');
  assert.deepEqual(label, { field: 'label', classes: ['clash', 'differs'], base: 'causes', local: 'brings', remote: 'prevents' });
  const weight = sides.find((row) => row.field === 'weight');
  assert.deepEqual(weight.classes, [], 'an unchanged field is not highlighted');
  assert.ok(await dialog.locator('tr[data-field="label"] td.local.changed').isVisible());
  await dialog.screenshot({ path: join(SCREENSHOTS, 'demo-conflict-dialog.png') });

  await button('Edit merged').click();
  await dialog.getByLabel('Merged label').fill('brings or prevents');
  await button('Send merged').click();
  await page.locator('#conflict-dialog[open]').waitFor({ state: 'detached' });
  await waitCounts({ conflict: 0, pending: 0, inFlight: 0, failed: 0 });
  await waitFor(async () => {
    const drawn = await drawnMap();
    return drawn.connections.length === 1 && drawn.connections[0].text === 'brings or prevents · 3'
      && drawn.connections[0].state === 'settled';
  }, { what: 'the merged label on the map' });

  const connection = (await server.entities()).connections[0];
  assert.equal(connection.label, 'brings or prevents', 'the merged version reached the server');
  assert.equal(connection.weight, 3);
  assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
});
