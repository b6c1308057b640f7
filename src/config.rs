//! A training run's configuration: the plain, validated values that the
//! command line ([`crate::cli`]) produces and the trainer ([`crate::train`])
//! and checkpoints ([`crate::checkpoint`]) consume. Nothing here reads flags
//! or files.

use std::f64::consts::PI;
use std::path::PathBuf;

use crate::model::Init;
use crate::optim::{Kind, Optimizer};

/// A bad flag value, or flags that contradict each other or a checkpoint:
/// main prints it and exits with status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

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
    /// Hidden widths, input side first; empty for softmax regression.
    pub hidden: Vec<usize>,
    /// Classes `K` as declared by `--classes`; `None` takes the largest
    /// training label + 1.
    pub classes: Option<usize>,
    pub lr: f32,
    /// SGD's `μ` (sgd and nesterov; 0 for adam and adamw).
    pub momentum: f32,
    pub schedule: Schedule,
    /// `--optimizer` and Adam's flags (see [`crate::optim`]).
    pub optimizer: Kind,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// Decay biases too (PyTorch's default); `--no-decay-bias` clears it.
    pub decay_bias: bool,
    /// `--max-norm C`: each unit's incoming weights kept to L2 norm ≤ C.
    pub max_norm: Option<f32>,
    /// Dropout on the input pixels.
    pub input_dropout: f32,
    /// Dropout on every hidden layer.
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

impl TrainConfig {
    /// The optimiser these flags describe.
    pub fn optimizer(&self) -> Optimizer {
        Optimizer {
            kind: self.optimizer,
            momentum: self.momentum,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
            decay_bias: self.decay_bias,
        }
    }
}
