//! Worst-case inputs get an answer, and the answer a smaller input of the same shape gets: a
//! 3 MiB UPDATE (also through the server), a RoleBasedGroup with 300 roles, a 1 MiB `sh -c`
//! script, 500-link `$(VAR)` chains. Behaviour only: their cost is measured by
//! `benches/review.rs` against the budget in BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use inference_webhook::admission::{self, Mode, Route};
use inference_webhook::decide::{Decision, Policy};
use serde_json::Value;
use support::fixtures::{RBG, fixture_value};
use support::server::{SERVICE_HOST, post_bytes, start};
use support::worst;

fn decide(body: &[u8]) -> (Decision, Value) {
    let reviewed = admission::review(body, &Policy::default(), Mode::Enforce, Route::Mutate)
        .unwrap_or_else(|e| panic!("no answer: {e:?}"));
    let answer: Value = serde_json::from_slice(&reviewed.body).unwrap();
    assert_eq!(
        answer["response"]["allowed"], true,
        "{}",
        answer["response"]
    );
    (reviewed.decision, answer)
}

/// The one container is read as vLLM serving metrics on 8000, and labeled (3 patch operations).
fn assert_vllm_on_8000(decision: &Decision) {
    let found: Vec<_> = decision
        .templates
        .iter()
        .flat_map(|t| &t.detections)
        .map(|d| (d.backend, d.metrics_port))
        .collect();
    assert_eq!(found, [("vllm", Some(8000))]);
    assert_eq!(decision.patch.len(), 3, "{:?}", decision.patch);
}

#[test]
fn a_three_mib_update_is_judged_in_full() {
    let body = worst::three_mib_update();
    assert!(body.len() >= 3 * worst::MIB, "{} bytes", body.len());
    let (decision, _) = decide(&body);
    assert_vllm_on_8000(&decision);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_mib_update_is_answered_through_the_server() {
    let t = start(&[]).await;
    let (status, answer) = post_bytes(
        &t.client(SERVICE_HOST),
        &t.url(SERVICE_HOST, "/mutate"),
        worst::three_mib_update(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["response"]["allowed"], true);
    assert!(answer["response"]["patch"].is_string());
    t.server.shutdown().await.unwrap();
}

#[test]
fn a_role_based_group_of_300_roles_is_judged_role_by_role() {
    let three = serde_json::to_vec(&fixture_value(RBG)).unwrap();
    let (small, _) = decide(&three);
    let (large, _) = decide(&worst::rbg_with_roles(300));
    assert_eq!(large.templates.len(), 300);
    let backends = |d: &Decision| -> Vec<Vec<&str>> {
        d.templates
            .iter()
            .map(|t| t.detections.iter().map(|x| x.backend).collect())
            .collect()
    };
    let (small_backends, large_backends) = (backends(&small), backends(&large));
    for (i, role) in large_backends.iter().enumerate() {
        assert_eq!(role, &small_backends[i % 3], "role-{i}");
    }
    assert_eq!(large.patch.len(), 100 * small.patch.len());
    assert_eq!(large.findings.len(), 100 * small.findings.len());
}

#[test]
fn a_one_mib_shell_script_is_read_to_its_last_command() {
    let body = worst::megabyte_script();
    assert!(body.len() >= worst::MIB);
    let (decision, _) = decide(&body);
    assert_vllm_on_8000(&decision);
}

#[test]
fn deep_and_doubling_var_chains_resolve_within_the_expansion_budget() {
    // 500 links: the port resolves through all of them; the doubling chain (2^500 bytes if
    // expanded naively) is cut by the engine's expansion budget.
    let (decision, _) = decide(&worst::var_chains(500));
    assert_vllm_on_8000(&decision);
}
