//! How to reach one MCP server: the settings a user writes as an `[[mcp_servers]]` table.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::McpError;

/// Headers the streamable-HTTP transport sets itself; a configured value would break the
/// session or the stream, so configuring one is refused.
const RESERVED_HEADERS: [&str; 4] = ["accept", "content-type", "mcp-session-id", "last-event-id"];

/// One MCP server a user configured, as kai's configuration file holds it:
///
/// ```toml
/// [[mcp_servers]]
/// name = "files"
/// transport = "stdio"
/// command = "npx"
/// args = ["-y", "@modelcontextprotocol/server-filesystem", "/home/me/notes"]
/// env = { LOG_LEVEL = "warn" }
/// startup_timeout = "30s"
/// call_timeout = "1m"
///
/// [[mcp_servers]]
/// name = "search"
/// transport = "http"
/// url = "https://mcp.example.com/mcp"
/// headers = { X-Team = "home" }
/// ```
///
/// It is plain data, checked by [`McpServerConfig::check`] (which
/// [`McpClient::connect`](crate::McpClient::connect) calls), so that a configuration loader can
/// hold it without knowing MCP. `Debug` shows the names of `env` and `headers` but never their
/// values, which often carry tokens.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ServerTable", into = "ServerTable")]
pub struct McpServerConfig {
    /// What kai and its agents call the server: unique among the configured servers, and the
    /// prefix agents see its tools under.
    pub name: String,
    /// How to start or reach it.
    pub transport: McpTransport,
    /// How long starting it may take, from spawning the process (or the first request) to the
    /// list of its tools; `npx` fetching a package on first use needs tens of seconds.
    pub startup_timeout: Duration,
    /// How long one tool call may take unless the caller gives its own limit.
    pub call_timeout: Duration,
}

/// How an MCP server is reached: the two transports of the MCP specification.
#[derive(Clone, PartialEq, Eq)]
pub enum McpTransport {
    /// A child process speaking JSON-RPC on its standard input and output.
    Stdio {
        /// The program: a path, or a name looked up on `PATH`.
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Variables set for it. It inherits only `HOME`, `LOGNAME`, `PATH`, `SHELL`, `TERM`
        /// and `USER` from kai (as the reference clients do), so kai's own secrets never reach
        /// a third-party server; anything else it needs goes here.
        env: BTreeMap<String, String>,
        /// Its working directory; kai's when absent.
        cwd: Option<PathBuf>,
    },
    /// A server at a URL speaking MCP's streamable HTTP.
    Http {
        /// The MCP endpoint, such as `https://example.com/mcp`.
        url: String,
        /// Extra headers on every request, such as `Authorization`.
        headers: BTreeMap<String, String>,
    },
}

impl McpServerConfig {
    /// Start-up limit when none is configured: enough for `npx` to fetch a small package.
    pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
    /// Call limit when none is configured.
    pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);

    /// A server started as `command args…`, with the default timeouts.
    #[must_use]
    pub fn stdio(
        name: impl Into<String>,
        command: impl Into<String>,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> McpServerConfig {
        McpServerConfig {
            name: name.into(),
            transport: McpTransport::Stdio {
                command: command.into(),
                args: args.into_iter().map(Into::into).collect(),
                env: BTreeMap::new(),
                cwd: None,
            },
            startup_timeout: Self::DEFAULT_STARTUP_TIMEOUT,
            call_timeout: Self::DEFAULT_CALL_TIMEOUT,
        }
    }

    /// A server at `url` over streamable HTTP, with the default timeouts.
    #[must_use]
    pub fn http(name: impl Into<String>, url: impl Into<String>) -> McpServerConfig {
        McpServerConfig {
            name: name.into(),
            transport: McpTransport::Http {
                url: url.into(),
                headers: BTreeMap::new(),
            },
            startup_timeout: Self::DEFAULT_STARTUP_TIMEOUT,
            call_timeout: Self::DEFAULT_CALL_TIMEOUT,
        }
    }

    /// Checks what can be checked without starting the server, so that a mistake is reported
    /// with the setting to fix rather than as a failure to connect.
    pub fn check(&self) -> Result<(), McpError> {
        let invalid = |why: String| McpError::InvalidConfig {
            server: self.name.clone(),
            why,
        };
        if self.name.trim().is_empty() {
            return Err(invalid("`name` is empty".into()));
        }
        if self.name.chars().any(char::is_control) {
            return Err(invalid("`name` contains control characters".into()));
        }
        if self.startup_timeout.is_zero() {
            return Err(invalid("`startup_timeout` must be more than zero".into()));
        }
        if self.call_timeout.is_zero() {
            return Err(invalid("`call_timeout` must be more than zero".into()));
        }
        match &self.transport {
            McpTransport::Stdio {
                command, env, cwd, ..
            } => {
                if command.trim().is_empty() {
                    return Err(invalid("`command` is empty".into()));
                }
                if let Some(name) = env
                    .keys()
                    .find(|name| name.is_empty() || name.contains(['=', '\0']))
                {
                    return Err(invalid(format!(
                        "`env` has an invalid variable name {name:?} (empty, or with `=` or NUL)"
                    )));
                }
                if let Some(cwd) = cwd
                    && !cwd.is_dir()
                {
                    return Err(invalid(format!(
                        "`cwd` {} is not a directory",
                        cwd.display()
                    )));
                }
            }
            McpTransport::Http { url, headers } => {
                let parsed = reqwest::Url::parse(url)
                    .map_err(|err| invalid(format!("`url` {url:?} is not a URL: {err}")))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(invalid(format!(
                        "`url` must be http:// or https://, not {}://",
                        parsed.scheme()
                    )));
                }
                header_map(headers).map_err(invalid)?;
            }
        }
        Ok(())
    }
}

/// The configured headers as a header map, or what is wrong with one (by name, never value).
pub(crate) fn header_map(
    headers: &BTreeMap<String, String>,
) -> Result<reqwest::header::HeaderMap, String> {
    use reqwest::header::{HeaderName, HeaderValue};
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value) in headers {
        let parsed = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("`headers` has an invalid header name {name:?}"))?;
        if RESERVED_HEADERS.contains(&parsed.as_str()) {
            return Err(format!(
                "`headers` may not set {name}: the MCP transport sets it itself"
            ));
        }
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| format!("`headers` has an invalid value for {name}"))?;
        value.set_sensitive(true);
        map.insert(parsed, value);
    }
    Ok(map)
}

impl fmt::Debug for McpServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpServerConfig")
            .field("name", &self.name)
            .field("transport", &self.transport)
            .field("startup_timeout", &self.startup_timeout)
            .field("call_timeout", &self.call_timeout)
            .finish()
    }
}

impl fmt::Debug for McpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            McpTransport::Stdio {
                command,
                args,
                env,
                cwd,
            } => f
                .debug_struct("Stdio")
                .field("command", command)
                .field("args", args)
                .field("env", &env.keys().collect::<Vec<_>>())
                .field("cwd", cwd)
                .finish(),
            McpTransport::Http { url, headers } => f
                .debug_struct("Http")
                .field("url", url)
                .field("headers", &headers.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// The table as written: one flat table whose `transport` says which other keys belong. Serde's
/// internally tagged enums cannot refuse unknown keys, so this is read first and then sorted,
/// which lets a key of the other transport be named in the error.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerTable {
    name: String,
    transport: TransportKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    command: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    args: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cwd: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
    #[serde(default = "default_startup_timeout", with = "duration")]
    startup_timeout: Duration,
    #[serde(default = "default_call_timeout", with = "duration")]
    call_timeout: Duration,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TransportKind {
    Stdio,
    Http,
}

fn default_startup_timeout() -> Duration {
    McpServerConfig::DEFAULT_STARTUP_TIMEOUT
}

fn default_call_timeout() -> Duration {
    McpServerConfig::DEFAULT_CALL_TIMEOUT
}

impl TryFrom<ServerTable> for McpServerConfig {
    type Error = String;

    fn try_from(table: ServerTable) -> Result<McpServerConfig, String> {
        let misplaced = |key: &str, kind: &str| {
            format!(
                "MCP server `{}`: `{key}` is not a setting of a {kind} server",
                table.name
            )
        };
        let transport = match table.transport {
            TransportKind::Stdio => {
                if table.url.is_some() {
                    return Err(misplaced("url", "stdio"));
                }
                if !table.headers.is_empty() {
                    return Err(misplaced("headers", "stdio"));
                }
                McpTransport::Stdio {
                    command: table.command.ok_or_else(|| {
                        format!(
                            "MCP server `{}`: a stdio server needs `command`",
                            table.name
                        )
                    })?,
                    args: table.args,
                    env: table.env,
                    cwd: table.cwd,
                }
            }
            TransportKind::Http => {
                for (key, set) in [
                    ("command", table.command.is_some()),
                    ("args", !table.args.is_empty()),
                    ("env", !table.env.is_empty()),
                    ("cwd", table.cwd.is_some()),
                ] {
                    if set {
                        return Err(misplaced(key, "http"));
                    }
                }
                McpTransport::Http {
                    url: table.url.ok_or_else(|| {
                        format!("MCP server `{}`: an http server needs `url`", table.name)
                    })?,
                    headers: table.headers,
                }
            }
        };
        Ok(McpServerConfig {
            name: table.name,
            transport,
            startup_timeout: table.startup_timeout,
            call_timeout: table.call_timeout,
        })
    }
}

impl From<McpServerConfig> for ServerTable {
    fn from(config: McpServerConfig) -> ServerTable {
        let mut table = ServerTable {
            name: config.name,
            transport: TransportKind::Stdio,
            command: None,
            args: Vec::new(),
            env: BTreeMap::new(),
            cwd: None,
            url: None,
            headers: BTreeMap::new(),
            startup_timeout: config.startup_timeout,
            call_timeout: config.call_timeout,
        };
        match config.transport {
            McpTransport::Stdio {
                command,
                args,
                env,
                cwd,
            } => {
                table.command = Some(command);
                table.args = args;
                table.env = env;
                table.cwd = cwd;
            }
            McpTransport::Http { url, headers } => {
                table.transport = TransportKind::Http;
                table.url = Some(url);
                table.headers = headers;
            }
        }
        table
    }
}

/// Durations as people write them (`30s`, `2m`, `1m 30s`), as in the rest of kai's settings.
mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*value))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|err| {
            serde::de::Error::custom(format!(
                "{text:?} is not a duration such as \"30s\" or \"2m\": {err}"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdio_table_with_defaults() {
        let config: McpServerConfig = toml::from_str(
            r#"
            name = "files"
            transport = "stdio"
            command = "npx"
            args = ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]
            env = { TOKEN = "s3cret" }
            "#,
        )
        .expect("parses");
        assert_eq!(config.name, "files");
        assert_eq!(
            config.startup_timeout,
            McpServerConfig::DEFAULT_STARTUP_TIMEOUT
        );
        let McpTransport::Stdio { command, args, .. } = &config.transport else {
            panic!("not stdio: {config:?}");
        };
        assert_eq!(command, "npx");
        assert_eq!(args.len(), 3);
        assert!(config.check().is_ok());
        let shown = format!("{config:?}");
        assert!(
            shown.contains("TOKEN") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    #[test]
    fn http_table_round_trips() {
        let text = r#"
            name = "remote"
            transport = "http"
            url = "https://example.com/mcp"
            headers = { Authorization = "Bearer abc" }
            startup_timeout = "5s"
            call_timeout = "1m 30s"
        "#;
        let config: McpServerConfig = toml::from_str(text).expect("parses");
        assert_eq!(config.call_timeout, Duration::from_secs(90));
        assert!(config.check().is_ok());
        assert!(!format!("{config:?}").contains("Bearer"));
        let again: McpServerConfig =
            toml::from_str(&toml::to_string(&config).expect("serialises")).expect("parses");
        assert_eq!(again, config);
    }

    #[test]
    fn mistakes_name_the_setting() {
        let misplaced = toml::from_str::<McpServerConfig>(
            "name = \"x\"\ntransport = \"stdio\"\ncommand = \"a\"\nurl = \"http://x\"\n",
        )
        .expect_err("url on stdio");
        assert!(
            misplaced
                .to_string()
                .contains("`url` is not a setting of a stdio server"),
            "{misplaced}"
        );
        let unknown = toml::from_str::<McpServerConfig>(
            "name = \"x\"\ntransport = \"stdio\"\ncommand = \"a\"\ncmd = \"b\"\n",
        )
        .expect_err("unknown key");
        assert!(unknown.to_string().contains("cmd"), "{unknown}");
        let missing = toml::from_str::<McpServerConfig>("name = \"x\"\ntransport = \"http\"\n")
            .expect_err("no url");
        assert!(missing.to_string().contains("needs `url`"), "{missing}");
        let bad_duration = toml::from_str::<McpServerConfig>(
            "name = \"x\"\ntransport = \"stdio\"\ncommand = \"a\"\ncall_timeout = \"soon\"\n",
        )
        .expect_err("not a duration");
        assert!(
            bad_duration.to_string().contains("not a duration"),
            "{bad_duration}"
        );

        let mut config = McpServerConfig::http("web", "ftp://example.com");
        let err = config.check().expect_err("not http");
        assert!(err.to_string().contains("http:// or https://"), "{err}");
        config = McpServerConfig::http("web", "http://example.com/mcp");
        let McpTransport::Http { headers, .. } = &mut config.transport else {
            unreachable!("made as http")
        };
        headers.insert("Mcp-Session-Id".into(), "1".into());
        let err = config.check().expect_err("reserved");
        assert!(err.to_string().contains("sets it itself"), "{err}");

        let config = McpServerConfig::stdio("", "cat", Vec::<String>::new());
        assert!(config.check().is_err());
        let mut config = McpServerConfig::stdio("cat", "cat", Vec::<String>::new());
        config.call_timeout = Duration::ZERO;
        assert!(
            config
                .check()
                .expect_err("zero")
                .to_string()
                .contains("call_timeout")
        );
    }
}
