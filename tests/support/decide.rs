//! The engine in process: its decision on an object (every test's call of `decide::decide` goes
//! through here), the decision's patch applied, and the objects the engine tests build.

use inference_webhook::admission::AdmissionRequest;
use inference_webhook::decide::{
    Decision, Input, Json, KnownSources, Operation, Policy, catalogue, decide,
};
use serde_json::{Value, json};

use super::patch::apply_patch;

pub const WORKLOAD: &str = "alibabacloud.com/inference-workload";
pub const BACKEND: &str = "alibabacloud.com/inference-backend";

pub fn create(object: &Value) -> Decision {
    create_with(object, &Policy::default())
}

pub fn create_with(object: &Value, policy: &Policy) -> Decision {
    decide_input(object, None, Operation::Create, None, policy)
}

pub fn update(old: &Value, object: &Value) -> Decision {
    decide_input(
        object,
        Some(old),
        Operation::Update,
        None,
        &Policy::default(),
    )
}

/// The decision with every part of the engine's input given: the object, the object before an
/// UPDATE, the operation and the ConfigMaps the front door knows.
pub fn decide_input(
    object: &Value,
    old_object: Option<&Value>,
    operation: Operation,
    known_env: Option<&KnownSources>,
    policy: &Policy,
) -> Decision {
    let old_object = old_object.map(Json::from);
    decide(
        &Input {
            object: &Json::from(object),
            old_object: old_object.as_ref(),
            operation,
            known_env,
        },
        policy,
    )
}

/// The decision on what the server parsed from a review (the engine reads only part of it).
pub fn decide_request(request: &AdmissionRequest<'_>, policy: &Policy) -> Decision {
    decide(&request.input(), policy)
}

/// Apply a decision's patch with the `json-patch` crate, as the API server would.
pub fn apply(object: &Value, decision: &Decision) -> Value {
    let ops = serde_json::to_value(&decision.patch).expect("patch serializes");
    apply_patch(object, &ops)
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

/// The default policy with every backend of the catalogue supported: detection and denials for
/// all engines at once.
pub fn every_backend() -> Policy {
    let mut policy = Policy::default();
    for e in catalogue::CATALOGUE {
        if !policy.supports(e.backend) {
            policy.supported_backends.push(e.backend.to_string());
        }
    }
    policy
}
