//! Per-object rule exemptions (`inference-webhook/ignore-rules` + `inference-webhook/ignore-reason`):
//! applied by the engine, so the webhook's outcome and every report see the same thing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use inference_webhook::admission::{Mode, Outcome, Route};
use inference_webhook::decide::{Decision, Finding, Level, Policy};
use serde_json::{Value, json};
use support::decide::*;

const RULES: &str = "inference-webhook/ignore-rules";
const REASON: &str = "inference-webhook/ignore-reason";

/// An SGLang Deployment without `--enable-metrics` (metrics-disabled, deny) and with a port
/// named `http` on another number (port-name-conflict, deny), carrying `annotations`.
fn sglang_without_metrics(annotations: Value) -> Value {
    let sglang = json!({"name": "s", "image": "lmsysorg/sglang:latest",
                        "command": ["python3", "-m", "sglang.launch_server", "--port", "8000"]});
    let mut obj = deployment("s", pod(json!([sglang])));
    obj["metadata"]["annotations"] = annotations;
    obj
}

fn finding<'a>(d: &'a Decision, rule: &str) -> &'a Finding {
    d.findings
        .iter()
        .find(|f| f.rule.as_str() == rule)
        .unwrap_or_else(|| panic!("no {rule} finding in {:?}", d.findings))
}

#[test]
fn an_exempted_deny_finding_is_kept_with_its_reason_and_does_not_deny() {
    let obj = sglang_without_metrics(json!({
        RULES: "metrics-disabled", REASON: "metrics come from a sidecar exporter (TICKET-12)"}));
    let d = create(&obj);
    let f = finding(&d, "metrics-disabled");
    assert_eq!(f.level, Level::Deny, "the level is kept");
    assert_eq!(
        f.exemption.as_ref().unwrap().reason,
        "metrics come from a sidecar exporter (TICKET-12)"
    );
    assert!(!d.denies());
    let out = Outcome::of(&d, Mode::Enforce, Route::Mutate);
    assert!(out.allowed, "{:?}", out.message);
    assert!(out.patch.is_some(), "the labels are still added");
    assert!(
        out.warnings
            .iter()
            .any(|w| w.starts_with("metrics-disabled: ") && w.contains("exempt (metrics come")),
        "{:?}",
        out.warnings
    );
    let json = serde_json::to_value(f).unwrap();
    assert_eq!(
        json["exemption"],
        json!({"reason": "metrics come from a sidecar exporter (TICKET-12)"})
    );
    let audit = Outcome::of(&d, Mode::Audit, Route::Validate);
    assert!(audit.audit_annotations["exempted"].contains("deny:metrics-disabled@"));
}

#[test]
fn only_the_named_rules_are_exempted() {
    let mut obj = sglang_without_metrics(json!({RULES: " backend-mismatch , metrics-disabled,",
                                               REASON: "known"}));
    // A contradicting backend label is exempted too; nothing else is.
    obj["spec"]["template"]["metadata"]["labels"][BACKEND] = json!("vllm");
    obj["spec"]["template"]["spec"]["containers"][0]["ports"] =
        json!([{"name": "http", "containerPort": 9090}]);
    let d = create(&obj);
    assert!(finding(&d, "metrics-disabled").exemption.is_some());
    assert!(finding(&d, "backend-mismatch").exemption.is_some());
    assert!(finding(&d, "port-name-conflict").exemption.is_none());
    assert!(d.denies(), "port-name-conflict still denies");
    let out = Outcome::of(&d, Mode::Enforce, Route::Validate);
    let message = out.message.unwrap();
    assert!(message.contains("port-name-conflict"), "{message}");
    assert!(!message.contains("metrics-disabled"), "{message}");
}

#[test]
fn an_exemption_without_a_reason_exempts_nothing_and_is_reported() {
    for reason in [None, Some("   ")] {
        let mut annotations = json!({RULES: "metrics-disabled"});
        if let Some(r) = reason {
            annotations[REASON] = json!(r);
        }
        let d = create(&sglang_without_metrics(annotations));
        assert!(finding(&d, "metrics-disabled").exemption.is_none());
        assert!(d.denies());
        let f = finding(&d, "exemption-without-reason");
        assert_eq!(f.level, Level::Warn);
        assert_eq!(
            f.path,
            "metadata.annotations[\"inference-webhook/ignore-rules\"]"
        );
        assert!(f.message.contains(REASON), "{}", f.message);
    }
}

#[test]
fn unknown_rule_ids_are_reported_and_the_known_ones_still_apply() {
    let d = create(&sglang_without_metrics(json!({
        RULES: "metrics-disabled,metrics-disbled", REASON: "r"})));
    assert!(finding(&d, "metrics-disabled").exemption.is_some());
    let f = finding(&d, "exemption-unknown-rule");
    assert!(f.message.contains("\"metrics-disbled\""), "{}", f.message);
    assert!(!d.denies());
}

#[test]
fn the_policy_can_forbid_exempting_a_rule() {
    let policy =
        Policy::from_yaml("exemptions: {forbiddenRules: [metrics-disabled]}", "test").unwrap();
    let d = create_with(
        &sglang_without_metrics(json!({RULES: "metrics-disabled", REASON: "please"})),
        &policy,
    );
    assert!(finding(&d, "metrics-disabled").exemption.is_none());
    assert!(d.denies(), "a forbidden exemption is ignored");
    assert!(
        finding(&d, "exemption-forbidden")
            .message
            .contains("metrics-disabled")
    );
}

#[test]
fn findings_about_the_annotations_cannot_exempt_themselves() {
    let d = create(&sglang_without_metrics(json!({
        RULES: "exemption-unknown-rule,nope", REASON: "r"})));
    assert!(finding(&d, "exemption-unknown-rule").exemption.is_none());
}

#[test]
fn the_annotation_keys_are_policy_fields_and_are_checked() {
    let policy = Policy::from_yaml(
        "exemptions: {rulesAnnotation: example.com/waive, reasonAnnotation: example.com/why}",
        "test",
    )
    .unwrap();
    let obj = sglang_without_metrics(json!({
        "example.com/waive": "metrics-disabled", "example.com/why": "r"}));
    assert!(!create_with(&obj, &policy).denies());
    assert!(create(&obj).denies(), "the default keys are not read then");
    for (yaml, field) in [
        (
            "exemptions: {rulesAnnotation: 'bad key'}",
            "exemptions.rulesAnnotation",
        ),
        (
            "exemptions: {reasonAnnotation: inference-webhook/ignore-rules}",
            "must differ",
        ),
        (
            "exemptions: {forbiddenRules: [no-such-rule]}",
            "no-such-rule",
        ),
        ("exemptions: {forbidden: []}", "forbidden"),
    ] {
        let e = Policy::from_yaml(yaml, "p.yaml").unwrap_err().to_string();
        assert!(e.contains(field), "{yaml}: {e}");
    }
}

#[test]
fn opted_out_objects_get_no_exemption_findings() {
    let d = create(&sglang_without_metrics(json!({
        RULES: "metrics-disabled", "inference-webhook/skip": "true"})));
    assert!(d.skipped.is_some());
    assert!(d.findings.is_empty(), "{:?}", d.findings);
}
