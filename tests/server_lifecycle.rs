//! Connection handling and shutdown: in-flight reviews survive a graceful shutdown, slow
//! clients are timed out without hurting others, and connections over the limit are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::Value;
use support::fixtures::{VLLM, fixture_value};
use support::metrics::{sample, scrape};
use support::server::{InFlight, SERVICE_HOST, post_json, raw_tls, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bound for waiting on something the server must do (never a sleep used as synchronisation).
const PATIENCE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_in_flight_at_shutdown_all_complete() {
    let t = start(&[]).await;
    let addr = t.server.addr;
    let ca = t.ca_pem();
    let sent = fixture_value(VLLM);
    let body = serde_json::to_vec(&sent).unwrap();

    // Eight reviews whose handlers are running (each got `100 Continue`) when shutdown starts.
    let mut in_flight = Vec::new();
    for _ in 0..8 {
        let stream = raw_tls(&ca, SERVICE_HOST, addr).await;
        in_flight.push(InFlight::begin(stream, "/mutate", body.clone()).await);
    }
    let handle = t.server.shutdown_handle();
    let client = t.client(SERVICE_HOST);
    let ready = client
        .get(t.url(SERVICE_HOST, "/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    handle.trigger();
    // Either the probe still gets through and hears 503, or the connection is already closing.
    let ready = client.get(t.url(SERVICE_HOST, "/readyz")).send().await;
    let status = ready.map(|r| r.status().as_u16());
    assert!(
        !matches!(status, Ok(200)),
        "not ready once shutting down: {status:?}"
    );

    let drained = tokio::spawn(t.server.wait());
    for review in in_flight {
        let (status, answer) = review.finish().await;
        assert_eq!(status, 200);
        assert_eq!(answer["response"]["uid"], sent["request"]["uid"]);
        assert!(answer["response"]["patch"].is_string());
    }
    drop(client);
    tokio::time::timeout(PATIENCE, drained)
        .await
        .expect("drained within the grace period")
        .unwrap()
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

/// Wait until the server closes `stream` (read returns end of file or an error).
async fn closed_by_server(stream: &mut (impl AsyncReadExt + Unpin)) -> bool {
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(PATIENCE, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    });
    read.await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_timed_out_and_others_are_served_meanwhile() {
    let t = start(&["--header-read-timeout=300ms"]).await;
    let addr = t.server.addr;
    // Never sends a TLS ClientHello.
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    // Completes TLS, then sends half a request head and stalls (slowloris).
    let mut slow = raw_tls(&t.ca_pem(), SERVICE_HOST, addr).await;
    slow.write_all(b"POST /mutate HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    slow.flush().await.unwrap();
    // Sends two bytes, fewer than an HTTP/2 preface, and stalls.
    let mut trickle = raw_tls(&t.ca_pem(), SERVICE_HOST, addr).await;
    trickle.write_all(b"PO").await.unwrap();
    trickle.flush().await.unwrap();

    let client = t.client(SERVICE_HOST);
    let (status, _) = post_json(
        &client,
        &t.url(SERVICE_HOST, "/mutate"),
        &fixture_value(VLLM),
    )
    .await;
    assert_eq!(status, 200, "served while slow clients hang");

    assert!(closed_by_server(&mut silent).await, "handshake deadline");
    assert!(closed_by_server(&mut slow).await, "request head deadline");
    assert!(
        closed_by_server(&mut trickle).await,
        "request head deadline"
    );
    t.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_are_refused_at_once() {
    let t = start(&["--max-connections=2"]).await;
    let addr = t.server.addr;
    let ca = t.ca_pem();
    let body = serde_json::to_vec(&fixture_value(VLLM)).unwrap();
    // Two connections hold both slots (their reviews are in flight).
    let first = InFlight::begin(
        raw_tls(&ca, SERVICE_HOST, addr).await,
        "/mutate",
        body.clone(),
    )
    .await;
    let second = InFlight::begin(
        raw_tls(&ca, SERVICE_HOST, addr).await,
        "/mutate",
        body.clone(),
    )
    .await;

    let mut excess = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = excess.write_all(b"\x16\x03\x01").await;
    assert!(
        closed_by_server(&mut excess).await,
        "excess connection closed"
    );

    // The connections inside the limit are unaffected.
    for review in [first, second] {
        let (status, answer): (u16, Value) = review.finish().await;
        assert_eq!(status, 200, "{answer}");
    }
    let metrics = scrape(t.server.metrics_addr).await;
    assert!(
        metrics.contains("inference_webhook_connections_rejected_total 1\n"),
        "{metrics}"
    );
    t.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_arrives_gets_408() {
    let t = start(&["--request-timeout=200ms"]).await;
    let body = serde_json::to_vec(&fixture_value(VLLM)).unwrap();
    let stream = raw_tls(&t.ca_pem(), SERVICE_HOST, t.server.addr).await;
    let stalled = InFlight::begin(stream, "/mutate", body).await;
    let (status, answer) = tokio::time::timeout(PATIENCE, stalled.response())
        .await
        .expect("answered without the body");
    assert_eq!(
        (status, &answer["error"]),
        (408, &"timeout".into()),
        "{answer}"
    );
    t.server.shutdown().await.unwrap();
}

/// `GET path` on a kept-alive HTTP/1.1 connection: the status (the body is read and dropped).
async fn get_on(stream: &mut (impl AsyncReadExt + AsyncWriteExt + Unpin), path: &str) -> u16 {
    let head = format!("GET {path} HTTP/1.1\r\nhost: {SERVICE_HOST}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).await.unwrap(),
            1,
            "closed mid-answer"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap();
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.unwrap();
    head[9..12].parse().unwrap()
}

/// The number of connections the server closed for `reason`.
async fn closed_for(metrics_addr: std::net::SocketAddr, reason: &str) -> i64 {
    let metrics = scrape(metrics_addr).await;
    let labels = format!("reason=\"{reason}\"");
    sample(
        &metrics,
        "inference_webhook_connections_closed_total",
        &labels,
    )
    .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_on_both_protocols_but_never_under_a_review() {
    let t = start(&["--idle-timeout=300ms"]).await;
    let (addr, ca) = (t.server.addr, t.ca_pem());

    let mut h1 = raw_tls(&ca, SERVICE_HOST, addr).await;
    assert_eq!(get_on(&mut h1, "/healthz").await, 200);
    assert_eq!(get_on(&mut h1, "/healthz").await, 200, "kept alive");
    assert!(closed_by_server(&mut h1).await, "idle HTTP/1.1 closed");

    let client = t.client(SERVICE_HOST);
    let answer = client.get(t.url(SERVICE_HOST, "/healthz")).send().await;
    assert_eq!(answer.unwrap().version(), reqwest::Version::HTTP_2);
    // Asked to close (counted), then closed (no connection open).
    tokio::time::timeout(PATIENCE, async {
        loop {
            let metrics = scrape(t.server.metrics_addr).await;
            let idle = sample(
                &metrics,
                "inference_webhook_connections_closed_total",
                "reason=\"idle\"",
            );
            if idle >= Some(2) && metrics.contains("inference_webhook_connections_open 0\n") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("idle HTTP/2 connection closed");

    // A review whose body takes three idle timeouts to arrive is still answered.
    let body = serde_json::to_vec(&fixture_value(VLLM)).unwrap();
    let review = InFlight::begin(raw_tls(&ca, SERVICE_HOST, addr).await, "/mutate", body).await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    let (status, answer) = review.finish().await;
    assert_eq!(status, 200, "{answer}");
    // The client whose connection was closed reconnects by itself.
    let again = client.get(t.url(SERVICE_HOST, "/healthz")).send().await;
    assert_eq!(again.unwrap().status().as_u16(), 200);
    t.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_connections_close_after_their_requests_and_no_request_fails() {
    let t = start(&["--max-connection-age=300ms"]).await;
    let (addr, ca) = (t.server.addr, t.ca_pem());
    let client = t.client(SERVICE_HOST);
    let body = serde_json::to_vec(&fixture_value(VLLM)).unwrap();
    let (mut ok, mut failures) = (0, Vec::new());
    while closed_for(t.server.metrics_addr, "max_age").await < 3 {
        let sent = client
            .post(t.url(SERVICE_HOST, "/mutate"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() && r.version() == reqwest::Version::HTTP_2 => ok += 1,
            other => failures.push(format!("{other:?}")),
        }
        assert!(ok + failures.len() < 100_000, "connections never aged out");
    }
    assert!(
        failures.is_empty(),
        "{} of {ok} failed: {:?}",
        failures.len(),
        &failures[..1]
    );

    let mut h1 = raw_tls(&ca, SERVICE_HOST, addr).await;
    assert_eq!(get_on(&mut h1, "/healthz").await, 200);
    let before = closed_for(t.server.metrics_addr, "max_age").await;
    assert!(closed_by_server(&mut h1).await, "old HTTP/1.1 closed");
    assert!(closed_for(t.server.metrics_addr, "max_age").await > before);
    t.server.shutdown().await.unwrap();
}
