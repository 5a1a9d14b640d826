//! Hooks: plugins that watch a run, and may stop what it is about to do, without code in kai.
//! A hook is a webhook (kai POSTs each event it subscribes to as JSON) or a tool of an MCP
//! server (called with the event as its arguments). For the events that come before something
//! happens (`before_step`, `before_tool`) a hook marked `veto` may answer
//! `{"allow": false, "reason": "..."}` to stop it.
//!
//! A veto hook that cannot be reached, times out or answers nonsense vetoes ("fail closed"):
//! a guard that is down must not wave everything through. An observing hook's failures are
//! recorded in the run's timeline and otherwise ignored.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use kai_mcp::McpServers;

use crate::tools::Web;

/// The longest a hook may take to answer, unless it says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// When a hook is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookEvent {
    /// A step is about to begin (may be vetoed).
    BeforeStep,
    /// A step ended.
    AfterStep,
    /// A tool call is about to run, consent given (may be vetoed).
    BeforeTool,
    /// A tool call ran.
    AfterTool,
    /// The run ended.
    RunEnd,
}

impl HookEvent {
    /// Its name, as hooks receive it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            HookEvent::BeforeStep => "before_step",
            HookEvent::AfterStep => "after_step",
            HookEvent::BeforeTool => "before_tool",
            HookEvent::AfterTool => "after_tool",
            HookEvent::RunEnd => "run_end",
        }
    }

    /// Whether a hook may stop what the event announces.
    #[must_use]
    pub fn can_veto(self) -> bool {
        matches!(self, HookEvent::BeforeStep | HookEvent::BeforeTool)
    }
}

/// An MCP server's tool that a hook calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpHook {
    /// The server, one of `[[mcp_servers]]`.
    pub server: String,
    /// The tool, called with the event as its arguments.
    pub tool: String,
}

/// A hook in an agent's definition: a webhook or an MCP server's tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hook {
    /// The URL kai POSTs events to; reached like `http_request` (agents.http_allow applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// The MCP server's tool kai calls with each event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp: Option<McpHook>,
    /// The events it gets; all when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<HookEvent>,
    /// Whether its answer may stop a step or a tool call.
    #[serde(default)]
    pub veto: bool,
    /// How long it may take to answer, as `5s`; 10s when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

impl Hook {
    /// Checks what serde cannot.
    pub fn check(&self) -> Result<(), String> {
        match (&self.webhook, &self.mcp) {
            (Some(webhook), None) => {
                let url = reqwest::Url::parse(webhook)
                    .map_err(|err| format!("hook `{webhook}` is not a URL: {err}"))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(format!(
                        "hook `{webhook}` must be an http:// or https:// URL"
                    ));
                }
            }
            (None, Some(mcp)) if mcp.server.is_empty() || mcp.tool.is_empty() => {
                return Err("an MCP hook names its `server` and `tool`".into());
            }
            (None, Some(_)) => {}
            _ => return Err("a hook is a `webhook` or an `mcp` tool: give one of them".into()),
        }
        if let Some(timeout) = &self.timeout {
            let parsed = humantime::parse_duration(timeout)
                .map_err(|_| format!("hook timeout `{timeout}` is not a duration such as 5s"))?;
            if parsed.is_zero() || parsed > Duration::from_secs(120) {
                return Err(format!("hook timeout `{timeout}` must be from 1ms to 2m"));
            }
        }
        Ok(())
    }

    fn wants(&self, event: HookEvent) -> bool {
        self.events.is_empty() || self.events.contains(&event)
    }

    /// What it is, for records: the URL, or `mcp:SERVER/TOOL`.
    #[must_use]
    pub fn name(&self) -> String {
        match (&self.webhook, &self.mcp) {
            (Some(webhook), _) => webhook.clone(),
            (None, Some(mcp)) => format!("mcp:{}/{}", mcp.server, mcp.tool),
            (None, None) => String::new(),
        }
    }

    /// Tells it of an event; its answer, as JSON (an empty answer reads as `{}`).
    async fn send(&self, web: &Web, mcp: &McpServers, body: &Value) -> Result<Value, String> {
        let timeout = self.timeout();
        match (&self.webhook, &self.mcp) {
            (Some(url), _) => web.post_json(url, body, timeout).await,
            (None, Some(hook)) => {
                let result = mcp
                    .call(&hook.server, &hook.tool, body.clone(), Some(timeout))
                    .await
                    .map_err(|err| err.to_string())?;
                if result.is_error {
                    return Err(format!("the tool failed: {}", result.text));
                }
                if result.text.trim().is_empty() {
                    return Ok(Value::Object(serde_json::Map::new()));
                }
                serde_json::from_str(&result.text)
                    .map_err(|err| format!("its answer is not JSON: {err}"))
            }
            (None, None) => Err("the hook names neither a webhook nor an MCP tool".into()),
        }
    }

    fn timeout(&self) -> Duration {
        self.timeout
            .as_deref()
            .and_then(|t| humantime::parse_duration(t).ok())
            .unwrap_or(DEFAULT_TIMEOUT)
    }
}

/// What the hooks said about an event.
#[derive(Debug, Default)]
pub(crate) struct Verdict {
    /// The first veto, as `(hook, reason)`.
    pub(crate) veto: Option<(String, String)>,
    /// Hooks that failed without vetoing, as `(hook, why)`.
    pub(crate) failures: Vec<(String, String)>,
}

/// Calls every hook of `hooks` that wants `event`, in order, with `payload` (to which the event's
/// name is added). Stops at the first veto.
pub(crate) async fn call(
    web: &Web,
    mcp: &McpServers,
    hooks: &[Hook],
    event: HookEvent,
    payload: Value,
) -> Verdict {
    let mut verdict = Verdict::default();
    let mut body = payload;
    body["event"] = json!(event.as_str());
    for hook in hooks.iter().filter(|hook| hook.wants(event)) {
        let may_veto = hook.veto && event.can_veto();
        match hook.send(web, mcp, &body).await {
            Ok(answer) => {
                if !may_veto {
                    continue;
                }
                match answer.get("allow").and_then(Value::as_bool) {
                    Some(true) => {}
                    Some(false) => {
                        let reason = answer["reason"]
                            .as_str()
                            .unwrap_or("no reason given")
                            .to_owned();
                        verdict.veto = Some((hook.name(), reason));
                        return verdict;
                    }
                    None => {
                        verdict.veto = Some((
                            hook.name(),
                            "its answer has no `allow` (true or false), so it counts as a veto"
                                .into(),
                        ));
                        return verdict;
                    }
                }
            }
            Err(err) if may_veto => {
                verdict.veto = Some((
                    hook.name(),
                    format!("{err}; a veto hook that cannot answer vetoes"),
                ));
                return verdict;
            }
            Err(err) => verdict.failures.push((hook.name(), err)),
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_are_checked() {
        let hook = |json: Value| serde_json::from_value::<Hook>(json).unwrap();
        hook(json!({"webhook": "https://hooks.example/kai", "veto": true}))
            .check()
            .unwrap();
        for (json, expected) in [
            (json!({"webhook": "not a url"}), "not a URL"),
            (json!({"webhook": "ftp://x/"}), "http://"),
            (
                json!({"webhook": "http://x/", "timeout": "soon"}),
                "not a duration",
            ),
            (
                json!({"webhook": "http://x/", "timeout": "1h"}),
                "from 1ms to 2m",
            ),
        ] {
            let err = hook(json.clone()).check().unwrap_err();
            assert!(err.contains(expected), "{json}: {err}");
        }
        assert!(
            serde_json::from_value::<Hook>(json!({"webhook": "http://x/", "events": ["whenever"]}))
                .is_err()
        );
        assert!(HookEvent::BeforeTool.can_veto() && !HookEvent::AfterTool.can_veto());
    }
}
