//! The review path: any bytes as an AdmissionReview body, through parse, decide, every mode and
//! route, and render. An answer must be JSON that echoes the uid; any patch must apply.
#![no_main]

use inference_webhook::admission;
use inference_webhook::admission::{Mode, Route};
use inference_webhook::decide::Policy;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let policy = Policy::default();
    for mode in Mode::ALL {
        for route in [Route::Mutate, Route::Validate] {
            let Ok(reviewed) = admission::review(data, &policy, mode, route) else {
                continue;
            };
            let answer: Value = serde_json::from_slice(&reviewed.body).expect("answer is JSON");
            assert_eq!(answer["response"]["uid"], reviewed.meta.uid.as_ref());
            // The object as the API server holds it (a body only the lenient reader takes,
            // with a lone surrogate in a member it skips, is not checked here).
            let sent = serde_json::from_slice::<Value>(data).ok();
            if let (Some(ops), Some(mut sent)) = (reviewed.outcome.patch.as_ref(), sent) {
                let patch: Value = serde_json::to_value(ops).expect("patch serializes");
                apply(&mut sent["request"]["object"], &patch);
            }
        }
    }
});

/// Apply `add` operations (all the engine emits) the way RFC 6902 does; panic if one fails.
fn apply(doc: &mut Value, patch: &Value) {
    for op in patch.as_array().expect("a list of operations") {
        let path = op["path"].as_str().expect("a path");
        let (parent, last) = path.rsplit_once('/').expect("a pointer");
        let last = last.replace("~1", "/").replace("~0", "~");
        let target = doc.pointer_mut(parent).expect("the parent exists");
        match target {
            Value::Object(map) => {
                assert!(!map.contains_key(&last), "add over an existing member {path}");
                map.insert(last, op["value"].clone());
            }
            Value::Array(items) if last == "-" => items.push(op["value"].clone()),
            Value::Array(items) => {
                let i: usize = last.parse().expect("an index");
                assert!(i <= items.len(), "index out of range {path}");
                items.insert(i, op["value"].clone());
            }
            _ => panic!("the parent of {path} is not a container"),
        }
    }
}
