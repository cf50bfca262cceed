//! YAML in tests, read by the product's own reader (`inference_webhook::yaml`, serde-saphyr).

use inference_webhook::yaml::{RepeatedKeys, from_str};
use serde_json::Value;

/// One YAML document; panics (naming `origin`) when it does not read.
pub fn value(text: &str, origin: &str) -> Value {
    from_str(text, RepeatedKeys::LastWins).unwrap_or_else(|e| panic!("{origin}: invalid YAML: {e}"))
}

/// Every document of a stream, as `yaml.safe_load_all` counts them: split on `---` lines, an
/// empty or comment-only document is `Null`, and the text before the first separator counts
/// only when it has content.
pub fn documents(text: &str) -> Vec<Result<Value, String>> {
    let mut chunks: Vec<String> = vec![String::new()];
    for line in text.lines() {
        match line.strip_prefix("---") {
            Some(rest) if rest.is_empty() || rest.starts_with([' ', '\t']) => {
                chunks.push(format!("{}\n", rest.trim_start()))
            }
            _ => {
                let chunk = chunks.last_mut().expect("one chunk at least");
                chunk.push_str(line);
                chunk.push('\n');
            }
        }
    }
    let has_content = |c: &str| {
        c.lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    };
    if !has_content(&chunks[0]) {
        chunks.remove(0);
    }
    chunks
        .iter()
        .map(|c| match has_content(c) {
            false => Ok(Value::Null),
            true => from_str(c, RepeatedKeys::LastWins).map_err(|e| e.to_string()),
        })
        .collect()
}
