//! Structural-schema checks of objects against the CRDs in ../shared/crds, as far as an object
//! the tests build can get them wrong.

use serde_json::Value;

/// The parts of structural-schema validation a report can get wrong: unknown fields, types,
/// enums and required fields.
pub fn check(schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        problems.push(format!("{at}: {value} not in {allowed:?}"));
    }
    let ty = schema["type"].as_str().unwrap_or("");
    let type_ok = match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        _ => true,
    };
    if !type_ok {
        problems.push(format!("{at}: {value} is not a {ty}"));
        return;
    }
    if let (Some(props), Some(object)) = (schema["properties"].as_object(), value.as_object()) {
        let open = schema.get("additionalProperties").is_some()
            || schema["x-kubernetes-preserve-unknown-fields"] == true;
        for (key, member) in object {
            match props.get(key) {
                Some(s) => check(s, member, &format!("{at}.{key}"), problems),
                None if !open && at != ".metadata" => {
                    problems.push(format!("{at}.{key}: not in the schema"))
                }
                None => {}
            }
        }
        for required in schema["required"].as_array().into_iter().flatten() {
            if let Some(key) = required.as_str()
                && !object.contains_key(key)
            {
                problems.push(format!("{at}: {key} is required"));
            }
        }
    }
    if let Some(items) = value.as_array() {
        for (i, item) in items.iter().enumerate() {
            check(&schema["items"], item, &format!("{at}[{i}]"), problems);
        }
        check_list_map_keys(schema, items, at, problems);
    }
}

/// A `x-kubernetes-list-type: map` list holds each key once (the API server rejects a second
/// `ports` entry with the same `containerPort` and `protocol`); a missing key takes its schema
/// default (`protocol: TCP`).
fn check_list_map_keys(schema: &Value, items: &[Value], at: &str, problems: &mut Vec<String>) {
    if schema["x-kubernetes-list-type"] != "map" {
        return;
    }
    let keys: Vec<&str> = schema["x-kubernetes-list-map-keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut seen = std::collections::HashSet::new();
    for item in items {
        let id: Vec<Value> = keys
            .iter()
            .map(|k| {
                item.get(*k)
                    .cloned()
                    .unwrap_or_else(|| schema["items"]["properties"][*k]["default"].clone())
            })
            .collect();
        if !seen.insert(serde_json::to_string(&id).unwrap_or_default()) {
            problems.push(format!(
                "{at}: two items with the map keys {keys:?} = {id:?}"
            ));
        }
    }
}
