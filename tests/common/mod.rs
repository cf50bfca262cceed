//! Helpers shared by the engine's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use inference_webhook::engine::{Decision, Input, Json, Operation, Policy, decide};
use serde_json::{Value, json};

pub fn create(object: &Value) -> Decision {
    create_with(object, &Policy::default())
}

pub fn create_with(object: &Value, policy: &Policy) -> Decision {
    decide(
        &Input {
            object: &Json::from(object),
            old_object: None,
            operation: Operation::Create,
            known_env: None,
        },
        policy,
    )
}

pub fn update(old: &Value, object: &Value) -> Decision {
    decide(
        &Input {
            object: &Json::from(object),
            old_object: Some(&Json::from(old)),
            operation: Operation::Update,
            known_env: None,
        },
        &Policy::default(),
    )
}

/// Apply a decision's patch with the `json-patch` crate, as the API server would.
pub fn apply(object: &Value, decision: &Decision) -> Value {
    let ops = serde_json::to_value(&decision.patch).expect("patch serializes");
    let patch: json_patch::Patch = serde_json::from_value(ops).expect("valid RFC 6902 patch");
    let mut out = object.clone();
    json_patch::patch(&mut out, &patch).expect("patch applies");
    out
}

pub fn rules(decision: &Decision) -> Vec<&'static str> {
    decision.findings.iter().map(|f| f.rule.as_str()).collect()
}

pub fn labels_at<'a>(object: &'a Value, template_pointer: &str) -> &'a Value {
    object
        .pointer(&format!("{template_pointer}/metadata/labels"))
        .unwrap_or(&Value::Null)
}

pub fn deployment(name: &str, template: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "llm"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": template}
    })
}

pub fn pod(containers: Value) -> Value {
    json!({"metadata": {"labels": {"app": "x"}}, "spec": {"containers": containers}})
}

pub const WORKLOAD: &str = "alibabacloud.com/inference-workload";
pub const BACKEND: &str = "alibabacloud.com/inference-backend";
