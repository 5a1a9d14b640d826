//! The configured MCP servers of one process, each connected when first needed and shared by
//! every agent that calls it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Mutex;

use crate::client::McpClient;
use crate::config::McpServerConfig;
use crate::error::McpError;
use crate::tool::{McpCallResult, McpTool};

/// The MCP servers a process may use, by name. A server is connected on first use; its one
/// connection carries every caller's calls at once; a connection found dead is replaced by a
/// new one before the next request. A request that failed is never sent again here: a tool
/// call whose connection broke may have run, and only its caller can decide to repeat it.
pub struct McpServers {
    servers: BTreeMap<String, Slot>,
}

struct Slot {
    config: McpServerConfig,
    /// The current connection. Held while connecting, so that callers arriving meanwhile
    /// wait for that connection instead of starting their own.
    client: Mutex<Option<Arc<McpClient>>>,
}

impl McpServers {
    /// The servers of `configs`, each checked; none is started yet.
    pub fn new(configs: impl IntoIterator<Item = McpServerConfig>) -> Result<McpServers, McpError> {
        let mut servers = BTreeMap::new();
        for config in configs {
            config.check()?;
            let name = config.name.clone();
            let slot = Slot {
                config,
                client: Mutex::new(None),
            };
            if servers.insert(name.clone(), slot).is_some() {
                return Err(McpError::DuplicateServer(name));
            }
        }
        Ok(McpServers { servers })
    }

    /// The configured servers, by name.
    pub fn configs(&self) -> impl Iterator<Item = &McpServerConfig> {
        self.servers.values().map(|slot| &slot.config)
    }

    /// The live connection to `server`: the current one, or a new one when there is none yet
    /// or the current one has died.
    pub async fn client(&self, server: &str) -> Result<Arc<McpClient>, McpError> {
        let slot = self
            .servers
            .get(server)
            .ok_or_else(|| McpError::UnknownServer(server.to_owned()))?;
        let mut current = slot.client.lock().await;
        if let Some(client) = current.as_ref()
            && client.is_alive()
        {
            return Ok(Arc::clone(client));
        }
        if current.take().is_some() {
            tracing::info!(server, "reconnecting to MCP server");
        }
        let client = Arc::new(McpClient::connect(&slot.config).await?);
        *current = Some(Arc::clone(&client));
        Ok(client)
    }

    /// The tools of `server`, connecting to it if need be.
    pub async fn tools(&self, server: &str) -> Result<Vec<McpTool>, McpError> {
        Ok(self.client(server).await?.tools())
    }

    /// Calls `tool` of `server`; see [`McpClient::call`]. Waiting for a connection counts
    /// against the server's start-up limit, not against `timeout`.
    pub async fn call(
        &self,
        server: &str,
        tool: &str,
        arguments: Value,
        timeout: Option<Duration>,
    ) -> Result<McpCallResult, McpError> {
        self.client(server)
            .await?
            .call(tool, arguments, timeout)
            .await
    }

    /// Closes every connection, giving each server a moment to exit by itself. Calls still
    /// holding a connection keep it until they finish; dropping it then kills the server.
    pub async fn close(&self) {
        for slot in self.servers.values() {
            let client = slot.client.lock().await.take();
            if let Some(client) = client.and_then(|client| Arc::try_unwrap(client).ok()) {
                client.close().await;
            }
        }
    }
}

impl std::fmt::Debug for McpServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServers")
            .field("servers", &self.servers.keys().collect::<Vec<_>>())
            .finish()
    }
}
