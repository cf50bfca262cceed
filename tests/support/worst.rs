//! Worst-case AdmissionReviews, generated from the fixtures: the largest review an API server
//! sends (an UPDATE of an object near etcd's limit, so 3 MiB with its old copy), a
//! RoleBasedGroup with hundreds of roles, a 1 MiB `sh -c` script, and `$(VAR)` chains deep and
//! doubling. `tests/worst_case.rs` asserts their answers; `benches/review.rs` times them
//! (it includes this file by path). serde_json only, so that both can use it.

use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn body(review: &Value) -> Vec<u8> {
    serde_json::to_vec(review).unwrap_or_else(|e| panic!("{e}"))
}

/// The vLLM Deployment review with its first container replaced by `edit`.
fn vllm_with(edit: impl FnOnce(&mut Value)) -> Value {
    let mut review = fixture("review-vllm-deployment.json");
    edit(&mut review["request"]["object"]["spec"]["template"]["spec"]["containers"][0]);
    review
}

pub const MIB: usize = 1024 * 1024;

/// An UPDATE of the vLLM Deployment grown to 1.5 MiB (etcd's request limit) with env entries,
/// old and new object differing in the image tag: at least 3 MiB of review.
pub fn three_mib_update() -> Vec<u8> {
    let mut review = vllm_with(|container| {
        let env = container["env"]
            .as_array_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        let mut grown = env;
        let mut size = 0;
        let mut i = 0;
        while size < 3 * MIB / 2 {
            let entry = json!({"name": format!("SETTING_{i:06}"), "value": "x".repeat(64)});
            size += entry.to_string().len() + 1;
            grown.push(entry);
            i += 1;
        }
        container["env"] = Value::Array(grown);
    });
    let request = &mut review["request"];
    let object = request["object"].clone();
    let mut old = object.clone();
    old["spec"]["template"]["spec"]["containers"][0]["image"] = json!("vllm/vllm-openai:v0.8.0");
    request["operation"] = json!("UPDATE");
    request["oldObject"] = old;
    request["object"] = object;
    body(&review)
}

/// The three-role RoleBasedGroup with its roles repeated to `roles` (renamed `role-N`).
pub fn rbg_with_roles(roles: usize) -> Vec<u8> {
    let mut review = fixture("review-rbg-three-roles.json");
    let spec = &mut review["request"]["object"]["spec"];
    let base = spec["roles"].as_array().cloned().unwrap_or_default();
    let many: Vec<Value> = (0..roles)
        .map(|i| {
            let mut role = base[i % base.len()].clone();
            role["name"] = json!(format!("role-{i}"));
            role
        })
        .collect();
    spec["roles"] = Value::Array(many);
    body(&review)
}

/// A `sh -c` script of 1 MiB: lines of quoting, substitutions and arithmetic, then `vllm serve`.
pub fn megabyte_script() -> Vec<u8> {
    let mut script = String::with_capacity(MIB + 256);
    let mut i = 0;
    while script.len() < MIB {
        script.push_str(&format!(
            "echo \"step {i}: $(date +%s) ${{HOME}} '$((i + 1))'\" 'lit $x' \\\n  && export V{i}=\"$V{i}:{i}\" || true; \
             if [ -f /x/{i} ]; then cat /x/{i} | tr a b; fi\n"
        ));
        i += 1;
    }
    script.push_str("exec vllm serve meta-llama/Llama-3.1-8B-Instruct --port 8000\n");
    body(&vllm_with(|container| {
        container["command"] = json!(["sh", "-c", script]);
        container["args"] = json!([]);
    }))
}

/// `$(VAR)` chains: `links` variables each naming the one before (`P1=$(P0)`, ...), the port
/// taken from the last; and `links` variables each doubling the one before (`D1=$(D0)$(D0)`),
/// the model taken from the last (2^links bytes if expanded without a bound).
pub fn var_chains(links: usize) -> Vec<u8> {
    body(&vllm_with(|container| {
        let mut env = vec![
            json!({"name": "P0", "value": "8000"}),
            json!({"name": "D0", "value": "ab"}),
        ];
        for i in 1..links {
            env.push(json!({"name": format!("P{i}"), "value": format!("$(P{})", i - 1)}));
            env.push(json!({"name": format!("D{i}"), "value": format!("$(D{0})$(D{0})", i - 1)}));
        }
        let last = links - 1;
        container["env"] = Value::Array(env);
        container["command"] = json!(["vllm", "serve"]);
        container["args"] = json!([format!("$(D{last})"), "--port", format!("$(P{last})")]);
    }))
}
