//! The four fuzz targets and the properties each input must have.

use super::inputs::{self, depth};
use super::Target;
use crate::core::config::{Config, MUTATION_METHODS};
use crate::core::conflict::Strategy as ConflictStrategy;
use crate::core::entry::{
    self, DecodeError, Entry, MAX_KEPT_VALUE_DEPTH, OLDEST_RECORD_VERSION, RECORD_VERSION,
};
use crate::core::merge::{apply_merge_patch, three_way_merge, MergeOutcome};
use crate::core::protocol::{
    decode_command, is_outbox_message, Command, MessageError, Request, ResolveUse, RetryTarget,
    PROTOCOL_VERSION,
};
use proptest::prelude::*;
use serde_json::{json, Value};

/// Reads JSON text as the worker does (`JSON.stringify`, then serde_json).
/// `None` when serde_json refuses it: the worker never passes such input on.
fn parse_json(bytes: &[u8]) -> Option<Value> {
    let parsed = std::str::from_utf8(bytes).map(serde_json::from_str::<Value>);
    match parsed {
        Ok(Ok(value)) => Some(value),
        _ => None,
    }
}

fn ensure(holds: bool, property: impl FnOnce() -> String) -> Result<(), String> {
    if holds {
        Ok(())
    } else {
        Err(property())
    }
}

// ---------------------------------------------------------------- records

/// What the store hands to [`entry::decode`]: text that should be a record
/// (as bytes, since a corrupt store may hold anything), or an entry the
/// worker stores, which must come back as it went in.
#[derive(Debug, Clone)]
pub(super) enum RecordInput {
    Text(Vec<u8>),
    Entry(Box<Entry>),
}

pub(super) struct Record;

impl Target for Record {
    type Input = RecordInput;
    const NAME: &'static str = "record";

    fn inputs() -> BoxedStrategy<RecordInput> {
        let text = RecordInput::Text;
        let soup = prop::collection::vec(prop::sample::select(inputs::TOKENS), 0..60)
            .prop_map(|tokens| tokens.concat().into_bytes());
        let valid_value = inputs::entry().prop_map(|entry| {
            serde_json::from_str::<Value>(&entry::encode(&entry)).unwrap_or_default()
        });
        prop_oneof![
            2 => inputs::entry().prop_map(|entry| RecordInput::Entry(Box::new(entry))),
            1 => prop::collection::vec(any::<u8>(), 0..256).prop_map(text),
            1 => soup.prop_map(text),
            2 => (inputs::entry(), inputs::edits()).prop_map(move |(entry, edits)| {
                text(inputs::edit(entry::encode(&entry).into_bytes(), &edits))
            }),
            2 => (valid_value, inputs::mutations()).prop_map(move |(value, mutations)| {
                text(inputs::mutate(value, &mutations).to_string().into_bytes())
            }),
        ]
        .boxed()
    }

    fn to_file(input: &RecordInput) -> Vec<u8> {
        match input {
            RecordInput::Text(bytes) => bytes.clone(),
            RecordInput::Entry(entry) => entry::encode(entry).into_bytes(),
        }
    }

    fn check_file(bytes: &[u8]) -> Result<(), String> {
        check_record_text(&String::from_utf8_lossy(bytes))
    }

    fn check(input: &RecordInput) -> Result<(), String> {
        match input {
            RecordInput::Text(bytes) => Self::check_file(bytes),
            RecordInput::Entry(entry) => {
                let text = entry::encode(entry);
                let decoded = entry::decode(&text);
                ensure(decoded.as_ref() == Ok(&as_stored(entry)), || {
                    format!("a stored entry does not come back as it went in: {decoded:?}")
                })?;
                check_record_text(&text)
            }
        }
    }
}

/// What a stored entry reads back as. Its JSON values (`base.body`,
/// `conflict.remote`) are left out when too deep to read back, `null` reads
/// as absent, and numbers read as serde_json parses their text: without its
/// `float_roundtrip` feature that can be a float next to the one written
/// (`8.046524004286505e295` reads as `…506e295`), a known difference.
fn as_stored(entry: &Entry) -> Entry {
    let mut stored = entry.clone();
    let values = [
        stored.base.as_mut().map(|base| &mut base.body),
        stored
            .conflict
            .as_mut()
            .map(|conflict| &mut conflict.remote),
    ];
    for value in values.into_iter().flatten() {
        value.take_if(|value| value.is_null() || depth(value) > MAX_KEPT_VALUE_DEPTH);
        value.iter_mut().for_each(as_read_back);
    }
    stored
}

fn as_read_back(value: &mut Value) {
    match value {
        Value::Number(number) => {
            if let Ok(read) = number.to_string().parse::<serde_json::Number>() {
                *number = read;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(as_read_back),
        Value::Object(map) => map.values_mut().for_each(as_read_back),
        _ => {}
    }
}

fn check_record_text(text: &str) -> Result<(), String> {
    let error = match entry::decode(text) {
        Ok(entry) => {
            let again = entry::decode(&entry::encode(&entry));
            return ensure(again.as_ref() == Ok(&as_stored(&entry)), || {
                format!("a decoded record does not survive encode and decode: {again:?}")
            });
        }
        Err(error) => error,
    };
    ensure(!error.to_string().is_empty(), || {
        format!("{error:?} has no message")
    })?;
    // The error names the right problem.
    let value = serde_json::from_str::<Value>(text).ok();
    let version = value.as_ref().and_then(|value| value.get("v"));
    let right = match &error {
        DecodeError::NotJson(_) => value.is_none(),
        DecodeError::NoVersion => value.is_some() && version.and_then(Value::as_u64).is_none(),
        DecodeError::UnknownVersion(v) => {
            !(OLDEST_RECORD_VERSION..=RECORD_VERSION).contains(v)
                && version.and_then(Value::as_u64) == Some(*v)
        }
        DecodeError::Invalid(_) => version
            .and_then(Value::as_u64)
            .is_some_and(|v| (OLDEST_RECORD_VERSION..=RECORD_VERSION).contains(&v)),
    };
    ensure(right, || format!("{error:?} misnames the problem"))
}

// ---------------------------------------------------------------- messages

/// What a page posts: any JSON, or a valid command that must decode to itself.
#[derive(Debug, Clone)]
pub(super) enum MessageInput {
    Json(Value),
    Command(Request),
}

pub(super) struct Message;

/// A field no message has; adding it must change nothing.
const UNKNOWN_FIELD: &str = "fuzzUnknownField";

impl Target for Message {
    type Input = MessageInput;
    const NAME: &'static str = "message";

    fn inputs() -> BoxedStrategy<MessageInput> {
        let command_value = inputs::request().prop_map(|r| inputs::command_message(&r));
        prop_oneof![
            2 => inputs::request().prop_map(MessageInput::Command),
            1 => inputs::json_value().prop_map(MessageInput::Json),
            1 => inputs::json_object().prop_map(|mut object| {
                object["outbox"] = json!(PROTOCOL_VERSION);
                MessageInput::Json(object)
            }),
            4 => (command_value, inputs::mutations()).prop_map(|(message, mutations)| {
                MessageInput::Json(inputs::mutate(message, &mutations))
            }),
        ]
        .boxed()
    }

    fn to_file(input: &MessageInput) -> Vec<u8> {
        match input {
            MessageInput::Json(value) => value.to_string().into_bytes(),
            MessageInput::Command(request) => {
                inputs::command_message(request).to_string().into_bytes()
            }
        }
    }

    fn check_file(bytes: &[u8]) -> Result<(), String> {
        parse_json(bytes).map_or(Ok(()), |value| check_message(&value))
    }

    fn check(input: &MessageInput) -> Result<(), String> {
        match input {
            MessageInput::Json(value) => check_message(value),
            MessageInput::Command(request) => {
                let message = inputs::command_message(request);
                let decoded = decode_command(&message);
                ensure(decoded.as_ref() == Ok(request), || {
                    format!("{message} decodes to {decoded:?}")
                })?;
                check_message(&message)
            }
        }
    }
}

fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Status => "status",
        Command::Entries { .. } => "entries",
        Command::Flush => "flush",
        Command::Retry { .. } => "retry",
        Command::Cancel { .. } => "cancel",
        Command::Clear { .. } => "clear",
        Command::Auth { .. } => "auth",
        Command::Resolve { .. } => "resolve",
        Command::User { .. } => "user",
        Command::Logout { .. } => "logout",
        Command::Hello => "hello",
    }
}

fn check_message(value: &Value) -> Result<(), String> {
    let decoded = decode_command(value);
    let ours = is_outbox_message(value);
    let id = value.get("id").and_then(Value::as_u64);
    match &decoded {
        Err(MessageError::NotOutbox) => ensure(!ours, || {
            "a message with the marker is taken as not ours".into()
        })?,
        Err(MessageError::Malformed {
            id: reply_id,
            message,
        }) => {
            ensure(ours, || {
                "a message without the marker gets an error reply".into()
            })?;
            ensure(!message.is_empty(), || {
                "an error reply without words".into()
            })?;
            ensure(reply_id.is_none() || *reply_id == id, || {
                format!("the error reply's id {reply_id:?} is not the message's")
            })?;
        }
        Ok(request) => check_accepted(value, request)?,
    }
    // Fields no command reads change nothing.
    if let Some(map) = value
        .as_object()
        .filter(|map| !map.contains_key(UNKNOWN_FIELD))
    {
        let mut extended = map.clone();
        extended.insert(UNKNOWN_FIELD.into(), json!({"a": [1]}));
        let again = decode_command(&Value::Object(extended));
        ensure(again == decoded, || {
            format!("an unknown field turns {decoded:?} into {again:?}")
        })?;
    }
    Ok(())
}

fn check_accepted(value: &Value, request: &Request) -> Result<(), String> {
    let entry = value.get("entry").and_then(Value::as_u64);
    ensure(value["outbox"].as_u64() == Some(PROTOCOL_VERSION), || {
        "accepted without protocol version 1".into()
    })?;
    ensure(
        request.id > 0 && value["id"].as_u64() == Some(request.id),
        || format!("accepted with id {}", request.id),
    )?;
    ensure(value["type"] == command_name(&request.command), || {
        format!("accepted {:?} for type {}", request.command, value["type"])
    })?;
    match &request.command {
        Command::Cancel { entry: id }
        | Command::Resolve { entry: id, .. }
        | Command::Retry {
            target: RetryTarget::Entry(id),
        } => ensure(*id > 0 && entry == Some(*id), || {
            format!("accepted entry {id} for {}", value["entry"])
        }),
        Command::Retry {
            target: RetryTarget::AllFailed,
        } => ensure(value["entry"] == "failed", || "retried all failed".into()),
        Command::Auth { headers } => ensure(
            headers.iter().all(|(name, value)| {
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    && value
                        .chars()
                        .all(|c| c <= '\u{ff}' && !matches!(c, '\0' | '\r' | '\n'))
            }),
            || format!("accepted auth headers no request can carry: {headers:?}"),
        ),
        _ => Ok(()),
    }?;
    if let Command::Resolve {
        using: ResolveUse::Merged,
        body,
        ..
    } = &request.command
    {
        ensure(body.is_some(), || {
            "accepted a merged resolve without a body".into()
        })?;
    }
    Ok(())
}

// ---------------------------------------------------------------- config

/// What the worker hands to [`Config::parse`]: any JSON, or a valid config
/// that must be accepted.
#[derive(Debug, Clone)]
pub(super) enum ConfigInput {
    Json(Value),
    Valid(Value),
}

pub(super) struct ConfigTarget;

impl Target for ConfigTarget {
    type Input = ConfigInput;
    const NAME: &'static str = "config";

    fn inputs() -> BoxedStrategy<ConfigInput> {
        let with_markers = (
            inputs::valid_config(),
            inputs::function_marker(),
            any::<bool>(),
        )
            .prop_map(|(mut config, marker, resolve)| {
                let field = if resolve { "resolve" } else { "replayHeaders" };
                if let Some(route) = config["routes"].get_mut(0) {
                    route[field] = marker;
                    if resolve {
                        route["strategy"] = json!("custom");
                    }
                }
                ConfigInput::Json(config)
            });
        prop_oneof![
            2 => inputs::valid_config().prop_map(ConfigInput::Valid),
            1 => inputs::json_value().prop_map(ConfigInput::Json),
            1 => with_markers,
            4 => (inputs::valid_config(), inputs::mutations()).prop_map(|(config, mutations)| {
                ConfigInput::Json(inputs::mutate(config, &mutations))
            }),
        ]
        .boxed()
    }

    fn to_file(input: &ConfigInput) -> Vec<u8> {
        match input {
            ConfigInput::Json(value) | ConfigInput::Valid(value) => value.to_string().into_bytes(),
        }
    }

    fn check_file(bytes: &[u8]) -> Result<(), String> {
        parse_json(bytes).map_or(Ok(()), |value| check_config(&value))
    }

    fn check(input: &ConfigInput) -> Result<(), String> {
        match input {
            ConfigInput::Json(value) => check_config(value),
            ConfigInput::Valid(value) => {
                let parsed = Config::parse(value);
                ensure(parsed.is_ok(), || {
                    format!("a valid config is refused: {parsed:?}")
                })?;
                check_config(value)
            }
        }
    }
}

fn check_config(value: &Value) -> Result<(), String> {
    let config = match Config::parse(value) {
        Ok(config) => config,
        Err(error) => {
            return ensure(!error.message.is_empty(), || {
                format!("{error:?} has no message")
            })
        }
    };
    for (index, route) in config.routes.iter().enumerate() {
        let given = &value["routes"][index];
        ensure(
            route.match_prefix.starts_with('/') && !route.match_prefix.starts_with("//"),
            || format!("accepted a route that is not same-origin: {given}"),
        )?;
        ensure(
            !route.methods.is_empty()
                && route
                    .methods
                    .iter()
                    .all(|m| MUTATION_METHODS.contains(&m.as_str())),
            || format!("accepted methods {:?}", route.methods),
        )?;
        ensure(
            (route.strategy == ConflictStrategy::Custom) == route.resolve.is_some(),
            || {
                format!(
                    "accepted resolve {:?} with {:?}",
                    route.resolve, route.strategy
                )
            },
        )?;
        for (field, index) in [
            ("resolve", route.resolve),
            ("replayHeaders", route.replay_headers),
        ] {
            let marker = given[field]["$fn"].as_u64();
            ensure(
                index.is_none() || marker.is_none() || index.map(u64::from) == marker,
                || format!("{field}: {{\"$fn\": {marker:?}}} read as {index:?}"),
            )?;
        }
    }
    let (retry, limits) = (&config.retry, &config.limits);
    ensure(
        retry.base_delay_ms >= 1
            && retry.max_delay_ms >= retry.base_delay_ms
            && (1.0..=10.0).contains(&retry.factor)
            && (1..=1000).contains(&retry.max_attempts)
            && retry.retention_ms >= 1000,
        || format!("accepted retry {retry:?}"),
    )?;
    ensure(
        (1..=64).contains(&limits.concurrency)
            && limits.max_entries >= 1
            && limits.attempt_timeout_ms >= 100,
        || format!("accepted limits {limits:?}"),
    )?;
    ensure(!config.sync_tag.is_empty(), || {
        "accepted an empty syncTag".into()
    })
}

// ---------------------------------------------------------------- merge

pub(super) struct Merge;

type Triple = (Value, Value, Value);

impl Target for Merge {
    type Input = Triple;
    const NAME: &'static str = "merge";

    fn inputs() -> BoxedStrategy<Triple> {
        let related = |base: BoxedStrategy<Value>| {
            (base, inputs::mutations(), inputs::mutations()).prop_map(|(base, left, right)| {
                let local = inputs::mutate(base.clone(), &left);
                let remote = inputs::mutate(base.clone(), &right);
                (base, local, remote)
            })
        };
        prop_oneof![
            1 => (inputs::json_value(), inputs::json_value(), inputs::json_value()),
            3 => related(inputs::json_object()),
            1 => related(inputs::deep_value()),
        ]
        .boxed()
    }

    /// Base, local and remote, one JSON text a line.
    fn to_file((base, local, remote): &Triple) -> Vec<u8> {
        format!("{base}\n{local}\n{remote}\n").into_bytes()
    }

    fn check_file(bytes: &[u8]) -> Result<(), String> {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Ok(());
        };
        let values: Result<Vec<Value>, _> = serde_json::Deserializer::from_str(text)
            .into_iter()
            .collect();
        match values.as_deref() {
            // Bodies serde_json refuses never reach the merge.
            Err(_) => Ok(()),
            Ok([base, local, remote]) => {
                Self::check(&(base.clone(), local.clone(), remote.clone()))
            }
            Ok(values) => Err(format!(
                "a merge case is three JSON texts (base, local, remote), not {}",
                values.len()
            )),
        }
    }

    fn check((base, local, remote): &Triple) -> Result<(), String> {
        let outcome = three_way_merge(base, local, remote);
        let clean = |value: &Value| MergeOutcome::Clean(value.clone());
        ensure(three_way_merge(base, local, base) == clean(local), || {
            "an unchanged remote does not give local".into()
        })?;
        ensure(three_way_merge(base, base, remote) == clean(remote), || {
            "an unchanged local does not give remote".into()
        })?;
        ensure(three_way_merge(base, local, local) == clean(local), || {
            "the same change on both sides is not clean".into()
        })?;
        let swapped = three_way_merge(base, remote, local);
        match (&outcome, &swapped) {
            (MergeOutcome::Clean(merged), MergeOutcome::Clean(other)) => {
                ensure(merged == other, || {
                    "a clean merge depends on which side is local".into()
                })?
            }
            (
                MergeOutcome::Conflicts { merged, pointers },
                MergeOutcome::Conflicts {
                    pointers: other, ..
                },
            ) => {
                ensure(pointers == other, || {
                    format!("conflicts {pointers:?} become {other:?} with the sides swapped")
                })?;
                ensure(pointers.windows(2).all(|pair| pair[0] < pair[1]), || {
                    format!("conflict pointers not sorted and unique: {pointers:?}")
                })?;
                for pointer in pointers {
                    ensure(merged.pointer(pointer) == remote.pointer(pointer), || {
                        format!("the merge does not keep remote's value at {pointer}")
                    })?;
                }
            }
            _ => return Err("conflicts depend on which side is local".into()),
        }
        // RFC 7396: a merge patch applied twice changes nothing more.
        let patched = apply_merge_patch(base, local);
        ensure(apply_merge_patch(&patched, local) == patched, || {
            "a merge patch applied twice changes more".into()
        })?;
        ensure(local.is_object() || patched == *local, || {
            "a patch that is not an object does not replace the target".into()
        })
    }
}
