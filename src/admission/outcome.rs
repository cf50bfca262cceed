//! How a front door applies the engine's decision: the mode (enforce, warn, audit) and the route
//! (`/mutate` may patch, `/validate` only answers) turn a [`Decision`] into an admission
//! [`Outcome`]: allowed or denied, the patch, warnings and audit annotations. The one place where
//! modes are interpreted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::decide::{Decision, Finding, PatchOp};

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

/// What an admission front door answers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    pub allowed: bool,
    /// Denial message (enforce mode only).
    pub message: Option<String>,
    pub patch: Option<Vec<PatchOp>>,
    /// Admission warnings, each at most [`MAX_WARNING_CHARS`] characters, each finding once.
    pub warnings: Vec<String>,
    pub audit_annotations: BTreeMap<String, String>,
}

/// The API server may cut an admission warning past this many characters (k8s.io/apiserver
/// `pkg/endpoints/filters/warning.go`, `truncateItemRunes`); a warning leads with the rule id
/// and the fix, and its path comes last, so a cut loses the least.
pub const MAX_WARNING_CHARS: usize = 256;

/// Audit annotation keys (the API server prefixes them with the webhook's name).
pub const FINDINGS_ANNOTATION: &str = "findings";
pub const EXEMPTED_ANNOTATION: &str = "exempted";
pub const PATCH_OPS_ANNOTATION: &str = "patch-ops";

impl Outcome {
    /// The answer to `decision` under a mode and a route.
    pub fn of(decision: &Decision, mode: Mode, route: Route) -> Outcome {
        let patch_applied =
            route == Route::Mutate && mode != Mode::Audit && !decision.patch.is_empty();
        let open: Vec<&Finding> = decision.open_findings(patch_applied).collect();
        let mut out = Outcome {
            allowed: true,
            ..Outcome::default()
        };
        let deny: Vec<&Finding> = open.iter().copied().filter(|f| f.denies()).collect();
        if mode == Mode::Enforce && !deny.is_empty() {
            out.allowed = false;
            out.message = Some(denial(&deny));
        } else if patch_applied {
            out.patch = Some(decision.patch.clone());
        }
        // A denial already names its deny-level findings.
        out.warnings = open
            .iter()
            .filter(|f| !(out.message.is_some() && f.denies()))
            .map(|f| short_warning(&f.warning()))
            .collect();
        if mode == Mode::Audit {
            out.audit_annotations = audit_annotations(&open, decision.patch.len());
        }
        out
    }
}

fn denial(deny: &[&Finding]) -> String {
    let lines: Vec<String> = deny.iter().map(|f| f.describe()).collect();
    format!(
        "inference-webhook denied this object ({} problem{}): {}",
        deny.len(),
        if deny.len() == 1 { "" } else { "s" },
        lines.join("; ")
    )
}

/// In audit mode the findings (held and exempted apart) and the size of the patch that was not
/// applied reach the API server's audit log.
fn audit_annotations(open: &[&Finding], patch_ops: usize) -> BTreeMap<String, String> {
    let mut annotations = BTreeMap::new();
    let (exempted, held): (Vec<&Finding>, Vec<&Finding>) =
        open.iter().partition(|f| f.exemption.is_some());
    for (key, findings) in [(FINDINGS_ANNOTATION, held), (EXEMPTED_ANNOTATION, exempted)] {
        if !findings.is_empty() {
            let summary: Vec<String> = findings
                .iter()
                .map(|f| format!("{}:{}@{}", f.level.as_str(), f.rule.as_str(), f.path))
                .collect();
            annotations.insert(key.to_string(), summary.join(","));
        }
    }
    if patch_ops > 0 {
        annotations.insert(PATCH_OPS_ANNOTATION.to_string(), patch_ops.to_string());
    }
    annotations
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
