//! Which engine a container runs, whether it serves metrics, and on which port.
//!
//! The command beats the image: a vLLM image running `vllm bench serve` is a load generator, and
//! a plain PyTorch image running `vllm serve` is vLLM. The image alone counts when there is no
//! command (its entrypoint runs with the args) or when the command is an opaque launcher (a shell
//! script or an unknown program) that could be the image's own.

use std::borrow::Cow;

use super::argv::{self, Cmd, Invocation, KnownSources, Vars};
use super::catalogue::{
    CATALOGUE, CommandMatch, EngineSpec, FlagSpelling, FlagValues, ImageMatch, LOOKALIKE_WORDS,
    MetricsListener, MetricsSwitch, SETUP_PROGRAMS, WorkerMatch,
};
use super::decision::Strength;
use super::image::{self, ImageRef};
use super::json::Json;
use super::overrides::Chosen;
use super::workers::LeaderEngines;

/// An engine found in a container.
#[derive(Debug)]
pub(super) struct Found {
    pub spec: &'static EngineSpec,
    pub strength: Strength,
    pub worker_only: bool,
    /// The metrics port, or why it cannot be known (`None` for a worker-only container).
    pub port: Option<Result<u16, String>>,
    /// The port rests on a default or a value that an environment this review cannot see may
    /// change (an `envFrom` source, a `valueFrom` variable): never a reason to deny.
    pub port_weak: bool,
    /// Why metrics are switched off, when they are.
    pub metrics_off: Option<MetricsOff>,
    /// Why the metrics listener cannot be scraped from outside the pod, when it cannot.
    pub metrics_local: Option<String>,
    /// The serving port of an engine whose metrics listener is separate: a port named for the
    /// collector on it is a mistake to report, not a misconfigured engine to reject.
    pub serving_port: Option<u16>,
    pub evidence: Vec<String>,
}

/// Metrics switched off, and what makes that uncertain.
#[derive(Debug)]
pub(super) struct MetricsOff {
    pub why: String,
    /// Why this review cannot be sure (a source it cannot see, a version it cannot tell):
    /// never a reason to deny.
    pub doubt: Option<String>,
}

/// What detection needs besides the container.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Seen<'k> {
    /// The worker template of a leader/worker pair, where an unresolved rank means a worker.
    pub worker_variant: bool,
    /// ConfigMaps the front door knows, and the object's namespace.
    pub known: Option<(&'k KnownSources, &'k str)>,
    /// The pod's `volumes`: ConfigMaps mounted as files may hold the scripts a container runs.
    pub volumes: Option<&'k Json<'k>>,
    /// The port name the collector scrapes: a container's only port of that name is the one an
    /// unresolved port flag most likely set.
    pub port_name: &'k str,
    /// The owner's override annotations, for the container they speak of.
    pub chosen: Option<&'k Chosen>,
    /// The engines other templates of the object serve: a worker process there joins one.
    pub leaders: Option<&'k dyn LeaderEngines>,
}

/// Detect the engine of one (non-init) container.
pub(super) fn detect(container: &Json<'_>, seen: Seen<'_>) -> Option<Found> {
    let image_text = container.get("image").and_then(Json::as_str);
    let image = image_text.and_then(image::parse);
    let command = string_list(container.get("command"));
    let args = string_list(container.get("args"));
    let mut vars = Vars::from_container(container.get("env"), container.get("envFrom"), seen.known);
    vars.mount_files(container.get("volumeMounts"), seen.volumes, seen.known);
    let cmds = argv::commands(&command, &args, &mut vars);
    // The base engine of the image; a refinement needs the serving command's flag.
    let image_spec = image
        .as_ref()
        .and_then(|img| image_rows(img).find(|e| e.requires.is_none()));
    let read = Read {
        container,
        image: image.as_ref(),
        image_spec,
        cmds: &cmds,
        vars: &vars,
        seen,
    };
    let found = by_command(&read)
        .or_else(|| by_image(&read, command.is_empty(), &args))
        .or_else(|| joins_leader(&read));
    match seen.chosen {
        Some(chosen) if !chosen.is_empty() => overridden(&read, found, chosen, &command, &args),
        _ => found,
    }
}

/// A worker process that runs no engine program (`ray start --address=...`, `launcher.sh
/// worker`) in a container no image names an engine for, beside a leader of the same object
/// whose engine takes such workers: that engine's worker, labeled but with no port.
fn joins_leader(read: &Read<'_, '_>) -> Option<Found> {
    // Reading the leaders detects every container of the object again: only for a command
    // that mentions a worker marker (or a script from a ConfigMap, which only the audit reads).
    let mentions = ["command", "args"]
        .iter()
        .filter_map(|k| read.container.get(k).and_then(Json::as_array))
        .flatten()
        .filter_map(Json::as_str)
        .any(|w| w.contains("ray") || w.contains("worker"));
    if !mentions && read.seen.known.is_none() {
        return None;
    }
    let leaders = read.seen.leaders.map(|l| l.engines()).unwrap_or_default();
    leaders.iter().find_map(|spec| {
        let cmd = read.cmds.iter().find(|c| {
            spec.workers.iter().any(|w| match w {
                // A launcher's subcommand (`run.sh worker`, `launcher worker`); a Python
                // module's is a task queue's (`python -m celery worker`).
                WorkerMatch::WorkerArg => {
                    !matches!(c.invocation, Invocation::Module(_)) && marks_worker(w, c)
                }
                _ => marks_worker(w, c) && (!c.runs("ray", None) || c.has_flag("--address")),
            })
        })?;
        let evidence = vec![
            format!("command `{}`", cmd.describe()),
            format!(
                "worker-only: joins the {} leader another template of this object runs",
                spec.name
            ),
        ];
        Some(Found::worker(spec, Strength::Leader, evidence))
    })
}

/// The detection as the owner's annotations make it: their engine, read from the command that
/// serves it (or the first one that is not a setup step, or the image's entrypoint with the
/// args), and their metrics port.
fn overridden(
    read: &Read<'_, '_>,
    found: Option<Found>,
    chosen: &Chosen,
    command: &[&str],
    args: &[&str],
) -> Option<Found> {
    let mut f = match (chosen.engine, found) {
        (Some(Some(spec)), found) => {
            let worker = found
                .as_ref()
                .is_some_and(|f| f.worker_only && f.spec.family == spec.family)
                || (found.is_none() && read.seen.worker_variant);
            if worker && chosen.metrics_port.is_none() {
                let mut evidence = chosen.said.clone();
                evidence.push("worker-only: a worker of the engine the annotation names".into());
                Found::worker(spec, Strength::Annotation, evidence)
            } else {
                forced(read, spec, chosen, command, args)
            }
        }
        (_, found) => found?,
    };
    if let Some(p) = chosen.metrics_port {
        f.port = Some(Ok(p));
        f.port_weak = false;
        f.worker_only = false;
        // What was read of the port no longer counts.
        f.evidence
            .retain(|e| !e.starts_with("metrics port") && !e.starts_with("the port rests on"));
        f.evidence
            .push(format!("metrics port {p} (the annotation's)"));
    }
    if chosen.engine.is_none() {
        f.evidence.extend(chosen.said.iter().cloned());
    }
    Some(f)
}

/// The engine the annotation names, read from the container's command.
fn forced(
    read: &Read<'_, '_>,
    spec: &'static EngineSpec,
    chosen: &Chosen,
    command: &[&str],
    args: &[&str],
) -> Found {
    let mut evidence = chosen.said.clone();
    let family_serves = |c: &&Cmd| {
        CATALOGUE
            .iter()
            .filter(|e| e.family == spec.family)
            .any(|e| serves(e, &spelled(c, e.flag_spelling)))
    };
    let cmd = match read.cmds.iter().find(family_serves) {
        Some(c) => {
            evidence.push(format!("command `{}`", c.describe()));
            spelled(c, spec.flag_spelling).into_owned()
        }
        None if command.is_empty() => Cmd {
            invocation: Invocation::Program(spec.id.to_string()),
            args: args
                .iter()
                .map(|a| argv::kube_expand(a, read.vars))
                .collect(),
        },
        None => read
            .cmds
            .iter()
            .find(|c| !is_setup(c, spec))
            .or(read.cmds.first())
            .map_or_else(
                || Cmd {
                    invocation: Invocation::Program(String::new()),
                    args: Vec::new(),
                },
                |c| spelled(c, spec.flag_spelling).into_owned(),
            ),
    };
    let detected = Detected {
        spec,
        strength: Strength::Annotation,
        container: read.container,
        image: read.image,
        evidence,
    };
    detected.found(&cmd, read.vars, read.seen)
}

/// What detection has read of a container.
struct Read<'r, 'c> {
    container: &'r Json<'c>,
    image: Option<&'r ImageRef>,
    /// The base engine the image names, if any.
    image_spec: Option<&'static EngineSpec>,
    /// The simple commands the container runs.
    cmds: &'r [Cmd],
    vars: &'r Vars,
    seen: Seen<'r>,
}

/// The first command that runs a catalogued engine's server decides.
fn by_command(read: &Read<'_, '_>) -> Option<Found> {
    read.cmds.iter().find_map(|cmd| {
        // Respelled once, not once per catalogue row.
        let dashed = spelled(cmd, FlagSpelling::DashOrUnderscore);
        let (spec, cmd) = CATALOGUE.iter().find_map(|e| {
            let c = match e.flag_spelling {
                FlagSpelling::Exact => cmd,
                FlagSpelling::DashOrUnderscore => &dashed,
            };
            serves(e, c).then_some((e, c))
        })?;
        let mut evidence = vec![format!("command `{}`", cmd.describe())];
        if let Some(r) = &spec.requires {
            evidence.push(format!("{} sets up {}", r.flag, r.what));
        }
        if let (Some(img), Some(is)) = (read.image, read.image_spec)
            && is.family == spec.family
        {
            evidence.push(format!("image {}", show(img)));
        }
        let detected = Detected {
            spec,
            strength: Strength::Command,
            container: read.container,
            image: read.image,
            evidence,
        };
        Some(detected.found(cmd, read.vars, read.seen))
    })
}

/// No command names an engine: the image may, when the container runs the image's entrypoint
/// (no `command`) or an opaque launcher script.
fn by_image(read: &Read<'_, '_>, no_command: bool, args: &[&str]) -> Option<Found> {
    let (img, spec) = (read.image?, read.image_spec?);
    if lookalike_container(read.container, img, spec) {
        return None;
    }
    let mut evidence = vec![format!("image {}", show(img))];
    if let Some(marker) = worker_marker(spec, img, read.cmds) {
        evidence.push(format!("worker-only: {marker}"));
        return Some(Found::worker(spec, Strength::Image, evidence));
    }
    let (entry, strength) = if no_command {
        // The image's entrypoint runs with the args; `vllm bench ...` args make it a client.
        let entry = Cmd {
            invocation: Invocation::Program(spec.id.to_string()),
            args: args
                .iter()
                .map(|a| argv::kube_expand(a, read.vars))
                .collect(),
        };
        let entry = spelled(&entry, spec.flag_spelling).into_owned();
        if entry
            .first_positional()
            .is_some_and(|a| spec.non_server_subcommands.contains(&a))
        {
            return None;
        }
        let strength = if fits_entrypoint(spec, &entry) {
            evidence.push("no command: the image's entrypoint runs with these args".into());
            Strength::Entrypoint
        } else {
            evidence.push("no command, and no args the engine is known by".into());
            Strength::Image
        };
        (entry, strength)
    } else {
        let mut launchers = read.cmds.iter().filter(|c| !is_setup(c, spec));
        let opaque = launchers
            .next()
            .filter(|c| is_opaque(c) && launchers.next().is_none())?;
        evidence.push(format!(
            "command `{}` is not recognised: the image decides",
            opaque.describe()
        ));
        (
            spelled(opaque, spec.flag_spelling).into_owned(),
            Strength::Image,
        )
    };
    // The image cannot tell vLLM from vLLM PD: the flag can.
    let spec = image_rows(img)
        .find(|e| e.requires.as_ref().is_none_or(|r| r.holds(&entry)))
        .unwrap_or(spec);
    if let Some(r) = &spec.requires {
        evidence.push(format!("{} sets up {}", r.flag, r.what));
    }
    let detected = Detected {
        spec,
        strength,
        container: read.container,
        image: read.image,
        evidence,
    };
    Some(detected.found(&entry, read.vars, read.seen))
}

impl Found {
    /// A worker-only process of a multi-node engine: labeled, but it serves no metrics.
    fn worker(spec: &'static EngineSpec, strength: Strength, evidence: Vec<String>) -> Found {
        Found {
            spec,
            strength,
            worker_only: true,
            port: None,
            port_weak: false,
            metrics_off: None,
            metrics_local: None,
            serving_port: None,
            evidence,
        }
    }
}

/// An engine and the evidence for it, before its port and switches are read.
struct Detected<'c, 'a> {
    spec: &'static EngineSpec,
    strength: Strength,
    container: &'c Json<'a>,
    image: Option<&'c ImageRef>,
    evidence: Vec<String>,
}

impl Detected<'_, '_> {
    fn found(mut self, cmd: &Cmd, vars: &Vars, seen: Seen<'_>) -> Found {
        let spec = self.spec;
        if let Some(marker) = worker_flag(spec, cmd, seen.worker_variant, &mut self.evidence) {
            self.evidence.push(format!("worker-only: {marker}"));
            return Found::worker(spec, self.strength, self.evidence);
        }
        // Multi-node engines' worker pods mostly serve nothing; only a command shows otherwise.
        if seen.worker_variant && self.strength == Strength::Image {
            self.evidence.push(
                "worker-only: a worker template the image name alone cannot show serving".into(),
            );
            return Found::worker(spec, self.strength, self.evidence);
        }
        let no_metrics = spec.no_metrics.iter().find(|m| runs(cmd, m)).map(|m| {
            let how = match m {
                CommandMatch::ArgPrefix(flag) => (*flag).to_string(),
                _ => cmd.describe(),
            };
            format!("no /metrics ({how}): no port to name")
        });
        if let Some(why) = no_metrics.or_else(|| predates_metrics(spec, self.image)) {
            self.evidence.push(why);
            return Found {
                worker_only: false,
                ..Found::worker(spec, self.strength, self.evidence)
            };
        }
        let port = match metrics_port(spec, cmd, vars) {
            Err(Unresolved::Variable(why)) => match spec.metrics {
                MetricsListener::Separate { default, .. } => {
                    let serving = separate_serving_port(spec, cmd);
                    declared_metrics_port(self.container, default, serving).ok_or_else(|| {
                        format!(
                            "{why}, and no declared port is named like a metrics port{}",
                            default.map_or(String::new(), |d| format!(
                                " or is {}'s default metrics port {d}",
                                spec.name
                            ))
                        )
                    })
                }
                _ => declared_port(self.container, seen.port_name).ok_or(why),
            },
            Err(Unresolved::Invalid(why)) => Err(why),
            Ok(p) => match undeclared_guess(&self, &p) {
                Some(why) => Err(why),
                None => Ok(p),
            },
        };
        let port_weak = match &port {
            Ok(p) => {
                self.evidence
                    .push(format!("metrics port {} ({})", p.number, p.source));
                p.weak
            }
            Err(why) => {
                self.evidence.push(format!("metrics port unknown: {why}"));
                false
            }
        };
        if port_weak {
            self.evidence.push(
                "the port rests on a default an unseen envFrom or valueFrom source may change"
                    .into(),
            );
        }
        Found {
            spec,
            strength: self.strength,
            worker_only: false,
            port: Some(port.map(|p| p.number)),
            port_weak,
            metrics_off: metrics_off(spec, cmd, vars, self.image),
            metrics_local: metrics_local(spec, cmd, self.image),
            serving_port: separate_serving_port(spec, cmd),
            evidence: self.evidence,
        }
    }
}

/// The command with its flags spelled as the engine's parser reads them.
fn spelled(cmd: &Cmd, spelling: FlagSpelling) -> Cow<'_, Cmd> {
    // A long flag whose name (before any `=`) has an underscore.
    let respell = |a: &String| {
        a.strip_prefix("--")
            .is_some_and(|f| f.bytes().take_while(|&b| b != b'=').any(|b| b == b'_'))
    };
    if spelling == FlagSpelling::Exact || !cmd.args.iter().any(respell) {
        return Cow::Borrowed(cmd);
    }
    let args = cmd
        .args
        .iter()
        .map(|a| {
            if !respell(a) {
                return a.clone();
            }
            match a.split_once('=') {
                Some((name, value)) => format!("{}={value}", name.replace('_', "-")),
                None => a.replace('_', "-"),
            }
        })
        .collect();
    Cow::Owned(Cmd {
        invocation: cmd.invocation.clone(),
        args,
    })
}

/// Whether args given to the image's entrypoint are the engine's: a flag only it takes, or
/// the model first for an entrypoint that takes the model first.
fn fits_entrypoint(spec: &EngineSpec, entry: &Cmd) -> bool {
    let model_first = spec.positional_model
        && entry
            .args
            .first()
            .is_some_and(|a| !a.starts_with('-') && !a.is_empty());
    model_first || spec.signature_flags.iter().any(|f| entry.has_flag(f))
}

fn worker_flag(
    spec: &EngineSpec,
    cmd: &Cmd,
    worker_variant: bool,
    evidence: &mut Vec<String>,
) -> Option<String> {
    spec.workers.iter().find_map(|w| match w {
        WorkerMatch::RankFlag(flag) => {
            let rank = cmd.flag(flag)?;
            let worker = rank.parse::<u32>().map_or(worker_variant, |n| n > 0);
            if !worker {
                evidence.push(format!("{flag} {rank}: the rank-0 process serves HTTP"));
            }
            worker.then(|| format!("{flag} {rank}"))
        }
        WorkerMatch::WorkerArg => marks_worker(w, cmd).then(|| cmd.describe()),
        WorkerMatch::Program(..) | WorkerMatch::ImageNameContains(_) => None,
    })
}

/// Whether a command is a worker by a marker the command itself shows (`... worker`,
/// `ray start`).
fn marks_worker(w: &WorkerMatch, cmd: &Cmd) -> bool {
    match w {
        WorkerMatch::WorkerArg => cmd.first_positional() == Some("worker"),
        WorkerMatch::Program(program, sub) => cmd.runs(program, *sub),
        WorkerMatch::ImageNameContains(_) | WorkerMatch::RankFlag(_) => false,
    }
}

/// Does this command run this engine's server?
fn serves(spec: &EngineSpec, cmd: &Cmd) -> bool {
    let named = spec.commands.iter().any(|m| runs(cmd, m));
    named && spec.requires.as_ref().is_none_or(|r| r.holds(cmd))
}

/// Whether a command is what a catalogue command match names.
fn runs(cmd: &Cmd, m: &CommandMatch) -> bool {
    match (m, &cmd.invocation) {
        (CommandMatch::Program(p, sub), _) => cmd.runs(p, *sub),
        (CommandMatch::ProgramContains(p), Invocation::Program(prog)) => prog.contains(p),
        (CommandMatch::Module(m), Invocation::Module(module)) => module == m,
        (CommandMatch::Script(s), Invocation::Script(script)) => script_is(script, s),
        (CommandMatch::ArgPrefix(p), _) => cmd.args.iter().any(|a| a.starts_with(p)),
        _ => false,
    }
}

/// A script path names a catalogue script: by file name, or by its path's end when the
/// catalogue's name has a `/` (`openai_frontend/main.py`).
fn script_is(path: &str, name: &str) -> bool {
    if name.contains('/') {
        path == name || path.ends_with(&format!("/{name}"))
    } else {
        path.rsplit('/').next() == Some(name)
    }
}

/// The rows whose images match, in catalogue order. An image name with a look-alike word
/// (`aibrix/vllm-mock`) is not the engine it names, unless the catalogue names it exactly.
fn image_rows(img: &ImageRef) -> impl Iterator<Item = &'static EngineSpec> + '_ {
    let name = img.name();
    let lookalike = name
        .split(['-', '_', '.'])
        .any(|w| LOOKALIKE_WORDS.contains(&w));
    // Split once for every row that looks for a word.
    let words: Vec<&str> = name.split(['-', '_']).collect();
    CATALOGUE.iter().filter(move |e| {
        let lookalike = lookalike
            || (!e.lookalike_words.is_empty()
                && name
                    .split(['-', '_', '.'])
                    .any(|w| e.lookalike_words.contains(&w)));
        e.images.iter().any(|m| match m {
            ImageMatch::Name(n) => name == *n,
            ImageMatch::NameWord(n) => !lookalike && words.iter().any(|w| is_word(w, n)),
            ImageMatch::NameContains(n) => !lookalike && name.contains(n),
            ImageMatch::PathContains(p) => img.repository.contains(p),
        })
    })
}

/// Whether a container's name says it runs something else than the engine its image names
/// (a container `latency-proxy` in a vLLM image): image-only evidence loses to it. A word the
/// image's name or the engine's own names have is the product itself (a container `router` or
/// `gateway` of the SGLang router, whose images are `sglang-router` and `sgl-model-gateway`).
fn lookalike_container(container: &Json<'_>, img: &ImageRef, spec: &EngineSpec) -> bool {
    let Some(name) = container.get("name").and_then(Json::as_str) else {
        return false;
    };
    let own = |w: &str| {
        let names = spec.images.iter().filter_map(|m| match m {
            ImageMatch::Name(n) | ImageMatch::NameWord(n) | ImageMatch::NameContains(n) => Some(*n),
            ImageMatch::PathContains(_) => None,
        });
        [img.name(), spec.id]
            .into_iter()
            .chain(names)
            .any(|n| n.split(['-', '_', '.']).any(|x| x == w))
    };
    name.split(['-', '_', '.'])
        .any(|w| (LOOKALIKE_WORDS.contains(&w) || spec.lookalike_words.contains(&w)) && !own(w))
}

/// A word of an image name is `word`, maybe with a version after it: `vllm` is a word of
/// `vllm-gaudi`, `opea-vllm`, `vllm0.9`, but not of `myvllmx`.
fn is_word(part: &str, word: &str) -> bool {
    part.strip_prefix(word)
        .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
}

/// A worker marker anywhere in what a container of an engine image runs, or in the image name.
fn worker_marker(spec: &EngineSpec, img: &ImageRef, cmds: &[Cmd]) -> Option<String> {
    spec.workers.iter().find_map(|w| match w {
        WorkerMatch::ImageNameContains(n) => img
            .name()
            .contains(n)
            .then(|| format!("image name contains {n:?}")),
        _ => cmds.iter().find(|c| marks_worker(w, c)).map(Cmd::describe),
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

/// Whether a command only prepares or reports (a [`SETUP_PROGRAMS`] program, or one of the
/// engine's own).
fn is_setup(cmd: &Cmd, spec: &EngineSpec) -> bool {
    matches!(&cmd.invocation, Invocation::Program(p)
        if SETUP_PROGRAMS.contains(&p.as_str()) || spec.setup_programs.contains(&p.as_str()))
}

/// A resolved metrics port and where it came from.
struct Port {
    number: u16,
    source: String,
    weak: bool,
    /// The engine's default: no flag or variable of the container names it.
    default: bool,
}

/// Why an image-name guess's default port is not taken: the container declares ports, and
/// not that one. The guess, or at least its port, is wrong there, and naming a port nothing
/// listens on would hide it.
fn undeclared_guess(detected: &Detected<'_, '_>, port: &Port) -> Option<String> {
    if detected.strength != Strength::Image || !port.default {
        return None;
    }
    let declared: Vec<u64> = detected
        .container
        .get("ports")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("containerPort").and_then(Json::as_u64))
        .collect();
    let listed = declared.contains(&u64::from(port.number));
    (!declared.is_empty() && !listed).then(|| {
        let declared: Vec<String> = declared.iter().map(u64::to_string).collect();
        format!(
            "the image suggests {} on its default port {}, but the container declares only {}",
            detected.spec.name,
            port.number,
            declared.join(", ")
        )
    })
}

/// Why a metrics port is unknown.
enum Unresolved {
    /// A variable this review cannot resolve.
    Variable(String),
    /// Anything else (not a number, no default).
    Invalid(String),
}

fn metrics_port(spec: &EngineSpec, cmd: &Cmd, vars: &Vars) -> Result<Port, Unresolved> {
    let (flags, env, default, what) = match spec.metrics {
        MetricsListener::Serving => (spec.port_flags, spec.port_env, spec.default_port, "port"),
        MetricsListener::Separate { flags, default, .. } => {
            (flags, &[][..], default, "metrics port")
        }
        MetricsListener::EnvVar(var) => {
            return match vars.get(var) {
                Some(v) => parse_port(v, var, format!("env {var}"), false),
                None if vars.may_be_unseen(var) => Err(Unresolved::Variable(format!(
                    "{var} comes from a source this review cannot see"
                ))),
                None => Err(Unresolved::Invalid(format!(
                    "{} serves metrics only when {var} is set to a literal port in the container's env",
                    spec.name
                ))),
            };
        }
    };
    if let Some(f) = cmd.last_flag(flags) {
        if f.joined && spec.flag_values == FlagValues::SpaceOnly {
            return Err(Unresolved::Invalid(format!(
                "{} does not take `{}={}`: its parser rejects the word and the server exits; \
                 write `{} {}`",
                spec.name, f.flag, f.value, f.flag, f.value
            )));
        }
        return parse_port(f.value, f.flag, f.flag.to_string(), false);
    }
    for var in env {
        if let Some(v) = vars.get(var) {
            return parse_port(v, var, format!("env {var}"), false);
        }
    }
    // A default holds only while nothing unseen sets the variables the decision reads.
    let weak = env.iter().any(|v| vars.may_be_unseen(v));
    match default {
        Some(p) => Ok(Port {
            number: p,
            source: format!("{}'s default {what}", spec.name),
            weak,
            default: true,
        }),
        None => Err(Unresolved::Invalid(format!(
            "{} has no {}",
            spec.name,
            if flags.is_empty() {
                "default port".to_string()
            } else {
                flags.join(" or ")
            }
        ))),
    }
}

fn parse_port(value: &str, shown: &str, source: String, weak: bool) -> Result<Port, Unresolved> {
    match value.trim().parse::<u32>() {
        Ok(n @ 1..=65535) => Ok(Port {
            number: n as u16,
            source,
            weak,
            default: false,
        }),
        _ if value.contains('$') => Err(Unresolved::Variable(format!(
            "{shown} is {value:?}, a variable that is not a literal env value of this container"
        ))),
        _ => Err(Unresolved::Invalid(format!(
            "{shown} is {value:?}, which is not a port number (1-65535)"
        ))),
    }
}

/// For a port flag whose value cannot be read: the container's only port named `port_name`,
/// else its only port. Never a port the container does not declare.
fn declared_port(container: &Json<'_>, port_name: &str) -> Option<Port> {
    let ports: Vec<&Json<'_>> = container
        .get("ports")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .collect();
    let number = |p: &Json<'_>| {
        p.get("containerPort")
            .and_then(Json::as_u64)
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| *n > 0)
    };
    let named: Vec<&Json<'_>> = ports
        .iter()
        .copied()
        .filter(|p| p.get("name").and_then(Json::as_str) == Some(port_name))
        .collect();
    let (only, how) = match (named.as_slice(), ports.as_slice()) {
        ([one], _) => (
            *one,
            format!("the container's only port named {port_name:?}"),
        ),
        ([], [one]) => (*one, "the container's only port".to_string()),
        _ => return None,
    };
    Some(Port {
        number: number(only)?,
        source: format!("the port flag's value is unknown: {how}"),
        weak: true,
        default: false,
    })
}

/// Words of a port name that say it is a metrics port (`metrics`, `triton-metrics`, `prom`).
const METRICS_PORT_WORDS: &[&str] = &["metrics", "metric", "prometheus", "prom"];

/// For a separate metrics listener whose port flag's value cannot be read: the container's
/// only port named like a metrics port, else the engine's default metrics port when the
/// container declares it. Never the serving port: nothing there serves the engine's metrics.
fn declared_metrics_port(
    container: &Json<'_>,
    default: Option<u16>,
    serving: Option<u16>,
) -> Option<Port> {
    let declared: Vec<(Option<&str>, u16)> = container
        .get("ports")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let n = p.get("containerPort").and_then(Json::as_u64)?;
            let n = u16::try_from(n)
                .ok()
                .filter(|n| *n > 0 && Some(*n) != serving)?;
            Some((p.get("name").and_then(Json::as_str), n))
        })
        .collect();
    let mut named: Vec<u16> = declared
        .iter()
        .filter(|(name, _)| {
            name.is_some_and(|n| n.split(['-', '_']).any(|w| METRICS_PORT_WORDS.contains(&w)))
        })
        .map(|(_, n)| *n)
        .collect();
    named.dedup();
    let (number, how) = match (named.as_slice(), default) {
        ([one], _) => (
            *one,
            "the container's only port named like a metrics port".to_string(),
        ),
        (_, Some(d)) if declared.iter().any(|(_, n)| *n == d) => (
            d,
            format!("the default metrics port {d}, which the container declares"),
        ),
        _ => return None,
    };
    Some(Port {
        number,
        source: format!("the metrics port flag's value is unknown: {how}"),
        weak: true,
        default: false,
    })
}

fn metrics_off(
    spec: &EngineSpec,
    cmd: &Cmd,
    vars: &Vars,
    image: Option<&ImageRef>,
) -> Option<MetricsOff> {
    let certain = |why: String| MetricsOff { why, doubt: None };
    let disabled_by = |flag: &str| {
        format!(
            "{flag} switches off {}'s metrics (dashboards stay empty); remove {flag}",
            spec.name
        )
    };
    match spec.switch {
        MetricsSwitch::On => None,
        MetricsSwitch::RequiresFlag { flag, env } => {
            let env_value = env.as_ref().and_then(|e| vars.get(e.var));
            if cmd.has_flag(flag)
                || env
                    .as_ref()
                    .zip(env_value)
                    .is_some_and(|(e, v)| e.truth.holds(v))
            {
                return None;
            }
            let fix = match env {
                Some(e) => format!("add {flag} to its arguments (or set {}=1)", e.var),
                None => format!("add {flag} to its arguments"),
            };
            Some(MetricsOff {
                why: format!(
                    "{} serves no Prometheus metrics without {flag}; {fix}",
                    spec.name
                ),
                doubt: env
                    .as_ref()
                    .filter(|e| env_value.is_none() && vars.may_be_unseen(e.var))
                    .map(|e| {
                        format!(
                            "an environment source this review cannot see may set {}",
                            e.var
                        )
                    }),
            })
        }
        MetricsSwitch::DisabledBy(flag) => cmd
            .args
            .iter()
            .any(|a| a == flag)
            .then(|| certain(disabled_by(flag))),
        MetricsSwitch::OffBy { flag, off } => cmd
            .flag(flag)
            .filter(|v| off.holds(v))
            .map(|v| certain(disabled_by(&format!("{flag}={v}")))),
        MetricsSwitch::ByVersion {
            added,
            enable,
            on_by_default,
            disable,
        } => {
            if cmd.has_flag(disable) {
                return Some(certain(disabled_by(disable)));
            }
            let version = image.and_then(ImageRef::version);
            // Before `added` there is nothing to switch on ([`predates_metrics`]).
            if cmd.has_flag(enable) || version.is_some_and(|v| v >= on_by_default || v < added) {
                return None;
            }
            let (from, on) = (show_version(added), show_version(on_by_default));
            let why = format!(
                "{} {from} to before {on} serves no Prometheus metrics without {enable}; add \
                 {enable} to its arguments (from {on} metrics are on by default and {enable} is \
                 not accepted; before {from} there are none)",
                spec.name
            );
            Some(MetricsOff {
                why,
                doubt: version.is_none().then(|| {
                    format!(
                        "the image tag does not say which {} version runs",
                        spec.name
                    )
                }),
            })
        }
    }
}

/// Why an engine serves no `/metrics` because the version its image tag names has none yet.
fn predates_metrics(spec: &EngineSpec, image: Option<&ImageRef>) -> Option<String> {
    let MetricsSwitch::ByVersion { added, .. } = spec.switch else {
        return None;
    };
    let version = image.and_then(ImageRef::version)?;
    (version < added).then(|| {
        format!(
            "no /metrics before {} {} (image tag {})",
            spec.name,
            show_version(added),
            show_version(version)
        )
    })
}

fn show_version((major, minor, patch): (u32, u32, u32)) -> String {
    format!("v{major}.{minor}.{patch}")
}

fn separate_serving_port(spec: &EngineSpec, cmd: &Cmd) -> Option<u16> {
    if !matches!(spec.metrics, MetricsListener::Separate { .. }) {
        return None;
    }
    match cmd.first_flag(spec.port_flags) {
        Some((_, v)) => v.trim().parse().ok(),
        None => spec.default_port,
    }
}

/// A separate metrics listener bound to loopback cannot be scraped from outside the pod.
fn metrics_local(spec: &EngineSpec, cmd: &Cmd, image: Option<&ImageRef>) -> Option<String> {
    let MetricsListener::Separate {
        host_flag,
        default_host,
        all_interfaces_by_default: renamed,
        ..
    } = spec.metrics
    else {
        return None;
    };
    let program = match &cmd.invocation {
        Invocation::Program(p) => Some(p.as_str()),
        _ => None,
    };
    let later_build = [program, image.map(ImageRef::name)]
        .into_iter()
        .flatten()
        .any(|name| renamed.contains(&name));
    let (host, from) = match host_flag.and_then(|f| cmd.first_flag(&[f])) {
        Some((f, h)) => (h, f.to_string()),
        None if later_build => return None,
        None => (default_host?, format!("{}'s default", spec.name)),
    };
    let loopback = host == "localhost" || host == "::1" || host.starts_with("127.");
    loopback.then(|| {
        let flag = host_flag.unwrap_or("the metrics host flag");
        format!(
            "{}'s metrics listener binds to {host} ({from}), which the collector cannot reach \
             from outside the pod; add {flag} 0.0.0.0",
            spec.name
        )
    })
}

fn show(img: &ImageRef) -> String {
    match &img.tag {
        Some(t) => format!("{}/{}:{t}", img.registry, img.repository),
        None => format!("{}/{}", img.registry, img.repository),
    }
}

fn string_list<'j>(v: Option<&'j Json<'_>>) -> Vec<&'j str> {
    v.and_then(Json::as_array)
        .map(|a| a.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// Detection of a container written as a `serde_json::Value`.
    fn detect(container: &Value, seen: Seen<'_>) -> Option<Found> {
        super::detect(&Json::from(container), seen)
    }

    type Summary = (&'static str, bool, Option<Result<u16, String>>);

    fn engine(c: Value) -> Option<Summary> {
        detect(&c, Seen::default()).map(|f| (f.spec.id, f.worker_only, f.port))
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
        let pd = json!({"image": "vllm/vllm-openai", "args": ["m", "--kv-transfer-config", r#"{"kv_connector":"NixlConnector","kv_role":"kv_both"}"#]});
        assert_eq!(engine(pd).map(|e| e.0), Some("vllm-pd"));
        let client = json!({"image": "vllm/vllm-openai", "args": ["bench", "serve"]});
        assert_eq!(engine(client), None);
    }

    #[test]
    fn kv_transfer_means_disaggregation_only_for_pairing_roles_or_connectors() {
        let kv = |config: &str| {
            let c = json!({"image": "x", "command": ["vllm", "serve", "m", "--kv_transfer_config", config]});
            engine(c).map(|e| e.0)
        };
        assert_eq!(
            kv(r#"{"kv_connector":"LMCacheConnectorV1","kv_role":"kv_producer"}"#),
            Some("vllm-pd")
        );
        assert_eq!(
            kv(r#"{"kv_connector":"NixlConnector","kv_role":"kv_both"}"#),
            Some("vllm-pd")
        );
        assert_eq!(
            kv(r#"{"kv_connector":"OffloadingConnector","kv_role":"kv_both"}"#),
            Some("vllm")
        );
        assert_eq!(
            kv(r#"{"kv_connector":"LMCacheConnectorV1","kv_role":"kv_both"}"#),
            Some("vllm")
        );
        assert_eq!(
            kv("{kv_connector:NixlConnector,kv_role:kv_consumer}"),
            Some("vllm-pd")
        );
        assert_eq!(kv("$(KV_TRANSFER_CONFIG)"), Some("vllm"));
    }

    #[test]
    fn flags_are_read_in_every_spelling_the_engine_accepts() {
        let c = json!({"image": "x", "command": ["vllm", "serve", "m", "--port=9001", "--disable_log_stats"]});
        let f = detect(&c, Seen::default()).expect("vLLM");
        assert_eq!(f.port, Some(Ok(9001)));
        assert!(f.metrics_off.is_some());
        // SGLang's plain argparse does not take `_` for `-`.
        let c = json!({"image": "x", "command": ["python3", "-m", "sglang.launch_server", "--enable_metrics"]});
        assert!(detect(&c, Seen::default()).is_some_and(|f| f.metrics_off.is_some()));
    }

    #[test]
    fn look_alike_images_are_not_engines_and_image_names_are_read_by_word() {
        for image in [
            "aibrix/vllm-mock:nightly",
            "ghcr.io/faust-benchou/dynamo-mocker-vllm:latest",
            "ghcr.io/x/vllm-sim:v1",
            "sglang-bench:1",
            "myvllmx:1",
        ] {
            assert_eq!(
                engine(json!({"image": image, "args": ["--port", "8000"]})),
                None,
                "{image}"
            );
        }
        for (image, id) in [
            ("opea/vllm-gaudi:latest", "vllm"),
            ("ghcr.io/huggingface/tgi-gaudi:1.2.1", "tgi"),
        ] {
            assert_eq!(
                engine(json!({"image": image})).map(|e| e.0),
                Some(id),
                "{image}"
            );
        }
    }

    #[test]
    fn strength_says_what_the_detection_rests_on() {
        let strength = |c: Value| detect(&c, Seen::default()).map(|f| f.strength);
        let cmd = json!({"image": "x", "command": ["sh", "-c", "--", "exec vllm serve m"]});
        assert_eq!(strength(cmd), Some(Strength::Command));
        let entry = json!({"image": "vllm/vllm-openai:v0.10.0", "args": ["Qwen/Qwen3-8B"]});
        assert_eq!(strength(entry), Some(Strength::Entrypoint));
        let tgi =
            json!({"image": "ghcr.io/huggingface/tgi-gaudi:1.2.1", "args": ["--model-id", "m"]});
        assert_eq!(strength(tgi), Some(Strength::Entrypoint));
        let bare = json!({"image": "ghcr.io/huggingface/text-generation-inference:2.4.0"});
        assert_eq!(strength(bare), Some(Strength::Image));
        let script = json!({"image": "lmsysorg/sglang:v0.5", "command": ["/start.sh"]});
        assert_eq!(strength(script), Some(Strength::Image));
    }

    #[test]
    fn unresolved_port_flags_use_the_one_port_the_container_declares() {
        let seen = Seen {
            port_name: "http",
            ..Seen::default()
        };
        let one = json!({"image": "x", "command": ["vllm", "serve", "--port", "$(PORT)"],
                         "envFrom": [{"configMapRef": {"name": "cfg"}}],
                         "ports": [{"name": "grpc", "containerPort": 9000}, {"name": "http", "containerPort": 2080}]});
        let f = detect(&one, seen).expect("vLLM");
        assert_eq!((f.port, f.port_weak), (Some(Ok(2080)), true));
        assert!(
            f.evidence
                .iter()
                .any(|e| e.contains("only port named \"http\"")),
            "{:?}",
            f.evidence
        );
        let two = json!({"image": "x", "command": ["vllm", "serve", "--port", "$(PORT)"],
                         "ports": [{"containerPort": 1}, {"containerPort": 2}]});
        assert!(matches!(
            detect(&two, seen).and_then(|f| f.port),
            Some(Err(_))
        ));
        let mut known = KnownSources::default();
        known.add(&json!({"kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "ns"}, "data": {"PORT": "2090"}}));
        let seen = Seen {
            known: Some((&known, "ns")),
            ..seen
        };
        assert_eq!(detect(&one, seen).and_then(|f| f.port), Some(Ok(2090)));
        // A default while an unseen envFrom may set PORT is weak evidence.
        let tgi = json!({"image": "ghcr.io/huggingface/text-generation-inference:2.4", "envFrom": [{"configMapRef": {"name": "other"}}]});
        let f = detect(&tgi, seen).expect("TGI");
        assert_eq!((f.port, f.port_weak), (Some(Ok(80)), true));
    }

    #[test]
    fn an_unknown_separate_metrics_port_is_never_the_serving_port() {
        let triton = |ports: serde_json::Value| {
            let c = json!({"image": "nvcr.io/nvidia/tritonserver:24.08-py3",
                "command": ["tritonserver", "--model-repository=/m", "--metrics-port=$(METRICS_PORT)"],
                "envFrom": [{"configMapRef": {"name": "triton-settings"}}], "ports": ports});
            detect(
                &c,
                Seen {
                    port_name: "http",
                    ..Seen::default()
                },
            )
            .and_then(|f| f.port)
        };
        // The only port, named like the collector's, is Triton's inference port: not taken.
        let why = triton(json!([{"name": "http", "containerPort": 8000}]))
            .expect("a port")
            .unwrap_err();
        assert!(
            why.contains("no declared port is named like a metrics port"),
            "{why}"
        );
        assert!(why.contains("default metrics port 8002"), "{why}");
        assert_eq!(
            triton(
                json!([{"name": "http", "containerPort": 8000}, {"name": "triton-metrics", "containerPort": 9102}])
            ),
            Some(Ok(9102))
        );
        assert_eq!(
            triton(json!([{"name": "http", "containerPort": 8000}, {"containerPort": 8002}])),
            Some(Ok(8002))
        );
        // Two metrics-like names: the default decides when declared, else nothing does.
        let two = json!([{"name": "metrics", "containerPort": 9001}, {"name": "prom", "containerPort": 9002}]);
        assert!(matches!(triton(two), Some(Err(_))));
        // The SGLang router's `--prometheus-port`, the same way.
        let router = json!({"image": "x", "command": ["python3", "-m", "sglang_router.launch_router",
            "--port", "8000", "--prometheus-port", "$(PROM_PORT)", "--prometheus-host", "0.0.0.0"],
            "env": [{"name": "PROM_PORT", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}],
            "ports": [{"name": "http", "containerPort": 8000}, {"name": "prometheus", "containerPort": 29100}]});
        assert_eq!(
            detect(&router, Seen::default()).and_then(|f| f.port),
            Some(Ok(29100))
        );
    }

    #[test]
    fn image_guesses_lose_to_product_words_in_image_or_container_names() {
        for (image, name) in [
            ("ghcr.io/acme/vllm-latency-proxy:1.2", "main"),
            ("acme/sglang-gateway:v1", "gw"),
            ("acme/tgi-exporter:0.3", "exporter"),
            ("acme/vllm-operator:v0.1", "manager"),
            ("acme/vllm-router:v0.1", "router"),
            // An engine image in a container whose name says otherwise.
            ("vllm/vllm-openai:v0.10.0", "latency-proxy"),
            ("lmsysorg/sglang:v0.5.5", "bench"),
        ] {
            let c = json!({"name": name, "image": image, "args": ["--port", "8080"]});
            assert!(detect(&c, Seen::default()).is_none(), "{image} {name}");
        }
        // The image's own product word, and a command, still decide.
        for c in [
            json!({"name": "router", "image": "lmsysorg/sglang-router:v0.2.4"}),
            json!({"name": "model-gateway", "image": "lmsysorg/sglang-router:v0.2.4"}),
            json!({"name": "proxy", "image": "x", "command": ["vllm", "serve", "m"]}),
            json!({"name": "server", "image": "vllm/vllm-openai:v0.10.0"}),
        ] {
            assert!(detect(&c, Seen::default()).is_some(), "{c}");
        }
    }

    #[test]
    fn every_port_flag_of_the_catalogue_reads_as_its_parser_reads_it() {
        let vars = Vars::default();
        for spec in CATALOGUE {
            let flags = match spec.metrics {
                MetricsListener::Serving => spec.port_flags,
                MetricsListener::Separate { flags, .. } => flags,
                MetricsListener::EnvVar(_) => continue,
            };
            for flag in flags {
                let port = |args: &[&str]| {
                    let cmd = Cmd {
                        invocation: Invocation::Program("x".into()),
                        args: args.iter().map(|a| a.to_string()).collect(),
                    };
                    metrics_port(spec, &cmd, &vars).ok().map(|p| p.number)
                };
                let id = spec.id;
                assert_eq!(port(&[flag, "1234"]), Some(1234), "{id} {flag} 1234");
                // Repeated: the last one wins.
                assert_eq!(port(&[flag, "1", "m", flag, "2345"]), Some(2345), "{id}");
                let joined = format!("{flag}=3456");
                let expected = match spec.flag_values {
                    FlagValues::SpaceOrEquals => Some(3456),
                    FlagValues::SpaceOnly => None,
                };
                assert_eq!(port(&[&joined]), expected, "{id} {joined}");
            }
        }
    }

    #[test]
    fn engine_parsers_quirks_are_followed() {
        let port = |c: serde_json::Value| detect(&c, Seen::default()).and_then(|f| f.port);
        // TGI's clap: `-p`, attached or not, and aliases set one option in turn.
        for (args, expected) in [
            (json!(["-p", "8081"]), 8081),
            (json!(["-p8082"]), 8082),
            (json!(["--port", "1", "-p", "8083"]), 8083),
            (json!(["-p", "1", "--port=8084"]), 8084),
        ] {
            let c = json!({"image": "x", "command": ["text-generation-launcher"], "args": args});
            assert_eq!(port(c), Some(Ok(expected)), "{expected}");
        }
        // llama.cpp: `--port=N` is an invalid argument; `--flag_name` is `--flag-name`.
        let c = json!({"image": "x", "command": ["llama-server", "--port=9090", "--metrics"]});
        let why = port(c).expect("a port").unwrap_err();
        assert!(why.contains("write `--port 9090`"), "{why}");
        let c = json!({"image": "x", "command": ["llama-server", "--port", "9091", "--metrics"]});
        assert_eq!(port(c), Some(Ok(9091)));
        // Triton's bool options: false/off/0 in any case, with `=` or a separate word.
        for off in [
            &["--allow-metrics=false"][..],
            &["--allow-metrics", "OFF"],
            &["--allow-metrics=0"],
            &["--allow-metrics=true", "--allow-metrics", "False"],
        ] {
            let mut command = vec!["tritonserver", "--model-repository=/m"];
            command.extend_from_slice(off);
            let c = json!({"image": "x", "command": command});
            assert!(
                detect(&c, Seen::default()).is_some_and(|f| f.metrics_off.is_some()),
                "{off:?}"
            );
        }
        let on = json!({"image": "x", "command": ["tritonserver", "--allow-metrics=false", "--allow-metrics", "1"]});
        assert!(detect(&on, Seen::default()).is_some_and(|f| f.metrics_off.is_none()));
    }

    #[test]
    fn a_loopback_metrics_listener_is_reported() {
        let router =
            json!({"image": "x", "command": ["python3", "-m", "sglang_router.launch_router"]});
        assert!(detect(&router, Seen::default()).is_some_and(|f| f.metrics_local.is_some()));
        let open = json!({"image": "x", "command": ["python3", "-m", "sglang_router.launch_router", "--prometheus-host", "0.0.0.0"]});
        assert!(detect(&open, Seen::default()).is_some_and(|f| f.metrics_local.is_none()));
        // The gateway builds, by program or image name, bind all interfaces by default...
        for gateway in [
            json!({"image": "x", "command": ["sgl-model-gateway", "--worker-urls", "http://w:8000"]}),
            json!({"image": "x", "command": ["/usr/local/bin/smg", "--worker-urls", "http://w:8000"]}),
            json!({"image": "smg-gateway:test", "args": ["--pd-disaggregation", "--service-discovery"]}),
            json!({"image": "lightseekorg/smg:v1.3.3", "args": ["--worker-urls", "http://w:8000"]}),
        ] {
            let f = detect(&gateway, Seen::default()).expect("the gateway");
            assert_eq!(
                (f.spec.id, f.metrics_local),
                ("sglang-router", None),
                "{gateway}"
            );
        }
        // ...unless told otherwise.
        let local = json!({"image": "x", "command": ["sgl-model-gateway", "--prometheus-host", "127.0.0.1"]});
        assert!(detect(&local, Seen::default()).is_some_and(|f| f.metrics_local.is_some()));
    }

    #[test]
    fn triton_s_openai_frontend_serves_metrics_on_its_own_port() {
        let c = json!({"image": "nvcr.io/nvidia/tritonserver:25.01-vllm-python-py3",
                       "command": ["python3", "/opt/tritonserver/python/openai/openai_frontend/main.py", "--model-repository", "/m", "--openai-port", "9100"]});
        assert_eq!(engine(c), Some(("triton-openai", false, Some(Ok(9100)))));
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
        assert_eq!(
            detect(
                &lws_rank,
                Seen {
                    worker_variant: true,
                    ..Seen::default()
                }
            )
            .map(|f| f.worker_only),
            Some(true)
        );
    }

    #[test]
    fn metrics_switches_are_read() {
        let c = json!({"image": "lmsysorg/sglang", "command": ["python3", "-m", "sglang.launch_server"]});
        assert!(
            detect(&c, Seen::default())
                .and_then(|f| f.metrics_off)
                .is_some()
        );
        let c = json!({"image": "lmsysorg/sglang", "command": ["python3", "-m", "sglang.launch_server", "--enable-metrics"]});
        assert!(detect(&c, Seen::default()).is_some_and(|f| f.metrics_off.is_none()));
        let c = json!({"image": "x", "command": ["vllm", "serve", "--disable-log-stats"]});
        assert!(
            detect(&c, Seen::default())
                .and_then(|f| f.metrics_off)
                .is_some()
        );
    }

    #[test]
    fn setup_commands_around_an_opaque_launcher_leave_the_image_to_decide() {
        let script = "echo starting; cd /server; mkdir -p /tmp/x && /tgi-entrypoint.sh --model-id=m --port=8080 | tee /tmp/log";
        let c = json!({"image": "ghcr.io/huggingface/text-generation-inference:3.0.1",
                       "command": ["/bin/bash", "-c", script]});
        let f = detect(&c, Seen::default()).expect("TGI from its image");
        assert_eq!(
            (f.spec.id, f.strength, f.port),
            ("tgi", Strength::Image, Some(Ok(8080)))
        );
        // Two candidates: the image cannot say which one serves.
        let two = json!({"image": "ghcr.io/huggingface/text-generation-inference:3.0.1",
                         "command": ["/bin/bash", "-c", "echo x; /a.sh; /b.sh"]});
        assert!(detect(&two, Seen::default()).is_none());
        // An unknown program is no launcher of the image's engine, setup around it or not.
        let other = json!({"image": "lmsysorg/sglang:v0.5.5",
                           "command": ["/bin/sh", "-c", "cd /x; mooncake_master --port 50051"]});
        assert!(detect(&other, Seen::default()).is_none());
    }

    #[test]
    fn an_image_guess_names_no_default_port_the_container_contradicts() {
        let guess = |ports: serde_json::Value| {
            let c = json!({"image": "vllm/vllm-openai:v0.10.0", "command": ["/opt/run.sh"], "ports": ports});
            let f = detect(&c, Seen::default()).expect("vLLM from its image");
            assert_eq!(f.strength, Strength::Image);
            f.port
        };
        assert_eq!(guess(json!([])), Some(Ok(8000)));
        assert_eq!(
            guess(json!([{"containerPort": 8000}, {"containerPort": 9090}])),
            Some(Ok(8000))
        );
        let why = guess(json!([{"containerPort": 8080, "name": "http"}]))
            .expect("a port")
            .unwrap_err();
        assert!(
            why.contains("default port 8000") && why.contains("declares only 8080"),
            "{why}"
        );
        // A command is no guess: its default port stands, declared or not.
        let c = json!({"image": "x", "command": ["vllm", "serve", "m"], "ports": [{"containerPort": 8080}]});
        assert_eq!(
            detect(&c, Seen::default()).and_then(|f| f.port),
            Some(Ok(8000))
        );
    }

    #[test]
    fn an_image_guess_in_a_worker_template_is_a_worker() {
        let c = json!({"image": "vllm/vllm-openai:v0.10.0", "command": ["/opt/run.sh"]});
        let worker = Seen {
            worker_variant: true,
            ..Seen::default()
        };
        let f = detect(&c, worker).expect("vLLM from its image");
        assert!(f.worker_only && f.port.is_none(), "{f:?}");
        // A command that serves is taken at its word in a worker template too.
        let c = json!({"image": "x", "command": ["vllm", "serve", "m", "--port", "8200"]});
        assert_eq!(
            detect(&c, worker).map(|f| (f.worker_only, f.port)),
            Some((false, Some(Ok(8200))))
        );
    }

    #[test]
    fn servers_without_metrics_are_the_engine_with_no_metrics_port() {
        for c in [
            json!({"image": "x", "command": ["python3", "-m", "vllm.entrypoints.grpc_server", "--model", "m", "--port", "50051"]}),
            json!({"image": "x", "command": ["python3", "-m", "sglang.launch_server", "--model-path", "m", "--grpc-mode"]}),
            json!({"image": "lmsysorg/sglang:v0.5.5", "args": ["--model-path", "m", "--grpc-mode"]}),
            // vLLM's demo server: HTTP, but `/health` and `/generate` only.
            json!({"image": "x", "command": ["python3", "-m", "vllm.entrypoints.api_server", "--port", "8000"]}),
        ] {
            let f = detect(&c, Seen::default()).expect("an engine");
            assert_eq!((f.worker_only, f.port.clone()), (false, None), "{c}");
            assert!(f.metrics_off.is_none(), "{c}: nothing to switch on");
            assert!(
                f.evidence.iter().any(|e| e.starts_with("no /metrics")),
                "{:?}",
                f.evidence
            );
        }
        // The same servers over HTTP keep their port.
        let http = json!({"image": "x", "command": ["python3", "-m", "sglang.launch_server", "--model-path", "m", "--port", "30001"]});
        assert_eq!(
            detect(&http, Seen::default()).and_then(|f| f.port),
            Some(Ok(30001))
        );
    }

    /// The metrics switch as detection reads it: `None` when metrics are on, else the doubt.
    fn switch(container: &serde_json::Value) -> Option<Option<String>> {
        let found = detect(container, Seen::default()).expect("an engine");
        found.metrics_off.map(|off| off.doubt)
    }

    #[test]
    fn a_metrics_switch_set_by_environment_is_read_and_an_unseen_source_is_a_doubt() {
        let llama = |env: serde_json::Value| {
            let mut c = json!({"image": "ghcr.io/ggml-org/llama.cpp:server",
                "command": ["/app/llama-server", "-m", "/models/m.gguf"]});
            c.as_object_mut()
                .expect("object")
                .extend(env.as_object().cloned().unwrap_or_default());
            c
        };
        assert_eq!(switch(&llama(json!({}))), Some(None));
        for on in ["1", "true", "on", "enabled"] {
            let env = json!({"env": [{"name": "LLAMA_ARG_ENDPOINT_METRICS", "value": on}]});
            assert_eq!(switch(&llama(env)), None, "{on}");
        }
        let off = json!({"env": [{"name": "LLAMA_ARG_ENDPOINT_METRICS", "value": "0"}]});
        assert_eq!(switch(&llama(off)), Some(None));
        let unseen = json!({"envFrom": [{"configMapRef": {"name": "llama-settings"}}]});
        let doubt = switch(&llama(unseen)).flatten().expect("a doubt");
        assert!(doubt.contains("LLAMA_ARG_ENDPOINT_METRICS"), "{doubt}");
        // A flag the command gives settles it, whatever the environment.
        let flag = json!({"image": "x", "command": ["llama-server", "--metrics"],
            "envFrom": [{"configMapRef": {"name": "llama-settings"}}]});
        assert_eq!(switch(&flag), None);
    }

    #[test]
    fn lmdeploy_metrics_follow_the_default_of_the_version_the_tag_names() {
        let lmdeploy = |image: &str, extra: &[&str]| {
            let mut command = vec![
                "lmdeploy",
                "serve",
                "api_server",
                "internlm/internlm2-chat-7b",
            ];
            command.extend_from_slice(extra);
            json!({"image": image, "command": command})
        };
        // Before v0.9.2 there are no metrics: labeled, no port, nothing to switch on.
        let old =
            detect(&lmdeploy("kube-ai/lmdeploy:v0.4.2", &[]), Seen::default()).expect("LMDeploy");
        assert_eq!((old.port.clone(), old.metrics_off.is_none()), (None, true));
        assert!(
            old.evidence
                .iter()
                .any(|e| e.starts_with("no /metrics before LMDeploy v0.9.2")),
            "{:?}",
            old.evidence
        );
        // From v0.9.2 to before v0.11: only with --enable-metrics.
        assert_eq!(
            switch(&lmdeploy("openmmlab/lmdeploy:v0.9.2", &[])),
            Some(None)
        );
        assert_eq!(
            switch(&lmdeploy("openmmlab/lmdeploy:v0.10.3-cu12", &[])),
            Some(None)
        );
        assert_eq!(
            switch(&lmdeploy(
                "openmmlab/lmdeploy:v0.10.3",
                &["--enable-metrics"]
            )),
            None
        );
        // From v0.11: on unless --disable-metrics.
        assert_eq!(
            switch(&lmdeploy("openmmlab/lmdeploy:v0.11.0-cu12.8", &[])),
            None
        );
        assert_eq!(switch(&lmdeploy("openmmlab/lmdeploy:1.2", &[])), None);
        assert_eq!(
            switch(&lmdeploy(
                "openmmlab/lmdeploy:v0.11.1",
                &["--disable-metrics"]
            )),
            Some(None)
        );
        // A tag that names no version: off without the flag, but only as a doubt.
        for image in [
            "openmmlab/lmdeploy:latest",
            "openmmlab/lmdeploy",
            "registry.local/lmdeploy:nightly",
        ] {
            let doubt = switch(&lmdeploy(image, &[])).flatten().expect("a doubt");
            assert!(doubt.contains("which LMDeploy version"), "{image}: {doubt}");
        }
        assert_eq!(
            switch(&lmdeploy(
                "openmmlab/lmdeploy:latest",
                &["--disable-metrics"]
            )),
            Some(None)
        );
    }
}
