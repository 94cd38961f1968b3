//! Turns entries back into `Request`s and sends them with `fetch`, with a
//! timeout per attempt.

use crate::worker::js::{describe, scope};
use js_sys::Uint8Array;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Headers, RequestCredentials, RequestInit, RequestMode, Response};

/// Why an attempt got no response.
#[derive(Debug, Clone, PartialEq)]
pub enum SendError {
    /// The network failed (offline, refused, dropped).
    Network(String),
    /// No response within the attempt timeout.
    Timeout,
}

/// The parts of a request to build.
pub struct Outgoing<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Absolute URL.
    pub url: &'a str,
    /// Headers, in order.
    pub headers: &'a [(String, String)],
    /// The body (none when empty).
    pub body: Option<&'a Uint8Array>,
    /// `same-origin`, `include` or `omit`.
    pub credentials: &'a str,
}

fn credentials_mode(name: &str) -> RequestCredentials {
    match name {
        "include" => RequestCredentials::Include,
        "omit" => RequestCredentials::Omit,
        _ => RequestCredentials::SameOrigin,
    }
}

/// Builds the request and sends it, giving up after `timeout_ms`.
pub async fn send(outgoing: &Outgoing<'_>, timeout_ms: u64) -> Result<Response, SendError> {
    let controller = AbortController::new().map_err(|e| SendError::Network(describe(&e)))?;
    let init = RequestInit::new();
    init.set_method(outgoing.method);
    let headers = Headers::new().map_err(|e| SendError::Network(describe(&e)))?;
    for (name, value) in outgoing.headers {
        headers
            .append(name, value)
            .map_err(|e| SendError::Network(format!("header {name}: {}", describe(&e))))?;
    }
    init.set_headers(&headers);
    if let Some(body) = outgoing.body.filter(|b| b.length() > 0) {
        init.set_body(body);
    }
    init.set_credentials(credentials_mode(outgoing.credentials));
    init.set_mode(RequestMode::SameOrigin);
    init.set_signal(Some(&controller.signal()));

    // The timer is cleared once the headers are in: reading the body is the
    // reader's affair (the page's, on the live path).
    let abort = Closure::once_into_js({
        let controller = controller.clone();
        move || controller.abort()
    });
    let timer = scope()
        .set_timeout_with_callback_and_timeout_and_arguments_0(
            abort.unchecked_ref(),
            timeout_ms.min(i32::MAX as u64) as i32,
        )
        .ok();
    let result = JsFuture::from(scope().fetch_with_str_and_init(outgoing.url, &init)).await;
    if let Some(timer) = timer {
        scope().clear_timeout_with_handle(timer);
    }
    match result {
        Ok(response) => response
            .dyn_into::<Response>()
            .map_err(|_| SendError::Network("fetch did not give a Response".into())),
        Err(_) if controller.signal().aborted() => Err(SendError::Timeout),
        Err(error) => Err(SendError::Network(describe(&error))),
    }
}

/// The `Retry-After`, `ETag`, `Last-Modified` and `Content-Type` of a response.
pub fn header(response: &Response, name: &str) -> Option<String> {
    response.headers().get(name).ok().flatten()
}
