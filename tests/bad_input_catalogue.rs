//! The named catalogue of bad input (issue 6), one test each, each asserting the exact answer.
//! Envelope-level damage goes through the real server (TLS, body limit, JSON error body); what
//! the engine must read goes through the protocol layer in process, where the decision and the
//! patch can be checked against the object.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use inference_webhook::admission;
use inference_webhook::admission::{Mode, Route};
use inference_webhook::decide::Policy;
use serde_json::{Value, json};
use support::decide::{BACKEND, WORKLOAD};
use support::fixtures::{VLLM, fixture_value, review};
use support::patch::apply_review_patch;
use support::server::{SERVICE_HOST, TestServer, post_bytes, raw_tls, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DEFAULT_MAX_BODY: usize = 6 * 1024 * 1024;

/// POST raw bytes to `/mutate`; the status and the JSON answer.
async fn post_raw(t: &TestServer, body: Vec<u8>) -> (u16, Value) {
    let url = t.url(SERVICE_HOST, "/mutate");
    post_bytes(&t.client(SERVICE_HOST), &url, body).await
}

/// A bad body gets a 400 whose JSON names the error, and the server keeps answering.
async fn rejected_with(body: Vec<u8>, code: &str) -> Value {
    let t = start(&[]).await;
    let (status, answer) = post_raw(&t, body).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some(code)),
        "{answer}"
    );
    let (status, _) = post_raw(&t, serde_json::to_vec(&fixture_value(VLLM)).unwrap()).await;
    assert_eq!(status, 200, "the next review is answered");
    t.server.shutdown().await.unwrap();
    answer
}

/// A Deployment review around one pod template's containers.
fn deployment_review(containers: Value) -> Value {
    review(json!({
        "uid": "cat-1", "operation": "CREATE", "kind": {"kind": "Deployment"},
        "object": {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"selector": {}, "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": containers}
            }}
        }
    }))
}

fn vllm(args: Value) -> Value {
    json!({"name": "v", "image": "vllm/vllm-openai:v0.10.0", "args": args})
}

/// Review in process; check the envelope, apply the patch (if any) to the object.
/// Returns the response and the patched object.
fn answer(sent: &Value, mode: Mode) -> (Value, Value) {
    let body = serde_json::to_vec(sent).unwrap();
    let reviewed = admission::review(&body, &Policy::default(), mode, Route::Mutate)
        .unwrap_or_else(|e| panic!("reviewed: {}", e.code()));
    let out: Value = serde_json::from_slice(&reviewed.body).unwrap();
    assert_eq!(out["kind"], "AdmissionReview");
    assert_eq!(out["response"]["uid"], sent["request"]["uid"]);
    let object = apply_review_patch(&sent["request"]["object"], &out["response"]);
    (out["response"].clone(), object)
}

fn warnings(response: &Value) -> Vec<&str> {
    response["warnings"]
        .as_array()
        .map(|w| w.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn labels(object: &Value) -> &Value {
    &object["spec"]["template"]["metadata"]["labels"]
}

// --- envelope: through the real server ------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_body_is_malformed_json_at_every_cut() {
    let full = serde_json::to_vec(&fixture_value(VLLM)).unwrap();
    // Every cut point is a malformed body (checked in process: fast), and one goes over the wire.
    for cut in (0..full.len()).step_by(37) {
        let code = admission::review(
            &full[..cut],
            &Policy::default(),
            Mode::Enforce,
            Route::Mutate,
        )
        .err()
        .map(|e| e.code());
        assert_eq!(code, Some("malformed_json"), "cut at {cut}");
    }
    let answer = rejected_with(full[..full.len() / 2].to_vec(), "malformed_json").await;
    assert!(
        answer["message"].as_str().unwrap().contains("EOF"),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_megabyte_body_is_refused_with_413_declared_or_streamed() {
    let t = start(&[]).await;
    let mut big = fixture_value(VLLM);
    big["request"]["object"]["metadata"]["annotations"]["big"] = json!("x".repeat(10 << 20));
    let big = serde_json::to_vec(&big).unwrap();
    assert!(big.len() > 10 << 20 && big.len() > DEFAULT_MAX_BODY);
    // With a Content-Length: refused before the body is read.
    let (status, answer) = post_raw(&t, big.clone()).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (413, Some("body_too_large"))
    );
    // Chunked, no Content-Length: refused once the limit is crossed.
    let stream = raw_tls(&t.ca_pem(), SERVICE_HOST, t.server.addr).await;
    let (mut read, mut write) = tokio::io::split(stream);
    let writer = async move {
        let head = format!(
            "POST /mutate HTTP/1.1\r\nhost: {SERVICE_HOST}\r\ncontent-type: application/json\r\n\
             transfer-encoding: chunked\r\n\r\n"
        );
        let mut wire = head.into_bytes();
        for chunk in big.chunks(64 * 1024) {
            wire.extend(format!("{:x}\r\n", chunk.len()).bytes());
            wire.extend(chunk);
            wire.extend(b"\r\n");
        }
        wire.extend(b"0\r\n\r\n");
        // The server answers and closes before the end: a failed write is expected.
        for piece in wire.chunks(64 * 1024) {
            if write.write_all(piece).await.is_err() {
                break;
            }
        }
    };
    let reader = async move {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && read.read(&mut byte).await.unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        String::from_utf8_lossy(&head).into_owned()
    };
    let ((), head) = tokio::join!(writer, reader);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    // The server is still there.
    let (status, _) = post_raw(&t, serde_json::to_vec(&fixture_value(VLLM)).unwrap()).await;
    assert_eq!(status, 200);
    t.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_deep_nesting_is_refused_as_malformed_json() {
    // serde_json stops at 128 levels: a deep value anywhere is a 400, not a stack overflow.
    let deep = format!("{}1{}", "[".repeat(1000), "]".repeat(1000));
    let text = serde_json::to_string(&fixture_value(VLLM)).unwrap();
    let body = text.replacen("\"replicas\":2", &format!("\"replicas\":{deep}"), 1);
    assert!(body != text, "the fixture has replicas: 2");
    let answer = rejected_with(body.into_bytes(), "malformed_json").await;
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("recursion limit"),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_in_the_object_is_malformed_json() {
    let text = serde_json::to_string(&fixture_value(VLLM)).unwrap();
    let at = text.find("vllm/vllm-openai").expect("the image") + 4;
    let mut body = text.into_bytes();
    body.splice(at..at, [0xff, 0xfe]);
    rejected_with(body, "malformed_json").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_api_version_is_named_in_the_error() {
    let mut sent = fixture_value(VLLM);
    sent["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let answer = rejected_with(serde_json::to_vec(&sent).unwrap(), "wrong_api_version").await;
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains("admission.k8s.io/v1beta1") && message.contains("admission.k8s.io/v1\"")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_uid_is_refused() {
    let mut sent = fixture_value(VLLM);
    sent["request"].as_object_mut().unwrap().remove("uid");
    let answer = rejected_with(serde_json::to_vec(&sent).unwrap(), "missing_uid").await;
    assert!(answer.get("uid").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_not_an_object_is_refused_with_the_uid() {
    for object in [json!("a string"), json!([1, 2]), json!(7), Value::Null] {
        let mut sent = fixture_value(VLLM);
        sent["request"]["object"] = object.clone();
        let answer =
            rejected_with(serde_json::to_vec(&sent).unwrap(), "object_not_an_object").await;
        assert_eq!(answer["uid"], sent["request"]["uid"], "{object}");
    }
}

// --- what the engine reads: in process ------------------------------------------------------

#[test]
fn containers_not_a_list_is_allowed_with_an_unreadable_template_warning() {
    for containers in [json!({"name": "v"}), json!("vllm"), json!(3)] {
        for mode in Mode::ALL {
            let sent = deployment_review(containers.clone());
            let (response, _) = answer(&sent, mode);
            assert_eq!(response["allowed"], true);
            assert!(response.get("patch").is_none());
            assert_eq!(
                warnings(&response),
                [
                    "unreadable-template: is not a list of containers; fix the manifest (at spec.template.spec.containers)"
                ]
            );
        }
    }
}

#[test]
fn ports_as_strings() {
    // A port list that is a string: labels only, and a warning naming the field.
    let mut c = vllm(json!(["m"]));
    c["ports"] = json!("8000");
    let (response, object) = answer(&deployment_review(json!([c])), Mode::Enforce);
    assert_eq!(response["allowed"], true);
    assert_eq!(labels(&object)[BACKEND], "vllm");
    assert_eq!(
        object["spec"]["template"]["spec"]["containers"][0]["ports"],
        "8000"
    );
    let w = warnings(&response);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].starts_with("unreadable-template: "));
    assert!(
        w[0].ends_with("(at spec.template.spec.containers[0].ports)"),
        "{w:?}"
    );
    // A containerPort that is a string is not the metrics port: the named port is added.
    let mut c = vllm(json!(["m"]));
    c["ports"] = json!([{"containerPort": "8000"}]);
    let (response, object) = answer(&deployment_review(json!([c])), Mode::Enforce);
    assert_eq!(response["allowed"], true);
    assert_eq!(
        object["spec"]["template"]["spec"]["containers"][0]["ports"],
        json!([{"containerPort": "8000"}, {"name": "http", "containerPort": 8000, "protocol": "TCP"}])
    );
}

#[test]
fn out_of_range_ports_are_unresolved_and_get_labels_only() {
    for port in ["99999", "-1"] {
        for form in [
            json!(["m", "--port", port]),
            json!(["m", format!("--port={port}")]),
        ] {
            let (response, object) = answer(&deployment_review(json!([vllm(form)])), Mode::Enforce);
            assert_eq!(response["allowed"], true);
            assert_eq!(labels(&object)[BACKEND], "vllm");
            assert_eq!(labels(&object)[WORKLOAD], "web");
            assert!(
                object["spec"]["template"]["spec"]["containers"][0]
                    .get("ports")
                    .is_none()
            );
            let w = warnings(&response);
            assert_eq!(w.len(), 1, "{w:?}");
            assert!(
                w[0].starts_with(&format!(
                    "metrics-port-unresolved: --port is \"{port}\", which is not a port number (1-65535)"
                )) && w[0].ends_with("(at spec.template.spec.containers[0])"),
                "{w:?}"
            );
        }
    }
}

#[test]
fn unterminated_quotes_in_sh_c_read_to_the_end_of_the_script() {
    let script = |s: &str| json!({"name": "v", "image": "vllm/vllm-openai:v0.10.0", "command": ["sh", "-c", s]});
    // The quote swallows the rest: the port inside it is still read.
    let (response, object) = answer(
        &deployment_review(json!([script("vllm serve m --port '8001")])),
        Mode::Enforce,
    );
    assert_eq!(response["allowed"], true);
    let ports = &object["spec"]["template"]["spec"]["containers"][0]["ports"];
    assert_eq!(
        ports,
        &json!([{"name": "http", "containerPort": 8001, "protocol": "TCP"}])
    );
    // Here the quote swallows `--port 8001` into the model name: the default port applies.
    let (_, object) = answer(
        &deployment_review(json!([script("vllm serve \"m --port 8001")])),
        Mode::Enforce,
    );
    assert_eq!(
        object["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        8000
    );
    for s in [
        "'",
        "\"",
        "vllm serve m \\",
        "$(",
        "${PORT",
        "echo \"$(vllm serve",
    ] {
        let (response, _) = answer(&deployment_review(json!([script(s)])), Mode::Enforce);
        assert_eq!(response["allowed"], true, "{s}");
    }
}

#[test]
fn env_references_in_a_cycle_stay_unresolved() {
    // $(A) -> $(B) -> $(A): each env value sees only the variables defined before it.
    let mut c = vllm(json!(["m", "--port", "$(A)"]));
    c["env"] = json!([{"name": "A", "value": "$(B)"}, {"name": "B", "value": "$(A)"}]);
    let (response, object) = answer(&deployment_review(json!([c])), Mode::Enforce);
    assert_eq!(response["allowed"], true);
    assert_eq!(labels(&object)[BACKEND], "vllm");
    let w = warnings(&response);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("metrics-port-unresolved: --port is \"$(B)\"")
            && w[0].ends_with("(at spec.template.spec.containers[0])"),
        "{w:?}"
    );
}

#[test]
fn doubling_env_chains_are_bounded() {
    // Regression: each variable twice the one before used to expand to 2^40 bytes (an abort).
    let mut env = vec![json!({"name": "V0", "value": "xxxxxxxx"})];
    env.extend(
        (1..40).map(
            |i| json!({"name": format!("V{i}"), "value": format!("$(V{})$(V{})", i - 1, i - 1)}),
        ),
    );
    let mut c = vllm(json!(["m", "--port", "$(V39)"]));
    c["env"] = json!(env);
    let (response, object) = answer(&deployment_review(json!([c])), Mode::Enforce);
    assert_eq!(response["allowed"], true);
    assert_eq!(labels(&object)[BACKEND], "vllm");
    assert!(warnings(&response)[0].starts_with("metrics-port-unresolved: "));
}

#[test]
fn ten_thousand_containers_get_one_metrics_port() {
    let containers: Vec<Value> = (0..10_000)
        .map(|i| json!({"name": format!("v{i}"), "image": "vllm/vllm-openai:v0.10.0", "args": ["m"]}))
        .collect();
    let (response, object) = answer(&deployment_review(json!(containers)), Mode::Enforce);
    assert_eq!(response["allowed"], true);
    assert_eq!(labels(&object)[BACKEND], "vllm");
    let list = object["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(list.len(), 10_000);
    let with_ports: Vec<usize> = (0..list.len())
        .filter(|&i| list[i].get("ports").is_some())
        .collect();
    assert_eq!(
        with_ports,
        [0],
        "the first engine container serves the metrics"
    );
}

#[test]
fn ten_thousand_rbg_roles_are_each_labelled() {
    // Regression for the quadratic patch planning (thousands of templates in one object).
    let roles: Vec<Value> = (0..10_000)
        .map(|i| json!({"name": format!("r{i}"), "standalonePattern": {"template": {"spec": {"containers": [vllm(json!(["m"]))]}}}}))
        .collect();
    let sent = review(json!({"uid": "rbg", "operation": "CREATE", "object": {
        "apiVersion": "workloads.x-k8s.io/v1alpha2", "kind": "RoleBasedGroup",
        "metadata": {"name": "g"}, "spec": {"roles": roles}}}));
    let (response, object) = answer(&sent, Mode::Warn);
    assert_eq!(response["allowed"], true);
    let roles = object["spec"]["roles"].as_array().unwrap();
    assert!(
        roles
            .iter()
            .all(|r| r["standalonePattern"]["template"]["metadata"]["labels"][BACKEND] == "vllm")
    );
}

#[test]
fn a_one_megabyte_label_value_is_kept_and_answered() {
    let big = "x".repeat(1 << 20);
    // On the object: not copied anywhere, the template gets its labels.
    let mut sent = deployment_review(json!([vllm(json!(["m"]))]));
    sent["request"]["object"]["metadata"]["labels"] = json!({"big": big});
    let body_len = serde_json::to_vec(&sent).unwrap().len();
    let (response, object) = answer(&sent, Mode::Enforce);
    assert_eq!(response["allowed"], true);
    assert_eq!(labels(&object)[WORKLOAD], "web");
    assert!(
        response.to_string().len() < body_len / 100,
        "the answer does not echo the value"
    );
    // As the template's own workload label: a user's label is never overwritten.
    let mut sent = deployment_review(json!([vllm(json!(["m"]))]));
    sent["request"]["object"]["spec"]["template"]["metadata"]["labels"][WORKLOAD] = json!(big);
    let (response, object) = answer(&sent, Mode::Enforce);
    assert_eq!(response["allowed"], true);
    assert_eq!(
        labels(&object)[WORKLOAD].as_str().map(str::len),
        Some(1 << 20)
    );
    assert_eq!(labels(&object)[BACKEND], "vllm");
}

#[test]
fn a_hundred_thousand_args_still_find_the_port() {
    let mut args = vec![json!("m")];
    args.extend((0..100_000).map(|i| json!(format!("--flag-{i}"))));
    args.extend([json!("--port"), json!("8001")]);
    let (response, object) = answer(
        &deployment_review(json!([vllm(json!(args))])),
        Mode::Enforce,
    );
    assert_eq!(response["allowed"], true);
    assert_eq!(
        object["spec"]["template"]["spec"]["containers"][0]["ports"],
        json!([{"name": "http", "containerPort": 8001, "protocol": "TCP"}])
    );
}
