//! The HTTPS admission server (placeholder until the server lands).

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {}

pub fn run(_args: ServeArgs) -> ExitCode {
    eprintln!("serve: not built yet");
    ExitCode::from(2)
}
