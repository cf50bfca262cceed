//! The webhook's routes through real TLS (reqwest + rustls, trusting only the generated CA, with
//! the SNI a cluster uses): every mode on every route, dry-run, each bad input, probes, metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::commands::run_async;
use support::fixtures::{RBG, VLLM, fixture_path, fixture_value, review};
use support::metrics::scrape;
use support::patch::{apply_patch, review_patch};
use support::server::{SERVICE_HOST, post_json, start};

/// Apply a review's patch to the object it was computed for.
fn patched_object(sent: &Value, answer: &Value) -> Value {
    let ops = review_patch(&answer["response"]).expect("a patch");
    apply_patch(&sent["request"]["object"], &ops)
}

fn assert_envelope(sent: &Value, answer: &Value) {
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(answer["response"]["uid"], sent["request"]["uid"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mode_on_every_route_answers_the_vllm_deployment() {
    let t = start(&[]).await;
    let client = t.client(SERVICE_HOST);
    let sent = fixture_value(VLLM);
    for route in ["mutate", "validate"] {
        for mode in ["", "/enforce", "/warn", "/audit"] {
            let url = t.url(SERVICE_HOST, &format!("/{route}{mode}"));
            let (status, answer) = post_json(&client, &url, &sent).await;
            assert_eq!(status, 200, "{url}: {answer}");
            assert_envelope(&sent, &answer);
            let response = &answer["response"];
            assert_eq!(response["allowed"], true, "{url}: {answer}");
            let patches = route == "mutate" && mode != "/audit";
            assert_eq!(response["patch"].is_string(), patches, "{url}: {answer}");
            if patches {
                assert_eq!(response["patchType"], "JSONPatch");
                let object = patched_object(&sent, &answer);
                let template = &object["spec"]["template"];
                let labels = &template["metadata"]["labels"];
                assert_eq!(
                    labels["alibabacloud.com/inference-workload"],
                    "llama-3-1-8b-instruct"
                );
                assert_eq!(labels["alibabacloud.com/inference-backend"], "vllm");
                let port = &template["spec"]["containers"][0]["ports"][0];
                assert_eq!(
                    (&port["name"], &port["containerPort"]),
                    (&json!("http"), &json!(8000))
                );
            } else {
                // Not patched: the missing labels are reported instead.
                let warnings = response["warnings"].as_array().expect("warnings");
                assert!(
                    warnings
                        .iter()
                        .any(|w| w.as_str().unwrap().contains("monitoring-labels-missing")),
                    "{url}: {answer}"
                );
            }
            let annotated = response.get("auditAnnotations").is_some();
            assert_eq!(annotated, mode == "/audit", "{url}: {answer}");
        }
    }
    t.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_level_violation_denies_only_in_enforce_mode() {
    let t = start(&[]).await;
    let client = t.client(SERVICE_HOST);
    let mut sent = fixture_value(VLLM);
    let args =
        &mut sent["request"]["object"]["spec"]["template"]["spec"]["containers"][0]["args"][0];
    *args = json!(format!("{} --disable-log-stats", args.as_str().unwrap()));
    for (path, allowed) in [
        ("/mutate", false),
        ("/mutate/enforce", false),
        ("/validate/enforce", false),
        ("/mutate/warn", true),
        ("/validate/audit", true),
    ] {
        let (status, answer) = post_json(&client, &t.url(SERVICE_HOST, path), &sent).await;
        assert_eq!(status, 200);
        assert_envelope(&sent, &answer);
        let response = &answer["response"];
        assert_eq!(response["allowed"], allowed, "{path}: {answer}");
        let text = if allowed {
            response["warnings"].to_string()
        } else {
            assert_eq!(response["status"]["code"], 403);
            assert!(response.get("patch").is_none(), "a denial carries no patch");
            response["status"]["message"].to_string()
        };
        assert!(text.contains("metrics-disabled"), "{path}: {answer}");
    }
    t.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rbg_gets_labels_on_its_engine_roles_and_a_warning_for_the_router() {
    let t = start(&[]).await;
    let client = t.client("localhost");
    let sent = fixture_value(RBG);
    let (status, answer) = post_json(&client, &t.url("localhost", "/mutate/warn"), &sent).await;
    assert_eq!(status, 200);
    assert_envelope(&sent, &answer);
    let object = patched_object(&sent, &answer);
    let labels_of = |role: usize| {
        object["spec"]["roles"][role]["standalonePattern"]["template"]["metadata"]["labels"].clone()
    };
    for role in [1, 2] {
        let labels = labels_of(role);
        assert_eq!(
            labels["alibabacloud.com/inference-workload"], "qwen3-pd",
            "role {role}"
        );
        assert_eq!(
            labels["alibabacloud.com/inference-backend"], "sglang",
            "role {role}"
        );
    }
    // The router's backend is outside the default supported set: reported, not labeled.
    assert!(
        labels_of(0)
            .get("alibabacloud.com/inference-workload")
            .is_none()
    );
    assert!(
        answer["response"]["warnings"]
            .to_string()
            .contains("engine-not-supported"),
        "{answer}"
    );
    t.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_the_engine_cannot_read_is_allowed_with_a_warning() {
    let t = start(&[]).await;
    let client = t.client(SERVICE_HOST);
    let mut no_list = fixture_value(VLLM);
    no_list["request"]["object"]["spec"]["template"]["spec"]["containers"] = json!("vllm");
    let mut no_template = fixture_value(VLLM);
    no_template["request"]["object"]["spec"]["template"] = json!(["not", "an", "object"]);
    for (what, sent) in [
        ("containers not a list", no_list),
        ("template not an object", no_template),
    ] {
        for path in ["/mutate", "/validate/audit"] {
            let (status, answer) = post_json(&client, &t.url(SERVICE_HOST, path), &sent).await;
            assert_eq!(status, 200, "{what} {path}");
            assert_envelope(&sent, &answer);
            assert_eq!(
                answer["response"]["allowed"], true,
                "{what} {path}: {answer}"
            );
            let warnings = answer["response"]["warnings"].to_string();
            assert!(
                warnings.contains("unreadable-template"),
                "{what} {path}: {answer}"
            );
        }
    }
    t.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_file_sets_the_mode_of_the_plain_routes() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "defaultMode: audit\n").unwrap();
    let t = start(&[&format!("--config={}", policy.display())]).await;
    let sent = fixture_value(VLLM);
    let (status, answer) = post_json(
        &t.client(SERVICE_HOST),
        &t.url(SERVICE_HOST, "/mutate"),
        &sent,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        answer["response"].get("patch").is_none(),
        "audit never patches: {answer}"
    );
    assert!(
        answer["response"]["auditAnnotations"].is_object(),
        "{answer}"
    );
    t.server.shutdown().await.unwrap();

    std::fs::write(&policy, "defaultMode: permissive\n").unwrap();
    let args = <inference_webhook::server::ServeArgs as clap::Parser>::try_parse_from([
        "serve",
        "--listen=127.0.0.1:0",
        "--metrics-listen=127.0.0.1:0",
        &format!("--config={}", policy.display()),
        &format!("--ca-out={}", dir.path().join("ca.crt").display()),
    ])
    .unwrap();
    let error = inference_webhook::server::Server::start(&args)
        .await
        .err()
        .expect("refused");
    assert!(format!("{error:#}").contains("defaultMode"), "{error:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_gets_the_same_answer() {
    let t = start(&[]).await;
    let client = t.client(SERVICE_HOST);
    let sent = fixture_value(VLLM);
    let mut dry = sent.clone();
    dry["request"]["dryRun"] = json!(true);
    for path in ["/mutate", "/validate/audit"] {
        let url = t.url(SERVICE_HOST, path);
        let (_, wet_answer) = post_json(&client, &url, &sent).await;
        let (status, dry_answer) = post_json(&client, &url, &dry).await;
        assert_eq!(status, 200);
        assert_eq!(dry_answer, wet_answer, "{path}");
    }
    t.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_a_json_4xx() {
    let t = start(&["--max-body-bytes=20000"]).await;
    let client = t.client("localhost");
    let url = t.url("localhost", "/mutate");
    let vllm = serde_json::to_vec(&fixture_value(VLLM)).unwrap();
    let mut large = fixture_value(VLLM);
    large["request"]["object"]["metadata"]["annotations"]["big"] = json!("x".repeat(30_000));
    let large = serde_json::to_vec(&large).unwrap();
    // (what, content type, body, expected status, expected error code)
    type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("malformed JSON", Some("application/json"), b"{\"apiVersion\": \"admission".to_vec(), 400, "malformed_json"),
        ("invalid UTF-8", Some("application/json"), b"{\"apiVersion\": \"\xff\"}".to_vec(), 400, "malformed_json"),
        (
            "no request",
            Some("application/json"),
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
            400,
            "no_request",
        ),
        (
            "wrong apiVersion",
            Some("application/json"),
            br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}}"#.to_vec(),
            400,
            "wrong_api_version",
        ),
        (
            "missing uid",
            Some("application/json"),
            serde_json::to_vec(&review(json!({"operation": "CREATE", "object": {}}))).unwrap(),
            400,
            "missing_uid",
        ),
        (
            "object not an object",
            Some("application/json"),
            serde_json::to_vec(&review(json!({"uid": "u-obj", "operation": "CREATE", "object": [1]}))).unwrap(),
            400,
            "object_not_an_object",
        ),
        ("wrong content type", Some("text/plain"), vllm.clone(), 415, "content_type"),
        ("no content type", None, vllm.clone(), 415, "content_type"),
        ("body too large", Some("application/json"), large, 413, "body_too_large"),
    ];
    for (what, content_type, body, want_status, want_error) in cases {
        let mut request = client.post(&url).body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let response = request.send().await.expect(what);
        assert_eq!(response.status().as_u16(), want_status, "{what}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{what}"
        );
        let answer: Value = response.json().await.expect(what);
        assert_eq!(answer["error"], want_error, "{what}: {answer}");
        assert!(
            answer["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}"
        );
        if want_error == "object_not_an_object" {
            assert_eq!(answer["uid"], "u-obj");
        }
    }
    for (method, path, want_status, want_error) in [
        ("POST", "/mutate/permissive", 404, "unknown_mode"),
        ("POST", "/nope", 404, "not_found"),
        ("GET", "/mutate", 405, "method_not_allowed"),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = client
            .request(method, t.url("localhost", path))
            .header("content-type", "application/json")
            .body(vllm.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), want_status, "{path}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"], want_error, "{path}");
    }
    // The server is still fine after all that.
    let (status, answer) = post_json(&client, &url, &fixture_value(VLLM)).await;
    assert_eq!(
        (status, answer["response"]["allowed"].clone()),
        (200, json!(true))
    );
    t.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_answer_and_both_sni_names_speak_http2() {
    let t = start(&[]).await;
    for host in ["localhost", SERVICE_HOST] {
        let client = t.client(host);
        for path in ["/healthz", "/readyz"] {
            let response = client.get(t.url(host, path)).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200, "{host}{path}");
            assert_eq!(response.version(), reqwest::Version::HTTP_2, "{host}{path}");
        }
    }
    // A name outside the certificate's SANs is refused by the client's verification.
    let stranger = support::server::client(&t.ca_pem(), "other.example", t.server.addr);
    let refused = stranger
        .get(t.url("other.example", "/healthz"))
        .send()
        .await;
    assert!(refused.is_err());
    t.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_reviews_errors_and_certificate_expiry() {
    let t = start(&[]).await;
    let client = t.client("localhost");
    let sent = fixture_value(VLLM);
    post_json(&client, &t.url("localhost", "/mutate/warn"), &sent).await;
    post_json(&client, &t.url("localhost", "/validate/audit"), &sent).await;
    let bad = client
        .post(t.url("localhost", "/mutate"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let text = scrape(t.server.metrics_addr).await;
    for want in [
        r#"inference_webhook_reviews_total{kind="Deployment",operation="create",mode="warn",route="mutate",decision="patched"} 1"#,
        r#"inference_webhook_reviews_total{kind="Deployment",operation="create",mode="audit",route="validate",decision="allowed"} 1"#,
        r#"inference_webhook_review_errors_total{reason="malformed_json"} 1"#,
        r#"inference_webhook_review_duration_seconds_bucket{le="0.0001",route="mutate"}"#,
        r#"inference_webhook_detections_total{backend="vllm"} 2"#,
        r#"inference_webhook_violations_total{rule="monitoring-labels-missing",level="warn"}"#,
        "inference_webhook_certificate_not_after_seconds ",
        "inference_webhook_certificate_reload_failures_total 0",
    ] {
        assert!(text.contains(want), "missing {want} in\n{text}");
    }
    // No object names or namespaces in label values.
    assert!(!text.contains("llama-3-1-8b-instruct") && !text.contains("llm-serving"));
    t.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_with_cacert_and_the_service_name_gets_the_review() {
    let t = start(&[]).await;
    let ca = t.dir.path().join("ca.crt");
    let port = t.server.addr.port();
    let mut curl = std::process::Command::new("curl");
    curl.args(["--silent", "--show-error", "--fail-with-body", "--cacert"])
        .arg(&ca)
        .arg("--resolve")
        .arg(format!("{SERVICE_HOST}:{port}:127.0.0.1"))
        .args(["-H", "Content-Type: application/json", "--data-binary"])
        .arg(format!("@{}", fixture_path(VLLM).display()))
        .arg(format!("https://{SERVICE_HOST}:{port}/mutate"));
    let (ok, stdout, stderr) = run_async(curl).await;
    assert!(ok, "curl failed: {stderr}");
    let answer: Value = serde_json::from_str(&stdout).unwrap();
    assert_envelope(&fixture_value(VLLM), &answer);
    assert!(review_patch(&answer["response"]).is_some(), "{answer}");
    t.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_key_spelled_like_a_pruned_member_is_read_by_the_server() {
    // The server prunes `resources` in containers only: a label of that name is the opt-out.
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "optOutLabel: resources\noptOutValue: disabled\n").unwrap();
    let t = start(&[&format!("--config={}", policy.display())]).await;
    let client = t.client(SERVICE_HOST);
    let url = t.url(SERVICE_HOST, "/mutate/enforce");
    let mut sent = fixture_value(VLLM);
    let (status, answer) = post_json(&client, &url, &sent).await;
    assert_eq!(status, 200);
    assert!(answer["response"]["patch"].is_string(), "{answer}");
    sent["request"]["object"]["metadata"]["labels"] = json!({"resources": "disabled"});
    let (status, answer) = post_json(&client, &url, &sent).await;
    assert_eq!(status, 200);
    assert_envelope(&sent, &answer);
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert!(
        answer["response"].get("patch").is_none(),
        "opted out by the label `resources`: {answer}"
    );
    t.server.shutdown().await.unwrap();
}
