//! One server per SQLite data directory and per SQLite database. SQLite itself would let two
//! servers share a file, but kai's in-process caches and, later, its on-disk indexes assume they
//! are the only writer.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use anyhow::{Context, bail};

/// An exclusive lock on a data directory or a database, released when dropped or when the
/// process dies (it is an OS file lock, so a crash never leaves a stale lock behind).
#[derive(Debug)]
pub(crate) struct ServerLock {
    _file: File,
}

impl ServerLock {
    /// Takes the lock on the data directory `dir` (its `kai.lock`), or fails saying which
    /// process holds it.
    pub(crate) fn data_dir(dir: &Path) -> anyhow::Result<Self> {
        Self::acquire(
            &dir.join("kai.lock"),
            &format!("the data directory {}", dir.display()),
            "give this one its own with --data-dir or KAI_DATA_DIR",
        )
    }

    /// Takes the lock on the SQLite database `file` (`FILE.lock` beside it): two data
    /// directories whose `database_url` name the same file must not both serve it.
    pub(crate) fn database(file: &Path) -> anyhow::Result<Self> {
        let mut name = file.file_name().unwrap_or_default().to_owned();
        name.push(".lock");
        Self::acquire(
            &file.with_file_name(name),
            &format!("the database {}", file.display()),
            "give this one its own with KAI_DATABASE_URL",
        )
    }

    fn acquire(path: &Path, what: &str, advice: &str) -> anyhow::Result<Self> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("cannot open lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let by = if holder.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {holder})")
                };
                bail!("another kai server is already using {what}{by}; stop it, or {advice}");
            }
            Err(TryLockError::Error(err)) => {
                return Err(err).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        file.set_len(0)?;
        file.rewind()?;
        write!(file, "{}", std::process::id())?;
        file.flush()?;
        Ok(Self { _file: file })
    }
}
