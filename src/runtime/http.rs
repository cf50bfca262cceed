//! The plain-HTTP routes both daemons serve beside their work: liveness, readiness and metrics.

use axum::Router;
use axum::http::{StatusCode, header};
use axum::routing::{MethodRouter, get};

/// `GET /metrics` answering with the text `encode` makes, in the OpenMetrics format.
pub fn metrics_route<S, F>(encode: F) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
    F: Fn() -> String + Clone + Send + Sync + 'static,
{
    get(move || {
        let text = encode();
        async move {
            (
                [(
                    header::CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )],
                text,
            )
        }
    })
}

/// `GET /healthz` (the process answers) and `GET /readyz`: 200 or 503 with the body
/// `readiness` gives (why it is not ready, for a human reading the probe's output).
pub fn health_routes<S, F>(readiness: F) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    F: Fn() -> (bool, String) + Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let (ready, body) = readiness();
                async move {
                    let code = if ready {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    (code, body)
                }
            }),
        )
}
