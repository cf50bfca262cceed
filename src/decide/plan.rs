//! Build a minimal JSON Patch of `add` operations. A missing parent is created by one `add` of
//! the whole map or list; later additions under a parent an earlier operation creates are folded
//! into that operation's value, so every operation applies in order to the original object.
//!
//! By construction no two operations share a path and nothing the object holds is overwritten:
//! an addition of what the object or the plan already holds at that place is a no-op (pod
//! templates that share a layer, like a leader and a worker over one base template, ask for the
//! same labels and port), and an addition of something else there is refused.

use serde_json::{Map, Value};

use super::decision::PatchOp;
use super::json::Json;
use super::path::{self, Path, Tok};

pub(super) struct PatchBuilder<'a> {
    doc: &'a Json<'a>,
    ops: Vec<(Path, Value)>,
    /// The operations that can own later additions (no `Append` step), by path.
    owners: Owners,
    /// The operation appending to each list, by the list's path: one per list.
    appends: super::Map<Path, usize>,
}

/// Index of planned operations by path. A few are scanned; past that a scan per addition is
/// quadratic in objects with thousands of templates, so they are hashed.
#[derive(Default)]
struct Owners {
    few: Vec<(Path, usize)>,
    many: super::Map<Path, usize>,
    /// Bit `n` is set when an owner's path has `n` steps (bit 63: 63 or more), so that only
    /// prefixes of those lengths are looked up.
    lengths: u64,
}

impl Owners {
    const FEW: usize = 16;

    /// Record `op` as the owner of `path`, unless an earlier operation is.
    fn insert(&mut self, path: &[Tok], op: usize) {
        if self.get(path).is_some() {
            return;
        }
        self.lengths |= length_bit(path.len());
        if self.few.len() < Self::FEW && self.many.is_empty() {
            self.few.push((path.to_vec(), op));
            return;
        }
        self.many.extend(self.few.drain(..));
        self.many.insert(path.to_vec(), op);
    }

    fn get(&self, path: &[Tok]) -> Option<usize> {
        if self.lengths & length_bit(path.len()) == 0 {
            return None;
        }
        match self.few.iter().find(|(p, _)| p == path) {
            Some((_, op)) => Some(*op),
            None => self.many.get(path).copied(),
        }
    }
}

/// What stands at a path, in the object or in a planned operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Map,
    List,
    Other,
}

/// Why an addition was not planned.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Blocked {
    /// A value that is neither a map nor a list is in the way (its display path).
    NotAContainer(String),
    /// Another value is already at that place, in the object or planned (its display path).
    Taken(String),
}

impl<'a> PatchBuilder<'a> {
    pub(super) fn new(doc: &'a Json<'a>) -> Self {
        PatchBuilder {
            doc,
            ops: Vec::new(),
            owners: Owners::default(),
            appends: super::Map::default(),
        }
    }

    /// Put `value` at `path` (its last step a key, or `Append` to add to a list), creating missing
    /// parents. Refuses when something that is not a map or list is in the way.
    pub(super) fn add(&mut self, path: &[Tok], value: Value) -> Result<(), Blocked> {
        let Some((slot, parents)) = path.split_last() else {
            return Err(Blocked::NotAContainer(String::new()));
        };
        match self.already(path, &value) {
            Some(true) => return Ok(()),
            Some(false) => return Err(Blocked::Taken(path::display(path))),
            None => {}
        }
        // The deepest parent that exists, in the object or in a planned operation.
        let mut depth = parents.len();
        loop {
            let prefix = &parents[..depth];
            let next = if depth == parents.len() {
                slot
            } else {
                &parents[depth]
            };
            match self.lookup(prefix) {
                Some(found) => {
                    let fits = match next {
                        Tok::Key(_) => found == Shape::Map,
                        Tok::Append | Tok::Index(_) => found == Shape::List,
                    };
                    if !fits {
                        return Err(Blocked::NotAContainer(path::display(prefix)));
                    }
                    break;
                }
                None if depth == 0 => {
                    return Err(Blocked::NotAContainer(String::new()));
                }
                None => depth -= 1,
            }
        }
        let nested = wrap(&path[depth + 1..], value);
        let slot_path = &path[..=depth];
        match self.owning_op(&path[..depth]) {
            Some(i) => {
                let (op_path, op_value) = &mut self.ops[i];
                let inner = &path[op_path.len()..depth];
                if let Some(target) = walk_mut(op_value, inner) {
                    insert(target, &path[depth], nested);
                }
            }
            None => {
                if let Some((Tok::Append, list)) = slot_path.split_last() {
                    self.appends.insert(list.to_vec(), self.ops.len());
                } else if !slot_path.contains(&Tok::Append) {
                    self.owners.insert(slot_path, self.ops.len());
                }
                self.ops.push((slot_path.to_vec(), nested));
            }
        }
        Ok(())
    }

    /// Whether the object or the plan already holds something at `path` (for an `Append`, in
    /// that list): `Some(true)` when it is `value`, `Some(false)` when it is something else.
    fn already(&self, path: &[Tok], value: &Value) -> Option<bool> {
        if let Some((Tok::Append, list)) = path.split_last() {
            if let Some(&i) = self.appends.get(list) {
                return Some(&self.ops[i].1 == value);
            }
            // A list a planned operation creates: an equal item is already there.
            let items = self.planned(list)?.as_array()?;
            return items.contains(value).then_some(true);
        }
        if let Some(v) = path::get(self.doc, path).filter(|v| !v.is_null()) {
            return Some(*v == Json::from(value));
        }
        self.planned(path).map(|v| v == value)
    }

    /// The value a planned operation puts at `path`, if any.
    fn planned(&self, path: &[Tok]) -> Option<&Value> {
        let i = self.owning_op(path)?;
        let (op_path, op_value) = &self.ops[i];
        path[op_path.len()..]
            .iter()
            .try_fold(op_value, |cur, t| match t {
                Tok::Key(k) => cur.get(k.as_ref()),
                Tok::Index(i) => cur.get(*i),
                Tok::Append => None,
            })
    }

    pub(super) fn into_ops(self) -> Vec<PatchOp> {
        self.ops
            .into_iter()
            .map(|(p, value)| PatchOp::Add {
                path: path::pointer(&p),
                value,
            })
            .collect()
    }

    /// The value at `prefix`, in the object or a planned operation. A YAML/JSON `null` map or
    /// list (`metadata:` with nothing under it) is absent, as the API server reads it: the
    /// operation that creates it replaces the null.
    fn lookup(&self, prefix: &[Tok]) -> Option<Shape> {
        if let Some(v) = path::get(self.doc, prefix).filter(|v| !v.is_null()) {
            return Some(match v {
                Json::Object(_) => Shape::Map,
                Json::Array(_) => Shape::List,
                _ => Shape::Other,
            });
        }
        Some(match self.planned(prefix)? {
            Value::Object(_) => Shape::Map,
            Value::Array(_) => Shape::List,
            _ => Shape::Other,
        })
    }

    /// The planned operation whose value contains `prefix`, if any.
    fn owning_op(&self, prefix: &[Tok]) -> Option<usize> {
        (0..=prefix.len())
            .filter_map(|len| self.owners.get(&prefix[..len]))
            .min()
    }
}

fn length_bit(len: usize) -> u64 {
    1 << len.min(63)
}

fn wrap(rest: &[Tok], value: Value) -> Value {
    rest.iter().rev().fold(value, |v, t| match t {
        Tok::Key(k) => {
            let mut m = Map::new();
            m.insert(k.to_string(), v);
            Value::Object(m)
        }
        Tok::Append | Tok::Index(_) => Value::Array(vec![v]),
    })
}

fn walk_mut<'v>(v: &'v mut Value, path: &[Tok]) -> Option<&'v mut Value> {
    path.iter().try_fold(v, |cur, t| match t {
        Tok::Key(k) => cur.as_object_mut()?.get_mut(k.as_ref()),
        Tok::Index(i) => cur.as_array_mut()?.get_mut(*i),
        Tok::Append => None,
    })
}

fn insert(target: &mut Value, slot: &Tok, value: Value) {
    match (target, slot) {
        (Value::Object(m), Tok::Key(k)) => {
            m.insert(k.to_string(), value);
        }
        (Value::Array(a), Tok::Append | Tok::Index(_)) => a.push(value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(ks: &[&str]) -> Path {
        ks.iter().map(|k| Tok::Key(k.to_string().into())).collect()
    }

    #[test]
    fn missing_parents_are_created_once_and_later_additions_fold_in() {
        let doc = json!({"spec": {"role": {"templateRef": {"name": "base"}}}});
        let doc = Json::from(&doc);
        let mut b = PatchBuilder::new(&doc);
        b.add(
            &keys(&[
                "spec",
                "role",
                "templateRef",
                "patch",
                "metadata",
                "labels",
                "a/b",
            ]),
            json!("x"),
        )
        .expect("planned");
        b.add(
            &keys(&[
                "spec",
                "role",
                "templateRef",
                "patch",
                "metadata",
                "labels",
                "c",
            ]),
            json!("y"),
        )
        .expect("planned");
        let mut containers = keys(&["spec", "role", "templateRef", "patch", "spec", "containers"]);
        containers.push(Tok::Append);
        b.add(&containers, json!({"name": "c"})).expect("planned");
        let ops = serde_json::to_value(b.into_ops()).expect("serializable");
        assert_eq!(
            ops,
            json!([{"op": "add", "path": "/spec/role/templateRef/patch", "value": {
                "metadata": {"labels": {"a/b": "x", "c": "y"}},
                "spec": {"containers": [{"name": "c"}]}
            }}])
        );
    }

    #[test]
    fn existing_parents_get_one_operation_per_member() {
        let doc = json!({"metadata": {"labels": {}}, "ports": []});
        let doc = Json::from(&doc);
        let mut b = PatchBuilder::new(&doc);
        b.add(&keys(&["metadata", "labels", "a/b"]), json!("x"))
            .expect("planned");
        b.add(&[Tok::Key("ports".into()), Tok::Append], json!(1))
            .expect("planned");
        let ops = serde_json::to_value(b.into_ops()).expect("serializable");
        assert_eq!(
            ops,
            json!([
                {"op": "add", "path": "/metadata/labels/a~1b", "value": "x"},
                {"op": "add", "path": "/ports/-", "value": 1}
            ])
        );
    }

    #[test]
    fn a_scalar_in_the_way_blocks_the_addition() {
        let doc = json!({"metadata": {"labels": "oops"}});
        let doc = Json::from(&doc);
        let mut b = PatchBuilder::new(&doc);
        assert_eq!(
            b.add(&keys(&["metadata", "labels", "x"]), json!("v")),
            Err(Blocked::NotAContainer("metadata.labels".into()))
        );
        assert!(b.into_ops().is_empty());
    }

    #[test]
    fn the_same_addition_twice_is_one_operation_and_another_value_is_refused() {
        let doc = json!({"metadata": {"labels": {"mine": "a"}}, "ports": []});
        let doc = Json::from(&doc);
        let mut b = PatchBuilder::new(&doc);
        let label = keys(&["metadata", "labels", "w"]);
        let port = [Tok::Key("ports".into()), Tok::Append];
        for _ in 0..2 {
            b.add(&label, json!("x")).expect("planned once");
            b.add(&port, json!({"name": "http"})).expect("planned once");
        }
        assert_eq!(
            b.add(&label, json!("y")),
            Err(Blocked::Taken("metadata.labels.w".into()))
        );
        assert!(matches!(
            b.add(&port, json!({"name": "metrics"})),
            Err(Blocked::Taken(_))
        ));
        // What the object holds is never overwritten.
        assert!(matches!(
            b.add(&keys(&["metadata", "labels", "mine"]), json!("b")),
            Err(Blocked::Taken(_))
        ));
        b.add(&keys(&["metadata", "labels", "mine"]), json!("a"))
            .expect("already there");
        let ops = serde_json::to_value(b.into_ops()).expect("serializable");
        assert_eq!(
            ops,
            json!([
                {"op": "add", "path": "/metadata/labels/w", "value": "x"},
                {"op": "add", "path": "/ports/-", "value": {"name": "http"}}
            ])
        );
    }
}
