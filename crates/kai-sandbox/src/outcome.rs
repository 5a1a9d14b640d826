//! What a run left behind: how it ended and what it wrote, kept within the output limit.

use std::borrow::Cow;
use std::process::ExitStatus;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal (9, SIGKILL, when the time limit ran out; 25, SIGXFSZ,
    /// past the file-size limit).
    Signal(i32),
}

impl Exit {
    /// Reads bubblewrap's exit status. bubblewrap reports a command killed by signal N as
    /// exit code 128 + N, as a shell does, so a command that itself exits with 129 to 192 is
    /// read as a signal too: the two cannot be told apart, and death by a signal is by far
    /// the more common. bubblewrap itself killed (by the time limit) reports its signal.
    pub(crate) fn from_status(status: ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match status.code() {
            Some(code) if (129..=192).contains(&code) => Self::Signal(code - 128),
            Some(code) => Self::Code(code),
            // `wait` reports only exits and deaths by signal (not stops), so without a code
            // there is a signal.
            None => Self::Signal(status.signal().unwrap_or_default()),
        }
    }
}

/// One output stream of the command, kept up to the output limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    /// The first bytes written, at most the limit.
    pub bytes: Vec<u8>,
    /// Every byte written, kept or not.
    pub total: u64,
    /// Whether bytes were dropped past the limit.
    pub truncated: bool,
}

impl Captured {
    /// The kept bytes as text, invalid UTF-8 replaced (a cut at the limit may split a
    /// character).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.bytes)
    }
}

/// What a run did. A command that fails, times out or is killed is still an outcome; only
/// a sandbox that never ran the command is an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// How the command ended.
    pub exit: Exit,
    /// Whether the wall-time limit ran out and the sandbox was killed (`exit` is then
    /// SIGKILL).
    pub timed_out: bool,
    /// What it wrote to stdout.
    pub stdout: Captured,
    /// What it wrote to stderr.
    pub stderr: Captured,
    /// Wall-clock time from starting bubblewrap to its end, sandbox set-up included.
    pub elapsed: Duration,
}

impl Outcome {
    /// Whether the command exited with 0 within its time.
    pub fn success(&self) -> bool {
        !self.timed_out && self.exit == Exit::Code(0)
    }
}

/// The byte the sandbox writes to stdout just before it runs the command, so that a
/// sandbox which failed to start can be told from a command that failed: nothing inside can
/// write before it, and it is neither kept nor counted.
pub(crate) const START_MARKER: u8 = b'K';

/// Reads `pipe` to its end into `into`, keeping at most `limit` bytes and dropping the rest,
/// so the writer never blocks on a full pipe. With `started`, the stream is stdout: its
/// first byte is checked for [`START_MARKER`] and `started` set when it is there.
pub(crate) async fn capture(
    mut pipe: impl AsyncRead + Unpin,
    into: &mut Captured,
    limit: usize,
    mut started: Option<&mut bool>,
) -> std::io::Result<()> {
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let read = pipe.read(&mut buffer).await?;
        if read == 0 {
            return Ok(());
        }
        let mut chunk = &buffer[..read];
        if let Some(started) = started.take()
            && chunk[0] == START_MARKER
        {
            *started = true;
            chunk = &chunk[1..];
        }
        into.total += chunk.len() as u64;
        let room = limit.saturating_sub(into.bytes.len());
        into.bytes
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
        into.truncated |= chunk.len() > room;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_the_limit_counts_the_rest_and_strips_the_marker() {
        let mut captured = Captured::default();
        let mut started = false;
        let input: &[u8] = b"Khello world";
        capture(input, &mut captured, 5, Some(&mut started))
            .await
            .unwrap();
        assert!(started);
        assert_eq!(captured.bytes, b"hello");
        assert_eq!(captured.total, 11);
        assert!(captured.truncated);

        let mut captured = Captured::default();
        let mut started = false;
        let input: &[u8] = b"bwrap: no";
        capture(input, &mut captured, 100, Some(&mut started))
            .await
            .unwrap();
        assert!(!started);
        assert_eq!(captured.text(), "bwrap: no");
        assert!(!captured.truncated);
    }

    #[test]
    fn statuses_above_128_are_signals() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            Exit::from_status(ExitStatus::from_raw(3 << 8)),
            Exit::Code(3)
        );
        assert_eq!(
            Exit::from_status(ExitStatus::from_raw(137 << 8)),
            Exit::Signal(9)
        );
        assert_eq!(Exit::from_status(ExitStatus::from_raw(9)), Exit::Signal(9));
    }
}
