//! Log output: human-readable on a terminal, JSON for collectors, always to stderr so that
//! stdout stays the command's own output.

use std::io::IsTerminal;

use anyhow::Context;
use kai_config::{LogFormat, LogSettings};
use tracing_subscriber::EnvFilter;

/// Installs the process's log subscriber.
pub(crate) fn init(settings: &LogSettings) -> anyhow::Result<()> {
    let filter = EnvFilter::builder()
        .parse(&settings.level)
        .with_context(|| {
            format!(
                "invalid configuration: `log.level` = `{}` is not a log filter",
                settings.level
            )
        })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match settings.format {
        LogFormat::Pretty => builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    result.map_err(|err| anyhow::anyhow!("cannot install the logger: {err}"))
}
