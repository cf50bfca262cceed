//! Every file that repeats what the engine and kind tables say is generated from them or checked
//! against them, so that adding an engine (`decide::catalogue`) or a kind (`decide::kinds`) is
//! one row and its tests:
//!
//! - docs/detection.md's engine table, docs/install.md's webhook rules, docs/audit.md's and
//!   docs/reporter.md's kind lists and RBAC: blocks between `<!-- generated: NAME -->` and
//!   `<!-- end generated: NAME -->`, rendered here;
//! - the default `supportedBackends` of the chart, `deploy/` and the docs;
//! - the engine metrics the dashboards' recording rules read, and the pattern
//!   `tests/dashboards/check.py` finds them with;
//! - the krew plugin's description.
//!
//! A test that finds a generated part stale fails with the difference; run it again with
//! `INFERENCE_WEBHOOK_BLESS=1` to rewrite the part (then review the diff). Plain Rust in the test
//! suite, not an `xtask` or a build script: `cargo test` already runs it everywhere CI does, the
//! rendering needs nothing beyond the tables, and the library carries no code only docs use.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::fmt::Write as _;

use inference_webhook::decide::Policy;
use inference_webhook::decide::catalogue::{
    BoolWords, CATALOGUE, COLLECTOR_PATH, CommandMatch, EngineSpec, FlagSpelling, FlagValues,
    ImageMatch, MetricsListener, MetricsSwitch, WorkerMatch, default_supported_backends,
};
use inference_webhook::decide::kinds::{KINDS, KindSpec, POD};
use support::fixtures::repo;

const BLESS: &str = "INFERENCE_WEBHOOK_BLESS";

/// Check (or with [`BLESS`] set, rewrite) the part of `file` between `begin` and `end`.
fn generated_between(file: &str, begin: &str, end: &str, body: &str) {
    let path = repo().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let from = text
        .find(begin)
        .unwrap_or_else(|| panic!("{file}: no {begin:?} to start the generated part after"))
        + begin.len();
    let to = from
        + text[from..]
            .find(end)
            .unwrap_or_else(|| panic!("{file}: no {end:?} to end the generated part"));
    if text[from..to] == *body {
        return;
    }
    if std::env::var_os(BLESS).is_some() {
        std::fs::write(&path, format!("{}{body}{}", &text[..from], &text[to..])).unwrap();
        return;
    }
    panic!(
        "{file}: the part after {begin:?} is stale; rerun with {BLESS}=1 to rewrite it.\n\
         --- in the file\n{}\n--- generated\n{body}",
        &text[from..to]
    );
}

/// A generated block between `<!-- generated: NAME ... -->` and `<!-- end generated: NAME -->`.
fn generated(file: &str, name: &str, body: &str) {
    let begin = format!("<!-- generated: {name} (tests/tables.rs) -->\n");
    generated_between(
        file,
        &begin,
        &format!("<!-- end generated: {name} -->"),
        body,
    );
}

fn code(s: &str) -> String {
    format!("`{s}`")
}

fn codes(items: &[&str]) -> String {
    items.iter().map(|s| code(s)).collect::<Vec<_>>().join(", ")
}

fn command(m: &CommandMatch) -> String {
    match m {
        CommandMatch::Program(p, Some(sub)) => code(&format!("{p} {sub}")),
        CommandMatch::Program(p, None) => code(p),
        CommandMatch::ProgramContains(p) => format!("programs containing {}", code(p)),
        CommandMatch::Module(m) => code(&format!("python -m {m}")),
        CommandMatch::Script(s) if s.contains('/') => code(&format!(".../{s}")),
        CommandMatch::Script(s) => code(s),
        CommandMatch::ArgPrefix(p) => format!("an argument starting {}", code(p)),
    }
}

fn image(m: &ImageMatch) -> String {
    match m {
        ImageMatch::Name(n) => format!("images named {}", code(n)),
        ImageMatch::NameWord(n) => format!("images with the word {}", code(n)),
        ImageMatch::NameContains(n) => format!("images containing {}", code(n)),
        ImageMatch::PathContains(p) => format!("images under {}", code(p)),
    }
}

fn worker(w: &WorkerMatch) -> String {
    match w {
        WorkerMatch::WorkerArg => "a `worker` first argument".into(),
        WorkerMatch::Program(p, Some(sub)) => code(&format!("{p} {sub}")),
        WorkerMatch::Program(p, None) => code(p),
        WorkerMatch::ImageNameContains(n) => format!("images containing {}", code(n)),
        WorkerMatch::RankFlag(f) => format!("{} above 0", code(f)),
    }
}

fn truth(words: &BoolWords) -> String {
    let case = if words.any_case { ", any case" } else { "" };
    format!("{}{case}", words.words.join("/"))
}

fn version((major, minor, patch): (u32, u32, u32)) -> String {
    format!("v{major}.{minor}.{patch}")
}

/// The base engine a refinement refines: the family's row that needs no flag.
fn base_of(e: &EngineSpec) -> &'static str {
    CATALOGUE
        .iter()
        .find(|b| b.family == e.family && b.requires.is_none())
        .map_or(e.family, |b| b.name)
}

fn recognised(e: &EngineSpec) -> String {
    let mut parts = Vec::new();
    if let Some(r) = &e.requires {
        parts.push(format!(
            "{} with {} that sets up {}",
            base_of(e),
            code(r.flag),
            r.what
        ));
    } else {
        let serving: Vec<String> = e
            .commands
            .iter()
            .filter(|m| {
                !e.no_metrics
                    .iter()
                    .any(|n| format!("{n:?}") == format!("{m:?}"))
            })
            .map(command)
            .collect();
        if !serving.is_empty() {
            parts.push(serving.join(", "));
        }
        if !e.images.is_empty() {
            parts.push(e.images.iter().map(image).collect::<Vec<_>>().join(", "));
        }
        let mut entry = Vec::new();
        if e.positional_model {
            entry.push("the model first".to_string());
        }
        if !e.signature_flags.is_empty() {
            entry.push(codes(e.signature_flags));
        }
        if !entry.is_empty() {
            parts.push(format!("entrypoint args: {}", entry.join(" or ")));
        }
    }
    if !e.non_server_subcommands.is_empty() {
        parts.push(format!(
            "clients, not servers: {}",
            codes(e.non_server_subcommands)
        ));
    }
    if !e.workers.is_empty() {
        let w: Vec<String> = e.workers.iter().map(worker).collect();
        parts.push(format!("workers: {}", w.join(", ")));
    }
    for (what, words) in [
        (
            "wrappers",
            e.wrappers.iter().map(|w| w.name).collect::<Vec<_>>(),
        ),
        ("setup programs", e.setup_programs.to_vec()),
        ("look-alike words", e.lookalike_words.to_vec()),
    ] {
        if !words.is_empty() {
            parts.push(format!("its own {what}: {}", codes(&words)));
        }
    }
    parts.join("; ")
}

fn spelling(e: &EngineSpec) -> Vec<String> {
    let mut out = Vec::new();
    if e.flag_spelling == FlagSpelling::DashOrUnderscore {
        out.push("`_` or `-` in flag names".to_string());
    }
    if e.flag_values == FlagValues::SpaceOnly {
        out.push("`--flag N` only (`--flag=N` is an invalid argument)".to_string());
    }
    out
}

fn port(e: &EngineSpec) -> String {
    let default = |d: Option<u16>| d.map_or("no default".to_string(), |d| format!("default {d}"));
    let mut parts = match &e.metrics {
        MetricsListener::Serving => {
            let mut p = Vec::new();
            if !e.port_flags.is_empty() {
                p.push(
                    e.port_flags
                        .iter()
                        .map(|f| code(f))
                        .collect::<Vec<_>>()
                        .join(" or "),
                );
            }
            p.extend(e.port_env.iter().map(|v| format!("env {}", code(v))));
            p.push(default(e.default_port));
            vec![p.join(", ")]
        }
        MetricsListener::Separate {
            flags,
            default: d,
            host_flag,
            default_host,
            all_interfaces_by_default,
        } => {
            let mut p = vec![format!(
                "its own listener: {}, {}",
                flags
                    .iter()
                    .map(|f| code(f))
                    .collect::<Vec<_>>()
                    .join(" or "),
                default(*d)
            )];
            if let Some(h) = host_flag {
                p.push(format!(
                    "bound to {}, default {}",
                    code(h),
                    default_host.map_or("all interfaces".to_string(), |h| format!("**{h}**"))
                ));
            }
            if !all_interfaces_by_default.is_empty() {
                p.push(format!(
                    "all interfaces by default in builds named {}",
                    codes(all_interfaces_by_default)
                ));
            }
            p.push(format!(
                "serving port {}, {} (never taken for metrics)",
                e.port_flags
                    .iter()
                    .map(|f| code(f))
                    .collect::<Vec<_>>()
                    .join(" or "),
                default(e.default_port)
            ));
            p
        }
        MetricsListener::EnvVar(var) => vec![format!("env {} (no metrics when unset)", code(var))],
    };
    parts.extend(spelling(e));
    if e.metrics_path != COLLECTOR_PATH {
        parts.push(format!("path {}", code(e.metrics_path)));
    }
    if !e.no_metrics.is_empty() {
        let none: Vec<String> = e
            .no_metrics
            .iter()
            .map(|m| match m {
                CommandMatch::ArgPrefix(p) => code(p),
                m => command(m),
            })
            .collect();
        parts.push(format!("none with {}", none.join(", ")));
    }
    parts.join("; ")
}

fn switch(e: &EngineSpec) -> String {
    match &e.switch {
        MetricsSwitch::On => "on".into(),
        MetricsSwitch::RequiresFlag { flag, env: None } => format!("needs {}", code(flag)),
        MetricsSwitch::RequiresFlag {
            flag,
            env: Some(env),
        } => format!(
            "needs {} or env {} true ({})",
            code(flag),
            code(env.var),
            truth(&env.truth)
        ),
        MetricsSwitch::DisabledBy(flag) => format!("off with {}", code(flag)),
        MetricsSwitch::OffBy { flag, off } => {
            format!(
                "off with {} {} (`=` or a separate word)",
                code(flag),
                truth(off)
            )
        }
        MetricsSwitch::ByVersion {
            added,
            enable,
            on_by_default,
            disable,
        } => format!(
            "by the image tag's version: none before {}; from {} needs {}; from {} on unless {} \
             (a tag without a version: reported as needing the flag, never denied)",
            version(*added),
            version(*added),
            code(enable),
            version(*on_by_default),
            code(disable)
        ),
    }
}

fn dashboards(e: &EngineSpec) -> String {
    if e.dashboard.metrics.is_empty() {
        return "none".into();
    }
    let own = e
        .dashboard
        .metrics
        .iter()
        .filter(|m| m.starts_with(e.dashboard.prefix))
        .count();
    let mut out = format!("{own} `{}*` series", e.dashboard.prefix);
    let others: Vec<&str> = e
        .dashboard
        .metrics
        .iter()
        .copied()
        .filter(|m| !m.starts_with(e.dashboard.prefix))
        .collect();
    if !others.is_empty() {
        let _ = write!(out, ", {}", codes(&others));
    }
    out
}

fn engine_table() -> String {
    let mut out = String::from(
        "| engine (id) | backend label | recognised by | metrics port | metrics switch | dashboards | read in |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for e in CATALOGUE {
        let label = if e.supported_by_default {
            format!("`{}` (labeled by default)", e.backend)
        } else {
            code(e.backend)
        };
        let mut port = port(e);
        if !e.note.is_empty() {
            let _ = write!(port, " ({})", e.note);
        }
        let _ = writeln!(
            out,
            "| {} (`{}`) | {label} | {} | {port} | {} | {} | {} {} |",
            e.name,
            e.id,
            recognised(e),
            switch(e),
            dashboards(e),
            e.source.repo,
            codes(e.source.files)
        );
    }
    out
}

#[test]
fn the_engine_table_in_docs_is_the_catalogue() {
    generated("docs/detection.md", "engines", &engine_table());
}

/// `[a, b, c]`, as the YAML files write a list.
fn flow_list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

#[test]
fn the_default_supported_backends_are_the_catalogue_s_everywhere() {
    let defaults = default_supported_backends();
    assert_eq!(Policy::default().supported_backends, defaults);
    let line = format!("supportedBackends: {}", flow_list(&defaults));
    for file in [
        "deploy/base/policy.yaml",
        "charts/inference-webhook/values.yaml",
        "docs/configuration.md",
    ] {
        let text = std::fs::read_to_string(repo().join(file)).unwrap();
        let found: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("supportedBackends:"))
            .collect();
        assert!(
            !found.is_empty() && found.iter().all(|l| l.starts_with(&line)),
            "{file}: {found:?}, the catalogue says {line:?}"
        );
    }
    let readme =
        std::fs::read_to_string(repo().join("charts/inference-webhook/README.md")).unwrap();
    let row = format!("| `supportedBackends` | `{}` |", flow_list(&defaults));
    assert!(readme.contains(&row), "the chart README lacks {row:?}");
}

/// The API groups of the kind table in order, each with its versions and resources.
fn groups() -> Vec<(&'static str, Vec<&'static str>, Vec<&'static KindSpec>)> {
    let mut out: Vec<(&str, Vec<&str>, Vec<&KindSpec>)> = Vec::new();
    for k in KINDS {
        let i = match out.iter().position(|(g, ..)| *g == k.group) {
            Some(i) => i,
            None => {
                out.push((k.group, Vec::new(), Vec::new()));
                out.len() - 1
            }
        };
        let (_, versions, kinds) = &mut out[i];
        for v in k.versions {
            if !versions.contains(v) {
                versions.push(v);
            }
        }
        if !kinds.iter().any(|o| o.kind == k.kind) {
            kinds.push(k);
        }
    }
    out
}

/// `A, B and C`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The kinds, by their plural names (`RoleBasedGroups`).
fn kind_names() -> Vec<String> {
    groups()
        .iter()
        .flat_map(|(_, _, kinds)| kinds.iter().map(|k| format!("{}s", k.kind)))
        .collect()
}

#[test]
fn the_docs_kind_lists_are_the_kind_table() {
    let rules: Vec<String> = groups()
        .iter()
        .map(|(group, versions, kinds)| {
            let resources: Vec<&str> = kinds.iter().map(|k| k.resource).collect();
            format!("`{group}/{}` {}", versions.join(","), resources.join(", "))
        })
        .collect();
    generated_between(
        "docs/install.md",
        "## What the webhook configurations say\n\n| field | value | why |\n|---|---|---|\n",
        "| entries |",
        &format!(
            "| rules | {}; `CREATE`, `UPDATE`; no subresources | exactly the kinds `decide` reads \
             (`src/decide/kinds.rs`, compared by a test); `/scale` never reaches it |\n",
            rules.join("; ")
        ),
    );

    let listed: Vec<String> = groups()
        .iter()
        .map(|(group, versions, kinds)| {
            let names: Vec<String> = kinds.iter().map(|k| format!("{}s", k.kind)).collect();
            format!("{} (`{group}` {})", and_list(&names), versions.join(", "))
        })
        .collect();
    generated(
        "docs/audit.md",
        "cluster-kinds",
        &format!(
            "It lists every kind of the kind table: {}.\n",
            listed.join("; ")
        ),
    );

    let mut rbac = String::from(
        "```yaml\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole          \
         # a Role in one namespace is enough for `-n NAMESPACE`\nmetadata:\n  \
         name: inference-webhook-audit\nrules:\n",
    );
    // Namespaces (their opt-in label) and the Pod row's resource (pods the webhook missed).
    let _ = write!(
        rbac,
        "- apiGroups: [\"{}\"]\n  resources: [\"namespaces\", \"{}\"]\n  verbs: [\"get\", \"list\"]\n",
        POD.group, POD.resource
    );
    let mut reporter = String::new();
    for (group, _, kinds) in groups() {
        let resources: Vec<&str> = kinds.iter().map(|k| k.resource).collect();
        let quoted: Vec<String> = resources.iter().map(|r| format!("\"{r}\"")).collect();
        let _ = write!(
            rbac,
            "- apiGroups: [\"{group}\"]\n  resources: [{}]\n  verbs: [\"get\", \"list\"]\n",
            quoted.join(", ")
        );
        let _ = writeln!(
            reporter,
            "| `{group}` | {} | get, list, watch |",
            codes(&resources)
        );
    }
    rbac.push_str("```\n");
    generated("docs/audit.md", "audit-rbac", &rbac);
    generated_between(
        "docs/reporter.md",
        "get, list, watch (the inference pods that lack the labels or the port) |\n",
        "| `wgpolicyk8s.io` |",
        &reporter,
    );

    // The krew index shows the description as written: a YAML block, wrapped by hand.
    let krew = support::yaml::value(
        &std::fs::read_to_string(repo().join("deploy/krew/inference-webhook.yaml")).unwrap(),
        "deploy/krew/inference-webhook.yaml",
    );
    let description = krew["spec"]["description"].as_str().unwrap();
    let flat = description.split_whitespace().collect::<Vec<_>>().join(" ");
    let want = format!("Audits {} that run", and_list(&kind_names()));
    assert!(
        flat.contains(&want),
        "the krew description lacks {want:?}: {flat}"
    );
}

/// The engine metrics a rules file reads: names with a catalogue row's prefix, and the names the
/// rows list that have none (vLLM's `http_requests_total`), without histogram suffixes.
fn engine_metrics_read(text: &str) -> BTreeSet<String> {
    let listed: BTreeSet<&str> = CATALOGUE
        .iter()
        .flat_map(|e| e.dashboard.metrics.iter().copied())
        .collect();
    let prefixes: BTreeSet<&str> = CATALOGUE
        .iter()
        .map(|e| e.dashboard.prefix)
        .filter(|p| !p.is_empty())
        .collect();
    let mut out = BTreeSet::new();
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    for line in text.lines() {
        // Comments cite the metrics they explain; the expressions are what is read.
        let expr = line.split('#').next().unwrap_or_default();
        for word in expr.split(|c: char| !is_name(c)) {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| word.strip_suffix(s).filter(|b| listed.contains(b)))
                .unwrap_or(word);
            if listed.contains(base) || prefixes.iter().any(|p| base.starts_with(p)) {
                out.insert(base.to_string());
            }
        }
    }
    out
}

#[test]
fn the_dashboards_read_exactly_the_catalogue_s_metrics() {
    let catalogue: BTreeSet<String> = CATALOGUE
        .iter()
        .flat_map(|e| e.dashboard.metrics.iter().map(|m| m.to_string()))
        .collect();
    for file in [
        "deploy/dashboards/inference-rules.yaml",
        "charts/inference-webhook/files/inference-rules.yaml",
    ] {
        let text = std::fs::read_to_string(repo().join(file)).unwrap();
        let read = engine_metrics_read(&text);
        assert_eq!(
            read.difference(&catalogue).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "{file} reads engine metrics no catalogue row lists"
        );
        assert_eq!(
            catalogue.difference(&read).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "catalogue rows list dashboard metrics {file} does not read"
        );
    }
    // The dashboards' own check finds engine metrics by the catalogue's prefixes.
    let check = std::fs::read_to_string(repo().join("tests/dashboards/check.py")).unwrap();
    let (colon, underscore): (Vec<&str>, Vec<&str>) = CATALOGUE
        .iter()
        .filter(|e| !e.dashboard.metrics.is_empty())
        .map(|e| e.dashboard.prefix)
        .filter(|p| !p.is_empty())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .partition(|p| p.ends_with(':'));
    let strip = |ps: Vec<&str>| -> Vec<String> {
        ps.iter().map(|p| p[..p.len() - 1].to_string()).collect()
    };
    let mut under = strip(underscore);
    // Unprefixed names the rows list (`http_requests_total`) by their first word.
    for m in CATALOGUE.iter().flat_map(|e| e.dashboard.metrics) {
        let prefixed = CATALOGUE
            .iter()
            .any(|e| !e.dashboard.prefix.is_empty() && m.starts_with(e.dashboard.prefix));
        let word = m.split('_').next().unwrap_or_default().to_string();
        if !prefixed && !under.contains(&word) {
            under.push(word);
        }
    }
    under.sort();
    let pattern = format!(
        r"(?:{}):\w+|(?:{})_\w+|DCGM_FI_\w+",
        strip(colon).join("|"),
        under.join("|")
    );
    assert!(
        check.contains(&pattern),
        "tests/dashboards/check.py should find engine metrics with {pattern:?}"
    );
}
