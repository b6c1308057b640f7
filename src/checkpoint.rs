//! Models on disk: safetensors with PyTorch `nn.Sequential` names, so
//! `torch.nn.Sequential(Linear(784, H), ReLU(), Linear(H, 10))` loads the file
//! unchanged. Writes are atomic: a temporary file in the same directory,
//! fsync'd, then renamed over the target.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::data::{CLASSES, PIXELS};
use crate::model::{Dims, Params};

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
/// by their name) with string `metadata`.
pub fn to_bytes(
    params: &Params,
    extra: &[(&str, &Params)],
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>> {
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut add = |prefix: &str, p: &Params| {
        let parts = p.parts();
        for ((name, shape), t) in NAMES
            .iter()
            .zip(shapes(p.dims))
            .zip([parts.w1, parts.b1, parts.w2, parts.b2])
        {
            let bytes: Vec<u8> = t.iter().flat_map(|v| v.to_le_bytes()).collect();
            owned.push((format!("{prefix}{name}"), shape, bytes));
        }
    };
    add("", params);
    for (prefix, p) in extra {
        add(&format!("{prefix}."), p);
    }
    let views = owned
        .iter()
        .map(|(n, s, b)| Ok((n.clone(), TensorView::new(Dtype::F32, s.clone(), b)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let mut meta = metadata;
    meta.insert("format".into(), "pt".into());
    Ok(safetensors::serialize(views, Some(meta))?)
}

/// Write `bytes` to `path` atomically: a temporary file beside it, fsync, rename.
/// On any failure the temporary file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
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

/// Save a model (the four tensors only) atomically.
pub fn save_model(path: &Path, params: &Params) -> Result<()> {
    let mut meta = HashMap::new();
    meta.insert("simplenn.hidden".into(), params.dims.h.to_string());
    write_atomic(path, &to_bytes(params, &[], meta)?)
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
        let mut p = Params::zeros(dims);
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
            for (dst, src) in p.data[off..off + n]
                .iter_mut()
                .zip(t.data().chunks_exact(4))
            {
                *dst = f32::from_le_bytes([src[0], src[1], src[2], src[3]]);
            }
            off += n;
        }
        Ok(p)
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
