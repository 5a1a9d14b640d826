//! `/mcp`: kai as an MCP server over streamable HTTP, for other agents. The caller's API key
//! (or access token) decides whose knowledge, notes and memory the tools reach, and its scopes
//! which tools there are: reading needs `read`; writing a note, keeping a memory and chatting
//! (which spends on models) need `write`. The server is stateless (each POST answered with
//! JSON), so it is built per request for the caller.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use kai_core::{Scope, UserId};
use kai_gateway::Caller;
use kai_knowledge::{MemorySource, NoteInput, SearchMode, SearchQuery};
use kai_mcp::{AllowedHosts, McpToolAnnotations, McpToolServer, ServedTool};
use kai_models::chat::{ChatRequest, Message, Role};
use kai_store::ItemFilter;
use serde_json::{Value, json};
use tower::ServiceExt;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::Auth;
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(mcp))
}

fn text_arg(arguments: &Value, name: &str) -> Result<String, String> {
    arguments[name]
        .as_str()
        .map(str::to_owned)
        .filter(|text| !text.trim().is_empty())
        .ok_or_else(|| format!("`{name}` must be a non-empty string"))
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required})
}

/// The tools this caller may use.
fn tools(state: &AppState, owner: UserId, request_id: String, write: bool) -> Vec<ServedTool> {
    let mut tools = Vec::new();
    let knowledge = state.knowledge.clone();
    tools.push(
        ServedTool::new(
            "search_knowledge",
            "Search the user's documents and notes in kai by keywords and meaning.",
            object(
                json!({"query": {"type": "string"}, "limit": {"type": "integer", "minimum": 1, "maximum": 20}}),
                &["query"],
            ),
            move |arguments: Value| {
                let knowledge = knowledge.clone();
                async move {
                    let query = text_arg(&arguments, "query")?;
                    let limit = arguments["limit"].as_u64().unwrap_or(5).clamp(1, 20);
                    let found = knowledge
                        .search(
                            owner,
                            &SearchQuery {
                                text: query,
                                mode: SearchMode::Hybrid,
                                filter: ItemFilter::default(),
                                limit: usize::try_from(limit).unwrap_or(5),
                                fusion: None,
                            },
                        )
                        .await
                        .map_err(|err| err.to_string())?;
                    let hits: Vec<Value> = found
                        .hits
                        .iter()
                        .map(|hit| {
                            json!({"title": hit.title, "kind": hit.item_kind, "id": hit.item_id,
                                   "version": hit.version, "text": hit.text})
                        })
                        .collect();
                    Ok(Value::Array(hits).to_string())
                }
            },
        )
        .annotations(McpToolAnnotations::read_only()),
    );
    let knowledge = state.knowledge.clone();
    tools.push(
        ServedTool::new(
            "read_note",
            "Read one of the user's notes in kai, by its title.",
            object(json!({"title": {"type": "string"}}), &["title"]),
            move |arguments: Value| {
                let knowledge = knowledge.clone();
                async move {
                    let title = text_arg(&arguments, "title")?;
                    let view = knowledge
                        .note_titled(owner, &title)
                        .await
                        .map_err(|err| err.to_string())?;
                    Ok(format!("# {}\n\n{}", view.note.title, view.note.body))
                }
            },
        )
        .annotations(McpToolAnnotations::read_only()),
    );
    let knowledge = state.knowledge.clone();
    tools.push(
        ServedTool::new(
            "recall",
            "Read what the user's memory in kai holds (needs kai's vault unlocked).",
            object(json!({}), &[]),
            move |_: Value| {
                let knowledge = knowledge.clone();
                async move {
                    let entries = knowledge
                        .memories(owner, false, None)
                        .await
                        .map_err(|err| err.to_string())?;
                    Ok(entries
                        .iter()
                        .map(|entry| format!("- {}", entry.text))
                        .collect::<Vec<_>>()
                        .join("\n"))
                }
            },
        )
        .annotations(McpToolAnnotations::read_only()),
    );
    if !write {
        return tools;
    }
    let knowledge = state.knowledge.clone();
    tools.push(ServedTool::new(
        "write_note",
        "Write a new Markdown note into the user's knowledge in kai.",
        object(
            json!({"title": {"type": "string"}, "body": {"type": "string"},
                   "tags": {"type": "array", "items": {"type": "string"}}}),
            &["title", "body"],
        ),
        move |arguments: Value| {
            let knowledge = knowledge.clone();
            async move {
                let view = knowledge
                    .create_note(
                        owner,
                        NoteInput {
                            title: text_arg(&arguments, "title")?,
                            body: arguments["body"].as_str().unwrap_or_default().to_owned(),
                            tags: arguments["tags"]
                                .as_array()
                                .map(|tags| {
                                    tags.iter()
                                        .filter_map(Value::as_str)
                                        .map(str::to_owned)
                                        .collect()
                                })
                                .unwrap_or_default(),
                            created_by: format!("user:{owner}"),
                            ..NoteInput::default()
                        },
                    )
                    .await
                    .map_err(|err| err.to_string())?;
                Ok(format!(
                    "wrote note `{}` ({})",
                    view.note.title, view.note.id
                ))
            }
        },
    ));
    let knowledge = state.knowledge.clone();
    tools.push(ServedTool::new(
        "remember",
        "Keep a fact about the user in their memory in kai.",
        object(json!({"fact": {"type": "string"}}), &["fact"]),
        move |arguments: Value| {
            let knowledge = knowledge.clone();
            async move {
                let entry = knowledge
                    .remember(
                        owner,
                        &text_arg(&arguments, "fact")?,
                        MemorySource::User,
                        None,
                        Vec::new(),
                    )
                    .await
                    .map_err(|err| err.to_string())?;
                Ok(format!("remembered ({})", entry.id))
            }
        },
    ));
    let gateway = state.gateway.clone();
    let default_model = state.agents.default_model().to_owned();
    tools.push(ServedTool::new(
        "chat",
        "Ask one of the models kai serves (its default one unless `model` names another).",
        object(
            json!({"message": {"type": "string"}, "model": {"type": "string"}}),
            &["message"],
        ),
        move |arguments: Value| {
            let gateway = gateway.clone();
            let caller = Caller {
                user_id: owner,
                api_key_id: None,
                request_id: request_id.clone(),
            };
            let default_model = default_model.clone();
            async move {
                let message = text_arg(&arguments, "message")?;
                let model = arguments["model"]
                    .as_str()
                    .map_or(default_model, str::to_owned);
                let request =
                    ChatRequest::new(model.clone(), vec![Message::text(Role::User, message)]);
                let answer = gateway
                    .chat(&caller, &model, &request)
                    .await
                    .map_err(|err| err.to_string())?;
                Ok(answer.value.message.joined_text())
            }
        },
    ));
    tools
}

/// kai as an MCP server (streamable HTTP, stateless: every POST of a JSON-RPC message is
/// answered with JSON). Tools: `search_knowledge`, `read_note`, `recall`, and with `write`
/// also `write_note`, `remember` and `chat`. Needs `read`.
#[utoipa::path(post, path = "", tag = "operations", security(("bearer" = [])),
    request_body(content = Object, description = "A JSON-RPC message of the Model Context Protocol", content_type = "application/json"),
    responses(
        (status = 200, description = "The JSON-RPC answer", body = Object),
        (status = 202, description = "A notification, accepted"),
        (status = 406, description = "The request does not accept both application/json and text/event-stream, as MCP's streamable HTTP asks")))]
async fn mcp(
    State(state): State<AppState>,
    Auth(principal): Auth,
    request: Request,
) -> Result<Response, ApiError> {
    principal.require(Scope::Read)?;
    let write = principal.scopes().contains(Scope::Write);
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("mcp")
        .to_owned();
    let mut builder = McpToolServer::builder("kai", env!("CARGO_PKG_VERSION"))
        .instructions("kai: the user's own knowledge, notes, memory and models.");
    for tool in tools(&state, principal.user.id, request_id, write) {
        builder = builder.tool(tool);
    }
    let server = builder.build().map_err(|err| ApiError::internal(&err))?;
    // The API key authenticates; the host check guards browsers from DNS rebinding, which a
    // bearer token already prevents.
    let answer = server
        .http_service(AllowedHosts::Any)
        .oneshot(request)
        .await
        .map_err(|err| ApiError::internal(&err))?;
    Ok(answer.map(Body::new).into_response())
}
