//! `kai login` and `kai logout`: a password is typed once, traded for an API key of this
//! machine's own, and the key is kept in the credentials file. The login session itself is
//! ended at once: the key is what `kai chat` uses, and it can be revoked on its own.

use anyhow::{Context, bail};
use kai_config::{Environment, Settings};
use kai_proto::{CreateApiKeyRequest, Scope};

use super::connect;
use crate::cli::LoginArgs;
use crate::client::{Client, Credential};
use crate::credentials::{self, Credentials};
use crate::{input, output};

/// The longest key name the server takes.
const MAX_KEY_NAME: usize = 100;

pub(crate) async fn login(
    settings: &Settings,
    env: &Environment,
    args: LoginArgs,
) -> anyhow::Result<()> {
    let path = credentials::required_path(env)?;
    let previous = credentials::load(&path)?;
    let url = connect::server_url(settings, previous.as_ref())?;
    let client = Client::new(url.clone())?;
    let username = match args.username {
        Some(name) => name,
        None => ask_username()?,
    };
    let password = input::password(&format!("Password for {username} at {}: ", client.url()))?;
    let tokens = client
        .login(&username, password)
        .await
        .with_context(|| format!("cannot log in to {}", client.url()))?;
    let session = client.with(Credential::new(
        tokens.access_token.clone(),
        "run `kai login` again",
    ));
    let me = session.me().await?;
    let created = session
        .create_key(&CreateApiKeyRequest {
            name: key_name(&hostname()),
            scopes: vec![Scope::Read, Scope::Write],
            expires_at: None,
        })
        .await
        .context("cannot create an API key")?;
    // Only the key is kept; a session left open would stay usable until it expired.
    if let Some(refresh_token) = tokens.refresh_token
        && let Err(err) = client.end_session(refresh_token).await
    {
        tracing::debug!(error = %format!("{err:#}"), "cannot end the login session");
    }
    let credentials = Credentials {
        url,
        api_key: created.key,
        key_id: created.api_key.id,
    };
    credentials::save(&path, &credentials)?;
    // The file held the only copy of the previous key: revoke it rather than strand it.
    if let Some(previous) = previous.filter(|previous| previous.key_id != credentials.key_id) {
        revoke(&previous).await;
    }
    output::line(&format!(
        "logged in to {} as {}; API key {}… kept in {}",
        client.url(),
        me.user.username,
        created.api_key.prefix,
        path.display()
    ));
    Ok(())
}

pub(crate) async fn logout(env: &Environment) -> anyhow::Result<()> {
    let path = credentials::required_path(env)?;
    let Some(stored) = credentials::load(&path)? else {
        output::line(&format!(
            "not logged in ({} does not exist)",
            path.display()
        ));
        return Ok(());
    };
    revoke(&stored).await;
    credentials::remove(&path)?;
    output::line(&format!(
        "logged out of {}; deleted {}",
        crate::client::shown(&stored.url),
        path.display()
    ));
    Ok(())
}

/// Revokes a stored key with itself. Best effort: the server may be gone for good, and the key
/// must still be forgotten here; the warning says what is left to do.
async fn revoke(stored: &Credentials) {
    let result = async {
        Client::new(stored.url.clone())?
            .with(Credential::new(
                stored.api_key.clone(),
                "it may be revoked already",
            ))
            .revoke_key(stored.key_id)
            .await
    }
    .await;
    if let Err(err) = result {
        output::warning(&format!(
            "cannot revoke the API key {} on the server: {err:#}; if it still works, revoke it there",
            stored.key_id
        ));
    }
}

/// Asks for the user name at the terminal.
fn ask_username() -> anyhow::Result<String> {
    if !input::interactive() {
        bail!("give the user name, as in `kai login NAME`, when the password comes on stdin");
    }
    output::prompt("Username: ");
    let name = input::line()
        .context("cannot read the user name")?
        .unwrap_or_default();
    let name = name.trim();
    if name.is_empty() {
        bail!("no user name given");
    }
    Ok(name.to_owned())
}

/// "kai CLI on HOST", so that the key list says where each key lives.
fn key_name(host: &str) -> String {
    let name = format!("kai CLI on {host}");
    name.chars().take(MAX_KEY_NAME).collect()
}

/// This machine's name, as well as it can be found without a dependency for it.
fn hostname() -> String {
    let from_kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    let name = from_kernel.or_else(|| {
        let output = std::process::Command::new("hostname").output().ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    });
    name.map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "an unnamed machine".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_named_after_the_machine_within_the_limit() {
        assert_eq!(key_name("laptop"), "kai CLI on laptop");
        assert_eq!(key_name(&"h".repeat(300)).chars().count(), MAX_KEY_NAME);
        assert!(!hostname().is_empty());
    }
}
