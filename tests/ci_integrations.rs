//! The ways the audit reaches users' tools, each driven by the real tool where one can run here:
//! the kubectl plugin (real kubectl: `plugin list`, `kubectl inference-webhook ...`), the
//! pre-commit hook (PyPI pre-commit's `try-repo` against a temporary git repository), the
//! GitHub Action's audit step (its script run with bash; the runner, `cargo install` and the
//! SARIF upload are not available here) and the krew manifest template.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use support::commands::{BINARY, path_with, plugin_dir, stderr, stdout, succeeded};
use support::fixtures::{fixture_path, fixtures_dir, repo};
use support::tools::{self, INSTALL_TOOLS};

fn yaml_file(path: &Path) -> Value {
    support::yaml::value(
        &std::fs::read_to_string(path).unwrap(),
        &path.display().to_string(),
    )
}

// ---------------------------------------------------------------------------- kubectl plugin

fn kubectl(dir: &Path, args: &[&str]) -> Option<Output> {
    let kubectl = tools::kubectl()?;
    Some(
        Command::new(kubectl)
            .args(args)
            .env("PATH", path_with(dir))
            // No cluster is needed to dispatch a plugin; keep any real kubeconfig out of it.
            .env("KUBECONFIG", dir.join("no-kubeconfig"))
            .current_dir(fixtures_dir())
            .output()
            .unwrap(),
    )
}

#[test]
fn kubectl_finds_the_plugin_and_runs_its_audit() {
    let dir = plugin_dir();
    let Some(list) = kubectl(dir.path(), &["plugin", "list"]) else {
        return;
    };
    let listed = stdout(&list);
    let plugin = dir.path().join("kubectl-inference_webhook");
    assert!(
        listed.contains(plugin.to_str().unwrap()),
        "{listed}{}",
        stderr(&list)
    );
    assert!(!stderr(&list).contains("warning"), "{}", stderr(&list));

    let help = kubectl(dir.path(), &["inference-webhook", "--help"]).unwrap();
    assert!(help.status.success(), "{}", stderr(&help));
    let help = stdout(&help);
    assert!(
        help.contains("Usage: kubectl inference-webhook <COMMAND>"),
        "{help}"
    );
    assert!(help.contains("audit"), "{help}");
    let audit_help = kubectl(dir.path(), &["inference-webhook", "audit", "--help"]).unwrap();
    let audit_help = stdout(&audit_help);
    assert!(
        audit_help.contains("Usage: kubectl inference-webhook audit"),
        "{audit_help}"
    );
    assert!(audit_help.contains("--cluster"), "{audit_help}");

    let audit = kubectl(
        dir.path(),
        &[
            "inference-webhook",
            "audit",
            "-o",
            "json",
            "ci-formats/workloads.yaml",
        ],
    )
    .unwrap();
    assert_eq!(audit.status.code(), Some(1), "{}", stderr(&audit));
    let report: Value = serde_json::from_slice(&audit.stdout).unwrap();
    assert_eq!(report["summary"]["denied"], 1);
}

#[test]
fn the_plugin_reads_the_cluster_from_the_kubeconfig_and_fails_clearly_without_one() {
    let dir = plugin_dir();
    let Some(out) = kubectl(
        dir.path(),
        &["inference-webhook", "audit", "--cluster", "-A"],
    ) else {
        return;
    };
    assert_eq!(out.status.code(), Some(2));
    let error = stderr(&out);
    assert!(error.contains("error"), "{error}");
    let usage = kubectl(dir.path(), &["inference-webhook", "audit", "--bogus"]).unwrap();
    assert_eq!(usage.status.code(), Some(2));
    assert!(
        stderr(&usage).contains("Usage: kubectl inference-webhook audit"),
        "{}",
        stderr(&usage)
    );
}

#[test]
fn invoked_by_its_own_name_the_binary_keeps_its_name() {
    let out = Command::new(BINARY).arg("--help").output().unwrap();
    assert!(stdout(&out).contains("Usage: inference-webhook <COMMAND>"));
}

// ---------------------------------------------------------------------------- pre-commit

fn git(dir: &Path, args: &[&str]) {
    succeeded(Command::new("git").args(args).current_dir(dir));
}

/// `pre-commit try-repo <this repository> HOOK` in a fresh git repository where `staged` files
/// are added to the index and `unstaged` ones only written.
fn try_hook(
    hook: &str,
    staged: &[(&str, PathBuf)],
    unstaged: &[(&str, PathBuf)],
) -> Option<Output> {
    let pre_commit = tools::cached("venv-tools/bin/pre-commit", "PRE_COMMIT", INSTALL_TOOLS)?;
    let work = tempfile::tempdir().unwrap();
    let project = work.path().join("project");
    std::fs::create_dir(&project).unwrap();
    git(&project, &["init", "-q"]);
    for (name, from) in staged.iter().chain(unstaged) {
        let to = project.join(name);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, &to).unwrap();
    }
    for (name, _) in staged {
        git(&project, &["add", name]);
    }
    let binary_dir = Path::new(BINARY).parent().unwrap();
    let out = Command::new(pre_commit)
        .args([
            "try-repo",
            repo().to_str().unwrap(),
            hook,
            "--color",
            "never",
        ])
        .current_dir(&project)
        .env("PATH", path_with(binary_dir))
        .env("PRE_COMMIT_HOME", work.path().join("cache"))
        // try-repo commits this repository's uncommitted changes to a shadow clone.
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .unwrap();
    Some(out)
}

#[test]
fn the_pre_commit_hook_fails_on_a_staged_denied_manifest() {
    let Some(out) = try_hook(
        "inference-webhook-audit-system",
        &[
            (
                "deploy/sglang.yaml",
                fixture_path("audit/sglang-no-metrics.yaml"),
            ),
            ("deploy/vllm.yaml", fixture_path("audit/vllm-labeled.yaml")),
        ],
        &[],
    ) else {
        return;
    };
    let stdout = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", stderr(&out));
    assert!(
        stdout.contains("inference-webhook audit (binary on PATH)"),
        "{stdout}"
    );
    assert!(stdout.contains("Failed"), "{stdout}");
    assert!(stdout.contains("metrics-disabled"), "{stdout}");
    assert!(stdout.contains("deploy/sglang.yaml"), "{stdout}");
}

#[test]
fn the_pre_commit_hook_passes_good_and_non_manifest_yaml_and_ignores_unstaged_files() {
    let workflow = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(workflow.path(), "on: push\njobs: {}\n").unwrap();
    let Some(out) = try_hook(
        "inference-webhook-audit-system",
        &[
            ("deploy/vllm.yaml", fixture_path("audit/vllm-labeled.yaml")),
            (".github/workflows/ci.yaml", workflow.path().to_path_buf()),
        ],
        &[(
            "deploy/sglang.yaml",
            fixture_path("audit/sglang-no-metrics.yaml"),
        )],
    ) else {
        return;
    };
    let stdout = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", stderr(&out));
    assert!(stdout.contains("Passed"), "{stdout}");
    assert!(
        !stdout.contains("sglang"),
        "unstaged file audited: {stdout}"
    );
}

#[test]
fn both_hooks_run_the_same_audit() {
    let hooks = yaml_file(&repo().join(".pre-commit-hooks.yaml"));
    let hooks = hooks.as_array().unwrap();
    let ids: Vec<&str> = hooks.iter().map(|h| h["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["inference-webhook-audit", "inference-webhook-audit-system"]
    );
    assert_eq!(hooks[0]["entry"], hooks[1]["entry"]);
    assert_eq!(hooks[0]["language"], "rust");
    assert_eq!(hooks[1]["language"], "system");
}

// ---------------------------------------------------------------------------- GitHub Action

/// The action's audit step, run by bash as the runner would, with `inputs` as its env; returns
/// what it wrote to `$GITHUB_OUTPUT`.
fn action_audit_step(inputs: &[(&str, &str)]) -> String {
    let action = yaml_file(&repo().join("action.yml"));
    let step = action["runs"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "audit")
        .unwrap();
    let script = step["run"].as_str().unwrap();
    let work = tempfile::tempdir().unwrap();
    let github_output = work.path().join("github-output");
    let mut command = Command::new("bash");
    command
        .args(["-e", "-c", script])
        .current_dir(fixtures_dir())
        .env("PATH", path_with(Path::new(BINARY).parent().unwrap()))
        .env("GITHUB_OUTPUT", &github_output);
    for key in [
        "AUDIT_PATHS",
        "AUDIT_MODE",
        "AUDIT_FORMAT",
        "AUDIT_CONFIG",
        "AUDIT_REPORT",
    ] {
        let input = key.trim_start_matches("AUDIT_").to_lowercase();
        let default = action["inputs"][&input]["default"]
            .as_str()
            .unwrap_or_default();
        let value = inputs
            .iter()
            .find(|(k, _)| *k == input)
            .map_or(default, |(_, v)| v);
        let expected = format!("${{{{ inputs.{input} }}}}");
        assert_eq!(step["env"][key], expected.as_str(), "{key}");
        command.env(key, value);
    }
    succeeded(&mut command);
    std::fs::read_to_string(&github_output).unwrap()
}

#[test]
fn the_action_step_writes_the_report_and_outputs_the_exit_code() {
    let work = tempfile::tempdir().unwrap();
    let report = work.path().join("audit.sarif");
    let outputs = action_audit_step(&[
        (
            "paths",
            "ci-formats/workloads.yaml\n audit/vllm-labeled.yaml",
        ),
        ("format", "sarif"),
        ("report", report.to_str().unwrap()),
    ]);
    assert!(outputs.contains("exit-code=1\n"), "{outputs}");
    assert!(
        outputs.contains(&format!("report={}\n", report.display())),
        "{outputs}"
    );
    let sarif: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let uris: Vec<&str> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].as_str())
        .collect();
    assert!(uris.contains(&"ci-formats/workloads.yaml"), "{uris:?}");

    let outputs = action_audit_step(&[
        ("paths", "ci-formats/workloads.yaml"),
        ("mode", "warn"),
        ("report", report.to_str().unwrap()),
    ]);
    assert!(
        outputs.contains("exit-code=0\n"),
        "warn mode passes: {outputs}"
    );
}

#[test]
fn the_action_uploads_sarif_only_when_asked() {
    let action = yaml_file(&repo().join("action.yml"));
    let steps = action["runs"]["steps"].as_array().unwrap();
    let upload = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("github/codeql-action/upload-sarif@"))
        })
        .unwrap();
    let condition = upload["if"].as_str().unwrap();
    assert!(
        condition.contains("inputs.format == 'sarif'"),
        "{condition}"
    );
    assert!(
        condition.contains("inputs.upload-sarif == 'true'"),
        "{condition}"
    );
    assert_eq!(
        upload["with"]["sarif_file"],
        "${{ steps.audit.outputs.report }}"
    );
    for input in ["paths", "mode", "format", "config"] {
        assert!(action["inputs"][input].is_object(), "input {input}");
    }
}

// ---------------------------------------------------------------------------- krew

#[test]
fn the_krew_manifest_names_the_plugin_the_binary_answers_to() {
    let manifest = yaml_file(&repo().join("deploy/krew/inference-webhook.yaml"));
    assert_eq!(manifest["kind"], "Plugin");
    // Krew links the binary as kubectl-<name with - as _>: the name main.rs detects.
    let name = manifest["metadata"]["name"].as_str().unwrap();
    assert_eq!(
        format!("kubectl-{}", name.replace('-', "_")),
        "kubectl-inference_webhook"
    );
    assert_eq!(
        manifest["spec"]["version"],
        format!("v{}", env!("CARGO_PKG_VERSION")).as_str()
    );
    for platform in manifest["spec"]["platforms"].as_array().unwrap() {
        assert_eq!(platform["bin"], "inference-webhook");
        let uri = platform["uri"].as_str().unwrap();
        assert!(
            uri.contains(&format!("/v{}/", env!("CARGO_PKG_VERSION"))),
            "{uri}"
        );
    }
}

// ---------------------------------------------------------------------------- release

/// A copy of the files `scripts/release-fill.sh` reads and edits, and three platform archives.
fn release_tree() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("repo");
    for file in [
        "Cargo.toml",
        "action.yml",
        "charts/inference-webhook/Chart.yaml",
        "deploy/krew/inference-webhook.yaml",
    ] {
        let to = root.join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(repo().join(file), &to).unwrap();
    }
    let dist = work.path().join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    for (i, platform) in ["linux-amd64", "linux-arm64", "darwin-arm64"]
        .iter()
        .enumerate()
    {
        let stage = work.path().join(format!("stage-{platform}"));
        std::fs::create_dir_all(&stage).unwrap();
        std::fs::write(stage.join("inference-webhook"), format!("binary {i}")).unwrap();
        let archive = dist.join(format!("inference-webhook-{platform}.tar.gz"));
        succeeded(
            Command::new("tar")
                .arg("-czf")
                .arg(&archive)
                .arg("-C")
                .arg(&stage)
                .arg("inference-webhook"),
        );
    }
    (work, root, dist)
}

fn sha256_of(path: &Path) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(std::fs::read(path).unwrap());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_release_script_fills_the_krew_manifest_and_the_action_from_the_archives() {
    let (_work, root, dist) = release_tree();
    let version = env!("CARGO_PKG_VERSION");
    let script = repo().join("scripts/release-fill.sh");
    succeeded(
        Command::new("bash")
            .arg(&script)
            .arg(version)
            .arg(&dist)
            .arg(&root),
    );

    let repository = env!("CARGO_PKG_REPOSITORY");
    let download = format!("{repository}/releases/download/v{version}");
    let krew = yaml_file(&root.join("deploy/krew/inference-webhook.yaml"));
    assert_eq!(krew["spec"]["homepage"], repository);
    let sums = std::fs::read_to_string(dist.join("SHA256SUMS")).unwrap();
    for platform in krew["spec"]["platforms"].as_array().unwrap() {
        let uri = platform["uri"].as_str().unwrap();
        let file = uri.strip_prefix(&format!("{download}/")).unwrap();
        let sum = sha256_of(&dist.join(file));
        assert_eq!(platform["sha256"], sum.as_str(), "{file}");
        assert!(sums.contains(&format!("{sum}  {file}")), "{sums}");
    }
    let action = yaml_file(&root.join("action.yml"));
    let install = &action["runs"]["steps"][0]["env"];
    let linux = format!("{download}/inference-webhook-linux-amd64.tar.gz");
    assert_eq!(install["RELEASE_ARCHIVE"], linux.as_str());
    let linux_sum = sha256_of(&dist.join("inference-webhook-linux-amd64.tar.gz"));
    assert_eq!(install["RELEASE_SHA256"], linux_sum.as_str());

    // Another version than the crate's, or a missing archive, is refused.
    let wrong = Command::new("bash")
        .arg(&script)
        .arg("9.9.9")
        .arg(&dist)
        .arg(&root)
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    std::fs::remove_file(dist.join("inference-webhook-darwin-arm64.tar.gz")).unwrap();
    let missing = Command::new("bash")
        .arg(&script)
        .arg(version)
        .arg(&dist)
        .arg(&root)
        .output()
        .unwrap();
    assert!(!missing.status.success());
}

#[test]
fn the_repository_url_is_written_in_one_place() {
    // Cargo.toml's `repository`; the krew manifest and the Action carry it as filled in by
    // scripts/release-fill.sh, and nothing else names a repository.
    let repository = env!("CARGO_PKG_REPOSITORY");
    for file in ["deploy/krew/inference-webhook.yaml", "action.yml"] {
        let text = std::fs::read_to_string(repo().join(file)).unwrap();
        for url in text
            .split_whitespace()
            .filter(|w| w.contains("https://github.com/"))
        {
            assert!(url.starts_with(repository), "{file}: {url}");
        }
    }
}
