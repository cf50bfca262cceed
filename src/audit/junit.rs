//! `audit -o junit`: JUnit XML for CI test tabs. One test suite per input file (or listed
//! cluster resource), one test case per pod template; each finding that denies the object is a
//! `<failure>`, the other findings (warnings, exempted findings with their reason) are lines of
//! the case's `<system-out>`. Opted-out workloads are skipped cases; unreadable inputs are
//! `<error>` cases. Other kinds (Services, ConfigMaps) are not test cases.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::admission::Mode;
use crate::decide::Finding;

use super::output::{InputError, ObjectResult, Verdict};

#[derive(Default)]
struct Case {
    name: String,
    failures: Vec<String>,
    skipped: Option<String>,
    error: Option<String>,
    out: Vec<String>,
}

struct Suite {
    name: String,
    cases: Vec<Case>,
}

#[derive(Default)]
pub(super) struct Junit {
    suites: Vec<Suite>,
}

impl Junit {
    pub(super) fn add(&mut self, object: &ObjectResult<'_>, mode: Mode, patch_applied: bool) {
        if object.handled_kind.is_none() {
            return;
        }
        let name = object.display_name();
        let mut cases: Vec<Case> = object
            .templates
            .iter()
            .map(|t| Case {
                name: format!("{name} {}", t.path),
                ..Case::default()
            })
            .collect();
        let paths: Vec<&str> = object.templates.iter().map(|t| t.path.as_str()).collect();
        let mut whole = Case {
            name: name.clone(),
            ..Case::default()
        };
        if object.decision == Verdict::Skipped {
            whole.skipped = Some(object.reason.unwrap_or("skipped").to_string());
        }
        for f in &object.violations {
            let case = owner(&paths, &f.path).map_or(&mut whole, |i| &mut cases[i]);
            let open = !(patch_applied && f.fixed_by_patch);
            if mode == Mode::Enforce && open && f.denies() {
                case.failures.push(f.describe());
            } else {
                case.out.push(line(f));
            }
        }
        // The object itself is a case when nothing else names it or something is said of it.
        if cases.is_empty()
            || whole.skipped.is_some()
            || !whole.failures.is_empty()
            || !whole.out.is_empty()
        {
            cases.insert(0, whole);
        }
        self.suite(&object.source.suite_name()).extend(cases);
    }

    pub(super) fn error(&mut self, e: &InputError) {
        let case = Case {
            name: "read input".to_string(),
            error: Some(e.to_string()),
            ..Case::default()
        };
        self.suite(&e.file).push(case);
    }

    fn suite(&mut self, name: &str) -> &mut Vec<Case> {
        let at = match self.suites.iter().position(|s| s.name == name) {
            Some(at) => at,
            None => {
                self.suites.push(Suite {
                    name: name.to_string(),
                    cases: Vec::new(),
                });
                self.suites.len() - 1
            }
        };
        &mut self.suites[at].cases
    }

    pub(super) fn write(&self, out: &mut impl Write) -> io::Result<()> {
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let all: Vec<&Case> = self.suites.iter().flat_map(|s| &s.cases).collect();
        let _ = writeln!(
            xml,
            "<testsuites name=\"inference-webhook audit\" {}>",
            counts(&all)
        );
        for suite in &self.suites {
            let cases: Vec<&Case> = suite.cases.iter().collect();
            let _ = writeln!(
                xml,
                "  <testsuite name=\"{}\" {}>",
                escape(&suite.name),
                counts(&cases)
            );
            for case in &suite.cases {
                write_case(&mut xml, case, &suite.name);
            }
            xml.push_str("  </testsuite>\n");
        }
        xml.push_str("</testsuites>\n");
        out.write_all(xml.as_bytes())
    }
}

fn counts(cases: &[&Case]) -> String {
    format!(
        "tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\"",
        cases.len(),
        cases.iter().filter(|c| !c.failures.is_empty()).count(),
        cases.iter().filter(|c| c.error.is_some()).count(),
        cases.iter().filter(|c| c.skipped.is_some()).count(),
    )
}

fn write_case(xml: &mut String, case: &Case, classname: &str) {
    let _ = write!(
        xml,
        "    <testcase name=\"{}\" classname=\"{}\">",
        escape(&case.name),
        escape(classname)
    );
    for f in &case.failures {
        let rule = f.split(':').next().unwrap_or_default();
        let _ = write!(
            xml,
            "\n      <failure message=\"{}\" type=\"{}\">{}</failure>",
            escape(f),
            escape(rule),
            escape(f)
        );
    }
    if let Some(e) = &case.error {
        let _ = write!(xml, "\n      <error message=\"{}\"/>", escape(e));
    }
    if let Some(s) = &case.skipped {
        let _ = write!(xml, "\n      <skipped message=\"{}\"/>", escape(s));
    }
    if !case.out.is_empty() {
        let _ = write!(
            xml,
            "\n      <system-out>{}</system-out>",
            escape(&case.out.join("\n"))
        );
    }
    xml.push_str("\n    </testcase>\n");
}

/// `warn  rule: path: message`, or `exempt rule: path: exempt (reason): message`.
fn line(f: &Finding) -> String {
    let tag = if f.exemption.is_some() {
        "exempt"
    } else {
        f.level.as_str()
    };
    format!("{tag:<6} {}", f.describe())
}

/// A template's display path without its ` (leader)` / ` (role)` suffix.
fn base_path(display: &str) -> &str {
    display.split(" (").next().unwrap_or(display)
}

/// The template a finding's path names (a finding on a whole template carries its display path,
/// ` (leader)` included), else the one whose path is the longest prefix of it at a boundary.
fn owner(templates: &[&str], path: &str) -> Option<usize> {
    if let Some(exact) = templates.iter().position(|t| *t == path) {
        return Some(exact);
    }
    templates
        .iter()
        .map(|t| base_path(t))
        .enumerate()
        .filter(|(_, b)| {
            path.strip_prefix(*b)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        })
        .max_by_key(|(_, b)| b.len())
        .map(|(i, _)| i)
}

/// XML text and attribute escaping; characters XML 1.0 cannot hold become U+FFFD.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_go_to_the_template_they_are_in() {
        let templates = [
            "spec.template",
            "spec.roles[1].template",
            "spec.lw.t (leader)",
            "spec.lw.t (worker)",
        ];
        assert_eq!(
            owner(&templates, "spec.template.spec.containers[0]"),
            Some(0)
        );
        assert_eq!(owner(&templates, "spec.roles[1].template"), Some(1));
        assert_eq!(owner(&templates, "spec.lw.t (worker)"), Some(3));
        assert_eq!(owner(&templates, "spec.templates"), None);
        assert_eq!(owner(&templates, "metadata.annotations"), None);
        assert_eq!(
            base_path("spec.lwt.leaderTemplate (leader)"),
            "spec.lwt.leaderTemplate"
        );
    }

    #[test]
    fn text_is_escaped_for_xml() {
        assert_eq!(
            escape("a<b & \"c\"\u{1}"),
            "a&lt;b &amp; &quot;c&quot;\u{FFFD}"
        );
    }
}
