// sw-outbox as a site installs it: the runtime from /outbox/ and one route
// for the benchmark's API, everything else at its defaults
// (`?concurrency=n` sets `limits.concurrency`).
importScripts('/outbox/outbox-sw.js');
const concurrency = new URL(self.location.href).searchParams.get('concurrency');
Outbox.install({
  routes: [{ match: '/api/uploads/', kind: 'upload' }],
  ...(concurrency === null ? {} : { limits: { concurrency: Number(concurrency) } }),
});
