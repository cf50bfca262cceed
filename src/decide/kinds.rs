//! The kinds the engine handles, as data: where each kind keeps its pod templates.
//! Adding a kind is adding a row. The webhook configurations in `deploy/` and the chart are
//! checked against this table by a test.

/// One of the two templates of a leader/worker pattern (a multi-node engine).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    Leader,
    Worker,
}

impl Variant {
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Leader => "leader",
            Variant::Worker => "worker",
        }
    }
}

/// Where one family of pod templates sits inside an object.
#[derive(Debug)]
pub struct Site {
    /// Dotted path from the object root to the pattern object; `[]` walks every item of a list.
    pub at: &'static str,
    /// Key, inside the pattern object, of an inline pod template.
    pub template: &'static str,
    /// `(reference key, patch path)`: the pattern may instead name a `spec.roleTemplates[]`
    /// entry, with a schemaless strategic-merge patch at the patch path (relative to the pattern).
    pub template_ref: Option<(&'static str, &'static str)>,
    /// Named variants of the template, each a schemaless strategic-merge patch over it
    /// (the leader and worker patches of a leader/worker pattern).
    pub variants: &'static [(Variant, &'static str)],
    /// The single variant this template is (LeaderWorkerSet leader or worker).
    pub variant: Option<Variant>,
}

/// One handled kind.
#[derive(Debug)]
pub struct KindSpec {
    pub group: &'static str,
    pub kind: &'static str,
    /// Lower-case plural, as in webhook rules and API paths.
    pub resource: &'static str,
    pub versions: &'static [&'static str],
    pub sites: &'static [Site],
    /// Dotted path to the list of reusable role templates, for kinds that have them.
    pub role_templates: Option<&'static str>,
    /// The list of a site path whose items are roles, named by their `name`.
    pub roles: Option<&'static str>,
}

const fn inline(at: &'static str, template: &'static str) -> Site {
    Site {
        at,
        template,
        template_ref: None,
        variants: &[],
        variant: None,
    }
}

const LEADER_WORKER_PATCHES: &[(Variant, &str)] = &[
    (Variant::Leader, "leaderTemplatePatch"),
    (Variant::Worker, "workerTemplatePatch"),
];

const V1ALPHA1_LWS_PATCHES: &[(Variant, &str)] = &[
    (Variant::Leader, "leaderWorkerSet.patchLeaderTemplate"),
    (Variant::Worker, "leaderWorkerSet.patchWorkerTemplate"),
];

/// Sites of a leader/worker template object at `$at` (LeaderWorkerSet's `leaderWorkerTemplate`).
macro_rules! leader_worker_sites {
    ($at:literal) => {
        &[
            Site {
                at: $at,
                template: "leaderTemplate",
                template_ref: None,
                variants: &[],
                variant: Some(Variant::Leader),
            },
            Site {
                at: $at,
                template: "workerTemplate",
                template_ref: None,
                variants: &[],
                variant: Some(Variant::Worker),
            },
        ]
    };
}

/// Sites of a RoleBasedGroup v1alpha2 spec at `$spec` (the group itself, or the one a
/// RoleBasedGroupSet stamps out).
macro_rules! rbg_v1alpha2_sites {
    ($spec:literal) => {
        &[
            Site {
                at: concat!($spec, ".roles[].standalonePattern"),
                template: "template",
                template_ref: Some(("templateRef", "templateRef.patch")),
                variants: &[],
                variant: None,
            },
            Site {
                at: concat!($spec, ".roles[].leaderWorkerPattern"),
                template: "template",
                template_ref: Some(("templateRef", "templateRef.patch")),
                variants: LEADER_WORKER_PATCHES,
                variant: None,
            },
            Site {
                at: concat!($spec, ".roles[].customComponentsPattern.components[]"),
                template: "template",
                template_ref: Some(("templateRef", "templateRef.patch")),
                variants: &[],
                variant: None,
            },
        ]
    };
}

/// Sites of a RoleBasedGroup v1alpha1 spec at `$spec`.
macro_rules! rbg_v1alpha1_sites {
    ($spec:literal) => {
        &[
            Site {
                at: concat!($spec, ".roles[]"),
                template: "template",
                template_ref: Some(("templateRef", "templatePatch")),
                variants: V1ALPHA1_LWS_PATCHES,
                variant: None,
            },
            inline(concat!($spec, ".roles[].components[]"), "template"),
        ]
    };
}

pub const KINDS: &[KindSpec] = &[
    KindSpec {
        group: "apps",
        kind: "Deployment",
        resource: "deployments",
        versions: &["v1"],
        sites: &[inline("spec", "template")],
        roles: None,
        role_templates: None,
    },
    KindSpec {
        group: "apps",
        kind: "StatefulSet",
        resource: "statefulsets",
        versions: &["v1"],
        sites: &[inline("spec", "template")],
        roles: None,
        role_templates: None,
    },
    KindSpec {
        group: "workloads.x-k8s.io",
        kind: "RoleBasedGroup",
        resource: "rolebasedgroups",
        versions: &["v1alpha2"],
        sites: rbg_v1alpha2_sites!("spec"),
        roles: Some("roles"),
        role_templates: Some("spec.roleTemplates"),
    },
    KindSpec {
        group: "workloads.x-k8s.io",
        kind: "RoleBasedGroup",
        resource: "rolebasedgroups",
        versions: &["v1alpha1"],
        sites: rbg_v1alpha1_sites!("spec"),
        roles: Some("roles"),
        role_templates: Some("spec.roleTemplates"),
    },
    KindSpec {
        group: "leaderworkerset.x-k8s.io",
        kind: "LeaderWorkerSet",
        resource: "leaderworkersets",
        versions: &["v1"],
        sites: leader_worker_sites!("spec.leaderWorkerTemplate"),
        roles: None,
        role_templates: None,
    },
    // Each role is a LeaderWorkerSet spec (typically prefill and decode):
    // `disaggregatedset.x-k8s.io_disaggregatedsets.yaml`, `spec.roles[].spec.leaderWorkerTemplate`.
    KindSpec {
        group: "disaggregatedset.x-k8s.io",
        kind: "DisaggregatedSet",
        resource: "disaggregatedsets",
        versions: &["v1"],
        sites: leader_worker_sites!("spec.roles[].spec.leaderWorkerTemplate"),
        roles: Some("roles"),
        role_templates: None,
    },
    // The RoleBasedGroup it stamps out: v1alpha2 `spec.groupTemplate.spec`, v1alpha1
    // `spec.template` (`workloads.x-k8s.io_rolebasedgroupsets.yaml`).
    KindSpec {
        group: "workloads.x-k8s.io",
        kind: "RoleBasedGroupSet",
        resource: "rolebasedgroupsets",
        versions: &["v1alpha2"],
        sites: rbg_v1alpha2_sites!("spec.groupTemplate.spec"),
        roles: Some("roles"),
        role_templates: Some("spec.groupTemplate.spec.roleTemplates"),
    },
    KindSpec {
        group: "workloads.x-k8s.io",
        kind: "RoleBasedGroupSet",
        resource: "rolebasedgroupsets",
        versions: &["v1alpha1"],
        sites: rbg_v1alpha1_sites!("spec.template"),
        roles: Some("roles"),
        role_templates: Some("spec.template.roleTemplates"),
    },
];

/// A Pod is its own template: the fallback for operators that create Pods directly (Grove's
/// PodClique, AIBrix's RoleSet, kthena's ModelServing, KubeRay). Kept out of [`KINDS`]: it is
/// reviewed only on CREATE through webhook entries of its own, is never a handled parent, and
/// is not listed by the cluster audit as a template owner.
pub const POD: KindSpec = KindSpec {
    group: "",
    kind: "Pod",
    resource: "pods",
    versions: &["v1"],
    sites: &[inline("", "")],
    roles: None,
    role_templates: None,
};

impl KindSpec {
    /// Whether the object is itself the pod (its site is the root).
    pub fn is_pod(&self) -> bool {
        self.sites
            .iter()
            .any(|s| s.at.is_empty() && s.template.is_empty())
    }
}

/// The row for an `apiVersion` and `kind`, if the engine handles it.
pub fn lookup(api_version: &str, kind: &str) -> Option<&'static KindSpec> {
    let (group, version) = match api_version.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    KINDS
        .iter()
        .chain(std::iter::once(&POD))
        .find(|k| k.kind == kind && k.group == group && k.versions.contains(&version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handled_kinds_are_found_by_group_version_and_kind() {
        assert_eq!(
            lookup("apps/v1", "Deployment").map(|k| k.kind),
            Some("Deployment")
        );
        assert!(lookup("workloads.x-k8s.io/v1alpha1", "RoleBasedGroup").is_some());
        assert!(lookup("workloads.x-k8s.io/v1alpha2", "RoleBasedGroup").is_some());
        assert!(lookup("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet").is_some());
        assert!(lookup("disaggregatedset.x-k8s.io/v1", "DisaggregatedSet").is_some());
        assert!(lookup("workloads.x-k8s.io/v1alpha1", "RoleBasedGroupSet").is_some());
        assert!(lookup("workloads.x-k8s.io/v1alpha2", "RoleBasedGroupSet").is_some());
        assert!(lookup("apps/v1beta1", "Deployment").is_none());
        assert!(lookup("v1", "Pod").is_some_and(KindSpec::is_pod));
        assert!(!KINDS.iter().any(KindSpec::is_pod));
        assert!(lookup("batch/v1", "Job").is_none());
    }
}
