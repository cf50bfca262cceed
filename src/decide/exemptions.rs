//! Per-object rule exemptions: the object's annotations name rules (`ignore-rules: a,b`) and say
//! why (`ignore-reason`). Applied after every finding is known, so every front door gets them.
//! An exempted finding is kept, marked with the reason, and never denies. A misused exemption
//! (no reason, an unknown rule id, a rule the policy forbids exempting) is not applied to that
//! rule and is itself reported; those findings about the annotations cannot be exempted.

use super::json::Json;

use super::decision::{Exemption, Finding};
use super::path::{Tok, display};
use super::policy::Policy;
use super::rules::RuleId;

/// Mark the findings the object's exemption annotations cover, and report misused exemptions.
pub(super) fn apply(metadata: Option<&Json<'_>>, policy: &Policy, findings: &mut Vec<Finding>) {
    let keys = &policy.exemptions;
    let annotation = |key: &str| {
        metadata
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get(key))
            .and_then(Json::as_str)
    };
    let Some(listed) = annotation(&keys.rules_annotation) else {
        return;
    };
    let at = annotation_path(&keys.rules_annotation);
    let reason = annotation(&keys.reason_annotation)
        .map(str::trim)
        .filter(|r| !r.is_empty());
    let Some(reason) = reason else {
        findings.extend(policy.finding(
            RuleId::ExemptionWithoutReason,
            at,
            format!(
                "exempts rules without a reason, so none is exempted; add the annotation {} \
                 saying why",
                keys.reason_annotation
            ),
            false,
        ));
        return;
    };
    let mut exempt: Vec<RuleId> = Vec::new();
    let mut problems: Vec<Finding> = Vec::new();
    for id in listed.split(',').map(str::trim).filter(|id| !id.is_empty()) {
        match RuleId::parse(id) {
            None => problems.extend(policy.finding(
                RuleId::ExemptionUnknownRule,
                at.clone(),
                format!("names {id:?}, which is not a rule id; use an id from the rule reference"),
                false,
            )),
            Some(rule) if keys.forbidden_rules.contains(&rule) => problems.extend(policy.finding(
                RuleId::ExemptionForbidden,
                at.clone(),
                format!(
                    "exempts {id}, which the policy does not allow to be exempted; fix the \
                     finding instead"
                ),
                false,
            )),
            Some(rule) => exempt.push(rule),
        }
    }
    for finding in findings.iter_mut() {
        if exempt.contains(&finding.rule) {
            finding.exemption = Some(Exemption {
                reason: reason.to_string(),
            });
        }
    }
    findings.extend(problems);
}

fn annotation_path(key: &str) -> String {
    display(&[
        Tok::Key("metadata".into()),
        Tok::Key("annotations".into()),
        Tok::Key(key.to_string().into()),
    ])
}
