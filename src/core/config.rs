//! The `Outbox.install` config: parsed and validated, with errors that name
//! the field and the problem. Unknown fields are errors.
//!
//! Functions in the config (a route's `resolve` and `replayHeaders`) cannot
//! be JSON; the worker replaces each with `{"$fn": n}` (its index in a list
//! it keeps) before the config reaches this parser.

use crate::core::conflict::Strategy;
use crate::core::entry::{Priority, NEVER_STORED};
use crate::core::retry::RetryPolicy;
use serde_json::{Map, Value};
use std::fmt;

/// The parsed config.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Routes, tried in order; the first that matches wins.
    pub routes: Vec<Route>,
    /// Backoff and retention.
    pub retry: RetryPolicy,
    /// Sizes, counts and times.
    pub limits: Limits,
    /// Which drain triggers are on.
    pub triggers: Triggers,
    /// The Background Sync tag.
    pub sync_tag: String,
    /// Which page commands that change the queue are taken.
    pub commands: Commands,
    /// Header names, lower case, stored with entries besides
    /// [`DEFAULT_STORED_HEADERS`].
    pub store_headers: Vec<String>,
}

/// The request headers stored with every entry when present.
pub const DEFAULT_STORED_HEADERS: [&str; 4] =
    ["content-type", "accept", "idempotency-key", "if-match"];

impl Config {
    /// True if a request header with this name is stored with its entry:
    /// the defaults and the names in `storeHeaders`; never credentials.
    pub fn stores_header(&self, name: &str) -> bool {
        let lower = name.to_ascii_lowercase();
        !NEVER_STORED.contains(&lower.as_str())
            && (DEFAULT_STORED_HEADERS.contains(&lower.as_str())
                || self.store_headers.contains(&lower))
    }
}

/// The page commands that change the queue, each of which a site can refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commands {
    /// `clear`: remove entries.
    pub clear: bool,
    /// `cancel`: cancel an entry.
    pub cancel: bool,
    /// `resolve`: settle a conflict.
    pub resolve: bool,
}

impl Default for Commands {
    fn default() -> Self {
        Commands {
            clear: true,
            cancel: true,
            resolve: true,
        }
    }
}

/// How the entity key of a request is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityRule {
    /// The URL path (default): mutations of one URL keep their order.
    Path,
    /// The whole route is one entity: all its mutations keep their order.
    Route,
    /// No ordering between this route's mutations.
    None,
}

/// One configured route.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// A same-origin path prefix, starting with `/`.
    pub match_prefix: String,
    /// Methods it applies to, upper case.
    pub methods: Vec<String>,
    /// The entity kind, e.g. `concept`.
    pub kind: Option<String>,
    /// How the entity key is found.
    pub entity: EntityRule,
    /// What to do on a conflict.
    pub strategy: Strategy,
    /// Priority of its entries.
    pub priority: Priority,
    /// Send `If-Match` with the base version's ETag and record base versions.
    pub conditional: bool,
    /// The outbox answers GETs of the route's entities itself to record base
    /// versions; false leaves GETs to the site, which hands responses to
    /// `Outbox.recordBase`.
    pub record_gets: bool,
    /// Top-level fields the server manages (ids, versions, times): a merge
    /// takes them from the remote, and they are ignored when checking
    /// whether a write already landed.
    pub server_fields: Vec<String>,
    /// The remote JSON field holding the last-modified time in ms.
    pub timestamp_field: String,
    /// The index of the `resolve` function, for the custom strategy.
    pub resolve: Option<u32>,
    /// The index of the `replayHeaders` function.
    pub replay_headers: Option<u32>,
}

/// Sizes, counts and times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest body that is queued; larger ones get 413.
    pub max_body_bytes: u64,
    /// Most entries in the queue; past it new mutations get 507.
    pub max_entries: u64,
    /// Most body bytes in the queue; past it new mutations get 507.
    pub max_queue_bytes: u64,
    /// Entries sent at once during a drain.
    pub concurrency: u32,
    /// How long one attempt may take before it counts as a timeout.
    pub attempt_timeout_ms: u64,
    /// Largest response body carried in a `sent` event.
    pub sent_body_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 10 * 1024 * 1024,
            max_entries: 100_000,
            max_queue_bytes: 256 * 1024 * 1024,
            concurrency: 6,
            attempt_timeout_ms: 30_000,
            sent_body_bytes: 64 * 1024,
        }
    }
}

/// The drain triggers; all on by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Triggers {
    /// Drain on the Background Sync `sync` event (and register the tag).
    pub sync: bool,
    /// Drain on a page's `flush` command (sent on `online` and visibility).
    pub flush: bool,
    /// Drain when the worker starts.
    pub start: bool,
    /// Drain again when a backoff ends, while the worker lives.
    pub timer: bool,
}

impl Default for Triggers {
    fn default() -> Self {
        Triggers {
            sync: true,
            flush: true,
            start: true,
            timer: true,
        }
    }
}

/// A config error: the field's path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where, e.g. `routes[2].strategy`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "outbox config: {}", self.message)
        } else {
            write!(f, "outbox config: {}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// The methods a route applies to when it names none.
pub const MUTATION_METHODS: [&str; 4] = ["POST", "PUT", "PATCH", "DELETE"];

/// True for an HTTP header name (an RFC 9110 token).
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The default `serverFields` of a route.
pub const DEFAULT_SERVER_FIELDS: [&str; 3] = ["id", "version", "updatedAt"];

struct Fields<'a> {
    path: String,
    map: &'a Map<String, Value>,
}

fn error(path: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// A number as a message shows it: whole numbers without a fraction. Not
/// through `f64`'s `Display`, whose float formatting would be a large part
/// of the wasm for two messages.
fn show(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        (n as i64).to_string()
    } else {
        serde_json::Number::from_f64(n).map_or_else(|| "not a number".to_owned(), |n| n.to_string())
    }
}

/// A JSON value's type, in words for error messages.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(map) if map.contains_key("$fn") => "a function",
        Value::Object(_) => "an object",
    }
}

impl<'a> Fields<'a> {
    fn new(path: &str, value: &'a Value, known: &[&str]) -> Result<Fields<'a>, ConfigError> {
        let map = match value {
            Value::Object(map) if !map.contains_key("$fn") => map,
            other => {
                return Err(error(
                    path,
                    format!("expected an object, got {}", type_name(other)),
                ))
            }
        };
        for key in map.keys() {
            if !known.contains(&key.as_str()) {
                return Err(error(
                    &join(path, key),
                    format!("unknown field; expected one of {}", known.join(", ")),
                ));
            }
        }
        Ok(Fields {
            path: path.to_owned(),
            map,
        })
    }

    fn at(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The field, with `undefined` and `null` both meaning absent.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(error(
                &self.at(key),
                format!("expected a string, got {}", type_name(other)),
            )),
        }
    }

    fn boolean(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(error(
                &self.at(key),
                format!("expected true or false, got {}", type_name(other)),
            )),
        }
    }

    fn number(&self, key: &str, default: f64, min: f64, max: f64) -> Result<f64, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Number(n)) => {
                let n = n.as_f64().unwrap_or(f64::NAN);
                if n.is_finite() && n >= min && n <= max {
                    Ok(n)
                } else {
                    Err(error(
                        &self.at(key),
                        format!(
                            "{} is out of range; expected {} to {}",
                            show(n),
                            show(min),
                            show(max)
                        ),
                    ))
                }
            }
            Some(other) => Err(error(
                &self.at(key),
                format!("expected a number, got {}", type_name(other)),
            )),
        }
    }

    fn integer(&self, key: &str, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        let n = self.number(key, default as f64, min as f64, max as f64)?;
        if n.fract() != 0.0 {
            return Err(error(
                &self.at(key),
                format!("expected a whole number, got {}", show(n)),
            ));
        }
        Ok(n as u64)
    }

    fn function(&self, key: &str) -> Result<Option<u32>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(map)) if map.len() == 1 => {
                match map
                    .get("$fn")
                    .and_then(Value::as_u64)
                    .and_then(|index| u32::try_from(index).ok())
                {
                    Some(index) => Ok(Some(index)),
                    None => Err(error(&self.at(key), "expected a function, got an object")),
                }
            }
            Some(other) => Err(error(
                &self.at(key),
                format!("expected a function, got {}", type_name(other)),
            )),
        }
    }

    fn object(&self, key: &str, known: &[&str]) -> Result<Option<Fields<'a>>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => Fields::new(&self.at(key), value, known).map(Some),
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

impl Config {
    /// Parses and validates a config given as JSON.
    pub fn parse(value: &Value) -> Result<Config, ConfigError> {
        let top = Fields::new(
            "",
            value,
            &[
                "routes",
                "retry",
                "limits",
                "triggers",
                "syncTag",
                "commands",
                "storeHeaders",
            ],
        )?;
        let routes = match top.get("routes") {
            None => return Err(error("routes", "is required: a list of routes to queue")),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(index, item)| parse_route(&format!("routes[{index}]"), item))
                .collect::<Result<Vec<_>, _>>()?,
            Some(other) => {
                return Err(error(
                    "routes",
                    format!("expected an array, got {}", type_name(other)),
                ))
            }
        };

        let defaults = RetryPolicy::default();
        let retry = match top.object(
            "retry",
            &[
                "baseDelayMs",
                "factor",
                "maxDelayMs",
                "maxAttempts",
                "retentionMs",
            ],
        )? {
            None => defaults,
            Some(fields) => {
                let policy = RetryPolicy {
                    base_delay_ms: fields.integer(
                        "baseDelayMs",
                        defaults.base_delay_ms,
                        1,
                        DAY_MS,
                    )?,
                    factor: fields.number("factor", defaults.factor, 1.0, 10.0)?,
                    max_delay_ms: fields.integer(
                        "maxDelayMs",
                        defaults.max_delay_ms,
                        1,
                        7 * DAY_MS,
                    )?,
                    max_attempts: fields.integer(
                        "maxAttempts",
                        defaults.max_attempts as u64,
                        1,
                        1000,
                    )? as u32,
                    retention_ms: fields.integer(
                        "retentionMs",
                        defaults.retention_ms,
                        1000,
                        365 * DAY_MS,
                    )?,
                };
                if policy.max_delay_ms < policy.base_delay_ms {
                    return Err(error(
                        "retry.maxDelayMs",
                        format!(
                            "{} is below retry.baseDelayMs ({})",
                            policy.max_delay_ms, policy.base_delay_ms
                        ),
                    ));
                }
                policy
            }
        };

        let default_limits = Limits::default();
        let limits = match top.object(
            "limits",
            &[
                "maxBodyBytes",
                "maxEntries",
                "maxQueueBytes",
                "concurrency",
                "attemptTimeoutMs",
                "sentBodyBytes",
            ],
        )? {
            None => default_limits,
            Some(fields) => Limits {
                max_body_bytes: fields.integer(
                    "maxBodyBytes",
                    default_limits.max_body_bytes,
                    0,
                    1 << 31,
                )?,
                max_entries: fields.integer(
                    "maxEntries",
                    default_limits.max_entries,
                    1,
                    10_000_000,
                )?,
                max_queue_bytes: fields.integer(
                    "maxQueueBytes",
                    default_limits.max_queue_bytes,
                    0,
                    1 << 40,
                )?,
                concurrency: fields.integer(
                    "concurrency",
                    default_limits.concurrency as u64,
                    1,
                    64,
                )? as u32,
                attempt_timeout_ms: fields.integer(
                    "attemptTimeoutMs",
                    default_limits.attempt_timeout_ms,
                    100,
                    10 * 60 * 1000,
                )?,
                sent_body_bytes: fields.integer(
                    "sentBodyBytes",
                    default_limits.sent_body_bytes,
                    0,
                    16 * 1024 * 1024,
                )?,
            },
        };

        let triggers = match top.object("triggers", &["sync", "flush", "start", "timer"])? {
            None => Triggers::default(),
            Some(fields) => Triggers {
                sync: fields.boolean("sync", true)?,
                flush: fields.boolean("flush", true)?,
                start: fields.boolean("start", true)?,
                timer: fields.boolean("timer", true)?,
            },
        };

        let sync_tag = top
            .string("syncTag")?
            .unwrap_or_else(|| "sw-outbox".to_owned());
        if sync_tag.is_empty() {
            return Err(error("syncTag", "must not be empty"));
        }

        let commands = match top.object("commands", &["clear", "cancel", "resolve"])? {
            None => Commands::default(),
            Some(fields) => Commands {
                clear: fields.boolean("clear", true)?,
                cancel: fields.boolean("cancel", true)?,
                resolve: fields.boolean("resolve", true)?,
            },
        };

        let store_headers = match top.get("storeHeaders") {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                let mut names = Vec::new();
                for (index, item) in items.iter().enumerate() {
                    let at = format!("storeHeaders[{index}]");
                    let name = item
                        .as_str()
                        .filter(|name| is_header_name(name))
                        .ok_or_else(|| error(&at, format!("expected a header name, got {item}")))?
                        .to_ascii_lowercase();
                    if NEVER_STORED.contains(&name.as_str()) {
                        return Err(error(
                            &at,
                            format!("'{name}' is never stored; replays get auth from setAuth or replayHeaders"),
                        ));
                    }
                    names.push(name);
                }
                names
            }
            Some(other) => {
                return Err(error(
                    "storeHeaders",
                    format!(
                        "expected an array of header names, got {}",
                        type_name(other)
                    ),
                ))
            }
        };

        Ok(Config {
            routes,
            retry,
            limits,
            triggers,
            sync_tag,
            commands,
            store_headers,
        })
    }

    /// The conditional route whose entities a same-origin `GET` of `path`
    /// reads: the outbox records its answer as the base version.
    pub fn conditional_route_for_get(&self, path: &str) -> Option<(usize, &Route)> {
        self.routes
            .iter()
            .enumerate()
            .find(|(_, route)| route.conditional && path.starts_with(&route.match_prefix))
    }

    /// The first route matching a same-origin request, with its index.
    pub fn route_for(&self, method: &str, path: &str) -> Option<(usize, &Route)> {
        self.routes
            .iter()
            .enumerate()
            .find(|(_, route)| route.matches(method, path))
    }
}

impl Route {
    /// True if the route applies to this method and same-origin path.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        path.starts_with(&self.match_prefix)
            && self.methods.iter().any(|m| m.eq_ignore_ascii_case(method))
    }

    /// The entity key of a request on this route.
    pub fn entity_key(&self, path: &str) -> Option<String> {
        match self.entity {
            EntityRule::Path => Some(path.to_owned()),
            EntityRule::Route => Some(format!("route:{}", self.match_prefix)),
            EntityRule::None => None,
        }
    }
}

fn parse_route(path: &str, value: &Value) -> Result<Route, ConfigError> {
    let fields = Fields::new(
        path,
        value,
        &[
            "match",
            "methods",
            "kind",
            "entity",
            "strategy",
            "priority",
            "conditional",
            "recordGets",
            "serverFields",
            "timestampField",
            "resolve",
            "replayHeaders",
        ],
    )?;
    let match_prefix = fields.string("match")?.ok_or_else(|| {
        error(
            &fields.at("match"),
            "is required: a same-origin path prefix such as '/api/'",
        )
    })?;
    if !match_prefix.starts_with('/') || match_prefix.starts_with("//") {
        return Err(error(
            &fields.at("match"),
            format!("'{match_prefix}' is not a same-origin path; expected a path starting with '/' such as '/api/'"),
        ));
    }

    let methods = match fields.get("methods") {
        None => MUTATION_METHODS.iter().map(|m| m.to_string()).collect(),
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut methods = Vec::new();
            for (index, item) in items.iter().enumerate() {
                let at = format!("{}[{index}]", fields.at("methods"));
                let name = item.as_str().map(str::to_ascii_uppercase);
                match name {
                    Some(name) if MUTATION_METHODS.contains(&name.as_str()) => methods.push(name),
                    _ => {
                        return Err(error(
                            &at,
                            format!(
                                "{} is not a mutation method; expected one of {}",
                                item,
                                MUTATION_METHODS.join(", ")
                            ),
                        ))
                    }
                }
            }
            methods
        }
        Some(other) => {
            return Err(error(
                &fields.at("methods"),
                format!(
                    "expected a non-empty array of methods, got {}",
                    type_name(other)
                ),
            ))
        }
    };

    let entity = match fields.string("entity")?.as_deref() {
        None | Some("path") => EntityRule::Path,
        Some("route") => EntityRule::Route,
        Some("none") => EntityRule::None,
        Some(other) => {
            return Err(error(
                &fields.at("entity"),
                format!("unknown value '{other}'; expected one of path, route, none"),
            ))
        }
    };

    let strategy = match fields.string("strategy")? {
        None => Strategy::LastWriteWins,
        Some(name) => Strategy::parse(&name).ok_or_else(|| {
            error(
                &fields.at("strategy"),
                format!(
                    "unknown value '{name}'; expected one of {}",
                    Strategy::NAMES.join(", ")
                ),
            )
        })?,
    };

    let priority = match fields.string("priority")? {
        None => Priority::Normal,
        Some(name) => Priority::parse(&name).ok_or_else(|| {
            error(
                &fields.at("priority"),
                format!("unknown value '{name}'; expected one of low, normal, high, critical"),
            )
        })?,
    };

    let server_fields = match fields.get("serverFields") {
        None => DEFAULT_SERVER_FIELDS
            .iter()
            .map(|f| f.to_string())
            .collect(),
        Some(Value::Array(items)) => {
            let mut names = Vec::new();
            for (index, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(name) if !name.is_empty() => names.push(name.to_owned()),
                    _ => {
                        return Err(error(
                            &format!("{}[{index}]", fields.at("serverFields")),
                            format!("expected a field name, got {item}"),
                        ))
                    }
                }
            }
            names
        }
        Some(other) => {
            return Err(error(
                &fields.at("serverFields"),
                format!("expected an array of field names, got {}", type_name(other)),
            ))
        }
    };

    let resolve = fields.function("resolve")?;
    if strategy == Strategy::Custom && resolve.is_none() {
        return Err(error(
            &fields.at("resolve"),
            "is required with strategy 'custom': a function (base, local, remote) => decision",
        ));
    }
    if strategy != Strategy::Custom && resolve.is_some() {
        return Err(error(
            &fields.at("resolve"),
            format!(
                "is only used with strategy 'custom', not '{}'",
                strategy.as_str()
            ),
        ));
    }

    Ok(Route {
        match_prefix,
        methods,
        kind: fields.string("kind")?,
        entity,
        strategy,
        priority,
        conditional: fields.boolean("conditional", false)?,
        record_gets: fields.boolean("recordGets", true)?,
        server_fields,
        timestamp_field: fields
            .string("timestampField")?
            .unwrap_or_else(|| "updatedAt".to_owned()),
        resolve,
        replay_headers: fields.function("replayHeaders")?,
    })
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::core::conflict::Strategy;
    use proptest::prelude::{any, prop, prop_assert, prop_oneof, proptest, Just, Strategy as _};
    use serde_json::json;

    fn parse(value: Value) -> Result<Config, String> {
        Config::parse(&value).map_err(|e| e.to_string())
    }

    #[test]
    fn the_design_example_parses_with_defaults() {
        let config = parse(json!({
            "routes": [
                { "match": "/api/concepts/", "kind": "concept", "strategy": "last-write-wins" },
                { "match": "/api/connections/", "kind": "connection", "strategy": "merge" },
                { "match": "/api/checkpoints/", "kind": "checkpoint", "strategy": "first-write-wins", "priority": "critical" },
            ],
        }))
        .unwrap();
        assert_eq!(config.routes.len(), 3);
        assert_eq!(config.routes[2].priority, Priority::Critical);
        assert_eq!(config.routes[1].strategy, Strategy::Merge);
        assert_eq!(config.routes[0].methods, MUTATION_METHODS);
        assert_eq!(config.routes[0].entity, EntityRule::Path);
        assert_eq!(config.retry, RetryPolicy::default());
        assert_eq!(config.limits, Limits::default());
        assert_eq!(config.triggers, Triggers::default());
        assert_eq!(config.sync_tag, "sw-outbox");
    }

    #[test]
    fn stored_headers_are_the_defaults_and_the_named_ones_never_credentials() {
        let config =
            parse(json!({"routes": [{"match": "/a/"}], "storeHeaders": ["X-Client-Version"]}))
                .unwrap();
        assert!(config.stores_header("Content-Type"));
        assert!(config.stores_header("idempotency-key"));
        assert!(config.stores_header("x-client-version"));
        assert!(!config.stores_header("X-Trace"));
        assert!(!config.stores_header("Authorization"));
        assert!(!config.stores_header("Outbox-Depends-On"));
        assert_eq!(
            parse(json!({"routes": [{"match": "/a/"}], "storeHeaders": ["Cookie"]})).unwrap_err(),
            "outbox config: storeHeaders[0]: 'cookie' is never stored; replays get auth from setAuth or replayHeaders"
        );
        assert_eq!(
            parse(json!({"routes": [{"match": "/a/"}], "storeHeaders": ["bad header"]}))
                .unwrap_err(),
            "outbox config: storeHeaders[0]: expected a header name, got \"bad header\""
        );
        assert_eq!(
            parse(json!({"routes": [{"match": "/a/"}], "storeHeaders": "x-a"})).unwrap_err(),
            "outbox config: storeHeaders: expected an array of header names, got a string"
        );
    }

    #[test]
    fn commands_and_the_queue_byte_budget_parse() {
        let config = parse(json!({"routes": [{"match": "/a/"}]})).unwrap();
        assert_eq!(config.commands, Commands::default());
        assert_eq!(config.limits.max_queue_bytes, 256 * 1024 * 1024);
        let config = parse(json!({
            "routes": [{"match": "/a/"}],
            "commands": {"clear": false, "resolve": false},
            "limits": {"maxQueueBytes": 1000},
        }))
        .unwrap();
        assert_eq!(
            config.commands,
            Commands {
                clear: false,
                cancel: true,
                resolve: false
            }
        );
        assert_eq!(config.limits.max_queue_bytes, 1000);
        assert_eq!(
            parse(json!({"routes": [{"match": "/a/"}], "commands": {"retry": false}})).unwrap_err(),
            "outbox config: commands.retry: unknown field; expected one of clear, cancel, resolve"
        );
    }

    #[test]
    fn server_fields_and_record_gets_parse_with_defaults_and_clear_errors() {
        let config = parse(json!({"routes": [
            {"match": "/a/", "conditional": true},
            {"match": "/b/", "conditional": true, "recordGets": false, "serverFields": ["rev"]},
        ]}))
        .unwrap();
        assert!(config.routes[0].record_gets);
        assert_eq!(config.routes[0].server_fields, DEFAULT_SERVER_FIELDS);
        assert!(!config.routes[1].record_gets);
        assert_eq!(config.routes[1].server_fields, ["rev"]);
        assert_eq!(
            parse(json!({"routes": [{"match": "/a/", "serverFields": "id"}]})).unwrap_err(),
            "outbox config: routes[0].serverFields: expected an array of field names, got a string"
        );
        assert_eq!(
            parse(json!({"routes": [{"match": "/a/", "serverFields": ["id", 3]}]})).unwrap_err(),
            "outbox config: routes[0].serverFields[1]: expected a field name, got 3"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (json!([]), "outbox config: expected an object, got an array"),
            (json!({}), "outbox config: routes: is required"),
            (
                json!({"routes": [{"match": "/a/"}, {"match": "/b/"}, {"match": "/c/", "strategy": "lww"}]}),
                "outbox config: routes[2].strategy: unknown value 'lww'; expected one of last-write-wins, first-write-wins, merge, manual, custom",
            ),
            (json!({"routes": [{"match": "https://evil.example/api/"}]}), "routes[0].match: 'https://evil.example/api/' is not a same-origin path"),
            (json!({"routes": [{"match": "//evil.example/"}]}), "routes[0].match"),
            (json!({"routes": [{"match": "/a/", "methods": ["GET"]}]}), "routes[0].methods[0]: \"GET\" is not a mutation method"),
            (json!({"routes": [{"match": "/a/", "priorty": "high"}]}), "routes[0].priorty: unknown field"),
            (json!({"routes": [{"match": "/a/", "strategy": "custom"}]}), "routes[0].resolve: is required with strategy 'custom'"),
            (json!({"routes": [{"match": "/a/", "conditional": "yes"}]}), "routes[0].conditional: expected true or false, got a string"),
            (json!({"routes": [], "retry": {"factor": 0.5}}), "retry.factor: 0.5 is out of range"),
            (json!({"routes": [], "retry": {"baseDelayMs": 5000, "maxDelayMs": 10}}), "retry.maxDelayMs: 10 is below retry.baseDelayMs"),
            (json!({"routes": [], "limits": {"concurrency": 1.5}}), "limits.concurrency: expected a whole number, got 1.5"),
            (json!({"routes": [], "limits": {"concurrency": 1e9}}), "limits.concurrency: 1000000000 is out of range; expected 1 to "),
            (json!({"routes": [], "triggers": {"sync": false, "push": true}}), "triggers.push: unknown field"),
            (json!({"routes": [{"match": "/a/", "replayHeaders": "x"}]}), "routes[0].replayHeaders: expected a function, got a string"),
            (json!({"routes": [{"match": "/a/", "entity": "id"}]}), "routes[0].entity: unknown value 'id'"),
        ];
        for (value, expected) in cases {
            let message = parse(value.clone()).unwrap_err();
            assert!(message.contains(expected), "{value}: {message}");
        }
    }

    #[test]
    fn functions_and_options_are_read() {
        let config = parse(json!({
            "routes": [{ "match": "/a/", "strategy": "custom", "resolve": {"$fn": 0}, "replayHeaders": {"$fn": 1},
                         "methods": ["post", "PUT"], "entity": "none", "conditional": true }],
            "retry": { "baseDelayMs": 10, "maxDelayMs": 100, "maxAttempts": 3 },
            "limits": { "maxBodyBytes": 100, "concurrency": 2 },
            "triggers": { "sync": false, "timer": false },
            "syncTag": "mine",
        }))
        .unwrap();
        let route = &config.routes[0];
        assert_eq!((route.resolve, route.replay_headers), (Some(0), Some(1)));
        assert_eq!(route.methods, ["POST", "PUT"]);
        assert_eq!(route.entity_key("/a/1"), None);
        assert!(route.conditional);
        assert_eq!(config.retry.max_attempts, 3);
        assert_eq!(config.limits.max_body_bytes, 100);
        assert!(!config.triggers.sync && config.triggers.flush && !config.triggers.timer);
        assert_eq!(config.sync_tag, "mine");
    }

    #[test]
    fn a_function_marker_is_read_only_from_an_integer_index() {
        // The worker writes each function as {"$fn": <integer>}; a number from
        // JS config data is a float and never names a function.
        for forged in [json!({"$fn": 0.0}), json!({"$fn": -1}), json!({"$fn": "0"})] {
            let message =
                parse(json!({"routes": [{"match": "/a/", "replayHeaders": forged}]})).unwrap_err();
            assert!(
                message.contains("routes[0].replayHeaders: expected a function"),
                "{forged}: {message}"
            );
        }
    }

    #[test]
    fn routes_match_by_prefix_and_method_first_wins() {
        let config = parse(json!({"routes": [
            {"match": "/api/concepts/", "methods": ["PUT"]},
            {"match": "/api/"},
        ]}))
        .unwrap();
        assert_eq!(
            config.route_for("PUT", "/api/concepts/1").map(|r| r.0),
            Some(0)
        );
        assert_eq!(
            config.route_for("post", "/api/concepts/1").map(|r| r.0),
            Some(1)
        );
        assert_eq!(
            config.route_for("GET", "/api/concepts/1").map(|r| r.0),
            None
        );
        assert_eq!(config.route_for("POST", "/other"), None);
        assert_eq!(config.conditional_route_for_get("/api/concepts/1"), None);
        let conditional = parse(json!({"routes": [
            {"match": "/api/concepts/"},
            {"match": "/api/", "conditional": true},
        ]}))
        .unwrap();
        assert_eq!(
            conditional
                .conditional_route_for_get("/api/concepts/1")
                .map(|r| r.0),
            Some(1)
        );
    }

    #[test]
    fn null_means_absent() {
        let config =
            parse(json!({"routes": [{"match": "/a/", "kind": null}], "retry": null})).unwrap();
        assert_eq!(config.routes[0].kind, None);
    }

    fn arbitrary_json() -> impl proptest::strategy::Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|n| json!(n)),
            prop::sample::select(vec![
                "/api/", "merge", "custom", "critical", "x", "", "path"
            ])
            .prop_map(|s| json!(s)),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop::sample::select(vec![
                        "routes",
                        "match",
                        "methods",
                        "strategy",
                        "resolve",
                        "$fn",
                        "retry",
                        "limits",
                        "factor",
                        "concurrency",
                        "triggers",
                        "priority",
                        "kind",
                    ])
                    .prop_map(str::to_owned),
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_json_never_panics(value in arbitrary_json()) {
            if let Err(error) = Config::parse(&value) {
                prop_assert!(!error.message.is_empty());
            }
        }
    }
}
