//! Writes the policy reports: a namespace whose records changed is written once its debounce
//! has passed (many changes, one write), and all writes share a token bucket, so a re-list of
//! a large cluster cannot flood the API server. Each write is a server-side apply of each of the
//! namespace's reports (their results lists are replaced, so results of deleted workloads
//! disappear), then a delete of the reports numbered past them; a namespace left without
//! reported workloads has its reports deleted. A report kind whose CRD is not served closes
//! its gate: one log line, a gauge, and a retry after a minute, then rarer up to an hour.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::Shared;
use super::metrics::{KindLabels, WriteLabels};
use super::policyreport::{self, Format, MANAGED_BY};

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

/// While a report CRD is not served, writes of that kind wait this long, doubling up to
/// [`CRD_RETRY_MAX`]: a missing CRD is a setup choice, not a blip worth hammering.
const CRD_RETRY_FIRST: Duration = Duration::from_secs(60);
const CRD_RETRY_MAX: Duration = Duration::from_secs(3600);

/// How writes of one report kind stand: the CRD served, or missing until a retry time with
/// the namespaces that are waiting for it.
#[derive(Debug, Default)]
pub(super) struct CrdGate {
    retry_at: Option<Instant>,
    backoff: Duration,
    waiting: BTreeSet<String>,
}

impl CrdGate {
    /// Whether a write may go now; if not, `namespace` waits for the CRD.
    pub(super) fn admit(&mut self, namespace: &str, now: Instant) -> bool {
        match self.retry_at {
            Some(at) if now < at => {
                self.waiting.insert(namespace.to_string());
                false
            }
            _ => true,
        }
    }

    /// A write was answered 404 for the kind: close the gate for the next backoff. Returns
    /// when to try again, and whether this is news (worth one log line).
    pub(super) fn missing(&mut self, namespace: &str, now: Instant) -> (Duration, bool) {
        let news = self.retry_at.is_none();
        self.backoff = (self.backoff * 2).clamp(CRD_RETRY_FIRST, CRD_RETRY_MAX);
        self.retry_at = Some(now + self.backoff);
        self.waiting.insert(namespace.to_string());
        (self.backoff, news)
    }

    /// A write went through: the namespaces that waited, if the gate was closed.
    pub(super) fn served(&mut self) -> Option<BTreeSet<String>> {
        self.retry_at.take()?;
        self.backoff = Duration::ZERO;
        Some(std::mem::take(&mut self.waiting))
    }
}

/// What became of one namespace's write.
enum Written {
    Done,
    /// The API server does not serve the report kind (its CRD is not installed).
    CrdMissing,
    Failed,
}

/// Write reports until the process ends.
pub(super) async fn run(shared: Arc<Shared>, client: kube::Client, formats: Vec<Format>) {
    let settings = &shared.settings;
    let mut written = HashMap::new();
    for format in &formats {
        mark_existing(&shared, &client, *format, &mut written).await;
    }
    let mut gates: Vec<CrdGate> = formats.iter().map(|_| CrdGate::default()).collect();
    let mut bucket = TokenBucket::new(settings.write_rate, settings.write_burst, Instant::now());
    loop {
        let namespace = shared.dirty.next().await;
        for (format, gate) in formats.iter().zip(&mut gates) {
            if !gate.admit(&namespace, Instant::now()) {
                continue;
            }
            while let Err(wait) = bucket.take(Instant::now()) {
                tokio::time::sleep(wait).await;
            }
            let count = written.entry((format.kind, namespace.clone())).or_default();
            match write(&shared, &client, *format, &namespace, count).await {
                Written::Done => reopened(&shared, *format, gate),
                Written::CrdMissing => closed(&shared, *format, gate, &namespace),
                Written::Failed => shared.dirty.mark(&namespace, settings.debounce),
            }
        }
    }
}

/// The CRD of `format` answered 404: stop writing that kind until the gate's retry time, when
/// this namespace is written again as the probe.
fn closed(shared: &Shared, format: Format, gate: &mut CrdGate, namespace: &str) {
    let (retry_in, news) = gate.missing(namespace, Instant::now());
    let labels = KindLabels { kind: format.kind };
    shared
        .metrics
        .report_crd_missing
        .get_or_create(&labels)
        .set(1);
    if news {
        tracing::warn!(
            kind = format.kind,
            api_version = %format.api_version(),
            retry_in_s = retry_in.as_secs(),
            "the API server does not serve this report kind (CRD not installed): no reports of \
             it are written; retrying rarely (install the CRD, or turn this report kind off)"
        );
    }
    shared.dirty.mark(namespace, retry_in);
}

/// A write went through: if the CRD was missing, it is served now; the waiting namespaces go.
fn reopened(shared: &Shared, format: Format, gate: &mut CrdGate) {
    let Some(waiting) = gate.served() else {
        return;
    };
    let labels = KindLabels { kind: format.kind };
    shared
        .metrics
        .report_crd_missing
        .get_or_create(&labels)
        .set(0);
    tracing::info!(
        kind = format.kind,
        namespaces = waiting.len(),
        "report kind served again; writing the namespaces that waited"
    );
    for namespace in &waiting {
        shared.dirty.mark(namespace, Duration::ZERO);
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

/// Reports of each kind and namespace already written: how many (they are numbered).
type WrittenCounts = HashMap<(&'static str, String), usize>;

/// Reports a previous run wrote are revisited, so one whose workloads went away is deleted.
async fn mark_existing(
    shared: &Shared,
    client: &kube::Client,
    format: Format,
    written: &mut WrittenCounts,
) {
    let selector = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
    match api(client, format, None)
        .list_metadata(&ListParams::default().labels(&selector))
        .await
    {
        Ok(list) => {
            for report in &list.items {
                let meta = &report.metadata;
                let (Some(ns), Some(index)) = (
                    meta.namespace.as_ref(),
                    meta.name.as_deref().and_then(policyreport::report_index),
                ) else {
                    continue;
                };
                let count = written.entry((format.kind, ns.clone())).or_default();
                *count = (*count).max(index + 1);
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

/// A 404 for a write means the kind is not served, unless the namespace itself is gone (the
/// API server then names it in the status).
fn crd_missing(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(s) if s.code == 404 && !s.message.contains("namespaces \""))
}

/// Apply the namespace's reports and delete those numbered past them; `count` is how many
/// there are, before and after.
async fn write(
    shared: &Shared,
    client: &kube::Client,
    format: Format,
    namespace: &str,
    count: &mut usize,
) -> Written {
    let reports = shared.store(|store| {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        policyreport::build(format, namespace, &store.reported_in(namespace), now)
    });
    let api = api(client, format, Some(namespace));
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut outcome = Ok(());
    for (index, report) in reports.iter().enumerate() {
        let name = policyreport::report_name(index);
        outcome = api
            .patch(&name, &params, &Patch::Apply(report))
            .await
            .map(drop);
        if outcome.is_err() {
            break;
        }
    }
    if outcome.is_ok() {
        for index in reports.len()..*count {
            outcome = match api
                .delete(&policyreport::report_name(index), &DeleteParams::default())
                .await
            {
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                other => other.map(drop),
            };
            if outcome.is_err() {
                break;
            }
        }
    }
    let (result, written) = match outcome {
        Ok(()) => {
            *count = reports.len();
            tracing::debug!(
                kind = format.kind,
                namespace,
                reports = *count,
                "reports written"
            );
            let result = if reports.is_empty() {
                "deleted"
            } else {
                "applied"
            };
            (result, Written::Done)
        }
        Err(error) if crd_missing(&error) => ("crd-missing", Written::CrdMissing),
        Err(error) => {
            tracing::warn!(kind = format.kind, namespace, %error, "cannot write the report; retrying later");
            *count = (*count).max(reports.len());
            ("failed", Written::Failed)
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
    written
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

    #[test]
    fn a_missing_crd_closes_the_gate_logs_once_and_retries_rarely() {
        let start = Instant::now();
        let mut gate = CrdGate::default();
        assert!(gate.admit("a", start));
        assert_eq!(gate.missing("a", start), (Duration::from_secs(60), true));
        // Other namespaces wait instead of writing.
        assert!(!gate.admit("b", start + Duration::from_secs(30)));
        // The retry probe fails again: twice as long, and no news.
        let retry = start + Duration::from_secs(60);
        assert!(gate.admit("a", retry));
        assert_eq!(gate.missing("a", retry), (Duration::from_secs(120), false));
        let mut later = retry;
        for _ in 0..10 {
            later += gate.missing("a", later).0;
        }
        assert_eq!(gate.missing("a", later).0, CRD_RETRY_MAX);
        // Served again: everything that waited is written, and the backoff starts over.
        let waiting = gate.served().unwrap_or_default();
        assert_eq!(waiting.into_iter().collect::<Vec<_>>(), ["a", "b"]);
        assert!(gate.admit("c", later));
        assert_eq!(gate.served(), None, "news only once");
        assert_eq!(gate.missing("c", later).0, CRD_RETRY_FIRST);
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
