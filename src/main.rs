#![forbid(unsafe_code)]
#![warn(clippy::too_many_lines)]
//! Command line: `serve`, `audit`, `report` and `certs` are thin front doors over one engine.

use std::path::Path;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use inference_webhook::{audit, certs, report, server};

// Parsing a review builds many small maps and strings; mimalloc makes that markedly cheaper than
// glibc malloc under concurrent load (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "inference-webhook",
    version,
    about = "Makes LLM inference workloads observable: labels, metrics port, and checks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTPS admission webhook.
    Serve(Box<server::ServeArgs>),
    /// Audit manifests (files, directories, stdin) or a live cluster with the same rules.
    Audit(audit::AuditArgs),
    /// Watch a cluster: compliance metrics and a PolicyReport per namespace.
    Report(Box<report::ReportArgs>),
    /// Make a CA and a serving certificate for the webhook's Service.
    Certs(certs::CertsArgs),
}

/// Installed under this name on PATH, the binary is the kubectl plugin `kubectl inference-webhook`.
const PLUGIN_BINARY: &str = "kubectl-inference_webhook";
const PLUGIN_COMMAND: &str = "kubectl inference-webhook";

fn main() -> ExitCode {
    let cli = parse_cli();
    match cli.command {
        Command::Serve(args) => server::run(*args),
        Command::Audit(args) => audit::run(args),
        Command::Report(args) => report::run(*args),
        Command::Certs(args) => certs::run(args),
    }
}

/// The same commands either way; as a kubectl plugin, help and errors name the command the way
/// it was typed (`kubectl inference-webhook audit ...`).
fn parse_cli() -> Cli {
    let invoked_as = std::env::args_os().next();
    let as_plugin = invoked_as
        .as_deref()
        .and_then(|a| Path::new(a).file_stem())
        .is_some_and(|stem| stem == PLUGIN_BINARY);
    if !as_plugin {
        return Cli::parse();
    }
    let command = Cli::command().name(PLUGIN_COMMAND).bin_name(PLUGIN_COMMAND);
    Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit())
}
