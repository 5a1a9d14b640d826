//! One server per SQLite data directory. SQLite itself would let two servers share a file, but
//! kai's in-process caches and, later, its on-disk indexes assume they are the only writer.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use anyhow::{Context, bail};

/// An exclusive lock on a data directory, released when dropped or when the process dies
/// (it is an OS file lock, so a crash never leaves a stale lock behind).
#[derive(Debug)]
pub(crate) struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the lock on `dir`, or fails saying which process holds it.
    pub(crate) fn acquire(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("kai.lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
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
                bail!(
                    "another kai server is already using the data directory {}{by}; stop it, or give this one \
                     its own with --data-dir or KAI_DATA_DIR",
                    dir.display()
                );
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
