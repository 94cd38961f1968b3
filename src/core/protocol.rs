//! The page ↔ worker messages (see the README, "Protocol").
//!
//! Every outbox message is a JSON object with `"outbox": 1` — the protocol
//! marker and its version — and a `type`. A message without the marker is
//! not the outbox's: [`decode_command`] says so with [`MessageError::NotOutbox`]
//! and the worker leaves it to the site's own code. Anything else that cannot
//! be read is [`MessageError::Malformed`], which the worker answers with an
//! `error` reply.

use crate::core::entry::EntryId;
use crate::core::lifecycle::State;
use serde_json::{json, Map, Value};
use std::fmt;

/// The protocol version this code speaks.
pub const PROTOCOL_VERSION: u64 = 1;

/// What `retry` applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryTarget {
    /// One entry.
    Entry(EntryId),
    /// Every failed entry.
    AllFailed,
}

/// How a page settles a conflict.
#[derive(Debug, Clone, PartialEq, Eq, Copy)]
pub enum ResolveUse {
    /// Send the local write again, over the remote one.
    Local,
    /// Keep the remote state; the local write is superseded.
    Remote,
    /// Send the body the page gives.
    Merged,
}

/// A page's command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// The queue's status.
    Status,
    /// The entries, optionally only those in some states.
    Entries {
        /// Only these states, when given.
        states: Option<Vec<State>>,
    },
    /// Drain now; the reply comes when the drain ends.
    Flush,
    /// Send failed entries again.
    Retry {
        /// Which.
        target: RetryTarget,
    },
    /// Cancel one entry.
    Cancel {
        /// Which.
        entry: EntryId,
    },
    /// Remove entries (all, or those in some states) and records set aside
    /// as corrupt.
    Clear {
        /// Only these states, when given.
        states: Option<Vec<State>>,
        /// Also remove the records set aside as corrupt: when no states are
        /// given, or when the list names `corrupt`.
        corrupt: bool,
    },
    /// Sets the current user: entries stored from now on carry it, and
    /// entries of other users are held.
    User {
        /// The user's id; None for no user.
        user: Option<String>,
        /// The new user's auth headers for replays, set with the switch so
        /// that no replay goes out between the two; None: none yet.
        headers: Option<Vec<(String, String)>>,
    },
    /// The current user signs out: their queued entries are discarded or
    /// kept (held until they are current again); then there is no user.
    Logout {
        /// Remove the current user's entries instead of keeping them.
        discard: bool,
    },
    /// Fresh auth headers for replays.
    Auth {
        /// Header names and values.
        headers: Vec<(String, String)>,
    },
    /// Settle a conflict.
    Resolve {
        /// Which entry.
        entry: EntryId,
        /// How.
        using: ResolveUse,
        /// The merged body, for `merged`.
        body: Option<Value>,
    },
    /// A page's shim names the protocol features it reads (in the
    /// request's `features`, which any command may carry).
    Hello,
}

/// The protocol features a worker offers in its reply to `hello`.
pub const FEATURES: &[&str] = &[FEATURE_EVENTS];

/// Events reach the page in batches, as one `events` message each.
pub const FEATURE_EVENTS: &str = "events";

/// A command with its request id.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The page's request id, echoed in the reply.
    pub id: u64,
    /// The command.
    pub command: Command,
    /// The page reads `events` envelopes: it named the feature in the
    /// command's optional `"features"` list.
    pub events: bool,
}

/// Why a message is not a command this worker runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageError {
    /// Not an outbox message: leave it to the site's code, do not reply.
    NotOutbox,
    /// An outbox message that cannot be run: reply with this error.
    Malformed {
        /// The request id, when one could be read.
        id: Option<u64>,
        /// What is wrong.
        message: String,
    },
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::NotOutbox => f.write_str("not an outbox message"),
            MessageError::Malformed { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for MessageError {}

/// True if the message carries the outbox marker.
pub fn is_outbox_message(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|map| map.contains_key("outbox"))
}

fn malformed(id: Option<u64>, message: impl Into<String>) -> MessageError {
    MessageError::Malformed {
        id,
        message: message.into(),
    }
}

fn entry_id(map: &Map<String, Value>, id: u64, kind: &str) -> Result<EntryId, MessageError> {
    map.get("entry")
        .and_then(Value::as_u64)
        .filter(|entry| *entry > 0)
        .ok_or_else(|| {
            malformed(
                Some(id),
                format!("'{kind}' needs \"entry\": a positive entry id"),
            )
        })
}

fn states(
    map: &Map<String, Value>,
    key: &str,
    id: u64,
) -> Result<Option<Vec<State>>, MessageError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str().and_then(State::parse).ok_or_else(|| {
                    malformed(
                        Some(id),
                        format!(
                            "\"{key}\" has {item}, which is not a state; expected one of {}",
                            State::ALL.map(State::as_str).join(", ")
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(malformed(
            Some(id),
            format!("\"{key}\" must be an array of states"),
        )),
    }
}

/// Auth headers a page gives (`auth`, and `user` with the new user's).
fn auth_headers(value: &Value, id: u64, kind: &str) -> Result<Vec<(String, String)>, MessageError> {
    let headers = value.as_object().ok_or_else(|| {
        malformed(
            Some(id),
            format!("'{kind}' needs \"headers\": an object of header names to values"),
        )
    })?;
    let mut pairs = Vec::new();
    for (name, value) in headers {
        let value = value.as_str().ok_or_else(|| {
            malformed(
                Some(id),
                format!("'{kind}' header '{name}' must be a string"),
            )
        })?;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
        {
            return Err(malformed(
                Some(id),
                format!("'{kind}' header name '{name}' is not valid"),
            ));
        }
        if !is_header_value(value) {
            return Err(malformed(Some(id), format!("'{kind}' header '{name}' has a value no request can carry (a line break, NUL or a character above U+00FF)")));
        }
        pairs.push((name.clone(), value.to_owned()));
    }
    Ok(pairs)
}

/// The longest user id a page may set.
pub const MAX_USER_CHARS: usize = 256;

/// The `clear` command's states, which may also name `corrupt`.
fn clear_states(map: &Map<String, Value>, id: u64) -> Result<Command, MessageError> {
    let Some(Value::Array(items)) = map.get("states") else {
        return Ok(Command::Clear {
            states: states(map, "states", id)?,
            corrupt: true,
        });
    };
    let corrupt = items.iter().any(|item| item.as_str() == Some("corrupt"));
    let rest: Vec<Value> = items
        .iter()
        .filter(|item| item.as_str() != Some("corrupt"))
        .cloned()
        .collect();
    let mut only_states = Map::new();
    only_states.insert("states".into(), Value::Array(rest));
    Ok(Command::Clear {
        states: states(&only_states, "states", id)?,
        corrupt,
    })
}

/// True if `Headers.append` takes the value: a byte string without NUL, CR
/// or LF. Taking any other value would make every replay throw, which the
/// drain cannot tell from a network failure.
fn is_header_value(value: &str) -> bool {
    value
        .chars()
        .all(|c| c <= '\u{ff}' && !matches!(c, '\0' | '\r' | '\n'))
}

/// Reads a page's command.
pub fn decode_command(value: &Value) -> Result<Request, MessageError> {
    let map = match value.as_object() {
        Some(map) if map.contains_key("outbox") => map,
        _ => return Err(MessageError::NotOutbox),
    };
    let id = map.get("id").and_then(Value::as_u64);
    match map.get("outbox").and_then(Value::as_u64) {
        Some(PROTOCOL_VERSION) => {}
        _ => {
            return Err(malformed(
                id,
                format!(
                    "unsupported outbox protocol version {}; this worker speaks {PROTOCOL_VERSION}",
                    map.get("outbox").map(Value::to_string).unwrap_or_default()
                ),
            ))
        }
    }
    let id = id
        .filter(|id| *id > 0)
        .ok_or_else(|| malformed(None, "an outbox command needs \"id\": a positive integer"))?;
    let kind = map
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed(Some(id), "an outbox command needs \"type\": a string"))?;
    let command = match kind {
        "status" => Command::Status,
        "flush" => Command::Flush,
        "entries" => {
            let states = match map.get("filter") {
                None | Some(Value::Null) => None,
                Some(Value::Object(filter)) => states(filter, "states", id)?,
                Some(_) => return Err(malformed(Some(id), "\"filter\" must be an object")),
            };
            Command::Entries { states }
        }
        "retry" => {
            let target = match map.get("entry") {
                Some(Value::String(s)) if s == "failed" => RetryTarget::AllFailed,
                _ => RetryTarget::Entry(entry_id(map, id, "retry").map_err(|_| {
                    malformed(Some(id), "'retry' needs \"entry\": an entry id or \"failed\"")
                })?),
            };
            Command::Retry { target }
        }
        "cancel" => Command::Cancel {
            entry: entry_id(map, id, "cancel")?,
        },
        "clear" => clear_states(map, id)?,
        "user" => {
            let user = match map.get("user") {
                None => return Err(malformed(Some(id), "'user' needs \"user\": a string id, or null for no user")),
                Some(Value::Null) => None,
                Some(Value::String(user)) if !user.is_empty() && user.chars().count() <= MAX_USER_CHARS => {
                    Some(user.clone())
                }
                Some(other) => {
                    return Err(malformed(
                        Some(id),
                        format!("'user' needs \"user\": a string of 1 to {MAX_USER_CHARS} characters, or null; got {}", crate::core::config::type_name(other)),
                    ))
                }
            };
            let headers = match map.get("headers") {
                None | Some(Value::Null) => None,
                Some(headers) => Some(auth_headers(headers, id, "user")?),
            };
            Command::User { user, headers }
        }
        "logout" => {
            let discard = match map.get("discard") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(discard)) => *discard,
                Some(_) => return Err(malformed(Some(id), "'logout' takes \"discard\": true or false")),
            };
            Command::Logout { discard }
        }
        "auth" => {
            let headers = map
                .get("headers")
                .ok_or_else(|| malformed(Some(id), "'auth' needs \"headers\": an object of header names to values"))?;
            Command::Auth {
                headers: auth_headers(headers, id, "auth")?,
            }
        }
        "resolve" => {
            let entry = entry_id(map, id, "resolve")?;
            let using = match map.get("use").and_then(Value::as_str) {
                Some("local") => ResolveUse::Local,
                Some("remote") => ResolveUse::Remote,
                Some("merged") => ResolveUse::Merged,
                _ => {
                    return Err(malformed(
                        Some(id),
                        "'resolve' needs \"use\": \"local\", \"remote\" or \"merged\"",
                    ))
                }
            };
            let body = map.get("body").cloned();
            if using == ResolveUse::Merged && body.is_none() {
                return Err(malformed(Some(id), "'resolve' with \"use\": \"merged\" needs \"body\""));
            }
            Command::Resolve { entry, using, body }
        }
        "hello" => Command::Hello,
        other => {
            return Err(malformed(
                Some(id),
                format!(
                    "unknown outbox command '{other}'; expected one of status, entries, flush, retry, cancel, clear, auth, resolve, user, logout, hello"
                ),
            ))
        }
    };
    // Names this worker does not know are left aside: a newer shim may offer
    // more than this worker uses.
    let events = match map.get("features") {
        None => false,
        Some(Value::Array(features)) if features.iter().all(Value::is_string) => {
            features.iter().any(|feature| feature == FEATURE_EVENTS)
        }
        Some(_) => {
            return Err(malformed(
                Some(id),
                "\"features\" must be an array of feature names",
            ))
        }
    };
    Ok(Request {
        id,
        command,
        events,
    })
}

/// A successful reply.
pub fn reply_ok(id: u64, result: Value) -> Value {
    json!({"outbox": PROTOCOL_VERSION, "id": id, "type": "ok", "result": result})
}

/// An error reply.
pub fn reply_error(id: Option<u64>, message: &str) -> Value {
    json!({"outbox": PROTOCOL_VERSION, "id": id, "type": "error", "message": message})
}

/// Events the worker posts to every window client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Queue status changed.
    Status,
    /// A request was queued.
    Queued,
    /// An entry reached the server and was accepted.
    Sent,
    /// An entry became a dead letter, or a request could not be queued.
    Failed,
    /// An entry is in conflict and waits for a page.
    Conflict,
    /// A conflict was settled.
    Resolved,
    /// Replays are paused until a page sends fresh auth.
    AuthRequired,
    /// Entries were removed unsent at a page's request (`logout` with
    /// `discard`).
    Discarded,
}

impl EventKind {
    /// The event's name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Status => "status",
            EventKind::Queued => "queued",
            EventKind::Sent => "sent",
            EventKind::Failed => "failed",
            EventKind::Conflict => "conflict",
            EventKind::Resolved => "resolved",
            EventKind::AuthRequired => "auth-required",
            EventKind::Discarded => "discarded",
        }
    }
}

/// An event message.
pub fn event(kind: EventKind, detail: Value) -> Value {
    json!({"outbox": PROTOCOL_VERSION, "type": "event", "event": kind.as_str(), "detail": detail})
}

/// Several event messages as one `events` message, in order, for a page
/// whose shim reads envelopes: batch `seq` of the worker instance `worker`.
pub fn envelope(events: &[Value], worker: &str, seq: u64) -> Value {
    let events: Vec<Value> = events
        .iter()
        .map(|message| json!({"event": message["event"], "detail": message["detail"]}))
        .collect();
    json!({"outbox": PROTOCOL_VERSION, "type": "events", "worker": worker, "seq": seq, "events": events})
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(value: Value) -> Result<Command, MessageError> {
        decode_command(&value).map(|r| r.command)
    }

    #[test]
    fn every_command_decodes() {
        let cases = [
            (
                json!({"outbox": 1, "id": 1, "type": "status"}),
                Command::Status,
            ),
            (
                json!({"outbox": 1, "id": 1, "type": "flush"}),
                Command::Flush,
            ),
            (
                json!({"outbox": 1, "id": 1, "type": "entries"}),
                Command::Entries { states: None },
            ),
            (
                json!({"outbox": 1, "id": 1, "type": "entries", "filter": {"states": ["failed"]}}),
                Command::Entries {
                    states: Some(vec![State::Failed]),
                },
            ),
            (
                json!({"outbox": 1, "id": 1, "type": "retry", "entry": 4}),
                Command::Retry {
                    target: RetryTarget::Entry(4),
                },
            ),
            (
                json!({"outbox": 1, "id": 1, "type": "retry", "entry": "failed"}),
                Command::Retry {
                    target: RetryTarget::AllFailed,
                },
            ),
            (
                json!({"outbox": 1, "id": 1, "type": "cancel", "entry": 4}),
                Command::Cancel { entry: 4 },
            ),
            (
                json!({"outbox": 1, "id": 1, "type": "clear"}),
                Command::Clear {
                    states: None,
                    corrupt: true,
                },
            ),
            (
                json!({"outbox": 1, "id": 1, "type": "clear", "states": ["failed"]}),
                Command::Clear {
                    states: Some(vec![State::Failed]),
                    corrupt: false,
                },
            ),
            (
                json!({"outbox": 1, "id": 1, "type": "clear", "states": ["corrupt"]}),
                Command::Clear {
                    states: Some(vec![]),
                    corrupt: true,
                },
            ),
            (
                json!({"outbox": 1, "id": 1, "type": "user", "user": "alice"}),
                Command::User {
                    user: Some("alice".into()),
                    headers: None,
                },
            ),
            (
                json!({"outbox": 1, "id": 1, "type": "user", "user": "alice", "headers": {"Authorization": "Bearer a"}}),
                Command::User {
                    user: Some("alice".into()),
                    headers: Some(vec![("Authorization".into(), "Bearer a".into())]),
                },
            ),
            (
                json!({"outbox": 1, "id": 1, "type": "user", "user": null}),
                Command::User {
                    user: None,
                    headers: None,
                },
            ),
            (
                json!({"outbox": 1, "id": 1, "type": "logout"}),
                Command::Logout { discard: false },
            ),
            (
                json!({"outbox": 1, "id": 1, "type": "logout", "discard": true}),
                Command::Logout { discard: true },
            ),
            (
                json!({"outbox": 1, "id": 1, "type": "auth", "headers": {"Authorization": "Bearer t"}}),
                Command::Auth {
                    headers: vec![("Authorization".into(), "Bearer t".into())],
                },
            ),
            (
                json!({"outbox": 1, "id": 1, "type": "resolve", "entry": 2, "use": "merged", "body": {"a": 1}}),
                Command::Resolve {
                    entry: 2,
                    using: ResolveUse::Merged,
                    body: Some(json!({"a": 1})),
                },
            ),
            (
                json!({"outbox": 1, "id": 1, "type": "hello", "features": ["events"]}),
                Command::Hello,
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(decode(value.clone()), Ok(expected), "{value}");
        }
    }

    #[test]
    fn any_command_may_name_the_features_its_page_reads() {
        let events = |value: Value| decode_command(&value).map(|request| request.events);
        assert_eq!(
            events(json!({"outbox": 1, "id": 1, "type": "status"})),
            Ok(false)
        );
        assert_eq!(
            events(json!({"outbox": 1, "id": 1, "type": "flush", "features": ["events"]})),
            Ok(true)
        );
        assert_eq!(
            events(json!({"outbox": 1, "id": 1, "type": "hello", "features": ["later", "events"]})),
            Ok(true)
        );
        assert_eq!(
            events(json!({"outbox": 1, "id": 1, "type": "hello", "features": ["later"]})),
            Ok(false)
        );
        assert_eq!(
            events(json!({"outbox": 1, "id": 1, "type": "hello", "features": []})),
            Ok(false)
        );
    }

    #[test]
    fn an_envelope_keeps_each_event_and_their_order() {
        let events = [
            event(EventKind::Sent, json!({"entry": {"id": 1}})),
            event(EventKind::Queued, json!({"entry": {"id": 2}})),
            event(EventKind::Status, json!({"total": 1})),
        ];
        assert_eq!(
            envelope(&events, "w", 7),
            json!({"outbox": 1, "type": "events", "worker": "w", "seq": 7, "events": [
                {"event": "sent", "detail": {"entry": {"id": 1}}},
                {"event": "queued", "detail": {"entry": {"id": 2}}},
                {"event": "status", "detail": {"total": 1}},
            ]})
        );
    }

    #[test]
    fn messages_without_the_marker_are_not_ours() {
        for value in [
            json!({"type": "status", "id": 1}),
            json!("hello"),
            json!(null),
            json!([1]),
        ] {
            assert_eq!(decode(value), Err(MessageError::NotOutbox));
        }
    }

    #[test]
    fn malformed_commands_are_errors_with_the_id_when_readable() {
        let cases = [
            (
                json!({"outbox": 2, "id": 5, "type": "status"}),
                Some(5),
                "unsupported outbox protocol version 2",
            ),
            (json!({"outbox": 1, "type": "status"}), None, "needs \"id\""),
            (
                json!({"outbox": 1, "id": -1, "type": "status"}),
                None,
                "needs \"id\"",
            ),
            (json!({"outbox": 1, "id": 3}), Some(3), "needs \"type\""),
            (
                json!({"outbox": 1, "id": 3, "type": "explode"}),
                Some(3),
                "unknown outbox command 'explode'",
            ),
            (
                json!({"outbox": 1, "id": 3, "type": "cancel"}),
                Some(3),
                "'cancel' needs \"entry\"",
            ),
            (
                json!({"outbox": 1, "id": 3, "type": "hello", "features": "events"}),
                Some(3),
                "\"features\" must be an array",
            ),
            (
                json!({"outbox": 1, "id": 3, "type": "status", "features": ["events", 2]}),
                Some(3),
                "\"features\" must be an array",
            ),
            (
                json!({"outbox": 1, "id": 3, "type": "cancel", "entry": "x"}),
                Some(3),
                "'cancel' needs \"entry\"",
            ),
            (
                json!({"outbox": 1, "id": 3, "type": "retry", "entry": 0}),
                Some(3),
                "'retry' needs \"entry\"",
            ),
            (
                json!({"outbox": 1, "id": 3, "type": "clear", "states": ["gone"]}),
                Some(3),
                "not a state",
            ),
            (
                json!({"outbox": 1, "id": 3, "type": "auth", "headers": {"A": 1}}),
                Some(3),
                "must be a string",
            ),
            (
                json!({"outbox": 1, "id": 3, "type": "auth", "headers": {"bad name": "x"}}),
                Some(3),
                "is not valid",
            ),
            (
                json!({"outbox": 1, "id": 3, "type": "auth", "headers": {"X-A": "t\r\nCookie: x"}}),
                Some(3),
                "'auth' header 'X-A' has a value no request can carry",
            ),
            (
                json!({"outbox": 1, "id": 3, "type": "auth", "headers": {"X-A": "\u{2603}"}}),
                Some(3),
                "no request can carry",
            ),
            (
                json!({"outbox": 1, "id": 3, "type": "resolve", "entry": 1, "use": "merged"}),
                Some(3),
                "needs \"body\"",
            ),
            (
                json!({"outbox": 1, "id": 3, "type": "entries", "filter": 7}),
                Some(3),
                "\"filter\" must be an object",
            ),
            (
                json!({"outbox": 1, "id": 3, "type": "user"}),
                Some(3),
                "'user' needs \"user\"",
            ),
            (
                json!({"outbox": 1, "id": 3, "type": "user", "user": ""}),
                Some(3),
                "a string of 1 to 256 characters",
            ),
            (
                json!({"outbox": 1, "id": 3, "type": "user", "user": "x".repeat(257)}),
                Some(3),
                "a string of 1 to 256 characters",
            ),
            (
                json!({"outbox": 1, "id": 3, "type": "user", "user": 7}),
                Some(3),
                "got a number",
            ),
            (
                json!({"outbox": 1, "id": 3, "type": "user", "user": "a", "headers": {"X": "a\nb"}}),
                Some(3),
                "'user' header 'X' has a value no request can carry",
            ),
            (
                json!({"outbox": 1, "id": 3, "type": "logout", "discard": "yes"}),
                Some(3),
                "'logout' takes \"discard\"",
            ),
            (
                json!({"outbox": 1, "id": 3, "type": "clear", "states": ["corrupt", "gone"]}),
                Some(3),
                "not a state",
            ),
        ];
        for (value, id, text) in cases {
            match decode_command(&value) {
                Err(MessageError::Malformed { id: got, message }) => {
                    assert_eq!(got, id, "{value}");
                    assert!(message.contains(text), "{value}: {message}");
                }
                other => panic!("{value}: {other:?}"),
            }
        }
    }

    #[test]
    fn replies_and_events_carry_the_marker() {
        assert_eq!(reply_ok(3, json!(1))["outbox"], 1);
        assert_eq!(reply_error(None, "x")["id"], Value::Null);
        let message = event(EventKind::AuthRequired, json!({}));
        assert_eq!(message["event"], "auth-required");
        assert_eq!(message["type"], "event");
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_json_never_panics(text in ".{0,120}") {
            if let Ok(value) = serde_json::from_str::<Value>(&text) {
                let _ = decode_command(&value);
            }
        }

        #[test]
        fn decoding_shaped_messages_never_panics(
            version in prop_oneof![Just(json!(1)), Just(json!(2)), Just(json!("1")), Just(Value::Null)],
            id in prop_oneof![Just(json!(1)), Just(json!(-1)), Just(json!(1.5)), Just(json!("x"))],
            kind in prop::sample::select(vec!["status", "entries", "flush", "retry", "cancel", "clear", "auth", "resolve", "user", "logout", "x"]),
            extra in prop_oneof![Just(json!(null)), Just(json!(1)), Just(json!("failed")), Just(json!({"a": 1})), Just(json!(["failed"]))],
        ) {
            let message = json!({"outbox": version, "id": id, "type": kind, "entry": extra, "filter": extra,
                "states": extra, "headers": extra, "use": extra, "body": extra, "user": extra, "discard": extra});
            let _ = decode_command(&message);
        }
    }
}
