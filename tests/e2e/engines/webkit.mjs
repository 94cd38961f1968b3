// WebKitGTK through WebKitWebDriver (plain WebDriver over HTTP). Runs under
// a display (`xvfb-run`). The browser is webkit-browser.py, which keeps its
// data in the profile folder, so a later session on the same folder is a
// browser restart with the queue still on disk.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, sleep } from './common.mjs';

const DRIVER = process.env.WEBKIT_WEBDRIVER || '/usr/bin/WebKitWebDriver';
const BROWSER = join(dirname(fileURLToPath(import.meta.url)), 'webkit-browser.py');
const SCRIPT_TIMEOUT_MS = 300000;

export async function launchWebKit(dir) {
  if (!process.env.DISPLAY) {
    throw new Error('WebKitGTK needs a display: run the WebKit end-to-end tests under `xvfb-run -a`');
  }
  const port = await freePort();
  const driver = spawn(DRIVER, [`--port=${port}`, '--host=127.0.0.1'], { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise((resolve) => driver.once('exit', resolve));
  const base = `http://127.0.0.1:${port}`;
  const raw = async (method, path, body) => {
    const response = await fetch(base + path, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const answer = await response.json();
    // WebDriver errors come with an error status; a page result may well
    // have an `error` field of its own.
    if (!response.ok) {
      throw new Error(`WebDriver ${method} ${path}: ${answer.value?.error}: ${answer.value?.message}`);
    }
    return answer.value;
  };
  let sessionId;
  for (let attempt = 0; ; attempt++) {
    try {
      const session = await raw('POST', '/session', {
        capabilities: {
          alwaysMatch: {
            'webkitgtk:browserOptions': { binary: BROWSER, args: ['--automation', `--data-dir=${dir}`] },
          },
        },
      });
      sessionId = session.sessionId;
      break;
    } catch (error) {
      // The driver may not listen yet.
      if (attempt >= 50) {
        driver.kill();
        throw new Error(`cannot start a WebKit session: ${error.message}`);
      }
      await sleep(100);
    }
  }
  const session = (path) => `/session/${sessionId}${path}`;
  await raw('POST', session('/timeouts'), { script: SCRIPT_TIMEOUT_MS, pageLoad: 60000 });

  // A session runs one command at a time, and a command for a tab must
  // follow a switch to that tab: every call goes through this queue.
  let queue = Promise.resolve();
  let current = await raw('GET', session('/window'));
  const inWindow = (handle, work) => {
    const next = queue.then(async () => {
      if (handle !== current) {
        await raw('POST', session('/window'), { handle });
        current = handle;
      }
      return work();
    });
    queue = next.catch(() => {});
    return next;
  };
  const tab = (handle) => ({
    run: (fn, arg) => inWindow(handle, async () => {
      const result = await raw('POST', session('/execute/async'), {
        script: `const done = arguments[arguments.length - 1];
          const fn = (${fn.toString()});
          Promise.resolve().then(() => fn(arguments[0])).then(
            (value) => done({ ok: true, value: value === undefined ? null : value }),
            (error) => done({ ok: false, error: error && error.stack ? error + '\\n' + error.stack : String(error) }));`,
        args: [arg === undefined ? null : arg],
      });
      if (!result.ok) throw new Error(`in the page: ${result.error}`);
      return result.value;
    }),
    goto: (url) => inWindow(handle, () => raw('POST', session('/url'), { url }).then(() => undefined)),
    reload: () => inWindow(handle, () => raw('POST', session('/refresh'), {}).then(() => undefined)),
    // WebDriver classic gives no console or network events.
    said: () => [],
  });
  const main = current;
  return {
    ...tab(main),
    newTab: async (url) => {
      const { handle } = await inWindow(main, () => raw('POST', session('/window/new'), { type: 'tab' }));
      const other = tab(handle);
      await other.goto(url);
      return {
        ...other,
        close: () => inWindow(handle, async () => {
          await raw('DELETE', session('/window'));
          await raw('POST', session('/window'), { handle: main });
          current = main;
        }),
      };
    },
    close: async () => {
      await queue;
      await raw('DELETE', session('')).catch(() => {});
      driver.kill();
      await exited;
      // A browser restart must not overlap the old browser: two browsers on
      // one data folder would each run the worker against the same files.
      await browserGone(dir);
    },
  };
}

/** Process ids whose command line names `--data-dir=<dir>`. */
function browsersOn(dir) {
  const wanted = `--data-dir=${dir}`;
  const found = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').includes(wanted)) found.push(Number(name));
    } catch {
      // The process ended while being read.
    }
  }
  return found;
}

/** Waits for the browser on `dir` to exit (WebDriver ends it); kills it after 10 s. */
async function browserGone(dir) {
  const start = Date.now();
  while (browsersOn(dir).length > 0) {
    if (Date.now() - start > 10000) {
      for (const pid of browsersOn(dir)) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
      }
      break;
    }
    await sleep(50);
  }
  // Its web and network processes end when it does.
  await sleep(300);
}
