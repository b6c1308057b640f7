//! The GEMMs of a batch-128 training step and of evaluation, called as the
//! trainer calls them (same strides and splits), at 1 and 2 threads.
//! Throughput is in FLOP: criterion's "elem/s" reads as FLOP/s.

mod common;

use common::{mnist, pool, tid, Fixture, Product, HIDDEN, THREADS};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rayon::prelude::*;
use simplenn::eval::EVAL_BLOCK;
use simplenn::model::{Dims, Init, Params};
use simplenn::train::parts_for;
use std::time::Duration;

/// The trainer's default batch.
const BATCH: usize = 128;

fn sgemm(c: &mut Criterion) {
    let data = mnist();
    let dims = Dims::mnist(&[HIDDEN]);
    let mut group = c.benchmark_group("sgemm");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for t in THREADS {
        let pool = pool(t);
        let mut f = pool.install(|| Fixture::new(&data, BATCH, t));
        for prod in Product::ALL {
            group.throughput(Throughput::Elements(prod.flop(dims, BATCH)));
            group.bench_function(BenchmarkId::new(prod.name(), tid(t)), |b| {
                pool.install(|| b.iter(|| prod.run(&mut f)))
            });
        }

        // Evaluation: each part runs forward_eval's two GEMMs on its own
        // 256-row block, one block per part at a time.
        let parts = parts_for(t);
        let Dims { d, h, k } = dims;
        let params = Params::init(dims, Init::He, 1);
        let p = params.parts();
        let rows = EVAL_BLOCK * parts;
        let mut x = vec![0.0f32; rows * d];
        let mut y = vec![0u8; rows];
        data.test.gather_range(0..rows, &mut x, &mut y);
        let mut a1 = vec![0.0f32; rows * h];
        let mut z2 = vec![0.0f32; rows * k];
        group.throughput(Throughput::Elements(2 * (rows * d * h) as u64));
        group.bench_function(BenchmarkId::new("eval_z1", tid(t)), |b| {
            pool.install(|| {
                b.iter(|| {
                    x.par_chunks(EVAL_BLOCK * d)
                        .zip(a1.par_chunks_mut(EVAL_BLOCK * h))
                        .for_each(|(x, a1)| p.z1(dims, x, a1))
                })
            })
        });
        group.throughput(Throughput::Elements(2 * (rows * h * k) as u64));
        group.bench_function(BenchmarkId::new("eval_z2", tid(t)), |b| {
            pool.install(|| {
                b.iter(|| {
                    a1.par_chunks(EVAL_BLOCK * h)
                        .zip(z2.par_chunks_mut(EVAL_BLOCK * k))
                        .for_each(|(a1, z2)| p.z2(dims, a1, z2))
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, sgemm);
criterion_main!(benches);
