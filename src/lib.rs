//! inference-webhook: makes every LLM inference workload in a cluster observable.
//!
//! One engine ([`engine::decide`]) behind three front doors: the admission server
//! (`serve`), the audit command (`audit`), and the certificate helper (`certs`).
#![forbid(unsafe_code)]

pub mod admission;
pub mod audit;
pub mod certs;
pub mod engine;
pub mod server;
