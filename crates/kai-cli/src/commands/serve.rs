//! `kai serve`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kai_auth::Accounts;
use kai_config::{DatabaseKind, Loaded};
use kai_server::AppState;
use kai_store::Store;

use crate::lock::DataDirLock;

/// How long shutdown waits for database connections still in use.
const POOL_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often expired sessions are swept out.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(3600);

pub(crate) async fn run(loaded: Loaded) -> anyhow::Result<()> {
    let settings = loaded.settings;
    let _lock = if settings.database_url.kind() == DatabaseKind::Sqlite {
        kai_store::create_private_dir(&settings.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                settings.data_dir.display()
            )
        })?;
        Some(DataDirLock::acquire(&settings.data_dir)?)
    } else {
        None
    };

    let store = Store::connect(&settings.database_url, &settings.database).await?;
    let accounts = Arc::new(Accounts::new(store.clone(), settings.auth.clone()).await?);
    if store.count_users().await? == 0 {
        tracing::warn!("no users yet: create the first admin with `kai user create --admin NAME`");
    }

    let listener = tokio::net::TcpListener::bind(settings.bind)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; choose another address with --bind or KAI_BIND",
                settings.bind
            )
        })?;
    let address = listener.local_addr()?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        database = %settings.database_url,
        "kai listening on http://{address} (API reference at http://{address}/docs)"
    );

    let maintenance = tokio::spawn(kai_server::maintain(accounts.clone(), MAINTENANCE_INTERVAL));
    let app = kai_server::app(AppState::new(accounts, settings.http.clone()));
    kai_server::serve(
        listener,
        app,
        shutdown_signal(),
        settings.http.shutdown_grace,
    )
    .await?;
    maintenance.abort();
    // Requests cut off at the end of the grace period may still hold connections; do not wait
    // on them for long.
    if tokio::time::timeout(POOL_CLOSE_TIMEOUT, store.close())
        .await
        .is_err()
    {
        tracing::warn!("database connections still busy after shutdown; closing anyway");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let first = next_signal().await;
    tracing::info!("received {first}");
    // A second signal means the person is done waiting for the drain.
    tokio::spawn(async {
        let second = next_signal().await;
        tracing::warn!("received {second} again; exiting without waiting for requests in flight");
        std::process::exit(130);
    });
}

/// Waits for SIGINT or SIGTERM and names it.
async fn next_signal() -> &'static str {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => "SIGINT",
        () = terminate => "SIGTERM",
    }
}
