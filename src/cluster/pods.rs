//! Running inference pods that lack the workload label or the named port, with why the webhook
//! did not label them and what to do. The engine decides (`decide` with the Pod kind: whether an
//! engine runs and what the patch would add); this module only says why the pod missed it:
//!
//! - a pod whose top owner is a handled template kind (a Deployment through its ReplicaSet, a
//!   StatefulSet, a LeaderWorkerSet's StatefulSet, ...) is listed only when that template is
//!   labeled and the pod is not (it predates the labels): an unlabeled template is already
//!   reported under its workload, and counting its pods again would double count;
//! - any other pod missed the Pod entries because its namespace did not opt in, its controller
//!   is not of the entries' owner kinds (or it has none), or the webhook did not answer when it
//!   was created (installed later, down, or failing open).
//!
//! Not listed: pods of kube-system (the webhook configurations always exclude it), finished pods
//! (`Succeeded`, `Failed`), opted-out and terminating pods (the engine skips them).

use serde::Serialize;
use serde_json::Value;

use crate::decide::{Decision, Json, PatchOp, Policy, controller, decide_as_created};

/// Namespaces the webhook configurations exclude whatever their labels.
const EXCLUDED_NAMESPACES: &[&str] = &["kube-system"];
/// The chart's default `webhook.pods.ownerKinds`: controllers whose pods the Pod entries review.
pub const DEFAULT_OWNER_KINDS: &[&str] = &[
    "PodClique",
    "RoleSet",
    "ModelServing",
    "RayCluster",
    "InferenceReplica",
    "RoleInstance",
];
/// The pod label that makes a ReplicaSet's pods go to the Pod entries (Knative's revisions).
const KNATIVE_REVISION: &str = "serving.knative.dev/revision";
/// Owner chains are short (RoleBasedGroupSet → RoleBasedGroup → LeaderWorkerSet → StatefulSet);
/// a longer one is a cycle.
const MAX_OWNER_DEPTH: usize = 8;

/// Why an inference pod lacks the labels or the port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Its namespace lacks the opt-in label: the webhook reviews nothing there.
    NamespaceNotOptedIn,
    /// No controller: the Pod entries only review pods an operator controls.
    NoController,
    /// Its controller's kind is not in the Pod entries' owner kinds.
    OwnerKindNotListed,
    /// Everything matches, so the webhook did not answer when it was created: created before
    /// it was installed, or while it was down or failing open.
    NotAdmitted,
    /// Its top owner's template is labeled and the pod is not: it predates the labels.
    PredatesTemplate,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NamespaceNotOptedIn => "namespace-not-opted-in",
            Reason::NoController => "no-controller",
            Reason::OwnerKindNotListed => "owner-kind-not-listed",
            Reason::NotAdmitted => "not-admitted",
            Reason::PredatesTemplate => "predates-template",
        }
    }
}

/// How a handled object stands, as the listing of the kinds table found it.
#[derive(Clone, Debug, PartialEq)]
pub enum Standing {
    /// Runs an engine and its templates carry the labels and the port: its workload name.
    Labeled(String),
    /// Another handled object's controller made it (`Kind/name`).
    Child(String),
    /// Anything else: lacking the labels (reported under the workload), opted out, no engine.
    Other,
}

impl Standing {
    /// How the engine's decision on a handled object leaves it.
    pub fn of(decision: &Decision) -> Standing {
        let detected = decision.templates.iter().any(|t| !t.detections.is_empty());
        match (&decision.child_of, &decision.skipped, &decision.workload) {
            (Some(parent), _, _) => Standing::Child(parent.clone()),
            (None, None, Some(workload)) if detected && decision.patch.is_empty() => {
                Standing::Labeled(workload.clone())
            }
            _ => Standing::Other,
        }
    }
}

/// What the reasons depend on besides the pod.
pub struct Context<'a> {
    pub policy: &'a Policy,
    /// The Pod entries' owner kinds (chart `webhook.pods.ownerKinds`).
    pub owner_kinds: &'a [String],
    /// Whether the pod's namespace has the opt-in label; `None` when namespaces cannot be read.
    pub opted_in: Option<bool>,
}

/// One inference pod that lacks the labels or the port.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UnlabeledPod {
    pub namespace: String,
    pub name: String,
    #[serde(skip)]
    pub uid: String,
    /// The workload it belongs to: the engine's identity, or its labeled top owner's.
    pub workload: String,
    pub reason: Reason,
    /// What to do about it.
    pub advice: String,
    /// The controlling owner (`Kind/name`), a ReplicaSet standing for its Deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub backend: &'static str,
    /// What the engine would add: `label KEY` and `port NAME`.
    pub lacks: Vec<String>,
}

/// The pod (as the engine reads it) if it is an inference pod that lacks the labels or the
/// port, with why. `standing` looks up a handled object by namespace, kind and name.
pub fn unlabeled(
    pod: &Value,
    cx: &Context<'_>,
    standing: impl Fn(&str, &str, &str) -> Option<Standing>,
) -> Option<UnlabeledPod> {
    let text = |pointer: &str| pod.pointer(pointer).and_then(Value::as_str);
    let namespace = text("/metadata/namespace")?;
    if EXCLUDED_NAMESPACES.contains(&namespace)
        || matches!(text("/status/phase"), Some("Succeeded" | "Failed"))
    {
        return None;
    }
    let decision = decide_as_created(cx.policy, pod, None);
    let child_of = decision.child_of.clone();
    let judged = match &child_of {
        // The engine skips a handled object's pods; judge the pod itself, without its owner.
        Some(_) => decide_as_created(cx.policy, &without_owners(pod), None),
        None => decision,
    };
    let detected = judged.templates.iter().any(|t| !t.detections.is_empty());
    if !detected || judged.patch.is_empty() || judged.skipped.is_some() {
        return None;
    }
    let owner = owner(pod);
    // The top owner, when it is a handled template kind: its review covers the pod.
    let top = child_of
        .or_else(|| owner.as_ref().map(|(kind, name)| format!("{kind}/{name}")))
        .and_then(|at| top_owner(namespace, &at, &standing));
    let (reason, workload, top_at) = match top {
        Some((at, Standing::Labeled(workload))) => (Reason::PredatesTemplate, workload, Some(at)),
        // Lacking, opted out or no engine: the workload's own record covers the pod.
        Some(_) => return None,
        None => (
            reason(pod, owner.is_some(), cx),
            judged.workload.clone()?,
            None,
        ),
    };
    Some(UnlabeledPod {
        namespace: namespace.to_string(),
        name: text("/metadata/name")?.to_string(),
        uid: text("/metadata/uid").unwrap_or_default().to_string(),
        advice: advice(reason, namespace, raw_kind(pod), top_at.as_deref(), cx),
        workload,
        reason,
        owner: owner.map(|(kind, name)| format!("{kind}/{name}")),
        backend: judged.detected_backend().unwrap_or("none"),
        lacks: lacks(&judged.patch),
    })
}

fn without_owners(pod: &Value) -> Value {
    let mut pod = pod.clone();
    if let Some(meta) = pod.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("ownerReferences");
    }
    pod
}

/// The pod's controller (`Kind`, name), by the engine's identity rule (a ReplicaSet named
/// after the pod's `pod-template-hash` stands for its Deployment).
fn owner(pod: &Value) -> Option<(String, String)> {
    let metadata = Json::from(pod.get("metadata")?);
    controller(&metadata).map(|(kind, name)| (kind.to_string(), name.to_string()))
}

/// The top of the chain of handled objects from `at` (`Kind/name`), and how it stands; `None`
/// when `at` is not a handled object the listing found.
fn top_owner(
    namespace: &str,
    at: &str,
    standing: &impl Fn(&str, &str, &str) -> Option<Standing>,
) -> Option<(String, Standing)> {
    let mut at = at.to_string();
    for _ in 0..MAX_OWNER_DEPTH {
        let (kind, name) = at.split_once('/')?;
        match standing(namespace, kind, name)? {
            Standing::Child(parent) => at = parent,
            found => return Some((at, found)),
        }
    }
    None
}

/// The kind of the pod's controlling ownerReference, as the Pod entries' matchCondition sees it.
fn raw_kind(pod: &Value) -> Option<&str> {
    pod.pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)?["kind"]
        .as_str()
}

/// Why the Pod entries did not label a pod no handled template covers.
fn reason(pod: &Value, controlled: bool, cx: &Context<'_>) -> Reason {
    if cx.opted_in == Some(false) {
        return Reason::NamespaceNotOptedIn;
    }
    let (true, Some(kind)) = (controlled, raw_kind(pod)) else {
        return Reason::NoController;
    };
    let knative = pod
        .pointer("/metadata/labels")
        .and_then(|l| l.get(KNATIVE_REVISION))
        .is_some();
    if cx.owner_kinds.iter().any(|k| k == kind) || (kind == "ReplicaSet" && knative) {
        Reason::NotAdmitted
    } else {
        Reason::OwnerKindNotListed
    }
}

fn advice(
    reason: Reason,
    namespace: &str,
    owner_kind: Option<&str>,
    top: Option<&str>,
    cx: &Context<'_>,
) -> String {
    let key = &cx.policy.opt_out_label;
    match reason {
        Reason::NamespaceNotOptedIn => format!(
            "opt the namespace in (kubectl label namespace {namespace} {key}=enabled, or warn, \
             audit), then delete the pod to re-admit it"
        ),
        Reason::NoController => "no operator controls it, so the Pod entries never review it: \
            add the labels and the named port to its manifest"
            .to_string(),
        Reason::OwnerKindNotListed => format!(
            "add {} to the chart's webhook.pods.ownerKinds (and to --pod-owner-kinds here), \
             then delete the pod to re-admit it",
            owner_kind.unwrap_or("its controller's kind")
        ),
        Reason::NotAdmitted => "created before the webhook was installed, or while it was down \
            or failing open: delete the pod to re-admit it (its controller creates it again)"
            .to_string(),
        Reason::PredatesTemplate => {
            let top = top.unwrap_or("its workload");
            let restart = top
                .split_once('/')
                .filter(|(kind, _)| ["Deployment", "StatefulSet"].contains(kind));
            match restart {
                Some((kind, name)) => format!(
                    "created before {top}'s template got the labels: kubectl -n {namespace} \
                     rollout restart {}/{name}",
                    kind.to_ascii_lowercase()
                ),
                None => format!(
                    "created before {top}'s template got the labels: delete the pod to \
                     re-create it from the labeled template"
                ),
            }
        }
    }
}

/// `label KEY` and `port NAME` for what the patch adds.
fn lacks(patch: &[PatchOp]) -> Vec<String> {
    let unescape = |s: &str| s.replace("~1", "/").replace("~0", "~");
    let mut out = Vec::new();
    for PatchOp::Add { path, value } in patch {
        if path == "/metadata/labels" {
            let keys = value.as_object().into_iter().flat_map(|m| m.keys());
            out.extend(keys.map(|k| format!("label {k}")));
        } else if let Some(key) = path.strip_prefix("/metadata/labels/") {
            out.push(format!("label {}", unescape(key)));
        } else if path.contains("/ports") {
            // A whole list, one port, or the name of a declared port.
            let name = match value {
                Value::Array(ports) => ports.first().and_then(|p| p["name"].as_str()),
                Value::String(name) => Some(name.as_str()),
                other => other["name"].as_str(),
            };
            out.push(format!("port {}", name.unwrap_or("(named)")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(namespace: &str, labels: Value, owner: Option<(&str, &str)>) -> Value {
        let owners: Vec<Value> = owner
            .into_iter()
            .map(|(kind, name)| json!({"apiVersion": "x/v1", "kind": kind, "name": name, "uid": "o1", "controller": true}))
            .collect();
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p-0", "namespace": namespace, "uid": "u1", "labels": labels,
                "ownerReferences": owners},
            "spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.10.1",
                "args": ["--model", "m", "--port", "8000"]}]},
            "status": {"phase": "Running"}
        })
    }

    fn kinds() -> Vec<String> {
        DEFAULT_OWNER_KINDS.iter().map(|k| k.to_string()).collect()
    }

    /// The pod's listing with the namespace's opt-in and these handled objects.
    fn listed(
        pod: &Value,
        opted_in: Option<bool>,
        known: &[(&str, Standing)],
    ) -> Option<UnlabeledPod> {
        let policy = Policy::default();
        let owner_kinds = kinds();
        let cx = Context {
            policy: &policy,
            owner_kinds: &owner_kinds,
            opted_in,
        };
        unlabeled(pod, &cx, |ns, kind, name| {
            assert_eq!(ns, "ml");
            let at = format!("{kind}/{name}");
            known.iter().find(|(k, _)| *k == at).map(|(_, s)| s.clone())
        })
    }

    fn reason_of(listed: &Option<UnlabeledPod>) -> Option<(Reason, &str)> {
        listed.as_ref().map(|p| (p.reason, p.workload.as_str()))
    }

    #[test]
    fn an_operator_pod_the_entries_match_was_not_admitted() {
        let grove = json!({"app.kubernetes.io/managed-by": "grove-operator",
            "app.kubernetes.io/part-of": "pcs"});
        let p = pod("ml", grove, Some(("PodClique", "pcs-0-decode")));
        let got = listed(&p, Some(true), &[]);
        assert_eq!(reason_of(&got), Some((Reason::NotAdmitted, "pcs")));
        let got = got.unwrap_or_else(|| unreachable!());
        assert!(
            got.advice.contains("delete the pod to re-admit it"),
            "{}",
            got.advice
        );
        assert_eq!(got.owner.as_deref(), Some("PodClique/pcs-0-decode"));
        assert_eq!(got.backend, "vllm");
        assert!(
            got.lacks
                .contains(&"label alibabacloud.com/inference-workload".to_string()),
            "{:?}",
            got.lacks
        );
        assert!(
            got.lacks.contains(&"port http".to_string()),
            "{:?}",
            got.lacks
        );
    }

    #[test]
    fn the_namespace_and_the_owner_kind_come_first() {
        let p = pod("ml", json!({}), Some(("PodClique", "c")));
        let got = listed(&p, Some(false), &[]);
        assert_eq!(reason_of(&got), Some((Reason::NamespaceNotOptedIn, "c")));
        let advice = got.map(|g| g.advice).unwrap_or_default();
        assert!(
            advice.contains("kubectl label namespace ml inference-monitoring=enabled"),
            "{advice}"
        );
        // Namespaces unreadable: no namespace reason.
        assert_eq!(
            reason_of(&listed(&p, None, &[])),
            Some((Reason::NotAdmitted, "c"))
        );

        let job = pod("ml", json!({}), Some(("Job", "batch")));
        let got = listed(&job, Some(true), &[]);
        assert_eq!(reason_of(&got), Some((Reason::OwnerKindNotListed, "batch")));
        let advice = got.map(|g| g.advice).unwrap_or_default();
        assert!(
            advice.contains("add Job to the chart's webhook.pods.ownerKinds"),
            "{advice}"
        );

        let bare = pod("ml", json!({}), None);
        assert_eq!(
            reason_of(&listed(&bare, Some(true), &[])),
            Some((Reason::NoController, "p-0"))
        );
    }

    #[test]
    fn a_knative_replicaset_pod_goes_to_the_entries() {
        let labels = json!({"serving.knative.dev/revision": "chat-00001"});
        let p = pod(
            "ml",
            labels,
            Some(("ReplicaSet", "chat-00001-deployment-5d4f")),
        );
        assert_eq!(
            reason_of(&listed(&p, Some(true), &[])).map(|r| r.0),
            Some(Reason::NotAdmitted)
        );
        let plain = pod("ml", json!({}), Some(("ReplicaSet", "rs")));
        assert_eq!(
            reason_of(&listed(&plain, Some(true), &[])).map(|r| r.0),
            Some(Reason::OwnerKindNotListed)
        );
    }

    #[test]
    fn labeled_finished_excluded_opted_out_and_other_pods_are_not_listed() {
        let owner = Some(("PodClique", "c"));
        let mut labeled = pod(
            "ml",
            json!({"alibabacloud.com/inference-workload": "c",
            "alibabacloud.com/inference-backend": "vllm"}),
            owner,
        );
        labeled["spec"]["containers"][0]["ports"] =
            json!([{"name": "http", "containerPort": 8000}]);
        assert_eq!(listed(&labeled, Some(true), &[]), None);
        let mut done = pod("ml", json!({}), owner);
        done["status"]["phase"] = json!("Succeeded");
        assert_eq!(listed(&done, Some(true), &[]), None);
        let system = pod("kube-system", json!({}), owner);
        let policy = Policy::default();
        let owner_kinds = kinds();
        let cx = Context {
            policy: &policy,
            owner_kinds: &owner_kinds,
            opted_in: Some(true),
        };
        assert_eq!(unlabeled(&system, &cx, |_, _, _| None), None);
        let opted_out = pod("ml", json!({"inference-monitoring": "disabled"}), owner);
        assert_eq!(listed(&opted_out, Some(true), &[]), None);
        let mut nginx = pod("ml", json!({}), owner);
        nginx["spec"]["containers"] = json!([{"name": "web", "image": "nginx:1.27"}]);
        assert_eq!(listed(&nginx, Some(true), &[]), None);
    }

    #[test]
    fn a_template_kinds_pod_is_listed_only_when_its_template_is_labeled() {
        // A Deployment's pod, through its ReplicaSet named after the pod-template-hash.
        let p = pod(
            "ml",
            json!({"pod-template-hash": "5d4f"}),
            Some(("ReplicaSet", "llm-5d4f")),
        );
        let labeled = [("Deployment/llm", Standing::Labeled("llm-svc".into()))];
        let got = listed(&p, Some(false), &labeled);
        assert_eq!(reason_of(&got), Some((Reason::PredatesTemplate, "llm-svc")));
        let advice = got.map(|g| g.advice).unwrap_or_default();
        assert!(
            advice.contains("kubectl -n ml rollout restart deployment/llm"),
            "{advice}"
        );
        // The template lacks the labels too: reported under the Deployment, not here.
        assert_eq!(
            listed(&p, Some(true), &[("Deployment/llm", Standing::Other)]),
            None
        );

        // A LeaderWorkerSet's StatefulSet's pod: the chain is followed to the top.
        let sts = pod("ml", json!({}), Some(("StatefulSet", "lws-0")));
        let mut sts = sts;
        sts["metadata"]["ownerReferences"][0]["apiVersion"] = json!("apps/v1");
        let chain = [
            (
                "StatefulSet/lws-0",
                Standing::Child("LeaderWorkerSet/lws".into()),
            ),
            ("LeaderWorkerSet/lws", Standing::Labeled("lws".into())),
        ];
        let got = listed(&sts, Some(true), &chain);
        assert_eq!(reason_of(&got), Some((Reason::PredatesTemplate, "lws")));
        let advice = got.map(|g| g.advice).unwrap_or_default();
        assert!(
            advice.contains("LeaderWorkerSet/lws's template") && advice.contains("delete the pod"),
            "{advice}"
        );
        let lacking = [
            (
                "StatefulSet/lws-0",
                Standing::Child("LeaderWorkerSet/lws".into()),
            ),
            ("LeaderWorkerSet/lws", Standing::Other),
        ];
        assert_eq!(listed(&sts, Some(true), &lacking), None);
    }

    #[test]
    fn a_handled_objects_standing_follows_the_engine() {
        let policy = Policy::default();
        let deployment = |labels: Value| {
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "llm", "namespace": "ml"},
                "spec": {"template": {"metadata": {"labels": labels}, "spec": {"containers": [
                    {"name": "vllm", "image": "vllm/vllm-openai:v0.10.1",
                     "args": ["--port", "8000"], "ports": [{"name": "http", "containerPort": 8000}]}]}}}
            })
        };
        let bare = decide_as_created(&policy, &deployment(json!({})), None);
        assert_eq!(Standing::of(&bare), Standing::Other);
        let labels = json!({"alibabacloud.com/inference-workload": "llm",
            "alibabacloud.com/inference-backend": "vllm"});
        let done = decide_as_created(&policy, &deployment(labels), None);
        assert_eq!(Standing::of(&done), Standing::Labeled("llm".into()));
    }
}
