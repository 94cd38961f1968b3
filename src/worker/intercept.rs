//! The fetch path: decide synchronously whether a request is the outbox's,
//! then send it through, or queue it when the network fails.

use crate::core::entry::{BaseVersion, Entry, EntryId};
use crate::core::protocol::EventKind;
use crate::core::retry::parse_http_date;
use crate::replay::{self, Outgoing, SendError};
use crate::worker::js;
use crate::worker::runtime::Inner;
use js_sys::{ArrayBuffer, Uint8Array};
use serde_json::json;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Request, RequestMode, Response, ResponseInit, Url};

/// The header a page uses to make a request wait for queued entries.
pub const DEPENDS_ON: &str = "outbox-depends-on";

/// What the outbox does with a request it handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// A mutation on this route: send it, or queue it.
    Mutation(usize),
    /// A GET of an entity on this conditional route: pass it through and
    /// record the answer as the entity's base version.
    BaseRead(usize),
}

/// How the outbox handles a request, or None to leave it alone.
pub fn route_of(inner: &Inner, request: &Request) -> Option<Handling> {
    // Navigations (form posts) and no-cors requests are never the outbox's.
    if matches!(request.mode(), RequestMode::Navigate | RequestMode::NoCors) {
        return None;
    }
    let url = Url::new(&request.url()).ok()?;
    if url.origin() != js::scope().location().origin() {
        return None;
    }
    let path = url.pathname();
    if request.method().eq_ignore_ascii_case("GET") {
        return inner
            .config
            .conditional_route_for_get(&path)
            .filter(|(_, route)| route.record_gets)
            .map(|(index, _)| Handling::BaseRead(index));
    }
    inner
        .config
        .route_for(&request.method(), &path)
        .map(|(index, _)| Handling::Mutation(index))
}

/// Passes a GET through and records a successful JSON answer as the base
/// version of the entity.
pub async fn read_base(inner: Rc<Inner>, request: Request) -> Result<Response, JsValue> {
    let path = Url::new(&request.url())
        .map(|u| u.pathname())
        .unwrap_or_default();
    let Ok(response) = JsFuture::from(js::scope().fetch_with_request(&request)).await else {
        // As without a service worker: a network error for the page.
        return Ok(Response::error());
    };
    let response: Response = response.dyn_into()?;
    record_base_later(inner, path, &response);
    Ok(response)
}

/// Records a successful answer as the base version of the entity at `path`,
/// reading a copy of it after the page has the original.
fn record_base_later(inner: Rc<Inner>, path: String, response: &Response) {
    if !response.ok() {
        return;
    }
    if let Ok(copy) = response.clone() {
        wasm_bindgen_futures::spawn_local(async move {
            if let Some(base) = base_of(&copy).await {
                inner.record_base(&path, base, None).await;
            }
        });
    }
}

/// The base version in a successful response: its ETag, Last-Modified and
/// JSON object body; None without an ETag.
pub async fn base_of(response: &Response) -> Option<BaseVersion> {
    let headers = response.headers();
    let etag = headers.get("etag").ok().flatten()?;
    let last_modified_ms = headers
        .get("last-modified")
        .ok()
        .flatten()
        .and_then(|v| parse_http_date(&v));
    let text = JsFuture::from(response.text().ok()?)
        .await
        .ok()?
        .as_string()?;
    let body = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .filter(|v| v.is_object());
    Some(BaseVersion {
        etag: Some(etag),
        last_modified_ms,
        body,
    })
}

fn json_response(
    status: u16,
    body: &serde_json::Value,
    extra: &[(&str, String)],
) -> Result<Response, JsValue> {
    let init = ResponseInit::new();
    init.set_status(status);
    let headers = web_sys::Headers::new()?;
    headers.set("content-type", "application/json")?;
    for (name, value) in extra {
        headers.set(name, value)?;
    }
    init.set_headers(&headers);
    Response::new_with_opt_str_and_init(Some(&body.to_string()), &init)
}

fn parse_depends_on(value: &str) -> Result<Vec<EntryId>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<EntryId>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| format!("Outbox-Depends-On: '{part}' is not an entry id"))
        })
        .collect()
}

/// The 202 that tells the page its request is queued as entry `id`.
fn queued_response(id: EntryId) -> Result<Response, JsValue> {
    json_response(
        202,
        &json!({"queued": true, "id": id}),
        &[("Outbox-Entry", id.to_string())],
    )
}

/// What the loader took from a request before handing it over.
pub struct Read {
    /// The body, already read (the request's own is then used up); None to
    /// read it here.
    pub body: Option<ArrayBuffer>,
    /// The Idempotency-Key to add when the request has none.
    pub key: Option<String>,
}

/// Handles a request the outbox owns; the promise always resolves to a
/// response. `recovered` marks a request a trapped instance had taken: if
/// that instance stored it before trapping, the stored entry (found by its
/// Idempotency-Key, which the loader sets) answers it instead of a copy.
pub async fn handle(
    inner: Rc<Inner>,
    request: Request,
    read: Read,
    route: usize,
    recovered: bool,
) -> Result<Response, JsValue> {
    let Some(route_config) = inner.config.routes.get(route).cloned() else {
        return json_response(
            500,
            &json!({"error": "outbox", "message": "route vanished"}),
            &[],
        );
    };
    let method = request.method().to_ascii_uppercase();
    let url = request.url();
    let path = Url::new(&url).map(|u| u.pathname()).unwrap_or_default();

    let buffer = match read.body {
        Some(buffer) => buffer,
        None => JsFuture::from(request.array_buffer()?)
            .await?
            .unchecked_into::<ArrayBuffer>(),
    };
    let body = Uint8Array::new(&buffer);
    let limit = inner.config.limits.max_body_bytes;
    if body.length() as u64 > limit {
        let detail = json!({"error": "body_too_large", "limit": limit, "bytes": body.length()});
        inner
            .emit(EventKind::Failed, json!({"entry": null, "reason": "body_too_large", "message": format!("{method} {url}: body of {} bytes is over limits.maxBodyBytes ({limit})", body.length())}))
            .await;
        return json_response(413, &detail, &[]);
    }

    let mut headers = Vec::new();
    let mut idempotency_key = None;
    let mut depends_on = Vec::new();
    for pair in js_sys::try_iter(&request.headers())?.into_iter().flatten() {
        let pair = js_sys::Array::from(&pair?);
        let (Some(name), Some(value)) = (pair.get(0).as_string(), pair.get(1).as_string()) else {
            continue;
        };
        match name.to_ascii_lowercase().as_str() {
            "idempotency-key" => idempotency_key = Some(value.clone()),
            DEPENDS_ON => match parse_depends_on(&value) {
                Ok(ids) => depends_on = ids,
                Err(message) => {
                    return json_response(
                        400,
                        &json!({"error": "bad_header", "message": message}),
                        &[],
                    );
                }
            },
            _ => {}
        }
        if name.to_ascii_lowercase() != DEPENDS_ON {
            headers.push((name, value));
        }
    }
    let idempotency_key = idempotency_key.unwrap_or_else(|| {
        let key = read.key.unwrap_or_else(js::uuid);
        headers.push(("Idempotency-Key".to_owned(), key.clone()));
        key
    });

    let mut entry = Entry::new(&method, &url, &idempotency_key, route, js::now());
    entry.kind = route_config.kind.clone();
    entry.entity = route_config.entity_key(&path);
    entry.priority = route_config.priority;
    entry.depends_on = depends_on;
    entry.credentials = match request.credentials() {
        web_sys::RequestCredentials::Include => "include",
        web_sys::RequestCredentials::Omit => "omit",
        _ => "same-origin",
    }
    .to_owned();
    entry.body_bytes = body.length() as u64;
    if route_config.conditional {
        entry.base = inner.bases.borrow().get(&path).cloned();
    }

    // The queue must be loaded to know whether this request has to wait.
    let store = inner.store().await;
    // After the load: the current user is read from the store with the queue.
    entry.user = inner.user.borrow().clone();
    if recovered {
        let stored = inner
            .queue
            .borrow()
            .values()
            .find(|queued| queued.idempotency_key == idempotency_key)
            .map(|queued| queued.id);
        if let Some(id) = stored {
            return queued_response(id);
        }
    }
    let must_wait = {
        let queue = inner.queue.borrow();
        let entity_busy = entry
            .entity
            .as_deref()
            .is_some_and(|entity| inner.entity_has_open_entries(entity));
        let dependency_open = entry
            .depends_on
            .iter()
            .any(|id| queue.get(*id).is_some_and(|d| d.state.is_open()));
        entity_busy || dependency_open
    };

    // With the browser offline a live attempt cannot succeed: queue at once.
    if !must_wait && js::online() {
        // A conditional route sends the base ETag unless the page set If-Match;
        // it is not stored: a replay takes the base current at that time.
        let mut live_headers = headers.clone();
        let page_if_match = headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("if-match"));
        if let (true, false, Some(etag)) = (
            route_config.conditional,
            page_if_match,
            entry.base.as_ref().and_then(|b| b.etag.clone()),
        ) {
            live_headers.push(("If-Match".to_owned(), etag));
        }
        let outgoing = Outgoing {
            method: &method,
            url: &url,
            headers: &live_headers,
            body: Some(&body),
            credentials: &entry.credentials,
        };
        match replay::send(&outgoing, inner.config.limits.attempt_timeout_ms).await {
            Ok(response) => {
                if (200..300).contains(&response.status()) {
                    inner.last_success_at.set(Some(js::now()));
                    if route_config.conditional {
                        record_base_later(inner.clone(), path, &response);
                    }
                }
                return Ok(response);
            }
            Err(error) => {
                entry.attempts = 1;
                entry.offline_attempts = u32::from(matches!(error, SendError::Network(_)));
                entry.uncertain = true;
                entry.last_attempt_at = Some(entry.created_at);
                let retry = &inner.config.retry;
                entry.next_attempt_at = Some(js::now() + retry.backoff_ms(1, js::random()));
                entry.last_error = Some(match error {
                    SendError::Network(message) => format!("network: {message}"),
                    SendError::Timeout => "timeout".to_owned(),
                });
            }
        }
    }

    entry.headers = headers
        .into_iter()
        .filter(|(name, _)| inner.config.stores_header(name))
        .collect();
    let store = match store {
        Ok(store) => store,
        Err(error) => return refuse(&inner, &entry, 507, "storage", &error.message).await,
    };
    if inner.queue.borrow().len() as u64 >= inner.config.limits.max_entries {
        let message = format!(
            "the queue holds limits.maxEntries ({}) entries",
            inner.config.limits.max_entries
        );
        return refuse(&inner, &entry, 507, "queue_full", &message).await;
    }
    let queued_bytes = inner.queue.borrow().body_bytes();
    if queued_bytes + entry.body_bytes > inner.config.limits.max_queue_bytes {
        let message = format!(
            "the queue holds {queued_bytes} body bytes; {} more would pass limits.maxQueueBytes ({})",
            entry.body_bytes, inner.config.limits.max_queue_bytes
        );
        return refuse(&inner, &entry, 507, "queue_full", &message).await;
    }
    entry.id = inner.next_id.get();
    inner.next_id.set(entry.id + 1);
    if let Err(error) = store.add(&entry, &body).await {
        // The browser refused for lack of space (QuotaExceededError): the
        // page can tell it from the queue's own budget (`queue_full`).
        let (status, reason) = if error.quota {
            (507, "quota")
        } else {
            (500, "storage")
        };
        return refuse(&inner, &entry, status, reason, &error.message).await;
    }
    let id = entry.id;
    let next_attempt_at = entry.next_attempt_at;
    // Handed to the posting task before any later event of this entry.
    inner
        .emit(EventKind::Queued, json!({"entry": entry.view()}))
        .await;
    inner.queue.borrow_mut().insert(entry);
    inner.clone().after_enqueue(next_attempt_at);
    // Computed when it is posted, after the 202 has gone.
    inner.emit_status().await;
    queued_response(id)
}

async fn refuse(
    inner: &Inner,
    entry: &Entry,
    status: u16,
    reason: &str,
    message: &str,
) -> Result<Response, JsValue> {
    let text = format!("{} {}: not queued: {message}", entry.method, entry.url);
    inner
        .emit(
            EventKind::Failed,
            json!({"entry": null, "reason": reason, "message": text}),
        )
        .await;
    json_response(status, &json!({"error": reason, "message": text}), &[])
}

impl Inner {
    /// After an entry was queued: register the sync tag; a running drain
    /// plans again (the entry may only wait behind its entity), otherwise the
    /// entry waits for a trigger or its backoff timer.
    fn after_enqueue(self: Rc<Self>, next_attempt_at: Option<u64>) {
        if self.config.triggers.sync {
            let tag = self.config.sync_tag.clone();
            wasm_bindgen_futures::spawn_local(async move { js::register_sync(&tag).await });
        }
        if self.drain.borrow().is_some() {
            self.replan.set(true);
            self.wakeup.notify();
        } else if let (true, Some(at)) = (self.config.triggers.timer, next_attempt_at) {
            self.arm_timer(at);
        }
    }
}
