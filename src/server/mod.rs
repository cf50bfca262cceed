//! `inference-webhook serve`: the HTTPS admission server (axum + rustls), plus a plain-HTTP
//! metrics listener. [`Server::start`] is the library entry the binary and the tests share.

mod listener;
mod metrics;
mod routes;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::certs;
use crate::config::Config;
use crate::runtime::{LogArgs, metrics_route, parse_duration, run_daemon, termination};
use metrics::Metrics;
pub(crate) use tls::not_after;
use tls::{CertResolver, CertWatcher};
pub use tls::{CertStatus, TlsVersion};

#[derive(clap::Parser, Debug, Clone)]
#[command(name = "serve")]
pub struct ServeArgs {
    /// Address of the HTTPS webhook listener.
    #[arg(long, env = "INFERENCE_WEBHOOK_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Address of the plain-HTTP metrics listener (/metrics).
    #[arg(
        long,
        env = "INFERENCE_WEBHOOK_METRICS_LISTEN",
        default_value = "0.0.0.0:9090"
    )]
    pub metrics_listen: SocketAddr,
    /// Serving certificate chain (PEM, leaf first). Without it, a self-signed default is made
    /// (outside a cluster only: with KUBERNETES_SERVICE_HOST set, serve refuses to start).
    #[arg(long, env = "INFERENCE_WEBHOOK_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key of the serving certificate (PEM: PKCS#8, RSA or SEC1).
    #[arg(long, env = "INFERENCE_WEBHOOK_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Lowest TLS version accepted.
    #[arg(
        long,
        env = "INFERENCE_WEBHOOK_TLS_MIN_VERSION",
        value_enum,
        default_value = "1.2"
    )]
    pub tls_min_version: TlsVersion,
    /// How often the certificate files are checked for changes (e.g. 10s, 500ms).
    #[arg(long, env = "INFERENCE_WEBHOOK_CERT_POLL_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub cert_poll_interval: Duration,
    /// SANs of the self-signed default certificate (DNS names or IP addresses).
    #[arg(
        long = "dns-name",
        env = "INFERENCE_WEBHOOK_DNS_NAMES",
        value_delimiter = ',',
        default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()]
    )]
    pub dns_names: Vec<String>,
    /// Where the self-signed default's CA certificate is written.
    #[arg(
        long,
        env = "INFERENCE_WEBHOOK_CA_OUT",
        default_value = "./inference-webhook-ca.crt"
    )]
    pub ca_out: PathBuf,
    /// Policy file (YAML); defaults apply without one.
    #[arg(long, env = "INFERENCE_WEBHOOK_CONFIG")]
    pub config: Option<PathBuf>,
    /// Largest accepted request body.
    #[arg(long, env = "INFERENCE_WEBHOOK_MAX_BODY_BYTES", default_value_t = 6 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Deadline for the TLS handshake and for each request head.
    #[arg(long, env = "INFERENCE_WEBHOOK_HEADER_READ_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,
    /// Deadline for receiving a request body.
    #[arg(long, env = "INFERENCE_WEBHOOK_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// A connection (HTTP/1.1 or HTTP/2) with no request in flight for this long is closed.
    #[arg(long, env = "INFERENCE_WEBHOOK_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// A connection this old is closed once its requests are answered (HTTP/2 GOAWAY), so that
    /// clients handshake again: a renewed certificate reaches every client within this time.
    #[arg(long, env = "INFERENCE_WEBHOOK_MAX_CONNECTION_AGE", default_value = "10m", value_parser = parse_duration)]
    pub max_connection_age: Duration,
    /// Open connections beyond this are closed at once.
    #[arg(
        long,
        env = "INFERENCE_WEBHOOK_MAX_CONNECTIONS",
        default_value_t = 1024
    )]
    pub max_connections: usize,
    /// Time in-flight requests get to finish after SIGTERM.
    #[arg(long, env = "INFERENCE_WEBHOOK_SHUTDOWN_GRACE", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    #[command(flatten)]
    pub log: LogArgs,
}

/// A running server.
pub struct Server {
    /// The bound HTTPS address.
    pub addr: SocketAddr,
    /// The bound metrics address.
    pub metrics_addr: SocketAddr,
    /// The CA of the self-signed default (None with `--tls-cert`).
    pub generated_ca_pem: Option<String>,
    shutdown: watch::Sender<bool>,
    cert_status: Option<watch::Receiver<CertStatus>>,
    ready: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

/// Starts a graceful shutdown of a [`Server`] from anywhere.
#[derive(Clone)]
pub struct ShutdownHandle {
    shutdown: watch::Sender<bool>,
    ready: Arc<AtomicBool>,
}

impl ShutdownHandle {
    /// Report not ready, stop accepting, drain in-flight requests.
    pub fn trigger(&self) {
        self.ready.store(false, Ordering::Release);
        self.shutdown.send_replace(true);
    }
}

impl Server {
    /// Load the policy and certificates, bind both listeners, and serve in the background.
    pub async fn start(args: &ServeArgs) -> anyhow::Result<Server> {
        let config = Config::load(args.config.as_deref())?;
        let metrics = Arc::new(Metrics::new());
        let (resolver, watcher, generated_ca_pem) = certificates(args, &metrics)?;
        let tls = tls::server_config(resolver, args.tls_min_version)
            .context("building the TLS configuration")?;

        let listener = TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        let metrics_listener = TcpListener::bind(args.metrics_listen)
            .await
            .with_context(|| format!("binding {}", args.metrics_listen))?;
        let addr = listener.local_addr()?;
        let metrics_addr = metrics_listener.local_addr()?;

        let ready = Arc::new(AtomicBool::new(false));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let state = Arc::new(routes::AppState {
            policy: config.policy,
            default_mode: config.default_mode,
            metrics: metrics.clone(),
            ready: ready.clone(),
            max_body_bytes: args.max_body_bytes,
            request_timeout: args.request_timeout,
        });
        let limits = listener::Limits {
            max_connections: args.max_connections,
            header_read_timeout: args.header_read_timeout,
            idle_timeout: args.idle_timeout,
            max_connection_age: args.max_connection_age,
            shutdown_grace: args.shutdown_grace,
        };
        let cert_status = watcher.as_ref().map(CertWatcher::subscribe);
        let poller = watcher.map(|w| tokio::spawn(w.run(args.cert_poll_interval)));
        let metrics_server = tokio::spawn(serve_metrics(
            metrics_listener,
            metrics.clone(),
            shutdown_rx.clone(),
        ));
        let webhook = listener::serve(
            listener,
            Arc::new(tls),
            routes::router(state),
            limits,
            metrics,
            shutdown_rx,
        );
        let task = tokio::spawn(async move {
            webhook.await;
            if let Some(poller) = poller {
                poller.abort();
            }
            let _ = metrics_server.await;
        });
        ready.store(true, Ordering::Release);
        tracing::info!(%addr, %metrics_addr, "listening");
        Ok(Server {
            addr,
            metrics_addr,
            generated_ca_pem,
            shutdown,
            cert_status,
            ready,
            task,
        })
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            shutdown: self.shutdown.clone(),
            ready: self.ready.clone(),
        }
    }

    /// Certificate reload events (None for the self-signed default, which never reloads).
    pub fn cert_status(&self) -> Option<watch::Receiver<CertStatus>> {
        self.cert_status.clone()
    }

    /// Wait until the server has shut down and drained.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task failed")
    }

    /// Trigger a graceful shutdown and wait for it.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.shutdown_handle().trigger();
        self.wait().await
    }
}

type Certificates = (Arc<CertResolver>, Option<CertWatcher>, Option<String>);

/// The serving pair: from files (watched for changes) or the self-signed default.
fn certificates(args: &ServeArgs, metrics: &Arc<Metrics>) -> anyhow::Result<Certificates> {
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let (watcher, resolver) = CertWatcher::start(cert.clone(), key.clone(), metrics.clone())
            .context("loading the serving certificate")?;
        return Ok((resolver, Some(watcher), None));
    }
    let issued = certs::issue(&args.dns_names, 365).context("generating a certificate")?;
    std::fs::write(&args.ca_out, &issued.ca_pem)
        .with_context(|| format!("writing the CA to {}", args.ca_out.display()))?;
    let pair = tls::load_pair(issued.cert_pem.as_bytes(), issued.key_pem.as_bytes())
        .context("loading the generated certificate")?;
    if let Some(t) = pair.cert.first().and_then(|c| tls::not_after(c)) {
        metrics.cert_not_after.set(t);
    }
    tracing::warn!(
        ca = %args.ca_out.display(),
        names = %args.dns_names.join(","),
        "no --tls-cert given: serving a self-signed certificate; trust the CA written to the ca file"
    );
    Ok((Arc::new(CertResolver::new(pair)), None, Some(issued.ca_pem)))
}

async fn serve_metrics(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let app = axum::Router::new().route("/metrics", metrics_route(move || metrics.encode()));
    let stop = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    if let Err(error) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::error!(%error, "metrics listener failed");
    }
}

/// Inside a pod (the kubelet sets `KUBERNETES_SERVICE_HOST`) the API server cannot verify the
/// self-signed default: the server would turn ready while every review fails TLS and mutation
/// fails open. Refuse to start instead, saying how to give it a certificate.
fn check_certificate_source(
    args: &ServeArgs,
    service_host: Option<&std::ffi::OsStr>,
) -> anyhow::Result<()> {
    if args.tls_cert.is_none() && service_host.is_some_and(|host| !host.is_empty()) {
        anyhow::bail!(
            "running inside a cluster (KUBERNETES_SERVICE_HOST is set) without --tls-cert: the \
             API server cannot verify a self-signed certificate. Mount a kubernetes.io/tls \
             Secret and pass --tls-cert=/etc/inference-webhook/tls/tls.crt \
             --tls-key=/etc/inference-webhook/tls/tls.key (or INFERENCE_WEBHOOK_TLS_CERT and \
             INFERENCE_WEBHOOK_TLS_KEY), whose CA is the caBundle of the webhook configurations: \
             the Helm chart and deploy/ do this; certs/README.md makes the Secret"
        );
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    check_certificate_source(
        &args,
        std::env::var_os("KUBERNETES_SERVICE_HOST").as_deref(),
    )?;
    let server = Server::start(&args).await?;
    let handle = server.shutdown_handle();
    termination().await?;
    handle.trigger();
    server.wait().await?;
    tracing::info!("shut down cleanly");
    Ok(())
}

pub fn run(args: ServeArgs) -> ExitCode {
    let log = args.log.clone();
    run_daemon("serve", &log, serve(args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_a_cluster_the_self_signed_default_is_refused() {
        use clap::Parser as _;
        let parse = |argv: &[&str]| ServeArgs::try_parse_from(argv).map_err(|e| e.to_string());
        let bare = parse(&["serve"]);
        let files = parse(&["serve", "--tls-cert=/c", "--tls-key=/k"]);
        let (Ok(bare), Ok(files)) = (bare, files) else {
            panic!("flags do not parse");
        };
        let host = Some(std::ffi::OsStr::new("10.96.0.1"));
        let refused = check_certificate_source(&bare, host).map_err(|e| e.to_string());
        assert!(
            matches!(&refused, Err(m) if m.contains("--tls-cert=")),
            "{refused:?}"
        );
        assert!(check_certificate_source(&files, host).is_ok());
        assert!(
            check_certificate_source(&bare, None).is_ok(),
            "local quick start"
        );
        assert!(check_certificate_source(&bare, Some(std::ffi::OsStr::new(""))).is_ok());
    }
}
