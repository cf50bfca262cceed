//! The AdmissionReview `admission.k8s.io/v1` protocol: body bytes in, engine decision, response
//! bytes out. This is the hot path of the server, so the envelope is read into borrowed structs
//! (strings point into the body) and the object, once, into the engine's borrowed tree.

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

mod outcome;

pub use outcome::{
    EXEMPTED_ANNOTATION, FINDINGS_ANNOTATION, MAX_WARNING_CHARS, Mode, Outcome,
    PATCH_OPS_ANNOTATION, Route, short_warning,
};

use crate::decide::{self, Decision, Input, Json, Operation, Policy, Pruned};

pub const API_VERSION: &str = "admission.k8s.io/v1";
pub const KIND: &str = "AdmissionReview";

/// Why a body is not a usable AdmissionReview. The display text is meant for the caller (it may
/// quote the body); logs and metrics use [`ReviewError::code`] only, which never carries content.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("malformed AdmissionReview JSON: {0}")]
    MalformedJson(String),
    #[error("the AdmissionReview has no request")]
    NoRequest,
    #[error("unsupported apiVersion {0:?}: expected {API_VERSION:?}")]
    WrongApiVersion(String),
    #[error("unsupported kind {0:?}: expected {KIND:?}")]
    WrongKind(String),
    #[error("the AdmissionReview request has no uid")]
    MissingUid,
    #[error("request.object is missing or not a JSON object")]
    ObjectNotAnObject { uid: String },
}

impl ReviewError {
    /// A stable, content-free name for the error (metric label, log field, JSON `error`).
    pub fn code(&self) -> &'static str {
        match self {
            ReviewError::MalformedJson(_) => "malformed_json",
            ReviewError::NoRequest => "no_request",
            ReviewError::WrongApiVersion(_) => "wrong_api_version",
            ReviewError::WrongKind(_) => "wrong_kind",
            ReviewError::MissingUid => "missing_uid",
            ReviewError::ObjectNotAnObject { .. } => "object_not_an_object",
        }
    }

    /// The request uid, when the body got far enough to have one.
    pub fn uid(&self) -> Option<&str> {
        match self {
            ReviewError::ObjectNotAnObject { uid } => Some(uid),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct ReviewIn<'a> {
    #[serde(rename = "apiVersion", borrow, default)]
    api_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "object_or_null")]
    request: Option<RequestIn<'a>>,
}

/// A request read only from a JSON object (or null): serde's derived structs would also take a
/// positional JSON array, which is not an AdmissionReview request.
fn object_or_null<'de, D>(d: D) -> Result<Option<RequestIn<'de>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct ObjectOrNull;
    impl<'de> serde::de::Visitor<'de> for ObjectOrNull {
        type Value = Option<RequestIn<'de>>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            RequestIn::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Some)
        }

        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(ObjectOrNull)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestIn<'a> {
    #[serde(borrow, default)]
    uid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kind: Option<KindIn<'a>>,
    #[serde(borrow, default)]
    namespace: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    operation: Option<Cow<'a, str>>,
    #[serde(default)]
    dry_run: Option<bool>,
    #[serde(borrow, default)]
    object: Option<Pruned<'a>>,
    #[serde(borrow, default)]
    old_object: Option<Pruned<'a>>,
}

#[derive(Deserialize)]
struct KindIn<'a> {
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
}

/// Who and what a review is about: everything a log line may show (never the object itself).
#[derive(Debug)]
pub struct ReviewMeta<'a> {
    pub uid: Cow<'a, str>,
    pub kind: Cow<'a, str>,
    pub namespace: Cow<'a, str>,
    pub name: Cow<'a, str>,
    pub operation: Cow<'a, str>,
    pub dry_run: bool,
}

/// A parsed request: its metadata and the objects the engine reads.
pub struct AdmissionRequest<'a> {
    pub meta: ReviewMeta<'a>,
    pub operation: Operation,
    /// The object as `decide` reads it ([`decide::unread`]).
    pub object: Json<'a>,
    pub old_object: Option<Json<'a>>,
}

impl AdmissionRequest<'_> {
    pub fn input(&self) -> Input<'_> {
        Input {
            object: &self.object,
            old_object: self.old_object.as_ref().filter(|v| v.is_object()),
            operation: self.operation,
            known_env: None,
        }
    }
}

/// Read an AdmissionReview body. DELETE and CONNECT may carry no object; CREATE and UPDATE must
/// carry a JSON object.
pub fn parse(body: &[u8]) -> Result<AdmissionRequest<'_>, ReviewError> {
    // One UTF-8 check of the whole body is cheaper than serde_json's check of every string.
    let text = std::str::from_utf8(body).map_err(|e| ReviewError::MalformedJson(e.to_string()))?;
    // A JSON object, not the positional array form serde's derived structs would also take.
    if !text.trim_start().starts_with('{') {
        return Err(ReviewError::MalformedJson("expected a JSON object".into()));
    }
    let review: ReviewIn<'_> =
        serde_json::from_str(text).map_err(|e| ReviewError::MalformedJson(e.to_string()))?;
    let api_version = review.api_version.unwrap_or_default();
    if api_version != API_VERSION {
        return Err(ReviewError::WrongApiVersion(api_version.into_owned()));
    }
    let kind = review.kind.unwrap_or_default();
    if kind != KIND {
        return Err(ReviewError::WrongKind(kind.into_owned()));
    }
    let request = review.request.ok_or(ReviewError::NoRequest)?;
    let uid = request
        .uid
        .filter(|u| !u.is_empty())
        .ok_or(ReviewError::MissingUid)?;
    let operation_text = request.operation.unwrap_or_default();
    let operation = Operation::parse(&operation_text);
    let object = match (request.object.map(|o| o.0), operation) {
        (Some(object @ Json::Object(_)), _) => object,
        (None | Some(Json::Null), Operation::Other) => Json::Null,
        _ => {
            return Err(ReviewError::ObjectNotAnObject {
                uid: uid.into_owned(),
            });
        }
    };
    Ok(AdmissionRequest {
        meta: ReviewMeta {
            uid,
            kind: request.kind.and_then(|k| k.kind).unwrap_or_default(),
            namespace: request.namespace.unwrap_or_default(),
            name: request.name.unwrap_or_default(),
            operation: operation_text,
            dry_run: request.dry_run.unwrap_or(false),
        },
        operation,
        object,
        old_object: request.old_object.map(|o| o.0),
    })
}

/// The AdmissionReview response, in the member order kube-rs and the Kubernetes types use.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'static str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    /// The JSON Patch, base64-encoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<StatusOut<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    warnings: &'a [String],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    audit_annotations: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct StatusOut<'a> {
    status: &'static str,
    message: &'a str,
    reason: &'static str,
    code: u16,
}

/// Serialize the AdmissionReview response for `uid`.
pub fn render(uid: &str, outcome: &Outcome) -> Vec<u8> {
    let patch = outcome
        .patch
        .as_deref()
        .filter(|ops| !ops.is_empty())
        .map(|ops| {
            // A list of PatchOps (strings and JSON values) always serializes.
            base64::engine::general_purpose::STANDARD
                .encode(serde_json::to_vec(ops).unwrap_or_default())
        });
    let review = ReviewOut {
        api_version: API_VERSION,
        kind: KIND,
        response: ResponseOut {
            uid,
            allowed: outcome.allowed,
            patch_type: patch.as_ref().map(|_| "JSONPatch"),
            patch,
            status: outcome.message.as_deref().map(|message| StatusOut {
                status: "Failure",
                message,
                reason: "Forbidden",
                code: 403,
            }),
            warnings: &outcome.warnings,
            audit_annotations: &outcome.audit_annotations,
        },
    };
    // Strings, booleans, lists and maps of strings always serialize.
    serde_json::to_vec(&review).unwrap_or_default()
}

/// One answered review: what it was about, what the engine found, what was answered.
pub struct Reviewed<'a> {
    pub meta: ReviewMeta<'a>,
    pub operation: Operation,
    pub decision: Decision,
    pub outcome: Outcome,
    /// The serialized AdmissionReview response.
    pub body: Vec<u8>,
}

/// The whole review: parse, decide, apply the mode and route, serialize.
pub fn review<'a>(
    body: &'a [u8],
    policy: &Policy,
    mode: Mode,
    route: Route,
) -> Result<Reviewed<'a>, ReviewError> {
    let request = parse(body)?;
    let decision = decide::decide(&request.input(), policy);
    let outcome = Outcome::of(&decision, mode, route);
    let body = render(&request.meta.uid, &outcome);
    Ok(Reviewed {
        meta: request.meta,
        operation: request.operation,
        decision,
        outcome,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use std::collections::BTreeMap;

    fn body(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap_or_default()
    }

    fn review_of(request: Value) -> Vec<u8> {
        body(json!({"apiVersion": API_VERSION, "kind": KIND, "request": request}))
    }

    #[test]
    fn parse_reads_metadata_and_object() {
        let b = review_of(json!({
            "uid": "u-1", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "namespace": "ns", "name": "web", "operation": "UPDATE", "dryRun": true,
            "object": {"kind": "Deployment"}, "oldObject": {"kind": "Deployment"}
        }));
        let r = parse(&b).map_err(|e| e.to_string());
        let r = r.as_ref().map(|r| {
            (
                r.meta.uid.as_ref(),
                r.meta.kind.as_ref(),
                r.meta.namespace.as_ref(),
                r.meta.name.as_ref(),
                r.meta.operation.as_ref(),
                r.meta.dry_run,
                r.operation,
                r.old_object.is_some(),
            )
        });
        assert_eq!(
            r,
            Ok((
                "u-1",
                "Deployment",
                "ns",
                "web",
                "UPDATE",
                true,
                Operation::Update,
                true
            ))
        );
    }

    #[test]
    fn status_and_managed_fields_are_not_read() {
        let object = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "a", "managedFields": [{"manager": "kubectl"}], "labels": {"x": "y"}},
            "spec": {"status": 1, "template": {"metadata": {"managedFields": 2}}},
            "status": {"replicas": 1}
        });
        let b = review_of(
            json!({"uid": "u", "operation": "UPDATE", "object": object, "oldObject": object}),
        );
        let want = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "a", "labels": {"x": "y"}},
            "spec": {"status": 1, "template": {"metadata": {"managedFields": 2}}}
        });
        let r = parse(&b).map(|r| (r.object, r.old_object));
        let want = Json::from(&want);
        assert_eq!(r.ok(), Some((want.clone(), Some(want))));
    }

    #[test]
    fn delete_without_object_is_accepted() {
        let b = review_of(json!({"uid": "u", "operation": "DELETE", "object": null}));
        assert!(matches!(parse(&b), Ok(r) if r.object.is_null()));
    }

    #[test]
    fn each_bad_body_has_its_own_error() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"{\"apiVersion\": ".to_vec(), "malformed_json"),
            (b"\xff\xfe".to_vec(), "malformed_json"),
            (
                // Invalid UTF-8 in a member the layer does not otherwise read.
                b"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"x\":\"\xff\"}"
                    .to_vec(),
                "malformed_json",
            ),
            (
                body(json!([API_VERSION, KIND, {"uid": "u", "operation": "DELETE"}])),
                "malformed_json",
            ),
            (
                body(json!({"apiVersion": API_VERSION, "kind": KIND, "request": ["u"]})),
                "malformed_json",
            ),
            (
                body(json!({"apiVersion": API_VERSION, "kind": KIND, "request": null})),
                "no_request",
            ),
            (
                body(json!({"apiVersion": API_VERSION, "kind": KIND})),
                "no_request",
            ),
            (
                body(
                    json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": KIND, "request": {}}),
                ),
                "wrong_api_version",
            ),
            (
                body(json!({"apiVersion": API_VERSION, "kind": "Pod", "request": {}})),
                "wrong_kind",
            ),
            (
                review_of(json!({"operation": "CREATE", "object": {}})),
                "missing_uid",
            ),
            (
                review_of(json!({"uid": "", "operation": "CREATE", "object": {}})),
                "missing_uid",
            ),
            (
                review_of(json!({"uid": "u", "operation": "CREATE", "object": "x"})),
                "object_not_an_object",
            ),
            (
                review_of(json!({"uid": "u", "operation": "CREATE"})),
                "object_not_an_object",
            ),
        ];
        for (b, code) in cases {
            assert_eq!(parse(&b).err().map(|e| e.code()), Some(code), "{b:?}");
        }
    }

    #[test]
    fn object_error_keeps_the_uid() {
        let b = review_of(json!({"uid": "u-7", "operation": "UPDATE", "object": [1]}));
        assert_eq!(parse(&b).err().as_ref().and_then(|e| e.uid()), Some("u-7"));
    }

    /// A denial that also carries a patch, a warning and an annotation: every member.
    fn denial_with_everything(message: &str) -> Outcome {
        Outcome {
            allowed: false,
            message: Some(message.into()),
            patch: Some(vec![decide::PatchOp::Add {
                path: "/a".into(),
                value: json!(1),
            }]),
            warnings: vec!["w".into()],
            audit_annotations: BTreeMap::from([("k".to_string(), "v".to_string())]),
        }
    }

    #[test]
    fn render_encodes_patch_and_denial() {
        let outcome = denial_with_everything("no");
        let out: Value = serde_json::from_slice(&render("u\"1", &outcome)).unwrap_or_default();
        let patch = out["response"]["patch"].as_str().unwrap_or_default();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(patch)
            .unwrap_or_default();
        assert_eq!(
            serde_json::from_slice::<Value>(&decoded).ok(),
            Some(json!([{"op": "add", "path": "/a", "value": 1}]))
        );
        assert_eq!(
            out,
            json!({"apiVersion": API_VERSION, "kind": KIND, "response": {
                "uid": "u\"1", "allowed": false, "patchType": "JSONPatch", "patch": patch,
                "status": {"status": "Failure", "message": "no", "reason": "Forbidden", "code": 403},
                "warnings": ["w"], "auditAnnotations": {"k": "v"}
            }})
        );
    }

    #[test]
    fn render_writes_the_members_in_order() {
        let outcome = denial_with_everything("no \"x\"");
        let patch = base64::engine::general_purpose::STANDARD
            .encode(r#"[{"op":"add","path":"/a","value":1}]"#);
        let want = format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{{"uid":"u","allowed":false,"patchType":"JSONPatch","patch":"{patch}","status":{{"status":"Failure","message":"no \"x\"","reason":"Forbidden","code":403}},"warnings":["w"],"auditAnnotations":{{"k":"v"}}}}}}"#
        );
        assert_eq!(String::from_utf8(render("u", &outcome)).ok(), Some(want));
    }

    #[test]
    fn render_without_patch_has_no_patch_type() {
        let out: Value = serde_json::from_slice(&render(
            "u",
            &Outcome {
                allowed: true,
                patch: Some(Vec::new()),
                ..Outcome::default()
            },
        ))
        .unwrap_or_default();
        assert_eq!(
            out,
            json!({"apiVersion": API_VERSION, "kind": KIND, "response": {"uid": "u", "allowed": true}})
        );
    }

    #[test]
    fn opaque_members_are_kept_as_text_so_updates_still_see_them_change() {
        let deployment = |cpu: &str| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "v"},
                   "spec": {"template": {"spec": {"containers": [{"name": "v", "image": "vllm/vllm-openai",
                       "resources": {"limits": {"cpu": cpu}}, "volumeMounts": [{"name": "m", "mountPath": "/m"}]}]}}}})
        };
        let update = |old: Value, new: Value| {
            review_of(json!({"uid": "u", "operation": "UPDATE", "object": new, "oldObject": old}))
        };
        let parsed = update(deployment("1"), deployment("1"));
        let request = parse(&parsed).map_err(|e| e.to_string());
        let resources = request.as_ref().map(|r| {
            r.object
                .get("spec")
                .and_then(|s| s.get("template"))
                .and_then(|t| t.get("spec"))
                .and_then(|s| s.get("containers"))
                .and_then(|c| c.as_array()?.first())
                .and_then(|c| c.get("resources"))
                .cloned()
        });
        assert_eq!(
            resources,
            Ok(Some(Json::Unread(r#"{"limits":{"cpu":"1"}}"#.into()))),
            "kept as raw text, not as a tree"
        );
        let policy = Policy::default();
        let patched = |body: &[u8]| {
            review(body, &policy, Mode::Enforce, Route::Mutate)
                .map(|r| r.outcome.patch.is_some())
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            patched(&update(deployment("1"), deployment("1"))),
            Ok(false)
        );
        assert_eq!(
            patched(&update(deployment("1"), deployment("2"))),
            Ok(true),
            "a change in an opaque member is a template change"
        );
    }
}
