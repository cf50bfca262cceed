//! `inference-webhook report`: watches every kind of the kind table in a live cluster,
//! decides on each object as `audit --cluster` does, and publishes the records continuously:
//! Prometheus gauges on the metrics port, and a policy report per namespace.

pub mod metrics;
pub mod policyreport;
pub mod state;
mod watch;
mod writer;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;

use crate::cluster::{Target, config};
use crate::config::Config;
use crate::decide::Policy;
use crate::runtime::{
    LogArgs, health_routes, metrics_route, parse_duration, run_daemon, termination,
};

use metrics::Metrics;
use state::{Change, Store};
use watch::{Health, Watched};
use writer::Dirty;

#[derive(clap::Args, Debug, Clone)]
pub struct ReportArgs {
    /// Policy file, the same as the server's (defaults apply without one).
    #[arg(long, env = "INFERENCE_WEBHOOK_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address of the plain-HTTP listener for /metrics, /healthz and /readyz.
    #[arg(
        long,
        env = "INFERENCE_WEBHOOK_METRICS_LISTEN",
        default_value = "0.0.0.0:9090"
    )]
    pub metrics_listen: SocketAddr,
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use.
    #[arg(long)]
    pub context: Option<String>,
    /// Do not write wgpolicyk8s.io/v1alpha2 PolicyReports (metrics only).
    #[arg(long, env = "INFERENCE_WEBHOOK_NO_POLICY_REPORTS")]
    pub no_policy_reports: bool,
    /// Also write openreports.io/v1alpha1 Reports.
    #[arg(long, env = "INFERENCE_WEBHOOK_OPEN_REPORTS")]
    pub open_reports: bool,
    /// Wait after a namespace's first change before writing its report (e.g. 10s, 500ms).
    #[arg(long, env = "INFERENCE_WEBHOOK_REPORT_DEBOUNCE", default_value = "10s", value_parser = parse_duration)]
    pub debounce: Duration,
    /// Report writes per second, over all namespaces.
    #[arg(
        long,
        env = "INFERENCE_WEBHOOK_REPORT_WRITE_RATE",
        default_value_t = 5.0
    )]
    pub write_rate: f64,
    /// Report writes allowed at once before the rate applies.
    #[arg(
        long,
        env = "INFERENCE_WEBHOOK_REPORT_WRITE_BURST",
        default_value_t = 10
    )]
    pub write_burst: u32,
    #[command(flatten)]
    pub log: LogArgs,
    /// The controller kinds whose pods the webhook's Pod entries review (the chart's
    /// webhook.pods.ownerKinds), comma-separated: says why an inference pod is unlabeled.
    #[arg(
        long,
        env = "INFERENCE_WEBHOOK_POD_OWNER_KINDS",
        value_delimiter = ',',
        value_name = "KINDS",
        default_values = crate::cluster::pods::DEFAULT_OWNER_KINDS
    )]
    pub pod_owner_kinds: Vec<String>,
}

/// How reports are written.
pub struct Settings {
    pub debounce: Duration,
    pub write_rate: f64,
    pub write_burst: u32,
    /// Whether any report is written (else no namespace is ever marked).
    pub write_reports: bool,
    /// The Pod entries' owner kinds (`--pod-owner-kinds`).
    pub pod_owner_kinds: Vec<String>,
}

/// What the watches, the writer and the HTTP listener share.
pub struct Shared {
    pub policy: Policy,
    pub settings: Settings,
    pub watched: Vec<Watched>,
    pub metrics: Metrics,
    pub dirty: Dirty,
    /// The namespaces' watch has listed them, or failed: the pods' watch may start.
    pub namespaces_seen: AtomicBool,
    /// Their last list succeeded: a pod's namespace opt-in is known.
    pub namespaces_read: AtomicBool,
    store: Mutex<Store>,
    health: Mutex<Vec<Health>>,
}

impl Shared {
    pub fn new(policy: Policy, settings: Settings) -> Shared {
        let watched = watch::watched();
        let health = vec![Health::Starting; watched.len()];
        Shared {
            policy,
            settings,
            watched,
            metrics: Metrics::new(),
            dirty: Dirty::default(),
            namespaces_seen: AtomicBool::new(false),
            namespaces_read: AtomicBool::new(false),
            store: Mutex::new(Store::default()),
            health: Mutex::new(health),
        }
    }

    /// Change the store; the gauges move under the same lock, so they always match it.
    pub fn store_mut<T: Changes>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        let out = f(&mut store);
        for change in out.changes() {
            self.metrics.record(change);
        }
        out
    }

    pub fn store<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        f(&self.store.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Mark the namespaces of changes for a report write.
    pub fn changed(&self, changes: &[Change]) {
        if !self.settings.write_reports {
            return;
        }
        for change in changes.iter().filter(|c| !c.is_noop()) {
            if let Some(ns) = change.namespace() {
                self.dirty.mark(ns, self.settings.debounce);
            }
        }
    }

    /// Set a watch's health; true when it changed.
    pub fn set_health(&self, index: usize, health: Health) -> bool {
        let mut all = self.health.lock().unwrap_or_else(|e| e.into_inner());
        match all.get_mut(index) {
            Some(h) if *h != health => {
                *h = health;
                true
            }
            _ => false,
        }
    }

    /// Wait until every kind's watch has listed (or is not served, or failing) and the
    /// namespaces' has listed or failed: what a pod's reason depends on.
    pub async fn owners_listed(&self) {
        loop {
            let listed = {
                let all = self.health.lock().unwrap_or_else(|e| e.into_inner());
                self.watched
                    .iter()
                    .zip(all.iter())
                    .all(|(w, h)| watch::is_pods(w) || *h != Health::Starting)
            };
            if listed && self.namespaces_seen.load(Ordering::Relaxed) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ready once every served resource has been listed; the body says how each stands.
    pub fn readiness(&self) -> (bool, String) {
        let all = self.health.lock().unwrap_or_else(|e| e.into_inner());
        let mut ready = true;
        let mut body = String::new();
        for (watched, health) in self.watched.iter().zip(all.iter()) {
            let line = match health {
                Health::Synced => "synced".to_string(),
                Health::NotServed => "not served (CRD not installed)".to_string(),
                Health::Starting => {
                    ready = false;
                    "listing".to_string()
                }
                Health::Failing(why) => {
                    ready = false;
                    format!("failing: {why}")
                }
            };
            body.push_str(&format!("{}: {line}\n", watched.name));
        }
        (ready, body)
    }
}

/// What a store change returns, for the gauges.
pub trait Changes {
    fn changes(&self) -> &[Change];
}

impl Changes for Change {
    fn changes(&self) -> &[Change] {
        std::slice::from_ref(self)
    }
}

impl Changes for Vec<Change> {
    fn changes(&self) -> &[Change] {
        self
    }
}

/// A running reporter (the binary and the tests share it).
pub struct Reporter {
    pub shared: Arc<Shared>,
    pub metrics_addr: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Reporter {
    pub async fn start(args: &ReportArgs) -> anyhow::Result<Reporter> {
        let policy = Config::load(args.config.as_deref())
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .policy;
        let target = Target {
            kubeconfig: args.kubeconfig.clone(),
            context: args.context.clone(),
            ..Target::default()
        };
        let config = config(&target).await.map_err(anyhow::Error::msg)?;
        let client = kube::Client::try_from(config).context("building the API client")?;
        let mut formats = Vec::new();
        if !args.no_policy_reports {
            formats.push(policyreport::POLICY_REPORT);
        }
        if args.open_reports {
            formats.push(policyreport::OPEN_REPORT);
        }
        let settings = Settings {
            debounce: args.debounce,
            write_rate: args.write_rate,
            write_burst: args.write_burst,
            write_reports: !formats.is_empty(),
            pod_owner_kinds: args.pod_owner_kinds.clone(),
        };
        let shared = Arc::new(Shared::new(policy, settings));
        let listener = tokio::net::TcpListener::bind(args.metrics_listen)
            .await
            .with_context(|| format!("binding {}", args.metrics_listen))?;
        let metrics_addr = listener.local_addr()?;
        let mut tasks = vec![tokio::spawn(serve_http(listener, shared.clone()))];
        for index in 0..shared.watched.len() {
            tasks.push(tokio::spawn(watch::run(
                shared.clone(),
                client.clone(),
                index,
            )));
        }
        tasks.push(tokio::spawn(watch::run_namespaces(
            shared.clone(),
            client.clone(),
        )));
        if !formats.is_empty() {
            tasks.push(tokio::spawn(writer::run(shared.clone(), client, formats)));
        }
        tracing::info!(%metrics_addr, resources = shared.watched.len(), "reporter started");
        Ok(Reporter {
            shared,
            metrics_addr,
            tasks,
        })
    }

    pub fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}

async fn serve_http(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let metrics = shared.clone();
    let app = axum::Router::new()
        .route("/metrics", metrics_route(move || metrics.metrics.encode()))
        .merge(health_routes(move || shared.readiness()));
    if let Err(error) = axum::serve(listener, app).await {
        tracing::error!(%error, "metrics listener failed");
    }
}

async fn report(args: ReportArgs) -> anyhow::Result<()> {
    let reporter = Reporter::start(&args).await?;
    termination().await?;
    reporter.stop();
    tracing::info!("stopped");
    Ok(())
}

pub fn run(args: ReportArgs) -> ExitCode {
    let log = args.log.clone();
    run_daemon("report", &log, report(args))
}
