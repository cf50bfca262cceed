//! What the long-lived commands (`serve`, `report`) share: logging, the runtime they run on,
//! termination signals, durations in flags, and the plain-HTTP health and metrics routes.

mod duration;
mod http;
mod logging;

use std::process::ExitCode;

pub use duration::parse_duration;
pub use http::{health_routes, metrics_route};
pub use logging::{LogArgs, LogFormat, dropped_lines};

/// Run a long-lived command: logs set up, a multi-threaded runtime, and an error reported on
/// the log and on stderr. The log writer is flushed before the process exits.
pub fn run_daemon(
    name: &str,
    log: &LogArgs,
    main: impl Future<Output = anyhow::Result<()>>,
) -> ExitCode {
    let _flush_on_exit = match logging::init(log) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            return ExitCode::from(2);
        }
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(main));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{name}: {e:#}");
            eprintln!("{name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves when SIGTERM or SIGINT arrives.
pub async fn termination() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: draining"),
        _ = int.recv() => tracing::info!("SIGINT: draining"),
    }
    Ok(())
}
