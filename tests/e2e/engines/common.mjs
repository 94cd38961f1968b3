// Small helpers the engine drivers share.
import { createServer } from 'node:net';

/** Console lines from pages, shown with OUTBOX_E2E_VERBOSE set. */
export function verbose(source, text) {
  if (process.env.OUTBOX_E2E_VERBOSE) console.log(`[${source}] ${text}`);
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
