//! `--fix`: apply the engine's patch as text insertions at the positions a YAML reader gives,
//! so that comments, quoting, flow style, anchors and key order stay as the user wrote them.
//! The result is read again and must equal the document patched as a tree, or it is refused.

mod edit;
mod emit;
#[cfg(test)]
mod tests_text;
mod text;
mod tree;

use serde_json::Value;

use crate::decide::{Decision, PatchOp};

use super::documents::{self, Format, RawDocument, RepeatedKeys};

/// Apply RFC 6902 `add` operations (the only kind the engine emits) in order, each under
/// `prefix` (the pointer of a `List` item, or empty).
pub(super) fn apply(target: &mut Value, prefix: &str, ops: &[PatchOp]) -> Result<(), String> {
    for op in ops {
        let PatchOp::Add { path, value } = op;
        add(target, &format!("{prefix}{path}"), value.clone())
            .map_err(|e| format!("patch path {path}: {e}"))?;
    }
    Ok(())
}

/// The unescaped tokens of an RFC 6901 pointer (`~1` is `/`, `~0` is `~`).
fn pointer_tokens(path: &str) -> Result<Vec<String>, String> {
    let rest = path
        .strip_prefix('/')
        .ok_or("a JSON pointer starts with '/'")?;
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn add(target: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *target = value;
        return Ok(());
    }
    let tokens = pointer_tokens(path)?;
    let Some((last, parents)) = tokens.split_last() else {
        return Err("empty pointer".into());
    };
    let mut node = target;
    for token in parents {
        node = match node {
            Value::Object(map) => map.get_mut(token.as_str()),
            Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| format!("{token:?} does not exist"))?;
    }
    match node {
        Value::Object(map) => {
            map.insert(last.clone(), value);
        }
        Value::Array(items) if last == "-" => items.push(value),
        Value::Array(items) => match last.parse::<usize>() {
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
    // The expected result, patched as a tree. That reading is stricter than the audit's: a
    // repeated key is an error.
    let mut expected = match documents::parse::<Value>(raw, RepeatedKeys::Refused) {
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
    let ops: Vec<text::Op<'_>> = patches
        .iter()
        .flat_map(|(index, at, decision)| {
            decision
                .patch
                .iter()
                .map(move |PatchOp::Add { path, value }| text::Op {
                    index: *index,
                    path: format!("{at}{path}"),
                    value,
                })
        })
        .collect();
    let verified = |edited: String| {
        let edited = RawDocument {
            bytes: edited.into_bytes(),
            ..*raw
        };
        let doc = documents::parse::<Value>(&edited, RepeatedKeys::Refused).ok()?;
        let same = doc.format == expected.format
            && doc
                .values
                .iter()
                .map(|v| &v.0)
                .eq(expected.values.iter().map(|v| &v.0));
        same.then_some(edited.bytes)
    };
    // All operations on one reading of the text; when one needs what another adds (or they
    // collide), one reading per operation.
    let once = text::edit(text, raw.start, json, &ops).ok();
    if let Some(bytes) = once.and_then(verified) {
        return Ok(bytes);
    }
    let mut edited = text.to_string();
    for op in &ops {
        edited = text::edit(&edited, raw.start, json, std::slice::from_ref(op))?;
    }
    verified(edited).ok_or_else(|| "the edited text would not read as the patched document".into())
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
        let mut mine = doc.clone();
        assert_eq!(apply(&mut mine, "", &ops), Ok(()));
        let mut reference = doc;
        let Ok(patch) = serde_json::from_value::<json_patch::Patch>(json!(ops)) else {
            panic!("ops must be valid RFC 6902");
        };
        assert!(json_patch::patch(&mut reference, &patch).is_ok());
        assert_eq!(mine, reference);
    }

    #[test]
    fn a_missing_parent_is_an_error_not_a_panic() {
        let mut doc = json!({"spec": []});
        assert!(apply(&mut doc, "", &[op("/spec/template/x", json!(1))]).is_err());
        assert!(apply(&mut doc, "", &[op("/spec/5", json!(1))]).is_err());
        assert!(apply(&mut doc, "", &[op("spec", json!(1))]).is_err());
    }
}
