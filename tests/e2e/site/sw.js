// The test site's service worker: the outbox beside the site's own listeners.
// The config comes from the script URL (`/sw.js?config=<json>`), so each test
// can switch triggers and limits.

// A real wasm trap on demand, for the trap-recovery tests: after the page
// sends `{site: 'arm-trap', prefix}`, the next call from the outbox's wasm
// to an import whose name starts with `prefix` runs a one-instruction wasm
// function (`unreachable`), so a genuine RuntimeError unwinds through the
// outbox's wasm frames exactly as a trap inside them would.
const trapper = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: () -> ()
  0x03, 0x02, 0x01, 0x00, // one function of that type
  0x07, 0x08, 0x01, 0x04, 0x74, 0x72, 0x61, 0x70, 0x00, 0x00, // export "trap"
  0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b, // body: unreachable
])));
let armedPrefix = null;
let trapsFired = 0;
const RealInstance = WebAssembly.Instance;
WebAssembly.Instance = function (module, imports) {
  for (const namespace of Object.values(imports || {})) {
    for (const [name, value] of Object.entries(namespace)) {
      if (typeof value !== 'function') continue;
      namespace[name] = function (...args) {
        if (armedPrefix !== null && name.startsWith(armedPrefix)) {
          armedPrefix = null;
          trapsFired += 1;
          trapper.exports.trap();
        }
        return value.apply(this, args);
      };
    }
  }
  return new RealInstance(module, imports);
};
self.addEventListener('message', (event) => {
  if (event.data && event.data.site === 'arm-trap') {
    armedPrefix = event.data.prefix;
    event.ports[0].postMessage({ site: 'armed' });
  } else if (event.data && event.data.site === 'served-gets') {
    event.ports[0].postMessage({ site: 'served-gets', count: siteServedGets });
  } else if (event.data && event.data.site === 'traps') {
    event.ports[0].postMessage({ site: 'traps', fired: trapsFired });
  }
});

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

// On routes with `recordGets: false` the site serves the GETs itself and
// hands each response to the outbox as the entity's base version.
const siteServedPrefixes = (config.routes || [])
  .filter((route) => route.recordGets === false)
  .map((route) => route.match);
let siteServedGets = 0;
self.addEventListener('fetch', (event) => {
  const path = new URL(event.request.url).pathname;
  if (event.request.method === 'GET' && siteServedPrefixes.some((prefix) => path.startsWith(prefix))) {
    event.respondWith(fetch(event.request).then(async (response) => {
      siteServedGets += 1;
      await Outbox.recordBase(event.request, response.clone());
      return response;
    }));
  }
});
self.addEventListener('message', (event) => {
  if (event.data && event.data.site === 'ping') {
    event.source.postMessage({ site: 'pong' });
  }
});
