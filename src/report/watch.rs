//! One watch per row and version of the kinds table, without a reflector: each object is decided on
//! as it arrives and dropped, only its record is kept. A failing watch (CRD not installed,
//! forbidden, API server away) is retried with backoff for ever, and shown in the metrics,
//! the log and `/readyz`; it never stops the process.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DynamicObject, PartialObjectMeta};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};

use crate::cluster::pods::{self, UnlabeledPod};
use crate::cluster::{api_resource, decide_input_of, namespace_mode, resource_name};
use crate::decide::Policy;
use crate::decide::kinds::{KINDS, POD};

use super::Shared;
use super::metrics::{ResourceLabels, WatchErrorLabels};
use super::state::{Change, evaluate, pod_record};

/// How one watch stands, for `/readyz`.
#[derive(Clone, Debug, PartialEq)]
pub enum Health {
    /// Listing for the first time.
    Starting,
    /// Listed at least once and watching.
    Synced,
    /// The API server does not serve this resource (its CRD is not installed).
    NotServed,
    /// The last list or watch failed, for this reason.
    Failing(String),
}

/// One watched resource.
pub struct Watched {
    pub resource: ApiResource,
    /// `resource.group/version`, the metric label and the name in logs.
    pub name: String,
}

/// Every row and version of the kinds table (a new row is watched without any other change),
/// then pods, last ([`run_pods`]).
pub(super) fn watched() -> Vec<Watched> {
    KINDS
        .iter()
        .chain(std::iter::once(&POD))
        .flat_map(|spec| spec.versions.iter().map(move |v| api_resource(spec, v)))
        .map(|resource| Watched {
            name: resource_name(&resource),
            resource,
        })
        .collect()
}

/// Whether a watch is the pods' one.
pub(super) fn is_pods(watched: &Watched) -> bool {
    watched.resource.kind == POD.kind && watched.resource.group.is_empty()
}

/// Watch one resource until the process ends. The pods' watch starts once every kind's watch
/// and the namespaces' have listed: a pod's reason depends on its owners and its namespace.
pub(super) async fn run(shared: Arc<Shared>, client: kube::Client, index: usize) {
    let watched = &shared.watched[index];
    let pods = is_pods(watched);
    if pods {
        shared.owners_listed().await;
    }
    let observe: Observe = if pods { observe_pod } else { observe };
    let labels = ResourceLabels {
        resource: watched.name.clone(),
    };
    let api: Api<DynamicObject> = Api::all_with(client, &watched.resource);
    let mut events = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    // The watcher runs up to a page ahead, so that the API server prepares the next page of a
    // list while this one is judged, instead of waiting for it (at most one page more held).
    let (queue, mut queued) = tokio::sync::mpsc::channel(PAGE_SIZE);
    let feed = async move {
        while let Some(event) = events.next().await {
            if queue.send(event).await.is_err() {
                break;
            }
        }
    };
    let judge = judge(&shared, index, &labels, observe, &mut queued);
    tokio::join!(feed, judge);
}

/// The watcher's list page size (`watcher::Config::default()`).
const PAGE_SIZE: usize = 500;

type Queued = tokio::sync::mpsc::Receiver<watcher::Result<Event<DynamicObject>>>;

/// What one listed or changed object does to the store: a workload's or a pod's.
type Observe = fn(&Shared, usize, &ResourceLabels, DynamicObject);

async fn judge(
    shared: &Shared,
    index: usize,
    labels: &ResourceLabels,
    observe: Observe,
    queued: &mut Queued,
) {
    let mut listed: Option<HashSet<String>> = None;
    let mut lists = 0u64;
    while let Some(event) = queued.recv().await {
        match event {
            Ok(Event::Init) => {
                if lists > 0 {
                    shared.metrics.watch_restarts.get_or_create(labels).inc();
                }
                listed = Some(HashSet::new());
            }
            Ok(Event::InitApply(object)) => {
                if let (Some(listed), Some(uid)) = (&mut listed, &object.metadata.uid) {
                    listed.insert(uid.clone());
                }
                observe(shared, index, labels, object);
            }
            Ok(Event::InitDone) => {
                lists += 1;
                let listed = listed.take().unwrap_or_default();
                let changes = shared.store_mut(|store| store.retain_listed(index, &listed));
                shared.changed(&changes);
                synced(shared, index, labels, listed.len());
            }
            Ok(Event::Apply(object)) => observe(shared, index, labels, object),
            Ok(Event::Delete(object)) => {
                shared.metrics.objects_seen.get_or_create(labels).inc();
                if let (Some(ns), Some(uid)) = (&object.metadata.namespace, &object.metadata.uid) {
                    let change = shared.store_mut(|store| store.delete(ns, uid));
                    shared.changed(std::slice::from_ref(&change));
                }
            }
            Err(error) => failed(shared, index, labels, &error),
        }
    }
}

/// What a verdict depends on besides the policy: the spec (its `metadata.generation`), the
/// labels and annotations `decide` reads (the opt-out label and annotation, the exemption
/// annotations) and the owner references (the workload's name). Status updates, most of a
/// Deployment's events, change none of it. `None` when the object carries no generation: then
/// every event is judged.
pub(super) fn fingerprint(object: &DynamicObject, policy: &Policy) -> Option<u64> {
    use std::hash::{Hash as _, Hasher as _};
    let meta = &object.metadata;
    let generation = meta.generation?;
    let label = |key: &str| meta.labels.as_ref().and_then(|l| l.get(key));
    let annotation = |key: &str| meta.annotations.as_ref().and_then(|a| a.get(key));
    let owners = serde_json::to_string(&meta.owner_references).unwrap_or_default();
    let mut hash = std::hash::DefaultHasher::new();
    (
        generation,
        label(&policy.opt_out_label),
        annotation(&policy.opt_out_annotation),
        annotation(&policy.exemptions.rules_annotation),
        annotation(&policy.exemptions.reason_annotation),
        owners,
    )
        .hash(&mut hash);
    Some(hash.finish())
}

/// A pod: kept only while it is an inference pod that lacks the labels or the port. Pods carry
/// no generation, so every event is judged; most return at once (no engine, or labeled).
fn observe_pod(shared: &Shared, index: usize, labels: &ResourceLabels, object: DynamicObject) {
    shared.metrics.objects_seen.get_or_create(labels).inc();
    let (Some(ns), Some(uid)) = (&object.metadata.namespace, &object.metadata.uid) else {
        return;
    };
    let unlabeled = decide_input_of(&object, &shared.watched[index].resource)
        .ok()
        .and_then(|pod| unlabeled_pod(shared, &pod));
    let change = match unlabeled {
        Some(pod) => shared.store_mut(|store| store.apply(index, pod_record(pod))),
        None => shared.store_mut(|store| store.delete(ns, uid)),
    };
    shared.changed(std::slice::from_ref(&change));
}

fn unlabeled_pod(shared: &Shared, pod: &serde_json::Value) -> Option<UnlabeledPod> {
    let namespace = pod.pointer("/metadata/namespace")?.as_str()?;
    shared.store(|store| {
        let cx = pods::Context {
            policy: &shared.policy,
            owner_kinds: &shared.settings.pod_owner_kinds,
            opted_in: shared
                .namespaces_read
                .load(Ordering::Relaxed)
                .then(|| store.opted_in(namespace)),
        };
        pods::unlabeled(pod, &cx, |ns, kind, name| store.standing(ns, kind, name))
    })
}

fn observe(shared: &Shared, index: usize, labels: &ResourceLabels, mut object: DynamicObject) {
    shared.metrics.objects_seen.get_or_create(labels).inc();
    let seen = fingerprint(&object, &shared.policy);
    if let (Some(seen), Some(ns), Some(uid)) =
        (seen, &object.metadata.namespace, &object.metadata.uid)
        && shared.store(|store| store.unchanged(ns, uid, index, seen))
    {
        shared.metrics.objects_unchanged.get_or_create(labels).inc();
        return;
    }
    // Never read by the engine (decide::unread), often most of an object: not copied into its
    // input.
    object.metadata.managed_fields = None;
    if let Some(data) = object.data.as_object_mut() {
        data.remove("status");
    }
    let resource = &shared.watched[index].resource;
    let record = decide_input_of(&object, resource)
        .ok()
        .and_then(|value| evaluate(&shared.policy, &value));
    let Some(record) = record else {
        return;
    };
    let change: Change = shared.store_mut(|store| store.apply_seen(index, record, seen));
    shared.changed(std::slice::from_ref(&change));
}

/// Watch the namespaces' opt-in labels until the process ends: `denied` is only reported where
/// the namespace is in enforce mode. While namespaces cannot be read, none counts as enforced.
pub(super) async fn run_namespaces(shared: Arc<Shared>, client: kube::Client) {
    let api: Api<PartialObjectMeta<Namespace>> = Api::all(client);
    let labels = ResourceLabels {
        resource: "namespaces/v1".to_string(),
    };
    let key = shared.policy.opt_out_label.clone();
    let mut events = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut failing = false;
    while let Some(event) = events.next().await {
        let (name, mode) = match event {
            Ok(Event::InitApply(ns) | Event::Apply(ns)) => {
                let mode = namespace_mode(ns.metadata.labels.as_ref(), &key);
                (ns.metadata.name, mode)
            }
            Ok(Event::Delete(ns)) => (ns.metadata.name, None),
            Ok(Event::Init) => {
                failing = false;
                continue;
            }
            Ok(Event::InitDone) => {
                failing = false;
                shared.namespaces_read.store(true, Ordering::Relaxed);
                shared.namespaces_seen.store(true, Ordering::Relaxed);
                continue;
            }
            Err(error) => {
                let forbidden = matches!(&error,
                    watcher::Error::InitialListFailed(kube::Error::Api(s))
                    | watcher::Error::WatchStartFailed(kube::Error::Api(s))
                    | watcher::Error::WatchFailed(kube::Error::Api(s)) if s.code == 403);
                let reason = if forbidden { "forbidden" } else { "other" };
                let error_labels = WatchErrorLabels {
                    resource: labels.resource.clone(),
                    reason,
                };
                shared
                    .metrics
                    .watch_errors
                    .get_or_create(&error_labels)
                    .inc();
                if !failing {
                    tracing::error!(%error, "cannot watch namespaces (the reporter needs get, list \
                        and watch on them): no workload is reported denied until it can");
                }
                failing = true;
                // Pods are judged without the opt-in rather than never: no pod is said to be in
                // a namespace that did not opt in while namespaces cannot be read.
                shared.namespaces_read.store(false, Ordering::Relaxed);
                shared.namespaces_seen.store(true, Ordering::Relaxed);
                continue;
            }
        };
        if let Some(name) = name {
            let changes = shared.store_mut(|store| store.set_mode(&name, mode));
            shared.changed(&changes);
        }
    }
}

fn synced(shared: &Shared, index: usize, labels: &ResourceLabels, objects: usize) {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    shared.metrics.last_sync.get_or_create(labels).set(now);
    shared.metrics.watch_up.get_or_create(labels).set(1);
    if shared.set_health(index, Health::Synced) {
        tracing::info!(resource = %labels.resource, objects, "listed; watching");
    }
}

fn failed(shared: &Shared, index: usize, labels: &ResourceLabels, error: &watcher::Error) {
    let status = match error {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => Some((s.code, s.message.as_str())),
        watcher::Error::WatchError(s) => Some((s.code, s.message.as_str())),
        _ => None,
    };
    let plural = &shared.watched[index].resource.plural;
    let (reason, health) = match status {
        Some((404, _)) => ("not-found", Health::NotServed),
        Some((403, message)) => (
            "forbidden",
            Health::Failing(format!(
                "forbidden: the reporter's ServiceAccount needs get, list and watch on {plural} \
                 ({message})"
            )),
        ),
        _ => ("other", Health::Failing(error.to_string())),
    };
    shared
        .metrics
        .watch_errors
        .get_or_create(&WatchErrorLabels {
            resource: labels.resource.clone(),
            reason,
        })
        .inc();
    shared.metrics.watch_up.get_or_create(labels).set(0);
    // Log when the state changes, not on every retry.
    if shared.set_health(index, health.clone()) {
        match health {
            Health::NotServed => tracing::warn!(
                resource = %labels.resource,
                "not served by this cluster (CRD not installed); retrying with backoff"
            ),
            Health::Failing(why) => {
                tracing::error!(resource = %labels.resource, "watch failing, retrying: {why}")
            }
            Health::Starting | Health::Synced => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Settings;
    use crate::report::state::State;
    use serde_json::json;

    fn deployment(generation: i64, labels: serde_json::Value, args: &[&str]) -> DynamicObject {
        let object = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "llm", "namespace": "ml", "uid": "u1",
                "generation": generation, "labels": labels},
            "spec": {"selector": {"matchLabels": {"app": "llm"}}, "template": {
                "metadata": {"labels": {"app": "llm"}},
                "spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.10.0",
                    "args": args, "ports": [{"containerPort": 8000}]}]}}},
            "status": {"observedGeneration": generation, "readyReplicas": 1}
        });
        match serde_json::from_value(object) {
            Ok(o) => o,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn status_updates_are_not_judged_again_spec_and_label_changes_are() {
        let shared = Shared::new(
            Policy::default(),
            Settings {
                debounce: std::time::Duration::ZERO,
                write_rate: 1.0,
                write_burst: 1,
                write_reports: false,
                pod_owner_kinds: Vec::new(),
            },
        );
        let index = shared
            .watched
            .iter()
            .position(|w| w.name == "deployments.apps/v1")
            .unwrap_or_default();
        let labels = ResourceLabels {
            resource: shared.watched[index].name.clone(),
        };
        let unchanged = || {
            shared
                .metrics
                .objects_unchanged
                .get_or_create(&labels)
                .get()
        };
        let state = || shared.store(|s| s.reported_in("ml").first().and_then(|r| r.state));
        let serving = ["--port", "8000"];

        observe(&shared, index, &labels, deployment(1, json!({}), &serving));
        assert_eq!(state(), Some(State::Unmonitored));
        // A status update: same generation and metadata.
        let mut status_only = deployment(1, json!({}), &serving);
        status_only.data["status"]["readyReplicas"] = json!(2);
        observe(&shared, index, &labels, status_only);
        assert_eq!(unchanged(), 1);
        // A label the engine does not read changes no verdict either.
        observe(
            &shared,
            index,
            &labels,
            deployment(1, json!({"team": "a"}), &serving),
        );
        assert_eq!(unchanged(), 2);
        // An opt-out label changes the verdict without a new generation.
        let opted_out = json!({"inference-monitoring": "disabled"});
        observe(&shared, index, &labels, deployment(1, opted_out, &serving));
        assert_eq!(unchanged(), 2);
        let skipped = shared.store(|s| s.reported_in("ml").first().map(|r| r.skipped.is_some()));
        assert_eq!(skipped, Some(true));
        // A new generation (metrics switched off) is judged again.
        let off = ["--port", "8000", "--disable-log-stats"];
        observe(&shared, index, &labels, deployment(2, json!({}), &off));
        assert_eq!(unchanged(), 2);
        let findings = shared.store(|s| s.reported_in("ml").first().map(|r| r.findings.len()));
        assert!(findings.is_some_and(|n| n > 0), "{findings:?}");
    }
}
