//! The training loop: shuffled minibatches → forward/backward → SGD update,
//! one line per epoch, test accuracy at the end.
//!
//! All work runs on one rayon pool of `threads` threads. Large GEMMs and row
//! passes are cut into `parts = min(threads, cores)` pieces: cutting finer
//! than the hardware can run only repacks operands for nothing. Every cut is
//! on an output dimension and every reduction runs in a fixed order, so the
//! weights after a run depend on the seed alone, not on `threads`.

use std::f64::consts::PI;
use std::io::{IsTerminal, Write};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::{self, Checkpoint, RunShape};
use crate::cli::UsageError;
use crate::data::{Dataset, Mnist};
use crate::eval::{Evaluator, Metrics};
use crate::gemm::Beta;
use crate::layers::DropMask;
use crate::metrics::MetricsLog;
use crate::model::{forward_backward, Dims, Init, Params, PassOpts, Workspace};

/// Rows per forward/backward pass. Larger batches are processed in blocks
/// of this many rows whose gradients are summed in block order, so a
/// full-batch run needs no full-batch buffers.
pub const MAX_BLOCK: usize = 512;

/// Learning-rate schedule over the whole run. Its flag values (`cosine`,
/// `constant`) are also its names in checkpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Schedule {
    /// `lr · ½(1 + cos(π t / T))`, stepped every batch, from `lr` down to 0.
    Cosine,
    /// `lr` throughout.
    Constant,
}

impl Schedule {
    /// The flag value: `cosine` or `constant`.
    pub fn name(self) -> &'static str {
        match self {
            Schedule::Cosine => "cosine",
            Schedule::Constant => "constant",
        }
    }

    /// The schedule whose [`Schedule::name`] is `s`.
    pub fn from_name(s: &str) -> Option<Self> {
        [Schedule::Cosine, Schedule::Constant]
            .into_iter()
            .find(|v| v.name() == s)
    }

    /// Learning rate at step `t` of `total`.
    pub fn lr(self, base: f32, t: u64, total: u64) -> f32 {
        match self {
            Schedule::Constant => base,
            Schedule::Cosine => {
                let frac = t as f64 / total.max(1) as f64;
                (base as f64 * 0.5 * (1.0 + (PI * frac).cos())) as f32
            }
        }
    }
}

/// Everything a training run needs, already validated.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub data_dir: PathBuf,
    pub epochs: usize,
    pub batch_size: usize,
    pub hidden: usize,
    pub lr: f32,
    pub momentum: f32,
    pub schedule: Schedule,
    pub dropout: f32,
    pub init: Init,
    pub seed: u64,
    /// Images held out from the end of the training file for validation.
    pub val: usize,
    pub save: Option<PathBuf>,
    /// Size of the one rayon pool (≥ 1).
    pub threads: usize,
    /// Draw progress bars (only ever on a terminal).
    pub progress: bool,
}

/// What one epoch did.
#[derive(Clone, Debug)]
pub struct EpochStats {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val: Option<Metrics>,
    /// Learning rate at the epoch's last step.
    pub lr: f32,
    pub seconds: f64,
    pub samples_per_sec: f64,
}

/// What a whole run did.
pub struct TrainReport {
    pub params: Params,
    pub epochs: Vec<EpochStats>,
    pub test: Metrics,
    /// Wall time of the epochs (training and validation), without the test.
    pub train_seconds: f64,
    /// The run stopped early (`RunOptions::stop_after_steps`): no final model was saved.
    pub stopped: bool,
}

/// Training stopped because the loss or the weights stopped being finite.
#[derive(Debug, thiserror::Error)]
#[error(
    "training diverged at epoch {epoch}, step {step} (mean batch loss {loss:.1}); try a lower --lr (now {lr})"
)]
pub struct Diverged {
    pub epoch: usize,
    pub step: usize,
    pub loss: f64,
    pub lr: f32,
}

/// Parts to cut parallel work into on a pool of `threads` threads.
pub fn parts_for(threads: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    threads.clamp(1, cores)
}

/// A batch whose mean loss exceeds this (nats) has diverged: a uniform guess
/// scores ln 10 ≈ 2.3, and no working run gets anywhere near 100.
pub const DIVERGED_LOSS: f64 = 100.0;

/// Set by the first Ctrl-C (see [`install_interrupt_handler`]); the training
/// loop checks it between steps.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Make Ctrl-C (SIGINT) stop training cleanly: the first finishes the
/// current step, writes a checkpoint when the run has somewhere to put one,
/// and exits 130; a second exits at once.
pub fn install_interrupt_handler() -> Result<()> {
    ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("simplenn: interrupted: finishing this step and saving a checkpoint; Ctrl-C again quits at once");
    })
    .context("cannot install the Ctrl-C handler")
}

/// Training was stopped by Ctrl-C (exit status 130).
#[derive(Debug, thiserror::Error)]
#[error("interrupted after step {step} (epoch {epoch}); {saved}")]
pub struct Interrupted {
    pub epoch: usize,
    pub step: u64,
    /// Where the checkpoint went, and how to continue; or that none was written.
    pub saved: String,
}

/// Parameters, momentum and buffers for training steps, allocated once.
/// [`Trainer::step`] allocates nothing. There is no gradient buffer: each
/// step folds its gradient straight into the momentum buffer.
pub struct Trainer {
    pub params: Params,
    /// The momentum buffer `v` (PyTorch's `momentum_buffer`).
    pub velocity: Params,
    ws: Workspace,
    parts: usize,
    momentum: f32,
    dropout: f32,
    seed: u64,
    /// Steps taken so far: the dropout mask's counter.
    pub steps: u64,
}

/// Loss and hits summed over one step's batch.
#[derive(Clone, Copy, Debug, Default)]
pub struct StepResult {
    pub loss_sum: f64,
    pub correct: usize,
}

impl Trainer {
    /// `parts`: see [`parts_for`]; call [`Trainer::step`] inside the pool.
    pub fn new(params: Params, parts: usize, momentum: f32, dropout: f32, seed: u64) -> Self {
        let dims = params.dims;
        Trainer {
            velocity: Params::zeros(dims),
            ws: Workspace::new(dims, MAX_BLOCK),
            params,
            parts,
            momentum,
            dropout,
            seed,
            steps: 0,
        }
    }

    /// One SGD step on the images `idx` of `data`: gather, forward, loss,
    /// backward (block by block), update with learning rate `lr`.
    pub fn step(&mut self, data: &Dataset, idx: &[u32], lr: f32) -> StepResult {
        let inv_batch = 1.0 / idx.len() as f32;
        let mask = DropMask::new(self.seed, self.steps);
        let blocks = idx.len().div_ceil(MAX_BLOCK);
        let mut res = StepResult::default();
        for (blk, ids) in idx.chunks(MAX_BLOCK).enumerate() {
            let n = ids.len();
            let opts = PassOpts {
                inv_batch,
                dropout: (self.dropout > 0.0).then(|| (self.dropout, mask.offset(blk * MAX_BLOCK))),
                // v ← μ·v + g on the first block, v += g on the others ...
                beta: if blk == 0 {
                    Beta::Scale(self.momentum)
                } else {
                    Beta::Accumulate
                },
                // ... and w ← w − lr·v once the whole batch is in.
                lr: (blk + 1 == blocks).then_some(lr),
                parts: self.parts,
            };
            let load =
                |rows: Range<usize>, x: &mut [f32], y: &mut [u8]| data.gather(&ids[rows], x, y);
            forward_backward(
                &mut self.params,
                &mut self.ws,
                n,
                &load,
                &mut self.velocity,
                opts,
            );
            res.loss_sum += self.ws.loss[..n].iter().map(|&l| l as f64).sum::<f64>();
            res.correct += self.ws.hit[..n].iter().map(|&c| c as usize).sum::<usize>();
        }
        self.steps += 1;
        res
    }
}

/// The permutation of `0..n` for `epoch`: a ChaCha8 stream chosen by
/// `(seed, epoch)`, so any epoch can be replayed without the ones before it.
pub fn shuffle_epoch(order: &mut [u32], seed: u64, epoch: usize) {
    for (i, v) in order.iter_mut().enumerate() {
        *v = i as u32;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5348_5546_464c_4521);
    rng.set_stream(epoch as u64);
    order.shuffle(&mut rng);
}

/// The optional parts of a run: where it starts, what it writes on the way,
/// where it stops. `RunOptions::default()` is a plain run.
#[derive(Default)]
pub struct RunOptions {
    /// Continue from this checkpoint; its shape must be the run's (else a usage error).
    pub resume: Option<Checkpoint>,
    /// Where checkpoints go; `None` writes none.
    pub checkpoint: Option<PathBuf>,
    /// Write a checkpoint every this many epochs (and after the last one).
    pub checkpoint_every: Option<usize>,
    /// Stop, as if interrupted, once this many steps are done, writing a
    /// checkpoint (when `checkpoint` is set) and not the final model.
    pub stop_after_steps: Option<u64>,
    /// Rewrite this JSON-lines file (one record per epoch) after every epoch.
    pub metrics: Option<PathBuf>,
    /// Where a Ctrl-C writes its checkpoint when `checkpoint` is `None`
    /// (`None` here too: an interrupted run writes nothing).
    pub interrupt_checkpoint: Option<PathBuf>,
}

/// The one worker pool of a run: `threads` threads, named for profilers.
pub fn thread_pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("simplenn-{i}"))
        .build()
        .context("cannot start the thread pool")
}

/// Train on `mnist` as `cfg` says, writing one line per epoch to `out`.
pub fn train(
    cfg: &TrainConfig,
    mnist: &Mnist,
    out: &mut (dyn Write + Send),
) -> Result<TrainReport> {
    train_with(cfg, mnist, RunOptions::default(), out)
}

/// [`train`] with resuming, checkpoints, a metrics log or an early stop.
pub fn train_with(
    cfg: &TrainConfig,
    mnist: &Mnist,
    opts: RunOptions,
    out: &mut (dyn Write + Send),
) -> Result<TrainReport> {
    let pool = thread_pool(cfg.threads)?;
    pool.install(|| train_in_pool(cfg, mnist, opts, out))
}

fn train_in_pool(
    cfg: &TrainConfig,
    mnist: &Mnist,
    mut opts: RunOptions,
    out: &mut (dyn Write + Send),
) -> Result<TrainReport> {
    let n_train = mnist.train.len() - cfg.val;
    let dims = Dims::mnist(cfg.hidden);
    let parts = parts_for(cfg.threads);
    // The run's shape (flags + data hash) is needed only to write or check checkpoints.
    let shape = (opts.resume.is_some() || opts.checkpoint.is_some())
        .then(|| RunShape::of(cfg, &mnist.train));
    if let Some(path) = &opts.checkpoint {
        checkpoint::check_dir(path)?;
    }
    let resume = opts.resume.take();
    if let (Some(c), Some(shape)) = (&resume, &shape) {
        let diff = c.shape.differences(shape);
        if !diff.is_empty() {
            return Err(UsageError(format!(
                "cannot resume: this run differs from the checkpoint's (checkpoint vs now: {}); resume with the checkpoint's flags and data, or start a new run",
                diff.join(", ")
            ))
            .into());
        }
    }
    let (params, start_steps) = match &resume {
        Some(c) => (c.params.clone(), c.steps),
        None => (Params::init(dims, cfg.init, cfg.seed), 0),
    };
    let mut trainer = Trainer::new(params, parts, cfg.momentum, cfg.dropout, cfg.seed);
    if let Some(c) = resume {
        trainer.velocity = c.velocity;
        trainer.steps = c.steps;
    }
    let mut log = match &opts.metrics {
        Some(path) => Some(MetricsLog::open(
            path,
            (start_steps / n_train.div_ceil(cfg.batch_size) as u64) as usize,
            start_steps > 0,
        )?),
        None => None,
    };
    let mut evaluator = Evaluator::new(&trainer.params, parts);
    let mut order: Vec<u32> = vec![0; n_train];
    let steps_per_epoch = n_train.div_ceil(cfg.batch_size) as u64;
    let total_steps = steps_per_epoch * cfg.epochs as u64;
    let show = cfg.progress && std::io::stderr().is_terminal();

    writeln!(
        out,
        "data: {} train / {} val / {} test images from {}",
        n_train,
        cfg.val,
        mnist.test.len(),
        mnist.dir.display()
    )?;
    writeln!(
        out,
        "model: 784-{}-10; batch {}, {} epochs, lr {} {}, momentum {}, dropout {}, seed {}",
        cfg.hidden,
        cfg.batch_size,
        cfg.epochs,
        cfg.lr,
        cfg.schedule.name(),
        cfg.momentum,
        cfg.dropout,
        cfg.seed
    )?;
    writeln!(
        out,
        "threads: {} (one rayon pool), work cut into {} parts (min of threads and cores), gemm: matrixmultiply single-threaded per part",
        cfg.threads, parts
    )?;

    let first_epoch = (start_steps / steps_per_epoch) as usize + 1;
    if start_steps > 0 {
        writeln!(
            out,
            "resuming at epoch {first_epoch}, step {start_steps} of {total_steps}"
        )?;
    }
    let stop_at = opts.stop_after_steps.unwrap_or(u64::MAX);
    let mut stopped = false;

    let run_start = Instant::now();
    let mut epochs = Vec::with_capacity(cfg.epochs);
    for epoch in first_epoch..=cfg.epochs {
        let t0 = Instant::now();
        shuffle_epoch(&mut order, cfg.seed, epoch);
        let bar = progress_bar(show, steps_per_epoch, epoch, cfg.epochs);
        let (mut loss_sum, mut correct, mut seen) = (0f64, 0usize, 0usize);
        let mut lr = cfg.lr;
        // A checkpoint taken inside an epoch resumes at its next batch.
        let skip = (trainer.steps - (epoch as u64 - 1) * steps_per_epoch) as usize;
        for (step, idx) in order.chunks(cfg.batch_size).enumerate().skip(skip) {
            if trainer.steps >= stop_at || INTERRUPTED.load(Ordering::Relaxed) {
                stopped = true;
                break;
            }
            lr = cfg.schedule.lr(cfg.lr, trainer.steps, total_steps);
            let r = trainer.step(&mnist.train, idx, lr);
            let mean = r.loss_sum / idx.len() as f64;
            if !mean.is_finite() || mean > DIVERGED_LOSS {
                bar.finish_and_clear();
                return Err(Diverged {
                    epoch,
                    step: step + 1,
                    loss: mean,
                    lr: cfg.lr,
                }
                .into());
            }
            loss_sum += r.loss_sum;
            correct += r.correct;
            seen += idx.len();
            if show && step % 16 == 15 {
                bar.set_position(step as u64 + 1);
                bar.set_message(format!(
                    "loss {:.4} · {:.0} samples/s",
                    loss_sum / seen as f64,
                    seen as f64 / t0.elapsed().as_secs_f64()
                ));
            }
        }
        let train_secs = t0.elapsed().as_secs_f64();
        bar.finish_and_clear();
        // The loss check sees bad weights only at the next step; the epoch's
        // last update must not reach a checkpoint or the model file unchecked.
        if let Some(i) = trainer.params.data.iter().position(|w| !w.is_finite()) {
            return Err(Diverged {
                epoch,
                step: order.len().div_ceil(cfg.batch_size),
                loss: f64::NAN,
                lr: cfg.lr,
            })
            .with_context(|| format!("parameter {i} is {}", trainer.params.data[i]));
        }
        if seen == 0 {
            break; // stopped before this epoch's first step
        }
        let partial = stopped; // stopped inside the epoch: not a whole epoch's record
        let val = (cfg.val > 0)
            .then(|| evaluator.evaluate(&trainer.params, &mnist.train, n_train..mnist.train.len()));
        let stats = EpochStats {
            epoch,
            train_loss: loss_sum / seen as f64,
            train_accuracy: correct as f64 / seen as f64,
            val,
            lr,
            seconds: t0.elapsed().as_secs_f64(),
            samples_per_sec: seen as f64 / train_secs,
        };
        writeln!(out, "{}", epoch_line(&stats, cfg.epochs))?;
        if let (Some(log), false) = (&mut log, partial) {
            log.push(&stats)?;
        }
        let every = opts
            .checkpoint_every
            .is_some_and(|n| epoch % n == 0 || epoch == cfg.epochs);
        epochs.push(stats);
        if stopped || trainer.steps >= stop_at {
            stopped = true;
            break;
        }
        if let (true, Some(path), Some(shape)) = (every, &opts.checkpoint, &shape) {
            checkpoint::save_checkpoint(
                path,
                &trainer.params,
                &trainer.velocity,
                shape,
                trainer.steps,
            )?;
            writeln!(
                out,
                "checkpoint (epoch {epoch}, step {}) saved to {}",
                trainer.steps,
                path.display()
            )?;
        }
    }
    if stopped && INTERRUPTED.load(Ordering::Relaxed) {
        let epoch = (trainer.steps / steps_per_epoch) as usize;
        let saved = match opts
            .checkpoint
            .as_ref()
            .or(opts.interrupt_checkpoint.as_ref())
        {
            Some(path) => {
                let shape = shape.unwrap_or_else(|| RunShape::of(cfg, &mnist.train));
                checkpoint::save_checkpoint(
                    path,
                    &trainer.params,
                    &trainer.velocity,
                    &shape,
                    trainer.steps,
                )?;
                format!(
                    "checkpoint saved to {}; continue with --resume {}",
                    path.display(),
                    path.display()
                )
            }
            None => {
                "no checkpoint written (neither --save nor --checkpoint-every was set)".to_string()
            }
        };
        return Err(Interrupted {
            epoch,
            step: trainer.steps,
            saved,
        }
        .into());
    }
    if stopped {
        let epoch = trainer.steps / steps_per_epoch;
        match (&opts.checkpoint, &shape) {
            (Some(path), Some(shape)) => {
                checkpoint::save_checkpoint(path, &trainer.params, &trainer.velocity, shape, trainer.steps)?;
                writeln!(
                    out,
                    "stopped after step {} of {total_steps} (epoch {epoch} done); checkpoint saved to {}; continue with --resume {}",
                    trainer.steps,
                    path.display(),
                    path.display()
                )?;
            }
            _ => writeln!(out, "stopped after step {} of {total_steps} (epoch {epoch} done); no checkpoint written", trainer.steps)?,
        }
    }
    let train_seconds = run_start.elapsed().as_secs_f64();
    let test = evaluator.evaluate(&trainer.params, &mnist.test, 0..mnist.test.len());
    writeln!(
        out,
        "test accuracy {:.2}% ({} / {}), test loss {:.4}; trained in {:.1} s",
        100.0 * test.accuracy(),
        test.correct,
        test.n,
        test.loss,
        train_seconds
    )?;
    if let (Some(path), false) = (&cfg.save, stopped) {
        checkpoint::save_model(path, &trainer.params)?;
        writeln!(out, "model saved to {}", path.display())?;
    }
    Ok(TrainReport {
        params: trainer.params,
        epochs,
        test,
        train_seconds,
        stopped,
    })
}

/// The plain per-epoch line.
pub fn epoch_line(s: &EpochStats, epochs: usize) -> String {
    let width = epochs.to_string().len();
    let val = match &s.val {
        Some(m) => format!(
            "val acc {:6.2}%  val loss {:.4}",
            100.0 * m.accuracy(),
            m.loss
        ),
        None => "val -".to_string(),
    };
    format!(
        "epoch {:>width$}/{epochs}  train loss {:.4}  train acc {:6.2}%  {val}  lr {:.4}  {:.2} s  {:.0} samples/s",
        s.epoch,
        s.train_loss,
        100.0 * s.train_accuracy,
        s.lr,
        s.seconds,
        s.samples_per_sec,
    )
}

fn progress_bar(show: bool, len: u64, epoch: usize, epochs: usize) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} batches  {msg}")
            .expect("template is valid")
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("epoch {epoch}/{epochs}"));
    bar
}
