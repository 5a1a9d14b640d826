//! Audit log throughput: appended entries per second with many concurrent callers (each waiting
//! for its entry to be durable, as an action must), then verification speed over the result.
//! Run by `bench/audit/run.sh`; prints one JSON line.
//!
//! `cargo run --release -p kai-audit --example throughput -- [ENTRIES] [CALLERS] [DATABASE_URL]`
//! With no URL, a SQLite file in a temporary directory. The allocator is the `kai` binary's.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::time::Instant;

use kai_audit::{Action, Actor, AuditLog, Event, Outcome, verify_store};
use kai_config::{AuditSettings, ByteSize, DatabaseSettings, DatabaseUrl, VaultSettings};
use kai_core::UserId;
use kai_store::Store;
use kai_vault::{Passphrase, UnlockKey, Vault};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let entries: usize = args.next().map_or(100_000, |n| n.parse().unwrap());
    let callers: usize = args.next().map_or(256, |n| n.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let url = match args.next() {
        Some(url) => DatabaseUrl::parse(&url).unwrap(),
        None => DatabaseUrl::sqlite_in(dir.path()),
    };
    let store = Store::connect(
        &url,
        &DatabaseSettings {
            max_connections: 8,
            connect_timeout: std::time::Duration::from_secs(10),
            busy_timeout: std::time::Duration::from_secs(10),
        },
    )
    .await
    .unwrap();
    let vault = Vault::new(
        store.clone(),
        &VaultSettings {
            key_file: None,
            passphrase_file: None,
            kdf_memory: ByteSize::mib(19),
            kdf_iterations: 2,
            kdf_parallelism: 1,
        },
    );
    vault
        .init(&[UnlockKey::Passphrase(Passphrase::new(
            "benchmark passphrase".into(),
        ))])
        .await
        .unwrap();
    let log = AuditLog::new(
        store.clone(),
        vault.clone(),
        &AuditSettings {
            checkpoint_entries: 10_000,
            checkpoint_interval: std::time::Duration::from_secs(60),
        },
    );

    let started = Instant::now();
    let mut tasks = Vec::new();
    for caller in 0..callers {
        let log = log.clone();
        let count = entries / callers + usize::from(caller < entries % callers);
        tasks.push(tokio::spawn(async move {
            let user = Actor::User(UserId::new());
            for i in 0..count {
                let event = Event::new(
                    user,
                    Action::SecretRead,
                    format!("secret:user:{caller}/s{i}"),
                    Outcome::Success,
                )
                .with("input_tokens", 128)
                .with("output_tokens", 64)
                .with("request_id", format!("{caller}-{i}"));
                log.record(event).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let append_secs = started.elapsed().as_secs_f64();

    let key = vault.public_identity().await.unwrap().unwrap().signing;
    let started = Instant::now();
    let report = verify_store(&store, key).await.unwrap();
    let verify_secs = started.elapsed().as_secs_f64();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.entries, entries as u64);
    println!(
        "{{\"backend\":\"{}\",\"entries\":{entries},\"callers\":{callers},\"append_per_s\":{:.0},\"verify_per_s\":{:.0},\"checkpoints\":{}}}",
        if url.expose().starts_with("postgres") {
            "postgres"
        } else {
            "sqlite"
        },
        entries as f64 / append_secs,
        entries as f64 / verify_secs,
        report.checkpoints
    );
}
