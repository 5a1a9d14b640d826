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
    #[error("the local model's computation failed: {}", Plain(.0))]
    Tensor(#[from] candle_core::Error),
    /// The tokenizer failed.
    #[error("the local model's tokenizer failed: {0}")]
    Tokenizer(String),
}

/// A candle error as one line: its message and context, without the backtrace candle captures
/// when `RUST_BACKTRACE` or `RUST_LIB_BACKTRACE` is set, so that no answer to a client carries
/// one.
pub(crate) struct Plain<'a>(pub(crate) &'a candle_core::Error);

impl std::fmt::Display for Plain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use candle_core::Error;
        match self.0 {
            Error::WithBacktrace { inner, .. } => Plain(inner).fmt(f),
            Error::Context { inner, context } => write!(f, "{context}: {}", Plain(inner)),
            Error::WithPath { inner, path } => write!(f, "{}: {}", path.display(), Plain(inner)),
            Error::WrappedContext { wrapped, context } => write!(f, "{context}: {wrapped}"),
            other => write!(f, "{other}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candle_errors_lose_their_backtraces_and_keep_their_context() {
        let inner = candle_core::Error::Msg("tensor cut short".into());
        let traced = candle_core::Error::WithBacktrace {
            inner: Box::new(inner),
            backtrace: Box::new(std::backtrace::Backtrace::force_capture()),
        };
        assert!(
            traced.to_string().contains('\n'),
            "candle's own Display has the trace"
        );
        let wrapped = traced.context("reading blk.0");
        assert_eq!(
            Plain(&wrapped).to_string(),
            "reading blk.0: tensor cut short"
        );
        let computed = ComputeError::Tensor(wrapped);
        assert_eq!(
            computed.to_string(),
            "the local model's computation failed: reading blk.0: tensor cut short"
        );
    }
}
