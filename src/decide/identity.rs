//! The workload identity: one name per inference service, whichever operator made the object.
//! Operators label what they create with the top-level service's name, while the controlling
//! owner is often an intermediate object renamed on every rollout (a Knative Revision) or one
//! per role (llm-d's prefill and decode Deployments). So the name is, first match wins: a
//! well-known label naming the service (on the object or its pod template), the controlling
//! owner (a ReplicaSet named `<deployment>-<pod-template-hash>` names its Deployment), the
//! object's name, its `generateName` stem.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::json::Json;
use super::owners;

/// A label that names the top-level service, read only when every `when` label has its value.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IdentityLabel {
    pub key: String,
    #[serde(default)]
    pub when: BTreeMap<String, String>,
}

/// A built-in row: the key, its `when` labels, and the operator whose source sets it.
type Row = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

/// The built-in table, the source comment beside each row naming where the operator sets it.
/// Order matters where one pod carries several: Dynamo on Grove carries Grove's `part-of` too,
/// a KAITO InferenceSet's pods carry their per-replica Workspace's label too.
const DEFAULT_LABELS: &[Row] = &[
    (
        "nvidia.com/dynamo-graph-deployment-name",
        &[],
        // ai-dynamo/dynamo operator internal/consts/consts.go: KubeLabelDynamoGraphDeploymentName
        "ai-dynamo/dynamo",
    ),
    (
        "serving.kserve.io/inferenceservice",
        &[],
        // kserve/kserve pkg/constants/constants.go: InferenceServicePodLabelKey
        "kserve/kserve",
    ),
    (
        "app.kubernetes.io/name",
        &[("app.kubernetes.io/part-of", "llminferenceservice")],
        // kserve/kserve pkg/controller/llmisvc: workload labels name=<LLMInferenceService>,
        // part-of=llminferenceservice
        "kserve/kserve (LLMInferenceService)",
    ),
    (
        "ome.io/inferenceservice",
        &[],
        // sgl-project/ome pkg/constants/constants.go: InferenceServiceLabel
        "sgl-project/ome",
    ),
    (
        "storm-service-name",
        &[],
        // vllm-project/aibrix pkg/constants: StormServiceNameLabelKey, set on RoleSets and Pods
        "vllm-project/aibrix",
    ),
    (
        "modelserving.volcano.sh/name",
        &[],
        // volcano-sh/kthena workload labels: ModelServing name on every pod it creates
        "volcano-sh/kthena",
    ),
    (
        "llm-d.ai/model",
        &[],
        // llm-d-incubation/llm-d-modelservice chart: modelArtifacts.labels, shared by prefill
        // and decode
        "llm-d",
    ),
    (
        "inferenceset.kaito.sh/created-by",
        &[],
        // kaito-project/kaito pkg/utils/consts: WorkspaceCreatedByInferenceSetLabel
        "kaito-project/kaito (InferenceSet)",
    ),
    (
        "kaito.sh/workspace",
        &[],
        // kaito-project/kaito api/v1beta1/labels.go: LabelWorkspaceName
        "kaito-project/kaito",
    ),
    (
        "app.kubernetes.io/part-of",
        &[("app.kubernetes.io/managed-by", "grove-operator")],
        // NVIDIA/grove operator/api/common/labels.go: LabelPartOfKey = <PodCliqueSet>,
        // LabelManagedByValue
        "NVIDIA/grove",
    ),
    (
        "ray.io/cluster",
        &[],
        // ray-project/kuberay ray-operator/controllers/ray/utils/constant.go: RayClusterLabelKey
        "ray-project/kuberay",
    ),
];

/// The built-in identity labels, in order.
pub(super) fn default_labels() -> Vec<IdentityLabel> {
    DEFAULT_LABELS
        .iter()
        .map(|(key, when, _)| IdentityLabel {
            key: (*key).to_string(),
            when: when
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        })
        .collect()
}

/// The operator each built-in key comes from, for the docs and their test.
pub fn default_sources() -> impl Iterator<Item = (&'static str, &'static str)> {
    DEFAULT_LABELS
        .iter()
        .map(|(key, _, source)| (*key, *source))
}

/// The first identity label found, in table order, in any of these label maps (the object's,
/// then its pod templates'), with its `when` labels in the same map.
pub(super) fn from_labels<'a>(table: &[IdentityLabel], maps: &[&'a Json<'a>]) -> Option<&'a str> {
    table.iter().find_map(|row| {
        maps.iter().find_map(|labels| {
            let value = labels.get(&row.key)?.as_str().filter(|v| !v.is_empty())?;
            row.when
                .iter()
                .all(|(k, v)| labels.get(k).and_then(Json::as_str) == Some(v.as_str()))
                .then_some(value)
        })
    })
}

/// The controlling owner's name; a ReplicaSet's stands for its Deployment when it ends in the
/// object's `pod-template-hash` (the Deployment controller's naming).
pub(super) fn from_owner<'a>(metadata: &'a Json<'a>) -> Option<&'a str> {
    controller(metadata).map(|(_, name)| name)
}

/// The controlling owner's kind and name, a ReplicaSet named `<name>-<pod-template-hash>`
/// after the object's `pod-template-hash` label standing for its `Deployment` `<name>`.
pub fn controller<'a>(metadata: &'a Json<'a>) -> Option<(&'a str, &'a str)> {
    let owner = metadata
        .get("ownerReferences")
        .and_then(Json::as_array)?
        .iter()
        .find(|r| owners::is_controller(r))?;
    let name = owner.get("name").and_then(Json::as_str)?;
    let kind = owner.get("kind").and_then(Json::as_str).unwrap_or_default();
    let hash = metadata
        .get("labels")
        .and_then(|l| l.get("pod-template-hash"))
        .and_then(Json::as_str)
        .filter(|h| !h.is_empty());
    let deployment = (kind == "ReplicaSet")
        .then_some(hash)
        .flatten()
        .and_then(|h| name.strip_suffix(h)?.strip_suffix('-'))
        .filter(|d| !d.is_empty());
    Some(match deployment {
        Some(d) => ("Deployment", d),
        None => (kind, name),
    })
}
