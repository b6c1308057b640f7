//! A multilayer perceptron of any depth: its widths, its parameters in one
//! slab, and the forward and backward passes over it, wired from
//! [`crate::gemm`] and [`crate::layers`].
//!
//! Letters: `B` rows of the batch, `R` of them in the block being processed
//! (layers.rs's `n`), `L` linear layers,
//! widths `n_0 = D` (inputs), `n_1 … n_{L−1}` (hidden units), `n_L = K`
//! (classes). Layer `l` maps `n_l → n_{l+1}`: `a_{l−1}·W_lᵀ + b_l` with
//! `a_{−1} = x`, then ReLU and dropout on every layer but the last, whose
//! output feeds the fused softmax + cross-entropy. `L = 1` (no hidden
//! layer) is softmax regression. Every buffer is row-major f32 (a weight
//! may be read through a stride-swapped view).
//!
//! In the table below `z_l` is the GEMM's output before its bias (the next
//! kernel adds `b_l`), and `m_l` a dropout mask already scaled: `1/(1 − p)`
//! where a unit is kept, 0 where it is dropped (inverted dropout), so the
//! network needs no rescaling at test time.
//!
//! Files use PyTorch's `nn.Linear` layout, `W_l (n_{l+1}, n_l)`. In memory
//! the first layer is kept transposed, `W_0ᵀ (D, n_1)`, because sgemm packs a
//! row-major right operand with plain copies and a transposed one by
//! register transposes (the patch in `vendor/matrixmultiply`), slower, and
//! `W_0` is the largest operand packed most often (by every row block, and
//! it has no backward-to-input product that would want the other way
//! round). Every other transpose is a stride swap.
//!
//! ```text
//! pass 1, per row block (rows are independent):
//! forward   a_{−1} = x = load(rows)        (R, D)       u8 pixels → f32 · 1/255
//!           x = x·m_in                     (R, D)       input dropout, in place
//!           for l in 0..L:
//!             z_l = a_{l−1}·W_lᵀ           (R, n_{l+1})  GEMM
//!             a_l = relu(z_l + b_l)·m_l    (R, n_{l+1})  in place, hidden layers only
//!           p = softmax(z_{L−1} + b_{L−1}); loss = −mean log p[y]
//! backward  dz_{L−1} = (p − onehot(y))/B   (R, K)        in place of z_{L−1}
//!           for l in (1..L).rev():
//!             da_{l−1} = dz_l·W_l          (R, n_l)      GEMM
//!             dz_{l−1} = da_{l−1} ⊙ relu′·m (R, n_l)      in place
//! pass 2, per range of weight rows (sums over the rows of the batch):
//!           for l in 0..L:
//!             dW_l = dz_lᵀ·a_{l−1}   db_l = Σ_B dz_l      GEMM (dW_0ᵀ = xᵀ·dz_0)
//!             v ← μ·v + g;  w ← w − lr·v   (momentum folded into the GEMMs' β)
//! ```
//! That update is plain SGD's, the default. Every other optimiser (and
//! weight decay, and the thinned network of `--dropout-mask batch`) has
//! pass 2 write `g` alone into a gradient slab (`beta`
//! `Overwrite`, then `Accumulate` for later blocks, no `lr`) and runs
//! [`crate::optim::update`] after it.
//! No `dx`: the input needs no gradient. The network is data, the list of
//! widths: no code depends on the depth.

use std::ops::Range;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::gemm::{self, Beta, MatRef};
use crate::layers::{self, DropMask, Linear};

/// The most linear layers a network may have (so up to 31 hidden layers):
/// the passes keep one slice per layer in fixed-size arrays, so a step
/// needs no allocation whatever the depth.
pub const MAX_LAYERS: usize = 32;

/// The widest layer accepted: far past anything that trains on a CPU.
pub const MAX_WIDTH: usize = 1 << 20;

/// The layer widths `[D, n_1, …, K]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Dims {
    widths: Vec<usize>,
}

impl Dims {
    /// `D` inputs, the hidden widths in order, `K` classes.
    ///
    /// # Panics
    /// On a zero width or more than [`MAX_LAYERS`] layers: callers
    /// validate flags and files first, with errors that say what to change
    /// (a hand-built [`crate::config::TrainConfig`] is checked by
    /// [`crate::train::train`]).
    pub fn new(d: usize, hidden: &[usize], k: usize) -> Self {
        let mut widths = Vec::with_capacity(hidden.len() + 2);
        widths.push(d);
        widths.extend_from_slice(hidden);
        widths.push(k);
        assert!(
            widths.iter().all(|&w| w > 0),
            "layer widths must be positive: {widths:?}"
        );
        assert!(
            widths.len() - 1 <= MAX_LAYERS,
            "more than {MAX_LAYERS} layers"
        );
        Dims { widths }
    }

    /// The MNIST shape, 784 inputs and 10 classes, with these hidden widths.
    pub fn mnist(hidden: &[usize]) -> Self {
        Self::new(784, hidden, 10)
    }

    /// `[D, n_1, …, K]`.
    pub fn widths(&self) -> &[usize] {
        &self.widths
    }

    /// Inputs `D`.
    pub fn d(&self) -> usize {
        self.widths[0]
    }

    /// The side of a square image of `D` pixels, if `D` is a square number.
    pub fn square_side(&self) -> Option<usize> {
        let d = self.d();
        let side = (d as f64).sqrt().round() as usize;
        (side * side == d).then_some(side)
    }

    /// Classes `K`.
    pub fn k(&self) -> usize {
        self.widths[self.widths.len() - 1]
    }

    /// The hidden widths (empty for softmax regression).
    pub fn hidden(&self) -> &[usize] {
        &self.widths[1..self.widths.len() - 1]
    }

    /// Number of linear layers `L` (hidden layers + 1).
    pub fn layers(&self) -> usize {
        self.widths.len() - 1
    }

    /// `(n_in, n_out)` of layer `l`.
    pub fn layer(&self, l: usize) -> (usize, usize) {
        (self.widths[l], self.widths[l + 1])
    }

    /// Sets hidden layer `h`'s width (`n_{h+1}`) in place, allocating
    /// nothing: how [`crate::thin`] resizes its thinned network every step.
    pub(crate) fn set_hidden(&mut self, h: usize, w: usize) {
        assert!(
            w > 0 && h + 2 < self.widths.len(),
            "hidden layer {h} of {w} units"
        );
        self.widths[h + 1] = w;
    }

    /// `784-256-10`.
    pub fn name(&self) -> String {
        let w: Vec<String> = self.widths.iter().map(|w| w.to_string()).collect();
        w.join("-")
    }

    /// The hidden widths as `--hidden` takes them: `256`, `1024,1024`, `none`.
    pub fn hidden_name(&self) -> String {
        hidden_name(self.hidden())
    }

    /// Offset of layer `l`'s weight in the slab, and of its bias.
    fn offsets(&self, l: usize) -> (usize, usize) {
        let mut off = 0;
        for j in 0..l {
            let (i, o) = self.layer(j);
            off += i * o + o;
        }
        let (i, o) = self.layer(l);
        (off, off + i * o)
    }

    /// Total number of parameters.
    pub fn param_count(&self) -> usize {
        (0..self.layers())
            .map(|l| {
                let (i, o) = self.layer(l);
                i * o + o
            })
            .sum()
    }

    /// FLOP of the GEMMs of one training row: per layer the forward product
    /// and the weight gradient, and the gradient to the input for every
    /// layer but the first. 818,176 for 784-256-10.
    pub fn train_flop_per_row(&self) -> u64 {
        (0..self.layers())
            .map(|l| {
                let (i, o) = self.layer(l);
                2 * (2 + (l > 0) as u64) * (i * o) as u64
            })
            .sum()
    }

    /// FLOP of the forward GEMMs of one row.
    pub fn eval_flop_per_row(&self) -> u64 {
        (0..self.layers())
            .map(|l| {
                let (i, o) = self.layer(l);
                2 * (i * o) as u64
            })
            .sum()
    }

    /// Widest layer output (hidden or classes): sizes per-row scratch.
    pub fn max_out(&self) -> usize {
        self.widths[1..].iter().copied().max().unwrap_or(0)
    }
}

/// Hidden widths as `--hidden` takes them: `256`, `1024,1024`, `none`.
pub fn hidden_name(hidden: &[usize]) -> String {
    if hidden.is_empty() {
        return "none".into();
    }
    let w: Vec<String> = hidden.iter().map(|w| w.to_string()).collect();
    w.join(",")
}

/// Hidden widths as `--hidden` and checkpoints write them: `256`,
/// `1024,1024`, `512,256,128`, or `none`; the inverse of [`hidden_name`].
/// The error says what is wrong and how to write it.
pub fn parse_hidden(s: &str) -> Result<Vec<usize>, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let mut widths = Vec::new();
    for (i, part) in s.split(',').enumerate() {
        let part = part.trim();
        let w: usize = match part.parse() {
            Ok(w) => w,
            Err(_) if part.is_empty() => {
                return Err(format!(
                    "width {} is empty; write the widths as 256 or 1024,1024 (or none for no hidden layer)",
                    i + 1
                ))
            }
            // All digits, and too many of them for a number.
            Err(_) if part.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(format!(
                    "a layer of {}… units ({} digits): each width must be between 1 and {MAX_WIDTH} (use none for no hidden layer)",
                    &part[..12.min(part.len())],
                    part.len()
                ))
            }
            Err(_) => {
                return Err(format!(
                    "{part:?} is not a whole number of units; write the widths as 256 or 1024,1024 (or none for no hidden layer)"
                ))
            }
        };
        if w == 0 || w > MAX_WIDTH {
            return Err(format!(
                "a layer of {w} units: each width must be between 1 and {MAX_WIDTH} (use none for no hidden layer)"
            ));
        }
        widths.push(w);
    }
    if widths.len() >= MAX_LAYERS {
        return Err(format!(
            "{} hidden layers: at most {} (a network has at most {MAX_LAYERS} linear layers)",
            widths.len(),
            MAX_LAYERS - 1
        ));
    }
    Ok(widths)
}

/// One slab in the parameter layout `W_0ᵀ | b_0 | W_1 | b_1 | … | W_{L−1} |
/// b_{L−1}`. Used for the parameters and for the optimiser's buffers alike,
/// so an update is a flat loop over slabs of the same layout.
///
/// `data` holds exactly `dims.param_count()` numbers (both fields are
/// public): the functions that take a `Params` panic otherwise, saying so
/// ([`Params::assert_whole`]), and [`crate::modelfile::save_model`]
/// returns an error.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    pub dims: Dims,
    /// `W_0ᵀ (D, n_1) | b_0 (n_1) | W_1 (n_2, n_1) | b_1 (n_2) | …`
    pub data: Vec<f32>,
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
    /// Panics, with a line naming both sizes, where `data` does not hold
    /// `dims.param_count()` numbers (a slab built or cut by hand), rather
    /// than at a slice index deep in a forward pass.
    pub fn assert_whole(&self) {
        let (have, want) = (self.data.len(), self.dims.param_count());
        assert!(
            have == want,
            "Params.data holds {have} numbers, but its dims {} have {want}; build it with Params::init, Params::from_torch or a model file's load",
            self.dims.name()
        );
    }

    /// A slab of zeros in the parameters' layout: gradients and optimiser
    /// state start here.
    pub fn zeros(dims: Dims) -> Self {
        let n = dims.param_count();
        Params {
            dims,
            data: vec![0.0; n],
        }
    }

    /// Weights drawn from `init` with a ChaCha8 stream seeded by `seed`
    /// (portable: the same on every platform and rand version of this crate),
    /// layer by layer in the file layout's order.
    ///
    /// # Panics
    /// Where `init` is `Normal(σ)` with σ negative or not finite (the
    /// trainer refuses such a config first, naming the field).
    pub fn init(dims: Dims, init: Init, seed: u64) -> Self {
        let mut torch = vec![0.0; dims.param_count()];
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut off = 0;
        for l in 0..dims.layers() {
            let (fan_in, out) = dims.layer(l);
            let std = match init {
                Init::He => (2.0 / fan_in as f32).sqrt(),
                Init::Normal(s) => s,
            };
            let normal = Normal::new(0.0f32, std).expect("standard deviation is finite and >= 0");
            for v in &mut torch[off..off + fan_in * out] {
                *v = normal.sample(&mut rng);
            }
            off += fan_in * out + out;
        }
        Self::from_torch(dims, &torch)
    }

    /// A slab from values in the file layout: `W_0 (n_1, D) | b_0 | W_1 | …`.
    ///
    /// # Panics
    /// Where `torch` does not hold `dims.param_count()` values.
    pub fn from_torch(dims: Dims, torch: &[f32]) -> Self {
        let want = dims.param_count();
        assert!(
            torch.len() == want,
            "Params::from_torch: {} values for the {want} of {}",
            torch.len(),
            dims.name()
        );
        let (d, h) = dims.layer(0);
        let mut p = Self::zeros(dims);
        for (j, row) in torch[..h * d].chunks_exact(d).enumerate() {
            for (i, &v) in row.iter().enumerate() {
                p.data[i * h + j] = v;
            }
        }
        p.data[h * d..].copy_from_slice(&torch[h * d..]);
        p
    }

    /// The values in the file layout: `W_0 (n_1, D) | b_0 | W_1 | …`.
    pub fn to_torch(&self) -> Vec<f32> {
        let (d, h) = self.dims.layer(0);
        let mut torch = vec![0.0; self.data.len()];
        for (j, row) in torch[..h * d].chunks_exact_mut(d).enumerate() {
            for (i, v) in row.iter_mut().enumerate() {
                *v = self.data[i * h + j];
            }
        }
        torch[h * d..].copy_from_slice(&self.data[h * d..]);
        torch
    }

    /// Append the values in the file layout ([`Self::to_torch`]'s) to `out`
    /// as little-endian bytes, without `to_torch`'s copy of the slab: a
    /// save then holds the file's bytes and nothing else beside the
    /// weights (what `train`'s memory estimate counts).
    pub fn extend_torch_le(&self, out: &mut Vec<u8>) {
        let (d, h) = self.dims.layer(0);
        for j in 0..h {
            for i in 0..d {
                out.extend_from_slice(&self.data[i * h + j].to_le_bytes());
            }
        }
        for v in &self.data[h * d..] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Layer `l` as stored: its weight (`W_0ᵀ (D, n_1)` for `l = 0`,
    /// `W_l (n_{l+1}, n_l)` after) and its bias `(n_{l+1})`.
    pub fn layer_slices(&self, l: usize) -> (&[f32], &[f32]) {
        let (w, b) = self.dims.offsets(l);
        let (_, o) = self.dims.layer(l);
        (&self.data[w..b], &self.data[b..b + o])
    }

    /// Layer `l` as the kernels take it: a view of `W_lᵀ`, and `b_l`.
    pub fn linear(&self, l: usize) -> Linear<'_> {
        let (w, b) = self.layer_slices(l);
        let (i, o) = self.dims.layer(l);
        let wt = if stored_transposed(l) {
            MatRef::new(w, i, o)
        } else {
            MatRef::new(w, o, i).t()
        };
        Linear { wt, b }
    }
}

/// Every layer's weight and bias in the slab `data` of `dims`, mutably (a
/// function of the fields, so `dims` may stay borrowed beside it).
pub(crate) fn slab_mut<'a>(dims: &Dims, data: &'a mut [f32]) -> SlabMut<'a> {
    let mut s = SlabMut::default();
    let mut rest = data;
    for l in 0..dims.layers() {
        let (i, o) = dims.layer(l);
        let (w, r) = rest.split_at_mut(i * o);
        let (b, r) = r.split_at_mut(o);
        (s.w[l], s.b[l], rest) = (w, b, r);
    }
    s
}

/// Whether layer `l`'s weight is stored transposed, `W_lᵀ (n_l, n_{l+1})`:
/// only the first layer's is (see the module docs).
pub fn stored_transposed(l: usize) -> bool {
    l == 0
}

/// Disjoint mutable parts of a slab, one weight and one bias per layer
/// (layers past the network's are empty), cut down to one part's rows in
/// pass 2 (see [`for_each_weight_part`]).
#[derive(Default)]
pub struct SlabMut<'a> {
    /// `w[l]`: the part's rows of layer `l`'s stored weight.
    pub w: [&'a mut [f32]; MAX_LAYERS],
    /// `b[l]`: the part's entries of layer `l`'s bias.
    pub b: [&'a mut [f32]; MAX_LAYERS],
}

impl<'a> SlabMut<'a> {
    /// The first `layers` layers' `(weight, bias)` parts, in layer order.
    pub(crate) fn into_layers(
        self,
        layers: usize,
    ) -> impl Iterator<Item = (&'a mut [f32], &'a mut [f32])> {
        self.w.into_iter().zip(self.b).take(layers)
    }

    /// Split every layer after `ws[l]` weight elements and `bs[l]` bias elements.
    fn split(
        self,
        layers: usize,
        ws: &[usize; MAX_LAYERS],
        bs: &[usize; MAX_LAYERS],
    ) -> (Self, Self) {
        let (mut left, mut right) = (SlabMut::default(), SlabMut::default());
        for (l, (w, b)) in self.into_layers(layers).enumerate() {
            (left.w[l], right.w[l]) = w.split_at_mut(ws[l]);
            (left.b[l], right.b[l]) = b.split_at_mut(bs[l]);
        }
        (left, right)
    }
}

/// Activation buffers for blocks of up to `cap` rows, allocated once.
pub struct Workspace {
    /// Most rows of a block.
    pub cap: usize,
    /// `(cap, D)` inputs.
    pub x: Vec<f32>,
    /// `(cap)` labels.
    pub y: Vec<u8>,
    /// `act[l]`: `(cap, n_{l+1})`, `z_l`, then in place `a_l` (hidden
    /// layers) or `dz_{L−1}` (the last, in training).
    pub act: Vec<Vec<f32>>,
    /// `grad[l]`: `(cap, n_{l+1})` for hidden layers, `da_l`, then `dz_l` in
    /// place; empty for the last layer and in evaluation workspaces.
    pub grad: Vec<Vec<f32>>,
    /// `(cap)` per-row loss (nats).
    pub loss: Vec<f32>,
    /// `(cap)` per row: 1 if correct (training) or the predicted class (eval).
    pub hit: Vec<u8>,
}

impl Workspace {
    /// Whether these buffers are the shape a network of `dims` needs (its
    /// layers' widths, whatever the rows).
    pub fn fits(&self, dims: &Dims) -> bool {
        let cap = self.cap;
        self.x.len() == cap * dims.d()
            && self.act.len() == dims.layers()
            && (0..dims.layers()).all(|l| self.act[l].len() == cap * dims.layer(l).1)
    }

    /// Buffers for training steps.
    pub fn new(dims: &Dims, cap: usize) -> Self {
        Self::with_grads(dims, cap, true)
    }

    /// Buffers for forward passes only.
    pub fn for_eval(dims: &Dims, cap: usize) -> Self {
        Self::with_grads(dims, cap, false)
    }

    fn with_grads(dims: &Dims, cap: usize, grads: bool) -> Self {
        let l_last = dims.layers() - 1;
        Workspace {
            cap,
            x: vec![0.0; cap * dims.d()],
            y: vec![0; cap],
            act: (0..dims.layers())
                .map(|l| vec![0.0; cap * dims.layer(l).1])
                .collect(),
            grad: (0..dims.layers())
                .map(|l| {
                    let n = if grads && l < l_last {
                        dims.layer(l).1
                    } else {
                        0
                    };
                    vec![0.0; cap * n]
                })
                .collect(),
            loss: vec![0.0; cap],
            hit: vec![0; cap],
        }
    }

    /// Bytes these buffers take for `dims` and `cap` rows (for the memory
    /// estimate made before anything is allocated).
    pub fn bytes(dims: &Dims, cap: usize, grads: bool) -> u64 {
        let outs: usize = dims.widths()[1..].iter().sum();
        let hidden: usize = dims.hidden().iter().sum();
        let floats = cap * (dims.d() + outs + if grads { hidden } else { 0 } + 1);
        (4 * floats + 2 * cap) as u64
    }
}

/// Rows per block of the row-local pass over `n` rows cut into `parts`:
/// a multiple of 8 (the GEMM tile) giving at most `parts` blocks.
pub fn row_block(n: usize, parts: usize) -> usize {
    n.div_ceil(parts.max(1)).next_multiple_of(8)
}

/// Rows `lo..hi` of a dimension of `n` (rows of a stored weight, or bias
/// entries) that part `p` of `parts` differentiates and updates: cut on
/// multiples of 8 (the GEMM tile) where there are enough, evenly where the
/// dimension is smaller than a tile per part (the classes, often). The cut
/// never changes a bit of the result (`gemm_row_cuts_anywhere_are_bit_identical`).
pub fn weight_part(n: usize, parts: usize, p: usize) -> (usize, usize) {
    if n >= 8 * parts {
        gemm::part_range(n, parts, p)
    } else {
        (n * p / parts, n * (p + 1) / parts)
    }
}

/// Rows of layer `l`'s stored weight: inputs for the transposed first
/// layer, outputs for the others.
pub fn weight_rows(dims: &Dims, l: usize) -> usize {
    let (i, o) = dims.layer(l);
    if stored_transposed(l) {
        i
    } else {
        o
    }
}

/// Fills `x (r, D)` and `y (r)` with rows `rows` of the block being
/// processed. Called once per row block, from the pool's threads.
pub type Load<'a> = dyn Fn(Range<usize>, &mut [f32], &mut [u8]) + Sync + 'a;

/// Options for one forward + backward pass over a block.
#[derive(Clone, Copy, Debug)]
pub struct PassOpts {
    /// `1 / B` for the whole batch the block belongs to.
    pub inv_batch: f32,
    /// Dropout probability and mask (training only), for every hidden layer.
    pub dropout: Option<(f32, DropMask)>,
    /// Dropout probability and mask on the inputs (`--input-dropout`),
    /// applied as the rows are loaded; the mask is the step's
    /// [`DropMask::input`].
    pub input_dropout: Option<(f32, DropMask)>,
    /// How the gradient `g` lands in `grads`: `Overwrite` (`g`), `Accumulate`
    /// (later blocks of a batch) or `Scale(μ)` (`μ·grads + g`: with the
    /// momentum buffer as `grads`, the heavy-ball velocity update).
    pub beta: Beta,
    /// After the gradient, `params ← params − lr·grads` (the last block of a
    /// batch), in the same parallel pass.
    pub lr: Option<f32>,
    /// How many parallel parts to cut the batch rows and the weight rows into.
    pub parts: usize,
    /// How to cut pass 1; `None`: [`Pass1::for_net`] chooses.
    pub pass1: Option<Pass1>,
}

/// Forward and backward over `n` rows, then (optionally) the SGD update,
/// in two parallel passes:
///
/// 1. load the rows, then every layer's forward, the loss and its
///    gradient, every layer's backward to its input; cut as [`Pass1`] says:
///    row blocks (`parts` of them), each taken through all of it on one
///    thread so the block's activations stay in that core's cache, or (for
///    layers much wider than the batch) layer by layer, each product cut
///    by columns so that no two threads pack the same weight;
/// 2. weight rows (`parts` of them): each layer's weight and bias gradient
///    for a range of its rows, folded into `grads` as `o.beta` says, then
///    `params −= lr·grads` on the same ranges.
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
    assert!(n >= 1 && n <= ws.cap);
    assert_eq!(params.dims, grads.dims);
    let parts = o.parts.max(1);

    // Pass 1: forward and backward to every layer's input.
    let pass = RowPass { params, load, o };
    match o
        .pass1
        .unwrap_or_else(|| Pass1::for_net(&params.dims, n, parts))
    {
        Pass1::RowBlocks => for_each_row_block(ws, &params.dims, n, parts, &|b| pass.block(b)),
        Pass1::Layers => pass.by_layer(ws, n, parts),
    }

    // Pass 2: reductions over the rows, cut by the rows of each weight.
    let Params { dims, data } = params;
    let acts = Acts {
        ws,
        n,
        dims,
        beta: o.beta,
        parts,
    };
    let w = o.lr.map(|_| &mut data[..]);
    for_each_weight_part(dims, parts, &mut grads.data, w, &|p, g, w| {
        acts.part(p, g, o.lr.zip(w))
    });
}

/// The rows of a workspace that one block of pass 1 owns: disjoint slices
/// of every buffer.
#[derive(Default)]
pub struct RowBlock<'a> {
    /// Index of the first of these rows in the pass.
    pub r0: usize,
    pub x: &'a mut [f32],                  // (r, D)
    pub y: &'a mut [u8],                   // (r)
    pub loss: &'a mut [f32],               // (r)
    pub hit: &'a mut [u8],                 // (r)
    pub act: [&'a mut [f32]; MAX_LAYERS],  // act[l]: (r, n_{l+1})
    pub grad: [&'a mut [f32]; MAX_LAYERS], // grad[l]: (r, n_{l+1}), hidden layers
    widths: [usize; MAX_LAYERS],           // n_{l+1}, per layer
    layers: usize,
    d: usize,
}

impl<'a> RowBlock<'a> {
    /// The first `n` rows of `ws`.
    fn of(ws: &'a mut Workspace, dims: &Dims, n: usize) -> Self {
        let mut b = RowBlock {
            x: &mut ws.x[..n * dims.d()],
            y: &mut ws.y[..n],
            loss: &mut ws.loss[..n],
            hit: &mut ws.hit[..n],
            layers: dims.layers(),
            d: dims.d(),
            ..Default::default()
        };
        for (l, (a, g)) in ws.act.iter_mut().zip(&mut ws.grad).enumerate() {
            let w = dims.layer(l).1;
            b.widths[l] = w;
            b.act[l] = &mut a[..n * w];
            b.grad[l] = if g.is_empty() {
                &mut []
            } else {
                &mut g[..n * w]
            };
        }
        b
    }

    /// Number of linear layers `L`.
    pub fn layers(&self) -> usize {
        self.layers
    }

    /// These rows split after row `r`.
    fn split(self, r: usize) -> (Self, Self) {
        let mut top = RowBlock {
            r0: self.r0,
            layers: self.layers,
            d: self.d,
            widths: self.widths,
            ..Default::default()
        };
        let mut bottom = RowBlock {
            r0: self.r0 + r,
            layers: self.layers,
            d: self.d,
            widths: self.widths,
            ..Default::default()
        };
        (top.x, bottom.x) = self.x.split_at_mut(r * self.d);
        (top.y, bottom.y) = self.y.split_at_mut(r);
        (top.loss, bottom.loss) = self.loss.split_at_mut(r);
        (top.hit, bottom.hit) = self.hit.split_at_mut(r);
        for (l, (a, g)) in self
            .act
            .into_iter()
            .zip(self.grad)
            .take(self.layers)
            .enumerate()
        {
            let w = self.widths[l];
            (top.act[l], bottom.act[l]) = a.split_at_mut(r * w);
            let gr = if g.is_empty() { 0 } else { r * w };
            (top.grad[l], bottom.grad[l]) = g.split_at_mut(gr);
        }
        (top, bottom)
    }
}

/// Pass 1's cut: the first `n` rows of `ws` in blocks of
/// [`row_block`]`(n, parts)` rows, halved recursively with `rayon::join`
/// down to one block each, `op` on every block. The trainer and the
/// benches' bare-GEMM baseline both go through here.
pub fn for_each_row_block(
    ws: &mut Workspace,
    dims: &Dims,
    n: usize,
    parts: usize,
    op: &(dyn Fn(RowBlock) + Sync),
) {
    fn halve(b: RowBlock, blocks: Range<usize>, rows: usize, op: &(dyn Fn(RowBlock) + Sync)) {
        if blocks.len() > 1 {
            let mid = blocks.start + blocks.len() / 2;
            let (top, bottom) = b.split((mid - blocks.start) * rows);
            rayon::join(
                || halve(top, blocks.start..mid, rows, op),
                || halve(bottom, mid..blocks.end, rows, op),
            );
        } else {
            op(b);
        }
    }
    let rows = row_block(n, parts.max(1));
    halve(RowBlock::of(ws, dims, n), 0..n.div_ceil(rows), rows, op);
}

/// Pass 2's cut: parts `0..parts`, each handed exactly its rows of every
/// layer's stored weight (by [`weight_part`] of [`weight_rows`]) and bias
/// (by `weight_part` of the units), of the slab `g` and, when given, of the
/// slab `w` of the same layout; halved recursively with `rayon::join`.
pub fn for_each_weight_part(
    dims: &Dims,
    parts: usize,
    g: &mut [f32],
    w: Option<&mut [f32]>,
    op: &(dyn Fn(usize, SlabMut, Option<SlabMut>) + Sync),
) {
    type Op<'o> = dyn Fn(usize, SlabMut, Option<SlabMut>) + Sync + 'o;
    fn halve(dims: &Dims, parts: usize, ps: Range<usize>, g: SlabMut, w: Option<SlabMut>, op: &Op) {
        if ps.len() == 1 {
            return op(ps.start, g, w);
        }
        let mid = ps.start + ps.len() / 2;
        let (mut ws, mut bs) = ([0; MAX_LAYERS], [0; MAX_LAYERS]);
        for l in 0..dims.layers() {
            let (i, o) = dims.layer(l);
            let row = if stored_transposed(l) { o } else { i };
            let rows = weight_rows(dims, l);
            ws[l] = (weight_part(rows, parts, mid).0 - weight_part(rows, parts, ps.start).0) * row;
            bs[l] = weight_part(o, parts, mid).0 - weight_part(o, parts, ps.start).0;
        }
        let layers = dims.layers();
        let (gl, gr) = g.split(layers, &ws, &bs);
        let (wl, wr) = match w.map(|w| w.split(layers, &ws, &bs)) {
            Some((l, r)) => (Some(l), Some(r)),
            None => (None, None),
        };
        rayon::join(
            || halve(dims, parts, ps.start..mid, gl, wl, op),
            || halve(dims, parts, mid..ps.end, gr, wr, op),
        );
    }
    let parts = parts.max(1);
    let w = w.map(|w| slab_mut(dims, w));
    halve(dims, parts, 0..parts, slab_mut(dims, g), w, op);
}

/// How pass 1 is cut into parallel work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass1 {
    /// Row blocks, one per part, each taken down every layer and back up on
    /// one thread: one synchronisation, the block's activations stay in
    /// that core's cache, but every part packs every weight.
    RowBlocks,
    /// Layer by layer over the whole batch: each product cut into parts by
    /// [`gemm::gemm_parts`] (by columns where the layer is wide, so each
    /// part packs only its share of the weight), the elementwise kernels by
    /// row blocks between them; two synchronisations per layer.
    Layers,
}

impl Pass1 {
    /// The cut for `n` rows of `dims` in `parts`: layer by layer when some
    /// layer's output is at least 4 times as wide as the batch has rows
    /// (and can be cut by columns, [`gemm::Cut::for_shape`]), row blocks
    /// otherwise. Either gives the same bits. Measured with
    /// `examples/pass1_cut` (median of 40 paired rounds of 10 steps, 2
    /// threads, 2-core Xeon), layer by layer took this much of the row
    /// blocks' time: 784-256-10 0.86–0.89 at batch 32 (8× as wide as the
    /// batch), 1.01–1.05 at 128 (2×); 784-512-10 0.99 (4×); 784-800-10
    /// 0.96 (6×); 784-1024-1024-10 0.88 and 0.97 at 32 (32×; two runs), 0.97 at
    /// 128 (8×), 1.01 at 512 (2×); 784-1024×3-10 0.96 at 128.
    pub fn for_net(dims: &Dims, n: usize, parts: usize) -> Pass1 {
        let wide = dims.widths()[1..]
            .iter()
            .any(|&w| w >= 4 * n && gemm::Cut::for_shape(n, w, parts) == gemm::Cut::Columns);
        if parts > 1 && wide {
            Pass1::Layers
        } else {
            Pass1::RowBlocks
        }
    }
}

/// Layer `l`'s forward product over the first `n` rows of `ws`,
/// `z_l = a_{l−1}·W_lᵀ (n, n_{l+1})` into `act[l]`, in `parts` parallel
/// pieces: what [`Pass1::Layers`] runs for each layer.
pub fn forward_product(params: &Params, ws: &mut Workspace, n: usize, l: usize, parts: usize) {
    let (i, o) = params.dims.layer(l);
    let (before, from_l) = ws.act.split_at_mut(l);
    let input: &[f32] = if l == 0 { &ws.x } else { &before[l - 1] };
    params
        .linear(l)
        .forward_parts(&input[..n * i], &mut from_l[0][..n * o], parts);
}

/// Layer `l`'s (`l ≥ 1`) backward product to its input over the first `n`
/// rows of `ws`, `da_{l−1} = dz_l·W_l (n, n_l)` into `grad[l−1]`, in
/// `parts` parallel pieces: what [`Pass1::Layers`] runs for each layer.
pub fn input_product(params: &Params, ws: &mut Workspace, n: usize, l: usize, parts: usize) {
    assert!(l >= 1);
    let (i, o) = params.dims.layer(l);
    let last = params.dims.layers() - 1;
    let (below, from_l) = ws.grad.split_at_mut(l);
    let dz: &[f32] = if l == last { &ws.act[l] } else { &from_l[0] };
    params
        .linear(l)
        .backward_input_parts(&dz[..n * o], &mut below[l - 1][..n * i], parts);
}

/// Pass 1's shared inputs.
struct RowPass<'a, 'l> {
    params: &'a Params,
    load: &'a Load<'l>,
    o: PassOpts,
}

impl RowPass<'_, '_> {
    /// Rows `r0..r0 + y.len()` into `x (r, D)` and `y (r)`, then input
    /// dropout in place, so that pass 2's `dW_0ᵀ = xᵀ·dz_0` reads the
    /// inputs the forward pass saw.
    fn load_rows(&self, r0: usize, x: &mut [f32], y: &mut [u8]) {
        (self.load)(r0..r0 + y.len(), x, y);
        if let Some((p, m)) = self.o.input_dropout {
            layers::input_dropout_forward(x, self.params.dims.d(), p, m.offset(r0));
        }
    }

    /// Hidden layer `l`'s dropout for a block whose first row is `r0`.
    fn drop(&self, l: usize, r0: usize) -> Option<(f32, DropMask)> {
        self.o.dropout.map(|(p, m)| (p, m.layer(l).offset(r0)))
    }

    /// `1 / (1 − p)`, the kept units' scale (1 without dropout).
    fn dropout_scale(&self) -> f32 {
        self.o.dropout.map_or(1.0, |(q, _)| 1.0 / (1.0 - q))
    }

    /// One row block, top to bottom and back.
    fn block(&self, b: RowBlock) {
        let RowBlock {
            r0,
            x,
            y,
            loss,
            hit,
            mut act,
            mut grad,
            layers,
            ..
        } = b;
        let last = layers - 1;
        let o = &self.o;
        self.load_rows(r0, x, y);

        // Forward, down the layers: z_l = a_{l−1}·W_lᵀ (r, n_{l+1}) into act[l],
        // then bias + ReLU + dropout in place on the hidden ones.
        for l in 0..layers {
            let lin = self.params.linear(l);
            let (before, from_l) = act.split_at_mut(l);
            let input: &[f32] = if l == 0 { x } else { before[l - 1] };
            lin.forward(input, from_l[0]);
            if l < last {
                layers::bias_relu_dropout_forward(from_l[0], lin.b, self.drop(l, r0));
            }
        }
        // Loss: softmax + cross-entropy, its gradient dz_{L−1} (r, K) in place.
        let b_last = self.params.linear(last).b;
        layers::softmax_xent_forward_backward(act[last], b_last, y, o.inv_batch, loss, hit);

        // Backward, up the layers: da_{l−1} = dz_l·W_l (r, n_l) into
        // grad[l−1], then through dropout and ReLU in place. None for l = 0.
        let scale = self.dropout_scale();
        for l in (1..layers).rev() {
            let (below, from_l) = grad.split_at_mut(l);
            let dz: &[f32] = if l == last { act[l] } else { from_l[0] };
            self.params.linear(l).backward_input(dz, below[l - 1]);
            layers::bias_relu_dropout_backward(below[l - 1], act[l - 1], scale);
        }
    }

    /// [`Pass1::Layers`]: the same kernels as [`RowPass::block`] in the
    /// same order for every row, but each product over the whole batch.
    fn by_layer(&self, ws: &mut Workspace, n: usize, parts: usize) {
        let dims = &self.params.dims;
        let last = dims.layers() - 1;
        let o = &self.o;
        for_each_row_block(ws, dims, n, parts, &|b| {
            let RowBlock { r0, x, y, .. } = b;
            self.load_rows(r0, x, y);
        });

        // Forward, down the layers: z_l (n, n_{l+1}) into act[l], then
        // bias + ReLU + dropout in place on the hidden ones.
        for l in 0..last {
            forward_product(self.params, ws, n, l, parts);
            let bias = self.params.linear(l).b;
            for_each_row_block(ws, dims, n, parts, &|b| {
                let RowBlock { r0, act, .. } = b;
                layers::bias_relu_dropout_forward(act[l], bias, self.drop(l, r0));
            });
        }
        // The last layer, then the loss by row blocks.
        forward_product(self.params, ws, n, last, parts);
        let b_last = self.params.linear(last).b;
        for_each_row_block(ws, dims, n, parts, &|b| {
            let RowBlock {
                y, loss, hit, act, ..
            } = b;
            layers::softmax_xent_forward_backward(act[last], b_last, y, o.inv_batch, loss, hit);
        });

        // Backward, up the layers: da_{l−1} (n, n_l) into grad[l−1], then
        // through dropout and ReLU in place.
        let scale = self.dropout_scale();
        for l in (1..=last).rev() {
            input_product(self.params, ws, n, l, parts);
            for_each_row_block(ws, dims, n, parts, &|b| {
                let RowBlock { act, grad, .. } = b;
                layers::bias_relu_dropout_backward(grad[l - 1], act[l - 1], scale);
            });
        }
    }
}

/// What pass 2 reads: the whole batch's activations, and the pass's settings.
pub struct Acts<'a> {
    pub ws: &'a Workspace,
    /// Rows of the batch (block) in `ws`.
    pub n: usize,
    pub dims: &'a Dims,
    pub beta: Beta,
    pub parts: usize,
}

impl Acts<'_> {
    /// Layer `l`'s input `a_{l−1}` (`x` for `l = 0`), `(n, n_l)`.
    pub fn input(&self, l: usize) -> MatRef<'_> {
        let (i, _) = self.dims.layer(l);
        let src = if l == 0 {
            &self.ws.x
        } else {
            &self.ws.act[l - 1]
        };
        MatRef::new(&src[..self.n * i], self.n, i)
    }

    /// Layer `l`'s output gradient `dz_l`, `(n, n_{l+1})`.
    pub fn dz(&self, l: usize) -> MatRef<'_> {
        let (_, o) = self.dims.layer(l);
        let src = if l + 1 == self.dims.layers() {
            &self.ws.act[l]
        } else {
            &self.ws.grad[l]
        };
        MatRef::new(&src[..self.n * o], self.n, o)
    }

    /// Layer `l`'s weight gradient for part `p`'s rows into `out`, as
    /// stored (`dW_0ᵀ = xᵀ·dz_0` by inputs; `dW_l = dz_lᵀ·a_{l−1}` by
    /// outputs), folded in as `self.beta` says; with `sgd = Some((w, lr))`,
    /// then `w ← w − lr·out` on the same rows of the stored weight `w`,
    /// fused into the product (`layers::linear_backward_weight`).
    pub fn weight_grad(&self, l: usize, p: usize, out: &mut [f32], sgd: Option<(&mut [f32], f32)>) {
        let rows = weight_part(weight_rows(self.dims, l), self.parts, p);
        let (a, dz) = (self.input(l), self.dz(l));
        layers::linear_backward_weight(stored_transposed(l), a, dz, rows, self.beta, out, sgd);
    }

    /// Part `p` of pass 2, whose rows are exactly `g` (gradient target) and
    /// `w` (parameters, when updating with the learning rate): every
    /// layer's weight and bias gradient, then the SGD step on those rows.
    fn part(&self, p: usize, g: SlabMut, mut w: Option<(f32, SlabMut)>) {
        for l in 0..self.dims.layers() {
            let (_, o) = self.dims.layer(l);
            // the weight's step block by block, as the product ends each
            let sgd = w.as_mut().map(|(lr, w)| (&mut *w.w[l], *lr));
            self.weight_grad(l, p, g.w[l], sgd);
            // db_l = Σ_rows dz_l, for this part's units
            let units = weight_part(o, self.parts, p);
            layers::bias_backward(self.dz(l).cols(units.0, units.1), g.b[l], self.beta);
            if let Some((lr, w)) = &mut w {
                layers::sgd_step(w.b[l], g.b[l], *lr);
            }
        }
    }
}

/// Forward only over the first `n` rows of `ws`, on the calling thread:
/// per-row loss into `ws.loss` and predicted class into `ws.hit`.
pub fn forward_eval(params: &Params, ws: &mut Workspace, n: usize) {
    assert!(n <= ws.cap);
    let dims = &params.dims;
    let last = dims.layers() - 1;
    for l in 0..dims.layers() {
        let lin = params.linear(l);
        let (before, from_l) = ws.act.split_at_mut(l);
        let input = if l == 0 {
            &ws.x[..n * dims.d()]
        } else {
            &before[l - 1][..n * lin.n_in()]
        };
        let z = &mut from_l[0][..n * lin.n_out()];
        lin.forward(input, z);
        if l < last {
            layers::bias_relu_dropout_forward(z, lin.b, None);
        }
    }
    layers::softmax_xent_forward(
        &ws.act[last][..n * dims.k()],
        params.linear(last).b,
        &ws.y[..n],
        &mut ws.loss[..n],
        &mut ws.hit[..n],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs and labels for `n` rows of `dims`, as a loader.
    fn rows(dims: &Dims, n: usize) -> (Vec<f32>, Vec<u8>) {
        let x = (0..n * dims.d())
            .map(|i| ((i * 7919 + 13) % 256) as f32 / 255.0)
            .collect();
        let y = (0..n).map(|r| (r * 7 % dims.k()) as u8).collect();
        (x, y)
    }

    /// One momentum step done in the fused pass (`v ← μ·v + g` as the GEMMs'
    /// β, then `w ← w − lr·v`) must give, bit for bit, what the textbook
    /// order gives: the gradient on its own, then `v ← μ·v + g` as
    /// PyTorch's `v.mul_(μ).add_(g)` rounds it, then `w ← w − lr·v` (two
    /// roundings; PyTorch's CPU kernel fuses them). And the same for any `parts`,
    /// at every depth, with pass 1 cut by row blocks (narrow layers) or
    /// layer by layer (wide ones, cut by columns).
    #[test]
    fn fused_momentum_step_matches_separate_update() {
        let nets = [
            &[][..],
            &[40],
            &[40, 24],
            &[40, 17, 24],
            &[200, 70],
            &[100, 40, 180],
        ];
        let n = 37;
        for (hidden, layer_by_layer) in nets
            .into_iter()
            .zip([false, false, false, false, true, true])
        {
            let dims = Dims::new(50, hidden, 10);
            let expect = if layer_by_layer {
                Pass1::Layers
            } else {
                Pass1::RowBlocks
            };
            assert_eq!(Pass1::for_net(&dims, n, 2), expect, "{hidden:?}");
            let (x, y) = rows(&dims, n);
            let d = dims.d();
            let load = |r: Range<usize>, xb: &mut [f32], yb: &mut [u8]| {
                xb.copy_from_slice(&x[r.start * d..r.end * d]);
                yb.copy_from_slice(&y[r]);
            };
            let (lr, mu) = (0.05f32, 0.9f32);
            let w0 = Params::init(dims.clone(), Init::He, 3);
            let mut v0 = Params::init(dims.clone(), Init::Normal(0.1), 4); // a warm momentum buffer
            v0.data.iter_mut().for_each(|v| *v *= 0.5);
            let opts = |beta, lr, parts, pass1| PassOpts {
                inv_batch: 1.0 / n as f32,
                dropout: Some((0.25, DropMask::new(9, 2))),
                input_dropout: Some((0.2, DropMask::new(9, 2).input())),
                beta,
                lr,
                parts,
                pass1,
            };

            let mut ws = Workspace::new(&dims, n);
            let (mut w_ref, mut v_ref, mut g) =
                (w0.clone(), v0.clone(), Params::zeros(dims.clone()));
            forward_backward(
                &mut w_ref,
                &mut ws,
                n,
                &load,
                &mut g,
                opts(Beta::Overwrite, None, 1, Some(Pass1::RowBlocks)),
            );
            for ((w, v), &g) in w_ref.data.iter_mut().zip(&mut v_ref.data).zip(&g.data) {
                *v = mu * *v + g;
                *w -= lr * *v;
            }

            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(3)
                .build()
                .unwrap();
            let cuts = [None, Some(Pass1::RowBlocks), Some(Pass1::Layers)];
            for (parts, pass1) in (1..=5).flat_map(|p| cuts.map(|c| (p, c))) {
                let (mut w, mut v) = (w0.clone(), v0.clone());
                pool.install(|| {
                    forward_backward(
                        &mut w,
                        &mut ws,
                        n,
                        &load,
                        &mut v,
                        opts(Beta::Scale(mu), Some(lr), parts, pass1),
                    )
                });
                let same = |a: &Params, b: &Params| {
                    a.data
                        .iter()
                        .zip(&b.data)
                        .all(|(p, q)| p.to_bits() == q.to_bits())
                };
                let net = dims.name();
                let how = format!("{net}, {parts} parts, pass 1 {pass1:?}");
                assert!(same(&v, &v_ref), "{how}: momentum buffer differs");
                assert!(same(&w, &w_ref), "{how}: weights differ");
            }
        }
    }

    #[test]
    fn dims_count_and_name() {
        let m = Dims::mnist(&[256]);
        assert_eq!(m.param_count(), 784 * 256 + 256 + 256 * 10 + 10);
        assert_eq!(m.train_flop_per_row(), 818_176);
        assert_eq!(
            (m.name(), m.hidden_name()),
            ("784-256-10".into(), "256".into())
        );
        let lr = Dims::mnist(&[]);
        assert_eq!(lr.layers(), 1);
        assert_eq!(lr.hidden_name(), "none");
        assert_eq!(lr.train_flop_per_row(), 2 * 2 * 7840);
        let deep = Dims::mnist(&[1024, 1024]);
        assert_eq!(deep.name(), "784-1024-1024-10");
        assert_eq!(deep.hidden_name(), "1024,1024");
    }

    /// Pass 1's row blocks are whole GEMM tiles (a multiple of 8 rows),
    /// at most `parts` of them, covering every row.
    #[test]
    fn row_blocks_are_whole_tiles_and_at_most_parts() {
        for n in [1, 7, 9, 100, 128, 257, 512] {
            for parts in 0..=6 {
                let r = row_block(n, parts);
                assert_eq!(r % 8, 0, "n {n}, parts {parts}: {r}");
                assert!(n.div_ceil(r) <= parts.max(1), "n {n}, parts {parts}: {r}");
            }
        }
        assert_eq!(row_block(100, 3), 40);
    }

    /// Pass 1 goes layer by layer from a layer 4 times as wide as the batch
    /// has rows (where that layer is cut by columns), and only with more
    /// than one part: the rule `Pass1::for_net` documents and measured.
    #[test]
    fn pass1_goes_layer_by_layer_from_4x_as_wide_as_the_batch() {
        let dims = Dims::new(50, &[100], 10);
        for (n, parts, want) in [
            (25, 2, Pass1::Layers),    // 100 = 4 × 25
            (26, 2, Pass1::RowBlocks), // 100 < 4 × 26, though cut by columns
            (25, 1, Pass1::RowBlocks), // one part: nothing to cut
            (8, 4, Pass1::RowBlocks),  // 100 < 32 × 4 columns: cut by rows
        ] {
            assert_eq!(
                Pass1::for_net(&dims, n, parts),
                want,
                "n {n}, parts {parts}"
            );
        }
        assert_eq!(gemm::Cut::for_shape(26, 100, 2), gemm::Cut::Columns);
    }

    /// The memory check's figure for a workspace, [`Workspace::bytes`], is
    /// what one holds, for training (gradients for the hidden layers only)
    /// and for evaluation (none), at every depth.
    #[test]
    fn workspace_bytes_is_what_a_workspace_holds() {
        for hidden in [&[][..], &[40], &[40, 17, 24]] {
            let dims = Dims::new(50, hidden, 10);
            for (cap, grads) in [(8, true), (37, true), (256, false)] {
                let ws = Workspace::with_grads(&dims, cap, grads);
                let floats = |v: &[Vec<f32>]| v.iter().map(Vec::len).sum::<usize>();
                let held = 4 * (ws.x.len() + floats(&ws.act) + floats(&ws.grad) + ws.loss.len())
                    + ws.y.len()
                    + ws.hit.len();
                assert_eq!(
                    Workspace::bytes(&dims, cap, grads),
                    held as u64,
                    "{hidden:?} {cap} {grads}"
                );
                let grad_floats = if grads {
                    cap * hidden.iter().sum::<usize>()
                } else {
                    0
                };
                assert_eq!(floats(&ws.grad), grad_floats, "{hidden:?} {cap} {grads}");
            }
        }
    }
}
