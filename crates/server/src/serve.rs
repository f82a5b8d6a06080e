//! Serving a gateway on a listener, with graceful shutdown.
//!
//! On shutdown the gateway stops accepting connections, answers probes with 503, and lets
//! in-flight requests — streams included — finish, for at most the grace period.

use std::future::Future;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::state::Gateway;

/// Resolves when the process should stop (SIGTERM or Ctrl-C).
#[derive(Debug, Clone, Copy)]
pub struct ShutdownSignal;

impl ShutdownSignal {
    pub async fn wait() {
        let ctrl_c = async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
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
            () = ctrl_c => {}
            () = terminate => {}
        }
    }
}

/// Serves until `shutdown` resolves, then drains in-flight requests for up to `grace`.
pub async fn serve(
    listener: TcpListener,
    gateway: Gateway,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let app = gateway.router();
    let listener = listener.tap_io(|tcp| {
        // Small SSE frames and JSON answers must not wait for Nagle's algorithm.
        let _ = tcp.set_nodelay(true);
    });
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let draining = gateway.clone();
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        draining.start_draining();
        tracing::info!("shutting down: draining in-flight requests");
        let _ = stopping_tx.send(());
    });
    let server = std::future::IntoFuture::into_future(server);
    tokio::pin!(server);
    let served = tokio::select! {
        result = &mut server => result,
        () = async {
            if stopping_rx.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => {
            tracing::warn!(grace_secs = grace.as_secs_f64(), "in-flight requests still running after the grace period; stopping");
            Ok(())
        }
    };
    // Settlements in Redis, budget resets and alerts still on their way.
    if tokio::time::timeout(ADMISSION_DRAIN, gateway.admission().drain())
        .await
        .is_err()
    {
        tracing::warn!("budget settlements or alerts still pending at exit");
    }
    // Every finished call's spend is written before the process exits.
    gateway.flush_spend(SPEND_FLUSH_DEADLINE).await;
    served
}

/// Bound on finishing admission's background work at shutdown.
const ADMISSION_DRAIN: Duration = Duration::from_secs(5);

/// How long shutdown waits for queued spend rows to reach the database.
const SPEND_FLUSH_DEADLINE: Duration = Duration::from_secs(10);
