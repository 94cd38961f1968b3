// One Chromium per subject, each with a fresh on-disk profile (so
// IndexedDB really writes to disk and durability costs what it costs),
// all from the same binary with the end-to-end tests' flags.
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from '../../tests/e2e/harness.mjs';

/** Polls `check` until it gives a truthy value; throws after `timeoutMs`. */
export async function waitFor(check, { timeoutMs = 30000, intervalMs = 50, what = 'condition' } = {}) {
  const start = Date.now();
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Opens the subject's page in a fresh profile and waits until its driver is ready. */
export async function openSubject({ subject, server, executablePath, profiles }) {
  const profile = join(profiles, subject.id);
  rmSync(profile, { recursive: true, force: true });
  mkdirSync(profile, { recursive: true });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
  });
  const page = context.pages()[0] || (await context.newPage());
  page.on('console', (message) => {
    if (process.env.OUTBOX_BENCH_VERBOSE) console.log(`[${subject.id}] ${message.text()}`);
  });
  page.on('pageerror', (error) => console.error(`[${subject.id}] page error: ${error.message}`));
  await page.goto(`${server.app}/index.html`);
  await page.evaluate(() => window.benchReady);
  const session = await context.newCDPSession(page);
  const versions = [];
  if (subject.worker) {
    session.on('ServiceWorker.workerVersionUpdated', (event) => versions.push(...event.versions));
    await session.send('ServiceWorker.enable');
  }
  return {
    subject,
    server,
    context,
    page,
    run: (fn, arg) => page.evaluate(fn, arg),
    offline: (value) => context.setOffline(value),
    /** Stops the worker (CDP) and waits until Chromium reports it stopped. */
    async stopWorker() {
      await session.send('ServiceWorker.stopAllWorkers');
      await waitFor(() => {
        const latest = new Map();
        for (const version of versions) latest.set(version.versionId, version);
        return latest.size > 0 && [...latest.values()].every((version) => version.runningStatus === 'stopped');
      }, { what: `the ${subject.label} worker to stop` });
    },
    browserVersion: async () => (await session.send('Browser.getVersion')).product,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
