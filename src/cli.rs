//! Command-line flags (clap derive), parsed low and resolved into a plain
//! [`TrainConfig`]. No I/O here.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use crate::model::Init;
use crate::train::{Schedule, TrainConfig};

/// A bad flag value: main prints it and exits with status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// Minibatch SGD with momentum and a cosine schedule: the fast, accurate default.
    Default,
    /// The NumPy teaching recipe: full-batch gradient descent, lr 0.2, N(0, 0.01²) init, 1000 rounds, no momentum.
    Seed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScheduleArg {
    Cosine,
    Constant,
}

/// Train a 784 → hidden → 10 ReLU network on MNIST, on every core, reproducibly.
#[derive(Debug, Parser)]
#[command(name = "simplenn", version, about, long_about = None)]
pub struct Args {
    /// Directory holding the four MNIST-format IDX files (or their .gz)
    #[arg(long, value_name = "DIR", default_value = "data/mnist")]
    pub data: PathBuf,

    /// Starting point for every other flag
    #[arg(long, value_enum, default_value_t = Preset::Default)]
    pub preset: Preset,

    /// Passes over the training set [default: 20; seed preset: 1000]
    #[arg(long, value_name = "N")]
    pub epochs: Option<usize>,

    /// Images per SGD step [default: 128; seed preset: the whole training set]
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,

    /// Hidden units
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub hidden: usize,

    /// Peak learning rate [default: 0.1; seed preset: 0.2]
    #[arg(long, value_name = "LR", allow_negative_numbers = true)]
    pub lr: Option<f32>,

    /// Learning-rate schedule [default: cosine; seed preset: constant]
    #[arg(long, value_enum)]
    pub schedule: Option<ScheduleArg>,

    /// SGD momentum, PyTorch semantics [default: 0.9; seed preset: 0]
    #[arg(long, value_name = "M", allow_negative_numbers = true)]
    pub momentum: Option<f32>,

    /// Dropout probability on the hidden layer [default: 0.2; seed preset: 0]
    #[arg(long, value_name = "P", allow_negative_numbers = true)]
    pub dropout: Option<f32>,

    /// Seed for initialisation, shuffling and dropout
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,

    /// Images held out from the end of the training file for validation
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub val: usize,

    /// Where to save the trained model (safetensors)
    #[arg(long, value_name = "PATH", default_value = "model.safetensors")]
    pub save: PathBuf,

    /// Do not save the model
    #[arg(long)]
    pub no_save: bool,

    /// Threads in the one worker pool; 0 means one per core
    #[arg(long, short = 'j', value_name = "N", default_value_t = 0)]
    pub threads: usize,

    /// Never draw progress bars (they are drawn only on a terminal anyway)
    #[arg(long)]
    pub no_progress: bool,
}

/// The most threads a pool may have: far beyond any sane machine, low
/// enough that a typo cannot exhaust the process table.
pub const MAX_THREADS: usize = 1024;

impl Args {
    /// Resolve presets and defaults, and check every value's range.
    pub fn into_config(self) -> Result<TrainConfig, UsageError> {
        let seed = self.preset == Preset::Seed;
        let bad = |m: String| Err(UsageError(m));
        let epochs = self.epochs.unwrap_or(if seed { 1000 } else { 20 });
        let lr = self.lr.unwrap_or(if seed { 0.2 } else { 0.1 });
        let momentum = self.momentum.unwrap_or(if seed { 0.0 } else { 0.9 });
        let dropout = self.dropout.unwrap_or(if seed { 0.0 } else { 0.2 });
        let schedule = match self.schedule.unwrap_or(if seed {
            ScheduleArg::Constant
        } else {
            ScheduleArg::Cosine
        }) {
            ScheduleArg::Cosine => Schedule::Cosine,
            ScheduleArg::Constant => Schedule::Constant,
        };
        if epochs == 0 || epochs > 1_000_000 {
            return bad(format!("--epochs {epochs}: must be between 1 and 1000000"));
        }
        if self.hidden == 0 || self.hidden > 65_536 {
            return bad(format!(
                "--hidden {}: must be between 1 and 65536",
                self.hidden
            ));
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
        if self.threads > MAX_THREADS {
            return bad(format!(
                "--threads {}: at most {MAX_THREADS} (0 means one per core)",
                self.threads
            ));
        }
        if let Some(0) = self.batch_size {
            return bad("--batch-size 0: must be at least 1, e.g. 128".into());
        }
        let threads = match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        Ok(TrainConfig {
            data_dir: self.data,
            epochs,
            // 0 = the whole training split; checked against the data once it is open.
            batch_size: self.batch_size.unwrap_or(if seed { 0 } else { 128 }),
            hidden: self.hidden,
            lr,
            momentum,
            schedule,
            dropout,
            init: if seed { Init::Normal(0.01) } else { Init::He },
            seed: self.seed,
            val: self.val,
            save: (!self.no_save).then_some(self.save),
            threads,
            progress: !self.no_progress,
        })
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

    fn parse(args: &[&str]) -> Result<TrainConfig, String> {
        let a = Args::try_parse_from(std::iter::once("simplenn").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        a.into_config().map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!((c.epochs, c.batch_size, c.hidden), (20, 128, 256));
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
}
