//! A local HTTPS server that replays recorded API list responses (`tests/fixtures/cluster/`),
//! and a kubeconfig for it: the cluster `audit --cluster` and the reporter list in the tests.
//! Paging with `continue`, a CRD version that is not served (404) and, on request, a forbidden
//! list (403); watch requests are held open without events; writes are recorded and echoed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use super::fixtures::{fixture_path, temp_dir};

/// The bearer token of the kubeconfig, checked on every request.
pub const TOKEN: &str = "replay-token";

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
        ("/api/v1/pods", None) => Some("pods.json"),
        // `/api/v1/namespaces`, its `namespaces` segment taken for a namespace's.
        ("/api/v1", None) => Some("namespaces.json"),
        _ => None,
    }
}

/// A request header's text, `-` when absent.
fn header_text(request: &Request, name: header::HeaderName) -> String {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string()
}

async fn replay(State(state): State<Arc<Replay>>, request: Request) -> Response {
    let uri = request.uri().clone();
    let auth = header_text(&request, header::AUTHORIZATION);
    let query = uri.query().unwrap_or("");
    if let Ok(mut requests) = state.requests.lock() {
        requests.push(format!(
            "{} {}?{query} {auth}",
            request.method(),
            uri.path()
        ));
    }
    if request.method() != axum::http::Method::GET {
        let content_type = header_text(&request, header::CONTENT_TYPE);
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
    match fixture_for(uri.path(), token).map(|f| std::fs::read(fixture_path("cluster").join(f))) {
        Some(Ok(body)) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Some(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        // What the API server answers for a group/version it does not serve.
        None => (StatusCode::NOT_FOUND, "404 page not found\n").into_response(),
    }
}

/// The replay server on 127.0.0.1 with a fresh self-signed certificate, in its own thread, and
/// a kubeconfig for it (context `replay`, namespace `default`, the current one; context
/// `other`, namespace `team-a`). Stopped when dropped.
pub struct ReplayServer {
    pub addr: SocketAddr,
    pub ca_pem: String,
    /// The kubeconfig file that reaches this server.
    pub kubeconfig: PathBuf,
    state: Arc<Replay>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Holds the kubeconfig.
    _dir: tempfile::TempDir,
}

impl ReplayServer {
    /// Start it; with `forbid`, every list is answered 403 Forbidden.
    pub fn start(forbid: bool) -> ReplayServer {
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
        let ca_pem = certified.cert.pem();
        let dir = temp_dir();
        let kubeconfig = write_kubeconfig(&dir, addr, &ca_pem);
        ReplayServer {
            addr,
            ca_pem,
            kubeconfig,
            state,
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// `METHOD path?query authorization` of every request so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.state
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// `(METHOD path?query content-type, body)` of every request so far that is not a GET.
    pub fn writes(&self) -> Vec<(String, String)> {
        self.state
            .writes
            .lock()
            .map(|w| w.clone())
            .unwrap_or_default()
    }
}

/// The kubeconfig of the replay server at `addr`, written in `dir`.
fn write_kubeconfig(dir: &tempfile::TempDir, addr: SocketAddr, ca_pem: &str) -> PathBuf {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let text = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: replay\nclusters:\n- name: replay\n  \
         cluster:\n    server: https://{addr}\n    certificate-authority-data: {ca}\ncontexts:\n\
         - name: replay\n  context:\n    cluster: replay\n    user: replay\n    namespace: \
         default\n- name: other\n  context:\n    cluster: replay\n    user: replay\n    \
         namespace: team-a\nusers:\n- name: replay\n  user:\n    token: {TOKEN}\n"
    );
    let path = dir.path().join("kubeconfig");
    assert!(std::fs::write(&path, text).is_ok());
    path
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
