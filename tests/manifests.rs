//! The install manifests agree with the code. Checked on the plain kustomize base
//! (`deploy/base/*.yaml`), on the kustomize overlays and on the Helm chart rendered with each value
//! set in `charts/inference-webhook/ci/`:
//! - the webhook rules name exactly the kinds and versions of `decide::kinds::KINDS`;
//! - one entry per mode, at `/mutate/{mode}` and `/validate/{mode}` for `Mode::ALL`, selected by
//!   the namespace opt-in label value of that mode; the webhook's own namespace and kube-system
//!   are never matched; objects opt out with the policy's opt-out label;
//! - the Service routes port 443 (`https`) to the container's 8443, where the server listens;
//! - mutation is fail-open, the hardening of the pod, and the policy ConfigMap loads;
//! - the real server, started with that policy, answers every path the configurations call and
//!   the probes' paths; the Deployment's arguments parse as a `serve` command line.
//!
//! - the reporter (chart `reporter.enabled`, kustomize component): its ClusterRole watches exactly
//!   the engine's kinds and writes only policy reports, the server has no RBAC, its arguments parse
//!   as a `report` command line, and its alerts pass `promtool check rules` and `promtool test
//!   rules` (tests/promtool/) and are the same in both.
//!
//! `helm`, `kubectl` and `promtool` are found at `$HELM` / `$KUBECTL`, else in the cache that
//! `.ci/check-manifests.sh` fills (`$INFERENCE_WEBHOOK_CI_CACHE/bin`, default
//! `~/.cache/inference-webhook-ci/bin`); `promtool` on the PATH (Debian's prometheus package) or at `$PROMTOOL`. Missing tools fail the test; outside CI,
//! `INFERENCE_WEBHOOK_SKIP_TOOLS=1` skips the parts that need them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure with its message

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use inference_webhook::admission::Mode;
use inference_webhook::config::Config;
use inference_webhook::decide::kinds::{KINDS, POD};
use inference_webhook::decide::{Policy, RuleId};
use serde_json::Value;
use support::commands::{BINARY, succeeded};
use support::fixtures::{json_file, repo};
use support::patch::review_patch;
use support::server::{post_json, start, start_serving};
use support::tools;

/// Where the server listens for reviews (`serve --listen` default port).
const SERVER_PORT: i64 = 8443;

/// The namespace label value that opts a namespace into each mode: the documented contract.
fn opt_in_value(mode: Mode) -> &'static str {
    match mode {
        Mode::Enforce => "enabled",
        Mode::Warn => "warn",
        Mode::Audit => "audit",
    }
}

fn parse_documents(yaml: &str, origin: &str) -> Vec<Value> {
    support::yaml::documents(yaml)
        .into_iter()
        .map(|doc| doc.unwrap_or_else(|e| panic!("{origin}: invalid YAML: {e}")))
        .filter(|doc| !doc.is_null())
        .collect()
}

/// Every object of the plain kustomize base.
fn base_documents() -> Vec<Value> {
    let dir = repo().join("deploy/base");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| p.file_name().is_some_and(|n| n != "kustomization.yaml"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            parse_documents(&text, &f.display().to_string())
        })
        .collect()
}

/// promtool from the Debian package `.ci/check-manifests.sh` installs (on the PATH), or `$PROMTOOL`.
fn promtool() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("promtool"))
        .find(|p| p.is_file())
        .or_else(|| tools::bin("promtool", "PROMTOOL"))
}

fn run(program: &Path, args: &[&str]) -> String {
    let out = succeeded(Command::new(program).args(args).current_dir(repo()));
    String::from_utf8(out.stdout).unwrap()
}

/// The webhook server's part of each chart render (the reporter's objects are checked apart).
fn chart_renders() -> Option<Vec<(String, Vec<Value>)>> {
    Some(
        chart_renders_all()?
            .into_iter()
            .map(|(name, docs)| (name, docs.into_iter().filter(|d| !is_reporter(d)).collect()))
            .collect(),
    )
}

/// The webhook server's part of the chart rendered with one value set, by file name.
fn chart_render(values: &str) -> Option<Vec<Value>> {
    let renders = chart_renders()?;
    let (_, docs) = renders.into_iter().find(|(n, _)| n == values).unwrap();
    Some(docs)
}

fn is_reporter(doc: &Value) -> bool {
    doc["metadata"]["labels"]["app.kubernetes.io/component"] == "reporter"
}

/// The chart rendered with each value set of `charts/inference-webhook/ci/`, by file name.
fn chart_renders_all() -> Option<Vec<(String, Vec<Value>)>> {
    let helm = tools::bin("helm", "HELM")?;
    let mut sets: Vec<PathBuf> = std::fs::read_dir(repo().join("charts/inference-webhook/ci"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    sets.sort();
    assert!(sets.len() >= 4, "expected the chart's CI value sets");
    let renders = sets
        .iter()
        .map(|values| {
            let name = values.file_name().unwrap().to_string_lossy().into_owned();
            let yaml = run(
                &helm,
                &[
                    "template",
                    "inference-webhook",
                    "charts/inference-webhook",
                    "--namespace",
                    "inference-webhook",
                    "-f",
                    values.to_str().unwrap(),
                ],
            );
            let docs = parse_documents(&yaml, &name);
            (name, docs)
        })
        .collect();
    Some(renders)
}

fn kustomize(dir: &str) -> Option<Vec<Value>> {
    let kubectl = tools::kubectl()?;
    if dir.ends_with("static-certs") {
        let certs = repo().join("deploy/overlays/static-certs/certs");
        if !certs.join("ca-bundle.crt").is_file() {
            let _ = std::fs::remove_dir_all(&certs);
            run(
                &repo().join("certs/gen-certs.sh"),
                &["--out", certs.to_str().unwrap()],
            );
        }
    }
    Some(parse_documents(&run(&kubectl, &["kustomize", dir]), dir))
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found = of_kind(docs, kind);
    assert_eq!(found.len(), 1, "expected exactly one {kind}");
    found[0]
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected a list, got {v}"))
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

/// (group, version, resource) triples the engine handles.
fn engine_kinds() -> BTreeSet<(String, String, String)> {
    KINDS
        .iter()
        .flat_map(|k| {
            k.versions
                .iter()
                .map(|v| (k.group.to_string(), v.to_string(), k.resource.to_string()))
        })
        .collect()
}

/// The Pod row (`decide::kinds::POD`), reviewed through entries of its own.
fn pod_kind() -> BTreeSet<(String, String, String)> {
    POD.versions
        .iter()
        .map(|v| {
            (
                POD.group.to_string(),
                v.to_string(),
                POD.resource.to_string(),
            )
        })
        .collect()
}

/// A Pod entry: mutation only, CREATE only, fail-open with a short timeout, and the CEL
/// conditions that keep every pod the templates already labeled, or no listed operator made,
/// away from the webhook.
fn check_pod_entry(at: &str, route: &str, hook: &Value, policy: &Policy) {
    assert_eq!(
        route, "mutate",
        "{at}: Pods are never validated (never denied)"
    );
    for rule in hook["rules"].as_array().unwrap() {
        assert_eq!(strs(&rule["operations"]), ["CREATE"], "{at}");
        assert_eq!(rule["scope"], "Namespaced", "{at}");
    }
    assert_eq!(hook["failurePolicy"], "Ignore", "{at}");
    assert_eq!(hook["reinvocationPolicy"], "IfNeeded", "{at}");
    assert_eq!(hook["sideEffects"], "None", "{at}");
    assert!(
        hook["timeoutSeconds"].as_i64().unwrap() <= 3,
        "{at}: a short timeout"
    );
    let excluded = &hook["namespaceSelector"]["matchExpressions"][1];
    assert!(strs(&excluded["values"]).contains(&"kube-system"), "{at}");
    assert_eq!(
        hook["objectSelector"]["matchExpressions"][0]["key"],
        policy.opt_out_label.as_str(),
        "{at}"
    );
    let conditions: Vec<&str> = hook["matchConditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["expression"].as_str().unwrap())
        .collect();
    assert!(
        conditions.iter().any(|c| c.contains(&format!(
            "!('{}' in object.metadata.labels)",
            policy.labels.workload
        ))),
        "{at}: only pods without the workload label: {conditions:?}"
    );
    assert!(
        conditions.iter().any(|c| c.contains("r.controller")
            && c.contains("'PodClique'")
            && c.contains("'serving.knative.dev/revision'")),
        "{at}: only pods a listed controller made: {conditions:?}"
    );
}

fn rule_kinds(rules: &Value) -> BTreeSet<(String, String, String)> {
    let mut kinds = BTreeSet::new();
    for rule in rules.as_array().unwrap() {
        for g in strs(&rule["apiGroups"]) {
            for v in strs(&rule["apiVersions"]) {
                for r in strs(&rule["resources"]) {
                    kinds.insert((g.to_string(), v.to_string(), r.to_string()));
                }
            }
        }
    }
    kinds
}

/// The policy file the Deployment loads: the ConfigMap mounted at the directory of `--config`.
fn mounted_config(docs: &[Value]) -> Config {
    let deployment = one(docs, "Deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let config = flag(container, "--config").expect("the Deployment passes --config");
    let (dir, file) = config.rsplit_once('/').unwrap();
    let volume = mount_volume(deployment, dir);
    let name = volume["configMap"]["name"]
        .as_str()
        .expect("--config is on a ConfigMap volume");
    let cm = of_kind(docs, "ConfigMap")
        .into_iter()
        .find(|c| c["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no ConfigMap {name}"));
    let text = cm["data"][file].as_str().unwrap();
    Config::from_yaml(text, name).unwrap_or_else(|e| panic!("the policy does not load: {e}"))
}

/// Value of `--name=value` in the container's args.
fn flag<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    strs(&container["args"])
        .into_iter()
        .find_map(|a| a.strip_prefix(name)?.strip_prefix('='))
}

/// The pod volume mounted at `dir` in the first container.
fn mount_volume<'a>(deployment: &'a Value, dir: &str) -> &'a Value {
    let pod = &deployment["spec"]["template"]["spec"];
    let mount = pod["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == dir)
        .unwrap_or_else(|| panic!("nothing mounted at {dir}"));
    pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap()
}

/// Everything that must hold for one rendering of the install; `origin` names it in failures.
/// Returns the modes that have entries, per configuration kind.
fn check_install(origin: &str, docs: &[Value]) -> Vec<(String, BTreeSet<&'static str>)> {
    let service = one(docs, "Service");
    let deployment = one(docs, "Deployment");
    let namespace = deployment["metadata"]["namespace"].as_str().unwrap();
    let policy = mounted_config(docs).policy;
    let mut modes_seen = Vec::new();

    // Service 443 (https) -> 8443, where the container listens.
    let https = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "https")
        .unwrap_or_else(|| panic!("{origin}: the Service has no port named https"));
    assert_eq!(
        https["targetPort"], SERVER_PORT,
        "{origin}: Service targetPort"
    );
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let listen = flag(container, "--listen").unwrap_or("0.0.0.0:8443");
    assert!(
        listen.ends_with(&format!(":{SERVER_PORT}")),
        "{origin}: --listen={listen}"
    );
    assert!(
        container["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "https" && p["containerPort"] == SERVER_PORT),
        "{origin}: the container declares https:{SERVER_PORT}"
    );

    for (kind, route) in [
        ("MutatingWebhookConfiguration", "mutate"),
        ("ValidatingWebhookConfiguration", "validate"),
    ] {
        let (mut modes, mut pod_modes) = (BTreeSet::new(), BTreeSet::new());
        for config in of_kind(docs, kind) {
            for hook in config["webhooks"].as_array().unwrap() {
                let name = hook["name"].as_str().unwrap();
                let at = format!("{origin}: {kind} {name}");
                let svc = &hook["clientConfig"]["service"];
                assert_eq!(svc["name"], service["metadata"]["name"], "{at}: service");
                assert_eq!(svc["namespace"], namespace, "{at}: service namespace");
                assert_eq!(svc["port"], https["port"], "{at}: service port");

                let path = svc["path"].as_str().unwrap();
                let mode = path
                    .strip_prefix(&format!("/{route}/"))
                    .and_then(Mode::parse)
                    .unwrap_or_else(|| panic!("{at}: path {path} is not /{route}/{{mode}}"));
                let is_pod = rule_kinds(&hook["rules"]) == pod_kind();
                if is_pod {
                    check_pod_entry(&at, route, hook, &policy);
                    assert!(
                        pod_modes.insert(mode.as_str()),
                        "{at}: a second {mode} entry"
                    );
                    continue;
                }
                assert!(modes.insert(mode.as_str()), "{at}: a second {mode} entry");

                assert_eq!(rule_kinds(&hook["rules"]), engine_kinds(), "{at}: kinds");
                for rule in hook["rules"].as_array().unwrap() {
                    assert_eq!(strs(&rule["operations"]), ["CREATE", "UPDATE"], "{at}");
                    assert!(
                        strs(&rule["resources"]).iter().all(|r| !r.contains('/')),
                        "{at}: no subresources"
                    );
                    assert_eq!(rule["scope"], "Namespaced", "{at}");
                }

                let selector = hook["namespaceSelector"]["matchExpressions"]
                    .as_array()
                    .unwrap();
                let opt_in = selector
                    .iter()
                    .find(|e| e["key"] == policy.opt_out_label.as_str())
                    .unwrap_or_else(|| panic!("{at}: no namespace opt-in expression"));
                assert_eq!(opt_in["operator"], "In", "{at}");
                assert_eq!(strs(&opt_in["values"]), [opt_in_value(mode)], "{at}");
                let excluded = selector
                    .iter()
                    .find(|e| e["key"] == "kubernetes.io/metadata.name")
                    .unwrap_or_else(|| panic!("{at}: namespaces are not excluded by name"));
                assert_eq!(excluded["operator"], "NotIn", "{at}");
                let excluded = strs(&excluded["values"]);
                assert!(excluded.contains(&namespace), "{at}: own namespace matched");
                assert!(
                    excluded.contains(&"kube-system"),
                    "{at}: kube-system matched"
                );

                let opt_out = &hook["objectSelector"]["matchExpressions"][0];
                assert_eq!(opt_out["key"], policy.opt_out_label.as_str(), "{at}");
                assert_eq!(opt_out["operator"], "NotIn", "{at}");
                assert_eq!(
                    strs(&opt_out["values"]),
                    [policy.opt_out_value.as_str()],
                    "{at}"
                );

                assert_eq!(hook["sideEffects"], "None", "{at}");
                assert_eq!(strs(&hook["admissionReviewVersions"]), ["v1"], "{at}");
                assert_eq!(hook["matchPolicy"], "Equivalent", "{at}");
                let timeout = hook["timeoutSeconds"].as_i64().unwrap();
                assert!((1..=10).contains(&timeout), "{at}: timeout {timeout}s");
                let failure_policy = hook["failurePolicy"].as_str().unwrap();
                if route == "mutate" {
                    assert_eq!(failure_policy, "Ignore", "{at}: mutation fails open");
                    assert_eq!(hook["reinvocationPolicy"], "IfNeeded", "{at}");
                } else if mode != Mode::Enforce {
                    assert_eq!(failure_policy, "Ignore", "{at}: never denies");
                } else {
                    assert!(["Ignore", "Fail"].contains(&failure_policy), "{at}");
                }
            }
        }
        assert!(
            pod_modes.is_empty() || pod_modes == modes,
            "{origin}: Pod entries for {pod_modes:?}, template entries for {modes:?}"
        );
        modes_seen.push((kind.to_string(), modes));
    }
    check_pod_hardening(origin, docs);
    modes_seen
}

fn check_pod_hardening(origin: &str, docs: &[Value]) {
    let deployment = one(docs, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], false, "{origin}");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{origin}");
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
        "{origin}"
    );
    let sa_name = pod["serviceAccountName"].as_str().unwrap();
    let sa = of_kind(docs, "ServiceAccount")
        .into_iter()
        .find(|s| s["metadata"]["name"] == sa_name)
        .unwrap_or_else(|| panic!("{origin}: no ServiceAccount {sa_name}"));
    assert_eq!(sa["automountServiceAccountToken"], false, "{origin}");
    for container in pod["containers"].as_array().unwrap() {
        let sc = &container["securityContext"];
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{origin}");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{origin}");
        assert_eq!(strs(&sc["capabilities"]["drop"]), ["ALL"], "{origin}");
        assert!(sc["capabilities"]["add"].is_null(), "{origin}");
        for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
            let get = &container[probe]["httpGet"];
            assert_eq!(get["path"], path, "{origin}: {probe}");
            assert_eq!(get["scheme"], "HTTPS", "{origin}: {probe}");
            assert_eq!(get["port"], "https", "{origin}: {probe}");
        }
        assert!(container["resources"]["requests"].is_object(), "{origin}");
        // Endpoint removal must reach the API servers before SIGTERM stops new connections.
        let pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"].as_u64();
        assert!(
            pre_stop.is_some_and(|s| s > 0),
            "{origin}: no preStop sleep"
        );
        let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
        assert!(
            pre_stop.is_some_and(|s| s + 20 <= grace),
            "{origin}: grace too short"
        );
    }
    // The server's ServiceAccount is bound to nothing.
    for binding in of_kind(docs, "ClusterRoleBinding")
        .into_iter()
        .chain(of_kind(docs, "RoleBinding"))
    {
        for subject in binding["subjects"].as_array().unwrap() {
            assert_ne!(subject["name"], sa_name, "{origin}: the server has RBAC");
        }
    }
}

/// Every mode, on both routes.
fn assert_all_modes(origin: &str, seen: &[(String, BTreeSet<&'static str>)]) {
    let all: BTreeSet<&str> = Mode::ALL.iter().map(|m| m.as_str()).collect();
    for (kind, modes) in seen {
        assert_eq!(modes, &all, "{origin}: {kind} entries per mode");
    }
}

#[test]
fn base_webhooks_match_the_engine_and_the_server() {
    let docs = base_documents();
    let seen = check_install("deploy/base", &docs);
    assert_all_modes("deploy/base", &seen);
    let pod_entries = one(&docs, "MutatingWebhookConfiguration")["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| rule_kinds(&h["rules"]) == pod_kind())
        .count();
    assert_eq!(
        pod_entries,
        Mode::ALL.len(),
        "deploy/base: a Pod entry per mode"
    );
    assert_eq!(
        one(&docs, "Namespace")["metadata"]["name"],
        "inference-webhook"
    );
}

#[test]
fn base_policy_lists_every_rule_at_its_default_level() {
    let docs = base_documents();
    let policy = mounted_config(&docs).policy;
    let mut defaults = Policy::default();
    defaults.rules = policy.rules.clone();
    assert_eq!(
        policy, defaults,
        "apart from the listed rules, the defaults"
    );
    let listed: Vec<RuleId> = policy.rules.keys().copied().collect();
    let mut all = RuleId::ALL.to_vec();
    all.sort();
    assert_eq!(listed, all, "every rule id is listed");
    for (rule, level) in &policy.rules {
        assert_eq!(*level, rule.default_level(), "{}", rule.as_str());
    }
}

#[test]
fn chart_renders_match_the_engine_and_the_server() {
    let Some(renders) = chart_renders() else {
        return;
    };
    for (name, docs) in &renders {
        let origin = format!("chart with {name}");
        let seen = check_install(&origin, docs);
        if name == "default-values.yaml" {
            assert_all_modes(&origin, &seen);
            assert_eq!(mounted_config(docs), Config::default(), "{origin}");
        }
    }
}

#[test]
fn chart_network_policy_lets_only_the_api_server_reach_the_webhook_port() {
    let Some(renders) = chart_renders() else {
        return;
    };
    for (name, docs) in &renders {
        let policies = of_kind(docs, "NetworkPolicy");
        if name != "network-policy-values.yaml" {
            assert!(policies.is_empty(), "{name}: a NetworkPolicy by default");
            continue;
        }
        let policy = one(docs, "NetworkPolicy");
        let deployment = one(docs, "Deployment");
        assert_eq!(
            policy["spec"]["podSelector"]["matchLabels"],
            deployment["spec"]["selector"]["matchLabels"],
            "{name}: selects the webhook pods"
        );
        assert_eq!(
            policy["spec"]["policyTypes"],
            serde_json::json!(["Ingress"])
        );
        let rules = policy["spec"]["ingress"].as_array().unwrap();
        assert_eq!(rules.len(), 2, "{name}: webhook port and metrics only");
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        let port_of = |port_name: &str| {
            container["ports"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == port_name)
                .map(|p| p["containerPort"].as_u64().unwrap())
        };
        assert_eq!(
            port_of(rules[0]["ports"][0]["port"].as_str().unwrap()),
            Some(8443)
        );
        assert_eq!(
            port_of(rules[1]["ports"][0]["port"].as_str().unwrap()),
            Some(9090)
        );
        let sources: Vec<&str> = rules[0]["from"]
            .as_array()
            .unwrap()
            .iter()
            .map(|peer| peer["ipBlock"]["cidr"].as_str().unwrap())
            .collect();
        assert_eq!(sources, ["172.18.0.2/32", "fd00::2/128"], "{name}");
    }
}

#[test]
fn chart_values_reach_the_policy_and_the_selectors() {
    let Some(docs) = chart_render("existing-secret-values.yaml") else {
        return;
    };
    let config = mounted_config(&docs);
    assert_eq!(config.default_mode, Mode::Warn);
    let policy = config.policy;
    assert_eq!(policy.opt_out_label, "example.com/inference-monitoring");
    assert_eq!(policy.opt_out_value, "excluded");
    assert_eq!(policy.port_name, "metrics-http");
    assert_eq!(policy.labels.workload, "example.com/inference-workload");
    assert_eq!(policy.supported_backends, ["vllm", "sglang"]);
    assert_eq!(policy.level(RuleId::MetricsDisabled).as_str(), "warn");
    assert_eq!(policy.level(RuleId::UpdateNotInjected).as_str(), "allow");
    assert_eq!(
        policy.exemptions.rules_annotation,
        "example.com/ignore-rules"
    );
    assert_eq!(
        policy.exemptions.reason_annotation,
        "example.com/ignore-reason"
    );
    assert_eq!(
        policy.exemptions.forbidden_rules,
        [RuleId::MetricsDisabled, RuleId::BackendMismatch]
    );
    let identity = &policy.workload_identity.labels;
    assert_eq!(identity.len(), 1, "the value replaces the table");
    assert_eq!(identity[0].key, "example.com/service");
    assert_eq!(identity[0].when["example.com/tier"], "model");
    let default_docs = chart_render("default-values.yaml").unwrap();
    let pod_entries = one(&default_docs, "MutatingWebhookConfiguration")["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| rule_kinds(&h["rules"]) == pod_kind())
        .count();
    assert_eq!(pod_entries, Mode::ALL.len(), "Pod entries on by default");
    let defaults = mounted_config(&default_docs).policy;
    assert_eq!(
        defaults.workload_identity,
        Policy::default().workload_identity
    );
    let hooks = &one(&docs, "MutatingWebhookConfiguration")["webhooks"];
    let paths: Vec<&str> = hooks
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["clientConfig"]["service"]["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["/mutate/warn", "/mutate/audit"],
        "no Pod entries: pods.enabled=false"
    );
    assert_eq!(hooks[0]["timeoutSeconds"], 3);
    assert_eq!(
        strs(&hooks[0]["namespaceSelector"]["matchExpressions"][1]["values"]),
        [
            "inference-webhook",
            "kube-system",
            "monitoring",
            "cert-manager"
        ]
    );
}

#[test]
fn chart_schema_knows_exactly_the_engine_rule_ids() {
    let text = std::fs::read_to_string(repo().join("charts/inference-webhook/values.schema.json"))
        .unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    let ids: BTreeSet<&str> = strs(&schema["properties"]["rules"]["propertyNames"]["enum"])
        .into_iter()
        .collect();
    let engine: BTreeSet<&str> = RuleId::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(ids, engine);
    let modes: BTreeSet<&str> = strs(&schema["definitions"]["mode"]["enum"])
        .into_iter()
        .collect();
    assert_eq!(modes, Mode::ALL.iter().map(|m| m.as_str()).collect());
}

#[test]
fn overlays_give_the_api_server_the_ca_of_the_serving_certificate() {
    let Some(static_certs) = kustomize("deploy/overlays/static-certs") else {
        return;
    };
    check_install("static-certs overlay", &static_certs);
    let secret = one(&static_certs, "Secret");
    assert_eq!(secret["type"], "kubernetes.io/tls");
    let deployment = one(&static_certs, "Deployment");
    let tls_volume = mount_volume(deployment, "/etc/inference-webhook/tls");
    assert_eq!(
        tls_volume["secret"]["secretName"],
        secret["metadata"]["name"]
    );
    let ca: String = secret["data"]["ca.crt"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .collect();
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        for hook in one(&static_certs, kind)["webhooks"].as_array().unwrap() {
            let bundle: String = hook["clientConfig"]["caBundle"]
                .as_str()
                .unwrap_or_else(|| panic!("{kind}: an entry without caBundle"))
                .split_whitespace()
                .collect();
            assert_eq!(bundle, ca, "{kind}");
        }
    }

    let Some(cert_manager) = kustomize("deploy/overlays/cert-manager") else {
        return;
    };
    check_install("cert-manager overlay", &cert_manager);
    let certificate = of_kind(&cert_manager, "Certificate")
        .into_iter()
        .find(|c| c["spec"]["isCA"] != true)
        .unwrap();
    let namespace = certificate["metadata"]["namespace"].as_str().unwrap();
    let name = certificate["metadata"]["name"].as_str().unwrap();
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        assert_eq!(
            one(&cert_manager, kind)["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            format!("{namespace}/{name}"),
            "{kind}"
        );
    }
    let deployment = one(&cert_manager, "Deployment");
    let tls_volume = mount_volume(deployment, "/etc/inference-webhook/tls");
    assert_eq!(
        tls_volume["secret"]["secretName"],
        certificate["spec"]["secretName"]
    );
    let service = one(&cert_manager, "Service")["metadata"]["name"]
        .as_str()
        .unwrap();
    let dns_names = strs(&certificate["spec"]["dnsNames"]);
    for suffix in ["", ".svc", ".svc.cluster.local"] {
        let want = format!("{service}.{namespace}{suffix}");
        assert!(
            dns_names.contains(&want.as_str()),
            "{want} not in {dns_names:?}"
        );
    }
}

#[test]
fn audit_cluster_role_reads_exactly_the_engine_kinds() {
    let text = std::fs::read_to_string(repo().join("deploy/audit-rbac/audit-rbac.yaml")).unwrap();
    let docs = parse_documents(&text, "audit-rbac.yaml");
    let mut sources = vec![("deploy/audit-rbac".to_string(), docs)];
    if let Some(renders) = chart_renders() {
        sources.extend(
            renders
                .into_iter()
                .filter(|(_, docs)| !of_kind(docs, "ClusterRole").is_empty()),
        );
        assert_eq!(
            sources.len(),
            2,
            "one chart value set creates the audit RBAC"
        );
    }
    // The engine's kinds, and pods and namespaces for the pods that lack the labels.
    let resources: BTreeSet<(String, String)> = KINDS
        .iter()
        .map(|k| (k.group.to_string(), k.resource.to_string()))
        .chain(["namespaces", "pods"].map(|r| (String::new(), r.to_string())))
        .collect();
    for (origin, docs) in &sources {
        let role = one(docs, "ClusterRole");
        let mut granted = BTreeSet::new();
        for rule in role["rules"].as_array().unwrap() {
            assert_eq!(strs(&rule["verbs"]), ["get", "list"], "{origin}: read-only");
            for g in strs(&rule["apiGroups"]) {
                for r in strs(&rule["resources"]) {
                    granted.insert((g.to_string(), r.to_string()));
                }
            }
        }
        assert_eq!(granted, resources, "{origin}");
    }
}

#[test]
fn deployment_args_are_a_valid_serve_command_line() {
    let mut sources = vec![("deploy/base".to_string(), base_documents())];
    sources.extend(chart_renders().unwrap_or_default());
    for (origin, docs) in &sources {
        let container = &one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0];
        assert_command_line(origin, container, "serve");
    }
}

/// The chart passes its connection bounds to `serve`: by default the server's own defaults,
/// and what a value set gives.
#[test]
fn chart_connection_bounds_reach_serve() {
    use clap::Parser as _;
    use inference_webhook::server::ServeArgs;
    use std::time::Duration;
    let server = ServeArgs::try_parse_from(["serve"]).unwrap();
    let defaults = (server.idle_timeout, server.max_connection_age);
    let set = (Duration::from_secs(30), Duration::from_secs(300));
    for (values, want) in [
        ("default-values.yaml", defaults),
        ("existing-secret-values.yaml", set),
    ] {
        let Some(docs) = chart_render(values) else {
            return;
        };
        let args =
            strs(&one(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]);
        for flag in ["--idle-timeout=", "--max-connection-age="] {
            assert!(
                args.iter().any(|a| a.starts_with(flag)),
                "{values}: no {flag}"
            );
        }
        let parsed = ServeArgs::try_parse_from(args).unwrap();
        assert_eq!(
            (parsed.idle_timeout, parsed.max_connection_age),
            want,
            "{values}"
        );
    }
}

/// The container's arguments are a valid command line of the binary's `command`.
fn assert_command_line(origin: &str, container: &Value, command: &str) {
    let mut args = strs(&container["args"]);
    assert_eq!(args.first(), Some(&command), "{origin}");
    // With --help last, clap prints help (exit 0) only if every argument before it parses.
    args.push("--help");
    let out = Command::new(BINARY).args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{origin}: `inference-webhook {}` rejected: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn dockerfile_builds_this_crate_and_runs_as_the_manifests_user() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    let allowed: Vec<&str> = ignore
        .lines()
        .filter_map(|l| l.strip_prefix('!'))
        .map(|p| p.trim_end_matches('/'))
        .collect();
    let mut copied = 0;
    for line in dockerfile.lines().filter(|l| l.starts_with("COPY ")) {
        let words: Vec<&str> = line.split_whitespace().skip(1).collect();
        if words[0].starts_with("--from") {
            continue;
        }
        for source in &words[..words.len() - 1] {
            assert!(repo().join(source).exists(), "COPY {source}: no such path");
            assert!(
                allowed.contains(source),
                "{source} is excluded by .dockerignore"
            );
            copied += 1;
        }
    }
    assert!(copied >= 3, "the build copies the crate");
    let docs = base_documents();
    let pod = &one(&docs, "Deployment")["spec"]["template"]["spec"];
    let user = format!(
        "USER {}:{}",
        pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]
    );
    assert!(
        dockerfile.lines().any(|l| l == user),
        "Dockerfile lacks {user}"
    );
    assert!(dockerfile.contains("--bin inference-webhook"));
    assert!(dockerfile.contains(r#"ENTRYPOINT ["/usr/local/bin/inference-webhook"]"#));
    assert!(dockerfile.contains(":nonroot"), "a non-root runtime image");
}

/// Dotted paths of the leaves of a values tree; an empty map or a list is a leaf.
fn value_paths(prefix: &str, value: &Value, out: &mut Vec<String>) {
    match value.as_object() {
        Some(map) if !map.is_empty() => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                value_paths(&path, child, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

#[test]
fn chart_readme_documents_every_value() {
    let chart = repo().join("charts/inference-webhook");
    let values: Value = support::yaml::value(
        &std::fs::read_to_string(chart.join("values.yaml")).unwrap(),
        "values.yaml",
    );
    let readme = std::fs::read_to_string(chart.join("README.md")).unwrap();
    let mut paths = Vec::new();
    value_paths("", &values, &mut paths);
    assert!(paths.len() > 30, "values.yaml read: {paths:?}");
    // A value is documented by its own row, or by the row of a map that holds it (resources).
    let undocumented: Vec<&String> = paths
        .iter()
        .filter(|path| {
            let mut prefix = path.as_str();
            loop {
                if readme.contains(&format!("| `{prefix}` |")) {
                    return false;
                }
                match prefix.rsplit_once('.') {
                    Some((head, _)) => prefix = head,
                    None => return true,
                }
            }
        })
        .collect();
    assert!(
        undocumented.is_empty(),
        "not in the chart README: {undocumented:?}"
    );
}

/// Every path the webhook configurations call, and the probes, answered by the real server (in
/// process, on 127.0.0.1, real TLS) running with the policy the Deployment mounts.
#[tokio::test]
async fn server_answers_every_path_the_manifests_call() {
    let docs = base_documents();
    let cm = one(&docs, "ConfigMap");
    let policy_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        policy_file.path(),
        cm["data"]["policy.yaml"].as_str().unwrap(),
    )
    .unwrap();
    let config = format!("--config={}", policy_file.path().display());
    let server = start(&[&config]).await;
    let client = server.client("localhost");

    let deployment = one(&docs, "Deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    for probe in ["readinessProbe", "livenessProbe"] {
        let path = container[probe]["httpGet"]["path"].as_str().unwrap();
        let status = client
            .get(server.url("localhost", path))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "{probe} {path}");
    }

    let review = json_file(&repo().join("examples/review-vllm-deployment.json"));
    let mut paths = Vec::new();
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        for hook in one(&docs, kind)["webhooks"].as_array().unwrap() {
            paths.push(hook["clientConfig"]["service"]["path"].as_str().unwrap());
        }
    }
    // The Pod entries share the template entries' paths.
    paths.sort_unstable();
    paths.dedup();
    assert_eq!(paths.len(), 2 * Mode::ALL.len());
    for path in paths {
        let (status, answer) = post_json(&client, &server.url("localhost", path), &review).await;
        assert_eq!(status, 200, "{path}: {answer}");
        assert_eq!(
            answer["response"]["uid"], review["request"]["uid"],
            "{path}"
        );
        assert_eq!(answer["response"]["allowed"], true, "{path}: {answer}");
        let patched = review_patch(&answer["response"]).is_some();
        let expect_patch = path == "/mutate/enforce" || path == "/mutate/warn";
        assert_eq!(patched, expect_patch, "{path}: {answer}");
    }
}

/// Serve `cert`/`key` with the real server and call it as the API server would: trusting only
/// `ca`, with the Service's DNS name as the TLS server name.
async fn assert_served_for(origin: &str, ca: &[u8], cert: &[u8], key: &[u8], host: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_file, cert).unwrap();
    std::fs::write(&key_file, key).unwrap();
    let server = start_serving(&cert_file, &key_file, &[]).await;
    let ca = String::from_utf8(ca.to_vec()).unwrap();
    let client = support::server::client(&ca, host, server.server.addr);
    let review = json_file(&repo().join("examples/review-vllm-deployment.json"));
    let url = server.url(host, "/mutate/enforce");
    let (status, answer) = post_json(&client, &url, &review).await;
    assert_eq!(status, 200, "{origin}: {answer}");
    assert_eq!(
        answer["response"]["uid"], review["request"]["uid"],
        "{origin}"
    );
    // The same certificate must not pass for a name it was not made for.
    let stranger = support::server::client(&ca, "other.example.svc", server.server.addr);
    let refused = stranger
        .get(server.url("other.example.svc", "/healthz"))
        .send()
        .await;
    assert!(refused.is_err(), "{origin}: accepted for another name");
}

#[tokio::test]
async fn script_certificates_are_served_and_verified_for_the_service_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    run(
        &repo().join("certs/gen-certs.sh"),
        &[
            "--service",
            "inference-webhook",
            "--namespace",
            "webhook-ns",
            "--out",
            out,
        ],
    );
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    use base64::Engine as _;
    let bundle = base64::engine::general_purpose::STANDARD
        .decode(read("caBundle"))
        .unwrap();
    assert_eq!(bundle, read("ca.crt"), "caBundle is base64 of ca.crt");
    for host in [
        "inference-webhook.webhook-ns.svc",
        "inference-webhook.webhook-ns.svc.cluster.local",
    ] {
        assert_served_for(
            "gen-certs.sh",
            &read("ca.crt"),
            &read("tls.crt"),
            &read("tls.key"),
            host,
        )
        .await;
    }
}

#[tokio::test]
async fn chart_generated_certificates_are_served_and_verified_for_the_service_name() {
    let Some(docs) = chart_render("default-values.yaml") else {
        return;
    };
    let secret = one(&docs, "Secret");
    use base64::Engine as _;
    let field = |key: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(secret["data"][key].as_str().unwrap())
            .unwrap()
    };
    assert_served_for(
        "chart genSignedCert",
        &field("ca.crt"),
        &field("tls.crt"),
        &field("tls.key"),
        "inference-webhook.inference-webhook.svc",
    )
    .await;
}

/// The reporter's objects: from each chart render that enables it, and the kustomize overlay
/// with the reporter component.
fn reporter_sources() -> Vec<(String, Vec<Value>)> {
    let mut sources: Vec<(String, Vec<Value>)> = chart_renders_all()
        .unwrap_or_default()
        .into_iter()
        .map(|(name, docs)| (format!("chart with {name}"), docs))
        .filter(|(_, docs)| docs.iter().any(is_reporter))
        .collect();
    if let Some(docs) = kustomize("deploy/overlays/reporter") {
        sources.push(("deploy/overlays/reporter".into(), docs));
    }
    sources
}

fn reporter_doc<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = of_kind(docs, kind)
        .into_iter()
        .filter(|d| is_reporter(d))
        .collect();
    assert_eq!(found.len(), 1, "expected exactly one reporter {kind}");
    found[0]
}

#[test]
fn reporter_role_watches_exactly_the_engine_kinds_and_writes_only_reports() {
    let sources = reporter_sources();
    if chart_renders_all().is_some() {
        assert!(
            sources.len() >= 2,
            "the chart's CI values and the overlay deploy the reporter"
        );
    }
    // The engine's kinds, namespaces for their modes (denied only in enforce ones), and pods
    // (those that lack the labels or the port).
    let kinds: BTreeSet<(String, String)> = KINDS
        .iter()
        .map(|k| (k.group.to_string(), k.resource.to_string()))
        .chain(["namespaces", "pods"].map(|r| (String::new(), r.to_string())))
        .collect();
    let reports: BTreeSet<(String, String)> = [
        ("wgpolicyk8s.io", "policyreports"),
        ("openreports.io", "reports"),
    ]
    .iter()
    .map(|(g, r)| (g.to_string(), r.to_string()))
    .collect();
    for (origin, docs) in &sources {
        let role = reporter_doc(docs, "ClusterRole");
        let (mut read, mut written) = (BTreeSet::new(), BTreeSet::new());
        for rule in role["rules"].as_array().unwrap() {
            let verbs = strs(&rule["verbs"]);
            for g in strs(&rule["apiGroups"]) {
                for r in strs(&rule["resources"]) {
                    let pair = (g.to_string(), r.to_string());
                    if verbs == ["get", "list", "watch"] {
                        read.insert(pair);
                    } else {
                        assert_eq!(
                            verbs,
                            ["create", "get", "update", "patch", "delete", "list"],
                            "{origin}: {g}/{r}"
                        );
                        written.insert(pair);
                    }
                }
            }
        }
        assert_eq!(
            read, kinds,
            "{origin}: watches exactly the engine's kinds, namespaces and pods"
        );
        assert_eq!(written, reports, "{origin}: writes only policy reports");

        // Bound to the reporter's ServiceAccount only, which is the one its pods run as.
        let deployment = reporter_doc(docs, "Deployment");
        let pod = &deployment["spec"]["template"]["spec"];
        let sa = pod["serviceAccountName"].as_str().unwrap();
        let binding = reporter_doc(docs, "ClusterRoleBinding");
        assert_eq!(
            binding["roleRef"]["name"], role["metadata"]["name"],
            "{origin}"
        );
        let subjects = binding["subjects"].as_array().unwrap();
        assert_eq!(subjects.len(), 1, "{origin}");
        assert_eq!(subjects[0]["name"], sa, "{origin}");
        assert_eq!(pod["automountServiceAccountToken"], true, "{origin}");
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{origin}");

        // The server keeps no RBAC and no token, and its Service never selects the reporter.
        let servers: Vec<&Value> = of_kind(docs, "Deployment")
            .into_iter()
            .filter(|d| !is_reporter(d))
            .collect();
        assert_eq!(servers.len(), 1, "{origin}");
        let server_pod = &servers[0]["spec"]["template"]["spec"];
        assert_ne!(server_pod["serviceAccountName"], sa, "{origin}");
        assert_eq!(
            server_pod["automountServiceAccountToken"], false,
            "{origin}"
        );
        for binding in of_kind(docs, "ClusterRoleBinding") {
            for subject in binding["subjects"].as_array().unwrap() {
                assert_ne!(
                    subject["name"], server_pod["serviceAccountName"],
                    "{origin}"
                );
            }
        }
        let pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
            .as_object()
            .unwrap();
        for service in of_kind(docs, "Service") {
            let selector = service["spec"]["selector"].as_object().unwrap();
            let selects = selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v));
            assert_eq!(
                selects,
                is_reporter(service),
                "{origin}: {}",
                service["metadata"]["name"]
            );
        }

        // Its arguments parse as a `report` command line; probes on the metrics port.
        let container = &pod["containers"][0];
        assert_command_line(origin, container, "report");
        for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
            assert_eq!(container[probe]["httpGet"]["path"], path, "{origin}");
            assert_eq!(container[probe]["httpGet"]["port"], "metrics", "{origin}");
        }
        let monitor = reporter_doc(docs, "ServiceMonitor");
        assert_eq!(
            monitor["spec"]["endpoints"][0]["honorLabels"], true,
            "{origin}"
        );
    }
}

#[test]
fn reporter_alerts_pass_promtool_and_agree_between_chart_and_kustomize() {
    let sources = reporter_sources();
    let Some(promtool) = (!sources.is_empty()).then(promtool).flatten() else {
        return;
    };
    let specs: Vec<(&String, &Value)> = sources
        .iter()
        .map(|(origin, docs)| (origin, &reporter_doc(docs, "PrometheusRule")["spec"]))
        .collect();
    for (origin, spec) in &specs {
        assert_eq!(
            *spec, specs[0].1,
            "{origin}: the alerts differ from {}",
            specs[0].0
        );
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.yaml"),
        serde_json::to_string(specs[0].1).unwrap(), // JSON is YAML: promtool reads it
    )
    .unwrap();
    let test = "reporter-alerts.test.yaml";
    std::fs::copy(
        repo().join("tests/promtool").join(test),
        dir.path().join(test),
    )
    .unwrap();
    for args in [["check", "rules", "rules.yaml"], ["test", "rules", test]] {
        succeeded(Command::new(&promtool).args(args).current_dir(dir.path()));
    }
}
