//! Why a model could not be loaded or run.

use std::path::PathBuf;

/// A model that could not be loaded. Messages name the file and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is cut short, or is not what it claims to be.
    #[error("{path} is truncated or corrupt ({why}); pull the model again to replace it")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The file is sound, but holds something this runtime cannot run.
    #[error("{path}: {why}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is missing.
        why: String,
    },
}

impl LoadError {
    /// Whether the file itself is damaged (as opposed to unreadable or unsupported).
    #[must_use]
    pub fn is_corrupt(&self) -> bool {
        matches!(self, LoadError::Corrupt { .. })
    }
}

/// Running a loaded model failed. Inputs are checked before any computation starts, so this
/// is a bug or an exhausted machine rather than bad input.
#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    /// A tensor operation failed.
    #[error("the local model's computation failed: {0}")]
    Tensor(#[from] candle_core::Error),
    /// The tokenizer failed.
    #[error("the local model's tokenizer failed: {0}")]
    Tokenizer(String),
}
