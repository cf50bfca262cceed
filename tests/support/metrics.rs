//! The plain-HTTP metrics listeners of the server and the reporter: one GET (`/metrics`,
//! `/readyz`, `/healthz`), polling until an answer is as expected, and reading samples out of
//! the Prometheus text.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// `GET path` over plain HTTP/1.0: the status code and the body, `None` without an answer.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let code = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_string();
    Some((code, body))
}

/// Poll `path` until `done` holds for its answer (or 60 s pass).
pub fn wait_for(addr: SocketAddr, path: &str, done: impl Fn(u16, &str) -> bool) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = (0, String::new());
    while Instant::now() < deadline {
        if let Some(answer) = http_get(addr, path) {
            if done(answer.0, &answer.1) {
                return answer;
            }
            last = answer;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{path} never got there; last answer {}: {}", last.0, last.1);
}

/// The text of `/metrics` at `addr`, from an async test (the GET runs off the async threads).
pub async fn scrape(addr: SocketAddr) -> String {
    let answer = tokio::task::spawn_blocking(move || http_get(addr, "/metrics"))
        .await
        .expect("join");
    match answer {
        Some((200, text)) => text,
        other => panic!("GET http://{addr}/metrics: {other:?}"),
    }
}

/// The value of the sample `name{labels}` (`labels` as written between the braces).
pub fn sample(metrics: &str, name: &str, labels: &str) -> Option<i64> {
    let prefix = format!("{name}{{{labels}}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().parse().expect("an integer sample"))
}

/// The sum of every series of a metric.
pub fn sum(metrics: &str, name: &str) -> i64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<i64>().ok())
        .sum()
}
