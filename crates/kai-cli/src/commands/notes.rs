//! `kai note`: notes on a server, written in $EDITOR (or from a file or stdin).

use std::io::{IsTerminal, Read};

use anyhow::{Context, anyhow, bail};
use kai_config::{Environment, Settings};
use kai_proto::{CreateNoteRequest, Note, NoteList, UpdateNoteRequest};
use reqwest::Method;
use uuid::Uuid;

use crate::cli::NoteCommand;
use crate::client::Client;
use crate::commands::connect;
use crate::output;

/// The note a command names: by id, else by title.
async fn find(client: &Client, given: &str) -> anyhow::Result<Note> {
    if let Ok(id) = given.parse::<Uuid>() {
        return client
            .call(Method::GET, &format!("/api/v1/notes/{id}"), None::<&()>)
            .await;
    }
    let title: String = url::form_urlencoded::byte_serialize(given.as_bytes()).collect();
    let list: NoteList = client
        .call(
            Method::GET,
            &format!("/api/v1/notes?title={title}"),
            None::<&()>,
        )
        .await?;
    let found = list
        .notes
        .first()
        .ok_or_else(|| anyhow!("you have no note titled `{given}`; `kai note list` shows yours"))?;
    client
        .call(
            Method::GET,
            &format!("/api/v1/notes/{}", found.id),
            None::<&()>,
        )
        .await
}

/// Text edited in $VISUAL or $EDITOR (else `vi`), starting from `initial`.
fn edit(initial: &str) -> anyhow::Result<String> {
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    let file = tempfile::Builder::new()
        .prefix("kai-note-")
        .suffix(".md")
        .tempfile()
        .context("cannot make a temporary file to edit the note in")?;
    std::fs::write(file.path(), initial).context("cannot write the note to edit")?;
    // Through the shell, as git does: EDITOR may carry arguments (`code --wait`).
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("kai-note-editor")
        .arg(file.path())
        .status()
        .with_context(|| format!("cannot run the editor `{editor}`"))?;
    if !status.success() {
        bail!("the editor `{editor}` failed ({status}); nothing was saved");
    }
    std::fs::read_to_string(file.path()).context("cannot read the edited note back")
}

/// A new note's body: the file given, else stdin when it is not a terminal, else $EDITOR (not
/// with a template, which writes the body).
fn new_body(file: Option<&std::path::Path>, template: bool) -> anyhow::Result<String> {
    if let Some(file) = file {
        return std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()));
    }
    if !std::io::stdin().is_terminal() {
        let mut body = String::new();
        std::io::stdin()
            .read_to_string(&mut body)
            .context("cannot read the note from stdin")?;
        return Ok(body);
    }
    if template {
        return Ok(String::new());
    }
    edit("")
}

fn print(note: &Note) {
    output::line(&format!("# {}", note.summary.title));
    output::line("");
    output::line(note.body.trim_end());
    if !note.links.is_empty() {
        output::line("");
        output::line("Links:");
        for link in &note.links {
            let title = link.title.as_deref().unwrap_or("?");
            match link.target_id {
                Some(id) => output::line(&format!("  {title} ({} {id})", link.kind)),
                None => output::line(&format!("  {title} (no such {} yet)", link.kind)),
            }
        }
    }
    if !note.backlinks.is_empty() {
        output::line("");
        output::line("Linked from:");
        for link in &note.backlinks {
            output::line(&format!("  {} ({})", link.title, link.id));
        }
    }
}

pub(crate) async fn run(
    settings: &Settings,
    env: &Environment,
    command: NoteCommand,
) -> anyhow::Result<()> {
    let client = connect::authenticated(settings, env)?;
    match command {
        NoteCommand::New {
            title,
            template,
            vars,
            tags,
            file,
            json,
        } => {
            let body = new_body(file.as_deref(), template.is_some())?;
            let mut variables = serde_json::Map::new();
            for var in vars {
                let (name, value) = var
                    .split_once('=')
                    .ok_or_else(|| anyhow!("--var takes NAME=VALUE, not `{var}`"))?;
                variables.insert(name.trim().to_owned(), value.into());
            }
            let note: Note = client
                .call(
                    Method::POST,
                    "/api/v1/notes",
                    Some(&CreateNoteRequest {
                        title,
                        body,
                        template,
                        variables,
                        tags,
                        collection_id: None,
                    }),
                )
                .await?;
            if json {
                return output::json(&note);
            }
            output::line(&note.summary.id.to_string());
            Ok(())
        }
        NoteCommand::Edit { note } => {
            let current = find(&client, &note).await?;
            let body = if std::io::stdin().is_terminal() {
                edit(&current.body)?
            } else {
                let mut body = String::new();
                std::io::stdin().read_to_string(&mut body)?;
                body
            };
            if body == current.body {
                output::note("no change; nothing saved");
                return Ok(());
            }
            let saved: Note = client
                .call(
                    Method::PATCH,
                    &format!("/api/v1/notes/{}", current.summary.id),
                    Some(&UpdateNoteRequest {
                        body: Some(body),
                        ..UpdateNoteRequest::default()
                    }),
                )
                .await?;
            output::note(&format!(
                "saved `{}` as version {}",
                saved.summary.title, saved.summary.version
            ));
            Ok(())
        }
        NoteCommand::Rename { note, title } => {
            let current = find(&client, &note).await?;
            let saved: Note = client
                .call(
                    Method::PATCH,
                    &format!("/api/v1/notes/{}", current.summary.id),
                    Some(&UpdateNoteRequest {
                        title: Some(title),
                        ..UpdateNoteRequest::default()
                    }),
                )
                .await?;
            output::note(&format!(
                "renamed to `{}`; {} notes link to it",
                saved.summary.title,
                saved.backlinks.len()
            ));
            Ok(())
        }
        NoteCommand::Show { note, json } => {
            let note = find(&client, &note).await?;
            if json {
                return output::json(&note);
            }
            print(&note);
            Ok(())
        }
        NoteCommand::List { tag, json } => {
            let path = match &tag {
                Some(tag) => format!(
                    "/api/v1/notes?limit=500&tag={}",
                    url::form_urlencoded::byte_serialize(tag.as_bytes()).collect::<String>()
                ),
                None => "/api/v1/notes?limit=500".to_owned(),
            };
            let list: NoteList = client.call(Method::GET, &path, None::<&()>).await?;
            if json {
                return output::json(&list.notes);
            }
            if list.notes.is_empty() {
                output::note("no notes yet; write one with `kai note new TITLE`");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = list
                .notes
                .iter()
                .map(|n| {
                    vec![
                        n.id.to_string(),
                        n.title.clone(),
                        format!("v{}", n.version),
                        output::timestamp(n.updated_at),
                        n.tags.join(","),
                    ]
                })
                .collect();
            output::table(&["ID", "TITLE", "VER", "CHANGED", "TAGS"], &rows);
            Ok(())
        }
        NoteCommand::Rm { note } => {
            let current = find(&client, &note).await?;
            client
                .call_empty(
                    Method::DELETE,
                    &format!("/api/v1/notes/{}", current.summary.id),
                    None::<&()>,
                )
                .await?;
            output::note(&format!("deleted `{}`", current.summary.title));
            Ok(())
        }
    }
}
