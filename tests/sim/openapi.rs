//! The validator the schema-conformance tests share: an OpenAPI 3.0 response
//! schema made into JSON Schema (`nullable` → a `null` union) and checked with
//! formats (`date-time`, `date`, `uri`, `email`), every error listed.

use serde_json::{json, Value};

/// Reads an OpenAPI document (a test fixture).
pub fn load(path: &str) -> Value {
    let text = std::fs::read_to_string(path).expect("fixture present");
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// OpenAPI 3.0 `nullable` → JSON Schema null unions, recursively.
pub fn convert_nullable(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key != "example" && key != "examples" {
                    convert_nullable(child);
                }
            }
            if map.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(Value::Array(values)) = map.get_mut("enum") {
                    values.push(Value::Null);
                }
                match map.get("type").cloned() {
                    Some(Value::String(t)) => {
                        map.insert("type".into(), json!([t, "null"]));
                    }
                    _ => {
                        let inner = Value::Object(std::mem::take(map));
                        map.insert("anyOf".into(), json!([inner, {"type": "null"}]));
                    }
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(convert_nullable),
        _ => {}
    }
}

/// Asserts that `instance` matches `schema`, naming `what` and whose schema it is.
pub fn validate(schema: &Value, instance: &Value, what: &str, whose: &str) {
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .take(10)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match {whose} schema:\n{}",
        errors.join("\n")
    );
}
