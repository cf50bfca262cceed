//! The audit report: each object is decided on once, counted, and written either as a line of the
//! streamed JSON document or as rows of the table. The exit code is decided here.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::Value;

use crate::admission::{Mode, Outcome, Route};
use crate::cluster::pods::UnlabeledPod;
use crate::decide::{Decision, Finding, Level, PatchOp, Policy, TemplateDecision};

use super::junit::Junit;
use super::sarif::Sarif;
use super::table::Table;

/// Version of the JSON report's schema; bumped on any incompatible change.
pub(crate) const SCHEMA: &str = "inference-webhook.audit/v1";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    /// SARIF 2.1.0, for code scanning.
    Sarif,
    /// JUnit XML, for CI test reports.
    Junit,
}

/// Where an object came from.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Source {
    File {
        file: String,
        /// 1-based index of the document in the file.
        document: usize,
        /// 1-based line where the document (or the value, in a JSON stream) starts.
        line: usize,
        /// 0-based index in the `items` of a `List` document.
        #[serde(skip_serializing_if = "Option::is_none")]
        item: Option<usize>,
    },
    Cluster {
        cluster: String,
        /// `resource.group/version` that was listed.
        resource: String,
    },
}

impl Source {
    /// The input a JUnit test suite groups: the file, or the listed cluster resource.
    pub(crate) fn suite_name(&self) -> String {
        match self {
            Source::File { file, .. } => file.clone(),
            Source::Cluster { resource, .. } => resource.clone(),
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File {
                file,
                document,
                line,
                item,
            } => {
                write!(f, "{file}:{document}")?;
                if let Some(item) = item {
                    write!(f, "[{item}]")?;
                }
                write!(f, "({line})")
            }
            Source::Cluster { resource, .. } => write!(f, "{resource}"),
        }
    }
}

/// An input (or a part of one) that could not be audited.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct InputError {
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub message: String,
}

impl InputError {
    pub(crate) fn whole(file: impl Into<String>, message: impl Into<String>) -> Self {
        InputError {
            file: file.into(),
            document: None,
            line: None,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(d) = self.document {
            write!(f, ": document {d}")?;
        }
        if let Some(l) = self.line {
            write!(f, " (line {l})")?;
        }
        write!(f, ": {}", self.message)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Verdict {
    Allowed,
    Denied,
    Skipped,
}

impl Verdict {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Denied => "denied",
            Verdict::Skipped => "skipped",
        }
    }
}

/// One object of the JSON report; the SARIF and JUnit writers read the same.
#[derive(Serialize)]
pub(crate) struct ObjectResult<'a> {
    pub kind: Option<&'a str>,
    #[serde(rename = "apiVersion")]
    pub api_version: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
    pub source: &'a Source,
    pub decision: Verdict,
    /// Why the object was skipped, or the denial message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<&'a str>,
    pub templates: &'a [TemplateDecision],
    pub patch: &'a [PatchOp],
    pub violations: Vec<&'a Finding>,
    /// The kind the engine handled the object as (`None`: a kind it does not handle).
    #[serde(skip)]
    pub handled_kind: Option<&'static str>,
}

impl ObjectResult<'_> {
    /// `Kind namespace/name`, as the table and the CI formats name an object.
    pub(crate) fn display_name(&self) -> String {
        format!(
            "{} {}{}",
            self.kind.unwrap_or("<no kind>"),
            self.namespace.map(|n| format!("{n}/")).unwrap_or_default(),
            self.name.unwrap_or("<unnamed>")
        )
    }
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Summary {
    /// Kubernetes objects seen (documents and `List` items with a `kind`).
    pub objects: usize,
    /// Objects of a handled kind that were examined.
    pub workloads: usize,
    /// Workloads where an inference engine was detected.
    pub inference: usize,
    /// Objects with a non-empty patch (lacking the labels or the named port).
    pub patched: usize,
    pub allowed: usize,
    pub denied: usize,
    /// Objects of a handled kind the engine skipped (opted out).
    pub skipped: usize,
    /// Objects of a kind the engine does not handle (Services, ConfigMaps, ...).
    pub not_handled: usize,
    pub deny_violations: usize,
    pub warn_violations: usize,
    /// Findings exempted by the object's annotations (not in the two counts above).
    pub exempted_violations: usize,
    /// Inputs or documents that could not be read.
    pub errors: usize,
    /// Inference pods lacking the labels or the port that no workload above covers
    /// (`audit --cluster` only; never changes the exit code).
    pub unlabeled_pods: usize,
    pub exit_code: u8,
}

/// How the report is written.
pub(crate) struct OutputOptions {
    pub format: OutputFormat,
    pub explain: bool,
    pub color: bool,
    pub mode: Mode,
    /// `Validate` for a plain audit (the labels count as missing); `Mutate` under `--fix`
    /// (what counts is what the patch does not fix).
    pub route: Route,
}

pub(crate) struct Writer<W: Write> {
    policy: Policy,
    opts: OutputOptions,
    out: W,
    objects_written: usize,
    table: Table,
    errors: Vec<InputError>,
    notes: Vec<String>,
    pods: Vec<UnlabeledPod>,
    summary: Summary,
    sarif: Sarif,
    junit: Junit,
}

/// The audit's verdict on a decision, given the outcome under the audit's mode and route.
pub(crate) fn verdict(decision: &Decision, outcome: &Outcome) -> Verdict {
    if decision.skipped_reason().is_some() {
        Verdict::Skipped
    } else if outcome.allowed {
        Verdict::Allowed
    } else {
        Verdict::Denied
    }
}

/// The part of an object that the report shows (kind, apiVersion, namespace, name); other
/// values are returned as they are.
pub(crate) fn identity(value: &Value) -> Value {
    let Value::Object(object) = value else {
        return value.clone();
    };
    let mut out = serde_json::Map::new();
    for key in ["apiVersion", "kind"] {
        if let Some(v) = object.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(Value::Object(meta)) = object.get("metadata") {
        let meta: serde_json::Map<String, Value> = ["name", "namespace"]
            .into_iter()
            .filter_map(|k| meta.get(k).map(|v| (k.to_string(), v.clone())))
            .collect();
        out.insert("metadata".into(), Value::Object(meta));
    }
    Value::Object(out)
}

/// A string field of the object, if present.
fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

impl<W: Write> Writer<W> {
    pub(crate) fn new(policy: Policy, opts: OutputOptions, mut out: W) -> io::Result<Self> {
        if opts.format == OutputFormat::Json {
            write!(
                out,
                "{{\"schema\":\"{SCHEMA}\",\"mode\":\"{}\",\"objects\":[",
                opts.mode
            )?;
        }
        let table = Table::new(opts.color, opts.explain);
        Ok(Writer {
            policy,
            opts,
            out,
            objects_written: 0,
            table,
            errors: Vec::new(),
            notes: Vec::new(),
            pods: Vec::new(),
            summary: Summary::default(),
            sarif: Sarif::default(),
            junit: Junit::default(),
        })
    }

    pub(crate) fn summary(&self) -> &Summary {
        &self.summary
    }

    pub(crate) fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Report an object with the engine's decision on it. Documents without a `kind` are
    /// noted, not reported. Returns the decision (for `--fix`), or `None` for a non-object.
    pub(crate) fn record(
        &mut self,
        value: &Value,
        source: Source,
        decision: Decision,
    ) -> io::Result<Option<Decision>> {
        let Some(kind) = text(value, "/kind") else {
            let what = if value.is_object() {
                "has no `kind`"
            } else {
                "is not a mapping"
            };
            self.notes.push(format!(
                "{source}: {what}: not a Kubernetes object, skipped"
            ));
            return Ok(None);
        };
        // A handled object's controller made it: the parent's record covers it, so a workload
        // is counted once, under its top object.
        if decision.child_of.is_some() {
            return Ok(None);
        }
        if self.opts.route == Route::Mutate {
            let at = &source;
            let lines = super::suggest::suggestions(&decision);
            self.notes
                .extend(lines.into_iter().map(|s| format!("{at}: {s}")));
        }
        let outcome = Outcome::of(&decision, self.opts.mode, self.opts.route);
        let skipped_reason = decision.skipped_reason();
        let verdict = verdict(&decision, &outcome);
        let violations = decision.reported_findings();
        self.count(&decision, verdict, &violations);

        let report = ObjectResult {
            kind: Some(kind),
            api_version: text(value, "/apiVersion"),
            namespace: text(value, "/metadata/namespace"),
            name: text(value, "/metadata/name"),
            source: &source,
            decision: verdict,
            reason: skipped_reason.or(outcome.message.as_deref()),
            workload: decision.workload.as_deref(),
            templates: &decision.templates,
            patch: &decision.patch,
            violations,
            handled_kind: decision.kind,
        };
        match self.opts.format {
            OutputFormat::Json => {
                if self.objects_written > 0 {
                    self.out.write_all(b",")?;
                }
                self.out.write_all(b"\n")?;
                serde_json::to_writer(&mut self.out, &report)?;
                self.objects_written += 1;
            }
            OutputFormat::Table => {
                // The table lists what the engine examined; other kinds only count.
                if decision.kind.is_some() {
                    self.table.add(
                        &report.display_name(),
                        &source.to_string(),
                        verdict,
                        &decision,
                        &report.violations,
                    );
                }
            }
            OutputFormat::Sarif => self.sarif.add(&report),
            OutputFormat::Junit => self
                .junit
                .add(&report, self.opts.mode, outcome.patch.is_some()),
        }
        Ok(Some(decision))
    }

    fn count(&mut self, decision: &Decision, verdict: Verdict, violations: &[&Finding]) {
        let s = &mut self.summary;
        s.objects += 1;
        match verdict {
            Verdict::Allowed => s.allowed += 1,
            Verdict::Denied => s.denied += 1,
            Verdict::Skipped if decision.kind.is_none() => s.not_handled += 1,
            Verdict::Skipped => s.skipped += 1,
        }
        if decision.kind.is_some() && decision.skipped.is_none() {
            s.workloads += 1;
            if decision.templates.iter().any(|t| !t.detections.is_empty()) {
                s.inference += 1;
            }
        }
        if !decision.patch.is_empty() {
            s.patched += 1;
        }
        for f in violations {
            match (&f.exemption, f.level) {
                (Some(_), _) => s.exempted_violations += 1,
                (None, Level::Deny) => s.deny_violations += 1,
                (None, _) => s.warn_violations += 1,
            }
        }
    }

    /// An unreadable input or document, or a document `--fix` cannot write: shown at once on
    /// stderr, and in the report.
    pub(crate) fn error(&mut self, error: InputError) {
        eprintln!("error: {error}");
        self.summary.errors += 1;
        if self.opts.format == OutputFormat::Junit {
            self.junit.error(&error);
        }
        self.errors.push(error);
    }

    /// An inference pod that lacks the labels or the port; listed at the end of the report.
    pub(crate) fn pod(&mut self, pod: UnlabeledPod) {
        self.summary.unlabeled_pods += 1;
        self.pods.push(pod);
    }

    /// Something the user should know that is not an error (a CRD that is not installed).
    pub(crate) fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// Write the end of the report and return the exit code: 2 when any input could not be
    /// read (the audit is incomplete, whatever else it found), else 1 when any object is
    /// denied, else 0.
    pub(crate) fn finish(mut self) -> io::Result<u8> {
        let code = if self.summary.errors > 0 {
            2
        } else if self.summary.denied > 0 {
            1
        } else {
            0
        };
        self.summary.exit_code = code;
        match self.opts.format {
            OutputFormat::Json => {
                if self.objects_written > 0 {
                    self.out.write_all(b"\n")?;
                }
                write!(self.out, "],\"unlabeledPods\":")?;
                serde_json::to_writer(&mut self.out, &super::pods::groups(&self.pods))?;
                write!(self.out, ",\"errors\":")?;
                serde_json::to_writer(&mut self.out, &self.errors)?;
                write!(self.out, ",\"notes\":")?;
                serde_json::to_writer(&mut self.out, &self.notes)?;
                write!(self.out, ",\"summary\":")?;
                serde_json::to_writer(&mut self.out, &self.summary)?;
                writeln!(self.out, "}}")?;
                for note in &self.notes {
                    eprintln!("note: {note}");
                }
            }
            OutputFormat::Sarif | OutputFormat::Junit => {
                if self.opts.format == OutputFormat::Sarif {
                    self.sarif.write(&mut self.out, &self.errors)?;
                } else {
                    self.junit.write(&mut self.out)?;
                }
                for note in &self.notes {
                    eprintln!("note: {note}");
                }
            }
            OutputFormat::Table => {
                self.table.write(&mut self.out)?;
                super::pods::write_table(&mut self.out, &self.pods)?;
                for note in &self.notes {
                    writeln!(self.out, "note: {note}")?;
                }
                let s = &self.summary;
                writeln!(
                    self.out,
                    "{} objects ({} of other kinds), {} workloads ({} running an inference engine), \
                     {} lacking labels or port, {} denied, {} skipped, {} input error{} \
                     (mode {}){}",
                    s.objects,
                    s.not_handled,
                    s.workloads,
                    s.inference,
                    s.patched,
                    s.denied,
                    s.skipped,
                    s.errors,
                    if s.errors == 1 { "" } else { "s" },
                    self.opts.mode,
                    match s.unlabeled_pods {
                        0 => String::new(),
                        n => format!(
                            "; {n} inference pod{} lacking labels or port",
                            if n == 1 { "" } else { "s" }
                        ),
                    },
                )?;
            }
        }
        self.out.flush()?;
        Ok(code)
    }
}
