//! The reporter's metrics. Label values are namespaces and values of the kind tables
//! (kinds, backends, rule ids, levels, states): never an object name or an error text.
//! A gauge series that falls to zero is removed, so deleted namespaces leave no series behind.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use super::state::{Change, Record};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkloadLabels {
    pub namespace: String,
    pub kind: &'static str,
    pub backend: &'static str,
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PodLabels {
    pub namespace: String,
    pub backend: &'static str,
    /// Why the pod lacks the labels (`crate::cluster::pods::Reason`).
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FindingLabels {
    pub namespace: String,
    pub rule: &'static str,
    pub level: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    /// `resource.group/version` of a row of the kinds table.
    pub resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WatchErrorLabels {
    pub resource: String,
    /// `not-found` (the CRD is not installed), `forbidden`, or `other`.
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    /// `PolicyReport` or `Report`.
    pub kind: &'static str,
    /// `applied`, `deleted` (no reported workload left), `crd-missing` or `failed`.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `PolicyReport` or `Report`.
    pub kind: &'static str,
}

pub struct Metrics {
    registry: Registry,
    workloads: Family<WorkloadLabels, Gauge>,
    unlabeled_pods: Family<PodLabels, Gauge>,
    findings: Family<FindingLabels, Gauge>,
    pub watch_up: Family<ResourceLabels, Gauge>,
    pub last_sync: Family<ResourceLabels, Gauge>,
    pub watch_restarts: Family<ResourceLabels, Counter>,
    pub watch_errors: Family<WatchErrorLabels, Counter>,
    pub objects_seen: Family<ResourceLabels, Counter>,
    pub objects_unchanged: Family<ResourceLabels, Counter>,
    pub report_writes: Family<WriteLabels, Counter>,
    pub report_crd_missing: Family<KindLabels, Gauge>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("inference_webhook");
        let metrics = Metrics {
            registry: Registry::default(),
            workloads: Family::default(),
            unlabeled_pods: Family::default(),
            findings: Family::default(),
            watch_up: Family::default(),
            last_sync: Family::default(),
            watch_restarts: Family::default(),
            watch_errors: Family::default(),
            objects_seen: Family::default(),
            objects_unchanged: Family::default(),
            report_writes: Family::default(),
            report_crd_missing: Family::default(),
        };
        registry.register(
            "workloads",
            "Workloads running an inference engine, by namespace, kind, backend and state \
             (monitored, unmonitored: labels or named port missing, denied: a deny rule fires in an \
             enforce namespace)",
            metrics.workloads.clone(),
        );
        register_pods(&mut registry, &metrics.unlabeled_pods);
        registry.register(
            "findings",
            "Rule findings on the workloads in the cluster, by namespace, rule id and level \
             (exempted findings are not counted)",
            metrics.findings.clone(),
        );
        registry.register(
            "reporter_watch_up",
            "1 while the watch of a resource is listed and running, 0 while it fails",
            metrics.watch_up.clone(),
        );
        registry.register_with_unit(
            "reporter_watch_last_sync",
            "When the watch of a resource last finished listing, as a Unix timestamp",
            Unit::Seconds,
            metrics.last_sync.clone(),
        );
        registry.register(
            "reporter_watch_restarts",
            "Times the watch of a resource re-listed after the first list",
            metrics.watch_restarts.clone(),
        );
        registry.register(
            "reporter_watch_errors",
            "Failed list or watch requests, by resource and reason (not-found: CRD not \
             installed, forbidden: RBAC, other)",
            metrics.watch_errors.clone(),
        );
        registry.register(
            "reporter_objects_seen",
            "Objects received from the API server (listed, added, changed or deleted)",
            metrics.objects_seen.clone(),
        );
        registry.register(
            "reporter_objects_unchanged",
            "Changed objects not judged again: neither the generation (the spec) nor a label \
             or an annotation `decide` reads changed (status updates)",
            metrics.objects_unchanged.clone(),
        );
        registry.register(
            "reporter_report_writes",
            "Policy report writes, by report kind and result",
            metrics.report_writes.clone(),
        );
        registry.register(
            "reporter_report_crd_missing",
            "1 while the API server does not serve a report kind (its CRD is not installed): \
             no reports of it are written, and a write is retried rarely",
            metrics.report_crd_missing.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// Move the gauges by one change of the store.
    pub fn record(&self, change: &Change) {
        if change.is_noop() {
            return;
        }
        if let Some(old) = &change.removed {
            self.count(old, -1);
        }
        if let Some(new) = &change.added {
            self.count(new, 1);
        }
    }

    fn count(&self, record: &Record, by: i64) {
        if let Some(reason) = record.pod {
            let labels = PodLabels {
                namespace: record.namespace.clone(),
                backend: record.backend,
                reason: reason.as_str(),
            };
            add(&self.unlabeled_pods, labels, by);
            return;
        }
        if let Some(state) = record.state {
            let labels = WorkloadLabels {
                namespace: record.namespace.clone(),
                kind: record.kind,
                backend: record.backend,
                state: state.as_str(),
            };
            add(&self.workloads, labels, by);
        }
        for finding in record.findings.iter().filter(|f| f.exempted.is_none()) {
            let labels = FindingLabels {
                namespace: record.namespace.clone(),
                rule: finding.rule.as_str(),
                level: finding.level.as_str(),
            };
            add(&self.findings, labels, by);
        }
    }

    /// The registry in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// The pods' gauge (`crate::cluster::pods`), beside the workloads'.
fn register_pods(registry: &mut Registry, family: &Family<PodLabels, Gauge>) {
    registry.register(
        "unlabeled_pods",
        "Running inference pods that lack the workload label or the named port and that no \
         workload above covers, by namespace, backend and reason (namespace-not-opted-in, \
         no-controller, owner-kind-not-listed, not-admitted, predates-template)",
        family.clone(),
    );
}

fn add<L>(family: &Family<L, Gauge>, labels: L, by: i64)
where
    L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug,
{
    let now = family.get_or_create(&labels).inc_by(by) + by;
    if now <= 0 {
        family.remove(&labels);
    }
}
