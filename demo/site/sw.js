// The concept map's service worker: the outbox, configured in
// outbox.config.js, beside the site's own listener that keeps the page's
// files available offline, so a reload without a server still shows the map
// and its queued changes.
importScripts('/outbox/outbox-sw.js', '/outbox.config.js');
Outbox.install(self.OUTBOX_CONFIG);

const SHELL_CACHE = 'concept-map-shell';
const SHELL = [
  '/',
  '/style.css',
  '/app.js',
  '/model.js',
  '/map.js',
  '/badge.js',
  '/inspector.js',
  '/conflicts.js',
  '/controls.js',
  '/format.js',
  '/outbox/outbox.js',
];

self.addEventListener('install', (event) => {
  // A shell that cannot be cached must not stop the outbox from installing.
  event.waitUntil(caches.open(SHELL_CACHE).then((cache) => cache.addAll(SHELL)).catch(() => {}));
  self.skipWaiting();
});

// The outbox answers only the requests it handles (mutations and entity
// reads under /api/); this listener sees the rest. Network first, so the
// page is never stale while the server answers; the cache only when it
// does not.
self.addEventListener('fetch', (event) => {
  const { request } = event;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith('/api/') || url.pathname.startsWith('/control/')) return;
  event.respondWith(networkFirst(request));
});

async function networkFirst(request) {
  const cache = await caches.open(SHELL_CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(request, response.clone());
    return response;
  } catch (error) {
    const cached = await cache.match(request, { ignoreSearch: true });
    if (cached) return cached;
    throw error;
  }
}
