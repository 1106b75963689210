//! `herd serve`'s log: its level (`--log-level`, or `RUST_LOG` as tracing's targets), its format
//! (`--log-format text|json`) and where it goes (`--error-logfile PATH`, or standard error).

use clap::ValueEnum;
use std::path::Path;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// One line of text per event: time, level, message, fields.
    Text,
    /// One JSON object per line: `timestamp`, `level`, `message` and the event's fields.
    Json,
}

/// Whether `--error-logfile` names a file (`-` is standard error, as gunicorn's default).
pub(crate) fn to_file(error_logfile: Option<&Path>) -> Option<&Path> {
    error_logfile.filter(|p| *p != Path::new("-"))
}

/// Installs the log subscriber; or why not (a `RUST_LOG` it cannot read).
pub(crate) fn init(
    level: tracing::Level,
    format: LogFormat,
    error_logfile: Option<&Path>,
) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(s) if !s.trim().is_empty() => s.parse::<Targets>().map_err(|e| format!("RUST_LOG={s:?}: {e}"))?,
        _ => Targets::new().with_default(level),
    };
    // Colours only for a terminal, and never into a file (standard error is pointed at it later).
    let ansi = to_file(error_logfile).is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let layer = fmt::layer().with_writer(std::io::stderr).with_target(false).with_ansi(ansi);
    let registry = tracing_subscriber::registry();
    match format {
        LogFormat::Text => registry.with(layer.with_filter(filter)).init(),
        LogFormat::Json => registry
            .with(
                layer
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_filter(filter),
            )
            .init(),
    }
    Ok(())
}
