//! Whole reviews of a fixture in a loop, for instruction counts (BENCHMARKS.md): callgrind's
//! count does not change with the machine's load or speed, so it compares builds where timings
//! on a shared machine cannot.
//!
//! ```sh
//! cargo build --release --example review_loop
//! valgrind --tool=callgrind target/release/examples/review_loop review-vllm-deployment.json 2000
//! ```
//!
//! Arguments: a file of `tests/fixtures`, the number of reviews (default 2,000), and `parse` to
//! only parse. The body is minified first, as kube-apiserver sends it; each review is
//! mutate/enforce, as `benches/review.rs` runs it.

use inference_webhook::admission::{self, Mode, Route};
use inference_webhook::decide::Policy;

// The allocator the server binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut argv = std::env::args().skip(1);
    let name = argv
        .next()
        .ok_or("usage: review_loop FIXTURE [N] [parse]")?;
    let count: usize = argv.next().map_or(Ok(2000), |n| n.parse())?;
    let parse_only = argv.next().as_deref() == Some("parse");
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let value: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    let body = serde_json::to_vec(&value)?;
    let policy = Policy::default();
    let mut answered = 0usize;
    for _ in 0..count {
        let body = std::hint::black_box(body.as_slice());
        answered += if parse_only {
            usize::from(admission::parse(body).is_ok())
        } else {
            usize::from(admission::review(body, &policy, Mode::Enforce, Route::Mutate).is_ok())
        };
    }
    if answered != count {
        return Err(format!("{} of {count} reviews failed", count - answered).into());
    }
    Ok(())
}
