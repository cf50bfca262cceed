//! Operations planned on one reading of a document's text and applied as byte edits.

use std::collections::BTreeMap;
use std::ops::Range;

use super::edit::{self, Edit};
use super::tree;

/// One `add` operation, its pointer absolute in value `index` of the document.
pub(super) struct Op<'a> {
    pub index: usize,
    pub path: String,
    pub value: &'a serde_json::Value,
}

/// `text` (whose first line is `first_line` of its file) with `ops` inserted, all planned on
/// one reading; an operation whose parent another one creates is an error here.
pub(super) fn edit(
    text: &str,
    first_line: usize,
    json: bool,
    ops: &[Op<'_>],
) -> Result<String, String> {
    let ranges = if json {
        json_values(text)?
    } else {
        std::iter::once(0..text.len()).collect()
    };
    let mut by_value: BTreeMap<usize, Vec<(usize, &Op<'_>)>> = BTreeMap::new();
    for (n, op) in ops.iter().enumerate() {
        by_value.entry(op.index).or_default().push((n, op));
    }
    let mut edits = Vec::new();
    for (index, ops) in by_value {
        let range: &Range<usize> = ranges.get(index).ok_or("the value to patch is missing")?;
        let part = &text[range.clone()];
        let lines_before = text[..range.start].matches('\n').count();
        let tree = tree::read(part, first_line + lines_before)?;
        let style = edit::style_of(part, &tree.root, json);
        for (n, op) in ops {
            let mut edit = edit::plan(part, &tree, style, &op.path, op.value)
                .map_err(|e| format!("patch path {}: {e}", op.path))?;
            edit.at += range.start;
            edits.push((n, edit));
        }
    }
    apply(text, edits).ok_or_else(|| "two operations edit the same text".into())
}

/// Apply edits from the end of the text backwards; at one offset the later operation goes
/// first, so that the earlier one's text ends up before it. `None` when edits overlap.
fn apply(text: &str, mut edits: Vec<(usize, Edit)>) -> Option<String> {
    edits.sort_by_key(|(n, e)| (e.at, *n));
    let crlf = text.contains("\r\n");
    let mut out = text.to_string();
    let mut limit = text.len();
    for (_, e) in edits.into_iter().rev() {
        if e.at + e.remove > limit {
            return None;
        }
        limit = e.at;
        let new = if crlf {
            e.text.replace('\n', "\r\n")
        } else {
            e.text
        };
        out.replace_range(e.at..e.at + e.remove, &new);
    }
    Some(out)
}

/// The byte ranges of the values of a JSON stream (after a byte order mark).
fn json_values(text: &str) -> Result<Vec<Range<usize>>, String> {
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
