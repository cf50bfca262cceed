//! Prometheus metrics of the server. Every label value is drawn from a fixed set (static
//! strings of the engine and this crate): never an object name, a namespace or an error text.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::admission::{Mode, Reviewed, Route};
use crate::decide::Operation;

/// Review latency buckets in seconds, from 100 µs up.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ReviewLabels {
    /// A kind from the kind table, or `other`.
    pub kind: &'static str,
    /// `create`, `update` or `other`.
    pub operation: &'static str,
    pub mode: &'static str,
    pub route: &'static str,
    /// `allowed`, `patched` or `denied`.
    pub decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RouteLabels {
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ErrorLabels {
    /// A [`crate::admission::ReviewError::code`] or an HTTP-level reason.
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct BackendLabels {
    /// Backend value from the engine catalogue.
    pub backend: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RuleLabels {
    pub rule: &'static str,
    pub level: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct CloseLabels {
    /// Why the server closed the connection: `idle` or `max_age`.
    pub reason: &'static str,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

pub(super) struct Metrics {
    registry: Registry,
    reviews: Family<ReviewLabels, Counter>,
    review_errors: Family<ErrorLabels, Counter>,
    latency: HistogramFamily,
    detections: Family<BackendLabels, Counter>,
    violations: Family<RuleLabels, Counter>,
    exempted: Family<RuleLabels, Counter>,
    pub cert_not_after: Gauge,
    pub cert_reloads: Counter,
    pub cert_reload_failures: Counter,
    pub connections_open: Gauge,
    pub connections_rejected: Counter,
    pub connections_closed: Family<CloseLabels, Counter>,
    pub log_lines_dropped: Counter,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

impl Metrics {
    pub(super) fn new() -> Metrics {
        let mut metrics = Metrics {
            registry: Registry::with_prefix("inference_webhook"),
            reviews: Family::default(),
            review_errors: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            detections: Family::default(),
            violations: Family::default(),
            exempted: Family::default(),
            cert_not_after: Gauge::default(),
            cert_reloads: Counter::default(),
            cert_reload_failures: Counter::default(),
            connections_open: Gauge::default(),
            connections_rejected: Counter::default(),
            connections_closed: Family::default(),
            log_lines_dropped: Counter::default(),
        };
        metrics.register_reviews();
        metrics.register_server();
        metrics
    }

    /// What the reviews were and what they found.
    fn register_reviews(&mut self) {
        self.registry.register(
            "reviews",
            "Admission reviews answered, by kind, operation, mode, route and decision",
            self.reviews.clone(),
        );
        self.registry.register(
            "review_errors",
            "Requests rejected with a 4xx before a decision, by reason",
            self.review_errors.clone(),
        );
        self.registry.register_with_unit(
            "review_duration",
            "Time to read, decide and answer one review",
            Unit::Seconds,
            self.latency.clone(),
        );
        self.registry.register(
            "detections",
            "Inference engine containers detected in reviewed objects, by backend",
            self.detections.clone(),
        );
        self.registry.register(
            "violations",
            "Rule findings in reviewed objects, by rule id and level (exempted ones not included)",
            self.violations.clone(),
        );
        self.registry.register(
            "exempted_violations",
            "Rule findings exempted by the object's annotations, by rule id and level",
            self.exempted.clone(),
        );
    }

    /// The server's certificate, connections and log writer.
    fn register_server(&mut self) {
        self.registry.register_with_unit(
            "certificate_not_after",
            "Expiry of the serving certificate in use, as a Unix timestamp",
            Unit::Seconds,
            self.cert_not_after.clone(),
        );
        self.registry.register(
            "certificate_reloads",
            "Serving certificate pairs loaded from files after the first",
            self.cert_reloads.clone(),
        );
        self.registry.register(
            "certificate_reload_failures",
            "Changed certificate files that could not be loaded (the last good pair stays)",
            self.cert_reload_failures.clone(),
        );
        self.registry.register(
            "connections_open",
            "TLS connections currently open on the webhook port",
            self.connections_open.clone(),
        );
        self.registry.register(
            "connections_rejected",
            "Connections refused because the connection limit was reached",
            self.connections_rejected.clone(),
        );
        self.registry.register(
            "connections_closed",
            "Connections the server asked to close: idle too long, or older than the maximum age",
            self.connections_closed.clone(),
        );
        self.registry.register(
            "log_lines_dropped",
            "Log lines dropped because the log writer fell behind (a stalled log pipe)",
            self.log_lines_dropped.clone(),
        );
    }

    /// Count one answered review.
    pub(super) fn observe_review(
        &self,
        reviewed: &Reviewed<'_>,
        mode: Mode,
        route: Route,
        seconds: f64,
    ) {
        let decision = &reviewed.decision;
        self.reviews
            .get_or_create(&ReviewLabels {
                kind: decision.kind.unwrap_or("other"),
                operation: operation_label(reviewed.operation),
                mode: mode.as_str(),
                route: route.as_str(),
                decision: decision_label(reviewed),
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.as_str(),
            })
            .observe(seconds);
        for detection in decision.templates.iter().flat_map(|t| &t.detections) {
            self.detections
                .get_or_create(&BackendLabels {
                    backend: detection.backend,
                })
                .inc();
        }
        for finding in &decision.findings {
            let family = if finding.exemption.is_some() {
                &self.exempted
            } else {
                &self.violations
            };
            family
                .get_or_create(&RuleLabels {
                    rule: finding.rule.as_str(),
                    level: finding.level.as_str(),
                })
                .inc();
        }
    }

    pub(super) fn observe_error(&self, reason: &'static str) {
        self.review_errors
            .get_or_create(&ErrorLabels { reason })
            .inc();
    }

    /// The registry in the Prometheus text format.
    pub(super) fn encode(&self) -> String {
        let (dropped, counted) = (
            crate::runtime::dropped_lines(),
            self.log_lines_dropped.get(),
        );
        if dropped > counted {
            self.log_lines_dropped.inc_by(dropped - counted);
        }
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

fn operation_label(operation: Operation) -> &'static str {
    match operation {
        Operation::Create => "create",
        Operation::Update => "update",
        Operation::Other => "other",
    }
}

pub(super) fn decision_label(reviewed: &Reviewed<'_>) -> &'static str {
    match (&reviewed.outcome.allowed, &reviewed.outcome.patch) {
        (false, _) => "denied",
        (true, Some(_)) => "patched",
        (true, None) => "allowed",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::admission;
    use crate::decide::Policy;

    /// A review of an SGLang Deployment without `--enable-metrics`, exempted by annotation.
    fn exempted_review() -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u1", "operation": "CREATE",
                "object": {"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "s", "annotations": {
                        "inference-webhook/ignore-rules": "metrics-disabled",
                        "inference-webhook/ignore-reason": "sidecar exporter"}},
                    "spec": {"template": {"spec": {"containers": [{"name": "s",
                        "image": "lmsysorg/sglang:latest",
                        "command": ["python3", "-m", "sglang.launch_server", "--port", "8000"]}]}}}}}
        }))
        .unwrap()
    }

    #[test]
    fn exempted_findings_are_counted_apart_from_violations() {
        let body = exempted_review();
        let reviewed =
            admission::review(&body, &Policy::default(), Mode::Enforce, Route::Mutate).unwrap();
        assert!(reviewed.outcome.allowed);
        let metrics = Metrics::new();
        metrics.observe_review(&reviewed, Mode::Enforce, Route::Mutate, 0.001);
        let text = metrics.encode();
        assert!(
            text.contains(
                r#"inference_webhook_exempted_violations_total{rule="metrics-disabled",level="deny"} 1"#
            ),
            "{text}"
        );
        assert!(
            !text.contains(r#"inference_webhook_violations_total{rule="metrics-disabled""#),
            "{text}"
        );
    }
}
