//! In-browser tests of opening databases an older outbox wrote (schema
//! versions 1 and 2): every record, body, base version and `nextId` is still
//! there after the upgrade, and records of the older format read as entries.
#![cfg(target_arch = "wasm32")]

use idb::{DatabaseEvent, Factory, ObjectStoreParams, TransactionMode};
use js_sys::Uint8Array;
use outbox::core::lifecycle::State;
use outbox::store::Store;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_service_worker);

async fn delete_database(name: &str) {
    let factory = Factory::new().unwrap();
    factory.delete(name).unwrap().await.unwrap();
}

/// A record as the first record format (version 1) wrote it.
fn version_1_record(id: u64, path: &str) -> String {
    format!(
        r#"{{"v":1,"id":{id},"method":"PUT","url":"http://127.0.0.1:8080{path}","headers":[["content-type","application/json"]],
        "credentials":"same-origin","idempotencyKey":"key-{id}","route":0,"kind":null,"entity":"{path}","base":null,
        "priority":"normal","dependsOn":[],"state":"pending","attempts":0,"offlineAttempts":0,"createdAt":1000,
        "lastAttemptAt":null,"nextAttemptAt":null,"leaseUntil":null,"uncertain":false,"lastError":null,
        "failure":null,"conflict":null,"bodyBytes":3}}"#
    )
}

/// Creates `name` at schema `version` (1: entries, bodies, meta; 2: also
/// bases) holding two version 1 records with bodies, `nextId` 9 and, at
/// version 2, one base version.
async fn write_old_database(name: &str, version: u32) {
    let factory = Factory::new().unwrap();
    let mut request = factory.open(name, Some(version)).unwrap();
    request.on_upgrade_needed(move |event| {
        let database = event.database().unwrap();
        let mut stores = vec!["entries", "bodies", "meta"];
        if version >= 2 {
            stores.push("bases");
        }
        for store in stores {
            database
                .create_object_store(store, ObjectStoreParams::new())
                .unwrap();
        }
    });
    let database = request.await.unwrap();
    let mut stores = vec!["entries", "bodies", "meta"];
    if version >= 2 {
        stores.push("bases");
    }
    let transaction = database
        .transaction(&stores, TransactionMode::ReadWrite)
        .unwrap();
    let entries = transaction.object_store("entries").unwrap();
    let bodies = transaction.object_store("bodies").unwrap();
    for (id, path) in [(3u64, "/api/a"), (7, "/api/b")] {
        let key = JsValue::from_f64(id as f64);
        entries
            .put(&JsValue::from_str(&version_1_record(id, path)), Some(&key))
            .unwrap();
        bodies
            .put(&Uint8Array::from(&[b'{', b'}', id as u8][..]), Some(&key))
            .unwrap();
    }
    transaction
        .object_store("meta")
        .unwrap()
        .put(&JsValue::from_f64(9.0), Some(&JsValue::from_str("nextId")))
        .unwrap();
    if version >= 2 {
        transaction
            .object_store("bases")
            .unwrap()
            .put(
                &JsValue::from_str(r#"{"etag":"\"4\"","lastModifiedMs":null,"body":{"a":1}}"#),
                Some(&JsValue::from_str("/api/a")),
            )
            .unwrap();
    }
    transaction.await.unwrap();
    database.close();
}

async fn opens_and_keeps_everything(version: u32) {
    let name = &format!("outbox-test-upgrade-from-{version}");
    delete_database(name).await;
    write_old_database(name, version).await;

    let store = Store::open(name).await.unwrap();
    let loaded = store.load().await.unwrap();
    assert!(loaded.unreadable.is_empty(), "{:?}", loaded.unreadable);
    let ids: Vec<u64> = loaded.entries.iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![3, 7]);
    assert!(loaded
        .entries
        .iter()
        .all(|e| e.state == State::Pending && e.user.is_none()));
    assert_eq!(loaded.entries[1].entity.as_deref(), Some("/api/b"));
    assert_eq!(loaded.next_id, 9);
    assert_eq!(loaded.corrupt, 0);
    assert_eq!(loaded.user, None);
    assert_eq!(
        store.body(7).await.unwrap().unwrap().to_vec(),
        vec![b'{', b'}', 7]
    );
    let bases = store.bases().await.unwrap();
    if version >= 2 {
        assert_eq!(bases.len(), 1);
        assert_eq!(bases[0].0, "/api/a");
        assert_eq!(bases[0].1.etag.as_deref(), Some("\"4\""));
    } else {
        assert!(bases.is_empty());
    }
    // The new stores work: a user is kept, and corrupt records can be cleared.
    store.set_user(Some("alice")).await.unwrap();
    assert_eq!(store.load().await.unwrap().user.as_deref(), Some("alice"));
    assert_eq!(store.clear_corrupt().await.unwrap(), 0);
    drop(store);
    delete_database(name).await;
}

#[wasm_bindgen_test]
async fn a_version_1_database_is_upgraded_with_all_its_data() {
    opens_and_keeps_everything(1).await;
}

#[wasm_bindgen_test]
async fn a_version_2_database_is_upgraded_with_all_its_data() {
    opens_and_keeps_everything(2).await;
}

#[wasm_bindgen_test]
async fn unreadable_records_are_moved_aside_with_their_bodies() {
    let name = "outbox-test-set-aside";
    delete_database(name).await;
    write_old_database(name, 2).await;
    {
        // Damage record 7, and add one of a newer format under key 12.
        let factory = Factory::new().unwrap();
        let database = factory.open(name, None).unwrap().await.unwrap();
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
            .put(
                &JsValue::from_str(
                    &version_1_record(12, "/api/c").replacen("\"v\":1", "\"v\":3", 1),
                ),
                Some(&JsValue::from_f64(12.0)),
            )
            .unwrap();
        transaction.await.unwrap();
        database.close();
    }

    let store = Store::open(name).await.unwrap();
    let loaded = store.load().await.unwrap();
    assert_eq!(loaded.entries.len(), 1);
    assert_eq!(loaded.unreadable.len(), 2);
    assert!(loaded.unreadable[1]
        .error
        .to_string()
        .contains("written by a newer outbox"));
    let moved = store.set_aside(&loaded.unreadable).await.unwrap();
    assert_eq!(moved, vec![7, 12]);

    let again = store.load().await.unwrap();
    assert!(again.unreadable.is_empty(), "moved, so not read again");
    assert_eq!(again.corrupt, 2);
    assert_eq!(again.entries.len(), 1);
    assert!(
        store.body(7).await.unwrap().is_none(),
        "the body went with it"
    );
    // nextId stays past the ids moved aside, so none is given again.
    drop(store);
    let store = Store::open(name).await.unwrap();
    store.delete(&[3]).await.unwrap();
    assert_eq!(store.load().await.unwrap().next_id, 13);

    // The record and its body are kept as they were.
    let factory = Factory::new().unwrap();
    let database = factory.open(name, None).unwrap().await.unwrap();
    let transaction = database
        .transaction(&["corrupt"], TransactionMode::ReadOnly)
        .unwrap();
    let aside = transaction
        .object_store("corrupt")
        .unwrap()
        .get(JsValue::from_f64(7.0))
        .unwrap()
        .await
        .unwrap()
        .unwrap();
    let field = |name: &str| js_sys::Reflect::get(&aside, &name.into()).unwrap();
    assert_eq!(field("record").as_string().as_deref(), Some("{garbage"));
    assert_eq!(
        Uint8Array::new(&field("body")).to_vec(),
        vec![b'{', b'}', 7]
    );
    assert!(field("error").as_string().unwrap().contains("not JSON"));
    database.close();

    assert_eq!(store.clear_corrupt().await.unwrap(), 2);
    assert_eq!(store.load().await.unwrap().corrupt, 0);
    drop(store);
    delete_database(name).await;
}
