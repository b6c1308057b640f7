//! Optimisers and the max-norm constraint, as PyTorch defines them.
//!
//! Every optimiser keeps its state in slabs of the parameters' layout
//! ([`Params`]: `W_0ᵀ | b_0 | W_1 | b_1 | …`), so its update is a flat,
//! elementwise loop over the parameter, gradient and state slabs: any cut
//! of that loop gives the same bits, so the update is deterministic for any
//! thread count. One step, with `g` the batch's mean gradient, `t` the step
//! number (1 for the first), `lr` the step's learning rate and `wd` the
//! weight decay (0 on biases with `--no-decay-bias`); the letters are the
//! code's (README.md writes the momentum buffer `v` and `exp_avg_sq` `s`):
//!
//! ```text
//! sgd       d = g + wd·w                       torch.optim.SGD
//!           m = μ·m + d        (μ > 0)         momentum_buffer (starts at 0, so m_1 = d)
//!           d = m              (μ > 0)
//!           w = w − lr·d
//! nesterov  as sgd, but d = d + μ·m            SGD(nesterov=True)
//! adam      g = g + wd·w                       torch.optim.Adam (L2 decay, coupled)
//!           m = β1·m + (1 − β1)·g              exp_avg
//!           v = β2·v + (1 − β2)·g²             exp_avg_sq
//!           w = w − lr · (m / (1 − β1^t)) / (√(v / (1 − β2^t)) + eps)
//! adamw     w = w·(1 − lr·wd)                  torch.optim.AdamW (decoupled)
//!           then adam's steps with wd = 0
//! ```
//!
//! The f32 arithmetic takes PyTorch's steps in the order of its
//! single-tensor `for` loop: `m.lerp_(g, 1 − β1)`, `v.mul_(β2).addcmul_(g,
//! g, 1 − β2)`, `denom = √v / √(1 − β2^t) + eps`, `w.addcdiv_(m, denom,
//! −lr/(1 − β1^t))`, the step's scalars computed in f64 from the f32 flag
//! values. Its roundings are not PyTorch's bit for bit (PyTorch's CPU
//! kernels fuse the lerp and the SGD step into multiply-adds, round
//! `((1 − β2)·g)·g` and `(−step·m)/denom`; this computes `(1 − β2)·(g·g)`
//! and `−step·(m/denom)`), so a step agrees with PyTorch's to about 1e-5
//! relative, which is what `tests/optim.rs` checks.
//!
//! Plain SGD without weight decay comes here only when it trains the
//! thinned network of one hidden dropout mask per batch
//! (`crate::train::Regularisers::thins`: `--dropout-mask batch`, hidden
//! dropout above 0 and a hidden layer; its gradient is scattered into a
//! slab): otherwise the trainer folds its momentum into the gradient GEMMs
//! (`Beta::Scale(μ)`, see [`crate::model::forward_backward`]), its fast
//! path, untouched.

use std::ops::Range;

use crate::layers::flush;
use crate::model::{stored_transposed, Dims, Params};

/// `--optimizer`: which update rule. Its flag values are also its names in
/// checkpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// SGD with (heavy-ball) momentum, `torch.optim.SGD`.
    Sgd,
    /// SGD with Nesterov momentum, `torch.optim.SGD(nesterov=True)`.
    Nesterov,
    /// Adam with L2 weight decay added to the gradient, `torch.optim.Adam`.
    Adam,
    /// Adam with decoupled weight decay, `torch.optim.AdamW`.
    Adamw,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Sgd, Kind::Nesterov, Kind::Adam, Kind::Adamw];

    /// The flag value: `sgd`, `nesterov`, `adam`, `adamw`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Sgd => "sgd",
            Kind::Nesterov => "nesterov",
            Kind::Adam => "adam",
            Kind::Adamw => "adamw",
        }
    }

    /// The kind whose [`Kind::name`] is `s`.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Adam or AdamW (two state slabs, `exp_avg` and `exp_avg_sq`).
    pub fn is_adam(self) -> bool {
        matches!(self, Kind::Adam | Kind::Adamw)
    }
}

/// An optimiser and its hyper-parameters (all validated by the CLI).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Optimizer {
    pub kind: Kind,
    /// `μ`, sgd and nesterov only (nesterov needs `μ > 0`).
    pub momentum: f32,
    /// Adam's `β1`, `β2` and `eps`.
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// `wd`: coupled (added to the gradient) for sgd, nesterov and adam,
    /// decoupled for adamw.
    pub weight_decay: f32,
    /// Decay the biases too (PyTorch's default, which applies `weight_decay`
    /// to every parameter it is given); `--no-decay-bias` clears it.
    pub decay_bias: bool,
}

/// Defaults of Adam's flags (PyTorch's).
pub const BETA1: f32 = 0.9;
pub const BETA2: f32 = 0.999;
pub const EPS: f32 = 1e-8;
/// AdamW's default weight decay (PyTorch's); every other optimiser's is 0.
pub const ADAMW_WEIGHT_DECAY: f32 = 0.01;
/// Default learning rates of sgd and nesterov (the default recipe's) and of
/// adam and adamw (PyTorch's), and sgd's momentum, where a preset chose
/// another optimiser.
pub const SGD_LR: f32 = 0.1;
pub const ADAM_LR: f32 = 0.001;
pub const SGD_MOMENTUM: f32 = 0.9;

impl Optimizer {
    /// SGD with momentum `μ`, no weight decay: the trainer's default.
    pub fn sgd(momentum: f32) -> Self {
        Optimizer {
            kind: Kind::Sgd,
            momentum,
            beta1: BETA1,
            beta2: BETA2,
            eps: EPS,
            weight_decay: 0.0,
            decay_bias: true,
        }
    }

    /// Whether the update folds into the gradient GEMMs (`v ← μ·v + g` as
    /// their β, then `w ← w − lr·v`): plain SGD without weight decay.
    pub fn fused(&self) -> bool {
        self.kind == Kind::Sgd && self.weight_decay == 0.0
    }

    /// State slabs besides the parameters: the momentum buffer (or Adam's
    /// `exp_avg`) and Adam's `exp_avg_sq`; and a gradient slab when not fused.
    pub fn extra_slabs(&self) -> usize {
        1 + self.kind.is_adam() as usize + !self.fused() as usize
    }

    /// How the run header describes it: `sgd momentum 0.9`, `adam beta1 0.9
    /// beta2 0.999 eps 1e-8, weight decay 0.01 (not biases)`.
    pub fn describe(&self) -> String {
        let mut s = match self.kind {
            Kind::Sgd | Kind::Nesterov => {
                let momentum = crate::show::number(self.momentum);
                format!("{} momentum {momentum}", self.kind.name())
            }
            Kind::Adam | Kind::Adamw => format!(
                "{} beta1 {} beta2 {} eps {}",
                self.kind.name(),
                crate::show::number(self.beta1),
                crate::show::number(self.beta2),
                crate::show::shortest(self.eps)
            ),
        };
        s.push_str(&format!(
            ", weight decay {}",
            crate::show::number(self.weight_decay)
        ));
        if !self.decay_bias {
            s.push_str(" (not biases)");
        }
        s
    }
}

/// One update of `w` by the gradient `g` with learning rate `lr`, at step
/// `t` (1 for the first), on every parameter: `m` is the momentum buffer
/// (sgd, nesterov) or `exp_avg` (adam, adamw), `v` Adam's `exp_avg_sq`
/// (`None` for the others). Cut into `parts` contiguous ranges run with
/// `rayon::join`; elementwise, so the cut changes no bit.
#[allow(clippy::too_many_arguments)]
pub fn update(
    opt: &Optimizer,
    w: &mut Params,
    g: &Params,
    m: &mut Params,
    v: Option<&mut Params>,
    lr: f32,
    t: u64,
    parts: usize,
) {
    assert_eq!(w.dims, g.dims);
    assert_eq!(w.dims, m.dims);
    let n = w.data.len();
    let scalars = Scalars::new(opt, lr, t);
    let dims = &w.dims;
    let mut empty: [f32; 0] = [];
    let v: &mut [f32] = match v {
        Some(v) => {
            assert_eq!(v.dims, *dims);
            &mut v.data
        }
        None => {
            assert!(!opt.kind.is_adam(), "adam needs its exp_avg_sq slab");
            &mut empty
        }
    };
    let chunk = n.div_ceil(parts.max(1)).next_multiple_of(16);
    let slabs = Slabs {
        lo: 0,
        w: &mut w.data,
        g: &g.data,
        m: &mut m.data,
        v,
    };
    halve(slabs, chunk, &|s| update_dispatch(s, dims, opt, &scalars));
}

/// [`Slabs::update`] in an AVX2 build where the CPU has it: the square root
/// and division go 8 wide instead of SSE2's 4, the same IEEE operations in
/// the same order (no FMA), so the same bits either way.
fn update_dispatch(s: Slabs, dims: &Dims, opt: &Optimizer, scalars: &Scalars) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked on the line above.
        return unsafe { update_avx2(s, dims, opt, scalars) };
    }
    s.update(dims, opt, scalars)
}

/// The portable loop, compiled for AVX2.
///
/// # Safety
/// The CPU must have AVX2 (`is_x86_feature_detected!("avx2")`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn update_avx2(s: Slabs, dims: &Dims, opt: &Optimizer, scalars: &Scalars) {
    s.update(dims, opt, scalars)
}

/// The scalars of one step, computed once, in f64 as PyTorch computes them
/// in Python, then rounded to f32 as its kernels take them.
struct Scalars {
    lr: f32,
    /// sgd, nesterov: `μ`.
    mu: f32,
    /// adam, adamw: `1 − β1`, `β2`, `1 − β2`, `lr / (1 − β1^t)`,
    /// `√(1 − β2^t)` and `eps`.
    one_minus_b1: f32,
    b2: f32,
    one_minus_b2: f32,
    step_size: f32,
    bc2_sqrt: f32,
    eps: f32,
    /// adamw: `1 − lr·wd`.
    decoupled: f32,
}

impl Scalars {
    fn new(opt: &Optimizer, lr: f32, t: u64) -> Self {
        let t = t.max(1).min(i32::MAX as u64) as i32;
        let (b1, b2) = (opt.beta1 as f64, opt.beta2 as f64);
        Scalars {
            lr,
            mu: opt.momentum,
            one_minus_b1: (1.0 - b1) as f32,
            b2: opt.beta2,
            one_minus_b2: (1.0 - b2) as f32,
            step_size: (lr as f64 / (1.0 - b1.powi(t))) as f32,
            bc2_sqrt: (1.0 - b2.powi(t)).sqrt() as f32,
            eps: opt.eps,
            decoupled: (1.0 - lr as f64 * opt.weight_decay as f64) as f32,
        }
    }
}

/// `1 − lr·wd·g`: the factor that weight decay `wd` alone scales the
/// weights by in a step of `kind` at learning rate `lr`, where `g` is 1 for
/// sgd and adamw and `1 + μ` for nesterov (its step adds the decayed
/// direction again through the momentum's look-ahead, `d + μ·v`), and no
/// decay for adam (its L2 term passes through its normalisation). For the
/// momentum optimisers it is the first step's factor; later steps add
/// earlier ones' decay through the momentum. Computed from the decimals the
/// flags were given as (the shortest that read back as these `f32`s):
/// `--lr 0.01 --weight-decay 100` gives 0, though the two `f32`s multiply
/// to 0.99999998.
pub fn decay_factor(kind: Kind, lr: f32, wd: f32, momentum: f32) -> f64 {
    let decimal = |x: f32| x.to_string().parse::<f64>().unwrap_or(f64::from(x));
    let gain = match kind {
        Kind::Adam => 0.0,
        Kind::Sgd | Kind::Adamw => 1.0,
        Kind::Nesterov => 1.0 + decimal(momentum),
    };
    1.0 - decimal(lr) * decimal(wd) * gain
}

/// Whether [`decay_factor`] zeroes or flips the weights.
pub fn decay_zeroes(kind: Kind, lr: f32, wd: f32, momentum: f32) -> bool {
    decay_factor(kind, lr, wd, momentum) <= 0.0
}

/// Equal-length ranges `lo..lo + w.len()` of the four slabs.
struct Slabs<'a> {
    lo: usize,
    w: &'a mut [f32],
    g: &'a [f32],
    m: &'a mut [f32],
    /// Empty when the optimiser has no second moment.
    v: &'a mut [f32],
}

impl<'a> Slabs<'a> {
    fn split(self, at: usize) -> (Self, Self) {
        let (w0, w1) = self.w.split_at_mut(at);
        let (g0, g1) = self.g.split_at(at);
        let (m0, m1) = self.m.split_at_mut(at);
        let (v0, v1) = self.v.split_at_mut(at.min(self.v.len()));
        (
            Slabs {
                lo: self.lo,
                w: w0,
                g: g0,
                m: m0,
                v: v0,
            },
            Slabs {
                lo: self.lo + at,
                w: w1,
                g: g1,
                m: m1,
                v: v1,
            },
        )
    }

    /// The update on these elements, tensor by tensor (a bias may be spared
    /// the decay).
    #[inline(always)]
    fn update(self, dims: &Dims, opt: &Optimizer, s: &Scalars) {
        let hi = self.lo + self.w.len();
        for (range, bias) in tensors(dims) {
            let (a, b) = (range.start.max(self.lo), range.end.min(hi));
            if a >= b {
                continue;
            }
            let r = a - self.lo..b - self.lo;
            let wd = if bias && !opt.decay_bias {
                0.0
            } else {
                opt.weight_decay
            };
            let (w, g, m) = (
                &mut self.w[r.clone()],
                &self.g[r.clone()],
                &mut self.m[r.clone()],
            );
            match opt.kind {
                Kind::Sgd | Kind::Nesterov => sgd(w, g, m, wd, opt.kind == Kind::Nesterov, s),
                Kind::Adam => adam(w, g, m, &mut self.v[r], wd, 1.0, s),
                Kind::Adamw => {
                    let decay = if wd == 0.0 { 1.0 } else { s.decoupled };
                    adam(w, g, m, &mut self.v[r], 0.0, decay, s)
                }
            }
        }
    }
}

/// Run `op` on `chunk`-sized pieces of `s` (the last one shorter), halving
/// with `rayon::join`.
fn halve(s: Slabs, chunk: usize, op: &(dyn Fn(Slabs) + Sync)) {
    let n = s.w.len();
    if n <= chunk {
        return op(s);
    }
    let pieces = n.div_ceil(chunk);
    let (left, right) = s.split(pieces / 2 * chunk);
    rayon::join(|| halve(left, chunk, op), || halve(right, chunk, op));
}

/// Each tensor's range in the slab, and whether it is a bias, in slab
/// order: `W_0ᵀ, b_0, W_1, b_1, …`.
pub fn tensors(dims: &Dims) -> impl Iterator<Item = (Range<usize>, bool)> + '_ {
    let mut off = 0;
    (0..dims.layers()).flat_map(move |l| {
        let (i, o) = dims.layer(l);
        let w = off..off + i * o;
        let b = w.end..w.end + o;
        off = b.end;
        [(w, false), (b, true)]
    })
}

/// SGD and Nesterov (`torch.optim.SGD`), one tensor's elements.
#[inline(always)]
fn sgd(w: &mut [f32], g: &[f32], m: &mut [f32], wd: f32, nesterov: bool, s: &Scalars) {
    let (mu, lr) = (s.mu, s.lr);
    for ((w, &g), m) in w.iter_mut().zip(g).zip(m) {
        // d_p = grad.add(param, alpha=weight_decay)
        let mut d = if wd != 0.0 { g + wd * *w } else { g };
        if mu != 0.0 {
            // buf.mul_(momentum).add_(d_p); the buffer starts at zero, so
            // the first step stores d_p itself as PyTorch's clone does.
            // Subnormals flushed, as the fused step does (`layers::flush`).
            *m = flush(mu * *m + d);
            d = if nesterov { d + mu * *m } else { *m };
        }
        *w -= lr * d;
    }
}

/// Adam and AdamW (`torch.optim.Adam`, `AdamW`), one tensor's elements:
/// `wd` the coupled decay, `decay` the decoupled factor `1 − lr·wd` (1: none).
#[inline(always)]
fn adam(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], wd: f32, decay: f32, s: &Scalars) {
    for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m).zip(v) {
        if decay != 1.0 {
            *w *= decay; // param.mul_(1 - lr * weight_decay)
        }
        let g = if wd != 0.0 { g + wd * *w } else { g };
        // Both moments with their subnormals flushed, as the momentum's
        // (`layers::flush`): a moment whose gradient has stopped sticks there.
        *m = flush(*m + s.one_minus_b1 * (g - *m)); // exp_avg.lerp_(grad, 1 - beta1)
        *v = flush(*v * s.b2 + s.one_minus_b2 * (g * g)); // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        let denom = v.sqrt() / s.bc2_sqrt + s.eps;
        *w += -s.step_size * (*m / denom); // param.addcdiv_(exp_avg, denom, value=-step_size)
    }
}

/// The max-norm constraint: every unit's incoming weight vector (one row of
/// `W_l`, which for the first layer is a column of the stored `W_0ᵀ`) is
/// scaled to L2 norm `c` where it is longer: `w ← w · c / ‖w‖`. Biases are
/// left alone; every layer is constrained, the output layer too. Each norm
/// is summed in f32 in a fixed order (inputs in order), so the result does
/// not depend on `parts`; a sum that overflows (a norm past about 1.8e19)
/// is summed again in f64, so that only a norm above `c` is ever cut.
/// `scratch` holds at least `n_1` floats.
pub fn max_norm(w: &mut Params, c: f32, scratch: &mut [f32], parts: usize) {
    let Params { dims, data } = w;
    let parts = parts.max(1);
    let mut rest = &mut data[..];
    for l in 0..dims.layers() {
        let (i, o) = dims.layer(l);
        let (wl, r) = rest.split_at_mut(i * o);
        rest = &mut r[o..];
        if stored_transposed(l) {
            max_norm_columns(wl, o, c, &mut scratch[..o], parts);
        } else {
            par_chunks(wl, o.div_ceil(parts) * i, &|_, block| {
                // Eight rows at a time: each row's sum is still the one
                // sequential chain `row_sq` adds (same bits), but eight
                // independent chains keep the adder busy where one chain
                // waits on each add's latency (that wait was about 6 % of
                // a dropout2014 step).
                let mut groups = block.chunks_exact_mut(8 * i);
                for group in &mut groups {
                    let sq = rows_sq8(group, i);
                    for (row, sq) in group.chunks_exact_mut(i).zip(sq) {
                        let f = shrink_or_wide(sq, c, || row.iter().copied());
                        scale_to(row, f);
                    }
                }
                for row in groups.into_remainder().chunks_exact_mut(i) {
                    let sq = row_sq(row);
                    let f = shrink_or_wide(sq, c, || row.iter().copied());
                    scale_to(row, f);
                }
            });
        }
    }
}

/// Max-norm on the columns of `wt (D, h)` (row-major): per-column scale
/// factors into `scale`, the squared norms summed down the rows in order (in
/// parallel over column ranges), then applied row by row (in parallel over
/// row ranges).
fn max_norm_columns(wt: &mut [f32], h: usize, c: f32, scale: &mut [f32], parts: usize) {
    {
        let wt: &[f32] = wt;
        par_chunks(scale, h.div_ceil(parts), &|c0, s| {
            s.fill(0.0);
            for row in wt.chunks_exact(h) {
                for (acc, &x) in s.iter_mut().zip(&row[c0..]) {
                    *acc += x * x;
                }
            }
            for (j, f) in s.iter_mut().enumerate() {
                let column = || wt.chunks_exact(h).map(move |row| row[c0 + j]);
                *f = shrink_or_wide(*f, c, column);
            }
        });
    }
    if scale.iter().all(|&f| f == 1.0) {
        return;
    }
    let scale: &[f32] = scale;
    let rows = (wt.len() / h).div_ceil(parts);
    par_chunks(wt, rows * h, &|_, block| {
        for row in block.chunks_exact_mut(h) {
            row.iter_mut().zip(scale).for_each(|(x, &f)| *x *= f);
        }
    });
}

/// `Σ x²` over `row`, in order from the first element: the one summation
/// order max-norm uses, whatever the thread count.
#[inline]
fn row_sq(row: &[f32]) -> f32 {
    row.iter().map(|x| x * x).sum()
}

/// [`row_sq`] of each of the eight rows of `group` (`8 × i`, row-major),
/// the eight sums advanced together: each lane adds its row's squares in
/// the same order as `row_sq`, so each result has the same bits.
#[inline]
#[allow(clippy::needless_range_loop)] // `j` walks eight rows in lockstep
fn rows_sq8(group: &[f32], i: usize) -> [f32; 8] {
    let rows: [&[f32]; 8] = std::array::from_fn(|k| &group[k * i..(k + 1) * i]);
    let mut acc = [-0.0f32; 8];
    for j in 0..i {
        for k in 0..8 {
            let x = rows[k][j];
            acc[k] += x * x;
        }
    }
    acc
}

/// [`shrink`], unless the f32 sum `sq` overflowed (a norm past about
/// 1.8e19, which a limit up to f32's largest may allow): then the norm is
/// summed again, in f64, from `xs()`, the vector's elements. A finite `sq`
/// keeps the f32 bits every run has had.
#[inline]
fn shrink_or_wide<I: Iterator<Item = f32>>(sq: f32, c: f32, xs: impl FnOnce() -> I) -> f32 {
    if sq.is_finite() {
        return shrink(sq, c);
    }
    let norm = xs()
        .map(|x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if norm > f64::from(c) {
        (f64::from(c) / norm) as f32
    } else {
        1.0
    }
}

/// `row · f`, unless `f` is 1 (the row is short enough).
#[inline]
fn scale_to(row: &mut [f32], f: f32) {
    if f != 1.0 {
        row.iter_mut().for_each(|x| *x *= f);
    }
}

/// The factor that brings a vector of squared norm `sq` down to norm `c`:
/// `c / ‖w‖` where `‖w‖ > c`, else 1.
#[inline]
fn shrink(sq: f32, c: f32) -> f32 {
    let norm = sq.sqrt();
    if norm > c {
        c / norm
    } else {
        1.0
    }
}

/// `op(start, piece)` on consecutive `chunk`-sized pieces of `x` (`start`:
/// the piece's offset in `x`), halving with `rayon::join`.
fn par_chunks(x: &mut [f32], chunk: usize, op: &(dyn Fn(usize, &mut [f32]) + Sync)) {
    fn go(x: &mut [f32], start: usize, chunk: usize, op: &(dyn Fn(usize, &mut [f32]) + Sync)) {
        if x.len() <= chunk {
            return op(start, x);
        }
        let at = x.len().div_ceil(chunk) / 2 * chunk;
        let (a, b) = x.split_at_mut(at);
        rayon::join(|| go(a, start, chunk, op), || go(b, start + at, chunk, op));
    }
    go(x, 0, chunk.max(1), op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Init;

    #[test]
    fn eight_row_norms_are_the_sequential_sums() {
        // The unit norms max-norm compares with c: eight at a time must be
        // the one-row sequential sum to the bit, on rows whose sums round.
        let values = |len: usize| -> Vec<f32> {
            (0..len)
                .map(|n| ((n as f32 * 0.618_034).fract() - 0.5) * (1.0 + n as f32 * 1e-3))
                .collect()
        };
        for i in [1, 7, 784, 1024] {
            let group = values(8 * i);
            let want: Vec<u32> = group
                .chunks_exact(i)
                .map(|r| r.iter().fold(-0.0f32, |a, x| a + x * x).to_bits())
                .collect();
            let got: Vec<u32> = rows_sq8(&group, i).iter().map(|x| x.to_bits()).collect();
            assert_eq!(got, want, "rows of {i}");
        }
        // On such rows another order gives other bits, so the equality
        // above is not vacuous: pairwise sums of the first 1024-wide row.
        let row = values(1024);
        let pairwise: f32 = row.chunks(2).map(|p| p[0] * p[0] + p[1] * p[1]).sum();
        assert_ne!(pairwise.to_bits(), row_sq(&row).to_bits());
    }

    /// The unfused momentum (nesterov, or sgd with weight decay) flushes
    /// its subnormals as the fused step does: one whose gradient is 0
    /// would stick (`0.9 · 4·2⁻¹⁴⁹` rounds back to it) and slow each step.
    #[test]
    fn an_unfused_momentum_flushes_its_subnormals() {
        let stuck = f32::from_bits(4);
        for (kind, wd) in [(Kind::Nesterov, 0.0), (Kind::Sgd, 1e-4)] {
            let opt = Optimizer {
                kind,
                weight_decay: wd,
                ..Optimizer::sgd(0.9)
            };
            let s = Scalars::new(&opt, 0.1, 3);
            // A weight of 0 (so the decay adds nothing), a zero gradient.
            let (mut w, g, mut m) = ([0.0f32, 0.5], [0.0f32, 0.25], [stuck, 0.125]);
            sgd(&mut w, &g, &mut m, wd, kind == Kind::Nesterov, &s);
            assert_eq!(m[0], 0.0, "{kind:?}");
            assert_eq!(w[0], 0.0, "{kind:?}");
            assert!(m[1] > 0.0, "{kind:?}");
        }
    }

    /// Adam's moments flush their subnormals too: with the gradient at 0
    /// each would stick (`0.9 · m`, `0.999 · s` round back to them).
    #[test]
    fn adams_moments_flush_their_subnormals() {
        let (m0, s0) = (f32::from_bits(4), f32::from_bits(400));
        assert_eq!((0.9 * m0, 0.999 * s0), (m0, s0), "why they stick");
        for kind in [Kind::Adam, Kind::Adamw] {
            let opt = Optimizer {
                kind,
                ..Optimizer::sgd(0.9)
            };
            let s = Scalars::new(&opt, 1e-3, 50);
            let (mut w, g) = ([0.25f32, 0.5], [0.0f32, 0.125]);
            let (mut m, mut v) = ([m0, 0.01], [s0, 1e-4]);
            adam(&mut w, &g, &mut m, &mut v, 0.0, 1.0, &s);
            assert_eq!((m[0], v[0], w[0]), (0.0, 0.0, 0.25), "{kind:?}");
            assert!(m[1] > 0.0 && v[1] > 0.0 && w[1] < 0.5, "{kind:?}");
        }
    }

    #[test]
    fn dispatched_update_gives_the_portable_bits() {
        let dims = Dims::new(37, &[13], 5);
        let slab = |seed, s| Params::init(dims.clone(), Init::Normal(s), seed);
        let (w, g, m) = (slab(1, 0.5), slab(2, 0.1), slab(3, 0.05));
        let mut v = slab(4, 0.01);
        v.data.iter_mut().for_each(|x| *x = *x * *x);
        for kind in Kind::ALL {
            let opt = Optimizer {
                kind,
                weight_decay: 0.03,
                decay_bias: false,
                ..Optimizer::sgd(0.9)
            };
            let s = Scalars::new(&opt, 0.01, 7);
            let run = |portable: bool| {
                let (mut w, mut m, mut v) = (w.clone(), m.clone(), v.clone());
                let slabs = Slabs {
                    lo: 0,
                    w: &mut w.data,
                    g: &g.data,
                    m: &mut m.data,
                    v: &mut v.data,
                };
                if portable {
                    slabs.update(&dims, &opt, &s);
                } else {
                    update_dispatch(slabs, &dims, &opt, &s);
                }
                let bits = |p: &Params| p.data.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                (bits(&w), bits(&m), bits(&v))
            };
            assert_eq!(run(true), run(false), "{}", kind.name());
            assert_ne!(
                run(true).0,
                w.data.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );
        }
    }

    /// The run header's words for each optimiser, as its doc shows them.
    #[test]
    fn the_run_header_describes_each_optimiser() {
        assert_eq!(
            Optimizer::sgd(0.9).describe(),
            "sgd momentum 0.9, weight decay 0"
        );
        let adam = Optimizer {
            kind: Kind::Adam,
            weight_decay: 0.01,
            decay_bias: false,
            ..Optimizer::sgd(0.9)
        };
        assert_eq!(
            adam.describe(),
            "adam beta1 0.9 beta2 0.999 eps 1e-8, weight decay 0.01 (not biases)"
        );
        let nesterov = Optimizer {
            kind: Kind::Nesterov,
            weight_decay: 5e-4,
            ..Optimizer::sgd(0.95)
        };
        assert_eq!(
            nesterov.describe(),
            "nesterov momentum 0.95, weight decay 0.0005"
        );
    }
}
