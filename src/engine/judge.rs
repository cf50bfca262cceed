//! Judge one pod template: detect engines in its containers, apply the rules, and plan the
//! labels and the named metrics port.

use serde_json::{Value, json};

use super::Map;
use super::argv::KnownEnv;
use super::catalogue::{EngineSpec, family_of};
use super::decision::{Detection, Finding, Strength, TemplateReport};
use super::detect::{Found, Seen, detect};
use super::json::{Json, Object};
use super::kinds::Variant;
use super::overrides::Chosen;
use super::path::{self, Path, Tok};
use super::plan::PatchBuilder;
use super::policy::Policy;
use super::rules::{Level, RuleId};
use super::templates::{Layer, PodTemplate};

/// The workload label value for an object, and whether it had to be shortened.
#[derive(Clone, Debug)]
pub(super) struct Workload {
    pub value: String,
    pub shortened_from: Option<String>,
}

/// What the judge needs besides the template.
pub(super) struct Context<'p, 'b, 'd> {
    pub policy: &'p Policy,
    /// ConfigMaps the front door knows, and the object's namespace.
    pub known_env: Option<(&'b KnownEnv, &'b str)>,
    pub workload: Option<&'b Workload>,
    /// False on an UPDATE that leaves this template as it was: report, don't patch.
    pub may_patch: bool,
    /// The owner's override annotations for this template.
    pub chosen: &'b Chosen,
    /// The engines other templates of the object serve, which a worker there joins.
    pub leaders: &'b [&'static EngineSpec],
    pub builder: &'b mut PatchBuilder<'d>,
    pub findings: &'b mut Vec<Finding>,
}

impl Context<'_, '_, '_> {
    fn report(&mut self, rule: RuleId, path: String, message: String) {
        self.report_fix(rule, path, message, false);
    }

    fn report_fix(&mut self, rule: RuleId, path: String, message: String, fixed_by_patch: bool) {
        self.findings
            .extend(self.policy.finding(rule, path, message, fixed_by_patch));
    }

    /// A finding that rests on a detection: when the detection is a guess (`guess` says why),
    /// a deny-level rule is reported at warn, so no valid workload is rejected on a guess.
    fn report_unless_guess(
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
        self.findings.push(f);
    }
}

/// The path the collector scrapes on the named port unless told otherwise (ENGINES.md).
const COLLECTOR_PATH: &str = "/metrics";

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
    value: &'t Json<'t>,
}

/// A pod template under judgement, once its shape is read: its containers, its labels, and the
/// containers that run an engine.
struct Judged<'t, 'a> {
    template: &'t PodTemplate<'a>,
    containers: &'t [Json<'a>],
    labels: &'t Object<'a>,
    names: LayerNames<'a>,
    found: Vec<Container<'t>>,
}

/// Judge one pod template, in phases: its shape, detection, the engine rules, the backend label
/// rules, the metrics rules, and the patch plan.
pub(super) fn judge(t: &PodTemplate<'_>, cx: &mut Context<'_, '_, '_>) -> TemplateReport {
    let mut report = TemplateReport {
        path: t.display.clone(),
        role: t.role.clone(),
        variant: t.variant,
        backend: None,
        metrics_port: None,
        detections: Vec::new(),
    };
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
    let containers: &[Json<'_>] = match eff.get("spec").and_then(|s| s.get("containers")) {
        Some(Json::Array(a)) => a,
        None | Some(Json::Null) => &[],
        Some(_) => {
            cx.report(
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
            cx.report(
                RuleId::UnreadableTemplate,
                path::display(&t.labels_at),
                "is not a map of labels; fix the manifest".into(),
            );
            return None;
        }
    };
    Some(Judged {
        template: t,
        containers,
        labels,
        names: LayerNames::of(t),
        found: Vec::new(),
    })
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
    let target = cx.chosen.target(j.containers, t, base);
    for (i, c) in j.containers.iter().enumerate() {
        if !c.is_object() {
            cx.report(
                RuleId::UnreadableTemplate,
                format!("{}.spec.containers[{i}]", t.display),
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
        let display = match locate(t, &j.names, &name, i) {
            Some(Located::At(p, _)) => path::display(&p),
            _ => format!("{} container {name:?}", t.display),
        };
        found.push(Container {
            name,
            display,
            found: f,
            value: c,
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
        cx.report(
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
            cx.report(
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
            cx.report(RuleId::UnreadableTemplate, at, "is not a string".into());
            labels.ok = false;
            continue;
        };
        if !policy.supports(value) {
            labels.ok = false;
            let suggestion = primary.map_or_else(
                || format!("one of {}", policy.supported_backends.join(", ")),
                |p| format!("{:?}", p.found.spec.backend),
            );
            cx.report(
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
            cx.report_unless_guess(
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
        cx.report(
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
        cx.report(
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
    let mut blocked = None;
    for (key, value) in missing {
        if let Err(b) = cx.builder.add(&path::key(&t.labels_at, key), value) {
            blocked = Some(b);
        }
    }
    if let Some(p) = port_plan
        && let Err(b) = cx.builder.add(&p.path, p.value)
    {
        blocked = Some(b);
    }
    if let Some(b) = blocked {
        cx.report(
            RuleId::UnreadableTemplate,
            b.at,
            "is not a map or list, so the monitoring labels cannot be added; fix the manifest"
                .into(),
        );
    }
    if let Some(w) = cx.workload
        && let Some(from) = &w.shortened_from
        && workload_missing
    {
        cx.report(
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
    cx.report_fix(
        RuleId::MonitoringLabelsMissing,
        t.display.clone(),
        format!(
            "lacks {}; the webhook adds them (or commit `audit --fix`)",
            what.join(", ")
        ),
        true,
    );
}

/// The metrics rules of the serving containers of supported engines.
fn judge_metrics(supported: &[&Container<'_>], cx: &mut Context<'_, '_, '_>) {
    for c in supported.iter().filter(|c| !c.found.worker_only) {
        if let Some(off) = &c.found.metrics_off {
            cx.report_unless_guess(
                RuleId::MetricsDisabled,
                c.display.clone(),
                off.why.clone(),
                c.guess().or(off.doubt.as_deref()),
            );
        }
        if let Some(why) = &c.found.metrics_local {
            cx.report(RuleId::MetricsListenerLocal, c.display.clone(), why.clone());
        }
        let path = c.found.spec.metrics_path;
        if path != COLLECTOR_PATH && matches!(c.found.port, Some(Ok(_))) {
            cx.report(
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
            cx.report(
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
    let same_number = ports(engine.value)
        .find(|(_, p)| p.get("containerPort").and_then(Json::as_u64) == Some(u64::from(port)));
    if let Some((_, p)) = same_number
        && let Some(other) = p.get("name").and_then(Json::as_str)
    {
        cx.report(
            RuleId::MetricsPortNamedOtherwise,
            engine.display.clone(),
            format!(
                "port {port} is named {other:?}, which is never renamed (Services may use it); \
                 rename it to {name:?} so the collector finds it"
            ),
        );
        return None;
    }
    let (path, value) = port_addition(j, engine, port, name)?;
    Some(PortPlan { port, path, value })
}

/// Whether a port already has the collector's name (port names are unique in a pod, so every
/// container counts); one that points elsewhere is reported.
fn port_name_taken(
    j: &Judged<'_, '_>,
    engine: &Container<'_>,
    port: u16,
    cx: &mut Context<'_, '_, '_>,
) -> bool {
    let name = &cx.policy.port_name;
    let named = j.containers.iter().enumerate().find_map(|(ci, c)| {
        ports(c)
            .find(|(_, p)| p.get("name").and_then(Json::as_str) == Some(name))
            .map(|(pi, p)| (ci, pi, p.get("containerPort").and_then(Json::as_u64)))
    });
    let Some((ci, pi, number)) = named else {
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
    cx.report_unless_guess(
        RuleId::PortNameConflict,
        format!("{}.spec.containers[{ci}].ports[{pi}]", j.template.display),
        format!(
            "port {name:?} is {shown} but {} serves metrics on {port}; point {name:?} at {port} \
             or rename that port",
            engine.found.spec.name
        ),
        guess,
    );
    true
}

/// Where and what to add so the engine container has the named port: a name on its unnamed
/// entry for the port, a new entry, or (for a container only in a shared role template) an
/// entry of its own in the reference's patch.
fn port_addition<'t, 'a>(
    j: &Judged<'t, 'a>,
    engine: &Container<'_>,
    port: u16,
    name: &str,
) -> Option<(Path, Value)> {
    let index = j
        .containers
        .iter()
        .position(|c| std::ptr::eq(c, engine.value))?;
    let new_port = json!({"name": name, "containerPort": port, "protocol": "TCP"});
    Some(match locate(j.template, &j.names, &engine.name, index)? {
        Located::At(cpath, layer_container) => {
            let mut p = path::key(&cpath, "ports");
            let unnamed_here = ports(layer_container).find(|(_, p)| {
                p.get("containerPort").and_then(Json::as_u64) == Some(u64::from(port))
                    && p.get("name").is_none()
            });
            match unnamed_here {
                Some((pi, _)) => {
                    p.push(Tok::Index(pi));
                    p.push(Tok::Key("name".into()));
                    (p, json!(name))
                }
                None => {
                    p.push(Tok::Append);
                    (p, new_port)
                }
            }
        }
        Located::Append(mut list) => {
            list.push(Tok::Append);
            (list, json!({"name": engine.name, "ports": [new_port]}))
        }
    })
}

/// Each layer's containers by name, the first of each name winning, so that finding a
/// container's entry is O(1): a search per container is quadratic in long container lists.
struct LayerNames<'a>(Vec<Map<&'a str, usize>>);

impl<'a> LayerNames<'a> {
    fn of(t: &PodTemplate<'a>) -> Self {
        let index = |layer: &Layer<'a>| {
            let mut names = Map::default();
            let list = layer.value.get("spec").and_then(|s| s.get("containers"));
            for (j, c) in list
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                if let Some(name) = c.get("name").and_then(Json::as_str) {
                    names.entry(name).or_insert(j);
                }
            }
            names
        };
        LayerNames(t.layers.iter().map(index).collect())
    }
}

enum Located<'a> {
    /// The container's entry in a writable layer.
    At(Path, &'a Json<'a>),
    /// Only in a shared role template: add an entry to the reference's patch.
    Append(Path),
}

/// Where a container of the effective template can be written.
fn locate<'a>(
    t: &PodTemplate<'a>,
    names: &LayerNames<'a>,
    name: &str,
    index: usize,
) -> Option<Located<'a>> {
    for (li, layer) in t.layers.iter().enumerate() {
        let Some(list) = layer
            .value
            .get("spec")
            .and_then(|s| s.get("containers"))
            .and_then(Json::as_array)
        else {
            continue;
        };
        let pos = if name.is_empty() {
            // Unnamed containers can only be matched by position in a single-layer template.
            (t.layers.len() == 1 && index < list.len()).then_some(index)
        } else {
            names.0.get(li).and_then(|n| n.get(name)).copied()
        };
        if let Some(j) = pos {
            let mut p = path::join(&layer.path, "spec.containers");
            p.push(Tok::Index(j));
            return Some(Located::At(p, &list[j]));
        }
    }
    match &t.append_containers_at {
        Some(list) if !name.is_empty() => Some(Located::Append(list.clone())),
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
