//! Conflict strategies as pure decisions.
//!
//! In scope: given a route's [`Strategy`] and what is known about the base,
//! local and remote versions, decide a [`Resolution`]; read the remote
//! timestamp; check whether a mutation was already applied (the 412 after a
//! possibly successful attempt); validate a custom function's answer.
//!
//! Out of scope: fetching the remote state, running the site's custom JS
//! function, storing conflicts and reporting resolutions to pages (the
//! worker does these and feeds the results back here).

use super::merge::{apply_merge_patch, three_way_merge, MergeOutcome};
use crate::core::config::type_name;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How a route resolves conflicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// The newer of the local write and the remote state wins.
    LastWriteWins,
    /// The remote (earlier) write stands.
    FirstWriteWins,
    /// Three-way merge of JSON objects; real collisions go to the page.
    Merge,
    /// Always left to the page.
    Manual,
    /// The site's custom function decides.
    Custom,
}

impl Strategy {
    /// The configuration names, in declaration order.
    pub const NAMES: [&'static str; 5] = [
        "last-write-wins",
        "first-write-wins",
        "merge",
        "manual",
        "custom",
    ];

    /// Parses a configuration name (exact match, e.g. `"last-write-wins"`).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "last-write-wins" => Strategy::LastWriteWins,
            "first-write-wins" => Strategy::FirstWriteWins,
            "merge" => Strategy::Merge,
            "manual" => Strategy::Manual,
            "custom" => Strategy::Custom,
            _ => return None,
        })
    }

    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::LastWriteWins => "last-write-wins",
            Strategy::FirstWriteWins => "first-write-wins",
            Strategy::Merge => "merge",
            Strategy::Manual => "manual",
            Strategy::Custom => "custom",
        }
    }
}

/// What is known when a conflict is resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ConflictInput<'a> {
    /// The base version's body, when known.
    pub base: Option<&'a Value>,
    /// The queued mutation's JSON body (`None` if not JSON, or a DELETE).
    pub local: Option<&'a Value>,
    /// The remote entity (`None` if gone or unknown).
    pub remote: Option<&'a Value>,
    /// The remote ETag, used as `If-Match` when re-sending.
    pub remote_etag: Option<&'a str>,
    /// When the local mutation was queued, in ms since the epoch.
    pub local_created_at_ms: u64,
    /// When the remote was last updated, in ms (see [`remote_timestamp`]).
    pub remote_updated_ms: Option<u64>,
    /// The queued mutation's method: a PATCH body holds only the changes.
    pub method: &'a str,
    /// Top-level fields the server manages: a merge takes them from the
    /// remote instead of merging them.
    pub server_fields: &'a [String],
}

/// What to do about a conflict.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// Send again with this body (`None` = the original body unchanged) and
    /// `If-Match` (the remote ETag).
    Resend {
        /// The body to send instead of the original, if any.
        body: Option<Value>,
        /// The `If-Match` value to send, if any.
        if_match: Option<String>,
    },
    /// The remote write stands; the local write is recorded as superseded.
    Superseded,
    /// Left to the page.
    Manual {
        /// The colliding JSON pointers (may be empty).
        pointers: Vec<String>,
        /// Why it could not be resolved automatically.
        reason: String,
    },
    /// Ask the site's custom function; the caller runs it, then passes its
    /// answer to [`custom_answer`].
    AskCustom,
}

/// Applies `strategy` to a conflict.
pub fn decide(strategy: Strategy, input: &ConflictInput) -> Resolution {
    match strategy {
        Strategy::LastWriteWins => last_write_wins(input),
        Strategy::FirstWriteWins => Resolution::Superseded,
        Strategy::Merge => merge(input),
        Strategy::Manual => manual(Vec::new(), "manual strategy"),
        Strategy::Custom => Resolution::AskCustom,
    }
}

fn last_write_wins(input: &ConflictInput) -> Resolution {
    if input.remote.is_none() {
        return manual(Vec::new(), "remote gone");
    }
    match input.remote_updated_ms {
        None => manual(Vec::new(), "remote time unknown"),
        Some(remote_ms) if input.local_created_at_ms > remote_ms => resend(None, input),
        // A tie goes to the remote: it is already stored, so nothing moves.
        Some(_) => Resolution::Superseded,
    }
}

fn merge(input: &ConflictInput) -> Resolution {
    let Some(base) = input.base else {
        return manual(Vec::new(), "no base version");
    };
    let Some(local) = input.local else {
        return manual(Vec::new(), "local body is not JSON");
    };
    let Some(remote) = input.remote else {
        return manual(Vec::new(), "remote gone");
    };
    let all_objects = [base, local, remote].iter().all(|value| value.is_object());
    if !all_objects {
        return manual(Vec::new(), "merge needs JSON objects");
    }
    // A PATCH names only what it changes: the local document is the base
    // with the patch applied, not the patch alone (whose missing fields
    // would read as deletions).
    let local = if input.method.eq_ignore_ascii_case("PATCH") {
        apply_merge_patch(base, local)
    } else {
        local.clone()
    };
    let without_server_fields = |value: &Value| {
        let mut value = value.clone();
        if let Some(object) = value.as_object_mut() {
            for field in input.server_fields {
                object.remove(field);
            }
        }
        value
    };
    match three_way_merge(
        &without_server_fields(base),
        &without_server_fields(&local),
        &without_server_fields(remote),
    ) {
        MergeOutcome::Clean(mut merged) => {
            if let (Some(merged), Some(remote)) = (merged.as_object_mut(), remote.as_object()) {
                for field in input.server_fields {
                    if let Some(value) = remote.get(field) {
                        merged.insert(field.clone(), value.clone());
                    }
                }
            }
            resend(Some(merged), input)
        }
        MergeOutcome::Conflicts { pointers, .. } => {
            manual(pointers, "fields changed on both sides")
        }
    }
}

fn resend(body: Option<Value>, input: &ConflictInput) -> Resolution {
    Resolution::Resend {
        body,
        if_match: input.remote_etag.map(String::from),
    }
}

fn manual(pointers: Vec<String>, reason: &str) -> Resolution {
    Resolution::Manual {
        pointers,
        reason: reason.to_string(),
    }
}

/// The remote's last-update time in ms: the numeric `field` of the remote
/// JSON object (a top-level key, or an RFC 6901 pointer when it starts with
/// `/`), else `last_modified_ms` (the parsed `Last-Modified` header).
/// Non-numeric or negative field values are ignored; fractions are dropped.
pub fn remote_timestamp(
    remote: Option<&Value>,
    field: &str,
    last_modified_ms: Option<u64>,
) -> Option<u64> {
    let value = remote.and_then(|remote| {
        if field.starts_with('/') {
            remote.pointer(field)
        } else {
            remote.as_object().and_then(|object| object.get(field))
        }
    });
    value.and_then(milliseconds).or(last_modified_ms)
}

fn milliseconds(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        let float = value.as_f64()?;
        // The cast saturates, so only NaN and negatives need filtering.
        (float >= 0.0).then_some(float as u64)
    })
}

/// Whether the remote state already equals what the local mutation would
/// produce (the check for a 412 after an attempt that may have succeeded).
///
/// - DELETE (any case): the remote is gone (`None`).
/// - A JSON object body: every field of `local` except those in `ignore`
///   (server-managed, e.g. `["id", "version", "updatedAt"]`) is equal in
///   the remote object.
/// - Any other JSON body: the remote equals it.
/// - No body to compare: `false` (unknown is not applied).
pub fn already_applied(
    method: &str,
    local: Option<&Value>,
    remote: Option<&Value>,
    ignore: &[String],
) -> bool {
    if method.eq_ignore_ascii_case("DELETE") {
        return remote.is_none();
    }
    match (local, remote) {
        (Some(Value::Object(local)), Some(Value::Object(remote))) => local
            .iter()
            .filter(|(key, _)| !ignore.iter().any(|field| field == *key))
            .all(|(key, value)| remote.get(key) == Some(value)),
        (Some(Value::Object(_)), _) => false,
        (Some(local), Some(remote)) => local == remote,
        _ => false,
    }
}

/// A custom function's validated answer.
#[derive(Debug, Clone, PartialEq)]
pub enum CustomAnswer {
    /// `{"action":"send","body":…}`: re-send with this body.
    Send(Value),
    /// `{"action":"drop"}`: drop the local write (recorded as superseded).
    Drop,
    /// `{"action":"manual"}`: leave it to the page.
    Manual,
}

/// Validates a custom function's answer: `{"action":"send","body":<any JSON>}`,
/// `{"action":"drop"}` or `{"action":"manual"}`. Anything else (including
/// extra fields) is an error message naming what is wrong.
pub fn custom_answer(answer: &Value) -> Result<CustomAnswer, String> {
    let Value::Object(object) = answer else {
        return Err(format!(
            "custom resolver answer must be an object, got {}",
            type_name(answer)
        ));
    };
    let action = match object.get("action") {
        None => return Err("custom resolver answer has no \"action\"".to_string()),
        Some(Value::String(action)) => action.as_str(),
        Some(other) => {
            return Err(format!(
                "custom resolver \"action\" must be a string, got {}",
                type_name(other)
            ))
        }
    };
    let allowed: &[&str] = match action {
        "send" => &["action", "body"],
        "drop" | "manual" => &["action"],
        _ => {
            let expected = "\"send\", \"drop\" or \"manual\"";
            return Err(format!(
                "custom resolver \"action\" must be {expected}, got {action:?}"
            ));
        }
    };
    if let Some(extra) = object.keys().find(|key| !allowed.contains(&key.as_str())) {
        return Err(format!(
            "custom resolver answer has unexpected field {extra:?} for action {action:?}"
        ));
    }
    match action {
        "send" => object
            .get("body")
            .map(|body| CustomAnswer::Send(body.clone()))
            .ok_or_else(|| "custom resolver action \"send\" needs a \"body\"".to_string()),
        "drop" => Ok(CustomAnswer::Drop),
        _ => Ok(CustomAnswer::Manual),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LOCAL_AT: u64 = 1_764_426_000_000;

    fn input<'a>(
        base: Option<&'a Value>,
        local: Option<&'a Value>,
        remote: Option<&'a Value>,
        remote_updated_ms: Option<u64>,
    ) -> ConflictInput<'a> {
        ConflictInput {
            base,
            local,
            remote,
            remote_etag: Some("\"v2\""),
            local_created_at_ms: LOCAL_AT,
            remote_updated_ms,
            method: "PUT",
            server_fields: &[],
        }
    }

    fn manual_because(reason: &str) -> Resolution {
        manual(Vec::new(), reason)
    }

    #[test]
    fn strategy_names_round_trip() {
        for name in Strategy::NAMES {
            let strategy = Strategy::parse(name).expect("known name");
            assert_eq!(strategy.as_str(), name);
            assert_eq!(serde_json::to_value(strategy).ok(), Some(json!(name)));
            assert_eq!(
                serde_json::from_value::<Strategy>(json!(name)).ok(),
                Some(strategy)
            );
        }
        assert_eq!(Strategy::parse("Merge"), None);
        assert_eq!(Strategy::parse("lww"), None);
    }

    #[test]
    fn last_write_wins_resends_a_newer_local_write_against_the_remote_etag() {
        let (local, remote) = (json!({"label": "mine"}), json!({"label": "theirs"}));
        let conflict = input(None, Some(&local), Some(&remote), Some(LOCAL_AT - 1));
        assert_eq!(
            decide(Strategy::LastWriteWins, &conflict),
            Resolution::Resend {
                body: None,
                if_match: Some("\"v2\"".to_string())
            }
        );
    }

    #[test]
    fn last_write_wins_keeps_a_newer_or_same_age_remote() {
        let (local, remote) = (json!({"label": "mine"}), json!({"label": "theirs"}));
        for remote_at in [LOCAL_AT, LOCAL_AT + 1] {
            let conflict = input(None, Some(&local), Some(&remote), Some(remote_at));
            assert_eq!(
                decide(Strategy::LastWriteWins, &conflict),
                Resolution::Superseded
            );
        }
    }

    #[test]
    fn last_write_wins_without_remote_time_or_remote_goes_to_the_page() {
        let (local, remote) = (json!({"label": "mine"}), json!({"label": "theirs"}));
        let unknown_time = input(None, Some(&local), Some(&remote), None);
        assert_eq!(
            decide(Strategy::LastWriteWins, &unknown_time),
            manual_because("remote time unknown")
        );
        let gone = input(None, Some(&local), None, Some(0));
        assert_eq!(
            decide(Strategy::LastWriteWins, &gone),
            manual_because("remote gone")
        );
    }

    #[test]
    fn first_write_wins_supersedes_the_local_write() {
        let remote = json!({"label": "theirs"});
        let conflict = input(None, None, Some(&remote), Some(0));
        assert_eq!(
            decide(Strategy::FirstWriteWins, &conflict),
            Resolution::Superseded
        );
    }

    #[test]
    fn merge_resends_combined_changes() {
        let base = json!({"label": "Cat", "note": ""});
        let local = json!({"label": "Cat", "note": "furry"});
        let remote = json!({"label": "Kitten", "note": ""});
        let conflict = input(Some(&base), Some(&local), Some(&remote), None);
        assert_eq!(
            decide(Strategy::Merge, &conflict),
            Resolution::Resend {
                body: Some(json!({"label": "Kitten", "note": "furry"})),
                if_match: Some("\"v2\"".to_string())
            }
        );
    }

    #[test]
    fn merge_takes_server_fields_from_the_remote() {
        let server_fields = ["id", "version", "updatedAt"].map(String::from);
        let base = json!({"id": "1", "label": "Cat", "strength": 1, "version": 3, "updatedAt": 30});
        // A PUT of the document without the server's fields.
        let local = json!({"label": "Kitty", "strength": 1});
        let remote =
            json!({"id": "1", "label": "Cat", "strength": 5, "version": 4, "updatedAt": 40});
        let mut conflict = input(Some(&base), Some(&local), Some(&remote), None);
        assert!(matches!(
            decide(Strategy::Merge, &conflict),
            Resolution::Manual { ref pointers, .. } if pointers.contains(&"/version".to_string())
        ));
        conflict.server_fields = &server_fields;
        assert_eq!(
            decide(Strategy::Merge, &conflict),
            Resolution::Resend {
                body: Some(
                    json!({"id": "1", "label": "Kitty", "strength": 5, "version": 4, "updatedAt": 40})
                ),
                if_match: Some("\"v2\"".to_string())
            }
        );
    }

    #[test]
    fn merge_reads_a_patch_as_changes_to_the_base() {
        let base = json!({"label": "Cat", "strength": 1, "note": "x"});
        let patch = json!({"label": "Kitty", "note": null});
        let remote = json!({"label": "Cat", "strength": 5, "note": "x"});
        let mut conflict = input(Some(&base), Some(&patch), Some(&remote), None);
        conflict.method = "PATCH";
        assert_eq!(
            decide(Strategy::Merge, &conflict),
            Resolution::Resend {
                body: Some(json!({"label": "Kitty", "strength": 5})),
                if_match: Some("\"v2\"".to_string())
            }
        );
        // As a PUT, the same body deletes `strength`, which the remote changed.
        conflict.method = "PUT";
        assert!(matches!(
            decide(Strategy::Merge, &conflict),
            Resolution::Manual { ref pointers, .. } if pointers == &vec!["/strength".to_string()]
        ));
    }

    #[test]
    fn merge_leaves_real_collisions_to_the_page() {
        let base = json!({"label": "Cat", "note": ""});
        let local = json!({"label": "Kitty", "note": "x"});
        let remote = json!({"label": "Kitten", "note": "y"});
        let conflict = input(Some(&base), Some(&local), Some(&remote), None);
        assert_eq!(
            decide(Strategy::Merge, &conflict),
            Resolution::Manual {
                pointers: vec!["/label".to_string(), "/note".to_string()],
                reason: "fields changed on both sides".to_string()
            }
        );
    }

    #[test]
    fn merge_without_three_objects_goes_to_the_page() {
        let object = json!({"a": 1});
        let array = json!([1]);
        let cases = [
            (None, Some(&object), Some(&object), "no base version"),
            (Some(&object), None, Some(&object), "local body is not JSON"),
            (Some(&object), Some(&object), None, "remote gone"),
            (
                Some(&array),
                Some(&object),
                Some(&object),
                "merge needs JSON objects",
            ),
            (
                Some(&object),
                Some(&array),
                Some(&object),
                "merge needs JSON objects",
            ),
            (
                Some(&object),
                Some(&object),
                Some(&array),
                "merge needs JSON objects",
            ),
        ];
        for (base, local, remote, reason) in cases {
            let conflict = input(base, local, remote, None);
            assert_eq!(
                decide(Strategy::Merge, &conflict),
                manual_because(reason),
                "{reason}"
            );
        }
    }

    #[test]
    fn manual_and_custom_defer() {
        let conflict = input(None, None, None, None);
        assert_eq!(
            decide(Strategy::Manual, &conflict),
            manual_because("manual strategy")
        );
        assert_eq!(decide(Strategy::Custom, &conflict), Resolution::AskCustom);
    }

    #[test]
    fn remote_timestamp_prefers_the_numeric_field() {
        let remote =
            json!({"updatedAt": 1_700_000_000_000u64, "meta": {"at": 5.9}, "text": "2024"});
        assert_eq!(
            remote_timestamp(Some(&remote), "updatedAt", Some(9)),
            Some(1_700_000_000_000)
        );
        assert_eq!(remote_timestamp(Some(&remote), "/meta/at", None), Some(5));
    }

    #[test]
    fn remote_timestamp_falls_back_to_last_modified() {
        let remote = json!({"text": "2024-01-01T00:00:00Z", "negative": -4, "list": [1]});
        for field in ["text", "negative", "missing", "", "/list/0/x"] {
            assert_eq!(
                remote_timestamp(Some(&remote), field, Some(9)),
                Some(9),
                "{field}"
            );
        }
        assert_eq!(remote_timestamp(Some(&json!([1])), "0", Some(9)), Some(9));
        assert_eq!(remote_timestamp(None, "updatedAt", None), None);
    }

    #[test]
    fn a_put_that_already_landed_is_recognised() {
        let ignore = ["id", "version", "updatedAt"].map(String::from);
        let local = json!({"id": 7, "label": "Cat", "meta": {"a": 1}, "version": 1});
        let landed =
            json!({"id": 7, "label": "Cat", "meta": {"a": 1}, "version": 2, "extra": true});
        let other = json!({"id": 7, "label": "Dog", "meta": {"a": 1}, "version": 2});
        assert!(already_applied("PUT", Some(&local), Some(&landed), &ignore));
        assert!(!already_applied("PUT", Some(&local), Some(&other), &ignore));
        assert!(
            !already_applied("PUT", Some(&local), Some(&landed), &[]),
            "version differs"
        );
        assert!(!already_applied("PATCH", Some(&local), None, &ignore));
        assert!(!already_applied(
            "PATCH",
            Some(&local),
            Some(&json!([1])),
            &ignore
        ));
    }

    #[test]
    fn a_delete_has_landed_when_the_remote_is_gone() {
        assert!(already_applied("DELETE", None, None, &[]));
        assert!(already_applied("delete", None, None, &[]));
        assert!(!already_applied(
            "DELETE",
            None,
            Some(&json!({"id": 7})),
            &[]
        ));
    }

    #[test]
    fn other_bodies_compare_whole_or_not_at_all() {
        let list = json!([1, 2]);
        assert!(already_applied("PUT", Some(&list), Some(&list), &[]));
        assert!(!already_applied("PUT", Some(&list), Some(&json!([2])), &[]));
        assert!(
            !already_applied("PUT", None, Some(&list), &[]),
            "no body to compare"
        );
        assert!(!already_applied("POST", None, None, &[]));
    }

    #[test]
    fn valid_custom_answers() {
        assert_eq!(
            custom_answer(&json!({"action": "send", "body": {"label": "x"}})),
            Ok(CustomAnswer::Send(json!({"label": "x"})))
        );
        assert_eq!(
            custom_answer(&json!({"action": "send", "body": null})),
            Ok(CustomAnswer::Send(Value::Null))
        );
        assert_eq!(
            custom_answer(&json!({"action": "drop"})),
            Ok(CustomAnswer::Drop)
        );
        assert_eq!(
            custom_answer(&json!({"action": "manual"})),
            Ok(CustomAnswer::Manual)
        );
    }

    #[test]
    fn invalid_custom_answers_say_what_is_wrong() {
        let cases = [
            (json!("drop"), "must be an object, got a string"),
            (json!(null), "must be an object, got null"),
            (json!({}), "has no \"action\""),
            (
                json!({"action": 1}),
                "\"action\" must be a string, got a number",
            ),
            (json!({"action": "keep"}), "got \"keep\""),
            (json!({"action": "send"}), "\"send\" needs a \"body\""),
            (
                json!({"action": "drop", "body": 1}),
                "unexpected field \"body\" for action \"drop\"",
            ),
            (
                json!({"action": "send", "body": 1, "bdy": 2}),
                "unexpected field \"bdy\"",
            ),
        ];
        for (answer, expected) in cases {
            match custom_answer(&answer) {
                Err(message) => assert!(message.contains(expected), "{answer}: {message}"),
                Ok(ok) => panic!("{answer} was accepted as {ok:?}"),
            }
        }
    }
}
