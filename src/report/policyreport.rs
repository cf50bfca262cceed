//! Policy reports in the ecosystem's formats, built from the records of one namespace:
//! `wgpolicyk8s.io/v1alpha2` PolicyReport and `openreports.io/v1alpha1` Report share the
//! result and summary shapes. One result per workload and rule that fired; a monitored
//! workload on which nothing fired gets one `pass`; an opted-out one gets one `skip`, and so
//! does a finding the workload's annotations exempt. A namespace's results are split over
//! reports of at most [`MAX_REPORT_BYTES`], so that none grows past the API server's limit.

use serde_json::{Value, json};

use crate::decide::{Level, RuleId};

use super::state::{Record, State};

/// Name of the (first) report object in every namespace.
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
        Level::Warn | Level::Off => "warn",
    }
}

fn severity_of(level: Level) -> &'static str {
    match level {
        Level::Deny => "high",
        Level::Warn | Level::Off => "medium",
    }
}

/// Largest serialized size of one report. etcd refuses a request over 1.5 MiB and the API
/// server adds `managedFields`, so a namespace's results are split well below that.
pub const MAX_REPORT_BYTES: usize = 512 * 1024;

/// Room kept for a report's envelope (metadata, summary) within [`MAX_REPORT_BYTES`].
const ENVELOPE_BYTES: usize = 2 * 1024;

/// The name of a namespace's `index`th report: `inference-webhook`, then
/// `inference-webhook-2`, `inference-webhook-3`, ...
pub fn report_name(index: usize) -> String {
    match index {
        0 => REPORT_NAME.to_string(),
        _ => format!("{REPORT_NAME}-{}", index + 1),
    }
}

/// The index of a report named by [`report_name`].
pub fn report_index(name: &str) -> Option<usize> {
    match name.strip_prefix(REPORT_NAME)? {
        "" => Some(0),
        rest => rest
            .strip_prefix('-')?
            .parse::<usize>()
            .ok()?
            .checked_sub(1),
    }
}

/// The report objects of a namespace (for server-side applies): its results in order, a
/// workload's results kept together, split so that no report exceeds [`MAX_REPORT_BYTES`].
/// None for a namespace without results.
pub fn build(format: Format, namespace: &str, records: &[&Record], seconds: i64) -> Vec<Value> {
    let mut chunks: Vec<Vec<Value>> = Vec::new();
    let mut size = 0;
    for record in records {
        let results = results_of(record, seconds);
        let bytes: usize = results
            .iter()
            .map(|r| serde_json::to_vec(r).map_or(0, |b| b.len() + 1))
            .sum();
        match chunks.last_mut() {
            Some(chunk) if size + bytes <= MAX_REPORT_BYTES - ENVELOPE_BYTES => {
                chunk.extend(results);
                size += bytes;
            }
            _ => {
                chunks.push(results);
                size = bytes;
            }
        }
    }
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, results)| report(format, namespace, &report_name(i), results))
        .collect()
}

fn report(format: Format, namespace: &str, name: &str, results: Vec<Value>) -> Value {
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
            "name": name,
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
