//! A full training epoch at the default settings (55,000 images, batch 128,
//! momentum 0.9, dropout 0.2) and the evaluation of the 10,000 test images,
//! at 1 and 2 threads, for the default 784-256-10 network (`train`,
//! `eval10k`) and the deep 784-1024-1024-10 one (`train_h1024-1024`,
//! `eval10k_h1024-1024`: ~12× and ~9× the FLOP, so 10 samples of one
//! epoch or one evaluation each). Throughput in samples.

mod common;

use common::{deep_net, default_net, mnist, net_tag, pool, threads, tid};
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use simplenn::eval::Evaluator;
use simplenn::model::{Init, Params};
use simplenn::train::{parts_for, shuffle_epoch, Trainer};
use std::time::Duration;

const BATCH: usize = 128;
const VAL: usize = 5000;

fn epoch(c: &mut Criterion) {
    common::stamp_cpu();
    let data = mnist();
    let n_train = data.train.len() - VAL;
    let nets = [default_net(), deep_net()];
    let mut group = c.benchmark_group("epoch");
    for t in threads() {
        let pool = pool(t);
        for dims in &nets {
            if net_tag(dims).is_empty() {
                group
                    .sample_size(10)
                    .sampling_mode(SamplingMode::Auto)
                    .warm_up_time(Duration::from_secs(1))
                    .measurement_time(Duration::from_secs(6));
            } else {
                // Several seconds an epoch: one epoch per sample, 10 samples.
                group
                    .sample_size(10)
                    .sampling_mode(SamplingMode::Flat)
                    .warm_up_time(Duration::from_millis(100))
                    .measurement_time(Duration::from_secs(20));
            }
            let mut trainer = Trainer::new(
                Params::init(dims.clone(), Init::He, 1),
                parts_for(t),
                0.9,
                0.2,
                1,
            );
            let mut order = vec![0u32; n_train];
            let mut e = 0;
            group.throughput(Throughput::Elements(n_train as u64));
            let id = format!("train{}", net_tag(dims));
            group.bench_function(BenchmarkId::new(id, tid(t)), |b| {
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
    }
    for t in threads() {
        let pool = pool(t);
        for dims in &nets {
            if net_tag(dims).is_empty() {
                group
                    .sample_size(20)
                    .sampling_mode(SamplingMode::Auto)
                    .warm_up_time(Duration::from_millis(500))
                    .measurement_time(Duration::from_secs(2));
            } else {
                group
                    .sample_size(10)
                    .sampling_mode(SamplingMode::Flat)
                    .warm_up_time(Duration::from_millis(500))
                    .measurement_time(Duration::from_secs(4));
            }
            let params = Params::init(dims.clone(), Init::He, 1);
            let mut ev = Evaluator::new(&params, parts_for(t));
            group.throughput(Throughput::Elements(data.test.len() as u64));
            let id = format!("eval10k{}", net_tag(dims));
            group.bench_function(BenchmarkId::new(id, tid(t)), |b| {
                pool.install(|| b.iter(|| ev.evaluate(&params, &data.test, 0..data.test.len())))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, epoch);
criterion_main!(benches);
