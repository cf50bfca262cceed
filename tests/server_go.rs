//! The Go TLS stack that kube-apiserver uses, against the real server: a small Go client
//! (tests/go/webhookclient, standard library only) with a CA bundle, ServerName set to the
//! Service DNS name, and HTTP/2 attempted. The certificates come from the `certs` subcommand.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine as _;
use serde_json::Value;
use support::commands::{command, run_async};
use support::fixtures::{RBG, VLLM, fixture_path, fixture_value, repo};
use support::server::{NAMESPACE, SERVICE, start, start_serving};

/// Build the Go client once per test binary (no network: GOPROXY=off, no modules needed).
fn go_client() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let out = tmp.join("webhookclient");
        let source = repo().join("tests/go/webhookclient/main.go");
        let status = std::process::Command::new("go")
            .args(["build", "-o"])
            .arg(&out)
            .arg(&source)
            .env("GOPROXY", "off")
            .env("GOFLAGS", "-mod=mod")
            .env("GOCACHE", tmp.join("go-cache"))
            .env("GOPATH", tmp.join("go-path"))
            .status()
            .unwrap_or_else(|e| panic!("go build: {e} (CI installs golang-go: see .ci/run)"));
        assert!(status.success(), "go build failed");
        out
    })
}

/// Run the Go client: the JSON line it prints per review, or its error text.
async fn go_post(
    addr: std::net::SocketAddr,
    ca: &Path,
    server_name: &str,
    path: &str,
    files: &[&str],
) -> Result<Vec<Value>, String> {
    let binary = tokio::task::spawn_blocking(|| go_client().to_path_buf())
        .await
        .unwrap();
    let mut c = std::process::Command::new(binary);
    c.arg(format!("-addr={addr}"))
        .arg(format!("-ca={}", ca.display()))
        .arg(format!("-server-name={server_name}"))
        .arg(format!("-path={path}"))
        .args(files.iter().map(|f| fixture_path(f)));
    let (ok, out, err) = run_async(c).await;
    if !ok {
        return Err(err);
    }
    Ok(out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect())
}

fn uid_of(file: &str) -> Value {
    fixture_value(file)["request"]["uid"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certs_output_satisfies_the_go_client_under_every_service_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("certs");
    let mut certs = command("certs");
    certs
        .args(["--service", SERVICE, "--namespace", NAMESPACE, "--out"])
        .arg(&out);
    let (ok, _, err) = run_async(certs).await;
    assert!(ok, "certs: {err}");

    let ca = std::fs::read_to_string(out.join("ca.crt")).unwrap();
    let bundle = std::fs::read_to_string(out.join("caBundle")).unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(bundle.trim())
        .unwrap();
    assert_eq!(decoded, ca.as_bytes(), "caBundle is the base64 of ca.crt");
    use std::os::unix::fs::PermissionsExt as _;
    let key_mode = std::fs::metadata(out.join("tls.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o077, 0, "tls.key is private to its owner");

    let t = start_serving(&out.join("tls.crt"), &out.join("tls.key"), &[]).await;
    let addr = t.server.addr;
    let ca_path = out.join("ca.crt");
    let service_host = format!("{SERVICE}.{NAMESPACE}.svc");

    let answers = go_post(addr, &ca_path, &service_host, "/mutate", &[VLLM, RBG])
        .await
        .unwrap();
    assert_eq!(answers.len(), 2);
    for (answer, file) in answers.iter().zip([VLLM, RBG]) {
        assert_eq!(answer["proto"], "HTTP/2.0", "{answer}");
        assert_eq!(answer["uid"], uid_of(file));
        assert_eq!(answer["allowed"], true);
        assert!(answer["patchOps"].as_u64().unwrap() > 0, "{answer}");
    }
    let audit = go_post(addr, &ca_path, &service_host, "/validate/audit", &[VLLM])
        .await
        .unwrap();
    assert_eq!(
        (&audit[0]["patchOps"], &audit[0]["allowed"]),
        (&0.into(), &true.into())
    );
    assert!(audit[0]["warnings"].as_u64().unwrap() > 0);

    for name in [
        SERVICE.to_string(),
        format!("{SERVICE}.{NAMESPACE}"),
        format!("{SERVICE}.{NAMESPACE}.svc.cluster.local"),
    ] {
        let r = go_post(addr, &ca_path, &name, "/mutate", &[VLLM]).await;
        assert!(r.is_ok(), "{name}: {r:?}");
    }
    let wrong = go_post(
        addr,
        &ca_path,
        "inference-webhook.other.svc",
        "/mutate",
        &[VLLM],
    )
    .await;
    let error = wrong.expect_err("a name outside the SANs must fail verification");
    assert!(
        error.contains("x509") || error.contains("certificate"),
        "{error}"
    );
    t.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_self_signed_default_satisfies_the_go_client_on_localhost() {
    let t = start(&[]).await;
    let ca_path = t.dir.path().join("ca.crt");
    let answers = go_post(
        t.server.addr,
        &ca_path,
        "localhost",
        "/mutate/warn",
        &[VLLM],
    )
    .await
    .unwrap();
    assert_eq!(answers[0]["uid"], uid_of(VLLM));
    assert_eq!(answers[0]["proto"], "HTTP/2.0");
    assert!(answers[0]["patchOps"].as_u64().unwrap() > 0);
    t.server.shutdown().await.unwrap();
}
