//! The per-review log line, off the request path. A review appends a small record to a bounded
//! queue and goes on; one background thread wakes every [`FLUSH_EVERY`] and formats and writes
//! what has queued. Reviews never wake it: under load, a thread wake-up per review cost the
//! server more CPU than the review itself. When the queue is full (stdout blocked by a stalled
//! log pipe, a burst faster than the terminal), the line is dropped and counted rather than
//! making an admission review wait.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;

/// The target the review line has always had (log pipelines may filter on it).
const TARGET: &str = "inference_webhook::server::routes";

/// How many lines may wait for the writer thread; at ~200 bytes a record, about 1.6 MB.
pub(super) const CAPACITY: usize = 8192;

/// How often the writer thread writes what has queued: a line is at most this late.
const FLUSH_EVERY: Duration = Duration::from_millis(10);

/// How long shutdown waits for the writer to write the last lines (a stalled log pipe must not
/// hold the process).
const LAST_FLUSH: Duration = Duration::from_secs(2);

/// One review's log fields. Never the object's contents: env values may be secrets.
#[derive(Debug)]
pub(super) struct ReviewLine {
    /// uid, kind, namespace, name, operation (as the request spelled it: `CREATE`, `DELETE`,
    /// ...) and backend.
    pub texts: Texts,
    pub dry_run: bool,
    pub route: &'static str,
    pub mode: &'static str,
    pub decision: &'static str,
    /// The evidence strength of the detection behind the backend (`command`, `entrypoint`,
    /// `image`), empty when nothing was detected.
    pub evidence: &'static str,
    pub patched: bool,
    pub findings: usize,
    pub latency_us: u64,
}

/// The text fields of a line, stored in the line itself when they fit (almost always: a uid, a
/// kind, names of at most 253 characters): the log path then allocates nothing per review, and
/// nothing a worker thread allocated is freed by the writer thread (blocks freed on another
/// thread than the one that allocated them are the ones an allocator is slowest to reuse; under
/// load they added megabytes).
#[derive(Debug)]
pub(super) struct Texts {
    text: Text,
    ends: [u16; 6],
}

/// Bytes kept inline; longer texts go to the heap.
const INLINE: usize = 240;

// The inline variant is large on purpose: it is what keeps the line off the heap.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Text {
    Inline([u8; INLINE]),
    Heap(String),
}

impl Texts {
    pub(super) fn new(fields: [&str; 6]) -> Texts {
        let total: usize = fields.iter().map(|f| f.len()).sum();
        let mut ends = [0; 6];
        let mut at = 0;
        for (end, field) in ends.iter_mut().zip(fields) {
            at += field.len();
            *end = u16::try_from(at).unwrap_or(u16::MAX);
        }
        let text = if total <= INLINE {
            let mut inline = [0; INLINE];
            let mut at = 0;
            for field in fields {
                inline[at..at + field.len()].copy_from_slice(field.as_bytes());
                at += field.len();
            }
            Text::Inline(inline)
        } else if total <= usize::from(u16::MAX) {
            Text::Heap(fields.concat())
        } else {
            // Not a real review's fields: keep none rather than cut a character.
            return Texts {
                text: Text::Heap(String::new()),
                ends: [0; 6],
            };
        };
        Texts { text, ends }
    }

    fn field(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        let range = usize::from(start)..usize::from(self.ends[i]);
        match &self.text {
            // The fields were whole strings, so every end is a character boundary.
            Text::Inline(bytes) => bytes
                .get(range)
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or_default(),
            Text::Heap(text) => text.get(range).unwrap_or_default(),
        }
    }
}

/// The queue, shared by every handler; dropping it writes what is left and stops the writer.
pub(super) struct ReviewLog {
    queue: Arc<Queue>,
    writer: Option<JoinHandle<()>>,
    /// Signalled by the writer when it has written its last line (in a mutex only to be
    /// `Sync`: it is read once, on drop).
    finished: Mutex<mpsc::Receiver<()>>,
}

struct Queue {
    lines: Mutex<Vec<ReviewLine>>,
    capacity: usize,
    dropped: Counter,
    closed: AtomicBool,
}

impl Queue {
    /// Swap the queued lines with `spare` (empty, with its capacity): both buffers keep their
    /// capacity, so in steady state neither is reallocated.
    fn swap(&self, spare: &mut Vec<ReviewLine>) {
        std::mem::swap(
            &mut *self.lines.lock().unwrap_or_else(PoisonError::into_inner),
            spare,
        );
    }
}

impl ReviewLog {
    /// Start the writer thread, which emits each line as a `tracing` event (so the format and
    /// filter flags apply as to every other line).
    pub(super) fn start(dropped: Counter) -> std::io::Result<ReviewLog> {
        Self::start_with(CAPACITY, dropped, emit)
    }

    fn start_with(
        capacity: usize,
        dropped: Counter,
        mut write: impl FnMut(ReviewLine) + Send + 'static,
    ) -> std::io::Result<ReviewLog> {
        let queue = Arc::new(Queue {
            lines: Mutex::new(Vec::new()),
            capacity,
            dropped,
            closed: AtomicBool::new(false),
        });
        let (finish, finished) = mpsc::channel();
        let shared = Arc::clone(&queue);
        let writer = std::thread::Builder::new()
            .name("review-log".into())
            .spawn(move || {
                let mut batch = Vec::new();
                loop {
                    let closing = shared.closed.load(Ordering::Acquire);
                    shared.swap(&mut batch);
                    batch.drain(..).for_each(&mut write);
                    if closing {
                        break;
                    }
                    std::thread::park_timeout(FLUSH_EVERY);
                }
                finish.send(()).ok();
            })?;
        Ok(ReviewLog {
            queue,
            writer: Some(writer),
            finished: Mutex::new(finished),
        })
    }

    /// Whether a line would be written at all: skip building one when info is filtered out.
    pub(super) fn enabled() -> bool {
        tracing::enabled!(target: TARGET, tracing::Level::INFO)
    }

    /// Queue a line; never blocks on the writer (the lock is only held to append or to take the
    /// queue).
    pub(super) fn record(&self, line: ReviewLine) {
        let mut lines = self
            .queue
            .lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if lines.len() < self.queue.capacity {
            lines.push(line);
        } else {
            drop(lines);
            self.queue.dropped.inc();
        }
    }
}

impl Drop for ReviewLog {
    fn drop(&mut self) {
        self.queue.closed.store(true, Ordering::Release);
        if let Some(writer) = self.writer.take() {
            writer.thread().unpark();
            // The writer's last lines, unless the log pipe is stalled.
            let finished = self
                .finished
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner);
            if finished.recv_timeout(LAST_FLUSH).is_ok() {
                writer.join().ok();
            }
        }
    }
}

fn emit(line: ReviewLine) {
    let t = &line.texts;
    tracing::info!(
        target: TARGET,
        uid = %t.field(0),
        kind = %t.field(1),
        namespace = %t.field(2),
        name = %t.field(3),
        operation = %t.field(4),
        dry_run = line.dry_run,
        route = line.route,
        mode = line.mode,
        decision = line.decision,
        backend = %t.field(5),
        evidence = line.evidence,
        patched = line.patched,
        findings = line.findings,
        latency_us = line.latency_us,
        "review"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(uid: &str) -> ReviewLine {
        ReviewLine {
            texts: Texts::new([uid, "Deployment", "ml", "qwen", "CREATE", "vllm"]),
            dry_run: false,
            route: "mutate",
            mode: "enforce",
            decision: "patched",
            evidence: "command",
            patched: true,
            findings: 0,
            latency_us: 20,
        }
    }

    #[test]
    fn texts_keep_each_field_inline_or_on_the_heap() {
        let fields = ["u-1", "Deployment", "ml", "qwen-ä", "CREATE", "vllm"];
        let inline = Texts::new(fields);
        assert!(matches!(inline.text, Text::Inline(_)));
        let long = "n".repeat(300);
        let heap = Texts::new(["u-2", "Deployment", "ml", &long, "UPDATE", ""]);
        assert!(matches!(heap.text, Text::Heap(_)));
        for (texts, want) in [
            (&inline, fields),
            (
                &heap,
                ["u-2", "Deployment", "ml", long.as_str(), "UPDATE", ""],
            ),
        ] {
            let got: Vec<&str> = (0..6).map(|i| texts.field(i)).collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let (taken_tx, taken) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let dropped = Counter::default();
        let log = ReviewLog::start_with(1, dropped.clone(), move |l: ReviewLine| {
            taken_tx.send(l.texts.field(0).to_string()).ok();
            released.recv().ok();
        })
        .unwrap_or_else(|e| panic!("{e}"));

        log.record(line("a"));
        // The writer holds "a" and is stuck writing it.
        assert_eq!(taken.recv().ok().as_deref(), Some("a"));
        log.record(line("b")); // waits in the queue (capacity 1)
        log.record(line("c")); // queue full: dropped, and record() returned at once
        assert_eq!(dropped.get(), 1);

        release.send(()).ok();
        assert_eq!(taken.recv().ok().as_deref(), Some("b"));
        release.send(()).ok();
        drop(log);
        assert!(taken.recv().is_err(), "\"c\" was dropped, never written");
    }
}
