//! `--fix`: apply the engine's patch to a document re-read in key order, and write it back in
//! its own format.

use serde_yaml::Value;

use crate::engine::PatchOp;

use super::documents::{Format, ParsedDocument, RawDocument};

/// Apply RFC 6902 `add` operations (the only kind the engine emits) in order, each under
/// `prefix` (the pointer of a `List` item, or empty).
pub(super) fn apply(target: &mut Value, prefix: &str, ops: &[PatchOp]) -> Result<(), String> {
    for op in ops {
        let PatchOp::Add { path, value } = op;
        let value = serde_yaml::to_value(value).map_err(|e| e.to_string())?;
        add(target, &format!("{prefix}{path}"), value)
            .map_err(|e| format!("patch path {path}: {e}"))?;
    }
    Ok(())
}

fn add(target: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *target = value;
        return Ok(());
    }
    let rest = path
        .strip_prefix('/')
        .ok_or("a JSON pointer starts with '/'")?;
    let tokens: Vec<String> = rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    let Some((last, parents)) = tokens.split_last() else {
        return Err("empty pointer".into());
    };
    let mut node = target;
    for token in parents {
        node = match node {
            Value::Mapping(map) => map.get_mut(token.as_str()),
            Value::Sequence(items) => token.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| format!("{token:?} does not exist"))?;
    }
    match node {
        Value::Mapping(map) => {
            map.insert(Value::String(last.clone()), value);
        }
        Value::Sequence(items) if last == "-" => items.push(value),
        Value::Sequence(items) => match last.parse::<usize>() {
            Ok(i) if i <= items.len() => items.insert(i, value),
            _ => return Err(format!("array index {last:?} out of range")),
        },
        _ => {
            return Err(format!(
                "parent of {last:?} is neither an object nor an array"
            ));
        }
    }
    Ok(())
}

/// A patched document, re-serialized. Leading comment lines (such as Helm's `# Source:`) and
/// a bare `---` separator are kept; comments inside the document are not.
pub(super) fn render(raw: &RawDocument, parsed: &ParsedDocument<Value>) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(raw.bytes.len() + 256);
    for line in raw.bytes.split_inclusive(|b| *b == b'\n') {
        let text = String::from_utf8_lossy(line);
        let bare = text.trim_end();
        if let Some(after) = bare.strip_prefix("---") {
            // A separator with content after it becomes a bare one.
            if !after.is_empty() && !after.trim_start().starts_with('#') {
                out.extend_from_slice(b"---\n");
                break;
            }
        } else if !(bare.is_empty() || bare.starts_with('#')) {
            break;
        }
        out.extend_from_slice(line);
    }
    for (i, (value, _)) in parsed.values.iter().enumerate() {
        match parsed.format {
            Format::Yaml => out.extend(
                serde_yaml::to_string(value)
                    .map_err(|e| e.to_string())?
                    .bytes(),
            ),
            Format::Json => {
                if i > 0 {
                    out.push(b'\n');
                }
                serde_json::to_writer_pretty(&mut out, value).map_err(|e| e.to_string())?;
                out.push(b'\n');
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op(path: &str, value: serde_json::Value) -> PatchOp {
        PatchOp::Add {
            path: path.into(),
            value,
        }
    }

    #[test]
    fn add_ops_match_the_reference_implementation() {
        let doc = json!({"metadata": {"labels": {"a": "1"}}, "ports": [{"containerPort": 1}]});
        let ops = vec![
            op("/metadata/labels/x~1y", json!("v")),
            op("/ports/-", json!({"name": "http"})),
            op("/ports/0", json!({"first": true})),
            op("/metadata/annotations", json!({})),
        ];
        let mut mine: Value = serde_json::from_value(doc.clone()).expect("a YAML tree");
        assert_eq!(apply(&mut mine, "", &ops), Ok(()));
        let mine: serde_json::Value = serde_json::to_value(&mine).expect("a JSON tree");
        let mut reference = doc;
        let Ok(patch) = serde_json::from_value::<json_patch::Patch>(json!(ops)) else {
            panic!("ops must be valid RFC 6902");
        };
        assert!(json_patch::patch(&mut reference, &patch).is_ok());
        assert_eq!(mine, reference);
    }

    #[test]
    fn a_missing_parent_is_an_error_not_a_panic() {
        let mut doc: Value = serde_yaml::from_str("spec: []").expect("YAML");
        assert!(apply(&mut doc, "", &[op("/spec/template/x", json!(1))]).is_err());
        assert!(apply(&mut doc, "", &[op("/spec/5", json!(1))]).is_err());
        assert!(apply(&mut doc, "", &[op("spec", json!(1))]).is_err());
    }

    #[test]
    fn leading_comments_survive_a_rewrite() {
        let raw = RawDocument {
            index: 1,
            start: 1,
            line: 1,
            bytes: b"---\n# Source: chart/x.yaml\nkind: A # gone\n".to_vec(),
        };
        let parsed = ParsedDocument {
            format: Format::Yaml,
            values: vec![(serde_yaml::from_str("kind: A\nn: '8080'").expect("YAML"), 1)],
        };
        let out = render(&raw, &parsed).map(|b| String::from_utf8_lossy(&b).into_owned());
        assert_eq!(
            out,
            Ok("---\n# Source: chart/x.yaml\nkind: A\nn: '8080'\n".to_string())
        );
    }
}
