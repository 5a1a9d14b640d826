//! kai and the Model Context Protocol, over the official Rust SDK (rmcp).
//!
//! As a **client**, kai uses the MCP servers its owner configures ([`McpServerConfig`], an
//! `[[mcp_servers]]` table): [`McpClient::connect`] starts a stdio server or reaches a
//! streamable-HTTP one, lists its [`McpTool`]s with their annotations (which feed the consent
//! policy) and calls them, within timeouts. [`McpServers`] holds a process's servers by name,
//! connects each when first needed, shares its connection between concurrent callers, and
//! replaces a dead connection on the next call.
//!
//! As a **server**, kai offers its own tools (search, notes, memory, chat, which live in other
//! crates) to other agents: [`McpToolServer`] serves [`ServedTool`]s, data plus an async
//! function each, over stdio (`kai mcp`) or as a tower service that kai-server mounts at
//! `/mcp` behind its API-key check.
//!
//! Only this crate knows rmcp: what it hands out is kai's own types, apart from the HTTP
//! service, which is rmcp's tower service as it is.
//!
//! A misbehaving server is contained: one that cannot start, exits, closes its pipe, answers
//! nonsense or never answers is an [`McpError`] that names it and says what happened, within
//! the timeouts; it never panics the caller or leaves it waiting. A stdio server's process
//! group is killed when its client is dropped.

mod client;
mod config;
mod error;
mod process;
mod registry;
mod server;
mod tool;

pub use client::McpClient;
pub use config::{McpServerConfig, McpTransport};
pub use error::McpError;
pub use registry::McpServers;
pub use server::{
    AllowedHosts, McpHttpService, McpToolServer, McpToolServerBuilder, ServedTool, ToolFuture,
};
pub use tool::{McpCallResult, McpTool, McpToolAnnotations};
