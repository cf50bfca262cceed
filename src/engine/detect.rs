//! Which engine a container runs, whether it serves metrics, and on which port.
//!
//! The command beats the image: a vLLM image running `vllm bench serve` is a load generator, and
//! a plain PyTorch image running `vllm serve` is vLLM. The image alone counts when there is no
//! command (its entrypoint runs with the args) or when the command is an opaque launcher (a shell
//! script or an unknown program) that could be the image's own.

use serde_json::Value;

use super::argv::{self, Cmd, Invocation, Vars};
use super::catalogue::{
    CATALOGUE, CommandMatch, EngineSpec, ImageMatch, MetricsListener, MetricsSwitch, WorkerMatch,
};
use super::image::{self, ImageRef};

/// An engine found in a container.
#[derive(Debug)]
pub struct Found {
    pub spec: &'static EngineSpec,
    pub worker_only: bool,
    /// The metrics port, or why it cannot be known (`None` for a worker-only container).
    pub port: Option<Result<u16, String>>,
    /// Why metrics are switched off, when they are.
    pub metrics_off: Option<String>,
    pub evidence: Vec<String>,
}

/// Detect the engine of one (non-init) container. `worker_variant` is true for the worker
/// template of a leader/worker pair, where an unresolved rank means a worker.
pub fn detect(container: &Value, worker_variant: bool) -> Option<Found> {
    let image_text = container.get("image").and_then(Value::as_str);
    let image = image_text.and_then(image::parse);
    let command = string_list(container.get("command"));
    let args = string_list(container.get("args"));
    let mut vars = Vars::from_env(container.get("env"));
    let cmds = argv::commands(&command, &args, &mut vars);
    // The base engine of the image; a refinement needs the serving command's flag.
    let image_spec = image
        .as_ref()
        .and_then(|img| image_rows(img).find(|e| e.requires_flag.is_none()));

    for cmd in &cmds {
        let Some(spec) = CATALOGUE.iter().find(|e| serves(e, cmd)) else {
            continue;
        };
        let mut evidence = vec![format!("command `{}`", cmd.describe())];
        if let Some(flag) = spec.requires_flag {
            evidence.push(format!("flag {flag}"));
        }
        if let (Some(img), Some(is)) = (&image, image_spec)
            && is.family == spec.family
        {
            evidence.push(format!("image {}", show(img)));
        }
        return Some(found(spec, cmd, &vars, worker_variant, evidence));
    }

    let (img, spec) = (image.as_ref()?, image_spec?);
    let mut evidence = vec![format!("image {}", show(img))];
    if let Some(marker) = worker_marker(spec, img, &cmds) {
        evidence.push(format!("worker-only: {marker}"));
        return Some(Found {
            spec,
            worker_only: true,
            port: None,
            metrics_off: None,
            evidence,
        });
    }
    let entry = if command.is_empty() {
        // The image's entrypoint runs with the args; `vllm bench ...` args make it a client.
        let entry = Cmd {
            invocation: Invocation::Program(spec.id.to_string()),
            args: args.iter().map(|a| argv::kube_expand(a, &vars)).collect(),
        };
        if entry
            .first_positional()
            .is_some_and(|a| spec.non_server_subcommands.contains(&a))
        {
            return None;
        }
        evidence.push("no command: the image's entrypoint runs with the args".into());
        entry
    } else {
        let opaque = cmds.first().filter(|c| cmds.len() == 1 && is_opaque(c))?;
        evidence.push(format!(
            "command `{}` is not recognised: the image decides",
            opaque.describe()
        ));
        opaque.clone()
    };
    // The image cannot tell vLLM from vLLM PD: the flag can.
    let spec = image_rows(img)
        .find(|e| e.requires_flag.is_none_or(|f| entry.has_flag(f)))
        .unwrap_or(spec);
    Some(found(spec, &entry, &vars, worker_variant, evidence))
}

fn found(
    spec: &'static EngineSpec,
    cmd: &Cmd,
    vars: &Vars,
    worker_variant: bool,
    mut evidence: Vec<String>,
) -> Found {
    for w in spec.workers {
        let worker = match w {
            WorkerMatch::RankFlag(flag) => match cmd.flag(flag) {
                Some(rank) => {
                    let worker = rank.parse::<u32>().map_or(worker_variant, |n| n > 0);
                    if !worker {
                        evidence.push(format!("{flag} {rank}: the rank-0 process serves HTTP"));
                    }
                    worker.then(|| format!("{flag} {rank}"))
                }
                None => None,
            },
            WorkerMatch::WorkerArg => {
                (cmd.first_positional() == Some("worker")).then(|| cmd.describe())
            }
            WorkerMatch::Program(..) | WorkerMatch::ImageNameContains(_) => None,
        };
        if let Some(marker) = worker {
            evidence.push(format!("worker-only: {marker}"));
            return Found {
                spec,
                worker_only: true,
                port: None,
                metrics_off: None,
                evidence,
            };
        }
    }
    let port = metrics_port(spec, cmd, vars);
    match &port {
        Ok((p, source)) => evidence.push(format!("metrics port {p} ({source})")),
        Err(why) => evidence.push(format!("metrics port unknown: {why}")),
    }
    Found {
        spec,
        worker_only: false,
        port: Some(port.map(|(p, _)| p)),
        metrics_off: metrics_off(spec, cmd),
        evidence,
    }
}

/// Does this command run this engine's server?
fn serves(spec: &EngineSpec, cmd: &Cmd) -> bool {
    let named = spec.commands.iter().any(|m| match (m, &cmd.invocation) {
        (CommandMatch::Program(p, sub), Invocation::Program(prog)) => {
            prog == p && sub.is_none_or(|s| cmd.args.first().is_some_and(|a| a == s))
        }
        (CommandMatch::ProgramContains(p), Invocation::Program(prog)) => prog.contains(p),
        (CommandMatch::Module(m), Invocation::Module(module)) => module == m,
        (CommandMatch::Script(s), Invocation::Script(script)) => script == s,
        (CommandMatch::ArgPrefix(p), _) => cmd.args.iter().any(|a| a.starts_with(p)),
        _ => false,
    });
    named && spec.requires_flag.is_none_or(|f| cmd.has_flag(f))
}

/// The rows whose images match, in catalogue order.
fn image_rows(img: &ImageRef) -> impl Iterator<Item = &'static EngineSpec> + '_ {
    CATALOGUE.iter().filter(move |e| {
        e.images.iter().any(|m| match m {
            ImageMatch::Name(n) => img.name() == *n,
            ImageMatch::NameContains(n) => img.name().contains(n),
            ImageMatch::PathContains(p) => img.repository.contains(p),
        })
    })
}

fn worker_marker(spec: &EngineSpec, img: &ImageRef, cmds: &[Cmd]) -> Option<String> {
    spec.workers.iter().find_map(|w| match w {
        WorkerMatch::WorkerArg => cmds
            .iter()
            .find(|c| c.first_positional() == Some("worker"))
            .map(Cmd::describe),
        WorkerMatch::Program(p, sub) => cmds
            .iter()
            .find(|c| {
                c.invocation == Invocation::Program(p.to_string())
                    && sub.is_none_or(|s| c.args.first().is_some_and(|a| a == s))
            })
            .map(Cmd::describe),
        WorkerMatch::ImageNameContains(n) => img
            .name()
            .contains(n)
            .then(|| format!("image name contains {n:?}")),
        WorkerMatch::RankFlag(_) => None,
    })
}

/// An opaque launcher that may start the image's own engine: a shell script we cannot read.
/// Unknown programs (`mooncake_master` in an SGLang image) are not: they run something else.
fn is_opaque(cmd: &Cmd) -> bool {
    match &cmd.invocation {
        Invocation::Script(s) | Invocation::Program(s) => s.ends_with(".sh"),
        Invocation::Module(_) => false,
    }
}

fn metrics_port(spec: &EngineSpec, cmd: &Cmd, vars: &Vars) -> Result<(u16, String), String> {
    match spec.metrics {
        MetricsListener::Serving => {
            for flag in spec.port_flags {
                if let Some(v) = cmd.flag(flag) {
                    return parse_port(v, flag).map(|p| (p, flag.to_string()));
                }
            }
            if let Some(var) = spec.port_env
                && let Some(v) = vars.get(var)
            {
                return parse_port(v, var).map(|p| (p, format!("env {var}")));
            }
            spec.default_port
                .map(|p| (p, format!("{}'s default port", spec.name)))
                .ok_or_else(|| format!("{} has no default port", spec.name))
        }
        MetricsListener::Separate { flags, default } => {
            for flag in flags {
                if let Some(v) = cmd.flag(flag) {
                    return parse_port(v, flag).map(|p| (p, flag.to_string()));
                }
            }
            default
                .map(|p| (p, format!("{}'s default metrics port", spec.name)))
                .ok_or_else(|| format!("{} has no {}", spec.name, flags.join(" or ")))
        }
        MetricsListener::EnvVar(var) => match vars.get(var) {
            Some(v) => parse_port(v, var).map(|p| (p, format!("env {var}"))),
            None => Err(format!(
                "{} serves metrics only when {var} is set to a literal port in the container's env",
                spec.name
            )),
        },
    }
}

fn parse_port(value: &str, source: &str) -> Result<u16, String> {
    match value.trim().parse::<u32>() {
        Ok(n @ 1..=65535) => Ok(n as u16),
        _ if value.contains('$') => Err(format!(
            "{source} is {value:?}, a variable that is not a literal env value of this container"
        )),
        _ => Err(format!(
            "{source} is {value:?}, which is not a port number (1-65535)"
        )),
    }
}

fn metrics_off(spec: &EngineSpec, cmd: &Cmd) -> Option<String> {
    match spec.switch {
        MetricsSwitch::On => None,
        MetricsSwitch::RequiresFlag(flag) => (!cmd.has_flag(flag)).then(|| {
            format!(
                "{} serves no Prometheus metrics without {flag}; add {flag} to its arguments",
                spec.name
            )
        }),
        MetricsSwitch::DisabledBy(flag) => cmd.args.iter().any(|a| a == flag).then(|| {
            format!(
                "{flag} switches off {}'s metrics (dashboards stay empty); remove {flag}",
                spec.name
            )
        }),
    }
}

fn show(img: &ImageRef) -> String {
    match &img.tag {
        Some(t) => format!("{}/{}:{t}", img.registry, img.repository),
        None => format!("{}/{}", img.registry, img.repository),
    }
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    type Summary = (&'static str, bool, Option<Result<u16, String>>);

    fn engine(c: Value) -> Option<Summary> {
        detect(&c, false).map(|f| (f.spec.id, f.worker_only, f.port))
    }

    #[test]
    fn the_command_beats_the_image() {
        let bench =
            json!({"image": "vllm/vllm-openai:v0.10.0", "command": ["vllm", "bench", "serve"]});
        assert_eq!(engine(bench), None);
        let torch = json!({"image": "pytorch/pytorch:2.4", "command": ["vllm", "serve", "m"]});
        assert_eq!(engine(torch), Some(("vllm", false, Some(Ok(8000)))));
        let sleep = json!({"image": "lmsysorg/sglang:latest", "command": ["sleep", "infinity"]});
        assert_eq!(engine(sleep), None);
    }

    #[test]
    fn an_unknown_program_in_an_engine_image_is_not_the_engine_but_a_script_may_be() {
        let master = json!({"image": "lmsysorg/sglang:v0.5.5", "command": ["mooncake_master", "--port", "50051"]});
        assert_eq!(engine(master), None);
        let script = json!({"image": "nvcr.io/nvidia/tritonserver:24.01-py3", "command": ["/scripts/entrypoint.sh"]});
        assert_eq!(engine(script), Some(("triton", false, Some(Ok(8002)))));
        let worker = json!({"image": "<image>", "command": ["sh", "-c", "python3 ./server.py worker --triton_model_repo_dir=/r"]});
        assert_eq!(engine(worker), Some(("triton", true, None)));
    }

    #[test]
    fn image_only_counts_without_a_command() {
        let c = json!({"image": "registry.example.com:5000/team/vllm-openai:v0.10.0", "args": ["m", "--port", "8081"]});
        assert_eq!(engine(c), Some(("vllm", false, Some(Ok(8081)))));
        let pd = json!({"image": "vllm/vllm-openai", "args": ["m", "--kv-transfer-config", "{}"]});
        assert_eq!(engine(pd).map(|e| e.0), Some("vllm-pd"));
        let client = json!({"image": "vllm/vllm-openai", "args": ["bench", "serve"]});
        assert_eq!(engine(client), None);
    }

    #[test]
    fn ports_resolve_from_flags_env_and_defaults() {
        let env = json!({"image": "x/y", "command": ["vllm", "serve", "m", "--port", "$(PORT)"], "env": [{"name": "PORT", "value": "9000"}]});
        assert_eq!(engine(env), Some(("vllm", false, Some(Ok(9000)))));
        let secret = json!({"image": "x/y", "command": ["vllm", "serve", "--port", "$(PORT)"], "env": [{"name": "PORT", "valueFrom": {}}]});
        assert!(matches!(
            engine(secret),
            Some(("vllm", false, Some(Err(_))))
        ));
        let router = json!({"image": "lmsysorg/sglang-router:v0.2.4", "command": ["python3", "-m", "sglang_router.launch_router", "--port", "8000"]});
        assert_eq!(
            engine(router),
            Some(("sglang-router", false, Some(Ok(29000))))
        );
        let triton = json!({"image": "nvcr.io/nvidia/tritonserver:24.01-py3", "command": ["tritonserver", "--model-repository=/m", "--metrics-port=9102"]});
        assert_eq!(engine(triton), Some(("triton", false, Some(Ok(9102)))));
        for bad in ["99999", "-1", "abc"] {
            let c = json!({"image": "x", "command": ["vllm", "serve", "--port", bad]});
            assert!(matches!(engine(c), Some((_, _, Some(Err(_))))), "{bad}");
        }
    }

    #[test]
    fn workers_of_multi_node_engines_serve_no_port() {
        let ray = json!({"image": "vllm/vllm-openai:v0.8.5", "command": ["sh", "-c", "bash /w/multi-node-serving.sh worker --ray_address=$(LWS_LEADER_ADDRESS)"]});
        assert_eq!(engine(ray), Some(("vllm", true, None)));
        let rank = json!({"image": "lmsysorg/sglang", "command": ["python3", "-m", "sglang.launch_server", "--node-rank", "1"]});
        assert_eq!(engine(rank), Some(("sglang", true, None)));
        let lws_rank = json!({"image": "lmsysorg/sglang", "command": ["python3", "-m", "sglang.launch_server", "--node-rank", "$(LWS_WORKER_INDEX)"]});
        assert_eq!(engine(lws_rank.clone()).map(|e| e.1), Some(false));
        assert_eq!(detect(&lws_rank, true).map(|f| f.worker_only), Some(true));
    }

    #[test]
    fn metrics_switches_are_read() {
        let c = json!({"image": "lmsysorg/sglang", "command": ["python3", "-m", "sglang.launch_server"]});
        assert!(detect(&c, false).and_then(|f| f.metrics_off).is_some());
        let c = json!({"image": "lmsysorg/sglang", "command": ["python3", "-m", "sglang.launch_server", "--enable-metrics"]});
        assert!(detect(&c, false).is_some_and(|f| f.metrics_off.is_none()));
        let c = json!({"image": "x", "command": ["vllm", "serve", "--disable-log-stats"]});
        assert!(detect(&c, false).and_then(|f| f.metrics_off).is_some());
    }
}
