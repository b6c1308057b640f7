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
/// by their name) with string `metadata`, as safetensors.
///
/// The header is written here rather than by `safetensors::serialize`,
/// whose metadata map is a `HashMap` and so comes out in a different order
/// each run: the same model must give the same bytes.
pub fn to_bytes(
    params: &Params,
    extra: &[(&str, &Params)],
    metadata: BTreeMap<String, String>,
) -> Vec<u8> {
    let mut slabs = vec![("".to_string(), params)];
    slabs.extend(extra.iter().map(|(prefix, p)| (format!("{prefix}."), *p)));
    let mut header = String::from("{\"__metadata__\":{");
    let mut meta = metadata;
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
        // Slab order is tensor order: W1, b1, W2, b2.
        for v in &p.data {
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
    let mut meta = BTreeMap::new();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Init;

    #[test]
    fn round_trip_is_exact_and_stable() {
        let p = Params::init(
            Dims {
                d: PIXELS,
                h: 3,
                k: CLASSES,
            },
            Init::He,
            1,
        );
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
        let p = Params::init(
            Dims {
                d: PIXELS,
                h: 3,
                k: CLASSES,
            },
            Init::He,
            1,
        );
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
