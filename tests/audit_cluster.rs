//! `audit --cluster` against a local HTTPS server that replays recorded API list responses
//! (tests/fixtures/cluster/, served by `support::cluster`): paging with `continue`, a CRD version that is not served (404),
//! and a forbidden list (403). No real API server runs in CI. The reporter (`report`) lists the
//! same responses; its watch requests are held open without events.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cluster::{ReplayServer, TOKEN};
use support::commands::{command, json_report, path_with, plugin_dir, run, without_cluster_env};
use support::fixtures::temp_dir;
use support::metrics::{http_get, sum, wait_for};
use support::tools;

fn audit(args: &[&str]) -> Output {
    run(without_cluster_env(command("audit").args(args)), None)
}

/// `audit --cluster ARGS` of the cluster `server` replays, through its kubeconfig.
fn audit_cluster(server: &ReplayServer, args: &[&str]) -> Output {
    let kubeconfig = server.kubeconfig.to_string_lossy();
    audit(&[&["--cluster", "--kubeconfig", &kubeconfig], args].concat())
}

fn names(report: &Value) -> Vec<String> {
    report["objects"]
        .as_array()
        .map(|objects| {
            objects
                .iter()
                .map(|o| {
                    format!(
                        "{}/{}",
                        o["kind"].as_str().unwrap_or("?"),
                        o["name"].as_str().unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn lists_every_kind_page_by_page_and_notes_a_missing_crd() {
    let server = ReplayServer::start(false);
    let output = audit_cluster(&server, &["-A", "-o", "json"]);
    let report = json_report(&output);

    assert_eq!(
        names(&report),
        [
            "Deployment/qwen-vllm",
            "Deployment/llama-sglang",
            "RoleBasedGroup/vllm-rbg",
            "LeaderWorkerSet/sglang-multinode"
        ],
        "both pages of deployments, then the other kinds in table order"
    );
    assert_eq!(report["objects"][0]["apiVersion"], "apps/v1");
    assert_eq!(
        report["objects"][0]["source"]["resource"],
        "deployments.apps/v1"
    );
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("rolebasedgroups.workloads.x-k8s.io/v1alpha1: not served"),
        "{notes}"
    );
    assert_eq!(report["errors"], serde_json::json!([]));

    let requests = server.requests();
    assert!(
        requests.iter().all(|r| r.starts_with("GET ")),
        "read-only: {requests:?}"
    );
    assert!(
        requests
            .iter()
            .all(|r| r.contains("limit=250") && r.ends_with(&format!("Bearer {TOKEN}"))),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /apis/apps/v1/deployments?")
                && r.contains("continue=page-2-token")),
        "the second page is asked for with the continue token: {requests:?}"
    );
    assert!(
        requests.iter().all(|r| !r.contains("/namespaces/")),
        "-A lists across namespaces: {requests:?}"
    );
}

#[test]
fn cluster_objects_get_the_same_verdicts_as_manifests() {
    let server = ReplayServer::start(false);
    let output = audit_cluster(&server, &["-A", "-o", "json"]);
    let report = json_report(&output);
    let objects = &report["objects"];
    // The vLLM Deployment lacks the labels: a patch, allowed.
    assert_eq!(objects[0]["decision"], "allowed");
    assert_eq!(objects[0]["templates"][0]["backend"], "vllm");
    assert!(
        objects[0]["patch"]
            .as_array()
            .is_some_and(|p| !p.is_empty()),
        "{}",
        objects[0]
    );
    // SGLang without --enable-metrics is denied, so the audit exits 1.
    assert_eq!(objects[1]["decision"], "denied", "{}", objects[1]);
    assert!(
        objects[1]["violations"]
            .to_string()
            .contains("metrics-disabled")
    );
    // The labeled RoleBasedGroup is clean.
    assert_eq!(objects[2]["decision"], "allowed");
    assert_eq!(objects[2]["patch"], serde_json::json!([]), "{}", objects[2]);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn a_namespace_and_a_context_select_what_is_listed() {
    let server = ReplayServer::start(false);
    let output = audit_cluster(&server, &["-n", "ml"]);
    assert!(output.status.code().is_some_and(|c| c < 2), "{output:?}");
    let explicit = server.requests();
    // The namespace's own opt-in label is read by a list of that one namespace.
    let (namespaces, lists): (Vec<&String>, Vec<&String>) = explicit
        .iter()
        .partition(|r| r.starts_with("GET /api/v1/namespaces?"));
    assert!(
        namespaces.len() == 1 && namespaces[0].contains("fieldSelector=metadata.name%3Dml"),
        "{namespaces:?}"
    );
    assert!(
        !lists.is_empty() && lists.iter().all(|r| r.contains("/namespaces/ml/")),
        "{explicit:?}"
    );

    let output = audit_cluster(&server, &["--context", "other"]);
    assert!(output.status.code().is_some_and(|c| c < 2), "{output:?}");
    let requests = server.requests();
    let from_context = &requests[explicit.len()..];
    assert!(
        !from_context.is_empty()
            && from_context
                .iter()
                .all(|r| r.contains("/namespaces/team-a/")
                    || r.contains("fieldSelector=metadata.name%3Dteam-a")),
        "the context's namespace is the default: {from_context:?}"
    );
}

/// `namespace/workload reason` of each group of the report's unlabeledPods, with its pods.
fn pod_groups(report: &Value) -> Vec<(String, Vec<String>)> {
    let groups = report["unlabeledPods"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    groups
        .iter()
        .map(|g| {
            let key = format!(
                "{}/{} {}",
                g["namespace"].as_str().unwrap_or("?"),
                g["workload"].as_str().unwrap_or("?"),
                g["reason"].as_str().unwrap_or("?")
            );
            let pods = g["pods"].as_array().cloned().unwrap_or_default();
            let names = pods
                .iter()
                .map(|p| p["name"].as_str().unwrap_or("?").to_string());
            (key, names.collect())
        })
        .collect()
}

fn group<'a>(report: &'a Value, namespace: &str, reason: &str) -> &'a Value {
    let groups = report["unlabeledPods"].as_array();
    let found = groups
        .into_iter()
        .flatten()
        .find(|g| g["namespace"] == namespace && g["reason"] == reason);
    found.unwrap_or_else(|| panic!("no {namespace} {reason} group: {report}"))
}

#[test]
fn inference_pods_lacking_the_labels_are_listed_by_workload_with_the_reason_and_what_to_do() {
    let server = ReplayServer::start(false);
    let output = audit_cluster(&server, &["-A", "-o", "json"]);
    let report = json_report(&output);
    // The RoleBasedGroup is labeled; its StatefulSet's pod predates that.
    let rbg = report["objects"][2]["workload"]
        .as_str()
        .unwrap_or("?")
        .to_string();
    assert_eq!(
        pod_groups(&report),
        [
            (
                format!("default/{rbg} predates-template"),
                vec!["vllm-rbg-prefill-0".to_string()]
            ),
            (
                "ml/batch owner-kind-not-listed".to_string(),
                vec!["batch-0".to_string()]
            ),
            (
                "ml/pcs not-admitted".to_string(),
                vec!["pcs-0-decode-x1".to_string(), "pcs-0-decode-x2".to_string()]
            ),
            (
                "team-a/ray-llm namespace-not-opted-in".to_string(),
                vec!["ray-head-1".to_string()]
            ),
        ],
        "not the Deployment's pod (its template lacks the labels: counted under it), nor \
         labeled, finished, non-inference or kube-system pods"
    );
    assert_eq!(report["summary"]["unlabeledPods"], 5);
    assert_eq!(output.status.code(), Some(1), "pods change no exit code");

    let pcs = group(&report, "ml", "not-admitted");
    assert_eq!(pcs["count"], 2);
    assert_eq!(pcs["pods"][0]["owner"], "PodClique/pcs-0-decode");
    assert_eq!(pcs["pods"][0]["backend"], "vllm");
    let lacks = pcs["pods"][0]["lacks"].to_string();
    assert!(
        lacks.contains("label alibabacloud.com/inference-workload") && lacks.contains("port http"),
        "{lacks}"
    );
    let advice = |ns: &str, reason: &str| group(&report, ns, reason)["advice"].to_string();
    assert!(advice("ml", "not-admitted").contains("delete the pod to re-admit it"));
    assert!(
        advice("ml", "owner-kind-not-listed")
            .contains("add Job to the chart's webhook.pods.ownerKinds")
    );
    assert!(
        advice("team-a", "namespace-not-opted-in")
            .contains("kubectl label namespace team-a inference-monitoring=enabled")
    );
    assert!(advice("default", "predates-template").contains("RoleBasedGroup/vllm-rbg's template"));
    let requests = server.requests();
    for list in ["GET /api/v1/pods?", "GET /api/v1/namespaces?"] {
        assert!(
            requests.iter().any(|r| r.starts_with(list)),
            "{list}: {requests:?}"
        );
    }

    // The owner kinds are the chart's: a Job listed there makes its pod one the webhook missed.
    let with_jobs = audit_cluster(
        &server,
        &["-A", "-o", "json", "--pod-owner-kinds", "PodClique,Job"],
    );
    let with_jobs = json_report(&with_jobs);
    assert!(
        pod_groups(&with_jobs).contains(&(
            "ml/batch not-admitted".to_string(),
            vec!["batch-0".to_string()]
        )),
        "{with_jobs}"
    );

    let table = audit_cluster(&server, &["-A"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("Inference pods lacking the labels or the port (5), by workload:")
            && table.contains("  ml/pcs: 2 pods, not-admitted")
            && table.contains("5 inference pods lacking labels or port"),
        "{table}"
    );
}

#[test]
fn forbidden_lists_fail_with_the_rbac_it_needs() {
    let server = ReplayServer::start(true);
    let output = audit_cluster(&server, &["-A"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("forbidden") && stderr.contains("get and list on deployments"),
        "{stderr}"
    );
}

#[test]
fn an_unreadable_kubeconfig_is_a_usage_error() {
    let dir = temp_dir();
    let missing = dir.path().join("nope");
    let output = audit(&["--cluster", "--kubeconfig", &missing.to_string_lossy()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot read kubeconfig"), "{stderr}");
}

#[test]
fn the_kubectl_plugin_audits_the_cluster_of_kubectls_kubeconfig() {
    let Some(kubectl) = tools::kubectl() else {
        return;
    };
    let server = ReplayServer::start(false);
    let plugins = plugin_dir();
    // kubectl hands the plugin its environment: the plugin reads the same $KUBECONFIG.
    let output = run(
        without_cluster_env(&mut Command::new(kubectl))
            .args([
                "inference-webhook",
                "audit",
                "--cluster",
                "-A",
                "-o",
                "json",
            ])
            .env("PATH", path_with(plugins.path()))
            .env("KUBECONFIG", &server.kubeconfig),
        None,
    );
    let report = json_report(&output);
    assert_eq!(
        names(&report),
        names(&json_report(&audit_cluster(&server, &["-A", "-o", "json"]))),
        "the plugin lists what the binary lists"
    );
    assert_eq!(output.status.code(), Some(1), "one object is denied");
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.starts_with("GET ") && r.ends_with(&format!("Bearer {TOKEN}"))),
        "{:?}",
        server.requests()
    );
}

/// The reporter binary, killed when the test ends.
struct ReporterProcess {
    child: Child,
    addr: SocketAddr,
}

impl Drop for ReporterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(addr) => addr,
        Err(e) => panic!("no free port: {e}"),
    }
}

fn start_reporter(kubeconfig: &Path, flags: &[&str]) -> ReporterProcess {
    let addr = free_port();
    let child = without_cluster_env(&mut command("report"))
        .args(flags)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg(format!("--metrics-listen={addr}"))
        .stdout(Stdio::null())
        .spawn();
    match child {
        Ok(child) => ReporterProcess { child, addr },
        Err(e) => panic!("cannot run the binary: {e}"),
    }
}

/// The objects of `audit --cluster -A -o json`.
fn audited_objects(server: &ReplayServer) -> Vec<Value> {
    let report = json_report(&audit_cluster(server, &["-A", "-o", "json"]));
    report["objects"].as_array().cloned().unwrap_or_default()
}

#[test]
fn the_reporter_keeps_the_audits_verdicts_and_is_ready_once_every_served_kind_is_listed() {
    let server = ReplayServer::start(false);
    let objects = audited_objects(&server);
    let inference = objects
        .iter()
        .filter(|o| {
            o["templates"].as_array().is_some_and(|ts| {
                ts.iter()
                    .any(|t| t["detections"].as_array().is_some_and(|d| !d.is_empty()))
            })
        })
        .count() as i64;
    let violations: i64 = objects
        .iter()
        .map(|o| o["violations"].as_array().map_or(0, Vec::len) as i64)
        .sum();
    assert!(
        inference > 0 && violations > 0,
        "the fixtures have inference workloads with findings"
    );

    let reporter = start_reporter(&server.kubeconfig, &["--no-policy-reports"]);
    let (_, ready) = wait_for(reporter.addr, "/readyz", |code, _| code == 200);
    assert!(
        ready.contains(
            "rolebasedgroups.workloads.x-k8s.io/v1alpha1: not served (CRD not installed)"
        ) && ready.contains("deployments.apps/v1: synced"),
        "{ready}"
    );
    let (_, metrics) = wait_for(reporter.addr, "/metrics", |_, m| {
        sum(m, "inference_webhook_workloads") == inference
    });
    assert_eq!(
        sum(&metrics, "inference_webhook_findings"),
        violations,
        "{metrics}"
    );
    // The pods the audit lists, by reason, once the kinds and namespaces are listed.
    let (_, metrics) = wait_for(reporter.addr, "/metrics", |_, m| {
        sum(m, "inference_webhook_unlabeled_pods") == 5
    });
    assert!(
        metrics.contains(r#"inference_webhook_unlabeled_pods{namespace="ml",backend="vllm",reason="not-admitted"} 2"#)
            && metrics.contains(r#"inference_webhook_unlabeled_pods{namespace="default",backend="vllm",reason="predates-template"} 1"#),
        "{metrics}"
    );
    assert!(ready.contains("pods/v1: synced"), "{ready}");
    assert!(
        metrics.contains(r#"inference_webhook_reporter_watch_errors_total{resource="rolebasedgroups.workloads.x-k8s.io/v1alpha1",reason="not-found"}"#),
        "{metrics}"
    );
    // The list was paged and watches were started from its resourceVersion.
    let requests = server.requests();
    assert!(
        requests.iter().any(
            |r| r.contains("/apis/apps/v1/deployments?") && r.contains("continue=page-2-token")
        ),
        "{requests:?}"
    );
    assert!(
        requests.iter().any(|r| r.contains("watch=true")),
        "{requests:?}"
    );
}

#[test]
fn a_forbidden_reporter_says_what_it_needs_and_stays_up() {
    let server = ReplayServer::start(true);
    let mut reporter = start_reporter(&server.kubeconfig, &["--no-policy-reports"]);
    // Every watch fails on its own schedule; wait for the Deployments one.
    let (code, body) = wait_for(reporter.addr, "/readyz", |_, body| {
        body.contains("deployments.apps/v1: failing")
    });
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("deployments.apps/v1: failing: forbidden: the reporter's ServiceAccount needs get, list and watch on deployments"),
        "{body}"
    );
    let (_, metrics) = wait_for(reporter.addr, "/metrics", |_, m| {
        m.contains(r#"{resource="deployments.apps/v1",reason="forbidden"}"#)
    });
    assert!(
        metrics.contains("inference_webhook_reporter_watch_up{resource=\"deployments.apps/v1\"} 0"),
        "{metrics}"
    );
    assert_eq!(http_get(reporter.addr, "/healthz").map(|a| a.0), Some(200));
    assert!(
        matches!(reporter.child.try_wait(), Ok(None)),
        "the process stays up"
    );
}

#[test]
fn the_reporter_applies_one_policy_report_per_namespace_with_the_audits_findings() {
    let server = ReplayServer::start(false);
    let report = json_report(&audit_cluster(&server, &["-A", "-o", "json"]));
    let in_default = |o: &&Value| o["namespace"] == "default";
    let objects = report["objects"].as_array().cloned().unwrap_or_default();
    let violations: usize = objects
        .iter()
        .filter(in_default)
        .map(|o| o["violations"].as_array().map_or(0, Vec::len))
        .sum();
    // Each listed pod is one warn result of its namespace's report.
    let pods: usize = report["unlabeledPods"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(in_default)
        .map(|g| g["pods"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(pods, 1, "{report}");
    let _reporter = start_reporter(&server.kubeconfig, &["--debounce=100ms", "--open-reports"]);
    // The pods' watch starts after the kinds' have listed: wait for the writes that carry its pod.
    let with_pod = |writes: &[(String, String)]| {
        writes
            .iter()
            .filter(|(_, body)| body.contains(r#""kind":"Pod""#))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let writes = loop {
        let writes = server.writes();
        if with_pod(&writes) >= 2 || Instant::now() > deadline {
            break writes;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let paths: Vec<&str> = writes.iter().map(|(what, _)| what.as_str()).collect();
    for (prefix, api_version) in [
        (
            "PATCH /apis/wgpolicyk8s.io/v1alpha2/namespaces/default/policyreports/inference-webhook?",
            "wgpolicyk8s.io/v1alpha2",
        ),
        (
            "PATCH /apis/openreports.io/v1alpha1/namespaces/default/reports/inference-webhook?",
            "openreports.io/v1alpha1",
        ),
    ] {
        let last = writes
            .iter()
            .rev()
            .find(|(what, _)| what.starts_with(prefix));
        let Some((what, body)) = last else {
            panic!("no {prefix}: {paths:?}");
        };
        // Server-side apply, as the reporter's field manager.
        assert!(
            what.contains("fieldManager=inference-webhook-reporter")
                && what.contains("force=true")
                && what.ends_with("application/apply-patch+yaml"),
            "{what}"
        );
        let applied: Value = serde_json::from_str(body).unwrap_or_default();
        assert_eq!(applied["apiVersion"], api_version, "{body}");
        let results = applied["results"].as_array().cloned().unwrap_or_default();
        let failing = results
            .iter()
            .filter(|r| r["result"] == "fail" || r["result"] == "warn")
            .count();
        assert_eq!(
            failing,
            violations + pods,
            "one result per finding of the audit and per listed pod: {body}"
        );
        let Some(pod) = results.iter().find(|r| r["resources"][0]["kind"] == "Pod") else {
            panic!("no result for the pod: {body}");
        };
        assert_eq!(pod["resources"][0]["name"], "vllm-rbg-prefill-0", "{body}");
        assert_eq!(pod["result"], "warn", "{body}");
        assert!(
            pod["message"]
                .to_string()
                .contains("predates-template: created before RoleBasedGroup/vllm-rbg's template"),
            "{body}"
        );
        let summed: u64 = ["pass", "fail", "warn", "error", "skip"]
            .iter()
            .map(|k| applied["summary"][k].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(summed as usize, results.len(), "{body}");
    }
}
