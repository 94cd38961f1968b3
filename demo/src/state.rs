//! The in-memory world of the reference server: entities, uploads, the
//! applied log, idempotency records, counters and the injected faults.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use bytes::Bytes;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// The JSON resource kinds; `uploads` is handled separately because it
/// accepts any body.
pub const ENTITY_KINDS: [&str; 3] = ["concepts", "connections", "checkpoints"];

pub fn is_entity_kind(kind: &str) -> bool {
    ENTITY_KINDS.contains(&kind)
}

pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|duration| duration.as_millis() as u64)
        .unwrap_or(0)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Ids that are both numbers sort numerically so `"10"` comes after `"9"`;
/// other ids sort as strings, after the numeric ones.
pub fn compare_ids(left: &str, right: &str) -> Ordering {
    match (left.parse::<u64>(), right.parse::<u64>()) {
        (Ok(left_number), Ok(right_number)) => {
            left_number.cmp(&right_number).then_with(|| left.cmp(right))
        }
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Err(_), Err(_)) => left.cmp(right),
    }
}

/// One entity id. A deleted entity keeps its slot so that a re-created one
/// continues the version sequence and never reuses an old ETag.
#[derive(Clone, Debug, Default)]
pub struct Slot {
    pub current: Option<Map<String, Value>>,
    pub version: u64,
    pub updated_at: u64,
}

impl Slot {
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }

    pub fn last_modified(&self) -> String {
        let time = UNIX_EPOCH + std::time::Duration::from_millis(self.updated_at);
        httpdate::fmt_http_date(time)
    }

    /// Stores `fields` as the new state with fresh server fields.
    pub fn write(&mut self, id: &str, mut fields: Map<String, Value>) -> Map<String, Value> {
        self.version += 1;
        // Strictly increasing even when two changes land in the same ms.
        self.updated_at = now_millis().max(self.updated_at + 1);
        fields.insert("id".into(), Value::String(id.to_owned()));
        fields.insert("version".into(), json!(self.version));
        fields.insert("updatedAt".into(), json!(self.updated_at));
        self.current = Some(fields.clone());
        fields
    }

    /// Deletion is a change too: it bumps the version and time.
    pub fn delete(&mut self) -> Option<Map<String, Value>> {
        let previous = self.current.take()?;
        self.version += 1;
        self.updated_at = now_millis().max(self.updated_at + 1);
        Some(previous)
    }
}

/// Shallow merge: a `null` field removes the field.
pub fn merge_patch(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (name, value) in patch {
        if value.is_null() {
            target.remove(&name);
        } else {
            target.insert(name, value);
        }
    }
}

#[derive(Clone, Debug)]
pub struct Upload {
    pub bytes: Bytes,
    pub content_type: Option<String>,
    pub sha256: String,
}

impl Upload {
    pub fn describe(&self, id: &str) -> Value {
        json!({
            "id": id,
            "sha256": self.sha256,
            "length": self.bytes.len(),
            "contentType": self.content_type,
        })
    }
}

/// A response as the handler produced it, kept for idempotent replays.
#[derive(Clone, Debug)]
pub struct StoredResponse {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

#[derive(Clone, Debug)]
pub struct IdempotencyRecord {
    pub method: Method,
    pub path: String,
    pub body_sha256: String,
    pub response: StoredResponse,
}

#[derive(Clone, Debug)]
pub struct FailRule {
    pub remaining: u64,
    pub status: StatusCode,
    pub retry_after: Option<String>,
    pub path: String,
    pub methods: Vec<Method>,
}

#[derive(Clone, Debug)]
pub struct DropRule {
    pub remaining: u64,
    pub path: String,
    pub methods: Vec<Method>,
}

pub fn mutation_methods() -> Vec<Method> {
    vec![Method::POST, Method::PUT, Method::PATCH, Method::DELETE]
}

pub fn is_mutation(method: &Method) -> bool {
    mutation_methods().contains(method)
}

/// Takes one use of the first rule that matches, if any.
fn take_matching<Rule: Clone>(
    rules: &mut Vec<Rule>,
    matches: impl Fn(&Rule) -> bool,
    remaining: impl Fn(&mut Rule) -> &mut u64,
) -> Option<Rule> {
    let index = rules.iter().position(matches)?;
    let taken = rules[index].clone();
    let count = remaining(&mut rules[index]);
    *count -= 1;
    if *count == 0 {
        rules.remove(index);
    }
    Some(taken)
}

/// How many received requests [`World::received`] keeps.
pub const RECEIVED_KEPT: usize = 5000;

#[derive(Debug)]
pub struct World {
    pub entities: BTreeMap<String, HashMap<String, Slot>>,
    pub uploads: HashMap<String, Upload>,
    pub idempotency: HashMap<String, IdempotencyRecord>,
    pub log: Vec<Value>,
    pub applied_by_key: BTreeMap<String, u64>,
    pub received_by_key: BTreeMap<String, u64>,
    /// The last [`RECEIVED_KEPT`] API requests as they arrived, with their
    /// headers, so tests can see what a browser's worker really sent.
    pub received: VecDeque<Value>,
    pub requests: u64,
    pub fail_rules: Vec<FailRule>,
    pub drop_rules: Vec<DropRule>,
    pub delay_ms: u64,
    pub initial_delay_ms: u64,
    /// Path prefix → whether deduplication is on; the longest prefix wins.
    pub dedupe: BTreeMap<String, bool>,
}

impl World {
    pub fn new(initial_delay_ms: u64) -> World {
        World {
            entities: BTreeMap::new(),
            uploads: HashMap::new(),
            idempotency: HashMap::new(),
            log: Vec::new(),
            applied_by_key: BTreeMap::new(),
            received_by_key: BTreeMap::new(),
            received: VecDeque::new(),
            requests: 0,
            fail_rules: Vec::new(),
            drop_rules: Vec::new(),
            delay_ms: initial_delay_ms,
            initial_delay_ms,
            dedupe: BTreeMap::new(),
        }
    }

    /// Remembers one received API request: method, path and every header
    /// (names lower-case, values as text; a value that is not text is
    /// shown as its bytes' lossy UTF-8).
    pub fn note_received(&mut self, method: &Method, path: &str, headers: &HeaderMap) {
        let mut fields = Map::new();
        for (name, value) in headers {
            fields.insert(
                name.as_str().to_owned(),
                Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
            );
        }
        if self.received.len() == RECEIVED_KEPT {
            self.received.pop_front();
        }
        self.received.push_back(json!({
            "method": method.as_str(),
            "path": path,
            "headers": fields,
        }));
    }

    pub fn reset(&mut self) {
        *self = World::new(self.initial_delay_ms);
    }

    pub fn slot(&self, kind: &str, id: &str) -> Option<&Slot> {
        self.entities.get(kind)?.get(id)
    }

    pub fn slot_mut(&mut self, kind: &str, id: &str) -> &mut Slot {
        self.entities
            .entry(kind.to_owned())
            .or_default()
            .entry(id.to_owned())
            .or_default()
    }

    pub fn list(&self, kind: &str) -> Vec<Value> {
        let Some(slots) = self.entities.get(kind) else {
            return Vec::new();
        };
        let mut ids: Vec<&String> = slots
            .iter()
            .filter(|(_, slot)| slot.current.is_some())
            .map(|(id, _)| id)
            .collect();
        ids.sort_by(|left, right| compare_ids(left, right));
        ids.into_iter()
            .filter_map(|id| slots.get(id)?.current.clone().map(Value::Object))
            .collect()
    }

    pub fn all_entities(&self) -> Value {
        let mut result = Map::new();
        for kind in ENTITY_KINDS {
            result.insert(kind.to_owned(), Value::Array(self.list(kind)));
        }
        let mut upload_ids: Vec<&String> = self.uploads.keys().collect();
        upload_ids.sort_by(|left, right| compare_ids(left, right));
        let uploads = upload_ids
            .into_iter()
            .filter_map(|id| Some(self.uploads.get(id)?.describe(id)))
            .collect();
        result.insert("uploads".into(), Value::Array(uploads));
        Value::Object(result)
    }

    pub fn dedupe_enabled(&self, path: &str) -> bool {
        self.dedupe
            .iter()
            .filter(|(prefix, _)| path.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, enabled)| *enabled)
            .unwrap_or(true)
    }

    pub fn take_fail(&mut self, method: &Method, path: &str) -> Option<FailRule> {
        take_matching(
            &mut self.fail_rules,
            |rule| path.starts_with(&rule.path) && rule.methods.contains(method),
            |rule| &mut rule.remaining,
        )
    }

    pub fn take_drop(&mut self, method: &Method, path: &str) -> bool {
        take_matching(
            &mut self.drop_rules,
            |rule| path.starts_with(&rule.path) && rule.methods.contains(method),
            |rule| &mut rule.remaining,
        )
        .is_some()
    }

    pub fn record_applied(
        &mut self,
        method: &Method,
        path: &str,
        key: Option<&str>,
        body_sha256: &str,
        body: &[u8],
    ) {
        let parsed_body = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
        self.log.push(json!({
            "seq": self.log.len() + 1,
            "method": method.as_str(),
            "path": path,
            "key": key,
            "sha256": body_sha256,
            "body": parsed_body,
            "at": now_millis(),
        }));
        if let Some(key) = key {
            *self.applied_by_key.entry(key.to_owned()).or_insert(0) += 1;
        }
    }

    pub fn faults(&self) -> Value {
        let fail: Vec<Value> = self
            .fail_rules
            .iter()
            .map(|rule| {
                json!({
                    "count": rule.remaining,
                    "status": rule.status.as_u16(),
                    "retryAfter": rule.retry_after,
                    "path": rule.path,
                    "methods": rule.methods.iter().map(Method::as_str).collect::<Vec<_>>(),
                })
            })
            .collect();
        let drop: Vec<Value> = self
            .drop_rules
            .iter()
            .map(|rule| {
                json!({
                    "count": rule.remaining,
                    "path": rule.path,
                    "methods": rule.methods.iter().map(Method::as_str).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "fail": fail,
            "drop": drop,
            "delayMs": self.delay_ms,
            "dedupe": self.dedupe,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_ids_sort_numerically() {
        let mut ids = vec!["10", "b", "9", "a", "1"];
        ids.sort_by(|left, right| compare_ids(left, right));
        assert_eq!(ids, vec!["1", "9", "10", "a", "b"]);
    }

    #[test]
    fn updated_at_strictly_increases() {
        let mut slot = Slot::default();
        let first = slot.write("1", Map::new());
        let second = slot.write("1", Map::new());
        assert!(second["updatedAt"].as_u64() > first["updatedAt"].as_u64());
        assert_eq!(second["version"], json!(2));
    }

    #[test]
    fn longest_dedupe_prefix_wins() {
        let mut world = World::new(0);
        world.dedupe.insert("/api/".into(), false);
        world.dedupe.insert("/api/concepts/".into(), true);
        assert!(world.dedupe_enabled("/api/concepts/1"));
        assert!(!world.dedupe_enabled("/api/connections/1"));
        assert!(world.dedupe_enabled("/other"));
    }
}
