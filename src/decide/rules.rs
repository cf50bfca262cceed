//! The rule table: like lints, each rule has a stable id, a default level and a one-line summary.
//! Levels can be changed per rule in the policy. The rule reference (docs/rules.md) mirrors this table
//! (a test checks that every id is documented).

use serde::{Deserialize, Serialize};

/// How a finding counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The rule is off: nothing is reported (spelled `allow` in the policy file).
    #[serde(rename = "allow")]
    Off,
    /// Reported, never blocks.
    Warn,
    /// Blocks admission in enforce mode; exit code 1 in the audit command.
    Deny,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Off => "allow",
            Level::Warn => "warn",
            Level::Deny => "deny",
        }
    }
}

macro_rules! rules {
    ($( $variant:ident = $id:literal, $level:ident, $summary:literal; )*) => {
        /// Stable rule identifiers.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum RuleId { $( $variant, )* }

        impl RuleId {
            pub const ALL: &'static [RuleId] = &[ $( RuleId::$variant, )* ];

            pub fn as_str(self) -> &'static str {
                match self { $( RuleId::$variant => $id, )* }
            }

            pub fn default_level(self) -> Level {
                match self { $( RuleId::$variant => Level::$level, )* }
            }

            pub fn summary(self) -> &'static str {
                match self { $( RuleId::$variant => $summary, )* }
            }
        }
    };
}

rules! {
    BackendUnsupported = "backend-unsupported", Deny,
        "the backend label has a value outside the supported set";
    BackendMismatch = "backend-mismatch", Deny,
        "the backend label names another engine than the one the containers run";
    MetricsDisabled = "metrics-disabled", Deny,
        "the engine runs with its Prometheus metrics switched off";
    PortNameConflict = "port-name-conflict", Deny,
        "the metrics port name is taken by a port whose number is not the metrics port";
    MetricsPortUnresolved = "metrics-port-unresolved", Warn,
        "an engine was detected but its metrics port cannot be resolved";
    MixedEngines = "mixed-engines", Warn,
        "one pod template runs different inference engines";
    SecondEngineContainer = "second-engine-container", Warn,
        "a second container of the pod serves an engine's metrics, which the one named port cannot cover";
    MetricsListenerLocal = "metrics-listener-local", Warn,
        "the engine's metrics listener binds to a loopback address the collector cannot reach";
    MetricsPathDiffers = "metrics-path-differs", Warn,
        "the engine serves Prometheus metrics at another path than /metrics, the collector's default";
    MetricsPortNamedOtherwise = "metrics-port-named-otherwise", Warn,
        "the metrics port already exists under another name, which is never renamed";
    MonitoringLabelsMissing = "monitoring-labels-missing", Warn,
        "the pod template lacks the monitoring labels or the named metrics port";
    UpdateNotInjected = "update-not-injected", Warn,
        "an update that does not change the pod template gets no labels, to avoid a rollout";
    WorkloadNameShortened = "workload-name-shortened", Warn,
        "the workload name is not a valid label value and was shortened";
    LegacyBackendLabel = "legacy-backend-label", Warn,
        "the pod template uses the legacy key alibabacloud.com/inference_backend";
    EngineNotSupported = "engine-not-supported", Warn,
        "an inference engine was detected whose backend is not in the supported set";
    UnreadableTemplate = "unreadable-template", Warn,
        "a pod template or container list has a shape the engine cannot read";
    ExemptionWithoutReason = "exemption-without-reason", Warn,
        "the object exempts rules without the reason annotation, so nothing is exempted";
    ExemptionUnknownRule = "exemption-unknown-rule", Warn,
        "the exemption annotation names a rule id that does not exist";
    ExemptionForbidden = "exemption-forbidden", Warn,
        "the exemption annotation names a rule the policy does not allow to be exempted";
    OverrideInvalid = "override-invalid", Warn,
        "an inference-webhook/engine or inference-webhook/metrics-port annotation has a value that is not an engine id, none, a port number or a declared port name";
}

impl RuleId {
    pub fn parse(s: &str) -> Option<RuleId> {
        RuleId::ALL.iter().copied().find(|r| r.as_str() == s)
    }
}

impl Serialize for RuleId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
