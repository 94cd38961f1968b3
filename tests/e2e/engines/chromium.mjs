// Chromium through Playwright (CDP): every control exists here.
import { chromium } from 'playwright-core';
import { verbose } from './common.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/** Without these, headless Chromium stalls on the closed network. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launchChromium(dir) {
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
  });
  const page = context.pages()[0] || (await context.newPage());
  page.on('console', (message) => verbose('page', message.text()));
  const session = await context.newCDPSession(page);
  const workers = serviceWorkerDomain(session);
  const tab = (p) => ({
    run: (fn, arg) => p.evaluate(fn, arg),
    goto: (url) => p.goto(url).then(() => undefined),
    reload: () => p.reload().then(() => undefined),
  });
  return {
    ...tab(page),
    /** Playwright's own objects, for the scenarios only Chromium runs. */
    context,
    page,
    session,
    newTab: async (url) => {
      const other = await context.newPage();
      other.on('console', (message) => verbose('tab', message.text()));
      await other.goto(url);
      return { ...tab(other), close: () => other.close() };
    },
    offline: (on) => context.setOffline(on),
    stopWorker: async () => {
      const domain = await workers();
      await domain.stopAll();
      await domain.waitStopped();
    },
    dispatchSync: async (tag = 'sw-outbox', lastChance = false) => (await workers()).dispatchSync(tag, lastChance),
    close: () => context.close(),
  };
}

/** The ServiceWorker CDP domain, enabled on first use. */
function serviceWorkerDomain(session) {
  let enabled;
  return () => {
    enabled ||= enable(session);
    return enabled;
  };
}

async function enable(session) {
  const registrations = [];
  const versions = [];
  session.on('ServiceWorker.workerRegistrationUpdated', (event) => registrations.push(...event.registrations));
  session.on('ServiceWorker.workerVersionUpdated', (event) => versions.push(...event.versions));
  await session.send('ServiceWorker.enable');
  const start = Date.now();
  while (!registrations.some((r) => !r.isDeleted)) {
    if (Date.now() - start > 20000) throw new Error('no service worker registration reported within 20 s');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const registration = () => registrations.filter((r) => !r.isDeleted).at(-1);
  const allStopped = () => {
    const latest = new Map();
    for (const v of versions) latest.set(v.versionId, v);
    return [...latest.values()].every((v) => v.runningStatus === 'stopped');
  };
  return {
    stopAll: () => session.send('ServiceWorker.stopAllWorkers'),
    dispatchSync: (tag, lastChance) => session.send('ServiceWorker.dispatchSyncEvent', {
      origin: new URL(registration().scopeURL).origin,
      registrationId: registration().registrationId,
      tag,
      lastChance,
    }),
    waitStopped: async () => {
      const begin = Date.now();
      while (!allStopped()) {
        if (Date.now() - begin > 20000) throw new Error('the worker did not stop within 20 s');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
  };
}
