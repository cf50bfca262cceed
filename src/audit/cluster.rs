//! `audit --cluster`: list what already runs, page by page, for every kind in the engine's
//! table, and report it like manifests. Read-only: it only issues `list` requests.

use std::collections::HashSet;
use std::io::{self, Write};
use std::path::PathBuf;

use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::Value;

use crate::engine::kinds::{KINDS, KindSpec};

use super::report::{InputError, Reporter, Source};

/// Objects per list request; the API server hands out a `continue` token for the rest.
const PAGE_SIZE: u32 = 250;
/// Upper bound on pages per resource (2.5 million objects), so a server that keeps returning
/// `continue` tokens cannot keep the audit running forever.
const MAX_PAGES: usize = 10_000;

/// Which cluster and namespaces to audit.
#[derive(Debug, Default)]
pub(crate) struct Target {
    /// One namespace; `None` means the context's default namespace (unless `all_namespaces`).
    pub namespace: Option<String>,
    pub all_namespaces: bool,
    pub context: Option<String>,
    pub kubeconfig: Option<PathBuf>,
}

/// Audit every handled kind in the cluster. Connection and permission problems are reported
/// as errors (exit code 2); a kind whose API is not served (a CRD not installed) is a note.
pub(crate) async fn audit<W: Write>(target: &Target, reporter: &mut Reporter<W>) -> io::Result<()> {
    let config = match config(target).await {
        Ok(config) => config,
        Err(e) => {
            reporter.error(InputError::whole("cluster", e));
            return Ok(());
        }
    };
    let cluster = config.cluster_url.to_string();
    let client = match Client::try_from(config) {
        Ok(client) => client,
        Err(e) => {
            reporter.error(InputError::whole(
                cluster,
                format!("cannot build a client: {e}"),
            ));
            return Ok(());
        }
    };
    // A kind served in several versions lists the same objects in each; report each once.
    let mut seen = HashSet::new();
    for spec in KINDS {
        for version in spec.versions {
            let resource = api_resource(spec, version);
            let api: Api<DynamicObject> = match (&target.namespace, target.all_namespaces) {
                (_, true) => Api::all_with(client.clone(), &resource),
                (Some(ns), false) => Api::namespaced_with(client.clone(), ns, &resource),
                (None, false) => Api::default_namespaced_with(client.clone(), &resource),
            };
            list_all(&api, &resource, &cluster, &mut seen, reporter).await?;
        }
    }
    Ok(())
}

/// The API coordinates of one row of the kinds table.
pub(crate) fn api_resource(spec: &KindSpec, version: &str) -> ApiResource {
    ApiResource {
        group: spec.group.to_string(),
        version: version.to_string(),
        api_version: if spec.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", spec.group)
        },
        kind: spec.kind.to_string(),
        plural: spec.resource.to_string(),
    }
}

async fn list_all<W: Write>(
    api: &Api<DynamicObject>,
    resource: &ApiResource,
    cluster: &str,
    seen: &mut HashSet<String>,
    reporter: &mut Reporter<W>,
) -> io::Result<()> {
    let name = if resource.group.is_empty() {
        format!("{}/{}", resource.plural, resource.version)
    } else {
        format!(
            "{}.{}/{}",
            resource.plural, resource.group, resource.version
        )
    };
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut params = ListParams::default().limit(PAGE_SIZE);
        if let Some(token) = &token {
            params = params.continue_token(token);
        }
        let page = match api.list(&params).await {
            Ok(page) => page,
            Err(kube::Error::Api(status)) if status.code == 404 => {
                reporter.note(format!(
                    "{name}: not served by this cluster (CRD not installed), skipped"
                ));
                return Ok(());
            }
            Err(kube::Error::Api(status)) if status.code == 403 => {
                reporter.error(InputError::whole(
                    name,
                    format!(
                        "forbidden: {}; the audit needs get and list on {}",
                        status.message, resource.plural
                    ),
                ));
                return Ok(());
            }
            Err(e) => {
                reporter.error(InputError::whole(name, format!("cannot list: {e}")));
                return Ok(());
            }
        };
        for item in page.items {
            if let Some(uid) = &item.metadata.uid
                && !seen.insert(uid.clone())
            {
                continue;
            }
            let value = engine_input(&item, resource)?;
            let source = Source::Cluster {
                cluster: cluster.to_string(),
                resource: name.clone(),
            };
            reporter.object(&value, source)?;
        }
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok(());
        }
    }
    reporter.error(InputError::whole(
        name,
        format!("stopped after {MAX_PAGES} pages: the list did not end"),
    ));
    Ok(())
}

/// An object from the API as the engine reads it.
pub(crate) fn engine_input(
    item: &DynamicObject,
    resource: &ApiResource,
) -> serde_json::Result<Value> {
    let mut value = serde_json::to_value(item)?;
    // Items of a list response carry no kind and apiVersion; the engine needs them.
    if let Value::Object(map) = &mut value {
        map.insert("apiVersion".into(), resource.api_version.clone().into());
        map.insert("kind".into(), resource.kind.clone().into());
    }
    Ok(value)
}

/// The client configuration for a kubeconfig file and context, or the in-cluster one.
pub(crate) async fn config(target: &Target) -> Result<Config, String> {
    let options = KubeConfigOptions {
        context: target.context.clone(),
        ..KubeConfigOptions::default()
    };
    match &target.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| format!("cannot read kubeconfig {}: {e}", path.display()))?;
            Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| format!("kubeconfig {}: {e}", path.display()))
        }
        None if target.context.is_some() => Config::from_kubeconfig(&options)
            .await
            .map_err(|e| format!("kubeconfig: {e}")),
        None => Config::infer()
            .await
            .map_err(|e| format!("no kubeconfig and not in a cluster: {e}")),
    }
}
