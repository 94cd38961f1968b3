// Firefox ESR through Puppeteer over WebDriver BiDi. Controls that WebDriver
// lacks (offline, stopping a worker) run as privileged script in the
// browser's own chrome scope, which MOZ_REMOTE_ALLOW_SYSTEM_ACCESS permits.
import puppeteer from 'puppeteer-core';
import { pageLog } from './common.mjs';

const FIREFOX = process.env.FIREFOX || '/usr/bin/firefox-esr';

/** Without these, Firefox keeps trying to reach Mozilla's services. */
const PREFS = {
  'services.settings.server': 'data:,#remote-settings-dummy/v1',
  'app.update.enabled': false,
  'app.update.auto': false,
  'app.normandy.enabled': false,
  'toolkit.telemetry.enabled': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'datareporting.healthreport.uploadEnabled': false,
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'browser.safebrowsing.malware.enabled': false,
  'browser.safebrowsing.phishing.enabled': false,
  'browser.safebrowsing.downloads.enabled': false,
  'browser.safebrowsing.blockedURIs.enabled': false,
  'security.OCSP.enabled': 0,
  'media.gmp-provider.enabled': false,
  'media.gmp-manager.url': 'data:,',
  'network.trr.mode': 5,
};

export async function launchFirefox(dir) {
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    userDataDir: dir,
    extraPrefsFirefox: PREFS,
    env: {
      ...process.env,
      MOZ_DISABLE_NONLOCAL_CONNECTIONS: '1',
      MOZ_CRASHREPORTER_DISABLE: '1',
      MOZ_REMOTE_ALLOW_SYSTEM_ACCESS: '1',
    },
  });
  const page = (await browser.pages())[0] || (await browser.newPage());
  const log = pageLog('page');
  log.watch(page);
  const tab = (p, said) => ({
    run: (fn, arg) => p.evaluate(fn, arg),
    said: () => said.lines(),
    goto: (url) => p.goto(url).then(() => undefined),
    reload: () => p.reload().then(() => undefined),
  });
  const chrome = (expression) => chromeEvaluate(browser, expression);
  return {
    ...tab(page, log),
    newTab: async (url) => {
      const other = await browser.newPage();
      const said = pageLog('tab');
      said.watch(other);
      await other.goto(url);
      return { ...tab(other, said), close: () => other.close() };
    },
    // NOTE Firefox: puppeteer's page.setOfflineMode takes only the page
    // offline; the worker's fetches still go out. The whole browser goes
    // offline through the IO service, as the user's "Work Offline" does.
    offline: (on) => chrome(`(async () => {
      Services.io.manageOfflineStatus = false;
      Services.io.offline = ${on ? 'true' : 'false'};
      return Services.io.offline;
    })()`),
    stopWorker: () => chrome(`(async () => {
      const manager = Cc['@mozilla.org/serviceworkers/manager;1'].getService(Ci.nsIServiceWorkerManager);
      const registrations = manager.getAllRegistrations();
      let stopped = 0;
      for (let i = 0; i < registrations.length; i++) {
        const registration = registrations.queryElementAt(i, Ci.nsIServiceWorkerRegistrationInfo);
        const worker = registration.activeWorker;
        if (worker) {
          await worker.terminateWorker();
          stopped++;
        }
      }
      return stopped;
    })()`),
    close: () => browser.close(),
  };
}

/** Evaluates `expression` (awaiting a promise) in the browser's chrome scope. */
async function chromeEvaluate(browser, expression) {
  const tree = await browser.connection.send('browsingContext.getTree', { 'moz:scope': 'chrome' });
  const context = tree.result.contexts[0].context;
  const { result } = await browser.connection.send('script.evaluate', {
    expression,
    target: { context },
    awaitPromise: true,
  });
  if (result.type !== 'success') {
    throw new Error(`chrome-scope script failed: ${JSON.stringify(result.exceptionDetails ?? result)}`);
  }
  return result.result.value;
}
