//! `kai vault`, `kai secret`, `kai identity` and `kai audit` on a real data directory, and the
//! key changes killed at every step.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use support::{Kai, assert_one_line_failure, output_with_stdin, stderr, stdout};

const PASSPHRASE: &str = "correct horse battery staple";

/// The binary with cheap Argon2id parameters (OWASP's minimum) and a passphrase file.
fn vault_command(kai: &Kai, passphrase_file: &Path, args: &[&str]) -> Command {
    let mut command = kai.command(args);
    command
        .env("KAI_VAULT_KDF_MEMORY", "19MiB")
        .env("KAI_VAULT_KDF_ITERATIONS", "2")
        .env("KAI_VAULT_PASSPHRASE_FILE", passphrase_file);
    command
}

fn passphrase_file(kai: &Kai, name: &str, passphrase: &str) -> PathBuf {
    let path = kai.home.path().join(name);
    std::fs::write(&path, format!("{passphrase}\n")).unwrap();
    path
}

fn run(command: &mut Command) -> Output {
    command.output().unwrap()
}

#[track_caller]
fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

#[tokio::test]
async fn secrets_identity_and_a_verifiable_audit_log_from_the_command_line() {
    let kai = Kai::new().await;
    let file = passphrase_file(&kai, "passphrase", PASSPHRASE);

    // Nothing works before the vault exists, and says what to do.
    let out = run(&mut vault_command(
        &kai,
        &file,
        &["secret", "get", "openai"],
    ));
    assert_one_line_failure(&out, &["kai vault init"]);
    let out = run(&mut vault_command(&kai, &file, &["identity", "show"]));
    assert_one_line_failure(&out, &["kai vault init"]);

    let created = ok(&run(&mut vault_command(&kai, &file, &["vault", "init"])));
    assert!(created.contains("did:key:z6Mk"), "{created}");
    let identity: Value = serde_json::from_str(&ok(&run(&mut vault_command(
        &kai,
        &file,
        &["identity", "show", "--json"],
    ))))
    .unwrap();
    let did = identity["did"].as_str().unwrap().to_owned();
    assert!(created.contains(&did));
    assert_eq!(identity["kid"], did.replace("did:key:", "kid:"));
    let out = run(&mut vault_command(&kai, &file, &["vault", "init"]));
    assert_one_line_failure(&out, &["already initialised"]);

    // A value comes from stdin, never from the command line.
    let out = run(&mut vault_command(
        &kai,
        &file,
        &["secret", "set", "openai", "sk-live-123"],
    ));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unexpected argument"),
        "{}",
        stderr(&out)
    );
    ok(&output_with_stdin(
        vault_command(
            &kai,
            &file,
            &["secret", "set", "openai", "--description", "OpenAI"],
        ),
        "sk-live-123\n",
    ));
    let value = ok(&run(&mut vault_command(
        &kai,
        &file,
        &["secret", "get", "openai"],
    )));
    assert_eq!(value, "sk-live-123\n");
    let listed: Value = serde_json::from_str(&ok(&run(&mut vault_command(
        &kai,
        &file,
        &["secret", "list", "--json"],
    ))))
    .unwrap();
    assert_eq!(listed[0]["name"], "openai");
    assert_eq!(listed[0]["description"], "OpenAI");
    let out = output_with_stdin(
        vault_command(&kai, &file, &["secret", "set", "bad name"]),
        "x\n",
    );
    assert_one_line_failure(&out, &["not valid"]);
    let out = run(&mut vault_command(
        &kai,
        &file,
        &["secret", "get", "nothing"],
    ));
    assert_one_line_failure(&out, &["no secret called nothing"]);

    // A wrong passphrase is one clear line.
    let wrong = passphrase_file(&kai, "wrong", "not the passphrase at all");
    let out = run(&mut vault_command(
        &kai,
        &wrong,
        &["secret", "get", "openai"],
    ));
    assert_one_line_failure(&out, &["wrong passphrase"]);
    // That attempt was recorded unsigned (the vault was locked); the verifier says so until
    // the next unlock signs it.
    let out = run(&mut vault_command(&kai, &file, &["audit", "verify"]));
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains("1 entries are not signed yet"),
        "{}",
        stdout(&out)
    );
    ok(&run(&mut vault_command(
        &kai,
        &file,
        &["secret", "get", "openai"],
    )));

    // The log verifies, locally and from an export with the node's key alone.
    let verified = ok(&run(&mut vault_command(&kai, &file, &["audit", "verify"])));
    assert!(verified.starts_with("ok: "), "{verified}");
    let export = kai.home.path().join("audit.jsonl");
    ok(&run(&mut vault_command(
        &kai,
        &file,
        &["audit", "export", "-o", export.to_str().unwrap()],
    )));
    let export_arg = export.to_str().unwrap();
    let verified =
        ok(&run(&mut kai.command(&[
            "audit", "verify", "--file", export_arg, "--key", &did,
        ])));
    assert!(verified.contains(&did), "{verified}");
    let report: Value = serde_json::from_str(&ok(&run(&mut kai.command(&[
        "audit", "verify", "--file", export_arg, "--key", &did, "--json",
    ]))))
    .unwrap();
    assert_eq!(report["intact"], true);
    assert!(report["entries"].as_u64().unwrap() >= 5, "{report}");

    // An edited export names the entry; another node's key fails every signature.
    let text = std::fs::read_to_string(&export).unwrap();
    let edited = text.replacen("secret.read", "secret.wipe", 1);
    std::fs::write(&export, &edited).unwrap();
    let out = run(&mut kai.command(&["audit", "verify", "--file", export_arg, "--key", &did]));
    assert!(!out.status.success());
    assert!(stdout(&out).contains("entry "), "{}", stdout(&out));
    std::fs::write(&export, &text).unwrap();
    let other = "did:key:z6MkmjY8GnV5i9YTDtPETC2uUAW6ejw3nk5mXF5yci5ab7th";
    let out = run(&mut kai.command(&["audit", "verify", "--file", export_arg, "--key", other]));
    assert!(!out.status.success());
    let out = run(&mut kai.command(&[
        "audit",
        "verify",
        "--file",
        export_arg,
        "--key",
        "did:web:x",
    ]));
    assert_one_line_failure(&out, &["--key"]);
    std::fs::write(&export, "not an export\n").unwrap();
    let out = run(&mut kai.command(&["audit", "verify", "--file", export_arg]));
    assert_one_line_failure(&out, &["line 1"]);

    // Tampering with the database is found by `kai audit verify`.
    let store = kai.db.store().await;
    store
        .tamper("UPDATE audit_entries SET entry = replace(entry, 'secret.read', 'secret.wipe'), action = 'secret.wipe' WHERE action = 'secret.read'")
        .await;
    let out = run(&mut vault_command(&kai, &file, &["audit", "verify"]));
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains("signature does not verify"),
        "{}",
        stdout(&out)
    );
}

fn rotated_at(kai: &Kai, file: &Path) -> Value {
    let status: Value = serde_json::from_str(&ok(&run(&mut vault_command(
        kai,
        file,
        &["vault", "status", "--json"],
    ))))
    .unwrap();
    status["rotated_at"].clone()
}

/// Kills `kai vault rotate` and `kai vault passwd` at each step of their transaction and after
/// it: the vault then opens with the old key material or the new, never neither, and every
/// secret reads back.
#[tokio::test]
async fn key_changes_killed_at_any_step_lose_nothing() {
    #[cfg(unix)]
    use std::os::unix::process::ExitStatusExt as _;

    let kai = Kai::new().await;
    let old = passphrase_file(&kai, "old", PASSPHRASE);
    let new = passphrase_file(&kai, "new", "a brand new passphrase");
    ok(&run(&mut vault_command(&kai, &old, &["vault", "init"])));
    for (name, value) in [("a", "value a"), ("b", "value b")] {
        ok(&output_with_stdin(
            vault_command(&kai, &old, &["secret", "set", name]),
            value,
        ));
    }
    kai.create_admin("root");
    ok(&output_with_stdin(
        vault_command(&kai, &old, &["secret", "set", "mine", "--user", "root"]),
        "root's value",
    ));
    let check_secrets = |file: &Path| {
        for (name, value) in [("a", "value a"), ("b", "value b")] {
            let read = ok(&run(&mut vault_command(
                &kai,
                file,
                &["secret", "get", name],
            )));
            assert_eq!(read.trim_end(), value);
        }
        let read = ok(&run(&mut vault_command(
            &kai,
            file,
            &["secret", "get", "mine", "--user", "root"],
        )));
        assert_eq!(read.trim_end(), "root's value");
    };

    for (point, done) in [
        ("vault-rotate:keyring", false),
        ("vault-rotate:data-keys", false),
        ("vault-rotate:unlockers", false),
        ("vault-rotate:committed", true),
    ] {
        let before = rotated_at(&kai, &old);
        let out =
            run(vault_command(&kai, &old, &["vault", "rotate"]).env("KAI_TEST_CRASH_AT", point));
        assert!(
            !out.status.success(),
            "{point}: the crash point was not reached"
        );
        #[cfg(unix)]
        assert_eq!(
            out.status.signal(),
            Some(6),
            "{point}: not killed (SIGABRT): {}",
            stderr(&out)
        );
        let after = rotated_at(&kai, &old);
        assert_eq!(
            before != after,
            done,
            "{point}: rotated {before} -> {after}"
        );
        check_secrets(&old);
    }

    for (point, done) in [
        ("vault-rekey:written", false),
        ("vault-rekey:committed", true),
    ] {
        let (current, next) = if rotated_passphrase(&kai, &old) {
            (&old, &new)
        } else {
            (&new, &old)
        };
        let next_text = std::fs::read_to_string(next).unwrap();
        let out = output_with_stdin(
            {
                let mut command = vault_command(&kai, current, &["vault", "passwd"]);
                command.env("KAI_TEST_CRASH_AT", point);
                command
            },
            &next_text,
        );
        assert!(
            !out.status.success(),
            "{point}: the crash point was not reached"
        );
        #[cfg(unix)]
        assert_eq!(
            out.status.signal(),
            Some(6),
            "{point}: not killed (SIGABRT): {}",
            stderr(&out)
        );
        // Exactly one of the two passphrases opens the vault: the old before the commit, the
        // new after.
        let opens = |file: &Path| {
            run(&mut vault_command(&kai, file, &["secret", "get", "a"]))
                .status
                .success()
        };
        assert_eq!((opens(current), opens(next)), (!done, done), "{point}");
        check_secrets(if done { next } else { current });
    }
    let verified = ok(&run(&mut vault_command(&kai, &new, &["audit", "verify"])));
    assert!(verified.starts_with("ok: "), "{verified}");
}

/// Whether the `old` passphrase still opens the vault.
fn rotated_passphrase(kai: &Kai, old: &Path) -> bool {
    run(&mut vault_command(kai, old, &["secret", "get", "a"]))
        .status
        .success()
}

#[tokio::test]
async fn vault_status_shows_that_unlocking_is_being_delayed() {
    let kai = Kai::new().await;
    let file = passphrase_file(&kai, "passphrase", PASSPHRASE);
    ok(&run(&mut vault_command(&kai, &file, &["vault", "init"])));
    let wrong = passphrase_file(&kai, "wrong", "not the passphrase at all");
    let attempt = || run(&mut vault_command(&kai, &wrong, &["secret", "get", "x"]));
    for _ in 0..5 {
        assert_one_line_failure(&attempt(), &["wrong passphrase"]);
    }
    let status = ok(&run(&mut vault_command(&kai, &file, &["vault", "status"])));
    assert!(
        status.contains("5 wrong unlock attempts in a row"),
        "{status}"
    );
    // The sixth, once the first second's wait is over, is tried and counted: two seconds now.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_one_line_failure(&attempt(), &["wrong passphrase"]);
    let status = ok(&run(&mut vault_command(&kai, &file, &["vault", "status"])));
    assert!(
        status.contains("6 wrong unlock attempts in a row: the next attempt is refused for"),
        "{status}"
    );
    let json: Value = serde_json::from_str(&ok(&run(&mut vault_command(
        &kai,
        &file,
        &["vault", "status", "--json"],
    ))))
    .unwrap();
    assert_eq!(json["failed_unlocks"], 6);
}
