//! Notes: Markdown written in kai, with tags, `[[wiki links]]` and backlinks, versions, and
//! templates. They are indexed and searched like artifacts.
//!
//! `[[Title]]`, `[[Title|shown text]]` and `[[Title#Heading]]` link to the note of that title
//! (compared without case; one that does not exist yet is linked when it is made);
//! `[[artifact:ID]]` links to an artifact. Links inside code are not links.

use kai_core::{CollectionId, NoteId, UserId};
use kai_store::{
    ItemKind, LinkTarget, NewNote, NoteLink, NoteRecord, NoteUpdate, NoteVersionRecord, StoreError,
};
use pulldown_cmark::{Event, LinkType, Options, Parser, Tag};
use time::OffsetDateTime;

use crate::service::{Knowledge, KnowledgeError};

/// The longest title, in characters.
const MAX_TITLE_CHARS: usize = 200;

/// The largest note body, in bytes: a note is written by hand; a larger text is an artifact.
pub const MAX_NOTE_BYTES: usize = 1024 * 1024;

/// The tag that makes a note a template.
pub const TEMPLATE_TAG: &str = "template";

/// A note to write.
#[derive(Debug, Clone, Default)]
pub struct NoteInput {
    /// Its title.
    pub title: String,
    /// Its Markdown; with `template`, what the template does not give (nothing, usually).
    pub body: String,
    /// A note tagged `template` whose body, rendered, becomes this note's.
    pub template: Option<String>,
    /// Values for the template's variables, besides `date`, `time`, `now`, `user` and `title`.
    pub variables: serde_json::Map<String, serde_json::Value>,
    /// Its tags.
    pub tags: Vec<String>,
    /// The collection it goes into.
    pub collection: Option<CollectionId>,
    /// Who writes it: `user:<id>` or `run:<id>`.
    pub created_by: String,
    /// Who the writer is, for templates' `user` variable.
    pub user_name: String,
}

/// Changes to a note; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct NoteChanges {
    /// A new title.
    pub title: Option<String>,
    /// A new body.
    pub body: Option<String>,
    /// New tags, replacing the old.
    pub tags: Option<Vec<String>>,
    /// Another collection, or `Some(None)` for none.
    pub collection: Option<Option<CollectionId>>,
}

/// A note with what links to and from it.
#[derive(Debug, Clone)]
pub struct NoteView {
    /// The note.
    pub note: NoteRecord,
    /// The links in its body.
    pub links: Vec<NoteLink>,
    /// The notes that link to it, as `(id, title)`.
    pub backlinks: Vec<(NoteId, String)>,
}

/// The links in Markdown: wiki links, outside code.
#[must_use]
pub fn wiki_links(markdown: &str) -> Vec<LinkTarget> {
    let mut links = Vec::new();
    for event in Parser::new_ext(markdown, Options::ENABLE_WIKILINKS) {
        let Event::Start(Tag::Link {
            link_type: LinkType::WikiLink { .. },
            dest_url,
            ..
        }) = event
        else {
            continue;
        };
        let target = dest_url.split('#').next().unwrap_or_default().trim();
        if target.is_empty() {
            continue;
        }
        match target.strip_prefix("artifact:") {
            Some(id) => links.push(LinkTarget::Artifact(id.trim().to_lowercase())),
            None => links.push(LinkTarget::NoteTitle(target.to_owned())),
        }
    }
    links
}

fn check_title(title: &str) -> Result<String, KnowledgeError> {
    let title = title.trim();
    if title.is_empty() {
        return Err(KnowledgeError::Invalid("the title is empty".into()));
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(KnowledgeError::Invalid(format!(
            "the title is longer than {MAX_TITLE_CHARS} characters"
        )));
    }
    if title.chars().any(char::is_control) || title.contains("[[") || title.contains("]]") {
        return Err(KnowledgeError::Invalid(
            "the title may hold neither control characters nor `[[`/`]]`".into(),
        ));
    }
    if title.contains('|') || title.contains('#') {
        return Err(KnowledgeError::Invalid(
            "the title may hold neither `|` nor `#`: links read them as the shown text and a \
             heading"
                .into(),
        ));
    }
    Ok(title.to_owned())
}

fn check_body(body: &str) -> Result<(), KnowledgeError> {
    if body.len() > MAX_NOTE_BYTES {
        return Err(KnowledgeError::Invalid(format!(
            "the note is larger than {MAX_NOTE_BYTES} bytes; add a text that large as an artifact"
        )));
    }
    if body.contains('\0') {
        return Err(KnowledgeError::Invalid(
            "the note holds a NUL character".into(),
        ));
    }
    Ok(())
}

fn title_taken(err: StoreError, title: &str) -> KnowledgeError {
    match err {
        StoreError::Conflict("no such collection") => KnowledgeError::NotFound("collection".into()),
        StoreError::Conflict("a newer version of the note") => KnowledgeError::Conflict(
            "the note changed while this change was made; read it again and retry".into(),
        ),
        StoreError::Conflict(_) => {
            KnowledgeError::Conflict(format!("you already have a note titled `{title}`"))
        }
        other => other.into(),
    }
}

/// Renders a template's body: minijinja, with undefined variables an error that names them.
fn render(
    template_title: &str,
    source: &str,
    input: &NoteInput,
    title: &str,
) -> Result<String, KnowledgeError> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_template("note", source).map_err(|err| {
        KnowledgeError::Invalid(format!("template `{template_title}` does not parse: {err}"))
    })?;
    let now = OffsetDateTime::now_utc();
    let date = format!(
        "{:04}-{:02}-{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    );
    let time = format!("{:02}:{:02}", now.hour(), now.minute());
    let mut context = input.variables.clone();
    context.insert("date".into(), date.into());
    context.insert("time".into(), time.into());
    context.insert(
        "now".into(),
        now.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
            .into(),
    );
    context.insert("user".into(), input.user_name.clone().into());
    context.insert("title".into(), title.to_owned().into());
    let template = env.get_template("note").map_err(|err| {
        KnowledgeError::Invalid(format!("template `{template_title}` does not parse: {err}"))
    })?;
    // Named before rendering: minijinja's own error says only that a value is undefined.
    let mut missing: Vec<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|name| !context.contains_key(name) && env.globals().all(|(g, _)| g != name))
        .collect();
    if !missing.is_empty() {
        missing.sort();
        return Err(KnowledgeError::Invalid(format!(
            "template `{template_title}` needs a value for {}: give it in `variables` \
             (`--var NAME=VALUE` with `kai note new`)",
            missing
                .iter()
                .map(|name| format!("`{name}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let rendered = template
        .render(serde_json::Value::Object(context))
        .map_err(|err| {
            KnowledgeError::Invalid(format!(
                "template `{template_title}` cannot be rendered: {err}"
            ))
        })?;
    Ok(if input.body.is_empty() {
        rendered
    } else {
        format!("{rendered}\n{}", input.body)
    })
}

impl Knowledge {
    /// Writes a new note and queues it for indexing.
    pub async fn create_note(
        &self,
        owner: UserId,
        input: NoteInput,
    ) -> Result<NoteView, KnowledgeError> {
        let title = check_title(&input.title)?;
        crate::service::check_tags(&input.tags)?;
        let body = match &input.template {
            Some(name) => {
                let template = self
                    .store()
                    .note_by_title(owner, name)
                    .await?
                    .filter(|t| t.tags.iter().any(|tag| tag == TEMPLATE_TAG))
                    .ok_or_else(|| {
                        KnowledgeError::NotFound(format!(
                            "template `{name}` (a note tagged `{TEMPLATE_TAG}`)"
                        ))
                    })?;
                render(&template.title, &template.body, &input, &title)?
            }
            None => input.body.clone(),
        };
        check_body(&body)?;
        let links = wiki_links(&body);
        let note = self
            .store()
            .create_note(&NewNote {
                owner_id: owner,
                collection_id: input.collection,
                title: title.clone(),
                body,
                tags: input.tags,
                created_by: input.created_by,
                links,
            })
            .await
            .map_err(|err| title_taken(err, &title))?;
        self.enqueue_index(owner, ItemKind::Note, &note.id.to_string(), note.version, 0)
            .await?;
        self.note_view(owner, note).await
    }

    async fn note_view(&self, owner: UserId, note: NoteRecord) -> Result<NoteView, KnowledgeError> {
        let links = self.store().note_links(owner, note.id).await?;
        let backlinks = self.store().backlinks(owner, &note.id.to_string()).await?;
        Ok(NoteView {
            note,
            links,
            backlinks,
        })
    }

    /// One of the owner's notes, with its links and backlinks.
    pub async fn note(&self, owner: UserId, id: NoteId) -> Result<NoteView, KnowledgeError> {
        let note = self
            .store()
            .note(owner, id)
            .await?
            .ok_or_else(|| KnowledgeError::NotFound("note".into()))?;
        self.note_view(owner, note).await
    }

    /// One of the owner's notes by title (without regard to case).
    pub async fn note_titled(
        &self,
        owner: UserId,
        title: &str,
    ) -> Result<NoteView, KnowledgeError> {
        crate::service::check_text("the title", title)?;
        let note = self
            .store()
            .note_by_title(owner, title)
            .await?
            .ok_or_else(|| KnowledgeError::NotFound(format!("note `{title}`")))?;
        self.note_view(owner, note).await
    }

    /// The owner's notes, most recently changed first.
    pub async fn notes(
        &self,
        owner: UserId,
        collection: Option<CollectionId>,
        tag: Option<&str>,
        limit: u32,
    ) -> Result<Vec<NoteRecord>, KnowledgeError> {
        if let Some(tag) = tag {
            crate::service::check_text("the tag", tag)?;
        }
        Ok(self.store().notes(owner, collection, tag, limit).await?)
    }

    /// Changes one of the owner's notes; a new title or body is a new version, indexed in the
    /// background (the old one answers searches until then).
    pub async fn update_note(
        &self,
        owner: UserId,
        id: NoteId,
        changes: NoteChanges,
        created_by: String,
    ) -> Result<NoteView, KnowledgeError> {
        let NoteChanges {
            title,
            body,
            tags,
            collection,
        } = changes;
        let title = title.as_deref().map(check_title).transpose()?;
        if let Some(body) = &body {
            check_body(body)?;
        }
        if let Some(tags) = &tags {
            crate::service::check_tags(tags)?;
        }
        let before = self
            .store()
            .note(owner, id)
            .await?
            .ok_or_else(|| KnowledgeError::NotFound("note".into()))?;
        let shown_title = title.clone().unwrap_or_else(|| before.title.clone());
        let update = NoteUpdate {
            title,
            body: body.map(|body| {
                let links = wiki_links(&body);
                (body, links)
            }),
            tags,
            collection_id: collection,
            created_by,
        };
        let note = self
            .store()
            .update_note(owner, id, &update)
            .await
            .map_err(|err| title_taken(err, &shown_title))?
            .ok_or_else(|| KnowledgeError::NotFound("note".into()))?;
        if note.version != before.version {
            self.enqueue_index(owner, ItemKind::Note, &id.to_string(), note.version, 0)
                .await?;
        }
        self.note_view(owner, note).await
    }

    /// Deletes one of the owner's notes: gone from search at once; links to it wait for a note
    /// of its title.
    pub async fn delete_note(&self, owner: UserId, id: NoteId) -> Result<(), KnowledgeError> {
        let chunks = self
            .store()
            .delete_note(owner, id)
            .await?
            .ok_or_else(|| KnowledgeError::NotFound("note".into()))?;
        if let Err(err) = self.forget_chunks(chunks).await {
            tracing::warn!(note = %id, error = %err, "could not remove deleted chunks from the indexes");
        }
        Ok(())
    }

    /// Every version of one of the owner's notes, oldest first.
    pub async fn note_versions(
        &self,
        owner: UserId,
        id: NoteId,
    ) -> Result<Vec<NoteVersionRecord>, KnowledgeError> {
        let versions = self.store().note_versions(owner, id).await?;
        if versions.is_empty() {
            return Err(KnowledgeError::NotFound("note".into()));
        }
        Ok(versions)
    }

    /// The line differences between two versions of a note, as a unified diff.
    pub async fn note_diff(
        &self,
        owner: UserId,
        id: NoteId,
        from: u64,
        to: u64,
    ) -> Result<String, KnowledgeError> {
        let versions = self.note_versions(owner, id).await?;
        let body = |number: u64| {
            versions
                .iter()
                .find(|v| v.version == number)
                .map(|v| v.body.as_str())
                .ok_or_else(|| KnowledgeError::NotFound(format!("version {number}")))
        };
        let diff = similar::TextDiff::from_lines(body(from)?, body(to)?);
        Ok(diff
            .unified_diff()
            .header(&format!("version {from}"), &format!("version {to}"))
            .to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wiki_links_are_found_outside_code() {
        let links = wiki_links(
            "See [[Garden plan]] and [[garden plan|the plan]], [[Recipes#Bread]], \
             [[artifact:0190F1E2-0000-7000-8000-000000000000]].\n\n`[[not a link]]`\n\n\
             ```\n[[nor this]]\n```\n",
        );
        assert_eq!(
            links,
            [
                LinkTarget::NoteTitle("Garden plan".into()),
                LinkTarget::NoteTitle("garden plan".into()),
                LinkTarget::NoteTitle("Recipes".into()),
                LinkTarget::Artifact("0190f1e2-0000-7000-8000-000000000000".into()),
            ]
        );
    }

    #[test]
    fn titles_that_links_cannot_name_are_refused() {
        assert!(check_title("Plan | 2026").is_err());
        assert!(check_title("a#b").is_err());
        assert!(check_title("  ").is_err());
        assert!(check_title("[[x]]").is_err());
        assert_eq!(check_title(" Garden ").unwrap(), "Garden");
    }

    #[test]
    fn templates_fill_in_their_variables_and_name_the_missing_one() {
        let input = NoteInput {
            user_name: "alice".into(),
            ..NoteInput::default()
        };
        let body = render(
            "Daily",
            "# {{ title }} by {{ user }} on {{ date }}",
            &input,
            "Today",
        )
        .unwrap();
        assert!(body.starts_with("# Today by alice on 20"), "{body}");
        let err = render("Daily", "{{ mood }}", &input, "Today").unwrap_err();
        assert!(
            err.to_string().contains("mood") || err.to_string().contains("undefined"),
            "{err}"
        );
    }
}
