//! What a call may reach, and how it fails: shared by every tool module.

use std::path::PathBuf;

use kai_core::{CollectionId, RunId, UserId};
use kai_knowledge::Knowledge;
use serde_json::Value;

/// Why a call failed: told to the model as the call's result, so that it can do better.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// The arguments are not what the tool takes.
    #[error("invalid arguments: {0}")]
    Invalid(String),
    /// The tool could not do it.
    #[error("{0}")]
    Failed(String),
    /// Whether the call ran is unknown: its server's connection broke or it timed out.
    #[error("{0}; whether the call ran is unknown")]
    Unknown(String),
}

/// What a call may reach: the run's workspace and its owner's knowledge.
#[derive(Clone)]
pub struct ToolEnv {
    /// The run.
    pub run: RunId,
    /// Its owner, for whom the agent acts.
    pub owner: UserId,
    /// The run's workspace directory.
    pub workspace: PathBuf,
    /// The owner's knowledge, when this process serves it.
    pub knowledge: Option<Knowledge>,
    /// The collections knowledge search is limited to; all when empty.
    pub collections: Vec<CollectionId>,
    /// The client HTTP requests go through.
    pub web: super::web::Web,
    /// The MCP servers agents may use.
    pub mcp: std::sync::Arc<kai_mcp::McpServers>,
    /// The sandbox shell commands run in.
    pub shell: std::sync::Arc<super::sandbox::Shell>,
}

/// A string argument the schema check has made sure of, or a clear error.
pub(super) fn text<'a>(arguments: &'a Value, name: &str) -> Result<&'a str, ToolError> {
    arguments[name]
        .as_str()
        .ok_or_else(|| ToolError::Invalid(format!("`{name}` must be a string")))
}
