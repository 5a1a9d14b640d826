//! What an agent is: its instructions, model, tools, consent policy, knowledge and limits, as
//! stored (JSON) and checked once when written.

use std::collections::BTreeMap;
use std::time::Duration;

use kai_core::CollectionId;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::consent::Policy;
use crate::hooks::Hook;
use crate::tools;

/// The longest instructions accepted, in characters.
const MAX_INSTRUCTIONS_CHARS: usize = 32_000;

/// An agent's definition, as stored and as the API takes it (its name aside).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentDefinition {
    /// What it is for, for people.
    #[serde(default)]
    pub description: String,
    /// Its instructions, a prompt template (minijinja) rendered at the start of each run.
    /// Either these or `prompt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// A stored prompt template for its instructions: `NAME` (its newest version) or
    /// `NAME@VERSION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Values for the template's declared variables.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub variables: Map<String, Value>,
    /// The model it thinks with: any the gateway serves; `agents.default_model` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The tools it may use, by name.
    #[serde(default)]
    pub tools: Vec<String>,
    /// The MCP servers (configured as `[[mcp_servers]]`) whose tools it may use, each tool as
    /// `SERVER__TOOL`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mcp_servers: Vec<String>,
    /// Per tool, whether calls are allowed, asked about, or refused; tools not named here get
    /// the default for what they do.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub consent: BTreeMap<String, Policy>,
    /// The ids of the knowledge collections its knowledge search is limited to; all when
    /// empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collections: Vec<String>,
    /// Whether it may read and keep its owner's memory.
    #[serde(default)]
    pub memory: bool,
    /// How its model is asked to call tools.
    #[serde(default)]
    pub tool_calling: ToolCalling,
    /// What one run may spend.
    #[serde(default)]
    pub limits: Limits,
    /// Webhooks told of its steps, tool calls and end, which may veto steps and calls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<Hook>,
}

/// How the model is asked to call tools.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolCalling {
    /// Native tool calls, except for local models, which are prompted.
    #[default]
    Auto,
    /// The provider's tool calling.
    Native,
    /// Tools described in the prompt, calls answered as JSON: for models without tool calling.
    Prompted,
}

/// What one run may spend before it stops as failed (or, for money, asks).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Steps of the plan, re-plans included.
    pub max_steps: u32,
    /// Model calls, planning included.
    pub max_model_calls: u32,
    /// Tool calls.
    pub max_tool_calls: u32,
    /// Tokens, prompt and answer, over all model calls.
    pub max_tokens: u64,
    /// Time spent running (waiting for the owner does not count), as `30m`, `2h`.
    #[serde(with = "humantime_serde_compat")]
    pub max_duration: Duration,
    /// Once its model calls have cost this many dollars (by the gateway's prices), the run
    /// asks its owner before going on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask_after_usd: Option<f64>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_steps: 12,
            max_model_calls: 60,
            max_tool_calls: 100,
            max_tokens: 500_000,
            max_duration: Duration::from_secs(30 * 60),
            ask_after_usd: None,
        }
    }
}

/// `Duration` as humantime text (`30m`), the way kai's configuration writes durations.
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(*value).to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map_err(|err| {
            serde::de::Error::custom(format!(
                "`{text}` is not a duration such as 30m or 2h: {err}"
            ))
        })
    }
}

impl AgentDefinition {
    /// Checks what serde cannot: one source of instructions, known tools, a consent policy
    /// only for tools it has, limits that allow a run at all. The error says what to fix.
    pub fn check(&self) -> Result<(), String> {
        match (&self.instructions, &self.prompt) {
            (Some(_), Some(_)) => {
                return Err("give `instructions` or `prompt`, not both".into());
            }
            (None, None) => {
                return Err(
                    "give the agent `instructions` (a prompt template) or a stored `prompt`".into(),
                );
            }
            (Some(text), None) if text.chars().count() > MAX_INSTRUCTIONS_CHARS => {
                return Err(format!(
                    "instructions are at most {MAX_INSTRUCTIONS_CHARS} characters"
                ));
            }
            _ => {}
        }
        if let Some(model) = &self.model
            && model.trim().is_empty()
        {
            return Err(
                "`model` is empty: name a model the gateway serves, or leave it out".into(),
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for tool in &self.tools {
            if !seen.insert(tool.as_str()) {
                return Err(format!("tool `{tool}` is listed twice"));
            }
            if tools::builtin_spec(tool).is_none() {
                return Err(format!(
                    "there is no tool `{tool}`; the tools are {}",
                    tools::BUILTIN_NAMES.join(", ")
                ));
            }
        }
        for collection in &self.collections {
            if collection.parse::<CollectionId>().is_err() {
                return Err(format!("collection `{collection}` is not a collection id"));
            }
        }
        for memory_tool in ["remember", "recall"] {
            if self.tools.iter().any(|t| t == memory_tool) && !self.memory {
                return Err(format!(
                    "tool `{memory_tool}` reads or keeps the owner's memory: set `memory` to true"
                ));
            }
        }
        for server in &self.mcp_servers {
            if self.mcp_servers.iter().filter(|s| *s == server).count() > 1 {
                return Err(format!("MCP server `{server}` is listed twice"));
            }
        }
        for tool in self.consent.keys() {
            let from_server = tool
                .split_once(tools::MCP_SEPARATOR)
                .is_some_and(|(server, _)| self.mcp_servers.iter().any(|s| s == server));
            if !self.tools.contains(tool) && !from_server {
                return Err(format!(
                    "the consent policy names `{tool}`, which is not among the agent's tools"
                ));
            }
        }
        if self.hooks.len() > 8 {
            return Err("an agent has at most 8 hooks".into());
        }
        for hook in &self.hooks {
            hook.check()?;
        }
        let limits = &self.limits;
        if limits.max_steps == 0 || limits.max_steps > 100 {
            return Err("limits.max_steps must be from 1 to 100".into());
        }
        if limits.max_model_calls == 0 {
            return Err("limits.max_model_calls must be at least 1".into());
        }
        if limits.max_tokens == 0 {
            return Err("limits.max_tokens must be at least 1".into());
        }
        if limits.max_duration < Duration::from_secs(1) {
            return Err("limits.max_duration must be at least 1s".into());
        }
        if let Some(usd) = limits.ask_after_usd
            && !(usd.is_finite() && usd > 0.0)
        {
            return Err("limits.ask_after_usd must be a positive number of dollars".into());
        }
        Ok(())
    }

    /// The model to use, given the configured default.
    #[must_use]
    pub fn model_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.model.as_deref().unwrap_or(default)
    }

    /// The collections its knowledge search is limited to.
    #[must_use]
    pub fn collection_ids(&self) -> Vec<CollectionId> {
        self.collections
            .iter()
            .filter_map(|c| c.parse().ok())
            .collect()
    }

    /// Whether tool calls are prompted rather than native, for `model`.
    #[must_use]
    pub fn prompted_tools(&self, model: &str) -> bool {
        match self.tool_calling {
            ToolCalling::Native => false,
            ToolCalling::Prompted => true,
            ToolCalling::Auto => model.starts_with(kai_gateway::LOCAL_MODEL_PREFIX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<AgentDefinition, String> {
        let definition: AgentDefinition =
            serde_json::from_str(json).map_err(|err| err.to_string())?;
        definition.check()?;
        Ok(definition)
    }

    #[test]
    fn a_small_definition_gets_defaults() {
        let definition = parse(r#"{"instructions": "Be brief.", "tools": ["read_file"]}"#).unwrap();
        assert_eq!(definition.limits, Limits::default());
        assert_eq!(definition.model_or("local/smollm2"), "local/smollm2");
        assert!(definition.prompted_tools("local/smollm2"));
        assert!(!definition.prompted_tools("openai/gpt-4o"));
    }

    #[test]
    fn mistakes_are_named() {
        for (json, expected) in [
            (r#"{"tools": []}"#, "instructions"),
            (r#"{"instructions": "x", "prompt": "p"}"#, "not both"),
            (
                r#"{"instructions": "x", "tools": ["rm_rf"]}"#,
                "no tool `rm_rf`",
            ),
            (
                r#"{"instructions": "x", "tools": ["read_file", "read_file"]}"#,
                "twice",
            ),
            (
                r#"{"instructions": "x", "consent": {"shell": "allow"}}"#,
                "not among the agent's tools",
            ),
            (
                r#"{"instructions": "x", "limits": {"max_steps": 0}}"#,
                "max_steps",
            ),
            (
                r#"{"instructions": "x", "limits": {"max_duration": "soon"}}"#,
                "not a duration",
            ),
            (
                r#"{"instructions": "x", "colour": "red"}"#,
                "unknown field `colour`",
            ),
            (
                r#"{"instructions": "x", "consent": {"shell": "maybe"}}"#,
                "unknown variant `maybe`",
            ),
        ] {
            let err = parse(json).unwrap_err();
            assert!(err.contains(expected), "{json}: {err}");
        }
    }
}
