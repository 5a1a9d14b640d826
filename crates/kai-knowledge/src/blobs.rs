//! Content-addressed storage: every blob is kept once, in a file named by the BLAKE3 hash of its
//! bytes, under `<data_dir>/knowledge/blobs/ab/cdef…`.
//!
//! A blob is written to a temporary file in the same directory tree, synced, then renamed into
//! place, and its directory synced: a crash leaves either the whole blob or none of it under
//! its name. Writing bytes that are already stored only costs the hashing.

use std::io;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Why a blob could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The content is larger than allowed.
    #[error("the content is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The source of the content failed (an upload cut off mid-stream, a file unreadable).
    #[error("reading the content failed: {0}")]
    Source(io::Error),
    /// The blob directory could not be written or read.
    #[error("blob storage at {path}: {source}")]
    Storage {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// The stored bytes no longer hash to their name: the file was changed or damaged.
    #[error("blob {hash} is damaged: its bytes no longer match their hash")]
    Damaged {
        /// The hash it is stored under.
        hash: String,
    },
}

/// What was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    /// The BLAKE3 hash of the bytes, in hex.
    pub hash: String,
    /// How many bytes.
    pub size: u64,
    /// The first bytes, for sniffing the type.
    pub head: Vec<u8>,
}

/// How many leading bytes [`StoredBlob::head`] keeps: enough for every magic number `infer`
/// knows and for telling text from binary.
const HEAD_BYTES: usize = 8192;

/// The blob directory.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// The blob store under `root`, created if missing.
    pub fn open(root: impl Into<PathBuf>) -> Result<BlobStore, BlobError> {
        let root = root.into();
        let tmp = root.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|source| BlobError::Storage {
            path: tmp.clone(),
            source,
        })?;
        // Temporary files of writes a crash interrupted are useless: nothing names them.
        if let Ok(entries) = std::fs::read_dir(&tmp) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(BlobStore { root })
    }

    /// Where the blob with this hash lives.
    #[must_use]
    pub fn path(&self, hash: &str) -> PathBuf {
        let (dir, rest) = hash.split_at(hash.len().min(2));
        self.root.join(dir).join(rest)
    }

    /// Stores what `source` yields, up to `limit` bytes; more is refused and nothing is kept.
    pub async fn put(
        &self,
        mut source: impl tokio::io::AsyncRead + Unpin,
        limit: u64,
    ) -> Result<StoredBlob, BlobError> {
        let tmp_path = self
            .root
            .join("tmp")
            // A fresh name: simultaneous uploads of the same bytes must not share a file.
            .join(format!("{}.part", uuid::Uuid::now_v7()));
        let storage = |source: io::Error| BlobError::Storage {
            path: tmp_path.clone(),
            source,
        };
        let mut file = tokio::fs::File::create(&tmp_path).await.map_err(storage)?;
        // Removes the temporary file on every early return.
        let guard = RemoveOnDrop(Some(tmp_path.clone()));
        let mut hasher = blake3::Hasher::new();
        let mut head = Vec::new();
        let mut size = 0u64;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let read = source.read(&mut buffer).await.map_err(BlobError::Source)?;
            if read == 0 {
                break;
            }
            size += read as u64;
            if size > limit {
                return Err(BlobError::TooLarge { limit });
            }
            let bytes = &buffer[..read];
            if head.len() < HEAD_BYTES {
                let take = (HEAD_BYTES - head.len()).min(read);
                head.extend_from_slice(&bytes[..take]);
            }
            hasher.update(bytes);
            file.write_all(bytes).await.map_err(storage)?;
        }
        file.sync_all().await.map_err(storage)?;
        drop(file);
        let hash = hasher.finalize().to_hex().to_string();
        let path = self.path(&hash);
        if path.exists() {
            // Stored already: the temporary copy goes with the guard.
            return Ok(StoredBlob { hash, size, head });
        }
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|source| BlobError::Storage {
            path: dir.clone(),
            source,
        })?;
        std::fs::rename(&tmp_path, &path).map_err(storage)?;
        guard.disarm();
        sync_dir(&dir)?;
        Ok(StoredBlob { hash, size, head })
    }

    /// Stores bytes already in memory.
    pub async fn put_bytes(&self, bytes: &[u8]) -> Result<StoredBlob, BlobError> {
        self.put(bytes, u64::MAX).await
    }

    /// The whole blob, checked against its hash.
    pub async fn read(&self, hash: &str) -> Result<Vec<u8>, BlobError> {
        let path = self.path(hash);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|source| BlobError::Storage { path, source })?;
        if blake3::hash(&bytes).to_hex().as_str() != hash {
            return Err(BlobError::Damaged {
                hash: hash.to_owned(),
            });
        }
        Ok(bytes)
    }

    /// Opens the blob for streaming out. An open file stays readable even if the blob is
    /// collected meanwhile.
    pub async fn open_file(&self, hash: &str) -> Result<tokio::fs::File, BlobError> {
        let path = self.path(hash);
        tokio::fs::File::open(&path)
            .await
            .map_err(|source| BlobError::Storage { path, source })
    }

    /// Deletes a blob's file; one already gone is not an error.
    pub fn remove(&self, hash: &str) -> Result<(), BlobError> {
        let path = self.path(hash);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(BlobError::Storage { path, source }),
        }
    }

    /// The directory blobs live under.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// Makes a rename inside `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), BlobError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| BlobError::Storage {
            path: dir.to_path_buf(),
            source,
        })
}

struct RemoveOnDrop(Option<PathBuf>);

impl RemoveOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn the_same_bytes_are_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path()).unwrap();
        let first = blobs.put_bytes(b"hello").await.unwrap();
        let second = blobs.put_bytes(b"hello").await.unwrap();
        assert_eq!(first, second);
        assert_eq!(first.hash, blake3::hash(b"hello").to_hex().as_str());
        assert_eq!(blobs.read(&first.hash).await.unwrap(), b"hello");
        // Only the blob itself is left: no temporary files.
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }

    #[tokio::test]
    async fn too_large_content_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path()).unwrap();
        let err = blobs.put(&b"0123456789"[..], 4).await.unwrap_err();
        assert!(matches!(err, BlobError::TooLarge { limit: 4 }), "{err}");
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }

    #[tokio::test]
    async fn damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path()).unwrap();
        let stored = blobs.put_bytes(b"hello").await.unwrap();
        std::fs::write(blobs.path(&stored.hash), b"jello").unwrap();
        assert!(matches!(
            blobs.read(&stored.hash).await,
            Err(BlobError::Damaged { .. })
        ));
        blobs.remove(&stored.hash).unwrap();
        blobs.remove(&stored.hash).unwrap();
    }
}
