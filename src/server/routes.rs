//! HTTP routes of the webhook port: thin handlers around [`admission::review`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::metrics::{self, Metrics};
use crate::admission::{self, ReviewError};
use crate::engine::{Mode, Policy, Route, Strength};

/// What every handler shares.
pub struct AppState {
    pub policy: Policy,
    pub metrics: Arc<Metrics>,
    /// True once a certificate is loaded and the listener is up; false from shutdown on.
    pub ready: Arc<AtomicBool>,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/mutate", post(mutate_default))
        .route("/validate", post(validate_default))
        .route("/mutate/{mode}", post(mutate_with_mode))
        .route("/validate/{mode}", post(validate_with_mode))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
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

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        "ready".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

async fn mutate_default(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let mode = state.policy.default_mode;
    handle_review(&state, mode, Route::Mutate, request).await
}

async fn validate_default(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let mode = state.policy.default_mode;
    handle_review(&state, mode, Route::Validate, request).await
}

async fn mutate_with_mode(
    State(state): State<Arc<AppState>>,
    Path(mode): Path<String>,
    request: Request,
) -> Response {
    with_mode(&state, &mode, Route::Mutate, request).await
}

async fn validate_with_mode(
    State(state): State<Arc<AppState>>,
    Path(mode): Path<String>,
    request: Request,
) -> Response {
    with_mode(&state, &mode, Route::Validate, request).await
}

async fn with_mode(state: &AppState, mode: &str, route: Route, request: Request) -> Response {
    match Mode::parse(mode) {
        Some(mode) => handle_review(state, mode, route, request).await,
        None => json_error(
            StatusCode::NOT_FOUND,
            "unknown_mode",
            "unknown mode: use enforce, warn or audit",
        ),
    }
}

/// A 4xx answered before any decision: counted by reason and logged without content.
fn reject(state: &AppState, status: StatusCode, reason: &'static str, message: &str) -> Response {
    state.metrics.observe_error(reason);
    tracing::warn!(reason, status = status.as_u16(), "review rejected");
    json_error(status, reason, message)
}

async fn handle_review(state: &AppState, mode: Mode, route: Route, request: Request) -> Response {
    let started = Instant::now();
    if !is_json(request.headers()) {
        return reject(
            state,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content_type",
            "Content-Type must be application/json",
        );
    }
    let too_large = || {
        reject(
            state,
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            &format!("body larger than {} bytes", state.max_body_bytes),
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
            );
        }
    };
    match admission::review(&body, &state.policy, mode, route) {
        Ok(reviewed) => {
            let seconds = started.elapsed().as_secs_f64();
            state
                .metrics
                .observe_review(&reviewed, mode, route, seconds);
            let meta = &reviewed.meta;
            tracing::info!(
                uid = %meta.uid,
                kind = %meta.kind,
                namespace = %meta.namespace,
                name = %meta.name,
                operation = %meta.operation,
                dry_run = meta.dry_run,
                route = route.as_str(),
                mode = mode.as_str(),
                decision = metrics::decision_label(&reviewed),
                backend = reviewed.decision.backend().unwrap_or(""),
                evidence = reviewed.decision.strength().map_or("", Strength::as_str),
                patched = reviewed.outcome.patch.is_some(),
                findings = reviewed.decision.findings.len(),
                latency_us = (seconds * 1e6) as u64,
                "review"
            );
            json_response(StatusCode::OK, reviewed.body)
        }
        Err(error) => review_error(state, &error),
    }
}

fn review_error(state: &AppState, error: &ReviewError) -> Response {
    state.metrics.observe_error(error.code());
    tracing::warn!(
        reason = error.code(),
        uid = error.uid().unwrap_or(""),
        "review rejected"
    );
    let mut body = serde_json::json!({"error": error.code(), "message": error.to_string()});
    if let Some(uid) = error.uid() {
        body["uid"] = uid.into();
    }
    json_response(StatusCode::BAD_REQUEST, body.to_string().into_bytes())
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
