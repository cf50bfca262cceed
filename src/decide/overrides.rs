//! The owner's answer, for launchers no heuristic can read: the annotations
//! `inference-webhook/engine: <engine id | none>` and `inference-webhook/metrics-port: <number |
//! port name>`, on the object's metadata or a pod template's (the template's wins, per key).
//! They are the strongest evidence there is: `none` means not an inference engine (no labels,
//! no findings), an engine id makes a container that engine, a port is the metrics port.

use super::catalogue::{CATALOGUE, EngineSpec};
use super::decision::{Finding, TemplateDecision};
use super::detect::{Found, Seen, detect};
use super::json::Json;
use super::labels::is_port_name;
use super::path::{self, Tok};
use super::policy::Policy;
use super::rules::RuleId;
use super::templates::PodTemplate;

pub const ENGINE_ANNOTATION: &str = "inference-webhook/engine";
pub const METRICS_PORT_ANNOTATION: &str = "inference-webhook/metrics-port";

/// What the owner said of one pod template, after the template's annotations over the object's.
#[derive(Debug, Default)]
pub(super) struct Chosen {
    /// `Some(None)`: `none`, not an inference engine.
    pub engine: Option<Option<&'static EngineSpec>>,
    pub metrics_port: Option<u16>,
    /// The annotations taken, as evidence (`annotation inference-webhook/engine: vllm on ...`).
    pub said: Vec<String>,
    /// The engine is the object's word for one of its several templates: it corrects what is
    /// detected there, but makes no engine of a template where nothing is (a cache or a proxy
    /// role beside the servers).
    pub corrects_only: bool,
}

impl Chosen {
    pub(super) fn is_empty(&self) -> bool {
        self.engine.is_none() && self.metrics_port.is_none()
    }

    pub(super) fn not_an_engine(&self) -> bool {
        matches!(self.engine, Some(None))
    }

    /// The container the annotations speak of: the one detected as the named engine's family,
    /// else the one `kubectl.kubernetes.io/default-container` names, else the only detected
    /// engine (the owner corrects it), else the first container. A metrics port alone speaks of
    /// the detected engine container.
    pub(super) fn target(
        &self,
        containers: &[&Json<'_>],
        t: &PodTemplate<'_>,
        base: Seen<'_>,
    ) -> Option<usize> {
        if self.is_empty() {
            return None;
        }
        let found: Vec<(usize, Found)> = containers
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_object())
            .filter_map(|(i, c)| detect(c, base).map(|f| (i, f)))
            .collect();
        let serving = || found.iter().find(|(_, f)| !f.worker_only).or(found.first());
        let Some(Some(spec)) = self.engine else {
            return serving().map(|(i, _)| *i);
        };
        if self.corrects_only && found.is_empty() {
            return None;
        }
        let default_container = annotation(t.effective.get("metadata"), DEFAULT_CONTAINER);
        found
            .iter()
            .find(|(_, f)| f.spec.family == spec.family && !f.worker_only)
            .or_else(|| found.iter().find(|(_, f)| f.spec.family == spec.family))
            .map(|(i, _)| *i)
            .or_else(|| {
                containers.iter().position(|c| {
                    default_container.is_some()
                        && c.get("name").and_then(Json::as_str) == default_container
                })
            })
            .or(match found.as_slice() {
                [(i, _)] => Some(*i),
                _ => None,
            })
            .or_else(|| containers.iter().position(|c| c.is_object()))
    }
}

/// The annotation `kubectl` reads for the container a command means by default.
const DEFAULT_CONTAINER: &str = "kubectl.kubernetes.io/default-container";

/// One annotation, where it is written.
struct Said<'v> {
    value: &'v str,
    at: String,
    on_template: bool,
}

fn annotation<'v>(meta: Option<&'v Json<'_>>, key: &str) -> Option<&'v str> {
    meta.and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(key))
        .and_then(Json::as_str)
}

/// The annotation `key` of a template, else of the object.
fn said<'v>(
    object_meta: Option<&'v Json<'_>>,
    t: &'v PodTemplate<'_>,
    key: &'static str,
) -> Option<Said<'v>> {
    if let Some(value) = annotation(t.effective.get("metadata"), key) {
        let mut at = t.labels_at.clone();
        at.pop();
        at.push(Tok::Key("annotations".into()));
        at.push(Tok::Key(key.into()));
        return Some(Said {
            value,
            at: path::display(&at),
            on_template: true,
        });
    }
    annotation(object_meta, key).map(|value| Said {
        value,
        at: path::display(&[
            Tok::Key("metadata".into()),
            Tok::Key("annotations".into()),
            Tok::Key(key.into()),
        ]),
        on_template: false,
    })
}

/// Read the override annotations of a template; an invalid value is reported and ignored.
pub(super) fn read(
    object_meta: Option<&Json<'_>>,
    t: &PodTemplate<'_>,
    several: bool,
    policy: &Policy,
    findings: &mut Vec<Finding>,
) -> Chosen {
    let mut chosen = Chosen::default();
    let mut invalid = |at: String, message: String| {
        findings.extend(policy.finding(RuleId::OverrideInvalid, at, message, false));
    };
    if let Some(s) = said(object_meta, t, ENGINE_ANNOTATION) {
        match engine(s.value) {
            Some(e) => {
                chosen.engine = Some(e);
                chosen.corrects_only = several && !s.on_template;
                chosen.said.push(format!(
                    "annotation {ENGINE_ANNOTATION}: {} ({})",
                    s.value, s.at
                ));
            }
            None => invalid(
                s.at,
                format!(
                    "{:?} is not an engine id; use one of {} or none (not an inference engine)",
                    s.value,
                    ids().join(", ")
                ),
            ),
        }
    }
    if let Some(s) = said(object_meta, t, METRICS_PORT_ANNOTATION) {
        match port(s.value, t) {
            Ok(p) => {
                chosen.metrics_port = Some(p);
                chosen.said.push(format!(
                    "annotation {METRICS_PORT_ANNOTATION}: {} ({})",
                    s.value, s.at
                ));
            }
            Err(why) => invalid(s.at, why),
        }
    }
    chosen
}

/// An engine id (or a backend label value) of the catalogue, or `none`.
fn engine(value: &str) -> Option<Option<&'static EngineSpec>> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("none") {
        return Some(None);
    }
    CATALOGUE
        .iter()
        .find(|e| e.id == value)
        .or_else(|| CATALOGUE.iter().find(|e| e.backend == value))
        .map(Some)
}

fn ids() -> Vec<&'static str> {
    CATALOGUE.iter().map(|e| e.id).collect()
}

/// A port number, or the name of a port a container of the template declares.
fn port(value: &str, t: &PodTemplate<'_>) -> Result<u16, String> {
    let value = value.trim();
    if value.bytes().all(|b| b.is_ascii_digit()) && !value.is_empty() {
        return match value.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{value:?} is not a port number (1-65535)")),
        };
    }
    if !is_port_name(value) {
        return Err(format!(
            "{value:?} is neither a port number (1-65535) nor a port name"
        ));
    }
    let containers = t
        .effective
        .get("spec")
        .and_then(|s| s.get("containers"))
        .and_then(Json::as_array)
        .into_iter()
        .flatten();
    containers
        .flat_map(|c| {
            c.get("ports")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
        })
        .find(|p| p.get("name").and_then(Json::as_str) == Some(value))
        .and_then(|p| p.get("containerPort").and_then(Json::as_u64))
        .and_then(|n| u16::try_from(n).ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            format!(
                "names port {value:?}, which no container of this pod template declares; \
                 declare it or give the number"
            )
        })
}

/// Why a whole object is not an inference engine: its own `none` that no template overrides,
/// or every template saying `none`.
pub(super) fn not_an_engine(
    object_meta: Option<&Json<'_>>,
    templates: &[PodTemplate<'_>],
) -> Option<String> {
    let says =
        |t: &PodTemplate<'_>| said(object_meta, t, ENGINE_ANNOTATION).map(|s| engine(s.value));
    let all_none = !templates.is_empty()
        && templates
            .iter()
            .all(|t| matches!(says(t), Some(Some(None))));
    all_none.then(|| format!("not an inference engine by annotation {ENGINE_ANNOTATION}: none"))
}

/// The report of a template its owner says runs no inference engine.
pub(super) fn not_an_engine_report(t: &PodTemplate<'_>) -> TemplateDecision {
    TemplateDecision::empty(t.display.clone(), t.role.clone(), t.variant)
}
