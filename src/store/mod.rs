//! IndexedDB persistence of the queue.
//!
//! Schema (database version 3; opening creates the stores a database of
//! version 1 or 2 lacks and changes nothing in the others):
//! - `entries`: key = entry id (number), value = the stored record (JSON text
//!   from [`crate::core::entry::encode`]);
//! - `bodies`: key = entry id, value = the body bytes (`Uint8Array`), kept
//!   apart so the queue loads without them;
//! - `meta`: key = name; `nextId` keeps entry ids increasing across restarts,
//!   so an id a page holds (e.g. in `Outbox-Depends-On`) never names a
//!   different entry later; `user` is the current user (`setUser`), kept
//!   across worker restarts;
//! - `bases` (version 2): key = entity URL path, value = the base version
//!   (JSON text of [`BaseVersion`]) seen in the last successful GET or
//!   mutation response, for conditional routes;
//! - `corrupt` (version 3): key = the id of a record that could not be read,
//!   value = `{id, record, body, error, movedAt}`: the record and its body as
//!   they were, why they could not be read, and when they were moved aside
//!   out of `entries` and `bodies`.
//!
//! Every write that a page is told about is one transaction opened with
//! `durability: "strict"`: the `idb` crate cannot pass transaction options,
//! so the transaction is opened through a small binding and then awaited with
//! `idb`.

use crate::core::entry::{self, BaseVersion, DecodeError, Entry, EntryId};
use idb::request::OpenDatabaseRequest;
use idb::{
    Database, DatabaseEvent, Factory, ObjectStoreParams, TransactionMode, TransactionResult,
};
use js_sys::{Array, Object, Reflect, Uint8Array};
use std::fmt;
use std::future::IntoFuture;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{IdbDatabase, IdbTransaction};

const VERSION: u32 = 3;
const ENTRIES: &str = "entries";
const BODIES: &str = "bodies";
const META: &str = "meta";
const BASES: &str = "bases";
const CORRUPT: &str = "corrupt";
const NEXT_ID: &str = "nextId";
const USER: &str = "user";

#[wasm_bindgen]
extern "C" {
    /// An `IDBDatabase`, seen through the one method web-sys lacks.
    type RawDatabase;

    /// `IDBDatabase.transaction(stores, mode, options)`.
    #[wasm_bindgen(method, catch, js_name = transaction)]
    fn transaction_with_options(
        this: &RawDatabase,
        stores: &Array,
        mode: &str,
        options: &JsValue,
    ) -> Result<IdbTransaction, JsValue>;
}

/// A storage failure, in words for the page.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreError {
    /// True when the browser refused for lack of space.
    pub quota: bool,
    /// What happened.
    pub message: String,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<idb::Error> for StoreError {
    fn from(error: idb::Error) -> Self {
        let message = error.to_string();
        StoreError {
            quota: message.contains("Quota"),
            message: format!("IndexedDB: {message}"),
        }
    }
}

/// Why a transaction did not commit: its error when the browser gives one
/// (a `QuotaExceededError` when it refused for lack of space).
fn not_committed(transaction: &IdbTransaction, fallback: StoreError) -> StoreError {
    match transaction.error() {
        Some(error) => {
            let name = error.name();
            let quota = name == "QuotaExceededError";
            let mut message = error.message();
            if message.is_empty() && quota {
                message = "the browser has no more room for this site's storage".into();
            }
            StoreError {
                quota,
                message: format!("IndexedDB transaction failed: {name}: {message}"),
            }
        }
        None => fallback,
    }
}

fn js_error(context: &str, error: JsValue) -> StoreError {
    let name = Reflect::get(&error, &"name".into())
        .ok()
        .and_then(|n| n.as_string())
        .unwrap_or_default();
    let message = Reflect::get(&error, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_else(|| format!("{error:?}"));
    StoreError {
        quota: name == "QuotaExceededError",
        message: format!("IndexedDB {context}: {name} {message}"),
    }
}

/// A record that could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    /// Its key, as a number (0 when the key is not one).
    pub id: EntryId,
    /// Why.
    pub error: DecodeError,
    /// Its key as stored.
    pub key: JsValue,
}

/// What [`Store::load`] found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Readable entries, by id.
    pub entries: Vec<Entry>,
    /// Records that could not be read.
    pub unreadable: Vec<Unreadable>,
    /// The next id to give.
    pub next_id: EntryId,
    /// The current user, when a page set one.
    pub user: Option<String>,
    /// How many records were set aside as corrupt.
    pub corrupt: usize,
    /// Stored base versions, by entity path; unreadable ones are skipped.
    pub bases: Vec<(String, BaseVersion)>,
}

/// The database on its way to open.
pub struct Opening(OpenDatabaseRequest);

impl Opening {
    /// Waits until the database is open.
    pub async fn finish(self) -> Result<Store, StoreError> {
        let raw: IdbDatabase = self.0.await?.into();
        Ok(Store {
            database: Database::from(raw.clone()),
            raw,
        })
    }
}

/// The queue's database.
pub struct Store {
    database: Database,
    raw: IdbDatabase,
}

impl Store {
    /// Opens (and creates or upgrades) the database.
    pub async fn open(name: &str) -> Result<Store, StoreError> {
        Self::begin_open(name)?.finish().await
    }

    /// Asks the browser to open the database at once (the request is on its
    /// way when this returns); [`Opening::finish`] waits for it.
    pub fn begin_open(name: &str) -> Result<Opening, StoreError> {
        let factory = Factory::new()?;
        let mut request = factory.open(name, Some(VERSION))?;
        request.on_upgrade_needed(|event| {
            // Errors here abort the upgrade, which the open request reports.
            if let Ok(database) = event.database() {
                let names = database.store_names();
                for store in [ENTRIES, BODIES, META, BASES, CORRUPT] {
                    if !names.iter().any(|n| n == store) {
                        let _ = database.create_object_store(store, ObjectStoreParams::new());
                    }
                }
            }
        });
        Ok(Opening(request))
    }

    fn strict(&self, stores: &[&str]) -> Result<idb::Transaction, StoreError> {
        let raw: &RawDatabase = self.raw.unchecked_ref();
        let names = stores
            .iter()
            .map(|s| JsValue::from_str(s))
            .collect::<Array>();
        let options = Object::new();
        let _ = Reflect::set(&options, &"durability".into(), &"strict".into());
        raw.transaction_with_options(&names, "readwrite", &options)
            .map(idb::Transaction::from)
            .map_err(|error| js_error("transaction", error))
    }

    async fn commit(transaction: idb::Transaction) -> Result<(), StoreError> {
        // Kept to read why the transaction failed, once it has.
        let raw: IdbTransaction = transaction.into();
        let transaction = idb::Transaction::from(raw.clone());
        match transaction.await {
            Ok(TransactionResult::Committed) => Ok(()),
            Ok(TransactionResult::Aborted) => Err(not_committed(
                &raw,
                StoreError {
                    quota: false,
                    message: "IndexedDB transaction was aborted".into(),
                },
            )),
            Err(error) => Err(not_committed(&raw, error.into())),
        }
    }

    /// Loads every record (without bodies) and the base versions, asking for
    /// all of it at once in one transaction.
    pub async fn load(&self) -> Result<Loaded, StoreError> {
        let transaction = self
            .database
            .transaction(&[ENTRIES, META, CORRUPT, BASES], TransactionMode::ReadOnly)?;
        let store = transaction.object_store(ENTRIES)?;
        let meta = transaction.object_store(META)?;
        let bases = transaction.object_store(BASES)?;
        // Listening from now on: each answer may come before it is awaited.
        let keys = store.get_all_keys(None, None)?.into_future();
        let values = store.get_all(None, None)?.into_future();
        let next = meta.get(JsValue::from_str(NEXT_ID))?.into_future();
        let user = meta.get(JsValue::from_str(USER))?.into_future();
        let corrupt = transaction
            .object_store(CORRUPT)?
            .count(None)?
            .into_future();
        let base_keys = bases.get_all_keys(None, None)?.into_future();
        let base_values = bases.get_all(None, None)?.into_future();
        let (keys, values, next, user) = (keys.await?, values.await?, next.await?, user.await?);
        let corrupt = corrupt.await?;
        let bases = read_bases(&base_keys.await?, &base_values.await?);
        let mut loaded = Loaded {
            bases,
            next_id: next
                .and_then(|v| v.as_f64())
                .map_or(1, |n| n as EntryId)
                .max(1),
            user: user.and_then(|v| v.as_string()).filter(|u| !u.is_empty()),
            corrupt: corrupt as usize,
            ..Loaded::default()
        };
        for (key, value) in keys.iter().zip(values.iter()) {
            let id = key.as_f64().map_or(0, |n| n as EntryId);
            loaded.next_id = loaded.next_id.max(id + 1);
            let decoded = match value.as_string() {
                Some(text) => entry::decode(&text),
                None => Err(DecodeError::NotJson("the record is not text".into())),
            };
            match decoded {
                Ok(mut entry) => {
                    // The key is the truth; a record claiming another id is damaged.
                    if entry.id == id {
                        loaded.entries.push(entry);
                    } else {
                        entry.id = id;
                        loaded.unreadable.push(Unreadable {
                            id,
                            error: DecodeError::Invalid(format!(
                                "record under key {id} names id {}",
                                entry.id
                            )),
                            key: key.clone(),
                        });
                    }
                }
                Err(error) => loaded.unreadable.push(Unreadable {
                    id,
                    error,
                    key: key.clone(),
                }),
            }
        }
        Ok(loaded)
    }

    /// Stores a new entry and its body in one strict transaction. Returns
    /// only once the transaction has committed.
    pub async fn add(&self, entry: &Entry, body: &Uint8Array) -> Result<(), StoreError> {
        let transaction = self.strict(&[ENTRIES, BODIES, META])?;
        let key = JsValue::from_f64(entry.id as f64);
        transaction
            .object_store(ENTRIES)?
            .add(&JsValue::from_str(&entry::encode(entry)), Some(&key))?;
        transaction.object_store(BODIES)?.put(body, Some(&key))?;
        transaction.object_store(META)?.put(
            &JsValue::from_f64((entry.id + 1) as f64),
            Some(&JsValue::from_str(NEXT_ID)),
        )?;
        Self::commit(transaction).await
    }

    /// Stores the current user (None: no user).
    pub async fn set_user(&self, user: Option<&str>) -> Result<(), StoreError> {
        let transaction = self.strict(&[META])?;
        let meta = transaction.object_store(META)?;
        let key = JsValue::from_str(USER);
        match user {
            Some(user) => {
                meta.put(&JsValue::from_str(user), Some(&key))?;
            }
            None => {
                meta.delete(key)?;
            }
        }
        Self::commit(transaction).await
    }

    /// Moves records that could not be read, with their bodies, from
    /// `entries` and `bodies` into `corrupt`, in one strict transaction, and
    /// keeps `nextId` past their ids so none is given again. Gives the ids
    /// moved.
    pub async fn set_aside(&self, records: &[Unreadable]) -> Result<Vec<EntryId>, StoreError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        // Read first: a read-write transaction cannot wait for its own reads
        // before writing without risking its end.
        let reading = self
            .database
            .transaction(&[ENTRIES, BODIES, META], TransactionMode::ReadOnly)?;
        let entries = reading.object_store(ENTRIES)?;
        let bodies = reading.object_store(BODIES)?;
        let mut reads = Vec::with_capacity(records.len());
        for record in records {
            reads.push((
                entries.get(record.key.clone())?.into_future(),
                bodies.get(record.key.clone())?.into_future(),
            ));
        }
        let next = reading
            .object_store(META)?
            .get(JsValue::from_str(NEXT_ID))?
            .into_future();
        let mut found = Vec::with_capacity(records.len());
        for (record, body) in reads {
            found.push((record.await?, body.await?));
        }
        let next = next.await?.and_then(|v| v.as_f64()).unwrap_or(1.0);

        let transaction = self.strict(&[ENTRIES, BODIES, META, CORRUPT])?;
        let corrupt = transaction.object_store(CORRUPT)?;
        let entries = transaction.object_store(ENTRIES)?;
        let bodies = transaction.object_store(BODIES)?;
        let now = JsValue::from_f64(js_sys::Date::now());
        let mut moved = Vec::new();
        let mut next_id = next;
        for (record, (value, body)) in records.iter().zip(found) {
            // Gone meanwhile: nothing to move.
            let Some(value) = value else { continue };
            let aside = Object::new();
            let set = |name: &str, field: &JsValue| {
                let _ = Reflect::set(&aside, &name.into(), field);
            };
            set("id", &record.key);
            set("record", &value);
            set("body", &body.unwrap_or(JsValue::UNDEFINED));
            set("error", &JsValue::from_str(&record.error.to_string()));
            set("movedAt", &now);
            corrupt.put(&aside, Some(&record.key))?;
            entries.delete(record.key.clone())?;
            bodies.delete(record.key.clone())?;
            next_id = next_id.max(record.id as f64 + 1.0);
            moved.push(record.id);
        }
        transaction.object_store(META)?.put(
            &JsValue::from_f64(next_id),
            Some(&JsValue::from_str(NEXT_ID)),
        )?;
        Self::commit(transaction).await?;
        Ok(moved)
    }

    /// Removes every record set aside as corrupt; gives how many there were.
    pub async fn clear_corrupt(&self) -> Result<usize, StoreError> {
        let counting = self
            .database
            .transaction(&[CORRUPT], TransactionMode::ReadOnly)?;
        let count = counting.object_store(CORRUPT)?.count(None)?.await?;
        let transaction = self.strict(&[CORRUPT])?;
        transaction.object_store(CORRUPT)?.clear()?;
        Self::commit(transaction).await?;
        Ok(count as usize)
    }

    /// Writes entries' new state.
    pub async fn put(&self, entries: &[&Entry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let transaction = self.strict(&[ENTRIES])?;
        let store = transaction.object_store(ENTRIES)?;
        for entry in entries {
            store.put(
                &JsValue::from_str(&entry::encode(entry)),
                Some(&JsValue::from_f64(entry.id as f64)),
            )?;
        }
        Self::commit(transaction).await
    }

    /// Removes entries and their bodies.
    pub async fn delete(&self, ids: &[EntryId]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let transaction = self.strict(&[ENTRIES, BODIES])?;
        let entries = transaction.object_store(ENTRIES)?;
        let bodies = transaction.object_store(BODIES)?;
        for id in ids {
            let key = JsValue::from_f64(*id as f64);
            entries.delete(key.clone())?;
            bodies.delete(key)?;
        }
        Self::commit(transaction).await
    }

    /// In one strict transaction: stores entries about to be sent (their
    /// leases) and reads their bodies, None for a body that is missing; and
    /// deletes the sent entries `sent` with their bodies.
    pub async fn lease(
        &self,
        entries: &[&Entry],
        sent: &[EntryId],
    ) -> Result<Vec<Option<Uint8Array>>, StoreError> {
        let transaction = self.strict(&[ENTRIES, BODIES])?;
        let records = transaction.object_store(ENTRIES)?;
        let bodies = transaction.object_store(BODIES)?;
        for id in sent {
            let key = JsValue::from_f64(*id as f64);
            records.delete(key.clone())?;
            bodies.delete(key)?;
        }
        let mut reads = Vec::with_capacity(entries.len());
        for entry in entries {
            let key = JsValue::from_f64(entry.id as f64);
            records.put(&JsValue::from_str(&entry::encode(entry)), Some(&key))?;
            // Listening from now on: the answer may come before it is awaited.
            reads.push(bodies.get(key)?.into_future());
        }
        // Listening for the commit before the reads finish: it may come right after.
        let committed = transaction.into_future();
        let mut found = Vec::with_capacity(reads.len());
        for read in reads {
            let value = read.await?;
            found.push(value.and_then(|v| v.dyn_into::<Uint8Array>().ok()));
        }
        match committed.await? {
            TransactionResult::Committed => Ok(found),
            TransactionResult::Aborted => Err(StoreError {
                quota: false,
                message: "IndexedDB transaction was aborted".into(),
            }),
        }
    }

    /// An entry's body, or None if it is missing.
    pub async fn body(&self, id: EntryId) -> Result<Option<Uint8Array>, StoreError> {
        let transaction = self
            .database
            .transaction(&[BODIES], TransactionMode::ReadOnly)?;
        let value = transaction
            .object_store(BODIES)?
            .get(JsValue::from_f64(id as f64))?
            .await?;
        Ok(value.and_then(|v| v.dyn_into::<Uint8Array>().ok()))
    }
}

impl Store {
    /// Replaces an entry's body (a conflict settled with a merged body).
    pub async fn replace_body(&self, id: EntryId, body: &Uint8Array) -> Result<(), StoreError> {
        let transaction = self.strict(&[BODIES])?;
        transaction
            .object_store(BODIES)?
            .put(body, Some(&JsValue::from_f64(id as f64)))?;
        Self::commit(transaction).await
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // A connection left open would block deleting or upgrading the database.
        self.database.close();
    }
}

impl Store {
    /// Every stored base version, by entity path; unreadable ones are skipped.
    pub async fn bases(&self) -> Result<Vec<(String, BaseVersion)>, StoreError> {
        let transaction = self
            .database
            .transaction(&[BASES], TransactionMode::ReadOnly)?;
        let store = transaction.object_store(BASES)?;
        let keys = store.get_all_keys(None, None)?.await?;
        let values = store.get_all(None, None)?.await?;
        Ok(read_bases(&keys, &values))
    }

    /// Stores an entity's base version and removes the ones named in `evict`.
    pub async fn put_base(
        &self,
        path: &str,
        base: &BaseVersion,
        evict: &[String],
    ) -> Result<(), StoreError> {
        let transaction = self.strict(&[BASES])?;
        let store = transaction.object_store(BASES)?;
        let text = serde_json::to_string(base).unwrap_or_default();
        store.put(&JsValue::from_str(&text), Some(&JsValue::from_str(path)))?;
        for key in evict {
            store.delete(JsValue::from_str(key))?;
        }
        Self::commit(transaction).await
    }
}

/// The readable base versions among stored keys and values.
fn read_bases(keys: &[JsValue], values: &[JsValue]) -> Vec<(String, BaseVersion)> {
    keys.iter()
        .zip(values.iter())
        .filter_map(|(key, value)| {
            let base = entry::decode_base(&value.as_string()?).ok()?;
            Some((key.as_string()?, base))
        })
        .collect()
}
