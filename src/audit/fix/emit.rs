//! The text of values that `--fix` inserts: YAML block lines, YAML flow, or JSON.

use serde_json::Value;

/// How the document around the insertion writes its collections.
#[derive(Clone, Copy, Debug)]
pub(super) struct Style {
    /// Spaces between a key and the keys of its nested map.
    pub step: usize,
    /// Whether a list under a key starts its dashes at the key's column (`ports:\n- name`).
    pub indentless: bool,
    /// The document is JSON: everything is written as JSON.
    pub json: bool,
}

/// A scalar as YAML reads it back: strings stay plain only when no YAML reader (1.1 or 1.2)
/// could take them for anything else.
pub(super) fn scalar(value: &str, json: bool) -> String {
    const WORDS: [&str; 9] = ["y", "yes", "n", "no", "on", "off", "true", "false", "null"];
    let plain = !json
        && value.starts_with(|c: char| c.is_ascii_alphabetic())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'))
        && !WORDS.contains(&value.to_ascii_lowercase().as_str());
    if plain {
        value.to_string()
    } else {
        // A JSON string is a valid YAML double-quoted scalar.
        Value::from(value).to_string()
    }
}

/// A value on one line: `{containerPort: 8000, name: http}`, or JSON.
pub(super) fn flow(value: &Value, json: bool) -> String {
    match value {
        Value::String(s) => scalar(s, json),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(|v| flow(v, json)).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let entries: Vec<String> = map.iter().map(|(k, v)| entry(k, v, json)).collect();
            format!("{{{}}}", entries.join(", "))
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => value.to_string(),
    }
}

/// `key: value` on one line.
pub(super) fn entry(key: &str, value: &Value, json: bool) -> String {
    format!("{}: {}", scalar(key, json), flow(value, json))
}

/// Whether a value needs lines of its own (a collection with members).
pub(super) fn nests(value: &Value) -> bool {
    match value {
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
        _ => false,
    }
}

/// The lines of `key: value` in a block mapping whose keys start at column `indent`.
pub(super) fn block_entry(out: &mut String, indent: usize, key: &str, value: &Value, style: Style) {
    out.push_str(&" ".repeat(indent));
    out.push_str(&scalar(key, false));
    out.push(':');
    if nests(value) {
        out.push('\n');
        block_members(out, indent, value, style);
    } else {
        out.push(' ');
        out.push_str(&flow(value, false));
        out.push('\n');
    }
}

/// The lines of a collection's members, nested under a key at column `indent`.
pub(super) fn block_members(out: &mut String, indent: usize, value: &Value, style: Style) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                block_entry(out, indent + style.step, k, v, style);
            }
        }
        Value::Array(items) => {
            let dash = if style.indentless {
                indent
            } else {
                indent + style.step
            };
            for item in items {
                block_item(out, dash, 2, item, style);
            }
        }
        _ => {}
    }
}

/// The lines of one block sequence item: its dash at column `dash`, its content `offset`
/// columns further (a map's first entry on the dash's line).
pub(super) fn block_item(out: &mut String, dash: usize, offset: usize, item: &Value, style: Style) {
    let offset = offset.max(2);
    out.push_str(&" ".repeat(dash));
    out.push('-');
    out.push_str(&" ".repeat(offset - 1));
    match item {
        Value::Object(map) if !map.is_empty() => {
            let mut lines = String::new();
            for (k, v) in map {
                block_entry(&mut lines, dash + offset, k, v, style);
            }
            // The first entry goes on the dash's line, where its indentation already is.
            out.push_str(&lines[dash + offset..]);
        }
        _ => {
            out.push_str(&flow(item, false));
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const STYLE: Style = Style {
        step: 2,
        indentless: false,
        json: false,
    };

    #[test]
    fn strings_yaml_could_misread_are_quoted() {
        for (s, want) in [
            ("vllm", "vllm"),
            (
                "alibabacloud.com/inference-backend",
                "alibabacloud.com/inference-backend",
            ),
            ("8000", "\"8000\""),
            ("yes", "\"yes\""),
            ("Off", "\"Off\""),
            ("a: b", "\"a: b\""),
            ("", "\"\""),
            ("-x", "\"-x\""),
            ("tab\there", "\"tab\\there\""),
        ] {
            assert_eq!(scalar(s, false), want, "{s:?}");
        }
        assert_eq!(scalar("vllm", true), "\"vllm\"");
    }

    #[test]
    fn nested_values_become_block_lines() {
        let port = json!({"name": "http", "containerPort": 8000, "protocol": "TCP"});
        let mut out = String::new();
        block_item(&mut out, 4, 2, &port, STYLE);
        assert_eq!(
            out,
            "    - containerPort: 8000\n      name: http\n      protocol: TCP\n"
        );
        let mut out = String::new();
        block_entry(
            &mut out,
            2,
            "metadata",
            &json!({"labels": {"a": "1"}}),
            STYLE,
        );
        assert_eq!(out, "  metadata:\n    labels:\n      a: \"1\"\n");
        let mut out = String::new();
        let indentless = Style {
            indentless: true,
            ..STYLE
        };
        block_entry(&mut out, 0, "ports", &json!([{"name": "http"}]), indentless);
        assert_eq!(out, "ports:\n- name: http\n");
        assert_eq!(
            flow(&port, false),
            "{containerPort: 8000, name: http, protocol: TCP}"
        );
        assert_eq!(flow(&json!({"a": [1, null]}), true), "{\"a\": [1, null]}");
    }
}
