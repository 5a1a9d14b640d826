//! One connection to one MCP server, over stdio or streamable HTTP.

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, ClientConfig, ClientRequest, Implementation, PingRequest, Tool,
};
use rmcp::service::{ClientInitializeError, NotificationContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::{
    StreamableHttpClientTransportConfig, StreamableHttpError,
};
use rmcp::{ClientHandler, RoleClient, ServiceError, ServiceExt};
use serde_json::Value;

use crate::config::{McpServerConfig, McpTransport, header_map};
use crate::error::{McpError, chain};
use crate::process::{Ending, Launch, ServerProcess, Spawned};
use crate::tool::{McpCallResult, McpTool};

/// How long an ending connection may take to say how it ended (exit status, last stderr).
const DESCRIBE_WAIT: Duration = Duration::from_millis(500);
/// How long a server whose call timed out has to answer a ping before it counts as hung.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `close` gives the session and then the process to end by themselves.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// The longest wait for a TCP connection to an HTTP server, within its start-up limit.
const HTTP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A live connection to one MCP server: its tools, and calls to them.
///
/// Calls take `&self` and run concurrently over the one connection. Nothing here waits past
/// a timeout: starting is bounded by the server's `startup_timeout`, each call by its own.
/// When the connection ends (the process exits or closes its output, the HTTP transport
/// closes, or a server whose call timed out then ignores a ping), the client is dead:
/// [`McpClient::is_alive`] says so, and calls fail at once with [`McpError::Dead`] until the
/// caller connects again ([`McpServers`](crate::McpServers) does that on the next call).
///
/// A stdio server's process, and every process it started, is killed when the client is
/// dropped; [`McpClient::close`] first gives it a moment to exit by itself.
pub struct McpClient {
    // Dropped before `process`: the session ends, then the process is killed.
    service: RunningService<RoleClient, Handler>,
    process: Option<Arc<ServerProcess>>,
    shared: Arc<Shared>,
    call_timeout: Duration,
}

/// What the connection's notification handler and the client share.
struct Shared {
    server: String,
    tools: RwLock<Vec<McpTool>>,
    /// How the connection ended, once it has; then every call fails with it.
    ended: Mutex<Option<Ending>>,
    /// The limit on re-listing tools when the server says they changed.
    list_timeout: Duration,
}

impl Shared {
    /// Records how the connection ended, unless it already has; returns the first ending.
    fn end(&self, ending: Ending) -> Ending {
        let mut ended = self.ended.lock().unwrap_or_else(PoisonError::into_inner);
        ended
            .get_or_insert_with(|| {
                tracing::warn!(
                    server = %self.server,
                    how = %ending.how,
                    stderr = %ending.stderr,
                    "MCP server connection ended"
                );
                ending
            })
            .clone()
    }

    fn ended(&self) -> Option<Ending> {
        self.ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// kai's side of the session: who it is, and keeping the tool list current when the server
/// says it changed. It offers no sampling, roots or elicitation.
#[derive(Clone)]
struct Handler {
    shared: Arc<Shared>,
}

impl ClientHandler for Handler {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            Default::default(),
            Implementation::new("kai", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn on_tool_list_changed(&self, context: NotificationContext<RoleClient>) {
        let listed =
            tokio::time::timeout(self.shared.list_timeout, context.peer.list_all_tools()).await;
        match listed {
            Ok(Ok(tools)) => {
                *self
                    .shared
                    .tools
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = convert(tools);
            }
            Ok(Err(err)) => tracing::warn!(
                server = %self.shared.server,
                error = %chain(&err),
                "MCP server said its tools changed but would not list them"
            ),
            Err(_) => tracing::warn!(
                server = %self.shared.server,
                "MCP server said its tools changed but did not list them in time"
            ),
        }
    }
}

fn convert(tools: Vec<Tool>) -> Vec<McpTool> {
    tools.into_iter().map(McpTool::from).collect()
}

impl McpClient {
    /// Starts (stdio) or reaches (HTTP) the server, completes MCP's handshake and lists its
    /// tools, all within the configuration's `startup_timeout`. A server that cannot be
    /// started, exits, or answers nonsense in that time is an error that says which and, for
    /// stdio, quotes the end of its stderr.
    pub async fn connect(config: &McpServerConfig) -> Result<McpClient, McpError> {
        config.check()?;
        let shared = Arc::new(Shared {
            server: config.name.clone(),
            tools: RwLock::new(Vec::new()),
            ended: Mutex::new(None),
            list_timeout: config.call_timeout,
        });
        let handler = Handler {
            shared: Arc::clone(&shared),
        };
        let started = std::time::Instant::now();
        let client = match &config.transport {
            McpTransport::Stdio {
                command,
                args,
                env,
                cwd,
            } => {
                let launch = Launch {
                    server: &config.name,
                    command,
                    args,
                    env,
                    cwd: cwd.as_ref(),
                };
                connect_stdio(config, &launch, handler, shared).await?
            }
            McpTransport::Http { url, headers } => {
                let headers = header_map(headers).map_err(|why| McpError::InvalidConfig {
                    server: config.name.clone(),
                    why,
                })?;
                connect_http(config, url, headers, handler, shared).await?
            }
        };
        tracing::debug!(
            server = %config.name,
            tools = client.tools().len(),
            elapsed_ms = started.elapsed().as_millis(),
            "MCP server connected"
        );
        Ok(client)
    }

    /// The server's configured name.
    #[must_use]
    pub fn server(&self) -> &str {
        &self.shared.server
    }

    /// Its tools, as last listed: at connection, and again whenever the server announces a
    /// change.
    #[must_use]
    pub fn tools(&self) -> Vec<McpTool> {
        self.shared
            .tools
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Lists its tools again, within the call timeout, and keeps the answer for
    /// [`McpClient::tools`].
    pub async fn refresh_tools(&self) -> Result<Vec<McpTool>, McpError> {
        let what = "the list of its tools";
        self.check_alive()?;
        let listed = tokio::time::timeout(self.call_timeout, self.service.peer().list_all_tools())
            .await
            .map_err(|_| self.timed_out(what, self.call_timeout))?
            .map(convert);
        let tools = match listed {
            Ok(tools) => tools,
            Err(err) => return Err(self.service_error(err, what).await),
        };
        *self
            .shared
            .tools
            .write()
            .unwrap_or_else(PoisonError::into_inner) = tools.clone();
        Ok(tools)
    }

    /// Calls `tool` with `arguments` (a JSON object, or null for none), waiting at most
    /// `timeout` (the configured `call_timeout` when `None`). A tool that ran and failed is
    /// `Ok` with `is_error` set; an `Err` is the connection's or the protocol's failure, and
    /// [`McpError::outcome_unknown`] says whether the tool may have run anyway.
    pub async fn call(
        &self,
        tool: &str,
        arguments: Value,
        timeout: Option<Duration>,
    ) -> Result<McpCallResult, McpError> {
        let arguments = match arguments {
            Value::Object(arguments) => Some(arguments),
            Value::Null => None,
            other => {
                return Err(McpError::InvalidArguments {
                    server: self.shared.server.clone(),
                    tool: tool.to_owned(),
                    found: json_type(&other),
                });
            }
        };
        self.check_alive()?;
        let mut params = CallToolRequestParams::new(tool.to_owned());
        if let Some(arguments) = arguments {
            params = params.with_arguments(arguments);
        }
        let what = format!("the call of tool `{tool}`");
        let timeout = timeout.unwrap_or(self.call_timeout);
        // Dropping the call on timeout makes rmcp send the server a cancellation.
        match tokio::time::timeout(timeout, self.service.peer().call_tool(params)).await {
            Ok(Ok(result)) => Ok(McpCallResult::from_wire(result)),
            Ok(Err(err)) => Err(self.service_error(err, &what).await),
            Err(_) => Err(self.timed_out(&what, timeout)),
        }
    }

    /// Whether the connection still stands. A dead client never comes back: connect again.
    #[must_use]
    pub fn is_alive(&self) -> bool {
        self.check_alive().is_ok()
    }

    /// Ends the session, gives a stdio server a moment to exit by itself (its stdin closed,
    /// as MCP's shutdown asks), then kills whatever is left. Dropping the client kills at once.
    pub async fn close(mut self) {
        // A session that will not end in time is dropped, which cancels it.
        let _ = self.service.close_with_timeout(CLOSE_GRACE).await;
        if let Some(process) = &self.process {
            process.stop(CLOSE_GRACE).await;
        }
    }

    /// `Ok` while the connection stands; otherwise the [`McpError::Dead`] every call gets.
    fn check_alive(&self) -> Result<(), McpError> {
        let ended = self.shared.ended().or_else(|| {
            let process = self.process.as_ref();
            if let Some((status, process)) =
                process.and_then(|process| Some((process.exit_status()?, process)))
            {
                Some(self.shared.end(Ending {
                    how: format!("exited ({status})"),
                    stderr: process.stderr_detail(),
                }))
            } else if self.service.is_closed() || self.service.peer().is_transport_closed() {
                let gone = self.transport_gone();
                // A process is reaped a moment after its pipe closes: leave the ending for
                // the exit status to fill in, rather than fix "closed its output" for good.
                Some(match self.process {
                    Some(_) => gone,
                    None => self.shared.end(gone),
                })
            } else {
                None
            }
        });
        match ended {
            None => Ok(()),
            Some(ending) => Err(McpError::Dead {
                server: self.shared.server.clone(),
                why: format!("{}{}", ending.how, ending.stderr),
            }),
        }
    }

    /// How the connection ended when the transport has closed and no exit status is known.
    fn transport_gone(&self) -> Ending {
        match &self.process {
            Some(process) => Ending {
                how: "closed its output".to_owned(),
                stderr: process.stderr_detail(),
            },
            None => Ending::new("closed the connection"),
        }
    }

    /// The error for a request that got no answer in time. The server may merely be slow, or
    /// hung: a ping tells which, in the background, and a hung server is marked dead (and a
    /// stdio one killed) so that the next call starts a fresh one.
    fn timed_out(&self, what: &str, timeout: Duration) -> McpError {
        let peer = self.service.peer().clone();
        let shared = Arc::clone(&self.shared);
        let process = self.process.clone();
        tokio::spawn(async move {
            let ping = ClientRequest::PingRequest(PingRequest::default());
            let answered = tokio::time::timeout(PROBE_TIMEOUT, peer.send_request(ping)).await;
            let why = match answered {
                // An answer, even an error, shows it alive; a closed transport is found and
                // described (exit status and all) by the next request.
                Ok(Ok(_) | Err(ServiceError::McpError(_) | ServiceError::TransportClosed)) => {
                    return;
                }
                Ok(Err(err)) => format!("a ping failed: {}", chain(&err)),
                Err(_) => format!(
                    "a ping got no answer within {}",
                    humantime::format_duration(PROBE_TIMEOUT)
                ),
            };
            shared.end(Ending::new(format!(
                "stopped answering (a request timed out, then {why})"
            )));
            if let Some(process) = process {
                process.kill();
            }
        });
        McpError::Timeout {
            server: self.shared.server.clone(),
            what: what.to_owned(),
            timeout,
        }
    }

    /// Turns rmcp's error for `what` into kai's, finding out how the connection ended when
    /// that is the cause.
    async fn service_error(&self, err: ServiceError, what: &str) -> McpError {
        let server = self.shared.server.clone();
        match err {
            ServiceError::McpError(data) => McpError::Rejected {
                server,
                what: what.to_owned(),
                message: format!("{} (JSON-RPC error {})", data.message, data.code.0),
            },
            ServiceError::Timeout { timeout } => self.timed_out(what, timeout),
            ServiceError::TransportClosed => McpError::Disconnected {
                server,
                why: self.connection_ended(what).await,
            },
            // Over stdio, a failed write means the pipe is gone with the process; over HTTP it
            // is one request's failure, and the server may answer the next.
            ServiceError::TransportSend(err) if self.process.is_some() => {
                tracing::debug!(server = %server, error = %chain(&err), "MCP write failed");
                McpError::Disconnected {
                    server,
                    why: self.connection_ended(what).await,
                }
            }
            // Over HTTP the session may be lost with it (a restarted server forgets its
            // sessions, and some answer a stale one in a way rmcp cannot match to the request,
            // leaving the call to time out), so the next request starts a new session.
            ServiceError::TransportSend(err) => {
                let why = transport_failure(err.error.as_ref());
                self.shared
                    .end(Ending::new(format!("could not be reached ({why})")));
                McpError::Transport {
                    server,
                    what: what.to_owned(),
                    why,
                }
            }
            other => McpError::Transport {
                server,
                what: what.to_owned(),
                why: chain(&other),
            },
        }
    }

    /// Marks the connection ended and says how, and during `what`: the process's exit and
    /// last stderr for stdio. Kills what is left of the process.
    async fn connection_ended(&self, what: &str) -> String {
        let ending = match (self.shared.ended(), &self.process) {
            (Some(ending), _) => ending,
            (None, Some(process)) => {
                let ending = process.describe_end(DESCRIBE_WAIT).await;
                process.kill();
                self.shared.end(ending)
            }
            (None, None) => self.shared.end(self.transport_gone()),
        };
        format!("{} during {what}{}", ending.how, ending.stderr)
    }
}

impl std::fmt::Debug for McpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpClient")
            .field("server", &self.shared.server)
            .field("alive", &self.is_alive())
            .finish_non_exhaustive()
    }
}

/// Why starting failed, before the process (if any) has been asked how it ended.
enum StartFailure {
    /// The handshake failed or the connection closed.
    Handshake(String),
    /// Listing the tools failed.
    Listing(ServiceError),
}

/// Runs MCP's handshake over `transport` and lists the server's tools.
async fn start<T, E, A>(
    handler: Handler,
    transport: T,
) -> Result<(RunningService<RoleClient, Handler>, Vec<Tool>), StartFailure>
where
    T: rmcp::transport::IntoTransport<RoleClient, E, A>,
    E: std::error::Error + Send + Sync + 'static,
{
    let service = handler
        .serve(transport)
        .await
        .map_err(|err| StartFailure::Handshake(init_error(&err)))?;
    let tools = service
        .peer()
        .list_all_tools()
        .await
        .map_err(StartFailure::Listing)?;
    Ok((service, tools))
}

async fn connect_stdio(
    config: &McpServerConfig,
    launch: &Launch<'_>,
    handler: Handler,
    shared: Arc<Shared>,
) -> Result<McpClient, McpError> {
    let server = config.name.clone();
    let Spawned {
        process,
        stdout,
        stdin,
    } = ServerProcess::spawn(launch).map_err(|err| McpError::Start {
        server: server.clone(),
        why: spawn_failure(launch.command, &err),
    })?;
    let started = tokio::time::timeout(config.startup_timeout, start(handler, (stdout, stdin)));
    match started.await {
        Ok(Ok((service, tools))) => {
            *shared.tools.write().unwrap_or_else(PoisonError::into_inner) = convert(tools);
            Ok(McpClient {
                service,
                process: Some(Arc::new(process)),
                shared,
                call_timeout: config.call_timeout,
            })
        }
        Ok(Err(failure)) => {
            // A server that exited explains itself better (its status, its stderr) than the
            // protocol error its exit caused.
            let ending = process.describe_end(DESCRIBE_WAIT).await;
            let why = if process.exit_status().is_some() {
                let stage = match failure {
                    StartFailure::Handshake(_) => "the MCP handshake",
                    StartFailure::Listing(_) => "listing its tools",
                };
                format!("it {} during {stage}{}", ending.how, ending.stderr)
            } else {
                format!("{}{}", failure_text(failure), ending.stderr)
            };
            process.kill();
            Err(McpError::Start { server, why })
        }
        Err(_) => {
            process.kill();
            Err(McpError::StartTimeout {
                server,
                timeout: config.startup_timeout,
                detail: process.stderr_detail(),
            })
        }
    }
}

async fn connect_http(
    config: &McpServerConfig,
    url: &str,
    headers: reqwest::header::HeaderMap,
    handler: Handler,
    shared: Arc<Shared>,
) -> Result<McpClient, McpError> {
    let server = config.name.clone();
    install_tls_provider();
    // No overall request timeout: a response may be a long-lived event stream. Each call has
    // its own limit instead.
    let http = reqwest::Client::builder()
        .connect_timeout(config.startup_timeout.min(HTTP_CONNECT_TIMEOUT))
        .default_headers(headers)
        .user_agent(concat!("kai/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|err| McpError::Start {
            server: server.clone(),
            why: format!("cannot build an HTTP client: {}", chain(&err)),
        })?;
    let transport = StreamableHttpClientTransport::with_client(
        http,
        StreamableHttpClientTransportConfig::with_uri(url),
    );
    match tokio::time::timeout(config.startup_timeout, start(handler, transport)).await {
        Ok(Ok((service, tools))) => {
            *shared.tools.write().unwrap_or_else(PoisonError::into_inner) = convert(tools);
            Ok(McpClient {
                service,
                process: None,
                shared,
                call_timeout: config.call_timeout,
            })
        }
        Ok(Err(failure)) => Err(McpError::Start {
            server,
            why: format!("{url}: {}", failure_text(failure)),
        }),
        Err(_) => Err(McpError::StartTimeout {
            server,
            timeout: config.startup_timeout,
            detail: format!(" ({url})"),
        }),
    }
}

/// A failed handshake in words. rmcp's message for a transport failure names the transport's
/// Rust type and hides the cause (not linked as its source), so that case is taken apart.
fn init_error(err: &ClientInitializeError) -> String {
    match err {
        ClientInitializeError::TransportError { error, context } => {
            format!(
                "{} (while trying to {context})",
                transport_failure(error.error.as_ref())
            )
        }
        ClientInitializeError::ConnectionClosed(waiting_for) => {
            format!("the connection closed while kai waited for the {waiting_for}")
        }
        other => chain(other),
    }
}

/// A transport failure in words. rmcp wraps the HTTP client's error without linking it as the
/// source, which would lose the cause (connection refused, a certificate refused).
fn transport_failure(err: &(dyn std::error::Error + Send + Sync + 'static)) -> String {
    match err.downcast_ref::<StreamableHttpError<reqwest::Error>>() {
        Some(StreamableHttpError::Client(inner)) => chain(inner),
        _ => chain(err),
    }
}

fn failure_text(failure: StartFailure) -> String {
    match failure {
        StartFailure::Handshake(why) => format!("the MCP handshake failed: {why}"),
        StartFailure::Listing(ServiceError::McpError(data)) => format!(
            "listing its tools was refused: {} (JSON-RPC error {})",
            data.message, data.code.0
        ),
        StartFailure::Listing(ServiceError::TransportSend(err)) => format!(
            "listing its tools failed: {}",
            transport_failure(err.error.as_ref())
        ),
        StartFailure::Listing(err) => format!("listing its tools failed: {}", chain(&err)),
    }
}

/// Why a command could not be run, with what to check.
fn spawn_failure(command: &str, err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => format!(
            "cannot run `{command}`: no such program (is it installed, and on the PATH kai was \
             started with?)"
        ),
        std::io::ErrorKind::PermissionDenied => {
            format!("cannot run `{command}`: permission denied (is it executable?)")
        }
        _ => format!("cannot run `{command}`: {err}"),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Installs rustls's ring crypto provider for the process, once: the workspace builds reqwest
/// without a default provider (see the root manifest).
fn install_tls_provider() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        // Fails only when another part of the process installed one first, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
