//! Runs on disk: a checkpoint is a model file ([`crate::modelfile`]) plus
//! the optimiser's state and the metadata that resumes the run bit for bit.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use safetensors::tensor::SafeTensors;

use crate::classes::{self, ClassNames};
use crate::config::Milestones;
use crate::model::{hidden_name, Params};
use crate::modelfile::{
    from_bytes, layer_names, not_safetensors, put_image, read_safetensors, recorded_image,
    sound_loss, to_bytes, EXP_AVG, EXP_AVG_SQ, FIX_BAD_WEIGHTS, FIX_NOT_MODEL, LAST_LOSS_KEY,
    MOMENTUM,
};
use crate::optim::Kind;

mod shape;
#[cfg(test)]
mod tests;

pub use shape::{data_md5, init_name, max_norm_name, RunShape};

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
    /// What the run last saw at `save` (its [`crate::atomic::Stamp`];
    /// `Some(None)`: no file there): a run resumed from the checkpoint
    /// starts from it, so that a model another process wrote there after
    /// this run stopped is not replaced unseen. `None`: not recorded.
    pub save_seen: Option<Option<crate::atomic::Stamp>>,
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

/// The path a metadata value of [`path_value`] names: `Ok(None)` off unix
/// for its bytes (a path there cannot hold them), `Err` where the bytes
/// are not the hex that [`path_value`] writes (no run writes that).
fn path_of_value(v: &str) -> Result<Option<PathBuf>, ()> {
    let Some(hex) = v.strip_prefix(PATH_BYTES) else {
        return Ok(Some(PathBuf::from(v)));
    };
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        if hex.len() % 2 != 0 || !hex.is_ascii() {
            return Err(());
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()
            .ok_or(())?;
        Ok(Some(PathBuf::from(std::ffi::OsString::from_vec(bytes))))
    }
    #[cfg(not(unix))]
    {
        let _ = hex;
        Ok(None)
    }
}

const EVERY_KEY: &str = "simplenn.checkpoint_every";
const TEST_EVERY_KEY: &str = "simplenn.test_every_epoch";
/// [`Habits::save`]: an absolute path, or `none`.
const SAVE_KEY: &str = "simplenn.save";
/// [`Habits::save_seen`]: [`crate::atomic::Stamp::to_value`], or `none`.
const SAVE_SEEN_KEY: &str = "simplenn.save_seen";
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
    if let (Some(Some(_)), Some(seen)) = (&habits.save, habits.save_seen) {
        let v = seen.map_or("none".into(), |s| s.to_value());
        meta.insert(SAVE_SEEN_KEY.into(), v);
    }
    if let Some(p) = habits.metrics.as_deref().and_then(path_value) {
        meta.insert(METRICS_KEY.into(), p);
    }
    put_image(&mut meta, image);
    if let Some(s) = so_far {
        meta.insert(SO_FAR_KEY.into(), so_far_value(&s));
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
    // A model given for a checkpoint is said to be one before its weights
    // are judged (a model's faults have a model's fixes).
    // (The header's tree is dropped before the weights are read: a read
    // holds a small multiple of the file at most, tests/parsers_prop.rs.)
    let checkpoint = {
        let (_, header) =
            SafeTensors::read_metadata(bytes).map_err(|e| not_safetensors(bytes, what, e))?;
        let kind = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get("simplenn.kind"));
        kind.map(String::as_str) == Some("checkpoint")
    };
    if !checkpoint {
        bail!(
            "{}: not a simplenn checkpoint (a plain model?); {FIX_RESUME}",
            what.display()
        );
    }
    let plain = from_bytes(bytes, what, &[])?;
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
        .and_then(|s| s.parse().ok().filter(|n: &u64| n.to_string() == *s))
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
        if *v != epochs_done.to_string() {
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
                        && crate::config::recordable_loss(s.loss_sum, s.seen)
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
                .filter(|l| steps >= spe && format!("{l:?}") == *v)
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
                .filter(|n| (1..=crate::config::MAX_EPOCHS).contains(n) && n.to_string() == *v)
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
    // One no system names (empty, a NUL in it, bytes that are not hex),
    // or one not as a run writes it (a UTF-8 path as bytes, upper-case
    // hex), is damage.
    let path_habit = |key: &str, v: &String| match path_of_value(v) {
        Ok(Some(p))
            if p.as_os_str().is_empty()
                || p.as_os_str().as_encoded_bytes().contains(&0)
                || path_value(&p).as_deref() != Some(v.as_str()) =>
        {
            Err(damaged(key, v))
        }
        Ok(p) => Ok(p.filter(|p| p.is_absolute())),
        Err(()) => Err(damaged(key, v)),
    };
    let save = match loaded.metadata.get(SAVE_KEY) {
        None => None,
        Some(v) if v == "none" => Some(None),
        Some(v) => path_habit(SAVE_KEY, v)?.map(Some),
    };
    let save_seen = match loaded.metadata.get(SAVE_SEEN_KEY) {
        None => None,
        Some(v) if v == "none" => Some(None),
        Some(v) => Some(Some(
            crate::atomic::Stamp::from_value(v).ok_or_else(|| damaged(SAVE_SEEN_KEY, v))?,
        )),
    };
    let metrics = match loaded.metadata.get(METRICS_KEY) {
        None => None,
        Some(v) => path_habit(METRICS_KEY, v)?,
    };
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
            save_seen,
            metrics,
        },
    })
}

/// [`SO_FAR_KEY`]'s value, `loss_sum,correct,seen`: `{:?}` of an f64
/// reads back to the same bits.
fn so_far_value(s: &EpochSoFar) -> String {
    format!("{:?},{},{}", s.loss_sum, s.correct, s.seen)
}

/// The inverse of [`so_far_value`], for the value it writes and no other.
fn parse_so_far(v: &str) -> Option<EpochSoFar> {
    let mut it = v.split(',');
    let s = EpochSoFar {
        loss_sum: it.next()?.parse().ok()?,
        correct: it.next()?.parse().ok()?,
        seen: it.next()?.parse().ok()?,
    };
    (it.next().is_none() && so_far_value(&s) == v).then_some(s)
}

/// Load a checkpoint file (see [`checkpoint_from_bytes`]).
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint> {
    let bytes = read_safetensors(path, "checkpoint")?;
    checkpoint_from_bytes(&bytes, path).map_err(|e| {
        // A model's way out (`--save`'s file) is no checkpoint's.
        let m = e.to_string();
        if let Some(head) = m.strip_suffix(FIX_NOT_MODEL) {
            return anyhow::anyhow!("{head}{FIX_RESUME}");
        }
        // Nor is another model: --resume takes checkpoints.
        match m.strip_suffix(FIX_BAD_WEIGHTS) {
            Some(head) => anyhow::anyhow!("{head}use an earlier checkpoint"),
            None => e,
        }
    })
}
