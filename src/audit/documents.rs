//! Streaming reader of YAML / JSON streams: splits the input on `---` lines itself (so only one
//! document is in memory at a time and its starting line is known), then parses each document:
//! into `serde_json::Value`s, for the engine and for `--fix`'s check that its edit of the text
//! reads as the patched document (which refuses a repeated key: [`RepeatedKeys`]).

use std::io::{self, BufRead};

use serde::de::DeserializeOwned;

pub(super) use crate::yaml::RepeatedKeys;

/// One document as it appeared in the input, separator line included, byte for byte.
#[derive(Debug)]
pub(super) struct RawDocument {
    /// 1-based position among the documents of this input that have content.
    pub index: usize,
    /// 1-based line where the document's bytes start (its `---` line, if it has one).
    pub start: usize,
    /// 1-based line of the document's first content (after the separator and comments):
    /// the line shown to users.
    pub line: usize,
    pub bytes: Vec<u8>,
}

/// The text format of a document: `--fix` inserts JSON into JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    Yaml,
    Json,
}

/// A document that parsed. YAML documents hold one value; a JSON document may hold a stream of
/// concatenated values.
#[derive(Debug)]
pub(super) struct ParsedDocument<V = serde_json::Value> {
    pub format: Format,
    /// Each value with the 1-based line where it starts.
    pub values: Vec<(V, usize)>,
}

/// Why a document could not be read; `line` is absolute in the input.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct DocumentError {
    pub line: usize,
    pub message: String,
}

/// Splits a byte stream into documents on lines that are `---` (optionally followed by a space
/// or tab and more YAML, or a comment). Documents with nothing but blanks and comments are
/// passed through for `--fix` but not counted.
pub(super) struct DocumentReader<R> {
    reader: R,
    next_line: usize,
    /// The separator line that opened the next document, already read.
    pending: Option<Vec<u8>>,
    counted: usize,
    done: bool,
}

impl<R: BufRead> DocumentReader<R> {
    pub(super) fn new(reader: R) -> Self {
        DocumentReader {
            reader,
            next_line: 1,
            pending: None,
            counted: 0,
            done: false,
        }
    }

    /// The next document (content or not), or `None` at the end of the input.
    pub(super) fn next_document(&mut self) -> io::Result<Option<(RawDocument, bool)>> {
        if self.done {
            return Ok(None);
        }
        let start = self.next_line - usize::from(self.pending.is_some());
        let mut bytes = self.pending.take().unwrap_or_default();
        loop {
            let line_start = bytes.len();
            let n = self.reader.read_until(b'\n', &mut bytes)?;
            if n == 0 {
                self.done = true;
                break;
            }
            self.next_line += 1;
            // A separator on the first line opens this document; a later one opens the next.
            if line_start > 0 && is_separator(&bytes[line_start..]) {
                self.pending = Some(bytes.split_off(line_start));
                break;
            }
        }
        if bytes.is_empty() {
            return Ok(None);
        }
        let content = first_content_line(&bytes);
        if content.is_some() {
            self.counted += 1;
        }
        Ok(Some((
            RawDocument {
                index: self.counted,
                start,
                line: start + content.unwrap_or(0),
                bytes,
            },
            content.is_some(),
        )))
    }
}

fn is_separator(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match line.strip_prefix(b"---") {
        Some(rest) => rest.is_empty() || rest[0] == b' ' || rest[0] == b'\t',
        None => false,
    }
}

/// 0-based offset of the first line with content, or `None` when the document is only blank
/// lines, comments and separators. A separator with content after it counts as content.
fn first_content_line(bytes: &[u8]) -> Option<usize> {
    bytes.split(|b| *b == b'\n').position(|line| {
        let line = trim_ascii(line);
        let line = if is_separator(line) {
            trim_ascii(&line[3..])
        } else {
            line
        };
        !line.is_empty() && line[0] != b'#' && line != b"..."
    })
}

fn trim_ascii(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Parse one document. Text that starts with `{` or `[` is read as JSON first (faster, and
/// `--fix` keeps it JSON); YAML is the fallback and the default.
pub(super) fn parse<V: DeserializeOwned>(
    doc: &RawDocument,
    repeated: RepeatedKeys,
) -> Result<ParsedDocument<V>, DocumentError> {
    if doc.bytes.contains(&0) {
        return Err(DocumentError {
            line: doc.start + count_lines(&doc.bytes[..nul_offset(&doc.bytes)]),
            message: "binary data (NUL byte): not a YAML or JSON manifest".into(),
        });
    }
    let text = std::str::from_utf8(&doc.bytes).map_err(|e| DocumentError {
        line: doc.start + count_lines(&doc.bytes[..e.valid_up_to()]),
        message: format!(
            "not valid UTF-8 (byte {} of the document): manifests must be UTF-8 text",
            e.valid_up_to()
        ),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let body = text.trim_start();
    if (body.starts_with('{') || body.starts_with('['))
        && let Some(values) = parse_json_stream(text, doc.start)
    {
        return Ok(ParsedDocument {
            format: Format::Json,
            values,
        });
    }
    match crate::yaml::from_str::<V>(text, repeated) {
        Ok(value) => Ok(ParsedDocument {
            format: Format::Yaml,
            values: vec![(value, doc.line)],
        }),
        Err(e) => Err(DocumentError {
            line: doc.start + e.line.map_or(0, |l| l.saturating_sub(1)),
            message: format!("invalid YAML: {}", e.message),
        }),
    }
}

/// Concatenated JSON values, or `None` when the text is not JSON.
fn parse_json_stream<V: DeserializeOwned>(
    text: &str,
    first_line: usize,
) -> Option<Vec<(V, usize)>> {
    let mut values = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<V>();
    let mut offset = 0;
    let mut line = first_line;
    while let Some(next) = stream.next() {
        let value = next.ok()?;
        let skipped = &text[offset..];
        let lead = skipped.len() - skipped.trim_start().len();
        let value_line = line + count_lines(&text.as_bytes()[offset..offset + lead]);
        offset = stream.byte_offset();
        line = first_line + count_lines(&text.as_bytes()[..offset]);
        values.push((value, value_line));
    }
    Some(values)
}

fn count_lines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|b| **b == b'\n').count()
}

fn nul_offset(bytes: &[u8]) -> usize {
    bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<(usize, usize, String, bool)> {
        let mut reader = DocumentReader::new(text.as_bytes());
        let mut out = Vec::new();
        while let Some((doc, content)) = reader.next_document().unwrap_or(None) {
            out.push((
                doc.index,
                doc.line,
                String::from_utf8_lossy(&doc.bytes).into_owned(),
                content,
            ));
        }
        out
    }

    #[test]
    fn documents_are_split_on_separator_lines_with_their_start_lines() {
        let text = "# head\n---\na: 1\n---\n\n--- # c\nb: 2\n--- c: 3\n";
        let docs = split(text);
        let got: Vec<(usize, usize, bool)> = docs.iter().map(|d| (d.0, d.1, d.3)).collect();
        assert_eq!(
            got,
            vec![
                (0, 1, false),
                (1, 3, true),
                (1, 4, false),
                (2, 7, true),
                (3, 8, true)
            ]
        );
        let joined: String = docs.iter().map(|d| d.2.as_str()).collect();
        assert_eq!(
            joined, text,
            "documents must reproduce the input byte for byte"
        );
    }

    #[test]
    fn a_dash_line_inside_text_is_not_a_separator() {
        let docs = split("a: |\n  ---\nb: ---x\n----\n");
        assert_eq!(docs.len(), 1);
    }

    #[test]
    fn yaml_errors_carry_absolute_lines() {
        let mut reader = DocumentReader::new("a: 1\n---\nb: [1,\nc: 2\n".as_bytes());
        let _first = reader.next_document();
        let Ok(Some((doc, _))) = reader.next_document() else {
            panic!("second document missing");
        };
        let err = parse::<serde_json::Value>(&doc, RepeatedKeys::LastWins).err();
        assert!(
            matches!(err, Some(DocumentError { line, .. }) if line >= 3),
            "{err:?}"
        );
    }

    #[test]
    fn json_streams_give_each_value_its_line() {
        let doc = RawDocument {
            index: 1,
            start: 10,
            line: 10,
            bytes: b"{\"a\":1}\n\n{\"b\":\n2}\n".to_vec(),
        };
        let parsed =
            parse::<serde_json::Value>(&doc, RepeatedKeys::LastWins).map_err(|e| e.message);
        let parsed = parsed.as_ref().map(|p| {
            (
                p.format,
                p.values.iter().map(|(_, l)| *l).collect::<Vec<_>>(),
            )
        });
        assert_eq!(parsed, Ok((Format::Json, vec![10, 12])));
    }

    #[test]
    fn flow_yaml_that_is_not_json_still_parses() {
        let doc = RawDocument {
            index: 1,
            start: 1,
            line: 1,
            bytes: b"{kind: Pod}\n".to_vec(),
        };
        let parsed = parse::<serde_json::Value>(&doc, RepeatedKeys::LastWins).map(|p| p.format);
        assert_eq!(parsed, Ok(Format::Yaml));
    }

    #[test]
    fn binary_and_non_utf8_are_refused_with_a_line() {
        let nul = RawDocument {
            index: 1,
            start: 1,
            line: 1,
            bytes: b"a: 1\n\0\0".to_vec(),
        };
        assert!(matches!(
            parse::<serde_json::Value>(&nul, RepeatedKeys::LastWins),
            Err(DocumentError { line: 2, .. })
        ));
        let latin1 = RawDocument {
            index: 1,
            start: 5,
            line: 5,
            bytes: b"a: 1\nb: caf\xe9\n".to_vec(),
        };
        let err = parse::<serde_json::Value>(&latin1, RepeatedKeys::LastWins).err();
        assert!(
            matches!(&err, Some(DocumentError { line: 6, message }) if message.contains("UTF-8")),
            "{err:?}"
        );
    }
}
