//! The report's section on inference pods that lack the labels or the port, grouped by
//! namespace, workload and reason (the same identity the engine names workloads by).

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use crate::cluster::pods::{Reason, UnlabeledPod};

/// The pods of one workload that lack the labels for one reason.
#[derive(Serialize)]
pub(super) struct Group<'a> {
    pub namespace: &'a str,
    pub workload: &'a str,
    pub reason: Reason,
    pub advice: &'a str,
    pub count: usize,
    pub pods: Vec<Entry<'a>>,
}

#[derive(Serialize)]
pub(super) struct Entry<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<&'a str>,
    pub backend: &'a str,
    pub lacks: &'a [String],
}

/// The groups, by namespace, workload, reason and advice; pods by name within each.
pub(super) fn groups(pods: &[UnlabeledPod]) -> Vec<Group<'_>> {
    let mut by: BTreeMap<(&str, &str, Reason, &str), Vec<&UnlabeledPod>> = BTreeMap::new();
    for pod in pods {
        let key = (
            pod.namespace.as_str(),
            pod.workload.as_str(),
            pod.reason,
            pod.advice.as_str(),
        );
        by.entry(key).or_default().push(pod);
    }
    by.into_iter()
        .map(|((namespace, workload, reason, advice), mut members)| {
            members.sort_by(|a, b| a.name.cmp(&b.name));
            Group {
                namespace,
                workload,
                reason,
                advice,
                count: members.len(),
                pods: members
                    .into_iter()
                    .map(|p| Entry {
                        name: &p.name,
                        owner: p.owner.as_deref(),
                        backend: p.backend,
                        lacks: &p.lacks,
                    })
                    .collect(),
            }
        })
        .collect()
}

/// The table's section: one block per group, one line per pod.
pub(super) fn write_table(out: &mut impl Write, pods: &[UnlabeledPod]) -> io::Result<()> {
    if pods.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "\nInference pods lacking the labels or the port ({}), by workload:",
        pods.len()
    )?;
    for g in groups(pods) {
        let plural = if g.count == 1 { "" } else { "s" };
        writeln!(
            out,
            "  {}/{}: {} pod{plural}, {}",
            g.namespace,
            g.workload,
            g.count,
            g.reason.as_str()
        )?;
        writeln!(out, "    what to do: {}", g.advice)?;
        for p in &g.pods {
            let owner = p.owner.map(|o| format!(" ({o})")).unwrap_or_default();
            writeln!(
                out,
                "    {}{owner}: {}, lacks {}",
                p.name,
                p.backend,
                p.lacks.join(", ")
            )?;
        }
    }
    Ok(())
}
