//! The GEMMs of a batch-128 training step and of evaluation, called as the
//! trainer calls them (same strides and splits), at 1 and 2 threads, for
//! the default 784-256-10 network and the deep 784-1024-1024-10 one.
//! Throughput is in FLOP: criterion's "elem/s" reads as FLOP/s.
//!
//! Ids (layers counted from 1): `zI` (forward of layer I), `daI`
//! (`dz_{I+1}·W_{I+1}`), both cut as the trainer's pass 1 cuts them
//! (`model::Pass1`: per row block, or over the whole batch by columns
//! where the layer is wide), `dwI` (layer I's weight
//! gradient, per range of its stored rows), `eval_zI` (forward of layer I,
//! one 256-row block per part). 784-256-10: `z1 z2 da1 dw2 dw1 eval_z1
//! eval_z2`; 784-1024-1024-10: the same names up to 3 with `_h1024-1024`
//! appended (`z1_h1024-1024`, …).

mod common;

use common::{deep_net, default_net, mnist, net_tag, pool, threads, tid, Fixture, Product};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rayon::prelude::*;
use simplenn::eval::EVAL_BLOCK;
use simplenn::layers::bias_relu_dropout_forward;
use simplenn::model::{Init, Params};
use simplenn::train::parts_for;
use std::time::Duration;

/// The trainer's default batch.
const BATCH: usize = 128;

fn sgemm(c: &mut Criterion) {
    common::stamp_cpu();
    let data = mnist();
    let mut group = c.benchmark_group("sgemm");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for dims in [default_net(), deep_net()] {
        let tag = net_tag(&dims);
        for t in threads() {
            let pool = pool(t);
            let mut f = pool.install(|| Fixture::new(&data, &dims, BATCH, t));
            for prod in Product::all(&dims) {
                group.throughput(Throughput::Elements(prod.flop(&dims, BATCH)));
                group.bench_function(BenchmarkId::new(prod.name() + &tag, tid(t)), |b| {
                    pool.install(|| b.iter(|| prod.run(&mut f)))
                });
            }

            // Evaluation: each part runs forward_eval's GEMMs on its own
            // 256-row block, one block per part at a time, layer by layer.
            let parts = parts_for(t);
            let params = Params::init(dims.clone(), Init::He, 1);
            let rows = EVAL_BLOCK * parts;
            let d = dims.d();
            let mut x = vec![0.0f32; rows * d];
            let mut y = vec![0u8; rows];
            data.test.gather_range(0..rows, &mut x, &mut y);
            let mut act: Vec<Vec<f32>> = (0..dims.layers())
                .map(|l| vec![0.0f32; rows * dims.layer(l).1])
                .collect();
            // Real activations in every layer's input first. (Each timed
            // product then writes its raw `z` over the next layer's input:
            // a full run times later layers on pre-activations, a filtered
            // one on ReLU'd values; a dense sgemm takes the same time on
            // either, as neither holds subnormals.)
            for l in 0..dims.layers() {
                let lin = params.linear(l);
                let (before, from_l) = act.split_at_mut(l);
                let input: &[f32] = if l == 0 { &x } else { &before[l - 1] };
                lin.forward(input, &mut from_l[0]);
                if l + 1 < dims.layers() {
                    bias_relu_dropout_forward(&mut from_l[0], lin.b, None);
                }
            }
            for l in 0..dims.layers() {
                let lin = params.linear(l);
                let (i, o) = dims.layer(l);
                let (before, from_l) = act.split_at_mut(l);
                let input: &[f32] = if l == 0 { &x } else { &before[l - 1] };
                let out = &mut from_l[0];
                group.throughput(Throughput::Elements(2 * (rows * i * o) as u64));
                let id = format!("eval_z{}{tag}", l + 1);
                group.bench_function(BenchmarkId::new(id, tid(t)), |b| {
                    pool.install(|| {
                        b.iter(|| {
                            input
                                .par_chunks(EVAL_BLOCK * i)
                                .zip(out.par_chunks_mut(EVAL_BLOCK * o))
                                .for_each(|(a, z)| lin.forward(a, z))
                        })
                    })
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, sgemm);
criterion_main!(benches);
