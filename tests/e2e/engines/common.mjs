// Small helpers the engine drivers share.
import { createServer } from 'node:net';

/**
 * What a page said: console lines, uncaught errors and failed requests,
 * the last 100 kept for error messages (`lines()`), all shown as they come
 * with OUTBOX_E2E_VERBOSE set. `watch(page)` listens on a Playwright or
 * Puppeteer page (both have these events).
 */
export function pageLog(source) {
  const kept = [];
  const add = (text) => {
    if (process.env.OUTBOX_E2E_VERBOSE) console.log(`[${source}] ${text}`);
    kept.push(text);
    if (kept.length > 100) kept.shift();
  };
  return {
    add,
    lines: () => [...kept],
    watch(page) {
      page.on('console', (message) => add(message.text()));
      page.on('pageerror', (error) => add(`uncaught: ${error.message}`));
      page.on('requestfailed', (request) => {
        const failure = typeof request.failure === 'function' ? request.failure() : null;
        add(`request failed: ${request.method()} ${request.url()} ${failure ? failure.errorText : ''}`);
      });
      return page;
    },
  };
}

/** A loopback port free right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
