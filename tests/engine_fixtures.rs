//! The manifests of `tests/fixtures/engines/`, one file per engine (written from the engine's own
//! docs and Dockerfiles, the source named at the top of each file), each document under a
//! comment that says what the engine must make of it:
//!
//! ```yaml
//! # expect: engine=vllm strength=command port=8000 rules=none
//! ```
//!
//! `engine` is the catalogue id detected in the document (`none`: no engine), `strength` the
//! evidence, `port` the metrics port named (`none`: no port), `rules` the rule ids, in any order,
//! of the findings the patch does not fix (`none`: no such finding), reviewed with every
//! catalogued backend supported. Adding an
//! engine adds a file here; nothing else in this test changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::decide::{create_with, every_backend};
use support::fixtures::fixture_path;

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    engine: String,
    strength: String,
    port: String,
    rules: BTreeSet<String>,
}

impl Outcome {
    fn expected(line: &str) -> Outcome {
        let mut out = Outcome {
            engine: String::new(),
            strength: String::new(),
            port: String::new(),
            rules: BTreeSet::new(),
        };
        for field in line.split_whitespace() {
            let (key, value) = field.split_once('=').expect("key=value");
            match key {
                "engine" => out.engine = value.into(),
                "strength" => out.strength = value.into(),
                "port" => out.port = value.into(),
                "rules" if value == "none" => {}
                "rules" => out.rules = value.split(',').map(str::to_string).collect(),
                _ => panic!("unknown expectation {key:?}"),
            }
        }
        out
    }

    fn of(object: &Value) -> Outcome {
        let decision = create_with(object, &every_backend());
        let detection = decision
            .templates
            .iter()
            .flat_map(|t| &t.detections)
            .find(|d| !d.worker_only);
        Outcome {
            engine: detection.map_or("none", |d| d.engine).into(),
            strength: detection.map_or("none", |d| d.strength.as_str()).into(),
            port: detection
                .and_then(|d| d.metrics_port)
                .map_or("none".into(), |p| p.to_string()),
            rules: decision
                .open_findings(true)
                .map(|f| f.rule.as_str().to_string())
                .collect(),
        }
    }
}

#[test]
fn every_engine_fixture_is_detected_as_its_comment_says() {
    let dir = fixture_path("engines");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    let mut checked = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, doc) in text.split("\n---\n").enumerate() {
            let expect = doc
                .lines()
                .find_map(|l| l.strip_prefix("# expect: "))
                .unwrap_or_else(|| panic!("{}#{i}: no `# expect:` line", file.display()));
            let object = support::yaml::value(doc, &file.display().to_string());
            assert_eq!(
                Outcome::of(&object),
                Outcome::expected(expect),
                "{}#{i}",
                file.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 0);
}
