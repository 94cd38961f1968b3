//! Small helpers over the service worker's global scope, converting between
//! JSON values and JS values in one place.

use crate::core::protocol::{envelope, event, EventKind};
use crate::worker::runtime::Wakeup;
use js_sys::{Function, Object, Promise, Reflect, JSON};
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Client, ClientQueryOptions, ClientType, ServiceWorkerGlobalScope};

/// The service worker's global scope.
pub fn scope() -> ServiceWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = warn)]
    fn console_warn(message: &str);
}

/// Writes a warning to the worker's console.
pub fn warn(message: &str) {
    console_warn(message);
}

/// Milliseconds since the epoch.
pub fn now() -> u64 {
    js_sys::Date::now() as u64
}

/// A random number in [0, 1).
pub fn random() -> f64 {
    js_sys::Math::random()
}

/// A UUID v4 from the platform's CSPRNG.
pub fn uuid() -> String {
    scope()
        .crypto()
        .map(|crypto| crypto.random_uuid())
        .unwrap_or_else(|_| {
            // Without crypto (never in a secure context) fall back to Math.random.
            let hex = |n: usize| {
                (0..n)
                    .map(|_| format!("{:x}", (random() * 16.0) as u8))
                    .collect::<String>()
            };
            format!("{}-{}-4{}-a{}-{}", hex(8), hex(4), hex(3), hex(3), hex(12))
        })
}

/// A JSON value as a JS value.
pub fn to_js(value: &Value) -> JsValue {
    JSON::parse(&value.to_string()).unwrap_or(JsValue::NULL)
}

/// A JS value as JSON, or None if it cannot be represented.
pub fn from_js(value: &JsValue) -> Option<Value> {
    if value.is_undefined() {
        return None;
    }
    let text = JSON::stringify(value).ok()?.as_string()?;
    serde_json::from_str(&text).ok()
}

/// A thrown JS value in words.
pub fn describe(error: &JsValue) -> String {
    if let Some(text) = error.as_string() {
        return text;
    }
    let message = Reflect::get(error, &"message".into())
        .ok()
        .and_then(|m| m.as_string());
    let name = Reflect::get(error, &"name".into())
        .ok()
        .and_then(|n| n.as_string());
    match (name, message) {
        (Some(name), Some(message)) => format!("{name}: {message}"),
        (None, Some(message)) => message,
        _ => format!("{error:?}"),
    }
}

/// Sleeps for `ms` milliseconds.
pub async fn sleep(ms: u64) {
    let promise = Promise::new(&mut |resolve, _| {
        let _ = scope().set_timeout_with_callback_and_timeout_and_arguments_0(
            &resolve,
            ms.min(i32::MAX as u64) as i32,
        );
    });
    let _ = JsFuture::from(promise).await;
}

/// A message waiting to be posted.
enum Outgoing {
    /// An event, posted as it is.
    Event(Value),
    /// The status, computed when it is posted (None: the outbox is gone).
    Status(Box<dyn Fn() -> Option<Value>>),
}

/// How long events gather before they are posted together, unless a reply
/// is waiting for them.
const GATHER_MS: i32 = 16;

thread_local! {
    /// Messages waiting to be posted to the window clients, in order.
    static OUTGOING: RefCell<VecDeque<Outgoing>> = const { RefCell::new(VecDeque::new()) };
    /// A task is posting them now.
    static POSTING: Cell<bool> = const { Cell::new(false) };
    /// Messages handed over and messages posted (or given up) so far.
    static HANDED: Cell<u64> = const { Cell::new(0) };
    static POSTED: Cell<u64> = const { Cell::new(0) };
    /// Ends the current gathering early.
    static HURRY: RefCell<Option<Function>> = const { RefCell::new(None) };
    /// The next batch goes at once.
    static URGENT: Cell<bool> = const { Cell::new(false) };
    /// Waiters, each for the messages handed over before it.
    static SETTLED: RefCell<Vec<(u64, Rc<Wakeup>)>> = const { RefCell::new(Vec::new()) };
    /// Window clients whose shim said it reads `events` envelopes, by id,
    /// with the number of the last envelope posted to each.
    static BATCHING: RefCell<HashMap<String, Option<u64>>> = RefCell::new(HashMap::new());
    /// Batches posted by this instance; each envelope carries its number.
    static BATCHES: Cell<u64> = const { Cell::new(0) };
    /// Names this instance in its envelopes, as a restarted worker counts
    /// from 1 again.
    static INSTANCE: String = uuid();
}

/// Remembers that the window client `id` reads `events` envelopes: from
/// now on the events of a batch reach it as one message.
pub fn accept_batches(id: String) {
    BATCHING.with(|batching| {
        batching.borrow_mut().entry(id).or_insert(None);
    });
}

/// The last envelope posted to the window client `id`, as a reply names it
/// (`{"worker", "seq"}`), so that its shim settles the reply once it has
/// dispatched that envelope's events; None if it got none.
pub fn last_envelope(id: &str) -> Option<Value> {
    let seq = BATCHING.with(|batching| batching.borrow().get(id).copied().flatten())?;
    Some(INSTANCE.with(|instance| serde_json::json!({"worker": instance, "seq": seq})))
}

/// Posts an event to every window client of this worker, after the ones
/// before it. The caller does not wait.
pub fn broadcast(message: Value) {
    enqueue(Outgoing::Event(message));
}

/// Posts the status to every window client: computed by `status` when its
/// turn comes, after the events before it.
pub fn broadcast_status(status: Box<dyn Fn() -> Option<Value>>) {
    enqueue(Outgoing::Status(status));
}

/// Resolves once every message handed over before the call has been
/// posted, hurrying them: a reply to a page goes after the events that
/// came before it.
pub async fn posted() {
    let target = HANDED.with(Cell::get);
    if POSTED.with(Cell::get) >= target {
        return;
    }
    URGENT.with(|urgent| urgent.set(true));
    if let Some(hurry) = HURRY.with(|hurry| hurry.borrow_mut().take()) {
        let _ = hurry.call0(&JsValue::UNDEFINED);
    }
    let wakeup = Rc::new(Wakeup::default());
    SETTLED.with(|settled| settled.borrow_mut().push((target, wakeup.clone())));
    wakeup.wait().await;
}

/// One task posts what has gathered for GATHER_MS (a burst of events
/// becomes one batch), with one look-up of the clients for each batch. A
/// batch's statuses become one, computed when the batch is posted and placed
/// after its events (each status is a snapshot). A page whose shim said it
/// reads envelopes gets the batch as one `events` message; any other page
/// gets every event as its own message, as protocol 1 first had it, so a
/// page with an older shim misses none.
fn enqueue(message: Outgoing) {
    OUTGOING.with(|outgoing| outgoing.borrow_mut().push_back(message));
    HANDED.with(|handed| handed.set(handed.get() + 1));
    if POSTING.with(|posting| posting.replace(true)) {
        return;
    }
    wasm_bindgen_futures::spawn_local(async {
        loop {
            if !URGENT.with(|urgent| urgent.replace(false)) {
                let _ = JsFuture::from(gathering()).await;
                HURRY.with(|hurry| hurry.borrow_mut().take());
            }
            let batch: Vec<Outgoing> =
                OUTGOING.with(|outgoing| outgoing.borrow_mut().drain(..).collect());
            if batch.is_empty() {
                break;
            }
            let upto = HANDED.with(Cell::get);
            post_batch(batch).await;
            POSTED.with(|posted| posted.set(upto));
            let ready: Vec<Rc<Wakeup>> = SETTLED.with(|settled| {
                let mut settled = settled.borrow_mut();
                let (ready, waiting) = settled.drain(..).partition(|(target, _)| *target <= upto);
                *settled = waiting;
                ready.into_iter().map(|(_, wakeup)| wakeup).collect()
            });
            for wakeup in ready {
                wakeup.notify();
            }
        }
        POSTING.with(|posting| posting.set(false));
    });
}

/// A promise that resolves after GATHER_MS, or sooner when hurried.
fn gathering() -> Promise {
    Promise::new(&mut |resolve, _| {
        let _ = scope().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, GATHER_MS);
        HURRY.with(|hurry| *hurry.borrow_mut() = Some(resolve));
    })
}

/// Posts one batch to every window client.
async fn post_batch(batch: Vec<Outgoing>) {
    let options = ClientQueryOptions::new();
    options.set_type(ClientType::Window);
    options.set_include_uncontrolled(true);
    let Ok(clients) = JsFuture::from(scope().clients().match_all_with_options(&options)).await
    else {
        return;
    };
    let clients: Vec<Client> = js_sys::Array::from(&clients)
        .iter()
        .filter_map(|client| client.dyn_into::<Client>().ok())
        .collect();
    let mut status = None;
    let mut messages = Vec::with_capacity(batch.len() + 1);
    for message in batch {
        match message {
            Outgoing::Event(value) => messages.push(value),
            Outgoing::Status(compute) => status = Some(compute),
        }
    }
    if let Some(status) = status.and_then(|compute| compute()) {
        messages.push(event(EventKind::Status, status));
    }
    post(&clients, &messages);
}

/// Posts messages to clients: one envelope to those that read envelopes,
/// each message alone to the others.
fn post(clients: &[Client], messages: &[Value]) {
    let seq = BATCHES.with(|batches| batches.get() + 1);
    BATCHES.with(|batches| batches.set(seq));
    let clients: Vec<(&Client, String)> = clients.iter().map(|c| (c, c.id())).collect();
    let (batching, single): (Vec<_>, Vec<_>) = BATCHING.with(|batching| {
        let mut batching = batching.borrow_mut();
        // Forgets the clients that have gone.
        batching.retain(|id, _| clients.iter().any(|(_, known)| known == id));
        clients
            .into_iter()
            .partition(|(_, id)| batching.contains_key(id))
    });
    if !batching.is_empty() {
        let message = INSTANCE.with(|instance| to_js(&envelope(messages, instance, seq)));
        for (client, id) in batching {
            if client.post_message(&message).is_ok() {
                BATCHING.with(|b| b.borrow_mut().insert(id, Some(seq)));
            }
        }
    }
    if !single.is_empty() {
        for message in messages {
            let message = to_js(message);
            for (client, _) in &single {
                let _ = client.post_message(&message);
            }
        }
    }
}

/// The browser's `navigator.onLine`: false means surely offline; true only
/// that a network interface is up.
pub fn online() -> bool {
    Reflect::get(&scope().navigator(), &"onLine".into())
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(true)
}

/// Registers the Background Sync tag, where the browser has Background Sync.
pub async fn register_sync(tag: &str) {
    let registration = scope().registration();
    let Ok(sync) = Reflect::get(&registration, &"sync".into()) else {
        return;
    };
    // NOTE: Firefox and Safari have no Background Sync (`registration.sync`
    // is undefined); the other triggers drain there.
    if sync.is_undefined() || sync.is_null() {
        return;
    }
    let Ok(register) = Reflect::get(&sync, &"register".into()) else {
        return;
    };
    if let Ok(register) = register.dyn_into::<Function>() {
        if let Ok(promise) = register.call1(&sync, &tag.into()) {
            if let Ok(promise) = promise.dyn_into::<Promise>() {
                let _ = JsFuture::from(promise).await;
            }
        }
    }
}

/// Runs `task` while holding the named Web Lock and gives its value, where
/// the browser has Web Locks; gives None (without running it) where it has not.
/// With `steal`, takes the lock from its holder (whose request then fails).
pub async fn with_lock(
    name: &str,
    steal: bool,
    task: Box<dyn FnOnce() -> Promise>,
) -> Result<Option<JsValue>, JsValue> {
    let navigator = Reflect::get(&scope(), &"navigator".into())?;
    let locks = Reflect::get(&navigator, &"locks".into())?;
    if locks.is_undefined() || locks.is_null() {
        return Ok(None);
    }
    let request: Function = Reflect::get(&locks, &"request".into())?.dyn_into()?;
    let callback = Closure::once_into_js(move |_lock: JsValue| -> JsValue { task().into() });
    let promise: Promise = if steal {
        let options = Object::new();
        Reflect::set(&options, &"steal".into(), &JsValue::TRUE)?;
        request.call3(&locks, &name.into(), &options, &callback)?
    } else {
        request.call2(&locks, &name.into(), &callback)?
    }
    .dyn_into()?;
    JsFuture::from(promise).await.map(Some)
}

/// Converts a config object to JSON, replacing each function with
/// `{"$fn": n}` and collecting the functions.
///
/// An object of the site's own with a `$fn` key is refused, so that every
/// marker the parser sees was made here and names a function kept: config
/// data (e.g. `outbox.config.js`, or a config the site fetched) must not bind
/// a route to another route's function, or to none. Such data already fails
/// to parse, as JS numbers arrive as floats and the parser reads a function
/// index only from an integer; refusing the key here says so plainly and
/// does not hang the guarantee on how numbers are converted.
pub fn config_to_json(value: &JsValue, functions: &mut Vec<Function>) -> Result<Value, String> {
    convert(value, functions, 0, "")
}

/// The key that stands for a function in the config's JSON.
const FUNCTION_MARKER: &str = "$fn";

fn convert(
    value: &JsValue,
    functions: &mut Vec<Function>,
    depth: usize,
    path: &str,
) -> Result<Value, String> {
    let at = if path.is_empty() { "the config" } else { path };
    if depth > 16 {
        return Err(format!("{at}: nested too deeply"));
    }
    if value.is_undefined() || value.is_null() {
        return Ok(Value::Null);
    }
    if let Some(flag) = value.as_bool() {
        return Ok(Value::Bool(flag));
    }
    if let Some(number) = value.as_f64() {
        return serde_json::Number::from_f64(number)
            .map(Value::Number)
            .ok_or_else(|| {
                // Named by hand: f64's Display would bring float formatting into the wasm.
                let name = match number {
                    n if n.is_nan() => "NaN",
                    n if n > 0.0 => "Infinity",
                    _ => "-Infinity",
                };
                format!("{at}: {name} is not a finite number")
            });
    }
    if let Some(text) = value.as_string() {
        return Ok(Value::String(text));
    }
    if let Some(function) = value.dyn_ref::<Function>() {
        functions.push(function.clone());
        return Ok(serde_json::json!({ FUNCTION_MARKER: functions.len() - 1 }));
    }
    if js_sys::Array::is_array(value) {
        let items = js_sys::Array::from(value);
        return items
            .iter()
            .enumerate()
            .map(|(index, item)| convert(&item, functions, depth + 1, &format!("{path}[{index}]")))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if value.is_object() {
        let object: &Object = value.unchecked_ref();
        if Object::has_own(object, &FUNCTION_MARKER.into()) {
            return Err(format!(
                "{at}: an object with the key \"{FUNCTION_MARKER}\" cannot be part of the config (the outbox uses that key to stand for a function); give the function itself"
            ));
        }
        let mut map = serde_json::Map::new();
        for key in Object::keys(object).iter() {
            let name = key.as_string().unwrap_or_default();
            let field = Reflect::get(object, &key).map_err(|e| describe(&e))?;
            let child = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            map.insert(name, convert(&field, functions, depth + 1, &child)?);
        }
        return Ok(Value::Object(map));
    }
    Err(format!(
        "{at}: a value of this type cannot be part of the config"
    ))
}
