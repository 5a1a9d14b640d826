//! What can go wrong with the model store, each case saying what to do about it.

use std::path::PathBuf;

/// Why the store could not do what was asked. Messages name the file, model or source and say
/// what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file of an installed model is missing, or its size or digest is not the recorded one.
    #[error(
        "model `{model}`: {path} is damaged ({why}); run `kai models pull {model}` again to repair it"
    )]
    Corrupt {
        /// The model.
        model: String,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// Reading or writing the store failed.
    #[error("model store at {path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No model of that name is installed.
    #[error("no model `{name}` is installed in {root}; `kai models list` shows those that are")]
    NotInstalled {
        /// The name asked for.
        name: String,
        /// The store's directory.
        root: PathBuf,
    },
    /// A model name that cannot be a directory of the store.
    #[error(
        "`{name}` cannot name a model: {why}; use 1 to 64 letters, digits, `.`, `_` or `-`, \
         starting with a letter or digit"
    )]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        why: String,
    },
    /// A source that is not one kai can pull from, or that does not exist there.
    #[error("cannot pull `{source_text}`: {why}")]
    InvalidSource {
        /// The source as given.
        source_text: String,
        /// What is wrong with it, and what to write instead.
        why: String,
    },
    /// Another pull or removal holds the model (or the download) now.
    #[error(
        "{what} is being pulled or removed by another kai process; wait for it to finish and try again"
    )]
    Busy {
        /// The model or download.
        what: String,
    },
    /// A download or index lookup failed, after retrying what could be retried.
    #[error("cannot fetch {url}: {why}")]
    Fetch {
        /// What was asked for, without credentials.
        url: String,
        /// Why, and what to do.
        why: String,
    },
    /// A download is not what its index promised: a different size or SHA-256.
    #[error(
        "{what}: {why}; the download was deleted and nothing was installed. Pull again; if this \
         repeats, the server is sending a different file than it lists"
    )]
    Mismatch {
        /// The file.
        what: String,
        /// The size or digest expected and the one found.
        why: String,
    },
    /// What was fetched or given does not hold a model kai can run.
    #[error("{what} is not a model kai can run: {why}; nothing was installed")]
    NotAModel {
        /// The source or file.
        what: String,
        /// What is missing or wrong.
        why: String,
    },
}

impl StoreError {
    /// An I/O error at `path`.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { path, source }
    }

    /// A source that cannot be pulled, and why.
    pub(crate) fn source(source_text: &str, why: impl Into<String>) -> StoreError {
        StoreError::InvalidSource {
            source_text: source_text.to_owned(),
            why: why.into(),
        }
    }

    /// Content that is not a model, and why.
    pub(crate) fn not_a_model(what: impl Into<String>, why: impl Into<String>) -> StoreError {
        StoreError::NotAModel {
            what: what.into(),
            why: why.into(),
        }
    }
}
