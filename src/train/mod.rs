//! The training loop: shuffled minibatches → forward/backward → update,
//! one line per epoch, test accuracy at the end.
//!
//! All work runs on one rayon pool of `min(threads, cores)` threads (a pool
//! of 8 on 2 cores was measured slower than one of 2). Large GEMMs and row passes are
//! cut into `parts = min(threads, cores)` pieces: cutting finer than the
//! hardware can run only repacks operands for nothing. Every cut is
//! on an output dimension and every reduction runs in a fixed order, so the
//! weights after a run depend on the seed alone, not on `threads`.
//!
//! The files: `trainer.rs` one step (the [`Trainer`], its regularisers, the
//! epoch's shuffle, the pool), `run.rs` the run in named steps (open,
//! epochs, evaluate, checkpoint, finish), `checks.rs` what is refused before
//! it starts, `stop.rs` why it ends early ([`Diverged`], [`Interrupted`]),
//! `reached.rs` its milestones, `progress.rs` its per-epoch line and bar.

mod checks;
mod progress;
mod reached;
mod run;
mod stop;
mod trainer;

pub use checks::{cannot_resume, page_bytes, run_bytes, training_bytes, unseen_classes};
pub use progress::epoch_line;
pub use stop::{
    Diverged, Interrupted, BATCH_LOSS, DIVERGED_LOSS, EXTREME_DROPOUT_SCALE, OPTIMISER_STATE,
    OUTPUT_BOUND,
};
pub use trainer::{
    block_rows, parts_for, shuffle_epoch, thread_pool, Regularisers, StepResult, Trainer, MAX_BLOCK,
};

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::Result;

use crate::checkpoint::Checkpoint;
use crate::config::{Milestones, TrainConfig};
use crate::data::Mnist;
use crate::eval::Metrics;
use crate::metrics::EpochStats;
use crate::model::{Dims, Params};
use crate::signals;

use checks::check_config;
use run::Run;

/// What a whole run did.
pub struct TrainReport {
    /// The trained weights (what `--save` writes).
    pub params: Params,
    /// One line of figures an epoch, as `--metrics` logs them.
    pub epochs: Vec<EpochStats>,
    /// The final model on the test set.
    pub test: Metrics,
    /// Wall time of the epochs (training and validation), without the test.
    pub train_seconds: f64,
    /// The run stopped early (`RunOptions::stop_after_steps`): no final model was saved.
    pub stopped: bool,
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
    /// How messages name `checkpoint` (or `interrupt_checkpoint`) where
    /// the run's caller chose it rather than a `--checkpoint` flag: "the
    /// --resume file", "the default --checkpoint". `None`: `--checkpoint`.
    pub checkpoint_named: Option<&'static str>,
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

/// The network `cfg` trains on `data`: `D` from the images, `K` from the
/// labels (or `--classes`), the hidden widths from the flags.
pub fn dims_for(cfg: &TrainConfig, data: &Mnist) -> Dims {
    Dims::new(data.train.pixels(), &cfg.hidden, data.classes)
}

/// Train on `data` as `cfg` says, writing one line per epoch to `out`.
pub fn train(cfg: &TrainConfig, data: &Mnist, out: &mut (dyn Write + Send)) -> Result<TrainReport> {
    train_with(cfg, data, RunOptions::default(), out)
}

/// [`train`] with resuming, checkpoints, a metrics log or an early stop.
pub fn train_with(
    cfg: &TrainConfig,
    data: &Mnist,
    opts: RunOptions,
    out: &mut (dyn Write + Send),
) -> Result<TrainReport> {
    check_config(cfg, data, opts.resume.is_some())?;
    if opts.checkpoint_every == Some(0) {
        return Err(crate::error::UsageError(
            "RunOptions.checkpoint_every is Some(0): give at least 1 (epochs between checkpoints), or None".into(),
        )
        .into());
    }
    let pool = thread_pool(cfg.threads)?;
    // A library caller's second run has its own last step.
    signals::LAST_STEP_TAKEN.store(false, Ordering::SeqCst);
    signals::STOP_AFTER_STEP.store(false, Ordering::SeqCst);
    signals::AFTER_LAST_STEP.store(false, Ordering::SeqCst);
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
