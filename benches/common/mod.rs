//! Shared set-up for the benches: the data, the pools, the networks, and the
//! trainer's GEMMs called exactly as `model::forward_backward` calls them
//! (same views, strides and splits), for the bare-GEMM yardsticks.
#![allow(dead_code)]

use std::ops::Range;
use std::path::PathBuf;

use simplenn::data::Mnist;
use simplenn::gemm::{Beta, MatRef};
use simplenn::layers::linear_backward_weight;
use simplenn::model::{
    forward_backward, row_block, stored_transposed, weight_part, Dims, Init, Params, PassOpts,
    Workspace, MAX_LAYERS,
};
use simplenn::train::parts_for;

/// Thread counts every bench runs at.
pub const THREADS: [usize; 2] = [1, 2];
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
    pub fn new(mnist: &Mnist, dims: &Dims, n: usize, threads: usize) -> Self {
        let mut params = Params::init(dims.clone(), Init::He, 1);
        let mut grads = Params::zeros(dims.clone());
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
        match self {
            Product::Forward(_) | Product::Input(_) => {
                row_pass(f, &|params, mut b| block_product(params, &mut b, self))
            }
            Product::Weight(l) => weight_pass(f, l..l + 1),
        }
    }
}

/// Number of GEMMs in one training step of `dims` (5 for 784-256-10).
pub fn gemm_count(dims: &Dims) -> usize {
    3 * dims.layers() - 1
}

/// The bare GEMM sequence of one step, with the trainer's structure (a
/// row-block pass doing every layer's forward product down, then every
/// backward-to-input product up; a weight pass doing every layer's weight
/// gradient per range of its stored rows) and nothing else.
pub fn bare_gemms(f: &mut Fixture) {
    let layers = f.dims().layers();
    row_pass(f, &|params, mut b| {
        for l in 0..layers {
            block_product(params, &mut b, Product::Forward(l));
        }
        for l in (1..layers).rev() {
            block_product(params, &mut b, Product::Input(l));
        }
    });
    weight_pass(f, 0..layers);
}

/// One row block's slices of the workspace: the inputs, and per layer its
/// output (`z_l`; `dz` of the last layer) and, hidden layers only, `da_l`.
#[derive(Default)]
pub struct Block<'a> {
    x: &'a [f32],                      // (r, D)
    act: [&'a mut [f32]; MAX_LAYERS],  // (r, n_{l+1})
    grad: [&'a mut [f32]; MAX_LAYERS], // (r, n_{l+1}), hidden layers
    widths: [usize; MAX_LAYERS],
    layers: usize,
    d: usize,
}

impl<'a> Block<'a> {
    /// The first `n` rows of `ws`.
    fn of(ws: &'a mut Workspace, dims: &Dims, n: usize) -> Self {
        let mut b = Block {
            x: &ws.x[..n * dims.d()],
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

    /// These rows split after row `r`.
    fn split(self, r: usize) -> (Self, Self) {
        let mut top = Block {
            layers: self.layers,
            d: self.d,
            widths: self.widths,
            ..Default::default()
        };
        let mut bottom = Block {
            layers: self.layers,
            d: self.d,
            widths: self.widths,
            ..Default::default()
        };
        (top.x, bottom.x) = self.x.split_at(r * self.d);
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

/// One forward or backward-to-input product on one row block, through
/// `Linear` as `model`'s pass 1 calls it.
fn block_product(params: &Params, b: &mut Block, prod: Product) {
    let last = b.layers - 1;
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

/// Pass 1's structure: the first `n` rows cut into blocks of
/// `row_block(n, parts)` rows, halved recursively with `rayon::join` as
/// the trainer does, `op` on each block.
fn row_pass(f: &mut Fixture, op: &(dyn Fn(&Params, Block) + Sync)) {
    let (n, parts) = (f.n, f.parts.max(1));
    let rows = row_block(n, parts);
    let blocks = Block::of(&mut f.ws, &f.params.dims, n);
    row_blocks(&f.params, rows, blocks, 0..n.div_ceil(rows), op);
}

fn row_blocks(
    params: &Params,
    rows: usize,
    b: Block,
    blocks: Range<usize>,
    op: &(dyn Fn(&Params, Block) + Sync),
) {
    if blocks.len() > 1 {
        let mid = blocks.start + blocks.len() / 2;
        let (top, bottom) = b.split((mid - blocks.start) * rows);
        rayon::join(
            || row_blocks(params, rows, top, blocks.start..mid, op),
            || row_blocks(params, rows, bottom, mid..blocks.end, op),
        );
    } else {
        op(params, b);
    }
}

/// Rows of layer `l`'s stored weight (inputs for the transposed first
/// layer, outputs for the others) and the length of one of them.
fn stored_shape(dims: &Dims, l: usize) -> (usize, usize) {
    let (i, o) = dims.layer(l);
    if stored_transposed(l) {
        (i, o)
    } else {
        (o, i)
    }
}

/// Pass 2's structure for the weight gradients of `layers`: the parts
/// halved recursively with `rayon::join`, each layer's stored gradient cut
/// by `weight_part`, one `linear_backward_weight` per layer and part.
/// β is `Overwrite` (the trainer folds its momentum in as `Scale(μ)`).
fn weight_pass(f: &mut Fixture, layers: Range<usize>) {
    let Fixture {
        grads,
        ws,
        n,
        parts,
        ..
    } = f;
    let dims = &grads.dims;
    let mut w: [&mut [f32]; MAX_LAYERS] = Default::default();
    let mut rest = &mut grads.data[..];
    for (l, slot) in w.iter_mut().enumerate().take(dims.layers()) {
        let (i, o) = dims.layer(l);
        let (wl, r) = rest.split_at_mut(i * o);
        *slot = wl;
        rest = &mut r[o..];
    }
    let pass = WeightPass {
        ws,
        dims,
        n: *n,
        parts: (*parts).max(1),
        layers,
    };
    pass.run(0..pass.parts, w);
}

struct WeightPass<'a> {
    ws: &'a Workspace,
    dims: &'a Dims,
    n: usize,
    parts: usize,
    layers: Range<usize>,
}

impl WeightPass<'_> {
    /// Layer `l`'s input `a_{l−1}` (`x` for `l = 0`), `(n, n_l)`.
    fn input(&self, l: usize) -> MatRef<'_> {
        let (i, _) = self.dims.layer(l);
        let src = if l == 0 {
            &self.ws.x
        } else {
            &self.ws.act[l - 1]
        };
        MatRef::new(&src[..self.n * i], self.n, i)
    }

    /// Layer `l`'s output gradient `dz_l`, `(n, n_{l+1})`.
    fn dz(&self, l: usize) -> MatRef<'_> {
        let (_, o) = self.dims.layer(l);
        let src = if l + 1 == self.dims.layers() {
            &self.ws.act[l]
        } else {
            &self.ws.grad[l]
        };
        MatRef::new(&src[..self.n * o], self.n, o)
    }

    fn run(&self, ps: Range<usize>, w: [&mut [f32]; MAX_LAYERS]) {
        let layers = self.dims.layers();
        if ps.len() > 1 {
            let mid = ps.start + ps.len() / 2;
            let (mut left, mut right): ([&mut [f32]; MAX_LAYERS], [&mut [f32]; MAX_LAYERS]) =
                Default::default();
            for (l, wl) in w.into_iter().take(layers).enumerate() {
                let (rows, row) = stored_shape(self.dims, l);
                let at = (weight_part(rows, self.parts, mid).0
                    - weight_part(rows, self.parts, ps.start).0)
                    * row;
                (left[l], right[l]) = wl.split_at_mut(at);
            }
            rayon::join(
                || self.run(ps.start..mid, left),
                || self.run(mid..ps.end, right),
            );
            return;
        }
        let p = ps.start;
        for l in self.layers.clone() {
            let (rows, _) = stored_shape(self.dims, l);
            linear_backward_weight(
                stored_transposed(l),
                self.input(l),
                self.dz(l),
                weight_part(rows, self.parts, p),
                Beta::Overwrite,
                w[l],
            );
        }
    }
}
