//! The argv/shell reader, through the engine's entry point: any bytes as a `sh -c` script, as
//! `command`/`args` words, and as env values (`$(VAR)` expansion) must be read without a panic
//! and with bounded output.
#![no_main]

use inference_webhook::decide::{Input, Json, Operation, Policy, decide};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fn review(container: Value) {
    let object = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "f"},
        "spec": {"template": {"spec": {"containers": [container]}}}});
    let input = Input {
        object: &Json::from(&object),
        old_object: None,
        operation: Operation::Create,
        known_env: None,
    };
    let _ = decide(&input, &Policy::default());
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // As a script.
    review(json!({"name": "c", "image": "x", "command": ["sh", "-c", text]}));
    // As argv words (split on NUL), with env values taken from the same input.
    let words: Vec<String> = text.split('\0').map(str::to_string).collect();
    let env: Vec<_> = words
        .iter()
        .enumerate()
        .map(|(i, w)| json!({"name": format!("V{}", i % 4), "value": w}))
        .collect();
    let (command, args) = words.split_at(words.len().min(3));
    review(json!({"name": "c", "image": "vllm/vllm-openai", "command": command, "args": args, "env": env}));
});
