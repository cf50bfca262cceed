//! What the integration tests share: one module tree, declared by each test binary with
//! `mod support;`.
//!
//! - [`fixtures`]: the repository, its test fixtures, AdmissionReview envelopes, scratch folders.
//! - [`engine`]: the engine's decision on an object in process, and objects to decide on.
//! - [`patch`]: the one RFC 6902 applier, and the JSON Patch of an AdmissionReview response.
//! - [`server`]: the webhook server in process on 127.0.0.1:0, and clients that trust its CA.
//! - [`metrics`]: plain HTTP GETs of a metrics listener, and reading samples out of the text.
//! - [`cluster`]: an HTTPS API server replaying recorded lists, and a kubeconfig for it.
//! - [`commands`]: running the built binary and other programs, and reading what they print.
//! - [`schema`]: structural-schema checks against a CRD's schema (types, enums, list-map keys).
//! - [`tools`]: the external tools CI installs (helm, kubectl, the SARIF multitool, ...).
//!
//! Each test binary uses a part of it; the rest is dead code there, hence `dead_code`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod cluster;
pub mod commands;
pub mod decide;
pub mod fixtures;
pub mod metrics;
pub mod patch;
pub mod schema;
pub mod server;
pub mod tools;
pub mod worst;
pub mod yaml;
