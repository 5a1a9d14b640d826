//! The two toy tools kai's MCP server offers in the tests: one that reads, one that can fail.

use kai_mcp::{McpToolAnnotations, ServedTool};
use serde_json::{Value, json};

/// `add`: the sum of two numbers. Read-only, so its annotations say so.
pub(crate) fn add() -> ServedTool {
    ServedTool::new(
        "add",
        "Adds two numbers.",
        json!({
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"]
        }),
        |arguments: Value| async move {
            let number = |key: &str| {
                arguments[key]
                    .as_f64()
                    .ok_or_else(|| format!("`{key}` must be a number"))
            };
            Ok(format!("{}", number("a")? + number("b")?))
        },
    )
    .annotations(McpToolAnnotations::read_only())
}

/// `shout`: its text in capitals; a tool error (not a protocol error) when the text is empty.
pub(crate) fn shout() -> ServedTool {
    ServedTool::new(
        "shout",
        "Repeats a text in capitals.",
        json!({
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"]
        }),
        |arguments: Value| async move {
            match arguments["text"].as_str() {
                Some("") | None => Err("there is nothing to shout".to_owned()),
                Some(text) => Ok(text.to_uppercase()),
            }
        },
    )
    .annotations(McpToolAnnotations {
        read_only_hint: false,
        destructive_hint: false,
        idempotent_hint: true,
        open_world_hint: false,
    })
}
