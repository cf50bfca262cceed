//! Judge one pod template: detect engines in its containers, apply the rules, and plan the
//! labels and the named metrics port.

use serde_json::{Value, json};

use super::Map;
use super::argv::KnownSources;
use super::catalogue::{COLLECTOR_PATH, family_of};
use super::decision::{Detection, Finding, Strength, TemplateDecision};
use super::detect::{Found, Seen, detect};
use super::json::{Json, Object};
use super::kinds::Variant;
use super::overrides::Chosen;
use super::path::{self, Path, Tok};
use super::plan::{Blocked, PatchBuilder};
use super::policy::Policy;
use super::rules::{Level, RuleId};
use super::templates::{Layer, PodTemplate};
use super::workers::LeaderEngines;

/// The workload label value for an object, and whether it had to be shortened.
#[derive(Clone, Debug)]
pub(super) struct Workload {
    pub value: String,
    pub shortened_from: Option<String>,
}

/// A named port the plan adds: the layer it goes into, its container, and its number. A pod
/// template sees every port planned into any of its layers.
#[derive(Debug)]
pub(super) struct PlannedPort {
    layer: Path,
    container: String,
    port: u16,
}

/// What the judge needs besides the template.
pub(super) struct Context<'p, 'b, 'd> {
    pub policy: &'p Policy,
    /// ConfigMaps the front door knows, and the object's namespace.
    pub known_env: Option<(&'b KnownSources, &'b str)>,
    pub workload: Option<&'b Workload>,
    /// False on an UPDATE that leaves this template as it was: report, don't patch, don't deny.
    pub may_patch: bool,
    /// Every pod template of the object: a port planned into a layer that others share must
    /// fit each of them.
    pub siblings: &'b [PodTemplate<'d>],
    /// The named ports planned so far for the object's templates.
    pub planned_ports: &'b mut Vec<PlannedPort>,
    /// The owner's override annotations for this template.
    pub chosen: &'b Chosen,
    /// The engines other templates of the object serve, which a worker there joins.
    pub leaders: Option<&'b dyn LeaderEngines>,
    pub builder: &'b mut PatchBuilder<'d>,
    pub findings: &'b mut Vec<Finding>,
}

impl Context<'_, '_, '_> {
    fn find(&mut self, rule: RuleId, path: String, message: String) {
        self.find_fixed(rule, path, message, false);
    }

    fn find_fixed(&mut self, rule: RuleId, path: String, message: String, fixed_by_patch: bool) {
        if let Some(f) = self.policy.finding(rule, path, message, fixed_by_patch) {
            self.push(f);
        }
    }

    /// Every finding lands here: on a template the request leaves unchanged it never denies.
    fn push(&mut self, f: Finding) {
        self.findings
            .push(if self.may_patch { f } else { f.predating() });
    }

    /// A finding that rests on a detection: when the detection is a guess (`guess` says why),
    /// a deny-level rule is reported at warn, so no valid workload is rejected on a guess.
    fn find_unless_guess(
        &mut self,
        rule: RuleId,
        path: String,
        message: String,
        guess: Option<&str>,
    ) {
        let Some(mut f) = self.policy.finding(rule, path, message, false) else {
            return;
        };
        if let Some(why) = guess
            && f.level == Level::Deny
        {
            f.level = Level::Warn;
            f.message = format!("(not denied: {why}) {}", f.message);
        }
        self.push(f);
    }
}

/// Why an image-only detection is a guess, and how to make it certain.
const IMAGE_GUESS: &str = "engine inferred from the image name only; set the container's command \
                           to the engine's program to make it certain";

/// Why a worker joined to another template's engine is not certain.
const LEADER_GUESS: &str = "engine inferred from the leader another template of this object runs";

struct Container<'t> {
    name: String,
    /// Display path, in the layer that defines the container when there is one.
    display: String,
    found: Found,
    slot: Slot<'t>,
}

/// The pod-spec lists whose containers run for the pod's life: the containers, and the init
/// containers that are native sidecars (`restartPolicy: Always`, GA in Kubernetes 1.33).
const CONTAINERS: &str = "containers";
const INIT_CONTAINERS: &str = "initContainers";

/// One container of the pod, in its list.
#[derive(Clone, Copy)]
struct Slot<'t> {
    list: &'static str,
    index: usize,
    value: &'t Json<'t>,
}

/// A pod template under judgement, once its shape is read: its containers and native sidecars,
/// its labels, and the containers that run an engine.
struct Judged<'t, 'a> {
    template: &'t PodTemplate<'a>,
    containers: Vec<Slot<'t>>,
    labels: &'t Object<'a>,
    names: LayerNames<'a>,
    found: Vec<Container<'t>>,
}

/// Judge one pod template, in phases: its shape, detection, the engine rules, the backend label
/// rules, the metrics rules, and the patch plan.
pub(super) fn judge(t: &PodTemplate<'_>, cx: &mut Context<'_, '_, '_>) -> TemplateDecision {
    let mut report = TemplateDecision::empty(t.display.clone(), t.role.clone(), t.variant);
    let Some(mut j) = read_shape(t, cx) else {
        return report;
    };
    j.found = detect_containers(&j, cx);
    report.detections = j.found.iter_mut().map(Container::detection).collect();
    judge_engines(&j, cx);
    let supported: Vec<&Container<'_>> = j
        .found
        .iter()
        .filter(|c| cx.policy.supports(c.found.spec.backend))
        .collect();
    let primary = supported
        .iter()
        .copied()
        .find(|c| !c.found.worker_only)
        .or_else(|| supported.first().copied());
    let labels = judge_backend_labels(&j, primary, cx);
    let Some(primary) = primary else {
        return report;
    };
    report.backend = Some(labels.backend(primary).to_string());
    // A backend label never makes an image-only guess certain: the webhook writes that label
    // itself from the guess, so trusting it would deny the next update of what it admitted.
    judge_metrics(&supported, cx);
    find_second_engines(&supported, primary, cx);
    if let Some(Ok(p)) = primary.found.port {
        report.metrics_port = Some(p);
    }
    plan_monitoring(&j, primary, &labels, cx);
    report
}

/// The template's containers and labels, or why they cannot be read (reported).
fn read_shape<'t, 'a>(
    t: &'t PodTemplate<'a>,
    cx: &mut Context<'_, '_, '_>,
) -> Option<Judged<'t, 'a>> {
    let eff = t.effective.as_ref();
    match eff.get("spec").and_then(|s| s.get(CONTAINERS)) {
        Some(Json::Array(_) | Json::Null) | None => {}
        Some(_) => {
            cx.find(
                RuleId::UnreadableTemplate,
                format!("{}.spec.containers", t.display),
                "is not a list of containers; fix the manifest".into(),
            );
            return None;
        }
    };
    const NO_LABELS: &Object<'static> = &Object::new();
    let labels = match eff.get("metadata").and_then(|m| m.get("labels")) {
        Some(Json::Object(m)) => m,
        None | Some(Json::Null) => NO_LABELS,
        Some(_) => {
            cx.find(
                RuleId::UnreadableTemplate,
                path::display(&t.labels_at),
                "is not a map of labels; fix the manifest".into(),
            );
            return None;
        }
    };
    Some(Judged {
        template: t,
        containers: pod_containers(eff),
        labels,
        names: LayerNames::of(t),
        found: Vec::new(),
    })
}

/// The containers of a pod template and its native sidecars, in that order.
fn pod_containers<'t>(template: &'t Json<'_>) -> Vec<Slot<'t>> {
    let spec = template.get("spec");
    let list = |key| spec.and_then(|s| s.get(key)).and_then(Json::as_array);
    let containers = list(CONTAINERS).into_iter().flatten().enumerate();
    let sidecars = list(INIT_CONTAINERS)
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, c)| c.get("restartPolicy").and_then(Json::as_str) == Some("Always"));
    containers
        .map(|(index, value)| (CONTAINERS, index, value))
        .chain(sidecars.map(|(index, value)| (INIT_CONTAINERS, index, value)))
        .map(|(list, index, value)| Slot { list, index, value })
        .collect()
}

/// The containers that run an engine, with where each is written.
fn detect_containers<'t>(j: &Judged<'t, '_>, cx: &mut Context<'_, '_, '_>) -> Vec<Container<'t>> {
    let t = j.template;
    let mut found = Vec::new();
    let base = Seen {
        worker_variant: t.variant == Some(Variant::Worker),
        known: cx.known_env,
        volumes: t.effective.get("spec").and_then(|s| s.get("volumes")),
        port_name: &cx.policy.port_name,
        chosen: None,
        leaders: cx.leaders,
    };
    // Which container the owner's annotations speak of: none to look for on most templates.
    let target = (!cx.chosen.is_empty()).then(|| {
        let values: Vec<&Json<'_>> = j.containers.iter().map(|s| s.value).collect();
        cx.chosen.target(&values, t, base)
    });
    let target = target.flatten();
    for (i, &slot) in j.containers.iter().enumerate() {
        let c = slot.value;
        if !c.is_object() {
            cx.find(
                RuleId::UnreadableTemplate,
                format!("{}.spec.{}[{}]", t.display, slot.list, slot.index),
                "is not a container object; fix the manifest".into(),
            );
            continue;
        }
        let seen = Seen {
            chosen: (target == Some(i)).then_some(cx.chosen),
            ..base
        };
        let Some(f) = detect(c, seen) else { continue };
        let name = c
            .get("name")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string();
        let display = match locate(t, &j.names, &name, slot) {
            Some(Located::At(p, _, _)) => path::display(&p),
            _ => format!("{} container {name:?}", t.display),
        };
        found.push(Container {
            name,
            display,
            found: f,
            slot,
        });
    }
    found
}

impl Container<'_> {
    /// What the report shows of the detection; the evidence moves there (no rule reads it).
    fn detection(&mut self) -> Detection {
        Detection {
            container: self.name.clone(),
            path: self.display.clone(),
            engine: self.found.spec.id,
            backend: self.found.spec.backend,
            strength: self.found.strength,
            worker_only: self.found.worker_only,
            metrics_port: self
                .found
                .port
                .as_ref()
                .and_then(|p| p.as_ref().ok().copied()),
            metrics_path: self.found.spec.metrics_path,
            evidence: std::mem::take(&mut self.found.evidence),
        }
    }

    /// Why a rule resting on this detection must not deny, when the detection is a guess.
    fn guess(&self) -> Option<&'static str> {
        match self.found.strength {
            Strength::Image => Some(IMAGE_GUESS),
            Strength::Leader => Some(LEADER_GUESS),
            _ => None,
        }
    }
}

/// One engine per template, and only supported engines are labeled.
fn judge_engines(j: &Judged<'_, '_>, cx: &mut Context<'_, '_, '_>) {
    let mut families: Vec<&str> = j.found.iter().map(|c| c.found.spec.family).collect();
    families.dedup();
    if families.len() > 1 {
        let names: Vec<String> = j
            .found
            .iter()
            .map(|c| format!("{} ({})", c.name, c.found.spec.name))
            .collect();
        cx.find(
            RuleId::MixedEngines,
            j.template.display.clone(),
            format!(
                "runs different engines: {}; run one engine per pod template so one backend label fits",
                names.join(", ")
            ),
        );
    }
    let mut reported = Vec::new();
    for c in j
        .found
        .iter()
        .filter(|c| !cx.policy.supports(c.found.spec.backend))
    {
        if !reported.contains(&c.found.spec.backend) {
            reported.push(c.found.spec.backend);
            cx.find(
                RuleId::EngineNotSupported,
                c.display.clone(),
                format!(
                    "runs {} (backend {:?}), not in supportedBackends; not labeled (add it there to label it)",
                    c.found.spec.name, c.found.spec.backend
                ),
            );
        }
    }
}

/// The backend labels the user wrote, as judged.
struct BackendLabels<'t, 'a> {
    canonical: Option<&'t Json<'a>>,
    legacy: Option<&'t Json<'a>>,
    /// Neither names an unsupported backend or another engine than the one detected.
    ok: bool,
}

impl BackendLabels<'_, '_> {
    /// The backend the template is labeled with: the user's canonical label when it is right,
    /// else the detected engine's.
    fn backend<'s>(&'s self, primary: &Container<'_>) -> &'s str {
        self.canonical
            .and_then(Json::as_str)
            .filter(|_| self.ok)
            .unwrap_or(primary.found.spec.backend)
    }

    /// The value of a backend label to add, when the canonical one is missing.
    fn missing(&self, primary: &Container<'_>) -> Option<String> {
        self.canonical.is_none().then(|| {
            self.legacy
                .and_then(Json::as_str)
                .filter(|_| self.ok)
                .unwrap_or(primary.found.spec.backend)
                .to_string()
        })
    }
}

/// Check the backend labels against the policy and the detected engine.
fn judge_backend_labels<'t, 'a>(
    j: &Judged<'t, 'a>,
    primary: Option<&Container<'_>>,
    cx: &mut Context<'_, '_, '_>,
) -> BackendLabels<'t, 'a> {
    let t = j.template;
    let policy = cx.policy;
    let keys = &policy.labels;
    let mut labels = BackendLabels {
        canonical: j.labels.get(&keys.backend),
        legacy: j.labels.get(&keys.legacy_backend),
        ok: true,
    };
    let judged_engine = primary.or(j.found.first());
    for (key, value) in [
        (&keys.backend, labels.canonical),
        (&keys.legacy_backend, labels.legacy),
    ] {
        let Some(value) = value else { continue };
        let at = path::display(&path::key(&t.labels_at, key.clone()));
        let Some(value) = value.as_str() else {
            cx.find(RuleId::UnreadableTemplate, at, "is not a string".into());
            labels.ok = false;
            continue;
        };
        if !policy.supports(value) {
            labels.ok = false;
            let suggestion = primary.map_or_else(
                || format!("one of {}", policy.supported_backends.join(", ")),
                |p| format!("{:?}", p.found.spec.backend),
            );
            cx.find(
                RuleId::BackendUnsupported,
                at,
                format!(
                    "{value:?} is not a supported backend ({}); set it to {suggestion}",
                    policy.supported_backends.join(", ")
                ),
            );
        } else if let Some(e) = judged_engine
            && family_of(value) != e.found.spec.family
        {
            labels.ok = false;
            cx.find_unless_guess(
                RuleId::BackendMismatch,
                at,
                format!(
                    "says {value:?} but container {:?} runs {}; set it to {:?}",
                    e.name, e.found.spec.name, e.found.spec.backend
                ),
                e.guess(),
            );
        }
    }
    if labels.legacy.is_some() && labels.canonical.is_none() {
        cx.find(
            RuleId::LegacyBackendLabel,
            path::display(&path::key(&t.labels_at, keys.legacy_backend.clone())),
            format!(
                "legacy key; {} is added beside it (keep both until dashboards use it)",
                keys.backend
            ),
        );
    }
    labels
}

/// Plan what the template lacks (the two labels, the named port on the engine container), or
/// report why it is not added.
fn plan_monitoring(
    j: &Judged<'_, '_>,
    primary: &Container<'_>,
    labels: &BackendLabels<'_, '_>,
    cx: &mut Context<'_, '_, '_>,
) {
    let t = j.template;
    let keys = &cx.policy.labels;
    let mut missing: Vec<(String, Value)> = Vec::new();
    if !j.labels.contains_key(&keys.workload)
        && let Some(w) = cx.workload
    {
        missing.push((keys.workload.clone(), json!(w.value)));
    }
    if let Some(value) = labels.missing(primary) {
        missing.push((keys.backend.clone(), json!(value)));
    }
    let port_plan = match primary.found.port {
        Some(Ok(p)) if !primary.found.worker_only => plan_port(j, primary, p, cx),
        _ => None,
    };
    if missing.is_empty() && port_plan.is_none() {
        return;
    }
    let mut what: Vec<String> = missing.iter().map(|(k, _)| format!("label {k}")).collect();
    if let Some(p) = &port_plan {
        what.push(format!("port {:?} ({})", cx.policy.port_name, p.port));
    }
    if !cx.may_patch {
        cx.find(
            RuleId::UpdateNotInjected,
            t.display.clone(),
            format!(
                "lacks {}; not added because this update leaves the pod template unchanged \
                 (no rollout); added on the next template change, or commit `audit --fix`",
                what.join(", ")
            ),
        );
        return;
    }
    let workload_missing = !j.labels.contains_key(&keys.workload);
    let mut blocked = Vec::new();
    for (key, value) in missing {
        if let Err(b) = cx.builder.add(&path::key(&t.labels_at, key), value) {
            blocked.push(b);
        }
    }
    if let Some(p) = port_plan
        && let Err(b) = cx.builder.add(&p.path, p.value)
    {
        blocked.push(b);
    }
    for b in blocked {
        find_blocked(b, cx);
    }
    if let Some(w) = cx.workload
        && let Some(from) = &w.shortened_from
        && workload_missing
    {
        cx.find(
            RuleId::WorkloadNameShortened,
            "metadata.name".into(),
            format!(
                "{} is not a valid label value; {} is {:?}",
                short(from),
                cx.policy.labels.workload,
                w.value
            ),
        );
    }
    cx.find_fixed(
        RuleId::MonitoringLabelsMissing,
        t.display.clone(),
        format!(
            "lacks {}; the webhook adds them (or commit `audit --fix`)",
            what.join(", ")
        ),
        true,
    );
}

/// Why a planned addition could not be made.
fn find_blocked(b: Blocked, cx: &mut Context<'_, '_, '_>) {
    let (rule, at, message) = match b {
        Blocked::NotAContainer(at) => (
            RuleId::UnreadableTemplate,
            at,
            "is not a map or list, so the monitoring labels cannot be added; fix the manifest",
        ),
        // Pod templates sharing a layer asked for different values there (a leader and a worker
        // running different engines over one base template): the first one's value stays.
        Blocked::Taken(at) => (
            RuleId::MixedEngines,
            at,
            "is shared by pod templates of this object that need different values here; \
             not added for this one: give each variant its own labels and ports in its patch",
        ),
    };
    cx.find(rule, at, message.into());
}

/// Only one port per pod carries the collector's name: every other container that serves an
/// engine's metrics goes unscraped, and its owner is told.
fn find_second_engines(
    supported: &[&Container<'_>],
    primary: &Container<'_>,
    cx: &mut Context<'_, '_, '_>,
) {
    let serving = supported.iter().filter(|c| {
        !c.found.worker_only && matches!(c.found.port, Some(Ok(_))) && !std::ptr::eq(**c, primary)
    });
    for c in serving {
        let message = format!(
            "also serves {} metrics, but only container {:?} gets port {:?}: this one is not \
             scraped; run it in a pod of its own to scrape both",
            c.found.spec.name, primary.name, cx.policy.port_name
        );
        cx.find(RuleId::SecondEngineContainer, c.display.clone(), message);
    }
}

/// The metrics rules of the serving containers of supported engines.
fn judge_metrics(supported: &[&Container<'_>], cx: &mut Context<'_, '_, '_>) {
    for c in supported.iter().filter(|c| !c.found.worker_only) {
        if let Some(off) = &c.found.metrics_off {
            cx.find_unless_guess(
                RuleId::MetricsDisabled,
                c.display.clone(),
                off.why.clone(),
                c.guess().or(off.doubt.as_deref()),
            );
        }
        if let Some(why) = &c.found.metrics_local {
            cx.find(RuleId::MetricsListenerLocal, c.display.clone(), why.clone());
        }
        let path = c.found.spec.metrics_path;
        if path != COLLECTOR_PATH && matches!(c.found.port, Some(Ok(_))) {
            cx.find(
                RuleId::MetricsPathDiffers,
                c.display.clone(),
                format!(
                    "{} serves Prometheus metrics at {path}, not at {COLLECTOR_PATH} where the \
                     collector scrapes by default: set the scrape path of these pods to {path}",
                    c.found.spec.name
                ),
            );
        }
        if let Some(Err(why)) = &c.found.port {
            cx.find(
                RuleId::MetricsPortUnresolved,
                c.display.clone(),
                format!(
                    "{why}; no port {:?} added: set the port literally",
                    cx.policy.port_name
                ),
            );
        }
    }
}

struct PortPlan {
    port: u16,
    path: Path,
    value: Value,
}

/// Plan the named metrics port on the engine container, or report why it is not planned.
fn plan_port(
    j: &Judged<'_, '_>,
    engine: &Container<'_>,
    port: u16,
    cx: &mut Context<'_, '_, '_>,
) -> Option<PortPlan> {
    if port_name_taken(j, engine, port, cx) {
        return None;
    }
    let name = &cx.policy.port_name;
    let same_number = ports(engine.slot.value)
        .find(|(_, p)| p.get("containerPort").and_then(Json::as_u64) == Some(u64::from(port)));
    if let Some((_, p)) = same_number
        && let Some(other) = p.get("name").and_then(Json::as_str)
    {
        cx.find(
            RuleId::MetricsPortNamedOtherwise,
            engine.display.clone(),
            format!(
                "port {port} is named {other:?}, which is never renamed (Services may use it); \
                 rename it to {name:?} so the collector finds it"
            ),
        );
        return None;
    }
    let addition = port_addition(j, engine, port, name)?;
    if addition.undeletes {
        cx.find(
            RuleId::MetricsPortUnresolved,
            engine.display.clone(),
            format!(
                "port {name:?} ({port}) not added: this patch's `ports: null` deletes the base \
                 template's ports, and adding one would bring them back; list the ports in the \
                 patch"
            ),
        );
        return None;
    }
    // A port another template planned into one of this template's layers is in this pod too.
    let seen_here = cx
        .planned_ports
        .iter()
        .find(|p| j.template.reads(&p.layer) && !renamed_here(j, p));
    if let Some(p) = seen_here {
        if p.container != engine.name || p.port != port {
            cx.find_unless_guess(
                RuleId::PortNameConflict,
                engine.display.clone(),
                format!(
                    "port {name:?} ({port}) not added: a template this pod shares already gets \
                     {name:?} on port {} of container {:?}; give each variant its own ports in \
                     its patch",
                    p.port, p.container
                ),
                Some("the conflicting port is in another pod template of this object"),
            );
        }
        return None;
    }
    if let Some(sibling) = sharing_sibling_with_name(j, &addition.layer, port, cx) {
        cx.find_unless_guess(
            RuleId::PortNameConflict,
            engine.display.clone(),
            format!(
                "port {name:?} ({port}) not added: this container is shared with {sibling}, \
                 whose pod already names another port {name:?}; name the port in a patch of \
                 this variant"
            ),
            Some("the conflicting port is in another pod template of this object"),
        );
        return None;
    }
    cx.planned_ports.push(PlannedPort {
        layer: addition.layer,
        container: engine.name.clone(),
        port,
    });
    Some(PortPlan {
        port,
        path: addition.path,
        value: addition.value,
    })
}

/// Whether a port already has the collector's name (port names are unique in a pod, so every
/// container and native sidecar counts); one that points elsewhere is reported.
fn port_name_taken(
    j: &Judged<'_, '_>,
    engine: &Container<'_>,
    port: u16,
    cx: &mut Context<'_, '_, '_>,
) -> bool {
    let name = &cx.policy.port_name;
    let Some((slot, pi, number)) = named_port(&j.containers, name) else {
        return false;
    };
    if number == Some(u64::from(port)) {
        return true;
    }
    let shown = number.map_or_else(|| "not a number".to_string(), |n| n.to_string());
    let guess = if number.is_some() && number == engine.found.serving_port.map(u64::from) {
        Some("that port is the engine's serving port; its metrics listener is separate")
    } else if engine.found.port_weak {
        Some(
            "the metrics port rests on a default that an envFrom or valueFrom source \
             this review cannot see may change",
        )
    } else {
        engine.guess()
    };
    cx.find_unless_guess(
        RuleId::PortNameConflict,
        format!(
            "{}.spec.{}[{}].ports[{pi}]",
            j.template.display, slot.list, slot.index
        ),
        format!(
            "port {name:?} is {shown} but {} serves metrics on {port}; point {name:?} at {port} \
             or rename that port",
            engine.found.spec.name
        ),
        guess,
    );
    true
}

/// The first port named `name` among the pod's containers and sidecars: its container, its
/// index and its number.
fn named_port<'t>(containers: &[Slot<'t>], name: &str) -> Option<(Slot<'t>, usize, Option<u64>)> {
    containers.iter().find_map(|slot| {
        ports(slot.value)
            .find(|(_, p)| p.get("name").and_then(Json::as_str) == Some(name))
            .map(|(pi, p)| (*slot, pi, p.get("containerPort").and_then(Json::as_u64)))
    })
}

/// Whether this pod names the planned port's number in the planned container itself, in a
/// layer above the one the port is planned into: strategic merge keys ports by number, so that
/// name wins and the planned name is not in this pod (the next review reads it so).
fn renamed_here(j: &Judged<'_, '_>, planned: &PlannedPort) -> bool {
    j.containers
        .iter()
        .filter(|slot| slot.value.get("name").and_then(Json::as_str) == Some(&planned.container))
        .flat_map(|slot| ports(slot.value))
        .any(|(_, p)| {
            p.get("containerPort").and_then(Json::as_u64) == Some(u64::from(planned.port))
                && p.get("name").and_then(Json::as_str).is_some()
        })
}

/// Another pod template of the object that also reads the layer a port goes into (the worker
/// of a leader/worker pair over one base template) and already names another port the same:
/// adding the port there would give that pod two ports of one name.
fn sharing_sibling_with_name(
    j: &Judged<'_, '_>,
    layer: &Path,
    port: u16,
    cx: &Context<'_, '_, '_>,
) -> Option<String> {
    cx.siblings
        .iter()
        .filter(|s| s.identity != j.template.identity && s.reads(layer))
        .find_map(|s| {
            let containers = pod_containers(&s.effective);
            let written = named_port(&containers, &cx.policy.port_name).map(|(_, _, n)| n);
            // Or planned into another of its layers (its own variant patch).
            let planned = cx
                .planned_ports
                .iter()
                .find(|p| &p.layer != layer && s.reads(&p.layer))
                .map(|p| Some(u64::from(p.port)));
            let number = written.or(planned)?;
            (number != Some(u64::from(port))).then(|| s.display.clone())
        })
}

/// What to add for the named port, and the layer it goes into.
struct PortAddition {
    path: Path,
    value: Value,
    layer: Path,
    /// The layer is a patch whose `ports: null` deletes its base's ports: a list there would
    /// merge with the base's again.
    undeletes: bool,
}

/// Where and what to add so the engine container has the named port: a name on its unnamed
/// entry for the port, a new entry, or (for a container only in a shared role template) an
/// entry of its own in the reference's patch.
fn port_addition(
    j: &Judged<'_, '_>,
    engine: &Container<'_>,
    port: u16,
    name: &str,
) -> Option<PortAddition> {
    let new_port = json!({"name": name, "containerPort": port, "protocol": "TCP"});
    Some(
        match locate(j.template, &j.names, &engine.name, engine.slot)? {
            Located::At(cpath, layer_container, layer) => {
                let over_base = j.template.append_containers_at.is_some()
                    || j.template.layers.last().is_some_and(|l| l.path != layer);
                let undeletes =
                    over_base && layer_container.get("ports").is_some_and(Json::is_null);
                let mut p = path::key(&cpath, "ports");
                let unnamed_here = ports(layer_container).find(|(_, p)| {
                    p.get("containerPort").and_then(Json::as_u64) == Some(u64::from(port))
                        && p.get("name").is_none()
                });
                let value = match unnamed_here {
                    Some((pi, _)) => {
                        p.push(Tok::Index(pi));
                        p.push(Tok::Key("name".into()));
                        json!(name)
                    }
                    None => {
                        p.push(Tok::Append);
                        new_port
                    }
                };
                PortAddition {
                    path: p,
                    value,
                    layer,
                    undeletes,
                }
            }
            Located::Append(mut list, layer) => {
                list.push(Tok::Append);
                PortAddition {
                    path: list,
                    value: json!({"name": engine.name, "ports": [new_port]}),
                    layer,
                    undeletes: false,
                }
            }
        },
    )
}

/// Each layer's containers by list and name, the first of each name winning, so that finding
/// a container's entry is O(1): a search per container is quadratic in long container lists.
struct LayerNames<'a>(Vec<Map<(&'static str, &'a str), usize>>);

impl<'a> LayerNames<'a> {
    fn of(t: &PodTemplate<'a>) -> Self {
        let index = |layer: &Layer<'a>| {
            let mut names = Map::default();
            for list in [CONTAINERS, INIT_CONTAINERS] {
                let items = layer.value.get("spec").and_then(|s| s.get(list));
                for (j, c) in items
                    .and_then(Json::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    if let Some(name) = c.get("name").and_then(Json::as_str) {
                        names.entry((list, name)).or_insert(j);
                    }
                }
            }
            names
        };
        LayerNames(t.layers.iter().map(index).collect())
    }
}

enum Located<'a> {
    /// The container's entry in a writable layer, and that layer's path.
    At(Path, &'a Json<'a>, Path),
    /// Only in a shared role template: add an entry to the reference's patch (the list, and
    /// the patch's path).
    Append(Path, Path),
}

/// Where a container of the effective template can be written.
fn locate<'a>(
    t: &PodTemplate<'a>,
    names: &LayerNames<'a>,
    name: &str,
    slot: Slot<'_>,
) -> Option<Located<'a>> {
    for (li, layer) in t.layers.iter().enumerate() {
        let Some(list) = layer
            .value
            .get("spec")
            .and_then(|s| s.get(slot.list))
            .and_then(Json::as_array)
        else {
            continue;
        };
        let pos = if name.is_empty() {
            // Unnamed containers can only be matched by position in a single-layer template.
            (t.layers.len() == 1 && slot.index < list.len()).then_some(slot.index)
        } else {
            names
                .0
                .get(li)
                .and_then(|n| n.get(&(slot.list, name)))
                .copied()
        };
        if let Some(j) = pos {
            let mut p = path::key(&path::key(&layer.path, "spec"), slot.list);
            p.push(Tok::Index(j));
            return Some(Located::At(p, &list[j], layer.path.clone()));
        }
    }
    match &t.append_containers_at {
        Some(list) if !name.is_empty() => {
            // The patch's own list of the same kind, beside its `containers`.
            let patch_spec = &list[..list.len().saturating_sub(1)];
            let layer = patch_spec[..patch_spec.len().saturating_sub(1)].to_vec();
            Some(Located::Append(path::key(patch_spec, slot.list), layer))
        }
        _ => None,
    }
}

fn ports<'c, 'a>(container: &'c Json<'a>) -> impl Iterator<Item = (usize, &'c Json<'a>)> {
    container
        .get("ports")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

fn short(s: &str) -> String {
    if s.chars().count() > 40 {
        let head: String = s.chars().take(37).collect();
        format!("{head:?}…")
    } else {
        format!("{s:?}")
    }
}
