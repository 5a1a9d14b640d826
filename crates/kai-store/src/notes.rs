//! Notes: Markdown written in kai, versioned like artifacts, with tags and `[[wiki links]]`.
//!
//! A note's title is unique among its owner's (compared without case), so that `[[Title]]`
//! names one note. Links are stored by the id of what they point at, resolved when the note is
//! saved; a link to a title no note has yet is kept by its title and resolved when a note takes
//! that title. Backlinks therefore stay right when a note is renamed.

use kai_core::{CollectionId, NoteId, UserId};
use time::OffsetDateTime;

use crate::artifacts::{IndexState, insert_tags, normalised_tags, require_collection};
use crate::row::Columns;
use crate::{
    Store, StoreError, count_from_row, from_millis, is_foreign_key_violation, is_unique_violation,
    millis, stored_int, truncate, with_pool,
};

/// A link as read: its kind, target, the title written, and the note's or artifact's title.
type LinkRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// What a link points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkTarget {
    /// A note, by its title as written.
    NoteTitle(String),
    /// An artifact, by id.
    Artifact(String),
}

/// A note to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNote {
    /// Whose it is.
    pub owner_id: UserId,
    /// The collection it goes into (the owner's own: checked).
    pub collection_id: Option<CollectionId>,
    /// Its title, unique among the owner's notes without regard to case.
    pub title: String,
    /// Its Markdown.
    pub body: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Who writes it: `user:<id>` or `run:<id>`.
    pub created_by: String,
    /// The links in its body.
    pub links: Vec<LinkTarget>,
}

/// A note as stored, with its current version's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteRecord {
    /// Its id.
    pub id: NoteId,
    /// Whose it is.
    pub owner_id: UserId,
    /// The collection it is in.
    pub collection_id: Option<CollectionId>,
    /// Its title.
    pub title: String,
    /// Its tags, sorted.
    pub tags: Vec<String>,
    /// Its current version's number.
    pub version: u64,
    /// Its current version's Markdown.
    pub body: String,
    /// How far indexing the current version has come.
    pub index_state: IndexState,
    /// Why indexing failed or is incomplete.
    pub index_error: Option<String>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

/// One version of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVersionRecord {
    /// Its number, from 1.
    pub version: u64,
    /// The title it had.
    pub title: String,
    /// Its Markdown.
    pub body: String,
    /// Who wrote it.
    pub created_by: String,
    /// When.
    pub created_at: OffsetDateTime,
}

/// A link as stored: resolved to a note or artifact, or waiting for a note of its title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteLink {
    /// `note` or `artifact`.
    pub kind: String,
    /// What it points at, when that exists.
    pub target_id: Option<String>,
    /// The title it points at (for notes), or the target's title once resolved.
    pub title: Option<String>,
}

/// Changes to a note; `None` leaves a field as it is. A new title or body makes a new version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoteUpdate {
    /// A new title.
    pub title: Option<String>,
    /// A new body, with the links in it.
    pub body: Option<(String, Vec<LinkTarget>)>,
    /// New tags, replacing the old.
    pub tags: Option<Vec<String>>,
    /// Another collection, or `Some(None)` for none.
    pub collection_id: Option<Option<CollectionId>>,
    /// Who changes it.
    pub created_by: String,
}

macro_rules! note_columns {
    () => {
        "n.id, n.owner_id, n.collection_id, n.title, n.current_version, n.created_at, \
         n.updated_at, v.body, v.index_state, v.index_error"
    };
}

fn note(row: &impl Columns) -> Result<NoteRecord, StoreError> {
    let bad = |message: String| StoreError::Corrupt {
        table: "notes",
        message,
    };
    let id = row.text("id")?;
    let state = row.text("index_state")?;
    Ok(NoteRecord {
        id: id
            .parse()
            .map_err(|_| bad(format!("id `{id}` is not a UUID")))?,
        owner_id: row
            .text("owner_id")?
            .parse()
            .map_err(|_| bad(format!("note {id}: bad owner id")))?,
        collection_id: row
            .opt_text("collection_id")?
            .map(|c| {
                c.parse()
                    .map_err(|_| bad(format!("note {id}: bad collection id")))
            })
            .transpose()?,
        title: row.text("title")?,
        tags: Vec::new(),
        version: count_from_row(row.int("current_version")?, "notes", "current_version")?,
        body: row.text("body")?,
        index_state: IndexState::parse(&state)
            .ok_or_else(|| bad(format!("note {id}: unknown index state `{state}`")))?,
        index_error: row.opt_text("index_error")?,
        created_at: from_millis(row.int("created_at")?),
        updated_at: from_millis(row.int("updated_at")?),
    })
}

fn version_record(row: &impl Columns) -> Result<NoteVersionRecord, StoreError> {
    Ok(NoteVersionRecord {
        version: count_from_row(row.int("version")?, "note_versions", "version")?,
        title: row.text("title")?,
        body: row.text("body")?,
        created_by: row.text("created_by")?,
        created_at: from_millis(row.int("created_at")?),
    })
}

/// Writes a note version's links, replacing the note's earlier ones, each resolved against the
/// owner's notes and artifacts as they are now.
macro_rules! write_links {
    ($tx:expr, $owner:expr, $note:expr, $links:expr) => {{
        sqlx::query("DELETE FROM note_links WHERE note_id = $1")
            .bind($note)
            .execute(&mut *$tx)
            .await?;
        let mut seen = std::collections::HashSet::new();
        for link in $links {
            let (kind, key, target): (&str, String, Option<String>) = match link {
                LinkTarget::NoteTitle(title) => {
                    let found: Option<String> = sqlx::query_scalar(
                        "SELECT id FROM notes WHERE owner_id = $1 AND lower(title) = lower($2)",
                    )
                    .bind($owner)
                    .bind(title)
                    .fetch_optional(&mut *$tx)
                    .await?;
                    ("note", title.to_lowercase(), found)
                }
                LinkTarget::Artifact(id) => {
                    let found: Option<String> = sqlx::query_scalar(
                        "SELECT id FROM artifacts WHERE owner_id = $1 AND id = $2",
                    )
                    .bind($owner)
                    .bind(id)
                    .fetch_optional(&mut *$tx)
                    .await?;
                    ("artifact", id.to_lowercase(), found)
                }
            };
            if !seen.insert((kind, key.clone())) {
                continue;
            }
            let title = match link {
                LinkTarget::NoteTitle(title) => Some(title.clone()),
                LinkTarget::Artifact(_) => None,
            };
            sqlx::query(
                "INSERT INTO note_links (note_id, owner_id, target_kind, target_key, target_id, \
                     target_title) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind($note)
            .bind($owner)
            .bind(kind)
            .bind(&key)
            .bind(target)
            .bind(title)
            .execute(&mut *$tx)
            .await?;
        }
    }};
}

impl Store {
    /// Creates a note with its first version. [`StoreError::Conflict`] when the owner has a
    /// note of that title, or the collection is not theirs.
    pub async fn create_note(&self, new: &NewNote) -> Result<NoteRecord, StoreError> {
        let id = NoteId::new();
        let now = millis(truncate(OffsetDateTime::now_utc()));
        let owner = new.owner_id.to_string();
        let tags = normalised_tags(&new.tags);
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO notes (id, owner_id, collection_id, title, current_version, \
                     created_at, updated_at) VALUES ($1, $2, $3, $4, 1, $5, $5)",
            )
            .bind(id.to_string())
            .bind(&owner)
            .bind(new.collection_id.map(|c| c.to_string()))
            .bind(&new.title)
            .bind(now)
            .execute(&mut *tx)
            .await;
            match inserted {
                Err(err) if is_unique_violation(&err) => {
                    return Err(StoreError::Conflict("a note with that title"));
                }
                Err(err) if is_foreign_key_violation(&err) => {
                    return Err(StoreError::Conflict("no such collection"));
                }
                other => other?,
            };
            require_collection!(tx, new.collection_id.map(|c| c.to_string()), &owner);
            sqlx::query(
                "INSERT INTO note_versions (note_id, version, title, body, created_by, \
                     created_at) VALUES ($1, 1, $2, $3, $4, $5)",
            )
            .bind(id.to_string())
            .bind(&new.title)
            .bind(&new.body)
            .bind(&new.created_by)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            insert_tags!(tx, id.to_string(), &owner, &tags);
            write_links!(tx, &owner, &id.to_string(), &new.links);
            // Links written before this note existed now point at it.
            sqlx::query(
                "UPDATE note_links SET target_id = $1 WHERE owner_id = $2 \
                     AND target_kind = 'note' AND target_key = lower($3)",
            )
            .bind(id.to_string())
            .bind(&owner)
            .bind(&new.title)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        self.note(new.owner_id, id)
            .await?
            .ok_or(StoreError::Conflict("a note deleted as it was made"))
    }

    /// One of the owner's notes, with its current version.
    pub async fn note(&self, owner: UserId, id: NoteId) -> Result<Option<NoteRecord>, StoreError> {
        let found = with_pool!(self, |pool| {
            sqlx::query(concat!(
                "SELECT ",
                note_columns!(),
                " FROM notes n JOIN note_versions v \
                     ON v.note_id = n.id AND v.version = n.current_version \
                 WHERE n.id = $1 AND n.owner_id = $2"
            ))
            .bind(id.to_string())
            .bind(owner.to_string())
            .fetch_optional(pool)
            .await?
            .map(|row| note(&row))
            .transpose()?
        });
        let Some(mut found) = found else {
            return Ok(None);
        };
        found.tags = self.tags_of(&found.id.to_string()).await?;
        Ok(Some(found))
    }

    /// One of the owner's notes by title, without regard to case.
    pub async fn note_by_title(
        &self,
        owner: UserId,
        title: &str,
    ) -> Result<Option<NoteRecord>, StoreError> {
        let id: Option<String> = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT id FROM notes WHERE owner_id = $1 AND lower(title) = lower($2)",
            )
            .bind(owner.to_string())
            .bind(title)
            .fetch_optional(pool)
            .await?
        });
        match id.and_then(|id| id.parse().ok()) {
            Some(id) => self.note(owner, id).await,
            None => Ok(None),
        }
    }

    /// The owner's notes, most recently changed first, with their current bodies; only those
    /// in `collection` and carrying `tag` when given.
    pub async fn notes(
        &self,
        owner: UserId,
        collection: Option<CollectionId>,
        tag: Option<&str>,
        limit: u32,
    ) -> Result<Vec<NoteRecord>, StoreError> {
        let mut found = with_pool!(self, |pool| {
            sqlx::query(concat!(
                "SELECT ",
                note_columns!(),
                " FROM notes n JOIN note_versions v \
                     ON v.note_id = n.id AND v.version = n.current_version \
                 WHERE n.owner_id = $1 AND ($2 IS NULL OR n.collection_id = $2) \
                   AND ($3 IS NULL OR EXISTS (SELECT 1 FROM item_tags t \
                       WHERE t.item_id = n.id AND t.tag = $3)) \
                 ORDER BY n.updated_at DESC, n.id DESC LIMIT $4"
            ))
            .bind(owner.to_string())
            .bind(collection.map(|c| c.to_string()))
            .bind(tag)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
            .iter()
            .map(note)
            .collect::<Result<Vec<_>, _>>()?
        });
        for record in &mut found {
            record.tags = self.tags_of(&record.id.to_string()).await?;
        }
        Ok(found)
    }

    /// Changes one of the owner's notes: a new title or body makes a new version (which
    /// `index` then says must be indexed). `None` when the note is not the owner's;
    /// [`StoreError::Conflict`] when the title is taken or the collection is not theirs.
    pub async fn update_note(
        &self,
        owner: UserId,
        id: NoteId,
        update: &NoteUpdate,
    ) -> Result<Option<NoteRecord>, StoreError> {
        let Some(current) = self.note(owner, id).await? else {
            return Ok(None);
        };
        let now = millis(OffsetDateTime::now_utc());
        let owner_text = owner.to_string();
        let new_version = update.title.as_ref().is_some_and(|t| *t != current.title)
            || update
                .body
                .as_ref()
                .is_some_and(|(b, _)| *b != current.body);
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let title = update
                .title
                .clone()
                .unwrap_or_else(|| current.title.clone());
            let collection = update
                .collection_id
                .unwrap_or(current.collection_id)
                .map(|c| c.to_string());
            let version = if new_version {
                current.version + 1
            } else {
                current.version
            };
            let changed = sqlx::query(
                "UPDATE notes SET title = $3, collection_id = $4, current_version = $5, \
                     updated_at = $6 WHERE id = $1 AND owner_id = $2 AND current_version = $7",
            )
            .bind(id.to_string())
            .bind(&owner_text)
            .bind(&title)
            .bind(collection)
            .bind(stored_int(version, "a version number")?)
            .bind(now)
            .bind(stored_int(current.version, "a version number")?)
            .execute(&mut *tx)
            .await;
            match changed {
                Err(err) if is_unique_violation(&err) => {
                    return Err(StoreError::Conflict("a note with that title"));
                }
                Err(err) if is_foreign_key_violation(&err) => {
                    return Err(StoreError::Conflict("no such collection"));
                }
                Ok(done) if done.rows_affected() == 0 => {
                    // Changed by someone else meanwhile: that change wins; try again.
                    return Err(StoreError::Conflict("a newer version of the note"));
                }
                other => other?,
            };
            require_collection!(
                tx,
                update.collection_id.flatten().map(|c| c.to_string()),
                &owner_text
            );
            if new_version {
                let body = update
                    .body
                    .as_ref()
                    .map_or(current.body.as_str(), |(body, _)| body.as_str());
                sqlx::query(
                    "INSERT INTO note_versions (note_id, version, title, body, created_by, \
                         created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(id.to_string())
                .bind(stored_int(version, "a version number")?)
                .bind(&title)
                .bind(body)
                .bind(&update.created_by)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            if let Some((_, links)) = &update.body {
                write_links!(tx, &owner_text, &id.to_string(), links);
            }
            if title != current.title {
                // Links written to the new title before now point here.
                sqlx::query(
                    "UPDATE note_links SET target_id = $1 WHERE owner_id = $2 \
                         AND target_kind = 'note' AND target_key = lower($3)",
                )
                .bind(id.to_string())
                .bind(&owner_text)
                .bind(&title)
                .execute(&mut *tx)
                .await?;
            }
            if let Some(tags) = &update.tags {
                sqlx::query("DELETE FROM item_tags WHERE item_id = $1")
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                insert_tags!(tx, id.to_string(), &owner_text, normalised_tags(tags));
            }
            tx.commit().await?;
        });
        self.note(owner, id).await
    }

    /// Deletes one of the owner's notes with its versions, tags, links and chunks; links to it
    /// from other notes wait, by its title, for a note of that title. Returns its chunks' ids,
    /// or `None` when it was not the owner's.
    pub async fn delete_note(
        &self,
        owner: UserId,
        id: NoteId,
    ) -> Result<Option<Vec<i64>>, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let deleted = sqlx::query("DELETE FROM notes WHERE id = $1 AND owner_id = $2")
                .bind(id.to_string())
                .bind(owner.to_string())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 0 {
                return Ok(None);
            }
            sqlx::query("DELETE FROM item_tags WHERE item_id = $1")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE note_links SET target_id = NULL WHERE target_id = $1")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            let chunks: Vec<i64> =
                sqlx::query_scalar("DELETE FROM chunks WHERE item_id = $1 RETURNING id")
                    .bind(id.to_string())
                    .fetch_all(&mut *tx)
                    .await?;
            tx.commit().await?;
            Ok(Some(chunks))
        })
    }

    /// Every version of one of the owner's notes, oldest first; empty when it is not theirs.
    pub async fn note_versions(
        &self,
        owner: UserId,
        id: NoteId,
    ) -> Result<Vec<NoteVersionRecord>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT version, title, body, created_by, created_at FROM note_versions \
                 WHERE note_id = $1 AND EXISTS \
                     (SELECT 1 FROM notes n WHERE n.id = $1 AND n.owner_id = $2) \
                 ORDER BY version",
            )
            .bind(id.to_string())
            .bind(owner.to_string())
            .fetch_all(pool)
            .await?
            .iter()
            .map(version_record)
            .collect()
        })
    }

    /// One version of one of the owner's notes.
    pub async fn note_version(
        &self,
        owner: UserId,
        id: NoteId,
        number: u64,
    ) -> Result<Option<NoteVersionRecord>, StoreError> {
        let number = stored_int(number, "a version number")?;
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT version, title, body, created_by, created_at FROM note_versions \
                 WHERE note_id = $1 AND version = $3 AND EXISTS \
                     (SELECT 1 FROM notes n WHERE n.id = $1 AND n.owner_id = $2)",
            )
            .bind(id.to_string())
            .bind(owner.to_string())
            .bind(number)
            .fetch_optional(pool)
            .await?
            .map(|row| version_record(&row))
            .transpose()
        })
    }

    /// The links in one of the owner's notes, in no particular order.
    pub async fn note_links(&self, owner: UserId, id: NoteId) -> Result<Vec<NoteLink>, StoreError> {
        let rows: Vec<LinkRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT l.target_kind, l.target_id, l.target_title, n.title, a.title \
                     FROM note_links l \
                     LEFT JOIN notes n ON l.target_kind = 'note' AND n.id = l.target_id \
                     LEFT JOIN artifacts a ON l.target_kind = 'artifact' AND a.id = l.target_id \
                     WHERE l.note_id = $1 AND l.owner_id = $2 ORDER BY l.target_key",
            )
            .bind(id.to_string())
            .bind(owner.to_string())
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(kind, target, written, note_title, artifact_title)| NoteLink {
                    kind,
                    target_id: target,
                    title: note_title.or(artifact_title).or(written),
                },
            )
            .collect())
    }

    /// The owner's notes that link to `target` (a note's or an artifact's id), as
    /// `(id, title)`, by title.
    pub async fn backlinks(
        &self,
        owner: UserId,
        target: &str,
    ) -> Result<Vec<(NoteId, String)>, StoreError> {
        let rows: Vec<(String, String)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT DISTINCT n.id, n.title FROM note_links l JOIN notes n ON n.id = l.note_id \
                 WHERE l.owner_id = $1 AND l.target_id = $2 ORDER BY n.title",
            )
            .bind(owner.to_string())
            .bind(target)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(id, title)| {
                Ok((
                    id.parse().map_err(|_| StoreError::Corrupt {
                        table: "notes",
                        message: format!("id `{id}` is not a UUID"),
                    })?,
                    title,
                ))
            })
            .collect()
    }
}
