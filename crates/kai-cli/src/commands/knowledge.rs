//! `kai artifact`, `kai collection`, `kai search` and `kai knowledge status`: clients of a
//! server's knowledge API, with the API key `kai login` stored (or `client.api_key`).
//! `kai knowledge reindex` works on the data directory itself.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use kai_config::{Environment, Loaded, Settings};
use kai_proto::{
    Artifact, ArtifactPage, ArtifactVersions, Collection, CollectionList, CreateCollectionRequest,
    KnowledgeStatus, SearchMode, SearchRequest, SearchResponse,
};
use reqwest::Method;
use uuid::Uuid;

use crate::cli::{ArtifactCommand, CollectionCommand, KnowledgeCommand, SearchArgs};
use crate::client::Client;
use crate::commands::connect;
use crate::output;

/// Artifacts asked for per page when listing them all (the server's maximum).
const PAGE_SIZE: u32 = 200;

pub(crate) async fn artifact(
    settings: &Settings,
    env: &Environment,
    command: ArtifactCommand,
) -> anyhow::Result<()> {
    let client = connect::authenticated(settings, env)?;
    match command {
        ArtifactCommand::Add {
            paths,
            collection,
            tags,
            title,
            json,
        } => add(&client, &paths, collection.as_deref(), &tags, title, json).await,
        ArtifactCommand::List {
            collection,
            tag,
            json,
        } => list(&client, collection.as_deref(), tag.as_deref(), json).await,
        ArtifactCommand::Show { id, json } => show(&client, id, json).await,
        ArtifactCommand::Get { id, at, output } => get(&client, id, at, output.as_deref()).await,
        ArtifactCommand::Diff { id, from, to } => {
            let response = client
                .fetch(&format!("/api/v1/artifacts/{id}/diff?from={from}&to={to}"))
                .await?;
            let text = response.text().await.context("the diff broke off")?;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            Ok(())
        }
        ArtifactCommand::Rm { id } => {
            client
                .call_empty(
                    Method::DELETE,
                    &format!("/api/v1/artifacts/{id}"),
                    None::<&()>,
                )
                .await?;
            output::note(&format!("deleted artifact {id}"));
            Ok(())
        }
    }
}

/// The id of a collection given by name or id.
pub(crate) async fn collection_id(client: &Client, given: &str) -> anyhow::Result<Uuid> {
    let list: CollectionList = client
        .call(Method::GET, "/api/v1/collections", None::<&()>)
        .await?;
    let by_id = given.parse::<Uuid>().ok();
    list.collections
        .iter()
        .find(|c| c.name == given || Some(c.id) == by_id)
        .map(|c| c.id)
        .ok_or_else(|| {
            anyhow!("you have no collection `{given}`; make one with `kai collection new {given}`")
        })
}

/// Files under `paths`, directories walked recursively in name order, hidden entries
/// (`.git`, `.DS_Store`) skipped.
fn files_under(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    fn walk(dir: &Path, into: &mut Vec<PathBuf>) -> anyhow::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read the directory {}", dir.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("cannot read the directory {}", dir.display()))?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            let kind = entry
                .file_type()
                .with_context(|| format!("cannot read {}", path.display()))?;
            if kind.is_dir() {
                walk(&path, into)?;
            } else if kind.is_file() {
                into.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    for path in paths {
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if meta.is_dir() {
            walk(path, &mut files)?;
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

async fn add(
    client: &Client,
    paths: &[PathBuf],
    collection: Option<&str>,
    tags: &[String],
    title: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let files = files_under(paths)?;
    if files.is_empty() {
        bail!("no files to add under the paths given (hidden files are skipped)");
    }
    if title.is_some() && files.len() > 1 {
        bail!(
            "--title names one artifact, but the paths hold {} files",
            files.len()
        );
    }
    let collection = match collection {
        Some(given) => Some(collection_id(client, given).await?),
        None => None,
    };
    let mut total = 0;
    for file in &files {
        total += std::fs::metadata(file)
            .with_context(|| format!("cannot read {}", file.display()))?
            .len();
    }
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut added = Vec::new();
    let mut failed = 0;
    for file in &files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        bar.set_message(name.clone());
        let mut query = format!("?name={}", encode(&name));
        if let Some(collection) = collection {
            query.push_str(&format!("&collection={collection}"));
        }
        if !tags.is_empty() {
            query.push_str(&format!("&tags={}", encode(&tags.join(","))));
        }
        if let Some(title) = &title {
            query.push_str(&format!("&title={}", encode(title)));
        }
        match upload_file(client, file, &query, &bar).await {
            Ok(artifact) => {
                if !json {
                    bar.suspend(|| {
                        output::line(&format!(
                            "{}  {}  {}",
                            artifact.id,
                            artifact.current.mime,
                            file.display()
                        ));
                    });
                }
                added.push(artifact);
            }
            Err(err) => {
                failed += 1;
                bar.suspend(|| output::error_line(&format!("{}: {err:#}", file.display())));
            }
        }
    }
    bar.finish_and_clear();
    if json {
        output::json(&added)?;
    } else if files.len() > 1 {
        output::note(&format!(
            "added {} of {} files; indexing continues in the background (`kai knowledge status`)",
            added.len(),
            files.len()
        ));
    }
    if failed > 0 {
        bail!("{failed} of {} files could not be added", files.len());
    }
    Ok(())
}

/// Streams one file to the server, moving the bar as its bytes go.
async fn upload_file(
    client: &Client,
    file: &Path,
    query: &str,
    bar: &ProgressBar,
) -> anyhow::Result<Artifact> {
    let opened = tokio::fs::File::open(file)
        .await
        .with_context(|| format!("cannot open {}", file.display()))?;
    let progress = bar.clone();
    let stream = tokio_util::io::ReaderStream::new(opened).inspect(move |chunk| {
        if let Ok(bytes) = chunk {
            progress.inc(bytes.len() as u64);
        }
    });
    client
        .upload(
            &format!("/api/v1/artifacts{query}"),
            reqwest::Body::wrap_stream(stream),
        )
        .await
}

async fn all_artifacts(
    client: &Client,
    collection: Option<Uuid>,
    tag: Option<&str>,
) -> anyhow::Result<Vec<Artifact>> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/artifacts?limit={PAGE_SIZE}");
        if let Some(collection) = collection {
            path.push_str(&format!("&collection={collection}"));
        }
        if let Some(tag) = tag {
            path.push_str(&format!("&tag={}", encode(tag)));
        }
        if let Some(cursor) = &after {
            path.push_str(&format!("&after={cursor}"));
        }
        let page: ArtifactPage = client.call(Method::GET, &path, None::<&()>).await?;
        all.extend(page.artifacts);
        match page.next_after {
            Some(next) => after = Some(next),
            None => return Ok(all),
        }
    }
}

fn state(artifact: &Artifact) -> String {
    serde_json::to_value(artifact.current.index_state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

async fn list(
    client: &Client,
    collection: Option<&str>,
    tag: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let collection = match collection {
        Some(given) => Some(collection_id(client, given).await?),
        None => None,
    };
    let artifacts = all_artifacts(client, collection, tag).await?;
    if json {
        return output::json(&artifacts);
    }
    if artifacts.is_empty() {
        output::note("no artifacts yet; add some with `kai artifact add PATH…`");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = artifacts
        .iter()
        .map(|a| {
            vec![
                a.id.to_string(),
                a.title.clone(),
                format!("v{}", a.current.version),
                a.current.mime.clone(),
                state(a),
                a.tags.join(","),
            ]
        })
        .collect();
    output::table(&["ID", "TITLE", "VER", "TYPE", "INDEX", "TAGS"], &rows);
    Ok(())
}

async fn show(client: &Client, id: Uuid, json: bool) -> anyhow::Result<()> {
    let artifact: Artifact = client
        .call(Method::GET, &format!("/api/v1/artifacts/{id}"), None::<&()>)
        .await?;
    let versions: ArtifactVersions = client
        .call(
            Method::GET,
            &format!("/api/v1/artifacts/{id}/versions"),
            None::<&()>,
        )
        .await?;
    if json {
        return output::json(&serde_json::json!({
            "artifact": artifact,
            "versions": versions.versions,
        }));
    }
    output::line(&format!("{}  {}", artifact.id, artifact.title));
    if !artifact.tags.is_empty() {
        output::line(&format!("tags: {}", artifact.tags.join(", ")));
    }
    if let Some(source) = &artifact.source {
        output::line(&format!("source: {source}"));
    }
    let rows: Vec<Vec<String>> = versions
        .versions
        .iter()
        .map(|v| {
            let index = serde_json::to_value(v.index_state)
                .ok()
                .and_then(|s| s.as_str().map(str::to_owned))
                .unwrap_or_default();
            vec![
                format!("v{}", v.version),
                output::timestamp(v.created_at),
                indicatif::HumanBytes(v.size).to_string(),
                v.mime.clone(),
                match &v.index_error {
                    Some(error) => format!("{index}: {error}"),
                    None => format!("{index} ({} chunks)", v.chunk_count),
                },
            ]
        })
        .collect();
    output::table(&["VERSION", "ADDED", "SIZE", "TYPE", "INDEX"], &rows);
    Ok(())
}

async fn get(
    client: &Client,
    id: Uuid,
    version: Option<u64>,
    target: Option<&Path>,
) -> anyhow::Result<()> {
    let path = match version {
        Some(version) => format!("/api/v1/artifacts/{id}/content?version={version}"),
        None => format!("/api/v1/artifacts/{id}/content"),
    };
    let response = client.fetch(&path).await?;
    let mut body = response.bytes_stream();
    match target {
        Some(target) => {
            // Written beside the target and renamed: an interrupted download leaves no
            // half-written file under its name.
            let partial = target.with_extension("kai-partial");
            let mut file = std::fs::File::create(&partial)
                .with_context(|| format!("cannot write {}", partial.display()))?;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.context("the download broke off")?;
                file.write_all(&chunk)
                    .with_context(|| format!("cannot write {}", partial.display()))?;
            }
            file.sync_all()?;
            std::fs::rename(&partial, target)
                .with_context(|| format!("cannot write {}", target.display()))?;
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            while let Some(chunk) = body.next().await {
                stdout.write_all(&chunk.context("the download broke off")?)?;
            }
        }
    }
    Ok(())
}

pub(crate) async fn collection(
    settings: &Settings,
    env: &Environment,
    command: CollectionCommand,
) -> anyhow::Result<()> {
    let client = connect::authenticated(settings, env)?;
    match command {
        CollectionCommand::New { name, description } => {
            let made: Collection = client
                .call(
                    Method::POST,
                    "/api/v1/collections",
                    Some(&CreateCollectionRequest { name, description }),
                )
                .await?;
            output::line(&made.id.to_string());
            Ok(())
        }
        CollectionCommand::List(args) => {
            let list: CollectionList = client
                .call(Method::GET, "/api/v1/collections", None::<&()>)
                .await?;
            if args.json {
                return output::json(&list.collections);
            }
            let rows: Vec<Vec<String>> = list
                .collections
                .iter()
                .map(|c| vec![c.id.to_string(), c.name.clone(), c.description.clone()])
                .collect();
            output::table(&["ID", "NAME", "DESCRIPTION"], &rows);
            Ok(())
        }
        CollectionCommand::Rm { collection } => {
            let id = collection_id(&client, &collection).await?;
            client
                .call_empty(
                    Method::DELETE,
                    &format!("/api/v1/collections/{id}"),
                    None::<&()>,
                )
                .await?;
            output::note(&format!("deleted collection {collection}"));
            Ok(())
        }
    }
}

pub(crate) async fn search(
    settings: &Settings,
    env: &Environment,
    args: SearchArgs,
) -> anyhow::Result<()> {
    let client = connect::authenticated(settings, env)?;
    let mut collections = Vec::new();
    for given in &args.collections {
        collections.push(collection_id(&client, given).await?);
    }
    let request = SearchRequest {
        query: args.query.join(" "),
        mode: match args.mode.as_str() {
            "keyword" => SearchMode::Keyword,
            "semantic" => SearchMode::Semantic,
            _ => SearchMode::Hybrid,
        },
        limit: Some(args.limit),
        collections,
        tags: args.tags,
        kind: args.kind,
        mime: args.mime,
        since: args.since,
        until: args.until,
        fusion: None,
    };
    let results: SearchResponse = client
        .call(Method::POST, "/api/v1/search", Some(&request))
        .await?;
    if args.json {
        return output::json(&results);
    }
    if let Some(why) = &results.degraded {
        output::warning(&format!("searched by keyword only: {why}"));
    }
    if results.hits.is_empty() {
        output::note("nothing found");
        return Ok(());
    }
    let bold = std::io::stdout().is_terminal();
    for (rank, hit) in results.hits.iter().enumerate() {
        let heading = hit
            .heading
            .as_deref()
            .map(|h| format!(" › {h}"))
            .unwrap_or_default();
        output::line(&format!(
            "{}. {} (v{}){heading}  [{}]",
            rank + 1,
            hit.title,
            hit.version,
            hit.item_id
        ));
        output::line(&format!(
            "   {}",
            marked(&hit.passage.text, &hit.passage.highlights, bold).replace('\n', " ")
        ));
    }
    Ok(())
}

/// The passage with its matches in bold on a terminal, or between `**` otherwise.
fn marked(text: &str, ranges: &[[usize; 2]], terminal: bool) -> String {
    let (open, close) = if terminal {
        ("\x1b[1m", "\x1b[0m")
    } else {
        ("**", "**")
    };
    let mut out = String::with_capacity(text.len() + ranges.len() * 8);
    let mut at = 0;
    for [start, end] in ranges {
        let (start, end) = ((*start).max(at), (*end).min(text.len()));
        if start >= end || !text.is_char_boundary(start) || !text.is_char_boundary(end) {
            continue;
        }
        out.push_str(&text[at..start]);
        out.push_str(open);
        out.push_str(&text[start..end]);
        out.push_str(close);
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

pub(crate) async fn knowledge(
    loaded: &Loaded,
    env: &Environment,
    command: KnowledgeCommand,
) -> anyhow::Result<()> {
    match command {
        KnowledgeCommand::Status(args) => {
            let client = connect::authenticated(&loaded.settings, env)?;
            let status: KnowledgeStatus = client
                .call(Method::GET, "/api/v1/knowledge/status", None::<&()>)
                .await?;
            if args.json {
                return output::json(&status);
            }
            output::line(&format!(
                "search indexes: {}",
                match status.search_index.as_str() {
                    "database" => "in the database (shared by every kai process)",
                    _ => "on disk (embedded)",
                }
            ));
            output::line(&format!("embedding model: {}", status.embedding_model));
            if status.vectors_from != status.embedding_model {
                output::line(&format!(
                    "re-embedding: {} of {} chunks done; search by meaning answers with {} \
                     meanwhile",
                    status.chunks_embedded, status.chunks, status.vectors_from
                ));
            }
            output::line(&format!(
                "your versions: {} indexed, {} keyword-only (waiting for vectors), {} pending, \
                 {} failed, {} binary (not indexed)",
                status.indexed, status.keyword_only, status.pending, status.failed, status.skipped
            ));
            output::line(&format!(
                "indexing jobs: {} queued, {} running, {} given up",
                status.jobs_queued, status.jobs_running, status.jobs_dead
            ));
            Ok(())
        }
        KnowledgeCommand::Reindex => {
            let core = crate::commands::serve::Core::start(&loaded.settings).await?;
            let queue = kai_jobs::Queue::new(core.store.clone());
            let knowledge = crate::knowledge::open(
                &loaded.settings,
                core.store.clone(),
                core.trust.vault().clone(),
                queue,
                core.gateway.clone(),
                core.events.clone(),
            )
            .await?;
            let waiting = output::Waiting::start("rebuilding the search indexes");
            let rebuilt = knowledge.reindex().await;
            drop(waiting);
            let rebuilt = rebuilt.context("cannot rebuild the search indexes")?;
            output::note(&format!(
                "indexed {} chunks again; {} versions queued for indexing at the next start",
                rebuilt.added, rebuilt.requeued
            ));
            if knowledge.uses_database() {
                output::note(
                    "the search indexes live in the database, which keeps them in step with \
                     its rows: only vectors missing from them were added",
                );
            }
            core.close().await;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::marked;

    #[test]
    fn matches_are_marked_and_bad_ranges_ignored() {
        assert_eq!(
            marked("find the yeast", &[[9, 14]], false),
            "find the **yeast**"
        );
        assert_eq!(marked("é", &[[1, 2]], false), "é");
        assert_eq!(marked("abc", &[[2, 9]], false), "ab**c**");
    }
}
