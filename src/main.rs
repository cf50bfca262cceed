#![forbid(unsafe_code)]
//! Command line: `serve`, `audit`, `report` and `certs` are thin front doors over one engine.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => server::run(*args),
        Command::Audit(args) => audit::run(args),
        Command::Report(args) => report::run(*args),
        Command::Certs(args) => certs::run(args),
    }
}
