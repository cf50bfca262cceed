//! The policy: everything a user can configure about the engine, with defaults that need no file.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::decision::Finding;
use super::identity::IdentityLabel;
use super::rules::{Level, RuleId};

/// The opt-out label's value unless the policy sets another (`optOutValue`); the webhook
/// configurations' objectSelectors use the same.
pub const DEFAULT_OPT_OUT_VALUE: &str = "disabled";

/// Label keys of the monitoring contract.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct LabelKeys {
    pub workload: String,
    pub backend: String,
    /// The underscore spelling seen in public examples; kept when present, never added.
    pub legacy_backend: String,
}

impl Default for LabelKeys {
    fn default() -> Self {
        LabelKeys {
            workload: "alibabacloud.com/inference-workload".into(),
            backend: "alibabacloud.com/inference-backend".into(),
            legacy_backend: "alibabacloud.com/inference_backend".into(),
        }
    }
}

/// Per-object rule exemptions: the annotation keys, and the rules that cannot be exempted.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Exemptions {
    /// Annotation listing the exempted rule ids, comma-separated.
    pub rules_annotation: String,
    /// Annotation saying why; an exemption without it is not applied.
    pub reason_annotation: String,
    /// Rules an annotation cannot exempt (e.g. `metrics-disabled`, made non-negotiable).
    #[serde(deserialize_with = "deserialize_rule_ids")]
    pub forbidden_rules: Vec<RuleId>,
}

impl Default for Exemptions {
    fn default() -> Self {
        Exemptions {
            rules_annotation: "inference-webhook/ignore-rules".into(),
            reason_annotation: "inference-webhook/ignore-reason".into(),
            forbidden_rules: Vec::new(),
        }
    }
}

/// The policy file, as written by a user (YAML). Unknown fields are an error.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Policy {
    pub labels: LabelKeys,
    /// Name of the container port the collector scrapes.
    pub port_name: String,
    /// Backend label values that get labeled; other detected engines are only reported.
    pub supported_backends: Vec<String>,
    /// Annotation that opts a single object out (`"true"`).
    pub opt_out_annotation: String,
    /// Label that opts a single object out (with [`Policy::opt_out_value`]); also used by the
    /// webhook configuration's objectSelector.
    pub opt_out_label: String,
    /// The value of [`Policy::opt_out_label`] that opts an object out.
    pub opt_out_value: String,
    /// `defaultMode`: a setting of the front doors, which read it themselves (`crate::config`);
    /// named here so that an unknown field stays an error.
    #[serde(rename = "defaultMode")]
    front_door_mode: serde::de::IgnoredAny,
    /// Per-rule level overrides, by rule id.
    #[serde(deserialize_with = "deserialize_rule_levels")]
    pub rules: BTreeMap<RuleId, Level>,
    pub exemptions: Exemptions,
    pub workload_identity: WorkloadIdentity,
}

/// How the workload label's value is chosen (see `identity`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct WorkloadIdentity {
    /// Labels naming the top-level service, first match wins; before the controlling owner.
    pub labels: Vec<IdentityLabel>,
}

impl Default for WorkloadIdentity {
    fn default() -> Self {
        WorkloadIdentity {
            labels: super::identity::default_labels(),
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            labels: LabelKeys::default(),
            port_name: "http".into(),
            supported_backends: super::catalogue::default_supported_backends(),
            opt_out_annotation: "inference-webhook/skip".into(),
            opt_out_label: "inference-monitoring".into(),
            opt_out_value: DEFAULT_OPT_OUT_VALUE.into(),
            front_door_mode: serde::de::IgnoredAny,
            rules: BTreeMap::new(),
            exemptions: Exemptions::default(),
            workload_identity: WorkloadIdentity::default(),
        }
    }
}

/// A policy that could not be loaded; the message names the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid policy {path}: {message}")]
    Invalid { path: String, message: String },
}

impl Policy {
    /// The level a rule has under this policy.
    pub fn level(&self, rule: RuleId) -> Level {
        self.rules
            .get(&rule)
            .copied()
            .unwrap_or_else(|| rule.default_level())
    }

    /// A finding of `rule` at this policy's level, or `None` when the rule is set to `allow`.
    pub fn finding(
        &self,
        rule: RuleId,
        path: String,
        message: String,
        fixed_by_patch: bool,
    ) -> Option<Finding> {
        let level = self.level(rule);
        (level != Level::Off).then_some(Finding {
            rule,
            level,
            path,
            message,
            fixed_by_patch,
            exemption: None,
        })
    }

    pub fn supports(&self, backend: &str) -> bool {
        self.supported_backends.iter().any(|b| b == backend)
    }

    /// Parse and check a policy from YAML text; `origin` names it in errors.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        let invalid = |message: String| PolicyError::Invalid {
            path: origin.to_string(),
            message,
        };
        let policy: Policy = if text.trim().is_empty() {
            Policy::default()
        } else {
            crate::yaml::from_str(text, crate::yaml::RepeatedKeys::Refused)
                .map_err(|e| invalid(e.to_string()))?
        };
        policy.check().map_err(invalid)?;
        Ok(policy)
    }

    fn check(&self) -> Result<(), String> {
        for (field, key) in [
            ("labels.workload", &self.labels.workload),
            ("labels.backend", &self.labels.backend),
            ("labels.legacyBackend", &self.labels.legacy_backend),
            ("optOutLabel", &self.opt_out_label),
        ] {
            if !super::labels::is_qualified_name(key) {
                return Err(format!(
                    "{field}: {key:?} is not a valid Kubernetes label key"
                ));
            }
        }
        for (field, key) in [
            ("optOutAnnotation", &self.opt_out_annotation),
            (
                "exemptions.rulesAnnotation",
                &self.exemptions.rules_annotation,
            ),
            (
                "exemptions.reasonAnnotation",
                &self.exemptions.reason_annotation,
            ),
        ] {
            if !super::labels::is_qualified_name(key) {
                return Err(format!(
                    "{field}: {key:?} is not a valid Kubernetes annotation key"
                ));
            }
        }
        if self.exemptions.rules_annotation == self.exemptions.reason_annotation {
            return Err(
                "exemptions.rulesAnnotation and exemptions.reasonAnnotation must differ".into(),
            );
        }
        if self.labels.workload == self.labels.backend {
            return Err("labels.workload and labels.backend must differ".into());
        }
        if !super::labels::is_port_name(&self.port_name) {
            return Err(format!(
                "portName: {:?} is not a valid port name (IANA_SVC_NAME: at most 15 lowercase \
                 letters, digits and '-', with at least one letter)",
                self.port_name
            ));
        }
        if self.opt_out_value.is_empty() || !super::labels::is_label_value(&self.opt_out_value) {
            return Err(format!(
                "optOutValue: {:?} is not a valid label value",
                self.opt_out_value
            ));
        }
        check_identity(&self.workload_identity)?;
        if self.supported_backends.is_empty() {
            return Err("supportedBackends: must name at least one backend".into());
        }
        for b in &self.supported_backends {
            if b.is_empty() || !super::labels::is_label_value(b) {
                return Err(format!(
                    "supportedBackends: {b:?} is not a valid label value"
                ));
            }
        }
        Ok(())
    }
}

fn check_identity(identity: &WorkloadIdentity) -> Result<(), String> {
    for (i, row) in identity.labels.iter().enumerate() {
        let at = format!("workloadIdentity.labels[{i}]");
        for key in std::iter::once(&row.key).chain(row.when.keys()) {
            if !super::labels::is_qualified_name(key) {
                return Err(format!("{at}: {key:?} is not a valid Kubernetes label key"));
            }
        }
        if let Some(v) = row
            .when
            .values()
            .find(|v| !super::labels::is_label_value(v))
        {
            return Err(format!("{at}.when: {v:?} is not a valid label value"));
        }
    }
    Ok(())
}

fn deserialize_rule_levels<'de, D>(d: D) -> Result<BTreeMap<RuleId, Level>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let raw = BTreeMap::<String, Level>::deserialize(d)?;
    raw.into_iter()
        .map(|(id, level)| Ok((parse_rule_id::<D::Error>("rules", &id)?, level)))
        .collect()
}

fn deserialize_rule_ids<'de, D>(d: D) -> Result<Vec<RuleId>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let raw = Vec::<String>::deserialize(d)?;
    raw.iter()
        .map(|id| parse_rule_id::<D::Error>("exemptions.forbiddenRules", id))
        .collect()
}

fn parse_rule_id<E: serde::de::Error>(field: &str, id: &str) -> Result<RuleId, E> {
    RuleId::parse(id).ok_or_else(|| {
        let known: Vec<&str> = RuleId::ALL.iter().map(|r| r.as_str()).collect();
        E::custom(format!(
            "{field}: unknown rule id {id:?} (known: {})",
            known.join(", ")
        ))
    })
}
