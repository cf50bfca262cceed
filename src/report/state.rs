//! What the reporter remembers: one small record per workload (never the object), grouped by
//! namespace, so reports and gauges can be rebuilt from it at any time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use crate::admission::Mode;
use crate::cluster::pods::{Reason, Standing, UnlabeledPod};
use crate::decide::{Decision, Level, Policy, RuleId};

/// How an inference workload stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Labeled, with the named metrics port: scraped.
    Monitored,
    /// An engine runs but the labels or the named port are missing: not scraped.
    Unmonitored,
    /// A deny-level rule fires and the namespace is in enforce mode: the webhook would reject
    /// it as it is.
    Denied,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Monitored => "monitored",
            State::Unmonitored => "unmonitored",
            State::Denied => "denied",
        }
    }
}

/// One rule that fired on a workload.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedFinding {
    pub rule: RuleId,
    pub level: Level,
    /// `path: message`, as the audit shows it. One copy per text in the [`Store`]: most
    /// workloads of a cluster carry the same few messages.
    pub message: Arc<str>,
    /// The reason given when the workload's annotations exempt this rule: the finding is kept
    /// (a `skip` result) but counts in no gauge and never makes the workload denied.
    pub exempted: Option<String>,
}

/// The record kept for one workload.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub api_version: String,
    pub kind: &'static str,
    /// Backend of the first detected engine, `none` when no engine runs.
    pub backend: &'static str,
    /// `None` for a workload that runs no inference engine. Set by the [`Store`], which knows
    /// the namespace's mode: `denied` only where the webhook would deny.
    pub state: Option<State>,
    /// The state where the webhook does not deny (warn and audit mode, or not opted in).
    pub state_if_admitted: Option<State>,
    /// An unexempted deny-level rule fires: in an enforce namespace the webhook rejects it.
    pub would_deny: bool,
    /// Set when the workload opted out: the reason, and nothing else is examined.
    pub skipped: Option<String>,
    pub findings: Vec<RecordedFinding>,
    /// How it stands for its pods (`Standing::Child`: made by another handled object's
    /// controller; such a record is kept, never reported, so that a pod's owner chain can be
    /// followed to its top workload).
    pub standing: Standing,
    /// Set for an inference pod that lacks the labels or the port (`crate::cluster::pods`):
    /// why. Counted in its own gauge, not as a workload.
    pub pod: Option<Reason>,
}

impl Record {
    /// Whether the workload shows up in reports and gauges: it runs an engine, a rule fired on
    /// it, or it opted out. Other workloads (most of a cluster) are only counted as seen.
    pub fn is_reported(&self) -> bool {
        self.state.is_some() || !self.findings.is_empty() || self.skipped.is_some()
    }
}

/// Decide on one object as `audit --cluster` does, and keep only what the reports need.
/// `None` for an object of a kind the engine does not handle, or one without a namespace, name
/// or uid. One a handled object's controller made is kept with only its parent (never
/// reported: the parent's record covers it).
pub fn evaluate(policy: &Policy, object: &Value) -> Option<Record> {
    let decision = crate::decide::decide_as_created(policy, object, None);
    let kind = decision.kind?;
    let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str);
    let mut record = Record {
        namespace: text("/metadata/namespace")?.to_string(),
        name: text("/metadata/name")?.to_string(),
        uid: text("/metadata/uid")?.to_string(),
        api_version: text("/apiVersion")?.to_string(),
        kind,
        backend: "none",
        state: None,
        state_if_admitted: None,
        would_deny: false,
        skipped: None,
        findings: Vec::new(),
        standing: Standing::of(&decision),
        pod: None,
    };
    if decision.child_of.is_some() {
        return Some(record);
    }
    let findings: Vec<RecordedFinding> = decision
        .reported_findings()
        .into_iter()
        .map(|f| RecordedFinding {
            rule: f.rule,
            level: f.level,
            message: format!("{}: {}", f.path, f.message).into(),
            exempted: f.exemption.as_ref().map(|e| e.reason.clone()),
        })
        .collect();
    let state = state(&decision);
    record.backend = decision.detected_backend().unwrap_or("none");
    record.state = state;
    record.state_if_admitted = state;
    record.would_deny = findings
        .iter()
        .any(|f| f.level == Level::Deny && f.exempted.is_none());
    record.skipped = decision.skipped_reason().map(str::to_string);
    record.findings = findings;
    Some(record)
}

/// The record of an inference pod that lacks the labels or the port: unmonitored, with one
/// warn-level `monitoring-labels-missing` finding that says why and what to do.
pub fn pod_record(pod: UnlabeledPod) -> Record {
    let message = format!(
        "{}: {} (workload {}; lacks {})",
        pod.reason.as_str(),
        pod.advice,
        pod.workload,
        pod.lacks.join(", ")
    );
    Record {
        namespace: pod.namespace,
        name: pod.name,
        uid: pod.uid,
        api_version: "v1".to_string(),
        kind: "Pod",
        backend: pod.backend,
        state: Some(State::Unmonitored),
        state_if_admitted: Some(State::Unmonitored),
        would_deny: false,
        skipped: None,
        findings: vec![RecordedFinding {
            rule: RuleId::MonitoringLabelsMissing,
            level: Level::Warn,
            message: message.into(),
            exempted: None,
        }],
        standing: Standing::Other,
        pod: Some(pod.reason),
    }
}

fn state(decision: &Decision) -> Option<State> {
    let inference = decision.templates.iter().any(|t| !t.detections.is_empty());
    // The engine's patch adds exactly the missing labels and named port.
    match (inference, decision.patch.is_empty()) {
        (false, _) => None,
        (true, true) => Some(State::Monitored),
        (true, false) => Some(State::Unmonitored),
    }
}

struct Entry {
    /// Which watch last wrote it (a kind served in two versions is watched twice).
    watch: usize,
    /// What the verdict was made from ([`Store::apply_seen`]), to skip an unchanged object.
    seen: Option<u64>,
    record: Record,
}

/// A change to the store: what the gauges must drop and add.
#[derive(Debug, Default, PartialEq)]
pub struct Change {
    pub removed: Option<Record>,
    pub added: Option<Record>,
}

impl Change {
    pub fn is_noop(&self) -> bool {
        self.removed == self.added
    }

    /// The namespace whose report this change touches.
    pub fn namespace(&self) -> Option<&str> {
        self.added
            .as_ref()
            .or(self.removed.as_ref())
            .map(|v| v.namespace.as_str())
    }
}

/// Verdicts by namespace and uid, and the mode of each namespace that opted in.
#[derive(Default)]
pub struct Store {
    /// Entries are boxed: a map's table grows by doubling, so up to half of its slots are
    /// empty, and an empty slot then costs a pointer instead of a whole entry.
    namespaces: BTreeMap<String, HashMap<String, Box<Entry>>>,
    modes: HashMap<String, Mode>,
    messages: Messages,
}

/// The finding messages the records hold, one copy of each text.
#[derive(Default)]
struct Messages {
    texts: HashSet<Arc<str>>,
    /// How many texts were left by the last sweep of those no record holds any more.
    swept: usize,
}

impl Messages {
    /// Point the record's messages at the shared copies.
    fn share(&mut self, record: &mut Record) {
        for finding in &mut record.findings {
            match self.texts.get(&*finding.message) {
                Some(text) => finding.message = text.clone(),
                None => {
                    self.texts.insert(finding.message.clone());
                }
            }
        }
        // Texts of changed or deleted workloads go once the set has doubled: amortized O(1).
        if self.texts.len() > 2 * self.swept + 64 {
            self.texts.retain(|text| Arc::strong_count(text) > 1);
            self.swept = self.texts.len();
        }
    }
}

/// `record` in a namespace that is (or is not) in enforce mode.
fn settle(mut record: Record, enforced: bool) -> Record {
    record.state = match record.would_deny && enforced {
        true => Some(State::Denied),
        false => record.state_if_admitted,
    };
    record
}

impl Store {
    /// The namespace's mode changed (`None`: not opted in, or deleted): the states of its
    /// workloads follow.
    pub fn set_mode(&mut self, namespace: &str, mode: Option<Mode>) -> Vec<Change> {
        let before = self.modes.get(namespace).copied();
        match mode {
            Some(mode) => self.modes.insert(namespace.to_string(), mode),
            None => self.modes.remove(namespace),
        };
        if before == mode {
            return Vec::new();
        }
        let enforced = mode == Some(Mode::Enforce);
        let entries = self
            .namespaces
            .get_mut(namespace)
            .into_iter()
            .flat_map(HashMap::values_mut);
        entries
            .filter_map(|entry| {
                let settled = settle(entry.record.clone(), enforced);
                (settled != entry.record).then(|| Change {
                    removed: Some(std::mem::replace(&mut entry.record, settled.clone())),
                    added: Some(settled),
                })
            })
            .collect()
    }

    /// Keep the record a watch made. A workload served in several versions is kept once:
    /// the watch of the earlier table row (the newer version) owns it.
    pub fn apply(&mut self, watch: usize, record: Record) -> Change {
        self.apply_seen(watch, record, None)
    }

    /// [`Store::apply`], remembering `seen`: a fingerprint of what the verdict depends on.
    pub fn apply_seen(&mut self, watch: usize, mut record: Record, seen: Option<u64>) -> Change {
        self.messages.share(&mut record);
        let enforced = self.modes.get(&record.namespace) == Some(&Mode::Enforce);
        let record = settle(record, enforced);
        let entries = self.namespaces.entry(record.namespace.clone()).or_default();
        match entries.get_mut(&record.uid) {
            Some(entry) if entry.watch < watch => Change::default(),
            Some(entry) => {
                entry.watch = watch;
                entry.seen = seen;
                let old = std::mem::replace(&mut entry.record, record.clone());
                Change {
                    removed: Some(old),
                    added: Some(record),
                }
            }
            None => {
                entries.insert(
                    record.uid.clone(),
                    Box::new(Entry {
                        watch,
                        seen,
                        record: record.clone(),
                    }),
                );
                Change {
                    removed: None,
                    added: Some(record),
                }
            }
        }
    }

    /// Whether the workload was judged by `watch` from what `seen` fingerprints: then an event
    /// for it changes no verdict.
    pub fn unchanged(&self, namespace: &str, uid: &str, watch: usize, seen: u64) -> bool {
        self.namespaces
            .get(namespace)
            .and_then(|entries| entries.get(uid))
            .is_some_and(|e| e.watch == watch && e.seen == Some(seen))
    }

    /// Forget a deleted workload.
    pub fn delete(&mut self, namespace: &str, uid: &str) -> Change {
        let Some(entries) = self.namespaces.get_mut(namespace) else {
            return Change::default();
        };
        let removed = entries.remove(uid).map(|e| e.record);
        if entries.is_empty() {
            self.namespaces.remove(namespace);
        }
        Change {
            removed,
            added: None,
        }
    }

    /// After a watch re-listed everything: forget what it owned and no longer saw (deleted
    /// while the watch was down).
    pub fn retain_listed(&mut self, watch: usize, listed: &HashSet<String>) -> Vec<Change> {
        let gone: Vec<(String, String)> = self
            .namespaces
            .iter()
            .flat_map(|(ns, entries)| {
                entries
                    .iter()
                    .filter(|(uid, e)| e.watch == watch && !listed.contains(*uid))
                    .map(move |(uid, _)| (ns.clone(), uid.clone()))
            })
            .collect();
        gone.iter().map(|(ns, uid)| self.delete(ns, uid)).collect()
    }

    /// How the handled object `kind`/`name` of a namespace stands, for a pod's owner chain.
    pub fn standing(&self, namespace: &str, kind: &str, name: &str) -> Option<Standing> {
        let record = self
            .namespaces
            .get(namespace)?
            .values()
            .map(|e| &e.record)
            .find(|r| r.pod.is_none() && r.kind == kind && r.name == name)?;
        Some(record.standing.clone())
    }

    /// Whether a namespace carries the opt-in label.
    pub fn opted_in(&self, namespace: &str) -> bool {
        self.modes.contains_key(namespace)
    }

    /// The reported workloads of one namespace, in a stable order.
    pub fn reported_in(&self, namespace: &str) -> Vec<&Record> {
        let mut out: Vec<&Record> = self
            .namespaces
            .get(namespace)
            .into_iter()
            .flat_map(|entries| entries.values().map(|e| &e.record))
            .filter(|v| v.is_reported())
            .collect();
        out.sort_by(|a, b| (a.kind, &a.name, &a.uid).cmp(&(b.kind, &b.name, &b.uid)));
        out
    }

    /// Workloads held, in all namespaces.
    pub fn len(&self) -> usize {
        self.namespaces.values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.namespaces.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(uid: &str, message: &str) -> Record {
        Record {
            namespace: "ml".into(),
            name: uid.into(),
            uid: uid.into(),
            api_version: "apps/v1".into(),
            kind: "Deployment",
            backend: "vllm",
            state: Some(State::Unmonitored),
            state_if_admitted: Some(State::Unmonitored),
            would_deny: false,
            skipped: None,
            findings: vec![RecordedFinding {
                rule: RuleId::MonitoringLabelsMissing,
                level: Level::Warn,
                message: message.into(),
                exempted: None,
            }],
            standing: Standing::Other,
            pod: None,
        }
    }

    fn message_of(store: &Store, uid: &str) -> Arc<str> {
        let entry = &store.namespaces["ml"][uid];
        entry.record.findings[0].message.clone()
    }

    #[test]
    fn records_share_one_copy_of_a_text_and_unused_texts_are_swept() {
        let mut store = Store::default();
        store.apply(0, record("a", "lacks labels"));
        store.apply(0, record("b", "lacks labels"));
        assert!(Arc::ptr_eq(
            &message_of(&store, "a"),
            &message_of(&store, "b")
        ));
        // A workload whose text changes again and again leaves no trail of old texts.
        for i in 0..1000 {
            store.apply(0, record("c", &format!("text {i}")));
        }
        assert!(
            store.messages.texts.len() <= 2 * 3 + 64,
            "{}",
            store.messages.texts.len()
        );
        assert_eq!(&*message_of(&store, "c"), "text 999");
        assert_eq!(&*message_of(&store, "a"), "lacks labels");
    }
}
