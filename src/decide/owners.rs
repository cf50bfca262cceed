//! Objects another handled object's controller made: a RoleBasedGroup's StatefulSets and
//! LeaderWorkerSets, a LeaderWorkerSet's StatefulSets, a DisaggregatedSet's LeaderWorkerSets, a
//! RoleBasedGroupSet's RoleBasedGroups. The parent's review covers their pod templates (the
//! controller copies the labels and the port down), so they are neither judged again, out of
//! their parent's leader/worker context, nor counted twice.

use super::json::Json;
use super::kinds;

/// Owners outside the kind table whose children still come from a handled kind, known by a
/// label the child carries: LeaderWorkerSet's worker StatefulSets are controlled by the leader
/// Pod and labeled with the set's name (kubernetes-sigs/lws `pkg/controllers/pod_controller.go`,
/// `setControllerReferenceWithStatefulSet(&leaderPod, ...)` and `SetNameLabelKey`).
const INDIRECT_PARENTS: &[IndirectParent] = &[IndirectParent {
    owner_kind: "Pod",
    owner_api_version: "v1",
    label: "leaderworkerset.sigs.k8s.io/name",
    parent_kind: "LeaderWorkerSet",
}];

struct IndirectParent {
    owner_kind: &'static str,
    owner_api_version: &'static str,
    /// The child's label naming the handled parent.
    label: &'static str,
    parent_kind: &'static str,
}

/// Whether an ownerReference is the controlling one (`controller: true`).
pub(super) fn is_controller(reference: &Json<'_>) -> bool {
    reference.get("controller").and_then(Json::as_bool) == Some(true)
}

/// `Kind/name` of the handled object whose controller made this one, if any.
pub(super) fn handled_parent(metadata: Option<&Json<'_>>) -> Option<String> {
    let metadata = metadata?;
    let owner = metadata
        .get("ownerReferences")
        .and_then(Json::as_array)?
        .iter()
        .find(|r| is_controller(r))?;
    let field = |k: &str| owner.get(k).and_then(Json::as_str).unwrap_or_default();
    let (api_version, kind, name) = (field("apiVersion"), field("kind"), field("name"));
    // Any version: a parent of a version this release does not review is still the parent.
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    if kinds::KINDS
        .iter()
        .any(|k| k.group == group && k.kind == kind)
    {
        return Some(format!("{kind}/{name}"));
    }
    INDIRECT_PARENTS
        .iter()
        .filter(|p| p.owner_kind == kind && p.owner_api_version == api_version)
        .find_map(|p| {
            let set = metadata.get("labels")?.get(p.label)?.as_str()?;
            Some(format!("{}/{set}", p.parent_kind))
        })
}
