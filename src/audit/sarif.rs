//! `audit -o sarif`: SARIF 2.1.0 for code scanning (GitHub, Azure DevOps, IDE viewers). One
//! reporting descriptor per rule id, its texts taken from the rule reference (docs/rules.md) so
//! they cannot drift; one result per finding, at the document's first line (the engine names
//! fields by path, not by line: the path is in the logical location and the properties).

use std::io::{self, Write};

use serde_json::{Value, json};

use crate::decide::{Finding, Level, RuleId};

use super::output::{InputError, ObjectResult, Source};

/// The rule reference; each rule's row is its SARIF help and the target of its `helpUri`.
const RULES_MD: &str = include_str!("../../docs/rules.md");
const TOOL: &str = "inference-webhook";
const INFORMATION_URI: &str = env!("CARGO_PKG_REPOSITORY");
/// The base every relative artifact URI is resolved against (the directory the audit ran in).
const SRCROOT: &str = "%SRCROOT%";

#[derive(Default)]
pub(super) struct Sarif {
    results: Vec<Value>,
}

impl Sarif {
    pub(super) fn add(&mut self, object: &ObjectResult<'_>) {
        let name = object.display_name();
        for f in &object.violations {
            self.results.push(result(f, &name, object.source));
        }
    }

    pub(super) fn write(&self, out: &mut impl Write, errors: &[InputError]) -> io::Result<()> {
        let notifications: Vec<Value> = errors.iter().map(notification).collect();
        let mut run = json!({
            "tool": {"driver": {
                "name": TOOL,
                "version": env!("CARGO_PKG_VERSION"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "informationUri": INFORMATION_URI,
                "rules": RuleId::ALL.iter().map(|r| descriptor(*r)).collect::<Vec<_>>(),
            }},
            "invocations": [{
                "executionSuccessful": errors.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            "results": self.results,
        });
        if let Ok(cwd) = std::env::current_dir() {
            let mut base = file_uri(&cwd.to_string_lossy());
            if !base.ends_with('/') {
                base.push('/');
            }
            run["originalUriBaseIds"] = json!({SRCROOT: {"uri": base}});
        }
        let log = json!({
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [run],
        });
        serde_json::to_writer_pretty(&mut *out, &log)?;
        writeln!(out)
    }
}

fn level(level: Level) -> &'static str {
    match level {
        Level::Deny => "error",
        Level::Warn => "warning",
        Level::Off => "none",
    }
}

/// `metrics-disabled` -> `MetricsDisabled`: SARIF wants a rule's `name` in Pascal case.
fn pascal_case(id: &str) -> String {
    id.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|first| first.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

pub(super) fn help_uri(rule: RuleId) -> String {
    format!(
        "{INFORMATION_URI}/blob/main/docs/rules.md#{}",
        rule.as_str()
    )
}

/// The `fails on` and `fix` cells of a rule's row in docs/rules.md.
fn reference_row(rule: RuleId) -> Option<(&'static str, &'static str)> {
    let anchor = format!("| <a id=\"{}\"></a>", rule.as_str());
    let row = RULES_MD.lines().find(|l| l.starts_with(&anchor))?;
    let cells = split_cells(row);
    Some((cells.get(2)?, cells.get(3)?))
}

/// The cells of a Markdown table row; `\|` inside a cell is not a separator.
fn split_cells(row: &str) -> Vec<&str> {
    let inner = row.trim().trim_start_matches('|').trim_end_matches('|');
    let mut cells = Vec::new();
    let mut start = 0;
    let bytes = inner.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'|' && (i == 0 || bytes[i - 1] != b'\\') {
            cells.push(inner[start..i].trim());
            start = i + 1;
        }
    }
    cells.push(inner[start..].trim());
    cells
}

fn sentence(text: &str) -> String {
    let text = text.trim();
    if text.ends_with('.') {
        text.to_string()
    } else {
        format!("{text}.")
    }
}

fn descriptor(rule: RuleId) -> Value {
    let summary = sentence(&capitalised(rule.summary()));
    let uri = help_uri(rule);
    let (fails_on, fix) = reference_row(rule).unwrap_or(("", ""));
    let full = if fails_on.is_empty() {
        summary.clone()
    } else {
        format!("{summary} Fails on, for example: {}", sentence(fails_on))
    };
    json!({
        "id": rule.as_str(),
        "name": pascal_case(rule.as_str()),
        "shortDescription": {"text": summary},
        "fullDescription": {"text": full},
        "help": {
            "text": format!("Fix: {} See {uri}", sentence(fix)),
            "markdown": format!(
                "**Fails on** {fails_on}\n\n**Fix** {fix}\n\n[Rule reference]({uri})"
            ),
        },
        "helpUri": uri,
        "defaultConfiguration": {"level": level(rule.default_level())},
    })
}

fn capitalised(text: &str) -> String {
    let mut c = text.chars();
    c.next()
        .map(|first| first.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

fn result(f: &Finding, object: &str, source: &Source) -> Value {
    let rule_index = RuleId::ALL.iter().position(|r| *r == f.rule);
    let mut location = json!({
        "logicalLocations": [{
            "name": f.path,
            "fullyQualifiedName": format!("{object}: {}", f.path),
            "kind": "member",
        }],
    });
    if let Some(physical) = physical_location(source) {
        location["physicalLocation"] = physical;
    }
    let mut result = json!({
        "ruleId": f.rule.as_str(),
        "ruleIndex": rule_index,
        "level": level(f.level),
        "message": {"text": sentence(&format!("{object}: {}: {}", f.path, f.message))},
        "locations": [location],
        "properties": {"object": object, "path": f.path, "fixedByPatch": f.fixed_by_patch},
    });
    if let Source::Cluster { cluster, resource } = source {
        result["properties"]["cluster"] = json!(cluster);
        result["properties"]["resource"] = json!(resource);
    }
    if let Some(e) = &f.exemption {
        result["suppressions"] = json!([{"kind": "inSource", "justification": e.reason}]);
    }
    result
}

fn physical_location(source: &Source) -> Option<Value> {
    let Source::File { file, line, .. } = source else {
        return None;
    };
    let mut location = json!({"artifactLocation": artifact(file)?});
    location["region"] = json!({"startLine": line});
    Some(location)
}

/// The artifact of a file name as given on the command line; stdin has none.
fn artifact(file: &str) -> Option<Value> {
    if file == "<stdin>" {
        return None;
    }
    Some(if file.starts_with('/') {
        json!({"uri": file_uri(file)})
    } else {
        json!({"uri": encode_path(file.trim_start_matches("./")), "uriBaseId": SRCROOT})
    })
}

fn notification(e: &InputError) -> Value {
    let mut n = json!({"level": "error", "message": {"text": sentence(&e.to_string())}});
    if let Some(artifact) = artifact(&e.file) {
        let mut physical = json!({"artifactLocation": artifact});
        if let Some(line) = e.line {
            physical["region"] = json!({"startLine": line});
        }
        n["locations"] = json!([{"physicalLocation": physical}]);
    }
    n
}

fn file_uri(path: &str) -> String {
    format!("file://{}", encode_path(path))
}

/// Percent-encode what a URI path may not hold as is (RFC 3986 `pchar` and `/`).
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(b as char)
            }
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' | b':'
            | b'@' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_its_reference_row() {
        for rule in RuleId::ALL {
            let (fails_on, fix) = reference_row(*rule).unwrap_or_default();
            assert!(!fails_on.is_empty() && !fix.is_empty(), "{}", rule.as_str());
        }
    }

    #[test]
    fn cells_split_on_unescaped_bars_and_paths_are_encoded() {
        assert_eq!(split_cells("| a | b \\| c | d |"), ["a", "b \\| c", "d"]);
        assert_eq!(encode_path("dir/my file#1.yaml"), "dir/my%20file%231.yaml");
        assert_eq!(
            pascal_case("metrics-port-unresolved"),
            "MetricsPortUnresolved"
        );
    }
}
