//! Writes the policy reports: a namespace whose records changed is written once its debounce
//! has passed (many changes, one write), and all writes share a token bucket, so a re-list of
//! a large cluster cannot flood the API server. Each write is a server-side apply of the whole
//! report (the results list is replaced, so results of deleted workloads disappear); a
//! namespace left without reported workloads has its report deleted.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::Shared;
use super::metrics::WriteLabels;
use super::policyreport::{self, Format, MANAGED_BY, REPORT_NAME};

/// Field manager of the server-side applies.
const FIELD_MANAGER: &str = "inference-webhook-reporter";

/// A token bucket: `burst` writes at once, then `rate` per second.
#[derive(Debug)]
pub(super) struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(super) fn new(rate: f64, burst: u32, now: Instant) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate: rate.max(0.001),
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Take a token, or say how long until one is there.
    pub(super) fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

/// Namespaces waiting for a write, each with when it is due.
#[derive(Default)]
pub struct Dirty {
    due: Mutex<BTreeMap<String, Instant>>,
    wake: Notify,
}

impl Dirty {
    /// Mark a namespace changed. The first change starts its debounce; later ones join it, so
    /// a namespace that keeps changing is still written every `debounce`.
    pub fn mark(&self, namespace: &str, debounce: Duration) {
        let mut due = self.due.lock().unwrap_or_else(|e| e.into_inner());
        if !due.contains_key(namespace) {
            due.insert(namespace.to_string(), Instant::now() + debounce);
            self.wake.notify_one();
        }
    }

    /// The namespace due first, once it is due.
    async fn next(&self) -> String {
        loop {
            let first = {
                let due = self.due.lock().unwrap_or_else(|e| e.into_inner());
                due.iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(ns, at)| (ns.clone(), *at))
            };
            match first {
                Some((ns, at)) if at <= Instant::now() => {
                    self.due
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&ns);
                    return ns;
                }
                Some((_, at)) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = self.wake.notified() => {}
                    }
                }
                None => self.wake.notified().await,
            }
        }
    }
}

/// Write reports until the process ends.
pub(super) async fn run(shared: Arc<Shared>, client: kube::Client, formats: Vec<Format>) {
    let settings = &shared.settings;
    for format in &formats {
        mark_existing(&shared, &client, *format).await;
    }
    let mut bucket = TokenBucket::new(settings.write_rate, settings.write_burst, Instant::now());
    loop {
        let namespace = shared.dirty.next().await;
        for format in &formats {
            while let Err(wait) = bucket.take(Instant::now()) {
                tokio::time::sleep(wait).await;
            }
            write(&shared, &client, *format, &namespace).await;
        }
    }
}

fn api(client: &kube::Client, format: Format, namespace: Option<&str>) -> Api<DynamicObject> {
    let resource = ApiResource {
        group: format.group.into(),
        version: format.version.into(),
        api_version: format.api_version(),
        kind: format.kind.into(),
        plural: format.plural.into(),
    };
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

/// Reports a previous run wrote are revisited, so one whose workloads went away is deleted.
async fn mark_existing(shared: &Shared, client: &kube::Client, format: Format) {
    let selector = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
    match api(client, format, None)
        .list_metadata(&ListParams::default().labels(&selector))
        .await
    {
        Ok(list) => {
            for ns in list
                .items
                .iter()
                .filter_map(|r| r.metadata.namespace.as_ref())
            {
                shared.dirty.mark(ns, shared.settings.debounce);
            }
        }
        Err(error) => tracing::warn!(
            kind = format.kind,
            %error,
            "cannot list existing reports; stale ones are cleaned when their namespace changes"
        ),
    }
}

async fn write(shared: &Shared, client: &kube::Client, format: Format, namespace: &str) {
    let report = shared.store(|store| {
        let records = store.reported_in(namespace);
        (!records.is_empty()).then(|| {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            policyreport::build(format, namespace, &records, now)
        })
    });
    let api = api(client, format, Some(namespace));
    let (result, outcome) = match report {
        Some(report) => {
            let params = PatchParams::apply(FIELD_MANAGER).force();
            let outcome = api
                .patch(REPORT_NAME, &params, &Patch::Apply(&report))
                .await
                .map(drop);
            ("applied", outcome)
        }
        None => {
            let outcome = match api.delete(REPORT_NAME, &DeleteParams::default()).await {
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                other => other.map(drop),
            };
            ("deleted", outcome)
        }
    };
    let result = match outcome {
        Ok(()) => {
            tracing::debug!(kind = format.kind, namespace, result, "report written");
            result
        }
        Err(error) => {
            tracing::warn!(kind = format.kind, namespace, %error, "cannot write the report; retrying later");
            // Try again after another debounce.
            shared.dirty.mark(namespace, shared.settings.debounce);
            "failed"
        }
    };
    shared
        .metrics
        .report_writes
        .get_or_create(&WriteLabels {
            kind: format.kind,
            result,
        })
        .inc();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2.0, 3, start);
        for _ in 0..3 {
            assert_eq!(bucket.take(start), Ok(()));
        }
        let wait = bucket.take(start).expect_err("the burst is spent");
        assert_eq!(wait, Duration::from_millis(500));
        assert_eq!(bucket.take(start + Duration::from_millis(500)), Ok(()));
        // Idle time refills up to the burst, not beyond.
        let later = start + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(bucket.take(later), Ok(()));
        }
        assert!(bucket.take(later).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_namespace_is_written_once_per_debounce() {
        let dirty = Dirty::default();
        let debounce = Duration::from_secs(10);
        let start = Instant::now();
        dirty.mark("a", debounce);
        tokio::time::advance(Duration::from_secs(3)).await;
        dirty.mark("b", debounce);
        dirty.mark("a", debounce);
        assert_eq!(dirty.next().await, "a");
        assert_eq!(Instant::now() - start, Duration::from_secs(10));
        assert_eq!(dirty.next().await, "b");
        assert_eq!(Instant::now() - start, Duration::from_secs(13));
    }
}
