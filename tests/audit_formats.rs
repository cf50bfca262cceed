//! The CI formats of the audit command, run as the real binary and read back by real consumers:
//! SARIF checked by Microsoft's SARIF multitool (`validate`), JUnit read by PyPI `junitparser`.
//! Both installed by `.ci/install-tools.sh` (see tests/support/tools.rs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::process::{Command, Output};

use inference_webhook::decide::RuleId;
use serde_json::Value;
use support::commands::{command, json_report, run, succeeded};
use support::fixtures::{fixture_path, fixtures_dir, repo};
use support::tools::{self, INSTALL_TOOLS};

/// `inference-webhook audit ARGS` run in tests/fixtures (so paths are relative, as in a repo).
fn audit(args: &[&str], stdin: Option<&[u8]>) -> Output {
    run(
        command("audit").args(args).current_dir(fixtures_dir()),
        stdin,
    )
}

// ---------------------------------------------------------------------------------- SARIF

/// Problems the SARIF multitool finds in `sarif` at level error (schema and spec rules).
fn multitool_errors(sarif: &[u8]) -> Option<Vec<String>> {
    let tool = tools::cached(
        "sarif/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool",
        "SARIF_MULTITOOL",
        INSTALL_TOOLS,
    )?;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("audit.sarif");
    let output = dir.path().join("validation.sarif");
    std::fs::write(&input, sarif).unwrap();
    succeeded(
        Command::new(&tool)
            .arg("validate")
            .arg(&input)
            .arg("-o")
            .arg(&output)
            .args(["--log", "ForceOverwrite"])
            // .NET needs libicu unless told that invariant culture will do (a fresh machine may lack it).
            .env("DOTNET_SYSTEM_GLOBALIZATION_INVARIANT", "1"),
    );
    let log: Value = serde_json::from_slice(&std::fs::read(&output).unwrap()).unwrap();
    let results = log["runs"][0]["results"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Some(
        results
            .iter()
            .filter(|r| r["level"] == "error")
            .map(|r| format!("{} {}", r["ruleId"], r["message"]))
            .collect(),
    )
}

fn results_of<'a>(run: &'a Value, rule: &str) -> Vec<&'a Value> {
    run["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["ruleId"] == rule)
        .collect()
}

#[test]
fn sarif_is_valid_and_describes_every_rule_and_finding() {
    let out = audit(&["-o", "sarif", "ci-formats"], None);
    assert_eq!(out.status.code(), Some(1), "one object is denied");
    if let Some(errors) = multitool_errors(&out.stdout) {
        assert!(errors.is_empty(), "multitool errors: {errors:#?}");
    }
    let log = json_report(&out);
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "inference-webhook");
    assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        driver["informationUri"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );

    let reference = std::fs::read_to_string(repo().join("docs/rules.md")).unwrap();
    let rules = driver["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let engine: Vec<&str> = RuleId::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(ids, engine, "one descriptor per rule, in table order");
    for (rule, descriptor) in RuleId::ALL.iter().zip(rules) {
        for text in ["shortDescription", "fullDescription", "help"] {
            assert!(
                descriptor[text]["text"]
                    .as_str()
                    .is_some_and(|t| t.len() > 10),
                "{descriptor}"
            );
        }
        let level = match rule.default_level().as_str() {
            "deny" => "error",
            _ => "warning",
        };
        assert_eq!(descriptor["defaultConfiguration"]["level"], level);
        let uri = descriptor["helpUri"].as_str().unwrap();
        let anchor = uri.rsplit_once("docs/rules.md#").unwrap().1;
        assert!(
            reference.contains(&format!("<a id=\"{anchor}\"></a>")),
            "{uri} points at no anchor of docs/rules.md"
        );
    }
    let metrics = &results_of(run, "metrics-disabled");
    assert_eq!(metrics.len(), 2, "{metrics:#?}");
    let denied = metrics
        .iter()
        .find(|r| r["suppressions"].is_null())
        .unwrap();
    assert_eq!(denied["level"], "error");
    assert_eq!(
        denied["ruleIndex"],
        ids.iter().position(|i| *i == "metrics-disabled").unwrap()
    );
    let location = &denied["locations"][0];
    assert_eq!(
        location["physicalLocation"]["artifactLocation"]["uri"],
        "ci-formats/workloads.yaml"
    );
    assert_eq!(location["physicalLocation"]["region"]["startLine"], 2);
    assert_eq!(
        location["logicalLocations"][0]["fullyQualifiedName"],
        "Deployment ml/sglang-denied: spec.template.spec.containers[0]"
    );
    assert_eq!(
        denied["properties"]["path"],
        "spec.template.spec.containers[0]"
    );
    let exempted = metrics
        .iter()
        .find(|r| !r["suppressions"].is_null())
        .unwrap();
    assert_eq!(exempted["suppressions"][0]["kind"], "inSource");
    assert_eq!(
        exempted["suppressions"][0]["justification"],
        "metrics come from the sidecar exporter <PLAT-12> & are scraped there"
    );
    let warned = results_of(run, "monitoring-labels-missing");
    assert!(warned.iter().all(|r| r["level"] == "warning"));
    let misused = results_of(run, "exemption-without-reason");
    assert_eq!(
        misused[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "ci-formats/lws%20with%20space.yaml"
    );
    assert_eq!(run["invocations"][0]["executionSuccessful"], true);
    assert!(
        run["originalUriBaseIds"]["%SRCROOT%"]["uri"]
            .as_str()
            .unwrap()
            .starts_with("file:///")
    );
}

#[test]
fn sarif_from_stdin_and_with_unreadable_input_stays_valid() {
    let text = std::fs::read(fixture_path("ci-formats/workloads.yaml")).unwrap();
    let out = audit(&["-o", "sarif", "-", "no-such-file.yaml"], Some(&text));
    assert_eq!(out.status.code(), Some(2), "an unreadable input wins");
    if let Some(errors) = multitool_errors(&out.stdout) {
        assert!(errors.is_empty(), "multitool errors: {errors:#?}");
    }
    let log = json_report(&out);
    let run = &log["runs"][0];
    let result = results_of(run, "metrics-disabled")[0];
    assert!(
        result["locations"][0]["physicalLocation"].is_null(),
        "stdin has no artifact: {result}"
    );
    assert!(result["locations"][0]["logicalLocations"][0]["name"].is_string());
    let invocation = &run["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false);
    let notification = &invocation["toolExecutionNotifications"][0];
    assert_eq!(notification["level"], "error");
    assert!(
        notification["message"]["text"]
            .as_str()
            .unwrap()
            .contains("no-such-file.yaml")
    );
}

// ---------------------------------------------------------------------------------- JUnit

/// The JUnit file as junitparser reads it: suites with their counts, cases with their results.
fn junitparser(xml: &[u8]) -> Option<Value> {
    let python = tools::cached("venv-tools/bin/python", "JUNITPARSER_PYTHON", INSTALL_TOOLS)?;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.xml");
    std::fs::write(&file, xml).unwrap();
    let script = r#"
import json, sys
from junitparser import JUnitXml, Failure, Skipped, Error
xml = JUnitXml.fromfile(sys.argv[1])
kinds = {Failure: "failure", Skipped: "skipped", Error: "error"}
print(json.dumps([{
    "name": s.name, "tests": s.tests, "failures": s.failures, "errors": s.errors,
    "skipped": s.skipped,
    "cases": [{"name": c.name, "classname": c.classname, "out": c.system_out,
               "results": [{"kind": kinds[type(r)], "type": r.type, "message": r.message}
                           for r in c.result]} for c in s],
} for s in xml]))
"#;
    let out = succeeded(Command::new(python).args(["-c", script]).arg(&file));
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

fn case<'a>(suites: &'a Value, name: &str) -> &'a Value {
    suites
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["cases"].as_array().unwrap())
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name} in {suites:#}"))
}

#[test]
fn junit_has_a_case_per_template_and_a_failure_per_deny_finding() {
    let out = audit(&["-o", "junit", "ci-formats"], None);
    assert_eq!(out.status.code(), Some(1));
    let Some(suites) = junitparser(&out.stdout) else {
        return;
    };
    let names: BTreeSet<&str> = suites
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "ci-formats/lws with space.yaml",
            "ci-formats/workloads.yaml"
        ])
    );
    let denied = case(&suites, "Deployment ml/sglang-denied spec.template");
    assert_eq!(denied["classname"], "ci-formats/workloads.yaml");
    let results = denied["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{denied}");
    assert_eq!(results[0]["kind"], "failure");
    assert_eq!(results[0]["type"], "metrics-disabled");
    assert!(
        results[0]["message"]
            .as_str()
            .unwrap()
            .contains("--enable-metrics")
    );
    assert!(
        denied["out"]
            .as_str()
            .unwrap()
            .contains("warn   monitoring-labels-missing")
    );

    let exempted = case(&suites, "Deployment ml/sglang-exempted spec.template");
    assert_eq!(exempted["results"], serde_json::json!([]), "passes");
    assert!(
        exempted["out"]
            .as_str()
            .unwrap()
            .contains("exempt metrics-disabled: spec.template.spec.containers[0]: exempt (metrics come from the sidecar exporter <PLAT-12> & are scraped there)")
    );
    let skipped = case(&suites, "Deployment ml/opted-out");
    assert_eq!(skipped["results"][0]["kind"], "skipped");
    // Both templates of the LeaderWorkerSet are cases; its annotation finding is the object's.
    let leader = case(
        &suites,
        "LeaderWorkerSet ml/dsr1 spec.leaderWorkerTemplate.leaderTemplate (leader)",
    );
    assert!(
        leader["out"]
            .as_str()
            .unwrap()
            .contains("monitoring-labels-missing")
    );
    case(
        &suites,
        "LeaderWorkerSet ml/dsr1 spec.leaderWorkerTemplate.workerTemplate (worker)",
    );
    let object = case(&suites, "LeaderWorkerSet ml/dsr1");
    assert!(
        object["out"]
            .as_str()
            .unwrap()
            .contains("exemption-without-reason")
    );
    let workloads = suites
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "ci-formats/workloads.yaml")
        .unwrap();
    assert_eq!(
        (
            &workloads["tests"],
            &workloads["failures"],
            &workloads["skipped"]
        ),
        (&4.into(), &1.into(), &1.into()),
        "the Service is not a test case"
    );
}

#[test]
fn junit_in_warn_mode_reports_deny_findings_without_failing() {
    let out = audit(
        &["-o", "junit", "--mode", "warn", "ci-formats/workloads.yaml"],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    let Some(suites) = junitparser(&out.stdout) else {
        return;
    };
    let denied = case(&suites, "Deployment ml/sglang-denied spec.template");
    assert_eq!(denied["results"], serde_json::json!([]));
    assert!(
        denied["out"]
            .as_str()
            .unwrap()
            .contains("deny   metrics-disabled")
    );
}

#[test]
fn junit_reports_an_unreadable_input_as_an_error_case() {
    let out = audit(&["-o", "junit", "ci-formats", "no-such-file.yaml"], None);
    assert_eq!(out.status.code(), Some(2));
    let Some(suites) = junitparser(&out.stdout) else {
        return;
    };
    let suite = suites
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "no-such-file.yaml")
        .unwrap();
    assert_eq!(suite["errors"], 1);
    assert_eq!(suite["cases"][0]["results"][0]["kind"], "error");
}

// ------------------------------------------------------------------ exemptions in the reports

#[test]
fn table_and_json_mark_exempted_findings_with_their_reason() {
    let out = audit(&["ci-formats/workloads.yaml"], None);
    let table = String::from_utf8_lossy(&out.stdout);
    let row = table
        .lines()
        .find(|l| l.starts_with("Deployment ml/sglang-exempted"))
        .unwrap();
    assert!(row.contains("allowed"), "{row}");
    assert!(row.contains("metrics-disabled(exempt)"), "{row}");
    assert!(
        table.contains("metrics-disabled: spec.template.spec.containers[0]: exempt (metrics come"),
        "{table}"
    );

    let out = audit(&["-o", "json", "ci-formats/workloads.yaml"], None);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let object = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "sglang-exempted")
        .unwrap();
    assert_eq!(object["decision"], "allowed");
    let exempted: Vec<&Value> = object["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| !v["exemption"].is_null())
        .collect();
    assert_eq!(exempted.len(), 1, "{object}");
    assert_eq!(exempted[0]["rule"], "metrics-disabled");
    assert_eq!(exempted[0]["level"], "deny");
    assert_eq!(
        exempted[0]["exemption"]["reason"],
        "metrics come from the sidecar exporter <PLAT-12> & are scraped there"
    );
    let summary = &report["summary"];
    assert_eq!(summary["exemptedViolations"], 1);
    assert_eq!(summary["denyViolations"], 1, "only sglang-denied's");
    assert_eq!(summary["denied"], 1);
}
