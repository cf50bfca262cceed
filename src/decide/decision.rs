//! What the engine returns: what runs in each pod template and why, the patch, and the findings.

use serde::Serialize;
use serde_json::Value;

use super::kinds::Variant;
use super::rules::{Level, RuleId};

/// One RFC 6902 operation. The engine only ever adds: it never replaces or removes what a user
/// wrote (adding a member that does not exist yet is how a missing port name is set).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum PatchOp {
    Add { path: String, value: Value },
}

/// How certain a detection is: what it rests on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Strength {
    /// A known program or module, read from `command`/`args` or from a shell script.
    Command,
    /// An image whose entrypoint the catalogue knows, with args that fit it.
    Entrypoint,
    /// The image name alone: a guess, so deny-level rules only warn.
    Image,
    /// The owner's `inference-webhook/engine` annotation: the strongest evidence.
    Annotation,
    /// A worker process (`ray start --address=...`) beside a leader template of the same object
    /// that runs the engine: inferred, so deny-level rules only warn.
    Leader,
}

impl Strength {
    pub fn as_str(self) -> &'static str {
        match self {
            Strength::Command => "command",
            Strength::Entrypoint => "entrypoint",
            Strength::Image => "image",
            Strength::Annotation => "annotation",
            Strength::Leader => "leader",
        }
    }

    /// Whether a rule may deny on it.
    pub fn is_certain(self) -> bool {
        !matches!(self, Strength::Image | Strength::Leader)
    }
}

/// Why the engine detected an inference engine in a container.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Detection {
    /// The container's name.
    pub container: String,
    /// Display path of the container, e.g. `spec.template.spec.containers[0]`.
    pub path: String,
    /// Catalogue id of the engine, e.g. `vllm`, `sglang-router`.
    pub engine: &'static str,
    /// The value the backend label takes for this engine.
    pub backend: &'static str,
    /// What the detection rests on: `command`, `entrypoint` or `image` (a guess).
    pub strength: Strength,
    /// A worker-only process of a multi-node engine: labeled, but serves no metrics.
    pub worker_only: bool,
    /// The resolved metrics port, when the container serves metrics and it could be resolved.
    pub metrics_port: Option<u16>,
    /// The HTTP path the engine serves metrics on.
    pub metrics_path: &'static str,
    /// What matched, in order: image, command, flags, port source.
    pub evidence: Vec<String>,
}

/// One pod template of the object, with what was found in it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateDecision {
    /// Display path of the pod template, e.g. `spec.roles[1].leaderWorkerPattern.template (leader)`.
    pub path: String,
    /// RoleBasedGroup role name, when the template belongs to a role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// `leader` / `worker` for multi-node variants of one template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<Variant>,
    /// Backend label value chosen for this template (only for a supported backend).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// The metrics port the named port points at, when one is served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_port: Option<u16>,
    pub detections: Vec<Detection>,
}

impl TemplateDecision {
    /// A template's report before anything is found in it.
    pub(super) fn empty(path: String, role: Option<String>, variant: Option<Variant>) -> Self {
        TemplateDecision {
            path,
            role,
            variant,
            backend: None,
            metrics_port: None,
            detections: Vec::new(),
        }
    }
}

/// A rule that fired.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub rule: RuleId,
    pub level: Level,
    /// Display path of the field at fault.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
    /// True when the planned patch fixes it (missing labels or port): such a finding matters only
    /// where the patch is not applied (validation, audit mode, the audit command).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fixed_by_patch: bool,
    /// Set when the object's annotations exempt this rule: still reported, never denies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exemption: Option<Exemption>,
}

/// Why a finding is exempted, from the object's reason annotation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Exemption {
    pub reason: String,
}

/// The engine's answer for one object.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// The kind the object was recognised as (`Deployment`, `RoleBasedGroup`, ...), if handled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// The workload label value used for this object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// Why nothing was examined (opted out, being deleted, another operation), when that is
    /// the case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// The handled object whose controller made this one (`RoleBasedGroup/name`): its review
    /// covers this object's templates, so this one is neither judged nor counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub child_of: Option<String>,
    pub templates: Vec<TemplateDecision>,
    pub patch: Vec<PatchOp>,
    pub findings: Vec<Finding>,
}

impl Decision {
    /// Why the object was not judged (opted out, being deleted, made by a handled kind's
    /// controller, a kind no row handles), or `None` when it was.
    pub fn skipped_reason(&self) -> Option<&str> {
        match (&self.skipped, self.kind) {
            (Some(reason), _) => Some(reason.as_str()),
            (None, None) => Some("kind not handled"),
            (None, Some(_)) => None,
        }
    }

    /// The findings the outputs show: every one whose rule is not off.
    pub fn reported_findings(&self) -> Vec<&Finding> {
        self.findings
            .iter()
            .filter(|f| f.level != Level::Off)
            .collect()
    }

    /// Findings that still hold after the patch has (or has not) been applied.
    pub fn open_findings(&self, patch_applied: bool) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(move |f| !(patch_applied && f.fixed_by_patch))
    }

    /// True when a deny-level finding holds once the planned patch is applied.
    pub fn denies(&self) -> bool {
        self.open_findings(true).any(Finding::denies)
    }

    /// The backend value of the first engine detected in any template, judged or not (the
    /// reporter and the pod listing name a workload's engine by it).
    pub fn detected_backend(&self) -> Option<&'static str> {
        self.templates
            .iter()
            .flat_map(|t| &t.detections)
            .map(|d| d.backend)
            .next()
    }

    /// The backend of the first labeled template, for logs and metrics.
    pub fn backend(&self) -> Option<&str> {
        self.templates.iter().find_map(|t| t.backend.as_deref())
    }

    /// The evidence strength of the detection behind [`Decision::backend`], for logs.
    pub fn strength(&self) -> Option<Strength> {
        let t = self.templates.iter().find(|t| t.backend.is_some())?;
        t.detections
            .iter()
            .find(|d| !d.worker_only)
            .or(t.detections.first())
            .map(|d| d.strength)
    }
}

/// Why a deny-level finding on a template an UPDATE leaves unchanged only warns.
const PREDATES: &str = "not denied: this update leaves the pod template unchanged, so the \
                        workload predates this finding; fix it with the next template change or \
                        exempt it";

impl Finding {
    /// The finding on a template the request does not change: it never denies (the user did not
    /// change what it is about), and says so after the fix, which warnings must not lose.
    pub(super) fn predating(mut self) -> Finding {
        if self.level == Level::Deny {
            self.level = Level::Warn;
            self.message = format!("{} ({PREDATES})", self.message);
        }
        self
    }

    /// A deny-level finding on a Pod only warns: the Pod fallback is fail-open by design, and a
    /// denied Pod would fail its controller's loop, not a person's apply.
    pub(super) fn on_a_pod(mut self) -> Finding {
        if self.level == Level::Deny {
            self.level = Level::Warn;
            self.message = format!("{} (a Pod is never denied)", self.message);
        }
        self
    }

    /// True for a deny-level finding that is not exempted.
    pub fn denies(&self) -> bool {
        self.level == Level::Deny && self.exemption.is_none()
    }

    /// `rule-id: message (at path)`, the form of admission warnings: the rule and the fix come
    /// first, where a cut of a long warning cannot reach them.
    pub fn warning(&self) -> String {
        match &self.exemption {
            None => format!(
                "{}: {} (at {})",
                self.rule.as_str(),
                self.message,
                self.path
            ),
            Some(e) => format!(
                "{}: exempt ({}): {} (at {})",
                self.rule.as_str(),
                e.reason,
                self.message,
                self.path
            ),
        }
    }

    /// `rule-id: path: message`, the form used in denials and reports; an exempted
    /// finding leads with its reason, which matters more than the message its owner has read.
    pub fn describe(&self) -> String {
        match &self.exemption {
            None => format!("{}: {}: {}", self.rule.as_str(), self.path, self.message),
            Some(e) => format!(
                "{}: {}: exempt ({}): {}",
                self.rule.as_str(),
                self.path,
                e.reason,
                self.message
            ),
        }
    }
}
