//! The two-layer network `D → H → K`: parameters, activations, and the
//! forward and backward passes wired from [`crate::gemm`] and
//! [`crate::layers`].
//!
//! Letters: `B` rows in the block being processed, `D = 784` inputs, `H`
//! hidden units, `K = 10` classes. Everything is row-major f32. The layout
//! of the parameters is PyTorch's `nn.Linear`: `W1 (H, D)`, `b1 (H)`,
//! `W2 (K, H)`, `b2 (K)`, so a transpose is a stride swap in the GEMMs.
//!
//! ```text
//! forward   z1 = x·W1ᵀ            (B,H)   GEMM, C split by columns
//!           a1 = relu(z1 + b1)·m  (B,H)   in place, m = dropout mask
//!           z2 = a1·W2ᵀ           (B,K)   GEMM per row block
//!           p  = softmax(z2 + b2) (B,K)
//!           loss = −mean log p[y]
//! backward  dz2 = (p − onehot(y))/B          (B,K) in place of z2
//!           da1 = dz2·W2                     (B,H) GEMM per row block
//!           dz1 = da1 ⊙ [a1 > 0]·scale       (B,H) in place of da1
//!           dW2 = dz2ᵀ·a1   db2 = Σ_B dz2    (K,H), (K)
//!           dW1 = dz1ᵀ·x    db1 = Σ_B dz1    (H,D), (H)  GEMM, C split by columns
//! ```
//! No `dx`: the input layer needs none.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;

use crate::data::{CLASSES, PIXELS};
use crate::gemm::{self, par_gemm, Beta, MatMut, MatRef, Split};
use crate::layers::{self, DropMask};

/// Layer widths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// Inputs `D`.
    pub d: usize,
    /// Hidden units `H`.
    pub h: usize,
    /// Classes `K`.
    pub k: usize,
}

impl Dims {
    pub fn mnist(hidden: usize) -> Self {
        Dims {
            d: PIXELS,
            h: hidden,
            k: CLASSES,
        }
    }

    /// Total number of parameters.
    pub fn param_count(&self) -> usize {
        self.h * self.d + self.h + self.k * self.h + self.k
    }

    /// FLOP of the five GEMMs of one training row: `z1` and `dW1` on the
    /// first layer (no `dx`: the input needs no gradient), `z2`, `da1` and
    /// `dW2` on the second. 818,176 for 784-256-10.
    pub fn train_flop_per_row(&self) -> u64 {
        2 * (2 * self.d * self.h + 3 * self.h * self.k) as u64
    }

    /// FLOP of the forward GEMMs of one row.
    pub fn eval_flop_per_row(&self) -> u64 {
        2 * (self.d * self.h + self.h * self.k) as u64
    }
}

/// One slab in the parameter layout `W1 | b1 | W2 | b2`. Used for the
/// parameters, their gradients and the momentum buffers alike, so an update
/// is one flat loop over three slabs of the same layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    pub dims: Dims,
    /// `W1 (H,D) | b1 (H) | W2 (K,H) | b2 (K)`
    pub data: Vec<f32>,
}

/// Borrowed parts of a [`Params`] slab.
pub struct Parts<'a> {
    pub w1: &'a [f32], // (H, D)
    pub b1: &'a [f32], // (H)
    pub w2: &'a [f32], // (K, H)
    pub b2: &'a [f32], // (K)
}

/// Mutably borrowed parts of a [`Params`] slab.
pub struct PartsMut<'a> {
    pub w1: &'a mut [f32], // (H, D)
    pub b1: &'a mut [f32], // (H)
    pub w2: &'a mut [f32], // (K, H)
    pub b2: &'a mut [f32], // (K)
}

/// How to draw the initial weights (biases start at zero).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// He (Kaiming) normal: `N(0, 2 / fan_in)`, for ReLU.
    He,
    /// `N(0, σ²)` for every weight (the seed recipe uses σ = 0.01).
    Normal(f32),
}

impl Params {
    pub fn zeros(dims: Dims) -> Self {
        Params {
            dims,
            data: vec![0.0; dims.param_count()],
        }
    }

    /// Weights drawn from `init` with a ChaCha8 stream seeded by `seed`
    /// (portable: the same on every platform and rand version of this crate).
    pub fn init(dims: Dims, init: Init, seed: u64) -> Self {
        let mut p = Self::zeros(dims);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let parts = p.parts_mut();
        for (w, fan_in) in [(parts.w1, dims.d), (parts.w2, dims.h)] {
            let std = match init {
                Init::He => (2.0 / fan_in as f32).sqrt(),
                Init::Normal(s) => s,
            };
            let normal = Normal::new(0.0f32, std).expect("standard deviation is finite and >= 0");
            for v in w.iter_mut() {
                *v = normal.sample(&mut rng);
            }
        }
        p
    }

    fn offsets(&self) -> [usize; 4] {
        let Dims { d, h, k } = self.dims;
        let b1 = h * d;
        let w2 = b1 + h;
        let b2 = w2 + k * h;
        [0, b1, w2, b2]
    }

    pub fn parts(&self) -> Parts<'_> {
        let [_, b1, w2, b2] = self.offsets();
        let (w1, rest) = self.data.split_at(b1);
        let (b1, rest) = rest.split_at(w2 - b1);
        let (w2, b2s) = rest.split_at(b2 - w2);
        Parts {
            w1,
            b1,
            w2,
            b2: b2s,
        }
    }

    pub fn parts_mut(&mut self) -> PartsMut<'_> {
        let [_, b1, w2, b2] = self.offsets();
        let (w1, rest) = self.data.split_at_mut(b1);
        let (b1, rest) = rest.split_at_mut(w2 - b1);
        let (w2, b2s) = rest.split_at_mut(b2 - w2);
        PartsMut {
            w1,
            b1,
            w2,
            b2: b2s,
        }
    }
}

/// Activation buffers for blocks of up to `cap` rows, allocated once.
pub struct Workspace {
    pub cap: usize,
    pub x: Vec<f32>,    // (cap, D) inputs
    pub y: Vec<u8>,     // (cap) labels
    pub a1: Vec<f32>,   // (cap, H) z1, then a1 in place
    pub z2: Vec<f32>,   // (cap, K) z2, then dz2 in place
    pub dz1: Vec<f32>,  // (cap, H) da1, then dz1 in place
    pub loss: Vec<f32>, // (cap) per-row loss
    pub hit: Vec<u8>,   // (cap) per-row: 1 if correct (training) or predicted class (eval)
}

impl Workspace {
    pub fn new(dims: Dims, cap: usize) -> Self {
        Workspace {
            cap,
            x: vec![0.0; cap * dims.d],
            y: vec![0; cap],
            a1: vec![0.0; cap * dims.h],
            z2: vec![0.0; cap * dims.k],
            dz1: vec![0.0; cap * dims.h],
            loss: vec![0.0; cap],
            hit: vec![0; cap],
        }
    }
}

/// How [`forward_backward`] cuts `z1 = x·W1ᵀ` (n, H) across parts.
pub const Z1_SPLIT: Split = Split::Cols;
/// How [`forward_backward`] cuts `dW1 = dz1ᵀ·x` (H, D) across parts.
pub const DW1_SPLIT: Split = Split::Cols;

/// Rows per block of the row-local pass over `n` rows cut into `parts`:
/// a multiple of 8 (the GEMM tile) giving at most `parts` blocks.
pub fn row_block(n: usize, parts: usize) -> usize {
    n.div_ceil(parts.max(1)).next_multiple_of(8)
}

/// Options for one forward + backward pass over a block.
#[derive(Clone, Copy, Debug)]
pub struct PassOpts {
    /// `1 / B` for the whole batch the block belongs to.
    pub inv_batch: f32,
    /// Dropout probability and mask (training only).
    pub dropout: Option<(f32, DropMask)>,
    /// Overwrite the gradients (first block of a batch) or add to them.
    pub beta: Beta,
    /// How many parallel parts to cut each large GEMM and row pass into.
    pub parts: usize,
}

/// Forward and backward over the first `n` rows of `ws` (inputs in `ws.x`,
/// labels in `ws.y`), writing (or adding) the gradient of the batch-mean
/// loss into `grads`. `params` is only read: the update is separate.
/// Per-row losses land in `ws.loss`, correctness in `ws.hit`.
pub fn forward_backward(
    params: &Params,
    ws: &mut Workspace,
    n: usize,
    grads: &mut Params,
    o: PassOpts,
) {
    let Dims { d, h, k } = params.dims;
    assert!(n >= 1 && n <= ws.cap);
    let p = params.parts();
    let x = MatRef::new(&ws.x[..n * d], n, d); // (n, D)

    // z1 = x·W1ᵀ (n, H): split by hidden columns; each part packs x again,
    // which is smaller than W1 at the batch sizes used here.
    par_gemm(
        x,
        MatRef::new(p.w1, h, d).t(),
        Beta::Overwrite,
        MatMut::new(&mut ws.a1[..n * h], n, h),
        Z1_SPLIT,
        o.parts,
    );

    // Row-local work in row blocks: a1, z2, softmax + loss, dz2, da1, dz1.
    let rows = row_block(n, o.parts);
    let scale = o.dropout.map_or(1.0, |(q, _)| 1.0 / (1.0 - q));
    ws.a1[..n * h]
        .par_chunks_mut(rows * h)
        .zip(ws.z2[..n * k].par_chunks_mut(rows * k))
        .zip(ws.dz1[..n * h].par_chunks_mut(rows * h))
        .zip(ws.y[..n].par_chunks(rows))
        .zip(ws.loss[..n].par_chunks_mut(rows))
        .zip(ws.hit[..n].par_chunks_mut(rows))
        .enumerate()
        .for_each(|(q, (((((a1, z2), dz1), y), loss), hit))| {
            let r = y.len();
            let drop = o.dropout.map(|(pr, m)| (pr, m.offset(q * rows)));
            layers::bias_relu_dropout_forward(a1, p.b1, drop);
            // z2 = a1·W2ᵀ (r, K)
            gemm::gemm(
                MatRef::new(a1, r, h),
                MatRef::new(p.w2, k, h).t(),
                Beta::Overwrite,
                MatMut::new(z2, r, k),
            );
            layers::softmax_xent_forward_backward(z2, p.b2, y, o.inv_batch, loss, hit);
            // da1 = dz2·W2 (r, H)
            gemm::gemm(
                MatRef::new(z2, r, k),
                MatRef::new(p.w2, k, h),
                Beta::Overwrite,
                MatMut::new(dz1, r, h),
            );
            layers::bias_relu_dropout_backward(dz1, a1, scale);
        });

    let a1 = MatRef::new(&ws.a1[..n * h], n, h); // (n, H)
    let dz2 = MatRef::new(&ws.z2[..n * k], n, k); // (n, K)
    let dz1 = MatRef::new(&ws.dz1[..n * h], n, h); // (n, H)
    let g = grads.parts_mut();
    let acc = o.beta == Beta::Accumulate;
    rayon::join(
        || {
            // dW2 = dz2ᵀ·a1 (K, H), db2 = Σ dz2, db1 = Σ dz1: small, one thread.
            gemm::gemm(dz2.t(), a1, o.beta, MatMut::new(g.w2, k, h));
            layers::bias_backward(dz2.data, g.b2, acc);
            layers::bias_backward(dz1.data, g.b1, acc);
        },
        || {
            // dW1 = dz1ᵀ·x (H, D): split by input columns; each part packs dz1 again.
            par_gemm(
                dz1.t(),
                x,
                o.beta,
                MatMut::new(g.w1, h, d),
                DW1_SPLIT,
                o.parts,
            );
        },
    );
}

/// Forward only over the first `n` rows of `ws`, on the calling thread:
/// per-row loss into `ws.loss` and predicted class into `ws.hit`.
pub fn forward_eval(params: &Params, ws: &mut Workspace, n: usize) {
    let Dims { d, h, k } = params.dims;
    assert!(n <= ws.cap);
    let p = params.parts();
    gemm::gemm(
        MatRef::new(&ws.x[..n * d], n, d),
        MatRef::new(p.w1, h, d).t(),
        Beta::Overwrite,
        MatMut::new(&mut ws.a1[..n * h], n, h),
    );
    layers::bias_relu_dropout_forward(&mut ws.a1[..n * h], p.b1, None);
    gemm::gemm(
        MatRef::new(&ws.a1[..n * h], n, h),
        MatRef::new(p.w2, k, h).t(),
        Beta::Overwrite,
        MatMut::new(&mut ws.z2[..n * k], n, k),
    );
    layers::softmax_xent_forward(
        &ws.z2[..n * k],
        p.b2,
        &ws.y[..n],
        &mut ws.loss[..n],
        &mut ws.hit[..n],
    );
}

/// SGD with momentum, PyTorch semantics: `v ← μ·v + g; w ← w − lr·v`.
/// One flat pass over three slabs of the same layout, elementwise, so the
/// parallel split cannot change the result.
pub fn sgd_momentum_update(
    params: &mut Params,
    velocity: &mut Params,
    grads: &Params,
    lr: f32,
    momentum: f32,
) {
    const CHUNK: usize = 1 << 14;
    params
        .data
        .par_chunks_mut(CHUNK)
        .zip(velocity.data.par_chunks_mut(CHUNK))
        .zip(grads.data.par_chunks(CHUNK))
        .for_each(|((w, v), g)| {
            for ((w, v), &g) in w.iter_mut().zip(v.iter_mut()).zip(g) {
                *v = momentum * *v + g;
                *w -= lr * *v;
            }
        });
}
