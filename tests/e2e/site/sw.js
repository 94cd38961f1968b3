// The test site's service worker: the outbox beside the site's own listeners.
// The config comes from the script URL (`/sw.js?config=<json>`), so each test
// can switch triggers and limits.
importScripts('/outbox/outbox-sw.js');

const params = new URL(self.location.href).searchParams;
const config = JSON.parse(params.get('config') || '{"routes":[{"match":"/api/"}]}');
if (config.routes) {
  for (const route of config.routes) {
    // Functions cannot travel in JSON: name a ready one instead.
    if (route.replayHeaders === 'token-from-cache') {
      route.replayHeaders = async () => ({ 'X-Replay-Token': 'from-function' });
    }
    // Custom conflict resolvers, by name.
    if (route.resolve === 'prefer-local-name') {
      route.resolve = (base, local, remote) => ({ action: 'send', body: { ...remote, name: local.name } });
    } else if (route.resolve === 'throws') {
      route.resolve = () => {
        throw new Error('resolver exploded');
      };
    }
  }
}
Outbox.install(config);
self.addEventListener('install', () => self.skipWaiting());

// The site's own listeners, which must keep working beside the outbox.
self.addEventListener('fetch', (event) => {
  if (new URL(event.request.url).pathname === '/own/echo') {
    event.respondWith(new Response('own fetch listener', { headers: { 'content-type': 'text/plain' } }));
  }
});
self.addEventListener('message', (event) => {
  if (event.data && event.data.site === 'ping') {
    event.source.postMessage({ site: 'pong' });
  }
});
