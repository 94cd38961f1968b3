//! In-browser tests of the IndexedDB store, run in a real service worker by
//! `wasm-bindgen-test-runner` (see `cargo xtask test`).
#![cfg(target_arch = "wasm32")]

use idb::{Factory, TransactionMode};
use js_sys::Uint8Array;
use outbox::core::entry::{DecodeError, Entry};
use outbox::core::lifecycle::State;
use outbox::store::Store;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_service_worker);

async fn delete_database(name: &str) {
    let factory = Factory::new().unwrap();
    factory.delete(name).unwrap().await.unwrap();
}

fn entry(id: u64, url: &str) -> Entry {
    let mut entry = Entry::new("PUT", url, &format!("key-{id}"), 0, 1_000 + id);
    entry.id = id;
    entry.entity = Some(url.to_owned());
    entry
}

#[wasm_bindgen_test]
async fn entries_and_bodies_round_trip_and_ids_keep_increasing() {
    let name = "outbox-test-round-trip";
    delete_database(name).await;
    let store = Store::open(name).await.unwrap();
    let body = Uint8Array::from(&[0u8, 1, 2, 255][..]);
    store.add(&entry(1, "/a"), &body).await.unwrap();
    store
        .add(&entry(2, "/b"), &Uint8Array::new_with_length(0))
        .await
        .unwrap();

    let loaded = store.load().await.unwrap();
    assert_eq!(loaded.entries.len(), 2);
    assert_eq!(loaded.entries[0], entry(1, "/a"));
    assert_eq!(loaded.next_id, 3);
    assert_eq!(
        store.body(1).await.unwrap().unwrap().to_vec(),
        vec![0, 1, 2, 255]
    );

    let mut changed = entry(1, "/a");
    changed.state = State::Failed;
    store.put(&[&changed]).await.unwrap();
    store.delete(&[2]).await.unwrap();
    let loaded = store.load().await.unwrap();
    assert_eq!(loaded.entries, vec![changed]);
    assert!(store.body(2).await.unwrap().is_none());

    // Deleting the newest entry must not let its id be given again.
    store.delete(&[1]).await.unwrap();
    assert_eq!(store.load().await.unwrap().next_id, 3);
    drop(store);
    delete_database(name).await;
}

#[wasm_bindgen_test]
async fn an_unreadable_record_is_reported_and_the_rest_loads() {
    let name = "outbox-test-corrupt";
    delete_database(name).await;
    let store = Store::open(name).await.unwrap();
    store
        .add(&entry(1, "/a"), &Uint8Array::new_with_length(0))
        .await
        .unwrap();
    drop(store);

    // Damage the store the way a bug or another script could.
    let database = {
        let factory = Factory::new().unwrap();
        factory.open(name, None).unwrap().await.unwrap()
    };
    let transaction = database
        .transaction(&["entries"], TransactionMode::ReadWrite)
        .unwrap();
    let entries = transaction.object_store("entries").unwrap();
    entries
        .put(
            &JsValue::from_str("{garbage"),
            Some(&JsValue::from_f64(7.0)),
        )
        .unwrap();
    entries
        .put(&JsValue::from_f64(42.0), Some(&JsValue::from_f64(8.0)))
        .unwrap();
    entries
        .put(
            &JsValue::from_str("{\"v\":99}"),
            Some(&JsValue::from_f64(9.0)),
        )
        .unwrap();
    transaction.await.unwrap();
    database.close();

    let store = Store::open(name).await.unwrap();
    let loaded = store.load().await.unwrap();
    assert_eq!(loaded.entries, vec![entry(1, "/a")]);
    let unreadable: Vec<(u64, bool)> = loaded
        .unreadable
        .iter()
        .map(|u| (u.id, matches!(u.error, DecodeError::NotJson(_))))
        .collect();
    assert_eq!(unreadable, vec![(7, true), (8, true), (9, false)]);
    assert!(matches!(
        loaded.unreadable[2].error,
        DecodeError::UnknownVersion(99)
    ));
    assert_eq!(loaded.next_id, 10);
    drop(store);
    delete_database(name).await;
}
