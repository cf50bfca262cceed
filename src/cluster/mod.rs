//! What `audit --cluster` and the reporter share to read a cluster: the client, the API
//! coordinates of the kinds table's rows, paged lists, the engine's input from a listed object,
//! the namespaces' opt-in, and the inference pods that lack the labels or the port (`pods`).
//! Read-only: nothing here writes to the API server.

pub mod pods;

use std::collections::BTreeMap;
use std::path::PathBuf;

use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::Value;

use crate::admission::Mode;
use crate::decide::kinds::KindSpec;

/// Objects per list request; the API server hands out a `continue` token for the rest.
const PAGE_SIZE: u32 = 250;
/// Upper bound on pages per resource (2.5 million objects), so a server that keeps returning
/// `continue` tokens cannot keep a list running forever.
const MAX_PAGES: usize = 10_000;

/// Which cluster and namespaces to read.
#[derive(Debug, Default)]
pub struct Target {
    /// One namespace; `None` means the context's default namespace (unless `all_namespaces`).
    pub namespace: Option<String>,
    pub all_namespaces: bool,
    pub context: Option<String>,
    pub kubeconfig: Option<PathBuf>,
}

impl Target {
    /// The API of one resource in the namespaces this target reads.
    pub fn api(&self, client: &Client, resource: &ApiResource) -> Api<DynamicObject> {
        match (&self.namespace, self.all_namespaces) {
            (_, true) => Api::all_with(client.clone(), resource),
            (Some(ns), false) => Api::namespaced_with(client.clone(), ns, resource),
            (None, false) => Api::default_namespaced_with(client.clone(), resource),
        }
    }
}

/// The client configuration for a kubeconfig file and context, or the in-cluster one.
pub async fn config(target: &Target) -> Result<Config, String> {
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

/// The client for a target, and the cluster's URL to name it by.
pub async fn client(target: &Target) -> Result<(Client, String), String> {
    let config = config(target).await?;
    let cluster = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|e| format!("cannot build a client: {e}"))?;
    Ok((client, cluster))
}

/// The API coordinates of one row of the kinds table.
pub fn api_resource(spec: &KindSpec, version: &str) -> ApiResource {
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

/// `resource.group/version` (`resource/version` in the core group): how reports, metrics and
/// logs name a listed resource.
pub fn resource_name(resource: &ApiResource) -> String {
    if resource.group.is_empty() {
        format!("{}/{}", resource.plural, resource.version)
    } else {
        format!(
            "{}.{}/{}",
            resource.plural, resource.group, resource.version
        )
    }
}

/// An object from the API as the engine reads it.
pub fn decide_input_of(item: &DynamicObject, resource: &ApiResource) -> serde_json::Result<Value> {
    let mut value = serde_json::to_value(item)?;
    // Items of a list response carry no kind and apiVersion; the engine needs them.
    if let Value::Object(map) = &mut value {
        map.insert("apiVersion".into(), resource.api_version.clone().into());
        map.insert("kind".into(), resource.kind.clone().into());
    }
    Ok(value)
}

/// Why a list did not complete.
#[derive(Debug)]
pub enum ListError<E> {
    /// 404: the API server does not serve the resource (its CRD is not installed).
    NotServed,
    /// 403, with the API server's message.
    Forbidden(String),
    /// Any other failure.
    Failed(String),
    /// The server kept returning `continue` tokens past [`MAX_PAGES`].
    Endless,
    /// What `each` returned.
    Each(E),
}

impl<E> ListError<E> {
    /// The message for a list of `plural` that failed (`None` for [`ListError::Each`]).
    pub fn message(&self, plural: &str) -> Option<String> {
        match self {
            ListError::NotServed => Some("not served by this cluster (CRD not installed)".into()),
            ListError::Forbidden(message) => Some(format!(
                "forbidden: {message}; the audit needs get and list on {plural}"
            )),
            ListError::Failed(e) => Some(format!("cannot list: {e}")),
            ListError::Endless => Some(format!(
                "stopped after {MAX_PAGES} pages: the list did not end"
            )),
            ListError::Each(_) => None,
        }
    }
}

/// List every object of `api` that `params` select, page by page, handing each to `each`.
pub async fn list_each<E>(
    api: &Api<DynamicObject>,
    params: &ListParams,
    mut each: impl FnMut(DynamicObject) -> Result<(), E>,
) -> Result<(), ListError<E>> {
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut params = params.clone().limit(PAGE_SIZE);
        if let Some(token) = &token {
            params = params.continue_token(token);
        }
        let page = match api.list(&params).await {
            Ok(page) => page,
            Err(kube::Error::Api(status)) if status.code == 404 => {
                return Err(ListError::NotServed);
            }
            Err(kube::Error::Api(status)) if status.code == 403 => {
                return Err(ListError::Forbidden(status.message));
            }
            Err(e) => return Err(ListError::Failed(e.to_string())),
        };
        for item in page.items {
            each(item).map_err(ListError::Each)?;
        }
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok(());
        }
    }
    Err(ListError::Endless)
}

/// The mode a namespace opted into with the opt-in label (the policy's `optOutLabel` key), as
/// the webhook configurations' namespace selectors read it: `enabled` is enforce, `warn` and
/// `audit` are themselves; anything else is not reviewed at all.
pub fn namespace_mode(labels: Option<&BTreeMap<String, String>>, key: &str) -> Option<Mode> {
    match labels?.get(key)?.as_str() {
        "enabled" => Some(Mode::Enforce),
        "warn" => Some(Mode::Warn),
        "audit" => Some(Mode::Audit),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_opt_in_label_gives_the_namespace_mode() {
        let mode = |value: &str| {
            let labels = BTreeMap::from([("inference-monitoring".to_string(), value.to_string())]);
            namespace_mode(Some(&labels), "inference-monitoring")
        };
        assert_eq!(mode("enabled"), Some(Mode::Enforce));
        assert_eq!(mode("warn"), Some(Mode::Warn));
        assert_eq!(mode("audit"), Some(Mode::Audit));
        assert_eq!(
            mode("enforce"),
            None,
            "the selectors' value for enforce is enabled"
        );
        assert_eq!(namespace_mode(None, "inference-monitoring"), None);
    }

    #[test]
    fn core_resources_are_named_without_a_group() {
        let pods = api_resource(&crate::decide::kinds::POD, "v1");
        assert_eq!(resource_name(&pods), "pods/v1");
        let deployments = api_resource(&crate::decide::kinds::KINDS[0], "v1");
        assert_eq!(resource_name(&deployments), "deployments.apps/v1");
    }
}
