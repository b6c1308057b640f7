//! Shared set-up for the benches: the data, the pools, and the trainer's
//! GEMMs called exactly as `model::forward_backward` calls them (same views,
//! strides and splits), for the bare-GEMM yardsticks.
#![allow(dead_code)]

use std::path::PathBuf;

use rayon::prelude::*;
use simplenn::data::Mnist;
use simplenn::gemm::{Beta, MatRef};
use simplenn::model::{
    class_part, dw1t, dw2, forward_backward, input_part, row_block, Dims, Init, Params, PassOpts,
    Workspace,
};
use simplenn::train::parts_for;

/// Thread counts every bench runs at.
pub const THREADS: [usize; 2] = [1, 2];
/// The default hidden width.
pub const HIDDEN: usize = 256;

/// The MNIST files shipped with the crate.
pub fn mnist() -> Mnist {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    Mnist::open(&dir).expect("benches need data/mnist")
}

/// The one pool of a run with `threads` threads, as the trainer builds it.
pub fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
}

/// Bench id suffix for a thread count.
pub fn tid(threads: usize) -> String {
    format!("{threads}t")
}

/// Parameters, gradients and a workspace whose buffers hold the values of one
/// real forward/backward pass over the first `n` training images.
pub struct Fixture {
    pub params: Params,
    pub grads: Params,
    pub ws: Workspace,
    pub n: usize,
    pub parts: usize,
}

impl Fixture {
    /// Call inside the pool of `threads` threads.
    pub fn new(mnist: &Mnist, n: usize, threads: usize) -> Self {
        let dims = Dims::mnist(&[HIDDEN]);
        let mut params = Params::init(dims, Init::He, 1);
        let mut grads = Params::zeros(dims);
        let mut ws = Workspace::new(dims, n);
        let idx: Vec<u32> = (0..n as u32).collect();
        let parts = parts_for(threads);
        let opts = PassOpts {
            inv_batch: 1.0 / n as f32,
            dropout: None,
            beta: Beta::Overwrite,
            lr: None,
            parts,
        };
        let load = |rows: std::ops::Range<usize>, x: &mut [f32], y: &mut [u8]| {
            mnist.train.gather(&idx[rows], x, y)
        };
        forward_backward(&mut params, &mut ws, n, &load, &mut grads, opts);
        Fixture {
            params,
            grads,
            ws,
            n,
            parts,
        }
    }
}

/// The five GEMMs of one training block, by name, with their FLOP count.
#[derive(Clone, Copy, Debug)]
pub enum Product {
    /// `z1 = x·W1ᵀ` (n, H), one call per row block, in parallel.
    Z1,
    /// `z2 = a1·W2ᵀ` (n, K), one call per row block, in parallel.
    Z2,
    /// `da1 = dz2·W2` (n, H), one call per row block, in parallel.
    Da1,
    /// `dW2 = dz2ᵀ·a1` (K, H), one call per range of classes, in parallel.
    Dw2,
    /// `dW1ᵀ = xᵀ·dz1` (D, H), one call per range of inputs, in parallel.
    Dw1,
}

impl Product {
    pub const ALL: [Product; 5] = [
        Product::Z1,
        Product::Z2,
        Product::Da1,
        Product::Dw2,
        Product::Dw1,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Product::Z1 => "z1",
            Product::Z2 => "z2",
            Product::Da1 => "da1",
            Product::Dw2 => "dw2",
            Product::Dw1 => "dw1",
        }
    }

    /// FLOP of this product over `n` rows.
    pub fn flop(self, dims: Dims, n: usize) -> u64 {
        let Dims { d, h, k } = dims;
        let mnk = match self {
            Product::Z1 | Product::Dw1 => n * d * h,
            Product::Z2 | Product::Da1 | Product::Dw2 => n * h * k,
        };
        2 * mnk as u64
    }

    /// Run this product on `f` as `forward_backward` does (inside the pool).
    pub fn run(self, f: &mut Fixture) {
        let dims = f.params.dims;
        let Dims { d, h, k } = dims;
        let (n, parts) = (f.n, f.parts);
        let p = f.params.parts();
        let ws = &mut f.ws;
        let rows = row_block(n, parts);
        let x = MatRef::new(&ws.x[..n * d], n, d);
        match self {
            Product::Z1 => ws.x[..n * d]
                .par_chunks(rows * d)
                .zip(ws.a1[..n * h].par_chunks_mut(rows * h))
                .for_each(|(x, a1)| p.z1(dims, x, a1)),
            Product::Z2 => ws.a1[..n * h]
                .par_chunks(rows * h)
                .zip(ws.z2[..n * k].par_chunks_mut(rows * k))
                .for_each(|(a1, z2)| p.z2(dims, a1, z2)),
            Product::Da1 => ws.z2[..n * k]
                .par_chunks(rows * k)
                .zip(ws.dz1[..n * h].par_chunks_mut(rows * h))
                .for_each(|(z2, dz1)| p.da1(dims, z2, dz1)),
            Product::Dw2 => {
                let a1 = MatRef::new(&ws.a1[..n * h], n, h);
                let dz2 = MatRef::new(&ws.z2[..n * k], n, k);
                let ks = uniform_part(k, parts, class_part);
                let g = f.grads.parts_mut();
                g.w2.par_chunks_mut(ks * h)
                    .enumerate()
                    .for_each(|(q, w2)| dw2(dz2, a1, class_part(k, parts, q), Beta::Overwrite, w2))
            }
            Product::Dw1 => {
                let dz1 = MatRef::new(&ws.dz1[..n * h], n, h);
                let ds = uniform_part(d, parts, input_part);
                let g = f.grads.parts_mut();
                g.w1t
                    .par_chunks_mut(ds * h)
                    .enumerate()
                    .for_each(|(q, w1t)| {
                        dw1t(x, dz1, input_part(d, parts, q), Beta::Overwrite, w1t)
                    })
            }
        }
    }
}

/// The size of every part of `dim` cut into `parts` by `cut`; the benches'
/// shapes (D = 784, K = 10, 1 or 2 parts) cut evenly, which lets them use
/// `par_chunks_mut` where the trainer splits slices recursively.
fn uniform_part(dim: usize, parts: usize, cut: fn(usize, usize, usize) -> (usize, usize)) -> usize {
    let (lo, hi) = cut(dim, parts, 0);
    assert!(
        (0..parts).all(|q| cut(dim, parts, q) == (q * (hi - lo), (q + 1) * (hi - lo))),
        "{dim} in {parts} parts is not an even cut"
    );
    hi - lo
}

/// The bare five-GEMM sequence of one block, with the trainer's structure
/// (a row-block pass doing z1, z2 then da1; a weight pass doing dW1ᵀ and
/// dW2 per range of output rows) and nothing else.
pub fn five_gemms(f: &mut Fixture) {
    let dims = f.params.dims;
    let Dims { d, h, k } = dims;
    let (n, parts) = (f.n, f.parts);
    let p = f.params.parts();
    let ws = &mut f.ws;
    let rows = row_block(n, parts);
    ws.x[..n * d]
        .par_chunks(rows * d)
        .zip(ws.a1[..n * h].par_chunks_mut(rows * h))
        .zip(ws.z2[..n * k].par_chunks_mut(rows * k))
        .zip(ws.dz1[..n * h].par_chunks_mut(rows * h))
        .for_each(|(((x, a1), z2), dz1)| {
            p.z1(dims, x, a1);
            p.z2(dims, a1, z2);
            p.da1(dims, z2, dz1);
        });
    let g = f.grads.parts_mut();
    let x = MatRef::new(&ws.x[..n * d], n, d);
    let a1 = MatRef::new(&ws.a1[..n * h], n, h);
    let dz2 = MatRef::new(&ws.z2[..n * k], n, k);
    let dz1 = MatRef::new(&ws.dz1[..n * h], n, h);
    let (ds, ks) = (
        uniform_part(d, parts, input_part),
        uniform_part(k, parts, class_part),
    );
    g.w1t
        .par_chunks_mut(ds * h)
        .zip(g.w2.par_chunks_mut(ks * h))
        .enumerate()
        .for_each(|(q, (w1t, w2))| {
            dw1t(x, dz1, input_part(d, parts, q), Beta::Overwrite, w1t);
            dw2(dz2, a1, class_part(k, parts, q), Beta::Overwrite, w2);
        });
}
