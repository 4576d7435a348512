//! Decode + validate throughput beside serde_json's raw parse of the same
//! bytes (see `cases`). `scripts/bench.sh` reads the medians criterion writes
//! under `criterion/<group>/<ours|baseline>/new/estimates.json` and reports
//! baseline time / our time.

mod cases;

use cases::{Prepared, CASES, SCALING_SIZES};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

/// Each side of each case: a second to warm up, then three of samples. With
/// 7 cases, 5 batch sizes and two sides that is about two minutes.
const WARM_UP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(3);
const SAMPLES: usize = 20;

fn decode(c: &mut Criterion) {
    for case in CASES {
        let prepared = Prepared::new(case);
        prepared.check();
        let mut group = c.benchmark_group(case.name);
        group.throughput(Throughput::Bytes(prepared.body.len().max(prepared.query.len()) as u64));
        group.bench_function("ours", |b| b.iter(|| black_box(black_box(&prepared).ours())));
        group.bench_function("baseline", |b| b.iter(|| black_box(black_box(&prepared).baseline())));
        group.finish();
    }
}

/// The /import JSON case at each batch size: how the cost per event grows.
fn scaling(c: &mut Criterion) {
    let mut group = c.benchmark_group("import_scaling");
    for size in SCALING_SIZES {
        let prepared = Prepared::new(cases::import_of(size));
        prepared.check();
        group.throughput(Throughput::Elements(size as u64));
        group.bench_with_input(BenchmarkId::new("ours", size), &prepared, |b, p| {
            b.iter(|| black_box(black_box(p).ours()))
        });
        group.bench_with_input(BenchmarkId::new("baseline", size), &prepared, |b, p| {
            b.iter(|| black_box(black_box(p).baseline()))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(WARM_UP).measurement_time(MEASURE).sample_size(SAMPLES);
    targets = decode, scaling
}
criterion_main!(benches);
