//! The owner's knowledge, as tools: search, new notes (marked as the run's), and memory.

use kai_knowledge::{Knowledge, MemorySource, NoteInput, SearchMode, SearchQuery};
use kai_store::ItemFilter;
use serde_json::Value;

use super::env::{ToolEnv, ToolError, text};

/// Passages a search returns unless the model asks for another number.
const DEFAULT_HITS: usize = 5;
/// The most a search returns.
const MAX_HITS: usize = 20;

fn service(env: &ToolEnv) -> Result<&Knowledge, ToolError> {
    env.knowledge
        .as_ref()
        .ok_or_else(|| ToolError::Failed("knowledge is not available in this process".into()))
}

fn failed(err: kai_knowledge::KnowledgeError) -> ToolError {
    ToolError::Failed(err.to_string())
}

pub(super) async fn search(env: &ToolEnv, arguments: &Value) -> Result<String, ToolError> {
    let query = text(arguments, "query")?;
    let limit = match arguments.get("limit").and_then(Value::as_u64) {
        None => DEFAULT_HITS,
        Some(n @ 1..=20) => usize::try_from(n).unwrap_or(MAX_HITS),
        Some(n) => {
            return Err(ToolError::Invalid(format!(
                "`limit` is {n}; give 1 to {MAX_HITS}"
            )));
        }
    };
    let results = service(env)?
        .search(
            env.owner,
            &SearchQuery {
                text: query.to_owned(),
                mode: SearchMode::Hybrid,
                filter: ItemFilter {
                    collections: env.collections.clone(),
                    ..ItemFilter::default()
                },
                limit,
                fusion: None,
            },
        )
        .await
        .map_err(failed)?;
    if results.hits.is_empty() {
        return Ok(format!("nothing found for `{query}`"));
    }
    let mut answer = String::new();
    for (rank, hit) in results.hits.iter().enumerate() {
        answer.push_str(&format!(
            "[{}] {} ({} {}, version {})\n{}\n\n",
            rank + 1,
            hit.title,
            hit.item_kind,
            hit.item_id,
            hit.version,
            hit.text.trim()
        ));
    }
    Ok(answer.trim_end().to_owned())
}

pub(super) async fn write_note(env: &ToolEnv, arguments: &Value) -> Result<String, ToolError> {
    let tags = arguments["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let view = service(env)?
        .create_note(
            env.owner,
            NoteInput {
                title: text(arguments, "title")?.to_owned(),
                body: text(arguments, "body")?.to_owned(),
                tags,
                created_by: format!("run:{}", env.run),
                ..NoteInput::default()
            },
        )
        .await
        .map_err(failed)?;
    Ok(format!(
        "wrote note `{}` ({})",
        view.note.title, view.note.id
    ))
}

pub(super) async fn remember(env: &ToolEnv, arguments: &Value) -> Result<String, ToolError> {
    let entry = service(env)?
        .remember(
            env.owner,
            text(arguments, "fact")?,
            MemorySource::Run(env.run.to_string()),
            None,
            Vec::new(),
        )
        .await
        .map_err(failed)?;
    Ok(format!("remembered ({})", entry.id))
}

pub(super) async fn recall(env: &ToolEnv) -> Result<String, ToolError> {
    let entries = service(env)?
        .memories(env.owner, false, None)
        .await
        .map_err(failed)?;
    if entries.is_empty() {
        return Ok("memory is empty".into());
    }
    Ok(entries
        .iter()
        .map(|entry| format!("- {}", entry.text))
        .collect::<Vec<_>>()
        .join("\n"))
}
