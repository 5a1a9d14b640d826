//! Files inside the run's workspace. A path is relative to the workspace; one that is
//! absolute, climbs out with `..`, or reaches out through a symbolic link is refused.

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::env::{ToolError, text};

/// The most of a file read back to the model.
const MAX_READ: usize = 256 * 1024;
/// The largest content one call writes.
const MAX_WRITE: usize = 1024 * 1024;
/// The most entries one listing shows.
const MAX_LISTED: usize = 500;

/// `relative` inside `workspace`, checked: the lexical path first (no root, no `..`), then the
/// deepest part that exists, resolved through symbolic links, must still be inside.
async fn resolve(workspace: &Path, relative: &str) -> Result<PathBuf, ToolError> {
    if relative.contains('\0') {
        return Err(ToolError::Invalid("the path holds a NUL character".into()));
    }
    let mut joined = workspace.to_path_buf();
    for component in Path::new(relative).components() {
        match component {
            Component::Normal(part) => joined.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(ToolError::Invalid(format!(
                    "`{relative}` is outside the workspace: give a path relative to it, \
                     without `..`"
                )));
            }
        }
    }
    let root = tokio::fs::canonicalize(workspace)
        .await
        .map_err(|err| ToolError::Failed(format!("the workspace is gone: {err}")))?;
    let mut existing = joined.as_path();
    loop {
        match tokio::fs::canonicalize(existing).await {
            Ok(real) if real.starts_with(&root) => return Ok(joined),
            Ok(_) => {
                return Err(ToolError::Invalid(format!(
                    "`{relative}` leads outside the workspace through a symbolic link"
                )));
            }
            Err(_) => match existing.parent() {
                Some(parent) => existing = parent,
                None => return Ok(joined),
            },
        }
    }
}

pub(super) async fn read(workspace: &Path, arguments: &Value) -> Result<String, ToolError> {
    let relative = text(arguments, "path")?;
    let path = resolve(workspace, relative).await?;
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|err| ToolError::Failed(format!("cannot read `{relative}`: {err}")))?;
    if bytes.contains(&0) {
        return Err(ToolError::Failed(format!(
            "`{relative}` is binary ({} bytes); only text files can be read",
            bytes.len()
        )));
    }
    let mut content = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_READ)]).into_owned();
    if bytes.len() > MAX_READ {
        content.push_str(&format!(
            "\n[truncated: {} of {} bytes shown]",
            MAX_READ,
            bytes.len()
        ));
    }
    Ok(content)
}

pub(super) async fn write(workspace: &Path, arguments: &Value) -> Result<String, ToolError> {
    let relative = text(arguments, "path")?;
    let content = text(arguments, "content")?;
    if content.len() > MAX_WRITE {
        return Err(ToolError::Invalid(format!(
            "the content is {} bytes; one call writes at most {MAX_WRITE}",
            content.len()
        )));
    }
    let append = arguments["append"].as_bool().unwrap_or(false);
    let path = resolve(workspace, relative).await?;
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(|err| {
            ToolError::Failed(format!("cannot make `{relative}`'s directory: {err}"))
        })?;
    }
    if append {
        use tokio::io::AsyncWriteExt;
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .map_err(|err| ToolError::Failed(format!("cannot open `{relative}`: {err}")))?;
        file.write_all(content.as_bytes())
            .await
            .map_err(|err| ToolError::Failed(format!("cannot write `{relative}`: {err}")))?;
    } else {
        tokio::fs::write(&path, content)
            .await
            .map_err(|err| ToolError::Failed(format!("cannot write `{relative}`: {err}")))?;
    }
    Ok(format!(
        "{} {} bytes to {relative}",
        if append { "appended" } else { "wrote" },
        content.len()
    ))
}

pub(super) async fn list(workspace: &Path, arguments: &Value) -> Result<String, ToolError> {
    let relative = arguments["path"].as_str().unwrap_or(".");
    let path = resolve(workspace, relative).await?;
    let mut entries = tokio::fs::read_dir(&path)
        .await
        .map_err(|err| ToolError::Failed(format!("cannot list `{relative}`: {err}")))?;
    let mut names = Vec::new();
    while let Some(entry) = entries
        .next_entry()
        .await
        .map_err(|err| ToolError::Failed(format!("cannot list `{relative}`: {err}")))?
    {
        let kind = entry.file_type().await.ok();
        let mut name = entry.file_name().to_string_lossy().into_owned();
        if kind.is_some_and(|kind| kind.is_dir()) {
            name.push('/');
        }
        names.push(name);
    }
    names.sort();
    let total = names.len();
    names.truncate(MAX_LISTED);
    let mut listing = names.join("\n");
    if total > MAX_LISTED {
        listing.push_str(&format!("\n[{MAX_LISTED} of {total} entries shown]"));
    }
    if total == 0 {
        listing = "(empty)".into();
    }
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn paths_stay_inside_the_workspace() {
        let outside = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let workspace = dir.path();
        write(workspace, &json!({"path": "notes/a.txt", "content": "one"}))
            .await
            .unwrap();
        write(
            workspace,
            &json!({"path": "notes/a.txt", "content": " two", "append": true}),
        )
        .await
        .unwrap();
        assert_eq!(
            read(workspace, &json!({"path": "notes/a.txt"}))
                .await
                .unwrap(),
            "one two"
        );
        assert_eq!(list(workspace, &json!({})).await.unwrap(), "notes/");

        std::os::unix::fs::symlink(outside.path(), workspace.join("escape")).unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        for path in [
            "../x",
            "/etc/passwd",
            "notes/../../x",
            "escape/secret",
            "escape/new",
        ] {
            let err = read(workspace, &json!({"path": path})).await.unwrap_err();
            assert!(matches!(err, ToolError::Invalid(_)), "{path}: {err}");
            let err = write(workspace, &json!({"path": path, "content": "x"}))
                .await
                .unwrap_err();
            assert!(matches!(err, ToolError::Invalid(_)), "{path}: {err}");
        }
        assert!(!outside.path().join("new").exists());
        let err = read(workspace, &json!({"path": "missing.txt"}))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("cannot read `missing.txt`"),
            "{err}"
        );
    }
}
