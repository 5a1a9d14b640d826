//! The credentials file `kai login` writes and `kai chat` reads: which server, and the API key
//! for it. It is a secret, so it is created readable by its owner only and replaced atomically:
//! a crash mid-write leaves the old file or the new one, never half of either.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use kai_config::Environment;
use serde::{Deserialize, Serialize};
use url::Url;
use uuid::Uuid;

use crate::output;

/// What `kai login` keeps. `Debug` hides the key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Credentials {
    /// The server that issued the key.
    pub(crate) url: Url,
    /// The key itself, `kai_…`.
    pub(crate) api_key: String,
    /// The key's id, to revoke it on `kai logout`.
    pub(crate) key_id: Uuid,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("url", &self.url.as_str())
            .field("api_key", &kai_config::REDACTED)
            .field("key_id", &self.key_id)
            .finish()
    }
}

/// `$XDG_CONFIG_HOME/kai/credentials.toml`, else `~/.config/kai/credentials.toml`: next to
/// `kai.toml`, but a file of its own so that the configuration can be shown and shared.
/// `None` when neither variable is set.
pub(crate) fn path(env: &Environment) -> Option<PathBuf> {
    env.get("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| env.get("HOME").map(|home| Path::new(home).join(".config")))
        .map(|dir| dir.join("kai").join("credentials.toml"))
}

/// [`path`], or an error saying why there is none.
pub(crate) fn required_path(env: &Environment) -> anyhow::Result<PathBuf> {
    match path(env) {
        Some(path) => Ok(path),
        None => bail!(
            "cannot choose where to keep credentials: neither XDG_CONFIG_HOME nor HOME is set"
        ),
    }
}

/// The stored credentials, or `None` when there are none.
pub(crate) fn load(path: &Path) -> anyhow::Result<Option<Credentials>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    warn_if_shared(path);
    let credentials = toml::from_str(&text).map_err(|err| {
        anyhow::anyhow!(
            "{} is not a credentials file ({}); delete it and run `kai login` again",
            path.display(),
            err.message().trim()
        )
    })?;
    Ok(Some(credentials))
}

/// Writes `credentials` to `path`: a private file beside it first, then renamed over it.
pub(crate) fn save(path: &Path, credentials: &Credentials) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .with_context(|| format!("{} has no directory", path.display()))?;
    kai_store::create_private_dir(dir)
        .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    let text = toml::to_string(credentials).context("cannot encode the credentials")?;
    // tempfile creates the file readable by its owner only, in the same directory so that the
    // rename stays on one file system and is atomic.
    let mut file = tempfile::Builder::new()
        .prefix(".credentials")
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.as_file().sync_all());
    written.with_context(|| format!("cannot write {}", file.path().display()))?;
    file.persist(path)
        .map_err(|err| err.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Deletes the file; `false` if there was none.
pub(crate) fn remove(path: &Path) -> anyhow::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err).with_context(|| format!("cannot delete {}", path.display())),
    }
}

/// A key others can read is as good as leaked; say so, once per use.
fn warn_if_shared(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(metadata) = std::fs::metadata(path)
            && metadata.permissions().mode() & 0o077 != 0
        {
            output::warning(&format!(
                "{} is readable by other users; `chmod 600` it",
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn sample() -> Credentials {
        Credentials {
            url: "http://127.0.0.1:8420".parse().unwrap(),
            api_key: "kai_secret".into(),
            key_id: Uuid::nil(),
        }
    }

    #[test]
    fn the_file_is_private_and_round_trips() {
        let home = tempfile::tempdir().unwrap();
        let path = home.path().join("config/kai/credentials.toml");
        assert_eq!(load(&path).unwrap(), None);
        save(&path, &sample()).unwrap();
        assert_eq!(load(&path).unwrap(), Some(sample()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
        // Replacing it leaves no temporary file behind.
        save(&path, &sample()).unwrap();
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["credentials.toml"]);
        assert!(remove(&path).unwrap());
        assert!(!remove(&path).unwrap());
    }

    #[test]
    fn the_key_never_shows_in_debug() {
        assert!(!format!("{:?}", sample()).contains("kai_secret"));
    }

    #[test]
    fn a_damaged_file_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.toml");
        std::fs::write(&path, "url = 1\n").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("kai login"), "{err}");
    }

    #[test]
    fn the_place_follows_xdg() {
        let env: Environment = [("HOME", "/home/a")].into_iter().collect();
        assert_eq!(
            path(&env).unwrap(),
            Path::new("/home/a/.config/kai/credentials.toml")
        );
        let env: Environment = [("HOME", "/home/a"), ("XDG_CONFIG_HOME", "/x")]
            .into_iter()
            .collect();
        assert_eq!(path(&env).unwrap(), Path::new("/x/kai/credentials.toml"));
        assert!(path(&Environment::default()).is_none());
        assert!(required_path(&Environment::default()).is_err());
    }
}
