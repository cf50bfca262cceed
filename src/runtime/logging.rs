//! Logs on stdout, text or JSON, through a non-blocking writer: a line is formatted where it is
//! logged and written by tracing-appender's worker thread. When the writer falls behind (a
//! stalled log pipe), lines are dropped and counted rather than making an admission review wait.

use std::sync::OnceLock;

use anyhow::Context as _;
use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};

/// Lines that may wait for the writer; at ~300 bytes a line, a few MB at most.
const BUFFERED_LINES: usize = 8192;

static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

#[derive(clap::Args, Debug, Clone)]
pub struct LogArgs {
    /// Log format.
    #[arg(
        long,
        env = "INFERENCE_WEBHOOK_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax, e.g. `info`, `debug`).
    #[arg(long, env = "INFERENCE_WEBHOOK_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Log lines dropped because the writer fell behind, since the process started.
pub fn dropped_lines() -> u64 {
    DROPPED.get().map_or(0, |c| c.dropped_lines() as u64)
}

/// Install the subscriber; the guard writes what is still queued when dropped.
pub(super) fn init(args: &LogArgs) -> anyhow::Result<WorkerGuard> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .with_context(|| format!("--log-level {:?}", args.log_level))?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(BUFFERED_LINES)
        .thread_name("log-writer")
        .finish(std::io::stdout());
    DROPPED.get_or_init(|| writer.error_counter());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    let result = match args.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("initialising logs: {e}"))?;
    Ok(guard)
}
