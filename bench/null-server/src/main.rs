//! `null-server ADDR CA_OUT [UID]`: serves HTTPS on ADDR with a fresh self-signed certificate
//! (SANs localhost and 127.0.0.1), writes its CA to CA_OUT, and answers every POST with the same
//! allowed AdmissionReview after reading the whole body. The webhook minus everything it does.
//! The answer's `response.uid` is UID (default all zeros), fixed at start: bench/compare.sh passes
//! the fixture's request uid so that the constant answer is a valid review of that one request
//! without parsing anything per request.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rcgen::{CertificateParams, KeyPair};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn answer(uid: &str) -> String {
    format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{{"uid":"{uid}","allowed":true}}}}"#
    )
}

type Error = Box<dyn std::error::Error + Send + Sync>;

fn tls_config() -> Result<(rustls::ServerConfig, String), Error> {
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
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((config, ca.pem()))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut argv = std::env::args().skip(1);
    let (Some(addr), Some(ca_out)) = (argv.next(), argv.next()) else {
        return Err("usage: null-server ADDR CA_OUT [UID]".into());
    };
    let uid = argv
        .next()
        .unwrap_or_else(|| "00000000-0000-0000-0000-000000000000".into());
    if !uid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err("UID: letters, digits and '-' only".into());
    }
    let answer: &'static str = answer(&uid).leak();
    let addr: SocketAddr = addr.parse()?;
    let (config, ca_pem) = tls_config()?;
    std::fs::write(&ca_out, ca_pem)?;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let app = Router::new().route(
        "/mutate",
        post(move |_body: Bytes| async move { ([("content-type", "application/json")], answer) }),
    );
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
