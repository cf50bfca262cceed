//! `--fix`: apply the engine's patch as text insertions at the positions a YAML reader gives,
//! so that comments, quoting, flow style, anchors and key order stay as the user wrote them.
//! The result is read again and must equal the document patched as a tree, or it is refused.

mod edit;
mod emit;
#[cfg(test)]
mod tests_text;
mod tree;

use serde_yaml::Value;

use crate::engine::{Decision, PatchOp};

use super::documents::{self, Format, RawDocument};
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

/// The document with the engine's patches (each under its value's index and object pointer)
/// inserted into its text, or why it cannot be.
pub(super) fn fixed_document(
    raw: &RawDocument,
    values: usize,
    patches: &[(usize, String, Decision)],
) -> Result<Vec<u8>, String> {
    // The tree reader is stricter than the first reading: a repeated key is an error.
    let mut expected = match documents::parse::<Value>(raw) {
        Ok(parsed) if parsed.values.len() == values => parsed,
        Ok(_) => return Err("it reads differently the second time".into()),
        Err(e) => return Err(format!("{} (line {})", e.message, e.line)),
    };
    for (index, at, decision) in patches {
        apply(&mut expected.values[*index].0, at, &decision.patch)
            .map_err(|e| format!("the engine's patch does not apply: {e}"))?;
    }
    let text = std::str::from_utf8(&raw.bytes).map_err(|e| e.to_string())?;
    let json = expected.format == Format::Json;
    let mut edited = text.to_string();
    for (index, at, decision) in patches {
        for op in &decision.patch {
            let PatchOp::Add { path, value } = op;
            insert(
                &mut edited,
                raw.start,
                json,
                *index,
                &format!("{at}{path}"),
                value,
            )
            .map_err(|e| format!("patch path {path}: {e}"))?;
        }
    }
    let edited = RawDocument {
        bytes: edited.into_bytes(),
        ..*raw
    };
    match documents::parse::<Value>(&edited) {
        Ok(doc)
            if doc.format == expected.format
                && doc
                    .values
                    .iter()
                    .map(|v| &v.0)
                    .eq(expected.values.iter().map(|v| &v.0)) =>
        {
            Ok(edited.bytes)
        }
        _ => Err("the edited text would not read as the patched document".into()),
    }
}

/// Insert one `add` operation into the text of value `index` of the document (YAML documents
/// have one value; a JSON document may be a stream of them), which starts at `first_line`.
fn insert(
    text: &mut String,
    first_line: usize,
    json: bool,
    index: usize,
    path: &str,
    value: &serde_json::Value,
) -> Result<(), String> {
    let range = if json {
        json_values(text)?.into_iter().nth(index)
    } else {
        (index == 0).then_some(0..text.len())
    }
    .ok_or("the value to patch is missing")?;
    let part = &text[range.clone()];
    let lines_before = text[..range.start].matches('\n').count();
    let tree = tree::read(part, first_line + lines_before)?;
    let mut edit = edit::plan(part, &tree, path, value, json)?;
    if text.contains("\r\n") {
        edit.text = edit.text.replace('\n', "\r\n");
    }
    let at = range.start + edit.at;
    text.replace_range(at..at + edit.remove, &edit.text);
    Ok(())
}

/// The byte ranges of the values of a JSON stream (after a byte order mark).
fn json_values(text: &str) -> Result<Vec<std::ops::Range<usize>>, String> {
    let bom = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let body = &text[bom..];
    let mut stream = serde_json::Deserializer::from_str(body).into_iter::<serde::de::IgnoredAny>();
    let mut ranges = Vec::new();
    let mut end = 0;
    while let Some(next) = stream.next() {
        next.map_err(|e| e.to_string())?;
        let skipped = &body[end..];
        let start = end + skipped.len() - skipped.trim_start().len();
        end = stream.byte_offset();
        ranges.push(bom + start..bom + end);
    }
    Ok(ranges)
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
}
