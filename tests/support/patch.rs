//! JSON Patch (RFC 6902), applied with the `json-patch` crate as the API server would: the one
//! applier of the tests, whether the patch comes from a decision or from a review's answer.

use base64::Engine as _;
use serde_json::Value;

/// `object` with the RFC 6902 operations `ops` (a JSON array) applied.
pub fn apply_patch(object: &Value, ops: &Value) -> Value {
    let patch: json_patch::Patch = serde_json::from_value(ops.clone()).expect("an RFC 6902 patch");
    let mut out = object.clone();
    json_patch::patch(&mut out, &patch).expect("the patch applies");
    out
}

/// The JSON Patch an AdmissionReview `response` carries (base64 in `patch`), decoded; `None`
/// when it carries none.
pub fn review_patch(response: &Value) -> Option<Value> {
    let encoded = response.get("patch")?.as_str().expect("patch is a string");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("patch is base64");
    Some(serde_json::from_slice(&bytes).expect("patch is JSON"))
}

/// `object` with the patch of an AdmissionReview `response` applied (unchanged without one).
pub fn apply_review_patch(object: &Value, response: &Value) -> Value {
    match review_patch(response) {
        Some(ops) => apply_patch(object, &ops),
        None => object.clone(),
    }
}
