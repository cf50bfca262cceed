//! HTTP routes of the webhook port: thin handlers around [`admission::review`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, post};

use super::metrics::{self, Metrics};
use crate::admission::{self, Mode, Reviewed, Route};
use crate::decide::{Policy, Strength};
use crate::runtime::health_routes;

/// What every handler shares.
pub(super) struct AppState {
    pub policy: Policy,
    /// Mode of the routes without a `{mode}` segment.
    pub default_mode: Mode,
    pub metrics: Arc<Metrics>,
    /// True once a certificate is loaded and the listener is up; false from shutdown on.
    pub ready: Arc<AtomicBool>,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
}

pub(super) fn router(state: Arc<AppState>) -> Router {
    let ready = state.ready.clone();
    let readiness = move || {
        let ready = ready.load(Ordering::Acquire);
        (
            ready,
            if ready { "ready\n" } else { "not ready\n" }.to_string(),
        )
    };
    Router::new()
        .route("/mutate", reviews(Route::Mutate))
        .route("/mutate/{mode}", reviews(Route::Mutate))
        .route("/validate", reviews(Route::Validate))
        .route("/validate/{mode}", reviews(Route::Validate))
        .merge(health_routes(readiness))
        .fallback(|| async { json_error(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            json_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
        })
        .with_state(state)
}

/// The one review handler, for a route with or without a `{mode}` segment: without one, the
/// policy's default mode applies.
fn reviews(route: Route) -> MethodRouter<Arc<AppState>> {
    post(
        move |State(state): State<Arc<AppState>>, mode: Option<Path<String>>, request: Request| async move {
            let mode = match mode {
                None => state.default_mode,
                Some(Path(text)) => match Mode::parse(&text) {
                    Some(mode) => mode,
                    None => {
                        return json_error(
                            StatusCode::NOT_FOUND,
                            "unknown_mode",
                            "unknown mode: use enforce, warn or audit",
                        );
                    }
                },
            };
            handle_review(&state, mode, route, request).await
        },
    )
}

/// A request answered with a 4xx before any decision: counted by reason, logged without
/// content (the uid when the body got that far), answered with the JSON error body.
fn reject(
    state: &AppState,
    status: StatusCode,
    reason: &'static str,
    message: &str,
    uid: Option<&str>,
) -> Response {
    state.metrics.observe_error(reason);
    tracing::warn!(
        reason,
        status = status.as_u16(),
        uid = uid.unwrap_or(""),
        "review rejected"
    );
    let mut body = serde_json::json!({"error": reason, "message": message});
    if let Some(uid) = uid {
        body["uid"] = uid.into();
    }
    json_response(status, body.to_string().into_bytes())
}

async fn handle_review(state: &AppState, mode: Mode, route: Route, request: Request) -> Response {
    let started = Instant::now();
    if !is_json(request.headers()) {
        return reject(
            state,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content_type",
            "Content-Type must be application/json",
            None,
        );
    }
    let too_large = || {
        reject(
            state,
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            &format!("body larger than {} bytes", state.max_body_bytes),
            None,
        )
    };
    if declared_length(request.headers()).is_some_and(|n| n > state.max_body_bytes) {
        return too_large();
    }
    let read = axum::body::to_bytes(request.into_body(), state.max_body_bytes);
    let body = match tokio::time::timeout(state.request_timeout, read).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => return too_large(),
        Err(_) => {
            return reject(
                state,
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                "the request body was not received in time",
                None,
            );
        }
    };
    match admission::review(&body, &state.policy, mode, route) {
        Ok(reviewed) => {
            let seconds = started.elapsed().as_secs_f64();
            state
                .metrics
                .observe_review(&reviewed, mode, route, seconds);
            log_review(&reviewed, mode, route, seconds);
            json_response(StatusCode::OK, reviewed.body)
        }
        Err(error) => reject(
            state,
            StatusCode::BAD_REQUEST,
            error.code(),
            &error.to_string(),
            error.uid(),
        ),
    }
}

/// One line per review, never the object's contents (env values may be secrets). The target is
/// the one the line has always had: log pipelines filter on it.
fn log_review(reviewed: &Reviewed<'_>, mode: Mode, route: Route, seconds: f64) {
    let meta = &reviewed.meta;
    tracing::info!(
        target: "inference_webhook::server::routes",
        uid = %meta.uid,
        kind = %meta.kind,
        namespace = %meta.namespace,
        name = %meta.name,
        operation = %meta.operation,
        dry_run = meta.dry_run,
        route = route.as_str(),
        mode = mode.as_str(),
        decision = metrics::decision_label(reviewed),
        backend = reviewed.decision.backend().unwrap_or(""),
        evidence = reviewed.decision.strength().map_or("", Strength::as_str),
        patched = reviewed.outcome.patch.is_some(),
        findings = reviewed.decision.findings.len(),
        latency_us = (seconds * 1e6) as u64,
        "review"
    );
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(body),
    )
        .into_response()
}

/// The JSON body of every error answer: `{"error": code, "message": text}`.
fn json_error(status: StatusCode, code: &'static str, message: &str) -> Response {
    let body = serde_json::json!({"error": code, "message": message});
    json_response(status, body.to_string().into_bytes())
}
