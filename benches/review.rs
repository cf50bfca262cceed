//! Whole AdmissionReview round trips (parse, decide, outcome, serialize) of realistic reviews:
//! the work the server does per request, without the transport.
//!
//! Measured in CPU time of the benchmark thread (`CLOCK_THREAD_CPUTIME_ID`), not wall time: the shared 2-core machine this runs on is usually busy, and wall time then mostly
//! measures the neighbours.

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use inference_webhook::admission;
use inference_webhook::admission::{Mode, Route};
use inference_webhook::decide::Policy;
use serde_json::{Value, json};

#[path = "../tests/support/worst.rs"]
mod worst;

// The allocator the server binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

fn reviews(c: &mut Criterion<ThreadCpuTime>) {
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
        // The share of parsing alone (the envelope, and the object as the engine reads it).
        group.bench_function("parse-only", |b| {
            b.iter(|| std::hint::black_box(admission::parse(std::hint::black_box(&body)).is_ok()))
        });
        // Checking that the body is JSON and nothing else, with the same parser: what any
        // review of this body costs at the least (BENCHMARKS.md, the null-floor budget).
        group.bench_function("json-check-only", |b| {
            b.iter(|| {
                let checked =
                    serde_json::from_slice::<serde::de::IgnoredAny>(std::hint::black_box(&body));
                std::hint::black_box(checked.is_ok())
            })
        });
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

/// The worst cases of `tests/worst_case.rs`, mutate/enforce only: each must be answered well
/// inside the webhook's `timeoutSeconds` (BENCHMARKS.md has the budget).
fn worst_cases(c: &mut Criterion<ThreadCpuTime>) {
    let policy = Policy::default();
    for (label, body) in [
        // The reference: the ordinary 5 KB review, in the same run.
        (
            "vllm_deployment_5kb",
            fixture("review-vllm-deployment.json"),
        ),
        ("update_3mib", worst::three_mib_update()),
        ("rbg_300_roles", worst::rbg_with_roles(300)),
        ("sh_c_script_1mib", worst::megabyte_script()),
        ("var_chains_500", worst::var_chains(500)),
    ] {
        let mut group = c.benchmark_group(format!("worst/{label}"));
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.sample_size(10);
        group.bench_function("mutate-enforce", |b| {
            b.iter(|| {
                let reviewed = admission::review(
                    std::hint::black_box(&body),
                    &policy,
                    Mode::Enforce,
                    Route::Mutate,
                );
                std::hint::black_box(reviewed.map(|r| r.body.len()).ok())
            })
        });
        group.finish();
    }
}

struct ThreadCpuTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = cpu_time::ThreadTime;
    type Value = u64;

    fn start(&self) -> cpu_time::ThreadTime {
        cpu_time::ThreadTime::now()
    }
    fn end(&self, started: cpu_time::ThreadTime) -> u64 {
        u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, ns: &u64) -> f64 {
        *ns as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

/// Shows nanoseconds as µs, and bytes per CPU-second as MiB/s.
struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, _typical_ns: f64, values: &mut [f64]) -> &'static str {
        values.iter_mut().for_each(|v| *v /= 1e3);
        "µs (CPU)"
    }

    fn scale_throughputs(
        &self,
        _typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let (per_iteration, unit) = match *throughput {
            Throughput::Bytes(b) | Throughput::BytesDecimal(b) => {
                (b as f64 / 1048576.0, "MiB/s (CPU)")
            }
            Throughput::Bits(b) => (b as f64, "bit/s (CPU)"),
            Throughput::Elements(e) | Throughput::ElementsAndBytes { elements: e, .. } => {
                (e as f64, "elem/s (CPU)")
            }
        };
        values
            .iter_mut()
            .for_each(|ns| *ns = per_iteration / (*ns * 1e-9));
        unit
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = reviews, worst_cases
}
criterion_main!(benches);
