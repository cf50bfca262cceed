//! Workers of multi-node engines that run no engine program themselves: `ray start
//! --address=...` or a launcher's `worker` subcommand, in a placeholder or plain image, beside a
//! leader template of the same object that runs the engine. They join the leader's engine, so
//! they carry its workload and backend labels (every GPU the service holds carries its name);
//! they serve nothing, so they never get a port.

use super::argv::KnownEnv;
use super::catalogue::EngineSpec;
use super::detect::{Seen, detect};
use super::json::Json;
use super::kinds::Variant;
use super::policy::Policy;
use super::templates::PodTemplate;

/// The engines the object's templates serve (not as workers), in order, each once. Only an
/// object with several templates can pair a worker with a leader, so others cost nothing.
pub(super) fn leaders(
    templates: &[PodTemplate<'_>],
    known: Option<(&KnownEnv, &str)>,
    policy: &Policy,
) -> Vec<&'static EngineSpec> {
    let mut out: Vec<&'static EngineSpec> = Vec::new();
    // Detecting every container twice would cost each review of a many-role object: only a
    // command that mentions a worker marker may join a leader (a script read from a ConfigMap
    // may too, and only the audit reads those).
    let mentions = |c: &Json<'_>| {
        ["command", "args"]
            .iter()
            .filter_map(|k| c.get(k).and_then(Json::as_array))
            .flatten()
            .filter_map(Json::as_str)
            .any(|w| w.contains("ray") || w.contains("worker"))
    };
    if templates.len() < 2
        || (known.is_none() && !templates.iter().flat_map(containers).any(mentions))
    {
        return out;
    }
    for t in templates {
        let spec = t.effective.get("spec");
        let seen = Seen {
            worker_variant: t.variant == Some(Variant::Worker),
            known,
            volumes: spec.and_then(|s| s.get("volumes")),
            port_name: &policy.port_name,
            ..Seen::default()
        };
        for found in containers(t).filter_map(|c| detect(c, seen)) {
            if !found.worker_only && !out.iter().any(|s| std::ptr::eq(*s, found.spec)) {
                out.push(found.spec);
            }
        }
    }
    out
}

fn containers<'t, 'a>(t: &'t PodTemplate<'a>) -> impl Iterator<Item = &'t Json<'a>> {
    t.effective
        .get("spec")
        .and_then(|s| s.get("containers"))
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.is_object())
}
