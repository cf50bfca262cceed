//! One `add` operation as a text edit: find the parent node the pointer names and insert the
//! new member beside its siblings, in their style, without touching any other byte (except an
//! explicit `null` that the value replaces).

use serde_json::Value;

use super::emit::{self, Style};
use super::pointer_tokens;
use super::tree::{Kind, Node, Tree};

/// Replace `remove` bytes at `at` by `text`.
#[derive(Debug)]
pub(super) struct Edit {
    pub at: usize,
    pub remove: usize,
    pub text: String,
}

/// The edit that performs `add` of `value` at `path` (an RFC 6902 pointer) in `text`, which
/// `tree` has read and whose collections are written in `style`.
pub(super) fn plan(
    text: &str,
    tree: &Tree,
    style: Style,
    path: &str,
    value: &Value,
) -> Result<Edit, String> {
    let tokens = pointer_tokens(path)?;
    let Some((last, parents)) = tokens.split_last() else {
        return Err("empty pointer".into());
    };
    let mut node = &tree.root;
    for token in parents {
        editable(text, tree, node)?;
        node = child(node, token).ok_or_else(|| format!("{token:?} does not exist"))?;
    }
    editable(text, tree, node)?;
    let json = style.json;
    match &node.kind {
        Kind::Map { flow, entries } => match entries.iter().find(|(k, _)| key_is(k, last)) {
            Some((key, old)) => {
                fill_null(text, key, old, !*flow, value, local(text, entries, style))
            }
            None if *flow => Ok(flow_insert(
                text,
                node,
                entries.last().map(|(k, v)| (k, v)),
                emit::entry(last, value, json),
            )),
            None => {
                let (key, _) = entries.first().ok_or("an empty block mapping")?;
                let mut lines = String::new();
                let style = local(text, entries, style);
                emit::block_entry(&mut lines, key.col, last, value, style);
                Ok(after_line(text, node.end, lines))
            }
        },
        Kind::Seq { flow, items } => {
            let index = match last.as_str() {
                "-" => items.len(),
                i => i
                    .parse::<usize>()
                    .ok()
                    .filter(|i| *i <= items.len())
                    .ok_or_else(|| format!("array index {last:?} out of range"))?,
            };
            if *flow {
                let item = emit::flow(value, json);
                return Ok(flow_seq_insert(text, node, items, index, item));
            }
            block_seq_insert(text, node, items, index, value, style)
        }
        Kind::Scalar { .. } | Kind::Alias => Err(format!(
            "the parent of {last:?} (line {}) is neither a mapping nor a list",
            node.line
        )),
    }
}

/// A node on the path must not be an alias, nor an anchor that an alias reuses: the edit
/// would change (or miss) the other copies.
fn editable(text: &str, tree: &Tree, node: &Node) -> Result<(), String> {
    if matches!(node.kind, Kind::Alias) {
        return Err(format!(
            "the patch goes through the alias {} at line {}",
            &text[node.start..node.end],
            node.line
        ));
    }
    if node.anchor != 0 && tree.aliased.contains(&node.anchor) {
        return Err(format!(
            "the patch goes through a node at line {} whose anchor an alias reuses",
            node.line
        ));
    }
    Ok(())
}

fn same_scalar(node: &Node, value: &Value) -> bool {
    match (&node.kind, value) {
        (Kind::Scalar { value: text, .. }, Value::String(s)) => text == s,
        (Kind::Scalar { value: text, .. }, Value::Number(n)) => *text == n.to_string(),
        _ => false,
    }
}

fn key_is(key: &Node, token: &str) -> bool {
    matches!(&key.kind, Kind::Scalar { value, .. } if value == token)
}

fn child<'n>(node: &'n Node, token: &str) -> Option<&'n Node> {
    match &node.kind {
        Kind::Map { entries, .. } => entries
            .iter()
            .find(|(k, _)| key_is(k, token))
            .map(|(_, v)| v),
        Kind::Seq { items, .. } => token.parse::<usize>().ok().and_then(|i| items.get(i)),
        Kind::Scalar { .. } | Kind::Alias => None,
    }
}

/// A new item of a block sequence, before item `index` or after the last, with its dash where
/// the first item has its own.
fn block_seq_insert(
    text: &str,
    node: &Node,
    items: &[Node],
    index: usize,
    value: &Value,
    style: Style,
) -> Result<Edit, String> {
    let first = items.first().ok_or("an empty block sequence")?;
    let dash = dash_of(text, first)?;
    let dash_col = dash - line_start(text, dash);
    let offset = if text[dash..first.start].contains('\n') {
        2
    } else {
        first.col.saturating_sub(dash_col)
    };
    let mut lines = String::new();
    emit::block_item(&mut lines, dash_col, offset, value, style);
    match items.get(index) {
        Some(before) => Ok(Edit {
            at: line_start(text, dash_of(text, before)?),
            remove: 0,
            text: lines,
        }),
        None => Ok(after_line(text, node.end, lines)),
    }
}

/// `add` on a key that holds null (the API server reads `labels:` as empty): the value takes
/// its place. Any other value is not the engine's to replace.
fn fill_null(
    text: &str,
    key: &Node,
    old: &Node,
    block: bool,
    value: &Value,
    style: Style,
) -> Result<Edit, String> {
    match old.null() {
        // `key:` in a block map: the members go on lines of their own below it.
        Some(true) if block && emit::nests(value) => {
            let mut lines = String::new();
            emit::block_members(&mut lines, key.col, value, style);
            Ok(after_line(text, old.end, lines))
        }
        // The reader places an empty null at its key's colon.
        Some(true) => {
            let colon = text[old.start..]
                .find(':')
                .ok_or_else(|| format!("no ':' after the key at line {}", key.line))?;
            let text = format!(" {}", emit::flow(value, style.json));
            Ok(Edit {
                at: old.start + colon + 1,
                remove: 0,
                text,
            })
        }
        Some(false) => Ok(Edit {
            at: old.start,
            remove: old.end - old.start,
            text: emit::flow(value, style.json),
        }),
        // An `add` of the value already there (a patch may repeat an operation) changes nothing.
        None if same_scalar(old, value) => Ok(Edit {
            at: old.start,
            remove: 0,
            text: String::new(),
        }),
        None => Err(format!(
            "the patch would replace the value at line {}",
            old.line
        )),
    }
}

/// A member inserted into a flow collection after `last` (or first, after the bracket): on a
/// line of its own, at the column of the last one, when the collection has one member a line.
fn flow_insert(text: &str, node: &Node, last: Option<(&Node, &Node)>, member: String) -> Edit {
    let Some((first_part, last_end)) = last.map(|(k, v)| (k, v.end)) else {
        return Edit {
            at: node.start + 1,
            remove: 0,
            text: member,
        };
    };
    let close = node.end.saturating_sub(1);
    let text_to_close = &text[last_end..close];
    let new = if text_to_close.contains('\n') {
        format!(",\n{}{member}", " ".repeat(first_part.col))
    } else {
        format!(", {member}")
    };
    Edit {
        at: last_end,
        remove: 0,
        text: new,
    }
}

fn flow_seq_insert(text: &str, node: &Node, items: &[Node], index: usize, item: String) -> Edit {
    match items.get(index) {
        Some(before) => Edit {
            at: before.start,
            remove: 0,
            text: format!("{item}, "),
        },
        None => flow_insert(text, node, items.last().map(|v| (v, v)), item),
    }
}

/// Lines inserted after the line where `end` is (or at that line's start when only
/// indentation precedes `end`, as after a block scalar), ending any unterminated last line.
fn after_line(text: &str, end: usize, lines: String) -> Edit {
    let start = line_start(text, end);
    if text[start..end].trim().is_empty() {
        return Edit {
            at: start,
            remove: 0,
            text: lines,
        };
    }
    match text[end..].find('\n') {
        Some(i) => Edit {
            at: end + i + 1,
            remove: 0,
            text: lines,
        },
        None => Edit {
            at: text.len(),
            remove: 0,
            text: format!("\n{lines}"),
        },
    }
}

fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

/// The offset of the `-` that opens a block sequence item.
fn dash_of(text: &str, item: &Node) -> Result<usize, String> {
    let before = text[..item.start].trim_end_matches([' ', '\t', '\r', '\n']);
    match before.strip_suffix('-') {
        Some(rest) if rest.is_empty() || rest.ends_with([' ', '\n']) => Ok(rest.len()),
        _ => Err(format!(
            "cannot find the dash of the list item at line {}",
            item.line
        )),
    }
}

/// The document's indentation step and list style, from its first nested block map and first
/// block list under a key (2 and indented lists when it has none).
pub(super) fn style_of(text: &str, root: &Node, json: bool) -> Style {
    let mut found = (None, None);
    visit(root, &mut |key, value| learn(&mut found, text, key, value));
    Style {
        step: found.0.unwrap_or(2),
        indentless: found.1.unwrap_or(false),
        json,
    }
}

/// The style of a block map's own entries where they show it (files mix styles), else `style`.
fn local(text: &str, entries: &[(Node, Node)], style: Style) -> Style {
    let mut found = (None, None);
    for (key, value) in entries {
        learn(&mut found, text, key, value);
    }
    Style {
        step: found.0.unwrap_or(style.step),
        indentless: found.1.unwrap_or(style.indentless),
        ..style
    }
}

/// What a block entry shows of the style, unless already known: the step to its nested map's
/// keys, or whether its list's dashes sit at the key's column.
fn learn(found: &mut (Option<usize>, Option<bool>), text: &str, key: &Node, value: &Node) {
    match &value.kind {
        Kind::Map {
            flow: false,
            entries,
        } if found.0.is_none() => {
            found.0 = entries
                .first()
                .map(|(k, _)| k.col.saturating_sub(key.col))
                .filter(|step| *step > 0);
        }
        Kind::Seq { flow: false, items } if found.1.is_none() => {
            found.1 = items
                .first()
                .and_then(|i| dash_of(text, i).ok())
                .map(|dash| dash - line_start(text, dash) == key.col);
        }
        _ => {}
    }
}

/// Call `f` on each block mapping entry, depth first.
fn visit(node: &Node, f: &mut impl FnMut(&Node, &Node)) {
    match &node.kind {
        Kind::Map { flow, entries } => {
            for (k, v) in entries {
                if !flow {
                    f(k, v);
                }
                visit(v, f);
            }
        }
        Kind::Seq { items, .. } => items.iter().for_each(|i| visit(i, f)),
        Kind::Scalar { .. } | Kind::Alias => {}
    }
}
