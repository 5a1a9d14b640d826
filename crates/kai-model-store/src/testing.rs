//! Loopback stand-ins for a Python package index (PEP 691 JSON and PEP 503 HTML simple API)
//! and for Hugging Face (repository listings and `resolve` downloads), serving models built in
//! the test, for tests of pulls in this and other crates. Downloads honour `Range`, and can be
//! made to break off midway.
//!
//! ```text
//! let registry = FakeRegistry::start().await;
//! registry.add_wheel("tiny-model", "tiny_model-1.0-py3-none-any.whl", zip(&[("tiny_model/m.gguf", &gguf("llama", 4096))]));
//! // … pull `pypi:tiny-model==1.0` with `local.pypi_index` = registry.pypi_index() …
//! ```

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use crate::fetch::hex;

/// A request the registry received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The path, without the query.
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// The `Range` header, if sent.
    pub range: Option<String>,
    /// The `Accept` header, if sent.
    pub accept: Option<String>,
    /// The `Authorization` header, if sent.
    pub authorization: Option<String>,
}

/// A file the index lists for a project.
#[derive(Debug, Clone)]
struct Listed {
    filename: String,
    path: String,
    sha256: String,
    size: u64,
}

/// Something that happens to a download on the way.
#[derive(Debug, Clone, Copy)]
enum Disruption {
    /// The connection breaks after this many bytes of the answer.
    Cut(usize),
    /// Half the answer is sent, then nothing for this long, then the rest.
    Pause(Duration),
}

/// A file served for download.
#[derive(Debug, Clone, Default)]
struct Served {
    bytes: Bytes,
    /// What happens to each next download, in turn.
    disruptions: VecDeque<Disruption>,
    etag: Option<String>,
}

#[derive(Debug, Clone)]
struct Repo {
    commit: String,
    siblings: Vec<Value>,
}

#[derive(Debug, Default)]
struct Registry {
    projects: HashMap<String, Vec<Listed>>,
    html_only: bool,
    files: HashMap<String, Served>,
    repos: HashMap<String, Repo>,
    token: Option<String>,
    requests: Vec<Seen>,
}

/// A running fake index and Hugging Face endpoint on a loopback port. Stops when dropped.
pub struct FakeRegistry {
    addr: SocketAddr,
    state: Arc<Mutex<Registry>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeRegistry {
    /// Starts one on an ephemeral port, serving nothing yet.
    pub async fn start() -> FakeRegistry {
        let state = Arc::new(Mutex::new(Registry::default()));
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeRegistry { addr, state, task }
    }

    /// The index's simple API, for `local.pypi_index`.
    #[must_use]
    pub fn pypi_index(&self) -> Url {
        format!("http://{}/simple/", self.addr).parse().unwrap()
    }

    /// The Hugging Face endpoint, for `local.huggingface_url`.
    #[must_use]
    pub fn huggingface_url(&self) -> Url {
        format!("http://{}/hf/", self.addr).parse().unwrap()
    }

    /// Lists a wheel for `project` with its true SHA-256 and size, and serves it.
    pub fn add_wheel(&self, project: &str, filename: &str, bytes: Vec<u8>) {
        let digest = sha256_hex(&bytes);
        self.add_wheel_listed_as(project, filename, bytes, &digest);
    }

    /// Lists a wheel with the SHA-256 given (true or not), and serves it.
    pub fn add_wheel_listed_as(&self, project: &str, filename: &str, bytes: Vec<u8>, sha256: &str) {
        let path = format!("/files/{}/{filename}", sha256_hex(filename.as_bytes()));
        let mut state = self.state.lock().unwrap();
        state
            .projects
            .entry(crate::pypi::normalize(project))
            .or_default()
            .push(Listed {
                filename: filename.to_owned(),
                path: path.clone(),
                sha256: sha256.to_owned(),
                size: bytes.len() as u64,
            });
        state.files.insert(
            path,
            Served {
                bytes: Bytes::from(bytes),
                ..Served::default()
            },
        );
    }

    /// Answers project pages in PEP 503 HTML only, whatever the client accepts.
    pub fn serve_html_only(&self) {
        self.state.lock().unwrap().html_only = true;
    }

    /// Adds a Hugging Face repository at `commit` (also its `main`), holding `files`; those
    /// named in `lfs` are listed as Git LFS files, with their SHA-256.
    pub fn add_repo(&self, repo: &str, commit: &str, files: &[(&str, Vec<u8>)], lfs: &[&str]) {
        let mut state = self.state.lock().unwrap();
        let mut siblings = Vec::new();
        for (path, bytes) in files {
            let digest = sha256_hex(bytes);
            let size = bytes.len();
            let is_lfs = lfs.contains(path);
            let mut sibling = json!({"rfilename": path, "blobId": &digest[..40], "size": size});
            if is_lfs {
                sibling["lfs"] = json!({"sha256": digest, "size": size, "pointerSize": 134});
            }
            siblings.push(sibling);
            state.files.insert(
                format!("/hf/{repo}/resolve/{commit}/{path}"),
                Served {
                    bytes: Bytes::from(bytes.clone()),
                    disruptions: VecDeque::new(),
                    etag: is_lfs.then_some(digest),
                },
            );
        }
        state.repos.insert(
            repo.to_owned(),
            Repo {
                commit: commit.to_owned(),
                siblings,
            },
        );
    }

    /// Makes every Hugging Face request need `Authorization: Bearer {token}`.
    pub fn require_token(&self, token: &str) {
        self.state.lock().unwrap().token = Some(token.to_owned());
    }

    /// Breaks off the next download of the file whose path ends in `/{file}` after `after`
    /// bytes of its answer.
    pub fn cut_next_download(&self, file: &str, after: usize) {
        self.disrupt(file, Disruption::Cut(after));
    }

    /// Makes the next download of the file whose path ends in `/{file}` stop for `pause`
    /// halfway through.
    pub fn pause_next_download(&self, file: &str, pause: Duration) {
        self.disrupt(file, Disruption::Pause(pause));
    }

    fn disrupt(&self, file: &str, disruption: Disruption) {
        let mut state = self.state.lock().unwrap();
        let suffix = format!("/{file}");
        let served = state
            .files
            .iter_mut()
            .find(|(path, _)| path.ends_with(&suffix))
            .map(|(_, served)| served)
            .expect("no such file is served");
        served.disruptions.push_back(disruption);
    }

    /// The requests received so far, oldest first.
    #[must_use]
    pub fn requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The requests for the file whose path ends in `/{file}`.
    #[must_use]
    pub fn downloads_of(&self, file: &str) -> Vec<Seen> {
        let suffix = format!("/{file}");
        self.requests()
            .into_iter()
            .filter(|seen| seen.path.ends_with(&suffix))
            .collect()
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(State(state): State<Arc<Mutex<Registry>>>, request: Request) -> Response {
    let headers = request.headers().clone();
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let path = request.uri().path().to_owned();
    let seen = Seen {
        path: path.clone(),
        query: request.uri().query().map(str::to_owned),
        range: text(header::RANGE),
        accept: text(header::ACCEPT),
        authorization: text(header::AUTHORIZATION),
    };
    let mut state = state.lock().unwrap();
    state.requests.push(seen.clone());

    if let Some(project) = path
        .strip_prefix("/simple/")
        .and_then(|rest| rest.strip_suffix('/'))
    {
        return project_page(&state, project, seen.accept.as_deref());
    }
    if path.starts_with("/hf/")
        && let Some(token) = &state.token
        && seen.authorization.as_deref() != Some(format!("Bearer {token}").as_str())
    {
        return plain(
            StatusCode::UNAUTHORIZED,
            "Invalid credentials in Authorization header",
        );
    }
    if let Some(rest) = path.strip_prefix("/hf/api/models/") {
        return listing(&state, rest);
    }
    let Some(served) = state.files.get_mut(&path) else {
        return plain(StatusCode::NOT_FOUND, "Entry not found");
    };
    let disruption = served.disruptions.pop_front();
    download(served, &headers, disruption)
}

fn project_page(state: &Registry, project: &str, accept: Option<&str>) -> Response {
    let Some(files) = state.projects.get(project) else {
        return plain(StatusCode::NOT_FOUND, "Not Found");
    };
    let json_wanted = accept.is_some_and(|accept| accept.contains("vnd.pypi.simple.v1+json"));
    if json_wanted && !state.html_only {
        let files: Vec<Value> = files
            .iter()
            .map(|file| {
                json!({"filename": file.filename, "url": format!("../..{}", file.path),
                       "hashes": {"sha256": file.sha256}, "size": file.size, "yanked": false,
                       "requires-python": ">=3.9"})
            })
            .collect();
        let body = json!({"meta": {"api-version": "1.1"}, "name": project, "files": files});
        return Response::builder()
            .header(header::CONTENT_TYPE, "application/vnd.pypi.simple.v1+json")
            .body(Body::from(body.to_string()))
            .unwrap();
    }
    let mut html = format!(
        "<!DOCTYPE html>\n<html>\n<head><title>Links for {project}</title></head>\n<body>\n\
         <h1>Links for {project}</h1>\n"
    );
    for file in files {
        html.push_str(&format!(
            "<a href=\"{}#sha256={}\" data-requires-python=\"&gt;=3.9\">{}</a><br/>\n",
            file.path, file.sha256, file.filename
        ));
    }
    html.push_str("</body>\n</html>\n");
    Response::builder()
        .header(header::CONTENT_TYPE, "text/html")
        .body(Body::from(html))
        .unwrap()
}

fn listing(state: &Registry, rest: &str) -> Response {
    let parts: Vec<&str> = rest.split('/').collect();
    let [owner, name, "revision", revision] = parts.as_slice() else {
        return plain(StatusCode::NOT_FOUND, "Not Found");
    };
    let repo_id = format!("{owner}/{name}");
    let Some(repo) = state.repos.get(&repo_id) else {
        return plain(StatusCode::NOT_FOUND, "Repository not found");
    };
    if *revision != "main" && *revision != repo.commit {
        return plain(StatusCode::NOT_FOUND, "Invalid rev id");
    }
    let body = json!({"_id": "0", "id": repo_id, "sha": repo.commit, "siblings": repo.siblings});
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// The file, or the part of it `Range: bytes=N-` asks for, disrupted if asked.
fn download(served: &Served, headers: &HeaderMap, disruption: Option<Disruption>) -> Response {
    let len = served.bytes.len();
    let start = headers
        .get(header::RANGE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("bytes="))
        .and_then(|value| value.strip_suffix('-'))
        .and_then(|value| value.parse::<usize>().ok());
    let mut builder = Response::builder().header(header::ACCEPT_RANGES, "bytes");
    if let Some(etag) = &served.etag {
        builder = builder.header(header::ETAG, format!("\"{etag}\""));
    }
    let from = match start {
        Some(start) if start >= len => {
            return builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .body(Body::empty())
                .unwrap();
        }
        Some(start) => {
            builder = builder.status(StatusCode::PARTIAL_CONTENT).header(
                header::CONTENT_RANGE,
                format!("bytes {start}-{}/{len}", len - 1),
            );
            start
        }
        None => 0,
    };
    let body = served.bytes.slice(from..);
    builder = builder.header(header::CONTENT_LENGTH, body.len());
    let body = match disruption {
        None => Body::from(body),
        Some(Disruption::Cut(keep)) => {
            let sent = body.slice(..keep.min(body.len()));
            // The break comes a moment later, so that what was sent reaches the client first.
            let cut = async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "fake registry: connection cut",
                ))
            };
            Body::from_stream(
                futures_util::stream::once(async move { Ok(sent) })
                    .chain(futures_util::stream::once(cut)),
            )
        }
        Some(Disruption::Pause(pause)) => {
            let half = body.len() / 2;
            let (first, rest) = (body.slice(..half), body.slice(half..));
            let rest = async move {
                tokio::time::sleep(pause).await;
                Ok::<_, std::io::Error>(rest)
            };
            Body::from_stream(
                futures_util::stream::once(async move { Ok(first) })
                    .chain(futures_util::stream::once(rest)),
            )
        }
    };
    builder.body(body).unwrap()
}

fn plain(status: StatusCode, text: &str) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(text.to_owned()))
        .unwrap()
}

/// The SHA-256 of `bytes`, lowercase hex.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// A small GGUF file: a version 3 header with `general.architecture` and a name, and one F32
/// tensor whose data is `padding` incompressible bytes (a multiple of four lies whole within
/// the file; the last `padding % 4` bytes belong to no tensor).
#[must_use]
pub fn gguf(architecture: &str, padding: usize) -> Vec<u8> {
    gguf_with_tensor(architecture, 0, padding as u64 / 4, padding)
}

/// A GGUF file like [`gguf`]'s whose one tensor, `noise`, has ggml type `ggml_type` and
/// `values` values, followed by `data` incompressible bytes.
#[must_use]
pub fn gguf_with_tensor(architecture: &str, ggml_type: u32, values: u64, data: usize) -> Vec<u8> {
    let string = |text: &str| {
        let mut bytes = (text.len() as u64).to_le_bytes().to_vec();
        bytes.extend(text.as_bytes());
        bytes
    };
    let mut bytes = b"GGUF".to_vec();
    bytes.extend(3u32.to_le_bytes());
    bytes.extend(1u64.to_le_bytes());
    bytes.extend(2u64.to_le_bytes());
    for (key, value) in [
        ("general.name", "tiny"),
        ("general.architecture", architecture),
    ] {
        bytes.extend(string(key));
        bytes.extend(8u32.to_le_bytes());
        bytes.extend(string(value));
    }
    bytes.extend(string("noise"));
    bytes.extend(1u32.to_le_bytes());
    bytes.extend(values.to_le_bytes());
    bytes.extend(ggml_type.to_le_bytes());
    bytes.extend(0u64.to_le_bytes());
    bytes.resize(bytes.len().div_ceil(32) * 32, 0);
    bytes.extend(noise(data, 1));
    bytes
}

/// `len` bytes that do not compress, so that archives of them are as large as they look.
fn noise(len: usize, seed: u32) -> impl Iterator<Item = u8> {
    let mut state = 0x2545_f491 ^ seed;
    (0..len).map(move |_| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state.to_le_bytes()[0]
    })
}

/// The files of a small sentence-transformers model, by path: a BERT `config.json`, a
/// `model.safetensors` with a real header and `padding` bytes of tensor data, a
/// `tokenizer.json`, and the sentence-transformers extras.
#[must_use]
pub fn embedding_files(padding: usize) -> Vec<(String, Vec<u8>)> {
    let header = json!({"__metadata__": {"format": "pt"},
        "embeddings.weight": {"dtype": "F32", "shape": [padding / 4], "data_offsets": [0, padding / 4 * 4]}})
    .to_string();
    let mut safetensors = (header.len() as u64).to_le_bytes().to_vec();
    safetensors.extend(header.as_bytes());
    safetensors.extend(noise(padding, 2));
    vec![
        (
            "config.json".into(),
            json!({"model_type": "bert", "hidden_size": 8, "num_hidden_layers": 1})
                .to_string()
                .into_bytes(),
        ),
        ("model.safetensors".into(), safetensors),
        (
            "tokenizer.json".into(),
            json!({"version": "1.0", "model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}})
                .to_string()
                .into_bytes(),
        ),
        (
            "sentence_bert_config.json".into(),
            json!({"max_seq_length": 256, "do_lower_case": false})
                .to_string()
                .into_bytes(),
        ),
        (
            "1_Pooling/config.json".into(),
            json!({"word_embedding_dimension": 8, "pooling_mode_mean_tokens": true})
                .to_string()
                .into_bytes(),
        ),
    ]
}

/// A zip archive (or wheel) of `entries`, compressed with deflate.
#[must_use]
pub fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}
