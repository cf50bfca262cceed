//! The object as `decide` reads it: a JSON tree whose strings borrow from the text it was read
//! from. A review is read once and dropped once; a borrowed tree with objects as member lists
//! costs a fraction of `serde_json::Value` (no key or string copies, no tree maps to build or
//! free). Front doors that already hold a `serde_json::Value` (the audit command, the reporter)
//! borrow it with [`Json::from`].
//!
//! Objects keep their members in order; a repeated key reads as its last occurrence, as with
//! `serde_json::Value`, and equality ignores member order.

use std::borrow::Cow;

use serde_json::{Number, Value};

/// One JSON value.
#[derive(Clone, Debug)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Object<'a>),
    /// The JSON text of a member the engine never reads ([`super::unread`]): compared, so that
    /// an UPDATE that changes it still changes its template, but never looked into.
    Unread(Cow<'a, str>),
}

/// The members of a JSON object, in order.
#[derive(Clone, Debug, Default)]
pub struct Object<'a>(Vec<(Cow<'a, str>, Json<'a>)>);

/// Objects with more members than this are checked for repeated keys through a set: a scan per
/// member is quadratic in objects with thousands of keys.
const INDEX_FROM: usize = 16;

impl<'a> Object<'a> {
    pub const fn new() -> Self {
        Object(Vec::new())
    }

    pub(crate) fn with_capacity(members: usize) -> Self {
        Object(Vec::with_capacity(members))
    }

    /// The value of `key` (its last occurrence).
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Members in order, repeated keys included.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Json<'a>)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }

    pub fn push(&mut self, key: Cow<'a, str>, value: Json<'a>) {
        self.0.push((key, value));
    }

    /// Members with repeated keys reduced to their last occurrence, sorted by key.
    fn sorted(&self) -> Vec<(&Cow<'a, str>, &Json<'a>)> {
        let mut members: Vec<(usize, &Cow<'a, str>, &Json<'a>)> = self
            .0
            .iter()
            .enumerate()
            .map(|(i, (k, v))| (i, k, v))
            .collect();
        // By key, the last occurrence first, so that `dedup_by` keeps it.
        members.sort_unstable_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)));
        members.dedup_by(|later, first| later.1 == first.1);
        members.into_iter().map(|(_, k, v)| (k, v)).collect()
    }

    /// Strategic-merge the members of `patch` over these: a `null` deletes, a member on both
    /// sides becomes `combine(key, base, patch)`, others are kept or added. Members come out
    /// sorted by key.
    pub fn merged(
        &self,
        patch: &Object<'a>,
        mut combine: impl FnMut(&str, &Json<'a>, &Json<'a>) -> Json<'a>,
    ) -> Object<'a> {
        use std::cmp::Ordering;
        let (base, patch) = (self.sorted(), patch.sorted());
        let mut out = Vec::with_capacity(base.len() + patch.len());
        let (mut b, mut p) = (base.into_iter().peekable(), patch.into_iter().peekable());
        loop {
            let order = match (b.peek(), p.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some((bk, _)), Some((pk, _))) => bk.cmp(pk),
            };
            let (base, patch) = match order {
                Ordering::Less => (b.next(), None),
                Ordering::Greater => (None, p.next()),
                Ordering::Equal => (b.next(), p.next()),
            };
            match (base, patch) {
                (Some((k, v)), None) => out.push((k.clone(), v.clone())),
                (_, Some((_, Json::Null))) | (None, None) => {}
                (None, Some((k, v))) => out.push((k.clone(), v.clone())),
                (Some((k, bv)), Some((_, pv))) => out.push((k.clone(), combine(k, bv, pv))),
            }
        }
        Object(out)
    }
}

impl PartialEq for Object<'_> {
    fn eq(&self, other: &Self) -> bool {
        let same_order = self.0.len() == other.0.len()
            && self.0.iter().zip(&other.0).all(|((a, _), (b, _))| a == b)
            && !has_repeats(&self.0);
        if same_order {
            return self.0.iter().zip(&other.0).all(|((_, a), (_, b))| a == b);
        }
        self.sorted() == other.sorted()
    }
}

/// Whether a member list repeats a key (rare; checked only when orders already agree).
fn has_repeats(members: &[(Cow<'_, str>, Json<'_>)]) -> bool {
    if members.len() <= INDEX_FROM {
        return members
            .iter()
            .enumerate()
            .any(|(i, (k, _))| members[..i].iter().any(|(o, _)| o == k));
    }
    let mut seen = std::collections::HashSet::with_capacity(members.len());
    members.iter().any(|(k, _)| !seen.insert(k.as_ref()))
}

impl PartialEq for Json<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Json::Null, Json::Null) => true,
            (Json::Bool(a), Json::Bool(b)) => a == b,
            (Json::Number(a), Json::Number(b)) => a == b,
            (Json::String(a), Json::String(b)) | (Json::Unread(a), Json::Unread(b)) => a == b,
            (Json::Array(a), Json::Array(b)) => a == b,
            (Json::Object(a), Json::Object(b)) => a == b,
            _ => false,
        }
    }
}

impl<'a> Json<'a> {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.as_object()?.get(key)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Vec<Json<'a>>> {
        match self {
            Json::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Object<'a>> {
        match self {
            Json::Object(o) => Some(o),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Json::Object(_))
    }
}

/// Borrow a `serde_json::Value` as the engine's tree.
impl<'a> From<&'a Value> for Json<'a> {
    fn from(value: &'a Value) -> Self {
        match value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => Json::Number(n.clone()),
            Value::String(s) => Json::String(Cow::Borrowed(s)),
            Value::Array(items) => Json::Array(items.iter().map(Json::from).collect()),
            Value::Object(map) => Json::Object(Object(
                map.iter()
                    .map(|(k, v)| (Cow::Borrowed(k.as_str()), Json::from(v)))
                    .collect(),
            )),
        }
    }
}

/// The tree as a `serde_json::Value`; a member kept as text ([`Json::Unread`]) is parsed back.
impl From<&Json<'_>> for Value {
    fn from(json: &Json<'_>) -> Self {
        match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::Number(n.clone()),
            Json::String(s) => Value::String(s.to_string()),
            Json::Array(items) => Value::Array(items.iter().map(Value::from).collect()),
            Json::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.to_string(), Value::from(v)))
                    .collect(),
            ),
            Json::Unread(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        }
    }
}
