//! The webhook server in process on 127.0.0.1:0, real TLS clients that trust only a given CA,
//! and a raw TLS connection for tests that control exactly what goes on the wire.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use clap::Parser;
use inference_webhook::server::{ServeArgs, Server};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The name a cluster's API server uses for the webhook Service.
pub const SERVICE: &str = "inference-webhook";
pub const NAMESPACE: &str = "webhook-ns";
pub const SERVICE_HOST: &str = "inference-webhook.webhook-ns.svc";

/// A running in-process server and the directory holding its files.
pub struct TestServer {
    pub server: Server,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub fn ca_pem(&self) -> String {
        self.server
            .generated_ca_pem
            .clone()
            .expect("self-signed CA")
    }

    pub fn client(&self, host: &str) -> reqwest::Client {
        client(&self.ca_pem(), host, self.server.addr)
    }

    pub fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.server.addr.port())
    }
}

/// Start a server with the self-signed default (SANs: localhost, 127.0.0.1 and the Service
/// name) and `extra` flags.
pub async fn start(extra: &[&str]) -> TestServer {
    let dir = super::fixtures::temp_dir();
    let ca_out = dir.path().join("ca.crt");
    let mut argv = vec![
        "serve".to_string(),
        "--listen=127.0.0.1:0".into(),
        "--metrics-listen=127.0.0.1:0".into(),
        format!("--ca-out={}", ca_out.display()),
        format!("--dns-name=localhost,127.0.0.1,{SERVICE_HOST}"),
    ];
    argv.extend(extra.iter().map(|s| s.to_string()));
    let args = ServeArgs::try_parse_from(argv).expect("serve flags");
    let server = Server::start(&args).await.expect("server starts");
    TestServer { server, dir }
}

/// Start a server on the certificate and key files given (`--tls-cert`, `--tls-key`) and `extra`
/// flags.
pub async fn start_serving(cert: &Path, key: &Path, extra: &[&str]) -> TestServer {
    let cert = format!("--tls-cert={}", cert.display());
    let key = format!("--tls-key={}", key.display());
    let mut args = vec![cert.as_str(), key.as_str()];
    args.extend_from_slice(extra);
    start(&args).await
}

/// A reqwest client (rustls) that trusts only `ca_pem` and reaches `host` at `addr`.
pub fn client(ca_pem: &str, host: &str, addr: SocketAddr) -> reqwest::Client {
    client_trusting(&[ca_pem], host, addr)
}

/// A reqwest client (rustls) that trusts only the CAs `ca_pems` and reaches `host` at `addr`.
pub fn client_trusting(ca_pems: &[&str], host: &str, addr: SocketAddr) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .resolve(host, addr);
    for ca_pem in ca_pems {
        let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA PEM");
        builder = builder.add_root_certificate(ca);
    }
    builder.build().expect("client")
}

/// POST a JSON body; returns the status and the JSON answer.
pub async fn post_json(client: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    post_bytes(client, url, serde_json::to_vec(body).unwrap()).await
}

/// POST `body` as `application/json`, whatever it holds; returns the status and the JSON answer.
pub async fn post_bytes(client: &reqwest::Client, url: &str, body: Vec<u8>) -> (u16, Value) {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("body");
    let json = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "answer is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, json)
}

/// A raw TLS connection (tokio-rustls) trusting only `ca_pem`, for tests that need to control
/// exactly what goes on the wire.
pub async fn raw_tls(ca_pem: &str, host: &str, addr: SocketAddr) -> TlsStream<TcpStream> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = rustls_pki_types::ServerName::try_from(host.to_string()).expect("server name");
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake")
}

/// An HTTP/1.1 POST that stops after the headers and waits for `100 Continue`: once that
/// arrives, the server's handler is running and reading the body, i.e. the review is in flight.
pub struct InFlight {
    stream: TlsStream<TcpStream>,
    body: Vec<u8>,
}

impl InFlight {
    pub async fn begin(mut stream: TlsStream<TcpStream>, path: &str, body: Vec<u8>) -> InFlight {
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: {SERVICE_HOST}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nexpect: 100-continue\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.expect("write head");
        stream.flush().await.expect("flush");
        let interim = read_until(&mut stream, b"\r\n\r\n").await;
        assert!(
            interim.starts_with(b"HTTP/1.1 100"),
            "expected 100 Continue, got {}",
            String::from_utf8_lossy(&interim)
        );
        InFlight { stream, body }
    }

    /// Send the body and read the whole response.
    pub async fn finish(mut self) -> (u16, Value) {
        self.stream.write_all(&self.body).await.expect("write body");
        self.stream.flush().await.expect("flush");
        self.response().await
    }

    /// Read the response without sending the body (the server must answer on its own).
    pub async fn response(mut self) -> (u16, Value) {
        let head = read_until(&mut self.stream, b"\r\n\r\n").await;
        let head = String::from_utf8(head).expect("ASCII head");
        let status: u16 = head[9..12].parse().expect("status");
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .expect("content-length");
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await.expect("body");
        (status, serde_json::from_slice(&body).expect("JSON body"))
    }
}

/// Read until `end` has been seen (bounded: a response head is small).
async fn read_until(stream: &mut TlsStream<TcpStream>, end: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    while !out.ends_with(end) && out.len() < 64 * 1024 {
        let n = stream.read(&mut byte).await.expect("read");
        assert!(
            n == 1,
            "connection closed after {:?}",
            String::from_utf8_lossy(&out)
        );
        out.push(byte[0]);
    }
    out
}
