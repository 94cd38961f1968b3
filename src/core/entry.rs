//! A queued mutation and its stored-record format.
//!
//! The record holds everything but the body, which the store keeps beside it
//! as bytes under the same id, so the queue can be loaded without the bodies.
//! Records are JSON with a format version `v`; [`decode`] checks it, reads
//! records of an older version by upgrading them, and returns a
//! [`DecodeError`] for anything it cannot read, never panicking. Records are
//! read field by field (no serde derive): the decoder is a large part of a
//! small wasm otherwise.
//!
//! Format versions:
//! - 1: the first format;
//! - 2: adds `user`, the user the page had set when the entry was stored
//!   (absent: none). A version 1 record reads as an entry with no user.

use crate::core::config::type_name;
use crate::core::lifecycle::State;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::fmt;

/// An entry's id, given by the store in enqueue order.
pub type EntryId = u64;

/// The version of the stored-record format that [`encode`] writes.
pub const RECORD_VERSION: u64 = 2;

/// The oldest stored-record format that [`decode`] still reads (upgrading it).
pub const OLDEST_RECORD_VERSION: u64 = 1;

/// How urgently an entry goes out; higher first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Goes after everything else.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Goes before normal.
    High,
    /// Goes first.
    Critical,
}

impl Priority {
    /// Every priority, lowest first.
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Critical,
    ];

    /// The name used in config and protocol.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }

    /// Reads a priority name.
    pub fn parse(name: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

/// The version of the entity the page last saw, used to detect conflicts.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BaseVersion {
    /// The entity's ETag.
    pub etag: Option<String>,
    /// Its Last-Modified, in ms since the epoch.
    pub last_modified_ms: Option<u64>,
    /// Its JSON body.
    pub body: Option<Value>,
}

/// Why an entry is a dead letter.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Failure {
    /// The server answered with a final status.
    HttpStatus {
        /// The status.
        status: u16,
    },
    /// The retry policy's maximum attempts were used up.
    MaxAttempts,
    /// The entry was older than the retention time.
    Expired,
    /// The request could not be rebuilt or sent at all.
    Invalid {
        /// What was wrong.
        message: String,
    },
}

/// What a conflict was about, kept until a page settles it.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConflictInfo {
    /// The status that reported it (409 or 412).
    pub status: u16,
    /// The remote entity, when known.
    pub remote: Option<Value>,
    /// The remote ETag, when known.
    pub remote_etag: Option<String>,
    /// JSON pointers that both sides changed.
    pub pointers: Vec<String>,
    /// Why it was left to the page.
    pub reason: String,
}

/// One queued mutation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// The entry's id.
    pub id: EntryId,
    /// HTTP method, upper case.
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// Headers to send again (never Authorization, Cookie or Proxy-Authorization).
    pub headers: Vec<(String, String)>,
    /// The request's credentials mode (`same-origin`, `include`, `omit`).
    pub credentials: String,
    /// The Idempotency-Key every attempt carries.
    pub idempotency_key: String,
    /// Index of the route that matched, at enqueue time.
    pub route: usize,
    /// The route's entity kind.
    pub kind: Option<String>,
    /// Entries with the same entity key keep their order.
    pub entity: Option<String>,
    /// The entity version this mutation was made against.
    pub base: Option<BaseVersion>,
    /// How urgent it is.
    pub priority: Priority,
    /// Entries that must be done before this one is sent.
    pub depends_on: Vec<EntryId>,
    /// Lifecycle state.
    pub state: State,
    /// Attempts that count against the maximum.
    pub attempts: u32,
    /// Attempts that failed only because the network was unreachable.
    pub offline_attempts: u32,
    /// When the page made the request (ms since the epoch).
    pub created_at: u64,
    /// When the last attempt started.
    pub last_attempt_at: Option<u64>,
    /// Not to be sent before this time.
    pub next_attempt_at: Option<u64>,
    /// While in flight: the lease's end, after which another drain may take it.
    pub lease_until: Option<u64>,
    /// True when an earlier attempt may have been applied by the server
    /// (it timed out or its connection dropped).
    pub uncertain: bool,
    /// The last error, in words.
    pub last_error: Option<String>,
    /// Why it failed, when failed.
    pub failure: Option<Failure>,
    /// The conflict, when in conflict.
    pub conflict: Option<ConflictInfo>,
    /// Body length in bytes.
    pub body_bytes: u64,
    /// Re-sends after automatic conflict resolutions so far.
    pub conflict_resends: u32,
    /// The user the page had set (`setUser`) when the entry was stored; an
    /// entry of a user who is not the current one is held, never sent with
    /// another user's credentials. None: stored without a user, never held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl Entry {
    /// A new pending entry; the id is given by the store.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        method: &str,
        url: &str,
        idempotency_key: &str,
        route: usize,
        created_at: u64,
    ) -> Entry {
        Entry {
            id: 0,
            method: method.to_ascii_uppercase(),
            url: url.to_owned(),
            headers: Vec::new(),
            credentials: "same-origin".to_owned(),
            idempotency_key: idempotency_key.to_owned(),
            route,
            kind: None,
            entity: None,
            base: None,
            priority: Priority::Normal,
            depends_on: Vec::new(),
            state: State::Pending,
            attempts: 0,
            offline_attempts: 0,
            created_at,
            last_attempt_at: None,
            next_attempt_at: None,
            lease_until: None,
            uncertain: false,
            last_error: None,
            failure: None,
            conflict: None,
            body_bytes: 0,
            conflict_resends: 0,
            user: None,
        }
    }

    /// True if the entry belongs to a user other than `current`: it waits
    /// until that user is current again.
    pub fn held_for(&self, current: Option<&str>) -> bool {
        self.user
            .as_deref()
            .is_some_and(|user| Some(user) != current)
    }

    /// What pages see of an entry (no headers, no body).
    pub fn view(&self) -> Value {
        json!({
            "id": self.id,
            "method": self.method,
            "url": self.url,
            "kind": self.kind,
            "entity": self.entity,
            "priority": self.priority,
            "state": self.state,
            "attempts": self.attempts,
            "createdAt": self.created_at,
            "lastAttemptAt": self.last_attempt_at,
            "nextAttemptAt": self.next_attempt_at,
            "lastError": self.last_error,
            "failure": self.failure,
            "dependsOn": self.depends_on,
            "idempotencyKey": self.idempotency_key,
            "bodyBytes": self.body_bytes,
            "conflict": self.conflict,
            "user": self.user,
        })
    }

    /// A new Idempotency-Key for a re-send with a different body or
    /// precondition, derived from the entry's own so a server can tell the
    /// two apart and still see they belong together.
    pub fn rekey(&mut self) {
        let key = format!(
            "{}.{}",
            self.idempotency_key.split('.').next().unwrap_or_default(),
            self.conflict_resends + 1
        );
        self.set_header("Idempotency-Key", &key);
        self.idempotency_key = key;
    }

    /// Sets a stored header, replacing any of the same name.
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
    }

    /// The value of a stored header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// The path of an absolute URL, without query or fragment.
pub fn path_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(url, |i| &url[i + 3..]);
    let path = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
    let end = path.find(['?', '#']).unwrap_or(path.len());
    &path[..end]
}

/// Headers never written to storage: credentials must come fresh at replay.
pub const NEVER_STORED: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

/// Why a stored record could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not JSON at all.
    NotJson(String),
    /// JSON, but with no format version.
    NoVersion,
    /// Written by a format this code does not know.
    UnknownVersion(u64),
    /// The right version, but a field is missing or of the wrong type.
    Invalid(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::NotJson(error) => write!(f, "stored record is not JSON: {error}"),
            DecodeError::NoVersion => f.write_str("stored record has no format version 'v'"),
            DecodeError::UnknownVersion(v) if *v > RECORD_VERSION => write!(
                f,
                "stored record has format version {v}, written by a newer outbox; this one reads versions {OLDEST_RECORD_VERSION} to {RECORD_VERSION}"
            ),
            DecodeError::UnknownVersion(v) => write!(
                f,
                "stored record has format version {v}, which no outbox wrote; this one reads versions {OLDEST_RECORD_VERSION} to {RECORD_VERSION}"
            ),
            DecodeError::Invalid(error) => write!(f, "stored record is invalid: {error}"),
        }
    }
}

impl std::error::Error for DecodeError {}

#[derive(Serialize)]
struct RecordOut<'a> {
    v: u64,
    #[serde(flatten)]
    entry: &'a Entry,
}

/// The deepest nesting of a JSON value that a record keeps (`base.body`,
/// `conflict.remote`). serde_json reads at most 127 levels, and a record puts
/// these values two levels down: a deeper one would make the whole record
/// unreadable, so [`encode`] leaves it out (a merge then goes to the page).
pub const MAX_KEPT_VALUE_DEPTH: usize = 125;

/// Encodes an entry as a stored record that [`decode`] can read back.
pub fn encode(entry: &Entry) -> String {
    let too_deep =
        |value: Option<&Value>| value.is_some_and(|v| !nests_within(v, MAX_KEPT_VALUE_DEPTH));
    let base_too_deep = too_deep(entry.base.as_ref().and_then(|base| base.body.as_ref()));
    let remote_too_deep = too_deep(entry.conflict.as_ref().and_then(|c| c.remote.as_ref()));
    let kept;
    let entry = if base_too_deep || remote_too_deep {
        let mut copy = entry.clone();
        if let (true, Some(base)) = (base_too_deep, copy.base.as_mut()) {
            base.body = None;
        }
        if let (true, Some(conflict)) = (remote_too_deep, copy.conflict.as_mut()) {
            conflict.remote = None;
        }
        kept = copy;
        &kept
    } else {
        entry
    };
    // Serializing plain data into a String cannot fail.
    serde_json::to_string(&RecordOut {
        v: RECORD_VERSION,
        entry,
    })
    .unwrap_or_default()
}

/// True if `value` nests arrays and objects at most `levels` deep (a scalar
/// is 0 deep). Iterative, so any depth is measured without recursion.
fn nests_within(value: &Value, levels: usize) -> bool {
    let mut stack = vec![(value, 0)];
    while let Some((value, depth)) = stack.pop() {
        match value {
            Value::Array(_) | Value::Object(_) if depth == levels => return false,
            Value::Array(items) => stack.extend(items.iter().map(|item| (item, depth + 1))),
            Value::Object(map) => stack.extend(map.values().map(|item| (item, depth + 1))),
            _ => {}
        }
    }
    true
}

/// Decodes a stored record, upgrading one of an older format version.
pub fn decode(text: &str) -> Result<Entry, DecodeError> {
    let mut value: Value =
        serde_json::from_str(text).map_err(|error| DecodeError::NotJson(error.to_string()))?;
    let version = match value.get("v") {
        None => return Err(DecodeError::NoVersion),
        Some(v) => v.as_u64().ok_or(DecodeError::NoVersion)?,
    };
    match version {
        RECORD_VERSION => {}
        1 => upgrade_from_1(&mut value)?,
        other => return Err(DecodeError::UnknownVersion(other)),
    }
    // The version field is not the entry's; the reader skips it.
    read_entry(&Fields::of(&value, "")?)
}

/// Decodes a stored base version (the JSON text of a [`BaseVersion`]).
pub fn decode_base(text: &str) -> Result<BaseVersion, DecodeError> {
    let value: Value =
        serde_json::from_str(text).map_err(|error| DecodeError::NotJson(error.to_string()))?;
    read_base(&Fields::of(&value, "base")?)
}

fn read_entry(record: &Fields) -> Result<Entry, DecodeError> {
    let headers = record.items(
        "headers",
        "[name, value] pairs of strings",
        |pair| match pair.as_array().map(Vec::as_slice) {
            Some([Value::String(name), Value::String(value)]) => {
                Some((name.clone(), value.clone()))
            }
            _ => None,
        },
    )?;
    let depends_on = record.items("dependsOn", "entry ids", Value::as_u64)?;
    Ok(Entry {
        id: record.number("id")?,
        method: record.string("method")?,
        url: record.string("url")?,
        headers,
        credentials: record.string("credentials")?,
        idempotency_key: record.string("idempotencyKey")?,
        route: record.number("route")?,
        kind: record.optional_string("kind")?,
        entity: record.optional_string("entity")?,
        base: record.optional_object("base", read_base)?,
        priority: record.named("priority", Priority::parse)?,
        depends_on,
        state: record.named("state", State::parse)?,
        attempts: record.number("attempts")?,
        offline_attempts: record.number("offlineAttempts")?,
        created_at: record.number("createdAt")?,
        last_attempt_at: record.optional_number("lastAttemptAt")?,
        next_attempt_at: record.optional_number("nextAttemptAt")?,
        lease_until: record.optional_number("leaseUntil")?,
        uncertain: {
            let value = record.required("uncertain")?;
            value
                .as_bool()
                .ok_or_else(|| record.wrong("uncertain", "a boolean", value))?
        },
        last_error: record.optional_string("lastError")?,
        failure: record.optional_object("failure", read_failure)?,
        conflict: record.optional_object("conflict", read_conflict)?,
        body_bytes: record.number("bodyBytes")?,
        // Added after version 1 without a format change: absent reads as 0.
        conflict_resends: if record.map.contains_key("conflictResends") {
            record.number("conflictResends")?
        } else {
            0
        },
        user: record.optional_string("user")?,
    })
}

fn read_base(base: &Fields) -> Result<BaseVersion, DecodeError> {
    Ok(BaseVersion {
        etag: base.optional_string("etag")?,
        last_modified_ms: base.optional_number("lastModifiedMs")?,
        body: base.optional("body").cloned(),
    })
}

fn read_failure(failure: &Fields) -> Result<Failure, DecodeError> {
    let reason = failure.string("reason")?;
    Ok(match reason.as_str() {
        "http_status" => Failure::HttpStatus {
            status: failure.number("status")?,
        },
        "max_attempts" => Failure::MaxAttempts,
        "expired" => Failure::Expired,
        "invalid" => Failure::Invalid {
            message: failure.optional_string("message")?.unwrap_or_default(),
        },
        other => {
            return Err(DecodeError::Invalid(format!(
                "unknown failure reason `{other}`"
            )))
        }
    })
}

fn read_conflict(conflict: &Fields) -> Result<ConflictInfo, DecodeError> {
    let pointers = conflict.items("pointers", "JSON pointers", |pointer| {
        pointer.as_str().map(str::to_owned)
    })?;
    Ok(ConflictInfo {
        status: conflict.number("status")?,
        remote: conflict.optional("remote").cloned(),
        remote_etag: conflict.optional_string("remoteEtag")?,
        pointers,
        reason: conflict.string("reason")?,
    })
}

/// The fields of one object in a stored record, read by name; errors name
/// the field (`base.etag`). A required field that is absent is an error
/// (`missing field`); an optional one may be absent or null.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    /// The object's place in the record: "" for the record itself.
    within: &'static str,
}

impl<'a> Fields<'a> {
    fn of(value: &'a Value, within: &'static str) -> Result<Fields<'a>, DecodeError> {
        match value {
            Value::Object(map) => Ok(Fields { map, within }),
            other => Err(DecodeError::Invalid(format!(
                "{} must be an object, not {}",
                if within.is_empty() {
                    "a record"
                } else {
                    within
                },
                type_name(other)
            ))),
        }
    }

    fn name(&self, field: &str) -> String {
        match self.within {
            "" => field.to_owned(),
            within => format!("{within}.{field}"),
        }
    }

    fn wrong(&self, field: &str, expected: &str, found: &Value) -> DecodeError {
        DecodeError::Invalid(format!(
            "field `{}` must be {expected}, not {}",
            self.name(field),
            type_name(found)
        ))
    }

    fn required(&self, field: &str) -> Result<&'a Value, DecodeError> {
        self.map
            .get(field)
            .ok_or_else(|| DecodeError::Invalid(format!("missing field `{}`", self.name(field))))
    }

    /// The field, unless it is absent or null.
    fn optional(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field).filter(|value| !value.is_null())
    }

    fn number<T: TryFrom<u64>>(&self, field: &str) -> Result<T, DecodeError> {
        self.read_number(field, self.required(field)?)
    }

    fn optional_number(&self, field: &str) -> Result<Option<u64>, DecodeError> {
        self.optional(field)
            .map(|value| self.read_number(field, value))
            .transpose()
    }

    fn read_number<T: TryFrom<u64>>(&self, field: &str, value: &Value) -> Result<T, DecodeError> {
        value
            .as_u64()
            .and_then(|number| T::try_from(number).ok())
            .ok_or_else(|| self.wrong(field, "a whole number in range", value))
    }

    fn string(&self, field: &str) -> Result<String, DecodeError> {
        self.read_string(field, self.required(field)?)
    }

    fn optional_string(&self, field: &str) -> Result<Option<String>, DecodeError> {
        self.optional(field)
            .map(|value| self.read_string(field, value))
            .transpose()
    }

    fn read_string(&self, field: &str, value: &Value) -> Result<String, DecodeError> {
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| self.wrong(field, "a string", value))
    }

    /// A field holding one of the names `parse` knows.
    fn named<T>(&self, field: &str, parse: fn(&str) -> Option<T>) -> Result<T, DecodeError> {
        match self.required(field)? {
            Value::String(name) => parse(name).ok_or_else(|| {
                DecodeError::Invalid(format!(
                    "field `{}`: unknown name `{name}`",
                    self.name(field)
                ))
            }),
            other => Err(self.wrong(field, "a string", other)),
        }
    }

    /// A list field whose every item `read` takes; `of` names the items.
    fn items<T>(
        &self,
        field: &str,
        of: &str,
        read: fn(&Value) -> Option<T>,
    ) -> Result<Vec<T>, DecodeError> {
        let value = self.required(field)?;
        let Some(list) = value.as_array() else {
            return Err(self.wrong(field, &format!("an array of {of}"), value));
        };
        list.iter()
            .map(|item| read(item).ok_or_else(|| self.wrong(field, of, item)))
            .collect()
    }

    fn optional_object<T>(
        &self,
        field: &'static str,
        read: fn(&Fields) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        self.optional(field)
            .map(|value| read(&Fields::of(value, field)?))
            .transpose()
    }
}

/// Version 1 → 2: version 1 had no users, so the entry has none.
fn upgrade_from_1(value: &mut Value) -> Result<(), DecodeError> {
    let map = value
        .as_object_mut()
        .ok_or_else(|| DecodeError::Invalid("a version 1 record must be an object".into()))?;
    if map.contains_key("user") {
        return Err(DecodeError::Invalid(
            "a version 1 record has no field `user`".into(),
        ));
    }
    Ok(())
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Entry {
        let mut entry = Entry::new("put", "http://127.0.0.1/api/concepts/7", "k-1", 0, 1_000);
        entry.id = 7;
        entry.headers = vec![("content-type".into(), "application/json".into())];
        entry.kind = Some("concept".into());
        entry.entity = Some("/api/concepts/7".into());
        entry.base = Some(BaseVersion {
            etag: Some("\"3\"".into()),
            last_modified_ms: Some(5_000),
            body: Some(json!({"name": "a"})),
        });
        entry.depends_on = vec![3, 4];
        entry.failure = Some(Failure::HttpStatus { status: 400 });
        entry
    }

    #[test]
    fn a_record_round_trips() {
        let entry = sample();
        let text = encode(&entry);
        assert!(text.starts_with("{\"v\":2,"));
        assert_eq!(decode(&text), Ok(entry));
    }

    /// A record as the first format (version 1) wrote it, by hand.
    const VERSION_1_RECORD: &str = r#"{"v":1,"id":12,"method":"PUT","url":"http://127.0.0.1:8080/api/concepts/7",
        "headers":[["content-type","application/json"],["Idempotency-Key","9b2c"]],"credentials":"same-origin",
        "idempotencyKey":"9b2c","route":0,"kind":"concept","entity":"/api/concepts/7","base":null,
        "priority":"high","dependsOn":[3],"state":"waiting_retry","attempts":2,"offlineAttempts":1,
        "createdAt":1764426000000,"lastAttemptAt":1764426001000,"nextAttemptAt":1764426005000,
        "leaseUntil":null,"uncertain":true,"lastError":"HTTP 503","failure":null,"conflict":null,
        "bodyBytes":17}"#;

    #[test]
    fn an_older_record_is_upgraded_on_read() {
        let entry = decode(VERSION_1_RECORD).expect("a version 1 record reads");
        assert_eq!(entry.id, 12);
        assert_eq!(entry.state, State::WaitingRetry);
        assert_eq!(entry.priority, Priority::High);
        assert_eq!(entry.depends_on, vec![3]);
        assert_eq!(entry.attempts, 2);
        assert_eq!(entry.next_attempt_at, Some(1_764_426_005_000));
        assert_eq!(entry.header("idempotency-key"), Some("9b2c"));
        assert_eq!(entry.conflict_resends, 0, "absent in version 1");
        assert_eq!(entry.user, None, "version 1 had no users");
        assert!(
            !entry.held_for(Some("alice")),
            "an entry with no user is never held"
        );
        // Written again, it is a current record that reads back the same.
        let text = encode(&entry);
        assert!(text.starts_with("{\"v\":2,"), "{text}");
        assert_eq!(decode(&text), Ok(entry));
        // Version 1 never had a user: one claiming it is damaged.
        let forged = VERSION_1_RECORD.replacen("\"id\":12", "\"id\":12,\"user\":\"mallory\"", 1);
        assert!(matches!(decode(&forged), Err(DecodeError::Invalid(_))));
        // A version 1 record missing a field is invalid, not upgraded.
        let broken = VERSION_1_RECORD.replacen("\"method\":\"PUT\",", "", 1);
        assert!(matches!(decode(&broken), Err(DecodeError::Invalid(_))));
    }

    #[test]
    fn a_newer_record_is_refused_with_a_clear_message() {
        let newer = VERSION_1_RECORD.replacen("\"v\":1", "\"v\":3", 1);
        let error = decode(&newer).unwrap_err();
        assert_eq!(error, DecodeError::UnknownVersion(3));
        assert_eq!(
            error.to_string(),
            "stored record has format version 3, written by a newer outbox; this one reads versions 1 to 2"
        );
    }

    #[test]
    fn users_are_stored_and_hold_entries_of_others() {
        let mut entry = sample();
        entry.user = Some("alice".into());
        assert_eq!(decode(&encode(&entry)), Ok(entry.clone()));
        assert!(!entry.held_for(Some("alice")));
        assert!(entry.held_for(Some("bob")));
        assert!(entry.held_for(None), "after logout nobody's entries go out");
        assert_eq!(entry.view()["user"], "alice");
        assert_eq!(sample().view()["user"], Value::Null);
    }

    #[test]
    fn method_is_upper_case() {
        assert_eq!(sample().method, "PUT");
    }

    #[test]
    fn corrupt_records_are_clear_errors() {
        assert!(matches!(decode("{not json"), Err(DecodeError::NotJson(_))));
        assert_eq!(decode("{}"), Err(DecodeError::NoVersion));
        assert_eq!(decode("{\"v\":\"1\"}"), Err(DecodeError::NoVersion));
        assert_eq!(decode("{\"v\":9}"), Err(DecodeError::UnknownVersion(9)));
        assert_eq!(decode("{\"v\":0}"), Err(DecodeError::UnknownVersion(0)));
        let error = decode("{\"v\":2,\"id\":1}").unwrap_err();
        assert!(matches!(error, DecodeError::Invalid(_)));
        assert!(error.to_string().contains("missing field"), "{error}");
        let mut value: Value = serde_json::from_str(&encode(&sample())).unwrap();
        value["state"] = json!("flying");
        assert!(matches!(
            decode(&value.to_string()),
            Err(DecodeError::Invalid(_))
        ));
    }

    /// The message of decoding the sample record with `change` made to it.
    fn invalid_after(change: impl FnOnce(&mut Value)) -> String {
        let mut value: Value = serde_json::from_str(&encode(&sample())).unwrap();
        change(&mut value);
        match decode(&value.to_string()) {
            Err(DecodeError::Invalid(message)) => message,
            other => panic!("expected an invalid record, got {other:?}"),
        }
    }

    #[test]
    fn an_invalid_field_is_named_in_the_error() {
        assert_eq!(
            invalid_after(|v| v["state"] = json!("flying")),
            "field `state`: unknown name `flying`"
        );
        assert_eq!(
            invalid_after(|v| v["attempts"] = json!(-1)),
            "field `attempts` must be a whole number in range, not a number"
        );
        assert_eq!(
            invalid_after(|v| v["attempts"] = json!(u64::from(u32::MAX) + 1)),
            "field `attempts` must be a whole number in range, not a number"
        );
        assert_eq!(
            invalid_after(|v| v["base"]["etag"] = json!(3)),
            "field `base.etag` must be a string, not a number"
        );
        assert_eq!(
            invalid_after(|v| v["base"] = json!([])),
            "base must be an object, not an array"
        );
        assert_eq!(
            invalid_after(|v| v["headers"] = json!([["a", "b", "c"]])),
            "field `headers` must be [name, value] pairs of strings, not an array"
        );
        assert_eq!(
            invalid_after(|v| v["failure"] = json!({"reason": "http_status"})),
            "missing field `failure.status`"
        );
        assert_eq!(
            invalid_after(|v| v["failure"] = json!({"reason": "lost"})),
            "unknown failure reason `lost`"
        );
        assert_eq!(
            invalid_after(|v| v["uncertain"] = Value::Null),
            "field `uncertain` must be a boolean, not null"
        );
        assert_eq!(
            invalid_after(|v| v["conflictResends"] = Value::Null),
            "field `conflictResends` must be a whole number in range, not null"
        );
    }

    #[test]
    fn optional_fields_may_be_absent_or_null() {
        let mut value: Value = serde_json::from_str(&encode(&sample())).unwrap();
        let map = value.as_object_mut().unwrap();
        map.remove("conflictResends");
        map.remove("kind");
        map.insert("entity".into(), Value::Null);
        map.insert("base".into(), json!({"body": null}));
        let entry = decode(&value.to_string()).unwrap();
        assert_eq!(entry.conflict_resends, 0);
        assert_eq!((entry.kind, entry.entity), (None, None));
        assert_eq!(entry.base, Some(BaseVersion::default()));
    }

    #[test]
    fn base_versions_round_trip_and_bad_ones_are_errors() {
        let base = sample().base.unwrap();
        let text = serde_json::to_string(&base).unwrap();
        assert_eq!(decode_base(&text), Ok(base));
        assert!(matches!(decode_base("[1"), Err(DecodeError::NotJson(_))));
        assert_eq!(
            decode_base("{\"lastModifiedMs\":\"yesterday\"}"),
            Err(DecodeError::Invalid(
                "field `base.lastModifiedMs` must be a whole number in range, not a string".into()
            ))
        );
    }

    #[test]
    fn values_too_deep_to_read_back_are_left_out_of_the_record() {
        let nested = |levels: usize| (0..levels).fold(json!(1), |inner, _| json!([inner]));
        let mut entry = sample();
        entry.base.as_mut().unwrap().body = Some(nested(MAX_KEPT_VALUE_DEPTH));
        entry.conflict = Some(ConflictInfo {
            remote: Some(nested(MAX_KEPT_VALUE_DEPTH)),
            ..ConflictInfo::default()
        });
        assert_eq!(decode(&encode(&entry)), Ok(entry.clone()));
        // One level more parses on its own but not inside a record.
        let deeper = nested(MAX_KEPT_VALUE_DEPTH + 1);
        assert!(serde_json::from_str::<Value>(&deeper.to_string()).is_ok());
        entry.base.as_mut().unwrap().body = Some(deeper.clone());
        entry.conflict.as_mut().unwrap().remote = Some(deeper);
        let mut kept = entry.clone();
        kept.base.as_mut().unwrap().body = None;
        kept.conflict.as_mut().unwrap().remote = None;
        assert_eq!(decode(&encode(&entry)), Ok(kept));
    }

    #[test]
    fn paths_of_urls() {
        assert_eq!(
            path_of("http://127.0.0.1:8080/api/concepts/7?x=1#f"),
            "/api/concepts/7"
        );
        assert_eq!(path_of("http://host"), "/");
        assert_eq!(path_of("/relative/path"), "/relative/path");
    }

    #[test]
    fn rekeying_derives_a_new_key_from_the_first() {
        let mut entry = sample();
        entry.headers.push(("Idempotency-Key".into(), "k-1".into()));
        entry.rekey();
        assert_eq!(entry.idempotency_key, "k-1.1");
        assert_eq!(entry.header("idempotency-key"), Some("k-1.1"));
        entry.conflict_resends = 1;
        entry.rekey();
        assert_eq!(entry.idempotency_key, "k-1.2");
        assert_eq!(
            entry
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("idempotency-key"))
                .count(),
            1
        );
    }

    #[test]
    fn view_has_no_headers() {
        let view = sample().view();
        assert_eq!(view["state"], "pending");
        assert_eq!(
            view["failure"],
            json!({"reason": "http_status", "status": 400})
        );
        assert!(view.get("headers").is_none());
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_text_never_panics(text in ".{0,200}") {
            let _ = decode(&text);
        }

        #[test]
        fn decoding_mutated_records_never_panics(cut in 0usize..400, byte in any::<u8>()) {
            let mut bytes = encode(&sample()).into_bytes();
            if !bytes.is_empty() {
                let at = cut % bytes.len();
                bytes[at] = byte;
            }
            let _ = decode(&String::from_utf8_lossy(&bytes));
        }
    }
}
