//! Properties over generated workloads: the patch applies, the result is still a valid object of
//! its Kubernetes type, a second review gives an empty patch and the same verdict, and nothing
//! but the two labels and the named port is ever added — nothing changed, nothing removed. And
//! the engine's reading contract: `decide` answers the same on the object the server reads
//! (members the engine never reads kept as text, `status` and `managedFields` dropped) as on the
//! full object, on CREATE and on UPDATE.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use inference_webhook::admission;
use inference_webhook::decide::{Operation, Policy};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use support::decide::*;
use support::fixtures::review;

fn image() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "vllm/vllm-openai:v0.10.0",
        "registry.example.com:5000/mirror/vllm-openai@sha256:0123abcd",
        "lmsysorg/sglang:v0.5.5",
        "lmsysorg/sglang-router:v0.2.4",
        "pytorch/pytorch:2.4",
        "nginx",
    ])
}

fn command() -> impl Strategy<Value = Value> {
    let port = prop_oneof![
        Just(String::new()),
        (1u16..=65535).prop_map(|p| format!(" --port {p}")),
        Just(" --port $(PORT)".to_string()),
        Just(" --port=$PORT".to_string()),
        Just(" --port 99999".to_string()),
    ];
    let metrics = prop_oneof![
        Just(""),
        Just(" --enable-metrics"),
        Just(" --disable-log-stats")
    ];
    let engine = prop::sample::select(vec![
        "vllm serve m",
        "python3 -m vllm.entrypoints.openai.api_server --model m",
        "python3 -m sglang.launch_server --model-path m",
        "python3 -m sglang_router.launch_router",
        "vllm bench serve",
        "sleep infinity",
    ]);
    (engine, port, metrics, 0..3usize).prop_map(|(e, p, m, style)| {
        let line = format!("{e}{p}{m}");
        match style {
            0 => json!({"command": line.split(' ').collect::<Vec<_>>()}),
            1 => {
                json!({"command": ["/bin/sh", "-c"], "args": [format!("echo start; exec {line}")]})
            }
            _ => json!({"args": line.split(' ').skip(2).collect::<Vec<_>>()}),
        }
    })
}

fn ports() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(prop::sample::select(vec![
        json!([]),
        json!([{"containerPort": 8000}]),
        json!([{"containerPort": 30000, "name": "serve"}]),
        json!([{"containerPort": 9090, "name": "http"}]),
        json!([{"containerPort": 8000, "name": "http", "protocol": "TCP"}]),
    ]))
}

fn container(i: usize) -> impl Strategy<Value = Value> {
    (image(), command(), ports(), any::<bool>()).prop_map(move |(img, cmd, ports, env)| {
        let mut c = json!({"name": format!("c{i}"), "image": img});
        for (k, v) in cmd.as_object().unwrap() {
            c[k] = v.clone();
        }
        if let Some(p) = ports {
            c["ports"] = p;
        }
        if env {
            c["env"] = json!([{"name": "PORT", "value": "8123"}]);
        }
        c
    })
}

fn template() -> impl Strategy<Value = Value> {
    let labels = prop::sample::select(vec![
        None,
        Some(json!({})),
        Some(json!({"app": "a"})),
        Some(json!({"app": "a", BACKEND: "vllm"})),
        Some(json!({WORKLOAD: "w", "alibabacloud.com/inference_backend": "sglang"})),
        Some(json!({BACKEND: "tgi"})),
    ]);
    (
        labels,
        any::<bool>(),
        container(0),
        prop::option::of(container(1)),
    )
        .prop_map(|(labels, with_metadata, c0, c1)| {
            let mut t = json!({"spec": {"containers": [c0]}});
            if let Some(c) = c1 {
                t["spec"]["containers"].as_array_mut().unwrap().push(c);
            }
            match labels {
                Some(l) => t["metadata"] = json!({"labels": l}),
                None if with_metadata => t["metadata"] = json!({"annotations": {"a": "b"}}),
                None => {}
            }
            t
        })
}

fn workload() -> impl Strategy<Value = (usize, Value)> {
    (0..5usize, template(), template(), any::<bool>()).prop_map(|(kind, t1, t2, by_ref)| {
        let obj = match kind {
            0 => deployment("gen", t1),
            1 => json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "gen"},
                        "spec": {"serviceName": "gen", "selector": {"matchLabels": {"a": "b"}}, "template": t1}}),
            2 => json!({"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "metadata": {"name": "gen"},
                        "spec": {"leaderWorkerTemplate": {"leaderTemplate": t1, "workerTemplate": t2}}}),
            _ => {
                let role = if kind == 4 {
                    json!({"name": "r", "standalonePattern": {"templateRef": {"name": "base"}}})
                } else if by_ref {
                    json!({"name": "r", "standalonePattern": {"templateRef": {"name": "base", "patch": t2}}})
                } else {
                    json!({"name": "r", "standalonePattern": {"template": t2}})
                };
                json!({"apiVersion": "workloads.x-k8s.io/v1alpha2", "kind": "RoleBasedGroup", "metadata": {"name": "gen"},
                       "spec": {"roleTemplates": [{"name": "base", "template": t1}], "roles": [role]}})
            }
        };
        (kind, obj)
    })
}

/// Every place where `after` differs from `before`: each must be an addition.
fn additions(before: &Value, after: &Value, at: String, out: &mut Vec<(String, Value)>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for (k, bv) in b {
                let av = a.get(k).unwrap_or_else(|| panic!("{at}/{k} was removed"));
                additions(bv, av, format!("{at}/{}", escape(k)), out);
            }
            for (k, av) in a.iter().filter(|(k, _)| !b.contains_key(*k)) {
                out.push((format!("{at}/{}", escape(k)), av.clone()));
            }
        }
        (Value::Array(b), Value::Array(a)) => {
            assert!(a.len() >= b.len(), "{at}: items removed");
            for (i, bv) in b.iter().enumerate() {
                additions(bv, &a[i], format!("{at}/{i}"), out);
            }
            for (i, av) in a.iter().enumerate().skip(b.len()) {
                out.push((format!("{at}/{i}"), av.clone()));
            }
        }
        (b, a) => assert_eq!(b, a, "{at} was changed"),
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn only_monitoring_labels(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|m| m.keys().all(|k| k == WORKLOAD || k == BACKEND))
}

fn is_named_port(v: &Value) -> bool {
    v["name"] == "http"
        && v["containerPort"].is_u64()
        && v["protocol"] == "TCP"
        && v.as_object().map(Map::len) == Some(3)
}

/// What an addition may be: a monitoring label, the maps holding only them, a named port, a
/// port's name, or (in a templateRef patch) a container entry holding only a named port.
fn allowed(path: &str, v: &Value) -> bool {
    let last = path.rsplit('/').next().unwrap_or_default();
    if path.contains("/metadata/labels/") {
        return last == escape(WORKLOAD) || last == escape(BACKEND);
    }
    match last {
        "labels" => only_monitoring_labels(v),
        "metadata" => v
            .as_object()
            .is_some_and(|m| m.len() == 1 && only_monitoring_labels(&m["labels"])),
        "name" => path.contains("/ports/") && v == "http",
        "ports" => v
            .as_array()
            .is_some_and(|a| a.len() == 1 && is_named_port(&a[0])),
        "patch" => {
            let m = v.as_object().unwrap();
            m.get("metadata").is_none_or(|md| allowed("x/metadata", md))
                && m.get("spec").is_none_or(|s| allowed("x/spec", s))
                && m.keys().all(|k| k == "metadata" || k == "spec")
        }
        "spec" => v
            .as_object()
            .is_some_and(|m| m.len() == 1 && allowed("x/containers", &m["containers"])),
        "containers" => v
            .as_array()
            .is_some_and(|a| a.iter().all(|c| allowed("x/containers/0", c))),
        _ if path.contains("/ports/") => is_named_port(v),
        _ if path.contains("/containers/") => v.as_object().is_some_and(|m| {
            m.len() == 2 && m["name"].is_string() && allowed("x/ports", &m["ports"])
        }),
        _ => false,
    }
}

fn templates_of(kind: usize, obj: &Value) -> Vec<Value> {
    let pick = |p: &str| obj.pointer(p).cloned().into_iter().collect::<Vec<_>>();
    match kind {
        2 => [
            pick("/spec/leaderWorkerTemplate/leaderTemplate"),
            pick("/spec/leaderWorkerTemplate/workerTemplate"),
        ]
        .concat(),
        3 | 4 => [
            pick("/spec/roleTemplates/0/template"),
            pick("/spec/roles/0/standalonePattern/template"),
            pick("/spec/roles/0/standalonePattern/templateRef/patch"),
        ]
        .concat(),
        _ => Vec::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn patches_apply_keep_objects_valid_and_reach_a_fixed_point((kind, obj) in workload()) {
        let first = create(&obj);
        let patched = apply(&obj, &first);
        match kind {
            0 => { serde_json::from_value::<Deployment>(patched.clone()).expect("still a Deployment"); }
            1 => { serde_json::from_value::<StatefulSet>(patched.clone()).expect("still a StatefulSet"); }
            _ => for t in templates_of(kind, &patched) {
                serde_json::from_value::<PodTemplateSpec>(t).expect("still a PodTemplateSpec");
            },
        }
        let mut added = Vec::new();
        additions(&obj, &patched, String::new(), &mut added);
        for (path, value) in &added {
            prop_assert!(allowed(path, value), "unexpected addition at {path}: {value}");
        }
        let second = create(&patched);
        prop_assert!(second.patch.is_empty(), "second patch: {:?}", second.patch);
        prop_assert_eq!(second.denies(), first.denies());
    }

    #[test]
    fn decide_answers_the_same_on_what_the_server_reads_and_on_the_full_object(
        (_, obj) in workload(),
        noise in any::<u8>(),
    ) {
        let full = with_unread_members(&obj, noise, "1");
        let policy = Policy::default();
        let create = serde_json::to_vec(&review(json!({
            "uid": "u", "operation": "CREATE", "object": full,
        }))).unwrap();
        let parsed = admission::parse(&create).unwrap();
        prop_assert_eq!(
            format!("{:?}", decide_request(&parsed, &policy)),
            format!("{:?}", decide_input(&full, None, Operation::Create, None, &policy))
        );
        // An UPDATE whose old object differs only in members the engine never reads.
        let old = with_unread_members(&obj, noise, "2");
        let update = serde_json::to_vec(&review(json!({
            "uid": "u", "operation": "UPDATE", "object": full, "oldObject": old,
        }))).unwrap();
        let parsed = admission::parse(&update).unwrap();
        prop_assert_eq!(
            format!("{:?}", decide_request(&parsed, &policy)),
            format!("{:?}", decide_input(&full, Some(&old), Operation::Update, None, &policy))
        );
    }
}

/// The object with members the engine never reads in every pod spec and container (which of
/// them by the bits of `noise`, their values by `version`), and the `status` and
/// `managedFields` an API server adds.
fn with_unread_members(obj: &Value, noise: u8, version: &str) -> Value {
    let mut out = obj.clone();
    out["status"] = json!({"replicas": 1, "observedGeneration": version});
    out["metadata"]["managedFields"] = json!([{"manager": "kubectl", "time": version}]);
    add_unread(&mut out, noise, version);
    out
}

fn add_unread(value: &mut Value, noise: u8, version: &str) {
    let bit = |n: u8| noise & (1 << n) != 0;
    match value {
        Value::Object(map) => {
            if map.contains_key("containers") {
                if bit(0) {
                    map.insert(
                        "volumes".into(),
                        json!([{"name": "cache", "emptyDir": {"sizeLimit": version}}]),
                    );
                }
                if bit(1) {
                    map.insert("nodeSelector".into(), json!({"gpu": version}));
                }
            }
            if map.contains_key("image") {
                if bit(2) {
                    map.insert(
                        "resources".into(),
                        json!({"limits": {"nvidia.com/gpu": version}}),
                    );
                }
                if bit(3) {
                    map.insert("livenessProbe".into(), json!({"httpGet": {"path": "/health", "port": 8000}, "periodSeconds": version}));
                }
                if bit(4) {
                    map.insert("securityContext".into(), json!({"runAsUser": version}));
                }
            }
            for v in map.values_mut() {
                add_unread(v, noise, version);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| add_unread(v, noise, version)),
        _ => {}
    }
}
