//! TLS behaviour of the webhook port: certificate rotation (rewritten files and the Kubernetes
//! `..data` symlink swap) with traffic running, bad files keeping the last good pair, key
//! formats, the minimum TLS version (checked with `openssl s_client`), and no plaintext.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use inference_webhook::certs;
use inference_webhook::server::CertStatus;
use support::commands::run_async;
use support::fixtures::{VLLM, fixture_value};
use support::metrics::scrape;
use support::server::{
    NAMESPACE, SERVICE, SERVICE_HOST, TestServer, client_trusting, start, start_serving,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// A CA and serving certificate for localhost and the Service name; the chain file holds the
/// leaf then the CA, as a real Secret often does.
fn issue() -> certs::Issued {
    certs::issue(&["localhost".into(), SERVICE_HOST.into()], 2).unwrap()
}

fn write_pair(dir: &Path, issued: &certs::Issued) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("tls.crt"),
        format!("{}{}", issued.cert_pem, issued.ca_pem),
    )
    .unwrap();
    std::fs::write(dir.join("tls.key"), &issued.key_pem).unwrap();
}

/// Serve the pair in `dir`, watching the files closely.
async fn start_with_files(dir: &Path) -> TestServer {
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    start_serving(&cert, &key, &["--cert-poll-interval=20ms"]).await
}

async fn healthz(client: &reqwest::Client, addr: std::net::SocketAddr) -> reqwest::Result<u16> {
    let url = format!("https://{SERVICE_HOST}:{}/healthz", addr.port());
    Ok(client.get(url).send().await?.status().as_u16())
}

async fn wait_status(status: &mut watch::Receiver<CertStatus>, want: impl Fn(&CertStatus) -> bool) {
    tokio::time::timeout(Duration::from_secs(10), status.wait_for(|s| want(s)))
        .await
        .expect("certificate watcher reacted in time")
        .expect("watcher alive");
}

/// Reviews sent without pause, half on a kept-alive connection and half on fresh ones, by a
/// client that trusts both the old and the new CA (as a cluster's caBundle does mid-rotation).
struct Traffic {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<Vec<String>>,
}

impl Traffic {
    fn start(cas: Vec<String>, addr: std::net::SocketAddr) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let (stop2, ok2) = (stop.clone(), ok.clone());
        let task = tokio::spawn(async move {
            let body = serde_json::to_vec(&fixture_value(VLLM)).unwrap();
            let url = format!("https://{SERVICE_HOST}:{}/mutate", addr.port());
            let cas: Vec<&str> = cas.iter().map(String::as_str).collect();
            let kept = client_trusting(&cas, SERVICE_HOST, addr);
            let mut failures = Vec::new();
            let mut i = 0u64;
            while !stop2.load(Ordering::Acquire) && i < 1_000_000 {
                i += 1;
                let client = if i.is_multiple_of(2) {
                    kept.clone()
                } else {
                    client_trusting(&cas, SERVICE_HOST, addr)
                };
                let sent = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => {
                        ok2.fetch_add(1, Ordering::AcqRel);
                    }
                    Ok(r) => failures.push(format!("HTTP {}", r.status())),
                    Err(e) => failures.push(format!("{e:?}")),
                }
            }
            failures
        });
        Traffic { stop, ok, task }
    }

    /// Wait until at least `n` more reviews succeeded (so traffic overlaps the event).
    async fn overlap(&self, n: u64) {
        let start = self.ok.load(Ordering::Acquire);
        tokio::time::timeout(Duration::from_secs(20), async {
            while self.ok.load(Ordering::Acquire) < start + n {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("traffic flows");
    }

    async fn stop(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Release);
        let failures = self.task.await.unwrap();
        (self.ok.load(Ordering::Acquire), failures)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewritten_files_reach_new_connections_and_no_request_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (issue(), issue());
    write_pair(dir.path(), &old);
    let t = start_with_files(dir.path()).await;
    let addr = t.server.addr;
    let mut status = t.server.cert_status().unwrap();
    let traffic = Traffic::start(vec![old.ca_pem.clone(), new.ca_pem.clone()], addr);
    traffic.overlap(20).await;

    write_pair(dir.path(), &new);
    wait_status(&mut status, |s| s.reloads >= 1).await;
    traffic.overlap(20).await;

    assert_rotated(traffic, &old, &new, addr).await;
    t.server.shutdown().await.unwrap();
}

/// After a rotation: new connections see only the new certificate, and no request of the
/// traffic that ran throughout failed.
async fn assert_rotated(
    traffic: Traffic,
    old: &certs::Issued,
    new: &certs::Issued,
    addr: std::net::SocketAddr,
) {
    assert_eq!(
        healthz(&client_trusting(&[&new.ca_pem], SERVICE_HOST, addr), addr)
            .await
            .unwrap(),
        200
    );
    assert!(
        healthz(&client_trusting(&[&old.ca_pem], SERVICE_HOST, addr), addr)
            .await
            .is_err()
    );
    let (ok, failures) = traffic.stop().await;
    assert!(
        failures.is_empty(),
        "{} of {} failed: {:?}",
        failures.len(),
        ok,
        &failures[..1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_volume_symlink_swap_is_picked_up() {
    // The layout kubelet gives a mounted Secret: files are links through `..data`, which is
    // itself a link to a timestamped directory, replaced atomically on update.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (old, new) = (issue(), issue());
    write_pair(&root.join("..2026_01_01_00_00_00.1"), &old);
    std::os::unix::fs::symlink("..2026_01_01_00_00_00.1", root.join("..data")).unwrap();
    for file in ["tls.crt", "tls.key"] {
        std::os::unix::fs::symlink(format!("..data/{file}"), root.join(file)).unwrap();
    }
    let t = start_with_files(root).await;
    let addr = t.server.addr;
    let mut status = t.server.cert_status().unwrap();
    let traffic = Traffic::start(vec![old.ca_pem.clone(), new.ca_pem.clone()], addr);
    traffic.overlap(20).await;

    write_pair(&root.join("..2026_02_01_00_00_00.2"), &new);
    std::os::unix::fs::symlink("..2026_02_01_00_00_00.2", root.join("..data_tmp")).unwrap();
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    wait_status(&mut status, |s| s.reloads >= 1).await;
    traffic.overlap(20).await;

    assert_eq!(
        *status.borrow(),
        CertStatus {
            reloads: 1,
            failures: 0
        },
        "one atomic swap, one reload"
    );
    assert_rotated(traffic, &old, &new, addr).await;
    t.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_certificate_files_keep_the_last_good_pair_until_good_ones_return() {
    let dir = tempfile::tempdir().unwrap();
    let (good, next) = (issue(), issue());
    write_pair(dir.path(), &good);
    let t = start_with_files(dir.path()).await;
    let addr = t.server.addr;
    let mut status = t.server.cert_status().unwrap();
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    let truncated = next.cert_pem[..next.cert_pem.len() / 2].to_string();
    type Fault<'a> = (&'a str, Box<dyn Fn() + 'a>);
    let faults: [Fault; 4] = [
        (
            "garbage",
            Box::new(|| std::fs::write(&cert, "garbage").unwrap()),
        ),
        (
            "deleted",
            Box::new(|| {
                std::fs::remove_file(&cert).unwrap();
                std::fs::remove_file(&key).unwrap();
            }),
        ),
        (
            "truncated",
            Box::new(|| {
                std::fs::write(&cert, &truncated).unwrap();
                std::fs::write(&key, &next.key_pem).unwrap();
            }),
        ),
        (
            "key of another certificate",
            Box::new(|| {
                std::fs::write(&cert, &good.cert_pem).unwrap();
                std::fs::write(&key, &next.key_pem).unwrap();
            }),
        ),
    ];
    for (what, fault) in faults {
        let before = status.borrow().failures;
        fault();
        wait_status(&mut status, |s| s.failures > before).await;
        assert_eq!(status.borrow().reloads, 0, "{what}");
        let still = healthz(&client_trusting(&[&good.ca_pem], SERVICE_HOST, addr), addr).await;
        assert_eq!(still.unwrap(), 200, "{what}: last good pair still served");
    }
    write_pair(dir.path(), &next);
    wait_status(&mut status, |s| s.reloads >= 1).await;
    assert_eq!(
        healthz(&client_trusting(&[&next.ca_pem], SERVICE_HOST, addr), addr)
            .await
            .unwrap(),
        200
    );

    let metrics = scrape(t.server.metrics_addr).await;
    let failures = status.borrow().failures;
    assert!(failures >= 4);
    assert!(
        metrics.contains(&format!(
            "inference_webhook_certificate_reload_failures_total {failures}\n"
        )),
        "{metrics}"
    );
    assert!(metrics.contains("inference_webhook_certificate_reloads_total 1\n"));
    t.server.shutdown().await.unwrap();
}

/// Make a CA and a leaf for localhost with openssl, the leaf key in the given form.
async fn openssl_pair(
    dir: &Path,
    key_type: &str,
    key_form: &str,
) -> (String, std::path::PathBuf, std::path::PathBuf) {
    let sh = |script: String| {
        let mut c = std::process::Command::new("sh");
        c.arg("-ec").arg(script).current_dir(dir);
        c
    };
    let new_key = match key_type {
        "rsa" => "-newkey rsa:2048",
        _ => "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1",
    };
    let convert = match (key_type, key_form) {
        (_, "pkcs8") => "cp leaf.key leaf.final.key",
        ("rsa", _) => "openssl rsa -in leaf.key -traditional -out leaf.final.key",
        _ => "openssl ec -in leaf.key -out leaf.final.key",
    };
    let script = format!(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
           -keyout ca.key -out ca.crt -days 2 -subj /CN=test-ca 2>/dev/null
         openssl req {new_key} -nodes -keyout leaf.key -out leaf.csr -subj /CN=localhost 2>/dev/null
         printf 'subjectAltName=DNS:localhost,DNS:{SERVICE_HOST}\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext
         openssl x509 -req -in leaf.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out leaf.crt -days 2 -extfile ext 2>/dev/null
         {convert} 2>/dev/null"
    );
    let (ok, _, err) = run_async(sh(script)).await;
    assert!(ok, "openssl: {err}");
    let ca = std::fs::read_to_string(dir.join("ca.crt")).unwrap();
    (ca, dir.join("leaf.crt"), dir.join("leaf.final.key"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkcs8_rsa_and_sec1_keys_all_serve() {
    for (key_type, key_form, pem_label) in [
        ("rsa", "pkcs8", "PRIVATE KEY"),
        ("rsa", "pkcs1", "RSA PRIVATE KEY"),
        ("ec", "pkcs8", "PRIVATE KEY"),
        ("ec", "sec1", "EC PRIVATE KEY"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = openssl_pair(dir.path(), key_type, key_form).await;
        let key_text = std::fs::read_to_string(&key).unwrap();
        assert!(
            key_text.starts_with(&format!("-----BEGIN {pem_label}-----")),
            "{key_type}/{key_form}: {}",
            key_text.lines().next().unwrap_or("")
        );
        let t = start_serving(&cert, &key, &[]).await;
        let status = healthz(
            &client_trusting(&[&ca], SERVICE_HOST, t.server.addr),
            t.server.addr,
        )
        .await;
        assert_eq!(status.unwrap(), 200, "{key_type}/{key_form}");
        t.server.shutdown().await.unwrap();
    }
}

/// `openssl s_client` at one TLS version: (handshake succeeded, output).
async fn s_client(t: &TestServer, version_flag: &str) -> (bool, String) {
    let mut c = std::process::Command::new("openssl");
    c.args(["s_client", "-connect"])
        .arg(t.server.addr.to_string())
        .args(["-servername", "localhost", version_flag, "-CAfile"])
        .arg(t.dir.path().join("ca.crt"))
        .args(["-verify_return_error", "-brief"])
        .stdin(std::process::Stdio::null());
    let (ok, out, err) = run_async(c).await;
    (ok, format!("{out}{err}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_min_version_1_3_refuses_a_tls_1_2_client() {
    let strict = start(&["--tls-min-version=1.3"]).await;
    let (ok, out) = s_client(&strict, "-tls1_2").await;
    assert!(!ok, "TLS 1.2 handshake must fail:\n{out}");
    let (ok, out) = s_client(&strict, "-tls1_3").await;
    assert!(ok && out.contains("TLSv1.3"), "{out}");
    strict.server.shutdown().await.unwrap();

    let default = start(&[]).await;
    let (ok, out) = s_client(&default, "-tls1_2").await;
    assert!(
        ok && out.contains("TLSv1.2"),
        "TLS 1.2 is accepted by default:\n{out}"
    );
    default.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_http_gets_no_http_answer() {
    let t = start(&[]).await;
    let mut tcp = tokio::net::TcpStream::connect(t.server.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server closes a plaintext connection");
    assert!(
        !answer.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    let plain = reqwest::get(format!("http://{}/healthz", t.server.addr)).await;
    assert!(plain.is_err());
    t.server.shutdown().await.unwrap();
}

/// `inference-webhook certs` for the test Service into `out`, with `extra` flags.
fn certs_command(out: &Path, extra: &[&str]) -> std::process::Output {
    let mut command = support::commands::command("certs");
    command
        .args([
            "--service",
            SERVICE,
            "--namespace",
            NAMESPACE,
            "--days",
            "2",
        ])
        .arg("--out")
        .arg(out)
        .args(extra);
    support::commands::run(&mut command, None)
}

fn certs_ok(out: &Path, extra: &[&str]) {
    let done = certs_command(out, extra);
    assert!(
        done.status.success(),
        "certs {extra:?}: {}",
        String::from_utf8_lossy(&done.stderr)
    );
}

/// The CAs the cluster trusts after applying `out/caBundle`.
fn bundle_of(out: &Path) -> String {
    use base64::Engine as _;
    let text = std::fs::read_to_string(out.join("caBundle")).unwrap();
    let pem = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .unwrap();
    String::from_utf8(pem).unwrap()
}

/// "Apply the Secret": copy the serving pair from `out` into the pod's volume `pod`.
fn apply_secret(out: &Path, pod: &Path) {
    std::fs::create_dir_all(pod).unwrap();
    for name in ["tls.crt", "tls.key"] {
        std::fs::copy(out.join(name), pod.join(name)).unwrap();
    }
}

/// The leaf a fresh handshake is given, as PEM-decoded DER.
async fn served_leaf(bundle: &str, addr: std::net::SocketAddr) -> Vec<u8> {
    let tls = support::server::raw_tls(bundle, SERVICE_HOST, addr).await;
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn leaf_der(out: &Path) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject as _;
    let pem = std::fs::read(out.join("tls.crt")).unwrap();
    rustls_pki_types::CertificateDer::from_pem_slice(&pem)
        .unwrap()
        .to_vec()
}

async fn assert_no_failures(traffic: Traffic, what: &str) {
    let (ok, failures) = traffic.stop().await;
    assert!(ok > 0, "{what}: no traffic");
    assert!(
        failures.is_empty(),
        "{what}: {} of {} failed: {:?}",
        failures.len(),
        ok + failures.len() as u64,
        &failures[..1]
    );
}

/// `--host` adds a name (here an IP address) for a webhook the API server calls by URL; the
/// Service's names stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_is_one_more_name_of_the_serving_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (out, pod) = (dir.path().join("certs"), dir.path().join("pod"));
    certs_ok(&out, &["--host", "127.0.0.1"]);
    apply_secret(&out, &pod);
    let t = start_with_files(&pod).await;
    let bundle = bundle_of(&out);
    for host in ["127.0.0.1", SERVICE_HOST] {
        drop(support::server::raw_tls(&bundle, host, t.server.addr).await);
    }
    t.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_leaf_verifies_against_the_bundle_the_cluster_already_has() {
    let dir = tempfile::tempdir().unwrap();
    let (out, pod) = (dir.path().join("certs"), dir.path().join("pod"));
    certs_ok(&out, &[]);
    use std::os::unix::fs::PermissionsExt as _;
    let ca_key_mode = std::fs::metadata(out.join("ca.key")).unwrap().permissions();
    assert_eq!(ca_key_mode.mode() & 0o777, 0o600, "ca.key is private");
    let again = certs_command(&out, &[]);
    assert!(
        !again.status.success(),
        "a second plain run replaced the CA"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("--renew"));

    let bundle = bundle_of(&out);
    apply_secret(&out, &pod);
    let t = start_with_files(&pod).await;
    let addr = t.server.addr;
    let mut status = t.server.cert_status().unwrap();
    let traffic = Traffic::start(vec![bundle.clone()], addr);
    traffic.overlap(20).await;

    let before = leaf_der(&out);
    certs_ok(&out, &["--renew"]);
    assert_ne!(leaf_der(&out), before, "a new leaf");
    assert_eq!(bundle_of(&out), bundle, "the same caBundle");
    apply_secret(&out, &pod);
    wait_status(&mut status, |s| s.reloads >= 1).await;
    traffic.overlap(20).await;

    assert_eq!(served_leaf(&bundle, addr).await, leaf_der(&out));
    assert_no_failures(traffic, "renewal").await;
    t.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_rotation_ships_both_cas_until_the_next_renewal() {
    let dir = tempfile::tempdir().unwrap();
    let (out, pod) = (dir.path().join("certs"), dir.path().join("pod"));
    certs_ok(&out, &[]);
    let old_bundle = bundle_of(&out);
    apply_secret(&out, &pod);
    let t = start_with_files(&pod).await;
    let addr = t.server.addr;
    let mut status = t.server.cert_status().unwrap();
    let on_old = Traffic::start(vec![old_bundle.clone()], addr);
    on_old.overlap(20).await;

    // Step 1: the new bundle reaches the API server while pods still serve the old leaf.
    certs_ok(&out, &["--rotate-ca"]);
    let both = bundle_of(&out);
    let new_ca = std::fs::read_to_string(out.join("ca.crt")).unwrap();
    assert!(
        both.contains(&old_bundle) && both.contains(&new_ca),
        "{both}"
    );
    assert_ne!(new_ca, old_bundle);
    let on_both = Traffic::start(vec![both.clone()], addr);
    on_both.overlap(20).await;
    assert_no_failures(on_old, "old bundle, old leaf").await;

    // Step 2: the Secret follows; the new leaf is signed by the new CA only.
    apply_secret(&out, &pod);
    wait_status(&mut status, |s| s.reloads >= 1).await;
    on_both.overlap(20).await;
    let only_old = client_trusting(&[&old_bundle], SERVICE_HOST, addr);
    assert!(healthz(&only_old, addr).await.is_err(), "new leaf, old CA");

    // Step 3, a period later: renewal drops the old CA, in either order of applying.
    certs_ok(&out, &["--renew"]);
    assert_eq!(bundle_of(&out), new_ca, "the old CA left caBundle");
    assert!(!out.join("ca-previous.crt").exists());
    let on_new = Traffic::start(vec![new_ca.clone()], addr);
    on_new.overlap(20).await;
    apply_secret(&out, &pod);
    wait_status(&mut status, |s| s.reloads >= 2).await;
    on_new.overlap(20).await;
    assert_eq!(served_leaf(&new_ca, addr).await, leaf_der(&out));
    assert_no_failures(on_both, "both CAs").await;
    assert_no_failures(on_new, "new CA").await;
    t.server.shutdown().await.unwrap();
}
