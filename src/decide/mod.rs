//! The admission engine: pure and synchronous. Given one object (and the old one on UPDATE) and
//! a policy, it returns a [`Decision`]: what runs in each pod template and why, the JSON Patch
//! that adds the monitoring labels and the named metrics port, and the rules that fired.
//! No I/O, no clock, no async: the server, the audit command and the tests all call [`decide`].

mod argv;
pub mod catalogue;
mod decision;
mod detect;
mod exemptions;
mod identity;
mod image;
mod json;
mod judge;
pub mod kinds;
mod labels;
mod overrides;
mod owners;
mod path;
mod plan;
mod policy;
mod rules;
mod templates;
mod unread;
mod workers;

pub use argv::KnownSources;
pub use decision::{Decision, Detection, Exemption, Finding, PatchOp, Strength, TemplateDecision};
pub use identity::{IdentityLabel, controller, default_sources as identity_sources};
pub use json::{Json, Object};
pub use kinds::Variant;
pub use overrides::{ENGINE_ANNOTATION, METRICS_PORT_ANNOTATION};
pub use policy::{
    DEFAULT_OPT_OUT_VALUE, Exemptions, LabelKeys, Policy, PolicyError, WorkloadIdentity,
};
pub use rules::{Level, RuleId};
pub(crate) use unread::Pruned;
pub use unread::{UNREAD_CONTAINER_MEMBERS, UNREAD_SPEC_MEMBERS};

use judge::{Context, Workload};

/// The engine's hash maps, keyed by what a manifest spells (env names, role names, paths):
/// foldhash is several times cheaper than SipHash on such short keys, and its per-process random
/// seed keeps colliding keys from being chosen in advance.
type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use plan::PatchBuilder;

/// The admission operation being reviewed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    /// DELETE and CONNECT: nothing to examine.
    Other,
}

impl Operation {
    pub fn parse(s: &str) -> Operation {
        match s {
            "CREATE" => Operation::Create,
            "UPDATE" => Operation::Update,
            _ => Operation::Other,
        }
    }
}

/// What the engine reviews.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    pub object: &'a Json<'a>,
    /// The object before an UPDATE.
    pub old_object: Option<&'a Json<'a>>,
    pub operation: Operation,
    /// ConfigMaps the front door knows (the audit command's other documents), for `envFrom`
    /// and `configMapKeyRef` variables; `None` in the webhook.
    pub known_env: Option<&'a KnownSources>,
}

/// Review one object under a policy.
pub fn decide(input: &Input<'_>, policy: &Policy) -> Decision {
    let object = input.object;
    let mut decision = Decision::default();
    let Some(kind) = kind_of(object) else {
        return decision;
    };
    decision.kind = Some(kind.kind);
    if input.operation == Operation::Other {
        decision.skipped = Some("only CREATE and UPDATE are reviewed".into());
        return decision;
    }
    let metadata = object.get("metadata");
    if skip(metadata, policy, &mut decision) {
        return decision;
    }
    let walk = templates::pod_templates(object, kind);
    if let Some(why) = overrides::not_an_engine(metadata, &walk.templates) {
        decision.skipped = Some(why);
        return decision;
    }
    let old = match (input.operation, input.old_object) {
        (Operation::Update, Some(old)) if kind_of(old).is_some_and(|k| std::ptr::eq(k, kind)) => {
            Some(templates::pod_templates(old, kind))
        }
        _ => None,
    };
    report_unreadable(&walk, old.as_ref(), policy, &mut decision.findings);
    let workload = workload_of(metadata, &walk.templates, policy);
    let namespace = metadata
        .and_then(|m| m.get("namespace"))
        .and_then(Json::as_str)
        .unwrap_or_default();
    decision.workload = workload.as_ref().map(|w| w.value.clone());
    let mut builder = PatchBuilder::new(object);
    let mut planned_ports = Vec::new();
    let known_env = input.known_env.map(|k| (k, namespace));
    let leaders = workers::Leaders::new(&walk.templates, known_env, policy);
    let several = walk.templates.len() > 1;
    for t in &walk.templates {
        let chosen = overrides::read(metadata, t, several, policy, &mut decision.findings);
        if chosen.not_an_engine() {
            decision.templates.push(overrides::not_an_engine_report(t));
            continue;
        }
        // Matched by identity (role and component names, variant), never by list position:
        // inserting a role in front changes no other role.
        let unchanged = old.as_ref().is_some_and(|old| {
            old.templates
                .iter()
                .any(|o| o.identity == t.identity && o.effective == t.effective)
        });
        let mut cx = Context {
            policy,
            known_env,
            leaders: Some(&leaders),
            workload: workload.as_ref(),
            may_patch: !unchanged,
            siblings: &walk.templates,
            planned_ports: &mut planned_ports,
            chosen: &chosen,
            builder: &mut builder,
            findings: &mut decision.findings,
        };
        decision.templates.push(judge::judge(t, &mut cx));
    }
    decision.patch = builder.into_ops();
    dedup_findings(&mut decision.findings);
    exemptions::apply(metadata, policy, &mut decision.findings);
    if kind.is_pod() {
        decision.findings = std::mem::take(&mut decision.findings)
            .into_iter()
            .map(Finding::on_a_pod)
            .collect();
    }
    decision
}

/// The decision on an object as if it were created now (the audit and the reporter judge what
/// exists), with the ConfigMaps of the same input for its `envFrom` and `configMapKeyRef`
/// variables.
pub fn decide_as_created(
    policy: &Policy,
    object: &serde_json::Value,
    known_env: Option<&KnownSources>,
) -> Decision {
    decide(
        &Input {
            object: &Json::from(object),
            old_object: None,
            operation: Operation::Create,
            known_env,
        },
        policy,
    )
}

/// Whether the object is not judged at all, with why in the decision: a handled object's
/// controller made it, it is being deleted, or it opted out.
fn skip(metadata: Option<&Json<'_>>, policy: &Policy, decision: &mut Decision) -> bool {
    if let Some(parent) = owners::handled_parent(metadata) {
        decision.skipped = Some(format!(
            "made by {parent}, whose review covers its pod templates"
        ));
        decision.child_of = Some(parent);
        return true;
    }
    decision.skipped = being_deleted(metadata).or_else(|| opted_out(metadata, policy));
    decision.skipped.is_some()
}

/// The places whose shape cannot be read; on an UPDATE, one the old object had already only
/// warns.
fn report_unreadable(
    walk: &templates::Walk<'_>,
    old: Option<&templates::Walk<'_>>,
    policy: &Policy,
    findings: &mut Vec<Finding>,
) {
    for (at, problem) in &walk.unreadable {
        let predates =
            old.is_some_and(|o| o.unreadable.iter().any(|(a, p)| a == at && p == problem));
        let f = policy.finding(
            RuleId::UnreadableTemplate,
            at.clone(),
            format!("{problem}; fix the manifest"),
            false,
        );
        findings.extend(f.map(|f| if predates { f.predating() } else { f }));
    }
}

/// Templates that share a layer (the leader and worker of one pattern) can find the same thing:
/// each finding is reported once.
fn dedup_findings(findings: &mut Vec<Finding>) {
    let mut seen = std::collections::HashSet::new();
    findings.retain(|f| seen.insert((f.rule, f.path.clone(), f.message.clone())));
}

/// An object the API server is deleting (a finalizer is being removed): never patched or denied,
/// so nothing this webhook says can leave it stuck Terminating.
fn being_deleted(metadata: Option<&Json<'_>>) -> Option<String> {
    metadata?
        .get("deletionTimestamp")
        .filter(|t| !t.is_null())
        .map(|_| "being deleted (metadata.deletionTimestamp is set)".to_string())
}

/// Every pod template of a handled object as its pods will see it (each variant's and
/// reference's patch merged over its base as the controller merges them), by display path.
/// Empty for an object of another kind.
pub fn effective_templates(object: &Json<'_>) -> Vec<(String, serde_json::Value)> {
    let Some(kind) = kind_of(object) else {
        return Vec::new();
    };
    templates::pod_templates(object, kind)
        .templates
        .iter()
        .map(|t| {
            (
                t.display.clone(),
                serde_json::Value::from(t.effective.as_ref()),
            )
        })
        .collect()
}

fn kind_of(object: &Json<'_>) -> Option<&'static kinds::KindSpec> {
    let api_version = object.get("apiVersion")?.as_str()?;
    let kind = object.get("kind")?.as_str()?;
    kinds::lookup(api_version, kind)
}

fn opted_out(metadata: Option<&Json<'_>>, policy: &Policy) -> Option<String> {
    let metadata = metadata?;
    let annotation = metadata
        .get("annotations")
        .and_then(|a| a.get(&policy.opt_out_annotation))
        .and_then(Json::as_str);
    if annotation.is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Some(format!(
            "opted out by annotation {}: \"true\"",
            policy.opt_out_annotation
        ));
    }
    let label = metadata
        .get("labels")
        .and_then(|l| l.get(&policy.opt_out_label))
        .and_then(Json::as_str);
    (label == Some(policy.opt_out_value.as_str())).then(|| {
        format!(
            "opted out by label {}: {}",
            policy.opt_out_label, policy.opt_out_value
        )
    })
}

/// The workload name, by the identity table (`identity`): a label naming the service on the
/// object or one of its pod templates, else the controlling owner's name (an owner kept only for
/// garbage collection names nothing), else the object's name, else its `generateName` stem.
fn workload_of(
    metadata: Option<&Json<'_>>,
    templates: &[templates::PodTemplate<'_>],
    policy: &Policy,
) -> Option<Workload> {
    let metadata = metadata?;
    let template_labels = templates
        .iter()
        .filter_map(|t| t.effective.get("metadata")?.get("labels"));
    let maps: Vec<&Json<'_>> = metadata
        .get("labels")
        .into_iter()
        .chain(template_labels)
        .collect();
    let name = identity::from_labels(&policy.workload_identity.labels, &maps)
        .or_else(|| identity::from_owner(metadata))
        .or_else(|| metadata.get("name").and_then(Json::as_str))
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .or_else(|| {
            metadata
                .get("generateName")
                .and_then(Json::as_str)
                .map(|g| g.trim_end_matches(['-', '.']).to_string())
                .filter(|g| !g.is_empty())
        })?;
    let (value, shortened) = labels::workload_value(&name);
    Some(Workload {
        value,
        shortened_from: shortened.then_some(name),
    })
}
