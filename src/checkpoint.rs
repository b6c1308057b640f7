//! Runs on disk: a checkpoint is a model file ([`crate::modelfile`]) plus
//! the optimiser's state and the metadata that resumes the run bit for bit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use safetensors::tensor::SafeTensors;

use crate::augment::{Augment, ELASTIC_ALPHA, ELASTIC_SIGMA};
use crate::classes::{self, ClassNames};
use crate::config::{DropoutMask, Milestones, Preset, Schedule, TrainConfig};
use crate::data::{Dataset, Mnist};
use crate::model::{hidden_name, parse_hidden, Init, Params};
use crate::modelfile::{
    from_bytes, layer_names, not_safetensors, put_image, read_safetensors, recorded_image,
    sound_loss, to_bytes, EXP_AVG, EXP_AVG_SQ, FIX_NOT_MODEL, LAST_LOSS_KEY, MOMENTUM,
};
use crate::optim::{self, Kind};

/// The way out where `--resume`'s file is not a checkpoint it can take.
const FIX_RESUME: &str =
    "--resume takes a checkpoint, written by --checkpoint, --checkpoint-every, --stop-after or Ctrl-C";

// A checkpoint is the same safetensors layout as a model plus the
// optimiser's state in slabs of the same layout, each under a prefix:
// sgd and nesterov keep their momentum buffer under `momentum.` (names
// `momentum.0.weight`, `momentum.0.bias`, `momentum.2.weight`, …; with
// momentum 0 it is never read, and holds the last gradient where the fused
// SGD path ran, zeros where `optim::update` did), adam and adamw their
// moments under `exp_avg.` and `exp_avg_sq.` (PyTorch's state names). The
// string metadata (`simplenn.*`) holds the run's position and every flag that
// shapes its weights. It loads as a model in `eval` and `predict` (the extra
// tensors are ignored), but PyTorch's strict `load_state_dict` would reject
// the state tensors, which is why `--save` writes the model's tensors alone
// and checkpoints go to their own file.
//
// Version 1 checkpoints (before optimisers and regularisers were flags) have
// none of their metadata: they load as sgd, no weight decay, no max-norm, no
// input dropout, which is what they ran.
//
// There is no RNG state to store: the shuffle of epoch `e` is a ChaCha8
// stream chosen by `(seed, e)` and the dropout mask of step `t` a function
// of `(seed, t)`, so `(seed, epoch, steps)` *is* the RNG state, and `steps`
// is also the learning-rate schedule's position.

/// Version of the checkpoint metadata written here; versions from 1 up to
/// it are read.
pub const CHECKPOINT_VERSION: u32 = 2;

/// Everything that shapes a run's weights: the resolved flags and the
/// identity of the training data. Two runs with equal shapes take the same
/// steps, so a checkpoint resumes only into a run of its own shape.
#[derive(Clone, Debug, PartialEq)]
pub struct RunShape {
    /// Hidden widths (empty: softmax regression).
    pub hidden: Vec<usize>,
    /// Classes `K` the run trains.
    pub classes: usize,
    pub batch_size: usize,
    pub epochs: usize,
    pub lr: f32,
    pub schedule: Schedule,
    pub momentum: f32,
    pub dropout: f32,
    /// The optimiser and its flags (see [`crate::optim`]).
    pub optimizer: Kind,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub decay_bias: bool,
    pub max_norm: Option<f32>,
    pub input_dropout: f32,
    pub dropout_mask: DropoutMask,
    pub augment: Augment,
    pub init: Init,
    pub preset: Preset,
    pub seed: u64,
    pub val: usize,
    /// Images in the training file (train + validation).
    pub train_images: usize,
    /// MD5 of the training images and labels, hex.
    pub data_md5: String,
    /// `(rows, cols)` of the training images: the MD5 sees only their
    /// bytes, and the same bytes read as 14 × 56 are other images. `None`
    /// in checkpoints from before it was recorded (then not compared).
    pub data_image: Option<(usize, usize)>,
}

impl RunShape {
    /// The shape of a run of `cfg` on `data` (reads the whole training set once to hash it).
    pub fn of(cfg: &TrainConfig, data: &Mnist) -> Self {
        let train = &data.train;
        let (md5, side) = (data_md5(train), Some(train.side()));
        Self::settings(cfg, data.classes, train.len(), md5, side)
    }

    /// This shape's data (classes, image count, MD5, image size) under
    /// `cfg`'s run settings: what a run of `cfg` on the same data records.
    pub fn with_settings(&self, cfg: &TrainConfig) -> Self {
        let md5 = self.data_md5.clone();
        Self::settings(cfg, self.classes, self.train_images, md5, self.data_image)
    }

    fn settings(
        cfg: &TrainConfig,
        classes: usize,
        train_images: usize,
        data_md5: String,
        data_image: Option<(usize, usize)>,
    ) -> Self {
        RunShape {
            hidden: cfg.hidden.clone(),
            classes,
            batch_size: cfg.batch_size,
            epochs: cfg.epochs,
            lr: cfg.lr,
            schedule: cfg.schedule,
            momentum: cfg.momentum,
            dropout: cfg.dropout,
            optimizer: cfg.optimizer,
            beta1: cfg.beta1,
            beta2: cfg.beta2,
            eps: cfg.eps,
            weight_decay: cfg.weight_decay,
            decay_bias: cfg.decay_bias,
            max_norm: cfg.max_norm,
            input_dropout: cfg.input_dropout,
            dropout_mask: cfg.dropout_mask,
            augment: cfg.augment,
            init: cfg.init,
            preset: cfg.preset,
            seed: cfg.seed,
            val: cfg.val,
            train_images,
            data_md5,
            data_image,
        }
    }

    /// How `train`, the training set of a run resuming this checkpoint,
    /// differs from the checkpoint's (its image count, image size and
    /// MD5), worded as [`RunShape::differences`]; empty for the same data.
    pub fn data_differences(&self, train: &Dataset) -> Vec<String> {
        let now = RunShape {
            train_images: train.len(),
            // Not recorded by older checkpoints, so not compared there.
            data_image: self.data_image.map(|_| train.side()),
            data_md5: data_md5(train),
            ..self.clone()
        };
        self.differences(&now)
    }

    /// Steps in one epoch of this run.
    pub fn steps_per_epoch(&self) -> u64 {
        (self.train_images.saturating_sub(self.val)).div_ceil(self.batch_size.max(1)) as u64
    }

    /// The differences from `other`, as `name: self vs other` strings.
    pub fn differences(&self, other: &RunShape) -> Vec<String> {
        let (a, b) = (self.to_metadata(), other.to_metadata());
        let mut out: Vec<String> = a
            .iter()
            .filter(|(k, v)| b.get(*k) != Some(*v))
            .map(|(k, v)| {
                let other = b.get(k).map_or("-", |s| s.as_str());
                format!("{} {v} vs {other}", k.trim_start_matches("simplenn."))
            })
            .collect();
        out.sort();
        out
    }

    fn to_metadata(&self) -> HashMap<String, String> {
        let mut m = HashMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(format!("simplenn.{k}"), v);
        };
        put("hidden", hidden_name(&self.hidden));
        put("classes", self.classes.to_string());
        put("batch_size", self.batch_size.to_string());
        put("epochs", self.epochs.to_string());
        put("lr", self.lr.to_string());
        put("schedule", self.schedule.name().into());
        put("momentum", self.momentum.to_string());
        put("dropout", self.dropout.to_string());
        put("optimizer", self.optimizer.name().into());
        put("beta1", self.beta1.to_string());
        put("beta2", self.beta2.to_string());
        put("eps", self.eps.to_string());
        put("weight_decay", self.weight_decay.to_string());
        put("decay_bias", self.decay_bias.to_string());
        put("max_norm", max_norm_name(self.max_norm));
        put("input_dropout", self.input_dropout.to_string());
        put("dropout_mask", self.dropout_mask.name().into());
        put("augment", self.augment.name());
        if let Augment::Elastic { sigma, alpha } = self.augment {
            put("elastic_sigma", sigma.to_string());
            put("elastic_alpha", alpha.to_string());
        }
        put("init", init_name(self.init));
        put("preset", self.preset.name().into());
        put("seed", self.seed.to_string());
        put("val", self.val.to_string());
        put("train_images", self.train_images.to_string());
        put("data_md5", self.data_md5.clone());
        if let Some((rows, cols)) = self.data_image {
            put("data_image", format!("{rows}x{cols}"));
        }
        m
    }

    fn from_metadata(m: &HashMap<String, String>, what: &Path) -> Result<Self> {
        let get = |k: &str| -> Result<&str> {
            m.get(&format!("simplenn.{k}"))
                .map(String::as_str)
                .with_context(|| {
                    format!(
                        "{}: not a simplenn checkpoint (no simplenn.{k} metadata); \
                         --resume takes a file written by --checkpoint-every or --stop-after, not a --save model",
                        what.display()
                    )
                })
        };
        let bad = |k: &str, v: &str| {
            anyhow::anyhow!(
                "{}: checkpoint metadata simplenn.{k} = {v:?} is invalid; the file is damaged, use another checkpoint",
                what.display()
            )
        };
        fn num<T: std::str::FromStr>(v: &str) -> Option<T> {
            v.parse().ok()
        }
        // Files without a version are read as version 1's; one of a later
        // version than this build reads is said to be, before its keys are
        // held to version 2's.
        let version = match m.get("simplenn.checkpoint_version") {
            None => 1,
            Some(v) => match v.parse::<u32>() {
                Ok(v) if (1..=CHECKPOINT_VERSION).contains(&v) => v,
                _ => bail!(
                    "{}: checkpoint version {v}, this simplenn reads versions 1 to {CHECKPOINT_VERSION}; a later simplenn wrote it: use that build, or a file this one wrote",
                    what.display()
                ),
            },
        };
        macro_rules! field {
            ($k:literal, $parse:expr) => {{
                let v = get($k)?;
                ($parse)(v).ok_or_else(|| bad($k, v))?
            }};
            // A field that version `$since` added: files of earlier versions
            // come from runs that had `$old`; from `$since` on every file
            // has it, and one without it was edited.
            ($k:literal, $parse:expr, $old:expr, $since:expr) => {{
                match m.get(concat!("simplenn.", $k)) {
                    None if version < $since => $old,
                    None => bail!(
                        "{}: checkpoint metadata has no simplenn.{}, which every version {version} checkpoint has; the file is damaged, use another checkpoint",
                        what.display(),
                        $k
                    ),
                    Some(v) => ($parse)(v.as_str()).ok_or_else(|| bad($k, v))?,
                }
            }};
        }
        let shape = RunShape {
            hidden: field!("hidden", |v| parse_hidden(v).ok()),
            // Early version-1 checkpoints predate other data sets: MNIST's
            // 10 classes. Every version 2 file has the key.
            classes: field!("classes", num::<usize>, 10, 2),
            batch_size: field!("batch_size", num::<usize>),
            epochs: field!("epochs", num::<usize>),
            lr: field!("lr", num::<f32>),
            schedule: field!("schedule", Schedule::from_name),
            momentum: field!("momentum", num::<f32>),
            dropout: field!("dropout", num::<f32>),
            optimizer: field!("optimizer", Kind::from_name, Kind::Sgd, 2),
            beta1: field!("beta1", num::<f32>, optim::BETA1, 2),
            beta2: field!("beta2", num::<f32>, optim::BETA2, 2),
            eps: field!("eps", num::<f32>, optim::EPS, 2),
            weight_decay: field!("weight_decay", num::<f32>, 0.0, 2),
            decay_bias: field!("decay_bias", num::<bool>, true, 2),
            max_norm: field!("max_norm", parse_max_norm, None, 2),
            input_dropout: field!("input_dropout", num::<f32>, 0.0, 2),
            // Added after version 2 was: early version 2 files lack it.
            dropout_mask: field!(
                "dropout_mask",
                DropoutMask::from_name,
                DropoutMask::Image,
                u32::MAX
            ),
            augment: {
                // σ and α are written with elastic and only then: each is
                // read, and checked, on its own key, and neither may stand
                // without it (a default in their place would resume another run).
                let damaged = |why: String| {
                    anyhow::anyhow!(
                        "{}: checkpoint metadata {why}; the file is damaged, use another checkpoint",
                        what.display()
                    )
                };
                let param = |k: &'static str| m.get(&format!("simplenn.{k}")).map(|v| (k, v));
                let params = [param("elastic_sigma"), param("elastic_alpha")];
                let stray = params.iter().flatten().next();
                match (m.get("simplenn.augment").map(String::as_str), stray) {
                    // Checkpoints from before augmentation had none.
                    (None, None) => Augment::None,
                    (None, Some((k, _))) => {
                        return Err(damaged(format!("has simplenn.{k} but no simplenn.augment")))
                    }
                    (Some("elastic"), _) => {
                        let mut read = [(0.0f32, ""); 2];
                        let keys = ["elastic_sigma", "elastic_alpha"];
                        for (r, (p, k)) in read.iter_mut().zip(params.iter().zip(keys)) {
                            let (_, v) = p.ok_or_else(|| {
                                damaged(format!(
                                    "has simplenn.augment = \"elastic\" but no simplenn.{k}"
                                ))
                            })?;
                            *r = (num::<f32>(v).ok_or_else(|| bad(k, v))?, v.as_str());
                        }
                        let [(sigma, s_raw), (alpha, a_raw)] = read;
                        // Each against its own range, σ's first as parse checks.
                        Augment::parse("elastic", sigma, ELASTIC_ALPHA)
                            .map_err(|_| bad("elastic_sigma", s_raw))?;
                        Augment::parse("elastic", sigma, alpha)
                            .map_err(|_| bad("elastic_alpha", a_raw))?
                    }
                    (Some(v), None) => Augment::parse(v, ELASTIC_SIGMA, ELASTIC_ALPHA)
                        .map_err(|_| bad("augment", v))?,
                    (Some(v), Some((k, _))) => {
                        return Err(damaged(format!(
                            "has simplenn.{k} with simplenn.augment = {v:?}, which has no such parameter"
                        )))
                    }
                }
            },
            init: field!("init", parse_init),
            // Checkpoints from before presets were recorded: the init tells.
            preset: match m.get("simplenn.preset") {
                None if get("init")? == "he" => Preset::Default,
                None => Preset::Seed,
                Some(v) => Preset::from_name(v).ok_or_else(|| bad("preset", v))?,
            },
            seed: field!("seed", num::<u64>),
            val: field!("val", num::<usize>),
            train_images: field!("train_images", num::<usize>),
            // 32 lower-case hex digits, as [`data_md5`] has always written.
            data_md5: match get("data_md5")? {
                v if v.len() == 32 && v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) => {
                    v.to_string()
                }
                v => return Err(bad("data_md5", v)),
            },
            data_image: match m.get("simplenn.data_image") {
                None => None,
                Some(v) => Some(
                    v.split_once('x')
                        .and_then(|(r, c)| Some((num::<usize>(r)?, num::<usize>(c)?)))
                        .ok_or_else(|| bad("data_image", v))?,
                ),
            },
        };
        // A network with no hidden layer drops no unit: its dropout is 0,
        // whatever builds before this rule recorded (the flag's default,
        // 0.2, or the preset's), so that `--dropout 0` resumes it.
        let shape = match shape.hidden.is_empty() {
            true => RunShape {
                dropout: 0.0,
                ..shape
            },
            false => shape,
        };
        // A shift as large as the images the run trained on, which no run
        // writes. (Not --no-decay-bias without weight decay: builds before
        // 04c8545 took it, and their checkpoints resume.)
        if let Some((rows, cols)) = shape.data_image {
            if shape.augment.check_fits(rows, cols, false).is_err() {
                bail!(
                    "{}: checkpoint metadata simplenn.augment = {:?} is impossible for its {rows} × {cols} images; the file is damaged, use another checkpoint",
                    what.display(),
                    shape.augment.name()
                );
            }
        }
        Ok(shape)
    }
}

/// `none` or the bound.
pub fn max_norm_name(c: Option<f32>) -> String {
    c.map_or("none".into(), |c| c.to_string())
}

fn parse_max_norm(s: &str) -> Option<Option<f32>> {
    match s {
        "none" => Some(None),
        v => v.parse().ok().map(Some),
    }
}

/// `he` or `normal:SIGMA`.
pub fn init_name(i: Init) -> String {
    match i {
        Init::He => "he".into(),
        Init::Normal(s) => format!("normal:{s}"),
    }
}

fn parse_init(s: &str) -> Option<Init> {
    match s.split_once(':') {
        None if s == "he" => Some(Init::He),
        Some(("normal", v)) => v.parse().ok().map(Init::Normal),
        _ => None,
    }
}

/// MD5 of a data set's images and labels, hex: cheap (≈ 0.1 s for MNIST)
/// and enough to tell one training file from another.
pub fn data_md5(data: &Dataset) -> String {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    for i in 0..data.len() {
        h.update(data.image(i));
    }
    let labels: Vec<u8> = (0..data.len()).map(|i| data.label(i)).collect();
    h.update(&labels);
    h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

/// A run's state between two steps: what `--resume` continues from.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub params: Params,
    /// Momentum buffers (sgd, nesterov) or Adam's `exp_avg`, same layout as `params`.
    pub velocity: Params,
    /// Adam's `exp_avg_sq` (adam, adamw).
    pub exp_avg_sq: Option<Params>,
    pub shape: RunShape,
    /// Updates taken, whatever the optimiser: the next step's position in
    /// the schedule and its dropout masks' counter (both count from 0);
    /// the next Adam update's `t` is `steps + 1`.
    pub steps: u64,
    /// The unfinished epoch's statistics so far, when `steps` lies inside
    /// an epoch (a Ctrl-C checkpoint), so that the resumed run reports the
    /// whole epoch, as an uninterrupted run does.
    pub so_far: Option<EpochSoFar>,
    /// The training loss of the last whole epoch (as the `--metrics` log
    /// records it), so that a resumed run can tell its own log from
    /// another run's. Absent before epoch 1 and in older checkpoints.
    pub last_epoch_loss: Option<f64>,
    /// How the run was being run, beyond what it trains.
    pub habits: Habits,
}

/// How a run was being run, beyond what it trains: what a resumed run
/// keeps unless told otherwise, so that a run resumed after a batch
/// system's time limit goes on checkpointing and logging as it did.
/// Nothing here changes a weight. Older checkpoints have none.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Habits {
    /// `--checkpoint-every N` (`--checkpoint PATH` alone: the run's epochs).
    pub checkpoint_every: Option<usize>,
    /// `--test-every-epoch`.
    pub test_every_epoch: bool,
    /// `--milestones`: the test accuracies whose first epoch the run
    /// reports (checkpoints of older simplenns: 98 % and 99 %).
    pub milestones: Milestones,
    /// When the run's test accuracy first reached each of `milestones`,
    /// for a resumed run's `--test-every-epoch` report; empty: none known.
    pub test_reached: Vec<Reach>,
    /// `--class-names`: the names the final model is saved with.
    pub class_names: Option<ClassNames>,
    /// Where the final model goes, as an absolute path (`Some(None)`:
    /// `--no-save`; `None`: not recorded, by an older simplenn, or, off
    /// unix, a path that is not UTF-8).
    pub save: Option<Option<PathBuf>>,
    /// `--metrics`, as an absolute path.
    pub metrics: Option<PathBuf>,
    /// Why the names the file records cannot be read (then `class_names`
    /// is `None`): an error only for a resumed run that is given no
    /// `--class-names` to stand in for them, since no weight depends on them.
    pub damaged_names: Option<String>,
}

/// What a run knows of the first epoch whose test accuracy reached a
/// milestone: `simplenn.test_reached_98` (for 98 %), absent, `none`,
/// `none from S`, `E` or `by E`. "Checked" below: the epoch's test
/// accuracy was scored with this milestone among the run's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reach {
    /// Not known: a checkpoint of an older simplenn (which kept no such
    /// key), or a run whose last epoch was not checked.
    #[default]
    Unknown,
    /// Every epoch so far was checked, and none reached it.
    Not,
    /// Epochs from this one (2 or later) on were checked and none reached
    /// it; some before it were not checked.
    NotFrom(usize),
    /// First reached in this epoch; every epoch before it was checked.
    At(usize),
    /// Reached in this epoch, and perhaps in earlier ones not checked.
    By(usize),
}

impl Reach {
    fn to_metadata(self) -> Option<String> {
        match self {
            Reach::Unknown => None,
            Reach::Not => Some("none".into()),
            Reach::NotFrom(s) => Some(format!("none from {s}")),
            Reach::At(e) => Some(e.to_string()),
            Reach::By(e) => Some(format!("by {e}")),
        }
    }

    /// Read back; `None` for a value no run writes, or an epoch outside
    /// `1..=done` (`2..=done` for `none from`).
    fn from_metadata(v: Option<&str>, done: u64) -> Option<Reach> {
        // As written: `02` or `+2` is no run's.
        let epoch = |t: &str| {
            t.parse::<usize>()
                .ok()
                .filter(|&e| e >= 1 && e as u64 <= done && e.to_string() == t)
        };
        Some(match v {
            None => Reach::Unknown,
            Some("none") => Reach::Not,
            Some(v) => match (v.strip_prefix("none from "), v.strip_prefix("by ")) {
                (Some(s), _) => Reach::NotFrom(epoch(s).filter(|&s| s >= 2)?),
                (_, Some(e)) => Reach::By(epoch(e)?),
                _ => Reach::At(epoch(v)?),
            },
        })
    }

    /// The epoch it was reached in, if it was.
    pub fn epoch(self) -> Option<usize> {
        match self {
            Reach::At(e) | Reach::By(e) => Some(e),
            Reach::Unknown | Reach::Not | Reach::NotFrom(_) => None,
        }
    }
}

/// How a path that is not UTF-8 is written in the metadata (JSON strings):
/// its bytes in hex after this. No absolute path begins so, and an older
/// simplenn takes the value for a relative path and ignores it.
const PATH_BYTES: &str = "bytes:";

/// `path` as a metadata value: itself, or where it is not UTF-8 (unix),
/// its bytes ([`PATH_BYTES`]); `None` elsewhere.
fn path_value(path: &Path) -> Option<String> {
    if let Some(p) = path.to_str() {
        return Some(p.to_owned());
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let hex: String = path
            .as_os_str()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Some(format!("{PATH_BYTES}{hex}"))
    }
    #[cfg(not(unix))]
    None
}

/// The path a metadata value of [`path_value`] names; `None` where its
/// bytes are not hex (or, off unix, are there at all).
fn path_of_value(v: &str) -> Option<PathBuf> {
    let Some(hex) = v.strip_prefix(PATH_BYTES) else {
        return Some(PathBuf::from(v));
    };
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        if hex.len() % 2 != 0 || !hex.is_ascii() {
            return None;
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        Some(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
    }
    #[cfg(not(unix))]
    {
        let _ = hex;
        None
    }
}

const EVERY_KEY: &str = "simplenn.checkpoint_every";
const TEST_EVERY_KEY: &str = "simplenn.test_every_epoch";
/// [`Habits::save`]: an absolute path, or `none`.
const SAVE_KEY: &str = "simplenn.save";
/// [`Habits::metrics`]: an absolute path.
const METRICS_KEY: &str = "simplenn.metrics";
/// Metadata key of [`Habits::milestones`], written only when they are not
/// the default 98 % and 99 % (so a default run's checkpoint is as before).
const MILESTONES_KEY: &str = "simplenn.milestones";

/// Metadata key of the [`Reach`] of milestone `p` (in percent).
fn reached_key(p: f64) -> String {
    format!("{REACHED_PREFIX}{}", Milestones::show(p))
}
const REACHED_PREFIX: &str = "simplenn.test_reached_";

/// Sums over the batches an epoch has run so far.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochSoFar {
    /// Sum of the per-image losses.
    pub loss_sum: f64,
    pub correct: usize,
    /// Images seen.
    pub seen: usize,
}

/// Metadata key of [`EpochSoFar`], written only by checkpoints taken
/// inside an epoch (so an epoch-end checkpoint's bytes are as before).
const SO_FAR_KEY: &str = "simplenn.epoch_so_far";

impl Checkpoint {
    /// Whole epochs done (`steps / steps_per_epoch`).
    pub fn epoch(&self) -> usize {
        (self.steps / self.shape.steps_per_epoch().max(1)) as usize
    }
}

/// An optimiser's state, as a checkpoint stores it.
#[derive(Clone, Copy, Debug)]
pub struct State<'a> {
    /// The momentum buffer (sgd, nesterov) or `exp_avg` (adam, adamw).
    pub velocity: &'a Params,
    /// `exp_avg_sq` (adam and adamw; required for them).
    pub exp_avg_sq: Option<&'a Params>,
}

/// The prefixes under which `kind`'s state slabs are stored.
pub fn state_names(kind: Kind) -> &'static [&'static str] {
    if kind.is_adam() {
        &[EXP_AVG, EXP_AVG_SQ]
    } else {
        &[MOMENTUM]
    }
}

/// Serialize a checkpoint (written with [`crate::atomic::write_atomic`]).
pub fn checkpoint_bytes(
    params: &Params,
    state: State,
    shape: &RunShape,
    steps: u64,
    image: (usize, usize),
    so_far: Option<EpochSoFar>,
    last_epoch_loss: Option<f64>,
) -> Vec<u8> {
    let at = (steps, image, so_far, last_epoch_loss);
    checkpoint_bytes_with(params, state, shape, at, Habits::default())
}

/// [`checkpoint_bytes`], recording the run's [`Habits`]; `at` is
/// `(steps, image, so_far, last_epoch_loss)`.
pub fn checkpoint_bytes_with(
    params: &Params,
    state: State,
    shape: &RunShape,
    (steps, image, so_far, last_epoch_loss): (u64, (usize, usize), Option<EpochSoFar>, Option<f64>),
    habits: Habits,
) -> Vec<u8> {
    let mut meta = shape.to_metadata();
    if let Some(n) = habits.checkpoint_every {
        meta.insert(EVERY_KEY.into(), n.to_string());
    }
    if habits.test_every_epoch {
        meta.insert(TEST_EVERY_KEY.into(), "true".into());
    }
    if habits.milestones != Milestones::default() {
        meta.insert(MILESTONES_KEY.into(), habits.milestones.to_string());
    }
    let milestones = habits.milestones.percents();
    for (&p, reach) in milestones.iter().zip(&habits.test_reached) {
        if let Some(v) = reach.to_metadata() {
            meta.insert(reached_key(p), v);
        }
    }
    if let Some(n) = &habits.class_names {
        meta.insert(classes::KEY.into(), n.to_metadata());
    }
    match &habits.save {
        Some(Some(path)) => {
            if let Some(p) = path_value(path) {
                meta.insert(SAVE_KEY.into(), p);
            }
        }
        Some(None) => {
            meta.insert(SAVE_KEY.into(), "none".into());
        }
        None => {}
    }
    if let Some(p) = habits.metrics.as_deref().and_then(path_value) {
        meta.insert(METRICS_KEY.into(), p);
    }
    put_image(&mut meta, image);
    // `{:?}` of an f64 reads back to the same bits.
    if let Some(s) = so_far {
        let v = format!("{:?},{},{}", s.loss_sum, s.correct, s.seen);
        meta.insert(SO_FAR_KEY.into(), v);
    }
    if let Some(loss) = last_epoch_loss {
        meta.insert(LAST_LOSS_KEY.into(), format!("{loss:?}"));
    }
    meta.insert("simplenn.kind".into(), "checkpoint".into());
    meta.insert(
        "simplenn.checkpoint_version".into(),
        CHECKPOINT_VERSION.to_string(),
    );
    meta.insert("simplenn.steps".into(), steps.to_string());
    let spe = shape.steps_per_epoch().max(1);
    meta.insert("simplenn.epoch".into(), (steps / spe).to_string());
    let slabs: Vec<(&str, &Params)> = match (shape.optimizer.is_adam(), state.exp_avg_sq) {
        (true, Some(sq)) => vec![(EXP_AVG, state.velocity), (EXP_AVG_SQ, sq)],
        (true, None) => panic!("an adam checkpoint needs exp_avg_sq"),
        (false, _) => vec![(MOMENTUM, state.velocity)],
    };
    to_bytes(params, &slabs, meta)
}

/// Read a checkpoint from `bytes`, checking tensors, metadata and that the
/// run position is possible for the stored shape.
pub fn checkpoint_from_bytes(bytes: &[u8], what: &Path) -> Result<Checkpoint> {
    let plain = from_bytes(bytes, what, &[])?;
    if plain.metadata.get("simplenn.kind").map(String::as_str) != Some("checkpoint") {
        bail!(
            "{}: not a simplenn checkpoint (a plain model?); {FIX_RESUME}",
            what.display()
        );
    }
    let shape = RunShape::from_metadata(&plain.metadata, what)?;
    // Its weights go before they are read again with the optimiser's
    // state: `read_safetensors` counts one copy of them, not two.
    drop(plain);
    let loaded = from_bytes(bytes, what, state_names(shape.optimizer))?;
    // State of another optimiser (momentum beside Adam's moments): no run
    // writes it, and it would be dropped without a word.
    let kept = state_names(shape.optimizer);
    let st = SafeTensors::deserialize(bytes).map_err(|e| not_safetensors(bytes, what, e))?;
    let mut names = st.names();
    names.sort();
    let foreign = names.into_iter().find(|n| {
        [MOMENTUM, EXP_AVG, EXP_AVG_SQ]
            .iter()
            .any(|p| !kept.contains(p) && n.strip_prefix(p).is_some_and(|r| r.starts_with('.')))
    });
    if let Some(name) = foreign {
        bail!(
            "{}: tensor {name:?} is state that {} does not keep, which no {} run writes; the file is damaged, use another checkpoint",
            what.display(),
            shape.optimizer.name(),
            shape.optimizer.name()
        );
    }
    let steps: u64 = loaded
        .metadata
        .get("simplenn.steps")
        .and_then(|s| s.parse().ok())
        .with_context(|| {
            format!(
                "{}: checkpoint has no valid simplenn.steps; the file is damaged, use another checkpoint",
                what.display()
            )
        })?;
    let dims = &loaded.params.dims;
    recorded_image(&loaded.metadata, dims.d(), what)?;
    if shape.hidden != dims.hidden() || shape.classes != dims.k() {
        bail!(
            "{}: metadata says hidden {} and {} classes but the tensors are {}; the file is damaged, use another checkpoint",
            what.display(),
            hidden_name(&shape.hidden),
            shape.classes,
            dims.name()
        );
    }
    if shape.batch_size == 0 || shape.val >= shape.train_images {
        bail!(
            "{}: checkpoint metadata (batch_size {}, val {}, train_images {}) is impossible; the file is damaged, use another checkpoint",
            what.display(),
            shape.batch_size,
            shape.val,
            shape.train_images
        );
    }
    let total = shape.steps_per_epoch().saturating_mul(shape.epochs as u64);
    if steps > total {
        bail!(
            "{}: checkpoint is at step {steps} of a {total}-step run; the file is damaged, use another checkpoint",
            what.display()
        );
    }
    let mid_epoch = !steps.is_multiple_of(shape.steps_per_epoch().max(1));
    // A metadata value no run writes.
    let damaged = |key: &str, v: &str| {
        // A long key or value is shown by its start: the line stays short.
        let cut = |t| {
            let start = crate::atomic::cut(t, 60);
            (start, if start.len() < t.len() { "…" } else { "" })
        };
        let ((key, more_key), (v, more)) = (cut(key), cut(v));
        anyhow::anyhow!(
            "{}: checkpoint metadata {key}{more_key} = {v:?}{more} is impossible; the file is damaged, use another checkpoint",
            what.display()
        )
    };
    // Derived from the steps: a value that disagrees was edited (checked
    // first, as the checks below take the steps as they are).
    let spe = shape.steps_per_epoch().max(1);
    let epochs_done = steps / spe;
    if let Some(v) = loaded.metadata.get("simplenn.epoch") {
        if v.parse::<u64>().ok() != Some(epochs_done) {
            let v = crate::atomic::cut(v, 60);
            bail!(
                "{}: checkpoint metadata simplenn.epoch = {v:?} disagrees with simplenn.steps = \"{steps}\" ({spe} steps an epoch); the file is damaged, use another checkpoint",
                what.display()
            );
        }
    }
    // Every batch before the last of an epoch is whole: the sums of a
    // checkpoint taken inside one cover this many images.
    let batches = steps % shape.steps_per_epoch().max(1);
    let whole = batches * shape.batch_size as u64;
    let so_far = match loaded.metadata.get(SO_FAR_KEY) {
        None => None,
        Some(v) => {
            let s = parse_so_far(v)
                .filter(|s| {
                    mid_epoch
                        && s.loss_sum.is_finite()
                        && s.loss_sum >= 0.0
                        && s.correct <= s.seen
                        && s.seen > 0
                        && s.seen as u64 <= whole
                        && (s.seen as u64).is_multiple_of(shape.batch_size as u64)
                })
                .ok_or_else(|| damaged(SO_FAR_KEY, v))?;
            // Fewer whole batches than the epoch has run: the builds of
            // 82e705f..7b5c776, resumed from a checkpoint without sums and
            // stopped again, summed only their own batches. Such sums are
            // no epoch's: the run resumes as from a checkpoint without any.
            (s.seen as u64 == whole).then_some(s)
        }
    };
    let last_epoch_loss = match loaded.metadata.get(LAST_LOSS_KEY) {
        None => None,
        Some(v) => Some(
            sound_loss(v)
                .filter(|_| steps >= spe)
                .ok_or_else(|| damaged(LAST_LOSS_KEY, v))?,
        ),
    };
    let mut state = loaded.extra.into_iter();
    let velocity = state
        .next()
        .with_context(|| format!("{}: checkpoint has no optimiser state", what.display()))?;
    let exp_avg_sq = state.next();
    let finite = |p: &Params| p.data.iter().all(|v| v.is_finite());
    if !(finite(&loaded.params) && finite(&velocity) && exp_avg_sq.iter().all(finite)) {
        bail!(
            "{}: checkpoint holds non-finite weights or optimiser state; use an earlier checkpoint",
            what.display()
        );
    }
    // A running mean of squares: a negative one would make Adam's step NaN,
    // blamed on the learning rate as if the run had diverged.
    if let Some(v) = &exp_avg_sq {
        let negative = (0..v.dims.layers()).find_map(|l| {
            let (w, b) = v.layer_slices(l);
            let [wn, bn] = layer_names(l);
            let neg = |s: &[f32]| s.iter().any(|x| *x < 0.0);
            [(neg(w), wn), (neg(b), bn)]
                .into_iter()
                .find_map(|(n, name)| n.then_some(name))
        });
        if let Some(name) = negative {
            bail!(
                "{}: checkpoint holds a negative Adam second moment (in {EXP_AVG_SQ}.{name}), which no run writes: the file is damaged; use an earlier checkpoint",
                what.display()
            );
        }
    }
    let checkpoint_every = match loaded.metadata.get(EVERY_KEY) {
        None => None,
        Some(v) => Some(
            v.parse::<usize>()
                .ok()
                .filter(|n| (1..=crate::config::MAX_EPOCHS).contains(n))
                .ok_or_else(|| damaged(EVERY_KEY, v))?,
        ),
    };
    let test_every_epoch = match loaded.metadata.get(TEST_EVERY_KEY).map(String::as_str) {
        None => false,
        Some("true") => true,
        Some(v) => return Err(damaged(TEST_EVERY_KEY, v)),
    };
    // Written absolute, so that a run resumed from elsewhere writes where
    // the stopped one would have. One that is no absolute path here (a
    // checkpoint from another system) is as good as none: the resumed run
    // is told where, or saves to the default, as before these were kept.
    let path_habit = |v: &String| {
        let p = path_of_value(v)?;
        (p.is_absolute() && !p.as_os_str().as_encoded_bytes().contains(&0)).then_some(p)
    };
    let save = match loaded.metadata.get(SAVE_KEY) {
        None => None,
        Some(v) if v == "none" => Some(None),
        Some(v) => path_habit(v).map(Some),
    };
    let metrics = loaded.metadata.get(METRICS_KEY).and_then(path_habit);
    let (class_names, damaged_names) = match loaded.metadata.get(classes::KEY) {
        None => (None, None),
        Some(v) => match ClassNames::from_metadata(v, shape.classes, what) {
            Ok(n) => (Some(n), None),
            Err(e) => (None, Some(e.to_string())),
        },
    };
    // As a run writes them: in order, without spaces or signs.
    let milestones = match loaded.metadata.get(MILESTONES_KEY) {
        None => Milestones::default(),
        Some(v) => Milestones::parse(v)
            .ok()
            .filter(|m| m.to_string() == *v)
            .ok_or_else(|| damaged(MILESTONES_KEY, v))?,
    };
    let keys: Vec<String> = milestones
        .percents()
        .iter()
        .map(|&p| reached_key(p))
        .collect();
    // A milestone's epoch for a milestone the run did not report.
    if let Some((k, v)) = loaded
        .metadata
        .iter()
        .filter(|(k, _)| k.starts_with(REACHED_PREFIX) && !keys.contains(k))
        .min()
    {
        return Err(damaged(k, v));
    }
    let mut test_reached = Vec::with_capacity(keys.len());
    for key in &keys {
        let v = loaded.metadata.get(key).map(String::as_str);
        test_reached.push(
            Reach::from_metadata(v, epochs_done)
                .ok_or_else(|| damaged(key, v.unwrap_or_default()))?,
        );
    }
    if test_reached.iter().all(|r| *r == Reach::Unknown) {
        test_reached.clear();
    }
    // A higher accuracy is a lower one too: never reached where a lower
    // one was not, nor before it.
    for (low, (high, key)) in test_reached
        .iter()
        .zip(test_reached.iter().zip(&keys).skip(1))
    {
        let impossible = match (low, high.epoch()) {
            (Reach::Not, high) => high.is_some(),
            (Reach::NotFrom(s), Some(b)) => b >= *s,
            (Reach::At(a), Some(b)) => b < *a,
            _ => false,
        };
        if impossible {
            let v = loaded.metadata.get(key).map_or("", String::as_str);
            return Err(damaged(key, v));
        }
    }
    Ok(Checkpoint {
        params: loaded.params,
        velocity,
        exp_avg_sq,
        shape,
        steps,
        so_far,
        last_epoch_loss,
        habits: Habits {
            milestones,
            test_reached,
            checkpoint_every,
            test_every_epoch,
            class_names,
            damaged_names,
            save,
            metrics,
        },
    })
}

/// `loss_sum,correct,seen`, as [`checkpoint_bytes`] writes it.
fn parse_so_far(v: &str) -> Option<EpochSoFar> {
    let mut it = v.split(',');
    let s = EpochSoFar {
        loss_sum: it.next()?.parse().ok()?,
        correct: it.next()?.parse().ok()?,
        seen: it.next()?.parse().ok()?,
    };
    it.next().is_none().then_some(s)
}

/// Load a checkpoint file (see [`checkpoint_from_bytes`]).
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint> {
    let bytes = read_safetensors(path, "checkpoint")?;
    checkpoint_from_bytes(&bytes, path).map_err(|e| {
        // A model's way out (`--save`'s file) is no checkpoint's.
        let m = e.to_string();
        match m.strip_suffix(FIX_NOT_MODEL) {
            Some(head) => anyhow::anyhow!("{head}{FIX_RESUME}"),
            None => e,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Dims, Init};
    use crate::modelfile::load_model_image;

    /// The settings version 2 added, which version 1 files lack.
    const VERSION_2_BEGAN_WITH: [&str; 8] = [
        "optimizer",
        "beta1",
        "beta2",
        "eps",
        "weight_decay",
        "decay_bias",
        "max_norm",
        "input_dropout",
    ];

    #[test]
    fn checkpoint_round_trip_and_damage() {
        let dims = Dims::mnist(&[4]);
        let (p, v) = (
            Params::init(dims.clone(), Init::He, 1),
            Params::init(dims, Init::Normal(0.01), 2),
        );
        let shape = RunShape {
            augment: Augment::Elastic {
                sigma: 3.0,
                alpha: 20.0,
            },
            init: Init::Normal(0.01),
            preset: Preset::Seed,
            ..round_trip_shape()
        };
        let state = State {
            velocity: &v,
            exp_avg_sq: None,
        };
        let bytes = checkpoint_bytes(&p, state, &shape, 25, (28, 28), None, None);
        let c = checkpoint_from_bytes(&bytes, Path::new("c")).unwrap();
        assert_eq!(
            (
                c.params.clone(),
                c.velocity.clone(),
                c.shape.clone(),
                c.steps
            ),
            (p.clone(), v.clone(), shape.clone(), 25)
        );
        assert_eq!(c.epoch(), 2);
        assert!(shape.differences(&shape).is_empty());
        let mut other = shape.clone();
        other.hidden = vec![8, 3];
        other.lr = 0.2;
        assert_eq!(
            shape.differences(&other),
            ["hidden 4 vs 8,3", "lr 0.1 vs 0.2"]
        );
        // The same bytes read as other images differ; a checkpoint from
        // before the geometry was recorded is not held to it.
        let mut rect = shape.clone();
        rect.data_image = Some((14, 56));
        assert_eq!(shape.differences(&rect), ["data_image 28x28 vs 14x56"]);
        let old = RunShape {
            data_image: None,
            ..shape.clone()
        };
        assert!(old.differences(&rect).is_empty());
        // A position past the end of the run is refused.
        let bytes = checkpoint_bytes(&p, state, &shape, 31, (28, 28), None, None);
        let e = checkpoint_from_bytes(&bytes, Path::new("c"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("step 31 of a 30-step run"), "{e}");
        // Inside an epoch (step 25 of epoch 3's 10), the epoch's sums so far
        // come back to the bit; damaged ones are named.
        let so_far = EpochSoFar {
            loss_sum: 0.1 + 0.2,
            correct: 77,
            seen: 500,
        };
        let bytes = checkpoint_bytes(&p, state, &shape, 25, (28, 28), Some(so_far), None);
        let c = checkpoint_from_bytes(&bytes, Path::new("c")).unwrap();
        assert_eq!(c.so_far, Some(so_far));
        assert_eq!(
            c.so_far.unwrap().loss_sum.to_bits(),
            (0.1f64 + 0.2).to_bits()
        );
        // (Five whole batches of 100 are 500 images: 499 or 501 no run saw.)
        let bad_sums = [
            "0.3,501,500",
            "-1.0,1,500",
            "NaN,1,500",
            "0.3,77",
            "0.3,77,500,1",
            "0.3,77,499",
            "0.3,77,501",
            "0.3,77,600",
            "0.3,0,0",
        ];
        for bad in bad_sums {
            let mut meta = from_bytes(&bytes, Path::new("c"), &[MOMENTUM])
                .unwrap()
                .metadata;
            meta.insert(SO_FAR_KEY.into(), bad.into());
            let b = to_bytes(&p, &[(MOMENTUM, &v)], meta);
            let e = checkpoint_from_bytes(&b, Path::new("c"))
                .err()
                .unwrap()
                .to_string();
            assert!(
                e.contains("simplenn.epoch_so_far") && e.contains("damaged"),
                "{bad}: {e}"
            );
        }
        // Sums of fewer whole batches than the epoch ran (builds that summed
        // only a resumed part's batches): dropped, as if none were written.
        let mut meta = from_bytes(&bytes, Path::new("c"), &[MOMENTUM])
            .unwrap()
            .metadata;
        meta.insert(SO_FAR_KEY.into(), "0.3,77,200".into());
        let b = to_bytes(&p, &[(MOMENTUM, &v)], meta);
        let c = checkpoint_from_bytes(&b, Path::new("c")).unwrap();
        assert_eq!((c.steps, c.so_far), (25, None));

        // Metadata that the tensors or the run's arithmetic contradict, and
        // optimiser state that is not finite: each refused, and said so.
        let at_20 = checkpoint_bytes(&p, state, &shape, 20, (28, 28), None, None);
        let meta = from_bytes(&at_20, Path::new("c"), &[MOMENTUM])
            .unwrap()
            .metadata;
        let error = |meta: HashMap<String, String>, v: &Params| {
            let b = to_bytes(&p, &[(MOMENTUM, v)], meta);
            match checkpoint_from_bytes(&b, Path::new("c")) {
                Ok(_) => "loaded".to_string(),
                Err(e) => e.to_string(),
            }
        };
        assert_eq!(error(meta.clone(), &v), "loaded");
        for (key, value, says) in [
            (
                "checkpoint_version",
                "0",
                "checkpoint version 0, this simplenn reads versions 1 to 2",
            ),
            (
                "checkpoint_version",
                "3",
                "checkpoint version 3, this simplenn reads versions 1 to 2",
            ),
            (
                "val",
                "1050",
                "(batch_size 100, val 1050, train_images 1050) is impossible",
            ),
            (
                "classes",
                "9",
                "says hidden 4 and 9 classes but the tensors are 784-4-10",
            ),
            // An unfinished epoch's sums on an epoch's last step (20 of 10-step epochs).
            (
                "epoch_so_far",
                "0.3,77,90",
                "simplenn.epoch_so_far = \"0.3,77,90\" is impossible",
            ),
            (
                "last_epoch_train_loss",
                "-0.5",
                "simplenn.last_epoch_train_loss = \"-0.5\" is impossible",
            ),
            (
                "last_epoch_train_loss",
                "NaN",
                "simplenn.last_epoch_train_loss = \"NaN\" is impossible",
            ),
            (
                "checkpoint_every",
                "0",
                "simplenn.checkpoint_every = \"0\" is impossible",
            ),
            (
                "test_every_epoch",
                "yes",
                "simplenn.test_every_epoch = \"yes\" is impossible",
            ),
            // Two epochs done (20 steps of 10).
            (
                "epoch",
                "7",
                "simplenn.epoch = \"7\" disagrees with simplenn.steps = \"20\" (10 steps an epoch)",
            ),
            // The steps edited: named with the epoch, not through the
            // checks that take them as they are (the last epoch's loss,
            // which a run that has not finished epoch 1 cannot have).
            (
                "steps",
                "9",
                "simplenn.epoch = \"2\" disagrees with simplenn.steps = \"9\" (10 steps an epoch)",
            ),
            (
                "test_reached_98",
                "3",
                "simplenn.test_reached_98 = \"3\" is impossible",
            ),
            (
                "test_reached_99",
                "0",
                "simplenn.test_reached_99 = \"0\" is impossible",
            ),
            (
                "test_reached_98",
                "by two",
                "simplenn.test_reached_98 = \"by two\" is impossible",
            ),
            (
                "milestones",
                "85,,90",
                "simplenn.milestones = \"85,,90\" is impossible",
            ),
            // Values a run would write otherwise.
            (
                "milestones",
                "85, 90",
                "simplenn.milestones = \"85, 90\" is impossible",
            ),
            (
                "milestones",
                "90,85",
                "simplenn.milestones = \"90,85\" is impossible",
            ),
            (
                "test_reached_98",
                "02",
                "simplenn.test_reached_98 = \"02\" is impossible",
            ),
            (
                "test_reached_98",
                "+2",
                "simplenn.test_reached_98 = \"+2\" is impossible",
            ),
            // `none from 1` is `none`; from epoch 3, past the 2 done.
            (
                "test_reached_98",
                "none from 1",
                "simplenn.test_reached_98 = \"none from 1\" is impossible",
            ),
            (
                "test_reached_98",
                "none from 3",
                "simplenn.test_reached_98 = \"none from 3\" is impossible",
            ),
            // A milestone the run did not report (it reported 98 and 99).
            (
                "test_reached_85",
                "1",
                "simplenn.test_reached_85 = \"1\" is impossible",
            ),
            // Fine alone, impossible with the rest: a shift as wide as the
            // 28 × 28 images.
            (
                "augment",
                "shift:28",
                "simplenn.augment = \"shift:28\" is impossible for its 28 × 28 images",
            ),
        ] {
            let mut m = meta.clone();
            m.insert(format!("simplenn.{key}"), value.into());
            if key == "augment" {
                // The shape's elastic parameters go with its elastic.
                m.retain(|k, _| !k.starts_with("simplenn.elastic_"));
            }
            let e = error(m, &v);
            assert!(e.contains(says), "{key} {value}: {e}");
        }
        // A later version than this build reads is said to be, whatever
        // its keys.
        let mut m = meta.clone();
        m.insert("simplenn.checkpoint_version".into(), "3".into());
        m.remove("simplenn.max_norm");
        assert!(
            error(m, &v).contains("checkpoint version 3, this simplenn reads versions 1 to 2"),
            "future version"
        );
        // A key every version 2 file has, missing: edited, not an old
        // file's default. A version 1 file never had it; nor did early
        // version 2 files have dropout_mask.
        assert_eq!(meta["simplenn.checkpoint_version"], "2");
        for key in std::iter::once("classes").chain(VERSION_2_BEGAN_WITH) {
            let mut m = meta.clone();
            m.remove(&format!("simplenn.{key}"));
            let e = error(m.clone(), &v);
            assert!(
                e.contains(&format!(
                    "checkpoint metadata has no simplenn.{key}, which every version 2 checkpoint has"
                )),
                "{key}: {e}"
            );
            m.insert("simplenn.checkpoint_version".into(), "1".into());
            assert_eq!(error(m, &v), "loaded", "{key}");
        }
        let mut m = meta.clone();
        m.remove("simplenn.dropout_mask");
        assert_eq!(error(m, &v), "loaded");
        // Milestones whose epochs contradict each other: the higher one's
        // key is named.
        for (entries, says) in [
            // 99 % reached where 98 % never was.
            (
                &[("test_reached_98", "none"), ("test_reached_99", "2")][..],
                "simplenn.test_reached_99 = \"2\" is impossible",
            ),
            // Of three milestones, the highest reached before the middle one.
            (
                &[
                    ("milestones", "90,95.5,99"),
                    ("test_reached_90", "1"),
                    ("test_reached_95.5", "2"),
                    ("test_reached_99", "by 1"),
                ],
                "simplenn.test_reached_99 = \"by 1\" is impossible",
            ),
            // 99 % reached in epoch 2, where 98 % was not, from epoch 2 on.
            (
                &[
                    ("test_reached_98", "none from 2"),
                    ("test_reached_99", "by 2"),
                ],
                "simplenn.test_reached_99 = \"by 2\" is impossible",
            ),
        ] {
            let mut m = meta.clone();
            for (key, value) in entries {
                m.insert(format!("simplenn.{key}"), (*value).into());
            }
            let e = error(m, &v);
            assert!(e.contains(says), "{entries:?}: {e}");
        }
        // A long value is shown by its start.
        let mut m = meta.clone();
        m.insert(MILESTONES_KEY.into(), "9".repeat(100_000));
        let e = error(m, &v);
        assert!(
            e.contains(&format!(
                "simplenn.milestones = \"{}\"… is impossible",
                "9".repeat(60)
            )),
            "{e}"
        );
        assert!(e.len() < 300, "{e}");
        // ...and so is a long key.
        let mut m = meta.clone();
        let long_key = format!("{REACHED_PREFIX}{}", "9".repeat(100_000));
        m.insert(long_key.clone(), "1".into());
        let e = error(m, &v);
        assert!(
            e.contains(&format!("{}… = \"1\" is impossible", &long_key[..60])),
            "{}",
            &e[..200.min(e.len())]
        );
        assert!(e.len() < 300, "{}", e.len());
        // Two milestones first reached in the same epoch are no damage.
        let habits = Habits {
            test_reached: vec![Reach::At(1), Reach::At(1)],
            ..Habits::default()
        };
        let b = checkpoint_bytes_with(
            &p,
            state,
            &shape,
            (20, (28, 28), None, None),
            habits.clone(),
        );
        let loaded = crate::checkpoint::checkpoint_from_bytes(&b, Path::new("c")).unwrap();
        assert_eq!(loaded.habits, habits);
        // Milestones other than 98 and 99 round-trip, under their own keys.
        let habits = Habits {
            milestones: Milestones::parse("95.5,85").unwrap(),
            test_reached: vec![Reach::By(2), Reach::NotFrom(2)],
            ..Habits::default()
        };
        let at = (20, (28, 28), None, None);
        let b = checkpoint_bytes_with(&p, state, &shape, at, habits.clone());
        let loaded = crate::checkpoint::checkpoint_from_bytes(&b, Path::new("c")).unwrap();
        assert_eq!(loaded.habits, habits);
        let (_, meta_of) = SafeTensors::read_metadata(&b).unwrap();
        let meta_of = meta_of.metadata().clone().unwrap();
        assert_eq!(meta_of[MILESTONES_KEY], "85,95.5");
        assert_eq!(meta_of["simplenn.test_reached_85"], "by 2");
        assert_eq!(meta_of["simplenn.test_reached_95.5"], "none from 2");
        // The run's habits read back; a checkpoint without them has none.
        let names: Vec<String> = (0..shape.classes).map(|c| format!("class {c}")).collect();
        let names = ClassNames::from_metadata(&names.join("\n"), shape.classes, Path::new("n"));
        let habits = Habits {
            checkpoint_every: Some(3),
            test_every_epoch: true,
            milestones: Milestones::default(),
            test_reached: vec![Reach::At(1), Reach::Not],
            class_names: Some(names.unwrap()),
            damaged_names: None,
            save: Some(Some(PathBuf::from("/runs/a b/model.safetensors"))),
            metrics: Some(PathBuf::from("/runs/a b/run.jsonl")),
        };
        let at = (20, (28, 28), None, None);
        let b = checkpoint_bytes_with(&p, state, &shape, at, habits.clone());
        assert_eq!(
            checkpoint_from_bytes(&b, Path::new("c")).unwrap().habits,
            habits
        );
        // Paths that are not UTF-8 are kept too, as their bytes: without
        // them a resumed run saved to ./model.safetensors instead.
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let odd = |b: &[u8]| PathBuf::from(std::ffi::OsStr::from_bytes(b));
            let habits = Habits {
                save: Some(Some(odd(b"/runs/m\xfe.safetensors"))),
                metrics: Some(odd(b"/runs/\xff.jsonl")),
                ..Default::default()
            };
            let b = checkpoint_bytes_with(&p, state, &shape, at, habits.clone());
            assert_eq!(
                checkpoint_from_bytes(&b, Path::new("c")).unwrap().habits,
                habits
            );
            let (_, written) = SafeTensors::read_metadata(&b).unwrap();
            let written = written.metadata().clone().unwrap();
            assert_eq!(written[METRICS_KEY], "bytes:2f72756e732fff2e6a736f6e6c");
            // Bytes that are not hex, or a path not absolute, are none.
            for value in [
                "bytes:2f7",
                "bytes:zz",
                "bytes:2f\u{e9}",
                "bytes:6d",
                "bytes:2f00",
            ] {
                let mut m = meta.clone();
                m.insert(SAVE_KEY.into(), value.into());
                let nb = to_bytes(&p, &[(MOMENTUM, &v)], m);
                let h = checkpoint_from_bytes(&nb, Path::new("c")).unwrap().habits;
                assert_eq!(h.save, None, "{value}");
            }
        }
        let no_save = Habits {
            save: Some(None),
            ..Default::default()
        };
        let nb = checkpoint_bytes_with(&p, state, &shape, at, no_save.clone());
        assert_eq!(
            checkpoint_from_bytes(&nb, Path::new("c")).unwrap().habits,
            no_save
        );
        // A path that is not absolute here (another system's, or not
        // simplenn's) is as good as none: the checkpoint still resumes.
        for (key, path) in [
            (SAVE_KEY, "model.safetensors"),
            (METRICS_KEY, "C:\\runs\\run.jsonl"),
        ] {
            let mut m = meta.clone();
            m.insert(key.into(), path.into());
            let nb = to_bytes(&p, &[(MOMENTUM, &v)], m);
            let h = checkpoint_from_bytes(&nb, Path::new("c")).unwrap().habits;
            assert_eq!((h.save, h.metrics), (None, None), "{key}");
        }
        // The default milestones are not written (a default run's
        // checkpoint is as before); their epochs are, under their old keys.
        let (_, written) = SafeTensors::read_metadata(&b).unwrap();
        let written = written.metadata().clone().unwrap();
        assert!(!written.contains_key(MILESTONES_KEY), "{written:?}");
        assert_eq!(written["simplenn.test_reached_98"], "1");
        assert_eq!(written["simplenn.test_reached_99"], "none");
        // Names for other classes than the checkpoint's are damage, kept
        // aside: a resumed run given --class-names does without them.
        let mut m = meta.clone();
        m.insert(classes::KEY.into(), "a\nb".into());
        let b = to_bytes(&p, &[(MOMENTUM, &v)], m);
        let h = checkpoint_from_bytes(&b, Path::new("c")).unwrap().habits;
        assert_eq!(h.class_names, None);
        let why = h.damaged_names.unwrap_or_default();
        assert!(
            why.contains(
                "simplenn.class_names has 2 names for its 10 classes: the file is damaged"
            ),
            "{why}"
        );
        let b = checkpoint_bytes(&p, state, &shape, 20, (28, 28), None, None);
        let none = checkpoint_from_bytes(&b, Path::new("c")).unwrap().habits;
        assert_eq!(none, Habits::default());
        // The last epoch's loss reads back to its bits; before any whole
        // epoch there is none to have.
        let loss = 0.1 + 0.2;
        let b = checkpoint_bytes(&p, state, &shape, 20, (28, 28), None, Some(loss));
        let c = checkpoint_from_bytes(&b, Path::new("c")).unwrap();
        assert_eq!(c.last_epoch_loss.map(f64::to_bits), Some(loss.to_bits()));
        let b = checkpoint_bytes(&p, state, &shape, 9, (28, 28), None, Some(loss));
        let e = checkpoint_from_bytes(&b, Path::new("c"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("last_epoch_train_loss") && e.contains("impossible"),
            "{e}"
        );
        let mut nan = v.clone();
        nan.data[5] = f32::NAN;
        let e = error(meta, &nan);
        assert!(e.contains("non-finite weights or optimiser state"), "{e}");
    }

    #[test]
    fn adam_state_round_trips_and_version_1_loads_as_sgd() {
        let dims = Dims::mnist(&[4, 3]);
        let p = Params::init(dims.clone(), Init::He, 1);
        let (m, mut v) = (
            Params::init(dims.clone(), Init::Normal(0.01), 2),
            Params::init(dims, Init::Normal(0.02), 3),
        );
        // A mean of squares is never negative.
        v.data.iter_mut().for_each(|x| *x = x.abs());
        let mut shape = RunShape {
            hidden: vec![4, 3],
            lr: 0.001,
            momentum: 0.0,
            dropout: 0.5,
            optimizer: Kind::Adamw,
            beta1: 0.8,
            beta2: 0.99,
            eps: 1e-7,
            weight_decay: 0.02,
            decay_bias: false,
            max_norm: Some(3.5),
            input_dropout: 0.2,
            dropout_mask: DropoutMask::Batch,
            ..round_trip_shape()
        };
        let state = State {
            velocity: &m,
            exp_avg_sq: Some(&v),
        };
        let bytes = checkpoint_bytes(&p, state, &shape, 12, (28, 28), None, None);
        let c = checkpoint_from_bytes(&bytes, Path::new("c")).unwrap();
        assert_eq!((&c.params, &c.velocity, &c.shape), (&p, &m, &shape));
        assert_eq!(c.exp_avg_sq.as_ref(), Some(&v));
        let names = from_bytes(&bytes, Path::new("c"), &[EXP_AVG, EXP_AVG_SQ]).unwrap();
        assert_eq!(names.extra, vec![m.clone(), v.clone()]);
        let mut negative = v.clone();
        negative.data[7] = -1.0;
        let state = State {
            velocity: &m,
            exp_avg_sq: Some(&negative),
        };
        let bad = checkpoint_bytes(&p, state, &shape, 12, (28, 28), None, None);
        let e = checkpoint_from_bytes(&bad, Path::new("c"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("negative Adam second moment (in exp_avg_sq.0.weight)")
                && e.contains("the file is damaged"),
            "{e}"
        );
        // Another optimiser's state beside its own: damage, not ignored.
        let meta = from_bytes(&bytes, Path::new("c"), &[]).unwrap().metadata;
        let three = to_bytes(
            &p,
            &[(EXP_AVG, &m), (EXP_AVG_SQ, &v), (MOMENTUM, &m)],
            meta.clone(),
        );
        let e = checkpoint_from_bytes(&three, Path::new("c"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tensor \"momentum.0.bias\" is state that adamw does not keep, which no adamw run writes; the file is damaged"),
            "{e}"
        );

        // A version-1 checkpoint: momentum slab, none of the new metadata.
        (shape.optimizer, shape.beta1, shape.beta2, shape.eps) = (Kind::Sgd, 0.9, 0.999, 1e-8);
        (shape.weight_decay, shape.decay_bias) = (0.0, true);
        (shape.max_norm, shape.input_dropout, shape.momentum) = (None, 0.0, 0.9);
        shape.dropout_mask = DropoutMask::Image;
        let mut meta = shape.to_metadata();
        for k in VERSION_2_BEGAN_WITH.into_iter().chain(["dropout_mask"]) {
            meta.remove(&format!("simplenn.{k}")).unwrap();
        }
        meta.insert("simplenn.kind".into(), "checkpoint".into());
        meta.insert("simplenn.checkpoint_version".into(), "1".into());
        meta.insert("simplenn.steps".into(), "12".into());
        let bytes = to_bytes(&p, &[(MOMENTUM, &m)], meta.clone());
        let c = checkpoint_from_bytes(&bytes, Path::new("old")).unwrap();
        assert_eq!((&c.params, &c.velocity, &c.shape), (&p, &m, &shape));
        assert_eq!(c.exp_avg_sq, None);
        let with_adam = to_bytes(&p, &[(MOMENTUM, &m), (EXP_AVG_SQ, &v)], meta);
        let e = checkpoint_from_bytes(&with_adam, Path::new("old"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tensor \"exp_avg_sq.0.bias\" is state that sgd does not keep"),
            "{e}"
        );
    }

    #[test]
    fn a_plain_model_is_not_a_checkpoint() {
        let p = Params::init(Dims::mnist(&[4]), Init::He, 1);
        let bytes = to_bytes(&p, &[], HashMap::new());
        let e = checkpoint_from_bytes(&bytes, Path::new("m.st"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("not a simplenn checkpoint"), "{e}");
    }

    /// A checkpoint records its whole epochs done and the version of its
    /// metadata (read by later versions to know what they are given).
    #[test]
    fn a_checkpoint_records_its_epoch_and_version() {
        // 1,000 training images at batch 100: 10 steps an epoch.
        let shape = round_trip_shape();
        for (steps, epoch) in [(0, "0"), (10, "1"), (25, "2"), (30, "3")] {
            let bytes = small_checkpoint(&shape, steps, (28, 28));
            let meta = from_bytes(&bytes, Path::new("c"), &[]).unwrap().metadata;
            let get = |k: &str| meta.get(k).map(String::as_str);
            assert_eq!(get("simplenn.epoch"), Some(epoch), "step {steps}");
            assert_eq!(get("simplenn.checkpoint_version"), Some("2"));
        }
    }

    /// A checkpoint of non-square images, loaded as a model (eval,
    /// predict), still says what shape its images were.
    #[test]
    fn a_checkpoint_of_non_square_images_keeps_their_shape() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("ck");
        let shape = RunShape {
            data_image: Some((14, 56)),
            ..round_trip_shape()
        };
        std::fs::write(&path, small_checkpoint(&shape, 5, (14, 56))).unwrap();
        assert_eq!(load_model_image(&path).unwrap().1, Some((14, 56)));
        // The two keys must agree: each written alone is a damaged file.
        for (data_image, image) in [((14, 56), (28, 28)), ((28, 28), (14, 56))] {
            let shape = RunShape {
                data_image: Some(data_image),
                ..round_trip_shape()
            };
            std::fs::write(&path, small_checkpoint(&shape, 5, image)).unwrap();
            let by_eval = load_model_image(&path).unwrap_err().to_string();
            let by_resume = checkpoint_from_bytes(&small_checkpoint(&shape, 5, image), &path)
                .err()
                .unwrap()
                .to_string();
            for e in [by_eval, by_resume] {
                assert!(
                    e.contains("simplenn.data_image") && e.contains("damaged"),
                    "{e}"
                );
            }
        }
    }

    /// Metadata that disagrees with the tensors is a damaged file, in
    /// `eval`'s loader and in `--resume`'s alike.
    #[test]
    fn metadata_that_disagrees_with_the_tensors_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let p = Params::init(Dims::mnist(&[4]), Init::He, 1);
        let model = |key: &str, value: &str| {
            let mut meta = HashMap::new();
            meta.insert("simplenn.hidden".to_string(), "4".to_string());
            meta.insert(key.to_string(), value.to_string());
            let path = t.path().join("m");
            std::fs::write(&path, to_bytes(&p, &[], meta)).unwrap();
            load_model_image(&path).map(|(_, image)| image)
        };
        assert_eq!(model("simplenn.image", "14x56").unwrap(), Some((14, 56)));
        // Another program's file (no simplenn.hidden) that records a square
        // shape: kept, so that eval refuses data of another layout.
        let foreign = t.path().join("foreign");
        let meta = HashMap::from([("simplenn.image".to_string(), "28x28".to_string())]);
        std::fs::write(&foreign, to_bytes(&p, &[], meta)).unwrap();
        assert_eq!(load_model_image(&foreign).unwrap().1, Some((28, 28)));
        for (key, value, says) in [
            (
                "simplenn.image",
                "4x9",
                "simplenn.image 4x9, but its first layer takes 784",
            ),
            (
                "simplenn.image",
                "banana",
                "simplenn.image \"banana\", not ROWSxCOLS",
            ),
            (
                "simplenn.hidden",
                "64",
                "simplenn.hidden \"64\", but its tensors are 784-4-10",
            ),
            (
                "simplenn.classes",
                "11",
                "simplenn.classes \"11\", but its tensors are 784-4-10",
            ),
        ] {
            let e = model(key, value).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains("the file is damaged"), "{e}");
        }
        let shape = RunShape {
            data_image: Some((4, 9)),
            ..round_trip_shape()
        };
        let e = checkpoint_from_bytes(&small_checkpoint(&shape, 5, (28, 28)), Path::new("c"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("simplenn.data_image 4x9, but its first layer takes 784"),
            "{e}"
        );
        let e = checkpoint_from_bytes(
            &small_checkpoint(&round_trip_shape(), 5, (4, 9)),
            Path::new("c"),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("simplenn.image 4x9"), "{e}");
    }

    /// A data set's MD5 that no run wrote (not 32 lower-case hex digits) is
    /// damage to the checkpoint, not another data set to resume on.
    #[test]
    fn a_data_md5_no_run_wrote_is_damage() {
        let meta = round_trip_shape().to_metadata();
        for v in [
            "abc",
            "",
            "0123456789ABCDEF0123456789ABCDEF",
            "0123456789abcdef0123456789abcdeg",
        ] {
            let mut m = meta.clone();
            m.insert("simplenn.data_md5".into(), v.into());
            let e = RunShape::from_metadata(&m, Path::new("c"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!(
                    "simplenn.data_md5 = {v:?} is invalid; the file is damaged"
                )),
                "{e}"
            );
        }
        assert!(RunShape::from_metadata(&meta, Path::new("c")).is_ok());
    }

    /// The distortion's metadata read key by key: a damaged σ or α is named
    /// as itself (it was blamed on `simplenn.augment`), and a missing one is
    /// an error, not the paper's value in its place (which resumed another
    /// run); σ or α beside no elastic distortion is damage too.
    #[test]
    fn augment_metadata_is_read_key_by_key() {
        let shape = RunShape {
            augment: Augment::Elastic {
                sigma: 3.0,
                alpha: 20.0,
            },
            ..round_trip_shape()
        };
        let meta = shape.to_metadata();
        let read = |edit: &dyn Fn(&mut HashMap<String, String>)| {
            let mut m = meta.clone();
            edit(&mut m);
            RunShape::from_metadata(&m, Path::new("c")).map(|s| s.augment)
        };
        assert_eq!(read(&|_| {}).unwrap(), shape.augment);
        let set = |k: &'static str, v: &'static str| {
            move |m: &mut HashMap<String, String>| {
                m.insert(format!("simplenn.{k}"), v.into());
            }
        };
        let drop = |k: &'static str| {
            move |m: &mut HashMap<String, String>| {
                m.remove(&format!("simplenn.{k}"));
            }
        };
        for (edit, says) in [
            (
                &set("elastic_sigma", "nan") as &dyn Fn(&mut HashMap<String, String>),
                "simplenn.elastic_sigma = \"nan\" is invalid",
            ),
            (&set("elastic_sigma", "0"), "simplenn.elastic_sigma = \"0\""),
            (
                &set("elastic_alpha", "-1"),
                "simplenn.elastic_alpha = \"-1\"",
            ),
            (&set("elastic_alpha", "x"), "simplenn.elastic_alpha = \"x\""),
            (
                &drop("elastic_sigma"),
                "has simplenn.augment = \"elastic\" but no simplenn.elastic_sigma",
            ),
            (
                &drop("augment"),
                "has simplenn.elastic_sigma but no simplenn.augment",
            ),
            (
                &set("augment", "affine"),
                "has simplenn.elastic_sigma with simplenn.augment = \"affine\"",
            ),
            (&set("augment", "wobble"), "simplenn.augment = \"wobble\""),
        ] {
            let e = read(edit).unwrap_err().to_string();
            assert!(
                e.contains(says) && e.ends_with("the file is damaged, use another checkpoint"),
                "{e}"
            );
        }
        // Checkpoints from before augmentation: none at all.
        let none = |m: &mut HashMap<String, String>| {
            for k in ["augment", "elastic_sigma", "elastic_alpha"] {
                m.remove(&format!("simplenn.{k}"));
            }
        };
        assert_eq!(read(&none).unwrap(), Augment::None);
    }

    /// A paper preset with He initialisation comes back as itself, not as
    /// the default preset that an older checkpoint without the key is
    /// taken for.
    #[test]
    fn a_checkpoint_keeps_its_preset() {
        for preset in [Preset::Simard2003, Preset::Dropout2014, Preset::Default] {
            let shape = RunShape {
                preset,
                init: Init::He,
                ..round_trip_shape()
            };
            let bytes = small_checkpoint(&shape, 5, (28, 28));
            let c = checkpoint_from_bytes(&bytes, Path::new("c")).unwrap();
            assert_eq!(c.shape.preset, preset);
        }
    }

    /// A checkpoint of a 784-4-10 model (its weights standing in for the
    /// momentum) after `steps` steps of `shape`, its images `image`.
    fn small_checkpoint(shape: &RunShape, steps: u64, image: (usize, usize)) -> Vec<u8> {
        let p = Params::init(Dims::mnist(&[4]), Init::He, 1);
        let state = State {
            velocity: &p,
            exp_avg_sq: None,
        };
        checkpoint_bytes(&p, state, shape, steps, image, None, None)
    }

    /// The run shape of a small checkpoint: 784-4-10, 1,000 training images
    /// at batch 100 (10 steps an epoch), 3 epochs.
    fn round_trip_shape() -> RunShape {
        RunShape {
            hidden: vec![4],
            classes: 10,
            batch_size: 100,
            epochs: 3,
            lr: 0.1,
            schedule: Schedule::Cosine,
            momentum: 0.9,
            dropout: 0.2,
            optimizer: Kind::Sgd,
            beta1: optim::BETA1,
            beta2: optim::BETA2,
            eps: optim::EPS,
            weight_decay: 0.0,
            decay_bias: true,
            max_norm: None,
            input_dropout: 0.0,
            dropout_mask: DropoutMask::Image,
            augment: Augment::None,
            init: Init::He,
            preset: Preset::Default,
            seed: 7,
            val: 50,
            train_images: 1050,
            data_md5: "0123456789abcdef0123456789abcdef".into(),
            data_image: Some((28, 28)),
        }
    }
}
