//! What can go wrong talking to an MCP server, or serving one.

use std::time::Duration;

use thiserror::Error;

/// Why an MCP operation failed. Every message names the server and says what happened in
/// words an owner can act on; none carries a configured header or variable value.
///
/// A tool that ran and failed is not an error here: it is an
/// [`McpCallResult`](crate::McpCallResult) with `is_error` set, which the model should see.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum McpError {
    /// The configuration cannot work; nothing was started.
    #[error("MCP server `{server}`: {why}")]
    InvalidConfig {
        /// The server's configured name.
        server: String,
        /// What to fix.
        why: String,
    },
    /// The server could not be started or reached, or failed during its start.
    #[error("MCP server `{server}` could not be started: {why}")]
    Start {
        /// The server's configured name.
        server: String,
        /// What happened, with the end of its stderr where there is one.
        why: String,
    },
    /// The server did not finish starting (handshake and tool list) in time; it was stopped.
    #[error("MCP server `{server}` did not finish starting within {}{detail}", humantime::format_duration(*timeout))]
    StartTimeout {
        /// The server's configured name.
        server: String,
        /// Its start-up limit.
        timeout: Duration,
        /// The end of its stderr, where there is one, as `; …`.
        detail: String,
    },
    /// No answer in time. The server may still carry the request out: a tool call that timed
    /// out has an unknown outcome.
    #[error("MCP server `{server}` did not answer {what} within {}", humantime::format_duration(*timeout))]
    Timeout {
        /// The server's configured name.
        server: String,
        /// The request, such as "the call of tool `echo`".
        what: String,
        /// The limit that ran out.
        timeout: Duration,
    },
    /// The connection is gone: the process exited or closed its output, or the HTTP transport
    /// closed. The client is dead; connect again (the registry does so on the next call).
    #[error("MCP server `{server}` {why}")]
    Disconnected {
        /// The server's configured name.
        server: String,
        /// What happened and during which request, such as "exited (exit status: 1) during
        /// the call of tool `x`", with the end of its stderr.
        why: String,
    },
    /// The client was already dead when asked, so nothing was sent; connect again.
    #[error("MCP server `{server}` is not connected, so nothing was sent: it {why}")]
    Dead {
        /// The server's configured name.
        server: String,
        /// How it ended.
        why: String,
    },
    /// The server answered with a protocol error: an unknown tool, arguments it refused, or a
    /// failure of its own.
    #[error("MCP server `{server}` refused {what}: {message}")]
    Rejected {
        /// The server's configured name.
        server: String,
        /// The request, such as "the call of tool `echo`".
        what: String,
        /// The server's message and JSON-RPC error code.
        message: String,
    },
    /// The request could not be delivered (an HTTP error, an unreachable host); the server may
    /// be back for the next request.
    #[error("MCP server `{server}`: {what} failed: {why}")]
    Transport {
        /// The server's configured name.
        server: String,
        /// The request, such as "the call of tool `echo`".
        what: String,
        /// Why, from the transport.
        why: String,
    },
    /// A tool's arguments were not a JSON object, which MCP requires.
    #[error(
        "the arguments of tool `{tool}` of MCP server `{server}` must be a JSON object, not {found}"
    )]
    InvalidArguments {
        /// The server's configured name.
        server: String,
        /// The tool.
        tool: String,
        /// The JSON type given instead.
        found: &'static str,
    },
    /// The registry has no server of that name.
    #[error("no MCP server named `{0}` is configured")]
    UnknownServer(String),
    /// Two servers given to the registry share a name.
    #[error("two MCP servers are named `{0}`; names must be unique")]
    DuplicateServer(String),
    /// A tool offered by kai's own server is not valid.
    #[error("MCP tool `{tool}`: {why}")]
    InvalidTool {
        /// The tool's name.
        tool: String,
        /// What to fix.
        why: String,
    },
    /// Serving MCP (kai's own server) failed.
    #[error("serving MCP failed: {0}")]
    Serve(String),
}

impl McpError {
    /// The configured name of the server this error is about, if it is about one.
    #[must_use]
    pub fn server(&self) -> Option<&str> {
        match self {
            McpError::InvalidConfig { server, .. }
            | McpError::Start { server, .. }
            | McpError::StartTimeout { server, .. }
            | McpError::Timeout { server, .. }
            | McpError::Disconnected { server, .. }
            | McpError::Dead { server, .. }
            | McpError::Rejected { server, .. }
            | McpError::Transport { server, .. }
            | McpError::InvalidArguments { server, .. } => Some(server),
            McpError::UnknownServer(server) | McpError::DuplicateServer(server) => Some(server),
            McpError::InvalidTool { .. } | McpError::Serve(_) => None,
        }
    }

    /// Whether the request may have reached the server before it failed, so that its effects
    /// are unknown: a caller must not repeat such a tool call blindly.
    #[must_use]
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            McpError::Timeout { .. } | McpError::Disconnected { .. } | McpError::Transport { .. }
        )
    }
}

/// An error and its sources as one line, as `outer: inner: innermost`; transports wrap their
/// causes several layers deep and the innermost is usually the useful one.
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
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
