//! The drain: plan with the core scheduler, mark entries in flight under a
//! lease, send them, and apply each outcome — one drain at a time per origin.

use crate::core::conflict::{
    already_applied, custom_answer, decide, remote_timestamp, ConflictInput, CustomAnswer,
    Resolution,
};
use crate::core::entry::{path_of, BaseVersion, ConflictInfo, Entry, EntryId, Failure};
use crate::core::lifecycle::{transition, State};
use crate::core::outcome::{classify, AttemptResult, Outcome};
use crate::core::protocol::{event, EventKind};
use crate::core::retry::{parse_http_date, parse_retry_after};
use crate::core::scheduler::{plan, PlanOptions};
use crate::replay::{self, header, Outgoing, SendError};
use crate::worker::js;
use crate::worker::runtime::Inner;
use js_sys::{Function, Promise, Uint8Array};
use serde_json::{json, Value};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use web_sys::Response;

/// The Web Lock that makes one drain at a time per origin.
pub const DRAIN_LOCK: &str = "sw-outbox-drain";

/// Automatic re-sends after conflicts before one is left to the page.
const MAX_CONFLICT_RESENDS: u32 = 3;

/// Largest remote entity read to settle a conflict.
const REMOTE_BODY_LIMIT: u64 = 1024 * 1024;

/// Extra lease time beyond the attempt timeout.
const LEASE_MARGIN_MS: u64 = 10_000;

/// What started a drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The Background Sync event.
    Sync,
    /// A page's flush, or `Outbox.flush()`.
    Flush,
    /// The worker started.
    Start,
    /// A backoff ended.
    Timer,
    /// The page changed the queue in a way that may block or unblock entries.
    Change,
    /// A page command changed the queue (retry, auth, resolve).
    Command,
}

impl Trigger {
    /// Whether this trigger suggests the network may be back, so entries
    /// that wait only for an offline backoff go now.
    fn network_maybe_back(self) -> bool {
        matches!(
            self,
            Trigger::Sync | Trigger::Flush | Trigger::Start | Trigger::Command
        )
    }
}

fn set_state(entry: &mut Entry, to: State) -> bool {
    match transition(entry.state, to) {
        Ok(state) => {
            entry.state = state;
            true
        }
        Err(error) => {
            js::warn(&format!("outbox: entry {}: {error}", entry.id));
            false
        }
    }
}

impl Inner {
    /// Starts a drain, or joins the one running. Resolves with the status
    /// when the drain ends.
    pub fn start_drain(self: Rc<Self>, trigger: Trigger) -> Promise {
        if let Some(running) = self.drain.borrow().clone() {
            if trigger.network_maybe_back() {
                self.rerun.set(true);
            }
            self.replan.set(true);
            self.wakeup.notify();
            return running;
        }
        if let Some(timer) = self.timer.take() {
            js::scope().clear_timeout_with_handle(timer);
            self.timer_at.set(None);
        }
        let inner = self.clone();
        let promise = future_to_promise(async move {
            let mut offline = inner.clone().drain_with_lock(trigger).await;
            // A trigger that came after the drain's last look (while it gave
            // the lock back) joined this drain and gets a pass of its own.
            loop {
                let rerun = inner.rerun.replace(false);
                let replan = inner.replan.replace(false);
                if !rerun && !replan {
                    break;
                }
                let again = if rerun {
                    Trigger::Flush
                } else {
                    Trigger::Change
                };
                offline = inner.clone().drain_with_lock(again).await;
            }
            *inner.drain.borrow_mut() = None;
            inner.last_drain_offline.set(offline);
            inner.emit_status().await;
            Ok(js::to_js(&inner.status()))
        });
        *self.drain.borrow_mut() = Some(promise.clone());
        promise
    }

    async fn drain_with_lock(self: Rc<Self>, trigger: Trigger) -> bool {
        let inner = self.clone();
        let task: Box<dyn FnOnce() -> Promise> = Box::new(move || {
            future_to_promise(async move {
                let offline = inner.drain_loop(trigger, true).await;
                Ok(JsValue::from_bool(offline))
            })
        });
        // The lock's promise resolves with the task's value.
        let steal = self.steal_lock.replace(false);
        match js::with_lock(DRAIN_LOCK, steal, task).await {
            Ok(Some(offline)) => offline.as_bool().unwrap_or(false),
            Ok(None) => self.drain_loop(trigger, false).await,
            Err(error) => {
                js::warn(&format!("outbox: drain lock: {}", js::describe(&error)));
                false
            }
        }
    }

    /// Runs one drain; returns true if it stopped because the network failed.
    async fn drain_loop(self: Rc<Self>, trigger: Trigger, locked: bool) -> bool {
        if self.store().await.is_err() {
            return false;
        }
        // A trigger that joined this drain while it waited for the lock
        // counts as its own.
        let maybe_back = trigger.network_maybe_back() || self.rerun.replace(false);
        // With the browser offline nothing can be sent: a timer or a start
        // makes no pass over the queue. A trigger that says the network may
        // be back always tries (the worker may learn it after the page).
        if !js::online() && !maybe_back {
            return true;
        }
        let now = js::now();
        {
            let sending = self.sending.borrow();
            // Holding the origin's drain lock proves no other drain sends
            // these: their worker died mid-attempt.
            self.queue.borrow_mut().update_all(|entry| {
                if locked && entry.state == State::InFlight && !sending.contains(&entry.id) {
                    entry.lease_until = Some(0);
                    entry.uncertain = true;
                }
            });
        }
        self.expire(now).await;

        let mut network_maybe_back = maybe_back;
        let mut offline = false;
        self.offline_seen.set(false);
        let sendable = self
            .queue
            .borrow()
            .sendable_for(self.user.borrow().as_deref()) as u64;
        self.progress.set((0, sendable));
        let mut next_wake_at;
        loop {
            self.replan.set(false);
            if self.rerun.replace(false) {
                network_maybe_back = true;
                offline = false;
            }
            if self.offline_seen.replace(false) {
                offline = true;
                network_maybe_back = false;
            }
            // Twice as many entries are taken as may be on the network: the
            // next ones are leased while the first are sent, and go out as
            // soon as a place is free.
            let free_slots = (2 * self.config.limits.concurrency as usize)
                .saturating_sub(self.sending.borrow().len());
            let decided = {
                let user = self.user.borrow();
                plan(
                    self.queue.borrow().values(),
                    PlanOptions {
                        now: js::now(),
                        free_slots: if offline { 0 } else { free_slots },
                        network_maybe_back,
                        user: user.as_deref(),
                    },
                )
            };
            next_wake_at = decided.next_wake_at;
            self.apply_blocking(&decided.block, &decided.unblock).await;
            let (finished, total) = self.progress.get();
            let new_ids: Vec<EntryId> = decided.send;
            if !new_ids.is_empty() {
                let known = finished + self.sending.borrow().len() as u64 + new_ids.len() as u64;
                self.progress.set((finished, total.max(known)));
            }
            self.clone().begin_attempts(new_ids);
            let idle =
                || self.sending.borrow().is_empty() && !self.replan.get() && !self.rerun.get();
            if idle() {
                // The drain ends with its sent entries gone from the store,
                // unless something came up meanwhile.
                self.writes_settled().await;
                if idle() {
                    break;
                }
                continue;
            }
            self.wakeup.wait().await;
        }
        if self.config.triggers.timer {
            if let Some(at) = next_wake_at {
                self.clone().arm_timer(at);
            }
        }
        offline
    }

    /// Fails entries older than the retention time.
    async fn expire(&self, now: u64) {
        let expired: Vec<Entry> = self
            .queue
            .borrow()
            .values()
            .filter(|e| {
                matches!(
                    e.state,
                    State::Pending | State::WaitingRetry | State::Blocked
                ) && self.config.retry.expired(e.created_at, now)
            })
            .cloned()
            .collect();
        for mut entry in expired {
            if set_state(&mut entry, State::Failed) {
                entry.failure = Some(Failure::Expired);
                entry.last_error = Some("older than retry.retentionMs".into());
                let view = entry.view();
                if self.save(entry).await.is_ok() {
                    self.emit(
                        EventKind::Failed,
                        json!({"entry": view, "reason": "expired", "message": "older than retry.retentionMs"}),
                    )
                    .await;
                }
            }
        }
    }

    async fn apply_blocking(&self, block: &[(EntryId, EntryId)], unblock: &[EntryId]) {
        let mut changed = Vec::new();
        for (id, by) in block {
            if let Some(mut entry) = self.entry(*id) {
                if set_state(&mut entry, State::Blocked) {
                    entry.last_error = Some(format!("blocked: entry {by} failed or was cancelled"));
                    changed.push(entry);
                }
            }
        }
        for id in unblock {
            if let Some(mut entry) = self.entry(*id) {
                if set_state(&mut entry, State::Pending) {
                    entry.last_error = None;
                    changed.push(entry);
                }
            }
        }
        if changed.is_empty() {
            return;
        }
        for entry in changed {
            let _ = self.save(entry).await;
        }
        self.emit_status().await;
    }

    /// Arms the backoff timer for `at` (ms since the epoch), unless it is
    /// already set to go off sooner.
    pub fn arm_timer(self: Rc<Self>, at: u64) {
        if let (Some(timer), Some(armed)) = (self.timer.get(), self.timer_at.get()) {
            if armed <= at {
                return;
            }
            js::scope().clear_timeout_with_handle(timer);
            self.timer.set(None);
        }
        self.timer_at.set(Some(at));
        let delay = at.saturating_sub(js::now()).min(i32::MAX as u64) as i32;
        let inner = self.clone();
        let callback = Closure::once_into_js(move || {
            inner.timer.set(None);
            inner.timer_at.set(None);
            let _ = inner.start_drain(Trigger::Timer);
        });
        if let Ok(handle) = js::scope()
            .set_timeout_with_callback_and_timeout_and_arguments_0(callback.unchecked_ref(), delay)
        {
            self.timer.set(Some(handle));
        }
    }

    /// Marks the entries in flight and starts their attempts. Their leases
    /// are stored, and their bodies read, in one transaction for the batch.
    fn begin_attempts(self: Rc<Self>, ids: Vec<EntryId>) {
        let now = js::now();
        let mut batch = Vec::with_capacity(ids.len());
        for id in ids {
            if self.sending.borrow().contains(&id) {
                continue;
            }
            let Some(mut entry) = self.entry(id) else {
                continue;
            };
            let before = entry.clone();
            if entry.state != State::InFlight && !set_state(&mut entry, State::InFlight) {
                continue;
            }
            entry.attempts += 1;
            entry.last_attempt_at = Some(now);
            entry.next_attempt_at = None;
            // Its turn on the network may wait for one attempt before it.
            entry.lease_until =
                Some(now + 2 * self.config.limits.attempt_timeout_ms + LEASE_MARGIN_MS);
            self.queue.borrow_mut().insert(entry.clone());
            self.sending.borrow_mut().insert(id);
            batch.push((before, entry));
        }
        if batch.is_empty() {
            return;
        }
        wasm_bindgen_futures::spawn_local(async move {
            // The leases are stored before the requests leave, so a worker that
            // dies mid-attempt leaves entries the next drain retries with the
            // same keys.
            let entries: Vec<Entry> = batch.iter().map(|(_, entry)| entry.clone()).collect();
            let leased = self.lease(entries).await;
            let bodies = match leased {
                Ok(bodies) => bodies,
                Err(error) => {
                    js::warn(&format!("outbox: storing leases: {error}"));
                    for (before, _) in batch {
                        self.sending.borrow_mut().remove(&before.id);
                        self.queue.borrow_mut().insert(before);
                    }
                    self.wakeup.notify();
                    return;
                }
            };
            self.emit_status().await;
            for ((_, entry), body) in batch.into_iter().zip(bodies) {
                let inner = self.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let id = entry.id;
                    inner.attempt(entry, body).await;
                    inner.sending.borrow_mut().remove(&id);
                    inner.wakeup.notify();
                });
            }
        });
    }

    async fn attempt(self: &Rc<Self>, mut entry: Entry, body: Option<Uint8Array>) {
        // Leased ahead of time, it waits here for a place on the network.
        let pass = self.network.pass().await;
        let Some(body) = body else {
            self.fail(
                entry,
                Failure::Invalid {
                    message: "the stored body is missing".into(),
                },
                None,
            )
            .await;
            return;
        };

        let headers = match self.replay_headers(&entry).await {
            Ok(headers) => headers,
            Err(message) => {
                self.retry_later(entry, None, false, message).await;
                return;
            }
        };
        if entry.held_for(self.user.borrow().as_deref()) {
            // The user changed since this attempt was planned: the entry
            // must not go out with the new user's credentials. It waits,
            // as if never taken, until its user is current again.
            entry.attempts = entry.attempts.saturating_sub(1);
            entry.lease_until = None;
            if set_state(&mut entry, State::Pending) {
                let _ = self.save(entry).await;
            }
            return;
        }
        let outgoing = Outgoing {
            method: &entry.method,
            url: &entry.url,
            headers: &headers,
            body: Some(&body),
            credentials: &entry.credentials,
        };
        let sent = replay::send(&outgoing, self.config.limits.attempt_timeout_ms).await;
        // The next replay goes out while this answer is read.
        drop(pass);
        let now = js::now();
        let result = match &sent {
            Ok(response) => AttemptResult::Response {
                status: response.status(),
                retry_after_ms: header(response, "retry-after")
                    .and_then(|v| parse_retry_after(&v, now)),
            },
            Err(SendError::Network(_)) => AttemptResult::NetworkError,
            Err(SendError::Timeout) => AttemptResult::Timeout,
        };
        let outcome = classify(&entry.method, &result, true, entry.uncertain);
        entry.lease_until = None;
        match (outcome, sent) {
            (Outcome::Done, Ok(response)) => self.done(entry, response).await,
            (Outcome::Retry { after_ms, offline }, sent) => {
                let message = match sent {
                    Ok(response) => format!("HTTP {}", response.status()),
                    Err(SendError::Network(message)) => format!("network: {message}"),
                    Err(SendError::Timeout) => "timeout".to_owned(),
                };
                if !matches!(result, AttemptResult::Response { .. }) {
                    // The request may have reached the server before the failure.
                    entry.uncertain = true;
                }
                self.retry_later(entry, after_ms, offline, message).await;
            }
            (Outcome::PausedAuth, Ok(response)) => {
                let status = response.status();
                if set_state(&mut entry, State::PausedAuth) {
                    entry.last_error =
                        Some(format!("HTTP {status}: waiting for fresh auth from a page"));
                    let view = entry.view();
                    let _ = self.save(entry).await;
                    self.emit(
                        EventKind::AuthRequired,
                        json!({"entry": view, "status": status}),
                    )
                    .await;
                }
            }
            (Outcome::Failed { status }, Ok(response)) => {
                let body = read_body(&response, self.config.limits.sent_body_bytes).await;
                self.fail(entry, Failure::HttpStatus { status }, Some(body))
                    .await;
            }
            (Outcome::Conflict { verify_first }, Ok(response)) => {
                self.conflict(entry, response, &body, verify_first).await
            }
            (_, _) => {
                self.retry_later(entry, None, true, "no response".into())
                    .await;
            }
        }
        self.emit_status().await;
    }

    /// The headers of one replay: stored ones, fresh auth from a page, the
    /// route's `replayHeaders` function, and `If-Match` for conditional routes.
    async fn replay_headers(&self, entry: &Entry) -> Result<Vec<(String, String)>, String> {
        let mut headers = entry.headers.clone();
        let set = |headers: &mut Vec<(String, String)>, name: &str, value: String| {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            headers.push((name.to_owned(), value));
        };
        for (name, value) in self.auth.borrow().iter() {
            set(&mut headers, name, value.clone());
        }
        let route = self.config.routes.get(entry.route);
        if let Some(function) = route
            .and_then(|r| r.replay_headers)
            .and_then(|index| self.functions.get(index as usize))
        {
            for (name, value) in call_for_headers(function, &entry.view()).await? {
                set(&mut headers, &name, value);
            }
        }
        if route.is_some_and(|r| r.conditional) && entry.header("if-match").is_none() {
            if let Some(etag) = entry.base.as_ref().and_then(|b| b.etag.clone()) {
                set(&mut headers, "If-Match", etag);
            }
        }
        Ok(headers)
    }

    async fn done(self: &Rc<Self>, entry: Entry, response: Response) {
        let status = response.status();
        let content_type = header(&response, "content-type");
        let etag = header(&response, "etag");
        let last_modified_ms = header(&response, "last-modified").and_then(|v| parse_http_date(&v));
        let body = read_body(
            &response,
            self.config.limits.sent_body_bytes.max(REMOTE_BODY_LIMIT),
        )
        .await;
        let conditional = self
            .config
            .routes
            .get(entry.route)
            .is_some_and(|r| r.conditional);
        if let (true, Some(etag)) = (conditional, etag) {
            // The server's new version is the base of later edits of the entity.
            let base = BaseVersion {
                etag: Some(etag),
                last_modified_ms,
                body: Some(body.clone()).filter(Value::is_object),
            };
            self.record_base(path_of(&entry.url), base, Some(entry.id))
                .await;
        }
        let body = if body.to_string().len() as u64 > self.config.limits.sent_body_bytes {
            Value::Null
        } else {
            body
        };
        self.finish_done(entry, status, content_type, body).await;
    }

    async fn finish_done(
        self: &Rc<Self>,
        mut entry: Entry,
        status: u16,
        content_type: Option<String>,
        body: Value,
    ) {
        if !set_state(&mut entry, State::Done) {
            return;
        }
        self.last_success_at.set(Some(js::now()));
        let (finished, total) = self.progress.get();
        self.progress.set((finished + 1, total));
        let view = entry.view();
        // Done in memory at once, so this worker never sends it again; the
        // store deletes it in its next transaction, and then the page hears
        // of it (so an entry a page is told about is gone from the list).
        let id = entry.id;
        self.queue.borrow_mut().insert(entry);
        let sent = event(
            EventKind::Sent,
            json!({"entry": view, "status": status, "contentType": content_type, "body": body}),
        );
        self.remove_sent(id, sent);
    }

    async fn retry_later(
        &self,
        mut entry: Entry,
        after_ms: Option<u64>,
        offline: bool,
        message: String,
    ) {
        let now = js::now();
        let policy = &self.config.retry;
        entry.last_error = Some(message.clone());
        if offline {
            entry.offline_attempts += 1;
            if entry.state != State::Pending {
                set_state(&mut entry, State::Pending);
            }
            entry.next_attempt_at =
                Some(now + policy.backoff_ms(entry.offline_attempts, js::random()));
            self.offline_seen.set(true);
            let _ = self.save(entry).await;
            return;
        }
        let counted = entry.attempts.saturating_sub(entry.offline_attempts);
        if policy.attempts_exhausted(counted) {
            self.fail(entry, Failure::MaxAttempts, None).await;
            return;
        }
        if set_state(&mut entry, State::WaitingRetry) {
            let delay = after_ms.unwrap_or_else(|| policy.backoff_ms(counted, js::random()));
            entry.next_attempt_at = Some(now + delay);
            let _ = self.save(entry).await;
        }
    }

    async fn fail(&self, mut entry: Entry, failure: Failure, response: Option<Value>) {
        if !set_state(&mut entry, State::Failed) {
            return;
        }
        let (finished, total) = self.progress.get();
        self.progress.set((finished + 1, total));
        let (reason, status, message) = match &failure {
            Failure::HttpStatus { status } => {
                ("http_status", Some(*status), format!("HTTP {status}"))
            }
            Failure::MaxAttempts => ("max_attempts", None, "retry.maxAttempts used up".to_owned()),
            Failure::Expired => ("expired", None, "older than retry.retentionMs".to_owned()),
            Failure::Invalid { message } => ("invalid", None, message.clone()),
        };
        entry.last_error = Some(message.clone());
        entry.failure = Some(failure);
        let view = entry.view();
        let _ = self.save(entry).await;
        self.emit(
            EventKind::Failed,
            json!({"entry": view, "reason": reason, "status": status, "message": message, "body": response}),
        )
        .await;
    }

    /// Settles a 409/412 by the route's strategy, or leaves it to a page.
    async fn conflict(
        self: &Rc<Self>,
        mut entry: Entry,
        response: Response,
        body: &Uint8Array,
        verify_first: bool,
    ) {
        let status = response.status();
        let mut remote_etag = header(&response, "etag");
        let mut last_modified =
            header(&response, "last-modified").and_then(|v| parse_http_date(&v));
        let mut remote =
            Some(read_body(&response, REMOTE_BODY_LIMIT).await).filter(Value::is_object);
        if remote.is_none() || remote_etag.is_none() {
            // The conflict answer is not the entity: read it.
            if let Some((body, etag, modified)) = self.fetch_remote(&entry).await {
                remote = body;
                remote_etag = etag;
                last_modified = modified;
            }
        }
        let local = String::from_utf8(body.to_vec())
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok());
        let Some(route) = self.config.routes.get(entry.route).cloned() else {
            return;
        };

        if verify_first
            && already_applied(
                &entry.method,
                local.as_ref(),
                remote.as_ref(),
                &route.server_fields,
            )
        {
            // The earlier attempt was applied before its answer was lost.
            self.finish_done(entry, status, None, remote.clone().unwrap_or(Value::Null))
                .await;
            return;
        }

        let base = entry.base.as_ref().and_then(|b| b.body.clone());
        let input = ConflictInput {
            base: base.as_ref(),
            local: local.as_ref(),
            remote: remote.as_ref(),
            remote_etag: remote_etag.as_deref(),
            local_created_at_ms: entry.created_at,
            remote_updated_ms: remote_timestamp(
                remote.as_ref(),
                &route.timestamp_field,
                last_modified,
            ),
            method: &entry.method,
            server_fields: &route.server_fields,
        };
        let mut resolution = decide(route.strategy, &input);
        if resolution == Resolution::AskCustom {
            resolution = self
                .ask_custom(&route, &base, &local, &remote, remote_etag.clone())
                .await;
        }
        if matches!(resolution, Resolution::Resend { .. })
            && entry.conflict_resends >= MAX_CONFLICT_RESENDS
        {
            resolution = Resolution::Manual {
                pointers: Vec::new(),
                reason: format!("still in conflict after {MAX_CONFLICT_RESENDS} re-sends"),
            };
        }

        match resolution {
            Resolution::Resend {
                body: new_body,
                if_match,
            } => {
                let kept = if new_body.is_some() {
                    "merged"
                } else {
                    "local"
                };
                if let Some(new_body) = new_body {
                    let bytes = new_body.to_string().into_bytes();
                    let stored = match self.store().await {
                        Ok(store) => {
                            store
                                .replace_body(entry.id, &Uint8Array::from(bytes.as_slice()))
                                .await
                        }
                        Err(error) => Err(error),
                    };
                    if let Err(error) = stored {
                        self.retry_later(
                            entry,
                            None,
                            false,
                            format!("storing the merged body: {error}"),
                        )
                        .await;
                        return;
                    }
                    entry.body_bytes = bytes.len() as u64;
                }
                // A new body or precondition is a new request: a server must
                // not answer it with the first attempt's stored response.
                entry.rekey();
                entry.conflict_resends += 1;
                if let Some(etag) = if_match {
                    entry.set_header("If-Match", &etag);
                }
                entry.base = Some(BaseVersion {
                    etag: remote_etag,
                    last_modified_ms: last_modified,
                    body: remote,
                });
                entry.uncertain = false;
                entry.next_attempt_at = None;
                if set_state(&mut entry, State::Pending) {
                    let view = entry.view();
                    let _ = self.save(entry).await;
                    self.emit(EventKind::Resolved, json!({"entry": view, "kept": kept}))
                        .await;
                }
            }
            Resolution::Superseded => {
                if set_state(&mut entry, State::Superseded) {
                    let (finished, total) = self.progress.get();
                    self.progress.set((finished + 1, total));
                    entry.last_error = Some(format!(
                        "HTTP {status}: the remote write stands ({})",
                        route.strategy.as_str()
                    ));
                    let view = entry.view();
                    let _ = self.save(entry).await;
                    self.emit(
                        EventKind::Resolved,
                        json!({"entry": view, "kept": "remote", "remote": remote}),
                    )
                    .await;
                }
            }
            Resolution::Manual { pointers, reason } => {
                if !set_state(&mut entry, State::Conflict) {
                    return;
                }
                entry.last_error = Some(format!("HTTP {status}: conflict: {reason}"));
                entry.conflict = Some(ConflictInfo {
                    status,
                    remote: remote.clone(),
                    remote_etag,
                    pointers: pointers.clone(),
                    reason: reason.clone(),
                });
                let view = entry.view();
                let _ = self.save(entry).await;
                self.emit(
                    EventKind::Conflict,
                    json!({"entry": view, "base": base, "local": local, "remote": remote, "pointers": pointers, "reason": reason}),
                )
                .await;
            }
            Resolution::AskCustom => {}
        }
    }

    /// Runs the route's custom function: `(base, local, remote) => decision`.
    async fn ask_custom(
        &self,
        route: &crate::core::config::Route,
        base: &Option<Value>,
        local: &Option<Value>,
        remote: &Option<Value>,
        remote_etag: Option<String>,
    ) -> Resolution {
        let manual = |reason: String| Resolution::Manual {
            pointers: Vec::new(),
            reason,
        };
        let Some(function) = route.resolve.and_then(|i| self.functions.get(i as usize)) else {
            return manual("no custom function".into());
        };
        let as_js = |v: &Option<Value>| v.as_ref().map_or(JsValue::NULL, js::to_js);
        let mut answer = match function.call3(
            &JsValue::UNDEFINED,
            &as_js(base),
            &as_js(local),
            &as_js(remote),
        ) {
            Ok(answer) => answer,
            Err(error) => {
                return manual(format!(
                    "the custom function threw: {}",
                    js::describe(&error)
                ))
            }
        };
        if let Some(promise) = answer.dyn_ref::<Promise>() {
            answer = match JsFuture::from(promise.clone()).await {
                Ok(answer) => answer,
                Err(error) => {
                    return manual(format!(
                        "the custom function rejected: {}",
                        js::describe(&error)
                    ))
                }
            };
        }
        let Some(answer) = js::from_js(&answer) else {
            return manual("the custom function gave no JSON answer".into());
        };
        match custom_answer(&answer) {
            Ok(CustomAnswer::Send(body)) => Resolution::Resend {
                body: Some(body),
                if_match: remote_etag,
            },
            Ok(CustomAnswer::Drop) => Resolution::Superseded,
            Ok(CustomAnswer::Manual) => manual("the custom function left it to the page".into()),
            Err(message) => manual(format!(
                "the custom function's answer is invalid: {message}"
            )),
        }
    }

    /// The remote entity: (JSON body or None when gone, ETag, Last-Modified);
    /// None when it could not be read.
    async fn fetch_remote(
        &self,
        entry: &Entry,
    ) -> Option<(Option<Value>, Option<String>, Option<u64>)> {
        let headers: Vec<(String, String)> = self.auth.borrow().clone();
        let outgoing = Outgoing {
            method: "GET",
            url: &entry.url,
            headers: &headers,
            body: None,
            credentials: &entry.credentials,
        };
        let response = replay::send(&outgoing, self.config.limits.attempt_timeout_ms)
            .await
            .ok()?;
        match response.status() {
            404 | 410 => Some((None, None, None)),
            200..=299 => {
                let etag = header(&response, "etag");
                let modified = header(&response, "last-modified").and_then(|v| parse_http_date(&v));
                let body =
                    Some(read_body(&response, REMOTE_BODY_LIMIT).await).filter(Value::is_object);
                Some((body, etag, modified))
            }
            _ => None,
        }
    }
}

/// Calls a `replayHeaders` function with the entry and reads the headers it
/// gives (a plain object, or a promise of one).
async fn call_for_headers(
    function: &Function,
    entry: &Value,
) -> Result<Vec<(String, String)>, String> {
    let mut value = function
        .call1(&JsValue::UNDEFINED, &js::to_js(entry))
        .map_err(|e| format!("replayHeaders threw: {}", js::describe(&e)))?;
    if let Some(promise) = value.dyn_ref::<Promise>() {
        value = JsFuture::from(promise.clone())
            .await
            .map_err(|e| format!("replayHeaders rejected: {}", js::describe(&e)))?;
    }
    match js::from_js(&value) {
        Some(Value::Object(map)) => map
            .into_iter()
            .map(|(name, value)| match value {
                Value::String(text) => Ok((name, text)),
                other => Err(format!(
                    "replayHeaders gave {other} for '{name}'; expected a string"
                )),
            })
            .collect(),
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(other) => Err(format!(
            "replayHeaders gave {other}; expected an object of headers"
        )),
    }
}

/// A response body for pages: JSON when it parses, else text; null when
/// larger than `limit` or unreadable.
async fn read_body(response: &web_sys::Response, limit: u64) -> Value {
    let Ok(promise) = response.text() else {
        return Value::Null;
    };
    let Ok(text) = JsFuture::from(promise).await else {
        return Value::Null;
    };
    let text = text.as_string().unwrap_or_default();
    if text.len() as u64 > limit {
        return Value::Null;
    }
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}
