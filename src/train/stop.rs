//! Why a run ends early: it diverged, or a signal stopped it.

use std::path::PathBuf;

use crate::config::TrainConfig;
pub use crate::config::DIVERGED_LOSS;
use crate::signals;

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
    /// σ of a `TrainConfig.init` of `Normal(σ)` (a library caller's, or
    /// the seed preset's): where the first batch's loss, before any
    /// update ([`Self::before_any_update`]), is what diverged, the
    /// initial weights are to blame.
    pub init_sd: Option<f32>,
    /// `loss` is the run's first batch's, before its first update (set by
    /// the caller, which knows).
    pub before_any_update: bool,
    /// The dropout flag, its rate and what it drops, where inverted
    /// dropout's scale `1 / (1 − p)` is at least [`EXTREME_DROPOUT_SCALE`]
    /// (the larger rate of the two flags): a training batch's loss can
    /// then come from that scale alone, whatever the learning rate.
    pub extreme_dropout: Option<(&'static str, f32, &'static str)>,
}

/// Inverted dropout's scale `1 / (1 − p)` from which a diverged batch loss
/// names the dropout rate (p ≥ 0.99: a kept pixel or unit times 100 or more).
pub const EXTREME_DROPOUT_SCALE: f64 = 100.0;

/// [`Diverged::extreme_dropout`] of `cfg`.
fn extreme_dropout(cfg: &TrainConfig) -> Option<(&'static str, f32, &'static str)> {
    let (flag, p, what) = if cfg.input_dropout >= cfg.dropout {
        ("--input-dropout", cfg.input_dropout, "input pixel")
    } else {
        ("--dropout", cfg.dropout, "hidden unit")
    };
    (1.0 / (1.0 - f64::from(p)) >= EXTREME_DROPOUT_SCALE).then_some((flag, p, what))
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
            init_sd: match cfg.init {
                crate::model::Init::Normal(sd) => Some(sd),
                _ => None,
            },
            before_any_update: false,
            extreme_dropout: extreme_dropout(cfg),
        }
    }

    /// The flag to turn down: the learning rate, and the weight decay too
    /// where each step's decay alone ([`Self::decay_factor`]) overshoots, or
    /// Adam's β2 where it leaves the steps unbounded. A resumed run keeps
    /// its checkpoint's flags, so its advice is for a new run.
    fn advice(&self) -> String {
        let lr = crate::show::number(self.lr);
        // A training batch's loss, with each kept pixel or unit scaled by
        // 1 / (1 − p): that scale alone can make it, at any learning rate.
        let dropout = self
            .extreme_dropout
            .filter(|_| self.measured == BATCH_LOSS)
            .map(|(flag, p, what)| {
                // To two significant digits: 0.99999 is 0.99998999… in
                // f32, whose exact scale, 99864, reads as a mistake.
                let scale = 1.0 / (1.0 - f64::from(p));
                let digit = 10f64.powi(scale.log10().floor() as i32 - 1);
                let scale = crate::show::number(((scale / digit).round() * digit) as f32);
                (flag, format!("{flag} (now {}: each kept {what} is multiplied by 1/(1 − p), about {scale}, which alone can make such a loss)", crate::show::number(p)))
            });
        if let (true, Some(sd)) = (self.before_any_update, self.init_sd) {
            // No update has run: the learning rate played no part.
            return format!(
                "no update had run yet: the initial weights, drawn from N(0, {}²), give that loss; draw them with a smaller σ (TrainConfig.init)",
                crate::show::number(sd)
            );
        }
        if let (true, Some((flag, why))) = (self.before_any_update, &dropout) {
            // No update has run: the learning rate played no part.
            return format!("no update had run yet; try a lower {why}, or leave {flag} out");
        }
        let flags = if let Some((b1, b2)) = self.unbounded_betas {
            let (b1, b2) = (crate::show::number(b1), crate::show::number(b2));
            format!("a --beta2 above --beta1² (now {b2}, with --beta1 {b1}: Adam's steps then have no bound), or a lower --lr (now {lr})")
        } else if let (OPTIMISER_STATE, Some(wd)) = (self.measured, self.adam_l2) {
            let wd = crate::show::number(wd);
            format!("a lower --weight-decay (now {wd}: adam adds it times each weight to the gradient, whose square overflowed), or adamw's decoupled decay")
        } else if let Some(wd) = self
            .adam_l2
            .filter(|&wd| wd >= f32::MAX.sqrt() && !self.loss.is_finite())
        {
            // So large that any weight past 1 overflows the gradient's
            // square, or the gradient itself: a loss that is no number
            // (NaN, before the state is looked at) comes from that, where
            // Adam's step, bounded by --lr, cannot make one. A finite loss
            // past the bound is the rate's.
            let wd = crate::show::number(wd);
            format!("a lower --weight-decay (now {wd}: adam adds it times each weight to the gradient, which overflowed), or adamw's decoupled decay")
        } else if self.decay_factor <= 0.0 {
            let wd = crate::show::number(self.weight_decay);
            format!("a lower --weight-decay (now {wd}: with --lr {lr} each step's decay alone overshoots zero) or --lr")
        } else {
            format!("a lower --lr (now {lr})")
        };
        // The dropout rate first: where it is the cause, no --lr helps.
        let flags = match dropout {
            Some((_, why)) => format!("a lower {why}, or {flags}"),
            None => flags,
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

/// A mean loss that says the run has diverged: above [`DIVERGED_LOSS`], or
/// not a number at all.
pub(super) fn diverged(loss: f64) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A first batch's loss past the bound, before any update, with
    /// inverted dropout scaling kept units by 1/(1 − p) ≥ 100: the rate is
    /// named, not --lr; on a loss measured without dropout (the weights
    /// scored after a step), it is not.
    #[test]
    fn extreme_dropout_is_named_for_a_training_batch_only() {
        use clap::Parser;
        let config = |flags: &[&str]| {
            let cli =
                crate::cli::Cli::try_parse_from(["simplenn", "--hidden", "8"].iter().chain(flags))
                    .unwrap();
            match cli.into_command() {
                crate::cli::Command::Train(a) => a.into_config().unwrap(),
                _ => unreachable!(),
            }
        };
        let cfg = config(&["--dropout", "0.995", "--input-dropout", "0.99"]);
        let mut d = Diverged::new(&cfg, 1, 1, BATCH_LOSS, 150.0);
        d.before_any_update = true;
        assert!(d.to_string().ends_with("(mean batch loss 150.0); no update had run yet; try a lower --dropout (now 0.995: each kept hidden unit is multiplied by 1/(1 − p), about 200, which alone can make such a loss), or leave --dropout out"), "{d}");
        let d = Diverged::new(&cfg, 1, 3, "on the first 256 training images", 150.0);
        assert!(
            d.to_string().ends_with("); try a lower --lr (now 0.1)"),
            "{d}"
        );
        // β1² = β2 exactly (0.5², 0.25 in f32 as in reals): Adam's steps
        // already have no bound, and --beta2 is named.
        let adam = |b2: &str| {
            let cfg = config(&["--optimizer", "adam", "--beta1", "0.5", "--beta2", b2]);
            Diverged::new(&cfg, 1, 3, BATCH_LOSS, 150.0).unbounded_betas
        };
        assert_eq!(adam("0.25"), Some((0.5, 0.25)));
        assert_eq!(adam("0.2501"), None);
        // From p = 0.99 (a scale of 100) on, the rate is named; of two
        // equal rates, the input's.
        let cfg = config(&["--dropout", "0.5", "--input-dropout", "0.99"]);
        let d = Diverged::new(&cfg, 1, 3, BATCH_LOSS, 150.0);
        assert!(
            d.to_string().contains("try a lower --input-dropout (now 0.99: each kept input pixel is multiplied by 1/(1 − p), about 100,"),
            "{d}"
        );
        let cfg = config(&["--dropout", "0.995", "--input-dropout", "0.995"]);
        let d = Diverged::new(&cfg, 1, 3, BATCH_LOSS, 150.0);
        assert!(
            d.to_string()
                .contains("try a lower --input-dropout (now 0.995: each kept input pixel"),
            "{d}"
        );
        // Below a scale of 100, the rate is not named.
        let cfg = config(&["--dropout", "0.98", "--input-dropout", "0.5"]);
        let d = Diverged::new(&cfg, 1, 3, BATCH_LOSS, 150.0);
        assert!(
            d.to_string().ends_with("); try a lower --lr (now 0.1)"),
            "{d}"
        );
        // Adam's L2 decay so large that the gradient overflows (a NaN
        // loss before the state is looked at): no --lr would help, since
        // Adam's step is bounded by it; the decay is named. A modest one
        // is not.
        let adam = |wd: &str| {
            let cfg = config(&["--optimizer", "adam", "--weight-decay", wd, "--lr", "1e-30"]);
            Diverged::new(&cfg, 1, 2, BATCH_LOSS, f64::NAN).to_string()
        };
        let d = adam("3e38");
        assert!(d.ends_with("; try a lower --weight-decay (now 3e38: adam adds it times each weight to the gradient, which overflowed), or adamw's decoupled decay"), "{d}");
        assert!(adam("1e19").ends_with("; try a lower --lr (now 1e-30)"));
        assert!(adam("2e19").contains("try a lower --weight-decay (now 2e19:"));
        // A finite loss past the bound is the learning rate's, whatever
        // the decay.
        let cfg = config(&["--optimizer", "adam", "--weight-decay", "2e19", "--lr", "1"]);
        let d = Diverged::new(&cfg, 1, 2, BATCH_LOSS, 254.7).to_string();
        assert!(d.ends_with("; try a lower --lr (now 1)"), "{d}");
    }

    /// A NaN loss has diverged (it compares false with any bound), as has
    /// one past the bound; the bound itself has not.
    #[test]
    fn nan_and_losses_past_the_bound_are_divergence() {
        assert!(diverged(f64::NAN));
        assert!(diverged(f64::INFINITY));
        assert!(diverged(DIVERGED_LOSS * (1.0 + f64::EPSILON)));
        assert!(!diverged(DIVERGED_LOSS));
        assert!(!diverged(2.3));
    }

    #[test]
    fn diverged_losses_are_written_short() {
        assert_eq!(loss_words(6901.6), "6901.6");
        assert_eq!(loss_words(3.1011e37), "3.10e37");
        assert_eq!(loss_words(f64::NAN), "NaN");
        assert_eq!(loss_words(f64::INFINITY), "inf");
        // A million is the first loss in exponent form.
        assert_eq!(loss_words(999_999.9), "999999.9");
        assert_eq!(loss_words(1e6), "1.00e6");
    }
}
