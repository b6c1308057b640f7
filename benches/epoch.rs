//! A full training epoch at the default settings (55,000 images, batch 128,
//! hidden 256, momentum 0.9, dropout 0.2) and the evaluation of the 10,000
//! test images, at 1 and 2 threads. Throughput in samples.

mod common;

use common::{mnist, pool, tid, HIDDEN, THREADS};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use simplenn::eval::Evaluator;
use simplenn::model::{Dims, Init, Params};
use simplenn::train::{parts_for, shuffle_epoch, Trainer};
use std::time::Duration;

const BATCH: usize = 128;
const VAL: usize = 5000;

fn epoch(c: &mut Criterion) {
    let data = mnist();
    let dims = Dims::mnist(&[HIDDEN]);
    let n_train = data.train.len() - VAL;
    let mut group = c.benchmark_group("epoch");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    for t in THREADS {
        let pool = pool(t);
        let mut trainer = Trainer::new(Params::init(dims, Init::He, 1), parts_for(t), 0.9, 0.2, 1);
        let mut order = vec![0u32; n_train];
        let mut e = 0;
        group.throughput(Throughput::Elements(n_train as u64));
        group.bench_function(BenchmarkId::new("train", tid(t)), |b| {
            pool.install(|| {
                b.iter(|| {
                    e += 1;
                    shuffle_epoch(&mut order, 1, e);
                    let mut correct = 0;
                    for idx in order.chunks(BATCH) {
                        correct += trainer.step(&data.train, idx, 0.01).correct;
                    }
                    correct
                })
            })
        });
    }
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let params = Params::init(dims, Init::He, 1);
    for t in THREADS {
        let pool = pool(t);
        let mut ev = Evaluator::new(&params, parts_for(t));
        group.throughput(Throughput::Elements(data.test.len() as u64));
        group.bench_function(BenchmarkId::new("eval10k", tid(t)), |b| {
            pool.install(|| b.iter(|| ev.evaluate(&params, &data.test, 0..data.test.len())))
        });
    }
    group.finish();
}

criterion_group!(benches, epoch);
criterion_main!(benches);
