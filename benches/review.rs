//! Whole AdmissionReview round trips (parse, decide, outcome, serialize) of realistic reviews:
//! the work the server does per request, without the transport.

use criterion::{Criterion, criterion_group, criterion_main};
use inference_webhook::admission;
use inference_webhook::engine::{Mode, Policy, Route};

/// A fixture review, minified as kube-apiserver sends it.
fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let value: serde_json::Value =
        serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::to_vec(&value).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn reviews(c: &mut Criterion) {
    let policy = Policy::default();
    for (label, name) in [
        ("vllm_deployment_5kb", "review-vllm-deployment.json"),
        ("rbg_three_roles", "review-rbg-three-roles.json"),
    ] {
        let body = fixture(name);
        for (mode, route) in [
            (Mode::Enforce, Route::Mutate),
            (Mode::Audit, Route::Validate),
        ] {
            let id = format!("review/{label}/{}-{}", route.as_str(), mode.as_str());
            c.bench_function(&id, |b| {
                b.iter(|| {
                    let reviewed =
                        admission::review(std::hint::black_box(&body), &policy, mode, route);
                    std::hint::black_box(reviewed.map(|r| r.body.len()).ok())
                })
            });
        }
    }
}

criterion_group!(benches, reviews);
criterion_main!(benches);
