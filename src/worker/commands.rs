//! Page commands: each gets exactly one reply, `ok` or `error`.

use crate::core::entry::{EntryId, Failure};
use crate::core::lifecycle::{transition, State};
use crate::core::protocol::{
    decode_command, reply_error, reply_ok, Command, EventKind, MessageError, ResolveUse,
    RetryTarget, FEATURES,
};
use crate::worker::drain::Trigger;
use crate::worker::js;
use crate::worker::runtime::Inner;
use js_sys::Promise;
use serde_json::{json, Value};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use web_sys::{ExtendableMessageEvent, MessagePort};

/// Handles a `message` event; None when the message is not the outbox's.
pub fn on_message(inner: Rc<Inner>, event: &ExtendableMessageEvent) -> Option<Promise> {
    let data = event.data();
    let value = js::from_js(&data);
    let reply_to = event.ports().get(0).dyn_into::<MessagePort>().ok();
    let source = event.source();
    let sender = source
        .as_ref()
        .and_then(|source| source.dyn_ref::<web_sys::Client>());
    let trusted = sender.is_some_and(is_own_window);
    let client = sender.map(web_sys::Client::id);
    let decoded = match &value {
        Some(value) => decode_command(value),
        // Not JSON (e.g. a transferred object): ours only if it has the marker.
        None if js_sys::Reflect::has(&data, &"outbox".into()).unwrap_or(false) => {
            Err(MessageError::Malformed {
                id: None,
                message: "an outbox message must be plain JSON data".into(),
            })
        }
        None => Err(MessageError::NotOutbox),
    };
    let reply = move |message: Value| {
        let message = js::to_js(&message);
        if let Some(port) = &reply_to {
            let _ = port.post_message(&message);
        } else if let Some(source) = &source {
            if let Some(client) = source.dyn_ref::<web_sys::Client>() {
                let _ = client.post_message(&message);
            }
        }
    };
    if !matches!(decoded, Err(MessageError::NotOutbox)) && !trusted {
        let id = decoded.as_ref().ok().map(|request| request.id);
        reply(reply_error(
            id,
            "outbox commands are only taken from windows of this origin",
        ));
        return None;
    }
    match decoded {
        Err(MessageError::NotOutbox) => None,
        Err(MessageError::Malformed { id, message }) => {
            reply(reply_error(id, &message));
            None
        }
        Ok(request) => Some(future_to_promise(async move {
            if let (true, Some(client)) = (request.events, &client) {
                js::accept_batches(client.clone());
            }
            let mut message = match run(inner, request.command).await {
                Ok(result) => reply_ok(request.id, result),
                Err(message) => reply_error(Some(request.id), &message),
            };
            // The events that came before the reply are posted first; a page
            // that reads envelopes learns which was the last, as the browser
            // may deliver the reply (on its own channel) before it.
            js::posted().await;
            if let Some(after) = client.as_deref().and_then(js::last_envelope) {
                message["after"] = after;
            }
            reply(message);
            Ok(JsValue::UNDEFINED)
        })),
    }
}

/// True if a message came from a window client of the worker's own origin.
/// NOTE: Chromium exposes no `navigator.serviceWorker` to dedicated workers,
/// so only windows can reach the worker there; the check guards engines and
/// versions that let other clients post.
fn is_own_window(client: &web_sys::Client) -> bool {
    client.type_() == web_sys::ClientType::Window
        && web_sys::Url::new(&client.url())
            .is_ok_and(|url| url.origin() == js::scope().location().origin())
}

fn not_found(id: EntryId) -> String {
    format!("entry {id} not found")
}

/// Runs one command.
pub async fn run(inner: Rc<Inner>, command: Command) -> Result<Value, String> {
    let switched_off = match &command {
        Command::Clear { .. } => (!inner.config.commands.clear).then_some("clear"),
        Command::Cancel { .. } => (!inner.config.commands.cancel).then_some("cancel"),
        Command::Resolve { .. } => (!inner.config.commands.resolve).then_some("resolve"),
        _ => None,
    };
    if let Some(name) = switched_off {
        return Err(format!(
            "the {name} command is switched off in this site's outbox config (commands.{name})"
        ));
    }
    // `hello` needs no store: it only names protocol features.
    if command != Command::Hello {
        inner.store().await.map_err(|e| e.message)?;
    }
    match command {
        // The features this worker offers; it uses each only with pages that
        // name it.
        Command::Hello => Ok(json!({ "features": FEATURES })),
        Command::Status => Ok(inner.status()),
        Command::Entries { states } => {
            let entries: Vec<Value> = inner
                .queue
                .borrow()
                .values()
                .filter(|e| states.as_ref().is_none_or(|s| s.contains(&e.state)))
                .map(|e| e.view())
                .collect();
            Ok(json!({"entries": entries}))
        }
        Command::Flush => flush(inner).await,
        Command::Retry { target } => {
            let ids: Vec<EntryId> = match target {
                RetryTarget::AllFailed => inner
                    .queue
                    .borrow()
                    .values()
                    .filter(|e| e.state == State::Failed)
                    .map(|e| e.id)
                    .collect(),
                RetryTarget::Entry(id) => {
                    let entry = inner.entry(id).ok_or_else(|| not_found(id))?;
                    if !matches!(entry.state, State::Failed | State::WaitingRetry) {
                        return Err(format!(
                            "entry {id} is {}, not failed or waiting_retry",
                            entry.state
                        ));
                    }
                    vec![id]
                }
            };
            for id in &ids {
                if let Some(mut entry) = inner.entry(*id) {
                    entry.state =
                        transition(entry.state, State::Pending).map_err(|e| e.to_string())?;
                    entry.attempts = 0;
                    entry.offline_attempts = 0;
                    entry.failure = None::<Failure>;
                    entry.next_attempt_at = None;
                    inner.save(entry).await.map_err(|e| e.message)?;
                }
            }
            let _ = inner.clone().start_drain(Trigger::Command);
            Ok(json!({"retried": ids}))
        }
        Command::Cancel { entry: id } => {
            let mut entry = inner.entry(id).ok_or_else(|| not_found(id))?;
            if entry.state == State::InFlight {
                return Err(format!("entry {id} is in flight; its answer decides it"));
            }
            entry.state = transition(entry.state, State::Cancelled).map_err(|e| e.to_string())?;
            inner.save(entry).await.map_err(|e| e.message)?;
            inner.emit_status().await;
            // Entries that depended on it are now blocked.
            let _ = inner.clone().start_drain(Trigger::Change);
            Ok(json!({"cancelled": id}))
        }
        Command::Clear { states, corrupt } => {
            let ids: Vec<EntryId> = inner
                .queue
                .borrow()
                .values()
                .filter(|e| e.state != State::InFlight)
                .filter(|e| states.as_ref().is_none_or(|s| s.contains(&e.state)))
                .map(|e| e.id)
                .collect();
            inner.remove(&ids).await.map_err(|e| e.message)?;
            let mut removed = ids.len();
            if corrupt {
                let store = inner.store().await.map_err(|e| e.message)?;
                removed += store.clear_corrupt().await.map_err(|e| e.message)?;
                inner.corrupt.set(0);
            }
            inner.emit_status().await;
            Ok(json!({"removed": removed}))
        }
        Command::User { user, headers } => set_user(inner, user, headers).await,
        Command::Logout { discard } => logout(inner, discard).await,
        Command::Auth { headers } => {
            *inner.auth.borrow_mut() = headers;
            let resumed = resume_paused(&inner).await?;
            let _ = inner.clone().start_drain(Trigger::Command);
            Ok(json!({"resumed": resumed}))
        }
        Command::Resolve {
            entry: id,
            using,
            body,
        } => resolve(inner, id, using, body).await,
    }
}

/// Entries paused for auth go back to pending (those held for another user
/// wait for that user's auth); gives how many.
async fn resume_paused(inner: &Inner) -> Result<usize, String> {
    let user = inner.user.borrow().clone();
    let paused: Vec<EntryId> = inner
        .queue
        .borrow()
        .values()
        .filter(|e| e.state == State::PausedAuth && !e.held_for(user.as_deref()))
        .map(|e| e.id)
        .collect();
    for id in &paused {
        if let Some(mut entry) = inner.entry(*id) {
            entry.state = State::Pending;
            entry.next_attempt_at = None;
            inner.save(entry).await.map_err(|e| e.message)?;
        }
    }
    Ok(paused.len())
}

/// Makes `user` the current user: stored first, so a worker restart keeps
/// it. Auth headers a page gave belong to the previous user: they are
/// replaced by `headers` (the new user's) in the same step, or forgotten.
/// Entries of the new user are released to a drain.
async fn set_user(
    inner: Rc<Inner>,
    user: Option<String>,
    headers: Option<Vec<(String, String)>>,
) -> Result<Value, String> {
    let changed = *inner.user.borrow() != user;
    if changed {
        let store = inner.store().await.map_err(|e| e.message)?;
        store
            .set_user(user.as_deref())
            .await
            .map_err(|e| e.message)?;
        *inner.user.borrow_mut() = user.clone();
        inner.auth.borrow_mut().clear();
    }
    if let Some(headers) = headers {
        *inner.auth.borrow_mut() = headers;
        resume_paused(&inner).await?;
    }
    if changed {
        inner.emit_status().await;
    }
    let _ = inner.clone().start_drain(Trigger::Command);
    let held = inner.queue.borrow().held(user.as_deref());
    Ok(json!({"user": user, "held": held}))
}

/// The current user signs out. With `discard`, their entries that are not
/// in flight are removed and reported in a `discarded` event (an entry in
/// flight is decided by its answer, and held if it must be sent again);
/// without it they stay, held until that user is current again. Then there
/// is no current user.
async fn logout(inner: Rc<Inner>, discard: bool) -> Result<Value, String> {
    let user = inner.user.borrow().clone();
    let mut discarded = Vec::new();
    if let (true, Some(current)) = (discard, user.as_deref()) {
        let views: Vec<(EntryId, Value)> = inner
            .queue
            .borrow()
            .values()
            .filter(|e| e.user.as_deref() == Some(current) && e.state != State::InFlight)
            .map(|e| (e.id, e.view()))
            .collect();
        let ids: Vec<EntryId> = views.iter().map(|(id, _)| *id).collect();
        inner.remove(&ids).await.map_err(|e| e.message)?;
        if !views.is_empty() {
            let entries: Vec<Value> = views.into_iter().map(|(_, view)| view).collect();
            inner
                .emit(
                    EventKind::Discarded,
                    json!({"entries": entries, "reason": "logout", "user": current}),
                )
                .await;
        }
        discarded = ids;
    }
    let after = set_user(inner.clone(), None, None).await?;
    Ok(json!({"user": null, "previous": user, "discarded": discarded, "held": after["held"]}))
}

/// Drains now (or joins the running drain) and gives the status after it.
pub async fn flush(inner: Rc<Inner>) -> Result<Value, String> {
    if !inner.config.triggers.flush {
        return Ok(inner.status());
    }
    let promise = inner.clone().start_drain(Trigger::Flush);
    JsFuture::from(promise)
        .await
        .map_err(|e| js::describe(&e))?;
    Ok(inner.status())
}

async fn resolve(
    inner: Rc<Inner>,
    id: EntryId,
    using: ResolveUse,
    body: Option<Value>,
) -> Result<Value, String> {
    let mut entry = inner.entry(id).ok_or_else(|| not_found(id))?;
    if entry.state != State::Conflict {
        return Err(format!("entry {id} is {}, not in conflict", entry.state));
    }
    let remote_etag = entry.conflict.as_ref().and_then(|c| c.remote_etag.clone());
    let kept = match using {
        ResolveUse::Remote => {
            entry.state = transition(entry.state, State::Superseded).map_err(|e| e.to_string())?;
            "remote"
        }
        ResolveUse::Local | ResolveUse::Merged => {
            if let Some(body) = body.filter(|_| using == ResolveUse::Merged) {
                let store = inner.store().await.map_err(|e| e.message)?;
                let bytes = body.to_string().into_bytes();
                entry.body_bytes = bytes.len() as u64;
                store
                    .replace_body(entry.id, &js_sys::Uint8Array::from(bytes.as_slice()))
                    .await
                    .map_err(|e| e.message)?;
            }
            // A new body is a new request: a server must not answer it with
            // the first attempt's stored response.
            entry.rekey();
            entry.conflict_resends += 1;
            match remote_etag {
                Some(etag) => entry.set_header("If-Match", &etag),
                None => entry
                    .headers
                    .retain(|(n, _)| !n.eq_ignore_ascii_case("if-match")),
            }
            entry.state = transition(entry.state, State::Pending).map_err(|e| e.to_string())?;
            entry.uncertain = false;
            if using == ResolveUse::Local {
                "local"
            } else {
                "merged"
            }
        }
    };
    entry.conflict = None;
    let view = entry.view();
    inner.save(entry).await.map_err(|e| e.message)?;
    inner
        .emit(EventKind::Resolved, json!({"entry": view, "kept": kept}))
        .await;
    let _ = inner.clone().start_drain(Trigger::Command);
    Ok(json!({"resolved": id, "kept": kept}))
}
