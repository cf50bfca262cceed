//! A YAML (or JSON) text read into nodes that remember their byte offsets, so that `--fix` can
//! insert text next to them instead of re-serialising the document.

use std::collections::HashSet;

use granit_parser::{Event, ParseResult, Parser, ScalarStyle, Span, StructureStyle};

pub(super) struct Node {
    pub kind: Kind,
    /// Byte offsets: a flow collection from its opening to past its closing bracket, a block
    /// collection from its first content to the end of its last.
    pub start: usize,
    pub end: usize,
    /// Line in the file (1-based) and column in characters (0-based) of `start`.
    pub line: usize,
    pub col: usize,
    /// The parser's anchor id, 0 for none.
    pub anchor: usize,
}

pub(super) enum Kind {
    Scalar {
        value: String,
        plain: bool,
    },
    Alias,
    Map {
        flow: bool,
        entries: Vec<(Node, Node)>,
    },
    Seq {
        flow: bool,
        items: Vec<Node>,
    },
}

impl Node {
    /// A null written as nothing (`key:`), `~` or `null`.
    pub(super) fn null(&self) -> Option<bool> {
        match &self.kind {
            Kind::Scalar { value, plain: true }
                if matches!(value.as_str(), "~" | "null" | "Null" | "NULL") =>
            {
                Some(self.start == self.end)
            }
            _ => None,
        }
    }
}

pub(super) struct Tree {
    pub root: Node,
    /// Anchors that an alias reuses: editing such a node would change every copy.
    pub aliased: HashSet<usize>,
}

/// Read the one document of `text`, whose first line is line `first_line` of its file.
pub(super) fn read(text: &str, first_line: usize) -> Result<Tree, String> {
    let mut reader = Reader {
        events: Parser::new_from_str(text),
        aliased: HashSet::new(),
        lines_before: first_line.saturating_sub(1),
    };
    let mut root = None;
    loop {
        let (event, span) = reader.next()?;
        match event {
            Event::StreamStart | Event::DocumentEnd => {}
            Event::StreamEnd => break,
            Event::DocumentStart(..) if root.is_some() => {
                return Err("the text holds more than one YAML document".into());
            }
            Event::DocumentStart(..) => {
                let (event, span) = reader.next()?;
                root = Some(reader.node(event, &span)?);
            }
            _ => {
                let line = reader.lines_before + span.start.line();
                return Err(format!("unexpected YAML at line {line}"));
            }
        }
    }
    let root = root.ok_or("the document is empty")?;
    Ok(Tree {
        root,
        aliased: reader.aliased,
    })
}

struct Reader<'a, I: Iterator<Item = ParseResult<'a>>> {
    events: I,
    aliased: HashSet<usize>,
    lines_before: usize,
}

impl<'a, I: Iterator<Item = ParseResult<'a>>> Reader<'a, I> {
    /// The next structural event; comments and anchor notes are skipped.
    fn next(&mut self) -> Result<(Event<'a>, Span), String> {
        loop {
            let (event, span) = self
                .events
                .next()
                .ok_or("the YAML ends early")?
                .map_err(|e| e.to_string())?;
            let structural = matches!(
                event,
                Event::StreamStart
                    | Event::StreamEnd
                    | Event::DocumentStart(..)
                    | Event::DocumentEnd
                    | Event::MappingEnd
                    | Event::SequenceEnd
            );
            if structural || event.is_node() {
                return Ok((event, span));
            }
        }
    }

    fn node(&mut self, event: Event<'a>, span: &Span) -> Result<Node, String> {
        let (start, end) = offsets(span)?;
        let mut node = Node {
            kind: Kind::Alias,
            start,
            end,
            line: self.lines_before + span.start.line(),
            col: span.start.col(),
            anchor: 0,
        };
        match event {
            Event::Scalar(value, style, anchor, _) => {
                node.anchor = anchor;
                node.kind = Kind::Scalar {
                    value: value.into_owned(),
                    plain: style == ScalarStyle::Plain,
                };
            }
            Event::Alias(id) => {
                self.aliased.insert(id);
            }
            Event::MappingStart(style, anchor, _) => {
                node.anchor = anchor;
                let flow = style == StructureStyle::Flow;
                let mut entries = Vec::new();
                node.end = loop {
                    let (event, span) = self.next()?;
                    if matches!(event, Event::MappingEnd) {
                        break offsets(&span)?.1;
                    }
                    let key = self.node(event, &span)?;
                    let (event, span) = self.next()?;
                    entries.push((key, self.node(event, &span)?));
                };
                if !flow {
                    node.end = entries.last().map_or(start, |(_, v)| v.end);
                }
                node.kind = Kind::Map { flow, entries };
            }
            Event::SequenceStart(style, anchor, _) => {
                node.anchor = anchor;
                let flow = style == StructureStyle::Flow;
                let mut items = Vec::new();
                node.end = loop {
                    let (event, span) = self.next()?;
                    if matches!(event, Event::SequenceEnd) {
                        break offsets(&span)?.1;
                    }
                    items.push(self.node(event, &span)?);
                };
                if !flow {
                    node.end = items.last().map_or(start, |v| v.end);
                }
                node.kind = Kind::Seq { flow, items };
            }
            _ => {
                return Err(format!(
                    "unexpected YAML at line {} (an unresolved alias?)",
                    self.lines_before + span.start.line()
                ));
            }
        }
        Ok(node)
    }
}

fn offsets(span: &Span) -> Result<(usize, usize), String> {
    span.byte_range()
        .map(|r| (r.start, r.end))
        .ok_or_else(|| "the YAML reader gave no byte offsets".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_know_their_offsets_and_styles() {
        let text = "a: &x\n  b: |\n    t\n  c: {k: v}\nd: *x\ne:\n";
        let tree = read(text, 1).unwrap_or_else(|e| panic!("{e}"));
        let Kind::Map {
            flow: false,
            entries,
        } = &tree.root.kind
        else {
            panic!("a block map");
        };
        let (_, a) = &entries[0];
        assert!(a.anchor != 0 && tree.aliased.contains(&a.anchor));
        let Kind::Map { entries: inner, .. } = &a.kind else {
            panic!("a map under a");
        };
        assert_eq!(&text[inner[1].1.start..inner[1].1.end], "{k: v}");
        assert_eq!(
            a.end, inner[1].1.end,
            "a block map ends with its last value"
        );
        assert!(matches!(entries[1].1.kind, Kind::Alias));
        assert_eq!(entries[2].1.null(), Some(true));
        assert!(read("a: 1\n---\nb: 2\n", 1).is_err());
    }
}
