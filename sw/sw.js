// A ready service worker for sites without one of their own. Copy it to the
// site root beside an `outbox.config.js` that sets `self.OUTBOX_CONFIG`:
//   self.OUTBOX_CONFIG = { routes: [{ match: '/api/' }] };
// and register it from the page with `Outbox.register('/sw.js')`.
importScripts('/outbox/outbox-sw.js', '/outbox.config.js');
self.addEventListener('install', () => self.skipWaiting());
Outbox.install(self.OUTBOX_CONFIG);
