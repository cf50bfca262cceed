//! Generated and mutated AdmissionReviews through the whole protocol layer (parse, decide, mode
//! and route, render), in process. Every case starts from a realistic review (the server's
//! fixtures and a few engine-shaped objects) and gets 1-6 random mutations of its JSON tree —
//! deletions, type changes, huge strings, deep nesting, unicode, nulls, duplicated and odd keys,
//! grafted subtrees, hostile command lines — and sometimes of its bytes (truncation, invalid
//! UTF-8, duplicated keys, lone surrogates).
//!
//! Every case must end in either a well-formed AdmissionReview response (uid echoed, `allowed`
//! a bool, a denial with a 403 status, warnings of at most 256 characters, a base64 JSON Patch that
//! applies to the request's object, changes nothing that was there, and leaves nothing more to
//! patch) or a typed error — never a panic.
//!
//! Deterministic: case `i` uses its own PRNG seeded from (`HOSTILE_SEED`, `i`). Reproduce one
//! case with `HOSTILE_CASE=i`; run longer with the ignored test (see RELIABILITY.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::panic::{AssertUnwindSafe, catch_unwind};

use inference_webhook::admission::{self, ReviewError};
use inference_webhook::admission::{Mode, Route};
use inference_webhook::decide::{Json, Operation, Policy};
use serde_json::{Value, json};
use support::decide::decide_input;
use support::fixtures::{RBG, VLLM, fixture_value, review};
use support::patch::apply_review_patch;

/// Cases per CI run (the issue asks for at least 20,000).
const CI_CASES: u64 = 20_000;
const DEFAULT_SEED: u64 = 0x5eed_0fad_1551_0a0a;

/// SplitMix64: tiny, fast, good enough to drive mutations, and fully reproducible.
struct Rng(u64);

impl Rng {
    fn for_case(seed: u64, case: u64) -> Rng {
        let mut r = Rng(seed ^ case.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        r.next();
        r
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds

fn wrap(uid: &str, operation: &str, object: Value, old: Option<Value>) -> Value {
    let kind = object["kind"].clone();
    let mut request = json!({
        "uid": uid, "kind": {"kind": kind}, "namespace": "llm", "name": object["metadata"]["name"],
        "operation": operation, "object": object,
    });
    if let Some(old) = old {
        request["oldObject"] = old;
    }
    review(request)
}

/// The reviews every case starts from.
fn seeds() -> Vec<Value> {
    let sglang = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "sgl"},
        "spec": {"serviceName": "sgl", "selector": {}, "template": {
            "metadata": {"labels": {"app": "sgl"}},
            "spec": {"containers": [{
                "name": "engine", "image": "docker.io/lmsysorg/sglang:v0.5.5",
                "env": [{"name": "PORT", "value": "30001"}, {"name": "P2", "value": "$(PORT)"}],
                "command": ["/bin/bash", "-c"],
                "args": ["set -e\nexport HF_HOME=/models; \\\n exec python3 -m sglang.launch_server --model-path /m --port $PORT --enable-metrics 2>&1 | tee /log"],
                "ports": [{"containerPort": 30001, "name": "api"}]
            }]}
        }}
    });
    let lws = json!({
        "apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
        "metadata": {"name": "vllm-multinode", "labels": {"team": "x"}},
        "spec": {"leaderWorkerTemplate": {"size": 2,
            "leaderTemplate": {"spec": {"containers": [{
                "name": "leader", "image": "vllm/vllm-openai:v0.10.0",
                "command": ["sh", "-c", "bash /vllm-workspace/examples/online_serving/multi-node-serving.sh leader --ray_cluster_size=$(LWS_GROUP_SIZE); python3 -m vllm.entrypoints.openai.api_server --port 8080 --model m --tensor-parallel-size 8"],
                "ports": [{"containerPort": 8080}]
            }]}},
            "workerTemplate": {"metadata": {}, "spec": {"containers": [{
                "name": "worker", "image": "vllm/vllm-openai:v0.10.0",
                "command": ["sh", "-c", "bash /vllm-workspace/examples/online_serving/multi-node-serving.sh worker --ray_address=$(LWS_LEADER_ADDRESS)"]
            }]}}
        }}
    });
    let deploy = |name: &str, container: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
               "spec": {"selector": {}, "template": {"spec": {"containers": [container]}}}})
    };
    let env_port = deploy(
        "env-port",
        json!({"name": "v", "image": "registry.example.com:5000/team/vllm-openai:v0.10.0",
               "env": [{"name": "BASE", "value": "81"}, {"name": "PORT", "value": "$(BASE)00"}],
               "args": ["m", "--port", "$(PORT)"]}),
    );
    let old_env_port = env_port.clone();
    let llama = deploy(
        "llama",
        json!({"name": "l", "image": "ghcr.io/ggml-org/llama.cpp:server",
               "command": ["llama-server", "-m", "/m.gguf", "--metrics", "--port", "8080"]}),
    );
    vec![
        fixture_value(VLLM),
        fixture_value(RBG),
        wrap("seed-sglang", "CREATE", sglang, None),
        wrap("seed-lws", "CREATE", lws, None),
        wrap("seed-env-port", "UPDATE", env_port, Some(old_env_port)),
        wrap("seed-llama", "CREATE", llama, None),
    ]
}

// ---------------------------------------------------------------------------------------------
// Mutations of the JSON tree

const ODD_STRINGS: &[&str] = &[
    "",
    " ",
    "null",
    "0",
    "-1",
    "99999",
    "65536",
    "1e309",
    "--port",
    "--port=",
    "--port=-1",
    "--port 99999",
    "--metrics-port=0",
    "--disable-log-stats",
    "--enable-metrics",
    "$(A)",
    "$(B)$(A)",
    "$$(A)",
    "$(",
    "$((1+2))",
    "${A:-",
    "${",
    "$",
    "\\",
    "'",
    "\"",
    "sh -c 'vllm serve m --port \"8000",
    "exec env -u X A=1 python3 -m vllm.entrypoints.openai.api_server --port $P",
    "a/b",
    "~1",
    "~0/~",
    "/",
    "-",
    "alibabacloud.com/inference-backend",
    "alibabacloud.com/inference_backend",
    "inference-webhook/skip",
    "inference-monitoring",
    "vllm",
    "sglang",
    "http",
    "\u{0}",
    "\u{202e}evil",
    "é\u{301}",
    "ﬀ𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🦀",
    "\u{feff}",
    "\n\r\t",
];

fn odd_string(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => {
            // Huge strings: mostly 1-64 KiB, now and then up to 512 KiB.
            let len = if rng.chance(10) {
                rng.below(512 * 1024)
            } else {
                rng.below(64 * 1024)
            };
            let unit = *rng.pick(&["x", "é", "🦀", "$(A)", " --port 1"]);
            unit.repeat(len / unit.len() + 1)
        }
        1 => {
            let n = rng.below(12) + 1;
            (0..n)
                .map(|_| *rng.pick(ODD_STRINGS))
                .collect::<Vec<_>>()
                .join(" ")
        }
        _ => rng.pick(ODD_STRINGS).to_string(),
    }
}

fn odd_value(rng: &mut Rng) -> Value {
    match rng.below(14) {
        0 => Value::Null,
        1 => json!(rng.chance(50)),
        2 => json!(*rng.pick(&[0i64, -1, 1, 8000, 65535, 65536, 99999, i64::MIN, i64::MAX])),
        3 => json!(u64::MAX),
        4 => json!(*rng.pick(&[0.5f64, -0.0, 1e308, 8000.0])),
        5 => json!([]),
        6 => json!({}),
        7 => {
            let depth = rng.below(40) + 1;
            nest(rng, depth)
        }
        8 => json!([odd_string(rng), odd_value_flat(rng)]),
        9 => json!({odd_string(rng): odd_value_flat(rng)}),
        _ => Value::String(odd_string(rng)),
    }
}

fn odd_value_flat(rng: &mut Rng) -> Value {
    match rng.below(4) {
        0 => Value::Null,
        1 => json!(rng.below(70_000)),
        _ => Value::String(rng.pick(ODD_STRINGS).to_string()),
    }
}

/// Arrays and objects nested `depth` deep (serde_json refuses more than 128 levels in all).
fn nest(rng: &mut Rng, depth: usize) -> Value {
    let mut v = odd_value_flat(rng);
    for _ in 0..depth {
        v = if rng.chance(50) {
            json!([v])
        } else {
            json!({"a": v})
        };
    }
    v
}

/// Every node's location, as a list of steps from the root.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Object(map) => map.values().map(count_nodes).sum(),
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        _ => 0,
    }
}

/// The location of the `n`-th node of `v` in pre-order (`n` counts down as nodes are passed).
fn nth_location(v: &Value, n: &mut usize, here: &mut Vec<Step>) -> bool {
    if *n == 0 {
        return true;
    }
    *n -= 1;
    let children: Box<dyn Iterator<Item = (Step, &Value)>> = match v {
        Value::Object(map) => Box::new(map.iter().map(|(k, c)| (Step::Key(k.clone()), c))),
        Value::Array(items) => Box::new(items.iter().enumerate().map(|(i, c)| (Step::Index(i), c))),
        _ => return false,
    };
    for (step, child) in children {
        here.push(step);
        if nth_location(child, n, here) {
            return true;
        }
        here.pop();
    }
    false
}

fn at_mut<'v>(v: &'v mut Value, path: &[Step]) -> Option<&'v mut Value> {
    path.iter().try_fold(v, |cur, step| match step {
        Step::Key(k) => cur.get_mut(k),
        Step::Index(i) => cur.get_mut(*i),
    })
}

fn at<'v>(v: &'v Value, path: &[Step]) -> Option<&'v Value> {
    path.iter().try_fold(v, |cur, step| match step {
        Step::Key(k) => cur.get(k),
        Step::Index(i) => cur.get(*i),
    })
}

/// Pick a location, preferring the request's object (where the engine reads) over the envelope.
fn pick_location(rng: &mut Rng, review: &Value) -> Vec<Step> {
    let mut here = Vec::new();
    if rng.chance(85) {
        let inside = *rng.pick(&["object", "object", "oldObject"]);
        if review["request"].get(inside).is_some() {
            here = vec![Step::Key("request".into()), Step::Key(inside.into())];
        }
    }
    let root = at(review, &here).unwrap_or(review);
    let mut n = rng.below(count_nodes(root));
    nth_location(root, &mut n, &mut here);
    here
}

fn mutate_tree(rng: &mut Rng, review: &mut Value) {
    let path = pick_location(rng, review);
    match rng.below(9) {
        // Delete the node from its parent.
        0 | 1 => {
            if let Some((last, parent)) = path.split_last()
                && let Some(parent) = at_mut(review, parent)
            {
                match (last, parent) {
                    (Step::Key(k), Value::Object(m)) => {
                        m.remove(k);
                    }
                    (Step::Index(i), Value::Array(a)) if *i < a.len() => {
                        a.remove(*i);
                    }
                    _ => {}
                }
            }
        }
        // Replace it with a value of another type (null, numbers, strings, nesting, ...).
        2 | 3 => {
            let new = odd_value(rng);
            if let Some(node) = at_mut(review, &path) {
                *node = new;
            }
        }
        // Add a member with an odd key, or an element, to a container.
        4 => {
            let (key, value) = (odd_string(rng), odd_value(rng));
            match at_mut(review, &path) {
                Some(Value::Object(m)) => {
                    m.insert(key, value);
                }
                Some(Value::Array(a)) => a.push(value),
                _ => {}
            }
        }
        // Duplicate: graft a copy of another subtree here (containers into env, templates into
        // ports, ...), or repeat an array element many times.
        5 | 6 => {
            let donor = pick_location(rng, review);
            let copy = at(review, &donor).cloned();
            let times = if rng.chance(10) {
                rng.below(200) + 1
            } else {
                1
            };
            match (copy, at_mut(review, &path)) {
                (Some(copy), Some(Value::Array(a))) => {
                    a.extend(std::iter::repeat_n(copy, times));
                }
                (Some(copy), Some(node)) => *node = copy,
                _ => {}
            }
        }
        // Wrap the node in deep nesting.
        7 => {
            let depth = rng.below(60) + 1;
            if let Some(node) = at_mut(review, &path) {
                let mut v = node.take();
                for _ in 0..depth {
                    v = json!([v]);
                }
                *node = v;
            }
        }
        // Hostile command lines and env in the first container found under the node.
        _ => {
            let line = odd_string(rng);
            if let Some(node) = at_mut(review, &path) {
                hostile_command(rng, node, line);
            }
        }
    }
}

fn hostile_command(rng: &mut Rng, node: &mut Value, line: String) {
    match node {
        Value::Object(m) if m.contains_key("image") || m.contains_key("args") => {
            let field = *rng.pick(&["command", "args", "env", "chain"]);
            let value = match field {
                // Doubling chains: each variable repeats the one before, in env or a script.
                "chain" if rng.chance(50) => {
                    let links = rng.below(48);
                    let mut env = vec![json!({"name": "V0", "value": line})];
                    env.extend((1..links).map(|i| {
                        json!({"name": format!("V{i}"), "value": format!("$(V{})$(V{})", i - 1, i - 1)})
                    }));
                    env.push(json!({"name": "PORT", "value": format!("$(V{})", links.max(1) - 1)}));
                    m.insert("env".into(), Value::Array(env));
                    return;
                }
                "chain" => {
                    let script = format!(
                        "A='{line}'; {} vllm serve m --port $A",
                        "A=$A$A; ".repeat(rng.below(48))
                    );
                    json!(["sh", "-c", script])
                }
                "env" => json!([{"name": "A", "value": "$(B)"}, {"name": "B", "value": "$(A)"},
                                 {"name": "PORT", "value": line}]),
                "command" => json!(["sh", "-c", line]),
                _ => Value::Array(line.split(' ').map(|w| json!(w)).collect()),
            };
            let field = if field == "chain" { "command" } else { field };
            m.insert(field.to_string(), value);
        }
        Value::Object(m) => {
            for child in m.values_mut() {
                hostile_command(rng, child, line.clone());
            }
        }
        Value::Array(items) => {
            for child in items {
                hostile_command(rng, child, line.clone());
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Mutations of the bytes

fn mutate_bytes(rng: &mut Rng, body: &mut Vec<u8>) {
    let at = rng.below(body.len() + 1);
    match rng.below(6) {
        0 => body.truncate(at),
        1 => body.splice(at..at, [0xff, 0xfe, 0xc3]).for_each(drop),
        2 => {
            if let Some(b) = body.get_mut(at) {
                *b ^= 1 << rng.below(8);
            }
        }
        // Duplicated keys: repeat a `"key":` right after an opening brace.
        3 => {
            let text = String::from_utf8_lossy(body).into_owned();
            let key = *rng.pick(&["\"uid\":\"dup\",", "\"kind\":\"Pod\",", "\"object\":{},"]);
            if let Some(pos) = text.match_indices('{').map(|(i, _)| i).nth(rng.below(40)) {
                body.splice(pos + 1..pos + 1, key.bytes()).for_each(drop);
            }
        }
        // A lone surrogate escape inside the next string.
        4 => {
            if let Some(pos) = body[at.min(body.len())..].iter().position(|&b| b == b'"') {
                let pos = at + pos + 1;
                body.splice(pos..pos, *b"\\ud800").for_each(drop);
            }
        }
        _ => body.splice(at..at, *b"\0\0").for_each(drop),
    }
}

// ---------------------------------------------------------------------------------------------
// The oracle

const ERROR_CODES: &[&str] = &[
    "malformed_json",
    "no_request",
    "wrong_api_version",
    "wrong_kind",
    "missing_uid",
    "object_not_an_object",
];

/// Nothing in `before` is missing or different in `after`; arrays may only have grown at the end.
fn only_added(before: &Value, after: &Value) -> bool {
    match (before, after) {
        // The API server reads a null map or list as empty: filling it adds, nothing is lost.
        (Value::Null, Value::Object(_) | Value::Array(_)) => true,
        (Value::Object(b), Value::Object(a)) => b
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|w| only_added(v, w))),
        (Value::Array(b), Value::Array(a)) => {
            a.len() >= b.len() && b.iter().zip(a).all(|(v, w)| only_added(v, w))
        }
        _ => before == after,
    }
}

#[derive(Default)]
struct Tally {
    answered: u64,
    patched: u64,
    denied: u64,
    /// Answered although the body is not strict JSON or its request is not an object.
    lenient: u64,
    errors: std::collections::BTreeMap<&'static str, u64>,
}

fn check(body: &[u8], policy: &Policy, mode: Mode, route: Route, tally: &mut Tally) {
    let reviewed = match admission::review(body, policy, mode, route) {
        Ok(r) => r,
        Err(e) => return check_error(&e, tally),
    };
    tally.answered += 1;
    let answer: Value = serde_json::from_slice(&reviewed.body).expect("the answer is JSON");
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    let response = answer["response"].as_object().expect("a response object");
    assert_eq!(response["uid"], reviewed.meta.uid.as_ref(), "uid echoed");
    // The object the patch is for, read the way the API server holds it. The protocol layer
    // reads some bodies more leniently than strict JSON (see RELIABILITY.md): for those, take
    // the object as it read it, and count them.
    let sent = match serde_json::from_slice::<Value>(body) {
        Ok(mut sent) if sent["request"].is_object() => {
            assert_eq!(response["uid"], sent["request"]["uid"], "uid echoed");
            sent["request"].take()
        }
        _ => {
            tally.lenient += 1;
            let request = admission::parse(body).expect("a reviewed body parses");
            json!({"object": as_value(&request.object),
                   "oldObject": request.old_object.as_ref().map(as_value)})
        }
    };
    let allowed = response["allowed"].as_bool().expect("allowed is a bool");
    for w in response
        .get("warnings")
        .map_or(&vec![], |w| w.as_array().expect("warnings list"))
    {
        let w = w.as_str().expect("a warning is a string");
        assert!(w.chars().count() <= 256, "warning too long: {w}");
    }
    if !allowed {
        tally.denied += 1;
        assert_eq!(mode, Mode::Enforce, "only enforce mode denies");
        assert_eq!(response["status"]["code"], 403);
        assert!(
            response["status"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert!(!response.contains_key("patch"), "a denial carries no patch");
        return;
    }
    if !response.contains_key("patch") {
        assert!(!response.contains_key("patchType"));
        return;
    }
    tally.patched += 1;
    assert!(
        route == Route::Mutate && mode != Mode::Audit,
        "patch only when mutating"
    );
    assert_eq!(response["patchType"], "JSONPatch");
    let object = &sent["object"];
    let patched = apply_review_patch(object, &answer["response"]);
    assert!(
        only_added(object, &patched),
        "the patch changed or removed something"
    );
    // A second review of the patched object has nothing left to add.
    let again = decide_input(
        &patched,
        sent.get("oldObject").filter(|o| o.is_object()),
        Operation::parse(&reviewed.meta.operation),
        None,
        policy,
    );
    assert!(
        again.patch.is_empty(),
        "not a fixed point: {:?}",
        again.patch
    );
}

/// The object as the protocol layer read it, as a `Value`; a member kept as text stays text.
fn as_value(json: &Json<'_>) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => Value::Number(n.clone()),
        Json::String(s) | Json::Unread(s) => Value::String(s.to_string()),
        Json::Array(items) => Value::Array(items.iter().map(as_value).collect()),
        Json::Object(members) => Value::Object(
            members
                .iter()
                .map(|(k, v)| (k.to_string(), as_value(v)))
                .collect(),
        ),
    }
}

fn check_error(e: &ReviewError, tally: &mut Tally) {
    let code = e.code();
    assert!(ERROR_CODES.contains(&code), "unknown error code {code}");
    assert!(!e.to_string().is_empty());
    if let ReviewError::ObjectNotAnObject { uid } = e {
        assert!(!uid.is_empty(), "the uid is kept for the answer");
    }
    *tally.errors.entry(code).or_default() += 1;
}

/// Build case `case` from the seeds.
fn build_case(seeds: &[Value], seed: u64, case: u64) -> (Vec<u8>, Mode, Route) {
    let mut rng = Rng::for_case(seed, case);
    let mut review = rng.pick(seeds).clone();
    for _ in 0..rng.below(6) + 1 {
        mutate_tree(&mut rng, &mut review);
    }
    let mut body = serde_json::to_vec(&review).expect("a Value serializes");
    if rng.chance(15) {
        mutate_bytes(&mut rng, &mut body);
    }
    let mode = *rng.pick(&Mode::ALL);
    let route = *rng.pick(&[Route::Mutate, Route::Validate]);
    (body, mode, route)
}

fn run_cases(cases: u64) -> Tally {
    let seed = std::env::var("HOSTILE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let only: Option<u64> = std::env::var("HOSTILE_CASE")
        .ok()
        .and_then(|s| s.parse().ok());
    let seeds = seeds();
    let policy = Policy::default();
    let range: Vec<u64> = match only {
        Some(i) => vec![i],
        None => (0..cases).collect(),
    };
    // Two threads, each with its own share of the cases: the outcome does not depend on timing.
    let threads = 2;
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (seeds, policy, range) = (&seeds, &policy, &range);
                s.spawn(move || {
                    let mut tally = Tally::default();
                    for &case in range.iter().skip(t).step_by(threads) {
                        let (body, mode, route) = build_case(seeds, seed, case);
                        let result = catch_unwind(AssertUnwindSafe(|| {
                            check(&body, policy, mode, route, &mut tally)
                        }));
                        if result.is_err() {
                            let shown: String =
                                String::from_utf8_lossy(&body).chars().take(3000).collect();
                            panic!(
                                "case {case} (HOSTILE_SEED={seed} HOSTILE_CASE={case}) \
                                 {mode:?} {route:?} failed; body starts: {shown}"
                            );
                        }
                    }
                    tally
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker"))
            .collect()
    });
    let mut total = Tally::default();
    for t in tallies {
        total.answered += t.answered;
        total.patched += t.patched;
        total.denied += t.denied;
        total.lenient += t.lenient;
        for (k, v) in t.errors {
            *total.errors.entry(k).or_default() += v;
        }
    }
    eprintln!(
        "{} cases: {} answered ({} patched, {} denied, {} lenient), errors {:?}",
        range.len(),
        total.answered,
        total.patched,
        total.denied,
        total.lenient,
        total.errors
    );
    total
}

#[test]
fn twenty_thousand_hostile_reviews_get_an_answer_or_a_typed_error() {
    let tally = run_cases(CI_CASES);
    if std::env::var("HOSTILE_CASE").is_ok() {
        return;
    }
    // The mix must exercise both sides: answers with patches and denials, and each kind of
    // error the generator aims at.
    assert!(tally.answered > CI_CASES / 2, "too few answered cases");
    assert!(tally.patched > CI_CASES / 20, "too few patched cases");
    assert!(tally.denied > 0, "no denial exercised");
    for code in [
        "malformed_json",
        "wrong_api_version",
        "missing_uid",
        "object_not_an_object",
    ] {
        assert!(
            tally.errors.get(code).is_some_and(|&n| n > 0),
            "{code} never exercised"
        );
    }
}

/// The long run, for use outside CI: `HOSTILE_CASES=1000000 cargo test --release --test
/// hostile_reviews -- --ignored`.
#[test]
#[ignore = "long run outside CI; set HOSTILE_CASES"]
fn hostile_reviews_long_run() {
    let cases = std::env::var("HOSTILE_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    run_cases(cases);
}
