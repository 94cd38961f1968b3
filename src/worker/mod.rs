//! The service-worker runtime: the `Runtime` class the loader
//! (`sw/loader.js`) creates from `Outbox.install(config)` and forwards the
//! worker's events to.

pub mod commands;
pub mod drain;
pub mod intercept;
pub mod js;
pub mod runtime;
pub mod writes;

use crate::core::config::Config;
use crate::core::lifecycle::State;
use crate::core::protocol::EventKind;
use drain::Trigger;
use js_sys::{ArrayBuffer, Promise};
use runtime::Inner;
use serde_json::json;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use web_sys::{ExtendableMessageEvent, Request};

/// One outbox in one worker instance.
#[wasm_bindgen]
pub struct Runtime {
    inner: Rc<Inner>,
}

#[wasm_bindgen]
impl Runtime {
    /// Validates the config and opens the queue; throws an `Error` naming the
    /// field when the config is bad.
    #[wasm_bindgen(constructor)]
    pub fn new(config: JsValue) -> Result<Runtime, JsError> {
        console_error_panic_hook::set_once();
        let mut functions = Vec::new();
        let value = js::config_to_json(&config, &mut functions)
            .map_err(|message| JsError::new(&format!("outbox config: {message}")))?;
        let config = Config::parse(&value).map_err(|error| JsError::new(&error.to_string()))?;
        Ok(Runtime {
            inner: Inner::new(config, functions),
        })
    }

    /// Makes this instance's first drain take the drain lock from its holder:
    /// the loader calls it on the instance that replaces a trapped one.
    #[wasm_bindgen(js_name = stealDrainLock)]
    pub fn steal_drain_lock(&self) {
        self.inner.steal_lock.set(true);
    }

    /// True if the outbox handles this request (decided synchronously).
    pub fn handles(&self, request: &Request) -> bool {
        intercept::route_of(&self.inner, request).is_some()
    }

    /// The response to a request the outbox handles. Always resolves.
    /// `body` is the request's body, which the loader has read; `key` the
    /// Idempotency-Key the loader chose when the request has none; and
    /// `recovered` is set when a trapped instance had taken the request.
    pub fn handle(
        &self,
        request: Request,
        body: Option<ArrayBuffer>,
        key: Option<String>,
        recovered: Option<bool>,
    ) -> Promise {
        let inner = self.inner.clone();
        let recovered = recovered.unwrap_or(false);
        future_to_promise(async move {
            match intercept::route_of(&inner, &request) {
                Some(intercept::Handling::Mutation(route)) => {
                    let read = intercept::Read { body, key };
                    intercept::handle(inner, request, read, route, recovered)
                        .await
                        .map(JsValue::from)
                }
                Some(intercept::Handling::BaseRead(_)) => intercept::read_base(inner, request)
                    .await
                    .map(JsValue::from),
                None => Err(JsValue::from_str("not an outbox request")),
            }
        })
    }

    /// Called once when the script loads: re-register the sync tag and drain
    /// if entries are waiting. Resolves when that work ends.
    pub fn start(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            if inner.store().await.is_err() {
                return Ok(JsValue::UNDEFINED);
            }
            let (open, paused) = {
                let queue = inner.queue.borrow();
                let open = queue.sendable_for(inner.user.borrow().as_deref()) > 0;
                let user = inner.user.borrow();
                let paused: Vec<_> = queue
                    .values()
                    .filter(|e| e.state == State::PausedAuth && !e.held_for(user.as_deref()))
                    .map(|e| e.view())
                    .collect();
                (open, paused)
            };
            for entry in paused {
                inner
                    .emit(
                        EventKind::AuthRequired,
                        json!({"entry": entry, "status": null}),
                    )
                    .await;
            }
            if open && inner.config.triggers.sync {
                js::register_sync(&inner.config.sync_tag).await;
            }
            if open && inner.config.triggers.start {
                let _ = JsFuture::from(inner.clone().start_drain(Trigger::Start)).await;
            } else if open && inner.config.triggers.timer {
                // Without the start trigger, waiting entries still get their
                // backoff timer while this worker lives.
                let _ = JsFuture::from(inner.clone().start_drain(Trigger::Timer)).await;
            }
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Handles a `sync` event; undefined when the tag is not the outbox's or
    /// the sync trigger is off. The promise rejects when the drain stopped
    /// because the network failed, so the browser tries again later; entries
    /// are kept either way, also on `lastChance`.
    pub fn sync(&self, tag: &str) -> Option<Promise> {
        if tag != self.inner.config.sync_tag || !self.inner.config.triggers.sync {
            return None;
        }
        let inner = self.inner.clone();
        Some(future_to_promise(async move {
            let status = JsFuture::from(inner.clone().start_drain(Trigger::Sync)).await?;
            if inner.last_drain_offline.get() {
                return Err(JsError::new("outbox: the network failed; entries are kept").into());
            }
            Ok(status)
        }))
    }

    /// Handles a `message` event; undefined when it is not an outbox message.
    pub fn message(&self, event: &ExtendableMessageEvent) -> Option<Promise> {
        commands::on_message(self.inner.clone(), event)
    }

    /// Drains now, joining a drain already running; resolves with the status.
    pub fn flush(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            inner.store().await.map_err(|e| JsError::new(&e.message))?;
            let status = JsFuture::from(inner.clone().start_drain(Trigger::Flush)).await?;
            Ok(status)
        })
    }

    /// Records a successful answer to a GET of an entity as its base
    /// version, for a site whose own fetch listener serves those GETs.
    /// Resolves to true if it was recorded (a conditional route, a 2xx
    /// answer with an ETag).
    #[wasm_bindgen(js_name = recordBase)]
    pub fn record_base(&self, request: &Request, response: &web_sys::Response) -> Promise {
        let inner = self.inner.clone();
        let path = web_sys::Url::new(&request.url())
            .map(|url| url.pathname())
            .ok()
            .filter(|path| inner.config.conditional_route_for_get(path).is_some());
        let copy = response.clone().ok().filter(|_| response.ok());
        future_to_promise(async move {
            let (Some(path), Some(copy)) = (path, copy) else {
                return Ok(JsValue::FALSE);
            };
            match intercept::base_of(&copy).await {
                Some(base) => {
                    inner.record_base(&path, base, None).await;
                    Ok(JsValue::TRUE)
                }
                None => Ok(JsValue::FALSE),
            }
        })
    }

    /// The queue's status.
    pub fn status(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let _ = inner.store().await;
            Ok(js::to_js(&inner.status()))
        })
    }
}
