//! `kai models …`: the local model store, worked on directly in `local.models_dir`. No server
//! is needed, and a running one is no obstacle: each pull or removal locks its model's name.

use std::io::IsTerminal;
use std::sync::Mutex;

use anyhow::bail;
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use kai_config::{Environment, Settings};
use kai_model_store::{
    DEFAULT_MODELS, Fetcher, InstalledModel, Listing, ModelStore, PullEvent, PullOptions,
    PullOutcome, StoreError,
};

use crate::cli::{ModelsCommand, PullArgs};
use crate::output;

pub(crate) async fn run(
    settings: &Settings,
    env: &Environment,
    command: ModelsCommand,
) -> anyhow::Result<()> {
    let store = ModelStore::new(&settings.local.models_dir);
    match command {
        ModelsCommand::Pull(args) => pull(&store, settings, env, args).await,
        ModelsCommand::List(format) => list(&store, format.json),
        ModelsCommand::Rm { name } => {
            store.remove(&name)?;
            output::line(&format!("removed {name}"));
            Ok(())
        }
        ModelsCommand::Verify { names } => verify(&store, names),
    }
}

async fn pull(
    store: &ModelStore,
    settings: &Settings,
    env: &Environment,
    args: PullArgs,
) -> anyhow::Result<()> {
    let sources: Vec<String> = if args.sources.is_empty() {
        DEFAULT_MODELS
            .iter()
            .map(|name| (*name).to_owned())
            .collect()
    } else {
        args.sources
    };
    if args.name.is_some() && sources.len() != 1 {
        bail!("--name names one model; pull the sources one at a time to name each");
    }
    let fetcher = Fetcher::new(&settings.local, env)?;
    let options = PullOptions {
        name: args.name,
        force: args.force,
    };
    for source in &sources {
        let display = Progress::new();
        let outcome = store
            .pull(&fetcher, source, &options, &|event| display.show(event))
            .await;
        display.finish();
        match outcome? {
            PullOutcome::Unchanged(model) => output::line(&format!(
                "{} is already installed from {}; --force pulls it again",
                model.manifest.name, model.manifest.source
            )),
            PullOutcome::Installed { model, replaced } => output::line(&format!(
                "{} {} ({}) from {}",
                if replaced { "replaced" } else { "installed" },
                model.manifest.name,
                summary(&model),
                model.manifest.source
            )),
        }
    }
    Ok(())
}

fn list(store: &ModelStore, json: bool) -> anyhow::Result<()> {
    let Listing { models, damaged } = store.scan()?;
    // On stderr, so that the table and the JSON stay what scripts read.
    for (_, err) in &damaged {
        output::note(&format!("left out: {err}"));
    }
    if json {
        let models: Vec<kai_proto::LocalModel> = models.iter().map(Into::into).collect();
        return output::json(&models);
    }
    if models.is_empty() && damaged.is_empty() {
        output::note(&format!(
            "no models in {}; `kai models pull` pulls the defaults ({})",
            store.root().display(),
            DEFAULT_MODELS.join(", ")
        ));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = models
        .iter()
        .map(|model| {
            let manifest = &model.manifest;
            vec![
                manifest.name.clone(),
                manifest.kind.to_string(),
                manifest.format.to_string(),
                HumanBytes(model.size()).to_string(),
                manifest.source.clone(),
                output::timestamp(manifest.pulled_at),
            ]
        })
        .collect();
    output::table(
        &["NAME", "KIND", "FORMAT", "SIZE", "SOURCE", "PULLED"],
        &rows,
    );
    Ok(())
}

fn verify(store: &ModelStore, names: Vec<String>) -> anyhow::Result<()> {
    let mut damaged = Vec::new();
    let names = if names.is_empty() {
        let listing = store.scan()?;
        for (name, err) in &listing.damaged {
            output::line(&format!("{name}: damaged: {err}"));
        }
        damaged.extend(listing.damaged.into_iter().map(|(name, _)| name));
        listing
            .models
            .into_iter()
            .map(|model| model.manifest.name)
            .collect()
    } else {
        names
    };
    if names.is_empty() && damaged.is_empty() {
        output::note("no models are installed; there is nothing to verify");
        return Ok(());
    }
    let total = names.len() + damaged.len();
    for name in &names {
        match store.verify(name) {
            Ok(model) => output::line(&format!("{name}: ok ({})", summary(&model))),
            Err(err @ StoreError::Corrupt { .. }) => {
                output::line(&format!("{name}: damaged: {err}"));
                damaged.push(name.clone());
            }
            Err(err) => return Err(err.into()),
        }
    }
    if !damaged.is_empty() {
        bail!(
            "{} of {} models are damaged; repair them with `kai models pull {}`",
            damaged.len(),
            total,
            damaged.join(" ")
        );
    }
    Ok(())
}

/// "chat, gguf, 98.37 MiB in 1 file".
fn summary(model: &InstalledModel) -> String {
    let files = model.manifest.files.len();
    format!(
        "{}, {}, {} in {files} file{}",
        model.manifest.kind,
        model.manifest.format,
        HumanBytes(model.size()),
        if files == 1 { "" } else { "s" }
    )
}

/// A pull's progress on stderr: a line per step, a bar (bytes, rate, time left) per download.
/// Shown on a terminal only; in scripts and logs only the outcome and errors appear.
struct Progress {
    shown: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            shown: std::io::stderr().is_terminal(),
            bar: Mutex::new(None),
        }
    }

    fn show(&self, event: PullEvent<'_>) {
        if !self.shown {
            return;
        }
        let mut bar = self
            .bar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            PullEvent::Step(text) => match bar.as_ref() {
                Some(bar) => bar.suspend(|| output::note(text)),
                None => output::note(text),
            },
            PullEvent::DownloadStarted {
                file,
                total,
                resumed_from,
            } => {
                let (new, template) = match total {
                    Some(total) => (
                        ProgressBar::new(total),
                        "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
                    ),
                    None => (
                        ProgressBar::no_length(),
                        "{msg} {bytes} {binary_bytes_per_sec}",
                    ),
                };
                let style = ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
                new.set_style(style);
                new.set_message(file.to_owned());
                new.set_position(resumed_from);
                // The rate and time left are of this connection, not of bytes an earlier one
                // fetched.
                new.reset_eta();
                if let Some(old) = bar.replace(new) {
                    old.finish_and_clear();
                }
            }
            PullEvent::DownloadProgress { done } => {
                if let Some(bar) = bar.as_ref() {
                    bar.set_position(done);
                }
            }
            PullEvent::DownloadFinished => {
                if let Some(bar) = bar.take() {
                    bar.finish();
                }
            }
            PullEvent::Retrying { why, wait } => {
                let text = format!("{why}; trying again in {} s", wait.as_secs_f32());
                if let Some(old) = bar.take() {
                    old.finish_and_clear();
                }
                output::warning(&text);
            }
        }
    }

    /// Clears a bar a failed pull left.
    fn finish(&self) {
        let mut bar = self
            .bar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(bar) = bar.take() {
            bar.finish_and_clear();
        }
    }
}
