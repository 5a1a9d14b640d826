//! kai as an MCP server: tools given as data and async functions, served over stdio (`kai
//! mcp`) or as a streamable-HTTP service that kai-server mounts at `/mcp`. What the tools do
//! (search, notes, memory, chat) lives in the crates that own it; who may call them is decided
//! by kai-server's authentication in front of the HTTP service.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::{McpError, chain};
use crate::tool::{McpTool, McpToolAnnotations};

/// What a served tool's function returns: the text for the caller, or the text of a failure
/// the caller should see (sent as a tool result with `isError`, not a protocol error, so that
/// a model reads it).
pub type ToolFuture = BoxFuture<'static, Result<String, String>>;

type ToolFn = Arc<dyn Fn(Value) -> ToolFuture + Send + Sync>;

/// One tool kai serves: its description for the caller, and the function that runs it.
#[derive(Clone)]
pub struct ServedTool {
    name: String,
    description: String,
    input_schema: Value,
    annotations: McpToolAnnotations,
    run: ToolFn,
}

impl ServedTool {
    /// A tool named `name` whose arguments follow the JSON Schema `input_schema` (an object
    /// schema), run by `run` with the arguments as given (an empty object when there are
    /// none). `run` checks the arguments itself: the schema is advice to the caller. Its
    /// annotations start at MCP's cautious defaults; see [`ServedTool::annotations`].
    pub fn new<F, Fut>(
        name: impl Into<String>,
        description: impl Into<String>,
        input_schema: Value,
        run: F,
    ) -> ServedTool
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, String>> + Send + 'static,
    {
        ServedTool {
            name: name.into(),
            description: description.into(),
            input_schema,
            annotations: McpToolAnnotations::default(),
            run: Arc::new(move |arguments| run(arguments).boxed()),
        }
    }

    /// What the tool says about its effects, which the caller's consent policy reads.
    #[must_use]
    pub fn annotations(mut self, annotations: McpToolAnnotations) -> ServedTool {
        self.annotations = annotations;
        self
    }

    /// The tool as a client lists it.
    #[must_use]
    pub fn describe(&self) -> McpTool {
        McpTool {
            name: self.name.clone(),
            title: None,
            description: self.description.clone(),
            input_schema: self.input_schema.clone(),
            annotations: self.annotations,
        }
    }

    /// The tool as listed on the wire, once its name and schema are checked.
    fn to_wire(&self) -> Result<Tool, McpError> {
        let invalid = |why: &str| McpError::InvalidTool {
            tool: self.name.clone(),
            why: why.to_owned(),
        };
        // MCP's naming rule (2025-11-25): 1 to 128 of ASCII letters, digits, `_`, `-`, `.`.
        let name_ok = (1..=128).contains(&self.name.len())
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !name_ok {
            return Err(invalid(
                "a name is 1 to 128 ASCII letters, digits, `_`, `-` or `.`",
            ));
        }
        let schema = match &self.input_schema {
            Value::Object(schema) if schema.get("type") == Some(&Value::from("object")) => {
                schema.clone()
            }
            _ => {
                return Err(invalid(
                    "the input schema must be a JSON object with \"type\": \"object\"",
                ));
            }
        };
        Ok(Tool::new(
            self.name.clone(),
            self.description.clone(),
            Arc::new(schema),
        )
        .annotate(self.annotations.to_wire()))
    }
}

impl std::fmt::Debug for ServedTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedTool")
            .field("name", &self.name)
            .field("annotations", &self.annotations)
            .finish_non_exhaustive()
    }
}

/// Builds an [`McpToolServer`].
#[derive(Debug)]
pub struct McpToolServerBuilder {
    name: String,
    version: String,
    instructions: Option<String>,
    tools: Vec<ServedTool>,
}

impl McpToolServerBuilder {
    /// Text the client may give its model about using these tools together.
    #[must_use]
    pub fn instructions(mut self, instructions: impl Into<String>) -> McpToolServerBuilder {
        self.instructions = Some(instructions.into());
        self
    }

    /// Adds a tool; tools are listed in the order they were added.
    #[must_use]
    pub fn tool(mut self, tool: ServedTool) -> McpToolServerBuilder {
        self.tools.push(tool);
        self
    }

    /// The server, once every tool is checked: valid names, unique, object schemas.
    pub fn build(self) -> Result<McpToolServer, McpError> {
        let mut index = HashMap::new();
        let mut listed = Vec::with_capacity(self.tools.len());
        for (position, tool) in self.tools.iter().enumerate() {
            listed.push(tool.to_wire()?);
            if index.insert(tool.name.clone(), position).is_some() {
                return Err(McpError::InvalidTool {
                    tool: tool.name.clone(),
                    why: "two tools have this name".into(),
                });
            }
        }
        Ok(McpToolServer {
            inner: Arc::new(Inner {
                implementation: Implementation::new(self.name, self.version),
                instructions: self.instructions,
                tools: self.tools,
                listed,
                index,
            }),
        })
    }
}

/// Which `Host` headers the HTTP service answers: a check against DNS rebinding, by which a
/// web page in the owner's browser could reach a server bound to loopback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedHosts {
    /// `localhost`, `127.0.0.1` and `::1`, on any port: for a server bound to loopback.
    Loopback,
    /// Only these hosts, each `host` (any port) or `host:port`.
    Only(Vec<String>),
    /// Any host: for a server behind a proxy that checks `Host` itself.
    Any,
}

/// kai's MCP server: a fixed list of tools, served over stdio or streamable HTTP. Cheap to
/// clone; every clone serves the same tools.
#[derive(Clone)]
pub struct McpToolServer {
    inner: Arc<Inner>,
}

struct Inner {
    implementation: Implementation,
    instructions: Option<String>,
    tools: Vec<ServedTool>,
    /// The tools as listed, made once.
    listed: Vec<Tool>,
    index: HashMap<String, usize>,
}

/// The streamable-HTTP service of an [`McpToolServer`], a tower service that an axum router
/// mounts with `Router::nest_service("/mcp", service)`.
pub type McpHttpService = StreamableHttpService<McpToolServer, NeverSessionManager>;

impl McpToolServer {
    /// A server that names itself `name` and `version` to its clients.
    #[must_use]
    pub fn builder(name: impl Into<String>, version: impl Into<String>) -> McpToolServerBuilder {
        McpToolServerBuilder {
            name: name.into(),
            version: version.into(),
            instructions: None,
            tools: Vec::new(),
        }
    }

    /// Its tools, as clients see them.
    #[must_use]
    pub fn tools(&self) -> Vec<McpTool> {
        self.inner.tools.iter().map(ServedTool::describe).collect()
    }

    /// Serves one client on this process's standard input and output (`kai mcp`) until it
    /// closes its end. Nothing else may write to standard output meanwhile: logs go to stderr.
    pub async fn serve_stdio(&self) -> Result<(), McpError> {
        self.serve_on(rmcp::transport::stdio_pipes()).await
    }

    /// Serves one client over `reader` and `writer` (a pipe, a socket) until it closes its end.
    pub async fn serve_io<R, W>(&self, reader: R, writer: W) -> Result<(), McpError>
    where
        R: AsyncRead + Send + Unpin + 'static,
        W: AsyncWrite + Send + Unpin + 'static,
    {
        self.serve_on((reader, writer)).await
    }

    async fn serve_on<T, E, A>(&self, transport: T) -> Result<(), McpError>
    where
        T: rmcp::transport::IntoTransport<RoleServer, E, A>,
        E: std::error::Error + Send + Sync + 'static,
    {
        let running =
            self.clone().serve(transport).await.map_err(|err| {
                McpError::Serve(format!("the MCP handshake failed: {}", chain(&err)))
            })?;
        running
            .waiting()
            .await
            .map(drop)
            .map_err(|err| McpError::Serve(format!("the MCP session failed: {err}")))
    }

    /// The streamable-HTTP service, stateless: every POST carries one JSON-RPC message and
    /// is answered with plain JSON. No session lives on the server, so any of several kai
    /// processes can answer any request, and shutdown waits on no open stream; kai's tools
    /// send nothing unasked, which is all a session would add. Authentication is not done
    /// here: put kai-server's API-key middleware in front.
    #[must_use]
    pub fn http_service(&self, hosts: AllowedHosts) -> McpHttpService {
        let config = StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true)
            .with_sse_keep_alive(None);
        let config = match hosts {
            AllowedHosts::Loopback => config,
            AllowedHosts::Only(hosts) => config.with_allowed_hosts(hosts),
            AllowedHosts::Any => config.disable_allowed_hosts(),
        };
        let server = self.clone();
        StreamableHttpService::new(
            move || Ok(server.clone()),
            Arc::new(NeverSessionManager::default()),
            config,
        )
    }

    /// Runs `tool`, turning its failure, and a panic, into a tool error the caller sees. A
    /// panicking tool must not leave its caller waiting for an answer that never comes.
    async fn run(&self, tool: &ServedTool, arguments: Value) -> CallToolResult {
        let outcome = AssertUnwindSafe((tool.run)(arguments)).catch_unwind().await;
        match outcome {
            Ok(Ok(text)) => CallToolResult::success(vec![ContentBlock::text(text)]),
            Ok(Err(text)) => CallToolResult::error(vec![ContentBlock::text(text)]),
            Err(_) => {
                tracing::error!(tool = %tool.name, "MCP tool panicked");
                CallToolResult::error(vec![ContentBlock::text(format!(
                    "tool `{}` failed unexpectedly; the failure is in kai's log",
                    tool.name
                ))])
            }
        }
    }
}

impl std::fmt::Debug for McpToolServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpToolServer")
            .field("name", &self.inner.implementation.name)
            .field("tools", &self.inner.tools)
            .finish()
    }
}

impl ServerHandler for McpToolServer {
    fn get_info(&self) -> ServerConfig {
        let config = ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(self.inner.implementation.clone());
        match &self.inner.instructions {
            Some(instructions) => config.with_instructions(instructions.clone()),
            None => config,
        }
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.inner.listed.clone()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        let position = *self.inner.index.get(name)?;
        self.inner.listed.get(position).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let tool = self
            .inner
            .index
            .get(request.name.as_ref())
            .and_then(|&position| self.inner.tools.get(position))
            // MCP answers an unknown tool with a protocol error, invalid params.
            .ok_or_else(|| {
                ErrorData::invalid_params(format!("no tool named `{}`", request.name), None)
            })?;
        let arguments = Value::Object(request.arguments.unwrap_or_default());
        Ok(self.run(tool, arguments).await.into())
    }
}
