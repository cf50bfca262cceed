//! The workload identity table: each operator's real labels name the top-level service, on the
//! object and on its pod template; the controlling owner and `generateName` come after.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use inference_webhook::engine::{IdentityLabel, Policy, identity_sources};
use serde_json::{Value, json};
use support::engine::*;

fn vllm() -> Value {
    json!([{"name": "vllm", "image": "vllm/vllm-openai:v0.10.0",
            "command": ["vllm", "serve"], "args": ["m", "--port", "8000"]}])
}

/// One row per built-in key: the labels the operator sets (from its source) and the service
/// name they give.
pub fn rows() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        (
            "dynamo",
            json!({"nvidia.com/dynamo-graph-deployment-name": "graph",
            "nvidia.com/dynamo-component": "VllmDecodeWorker",
            "app.kubernetes.io/managed-by": "grove-operator", "app.kubernetes.io/part-of": "graph"}),
            "graph",
        ),
        (
            "kserve",
            json!({"serving.kserve.io/inferenceservice": "isvc",
            "serving.knative.dev/revision": "isvc-predictor-00003", "component": "predictor"}),
            "isvc",
        ),
        (
            "llmisvc",
            json!({"app.kubernetes.io/name": "llama",
            "app.kubernetes.io/part-of": "llminferenceservice",
            "app.kubernetes.io/component": "llminferenceservice-workload"}),
            "llama",
        ),
        (
            "ome",
            json!({"ome.io/inferenceservice": "chat", "component": "engine"}),
            "chat",
        ),
        (
            "aibrix",
            json!({"storm-service-name": "storm", "roleset-name": "storm-roleset-a",
            "role-name": "prefill"}),
            "storm",
        ),
        (
            "kthena",
            json!({"modelserving.volcano.sh/name": "demo",
            "modelserving.volcano.sh/group-name": "demo-0", "modelserving.volcano.sh/role": "leader"}),
            "demo",
        ),
        (
            "llm-d",
            json!({"llm-d.ai/model": "qwen", "llm-d.ai/role": "decode",
            "llm-d.ai/inferenceServing": "true"}),
            "qwen",
        ),
        (
            "kaito inferenceset",
            json!({"inferenceset.kaito.sh/created-by": "set",
            "kaito.sh/workspace": "set-0"}),
            "set",
        ),
        ("kaito workspace", json!({"kaito.sh/workspace": "ws"}), "ws"),
        (
            "grove",
            json!({"app.kubernetes.io/managed-by": "grove-operator",
            "app.kubernetes.io/part-of": "pcs", "grove.io/podclique": "pcs-0-prefill"}),
            "pcs",
        ),
        (
            "kuberay",
            json!({"ray.io/cluster": "ray", "ray.io/node-type": "head"}),
            "ray",
        ),
    ]
}

fn with_template_labels(name: &str, labels: &Value) -> Value {
    let mut t = pod(vllm());
    t["metadata"]["labels"] = labels.clone();
    deployment(name, t)
}

#[test]
fn every_row_names_the_service_from_the_template_and_from_the_object() {
    for (operator, labels, service) in rows() {
        let obj = with_template_labels("per-role-name", &labels);
        let d = create(&obj);
        assert_eq!(
            d.workload.as_deref(),
            Some(service),
            "{operator}: template labels"
        );
        assert_eq!(
            labels_at(&apply(&obj, &d), "/spec/template")[WORKLOAD],
            service,
            "{operator}"
        );
        let mut obj = deployment("per-role-name", pod(vllm()));
        obj["metadata"]["labels"] = labels.clone();
        assert_eq!(
            create(&obj).workload.as_deref(),
            Some(service),
            "{operator}: object labels"
        );
    }
}

#[test]
fn every_built_in_key_has_a_row_and_a_source() {
    let keys: Vec<&str> = identity_sources().map(|(k, _)| k).collect();
    for key in &keys {
        assert!(
            rows().iter().any(|(_, l, _)| l.get(*key).is_some()),
            "{key} has no fixture row"
        );
    }
    assert!(identity_sources().all(|(_, source)| source.contains('/') || source == "llm-d"));
}

#[test]
fn conditional_rows_need_their_condition() {
    let part_of_alone =
        json!({"app.kubernetes.io/part-of": "platform", "app.kubernetes.io/name": "web"});
    let d = create(&with_template_labels("qwen", &part_of_alone));
    assert_eq!(
        d.workload.as_deref(),
        Some("qwen"),
        "neither grove nor llmisvc"
    );
}

#[test]
fn a_knative_revision_owned_deployment_is_named_after_its_inference_service() {
    // KServe serverless: the Deployment's controller is the Revision, renamed every rollout.
    let mut obj = with_template_labels("isvc-predictor-00003-deployment", &rows()[1].1);
    obj["metadata"]["ownerReferences"] = json!([{"apiVersion": "serving.knative.dev/v1",
        "kind": "Revision", "name": "isvc-predictor-00003", "uid": "u", "controller": true}]);
    assert_eq!(create(&obj).workload.as_deref(), Some("isvc"));
    obj["spec"]["template"]["metadata"]["labels"] = json!({"app": "x"});
    assert_eq!(
        create(&obj).workload.as_deref(),
        Some("isvc-predictor-00003"),
        "owner next"
    );
}

#[test]
fn llm_d_prefill_and_decode_share_the_model_name() {
    let names: Vec<_> = ["prefill", "decode"]
        .iter()
        .map(|role| {
            let labels = json!({"llm-d.ai/model": "qwen3", "llm-d.ai/role": role});
            create(&with_template_labels(&format!("ms-qwen3-{role}"), &labels)).workload
        })
        .collect();
    assert_eq!(names, vec![Some("qwen3".to_string()); 2]);
}

#[test]
fn the_policy_replaces_the_table() {
    let mut policy = Policy::default();
    policy.workload_identity.labels = vec![IdentityLabel {
        key: "example.com/service".into(),
        when: [("example.com/tier".to_string(), "model".to_string())].into(),
    }];
    let labels =
        json!({"example.com/service": "svc", "example.com/tier": "model", "llm-d.ai/model": "q"});
    let obj = with_template_labels("dep", &labels);
    assert_eq!(create_with(&obj, &policy).workload.as_deref(), Some("svc"));
    policy.workload_identity.labels.clear();
    assert_eq!(
        create_with(&obj, &policy).workload.as_deref(),
        Some("dep"),
        "an empty table"
    );
    for (yaml, field) in [
        (
            "workloadIdentity: {labels: [{key: 'bad key'}]}",
            "workloadIdentity.labels[0]",
        ),
        (
            "workloadIdentity: {labels: [{key: a, when: {b: 'no spaces'}}]}",
            "workloadIdentity.labels[0].when",
        ),
    ] {
        let e = Policy::from_yaml(yaml, "p").unwrap_err().to_string();
        assert!(e.contains(field), "{e}");
    }
    let p = Policy::from_yaml(
        "workloadIdentity: {labels: [{key: x.io/a, when: {x.io/b: c}}]}",
        "p",
    )
    .unwrap();
    assert_eq!(p.workload_identity.labels[0].when["x.io/b"], "c");
}
