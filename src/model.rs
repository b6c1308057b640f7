//! The two-layer network `D → H → K`: parameters, activations, and the
//! forward and backward passes wired from [`crate::gemm`] and
//! [`crate::layers`].
//!
//! Letters: `B` rows in the block being processed, `D = 784` inputs, `H`
//! hidden units, `K = 10` classes. Everything is row-major f32. Files use
//! PyTorch's `nn.Linear` layout, `W1 (H, D)`, `b1 (H)`, `W2 (K, H)`,
//! `b2 (K)`; in memory the first layer is kept transposed, `W1ᵀ (D, H)`,
//! because sgemm packs a row-major right operand with plain copies and a
//! transposed one element by element, and `W1` is the operand packed most
//! (every row block of every step). Other transposes are stride swaps.
//!
//! ```text
//! pass 1, per row block (rows are independent):
//! forward   x  = load(rows)           (B,D)   u8 pixels → f32 / 255
//!           z1 = x·W1ᵀ                (B,H)   GEMM
//!           a1 = relu(z1 + b1)·m      (B,H)   in place, m = dropout mask
//!           z2 = a1·W2ᵀ               (B,K)   GEMM
//!           p  = softmax(z2 + b2)     (B,K)
//!           loss = −mean log p[y]
//! backward  dz2 = (p − onehot(y))/B   (B,K)   in place of z2
//!           da1 = dz2·W2              (B,H)   GEMM
//!           dz1 = da1 ⊙ [a1 > 0]·scale (B,H)  in place of da1
//! pass 2, per range of weight rows (sums over the rows of the batch):
//!           dW1ᵀ = xᵀ·dz1   db1 = Σ_B dz1    (D,H), (H)   GEMM
//!           dW2 = dz2ᵀ·a1   db2 = Σ_B dz2    (K,H), (K)   GEMM
//!           v ← μ·v + g;  w ← w − lr·v        (momentum folded into the GEMMs' β)
//! ```
//! No `dx`: the input layer needs none.

use std::ops::Range;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;

use crate::data::{CLASSES, PIXELS};
use crate::gemm::{self, Beta, MatMut, MatRef};
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

/// One slab in the parameter layout `W1ᵀ | b1 | W2 | b2`. Used for the
/// parameters, their gradients and the momentum buffers alike, so an update
/// is one flat loop over three slabs of the same layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    pub dims: Dims,
    /// `W1ᵀ (D,H) | b1 (H) | W2 (K,H) | b2 (K)`
    pub data: Vec<f32>,
}

/// Borrowed parts of a [`Params`] slab.
pub struct Parts<'a> {
    pub w1t: &'a [f32], // (D, H): W1 transposed
    pub b1: &'a [f32],  // (H)
    pub w2: &'a [f32],  // (K, H)
    pub b2: &'a [f32],  // (K)
}

/// Mutably borrowed parts of a [`Params`] slab.
pub struct PartsMut<'a> {
    pub w1t: &'a mut [f32], // (D, H): W1 transposed
    pub b1: &'a mut [f32],  // (H)
    pub w2: &'a mut [f32],  // (K, H)
    pub b2: &'a mut [f32],  // (K)
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
    /// (portable: the same on every platform and rand version of this crate),
    /// in the file layout's order.
    pub fn init(dims: Dims, init: Init, seed: u64) -> Self {
        let mut torch = vec![0.0; dims.param_count()];
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (w1, rest) = torch.split_at_mut(dims.h * dims.d);
        let w2 = &mut rest[dims.h..dims.h + dims.k * dims.h];
        for (w, fan_in) in [(w1, dims.d), (w2, dims.h)] {
            let std = match init {
                Init::He => (2.0 / fan_in as f32).sqrt(),
                Init::Normal(s) => s,
            };
            let normal = Normal::new(0.0f32, std).expect("standard deviation is finite and >= 0");
            for v in w.iter_mut() {
                *v = normal.sample(&mut rng);
            }
        }
        Self::from_torch(dims, &torch)
    }

    /// A slab from values in the file layout: `W1 (H,D) | b1 | W2 | b2`.
    pub fn from_torch(dims: Dims, torch: &[f32]) -> Self {
        assert_eq!(torch.len(), dims.param_count());
        let Dims { d, h, .. } = dims;
        let mut p = Self::zeros(dims);
        for (j, row) in torch[..h * d].chunks_exact(d).enumerate() {
            for (i, &v) in row.iter().enumerate() {
                p.data[i * h + j] = v;
            }
        }
        p.data[h * d..].copy_from_slice(&torch[h * d..]);
        p
    }

    /// The values in the file layout: `W1 (H,D) | b1 | W2 | b2`.
    pub fn to_torch(&self) -> Vec<f32> {
        let Dims { d, h, .. } = self.dims;
        let mut torch = vec![0.0; self.data.len()];
        for (j, row) in torch[..h * d].chunks_exact_mut(d).enumerate() {
            for (i, v) in row.iter_mut().enumerate() {
                *v = self.data[i * h + j];
            }
        }
        torch[h * d..].copy_from_slice(&self.data[h * d..]);
        torch
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
        let (w1t, rest) = self.data.split_at(b1);
        let (b1, rest) = rest.split_at(w2 - b1);
        let (w2, b2s) = rest.split_at(b2 - w2);
        Parts {
            w1t,
            b1,
            w2,
            b2: b2s,
        }
    }

    pub fn parts_mut(&mut self) -> PartsMut<'_> {
        let [_, b1, w2, b2] = self.offsets();
        let (w1t, rest) = self.data.split_at_mut(b1);
        let (b1, rest) = rest.split_at_mut(w2 - b1);
        let (w2, b2s) = rest.split_at_mut(b2 - w2);
        PartsMut {
            w1t,
            b1,
            w2,
            b2: b2s,
        }
    }
}

/// The five products of the network, as the passes call them (the benches
/// call these too, so the bare-GEMM figures time exactly these calls).
/// Row counts follow from the slices' lengths.
impl Parts<'_> {
    /// `z1 = x·W1ᵀ`: `x (r, D)` → `z1 (r, H)`.
    pub fn z1(&self, dims: Dims, x: &[f32], z1: &mut [f32]) {
        let r = x.len() / dims.d;
        let w1t = MatRef::new(self.w1t, dims.d, dims.h);
        gemm::gemm(
            MatRef::new(x, r, dims.d),
            w1t,
            Beta::Overwrite,
            MatMut::new(z1, r, dims.h),
        );
    }

    /// `z2 = a1·W2ᵀ`: `a1 (r, H)` → `z2 (r, K)`.
    pub fn z2(&self, dims: Dims, a1: &[f32], z2: &mut [f32]) {
        let r = a1.len() / dims.h;
        let w2t = MatRef::new(self.w2, dims.k, dims.h).t();
        gemm::gemm(
            MatRef::new(a1, r, dims.h),
            w2t,
            Beta::Overwrite,
            MatMut::new(z2, r, dims.k),
        );
    }

    /// `da1 = dz2·W2`: `dz2 (r, K)` → `da1 (r, H)`.
    pub fn da1(&self, dims: Dims, dz2: &[f32], da1: &mut [f32]) {
        let r = dz2.len() / dims.k;
        let w2 = MatRef::new(self.w2, dims.k, dims.h);
        gemm::gemm(
            MatRef::new(dz2, r, dims.k),
            w2,
            Beta::Overwrite,
            MatMut::new(da1, r, dims.h),
        );
    }
}

/// `dW1ᵀ[lo..hi] ← x[:, lo..hi]ᵀ·dz1 (+ β·old)`: rows `lo..hi` of `W1ᵀ`'s
/// gradient, `(hi − lo, H)`, from `x (n, D)` and `dz1 (n, H)`.
pub fn dw1t(x: MatRef, dz1: MatRef, (lo, hi): (usize, usize), beta: Beta, out: &mut [f32]) {
    gemm::gemm(
        x.cols(lo, hi).t(),
        dz1,
        beta,
        MatMut::new(out, hi - lo, dz1.cols),
    );
}

/// `dW2[lo..hi] ← dz2[:, lo..hi]ᵀ·a1 (+ β·old)`: rows `lo..hi` of `W2`'s
/// gradient, `(hi − lo, H)`, from `dz2 (n, K)` and `a1 (n, H)`.
pub fn dw2(dz2: MatRef, a1: MatRef, (lo, hi): (usize, usize), beta: Beta, out: &mut [f32]) {
    gemm::gemm(
        dz2.cols(lo, hi).t(),
        a1,
        beta,
        MatMut::new(out, hi - lo, a1.cols),
    );
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

/// Rows per block of the row-local pass over `n` rows cut into `parts`:
/// a multiple of 8 (the GEMM tile) giving at most `parts` blocks.
pub fn row_block(n: usize, parts: usize) -> usize {
    n.div_ceil(parts.max(1)).next_multiple_of(8)
}

/// Rows `lo..hi` of `W1ᵀ` (inputs) that part `p` of `parts` differentiates
/// and updates: cut on multiples of 8, the GEMM tile.
pub fn input_part(d: usize, parts: usize, p: usize) -> (usize, usize) {
    gemm::part_range(d, parts, p)
}

/// Entries `lo..hi` of `b1` (hidden units) of part `p` of `parts`.
pub fn hidden_part(h: usize, parts: usize, p: usize) -> (usize, usize) {
    gemm::part_range(h, parts, p)
}

/// Rows `lo..hi` of `W2`/`b2` (classes) of part `p` of `parts`: an even cut,
/// since `K = 10` is smaller than one tile.
pub fn class_part(k: usize, parts: usize, p: usize) -> (usize, usize) {
    (k * p / parts, k * (p + 1) / parts)
}

/// Fills `x (r, D)` and `y (r)` with rows `rows` of the block being
/// processed. Called once per row block, from the pool's threads.
pub type Load<'a> = dyn Fn(Range<usize>, &mut [f32], &mut [u8]) + Sync + 'a;

/// Options for one forward + backward pass over a block.
#[derive(Clone, Copy, Debug)]
pub struct PassOpts {
    /// `1 / B` for the whole batch the block belongs to.
    pub inv_batch: f32,
    /// Dropout probability and mask (training only).
    pub dropout: Option<(f32, DropMask)>,
    /// How the gradient `g` lands in `grads`: `Overwrite` (`g`), `Accumulate`
    /// (later blocks of a batch) or `Scale(μ)` (`μ·grads + g`: with the
    /// momentum buffer as `grads`, the heavy-ball velocity update).
    pub beta: Beta,
    /// After the gradient, `params ← params − lr·grads` (the last block of a
    /// batch), in the same parallel pass.
    pub lr: Option<f32>,
    /// How many parallel parts to cut the batch rows and the weight rows into.
    pub parts: usize,
}

/// Forward and backward over `n` rows, then (optionally) the SGD update,
/// in two parallel passes with one synchronisation between them:
///
/// 1. row blocks (`parts` of them): load the rows, then `z1`, `a1`, `z2`,
///    softmax + loss, `dz2`, `da1`, `dz1`, all on the same thread, so the
///    block's activations stay in that core's cache;
/// 2. weight rows (`parts` of them): `dW1ᵀ` for a range of inputs, `db1`
///    for a range of hidden units, `dW2`/`db2` for a range of classes,
///    folded into `grads` as `o.beta` says, then `params −= lr·grads` on
///    the same ranges.
///
/// Every element is computed by the same arithmetic in the same order
/// whatever `parts` is, so results are bit-identical across thread counts.
/// `params` is only written in pass 2, and only when `o.lr` is set.
/// Per-row losses land in `ws.loss`, correctness in `ws.hit`.
pub fn forward_backward(
    params: &mut Params,
    ws: &mut Workspace,
    n: usize,
    load: &Load,
    grads: &mut Params,
    o: PassOpts,
) {
    let dims = params.dims;
    let Dims { d, h, k } = dims;
    assert!(n >= 1 && n <= ws.cap);
    assert_eq!(params.dims, grads.dims);
    let parts = o.parts.max(1);

    // Pass 1: everything that is local to a row.
    let p = params.parts();
    let rows = row_block(n, parts);
    let scale = o.dropout.map_or(1.0, |(q, _)| 1.0 / (1.0 - q));
    ws.x[..n * d]
        .par_chunks_mut(rows * d)
        .zip(ws.y[..n].par_chunks_mut(rows))
        .zip(ws.a1[..n * h].par_chunks_mut(rows * h))
        .zip(ws.z2[..n * k].par_chunks_mut(rows * k))
        .zip(ws.dz1[..n * h].par_chunks_mut(rows * h))
        .zip(ws.loss[..n].par_chunks_mut(rows))
        .zip(ws.hit[..n].par_chunks_mut(rows))
        .enumerate()
        .for_each(|(q, ((((((x, y), a1), z2), dz1), loss), hit))| {
            let r = y.len();
            let r0 = q * rows;
            // x (r, D), y (r)
            load(r0..r0 + r, x, y);
            // z1 = x·W1ᵀ (r, H), into a1
            p.z1(dims, x, a1);
            let drop = o.dropout.map(|(pr, m)| (pr, m.offset(r0)));
            layers::bias_relu_dropout_forward(a1, p.b1, drop);
            // z2 = a1·W2ᵀ (r, K)
            p.z2(dims, a1, z2);
            layers::softmax_xent_forward_backward(z2, p.b2, y, o.inv_batch, loss, hit);
            // da1 = dz2·W2 (r, H), into dz1
            p.da1(dims, z2, dz1);
            layers::bias_relu_dropout_backward(dz1, a1, scale);
        });

    // Pass 2: reductions over the rows, cut by output rows of each weight.
    let acts = Acts {
        x: MatRef::new(&ws.x[..n * d], n, d),
        a1: MatRef::new(&ws.a1[..n * h], n, h),
        dz2: MatRef::new(&ws.z2[..n * k], n, k),
        dz1: MatRef::new(&ws.dz1[..n * h], n, h),
        dims: params.dims,
        beta: o.beta,
        parts,
    };
    let w = o.lr.map(|lr| (lr, params.parts_mut()));
    weight_pass(&acts, 0..parts, grads.parts_mut(), w);
}

/// The activations pass 2 reads, with the pass's settings.
struct Acts<'a> {
    x: MatRef<'a>,   // (n, D) inputs
    a1: MatRef<'a>,  // (n, H) hidden activations
    dz2: MatRef<'a>, // (n, K) output-layer gradient
    dz1: MatRef<'a>, // (n, H) hidden-layer gradient
    dims: Dims,
    beta: Beta,
    parts: usize,
}

/// Pass 2 over parts `ps`, whose weight rows are exactly `g` (gradient
/// target) and `w` (parameters, when updating): halves the part range and
/// the slices with it, in parallel, down to one part each.
fn weight_pass(a: &Acts, ps: Range<usize>, g: PartsMut, w: Option<(f32, PartsMut)>) {
    let Dims { d, h, k } = a.dims;
    if ps.len() > 1 {
        let mid = ps.start + ps.len() / 2;
        let ds = input_part(d, a.parts, mid).0 - input_part(d, a.parts, ps.start).0;
        let hs = hidden_part(h, a.parts, mid).0 - hidden_part(h, a.parts, ps.start).0;
        let ks = class_part(k, a.parts, mid).0 - class_part(k, a.parts, ps.start).0;
        let (gl, gr) = g.split(ds, hs, ks, h);
        let (wl, wr) = match w {
            Some((lr, w)) => {
                let (l, r) = w.split(ds, hs, ks, h);
                (Some((lr, l)), Some((lr, r)))
            }
            None => (None, None),
        };
        rayon::join(
            || weight_pass(a, ps.start..mid, gl, wl),
            || weight_pass(a, mid..ps.end, gr, wr),
        );
        return;
    }
    let (dlo, dhi) = input_part(d, a.parts, ps.start);
    let (hlo, hhi) = hidden_part(h, a.parts, ps.start);
    let (klo, khi) = class_part(k, a.parts, ps.start);
    // dW1ᵀ[dlo..dhi] = x[:, dlo..dhi]ᵀ·dz1 (dd, H)
    dw1t(a.x, a.dz1, (dlo, dhi), a.beta, g.w1t);
    // db1[hlo..hhi] = Σ_rows dz1[:, hlo..hhi]
    layers::bias_backward(a.dz1.cols(hlo, hhi), g.b1, a.beta);
    // dW2[klo..khi] = dz2[:, klo..khi]ᵀ·a1 (kk, H), db2[klo..khi] = Σ_rows dz2[:, klo..khi]
    dw2(a.dz2, a.a1, (klo, khi), a.beta, g.w2);
    layers::bias_backward(a.dz2.cols(klo, khi), g.b2, a.beta);
    if let Some((lr, w)) = w {
        for (w, g) in [(w.w1t, &*g.w1t), (w.b1, g.b1), (w.w2, g.w2), (w.b2, g.b2)] {
            layers::sgd_step(w, g, lr);
        }
    }
}

impl<'a> PartsMut<'a> {
    /// Split after `ds` inputs (rows of `W1ᵀ`), `hs` hidden units (of `b1`)
    /// and `ks` classes (rows of `W2`, `b2`); `h` is the row length of both
    /// `W1ᵀ` and `W2`.
    fn split(self, ds: usize, hs: usize, ks: usize, h: usize) -> (Self, Self) {
        let (w1l, w1r) = self.w1t.split_at_mut(ds * h);
        let (b1l, b1r) = self.b1.split_at_mut(hs);
        let (w2l, w2r) = self.w2.split_at_mut(ks * h);
        let (b2l, b2r) = self.b2.split_at_mut(ks);
        (
            PartsMut {
                w1t: w1l,
                b1: b1l,
                w2: w2l,
                b2: b2l,
            },
            PartsMut {
                w1t: w1r,
                b1: b1r,
                w2: w2r,
                b2: b2r,
            },
        )
    }
}

/// Forward only over the first `n` rows of `ws`, on the calling thread:
/// per-row loss into `ws.loss` and predicted class into `ws.hit`.
pub fn forward_eval(params: &Params, ws: &mut Workspace, n: usize) {
    let dims = params.dims;
    let Dims { d, h, k } = dims;
    assert!(n <= ws.cap);
    let p = params.parts();
    p.z1(dims, &ws.x[..n * d], &mut ws.a1[..n * h]);
    layers::bias_relu_dropout_forward(&mut ws.a1[..n * h], p.b1, None);
    p.z2(dims, &ws.a1[..n * h], &mut ws.z2[..n * k]);
    layers::softmax_xent_forward(
        &ws.z2[..n * k],
        p.b2,
        &ws.y[..n],
        &mut ws.loss[..n],
        &mut ws.hit[..n],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs and labels for `n` rows of `dims`, as a loader.
    fn rows(dims: Dims, n: usize) -> (Vec<f32>, Vec<u8>) {
        let x = (0..n * dims.d)
            .map(|i| ((i * 7919 + 13) % 256) as f32 / 255.0)
            .collect();
        let y = (0..n).map(|r| (r * 7 % dims.k) as u8).collect();
        (x, y)
    }

    /// One momentum step done in the fused pass (`v ← μ·v + g` as the GEMMs'
    /// β, then `w ← w − lr·v`) must give, bit for bit, what the textbook
    /// order gives: the gradient on its own, then PyTorch's
    /// `v.mul_(μ).add_(g)`, `w.sub_(lr·v)`. And the same for any `parts`.
    #[test]
    fn fused_momentum_step_matches_separate_update() {
        let dims = Dims {
            d: 50,
            h: 40,
            k: 10,
        };
        let n = 37;
        let (x, y) = rows(dims, n);
        let load = |r: Range<usize>, xb: &mut [f32], yb: &mut [u8]| {
            xb.copy_from_slice(&x[r.start * dims.d..r.end * dims.d]);
            yb.copy_from_slice(&y[r]);
        };
        let (lr, mu) = (0.05f32, 0.9f32);
        let w0 = Params::init(dims, Init::He, 3);
        let mut v0 = Params::init(dims, Init::Normal(0.1), 4); // a warm momentum buffer
        v0.data.iter_mut().for_each(|v| *v *= 0.5);
        let opts = |beta, lr, parts| PassOpts {
            inv_batch: 1.0 / n as f32,
            dropout: Some((0.25, DropMask::new(9, 2))),
            beta,
            lr,
            parts,
        };

        let mut ws = Workspace::new(dims, n);
        let (mut w_ref, mut v_ref, mut g) = (w0.clone(), v0.clone(), Params::zeros(dims));
        forward_backward(
            &mut w_ref,
            &mut ws,
            n,
            &load,
            &mut g,
            opts(Beta::Overwrite, None, 1),
        );
        for ((w, v), &g) in w_ref.data.iter_mut().zip(&mut v_ref.data).zip(&g.data) {
            *v = mu * *v + g;
            *w -= lr * *v;
        }

        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        for parts in 1..=5 {
            let (mut w, mut v) = (w0.clone(), v0.clone());
            pool.install(|| {
                forward_backward(
                    &mut w,
                    &mut ws,
                    n,
                    &load,
                    &mut v,
                    opts(Beta::Scale(mu), Some(lr), parts),
                )
            });
            let same = |a: &Params, b: &Params| {
                a.data
                    .iter()
                    .zip(&b.data)
                    .all(|(p, q)| p.to_bits() == q.to_bits())
            };
            assert!(
                same(&v, &v_ref),
                "momentum buffer differs with {parts} parts"
            );
            assert!(same(&w, &w_ref), "weights differ with {parts} parts");
        }
    }
}
