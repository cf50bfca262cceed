//! The workload identity table: each operator's real labels name the top-level service, on the
//! object and on its pod template; the controlling owner and `generateName` come after.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use inference_webhook::decide::{IdentityLabel, Policy, identity_sources};
use serde_json::{Value, json};
use support::decide::*;

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

/// A Pod as an operator's controller creates it: the operator's labels, a controller
/// ownerReference, a generated name.
fn operator_pod(labels: &Value, owner_kind: &str, owner: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("{owner}-x7k2p"), "generateName": format!("{owner}-"),
            "namespace": "llm", "labels": labels,
            "ownerReferences": [{"apiVersion": "example.io/v1", "kind": owner_kind, "name": owner,
                "uid": "u", "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"containers": vllm()}
    })
}

#[test]
fn every_row_labels_a_pod_its_operator_made_with_the_service_and_the_port() {
    for (operator, labels, service) in rows() {
        let pod = operator_pod(&labels, "PodClique", "per-role-owner");
        let d = create(&pod);
        assert_eq!(d.kind, Some("Pod"), "{operator}");
        assert_eq!(d.workload.as_deref(), Some(service), "{operator}");
        let patched = apply(&pod, &d);
        assert_eq!(
            patched["metadata"]["labels"][WORKLOAD], service,
            "{operator}"
        );
        assert_eq!(patched["metadata"]["labels"][BACKEND], "vllm", "{operator}");
        assert_eq!(
            patched["spec"]["containers"][0]["ports"],
            json!([{"name": "http", "containerPort": 8000, "protocol": "TCP"}]),
            "{operator}"
        );
        for (k, v) in labels.as_object().unwrap() {
            assert_eq!(
                &patched["metadata"]["labels"][k], v,
                "{operator}: labels kept"
            );
        }
        assert!(
            create(&patched).patch.is_empty(),
            "{operator}: reinvocation is a no-op"
        );
    }
}

#[test]
fn a_pod_without_identity_labels_is_named_by_its_owner_or_its_generate_name() {
    let pod = operator_pod(&json!({"app": "x"}), "RoleSet", "storm-roleset-a");
    assert_eq!(create(&pod).workload.as_deref(), Some("storm-roleset-a"));
    let mut pod = operator_pod(
        &json!({"pod-template-hash": "5d9c7b8f4"}),
        "ReplicaSet",
        "qwen-5d9c7b8f4",
    );
    assert_eq!(
        create(&pod).workload.as_deref(),
        Some("qwen"),
        "a ReplicaSet names its Deployment"
    );
    pod["metadata"]["labels"]["pod-template-hash"] = json!("other");
    assert_eq!(
        create(&pod).workload.as_deref(),
        Some("qwen-5d9c7b8f4"),
        "no hash suffix: the owner"
    );
    pod["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("ownerReferences");
    pod["metadata"].as_object_mut().unwrap().remove("name");
    assert_eq!(
        create(&pod).workload.as_deref(),
        Some("qwen-5d9c7b8f4"),
        "the generateName stem"
    );
}

#[test]
fn a_knative_pod_keeps_its_user_port_and_is_never_denied() {
    // Knative names the serving port `user-port`; the engine never renames a port.
    let mut pod = operator_pod(
        &rows()[1].1,
        "ReplicaSet",
        "isvc-predictor-00003-deployment-7c9",
    );
    pod["spec"]["containers"][0]["args"] = json!(["m", "--port", "8080"]);
    pod["spec"]["containers"][0]["ports"] =
        json!([{"name": "user-port", "containerPort": 8080, "protocol": "TCP"}]);
    let d = create(&pod);
    let patched = apply(&pod, &d);
    assert_eq!(patched["metadata"]["labels"][WORKLOAD], "isvc");
    assert_eq!(
        patched["spec"]["containers"][0]["ports"],
        pod["spec"]["containers"][0]["ports"]
    );
    assert!(
        !rules(&d).is_empty(),
        "the port named otherwise is reported"
    );
    // A backend label that contradicts the engine denies a template, never a Pod.
    pod["metadata"]["labels"][BACKEND] = json!("sglang");
    let d = create(&pod);
    assert!(rules(&d).contains(&"backend-mismatch"), "{:?}", rules(&d));
    assert!(!d.denies(), "{:?}", d.findings);
    let mut dep = with_template_labels("dep", &json!({BACKEND: "sglang"}));
    dep["spec"]["template"]["spec"]["containers"] = vllm();
    assert!(create(&dep).denies(), "the same on a template denies");
}

#[test]
fn the_detection_doc_lists_every_built_in_key() {
    let doc = std::fs::read_to_string(support::fixtures::repo().join("docs/detection.md")).unwrap();
    for (key, _) in identity_sources() {
        assert!(
            doc.contains(&format!("| `{key}` |")),
            "docs/detection.md misses {key}"
        );
    }
}
