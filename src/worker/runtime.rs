//! The runtime's shared state: config, the in-memory mirror of the queue,
//! the store, and what every part needs to report changes to pages.

use crate::core::config::Config;
use crate::core::entry::{path_of, BaseVersion, Entry, EntryId};
use crate::core::lifecycle::State;
use crate::core::protocol::{event, EventKind};
use crate::core::queue::Queue;
use crate::store::{Opening, Store, StoreError, Unreadable};
use crate::worker::js;
use crate::worker::writes::Writes;
use js_sys::{Function, Promise};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

/// The state one worker instance keeps.
pub struct Inner {
    /// This outbox, for work that outlives a borrow of it.
    me: Weak<Inner>,
    /// The validated config.
    pub config: Config,
    /// Functions named in the config, by index.
    pub functions: Vec<Function>,
    /// Every entry not yet removed, by id (bodies stay in the store).
    pub queue: RefCell<Queue>,
    /// Base versions of entities on conditional routes, by URL path.
    pub bases: RefCell<HashMap<String, BaseVersion>>,
    /// Paths in `bases`, oldest first, to keep it bounded.
    pub base_order: RefCell<VecDeque<String>>,
    /// Records that could not be read at load and could not be moved aside
    /// either (normally none).
    pub unreadable: RefCell<Vec<Unreadable>>,
    /// How many records are set aside as corrupt in the store.
    pub corrupt: Cell<usize>,
    /// The current user (`setUser`); entries of other users are held.
    pub user: RefCell<Option<String>>,
    /// The next entry id to give.
    pub next_id: Cell<EntryId>,
    /// The store, once open.
    pub store: RefCell<Option<Rc<Store>>>,
    /// Resolves when the store is open and the queue loaded.
    pub ready: RefCell<Option<Promise>>,
    /// Why the store could not be opened, if it could not.
    pub store_error: RefCell<Option<String>>,
    /// Auth headers a page gave for replays; only ever in memory.
    pub auth: RefCell<Vec<(String, String)>>,
    /// The drain now running, to join.
    pub drain: RefCell<Option<Promise>>,
    /// A trigger arrived while a drain was running: plan again with the
    /// network possibly back.
    pub rerun: Cell<bool>,
    /// Something changed while a drain was running: plan again.
    pub replan: Cell<bool>,
    /// An attempt of the running drain failed for lack of network.
    pub offline_seen: Cell<bool>,
    /// The last drain stopped because the network failed.
    pub last_drain_offline: Cell<bool>,
    /// Entries this instance is sending now.
    pub sending: RefCell<HashSet<EntryId>>,
    /// The backoff timer, while one is set.
    pub timer: Cell<Option<i32>>,
    /// When the backoff timer goes off.
    pub timer_at: Cell<Option<u64>>,
    /// When the last entry was accepted by the server.
    pub last_success_at: Cell<Option<u64>>,
    /// Progress of the current drain: (finished, total).
    pub progress: Cell<(u64, u64)>,
    /// The next drain takes the drain lock from its holder: a trapped
    /// instance of this worker may have died holding it.
    pub steal_lock: Cell<bool>,
    /// The drain's store writes, gathered into few transactions.
    pub writes: Writes,
    /// At most `limits.concurrency` replays on the network at once.
    pub network: Gate,
    /// Wakes the drain loop when an attempt ends.
    pub wakeup: Wakeup,
}

/// A one-slot notification for the drain loop.
#[derive(Default)]
pub struct Wakeup {
    resolve: RefCell<Option<Function>>,
    pending: Cell<bool>,
}

impl Wakeup {
    /// Wakes the waiter, or the next one if none waits.
    pub fn notify(&self) {
        match self.resolve.borrow_mut().take() {
            Some(resolve) => {
                let _ = resolve.call0(&JsValue::UNDEFINED);
            }
            None => self.pending.set(true),
        }
    }

    /// Waits for a notification.
    pub async fn wait(&self) {
        if self.pending.replace(false) {
            return;
        }
        let promise = Promise::new(&mut |resolve, _| {
            *self.resolve.borrow_mut() = Some(resolve);
        });
        let _ = JsFuture::from(promise).await;
    }
}

/// Places for requests on the network, taken in turn.
pub struct Gate {
    free: Cell<usize>,
    waiting: RefCell<VecDeque<Rc<Wakeup>>>,
}

impl Gate {
    /// A gate with `places` places.
    pub fn new(places: usize) -> Gate {
        Gate {
            free: Cell::new(places),
            waiting: RefCell::new(VecDeque::new()),
        }
    }

    /// Waits for a place; it is given back when the pass is dropped.
    pub async fn pass(&self) -> Pass<'_> {
        if self.free.get() > 0 && self.waiting.borrow().is_empty() {
            self.free.set(self.free.get() - 1);
        } else {
            let wakeup = Rc::new(Wakeup::default());
            self.waiting.borrow_mut().push_back(wakeup.clone());
            // Woken with the place of a pass that was dropped.
            wakeup.wait().await;
        }
        Pass { gate: self }
    }
}

/// A place at a gate, held until dropped.
pub struct Pass<'a> {
    gate: &'a Gate,
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        let next = self.gate.waiting.borrow_mut().pop_front();
        match next {
            Some(wakeup) => wakeup.notify(),
            None => self.gate.free.set(self.gate.free.get() + 1),
        }
    }
}

/// Most base versions kept; the oldest are forgotten first.
pub const MAX_BASES: usize = 1000;

/// The database name; one queue per origin.
pub const DATABASE: &str = "sw-outbox";

impl Inner {
    /// A runtime for a validated config; the store opens in the background.
    pub fn new(config: Config, functions: Vec<Function>) -> Rc<Inner> {
        let network = Gate::new(config.limits.concurrency.max(1) as usize);
        let inner = Rc::new_cyclic(|me| Inner {
            me: me.clone(),
            config,
            functions,
            queue: RefCell::new(Queue::new()),
            bases: RefCell::new(HashMap::new()),
            base_order: RefCell::new(VecDeque::new()),
            unreadable: RefCell::new(Vec::new()),
            corrupt: Cell::new(0),
            user: RefCell::new(None),
            next_id: Cell::new(1),
            store: RefCell::new(None),
            ready: RefCell::new(None),
            store_error: RefCell::new(None),
            auth: RefCell::new(Vec::new()),
            drain: RefCell::new(None),
            rerun: Cell::new(false),
            replan: Cell::new(false),
            offline_seen: Cell::new(false),
            last_drain_offline: Cell::new(false),
            sending: RefCell::new(HashSet::new()),
            timer: Cell::new(None),
            timer_at: Cell::new(None),
            last_success_at: Cell::new(None),
            progress: Cell::new((0, 0)),
            steal_lock: Cell::new(false),
            writes: Writes::default(),
            network,
            wakeup: Wakeup::default(),
        });
        // Opening starts now, while the worker's script still runs.
        let opening = Store::begin_open(DATABASE);
        let loading = inner.clone();
        let ready = future_to_promise(async move {
            loading.open(opening).await;
            Ok(JsValue::UNDEFINED)
        });
        *inner.ready.borrow_mut() = Some(ready);
        inner
    }

    async fn open(self: &Rc<Self>, opening: Result<Opening, StoreError>) {
        let opened = match opening {
            Ok(opening) => opening.finish().await,
            Err(error) => Err(error),
        };
        let store = match opened {
            Ok(store) => store,
            Err(error) => {
                *self.store_error.borrow_mut() = Some(error.message);
                return;
            }
        };
        let mut reports = Vec::new();
        match store.load().await {
            Ok(loaded) => {
                self.next_id.set(loaded.next_id);
                {
                    let mut order = self.base_order.borrow_mut();
                    let mut map = self.bases.borrow_mut();
                    for (path, base) in loaded.bases {
                        order.push_back(path.clone());
                        map.insert(path, base);
                    }
                }
                *self.user.borrow_mut() = loaded.user;
                {
                    let mut queue = self.queue.borrow_mut();
                    for entry in loaded.entries {
                        queue.insert(entry);
                    }
                }
                // Records that cannot be read are moved aside, so they are
                // reported once and never looked at again by the queue.
                let mut corrupt = loaded.corrupt;
                let mut unreadable = loaded.unreadable;
                match store.set_aside(&unreadable).await {
                    Ok(moved) => {
                        corrupt += moved.len();
                        unreadable.retain(|record| {
                            let was_moved = moved.contains(&record.id);
                            if was_moved {
                                reports.push((record.clone(), true));
                            }
                            !was_moved
                        });
                    }
                    Err(error) => js::warn(&format!(
                        "outbox: moving unreadable records aside: {error}; they stay where they are"
                    )),
                }
                reports.extend(unreadable.iter().map(|record| (record.clone(), false)));
                self.corrupt.set(corrupt);
                *self.unreadable.borrow_mut() = unreadable;
            }
            Err(error) => *self.store_error.borrow_mut() = Some(error.message),
        }
        *self.store.borrow_mut() = Some(Rc::new(store));
        for (record, moved_aside) in reports {
            js::broadcast(event(
                EventKind::Failed,
                json!({"entry": null, "id": record.id, "reason": "corrupt", "message": record.error.to_string(), "movedAside": moved_aside}),
            ));
        }
    }

    /// Waits until the store is open; the store, or why there is none.
    pub async fn store(&self) -> Result<Rc<Store>, StoreError> {
        let ready = self.ready.borrow().clone();
        if let Some(ready) = ready {
            let _ = JsFuture::from(ready).await;
        }
        let store = self.store.borrow().clone();
        match store {
            Some(store) if self.store_error.borrow().is_none() => Ok(store),
            _ => Err(StoreError {
                quota: false,
                message: self
                    .store_error
                    .borrow()
                    .clone()
                    .unwrap_or_else(|| "the outbox store is not open".into()),
            }),
        }
    }

    /// Records an entity's base version (in memory and in the store), and
    /// moves it to later open entries of that entity: they were made on top
    /// of this version.
    pub async fn record_base(&self, path: &str, base: BaseVersion, after: Option<EntryId>) {
        let mut evict = Vec::new();
        {
            let mut order = self.base_order.borrow_mut();
            order.retain(|p| p != path);
            order.push_back(path.to_owned());
            while order.len() > MAX_BASES {
                if let Some(old) = order.pop_front() {
                    self.bases.borrow_mut().remove(&old);
                    evict.push(old);
                }
            }
        }
        self.bases
            .borrow_mut()
            .insert(path.to_owned(), base.clone());
        if let Ok(store) = self.store().await {
            let _ = store.put_base(path, &base, &evict).await;
        }
        if let Some(after) = after {
            let later: Vec<Entry> = self
                .queue
                .borrow()
                .values()
                .filter(|e| e.id > after && e.state.is_open() && path_of(&e.url) == path)
                .cloned()
                .collect();
            for mut entry in later {
                entry.base = Some(base.clone());
                let _ = self.save(entry).await;
            }
        }
    }

    /// A copy of an entry.
    pub fn entry(&self, id: EntryId) -> Option<Entry> {
        self.queue.borrow().get(id).cloned()
    }

    /// Replaces an entry in memory and writes it to the store.
    pub async fn save(&self, entry: Entry) -> Result<(), StoreError> {
        let store = self.store().await?;
        store.put(&[&entry]).await?;
        self.queue.borrow_mut().insert(entry);
        Ok(())
    }

    /// Removes entries from memory and the store.
    pub async fn remove(&self, ids: &[EntryId]) -> Result<(), StoreError> {
        let store = self.store().await?;
        store.delete(ids).await?;
        self.forget(ids);
        Ok(())
    }

    /// Entries gone from the store leave the queue too.
    pub fn forget(&self, ids: &[EntryId]) {
        let mut queue = self.queue.borrow_mut();
        for id in ids {
            queue.remove(*id);
        }
    }

    /// True if an open entry (one not yet final) that is not held for
    /// another user has this entity key.
    pub fn entity_has_open_entries(&self, entity: &str) -> bool {
        let user = self.user.borrow();
        self.queue
            .borrow()
            .entity_is_open_for(entity, user.as_deref())
    }

    /// The queue's status, as pages see it.
    pub fn status(&self) -> Value {
        let mut counts = serde_json::Map::new();
        for state in State::ALL {
            if state != State::Done {
                counts.insert(state.as_str().to_owned(), json!(0));
            }
        }
        let queue = self.queue.borrow();
        for state in State::ALL {
            if let Some(count) = counts.get_mut(state.as_str()) {
                *count = json!(queue.count_in(state));
            }
        }
        let online = js::online();
        let (done, total) = self.progress.get();
        json!({
            "online": online,
            "counts": counts,
            "total": queue.len(),
            "inFlight": self.sending.borrow().len(),
            "lastSuccessAt": self.last_success_at.get(),
            "draining": self.drain.borrow().is_some(),
            "progress": {"done": done, "total": total},
            "unreadable": self.unreadable.borrow().iter().map(|u| json!({"id": u.id, "message": u.error.to_string()})).collect::<Vec<_>>(),
            "corrupt": self.corrupt.get(),
            "user": *self.user.borrow(),
            "held": queue.held(self.user.borrow().as_deref()),
            "storeError": *self.store_error.borrow(),
        })
    }

    /// Posts an event to every window client.
    pub async fn emit(&self, kind: EventKind, detail: Value) {
        js::broadcast(event(kind, detail));
    }

    /// Posts the current status to every window client, computed when it
    /// is posted.
    pub async fn emit_status(&self) {
        let me = self.me.clone();
        js::broadcast_status(Box::new(move || me.upgrade().map(|inner| inner.status())));
    }
}
