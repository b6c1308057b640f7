//! Shared set-up for the benches: the data, the pools, the networks, and the
//! trainer's GEMMs called exactly as `model::forward_backward` calls them
//! (same views, strides and splits), for the bare-GEMM yardsticks.
#![allow(dead_code)]

use std::ops::Range;
use std::path::PathBuf;

use simplenn::data::Mnist;
use simplenn::gemm::Beta;
use simplenn::model::{
    for_each_row_block, for_each_weight_part, forward_backward, forward_product, input_product,
    Acts, Dims, Init, Params, Pass1, PassOpts, RowBlock, Workspace,
};
use simplenn::train::parts_for;

mod cpu;
mod criterion_dir;
#[allow(unused_imports)] // (not every bench writes side files)
pub use criterion_dir::criterion_dir;

/// Record, once per bench process, which CPU is about to write results
/// (`cpu-history.txt` beside them, which `examples/perf_table.rs` reads).
/// Every bench group calls it first.
pub fn stamp_cpu() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| cpu::stamp(&criterion_dir()));
}

/// Thread counts every bench runs at: `$SIMPLENN_BENCH_THREADS`, a comma
/// list such as `1,2,4,8,16` (sorted, repeats dropped; each within
/// `--threads`' bounds), else 1 and 2, the project's 2-core machines. A bad
/// list stops the bench with one line. Counts above this machine's cores
/// are left out, with a note: a pool of `t` threads runs at most one a
/// core ([`pool`]), so a bench labelled `t` would time fewer (and `peak`
/// would count `t` threads' FLOPs).
pub fn threads() -> Vec<usize> {
    let listed = listed_threads();
    let (kept, over): (Vec<usize>, Vec<usize>) =
        listed.into_iter().partition(|&t| parts_for(t) == t);
    static NOTED: std::sync::Once = std::sync::Once::new();
    if !over.is_empty() {
        NOTED.call_once(|| {
            eprintln!(
                "benches: thread counts {over:?} left out: this machine runs at most {} threads (one a core)",
                parts_for(usize::MAX)
            )
        });
    }
    kept
}

fn listed_threads() -> Vec<usize> {
    const VAR: &str = "SIMPLENN_BENCH_THREADS";
    const MAX: usize = simplenn::cli::MAX_THREADS;
    let Some(list) = std::env::var_os(VAR).filter(|v| !v.is_empty()) else {
        return vec![1, 2];
    };
    let parsed: Option<Vec<usize>> = list.to_str().and_then(|s| {
        s.split(',')
            .map(|t| t.trim().parse().ok().filter(|n| (1..=MAX).contains(n)))
            .collect()
    });
    let Some(mut threads) = parsed else {
        eprintln!(
            "{VAR}={list:?}: expected a comma list of thread counts from 1 to {MAX}, such as 1,2,4,8,16"
        );
        std::process::exit(2);
    };
    threads.sort_unstable();
    threads.dedup();
    threads
}

/// The default hidden width.
pub const HIDDEN: usize = 256;
/// The deep reference network's hidden widths: 784-1024-1024-10.
pub const DEEP: [usize; 2] = [1024, 1024];

/// The default network, 784-256-10.
pub fn default_net() -> Dims {
    Dims::mnist(&[HIDDEN])
}

/// The deep reference network, 784-1024-1024-10.
pub fn deep_net() -> Dims {
    Dims::mnist(&DEEP)
}

/// What a network adds to a bench id: nothing for the default 784-256-10
/// (its ids are the ones every earlier run wrote), `_h1024-1024` for the
/// deep one (`_h` and the hidden widths joined by `-`).
/// `examples/perf_table.rs` builds the same suffix.
pub fn net_tag(dims: &Dims) -> String {
    if dims.hidden() == [HIDDEN] {
        String::new()
    } else {
        format!("_h{}", dims.hidden_name().replace(',', "-"))
    }
}

/// The MNIST files shipped with the crate.
pub fn mnist() -> Mnist {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    Mnist::open(&dir).expect("benches need data/mnist")
}

/// The one pool of a run with `--threads threads`, as the trainer builds
/// it (at most one thread per core).
pub fn pool(threads: usize) -> rayon::ThreadPool {
    simplenn::train::thread_pool(threads).expect("thread pool")
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
    pub fn new(mnist: &Mnist, dims: &Dims, n: usize, threads: usize) -> Self {
        let mut params = Params::init(dims.clone(), Init::He, 1);
        let mut grads = Params::zeros(dims.clone());
        let mut ws = Workspace::new(dims, n);
        let idx: Vec<u32> = (0..n as u32).collect();
        let parts = parts_for(threads);
        let opts = PassOpts {
            inv_batch: 1.0 / n as f32,
            dropout: None,
            input_dropout: None,
            beta: Beta::Overwrite,
            lr: None,
            parts,
            pass1: None,
        };
        let load =
            |rows: Range<usize>, x: &mut [f32], y: &mut [u8]| mnist.train.gather(&idx[rows], x, y);
        forward_backward(&mut params, &mut ws, n, &load, &mut grads, opts);
        Fixture {
            params,
            grads,
            ws,
            n,
            parts,
        }
    }

    pub fn dims(&self) -> &Dims {
        &self.params.dims
    }

    /// How the trainer cuts pass 1 for this fixture.
    pub fn pass1(&self) -> Pass1 {
        Pass1::for_net(self.dims(), self.n, self.parts)
    }
}

/// One GEMM of a training step, by layer `l` (0-based; names count layers
/// from 1, as `W1`, `W2`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Product {
    /// `z_l = a_{l−1}·W_lᵀ` (n, n_out), one call per row block, in parallel:
    /// `z1`, `z2`, …
    Forward(usize),
    /// `da_{l−1} = dz_l·W_l` (n, n_in), `l ≥ 1`, one call per row block, in
    /// parallel: `da1` for layer 1 (the second), …
    Input(usize),
    /// The weight gradient of layer `l` as stored, one call per range of its
    /// rows, in parallel: `dw1` (`dW_0ᵀ = xᵀ·dz_0`, by inputs), `dw2`
    /// (`dW_1 = dz_1ᵀ·a_0`, by outputs), …
    Weight(usize),
}

impl Product {
    /// Every GEMM of a training step of `dims`: the forward products down
    /// the layers, the backward-to-input ones up, then the weight gradients
    /// last layer first (for 784-256-10: z1, z2, da1, dw2, dw1).
    pub fn all(dims: &Dims) -> Vec<Product> {
        let layers = dims.layers();
        (0..layers)
            .map(Product::Forward)
            .chain((1..layers).rev().map(Product::Input))
            .chain((0..layers).rev().map(Product::Weight))
            .collect()
    }

    pub fn name(self) -> String {
        match self {
            Product::Forward(l) => format!("z{}", l + 1),
            Product::Input(l) => format!("da{l}"),
            Product::Weight(l) => format!("dw{}", l + 1),
        }
    }

    /// FLOP of this product over `n` rows.
    pub fn flop(self, dims: &Dims, n: usize) -> u64 {
        let (Product::Forward(l) | Product::Input(l) | Product::Weight(l)) = self;
        let (i, o) = dims.layer(l);
        2 * (n * i * o) as u64
    }

    /// Run this product on `f` as `forward_backward` does (inside the pool).
    pub fn run(self, f: &mut Fixture) {
        match (self, f.pass1()) {
            (Product::Weight(l), _) => weight_pass(f, l..l + 1),
            (_, Pass1::RowBlocks) => {
                row_pass(f, &|params, mut b| block_product(params, &mut b, self))
            }
            (Product::Forward(l), Pass1::Layers) => {
                forward_product(&f.params, &mut f.ws, f.n, l, f.parts)
            }
            (Product::Input(l), Pass1::Layers) => {
                input_product(&f.params, &mut f.ws, f.n, l, f.parts)
            }
        }
    }
}

/// The bare GEMM sequence of one step, with the trainer's structure (pass
/// 1 cut as the trainer cuts it, `model::Pass1::for_net`: every layer's
/// forward product down, then every backward-to-input product up, in each
/// row block or each over the whole batch; a weight pass doing every
/// layer's weight gradient per range of its stored rows) and nothing else.
pub fn bare_gemms(f: &mut Fixture) {
    let layers = f.dims().layers();
    match f.pass1() {
        Pass1::RowBlocks => row_pass(f, &|params, mut b| {
            for l in 0..layers {
                block_product(params, &mut b, Product::Forward(l));
            }
            for l in (1..layers).rev() {
                block_product(params, &mut b, Product::Input(l));
            }
        }),
        Pass1::Layers => {
            for l in 0..layers {
                forward_product(&f.params, &mut f.ws, f.n, l, f.parts);
            }
            for l in (1..layers).rev() {
                input_product(&f.params, &mut f.ws, f.n, l, f.parts);
            }
        }
    }
    weight_pass(f, 0..layers);
}

/// One forward or backward-to-input product on one row block, through
/// `Linear` as `model`'s pass 1 calls it.
fn block_product(params: &Params, b: &mut RowBlock, prod: Product) {
    let last = b.layers() - 1;
    match prod {
        Product::Forward(l) => {
            let (before, from_l) = b.act.split_at_mut(l);
            let input: &[f32] = if l == 0 { b.x } else { before[l - 1] };
            params.linear(l).forward(input, from_l[0]);
        }
        Product::Input(l) => {
            assert!(l >= 1);
            let (below, from_l) = b.grad.split_at_mut(l);
            let dz: &[f32] = if l == last { b.act[l] } else { from_l[0] };
            params.linear(l).backward_input(dz, below[l - 1]);
        }
        Product::Weight(_) => unreachable!("weight products run in the weight pass"),
    }
}

/// Pass 1's structure, the trainer's own (`model::for_each_row_block`),
/// `op` on each row block.
fn row_pass(f: &mut Fixture, op: &(dyn Fn(&Params, RowBlock) + Sync)) {
    let params = &f.params;
    for_each_row_block(&mut f.ws, &params.dims, f.n, f.parts, &|b| op(params, b));
}

/// Pass 2's structure for the weight gradients of `layers`, the trainer's
/// own (`model::for_each_weight_part`, `Acts::weight_grad`), with β
/// `Scale(0.9)` as the trainer's momentum SGD folds `v ← g + μ·v` into the
/// product (so `C` is read, as there; the values stay bounded).
fn weight_pass(f: &mut Fixture, layers: Range<usize>) {
    let Fixture {
        grads,
        ws,
        n,
        parts,
        ..
    } = f;
    let dims = grads.dims.clone();
    let acts = Acts {
        ws,
        n: *n,
        dims: &dims,
        beta: Beta::Scale(0.9),
        parts: (*parts).max(1),
    };
    for_each_weight_part(&dims, acts.parts, &mut grads.data, None, &|p, g, _| {
        for l in layers.clone() {
            acts.weight_grad(l, p, g.w[l], None);
        }
    });
}
