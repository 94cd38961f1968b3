// The reference server (demo/), one per subject so each subject has its
// own origin, its own counters and its own faults.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

// Servers still running, stopped when this process exits however it exits
// (Playwright turns Ctrl-C into a plain exit after closing its browsers).
const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill();
});

/** Starts `outbox-demo` on free loopback ports, serving `site` and `dist` at /outbox/. */
export async function startServer({ binary, site, dist, delayMs }) {
  const child = spawn(
    binary,
    ['--port', '0', '--control-port', '0', '--site', site, '--outbox', dist, '--delay-ms', String(delayMs)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  running.add(child);
  child.once('exit', () => running.delete(child));
  const line = await new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`${binary} exited with ${code} before listening`)));
    createInterface({ input: child.stdout }).once('line', resolve);
  });
  const match = /app=(\S+) control=(\S+)/.exec(line);
  if (!match) {
    child.kill();
    throw new Error(`unexpected first line from ${binary}: ${line}`);
  }
  const [, app, control] = match;
  const call = async (path, body) => {
    const response = await fetch(control + path, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`control ${path}: HTTP ${response.status} ${await response.text()}`);
    return response.json();
  };
  return {
    app,
    stats: () => call('/control/stats'),
    reset: () => call('/control/reset', {}),
    down: () => call('/control/down', {}),
    up: () => call('/control/up', {}),
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) {
        resolve();
        return;
      }
      child.once('exit', resolve);
      child.kill();
    }),
  };
}
