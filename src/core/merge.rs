//! Three-way merge of JSON values (base, local, remote), used by the `merge`
//! conflict strategy.
//!
//! In scope: field-by-field, recursive merging of JSON objects, and naming
//! the colliding fields with RFC 6901 JSON pointers.
//!
//! Out of scope: arrays and scalars are atomic (no element-wise merge), and
//! deciding what to do with the result (see [`super::conflict`]).
//!
//! For each key in the union of the three objects:
//! - local == remote: take it;
//! - local unchanged from base: take remote's;
//! - remote unchanged from base: take local's;
//! - both objects (base an object or absent): merge them recursively;
//! - otherwise: a conflict at that key's pointer, keeping remote's value.
//!
//! A missing key is a value like any other, so a key deleted on one side and
//! unchanged on the other is deleted, and deleted on one side but changed on
//! the other is a conflict.

use crate::core::sort::sort_by;
use serde_json::{Map, Value};

/// The result of a three-way merge.
#[derive(Debug, Clone, PartialEq)]
pub enum MergeOutcome {
    /// No field was changed two ways; the merged value.
    Clean(Value),
    /// Some fields were changed two ways.
    Conflicts {
        /// The merge, with remote's value at every conflicting pointer.
        merged: Value,
        /// The conflicting fields as RFC 6901 pointers, sorted.
        pointers: Vec<String>,
    },
}

/// Applies a JSON Merge Patch (RFC 7396) to `target`: object members of
/// `patch` replace or (when `null`) remove those of `target`, recursively;
/// any other patch replaces the target whole. This is how a PATCH body that
/// names only the changed fields becomes the full document it asks for.
pub fn apply_merge_patch(target: &Value, patch: &Value) -> Value {
    let Value::Object(patch) = patch else {
        return patch.clone();
    };
    let mut result = match target {
        Value::Object(target) => target.clone(),
        _ => Map::new(),
    };
    for (key, value) in patch {
        if value.is_null() {
            result.remove(key);
        } else {
            let merged = apply_merge_patch(result.get(key).unwrap_or(&Value::Null), value);
            result.insert(key.clone(), merged);
        }
    }
    Value::Object(result)
}

/// Merges the changes `local` and `remote` each made to `base`.
///
/// At the top level, unless all three are objects, the values are atomic:
/// equal sides or one unchanged side merge cleanly, anything else is a
/// conflict at pointer `""`.
pub fn three_way_merge(base: &Value, local: &Value, remote: &Value) -> MergeOutcome {
    let mut pointers = Vec::new();
    let merged = match (base, local, remote) {
        (Value::Object(base), Value::Object(local), Value::Object(remote)) => Value::Object(
            merge_objects(Some(base), local, remote, &mut Vec::new(), &mut pointers),
        ),
        _ => merge_field(
            Some(base),
            Some(local),
            Some(remote),
            &mut Vec::new(),
            &mut pointers,
        )
        .unwrap_or(Value::Null),
    };
    if pointers.is_empty() {
        MergeOutcome::Clean(merged)
    } else {
        sort_by(&mut pointers, |a, b| a < b);
        MergeOutcome::Conflicts { merged, pointers }
    }
}

/// Builds an RFC 6901 JSON pointer from unescaped path segments
/// (`["a/b", "c"]` → `"/a~1b/c"`; `[]` → `""`, the whole document).
pub fn json_pointer(path: &[&str]) -> String {
    path.iter()
        .map(|segment| format!("/{}", segment.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// Merges two objects key by key; `base: None` means the object is new on both sides.
fn merge_objects<'a>(
    base: Option<&'a Map<String, Value>>,
    local: &'a Map<String, Value>,
    remote: &'a Map<String, Value>,
    path: &mut Vec<&'a str>,
    pointers: &mut Vec<String>,
) -> Map<String, Value> {
    let base_keys = base.into_iter().flat_map(|base| base.keys());
    let mut keys: Vec<&'a String> = base_keys.chain(local.keys()).chain(remote.keys()).collect();
    sort_by(&mut keys, |a, b| a < b);
    keys.dedup();
    let mut merged = Map::new();
    for key in keys {
        path.push(key);
        let base_value = base.and_then(|base| base.get(key));
        let value = merge_field(base_value, local.get(key), remote.get(key), path, pointers);
        path.pop();
        if let Some(value) = value {
            merged.insert(key.clone(), value);
        }
    }
    merged
}

/// Merges one field; `None` is an absent key (and is returned for a deletion).
fn merge_field<'a>(
    base: Option<&'a Value>,
    local: Option<&'a Value>,
    remote: Option<&'a Value>,
    path: &mut Vec<&'a str>,
    pointers: &mut Vec<String>,
) -> Option<Value> {
    if local == remote || remote == base {
        return local.cloned();
    }
    if local == base {
        return remote.cloned();
    }
    // Both sides made an object of the field: merge inside it. (The top
    // level never gets here with three objects; it calls `merge_objects`.)
    let object_base = match (base, local, remote) {
        (Some(Value::Object(base)), Some(Value::Object(local)), Some(Value::Object(remote))) => {
            Some((Some(base), local, remote))
        }
        (None, Some(Value::Object(local)), Some(Value::Object(remote))) => {
            Some((None, local, remote))
        }
        _ => None,
    };
    if let Some((base, local, remote)) = object_base {
        return Some(Value::Object(merge_objects(
            base, local, remote, path, pointers,
        )));
    }
    pointers.push(json_pointer(path));
    remote.cloned()
}

// proptest is a host-only dev-dependency.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn conflicts(merged: Value, pointers: &[&str]) -> MergeOutcome {
        MergeOutcome::Conflicts {
            merged,
            pointers: pointers.iter().map(|pointer| pointer.to_string()).collect(),
        }
    }

    #[test]
    fn pointers_escape_tilde_and_slash() {
        assert_eq!(json_pointer(&[]), "");
        assert_eq!(json_pointer(&["label"]), "/label");
        assert_eq!(json_pointer(&["a/b", "m~n", ""]), "/a~1b/m~0n/");
        assert_eq!(json_pointer(&["~1"]), "/~01");
    }

    #[test]
    fn edits_to_different_fields_combine() {
        let base = json!({"label": "Cat", "note": "", "tags": ["a"]});
        let local = json!({"label": "Cat", "note": "furry", "tags": ["a"]});
        let remote = json!({"label": "Kitten", "note": "", "tags": ["a"]});
        assert_eq!(
            three_way_merge(&base, &local, &remote),
            MergeOutcome::Clean(json!({"label": "Kitten", "note": "furry", "tags": ["a"]}))
        );
    }

    #[test]
    fn the_same_field_changed_two_ways_conflicts_and_keeps_remote() {
        let base = json!({"label": "Cat", "note": ""});
        let local = json!({"label": "Kitty", "note": "furry"});
        let remote = json!({"label": "Kitten", "note": ""});
        assert_eq!(
            three_way_merge(&base, &local, &remote),
            conflicts(json!({"label": "Kitten", "note": "furry"}), &["/label"])
        );
    }

    #[test]
    fn the_same_change_on_both_sides_is_clean() {
        let base = json!({"label": "Cat"});
        let both = json!({"label": "Dog"});
        assert_eq!(
            three_way_merge(&base, &both, &both),
            MergeOutcome::Clean(both.clone())
        );
    }

    #[test]
    fn nested_objects_merge_recursively() {
        let base = json!({"meta": {"a": 1, "b": 1, "deep": {"x": 1}}});
        let local = json!({"meta": {"a": 2, "b": 1, "deep": {"x": 1, "y": 2}}});
        let remote = json!({"meta": {"a": 1, "b": 3, "deep": {"x": 5}}});
        assert_eq!(
            three_way_merge(&base, &local, &remote),
            MergeOutcome::Clean(json!({"meta": {"a": 2, "b": 3, "deep": {"x": 5, "y": 2}}}))
        );
    }

    #[test]
    fn nested_conflicts_are_named_by_escaped_pointers_in_order() {
        let base = json!({"z": 0, "a/b": {"m~n": 0, "k": 0}});
        let local = json!({"z": 1, "a/b": {"m~n": 1, "k": 1}});
        let remote = json!({"z": 2, "a/b": {"m~n": 2, "k": 0}});
        assert_eq!(
            three_way_merge(&base, &local, &remote),
            conflicts(
                json!({"z": 2, "a/b": {"m~n": 2, "k": 1}}),
                &["/a~1b/m~0n", "/z"]
            )
        );
    }

    #[test]
    fn objects_added_on_both_sides_merge_against_an_empty_base() {
        let base = json!({});
        let local = json!({"extra": {"a": 1, "same": true}});
        let remote = json!({"extra": {"b": 2, "same": true}});
        assert_eq!(
            three_way_merge(&base, &local, &remote),
            MergeOutcome::Clean(json!({"extra": {"a": 1, "b": 2, "same": true}}))
        );
    }

    #[test]
    fn an_object_replacing_a_scalar_on_both_sides_conflicts() {
        let base = json!({"field": 1});
        let local = json!({"field": {"a": 1}});
        let remote = json!({"field": {"b": 1}});
        assert_eq!(
            three_way_merge(&base, &local, &remote),
            conflicts(json!({"field": {"b": 1}}), &["/field"])
        );
    }

    #[test]
    fn arrays_are_atomic() {
        let base = json!({"tags": ["a"]});
        let local = json!({"tags": ["a", "b"]});
        let remote = json!({"tags": ["c", "a"]});
        assert_eq!(
            three_way_merge(&base, &local, &remote),
            conflicts(json!({"tags": ["c", "a"]}), &["/tags"])
        );
    }

    #[test]
    fn a_deletion_against_no_change_deletes() {
        let base = json!({"keep": 1, "gone": 2, "also": 3});
        let local = json!({"keep": 1, "also": 3});
        let remote = json!({"keep": 1, "gone": 2});
        assert_eq!(
            three_way_merge(&base, &local, &remote),
            MergeOutcome::Clean(json!({"keep": 1}))
        );
    }

    #[test]
    fn a_deletion_against_a_change_conflicts() {
        let base = json!({"a": 1, "b": 1});
        let local = json!({"b": 1});
        let remote = json!({"a": 2});
        assert_eq!(
            three_way_merge(&base, &local, &remote),
            conflicts(json!({"a": 2}), &["/a"])
        );
        // Remote deleted what local changed: merged keeps remote's (absent)
        // value, and `b`, deleted by local only, is gone too.
        assert_eq!(
            three_way_merge(&base, &remote, &local),
            conflicts(json!({}), &["/a"])
        );
    }

    #[test]
    fn top_level_non_objects_are_atomic() {
        let (one, two, three) = (json!([1]), json!([2]), json!([3]));
        assert_eq!(
            three_way_merge(&one, &two, &one),
            MergeOutcome::Clean(two.clone())
        );
        assert_eq!(
            three_way_merge(&one, &one, &three),
            MergeOutcome::Clean(three.clone())
        );
        assert_eq!(
            three_way_merge(&one, &two, &two),
            MergeOutcome::Clean(two.clone())
        );
        assert_eq!(
            three_way_merge(&one, &two, &three),
            conflicts(three.clone(), &[""])
        );
        // A non-object base makes two differing objects atomic too.
        assert_eq!(
            three_way_merge(&Value::Null, &json!({"a": 1}), &json!({"b": 1})),
            conflicts(json!({"b": 1}), &[""])
        );
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-3i64..3).prop_map(Value::from),
            "[ab]{0,2}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                json_object_of(inner),
            ]
        })
    }

    const KEYS: [&str; 6] = ["a", "b", "c", "d/e", "f~g", ""];

    fn json_object_of(values: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
        prop::collection::btree_map(prop::sample::select(&KEYS[..]), values, 0..4).prop_map(|map| {
            Value::Object(
                map.into_iter()
                    .map(|(key, value)| (key.to_string(), value))
                    .collect(),
            )
        })
    }

    fn json_object() -> impl Strategy<Value = Value> {
        json_object_of(json_value())
    }

    /// Who changes a top-level key, and to what (`None` deletes it).
    #[derive(Debug, Clone)]
    enum Change {
        Untouched,
        Local(Option<Value>),
        Remote(Option<Value>),
    }

    fn change() -> impl Strategy<Value = Change> {
        prop_oneof![
            Just(Change::Untouched),
            prop::option::of(json_value()).prop_map(Change::Local),
            prop::option::of(json_value()).prop_map(Change::Remote),
        ]
    }

    fn set(object: &mut Value, key: &str, value: &Option<Value>) {
        if let Value::Object(map) = object {
            match value {
                Some(value) => map.insert(key.to_string(), value.clone()),
                None => map.remove(key),
            };
        }
    }

    proptest! {
        #[test]
        fn only_local_changes_give_local(base in json_object(), local in json_object()) {
            prop_assert_eq!(three_way_merge(&base, &local, &base), MergeOutcome::Clean(local));
        }

        #[test]
        fn only_remote_changes_give_remote(base in json_object(), remote in json_object()) {
            prop_assert_eq!(three_way_merge(&base, &base, &remote), MergeOutcome::Clean(remote));
        }

        #[test]
        fn no_changes_give_the_same(value in json_object()) {
            prop_assert_eq!(three_way_merge(&value, &value, &value), MergeOutcome::Clean(value));
        }

        #[test]
        fn disjoint_changes_all_survive(
            base in json_object(),
            changes in prop::collection::vec(change(), KEYS.len()),
        ) {
            let (mut local, mut remote, mut expected) = (base.clone(), base.clone(), base.clone());
            for (key, change) in KEYS.iter().zip(&changes) {
                match change {
                    Change::Untouched => {}
                    Change::Local(value) => {
                        set(&mut local, key, value);
                        set(&mut expected, key, value);
                    }
                    Change::Remote(value) => {
                        set(&mut remote, key, value);
                        set(&mut expected, key, value);
                    }
                }
            }
            prop_assert_eq!(three_way_merge(&base, &local, &remote), MergeOutcome::Clean(expected));
        }

        #[test]
        fn merge_never_panics_and_pointers_are_sorted(
            base in json_value(),
            local in json_value(),
            remote in json_value(),
        ) {
            if let MergeOutcome::Conflicts { pointers, .. } = three_way_merge(&base, &local, &remote) {
                prop_assert!(!pointers.is_empty());
                prop_assert!(pointers.windows(2).all(|pair| pair[0] <= pair[1]));
            }
        }
    }

    #[test]
    fn a_merge_patch_replaces_removes_and_recurses() {
        let target = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2]});
        let patch = json!({"a": null, "b": {"c": 20}, "e": [3], "f": "new"});
        assert_eq!(
            apply_merge_patch(&target, &patch),
            json!({"b": {"c": 20, "d": 3}, "e": [3], "f": "new"})
        );
        // A non-object patch replaces the target; a non-object target is replaced by an object patch.
        assert_eq!(apply_merge_patch(&target, &json!([1])), json!([1]));
        assert_eq!(
            apply_merge_patch(&json!(5), &json!({"x": null, "y": 1})),
            json!({"y": 1})
        );
    }
}
