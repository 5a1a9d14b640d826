//! Everything the CLI reads from the person at the keyboard or from a pipe: lines, passwords,
//! a whole prompt. Secrets come from a prompt or stdin, never from the command line, where
//! other users of the machine could read them in the process list.

use std::io::{BufRead, IsTerminal, Read};

use anyhow::{Context, bail};
use tokio::sync::mpsc;

/// Whether stdin is a terminal (a person typing) rather than a pipe or a file.
pub(crate) fn interactive() -> bool {
    std::io::stdin().is_terminal()
}

/// One line of stdin without its line ending; `None` at the end of input.
pub(crate) fn line() -> std::io::Result<Option<String>> {
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let text = line.strip_suffix('\n').unwrap_or(&line);
    Ok(Some(text.strip_suffix('\r').unwrap_or(text).to_owned()))
}

/// A password: typed at a hidden prompt on a terminal, else the first line of stdin
/// (`printf '%s\n' "$PASSWORD" | kai …`).
pub(crate) fn password(prompt: &str) -> anyhow::Result<String> {
    let password = if interactive() {
        rpassword::prompt_password(prompt).context("cannot read the password")?
    } else {
        line()
            .context("cannot read the password from stdin")?
            .unwrap_or_default()
    };
    if password.is_empty() {
        bail!("no password given: type one at the prompt, or pipe it on stdin");
    }
    Ok(password)
}

/// All of stdin, as text.
pub(crate) fn all() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("cannot read stdin (is it text?)")?;
    Ok(text)
}

/// Lines of stdin as they are typed, read on a thread of their own so that waiting for one
/// can be abandoned (on Ctrl-C). The channel closes at the end of input or on an error.
///
/// The thread is a plain one, not the runtime's: it may still be blocked in a read when the
/// command ends, and the process must not wait for it.
pub(crate) fn lines() -> mpsc::Receiver<std::io::Result<String>> {
    let (sender, receiver) = mpsc::channel(1);
    std::thread::spawn(move || {
        loop {
            let next = match line() {
                Ok(Some(text)) => Ok(text),
                Ok(None) => break,
                Err(err) => Err(err),
            };
            let failed = next.is_err();
            if sender.blocking_send(next).is_err() || failed {
                break;
            }
        }
    });
    receiver
}
