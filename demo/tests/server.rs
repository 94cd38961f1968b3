mod support;

use std::io::ErrorKind;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::{request, KeepAlive, Server};

#[test]
fn create_get_and_conditional_requests() {
    let server = Server::start();
    let created = server.json(
        "POST",
        "/api/concepts/7",
        &[],
        r#"{"label":"a","version":99}"#,
    );
    assert_eq!(created.status, 201);
    assert_eq!(created.header("etag"), Some("\"1\""));
    let entity = created.json();
    assert_eq!(entity["id"], "7");
    assert_eq!(entity["label"], "a");
    assert_eq!(entity["version"], 1, "the server owns the version");
    assert!(entity["updatedAt"].as_u64().is_some());
    let last_modified = created.header("last-modified").expect("Last-Modified");
    assert!(last_modified.ends_with(" GMT"), "{last_modified}");

    let fetched = server.app("GET", "/api/concepts/7", &[], b"");
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.header("etag"), Some("\"1\""));
    assert_eq!(fetched.json(), entity);

    let conflict = server.json("POST", "/api/concepts/7", &[], r#"{"label":"b"}"#);
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.header("etag"), Some("\"1\""));
    assert_eq!(conflict.json()["label"], "a");

    let replaced = server.json(
        "PUT",
        "/api/concepts/7",
        &[("If-Match", "\"1\"")],
        r#"{"label":"b"}"#,
    );
    assert_eq!(replaced.status, 200);
    assert_eq!(replaced.header("etag"), Some("\"2\""));
    assert!(replaced.json()["updatedAt"].as_u64() > entity["updatedAt"].as_u64());

    let stale = server.json(
        "PUT",
        "/api/concepts/7",
        &[("If-Match", "\"1\"")],
        r#"{"label":"c"}"#,
    );
    assert_eq!(stale.status, 412);
    assert_eq!(stale.header("etag"), Some("\"2\""));
    assert_eq!(stale.json()["label"], "b", "412 carries the current entity");

    let missing = server.json(
        "PUT",
        "/api/concepts/8",
        &[("If-Match", "*")],
        r#"{"label":"c"}"#,
    );
    assert_eq!(missing.status, 412);
    assert_eq!(missing.json(), json!({"error":"not_found"}));

    let unconditional = server.json("PUT", "/api/concepts/8", &[], r#"{"label":"c"}"#);
    assert_eq!(unconditional.status, 201);
    assert_eq!(
        server.app("GET", "/api/concepts/9", &[], b"").json(),
        json!({"error":"not_found"})
    );
    assert_eq!(server.stats()["applied"], 3);
}

#[test]
fn patch_delete_bad_json_and_listing() {
    let server = Server::start();
    for id in ["10", "9", "b", "2"] {
        let reply = server.json(
            "PUT",
            &format!("/api/connections/{id}"),
            &[],
            r#"{"from":"1","to":"2"}"#,
        );
        assert_eq!(reply.status, 201);
    }
    let listed = server.app("GET", "/api/connections/", &[], b"").json();
    let ids: Vec<&str> = listed
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|entity| entity["id"].as_str())
        .collect();
    assert_eq!(ids, ["2", "9", "10", "b"]);

    let patched = server.json(
        "PATCH",
        "/api/connections/2",
        &[("If-Match", "\"1\"")],
        r#"{"to":null,"label":"x"}"#,
    );
    assert_eq!(patched.status, 200);
    let entity = patched.json();
    assert_eq!(entity["label"], "x");
    assert_eq!(entity["from"], "1");
    assert!(entity.get("to").is_none(), "null removes the field");
    assert_eq!(entity["version"], 2);
    assert_eq!(
        server
            .json("PATCH", "/api/connections/404", &[], "{}")
            .status,
        404
    );

    assert_eq!(
        server
            .json("PUT", "/api/connections/2", &[], "[1,2]")
            .status,
        400
    );
    let broken = server.json("PUT", "/api/connections/2", &[], "{oops");
    assert_eq!(broken.status, 400);
    assert_eq!(broken.json(), json!({"error":"bad_json"}));

    let stale_delete = server.app(
        "DELETE",
        "/api/connections/2",
        &[("If-Match", "\"1\"")],
        b"",
    );
    assert_eq!(stale_delete.status, 412);
    assert_eq!(
        server.app("DELETE", "/api/connections/2", &[], b"").status,
        204
    );
    assert_eq!(
        server.app("GET", "/api/connections/2", &[], b"").status,
        404
    );
    assert_eq!(
        server.app("DELETE", "/api/connections/2", &[], b"").status,
        404
    );
    // A re-created entity never reuses an ETag of its earlier life.
    let recreated = server.json("PUT", "/api/connections/2", &[], "{}");
    assert_eq!(recreated.header("etag"), Some("\"4\""));

    assert_eq!(server.app("GET", "/api/nothing/1", &[], b"").status, 404);
    assert_eq!(server.stats()["applied"], 7);
}

#[test]
fn idempotent_replay_returns_the_stored_response_and_applies_once() {
    let server = Server::start();
    let key = [("Idempotency-Key", "key-1")];
    let first = server.json("POST", "/api/checkpoints/1", &key, r#"{"n":1}"#);
    assert_eq!(first.status, 201);
    assert_eq!(first.header("idempotent-replay"), None);
    let second = server.json("POST", "/api/checkpoints/1", &key, r#"{"n":1}"#);
    assert_eq!(second.status, 201, "not 409: the stored response");
    assert_eq!(second.header("idempotent-replay"), Some("true"));
    assert_eq!(second.header("etag"), first.header("etag"));
    assert_eq!(
        second.header("last-modified"),
        first.header("last-modified")
    );
    assert_eq!(second.body, first.body);

    let reused_body = server.json("POST", "/api/checkpoints/1", &key, r#"{"n":2}"#);
    assert_eq!(reused_body.status, 422);
    assert_eq!(
        reused_body.json(),
        json!({"error":"idempotency_key_reused"})
    );
    let reused_path = server.json("POST", "/api/checkpoints/2", &key, r#"{"n":1}"#);
    assert_eq!(reused_path.status, 422);
    let reused_method = server.json("PUT", "/api/checkpoints/1", &key, r#"{"n":1}"#);
    assert_eq!(reused_method.status, 422);

    let stats = server.stats();
    assert_eq!(stats["applied"], 1);
    assert_eq!(stats["appliedByKey"], json!({"key-1": 1}));
    assert_eq!(stats["receivedByKey"], json!({"key-1": 5}));
    assert_eq!(stats["requests"], 5);
    let entry = &stats["log"][0];
    assert_eq!(entry["seq"], 1);
    assert_eq!(entry["method"], "POST");
    assert_eq!(entry["path"], "/api/checkpoints/1");
    assert_eq!(entry["key"], "key-1");
    assert_eq!(entry["body"], json!({"n":1}));
    assert_eq!(entry["sha256"], hex_sha256(br#"{"n":1}"#));
}

#[test]
fn fail_answers_the_next_requests_with_the_status_without_applying() {
    let server = Server::start();
    server.control("fail", r#"{"count":2,"status":503,"retryAfter":"2"}"#);
    for _ in 0..2 {
        let failed = server.json("PUT", "/api/concepts/1", &[("Idempotency-Key", "k")], "{}");
        assert_eq!(failed.status, 503);
        assert_eq!(failed.header("retry-after"), Some("2"));
        assert_eq!(failed.json(), json!({"error":"injected"}));
    }
    assert_eq!(
        server.app("GET", "/api/concepts/", &[], b"").status,
        200,
        "GET is not a default method"
    );
    let succeeded = server.json("PUT", "/api/concepts/1", &[("Idempotency-Key", "k")], "{}");
    assert_eq!(succeeded.status, 201);
    assert_eq!(
        succeeded.header("idempotent-replay"),
        None,
        "faults are not stored"
    );

    server.control(
        "fail",
        r#"{"count":1,"status":429,"path":"/api/checkpoints/","methods":["GET"]}"#,
    );
    assert_eq!(server.app("GET", "/api/concepts/", &[], b"").status, 200);
    let limited = server.app("GET", "/api/checkpoints/", &[], b"");
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), None);
    assert_eq!(server.app("GET", "/api/checkpoints/", &[], b"").status, 200);

    let stats = server.stats();
    assert_eq!(stats["applied"], 1);
    assert_eq!(stats["receivedByKey"], json!({"k": 3}));
}

#[test]
fn drop_applies_the_mutation_then_closes_without_a_response() {
    let server = Server::start();
    let mut reused = KeepAlive::connect(server.app).expect("connect");
    let before = reused
        .send("GET", "/api/concepts/", &[], b"")
        .expect("first");
    assert_eq!(before.header("connection"), None, "keep-alive by default");

    server.control("drop", r#"{"count":1}"#);
    // Arming closes idle connections: a browser would silently resend a
    // request lost on a reused connection instead of failing it.
    std::thread::sleep(Duration::from_millis(100));
    assert!(reused.send("GET", "/api/concepts/", &[], b"").is_err());
    let while_armed = server.app("GET", "/api/concepts/", &[], b"");
    assert_eq!(while_armed.header("connection"), Some("close"));

    let mut fresh = KeepAlive::connect(server.app).expect("connect");
    let headers = [
        ("Content-Type", "application/json"),
        ("Idempotency-Key", "d"),
    ];
    let lost = fresh.send("PUT", "/api/concepts/5", &headers, br#"{"label":"x"}"#);
    let error = lost.expect_err("the response must be lost");
    assert_eq!(error.kind(), ErrorKind::UnexpectedEof, "{error}");
    assert_eq!(server.stats()["applied"], 1, "applied before the close");

    let entity = server.app("GET", "/api/concepts/5", &[], b"");
    assert_eq!(entity.json()["label"], "x");
    assert_eq!(
        entity.header("connection"),
        None,
        "disarmed: keep-alive again"
    );
    let retried = server.json(
        "PUT",
        "/api/concepts/5",
        &[("Idempotency-Key", "d")],
        r#"{"label":"x"}"#,
    );
    assert_eq!(retried.status, 201);
    assert_eq!(retried.header("idempotent-replay"), Some("true"));
    assert_eq!(server.stats()["applied"], 1);
}

#[test]
fn down_refuses_connections_and_closes_keep_alive_ones_then_up_serves_again() {
    let server = Server::start();
    let mut idle = KeepAlive::connect(server.app).expect("connect");
    assert_eq!(
        idle.send("GET", "/api/concepts/", &[], b"")
            .expect("first")
            .status,
        200
    );

    assert_eq!(server.control("down", ""), json!({"down": true}));
    assert!(
        idle.send("GET", "/api/concepts/", &[], b"").is_err(),
        "keep-alive connection closed"
    );
    let refused = TcpStream::connect(server.app).expect_err("refused while down");
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
    assert_eq!(server.stats()["down"], true, "control stays up");

    server.control("up", "");
    assert_eq!(server.stats()["down"], false);
    assert_eq!(server.app("GET", "/api/concepts/", &[], b"").status, 200);

    // From the app port (the demo's control strip) the answer comes first.
    let from_page = server.app("POST", "/control/down", &[], b"");
    assert_eq!(from_page.json(), json!({"down": true}));
    std::thread::sleep(Duration::from_millis(300));
    assert!(TcpStream::connect(server.app).is_err());
    server.control("up", "");

    // Reset also brings the app listener back.
    server.control("down", "");
    server.control("reset", "");
    assert_eq!(server.app("GET", "/api/concepts/", &[], b"").status, 200);
}

#[test]
fn dedupe_can_be_switched_off_per_prefix() {
    let server = Server::start();
    server.control("dedupe", r#"{"path":"/api/concepts/","enabled":false}"#);
    let key = [("Idempotency-Key", "same")];
    assert_eq!(
        server.json("PUT", "/api/concepts/1", &key, "{}").status,
        201
    );
    let again = server.json("PUT", "/api/concepts/1", &key, "{}");
    assert_eq!(again.status, 200, "applied a second time");
    assert_eq!(again.header("idempotent-replay"), None);
    assert_eq!(again.header("etag"), Some("\"2\""));

    let other_key = [("Idempotency-Key", "other")];
    assert_eq!(
        server
            .json("PUT", "/api/connections/1", &other_key, "{}")
            .status,
        201
    );
    let replayed = server.json("PUT", "/api/connections/1", &other_key, "{}");
    assert_eq!(replayed.header("idempotent-replay"), Some("true"));

    let stats = server.stats();
    assert_eq!(stats["applied"], 3);
    assert_eq!(stats["appliedByKey"], json!({"same": 2, "other": 1}));
    assert_eq!(stats["receivedByKey"], json!({"same": 2, "other": 2}));
}

#[test]
fn edit_changes_the_resource_as_another_client() {
    let server = Server::start();
    let created = server.json("PUT", "/api/concepts/3", &[], r#"{"label":"mine","x":1}"#);
    let created_entity = created.json();
    let edited = server.control(
        "edit",
        r#"{"kind":"concepts","id":"3","mode":"patch","body":{"label":"theirs"}}"#,
    );
    assert_eq!(edited["version"], 2);
    assert_eq!(edited["x"], 1);
    assert!(edited["updatedAt"].as_u64() > created_entity["updatedAt"].as_u64());

    let stale = server.json(
        "PUT",
        "/api/concepts/3",
        &[("If-Match", "\"1\"")],
        r#"{"label":"mine2"}"#,
    );
    assert_eq!(stale.status, 412);
    assert_eq!(stale.header("etag"), Some("\"2\""));
    assert_eq!(stale.json()["label"], "theirs");

    server.control(
        "edit",
        r#"{"kind":"concepts","id":"4","mode":"put","body":{"label":"new"}}"#,
    );
    server.control("edit", r#"{"kind":"concepts","id":"3","mode":"delete"}"#);
    assert_eq!(server.app("GET", "/api/concepts/3", &[], b"").status, 404);
    let entities = server.control("entities", "");
    assert_eq!(entities["concepts"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        server.stats()["applied"],
        1,
        "edits are not applied mutations"
    );
}

#[test]
fn uploads_report_the_sha256_of_any_body() {
    let server = Server::start();
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let reply = server.app(
        "PUT",
        "/api/uploads/photo",
        &[("Content-Type", "image/png")],
        &bytes,
    );
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        json!({"id":"photo","sha256":hex_sha256(&bytes),"length":70_000,"contentType":"image/png"})
    );
    let fetched = server.app("GET", "/api/uploads/photo", &[], b"");
    assert_eq!(fetched.header("content-type"), Some("image/png"));
    assert_eq!(fetched.body, bytes);

    let empty = server.app("POST", "/api/uploads/empty", &[], b"");
    assert_eq!(empty.json()["length"], 0);
    assert_eq!(empty.json()["contentType"], Value::Null);
    let stats = server.stats();
    assert_eq!(stats["applied"], 2);
    assert_eq!(stats["log"][0]["sha256"], hex_sha256(&bytes));
    assert_eq!(stats["log"][0]["body"], Value::Null);
}

#[test]
fn static_files_site_and_product() {
    let server = Server::start();
    let index = server.app("GET", "/", &[], b"");
    assert_eq!(index.status, 200);
    assert_eq!(index.text(), "<h1>site</h1>");
    assert_eq!(index.header("cache-control"), Some("no-cache"));
    assert!(index
        .header("content-type")
        .is_some_and(|kind| kind.starts_with("text/html")));

    let script = server.app("GET", "/app.js", &[], b"");
    assert!(script
        .header("content-type")
        .is_some_and(|kind| kind.starts_with("text/javascript")));
    let worker = server.app("GET", "/outbox/outbox-sw.js", &[], b"");
    assert_eq!(worker.text(), "self.Outbox = {}");
    let wasm = server.app("GET", "/outbox/module.wasm", &[], b"");
    assert_eq!(wasm.header("content-type"), Some("application/wasm"));
    let types = server.app("GET", "/outbox/outbox.d.ts", &[], b"");
    assert!(types
        .header("content-type")
        .is_some_and(|kind| kind.starts_with("text/plain")));

    let nested = server.app("GET", "/nested", &[], b"");
    assert_eq!(nested.status, 301);
    assert_eq!(nested.header("location"), Some("/nested/"));
    assert_eq!(
        server.app("GET", "/nested/", &[], b"").text(),
        "<h1>nested</h1>"
    );
    assert_eq!(server.app("GET", "/missing.js", &[], b"").status, 404);
    assert_eq!(server.app("GET", "/../secret.txt", &[], b"").status, 404);
    assert_eq!(
        server.app("GET", "/%2e%2e/secret.txt", &[], b"").status,
        404
    );
}

#[test]
fn control_answers_cross_origin_on_both_ports() {
    let server = Server::start();
    let preflight =
        request(server.control, "OPTIONS", "/control/fail", &[], b"").expect("preflight");
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));

    let from_app_port = server.app("GET", "/control/stats", &[], b"");
    assert_eq!(from_app_port.status, 200);
    assert_eq!(
        from_app_port.header("access-control-allow-origin"),
        Some("*")
    );
    assert_eq!(
        from_app_port.json()["requests"],
        0,
        "control calls are not API requests"
    );

    let info = server.app("GET", "/control/info", &[], b"").json();
    assert_eq!(info["app"], format!("http://{}", server.app));
    assert_eq!(info["control"], format!("http://{}", server.control));
    assert_eq!(
        request(server.control, "GET", "/control/info", &[], b"")
            .expect("info on the control port")
            .json(),
        info
    );

    let not_control =
        request(server.control, "GET", "/api/concepts/", &[], b"").expect("control port");
    assert_eq!(not_control.status, 404);
    let bad = request(server.control, "POST", "/control/fail", &[], b"{").expect("bad body");
    assert_eq!(bad.status, 400);
    assert_eq!(bad.header("access-control-allow-origin"), Some("*"));
}

#[test]
fn delay_holds_every_api_request_and_reset_clears_everything() {
    let server = Server::start_with(&["--delay-ms", "200"]);
    let started = Instant::now();
    assert_eq!(server.app("GET", "/api/concepts/", &[], b"").status, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));

    server.control("delay", r#"{"ms":0}"#);
    server.json("PUT", "/api/concepts/1", &[("Idempotency-Key", "r")], "{}");
    server.control("fail", r#"{"count":5}"#);
    server.control("reset", "");
    let stats = server.stats();
    assert_eq!(stats["applied"], 0);
    assert_eq!(stats["requests"], 0);
    assert_eq!(stats["receivedByKey"], json!({}));
    assert_eq!(stats["faults"]["fail"], json!([]));
    assert_eq!(
        server.app("GET", "/api/concepts/", &[], b"").json(),
        json!([])
    );
    // The stored key is gone too: the same request is applied afresh.
    let again = server.json("PUT", "/api/concepts/1", &[("Idempotency-Key", "r")], "{}");
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotent-replay"), None);
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[test]
fn received_lists_api_requests_with_their_headers_until_reset() {
    let server = Server::start();
    server.json(
        "PUT",
        "/api/concepts/r1",
        &[("Idempotency-Key", "k-1"), ("X-Trace", "t")],
        r#"{"label":"a"}"#,
    );
    server.app("GET", "/api/concepts/r1", &[], b"");
    let received = server.control("received", "");
    let list = received.as_array().expect("a list");
    assert_eq!(list.len(), 2, "{received}");
    assert_eq!(list[0]["method"], "PUT");
    assert_eq!(list[0]["path"], "/api/concepts/r1");
    assert_eq!(list[0]["headers"]["idempotency-key"], "k-1");
    assert_eq!(list[0]["headers"]["x-trace"], "t");
    assert_eq!(list[1]["method"], "GET");
    server.control("reset", "{}");
    assert_eq!(server.control("received", ""), json!([]));
}
