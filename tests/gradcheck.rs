//! The analytic gradients of `model::forward_backward` against central finite
//! differences of an independent f64 implementation of the same loss, for
//! every parameter of a tiny network, with and without dropout, in one block
//! and split into blocks.

use simplenn::gemm::Beta;
use simplenn::layers::DropMask;
use simplenn::model::{forward_backward, Dims, Init, Params, PassOpts, Workspace};

const DIMS: Dims = Dims { d: 6, h: 5, k: 4 };

/// Mean cross-entropy of `params` on `(x, y)` in f64, written from the math
/// with no code shared with the crate (the dropout mask is taken as given).
fn loss_f64(theta: &[f64], x: &[f64], y: &[u8], keep: &dyn Fn(usize, usize) -> f64) -> f64 {
    let Dims { d, h, k } = DIMS;
    let (w1, rest) = theta.split_at(h * d);
    let (b1, rest) = rest.split_at(h);
    let (w2, b2) = rest.split_at(k * h);
    let n = y.len();
    let mut total = 0.0;
    for r in 0..n {
        let a: Vec<f64> = (0..h)
            .map(|j| {
                let z: f64 = (0..d).map(|i| x[r * d + i] * w1[j * d + i]).sum::<f64>() + b1[j];
                z.max(0.0) * keep(r, j)
            })
            .collect();
        let z2: Vec<f64> = (0..k)
            .map(|c| (0..h).map(|j| a[j] * w2[c * h + j]).sum::<f64>() + b2[c])
            .collect();
        let max = z2.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = max + z2.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        total += lse - z2[y[r] as usize];
    }
    total / n as f64
}

fn check(dropout: f32, blocks: &[usize], parts: usize) {
    let n: usize = blocks.iter().sum();
    let mut params = Params::init(DIMS, Init::Normal(0.5), 11);
    // Inputs in [0, 1] like pixels, not all on ReLU kinks.
    let x: Vec<f32> = (0..n * DIMS.d)
        .map(|i| ((i * 37 + 11) % 101) as f32 / 100.0)
        .collect();
    let y: Vec<u8> = (0..n).map(|r| (r * 3 % DIMS.k) as u8).collect();
    let mask = DropMask::new(5, 9);

    let mut grads = Params::zeros(DIMS);
    let mut ws = Workspace::new(DIMS, n);
    let mut row0 = 0;
    for (i, &b) in blocks.iter().enumerate() {
        let load = |rows: std::ops::Range<usize>, xb: &mut [f32], yb: &mut [u8]| {
            let (lo, hi) = (row0 + rows.start, row0 + rows.end);
            xb.copy_from_slice(&x[lo * DIMS.d..hi * DIMS.d]);
            yb.copy_from_slice(&y[lo..hi]);
        };
        let opts = PassOpts {
            inv_batch: 1.0 / n as f32,
            dropout: (dropout > 0.0).then(|| (dropout, mask.offset(row0))),
            beta: if i == 0 {
                Beta::Overwrite
            } else {
                Beta::Accumulate
            },
            lr: None,
            parts,
        };
        forward_backward(&mut params, &mut ws, b, &load, &mut grads, opts);
        row0 += b;
    }

    let keep = |r: usize, j: usize| {
        if dropout == 0.0 {
            1.0
        } else if mask.keeps(r, j, dropout) {
            1.0 / (1.0 - dropout as f64)
        } else {
            0.0
        }
    };
    let xf: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    // The reference works in the file layout, W1 as (H, D).
    let mut theta: Vec<f64> = params.to_torch().iter().map(|&v| v as f64).collect();
    let analytic = grads.to_torch();
    let eps = 1e-5;
    let mut worst = 0f64;
    for i in 0..theta.len() {
        let t = theta[i];
        theta[i] = t + eps;
        let up = loss_f64(&theta, &xf, &y, &keep);
        theta[i] = t - eps;
        let down = loss_f64(&theta, &xf, &y, &keep);
        theta[i] = t;
        let fd = (up - down) / (2.0 * eps);
        let err = (analytic[i] as f64 - fd).abs() / (1e-3 + fd.abs());
        worst = worst.max(err);
        assert!(
            err < 1e-3,
            "parameter {i}: analytic {} vs finite difference {fd} (dropout {dropout}, blocks {blocks:?})",
            analytic[i]
        );
    }
    eprintln!(
        "dropout {dropout}, blocks {blocks:?}, parts {parts}: worst relative error {worst:.2e}"
    );
}

#[test]
fn gradients_match_finite_differences() {
    check(0.0, &[3], 1);
}

#[test]
fn gradients_match_with_dropout() {
    check(0.3, &[9], 2);
}

#[test]
fn gradients_accumulate_over_blocks() {
    check(0.0, &[4, 3, 2], 3);
    check(0.25, &[8, 1], 2);
}

#[test]
fn nonzero_gradients_everywhere() {
    // A pass that forgot a tensor would leave it zero and still "match" a
    // finite difference of zero only if the loss ignored it; make sure each
    // of the four tensors gets a real gradient here.
    let mut params = Params::init(DIMS, Init::Normal(0.5), 11);
    let mut ws = Workspace::new(DIMS, 3);
    let load = |rows: std::ops::Range<usize>, x: &mut [f32], y: &mut [u8]| {
        for (i, v) in x.iter_mut().enumerate() {
            *v = ((rows.start * DIMS.d + i) % 7) as f32 / 7.0;
        }
        y.copy_from_slice(&[0, 1, 3][rows]);
    };
    let mut g = Params::zeros(DIMS);
    let opts = PassOpts {
        inv_batch: 1.0 / 3.0,
        dropout: None,
        beta: Beta::Overwrite,
        lr: None,
        parts: 1,
    };
    forward_backward(&mut params, &mut ws, 3, &load, &mut g, opts);
    let p = g.parts();
    for (name, t) in [("w1", p.w1t), ("b1", p.b1), ("w2", p.w2), ("b2", p.b2)] {
        assert!(
            t.iter().any(|&v| v != 0.0),
            "{name} has an all-zero gradient"
        );
    }
}
