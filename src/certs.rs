//! Certificates: a CA kept beside the serving certificate it signs (ECDSA P-256), used by the
//! `certs` subcommand (create, renew the leaf from the kept CA, rotate the CA) and by the
//! server's embedded self-signed default.
//!
//! Renewal must never fail a review: the API server verifies the leaf against the `caBundle`,
//! and pods pick up a new Secret a minute or more after it is written. So a renewal keeps the CA
//! (the bundle does not change), and a CA rotation ships the old and the new CA in the bundle
//! until the next renewal, when no pod can still serve a leaf of the old one.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use time::{Duration, OffsetDateTime};

#[derive(clap::Args, Debug)]
pub struct CertsArgs {
    /// Name of the webhook's Service.
    #[arg(
        long,
        env = "INFERENCE_WEBHOOK_SERVICE",
        default_value = "inference-webhook"
    )]
    pub service: String,
    /// Namespace of the webhook's Service.
    #[arg(
        long,
        env = "INFERENCE_WEBHOOK_NAMESPACE",
        default_value = "inference-webhook"
    )]
    pub namespace: String,
    /// Directory holding ca.crt, ca.key, tls.crt, tls.key, caBundle and its PEM form
    /// ca-bundle.crt (created if missing).
    #[arg(long, env = "INFERENCE_WEBHOOK_CERTS_OUT", default_value = "certs/out")]
    pub out: PathBuf,
    /// Validity of the serving certificate, in days.
    #[arg(long, env = "INFERENCE_WEBHOOK_CERTS_DAYS", default_value_t = 365)]
    pub days: u32,
    /// One more name for the serving certificate (DNS name or IP address), for a webhook the
    /// API server calls by URL (chart value webhook.url); repeatable, give it again on --renew
    /// and --rotate-ca.
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Validity of a new CA, in days (longer than --days, so that renewals can reuse it).
    #[arg(long, env = "INFERENCE_WEBHOOK_CA_DAYS", default_value_t = 3650)]
    pub ca_days: u32,
    /// Issue a new serving certificate from the CA in --out (ca.crt, ca.key); caBundle keeps
    /// only that CA.
    #[arg(long, conflicts_with = "rotate_ca")]
    pub renew: bool,
    /// Make a new CA and a serving certificate from it; the old CA moves to ca-previous.crt
    /// and stays in caBundle until the next --renew. Apply caBundle before the Secret.
    #[arg(long)]
    pub rotate_ca: bool,
}

/// A freshly generated CA and serving certificate, PEM encoded.
pub struct Issued {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// A CA that can sign: its certificate and its private key (PKCS#8), PEM encoded.
pub struct Ca {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A serving certificate and its private key, PEM encoded.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

/// The DNS names a Service is reached by from inside the cluster.
pub fn service_dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_string(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// An hour ago, to tolerate small clock skew.
fn not_before() -> OffsetDateTime {
    OffsetDateTime::now_utc() - Duration::hours(1)
}

impl Ca {
    /// A new CA valid for `days` days.
    pub fn generate(days: u32) -> Result<Ca, rcgen::Error> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut ca = CertificateParams::new(Vec::new())?;
        ca.distinguished_name = distinguished_name("inference-webhook CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca.not_before = not_before();
        ca.not_after = ca.not_before + Duration::days(i64::from(days));
        let cert = ca.self_signed(&key)?;
        Ok(Ca {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// When the CA expires (None if its certificate cannot be read).
    pub fn not_after(&self) -> Option<OffsetDateTime> {
        let der = CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).ok()?;
        let t = crate::server::not_after(&der)?;
        OffsetDateTime::from_unix_timestamp(t).ok()
    }

    /// A serving certificate for `names` (DNS names or IP addresses) valid for `days` days, but
    /// never past the CA's own expiry (a chain with an expired CA does not verify).
    pub fn issue(&self, names: &[String], days: u32) -> Result<Leaf, rcgen::Error> {
        let ca_key = KeyPair::from_pem(&self.key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, ca_key)?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut leaf = CertificateParams::new(names.to_vec())?;
        let common_name = names.first().map_or("inference-webhook", String::as_str);
        leaf.distinguished_name = distinguished_name(common_name);
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.use_authority_key_identifier_extension = true;
        leaf.not_before = not_before();
        leaf.not_after = leaf.not_before + Duration::days(i64::from(days));
        if let Some(ca_end) = self.not_after() {
            leaf.not_after = leaf.not_after.min(ca_end);
        }
        let cert = leaf.signed_by(&key, &issuer)?;
        Ok(Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Generate a CA and a serving certificate for `names`, both valid for `days` days.
pub fn issue(names: &[String], days: u32) -> Result<Issued, rcgen::Error> {
    let ca = Ca::generate(days)?;
    let leaf = ca.issue(names, days)?;
    Ok(Issued {
        ca_pem: ca.cert_pem,
        cert_pem: leaf.cert_pem,
        key_pem: leaf.key_pem,
    })
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// The `caBundle` field of a webhook configuration: the CA PEM (one or more), base64 encoded.
pub fn ca_bundle(ca_pem: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(ca_pem)
}

/// Write a file readable by its owner only (private keys).
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // `mode` applies only to a new file: an existing one may have been readable by others.
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(contents.as_bytes())
}

/// The files of a certificate directory.
struct Files<'a>(&'a Path);

impl Files<'_> {
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn read(&self, name: &str) -> anyhow::Result<String> {
        let path = self.path(name);
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    }

    fn write(&self, name: &str, contents: &str) -> anyhow::Result<()> {
        let path = self.path(name);
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))
    }

    fn write_private(&self, name: &str, contents: &str) -> anyhow::Result<()> {
        let path = self.path(name);
        write_private(&path, contents).with_context(|| format!("writing {}", path.display()))
    }

    fn remove(&self, name: &str) -> anyhow::Result<()> {
        let path = self.path(name);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", path.display()))
            }
            _ => Ok(()),
        }
    }
}

const PREVIOUS_CA: &str = "ca-previous.crt";

/// Pick the CA for this run and write it (and the previous CA on rotation); what to print.
fn choose_ca(args: &CertsArgs, files: &Files<'_>) -> anyhow::Result<(Ca, &'static str)> {
    if args.renew {
        let ca = Ca {
            cert_pem: files.read("ca.crt")?,
            key_pem: files.read("ca.key")?,
        };
        // One period has passed since a rotation: no pod serves a leaf of the old CA any more.
        files.remove(PREVIOUS_CA)?;
        return Ok((ca, "renewed tls.crt from the kept CA; caBundle unchanged"));
    }
    let message = if args.rotate_ca {
        files
            .write(PREVIOUS_CA, &files.read("ca.crt")?)
            .context("keeping the old CA for caBundle")?;
        "rotated the CA: caBundle holds the new and the old CA until the next --renew; apply caBundle, then the Secret"
    } else {
        anyhow::ensure!(
            !files.path("ca.key").exists(),
            "{} holds a CA already: --renew issues a new serving certificate from it without \
             changing caBundle, --rotate-ca replaces the CA safely",
            args.out.display()
        );
        files.remove(PREVIOUS_CA)?;
        "made a new CA and serving certificate"
    };
    let ca = Ca::generate(args.ca_days).context("generating a CA")?;
    files.write("ca.crt", &ca.cert_pem)?;
    files.write_private("ca.key", &ca.key_pem)?;
    Ok((ca, message))
}

fn write_all(args: &CertsArgs) -> anyhow::Result<String> {
    let mut names = service_dns_names(&args.service, &args.namespace);
    names.extend(args.hosts.iter().cloned());
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let files = Files(&args.out);
    let (ca, done) = choose_ca(args, &files)?;
    let leaf = ca
        .issue(&names, args.days)
        .context("issuing the serving certificate (is ca.key the key of ca.crt?)")?;
    files.write("tls.crt", &leaf.cert_pem)?;
    files.write_private("tls.key", &leaf.key_pem)?;
    let previous = std::fs::read_to_string(files.path(PREVIOUS_CA)).unwrap_or_default();
    let bundle = format!("{}{previous}", ca.cert_pem);
    files.write("caBundle", &ca_bundle(&bundle))?;
    files.write("ca-bundle.crt", &bundle)?;
    let mut summary = format!(
        "{done}\nwrote {} (SANs: {})",
        args.out.display(),
        names.join(", ")
    );
    if let Some(end) = ca.not_after()
        && end < OffsetDateTime::now_utc() + Duration::days(2 * i64::from(args.days))
    {
        summary.push_str(&format!(
            "\nthe CA expires on {}: rotate it (--rotate-ca) a period before then",
            end.date()
        ));
    }
    Ok(summary)
}

pub fn run(args: CertsArgs) -> ExitCode {
    match write_all(&args) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("certs: {e:#}");
            ExitCode::FAILURE
        }
    }
}
