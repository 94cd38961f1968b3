//! The drain's store writes, gathered: leases of entries about to be sent
//! and deletions of sent ones wait for the next transaction. One task writes
//! everything that has gathered in one strict transaction, then what
//! gathered while it committed, and so on; so a drain with several requests
//! in flight commits far fewer transactions than it sends requests (IndexedDB
//! runs read-write transactions on the same stores one after another, and
//! each strict commit waits for the disk).

use crate::core::entry::{Entry, EntryId};
use crate::store::StoreError;
use crate::worker::js;
use crate::worker::runtime::{Inner, Wakeup};
use js_sys::Uint8Array;
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// The bodies of leased entries, in order, or why the lease failed.
type Leased = Result<Vec<Option<Uint8Array>>, StoreError>;

/// A batch of entries to lease, with the task waiting for their bodies.
type LeaseBatch = (Vec<Entry>, Rc<Handoff<Leased>>);

/// One value handed from one task to another.
struct Handoff<T> {
    value: RefCell<Option<T>>,
    wakeup: Wakeup,
}

impl<T> Handoff<T> {
    fn new() -> Rc<Handoff<T>> {
        Rc::new(Handoff {
            value: RefCell::new(None),
            wakeup: Wakeup::default(),
        })
    }

    fn put(&self, value: T) {
        *self.value.borrow_mut() = Some(value);
        self.wakeup.notify();
    }

    async fn take(&self) -> Option<T> {
        self.wakeup.wait().await;
        self.value.borrow_mut().take()
    }
}

/// Writes waiting for the next transaction.
#[derive(Default)]
pub struct Writes {
    /// Batches of entries to lease, each with the task waiting for its bodies.
    leases: RefCell<Vec<LeaseBatch>>,
    /// Sent entries to delete, each with its `sent` event.
    sent: RefCell<Vec<(EntryId, Value)>>,
    /// Tasks waiting until everything asked before them is written.
    settled: RefCell<Vec<Rc<Handoff<Leased>>>>,
    /// The writing task runs.
    writing: Cell<bool>,
}

impl Inner {
    /// Stores the leases of `entries` and gives their bodies, in the next
    /// transaction.
    pub async fn lease(self: &Rc<Self>, entries: Vec<Entry>) -> Leased {
        let handoff = Handoff::new();
        self.writes
            .leases
            .borrow_mut()
            .push((entries, handoff.clone()));
        self.clone().write_soon();
        handoff.take().await.unwrap_or_else(|| {
            Err(StoreError {
                quota: false,
                message: "the lease was never written".into(),
            })
        })
    }

    /// Deletes a sent entry (done in memory already) in the next
    /// transaction, then posts its `sent` event; the caller does not wait.
    pub fn remove_sent(self: &Rc<Self>, id: EntryId, event: Value) {
        self.writes.sent.borrow_mut().push((id, event));
        self.clone().write_soon();
    }

    /// Waits until every write asked for before has been committed (or has
    /// failed).
    pub async fn writes_settled(self: &Rc<Self>) {
        let writes = &self.writes;
        if !writes.writing.get() && writes.sent.borrow().is_empty() {
            return;
        }
        let handoff = Handoff::new();
        writes.settled.borrow_mut().push(handoff.clone());
        self.clone().write_soon();
        let _ = handoff.take().await;
    }

    fn write_soon(self: Rc<Self>) {
        if self.writes.writing.replace(true) {
            return;
        }
        wasm_bindgen_futures::spawn_local(async move {
            loop {
                let leases = std::mem::take(&mut *self.writes.leases.borrow_mut());
                let sent = std::mem::take(&mut *self.writes.sent.borrow_mut());
                let settled = std::mem::take(&mut *self.writes.settled.borrow_mut());
                if leases.is_empty() && sent.is_empty() && settled.is_empty() {
                    break;
                }
                self.write(leases, sent).await;
                for waiter in settled {
                    waiter.put(Ok(Vec::new()));
                }
            }
            self.writes.writing.set(false);
        });
    }

    /// One transaction for the gathered leases and deletions.
    async fn write(&self, leases: Vec<LeaseBatch>, sent: Vec<(EntryId, Value)>) {
        if leases.is_empty() && sent.is_empty() {
            return;
        }
        let (sent, events): (Vec<EntryId>, Vec<Value>) = sent.into_iter().unzip();
        self.write_ids(leases, &sent).await;
        // Whether or not the deletion was stored, the server has the write.
        for event in events {
            js::broadcast(event);
        }
    }

    async fn write_ids(&self, leases: Vec<LeaseBatch>, sent: &[EntryId]) {
        let store = match self.store().await {
            Ok(store) => store,
            Err(error) => {
                self.not_written(leases, sent, &error);
                return;
            }
        };
        let entries: Vec<&Entry> = leases.iter().flat_map(|(batch, _)| batch).collect();
        match store.lease(&entries, sent).await {
            Ok(mut bodies) => {
                self.forget(sent);
                for (batch, waiter) in leases {
                    let rest = bodies.split_off(batch.len().min(bodies.len()));
                    waiter.put(Ok(std::mem::replace(&mut bodies, rest)));
                }
            }
            Err(error) if !leases.is_empty() && !sent.is_empty() => {
                // The leases may be what failed (a full disk refuses puts);
                // the deletions, which free space, get a transaction of
                // their own.
                for (_, waiter) in leases {
                    waiter.put(Err(error.clone()));
                }
                match store.delete(sent).await {
                    Ok(()) => self.forget(sent),
                    Err(error) => self.not_written(Vec::new(), sent, &error),
                }
            }
            Err(error) => self.not_written(leases, sent, &error),
        }
    }

    fn not_written(&self, leases: Vec<LeaseBatch>, sent: &[EntryId], error: &StoreError) {
        if !sent.is_empty() {
            // They stay in memory as done, so this worker never sends them
            // again; a later start sends them again with the same keys.
            js::warn(&format!("outbox: removing sent entries: {error}"));
        }
        for (_, waiter) in leases {
            waiter.put(Err(error.clone()));
        }
    }
}
