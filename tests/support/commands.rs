//! Running programs: the built binary (also as the kubectl plugin it is installed as), any
//! command from an async test, and reading what they print.

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The binary under test, built by cargo for the integration tests.
pub const BINARY: &str = env!("CARGO_BIN_EXE_inference-webhook");

/// `inference-webhook <subcommand>`, to add arguments and environment to.
pub fn command(subcommand: &str) -> Command {
    let mut command = Command::new(BINARY);
    command.arg(subcommand);
    command
}

/// Run `command` to completion with `stdin` piped in (none when `None`), capturing its output.
pub fn run(command: &mut Command, stdin: Option<&[u8]>) -> Output {
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // The child may stop reading early (a usage error); a broken pipe is then expected.
        let _ = pipe.write_all(input);
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{command:?} did not finish: {e}"))
}

/// Run `command` to completion; panics with what it printed unless it succeeds.
pub fn succeeded(command: &mut Command) -> Output {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed ({}): {}{}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    out
}

/// Keep the developer's cluster and proxies away from `command`: it reads only the kubeconfig
/// the test names, and reaches 127.0.0.1 directly.
pub fn without_cluster_env(command: &mut Command) -> &mut Command {
    command.env_remove("KUBECONFIG");
    for proxy in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        command.env_remove(proxy);
    }
    command
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// What the command printed on stdout, as JSON (an audit report, a SARIF log).
pub fn json_report(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not the JSON report ({e}):\n{}\nstderr:\n{}",
            stdout(o),
            stderr(o)
        )
    })
}

/// Run a command to completion off the async threads; returns (success, stdout, stderr).
pub async fn run_async(mut command: Command) -> (bool, String, String) {
    let shown = format!("{command:?}");
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("{shown}: {e} (CI installs it: see .ci/run)"));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A folder holding the binary under its kubectl plugin name, as krew or a user installs it;
/// put it on the `PATH` with [`path_with`].
pub fn plugin_dir() -> tempfile::TempDir {
    let dir = super::fixtures::temp_dir();
    std::os::unix::fs::symlink(BINARY, dir.path().join("kubectl-inference_webhook"))
        .expect("plugin link");
    dir
}

/// `PATH` with `dir` first.
pub fn path_with(dir: &Path) -> OsString {
    let mut dirs = vec![dir.to_path_buf()];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).expect("PATH")
}
