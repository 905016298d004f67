//! Receiving a fixture the way its manifest's `receive_plan` says.

use engine::context::{ManualClock, SplitMix64};
use engine::dsl::DatasetId;
use engine::recv::RecvOptions;
use engine::send::NoInterrupt;
use engine::spa::Pool;
use engine::vdev::MemDevice;
use serde_json::Value;

use super::{fixture_stream, fixture_text};

/// A 512 MiB in-memory pool named `fxp`, as the fixtures' source pool.
pub fn new_pool() -> Pool {
    Pool::create(
        Box::new(MemDevice::new(512 << 20, 512)),
        "fxp",
        Box::new(ManualClock::new(1_800_000_000)),
        Box::new(SplitMix64::new(5)),
    )
    .unwrap()
}

pub fn manifest(name: &str) -> Value {
    serde_json::from_str(&fixture_text(name, ".manifest.json")).unwrap()
}

/// Receives a fixture's `receive_plan` into `fxp/v_<label>` (label `T` is
/// the fixture's own filesystem; another label is a separate one received
/// first, a clone stream's origin) and returns the snapshots received, in
/// order.
pub fn receive_plan(pool: &mut Pool, name: &str) -> Vec<DatasetId> {
    let m = manifest(name);
    let mut received: Vec<DatasetId> = Vec::new();
    for step in m["receive_plan"].as_array().unwrap() {
        let stream = step["stream"].as_str().unwrap().trim_end_matches(".zsend");
        let label = step["target"].as_str().unwrap();
        let target = format!("fxp/v_{label}");
        let bytes = fixture_stream(stream);
        let begin_flags = manifest(stream)["begin"]["flags"].as_u64().unwrap();
        let origin = (begin_flags & 1 != 0)
            .then(|| pool.dataset_name(*received.last().expect("an origin first")));
        let options = RecvOptions {
            origin,
            ..RecvOptions::default()
        };
        let ids = pool
            .receive(&target, &bytes[..], &options, &mut NoInterrupt)
            .unwrap_or_else(|e| panic!("{name}: receiving {stream}: {e}"));
        received.extend(ids);
    }
    received
}
