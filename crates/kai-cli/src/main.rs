//! `kai`: the one binary. Parses arguments, loads configuration, and hands each command to the
//! library crates; no logic of its own lives here.

mod background;
mod cli;
mod client;
mod commands;
mod credentials;
mod input;
mod knowledge;
mod lock;
mod logging;
mod output;
mod trust;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than the C library's allocator: a model request allocates a few hundred small
/// objects, and glibc's malloc and free were a fifth of the gateway's instructions.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`kai chat … | head`): what it wanted, it has. Stop quietly,
        // as other command-line tools do.
        Err(err)
            if err.chain().any(|cause| {
                cause
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(err) => {
            output::error_line(&one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// One line, the whole chain of causes: "cannot do X: because Y: because Z". A cause that an
/// error's own message already quotes (many say "cannot read F: {cause}") is not repeated.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !line.ends_with(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error that quotes its source in its own message, as thiserror's often do.
    #[derive(Debug)]
    struct Quoting {
        source: std::io::Error,
    }

    impl std::fmt::Display for Quoting {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cannot read kai.toml: {}", self.source)
        }
    }

    impl std::error::Error for Quoting {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn a_cause_already_quoted_is_not_repeated() {
        let io = || std::io::Error::from(std::io::ErrorKind::NotFound);
        let quoted = anyhow::Error::new(Quoting { source: io() });
        assert_eq!(one_line(&quoted), format!("cannot read kai.toml: {}", io()));
        let chained = anyhow::Error::new(io()).context("cannot start");
        assert_eq!(one_line(&chained), format!("cannot start: {}", io()));
    }
}
