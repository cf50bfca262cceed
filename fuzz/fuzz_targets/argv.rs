//! The argv/shell reader: any bytes as a `sh -c` script, as argv words, and as env values
//! (`$(VAR)` expansion) must be read without a panic and with bounded output.
#![no_main]

use inference_webhook::engine::argv::{self, Vars};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // As a script.
    let mut vars = Vars::default();
    let _ = argv::split_script(&text, &mut vars);
    // As argv words (split on NUL), with env values taken from the same input.
    let words: Vec<String> = text.split('\0').map(str::to_string).collect();
    let env: Vec<_> = words
        .iter()
        .enumerate()
        .map(|(i, w)| json!({"name": format!("V{}", i % 4), "value": w}))
        .collect();
    let mut vars = Vars::from_env(Some(&json!(env)));
    let (command, args) = words.split_at(words.len().min(3));
    for cmd in argv::commands(command, args, &mut vars) {
        let _ = cmd.describe();
        let _ = cmd.flag("--port");
    }
    let mut vars = Vars::default();
    let _ = argv::commands(&["sh".into(), "-c".into(), text.into_owned()], &[], &mut vars);
});
