// The one driver layer of the end-to-end tests: the same scenario runs in
// Chromium (Playwright over CDP), Firefox ESR (Puppeteer over WebDriver
// BiDi) and WebKitGTK (plain WebDriver HTTP), chosen by OUTBOX_ENGINE.
//
// Every engine gives the same object: `run(fn, arg)` in the page, `goto`,
// `reload`, `said()` (what the page logged, where the engine tells),
// `newTab`, `close({keepProfile})`, and the controls it has:
// `offline(on)`, `stopWorker()`, `dispatchSync(tag, lastChance)`. A
// scenario that needs a control an engine lacks is skipped there with the
// reason `needs()` gives.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchChromium } from './chromium.mjs';
import { launchFirefox } from './firefox.mjs';
import { launchWebKit } from './webkit.mjs';

export const ENGINES = ['chromium', 'firefox', 'webkit'];
export const ENGINE = process.env.OUTBOX_ENGINE || 'chromium';
if (!ENGINES.includes(ENGINE)) {
  throw new Error(`OUTBOX_ENGINE=${ENGINE} is not one of ${ENGINES.join(', ')}`);
}

/** Why an engine lacks a control; a control not named here is available. */
const MISSING = {
  chromium: {},
  firefox: {
    sync: 'Firefox has no Background Sync (registration.sync is undefined)',
    cdp: 'the Chrome DevTools Protocol exists only in Chromium',
    playwright: 'Playwright drives only Chromium here (its Firefox build cannot be downloaded)',
  },
  webkit: {
    sync: 'WebKit has no Background Sync (registration.sync is undefined)',
    cdp: 'the Chrome DevTools Protocol exists only in Chromium',
    playwright: 'Playwright drives only Chromium here (its WebKit build cannot be downloaded)',
    offline: 'WebKitWebDriver has no command that takes the browser offline',
    stopWorker: 'WebKitWebDriver has no command that stops a service worker',
  },
};

/**
 * For a test's `skip` option: false when this engine has every control
 * named, else the reason it is skipped here.
 */
export function needs(...controls) {
  const known = new Set(Object.values(MISSING).flatMap(Object.keys));
  const unknown = controls.filter((control) => !known.has(control));
  if (unknown.length) throw new Error(`needs(): no control is called ${unknown.join(', ')}`);
  const missing = controls.map((control) => MISSING[ENGINE][control]).filter(Boolean);
  return missing.length === 0 ? false : `skipped in ${ENGINE}: ${missing.join('; ')}`;
}

/**
 * Starts the engine with a fresh profile, or with `profile` (a folder a
 * previous `close({keepProfile: true})` left), and gives its driver.
 */
export async function launch({ profile } = {}) {
  const dir = profile || mkdtempSync(join(tmpdir(), `outbox-${ENGINE}-`));
  const launchers = { chromium: launchChromium, firefox: launchFirefox, webkit: launchWebKit };
  const driver = await launchers[ENGINE](dir);
  const close = driver.close;
  return Object.assign(driver, {
    engine: ENGINE,
    profile: dir,
    close: async ({ keepProfile = false } = {}) => {
      await close();
      // Retries: a browser's helper processes may still be writing there
      // for a moment after it closed.
      if (!keepProfile) rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    },
  });
}
