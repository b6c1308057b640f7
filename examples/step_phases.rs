//! Where a training step's time goes, phase by phase, at 1 and 2 threads:
//! which phases lose time when the step is cut in two.
//!
//! ```sh
//! cargo run --release --example step_phases -- [HIDDEN [ROUNDS [STEPS]]]
//! cargo run --release --example step_phases -- 1024,1024 20 10
//! ```
//!
//! Runs the phases of `model::forward_backward` cut layer by layer
//! (`Pass1::Layers`, the cut the deep network gets at 2 threads; at 1
//! thread the same calls in one part), batch 128, SGD momentum 0.9, lr
//! 0.001, dropout 0.2, timing each phase: the load, each layer's forward
//! product and its bias + ReLU + dropout, the loss, each backward product
//! and its ReLU mask, and pass 2 (weight gradients with the fused update).
//! It calls the same public functions `RowPass::by_layer` does, in its
//! order ([`phased_step`]), and `tests/step_phases.rs` fails when its
//! weights stop being `Trainer::step`'s, bit for bit. Each round runs
//! STEPS steps on a 1-thread pool and STEPS on a 2-thread pool, the order
//! alternating, after one unrecorded warm-up round; the table gives each
//! phase's median over rounds (µs a step), the ratio, and what the
//! 2-thread run spends beyond half the 1-thread time.
use std::time::Instant;

use simplenn::data::{resolve_dir, Dataset, Mnist};
use simplenn::gemm::Beta;
use simplenn::layers::{self, DropMask};
use simplenn::model::{
    for_each_row_block, for_each_weight_part, forward_product, input_product, parse_hidden,
    weight_part, Acts, Dims, Init, Params, RowBlock, Workspace,
};

fn main() {
    if let Err(e) = run() {
        eprintln!("step_phases: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let usage = "usage: step_phases [HIDDEN [ROUNDS [STEPS]]]";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let hidden = parse_hidden(args.first().map_or("1024,1024", |s| s))
        .map_err(|e| anyhow::anyhow!("HIDDEN: {e}; {usage}"))?;
    let number = |i: usize, default: usize| -> anyhow::Result<usize> {
        match args.get(i) {
            None => Ok(default),
            Some(a) => a.parse().ok().filter(|&v| v >= 1).ok_or_else(|| {
                anyhow::anyhow!("{a:?}: ROUNDS and STEPS are whole numbers from 1; {usage}")
            }),
        }
    };
    let (rounds, steps) = (number(1, 20)?, number(2, 10)?);
    let n = 128;
    let mnist = Mnist::open(&resolve_dir(None)?)?;
    let (r, c) = mnist.train.side();
    let dims = Dims::new(r * c, &hidden, mnist.classes);
    let last = dims.layers() - 1;
    // The training split of the default run (the last 5,000 images held out).
    let split = mnist.train.len().saturating_sub(5_000);
    if split < n {
        anyhow::bail!("the training set has {split} images besides the 5,000 held out, fewer than a batch of {n}");
    }
    let order: Vec<u32> = (0..split as u64)
        .map(|i| ((i * 7919) % split as u64) as u32)
        .collect();
    // The trainer cuts pass 1 layer by layer only where a layer is wide
    // enough; elsewhere this table is of a cut no run of HIDDEN makes.
    let cut = simplenn::model::Pass1::for_net(&dims, n, 2);
    if cut != simplenn::model::Pass1::Layers {
        eprintln!(
            "step_phases: note: at 2 threads the trainer runs {} by {cut:?}, not layer by layer as timed here; the 2-thread rows are not its step",
            dims.name()
        );
    }
    let pools: Vec<_> = [1, 2]
        .iter()
        .map(|&t| rayon::ThreadPoolBuilder::new().num_threads(t).build())
        .collect::<Result<_, _>>()?;
    let mut params = Params::init(dims.clone(), Init::He, 1);
    let mut grads = Params::zeros(dims.clone());
    let mut ws = Workspace::new(&dims, n);
    let names: Vec<String> = {
        // layers counted from 1, as README's tables do
        let mut v = vec!["load".to_string()];
        for l in 1..=last {
            v.push(format!("z{l} gemm"));
            v.push(format!("a{l} relu"));
        }
        v.push(format!("z{} gemm", last + 1));
        v.push("loss".into());
        for l in (2..=last + 1).rev() {
            v.push(format!("da{} gemm", l - 1));
            v.push(format!("dz{} mask", l - 1));
        }
        v.push("pass 2".into());
        v
    };
    let np = names.len();
    // times[t][phase] = per-round sums
    let mut times = vec![vec![vec![]; np]; 2];
    let mut totals = vec![vec![]; 2];
    let mut step = 0usize;
    // Round 0 is a warm-up on each pool, not recorded: it pays for the
    // first touch of the data's pages, the pools' threads and the caches.
    for round in 0..=rounds {
        for k in 0..2 {
            let ti = if round % 2 == 0 { k } else { 1 - k };
            let parts = ti + 1;
            let mut acc = vec![0.0f64; np];
            let t_all = Instant::now();
            pools[ti].install(|| {
                for _ in 0..steps {
                    if (step + 1) * n > order.len() {
                        step = 0;
                    }
                    let rows = &order[step * n..(step + 1) * n];
                    let mut ph = 0;
                    let mut t = Instant::now();
                    let mut lap = || {
                        acc[ph] += t.elapsed().as_secs_f64();
                        ph += 1;
                        t = Instant::now();
                    };
                    let p = (&mut params, &mut grads, &mut ws);
                    phased_step(&mnist.train, rows, p, parts, step as u64, &mut lap);
                    step += 1;
                }
            });
            if round == 0 {
                continue;
            }
            totals[ti].push(t_all.elapsed().as_secs_f64() / steps as f64);
            for p in 0..np {
                times[ti][p].push(acc[p] / steps as f64);
            }
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "{} batch {n}, median of {rounds} rounds of {steps} steps, µs per step",
        dims.name()
    );
    println!(
        "{:12} {:>9} {:>9} {:>6} {:>9}",
        "phase", "1t", "2t", "1t/2t", "lost µs"
    );
    let (mut s1, mut s2) = (0.0, 0.0);
    for p in 0..np {
        let a = med(&mut times[0][p]) * 1e6;
        let b = med(&mut times[1][p]) * 1e6;
        s1 += a;
        s2 += b;
        println!(
            "{:12} {:9.1} {:9.1} {:6.2} {:9.1}",
            names[p],
            a,
            b,
            a / b,
            b - a / 2.0
        );
    }
    let (a, b) = (med(&mut totals[0]) * 1e6, med(&mut totals[1]) * 1e6);
    println!("{:12} {:9.1} {:9.1} {:6.2}", "sum of meds", s1, s2, s1 / s2);
    println!("{:12} {:9.1} {:9.1} {:6.2}", "step", a, b, a / b);
    Ok(())
}

/// One step of batch `rows` of `data` (batch 128, SGD momentum 0.9, lr
/// 0.001, dropout 0.2, seed 1; `step` counts the steps before it, as
/// `Trainer` counts them) cut layer by layer into `parts`, as
/// `RowPass::by_layer` runs it, calling `lap` after each phase; `grads`
/// holds the momentum. `tests/step_phases.rs` checks that it leaves the
/// weights `Trainer::step` leaves, bit for bit.
pub fn phased_step(
    data: &Dataset,
    rows: &[u32],
    (params, grads, ws): (&mut Params, &mut Params, &mut Workspace),
    parts: usize,
    step: u64,
    lap: &mut dyn FnMut(),
) {
    let dims = &params.dims;
    let last = dims.layers() - 1;
    let n = rows.len();
    for_each_row_block(ws, dims, n, parts, &|b| {
        let RowBlock { r0, x, y, .. } = b;
        data.gather(&rows[r0..r0 + y.len()], x, y);
    });
    lap();
    for l in 0..last {
        forward_product(params, ws, n, l, parts);
        lap();
        let bias = params.linear(l).b;
        let drop = DropMask::new(1, step);
        for_each_row_block(ws, dims, n, parts, &|b| {
            let RowBlock { r0, act, .. } = b;
            layers::bias_relu_dropout_forward(act[l], bias, Some((0.2, drop.layer(l).offset(r0))));
        });
        lap();
    }
    forward_product(params, ws, n, last, parts);
    lap();
    let b_last = params.linear(last).b;
    for_each_row_block(ws, dims, n, parts, &|b| {
        let RowBlock {
            y, loss, hit, act, ..
        } = b;
        layers::softmax_xent_forward_backward(act[last], b_last, y, 1.0 / n as f32, loss, hit);
    });
    lap();
    for l in (1..=last).rev() {
        input_product(params, ws, n, l, parts);
        lap();
        for_each_row_block(ws, dims, n, parts, &|b| {
            let RowBlock { act, grad, .. } = b;
            layers::bias_relu_dropout_backward(grad[l - 1], act[l - 1], 1.25);
        });
        lap();
    }
    let Params {
        dims: pd,
        data: weights,
    } = &mut *params;
    let acts = Acts {
        ws,
        n,
        dims: pd,
        beta: Beta::Scale(0.9),
        parts,
    };
    for_each_weight_part(
        pd,
        parts,
        &mut grads.data,
        Some(&mut weights[..]),
        &|p, g, w| {
            let w = w.unwrap();
            for l in 0..pd.layers() {
                let (_, o) = pd.layer(l);
                acts.weight_grad(l, p, g.w[l], Some((&mut *w.w[l], 0.001)));
                let units = weight_part(o, parts, p);
                layers::bias_backward(acts.dz(l).cols(units.0, units.1), g.b[l], Beta::Scale(0.9));
                layers::sgd_step(w.b[l], g.b[l], 0.001);
            }
        },
    );
    lap();
}
