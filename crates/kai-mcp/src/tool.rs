//! Tools as kai sees them: what a server offers, and what a call returned, free of rmcp's
//! types so that the crates above need not follow rmcp's releases.

use rmcp::model::{ContentBlock, ResourceContents, Tool, ToolAnnotations};
use serde_json::Value;

/// A tool an MCP server offers.
#[derive(Debug, Clone, PartialEq)]
pub struct McpTool {
    /// Its name on its server.
    pub name: String,
    /// A human-readable title, when the server gives one.
    pub title: Option<String>,
    /// What it does, for the model; empty when the server gives none.
    pub description: String,
    /// The JSON Schema of its arguments (an object schema).
    pub input_schema: Value,
    /// What the server says about its effects.
    pub annotations: McpToolAnnotations,
}

/// What a tool's server says about its effects: MCP's tool annotations, with MCP's defaults
/// where the server gave none. They are the server's claims, not guarantees; kai's consent
/// policy weighs them by how far the server is trusted.
///
/// `destructive_hint` and `idempotent_hint` mean something only when `read_only_hint` is
/// false.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct McpToolAnnotations {
    /// The tool changes nothing. MCP's default: false.
    pub read_only_hint: bool,
    /// Its changes may destroy or overwrite; false means it only adds. MCP's default: true.
    pub destructive_hint: bool,
    /// Calling it again with the same arguments changes nothing more. MCP's default: false.
    pub idempotent_hint: bool,
    /// It reaches entities outside the server (the web, other people). MCP's default: true.
    pub open_world_hint: bool,
}

impl Default for McpToolAnnotations {
    /// MCP's defaults: the most cautious reading of a tool that says nothing.
    fn default() -> McpToolAnnotations {
        McpToolAnnotations {
            read_only_hint: false,
            destructive_hint: true,
            idempotent_hint: false,
            open_world_hint: true,
        }
    }
}

impl McpToolAnnotations {
    /// A tool that only reads from a closed world (kai's own search, for instance).
    #[must_use]
    pub fn read_only() -> McpToolAnnotations {
        McpToolAnnotations {
            read_only_hint: true,
            destructive_hint: false,
            idempotent_hint: true,
            open_world_hint: false,
        }
    }

    /// The annotations as sent on the wire: every hint explicit, so that no client has to
    /// know the defaults.
    pub(crate) fn to_wire(self) -> ToolAnnotations {
        ToolAnnotations::new()
            .read_only(self.read_only_hint)
            .destructive(self.destructive_hint)
            .idempotent(self.idempotent_hint)
            .open_world(self.open_world_hint)
    }

    fn from_wire(wire: Option<&ToolAnnotations>) -> McpToolAnnotations {
        let defaults = McpToolAnnotations::default();
        let Some(wire) = wire else {
            return defaults;
        };
        McpToolAnnotations {
            read_only_hint: wire.read_only_hint.unwrap_or(defaults.read_only_hint),
            destructive_hint: wire.destructive_hint.unwrap_or(defaults.destructive_hint),
            idempotent_hint: wire.idempotent_hint.unwrap_or(defaults.idempotent_hint),
            open_world_hint: wire.open_world_hint.unwrap_or(defaults.open_world_hint),
        }
    }
}

impl From<Tool> for McpTool {
    fn from(tool: Tool) -> McpTool {
        let annotations = McpToolAnnotations::from_wire(tool.annotations.as_ref());
        // The annotations' title is the older place for it; prefer the tool's own.
        let title = tool
            .title
            .or_else(|| tool.annotations.and_then(|annotations| annotations.title));
        McpTool {
            name: tool.name.into_owned(),
            title,
            description: tool.description.map(|d| d.into_owned()).unwrap_or_default(),
            input_schema: Value::Object(std::sync::Arc::unwrap_or_clone(tool.input_schema)),
            annotations,
        }
    }
}

/// What a tool call returned, as text a model can read.
#[derive(Debug, Clone, PartialEq)]
pub struct McpCallResult {
    /// The text of its content blocks, one after another on separate lines; blocks that are
    /// not text are described in brackets (`[image: image/png, 1234 bytes]`). When the tool
    /// returned only structured content, its JSON.
    pub text: String,
    /// The tool itself reported failure: `text` says why, for the model to read.
    pub is_error: bool,
    /// The structured result, when the tool gave one.
    pub structured_content: Option<Value>,
}

impl McpCallResult {
    pub(crate) fn from_wire(result: rmcp::model::CallToolResult) -> McpCallResult {
        let mut parts: Vec<String> = result.content.iter().map(describe).collect();
        if parts.is_empty()
            && let Some(structured) = &result.structured_content
        {
            parts.push(structured.to_string());
        }
        McpCallResult {
            text: parts.join("\n"),
            is_error: result.is_error.unwrap_or(false),
            structured_content: result.structured_content,
        }
    }
}

/// One content block as text: text as it is, anything else named with its type and size so
/// that the model knows it is there without being fed base64.
fn describe(block: &ContentBlock) -> String {
    match block {
        ContentBlock::Text(text) => text.text.clone(),
        ContentBlock::Image(image) => format!(
            "[image: {}, {} bytes]",
            image.mime_type,
            base64_len(&image.data)
        ),
        ContentBlock::Audio(audio) => format!(
            "[audio: {}, {} bytes]",
            audio.mime_type,
            base64_len(&audio.data)
        ),
        ContentBlock::Resource(embedded) => match &embedded.resource {
            ResourceContents::TextResourceContents { uri, text, .. } => {
                format!("[resource: {uri}]\n{text}")
            }
            ResourceContents::BlobResourceContents {
                uri,
                mime_type,
                blob,
                ..
            } => format!(
                "[resource: {uri}, {}, {} bytes]",
                mime_type.as_deref().unwrap_or("binary"),
                base64_len(blob)
            ),
            other => format!("[resource: {}]", serde_json::json!(other)),
        },
        ContentBlock::ResourceLink(link) => {
            format!("[resource link: {} ({})]", link.uri, link.name)
        }
        // A kind of content newer than this code: say so rather than drop it silently.
        other => format!("[content: {}]", serde_json::json!(other)),
    }
}

/// The decoded size of base64 `data`, without decoding it: six bits per symbol.
fn base64_len(data: &str) -> usize {
    let symbols = data
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
        .count();
    symbols * 3 / 4
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rmcp::model::{CallToolResult, JsonObject};
    use serde_json::json;

    use super::*;

    #[test]
    fn absent_annotations_take_mcps_defaults() {
        let tool = Tool::new("t", "does things", Arc::new(JsonObject::new()));
        let tool = McpTool::from(tool);
        assert_eq!(tool.annotations, McpToolAnnotations::default());
        assert!(tool.annotations.destructive_hint && tool.annotations.open_world_hint);
        assert!(!tool.annotations.read_only_hint && !tool.annotations.idempotent_hint);

        let partial = Tool::new("t", "d", Arc::new(JsonObject::new()))
            .annotate(ToolAnnotations::new().read_only(true));
        let partial = McpTool::from(partial).annotations;
        assert!(partial.read_only_hint && partial.destructive_hint && partial.open_world_hint);
    }

    #[test]
    fn content_becomes_text() {
        let result: CallToolResult = serde_json::from_value(json!({
            "content": [
                {"type": "text", "text": "first"},
                {"type": "image", "data": "AAECAwQ=", "mimeType": "image/png"},
                {"type": "resource", "resource": {"uri": "file:///a", "text": "inside"}},
                {"type": "resource", "resource": {"uri": "file:///b", "blob": "AAAA", "mimeType": "application/gzip"}},
                {"type": "resource_link", "uri": "file:///c", "name": "c"}
            ],
            "isError": true
        }))
        .expect("a result");
        let result = McpCallResult::from_wire(result);
        assert!(result.is_error);
        assert_eq!(
            result.text,
            "first\n[image: image/png, 5 bytes]\n[resource: file:///a]\ninside\n\
             [resource: file:///b, application/gzip, 3 bytes]\n[resource link: file:///c (c)]"
        );
    }

    #[test]
    fn structured_only_result_is_its_json() {
        let result: CallToolResult =
            serde_json::from_value(json!({"content": [], "structuredContent": {"sum": 3}}))
                .expect("a result");
        let result = McpCallResult::from_wire(result);
        assert_eq!(result.text, r#"{"sum":3}"#);
        assert!(!result.is_error);
        assert_eq!(result.structured_content, Some(json!({"sum": 3})));
    }
}
