//! Hugging Face repositories: the file listing of a revision (`/api/models/{repo}/revision/{rev}`)
//! and file downloads (`/{repo}/resolve/{rev}/{file}`), and which files make the model.

use serde::Deserialize;
use url::Url;

use crate::fetch::{Fetcher, display_url, is_sha256};
use crate::name::strip_suffix_ignore_case;
use crate::unpack::{EMBEDDING_FILES, REQUIRED_EMBEDDING_FILES};
use crate::{PullEvent, StoreError};

/// One file of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RepoFile {
    pub(crate) path: String,
    pub(crate) size: Option<u64>,
    /// The Git LFS object's SHA-256, for files kept in LFS.
    pub(crate) sha256: Option<String>,
}

/// A revision's files, and the commit it resolved to.
#[derive(Debug, Clone)]
pub(crate) struct Listing {
    pub(crate) commit: Option<String>,
    pub(crate) files: Vec<RepoFile>,
}

/// Which files of a repository make the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Choice {
    /// One GGUF file: a chat model.
    Gguf(RepoFile),
    /// A sentence-transformers model: its files, at the paths they keep in the store.
    Embedding(Vec<RepoFile>),
}

#[derive(Deserialize)]
struct ApiModel {
    #[serde(default)]
    sha: Option<String>,
    #[serde(default)]
    siblings: Vec<ApiSibling>,
}

#[derive(Deserialize)]
struct ApiSibling {
    rfilename: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    lfs: Option<ApiLfs>,
}

#[derive(Deserialize)]
struct ApiLfs {
    sha256: String,
    #[serde(default)]
    size: Option<u64>,
}

/// Lists the files of `repo` at `revision`, with their sizes and LFS digests.
pub(crate) async fn list(
    fetcher: &Fetcher,
    source_text: &str,
    repo: &str,
    revision: &str,
    progress: &(dyn Fn(PullEvent<'_>) + Send + Sync),
) -> Result<Listing, StoreError> {
    let mut url = fetcher.huggingface_url().clone();
    {
        let mut segments = url.path_segments_mut().map_err(|()| StoreError::Fetch {
            url: display_url(fetcher.huggingface_url()),
            why: "local.huggingface_url cannot be a base for paths".into(),
        })?;
        segments.pop_if_empty().extend(["api", "models"]);
        segments.extend(repo.split('/'));
        segments.extend(["revision", revision]);
    }
    url.set_query(Some("blobs=true"));
    progress(PullEvent::Step(&format!(
        "looking up {repo}@{revision} on {}",
        display_url(fetcher.huggingface_url())
    )));
    let Some(document) = fetcher
        .document(&url, "application/json", true, progress)
        .await?
    else {
        return Err(StoreError::source(
            source_text,
            format!(
                "Hugging Face has no repository `{repo}` with a revision `{revision}` (or it is \
                 private: set HF_TOKEN)"
            ),
        ));
    };
    let model: ApiModel =
        serde_json::from_slice(&document.body).map_err(|err| StoreError::Fetch {
            url: display_url(&url),
            why: format!("the repository listing does not read: {err}"),
        })?;
    Ok(Listing {
        commit: model
            .sha
            .filter(|sha| !sha.is_empty() && sha.chars().all(|c| c.is_ascii_alphanumeric())),
        files: model
            .siblings
            .into_iter()
            .map(|sibling| {
                let lfs = sibling.lfs.filter(|lfs| is_sha256(&lfs.sha256));
                RepoFile {
                    path: sibling.rfilename,
                    size: lfs.as_ref().and_then(|lfs| lfs.size).or(sibling.size),
                    sha256: lfs.map(|lfs| lfs.sha256.to_ascii_lowercase()),
                }
            })
            .collect(),
    })
}

/// The download URL of `file` in `repo` at `revision`.
pub(crate) fn resolve_url(base: &Url, repo: &str, revision: &str, file: &str) -> Url {
    let mut url = base.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty();
        segments.extend(repo.split('/'));
        segments.extend(["resolve", revision]);
        segments.extend(file.split('/'));
    }
    url
}

/// Picks the model's files: the GGUF file asked for; else the only GGUF file, or the one
/// quantised Q4_K_M, or Q8_0; else a sentence-transformers model's files.
pub(crate) fn choose(
    listing: &Listing,
    source_text: &str,
    file: Option<&str>,
) -> Result<Choice, StoreError> {
    let is_gguf = |path: &str| strip_suffix_ignore_case(path, ".gguf").is_some();
    if let Some(file) = file {
        let Some(found) = listing.files.iter().find(|f| f.path == file) else {
            let ggufs: Vec<&str> = listing
                .files
                .iter()
                .map(|f| f.path.as_str())
                .filter(|path| is_gguf(path))
                .collect();
            let hint = if ggufs.is_empty() {
                String::new()
            } else {
                format!("; its GGUF files are {}", ggufs.join(", "))
            };
            return Err(StoreError::source(
                source_text,
                format!("the repository has no file `{file}`{hint}"),
            ));
        };
        if !is_gguf(&found.path) {
            return Err(StoreError::source(
                source_text,
                "only a .gguf file can be pulled by name; leave the file out to pull a \
                 sentence-transformers repository whole",
            ));
        }
        return Ok(Choice::Gguf(found.clone()));
    }
    let ggufs: Vec<&RepoFile> = listing.files.iter().filter(|f| is_gguf(&f.path)).collect();
    if ggufs.len() == 1 {
        return Ok(Choice::Gguf(ggufs[0].clone()));
    }
    if !ggufs.is_empty() {
        for quantisation in ["q4_k_m", "q8_0"] {
            let matching: Vec<&&RepoFile> = ggufs
                .iter()
                .filter(|f| f.path.to_ascii_lowercase().contains(quantisation))
                .collect();
            if matching.len() == 1 {
                return Ok(Choice::Gguf((*matching[0]).clone()));
            }
        }
        let names: Vec<&str> = ggufs.iter().map(|f| f.path.as_str()).collect();
        return Err(StoreError::source(
            source_text,
            format!(
                "the repository has several GGUF files ({}); choose one as \
                 `hf:OWNER/REPO:FILE`",
                names.join(", ")
            ),
        ));
    }
    let has = |path: &str| listing.files.iter().any(|f| f.path == path);
    let missing: Vec<&str> = REQUIRED_EMBEDDING_FILES
        .iter()
        .copied()
        .filter(|path| !has(path))
        .collect();
    if !missing.is_empty() {
        return Err(StoreError::not_a_model(
            source_text,
            format!(
                "the repository has no .gguf file, and is not a sentence-transformers model \
                 either (it lacks {})",
                missing.join(", ")
            ),
        ));
    }
    Ok(Choice::Embedding(
        listing
            .files
            .iter()
            .filter(|f| EMBEDDING_FILES.contains(&f.path.as_str()))
            .cloned()
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(paths: &[&str]) -> Listing {
        Listing {
            commit: None,
            files: paths
                .iter()
                .map(|path| RepoFile {
                    path: (*path).to_owned(),
                    size: None,
                    sha256: None,
                })
                .collect(),
        }
    }

    fn chosen(choice: Choice) -> Vec<String> {
        match choice {
            Choice::Gguf(file) => vec![file.path],
            Choice::Embedding(files) => files.into_iter().map(|f| f.path).collect(),
        }
    }

    #[test]
    fn a_gguf_file_is_picked_or_asked_for() {
        let one = listing(&["README.md", "m-Q4_1.gguf"]);
        assert_eq!(chosen(choose(&one, "s", None).unwrap()), ["m-Q4_1.gguf"]);
        let many = listing(&["m-Q2_K.gguf", "m-Q4_K_M.gguf", "m-Q8_0.gguf"]);
        assert_eq!(chosen(choose(&many, "s", None).unwrap()), ["m-Q4_K_M.gguf"]);
        let no_k_m = listing(&["m-Q2_K.gguf", "m-Q8_0.gguf"]);
        assert_eq!(chosen(choose(&no_k_m, "s", None).unwrap()), ["m-Q8_0.gguf"]);
        let ambiguous = listing(&["m-Q2_K.gguf", "m-f16.gguf"]);
        let err = choose(&ambiguous, "s", None).unwrap_err().to_string();
        assert!(
            err.contains("m-Q2_K.gguf, m-f16.gguf") && err.contains(":FILE"),
            "{err}"
        );
        assert_eq!(
            chosen(choose(&ambiguous, "s", Some("m-f16.gguf")).unwrap()),
            ["m-f16.gguf"]
        );
        let err = choose(&ambiguous, "s", Some("nope.gguf"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no file `nope.gguf`"), "{err}");
        let err = choose(&one, "s", Some("README.md"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("only a .gguf file"), "{err}");
    }

    #[test]
    fn a_sentence_transformer_takes_its_model_files_only() {
        let repo = listing(&[
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "1_Pooling/config.json",
            "pytorch_model.bin",
            "onnx/model.onnx",
        ]);
        assert_eq!(
            chosen(choose(&repo, "s", None).unwrap()),
            [
                "config.json",
                "model.safetensors",
                "tokenizer.json",
                "1_Pooling/config.json"
            ]
        );
        let err = choose(&listing(&["config.json", "pytorch_model.bin"]), "s", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("model.safetensors, tokenizer.json"), "{err}");
    }

    #[test]
    fn revisions_and_paths_are_escaped_in_urls() {
        let base: Url = "https://hf.example/".parse().unwrap();
        assert_eq!(
            resolve_url(&base, "o/r", "refs/pr/1", "dir/m.gguf").as_str(),
            "https://hf.example/o/r/resolve/refs%2Fpr%2F1/dir/m.gguf"
        );
    }
}
