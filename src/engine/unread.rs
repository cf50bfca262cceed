//! The engine's reading contract: members it never reads, so a front door may skip building
//! them. The server keeps them as raw text rather than `Value` trees (a real object's probes,
//! resources and volumes are much of its bytes); `tests/pruning.rs` checks that [`decide`]
//! answers the same on pruned and full objects, for every real manifest the tests have.
//!
//! A rule that starts reading one of these members must take it off this list.
//!
//! [`decide`]: super::decide

/// Object members, at any depth, that no rule, detection or patch reads or points into.
/// `envFrom` is not among them: an `envFrom` source may set a port variable.
pub const UNREAD_MEMBERS: &[&str] = &[
    "affinity",
    "dnsConfig",
    "imagePullSecrets",
    "initContainers",
    "lifecycle",
    "livenessProbe",
    "nodeSelector",
    "readinessProbe",
    "resources",
    "securityContext",
    "startupProbe",
    "tolerations",
    "topologySpreadConstraints",
    "volumeClaimTemplates",
    "volumeMounts",
    "volumes",
];
