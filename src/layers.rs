//! The network's kernels, each forward beside its backward: the linear
//! layer (GEMMs on strided views), bias + ReLU + dropout, and the fused
//! softmax + cross-entropy; then the dropout masks ([`DropMask`]) and the
//! fused SGD step that the weight-gradient GEMM calls ([`sgd_step`]).
//!
//! Shapes use this file's letters: `n` rows of the current block (a slice
//! of the batch `B`; [`crate::model`] calls it `R`, and its widths `n_l`),
//! `D` inputs, `N_in`/`N_out` a layer's input and output widths (`H` where
//! it is a hidden layer's, `C` for a bias's columns), `K` classes. Every
//! buffer is row-major; a weight may be read through a view whose strides
//! are swapped ([`Linear::wt`]).
//! How the layers are chained, and where their buffers live, is
//! [`crate::model`]'s business; this file holds what each layer computes.

use crate::gemm::{self, Beta, MatMut, MatRef};
use crate::hash::{mix, unit_bits};

/// A linear layer `z = a·Wᵀ` (its bias is added by the next kernel), with
/// `W (N_out, N_in)` seen through a strided view of its transpose, so the
/// same code serves a weight stored either way round.
#[derive(Clone, Copy, Debug)]
pub struct Linear<'a> {
    /// `Wᵀ (N_in, N_out)`: a plain view when the weight is stored
    /// transposed, a stride swap of `W` when it is stored as PyTorch does.
    pub wt: MatRef<'a>,
    /// `b (N_out)`.
    pub b: &'a [f32],
}

impl Linear<'_> {
    pub fn n_in(&self) -> usize {
        self.wt.rows
    }

    pub fn n_out(&self) -> usize {
        self.wt.cols
    }

    /// Forward: `z = a·Wᵀ` for `a (n, N_in)` into `z (n, N_out)`; `n`
    /// follows from the slices' lengths. One sgemm call.
    pub fn forward(&self, a: &[f32], z: &mut [f32]) {
        self.forward_parts(a, z, 1)
    }

    /// [`Linear::forward`] in `parts` parallel sgemm calls
    /// ([`gemm::gemm_parts`]: the same bits).
    pub fn forward_parts(&self, a: &[f32], z: &mut [f32], parts: usize) {
        let r = a.len() / self.n_in();
        gemm::gemm_parts(
            MatRef::new(a, r, self.n_in()),
            self.wt,
            Beta::Overwrite,
            MatMut::new(z, r, self.n_out()),
            parts,
        );
    }

    /// Backward to the input: `da = dz·W` for `dz (n, N_out)` into
    /// `da (n, N_in)`. One sgemm call; `W` is `Wᵀ`'s stride swap.
    pub fn backward_input(&self, dz: &[f32], da: &mut [f32]) {
        self.backward_input_parts(dz, da, 1)
    }

    /// [`Linear::backward_input`] in `parts` parallel sgemm calls
    /// ([`gemm::gemm_parts`]: the same bits).
    pub fn backward_input_parts(&self, dz: &[f32], da: &mut [f32], parts: usize) {
        let r = dz.len() / self.n_out();
        gemm::gemm_parts(
            MatRef::new(dz, r, self.n_out()),
            self.wt.t(),
            Beta::Overwrite,
            MatMut::new(da, r, self.n_in()),
            parts,
        );
    }
}

/// Backward to the weight, rows `lo..hi` of it as stored: `out ← g + β·out`
/// with `g` the gradient summed over the `n` rows of the batch; with
/// `sgd = Some((w, lr))`, then the SGD step `w ← w − lr·out` on the same
/// rows of the stored weight `w` (of `out`'s layout), each subnormal entry
/// of `out` set to 0 first ([`sgd_step`]).
///
/// - `transposed`: the weight is stored `Wᵀ (N_in, N_out)`, so its rows are
///   inputs and `g = a[:, lo..hi]ᵀ·dz`, `(hi − lo, N_out)`; otherwise it is
///   stored `W (N_out, N_in)`, its rows are outputs, and
///   `g = dz[:, lo..hi]ᵀ·a`, `(hi − lo, N_in)`.
/// - `a`: `(n, N_in)` the layer's input; `dz`: `(n, N_out)` its output's gradient.
///
/// One sgemm call, the transposes as strides. The SGD step runs inside it,
/// block by block as the product finishes them ([`gemm::gemm_then`]), so
/// each block of `out` (the momentum) is read back from cache, not from
/// memory: the same bits as the product followed by [`sgd_step`].
pub fn linear_backward_weight(
    transposed: bool,
    a: MatRef,
    dz: MatRef,
    (lo, hi): (usize, usize),
    beta: Beta,
    out: &mut [f32],
    sgd: Option<(&mut [f32], f32)>,
) {
    let (left, right) = if transposed { (a, dz) } else { (dz, a) };
    let (g_left, rows, cols) = (left.cols(lo, hi).t(), hi - lo, right.cols);
    let out = MatMut::new(out, rows, cols);
    let Some((w, lr)) = sgd else {
        return gemm::gemm(g_left, right, beta, out);
    };
    gemm::gemm_then(
        g_left,
        right,
        beta,
        out,
        MatMut::new(w, rows, cols),
        &|v, w| {
            if v.cs == 1 && v.rs == v.cols {
                // whole rows: one contiguous run
                let len = v.rows * v.cols;
                return sgd_step(&mut w.data[..len], &mut v.data[..len], lr);
            }
            for r in 0..v.rows {
                let (vr, wr) = (r * v.rs, r * w.rs);
                sgd_step(
                    &mut w.data[wr..wr + v.cols],
                    &mut v.data[vr..vr + v.cols],
                    lr,
                );
            }
        },
    );
}

/// Forward of bias + ReLU + (inverted) dropout, in place:
/// `a = relu(z + b) · mask / (1 − p)`.
///
/// - `z`: `(n, H)` pre-activations in, activations out.
/// - `b`: `(H)` bias.
/// - `dropout`: `None` at evaluation; else the drop probability and the mask
///   source for the first row of this block.
pub fn bias_relu_dropout_forward(z: &mut [f32], b: &[f32], dropout: Option<(f32, DropMask)>) {
    // The mask hash is 32-bit multiplies, which SSE2 (the x86-64 baseline
    // this crate is compiled for) cannot do in vectors and AVX2 can, eight
    // at a time: several times faster. Same arithmetic, same bits, either path.
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked on the line above.
        return unsafe { bias_relu_dropout_forward_avx2(z, b, dropout) };
    }
    bias_relu_dropout_forward_impl(z, b, dropout)
}

/// The portable loop, compiled for AVX2.
///
/// # Safety
/// The CPU must have AVX2 (`is_x86_feature_detected!("avx2")`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn bias_relu_dropout_forward_avx2(
    z: &mut [f32],
    b: &[f32],
    dropout: Option<(f32, DropMask)>,
) {
    bias_relu_dropout_forward_impl(z, b, dropout)
}

#[inline(always)]
fn bias_relu_dropout_forward_impl(z: &mut [f32], b: &[f32], dropout: Option<(f32, DropMask)>) {
    let h = b.len();
    match dropout {
        None => {
            for row in z.chunks_exact_mut(h) {
                for (v, &bb) in row.iter_mut().zip(b) {
                    *v = (*v + bb).max(0.0);
                }
            }
        }
        Some((p, mask)) => {
            let scale = 1.0 / (1.0 - p);
            let threshold = DropMask::threshold(p);
            for (r, row) in z.chunks_exact_mut(h).enumerate() {
                let key = mask.row_key(r);
                for (j, (v, &bb)) in row.iter_mut().zip(b).enumerate() {
                    // Branch-free: a kept unit is scaled, a dropped one
                    // multiplied by +0 (relu output is ≥ 0, so it is +0 too).
                    let keep = (unit_bits(key, j) >= threshold) as u32 as f32;
                    *v = (*v + bb).max(0.0) * (keep * scale);
                }
            }
        }
    }
}

/// Inverted dropout on a block's inputs, in place: `x = x · mask / (1 − p)`.
/// No backward: the input needs no gradient, and the first layer's weight
/// gradient `xᵀ·dz_0` reads the dropped `x` from the same buffer.
///
/// - `x`: `(n, D)` inputs; `d`: `D`.
/// - `p`, `mask`: the drop probability and the mask source for the block's
///   first row (see [`DropMask::input`]).
pub fn input_dropout_forward(x: &mut [f32], d: usize, p: f32, mask: DropMask) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked on the line above.
        return unsafe { input_dropout_forward_avx2(x, d, p, mask) };
    }
    input_dropout_forward_impl(x, d, p, mask)
}

/// The portable loop, compiled for AVX2.
///
/// # Safety
/// The CPU must have AVX2 (`is_x86_feature_detected!("avx2")`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn input_dropout_forward_avx2(x: &mut [f32], d: usize, p: f32, mask: DropMask) {
    input_dropout_forward_impl(x, d, p, mask)
}

#[inline(always)]
fn input_dropout_forward_impl(x: &mut [f32], d: usize, p: f32, mask: DropMask) {
    let scale = 1.0 / (1.0 - p);
    let threshold = DropMask::threshold(p);
    for (r, row) in x.chunks_exact_mut(d).enumerate() {
        let key = mask.row_key(r);
        for (j, v) in row.iter_mut().enumerate() {
            let keep = (unit_bits(key, j) >= threshold) as u32 as f32;
            *v *= keep * scale;
        }
    }
}

/// Backward of [`bias_relu_dropout_forward`], in place: `dz = da · ∂a/∂z`.
///
/// An activation is positive exactly when its unit was kept and its input was
/// positive, and there `∂a/∂z` is the dropout scale; elsewhere it is 0. So
/// the forward output `a` alone gives the mask, and `z` need not be kept.
///
/// - `da`: `(n, H)` gradient w.r.t. the activations in, w.r.t. `z` out.
/// - `a`: `(n, H)` the forward output.
/// - `scale`: `1 / (1 − p)`, or 1 without dropout.
pub fn bias_relu_dropout_backward(da: &mut [f32], a: &[f32], scale: f32) {
    for (g, &act) in da.iter_mut().zip(a) {
        *g = if act > 0.0 { *g * scale } else { 0.0 };
    }
}

/// Bias gradient `db ← g + β·db` with `g = Σ_rows dz`, summed row by row
/// in order so the result does not depend on how the work was split.
///
/// - `dz`: `(n, C)` view whose rows are contiguous (`cs == 1`); `db`: `(C)`.
/// - `beta`: what happens to the old `db`, as in the GEMMs. `g` is summed
///   on its own first, so `Scale(μ)` gives `round(round(μ·db) + g)`:
///   PyTorch's `buf.mul_(μ).add_(g)`, and what the weight GEMMs store.
pub fn bias_backward(dz: MatRef, db: &mut [f32], beta: Beta) {
    const CHUNK: usize = 64;
    assert_eq!(dz.cols, db.len());
    assert!(
        dz.cs == 1 || dz.cols <= 1,
        "bias_backward: rows must be contiguous"
    );
    for (c, db) in db.chunks_mut(CHUNK).enumerate() {
        let mut g = [0f32; CHUNK];
        let g = &mut g[..db.len()];
        for i in 0..dz.rows {
            let row = &dz.data[i * dz.rs + c * CHUNK..][..db.len()];
            for (s, &v) in g.iter_mut().zip(row) {
                *s += v;
            }
        }
        for (d, &s) in db.iter_mut().zip(g.iter()) {
            *d = match beta {
                Beta::Overwrite | Beta::Scale(0.0) => s,
                Beta::Accumulate => *d + s,
                Beta::Scale(b) => b * *d + s,
            };
        }
    }
}

/// The SGD step `w ← w − lr·v` (with `v` the momentum buffer, or the
/// gradient itself without momentum), each `v` that is subnormal first
/// set to 0 ([`flush`]). `w`, `v`: the same block of weight rows (any
/// length, the same for both), updated element by element.
pub fn sgd_step(w: &mut [f32], v: &mut [f32], lr: f32) {
    assert_eq!(w.len(), v.len());
    // Memory-bound, but 8-wide AVX2 still beats SSE2's 4 lanes by ~25 % on
    // cached data. The same two roundings either way.
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked on the line above.
        return unsafe { sgd_step_avx2(w, v, lr) };
    }
    sgd_step_impl(w, v, lr)
}

/// The portable loop, compiled for AVX2.
///
/// # Safety
/// The CPU must have AVX2 (`is_x86_feature_detected!("avx2")`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sgd_step_avx2(w: &mut [f32], v: &mut [f32], lr: f32) {
    sgd_step_impl(w, v, lr)
}

#[inline(always)]
fn sgd_step_impl(w: &mut [f32], v: &mut [f32], lr: f32) {
    for (w, v) in w.iter_mut().zip(v) {
        *v = flush(*v);
        *w -= lr * *v;
    }
}

/// `x`, or 0 where `x` is subnormal (below `f32::MIN_POSITIVE` in size).
///
/// For the momentum and its step (and Adam's moments, `optim`). A
/// momentum entry whose gradient has stopped (the weight of a pixel the
/// last batches never lit) decays by `μ` a step into the subnormals and
/// sticks there: `0.9 · 4·2⁻¹⁴⁹` rounds back to `4·2⁻¹⁴⁹`, so it never
/// reaches 0. Every product and step then takes it through the CPU's slow
/// path for subnormals (a microcode assist, on Intel): after the default
/// run's 20 epochs, 8,328 of the first layer's 200,704 momentum entries
/// were subnormal, and its median epoch took 0.37 s at 2 threads (0.57 s
/// at 1) against 0.28 s (0.39 s) flushed, on a 2-vCPU Intel Xeon (family
/// 6, model 167).
/// Flushing changes `w − lr·v` only for a weight below `lr · 2⁻¹⁰¹` in size
/// (then `lr · v` reaches half its last place), which no run's weight is
/// but one decayed towards 0: the default run's bytes are the same.
#[inline(always)]
pub fn flush(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE {
        0.0
    } else {
        x
    }
}

/// Fused softmax + cross-entropy forward and backward for one block, in place.
///
/// - `z`: `(n, K)` logits without bias in; `(p − onehot(y)) · inv_b` out,
///   the gradient of the mean loss over the whole batch of size `1/inv_b`.
/// - `b`: `(K)` output bias, added here.
/// - `y`: `(n)` labels.
/// - `loss`: `(n)` out, each row's `−log p[y]`.
/// - `correct`: `(n)` out, 1 where the arg-max is the label.
pub fn softmax_xent_forward_backward(
    z: &mut [f32],
    b: &[f32],
    y: &[u8],
    inv_b: f32,
    loss: &mut [f32],
    correct: &mut [u8],
) {
    let k = b.len();
    for (((row, &label), l), c) in z.chunks_exact_mut(k).zip(y).zip(loss).zip(correct) {
        let (max, ln_sum, arg) = log_softmax_stats(row, b);
        let (label, lse) = (label as usize, max + ln_sum);
        *l = (max - (row[label] + b[label])) + ln_sum;
        *c = (arg == label) as u8;
        for (j, (v, &bb)) in row.iter_mut().zip(b).enumerate() {
            let p = (*v + bb - lse).exp();
            *v = (p - (j == label) as u32 as f32) * inv_b;
        }
    }
}

/// Softmax + cross-entropy forward only (evaluation): per-row loss and the
/// predicted class. `z`: `(n, K)` logits without bias; `b`: `(K)`;
/// `y`: `(n)` labels; out: `loss` `(n)` nats, `pred` `(n)` classes.
pub fn softmax_xent_forward(z: &[f32], b: &[f32], y: &[u8], loss: &mut [f32], pred: &mut [u8]) {
    let k = b.len();
    for (((row, &label), l), p) in z.chunks_exact(k).zip(y).zip(loss).zip(pred) {
        let (max, ln_sum, arg) = log_softmax_stats(row, b);
        *l = (max - (row[label as usize] + b[label as usize])) + ln_sum;
        *p = arg as u8;
    }
}

/// `log Σ exp(z + b)` as the maximum `m` of `z + b` and `ln Σ exp(z + b −
/// m)` (computed after subtracting it, so it cannot overflow), and the
/// index of the maximum (first one on ties). Kept apart because a row's
/// loss is `(m − z_y) + ln Σ`: `(m + ln Σ) − z_y` loses `ln Σ` beside a
/// large `m` (logits of 1e9 scored a loss of 0 at 8 % accuracy).
#[inline]
fn log_softmax_stats(z: &[f32], b: &[f32]) -> (f32, f32, usize) {
    let (mut max, mut arg) = (f32::NEG_INFINITY, 0);
    for (j, (&v, &bb)) in z.iter().zip(b).enumerate() {
        if v + bb > max {
            max = v + bb;
            arg = j;
        }
    }
    let sum: f32 = z.iter().zip(b).map(|(&v, &bb)| (v + bb - max).exp()).sum();
    (max, sum.ln(), arg)
}

/// The dropout mask as a pure function of `(seed, step, row, column)`, so
/// it is the same whichever thread draws it and however the batch is split.
/// A [`DropMask::per_batch`] mask ignores the row: every image of the batch
/// loses the same units (batchwise dropout).
#[derive(Clone, Copy, Debug)]
pub struct DropMask {
    pub key: u64,
    /// Index of the block's first row within the batch.
    pub row0: usize,
    /// One mask for the whole batch instead of one per row.
    pub per_batch: bool,
}

impl DropMask {
    /// The masks of training step `step` of a run seeded `seed`: a pure
    /// function of the two, so a resumed run redraws them exactly.
    pub fn new(seed: u64, step: u64) -> Self {
        DropMask {
            key: mix(seed ^ mix(step.wrapping_add(0x9e37_79b9_7f4a_7c15))),
            row0: 0,
            per_batch: false,
        }
    }

    /// The same draws, one row's worth for every row: whether unit `j` is
    /// kept no longer depends on the row.
    pub fn per_batch(self) -> Self {
        DropMask {
            per_batch: true,
            ..self
        }
    }

    /// The mask of hidden layer `l`: layer 0 keeps the step's own key (so a
    /// one-hidden-layer network draws the masks it always drew), deeper
    /// layers a key of their own, independent of it.
    pub fn layer(self, l: usize) -> Self {
        if l == 0 {
            return self;
        }
        DropMask {
            key: mix(self.key ^ mix((l as u64).wrapping_mul(0xd1b5_4a32_d192_ed03))),
            ..self
        }
    }

    /// The mask of the inputs (`--input-dropout`): a key of its own,
    /// independent of every hidden layer's, so adding input dropout leaves
    /// the hidden masks as they were.
    pub fn input(self) -> Self {
        DropMask {
            key: mix(self.key ^ 0x6a09_e667_f3bc_c909),
            ..self
        }
    }

    /// The same masks seen from `rows` rows further into the batch: a block
    /// starting at batch row `r0` uses `mask.offset(r0)`, so a row's mask
    /// does not depend on how the batch was cut into blocks.
    pub fn offset(self, rows: usize) -> Self {
        DropMask {
            row0: self.row0 + rows,
            ..self
        }
    }

    /// Whether element `(r, j)` of the block survives dropout with probability `p`.
    pub fn keeps(&self, r: usize, j: usize, p: f32) -> bool {
        self.bits(r, j) >= Self::threshold(p)
    }

    #[inline]
    fn threshold(p: f32) -> u32 {
        (p as f64 * (1u64 << 24) as f64) as u32
    }

    /// A 32-bit key for row `r` of the block: the step's key and the row's
    /// index in the batch through the 64-bit mixer, once per row.
    #[inline]
    fn row_key(&self, r: usize) -> u32 {
        let row = if self.per_batch { 0 } else { self.row0 + r };
        (mix(self.key ^ row as u64) >> 32) as u32
    }

    /// 24 uniform random bits for element `(r, j)` of the block.
    #[inline]
    fn bits(&self, r: usize, j: usize) -> u32 {
        unit_bits(self.row_key(r), j)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_per_batch_mask_ignores_the_row_and_a_per_image_one_does_not() {
        let m = DropMask::new(4, 17).layer(1);
        let b = m.per_batch();
        let row0: Vec<bool> = (0..256).map(|j| b.keeps(0, j, 0.5)).collect();
        for r in 1..40 {
            let row: Vec<bool> = (0..256).map(|j| b.offset(r).keeps(r, j, 0.5)).collect();
            assert_eq!(row, row0, "row {r}");
        }
        // Row 0 of the per-image masks is the per-batch mask ...
        assert!((0..256).all(|j| m.keeps(0, j, 0.5) == row0[j]));
        // ... and the others differ from it.
        assert!((1..40).all(|r| (0..256).any(|j| m.keeps(r, j, 0.5) != row0[j])));
    }

    /// The bias gradient is each column's sum, past the first chunk of 64
    /// columns too, and through a view of some of a wider matrix's
    /// columns (as pass 2 gives it a part's units); then `beta` applied.
    #[test]
    fn bias_backward_sums_every_column() {
        let (n, wide, c0, c1) = (5, 170, 10, 160);
        // Small whole numbers: every sum exact in any order.
        let dz: Vec<f32> = (0..n * wide).map(|i| (i % 23) as f32 - 11.0).collect();
        let want: Vec<f32> = (c0..c1)
            .map(|c| (0..n).map(|r| dz[r * wide + c]).sum())
            .collect();
        let view = MatRef::new(&dz, n, wide).cols(c0, c1);
        for (beta, old) in [
            (Beta::Overwrite, 7.0),
            (Beta::Accumulate, 2.0),
            (Beta::Scale(0.5), 4.0),
        ] {
            let mut db = vec![old; c1 - c0];
            bias_backward(view, &mut db, beta);
            let base = match beta {
                Beta::Overwrite => 0.0,
                Beta::Accumulate => old,
                Beta::Scale(b) => b * old,
            };
            let want: Vec<f32> = want.iter().map(|w| base + w).collect();
            assert_eq!(db, want, "{beta:?}");
        }
    }

    #[test]
    fn fused_sgd_step_is_the_product_then_the_step() {
        // `w ← w − lr·v` run on each block as the product ends it must give
        // the bits of the product followed by one `sgd_step`: with rows of
        // at most 1024 (each block whole rows, one run) and of 1100 (blocks
        // cut inside rows by matrixmultiply's 1024-column `nc`), stored
        // plain and transposed, over a range of rows not starting at 0.
        let vals = |len: usize, s: usize| -> Vec<f32> {
            (0..len)
                .map(|i| (((i * 7919 + s * 104_729) % 2001) as f32 / 1000.0) - 1.0)
                .collect()
        };
        for (n, n_in, n_out, transposed) in [
            (5, 33, 70, false),
            (5, 1100, 70, false),
            (6, 90, 1100, true),
        ] {
            let (a, dz) = (vals(n * n_in, 1), vals(n * n_out, 2));
            let (a, dz) = (MatRef::new(&a, n, n_in), MatRef::new(&dz, n, n_out));
            let (stored_rows, row) = if transposed {
                (n_in, n_out)
            } else {
                (n_out, n_in)
            };
            let (lo, hi) = (3, stored_rows - 2);
            let (v0, w0) = (vals((hi - lo) * row, 3), vals((hi - lo) * row, 4));
            let (mut v_want, mut w_want) = (v0.clone(), w0.clone());
            linear_backward_weight(
                transposed,
                a,
                dz,
                (lo, hi),
                Beta::Scale(0.9),
                &mut v_want,
                None,
            );
            sgd_step(&mut w_want, &mut v_want, 0.05);
            let (mut v, mut w) = (v0, w0);
            let sgd = Some((&mut w[..], 0.05));
            linear_backward_weight(transposed, a, dz, (lo, hi), Beta::Scale(0.9), &mut v, sgd);
            let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&v), bits(&v_want), "momentum, rows of {row}");
            assert_eq!(bits(&w), bits(&w_want), "weight, rows of {row}");
        }
    }

    #[test]
    fn softmax_gradient_rows_sum_to_zero() {
        let mut z = vec![1.0, 2.0, 3.0, -1.0, 0.0, 1000.0];
        let b = [0.5, -0.5, 0.0];
        let (mut loss, mut c) = (vec![0.0; 2], vec![0; 2]);
        softmax_xent_forward_backward(&mut z, &b, &[2, 0], 1.0, &mut loss, &mut c);
        assert!(z.iter().all(|v| v.is_finite()));
        for row in z.chunks(3) {
            assert!(row.iter().sum::<f32>().abs() < 1e-6);
        }
        assert_eq!(c, vec![1, 0]);
        assert!(
            loss[1] > 900.0,
            "huge logit on the wrong class: {}",
            loss[1]
        );
    }

    #[test]
    fn dropout_mask_has_no_visible_structure() {
        // 4,000 rows × 256 units at p = 0.2: every unit kept at ~0.8, and a
        // unit's fate independent of its neighbour's in the row, the same
        // unit in the next row, and the same unit in the next step.
        let (rows, h, p) = (4000, 256, 0.2f32);
        let (m, next) = (DropMask::new(3, 17), DropMask::new(3, 18));
        let q = 1.0 - p as f64;
        let mut per_unit = vec![0usize; h];
        let (mut right, mut below, mut later) = (0usize, 0usize, 0usize);
        for r in 0..rows {
            for (j, kept) in per_unit.iter_mut().enumerate() {
                let k = m.keeps(r, j, p);
                *kept += k as usize;
                right += (k && m.keeps(r, (j + 1) % h, p)) as usize;
                below += (k && m.keeps(r + 1, j, p)) as usize;
                later += (k && next.keeps(r, j, p)) as usize;
            }
        }
        for (j, &c) in per_unit.iter().enumerate() {
            let f = c as f64 / rows as f64;
            assert!((f - q).abs() < 0.03, "unit {j} kept {f}");
        }
        let n = (rows * h) as f64;
        for (name, c) in [("right", right), ("below", below), ("next step", later)] {
            let f = c as f64 / n;
            assert!(
                (f - q * q).abs() < 0.005,
                "P(kept and {name} kept) = {f}, want {}",
                q * q
            );
        }
    }

    #[test]
    fn dispatched_loops_give_the_portable_bits() {
        // On an AVX2 machine the public functions run AVX2 builds; they must
        // give exactly what the baseline build of the same loop gives.
        let (n, h) = (13, 37);
        let z0: Vec<f32> = (0..n * h)
            .map(|i| ((i * 7919) % 1000) as f32 / 300.0 - 1.6)
            .collect();
        let b: Vec<f32> = (0..h).map(|j| j as f32 * 0.01 - 0.2).collect();
        for dropout in [None, Some((0.3, DropMask::new(5, 8).offset(3)))] {
            let (mut fast, mut portable) = (z0.clone(), z0.clone());
            bias_relu_dropout_forward(&mut fast, &b, dropout);
            bias_relu_dropout_forward_impl(&mut portable, &b, dropout);
            assert!(fast
                .iter()
                .zip(&portable)
                .all(|(x, y)| x.to_bits() == y.to_bits()));
        }
        let mask = DropMask::new(5, 8).input().offset(2);
        let (mut fast, mut portable) = (z0.clone(), z0.clone());
        input_dropout_forward(&mut fast, h, 0.3, mask);
        input_dropout_forward_impl(&mut portable, h, 0.3, mask);
        assert!(fast
            .iter()
            .zip(&portable)
            .all(|(x, y)| x.to_bits() == y.to_bits()));
        // Momentum with subnormals among it (each third entry), flushed.
        let v: Vec<f32> = (z0.iter().enumerate())
            .map(|(i, x)| match i % 3 {
                0 => f32::from_bits(i as u32 + 1) * x.signum(),
                _ => x * 0.37,
            })
            .collect();
        let (mut fast, mut portable) = (z0.clone(), z0.clone());
        let (mut v_fast, mut v_portable) = (v.clone(), v);
        sgd_step(&mut fast, &mut v_fast, 0.07);
        sgd_step_impl(&mut portable, &mut v_portable, 0.07);
        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&fast), bits(&portable));
        assert_eq!(bits(&v_fast), bits(&v_portable));
        assert!(v_fast.iter().step_by(3).all(|&v| v == 0.0));
    }

    /// A momentum entry whose gradient has stopped decays into the
    /// subnormals and would stick there (`0.9 · 4·2⁻¹⁴⁹` rounds back to
    /// itself), slowing every later product and step; the fused step sets
    /// it to 0, and the weight is what `w − lr·v` gave.
    #[test]
    fn a_momentum_stuck_in_the_subnormals_is_flushed() {
        let stuck = f32::from_bits(4);
        assert_eq!(0.9 * stuck, stuck, "why it sticks");
        // Exactly the subnormals go: the smallest normal stays.
        let largest_subnormal = f32::from_bits(f32::MIN_POSITIVE.to_bits() - 1);
        assert_eq!(flush(-largest_subnormal), 0.0);
        assert_eq!(flush(f32::MIN_POSITIVE), f32::MIN_POSITIVE);
        assert_eq!(flush(-f32::MIN_POSITIVE), -f32::MIN_POSITIVE);
        // One pixel (input column 1) that no image of the batch lights.
        let (n, n_in, n_out) = (4, 3, 2);
        let a: Vec<f32> = (0..n * n_in)
            .map(|i| if i % n_in == 1 { 0.0 } else { 0.5 })
            .collect();
        let dz = vec![0.25; n * n_out];
        let (a, dz) = (MatRef::new(&a, n, n_in), MatRef::new(&dz, n, n_out));
        let mut v = vec![0.1, stuck, 0.1, -0.1, -stuck, 0.1];
        let w0 = vec![0.3, -0.7, 0.2, 0.05, 1e-3, -0.4];
        let mut w = w0.clone();
        let sgd = Some((&mut w[..], 0.5));
        linear_backward_weight(false, a, dz, (0, n_out), Beta::Scale(0.9), &mut v, sgd);
        assert_eq!((v[1], v[4]), (0.0, 0.0), "{v:?}");
        assert_eq!((w[1], w[4]), (w0[1], w0[4]));
        assert!(v.iter().enumerate().all(|(i, &x)| i % 3 == 1 || x != 0.0));
    }

    #[test]
    fn input_mask_is_its_own() {
        // The input mask keeps about 1 − p, agrees with `keeps`, and is not
        // the first hidden layer's mask (same step, same rows).
        let (d, n, p) = (784, 50, 0.2f32);
        let m = DropMask::new(1, 4);
        let mut x = vec![1.0; n * d];
        input_dropout_forward(&mut x, d, p, m.input());
        let kept = x.iter().filter(|&&v| v > 0.0).count() as f64 / x.len() as f64;
        assert!((kept - 0.8).abs() < 0.01, "kept {kept}");
        let mut same_as_hidden = 0;
        for r in 0..n {
            for j in 0..d {
                let k = m.input().keeps(r, j, p);
                assert_eq!(k, x[r * d + j] == 1.25);
                same_as_hidden += (k == m.keeps(r, j, p)) as usize;
            }
        }
        let f = same_as_hidden as f64 / (n * d) as f64;
        assert!(
            (f - 0.68).abs() < 0.02,
            "agreement with the hidden mask {f}"
        );
    }

    /// Tied logits (a fresh or saturated model) predict the first of the
    /// tied classes, in evaluation and in the training pass's hit count.
    #[test]
    fn ties_go_to_the_first_class() {
        let z = [0.5, 2.0, 2.0, 1.0, 3.0, 3.0, 3.0, 3.0];
        let b = [0.0; 4];
        let (mut loss, mut pred) = ([0.0; 2], [9u8; 2]);
        softmax_xent_forward(&z, &b, &[1, 0], &mut loss, &mut pred);
        assert_eq!(pred, [1, 0]);
        let mut zz = z;
        let mut hit = [9u8; 2];
        softmax_xent_forward_backward(&mut zz, &b, &[1, 0], 0.5, &mut loss, &mut hit);
        assert_eq!(hit, [1, 1]);
    }

    /// A row's loss beside large logits: ten tied at 1e9 (a bias the same
    /// for every class, which changes no probability) score ln 10, in
    /// evaluation and in training, not the 0 that `(m + ln Σ) − z_y` gave.
    #[test]
    fn the_loss_keeps_its_log_sum_beside_large_logits() {
        let ln10 = 10f32.ln();
        for c in [0.0, 1e4, 1e9, 1e30] {
            let (z, b) = ([0.0f32; 10], [c; 10]);
            let (mut loss, mut pred) = ([0.0; 1], [0u8; 1]);
            softmax_xent_forward(&z, &b, &[3], &mut loss, &mut pred);
            assert!((loss[0] - ln10).abs() < 1e-6, "{c}: {}", loss[0]);
            let (mut zz, mut hit, mut l) = (z, [0u8; 1], [0.0; 1]);
            softmax_xent_forward_backward(&mut zz, &b, &[3], 1.0, &mut l, &mut hit);
            assert_eq!(l, loss, "{c}");
        }
    }

    #[test]
    fn dropout_keeps_about_one_minus_p() {
        let h = 1000;
        let mut z = vec![1.0; 10 * h];
        let b = vec![0.0; h];
        bias_relu_dropout_forward(&mut z, &b, Some((0.2, DropMask::new(7, 3))));
        let kept = z.iter().filter(|&&v| v > 0.0).count() as f64 / z.len() as f64;
        assert!((kept - 0.8).abs() < 0.02, "kept {kept}");
        assert!(z.iter().all(|&v| v == 0.0 || v == 1.25));
    }
}
