//! Memory: long-term facts about the user that chats and agents remember. Each entry's text is
//! sealed under the owner's vault data key, bound to the entry's id; with the vault locked,
//! memory is unavailable ([`KnowledgeError::Vault`]) and nothing else is affected.

use kai_core::{MemoryId, UserId};
use kai_store::{MemoryRecord, NewMemory, StoreError};
use kai_vault::{Owner, VaultError};
use time::OffsetDateTime;

use crate::service::{Knowledge, KnowledgeError};

/// The longest entry, in characters: a fact, not a document.
pub const MAX_MEMORY_CHARS: usize = 4_000;

/// Where an entry came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemorySource {
    /// The user said so, directly.
    User,
    /// A conversation, by id.
    Conversation(String),
    /// An agent run, by id.
    Run(String),
}

impl MemorySource {
    fn parts(&self) -> (&'static str, Option<String>) {
        match self {
            MemorySource::User => ("user", None),
            MemorySource::Conversation(id) => ("conversation", Some(id.clone())),
            MemorySource::Run(id) => ("run", Some(id.clone())),
        }
    }

    fn from_parts(kind: &str, id: Option<String>) -> MemorySource {
        match (kind, id) {
            ("conversation", Some(id)) => MemorySource::Conversation(id),
            ("run", Some(id)) => MemorySource::Run(id),
            _ => MemorySource::User,
        }
    }
}

/// An entry, opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryEntry {
    /// Its id.
    pub id: MemoryId,
    /// The fact.
    pub text: String,
    /// Where it came from.
    pub source: MemorySource,
    /// The entry it corrects.
    pub supersedes: Option<MemoryId>,
    /// The entry that corrects it, if one does.
    pub superseded_by: Option<MemoryId>,
    /// Entries it relates to.
    pub relates_to: Vec<MemoryId>,
    /// When it was kept.
    pub created_at: OffsetDateTime,
}

/// What the vault binds an entry's text to.
fn context(id: MemoryId) -> Vec<u8> {
    format!("kai/memory\0{id}").into_bytes()
}

impl Knowledge {
    /// The vault's failure as memory reports it: a vault that was never set up says so, rather
    /// than that it is locked (unlocking it would not help).
    async fn vault_failure(&self, err: VaultError) -> KnowledgeError {
        if matches!(err, VaultError::Locked)
            && let Ok(status) = self.vault().status().await
            && !status.initialized
        {
            return KnowledgeError::Vault(VaultError::NotInitialized);
        }
        KnowledgeError::Vault(err)
    }

    async fn open_entry(&self, record: MemoryRecord) -> Result<MemoryEntry, KnowledgeError> {
        let opened = self
            .vault()
            .open_data(
                Owner::User(record.owner_id),
                &record.sealed,
                &context(record.id),
            )
            .await;
        let text = match opened {
            Ok(text) => text,
            Err(err) => return Err(self.vault_failure(err).await),
        };
        let text = String::from_utf8(text.to_vec())
            .map_err(|_| KnowledgeError::Storage(format!("memory {} is not text", record.id)))?;
        Ok(MemoryEntry {
            id: record.id,
            text,
            source: MemorySource::from_parts(&record.source_kind, record.source_id),
            supersedes: record.supersedes,
            superseded_by: record.superseded_by,
            relates_to: record.relates_to,
            created_at: record.created_at,
        })
    }

    /// Keeps a fact about the owner; with `supersedes`, as the correction of an earlier entry,
    /// which stays as history.
    pub async fn remember(
        &self,
        owner: UserId,
        text: &str,
        source: MemorySource,
        supersedes: Option<MemoryId>,
        relates_to: Vec<MemoryId>,
    ) -> Result<MemoryEntry, KnowledgeError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(KnowledgeError::Invalid("the memory's text is empty".into()));
        }
        if text.chars().count() > MAX_MEMORY_CHARS {
            return Err(KnowledgeError::Invalid(format!(
                "a memory holds at most {MAX_MEMORY_CHARS} characters; keep a longer text as a \
                 note"
            )));
        }
        if relates_to.len() > 32 {
            return Err(KnowledgeError::Invalid(
                "a memory relates to at most 32 others".into(),
            ));
        }
        let id = MemoryId::new();
        let sealed = match self
            .vault()
            .seal_data(Owner::User(owner), text.as_bytes(), &context(id))
            .await
        {
            Ok(sealed) => sealed,
            Err(err) => return Err(self.vault_failure(err).await),
        };
        let (source_kind, source_id) = source.parts();
        let record = self
            .store()
            .insert_memory(&NewMemory {
                id,
                owner_id: owner,
                sealed,
                source_kind: source_kind.to_owned(),
                source_id,
                supersedes,
                relates_to,
            })
            .await
            .map_err(|err| match err {
                StoreError::Conflict(what) => KnowledgeError::Conflict(what.to_owned()),
                other => other.into(),
            })?;
        self.open_entry(record).await
    }

    /// The owner's memory, oldest first: the current entries, and superseded ones too with
    /// `history`; only those containing `containing` (without regard to case) when given.
    pub async fn memories(
        &self,
        owner: UserId,
        history: bool,
        containing: Option<&str>,
    ) -> Result<Vec<MemoryEntry>, KnowledgeError> {
        if !self.vault().is_unlocked() {
            return Err(self.vault_failure(VaultError::Locked).await);
        }
        let needle = containing.map(str::to_lowercase);
        let mut entries = Vec::new();
        for record in self.store().memories(owner, history).await? {
            let entry = self.open_entry(record).await?;
            if needle
                .as_ref()
                .is_none_or(|needle| entry.text.to_lowercase().contains(needle))
            {
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    /// Forgets one of the owner's entries for good; what it corrected is current again.
    pub async fn forget(&self, owner: UserId, id: MemoryId) -> Result<(), KnowledgeError> {
        if self.store().delete_memory(owner, id).await? {
            Ok(())
        } else {
            Err(KnowledgeError::NotFound("memory".into()))
        }
    }
}
