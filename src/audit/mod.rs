//! The audit command (placeholder until the audit lands).

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct AuditArgs {}

pub fn run(_args: AuditArgs) -> ExitCode {
    eprintln!("audit: not built yet");
    ExitCode::from(2)
}
