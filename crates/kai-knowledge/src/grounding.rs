//! Answers grounded in the owner's knowledge: the passages a search finds for the question are
//! put before it in the prompt, numbered, and handed back as the answer's sources, so that a
//! client can show citations.

use kai_core::{CollectionId, UserId};
use kai_models::chat::{Message, Role};
use kai_store::ItemFilter;

use crate::service::{Knowledge, KnowledgeError, SearchMode, SearchQuery};

/// The most passages one answer is given.
pub const MAX_SOURCES: usize = 20;

/// How much passage text an answer is given at most, in bytes (about 1,500 tokens): room for
/// the question and the answer even in a small local model's context.
const PASSAGE_BUDGET: usize = 6_000;

/// What to ground an answer in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grounding {
    /// Only these collections; all the owner's knowledge when empty.
    pub collections: Vec<CollectionId>,
    /// How many passages, at most.
    pub limit: usize,
    /// Also what the owner's memory holds (left out while the vault is locked).
    pub memory: bool,
}

/// A passage an answer was given, numbered as the prompt numbers it.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// Its number in the prompt, from 1: what the answer cites as `[n]`.
    pub number: usize,
    /// The item it comes from.
    pub item_id: String,
    /// The item's title.
    pub title: String,
    /// The version.
    pub version: u64,
    /// The headings above it.
    pub heading: Option<String>,
    /// The passage as the model saw it.
    pub text: String,
    /// Its search score.
    pub score: f32,
}

/// What grounding did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grounded {
    /// The passages given to the model, in their numbers' order.
    pub sources: Vec<Source>,
    /// Set when the search ran on keywords alone (the embedding model failed): why.
    pub degraded: Option<String>,
}

/// How much of the owner's memory an answer is given at most, in bytes.
const MEMORY_BUDGET: usize = 2_000;

/// The instruction put before the passages.
const INSTRUCTION: &str = "Below are numbered passages from the user's own documents, found \
    for the question that follows. Use them when they are relevant and cite each one you use \
    by its number, like [1]. If they do not hold the answer, say so rather than guessing.";

impl Knowledge {
    /// The owner's current memory as lines for a prompt, newest first within the budget;
    /// nothing while the vault is locked, so that chats go on without it.
    async fn memory_for_prompt(&self, owner: UserId) -> Result<String, KnowledgeError> {
        let entries = match self.memories(owner, false, None).await {
            Ok(entries) => entries,
            Err(KnowledgeError::Vault(_)) => return Ok(String::new()),
            Err(err) => return Err(err),
        };
        let mut lines = Vec::new();
        let mut budget = MEMORY_BUDGET;
        for entry in entries.iter().rev() {
            let line = format!("- {}", entry.text.replace('\n', " "));
            if line.len() > budget {
                break;
            }
            budget -= line.len();
            lines.push(line);
        }
        lines.reverse();
        Ok(lines.join("\n"))
    }

    /// Finds passages for the last user message of `messages` in the owner's knowledge and
    /// puts them, numbered, in a system message just before it. Nothing changes when there is
    /// no user message with text or nothing is found.
    pub async fn ground(
        &self,
        owner: UserId,
        messages: &mut Vec<Message>,
        grounding: &Grounding,
    ) -> Result<Grounded, KnowledgeError> {
        if !(1..=MAX_SOURCES).contains(&grounding.limit) {
            return Err(KnowledgeError::Invalid(format!(
                "knowledge.limit must be from 1 to {MAX_SOURCES}"
            )));
        }
        let owned = self.collections(owner).await?;
        for collection in &grounding.collections {
            if !owned.iter().any(|c| c.id == *collection) {
                return Err(KnowledgeError::NotFound(format!("collection {collection}")));
            }
        }
        let Some(at) = messages.iter().rposition(|m| m.role == Role::User) else {
            return Ok(Grounded::default());
        };
        let question = messages[at].joined_text();
        if question.trim().is_empty() {
            return Ok(Grounded::default());
        }
        // The end of a long question says most about what is asked.
        let question: String = {
            let chars: Vec<char> = question.chars().collect();
            let skip = chars.len().saturating_sub(crate::MAX_QUERY_CHARS);
            chars[skip..].iter().collect()
        };
        let results = self
            .search(
                owner,
                &SearchQuery {
                    text: question,
                    mode: SearchMode::Hybrid,
                    filter: ItemFilter {
                        collections: grounding.collections.clone(),
                        ..ItemFilter::default()
                    },
                    limit: grounding.limit,
                    fusion: None,
                },
            )
            .await?;
        let mut sources = Vec::new();
        let mut budget = PASSAGE_BUDGET;
        for hit in results.hits {
            if budget == 0 {
                break;
            }
            let mut end = hit.text.len().min(budget);
            while !hit.text.is_char_boundary(end) {
                end -= 1;
            }
            budget -= end;
            sources.push(Source {
                number: sources.len() + 1,
                item_id: hit.item_id,
                title: hit.title,
                version: hit.version,
                heading: hit.heading,
                text: hit.text[..end].to_owned(),
                score: hit.score,
            });
        }
        let facts = if grounding.memory {
            self.memory_for_prompt(owner).await?
        } else {
            String::new()
        };
        if sources.is_empty() && facts.is_empty() {
            return Ok(Grounded {
                sources,
                degraded: results.degraded,
            });
        }
        let mut prompt = String::new();
        if !facts.is_empty() {
            prompt.push_str("What you know about the user, from their memory:\n");
            prompt.push_str(&facts);
            if sources.is_empty() {
                messages.insert(at, Message::text(Role::System, prompt));
                return Ok(Grounded {
                    sources,
                    degraded: results.degraded,
                });
            }
            prompt.push_str("\n\n");
        }
        prompt.push_str(INSTRUCTION);
        for source in &sources {
            let heading = source
                .heading
                .as_deref()
                .map(|h| format!(" › {h}"))
                .unwrap_or_default();
            prompt.push_str(&format!(
                "\n\n[{}] {}{heading}\n{}",
                source.number, source.title, source.text
            ));
        }
        messages.insert(at, Message::text(Role::System, prompt));
        Ok(Grounded {
            sources,
            degraded: results.degraded,
        })
    }
}
