//! `audit --cluster`: list what already runs, page by page, for every kind in the engine's
//! table, and report it like manifests; then the inference pods that lack the labels or the
//! port (`crate::cluster::pods`). Read-only: it only issues `list` requests.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};

use crate::cluster::pods::{self, Standing};
use crate::cluster::{
    ListError, Target, api_resource, decide_input_of, list_each, namespace_mode, resource_name,
};
use crate::decide::kinds::{KINDS, POD};

use super::output::{InputError, Source, Writer};

/// Handled objects by namespace, kind and name, as the listing found them.
type Standings = HashMap<(String, String, String), Standing>;

/// Audit every handled kind in the cluster, then its pods. Connection and permission problems
/// are reported as errors (exit code 2); a kind whose API is not served (a CRD not installed)
/// is a note.
pub(crate) async fn audit<W: Write>(
    target: &Target,
    owner_kinds: &[String],
    reporter: &mut Writer<W>,
) -> io::Result<()> {
    let (client, cluster) = match crate::cluster::client(target).await {
        Ok(client) => client,
        Err(e) => {
            reporter.error(InputError::whole("cluster", e));
            return Ok(());
        }
    };
    // A kind served in several versions lists the same objects in each; report each once.
    let mut seen = HashSet::new();
    let mut standings = Standings::new();
    for spec in KINDS {
        for version in spec.versions {
            let resource = api_resource(spec, version);
            let name = resource_name(&resource);
            let api = target.api(&client, &resource);
            let listed = list_each(&api, &ListParams::default(), |item| {
                if let Some(uid) = &item.metadata.uid
                    && !seen.insert(uid.clone())
                {
                    return Ok(());
                }
                let value = decide_input_of(&item, &resource)?;
                let decision = crate::decide::decide_as_created(reporter.policy(), &value, None);
                if let (Some(ns), Some(object)) = (&item.metadata.namespace, &item.metadata.name) {
                    let key = (ns.clone(), spec.kind.to_string(), object.clone());
                    standings.insert(key, Standing::of(&decision));
                }
                let source = Source::Cluster {
                    cluster: cluster.clone(),
                    resource: name.clone(),
                };
                reporter.record(&value, source, decision).map(drop)
            })
            .await;
            failed(listed, &name, &resource.plural, reporter)?;
        }
    }
    let opted_in = namespaces(target, &client, reporter).await;
    let resource = api_resource(&POD, "v1");
    let name = resource_name(&resource);
    let api = target.api(&client, &resource);
    let policy = reporter.policy().clone();
    let listed = list_each(&api, &ListParams::default(), |item| {
        let pod = decide_input_of(&item, &resource)?;
        let namespace = item.metadata.namespace.as_deref().unwrap_or_default();
        let cx = pods::Context {
            policy: &policy,
            owner_kinds,
            opted_in: opted_in.as_ref().map(|o| o.contains(namespace)),
        };
        let standing = |ns: &str, kind: &str, name: &str| {
            let key = (ns.to_string(), kind.to_string(), name.to_string());
            standings.get(&key).cloned()
        };
        if let Some(unlabeled) = pods::unlabeled(&pod, &cx, standing) {
            reporter.pod(unlabeled);
        }
        Ok::<_, io::Error>(())
    })
    .await;
    failed(listed, &name, &resource.plural, reporter)
}

/// Report a list that did not complete; only an output error ends the audit.
fn failed<W: Write>(
    listed: Result<(), ListError<io::Error>>,
    name: &str,
    plural: &str,
    reporter: &mut Writer<W>,
) -> io::Result<()> {
    match listed {
        Ok(()) => Ok(()),
        Err(ListError::Each(e)) => Err(e),
        Err(ListError::NotServed) => {
            reporter.note(format!(
                "{name}: not served by this cluster (CRD not installed), skipped"
            ));
            Ok(())
        }
        Err(e) => {
            let message = e.message(plural).unwrap_or_default();
            reporter.error(InputError::whole(name, message));
            Ok(())
        }
    }
}

/// The namespaces (of the target) that carry the opt-in label, or `None` with a note when they
/// cannot be read: then no pod is said to be in a namespace that did not opt in.
async fn namespaces<W: Write>(
    target: &Target,
    client: &Client,
    reporter: &mut Writer<W>,
) -> Option<HashSet<String>> {
    let resource = ApiResource::erase::<Namespace>(&());
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let mut params = ListParams::default();
    if !target.all_namespaces {
        let one = target
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_string());
        params = params.fields(&format!("metadata.name={one}"));
    }
    let key = reporter.policy().opt_out_label.clone();
    let mut opted_in = HashSet::new();
    let listed = list_each(&api, &params, |ns| {
        if namespace_mode(ns.metadata.labels.as_ref(), &key).is_some() {
            opted_in.extend(ns.metadata.name);
        }
        Ok::<_, ()>(())
    })
    .await;
    match listed {
        Ok(()) => Some(opted_in),
        Err(e) => {
            let why = e.message("namespaces").unwrap_or_default();
            reporter.note(format!(
                "namespaces/v1: {why}: pods are not checked for their namespace's opt-in label"
            ));
            None
        }
    }
}
