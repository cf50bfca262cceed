//! What the engine returns, and how a mode turns it into an admission outcome.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::rules::{Level, RuleId};

/// How a front door applies a decision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Deny-level findings deny; the patch is applied.
    #[default]
    Enforce,
    /// Always allowed, the patch is applied, findings become warnings.
    Warn,
    /// Always allowed, no patch, findings become warnings and audit annotations.
    Audit,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Enforce, Mode::Warn, Mode::Audit];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Warn => "warn",
            Mode::Audit => "audit",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the caller may apply a patch (`/mutate`) or only judges (`/validate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    Mutate,
    Validate,
}

impl Route {
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Mutate => "mutate",
            Route::Validate => "validate",
        }
    }
}

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
}

impl Strength {
    pub fn as_str(self) -> &'static str {
        match self {
            Strength::Command => "command",
            Strength::Entrypoint => "entrypoint",
            Strength::Image => "image",
        }
    }

    /// Whether a rule may deny on it.
    pub fn is_certain(self) -> bool {
        self != Strength::Image
    }
}

/// Why the engine judged a container to run an inference engine.
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
pub struct TemplateReport {
    /// Display path of the pod template, e.g. `spec.roles[1].leaderWorkerPattern.template (leader)`.
    pub path: String,
    /// RoleBasedGroup role name, when the template belongs to a role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// `leader` / `worker` for multi-node variants of one template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Backend label value chosen for this template (only for a supported backend).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// The metrics port the named port points at, when one is served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_port: Option<u16>,
    pub detections: Vec<Detection>,
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
    /// Why nothing was examined (opted out, another operation), when that is the case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    pub templates: Vec<TemplateReport>,
    pub patch: Vec<PatchOp>,
    pub findings: Vec<Finding>,
}

/// What an admission front door answers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    pub allowed: bool,
    /// Denial message (enforce mode only).
    pub message: Option<String>,
    pub patch: Option<Vec<PatchOp>>,
    /// Admission warnings, each shorter than 120 characters.
    pub warnings: Vec<String>,
    pub audit_annotations: BTreeMap<String, String>,
}

/// Kubernetes shows at most this many characters of one admission warning without complaint.
pub const MAX_WARNING_CHARS: usize = 119;

impl Decision {
    /// Findings that still hold after the patch has (or has not) been applied.
    fn open_findings(&self, patch_applied: bool) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(move |f| !(patch_applied && f.fixed_by_patch))
    }

    /// True when a deny-level finding holds once the planned patch is applied.
    pub fn denies(&self) -> bool {
        self.open_findings(true).any(Finding::denies)
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

    /// Apply a mode and a route: the one place where modes are interpreted.
    pub fn outcome(&self, mode: Mode, route: Route) -> Outcome {
        let patch_applied = route == Route::Mutate && mode != Mode::Audit && !self.patch.is_empty();
        let open: Vec<&Finding> = self.open_findings(patch_applied).collect();
        let deny: Vec<&Finding> = open.iter().copied().filter(|f| f.denies()).collect();
        let mut out = Outcome {
            allowed: true,
            ..Outcome::default()
        };
        if mode == Mode::Enforce && !deny.is_empty() {
            out.allowed = false;
            let lines: Vec<String> = deny.iter().map(|f| f.describe()).collect();
            out.message = Some(format!(
                "inference-webhook denied this object ({} problem{}): {}",
                deny.len(),
                if deny.len() == 1 { "" } else { "s" },
                lines.join("; ")
            ));
        } else if patch_applied {
            out.patch = Some(self.patch.clone());
        }
        out.warnings = open
            .iter()
            .filter(|f| !(out.message.is_some() && f.denies()))
            .map(|f| short_warning(&f.describe()))
            .collect();
        if mode == Mode::Audit {
            let (exempted, held): (Vec<&Finding>, Vec<&Finding>) =
                open.iter().partition(|f| f.exemption.is_some());
            for (key, findings) in [("findings", held), ("exempted", exempted)] {
                if !findings.is_empty() {
                    let summary: Vec<String> = findings
                        .iter()
                        .map(|f| format!("{}:{}@{}", f.level.as_str(), f.rule.as_str(), f.path))
                        .collect();
                    out.audit_annotations
                        .insert(key.to_string(), summary.join(","));
                }
            }
            if !self.patch.is_empty() {
                out.audit_annotations
                    .insert("patch-ops".to_string(), self.patch.len().to_string());
            }
        }
        out
    }
}

impl Finding {
    /// True for a deny-level finding that is not exempted.
    pub fn denies(&self) -> bool {
        self.level == Level::Deny && self.exemption.is_none()
    }

    /// `rule-id: path: message`, the form used in denials, warnings and reports; an exempted
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

/// Cut a warning to the length Kubernetes accepts, on a character boundary.
pub fn short_warning(text: &str) -> String {
    if text.chars().count() <= MAX_WARNING_CHARS {
        return text.to_string();
    }
    let mut out: String = text.chars().take(MAX_WARNING_CHARS - 1).collect();
    out.push('…');
    out
}
