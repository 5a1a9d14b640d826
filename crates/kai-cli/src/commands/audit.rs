//! `kai audit verify|export`: the audit log in the local database, or an export file offline.

use std::io::{BufReader, Write as _};

use anyhow::{Context, bail};
use kai_audit::{ExportFile, Report, hex};
use kai_config::Settings;
use kai_vault::crypto::VerifyingKey;
use serde::Serialize;

use crate::cli::AuditCommand;
use crate::output;
use crate::trust::Local;

pub(crate) async fn run(settings: &Settings, command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify {
            file: Some(path),
            key,
            output: format,
        } => {
            let file = std::fs::File::open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            let export = ExportFile::read(BufReader::new(file))
                .with_context(|| format!("cannot read {}", path.display()))?;
            let key = match key {
                Some(did) => VerifyingKey::from_did_key(&did)
                    .with_context(|| format!("--key {did:?} is not an Ed25519 did:key"))?,
                None => {
                    output::warning(&format!(
                        "verifying against the key the file names ({}); pass --key with the did \
                         `kai identity show` prints on the node to prove who wrote it",
                        export.node.did_key()
                    ));
                    export.node
                }
            };
            if key != export.node {
                output::warning(
                    "the file names another node than --key; every signature will fail",
                );
            }
            let report = export.verify(key);
            finish(&report, &key, format.json)
        }
        AuditCommand::Verify {
            file: None,
            key,
            output: format,
        } => {
            let local = Local::open(settings).await?;
            let result = async {
                let key = match key {
                    Some(did) => VerifyingKey::from_did_key(&did)
                        .with_context(|| format!("--key {did:?} is not an Ed25519 did:key"))?,
                    None => {
                        local
                            .trust
                            .vault()
                            .public_identity()
                            .await?
                            .context(
                                "there is no vault yet, so no key the log could be signed with",
                            )?
                            .signing
                    }
                };
                let report = kai_audit::verify_store(&local.store, key).await?;
                anyhow::Ok((report, key))
            }
            .await;
            local.close().await;
            let (report, key) = result?;
            finish(&report, &key, format.json)
        }
        AuditCommand::Export { output: path } => {
            let local = Local::open(settings).await?;
            let result = async {
                let key = local
                    .trust
                    .vault()
                    .public_identity()
                    .await?
                    .context("there is no vault yet, so nothing to export")?
                    .signing;
                match &path {
                    Some(path) => {
                        let file = std::fs::File::create(path)
                            .with_context(|| format!("cannot create {}", path.display()))?;
                        let mut out = std::io::BufWriter::new(file);
                        let written = kai_audit::export(&local.store, key, &mut out).await?;
                        out.into_inner()
                            .map_err(|err| err.into_error())?
                            .sync_all()?;
                        output::line(&format!(
                            "exported {written} entries to {}; verify with `kai audit verify --file {} --key {}`",
                            path.display(),
                            path.display(),
                            key.did_key()
                        ));
                    }
                    None => {
                        let mut out = std::io::BufWriter::new(std::io::stdout());
                        kai_audit::export(&local.store, key, &mut out).await?;
                        out.flush()?;
                    }
                }
                anyhow::Ok(())
            }
            .await;
            local.close().await;
            result
        }
    }
}

#[derive(Serialize)]
struct ReportJson<'a> {
    intact: bool,
    node: String,
    entries: u64,
    checkpoints: u64,
    unsigned: u64,
    root: Option<String>,
    problems: Vec<ProblemJson<'a>>,
}

#[derive(Serialize)]
struct ProblemJson<'a> {
    seq: Option<u64>,
    checkpoint: Option<u64>,
    message: &'a str,
}

/// Prints the report; fails (exit 1) unless the log is intact.
fn finish(report: &Report, key: &VerifyingKey, json: bool) -> anyhow::Result<()> {
    if json {
        output::json(&ReportJson {
            intact: report.is_intact(),
            node: key.did_key(),
            entries: report.entries,
            checkpoints: report.checkpoints,
            unsigned: report.unsigned,
            root: report.root.map(|root| hex(&root)),
            problems: report
                .problems
                .iter()
                .map(|problem| ProblemJson {
                    seq: problem.seq,
                    checkpoint: problem.checkpoint,
                    message: &problem.message,
                })
                .collect(),
        })?;
    } else {
        for problem in &report.problems {
            output::line(&problem.message);
        }
        if report.unsigned > 0 {
            output::line(&format!(
                "{} entries are not signed yet: they were appended while the vault was locked; \
                 unlock it to sign them",
                report.unsigned
            ));
        }
        if report.is_intact() {
            let checkpoint = report.latest_checkpoint.map_or_else(
                || "no checkpoint yet".to_owned(),
                |(size, root)| format!("latest checkpoint at {size} entries, root {}", hex(&root)),
            );
            output::line(&format!(
                "ok: {} entries and {} checkpoints verify against {} ({checkpoint})",
                report.entries,
                report.checkpoints,
                key.did_key()
            ));
        }
    }
    if !report.is_intact() {
        bail!(
            "the audit log does not verify: {} problems, {} unsigned entries",
            report.problems.len(),
            report.unsigned
        );
    }
    Ok(())
}
