//! Every manifest of `../shared/corpus` (real upstream files, read at run time, never copied):
#![allow(clippy::unwrap_used, clippy::expect_used)]
//! the engines the engine detects must be the engines SOURCES.md lists for that file, and every
//! metrics port SOURCES.md gives must be the one detected. Skips cleanly when the folder is absent.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use inference_webhook::engine::{Input, Operation, Policy, decide};
use serde::Deserialize;
use serde_json::Value;

fn corpus_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    dir.join("SOURCES.md").is_file().then_some(dir)
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
    serde_yaml::Deserializer::from_str(&text)
        .filter_map(|doc| Value::deserialize(doc).ok())
        .filter(|v| v.is_object())
        .collect()
}

#[test]
fn detected_engines_match_the_corpus_sources() {
    let Some(dir) = corpus_dir() else {
        eprintln!("skipped: ../shared/corpus is absent");
        return;
    };
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
            let d = decide(
                &Input {
                    object: &doc,
                    old_object: None,
                    operation: Operation::Create,
                },
                &policy,
            );
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
