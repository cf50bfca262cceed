//! Serving certificates: load a PEM pair, serve it through a swappable resolver, and re-read the
//! files on a timer so that rewritten files and a Kubernetes Secret volume's `..data` symlink
//! swap are picked up without a restart. A pair that does not load leaves the last good one.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::metrics::Metrics;

/// Lowest TLS version accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsVersion {
    #[value(name = "1.2")]
    V1_2,
    #[value(name = "1.3")]
    V1_3,
}

#[derive(Debug, thiserror::Error)]
pub(super) enum CertError {
    #[error("no CERTIFICATE block in the certificate file")]
    NoCertificate,
    #[error("unreadable PEM: {0}")]
    Pem(#[from] rustls_pki_types::pem::Error),
    #[error("unusable key or certificate: {0}")]
    Tls(#[from] rustls::Error),
}

pub(super) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parse a certificate chain (leaf first) and its private key (PKCS#8, RSA or SEC1), and check
/// that they belong together.
pub(super) fn load_pair(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, CertError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem).collect::<Result<Vec<_>, _>>()?;
    if chain.is_empty() {
        return Err(CertError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)?;
    Ok(CertifiedKey::from_der(chain, key, &provider())?)
}

/// Hands every handshake the pair currently in use.
#[derive(Debug)]
pub(super) struct CertResolver {
    current: ArcSwap<CertifiedKey>,
}

impl CertResolver {
    pub(super) fn new(initial: CertifiedKey) -> CertResolver {
        CertResolver {
            current: ArcSwap::from_pointee(initial),
        }
    }

    fn replace(&self, pair: CertifiedKey) {
        self.current.store(Arc::new(pair));
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// A rustls server configuration over `resolver`, with h2 and http/1.1 offered by ALPN.
pub(super) fn server_config(
    resolver: Arc<CertResolver>,
    min_version: TlsVersion,
) -> Result<rustls::ServerConfig, rustls::Error> {
    let versions: &[&rustls::SupportedProtocolVersion] = match min_version {
        TlsVersion::V1_2 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::V1_3 => &[&rustls::version::TLS13],
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// What the certificate watcher has done so far (tests await changes of it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CertStatus {
    /// Pairs loaded after the first.
    pub reloads: u64,
    /// Changed file contents that did not load.
    pub failures: u64,
}

/// Re-reads a certificate and key file pair when their contents change.
pub(super) struct CertWatcher {
    cert: PathBuf,
    key: PathBuf,
    resolver: Arc<CertResolver>,
    metrics: Arc<Metrics>,
    fingerprint: [u8; 32],
    status: watch::Sender<CertStatus>,
}

/// Hash of what the files hold now, or of why they cannot be read: a change of either is an
/// event worth acting on once.
fn fingerprint(cert: &std::io::Result<Vec<u8>>, key: &std::io::Result<Vec<u8>>) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in [cert, key] {
        match part {
            Ok(bytes) => {
                hash.update((bytes.len() as u64).to_le_bytes());
                hash.update(bytes);
            }
            Err(e) => hash.update(format!("unreadable: {:?}", e.kind())),
        }
    }
    hash.finalize().into()
}

impl CertWatcher {
    /// Load the pair for the first time; failing here fails start-up.
    pub(super) fn start(
        cert: PathBuf,
        key: PathBuf,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<(CertWatcher, Arc<CertResolver>)> {
        use anyhow::Context as _;
        let cert_bytes = std::fs::read(&cert).with_context(|| format!("{}", cert.display()))?;
        let key_bytes = std::fs::read(&key).with_context(|| format!("{}", key.display()))?;
        let pair = load_pair(&cert_bytes, &key_bytes)
            .with_context(|| format!("{} + {}", cert.display(), key.display()))?;
        set_not_after(&metrics, &pair);
        let resolver = Arc::new(CertResolver::new(pair));
        let watcher = CertWatcher {
            fingerprint: fingerprint(&Ok(cert_bytes), &Ok(key_bytes)),
            cert,
            key,
            resolver: resolver.clone(),
            metrics,
            status: watch::Sender::new(CertStatus::default()),
        };
        Ok((watcher, resolver))
    }

    pub(super) fn subscribe(&self) -> watch::Receiver<CertStatus> {
        self.status.subscribe()
    }

    /// Check the files once; load them if their contents changed.
    pub(super) async fn poll(&mut self) {
        let cert = tokio::fs::read(&self.cert).await;
        let key = tokio::fs::read(&self.key).await;
        // A Secret volume's `..data` swap between the two reads gives an old certificate with a
        // new key: not a bad pair, a torn read. Read the certificate again and, if it moved,
        // look next time, when the swap is complete.
        let again = tokio::fs::read(&self.cert).await;
        if again.as_ref().ok() != cert.as_ref().ok() {
            return;
        }
        let seen = fingerprint(&cert, &key);
        if seen == self.fingerprint {
            return;
        }
        self.fingerprint = seen;
        let loaded = match (&cert, &key) {
            (Ok(c), Ok(k)) => load_pair(c, k).map_err(|e| e.to_string()),
            (Err(e), _) | (_, Err(e)) => Err(format!("cannot read: {e}")),
        };
        match loaded {
            Ok(pair) => {
                set_not_after(&self.metrics, &pair);
                self.resolver.replace(pair);
                self.metrics.cert_reloads.inc();
                self.status.send_modify(|s| s.reloads += 1);
                tracing::info!(cert = %self.cert.display(), "serving certificate reloaded");
            }
            Err(error) => {
                self.metrics.cert_reload_failures.inc();
                self.status.send_modify(|s| s.failures += 1);
                tracing::warn!(
                    cert = %self.cert.display(), key = %self.key.display(), %error,
                    "certificate files changed but do not load; keeping the last good pair"
                );
            }
        }
    }

    /// Poll every `interval` until the task is dropped.
    pub(super) async fn run(mut self, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            self.poll().await;
        }
    }
}

fn set_not_after(metrics: &Metrics, pair: &CertifiedKey) {
    if let Some(leaf) = pair.cert.first()
        && let Some(t) = not_after(leaf)
    {
        metrics.cert_not_after.set(t);
    }
}

/// The `notAfter` of a DER certificate as a Unix timestamp.
pub(crate) fn not_after(der: &[u8]) -> Option<i64> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(certificate.validity().not_after.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs;

    fn issued() -> certs::Issued {
        match certs::issue(&["localhost".into(), "127.0.0.1".into()], 30) {
            Ok(i) => i,
            Err(e) => panic!("issue: {e}"),
        }
    }

    #[test]
    fn generated_pair_loads_and_reports_its_expiry() {
        let i = issued();
        let pair = load_pair(i.cert_pem.as_bytes(), i.key_pem.as_bytes());
        assert!(pair.is_ok(), "{:?}", pair.err());
        let expiry = pair
            .ok()
            .and_then(|p| p.cert.first().and_then(|c| not_after(c)));
        let in_30_days = time::OffsetDateTime::now_utc().unix_timestamp() + 30 * 86400 - 3600;
        assert!(
            matches!(expiry, Some(t) if (t - in_30_days).abs() < 120),
            "{expiry:?}"
        );
    }

    #[test]
    fn mismatched_or_garbage_pairs_are_refused() {
        let (a, b) = (issued(), issued());
        assert!(matches!(
            load_pair(a.cert_pem.as_bytes(), b.key_pem.as_bytes()),
            Err(CertError::Tls(_))
        ));
        assert!(matches!(
            load_pair(b"garbage", a.key_pem.as_bytes()),
            Err(CertError::NoCertificate)
        ));
        assert!(matches!(
            load_pair(a.cert_pem.as_bytes(), b"garbage"),
            Err(CertError::Pem(_))
        ));
    }
}
