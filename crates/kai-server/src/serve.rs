//! The accept loop: HTTP/1.1 and HTTP/2 on every connection (hyper's), a deadline for each
//! request's line and headers, and a graceful shutdown that stops accepting and drains what is
//! in flight.
//!
//! axum's own `serve` cannot set hyper's header-read timeout, so a client that sends half a
//! request line could hold a connection (and its memory) for as long as it liked.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use kai_config::HttpSettings;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt as _;

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting connections
/// and waits up to `http.shutdown_grace` for requests in flight to finish. Returns once all
/// have finished or the grace period is over, whichever comes first.
pub fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    http: &HttpSettings,
) -> impl Future<Output = std::io::Result<()>> + Send + 'static {
    serve_until(
        listener,
        app,
        Box::pin(shutdown),
        http.shutdown_grace,
        http.header_read_timeout,
    )
}

/// [`serve`], not generic: the accept loop and every connection's HTTP handling are compiled
/// here, with this crate's optimisation, rather than in each caller.
async fn serve_until(
    listener: TcpListener,
    app: Router,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
    grace: Duration,
    header_read_timeout: Duration,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder.http2().timer(TokioTimer::new());

    // Dropped (closed) when shutdown begins; every connection watches it.
    let (draining_tx, draining_rx) = watch::channel(());
    // Held by every connection; closed once the last one has finished.
    let (finished_tx, finished_rx) = watch::channel(());
    let mut shutdown = shutdown;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        serve_connection(
            &builder,
            &app,
            stream,
            peer,
            draining_rx.clone(),
            finished_rx.clone(),
        );
    }
    tracing::info!(
        grace_s = grace.as_secs_f32(),
        "shutting down: no new connections, draining requests in flight"
    );
    drop(listener);
    drop(draining_rx);
    drop(finished_rx);
    drop(draining_tx);
    if tokio::time::timeout(grace, finished_tx.closed())
        .await
        .is_err()
    {
        tracing::warn!("grace period over; closing the requests still in flight");
    }
    Ok(())
}

/// Serves one connection on its own task until it closes, or until shutdown lets its requests
/// in flight finish.
fn serve_connection(
    builder: &Builder<TokioExecutor>,
    app: &Router,
    stream: TcpStream,
    peer: SocketAddr,
    mut draining: watch::Receiver<()>,
    finished: watch::Receiver<()>,
) {
    // Without TCP_NODELAY, Nagle's algorithm holds back the small writes of a streamed answer
    // (and the tail of many responses) until the client acknowledges the last one.
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(error = %err, "cannot set TCP_NODELAY on a connection");
    }
    let service = app
        .clone()
        .map_request(move |mut request: http::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
    let builder = builder.clone();
    tokio::spawn(async move {
        let connection = builder.serve_connection_with_upgrades(
            TokioIo::new(stream),
            TowerToHyperService::new(service),
        );
        let mut connection = pin!(connection);
        let mut draining_started = false;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(err) = result {
                        tracing::debug!(error = %err, %peer, "connection closed with an error");
                    }
                    break;
                }
                _ = draining.changed(), if !draining_started => {
                    draining_started = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
        drop(finished);
    });
}
