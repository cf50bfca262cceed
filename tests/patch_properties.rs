//! Properties of the patch over generated multi-template objects (issue #22): RoleBasedGroups
//! of both versions with leader/worker patches and `templateRef`s with patches, LeaderWorkerSets,
//! DisaggregatedSets and RoleBasedGroupSets; `ports: null`, init containers and native sidecars.
//! Whatever the object, the patch holds only `add` operations, no two on one path; it applies;
//! the patched object fits its CRD's schema (../shared/crds, list-map keys included); and every
//! pod template of the patched object has each port name once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};

use inference_webhook::decide::{Json, effective_templates};
use proptest::prelude::*;
use serde_json::{Value, json};
use support::decide::*;
use support::schema::check;

/// An engine container (or not), named `name`, with ports of several shapes.
fn container(name: &'static str) -> impl Strategy<Value = Value> {
    let process = prop::sample::select(vec![
        json!({"image": "vllm/vllm-openai:v0.10.0", "command": ["vllm", "serve", "m", "--port", "8000"]}),
        json!({"image": "vllm/vllm-openai:v0.10.0", "command": ["vllm", "serve", "m", "--port", "9000"]}),
        json!({"image": "lmsysorg/sglang:v0.5.5", "command": ["python3", "-m", "sglang.launch_server", "--enable-metrics"]}),
        json!({"image": "vllm/vllm-openai:v0.10.0", "command": ["sh", "-c", "ray start --address=$(LWS_LEADER_ADDRESS):6379 --block"]}),
        json!({"image": "nginx"}),
    ]);
    let ports = prop::sample::select(vec![
        None,
        Some(Value::Null),
        Some(json!([])),
        Some(json!([{"containerPort": 8000}])),
        Some(json!([{"containerPort": 8000, "name": "api"}, {"containerPort": 9000}])),
        Some(json!([{"containerPort": 7000, "name": "http"}])),
        Some(
            json!([{"containerPort": 8000, "protocol": "TCP"}, {"containerPort": 8000, "protocol": "UDP"}]),
        ),
    ]);
    (process, ports).prop_map(move |(mut c, ports)| {
        c["name"] = json!(name);
        if let Some(p) = ports {
            c["ports"] = p;
        }
        c
    })
}

fn init_containers() -> impl Strategy<Value = Option<Value>> {
    prop::sample::select(vec![
        None,
        Some(json!([{"name": "setup", "image": "busybox"}])),
        Some(
            json!([{"name": "proxy", "image": "envoyproxy/envoy", "restartPolicy": "Always",
                     "ports": [{"name": "http", "containerPort": 9901}]}]),
        ),
        Some(
            json!([{"name": "metrics", "image": "busybox", "restartPolicy": "Always",
                     "ports": [{"name": "stats", "containerPort": 9100}]}]),
        ),
    ])
}

fn template() -> impl Strategy<Value = Value> {
    let labels = prop::sample::select(vec![None, Some(Value::Null), Some(json!({"app": "x"}))]);
    (labels, container("engine"), init_containers()).prop_map(|(labels, c, init)| {
        let mut t = json!({"spec": {"containers": [c]}});
        if let Some(l) = labels {
            t["metadata"] = json!({"labels": l});
        }
        if let Some(i) = init {
            t["spec"]["initContainers"] = i;
        }
        t
    })
}

/// A leader or worker patch over a template: none, labels only, the engine container changed,
/// or `null`.
fn variant_patch() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(json!({"metadata": {"labels": {"role": "x"}}}))),
        container("engine").prop_map(|c| Some(json!({"spec": {"containers": [c]}}))),
        Just(Some(Value::Null)),
    ]
}

fn set_patch(pattern: &mut Value, key: &str, patch: Option<Value>) {
    if let Some(p) = patch {
        pattern[key] = p;
    }
}

/// A RoleBasedGroup spec of either version: two roles, each inline or by `templateRef` (with
/// or without a patch), each standalone or leader/worker with variant patches.
type Role = (
    Value,
    bool,
    Option<Value>,
    bool,
    Option<Value>,
    Option<Value>,
);

fn role() -> impl Strategy<Value = Role> {
    (
        template(),
        any::<bool>(),
        prop::option::of(container("engine")),
        any::<bool>(),
        variant_patch(),
        variant_patch(),
    )
}

fn rbg_spec(v1alpha1: bool) -> impl Strategy<Value = Value> {
    (role(), role()).prop_map(move |(a, b)| {
        let mut base_templates = Vec::new();
        let roles: Vec<Value> = [("prefill", a), ("decode", b)]
            .into_iter()
            .map(|(name, (t, by_ref, ref_patch, lw, leader, worker))| {
                let mut r = json!({"name": name});
                let (tkey, ref_patch_key) = if v1alpha1 {
                    ("template", "templatePatch")
                } else {
                    ("template", "patch")
                };
                let mut pattern = json!({});
                if by_ref {
                    base_templates.push(json!({"name": format!("{name}-base"), "template": t}));
                    let mut reference = json!({"name": format!("{name}-base")});
                    if let Some(c) = ref_patch {
                        let patch = json!({"spec": {"containers": [c]}});
                        if v1alpha1 {
                            r[ref_patch_key] = patch;
                        } else {
                            reference[ref_patch_key] = patch;
                        }
                    }
                    pattern["templateRef"] = reference;
                } else {
                    pattern[tkey] = t;
                }
                if v1alpha1 {
                    for (k, v) in pattern.as_object().unwrap().clone() {
                        r[k] = v;
                    }
                    if lw {
                        let mut lws = json!({});
                        set_patch(&mut lws, "patchLeaderTemplate", leader);
                        set_patch(&mut lws, "patchWorkerTemplate", worker);
                        r["leaderWorkerSet"] = lws;
                    }
                } else if lw {
                    set_patch(&mut pattern, "leaderTemplatePatch", leader);
                    set_patch(&mut pattern, "workerTemplatePatch", worker);
                    r["leaderWorkerPattern"] = pattern;
                } else {
                    r["standalonePattern"] = pattern;
                }
                r
            })
            .collect();
        json!({"roleTemplates": base_templates, "roles": roles})
    })
}

fn lws_spec() -> impl Strategy<Value = Value> {
    (template(), prop::option::of(template())).prop_map(|(worker, leader)| {
        let mut lwt = json!({"size": 2, "workerTemplate": worker});
        if let Some(l) = leader {
            lwt["leaderTemplate"] = l;
        }
        json!({"leaderWorkerTemplate": lwt})
    })
}

/// One generated object and the CRD file and version its schema comes from.
fn object() -> impl Strategy<Value = (Value, &'static str, &'static str)> {
    let meta = json!({"name": "gen", "namespace": "llm"});
    let m = meta.clone();
    let rbg = (any::<bool>(), any::<bool>()).prop_flat_map(move |(v1alpha1, set)| {
        let meta = m.clone();
        rbg_spec(v1alpha1).prop_map(move |spec| {
            let version = if v1alpha1 { "v1alpha1" } else { "v1alpha2" };
            let (kind, spec, file) = match (set, v1alpha1) {
                (false, _) => (
                    "RoleBasedGroup",
                    spec,
                    "workloads.x-k8s.io_rolebasedgroups.yaml",
                ),
                (true, true) => (
                    "RoleBasedGroupSet",
                    json!({"replicas": 1, "template": spec}),
                    "workloads.x-k8s.io_rolebasedgroupsets.yaml",
                ),
                (true, false) => (
                    "RoleBasedGroupSet",
                    json!({"replicas": 1, "groupTemplate": {"spec": spec}}),
                    "workloads.x-k8s.io_rolebasedgroupsets.yaml",
                ),
            };
            let o = json!({"apiVersion": format!("workloads.x-k8s.io/{version}"), "kind": kind,
                           "metadata": meta, "spec": spec});
            (o, file, version)
        })
    });
    let m = meta.clone();
    let lws = lws_spec().prop_map(move |spec| {
        let o = json!({"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
                       "metadata": m, "spec": spec});
        (o, "leaderworkerset.x-k8s.io_leaderworkersets.yaml", "v1")
    });
    let ds = (lws_spec(), lws_spec()).prop_map(move |(a, b)| {
        let roles = json!([{"name": "prefill", "spec": a}, {"name": "decode", "spec": b}]);
        let o = json!({"apiVersion": "disaggregatedset.x-k8s.io/v1", "kind": "DisaggregatedSet",
                       "metadata": meta, "spec": {"roles": roles}});
        (o, "disaggregatedset.x-k8s.io_disaggregatedsets.yaml", "v1")
    });
    prop_oneof![3 => rbg, 1 => lws, 1 => ds]
}

/// A CRD version's schema, read once per test run (the RoleBasedGroup CRDs are megabytes).
fn crd_schema(file: &'static str, version: &'static str) -> &'static Value {
    static SCHEMAS: OnceLock<Mutex<HashMap<(&str, &str), &'static Value>>> = OnceLock::new();
    let mut schemas = SCHEMAS.get_or_init(Default::default).lock().unwrap();
    schemas.entry((file, version)).or_insert_with(|| {
        let text = std::fs::read_to_string(support::fixtures::shared("crds").join(file)).unwrap();
        let crd = support::yaml::value(&text, file);
        let schema = crd["spec"]["versions"]
            .as_array()
            .and_then(|vs| vs.iter().find(|v| v["name"] == version))
            .map(|v| v["schema"]["openAPIV3Schema"].clone())
            .unwrap_or_else(|| panic!("{file} serves {version}"));
        Box::leak(Box::new(schema))
    })
}

/// Port names of a pod template, over its containers and native sidecars, with repeats.
fn port_names(template: &Value) -> Vec<String> {
    let spec = &template["spec"];
    let sidecars = spec["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["restartPolicy"] == "Always");
    spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(sidecars)
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn patches_only_add_never_twice_on_a_path_and_fit_the_schema(
        (object, file, version) in object()
    ) {
        let d = create(&object);
        let ops = serde_json::to_value(&d.patch).unwrap();
        let mut paths = HashSet::new();
        for op in ops.as_array().unwrap() {
            prop_assert_eq!(&op["op"], "add");
            prop_assert!(paths.insert(op["path"].clone()), "two operations on {}: {}", op["path"], ops);
        }
        let patched = apply(&object, &d);
        let mut problems = Vec::new();
        // Only what the patch touches can break the schema: check the object before too, and
        // ask that the patch adds no problem of its own.
        check(crd_schema(file, version), &object, "", &mut problems);
        let before: HashSet<String> = problems.drain(..).collect();
        check(crd_schema(file, version), &patched, "", &mut problems);
        let added: Vec<&String> = problems.iter().filter(|p| !before.contains(*p)).collect();
        prop_assert!(added.is_empty(), "{:?}\npatch: {}", added, ops);
        let before_names: Vec<(String, Vec<String>)> = effective_templates(&Json::from(&object))
            .into_iter()
            .map(|(at, t)| (at, port_names(&t)))
            .collect();
        for (at, t) in effective_templates(&Json::from(&patched)) {
            let names = port_names(&t);
            let unique: HashSet<&String> = names.iter().collect();
            let had_repeats = before_names
                .iter()
                .any(|(a, n)| a == &at && n.iter().collect::<HashSet<_>>().len() < n.len());
            prop_assert!(had_repeats || unique.len() == names.len(),
                "{} has port names {:?} after the patch {}", at, names, ops);
        }
        prop_assert!(create(&patched).patch.is_empty(), "a second review adds nothing");
    }
}
