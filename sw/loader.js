// The loader: starts the wasm synchronously (its bytes travel in this file,
// so a worker started offline still has them), defines the global `Outbox`
// and forwards the worker's events to the Rust runtime, which decides
// everything. If the wasm instance traps, the loader answers the requests it
// had taken from the network and starts a fresh instance for the next event.
(function () {
  'use strict';
  const bytes = self.__outboxWasmBytes;
  let config = null;
  let runtime = null;
  let startWork = null;
  // Requests handed to the current instance, answered from the network if it traps.
  const taken = new Set();

  function create() {
    const bindings = __outboxBindings();
    bindings.initSync({ module: bytes });
    runtime = new bindings.Runtime(config);
    startWork = runtime.start().catch((error) => trapped(error));
  }

  function trapped(error) {
    if (!(error instanceof WebAssembly.RuntimeError)) {
      return;
    }
    console.error('outbox: the wasm instance trapped; starting a fresh one', error);
    runtime = null;
    for (const answer of taken) {
      answer();
    }
    taken.clear();
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
    const backup = event.request.clone();
    event.respondWith(
      new Promise((resolve) => {
        const fallback = () => resolve(fetch(backup));
        taken.add(fallback);
        runtime
          .handle(event.request)
          .then(resolve, (error) => {
            trapped(error);
            resolve(
              new Response(JSON.stringify({ error: 'outbox', message: String(error) }), {
                status: 500,
                headers: { 'content-type': 'application/json' },
              }),
            );
          })
          .finally(() => taken.delete(fallback));
      }),
    );
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
