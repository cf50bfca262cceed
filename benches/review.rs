//! Whole AdmissionReview round trips (parse, decide, outcome, serialize) of realistic reviews:
//! the work the server does per request, without the transport.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use inference_webhook::admission;
use inference_webhook::engine::{Mode, Policy, Route};
use serde_json::{Value, json};

/// A fixture review, minified as kube-apiserver sends it.
fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let value: Value = serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::to_vec(&value).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `fieldsV1` set server-side apply would record for `value`: its key structure.
fn fields_v1(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (format!("f:{k}"), fields_v1(v)))
                .collect(),
        ),
        _ => json!({}),
    }
}

/// The vLLM review as an UPDATE, as an API server sends it: `managedFields` and `status` on
/// both the object and the old object.
fn update_with_managed_fields() -> Vec<u8> {
    let mut review: Value = serde_json::from_slice(&fixture("review-vllm-deployment.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    let request = &mut review["request"];
    let mut object = request["object"].clone();
    object["metadata"]["managedFields"] = json!([{
        "manager": "argocd-controller", "operation": "Apply", "apiVersion": "apps/v1",
        "time": "2026-11-28T12:00:00Z", "fieldsType": "FieldsV1",
        "fieldsV1": fields_v1(&object["spec"]),
    }]);
    object["status"] = json!({"observedGeneration": 3, "replicas": 2, "readyReplicas": 2,
        "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]});
    request["operation"] = json!("UPDATE");
    request["oldObject"] = object.clone();
    request["object"] = object;
    serde_json::to_vec(&review).unwrap_or_else(|e| panic!("{e}"))
}

fn reviews(c: &mut Criterion) {
    let policy = Policy::default();
    for (label, body) in [
        (
            "vllm_deployment_5kb",
            fixture("review-vllm-deployment.json"),
        ),
        ("rbg_three_roles", fixture("review-rbg-three-roles.json")),
        (
            "vllm_deployment_update_managed_fields",
            update_with_managed_fields(),
        ),
    ] {
        let mut group = c.benchmark_group(format!("review/{label}"));
        group.throughput(Throughput::Bytes(body.len() as u64));
        for (mode, route) in [
            (Mode::Enforce, Route::Mutate),
            (Mode::Audit, Route::Validate),
        ] {
            group.bench_function(format!("{}-{}", route.as_str(), mode.as_str()), |b| {
                b.iter(|| {
                    let reviewed =
                        admission::review(std::hint::black_box(&body), &policy, mode, route);
                    std::hint::black_box(reviewed.map(|r| r.body.len()).ok())
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, reviews);
criterion_main!(benches);
