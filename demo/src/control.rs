//! `/control/*`: fault injection, direct edits and counters for the tests.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::api::{entity_response, error_response, into_response, json_response, parse_object};
use crate::server::{Connection, ListenerKind};
use crate::state::{is_entity_kind, mutation_methods, DropRule, FailRule, StoredResponse};
use crate::Shared;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FailRequest {
    count: u64,
    status: Option<u16>,
    retry_after: Option<Value>,
    path: Option<String>,
    methods: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct DropRequest {
    count: u64,
    path: Option<String>,
    methods: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct DelayRequest {
    ms: u64,
}

#[derive(Deserialize)]
struct DedupeRequest {
    path: String,
    enabled: bool,
}

#[derive(Deserialize)]
struct EditRequest {
    kind: String,
    id: String,
    body: Option<Value>,
    mode: Option<String>,
}

fn bad_request(message: String) -> StoredResponse {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({ "error": "bad_request", "message": message }),
    )
}

/// An empty body reads as `{}` so body-less calls work from curl.
fn parse<Request: DeserializeOwned>(body: &Bytes) -> Result<Request, StoredResponse> {
    let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(text).map_err(|error| bad_request(error.to_string()))
}

fn parse_methods(methods: Option<Vec<String>>) -> Result<Vec<Method>, StoredResponse> {
    let Some(names) = methods else {
        return Ok(mutation_methods());
    };
    names
        .iter()
        .map(|name| {
            Method::from_bytes(name.to_ascii_uppercase().as_bytes())
                .map_err(|_| bad_request(format!("bad method {name:?}")))
        })
        .collect()
}

fn ok(value: Value) -> StoredResponse {
    json_response(StatusCode::OK, &value)
}

fn with_cors(mut response: Response) -> Response {
    let headers = response.headers_mut();
    // Pages served from another port (the demo's control strip) call these.
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("*"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub async fn handle(
    shared: &Arc<Shared>,
    connection: Option<&Connection>,
    method: &Method,
    action: &str,
    body: Bytes,
) -> Response {
    if method == Method::OPTIONS {
        let mut response = Response::new(axum::body::Body::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        return with_cors(response);
    }
    let reads = matches!(action, "stats" | "entities" | "info" | "received");
    let expected = if reads { Method::GET } else { Method::POST };
    let stored = if *method != expected && !(reads && method == Method::HEAD) {
        error_response(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    } else {
        let on_app_port =
            connection.is_some_and(|connection| connection.listener == ListenerKind::App);
        act(shared, on_app_port, action, &body)
            .await
            .unwrap_or_else(|error| error)
    };
    with_cors(into_response(stored))
}

async fn act(
    shared: &Arc<Shared>,
    on_app_port: bool,
    action: &str,
    body: &Bytes,
) -> Result<StoredResponse, StoredResponse> {
    match action {
        "reset" => {
            shared.world().reset();
            shared.up().await.map_err(bind_error)?;
            Ok(ok(json!({})))
        }
        "fail" => {
            let request: FailRequest = parse(body)?;
            let status = StatusCode::from_u16(request.status.unwrap_or(503))
                .map_err(|error| bad_request(error.to_string()))?;
            let methods = parse_methods(request.methods)?;
            let retry_after = match request.retry_after {
                None | Some(Value::Null) => None,
                Some(Value::String(text)) => Some(text),
                Some(other) => Some(other.to_string()),
            };
            let mut world = shared.world();
            if request.count == 0 {
                world.fail_rules.clear();
            } else {
                world.fail_rules.push(FailRule {
                    remaining: request.count,
                    status,
                    retry_after,
                    path: request.path.unwrap_or_else(|| "/api/".into()),
                    methods,
                });
            }
            Ok(ok(world.faults()))
        }
        "drop" => {
            let request: DropRequest = parse(body)?;
            let methods = parse_methods(request.methods)?;
            let mut world = shared.world();
            if request.count == 0 {
                world.drop_rules.clear();
            } else {
                world.drop_rules.push(DropRule {
                    remaining: request.count,
                    path: request.path.unwrap_or_else(|| "/api/".into()),
                    methods,
                });
            }
            let faults = world.faults();
            drop(world);
            shared.recycle_app_connections();
            Ok(ok(faults))
        }
        "delay" => {
            let request: DelayRequest = parse(body)?;
            let mut world = shared.world();
            world.delay_ms = request.ms;
            Ok(ok(world.faults()))
        }
        "dedupe" => {
            let request: DedupeRequest = parse(body)?;
            let mut world = shared.world();
            world.dedupe.insert(request.path, request.enabled);
            Ok(ok(world.faults()))
        }
        "down" => {
            if on_app_port {
                // Going down closes this very connection; answer first.
                let shared = shared.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    shared.down().await;
                });
            } else {
                shared.down().await;
            }
            Ok(ok(json!({ "down": true })))
        }
        "up" => {
            shared.up().await.map_err(bind_error)?;
            Ok(ok(json!({ "down": false })))
        }
        "edit" => edit(shared, parse(body)?),
        "stats" => {
            let world = shared.world();
            Ok(ok(json!({
                "applied": world.log.len(),
                "appliedByKey": world.applied_by_key,
                "receivedByKey": world.received_by_key,
                "log": world.log,
                "requests": world.requests,
                "down": shared.is_down.load(Ordering::SeqCst),
                "faults": world.faults(),
            })))
        }
        "received" => Ok(ok(Value::Array(
            shared.world().received.iter().cloned().collect(),
        ))),
        "entities" => Ok(ok(shared.world().all_entities())),
        // How a page served from the app port finds the control port, which
        // stays up while the app port is down.
        "info" => Ok(ok(json!({
            "app": format!("http://{}", shared.app_address),
            "control": format!("http://{}", shared.control_address),
        }))),
        _ => Err(error_response(StatusCode::NOT_FOUND, "not_found")),
    }
}

fn bind_error(error: std::io::Error) -> StoredResponse {
    json_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &json!({ "error": "bind_failed", "message": error.to_string() }),
    )
}

/// A change made by "another client": bumps the version like any change but
/// is not part of the applied log.
fn edit(shared: &Shared, request: EditRequest) -> Result<StoredResponse, StoredResponse> {
    if !is_entity_kind(&request.kind) {
        return Err(bad_request(format!("unknown kind {:?}", request.kind)));
    }
    let fields = || -> Result<Map<String, Value>, StoredResponse> {
        let body = request.body.clone().unwrap_or(Value::Null);
        parse_object(body.to_string().as_bytes())
    };
    let mut world = shared.world();
    let slot = world.slot_mut(&request.kind, &request.id);
    match request.mode.as_deref().unwrap_or("put") {
        "put" => {
            let entity = slot.write(&request.id, fields()?);
            Ok(entity_response(StatusCode::OK, slot, &entity))
        }
        "patch" => {
            let patch = fields()?;
            let Some(mut merged) = slot.current.clone() else {
                return Err(error_response(StatusCode::NOT_FOUND, "not_found"));
            };
            crate::state::merge_patch(&mut merged, patch);
            let entity = slot.write(&request.id, merged);
            Ok(entity_response(StatusCode::OK, slot, &entity))
        }
        "delete" => match slot.delete() {
            Some(entity) => Ok(json_response(StatusCode::OK, &Value::Object(entity))),
            None => Err(error_response(StatusCode::NOT_FOUND, "not_found")),
        },
        other => Err(bad_request(format!("unknown mode {other:?}"))),
    }
}
