//! Median time of a training epoch at the default settings, for A/B runs of
//! two builds on a noisy machine: build each, then run them alternately.
//!
//! ```sh
//! cargo run --release --example epoch_time -- THREADS [EPOCHS [HIDDEN [OPTIMIZER]]]
//! cargo run --release --example epoch_time -- 2 5 1024,1024   # 784-1024-1024-10
//! cargo run --release --example epoch_time -- 2 5 256 adam    # Adam's extra update pass
//! ```
//!
//! Runs one warm-up epoch, then `EPOCHS` (default 5) epochs of a shuffle and
//! `Trainer::step` over the 55,000 training images (batch 128, momentum
//! 0.9, dropout 0.2, lr 0.01; no evaluation), and prints the median epoch in
//! seconds. The data is found as the binary finds it (`$SIMPLENN_DATA`, else
//! `./data/mnist`, else the source tree's), so a copied build runs from the
//! root of any checkout. `HIDDEN` takes the hidden widths as `--hidden` does
//! (`256`, the default, `1024,1024`, `none`). `OPTIMIZER`: `sgd` (the default, fused),
//! `nesterov`, `adam`, `adamw` (PyTorch's defaults otherwise), or `sgd-wd`
//! (sgd with weight decay 5e-4, which leaves the fused path).

use std::time::Instant;

use simplenn::data::{resolve_dir, Mnist};
use simplenn::model::parse_hidden;
use simplenn::model::{Dims, Init, Params};
use simplenn::optim::{Kind, Optimizer, ADAMW_WEIGHT_DECAY};
use simplenn::train::{parts_for, shuffle_epoch, thread_pool, Regularisers, Trainer};

fn main() {
    if let Err(e) = run() {
        eprintln!("epoch_time: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: epoch_time THREADS [EPOCHS [HIDDEN [sgd|sgd-wd|nesterov|adam|adamw]]]";
    let threads: usize = args.next().ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;
    let epochs: usize = args.next().map_or(Ok(5), |e| e.parse())?;
    let hidden = match args.next() {
        Some(h) => parse_hidden(&h).map_err(|e| anyhow::anyhow!("HIDDEN {h:?}: {e}"))?,
        None => vec![256],
    };
    let sgd = Optimizer::sgd(0.9);
    let optimizer = match args.next().as_deref() {
        None | Some("sgd") => sgd,
        Some("sgd-wd") => Optimizer {
            weight_decay: 5e-4,
            ..sgd
        },
        Some(o) => {
            let kind = Kind::from_name(o).ok_or_else(|| anyhow::anyhow!(usage))?;
            let adam = kind.is_adam();
            Optimizer {
                kind,
                momentum: if adam { 0.0 } else { 0.9 },
                weight_decay: if kind == Kind::Adamw {
                    ADAMW_WEIGHT_DECAY
                } else {
                    0.0
                },
                ..sgd
            }
        }
    };
    anyhow::ensure!(threads >= 1 && epochs >= 1 && args.next().is_none(), usage);
    let data = Mnist::open(&resolve_dir(None)?)?;
    let pool = thread_pool(threads)?;
    // The MNIST shape and the binary's default validation split.
    anyhow::ensure!(
        data.train.pixels() == 784 && data.classes <= 10,
        "it times 784-…-10 networks: it needs 28 × 28 images of at most 10 classes"
    );
    let n_train = data.train.len().saturating_sub(5000);
    anyhow::ensure!(
        n_train >= 128,
        "it holds out 5,000 images for validation and trains on batches of 128: the training file has {}",
        data.train.len()
    );
    let params = Params::init(Dims::mnist(&hidden), Init::He, 1);
    let reg = Regularisers {
        dropout: 0.2,
        ..Regularisers::default()
    };
    let mut trainer = Trainer::with(params, parts_for(threads), optimizer, reg, 1);
    let mut order = vec![0u32; n_train];
    let mut times = Vec::with_capacity(epochs);
    pool.install(|| {
        for e in 0..=epochs {
            // The shuffle is timed, as the trainer's epoch lines time it.
            let start = Instant::now();
            shuffle_epoch(&mut order, 1, e);
            for idx in order.chunks(128) {
                trainer.step(&data.train, idx, 0.01);
            }
            if e > 0 {
                times.push(start.elapsed().as_secs_f64());
            }
        }
    });
    times.sort_by(f64::total_cmp);
    // The median; of an even count, the mean of the middle two.
    let n = times.len();
    println!("{:.4}", (times[(n - 1) / 2] + times[n / 2]) / 2.0);
    Ok(())
}
