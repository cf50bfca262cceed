//! The real `inference-webhook serve` process: JSON logs with one line per review and never a
//! secret from the reviewed object (at trace level, on good and bad requests alike), and a
//! SIGTERM that lets in-flight reviews finish and exits 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use support::commands::command;
use support::fixtures::{VLLM, fixture_value, review};
use support::server::{InFlight, client, post_json, raw_tls};

const MARKER: &str = "sk-SECRET-MARKER-4f1d9e";

/// The server process, killed if the test fails before it exits on its own.
struct Running(Option<std::process::Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Lines of a child's output, as they come.
fn lines_of(
    pipe: impl std::io::Read + Send + 'static,
) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_logs_reviews_without_secrets_and_drains_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.crt");
    let mut child = command("serve")
        .args(["--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0"])
        // Two settings through the environment, as a Deployment would set them.
        .env("INFERENCE_WEBHOOK_CA_OUT", &ca_path)
        .env("INFERENCE_WEBHOOK_LOG_FORMAT", "json")
        // The local quick start, even when the tests run in a pod.
        .env_remove("KUBERNETES_SERVICE_HOST")
        .arg("--log-level=trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = lines_of(child.stdout.take().unwrap());
    let mut stderr = lines_of(child.stderr.take().unwrap());
    let pid = child.id();
    let mut running = Running(Some(child));
    let mut log = Vec::new();

    // The address comes from the "listening" line.
    let addr: std::net::SocketAddr = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let line = stdout.recv().await.expect("server output");
            log.push(line.clone());
            let v: Value = serde_json::from_str(&line).expect("JSON log line");
            if v["message"] == "listening" {
                return v["addr"].as_str().unwrap().parse().unwrap();
            }
        }
    })
    .await
    .expect("server becomes ready");
    let ca = std::fs::read_to_string(&ca_path).unwrap();
    let client = client(&ca, "localhost", addr);
    let url = format!("https://localhost:{}", addr.port());

    // The secret sits in a container's env, an argument and an annotation.
    let mut sent = fixture_value(VLLM);
    let object = &mut sent["request"]["object"];
    object["spec"]["template"]["spec"]["containers"][0]["env"][1]["value"] = json!(MARKER);
    object["metadata"]["annotations"]["token"] = json!(MARKER);
    let args = &mut object["spec"]["template"]["spec"]["containers"][0]["args"][0];
    *args = json!(format!("{} --api-key {MARKER}", args.as_str().unwrap()));
    for path in ["/mutate", "/mutate/warn", "/validate/audit"] {
        let (status, answer) = post_json(&client, &format!("{url}{path}"), &sent).await;
        assert_eq!(status, 200, "{answer}");
    }
    // Bad bodies carrying the secret; the first two get it quoted back to the caller (who sent
    // it), but never to the log.
    let bad = [
        json!({"apiVersion": MARKER, "kind": "AdmissionReview", "request": {}}),
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": MARKER}),
        review(json!({"uid": "u-bad", "operation": "CREATE", "object": MARKER})),
    ];
    for (i, body) in bad.iter().enumerate() {
        let (status, answer) = post_json(&client, &format!("{url}/mutate"), body).await;
        assert_eq!(status, 400);
        let quoted = answer["message"].as_str().unwrap().contains(MARKER);
        assert_eq!(quoted, i < 2, "{answer}");
    }

    // A review in flight when SIGTERM arrives still gets its answer.
    let stream = raw_tls(&ca, "localhost", addr).await;
    let in_flight = InFlight::begin(stream, "/mutate", serde_json::to_vec(&sent).unwrap()).await;
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let (status, answer) = in_flight.finish().await;
    assert_eq!(status, 200);
    assert_eq!(answer["response"]["uid"], sent["request"]["uid"]);

    let mut child = running.0.take().unwrap();
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit.code(), Some(0), "exit 0 after draining");
    while let Some(line) = stdout.recv().await {
        log.push(line);
    }
    while let Some(line) = stderr.recv().await {
        log.push(line);
    }

    let leaks: Vec<&String> = log.iter().filter(|l| l.contains(MARKER)).collect();
    assert!(
        leaks.is_empty(),
        "secret in {} log lines, e.g. {}",
        leaks.len(),
        leaks[0]
    );
    let reviews: Vec<Value> = log
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "review")
        .collect();
    assert_eq!(reviews.len(), 4, "one line per answered review");
    let first = &reviews[0];
    for (field, want) in [
        ("uid", json!(sent["request"]["uid"])),
        ("kind", json!("Deployment")),
        ("namespace", json!("llm-serving")),
        ("name", json!("llama-3-1-8b-instruct")),
        ("operation", json!("CREATE")),
        ("mode", json!("enforce")),
        ("route", json!("mutate")),
        ("decision", json!("patched")),
        ("backend", json!("vllm")),
        ("patched", json!(true)),
    ] {
        assert_eq!(first[field], want, "{field} in {first}");
    }
    assert!(first["latency_us"].is_u64(), "{first}");
    let rejected = log.iter().filter(|l| l.contains("review rejected")).count();
    assert_eq!(rejected, bad.len());
    assert!(log.iter().any(|l| l.contains("SIGTERM")));
}

#[test]
fn serve_in_a_cluster_without_certificate_flags_refuses_to_start_and_says_how() {
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.crt");
    let mut serve = command("serve");
    serve
        .args(["--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0"])
        .env("INFERENCE_WEBHOOK_CA_OUT", &ca_path)
        .env("KUBERNETES_SERVICE_HOST", "10.96.0.1")
        .env_remove("INFERENCE_WEBHOOK_TLS_CERT")
        .env_remove("INFERENCE_WEBHOOK_TLS_KEY");
    let out = support::commands::run(&mut serve, None);
    assert!(
        !out.status.success(),
        "started with a self-signed certificate"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    for hint in [
        "KUBERNETES_SERVICE_HOST",
        "--tls-cert=",
        "--tls-key=",
        "certs/README.md",
    ] {
        assert!(stderr.contains(hint), "{hint} not in: {stderr}");
    }
    assert!(!ca_path.exists(), "no self-signed CA written");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// A log pipe nobody reads (a stalled log collector) fills up: reviews are still answered, and
/// the lines that could not be written are dropped and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_log_pipe_never_holds_a_review() {
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.crt");
    let (port, metrics_port) = (free_port(), free_port());
    let mut child = command("serve")
        .arg(format!("--listen=127.0.0.1:{port}"))
        .arg(format!("--metrics-listen=127.0.0.1:{metrics_port}"))
        .arg(format!("--ca-out={}", ca_path.display()))
        .arg("--log-level=trace") // hyper's and h2's trace lines fill the pipe fast
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _unread = child.stdout.take().unwrap();
    let _running = Running(Some(child));
    let metrics_addr: std::net::SocketAddr = format!("127.0.0.1:{metrics_port}").parse().unwrap();
    support::metrics::wait_for(metrics_addr, "/metrics", |code, _| code == 200);
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let ca = std::fs::read_to_string(&ca_path).unwrap();
    let url = format!("https://localhost:{port}/mutate");
    let sent = fixture_value(VLLM);

    let answered = tokio::time::timeout(Duration::from_secs(120), async {
        let mut answered = 0;
        for _ in 0..40 {
            // A new connection per batch: each TLS handshake logs a few hundred trace lines.
            let client = client(&ca, "localhost", addr);
            let batch = (0..25).map(|_| post_json(&client, &url, &sent));
            for (status, answer) in futures::future::join_all(batch).await {
                assert_eq!(status, 200, "{answer}");
                answered += 1;
            }
        }
        answered
    })
    .await
    .expect("reviews are answered while nobody reads the log");
    assert_eq!(answered, 1000);
    let metrics = support::metrics::scrape(metrics_addr).await;
    let dropped: Option<u64> = metrics
        .lines()
        .find_map(|l| l.strip_prefix("inference_webhook_log_lines_dropped_total "))
        .and_then(|v| v.trim().parse().ok());
    assert!(dropped > Some(0), "lines dropped and counted: {dropped:?}");
}
