//! Find every pod template of an object, following the kind table: inline templates, role
//! templates reached through `templateRef` with their patch, and leader/worker variants.
//! Each template comes with its effective content (layers merged as the controller merges them)
//! and the writable layers a patch may touch.

use std::borrow::Cow;

use super::Map;
use super::json::Json;
use super::kinds::{KindSpec, Site, Variant};
use super::path::{self, Path, Tok};

/// A writable layer of a template: the inline template itself or a patch over it.
#[derive(Debug)]
pub(super) struct Layer<'a> {
    pub value: &'a Json<'a>,
    pub path: Path,
}

/// One pod template as the pods will see it.
#[derive(Debug)]
pub(super) struct PodTemplate<'a> {
    /// Display path of the template (or the `templateRef`) with its variant.
    pub display: String,
    /// What names this template across the old and new object of an UPDATE: its site, list
    /// items by their `name` (roles, components), never a list index where a name exists, and
    /// its variant. Inserting a role in front leaves every other role's identity as it was.
    pub identity: Identity<'a>,
    pub role: Option<String>,
    /// `None` for a variant alone (a LeaderWorkerSet without a leader template), which runs on
    /// every pod.
    pub variant: Option<Variant>,
    pub effective: Cow<'a, Json<'a>>,
    /// Where the template's labels live (the inline template or the reference's patch).
    pub labels_at: Path,
    /// Writable layers that may hold containers, innermost first.
    pub layers: Vec<Layer<'a>>,
    /// For a template reached through `templateRef`: the patch's container list, where a
    /// container defined only in the shared role template gets an entry of its own.
    pub append_containers_at: Option<Path>,
    /// The pattern this template came from, to tell a lone variant from a pair.
    pattern: Path,
}

impl PodTemplate<'_> {
    /// Whether what is written at `layer` reaches this template's pods: one of its layers, or
    /// the reference's patch that does not exist yet.
    pub(super) fn reads(&self, layer: &[Tok]) -> bool {
        self.layers.iter().any(|l| l.path == layer)
            || self
                .append_containers_at
                .as_ref()
                .is_some_and(|list| list.starts_with(layer))
    }
}

/// A template's identity: its site (by the kind table's order), the list items on the way to it,
/// and its variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Identity<'a> {
    site: usize,
    items: Vec<Item<'a>>,
    variant: Option<Variant>,
}

/// A list item on the way to a template: by its `name`, or by position when it has none.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Item<'a> {
    Name(&'a str),
    Index(usize),
}

/// Templates found, and the places whose shape could not be read.
#[derive(Debug, Default)]
pub(super) struct Walk<'a> {
    pub templates: Vec<PodTemplate<'a>>,
    pub unreadable: Vec<(String, String)>,
}

/// Walk an object of a handled kind.
pub(super) fn pod_templates<'a>(object: &'a Json<'a>, kind: &KindSpec) -> Walk<'a> {
    let mut walk = Walk::default();
    // By name, the first of each name winning: one search per reference is quadratic.
    let mut role_templates: Map<&str, &Json<'a>> = Map::default();
    let listed = kind
        .role_templates
        .and_then(|p| path::get(object, &path::join(&[], p)))
        .and_then(Json::as_array);
    for t in listed.into_iter().flatten() {
        if let Some(name) = t.get("name").and_then(Json::as_str) {
            role_templates.entry(name).or_insert(t);
        }
    }
    for (i, site) in kind.sites.iter().enumerate() {
        let mut patterns = Vec::new();
        let steps = site_steps(site.at);
        let start = Pattern {
            at: Vec::new(),
            identity: Identity {
                site: i,
                items: Vec::new(),
                variant: None,
            },
            role: None,
        };
        expand(object, &steps, kind, start, &mut patterns, &mut walk);
        for p in patterns {
            visit(site, p, &role_templates, &mut walk);
        }
    }
    name_variants(&mut walk.templates);
    walk
}

/// A variant shows in the display path when its pattern has both; a variant alone (a
/// LeaderWorkerSet without a leader template) runs on every pod and is no variant at all.
fn name_variants(templates: &mut [PodTemplate<'_>]) {
    let mut per_pattern: Map<&Path, usize> = Map::default();
    for t in templates.iter().filter(|t| t.variant.is_some()) {
        *per_pattern.entry(&t.pattern).or_default() += 1;
    }
    let paired: Vec<bool> = templates
        .iter()
        .map(|t| per_pattern.get(&t.pattern).is_some_and(|&n| n > 1))
        .collect();
    for (t, paired) in templates.iter_mut().zip(paired) {
        match t.variant {
            Some(v) if paired => t.display = format!("{} ({})", t.display, v.as_str()),
            _ => t.variant = None,
        }
    }
}

/// One step of a site path: a key, or every item of the list at a key (`roles[]`).
enum Step {
    Key(&'static str),
    Each(&'static str),
}

/// `""` is the object itself (a Pod).
fn site_steps(at: &'static str) -> Vec<Step> {
    at.split('.')
        .filter(|s| !s.is_empty())
        .map(|s| match s.strip_suffix("[]") {
            Some(k) => Step::Each(k),
            None => Step::Key(s),
        })
        .collect()
}

/// Where a pattern object sits: its path, its identity and its role.
struct Pattern<'a> {
    at: Path,
    identity: Identity<'a>,
    role: Option<String>,
}

impl<'a> Pattern<'a> {
    fn key(&self, k: &'static str) -> Pattern<'a> {
        Pattern {
            at: path::key(&self.at, k),
            identity: self.identity.clone(),
            role: self.role.clone(),
        }
    }

    /// Item `i` of the list at key `k`, named by its `name` when it has one.
    fn item(&self, k: &'static str, i: usize, item: &'a Json<'a>, is_role: bool) -> Pattern<'a> {
        let mut at = path::key(&self.at, k);
        at.push(Tok::Index(i));
        let name = item.get("name").and_then(Json::as_str);
        let mut identity = self.identity.clone();
        identity.items.push(name.map_or(Item::Index(i), Item::Name));
        let role = match (is_role, name) {
            (true, n) => n.map(str::to_string),
            (false, _) => self.role.clone(),
        };
        Pattern { at, identity, role }
    }
}

/// Resolve a site path with `[]` into the pattern objects it names, capturing role names.
fn expand<'a>(
    v: &'a Json<'a>,
    steps: &[Step],
    kind: &KindSpec,
    here: Pattern<'a>,
    out: &mut Vec<(Pattern<'a>, &'a Json<'a>)>,
    walk: &mut Walk<'a>,
) {
    let Some((step, rest)) = steps.split_first() else {
        match v {
            Json::Object(_) => out.push((here, v)),
            Json::Null => {}
            _ => walk
                .unreadable
                .push((path::display(&here.at), "is not an object".into())),
        }
        return;
    };
    let at = &here.at;
    let Some(obj) = v.as_object() else {
        if !v.is_null() {
            walk.unreadable
                .push((path::display(at), "is not an object".into()));
        }
        return;
    };
    match step {
        Step::Key(k) => {
            if let Some(next) = obj.get(k) {
                expand(next, rest, kind, here.key(k), out, walk);
            }
        }
        Step::Each(k) => match obj.get(k) {
            Some(Json::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let p = here.item(k, i, item, kind.roles == Some(*k));
                    expand(item, rest, kind, p, out, walk);
                }
            }
            Some(Json::Null) | None => {}
            Some(_) => walk
                .unreadable
                .push((path::display(&path::key(at, *k)), "is not a list".into())),
        },
    }
}

/// A template before its variants: where it is shown, what the pods see, and where a patch goes.
struct Resolved<'a> {
    display: String,
    effective: Cow<'a, Json<'a>>,
    labels_at: Path,
    layers: Vec<Layer<'a>>,
    append_containers_at: Option<Path>,
}

/// Add the template of one pattern, or one per variant.
fn visit<'a>(
    site: &Site,
    (p, pattern): (Pattern<'a>, &'a Json<'a>),
    role_templates: &Map<&str, &'a Json<'a>>,
    walk: &mut Walk<'a>,
) {
    let Pattern { at, identity, role } = p;
    let inline = path::get(pattern, &path::join(&[], site.template));
    let resolved = match inline {
        Some(v) if !v.is_null() => inline_template(site, &at, v, walk),
        _ => referenced_template(site, &at, pattern, role_templates, walk),
    };
    let Some(r) = resolved else { return };
    let variants = variant_patches(site, &at, pattern);
    if variants.is_empty() {
        walk.templates.push(PodTemplate {
            display: r.display,
            identity,
            role,
            variant: None,
            effective: r.effective,
            labels_at: r.labels_at,
            layers: r.layers,
            append_containers_at: r.append_containers_at,
            pattern: at,
        });
        return;
    }
    for (variant, patch) in variants {
        // The variant's patch is the innermost layer.
        let mut layers = Vec::with_capacity(r.layers.len() + 1);
        let effective = match patch {
            Some((p, p_path)) => {
                layers.push(Layer {
                    value: p,
                    path: p_path,
                });
                Cow::Owned(merge(&r.effective, p))
            }
            None => r.effective.clone(),
        };
        layers.extend(r.layers.iter().map(|l| Layer {
            value: l.value,
            path: l.path.clone(),
        }));
        walk.templates.push(PodTemplate {
            display: r.display.clone(),
            identity: Identity {
                variant: Some(variant),
                ..identity.clone()
            },
            role: role.clone(),
            variant: Some(variant),
            effective,
            labels_at: r.labels_at.clone(),
            layers,
            append_containers_at: r.append_containers_at.clone(),
            pattern: at.clone(),
        });
    }
}

/// A template written in the pattern itself.
fn inline_template<'a>(
    site: &Site,
    at: &[Tok],
    template: &'a Json<'a>,
    walk: &mut Walk<'a>,
) -> Option<Resolved<'a>> {
    let tpl_path = path::join(at, site.template);
    if !template.is_object() {
        walk.unreadable
            .push((path::display(&tpl_path), "is not an object".into()));
        return None;
    }
    Some(Resolved {
        display: path::display(&tpl_path),
        effective: Cow::Borrowed(template),
        labels_at: path::join(&tpl_path, "metadata.labels"),
        layers: vec![Layer {
            value: template,
            path: tpl_path,
        }],
        append_containers_at: None,
    })
}

/// A shared role template named by the pattern's `templateRef`, with the reference's patch
/// over it as the writable layer.
fn referenced_template<'a>(
    site: &Site,
    at: &[Tok],
    pattern: &'a Json<'a>,
    role_templates: &Map<&str, &'a Json<'a>>,
    walk: &mut Walk<'a>,
) -> Option<Resolved<'a>> {
    let (ref_key, patch_rel) = site.template_ref?;
    let reference = pattern.get(ref_key).filter(|r| !r.is_null())?;
    let ref_display = path::display(&path::key(at, ref_key));
    let Some(name) = reference.get("name").and_then(Json::as_str) else {
        walk.unreadable
            .push((ref_display, "has no name of a role template".into()));
        return None;
    };
    let base = role_templates
        .get(name)
        .and_then(|t| t.get("template"))
        .filter(|t| t.is_object());
    let Some(base) = base else {
        walk.unreadable.push((
            ref_display,
            format!("names role template {name:?}, which spec.roleTemplates does not define"),
        ));
        return None;
    };
    let patch_path = path::join(at, patch_rel);
    let (effective, layers) = match path::get(pattern, &path::join(&[], patch_rel)) {
        Some(p @ Json::Object(_)) => (
            Cow::Owned(merge(base, p)),
            vec![Layer {
                value: p,
                path: patch_path.clone(),
            }],
        ),
        Some(p) if !p.is_null() => {
            walk.unreadable
                .push((path::display(&patch_path), "is not an object".into()));
            return None;
        }
        _ => (Cow::Borrowed(base), Vec::new()),
    };
    Some(Resolved {
        display: ref_display,
        effective,
        labels_at: path::join(&patch_path, "metadata.labels"),
        layers,
        append_containers_at: Some(path::join(&patch_path, "spec.containers")),
    })
}

/// The variants of a pattern with each one's patch (and its path), if any: none when the
/// pattern has no variant patches at all.
fn variant_patches<'a>(
    site: &Site,
    at: &[Tok],
    pattern: &'a Json<'a>,
) -> Vec<(Variant, Option<(&'a Json<'a>, Path)>)> {
    if let Some(v) = site.variant {
        return vec![(v, None)];
    }
    let patches: Vec<_> = site
        .variants
        .iter()
        .map(|(variant, rel)| {
            let p = path::get(pattern, &path::join(&[], rel)).filter(|p| p.is_object());
            (*variant, p.map(|p| (p, path::join(at, rel))))
        })
        .collect();
    if patches.iter().all(|(_, p)| p.is_none()) {
        Vec::new()
    } else {
        patches
    }
}

/// The key strategic merge patch uses to merge items of these pod-spec lists.
fn merge_key(list: &str) -> Option<&'static str> {
    match list {
        "containers" | "initContainers" | "ephemeralContainers" | "volumes" | "env" => Some("name"),
        "ports" => Some("containerPort"),
        "volumeMounts" => Some("mountPath"),
        _ => None,
    }
}

/// Strategic-merge `patch` over `base` as far as detection needs: maps merge, pod-spec lists
/// merge by their keys, other lists and scalars are replaced, `null` deletes.
pub(super) fn merge<'a>(base: &Json<'a>, patch: &Json<'a>) -> Json<'a> {
    merge_in(base, patch, None)
}

fn merge_in<'a>(base: &Json<'a>, patch: &Json<'a>, list_key: Option<&str>) -> Json<'a> {
    match (base, patch, list_key) {
        (Json::Object(b), Json::Object(p), _) => {
            Json::Object(b.merged(p, |k, bv, pv| merge_in(bv, pv, merge_key(k))))
        }
        (Json::Array(b), Json::Array(p), Some(key)) => {
            let mut out = b.clone();
            // Items by merge key, the first of each winning: one search per patch item is
            // quadratic in long lists.
            let mut by_key: Map<String, usize> = Map::default();
            for (i, o) in out.iter().enumerate() {
                if let Some(id) = o.get(key) {
                    by_key.entry(merge_id(id)).or_insert(i);
                }
            }
            for item in p {
                let id = item.get(key).map(merge_id);
                match id.as_ref().and_then(|id| by_key.get(id).copied()) {
                    Some(i) => out[i] = merge_in(&out[i], item, None),
                    None => {
                        if let Some(id) = id {
                            by_key.insert(id, out.len());
                        }
                        out.push(item.clone());
                    }
                }
            }
            Json::Array(out)
        }
        (_, p, _) => p.clone(),
    }
}

/// A merge key's identity: a name and the number 80 differ from the strings "80".
fn merge_id(id: &Json<'_>) -> String {
    match id {
        Json::String(s) => format!("{s:?}"),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_follows_strategic_merge_keys() {
        let base = json!({"spec": {"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 1}]}], "nodeSelector": {"a": "1"}}});
        let patch = json!({"spec": {"containers": [{"name": "a", "command": ["c"], "ports": [{"containerPort": 1, "name": "http"}]}, {"name": "b"}], "nodeSelector": null}});
        let want = json!({"spec": {"containers": [
            {"name": "a", "image": "x", "ports": [{"containerPort": 1, "name": "http"}], "command": ["c"]},
            {"name": "b"}
        ]}});
        assert_eq!(
            merge(&Json::from(&base), &Json::from(&patch)),
            Json::from(&want)
        );
    }
}
