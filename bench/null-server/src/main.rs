//! The floor: the webhook's own stack (axum on hyper-util's auto HTTP/1.1 + HTTP/2 server,
//! rustls with ring, ALPN h2 and http/1.1) answering every review `allowed` with no patch, after
//! reading the whole body. The webhook minus everything it does.
//!
//! `null-server ADDR CA_OUT [UID]`: a fresh self-signed certificate (SANs localhost and
//! 127.0.0.1) whose CA is written to CA_OUT.
//! `null-server ADDR --tls-cert CERT --tls-key KEY`: the pair from files, as `serve` takes it
//! (e2e/bench serves the webhook's own pair, so the same `caBundle` verifies both).
//!
//! Each answer echoes the request's `uid` (the one field a review must read). With UID given the
//! answer is that constant instead, read by nothing: bench/compare.sh passes its one fixture's uid
//! so that the floor does no per-request work at all.
//! Routes: the webhook's review paths, `/mutate`, `/mutate/{mode}` and `/validate/{mode}`.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, post};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rcgen::{CertificateParams, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// `uid` is a JSON string literal, quotes included.
fn answer(uid: &str) -> String {
    format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{{"uid":{uid},"allowed":true}}}}"#
    )
}

/// All a review needs from the request: the rest of the body is skipped unread.
#[derive(Deserialize)]
struct Review<'a> {
    #[serde(borrow)]
    request: Request<'a>,
}

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow)]
    uid: std::borrow::Cow<'a, str>,
}

fn json(body: impl IntoResponse) -> Response {
    ([("content-type", "application/json")], body).into_response()
}

fn echo(body: &[u8]) -> Response {
    match serde_json::from_slice::<Review>(body).and_then(|r| serde_json::to_string(&r.request.uid))
    {
        Ok(uid) => json(answer(&uid)),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            format!("not an AdmissionReview: {e}"),
        )
            .into_response(),
    }
}

fn handler(constant: Option<&'static str>) -> MethodRouter {
    post(move |body: Bytes| async move {
        match constant {
            Some(answer) => json(answer),
            None => echo(&body),
        }
    })
}

fn tls_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<rustls::ServerConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// A CA and a leaf for localhost and 127.0.0.1; returns the leaf pair and the CA's PEM.
fn self_signed() -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, String), Error> {
    // Distinct subject names: with rcgen's default name on both, the leaf's issuer equals its
    // subject and OpenSSL clients (curl) take it for a self-signed certificate.
    let name = |common_name: &str| {
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, common_name);
        dn
    };
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name = name("null-server CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate()?;
    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    leaf_params.distinguished_name = name("null-server");
    let leaf = leaf_params.signed_by(&key, &issuer)?;
    let key = PrivateKeyDer::Pkcs8(key.serialize_der().into());
    Ok((vec![leaf.der().clone()], key, ca.pem()))
}

/// A PEM chain (leaf first) and its key, as `serve --tls-cert --tls-key` reads them.
fn from_files(
    cert: &str,
    key: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Error> {
    let chain = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
    Ok((chain, PrivateKeyDer::from_pem_file(key)?))
}

const USAGE: &str =
    "usage: null-server ADDR CA_OUT [UID] | null-server ADDR --tls-cert CERT --tls-key KEY";

#[tokio::main]
async fn main() -> Result<(), Error> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (addr, certs, key, constant) = match argv[..] {
        [addr, "--tls-cert", cert, "--tls-key", key] => {
            let (certs, key) = from_files(cert, key)?;
            (addr, certs, key, None)
        }
        [addr, ca_out, ref uid @ ..] if uid.len() <= 1 && !ca_out.starts_with("--") => {
            let (certs, key, ca_pem) = self_signed()?;
            std::fs::write(ca_out, ca_pem)?;
            let constant = uid.first().map(|uid| -> &'static str {
                answer(&serde_json::Value::from(*uid).to_string()).leak()
            });
            (addr, certs, key, constant)
        }
        _ => return Err(USAGE.into()),
    };
    let addr: SocketAddr = addr.parse()?;
    let acceptor = TlsAcceptor::from(Arc::new(tls_config(certs, key)?));
    let app = Router::new()
        .route("/mutate", handler(constant))
        .route("/mutate/{mode}", handler(constant))
        .route("/validate/{mode}", handler(constant));
    let listener = TcpListener::bind(addr).await?;
    println!("listening on {addr}");
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = TowerToHyperService::new(app);
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}
