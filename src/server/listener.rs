//! The TLS accept loop: a connection limit (excess refused at once), a deadline for the TLS
//! handshake and for each request head, HTTP/1.1 and HTTP/2 on one port, connections closed
//! when idle or old, and a graceful drain.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use futures::future::BoxFuture;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulConnection;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::metrics::{CloseLabels, Metrics};

#[derive(Clone, Copy)]
pub(super) struct Limits {
    pub max_connections: usize,
    /// Deadline for the TLS handshake and for each HTTP/1 request head.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    /// A connection this old is closed once its requests are answered, so that clients
    /// reconnect: new handshakes see a renewed certificate, and load spreads over new replicas.
    pub max_connection_age: Duration,
    /// How long in-flight requests get to finish after shutdown starts, or after a connection
    /// is asked to close.
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
        let (tracked, in_flight) = Tracked::new(service.clone());
        let metrics = metrics.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _slot = slot;
            metrics.connections_open.inc();
            let handshake = acceptor.accept(stream);
            match tokio::time::timeout(limits.header_read_timeout, handshake).await {
                Ok(Ok(tls)) => {
                    let http = if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                        h2
                    } else {
                        h1
                    };
                    let conn = http.serve_connection(TokioIo::new(tls), tracked);
                    drive(conn, in_flight, limits, &metrics, shutdown).await;
                }
                Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
            metrics.connections_open.dec();
        });
    }
    drop(listener);
    // Every connection holds a slot until it ends: all slots back means all drained.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.shutdown_grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("grace period over with connections still open");
    }
}

/// Serve one connection to its end. It is asked to close (HTTP/2: GOAWAY, in-flight streams
/// finish; HTTP/1.1: closed after the current response) when no request has been in flight for
/// the idle timeout, when it reaches the maximum age, or at shutdown; one that has not closed
/// a grace period later is dropped.
async fn drive<C>(
    conn: C,
    mut in_flight: watch::Receiver<usize>,
    limits: Limits,
    metrics: &Metrics,
    mut shutdown: watch::Receiver<bool>,
) where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    let mut conn = std::pin::pin!(conn);
    let opened = Instant::now();
    let too_old = opened + limits.max_connection_age;
    let mut idle_since = Some(opened);
    let mut closing: Option<Instant> = None;
    loop {
        let deadline = closing.unwrap_or_else(|| {
            idle_since.map_or(too_old, |t| too_old.min(t + limits.idle_timeout))
        });
        let reason = tokio::select! {
            ended = conn.as_mut() => {
                if let Err(error) = ended {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            // The sender lives in the service the connection owns: it cannot close first.
            Ok(()) = in_flight.changed() => {
                idle_since = (*in_flight.borrow_and_update() == 0).then(Instant::now);
                continue;
            }
            _ = shutdown.wait_for(|stop| *stop), if closing.is_none() => None,
            () = tokio::time::sleep_until(deadline) => {
                if closing.is_some() {
                    tracing::debug!("connection still open a grace period after closing: dropped");
                    return;
                }
                Some(if deadline == too_old { "max_age" } else { "idle" })
            }
        };
        if let Some(reason) = reason {
            metrics
                .connections_closed
                .get_or_create(&CloseLabels { reason })
                .inc();
        }
        conn.as_mut().graceful_shutdown();
        closing = Some(Instant::now() + limits.shutdown_grace);
    }
}

/// The service of one connection, counting its requests in flight for the idle timeout.
#[derive(Clone)]
struct Tracked<S> {
    inner: S,
    in_flight: Arc<watch::Sender<usize>>,
}

impl<S> Tracked<S> {
    fn new(inner: S) -> (Tracked<S>, watch::Receiver<usize>) {
        let (sender, receiver) = watch::channel(0);
        let in_flight = Arc::new(sender);
        (Tracked { inner, in_flight }, receiver)
    }
}

/// Counts one request from the call until its response is ready (the bodies are buffered, so
/// the response is then written at once) or the request is cancelled.
struct Request(Arc<watch::Sender<usize>>);

impl Request {
    fn begin(in_flight: &Arc<watch::Sender<usize>>) -> Request {
        in_flight.send_modify(|n| *n += 1);
        Request(in_flight.clone())
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl<S, R> hyper::service::Service<R> for Tracked<S>
where
    S: hyper::service::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn call(&self, request: R) -> Self::Future {
        let counted = Request::begin(&self.in_flight);
        let answer = self.inner.call(request);
        Box::pin(async move {
            let answer = answer.await;
            drop(counted);
            answer
        })
    }
}
