//! The engine's reading contract: members it never reads, so a front door may skip building
//! them. [`Pruned`] reads an object that way: `status` and `metadata.managedFields` are dropped
//! (in a real cluster they are often most of an object's bytes, twice over on UPDATE), and the
//! members of [`UNREAD_SPEC_MEMBERS`] and [`UNREAD_CONTAINER_MEMBERS`] are kept only as their
//! JSON text, so that an UPDATE that changes them still changes the template. They are pruned
//! only where they live: in a `spec` (a pod template's, a Pod's or a workload's) and in the
//! containers of one, never in `metadata` (a label key `resources` stays readable) or anywhere
//! else. `tests/pruning.rs` checks that [`decide`] answers the same on pruned and full objects,
//! for every real manifest the tests have.
//!
//! A rule that starts reading one of these members must take it off its list.
//!
//! [`decide`]: super::decide

use std::borrow::Cow;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::json::{Json, Object};

/// Members of a `spec` that no rule, detection or patch reads or points into: the pod spec's
/// (`volumes` are read only to find scripts in ConfigMaps that a front door knows; the audit
/// reads them from its input, the webhook knows none, so on what it prunes they change
/// nothing), and a StatefulSet's `volumeClaimTemplates`. `initContainers` is read: native
/// sidecars (`restartPolicy: Always`) serve for the pod's life.
pub const UNREAD_SPEC_MEMBERS: &[&str] = &[
    "affinity",
    "dnsConfig",
    "imagePullSecrets",
    "nodeSelector",
    "securityContext",
    "tolerations",
    "topologySpreadConstraints",
    "volumeClaimTemplates",
    "volumes",
];

/// Members of a container that no rule, detection or patch reads. `envFrom` is read: an
/// `envFrom` source may set a port variable; `volumeMounts` only as `volumes` are.
pub const UNREAD_CONTAINER_MEMBERS: &[&str] = &[
    "lifecycle",
    "livenessProbe",
    "readinessProbe",
    "resources",
    "securityContext",
    "startupProbe",
    "volumeMounts",
];

/// The lists of a pod spec whose items are containers.
const CONTAINER_LISTS: &[&str] = &["containers", "initContainers", "ephemeralContainers"];

/// An object read under the contract; strings borrow from the text where they can.
pub(crate) struct Pruned<'de>(pub Json<'de>);

impl<'de: 'a, 'a> Deserialize<'de> for Pruned<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Level::Object.deserialize(d).map(Pruned)
    }
}

/// Where in the object a value is, for the members it drops.
#[derive(Clone, Copy)]
enum Level {
    /// The object itself.
    Object,
    /// Its `metadata`.
    Metadata,
    /// The value of a `spec` member.
    Spec,
    /// A list of containers of a spec, and each container in it.
    Containers,
    Container,
    /// Anything else: nothing is dropped.
    Nested,
}

impl Level {
    /// The level of the value of member `key` of an object at this level.
    fn member(self, key: &str) -> Level {
        match (self, key) {
            (Level::Object, "metadata") => Level::Metadata,
            (Level::Spec, k) if CONTAINER_LISTS.contains(&k) => Level::Containers,
            (_, "spec") => Level::Spec,
            _ => Level::Nested,
        }
    }

    /// Whether member `key` of an object at this level is dropped, or kept as text.
    fn unread(self, key: &str) -> bool {
        match self {
            Level::Spec => UNREAD_SPEC_MEMBERS.contains(&key),
            Level::Container => UNREAD_CONTAINER_MEMBERS.contains(&key),
            _ => false,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Level {
    type Value = Json<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Json<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Level {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut out = Object::with_capacity(8);
        while let Some(Key(key)) = map.next_key()? {
            let value = match (self, key.as_ref()) {
                (Level::Object, "status") | (Level::Metadata, "managedFields") => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                (level, k) if level.unread(k) => {
                    let raw = map.next_value::<&'de serde_json::value::RawValue>()?;
                    Json::Unread(Cow::Borrowed(raw.get()))
                }
                (level, k) => map.next_value_seed(level.member(k))?,
            };
            out.push(key, value);
        }
        Ok(Json::Object(out))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        let items_at = match self {
            Level::Containers => Level::Container,
            _ => Level::Nested,
        };
        while let Some(item) = seq.next_element_seed(items_at)? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Json<'de>, E> {
        // JSON text has no NaN or infinity; `Number` refuses only those.
        Ok(serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(v.to_string())))
    }
}

/// An object key, borrowed unless it has escapes (serde's own `Cow` always copies).
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object key")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}
