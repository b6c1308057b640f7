//! The flags themselves (clap derive), each subcommand's, with the help
//! text that states each preset's defaults.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Defaults, DropoutMask, Milestones, Preset, Schedule};
use crate::model::hidden_name;
use crate::optim::{self, Kind};

use super::values::{
    parse_f32, parse_hidden, parse_holds_one, parse_host, parse_max_norm, path_parser, Hidden,
    MaxNorm,
};

/// The flags whose default a preset sets, each with that default as
/// `--help` and README's flag table state it (a test holds README to it):
/// the default preset's value, then in brackets every other preset's where
/// it differs, then defaults that another flag sets. Built once, from
/// [`Preset::defaults`], so a preset's change shows up in `--help` by itself.
pub fn preset_defaults() -> &'static [(&'static str, String); 13] {
    static NOTES: std::sync::OnceLock<[(&str, String); 13]> = std::sync::OnceLock::new();
    NOTES.get_or_init(notes)
}

fn notes() -> [(&'static str, String); 13] {
    let f = |x: f32| x.to_string();
    [
        ("--epochs", note(|d| Some(d.epochs.to_string()), "")),
        (
            "--batch-size",
            note(
                |d| match d.batch_size {
                    0 => Some("the whole training split".into()),
                    b => Some(b.to_string()),
                },
                "",
            ),
        ),
        ("--hidden", note(|d| Some(hidden_name(&d.hidden)), "")),
        (
            "--lr",
            note(
                |d| Some(f(d.lr)),
                &format!(
                    "an --optimizer outside the preset's family (SGD or Adam): {} for sgd and nesterov, {} for adam and adamw",
                    optim::SGD_LR,
                    optim::ADAM_LR
                ),
            ),
        ),
        ("--schedule", note(|d| Some(d.schedule.name().into()), "")),
        ("--optimizer", note(|d| Some(d.optimizer.name().into()), "")),
        // Momentum is SGD's: Adam presets have none to state.
        (
            "--momentum",
            note(|d| (!d.optimizer.is_adam()).then(|| f(d.momentum)), ""),
        ),
        (
            "--weight-decay",
            note(
                |d| Some(f(d.weight_decay)),
                &format!("--optimizer adamw: {}", optim::ADAMW_WEIGHT_DECAY),
            ),
        ),
        (
            "--max-norm",
            note(|d| Some(d.max_norm.map_or("none".into(), f)), ""),
        ),
        ("--dropout", note(|d| Some(f(d.dropout)), "")),
        ("--input-dropout", note(|d| Some(f(d.input_dropout)), "")),
        ("--dropout-mask", note(|d| Some(d.dropout_mask.name().into()), "")),
        ("--augment", note(|d| Some(d.augment.name()), "")),
    ]
}

/// `20 (seed: 1000, simard2003: 120, dropout2014: 100)`: `value` under the
/// default preset, then under each other preset where it differs (`None`:
/// the flag does not apply there), then `extra`.
fn note(value: impl Fn(&Defaults) -> Option<String>, extra: &str) -> String {
    let base = value(&Preset::Default.defaults()).expect("every flag applies to the default");
    let presets: Vec<String> = Preset::ALL[1..]
        .iter()
        .filter_map(|p| {
            let v = value(&p.defaults())?;
            (v != base).then(|| format!("{}: {v}", p.name()))
        })
        .collect();
    let brackets: Vec<String> = [presets.join(", "), extra.into()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    match brackets.is_empty() {
        true => base,
        false => format!("{base} ({})", brackets.join("; ")),
    }
}

/// `desc [default: …]`, the default from [`preset_defaults`].
fn with_default(desc: &str, flag: &str) -> String {
    let (_, note) = preset_defaults()
        .iter()
        .find(|(f, _)| *f == flag)
        .expect("a flag of preset_defaults");
    format!("{desc} [default: {note}]")
}

/// Train a multilayer perceptron (ReLU, softmax, cross-entropy) on MNIST or any
/// MNIST-format data, on every core, reproducibly, and use it: eval, predict,
/// plot. Without a subcommand, trains.
#[derive(Debug, Parser)]
#[command(
    name = "simplenn",
    version,
    propagate_version = true,
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

impl Args {
    /// `simplenn train` with no flag given: every value from the preset, or
    /// from a checkpoint's metadata under [`Args::into_plan`].
    pub fn no_flags() -> Args {
        // Parsing no arguments cannot fail: every flag is optional.
        Cli::try_parse_from(["simplenn"])
            .expect("no flags parse")
            .train
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
    /// Write a PNG of training images beside their distortions (--augment), to see what the network is trained on
    Augment(AugmentArgs),
    /// Serve a local page: draw digits for the model, see its errors, weights and learning curve
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
pub struct AugmentArgs {
    /// Directory holding the MNIST-format training files [default: $SIMPLENN_DATA, else ./data/mnist, else the source tree's data/mnist]
    #[arg(long, value_name = "DIR", value_parser = path_parser())]
    pub data: Option<PathBuf>,

    /// Training images to show, one row each (the first ones of the file), 1 to 1000 [default: 16, or all the file has if fewer]
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub count: Option<i64>,

    /// Distortions of each image: as drawn in epochs 1, 2, ..., 1 to 20
    #[arg(
        long,
        value_name = "N",
        default_value_t = 5,
        allow_negative_numbers = true
    )]
    pub versions: i64,

    /// The distortion: elastic, shift:N or affine, as `train --augment`
    #[arg(
        long,
        value_name = "KIND",
        default_value = "elastic",
        allow_hyphen_values = true
    )]
    pub augment: String,

    /// Elastic distortion: Gaussian smoothing of the displacement field, in pixels, in (0, 64] [default: 4]
    #[arg(long, value_parser = parse_holds_one, value_name = "SIGMA", allow_negative_numbers = true)]
    pub elastic_sigma: Option<f32>,

    /// Elastic distortion: displacement scale, in pixels, in [0, 1000] [default: 34]
    #[arg(long, value_parser = parse_holds_one, value_name = "ALPHA", allow_negative_numbers = true)]
    pub elastic_alpha: Option<f32>,

    /// The training run's --seed (the distortions are a function of seed, epoch and image)
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        allow_negative_numbers = true
    )]
    pub seed: u64,

    /// PNG file to write
    #[arg(long, short = 'o', value_name = "PATH", default_value = "augment.png", value_parser = path_parser())]
    pub output: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Model to serve (safetensors from --save, or a checkpoint)
    #[arg(long, value_name = "PATH", value_parser = path_parser())]
    pub model: PathBuf,

    /// Directory holding the MNIST-format test files, for the errors and the confusion matrix [default: $SIMPLENN_DATA, else ./data/mnist, else the source tree's data/mnist, else none]
    #[arg(long, value_name = "DIR", value_parser = path_parser())]
    pub data: Option<PathBuf>,

    /// Metrics log written by `simplenn train --metrics PATH`, for the learning curve
    #[arg(long, value_name = "PATH", value_parser = path_parser())]
    pub metrics: Option<PathBuf>,

    /// Text file naming the classes, one name a line for classes 0, 1, … in order (or an EMNIST mapping file) [default: the names the model file records, else none]
    #[arg(long, value_name = "FILE", value_parser = path_parser())]
    pub class_names: Option<PathBuf>,

    /// Port to listen on (0: any free port)
    #[arg(
        long,
        value_name = "PORT",
        default_value_t = 8080,
        allow_negative_numbers = true
    )]
    pub port: u16,

    /// Address to listen on; anything but loopback exposes the page, which has no authentication, to the network
    #[arg(long, value_name = "HOST", default_value = "127.0.0.1", value_parser = parse_host)]
    pub host: String,
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Model to evaluate (safetensors from --save, or a checkpoint)
    #[arg(long, value_name = "PATH", value_parser = path_parser())]
    pub model: PathBuf,

    /// Directory holding the MNIST-format test files [default: $SIMPLENN_DATA, else ./data/mnist, else the source tree's data/mnist]
    #[arg(long, value_name = "DIR", value_parser = path_parser())]
    pub data: Option<PathBuf>,

    /// Print one JSON object instead of tables
    #[arg(long)]
    pub json: bool,

    /// Text file naming the classes, one name a line for classes 0, 1, … in order (or an EMNIST mapping file) [default: the names the model file records, else none]
    #[arg(long, value_name = "FILE", value_parser = path_parser())]
    pub class_names: Option<PathBuf>,

    /// Threads in the worker pool, 1 to 1024, capped at one per core [default: one per core]
    #[arg(long, short = 'j', value_name = "N", allow_negative_numbers = true)]
    pub threads: Option<i64>,
}

#[derive(Debug, clap::Args)]
pub struct PredictArgs {
    /// Model to use (safetensors from --save, or a checkpoint)
    #[arg(long, value_name = "PATH", value_parser = path_parser())]
    pub model: PathBuf,

    /// PNG or JPEG images, each of one digit, any size, dark on light or light on dark; - reads one from standard input
    #[arg(value_name = "IMAGE", required = true, value_parser = path_parser())]
    pub images: Vec<PathBuf>,

    /// Print one JSON array instead of lines
    #[arg(long)]
    pub json: bool,

    /// Take each image's pixels as the model's inputs unchanged (grayscale, side × side, light ink on black, as the data set stores them): for images saved from the data set itself, which preparing again would resample
    #[arg(long)]
    pub as_is: bool,

    /// Text file naming the classes, one name a line for classes 0, 1, … in order (or an EMNIST mapping file) [default: the names the model file records, else none]
    #[arg(long, value_name = "FILE", value_parser = path_parser())]
    pub class_names: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct PlotArgs {
    /// Metrics log written by `simplenn train --metrics PATH`
    #[arg(value_name = "METRICS", value_parser = path_parser())]
    pub metrics: PathBuf,

    /// SVG file to write
    #[arg(long, short = 'o', value_name = "PATH", default_value = "curve.svg", value_parser = path_parser())]
    pub output: PathBuf,
}

/// Train flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory holding the four MNIST-format IDX files (or their .gz) [default: $SIMPLENN_DATA, else ./data/mnist, else the source tree's data/mnist]
    #[arg(long, value_name = "DIR", value_parser = path_parser())]
    pub data: Option<PathBuf>,

    /// Starting point for every other flag [default: default]
    #[arg(long, value_enum, ignore_case = true)]
    pub preset: Option<Preset>,

    // Flags that a preset sets take their help (description and default)
    // from `with_default`, so the defaults `--help` states are the presets'
    // own.
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          help = with_default("Passes over the training set, 1 to 1000000", "--epochs"))]
    pub epochs: Option<usize>,

    #[arg(long, value_name = "N", allow_negative_numbers = true,
          help = with_default("Images per SGD step, 1 to the training split's size", "--batch-size"))]
    pub batch_size: Option<usize>,

    #[arg(long, value_name = "N[,N...]", value_parser = parse_hidden, allow_hyphen_values = true,
          help = with_default("Hidden layer widths, input side first, each 1 to 1048576: 256, 1024,1024, 512,256,128, or none (softmax regression)", "--hidden"))]
    pub hidden: Option<Hidden>,

    /// Classes K, 2 to 256 [default: the largest training label + 1]
    #[arg(long, value_name = "K", allow_negative_numbers = true)]
    pub classes: Option<usize>,

    #[arg(long, value_parser = parse_holds_one, value_name = "LR", allow_negative_numbers = true,
          help = with_default("Peak learning rate, in (0, 100]", "--lr"))]
    pub lr: Option<f32>,

    #[arg(long, value_enum, ignore_case = true, help = with_default("Learning-rate schedule", "--schedule"))]
    pub schedule: Option<Schedule>,

    #[arg(long, value_enum, ignore_case = true,
          help = with_default("Update rule, PyTorch semantics: torch.optim.SGD, SGD(nesterov=True), Adam, AdamW", "--optimizer"))]
    pub optimizer: Option<Kind>,

    #[arg(long, value_parser = parse_f32, value_name = "M", allow_negative_numbers = true,
          help = with_default("SGD momentum, in [0, 1), for sgd and nesterov", "--momentum"))]
    pub momentum: Option<f32>,

    /// Adam's first-moment decay, in [0, 1), for adam and adamw [default: 0.9]
    #[arg(long, value_parser = parse_f32, value_name = "B1", allow_negative_numbers = true)]
    pub beta1: Option<f32>,

    /// Adam's second-moment decay, in [0, 1), for adam and adamw [default: 0.999]
    #[arg(long, value_parser = parse_f32, value_name = "B2", allow_negative_numbers = true)]
    pub beta2: Option<f32>,

    /// Adam's denominator term, above 0, for adam and adamw [default: 1e-8]
    #[arg(long, value_parser = parse_holds_one, value_name = "EPS", allow_negative_numbers = true)]
    pub eps: Option<f32>,

    #[arg(long, value_parser = parse_holds_one, value_name = "WD", allow_negative_numbers = true,
          help = with_default("Weight decay, 0 or more: L2 added to the gradient (sgd, nesterov, adam), decoupled w ← w·(1 − lr·wd) (adamw)", "--weight-decay"))]
    pub weight_decay: Option<f32>,

    /// Spare the biases from weight decay (by default, as in PyTorch, every parameter is decayed)
    #[arg(long)]
    pub no_decay_bias: bool,

    #[arg(long, value_parser = parse_max_norm, value_name = "C|none", allow_negative_numbers = true,
          help = with_default("Scale each unit's incoming weight vector back to L2 norm C (above 0) after every update where it is longer; none: no constraint (turns a preset's off)", "--max-norm"))]
    pub max_norm: Option<MaxNorm>,

    #[arg(long, value_parser = parse_f32, value_name = "P", allow_negative_numbers = true,
          help = with_default("Dropout probability on the input pixels, in [0, 1)", "--input-dropout"))]
    pub input_dropout: Option<f32>,

    #[arg(long, value_parser = parse_f32, value_name = "P", allow_negative_numbers = true,
          help = with_default("Dropout probability on every hidden layer, in [0, 1)", "--dropout"))]
    pub dropout: Option<f32>,

    #[arg(long, value_enum, ignore_case = true,
          help = with_default("Dropout masks: one per image (Srivastava 2014), or one per batch, which trains the thinned network (Graham 2015: fewer FLOP, a different regulariser)", "--dropout-mask"))]
    pub dropout_mask: Option<DropoutMask>,

    #[arg(long, value_name = "KIND", allow_hyphen_values = true,
          help = with_default("Distort every training image afresh each epoch: none, elastic (Simard 2003), shift:N (up to N pixels), affine", "--augment"))]
    pub augment: Option<String>,

    /// Elastic distortion: Gaussian smoothing of the displacement field, in pixels, in (0, 64] [default: 4]
    #[arg(long, value_parser = parse_holds_one, value_name = "SIGMA", allow_negative_numbers = true)]
    pub elastic_sigma: Option<f32>,

    /// Elastic distortion: displacement scale, in pixels, in [0, 1000] [default: 34]
    #[arg(long, value_parser = parse_holds_one, value_name = "ALPHA", allow_negative_numbers = true)]
    pub elastic_alpha: Option<f32>,

    /// Seed for initialisation, shuffling, dropout and augmentation [default: 1]
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub seed: Option<u64>,

    /// Images held out from the end of the training file for validation [default: 5000]
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub val: Option<usize>,

    /// Where to save the trained model (safetensors) [default: the --resume checkpoint's, else model.safetensors]
    #[arg(long, value_name = "PATH", value_parser = path_parser())]
    pub save: Option<PathBuf>,

    /// Do not save the model
    #[arg(long, conflicts_with = "save")]
    pub no_save: bool,

    /// Threads in the one worker pool, 1 to 1024, capped at one per core [default: one per core]
    #[arg(long, short = 'j', value_name = "N", allow_negative_numbers = true)]
    pub threads: Option<i64>,

    /// Never draw progress bars (they are drawn only on a terminal anyway)
    #[arg(long)]
    pub no_progress: bool,

    /// Continue the run saved in this checkpoint; flags left out take the checkpoint's values, but for --data, which it does not record (give the same data set again)
    #[arg(long, value_name = "PATH", value_parser = path_parser())]
    pub resume: Option<PathBuf>,

    /// Write a checkpoint (weights, momentum, position, flags) every N (1 or more) epochs and after the last
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub checkpoint_every: Option<usize>,

    /// Where checkpoints go (alone: one after the last epoch) [default: the --resume file, else checkpoint.safetensors beside the --save model, or in the current directory with --no-save]
    #[arg(long, value_name = "PATH", value_parser = path_parser())]
    pub checkpoint: Option<PathBuf>,

    /// Stop after this epoch (before the last), writing a checkpoint to continue from with --resume; exits 0, with no model saved
    #[arg(long, value_name = "EPOCH", allow_negative_numbers = true)]
    pub stop_after: Option<usize>,

    /// Write one JSON line per epoch (losses, accuracies, lr, time) to this file [default: the --resume checkpoint's, else none]
    #[arg(long, value_name = "PATH", value_parser = path_parser())]
    pub metrics: Option<PathBuf>,

    /// Write no metrics log, where the --resume checkpoint's run had one
    #[arg(long, conflicts_with = "metrics")]
    pub no_metrics: bool,

    /// Text file naming the classes, one name a line for classes 0, 1, … in order (or an EMNIST mapping file): saved with the model, for eval, predict and serve to show [default: the --resume checkpoint's, else none]
    #[arg(long, value_name = "FILE", value_parser = path_parser())]
    pub class_names: Option<PathBuf>,

    /// Also score the test set after every epoch (a report: nothing is chosen by it), and say when it first reached each of --milestones
    #[arg(long)]
    pub test_every_epoch: bool,

    /// Test accuracies (%) whose first epoch --test-every-epoch reports, at most 8, each in (0, 100], e.g. 85,90 for Fashion-MNIST [default: 98,99, or the --resume checkpoint's]
    #[arg(long, value_name = "P[,P...]", value_parser = Milestones::parse, allow_negative_numbers = true)]
    pub milestones: Option<Milestones>,

    /// Do not score the test set after every epoch, though the --resume checkpoint's run did
    #[arg(long, conflicts_with = "test_every_epoch")]
    pub no_test_every_epoch: bool,

    /// Serve the live page on 127.0.0.1:PORT while training, and after it until Ctrl-C [default PORT: 8080; 0 picks a free one]
    #[arg(long, value_name = "PORT", num_args = 0..=1, default_missing_value = "8080", allow_negative_numbers = true)]
    pub serve: Option<u16>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--help` (top level and `train`) and README's flag table give every
    /// preset-set flag's default as `preset_defaults` builds it from the
    /// presets themselves, so neither can drift from what a run does.
    #[test]
    fn help_and_readme_state_the_presets_defaults() {
        use clap::CommandFactory;
        let top = Cli::command();
        let train = top.find_subcommand("train").unwrap().clone();
        // README's flag table: the rows under its header, up to the first
        // line that is not a row (other tables have `--lr 0.0007` rows too).
        let table: Vec<&str> = include_str!("../../README.md")
            .lines()
            .skip_while(|l| *l != "| flag | default | meaning |")
            .take_while(|l| l.starts_with('|'))
            .collect();
        assert!(!table.is_empty(), "README has no flag table");
        for (flag, note) in preset_defaults() {
            let want = format!("[default: {note}]");
            for cmd in [&top, &train] {
                let arg = cmd
                    .get_arguments()
                    .find(|a| a.get_long() == Some(&flag[2..]))
                    .unwrap_or_else(|| panic!("no {flag}"));
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                assert!(help.ends_with(&want), "{flag}: {help:?} lacks {want:?}");
            }
            let row = table
                .iter()
                .find(|l| l.starts_with(&format!("| `{flag} ")))
                .unwrap_or_else(|| panic!("README's flag table has no row for {flag}"));
            let cell = row.split(" | ").nth(1).unwrap_or_default();
            assert_eq!(cell, note, "README's default for {flag}");
        }
        // The notes say what the presets set: spot-check one of each kind.
        let notes: std::collections::HashMap<_, _> = preset_defaults().iter().cloned().collect();
        assert_eq!(
            notes["--epochs"],
            "20 (seed: 1000, simard2003: 120, dropout2014: 100)"
        );
        assert_eq!(notes["--momentum"], "0.9 (seed: 0)");
        assert_eq!(notes["--max-norm"], "none (dropout2014: 2)");
        assert_eq!(notes["--weight-decay"], "0 (--optimizer adamw: 0.01)");
    }
}
