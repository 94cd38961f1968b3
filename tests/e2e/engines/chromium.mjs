// Chromium through Playwright (CDP): every control exists here.
import { chromium } from 'playwright-core';
import { pageLog } from './common.mjs';

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
  const log = pageLog('page');
  log.watch(page);
  const session = await context.newCDPSession(page);
  const workers = serviceWorkerDomain(session);
  const tab = (p, said) => ({
    run: (fn, arg) => p.evaluate(fn, arg),
    said: () => said.lines(),
    goto: (url) => p.goto(url).then(() => undefined),
    reload: () => p.reload().then(() => undefined),
  });
  return {
    ...tab(page, log),
    /** Playwright's own objects, for the scenarios only Chromium runs. */
    context,
    page,
    session,
    newTab: async (url) => {
      const other = await context.newPage();
      const said = pageLog('tab');
      said.watch(other);
      await other.goto(url);
      return { ...tab(other, said), close: () => other.close() };
    },
    offline: (on) => setOffline(context, on),
    stopWorker: async () => {
      await (await workers()).stopAll();
    },
    dispatchSync: async (tag = 'sw-outbox', lastChance = false) => (await workers()).dispatchSync(tag, lastChance),
    close: () => context.close(),
  };
}

/**
 * Takes the whole browser offline or back online. Playwright switches pages
 * before service workers, where a browser switches everything at once: a
 * page's `online` listener (the shim's flush) could reach a worker that is
 * still offline. Going online, each page holds back its `online` event
 * until the workers are online too, then fires it.
 */
async function setOffline(context, on) {
  if (on) {
    await context.setOffline(true);
    return;
  }
  const pages = context.pages();
  const eachPage = (fn) => Promise.all(pages.map((page) => page.evaluate(fn).catch(() => undefined)));
  await eachPage(() => {
    window.__heldOnline = { seen: false, hold: (event) => { event.stopImmediatePropagation(); window.__heldOnline.seen = true; } };
    window.addEventListener('online', window.__heldOnline.hold, true);
  });
  await context.setOffline(false);
  await eachPage(() => {
    const held = window.__heldOnline;
    if (!held) return;
    window.removeEventListener('online', held.hold, true);
    delete window.__heldOnline;
    if (held.seen) window.dispatchEvent(new Event('online'));
  });
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
  const latest = () => {
    const byId = new Map();
    for (const v of versions) byId.set(v.versionId, v);
    return [...byId.values()];
  };
  return {
    /**
     * Stops every worker and waits until each one that was running has
     * reported `stopped` (a page may start it again right after: that is a
     * new start, not a failed stop).
     */
    stopAll: async () => {
      const from = versions.length;
      const running = new Set(latest().filter((v) => v.runningStatus !== 'stopped').map((v) => v.versionId));
      await session.send('ServiceWorker.stopAllWorkers');
      const begin = Date.now();
      const stopped = () => {
        const seen = new Set(versions.slice(from).filter((v) => v.runningStatus === 'stopped').map((v) => v.versionId));
        return [...running].every((id) => seen.has(id));
      };
      while (!stopped()) {
        if (Date.now() - begin > 20000) throw new Error('the worker did not stop within 20 s');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    dispatchSync: (tag, lastChance) => session.send('ServiceWorker.dispatchSyncEvent', {
      origin: new URL(registration().scopeURL).origin,
      registrationId: registration().registrationId,
      tag,
      lastChance,
    }),
  };
}
