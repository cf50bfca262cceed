//! Files the tests read and write: the repository, `tests/fixtures`, AdmissionReview envelopes
//! and scratch folders.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// The AdmissionReview fixtures the server tests send.
pub const VLLM: &str = "review-vllm-deployment.json";
pub const RBG: &str = "review-rbg-three-roles.json";

/// The repository (the crate's folder).
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/<sub>`, the shared corpora and CRDs read at run time. CI always has them beside
/// the clone, so a missing folder fails the test that needs it instead of skipping it.
pub fn shared(sub: &str) -> PathBuf {
    let dir = repo().join("../shared").join(sub);
    assert!(
        dir.exists(),
        "{} is missing: these tests read ../shared at run time (CI has it beside the clone)",
        dir.display()
    );
    dir
}

/// `tests/fixtures`.
pub fn fixtures_dir() -> PathBuf {
    repo().join("tests/fixtures")
}

/// `tests/fixtures/<name>`, a file or a folder.
pub fn fixture_path(name: &str) -> PathBuf {
    fixtures_dir().join(name)
}

/// A JSON fixture, parsed.
pub fn fixture_value(name: &str) -> Value {
    json_file(&fixture_path(name))
}

/// A JSON file, parsed.
pub fn json_file(path: &Path) -> Value {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// An AdmissionReview around `request`.
pub fn review(request: Value) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}

/// A fresh folder, removed when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("no temp dir: {e}"))
}
