//! kai's web UI, as the files `npm run build` writes to `web/dist`, embedded in the binary so
//! that one file serves everything.
//!
//! Only what a server needs to answer with a file is here: the bytes, their media type, a
//! validator, and whether the name carries a content hash (then the file never changes and
//! may be cached for good). How they are served (headers, fallbacks, the security policy) is
//! kai-server's. A binary built before the UI was (`cargo build` alone, without `npm run
//! build` in `web/` first) has no files; [`is_built`] says so, so that the server can tell the
//! person what to do instead of serving an empty page.

use std::borrow::Cow;

#[derive(rust_embed::Embed)]
#[folder = "../../web/dist"]
#[allow_missing = true]
struct Dist;

/// One file of the UI.
#[derive(Debug, Clone)]
pub struct Asset {
    /// The file's contents.
    pub bytes: Cow<'static, [u8]>,
    /// Its media type, from its name.
    pub content_type: String,
    /// A strong validator for `ETag`: the start of the contents' SHA-256, in hex.
    pub etag: String,
    /// Whether the name carries a hash of the contents (Vite's `assets/NAME-HASH.EXT`), so
    /// that the same name always means the same bytes.
    pub immutable: bool,
}

/// The page every route of the UI starts from.
pub const INDEX: &str = "index.html";

/// The file at `path` (relative, no leading slash), if the UI has one.
#[must_use]
pub fn asset(path: &str) -> Option<Asset> {
    let file = Dist::get(path)?;
    let mut content_type = file.metadata.mimetype().to_owned();
    if content_type.starts_with("text/")
        || content_type == "application/javascript"
        || content_type.ends_with("json")
    {
        content_type.push_str("; charset=utf-8");
    }
    let etag = file.metadata.sha256_hash()[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    Some(Asset {
        bytes: file.data,
        content_type,
        etag,
        immutable: path.starts_with("assets/"),
    })
}

/// Whether this binary was built with the UI in it.
#[must_use]
pub fn is_built() -> bool {
    Dist::get(INDEX).is_some()
}
