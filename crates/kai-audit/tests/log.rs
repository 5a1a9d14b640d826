//! The audit log against a real database: appends from several writers chain, checkpoints and
//! proofs verify, and every kind of tampering is found and named.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use kai_audit::merkle::{self, Hash};
use kai_audit::{Action, Actor, AuditLog, Event, ExportFile, Outcome, Report, verify_store};
use kai_config::{AuditSettings, ByteSize, VaultSettings};
use kai_core::UserId;
use kai_store::Store;
use kai_store::testing::TestDatabase;
use kai_vault::{Passphrase, UnlockKey, Vault};

const PASSPHRASE: &str = "correct horse battery staple";

fn vault_settings() -> VaultSettings {
    VaultSettings {
        key_file: None,
        passphrase_file: None,
        kdf_memory: ByteSize::mib(19),
        kdf_iterations: 2,
        kdf_parallelism: 1,
    }
}

fn audit_settings(every: u64) -> AuditSettings {
    AuditSettings {
        checkpoint_entries: every,
        checkpoint_interval: Duration::from_secs(3600),
    }
}

async fn unlocked_vault(store: &Store) -> Vault {
    let vault = Vault::new(store.clone(), &vault_settings());
    vault
        .init(&[UnlockKey::Passphrase(Passphrase::new(PASSPHRASE.into()))])
        .await
        .unwrap();
    vault
}

/// One of three users, by number: the same ids every run, so tampering can name them.
fn user(n: usize) -> UserId {
    format!("00000000-0000-7000-8000-00000000000{n}")
        .parse()
        .unwrap()
}

fn event(i: usize) -> Event {
    Event::new(
        Actor::User(user(i % 3)),
        if i.is_multiple_of(2) {
            Action::SecretRead
        } else {
            Action::AuthLogin
        },
        format!("secret:node/s{i}"),
        Outcome::Success,
    )
    .with("i", i as u64)
}

/// A log of `n` entries with a checkpoint every `every`, signed, and its public key.
async fn log_with(db: &TestDatabase, n: usize, every: u64) -> (Store, AuditLog, Vault) {
    let store = db.store().await;
    let vault = unlocked_vault(&store).await;
    let log = AuditLog::new(store.clone(), vault.clone(), &audit_settings(every));
    for i in 0..n {
        log.record(event(i)).await.unwrap();
    }
    (store, log, vault)
}

async fn verify(store: &Store, vault: &Vault) -> Report {
    let key = vault.public_identity().await.unwrap().unwrap().signing;
    verify_store(store, key).await.unwrap()
}

fn first_problem(report: &Report) -> (Option<u64>, Option<u64>, String) {
    let problem = report
        .problems
        .first()
        .unwrap_or_else(|| panic!("no problem found: {report:?}"));
    (problem.seq, problem.checkpoint, problem.message.clone())
}

#[tokio::test]
async fn concurrent_appends_chain_sign_and_checkpoint() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let vault = unlocked_vault(&store).await;
    // Two processes' worth of writers (each its own pool and writer task) on one database.
    let other_store = db.store().await;
    let logs = [
        AuditLog::new(store.clone(), vault.clone(), &audit_settings(25)),
        AuditLog::new(other_store.clone(), vault.clone(), &audit_settings(25)),
    ];
    let mut tasks = Vec::new();
    for task in 0..8 {
        let log = logs[task % 2].clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..20 {
                seqs.push(log.record(event(task * 100 + i)).await.unwrap());
            }
            seqs
        }));
    }
    let mut seqs: Vec<u64> = Vec::new();
    for task in tasks {
        seqs.extend(task.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (0..160).collect::<Vec<u64>>(),
        "every entry got its own place"
    );

    let report = verify(&store, &vault).await;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.entries, 160);
    assert!(report.checkpoints >= 1, "{report:?}");
    let checkpoint = logs[0].checkpoint().await.unwrap().unwrap();
    assert_eq!(checkpoint.size, 160);
    assert_eq!(Some(checkpoint.root), report.root);
}

#[tokio::test]
async fn proofs_verify_against_signed_checkpoints() {
    let db = TestDatabase::new().await;
    let (_store, log, _vault) = log_with(&db, 37, 10).await;
    log.checkpoint().await.unwrap();
    let checkpoints = log.checkpoints().await.unwrap();
    let sizes: Vec<u64> = checkpoints.iter().map(|c| c.size).collect();
    assert_eq!(sizes, vec![10, 20, 30, 37]);
    let leaves: Vec<Hash> = log
        .entries(&kai_store::AuditFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .iter()
        .map(|row| merkle::leaf_hash(row.entry.as_bytes()))
        .collect();
    for checkpoint in &checkpoints {
        for seq in [0, checkpoint.size / 2, checkpoint.size - 1] {
            let (proof, root) = log.inclusion_proof(seq, checkpoint.size).await.unwrap();
            assert_eq!(root, checkpoint.root);
            assert!(merkle::verify_inclusion(
                &leaves[seq as usize],
                seq,
                checkpoint.size,
                &proof,
                &checkpoint.root
            ));
        }
    }
    for pair in checkpoints.windows(2) {
        let (proof, old, new) = log
            .consistency_proof(pair[0].size, pair[1].size)
            .await
            .unwrap();
        assert_eq!((old, new), (pair[0].root, pair[1].root));
        assert!(merkle::verify_consistency(
            pair[0].size,
            pair[1].size,
            &old,
            &new,
            &proof
        ));
    }
    assert!(log.inclusion_proof(37, 37).await.is_err());
    assert!(log.inclusion_proof(0, 38).await.is_err());
    assert!(log.consistency_proof(0, 10).await.is_err());
    assert!(log.consistency_proof(20, 10).await.is_err());
}

#[tokio::test]
async fn edits_deletions_reorderings_and_insertions_are_named() {
    let db = TestDatabase::new().await;
    let (store, log, vault) = log_with(&db, 12, 100).await;
    log.checkpoint().await.unwrap();
    assert!(verify(&store, &vault).await.is_intact());

    // An edit of an entry's content (and of the column copied from it).
    store
        .tamper("UPDATE audit_entries SET entry = replace(entry, '\"user:00000000-0000-7000-8000-000000000001\"', '\"user:00000000-0000-7000-8000-000000000002\"'), actor = 'user:00000000-0000-7000-8000-000000000002' WHERE seq = 4")
        .await;
    let report = verify(&store, &vault).await;
    let (seq, _, message) = first_problem(&report);
    assert_eq!(seq, Some(4), "{report:?}");
    assert!(message.contains("entry 4"), "{message}");
    assert!(
        report.problems.iter().any(|p| p.checkpoint == Some(12)),
        "{report:?}"
    );
    store
        .tamper("UPDATE audit_entries SET entry = replace(entry, '\"user:00000000-0000-7000-8000-000000000002\"', '\"user:00000000-0000-7000-8000-000000000001\"'), actor = 'user:00000000-0000-7000-8000-000000000001' WHERE seq = 4")
        .await;
    assert!(verify(&store, &vault).await.is_intact());

    // A deletion.
    store
        .tamper("DELETE FROM audit_entries WHERE seq = 7")
        .await;
    let (seq, _, message) = first_problem(&verify(&store, &vault).await);
    assert_eq!(seq, Some(8));
    assert!(message.contains("entry 7 is missing"), "{message}");

    // A reordering: entries 2 and 3 swap places (content, hash and signature together).
    let db2 = TestDatabase::new().await;
    let (store2, _log2, vault2) = log_with(&db2, 6, 100).await;
    store2
        .tamper("UPDATE audit_entries SET seq = 100 WHERE seq = 2")
        .await;
    store2
        .tamper("UPDATE audit_entries SET seq = 2 WHERE seq = 3")
        .await;
    store2
        .tamper("UPDATE audit_entries SET seq = 3 WHERE seq = 100")
        .await;
    let (seq, _, message) = first_problem(&verify(&store2, &vault2).await);
    assert_eq!(seq, Some(2));
    assert!(message.contains("says it is entry 3"), "{message}");

    // An insertion: later entries moved up one, a forged one in the gap.
    let db3 = TestDatabase::new().await;
    let (store3, _log3, vault3) = log_with(&db3, 6, 100).await;
    store3
        .tamper("UPDATE audit_entries SET seq = seq + 1000 WHERE seq >= 3")
        .await;
    store3
        .tamper("UPDATE audit_entries SET seq = seq - 999 WHERE seq >= 1000")
        .await;
    store3
        .tamper(
            "INSERT INTO audit_entries (seq, created_at, actor, action, entry, hash, signature) \
             SELECT 3, created_at, actor, action, entry, hash, signature FROM audit_entries WHERE seq = 2",
        )
        .await;
    let report = verify(&store3, &vault3).await;
    let (seq, _, message) = first_problem(&report);
    assert_eq!(seq, Some(3), "{report:?}");
    assert!(
        message.contains("stored at 3 says it is entry 2"),
        "{message}"
    );
}

#[tokio::test]
async fn any_changed_byte_of_an_entry_or_checkpoint_is_detected() {
    let db = TestDatabase::new().await;
    let (store, log, vault) = log_with(&db, 3, 100).await;
    log.checkpoint().await.unwrap();
    let row = store.audit_range(1, 2).await.unwrap().remove(0);

    // Each character of entry 1's text, changed to another printable one.
    let original = row.entry.clone();
    for index in 0..original.len() {
        let mut changed = original.clone().into_bytes();
        changed[index] = if changed[index] == b'x' { b'y' } else { b'x' };
        let changed = String::from_utf8(changed).unwrap();
        store
            .tamper(&format!(
                "UPDATE audit_entries SET entry = '{}' WHERE seq = 1",
                changed.replace('\'', "''")
            ))
            .await;
        let report = verify(&store, &vault).await;
        assert!(
            report.problems.iter().any(|p| p.seq == Some(1)),
            "changing byte {index} of entry 1 went unnoticed: {report:?}"
        );
    }
    store
        .tamper(&format!(
            "UPDATE audit_entries SET entry = '{}' WHERE seq = 1",
            original.replace('\'', "''")
        ))
        .await;
    assert!(verify(&store, &vault).await.is_intact());

    // Every bit of its hash and signature.
    for (column, len) in [("hash", 32), ("signature", 64)] {
        for bit in (0..len * 8).step_by(5) {
            store
                .flip_bit("audit_entries", column, "seq", "1", bit)
                .await;
            let report = verify(&store, &vault).await;
            assert!(
                report.problems.iter().any(|p| p.seq == Some(1)),
                "bit {bit} of {column} went unnoticed"
            );
            store
                .flip_bit("audit_entries", column, "seq", "1", bit)
                .await;
        }
    }

    // Every byte of the checkpoint's root and signature, and its body.
    for (column, len) in [("root", 32), ("signature", 64)] {
        for bit in (0..len * 8).step_by(7) {
            store
                .flip_bit("audit_checkpoints", column, "size", "3", bit)
                .await;
            let (_, checkpoint, _) = first_problem(&verify(&store, &vault).await);
            assert_eq!(
                checkpoint,
                Some(3),
                "bit {bit} of the checkpoint's {column}"
            );
            store
                .flip_bit("audit_checkpoints", column, "size", "3", bit)
                .await;
        }
    }
    store
        .tamper("UPDATE audit_checkpoints SET body = replace(body, '\"size\":3', '\"size\":2')")
        .await;
    let (_, checkpoint, _) = first_problem(&verify(&store, &vault).await);
    assert_eq!(checkpoint, Some(3));
}

#[tokio::test]
async fn truncating_the_log_is_caught_by_its_checkpoint() {
    let db = TestDatabase::new().await;
    let (store, log, vault) = log_with(&db, 5, 100).await;
    log.checkpoint().await.unwrap();
    store
        .tamper("DELETE FROM audit_entries WHERE seq >= 3")
        .await;
    let report = verify(&store, &vault).await;
    let (_, checkpoint, message) = first_problem(&report);
    assert_eq!(checkpoint, Some(5));
    assert!(message.contains("cut off"), "{message}");
}

#[tokio::test]
async fn deleting_the_newest_entries_is_caught_by_the_head() {
    let db = TestDatabase::new().await;
    let (store, log, vault) = log_with(&db, 10, 100).await;
    log.checkpoint().await.unwrap();
    for seq in 10..13 {
        log.record(event(seq)).await.unwrap();
    }
    assert!(verify(&store, &vault).await.is_intact());
    // No checkpoint covers entries 10 to 12: the head is what still remembers them.
    store
        .tamper("DELETE FROM audit_entries WHERE seq >= 10")
        .await;
    let report = verify(&store, &vault).await;
    assert_eq!(report.problems.len(), 1, "{report:?}");
    let (seq, checkpoint, message) = first_problem(&report);
    assert_eq!((seq, checkpoint), (Some(12), None));
    assert!(
        message.contains("records 13 entries but only 10 remain: entries 10 to 12 were deleted"),
        "{message}"
    );

    // The head remembers another last entry than the one the log ends with.
    let db = TestDatabase::new().await;
    let (store, _log, vault) = log_with(&db, 4, 100).await;
    store
        .tamper("UPDATE audit_head SET last_hash = (SELECT hash FROM audit_entries WHERE seq = 0)")
        .await;
    let (seq, _, message) = first_problem(&verify(&store, &vault).await);
    assert_eq!(seq, Some(3));
    assert!(
        message.contains("the end of the log was rewritten"),
        "{message}"
    );
}

#[tokio::test]
async fn entries_appended_while_locked_are_signed_at_unlock() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let vault = unlocked_vault(&store).await;
    let log = AuditLog::new(store.clone(), vault.clone(), &audit_settings(100));
    log.record(event(0)).await.unwrap();
    vault.lock();
    log.record(event(1)).await.unwrap();
    log.record(event(2)).await.unwrap();
    let report = verify(&store, &vault).await;
    assert_eq!(report.unsigned, 2);
    assert!(report.problems.is_empty() && !report.is_intact());
    assert!(
        log.checkpoint().await.is_err(),
        "no checkpoint without the key"
    );

    vault
        .unlock(&UnlockKey::Passphrase(Passphrase::new(PASSPHRASE.into())))
        .await
        .unwrap();
    assert_eq!(log.sign_pending().await.unwrap(), 2);
    log.record(event(3)).await.unwrap();
    let report = verify(&store, &vault).await;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.entries, 4);
}

#[tokio::test]
async fn exports_verify_offline_with_the_public_key_alone() {
    let db = TestDatabase::new().await;
    let (store, log, vault) = log_with(&db, 30, 8).await;
    log.checkpoint().await.unwrap();
    let key = vault.public_identity().await.unwrap().unwrap().signing;
    let mut file = Vec::new();
    assert_eq!(kai_audit::export(&store, key, &mut file).await.unwrap(), 30);
    drop((store, log, vault));
    drop(db);

    let export = ExportFile::read(file.as_slice()).unwrap();
    assert_eq!(export.node, key);
    let report = export.verify(key);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.entries, report.checkpoints), (30, 4));

    // Another key: every signature fails.
    let other = kai_vault::crypto::SigningKey::generate().verifying_key();
    assert!(!export.verify(other).problems.is_empty());

    // An edited line is named by its entry.
    let text = String::from_utf8(file.clone()).unwrap();
    let edited = text.replacen("\\\"i\\\":17", "\\\"i\\\":71", 1);
    assert_ne!(edited, text);
    let report = ExportFile::read(edited.as_bytes()).unwrap().verify(key);
    assert_eq!(first_problem(&report).0, Some(17), "{report:?}");

    // A file that is not an export is refused by line.
    let err = ExportFile::read(&b"{\"hello\":1}\n"[..])
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 1"), "{err}");
    let broken = format!(
        "{}not json\n",
        text.lines().next().unwrap().to_owned() + "\n"
    );
    let err = ExportFile::read(broken.as_bytes()).unwrap_err().to_string();
    assert!(err.contains("line 2"), "{err}");
}

#[tokio::test]
async fn a_quiet_log_is_checkpointed_after_the_interval() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let vault = unlocked_vault(&store).await;
    let settings = AuditSettings {
        checkpoint_entries: 1_000,
        checkpoint_interval: Duration::from_millis(300),
    };
    let log = AuditLog::new(store.clone(), vault.clone(), &settings);
    for i in 0..3 {
        log.record(event(i)).await.unwrap();
    }
    // No further event comes; the last ones are checkpointed all the same.
    let mut covered = 0;
    for _ in 0..50 {
        covered = store.latest_audit_checkpoint().await.unwrap();
        if covered == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(covered, 3);
    assert!(verify(&store, &vault).await.is_intact());
}
