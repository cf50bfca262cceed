//! The reporter's state, gauges and policy reports, built from objects as the API server
//! returns them (watch events carry kind and apiVersion). The reports are checked against the
//! PolicyReport and Report CRD schemas in ../shared/crds when that directory is present.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure with its message

mod support;

use std::collections::HashSet;
use std::path::Path;

use inference_webhook::admission::Mode;
use inference_webhook::decide::Policy;
use inference_webhook::report::metrics::Metrics;
use inference_webhook::report::policyreport::{self, Format, OPEN_REPORT, POLICY_REPORT};
use inference_webhook::report::state::{Record, State, Store, evaluate};
use serde_json::{Value, json};
use support::metrics::sample;
use support::schema::check;

fn deployment(name: &str, uid: &str, labels: Value, container: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "ml", "uid": uid, "resourceVersion": "7"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [container]}
            }
        }
    })
}

fn vllm() -> Value {
    json!({
        "name": "vllm",
        "image": "vllm/vllm-openai:v0.10.0",
        "args": ["--model", "Qwen/Qwen2.5-7B-Instruct", "--port", "8000"],
        "ports": [{"containerPort": 8000}]
    })
}

/// A vLLM Deployment as the webhook leaves it: labels and the named metrics port.
fn labeled(name: &str, uid: &str) -> Value {
    let mut container = vllm();
    container["ports"] = json!([{"name": Policy::default().port_name, "containerPort": 8000}]);
    deployment(
        name,
        uid,
        json!({
            "app": name,
            "alibabacloud.com/inference-workload": name,
            "alibabacloud.com/inference-backend": "vllm"
        }),
        container,
    )
}

fn unlabeled(name: &str, uid: &str) -> Value {
    deployment(name, uid, json!({"app": name}), vllm())
}

/// vLLM with its metrics switched off: a deny-level rule fires.
fn denied(name: &str, uid: &str) -> Value {
    let mut container = vllm();
    container["args"] = json!([
        "--model",
        "Qwen/Qwen2.5-7B-Instruct",
        "--disable-log-stats",
        "--port",
        "8000"
    ]);
    deployment(name, uid, json!({"app": name}), container)
}

fn plain(name: &str, uid: &str) -> Value {
    deployment(
        name,
        uid,
        json!({"app": name}),
        json!({"name": "nginx", "image": "nginx:1.27"}),
    )
}

/// The one report of a small namespace.
fn only_report(mut reports: Vec<Value>) -> Value {
    assert_eq!(reports.len(), 1, "one report for a few workloads");
    reports.remove(0)
}

fn record(object: &Value) -> Record {
    evaluate(&Policy::default(), object).expect("a handled kind with a name and uid")
}

#[test]
fn workloads_are_monitored_unmonitored_or_denied() {
    let v = record(&labeled("a", "u1"));
    assert_eq!(v.state, Some(State::Monitored), "{v:?}");
    assert_eq!(v.backend, "vllm");
    assert!(v.findings.is_empty(), "{v:?}");

    let v = record(&unlabeled("b", "u2"));
    assert_eq!(v.state, Some(State::Unmonitored), "{v:?}");
    assert!(
        v.findings
            .iter()
            .any(|f| f.rule.as_str() == "monitoring-labels-missing")
    );

    // Judged alone it would be denied in enforce mode; the store knows the namespace's mode.
    let v = record(&denied("c", "u3"));
    assert!(v.would_deny, "{v:?}");
    assert_eq!(v.state, Some(State::Unmonitored), "{v:?}");
    assert!(
        v.findings
            .iter()
            .any(|f| f.rule.as_str() == "metrics-disabled")
    );

    let v = record(&plain("d", "u4"));
    assert_eq!(v.state, None);
    assert_eq!(v.backend, "none");
    assert!(!v.is_reported());
}

#[test]
fn objects_of_other_kinds_or_without_identity_are_not_kept() {
    let policy = Policy::default();
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "ml", "uid": "x"}});
    assert!(evaluate(&policy, &service).is_none());
    let mut no_uid = unlabeled("b", "u2");
    no_uid["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("uid");
    assert!(evaluate(&policy, &no_uid).is_none());
}

#[test]
fn an_opted_out_workload_is_reported_as_skipped() {
    let policy = Policy::default();
    let mut object = unlabeled("b", "u2");
    object["metadata"]["labels"] =
        json!({policy.opt_out_label.clone(): policy.opt_out_value.clone()});
    let v = record(&object);
    assert!(v.skipped.is_some(), "{v:?}");
    assert!(v.is_reported());
    let report = only_report(policyreport::build(POLICY_REPORT, "ml", &[&v], 1));
    assert_eq!(report["summary"]["skip"], 1, "{report}");
    assert_eq!(report["results"].as_array().map(Vec::len), Some(1));
}

fn gauge(metrics: &Metrics, name: &str, labels: &str) -> Option<i64> {
    sample(&metrics.encode(), name, labels)
}

fn apply(store: &mut Store, metrics: &Metrics, watch: usize, object: &Value) {
    let change = store.apply(watch, record(object));
    metrics.record(&change);
}

#[test]
fn gauges_follow_create_fix_and_delete() {
    let mut store = Store::default();
    let metrics = Metrics::new();
    let unmonitored = r#"namespace="ml",kind="Deployment",backend="vllm",state="unmonitored""#;
    let monitored = r#"namespace="ml",kind="Deployment",backend="vllm",state="monitored""#;
    let missing = r#"namespace="ml",rule="monitoring-labels-missing",level="warn""#;

    apply(&mut store, &metrics, 0, &unlabeled("b", "u2"));
    apply(&mut store, &metrics, 0, &unlabeled("e", "u5"));
    apply(&mut store, &metrics, 0, &plain("d", "u4"));
    assert_eq!(
        gauge(&metrics, "inference_webhook_workloads", unmonitored),
        Some(2)
    );
    assert_eq!(
        gauge(&metrics, "inference_webhook_findings", missing),
        Some(2)
    );
    assert_eq!(store.len(), 3);

    // The same record again (a status update) changes nothing.
    let again = store.apply(0, record(&unlabeled("b", "u2")));
    assert!(again.is_noop());
    metrics.record(&again);
    assert_eq!(
        gauge(&metrics, "inference_webhook_workloads", unmonitored),
        Some(2)
    );

    // Fixed: it moves from unmonitored to monitored.
    apply(&mut store, &metrics, 0, &labeled("b", "u2"));
    assert_eq!(
        gauge(&metrics, "inference_webhook_workloads", unmonitored),
        Some(1)
    );
    assert_eq!(
        gauge(&metrics, "inference_webhook_workloads", monitored),
        Some(1)
    );
    assert_eq!(
        gauge(&metrics, "inference_webhook_findings", missing),
        Some(1)
    );

    // Deleted: its series go away once they reach zero.
    metrics.record(&store.delete("ml", "u5"));
    assert_eq!(
        gauge(&metrics, "inference_webhook_workloads", unmonitored),
        None
    );
    assert_eq!(gauge(&metrics, "inference_webhook_findings", missing), None);
    assert_eq!(
        gauge(&metrics, "inference_webhook_workloads", monitored),
        Some(1)
    );
}

#[test]
fn denied_only_where_the_namespace_is_in_enforce_mode() {
    let mut store = Store::default();
    let metrics = Metrics::new();
    let series = |state: &str| {
        let labels = format!(r#"namespace="ml",kind="Deployment",backend="vllm",state="{state}""#);
        gauge(&metrics, "inference_webhook_workloads", &labels)
    };
    let set_mode = |store: &mut Store, mode| {
        let changes = store.set_mode("ml", mode);
        changes.iter().for_each(|c| metrics.record(c));
        changes.len()
    };
    // Not opted in: the webhook never sees it, so nothing is denied.
    apply(&mut store, &metrics, 0, &denied("c", "u3"));
    assert_eq!((series("denied"), series("unmonitored")), (None, Some(1)));

    assert_eq!(set_mode(&mut store, Some(Mode::Enforce)), 1);
    assert_eq!((series("denied"), series("unmonitored")), (Some(1), None));
    // A workload arriving in an enforce namespace is denied at once.
    apply(&mut store, &metrics, 0, &denied("d", "u4"));
    apply(&mut store, &metrics, 0, &unlabeled("e", "u5"));
    assert_eq!(
        (series("denied"), series("unmonitored")),
        (Some(2), Some(1))
    );

    assert_eq!(set_mode(&mut store, Some(Mode::Warn)), 2);
    assert_eq!((series("denied"), series("unmonitored")), (None, Some(3)));
    assert_eq!(
        set_mode(&mut store, None),
        0,
        "audit, warn and none never deny"
    );
}

#[test]
fn a_relist_forgets_what_was_deleted_while_the_watch_was_down() {
    let mut store = Store::default();
    let metrics = Metrics::new();
    apply(&mut store, &metrics, 0, &unlabeled("b", "u2"));
    apply(&mut store, &metrics, 0, &denied("c", "u3"));
    let listed: HashSet<String> = ["u2".to_string()].into();
    for change in store.retain_listed(0, &listed) {
        metrics.record(&change);
    }
    assert_eq!(store.len(), 1);
    let denied_series = r#"namespace="ml",kind="Deployment",backend="vllm",state="denied""#;
    assert_eq!(
        gauge(&metrics, "inference_webhook_workloads", denied_series),
        None
    );
}

#[test]
fn a_kind_served_in_two_versions_is_kept_once_by_the_earlier_row() {
    let mut store = Store::default();
    let newer = record(&unlabeled("b", "u2"));
    let mut older = newer.clone();
    older.api_version = "apps/v1beta2".into();
    assert!(store.apply(1, older.clone()).added.is_some());
    assert!(store.apply(0, newer.clone()).added.is_some());
    // The later row's update of the same object does not take it back.
    assert!(store.apply(1, older).is_noop());
    assert_eq!(store.reported_in("ml"), vec![&newer]);
    // A re-list of the later row does not drop what the earlier row owns.
    assert!(store.retain_listed(1, &HashSet::new()).is_empty());
    assert_eq!(store.len(), 1);
}

#[test]
fn a_report_has_one_result_per_workload_and_rule_and_a_matching_summary() {
    let objects = [
        labeled("a", "u1"),
        unlabeled("b", "u2"),
        denied("c", "u3"),
        plain("d", "u4"),
    ];
    let mut store = Store::default();
    for o in &objects {
        store.apply(0, record(o));
    }
    let records = store.reported_in("ml");
    assert_eq!(records.len(), 3, "the plain Deployment is not reported");
    let report = only_report(policyreport::build(
        POLICY_REPORT,
        "ml",
        &records,
        1_700_000_000,
    ));
    assert_eq!(report["apiVersion"], "wgpolicyk8s.io/v1alpha2");
    assert_eq!(report["metadata"]["namespace"], "ml");
    let results = report["results"].as_array().expect("results");
    let by_workload = |name: &str| -> Vec<(&str, &str)> {
        results
            .iter()
            .filter(|r| r["resources"][0]["name"] == name)
            .map(|r| {
                (
                    r["rule"].as_str().unwrap_or_default(),
                    r["result"].as_str().unwrap_or_default(),
                )
            })
            .collect()
    };
    assert_eq!(by_workload("a"), [("monitoring-labels-missing", "pass")]);
    assert!(by_workload("b").contains(&("monitoring-labels-missing", "warn")));
    assert!(by_workload("c").contains(&("metrics-disabled", "fail")));
    assert!(by_workload("d").is_empty());
    let count = |what: &str| results.iter().filter(|r| r["result"] == what).count();
    for key in ["pass", "fail", "warn", "error", "skip"] {
        assert_eq!(
            report["summary"][key],
            count(key),
            "summary.{key}: {report}"
        );
    }
    assert_eq!(results[0]["resources"][0]["uid"], "u1");
}

#[test]
fn reports_fit_the_policyreport_and_openreports_crds() {
    let crds = support::fixtures::shared("crds");
    let mut store = Store::default();
    for o in [labeled("a", "u1"), unlabeled("b", "u2"), denied("c", "u3")] {
        store.apply(0, record(&o));
    }
    let records = store.reported_in("ml");
    for (format, file) in [
        (POLICY_REPORT, "wgpolicyk8s.io_policyreports.yaml"),
        (OPEN_REPORT, "openreports.io_reports.yaml"),
    ] {
        let schema = crd_schema(&crds.join(file), format);
        let report = only_report(policyreport::build(format, "ml", &records, 1));
        let mut problems = Vec::new();
        check(&schema, &report, "", &mut problems);
        assert!(problems.is_empty(), "{file}: {problems:#?}");
    }
}

fn crd_schema(path: &Path, format: Format) -> Value {
    let text = std::fs::read_to_string(path).expect("readable CRD");
    let crd = support::yaml::value(&text, &path.display().to_string());
    assert_eq!(crd["spec"]["names"]["kind"], format.kind);
    crd["spec"]["versions"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["name"] == format.version))
        .map(|v| v["schema"]["openAPIV3Schema"].clone())
        .expect("the version in the CRD")
}

#[test]
fn an_exempted_finding_is_a_skip_result_and_counts_in_no_gauge() {
    let policy = Policy::default();
    let mut object = denied("c", "u3");
    object["metadata"]["annotations"] = json!({
        policy.exemptions.rules_annotation.clone(): "metrics-disabled",
        policy.exemptions.reason_annotation.clone(): "metrics come from a sidecar"
    });
    let v = record(&object);
    let exempted: Vec<_> = v.findings.iter().filter(|f| f.exempted.is_some()).collect();
    assert_eq!(exempted.len(), 1, "{v:?}");
    assert_eq!(exempted[0].rule.as_str(), "metrics-disabled");
    assert!(!v.would_deny, "an exempted deny does not deny: {v:?}");

    let report = only_report(policyreport::build(POLICY_REPORT, "ml", &[&v], 1));
    let results = report["results"].as_array().expect("results");
    let skip = results
        .iter()
        .find(|r| r["rule"] == "metrics-disabled")
        .expect("a result for the exempted rule");
    assert_eq!(skip["result"], "skip", "{report}");
    assert!(
        skip["message"]
            .as_str()
            .is_some_and(|m| m.contains("metrics come from a sidecar")),
        "{skip}"
    );
    assert_eq!(report["summary"]["fail"], 0, "{report}");

    let metrics = Metrics::new();
    let mut store = Store::default();
    metrics.record(&store.apply(0, v));
    let series = r#"namespace="ml",rule="metrics-disabled",level="deny""#;
    assert_eq!(gauge(&metrics, "inference_webhook_findings", series), None);
}

#[test]
fn the_reporter_takes_the_override_annotations() {
    // A vendor launcher nothing can read, the owner's answer on the template.
    let launcher = json!({"name": "model", "image": "registry.example.com/acme/serving:4.2",
        "command": ["/opt/acme/start"], "ports": [{"name": "api", "containerPort": 9000}]});
    let mut object = deployment("vendor", "u9", json!({"app": "vendor"}), launcher);
    object["spec"]["template"]["metadata"]["annotations"] =
        json!({"inference-webhook/engine": "vllm", "inference-webhook/metrics-port": "api"});
    let v = record(&object);
    assert_eq!(
        (v.state, v.backend),
        (Some(State::Unmonitored), "vllm"),
        "{v:?}"
    );
    // `none` on a vLLM workload: not an inference engine, nothing to report but the skip.
    let mut object = unlabeled("not-served", "u10");
    object["metadata"]["annotations"] = json!({"inference-webhook/engine": "none"});
    let v = record(&object);
    assert!(v.skipped.is_some() && v.findings.is_empty(), "{v:?}");
    // A typo is a finding.
    let mut object = unlabeled("typo", "u11");
    object["metadata"]["annotations"] = json!({"inference-webhook/engine": "vlm"});
    let v = record(&object);
    assert!(
        v.findings
            .iter()
            .any(|f| f.rule.as_str() == "override-invalid"),
        "{v:?}"
    );
}

#[test]
fn five_thousand_workloads_in_one_namespace_are_split_over_reports_under_the_limit() {
    let mut store = Store::default();
    for i in 0..5_000 {
        let (name, uid) = (format!("llm-{i:04}"), format!("uid-{i:04}"));
        let object = match i % 3 {
            0 => labeled(&name, &uid),
            1 => unlabeled(&name, &uid),
            _ => denied(&name, &uid),
        };
        store.apply(0, record(&object));
    }
    let records = store.reported_in("ml");
    assert_eq!(records.len(), 5_000);
    let reports = policyreport::build(POLICY_REPORT, "ml", &records, 1_700_000_000);
    // What etcd accepts in one request; the API server adds managedFields on top.
    const ETCD_LIMIT: usize = 3 * 1024 * 1024 / 2;
    let sizes: Vec<usize> = reports
        .iter()
        .map(|r| serde_json::to_vec(r).unwrap().len())
        .collect();
    assert!(
        sizes.iter().sum::<usize>() > ETCD_LIMIT,
        "one report would not fit: {sizes:?}"
    );
    assert!(
        sizes.iter().all(|s| *s <= policyreport::MAX_REPORT_BYTES),
        "{sizes:?}"
    );
    let mut workloads_seen = HashSet::new();
    let mut results = 0;
    for (index, report) in reports.iter().enumerate() {
        let name = report["metadata"]["name"].as_str().unwrap();
        assert_eq!(name, policyreport::report_name(index));
        assert_eq!(policyreport::report_index(name), Some(index));
        let list = report["results"].as_array().unwrap();
        let summed: u64 = ["pass", "fail", "warn", "error", "skip"]
            .iter()
            .map(|k| report["summary"][k].as_u64().unwrap())
            .sum();
        assert_eq!(
            summed as usize,
            list.len(),
            "{name}: summary of its own results"
        );
        // A workload's results are in one report only.
        let here: HashSet<&str> = list
            .iter()
            .map(|r| r["resources"][0]["uid"].as_str().unwrap())
            .collect();
        assert!(
            here.iter()
                .all(|uid| workloads_seen.insert(uid.to_string()))
        );
        results += list.len();
    }
    assert_eq!(workloads_seen.len(), 5_000);
    let one_each: usize = records
        .iter()
        .map(|r| {
            policyreport::build(POLICY_REPORT, "ml", &[r], 1)[0]["results"]
                .as_array()
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(results, one_each, "no result lost or repeated");
}
