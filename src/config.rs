//! A training run's configuration: the plain, validated values that the
//! command line ([`crate::cli`]) produces and the trainer ([`crate::train`])
//! and checkpoints ([`crate::checkpoint`]) consume. Nothing here reads flags
//! or files.

use std::f64::consts::PI;
use std::path::PathBuf;

use crate::augment::Augment;
use crate::model::Init;
use crate::optim::{Kind, Optimizer};

/// The most epochs a run may have (and a metrics log may number).
pub const MAX_EPOCHS: usize = 1_000_000;

/// The largest `--lr` accepted.
pub const MAX_LR: f64 = 100.0;

/// A batch whose mean loss exceeds this (nats) has diverged: a uniform guess
/// scores ln 10 ≈ 2.3, and no working run gets anywhere near 100. The run
/// stops there, so no epoch's mean loss a run records is higher (as
/// [`recordable_loss`] allows for the sums' rounding).
pub const DIVERGED_LOSS: f64 = 100.0;

/// A mean training loss, or a sum of `n` per-image ones (`n` = 1 for a
/// mean), that a run could have recorded: finite, at least 0, and no
/// higher than [`DIVERGED_LOSS`] an image (and a millionth for rounding).
pub fn recordable_loss(loss: f64, n: usize) -> bool {
    loss.is_finite() && loss >= 0.0 && loss <= DIVERGED_LOSS * (1.0 + 1e-6) * n as f64
}

/// `--milestones`: the test accuracies, in percent, whose first epoch
/// `--test-every-epoch` reports (ascending, distinct, each in (0, 100] with
/// at most two decimals). No weight depends on them.
#[derive(Clone, Debug, PartialEq)]
pub struct Milestones(Vec<f64>);

impl Default for Milestones {
    /// 98 % and 99 %: MNIST's usual marks.
    fn default() -> Self {
        Milestones(vec![98.0, 99.0])
    }
}

impl Milestones {
    /// The most milestones a run reports.
    pub const MAX: usize = 8;

    /// Read `85,90` (any order; spaces around a value allowed). The error
    /// names the value at fault and the fix, without the flag's name.
    pub fn parse(s: &str) -> Result<Self, String> {
        let form = "write them as percentages, e.g. 85,90 or 98,99,99.5";
        let parts = s.split(',').count();
        if parts > Self::MAX {
            return Err(format!("{parts} milestones: at most {}", Self::MAX));
        }
        let mut ps = Vec::new();
        for (i, part) in s.split(',').enumerate() {
            let part = part.trim();
            if part.is_empty() {
                return Err(format!("milestone {} is empty; {form}", i + 1));
            }
            let p: f64 = part
                .parse()
                .map_err(|_| format!("{part:?} is not a number; {form}"))?;
            if !(p > 0.0 && p <= 100.0) {
                return Err(format!(
                    "{part}: a test accuracy is a percentage above 0 and at most 100; {form}"
                ));
            }
            // Compared in hundredths of a percent (exactly: see
            // `train::reached::at_least`), judged as written where the digits say it
            // (`98.000000000000001` would parse as 98), else by value.
            let decimals = match part.contains(['e', 'E']) {
                true => "",
                false => part.split('.').nth(1).unwrap_or(""),
            };
            if decimals.trim_end_matches('0').len() > 2 || (p * 100.0).round() / 100.0 != p {
                return Err(format!(
                    "{part}: at most two decimals (milestones are compared to the hundredth of a percent)"
                ));
            }
            if ps.contains(&p) {
                return Err(match Self::show(p) == part {
                    true => format!("{part} is given twice; give each milestone once"),
                    false => format!(
                        "{part} is {} again; give each milestone once",
                        Self::show(p)
                    ),
                });
            }
            ps.push(p);
        }
        ps.sort_by(f64::total_cmp);
        Ok(Milestones(ps))
    }

    /// The percentages, ascending.
    pub fn percents(&self) -> &[f64] {
        &self.0
    }

    /// A percentage as the flag, the report and checkpoints write it:
    /// `98`, `99.5`.
    pub fn show(p: f64) -> String {
        format!("{p}")
    }
}

impl std::fmt::Display for Milestones {
    /// The flag's form: `98,99`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|&p| Self::show(p)).collect();
        f.write_str(&parts.join(","))
    }
}

/// `--preset`: the starting point for every other flag. Its flag value is
/// also its name in checkpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// Minibatch SGD with momentum and a cosine schedule: the fast, accurate default.
    Default,
    /// The NumPy teaching recipe: full-batch gradient descent, lr 0.2, N(0, 0.01²) init, 1000 rounds, no momentum.
    Seed,
    /// Simard et al. 2003: 784-800-10 trained on elastically distorted digits (paper, on MNIST: 0.7 % test error).
    Simard2003,
    /// Srivastava et al. 2014: 784-1024-1024-1024-10, dropout 0.2 on inputs and 0.5 on hidden units, max-norm 2 (the paper's Appendix B.1; paper, on MNIST: 1.06 % error); Adam, batch 256, 100 epochs.
    Dropout2014,
}

impl Preset {
    /// The flag value.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Default => "default",
            Preset::Seed => "seed",
            Preset::Simard2003 => "simard2003",
            Preset::Dropout2014 => "dropout2014",
        }
    }

    /// The value of every flag this preset sets, for flags left out.
    pub fn defaults(self) -> Defaults {
        let default = Defaults {
            epochs: 20,
            batch_size: 128,
            hidden: vec![256],
            lr: 0.1,
            momentum: 0.9,
            schedule: Schedule::Cosine,
            dropout: 0.2,
            augment: Augment::None,
            init: Init::He,
            optimizer: Kind::Sgd,
            weight_decay: 0.0,
            max_norm: None,
            input_dropout: 0.0,
            dropout_mask: DropoutMask::Image,
        };
        match self {
            Preset::Default => default,
            Preset::Seed => Defaults {
                epochs: 1000,
                batch_size: 0,
                lr: 0.2,
                momentum: 0.0,
                schedule: Schedule::Constant,
                dropout: 0.0,
                init: Init::Normal(0.01),
                ..default
            },
            // Chosen on the validation split (README "Published results").
            Preset::Simard2003 => Defaults {
                epochs: 120,
                hidden: vec![800],
                lr: 0.05,
                dropout: 0.0,
                augment: Augment::Elastic {
                    sigma: crate::augment::ELASTIC_SIGMA,
                    alpha: crate::augment::ELASTIC_ALPHA,
                },
                ..default
            },
            // Adam, not the paper's SGD: after 50 epochs Adam's validation
            // accuracy was 98.84 %, SGD's (lr 0.1, momentum 0.9) 98.62 %
            // (README "Published results"). Max-norm 2 is the paper's
            // (Appendix B.1); at 3.5 it never bound in 50 epochs of Adam.
            // Validation: 98.90 % at 2, 98.94 % at 2.5, 98.84 % at 3.5.
            // Batch 256 for 100 epochs: the same number of steps as 50
            // epochs of 128, each epoch faster; validation 99.06 % against
            // 128's 98.90 %, in 891.9 s on 2 cores (815.1 s after the kernel's
            // prefetch of C: the same bytes). 150 epochs (seeds 1 and 2) ended
            // with a worse validation loss, 0.0496 against 0.0479. One
            // mask per batch (`--dropout-mask batch`, steps ~2× faster)
            // ended at 98.98 % validation in 100 epochs and 99.02 % in 200,
            // with losses 0.0481 and 0.0513 against 0.0462: not taken; over
            // seeds 1–5, 200 epochs of it averaged 98.968 % validation
            // against this recipe's 98.98 %: not taken either.
            Preset::Dropout2014 => Defaults {
                epochs: 100,
                batch_size: 256,
                hidden: vec![1024, 1024, 1024],
                optimizer: Kind::Adam,
                lr: 0.001,
                momentum: 0.0,
                dropout: 0.5,
                input_dropout: 0.2,
                max_norm: Some(2.0),
                ..default
            },
        }
    }

    /// Every preset, the default first.
    pub const ALL: [Preset; 4] = [
        Preset::Default,
        Preset::Seed,
        Preset::Simard2003,
        Preset::Dropout2014,
    ];

    /// The preset whose [`Preset::name`] is `s`.
    pub fn from_name(s: &str) -> Option<Self> {
        Preset::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// `--dropout-mask`: how dropout masks are drawn. Its flag values (`image`,
/// `batch`) are also its names in checkpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DropoutMask {
    /// A mask of its own for every image, as in Srivastava et al. 2014.
    Image,
    /// One mask for the whole batch (Graham et al. 2015): each step trains the thinned network: about (1 − p)² of each hidden-to-hidden product, (1 − p) of the first and last.
    Batch,
}

impl DropoutMask {
    /// The flag value: `image` or `batch`.
    pub fn name(self) -> &'static str {
        match self {
            DropoutMask::Image => "image",
            DropoutMask::Batch => "batch",
        }
    }

    /// The value whose [`DropoutMask::name`] is `s`.
    pub fn from_name(s: &str) -> Option<Self> {
        [DropoutMask::Image, DropoutMask::Batch]
            .into_iter()
            .find(|v| v.name() == s)
    }
}

/// Learning-rate schedule over the whole run. Its flag values (`cosine`,
/// `constant`) are also its names in checkpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Schedule {
    /// Step `k` of the run's `T` (from 0) takes `lr · ½(1 + cos(π k / T))`:
    /// the full rate first, the last step `lr · ½(1 − cos(π / T))`, just
    /// above 0 (PyTorch's `CosineAnnealingLR(T_max=T)` stepped after every
    /// batch).
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

/// What a [`Preset`] sets: every flag's value when the flag is left out.
#[derive(Clone, Debug, PartialEq)]
pub struct Defaults {
    pub epochs: usize,
    /// 0: the whole training split (full-batch gradient descent).
    pub batch_size: usize,
    pub hidden: Vec<usize>,
    pub lr: f32,
    pub momentum: f32,
    pub schedule: Schedule,
    pub dropout: f32,
    pub augment: Augment,
    pub init: Init,
    /// The optimiser; `lr`, `momentum` and `weight_decay` are for it (a
    /// different `--optimizer` starts from its own defaults).
    pub optimizer: Kind,
    pub weight_decay: f32,
    pub max_norm: Option<f32>,
    pub input_dropout: f32,
    pub dropout_mask: DropoutMask,
}

/// Everything a training run needs, already validated: built from the
/// flags by [`crate::cli::Args::into_config`] and
/// [`crate::cli::fit_to_data`], or by hand, in which case
/// [`crate::train::train`] checks each field first (an error naming it).
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// `--data`: where the data set was found (for the record:
    /// [`crate::train::train`] trains on the `Mnist` it is given).
    pub data_dir: PathBuf,
    /// `--epochs`: passes over the training split, 1 to [`MAX_EPOCHS`].
    pub epochs: usize,
    /// `--batch-size`: images a step, 1 to the training split's size (the
    /// flags' 0, the whole split, is resolved by
    /// [`crate::cli::fit_to_data`]).
    pub batch_size: usize,
    /// Hidden widths, input side first; empty for softmax regression.
    pub hidden: Vec<usize>,
    /// Classes `K` as declared by `--classes`; `None` takes the data's
    /// (`Mnist::classes`: the largest training label + 1 where it was
    /// opened without a count). `Some` must be the data's count.
    pub classes: Option<usize>,
    /// `--lr`: the peak learning rate, in (0, [`MAX_LR`]]; the schedule
    /// scales it a step.
    pub lr: f32,
    /// SGD's `μ` (sgd and nesterov; 0 for adam and adamw).
    pub momentum: f32,
    /// `--schedule`: the learning rate a step (see [`crate::optim`]).
    pub schedule: Schedule,
    /// `--optimizer` and Adam's flags (see [`crate::optim`]).
    pub optimizer: Kind,
    /// Adam's `β1`, `β2` (in [0, 1)) and `ε` (above 0); unused by sgd
    /// and nesterov.
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// `--weight-decay`: coupled (L2) for sgd, nesterov and adam,
    /// decoupled for adamw, as PyTorch's.
    pub weight_decay: f32,
    /// Decay biases too (PyTorch's default); `--no-decay-bias` clears it.
    pub decay_bias: bool,
    /// `--max-norm C`: each unit's incoming weights kept to L2 norm ≤ C.
    pub max_norm: Option<f32>,
    /// Dropout on the input pixels.
    pub input_dropout: f32,
    /// Dropout on every hidden layer.
    pub dropout: f32,
    /// One dropout mask per image or per batch.
    pub dropout_mask: DropoutMask,
    /// How training images are distorted on their way into a batch.
    pub augment: Augment,
    /// How the weights are drawn (biases start at 0).
    pub init: Init,
    /// The preset the flags started from (recorded in checkpoints).
    pub preset: Preset,
    /// `--seed`: the weights, the shuffles, the masks and the distortions
    /// are functions of it (the same bits at any thread count).
    pub seed: u64,
    /// Images held out from the end of the training file for validation.
    pub val: usize,
    /// `--save`: where the model goes when the run ends (`None`: kept
    /// only in the returned report).
    pub save: Option<PathBuf>,
    /// `--threads`: the threads asked for (≥ 1); the one rayon pool has
    /// at most one per core ([`crate::train::thread_pool`]).
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

#[cfg(test)]
mod tests {
    use super::{Milestones, Schedule};

    #[test]
    fn milestones_parse_sorted_and_refuse_what_no_accuracy_is() {
        let ok = |s: &str| Milestones::parse(s).unwrap().to_string();
        assert_eq!(Milestones::default().to_string(), "98,99");
        assert_eq!(ok("90, 85"), "85,90");
        assert_eq!(ok("99.5,98.25,100"), "98.25,99.5,100");
        assert_eq!(ok("0.01"), "0.01");
        assert_eq!(Milestones::parse("92.5").unwrap().percents(), [92.5]);
        let err = |s: &str| Milestones::parse(s).unwrap_err();
        assert!(
            err("85,,90").starts_with("milestone 2 is empty"),
            "{}",
            err("85,,90")
        );
        assert!(err("").starts_with("milestone 1 is empty"));
        assert!(
            err("85%").contains("\"85%\" is not a number"),
            "{}",
            err("85%")
        );
        for bad in ["0", "-5", "100.5", "nan", "inf"] {
            assert!(
                err(bad).contains("above 0 and at most 100"),
                "{bad}: {}",
                err(bad)
            );
        }
        for bad in ["98.125", "98.000000000000001", "99.999999999999999"] {
            assert!(
                err(bad).contains("at most two decimals"),
                "{bad}: {}",
                err(bad)
            );
        }
        assert_eq!(ok("98.500,1e2,1.234e1"), "12.34,98.5,100");
        assert!(err("1.2345e1").contains("at most two decimals"));
        assert_eq!(err("98,98.0"), "98.0 is 98 again; give each milestone once");
        assert_eq!(err("98,98"), "98 is given twice; give each milestone once");
        assert!(Milestones::parse("91,92,93,94,95,96,97,98").is_ok());
        assert_eq!(err("91,92,93,94,95,96,97,98,99"), "9 milestones: at most 8");
    }

    /// The cosine's shape, point by point: the full rate at the first step,
    /// half at the middle, `½(1 + cos(π/4))` a quarter in, nothing at the
    /// end, and falling every step between.
    #[test]
    fn cosine_falls_from_the_rate_to_zero_along_half_a_cosine() {
        let (base, total) = (0.1f32, 400u64);
        let at = |t| Schedule::Cosine.lr(base, t, total);
        assert_eq!(at(0), base);
        assert_eq!(at(200), 0.05);
        assert!((at(100) - 0.1 * 0.853_553_4).abs() < 1e-7, "{}", at(100));
        assert!((at(300) - 0.1 * 0.146_446_6).abs() < 1e-7, "{}", at(300));
        assert!(at(400).abs() < 1e-9, "{}", at(400));
        assert!((1..=total).all(|t| at(t) < at(t - 1)));
        // A run of no steps still has a rate, not a NaN.
        assert_eq!(Schedule::Cosine.lr(base, 0, 0), base);
        assert!((0..=total).all(|t| Schedule::Constant.lr(base, t, total) == base));
    }
}
