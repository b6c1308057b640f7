//! The training loop: shuffled minibatches → forward/backward → update,
//! one line per epoch, test accuracy at the end.
//!
//! All work runs on one rayon pool of `min(threads, cores)` threads (a pool
//! of 8 on 2 cores was measured slower than one of 2). Large GEMMs and row passes are
//! cut into `parts = min(threads, cores)` pieces: cutting finer than the
//! hardware can run only repacks operands for nothing. Every cut is
//! on an output dimension and every reduction runs in a fixed order, so the
//! weights after a run depend on the seed alone, not on `threads`.

use std::io::{IsTerminal, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::atomic;
use crate::augment::{Augment, Augmenter};
use crate::checkpoint::{self, Checkpoint, EpochSoFar, Reach, RunShape};
use crate::config::{DropoutMask, Milestones, TrainConfig};
use crate::data::{Dataset, Mnist};
use crate::error::UsageError;
use crate::eval::{Evaluator, Metrics};
use crate::gemm::Beta;
use crate::layers::DropMask;
use crate::metrics::{EpochStats, MetricsLog};
use crate::model::{forward_backward, Dims, Params, PassOpts, Workspace};
use crate::modelfile;
use crate::optim::{self, Optimizer};
use crate::show;
use crate::signals::{self, INTERRUPTED};
use crate::thin::Thinned;

/// Rows per forward/backward pass. Larger batches are processed in blocks
/// of this many rows whose gradients are summed in block order, so a
/// full-batch run needs no full-batch buffers.
pub const MAX_BLOCK: usize = 512;

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

/// [`Diverged::measured`] for a batch's own loss.
pub const BATCH_LOSS: &str = "mean batch loss";

/// [`Diverged::measured`] for weights past what a model file may hold
/// ([`crate::modelfile::past_output_limit`]); the `loss` is then the bound
/// on the outputs.
pub const OUTPUT_BOUND: &str = "bound on the outputs";

/// [`Diverged::measured`] for finite weights beside an optimiser state
/// that is not (the error's context names the entry); no `loss`.
pub const OPTIMISER_STATE: &str = "optimiser state";

/// Training stopped because the loss or the weights stopped being finite,
/// or the loss grew past [`DIVERGED_LOSS`].
#[derive(Debug, thiserror::Error)]
#[error(
    "training diverged at step {step} of epoch {epoch} ({}); {}",
    match *measured {
        BATCH_LOSS => format!("{BATCH_LOSS} {}", loss_words(*loss)),
        OUTPUT_BOUND => format!(
            "finite weights, but they could make outputs up to {}, past the {:e} a model file may hold",
            crate::modelfile::bound_words(*loss),
            crate::modelfile::MAX_OUTPUT
        ),
        OPTIMISER_STATE => "finite weights, but an optimiser state that is not, which no checkpoint may hold".to_string(),
        on => format!("mean loss {} {on} after that step", loss_words(*loss)),
    },
    self.advice()
)]
pub struct Diverged {
    pub epoch: usize,
    pub step: usize,
    pub loss: f64,
    /// What `loss` is: [`BATCH_LOSS`] (the batch's, before its update), or
    /// the images the weights after `step` were scored on (`on the first
    /// 256 training images`).
    pub measured: &'static str,
    pub lr: f32,
    /// The weight decay (0 for adam: its L2 term does not shrink the
    /// weights by a set factor).
    pub weight_decay: f32,
    /// What the weight decay alone scales the weights by in a step,
    /// [`crate::optim::decay_factor`]: 0 or less overshoots.
    pub decay_factor: f64,
    /// Adam's `(β1, β2)` where `β1² ≥ β2`: its step `m̂/√v̂` then has no
    /// bound, whatever the learning rate (by Cauchy–Schwarz, `|m|/√v` is
    /// bounded by a sum of `(β1²/β2)^k`, which then diverges).
    pub unbounded_betas: Option<(f32, f32)>,
    /// Adam's (coupled) weight decay, where it is not 0: it adds
    /// `decay · w` to each gradient, whose square `exp_avg_sq` keeps.
    pub adam_l2: Option<f32>,
    /// The checkpoint the run resumed from, if it did (set by the caller,
    /// which knows its path).
    pub resumed: Option<PathBuf>,
}

/// A diverged loss as a line says it: `412.7`, or `3.10e37` past a
/// million, not its 38 digits.
fn loss_words(loss: f64) -> String {
    match loss.abs() < 1e6 || !loss.is_finite() {
        true => format!("{loss:.1}"),
        false => format!("{loss:.2e}"),
    }
}

/// The weight decay where it shrinks the weights by a set factor a step
/// (sgd, nesterov, adamw); 0 for adam, whose L2 term passes through its
/// normalisation.
fn shrinking_decay(cfg: &TrainConfig) -> f32 {
    match cfg.optimizer {
        crate::optim::Kind::Adam => 0.0,
        _ => cfg.weight_decay,
    }
}

impl Diverged {
    /// The run `cfg` diverged at `step` of `epoch`, `measured` at `loss`.
    pub fn new(
        cfg: &TrainConfig,
        epoch: usize,
        step: usize,
        measured: &'static str,
        loss: f64,
    ) -> Self {
        use crate::optim::Kind;
        let adam = matches!(cfg.optimizer, Kind::Adam | Kind::Adamw);
        Diverged {
            epoch,
            step,
            loss,
            measured,
            lr: cfg.lr,
            weight_decay: shrinking_decay(cfg),
            decay_factor: crate::optim::decay_factor(
                cfg.optimizer,
                cfg.lr,
                cfg.weight_decay,
                cfg.momentum,
            ),
            unbounded_betas: (adam && cfg.beta1 * cfg.beta1 >= cfg.beta2)
                .then_some((cfg.beta1, cfg.beta2)),
            adam_l2: (cfg.optimizer == Kind::Adam && cfg.weight_decay > 0.0)
                .then_some(cfg.weight_decay),
            resumed: None,
        }
    }

    /// The flag to turn down: the learning rate, and the weight decay too
    /// where each step's decay alone ([`Self::decay_factor`]) overshoots, or
    /// Adam's β2 where it leaves the steps unbounded. A resumed run keeps
    /// its checkpoint's flags, so its advice is for a new run.
    fn advice(&self) -> String {
        let lr = crate::show::number(self.lr);
        let flags = if let Some((b1, b2)) = self.unbounded_betas {
            let (b1, b2) = (crate::show::number(b1), crate::show::number(b2));
            format!("a --beta2 above --beta1² (now {b2}, with --beta1 {b1}: Adam's steps then have no bound), or a lower --lr (now {lr})")
        } else if let (OPTIMISER_STATE, Some(wd)) = (self.measured, self.adam_l2) {
            let wd = crate::show::number(wd);
            format!("a lower --weight-decay (now {wd}: adam adds it times each weight to the gradient, whose square overflowed), or adamw's decoupled decay")
        } else if self.decay_factor <= 0.0 {
            let wd = crate::show::number(self.weight_decay);
            format!("a lower --weight-decay (now {wd}: with --lr {lr} each step's decay alone overshoots zero) or --lr")
        } else {
            format!("a lower --lr (now {lr})")
        };
        match &self.resumed {
            None => format!("try {flags}"),
            Some(from) => format!(
                "the run resumed from {} keeps that checkpoint's flags, so try {flags} in a new run, without --resume",
                from.display()
            ),
        }
    }
}

/// Parts to cut parallel work into, and threads in the pool, for
/// `--threads threads`: `min(threads, cores)`.
pub fn parts_for(threads: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    threads.clamp(1, cores)
}

/// A batch whose mean loss exceeds this (nats) has diverged: a uniform guess
/// scores ln 10 ≈ 2.3, and no working run gets anywhere near 100.
pub const DIVERGED_LOSS: f64 = 100.0;

/// `path` from the root: what a checkpoint records of the run's outputs,
/// for a run resumed from another directory (none where the current
/// directory cannot be read).
fn absolute(path: &Path) -> Option<PathBuf> {
    std::path::absolute(path).ok()
}

/// Training images the last update before a write is checked on.
const CHECK_IMAGES: usize = 256;

/// A mean loss that says the run has diverged: above [`DIVERGED_LOSS`], or
/// not a number at all.
fn diverged(loss: f64) -> bool {
    loss.is_nan() || loss > DIVERGED_LOSS
}

/// Training was stopped by Ctrl-C (exit status 130), SIGTERM (143) or
/// SIGHUP (129).
#[derive(Debug, thiserror::Error)]
#[error("{} after step {step} ({} done); {saved}", signals::words(*signal).1, crate::metrics::epochs(*epoch))]
pub struct Interrupted {
    pub epoch: usize,
    pub step: u64,
    /// Where the checkpoint went, and how to continue; or that none was written.
    pub saved: String,
    /// The signal that stopped the run: [`signals::SIGINT`],
    /// [`signals::SIGTERM`] or [`signals::SIGHUP`].
    pub signal: i32,
}

/// Parameters, optimiser state and buffers for training steps, allocated
/// once. [`Trainer::step`] allocates nothing once warm (its first call sizes
/// each pool thread's GEMM packing buffer, [`crate::gemm::reserve_packing`]). Plain SGD (no weight decay)
/// has no gradient buffer: each step folds its gradient straight into the
/// momentum buffer. Every other optimiser, and any optimiser training the
/// thinned network of one hidden dropout mask per batch
/// ([`Regularisers::thins`]), writes the gradient into its own slab (the
/// thinned network's scattered into it), then runs [`optim::update`] over it.
pub struct Trainer {
    pub params: Params,
    /// The momentum buffer `v` (PyTorch's `momentum_buffer`) for sgd and
    /// nesterov; Adam's first moment `exp_avg` for adam and adamw.
    pub velocity: Params,
    /// Adam's second moment `exp_avg_sq` (adam and adamw only).
    pub exp_avg_sq: Option<Params>,
    /// The batch's gradient (every optimiser but fused plain SGD).
    grad: Option<Params>,
    ws: Workspace,
    parts: usize,
    optimizer: Optimizer,
    reg: Regularisers,
    /// Max-norm's per-column scratch, `n_1` floats.
    norms: Vec<f32>,
    seed: u64,
    /// Steps taken so far: the dropout mask's counter and Adam's `t − 1`.
    pub steps: u64,
    /// Distorts each training image as it is gathered (see [`Trainer::set_augment`]).
    augment: Option<Augmenter>,
    /// The thinned network of batchwise hidden dropout, when that is on.
    thin: Option<Thinned>,
    /// Whether the pool's threads have had their packing buffers sized
    /// ([`crate::gemm::reserve_packing`]), done by the first step.
    packing_reserved: bool,
    /// The epoch being trained: with the seed and the image index, what
    /// chooses each image's distortion.
    pub epoch: usize,
}

/// The regularisers a trainer applies besides weight decay.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Regularisers {
    /// Dropout probability on every hidden layer.
    pub dropout: f32,
    /// Dropout probability on the inputs.
    pub input_dropout: f32,
    /// Max-norm bound on each unit's incoming weight vector.
    pub max_norm: Option<f32>,
    /// One dropout mask per batch instead of per image (`--dropout-mask
    /// batch`); with hidden dropout, each step then trains the thinned
    /// network ([`crate::thin`]).
    pub per_batch: bool,
}

impl Regularisers {
    /// Those of a run's flags.
    pub fn of(cfg: &TrainConfig) -> Self {
        Regularisers {
            dropout: cfg.dropout,
            input_dropout: cfg.input_dropout,
            max_norm: cfg.max_norm,
            per_batch: cfg.dropout_mask == DropoutMask::Batch,
        }
    }

    /// Whether a trainer of `dims` with these regularisers trains the
    /// thinned network of batchwise hidden dropout ([`crate::thin`]): one
    /// mask per batch, hidden dropout, and a hidden layer to thin.
    pub fn thins(&self, dims: &Dims) -> bool {
        self.per_batch && self.dropout > 0.0 && !dims.hidden().is_empty()
    }
}

/// Loss and hits summed over one step's batch.
#[derive(Clone, Copy, Debug, Default)]
pub struct StepResult {
    pub loss_sum: f64,
    pub correct: usize,
}

impl Trainer {
    /// SGD with momentum `μ` and hidden dropout: the default trainer.
    /// `parts`: see [`parts_for`]; call [`Trainer::step`] inside the pool.
    pub fn new(params: Params, parts: usize, momentum: f32, dropout: f32, seed: u64) -> Self {
        let reg = Regularisers {
            dropout,
            ..Regularisers::default()
        };
        Self::with(params, parts, Optimizer::sgd(momentum), reg, seed)
    }

    /// A trainer with any optimiser and regularisers, for batches of any size.
    pub fn with(
        params: Params,
        parts: usize,
        optimizer: Optimizer,
        reg: Regularisers,
        seed: u64,
    ) -> Self {
        Self::for_batch(params, parts, optimizer, reg, seed, MAX_BLOCK)
    }

    /// [`Trainer::with`], for steps of at most `batch` images: its buffers
    /// hold [`block_rows`]`(batch)` rows, not [`MAX_BLOCK`] (a run of a few
    /// images of millions of pixels need not hold 512 of them). The steps
    /// are the same as [`Trainer::with`]'s, bit for bit.
    pub fn for_batch(
        params: Params,
        parts: usize,
        optimizer: Optimizer,
        reg: Regularisers,
        seed: u64,
        batch: usize,
    ) -> Self {
        let dims = params.dims.clone();
        let adam = optimizer.kind.is_adam();
        // Batchwise hidden dropout trains a thinned network whose gradient
        // is scattered into a gradient slab: never the fused SGD path.
        let thin = reg.thins(&dims);
        Trainer {
            ws: Workspace::new(&dims, block_rows(batch)),
            velocity: Params::zeros(dims.clone()),
            exp_avg_sq: adam.then(|| Params::zeros(dims.clone())),
            grad: (!optimizer.fused() || thin).then(|| Params::zeros(dims.clone())),
            thin: thin.then(|| Thinned::new(&dims)),
            packing_reserved: false,
            norms: vec![0.0; reg.max_norm.map_or(0, |_| dims.layer(0).1)],
            params,
            parts,
            optimizer,
            reg,
            seed,
            steps: 0,
            augment: None,
            epoch: 1,
        }
    }

    /// Distort every image gathered from now on (call inside the pool that
    /// runs the steps: it sizes each pool thread's scratch once, here).
    pub fn set_augment(&mut self, augment: Option<Augmenter>) {
        if let Some(a) = &augment {
            a.warm();
        }
        self.augment = augment;
    }

    /// One step on the images `idx` of `data`: gather (and distort),
    /// forward, loss, backward (block by block), update with learning rate
    /// `lr`, then the max-norm constraint.
    pub fn step(&mut self, data: &Dataset, idx: &[u32], lr: f32) -> StepResult {
        assert!(
            idx.len() <= self.ws.cap || self.ws.cap == MAX_BLOCK,
            "a step of {} images on a trainer made for batches of {}",
            idx.len(),
            self.ws.cap
        );
        let inv_batch = 1.0 / idx.len() as f32;
        let mut mask = DropMask::new(self.seed, self.steps);
        if self.reg.per_batch {
            mask = mask.per_batch();
        }
        let blocks = idx.len().div_ceil(MAX_BLOCK);
        let fused = self.grad.is_none();
        let (p, p_in) = (self.reg.dropout, self.reg.input_dropout);
        if !self.packing_reserved {
            // Size every pool thread's packing buffer for the largest
            // product once: which thread runs which product varies with work
            // stealing, and the thinned network's shapes change every step.
            rayon::broadcast(|_| crate::gemm::reserve_packing());
            self.packing_reserved = true;
        }
        // Batchwise hidden dropout: the step trains the thinned network
        // (unless a layer lost every unit: then the full one, same mask).
        let mut thin = self
            .thin
            .as_mut()
            .and_then(|t| t.draw(mask, p).then_some(t));
        if let Some(t) = &mut thin {
            t.gather(&self.params, p);
        }
        let mut res = StepResult::default();
        for (blk, ids) in idx.chunks(MAX_BLOCK).enumerate() {
            let n = ids.len();
            let row0 = blk * MAX_BLOCK;
            let opts = PassOpts {
                inv_batch,
                dropout: (p > 0.0 && thin.is_none()).then(|| (p, mask.offset(row0))),
                input_dropout: (p_in > 0.0).then(|| (p_in, mask.input().offset(row0))),
                // Fused SGD: v ← μ·v + g on the first block, v += g on the
                // others; otherwise g itself, summed over the blocks ...
                beta: match (blk, fused) {
                    (0, true) => Beta::Scale(self.optimizer.momentum),
                    (0, false) => Beta::Overwrite,
                    _ => Beta::Accumulate,
                },
                // ... and (fused) w ← w − lr·v once the whole batch is in.
                lr: (fused && blk + 1 == blocks).then_some(lr),
                parts: self.parts,
                pass1: None,
            };
            let (augment, epoch) = (&self.augment, self.epoch);
            let load = |rows: Range<usize>, x: &mut [f32], y: &mut [u8]| match augment {
                None => data.gather(&ids[rows], x, y),
                Some(a) => a.gather(data, &ids[rows], epoch, x, y),
            };
            match &mut thin {
                Some(t) => {
                    forward_backward(&mut t.params, &mut self.ws, n, &load, &mut t.grads, opts)
                }
                None => {
                    let target = self.grad.as_mut().unwrap_or(&mut self.velocity);
                    forward_backward(&mut self.params, &mut self.ws, n, &load, target, opts)
                }
            }
            res.loss_sum += self.ws.loss[..n].iter().map(|&l| l as f64).sum::<f64>();
            res.correct += self.ws.hit[..n].iter().map(|&c| c as usize).sum::<usize>();
        }
        self.steps += 1;
        if let (Some(t), Some(g)) = (&thin, &mut self.grad) {
            t.scatter(g, p);
        }
        if let Some(g) = &self.grad {
            optim::update(
                &self.optimizer,
                &mut self.params,
                g,
                &mut self.velocity,
                self.exp_avg_sq.as_mut(),
                lr,
                self.steps,
                self.parts,
            );
        }
        if let Some(c) = self.reg.max_norm {
            optim::max_norm(&mut self.params, c, &mut self.norms, self.parts);
        }
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
    /// Evaluate the test set after every epoch too (a report only: it
    /// changes no weight), and say when it first reached each milestone.
    pub test_every_epoch: bool,
    /// `--milestones` (no weight depends on them).
    pub milestones: Milestones,
    /// `train --serve`: the snapshot the page reads; the loop copies its
    /// weights in every few dozen steps (see [`crate::live`]).
    pub live: Option<std::sync::Arc<crate::live::Live>>,
    /// `--class-names`, or the resumed checkpoint's: saved with the model
    /// and in checkpoints; no weight depends on them.
    pub class_names: Option<crate::classes::ClassNames>,
    /// A line to print first, once every check has passed (what a resumed
    /// run kept of the stopped one's habits): not before a refusal.
    pub resume_note: Option<String>,
}

/// Each pool thread's stack.
const POOL_STACK_BYTES: usize = 2 << 20;

/// The one worker pool of a run: [`parts_for`]`(threads)` threads (one per
/// part; no more than the cores), named for profilers. On 2 cores a pool of
/// 8, with the work still in 2 parts, took 0.29–0.335 s a default epoch
/// against 0.27–0.30 s with a pool of 2 (AMD EPYC, alternated runs; why was
/// not measured).
///
/// Each thread allocates once before this returns: the C library then
/// gives it its own malloc arena (64 MiB of address space, under `ulimit
/// -v`), so the memory estimates made inside the pool
/// ([`crate::atomic::available_memory`]) see every arena, not only those
/// of the threads that happened to have started work.
pub fn thread_pool(threads: usize) -> Result<rayon::ThreadPool> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(parts_for(threads))
        .thread_name(|i| format!("simplenn-{i}"))
        // std's usual 2 MiB, set here so that `RUST_MIN_STACK`, which
        // rayon would otherwise take, cannot shrink it to an overflow.
        .stack_size(POOL_STACK_BYTES)
        .build()
        .map_err(|e| {
            // rayon's error shows its cause and also gives it as its
            // source: keep the cause once, as an io::Error (whose errno
            // says which limit was reached).
            let os = std::error::Error::source(&e)
                .and_then(|s| s.downcast_ref::<std::io::Error>())
                .and_then(std::io::Error::raw_os_error);
            match os {
                Some(os) => anyhow::Error::new(std::io::Error::from_raw_os_error(os)),
                None => anyhow::anyhow!("{e}"),
            }
            .context("cannot start the thread pool")
        })?;
    pool.broadcast(|_| drop(std::hint::black_box(Box::new(0u8))));
    Ok(pool)
}

/// A note naming the classes of `0..k` that none of the first `n_train`
/// images of `train` (the training split) has, which the model cannot
/// learn to predict: class 0 of labels numbered from 1, or a `--classes`
/// above the labels. `None` when every class has an image.
pub fn unseen_classes(train: &crate::data::Dataset, n_train: usize, k: usize) -> Option<String> {
    let mut seen = vec![false; k];
    for i in 0..n_train {
        if let Some(s) = seen.get_mut(usize::from(train.label(i))) {
            *s = true;
        }
    }
    let unseen: Vec<usize> = (0..k).filter(|&c| !seen[c]).collect();
    const SHOWN: usize = 8;
    let mut list: Vec<String> = unseen.iter().take(SHOWN).map(|c| c.to_string()).collect();
    if unseen.len() > SHOWN {
        list.push("…".into());
    }
    match unseen.len() {
        0 => None,
        1 => Some(format!(
            "note: class {} of the {k} has no training images; the model cannot learn it",
            unseen[0]
        )),
        n => Some(format!(
            "note: {n} of the {k} classes have no training images ({}); the model cannot learn them",
            list.join(", ")
        )),
    }
}

/// Rows of a step's buffers for batches of `batch` images: larger batches
/// are taken [`MAX_BLOCK`] rows at a time.
pub fn block_rows(batch: usize) -> usize {
    batch.clamp(1, MAX_BLOCK)
}

/// Bytes a run of `dims` holds at its peak with plain SGD: the parameters
/// and the momentum buffer, three slabs for the file-layout copies made
/// when initialising or saving (a checkpoint's file holds two), and the
/// buffers of steps of `batch` images and of evaluations of at most
/// `scored` images at a time ([`Evaluator::for_ranges_of`]). Other
/// optimisers add [`Optimizer::extra_slabs`]` − 1` slabs of the parameters'
/// size.
pub fn training_bytes(dims: &Dims, parts: usize, batch: usize, scored: usize) -> u64 {
    let params = 4 * dims.param_count() as u64;
    5 * params
        + Workspace::bytes(dims, block_rows(batch), true)
        + crate::eval::eval_parts(parts, scored) as u64
            * Workspace::bytes(dims, crate::eval::eval_rows(scored), false)
}

/// Bytes `train --serve`'s page adds to a run of `dims` whose test set has
/// `n_test` images: the trainer's snapshot of the weights and a copy of it
/// for each of the page's answering threads (each may hold another
/// version while training steps on), the test set's scoring (one thread's
/// evaluation buffers, each image's guess and probability, the confusion
/// matrix; two of those while one replaces the other), and `curve` bytes
/// for the learning curve ([`crate::live::curve_bytes`]).
pub fn page_bytes(dims: &Dims, n_test: usize, curve: u64) -> u64 {
    let k = dims.k() as u64;
    (1 + crate::live::PAGE_HANDLERS as u64) * 4 * dims.param_count() as u64
        + Workspace::bytes(dims, crate::eval::eval_rows(n_test), false)
        + 2 * (5 * n_test as u64 + 8 * k * k)
        + curve
}

/// Refuse, before anything is allocated, a network that would not fit in
/// the memory available (where the system says how much that is), with
/// the epoch's shuffle order of `n_train` images, `page` bytes for
/// `train --serve`'s page ([`page_bytes`]) where it has one, and the
/// bytes of a checkpoint's file where the run may write one; `resumed`: the
/// network is a checkpoint's, which no flag may change. A new run's
/// refusal is a [`UsageError`] (its flags chose the network); a resumed
/// run's is a run-time error (exit status 1), as the checkpoint's own read
/// gives where memory is short, so that one command gets one exit status
/// whichever of the two estimates refuses it.
fn check_memory(
    cfg: &TrainConfig,
    dims: &Dims,
    parts: usize,
    (rows, cols): (usize, usize),
    (n_train, scored): (usize, usize),
    page: Option<(usize, u64)>,
    (checkpoint, resumed): (bool, bool),
) -> anyhow::Result<()> {
    // The images are mapped, not held; their order is (4 bytes each).
    let order = 4 * n_train as u64;
    // Scratch for each of the pool's threads (one per part).
    let augment = cfg.augment.bytes(rows, cols, parts);
    let need = |dims: &Dims| {
        let mut extra = cfg.optimizer().extra_slabs() as u64 - 1;
        // A save holds its file's bytes beside everything else: a model's
        // (one slab) or a checkpoint's (the weights and the optimiser's
        // state) fit the slabs `training_bytes` leaves spare, but for
        // Adam's two moments, one slab more.
        if checkpoint && cfg.optimizer.is_adam() {
            extra += 1;
        }
        if Regularisers::of(cfg).thins(dims) {
            // The thinned network's parameters and gradient, and a gradient
            // slab where fused SGD would have none.
            extra += 2 + cfg.optimizer().fused() as u64;
        }
        training_bytes(dims, parts, cfg.batch_size, scored)
            + extra * 4 * dims.param_count() as u64
            + page.map_or(0, |(n_test, curve)| page_bytes(dims, n_test, curve))
            + order
    };
    // What the page's copies add to the network's share, in its name.
    let weights = match page {
        Some(_) => "weights (with train --serve's copies of them)",
        None => "weights",
    };
    let Some(avail) = crate::atomic::available_memory() else {
        return Ok(());
    };
    let n = need(dims);
    if n + augment <= avail {
        return Ok(());
    }
    let limit = crate::atomic::memory_limit_note();
    // As many decimals as keep what is refused from reading as what fits.
    let gb = |b: u64, over: u64| {
        format!(
            "{:.*}",
            crate::show::gb_decimals(over, avail),
            b as f64 / 1e9
        )
    };
    // Neither the network nor its distortion may change on a resume.
    if resumed {
        anyhow::bail!(
            "resuming: the checkpoint's network {} needs {} GB for its {weights}, optimiser state and buffers, more than the {} GB of memory available{}; {}, or resume on a machine with more (a resumed run keeps its checkpoint's network)",
            dims.name(),
            gb(n + augment, n + augment),
            gb(avail, n + augment),
            limit,
            match limit.is_empty() {
                true => "free some memory",
                false => "raise the limit",
            }
        );
    }
    // The distortion's buffers alone, or what tips the network over.
    if n <= avail {
        let other = match cfg.augment {
            Augment::Elastic { .. } => "affine or shift:N (or none)",
            _ => "none",
        };
        // Each thread has its own scratch; the smoothing matrices are shared.
        let fewer = match parts > 1 && n + cfg.augment.bytes(rows, cols, 1) <= avail {
            true => ", fewer --threads",
            false => "",
        };
        return Err(UsageError(format!(
            "--augment {}: on images of {rows} × {cols} pixels its buffers need {} GB ({} thread{}), which with the network's {} GB is more than the {} GB of memory available{}; use --augment {other}{fewer}, or smaller images",
            cfg.augment.name(),
            gb(augment, n + augment),
            parts,
            crate::show::plural(parts),
            gb(n, n + augment),
            gb(avail, n + augment),
            limit
        )).into());
    }
    // Blame the hidden layers only where fewer of them would help.
    let smallest = Dims::new(dims.d(), &[], dims.k());
    let m = need(&smallest);
    if m > avail && order > m - order {
        return Err(UsageError(format!(
            "{n_train} training images: their shuffle order alone needs {} GB, which with even the smallest network {} is more than the {} GB of memory available{}; use a smaller training set",
            gb(order, m),
            smallest.name(),
            gb(avail, m),
            limit
        )).into());
    }
    if m > avail {
        return Err(UsageError(format!(
            "the images have {} pixels each: even with no hidden layer the network {} needs {} GB for its {weights}, optimiser state and buffers, more than the {} GB of memory available{}; use smaller images",
            dims.d(),
            smallest.name(),
            gb(m, m),
            gb(avail, m),
            limit
        )).into());
    }
    Err(UsageError(format!(
        "--hidden {}: the network {} needs {} GB for its {weights}, optimiser state and buffers, more than the {} GB of memory available{}; use fewer or narrower hidden layers",
        crate::model::hidden_name(&cfg.hidden),
        dims.name(),
        gb(n, n),
        gb(avail, n),
        limit
    ))
    .into())
}

/// The refusal of a run that differs from the checkpoint it resumes, in
/// `diff` ([`crate::checkpoint::RunShape::differences`]); `data_dir` is
/// where this run's data came from (the checkpoint does not record where
/// its data was).
pub fn cannot_resume(diff: &[String], data_dir: &std::path::Path) -> UsageError {
    let data_differs = diff.iter().any(|d| {
        ["train_images ", "data_md5 ", "data_image "]
            .iter()
            .any(|k| d.starts_with(k))
    });
    let fix = match data_differs {
        true => format!(
            "the data now is {}: pass --data naming the checkpoint's data set, and its flags, or start a new run",
            data_dir.display()
        ),
        false => "resume with the checkpoint's flags, or start a new run".into(),
    };
    UsageError(format!(
        "cannot resume: this run differs from the checkpoint's (checkpoint vs now: {}); {fix}",
        diff.join(", ")
    ))
}

/// The network `cfg` trains on `data`: `D` from the images, `K` from the
/// labels (or `--classes`), the hidden widths from the flags.
pub fn dims_for(cfg: &TrainConfig, data: &Mnist) -> Dims {
    Dims::new(data.train.pixels(), &cfg.hidden, data.classes)
}

/// Train on `data` as `cfg` says, writing one line per epoch to `out`.
pub fn train(cfg: &TrainConfig, data: &Mnist, out: &mut (dyn Write + Send)) -> Result<TrainReport> {
    train_with(cfg, data, RunOptions::default(), out)
}

/// A [`TrainConfig`] built by hand (a library caller's, where the flags'
/// checks never ran) refused where the loop could not run it: one error
/// naming the field, never a panic, a wrapped subtraction or a
/// "diverged" that blames the learning rate. A config from the flags
/// ([`crate::cli::Args::into_config`], then [`crate::cli::fit_to_data`])
/// passes by construction.
fn check_config(cfg: &TrainConfig, data: &Mnist, resumed: bool) -> Result<(), UsageError> {
    let refuse = |field: &str, why: String| {
        Err(UsageError(format!(
            "TrainConfig.{field} {why}; a config built from flags (cli::Args::into_config, then cli::fit_to_data) has every value checked and resolved"
        )))
    };
    let n = data.train.len();
    for (field, v) in [("threads", cfg.threads), ("epochs", cfg.epochs)] {
        if v == 0 {
            return refuse(field, "is 0: give at least 1".into());
        }
    }
    if cfg.epochs > crate::config::MAX_EPOCHS {
        let most = crate::config::MAX_EPOCHS;
        return refuse("epochs", format!("is {}: give at most {most}", cfg.epochs));
    }
    if let Some(k) = cfg.classes.filter(|&k| k != data.classes) {
        return refuse(
            "classes",
            format!("is {k}, but the data opened has {} (open it with Mnist::open_with_classes and the same classes)", data.classes),
        );
    }
    if let crate::model::Init::Normal(sd) = cfg.init {
        if !sd.is_finite() || sd < 0.0 {
            return refuse(
                "init",
                format!("is Normal({sd}): its σ must be a finite number, 0 or more"),
            );
        }
    }
    let (rows, cols) = data.train.side();
    // As `cli::fit_to_data` checks it: a resumed run keeps what it can.
    match resumed {
        false => cfg.augment.check_size(rows, cols, true)?,
        true => cfg.augment.check_fits(rows, cols, true)?,
    }
    if let Some(i) = cfg.hidden.iter().position(|&w| w == 0) {
        return refuse(
            &format!("hidden[{i}]"),
            "is 0: every hidden width is at least 1".into(),
        );
    }
    if cfg.val >= n {
        return refuse(
            "val",
            format!("is {}: the training file has only {n} images", cfg.val),
        );
    }
    if cfg.batch_size == 0 || cfg.batch_size > n - cfg.val {
        return refuse(
            "batch_size",
            format!(
                "is {}: give 1 to {} (the training split; the flags' 0 for all of it is resolved by cli::fit_to_data)",
                cfg.batch_size,
                n - cfg.val
            ),
        );
    }
    let unit = [
        ("dropout", cfg.dropout),
        ("input_dropout", cfg.input_dropout),
        ("momentum", cfg.momentum),
        ("beta1", cfg.beta1),
        ("beta2", cfg.beta2),
    ];
    for (field, v) in unit {
        if !(0.0..1.0).contains(&v) {
            return refuse(field, format!("is {v}: must be in [0, 1)"));
        }
    }
    let positive = [
        ("lr", cfg.lr),
        ("eps", cfg.eps),
        ("max_norm", cfg.max_norm.unwrap_or(1.0)),
    ];
    for (field, v) in positive {
        // (Infinity passes: it trains, and diverges as such.)
        if v.is_nan() || v <= 0.0 {
            return refuse(field, format!("is {v}: must be a number above 0"));
        }
    }
    if !cfg.weight_decay.is_finite() || cfg.weight_decay < 0.0 {
        return refuse(
            "weight_decay",
            format!(
                "is {}: must be a finite number, 0 or more",
                cfg.weight_decay
            ),
        );
    }
    Ok(())
}

/// [`train`] with resuming, checkpoints, a metrics log or an early stop.
pub fn train_with(
    cfg: &TrainConfig,
    data: &Mnist,
    opts: RunOptions,
    out: &mut (dyn Write + Send),
) -> Result<TrainReport> {
    check_config(cfg, data, opts.resume.is_some())?;
    let pool = thread_pool(cfg.threads)?;
    // A library caller's second run has its own last step.
    signals::LAST_STEP_TAKEN.store(false, Ordering::SeqCst);
    signals::PROMISED_CHECKPOINT.store(false, Ordering::SeqCst);
    // From here a first signal stops the run between steps (checkpointing
    // where it can) instead of quitting at once.
    signals::TRAINING.store(true, Ordering::SeqCst);
    pool.install(|| {
        let mut run = Run::open(cfg, data, opts, out)?;
        let t0 = Instant::now();
        let epochs = run.epochs()?;
        run.finish(epochs, t0)
    })
}

/// What a run knows of when its test accuracy first reached each of its
/// [`Milestones`]: the checkpoint's [`Reach`], kept up to date, and the
/// training wall time where this run reached it itself.
#[derive(Clone, Debug)]
struct Reached {
    milestones: Milestones,
    /// One per milestone.
    reach: Vec<Reach>,
    /// Seconds since this run (or its resumed part) started training.
    seconds: Vec<Option<f64>>,
    /// Epochs done before this run started (a resumed checkpoint's).
    before: usize,
}

/// `epoch 3`, or `epochs 3–5`.
fn span(first: usize, last: usize) -> String {
    match first == last {
        true => format!("epoch {first}"),
        false => format!("epochs {first}–{last}"),
    }
}

/// Whether `correct` of `n` is at least `percent` %, exactly: in whole
/// numbers, as a milestone has at most two decimals (98.4 % is 9840 of
/// 10,000, which `9840.0 / 10000.0 >= 0.984` in floating point denies).
fn at_least(correct: usize, n: usize, percent: f64) -> bool {
    let hundredths = (percent * 100.0).round() as u128;
    correct as u128 * 10_000 >= hundredths * n as u128
}

impl Reached {
    /// A new run's.
    fn new(milestones: Milestones) -> Self {
        let n = milestones.percents().len();
        Reached {
            milestones,
            reach: vec![Reach::Not; n],
            seconds: vec![None; n],
            before: 0,
        }
    }

    /// A run resumed from a checkpoint that recorded `saved` after
    /// `before` whole epochs. A milestone the checkpoint's run did not
    /// have is known from those it had where they settle it: not reached
    /// where a lower one was not, reached by the epoch a higher one was.
    fn resumed(milestones: Milestones, saved: &checkpoint::Habits, before: usize) -> Self {
        let mut r = Reached::new(milestones);
        r.before = before;
        let had: Vec<(f64, Reach)> = (saved.milestones.percents().iter().copied())
            .zip((saved.test_reached.iter().copied()).chain(std::iter::repeat(Reach::Unknown)))
            .collect();
        for (i, &p) in r.milestones.percents().iter().enumerate() {
            let lower = had.iter().filter(|(q, _)| *q <= p).map(|(_, r)| *r);
            let higher = had.iter().filter(|(q, _)| *q >= p).map(|(_, r)| *r);
            let not_from = lower
                .filter_map(|r| match r {
                    Reach::Not => Some(1),
                    Reach::NotFrom(s) => Some(s),
                    _ => None,
                })
                .min();
            let by = higher.filter_map(Reach::epoch).min();
            r.reach[i] = match had.iter().find(|(q, _)| *q == p) {
                Some(&(_, reach)) => reach,
                // No epoch was scored before the checkpoint.
                None if before == 0 => Reach::Not,
                // Reached by an epoch, though perhaps not since (test
                // accuracy can fall): that answers "first reached" best.
                None => match (not_from, by) {
                    (Some(1), _) => Reach::Not,
                    (_, Some(e)) => Reach::By(e),
                    (Some(s), None) => Reach::NotFrom(s),
                    (None, None) => Reach::Unknown,
                },
            };
        }
        r
    }

    /// Note an epoch: checked (its test set's `(correct, n)`) or not.
    fn note(&mut self, epoch: usize, test: Option<(usize, usize)>, wall_seconds: f64) {
        for (i, &p) in self.milestones.percents().iter().enumerate() {
            let r = &mut self.reach[i];
            match test {
                // An epoch not checked: "none" no longer holds.
                None if matches!(r, Reach::Not | Reach::NotFrom(_)) => *r = Reach::Unknown,
                None => {}
                Some((correct, n)) if at_least(correct, n, p) && r.epoch().is_none() => {
                    *r = match r {
                        Reach::Not => Reach::At(epoch),
                        _ => Reach::By(epoch),
                    };
                    self.seconds[i] = Some(wall_seconds);
                }
                // Reached before.
                Some((correct, n)) if at_least(correct, n, p) => {}
                // Not reached: "none" starts here where nothing was known.
                Some(_) if *r == Reach::Unknown => {
                    *r = match epoch {
                        1 => Reach::Not,
                        e => Reach::NotFrom(e),
                    }
                }
                Some(_) => {}
            }
        }
    }

    /// The line `--test-every-epoch` ends with for milestone `i`, after
    /// `epochs` epochs in all; `stopped` where the run stopped before its
    /// last epoch (`--stop-after`), whose later epochs may still reach it.
    fn line(&self, i: usize, epochs: usize, stopped: bool) -> String {
        let when = match (self.seconds[i], self.before > 0) {
            (Some(s), false) => format!("{s:.1} s"),
            (Some(s), true) => format!("{s:.1} s after the resume"),
            (None, _) => "before the resume".into(),
        };
        let unchecked = "not every earlier epoch was checked for it";
        let said = match self.reach[i] {
            // By epoch 1 is at epoch 1: there was no earlier one to check.
            Reach::At(e) | Reach::By(e @ 1) => format!("after epoch {e} ({when})"),
            Reach::By(e) => format!("by epoch {e} ({when}; {unchecked})"),
            Reach::Not if stopped => format!(
                "not reached yet (the run stopped after {}, before its last)",
                span(epochs, epochs)
            ),
            Reach::Not => "not reached".into(),
            Reach::NotFrom(s) => format!("not reached in {} ({unchecked})", span(s, epochs)),
            Reach::Unknown => "not known (not every epoch was checked for it)".into(),
        };
        let p = Milestones::show(self.milestones.percents()[i]);
        format!("test accuracy {p}%: {said}")
    }
}

/// A run in progress: the trainer and everything around it.
struct Run<'a> {
    cfg: &'a TrainConfig,
    data: &'a Mnist,
    opts: RunOptions,
    out: &'a mut (dyn Write + Send),
    trainer: Trainer,
    evaluator: Evaluator,
    /// The epoch's shuffled training indices.
    order: Vec<u32>,
    log: Option<MetricsLog>,
    /// The run's shape (flags + data hash), when checkpoints are read or written.
    shape: Option<RunShape>,
    n_train: usize,
    steps_per_epoch: u64,
    total_steps: u64,
    /// Progress bars on stderr.
    show: bool,
    /// Stopped early: by `--stop-after` or Ctrl-C.
    stopped: bool,
    /// The step the run started from: 0, or the resumed checkpoint's.
    first_step: u64,
    /// The last whole epoch's training loss, for checkpoints (see
    /// [`Checkpoint::last_epoch_loss`]).
    last_epoch_loss: Option<f64>,
    /// When the test accuracy first reached each milestone.
    reached: Reached,
    /// The unfinished epoch's sums: from the resume checkpoint before its
    /// epoch runs, or this run's when Ctrl-C stops it inside an epoch.
    so_far: Option<EpochSoFar>,
    /// When training started, and the seconds since spent on per-epoch
    /// test evaluations (not counted in `EpochStats::wall_seconds`).
    started: Instant,
    test_seconds: f64,
    /// Each checkpoint path, and its file as this run last saw it (at the
    /// start, then after each of its saves): a file that has changed since
    /// was written by another process, most likely a run in the same
    /// directory with the same default checkpoint, and is not replaced.
    stamps: Vec<(PathBuf, Option<atomic::Stamp>)>,
    /// The last epoch's checkpoint, where it could not be written: the run
    /// still scores the test set and saves its model (the weights are not
    /// lost to a full disk), then fails with this.
    checkpoint_failure: Option<anyhow::Error>,
    /// Where the model went instead of `--save`, another process having
    /// written that file during the run: what the last checkpoint names,
    /// so that resuming it does not replace the other run's model.
    model_aside: Option<PathBuf>,
}

/// How an epoch ended.
enum EpochEnd {
    /// It ran to its end.
    Ran(EpochStats),
    /// Stopped inside it, after its `batch`-th batch (its sums kept in
    /// `Run::so_far` for the checkpoint).
    Stopped { batch: usize },
    /// Stopped before its first step.
    NotStarted,
}

impl<'a> Run<'a> {
    /// Check the resume checkpoint against the run, build (or restore) the
    /// trainer, open the metrics log, and print the run's header.
    fn open(
        cfg: &'a TrainConfig,
        data: &'a Mnist,
        mut opts: RunOptions,
        out: &'a mut (dyn Write + Send),
    ) -> Result<Self> {
        let n_train = data.train.len() - cfg.val;
        let dims = dims_for(cfg, data);
        let parts = parts_for(cfg.threads);
        let shape =
            (opts.resume.is_some() || opts.checkpoint.is_some()).then(|| RunShape::of(cfg, data));
        // Where a signal's checkpoint goes, too: a path that cannot take
        // one would lose the run at the first Ctrl-C.
        match (&opts.checkpoint, &opts.interrupt_checkpoint) {
            (Some(path), _) => {
                atomic::check_dir_named(path, "checkpoint.safetensors").context("--checkpoint")?;
            }
            (None, Some(path)) => {
                let what = match opts.resume {
                    Some(_) => "the --resume file",
                    None => "the default --checkpoint",
                };
                atomic::check_dir_named(path, "checkpoint.safetensors").with_context(|| {
                    format!("{what}, where a stop (Ctrl-C) writes the run's checkpoint (--checkpoint PATH puts it elsewhere)")
                })?;
            }
            (None, None) => {}
        }
        let mut resume = opts.resume.take();
        if let (Some(c), Some(shape)) = (&resume, &shape) {
            let diff = c.shape.differences(shape);
            if !diff.is_empty() {
                return Err(cannot_resume(&diff, &data.dir).into());
            }
        }
        // The largest range a run scores at once: the validation or test
        // set, or the images that check the last update.
        let scored = cfg.val.max(data.test.len()).max(n_train.min(CHECK_IMAGES));
        let steps_per_epoch = n_train.div_ceil(cfg.batch_size) as u64;
        let total_steps = steps_per_epoch * cfg.epochs as u64;
        let page = opts.live.is_some().then(|| {
            let curve = crate::live::curve_bytes(steps_per_epoch, total_steps, cfg.epochs);
            (data.test.len(), curve)
        });
        let side = data.train.side();
        let saves = (opts.checkpoint.is_some(), resume.is_some());
        check_memory(cfg, &dims, parts, side, (n_train, scored), page, saves)?;
        // After the memory (what to change first), before the work: a
        // disk without room for the weights (4 bytes each) of the model or
        // of a planned checkpoint (a signal's alone is not refused for it).
        let weights = 4 * dims.param_count() as u64;
        for (path, flag, what) in [
            (&cfg.save, "--save", "the model"),
            (&opts.checkpoint, "--checkpoint", "a checkpoint"),
        ] {
            if let Some(path) = path {
                atomic::check_room(path, weights, what).context(flag)?;
            }
        }
        // A checkpoint's weights are moved, not copied: `check_memory`
        // counted the memory left beside the checkpoint, not a second copy.
        let params = match resume.as_mut() {
            Some(c) => Params {
                dims: c.params.dims.clone(),
                data: std::mem::take(&mut c.params.data),
            },
            None => Params::init(dims.clone(), cfg.init, cfg.seed),
        };
        let mut trainer = Trainer::for_batch(
            params,
            parts,
            cfg.optimizer(),
            Regularisers::of(cfg),
            cfg.seed,
            cfg.batch_size,
        );
        let so_far = resume.as_ref().and_then(|c| c.so_far);
        let last_epoch_loss = resume.as_ref().and_then(|c| c.last_epoch_loss);
        let reached = match &resume {
            None => Reached::new(opts.milestones.clone()),
            Some(c) => Reached::resumed(
                opts.milestones.clone(),
                &c.habits,
                (c.steps / c.shape.steps_per_epoch().max(1)) as usize,
            ),
        };
        // The log the stopped run wrote, as its checkpoint names it.
        let its_log = resume.as_ref().and_then(|c| c.habits.metrics.clone());
        if let Some(c) = resume {
            trainer.velocity = c.velocity;
            trainer.exp_avg_sq = c.exp_avg_sq;
            trainer.steps = c.steps;
        }
        let (rows, cols) = data.train.side();
        trainer.set_augment(Augmenter::new(cfg.augment, rows, cols, cfg.seed));
        let log = match &opts.metrics {
            Some(path) => Some(MetricsLog::open(
                path,
                (trainer.steps / steps_per_epoch) as usize,
                trainer.steps > 0,
                last_epoch_loss,
                its_log.is_some() && its_log == absolute(path),
            )?),
            None => None,
        };
        let first_step = trainer.steps;
        let stamps = [&opts.checkpoint, &opts.interrupt_checkpoint, &cfg.save]
            .into_iter()
            .flatten()
            .map(|p| (p.clone(), atomic::stamp(p)))
            .collect();
        let mut run = Run {
            evaluator: Evaluator::for_ranges_of(&trainer.params, parts, scored),
            order: vec![0; n_train],
            total_steps,
            show: cfg.progress && stderr_is_a_sized_terminal(),
            cfg,
            data,
            opts,
            out,
            trainer,
            log,
            shape,
            n_train,
            steps_per_epoch,
            stopped: false,
            first_step,
            last_epoch_loss,
            reached,
            stamps,
            checkpoint_failure: None,
            model_aside: None,
            so_far,
            started: Instant::now(),
            test_seconds: 0.0,
        };
        if let Some(live) = &run.opts.live {
            let t = &run.trainer;
            live.start(
                &t.params,
                steps_per_epoch,
                run.total_steps,
                cfg.epochs,
                t.steps,
                run.so_far,
            );
        }
        run.header(&dims, parts)?;
        Ok(run)
    }

    fn header(&mut self, dims: &Dims, parts: usize) -> Result<()> {
        let cfg = self.cfg;
        if let Some(note) = &self.opts.resume_note {
            writeln!(self.out, "{note}")?;
        }
        writeln!(
            self.out,
            "data: {} train / {} val / {} test images from {}",
            self.n_train,
            cfg.val,
            self.data.test.len(),
            show::path(&self.data.dir)
        )?;
        if let Some(note) = unseen_classes(&self.data.train, self.n_train, dims.k()) {
            writeln!(self.out, "{note}")?;
        }
        // A resumed run given a log that holds none of its finished epochs
        // (a new file) writes only the rest: say so, once, before it does
        // (nothing, for a finished run's checkpoint: it writes no epoch).
        let done = (self.first_step / self.steps_per_epoch.max(1)) as usize;
        let rest = (1..cfg.epochs).contains(&done);
        let held: Vec<usize> = self.log.as_ref().map_or(Vec::new(), |l| {
            l.records().iter().map(|r| r.epoch).collect()
        });
        if let (true, true, Some(path)) = (rest, self.log.is_some(), &self.opts.metrics) {
            if held.is_empty() {
                writeln!(
                    self.out,
                    "note: --metrics {} holds none of the {} before this resume, so it will start at epoch {}; to keep one log of the whole run, give the --metrics file the stopped run wrote, if it had one",
                    path.display(),
                    crate::metrics::epochs(done),
                    done + 1
                )?;
            } else if held.len() < done {
                // A log cut by hand, or begun by an earlier resume on a new
                // file: the run's log will not be whole, which plots hide.
                // `held` is in increasing order (a log's epochs are).
                let missing: Vec<usize> = (1..=done)
                    .filter(|e| held.binary_search(e).is_err())
                    .collect();
                let (word, them) = match missing.len() {
                    1 => ("epoch", "it"),
                    _ => ("epochs", "them"),
                };
                writeln!(
                    self.out,
                    "note: --metrics {} holds {} of the {} before this resume (not {word} {}), so the run's log will lack {them}; to keep one log of the whole run, give the --metrics file the stopped run wrote",
                    path.display(),
                    held.len(),
                    crate::metrics::epochs(done),
                    crate::show::ranges(&missing),
                )?;
            }
        }
        writeln!(
            self.out,
            "model: {}; batch {}, {}, lr {} {}, {}, dropout {}, input dropout {}{}, max-norm {}, seed {}{}",
            dims.name(),
            cfg.batch_size,
            crate::metrics::epochs(cfg.epochs),
            crate::show::number(cfg.lr),
            cfg.schedule.name(),
            cfg.optimizer().describe(),
            if cfg.hidden.is_empty() {
                "none (no hidden layer)".to_string()
            } else {
                crate::show::number(cfg.dropout)
            },
            crate::show::number(cfg.input_dropout),
            // After both rates: the masks of whichever is not 0.
            match cfg.dropout_mask {
                DropoutMask::Image => "",
                DropoutMask::Batch => ", one dropout mask per batch",
            },
            cfg.max_norm.map_or("none".into(), crate::show::number),
            cfg.seed,
            // He's is the default; the seed recipe's draw is said.
            match cfg.init {
                crate::model::Init::He => String::new(),
                crate::model::Init::Normal(sd) => format!(", init N(0, {}²)", crate::show::number(sd)),
            }
        )?;
        if cfg.augment != Augment::None {
            writeln!(
                self.out,
                "augment: {}, drawn afresh for every image each epoch",
                cfg.augment.describe()
            )?;
        }
        let cut = match parts {
            1 => "work in one part".to_string(),
            _ => format!("work cut into {parts} parts"),
        };
        let threads = if parts < cfg.threads {
            format!(
                "{} asked, a pool of {parts} (at most one per core), {cut}",
                cfg.threads
            )
        } else {
            format!(
                "{} (one rayon pool), {cut} (min of threads and cores)",
                cfg.threads
            )
        };
        writeln!(
            self.out,
            "threads: {threads}, gemm: matrixmultiply single-threaded per part"
        )?;
        if self.trainer.steps >= self.total_steps {
            writeln!(
                self.out,
                "the checkpoint's run is complete (step {} of {}): nothing left to train",
                self.trainer.steps, self.total_steps
            )?;
        } else if self.trainer.steps > 0 {
            writeln!(
                self.out,
                "resuming at epoch {}, step {} of {}",
                self.trainer.steps / self.steps_per_epoch + 1,
                self.trainer.steps,
                self.total_steps
            )?;
        }
        Ok(())
    }

    /// Every epoch still to run: train, validate, log, checkpoint.
    fn epochs(&mut self) -> Result<Vec<EpochStats>> {
        let first = (self.trainer.steps / self.steps_per_epoch) as usize + 1;
        let mut done = Vec::with_capacity(self.cfg.epochs);
        for epoch in first..=self.cfg.epochs {
            let stats = match self.epoch(epoch)? {
                EpochEnd::Ran(stats) => stats,
                EpochEnd::Stopped { batch } => {
                    writeln!(
                        self.out,
                        "epoch {epoch:>w$}/{}  stopped after batch {batch} of {}",
                        self.cfg.epochs,
                        self.steps_per_epoch,
                        w = self.cfg.epochs.to_string().len()
                    )?;
                    break;
                }
                EpochEnd::NotStarted => break,
            };
            let every = self.opts.checkpoint_every;
            let checkpoint_due = self.opts.checkpoint.is_some()
                && every.is_some_and(|n| epoch % n == 0 || epoch == self.cfg.epochs);
            let last = epoch == self.cfg.epochs || self.trainer.steps >= self.stop_at();
            if checkpoint_due || last {
                self.check_last_update(epoch)?;
            }
            writeln!(self.out, "{}", epoch_line(&stats, self.cfg.epochs))?;
            if let (Some(log), false) = (&mut self.log, self.stopped) {
                log.push(&stats);
            }
            if let Some(live) = &self.opts.live {
                live.epoch(&stats);
            }
            self.last_epoch_loss = Some(stats.train_loss);
            let test = stats.test.as_ref().map(|m| (m.correct, m.n));
            self.reached.note(epoch, test, stats.wall_seconds);
            done.push(stats);
            if self.stopped || self.trainer.steps >= self.stop_at() {
                self.stopped = true;
                break;
            }
            if checkpoint_due {
                if let Some(path) = self.opts.checkpoint.clone() {
                    match self.save_checkpoint(&path) {
                        Ok(path) => writeln!(
                            self.out,
                            "checkpoint (epoch {epoch}, step {}) saved to {}",
                            self.trainer.steps,
                            show::path(&path)
                        )?,
                        Err(e) if epoch == self.cfg.epochs => self.checkpoint_failure = Some(e),
                        Err(e) => {
                            return Err(e.context(format!(
                                "training stopped after epoch {epoch} of {}, as its checkpoint could not be written (the file there, if any, is as it was)",
                                self.cfg.epochs
                            )))
                        }
                    }
                }
            }
        }
        Ok(done)
    }

    /// The batches' check sees an update only at the next step's loss: the
    /// last update before a write (a checkpoint, the model) is checked on
    /// the first [`CHECK_IMAGES`] training images instead, which a run that
    /// trains scores as it scores its batches. (Not the validation or test
    /// set: a healthy run may score far worse on images unlike its own.)
    fn check_last_update(&mut self, epoch: usize) -> Result<()> {
        let n = self.n_train.min(CHECK_IMAGES);
        let m = self
            .evaluator
            .evaluate(&self.trainer.params, &self.data.train, 0..n);
        // The step the last update was, within its epoch.
        let done = (self.trainer.steps - (epoch as u64 - 1) * self.steps_per_epoch) as usize;
        if diverged(m.loss) {
            // (CHECK_IMAGES, written out: the message is a static string.)
            let what = match n {
                CHECK_IMAGES => "on the first 256 training images",
                _ => "on the training images",
            };
            const _: () = assert!(CHECK_IMAGES == 256);
            return Err(Diverged::new(self.cfg, epoch, done, what, m.loss).into());
        }
        // Weights can be finite and score well yet be past what every
        // command that loads a model refuses (an edited checkpoint's
        // optimiser state gets a weight there that no image's pixels reach).
        let params = &self.trainer.params;
        if let Some(bound) = crate::modelfile::past_output_limit(params) {
            return Err(Diverged::new(self.cfg, epoch, done, OUTPUT_BOUND, bound).into());
        }
        // Nor may the optimiser's state be past f32's range with finite
        // weights: Adam's `exp_avg_sq` overflows under a huge weight decay,
        // freezing every weight it covers (`m / √∞ = 0`), and no checkpoint
        // may hold it (`--resume` refuses one that does).
        let t = &self.trainer;
        let slabs = [Some(&t.velocity), t.exp_avg_sq.as_ref()];
        let names = crate::checkpoint::state_names(self.cfg.optimizer);
        for (slab, name) in slabs.into_iter().flatten().zip(names) {
            if let Some(i) = slab.data.iter().position(|v| !v.is_finite()) {
                let d = Diverged::new(self.cfg, epoch, done, OPTIMISER_STATE, f64::NAN);
                return Err(d).with_context(|| format!("{name} entry {i} is {}", slab.data[i]));
            }
        }
        Ok(())
    }

    fn stop_at(&self) -> u64 {
        self.opts.stop_after_steps.unwrap_or(u64::MAX)
    }

    /// One epoch: its shuffled batches (from where a checkpoint left off),
    /// the divergence guard, the progress bar, then validation.
    fn epoch(&mut self, epoch: usize) -> Result<EpochEnd> {
        let cfg = self.cfg;
        let t0 = Instant::now();
        shuffle_epoch(&mut self.order, cfg.seed, epoch);
        self.trainer.epoch = epoch;
        let bar = progress_bar(self.show, self.steps_per_epoch, epoch, cfg.epochs);
        let mut lr = cfg.lr;
        // A checkpoint taken inside an epoch resumes at its next batch, with
        // the epoch's sums so far (none in checkpoints of older versions).
        let skip = (self.trainer.steps - (epoch as u64 - 1) * self.steps_per_epoch) as usize;
        let before = self.so_far.take().filter(|_| skip > 0);
        let (mut loss_sum, mut correct, mut seen) =
            before.map_or((0f64, 0usize, 0usize), |s| (s.loss_sum, s.correct, s.seen));
        let seen_before = seen;
        for (step, idx) in self.order.chunks(cfg.batch_size).enumerate().skip(skip) {
            if self.trainer.steps >= self.stop_at() || INTERRUPTED.load(Ordering::Relaxed) {
                self.stopped = true;
                break;
            }
            lr = cfg
                .schedule
                .lr(cfg.lr, self.trainer.steps, self.total_steps);
            let r = self.trainer.step(&self.data.train, idx, lr);
            if self.trainer.steps == self.total_steps {
                signals::LAST_STEP_TAKEN.store(true, Ordering::SeqCst);
            }
            let mean = r.loss_sum / idx.len() as f64;
            if diverged(mean) {
                bar.finish_and_clear();
                return Err(Diverged::new(cfg, epoch, step + 1, BATCH_LOSS, mean).into());
            }
            loss_sum += r.loss_sum;
            correct += r.correct;
            seen += idx.len();
            if let Some(live) = &self.opts.live {
                let t = &self.trainer;
                live.step(&t.params, epoch, t.steps, loss_sum, correct, seen);
            }
            if self.show && step % 16 == 15 {
                bar.set_position(step as u64 + 1);
                bar.set_message(format!(
                    "loss {:.4} · {:.0} samples/s",
                    loss_sum / seen as f64,
                    (seen - seen_before) as f64 / t0.elapsed().as_secs_f64()
                ));
            }
        }
        let train_secs = t0.elapsed().as_secs_f64();
        bar.finish_and_clear();
        // The loss check sees bad weights only at the next step; the epoch's
        // last update must not reach a checkpoint or the model file unchecked.
        let params = &self.trainer.params;
        if let Some(i) = params.data.iter().position(|w| !w.is_finite()) {
            let step = self.order.len().div_ceil(cfg.batch_size);
            return Err(Diverged::new(cfg, epoch, step, BATCH_LOSS, f64::NAN))
                .with_context(|| format!("parameter {i} is {}", params.data[i]));
        }
        if seen == seen_before {
            // Stopped again before a batch: the next checkpoint still needs
            // the sums the resumed one carried.
            self.so_far = before;
            return Ok(EpochEnd::NotStarted);
        }
        let batch = (self.trainer.steps - (epoch as u64 - 1) * self.steps_per_epoch) as usize;
        if batch < self.steps_per_epoch as usize {
            // Only sums of the whole epoch so far: not those of a resume
            // from a checkpoint that carried none (an older version's).
            self.so_far = (skip == 0 || before.is_some()).then_some(EpochSoFar {
                loss_sum,
                correct,
                seen,
            });
            return Ok(EpochEnd::Stopped { batch });
        }
        let val = (cfg.val > 0).then(|| self.evaluate_val());
        let seconds = t0.elapsed().as_secs_f64();
        let wall_seconds = self.started.elapsed().as_secs_f64() - self.test_seconds;
        let test = self.opts.test_every_epoch.then(|| {
            let t = Instant::now();
            let m = self.evaluate_test();
            self.test_seconds += t.elapsed().as_secs_f64();
            m
        });
        Ok(EpochEnd::Ran(EpochStats {
            epoch,
            train_loss: loss_sum / seen as f64,
            train_accuracy: correct as f64 / seen as f64,
            val,
            test,
            lr,
            seconds,
            wall_seconds,
            samples_per_sec: (seen - seen_before) as f64 / train_secs,
        }))
    }

    /// The held-out images at the end of the training file.
    fn evaluate_val(&mut self) -> Metrics {
        let train = &self.data.train;
        self.evaluator
            .evaluate(&self.trainer.params, train, self.n_train..train.len())
    }

    fn evaluate_test(&mut self) -> Metrics {
        let test = &self.data.test;
        self.evaluator
            .evaluate(&self.trainer.params, test, 0..test.len())
    }

    /// What this run last saw at the output `path` (its stamp at the start,
    /// or after this run's last write there), for [`atomic::write_guarded`].
    fn guard<'w>(&self, path: &Path, what: &'w str, goes: &'w str) -> atomic::Guard<'w> {
        let seen = self.stamps.iter().find(|(p, _)| p == path).map(|(_, s)| *s);
        atomic::Guard { seen, what, goes }
    }

    /// Save a checkpoint for `path`; returns where it went: `path`, unless
    /// another process has written that file since this run last saw it;
    /// then `NAME.PID.EXT` beside it, from now on (said once, on stderr).
    fn save_checkpoint(&mut self, path: &Path) -> Result<PathBuf> {
        // The log first: a resumed run keeps the log's epochs up to the
        // checkpoint's, so the log must not lag behind it.
        if let Some(log) = &mut self.log {
            log.flush();
        }
        let (cfg, data) = (self.cfg, self.data);
        let shape = self.shape.get_or_insert_with(|| RunShape::of(cfg, data));
        let t = &self.trainer;
        let state = checkpoint::State {
            velocity: &t.velocity,
            exp_avg_sq: t.exp_avg_sq.as_ref(),
        };
        let image = data.train.side();
        let so_far = self
            .so_far
            .filter(|_| !t.steps.is_multiple_of(self.steps_per_epoch));
        let habits = checkpoint::Habits {
            checkpoint_every: self.opts.checkpoint_every,
            test_every_epoch: self.opts.test_every_epoch,
            milestones: self.reached.milestones.clone(),
            test_reached: self.reached.reach.clone(),
            class_names: self.opts.class_names.clone(),
            damaged_names: None,
            save: match self.model_aside.as_ref().or(self.cfg.save.as_ref()) {
                None => Some(None),
                Some(path) => absolute(path).map(Some),
            },
            // Where the log went: a resume continues that file, not one
            // another process wrote at `--metrics` during the run.
            metrics: (self.log.as_ref().map(MetricsLog::path))
                .or(self.opts.metrics.as_deref())
                .and_then(absolute),
        };
        let at = (t.steps, image, so_far, self.last_epoch_loss);
        let bytes = checkpoint::checkpoint_bytes_with(&t.params, state, shape, at, habits);
        let guard = self.guard(path, "checkpoint path", "checkpoints go");
        let (own, now) = atomic::write_guarded(path, &bytes, Some(guard))?;
        if own != path {
            for p in [
                &mut self.opts.checkpoint,
                &mut self.opts.interrupt_checkpoint,
            ]
            .into_iter()
            .flatten()
            {
                if p == path {
                    *p = own.clone();
                }
            }
        }
        match self.stamps.iter_mut().find(|(p, _)| *p == own) {
            Some((_, seen)) => *seen = Some(now),
            None => self.stamps.push((own.clone(), Some(now))),
        }
        Ok(own)
    }

    /// After the epochs: an interrupted run checkpoints and stops with
    /// [`Interrupted`]; a `--stop-after` run checkpoints; then the test set,
    /// and the model saved.
    fn finish(mut self, epochs: Vec<EpochStats>, t0: Instant) -> Result<TrainReport> {
        if let Some(log) = &mut self.log {
            log.flush();
        }
        let steps = self.trainer.steps;
        let epoch = steps / self.steps_per_epoch;
        if self.stopped && INTERRUPTED.load(Ordering::Relaxed) {
            let path = self
                .opts
                .checkpoint
                .clone()
                .or(self.opts.interrupt_checkpoint.clone());
            let saved = match path {
                // Stopped before the first step (a signal while the run
                // opened, or a library caller's flag; the binary quits at
                // once before training starts): a checkpoint would hold
                // nothing a new run (or the resumed file) does not.
                Some(_) if steps == self.first_step && steps == 0 => {
                    "nothing trained yet, so no checkpoint written".to_string()
                }
                Some(_) if steps == self.first_step => {
                    "no step taken since the checkpoint this run resumed, so none written; resume from that one again".to_string()
                }
                Some(path) => {
                    // The epoch the last step was in (one stopped at an
                    // epoch's end: that epoch).
                    self.check_last_update(steps.div_ceil(self.steps_per_epoch).max(1) as usize)?;
                    let path = self.save_checkpoint(&path)?;
                    format!(
                        "checkpoint saved to {}; continue with --resume {}",
                        path.display(),
                        path.display()
                    )
                }
                None => "no checkpoint written (the run had no --save, --checkpoint or --checkpoint-every to put one)"
                    .to_string(),
            };
            return Err(Interrupted {
                epoch: epoch as usize,
                step: steps,
                saved,
                signal: signals::stop_signal(),
            }
            .into());
        }
        if self.stopped {
            let total = self.total_steps;
            match self.opts.checkpoint.clone() {
                Some(path) => {
                    let path = self.save_checkpoint(&path)?;
                    writeln!(
                        self.out,
                        "stopped after step {steps} of {total} (epoch {epoch} done); checkpoint saved to {}; continue with --resume {}",
                        show::path(&path),
                        show::shell_word(&path.display().to_string())
                    )?;
                }
                None => writeln!(
                    self.out,
                    "stopped after step {steps} of {total} (epoch {epoch} done); no checkpoint written"
                )?,
            }
        }
        let train_seconds = t0.elapsed().as_secs_f64() - self.test_seconds;
        if self.opts.test_every_epoch {
            let done = (self.trainer.steps / self.steps_per_epoch) as usize;
            for i in 0..self.reached.reach.len() {
                let line = self.reached.line(i, done, self.stopped);
                writeln!(self.out, "{line}")?;
            }
        }
        let test = self.evaluate_test();
        if let Some(live) = &self.opts.live {
            live.done(&self.trainer.params, &test, self.stopped);
        }
        writeln!(
            self.out,
            "test accuracy {:.2}% ({} / {}), test loss {}; trained in {:.1} s",
            100.0 * test.accuracy(),
            test.correct,
            test.n,
            crate::show::loss(test.loss),
            train_seconds
        )?;
        // Where the model went, if it was saved.
        let mut saved_to = None;
        if let (Some(wanted), false) = (&self.cfg.save, self.stopped) {
            // Not over a model another run saved there meanwhile.
            let guard = self.guard(wanted, "--save path", "model goes");
            let names = self.opts.class_names.as_ref();
            let failed = self.checkpoint_failure.as_ref();
            let bytes = modelfile::model_bytes(&self.trainer.params, self.data.train.side(), names);
            let (path, _) = atomic::write_guarded(wanted, &bytes, Some(guard)).map_err(|e| {
                // The last epoch's checkpoint holds these very weights,
                // unless it could not be written either.
                match (&self.opts.checkpoint, self.opts.checkpoint_every, failed) {
                    (_, _, Some(ck_error)) => anyhow::anyhow!(
                        "{e:#}; nor could the last checkpoint be written ({ck_error:#}), so the trained weights were not kept"
                    ),
                    (Some(ck), Some(_), None) => anyhow::anyhow!(
                        "{e:#}; the checkpoint {} holds the trained weights (eval, predict and serve read it)",
                        ck.display()
                    ),
                    _ => e,
                }
            })?;
            writeln!(self.out, "model saved to {}", show::path(&path))?;
            // The last epoch's checkpoint named `--save`, which holds the
            // other process's model: written again, naming this one's.
            if path != *wanted {
                self.model_aside = Some(path.clone());
                let last_checkpoint = match (&self.opts.checkpoint, self.opts.checkpoint_every) {
                    (Some(ck), Some(_)) if self.checkpoint_failure.is_none() => Some(ck.clone()),
                    _ => None,
                };
                if let Some(ck) = last_checkpoint {
                    self.save_checkpoint(&ck).with_context(|| {
                        format!(
                            "the model went to {}, but the checkpoint {} that names --save could not be written again to name it",
                            path.display(),
                            ck.display()
                        )
                    })?;
                }
            }
            saved_to = Some(path);
        }
        if let Some(e) = self.checkpoint_failure.take() {
            let saved = match saved_to {
                Some(path) => format!("saved its model to {}", path.display()),
                None => "scored the test set".to_string(),
            };
            let log = match self.log.as_ref().and_then(MetricsLog::failure_and_holds) {
                Some((why, holds)) => {
                    format!(" (nor is its --metrics log complete: {why}; {holds})")
                }
                None => String::new(),
            };
            return Err(e.context(format!(
                "the run trained to its end and {saved}, but its last checkpoint could not be written{log}"
            )));
        }
        // Said once when it failed, tried again as epochs ended and at the end: the run
        // kept its weights, but what was asked of it was not all done.
        if let Some((why, holds)) = self.log.as_ref().and_then(MetricsLog::failure_and_holds) {
            // (A signal's stop returned above: `stopped` is --stop-after's.)
            let run = match self.stopped {
                true => "the run stopped where --stop-after asked and wrote its checkpoint",
                false => "the run trained to its end and saved what else it was asked to",
            };
            anyhow::bail!("{why} ({run}, but its --metrics log is not complete: {holds})");
        }
        // A signal just as the last step ended, whose notice promised a
        // step and a checkpoint: the run finished, so there is none to
        // write. (One later said so itself.)
        if !self.stopped
            && INTERRUPTED.load(Ordering::Relaxed)
            && signals::PROMISED_CHECKPOINT.load(Ordering::SeqCst)
        {
            let _ = writeln!(
                std::io::stderr(),
                "simplenn: {} after the last step: the run had finished training, so it ran to its end",
                signals::words(signals::stop_signal()).0
            );
        }
        Ok(TrainReport {
            params: self.trainer.params,
            epochs,
            test,
            train_seconds,
            stopped: self.stopped,
        })
    }
}

/// The plain per-epoch line.
pub fn epoch_line(s: &EpochStats, epochs: usize) -> String {
    let width = epochs.to_string().len();
    let val = match &s.val {
        Some(m) => format!(
            "val acc {:6.2}%  val loss {}",
            100.0 * m.accuracy(),
            crate::show::loss(m.loss)
        ),
        None => "val -".to_string(),
    };
    let val = match &s.test {
        Some(m) => format!("{val}  test acc {:6.2}%", 100.0 * m.accuracy()),
        None => val,
    };
    format!(
        "epoch {:>width$}/{epochs}  train loss {:.4}  train acc {:6.2}%  {val}  lr {}  {:.2} s  {:.0} samples/s",
        s.epoch,
        s.train_loss,
        100.0 * s.train_accuracy,
        crate::show::rate(s.lr),
        s.seconds,
        s.samples_per_sec,
    )
}

/// Whether standard error is a terminal that says how wide it is. One that
/// says 0 columns (a pseudo-terminal nobody sized: `script` under cron,
/// `docker run -t` from a script) gets no bar: the bar would take it for 79
/// columns, and on a wider window each redraw of its longer line would
/// erase a line above it.
fn stderr_is_a_sized_terminal() -> bool {
    std::io::stderr().is_terminal() && (cfg!(not(unix)) || stderr_columns().is_some())
}

/// The terminal's width on standard error, where it says one.
fn stderr_columns() -> Option<usize> {
    #[cfg(unix)]
    {
        rustix::termios::tcgetwinsize(std::io::stderr())
            .ok()
            .map(|w| usize::from(w.ws_col))
            .filter(|&c| c > 0)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The bar's line for a terminal of `columns`: one row, which a line longer
/// than the terminal would not be (each redraw then took two or three
/// rows). The bar takes what the counts and the message leave (indicatif
/// measures the terminal at each draw); below 70 columns the message
/// (`loss 0.1234 · 180000 samples/s`) goes, below 40 the bar too.
fn bar_template(columns: Option<usize>) -> &'static str {
    match columns {
        Some(c) if c < 40 => "{prefix} {pos}/{len}",
        Some(c) if c < 70 => "{prefix} [{wide_bar}] {pos}/{len} batches",
        _ => "{prefix} [{wide_bar}] {pos}/{len} batches  {msg}",
    }
}

fn progress_bar(show: bool, len: u64, epoch: usize, epochs: usize) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(bar_template(stderr_columns()))
            .expect("template is valid")
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("epoch {epoch}/{epochs}"));
    signals::drawing(&bar);
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diverged_losses_are_written_short() {
        assert_eq!(loss_words(6901.6), "6901.6");
        assert_eq!(loss_words(3.1011e37), "3.10e37");
        assert_eq!(loss_words(f64::NAN), "NaN");
    }
    use std::sync::{Arc, Mutex};

    /// Standard output that, when the run reports a checkpoint, counts the
    /// lines the metrics log holds at that moment.
    struct Watch {
        log: PathBuf,
        at_checkpoint: Arc<Mutex<Vec<usize>>>,
    }

    impl Write for Watch {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if String::from_utf8_lossy(buf).starts_with("checkpoint (epoch") {
                let lines = std::fs::read_to_string(&self.log).map_or(0, |s| s.lines().count());
                self.at_checkpoint.lock().unwrap().push(lines);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// `train --serve`'s copies of the weights and its scoring count in
    /// the memory check: a network that fits without them (about 70 % of
    /// the memory available) is refused with them, and says so.
    #[test]
    fn the_live_pages_copies_count_in_the_memory_check() {
        use clap::Parser;
        let Some(avail) = crate::atomic::available_memory() else {
            // Straight to stderr, past the test harness's capture.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "*** SKIPPED: train::tests::the_live_pages_copies_count_in_the_memory_check: no /proc/meminfo here ***"
            );
            return;
        };
        let cli = crate::cli::Cli::try_parse_from(["simplenn", "--no-progress"]).unwrap();
        let crate::cli::Command::Train(args) = cli.into_command() else {
            panic!("not train");
        };
        let cfg = args.into_config().unwrap();
        let (n_train, n_test) = (1000, 10_000);
        let dims = |h: usize| Dims::new(784, &[h], 10);
        let need = |h: usize| training_bytes(&dims(h), 1, cfg.batch_size, n_test);
        // The widest layer whose run (without the page) needs ≤ 70 %.
        let h = (1..=usize::MAX.ilog2())
            .map(|b| 1usize << b)
            .take_while(|&h| need(h) <= avail / 10 * 7)
            .last()
            .unwrap();
        let h = (h..2 * h)
            .step_by((h / 64).max(1))
            .take_while(|&h| need(h) <= avail / 10 * 7)
            .last()
            .unwrap();
        assert!(page_bytes(&dims(h), n_test, 0) > need(h) / 2);
        let check = |page| {
            check_memory(
                &cfg,
                &dims(h),
                1,
                (28, 28),
                (n_train, n_test),
                page,
                (false, false),
            )
        };
        check(None).unwrap();
        let e = check(Some((n_test, 0))).unwrap_err().to_string();
        assert!(
            e.contains("needs")
                && e.contains("for its weights (with train --serve's copies of them)"),
            "{e}"
        );
        // Twice as wide does not fit: a new run is told to narrow its
        // layers, a resumed one (whose network no flag may change) not.
        // A new run's refusal is a usage error (exit 2), a resumed one's
        // not (exit 1, as its checkpoint's read would refuse it).
        let wide = |resumed| {
            let dims = dims(2 * h);
            let saves = (false, resumed);
            let e =
                check_memory(&cfg, &dims, 1, (28, 28), (n_train, n_test), None, saves).unwrap_err();
            assert_eq!(e.is::<UsageError>(), !resumed, "{e}");
            e.to_string()
        };
        let e = wide(false);
        // (The flag as the config has it; the test's network is wider.)
        let says = format!("--hidden 256: the network 784-{}-10 needs ", 2 * h);
        assert!(e.starts_with(&says), "{e}");
        let e = wide(true);
        assert!(
            e.starts_with(&format!(
                "resuming: the checkpoint's network 784-{}-10 needs ",
                2 * h
            )) && e.contains("(a resumed run keeps its checkpoint's network)")
                && !e.contains("--hidden"),
            "{e}"
        );
    }

    #[test]
    fn each_epoch_has_its_own_permutation_and_replays_it() {
        let shuffled = |seed, epoch| {
            let mut o = vec![7u32; 1000];
            shuffle_epoch(&mut o, seed, epoch);
            o
        };
        let a = shuffled(1, 1);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert!(sorted.iter().enumerate().all(|(i, &v)| v == i as u32));
        // The same (seed, epoch) gives the same order from any starting
        // contents; another epoch or seed gives another order.
        assert_eq!(a, shuffled(1, 1));
        for other in [shuffled(1, 2), shuffled(2, 1), shuffled(1, 0)] {
            let same = a.iter().zip(&other).filter(|(x, y)| x == y).count();
            assert!(same < 20, "{same} of 1000 places agree");
        }
    }

    /// A run stopped before its last epoch (`--stop-after`) has not
    /// missed a milestone it has yet to reach, and does not say so.
    #[test]
    fn a_stopped_run_has_not_reached_a_milestone_yet() {
        let mut reached = Reached::new(Milestones::default());
        reached.note(1, Some((979, 1000)), 1.0);
        reached.note(2, Some((985, 1000)), 2.0);
        assert_eq!(
            reached.line(0, 2, true),
            "test accuracy 98%: after epoch 2 (2.0 s)"
        );
        assert_eq!(
            reached.line(1, 2, true),
            "test accuracy 99%: not reached yet (the run stopped after epoch 2, before its last)"
        );
        assert_eq!(reached.line(1, 2, false), "test accuracy 99%: not reached");
    }

    #[test]
    fn the_first_epoch_at_or_above_each_target_is_named_with_its_wall_time() {
        // (epoch, correct of 1000 or not checked); the wall time since
        // training started is 10 s an epoch + 0.3.
        let epoch = |e: usize, correct: Option<usize>| (e, correct);
        let run = [
            epoch(1, Some(979)),
            epoch(2, Some(980)), // exactly 98 %
            epoch(3, Some(989)),
            epoch(4, Some(992)),
            epoch(5, Some(995)),
        ];
        let short = [epoch(1, Some(979)), epoch(2, None), epoch(3, Some(985))];
        let all_lines = |epochs: &[(usize, Option<usize>)], reached: &Reached| {
            let mut reached = reached.clone();
            for &(e, correct) in epochs {
                reached.note(e, correct.map(|c| (c, 1000)), 10.0 * e as f64 + 0.3);
            }
            let last = epochs.last().map_or(reached.before, |s| s.0);
            (0..reached.reach.len())
                .map(|i| reached.line(i, last, false))
                .collect::<Vec<_>>()
        };
        let lines = |epochs: &[(usize, Option<usize>)], reached: &Reached| {
            <[String; 2]>::try_from(all_lines(epochs, reached)).unwrap()
        };
        let said = |s: [&str; 2]| s.map(|s| format!("test accuracy {s}"));
        let standard = Milestones::default;
        let habits = |milestones: &str, test_reached: Vec<Reach>| checkpoint::Habits {
            milestones: Milestones::parse(milestones).unwrap(),
            test_reached,
            ..Default::default()
        };
        let fresh = &Reached::new(standard());
        assert_eq!(
            lines(&run, fresh),
            said(["98%: after epoch 2 (20.3 s)", "99%: after epoch 4 (40.3 s)"])
        );
        // Epoch 2 not checked: 98 % is first known at epoch 3, and so said.
        let unchecked = "not every earlier epoch was checked for it";
        assert_eq!(
            lines(&short, fresh),
            said([
                &format!("98%: by epoch 3 (30.3 s; {unchecked})"),
                &format!("99%: not reached in epoch 3 ({unchecked})"),
            ])
        );
        // Resumed after epoch 1: what the checkpoint's run reached stays
        // its; what this run reaches is timed from the resume.
        let resumed = &Reached::resumed(
            standard(),
            &habits("98,99", vec![Reach::At(1), Reach::Not]),
            1,
        );
        assert_eq!(
            lines(&run[1..], resumed),
            said([
                "98%: after epoch 1 (before the resume)",
                "99%: after epoch 4 (40.3 s after the resume)"
            ])
        );
        // A checkpoint that does not know (an older simplenn's).
        let unknown = &Reached::resumed(standard(), &habits("98,99", vec![]), 1);
        assert_eq!(
            lines(&run[1..3], unknown),
            said([
                &format!("98%: by epoch 2 (20.3 s after the resume; {unchecked})"),
                &format!("99%: not reached in epochs 2–3 ({unchecked})"),
            ])
        );
        assert_eq!(
            lines(&[], unknown)[1],
            "test accuracy 99%: not known (not every epoch was checked for it)"
        );
        // An epoch not checked after others were forgets "none".
        assert_eq!(
            lines(&[epoch(2, Some(979)), epoch(3, None)], unknown)[1],
            "test accuracy 99%: not known (not every epoch was checked for it)"
        );
        // Exact at the milestone, in whole numbers: 9840 of 10,000 is
        // 98.4 % (in f64, 0.984 > 9840.0 / 10000.0), 3 of 7 is below 42.86 %.
        assert!(at_least(9840, 10_000, 98.4) && !at_least(9839, 10_000, 98.4));
        assert!(at_least(9801, 10_000, 98.01) && at_least(9990, 10_000, 99.9));
        assert!(!at_least(3, 7, 42.86) && at_least(3, 7, 42.85));
        assert!(at_least(10, 10, 100.0) && !at_least(9, 10, 100.0));
        let exact = &Reached::new(Milestones::parse("98.4,97.95").unwrap());
        let mut r = exact.clone();
        r.note(1, Some((9840, 10_000)), 1.0);
        assert_eq!(r.reach, [Reach::At(1), Reach::At(1)]);
        // Other milestones, in percent as given: 98.3 % is 983 of 1000.
        let other = &Reached::new(Milestones::parse("98.3,97.95").unwrap());
        assert_eq!(
            all_lines(&run, other),
            said([
                "97.95%: after epoch 2 (20.3 s)",
                "98.3%: after epoch 3 (30.3 s)"
            ])
        );
        // Resumed with milestones the checkpoint's run did not have: what
        // it had is kept, and settles what it can of the others (99 %: not
        // where 98.5 % was not; 96 %: by epoch 1, where 97 % was reached);
        // 98 % is unknown before the resume.
        let saved = habits("97,98.5", vec![Reach::At(1), Reach::Not]);
        let changed = &Reached::resumed(Milestones::parse("96,97,98,99").unwrap(), &saved, 1);
        assert_eq!(
            all_lines(&run[1..3], changed),
            [
                // By epoch 1 is after it: no earlier epoch went unchecked.
                "test accuracy 96%: after epoch 1 (before the resume)".into(),
                "test accuracy 97%: after epoch 1 (before the resume)".into(),
                format!("test accuracy 98%: by epoch 2 (20.3 s after the resume; {unchecked})"),
                "test accuracy 99%: not reached".into(),
            ]
        );
        // What a resumed run learns of a new milestone survives the next
        // resume: none in epochs 2–3, written `none from 2`.
        let saved = habits("97", vec![Reach::At(1)]);
        let changed = &Reached::resumed(Milestones::parse("99").unwrap(), &saved, 1);
        let mut after = changed.clone();
        for &(e, c) in &run[1..3] {
            after.note(e, c.map(|c| (c, 1000)), 0.0);
        }
        assert_eq!(after.reach, [Reach::NotFrom(2)]);
        let saved = habits("99", after.reach.clone());
        let again = &Reached::resumed(Milestones::parse("99").unwrap(), &saved, 3);
        assert_eq!(
            all_lines(&[epoch(4, Some(990))], again),
            [format!(
                "test accuracy 99%: by epoch 4 (40.3 s after the resume; {unchecked})"
            )]
        );
        assert_eq!(
            all_lines(&[epoch(4, Some(989))], again),
            [format!(
                "test accuracy 99%: not reached in epochs 2–4 ({unchecked})"
            )]
        );
        // ...and settles a higher milestone added later.
        let higher = &Reached::resumed(Milestones::parse("99.5").unwrap(), &saved, 3);
        assert_eq!(higher.reach, [Reach::NotFrom(2)]);
        // A milestone between one reached by epoch 1 (and not since: test
        // accuracy can fall) and one not reached from epoch 2 on: by epoch 1.
        let saved = habits("99,99.5", vec![Reach::NotFrom(2), Reach::By(1)]);
        let between = &Reached::resumed(Milestones::parse("99.2").unwrap(), &saved, 3);
        assert_eq!(between.reach, [Reach::By(1)]);
        // The earliest epoch a higher milestone was reached by, and the
        // earliest from which a lower one was not.
        let new =
            |m: &str, saved, before| Reached::resumed(Milestones::parse(m).unwrap(), saved, before);
        let saved = habits("97,98", vec![Reach::At(1), Reach::At(3)]);
        assert_eq!(new("96", &saved, 3).reach, [Reach::By(1)]);
        let saved = habits("90,95", vec![Reach::NotFrom(3), Reach::NotFrom(2)]);
        assert_eq!(new("99", &saved, 3).reach, [Reach::NotFrom(2)]);
        // Hundredths rounded, not cut: 80.1 * 100 is 8009.999… in f64.
        assert!(!at_least(8009, 10_000, 80.1) && at_least(8010, 10_000, 80.1));
        // A checkpoint from inside epoch 1 checked nothing: a milestone
        // reached in epoch 1 is reached after it; none is unknown.
        let saved = habits("97", vec![]);
        let mid = &new("99", &saved, 0);
        assert_eq!(
            all_lines(&[epoch(1, Some(995))], mid),
            ["test accuracy 99%: after epoch 1 (10.3 s)"]
        );
        assert_eq!(
            all_lines(&run[..3], mid),
            ["test accuracy 99%: not reached"]
        );
    }

    #[test]
    fn the_metrics_log_is_whole_whenever_a_checkpoint_is() {
        use crate::data::{TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
        use crate::idx::write_idx;
        let t = tempfile::tempdir().unwrap();
        let pixels = |n: usize| {
            (0..n * 16)
                .map(|i| (i * 37 % 256) as u8)
                .collect::<Vec<_>>()
        };
        let labels = |n: usize| (0..n).map(|i| (i % 3) as u8).collect::<Vec<_>>();
        write_idx(&t.path().join(TRAIN_IMAGES), &[40, 4, 4], &pixels(40)).unwrap();
        write_idx(&t.path().join(TRAIN_LABELS), &[40], &labels(40)).unwrap();
        write_idx(&t.path().join(TEST_IMAGES), &[10, 4, 4], &pixels(10)).unwrap();
        write_idx(&t.path().join(TEST_LABELS), &[10], &labels(10)).unwrap();
        let data = Mnist::open(t.path()).unwrap();
        let dir = t.path().to_str().unwrap();
        let flags = [
            "simplenn",
            "--data",
            dir,
            "--hidden",
            "4",
            "--epochs",
            "4",
            "--val",
            "10",
            "--batch-size",
            "10",
            "--threads",
            "1",
            "--no-progress",
            "--no-save",
        ];
        let cfg = match <crate::cli::Cli as clap::Parser>::try_parse_from(flags)
            .unwrap()
            .into_command()
        {
            crate::cli::Command::Train(a) => a.into_config().unwrap(),
            c => panic!("not train: {c:?}"),
        };
        let log = t.path().join("m.jsonl");
        let at_checkpoint = Arc::new(Mutex::new(Vec::new()));
        let mut out = Watch {
            log: log.clone(),
            at_checkpoint: at_checkpoint.clone(),
        };
        let opts = RunOptions {
            metrics: Some(log.clone()),
            checkpoint: Some(t.path().join("ck.safetensors")),
            checkpoint_every: Some(2),
            ..RunOptions::default()
        };
        // Rewrites after the first wait for a flush: only the flush before
        // each checkpoint can have put epochs 2 and 4 in the log.
        crate::metrics::HOLD_REWRITES.store(true, std::sync::atomic::Ordering::Relaxed);
        let run = train_with(&cfg, &data, opts, &mut out);
        crate::metrics::HOLD_REWRITES.store(false, std::sync::atomic::Ordering::Relaxed);
        run.unwrap();
        assert_eq!(*at_checkpoint.lock().unwrap(), [2, 4]);
    }

    /// The per-epoch line: accuracies as percentages, the test set's only
    /// where it was scored, the epoch number padded to the width of the total.
    #[test]
    fn the_epoch_line_shows_accuracies_as_percentages() {
        let m = Metrics::scored;
        let mut s = EpochStats {
            epoch: 2,
            train_loss: 0.25,
            train_accuracy: 0.5,
            val: Some(m(100, 0.2, 95)),
            test: Some(m(200, 0.1, 150)),
            lr: 0.05,
            seconds: 1.5,
            wall_seconds: 9.0,
            samples_per_sec: 1234.0,
        };
        assert_eq!(
            epoch_line(&s, 10),
            "epoch  2/10  train loss 0.2500  train acc  50.00%  val acc  95.00%  val loss 0.2000  test acc  75.00%  lr 0.0500  1.50 s  1234 samples/s"
        );
        (s.val, s.test) = (None, None);
        assert_eq!(
            epoch_line(&s, 3),
            "epoch 2/3  train loss 0.2500  train acc  50.00%  val -  lr 0.0500  1.50 s  1234 samples/s"
        );
    }

    /// Softmax regression has no hidden layer to thin: one mask per batch
    /// there is input dropout's alone, on the full network.
    #[test]
    fn a_network_without_hidden_layers_is_never_thinned() {
        let reg = Regularisers {
            dropout: 0.2,
            input_dropout: 0.2,
            per_batch: true,
            ..Regularisers::default()
        };
        assert!(!reg.thins(&Dims::mnist(&[])));
        assert!(reg.thins(&Dims::mnist(&[8])));
    }
}
