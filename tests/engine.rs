//! One fixture per behaviour of the engine: kinds, detection, the patch, the rules, UPDATE.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use inference_webhook::admission::{Mode, Outcome, Route};
use inference_webhook::config::Config;
use inference_webhook::decide::{DEFAULT_OPT_OUT_VALUE, Level, Operation, Policy};
use serde_json::{Value, json};
use support::decide::*;

fn vllm_container() -> Value {
    json!({"name": "vllm", "image": "vllm/vllm-openai:v0.10.0",
           "command": ["vllm", "serve"], "args": ["Qwen/Qwen3-8B", "--port", "8000"]})
}

#[test]
fn a_vllm_deployment_gets_both_labels_and_the_named_port() {
    let obj = deployment("qwen", pod(json!([vllm_container()])));
    let d = create(&obj);
    assert_eq!(d.kind, Some("Deployment"));
    assert_eq!(d.workload.as_deref(), Some("qwen"));
    assert_eq!(
        serde_json::to_value(&d.patch).unwrap(),
        json!([
            {"op": "add", "path": "/spec/template/metadata/labels/alibabacloud.com~1inference-workload", "value": "qwen"},
            {"op": "add", "path": "/spec/template/metadata/labels/alibabacloud.com~1inference-backend", "value": "vllm"},
            {"op": "add", "path": "/spec/template/spec/containers/0/ports",
             "value": [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]}
        ])
    );
    let patched = apply(&obj, &d);
    assert_eq!(
        patched["spec"]["template"]["metadata"]["labels"]["app"], "x",
        "user labels kept"
    );
    let again = create(&patched);
    assert!(again.patch.is_empty(), "idempotent: {:?}", again.patch);
    assert!(!again.denies());
    assert_eq!(again.templates[0].metrics_port, Some(8000));
}

#[test]
fn templates_without_metadata_get_one_add_of_the_whole_map() {
    let obj = deployment("m", json!({"spec": {"containers": [vllm_container()]}}));
    let d = create(&obj);
    assert_eq!(d.patch.len(), 2, "{:?}", d.patch);
    let first = serde_json::to_value(&d.patch[0]).unwrap();
    assert_eq!(first["path"], "/spec/template/metadata");
    assert_eq!(
        first["value"],
        json!({"labels": {WORKLOAD: "m", BACKEND: "vllm"}})
    );
    assert!(create(&apply(&obj, &d)).patch.is_empty());
}

#[test]
fn a_statefulset_running_sglang_in_sh_c_with_an_env_port() {
    let obj = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "sgl"},
        "spec": {"serviceName": "sgl", "selector": {}, "template": pod(json!([{
            "name": "engine", "image": "docker.io/lmsysorg/sglang:v0.5.5",
            "env": [{"name": "PORT", "value": "30001"}],
            "command": ["/bin/bash", "-c"],
            "args": ["set -e\nexport HF_HOME=/models; \\\n exec python3 -m sglang.launch_server --model-path /m \\\n --port $PORT --enable-metrics"]
        }]))}
    });
    let d = create(&obj);
    let det = &d.templates[0].detections[0];
    assert_eq!((det.engine, det.metrics_port), ("sglang", Some(30001)));
    let patched = apply(&obj, &d);
    assert_eq!(labels_at(&patched, "/spec/template")[BACKEND], "sglang");
    assert_eq!(
        patched["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        30001
    );
    assert!(
        d.findings.iter().all(|f| f.level != Level::Deny),
        "{:?}",
        d.findings
    );
}

#[test]
fn kubernetes_env_references_resolve_the_port() {
    let obj = deployment(
        "v",
        pod(json!([{
            "name": "v", "image": "registry.example.com:5000/team/vllm-openai:v0.10.0",
            "env": [{"name": "BASE", "value": "81"}, {"name": "PORT", "value": "$(BASE)00"}],
            "args": ["m", "--port", "$(PORT)"]
        }])),
    );
    let d = create(&obj);
    assert_eq!(d.templates[0].metrics_port, Some(8100));
    assert!(
        d.templates[0].detections[0]
            .evidence
            .iter()
            .any(|e| e.contains("image"))
    );
}

#[test]
fn vendor_images_are_told_by_their_command() {
    let obj = deployment(
        "x",
        pod(json!([{
            "name": "x", "image": "vendor.example.com/ai/inference-xpu-pytorch:25.06-vllm0.9.1-py3",
            "command": ["python3", "-m", "vllm.entrypoints.openai.api_server", "--port=8010"]
        }])),
    );
    let d = create(&obj);
    assert_eq!(d.templates[0].backend.as_deref(), Some("vllm"));
    assert_eq!(d.templates[0].metrics_port, Some(8010));
}

#[test]
fn an_unnamed_port_with_the_metrics_number_gets_the_name() {
    let mut c = vllm_container();
    c["ports"] = json!([{"containerPort": 8000}]);
    let obj = deployment("v", pod(json!([c])));
    let d = create(&obj);
    let last = serde_json::to_value(d.patch.last().unwrap()).unwrap();
    assert_eq!(
        last,
        json!({"op": "add", "path": "/spec/template/spec/containers/0/ports/0/name", "value": "http"})
    );
    assert!(create(&apply(&obj, &d)).patch.is_empty());
}

#[test]
fn a_port_named_otherwise_is_never_renamed() {
    let mut c = vllm_container();
    c["ports"] = json!([{"containerPort": 8000, "name": "modelserver"}]);
    let obj = deployment("v", pod(json!([c])));
    let d = create(&obj);
    assert!(rules(&d).contains(&"metrics-port-named-otherwise"));
    let patched = apply(&obj, &d);
    assert_eq!(
        patched["spec"]["template"]["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 8000, "name": "modelserver"}])
    );
    assert_eq!(
        labels_at(&patched, "/spec/template")[BACKEND],
        "vllm",
        "labels still added"
    );
}

#[test]
fn the_port_name_on_another_number_is_denied() {
    let mut c = vllm_container();
    c["ports"] = json!([{"containerPort": 9090, "name": "http"}]);
    let d = create(&deployment("v", pod(json!([c]))));
    assert!(rules(&d).contains(&"port-name-conflict"));
    assert!(d.denies());
    let out = Outcome::of(&d, Mode::Enforce, Route::Mutate);
    assert!(!out.allowed);
    let msg = out.message.unwrap();
    assert!(
        msg.contains("port-name-conflict")
            && msg.contains("spec.template.spec.containers[0].ports[0]")
            && msg.contains("8000"),
        "{msg}"
    );
}

#[test]
fn backend_labels_outside_the_supported_set_or_contradicting_the_engine_are_denied() {
    let mut t = pod(json!([vllm_container()]));
    t["metadata"]["labels"][BACKEND] = json!("vLLM");
    let d = create(&deployment("v", t.clone()));
    assert_eq!(
        rules(&d),
        ["backend-unsupported", "monitoring-labels-missing"]
    );
    assert!(d.denies());
    t["metadata"]["labels"][BACKEND] = json!("sglang");
    let d = create(&deployment("v", t.clone()));
    assert!(rules(&d).contains(&"backend-mismatch"));
    assert!(
        d.findings[0].message.contains("\"vllm\""),
        "the fix names the value: {}",
        d.findings[0].message
    );
    t["metadata"]["labels"][BACKEND] = json!("vllm-pd");
    let d = create(&deployment("v", t));
    assert!(
        !d.denies(),
        "vllm-pd and vllm are one family: {:?}",
        d.findings
    );
}

#[test]
fn user_labels_stay_and_the_legacy_key_gets_the_canonical_one_beside_it() {
    let mut t = pod(json!([vllm_container()]));
    t["metadata"]["labels"][WORKLOAD] = json!("team-qwen");
    t["metadata"]["labels"]["alibabacloud.com/inference_backend"] = json!("vllm");
    let obj = deployment("v", t);
    let d = create(&obj);
    assert!(rules(&d).contains(&"legacy-backend-label"));
    let patched = apply(&obj, &d);
    let labels = labels_at(&patched, "/spec/template");
    assert_eq!(labels[WORKLOAD], "team-qwen");
    assert_eq!(labels["alibabacloud.com/inference_backend"], "vllm");
    assert_eq!(labels[BACKEND], "vllm");
}

#[test]
fn metrics_switched_off_is_denied_for_the_serving_engine() {
    let sglang = json!({"name": "s", "image": "lmsysorg/sglang:latest",
                        "command": ["python3", "-m", "sglang.launch_server", "--port", "8000"]});
    let d = create(&deployment("s", pod(json!([sglang]))));
    assert!(rules(&d).contains(&"metrics-disabled"));
    assert!(d.denies());
    let mut v = vllm_container();
    v["args"] = json!(["m", "--disable-log-stats"]);
    assert!(rules(&create(&deployment("v", pod(json!([v]))))).contains(&"metrics-disabled"));
    let llama = json!({"name": "l", "image": "ghcr.io/ggml-org/llama.cpp:server", "command": ["llama-server", "-m", "/m.gguf"]});
    let obj = deployment("l", pod(json!([llama])));
    assert_eq!(
        rules(&create(&obj)),
        ["engine-not-supported"],
        "unsupported engines are reported only"
    );
    let policy = Policy::from_yaml("supportedBackends: [vllm, llamacpp]", "test").unwrap();
    assert!(rules(&create_with(&obj, &policy)).contains(&"metrics-disabled"));
}

#[test]
fn an_unresolvable_port_warns_and_injects_labels_only() {
    let v = json!({"name": "v", "image": "vllm/vllm-openai", "args": ["m", "--port", "$(PORT)"],
                   "env": [{"name": "PORT", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "p"}}}]});
    let obj = deployment("v", pod(json!([v])));
    let d = create(&obj);
    let f = d
        .findings
        .iter()
        .find(|f| f.rule.as_str() == "metrics-port-unresolved")
        .expect("warned");
    assert_eq!(f.level, Level::Warn);
    assert!(f.message.contains("$(PORT)"), "{}", f.message);
    let patched = apply(&obj, &d);
    assert!(
        patched["spec"]["template"]["spec"]["containers"][0]
            .get("ports")
            .is_none()
    );
    assert_eq!(labels_at(&patched, "/spec/template")[BACKEND], "vllm");
}

#[test]
fn different_engines_in_one_template_warn() {
    let router = json!({"name": "r", "image": "lmsysorg/sglang-router:v0.2.4", "command": ["python3", "-m", "sglang_router.launch_router"]});
    let d = create(&deployment("mix", pod(json!([vllm_container(), router]))));
    assert!(rules(&d).contains(&"mixed-engines"));
    assert_eq!(d.templates[0].backend.as_deref(), Some("vllm"));
}

#[test]
fn init_containers_are_never_engines() {
    let t = json!({"spec": {"initContainers": [vllm_container()], "containers": [{"name": "app", "image": "nginx"}]}});
    let d = create(&deployment("web", t));
    assert!(d.patch.is_empty() && d.findings.is_empty() && d.templates[0].detections.is_empty());
}

#[test]
fn non_inference_workloads_and_other_kinds_pass_untouched() {
    let d = create(&deployment(
        "web",
        pod(json!([{"name": "web", "image": "nginx:1.27"}])),
    ));
    assert!(d.patch.is_empty() && d.findings.is_empty());
    // A Pod is handled since the Pod fallback (tests/identity.rs).
    for (api, kind) in [
        ("v1", "ReplicationController"),
        ("batch/v1", "Job"),
        ("apps/v1beta2", "Deployment"),
    ] {
        let obj = json!({"apiVersion": api, "kind": kind, "metadata": {"name": "x"}, "spec": {"template": pod(json!([vllm_container()]))}});
        let d = create(&obj);
        assert_eq!(
            (d.kind, d.patch.len(), d.findings.len()),
            (None, 0, 0),
            "{api} {kind}"
        );
    }
}

#[test]
fn controller_owned_objects_of_unhandled_kinds_inherit_the_parent_workload_name() {
    let mut obj = deployment("isvc-predictor-00001", pod(json!([vllm_container()])));
    obj["metadata"]["ownerReferences"] = json!([{"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "name": "isvc", "uid": "u", "controller": true}]);
    let d = create(&obj);
    assert_eq!(d.workload.as_deref(), Some("isvc"));
    let mut t = pod(json!([vllm_container()]));
    t["metadata"]["labels"][WORKLOAD] = json!("parent");
    obj["spec"]["template"] = t;
    assert_eq!(
        labels_at(&apply(&obj, &create(&obj)), "/spec/template")[WORKLOAD],
        "parent"
    );
}

#[test]
fn generate_name_stems_and_long_names_give_valid_workload_values() {
    let mut obj = deployment("", pod(json!([vllm_container()])));
    obj["metadata"] = json!({"generateName": "qwen-"});
    assert_eq!(create(&obj).workload.as_deref(), Some("qwen"));
    let long = "a-very-long-inference-service-name-that-goes-past-the-label-limit-of-63";
    let obj = deployment(long, pod(json!([vllm_container()])));
    let d = create(&obj);
    let value = d.workload.clone().unwrap();
    assert!(
        value.len() <= 63 && value.starts_with("a-very-long"),
        "{value}"
    );
    assert!(rules(&d).contains(&"workload-name-shortened"));
    assert_eq!(create(&obj).workload, d.workload, "deterministic");
    assert!(!rules(&create(&apply(&obj, &d))).contains(&"workload-name-shortened"));
}

#[test]
fn updates_that_leave_the_template_alone_do_not_restart_pods() {
    let old = deployment("v", pod(json!([vllm_container()])));
    let mut scaled = old.clone();
    scaled["spec"]["replicas"] = json!(4);
    scaled["metadata"]["annotations"] = json!({"note": "x"});
    let d = update(&old, &scaled);
    assert!(d.patch.is_empty());
    assert_eq!(rules(&d), ["update-not-injected"]);
    let mut changed = old.clone();
    changed["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("vllm/vllm-openai:v0.11.0");
    let d = update(&old, &changed);
    assert_eq!(d.patch.len(), 3);
    let d = decide_input(&changed, None, Operation::Update, None, &Policy::default());
    assert_eq!(
        d.patch.len(),
        3,
        "an UPDATE without oldObject is treated as changed"
    );
}

#[test]
fn opted_out_objects_and_deletes_are_skipped() {
    let mut obj = deployment("v", pod(json!([vllm_container()])));
    obj["metadata"]["annotations"] = json!({"inference-webhook/skip": "true"});
    assert!(create(&obj).skipped.is_some() && create(&obj).patch.is_empty());
    let mut obj = deployment("v", pod(json!([vllm_container()])));
    obj["metadata"]["labels"] = json!({"inference-monitoring": DEFAULT_OPT_OUT_VALUE});
    assert!(create(&obj).skipped.is_some());
    let d = decide_input(&obj, None, Operation::Other, None, &Policy::default());
    assert!(d.skipped.is_some() && d.patch.is_empty());
}

#[test]
fn the_opt_out_value_is_the_policy_s() {
    let policy = Policy::from_yaml("optOutValue: excluded", "t").unwrap();
    let labeled = |value: &str| {
        let mut obj = deployment("v", pod(json!([vllm_container()])));
        obj["metadata"]["labels"] = json!({"inference-monitoring": value});
        create_with(&obj, &policy)
    };
    let skipped = labeled("excluded").skipped;
    assert_eq!(
        skipped.as_deref(),
        Some("opted out by label inference-monitoring: excluded")
    );
    let d = labeled(DEFAULT_OPT_OUT_VALUE);
    assert!(d.skipped.is_none() && !d.patch.is_empty());
}

fn rbg_v1alpha2() -> Value {
    json!({
        "apiVersion": "workloads.x-k8s.io/v1alpha2", "kind": "RoleBasedGroup",
        "metadata": {"name": "pd"},
        "spec": {
            "roleTemplates": [{"name": "base", "template": {"spec": {"containers": [
                {"name": "vllm", "image": "vllm/vllm-openai:latest", "ports": [{"containerPort": 8000}]}
            ]}}}],
            "roles": [
                {"name": "router", "standalonePattern": {"template": {"spec": {"containers": [
                    {"name": "router", "image": "lmsysorg/sglang-router:v0.2.4", "command": ["python3", "-m", "sglang_router.launch_router", "--prometheus-port", "9090"]}
                ]}}}},
                {"name": "prefill", "standalonePattern": {"templateRef": {"name": "base"}}},
                {"name": "decode", "standalonePattern": {"templateRef": {"name": "base", "patch": {"spec": {"containers": [
                    {"name": "vllm", "command": ["vllm", "serve"], "args": ["m", "--kv-transfer-config", "{\"kv_role\":\"kv_consumer\"}"]}
                ]}}}}},
                {"name": "multi", "leaderWorkerPattern": {
                    "template": {"spec": {"containers": [{"name": "s", "image": "lmsysorg/sglang:v0.5.5",
                        "command": ["python3", "-m", "sglang.launch_server", "--enable-metrics", "--node-rank", "$(LWS_WORKER_INDEX)"]}]}},
                    "leaderTemplatePatch": {"metadata": {"labels": {"role": "leader"}}},
                    "workerTemplatePatch": {"metadata": {"labels": {"role": "worker"}}}
                }}
            ]
        }
    })
}

#[test]
fn role_based_groups_v1alpha2_label_every_role_through_its_own_layer() {
    let obj = rbg_v1alpha2();
    let d = create(&obj);
    let backends: Vec<_> = d
        .templates
        .iter()
        .map(|t| {
            (
                t.role.clone().unwrap(),
                t.variant.map(|v| v.as_str()),
                t.backend.clone(),
            )
        })
        .collect();
    assert_eq!(
        backends,
        [
            ("router".into(), None, None),
            ("prefill".into(), None, Some("vllm".into())),
            ("decode".into(), None, Some("vllm-pd".into())),
            ("multi".into(), Some("leader"), Some("sglang".into())),
            ("multi".into(), Some("worker"), Some("sglang".into())),
        ]
    );
    let patched = apply(&obj, &d);
    // The shared role template is never touched: each role's reference gets a patch.
    assert_eq!(
        patched["spec"]["roleTemplates"],
        obj["spec"]["roleTemplates"]
    );
    let prefill = &patched["spec"]["roles"][1]["standalonePattern"]["templateRef"]["patch"];
    assert_eq!(prefill["metadata"]["labels"][BACKEND], "vllm");
    assert_eq!(
        prefill["spec"]["containers"],
        json!([{"name": "vllm", "ports": [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]}])
    );
    let decode = &patched["spec"]["roles"][2]["standalonePattern"]["templateRef"]["patch"];
    assert_eq!(decode["metadata"]["labels"][WORKLOAD], "pd");
    assert_eq!(decode["spec"]["containers"][0]["ports"][0]["name"], "http");
    let multi = &patched["spec"]["roles"][3]["leaderWorkerPattern"];
    assert_eq!(multi["template"]["metadata"]["labels"][BACKEND], "sglang");
    assert_eq!(
        multi["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        30000
    );
    assert_eq!(
        multi["leaderTemplatePatch"],
        obj["spec"]["roles"][3]["leaderWorkerPattern"]["leaderTemplatePatch"]
    );
    let again = create(&patched);
    assert!(again.patch.is_empty(), "{:?}", again.patch);
    assert_eq!(again.denies(), d.denies());
}

#[test]
fn role_based_groups_v1alpha1_and_components() {
    let obj = json!({
        "apiVersion": "workloads.x-k8s.io/v1alpha1", "kind": "RoleBasedGroup",
        "metadata": {"name": "old"},
        "spec": {"roles": [
            {"name": "worker", "template": {"spec": {"containers": [{"name": "s", "image": "lmsysorg/sglang", "command": ["python3", "-m", "sglang.launch_server", "--enable-metrics", "--port", "8000"]}]}},
             "leaderWorkerSet": {"patchLeaderTemplate": {"metadata": {"labels": {"r": "l"}}}, "patchWorkerTemplate": {"spec": {"containers": [{"name": "s", "command": ["python3", "-m", "sglang.launch_server", "--node-rank", "1"]}]}}}},
            {"name": "comp", "components": [{"name": "c", "template": {"spec": {"containers": [vllm_container()]}}}]}
        ]}
    });
    let d = create(&obj);
    let shapes: Vec<_> = d
        .templates
        .iter()
        .map(|t| (t.path.clone(), t.backend.clone(), t.metrics_port))
        .collect();
    assert_eq!(
        shapes,
        [
            (
                "spec.roles[0].template (leader)".into(),
                Some("sglang".into()),
                Some(8000)
            ),
            (
                "spec.roles[0].template (worker)".into(),
                Some("sglang".into()),
                None
            ),
            (
                "spec.roles[1].components[0].template".into(),
                Some("vllm".into()),
                Some(8000)
            ),
        ]
    );
    assert!(d.templates[1].detections[0].worker_only);
    let patched = apply(&obj, &d);
    assert_eq!(
        patched["spec"]["roles"][0]["template"]["metadata"]["labels"][BACKEND],
        "sglang"
    );
    assert!(create(&patched).patch.is_empty());
}

#[test]
fn leader_worker_sets_label_both_templates_and_port_only_the_leader() {
    let obj = json!({
        "apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
        "metadata": {"name": "lws"},
        "spec": {"leaderWorkerTemplate": {
            "leaderTemplate": {"spec": {"containers": [{"name": "l", "image": "vllm/vllm-openai", "command": ["sh", "-c", "bash multi-node-serving.sh leader; python3 -m vllm.entrypoints.openai.api_server --port 8080"]}]}},
            "workerTemplate": {"spec": {"containers": [{"name": "w", "image": "vllm/vllm-openai", "command": ["sh", "-c", "bash multi-node-serving.sh worker --ray_address=x"]}]}}
        }}
    });
    let patched = apply(&obj, &create(&obj));
    let lwt = &patched["spec"]["leaderWorkerTemplate"];
    assert_eq!(lwt["leaderTemplate"]["metadata"]["labels"][WORKLOAD], "lws");
    assert_eq!(lwt["workerTemplate"]["metadata"]["labels"][BACKEND], "vllm");
    assert_eq!(
        lwt["leaderTemplate"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        8080
    );
    assert!(
        lwt["workerTemplate"]["spec"]["containers"][0]
            .get("ports")
            .is_none()
    );
}

#[test]
fn unreadable_shapes_warn_and_never_crash() {
    for template in [
        json!("oops"),
        json!({"spec": {"containers": {"a": 1}}}),
        json!({"metadata": {"labels": ["x"]}, "spec": {"containers": [vllm_container()]}}),
        json!({"spec": {"containers": [7, null]}}),
    ] {
        let d = create(&deployment("x", template.clone()));
        assert!(
            rules(&d).contains(&"unreadable-template"),
            "{template}: {:?}",
            d.findings
        );
        assert!(Outcome::of(&d, Mode::Enforce, Route::Mutate).allowed);
    }
    let policy = Policy::from_yaml("rules: {unreadable-template: deny}", "t").unwrap();
    assert!(create_with(&deployment("x", json!("oops")), &policy).denies());
}

#[test]
fn modes_turn_one_decision_into_three_outcomes() {
    let sglang = json!({"name": "s", "image": "lmsysorg/sglang", "command": ["python3", "-m", "sglang.launch_server"]});
    let d = create(&deployment("s", pod(json!([sglang]))));
    let enforce = Outcome::of(&d, Mode::Enforce, Route::Mutate);
    assert!(!enforce.allowed && enforce.patch.is_none());
    let warn = Outcome::of(&d, Mode::Warn, Route::Mutate);
    assert!(warn.allowed && warn.patch.is_some());
    assert!(
        warn.warnings
            .iter()
            .any(|w| w.starts_with("metrics-disabled"))
    );
    assert!(warn.warnings.iter().all(|w| w.chars().count() <= 256));
    let audit = Outcome::of(&d, Mode::Audit, Route::Mutate);
    assert!(audit.allowed && audit.patch.is_none());
    assert!(audit.audit_annotations["findings"].contains("deny:metrics-disabled@"));
    assert!(
        audit
            .warnings
            .iter()
            .any(|w| w.starts_with("monitoring-labels-missing")),
        "unpatched, so reported"
    );
    let validate = Outcome::of(&d, Mode::Warn, Route::Validate);
    assert!(validate.patch.is_none() && validate.allowed);
}

#[test]
fn policy_changes_levels_names_and_supported_backends() {
    let sglang = json!({"name": "s", "image": "lmsysorg/sglang", "command": ["python3", "-m", "sglang.launch_server"]});
    let obj = deployment("s", pod(json!([sglang])));
    let relaxed =
        Policy::from_yaml("rules:\n  metrics-disabled: warn\nportName: metrics\n", "t").unwrap();
    let d = create_with(&obj, &relaxed);
    assert!(!d.denies());
    let patched = apply(&obj, &d);
    assert_eq!(
        patched["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"],
        "metrics"
    );
    let tgi = deployment(
        "t",
        pod(
            json!([{"name": "t", "image": "ghcr.io/huggingface/text-generation-inference:3.0", "args": ["--model-id", "m"]}]),
        ),
    );
    assert!(create(&tgi).patch.is_empty());
    let with_tgi = Policy::from_yaml("supportedBackends: [vllm, tgi]", "t").unwrap();
    let patched = apply(&tgi, &create_with(&tgi, &with_tgi));
    assert_eq!(labels_at(&patched, "/spec/template")[BACKEND], "tgi");
    assert_eq!(
        patched["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        80
    );
}

#[test]
fn malformed_policies_are_clear_errors_naming_the_field() {
    for (text, needle) in [
        ("rules: {no-such-rule: deny}", "no-such-rule"),
        ("rules: {metrics-disabled: block}", "block"),
        ("portName: HTTP_PORT", "portName"),
        ("supportedBackends: []", "supportedBackends"),
        ("labels: {workload: 'bad key!'}", "labels.workload"),
        ("colour: blue", "colour"),
        ("defaultMode: loud", "loud"),
        ("optOutValue: '-x'", "optOutValue"),
        ("[not, a, map]", "invalid policy"),
    ] {
        let err = Config::from_yaml(text, "policy.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(needle) && err.contains("policy.yaml"),
            "{text}: {err}"
        );
    }
    assert_eq!(Config::from_yaml("", "p").unwrap(), Config::default());
}

/// The level a rule fired at in a decision, if it fired.
fn level_of(d: &inference_webhook::decide::Decision, rule: &str) -> Option<Level> {
    d.findings
        .iter()
        .find(|f| f.rule.as_str() == rule)
        .map(|f| f.level)
}

/// One container three ways: the engine named by its command, by its image's entrypoint with
/// args that fit, and by the image name alone (no command, no args it is known by).
fn by_strength(image: &str, command: Value, entry_args: Value, extra: Value) -> [Value; 3] {
    let with = |mut c: Value| {
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    [
        with(json!({"name": "e", "image": "example.com/plain:1", "command": command})),
        with(json!({"name": "e", "image": image, "args": entry_args})),
        with(json!({"name": "e", "image": image})),
    ]
}

fn assert_denies_only_when_certain(rule: &str, containers: [Value; 3], labels: Value) {
    for (c, strength, denied) in containers
        .into_iter()
        .zip([("command", true), ("entrypoint", true), ("image", false)])
        .map(|(c, (s, d))| (c, s, d))
    {
        let mut t = pod(json!([c]));
        for (k, v) in labels.as_object().unwrap() {
            t["metadata"]["labels"][k] = v.clone();
        }
        let d = create(&deployment("x", t));
        let det = &d.templates[0].detections[0];
        assert_eq!(
            serde_json::to_value(det.strength).unwrap(),
            json!(strength),
            "{det:?}"
        );
        let expected = if denied { Level::Deny } else { Level::Warn };
        assert_eq!(
            level_of(&d, rule),
            Some(expected),
            "{strength}: {:?}",
            d.findings
        );
        assert_eq!(d.denies(), denied, "{strength}: {:?}", d.findings);
        if !denied {
            let f = d.findings.iter().find(|f| f.rule.as_str() == rule).unwrap();
            assert!(
                f.message.contains("image name only")
                    && f.message.contains("set the container's command"),
                "{}",
                f.message
            );
        }
    }
}

#[test]
fn metrics_disabled_denies_on_command_or_entrypoint_and_warns_on_the_image_alone() {
    let containers = by_strength(
        "lmsysorg/sglang:v0.5.5",
        json!(["python3", "-m", "sglang.launch_server", "--model-path", "m"]),
        json!(["--model-path", "m"]),
        json!({}),
    );
    assert_denies_only_when_certain("metrics-disabled", containers, json!({}));
}

#[test]
fn backend_mismatch_denies_on_command_or_entrypoint_and_warns_on_the_image_alone() {
    let containers = by_strength(
        "vllm/vllm-openai:v0.10.0",
        json!(["vllm", "serve", "m"]),
        json!(["Qwen/Qwen3-8B"]),
        json!({}),
    );
    assert_denies_only_when_certain("backend-mismatch", containers, json!({BACKEND: "sglang"}));
}

#[test]
fn port_name_conflict_denies_on_command_or_entrypoint_and_warns_on_the_image_alone() {
    let containers = by_strength(
        "vllm/vllm-openai:v0.10.0",
        json!(["vllm", "serve", "m"]),
        json!(["Qwen/Qwen3-8B"]),
        // 8000 declared too: an image guess whose default port the container does not declare
        // names no port at all (`metrics-port-unresolved`).
        json!({"ports": [{"name": "http", "containerPort": 9090}, {"containerPort": 8000}]}),
    );
    assert_denies_only_when_certain("port-name-conflict", containers, json!({}));
}

#[test]
fn backend_unsupported_rests_on_the_label_not_the_detection_so_it_denies_on_any_evidence() {
    for c in by_strength(
        "vllm/vllm-openai:v0.10.0",
        json!(["vllm", "serve", "m"]),
        json!(["Qwen/Qwen3-8B"]),
        json!({}),
    ) {
        let mut t = pod(json!([c]));
        t["metadata"]["labels"][BACKEND] = json!("vLLM");
        let d = create(&deployment("x", t));
        assert_eq!(level_of(&d, "backend-unsupported"), Some(Level::Deny));
    }
}

#[test]
fn a_backend_label_does_not_make_an_image_guess_certain_since_the_webhook_writes_it() {
    // The webhook labels an image-only SGLang guess itself; the next update of what it
    // admitted carries that label and must still only warn.
    let sglang = json!({"name": "s", "image": "lmsysorg/sglang:v0.5.5"});
    let first = create(&deployment("s", pod(json!([sglang]))));
    assert_eq!(level_of(&first, "metrics-disabled"), Some(Level::Warn));
    let admitted = apply(&deployment("s", pod(json!([sglang]))), &first);
    assert_eq!(
        admitted["spec"]["template"]["metadata"]["labels"][BACKEND],
        "sglang"
    );
    let again = create(&admitted);
    assert_eq!(level_of(&again, "metrics-disabled"), Some(Level::Warn));
    assert!(!again.denies(), "{:?}", again.findings);
}

#[test]
fn a_port_resting_on_a_default_an_unseen_env_from_may_change_never_denies_a_conflict() {
    // TGI reads PORT; an envFrom ConfigMap this review cannot see may set it.
    let tgi = json!({"name": "tgi", "image": "ghcr.io/huggingface/text-generation-inference:2.4.0",
                     "command": ["text-generation-launcher", "--model-id", "m"],
                     "envFrom": [{"configMapRef": {"name": "tgi-config"}}],
                     "ports": [{"name": "http", "containerPort": 2080}]});
    let policy = Policy::from_yaml("supportedBackends: [tgi]", "test").unwrap();
    let d = create_with(&deployment("t", pod(json!([tgi]))), &policy);
    assert_eq!(
        level_of(&d, "port-name-conflict"),
        Some(Level::Warn),
        "{:?}",
        d.findings
    );
    assert!(!d.denies());
}

#[test]
fn metrics_switched_on_where_the_review_cannot_see_never_deny() {
    let policy = every_backend();
    let level = |container: Value| {
        let d = create_with(&deployment("m", pod(json!([container]))), &policy);
        let f = d
            .findings
            .iter()
            .find(|f| f.rule.as_str() == "metrics-disabled");
        (f.map(|f| f.level), f.map(|f| f.message.clone()), d.denies())
    };
    // llama.cpp reads --metrics from LLAMA_ARG_ENDPOINT_METRICS: set, it is on; possibly set
    // by an envFrom source the review cannot see, it only warns.
    let llama = json!({"name": "l", "image": "ghcr.io/ggml-org/llama.cpp:server",
                       "command": ["/app/llama-server", "-m", "/m.gguf"]});
    assert_eq!(level(llama.clone()).0, Some(Level::Deny));
    let mut on = llama.clone();
    on["env"] = json!([{"name": "LLAMA_ARG_ENDPOINT_METRICS", "value": "1"}]);
    assert_eq!(level(on), (None, None, false));
    let mut unseen = llama;
    unseen["envFrom"] = json!([{"configMapRef": {"name": "llama-settings"}}]);
    let (lvl, message, denies) = level(unseen);
    assert_eq!((lvl, denies), (Some(Level::Warn), false));
    assert!(
        message
            .unwrap()
            .contains("(not denied: an environment source")
    );
    // LMDeploy turned metrics on by default in v0.11: a tag that names no version only warns,
    // and the message says which versions need the flag.
    let lmdeploy = |image: &str| {
        json!({"name": "d", "image": image,
               "command": ["lmdeploy", "serve", "api_server", "internlm/internlm2-chat-7b"]})
    };
    let (lvl, message, denies) = level(lmdeploy("openmmlab/lmdeploy:latest"));
    assert_eq!((lvl, denies), (Some(Level::Warn), false));
    let message = message.unwrap();
    assert!(
        message.contains("before v0.11") && message.contains("--enable-metrics"),
        "{message}"
    );
    assert_eq!(
        level(lmdeploy("openmmlab/lmdeploy:v0.10.3")).0,
        Some(Level::Deny)
    );
    assert_eq!(
        level(lmdeploy("openmmlab/lmdeploy:v0.11.0")),
        (None, None, false)
    );
    // Before v0.9.2 LMDeploy has no metrics and no flag for them: never denied, no port named.
    let old = lmdeploy("kube-ai/lmdeploy:v0.4.2");
    let d = create_with(&deployment("m", pod(json!([old]))), &policy);
    assert!(!d.denies(), "{:?}", d.findings);
    assert_eq!(d.templates[0].detections[0].metrics_port, None);
}

#[test]
fn an_engine_serving_metrics_at_another_path_is_labeled_and_warned_about() {
    // trtllm-serve's /metrics answers JSON statistics; Prometheus is at /prometheus/metrics.
    let trtllm = json!({"name": "t", "image": "nvcr.io/nvidia/tensorrt-llm/release:1.0.0",
                        "command": ["trtllm-serve", "serve", "Qwen/Qwen3-8B", "--port", "8000"]});
    let d = create_with(&deployment("t", pod(json!([trtllm]))), &every_backend());
    assert!(!d.denies(), "{:?}", d.findings);
    let f = d
        .findings
        .iter()
        .find(|f| f.rule.as_str() == "metrics-path-differs")
        .expect("the path is reported");
    assert_eq!(f.level, Level::Warn);
    assert!(f.message.contains("/prometheus/metrics"), "{}", f.message);
    assert_eq!(d.templates[0].detections[0].metrics_port, Some(8000));
    // Engines that serve /metrics get no such finding.
    let vllm = json!({"name": "v", "image": "x", "command": ["vllm", "serve", "m"]});
    let d = create(&deployment("v", pod(json!([vllm]))));
    assert_eq!(level_of(&d, "metrics-path-differs"), None);
}

#[test]
fn a_grpc_only_server_is_labeled_without_a_port_and_never_denied() {
    // SGLang's --grpc-mode starts no HTTP app: adding --enable-metrics could not help.
    let sglang = json!({"name": "s", "image": "lmsysorg/sglang:v0.5.5",
                        "command": ["python3", "-m", "sglang.launch_server", "--model-path", "m",
                                    "--port", "30000", "--grpc-mode"]});
    let d = create(&deployment("g", pod(json!([sglang]))));
    assert!(!d.denies(), "{:?}", d.findings);
    assert_eq!(level_of(&d, "metrics-disabled"), None);
    let det = &d.templates[0].detections[0];
    assert_eq!((det.backend, det.metrics_port), ("sglang", None));
    let patch = serde_json::to_value(&d.patch).unwrap();
    let paths: Vec<&str> = patch
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|op| op["path"].as_str())
        .collect();
    assert!(
        !paths.is_empty() && paths.iter().all(|p| p.contains("/labels")),
        "{paths:?}"
    );
}

#[test]
fn a_router_s_serving_port_named_http_is_reported_not_denied() {
    let router = json!({"name": "r", "image": "lmsysorg/sglang-router:v0.2.4",
                        "command": ["python3", "-m", "sglang_router.launch_router", "--port", "8000",
                                    "--prometheus-host", "0.0.0.0"],
                        "ports": [{"name": "http", "containerPort": 8000}]});
    let policy = Policy::from_yaml("supportedBackends: [sglang-router]", "test").unwrap();
    let d = create_with(&deployment("r", pod(json!([router]))), &policy);
    assert_eq!(
        level_of(&d, "port-name-conflict"),
        Some(Level::Warn),
        "{:?}",
        d.findings
    );
    assert_eq!(level_of(&d, "metrics-listener-local"), None);
}

fn lws_spec(image: &str) -> Value {
    json!({"size": 2,
           "leaderTemplate": pod(json!([{"name": "vllm", "image": image,
                "command": ["sh", "-c", "vllm serve m --port 8000 --kv-transfer-config '{\"kv_connector\":\"NixlConnector\",\"kv_role\":\"kv_both\"}'"]}])),
           "workerTemplate": pod(json!([{"name": "vllm", "image": image,
                "command": ["sh", "-c", "bash /w/multi-node-serving.sh worker"]}]))})
}

#[test]
fn disaggregated_sets_label_every_role_s_leader_and_worker_templates() {
    let obj = json!({
        "apiVersion": "disaggregatedset.x-k8s.io/v1", "kind": "DisaggregatedSet",
        "metadata": {"name": "pd", "namespace": "llm"},
        "spec": {"roles": [
            {"name": "prefill", "spec": {"replicas": 1, "leaderWorkerTemplate": lws_spec("vllm/vllm-openai:v0.11.0")}},
            {"name": "decode", "spec": {"replicas": 1, "leaderWorkerTemplate": lws_spec("vllm/vllm-openai:v0.11.0")}}
        ]}
    });
    let d = create(&obj);
    assert_eq!(d.kind, Some("DisaggregatedSet"));
    let mut seen: Vec<(String, Option<String>, Option<u16>)> = d
        .templates
        .iter()
        .map(|t| (t.path.clone(), t.role.clone(), t.metrics_port))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (
                "spec.roles[0].spec.leaderWorkerTemplate.leaderTemplate (leader)".into(),
                Some("prefill".into()),
                Some(8000)
            ),
            (
                "spec.roles[0].spec.leaderWorkerTemplate.workerTemplate (worker)".into(),
                Some("prefill".into()),
                None
            ),
            (
                "spec.roles[1].spec.leaderWorkerTemplate.leaderTemplate (leader)".into(),
                Some("decode".into()),
                Some(8000)
            ),
            (
                "spec.roles[1].spec.leaderWorkerTemplate.workerTemplate (worker)".into(),
                Some("decode".into()),
                None
            ),
        ]
    );
    let patched = apply(&obj, &d);
    for role in 0..2 {
        // The worker runs only the Ray worker, which carries no KV-transfer flag.
        for (t, backend) in [("leaderTemplate", "vllm-pd"), ("workerTemplate", "vllm")] {
            let at = format!("/spec/roles/{role}/spec/leaderWorkerTemplate/{t}");
            assert_eq!(labels_at(&patched, &at)[BACKEND], backend, "{at}");
            assert_eq!(labels_at(&patched, &at)[WORKLOAD], "pd", "{at}");
        }
    }
    assert!(create(&patched).patch.is_empty());
}

#[test]
fn role_based_group_sets_label_the_group_they_stamp_out_in_both_versions() {
    let sglang = json!([{"name": "sglang", "image": "lmsysorg/sglang:v0.5.5",
        "command": ["python3", "-m", "sglang.launch_server", "--port", "30000", "--enable-metrics"]}]);
    let v2 = json!({
        "apiVersion": "workloads.x-k8s.io/v1alpha2", "kind": "RoleBasedGroupSet",
        "metadata": {"name": "set", "namespace": "llm"},
        "spec": {"replicas": 2, "groupTemplate": {"spec": {
            "roleTemplates": [{"name": "base", "template": {"spec": {"containers": sglang}}}],
            "roles": [{"name": "worker", "replicas": 1,
                       "standalonePattern": {"templateRef": {"name": "base", "patch": {}}}}]}}}
    });
    let v1 = json!({
        "apiVersion": "workloads.x-k8s.io/v1alpha1", "kind": "RoleBasedGroupSet",
        "metadata": {"name": "set", "namespace": "llm"},
        "spec": {"replicas": 2, "template": {
            "roles": [{"name": "worker", "replicas": 1, "template": {"spec": {"containers": sglang}}}]}}
    });
    for (obj, labels_at_pointer) in [
        (
            v2,
            "/spec/groupTemplate/spec/roles/0/standalonePattern/templateRef/patch",
        ),
        (v1, "/spec/template/roles/0/template"),
    ] {
        let d = create(&obj);
        assert_eq!(d.kind, Some("RoleBasedGroupSet"));
        assert_eq!(d.templates.len(), 1, "{:?}", d.templates);
        assert_eq!(d.templates[0].role.as_deref(), Some("worker"));
        assert_eq!(d.templates[0].metrics_port, Some(30000));
        let patched = apply(&obj, &d);
        assert_eq!(
            labels_at(&patched, labels_at_pointer)[BACKEND],
            "sglang",
            "{labels_at_pointer}"
        );
        assert_eq!(labels_at(&patched, labels_at_pointer)[WORKLOAD], "set");
        assert!(create(&patched).patch.is_empty());
    }
}

#[test]
fn null_metadata_labels_and_ports_are_empty_and_the_patch_creates_them() {
    for template in [
        json!({"metadata": null, "spec": {"containers": [vllm_container()]}}),
        json!({"metadata": {"labels": null, "annotations": null}, "spec": {"containers": [vllm_container()]}}),
    ] {
        let mut obj = deployment("n", template);
        obj["spec"]["template"]["spec"]["containers"][0]["ports"] = Value::Null;
        let d = create(&obj);
        assert!(
            !rules(&d).contains(&"unreadable-template"),
            "{:?}",
            d.findings
        );
        let patched = apply(&obj, &d);
        assert_eq!(labels_at(&patched, "/spec/template")[BACKEND], "vllm");
        assert_eq!(labels_at(&patched, "/spec/template")[WORKLOAD], "n");
        assert_eq!(
            patched["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"],
            "http"
        );
        assert!(create(&patched).patch.is_empty());
    }
}

// ---- Detection: issue 24 ----

fn annotated(template_annotations: Value, object_annotations: Value, containers: Value) -> Value {
    let mut obj = deployment("svc", pod(containers));
    obj["metadata"]["annotations"] = object_annotations;
    obj["spec"]["template"]["metadata"]["annotations"] = template_annotations;
    obj
}

fn detections(
    d: &inference_webhook::decide::Decision,
) -> Vec<(String, &'static str, String, Option<u16>)> {
    d.templates
        .iter()
        .flat_map(|t| &t.detections)
        .map(|x| {
            (
                x.container.clone(),
                x.engine,
                x.strength.as_str().to_string(),
                x.metrics_port,
            )
        })
        .collect()
}

#[test]
fn an_engine_annotation_names_what_a_vendor_launcher_runs() {
    // A vendor entrypoint nobody can read, in an image that names no engine.
    let launcher = json!([{"name": "model", "image": "registry.example.com/acme/serving:4.2",
        "command": ["/opt/acme/bin/start"], "args": ["--listen", "9000"],
        "ports": [{"name": "api", "containerPort": 9000}]}]);
    assert!(
        create(&deployment("svc", pod(launcher.clone()))).templates[0]
            .detections
            .is_empty()
    );
    let obj = annotated(
        json!({"inference-webhook/engine": "vllm", "inference-webhook/metrics-port": "api"}),
        Value::Null,
        launcher.clone(),
    );
    let d = create(&obj);
    assert_eq!(
        detections(&d),
        [("model".into(), "vllm", "annotation".into(), Some(9000))]
    );
    let evidence = &d.templates[0].detections[0].evidence;
    assert!(
        evidence
            .iter()
            .any(|e| e.contains("annotation inference-webhook/engine: vllm")),
        "{evidence:?}"
    );
    let patched = apply(&obj, &d);
    assert_eq!(labels_at(&patched, "/spec/template")[BACKEND], "vllm");
    // The object's annotation holds for its templates; the template's wins over it.
    let obj = annotated(
        Value::Null,
        json!({"inference-webhook/engine": "sglang", "inference-webhook/metrics-port": "9000"}),
        launcher.clone(),
    );
    assert_eq!(detections(&create(&obj))[0].1, "sglang");
    let obj = annotated(
        json!({"inference-webhook/engine": "vllm"}),
        json!({"inference-webhook/engine": "sglang", "inference-webhook/metrics-port": "9000"}),
        launcher,
    );
    assert_eq!(
        detections(&create(&obj)),
        [("model".into(), "vllm", "annotation".into(), Some(9000))]
    );
}

#[test]
fn an_engine_annotation_corrects_a_guess_and_keeps_the_command_s_flags() {
    // The image says vLLM, the owner says SGLang: the command's `--port` is read for SGLang.
    let c = json!([{"name": "m", "image": "acme/vllm-base:1", "command": ["/start.sh"],
        "args": ["--port", "8100"]}]);
    let obj = annotated(
        json!({"inference-webhook/engine": "sglang"}),
        Value::Null,
        c,
    );
    let d = create_with(&obj, &every_backend());
    assert_eq!(
        detections(&d),
        [("m".into(), "sglang", "annotation".into(), Some(8100))]
    );
    // A certain detection: SGLang without --enable-metrics is denied, not just warned.
    assert!(d.denies(), "{:?}", d.findings);
    // The port annotation alone fixes the port of what detection found.
    let c = json!([vllm_container()]);
    let obj = annotated(
        json!({"inference-webhook/metrics-port": "8001"}),
        Value::Null,
        c,
    );
    assert_eq!(
        detections(&create(&obj)),
        [("vllm".into(), "vllm", "command".into(), Some(8001))]
    );
}

#[test]
fn engine_none_means_no_labels_and_no_findings() {
    let obj = annotated(
        Value::Null,
        json!({"inference-webhook/engine": "none"}),
        json!([vllm_container()]),
    );
    let d = create(&obj);
    assert!(d.patch.is_empty() && d.findings.is_empty(), "{d:?}");
    assert!(
        d.skipped
            .as_deref()
            .is_some_and(|s| s.contains("inference-webhook/engine: none"))
    );
    // A template's `none` beats the object's engine, and the other way round.
    let obj = annotated(
        json!({"inference-webhook/engine": "None"}),
        json!({"inference-webhook/engine": "vllm"}),
        json!([vllm_container()]),
    );
    let d = create(&obj);
    assert!(d.patch.is_empty() && d.findings.is_empty(), "{d:?}");
    let obj = annotated(
        json!({"inference-webhook/engine": "vllm"}),
        json!({"inference-webhook/engine": "none"}),
        json!([vllm_container()]),
    );
    assert_eq!(create(&obj).patch.len(), 3);
}

#[test]
fn invalid_override_annotations_are_findings_and_ignored() {
    for (annotations, says) in [
        (
            json!({"inference-webhook/engine": "vlm"}),
            "\"vlm\" is not an engine id",
        ),
        (
            json!({"inference-webhook/metrics-port": "70000"}),
            "not a port number",
        ),
        (
            json!({"inference-webhook/metrics-port": "Not_A_Name"}),
            "nor a port name",
        ),
        (
            json!({"inference-webhook/metrics-port": "metrics"}),
            "no container of this pod template declares",
        ),
    ] {
        let obj = annotated(annotations.clone(), Value::Null, json!([vllm_container()]));
        let d = create(&obj);
        let f = d
            .findings
            .iter()
            .find(|f| f.rule.as_str() == "override-invalid")
            .unwrap_or_else(|| panic!("{annotations}: {:?}", d.findings));
        assert!(f.message.contains(says), "{}", f.message);
        assert!(
            f.path.starts_with("spec.template.metadata.annotations"),
            "{}",
            f.path
        );
        assert!(!d.denies());
        // Ignored: detection decides as without it.
        assert_eq!(d.templates[0].metrics_port, Some(8000), "{annotations}");
    }
}

fn lws(leader: Value, worker: Value) -> Value {
    json!({
        "apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
        "metadata": {"name": "big-model"},
        "spec": {"leaderWorkerTemplate": {
            "leaderTemplate": {"spec": {"containers": [leader]}},
            "workerTemplate": {"spec": {"containers": [worker]}}
        }}
    })
}

#[test]
fn workers_that_join_a_leader_carry_its_labels_and_no_port() {
    let leader = json!({"name": "leader", "image": "vllm/vllm-openai:v0.10.0", "command": ["sh", "-c",
        "ray start --head --port=6379 && vllm serve org/model --tensor-parallel-size 8 --pipeline-parallel-size 2 --port 8080"]});
    for worker in [
        json!({"name": "worker", "image": "rayproject/ray:2.40.0-gpu",
               "command": ["sh", "-c", "ray start --address=$(LWS_LEADER_ADDRESS):6379 --block"]}),
        json!({"name": "worker", "image": "placeholder", "command": ["/opt/launch/run.sh", "worker", "--leader", "$(LWS_LEADER_ADDRESS)"]}),
        json!({"name": "worker", "image": "acme/launcher:2", "command": ["launcher", "worker", "--join=$(LWS_LEADER_ADDRESS)"]}),
    ] {
        let obj = lws(leader.clone(), worker.clone());
        let d = create(&obj);
        let found = &d.templates[1].detections;
        assert_eq!(found.len(), 1, "{worker}");
        assert_eq!(
            (
                found[0].engine,
                found[0].strength.as_str(),
                found[0].worker_only,
                found[0].metrics_port
            ),
            ("vllm", "leader", true, None)
        );
        let patched = apply(&obj, &d);
        let w = &patched["spec"]["leaderWorkerTemplate"]["workerTemplate"];
        assert_eq!(w["metadata"]["labels"][WORKLOAD], "big-model");
        assert_eq!(w["metadata"]["labels"][BACKEND], "vllm");
        assert!(w["spec"]["containers"][0].get("ports").is_none());
        assert!(create(&patched).patch.is_empty());
    }
    // Without a leader engine in the object, or a `ray start` that joins nothing, no engine.
    let ray = json!({"name": "w", "image": "rayproject/ray:2.40.0", "command": ["ray", "start", "--address=head:6379", "--block"]});
    let alone = deployment("ray", pod(json!([ray.clone()])));
    assert!(create(&alone).templates[0].detections.is_empty());
    let head = json!({"name": "w", "image": "rayproject/ray:2.40.0", "command": ["ray", "start", "--head", "--block"]});
    assert!(
        create(&lws(leader.clone(), head)).templates[1]
            .detections
            .is_empty()
    );
    // A Python module's `worker` is a task queue's.
    let celery = json!({"name": "w", "image": "python:3.12", "command": ["python", "-m", "celery", "worker"]});
    assert!(
        create(&lws(leader.clone(), celery)).templates[1]
            .detections
            .is_empty()
    );
    // An engine that takes no Ray workers (SGLang ranks its nodes) gets none.
    let sglang = json!({"name": "l", "image": "lmsysorg/sglang:v0.5.5", "command": ["python3", "-m", "sglang.launch_server", "--enable-metrics"]});
    assert!(create(&lws(sglang, ray)).templates[1].detections.is_empty());
}

#[test]
fn args_given_to_a_sh_c_script_set_the_port() {
    let c = json!({"name": "m", "image": "vllm/vllm-openai:v0.10.0",
        "command": ["sh", "-c", "pip install -q extra && python3 -m vllm.entrypoints.openai.api_server \"$@\"", "--"],
        "args": ["--model=org/m", "--port=8080"]});
    let d = create(&deployment("m", pod(json!([c]))));
    assert_eq!(d.templates[0].metrics_port, Some(8080));
    // Without a name word, the first arg is `$0` and not in `"$@"`: the port is the next.
    let c = json!({"name": "m", "image": "x", "command": ["/bin/bash", "-ec", "exec vllm serve \"${@}\""],
        "args": ["ignored", "org/m", "--port", "8090"]});
    assert_eq!(
        create(&deployment("m", pod(json!([c])))).templates[0].metrics_port,
        Some(8090)
    );
}

#[test]
fn triton_with_an_unknown_metrics_port_is_never_labeled_on_its_inference_port() {
    let triton = |ports: Value| {
        let c = json!({"name": "triton", "image": "nvcr.io/nvidia/tritonserver:24.08-py3",
            "command": ["tritonserver", "--model-repository=/models", "--metrics-port=$(METRICS_PORT)"],
            "env": [{"name": "METRICS_PORT", "valueFrom": {"configMapKeyRef": {"name": "triton", "key": "metrics"}}}],
            "ports": ports});
        create_with(&deployment("t", pod(json!([c]))), &every_backend())
    };
    let d = triton(json!([{"name": "http", "containerPort": 8000}]));
    assert_eq!(d.templates[0].metrics_port, None);
    assert!(
        rules(&d).contains(&"metrics-port-unresolved"),
        "{:?}",
        d.findings
    );
    // `http` is the collector's port name but Triton's inference port: no conflict denies it.
    assert!(!d.denies(), "{:?}", d.findings);
    let d = triton(
        json!([{"name": "http", "containerPort": 8000}, {"name": "metrics", "containerPort": 8102}]),
    );
    assert_eq!(d.templates[0].metrics_port, Some(8102));
}

#[test]
fn look_alike_images_are_not_the_engine_they_name() {
    for (image, name) in [
        ("ghcr.io/acme/vllm-latency-proxy:0.4", "proxy"),
        ("acme/sglang-gateway:1.0", "gateway"),
        ("acme/tgi-metrics-exporter:1.0", "exporter"),
        ("vllm/vllm-openai:v0.10.0", "benchmark-client"),
    ] {
        let c = json!({"name": name, "image": image, "args": ["--port", "9000"]});
        let d = create(&deployment("x", pod(json!([c]))));
        assert!(
            d.templates[0].detections.is_empty() && d.patch.is_empty(),
            "{image} {name}"
        );
    }
}

#[test]
fn the_webhook_admits_with_the_owner_s_engine_and_denies_by_its_certainty() {
    // Under enforce, an annotated engine is certain: SGLang without --enable-metrics is denied,
    // where the same image guess alone would only warn.
    let c = json!([{"name": "m", "image": "lmsysorg/sglang:v0.5.5", "command": ["/start.sh"]}]);
    let guess = create(&deployment("g", pod(c.clone())));
    assert!(Outcome::of(&guess, Mode::Enforce, Route::Mutate).allowed);
    let obj = annotated(
        json!({"inference-webhook/engine": "sglang"}),
        Value::Null,
        c,
    );
    let sure = create(&obj);
    assert!(
        !Outcome::of(&sure, Mode::Enforce, Route::Mutate).allowed,
        "{:?}",
        sure.findings
    );
}

#[test]
fn an_object_s_engine_annotation_corrects_its_templates_but_makes_no_engine_of_others() {
    let leader = json!({"name": "m", "image": "acme/vllm-base:1", "command": ["/start.sh"], "args": ["--port", "8100"]});
    let cache = json!({"name": "cache", "image": "redis:7", "command": ["redis-server"]});
    let mut obj = lws(leader.clone(), cache.clone());
    obj["metadata"]["annotations"] = json!({"inference-webhook/engine": "sglang"});
    let d = create_with(&obj, &every_backend());
    assert_eq!(
        detections(&d),
        [("m".into(), "sglang", "annotation".into(), Some(8100))]
    );
    // On the template itself, the owner's word makes an engine of whatever it names.
    obj["spec"]["leaderWorkerTemplate"]["workerTemplate"]["metadata"] =
        json!({"annotations": {"inference-webhook/engine": "sglang"}});
    let d = create_with(&obj, &every_backend());
    assert_eq!(d.templates[1].detections.len(), 1, "{:?}", d.templates);
    assert!(d.templates[1].detections[0].worker_only);
}
