//! The tools kai gives agents, what each does (its [`Effect`], which sets its default consent),
//! the JSON Schema of its arguments, and the checks every call passes before it runs.
//!
//! - `env`: what a call may reach, and how it fails.
//! - `files`: reading, writing and listing files inside the run's workspace.
//! - `http` and `web`: requests to the web, never to kai's own machine or network unless
//!   allowed.
//! - `knowledge`: the owner's knowledge search, notes and memory.
//! - `shell` and `sandbox`: command lines in the run's workspace, inside bubblewrap
//!   (kai-sandbox) only.
//!
//! `ask_user` is a tool to the model, but the executor answers it: it pauses the run until the
//! owner replies.

mod env;
mod files;
mod http;
mod knowledge;
mod sandbox;
mod shell;
mod web;

use serde_json::{Value, json};

pub use env::{ToolEnv, ToolError};
pub use sandbox::Shell;
pub use web::Web;

/// What a tool does, which sets the consent it needs by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Reads only.
    ReadOnly,
    /// Writes inside the run's workspace, or adds to the owner's knowledge (versioned, marked
    /// as the run's).
    Workspace,
    /// Reaches outside kai: runs programs, talks to the network.
    External,
    /// Deletes or overwrites what cannot be got back.
    Destructive,
}

/// A tool as the model and the consent policy see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// Its name.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// Its arguments, a JSON Schema object.
    pub parameters: Value,
    /// What it does, for consent.
    pub effect: Effect,
}

/// The name of the tool the executor answers by asking the owner.
pub const ASK_USER: &str = "ask_user";

/// What joins an MCP server's name and its tool's in the name agents see: `files__read_file`.
pub const MCP_SEPARATOR: &str = "__";

/// An MCP server's tool as agents see it: named `SERVER__TOOL`, its effect read from the
/// server's annotations (read-only is read-only; destructive is destructive; anything else
/// reaches outside), which set its default consent.
#[must_use]
pub fn mcp_spec(server: &str, tool: &kai_mcp::McpTool) -> ToolSpec {
    let effect = if tool.annotations.read_only_hint {
        Effect::ReadOnly
    } else if tool.annotations.destructive_hint {
        Effect::Destructive
    } else {
        Effect::External
    };
    let description = match (&tool.title, tool.description.is_empty()) {
        (_, false) => tool.description.clone(),
        (Some(title), true) => title.clone(),
        (None, true) => format!("`{}` of the MCP server `{server}`", tool.name),
    };
    ToolSpec {
        name: format!("{server}{MCP_SEPARATOR}{}", tool.name),
        description,
        parameters: tool.input_schema.clone(),
        effect,
    }
}

/// The name of the web tool, whose consent is asked per host.
pub const HTTP_REQUEST: &str = "http_request";

/// Every built-in tool's name.
pub const BUILTIN_NAMES: [&str; 10] = [
    "read_file",
    "write_file",
    "list_files",
    "shell",
    HTTP_REQUEST,
    "search_knowledge",
    "write_note",
    "remember",
    "recall",
    ASK_USER,
];

/// What consent for a call is asked and remembered for: the tool, except for HTTP requests,
/// which are asked about per host (`http_request:example.com`), so that approving one site
/// does not approve them all.
#[must_use]
pub fn consent_subject(tool: &str, arguments: &Value) -> String {
    match (tool, Web::host_of(arguments)) {
        (HTTP_REQUEST, Some(host)) => format!("{HTTP_REQUEST}:{host}"),
        _ => tool.to_owned(),
    }
}

/// A built-in tool's spec, by name.
#[must_use]
pub fn builtin_spec(name: &str) -> Option<ToolSpec> {
    let string = |description: &str| json!({"type": "string", "description": description});
    let object = |properties: Value, required: &[&str]| {
        json!({"type": "object", "properties": properties, "required": required,
               "additionalProperties": false})
    };
    Some(match name {
        "read_file" => ToolSpec {
            name: "read_file".into(),
            description: "Read a text file in the workspace.".into(),
            parameters: object(
                json!({"path": string("Path relative to the workspace.")}),
                &["path"],
            ),
            effect: Effect::ReadOnly,
        },
        "write_file" => ToolSpec {
            name: "write_file".into(),
            description: "Write a text file in the workspace, replacing it or appending to it."
                .into(),
            parameters: object(
                json!({
                    "path": string("Path relative to the workspace."),
                    "content": string("The text to write."),
                    "append": {"type": "boolean", "description": "Append instead of replacing."}
                }),
                &["path", "content"],
            ),
            effect: Effect::Workspace,
        },
        "list_files" => ToolSpec {
            name: "list_files".into(),
            description: "List the files under a directory of the workspace.".into(),
            parameters: object(
                json!({"path": string("Directory relative to the workspace; the workspace itself when left out.")}),
                &[],
            ),
            effect: Effect::ReadOnly,
        },
        "shell" => ToolSpec {
            name: "shell".into(),
            description: "Run a shell command line in the workspace, in a sandbox without \
                          network: a read-only system, the workspace writable, limited time, \
                          memory and output."
                .into(),
            parameters: object(
                json!({
                    "command": string("The command line, run by /bin/sh -c in the workspace."),
                    "stdin": string("Text given to the command on its standard input."),
                    "timeout_seconds": {"type": "integer", "description": "At most 120 (the default)."}
                }),
                &["command"],
            ),
            effect: Effect::External,
        },
        HTTP_REQUEST => ToolSpec {
            name: HTTP_REQUEST.into(),
            description: "Send an HTTP request to a public web address and read the answer.".into(),
            parameters: object(
                json!({
                    "url": string("The http:// or https:// URL."),
                    "method": string("GET (the default), HEAD, POST, PUT, PATCH or DELETE."),
                    "headers": {"type": "object", "description": "Request headers, name to value."},
                    "body": string("The request body.")
                }),
                &["url"],
            ),
            effect: Effect::External,
        },
        "search_knowledge" => ToolSpec {
            name: "search_knowledge".into(),
            description: "Search the user's documents and notes by keywords and meaning.".into(),
            parameters: object(
                json!({
                    "query": string("What to look for."),
                    "limit": {"type": "integer", "description": "How many passages, 1 to 20."}
                }),
                &["query"],
            ),
            effect: Effect::ReadOnly,
        },
        "write_note" => ToolSpec {
            name: "write_note".into(),
            description: "Write a new Markdown note into the user's knowledge.".into(),
            parameters: object(
                json!({
                    "title": string("The note's title."),
                    "body": string("The note's Markdown."),
                    "tags": {"type": "array", "items": {"type": "string"}}
                }),
                &["title", "body"],
            ),
            effect: Effect::Workspace,
        },
        "remember" => ToolSpec {
            name: "remember".into(),
            description: "Keep a fact about the user in their memory.".into(),
            parameters: object(
                json!({"fact": string("The fact, one sentence.")}),
                &["fact"],
            ),
            effect: Effect::Workspace,
        },
        "recall" => ToolSpec {
            name: "recall".into(),
            description: "Read what the user's memory holds.".into(),
            parameters: object(json!({}), &[]),
            effect: Effect::ReadOnly,
        },
        ASK_USER => ToolSpec {
            name: ASK_USER.into(),
            description: "Ask the user a question and wait for the answer.".into(),
            parameters: object(json!({"question": string("The question.")}), &["question"]),
            effect: Effect::ReadOnly,
        },
        _ => return None,
    })
}

/// Checks `arguments` against a spec's schema: an object, every required property present,
/// each known property of its type, no unknown ones.
pub fn check_arguments(spec: &ToolSpec, arguments: &Value) -> Result<(), ToolError> {
    let Some(given) = arguments.as_object() else {
        return Err(ToolError::Invalid(
            "the arguments must be a JSON object".into(),
        ));
    };
    let properties = spec.parameters["properties"].as_object();
    for required in spec.parameters["required"].as_array().into_iter().flatten() {
        if let Some(name) = required.as_str()
            && !given.contains_key(name)
        {
            return Err(ToolError::Invalid(format!("`{name}` is required")));
        }
    }
    for (name, value) in given {
        let Some(schema) = properties.and_then(|p| p.get(name)) else {
            return Err(ToolError::Invalid(format!(
                "`{}` takes no `{name}`; it takes {}",
                spec.name,
                properties
                    .map(|p| p
                        .keys()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", "))
                    .filter(|list| !list.is_empty())
                    .unwrap_or_else(|| "nothing".into())
            )));
        };
        let expected = schema["type"].as_str().unwrap_or("any");
        let fits = match expected {
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "array" => value.as_array().is_some_and(|items| {
                let item_type = schema["items"]["type"].as_str();
                items
                    .iter()
                    .all(|item| item_type != Some("string") || item.is_string())
            }),
            "object" => value.is_object(),
            _ => true,
        };
        if !fits {
            return Err(ToolError::Invalid(format!(
                "`{name}` must be a{} {expected}",
                if expected.starts_with(['a', 'e', 'i', 'o', 'u']) {
                    "n"
                } else {
                    ""
                }
            )));
        }
    }
    Ok(())
}

/// Runs tool `name` (a built-in one other than `ask_user`, which the executor answers, or an
/// MCP server's `SERVER__TOOL`) with checked `arguments`; the result is text for the model.
pub async fn call(env: &ToolEnv, name: &str, arguments: &Value) -> Result<String, ToolError> {
    match name {
        "read_file" => files::read(&env.workspace, arguments).await,
        "write_file" => files::write(&env.workspace, arguments).await,
        "list_files" => files::list(&env.workspace, arguments).await,
        HTTP_REQUEST => http::request(env, arguments).await,
        "shell" => shell::run(env, arguments).await,
        "search_knowledge" => knowledge::search(env, arguments).await,
        "write_note" => knowledge::write_note(env, arguments).await,
        "remember" => knowledge::remember(env, arguments).await,
        "recall" => knowledge::recall(env).await,
        other => match other.split_once(MCP_SEPARATOR) {
            Some((server, tool)) => mcp(env, server, tool, arguments).await,
            None => Err(ToolError::Failed(format!("there is no tool `{other}`"))),
        },
    }
}

/// Calls `tool` on the MCP server `server`. A call whose connection broke or timed out may
/// have run: that is [`ToolError::Unknown`], for the executor to ask about.
async fn mcp(
    env: &ToolEnv,
    server: &str,
    tool: &str,
    arguments: &Value,
) -> Result<String, ToolError> {
    match env.mcp.call(server, tool, arguments.clone(), None).await {
        Ok(result) if result.is_error => Err(ToolError::Failed(result.text)),
        Ok(result) => Ok(result.text),
        Err(err) if err.outcome_unknown() => Err(ToolError::Unknown(err.to_string())),
        Err(err) => Err(ToolError::Failed(err.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_has_a_spec_that_names_it() {
        for name in BUILTIN_NAMES {
            let spec = builtin_spec(name).unwrap();
            assert_eq!(spec.name, name);
            assert_eq!(spec.parameters["type"], "object");
        }
        assert!(builtin_spec("format_disk").is_none());
    }

    #[test]
    fn arguments_are_checked_against_the_schema() {
        let spec = builtin_spec("write_file").unwrap();
        check_arguments(&spec, &json!({"path": "a.txt", "content": "hi"})).unwrap();
        for (arguments, expected) in [
            (json!("a.txt"), "JSON object"),
            (json!({"path": "a.txt"}), "`content` is required"),
            (
                json!({"path": 3, "content": "x"}),
                "`path` must be a string",
            ),
            (
                json!({"path": "a", "content": "x", "append": "yes"}),
                "`append` must be a boolean",
            ),
            (
                json!({"path": "a", "content": "x", "mode": 7}),
                "takes no `mode`",
            ),
        ] {
            let err = check_arguments(&spec, &arguments).unwrap_err().to_string();
            assert!(err.contains(expected), "{arguments}: {err}");
        }
    }
}
