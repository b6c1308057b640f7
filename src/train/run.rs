//! A run in named steps: open, epochs, evaluate, checkpoint, finish.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::atomic;
use crate::augment::{Augment, Augmenter};
use crate::checkpoint::{self, EpochSoFar, RunShape};
use crate::config::{DropoutMask, TrainConfig};
use crate::data::Mnist;
use crate::eval::{Evaluator, Metrics};
use crate::metrics::{EpochStats, MetricsLog};
use crate::model::{Dims, Params};
use crate::modelfile;
use crate::show;
use crate::signals::{self, INTERRUPTED};

use super::checks::{
    cannot_resume, check_memory, class_counts, learned_nothing, unnamed_classes_seen, unseen_in,
};
use super::progress::{bar_message, epoch_line, progress_bar, stderr_is_a_sized_terminal};
use super::reached::Reached;
use super::stop::{diverged, Diverged, Interrupted, BATCH_LOSS, OPTIMISER_STATE, OUTPUT_BOUND};
use super::trainer::{parts_for, shuffle_epoch, Regularisers, Trainer};
use super::{dims_for, RunOptions, TrainReport};

/// `path` from the root: what a checkpoint records of the run's outputs,
/// for a run resumed from another directory (none where the current
/// directory cannot be read).
fn absolute(path: &Path) -> Option<PathBuf> {
    std::path::absolute(path).ok()
}

/// Training images the last update before a write is checked on.
const CHECK_IMAGES: usize = 256;

/// A run in progress: the trainer and everything around it.
pub(super) struct Run<'a> {
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
    /// [`Checkpoint::last_epoch_loss`](crate::checkpoint::Checkpoint::last_epoch_loss)).
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
    /// `--save`, where its stamp in `stamps` is what the stopped run saw
    /// (from the checkpoint this run resumes), not what this run found.
    save_seen_at_resume: Option<PathBuf>,
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
    pub(super) fn open(
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
        // The binary's flags were checked so (named as flags); a library
        // caller's fields are checked here, named as fields: names for
        // each class (the model and checkpoints written with others would
        // not load again), and no output may be another, or a file of the
        // data set.
        if let Some(n) = opts.class_names.as_ref().filter(|n| n.len() != dims.k()) {
            return Err(crate::error::UsageError(format!(
                "RunOptions.class_names holds {} names, but the run's data has {} classes; give one name a class (classes::NamesFile::for_classes checks a names file so)",
                n.len(),
                dims.k()
            ))
            .into());
        }
        let any_checkpoint = opts
            .checkpoint
            .as_ref()
            .or(opts.interrupt_checkpoint.as_ref());
        crate::cli::check_outputs(
            &[
                ("TrainConfig.save", cfg.save.as_ref()),
                ("RunOptions.checkpoint", any_checkpoint),
                ("RunOptions.metrics", opts.metrics.as_ref()),
            ],
            Some(&data.dir),
        )?;
        // Where a signal's checkpoint goes, too: a path that cannot take
        // one would lose the run at the first Ctrl-C.
        // Named as the flag where it gave the path, else as where it came
        // from, with the flag that puts it elsewhere.
        let checkpoint_flag = match (opts.checkpoint_named, opts.checkpoint.is_some()) {
            (None, _) => "--checkpoint".to_string(),
            (Some(what), true) => format!(
                "{what}, where the run's checkpoints go (--checkpoint PATH puts them elsewhere)"
            ),
            (Some(what), false) => format!(
                "{what}, where a stop (Ctrl-C) writes the run's checkpoint (--checkpoint PATH puts it elsewhere)"
            ),
        };
        if let Some(path) = any_checkpoint {
            atomic::check_dir_named(path, "checkpoint.safetensors")
                .with_context(|| checkpoint_flag.clone())?;
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
        // disk without room, or a file-size limit below the weights (4 bytes
        // each) of the model, or of a planned checkpoint with its optimiser
        // state beside them (a signal's alone is not refused for it).
        let weights = 4 * dims.param_count() as u64;
        let slabs = 1 + checkpoint::state_names(cfg.optimizer).len() as u64;
        for (path, flag, what, need) in [
            (&cfg.save, "--save", "the model", weights),
            (
                &opts.checkpoint,
                checkpoint_flag.as_str(),
                "a checkpoint",
                slabs * weights,
            ),
        ] {
            if let Some(path) = path {
                // (The binary checked the directory with the flags; a
                // library caller's config is checked here, before the
                // work, not when its end has nowhere to go.)
                atomic::check_dir(path).with_context(|| flag.to_string())?;
                atomic::check_room(path, need, what).with_context(|| flag.to_string())?;
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
        // What the stopped run last saw at --save, where this run saves
        // there too: a model another process wrote there after it stopped
        // is then not replaced unseen. Not from a finished run's last
        // checkpoint, which its own model's save followed.
        let its_save_seen = resume.as_ref().and_then(|c| {
            let finished = c.steps >= c.shape.epochs as u64 * c.shape.steps_per_epoch();
            match (&c.habits.save, c.habits.save_seen) {
                (Some(Some(p)), Some(seen))
                    if !finished && cfg.save.as_deref().and_then(absolute).as_ref() == Some(p) =>
                {
                    Some(seen)
                }
                _ => None,
            }
        });
        if let Some(c) = resume {
            trainer.velocity = c.velocity;
            trainer.exp_avg_sq = c.exp_avg_sq;
            trainer.steps = c.steps;
        }
        let (rows, cols) = data.train.side();
        trainer.set_augment(Augmenter::new(cfg.augment, rows, cols, cfg.seed));
        // Whether --metrics is the log the checkpoint names.
        let its_own = |path: &Path| its_log.is_some() && its_log == absolute(path);
        let log_named = opts.metrics.as_deref().is_some_and(its_own);
        let log = match &opts.metrics {
            Some(path) => Some(MetricsLog::open(
                path,
                (trainer.steps / steps_per_epoch) as usize,
                trainer.steps > 0,
                last_epoch_loss,
                its_own(path),
            )?),
            None => None,
        };
        let first_step = trainer.steps;
        let save_seen_at_resume = its_save_seen.and(cfg.save.clone());
        let stamps = [&opts.checkpoint, &opts.interrupt_checkpoint, &cfg.save]
            .into_iter()
            .flatten()
            .map(|p| match (its_save_seen, Some(p) == cfg.save.as_ref()) {
                (Some(seen), true) => (p.clone(), seen),
                _ => (p.clone(), atomic::stamp(p)),
            })
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
            save_seen_at_resume,
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
        run.header(&dims, parts, log_named)?;
        Ok(run)
    }

    /// `log_named`: `--metrics` is the log the resumed checkpoint names.
    fn header(&mut self, dims: &Dims, parts: usize, log_named: bool) -> Result<()> {
        let cfg = self.cfg;
        if let Some(url) = self.opts.live.as_ref().and_then(|l| l.url()) {
            writeln!(self.out, "serving the live page on {url}")?;
        }
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
        // Each class's training images, counted once for both notes.
        let images = class_counts(&self.data.train, self.n_train, dims.k());
        if let Some(note) = unseen_in(&images) {
            writeln!(self.out, "{note}")?;
        }
        let names = self.opts.class_names.as_ref();
        if let Some(note) = unnamed_classes_seen(&images, names) {
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
            if held.is_empty() && log_named {
                // The stopped run's own log, gone since: pointing at "the
                // file the stopped run wrote" would point at itself.
                writeln!(
                    self.out,
                    "note: --metrics {}, the log the stopped run wrote, holds none of the {} before this resume (the file was moved, emptied or deleted since), so it will start at epoch {}; where the earlier log is kept elsewhere, join the two after this run (cat EARLIER.jsonl {} > whole.jsonl)",
                    crate::show::path(path),
                    crate::metrics::epochs(done),
                    done + 1,
                    crate::show::shell_path(path)
                )?;
            } else if held.is_empty() {
                writeln!(
                    self.out,
                    "note: --metrics {} holds none of the {} before this resume, so it will start at epoch {}; to keep one log of the whole run, give the --metrics file the stopped run wrote, if it had one",
                    crate::show::path(path),
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
                let (shell, path) = (crate::show::shell_path(path), crate::show::path(path));
                let missed = crate::show::ranges(&missing);
                // The first epochs only: another file, the log the run had
                // before a resume began this one, holds them, and the two
                // joined are a log this run takes.
                let fix = match missing.len() == missing[missing.len() - 1] {
                    true => format!(
                        "put the log of {word} {missed} before it (cat EARLIER.jsonl {shell} > whole.jsonl) and give --metrics whole.jsonl"
                    ),
                    false => format!("give --metrics a log that holds epochs 1 to {done}"),
                };
                writeln!(
                    self.out,
                    "note: --metrics {path} holds {} of the {} before this resume (not {word} {missed}), so the run's log will lack {them}; to keep one log of the whole run, {fix}",
                    held.len(),
                    crate::metrics::epochs(done),
                )?;
            }
        }
        // A checkpoint from inside an epoch without that epoch's sums (an
        // older build's, or one edited): the epoch's figures cannot be the
        // unbroken run's, and nothing else would tell.
        let into = self.first_step % self.steps_per_epoch.max(1);
        if into > 0 && self.so_far.is_none() {
            writeln!(
                self.out,
                "note: the checkpoint holds no sums of epoch {}'s first {into} {} (an older simplenn wrote it, or it was edited), so that epoch's train loss and accuracy will cover only the batches after this resume",
                done + 1,
                if into == 1 { "batch" } else { "batches" }
            )?;
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
    pub(super) fn epochs(&mut self) -> Result<Vec<EpochStats>> {
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
        let mut bar = progress_bar(self.show, self.steps_per_epoch, epoch, cfg.epochs);
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
                // The stop's notice goes above the bar before the bar goes.
                let _ = signals::await_notice();
                self.stopped = true;
                break;
            }
            lr = cfg
                .schedule
                .lr(cfg.lr, self.trainer.steps, self.total_steps);
            let r = self.trainer.step(&self.data.train, idx, lr);
            // The run's last step, or --stop-after's: a signal after it
            // stops nothing (the checkpoint and the test set follow anyway).
            if self.trainer.steps == self.total_steps.min(self.stop_at()) {
                let stop_after = self.trainer.steps < self.total_steps;
                signals::STOP_AFTER_STEP.store(stop_after, Ordering::SeqCst);
                signals::LAST_STEP_TAKEN.store(true, Ordering::SeqCst);
            }
            let mean = r.loss_sum / idx.len() as f64;
            if diverged(mean) {
                bar.bar.finish_and_clear();
                let mut d = Diverged::new(cfg, epoch, step + 1, BATCH_LOSS, mean);
                d.before_any_update = self.trainer.steps == 1;
                return Err(d.into());
            }
            loss_sum += r.loss_sum;
            correct += r.correct;
            seen += idx.len();
            if let Some(live) = &self.opts.live {
                let t = &self.trainer;
                live.step(&t.params, epoch, t.steps, loss_sum, correct, seen);
            }
            if self.show && step % 16 == 15 {
                bar.refit();
                bar.bar.set_position(step as u64 + 1);
                bar.bar.set_message(bar_message(
                    loss_sum / seen as f64,
                    (seen - seen_before) as f64 / t0.elapsed().as_secs_f64(),
                ));
            }
        }
        let train_secs = t0.elapsed().as_secs_f64();
        bar.bar.finish_and_clear();
        // The loss check sees bad weights only at the next step; the epoch's
        // last update must not reach a checkpoint or the model file unchecked.
        let params = &self.trainer.params;
        if let Some(i) = params.data.iter().position(|w| !w.is_finite()) {
            let step = self.order.len().div_ceil(cfg.batch_size);
            let mut d = Diverged::new(cfg, epoch, step, BATCH_LOSS, f64::NAN);
            // No batch's loss was measured here: a dropout rate's scaling
            // of one is not what these weights say.
            d.extreme_dropout = None;
            return Err(d).with_context(|| format!("parameter {i} is {}", params.data[i]));
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
        let from_checkpoint = self.save_seen_at_resume.as_deref() == Some(path);
        atomic::Guard {
            seen,
            what,
            goes,
            from_checkpoint,
        }
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
            save_seen: (self.model_aside.as_ref().or(self.cfg.save.as_ref()))
                .and_then(|p| self.stamps.iter().find(|(q, _)| q == p))
                .map(|(_, seen)| *seen),
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
    pub(super) fn finish(mut self, epochs: Vec<EpochStats>, t0: Instant) -> Result<TrainReport> {
        if let Some(log) = &mut self.log {
            log.flush();
        }
        let steps = self.trainer.steps;
        let epoch = steps / self.steps_per_epoch;
        // One reading of the flag for all of `finish`, taken once its
        // notice is out: the signal thread sets which stop it is
        // (AFTER_LAST_STEP, PROMISED_CHECKPOINT) after the flag. A signal
        // that comes after this reading finds the last step taken (set
        // before it), so its notice says the run goes on to its end.
        let interrupted = signals::await_notice();
        // A signal after --stop-after's step (its notice said so) stops
        // nothing: the stop is --stop-after's.
        let signalled = interrupted && !signals::AFTER_LAST_STEP.load(Ordering::SeqCst);
        if self.stopped && signalled {
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
                        show::shell_path(&path)
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
            "test accuracy {}% ({} / {}), test loss {}; trained in {:.1} s",
            crate::show::percent(test.accuracy()),
            test.correct,
            test.n,
            crate::show::loss(test.loss),
            train_seconds
        )?;
        let note = {
            let name = crate::classes::name_in(self.opts.class_names.as_ref());
            let (params, data) = (&self.trainer.params, &self.data.test);
            let evaluator = &mut self.evaluator;
            let (train, n_train) = (&self.data.train, self.n_train);
            let mut same_output =
                |data: &crate::data::Dataset, range| evaluator.same_output(params, data, range);
            // Asked only where the test images all got the same output: the
            // validation images, else those the last update was checked on.
            let mut outputs = |test: bool| match (test, n_train < train.len()) {
                (true, _) => same_output(data, 0..data.len()),
                (false, true) => same_output(train, n_train..train.len()),
                (false, false) => same_output(train, 0..n_train.min(CHECK_IMAGES)),
            };
            // (None where there is no hidden layer.)
            let narrowest = self.cfg.hidden.iter().copied().min();
            learned_nothing(&test.confusion, &mut outputs, &name, self.cfg.lr, narrowest)
        };
        if let Some(note) = note {
            writeln!(self.out, "{note}")?;
        }
        // Where the model went, if it was saved.
        let mut saved_to = None;
        if let (Some(wanted), false) = (&self.cfg.save, self.stopped) {
            // Not over a model another run saved there meanwhile.
            let guard = self.guard(wanted, "--save path", "model goes");
            let names = self.opts.class_names.as_ref();
            let failed = self.checkpoint_failure.as_ref();
            let bytes = modelfile::model_bytes(&self.trainer.params, self.data.train.side(), names);
            // The one error line names an incomplete log too (its last
            // rewrite was tried above): the same disk may have failed both.
            let log = match self.log.as_ref().and_then(MetricsLog::failure_and_holds) {
                Some((why, holds)) => {
                    format!(" (nor is its --metrics log complete: {why}; {holds})")
                }
                None => String::new(),
            };
            let (path, _) = atomic::write_guarded(wanted, &bytes, Some(guard)).map_err(|e| {
                // The last epoch's checkpoint holds these very weights,
                // unless it could not be written either.
                match (&self.opts.checkpoint, self.opts.checkpoint_every, failed) {
                    (_, _, Some(ck_error)) => anyhow::anyhow!(
                        "{e:#}; nor could the last checkpoint be written ({ck_error:#}), so the trained weights were not kept{log}"
                    ),
                    (Some(ck), Some(_), None) => anyhow::anyhow!(
                        "{e:#}; the checkpoint {} holds the trained weights (eval, predict and serve read it){log}",
                        ck.display()
                    ),
                    _ if log.is_empty() => e,
                    _ => anyhow::anyhow!("{e:#}{log}"),
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
        if !self.stopped && interrupted && signals::PROMISED_CHECKPOINT.load(Ordering::SeqCst) {
            crate::error::eprint_line(&format!(
                "simplenn: {} after the last step: the run had finished training, so it ran to its end",
                signals::words(signals::stop_signal()).0
            ));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::train_with;

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
        *crate::metrics::HOLD_REWRITES.lock().unwrap() = Some(log.clone());
        let run = train_with(&cfg, &data, opts, &mut out);
        *crate::metrics::HOLD_REWRITES.lock().unwrap() = None;
        run.unwrap();
        assert_eq!(*at_checkpoint.lock().unwrap(), [2, 4]);
    }
}
