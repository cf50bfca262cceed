//! Workers of multi-node engines that run no engine program themselves: `ray start
//! --address=...` or a launcher's `worker` subcommand, in a placeholder or plain image, beside a
//! leader template of the same object that runs the engine. They join the leader's engine, so
//! they carry its workload and backend labels (every GPU the service holds carries its name);
//! they serve nothing, so they never get a port.

use std::cell::OnceCell;

use super::argv::KnownSources;
use super::catalogue::EngineSpec;
use super::detect::{Seen, detect};
use super::json::Json;
use super::kinds::Variant;
use super::policy::Policy;
use super::templates::PodTemplate;

/// The engines the object's templates serve (not as workers), in order, each once: read only
/// when a container looks like a worker that runs no engine, since reading them means
/// detecting every container of the object a second time.
#[derive(Debug)]
pub(super) struct Leaders<'a> {
    templates: &'a [PodTemplate<'a>],
    known: Option<(&'a KnownSources, &'a str)>,
    port_name: &'a str,
    engines: OnceCell<Vec<&'static EngineSpec>>,
}

impl<'a> Leaders<'a> {
    pub(super) fn new(
        templates: &'a [PodTemplate<'a>],
        known: Option<(&'a KnownSources, &'a str)>,
        policy: &'a Policy,
    ) -> Self {
        Leaders {
            templates,
            known,
            port_name: &policy.port_name,
            engines: OnceCell::new(),
        }
    }
}

/// The engines other templates of an object serve, as detection asks for them (a trait object,
/// so that what detection holds does not tie it to the templates' lifetimes).
pub(super) trait LeaderEngines: std::fmt::Debug {
    fn engines(&self) -> &[&'static EngineSpec];
}

impl LeaderEngines for Leaders<'_> {
    /// The engines, read on first need. Only an object with several templates can pair a
    /// worker with a leader.
    fn engines(&self) -> &[&'static EngineSpec] {
        self.engines.get_or_init(|| {
            let mut out: Vec<&'static EngineSpec> = Vec::new();
            if self.templates.len() < 2 {
                return out;
            }
            for t in self.templates {
                let seen = Seen {
                    worker_variant: t.variant == Some(Variant::Worker),
                    known: self.known,
                    volumes: t.effective.get("spec").and_then(|s| s.get("volumes")),
                    port_name: self.port_name,
                    ..Seen::default()
                };
                for found in containers(t).filter_map(|c| detect(c, seen)) {
                    if !found.worker_only && !out.iter().any(|s| std::ptr::eq(*s, found.spec)) {
                        out.push(found.spec);
                    }
                }
            }
            out
        })
    }
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
