//! Real tools the tests drive, installed by the repo's CI scripts into
//! `$INFERENCE_WEBHOOK_CI_CACHE` (default `~/.cache/inference-webhook-ci`):
//! `.ci/check-manifests.sh` puts helm and kubectl in `bin/`, `.ci/install-tools.sh` the SARIF
//! multitool, junitparser and pre-commit. A missing tool fails the test; outside CI,
//! `INFERENCE_WEBHOOK_SKIP_TOOLS=1` skips the parts that need it.

use std::env;
use std::path::PathBuf;

/// Puts helm and kubectl in `bin/` (and promtool on the `PATH`, from the Debian package).
pub const CHECK_MANIFESTS: &str = ".ci/check-manifests.sh";
/// Installs the SARIF multitool, junitparser and pre-commit.
pub const INSTALL_TOOLS: &str = ".ci/install-tools.sh";

pub fn cache_dir() -> PathBuf {
    // The same default as the scripts: ${HOME:-/root}/.cache/inference-webhook-ci.
    let home = env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    env::var_os("INFERENCE_WEBHOOK_CI_CACHE")
        .map_or_else(|| home.join(".cache/inference-webhook-ci"), PathBuf::from)
}

/// `$env_var` if set, else `relative` inside the cache, else `None` when the developer opted
/// out; panics otherwise, naming the script that installs it.
pub fn cached(relative: &str, env_var: &str, script: &str) -> Option<PathBuf> {
    if let Some(path) = env::var_os(env_var) {
        return Some(PathBuf::from(path));
    }
    let cached = cache_dir().join(relative);
    if cached.is_file() {
        return Some(cached);
    }
    let in_ci = env::var("CI").is_ok_and(|v| v == "true");
    if !in_ci && env::var("INFERENCE_WEBHOOK_SKIP_TOOLS").is_ok_and(|v| v == "1") {
        eprintln!("{relative} not found, skipped (INFERENCE_WEBHOOK_SKIP_TOOLS=1)");
        return None;
    }
    panic!(
        "{relative} not found: run `bash {script}` (installs it into \
         ~/.cache/inference-webhook-ci) or set {env_var}; outside CI, \
         INFERENCE_WEBHOOK_SKIP_TOOLS=1 skips this check"
    );
}

/// A tool in the cache's `bin/` (`.ci/check-manifests.sh` puts helm and kubectl there).
pub fn bin(name: &str, env_var: &str) -> Option<PathBuf> {
    cached(&format!("bin/{name}"), env_var, CHECK_MANIFESTS)
}

pub fn kubectl() -> Option<PathBuf> {
    bin("kubectl", "KUBECTL")
}
