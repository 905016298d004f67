//! Simulation throughput: seeds per second on one core (criterion runs
//! one thread; its `elem/s` is seeds/s), for the `smoke` scenario, and for
//! the full `mix`, the `deep`, the `concurrent` and the `redundant`
//! (mirrors) scenarios with every fault kind on, as
//! `cargo sim campaign` runs them. Each iteration is the next seed, so the figure is a mean over
//! many different runs. `cargo bench -p sim --bench campaign`.

#[cfg(madsim)]
mod bench {
    use std::time::Duration;

    use criterion::{Criterion, Throughput};
    use sim::runner::{RunConfig, run};

    fn seeds(c: &mut Criterion, scenario: &str, faults: Option<&str>) {
        let template =
            RunConfig::from_options(0, scenario, faults, None, &[]).expect("a built-in scenario");
        let mut group = c.benchmark_group("campaign");
        group.throughput(Throughput::Elements(1));
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(30));
        let name = format!("{scenario}, faults {}", faults.unwrap_or("of the scenario"));
        let mut seed = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut config = template.clone();
                config.seed = seed;
                seed += 1;
                let report = run(&config);
                assert!(
                    report.violation.is_none(),
                    "seed {} of {scenario} found a violation: run `cargo sim run --seed {} --scenario {scenario}`",
                    config.seed,
                    config.seed
                );
            })
        });
        group.finish();
    }

    pub fn benches(c: &mut Criterion) {
        seeds(c, "smoke", None);
        seeds(c, "mix", Some("all"));
        seeds(c, "deep", Some("all"));
        seeds(c, "concurrent", Some("all"));
        seeds(c, "redundant", Some("all"));
    }
}

#[cfg(madsim)]
criterion::criterion_group!(benches, bench::benches);
#[cfg(madsim)]
criterion::criterion_main!(benches);

#[cfg(not(madsim))]
fn main() {
    eprintln!("the simulation needs --cfg madsim (set by .cargo/config.toml; unset RUSTFLAGS)");
}
