//! Models on disk: safetensors with PyTorch `nn.Sequential` names, so
//! `torch.nn.Sequential(Linear(784, H), ReLU(), Linear(H, 10))` loads the file
//! unchanged. Writes are atomic: a temporary file in the same directory,
//! fsync'd, then renamed over the target.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, SafeTensors};

use crate::data::{Dataset, CLASSES, PIXELS};
use crate::model::{Dims, Init, Params};
use crate::train::{Schedule, TrainConfig};

/// Tensor names, in slab order: `W1 (H,D)`, `b1 (H)`, `W2 (K,H)`, `b2 (K)`.
pub const NAMES: [&str; 4] = ["0.weight", "0.bias", "2.weight", "2.bias"];

/// The shapes [`NAMES`] must have for `dims`.
pub fn shapes(dims: Dims) -> [Vec<usize>; 4] {
    [
        vec![dims.h, dims.d],
        vec![dims.h],
        vec![dims.k, dims.h],
        vec![dims.k],
    ]
}

/// Serialize `params` (and `extra` named slabs of the same layout, prefixed
/// by their name) with string `metadata`, as safetensors.
///
/// The header is written here rather than by `safetensors::serialize`,
/// whose metadata map is a `HashMap` and so comes out in a different order
/// each run: the same model must give the same bytes.
pub fn to_bytes(
    params: &Params,
    extra: &[(&str, &Params)],
    metadata: impl IntoIterator<Item = (String, String)>,
) -> Vec<u8> {
    let mut slabs = vec![("".to_string(), params)];
    slabs.extend(extra.iter().map(|(prefix, p)| (format!("{prefix}."), *p)));
    let mut header = String::from("{\"__metadata__\":{");
    let mut meta: BTreeMap<String, String> = metadata.into_iter().collect();
    meta.insert("format".into(), "pt".into());
    let fields: Vec<String> = meta
        .iter()
        .map(|(k, v)| format!("{}:{}", json_string(k), json_string(v)))
        .collect();
    header.push_str(&fields.join(","));
    header.push('}');
    let mut offset = 0usize;
    for (prefix, p) in &slabs {
        for (name, shape) in NAMES.iter().zip(shapes(p.dims)) {
            let bytes = 4 * shape.iter().product::<usize>();
            let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            header.push_str(&format!(
                ",{}:{{\"dtype\":\"F32\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
                json_string(&format!("{prefix}{name}")),
                dims.join(","),
                offset,
                offset + bytes
            ));
            offset += bytes;
        }
    }
    header.push('}');
    // The data must start 8-byte aligned; the format pads the header with spaces.
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for (_, p) in &slabs {
        // File order is tensor order: W1 (H, D), b1, W2, b2.
        for v in p.to_torch() {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Write `bytes` to `path` atomically: a temporary file beside it, fsync, rename.
/// On any failure the temporary file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = check_dir(path)?;
    let name = path
        .file_name()
        .with_context(|| format!("cannot save to {}: not a file path", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        // Make the rename itself durable; not all filesystems allow opening a directory.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot save to {}", path.display()));
    }
    Ok(())
}

/// The directory `path` would be written in, if it exists: checked before
/// a long run, so that a typo fails at once and not after the first epochs.
pub fn check_dir(path: &Path) -> Result<PathBuf> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        bail!(
            "cannot save to {}: directory {} does not exist; create it or choose another path",
            path.display(),
            dir.display()
        );
    }
    // Probe with the same kind of temporary file a save writes, then remove it.
    let probe = dir.join(format!(".simplenn-probe.tmp{}", std::process::id()));
    match File::create(&probe) {
        Ok(_) => {
            let _ = fs::remove_file(&probe);
        }
        Err(e) => bail!(
            "cannot save to {}: cannot write in {} ({e}); choose a writable directory",
            path.display(),
            dir.display()
        ),
    }
    Ok(dir)
}

/// Save a model (the four tensors only) atomically.
pub fn save_model(path: &Path, params: &Params) -> Result<()> {
    let mut meta = HashMap::new();
    meta.insert("simplenn.hidden".into(), params.dims.h.to_string());
    write_atomic(path, &to_bytes(params, &[], meta))
}

/// A model read back from a file, and the file's metadata.
pub struct Loaded {
    pub params: Params,
    pub metadata: HashMap<String, String>,
    /// Extra slabs found under `prefix.` names, in the order asked for.
    pub extra: Vec<Params>,
}

/// Read a model from `bytes`, checking every tensor's name, dtype and shape.
/// `extra` names prefixes of further slabs that must be present.
pub fn from_bytes(bytes: &[u8], what: &Path, extra: &[&str]) -> Result<Loaded> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| anyhow::anyhow!("{}: not a safetensors file ({e})", what.display()))?;
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| anyhow::anyhow!("{}: not a safetensors file ({e})", what.display()))?;
    let w1 = st.tensor(NAMES[0]).map_err(|_| {
        anyhow::anyhow!(
            "{}: no tensor {:?}; expected a simplenn model with tensors {:?}",
            what.display(),
            NAMES[0],
            NAMES
        )
    })?;
    let (h, d) = match w1.shape() {
        [h, d] if *d == PIXELS && *h > 0 => (*h, *d),
        s => bail!(
            "{}: tensor {:?} has shape {:?}, expected [H, {PIXELS}]",
            what.display(),
            NAMES[0],
            s
        ),
    };
    let dims = Dims { d, h, k: CLASSES };
    let read = |prefix: &str| -> Result<Params> {
        let mut torch = vec![0.0f32; dims.param_count()];
        let want = shapes(dims);
        let mut off = 0;
        for (name, shape) in NAMES.iter().zip(&want) {
            let full = format!("{prefix}{name}");
            let t = st
                .tensor(&full)
                .map_err(|_| anyhow::anyhow!("{}: tensor {full:?} is missing", what.display()))?;
            if t.dtype() != Dtype::F32 {
                bail!(
                    "{}: tensor {full:?} is {:?}, expected F32",
                    what.display(),
                    t.dtype()
                );
            }
            if t.shape() != shape.as_slice() {
                bail!(
                    "{}: tensor {full:?} has shape {:?}, expected {:?}",
                    what.display(),
                    t.shape(),
                    shape
                );
            }
            let n: usize = shape.iter().product();
            for (dst, src) in torch[off..off + n].iter_mut().zip(t.data().chunks_exact(4)) {
                *dst = f32::from_le_bytes([src[0], src[1], src[2], src[3]]);
            }
            off += n;
        }
        Ok(Params::from_torch(dims, &torch))
    };
    let params = read("")?;
    let extra = extra
        .iter()
        .map(|x| read(&format!("{x}.")))
        .collect::<Result<Vec<_>>>()?;
    Ok(Loaded {
        params,
        metadata: meta.metadata().clone().unwrap_or_default(),
        extra,
    })
}

/// Load a model file (see [`from_bytes`]).
pub fn load_model(path: &Path) -> Result<Params> {
    let bytes = fs::read(path).with_context(|| format!("cannot read model {}", path.display()))?;
    Ok(from_bytes(&bytes, path, &[])?.params)
}

// ---------------------------------------------------------------------------
// Resumable checkpoints.
//
// A checkpoint is the same safetensors layout as a model plus the momentum
// buffers under `momentum.0.weight`, `momentum.0.bias`, `momentum.2.weight`,
// `momentum.2.bias`, and string metadata (`simplenn.*`) holding the run's
// position and every flag that shapes its weights. It loads as a model in
// `eval` and `predict` (the extra tensors are ignored), but PyTorch's strict
// `load_state_dict` would reject the momentum tensors, which is why `--save`
// writes the four tensors alone and checkpoints go to their own file.
//
// There is no RNG state to store: the shuffle of epoch `e` is a ChaCha8
// stream chosen by `(seed, e)` and the dropout mask of step `t` a function
// of `(seed, t)`, so `(seed, epoch, steps)` *is* the RNG state, and `steps`
// is also the learning-rate schedule's position.

/// Prefix of the momentum tensors in a checkpoint.
pub const MOMENTUM: &str = "momentum";
/// Version of the checkpoint metadata written here.
pub const CHECKPOINT_VERSION: u32 = 1;

/// Everything that shapes a run's weights: the resolved flags and the
/// identity of the training data. Two runs with equal shapes take the same
/// steps, so a checkpoint resumes only into a run of its own shape.
#[derive(Clone, Debug, PartialEq)]
pub struct RunShape {
    pub hidden: usize,
    pub batch_size: usize,
    pub epochs: usize,
    pub lr: f32,
    pub schedule: Schedule,
    pub momentum: f32,
    pub dropout: f32,
    pub init: Init,
    pub seed: u64,
    pub val: usize,
    /// Images in the training file (train + validation).
    pub train_images: usize,
    /// MD5 of the training images and labels, hex.
    pub data_md5: String,
}

impl RunShape {
    /// The shape of a run of `cfg` on `train` (reads the whole training set once to hash it).
    pub fn of(cfg: &TrainConfig, train: &Dataset) -> Self {
        RunShape {
            hidden: cfg.hidden,
            batch_size: cfg.batch_size,
            epochs: cfg.epochs,
            lr: cfg.lr,
            schedule: cfg.schedule,
            momentum: cfg.momentum,
            dropout: cfg.dropout,
            init: cfg.init,
            seed: cfg.seed,
            val: cfg.val,
            train_images: train.len(),
            data_md5: data_md5(train),
        }
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
        put("hidden", self.hidden.to_string());
        put("batch_size", self.batch_size.to_string());
        put("epochs", self.epochs.to_string());
        put("lr", self.lr.to_string());
        put("schedule", self.schedule.name().into());
        put("momentum", self.momentum.to_string());
        put("dropout", self.dropout.to_string());
        put("init", init_name(self.init));
        put("seed", self.seed.to_string());
        put("val", self.val.to_string());
        put("train_images", self.train_images.to_string());
        put("data_md5", self.data_md5.clone());
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
        macro_rules! field {
            ($k:literal, $parse:expr) => {{
                let v = get($k)?;
                ($parse)(v).ok_or_else(|| bad($k, v))?
            }};
        }
        Ok(RunShape {
            hidden: field!("hidden", num::<usize>),
            batch_size: field!("batch_size", num::<usize>),
            epochs: field!("epochs", num::<usize>),
            lr: field!("lr", num::<f32>),
            schedule: field!("schedule", Schedule::from_name),
            momentum: field!("momentum", num::<f32>),
            dropout: field!("dropout", num::<f32>),
            init: field!("init", parse_init),
            seed: field!("seed", num::<u64>),
            val: field!("val", num::<usize>),
            train_images: field!("train_images", num::<usize>),
            data_md5: get("data_md5")?.to_string(),
        })
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
    /// Momentum buffers, same layout as `params`.
    pub velocity: Params,
    pub shape: RunShape,
    /// SGD steps taken: the schedule's position and the dropout counter.
    pub steps: u64,
}

impl Checkpoint {
    /// Whole epochs done (`steps / steps_per_epoch`).
    pub fn epoch(&self) -> usize {
        (self.steps / self.shape.steps_per_epoch().max(1)) as usize
    }
}

/// Serialize a checkpoint.
pub fn checkpoint_bytes(
    params: &Params,
    velocity: &Params,
    shape: &RunShape,
    steps: u64,
) -> Vec<u8> {
    let mut meta = shape.to_metadata();
    meta.insert("simplenn.kind".into(), "checkpoint".into());
    meta.insert(
        "simplenn.checkpoint_version".into(),
        CHECKPOINT_VERSION.to_string(),
    );
    meta.insert("simplenn.steps".into(), steps.to_string());
    let spe = shape.steps_per_epoch().max(1);
    meta.insert("simplenn.epoch".into(), (steps / spe).to_string());
    to_bytes(params, &[(MOMENTUM, velocity)], meta)
}

/// Write a checkpoint atomically (temporary file, fsync, rename).
pub fn save_checkpoint(
    path: &Path,
    params: &Params,
    velocity: &Params,
    shape: &RunShape,
    steps: u64,
) -> Result<()> {
    write_atomic(path, &checkpoint_bytes(params, velocity, shape, steps))
}

/// Read a checkpoint from `bytes`, checking tensors, metadata and that the
/// run position is possible for the stored shape.
pub fn checkpoint_from_bytes(bytes: &[u8], what: &Path) -> Result<Checkpoint> {
    let plain = from_bytes(bytes, what, &[])?;
    if plain.metadata.get("simplenn.kind").map(String::as_str) != Some("checkpoint") {
        bail!(
            "{}: not a simplenn checkpoint (a plain model?); --resume takes a file written by --checkpoint-every or --stop-after",
            what.display()
        );
    }
    let loaded = from_bytes(bytes, what, &[MOMENTUM])?;
    let shape = RunShape::from_metadata(&loaded.metadata, what)?;
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
    if let Some(v) = loaded.metadata.get("simplenn.checkpoint_version") {
        if v != &CHECKPOINT_VERSION.to_string() {
            bail!(
                "{}: checkpoint version {v}, this simplenn reads version {CHECKPOINT_VERSION}",
                what.display()
            );
        }
    }
    if shape.hidden != loaded.params.dims.h {
        bail!(
            "{}: metadata says hidden {} but tensor \"0.weight\" has {} rows; the file is damaged",
            what.display(),
            shape.hidden,
            loaded.params.dims.h
        );
    }
    if shape.batch_size == 0 || shape.val >= shape.train_images {
        bail!(
            "{}: checkpoint metadata (batch_size {}, val {}, train_images {}) is impossible; the file is damaged",
            what.display(),
            shape.batch_size,
            shape.val,
            shape.train_images
        );
    }
    let total = shape.steps_per_epoch().saturating_mul(shape.epochs as u64);
    if steps > total {
        bail!(
            "{}: checkpoint is at step {steps} of a {total}-step run; the file is damaged",
            what.display()
        );
    }
    let velocity = loaded
        .extra
        .into_iter()
        .next()
        .with_context(|| format!("{}: checkpoint has no momentum tensors", what.display()))?;
    if !loaded
        .params
        .data
        .iter()
        .chain(&velocity.data)
        .all(|v| v.is_finite())
    {
        bail!(
            "{}: checkpoint holds non-finite weights or momentum; use an earlier checkpoint",
            what.display()
        );
    }
    Ok(Checkpoint {
        params: loaded.params,
        velocity,
        shape,
        steps,
    })
}

/// Load a checkpoint file (see [`checkpoint_from_bytes`]).
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint> {
    let bytes =
        fs::read(path).with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    checkpoint_from_bytes(&bytes, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Init;

    #[test]
    fn same_weights_same_bytes() {
        let p = Params::init(Dims::mnist(4), Init::He, 1);
        let meta = |n: usize| -> HashMap<String, String> {
            (0..n).map(|i| (format!("k{i}"), i.to_string())).collect()
        };
        // Many keys: two HashMaps almost surely iterate in different orders.
        let a = to_bytes(&p, &[("momentum", &p)], meta(20));
        let b = to_bytes(&p, &[("momentum", &p)], meta(20));
        assert_eq!(a, b);
        let back = from_bytes(&a, Path::new("x"), &["momentum"]).unwrap();
        assert_eq!(back.params, p);
        assert_eq!(back.metadata.get("k7").map(String::as_str), Some("7"));
    }

    #[test]
    fn checkpoint_round_trip_and_damage() {
        let dims = Dims::mnist(4);
        let (p, v) = (
            Params::init(dims, Init::He, 1),
            Params::init(dims, Init::Normal(0.01), 2),
        );
        let shape = RunShape {
            hidden: 4,
            batch_size: 100,
            epochs: 3,
            lr: 0.1,
            schedule: Schedule::Cosine,
            momentum: 0.9,
            dropout: 0.2,
            init: Init::Normal(0.01),
            seed: 7,
            val: 50,
            train_images: 1050,
            data_md5: "abc".into(),
        };
        let bytes = checkpoint_bytes(&p, &v, &shape, 25);
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
        other.hidden = 8;
        other.lr = 0.2;
        assert_eq!(
            shape.differences(&other),
            ["hidden 4 vs 8", "lr 0.1 vs 0.2"]
        );
        // A position past the end of the run is refused.
        let bytes = checkpoint_bytes(&p, &v, &shape, 31);
        let e = checkpoint_from_bytes(&bytes, Path::new("c"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("step 31 of a 30-step run"), "{e}");
    }

    #[test]
    fn errors_name_the_file_and_tensor() {
        let p = Params::init(Dims::mnist(4), Init::He, 1);
        let bytes = to_bytes(&p, &[], HashMap::new());
        let e = from_bytes(&bytes[..bytes.len() - 4], Path::new("m.st"), &[])
            .err()
            .unwrap()
            .to_string();
        assert!(e.starts_with("m.st: not a safetensors file"), "{e}");
        let e = from_bytes(b"hello", Path::new("m.st"), &[])
            .err()
            .unwrap()
            .to_string();
        assert!(e.starts_with("m.st: not a safetensors file"), "{e}");
        let e = checkpoint_from_bytes(&bytes, Path::new("m.st"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("not a simplenn checkpoint"), "{e}");
    }
}

#[cfg(test)]
mod bytes_tests {
    use super::*;
    use crate::model::Init;

    #[test]
    fn round_trip_is_exact_and_stable() {
        let p = Params::init(Dims::mnist(3), Init::He, 1);
        let v = Params::init(p.dims, Init::Normal(1.0), 2);
        let mut meta = BTreeMap::new();
        meta.insert("b".to_string(), "quote \" and \\ backslash".to_string());
        meta.insert("a".to_string(), "1".to_string());
        let bytes = to_bytes(&p, &[("momentum", &v)], meta.clone());
        assert_eq!(
            bytes,
            to_bytes(&p, &[("momentum", &v)], meta),
            "same input, same bytes"
        );
        let back = from_bytes(&bytes, Path::new("mem"), &["momentum"]).unwrap();
        assert_eq!(back.params, p);
        assert_eq!(back.extra, vec![v]);
        assert_eq!(back.metadata["b"], "quote \" and \\ backslash");
        assert_eq!(back.metadata["format"], "pt");
    }

    #[test]
    fn wrong_shapes_are_named() {
        let p = Params::init(Dims::mnist(3), Init::He, 1);
        let bytes = to_bytes(&p, &[], BTreeMap::new());
        let e = from_bytes(&bytes[..bytes.len() - 4], Path::new("m.st"), &[])
            .err()
            .unwrap();
        assert!(e.to_string().contains("m.st"), "{e}");
        let e = from_bytes(&bytes, Path::new("m.st"), &["momentum"])
            .err()
            .unwrap();
        assert!(e.to_string().contains("momentum.0.weight"), "{e}");
        let e = from_bytes(b"not a model", Path::new("m.st"), &[])
            .err()
            .unwrap();
        assert!(e.to_string().contains("not a safetensors file"), "{e}");
    }
}
