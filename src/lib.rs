//! inference-webhook: makes every LLM inference workload in a cluster observable.
//!
//! One engine ([`decide::decide`]) behind four front doors: the admission server
//! (`serve`), the audit command (`audit`), the cluster reporter (`report`), and the
//! certificate helper (`certs`).
#![forbid(unsafe_code)]
#![warn(clippy::too_many_lines)]
#![warn(unreachable_pub)]

pub mod admission;
pub mod audit;
pub mod certs;
pub mod cluster;
pub mod config;
pub mod decide;
pub mod report;
pub mod runtime;
pub mod server;
pub mod yaml;
