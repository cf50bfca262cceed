//! The audit command over manifests, run as the real binary: reports, exit codes, `--fix`,
//! and bad input.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use support::commands::{BINARY, command, json_report, run, stderr, stdout};
use support::fixtures::{fixture_path, temp_dir};

fn fixture(name: &str) -> PathBuf {
    fixture_path("audit").join(name)
}

fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Run `inference-webhook audit ARGS`, with `stdin` piped in when given.
fn audit_with_stdin(args: &[&str], stdin: Option<&[u8]>) -> Output {
    run(command("audit").args(args).env_remove("NO_COLOR"), stdin)
}

fn audit(args: &[&str]) -> Output {
    audit_with_stdin(args, None)
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The member names of a JSON object (JSON objects are unordered).
fn keys_of(v: &Value) -> std::collections::BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn keys(names: &[&str]) -> std::collections::BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn object<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["objects"]
        .as_array()
        .and_then(|objects| objects.iter().find(|o| o["name"] == name))
        .unwrap_or_else(|| panic!("no object {name} in {report}"))
}

fn patch_paths(object: &Value) -> Vec<String> {
    object["patch"]
        .as_array()
        .map(|ops| {
            ops.iter()
                .map(|op| op["path"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------- reports and verdicts

#[test]
fn json_report_has_the_documented_schema() {
    let out = audit(&["-o", "json", &path(&fixture("vllm-unlabeled.yaml"))]);
    let report = json_report(&out);
    assert_eq!(
        keys_of(&report),
        keys(&[
            "schema",
            "mode",
            "objects",
            "errors",
            "notes",
            "summary",
            "unlabeledPods"
        ])
    );
    assert_eq!(report["schema"], "inference-webhook.audit/v1");
    assert_eq!(report["mode"], "enforce");
    assert_eq!(
        report["unlabeledPods"],
        json!([]),
        "pods are listed by audit --cluster only"
    );
    let service = object(&report, "qwen-vllm");
    assert_eq!(
        keys_of(service),
        keys(&[
            "kind",
            "apiVersion",
            "namespace",
            "name",
            "source",
            "decision",
            "reason",
            "templates",
            "patch",
            "violations"
        ])
    );
    assert_eq!(service["kind"], "Service");
    assert_eq!(service["decision"], "skipped");
    assert_eq!(
        service["source"],
        json!({"file": path(&fixture("vllm-unlabeled.yaml")), "document": 1, "line": 2})
    );
    let deployment = &report["objects"][1];
    assert_eq!(deployment["kind"], "Deployment");
    assert_eq!(deployment["source"]["document"], 2);
    assert_eq!(
        deployment["source"]["line"], 15,
        "first content line after the comment"
    );
    for key in [
        "objects",
        "workloads",
        "inference",
        "patched",
        "allowed",
        "denied",
        "skipped",
        "notHandled",
        "denyViolations",
        "warnViolations",
        "errors",
        "exitCode",
    ] {
        assert!(report["summary"][key].is_u64(), "summary.{key}: {report}");
    }
    assert_eq!(report["summary"]["objects"], 2);
    assert_eq!(report["summary"]["notHandled"], 1);
}

#[test]
fn an_unlabeled_vllm_deployment_gets_two_labels_and_the_port() {
    let out = audit(&["-o", "json", &path(&fixture("vllm-unlabeled.yaml"))]);
    let report = json_report(&out);
    let deployment = &report["objects"][1];
    assert_eq!(deployment["decision"], "allowed", "{deployment}");
    assert_eq!(deployment["templates"][0]["path"], "spec.template");
    assert_eq!(deployment["templates"][0]["backend"], "vllm");
    assert_eq!(deployment["templates"][0]["metricsPort"], 8000);
    let detection = &deployment["templates"][0]["detections"][0];
    assert_eq!(detection["engine"], "vllm");
    assert_eq!(detection["strength"], "entrypoint", "{detection}");
    assert!(
        detection["evidence"]
            .as_array()
            .is_some_and(|e| !e.is_empty()),
        "{detection}"
    );
    let paths = patch_paths(deployment);
    assert!(
        paths
            .iter()
            .any(|p| p.ends_with("alibabacloud.com~1inference-workload")),
        "{paths:?}"
    );
    assert!(
        paths
            .iter()
            .any(|p| p.ends_with("alibabacloud.com~1inference-backend")),
        "{paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.contains("/ports/0/name")),
        "{paths:?}"
    );
    let violations = deployment["violations"].to_string();
    assert!(
        violations.contains("monitoring-labels-missing"),
        "{violations}"
    );
    // Missing labels are a warning by default: nothing is denied.
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn sglang_without_metrics_is_denied_and_exits_1() {
    let file = path(&fixture("sglang-no-metrics.yaml"));
    let out = audit(&["-o", "json", &file]);
    let report = json_report(&out);
    let deployment = object(&report, "llama-sglang");
    assert_eq!(deployment["decision"], "denied");
    let violation = deployment["violations"]
        .as_array()
        .and_then(|v| v.iter().find(|f| f["rule"] == "metrics-disabled"))
        .unwrap_or_else(|| panic!("no metrics-disabled in {deployment}"));
    assert_eq!(violation["level"], "deny");
    assert!(
        violation["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("spec.template"))
    );
    assert!(
        violation["message"]
            .as_str()
            .is_some_and(|m| m.contains("--enable-metrics"))
    );
    assert_eq!(report["summary"]["denied"], 1);
    assert_eq!(report["summary"]["exitCode"], 1);
    assert_eq!(out.status.code(), Some(1));

    // Warn and audit modes report the same finding but do not fail.
    for mode in ["warn", "audit"] {
        let out = audit(&["--mode", mode, &file]);
        assert_eq!(out.status.code(), Some(0), "mode {mode}: {}", stdout(&out));
        assert!(
            stdout(&out).contains("metrics-disabled"),
            "{}",
            stdout(&out)
        );
    }
}

#[test]
fn the_policy_file_changes_levels_and_mode() {
    let dir = temp_dir();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "defaultMode: enforce\nrules:\n  monitoring-labels-missing: deny\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = audit(&[
        "--config",
        &path(&policy),
        &path(&fixture("vllm-unlabeled.yaml")),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "unlabeled counts as denied once the rule is deny: {}",
        stdout(&out)
    );

    std::fs::write(&policy, "defaultMode: warn\n").unwrap_or_else(|e| panic!("{e}"));
    let out = audit(&[
        "--config",
        &path(&policy),
        &path(&fixture("sglang-no-metrics.yaml")),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the policy's defaultMode applies"
    );
    assert!(stdout(&out).contains("(mode warn)"), "{}", stdout(&out));

    std::fs::write(&policy, "defaultMode: warn\nportName: HTTP\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let out = audit(&[
        "--config",
        &path(&policy),
        &path(&fixture("vllm-labeled.yaml")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("portName"), "{}", stderr(&out));
}

#[test]
fn the_table_shows_objects_templates_and_rules_without_colour_when_piped() {
    let out = audit(&[
        &path(&fixture("vllm-unlabeled.yaml")),
        &path(&fixture("sglang-no-metrics.yaml")),
    ]);
    let text = stdout(&out);
    assert!(
        !text.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    let header = text.lines().next().unwrap_or("");
    for column in [
        "OBJECT", "SOURCE", "TEMPLATE", "BACKEND", "PORT", "VERDICT", "RULES",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let row = text
        .lines()
        .find(|l| l.starts_with("Deployment ml/llama-sglang"))
        .unwrap_or_else(|| panic!("no row for llama-sglang:\n{text}"));
    assert!(row.contains("sglang-no-metrics.yaml:1(1)"), "{row}");
    assert!(
        row.contains("spec.template") && row.contains("denied"),
        "{row}"
    );
    assert!(row.contains("metrics-disabled"), "{row}");
    assert!(text.contains("Findings:"), "{text}");
    assert!(!text.contains("evidence:"), "evidence only with --explain");
    assert_eq!(out.status.code(), Some(1));

    let explained = audit(&["--explain", &path(&fixture("vllm-unlabeled.yaml"))]);
    let text = stdout(&explained);
    assert!(
        text.lines().any(|l| l
            .trim_start()
            .starts_with("evidence: vllm in container vllm")
            && l.contains("entrypoint evidence: ")),
        "{text}"
    );
}

/// On a terminal the verdict is coloured. `script` (util-linux, in Debian's essential
/// bsdutils) gives the command a pseudo-terminal.
#[test]
fn the_table_is_coloured_on_a_terminal_unless_no_color() {
    let command = format!(
        "{} audit {}",
        BINARY,
        path(&fixture("sglang-no-metrics.yaml"))
    );
    let run = |no_color: bool| {
        let mut script = Command::new("script");
        script.args(["-qec", &command, "/dev/null"]);
        if no_color {
            script.env("NO_COLOR", "1");
        } else {
            script.env_remove("NO_COLOR");
        }
        let out = script
            .output()
            .unwrap_or_else(|e| panic!("script (bsdutils) is needed: {e}"));
        stdout(&out)
    };
    let coloured = run(false);
    assert!(coloured.contains("\x1b[31mdenied\x1b[0m"), "{coloured:?}");
    assert!(!run(true).contains('\x1b'), "NO_COLOR turns colour off");
}

#[test]
fn stdin_is_read_with_a_dash() {
    let text = fixture_text("sglang-no-metrics.yaml");
    let out = audit_with_stdin(&["-o", "json", "-"], Some(text.as_bytes()));
    let report = json_report(&out);
    assert_eq!(report["objects"][0]["name"], "llama-sglang");
    assert_eq!(report["objects"][0]["source"]["file"], "<stdin>");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn directories_are_searched_recursively_for_manifests_only() {
    let dir = temp_dir();
    let root = dir.path();
    for sub in ["a/b", ".git", "c"] {
        std::fs::create_dir_all(root.join(sub)).unwrap_or_else(|e| panic!("{e}"));
    }
    let cm = |name: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n");
    let files = [
        ("a/b/one.yaml", cm("one")),
        ("a/two.yml", cm("two")),
        (
            "c/three.json",
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"three"}}"#.into(),
        ),
        ("c/notes.txt", cm("ignored-txt")),
        (".git/config.yaml", cm("ignored-hidden")),
    ];
    for (name, text) in &files {
        std::fs::write(root.join(name), text).unwrap_or_else(|e| panic!("{e}"));
    }
    let out = audit(&["-o", "json", &path(root)]);
    let report = json_report(&out);
    let names: Vec<&str> = report["objects"]
        .as_array()
        .map(|o| o.iter().filter_map(|o| o["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        names,
        ["one", "two", "three"],
        "sorted walk, manifests only"
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn list_items_are_audited_with_their_index() {
    let out = audit(&["-o", "json", &path(&fixture("list.json"))]);
    let report = json_report(&out);
    let sts = object(&report, "vllm-sts");
    assert_eq!(sts["source"]["item"], 1);
    assert_eq!(sts["source"]["document"], 1);
    assert_eq!(object(&report, "settings")["source"]["item"], 0);
    assert_eq!(sts["templates"][0]["backend"], "vllm", "{sts}");
    assert_eq!(sts["templates"][0]["metricsPort"], 8080, "{sts}");
}

// ---------------------------------------------------------------- --fix and --write

/// The documents of a YAML stream, split on `---` lines.
fn yaml_documents(text: &str) -> Vec<Value> {
    text.split("\n---\n")
        .map(|d| support::yaml::value(d, d))
        .collect()
}

#[test]
fn fix_patches_workloads_and_leaves_other_documents_byte_for_byte() {
    let input = fixture_text("vllm-unlabeled.yaml");
    let out = audit(&["--fix", &path(&fixture("vllm-unlabeled.yaml"))]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let fixed = stdout(&out);
    let service_doc = &input[..input.find("\n---\n").unwrap_or(0) + 5];
    assert!(
        fixed.starts_with(service_doc),
        "the Service, comments included, is unchanged:\n{fixed}"
    );
    assert!(
        fixed.contains("---\n# Source: qwen/templates/deployment.yaml\n"),
        "leading comments of a patched document are kept:\n{fixed}"
    );
    let docs = yaml_documents(&fixed);
    let labels = &docs[1]["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["alibabacloud.com/inference-workload"], "qwen-vllm");
    assert_eq!(labels["alibabacloud.com/inference-backend"], "vllm");
    assert_eq!(labels["app"], "qwen-vllm", "existing labels stay");
    assert_eq!(
        docs[1]["spec"]["template"]["spec"]["containers"][0]["ports"][0],
        json!({"containerPort": 8000, "name": "http"})
    );
    assert!(
        stderr(&out).contains("objects"),
        "the report goes to stderr"
    );

    // The fixed output is a fixed point: auditing it again finds nothing to patch.
    let again = audit_with_stdin(&["-o", "json", "-"], Some(fixed.as_bytes()));
    let report = json_report(&again);
    assert_eq!(report["summary"]["patched"], 0, "{report}");
}

#[test]
fn fix_exits_1_only_for_what_the_patch_does_not_fix() {
    let out = audit(&["--fix", &path(&fixture("sglang-no-metrics.yaml"))]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "metrics-disabled is not fixed by labels"
    );
    let fixed = yaml_documents(&stdout(&out));
    assert_eq!(
        fixed[0]["spec"]["template"]["metadata"]["labels"]["alibabacloud.com/inference-backend"],
        "sglang"
    );
}

#[test]
fn fix_over_several_files_prints_one_valid_stream() {
    let dir = temp_dir();
    // The first file does not end with a line break.
    let first = dir.path().join("a.yaml");
    let text = fixture_text("vllm-labeled.yaml");
    std::fs::write(&first, text.trim_end()).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("b.yaml"),
        fixture_text("vllm-unlabeled.yaml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = audit(&["--fix", &path(dir.path())]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let fixed = stdout(&out);
    assert!(fixed.starts_with(text.trim_end()), "{fixed}");
    let again = audit_with_stdin(&["-o", "json", "-"], Some(fixed.as_bytes()));
    let report = json_report(&again);
    assert_eq!(report["errors"], json!([]), "{fixed}");
    assert_eq!(report["summary"]["objects"], 3);
    assert_eq!(report["summary"]["patched"], 0);
}

/// Real upstream manifests (../shared/corpus, read at run time only): every document is read,
/// and `--fix` output audited again needs no patch and keeps every object.
#[test]
fn fix_over_the_real_corpus_is_a_fixed_point() {
    let corpus = support::fixtures::shared("corpus");
    let before = json_report(&audit(&["-o", "json", &path(&corpus)]));
    assert_eq!(
        before["errors"],
        json!([]),
        "every corpus document is readable"
    );
    assert!(before["summary"]["patched"].as_u64().is_some_and(|n| n > 0));
    let out = audit(&["--fix", &path(&corpus)]);
    let after = json_report(&audit_with_stdin(&["-o", "json", "-"], Some(&out.stdout)));
    assert_eq!(after["errors"], json!([]));
    assert_eq!(after["summary"]["objects"], before["summary"]["objects"]);
    assert_eq!(after["summary"]["patched"], 0, "{}", after["summary"]);
    assert_eq!(after["summary"]["denied"], before["summary"]["denied"]);
}

#[test]
fn fix_keeps_json_as_json() {
    let out = audit(&["--fix", &path(&fixture("list.json"))]);
    let fixed: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("--fix of JSON is JSON ({e}): {}", stdout(&out)));
    assert_eq!(
        fixed["items"][1]["spec"]["template"]["metadata"]["labels"]["alibabacloud.com/inference-backend"],
        "vllm"
    );
    assert_eq!(fixed["items"][0]["data"], json!({"a": "1"}));
}

/// A YAML key with no value is null; the API server reads a null `metadata`, `labels` or
/// `ports` as empty, so the audit reads the template and `--fix` fills the maps in.
#[test]
fn yaml_null_maps_are_empty_for_the_audit_and_fix() {
    for template_metadata in ["metadata:", "metadata:\n      labels:\n      annotations:"] {
        let input = format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: q\nspec:\n  template:\n    {template_metadata}\n    spec:\n      containers:\n      - name: vllm\n        image: vllm/vllm-openai:v0.10.0\n        command: [vllm, serve, m]\n        ports:\n"
        );
        let before = json_report(&audit_with_stdin(
            &["-o", "json", "-"],
            Some(input.as_bytes()),
        ));
        assert_eq!(before["errors"], json!([]), "{input}");
        assert_eq!(before["summary"]["patched"], 1, "{}", before["summary"]);
        let out = audit_with_stdin(&["--fix", "-"], Some(input.as_bytes()));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let fixed = &yaml_documents(&stdout(&out))[0];
        let template = &fixed["spec"]["template"];
        assert_eq!(
            template["metadata"]["labels"]["alibabacloud.com/inference-backend"], "vllm",
            "{fixed}"
        );
        assert_eq!(
            template["spec"]["containers"][0]["ports"][0]["name"], "http",
            "{fixed}"
        );
        let after = json_report(&audit_with_stdin(&["-o", "json", "-"], Some(&out.stdout)));
        assert_eq!(after["summary"]["patched"], 0, "{}", after["summary"]);
    }
}

#[test]
fn fix_names_the_repeated_key_it_cannot_rewrite_and_leaves_the_document_as_it_is() {
    // Helm renders can repeat a label key: the audit reads the last value, as kubectl would;
    // --fix cannot write such a map back, and says which key and line.
    let input = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: q\nspec:\n  template:\n    metadata:\n      labels:\n        model: a\n        model: a\n    spec:\n      containers:\n      - name: vllm\n        image: vllm/vllm-openai:v0.10.0\n        command: [vllm, serve, m]\n";
    let report = json_report(&audit_with_stdin(
        &["-o", "json", "-"],
        Some(input.as_bytes()),
    ));
    assert_eq!(report["errors"], json!([]));
    assert_eq!(report["summary"]["patched"], 1, "{}", report["summary"]);
    let out = audit_with_stdin(&["--fix", "-"], Some(input.as_bytes()));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--fix cannot rewrite this document")
            && err.contains("duplicate mapping key `model`")
            && err.contains("(line 10)"),
        "{err}"
    );
    assert_eq!(
        stdout(&out),
        input,
        "the document is written back as it was"
    );
}

#[test]
fn a_script_mounted_from_a_config_map_of_the_same_file_is_read() {
    let dir = temp_dir();
    let file = dir.path().join("llama.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: scripts\ndata:\n  entrypoint.sh: |\n    cd /workload\n    exec ./build/bin/llama-server -m /m.gguf --port 8080 --metrics\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: llama\nspec:\n  template:\n    spec:\n      containers:\n      - name: llama\n        image: rocm/vllm-dev:20250205_aiter\n        command: [sh, -c]\n        args: [bash /workload/mount/entrypoint.sh]\n        volumeMounts:\n        - {name: scripts, mountPath: /workload/mount}\n      volumes:\n      - {name: scripts, configMap: {name: scripts}}\n",
    )
    .unwrap();
    let config = dir.path().join("policy.yaml");
    std::fs::write(&config, "supportedBackends: [vllm, llamacpp]\n").unwrap();
    let report = json_report(&audit(&[
        "-o",
        "json",
        "--config",
        &path(&config),
        &path(&file),
    ]));
    let detection = &object(&report, "llama")["templates"][0]["detections"][0];
    // The script, not the vLLM image, says what runs.
    assert_eq!(detection["engine"], "llamacpp", "{detection}");
    assert_eq!(detection["strength"], "command", "{detection}");
    assert_eq!(detection["metricsPort"], 8080, "{detection}");
    // From stdin the ConfigMap cannot be read first: the image guesses, and only warns.
    let text = std::fs::read(&file).unwrap();
    let report = json_report(&audit_with_stdin(
        &["-o", "json", "--config", &path(&config), "-"],
        Some(&text),
    ));
    let detection = &object(&report, "llama")["templates"][0]["detections"][0];
    assert_eq!(
        (detection["engine"].as_str(), detection["strength"].as_str()),
        (Some("vllm"), Some("image"))
    );
}

#[test]
fn fix_keeps_the_key_order_the_user_wrote() {
    let input = "kind: Deployment\napiVersion: apps/v1\nmetadata:\n  name: q\nspec:\n  template:\n    spec:\n      containers:\n        - name: vllm\n          image: vllm/vllm-openai:v0.10.0\n          args: [m]\n  selector: {}\n";
    let out = audit_with_stdin(&["--fix", "-"], Some(input.as_bytes()));
    let fixed = stdout(&out);
    let at = |needle: &str| {
        fixed
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} missing:\n{fixed}"))
    };
    assert!(at("kind:") < at("apiVersion:"), "{fixed}");
    assert!(at("template:") < at("selector:"), "{fixed}");
    assert!(at("- name: vllm") < at("image:"), "{fixed}");
    assert!(
        fixed.contains("alibabacloud.com/inference-backend: vllm"),
        "{fixed}"
    );
}

#[test]
fn fix_write_rewrites_only_the_files_that_change() {
    let dir = temp_dir();
    let unlabeled = dir.path().join("unlabeled.yaml");
    let labeled = dir.path().join("labeled.yaml");
    std::fs::write(&unlabeled, fixture_text("vllm-unlabeled.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&labeled, fixture_text("vllm-labeled.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let labeled_before = std::fs::metadata(&labeled).and_then(|m| m.modified()).ok();

    let out = audit(&["--fix", "--write", &path(dir.path())]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "--write prints no manifests");
    let log = stderr(&out);
    let rewritten_files: Vec<&str> = log
        .lines()
        .filter_map(|l| l.strip_prefix("rewrote "))
        .collect();
    assert_eq!(rewritten_files, [path(&unlabeled)], "{log}");

    let rewritten = std::fs::read_to_string(&unlabeled).unwrap_or_default();
    assert!(
        rewritten.contains("alibabacloud.com/inference-workload: qwen-vllm"),
        "{rewritten}"
    );
    assert_eq!(
        std::fs::read_to_string(&labeled).unwrap_or_default(),
        fixture_text("vllm-labeled.yaml")
    );
    assert_eq!(
        std::fs::metadata(&labeled).and_then(|m| m.modified()).ok(),
        labeled_before,
        "an unchanged file is not rewritten"
    );
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .map(|it| {
            it.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(leftovers.len(), 2, "no temporary files left: {leftovers:?}");
}

#[test]
fn fix_without_anything_to_patch_reproduces_the_input_exactly() {
    let input = format!(
        "{}---\n# trailing comment only\n",
        fixture_text("vllm-labeled.yaml")
    );
    let out = audit_with_stdin(&["--fix", "-"], Some(input.as_bytes()));
    assert_eq!(stdout(&out), input);
}

#[test]
fn write_refuses_stdin() {
    let out = audit_with_stdin(&["--fix", "--write", "-"], Some(b"kind: ConfigMap\n"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("stdin cannot be rewritten"),
        "{}",
        stderr(&out)
    );
}

// ---------------------------------------------------------------- bad input

#[test]
fn empty_input_is_an_error_with_exit_2() {
    let out = audit_with_stdin(&["-"], Some(b""));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no Kubernetes objects in the input"),
        "{}",
        stderr(&out)
    );

    let dir = temp_dir();
    let empty = dir.path().join("empty.yaml");
    std::fs::write(&empty, "# nothing here\n---\n").unwrap_or_else(|e| panic!("{e}"));
    let out = audit(&[&path(&empty)]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_directory_without_manifests_is_an_error() {
    let dir = temp_dir();
    std::fs::write(dir.path().join("README.md"), "# docs\n").unwrap_or_else(|e| panic!("{e}"));
    let out = audit(&[&path(dir.path())]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no manifests in this directory"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn binary_files_are_refused_without_reading_them_as_yaml() {
    let dir = temp_dir();
    let bin = dir.path().join("image.yaml");
    let bytes: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    std::fs::write(&bin, bytes).unwrap_or_else(|e| panic!("{e}"));
    let out = audit(&["-o", "json", &path(&bin)]);
    assert_eq!(out.status.code(), Some(2));
    let report = json_report(&out);
    assert!(
        report["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("binary file"))
    );
}

#[test]
fn non_utf8_documents_are_named_with_their_line() {
    let mut input = fixture_text("vllm-labeled.yaml").into_bytes();
    input.extend_from_slice(b"---\napiVersion: v1\nkind: ConfigMap\ndata:\n  a: caf\xe9\n");
    let out = audit_with_stdin(&["-o", "json", "-"], Some(&input));
    assert_eq!(out.status.code(), Some(2));
    let report = json_report(&out);
    assert_eq!(
        report["objects"].as_array().map(Vec::len),
        Some(1),
        "the UTF-8 document is audited"
    );
    let error = &report["errors"][0];
    assert_eq!(error["document"], 2);
    assert_eq!(error["line"], 28);
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("UTF-8"))
    );
}

#[test]
fn documents_without_kind_are_noted_not_audited() {
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n";
    let input = format!("replicaCount: 2\n---\n{cm}---\n- just\n- a list\n");
    let out = audit_with_stdin(&["-o", "json", "-"], Some(input.as_bytes()));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = json_report(&out);
    assert_eq!(report["summary"]["objects"], 1);
    let notes = report["notes"].to_string();
    assert!(notes.contains("<stdin>:1(1): has no `kind`"), "{notes}");
    assert!(notes.contains("<stdin>:3(8): is not a mapping"), "{notes}");

    // Only kind-less documents: nothing was audited, which is an error.
    let out = audit_with_stdin(&["-"], Some(b"replicaCount: 2\n"));
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("has no `kind`"), "{}", stdout(&out));
}

#[test]
fn broken_yaml_in_the_middle_is_reported_and_the_rest_is_audited() {
    let input = format!(
        "{}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: [broken\n---\n{}",
        fixture_text("vllm-labeled.yaml"),
        fixture_text("sglang-no-metrics.yaml")
    );
    let out = audit_with_stdin(&["-o", "json", "-"], Some(input.as_bytes()));
    let report = json_report(&out);
    let names: Vec<&str> = report["objects"]
        .as_array()
        .map(|o| o.iter().filter_map(|o| o["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["labeled-vllm", "llama-sglang"]);
    let error = &report["errors"][0];
    assert_eq!(error["file"], "<stdin>");
    assert_eq!(error["document"], 2);
    assert!(
        error["line"]
            .as_u64()
            .is_some_and(|l| (27..=28).contains(&l)),
        "{error}"
    );
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("invalid YAML"))
    );
    assert!(
        stderr(&out).contains("<stdin>: document 2 (line"),
        "{}",
        stderr(&out)
    );
    // An unreadable document makes the audit incomplete: 2 wins over the deny's 1.
    assert_eq!(report["summary"]["denied"], 1);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_50_mb_file_is_streamed() {
    let dir = temp_dir();
    let big = dir.path().join("big.yaml");
    let doc = fixture_text("vllm-labeled.yaml");
    let padding = format!("  annotations:\n    note: \"{}\"\n", "x".repeat(4000));
    let doc = doc.replacen(
        "  namespace: ml\n",
        &format!("  namespace: ml\n{padding}"),
        1,
    );
    let mut file =
        std::io::BufWriter::new(std::fs::File::create(&big).unwrap_or_else(|e| panic!("{e}")));
    let mut written = 0;
    let mut count = 0;
    while written < 50 * 1024 * 1024 {
        let text = format!(
            "---\n{}",
            doc.replace("labeled-vllm", &format!("vllm-{count}"))
        );
        file.write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        written += text.len();
        count += 1;
    }
    file.flush().unwrap_or_else(|e| panic!("{e}"));
    drop(file);
    let out = audit(&["-o", "json", &path(&big)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = json_report(&out);
    assert_eq!(report["summary"]["objects"], count);
    let last = &report["objects"][count - 1];
    assert_eq!(last["name"], format!("vllm-{}", count - 1));
    assert_eq!(last["source"]["document"], count);
}

#[test]
fn deep_nesting_is_refused_cleanly() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let out = audit_with_stdin(&["-"], Some(deep.as_bytes()));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("recursion limit"), "{}", stderr(&out));
}

#[test]
fn usage_errors_exit_2() {
    let missing = audit(&["/definitely/not/here.yaml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("cannot read"),
        "{}",
        stderr(&missing)
    );
    assert_eq!(audit(&[]).status.code(), Some(2), "no path");
    let bad_mode = audit(&["--mode", "strict", "-"]);
    assert_eq!(bad_mode.status.code(), Some(2));
    assert!(
        stderr(&bad_mode).contains("unknown mode"),
        "{}",
        stderr(&bad_mode)
    );
    assert_eq!(
        audit(&["--write", "x.yaml"]).status.code(),
        Some(2),
        "--write needs --fix"
    );
}

/// A ConfigMap in the same file resolves a workload's `envFrom` variables; from stdin (read
/// once, as a stream) it cannot, and the port then rests on a default that is never a denial.
#[test]
fn a_config_map_in_the_same_file_sets_the_engine_s_port() {
    let dir = temp_dir();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "supportedBackends: [vllm, tgi]\n").unwrap_or_else(|e| panic!("{e}"));
    let file = fixture("tgi-port-from-configmap.yaml");
    let out = audit(&["--config", &path(&policy), "-o", "json", &path(&file)]);
    let report = json_report(&out);
    let template = &report["objects"][1]["templates"][0];
    assert_eq!(template["metricsPort"], 2080, "{template}");
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    let text = fixture_text("tgi-port-from-configmap.yaml");
    let out = audit_with_stdin(
        &["--config", &path(&policy), "-o", "json", "-"],
        Some(text.as_bytes()),
    );
    let report = json_report(&out);
    let findings = report["objects"][1]["violations"].to_string();
    assert!(
        findings.contains("port-name-conflict") && findings.contains("\"warn\""),
        "{findings}"
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "never denied on a default: {}",
        stdout(&out)
    );
}

#[test]
fn merge_keys_and_anchors_are_read_as_kubectl_reads_them() {
    // A container assembled from an anchor with `<<`: the engine sees the merged container.
    let input = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: merged\nspec:\n  template:\n    spec:\n      containers:\n      - &engine\n        name: base\n        image: busybox\n      - <<: *engine\n        name: vllm\n        image: vllm/vllm-openai:v0.10.0\n        command: [vllm, serve, m, --port, \"8001\"]\n";
    let report = json_report(&audit_with_stdin(
        &["-o", "json", "-"],
        Some(input.as_bytes()),
    ));
    assert_eq!(report["errors"], json!([]));
    let template = &report["objects"][0]["templates"][0];
    assert_eq!(template["backend"], "vllm", "{report}");
    assert_eq!(template["metricsPort"], 8001, "{report}");
}
