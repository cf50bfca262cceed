//! Certificates: one generator (a CA and a serving certificate signed by it, ECDSA P-256) used by
//! both the `certs` subcommand and the server's embedded self-signed default.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
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
    /// Directory to write ca.crt, tls.crt, tls.key and caBundle into (created if missing).
    #[arg(long, env = "INFERENCE_WEBHOOK_CERTS_OUT", default_value = "certs/out")]
    pub out: PathBuf,
    /// Validity of both certificates, in days.
    #[arg(long, env = "INFERENCE_WEBHOOK_CERTS_DAYS", default_value_t = 365)]
    pub days: u32,
}

/// A freshly generated CA and serving certificate, PEM encoded.
pub struct Issued {
    pub ca_pem: String,
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

/// Generate a CA and a serving certificate for `names` (DNS names or IP addresses), valid for
/// `days` days from an hour ago (to tolerate small clock skew).
pub fn issue(names: &[String], days: u32) -> Result<Issued, rcgen::Error> {
    let not_before = OffsetDateTime::now_utc() - Duration::hours(1);
    let not_after = not_before + Duration::days(i64::from(days));

    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut ca = CertificateParams::new(Vec::new())?;
    ca.distinguished_name = distinguished_name("inference-webhook CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut leaf = CertificateParams::new(names.to_vec())?;
    let common_name = names.first().map_or("inference-webhook", String::as_str);
    leaf.distinguished_name = distinguished_name(common_name);
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = not_before;
    leaf.not_after = not_after;
    let cert = leaf.signed_by(&key, &issuer)?;

    Ok(Issued {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// The `caBundle` field of a webhook configuration: the CA PEM, base64 encoded.
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
    file.write_all(contents.as_bytes())
}

fn write_all(args: &CertsArgs) -> anyhow::Result<Vec<String>> {
    let names = service_dns_names(&args.service, &args.namespace);
    let issued = issue(&names, args.days).context("generating certificates")?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let write = |name: &str, contents: &str| {
        let path = args.out.join(name);
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))
    };
    write("ca.crt", &issued.ca_pem)?;
    write("tls.crt", &issued.cert_pem)?;
    let key_path = args.out.join("tls.key");
    write_private(&key_path, &issued.key_pem)
        .with_context(|| format!("writing {}", key_path.display()))?;
    write("caBundle", &ca_bundle(&issued.ca_pem))?;
    Ok(names)
}

pub fn run(args: CertsArgs) -> ExitCode {
    match write_all(&args) {
        Ok(names) => {
            println!(
                "wrote ca.crt, tls.crt, tls.key and caBundle to {} (SANs: {})",
                args.out.display(),
                names.join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("certs: {e:#}");
            ExitCode::FAILURE
        }
    }
}
