//! A run's shape: everything that shapes its weights (the resolved flags
//! and the identity of the training data), as a checkpoint's metadata
//! records it and `--resume` reads it back, every value checked.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::augment::{Augment, ELASTIC_ALPHA, ELASTIC_SIGMA};
use crate::config::{DropoutMask, Preset, Schedule, TrainConfig};
use crate::data::{Dataset, Mnist};
use crate::model::{hidden_name, parse_hidden, Init};
use crate::optim::{self, Kind};

use super::CHECKPOINT_VERSION;

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

    pub(super) fn to_metadata(&self) -> HashMap<String, String> {
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

    pub(super) fn from_metadata(m: &HashMap<String, String>, what: &Path) -> Result<Self> {
        let get = |k: &str| -> Result<&str> {
            m.get(&format!("simplenn.{k}"))
                .map(String::as_str)
                // Called once the file says it is a checkpoint: one key
                // missing is damage, not a --save model.
                .with_context(|| {
                    format!(
                        "{}: checkpoint metadata has no simplenn.{k}; the file is damaged, use another checkpoint",
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
        // Each value as a run writes it: a sign, leading zeros, spaces or
        // another spelling (`+8`, `010`, `0.50`, `5e-1`, `NONE`) reads as
        // a value, but no run wrote it. (A network without hidden layers
        // keeps its recorded dropout, read above as 0.)
        let written = shape.to_metadata();
        let mut keys: Vec<&String> = written.keys().collect();
        keys.sort();
        for k in keys {
            let key = k.trim_start_matches("simplenn.");
            if let Some(v) = m.get(k) {
                if *v != written[k] && !(key == "dropout" && shape.hidden.is_empty()) {
                    return Err(bad(key, v));
                }
            }
        }
        // No flag chooses the initialisation (each preset has its own), but
        // a library run's hand-built config may: any σ its checks allow,
        // finite and at least 0 (`train::checks`), with any preset.
        if let Init::Normal(sd) = shape.init {
            if !sd.is_finite() || sd < 0.0 {
                return Err(bad("init", get("init")?));
            }
        }
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
