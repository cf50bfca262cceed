//! `audit --fix` suggestions: where detection is unsure, the override annotations that would
//! make it certain (docs/detection.md, "Overrides"). They are printed, never written: only the
//! owner knows what a launcher runs.

use crate::decide::{
    Decision, ENGINE_ANNOTATION, METRICS_PORT_ANNOTATION, RuleId, Strength, TemplateDecision,
};

/// One line per unsure detection of a serving container: an engine inferred from the image
/// name, or a metrics port that could not be resolved.
pub(super) fn suggestions(decision: &Decision) -> Vec<String> {
    let mut out = Vec::new();
    for t in &decision.templates {
        for d in &t.detections {
            // A worker only carries the labels: nothing there rests on the guess.
            let why = match d.strength {
                Strength::Image if !d.worker_only => {
                    Some("the engine rests on the image name only")
                }
                _ => None,
            };
            if let Some(why) = why {
                out.push(format!(
                    "suggest: {}: {why}; to make it certain, annotate the pod template \
                     {ENGINE_ANNOTATION}: {} (or none if it runs no inference engine)",
                    d.path, d.engine
                ));
            }
            if unresolved(decision, t, &d.path) {
                out.push(format!(
                    "suggest: {}: the metrics port is unknown; annotate the pod template \
                     {METRICS_PORT_ANNOTATION}: <the port number or the name of a declared port>",
                    d.path
                ));
            }
        }
    }
    out
}

fn unresolved(decision: &Decision, t: &TemplateDecision, path: &str) -> bool {
    t.backend.is_some()
        && decision
            .findings
            .iter()
            .any(|f| f.rule == RuleId::MetricsPortUnresolved && f.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{Input, Json, Operation, Policy, decide};
    use serde_json::json;

    fn suggested(container: serde_json::Value) -> Vec<String> {
        let object = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "m"},
            "spec": {"template": {"spec": {"containers": [container]}}}});
        let object = Json::from(&object);
        let input = Input {
            object: &object,
            old_object: None,
            operation: Operation::Create,
            known_env: None,
        };
        suggestions(&decide(&input, &Policy::default()))
    }

    #[test]
    fn unsure_detections_get_the_annotations_that_settle_them() {
        let guess = suggested(
            json!({"name": "m", "image": "vllm/vllm-openai:v0.10.0", "command": ["/run.sh"]}),
        );
        assert_eq!(guess.len(), 1, "{guess:?}");
        assert!(
            guess[0].contains("inference-webhook/engine: vllm"),
            "{guess:?}"
        );
        let port = suggested(
            json!({"name": "m", "image": "x", "command": ["vllm", "serve", "--port", "$(P)"],
            "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}),
        );
        assert_eq!(port.len(), 1, "{port:?}");
        assert!(
            port[0].contains("inference-webhook/metrics-port"),
            "{port:?}"
        );
        let sure = suggested(json!({"name": "m", "image": "x", "command": ["vllm", "serve", "m"]}));
        assert!(sure.is_empty(), "{sure:?}");
        let worker = suggested(json!({"name": "w", "image": "vllm/vllm-openai:v0.10.0",
            "command": ["sh", "-c", "bash /w/multi-node-serving.sh worker --ray_address=x"]}));
        assert!(worker.is_empty(), "{worker:?}");
    }
}
