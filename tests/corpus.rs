//! Every manifest of `../shared/corpus` (real upstream files, read at run time, never copied):
#![allow(clippy::unwrap_used, clippy::expect_used)]
//! the engines the engine detects must be the engines SOURCES.md lists for that file, and every
//! metrics port SOURCES.md gives must be the one detected. Fails when the folder is absent (CI always has it).

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use inference_webhook::decide::{KnownSources, Operation, Policy};
use serde::Deserialize;
use serde_json::Value;
use support::decide::{create_with, decide_input, every_backend};

fn corpus_dir() -> PathBuf {
    support::fixtures::shared("corpus")
}

struct Expected {
    file: String,
    engines: BTreeSet<String>,
    /// How many pod templates (roles, leader/worker, containers) run an engine.
    serving_templates: usize,
    ports: BTreeSet<u16>,
}

/// Rows of the SOURCES.md table: the file, and each `engine @ port` of its last column.
fn expectations(sources: &str) -> Vec<Expected> {
    let mut out = Vec::new();
    for line in sources
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains(".yaml"))
    {
        let cells: Vec<&str> = line.split(" | ").collect();
        let (Some(file), Some(last)) = (cells.get(1), cells.last()) else {
            continue;
        };
        let mut engines = BTreeSet::new();
        let mut serving_templates = 0;
        let mut ports = BTreeSet::new();
        for (i, _) in last.match_indices(" @ ") {
            let before = &last[..i];
            // Drop a parenthetical such as `triton (TensorRT-LLM backend)`.
            let before = match before.strip_suffix(')') {
                Some(b) => b.rfind(" (").map_or(b, |open| &b[..open]),
                None => before,
            };
            let name: String = before
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            if name != "none" && !name.is_empty() {
                engines.insert(name);
                serving_templates += 1;
            }
            let digits: String = last[i + 3..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(p) = digits.parse() {
                ports.insert(p);
            }
        }
        out.push(Expected {
            file: file.trim().to_string(),
            engines,
            serving_templates,
            ports,
        });
    }
    out
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("corpus file is text");
    support::yaml::documents(&text)
        .into_iter()
        .filter_map(Result::ok)
        .filter(Value::is_object)
        .collect()
}

#[test]
fn detected_engines_match_the_corpus_sources() {
    let dir = corpus_dir();
    let sources = std::fs::read_to_string(dir.join("SOURCES.md")).expect("SOURCES.md readable");
    let rows = expectations(&sources);
    assert!(
        rows.len() >= 40,
        "SOURCES.md table parsed: {} rows",
        rows.len()
    );
    let policy = Policy::default();
    let mut problems = Vec::new();
    let mut handled_files = 0;
    for row in &rows {
        let mut handled = false;
        let mut engines = BTreeSet::new();
        let mut ports = BTreeSet::new();
        // A role (or a template outside roles), counted once whatever its leader/worker variants.
        let mut serving = BTreeSet::new();
        for doc in documents(&dir.join(&row.file)) {
            let d = create_with(&doc, &policy);
            handled |= d.kind.is_some();
            for t in &d.templates {
                if !t.detections.is_empty() {
                    let base = t.path.split(" (").next().unwrap_or_default().to_string();
                    serving.insert(t.role.clone().unwrap_or(base));
                }
                for det in &t.detections {
                    // SOURCES.md names vLLM prefill/decode roles plain `vllm`.
                    let name = if det.backend == "vllm-pd" {
                        "vllm"
                    } else {
                        det.backend
                    };
                    engines.insert(name.to_string());
                    ports.extend(det.metrics_port);
                }
            }
        }
        if !handled {
            // Operator CRs (KServe, Dynamo, production-stack) carry no pod template we handle.
            assert!(
                engines.is_empty(),
                "{}: unhandled kinds must yield nothing",
                row.file
            );
            continue;
        }
        handled_files += 1;
        if engines != row.engines {
            problems.push(format!(
                "{}: detected {:?}, SOURCES.md says {:?}",
                row.file, engines, row.engines
            ));
        }
        if serving.len() != row.serving_templates {
            problems.push(format!(
                "{}: {} templates run an engine ({:?}), SOURCES.md says {}",
                row.file,
                serving.len(),
                serving,
                row.serving_templates
            ));
        }
        if !row.ports.is_subset(&ports) {
            problems.push(format!(
                "{}: ports {:?}, SOURCES.md says {:?}",
                row.file, ports, row.ports
            ));
        }
    }
    assert!(handled_files >= 35, "handled files: {handled_files}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// One entry of `../shared/corpus-extra/expected.yaml` (its header explains the fields).
#[derive(Deserialize)]
struct Entry {
    file: String,
    document: usize,
    template: String,
    engine: String,
    #[serde(default, deserialize_with = "port_or_none")]
    port: Option<u16>,
    #[serde(default)]
    container: Option<String>,
    #[serde(default)]
    worker_only: bool,
    #[serde(default = "yes")]
    metrics_enabled: bool,
    #[serde(default = "yes")]
    decidable: bool,
    #[serde(default)]
    lookalike: Option<String>,
    #[serde(default)]
    metrics_host: Option<String>,
}

fn yes() -> bool {
    true
}

fn port_or_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        _ => None,
    })
}

/// Expectations of `expected.yaml` this project holds to be wrong, each with the upstream
/// evidence: (file, document, template, why).
const EXTRA_EXCEPTIONS: &[(&str, usize, &str, &str)] = &[(
    "sgl-project__rbg/examples__inference__ecosystem__dynamo__agg-multi-nodes.yaml",
    0,
    "spec.roles[1].leaderWorkerPattern.templateRef",
    "expects worker_only for a template that leader and workers share, with \
         `--node-rank $(RBG_LWP_WORKER_INDEX)`: on the leader pod that index is 0, and the rank-0 \
         Dynamo worker is the one that registers and serves its system port \
         (ai-dynamo/dynamo components/src/dynamo/sglang); that metrics need DYN_SYSTEM_PORT is \
         reported (metrics-port-unresolved), not as metrics-disabled",
)];

/// Every document of a file as `yaml.safe_load_all` counts them (empty ones included).
fn all_documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("corpus file is text");
    support::yaml::documents(&text)
        .into_iter()
        .map(|doc| doc.unwrap_or(Value::Null))
        .collect()
}

/// The expected.yaml name of a detected engine.
fn expected_name(engine: &str) -> &str {
    match engine {
        "dynamo-frontend" => "dynamo",
        other => other,
    }
}

/// What is wrong with one entry's detection, empty when it matches.
fn check_entry(e: &Entry, d: &inference_webhook::decide::Decision) -> Vec<String> {
    let Some(t) = d
        .templates
        .iter()
        .find(|t| t.path.split(" (").next() == Some(e.template.as_str()))
    else {
        return vec![format!("no pod template {} found", e.template)];
    };
    let at = |p: &str| p == t.path || p.starts_with(&format!("{}.", e.template));
    let deny: Vec<String> = d
        .findings
        .iter()
        .filter(|f| f.level == inference_webhook::decide::Level::Deny && at(&f.path))
        .map(|f| f.describe())
        .collect();
    let mut wrong = Vec::new();
    // Leader/worker variants of one template count once: the first that runs an engine.
    let variants: Vec<_> = d
        .templates
        .iter()
        .filter(|o| o.path.split(" (").next() == Some(e.template.as_str()))
        .collect();
    let det = variants
        .iter()
        .flat_map(|v| &v.detections)
        .find(|x| e.container.as_deref().is_none_or(|c| x.container == c));
    let engine = det.map_or("none", |x| expected_name(x.engine));
    if engine != e.engine {
        wrong.push(format!("engine {engine}, expected {}", e.engine));
    }
    if let Some(x) = det.filter(|_| e.engine != "none") {
        let port = x.metrics_port.filter(|_| !x.worker_only);
        if port != e.port {
            wrong.push(format!("port {port:?}, expected {:?}", e.port));
        }
        if x.worker_only != e.worker_only {
            wrong.push(format!("worker_only {}", x.worker_only));
        }
        let off = d.findings.iter().any(|f| {
            f.rule == inference_webhook::decide::RuleId::MetricsDisabled && f.path == x.path
        });
        if !x.worker_only && off == e.metrics_enabled {
            wrong.push(format!("metrics-disabled reported: {off}"));
        }
        let local = d.findings.iter().any(|f| {
            f.rule == inference_webhook::decide::RuleId::MetricsListenerLocal && f.path == x.path
        });
        if local != e.metrics_host.is_some() {
            wrong.push(format!("metrics-listener-local reported: {local}"));
        }
    }
    let valid = e.lookalike.is_some() || e.engine == "none" || e.metrics_enabled;
    if valid && !deny.is_empty() {
        wrong.push(format!("denied: {}", deny.join("; ")));
    }
    wrong
}

#[test]
fn detections_match_corpus_extra_expectations() {
    let dir = support::fixtures::shared("corpus-extra");
    let text = std::fs::read_to_string(dir.join("expected.yaml")).expect("expected.yaml readable");
    let entries: Vec<Entry> = serde_json::from_value(support::yaml::value(&text, "expected.yaml"))
        .expect("expected.yaml entries");
    assert!(entries.len() >= 90, "entries: {}", entries.len());
    let policy = every_backend();
    let (mut right, mut decidable, mut problems) = (0, 0, Vec::new());
    for e in &entries {
        let docs = all_documents(&dir.join(&e.file));
        let doc = docs.get(e.document).unwrap_or(&Value::Null);
        // As the audit command does: ConfigMaps of the same input resolve `envFrom`.
        let mut known = KnownSources::default();
        docs.iter().for_each(|d| known.add(d));
        let d = decide_input(doc, None, Operation::Create, Some(&known), &policy);
        let wrong = check_entry(e, &d);
        let excepted = EXTRA_EXCEPTIONS
            .iter()
            .any(|(f, n, t, _)| *f == e.file && *n == e.document && *t == e.template);
        decidable += usize::from(e.decidable);
        right += usize::from(e.decidable && wrong.is_empty());
        let label = format!("{} #{} {}", e.file, e.document, e.template);
        if excepted {
            assert!(
                !wrong.is_empty(),
                "{label}: excepted but passes; drop the exception"
            );
        } else if e.decidable && !wrong.is_empty() {
            problems.push(format!("{label}: {}", wrong.join(", ")));
        } else if !e.decidable {
            // The manifest alone cannot tell: never a denial on a guess, never another engine.
            let guessed = wrong.iter().filter(|w| {
                w.starts_with("denied")
                    || (w.starts_with("engine ") && !w.starts_with("engine none"))
            });
            problems.extend(guessed.map(|w| format!("{label} (undecidable): {w}")));
        }
    }
    eprintln!("corpus-extra: {right}/{decidable} decidable templates right");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
