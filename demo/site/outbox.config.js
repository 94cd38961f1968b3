// The outbox config of the concept-map demo, loaded by sw.js with
// importScripts (a worker cannot read JSON synchronously).
//
// Concepts and connections are edited in place, so their routes are
// conditional: the worker remembers the version each edit started from and
// sends it as If-Match, which is how a change made elsewhere meanwhile is
// detected. Checkpoints are only ever created, never edited.
self.OUTBOX_CONFIG = {
  routes: [
    // A concept is a name: the later write wins.
    { match: '/api/concepts/', kind: 'concept', strategy: 'last-write-wins', conditional: true },
    // A connection has independent fields (label, weight): combine both
    // sides' changes; the same field changed two ways goes to the page.
    { match: '/api/connections/', kind: 'connection', strategy: 'merge', conditional: true },
    // A checkpoint records the map at one moment: the first one saved under
    // an id stands, and it goes before anything else in the queue.
    { match: '/api/checkpoints/', kind: 'checkpoint', strategy: 'first-write-wins', priority: 'critical' },
  ],
  // Shorter than the defaults, so a server that comes back is noticed
  // within seconds while you watch.
  retry: { baseDelayMs: 1000, maxDelayMs: 15000 },
};
