//! The engine's reading contract (`decide::UNREAD_SPEC_MEMBERS`, `UNREAD_CONTAINER_MEMBERS`):
//! the server builds only what the
//! engine reads, so `decide` must answer the same on the object the server parsed and on the
//! full object. Checked on every real manifest the tests have: `../shared/corpus` and
//! `../shared/corpus-extra` (read at run time; a missing folder fails) and `tests/fixtures`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};

use inference_webhook::admission;
use inference_webhook::decide::{Operation, Policy, UNREAD_CONTAINER_MEMBERS, UNREAD_SPEC_MEMBERS};
use serde_json::{Value, json};
use support::decide::{decide_input, decide_request, every_backend};
use support::fixtures::{repo, review};

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

/// The objects with a `kind` and a `spec` of every YAML file under the test's sources.
fn real_objects() -> Vec<(String, Value)> {
    let mut files = Vec::new();
    for dir in [
        support::fixtures::shared("corpus"),
        support::fixtures::shared("corpus-extra"),
        repo().join("tests/fixtures"),
    ] {
        yaml_files(&dir, &mut files);
    }
    let mut objects = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, doc) in support::yaml::documents(&text).into_iter().enumerate() {
            let Ok(value) = doc else {
                continue;
            };
            if value.get("kind").is_some_and(Value::is_string) && value.get("spec").is_some() {
                objects.push((format!("{}#{i}", file.display()), value));
            }
        }
    }
    objects
}

/// The body of a review of `object` (an UPDATE from `old` when given).
fn review_body(object: &Value, old: Option<&Value>) -> Vec<u8> {
    let mut request = json!({
        "uid": "u", "operation": if old.is_some() { "UPDATE" } else { "CREATE" },
        "namespace": "ns", "name": object.pointer("/metadata/name").cloned().unwrap_or_default(),
        "object": object,
    });
    if let Some(old) = old {
        request["oldObject"] = old.clone();
    }
    serde_json::to_vec(&review(request)).unwrap()
}

/// `decide` on what the server parsed from the review, and on the full objects.
fn both_ways(object: &Value, old: Option<&Value>, policy: &Policy) -> (String, String) {
    let body = review_body(object, old);
    let parsed = admission::parse(&body).unwrap();
    let pruned = decide_request(&parsed, policy);
    let full = decide_input(object, old, parsed.operation, None, policy);
    (format!("{pruned:?}"), format!("{full:?}"))
}

#[test]
fn decide_answers_the_same_on_the_pruned_and_the_full_object_of_every_real_manifest() {
    let objects = real_objects();
    assert!(
        objects.len() >= 20,
        "tests/fixtures alone has more: {}",
        objects.len()
    );
    let policies = [Policy::default(), every_backend()];
    let mut unread_seen = 0;
    for (name, object) in &objects {
        unread_seen += usize::from(
            UNREAD_SPEC_MEMBERS
                .iter()
                .chain(UNREAD_CONTAINER_MEMBERS)
                .any(|m| contains_member(object, m)),
        );
        // An UPDATE whose old object differs only in an unread member still compares templates.
        let mut old = object.clone();
        old["metadata"]["labels"]["pruning-test"] = json!("old");
        for policy in &policies {
            for old in [None, Some(&old)] {
                let (pruned, full) = both_ways(object, old, policy);
                assert_eq!(
                    pruned,
                    full,
                    "{name} ({:?})",
                    old.map(|_| Operation::Update)
                );
            }
        }
    }
    assert!(unread_seen > 0, "no manifest had an unread member to prune");
}

fn contains_member(value: &Value, member: &str) -> bool {
    match value {
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k == member || contains_member(v, member)),
        Value::Array(items) => items.iter().any(|v| contains_member(v, member)),
        _ => false,
    }
}

#[test]
fn an_env_from_source_is_read_so_a_port_it_may_set_never_denies_in_the_server() {
    // TGI reads PORT; the ConfigMap an envFrom names may set it. The server must see envFrom.
    let tgi = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "tgi", "namespace": "ns"},
        "spec": {"selector": {}, "template": {"spec": {"containers": [{
            "name": "tgi", "image": "ghcr.io/huggingface/text-generation-inference:2.4.0",
            "command": ["text-generation-launcher", "--model-id", "m"],
            "envFrom": [{"configMapRef": {"name": "tgi-config"}}],
            "ports": [{"name": "http", "containerPort": 2080}]}]}}}});
    let policy = Policy::from_yaml("supportedBackends: [tgi]", "test").unwrap();
    let body = review_body(&tgi, None);
    let parsed = admission::parse(&body).unwrap();
    let decision = decide_request(&parsed, &policy);
    assert!(!decision.denies(), "{:?}", decision.findings);
    assert!(
        decision
            .findings
            .iter()
            .any(|f| f.rule.as_str() == "port-name-conflict"),
        "{:?}",
        decision.findings
    );
}

#[test]
fn label_and_annotation_keys_spelled_like_unread_members_stay_readable() {
    // The members are pruned where they live (a spec, a container), not wherever the word is a
    // key: a label `resources` or an annotation `volumes` is the owner's opt-out here.
    let deployment = |labels: Value, annotations: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "m", "namespace": "ns", "labels": labels, "annotations": annotations},
            "spec": {"selector": {}, "template": {
                "metadata": {"labels": {"resources": "x", "affinity": "y"}},
                "spec": {"affinity": {}, "volumes": [], "containers": [{
                    "name": "vllm", "image": "vllm/vllm-openai:v0.10.0",
                    "command": ["vllm", "serve", "m"], "resources": {"limits": {}}}]}}}})
    };
    let policy = Policy::from_yaml(
        "optOutLabel: resources\noptOutValue: disabled\noptOutAnnotation: volumes",
        "test",
    )
    .unwrap();
    for (labels, annotations, skipped) in [
        (json!({"resources": "disabled"}), json!({}), true),
        (json!({}), json!({"volumes": "true", "affinity": "x"}), true),
        (
            json!({"resources": "enabled", "volumes": "x"}),
            json!({"affinity": "x"}),
            false,
        ),
    ] {
        let object = deployment(labels.clone(), annotations.clone());
        let body = review_body(&object, None);
        let parsed = admission::parse(&body).unwrap();
        let metadata = parsed.object.get("metadata").unwrap();
        for (key, value) in labels.as_object().unwrap() {
            let read = metadata.get("labels").and_then(|l| l.get(key));
            assert_eq!(read.and_then(|v| v.as_str()), value.as_str(), "label {key}");
        }
        for (key, value) in annotations.as_object().unwrap() {
            let read = metadata.get("annotations").and_then(|l| l.get(key));
            assert_eq!(
                read.and_then(|v| v.as_str()),
                value.as_str(),
                "annotation {key}"
            );
        }
        let pruned = decide_request(&parsed, &policy);
        let full = decide_input(&object, None, parsed.operation, None, &policy);
        assert_eq!(format!("{pruned:?}"), format!("{full:?}"));
        assert_eq!(pruned.skipped.is_some(), skipped, "{labels} {annotations}");
        // The container's `resources` is still pruned.
        let container = parsed
            .object
            .get("spec")
            .and_then(|s| s.get("template"))
            .and_then(|t| t.get("spec"))
            .and_then(|s| s.get("containers"))
            .and_then(|c| c.as_array()?.first())
            .unwrap();
        assert!(matches!(
            container.get("resources"),
            Some(inference_webhook::decide::Json::Unread(_))
        ));
    }
}
