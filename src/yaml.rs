//! YAML in, through serde-saphyr (maintained, panic-free, with `<<` merge keys and limits on
//! aliases, depth and size): one set of reading rules for the policy file, the audit's
//! manifests and `--fix`'s check of its own edits. The rules keep YAML 1.2's core schema, as
//! the project always read it: `yes`/`on` and `0755` stay strings, not a boolean and a number.

use serde::de::DeserializeOwned;

/// What a key given twice in one mapping means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepeatedKeys {
    /// The later value counts, as `kubectl apply` reads a manifest.
    LastWins,
    /// An error naming the key: where the text must be rewritten, neither value may be lost.
    Refused,
}

/// A YAML error: the message, and the 1-based line in the text read with that line's text
/// (which names the field: the reader's messages do not), when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub line: Option<usize>,
    pub message: String,
    pub line_text: Option<String>,
}

impl std::fmt::Display for YamlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, &self.line_text) {
            (Some(line), Some(text)) => write!(f, "{} (line {line}: {text})", self.message),
            (Some(line), None) => write!(f, "{} (line {line})", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// Lines are quoted up to this many characters.
const QUOTED_LINE_CHARS: usize = 80;

/// Read one YAML document.
pub fn from_str<T: DeserializeOwned>(text: &str, repeated: RepeatedKeys) -> Result<T, YamlError> {
    serde_saphyr::from_str_with_options(text, options(repeated)).map_err(|e| {
        let line = e.location().map(|l| l.line() as usize);
        let line_text = line
            .and_then(|l| text.lines().nth(l.checked_sub(1)?))
            .map(|t| t.trim().chars().take(QUOTED_LINE_CHARS).collect::<String>())
            .filter(|t| !t.is_empty());
        YamlError {
            line,
            message: message(&e),
            line_text,
        }
    })
}

fn options(repeated: RepeatedKeys) -> serde_saphyr::Options {
    serde_saphyr::options! {
        duplicate_keys: match repeated {
            RepeatedKeys::LastWins => serde_saphyr::DuplicateKeyPolicy::LastWins,
            RepeatedKeys::Refused => serde_saphyr::DuplicateKeyPolicy::Error,
        },
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
        with_snippet: false,
    }
}

/// The error's text without its location, which callers give as an absolute line.
fn message(error: &serde_saphyr::Error) -> String {
    let text = error.render_with_formatter(&serde_saphyr::UserMessageFormatter);
    let text = text.lines().next().unwrap_or_default();
    text.find(" at line ")
        .map_or(text, |i| &text[..i])
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn read(text: &str) -> Result<Value, YamlError> {
        from_str(text, RepeatedKeys::LastWins)
    }

    #[test]
    fn the_core_schema_keeps_yaml_1_1_spellings_as_text() {
        let got = read("a: yes\nb: on\nc: 0755\nd: 1_000\ne: true\nf: 8000\ng: ~\n");
        let want = json!({"a": "yes", "b": "on", "c": "0755", "d": "1_000", "e": true, "f": 8000, "g": null});
        assert_eq!(got, Ok(want));
    }

    #[test]
    fn merge_keys_and_anchors_are_expanded() {
        let got = read(
            "base: &b {image: vllm/vllm-openai, args: [--port, '8000']}\nc:\n  <<: *b\n  name: vllm\n",
        );
        assert_eq!(
            got.map(|v| v["c"].clone()),
            Ok(json!({"image": "vllm/vllm-openai", "args": ["--port", "8000"], "name": "vllm"}))
        );
    }

    #[test]
    fn a_repeated_key_is_the_later_value_or_an_error_naming_it() {
        assert_eq!(read("a: 1\na: 2\n"), Ok(json!({"a": 2})));
        let refused = from_str::<Value>("x: 0\nmodel: a\nmodel: b\n", RepeatedKeys::Refused);
        assert!(
            matches!(&refused, Err(YamlError { line: Some(3), message, .. }) if message.contains("model")),
            "{refused:?}"
        );
    }

    #[test]
    fn errors_give_the_line_apart_from_the_message() {
        let err = read("a: 1\nb: [1,\nc: 2\n").err();
        assert!(
            matches!(&err, Some(YamlError { line: Some(l), message, .. }) if *l >= 2 && !message.contains("line")),
            "{err:?}"
        );
        let named = from_str::<std::collections::BTreeMap<String, bool>>(
            "a: true\nb: maybe\n",
            RepeatedKeys::Refused,
        )
        .map_err(|e| e.to_string());
        assert!(
            matches!(&named, Err(m) if m.ends_with("(line 2: b: maybe)")),
            "{named:?}"
        );
    }
}
