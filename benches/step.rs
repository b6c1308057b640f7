//! One full `Trainer::step` (gather, forward, loss, backward, update) at
//! batch 32, 128 and 512, beside the bare five-GEMM sequence of the same
//! shapes, threads and splits: `step / gemms` is the overhead of everything
//! that is not GEMM. Throughput in FLOP of the five GEMMs.
//!
//! `paired_b*`: the same two, timed back to back inside every sample (a
//! run of steps, then as many bare GEMM sequences), so both see the same
//! machine; the median over samples of `step time / GEMM time` goes to
//! `target/criterion/step/paired_bB/Tt/ratio.json`. On a shared machine
//! whose speed drifts between the seconds `step_b*` and `gemms_b*` run in,
//! this ratio is the one to read.
//!
//! `gather`: the batch gather alone (128 shuffled images, u8 → f32), as
//! `Dataset::gather` does it (prefetching rows ahead) and as the plain loop
//! without prefetch, on one thread.

mod common;

use common::{five_gemms, mnist, pool, tid, Fixture, HIDDEN, THREADS};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use simplenn::data::{to_unit, MNIST_PIXELS};
use simplenn::model::{Dims, Init, Params};
use simplenn::train::{parts_for, shuffle_epoch, Trainer};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn step(c: &mut Criterion) {
    let data = mnist();
    let dims = Dims::mnist(&[HIDDEN]);
    let n_train = data.train.len() - 5000;
    let mut order = vec![0u32; n_train];
    shuffle_epoch(&mut order, 1, 1);
    let mut group = c.benchmark_group("step");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for t in THREADS {
        let pool = pool(t);
        for batch in [32, 128, 512] {
            group.throughput(Throughput::Elements(
                dims.train_flop_per_row() * batch as u64,
            ));
            let mut trainer =
                Trainer::new(Params::init(dims, Init::He, 1), parts_for(t), 0.9, 0.2, 1);
            let batches: Vec<&[u32]> = order.chunks_exact(batch).collect();
            let mut i = 0;
            group.bench_function(BenchmarkId::new(format!("step_b{batch}"), tid(t)), |b| {
                pool.install(|| {
                    b.iter(|| {
                        i = (i + 1) % batches.len();
                        trainer.step(&data.train, batches[i], 0.01)
                    })
                })
            });
            let mut f = pool.install(|| Fixture::new(&data, batch, t));
            group.bench_function(BenchmarkId::new(format!("gemms_b{batch}"), tid(t)), |b| {
                pool.install(|| b.iter(|| five_gemms(&mut f)))
            });
            let mut ratios = Vec::new();
            group.bench_function(BenchmarkId::new(format!("paired_b{batch}"), tid(t)), |b| {
                pool.install(|| {
                    b.iter_custom(|iters| {
                        let start = Instant::now();
                        for _ in 0..iters {
                            i = (i + 1) % batches.len();
                            trainer.step(&data.train, batches[i], 0.01);
                        }
                        let steps = start.elapsed();
                        let start = Instant::now();
                        for _ in 0..iters {
                            five_gemms(&mut f);
                        }
                        let gemms = start.elapsed();
                        ratios.push(steps.as_secs_f64() / gemms.as_secs_f64());
                        steps + gemms
                    })
                })
            });
            write_ratio(&format!("paired_b{batch}"), &tid(t), &mut ratios);
        }
    }
    group.finish();
}

/// Median of the per-sample `step / gemms` ratios, printed and saved as JSON
/// beside criterion's results for `perf_table`.
fn write_ratio(name: &str, id: &str, ratios: &mut [f64]) {
    if ratios.is_empty() {
        return; // filtered out
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    println!(
        "step/{name}/{id}: step / bare GEMMs, median of {} paired samples: {median:.3}",
        ratios.len()
    );
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("criterion/step").join(name).join(id);
    let json = format!(
        "{{\"median_ratio\":{median},\"samples\":{},\"min\":{},\"max\":{}}}\n",
        ratios.len(),
        ratios[0],
        ratios[ratios.len() - 1]
    );
    if let Err(e) =
        std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(dir.join("ratio.json"), json))
    {
        eprintln!("cannot write {}: {e}", dir.display());
    }
}

fn gather(c: &mut Criterion) {
    let data = mnist();
    let n_train = data.train.len() - 5000;
    let mut order = vec![0u32; n_train];
    shuffle_epoch(&mut order, 1, 1);
    let batches: Vec<&[u32]> = order.chunks_exact(128).collect();
    let mut x = vec![0.0f32; 128 * MNIST_PIXELS];
    let mut y = vec![0u8; 128];
    let mut group = c.benchmark_group("gather");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(128));
    let mut i = 0;
    group.bench_function("prefetch_b128", |b| {
        b.iter(|| {
            i = (i + 1) % batches.len();
            data.train.gather(batches[i], &mut x, &mut y)
        })
    });
    group.bench_function("plain_b128", |b| {
        b.iter(|| {
            i = (i + 1) % batches.len();
            for ((row, yy), &j) in x.chunks_exact_mut(MNIST_PIXELS).zip(&mut y).zip(batches[i]) {
                to_unit(data.train.image(j as usize), row);
                *yy = data.train.label(j as usize);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, step, gather);
criterion_main!(benches);
