//! Policy reports in the ecosystem's formats, built from the records of one namespace:
//! `wgpolicyk8s.io/v1alpha2` PolicyReport and `openreports.io/v1alpha1` Report share the
//! result and summary shapes. One result per workload and rule that fired; a monitored
//! workload on which nothing fired gets one `pass`; an opted-out one gets one `skip`, and so
//! does a finding the workload's annotations exempt.

use serde_json::{Value, json};

use crate::engine::{Level, RuleId};

use super::state::{Record, State};

/// Name of the report object in every namespace.
pub const REPORT_NAME: &str = "inference-webhook";
/// `policy` of every result, and the `source` Policy Reporter groups by.
pub const POLICY: &str = "inference-webhook";
/// Label on every report written, to find them again after a restart.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "inference-webhook");

/// A report format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
}

pub const POLICY_REPORT: Format = Format {
    group: "wgpolicyk8s.io",
    version: "v1alpha2",
    kind: "PolicyReport",
    plural: "policyreports",
};

pub const OPEN_REPORT: Format = Format {
    group: "openreports.io",
    version: "v1alpha1",
    kind: "Report",
    plural: "reports",
};

impl Format {
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }
}

/// The result value a finding maps to.
fn result_of(level: Level) -> &'static str {
    match level {
        Level::Deny => "fail",
        Level::Warn | Level::Allow => "warn",
    }
}

fn severity_of(level: Level) -> &'static str {
    match level {
        Level::Deny => "high",
        Level::Warn | Level::Allow => "medium",
    }
}

/// The whole report object for a namespace (for a server-side apply).
pub fn build(format: Format, namespace: &str, records: &[&Record], seconds: i64) -> Value {
    let results: Vec<Value> = records
        .iter()
        .flat_map(|v| results_of(v, seconds))
        .collect();
    let mut summary = json!({"pass": 0, "fail": 0, "warn": 0, "error": 0, "skip": 0});
    for r in &results {
        if let Some(key) = r.get("result").and_then(Value::as_str)
            && let Some(n) = summary.get_mut(key)
        {
            *n = json!(n.as_u64().unwrap_or(0) + 1);
        }
    }
    json!({
        "apiVersion": format.api_version(),
        "kind": format.kind,
        "metadata": {
            "name": REPORT_NAME,
            "namespace": namespace,
            "labels": {MANAGED_BY.0: MANAGED_BY.1},
        },
        "results": results,
        "summary": summary,
    })
}

fn results_of(record: &Record, seconds: i64) -> Vec<Value> {
    let resource = json!([{
        "apiVersion": record.api_version,
        "kind": record.kind,
        "name": record.name,
        "namespace": record.namespace,
        "uid": record.uid,
    }]);
    let result = |rule: &str, result: &str, severity: &str, message: &str| {
        json!({
            "policy": POLICY,
            "rule": rule,
            "result": result,
            "severity": severity,
            "scored": true,
            "source": POLICY,
            "category": "Observability",
            "message": message,
            "resources": resource,
            "properties": {"backend": record.backend},
            "timestamp": {"seconds": seconds, "nanos": 0},
        })
    };
    if let Some(reason) = &record.skipped {
        return vec![result(
            RuleId::MonitoringLabelsMissing.as_str(),
            "skip",
            "info",
            reason,
        )];
    }
    if record.findings.is_empty() && record.state == Some(State::Monitored) {
        return vec![result(
            RuleId::MonitoringLabelsMissing.as_str(),
            "pass",
            "info",
            "labeled for monitoring, with the named metrics port",
        )];
    }
    record
        .findings
        .iter()
        .map(|f| match &f.exempted {
            Some(reason) => result(
                f.rule.as_str(),
                "skip",
                severity_of(f.level),
                &format!("{} (exempted: {reason})", f.message),
            ),
            None => result(
                f.rule.as_str(),
                result_of(f.level),
                severity_of(f.level),
                &f.message,
            ),
        })
        .collect()
}
