//! `audit --cluster` against a local HTTPS server that replays recorded API list responses
//! (tests/fixtures/cluster/): paging with `continue`, a CRD version that is not served (404),
//! and a forbidden list (403). No real API server runs in CI. The reporter (`report`) lists the
//! same responses; its watch requests are held open without events.

mod tools;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

const TOKEN: &str = "replay-token";

#[derive(Default)]
struct Replay {
    forbid: bool,
    /// `METHOD path?query authorization` of every request, in order.
    requests: Mutex<Vec<String>>,
    /// `(METHOD path?query content-type, body)` of every request that is not a GET.
    writes: Mutex<Vec<(String, String)>>,
}

/// The fixture a list request is answered with, by path (namespace removed) and page token.
fn fixture_for(path: &str, continue_token: Option<&str>) -> Option<&'static str> {
    let mut segments: Vec<&str> = path.split('/').collect();
    if let Some(i) = segments.iter().position(|s| *s == "namespaces") {
        segments.drain(i..(i + 2).min(segments.len()));
    }
    match (segments.join("/").as_str(), continue_token) {
        ("/apis/apps/v1/deployments", None) => Some("deployments-page1.json"),
        ("/apis/apps/v1/deployments", Some("page-2-token")) => Some("deployments-page2.json"),
        ("/apis/apps/v1/statefulsets", None) => Some("statefulsets.json"),
        ("/apis/workloads.x-k8s.io/v1alpha2/rolebasedgroups", None) => {
            Some("rolebasedgroups-v1alpha2.json")
        }
        ("/apis/leaderworkerset.x-k8s.io/v1/leaderworkersets", None) => {
            Some("leaderworkersets.json")
        }
        _ => None,
    }
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster")
}

async fn replay(State(state): State<Arc<Replay>>, request: Request) -> Response {
    let uri = request.uri().clone();
    let auth = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let query = uri.query().unwrap_or("");
    if let Ok(mut requests) = state.requests.lock() {
        requests.push(format!(
            "{} {}?{query} {auth}",
            request.method(),
            uri.path()
        ));
    }
    if request.method() != axum::http::Method::GET {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_string();
        let what = format!("{} {}?{query} {content_type}", request.method(), uri.path());
        let body = axum::body::to_bytes(request.into_body(), 1 << 20)
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        if let Ok(mut writes) = state.writes.lock() {
            writes.push((what, body.clone()));
        }
        // The applied object comes back, as from the API server.
        return ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    if state.forbid {
        let status = serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden",
            "message": "deployments.apps is forbidden: User \"ci\" cannot list resource",
            "code": 403
        });
        return (StatusCode::FORBIDDEN, axum::Json(status)).into_response();
    }
    // A watch that sees no change: the connection stays open and sends nothing.
    if query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1")
    {
        let quiet = futures::stream::pending::<Result<Vec<u8>, std::io::Error>>();
        return (
            [(header::CONTENT_TYPE, "application/json")],
            axum::body::Body::from_stream(quiet),
        )
            .into_response();
    }
    let token = query.split('&').find_map(|kv| kv.strip_prefix("continue="));
    match fixture_for(uri.path(), token).map(|f| std::fs::read(fixtures_dir().join(f))) {
        Some(Ok(body)) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Some(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        // What the API server answers for a group/version it does not serve.
        None => (StatusCode::NOT_FOUND, "404 page not found\n").into_response(),
    }
}

/// An HTTPS server on 127.0.0.1 with a fresh self-signed certificate, in its own thread.
struct ReplayServer {
    addr: SocketAddr,
    ca_pem: String,
    state: Arc<Replay>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ReplayServer {
    fn start(forbid: bool) -> ReplayServer {
        let Ok(certified) = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
        else {
            panic!("cannot make a test certificate");
        };
        let cert = CertificateDer::from(certified.cert.der().to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            certified.signing_key.serialize_der(),
        ));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(vec![cert], key));
        let Ok(mut config) = config else {
            panic!("cannot build the TLS config");
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let state = Arc::new(Replay {
            forbid,
            ..Replay::default()
        });
        let app = Router::new().fallback(replay).with_state(state.clone());
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, mut stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let Ok(listener) = TcpListener::bind("127.0.0.1:0").await else {
                    return;
                };
                let _ = addr_tx.send(listener.local_addr());
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => {
                            let Ok((tcp, _)) = accepted else { continue };
                            let acceptor = acceptor.clone();
                            let service = TowerToHyperService::new(app.clone());
                            tokio::spawn(async move {
                                let Ok(tls) = acceptor.accept(tcp).await else { return };
                                let _ = auto::Builder::new(TokioExecutor::new())
                                    .serve_connection(TokioIo::new(tls), service)
                                    .await;
                            });
                        }
                    }
                }
            });
        });
        let Ok(Ok(addr)) = addr_rx.recv() else {
            panic!("the replay server did not start");
        };
        ReplayServer {
            addr,
            ca_pem: certified.cert.pem(),
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: replay\nclusters:\n- name: replay\n  \
             cluster:\n    server: https://{}\n    certificate-authority-data: {ca}\ncontexts:\n\
             - name: replay\n  context:\n    cluster: replay\n    user: replay\n    namespace: \
             default\n- name: other\n  context:\n    cluster: replay\n    user: replay\n    \
             namespace: team-a\nusers:\n- name: replay\n  user:\n    token: {TOKEN}\n",
            self.addr
        );
        let path = dir.join("kubeconfig");
        assert!(std::fs::write(&path, text).is_ok());
        path
    }

    fn requests(&self) -> Vec<String> {
        self.state
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn audit(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_inference-webhook"))
        .arg("audit")
        .args(args)
        .env_remove("KUBECONFIG")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .output();
    match output {
        Ok(output) => output,
        Err(e) => panic!("cannot run the binary: {e}"),
    }
}

fn json_report(output: &Output) -> Value {
    match serde_json::from_slice(&output.stdout) {
        Ok(v) => v,
        Err(e) => panic!(
            "stdout is not the JSON report ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

fn names(report: &Value) -> Vec<String> {
    report["objects"]
        .as_array()
        .map(|objects| {
            objects
                .iter()
                .map(|o| {
                    format!(
                        "{}/{}",
                        o["kind"].as_str().unwrap_or("?"),
                        o["name"].as_str().unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn temp_dir() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("no temp dir: {e}"),
    }
}

#[test]
fn lists_every_kind_page_by_page_and_notes_a_missing_crd() {
    let server = ReplayServer::start(false);
    let dir = temp_dir();
    let kubeconfig = server.kubeconfig(dir.path());
    let kubeconfig = kubeconfig.to_string_lossy();
    let output = audit(&["--cluster", "-A", "--kubeconfig", &kubeconfig, "-o", "json"]);
    let report = json_report(&output);

    assert_eq!(
        names(&report),
        [
            "Deployment/qwen-vllm",
            "Deployment/llama-sglang",
            "RoleBasedGroup/vllm-rbg",
            "LeaderWorkerSet/sglang-multinode"
        ],
        "both pages of deployments, then the other kinds in table order"
    );
    assert_eq!(report["objects"][0]["apiVersion"], "apps/v1");
    assert_eq!(
        report["objects"][0]["source"]["resource"],
        "deployments.apps/v1"
    );
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("rolebasedgroups.workloads.x-k8s.io/v1alpha1: not served"),
        "{notes}"
    );
    assert_eq!(report["errors"], serde_json::json!([]));

    let requests = server.requests();
    assert!(
        requests.iter().all(|r| r.starts_with("GET ")),
        "read-only: {requests:?}"
    );
    assert!(
        requests
            .iter()
            .all(|r| r.contains("limit=250") && r.ends_with(&format!("Bearer {TOKEN}"))),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /apis/apps/v1/deployments?")
                && r.contains("continue=page-2-token")),
        "the second page is asked for with the continue token: {requests:?}"
    );
    assert!(
        requests.iter().all(|r| !r.contains("/namespaces/")),
        "-A lists across namespaces: {requests:?}"
    );
}

#[test]
fn cluster_objects_get_the_same_verdicts_as_manifests() {
    let server = ReplayServer::start(false);
    let dir = temp_dir();
    let kubeconfig = server.kubeconfig(dir.path());
    let output = audit(&[
        "--cluster",
        "-A",
        "--kubeconfig",
        &kubeconfig.to_string_lossy(),
        "-o",
        "json",
    ]);
    let report = json_report(&output);
    let objects = &report["objects"];
    // The vLLM Deployment lacks the labels: a patch, allowed.
    assert_eq!(objects[0]["decision"], "allowed");
    assert_eq!(objects[0]["templates"][0]["backend"], "vllm");
    assert!(
        objects[0]["patch"]
            .as_array()
            .is_some_and(|p| !p.is_empty()),
        "{}",
        objects[0]
    );
    // SGLang without --enable-metrics is denied, so the audit exits 1.
    assert_eq!(objects[1]["decision"], "denied", "{}", objects[1]);
    assert!(
        objects[1]["violations"]
            .to_string()
            .contains("metrics-disabled")
    );
    // The labeled RoleBasedGroup is clean.
    assert_eq!(objects[2]["decision"], "allowed");
    assert_eq!(objects[2]["patch"], serde_json::json!([]), "{}", objects[2]);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn a_namespace_and_a_context_select_what_is_listed() {
    let server = ReplayServer::start(false);
    let dir = temp_dir();
    let kubeconfig = server.kubeconfig(dir.path());
    let kubeconfig = kubeconfig.to_string_lossy();

    let output = audit(&["--cluster", "-n", "ml", "--kubeconfig", &kubeconfig]);
    assert!(output.status.code().is_some_and(|c| c < 2), "{output:?}");
    let explicit = server.requests();
    assert!(
        !explicit.is_empty() && explicit.iter().all(|r| r.contains("/namespaces/ml/")),
        "{explicit:?}"
    );

    let output = audit(&[
        "--cluster",
        "--context",
        "other",
        "--kubeconfig",
        &kubeconfig,
    ]);
    assert!(output.status.code().is_some_and(|c| c < 2), "{output:?}");
    let requests = server.requests();
    let from_context = &requests[explicit.len()..];
    assert!(
        !from_context.is_empty()
            && from_context
                .iter()
                .all(|r| r.contains("/namespaces/team-a/")),
        "the context's namespace is the default: {from_context:?}"
    );
}

#[test]
fn forbidden_lists_fail_with_the_rbac_it_needs() {
    let server = ReplayServer::start(true);
    let dir = temp_dir();
    let kubeconfig = server.kubeconfig(dir.path());
    let output = audit(&[
        "--cluster",
        "-A",
        "--kubeconfig",
        &kubeconfig.to_string_lossy(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("forbidden") && stderr.contains("get and list on deployments"),
        "{stderr}"
    );
}

#[test]
fn an_unreadable_kubeconfig_is_a_usage_error() {
    let dir = temp_dir();
    let missing = dir.path().join("nope");
    let output = audit(&["--cluster", "--kubeconfig", &missing.to_string_lossy()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot read kubeconfig"), "{stderr}");
}

#[test]
fn the_kubectl_plugin_audits_the_cluster_of_kubectls_kubeconfig() {
    let Some(kubectl) = tools::cached("bin/kubectl", "KUBECTL", ".ci/check-manifests.sh") else {
        return;
    };
    let server = ReplayServer::start(false);
    let dir = temp_dir();
    let kubeconfig = server.kubeconfig(dir.path());
    let bin = dir.path().join("bin");
    assert!(std::fs::create_dir(&bin).is_ok());
    let plugin = bin.join("kubectl-inference_webhook");
    assert!(std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_inference-webhook"), &plugin).is_ok());
    let path = std::env::join_paths(std::iter::once(bin.clone()).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )));
    let Ok(path) = path else {
        panic!("cannot build PATH");
    };
    // kubectl hands the plugin its environment: the plugin reads the same $KUBECONFIG.
    let output = Command::new(kubectl)
        .args([
            "inference-webhook",
            "audit",
            "--cluster",
            "-A",
            "-o",
            "json",
        ])
        .env("PATH", path)
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .output();
    let Ok(output) = output else {
        panic!("cannot run kubectl");
    };
    let report = json_report(&output);
    assert_eq!(
        names(&report),
        names(&json_report(&audit(&[
            "--cluster",
            "-A",
            "--kubeconfig",
            &kubeconfig.to_string_lossy(),
            "-o",
            "json",
        ]))),
        "the plugin lists what the binary lists"
    );
    assert_eq!(output.status.code(), Some(1), "one object is denied");
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.starts_with("GET ") && r.ends_with(&format!("Bearer {TOKEN}"))),
        "{:?}",
        server.requests()
    );
}

/// The reporter binary, killed when the test ends.
struct ReporterProcess {
    child: Child,
    addr: SocketAddr,
}

impl Drop for ReporterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(addr) => addr,
        Err(e) => panic!("no free port: {e}"),
    }
}

fn start_reporter(kubeconfig: &Path, flags: &[&str]) -> ReporterProcess {
    let addr = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_inference-webhook"))
        .arg("report")
        .args(flags)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg(format!("--metrics-listen={addr}"))
        .env_remove("KUBECONFIG")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .stdout(Stdio::null())
        .spawn();
    match child {
        Ok(child) => ReporterProcess { child, addr },
        Err(e) => panic!("cannot run the binary: {e}"),
    }
}

/// `GET path` over plain HTTP/1.0: the status code and the body.
fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let code = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_string();
    Some((code, body))
}

/// Poll `path` until `done` holds for its answer (or 60 s pass).
fn wait_for(addr: SocketAddr, path: &str, done: impl Fn(u16, &str) -> bool) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = (0, String::new());
    while Instant::now() < deadline {
        if let Some(answer) = http_get(addr, path) {
            if done(answer.0, &answer.1) {
                return answer;
            }
            last = answer;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{path} never got there; last answer {}: {}", last.0, last.1);
}

/// The sum of every series of a metric.
fn metric_sum(metrics: &str, name: &str) -> i64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<i64>().ok())
        .sum()
}

/// The objects of `audit --cluster -A -o json`.
fn audited_objects(kubeconfig: &Path) -> Vec<Value> {
    let report = json_report(&audit(&[
        "--cluster",
        "-A",
        "-o",
        "json",
        "--kubeconfig",
        &kubeconfig.to_string_lossy(),
    ]));
    report["objects"].as_array().cloned().unwrap_or_default()
}

#[test]
fn the_reporter_keeps_the_audits_verdicts_and_is_ready_once_every_served_kind_is_listed() {
    let server = ReplayServer::start(false);
    let dir = temp_dir();
    let kubeconfig = server.kubeconfig(dir.path());
    let objects = audited_objects(&kubeconfig);
    let inference = objects
        .iter()
        .filter(|o| {
            o["templates"].as_array().is_some_and(|ts| {
                ts.iter()
                    .any(|t| t["detections"].as_array().is_some_and(|d| !d.is_empty()))
            })
        })
        .count() as i64;
    let violations: i64 = objects
        .iter()
        .map(|o| o["violations"].as_array().map_or(0, Vec::len) as i64)
        .sum();
    assert!(
        inference > 0 && violations > 0,
        "the fixtures have inference workloads with findings"
    );

    let reporter = start_reporter(&kubeconfig, &["--no-policy-reports"]);
    let (_, ready) = wait_for(reporter.addr, "/readyz", |code, _| code == 200);
    assert!(
        ready.contains(
            "rolebasedgroups.workloads.x-k8s.io/v1alpha1: not served (CRD not installed)"
        ) && ready.contains("deployments.apps/v1: synced"),
        "{ready}"
    );
    let (_, metrics) = wait_for(reporter.addr, "/metrics", |_, m| {
        metric_sum(m, "inference_webhook_workloads") == inference
    });
    assert_eq!(
        metric_sum(&metrics, "inference_webhook_findings"),
        violations,
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"inference_webhook_reporter_watch_errors_total{resource="rolebasedgroups.workloads.x-k8s.io/v1alpha1",reason="not-found"}"#),
        "{metrics}"
    );
    // The list was paged and watches were started from its resourceVersion.
    let requests = server.requests();
    assert!(
        requests.iter().any(
            |r| r.contains("/apis/apps/v1/deployments?") && r.contains("continue=page-2-token")
        ),
        "{requests:?}"
    );
    assert!(
        requests.iter().any(|r| r.contains("watch=true")),
        "{requests:?}"
    );
}

#[test]
fn a_forbidden_reporter_says_what_it_needs_and_stays_up() {
    let server = ReplayServer::start(true);
    let dir = temp_dir();
    let kubeconfig = server.kubeconfig(dir.path());
    let mut reporter = start_reporter(&kubeconfig, &["--no-policy-reports"]);
    // Every watch fails on its own schedule; wait for the Deployments one.
    let (code, body) = wait_for(reporter.addr, "/readyz", |_, body| {
        body.contains("deployments.apps/v1: failing")
    });
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("deployments.apps/v1: failing: forbidden: the reporter's ServiceAccount needs get, list and watch on deployments"),
        "{body}"
    );
    let (_, metrics) = wait_for(reporter.addr, "/metrics", |_, m| {
        m.contains(r#"{resource="deployments.apps/v1",reason="forbidden"}"#)
    });
    assert!(
        metrics.contains("inference_webhook_reporter_watch_up{resource=\"deployments.apps/v1\"} 0"),
        "{metrics}"
    );
    assert_eq!(http_get(reporter.addr, "/healthz").map(|a| a.0), Some(200));
    assert!(
        matches!(reporter.child.try_wait(), Ok(None)),
        "the process stays up"
    );
}

#[test]
fn the_reporter_applies_one_policy_report_per_namespace_with_the_audits_findings() {
    let server = ReplayServer::start(false);
    let dir = temp_dir();
    let kubeconfig = server.kubeconfig(dir.path());
    let violations: usize = audited_objects(&kubeconfig)
        .iter()
        .map(|o| o["violations"].as_array().map_or(0, Vec::len))
        .sum();
    let _reporter = start_reporter(&kubeconfig, &["--debounce=100ms", "--open-reports"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let writes = loop {
        let writes = server
            .state
            .writes
            .lock()
            .map(|w| w.clone())
            .unwrap_or_default();
        if writes.len() >= 2 || Instant::now() > deadline {
            break writes;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let paths: Vec<&str> = writes.iter().map(|(what, _)| what.as_str()).collect();
    for (prefix, api_version) in [
        (
            "PATCH /apis/wgpolicyk8s.io/v1alpha2/namespaces/default/policyreports/inference-webhook?",
            "wgpolicyk8s.io/v1alpha2",
        ),
        (
            "PATCH /apis/openreports.io/v1alpha1/namespaces/default/reports/inference-webhook?",
            "openreports.io/v1alpha1",
        ),
    ] {
        let Some((what, body)) = writes.iter().find(|(what, _)| what.starts_with(prefix)) else {
            panic!("no {prefix}: {paths:?}");
        };
        // Server-side apply, as the reporter's field manager.
        assert!(
            what.contains("fieldManager=inference-webhook-reporter")
                && what.contains("force=true")
                && what.ends_with("application/apply-patch+yaml"),
            "{what}"
        );
        let applied: Value = serde_json::from_str(body).unwrap_or_default();
        assert_eq!(applied["apiVersion"], api_version, "{body}");
        let results = applied["results"].as_array().cloned().unwrap_or_default();
        let failing = results
            .iter()
            .filter(|r| r["result"] == "fail" || r["result"] == "warn")
            .count();
        assert_eq!(
            failing, violations,
            "one result per finding of the audit: {body}"
        );
        let summed: u64 = ["pass", "fail", "warn", "error", "skip"]
            .iter()
            .map(|k| applied["summary"][k].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(summed as usize, results.len(), "{body}");
    }
}
