//! The audit command: the same engine, rules, policy file and modes as the server, over
//! manifests (files, directories, stdin) or over what already runs in a cluster.
//!
//! Exit codes: 0 nothing denied, 1 at least one object denied (a deny-level finding in enforce
//! mode), 2 usage error or any input that could not be read (this wins over 1: an audit that
//! skipped part of its input must not pass).

mod cluster;
mod documents;
mod fix;
mod junit;
mod manifests;
pub(crate) mod output;
mod pods;
mod sarif;
mod suggest;
mod table;

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::admission::{Mode, Route};
use crate::config::Config;

pub use output::OutputFormat;

#[derive(clap::Args, Debug)]
pub struct AuditArgs {
    /// Manifest files or directories (searched recursively for .yaml, .yml and .json);
    /// `-` reads stdin.
    #[arg(value_name = "PATH", required_unless_present = "cluster")]
    pub paths: Vec<PathBuf>,
    /// Policy file, the same as the server's (defaults apply without one).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// enforce: deny-level findings fail the audit (exit 1); warn and audit only report.
    /// Defaults to the policy's defaultMode.
    #[arg(long, value_parser = parse_mode)]
    pub mode: Option<Mode>,
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: OutputFormat,
    /// Show the evidence of each detection in the table.
    #[arg(long)]
    pub explain: bool,
    /// Print every input document with the labels and port added; the report goes to stderr.
    #[arg(long, conflicts_with = "cluster")]
    pub fix: bool,
    /// With --fix: rewrite the files that change in place instead of printing.
    #[arg(long, requires = "fix")]
    pub write: bool,
    /// Inputs without any Kubernetes object are not an error (for hooks that are handed every
    /// staged YAML file, workflows and values files included).
    #[arg(long, conflicts_with = "cluster")]
    pub allow_no_objects: bool,
    /// Audit the objects in a cluster instead of manifests.
    #[arg(long, conflicts_with = "paths")]
    pub cluster: bool,
    /// With --cluster: only this namespace (default: the context's namespace).
    #[arg(
        long,
        short = 'n',
        requires = "cluster",
        conflicts_with = "all_namespaces"
    )]
    pub namespace: Option<String>,
    /// With --cluster: all namespaces.
    #[arg(long, short = 'A', requires = "cluster")]
    pub all_namespaces: bool,
    /// With --cluster: the kubeconfig context to use.
    #[arg(long, requires = "cluster")]
    pub context: Option<String>,
    /// With --cluster: kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster).
    #[arg(long, requires = "cluster", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// With --cluster: the controller kinds whose pods the webhook's Pod entries review (the
    /// chart's webhook.pods.ownerKinds), comma-separated.
    #[arg(
        long,
        requires = "cluster",
        value_delimiter = ',',
        value_name = "KINDS",
        default_values = crate::cluster::pods::DEFAULT_OWNER_KINDS
    )]
    pub pod_owner_kinds: Vec<String>,
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    Mode::parse(s).ok_or_else(|| {
        let all: Vec<&str> = Mode::ALL.iter().map(|m| m.as_str()).collect();
        format!("unknown mode {s:?} (one of {})", all.join(", "))
    })
}

pub fn run(args: AuditArgs) -> ExitCode {
    match run_audit(args) {
        Ok(code) => ExitCode::from(code),
        // A reader that went away (`| head`) is not worth a message.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: writing the report: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_audit(args: AuditArgs) -> io::Result<u8> {
    let config = match Config::load(args.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(2);
        }
    };
    let mode = args.mode.unwrap_or(config.default_mode);
    // Under --fix the fixed manifests own stdout and the report moves to stderr.
    let (report_out, on_terminal): (Box<dyn Write>, bool) = if args.fix {
        (Box::new(io::stderr().lock()), io::stderr().is_terminal())
    } else {
        (
            Box::new(io::BufWriter::new(io::stdout().lock())),
            io::stdout().is_terminal(),
        )
    };
    let opts = output::OutputOptions {
        format: args.output,
        explain: args.explain,
        color: on_terminal && std::env::var_os("NO_COLOR").is_none(),
        mode,
        route: if args.fix {
            Route::Mutate
        } else {
            Route::Validate
        },
    };
    let mut reporter = output::Writer::new(config.policy, opts, report_out)?;
    if args.cluster {
        let target = crate::cluster::Target {
            namespace: args.namespace,
            all_namespaces: args.all_namespaces,
            context: args.context,
            kubeconfig: args.kubeconfig,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let owner_kinds = &args.pod_owner_kinds;
        runtime.block_on(cluster::audit(&target, owner_kinds, &mut reporter))?;
    } else {
        let mut stdout = io::BufWriter::new(io::stdout().lock());
        let mut fix = match (args.fix, args.write) {
            (true, true) => manifests::Fix::Write,
            (true, false) => manifests::Fix::Print(manifests::Joined::new(&mut stdout)),
            (false, _) => manifests::Fix::No,
        };
        manifests::audit(&args.paths, &mut reporter, &mut fix)?;
        stdout.flush()?;
        let s = reporter.summary();
        if s.objects == 0 && s.errors == 0 && !args.allow_no_objects {
            reporter.error(output::InputError::whole(
                inputs_label(&args.paths),
                "no Kubernetes objects in the input (empty, or only documents without a kind)",
            ));
        }
    }
    reporter.finish()
}

fn inputs_label(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths
        .iter()
        .map(|p| {
            if p.as_os_str() == "-" {
                "<stdin>".to_string()
            } else {
                p.display().to_string()
            }
        })
        .collect();
    names.join(", ")
}
