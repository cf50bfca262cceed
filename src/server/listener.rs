//! The TLS accept loop: a connection limit (excess refused at once), a deadline for the TLS
//! handshake and for each request head, HTTP/1.1 and HTTP/2 on one port, and a graceful drain.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use super::metrics::Metrics;

pub(super) struct Limits {
    pub max_connections: usize,
    /// Deadline for the TLS handshake and for each HTTP/1 request head.
    pub header_read_timeout: Duration,
    /// How long in-flight requests get to finish after shutdown starts.
    pub shutdown_grace: Duration,
}

/// Serve `app` over TLS until `shutdown` turns true, then drain open connections.
pub(super) async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    http.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(64)
        .keep_alive_interval(Duration::from_secs(30));
    // The protocol comes from ALPN, so no bytes are sniffed from a client that may never send
    // them; the request-head deadline then guards HTTP/1.
    let (h1, h2) = (http.clone().http1_only(), http.http2_only());
    let service = TowerToHyperService::new(app);

    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics.connections_rejected.inc();
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let (h1, h2) = (h1.clone(), h2.clone());
        let service = service.clone();
        let watcher = graceful.watcher();
        let metrics = metrics.clone();
        let handshake_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            metrics.connections_open.inc();
            match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let http = if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                        h2
                    } else {
                        h1
                    };
                    let conn = http.serve_connection(TokioIo::new(tls), service);
                    if let Err(error) = watcher.watch(conn.into_owned()).await {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                }
                Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
            metrics.connections_open.dec();
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("grace period over with connections still open");
    }
}
