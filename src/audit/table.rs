//! The human-readable report: one row per pod template, then the findings with their messages.

use std::io::{self, Write};

use crate::decide::{Decision, Detection, Finding};

use super::output::Verdict;

const HEADER: [&str; 7] = [
    "OBJECT", "SOURCE", "TEMPLATE", "BACKEND", "PORT", "VERDICT", "RULES",
];
const VERDICT_COLUMN: usize = 5;

#[derive(Clone, Copy)]
enum Tone {
    Plain,
    Good,
    Warn,
    Bad,
    Dim,
}

impl Tone {
    fn ansi(self) -> &'static str {
        match self {
            Tone::Plain => "",
            Tone::Good => "\x1b[32m",
            Tone::Warn => "\x1b[33m",
            Tone::Bad => "\x1b[31m",
            Tone::Dim => "\x1b[2m",
        }
    }
}

struct Row {
    cells: [String; 7],
    tone: Tone,
    /// `--explain`: the evidence of each detection of this template.
    evidence: Vec<String>,
}

pub(super) struct Table {
    color: bool,
    explain: bool,
    rows: Vec<Row>,
    findings: Vec<String>,
}

impl Table {
    pub(super) fn new(color: bool, explain: bool) -> Self {
        Table {
            color,
            explain,
            rows: Vec::new(),
            findings: Vec::new(),
        }
    }

    pub(super) fn add(
        &mut self,
        object: &str,
        source: &str,
        verdict: Verdict,
        decision: &Decision,
        violations: &[&Finding],
    ) {
        let tone = match verdict {
            Verdict::Denied => Tone::Bad,
            Verdict::Skipped => Tone::Dim,
            Verdict::Allowed if violations.is_empty() => Tone::Good,
            Verdict::Allowed => Tone::Warn,
        };
        let rules = rules_cell(violations);
        let first = [
            object.to_string(),
            source.to_string(),
            String::new(),
            String::new(),
            String::new(),
            verdict.as_str().to_string(),
            rules,
        ];
        if decision.templates.is_empty() {
            let mut cells = first.clone();
            cells[2] = decision.skipped.as_deref().unwrap_or("-").to_string();
            cells[3] = "-".into();
            cells[4] = "-".into();
            self.rows.push(Row {
                cells,
                tone,
                evidence: Vec::new(),
            });
        }
        for (i, t) in decision.templates.iter().enumerate() {
            let mut cells = if i == 0 {
                first.clone()
            } else {
                Default::default()
            };
            cells[2] = t.path.clone();
            cells[3] = t.backend.clone().unwrap_or_else(|| {
                // An engine that is detected but not labeled still shows which one it is.
                t.detections
                    .first()
                    .map_or("-".to_string(), |d| format!("({})", d.engine))
            });
            cells[4] = t.metrics_port.map_or("-".to_string(), |p| p.to_string());
            let evidence = if self.explain {
                t.detections.iter().map(explained).collect()
            } else {
                Vec::new()
            };
            self.rows.push(Row {
                cells,
                tone: if i == 0 { tone } else { Tone::Plain },
                evidence,
            });
        }
        for f in violations {
            self.findings.push(format!(
                "{:<5} {object} ({source}): {}",
                f.level.as_str(),
                f.describe()
            ));
        }
    }

    pub(super) fn write(&self, out: &mut impl Write) -> io::Result<()> {
        if self.rows.is_empty() {
            writeln!(out, "No workload of a handled kind in the input.")?;
        } else {
            let mut widths = HEADER.map(str::len);
            for row in &self.rows {
                for (w, cell) in widths.iter_mut().zip(&row.cells) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            let header = HEADER.map(str::to_string);
            self.line(out, &header, &widths, Tone::Plain)?;
            for row in &self.rows {
                self.line(out, &row.cells, &widths, row.tone)?;
                for e in &row.evidence {
                    writeln!(out, "    evidence: {e}")?;
                }
            }
        }
        if !self.findings.is_empty() {
            writeln!(out)?;
            writeln!(out, "Findings:")?;
            for f in &self.findings {
                writeln!(out, "  {f}")?;
            }
        }
        writeln!(out)
    }

    fn line(
        &self,
        out: &mut impl Write,
        cells: &[String; 7],
        widths: &[usize; 7],
        tone: Tone,
    ) -> io::Result<()> {
        let last = cells.len() - 1;
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            let pad = width.saturating_sub(cell.chars().count());
            let colored = self.color && i == VERDICT_COLUMN && !matches!(tone, Tone::Plain);
            if colored {
                write!(out, "{}{cell}\x1b[0m", tone.ansi())?;
            } else {
                write!(out, "{cell}")?;
            }
            if i < last {
                write!(out, "{:pad$}  ", "")?;
            }
        }
        writeln!(out)
    }
}

/// The rules column: each rule once, an exempted one marked.
fn rules_cell(violations: &[&Finding]) -> String {
    let mut rules: Vec<String> = Vec::new();
    for f in violations {
        let rule = match f.exemption {
            None => f.rule.as_str().to_string(),
            Some(_) => format!("{}(exempt)", f.rule.as_str()),
        };
        if !rules.contains(&rule) {
            rules.push(rule);
        }
    }
    if rules.is_empty() {
        "-".to_string()
    } else {
        rules.join(",")
    }
}

/// The `--explain` line of a detection: the engine, where, and what it rests on.
fn explained(d: &Detection) -> String {
    format!(
        "{} in container {} ({}), {} evidence: {}",
        d.engine,
        d.container,
        d.path,
        d.strength.as_str(),
        d.evidence.join("; ")
    )
}
