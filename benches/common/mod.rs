//! Shared set-up for the benches: the data, the pools, and the trainer's
//! GEMMs called exactly as `model::forward_backward` calls them (same views,
//! strides and splits), for the bare-GEMM yardsticks.
#![allow(dead_code)]

use std::path::PathBuf;

use rayon::prelude::*;
use simplenn::data::Mnist;
use simplenn::gemm::{gemm, par_gemm, Beta, MatMut, MatRef};
use simplenn::model::{
    forward_backward, row_block, Dims, Init, Params, PassOpts, Workspace, DW1_SPLIT, Z1_SPLIT,
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
        let dims = Dims::mnist(HIDDEN);
        let params = Params::init(dims, Init::He, 1);
        let mut grads = Params::zeros(dims);
        let mut ws = Workspace::new(dims, n);
        let idx: Vec<u32> = (0..n as u32).collect();
        mnist.train.gather(&idx, &mut ws.x, &mut ws.y);
        let parts = parts_for(threads);
        let opts = PassOpts {
            inv_batch: 1.0 / n as f32,
            dropout: None,
            beta: Beta::Overwrite,
            parts,
        };
        forward_backward(&params, &mut ws, n, &mut grads, opts);
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
    /// `z1 = x·W1ᵀ` (n, H), split by `Z1_SPLIT`.
    Z1,
    /// `z2 = a1·W2ᵀ` (n, K), one call per row block, in parallel.
    Z2,
    /// `da1 = dz2·W2` (n, H), one call per row block, in parallel.
    Da1,
    /// `dW2 = dz2ᵀ·a1` (K, H), one call.
    Dw2,
    /// `dW1 = dz1ᵀ·x` (H, D), split by `DW1_SPLIT`.
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
        let Dims { d, h, k } = f.params.dims;
        let (n, parts) = (f.n, f.parts);
        let p = f.params.parts();
        let ws = &mut f.ws;
        match self {
            Product::Z1 => par_gemm(
                MatRef::new(&ws.x[..n * d], n, d),
                MatRef::new(p.w1, h, d).t(),
                Beta::Overwrite,
                MatMut::new(&mut ws.a1[..n * h], n, h),
                Z1_SPLIT,
                parts,
            ),
            Product::Z2 => {
                let rows = row_block(n, parts);
                ws.a1[..n * h]
                    .par_chunks(rows * h)
                    .zip(ws.z2[..n * k].par_chunks_mut(rows * k))
                    .for_each(|(a1, z2)| {
                        let r = a1.len() / h;
                        gemm(
                            MatRef::new(a1, r, h),
                            MatRef::new(p.w2, k, h).t(),
                            Beta::Overwrite,
                            MatMut::new(z2, r, k),
                        )
                    });
            }
            Product::Da1 => {
                let rows = row_block(n, parts);
                ws.z2[..n * k]
                    .par_chunks(rows * k)
                    .zip(ws.dz1[..n * h].par_chunks_mut(rows * h))
                    .for_each(|(z2, dz1)| {
                        let r = z2.len() / k;
                        gemm(
                            MatRef::new(z2, r, k),
                            MatRef::new(p.w2, k, h),
                            Beta::Overwrite,
                            MatMut::new(dz1, r, h),
                        )
                    });
            }
            Product::Dw2 => {
                let g = f.grads.parts_mut();
                gemm(
                    MatRef::new(&ws.z2[..n * k], n, k).t(),
                    MatRef::new(&ws.a1[..n * h], n, h),
                    Beta::Overwrite,
                    MatMut::new(g.w2, k, h),
                )
            }
            Product::Dw1 => {
                let g = f.grads.parts_mut();
                par_gemm(
                    MatRef::new(&ws.dz1[..n * h], n, h).t(),
                    MatRef::new(&ws.x[..n * d], n, d),
                    Beta::Overwrite,
                    MatMut::new(g.w1, h, d),
                    DW1_SPLIT,
                    parts,
                )
            }
        }
    }
}

/// The bare five-GEMM sequence of one block, with the trainer's structure
/// (z1; a row-block pass doing z2 then da1; dW2 beside dW1) and nothing else.
pub fn five_gemms(f: &mut Fixture) {
    let Dims { d, h, k } = f.params.dims;
    let (n, parts) = (f.n, f.parts);
    Product::Z1.run(f);
    let p = f.params.parts();
    let ws = &mut f.ws;
    let rows = row_block(n, parts);
    ws.a1[..n * h]
        .par_chunks(rows * h)
        .zip(ws.z2[..n * k].par_chunks_mut(rows * k))
        .zip(ws.dz1[..n * h].par_chunks_mut(rows * h))
        .for_each(|((a1, z2), dz1)| {
            let r = a1.len() / h;
            gemm(
                MatRef::new(a1, r, h),
                MatRef::new(p.w2, k, h).t(),
                Beta::Overwrite,
                MatMut::new(z2, r, k),
            );
            gemm(
                MatRef::new(z2, r, k),
                MatRef::new(p.w2, k, h),
                Beta::Overwrite,
                MatMut::new(dz1, r, h),
            );
        });
    let g = f.grads.parts_mut();
    let a1 = MatRef::new(&ws.a1[..n * h], n, h);
    let dz2 = MatRef::new(&ws.z2[..n * k], n, k);
    let dz1 = MatRef::new(&ws.dz1[..n * h], n, h);
    let x = MatRef::new(&ws.x[..n * d], n, d);
    rayon::join(
        || gemm(dz2.t(), a1, Beta::Overwrite, MatMut::new(g.w2, k, h)),
        || {
            par_gemm(
                dz1.t(),
                x,
                Beta::Overwrite,
                MatMut::new(g.w1, h, d),
                DW1_SPLIT,
                parts,
            )
        },
    );
}
