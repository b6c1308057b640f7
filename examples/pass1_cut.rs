//! Pass 1 by row blocks against layer by layer (`model::Pass1`), on real
//! training steps: which is faster for a network, batch and thread count.
//! Both give the same bits (`model::tests`).
//!
//! ```sh
//! cargo run --release --example pass1_cut -- HIDDEN THREADS BATCH [ROUNDS]
//! cargo run --release --example pass1_cut -- 1024,1024 2 128
//! ```
//!
//! Each round times 10 steps (SGD momentum 0.9, dropout 0.2, shuffled
//! MNIST rows) with each cut, back to back, alternating which goes first;
//! it prints the median step time of each and the median over rounds of the
//! per-round ratio, so a slow spell of a shared machine hits both sides.
//! THREADS runs as `--threads` does: at most one thread per core.

use std::ops::Range;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use simplenn::data::Mnist;
use simplenn::gemm::Beta;
use simplenn::layers::DropMask;
use simplenn::model::{
    forward_backward, parse_hidden, Dims, Init, Params, Pass1, PassOpts, Workspace,
};

const STEPS: usize = 10;

fn main() {
    if let Err(e) = run() {
        eprintln!("pass1_cut: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let usage = "usage: pass1_cut HIDDEN THREADS BATCH [ROUNDS]";
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        bail!(usage);
    }
    let hidden = parse_hidden(&args[0]).map_err(|e| anyhow::anyhow!("HIDDEN: {e}"))?;
    let threads: usize = args[1].parse().context("THREADS")?;
    let n: usize = args[2].parse().context("BATCH")?;
    let rounds: usize = args
        .get(3)
        .map_or(Ok(40), |r| r.parse())
        .context("ROUNDS")?;
    if threads == 0 || n == 0 || n > 55_000 || rounds == 0 {
        bail!("THREADS, ROUNDS and BATCH (up to 55000) must be at least 1; {usage}");
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    let mnist = Mnist::open(&dir)?;
    let dims = Dims::mnist(&hidden);
    // As a run with --threads THREADS: at most one thread per core.
    let threads = simplenn::train::parts_for(threads);
    let pool = simplenn::train::thread_pool(threads)?;
    let mut params = Params::init(dims.clone(), Init::He, 1);
    let mut grads = Params::zeros(dims.clone());
    let mut ws = Workspace::new(&dims, n);
    let order: Vec<u32> = (0..55_000u32).map(|i| (i * 7919) % 55_000).collect();
    let cuts = [Pass1::RowBlocks, Pass1::Layers];
    let (mut times, mut ratios) = ([vec![], vec![]], vec![]);
    let mut step = 0usize;
    // Round 0 is a warm-up, not recorded: the first steps touch the
    // workspace's pages and grow each thread's packing buffer.
    for round in 0..=rounds {
        let mut t = [0.0f64; 2];
        for k in 0..2 {
            let c = if round % 2 == 0 { k } else { 1 - k };
            let start = Instant::now();
            for _ in 0..STEPS {
                if (step + 1) * n > order.len() {
                    step = 0;
                }
                let rows = &order[step * n..(step + 1) * n];
                step += 1;
                let load = |r: Range<usize>, x: &mut [f32], y: &mut [u8]| {
                    mnist.train.gather(&rows[r], x, y)
                };
                let o = PassOpts {
                    inv_batch: 1.0 / n as f32,
                    dropout: Some((0.2, DropMask::new(1, step as u64))),
                    input_dropout: None,
                    beta: Beta::Scale(0.9),
                    lr: Some(0.01),
                    parts: threads,
                    pass1: Some(cuts[c]),
                };
                pool.install(|| forward_backward(&mut params, &mut ws, n, &load, &mut grads, o));
            }
            t[c] = start.elapsed().as_secs_f64() / STEPS as f64;
        }
        if round == 0 {
            continue;
        }
        times[0].push(t[0]);
        times[1].push(t[1]);
        ratios.push(t[1] / t[0]);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let [rows, layers] = &mut times;
    println!(
        "{} batch {n}, {threads} threads: row blocks {:.0} µs, layer by layer {:.0} µs a step; \
         layer by layer / row blocks, median of {rounds} paired rounds: {:.3} (chosen: {:?})",
        dims.name(),
        median(rows) * 1e6,
        median(layers) * 1e6,
        median(&mut ratios),
        Pass1::for_net(&dims, n, threads),
    );
    Ok(())
}
