//! Command-line flags (clap derive), parsed low and resolved into a plain
//! [`TrainConfig`]. No I/O here.
//!
//! `simplenn [FLAGS]` trains (train is the default subcommand), and
//! `simplenn train|eval|predict|plot ...` name a subcommand.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::checkpoint::RunShape;
pub use crate::config::UsageError;
use crate::config::{Schedule, TrainConfig};
use crate::model::{hidden_name, Init};

/// The data directory when `--data` is left out and nothing else names one
/// (see [`crate::data::resolve_dir`] for the places looked at).
pub const DEFAULT_DATA: &str = "data/mnist";

/// `--hidden`: the hidden widths, input side first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hidden(pub Vec<usize>);

/// Parse `--hidden` (see [`crate::model::parse_hidden`]) for clap.
pub fn parse_hidden(s: &str) -> Result<Hidden, String> {
    crate::model::parse_hidden(s).map(Hidden)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// Minibatch SGD with momentum and a cosine schedule: the fast, accurate default.
    Default,
    /// The NumPy teaching recipe: full-batch gradient descent, lr 0.2, N(0, 0.01²) init, 1000 rounds, no momentum.
    Seed,
}

/// Train a multilayer perceptron (ReLU, softmax, cross-entropy) on MNIST or any
/// MNIST-format data, on every core, reproducibly, and use it: eval, predict,
/// plot. Without a subcommand, trains.
#[derive(Debug, Parser)]
#[command(
    name = "simplenn",
    version,
    about,
    long_about = None,
    args_conflicts_with_subcommands = true,
    subcommand_help_heading = "Subcommands (train is the default)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub train: Args,
}

impl Cli {
    /// The subcommand, with bare `simplenn [FLAGS]` meaning `train [FLAGS]`.
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Train(self.train))
    }
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once
pub enum Command {
    /// Train a model (the default when no subcommand is given)
    Train(Args),
    /// Test-set accuracy, per-class precision and recall, confusion matrix
    Eval(EvalArgs),
    /// Read the digit in PNG or JPEG images
    Predict(PredictArgs),
    /// Draw loss and accuracy against epoch from a --metrics log, as SVG
    Plot(PlotArgs),
    /// Serve a local page: draw digits for the model, see its errors, weights and learning curve
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Model to serve (safetensors from --save, or a checkpoint)
    #[arg(long, value_name = "PATH")]
    pub model: PathBuf,

    /// Directory holding the MNIST-format test files, for the errors and the confusion matrix [default: $SIMPLENN_DATA, else ./data/mnist, else the source tree's data/mnist, else none]
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// Metrics log written by `simplenn train --metrics PATH`, for the learning curve
    #[arg(long, value_name = "PATH")]
    pub metrics: Option<PathBuf>,

    /// Port to listen on (0: any free port)
    #[arg(long, value_name = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// Address to listen on; anything but loopback exposes the page, which has no authentication, to the network
    #[arg(long, value_name = "HOST", default_value = "127.0.0.1")]
    pub host: String,
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Model to evaluate (safetensors from --save, or a checkpoint)
    #[arg(long, value_name = "PATH")]
    pub model: PathBuf,

    /// Directory holding the MNIST-format test files [default: $SIMPLENN_DATA, else ./data/mnist, else the source tree's data/mnist]
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// Print one JSON object instead of tables
    #[arg(long)]
    pub json: bool,

    /// Threads in the worker pool [default: one per core]
    #[arg(long, short = 'j', value_name = "N", allow_negative_numbers = true)]
    pub threads: Option<i64>,
}

#[derive(Debug, clap::Args)]
pub struct PredictArgs {
    /// Model to use (safetensors from --save, or a checkpoint)
    #[arg(long, value_name = "PATH")]
    pub model: PathBuf,

    /// PNG or JPEG images, each of one digit, any size, dark on light or light on dark
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<PathBuf>,

    /// Print one JSON array instead of lines
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct PlotArgs {
    /// Metrics log written by `simplenn train --metrics PATH`
    #[arg(value_name = "METRICS")]
    pub metrics: PathBuf,

    /// SVG file to write
    #[arg(long, short = 'o', value_name = "PATH", default_value = "curve.svg")]
    pub output: PathBuf,
}

/// Train flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory holding the four MNIST-format IDX files (or their .gz) [default: $SIMPLENN_DATA, else ./data/mnist, else the source tree's data/mnist]
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// Starting point for every other flag [default: default]
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,

    /// Passes over the training set [default: 20; seed preset: 1000]
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub epochs: Option<usize>,

    /// Images per SGD step [default: 128; seed preset: the whole training set]
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub batch_size: Option<usize>,

    /// Hidden layer widths, input side first: 256, 1024,1024, 512,256,128, or none (softmax regression) [default: 256]
    #[arg(long, value_name = "N[,N...]", value_parser = parse_hidden, allow_hyphen_values = true)]
    pub hidden: Option<Hidden>,

    /// Classes K [default: the largest training label + 1]
    #[arg(long, value_name = "K", allow_negative_numbers = true)]
    pub classes: Option<usize>,

    /// Peak learning rate [default: 0.1; seed preset: 0.2]
    #[arg(long, value_name = "LR", allow_negative_numbers = true)]
    pub lr: Option<f32>,

    /// Learning-rate schedule [default: cosine; seed preset: constant]
    #[arg(long, value_enum)]
    pub schedule: Option<Schedule>,

    /// SGD momentum, PyTorch semantics [default: 0.9; seed preset: 0]
    #[arg(long, value_name = "M", allow_negative_numbers = true)]
    pub momentum: Option<f32>,

    /// Dropout probability on every hidden layer [default: 0.2; seed preset: 0]
    #[arg(long, value_name = "P", allow_negative_numbers = true)]
    pub dropout: Option<f32>,

    /// Seed for initialisation, shuffling and dropout [default: 1]
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub seed: Option<u64>,

    /// Images held out from the end of the training file for validation [default: 5000]
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub val: Option<usize>,

    /// Where to save the trained model (safetensors)
    #[arg(long, value_name = "PATH", default_value = "model.safetensors")]
    pub save: PathBuf,

    /// Do not save the model
    #[arg(long)]
    pub no_save: bool,

    /// Threads in the one worker pool [default: one per core]
    #[arg(long, short = 'j', value_name = "N", allow_negative_numbers = true)]
    pub threads: Option<i64>,

    /// Never draw progress bars (they are drawn only on a terminal anyway)
    #[arg(long)]
    pub no_progress: bool,

    /// Continue the run saved in this checkpoint; flags left out take the checkpoint's values
    #[arg(long, value_name = "PATH")]
    pub resume: Option<PathBuf>,

    /// Write a checkpoint (weights, momentum, position, flags) every N epochs and after the last
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub checkpoint_every: Option<usize>,

    /// Where checkpoints go (alone: one after the last epoch) [default: the --resume file, else checkpoint.safetensors]
    #[arg(long, value_name = "PATH")]
    pub checkpoint: Option<PathBuf>,

    /// Stop after this epoch, as if interrupted, writing a checkpoint to continue from with --resume
    #[arg(long, value_name = "EPOCH")]
    pub stop_after: Option<usize>,

    /// Write one JSON line per epoch (losses, accuracies, lr, time) to this file
    #[arg(long, value_name = "PATH")]
    pub metrics: Option<PathBuf>,

    /// Serve the live page on 127.0.0.1:PORT while training, and after it until Ctrl-C [default PORT: 8080]
    #[arg(long, value_name = "PORT", num_args = 0..=1, default_missing_value = "8080")]
    pub serve: Option<u16>,
}

/// The files and stopping point of a run, beside its [`TrainConfig`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunPlan {
    pub resume: Option<PathBuf>,
    /// Where checkpoints go, when any are written.
    pub checkpoint: Option<PathBuf>,
    pub checkpoint_every: Option<usize>,
    /// Stop after this many epochs.
    pub stop_after: Option<usize>,
    pub metrics: Option<PathBuf>,
}

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
    /// Resolve presets and defaults, and check every value's range.
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
        let preset_of = |i: Init| match i {
            Init::He => Preset::Default,
            Init::Normal(_) => Preset::Seed,
        };
        let preset = merge(
            "--preset",
            self.preset,
            s.map(|s| preset_of(s.init)),
            |p| format!("{p:?}").to_lowercase(),
            c,
        )
        .unwrap_or(Preset::Default);
        let seed = preset == Preset::Seed;
        let show = |v: f32| v.to_string();
        let epochs = merge(
            "--epochs",
            self.epochs,
            s.map(|s| s.epochs),
            |v| v.to_string(),
            c,
        )
        .unwrap_or(if seed { 1000 } else { 20 });
        let lr = merge("--lr", self.lr, s.map(|s| s.lr), show, c).unwrap_or(if seed {
            0.2
        } else {
            0.1
        });
        let momentum = merge("--momentum", self.momentum, s.map(|s| s.momentum), show, c)
            .unwrap_or(if seed { 0.0 } else { 0.9 });
        let dropout = merge("--dropout", self.dropout, s.map(|s| s.dropout), show, c)
            .unwrap_or(if seed { 0.0 } else { 0.2 });
        let schedule = merge(
            "--schedule",
            self.schedule,
            s.map(|s| s.schedule),
            |v| v.name().into(),
            c,
        )
        .unwrap_or(if seed {
            Schedule::Constant
        } else {
            Schedule::Cosine
        });
        let hidden = merge(
            "--hidden",
            self.hidden.clone().map(|h| h.0),
            s.map(|s| s.hidden.clone()),
            |v| hidden_name(&v),
            c,
        )
        .unwrap_or(vec![256]);
        let classes = merge(
            "--classes",
            self.classes,
            s.map(|s| s.classes),
            |v| v.to_string(),
            c,
        );
        let seed_value =
            merge("--seed", self.seed, s.map(|s| s.seed), |v| v.to_string(), c).unwrap_or(1);
        let val = merge("--val", self.val, s.map(|s| s.val), |v| v.to_string(), c).unwrap_or(5000);
        let batch_size = merge(
            "--batch-size",
            self.batch_size,
            s.map(|s| s.batch_size),
            |v| v.to_string(),
            c,
        );
        let init = match s {
            Some(s) => s.init,
            None if seed => Init::Normal(0.01),
            None => Init::He,
        };
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
        if let Some(n) = self.stop_after {
            if n == 0 || n >= epochs {
                return bad(format!(
                    "--stop-after {n}: must be between 1 and {} (below --epochs {epochs})",
                    epochs.saturating_sub(1)
                ));
            }
        }
        // `--checkpoint PATH` alone: one checkpoint, after the last epoch.
        let checkpoint_every = self
            .checkpoint_every
            .or(self.checkpoint.as_ref().map(|_| epochs));
        let checkpoint = (checkpoint_every.is_some() || self.stop_after.is_some()).then(|| {
            self.checkpoint
                .clone()
                .or_else(|| self.resume.clone())
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CHECKPOINT))
        });
        if let (Some(ck), false) = (&checkpoint, self.no_save) {
            if ck == &self.save {
                return bad(format!(
                    "--checkpoint {}: same file as --save; the model file must stay a plain model, choose another checkpoint path",
                    ck.display()
                ));
            }
        }
        let plan = RunPlan {
            resume: self.resume.clone(),
            checkpoint,
            checkpoint_every,
            stop_after: self.stop_after,
            metrics: self.metrics.clone(),
        };
        if epochs == 0 || epochs > 1_000_000 {
            return bad(format!("--epochs {epochs}: must be between 1 and 1000000"));
        }
        if let Some(k) = classes {
            if !(2..=crate::checkpoint::MAX_CLASSES).contains(&k) {
                return bad(format!(
                    "--classes {k}: must be between 2 and 256 (labels are bytes); leave it out to take the largest training label + 1"
                ));
            }
        }
        if !(lr.is_finite() && lr > 0.0 && lr <= 100.0) {
            return bad(format!("--lr {lr}: must be a number in (0, 100], e.g. 0.1"));
        }
        if !(momentum.is_finite() && (0.0..1.0).contains(&momentum)) {
            return bad(format!(
                "--momentum {momentum}: must be in [0, 1), e.g. 0.9"
            ));
        }
        if !(dropout.is_finite() && (0.0..1.0).contains(&dropout)) {
            return bad(format!("--dropout {dropout}: must be in [0, 1), e.g. 0.2"));
        }
        if let Some(0) = batch_size {
            return bad("--batch-size 0: must be at least 1, e.g. 128".into());
        }
        let threads = resolve_threads(self.threads)?;
        let config = TrainConfig {
            data_dir: self.data.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA)),
            epochs,
            // 0 = the whole training split; checked against the data once it is open.
            batch_size: batch_size.unwrap_or(if seed { 0 } else { 128 }),
            hidden,
            classes,
            lr,
            momentum,
            schedule,
            dropout,
            init,
            seed: seed_value,
            val,
            save: (!self.no_save).then_some(self.save),
            threads,
            progress: !self.no_progress,
        };
        Ok((config, plan))
    }
}

/// Check the flags that depend on the data's size, once it is open, and
/// resolve `batch_size = 0` (the seed preset's full batch) to the training split.
pub fn fit_to_data(config: &TrainConfig, train_images: usize) -> Result<TrainConfig, UsageError> {
    let mut c = config.clone();
    if c.val >= train_images {
        return Err(UsageError(format!(
            "--val {}: the training file has only {train_images} images; hold out fewer (e.g. --val 5000)",
            c.val
        )));
    }
    let n_train = train_images - c.val;
    if c.batch_size == 0 {
        c.batch_size = n_train;
    }
    if c.batch_size > n_train {
        return Err(UsageError(format!(
            "--batch-size {}: larger than the {n_train} training images; use at most {n_train}",
            c.batch_size
        )));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(args: &[&str]) -> Result<Args, String> {
        let cli = Cli::try_parse_from(std::iter::once("simplenn").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        match cli.into_command() {
            Command::Train(a) => Ok(a),
            c => Err(format!("not train: {c:?}")),
        }
    }

    fn parse(a: &[&str]) -> Result<TrainConfig, String> {
        args(a)?.into_config().map_err(|e| e.to_string())
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
            init: c.init,
            seed: c.seed,
            val: c.val,
            train_images: 60_000,
            data_md5: "x".into(),
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
        ] {
            let mut a = vec!["--resume", "ck"];
            a.extend_from_slice(flags);
            let e = args(&a)
                .unwrap()
                .into_plan(Some(&s))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("--resume ck: ") && e.contains(named), "{e}");
        }
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
            &["--momentum", "1"],
            &["--dropout", "1"],
            &["--threads", "100000"],
            &["--threads", "-1"],
        ] {
            let e = parse(bad).expect_err(&format!("{bad:?} accepted"));
            assert!(!e.is_empty());
        }
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
}
