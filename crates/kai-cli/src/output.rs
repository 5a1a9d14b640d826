//! Everything the CLI prints. Commands print data to stdout (text for people, `--json` for
//! programs) and problems, hints and prompts to stderr, through these functions only.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Write};

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Prints a line of text to stdout.
pub(crate) fn line(text: &str) {
    println!("{text}");
}

/// Prints a value as pretty JSON to stdout.
pub(crate) fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, value)?;
    writeln!(stdout)?;
    Ok(())
}

/// Prints a value as one line of JSON to stdout and flushes it: a stream of events, one per
/// line, for a program reading as they come.
pub(crate) fn json_line<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, value)?;
    writeln!(stdout)?;
    stdout.flush()?;
    Ok(())
}

/// Writes text to stdout as it comes, without a newline, and flushes it so that it shows at
/// once (a streamed answer).
pub(crate) fn partial(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

/// Prints an error as one line to stderr.
pub(crate) fn error_line(message: &str) {
    eprintln!("kai: error: {message}");
}

/// Prints a warning as one line to stderr.
pub(crate) fn warning(message: &str) {
    eprintln!("kai: warning: {message}");
}

/// Prints a hint or a progress note as one line to stderr, where it stays out of the output.
pub(crate) fn note(message: &str) {
    eprintln!("kai: {message}");
}

/// Prints a prompt to stderr, without a newline.
pub(crate) fn prompt(text: &str) {
    eprint!("{text}");
    let _ = std::io::stderr().flush();
}

/// "Waiting for the model" on stderr while nothing has come yet, shown only on a terminal and
/// erased by [`Waiting::done`] (or when dropped) before anything else is printed.
pub(crate) struct Waiting {
    shown: bool,
}

impl Waiting {
    /// Shows the note, if stderr is a terminal.
    pub(crate) fn start(what: &str) -> Waiting {
        let shown = std::io::stderr().is_terminal();
        if shown {
            eprint!("({what}…)");
            let _ = std::io::stderr().flush();
        }
        Waiting { shown }
    }

    /// Erases the note.
    pub(crate) fn done(&mut self) {
        if std::mem::take(&mut self.shown) {
            // Back to the start of the line, and clear it.
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.done();
    }
}

/// A time as RFC 3339 to the second, as tables show it.
pub(crate) fn timestamp(at: OffsetDateTime) -> String {
    at.replace_nanosecond(0)
        .unwrap_or(at)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Rows as aligned columns under a header.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let render = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        text.trim_end().to_owned()
    };
    line(&render(header.to_vec()));
    for row in rows {
        line(&render(row.iter().map(String::as_str).collect()));
    }
}
