// The loader: starts the wasm synchronously (its bytes travel in this file,
// so a worker started offline still has them), defines the global `Outbox`
// and forwards the worker's events to the Rust runtime, which decides
// everything. If the wasm instance traps, the loader retires it and answers
// the requests it had taken through a fresh instance (through the network if
// that one traps too).
//
// Every mutation the outbox takes gets its Idempotency-Key here, before the
// wasm sees it: if the instance traps after storing the entry, the network
// answer and the later replay carry the same key, so a server that honours
// keys applies the write once. Its body is read here, once: the wasm gets the
// bytes, and a copy of the request is only made if an instance traps.
(function () {
  'use strict';
  const bytes = self.__outboxWasmBytes;
  let config = null;
  let runtime = null;
  let startWork = null;
  // Requests handed to the current instance, answered from the network if it traps.
  const taken = new Set();
  // Traps seen in this worker's life.
  let traps = 0;
  // The bindings of the current instance.
  let bindings = null;

  function create() {
    bindings = __outboxBindings();
    bindings.initSync({ module: bytes });
    runtime = new bindings.Runtime(config);
    if (traps > 0) {
      // The trapped instance may have died holding the drain lock.
      runtime.stealDrainLock();
    }
    startWork = runtime.start().catch((error) => trapped(error));
  }

  function trapped(error) {
    if (!(error instanceof WebAssembly.RuntimeError) || runtime === null) {
      return;
    }
    traps += 1;
    console.error('outbox: the wasm instance trapped; starting a fresh one', error);
    runtime = null;
    // Its leftover callbacks now fail with a plain Error instead of
    // trapping again, so they cannot be taken for a trap of the next one.
    bindings.__outboxRetire();
    const answers = [...taken];
    taken.clear();
    for (const answer of answers) {
      try {
        answer();
      } catch (failure) {
        console.error('outbox: answering a request after a trap failed', failure);
      }
    }
  }

  // A trap in the instance's asynchronous work (its tasks run as microtasks
  // and callbacks) reaches the scope as an uncaught error, not as a rejection
  // of the promise the loader holds.
  self.addEventListener('error', (event) => trapped(event.error));
  self.addEventListener('unhandledrejection', (event) => trapped(event.reason));

  function isMutation(request) {
    return request.method !== 'GET' && request.method !== 'HEAD';
  }

  // A fresh request like `request` (whose body is used up) with `body` and,
  // when it has none, the Idempotency-Key `key`. An engine that refuses to
  // build on a used request gets one made from its parts.
  function copyOf(request, body, key) {
    const headers = new Headers(request.headers);
    if (key !== null && !headers.has('idempotency-key')) {
      headers.set('Idempotency-Key', key);
    }
    const init = body === null ? { headers } : { headers, body };
    try {
      return new Request(request, init);
    } catch (error) {
      return new Request(request.url, {
        ...init,
        method: request.method,
        credentials: request.credentials,
        mode: 'same-origin',
      });
    }
  }

  function outboxError(error) {
    return new Response(JSON.stringify({ error: 'outbox', message: String(error) }), {
      status: 500,
      headers: { 'content-type': 'application/json' },
    });
  }

  function current() {
    if (runtime === null) {
      create();
    }
    return runtime;
  }

  // Keeps the worker alive for the start-up drain on whatever event woke it.
  function keepStartWork(event) {
    if (startWork !== null && typeof event.waitUntil === 'function') {
      event.waitUntil(startWork);
      startWork = null;
    }
  }

  function onFetch(event) {
    let handles = false;
    try {
      handles = current().handles(event.request);
    } catch (error) {
      trapped(error);
      return; // Left to the site's own listeners or the network.
    }
    keepStartWork(event);
    if (!handles) {
      return;
    }
    event.respondWith(answer(event.request, false));
  }

  // The outbox's response to `request`. If the instance traps before it
  // answers, a fresh instance answers a copy of it (finding the entry if the
  // trapped one had stored it); if that one traps too, the network does.
  function answer(request, recovered) {
    const mutation = isMutation(request);
    const key = mutation ? request.headers.get('idempotency-key') || crypto.randomUUID() : null;
    const reading = mutation ? request.arrayBuffer() : Promise.resolve(null);
    return reading.then((body) => new Promise((resolve) => {
      const instead = () => {
        try {
          const copy = copyOf(request, body, key);
          return recovered ? fetch(copy) : again(copy);
        } catch (error) {
          return outboxError(error);
        }
      };
      const fallback = () => resolve(instead());
      let work;
      try {
        work = current().handle(request, body, key, recovered);
      } catch (error) {
        trapped(error);
        resolve(instead());
        return;
      }
      taken.add(fallback);
      work
        .then(resolve, (error) => {
          trapped(error);
          resolve(outboxError(error));
        })
        .finally(() => taken.delete(fallback));
    }), outboxError);
  }

  function again(request) {
    try {
      if (!current().handles(request)) {
        return fetch(request);
      }
    } catch (error) {
      trapped(error);
      return fetch(request);
    }
    return answer(request, true);
  }

  function onSync(event) {
    keepStartWork(event);
    let work;
    try {
      work = current().sync(event.tag);
    } catch (error) {
      trapped(error);
      return;
    }
    if (work) {
      event.waitUntil(work);
    }
  }

  function onMessage(event) {
    keepStartWork(event);
    let work;
    try {
      work = current().message(event);
    } catch (error) {
      trapped(error);
      return;
    }
    if (work) {
      event.waitUntil(work.catch(trapped));
    }
  }

  self.Outbox = {
    /** Validates the config (throws an Error naming the field) and installs the listeners. */
    install(options) {
      if (config !== null) {
        throw new Error('Outbox.install was already called in this worker');
      }
      config = options;
      try {
        create();
      } catch (error) {
        config = null;
        runtime = null;
        throw error;
      }
      self.addEventListener('install', (event) => keepStartWork(event));
      self.addEventListener('activate', (event) => {
        // Claim clients so that a first visit is controlled at once.
        event.waitUntil(self.clients.claim());
        keepStartWork(event);
      });
      self.addEventListener('fetch', onFetch);
      self.addEventListener('sync', onSync);
      self.addEventListener('message', onMessage);
    },
    /** Drains now (joining a running drain); resolves with the status when it ends. */
    flush() {
      if (config === null) {
        return Promise.reject(new Error('call Outbox.install(config) first'));
      }
      return current().flush();
    },
    /**
     * Records `response` (to a GET of an entity on a conditional route) as the
     * entity's base version, for a site whose own fetch listener serves those
     * GETs. Resolves to true if it was recorded.
     */
    recordBase(request, response) {
      if (config === null) {
        return Promise.reject(new Error('call Outbox.install(config) first'));
      }
      return current().recordBase(request, response);
    },
    /** The queue's status. */
    status() {
      if (config === null) {
        return Promise.reject(new Error('call Outbox.install(config) first'));
      }
      return current().status();
    },
  };
})();
