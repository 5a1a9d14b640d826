//! `kai`: the one binary. Parses arguments, loads configuration, and hands each command to the
//! library crates; no logic of its own lives here.

mod cli;
mod client;
mod commands;
mod credentials;
mod input;
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
            // One line, the whole chain of causes: "cannot do X: because Y: because Z".
            output::error_line(&format!("{err:#}"));
            ExitCode::FAILURE
        }
    }
}
