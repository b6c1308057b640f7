//! One full `Trainer::step` (gather, forward, loss, backward, update) at
//! batch 32, 128 and 512 of the default 784-256-10 network, and at batch 128
//! of the deep 784-1024-1024-10 one, each beside the bare GEMM sequence of
//! the same shapes, threads and splits (`common::bare_gemms`: 5 GEMMs for
//! 784-256-10, 8 for 784-1024-1024-10): `step / gemms` is the overhead of
//! everything that is not GEMM. Throughput in FLOP of those GEMMs.
//!
//! `paired_b*`: the same two, timed back to back inside every sample (a
//! run of steps, then as many bare GEMM sequences), so both see the same
//! machine; the median over samples of `step time / GEMM time` goes to
//! `target/criterion/step/paired_bB[_hW-W]/Tt/ratio.json`. On a shared
//! machine whose speed drifts between the seconds `step_b*` and `gemms_b*`
//! run in, this ratio is the one to read.
//!
//! Ids: `step_bB`, `gemms_bB`, `paired_bB` for 784-256-10 (B = 32, 128,
//! 512); `step_b128_h1024-1024`, `gemms_b128_h1024-1024`,
//! `paired_b128_h1024-1024` for the deep network (fewer samples: a step is
//! ~12× the FLOP of the default one).
//!
//! `augment`: a step of 784-800-10 (batch 128) with `--augment elastic`
//! and without (`elastic_b128_h800`, `plain_b128_h800`), and the two
//! paired as above (`paired_elastic_b128_h800`: median of `elastic / plain`
//! per sample, printed and saved to `ratio.json`): what the distortion costs.
//!
//! `dropout`: `dropout2014`'s step (784-1024×3-10, batch 256, Adam, max-norm)
//! with a dropout mask per image and one per batch (`--dropout-mask batch`:
//! the thinned network), each alone and paired (`paired_batch_b256_h1024x3`:
//! median of `batch / image` per sample).
//!
//! `scaling`: the speed-up of more threads on the same work, measured so
//! that a shared machine's slow spells hit both sides: each sample runs
//! steps of a 1-thread trainer on a 1-thread pool and the same number of
//! steps of a T-thread trainer on a T-thread pool, back to back, the order
//! alternating between samples; the median over samples of `1-thread time /
//! T-thread time` is printed and saved to
//! `target/criterion/scaling/paired_b128[_hW-W]/Tt/ratio.json`, for batch
//! 128 of both networks and every thread count above 1. Issue 10's
//! "2 threads ≥ 1.8× one" reads best here: separate runs minutes apart
//! (the `epoch` group's two medians) move with the host's load.
//!
//! `gather`: the batch gather alone (128 shuffled images, u8 → f32), as
//! `Dataset::gather` does it (prefetching rows ahead), as the plain loop
//! without prefetch, and distorted (`elastic_b128`, `affine_b128`), on one
//! thread.

mod common;

use common::{
    bare_gemms, criterion_dir, deep_net, default_net, mnist, net_tag, pool, threads, tid, Fixture,
};
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use simplenn::augment::{Augment, Augmenter, ELASTIC_ALPHA, ELASTIC_SIGMA};
use simplenn::config::Preset;
use simplenn::data::{to_unit, Mnist, MNIST_PIXELS};
use simplenn::model::{Dims, Init, Params};
use simplenn::optim::{Kind, Optimizer};
use simplenn::train::{parts_for, shuffle_epoch, Regularisers, Trainer};
use std::time::{Duration, Instant};

/// Samples per benchmark in each group: set once, because
/// [`write_ratio`] keeps exactly this many of the paired ratios.
const STEP_SAMPLES: usize = 100;
/// The deep network's steps (~15 ms at 1 thread): 20 samples keep its
/// three benches under ~15 s.
const DEEP_SAMPLES: usize = 20;
const AUGMENT_SAMPLES: usize = 30;
const DROPOUT_SAMPLES: usize = 10;

fn step(c: &mut Criterion) {
    common::stamp_cpu();
    let data = mnist();
    let order = epoch_one_order(&data);
    let mut group = c.benchmark_group("step");
    let (default, deep) = (default_net(), deep_net());
    for t in threads() {
        let pool = pool(t);
        group
            .sample_size(STEP_SAMPLES)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        for batch in [32, 128, 512] {
            step_trio(
                &mut group,
                &data,
                &order,
                &pool,
                t,
                &default,
                batch,
                STEP_SAMPLES,
            );
        }
        group
            .sample_size(DEEP_SAMPLES)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
        step_trio(
            &mut group,
            &data,
            &order,
            &pool,
            t,
            &deep,
            128,
            DEEP_SAMPLES,
        );
    }
    group.finish();
}

/// Steps at 1 thread against T threads, paired in every sample (see the
/// module docs): `scaling/paired_b128[_hW-W]/Tt`.
fn scaling(c: &mut Criterion) {
    common::stamp_cpu();
    let data = mnist();
    let order = epoch_one_order(&data);
    let batches: Vec<&[u32]> = order.chunks_exact(128).collect();
    let mut group = c.benchmark_group("scaling");
    let one = pool(1);
    for t in threads().into_iter().filter(|&t| t > 1) {
        let many = pool(t);
        for (dims, samples, secs) in [
            (default_net(), STEP_SAMPLES, 3),
            (deep_net(), DEEP_SAMPLES, 6),
        ] {
            let flop = dims.train_flop_per_row() * 128;
            let trainer =
                |parts| Trainer::new(Params::init(dims.clone(), Init::He, 1), parts, 0.9, 0.2, 1);
            let mut trainers = [(&one, trainer(1)), (&many, trainer(parts_for(t)))];
            let (mut i, mut sample) = (0, 0usize);
            let mut ratios = Vec::new();
            let name = format!("paired_b128{}", net_tag(&dims));
            // A sample runs both trainers: nominally twice one step's FLOP.
            group
                .sample_size(samples)
                .warm_up_time(Duration::from_millis(500))
                .measurement_time(Duration::from_secs(secs))
                .throughput(Throughput::Elements(2 * flop));
            group.bench_function(BenchmarkId::new(&name, tid(t)), |b| {
                b.iter_custom(|iters| {
                    let mut took = [Duration::ZERO; 2];
                    for k in 0..2 {
                        // alternate which goes first, so neither always
                        // follows the other's cache state
                        let side = (k + sample) % 2;
                        let (pool, tr) = &mut trainers[side];
                        let start = Instant::now();
                        pool.install(|| {
                            for j in 0..iters as usize {
                                tr.step(&data.train, batches[(i + j) % batches.len()], 0.01);
                            }
                        });
                        took[side] = start.elapsed();
                    }
                    sample += 1;
                    i = (i + iters as usize) % batches.len();
                    ratios.push(took[0].as_secs_f64() / took[1].as_secs_f64());
                    took[0] + took[1]
                })
            });
            write_ratio("scaling", &name, &tid(t), &mut ratios, samples);
        }
    }
    group.finish();
}

/// The training split's order in epoch 1 (seed 1), 5,000 images held out
/// for validation as the trainer does by default.
fn epoch_one_order(data: &Mnist) -> Vec<u32> {
    let mut order = vec![0u32; data.train.len() - 5000];
    shuffle_epoch(&mut order, 1, 1);
    order
}

fn augment(c: &mut Criterion) {
    common::stamp_cpu();
    let data = mnist();
    let order = epoch_one_order(&data);
    let batches: Vec<&[u32]> = order.chunks_exact(128).collect();
    let dims = Dims::mnist(&[800]);
    let mut group = c.benchmark_group("augment");
    group
        .sample_size(AUGMENT_SAMPLES)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(dims.train_flop_per_row() * 128));
    let elastic = Augment::Elastic {
        sigma: ELASTIC_SIGMA,
        alpha: ELASTIC_ALPHA,
    };
    for t in threads() {
        let pool = pool(t);
        let mut trainers = pool.install(|| {
            [None, Augmenter::new(elastic, 28, 28, 1)].map(|a| {
                let p = Params::init(dims.clone(), Init::He, 1);
                let mut tr = Trainer::new(p, parts_for(t), 0.9, 0.0, 1);
                tr.set_augment(a);
                tr
            })
        });
        let names = [
            "plain_b128_h800",
            "elastic_b128_h800",
            "paired_elastic_b128_h800",
        ];
        bench_pair(
            &mut group,
            (
                "augment",
                AUGMENT_SAMPLES,
                dims.train_flop_per_row() * 128,
                0.01,
            ),
            names,
            &pool,
            t,
            &mut trainers,
            &data,
            &batches,
        );
    }
    group.finish();
}

/// `dropout2014`'s step (784-1024×3-10, batch 256, Adam at its lr 0.001, dropout 0.5 on
/// the hidden units and 0.2 on the inputs, max-norm 2) with a mask per image
/// (`image_b256_h1024x3`) and one per batch (`batch_b256_h1024x3`, the
/// thinned network), and the two paired (`paired_batch_b256_h1024x3`:
/// median of `batch / image` per sample, saved to `ratio.json`). The
/// group's throughput is the full network's FLOP: nominal for the thinned
/// one, which does about 30 % of them (input units kept 0.8, hidden 0.5).
fn dropout(c: &mut Criterion) {
    common::stamp_cpu();
    let data = mnist();
    let order = epoch_one_order(&data);
    let batches: Vec<&[u32]> = order.chunks_exact(256).collect();
    let dims = Dims::mnist(&[1024, 1024, 1024]);
    let mut group = c.benchmark_group("dropout");
    group
        .sample_size(DROPOUT_SAMPLES)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(dims.train_flop_per_row() * 256));
    // The preset's peak rate, its cosine schedule's first step.
    let lr = Preset::Dropout2014.defaults().lr;
    let adam = Optimizer {
        kind: Kind::Adam,
        ..Optimizer::sgd(0.0)
    };
    for t in threads() {
        let pool = pool(t);
        let mut trainers = [false, true].map(|per_batch| {
            let reg = Regularisers {
                dropout: 0.5,
                input_dropout: 0.2,
                max_norm: Some(2.0),
                per_batch,
            };
            Trainer::with(
                Params::init(dims.clone(), Init::He, 1),
                parts_for(t),
                adam,
                reg,
                1,
            )
        });
        let names = [
            "image_b256_h1024x3",
            "batch_b256_h1024x3",
            "paired_batch_b256_h1024x3",
        ];
        bench_pair(
            &mut group,
            (
                "dropout",
                DROPOUT_SAMPLES,
                dims.train_flop_per_row() * 256,
                lr,
            ),
            names,
            &pool,
            t,
            &mut trainers,
            &data,
            &batches,
        );
    }
    group.finish();
}

/// Steps of two trainers on the same batches: each alone (`names[0]`,
/// `names[1]`), then both timed back to back in every sample, first one
/// first, then the other (`names[2]`),
/// whose median ratio `second / first` is printed and saved by
/// [`write_ratio`] under `group`, whose sample size is `samples`; `one` is
/// the FLOP of one step of the full network (the group's throughput), `lr`
/// every step's learning rate.
#[allow(clippy::too_many_arguments)]
fn bench_pair(
    group: &mut BenchmarkGroup<WallTime>,
    (group_name, samples, one, lr): (&str, usize, u64, f32),
    names: [&str; 3],
    pool: &rayon::ThreadPool,
    t: usize,
    trainers: &mut [Trainer; 2],
    data: &Mnist,
    batches: &[&[u32]],
) {
    let mut i = 0;
    for (name, tr) in names.into_iter().zip(trainers.iter_mut()) {
        group.bench_function(BenchmarkId::new(name, tid(t)), |b| {
            pool.install(|| {
                b.iter(|| {
                    i = (i + 1) % batches.len();
                    tr.step(&data.train, batches[i], lr)
                })
            })
        });
    }
    let mut ratios = Vec::new();
    // A paired sample runs both trainers: nominally twice one step's FLOP.
    group.throughput(Throughput::Elements(2 * one));
    let mut sample = 0usize;
    group.bench_function(BenchmarkId::new(names[2], tid(t)), |b| {
        pool.install(|| {
            b.iter_custom(|iters| {
                let mut took = [Duration::ZERO; 2];
                for j in 0..2 {
                    // Alternate which goes first, so neither always follows
                    // the other's cache state.
                    let side = (j + sample) % 2;
                    let tr = &mut trainers[side];
                    let start = Instant::now();
                    for k in 0..iters as usize {
                        tr.step(&data.train, batches[(i + k) % batches.len()], lr);
                    }
                    took[side] = start.elapsed();
                }
                sample += 1;
                i = (i + iters as usize) % batches.len();
                ratios.push(took[1].as_secs_f64() / took[0].as_secs_f64());
                took[0] + took[1]
            })
        })
    });
    group.throughput(Throughput::Elements(one));
    write_ratio(group_name, names[2], &tid(t), &mut ratios, samples);
}

/// `step_bB`, `gemms_bB` and `paired_bB` (with the network's tag) for one
/// network, batch and thread count, in a group of `samples` samples.
#[allow(clippy::too_many_arguments)]
fn step_trio(
    group: &mut BenchmarkGroup<WallTime>,
    data: &Mnist,
    order: &[u32],
    pool: &rayon::ThreadPool,
    t: usize,
    dims: &Dims,
    batch: usize,
    samples: usize,
) {
    let tag = net_tag(dims);
    let flop = dims.train_flop_per_row() * batch as u64;
    group.throughput(Throughput::Elements(flop));
    let mut trainer = Trainer::new(
        Params::init(dims.clone(), Init::He, 1),
        parts_for(t),
        0.9,
        0.2,
        1,
    );
    let batches: Vec<&[u32]> = order.chunks_exact(batch).collect();
    let mut i = 0;
    group.bench_function(
        BenchmarkId::new(format!("step_b{batch}{tag}"), tid(t)),
        |b| {
            pool.install(|| {
                b.iter(|| {
                    i = (i + 1) % batches.len();
                    trainer.step(&data.train, batches[i], 0.01)
                })
            })
        },
    );
    let mut f = pool.install(|| Fixture::new(data, dims, batch, t));
    group.bench_function(
        BenchmarkId::new(format!("gemms_b{batch}{tag}"), tid(t)),
        |b| pool.install(|| b.iter(|| bare_gemms(&mut f))),
    );
    let mut ratios = Vec::new();
    let paired = format!("paired_b{batch}{tag}");
    // A paired sample runs the step and its GEMMs: twice the step's FLOP.
    group.throughput(Throughput::Elements(2 * flop));
    let mut sample = 0usize;
    group.bench_function(BenchmarkId::new(&paired, tid(t)), |b| {
        pool.install(|| {
            b.iter_custom(|iters| {
                // [steps, gemms]; which goes first alternates, so neither
                // always follows the other's cache state.
                let mut took = [Duration::ZERO; 2];
                for j in 0..2 {
                    let side = (j + sample) % 2;
                    let start = Instant::now();
                    for _ in 0..iters {
                        match side {
                            0 => {
                                i = (i + 1) % batches.len();
                                trainer.step(&data.train, batches[i], 0.01);
                            }
                            _ => bare_gemms(&mut f),
                        }
                    }
                    took[side] = start.elapsed();
                }
                sample += 1;
                ratios.push(took[0].as_secs_f64() / took[1].as_secs_f64());
                took[0] + took[1]
            })
        })
    });
    write_ratio("step", &paired, &tid(t), &mut ratios, samples);
}

/// Median of the per-sample ratios (`step / gemms`, `elastic / plain`,
/// `1 thread / T threads`),
/// printed and saved as JSON beside criterion's results for `perf_table`.
///
/// Criterion calls the routine during warm-up too (1, 2, 4, … iterations),
/// then once per sample: only the last `samples` ratios are measurements.
/// Fewer than that (a filtered-out bench, `--test`, `cargo test --benches`)
/// or a `--profile-time` run writes nothing, so it cannot replace a real
/// run's file.
fn write_ratio(group: &str, name: &str, id: &str, ratios: &mut Vec<f64>, samples: usize) {
    let profiling = std::env::args().any(|a| a.starts_with("--profile-time"));
    if ratios.len() < samples || profiling {
        return;
    }
    ratios.drain(..ratios.len() - samples);
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    println!(
        "{group}/{name}/{id}: median of {} paired sample ratios: {median:.3}",
        ratios.len()
    );
    let dir = criterion_dir().join(group).join(name).join(id);
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
    common::stamp_cpu();
    let data = mnist();
    let order = epoch_one_order(&data);
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
            data.train.gather(batches[i], &mut x, &mut y);
            // The batch is the work's result: kept, or the stores could go.
            std::hint::black_box((&mut x, &mut y));
        })
    });
    let elastic = Augment::Elastic {
        sigma: ELASTIC_SIGMA,
        alpha: ELASTIC_ALPHA,
    };
    for aug in [elastic, Augment::Affine] {
        let a = Augmenter::new(aug, 28, 28, 1).expect("an augmentation");
        group.bench_function(format!("{}_b128", aug.name()), |b| {
            b.iter(|| {
                i = (i + 1) % batches.len();
                a.gather(&data.train, batches[i], 1, &mut x, &mut y);
                std::hint::black_box((&mut x, &mut y));
            })
        });
    }
    group.bench_function("plain_b128", |b| {
        b.iter(|| {
            i = (i + 1) % batches.len();
            for ((row, yy), &j) in x.chunks_exact_mut(MNIST_PIXELS).zip(&mut y).zip(batches[i]) {
                to_unit(data.train.image(j as usize), row);
                *yy = data.train.label(j as usize);
            }
            std::hint::black_box((&mut x, &mut y));
        })
    });
    group.finish();
}

criterion_group!(benches, step, scaling, augment, dropout, gather);
criterion_main!(benches);
