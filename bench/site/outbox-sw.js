// sw-outbox as a site installs it: the runtime from /outbox/ and one route
// for the benchmark's API, everything else at its defaults.
importScripts('/outbox/outbox-sw.js');
Outbox.install({
  routes: [{ match: '/api/uploads/', kind: 'upload' }],
});
