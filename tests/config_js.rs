//! In-browser tests of reading the config object a site passes to
//! `Outbox.install`: JavaScript values that JSON has no word for are refused
//! with the field named.
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Function, Object, Reflect};
use outbox::worker::js::config_to_json;
use serde_json::json;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_service_worker);

/// `{ limits: { concurrency: value } }`.
fn limits_with(value: f64) -> JsValue {
    let limits = Object::new();
    Reflect::set(&limits, &"concurrency".into(), &value.into()).unwrap();
    let config = Object::new();
    Reflect::set(&config, &"limits".into(), &limits).unwrap();
    config.into()
}

#[wasm_bindgen_test]
fn numbers_that_are_not_finite_are_refused_by_name() {
    for (value, name) in [
        (f64::NAN, "NaN"),
        (f64::INFINITY, "Infinity"),
        (f64::NEG_INFINITY, "-Infinity"),
    ] {
        let error = config_to_json(&limits_with(value), &mut Vec::new()).unwrap_err();
        assert_eq!(
            error,
            format!("limits.concurrency: {name} is not a finite number")
        );
    }
}

#[wasm_bindgen_test]
fn plain_values_and_functions_convert() {
    let routes = Array::new();
    routes.push(&JsValue::from_str("/api/"));
    let config = limits_with(2.5);
    Reflect::set(&config, &"routes".into(), &routes).unwrap();
    Reflect::set(&config, &"resolve".into(), &Function::new_no_args("")).unwrap();
    let mut functions = Vec::new();
    let value = config_to_json(&config, &mut functions).unwrap();
    assert_eq!(
        value,
        json!({"limits": {"concurrency": 2.5}, "routes": ["/api/"], "resolve": {"$fn": 0}})
    );
    assert_eq!(functions.len(), 1);
}
