//! Command-line flags (clap derive), parsed low and resolved into a plain
//! [`TrainConfig`]. No file is written here; the looks at the file system
//! are resolving output paths (links, `.`, `..`) to refuse two outputs that
//! are one file ([`check_outputs`]), and reading the first bytes of an
//! existing output to refuse replacing a file of another kind
//! ([`crate::atomic::check_replaceable`]).
//!
//! `simplenn [FLAGS]` trains (train is the default subcommand), and
//! `simplenn train|eval|predict|plot|augment|serve ...` name a subcommand.
//!
//! The files: `flags.rs` the flags (clap derive) and their help, `values.rs`
//! the parsers of their values, `outputs.rs` output paths compared as files,
//! `hints.rs` what a refused command line was meant to be; this one resolves
//! the flags (with a `--resume` checkpoint's) into a [`TrainConfig`] and
//! [`RunPlan`].

mod flags;
mod hints;
mod outputs;
mod values;

pub use flags::{
    preset_defaults, Args, AugmentArgs, Cli, Command, EvalArgs, PlotArgs, PredictArgs, ServeArgs,
};
pub use hints::{commands_with_flag, dash_value_fix, flags_starting_with, DashRefusal};
pub use outputs::{
    check_outputs, check_std_streams, check_std_streams_for, check_stdout_output, file_identity,
};
pub use values::{
    parse_augment, parse_f32, parse_hidden, parse_holds_one, parse_host, parse_max_norm,
    path_parser, Hidden, MaxNorm,
};

pub use crate::config::Preset;
pub use crate::error::UsageError;

use std::path::PathBuf;

use crate::augment::{Augment, ELASTIC_ALPHA, ELASTIC_SIGMA};
use crate::checkpoint::RunShape;
use crate::config::{DropoutMask, TrainConfig, MAX_EPOCHS};
use crate::model::hidden_name;
use crate::optim::{self, Kind};
use crate::show::{number, shortest};

/// The data directory when `--data` is left out and nothing else names one
/// (see [`crate::data::resolve_dir`] for the places looked at).
pub const DEFAULT_DATA: &str = "data/mnist";

/// The files and stopping point of a run, beside its [`TrainConfig`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunPlan {
    pub resume: Option<PathBuf>,
    /// Where checkpoints go, when any are written.
    pub checkpoint: Option<PathBuf>,
    /// Where a run stopped by a signal writes its checkpoint when
    /// `checkpoint` is `None`; `None`: nowhere (`--no-save`).
    pub interrupt_checkpoint: Option<PathBuf>,
    /// How messages name the checkpoint's path where no `--checkpoint`
    /// gave it ([`crate::train::RunOptions::checkpoint_named`]).
    pub checkpoint_named: Option<&'static str>,
    pub checkpoint_every: Option<usize>,
    /// Stop after this many epochs.
    pub stop_after: Option<usize>,
    pub metrics: Option<PathBuf>,
    pub test_every_epoch: bool,
}

/// Where the model goes without --save (or a --resume checkpoint that records one).
pub const DEFAULT_SAVE: &str = "model.safetensors";

/// Default checkpoint path when neither --checkpoint nor --resume names one.
pub const DEFAULT_CHECKPOINT: &str = "checkpoint.safetensors";

/// Keep a flag's value, taking the checkpoint's when the flag is absent, and
/// note a contradiction when both are there and differ.
fn merge<T: PartialEq + Clone>(
    flag: &str,
    given: Option<T>,
    saved: Option<T>,
    show: impl Fn(T) -> String,
    conflicts: &mut Vec<String>,
) -> Option<T> {
    match (given, saved) {
        (Some(g), Some(s)) if g != s => {
            conflicts.push(format!(
                "{flag} {} (checkpoint: {})",
                show(g.clone()),
                show(s)
            ));
            Some(g)
        }
        (g, s) => g.or(s),
    }
}

/// `--threads`: absent means one per core; otherwise 1 to [`MAX_THREADS`].
pub fn resolve_threads(flag: Option<i64>) -> Result<usize, UsageError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match flag {
        None => Ok(cores),
        Some(n) if n >= 1 && n <= MAX_THREADS as i64 => Ok(n as usize),
        Some(n) => Err(UsageError(format!(
            "--threads {n}: must be between 1 and {MAX_THREADS}; leave it out to use one per core ({cores} here)"
        ))),
    }
}

/// The most threads a pool may have: far beyond any sane machine, low
/// enough that a typo cannot exhaust the process table.
pub const MAX_THREADS: usize = 1024;

impl Args {
    /// Resolve presets and defaults, and check every value's range. The
    /// data directory is taken as given (`data/mnist` where `--data` is
    /// not): the binary first sets `data` to [`crate::data::resolve_dir`]'s
    /// answer, which looks in `$SIMPLENN_DATA`, `./data/mnist` and the
    /// source tree's copy, and a program that wants the same does so too.
    pub fn into_config(self) -> Result<TrainConfig, UsageError> {
        self.into_plan(None).map(|(c, _)| c)
    }

    /// Resolve the flags as [`Args::into_config`] does, and the run's files.
    /// With `saved` (the shape of the `--resume` checkpoint), flags left out
    /// take the checkpoint's values and a flag that differs is refused.
    pub fn into_plan(self, saved: Option<&RunShape>) -> Result<(TrainConfig, RunPlan), UsageError> {
        let bad = |m: String| Err(UsageError(m));
        let mut conflicts = Vec::new();
        let c = &mut conflicts;
        let s = saved;
        let save = self
            .save
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SAVE));
        // Checkpoints from before presets were recorded: the init tells.
        let preset = merge(
            "--preset",
            self.preset,
            s.map(|s| s.preset),
            |p| p.name().into(),
            c,
        )
        .unwrap_or(Preset::Default);
        let d = preset.defaults();
        let show = |v: f32| v.to_string();
        let epochs = merge(
            "--epochs",
            self.epochs,
            s.map(|s| s.epochs),
            |v| v.to_string(),
            c,
        )
        .unwrap_or(d.epochs);
        let optimizer = merge(
            "--optimizer",
            self.optimizer,
            s.map(|s| s.optimizer),
            |k| k.name().into(),
            c,
        )
        .unwrap_or(d.optimizer);
        let adam = optimizer.is_adam();
        // A preset's lr, momentum and weight decay are for its own optimiser;
        // another one chosen by flag starts from that one's defaults.
        let family = adam == d.optimizer.is_adam();
        let lr = merge("--lr", self.lr, s.map(|s| s.lr), show, c).unwrap_or(match (family, adam) {
            (true, _) => d.lr,
            (false, true) => optim::ADAM_LR,
            (false, false) => optim::SGD_LR,
        });
        // A checkpoint's values of another optimiser's flags are not its
        // run's (an adam run has no momentum, an sgd one no betas): such a
        // flag is refused below for its optimiser, not as a contradiction.
        let (sgd_saved, adam_saved) = (
            s.filter(|s| !s.optimizer.is_adam()),
            s.filter(|s| s.optimizer.is_adam()),
        );
        let momentum = merge(
            "--momentum",
            self.momentum,
            sgd_saved.map(|s| s.momentum),
            show,
            c,
        )
        .unwrap_or(match (family, adam) {
            (_, true) => 0.0,
            (true, false) => d.momentum,
            (false, false) => optim::SGD_MOMENTUM,
        });
        let beta1 = merge("--beta1", self.beta1, adam_saved.map(|s| s.beta1), show, c)
            .unwrap_or(optim::BETA1);
        let beta2 = merge("--beta2", self.beta2, adam_saved.map(|s| s.beta2), show, c)
            .unwrap_or(optim::BETA2);
        // Both values the shorter way: the checkpoint's 1e-8 as the header
        // prints it (not 0.00000001), a given 0.1 as typed (not 1e-1).
        let eps = merge(
            "--eps",
            self.eps,
            adam_saved.map(|s| s.eps),
            crate::show::shortest,
            c,
        )
        .unwrap_or(optim::EPS);
        let weight_decay = merge(
            "--weight-decay",
            self.weight_decay,
            s.map(|s| s.weight_decay),
            show,
            c,
        )
        .unwrap_or(if optimizer == d.optimizer {
            d.weight_decay
        } else if optimizer == Kind::Adamw {
            optim::ADAMW_WEIGHT_DECAY
        } else {
            0.0
        });
        let no_decay_bias = merge(
            "--no-decay-bias",
            self.no_decay_bias.then_some(true),
            s.map(|s| !s.decay_bias),
            |v| if v { "given" } else { "not given" }.into(),
            c,
        )
        .unwrap_or(false);
        let max_norm = merge(
            "--max-norm",
            self.max_norm.map(|m| m.0),
            s.map(|s| s.max_norm),
            crate::checkpoint::max_norm_name,
            c,
        )
        .unwrap_or(d.max_norm);
        let input_dropout = merge(
            "--input-dropout",
            self.input_dropout,
            s.map(|s| s.input_dropout),
            show,
            c,
        )
        .unwrap_or(d.input_dropout);
        let dropout =
            merge("--dropout", self.dropout, s.map(|s| s.dropout), show, c).unwrap_or(d.dropout);
        let dropout_mask = merge(
            "--dropout-mask",
            self.dropout_mask,
            s.map(|s| s.dropout_mask),
            |v| v.name().into(),
            c,
        )
        .unwrap_or(d.dropout_mask);
        let schedule = merge(
            "--schedule",
            self.schedule,
            s.map(|s| s.schedule),
            |v| v.name().into(),
            c,
        )
        .unwrap_or(d.schedule);
        let hidden = merge(
            "--hidden",
            self.hidden.clone().map(|h| h.0),
            s.map(|s| s.hidden.clone()),
            |v| hidden_name(&v),
            c,
        )
        .unwrap_or(d.hidden);
        let classes = merge(
            "--classes",
            self.classes,
            s.map(|s| s.classes),
            |v| v.to_string(),
            c,
        );
        let saved_augment = s.map(|s| s.augment);
        let augment = match saved_augment {
            // Resuming an elastic run with σ or α alone: each flag against
            // the checkpoint's value, the other one kept.
            Some(Augment::Elastic { sigma, alpha }) if self.augment.is_none() => {
                let sigma = merge("--elastic-sigma", self.elastic_sigma, Some(sigma), show, c);
                let alpha = merge("--elastic-alpha", self.elastic_alpha, Some(alpha), show, c);
                Augment::parse("elastic", sigma.unwrap(), alpha.unwrap())?
            }
            // Otherwise the flags read against the checkpoint's distortion
            // (its σ and α where --augment elastic leaves them out), else the
            // preset's.
            _ => {
                let given = self.augment_flags(saved_augment.unwrap_or(d.augment), s.is_some())?;
                merge("--augment", given, saved_augment, |v| v.describe(), c).unwrap_or(d.augment)
            }
        };
        let seed_value =
            merge("--seed", self.seed, s.map(|s| s.seed), |v| v.to_string(), c).unwrap_or(1);
        let val =
            merge("--val", self.val, s.map(|s| s.val), |v| v.to_string(), c).unwrap_or(DEFAULT_VAL);
        let batch_size = merge(
            "--batch-size",
            self.batch_size,
            s.map(|s| s.batch_size),
            |v| v.to_string(),
            c,
        );
        let init = s.map_or(d.init, |s| s.init);
        if !conflicts.is_empty() {
            let path = self.resume.as_deref().unwrap_or(std::path::Path::new("-"));
            let one = conflicts.len() == 1;
            return bad(format!(
                "--resume {}: {} contradict{} the checkpoint; drop {} to continue that run, or start a new run without --resume",
                path.display(),
                conflicts.join(", "),
                if one { "s" } else { "" },
                if one { "that flag" } else { "those flags" }
            ));
        }
        if let Some(0) = self.checkpoint_every {
            return bad(
                "--checkpoint-every 0: must be at least 1 (epochs between checkpoints)".into(),
            );
        }
        if epochs == 0 || epochs > MAX_EPOCHS {
            return bad(format!(
                "--epochs {epochs}: must be between 1 and {MAX_EPOCHS}, e.g. 20"
            ));
        }
        if let Some(n) = self.stop_after {
            if epochs == 1 {
                // A resumed run cannot change its epochs.
                let or_more = if self.resume.is_none() {
                    ", or train for --epochs 2 or more"
                } else {
                    ""
                };
                return bad(format!(
                    "--stop-after {n}: a 1-epoch run has no epoch to stop after before its end; leave it out{or_more}"
                ));
            }
            if n == 0 || n >= epochs {
                // A resumed run's lower bound is the checkpoint's progress,
                // which `app::train` checks (and names) once it is known.
                if self.resume.is_some() && n > 0 {
                    return bad(format!(
                        "--stop-after {n}: must be below the run's {epochs} epochs (it counts from the run's start); leave it out to train to the end"
                    ));
                }
                // (One epoch was refused above.)
                return bad(match epochs {
                    2 => format!("--stop-after {n}: must be 1, the one epoch before the last of --epochs 2"),
                    _ => format!(
                        "--stop-after {n}: must be an epoch before the last, 1 to {} (--epochs {epochs})",
                        epochs - 1
                    ),
                });
            }
        }
        // `--checkpoint PATH` alone: one checkpoint, after the last epoch.
        let checkpoint_every = self
            .checkpoint_every
            .or(self.checkpoint.as_ref().map(|_| epochs));
        // Else beside the model, where Ctrl-C puts its checkpoint too.
        let checkpoint = (checkpoint_every.is_some() || self.stop_after.is_some()).then(|| {
            self.checkpoint
                .clone()
                .or_else(|| self.resume.clone())
                .unwrap_or_else(|| match self.no_save {
                    false => save.with_file_name(DEFAULT_CHECKPOINT),
                    true => PathBuf::from(DEFAULT_CHECKPOINT),
                })
        });
        // Ctrl-C with no checkpoint path: the --resume file (so that the
        // usual `--resume` continues from the latest state), else where
        // --stop-after would put one, beside the --save model.
        let interrupt_checkpoint = self
            .resume
            .clone()
            .or_else(|| (!self.no_save).then(|| save.with_file_name(DEFAULT_CHECKPOINT)));
        let checkpoint_flag = match self.checkpoint {
            Some(_) => "--checkpoint",
            None => "the default --checkpoint",
        };
        let checkpoint_named = match (&self.checkpoint, &self.resume) {
            (Some(_), _) => None,
            (None, Some(_)) => Some("the --resume file"),
            (None, None) => Some("the default --checkpoint"),
        };
        // Every file a checkpoint may be written to, by plan or by a
        // signal, must be no other output's (the --resume file, where a
        // signal's checkpoint goes when resuming, is checked below).
        let any_checkpoint = checkpoint.as_ref().or(interrupt_checkpoint
            .as_ref()
            .filter(|_| self.resume.is_none()));
        let outputs = [
            ("--save", (!self.no_save).then_some(&save)),
            (checkpoint_flag, any_checkpoint),
            ("--metrics", self.metrics.as_ref()),
        ];
        check_outputs(&outputs, self.data.as_deref())?;
        // The run reports on standard output and error as it goes: an
        // output that is either would be replaced under the report.
        for (flag, out) in outputs.iter().filter_map(|(f, o)| Some((f, (*o)?))) {
            if let Some(stream) = crate::atomic::std_stream(out) {
                let file = crate::atomic::destination(out);
                let (that, fix) = match file == *out {
                    // `--metrics log > log`
                    true => (
                        format!("is also standard {stream}"),
                        format!("send standard {stream} elsewhere, or choose another path"),
                    ),
                    // `--metrics /dev/stdout > log`
                    false => (
                        format!("is standard {stream}, the file {}", file.display()),
                        format!(
                            "pass {flag} {} and send standard {stream} elsewhere",
                            file.display()
                        ),
                    ),
                };
                return bad(format!(
                    "{flag} {}: that {that}, where the run reports as it goes; each save would replace the file and what was reported with it: {fix}",
                    out.display(),
                ));
            }
        }
        // Checkpoints go to the --resume file by default, but nothing else may.
        if let Some(resume) = &self.resume {
            let others = outputs
                .iter()
                .filter(|(flag, _)| !flag.ends_with("--checkpoint"));
            for (flag, out) in others {
                if let Some(out) = out.filter(|o| file_identity(o) == file_identity(resume)) {
                    return bad(format!(
                        "{flag} {}: that is the checkpoint --resume reads; choose another path",
                        out.display()
                    ));
                }
            }
        }
        // Last, a file of another kind (after the checks above, which name
        // more exactly what is wrong with the run's own stdout or stderr, or
        // with the --resume file).
        for (flag, out) in outputs.iter().filter_map(|(f, o)| Some((f, (*o)?))) {
            if out.as_os_str() == "-" {
                let example = match *flag {
                    "--metrics" => "metrics.jsonl",
                    "--save" => "model.safetensors",
                    _ => "checkpoint.safetensors",
                };
                return bad(format!(
                    "{flag} -: simplenn writes this to a file, not to standard output (where the run reports); name a file, e.g. {example}"
                ));
            }
            let kind = match *flag {
                "--metrics" => crate::atomic::Kind::Log,
                _ => crate::atomic::Kind::Model,
            };
            crate::atomic::check_replaceable(flag, out, kind)?;
        }
        let plan = RunPlan {
            resume: self.resume.clone(),
            checkpoint,
            interrupt_checkpoint,
            checkpoint_named,
            checkpoint_every,
            stop_after: self.stop_after,
            metrics: self.metrics.clone(),
            test_every_epoch: self.test_every_epoch,
        };
        if let Some(k) = classes {
            if !(2..=crate::modelfile::MAX_CLASSES).contains(&k) {
                return bad(format!(
                    "--classes {k}: must be between 2 and 256 (labels are bytes); leave it out to take the largest training label + 1"
                ));
            }
        }
        if !(lr.is_finite() && lr > 0.0 && f64::from(lr) <= crate::config::MAX_LR) {
            return bad(format!(
                "--lr {}: must be a number in (0, 100], e.g. 0.1",
                number(lr)
            ));
        }
        if !(momentum.is_finite() && (0.0..1.0).contains(&momentum)) {
            return bad(format!(
                "--momentum {}: must be in [0, 1), e.g. 0.9",
                number(momentum)
            ));
        }
        if !(dropout.is_finite() && (0.0..1.0).contains(&dropout)) {
            return bad(format!(
                "--dropout {}: must be in [0, 1), e.g. 0.2",
                number(dropout)
            ));
        }
        if !(input_dropout.is_finite() && (0.0..1.0).contains(&input_dropout)) {
            return bad(format!(
                "--input-dropout {}: must be in [0, 1), e.g. 0.2",
                number(input_dropout)
            ));
        }
        // Softmax regression has no hidden unit to drop.
        if let Some(p) = self.dropout.filter(|&p| p > 0.0 && hidden.is_empty()) {
            return bad(format!(
                "--dropout {p}: --hidden none has no hidden layer to drop units from; use --input-dropout {p} to drop pixels, or leave --dropout out"
            ));
        }
        let hidden_dropout = if hidden.is_empty() { 0.0 } else { dropout };
        if self.dropout_mask == Some(DropoutMask::Batch)
            && hidden_dropout == 0.0
            && input_dropout == 0.0
        {
            let give = if hidden.is_empty() {
                "--input-dropout 0.2"
            } else {
                "--dropout 0.5 (or --input-dropout 0.2)"
            };
            return bad(format!(
                "--dropout-mask batch: this run has no dropout to draw masks for; give {give}, or leave --dropout-mask out"
            ));
        }
        // A resumed run keeps its checkpoint's optimiser, so the fix is to
        // drop the flag, not to change the optimiser.
        if let Some(m) = self.momentum.filter(|_| adam) {
            return bad(match s {
                Some(_) => format!(
                    "--momentum {m}: momentum is sgd's and nesterov's flag, and the checkpoint's run uses {}; drop --momentum to continue that run",
                    optimizer.name()
                ),
                None => format!(
                    "--momentum {m}: momentum is sgd's and nesterov's flag; {} takes its momentum as --beta1 (e.g. --beta1 0.9)",
                    optimizer.name()
                ),
            });
        }
        for (flag, given) in [
            ("--beta1", self.beta1),
            ("--beta2", self.beta2),
            ("--eps", self.eps),
        ] {
            if let (Some(v), false) = (given, adam) {
                let fix = match s {
                    Some(_) => format!(
                        "the checkpoint's run uses {}; drop {flag} to continue that run",
                        optimizer.name()
                    ),
                    None => format!("use --optimizer adam (or adamw), or leave {flag} out"),
                };
                return bad(format!(
                    "{flag} {}: it is adam's and adamw's flag, not {}'s; {fix}",
                    shortest(v),
                    optimizer.name()
                ));
            }
        }
        if optimizer == Kind::Nesterov && momentum == 0.0 {
            // A momentum of 0 the user did not type is the checkpoint's or
            // the preset's.
            let whose = match (self.momentum, s) {
                (Some(_), _) => String::new(),
                (None, Some(_)) => " (the checkpoint's is 0)".to_string(),
                (None, None) => format!(" (the {} preset's is 0)", preset.name()),
            };
            return bad(format!(
                "--optimizer nesterov needs momentum above 0{whose}: give --momentum 0.9, or use --optimizer sgd"
            ));
        }
        for (flag, b, eg) in [("--beta1", beta1, "0.9"), ("--beta2", beta2, "0.999")] {
            if !(b.is_finite() && (0.0..1.0).contains(&b)) {
                return bad(format!(
                    "{flag} {}: must be in [0, 1), e.g. {eg}",
                    number(b)
                ));
            }
        }
        if !(eps.is_finite() && eps > 0.0) {
            return bad(format!(
                "--eps {}: must be a finite number above 0, e.g. 1e-8",
                number(eps)
            ));
        }
        if !(weight_decay.is_finite() && weight_decay >= 0.0) {
            return bad(format!(
                "--weight-decay {}: must be a finite number, 0 or more, e.g. 0.0005 (sgd) or 0.01 (adamw)",
                number(weight_decay)
            ));
        }
        // sgd and adamw scale the weights by 1 − lr·wd a step, nesterov by
        // 1 − lr·wd·(1 + μ) (adam divides its L2 term by the gradient's
        // scale): from there 1 or more, the step zeroes or flips them, and
        // the run trains nothing. A run of an older build may have
        // checkpointed such a run: it resumes as it was (and, should it
        // diverge, is told so then).
        let factor = crate::optim::decay_factor(optimizer, lr, weight_decay, momentum);
        if s.is_none() && crate::optim::decay_zeroes(optimizer, lr, weight_decay, momentum) {
            // The usual value where it fits this lr, else a power of ten a
            // tenth of the way to the limit.
            let usual = if optimizer == Kind::Adamw {
                0.01
            } else {
                0.0005
            };
            let fits = |wd: f32| !crate::optim::decay_zeroes(optimizer, lr, wd, momentum);
            let example = match fits(usual) {
                true => usual,
                false => {
                    let scale = if optimizer == Kind::Nesterov {
                        1.0 + momentum
                    } else {
                        1.0
                    };
                    let limit = 1.0 / (f64::from(lr) * f64::from(scale));
                    10f64.powf(limit.log10().floor() - 1.0) as f32
                }
            };
            return bad(format!(
                "--weight-decay {} with --lr {}: {} scales the weights by {} = {} a step, which zeroes or flips them; lower either so that {} < 1 (e.g. --weight-decay {})",
                number(weight_decay),
                number(lr),
                optimizer.name(),
                if optimizer == Kind::Nesterov { "1 − lr·wd·(1 + momentum)" } else { "1 − lr·wd" },
                number(factor as f32),
                if optimizer == Kind::Nesterov { "lr·wd·(1 + momentum)" } else { "lr·wd" },
                number(example)
            ));
        }
        if self.no_decay_bias && weight_decay == 0.0 {
            return bad(
                "--no-decay-bias: this run has no weight decay to keep off the biases; give --weight-decay (e.g. 0.01), or leave --no-decay-bias out"
                    .into(),
            );
        }
        if let Some(m) = max_norm.filter(|m| !(m.is_finite() && *m > 0.0)) {
            return bad(format!(
                "--max-norm {}: must be a finite number above 0, e.g. 2 (dropout2014) or 3.5; none (or leaving it out, without a preset that sets it) for no constraint",
                number(m)
            ));
        }
        if let Some(0) = batch_size {
            return bad("--batch-size 0: must be at least 1, e.g. 128".into());
        }
        let threads = resolve_threads(self.threads)?;
        let config = TrainConfig {
            data_dir: self.data.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA)),
            epochs,
            // 0 = the whole training split; checked against the data once it is open.
            batch_size: batch_size.unwrap_or(d.batch_size),
            hidden,
            classes,
            lr,
            momentum,
            schedule,
            optimizer,
            beta1,
            beta2,
            eps,
            weight_decay,
            decay_bias: !no_decay_bias,
            max_norm,
            input_dropout,
            // None without a hidden layer, whatever the preset's default.
            dropout: hidden_dropout,
            dropout_mask,
            augment,
            init,
            preset,
            seed: seed_value,
            val,
            save: (!self.no_save).then_some(save),
            threads,
            progress: !self.no_progress,
        };
        Ok((config, plan))
    }
}

impl Args {
    /// `--augment` with `--elastic-sigma/alpha`, `None` when none of them
    /// is given. The σ and α flags alone adjust `base`'s elastic
    /// distortion (the preset's, or the `--resume` checkpoint's where
    /// `resuming`), and are refused with any other kind.
    fn augment_flags(&self, base: Augment, resuming: bool) -> Result<Option<Augment>, UsageError> {
        let (sigma, alpha) = (self.elastic_sigma, self.elastic_alpha);
        let kind = match (&self.augment, base) {
            (Some(k), _) => k.clone(),
            (None, _) if sigma.is_none() && alpha.is_none() => return Ok(None),
            (None, p) => p.name(),
        };
        let (ds, da) = match base {
            Augment::Elastic { sigma, alpha } => (sigma, alpha),
            _ => (ELASTIC_SIGMA, ELASTIC_ALPHA),
        };
        parse_augment(&kind, sigma, alpha, (ds, da))
            .map_err(|e| {
                match (
                    resuming && self.augment.is_none(),
                    e.0.split_once(" (this run: "),
                ) {
                    // The kind is the checkpoint's, which no flag can change.
                    (true, Some((flag, _))) => UsageError(format!(
                    "{flag} (the checkpoint's run: --augment {kind}); drop it to continue that run"
                )),
                    _ => e,
                }
            })
            .map(Some)
    }
}

/// Images `--val` holds out when not given (`--help` says so too).
const DEFAULT_VAL: usize = 5000;

/// Check the flags that depend on the data's size, once it is open, and
/// resolve `batch_size = 0` (the seed preset's full batch) to the training split.
/// A `resumed` run keeps the distortion its checkpoint trained with, as far
/// as it can be computed ([`crate::augment::Augment::check_fits`]).
pub fn fit_to_data(
    config: &TrainConfig,
    train_images: usize,
    (rows, cols): (usize, usize),
    resumed: bool,
) -> Result<TrainConfig, UsageError> {
    let mut c = config.clone();
    if c.val >= train_images {
        let images = if train_images == 1 { "image" } else { "images" };
        // With the batch size each would need, where this one is larger
        // than what it leaves to train on (the next error, else).
        let batch = |held: usize| {
            let left = train_images - held;
            match c.batch_size > left {
                true => format!(" with --batch-size {left} or less"),
                false => String::new(),
            }
        };
        let fewer = match train_images / 10 {
            0 => format!("--val 0 (none){}", batch(0)),
            tenth => format!(
                "--val {tenth} (a tenth){}, or --val 0 (none){}",
                batch(tenth),
                batch(0)
            ),
        };
        // Said so where it is the default, for a user who gave no --val
        // (the value alone does not tell whether one was given).
        let whose = match c.val == DEFAULT_VAL {
            true => " (the default where --val is not given)".to_string(),
            false => String::new(),
        };
        return Err(UsageError(format!(
            "--val {}{whose}: the training file has only {train_images} {images}; hold out fewer, e.g. {fewer}",
            c.val
        )));
    }
    let n_train = train_images - c.val;
    match resumed {
        false => c.augment.check_size(rows, cols, true)?,
        true => c.augment.check_fits(rows, cols, true)?,
    }
    if c.batch_size == 0 {
        c.batch_size = n_train;
    }
    if c.batch_size > n_train {
        let split = match c.val {
            0 => String::new(),
            v => format!(" ({train_images} in the file, {v} held out by --val)"),
        };
        // Holding out fewer helps only where the whole file holds a batch.
        let or_val = match (c.val > 0, train_images.checked_sub(c.batch_size)) {
            (true, Some(0)) => ", or --val 0".to_string(),
            (true, Some(most)) => format!(", or --val {most} or less"),
            _ => String::new(),
        };
        // Said as the batch size, not as a flag: it may be the default,
        // or a preset's (said so, where it is that preset's value).
        let images = if n_train == 1 { "image" } else { "images" };
        let whose = match (c.batch_size == c.preset.defaults().batch_size, c.preset) {
            (false, _) => String::new(),
            (true, crate::config::Preset::Default) => ", the default".to_string(),
            (true, p) => format!(", the {} preset's", p.name()),
        };
        return Err(UsageError(format!(
            "the batch size ({}{whose}) is larger than the {n_train} training {images}{split}; pass --batch-size {n_train} or less{or_val}",
            c.batch_size
        )));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    use crate::config::Schedule;

    use crate::model::Init;

    fn args(args: &[&str]) -> Result<Args, String> {
        let cli = Cli::try_parse_from(std::iter::once("simplenn").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        match cli.into_command() {
            Command::Train(a) => Ok(a),
            c => Err(format!("not train: {c:?}")),
        }
    }

    /// `--resume ck` with `flags`, against a checkpoint of shape `s`: the
    /// run's config, or the refusal.
    fn resumed(s: &RunShape, flags: &[&str]) -> Result<TrainConfig, String> {
        let a: Vec<&str> = ["--resume", "ck"].iter().chain(flags).copied().collect();
        args(&a)?
            .into_plan(Some(s))
            .map(|(c, _)| c)
            .map_err(|e| e.to_string())
    }

    fn parse(a: &[&str]) -> Result<TrainConfig, String> {
        args(a)?.into_config().map_err(|e| e.to_string())
    }

    /// Word values are read in any case, as `--hidden NONE` always was:
    /// the same config as in lower case; a bad word is quoted as given.
    #[test]
    fn word_values_take_any_case() {
        let pairs: [(&[&str], &[&str]); 5] = [
            (&["--preset", "Simard2003"], &["--preset", "simard2003"]),
            (
                &["--optimizer", "SGD", "--schedule", "Constant"],
                &["--optimizer", "sgd", "--schedule", "constant"],
            ),
            (&["--max-norm", "NONE"], &["--max-norm", "none"]),
            (&["--augment", "SHIFT:2"], &["--augment", "shift:2"]),
            (&["--dropout-mask", "Batch"], &["--dropout-mask", "batch"]),
        ];
        for (upper, lower) in pairs {
            let (u, l) = (parse(upper).unwrap(), parse(lower).unwrap());
            assert_eq!(format!("{u:?}"), format!("{l:?}"), "{upper:?}");
        }
        let e = parse(&["--augment", "WOBBLE"]).unwrap_err();
        assert!(e.contains("--augment WOBBLE"), "{e}");
    }

    /// lr·wd is the product of the decimals given: exactly 1 is refused
    /// whichever way the two `f32`s round (0.01 × 100 multiplies to
    /// 0.99999998 in `f32`s, and was let through), and the refusal says the
    /// factor is 0.
    #[test]
    fn weight_decay_that_zeroes_the_weights_is_refused_at_exactly_one() {
        for (lr, wd) in [
            ("0.01", "100"),
            ("100", "0.01"),
            ("0.5", "2"),
            ("0.1", "10"),
        ] {
            let e = parse(&["--lr", lr, "--weight-decay", wd]).unwrap_err();
            assert!(e.contains("1 − lr·wd = 0 a step"), "{lr} × {wd}: {e}");
        }
        for (lr, wd) in [("0.01", "99.99"), ("0.1", "0.0005")] {
            assert!(
                parse(&["--lr", lr, "--weight-decay", wd]).is_ok(),
                "{lr} × {wd}"
            );
        }
        // Nesterov's look-ahead applies the decay (1 + μ) times a step:
        // with μ 0.9, from lr·wd = 1/1.9.
        let nesterov = |wd| {
            let mut args = vec!["--optimizer", "nesterov", "--lr", "0.1"];
            args.extend(["--momentum", "0.9", "--weight-decay", wd]);
            parse(&args)
        };
        let e = nesterov("5.3").unwrap_err();
        assert!(
            e.contains("nesterov scales the weights by 1 − lr·wd·(1 + momentum) = -0.007 a step"),
            "{e}"
        );
        assert!(e.contains("so that lr·wd·(1 + momentum) < 1"), "{e}");
        assert!(nesterov("5.2").is_ok());
        // Adam's L2 term is normalised away: no factor to overshoot.
        assert!(parse(&["--optimizer", "adam", "--lr", "1", "--weight-decay", "2"]).is_ok());
        // The example given fits the lr given: not the value refused.
        for (opt, lr, wd, example) in [
            ("adamw", "100", "0.01", "0.001"),
            ("adamw", "1", "1", "0.01"),
            ("sgd", "100", "0.5", "0.0005"),
            ("sgd", "50", "0.5", "0.0005"),
            ("nesterov", "100", "0.5", "0.0005"),
        ] {
            let args = ["--optimizer", opt, "--lr", lr, "--weight-decay", wd];
            let e = parse(&args).unwrap_err();
            assert!(
                e.ends_with(&format!("(e.g. --weight-decay {example})")),
                "{e}"
            );
            let fixed = ["--optimizer", opt, "--lr", lr, "--weight-decay", example];
            assert!(parse(&fixed).is_ok(), "{fixed:?}");
        }
    }

    fn shape() -> RunShape {
        let c = parse(&["--hidden", "64", "--epochs", "4", "--batch-size", "100"]).unwrap();
        RunShape {
            hidden: c.hidden,
            classes: 10,
            batch_size: c.batch_size,
            epochs: c.epochs,
            lr: c.lr,
            schedule: c.schedule,
            momentum: c.momentum,
            dropout: c.dropout,
            optimizer: c.optimizer,
            beta1: c.beta1,
            beta2: c.beta2,
            eps: c.eps,
            weight_decay: c.weight_decay,
            decay_bias: c.decay_bias,
            max_norm: c.max_norm,
            input_dropout: c.input_dropout,
            dropout_mask: c.dropout_mask,
            augment: c.augment,
            init: c.init,
            preset: c.preset,
            seed: c.seed,
            val: c.val,
            train_images: 60_000,
            data_md5: "x".into(),
            data_image: Some((28, 28)),
        }
    }

    #[test]
    fn subcommands() {
        let bare = parse(&["--threads", "3", "--epochs", "2"]).unwrap();
        let named = parse(&["train", "--threads", "3", "--epochs", "2"]).unwrap();
        assert_eq!((bare.threads, bare.epochs), (named.threads, named.epochs));
        let cli = Cli::try_parse_from(["simplenn", "eval", "--model", "m", "--json"]).unwrap();
        assert!(matches!(cli.into_command(), Command::Eval(e) if e.json));
        let cli = Cli::try_parse_from(["simplenn", "predict", "--model", "m", "a.png", "b.jpg"]);
        assert!(matches!(cli.unwrap().into_command(), Command::Predict(p) if p.images.len() == 2));
        assert!(Cli::try_parse_from(["simplenn", "predict", "--model", "m"]).is_err());
        let cli = Cli::try_parse_from(["simplenn", "plot", "m.jsonl", "-o", "c.svg"]).unwrap();
        assert!(
            matches!(cli.into_command(), Command::Plot(p) if p.output.to_str() == Some("c.svg"))
        );
        // Train flags belong before no subcommand but train's.
        assert!(
            Cli::try_parse_from(["simplenn", "--epochs", "2", "eval", "--model", "m"]).is_err()
        );
        // -V and --version answer after any subcommand, as before none.
        for sub in ["train", "eval", "predict", "plot", "augment", "serve"] {
            for flag in ["-V", "--version"] {
                let e = Cli::try_parse_from(["simplenn", sub, flag]).unwrap_err();
                assert_eq!(
                    e.kind(),
                    clap::error::ErrorKind::DisplayVersion,
                    "{sub} {flag}"
                );
            }
        }
    }

    #[test]
    fn resume_takes_the_checkpoint_flags() {
        let s = shape();
        let (c, plan) = args(&["--resume", "ck", "--threads", "2"])
            .unwrap()
            .into_plan(Some(&s))
            .unwrap();
        assert_eq!(
            (c.hidden, c.epochs, c.batch_size, c.threads),
            (vec![64], 4, 100, 2)
        );
        assert_eq!(c.classes, Some(10));
        assert_eq!(plan.resume.as_deref(), Some(std::path::Path::new("ck")));
        assert_eq!(plan.checkpoint, None);
        // Same values given again are fine; checkpoints default to the resumed file.
        let (_, plan) = args(&[
            "--resume",
            "ck",
            "--hidden",
            "64",
            "--checkpoint-every",
            "1",
        ])
        .unwrap()
        .into_plan(Some(&s))
        .unwrap();
        assert_eq!(plan.checkpoint.as_deref(), Some(std::path::Path::new("ck")));
    }

    #[test]
    fn resume_refuses_contradicting_flags() {
        let s = shape();
        for (flags, named) in [
            (&["--hidden", "128"][..], "--hidden 128 (checkpoint: 64)"),
            (&["--epochs", "5"], "--epochs 5 (checkpoint: 4)"),
            (&["--lr", "0.2"], "--lr 0.2 (checkpoint: 0.1)"),
            (&["--preset", "seed"], "--preset seed (checkpoint: default)"),
            (
                &["--schedule", "constant"],
                "--schedule constant (checkpoint: cosine)",
            ),
            (
                &["--optimizer", "nesterov"],
                "--optimizer nesterov (checkpoint: sgd)",
            ),
            (
                &["--weight-decay", "0.01"],
                "--weight-decay 0.01 (checkpoint: 0)",
            ),
            (&["--max-norm", "3"], "--max-norm 3 (checkpoint: none)"),
            (
                &["--input-dropout", "0.2"],
                "--input-dropout 0.2 (checkpoint: 0)",
            ),
            (
                &["--no-decay-bias"],
                "--no-decay-bias given (checkpoint: not given)",
            ),
            (&["--seed", "2"], "--seed 2 (checkpoint: 1)"),
            // Another optimiser's flag: refused as such, not as if the
            // sgd checkpoint had an eps.
            (
                &["--eps", "0.1"],
                "--eps 0.1: it is adam's and adamw's flag, not sgd's; the checkpoint's run uses sgd; drop --eps to continue that run",
            ),
            (&["--val", "100"], "--val 100 (checkpoint: 5000)"),
            (&["--dropout", "0.3"], "--dropout 0.3 (checkpoint: 0.2)"),
            (
                &["--batch-size", "128"],
                "--batch-size 128 (checkpoint: 100)",
            ),
            (&["--classes", "12"], "--classes 12 (checkpoint: 10)"),
            (
                &["--dropout-mask", "batch"],
                "--dropout-mask batch (checkpoint: image)",
            ),
        ] {
            let e = resumed(&s, flags).unwrap_err();
            let contradiction = named.contains("(checkpoint: ");
            assert!(
                e.contains(named) && e.starts_with("--resume ck: ") == contradiction,
                "{e}"
            );
        }
    }

    /// Resuming an elastic run: σ or α given alone is checked against the
    /// checkpoint's own value (it had been read as `--augment none`), and
    /// `--augment elastic` takes the checkpoint's σ and α, not the paper's.
    #[test]
    fn resume_reads_elastic_flags_against_the_checkpoint() {
        let mut s = shape();
        s.augment = Augment::Elastic {
            sigma: 3.0,
            alpha: 20.0,
        };
        let saved = s.augment;
        for flags in [
            &["--elastic-sigma", "3"][..],
            &["--elastic-alpha", "20.0"],
            &["--augment", "elastic"],
            &["--augment", "elastic", "--elastic-sigma", "3"],
            &[],
        ] {
            let c = resumed(&s, flags).unwrap();
            assert_eq!(c.augment, saved, "{flags:?}");
        }
        for (flags, named) in [
            (
                &["--elastic-sigma", "4"][..],
                "--resume ck: --elastic-sigma 4 (checkpoint: 3) contradicts",
            ),
            (
                &["--augment", "elastic", "--elastic-alpha", "34"],
                "--augment elastic (sigma 3, alpha 34) (checkpoint: elastic (sigma 3, alpha 20))",
            ),
            (
                &["--elastic-sigma", "-1"],
                "--elastic-sigma -1: must be in (0, 64]",
            ),
        ] {
            let e = resumed(&s, flags).unwrap_err();
            assert!(e.contains(named), "{e}");
        }
        // A run that was not elastic: the flag is refused for the
        // checkpoint's distortion, which no flag can change.
        s.augment = Augment::Shift(2);
        let e = args(&["--resume", "ck", "--elastic-alpha", "34"])
            .unwrap()
            .into_plan(Some(&s))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "--elastic-alpha: applies to --augment elastic only (the checkpoint's run: --augment shift:2); drop it to continue that run"
        );
    }

    #[test]
    fn checkpoint_flags() {
        let (_, plan) = args(&["--checkpoint-every", "2"])
            .unwrap()
            .into_plan(None)
            .unwrap();
        assert_eq!(
            plan.checkpoint.as_deref(),
            Some(std::path::Path::new(DEFAULT_CHECKPOINT))
        );
        // Beside the model, as Ctrl-C's checkpoint is.
        let (_, plan) = args(&["--stop-after", "1", "--save", "out/m.safetensors"])
            .unwrap()
            .into_plan(None)
            .unwrap();
        assert_eq!(
            plan.checkpoint.as_deref(),
            Some(std::path::Path::new("out/checkpoint.safetensors"))
        );
        // Named for where it came from, in the run's messages.
        assert_eq!(plan.checkpoint_named, Some("the default --checkpoint"));
        let (_, plan) = args(&["--resume", "ck", "--stop-after", "1"])
            .unwrap()
            .into_plan(Some(&shape()))
            .unwrap();
        let (ck, named) = (plan.checkpoint.as_deref(), plan.checkpoint_named);
        assert_eq!(
            (ck, named),
            (Some(std::path::Path::new("ck")), Some("the --resume file"))
        );
        let (_, plan) = args(&["--resume", "ck", "--checkpoint", "c"])
            .unwrap()
            .into_plan(Some(&shape()))
            .unwrap();
        assert_eq!(plan.checkpoint_named, None);
        for bad in [
            &["--checkpoint-every", "0"][..],
            &["--stop-after", "0"],
            &["--epochs", "3", "--stop-after", "3"],
            &[
                "--checkpoint-every",
                "1",
                "--checkpoint",
                "model.safetensors",
            ],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
        let (_, plan) = args(&["--epochs", "3", "--checkpoint", "c"])
            .unwrap()
            .into_plan(None)
            .unwrap();
        let c = Some(std::path::Path::new("c"));
        assert_eq!(
            (plan.checkpoint_every, plan.checkpoint.as_deref()),
            (Some(3), c)
        );
        let (_, plan) = args(&["--epochs", "3", "--stop-after", "1"])
            .unwrap()
            .into_plan(None)
            .unwrap();
        assert_eq!(plan.stop_after, Some(1));
    }

    #[test]
    fn defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!((c.epochs, c.batch_size, c.hidden), (20, 128, vec![256]));
        assert_eq!(c.classes, None);
        assert_eq!(c.schedule, Schedule::Cosine);
        assert!(c.threads >= 1);
        assert_eq!((c.val, c.seed, c.lr, c.momentum), (5000, 1, 0.1, 0.9));
        // --lr's range is (0, 100], its end included.
        assert_eq!(parse(&["--lr", "100"]).unwrap().lr, 100.0);
        // Batch masks need some dropout: input dropout alone is enough.
        for a in [
            &[
                "--hidden",
                "none",
                "--input-dropout",
                "0.2",
                "--dropout-mask",
                "batch",
            ][..],
            &[
                "--dropout",
                "0",
                "--input-dropout",
                "0.2",
                "--dropout-mask",
                "batch",
            ],
        ] {
            let c = parse(a).unwrap_or_else(|e| panic!("{a:?}: {e}"));
            assert_eq!((c.input_dropout, c.dropout_mask), (0.2, DropoutMask::Batch));
        }
    }

    #[test]
    fn paper_presets() {
        let c = parse(&["--preset", "simard2003"]).unwrap();
        assert_eq!(
            (c.hidden, c.epochs, c.lr, c.dropout),
            (vec![800], 120, 0.05, 0.0)
        );
        assert!(
            matches!(c.augment, Augment::Elastic { sigma, alpha } if (sigma, alpha) == (4.0, 34.0))
        );
        let c = parse(&["--preset", "simard2003", "--elastic-alpha", "30"]).unwrap();
        assert!(matches!(c.augment, Augment::Elastic { alpha, .. } if alpha == 30.0));
        let c = parse(&["--preset", "dropout2014"]).unwrap();
        assert_eq!(c.hidden, vec![1024, 1024, 1024]);
        assert_eq!(
            (
                c.epochs,
                c.batch_size,
                c.dropout,
                c.input_dropout,
                c.max_norm
            ),
            (100, 256, 0.5, 0.2, Some(2.0))
        );
        assert_eq!((c.optimizer, c.lr, c.momentum), (Kind::Adam, 0.001, 0.0));
        // The SGD form of the recipe: sgd's own lr and momentum.
        let c = parse(&["--preset", "dropout2014", "--optimizer", "sgd"]).unwrap();
        assert_eq!((c.lr, c.momentum), (0.1, 0.9));
        assert_eq!((c.augment, c.preset), (Augment::None, Preset::Dropout2014));
        // Augmentation flags that contradict a checkpoint are refused.
        let mut s = shape();
        s.augment = Augment::Shift(2);
        for (flags, named) in [
            (
                &["--augment", "affine"][..],
                "--augment affine (checkpoint: shift:2)",
            ),
            (
                &["--augment", "none"],
                "--augment none (checkpoint: shift:2)",
            ),
            (
                &["--preset", "simard2003"],
                "--preset simard2003 (checkpoint: default)",
            ),
        ] {
            let e = resumed(&s, flags).unwrap_err();
            assert!(e.contains(named), "{e}");
        }
        let (c, _) = args(&["--resume", "ck"])
            .unwrap()
            .into_plan(Some(&s))
            .unwrap();
        assert_eq!(c.augment, Augment::Shift(2));
    }

    #[test]
    fn optimiser_defaults_and_resume() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.optimizer(), crate::optim::Optimizer::sgd(0.9));
        let c = parse(&["--optimizer", "adam"]).unwrap();
        assert_eq!((c.lr, c.momentum, c.weight_decay), (0.001, 0.0, 0.0));
        assert_eq!((c.beta1, c.beta2, c.eps), (0.9, 0.999, 1e-8));
        let c = parse(&["--optimizer", "adamw", "--no-decay-bias"]).unwrap();
        assert_eq!((c.lr, c.weight_decay, c.decay_bias), (0.001, 0.01, false));
        let c = parse(&["--optimizer", "nesterov", "--max-norm", "3.5"]).unwrap();
        assert_eq!((c.lr, c.momentum, c.max_norm), (0.1, 0.9, Some(3.5)));
        // `none` turns a preset's max-norm off; leaving it out keeps it.
        let c = parse(&["--preset", "dropout2014", "--max-norm", "none"]).unwrap();
        assert_eq!(c.max_norm, None);
        assert_eq!(
            parse(&["--preset", "dropout2014"]).unwrap().max_norm,
            Some(2.0)
        );
        assert_eq!(parse(&["--max-norm", "none"]).unwrap().max_norm, None);
        // In any case, as every word value.
        assert_eq!(parse(&["--max-norm", "None"]).unwrap().max_norm, None);
        let e = parse(&["--max-norm", "nothing"]).unwrap_err();
        assert!(e.contains("not a number or none"), "{e}");
        // A preset's lr and momentum hold for optimisers of its family only.
        let c = parse(&["--preset", "simard2003", "--optimizer", "nesterov"]).unwrap();
        assert_eq!((c.lr, c.momentum), (0.05, 0.9));
        let c = parse(&["--preset", "seed", "--optimizer", "adamw"]).unwrap();
        assert_eq!((c.lr, c.momentum, c.weight_decay), (0.001, 0.0, 0.01));
        assert!(parse(&["--preset", "seed", "--optimizer", "nesterov"]).is_err());
        // and an SGD under an Adam preset starts from SGD's own (as `--help` says).
        let c = parse(&["--preset", "dropout2014", "--optimizer", "sgd"]).unwrap();
        assert_eq!((c.lr, c.momentum, c.weight_decay), (0.1, 0.9, 0.0));
        // Weight decay's default is the optimiser's own, not its family's.
        let c = parse(&["--preset", "dropout2014", "--optimizer", "adamw"]).unwrap();
        assert_eq!((c.lr, c.momentum, c.weight_decay), (0.001, 0.0, 0.01));
        // An adam checkpoint resumes as adam, with its own hyper-parameters.
        let mut s = shape();
        (s.optimizer, s.beta2, s.momentum) = (Kind::Adam, 0.99, 0.0);
        let (c, _) = args(&["--resume", "ck"])
            .unwrap()
            .into_plan(Some(&s))
            .unwrap();
        assert_eq!((c.optimizer, c.beta2, c.momentum), (Kind::Adam, 0.99, 0.0));
        let e = args(&["--resume", "ck", "--beta2", "0.999"])
            .unwrap()
            .into_plan(Some(&s))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--beta2 0.999 (checkpoint: 0.99)"), "{e}");
        let e = args(&["--resume", "ck", "--momentum", "0.9"])
            .unwrap()
            .into_plan(Some(&s))
            .unwrap_err()
            .to_string();
        // The fix is to drop it: --beta1 is the checkpoint's too.
        assert_eq!(
            e,
            "--momentum 0.9: momentum is sgd's and nesterov's flag, and the checkpoint's run uses adam; drop --momentum to continue that run"
        );
        let e = parse(&["--optimizer", "adam", "--momentum", "0.9"]).unwrap_err();
        assert!(
            e.contains("--momentum 0.9: momentum is sgd's and nesterov's flag; adam takes its momentum as --beta1"),
            "{e}"
        );
        // A momentum of 0 no flag gave is said to be the preset's; an
        // adam flag's value is echoed as written short.
        let e = parse(&["--preset", "seed", "--optimizer", "nesterov"]).unwrap_err();
        assert!(
            e.starts_with("--optimizer nesterov needs momentum above 0 (the seed preset's is 0): give --momentum 0.9"),
            "{e}"
        );
        let e = parse(&["--optimizer", "nesterov", "--momentum", "0"]).unwrap_err();
        assert!(
            e.starts_with("--optimizer nesterov needs momentum above 0: "),
            "{e}"
        );
        let e = parse(&["--optimizer", "sgd", "--eps", "1e-7"]).unwrap_err();
        assert!(
            e.starts_with("--eps 1e-7: it is adam's and adamw's flag"),
            "{e}"
        );
    }

    #[test]
    fn seed_preset_and_overrides() {
        let c = parse(&["--preset", "seed"]).unwrap();
        assert_eq!(
            (c.epochs, c.batch_size, c.lr, c.momentum),
            (1000, 0, 0.2, 0.0)
        );
        assert_eq!(c.init, Init::Normal(0.01));
        let c = parse(&["--preset", "seed", "--epochs", "3"]).unwrap();
        assert_eq!(c.epochs, 3);
    }

    #[test]
    fn rejects_bad_values() {
        for bad in [
            &["--epochs", "0"][..],
            &["--batch-size", "0"],
            &["--hidden", "0"],
            &["--lr", "-1"],
            &["--lr", "nan"],
            &["--lr", "inf"],
            &["--lr", "100.5"],
            &["--lr", "1e9"],
            &["--lr", "0"],
            &["--momentum", "1"],
            &["--momentum", "-0.1"],
            &["--dropout", "1"],
            &["--dropout", "-0.1"],
            &["--input-dropout", "1"],
            &["--optimizer", "adam", "--beta1", "1"],
            &["--optimizer", "adam", "--beta2", "1"],
            &["--optimizer", "adam", "--eps", "0"],
            &["--optimizer", "adam", "--eps", "-1"],
            &["--optimizer", "adam", "--momentum", "0.5"],
            &["--optimizer", "nesterov", "--momentum", "0"],
            &["--eps", "1e-6"],
            &["--weight-decay", "-1"],
            &["--max-norm", "0"],
            &["--max-norm", "-1"],
            &["--threads", "100000"],
            &["--threads", "-1"],
        ] {
            let e = parse(bad).expect_err(&format!("{bad:?} accepted"));
            assert!(!e.is_empty());
        }
    }

    /// Float flags refuse what 32-bit floats cannot hold, naming the value
    /// typed, and keep everything else exactly as `str::parse::<f32>` reads it.
    #[test]
    fn float_flags_refuse_what_f32_cannot_hold() {
        for ok in [
            "0.1", "0.999", "1", "-1", "1e-8", "3e38", "1.4e-45", "0", "-0", "0e5", "nan", "inf",
        ] {
            // `-0` comes back as 0, whose bits differ.
            let want: f32 = ok.parse::<f32>().unwrap() + 0.0;
            let got = parse_f32(ok).unwrap();
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "{ok}"
            );
        }
        for (bad, why) in [
            ("1e39", "too large"),
            ("-1e39", "too far below 0"),
            ("1e-300", "too small"),
            ("1e-46", "too small"),
            ("1e-400", "too small"),
            ("-5E-999", "too small"),
            ("0.99999999999", "rounds to 1"),
            ("1.00000000001", "rounds to 1"),
            ("-0.99999999999", "rounds to -1"),
            ("1e400", "too large for a 32-bit float"),
            ("-1e400", "too far below 0 for a 32-bit float"),
            ("x", "invalid float literal"),
        ] {
            let e = parse_f32(bad).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
        let e = parse(&["--optimizer", "adam", "--beta2", "0.99999999999"]).unwrap_err();
        assert!(
            e.contains("'0.99999999999'") && e.contains("rounds to 1"),
            "{e}"
        );
        // Rounding to 1 is refused only where 1 is out of the flag's range:
        // `--eps 0.9999999999` is 1, which `--eps 1` gives too. Rounding to
        // 0 is refused everywhere, even where 0 is in range (`--beta1`,
        // `--dropout`, `--elastic-alpha`, `--momentum`): 1e-46 is no way to
        // write 0.
        assert_eq!(parse_holds_one("0.99999999999"), Ok(1.0));
        assert!(parse_f32("0.99999999999")
            .unwrap_err()
            .contains("rounds to 1"));
        assert_eq!(parse_holds_one("1.00000000001"), Ok(1.0));
        for parse_one in [parse_f32, parse_holds_one] {
            let e = parse_one("1e-46").unwrap_err();
            assert!(
                e.contains("too small") && e.ends_with("about 1.4e-45)"),
                "{e}"
            );
            assert_eq!(parse_one("0"), Ok(0.0));
        }
        let c = parse(&[
            "--optimizer",
            "adam",
            "--eps",
            "0.9999999999",
            "--beta1",
            "0",
        ])
        .unwrap();
        assert_eq!((c.eps, c.beta1), (1.0, 0.0));
        for flags in [
            &["--optimizer", "nesterov", "--momentum", "1e-46"][..],
            &["--weight-decay", "1e-46", "--no-decay-bias"],
            &["--optimizer", "adam", "--beta1", "1e-46"],
            &["--dropout", "1e-50"],
            &["--input-dropout", "1e-50"],
            &["--augment", "elastic", "--elastic-alpha", "1e-50"],
        ] {
            assert!(
                parse(flags)
                    .unwrap_err()
                    .contains("too small for a 32-bit float"),
                "{flags:?}"
            );
        }
        // A value out of range is written short, not in 31 digits.
        let e = parse(&["--lr", "1e30"]).unwrap_err();
        assert!(e.starts_with("--lr 1e30: must be"), "{e}");
    }

    #[test]
    fn hidden_lists() {
        let h = |a: &str| parse(&["--hidden", a]).map(|c| c.hidden);
        assert_eq!(h("256").unwrap(), vec![256]);
        assert_eq!(h("1024,1024").unwrap(), vec![1024, 1024]);
        assert_eq!(h("512, 256,128").unwrap(), vec![512, 256, 128]);
        assert_eq!(h("none").unwrap(), Vec::<usize>::new());
        for (bad, says) in [
            ("0", "between 1 and"),
            ("256,,128", "width 2 is empty"),
            ("-3", "\"-3\" is not a whole number"),
            ("1e9", "\"1e9\" is not a whole number"),
            ("1000000000", "a layer of 1000000000 units"),
            ("", "width 1 is empty"),
        ] {
            let e = h(bad).unwrap_err();
            assert!(e.contains(says), "--hidden {bad:?}: {e}");
        }
        let many = vec!["8"; crate::model::MAX_LAYERS].join(",");
        assert!(h(&many).unwrap_err().contains("hidden layers: at most"));
        let e = parse(&["--classes", "1"]).unwrap_err();
        assert!(e.contains("--classes 1: must be between 2 and 256"), "{e}");
    }

    /// Images one pixel high get no distortion, unless a run resumed from
    /// an older build's checkpoint trained one; what cannot be computed is
    /// refused even then.
    #[test]
    fn a_resumed_run_keeps_its_distortion_of_images_one_pixel_high() {
        let c = parse(&["--augment", "affine", "--val", "10", "--batch-size", "10"]).unwrap();
        let e = fit_to_data(&c, 100, (1, 64), false).unwrap_err();
        assert!(e.to_string().contains("1-pixel side"), "{e}");
        // An older build trained it, and its checkpoint resumes as it was.
        assert!(fit_to_data(&c, 100, (1, 64), true).is_ok());
        // What cannot be computed is refused all the same.
        let shift = parse(&["--augment", "shift:2", "--val", "10", "--batch-size", "10"]).unwrap();
        assert!(fit_to_data(&shift, 100, (2, 64), true).is_err());
    }

    /// A `--val` the training file cannot give is refused with one that
    /// fits, and said to be the default where it is (no --val given).
    #[test]
    fn fit_to_data_refuses_a_validation_split_past_the_file() {
        let fit = |a: &[&str], n| fit_to_data(&parse(a).unwrap(), n, (28, 28), false);
        let e = fit(&[], 200).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--val 5000 (the default where --val is not given): the training file has only 200 images; hold out fewer, e.g. --val 20 (a tenth), or --val 0 (none)"
        );
        let e = fit(&["--val", "9", "--batch-size", "9"], 9).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--val 9: the training file has only 9 images; hold out fewer, e.g. --val 0 (none)"
        );
        // Each split comes with the batch size it needs, where this one is
        // larger than what the split leaves (the default 128 here): one
        // error, not a second one after following the first.
        let e = fit(&["--val", "9"], 9).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--val 9: the training file has only 9 images; hold out fewer, e.g. --val 0 (none) with --batch-size 9 or less"
        );
        let e = fit(&[], 40).unwrap_err();
        assert!(
            e.to_string().ends_with("hold out fewer, e.g. --val 4 (a tenth) with --batch-size 36 or less, or --val 0 (none) with --batch-size 40 or less"),
            "{e}"
        );
        // 142 images: a tenth leaves 128, the batch exactly.
        let e = fit(&[], 142).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("hold out fewer, e.g. --val 14 (a tenth), or --val 0 (none)"),
            "{e}"
        );
        let e = fit(&["--val", "142", "--batch-size", "130"], 142).unwrap_err();
        assert!(
            e.to_string().ends_with(
                "e.g. --val 14 (a tenth) with --batch-size 128 or less, or --val 0 (none)"
            ),
            "{e}"
        );
        assert_eq!(fit(&["--val", "8", "--batch-size", "1"], 9).unwrap().val, 8);
    }

    /// A batch of exactly the training split is a full batch, not too
    /// large; `--batch-size 0` (the seed preset's) becomes that size.
    #[test]
    fn fit_to_data_takes_a_batch_of_the_whole_split() {
        let fit = |a: &[&str]| fit_to_data(&parse(a).unwrap(), 100, (28, 28), false);
        let c = fit(&["--val", "10", "--batch-size", "90"]).unwrap();
        assert_eq!(c.batch_size, 90);
        let e = fit(&["--val", "10", "--batch-size", "91"]).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("larger than the 90 training images (100 in the file, 10 held out by --val); pass --batch-size 90 or less, or --val 9 or less"),
            "{e}"
        );
        let e = fit(&["--val", "10", "--batch-size", "100"]).unwrap_err();
        assert!(e.to_string().ends_with("or less, or --val 0"), "{e}");
        // A batch larger than the whole file: no split would hold it, so
        // the advice names the batch size alone.
        let e = fit(&["--val", "10", "--batch-size", "101"]).unwrap_err();
        assert!(
            e.to_string().ends_with("pass --batch-size 90 or less"),
            "{e}"
        );
        // The default batch (128) on one training image: said as the batch
        // size, in the singular.
        let e = fit_to_data(&parse(&["--val", "0"]).unwrap(), 1, (28, 28), false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the batch size (128, the default) is larger than the 1 training image; pass --batch-size 1 or less"
        );
        // A preset's batch is said to be the preset's, one typed is not.
        let e = fit(&["--preset", "dropout2014", "--val", "10"]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("the batch size (256, the dropout2014 preset's) is larger"),
            "{e}"
        );
        let e = fit(&[
            "--preset",
            "dropout2014",
            "--val",
            "10",
            "--batch-size",
            "200",
        ])
        .unwrap_err();
        assert!(
            e.to_string().starts_with("the batch size (200) is larger"),
            "{e}"
        );
        let c = fit(&["--preset", "seed", "--val", "10"]).unwrap();
        assert_eq!(c.batch_size, 90);
    }

    /// An output named as a data file's compressed copy (`….gz`) in the
    /// data directory is refused like the raw file.
    #[test]
    fn outputs_may_not_be_the_data_sets_gz_files() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().to_str().unwrap();
        for name in [
            format!("{}.gz", crate::data::TRAIN_IMAGES),
            format!("{}.gz", crate::data::TEST_LABELS),
        ] {
            let out = format!("{dir}/{name}");
            let e = args(&["--data", dir, "--metrics", &out, "--no-save"])
                .unwrap()
                .into_plan(None)
                .unwrap_err();
            assert!(
                e.to_string().contains("a file of the data set"),
                "{name}: {e}"
            );
        }
        let out = format!("{dir}/metrics.jsonl");
        let plan = args(&["--data", dir, "--metrics", &out, "--no-save"])
            .unwrap()
            .into_plan(None);
        assert!(plan.is_ok(), "{plan:?}");
    }

    /// The last value of each closed range is accepted, and what a flag
    /// left out resolves to is the documented default.
    #[test]
    fn the_ends_of_each_range_are_accepted() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(parse(&[]).unwrap().threads, cores);
        assert_eq!(parse(&["--threads", "1024"]).unwrap().threads, MAX_THREADS);
        assert_eq!(parse(&["--classes", "256"]).unwrap().classes, Some(256));
        assert_eq!(parse(&["--epochs", "1000000"]).unwrap().epochs, MAX_EPOCHS);
        // No hidden layer and no dropout asked for: nothing to refuse.
        let c = parse(&["--hidden", "none", "--dropout", "0"]).unwrap();
        assert_eq!((c.hidden, c.dropout), (vec![], 0.0));
    }
}
