//! Judge one pod template: detect engines in its containers, apply the rules, and plan the
//! labels and the named metrics port.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::argv::KnownEnv;
use super::catalogue::family_of;
use super::decision::{Detection, Finding, TemplateReport};
use super::detect::{Found, Seen, detect};
use super::json::{Json, Object};
use super::path::{self, Path, Tok};
use super::plan::PatchBuilder;
use super::policy::Policy;
use super::rules::{Level, RuleId};
use super::templates::{Layer, PodTemplate};

/// The workload label value for an object, and whether it had to be shortened.
#[derive(Clone, Debug)]
pub struct Workload {
    pub value: String,
    pub shortened_from: Option<String>,
}

/// What the judge needs besides the template.
pub struct Context<'p, 'b, 'd> {
    pub policy: &'p Policy,
    /// ConfigMaps the front door knows, and the object's namespace.
    pub known_env: Option<(&'b KnownEnv, &'b str)>,
    pub workload: Option<&'b Workload>,
    /// False on an UPDATE that leaves this template as it was: report, don't patch.
    pub may_patch: bool,
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

/// Why an image-only detection is a guess, and how to make it certain.
const IMAGE_GUESS: &str = "engine inferred from the image name only; set the container's command \
                           to the engine's program to make it certain";

struct Container<'t> {
    name: String,
    /// Display path, in the layer that defines the container when there is one.
    display: String,
    found: Found,
    value: &'t Json<'t>,
}

pub fn judge(t: &PodTemplate<'_>, cx: &mut Context<'_, '_, '_>) -> TemplateReport {
    let mut report = TemplateReport {
        path: t.display.clone(),
        role: t.role.clone(),
        variant: t.variant.map(str::to_string),
        backend: None,
        metrics_port: None,
        detections: Vec::new(),
    };
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
            return report;
        }
    };
    let empty = Object::new();
    let labels = match eff.get("metadata").and_then(|m| m.get("labels")) {
        Some(Json::Object(m)) => m,
        None | Some(Json::Null) => &empty,
        Some(_) => {
            cx.report(
                RuleId::UnreadableTemplate,
                path::display(&t.labels_at),
                "is not a map of labels; fix the manifest".into(),
            );
            return report;
        }
    };

    let names = LayerNames::of(t);
    let mut found: Vec<Container<'_>> = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        if !c.is_object() {
            cx.report(
                RuleId::UnreadableTemplate,
                format!("{}.spec.containers[{i}]", t.display),
                "is not a container object; fix the manifest".into(),
            );
            continue;
        }
        let seen = Seen {
            worker_variant: t.variant == Some("worker"),
            known: cx.known_env,
            port_name: &cx.policy.port_name,
        };
        if let Some(f) = detect(c, seen) {
            let name = c
                .get("name")
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_string();
            let display = match locate(t, &names, &name, i) {
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
    }
    report.detections = found
        .iter()
        .map(|c| Detection {
            container: c.name.clone(),
            path: c.display.clone(),
            engine: c.found.spec.id,
            backend: c.found.spec.backend,
            strength: c.found.strength,
            worker_only: c.found.worker_only,
            metrics_port: c.found.port.as_ref().and_then(|p| p.as_ref().ok().copied()),
            metrics_path: c.found.spec.metrics_path,
            evidence: c.found.evidence.clone(),
        })
        .collect();

    let policy = cx.policy;
    let mut families: Vec<&str> = found.iter().map(|c| c.found.spec.family).collect();
    families.dedup();
    if families.len() > 1 {
        let names: Vec<String> = found
            .iter()
            .map(|c| format!("{} ({})", c.name, c.found.spec.name))
            .collect();
        cx.report(
            RuleId::MixedEngines,
            t.display.clone(),
            format!(
                "runs different engines: {}; run one engine per pod template so one backend label fits",
                names.join(", ")
            ),
        );
    }
    let mut reported = Vec::new();
    for c in found
        .iter()
        .filter(|c| !policy.supports(c.found.spec.backend))
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
    let supported: Vec<&Container<'_>> = found
        .iter()
        .filter(|c| policy.supports(c.found.spec.backend))
        .collect();
    let primary = supported
        .iter()
        .copied()
        .find(|c| !c.found.worker_only)
        .or_else(|| supported.first().copied());

    // The backend labels the user wrote.
    let keys = &policy.labels;
    let canonical = labels.get(&keys.backend);
    let legacy = labels.get(&keys.legacy_backend);
    let judged_engine = primary.or(found.first());
    let mut label_ok = true;
    for (key, value) in [(&keys.backend, canonical), (&keys.legacy_backend, legacy)] {
        let Some(value) = value else { continue };
        let at = path::display(&path::key(&t.labels_at, key.clone()));
        let Some(value) = value.as_str() else {
            cx.report(RuleId::UnreadableTemplate, at, "is not a string".into());
            label_ok = false;
            continue;
        };
        if !policy.supports(value) {
            label_ok = false;
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
            label_ok = false;
            let guess = (!e.found.strength.is_certain()).then_some(IMAGE_GUESS);
            cx.report_unless_guess(
                RuleId::BackendMismatch,
                at,
                format!(
                    "says {value:?} but container {:?} runs {}; set it to {:?}",
                    e.name, e.found.spec.name, e.found.spec.backend
                ),
                guess,
            );
        }
    }
    if legacy.is_some() && canonical.is_none() {
        cx.report(
            RuleId::LegacyBackendLabel,
            path::display(&path::key(&t.labels_at, keys.legacy_backend.clone())),
            format!(
                "legacy key; {} is added beside it (keep both until dashboards use it)",
                keys.backend
            ),
        );
    }

    let Some(primary) = primary else {
        return report;
    };
    report.backend = Some(
        canonical
            .and_then(Json::as_str)
            .filter(|_| label_ok)
            .unwrap_or(primary.found.spec.backend)
            .to_string(),
    );

    // A backend label never makes an image-only guess certain: the webhook writes that label
    // itself from the guess, so trusting it would deny the next update of what it admitted.
    judge_metrics(&supported, cx);

    // What is missing: labels, and the named port on the engine container.
    let mut missing: Vec<(String, Value)> = Vec::new();
    if !labels.contains_key(&keys.workload)
        && let Some(w) = cx.workload
    {
        missing.push((keys.workload.clone(), json!(w.value)));
    }
    if canonical.is_none() {
        let value = legacy
            .and_then(Json::as_str)
            .filter(|_| label_ok)
            .unwrap_or(primary.found.spec.backend);
        missing.push((keys.backend.clone(), json!(value)));
    }
    let port_plan = match primary.found.port {
        Some(Ok(p)) if !primary.found.worker_only => {
            plan_port(t, &names, containers, primary, p, cx)
        }
        _ => None,
    };
    if let Some(Ok(p)) = primary.found.port {
        report.metrics_port = Some(p);
    }
    if missing.is_empty() && port_plan.is_none() {
        return report;
    }
    let mut what: Vec<String> = missing.iter().map(|(k, _)| format!("label {k}")).collect();
    if let Some(p) = &port_plan {
        what.push(format!("port {:?} ({})", policy.port_name, p.port));
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
        return report;
    }
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
    if let Some(w) = cx
        .workload
        .and_then(|w| w.shortened_from.as_ref().map(|from| (w, from)))
        && !labels.contains_key(&keys.workload)
    {
        let (w, from) = w;
        cx.report(
            RuleId::WorkloadNameShortened,
            "metadata.name".into(),
            format!(
                "{} is not a valid label value; {} is {:?}",
                short(from),
                keys.workload,
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
    report
}

/// The metrics rules of the serving containers of supported engines.
fn judge_metrics(supported: &[&Container<'_>], cx: &mut Context<'_, '_, '_>) {
    for c in supported.iter().filter(|c| !c.found.worker_only) {
        let guess = (!c.found.strength.is_certain()).then_some(IMAGE_GUESS);
        if let Some(why) = &c.found.metrics_off {
            cx.report_unless_guess(
                RuleId::MetricsDisabled,
                c.display.clone(),
                why.clone(),
                guess,
            );
        }
        if let Some(why) = &c.found.metrics_local {
            cx.report(RuleId::MetricsListenerLocal, c.display.clone(), why.clone());
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
fn plan_port<'a>(
    t: &PodTemplate<'a>,
    names: &LayerNames<'a>,
    containers: &[Json<'_>],
    engine: &Container<'_>,
    port: u16,
    cx: &mut Context<'_, '_, '_>,
) -> Option<PortPlan> {
    let name = &cx.policy.port_name;
    // Port names are unique in a pod: look at every container.
    for (ci, c) in containers.iter().enumerate() {
        for (pi, p) in ports(c) {
            if p.get("name").and_then(Json::as_str) != Some(name) {
                continue;
            }
            let number = p.get("containerPort").and_then(Json::as_u64);
            if number == Some(u64::from(port)) {
                return None;
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
                (!engine.found.strength.is_certain()).then_some(IMAGE_GUESS)
            };
            cx.report_unless_guess(
                RuleId::PortNameConflict,
                format!("{}.spec.containers[{ci}].ports[{pi}]", t.display),
                format!(
                    "port {name:?} is {shown} but {} serves metrics on {port}; point {name:?} at {port} \
                     or rename that port",
                    engine.found.spec.name
                ),
                guess,
            );
            return None;
        }
    }
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
    let index = containers
        .iter()
        .position(|c| std::ptr::eq(c, engine.value))?;
    let new_port = json!({"name": name, "containerPort": port, "protocol": "TCP"});
    let (path, value) = match locate(t, names, &engine.name, index)? {
        Located::At(cpath, layer_container) => {
            let unnamed_here = ports(layer_container).find(|(_, p)| {
                p.get("containerPort").and_then(Json::as_u64) == Some(u64::from(port))
                    && p.get("name").is_none()
            });
            match unnamed_here {
                Some((pi, _)) => {
                    let mut p = path::key(&cpath, "ports");
                    p.push(Tok::Index(pi));
                    p.push(Tok::Key("name".into()));
                    (p, json!(name))
                }
                None => {
                    let mut p = path::key(&cpath, "ports");
                    p.push(Tok::Append);
                    (p, new_port)
                }
            }
        }
        Located::Append(list) => {
            let mut p = list;
            p.push(Tok::Append);
            (p, json!({"name": engine.name, "ports": [new_port]}))
        }
    };
    Some(PortPlan { port, path, value })
}

/// Each layer's containers by name, the first of each name winning, so that finding a
/// container's entry is O(1): a search per container is quadratic in long container lists.
struct LayerNames<'a>(Vec<HashMap<&'a str, usize>>);

impl<'a> LayerNames<'a> {
    fn of(t: &PodTemplate<'a>) -> Self {
        let index = |layer: &Layer<'a>| {
            let mut names = HashMap::new();
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
