//! Generators of hostile and valid inputs for the fuzz targets: JSON values
//! with edge-case numbers, strings and nesting, valid records, commands and
//! configs, and mutations that break valid inputs in small ways.

use crate::core::conflict::Strategy as ConflictStrategy;
use crate::core::entry::{BaseVersion, ConflictInfo, Entry, Failure, Priority};
use crate::core::lifecycle::State;
use crate::core::protocol::{Command, Request, ResolveUse, RetryTarget};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use serde_json::{json, Map, Number, Value};

/// The deepest nesting serde_json reads. Every JSON value reaching the
/// targets in the worker was parsed by it, so generated values stay within.
pub const MAX_JSON_DEPTH: usize = 127;

/// Field names of records, messages and configs, and some no format has:
/// mutations insert them, so unknown and misplaced fields are tried.
#[rustfmt::skip]
const KEYS: &[&str] = &[
    "v", "id", "method", "url", "headers", "credentials", "idempotencyKey", "route", "kind",
    "entity", "base", "etag", "lastModifiedMs", "body", "priority", "dependsOn", "state",
    "attempts", "offlineAttempts", "createdAt", "lastAttemptAt", "nextAttemptAt", "leaseUntil",
    "uncertain", "lastError", "failure", "reason", "status", "message", "conflict", "remote",
    "remoteEtag", "pointers", "bodyBytes", "conflictResends", "outbox", "type", "entry", "filter",
    "states", "use", "routes", "match", "methods", "strategy", "conditional", "recordGets",
    "serverFields", "timestampField", "resolve", "replayHeaders", "retry", "baseDelayMs", "factor",
    "maxDelayMs", "maxAttempts", "retentionMs", "limits", "maxBodyBytes", "maxEntries",
    "concurrency", "attemptTimeoutMs", "sentBodyBytes", "triggers", "sync", "flush", "start",
    "timer", "syncTag", "$fn", "", "__proto__", "constructor", "a/b", "m~n", "~1", "\u{0}", "é",
];

/// Words the formats give meaning to, and near misses.
#[rustfmt::skip]
const WORDS: &[&str] = &[
    "pending", "in_flight", "waiting_retry", "failed", "done", "cancelled", "status", "flush",
    "entries", "retry", "cancel", "clear", "auth", "resolve", "local", "remote", "merged",
    "http_status", "max_attempts", "expired", "invalid", "low", "normal", "high", "critical",
    "last-write-wins", "first-write-wins", "merge", "manual", "custom", "path", "route", "none",
    "POST", "put", "GET", "/api/", "/", "//evil.example/", "https://evil.example/api/",
    "same-origin", "include", "Authorization", "bad name", "1", "NaN", "Infinity", "1e999", "",
];

/// Numbers at the edges of JSON, f64, u32 and u64, and ones that read as
/// valid ids, versions and indices.
fn edge_numbers() -> Vec<Value> {
    vec![
        json!(0),
        json!(-0.0),
        json!(1),
        json!(1.0),
        json!(-1),
        json!(0.5),
        json!(2),
        json!(u32::MAX),
        json!(u64::from(u32::MAX) + 1),
        json!(9_007_199_254_740_993_u64),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(1.8446744073709552e19),
        json!(1e308),
        json!(-1e308),
        json!(5e-324),
    ]
}

fn number() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => select(edge_numbers()),
        2 => (-3i64..10).prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => any::<f64>().prop_filter_map("JSON has no NaN or infinity", |n| {
            Number::from_f64(n).map(Value::Number)
        }),
    ]
    .boxed()
}

/// Strings: meaningful words, any characters, escapes and controls, long runs.
pub fn string() -> BoxedStrategy<String> {
    let special = select(vec![
        '\0',
        '\u{1f}',
        '"',
        '\\',
        '/',
        '\u{7f}',
        '\u{fffd}',
        '\u{10ffff}',
    ]);
    prop_oneof![
        4 => select(WORDS).prop_map(str::to_owned),
        3 => prop::collection::vec(any::<char>(), 0..16).prop_map(String::from_iter),
        1 => prop::collection::vec(special, 0..8).prop_map(String::from_iter),
        1 => (0usize..20_000).prop_map(|length| "x".repeat(length)),
    ]
    .boxed()
}

fn key() -> BoxedStrategy<String> {
    prop_oneof![3 => select(KEYS).prop_map(str::to_owned), 1 => string()].boxed()
}

fn scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        string().prop_map(Value::String),
    ]
    .boxed()
}

/// Any JSON value: mostly small trees, sometimes a chain as deep as
/// serde_json reads.
pub fn json_value() -> BoxedStrategy<Value> {
    let tree = scalar().prop_recursive(5, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..4)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    });
    prop_oneof![8 => tree, 1 => deep_value()].boxed()
}

/// A JSON object with any fields.
pub fn json_object() -> BoxedStrategy<Value> {
    prop::collection::vec((key(), json_value()), 0..6)
        .prop_map(|fields| Value::Object(fields.into_iter().collect()))
        .boxed()
}

/// A chain of arrays and objects 100 to 127 levels deep, around the limits
/// of serde_json and of stored records.
pub fn deep_value() -> BoxedStrategy<Value> {
    let level = (any::<bool>(), select(KEYS));
    (prop::collection::vec(level, 100..=MAX_JSON_DEPTH), scalar())
        .prop_map(|(levels, leaf)| {
            levels.into_iter().fold(leaf, |inner, (array, key)| {
                if array {
                    Value::Array(vec![inner])
                } else {
                    Value::Object(Map::from_iter([(key.to_owned(), inner)]))
                }
            })
        })
        .boxed()
}

/// The nesting depth of a value (a scalar is 0 deep), without recursion.
pub fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0)];
    while let Some((value, level)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        deepest = deepest.max(level + 1);
        stack.extend(children.map(|child| (child, level + 1)));
    }
    deepest
}

/// The value with everything below `levels` of nesting replaced by null, so
/// that it can be written as JSON text that serde_json reads back.
pub fn within_depth(value: Value, levels: usize) -> Value {
    match value {
        Value::Array(_) | Value::Object(_) if levels == 0 => Value::Null,
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| within_depth(item, levels - 1))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, item)| (key, within_depth(item, levels - 1)))
                .collect(),
        ),
        scalar => scalar,
    }
}

/// One small change to a JSON value, at a node picked by an [`Index`].
#[derive(Debug, Clone)]
pub enum Mutation {
    /// The node becomes this value.
    Replace(Value),
    /// The node is removed from its parent (the root becomes null).
    Remove,
    /// A field is added to an object, an item to an array; a scalar becomes
    /// an object with the field.
    Insert(String, Value),
    /// The node becomes a one-item array of itself.
    Wrap,
    /// The node becomes its JSON text, a string (`5` → `"5"`).
    Stringify,
}

fn mutation() -> BoxedStrategy<Mutation> {
    prop_oneof![
        3 => json_value().prop_map(Mutation::Replace),
        2 => Just(Mutation::Remove),
        2 => (key(), json_value()).prop_map(|(key, value)| Mutation::Insert(key, value)),
        1 => Just(Mutation::Wrap),
        1 => Just(Mutation::Stringify),
    ]
    .boxed()
}

/// One to three mutations, each at a node picked by its index.
pub fn mutations() -> BoxedStrategy<Vec<(Index, Mutation)>> {
    prop::collection::vec((any::<Index>(), mutation()), 1..4).boxed()
}

#[derive(Clone)]
enum Step {
    Key(String),
    Item(usize),
}

/// The path of every node, the root's (empty) first.
fn paths(value: &Value) -> Vec<Vec<Step>> {
    let mut found = Vec::new();
    let mut stack = vec![(value, Vec::new())];
    while let Some((value, path)) = stack.pop() {
        match value {
            Value::Array(items) => stack.extend(items.iter().enumerate().map(|(index, item)| {
                let mut path = path.clone();
                path.push(Step::Item(index));
                (item, path)
            })),
            Value::Object(map) => stack.extend(map.iter().map(|(key, item)| {
                let mut path = path.clone();
                path.push(Step::Key(key.clone()));
                (item, path)
            })),
            _ => {}
        }
        found.push(path);
    }
    found
}

fn node<'a>(value: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |node, step| match step {
        Step::Key(key) => node.get_mut(key.as_str()),
        Step::Item(index) => node.get_mut(*index),
    })
}

/// Applies the mutations in order, then trims the result to what serde_json
/// reads.
pub fn mutate(mut value: Value, mutations: &[(Index, Mutation)]) -> Value {
    for (at, mutation) in mutations {
        let all = paths(&value);
        let path = &all[at.index(all.len())];
        if let (Mutation::Remove, Some((last, parent))) = (mutation, path.split_last()) {
            match (node(&mut value, parent), last) {
                (Some(Value::Object(map)), Step::Key(key)) => {
                    map.remove(key);
                }
                (Some(Value::Array(items)), Step::Item(index)) => {
                    items.remove(*index);
                }
                _ => {}
            }
            continue;
        }
        let Some(node) = node(&mut value, path) else {
            continue;
        };
        match mutation {
            Mutation::Replace(replacement) => *node = replacement.clone(),
            Mutation::Remove => *node = Value::Null,
            Mutation::Insert(key, item) => match node {
                Value::Object(map) => {
                    map.insert(key.clone(), item.clone());
                }
                Value::Array(items) => items.push(item.clone()),
                _ => *node = Value::Object(Map::from_iter([(key.clone(), item.clone())])),
            },
            Mutation::Wrap => *node = Value::Array(vec![node.take()]),
            Mutation::Stringify => *node = Value::String(node.to_string()),
        }
    }
    within_depth(value, MAX_JSON_DEPTH)
}

fn optional_string() -> BoxedStrategy<Option<String>> {
    prop::option::of(string()).boxed()
}

fn failure() -> BoxedStrategy<Failure> {
    prop_oneof![
        any::<u16>().prop_map(|status| Failure::HttpStatus { status }),
        Just(Failure::MaxAttempts),
        Just(Failure::Expired),
        string().prop_map(|message| Failure::Invalid { message }),
    ]
    .boxed()
}

fn base_version() -> BoxedStrategy<BaseVersion> {
    (
        optional_string(),
        prop::option::of(any::<u64>()),
        prop::option::of(json_value()),
    )
        .prop_map(|(etag, last_modified_ms, body)| BaseVersion {
            etag,
            last_modified_ms,
            body,
        })
        .boxed()
}

fn conflict_info() -> BoxedStrategy<ConflictInfo> {
    (
        any::<u16>(),
        prop::option::of(json_value()),
        optional_string(),
        prop::collection::vec(string(), 0..3),
        string(),
    )
        .prop_map(
            |(status, remote, remote_etag, pointers, reason)| ConflictInfo {
                status,
                remote,
                remote_etag,
                pointers,
                reason,
            },
        )
        .boxed()
}

/// Any entry the worker could store, with any values in every field.
pub fn entry() -> BoxedStrategy<Entry> {
    let request = (
        any::<u64>(),
        string(),
        string(),
        prop::collection::vec((string(), string()), 0..3),
        string(),
        string(),
        any::<usize>(),
        optional_string(),
        optional_string(),
        prop::option::of(base_version()),
        select(Priority::ALL.to_vec()),
        prop::collection::vec(any::<u64>(), 0..4),
    );
    let progress = (
        select(State::ALL.to_vec()),
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
        prop::option::of(any::<u64>()),
        prop::option::of(any::<u64>()),
        prop::option::of(any::<u64>()),
        any::<bool>(),
        optional_string(),
        prop::option::of(failure()),
        prop::option::of(conflict_info()),
        (any::<u64>(), any::<u32>(), optional_string()),
    );
    (request, progress)
        .prop_map(|(request, progress)| {
            let (
                id,
                method,
                url,
                headers,
                credentials,
                key,
                route,
                kind,
                entity,
                base,
                priority,
                depends_on,
            ) = request;
            let (
                state,
                attempts,
                offline_attempts,
                created_at,
                last_attempt_at,
                next_attempt_at,
                lease_until,
                uncertain,
                last_error,
                failure,
                conflict,
                (body_bytes, conflict_resends, user),
            ) = progress;
            Entry {
                id,
                method,
                url,
                headers,
                credentials,
                idempotency_key: key,
                route,
                kind,
                entity,
                base,
                priority,
                depends_on,
                state,
                attempts,
                offline_attempts,
                created_at,
                last_attempt_at,
                next_attempt_at,
                lease_until,
                uncertain,
                last_error,
                failure,
                conflict,
                body_bytes,
                conflict_resends,
                user,
            }
        })
        .boxed()
}

fn states() -> BoxedStrategy<Option<Vec<State>>> {
    prop::option::of(prop::collection::vec(select(State::ALL.to_vec()), 0..4)).boxed()
}

/// Any command a page may send, valid in every part.
pub fn request() -> BoxedStrategy<Request> {
    let entry = prop_oneof![1u64..10, 1..=u64::MAX];
    let header_value = prop_oneof!["[ -~]{0,40}", "[\\x01-\\x09\\x0b\\x0c\\x0e-\\u{ff}]{0,8}"];
    let command = prop_oneof![
        Just(Command::Status),
        Just(Command::Flush),
        states().prop_map(|states| Command::Entries { states }),
        prop_oneof![
            entry.clone().prop_map(RetryTarget::Entry),
            Just(RetryTarget::AllFailed)
        ]
        .prop_map(|target| Command::Retry { target }),
        entry.clone().prop_map(|entry| Command::Cancel { entry }),
        (states(), any::<bool>()).prop_map(|(states, corrupt)| Command::Clear {
            corrupt: corrupt || states.is_none(),
            states,
        }),
        (
            prop::option::of("[^\\x00]{1,40}"),
            prop::option::of(prop::collection::btree_map(
                "[A-Za-z0-9_-]{1,20}",
                "[ -~]{0,40}",
                0..3
            )),
        )
            .prop_map(|(user, headers)| Command::User {
                user,
                headers: headers.map(|headers| headers.into_iter().collect()),
            }),
        any::<bool>().prop_map(|discard| Command::Logout { discard }),
        prop::collection::vec(("[A-Za-z0-9_-]{1,20}", header_value), 0..4).prop_map(|headers| {
            // The message is an object, so names are unique and in its order.
            let unique: Map<String, Value> = headers
                .into_iter()
                .map(|(name, value)| (name, Value::String(value)))
                .collect();
            let headers = unique
                .into_iter()
                .map(|(name, value)| (name, value.as_str().unwrap_or_default().to_owned()))
                .collect();
            Command::Auth { headers }
        }),
        (
            entry,
            select(vec![
                ResolveUse::Local,
                ResolveUse::Remote,
                ResolveUse::Merged
            ]),
            prop::option::of(json_value()),
        )
            .prop_map(|(entry, using, body)| Command::Resolve {
                entry,
                using,
                body: match (using, body) {
                    (ResolveUse::Merged, None) => Some(Value::Null),
                    (_, body) => body.map(|body| within_depth(body, MAX_JSON_DEPTH - 1)),
                },
            }),
        Just(Command::Hello),
    ];
    (prop_oneof![1u64..10, 1..=u64::MAX], command, any::<bool>())
        .prop_map(|(id, command, events)| Request {
            id,
            command,
            events,
        })
        .boxed()
}

/// The message a page sends for a request.
pub fn command_message(request: &Request) -> Value {
    let mut message = json!({"outbox": 1, "id": request.id});
    let states = |states: &Option<Vec<State>>| {
        states.as_ref().map(|states| {
            Value::Array(
                states
                    .iter()
                    .map(|state| Value::from(state.as_str()))
                    .collect(),
            )
        })
    };
    let (kind, fields) = match &request.command {
        Command::Status => ("status", json!({})),
        Command::Flush => ("flush", json!({})),
        Command::Entries { states: None } => ("entries", json!({})),
        Command::Entries { states: some } => {
            ("entries", json!({"filter": {"states": states(some)}}))
        }
        Command::Retry {
            target: RetryTarget::AllFailed,
        } => ("retry", json!({"entry": "failed"})),
        Command::Retry {
            target: RetryTarget::Entry(entry),
        } => ("retry", json!({ "entry": entry })),
        Command::Cancel { entry } => ("cancel", json!({ "entry": entry })),
        Command::Clear { states: None, .. } => ("clear", json!({})),
        Command::Clear {
            states: some,
            corrupt,
        } => {
            let mut list = states(some).unwrap_or_else(|| json!([]));
            if let (true, Some(list)) = (*corrupt, list.as_array_mut()) {
                list.push(Value::from("corrupt"));
            }
            ("clear", json!({ "states": list }))
        }
        Command::User { user, headers } => {
            let mut fields = json!({ "user": user });
            if let Some(headers) = headers {
                let headers: Map<String, Value> = headers
                    .iter()
                    .map(|(name, value)| (name.clone(), Value::from(value.as_str())))
                    .collect();
                fields["headers"] = Value::Object(headers);
            }
            ("user", fields)
        }
        Command::Logout { discard } => ("logout", json!({ "discard": discard })),
        Command::Auth { headers } => {
            let headers: Map<String, Value> = headers
                .iter()
                .map(|(name, value)| (name.clone(), Value::from(value.as_str())))
                .collect();
            ("auth", json!({ "headers": headers }))
        }
        Command::Resolve { entry, using, body } => {
            let using = match using {
                ResolveUse::Local => "local",
                ResolveUse::Remote => "remote",
                ResolveUse::Merged => "merged",
            };
            let mut fields = json!({"entry": entry, "use": using});
            if let Some(body) = body {
                fields["body"] = body.clone();
            }
            ("resolve", fields)
        }
        Command::Hello => ("hello", json!({})),
    };
    message["type"] = Value::from(kind);
    if request.events {
        message["features"] = json!(["events"]);
    }
    if let (Some(message), Value::Object(fields)) = (message.as_object_mut(), fields) {
        message.extend(fields);
    }
    message
}

/// Sets `key` when the optional value is there.
fn put(object: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        object.insert(key.to_owned(), value);
    }
}

fn route() -> BoxedStrategy<Value> {
    let methods = prop::collection::vec(select(vec!["post", "PUT", "Patch", "DELETE"]), 1..4);
    let names = prop::collection::vec("[A-Za-z]{1,8}", 0..3);
    (
        (
            "/[a-z0-9_/-]{0,12}".prop_filter("same-origin", |path| !path.starts_with("//")),
            prop::option::of(methods),
            optional_string(),
            prop::option::of(select(vec!["path", "route", "none"])),
            select(ConflictStrategy::NAMES.to_vec()),
            prop::option::of(select(vec!["low", "normal", "high", "critical"])),
        ),
        (
            prop::option::of(any::<bool>()),
            prop::option::of(any::<bool>()),
            prop::option::of(names),
            optional_string(),
            0u32..8,
            prop::option::of(0u32..8),
        ),
    )
        .prop_map(|(matching, options)| {
            let (prefix, methods, kind, entity, strategy, priority) = matching;
            let (conditional, record_gets, server_fields, timestamp, resolve, headers) = options;
            let mut route = Map::new();
            route.insert("match".into(), prefix.into());
            put(&mut route, "methods", methods.map(|m| json!(m)));
            put(&mut route, "kind", kind.map(Value::from));
            put(&mut route, "entity", entity.map(Value::from));
            route.insert("strategy".into(), strategy.into());
            put(&mut route, "priority", priority.map(Value::from));
            put(&mut route, "conditional", conditional.map(Value::from));
            put(&mut route, "recordGets", record_gets.map(Value::from));
            put(&mut route, "serverFields", server_fields.map(|f| json!(f)));
            put(&mut route, "timestampField", timestamp.map(Value::from));
            if strategy == "custom" {
                route.insert("resolve".into(), json!({ "$fn": resolve }));
            }
            put(
                &mut route,
                "replayHeaders",
                headers.map(|n| json!({ "$fn": n })),
            );
            Value::Object(route)
        })
        .boxed()
}

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Any config `Config::parse` must accept.
pub fn valid_config() -> BoxedStrategy<Value> {
    let retry = (
        1..=DAY_MS,
        0..=6 * DAY_MS,
        1.0f64..=10.0,
        prop::option::of(1u64..=1000),
        prop::option::of(1000..=365 * DAY_MS),
    )
        .prop_map(|(base, extra, factor, attempts, retention)| {
            let mut retry = Map::new();
            retry.insert("baseDelayMs".into(), base.into());
            retry.insert("maxDelayMs".into(), (base + extra).into());
            retry.insert("factor".into(), factor.into());
            put(&mut retry, "maxAttempts", attempts.map(Value::from));
            put(&mut retry, "retentionMs", retention.map(Value::from));
            Value::Object(retry)
        });
    let limits = (
        prop::option::of(0..=1u64 << 31),
        prop::option::of(1..=10_000_000u64),
        prop::option::of(1..=64u64),
        prop::option::of(100..=600_000u64),
        prop::option::of(0..=16u64 << 20),
    )
        .prop_map(|(body, entries, concurrency, timeout, sent)| {
            let mut limits = Map::new();
            put(&mut limits, "maxBodyBytes", body.map(Value::from));
            put(&mut limits, "maxEntries", entries.map(Value::from));
            put(&mut limits, "concurrency", concurrency.map(Value::from));
            put(&mut limits, "attemptTimeoutMs", timeout.map(Value::from));
            put(&mut limits, "sentBodyBytes", sent.map(Value::from));
            Value::Object(limits)
        });
    let triggers = prop::collection::vec(
        (
            select(vec!["sync", "flush", "start", "timer"]),
            any::<bool>(),
        ),
        0..4,
    )
    .prop_map(|flags| {
        let flags: Map<String, Value> = flags
            .into_iter()
            .map(|(name, on)| (name.to_owned(), Value::Bool(on)))
            .collect();
        Value::Object(flags)
    });
    (
        prop::collection::vec(route(), 0..4),
        prop::option::of(retry),
        prop::option::of(limits),
        prop::option::of(triggers),
        prop::option::of(".{1,12}"),
    )
        .prop_map(|(routes, retry, limits, triggers, tag)| {
            let mut config = Map::new();
            config.insert("routes".into(), Value::Array(routes));
            put(&mut config, "retry", retry);
            put(&mut config, "limits", limits);
            put(&mut config, "triggers", triggers);
            put(&mut config, "syncTag", tag.map(Value::from));
            Value::Object(config)
        })
        .boxed()
}

/// A function marker as the worker writes it, and forged ones a page could
/// write as plain data.
pub fn function_marker() -> BoxedStrategy<Value> {
    prop_oneof![
        (0u64..8).prop_map(|n| json!({ "$fn": n })),
        number().prop_map(|n| json!({ "$fn": n })),
        json_value().prop_map(|n| json!({ "$fn": n })),
        (0u64..8, key(), json_value()).prop_map(|(n, key, value)| {
            let mut marker = json!({ "$fn": n });
            marker[key] = value;
            marker
        }),
    ]
    .boxed()
}

/// Hostile edits of a record's text: bytes set, inserted, deleted, text
/// cut short, and JSON tokens spliced in.
#[derive(Debug, Clone)]
pub enum Edit {
    Set(Index, u8),
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
    Truncate(Index),
    Splice(Index, &'static str),
}

/// JSON tokens and fragments that break or bend records.
#[rustfmt::skip]
pub const TOKENS: &[&str] = &[
    "{", "}", "[", "]", ":", ",", "\"", "\\", "\\u", "\\ud800", "null", "true", "false", "-", "0",
    "1", "-0", "1e999", "NaN", "1.5", "18446744073709551616", "\"v\"", "\"v\":1", "\"v\":2",
    "\"id\"", "\"state\"", "\"pending\"", "\"failure\"", "\"reason\"", "\"base\"", "\"body\"",
    "\"headers\"", " ", "\u{feff}", "\u{0}",
];

pub fn edits() -> BoxedStrategy<Vec<Edit>> {
    let edit = prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Edit::Set(at, byte)),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..4))
            .prop_map(|(at, bytes)| Edit::Insert(at, bytes)),
        (any::<Index>(), 1usize..16).prop_map(|(at, length)| Edit::Delete(at, length)),
        any::<Index>().prop_map(Edit::Truncate),
        (any::<Index>(), select(TOKENS)).prop_map(|(at, token)| Edit::Splice(at, token)),
    ];
    prop::collection::vec(edit, 1..5).boxed()
}

pub fn edit(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        let length = bytes.len();
        let at = |index: &Index| {
            if length == 0 {
                0
            } else {
                index.index(length + 1)
            }
        };
        match edit {
            Edit::Set(index, byte) if length > 0 => {
                let at = index.index(length);
                bytes[at] = *byte;
            }
            Edit::Set(..) => {}
            Edit::Insert(index, inserted) => {
                let at = at(index);
                bytes.splice(at..at, inserted.iter().copied());
            }
            Edit::Delete(index, count) => {
                let at = at(index);
                bytes.drain(at..(at + count).min(length));
            }
            Edit::Truncate(index) => bytes.truncate(at(index)),
            Edit::Splice(index, token) => {
                let at = at(index);
                bytes.splice(at..at, token.bytes());
            }
        }
    }
    bytes
}
