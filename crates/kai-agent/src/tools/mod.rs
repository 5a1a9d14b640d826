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
    pub name: &'static str,
    /// What it does, for the model.
    pub description: &'static str,
    /// Its arguments, a JSON Schema object.
    pub parameters: Value,
    /// What it does, for consent.
    pub effect: Effect,
}

/// The name of the tool the executor answers by asking the owner.
pub const ASK_USER: &str = "ask_user";

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
            name: "read_file",
            description: "Read a text file in the workspace.",
            parameters: object(
                json!({"path": string("Path relative to the workspace.")}),
                &["path"],
            ),
            effect: Effect::ReadOnly,
        },
        "write_file" => ToolSpec {
            name: "write_file",
            description: "Write a text file in the workspace, replacing it or appending to it.",
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
            name: "list_files",
            description: "List the files under a directory of the workspace.",
            parameters: object(
                json!({"path": string("Directory relative to the workspace; the workspace itself when left out.")}),
                &[],
            ),
            effect: Effect::ReadOnly,
        },
        "shell" => ToolSpec {
            name: "shell",
            description: "Run a shell command line in the workspace, in a sandbox without \
                          network: a read-only system, the workspace writable, limited time, \
                          memory and output.",
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
            name: HTTP_REQUEST,
            description: "Send an HTTP request to a public web address and read the answer.",
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
            name: "search_knowledge",
            description: "Search the user's documents and notes by keywords and meaning.",
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
            name: "write_note",
            description: "Write a new Markdown note into the user's knowledge.",
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
            name: "remember",
            description: "Keep a fact about the user in their memory.",
            parameters: object(
                json!({"fact": string("The fact, one sentence.")}),
                &["fact"],
            ),
            effect: Effect::Workspace,
        },
        "recall" => ToolSpec {
            name: "recall",
            description: "Read what the user's memory holds.",
            parameters: object(json!({}), &[]),
            effect: Effect::ReadOnly,
        },
        ASK_USER => ToolSpec {
            name: ASK_USER,
            description: "Ask the user a question and wait for the answer.",
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

/// Runs built-in tool `name` (not `ask_user`, which the executor answers) with checked
/// `arguments`; the result is text for the model.
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
        other => Err(ToolError::Failed(format!("there is no tool `{other}`"))),
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
