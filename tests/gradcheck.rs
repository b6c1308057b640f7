//! The analytic gradients of `model::forward_backward` against central finite
//! differences of an independent f64 implementation of the same loss (whose
//! value the trainer's forward pass must match too), for
//! every parameter of tiny networks of depth 0 (softmax regression) to 3,
//! with and without dropout (hidden and input), in one block and split into
//! blocks, and for a sample of the parameters of a network of MNIST's size.

use simplenn::gemm::Beta;
use simplenn::layers::DropMask;
use simplenn::model::{forward_backward, Dims, Init, Params, Pass1, PassOpts, Workspace};

/// `D = 6` inputs, `K = 4` classes; the hidden widths of each depth.
const DEPTHS: [&[usize]; 4] = [&[], &[5], &[5, 3], &[5, 7, 3]];

fn dims(hidden: &[usize]) -> Dims {
    Dims::new(6, hidden, 4)
}

/// Mean cross-entropy of `theta` (the file layout: per layer `W (out, in)`
/// then `b (out)`) on `(x, y)` in f64, written from the math with no code
/// shared with the crate. `keep(l, r, j)` is the dropout factor of hidden
/// layer `l`, row `r`, unit `j` (the mask is taken as given).
fn loss_f64(
    widths: &[usize],
    theta: &[f64],
    x: &[f64],
    y: &[u8],
    keep: &dyn Fn(usize, usize, usize) -> f64,
) -> f64 {
    let n = y.len();
    let d = widths[0];
    let layers = widths.len() - 1;
    let mut total = 0.0;
    for r in 0..n {
        let mut a: Vec<f64> = x[r * d..(r + 1) * d].to_vec();
        let mut off = 0;
        for l in 0..layers {
            let (i, o) = (widths[l], widths[l + 1]);
            let (w, b) = (
                &theta[off..off + o * i],
                &theta[off + o * i..off + o * i + o],
            );
            off += o * i + o;
            let z: Vec<f64> = (0..o)
                .map(|j| (0..i).map(|c| a[c] * w[j * i + c]).sum::<f64>() + b[j])
                .collect();
            a = if l + 1 < layers {
                z.iter()
                    .enumerate()
                    .map(|(j, v)| v.max(0.0) * keep(l, r, j))
                    .collect()
            } else {
                z
            };
        }
        let max = a.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = max + a.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        total += lse - a[y[r] as usize];
    }
    total / n as f64
}

/// Weights from `init` and biases spread over ±0.2: with zero biases,
/// a row whose units all die in one layer would put the next layer's `z`
/// exactly on the ReLU kink, where a finite difference is one-sided.
fn params(dims: &Dims, init: Init, shift: f32) -> Params {
    let mut torch = Params::init(dims.clone(), init, 11).to_torch();
    let mut off = 0;
    for l in 0..dims.layers() {
        let (i, o) = dims.layer(l);
        off += i * o;
        for (j, b) in torch[off..off + o].iter_mut().enumerate() {
            *b = shift + 0.2 * ((j * 7 + l * 3) as f32).sin();
        }
        off += o;
    }
    Params::from_torch(dims.clone(), &torch)
}

/// Check every gradient of the network `hidden` with hidden dropout
/// `dropout` and input dropout `input`, over `blocks` of rows, cut into `parts`.
fn check(hidden: &[usize], dropout: f32, input: f32, blocks: &[usize], parts: usize) {
    check_with(DropMask::new(5, 9), hidden, dropout, input, blocks, parts)
}

/// [`check`] with the masks drawn from `mask`.
fn check_with(
    mask: DropMask,
    hidden: &[usize],
    dropout: f32,
    input: f32,
    blocks: &[usize],
    parts: usize,
) {
    let net = Net {
        dims: dims(hidden),
        init: Init::Normal(0.5),
        sample: None,
    };
    check_net(net, mask, dropout, input, blocks, parts)
}

/// A network to check: its shape, how its weights are drawn, and which
/// parameters to check (`None`: every one; `Some(m)`: in each tensor its
/// first and last entries and `m` more spread over it, for networks whose
/// every finite difference would take minutes).
struct Net {
    dims: Dims,
    init: Init,
    sample: Option<usize>,
}

/// The indices into the file layout that `net` checks.
fn checked(net: &Net) -> Vec<usize> {
    let dims = &net.dims;
    let mut out = Vec::new();
    let mut off = 0;
    for l in 0..dims.layers() {
        let (i, o) = dims.layer(l);
        for len in [i * o, o] {
            match net.sample {
                None => out.extend(off..off + len),
                Some(m) => {
                    out.extend([off, off + len - 1]);
                    // A stride prime to the tensor's rows, so the entries
                    // fall in many rows and columns.
                    out.extend((1..=m).map(|k| off + (k * 7919 + 13) % len));
                }
            }
            off += len;
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// [`check_with`] for any network.
fn check_net(net: Net, mask: DropMask, dropout: f32, input: f32, blocks: &[usize], parts: usize) {
    let dims = net.dims.clone();
    let n: usize = blocks.iter().sum();
    let d = dims.d();
    let mut params = params(&dims, net.init, 0.0);
    // Inputs in [0, 1] like pixels, not all on ReLU kinks.
    let x: Vec<f32> = (0..n * d)
        .map(|i| ((i * 37 + 11) % 101) as f32 / 100.0)
        .collect();
    let y: Vec<u8> = (0..n).map(|r| (r * 3 % dims.k()) as u8).collect();

    let mut grads = Params::zeros(dims.clone());
    let mut ws = Workspace::new(&dims, n);
    let mut row0 = 0;
    // The trainer's own per-row losses, summed over the blocks.
    let mut loss_sum = 0f64;
    for (i, &b) in blocks.iter().enumerate() {
        let load = |rows: std::ops::Range<usize>, xb: &mut [f32], yb: &mut [u8]| {
            let (lo, hi) = (row0 + rows.start, row0 + rows.end);
            xb.copy_from_slice(&x[lo * d..hi * d]);
            yb.copy_from_slice(&y[lo..hi]);
        };
        let opts = PassOpts {
            inv_batch: 1.0 / n as f32,
            dropout: (dropout > 0.0).then(|| (dropout, mask.offset(row0))),
            input_dropout: (input > 0.0).then(|| (input, mask.input().offset(row0))),
            beta: if i == 0 {
                Beta::Overwrite
            } else {
                Beta::Accumulate
            },
            lr: None,
            parts,
            // The tiny networks are narrow, so `Pass1::for_net` picks row
            // blocks; 3 parts take pass 1 layer by layer instead.
            pass1: (parts == 3).then_some(Pass1::Layers),
        };
        forward_backward(&mut params, &mut ws, b, &load, &mut grads, opts);
        loss_sum += ws.loss[..b].iter().map(|&l| l as f64).sum::<f64>();
        row0 += b;
    }

    let keep = |l: usize, r: usize, j: usize| {
        if dropout == 0.0 {
            1.0
        } else if mask.layer(l).keeps(r, j, dropout) {
            1.0 / (1.0 - dropout as f64)
        } else {
            0.0
        }
    };
    // The inputs as the network saw them: dropped and scaled by the input mask.
    let xf: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let (r, j) = (i / d, i % d);
            let k = if input == 0.0 {
                1.0
            } else if mask.input().keeps(r, j, input) {
                1.0 / (1.0 - input as f64)
            } else {
                0.0
            };
            v as f64 * k
        })
        .collect();
    // The reference works in the file layout, every W as (out, in).
    let mut theta: Vec<f64> = params.to_torch().iter().map(|&v| v as f64).collect();
    let analytic = grads.to_torch();

    // The forward pass: the trainer's mean loss is the reference's.
    let widths = dims.widths();
    let reference = loss_f64(widths, &theta, &xf, &y, &keep);
    let mean = loss_sum / n as f64;
    assert!(
        (mean - reference).abs() <= 1e-5 * reference.abs().max(1.0),
        "{}: the trainer's mean loss {mean} vs the reference's {reference} (dropout {dropout}, input dropout {input}, blocks {blocks:?})",
        dims.name()
    );

    let eps = 1e-5;
    let mut worst = 0f64;
    let indices = checked(&net);
    for &i in &indices {
        let t = theta[i];
        theta[i] = t + eps;
        let up = loss_f64(widths, &theta, &xf, &y, &keep);
        theta[i] = t - eps;
        let down = loss_f64(widths, &theta, &xf, &y, &keep);
        theta[i] = t;
        let fd = (up - down) / (2.0 * eps);
        let err = (analytic[i] as f64 - fd).abs() / (1e-3 + fd.abs());
        worst = worst.max(err);
        assert!(
            err < 1e-3,
            "{}: parameter {i}: analytic {} vs finite difference {fd} (dropout {dropout}, input dropout {input}, blocks {blocks:?})",
            dims.name(),
            analytic[i]
        );
    }
    eprintln!(
        "{}: dropout {dropout}, input dropout {input}, blocks {blocks:?}, parts {parts}: {} parameters, worst relative error {worst:.2e}",
        dims.name(),
        indices.len()
    );
}

/// At sizes the tiny networks never reach: 784 inputs, a layer 80 wide
/// (past the 64-column chunks of the bias sums, and wide and tall enough
/// for the AVX-512 kernel where the CPU has it), 37 rows in one block and
/// in two, both pass-1 orders, dropout of both kinds. The
/// finite differences of every parameter would take minutes: each tensor's
/// first and last entries and up to 60 more are checked (all of a shorter one).
#[test]
fn gradients_match_at_full_size_on_a_sample() {
    // One part sums all 80 bias columns (two chunks); two and three
    // parts split the units, and three take pass 1 layer by layer.
    for (blocks, parts) in [(&[37][..], 1), (&[37][..], 2), (&[20, 17][..], 3)] {
        let net = Net {
            dims: Dims::new(784, &[80, 40], 10),
            init: Init::He,
            sample: Some(60),
        };
        check_net(net, DropMask::new(5, 9), 0.3, 0.2, blocks, parts);
    }
}

#[test]
fn gradients_match_finite_differences() {
    for hidden in DEPTHS {
        check(hidden, 0.0, 0.0, &[3], 1);
    }
}

#[test]
fn gradients_match_with_dropout() {
    for hidden in DEPTHS {
        check(hidden, 0.3, 0.0, &[9], 2);
    }
}

#[test]
fn gradients_match_with_input_dropout() {
    // The first layer's weight gradient must see the dropped inputs; the
    // deeper layers, the activations those inputs give.
    for hidden in DEPTHS {
        check(hidden, 0.0, 0.4, &[9], 2);
        check(hidden, 0.3, 0.2, &[5, 4], 3);
    }
}

#[test]
fn gradients_match_with_one_mask_per_batch() {
    // `--dropout-mask batch`: every row loses the same units, in every
    // block (the reference's `keep` asks the mask, which ignores the row).
    for hidden in DEPTHS {
        check_with(
            DropMask::new(5, 9).per_batch(),
            hidden,
            0.3,
            0.2,
            &[5, 4],
            2,
        );
        check_with(DropMask::new(6, 1).per_batch(), hidden, 0.5, 0.0, &[9], 3);
    }
}

#[test]
fn gradients_accumulate_over_blocks() {
    for hidden in DEPTHS {
        check(hidden, 0.0, 0.0, &[4, 3, 2], 3);
        check(hidden, 0.25, 0.0, &[8, 1], 2);
        // A batch of one image (`--batch-size 1`), on either pass-1 order.
        check(hidden, 0.3, 0.2, &[1], 1);
        check(hidden, 0.3, 0.2, &[1], 3);
    }
}

#[test]
fn nonzero_gradients_everywhere() {
    // A pass that forgot a tensor would leave it zero and still "match" a
    // finite difference of zero only if the loss ignored it; make sure every
    // weight and bias of every layer gets a real gradient here.
    for hidden in DEPTHS {
        let dims = dims(hidden);
        let d = dims.d();
        // Positive biases keep every unit of every layer alive.
        let mut params = params(&dims, Init::He, 0.5);
        let n = 8;
        let mut ws = Workspace::new(&dims, n);
        let load = |rows: std::ops::Range<usize>, x: &mut [f32], y: &mut [u8]| {
            for (i, v) in x.iter_mut().enumerate() {
                *v = ((rows.start * d + i) % 7) as f32 / 7.0;
            }
            y.copy_from_slice(&[0, 1, 3, 2, 1, 0, 2, 3][rows]);
        };
        let mut g = Params::zeros(dims.clone());
        let opts = PassOpts {
            inv_batch: 1.0 / n as f32,
            dropout: None,
            input_dropout: None,
            beta: Beta::Overwrite,
            lr: None,
            parts: 1,
            pass1: None,
        };
        forward_backward(&mut params, &mut ws, n, &load, &mut g, opts);
        for l in 0..dims.layers() {
            let (w, b) = g.layer_slices(l);
            for (name, t) in [("weight", w), ("bias", b)] {
                assert!(
                    t.iter().any(|&v| v != 0.0),
                    "{}: layer {l} {name} has an all-zero gradient",
                    dims.name()
                );
            }
        }
    }
}
