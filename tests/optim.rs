//! Every optimiser against an independent f64 implementation of PyTorch's
//! documented update rules (torch.optim.SGD, SGD(nesterov=True), Adam,
//! AdamW), step by step: before each of several `Trainer::step`s the
//! parameters and state are read, the batch's gradient is taken at them,
//! the documented formulas are applied in f64, and the trainer's f32 result
//! must agree to a tight relative tolerance. Also: the max-norm constraint,
//! and bit-identical weights for any thread count with every optimiser and
//! regulariser on.

mod common;

use std::ops::Range;

use simplenn::data::Dataset;
use simplenn::gemm::Beta;
use simplenn::layers::DropMask;
use simplenn::model::{forward_backward, Dims, Init, Params, Pass1, PassOpts, Workspace};
use simplenn::optim::{Kind, Optimizer};
use simplenn::train::{Regularisers, Trainer};

/// The batch's mean gradient at `params`, as the trainer's first block
/// computes it (no hidden dropout; `input_dropout` as given), in the slab
/// layout.
fn gradient(
    params: &Params,
    data: &Dataset,
    idx: &[u32],
    input_dropout: Option<(f32, DropMask)>,
) -> Vec<f32> {
    gradient_dropped(params, data, idx, None, input_dropout)
}

/// [`gradient`] with hidden dropout too, all of `idx` in one block.
fn gradient_dropped(
    params: &Params,
    data: &Dataset,
    idx: &[u32],
    dropout: Option<(f32, DropMask)>,
    input_dropout: Option<(f32, DropMask)>,
) -> Vec<f32> {
    let dims = params.dims.clone();
    let mut p = params.clone();
    let mut g = Params::zeros(dims.clone());
    let mut ws = Workspace::new(&dims, idx.len());
    let load = |rows: Range<usize>, x: &mut [f32], y: &mut [u8]| data.gather(&idx[rows], x, y);
    let opts = PassOpts {
        inv_batch: 1.0 / idx.len() as f32,
        dropout,
        input_dropout,
        beta: Beta::Overwrite,
        lr: None,
        parts: 1,
        pass1: None,
    };
    forward_backward(&mut p, &mut ws, idx.len(), &load, &mut g, opts);
    g.data
}

/// Whether each slab element is a bias, from the widths alone: the slab is
/// `W_0ᵀ (D·n_1) | b_0 (n_1) | W_1 (n_1·n_2) | b_1 (n_2) | …`.
fn bias_flags(widths: &[usize]) -> Vec<bool> {
    let mut out = Vec::new();
    for l in 0..widths.len() - 1 {
        out.extend(std::iter::repeat_n(false, widths[l] * widths[l + 1]));
        out.extend(std::iter::repeat_n(true, widths[l + 1]));
    }
    out
}

/// Hyper-parameters of the reference, in f64.
struct Ref {
    kind: Kind,
    mu: f64,
    b1: f64,
    b2: f64,
    eps: f64,
    wd: f64,
    decay_bias: bool,
}

impl Ref {
    fn of(o: &Optimizer) -> Self {
        Ref {
            kind: o.kind,
            mu: o.momentum as f64,
            b1: o.beta1 as f64,
            b2: o.beta2 as f64,
            eps: o.eps as f64,
            wd: o.weight_decay as f64,
            decay_bias: o.decay_bias,
        }
    }

    /// One step at step number `t` (from 1) with learning rate `lr`, as the
    /// PyTorch documentation writes it (dampening 0, maximize and amsgrad
    /// off). Also returns, per element, the same computation on magnitudes
    /// (every input and term taken positive) for the weight and the two
    /// moments: an f32 result may differ from the exact one by a few roundings
    /// of those, where terms cancel.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        theta: &mut [f64],
        g: &[f64],
        m: &mut [f64],
        v: &mut [f64],
        bias: &[bool],
        lr: f64,
        t: i32,
    ) -> [Vec<f64>; 3] {
        let n = theta.len();
        let (mut w_mag, mut m_mag, mut v_mag) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        for i in 0..theta.len() {
            let wd = if bias[i] && !self.decay_bias {
                0.0
            } else {
                self.wd
            };
            let mut g = g[i];
            let mut g_mag = g.abs() + wd * theta[i].abs();
            let w_before = theta[i].abs();
            match self.kind {
                Kind::Sgd | Kind::Nesterov => {
                    g += wd * theta[i];
                    if self.mu != 0.0 {
                        // t = 1: b_1 = g; after: b_t = μ·b_{t−1} + g
                        m_mag[i] = self.mu * m[i].abs() + g_mag;
                        m[i] = if t == 1 { g } else { self.mu * m[i] + g };
                        (g, g_mag) = if self.kind == Kind::Nesterov {
                            (g + self.mu * m[i], g_mag + self.mu * m_mag[i])
                        } else {
                            (m[i], m_mag[i])
                        };
                    }
                    theta[i] -= lr * g;
                    w_mag[i] = w_before + lr * g_mag;
                }
                Kind::Adam | Kind::Adamw => {
                    if self.kind == Kind::Adamw {
                        theta[i] -= lr * wd * theta[i];
                        g_mag = g.abs();
                    } else {
                        g += wd * theta[i];
                    }
                    m_mag[i] = self.b1 * m[i].abs() + (1.0 - self.b1) * g_mag;
                    v_mag[i] = self.b2 * v[i] + (1.0 - self.b2) * g_mag * g_mag;
                    m[i] = self.b1 * m[i] + (1.0 - self.b1) * g;
                    v[i] = self.b2 * v[i] + (1.0 - self.b2) * g * g;
                    let m_hat = m[i] / (1.0 - self.b1.powi(t));
                    let v_hat = v[i] / (1.0 - self.b2.powi(t));
                    let denom = v_hat.sqrt() + self.eps;
                    theta[i] -= lr * m_hat / denom;
                    w_mag[i] = w_before + lr * m_mag[i] / (1.0 - self.b1.powi(t)) / denom;
                }
            }
        }
        [w_mag, m_mag, v_mag]
    }
}

fn f64s(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

/// `got` (f32, after a step) against `want` (f64), both reached from
/// `before`: the changes must agree to `rel`, give or take a few f32
/// roundings of `mag` (the step's terms' magnitudes, see [`Ref::step`]).
fn assert_step_close(what: &str, before: &[f32], got: &[f32], want: &[f64], mag: &[f64], rel: f64) {
    let mut worst = 0f64;
    for (i, ((&b, &g), &w)) in before.iter().zip(got).zip(want).enumerate() {
        let (dg, dw) = (g as f64 - b as f64, w - b as f64);
        let err = (dg - dw).abs();
        assert!(
            err <= rel * dw.abs() + 8.0 * f32::EPSILON as f64 * mag[i],
            "{what}: element {i}: moved by {dg:e}, PyTorch's formula says {dw:e} (from {b})"
        );
        if dw != 0.0 {
            worst = worst.max(err / dw.abs());
        }
    }
    eprintln!("{what}: worst relative error of a change {worst:.1e}");
}

/// Run `opt` for a few steps on batches of a toy data set, each step checked
/// against the reference.
fn check(opt: Optimizer, hidden: &[usize], steps: usize) {
    let dir = tempfile::tempdir().unwrap();
    let data = common::random_dataset(dir.path(), 300);
    let dims = Dims::mnist(hidden);
    let widths = dims.widths().to_vec();
    let bias = bias_flags(&widths);
    let reference = Ref::of(&opt);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let mut trainer = Trainer::with(
        Params::init(dims.clone(), Init::He, 3),
        2,
        opt,
        Regularisers::default(),
        5,
    );
    let name = format!(
        "{} wd {} decay bias {} on {}",
        opt.kind.name(),
        opt.weight_decay,
        opt.decay_bias,
        dims.name()
    );
    for s in 0..steps {
        let idx: Vec<u32> = (0..40).map(|i| ((i * 13 + s * 41) % 300) as u32).collect();
        // A different learning rate each step: the step must use its own.
        let lr = if opt.kind.is_adam() { 0.01 } else { 0.1 } * (1.0 - 0.1 * s as f32);
        let (w0, m0) = (trainer.params.data.clone(), trainer.velocity.data.clone());
        let v0 = trainer.exp_avg_sq.as_ref().map(|v| v.data.clone());
        let g = f64s(&gradient(&trainer.params, &data, &idx, None));

        let (mut w, mut m) = (f64s(&w0), f64s(&m0));
        let mut v = v0.as_deref().map_or(vec![0.0; w.len()], f64s);
        let [w_mag, m_mag, v_mag] =
            reference.step(&mut w, &g, &mut m, &mut v, &bias, lr as f64, s as i32 + 1);
        pool.install(|| trainer.step(&data, &idx, lr));

        let at = |slab: &str| format!("{name}, step {}, {slab}", s + 1);
        assert_step_close(&at("weights"), &w0, &trainer.params.data, &w, &w_mag, 1e-5);
        let momentum = opt.kind.is_adam() || opt.momentum != 0.0;
        if momentum {
            let (got, rel) = (&trainer.velocity.data, 1e-5);
            assert_step_close(&at("first moment"), &m0, got, &m, &m_mag, rel);
        }
        if let (Some(v0), Some(vt)) = (&v0, &trainer.exp_avg_sq) {
            assert_step_close(&at("second moment"), v0, &vt.data, &v, &v_mag, 1e-5);
        }
    }
}

fn opt(kind: Kind, weight_decay: f32, decay_bias: bool) -> Optimizer {
    Optimizer {
        kind,
        momentum: if kind == Kind::Sgd { 0.0 } else { 0.9 },
        beta1: 0.8,
        beta2: 0.99,
        eps: 1e-6,
        weight_decay,
        decay_bias,
    }
}

#[test]
fn sgd_with_weight_decay_matches_pytorch() {
    for (wd, decay_bias) in [(0.05, true), (0.05, false)] {
        check(opt(Kind::Sgd, wd, decay_bias), &[16], 5);
        check(
            Optimizer {
                momentum: 0.9,
                ..opt(Kind::Sgd, wd, decay_bias)
            },
            &[16, 8],
            5,
        );
    }
}

/// Plain sgd (the fused path: momentum in the gradient GEMMs' β, no
/// gradient slab), with and without momentum, at depth 0, 1 and 2; and
/// every optimiser with weight decay at depth 0 (softmax regression).
#[test]
fn fused_sgd_and_every_optimiser_at_depth_0_match_pytorch() {
    let momentum = Optimizer {
        momentum: 0.9,
        ..opt(Kind::Sgd, 0.0, true)
    };
    for hidden in [&[][..], &[16], &[16, 8]] {
        check(opt(Kind::Sgd, 0.0, true), hidden, 4);
        check(momentum, hidden, 5);
    }
    for kind in [Kind::Sgd, Kind::Nesterov, Kind::Adam, Kind::Adamw] {
        check(opt(kind, 0.05, false), &[], 4);
    }
}

#[test]
fn nesterov_matches_pytorch() {
    for (wd, decay_bias) in [(0.0, true), (0.05, true), (0.05, false)] {
        check(opt(Kind::Nesterov, wd, decay_bias), &[16], 5);
    }
    check(opt(Kind::Nesterov, 0.0, true), &[16, 8], 4);
}

#[test]
fn adam_matches_pytorch() {
    for (wd, decay_bias) in [(0.0, true), (0.05, true), (0.05, false)] {
        check(opt(Kind::Adam, wd, decay_bias), &[16], 6);
    }
    check(opt(Kind::Adam, 0.0, true), &[], 4);
    check(opt(Kind::Adam, 0.01, true), &[16, 8], 4);
}

#[test]
fn adamw_matches_pytorch() {
    for (wd, decay_bias) in [(0.0, true), (0.05, true), (0.05, false)] {
        check(opt(Kind::Adamw, wd, decay_bias), &[16], 6);
    }
    check(opt(Kind::Adamw, 0.01, false), &[16, 8], 4);
}

/// Norms of each unit's incoming weights (rows of `W_l`; columns of `W_0ᵀ`).
fn unit_norms(p: &Params) -> Vec<Vec<f64>> {
    let dims = &p.dims;
    (0..dims.layers())
        .map(|l| {
            let (i, o) = dims.layer(l);
            let (w, _) = p.layer_slices(l);
            (0..o)
                .map(|u| {
                    let sq: f64 = (0..i)
                        .map(|c| {
                            let x = if l == 0 { w[c * o + u] } else { w[u * i + c] };
                            (x as f64).powi(2)
                        })
                        .sum();
                    sq.sqrt()
                })
                .collect()
        })
        .collect()
}

#[test]
fn max_norm_bounds_every_unit_and_leaves_short_ones_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::random_dataset(dir.path(), 300);
    let dims = Dims::mnist(&[24, 12]);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let init = Params::init(dims.clone(), Init::He, 3);
    let before = unit_norms(&init);
    // He init: layer 0's units have norm ≈ √2 ≈ 1.4, the others too.
    let c = 1.2f32;
    assert!(before.iter().flatten().any(|&n| n > c as f64));
    let run = |max_norm: Option<f32>| {
        let reg = Regularisers {
            max_norm,
            ..Regularisers::default()
        };
        let mut t = Trainer::with(init.clone(), 2, Optimizer::sgd(0.9), reg, 1);
        pool.install(|| {
            for s in 0..6 {
                let idx: Vec<u32> = (0..50).map(|i| ((i * 7 + s * 31) % 300) as u32).collect();
                t.step(&data, &idx, 0.1);
            }
        });
        t.params
    };
    let bounded = run(Some(c));
    for (l, norms) in unit_norms(&bounded).iter().enumerate() {
        for (u, &n) in norms.iter().enumerate() {
            assert!(
                n <= c as f64 * (1.0 + 1e-5),
                "layer {l} unit {u}: norm {n} > {c}"
            );
        }
    }
    // Longer units were cut back to C itself, not below.
    assert!(unit_norms(&bounded)
        .iter()
        .flatten()
        .any(|&n| (n - c as f64).abs() < 1e-5));
    // A bound no unit reaches changes no bit.
    assert_eq!(run(Some(1e6)), run(None));

    // One constraint on its own: rows longer than C scaled to C, shorter
    // ones and the biases bit for bit as they were.
    let mut p = init.clone();
    for v in p.data.iter_mut() {
        *v += 0.01;
    }
    let mut t = Trainer::with(
        p.clone(),
        3,
        Optimizer::sgd(0.0),
        Regularisers {
            max_norm: Some(c),
            ..Regularisers::default()
        },
        1,
    );
    // lr 0: the step changes nothing but what max-norm changes.
    pool.install(|| t.step(&data, &[1, 2, 3], 0.0));
    let (old, new) = (unit_norms(&p), unit_norms(&t.params));
    for l in 0..dims.layers() {
        let (pw, pb) = p.layer_slices(l);
        let (tw, tb) = t.params.layer_slices(l);
        assert_eq!(pb, tb, "layer {l}: biases changed");
        let (i, o) = dims.layer(l);
        for u in 0..o {
            let idx = |c: usize| if l == 0 { c * o + u } else { u * i + c };
            if old[l][u] <= c as f64 {
                assert!(
                    (0..i).all(|k| pw[idx(k)] == tw[idx(k)]),
                    "layer {l} unit {u}"
                );
            } else {
                assert!((new[l][u] - c as f64).abs() < 1e-5, "layer {l} unit {u}");
                let f = c as f64 / old[l][u];
                for k in 0..i {
                    let want = pw[idx(k)] as f64 * f;
                    assert!((tw[idx(k)] as f64 - want).abs() <= 1e-6 * want.abs() + 1e-12);
                }
            }
        }
    }
}

/// Units whose squared norms overflow an f32 (norms past about 1.8e19)
/// are measured all the same: a limit above them changes no bit (their f32
/// sum, inf, once made the factor c / inf = 0 and zeroed them), and one
/// between them scales the longer units to it, in every layer's layout
/// (the first layer's columns, then rows eight at a time and the rest).
#[test]
fn max_norm_measures_units_too_long_for_an_f32_sum() {
    let dims = Dims::mnist(&[24, 12]);
    let mut p = Params::init(dims.clone(), Init::He, 3);
    // Odd units three times as long as even ones: about 4.2e21 and 1.4e21.
    // Each layer's weights, then its biases.
    let mut at = 0;
    for l in 0..dims.layers() {
        let (i, o) = dims.layer(l);
        let w = &mut p.data[at..at + i * o];
        at += i * o + o;
        for u in 0..o {
            let f = if u % 2 == 1 { 3e21 } else { 1e21 };
            for k in 0..i {
                w[if l == 0 { k * o + u } else { u * i + k }] *= f;
            }
        }
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let constrained = |c: f32| {
        let mut q = p.clone();
        let mut scratch = vec![0.0; dims.layer(0).1];
        pool.install(|| simplenn::optim::max_norm(&mut q, c, &mut scratch, 2));
        q
    };
    // (Not assert_eq: the two vectors would fill the screen.)
    assert!(
        constrained(3e38).data == p.data,
        "a limit no unit reaches changed weights"
    );
    let c = 2.5e21f32;
    let (old, new) = (unit_norms(&p), unit_norms(&constrained(c)));
    for l in 0..dims.layers() {
        for (u, (&was, &now)) in old[l].iter().zip(&new[l]).enumerate() {
            if u % 2 == 1 {
                assert!(was > c as f64, "layer {l} unit {u}: {was}");
                assert!(
                    (now / c as f64 - 1.0).abs() < 1e-5,
                    "layer {l} unit {u}: {now}"
                );
            } else {
                assert!(was < c as f64, "layer {l} unit {u}: {was}");
                assert_eq!(now, was, "layer {l} unit {u}");
            }
        }
    }
}

/// Four steps of `t` on `data` (700 images) in a pool of `parts`
/// threads, the third a batch over MAX_BLOCK: two blocks summed.
fn four_steps(t: &mut Trainer, data: &Dataset, parts: usize) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(parts)
        .build()
        .unwrap();
    pool.install(|| {
        for s in 0..4 {
            let n = if s == 2 { 700 } else { 64 };
            let idx: Vec<u32> = (0..n).map(|i| ((i * 11 + s * 17) % 700) as u32).collect();
            t.step(data, &idx, 0.01);
        }
    });
}

#[test]
fn every_optimiser_and_regulariser_is_bit_identical_across_thread_counts() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::random_dataset(dir.path(), 700);
    // 40 and 24 units: pass 1 by row blocks. 300 units on batches of 64:
    // layer by layer, the wide product cut by columns (`model::Pass1`).
    for dims in [Dims::mnist(&[40, 24]), Dims::mnist(&[300, 24])] {
        let layers = Pass1::for_net(&dims, 64, 2) == Pass1::Layers;
        assert_eq!(layers, dims.widths()[1] == 300, "{:?}", dims.widths());
        // Every optimiser with per-image masks, then with one mask per batch
        // (the thinned network, `--dropout-mask batch`), plain SGD included.
        let cases = [false, true]
            .into_iter()
            .flat_map(|per_batch| {
                Kind::ALL.into_iter().map(move |kind| {
                    let o = Optimizer {
                        momentum: 0.9,
                        ..opt(kind, 0.01, kind != Kind::Adam)
                    };
                    (o, per_batch)
                })
            })
            .chain([(Optimizer::sgd(0.9), true)]);
        for (o, per_batch) in cases {
            let reg = Regularisers {
                dropout: 0.3,
                input_dropout: 0.2,
                max_norm: Some(1.3),
                per_batch,
            };
            let kind = o.kind;
            let mut results = Vec::new();
            // Parts given to the trainer directly: `train::parts_for` would cap
            // them at this machine's cores, and CI may have only two.
            for parts in [1, 2, 3, 5, 8] {
                let mut t =
                    Trainer::with(Params::init(dims.clone(), Init::He, 2), parts, o, reg, 9);
                four_steps(&mut t, &data, parts);
                let bits = |p: &Params| p.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                let mut all = bits(&t.params);
                all.extend(bits(&t.velocity));
                all.extend(t.exp_avg_sq.as_ref().map_or(vec![], bits));
                results.push(all);
            }
            assert!(
                results.windows(2).all(|w| w[0] == w[1]),
                "{} (one mask per batch: {per_batch}): weights or state differ between 1, 2, 3, 5 and 8 parts",
                kind.name()
            );
        }
    }
}

/// Each distortion is drawn per image inside the parallel gather, from
/// (seed, epoch, image): the weights are the same bits for 1, 2, 3, 5 and
/// 8 parts, however the images fall to the parts (on any machine: the
/// trainer is given the parts, not capped at the cores as `--threads` is).
#[test]
fn augmented_steps_are_bit_identical_across_thread_counts() {
    use simplenn::augment::{Augment, Augmenter, ELASTIC_ALPHA, ELASTIC_SIGMA};
    let dir = tempfile::tempdir().unwrap();
    let data = common::random_dataset(dir.path(), 700);
    let dims = Dims::mnist(&[40]);
    let elastic = Augment::Elastic {
        sigma: ELASTIC_SIGMA,
        alpha: ELASTIC_ALPHA,
    };
    let reg = Regularisers {
        dropout: 0.3,
        ..Regularisers::default()
    };
    let mut kinds = Vec::new();
    for aug in [elastic, Augment::Shift(2), Augment::Affine] {
        let mut results = Vec::new();
        for parts in [1, 2, 3, 5, 8] {
            let o = Optimizer::sgd(0.9);
            let mut t = Trainer::with(Params::init(dims.clone(), Init::He, 2), parts, o, reg, 9);
            t.set_augment(Augmenter::new(aug, 28, 28, 9));
            four_steps(&mut t, &data, parts);
            results.push(
                t.params
                    .data
                    .iter()
                    .map(|v| v.to_bits())
                    .collect::<Vec<_>>(),
            );
        }
        assert!(
            results.windows(2).all(|w| w[0] == w[1]),
            "{}: weights differ between 1, 2, 3, 5 and 8 parts",
            aug.name()
        );
        kinds.push(results.swap_remove(0));
    }
    assert!(
        kinds[0] != kinds[1] && kinds[1] != kinds[2] && kinds[0] != kinds[2],
        "each distortion trains differently"
    );
}

#[test]
fn trainer_drops_the_inputs_with_the_steps_input_mask() {
    // One plain SGD step (μ = 0) with input dropout must be, bit for bit,
    // the gradient taken with the step's input mask, then w − lr·g.
    let dir = tempfile::tempdir().unwrap();
    let data = common::random_dataset(dir.path(), 300);
    let dims = Dims::mnist(&[16]);
    let init = Params::init(dims.clone(), Init::He, 3);
    let idx: Vec<u32> = (0..40).map(|i| (i * 7) as u32).collect();
    let (p, seed, lr) = (0.3f32, 5u64, 0.1f32);
    let reg = Regularisers {
        input_dropout: p,
        ..Regularisers::default()
    };
    let mut t = Trainer::with(init.clone(), 1, Optimizer::sgd(0.0), reg, seed);
    t.step(&data, &idx, lr);

    let mut w = init.clone();
    let mask = DropMask::new(seed, 0).input();
    let g = gradient(&init, &data, &idx, Some((p, mask)));
    for (w, g) in w.data.iter_mut().zip(&g) {
        *w -= lr * g;
    }
    assert_eq!(t.params, w);
    // And the mask matters: without input dropout the step differs.
    let mut plain = Trainer::with(init, 1, Optimizer::sgd(0.0), Regularisers::default(), seed);
    plain.step(&data, &idx, lr);
    assert_ne!(plain.params, t.params);
}

#[test]
fn a_batch_of_several_blocks_draws_each_rows_own_masks() {
    // A step of more than MAX_BLOCK rows runs block by block; row r of the
    // batch must get mask row r (hidden and input) whichever block it is
    // in. The reference takes all 700 rows in one block, so the sums are
    // added in another order: equal to rounding, where reusing the first
    // block's masks for the second would be far off.
    let dir = tempfile::tempdir().unwrap();
    let data = common::random_dataset(dir.path(), 700);
    let dims = Dims::mnist(&[16]);
    let init = Params::init(dims.clone(), Init::He, 3);
    let idx: Vec<u32> = (0..700u32).map(|i| (i * 3) % 700).collect();
    assert!(idx.len() > simplenn::train::MAX_BLOCK);
    let (p, p_in, seed, lr) = (0.3f32, 0.2f32, 5u64, 0.1f32);
    let reg = Regularisers {
        dropout: p,
        input_dropout: p_in,
        ..Regularisers::default()
    };
    let mut t = Trainer::with(init.clone(), 1, Optimizer::sgd(0.0), reg, seed);
    t.step(&data, &idx, lr);

    let mask = DropMask::new(seed, 0);
    let g = gradient_dropped(
        &init,
        &data,
        &idx,
        Some((p, mask)),
        Some((p_in, mask.input())),
    );
    let mut worst = 0f32;
    for ((w0, w1), g) in init.data.iter().zip(&t.params.data).zip(&g) {
        let want = w0 - lr * g;
        worst = worst.max((w1 - want).abs() / (lr * g.abs()).max(1e-3));
    }
    assert!(worst < 1e-3, "worst relative difference {worst}");
}
