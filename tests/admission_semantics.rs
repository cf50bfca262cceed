//! Admission that never hurts a running cluster (issue #22): updates judge only what they
//! change, deletions pass, patches hold one operation per path and one port name per pod,
//! controller-made children are judged in their parent, native sidecars are read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use inference_webhook::admission::{Mode, Outcome, Route};
use inference_webhook::decide::{Decision, Level};
use serde_json::{Value, json};
use support::decide::*;

/// SGLang without `--enable-metrics`: a deny-level `metrics-disabled` on command evidence.
fn sglang_without_metrics() -> Value {
    json!({"name": "sglang", "image": "lmsysorg/sglang:v0.5.5",
           "command": ["python3", "-m", "sglang.launch_server", "--model-path", "m", "--port", "30000"]})
}

fn vllm() -> Value {
    json!({"name": "vllm", "image": "vllm/vllm-openai:v0.10.0",
           "command": ["vllm", "serve"], "args": ["m", "--port", "8000"]})
}

fn enforce_allows(d: &Decision) -> bool {
    Outcome::of(d, Mode::Enforce, Route::Mutate).allowed
        && Outcome::of(d, Mode::Enforce, Route::Validate).allowed
}

fn level(d: &Decision, rule: &str) -> Option<Level> {
    d.findings
        .iter()
        .find(|f| f.rule.as_str() == rule)
        .map(|f| f.level)
}

#[test]
fn updates_that_leave_every_template_unchanged_are_never_denied() {
    let old = deployment("sgl", pod(json!([sglang_without_metrics()])));
    assert!(!enforce_allows(&create(&old)), "a create is still denied");
    let mut edits: Vec<Value> = Vec::new();
    let mut annotated = old.clone();
    annotated["metadata"]["annotations"] = json!({"team": "llm"});
    edits.push(annotated);
    let mut scaled = old.clone();
    scaled["spec"]["replicas"] = json!(3);
    edits.push(scaled);
    let mut relabeled = old.clone();
    relabeled["metadata"]["labels"] = json!({"argocd.argoproj.io/instance": "llm"});
    edits.push(relabeled);
    for new in &edits {
        let d = update(&old, new);
        assert!(enforce_allows(&d), "{:?}", d.findings);
        assert!(d.patch.is_empty());
        let f = d
            .findings
            .iter()
            .find(|f| f.rule.as_str() == "metrics-disabled")
            .expect("still reported");
        assert_eq!(f.level, Level::Warn);
        assert!(f.message.contains("predates"), "{}", f.message);
        // The fix comes before the note, so a cut warning keeps it.
        assert!(
            f.message.find("--enable-metrics") < f.message.find("not denied"),
            "{}",
            f.message
        );
    }
    let mut template_change = old.clone();
    template_change["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("lmsysorg/sglang:v0.5.6");
    let d = update(&old, &template_change);
    assert!(!enforce_allows(&d), "a template change is still judged");
    assert_eq!(level(&d, "metrics-disabled"), Some(Level::Deny));
}

#[test]
fn objects_being_deleted_are_never_denied_or_patched() {
    let old = deployment("sgl", pod(json!([sglang_without_metrics()])));
    let mut deleting = old.clone();
    deleting["metadata"]["deletionTimestamp"] = json!("2026-12-07T00:00:00Z");
    deleting["metadata"]["finalizers"] = json!([]);
    // Even a template change (the object was stored with another template) passes.
    deleting["spec"]["template"]["spec"]["containers"][0]["image"] = json!("lmsysorg/sglang:x");
    for d in [update(&old, &deleting), create(&deleting)] {
        assert!(enforce_allows(&d));
        assert!(d.patch.is_empty() && d.findings.is_empty());
        assert!(d.skipped.as_deref().unwrap().contains("deleted"));
    }
}

/// A RoleBasedGroup v1alpha2 whose `leaderWorkerPattern` base template has labels and ports,
/// with label-only leader and worker patches (issue #22, item 2).
fn rbg_leader_worker(version: &str) -> Value {
    let base = json!({"metadata": {"labels": {"app": "ds"}}, "spec": {"containers": [{
        "name": "vllm", "image": "vllm/vllm-openai:v0.10.0",
        "command": ["vllm", "serve"], "args": ["m", "--port", "8000"],
        "ports": [{"containerPort": 8000, "name": "api"}, {"containerPort": 9000}]
    }]}});
    if version == "v1alpha1" {
        return json!({
            "apiVersion": "workloads.x-k8s.io/v1alpha1", "kind": "RoleBasedGroup",
            "metadata": {"name": "ds"},
            "spec": {"roles": [{"name": "inference", "template": base, "leaderWorkerSet": {
                "patchLeaderTemplate": {"metadata": {"labels": {"role": "leader"}}},
                "patchWorkerTemplate": {"metadata": {"labels": {"role": "worker"}}}
            }}]}
        });
    }
    json!({
        "apiVersion": "workloads.x-k8s.io/v1alpha2", "kind": "RoleBasedGroup",
        "metadata": {"name": "ds"},
        "spec": {"roles": [{"name": "inference", "leaderWorkerPattern": {
            "template": base,
            "leaderTemplatePatch": {"metadata": {"labels": {"role": "leader"}}},
            "workerTemplatePatch": {"metadata": {"labels": {"role": "worker"}}}
        }}]}
    })
}

fn paths(d: &Decision) -> Vec<String> {
    serde_json::to_value(&d.patch)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|op| op["path"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn leader_and_worker_over_one_base_template_get_each_label_and_port_once() {
    for version in ["v1alpha2", "v1alpha1"] {
        let mut obj = rbg_leader_worker(version);
        // Port 8000 is named "api": the webhook never renames, so the port goes on 9000's
        // container only when vLLM serves there; serve on 9000 to get an addition.
        let c = if version == "v1alpha1" {
            &mut obj["spec"]["roles"][0]["template"]["spec"]["containers"][0]
        } else {
            &mut obj["spec"]["roles"][0]["leaderWorkerPattern"]["template"]["spec"]["containers"][0]
        };
        c["args"] = json!(["m", "--port", "9000"]);
        let d = create(&obj);
        let p = paths(&d);
        let mut unique = p.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(p.len(), unique.len(), "{version}: {p:?}");
        assert_eq!(p.len(), 3, "{version}: two labels and one port name: {p:?}");
        let patched = apply(&obj, &d);
        let template = if version == "v1alpha1" {
            &patched["spec"]["roles"][0]["template"]
        } else {
            &patched["spec"]["roles"][0]["leaderWorkerPattern"]["template"]
        };
        let names: Vec<&str> = template["spec"]["containers"][0]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(names, ["api", "http"], "{version}");
        assert!(create(&patched).patch.is_empty(), "{version}: idempotent");
        let warnings = Outcome::of(&d, Mode::Warn, Route::Mutate).warnings;
        let mut once = warnings.clone();
        once.dedup();
        assert_eq!(warnings, once, "{version}: each finding once");
    }
}

fn rbg_roles(roles: Value) -> Value {
    json!({"apiVersion": "workloads.x-k8s.io/v1alpha2", "kind": "RoleBasedGroup",
           "metadata": {"name": "g"}, "spec": {"roles": roles}})
}

fn standalone(name: &str, container: Value) -> Value {
    json!({"name": name, "standalonePattern": {"template": pod(json!([container]))}})
}

#[test]
fn a_role_inserted_in_front_leaves_every_other_role_alone() {
    let old = rbg_roles(json!([
        standalone("prefill", sglang_without_metrics()),
        standalone("decode", vllm())
    ]));
    let new = rbg_roles(json!([
        standalone("router", json!({"name": "r", "image": "nginx"})),
        standalone("prefill", sglang_without_metrics()),
        standalone("decode", vllm())
    ]));
    let d = update(&old, &new);
    assert!(d.patch.is_empty(), "{:?}", d.patch);
    assert!(enforce_allows(&d), "{:?}", d.findings);
    assert_eq!(level(&d, "metrics-disabled"), Some(Level::Warn));
    assert_eq!(level(&d, "update-not-injected"), Some(Level::Warn));
    // Removing a role in the middle: the same.
    let d = update(&new, &old);
    assert!(d.patch.is_empty() && enforce_allows(&d));
    // A new engine role in front is judged and patched; the others are not.
    let with_new_engine = rbg_roles(json!([
        standalone("extra", vllm()),
        standalone("prefill", sglang_without_metrics()),
        standalone("decode", vllm())
    ]));
    let d = update(&old, &with_new_engine);
    assert!(!d.patch.is_empty());
    assert!(
        paths(&d).iter().all(|p| p.starts_with("/spec/roles/0/")),
        "{:?}",
        paths(&d)
    );
    assert!(enforce_allows(&d));
}

#[test]
fn objects_a_handled_kind_controls_are_judged_in_their_parent() {
    let owned = |api: &str, kind: &str, labels: Value| {
        let mut sts = deployment("ds-inference-0", pod(json!([vllm()])));
        sts["kind"] = json!("StatefulSet");
        sts["metadata"]["labels"] = labels;
        sts["metadata"]["ownerReferences"] = json!([{"apiVersion": api, "kind": kind, "name": "ds", "uid": "u", "controller": true}]);
        sts
    };
    for (obj, parent) in [
        (
            owned("workloads.x-k8s.io/v1alpha2", "RoleBasedGroup", json!({})),
            "RoleBasedGroup/ds",
        ),
        (
            owned("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet", json!({})),
            "LeaderWorkerSet/ds",
        ),
        // LeaderWorkerSet's worker StatefulSets are controlled by the leader Pod.
        (
            owned(
                "v1",
                "Pod",
                json!({"leaderworkerset.sigs.k8s.io/name": "lws-a"}),
            ),
            "LeaderWorkerSet/lws-a",
        ),
    ] {
        let d = create(&obj);
        assert!(d.patch.is_empty() && d.findings.is_empty(), "{parent}");
        assert_eq!(d.child_of.as_deref(), Some(parent));
    }
    // A Pod owner without the set's label, or an owner that is not the controller, is no parent.
    let d = create(&owned("v1", "Pod", json!({})));
    assert!(d.child_of.is_none() && !d.patch.is_empty());
}

#[test]
fn only_the_controlling_owner_names_the_workload() {
    let mut obj = deployment("qwen", pod(json!([vllm()])));
    obj["metadata"]["ownerReferences"] = json!([
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "gc-anchor", "uid": "a"},
        {"apiVersion": "example.com/v1", "kind": "Thing", "name": "thing", "uid": "b", "controller": false}
    ]);
    assert_eq!(create(&obj).workload.as_deref(), Some("qwen"));
}

#[test]
fn a_native_sidecar_holding_the_port_name_is_a_finding_never_a_second_port() {
    let mut template = pod(json!([vllm()]));
    template["spec"]["initContainers"] = json!([
        {"name": "setup", "image": "busybox", "ports": [{"name": "http", "containerPort": 1}]},
        {"name": "proxy", "image": "envoyproxy/envoy", "restartPolicy": "Always",
         "ports": [{"name": "http", "containerPort": 9901}]}
    ]);
    let obj = deployment("side", template);
    let d = create(&obj);
    let port_ops: Vec<String> = paths(&d)
        .into_iter()
        .filter(|p| p.contains("ports"))
        .collect();
    assert!(port_ops.is_empty(), "{port_ops:?}");
    let f = d
        .findings
        .iter()
        .find(|f| f.rule.as_str() == "port-name-conflict")
        .expect("reported");
    assert_eq!(f.path, "spec.template.spec.initContainers[1].ports[0]");
    // A sidecar whose http is the engine's metrics port needs nothing.
    let mut fine = obj.clone();
    fine["spec"]["template"]["spec"]["initContainers"][1]["ports"][0]["containerPort"] =
        json!(8000);
    let d = create(&fine);
    assert!(!paths(&d).iter().any(|p| p.contains("ports")));
    assert!(!rules(&d).contains(&"port-name-conflict"));
}

#[test]
fn a_second_serving_engine_container_is_named_in_a_warning() {
    let mut second = vllm();
    second["name"] = json!("vllm-b");
    second["args"] = json!(["m2", "--port", "8001"]);
    let d = create(&deployment("two", pod(json!([vllm(), second]))));
    let f = d
        .findings
        .iter()
        .find(|f| f.rule.as_str() == "second-engine-container")
        .expect("reported");
    assert_eq!(f.level, Level::Warn);
    assert!(
        f.path.contains("containers[1]") && f.message.contains("\"vllm\""),
        "{f:?}"
    );
    assert_eq!(paths(&d).iter().filter(|p| p.contains("ports")).count(), 1);
}

#[test]
fn warnings_lead_with_the_rule_and_keep_the_fix() {
    let obj = deployment("sgl", pod(json!([sglang_without_metrics()])));
    let warnings = Outcome::of(&create(&obj), Mode::Warn, Route::Mutate).warnings;
    let w = warnings
        .iter()
        .find(|w| w.starts_with("metrics-disabled: "))
        .expect("the rule id first");
    assert!(w.contains("--enable-metrics"), "{w}");
    assert!(warnings.iter().all(|w| w.chars().count() <= 256));
}

#[test]
fn the_reporter_and_the_audit_count_a_workload_once_under_its_top_object() {
    use inference_webhook::decide::Policy;
    use inference_webhook::report::state::evaluate;
    use support::commands::{command, run};

    let mut parent = rbg_roles(json!([standalone("decode", vllm())]));
    parent["metadata"]["namespace"] = json!("llm");
    parent["metadata"]["uid"] = json!("p");
    let mut child = deployment("g-decode", pod(json!([vllm()])));
    child["kind"] = json!("StatefulSet");
    child["metadata"]["uid"] = json!("c");
    child["metadata"]["ownerReferences"] = json!([{"apiVersion": "workloads.x-k8s.io/v1alpha2",
        "kind": "RoleBasedGroup", "name": "g", "uid": "p", "controller": true}]);
    assert!(evaluate(&Policy::default(), &parent).is_some());
    // The child's record is kept only so that its pods' owner chain leads to the parent.
    let child_record = evaluate(&Policy::default(), &child);
    assert!(
        child_record.as_ref().is_some_and(|r| !r.is_reported()
            && matches!(&r.standing, inference_webhook::cluster::pods::Standing::Child(p) if p.contains('g'))),
        "{child_record:?}"
    );

    let stream = format!("{}\n---\n{}\n", parent, child);
    let out = run(
        command("audit").args(["-o", "json", "-"]),
        Some(stream.as_bytes()),
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("json report");
    let names: Vec<&str> = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    assert_eq!(names, ["g"], "{report}");
    assert_eq!(report["summary"]["workloads"], 1);
}
