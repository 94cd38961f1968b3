//! The versioned JSON resource API under `/api/`.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use percent_encoding::percent_decode_str;
use serde_json::{json, Map, Value};

use crate::server::Connection;
use crate::state::{
    is_entity_kind, is_mutation, merge_patch, sha256_hex, IdempotencyRecord, Slot, StoredResponse,
    Upload, World,
};
use crate::Shared;

const IDEMPOTENCY_KEY: &str = "idempotency-key";

pub fn json_response(status: StatusCode, value: &Value) -> StoredResponse {
    StoredResponse {
        status,
        headers: vec![(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body: Bytes::from(value.to_string()),
    }
}

pub fn error_response(status: StatusCode, error: &str) -> StoredResponse {
    json_response(status, &json!({ "error": error }))
}

fn not_found() -> StoredResponse {
    error_response(StatusCode::NOT_FOUND, "not_found")
}

fn method_not_allowed() -> StoredResponse {
    error_response(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
}

/// An entity body with the validators that describe it.
pub fn entity_response(
    status: StatusCode,
    slot: &Slot,
    entity: &Map<String, Value>,
) -> StoredResponse {
    let mut response = json_response(status, &Value::Object(entity.clone()));
    add_validators(&mut response, slot);
    response
}

fn add_validators(response: &mut StoredResponse, slot: &Slot) {
    if let Ok(etag) = HeaderValue::from_str(&slot.etag()) {
        response.headers.push((header::ETAG, etag));
    }
    if let Ok(last_modified) = HeaderValue::from_str(&slot.last_modified()) {
        response
            .headers
            .push((header::LAST_MODIFIED, last_modified));
    }
}

/// The current entity (with its ETag), or `not_found` when there is none.
fn current_state_response(status: StatusCode, slot: &Slot) -> StoredResponse {
    match &slot.current {
        Some(entity) => entity_response(status, slot, entity),
        None => error_response(status, "not_found"),
    }
}

pub fn into_response(stored: StoredResponse) -> Response {
    let mut response = Response::new(Body::from(stored.body));
    *response.status_mut() = stored.status;
    let headers = response.headers_mut();
    for (name, value) in stored.headers {
        headers.append(name, value);
    }
    response
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// Strong comparison against a list such as `"1", "2"` or `*`.
fn etag_list_matches(list: &str, current: &str) -> bool {
    list.split(',')
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate == current)
}

pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, StoredResponse> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        _ => Err(error_response(StatusCode::BAD_REQUEST, "bad_json")),
    }
}

enum Target {
    List(String),
    Item(String, String),
    Unknown,
}

fn parse_target(path: &str) -> Target {
    let rest = path.strip_prefix("/api").unwrap_or("");
    let segments: Vec<&str> = rest
        .split('/')
        .filter(|segment| !segment.is_empty())
        .collect();
    let decode = |segment: &str| percent_decode_str(segment).decode_utf8_lossy().into_owned();
    match segments.as_slice() {
        [kind] => Target::List(decode(kind)),
        [kind, id] => Target::Item(decode(kind), decode(id)),
        _ => Target::Unknown,
    }
}

fn is_known_kind(kind: &str) -> bool {
    is_entity_kind(kind) || kind == "uploads"
}

/// What a mutation handler produced, and whether it changed anything.
struct Handled {
    response: StoredResponse,
    applied: bool,
}

fn unchanged(response: StoredResponse) -> Handled {
    Handled {
        response,
        applied: false,
    }
}

fn changed(response: StoredResponse) -> Handled {
    Handled {
        response,
        applied: true,
    }
}

pub async fn handle(
    shared: &Shared,
    connection: Option<Connection>,
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = header_text(&headers, IDEMPOTENCY_KEY).map(str::to_owned);
    let delay_ms = {
        let mut world = shared.world();
        world.requests += 1;
        if let Some(key) = &key {
            *world.received_by_key.entry(key.clone()).or_insert(0) += 1;
        }
        world.note_received(&method, &path, &headers);
        world.delay_ms
    };
    if delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }

    let (stored, replay, close) = {
        let mut world = shared.world();
        if let Some(rule) = world.take_fail(&method, &path) {
            let mut response = error_response(rule.status, "injected");
            if let Some(retry_after) = rule
                .retry_after
                .and_then(|value| HeaderValue::from_str(&value).ok())
            {
                response.headers.push((header::RETRY_AFTER, retry_after));
            }
            (response, false, false)
        } else if !is_mutation(&method) {
            (read(&world, &method, &path, &headers), false, false)
        } else {
            let (response, replay) =
                mutate_once(&mut world, &method, &path, key.as_deref(), &headers, &body);
            let close = world.take_drop(&method, &path);
            (response, replay, close)
        }
    };

    if close {
        if let Some(connection) = connection {
            connection.close_without_response().await;
        }
    }
    let mut response = into_response(stored);
    if replay {
        response.headers_mut().insert(
            HeaderName::from_static("idempotent-replay"),
            HeaderValue::from_static("true"),
        );
    }
    // The tests and the outbox must always see the server's current state.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Applies a mutation unless its idempotency key was seen; returns the
/// response and whether it is a replay.
fn mutate_once(
    world: &mut World,
    method: &Method,
    path: &str,
    key: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
) -> (StoredResponse, bool) {
    let body_sha256 = sha256_hex(body);
    let deduplicated_key = key.filter(|_| world.dedupe_enabled(path));
    if let Some(key) = deduplicated_key {
        if let Some(record) = world.idempotency.get(key) {
            if record.method == *method && record.path == path && record.body_sha256 == body_sha256
            {
                return (record.response.clone(), true);
            }
            return (
                error_response(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
                false,
            );
        }
    }

    let handled = mutate(world, method, path, headers, body);
    if handled.applied {
        world.record_applied(method, path, key, &body_sha256, body);
    }
    if let Some(key) = deduplicated_key {
        if !handled.response.status.is_server_error() {
            world.idempotency.insert(
                key.to_owned(),
                IdempotencyRecord {
                    method: method.clone(),
                    path: path.to_owned(),
                    body_sha256,
                    response: handled.response.clone(),
                },
            );
        }
    }
    (handled.response, false)
}

fn read(world: &World, method: &Method, path: &str, headers: &HeaderMap) -> StoredResponse {
    if method != Method::GET && method != Method::HEAD {
        return method_not_allowed();
    }
    match parse_target(path) {
        Target::List(kind) if is_entity_kind(&kind) => {
            json_response(StatusCode::OK, &Value::Array(world.list(&kind)))
        }
        Target::List(kind) if kind == "uploads" => {
            json_response(StatusCode::OK, &world.all_entities()["uploads"])
        }
        Target::Item(kind, id) if is_entity_kind(&kind) => {
            let Some(slot) = world.slot(&kind, &id) else {
                return not_found();
            };
            let Some(entity) = &slot.current else {
                return not_found();
            };
            if header_text(headers, "if-none-match")
                .is_some_and(|list| etag_list_matches(list, &slot.etag()))
            {
                let mut response = StoredResponse {
                    status: StatusCode::NOT_MODIFIED,
                    headers: Vec::new(),
                    body: Bytes::new(),
                };
                add_validators(&mut response, slot);
                return response;
            }
            entity_response(StatusCode::OK, slot, entity)
        }
        Target::Item(kind, id) if kind == "uploads" => match world.uploads.get(&id) {
            Some(upload) => {
                let content_type = upload
                    .content_type
                    .as_deref()
                    .and_then(|text| HeaderValue::from_str(text).ok())
                    .unwrap_or(HeaderValue::from_static("application/octet-stream"));
                StoredResponse {
                    status: StatusCode::OK,
                    headers: vec![(header::CONTENT_TYPE, content_type)],
                    body: upload.bytes.clone(),
                }
            }
            None => not_found(),
        },
        _ => not_found(),
    }
}

fn mutate(
    world: &mut World,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Handled {
    match parse_target(path) {
        Target::Item(kind, id) if is_entity_kind(&kind) => {
            mutate_entity(world, method, &kind, &id, headers, body)
        }
        Target::Item(kind, id) if kind == "uploads" => {
            mutate_upload(world, method, &id, headers, body)
        }
        Target::List(kind) if is_known_kind(&kind) => unchanged(method_not_allowed()),
        _ => unchanged(not_found()),
    }
}

fn mutate_entity(
    world: &mut World,
    method: &Method,
    kind: &str,
    id: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Handled {
    let fields = if method == Method::DELETE {
        Map::new()
    } else {
        match parse_object(body) {
            Ok(fields) => fields,
            Err(response) => return unchanged(response),
        }
    };
    let slot = world.slot_mut(kind, id);
    let exists = slot.current.is_some();
    if let Some(if_match) = header_text(headers, "if-match") {
        if !exists || !etag_list_matches(if_match, &slot.etag()) {
            return unchanged(current_state_response(
                StatusCode::PRECONDITION_FAILED,
                slot,
            ));
        }
    }
    if let Some(if_none_match) = header_text(headers, "if-none-match") {
        if exists && etag_list_matches(if_none_match, &slot.etag()) {
            return unchanged(current_state_response(
                StatusCode::PRECONDITION_FAILED,
                slot,
            ));
        }
    }
    match *method {
        Method::POST if exists => unchanged(current_state_response(StatusCode::CONFLICT, slot)),
        Method::POST => {
            let entity = slot.write(id, fields);
            changed(entity_response(StatusCode::CREATED, slot, &entity))
        }
        Method::PUT => {
            let status = if exists {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            let entity = slot.write(id, fields);
            changed(entity_response(status, slot, &entity))
        }
        Method::PATCH => {
            let Some(mut merged) = slot.current.clone() else {
                return unchanged(not_found());
            };
            merge_patch(&mut merged, fields);
            let entity = slot.write(id, merged);
            changed(entity_response(StatusCode::OK, slot, &entity))
        }
        Method::DELETE => match slot.delete() {
            Some(_) => changed(StoredResponse {
                status: StatusCode::NO_CONTENT,
                headers: Vec::new(),
                body: Bytes::new(),
            }),
            None => unchanged(not_found()),
        },
        _ => unchanged(method_not_allowed()),
    }
}

fn mutate_upload(
    world: &mut World,
    method: &Method,
    id: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Handled {
    match *method {
        Method::POST | Method::PUT => {
            let upload = Upload {
                bytes: body.clone(),
                content_type: header_text(headers, "content-type").map(str::to_owned),
                sha256: sha256_hex(body),
            };
            let description = upload.describe(id);
            world.uploads.insert(id.to_owned(), upload);
            changed(json_response(StatusCode::OK, &description))
        }
        Method::DELETE => match world.uploads.remove(id) {
            Some(_) => changed(StoredResponse {
                status: StatusCode::NO_CONTENT,
                headers: Vec::new(),
                body: Bytes::new(),
            }),
            None => unchanged(not_found()),
        },
        _ => unchanged(method_not_allowed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_lists_compare_strongly() {
        assert!(etag_list_matches("\"1\", \"2\"", "\"2\""));
        assert!(etag_list_matches("*", "\"2\""));
        assert!(!etag_list_matches("W/\"2\"", "\"2\""));
    }

    #[test]
    fn targets_decode_ids() {
        assert!(matches!(parse_target("/api/concepts/"), Target::List(kind) if kind == "concepts"));
        assert!(
            matches!(parse_target("/api/concepts/a%20b"), Target::Item(kind, id) if kind == "concepts" && id == "a b")
        );
        assert!(matches!(parse_target("/api/concepts/1/2"), Target::Unknown));
    }
}
