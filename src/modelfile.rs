//! Models on disk: safetensors with PyTorch `nn.Sequential` names, so
//! `torch.nn.Sequential(Linear(784, H), ReLU(), Linear(H, 10))` loads the file
//! unchanged. Writes are atomic: a temporary file in the same directory,
//! fsync'd, then renamed over the target.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, SafeTensors};

use crate::atomic::write_atomic;
use crate::classes::{self, ClassNames};
use crate::model::{parse_hidden, Dims, Params, MAX_LAYERS};

/// The most classes a model may have: labels are bytes.
pub const MAX_CLASSES: usize = 256;

/// Prefix of the momentum tensors in a checkpoint (sgd, nesterov). A model
/// file's reader knows the three prefixes, to set a checkpoint's state
/// tensors aside and to name them where they stand alone.
pub const MOMENTUM: &str = "momentum";
/// Prefixes of Adam's moments in a checkpoint (adam, adamw).
pub const EXP_AVG: &str = "exp_avg";
pub const EXP_AVG_SQ: &str = "exp_avg_sq";

/// Tensor names of linear layer `l`: `nn.Sequential` numbers its modules
/// `Linear, ReLU, Linear, ReLU, …, Linear`, so the linear layers are
/// `0, 2, 4, …` and their tensors `0.weight`, `0.bias`, `2.weight`, ….
pub fn layer_names(l: usize) -> [String; 2] {
    [format!("{}.weight", 2 * l), format!("{}.bias", 2 * l)]
}

/// The file shapes of layer `l`'s tensors: `W (n_out, n_in)`, `b (n_out)`.
pub fn layer_shapes(dims: &Dims, l: usize) -> [Vec<usize>; 2] {
    let (i, o) = dims.layer(l);
    [vec![o, i], vec![o]]
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
        let tensors = (0..p.dims.layers())
            .flat_map(|l| layer_names(l).into_iter().zip(layer_shapes(&p.dims, l)));
        for (name, shape) in tensors {
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
        // File order is tensor order: W_0 (n_1, D), b_0, W_1, b_1, ….
        p.extend_torch_le(&mut out);
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

/// Save a model (its weights and biases only) atomically; `image` is the
/// `(rows, cols)` of the images it was trained on, `names` its classes'
/// names (`--class-names`; none: no key, the bytes of a file without).
/// An `image` of another pixel count than the model's inputs, or `names`
/// of another count than its classes, is an error: the file would not
/// load again. So is `params.data` of another length than its `dims`
/// count (both are public fields).
pub fn save_model(
    path: &Path,
    params: &Params,
    image: (usize, usize),
    names: Option<&ClassNames>,
) -> Result<()> {
    let (rows, cols) = image;
    let (d, k) = (params.dims.d(), params.dims.k());
    if params.data.len() != params.dims.param_count() {
        bail!(
            "{}: Params.data holds {} numbers, but its dims {} have {}; build it with Params::init or a model file's load",
            path.display(),
            params.data.len(),
            params.dims.name(),
            params.dims.param_count()
        );
    }
    if rows.checked_mul(cols) != Some(d) {
        bail!(
            "{}: image {rows} × {cols} is not the model's {d} inputs; pass the (rows, cols) of the images it was trained on (Dataset::side)",
            path.display()
        );
    }
    if let Some(n) = names.filter(|n| n.len() != k) {
        bail!(
            "{}: {} class names for a model of {k} classes; pass names for its classes",
            path.display(),
            n.len()
        );
    }
    write_atomic(path, &model_bytes(params, image, names))
}

/// The bytes [`save_model`] writes, which checks its arguments first.
///
/// # Panics
/// Where `params` is not whole ([`Params::assert_whole`]).
pub fn model_bytes(params: &Params, image: (usize, usize), names: Option<&ClassNames>) -> Vec<u8> {
    params.assert_whole();
    let mut meta = HashMap::new();
    meta.insert("simplenn.hidden".into(), params.dims.hidden_name());
    put_image(&mut meta, image);
    if let Some(n) = names {
        meta.insert(classes::KEY.into(), n.to_metadata());
    }
    to_bytes(params, &[], meta)
}

/// Metadata key for `ROWSxCOLS` of the images a model was trained on,
/// written only when they are not square: a square model's side is √D, and
/// its files stay the bytes they were before the key existed.
const IMAGE_KEY: &str = "simplenn.image";

pub(crate) fn put_image(meta: &mut HashMap<String, String>, (rows, cols): (usize, usize)) {
    if rows != cols {
        meta.insert(IMAGE_KEY.into(), format!("{rows}x{cols}"));
    }
}

/// The `(rows, cols)` a file records for its images (which simplenn writes
/// only where they are not square), checked against the first layer's `d` inputs: a key that is
/// not `ROWSxCOLS` of `d` pixels is a damaged file. A checkpoint also
/// records its data's shape (`simplenn.data_image`, square or not), which
/// must agree with both.
pub(crate) fn recorded_image(
    meta: &HashMap<String, String>,
    d: usize,
    what: &Path,
) -> Result<Option<(usize, usize)>> {
    let shape = |key: &str| -> Result<Option<(usize, usize)>> {
        let Some(v) = meta.get(key) else {
            return Ok(None);
        };
        let parsed = v
            .split_once('x')
            .and_then(|(r, c)| Some((r.parse::<usize>().ok()?, c.parse::<usize>().ok()?)));
        match parsed {
            Some((rows, cols)) if rows.checked_mul(cols) == Some(d) => Ok(Some((rows, cols))),
            Some((rows, cols)) => bail!(
                "{}: its metadata says {key} {rows}x{cols}, but its first layer takes {d} inputs, not {rows} × {cols}: the file is damaged; use another copy, or an earlier checkpoint",
                what.display()
            ),
            None => bail!(
                "{}: its metadata says {key} {v:?}, not ROWSxCOLS: the file is damaged; use another copy, or an earlier checkpoint",
                what.display()
            ),
        }
    };
    let image = shape(IMAGE_KEY)?;
    if let Some((rows, cols)) = shape("simplenn.data_image")? {
        // The image key is written exactly when the data is not square.
        let said = image.unwrap_or((rows, cols));
        if said != (rows, cols) || (rows != cols && image.is_none()) {
            bail!(
                "{}: its metadata says simplenn.data_image {rows}x{cols} but {IMAGE_KEY} {}: the file is damaged; use another copy, or an earlier checkpoint",
                what.display(),
                image.map_or("none".to_string(), |(r, c)| format!("{r}x{c}"))
            );
        }
    }
    // Square too where another program wrote it (simplenn writes only the
    // shapes √D does not give): what the file says is the data's layout.
    Ok(image)
}

/// A model read back from a file, and the file's metadata.
pub struct Loaded {
    pub params: Params,
    pub metadata: HashMap<String, String>,
    /// Extra slabs found under `prefix.` names, in the order asked for.
    pub extra: Vec<Params>,
}

/// The bytes of the safetensors file `path`, a `what` (`model` or
/// `checkpoint`), read whole. A file or a pipe is read as long as its
/// header says, plus one byte (for [`from_bytes`] to name a longer one),
/// where memory can hold that, so a stream of garbage or one that never
/// ends, or a file with gigabytes after its tensors, is not read until
/// memory runs out; a whole header that describes no safetensors file is
/// returned unread past it, and a file shorter than its header, as it is.
pub fn read_safetensors(path: &Path, what: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    let (mut file, meta) = crate::atomic::open_input(path, what)?;
    let avail = crate::memory::available_memory().unwrap_or(u64::MAX);
    let context = || format!("cannot read {what} {}", path.display());
    // The 8-byte length and the header first: what loading takes depends
    // on the tensors it names.
    let mut bytes = Vec::new();
    (&mut file)
        .take(8)
        .read_to_end(&mut bytes)
        .with_context(context)?;
    let header = match <[u8; 8]>::try_from(bytes.as_slice()) {
        Ok(n) => u64::from_le_bytes(n),
        Err(_) => return Ok(bytes),
    };
    if header > MAX_HEADER {
        return Ok(bytes);
    }
    (&mut file)
        .take(header)
        .read_to_end(&mut bytes)
        .with_context(context)?;
    let need = |len: u64| load_need(len, &bytes, what == "checkpoint");
    let too_big = |len: u64| {
        let limit = crate::memory::memory_limit_note();
        let fix = match (limit.is_empty(), what == "checkpoint") {
            (true, false) => "free some memory, or use a smaller model",
            (false, false) => "raise the limit, or use a smaller model",
            (true, true) => "free some memory, or resume on a machine with more",
            (false, true) => "raise the limit, or resume on a machine with more",
        };
        // Decimals enough to tell the need from what is left, and the
        // file's size from the need (0.013 GB, not 0.01, against 0.04).
        let d = crate::show::gb_decimals(need(len), avail)
            .max(crate::show::gb_decimals(len, need(len)))
            .max(2);
        let gb = |b: u64| format!("{:.*}", d, b as f64 / 1e9);
        anyhow::anyhow!(
            "cannot read {what} {}: loading its {} GB takes about {} GB of memory, more than the {} GB available{limit}; {fix}",
            path.display(),
            gb(len),
            gb(need(len)),
            gb(avail)
        )
    };
    let want = described_len(&bytes);
    // A whole header that describes no safetensors file: refused by name
    // ([`from_bytes`]) without reading on (50 GB of zeros is not a model
    // too large for memory).
    if want.is_none() && bytes.len() as u64 == 8 + header {
        return Ok(bytes);
    }
    if meta.is_file() {
        // Up to one byte past what the header describes: enough for
        // [`from_bytes`] to name a file longer than that, which is damaged
        // however long (a 2 GB tail is not read, nor counted as need).
        // (A file whose size is given as 0, as /proc's are, is read as
        // far as its header says all the same.)
        let len = match want {
            Some(w) if meta.len() > 0 => meta.len().min(w.saturating_add(1)),
            Some(w) => w.saturating_add(1),
            None => meta.len(),
        };
        if need(len) > avail {
            return Err(too_big(len));
        }
        // Room for all of it at once: `Take` gives `read_to_end` no size
        // to allocate by, and growing by doubling held up to twice the file
        // (the estimate counts it once).
        let rest = len.saturating_sub(bytes.len() as u64);
        bytes.reserve_exact(usize::try_from(rest).unwrap_or(usize::MAX));
        (&mut file)
            .take(rest)
            .read_to_end(&mut bytes)
            .with_context(context)?;
        return Ok(bytes);
    }
    if let Some(want) = want {
        if need(want) > avail {
            return Err(too_big(want));
        }
        (&mut file)
            .take((want + 1).saturating_sub(bytes.len() as u64))
            .read_to_end(&mut bytes)
            .with_context(context)?;
    }
    Ok(bytes)
}

/// The safetensors crate's limit on a header's length.
const MAX_HEADER: u64 = 100_000_000;

/// Memory that loading a safetensors file of `len` bytes beginning with
/// `head` (its length and header) takes: the file's bytes, the model's
/// values twice (in the file's layout, then in the trainer's), and for a
/// `checkpoint` every other slab once more (each kept in the trainer's
/// layout; the file-layout copy lives for one slab at a time). A model
/// saved by simplenn needs about three times its file; a checkpoint given
/// where a model is asked for, only its model slab's part on top of its
/// bytes. Three times the file where the header names no tensors that can
/// be counted (the load then refuses it anyway), and never more: the
/// tensors a header names that the file cannot hold are refused too.
pub fn load_need(len: u64, head: &[u8], checkpoint: bool) -> u64 {
    /// A tensor's shape, all that is read of its entry (no JSON tree of a
    /// header that may be large is built); `__metadata__` has none.
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        shape: Option<Vec<u64>>,
    }
    let three = len.saturating_mul(3);
    let Some(header) =
        header_json(head).and_then(|h| serde_json::from_slice::<HashMap<String, Entry>>(h).ok())
    else {
        return three;
    };
    let (mut model, mut all) = (0u64, 0u64);
    for (name, entry) in &header {
        if name == "__metadata__" {
            continue;
        }
        // Counted as float32, as they are loaded, whatever the file's dtype.
        let bytes =
            (entry.shape.as_ref()).and_then(|s| s.iter().try_fold(4u64, |n, &d| n.checked_mul(d)));
        let Some(bytes) = bytes else {
            return three;
        };
        all = all.saturating_add(bytes);
        let layer = name
            .strip_suffix(".weight")
            .or_else(|| name.strip_suffix(".bias"));
        if layer.is_some_and(|l| l.parse::<usize>().is_ok()) {
            model = model.saturating_add(bytes);
        }
    }
    let kept = if checkpoint { all } else { model };
    len.saturating_add(kept.min(len))
        .saturating_add(model.min(len))
        .min(three)
}

/// The length of the safetensors file that `bytes` begins: its 8-byte
/// header length, the header, and the tensors' bytes up to the furthest
/// `data_offsets` end. `None` when `bytes` holds no whole header, or the
/// header is not the JSON object of a safetensors file (whose error the
/// crate then names).
fn described_len(bytes: &[u8]) -> Option<u64> {
    let header = header_json(bytes)?;
    let n = header.len() as u64;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(header).ok()?;
    let mut end = 0u64;
    for (name, info) in &header {
        if name != "__metadata__" {
            end = end.max(info.get("data_offsets")?.get(1)?.as_u64()?);
        }
    }
    end.checked_add(8)?.checked_add(n)
}

/// What the header gives twice, if anything, said as a line says it
/// (`tensor "0.weight"`, `its metadata`, `metadata key "simplenn.hidden"`):
/// the reader keeps the last of the two and drops the other unread, or
/// reports its bytes as a bad offset. The safetensors format disallows
/// duplicate keys, and the crate does not check.
fn named_twice(bytes: &[u8]) -> Option<String> {
    use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
    /// An object's first key given twice, with each value read by `V`, the
    /// first of those that find one inside theirs (said `"key" inner`).
    struct Twice<V>(std::marker::PhantomData<V>);
    /// `__metadata__`'s keys given twice (null, as a foreign writer may
    /// put it, holds none).
    struct Keys(Option<String>);
    impl<'de> Deserialize<'de> for Keys {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(Twice::<IgnoredAny>(std::marker::PhantomData))
                .map(|t| Keys(t.map(|(key, _)| key)))
        }
    }
    impl<'de, V: Deserialize<'de> + Inner> Visitor<'de> for Twice<V> {
        type Value = Option<(String, Option<String>)>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            // Read to the end: the object must close for the parse to
            // succeed.
            let (mut seen, mut twice) = (std::collections::HashSet::new(), None);
            while let Some(key) = map.next_key::<String>()? {
                let inner = match key == "__metadata__" {
                    true => map.next_value::<V>()?.inner(),
                    false => map.next_value::<IgnoredAny>().map(|_| None)?,
                };
                if twice.is_none() {
                    if let Some(inner) = inner {
                        twice = Some((key.clone(), Some(inner)));
                    }
                }
                if !seen.insert(key.clone()) {
                    twice.get_or_insert((key, None));
                }
            }
            Ok(twice)
        }
    }
    /// A value's own key given twice, for the values looked into.
    trait Inner {
        fn inner(self) -> Option<String>;
    }
    impl Inner for IgnoredAny {
        fn inner(self) -> Option<String> {
            None
        }
    }
    impl Inner for Keys {
        fn inner(self) -> Option<String> {
            self.0
        }
    }
    let found = serde_json::Deserializer::from_slice(header_json(bytes)?)
        .deserialize_map(Twice::<Keys>(std::marker::PhantomData))
        .ok()??;
    Some(match found {
        (meta, None) if meta == "__metadata__" => "its metadata".to_string(),
        (name, None) => format!("tensor {name:?}"),
        (_, Some(key)) => format!("metadata key {key:?}"),
    })
}

/// The JSON header of the safetensors file that `bytes` begins (after its
/// 8-byte length), where `bytes` holds all of it.
fn header_json(bytes: &[u8]) -> Option<&[u8]> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    bytes.get(8..usize::try_from(n).ok()?.checked_add(8)?)
}

/// The first tensor (by where its data begins) whose `data_offsets` do not
/// hold what its dtype and shape take, said so: the crate names the tensor
/// after it ("invalid offset for tensor `2.bias`" for a `2.weight` whose
/// shape was edited), or none. `None` where every tensor of a known dtype
/// fits, or the header is no JSON object.
fn mis_sized(bytes: &[u8]) -> Option<String> {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
    use std::borrow::Cow;
    /// A tensor's entry, as lean as it can be read (names borrowed from
    /// the header where they can be): the header may be large and the
    /// file damaged, and no JSON tree of it is built.
    #[derive(serde::Deserialize)]
    struct Entry {
        dtype: Dtype,
        shape: Vec<u64>,
        data_offsets: (u64, u64),
    }
    /// The first (by where its data begins) entry whose offsets do not
    /// fit its dtype and shape, said so; and the spans of those that do.
    #[derive(Default)]
    struct Found<'a> {
        wrong: Option<(u64, String)>,
        spans: Vec<(u64, u64, Cow<'a, str>)>,
    }
    struct Entries;
    impl<'de> Visitor<'de> for Entries {
        type Value = Found<'de>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = Found::default();
            while let Some(name) = map.next_key::<Cow<'de, str>>()? {
                if name == "__metadata__" {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                let t = map.next_value::<Entry>()?;
                // Whole bytes only: the sub-byte formats pack elements.
                let bits = t.dtype.bitsize() as u64;
                if !bits.is_multiple_of(8) {
                    continue;
                }
                let size = bits / 8;
                let (begin, end) = t.data_offsets;
                let takes = t.shape.iter().try_fold(size, |acc, &d| acc.checked_mul(d));
                let span = end.checked_sub(begin);
                if takes.is_some() && takes == span {
                    found.spans.push((begin, end, name));
                    continue;
                }
                if found.wrong.as_ref().is_some_and(|(b, _)| *b <= begin) {
                    continue;
                }
                let takes = match takes {
                    Some(b) => format!("{b} bytes of {:?}", t.dtype),
                    None => "more bytes than any file holds".into(),
                };
                let span = match span {
                    Some(b) => format!("give it {b} bytes"),
                    None => format!("end ({end}) before they begin ({begin})"),
                };
                let shape = &t.shape;
                found.wrong = Some((
                    begin,
                    format!(
                        "tensor {name:?} has shape {shape:?} ({takes}) but its data_offsets {span}"
                    ),
                ));
            }
            Ok(found)
        }
    }
    let Found { wrong, mut spans } = serde_json::Deserializer::from_slice(header_json(bytes)?)
        .deserialize_map(Entries)
        .ok()?;
    if let Some((_, why)) = wrong {
        return Some(why);
    }
    // Each of the right size, but two claim the same bytes, or leave
    // bytes between them to none (the format packs them end to end).
    spans.sort_unstable();
    spans.windows(2).find(|w| w[1].0 != w[0].1).map(|w| {
        let ((b0, e0, n0), (b1, e1, n1)) = (&w[0], &w[1]);
        let how = match b1 < e0 {
            true => "overlap",
            false => "leave bytes between them to no tensor",
        };
        format!("the data_offsets of tensors {n0:?} ([{b0}, {e0}]) and {n1:?} ([{b1}, {e1}]) {how}")
    })
}

/// Metadata key of the training loss of a run's last whole epoch, which a
/// checkpoint records ([`crate::checkpoint::Checkpoint::last_epoch_loss`]) and
/// `serve` shows for a checkpoint loaded as a model.
pub(crate) const LAST_LOSS_KEY: &str = "simplenn.last_epoch_train_loss";

/// [`LAST_LOSS_KEY`]'s value, where it is a loss a run could have had
/// ([`crate::config::recordable_loss`]).
pub(crate) fn sound_loss(v: &str) -> Option<f64> {
    v.parse::<f64>()
        .ok()
        .filter(|&l| crate::config::recordable_loss(l, 1))
}

/// The way out of a file that is no safetensors file, where a model is
/// wanted ([`crate::checkpoint::load_checkpoint`] names its own).
pub(crate) const FIX_NOT_MODEL: &str = "pass a model written by --save (or a checkpoint)";

/// The fix for weights no model may hold (NaN, infinite, or outputs past
/// float32): a checkpoint's reader says "an earlier checkpoint" alone.
pub(crate) const FIX_BAD_WEIGHTS: &str = "use another model (or an earlier checkpoint)";

/// The error for a file whose header gives `twice` ([`named_twice`]) twice.
fn given_twice(path: &Path, twice: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{}: its header gives {twice} twice, so one of the two would be dropped unread; the file is damaged; use another copy, or an earlier checkpoint",
        path.display()
    )
}

/// What is wrong with `bytes`, which the safetensors crate refused with
/// `e`, and what to do: a file cut short, or with bytes after its tensors,
/// is named as such (the crate says "incomplete metadata" for both).
pub(crate) fn not_safetensors(
    bytes: &[u8],
    what: &Path,
    e: safetensors::SafeTensorError,
) -> anyhow::Error {
    use safetensors::SafeTensorError as E;
    let damaged = "the file is damaged; use another copy, or an earlier checkpoint";
    let path = what.display();
    let len = bytes.len();
    if let Some(twice) = named_twice(bytes) {
        return given_twice(what, &twice);
    }
    if let Some(why) = mis_sized(bytes) {
        return anyhow::anyhow!("{path}: {why}; {damaged}");
    }
    match (&e, described_len(bytes)) {
        (E::HeaderTooSmall, _) => anyhow::anyhow!(
            "{path}: not a safetensors file ({len} bytes, fewer than the 8 that give its header's length); {FIX_NOT_MODEL}"
        ),
        (E::InvalidHeaderLength, _) => anyhow::anyhow!(
            "{path}: cut short inside its header ({len} bytes, fewer than the header's length says); {damaged}"
        ),
        (E::MetadataIncompleteBuffer, Some(want)) if (len as u64) < want => anyhow::anyhow!(
            "{path}: cut short: {len} bytes, where its header describes {want}; {damaged}"
        ),
        (E::MetadataIncompleteBuffer, Some(want)) => anyhow::anyhow!(
            "{path}: longer than the {want} bytes its header describes; {damaged}"
        ),
        _ => anyhow::anyhow!(
            "{path}: not a safetensors file ({e}); {FIX_NOT_MODEL}"
        ),
    }
}

/// The parameter a checkpoint's state tensor stands beside
/// (`momentum.0.weight`: `0.weight`), or `None` for a name of no state.
fn state_parameter(name: &str) -> Option<&str> {
    [MOMENTUM, EXP_AVG, EXP_AVG_SQ]
        .iter()
        .find_map(|p| name.strip_prefix(p)?.strip_prefix('.'))
}

/// Read a model from `bytes`, checking every tensor's name, dtype and shape.
/// `extra` names prefixes of further slabs that must be present.
pub fn from_bytes(bytes: &[u8], what: &Path, extra: &[&str]) -> Result<Loaded> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| not_safetensors(bytes, what, e))?;
    // The crate keeps the last of two entries of one name, whose values
    // then depend on their order in the file.
    if let Some(twice) = named_twice(bytes) {
        return Err(given_twice(what, &twice));
    }
    let (_, meta) =
        SafeTensors::read_metadata(bytes).map_err(|e| not_safetensors(bytes, what, e))?;
    let dims = chain(&st, what)?;
    // A tensor outside the chain would be dropped without a word: say so
    // instead (e.g. `nn.Sequential(Linear, ReLU, Dropout, Linear)` names its
    // second layer `3.`, which the chain never reaches).
    let known = |name: &str| {
        let bare = state_parameter(name).unwrap_or(name);
        (0..dims.layers()).any(|l| layer_names(l).iter().any(|n| n == bare))
    };
    let mut names = st.names();
    names.sort();
    if let Some(&stray) = names.iter().find(|n| !known(n)) {
        // `N.bias` whose `N.weight` is gone: the chain stopped there.
        if let Some(weight) = stray
            .strip_suffix(".bias")
            .filter(|layer| layer.parse::<usize>().is_ok())
            .map(|layer| format!("{layer}.weight"))
            .filter(|w| st.tensor(w).is_err())
        {
            bail!(
                "{}: tensor {weight:?} is missing (its {stray:?} is there), so the network stops at {}: the file is incomplete or damaged; save it again (or use another checkpoint)",
                what.display(),
                dims.name()
            );
        }
        bail!(
            "{}: tensor {stray:?} is not part of the network {}; a simplenn model holds only its linear layers, named as nn.Sequential(Linear, ReLU, Linear, …) names them (0.weight, 0.bias, 2.weight, …): rename the tensors, or save a Sequential without Dropout or other modules",
            what.display(),
            dims.name()
        );
    }
    // A checkpoint's state tensor read as a model is set aside, but not
    // unchecked: one of another shape or type than its parameter's is
    // damage, as it would be to `--resume`.
    // In name order, as above: the error names the same tensor every run.
    for &name in &names {
        let Some(bare) = state_parameter(name) else {
            continue;
        };
        let expected = (0..dims.layers())
            .flat_map(|l| layer_names(l).into_iter().zip(layer_shapes(&dims, l)))
            .find_map(|(n, shape)| (n == bare).then_some(shape))
            .expect("known() found it");
        let t = tensor(&st, name, what)?;
        if t.shape() != expected.as_slice() {
            bail!(
                "{}: tensor {name:?} has shape {:?}, expected {expected:?} (as {bare:?}): the file is damaged; save it again (or use another checkpoint)",
                what.display(),
                t.shape()
            );
        }
    }
    let read = |prefix: &str| -> Result<Params> {
        let mut torch = vec![0.0f32; dims.param_count()];
        let mut off = 0;
        for l in 0..dims.layers() {
            for (name, shape) in layer_names(l).iter().zip(layer_shapes(&dims, l)) {
                let full = format!("{prefix}{name}");
                let t = tensor(&st, &full, what)?;
                if t.shape() != shape.as_slice() {
                    bail!(
                        "{}: tensor {full:?} has shape {:?}, expected {:?} (as {name:?}): the file is damaged; save it again (or use another checkpoint)",
                        what.display(),
                        t.shape(),
                        shape
                    );
                }
                let n: usize = shape.iter().product();
                for (dst, src) in torch[off..off + n].iter_mut().zip(t.data().chunks_exact(4)) {
                    *dst = f32::from_le_bytes([src[0], src[1], src[2], src[3]]);
                }
                if prefix.is_empty() && !torch[off..off + n].iter().all(|v| v.is_finite()) {
                    bail!(
                        "{}: tensor {full:?} holds NaN or infinite weights, so the model's outputs would be NaN; {FIX_BAD_WEIGHTS}",
                        what.display()
                    );
                }
                off += n;
            }
        }
        let params = Params::from_torch(dims.clone(), &torch);
        if prefix.is_empty() {
            if let Some(bound) = past_output_limit(&params).map(bound_words) {
                bail!(
                    "{}: the weights are so large that the model's outputs could overflow float32 (up to {bound} for inputs in [0, 1], past the {MAX_OUTPUT:e} a model may reach); no trained model has such weights: {FIX_BAD_WEIGHTS}",
                    what.display()
                );
            }
        }
        Ok(params)
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

/// The largest output a loaded model may reach for inputs in [0, 1]:
/// past this, logits (and the sums that make them) could come near
/// `f32::MAX` (3.4e38) and overflow to infinity, and eval, predict and
/// serve would answer NaN. A trained model is many orders of magnitude
/// below it.
pub const MAX_OUTPUT: f64 = 1e30;

/// The bound on the outputs of the network `params`, where it is past
/// [`MAX_OUTPUT`] (NaN: an infinite bound times a zero row): such weights
/// are refused by every command that loads a model, so a run that reaches
/// them must not save them either.
pub fn past_output_limit(params: &Params) -> Option<f64> {
    let bound = output_bound(params);
    (bound.is_nan() || bound > MAX_OUTPUT).then_some(bound)
}

/// A bound of [`past_output_limit`], written out.
pub fn bound_words(bound: f64) -> String {
    match bound.is_finite() {
        true => format!("{bound:.1e}"),
        false => "beyond f64".into(),
    }
}

/// A bound on every pre-activation of the network `params` for inputs in
/// [0, 1]: through each layer, the largest row sum of `|W|` (one output
/// unit's incoming weights, read through the layer's view of `Wᵀ`, however
/// it is stored) times the bound so far, plus the largest `|b|` (ReLU only
/// shrinks). Every partial sum of a product is below it too. In f64, so
/// that it may exceed what f32 holds.
fn output_bound(params: &Params) -> f64 {
    let mut bound = 1.0f64;
    for l in 0..params.dims.layers() {
        let (i, o) = params.dims.layer(l);
        let lin = params.linear(l);
        let row = (0..o)
            .map(|j| {
                (0..i)
                    .map(|k| f64::from(lin.wt.at(k, j).abs()))
                    .sum::<f64>()
            })
            .fold(0.0, f64::max);
        let bias = lin.b.iter().map(|v| f64::from(v.abs())).fold(0.0, f64::max);
        bound = row * bound + bias;
    }
    bound
}

/// Tensor `name`, which must exist and be F32.
fn tensor<'a>(
    st: &'a SafeTensors<'a>,
    name: &str,
    what: &Path,
) -> Result<safetensors::tensor::TensorView<'a>> {
    let t = st
        .tensor(name)
        .map_err(|_| anyhow::anyhow!("{}: tensor {name:?} is missing: the file is incomplete or damaged; save it again (or use another checkpoint)", what.display()))?;
    if t.dtype() != Dtype::F32 {
        bail!(
            "{}: tensor {name:?} is {:?}, expected F32; save the model in float32 (in PyTorch, model.float() before saving)",
            what.display(),
            t.dtype()
        );
    }
    Ok(t)
}

/// Why a file has no `0.weight`, from the names it has: a parameter-free
/// module first (`nn.Flatten`: `1.weight`, `3.weight`, …), a Sequential
/// inside another module (`model.0.weight`), or named modules (`fc1.weight`).
fn first_layer_hint(st: &SafeTensors) -> String {
    let mut weights: Vec<&str> = st
        .names()
        .into_iter()
        .filter(|n| n.ends_with(".weight"))
        .collect();
    weights.sort_unstable();
    // `00.weight`, `+0.weight`: numbers as PyTorch never writes them,
    // which the loader, looking for `0.weight`, does not take for layer 0.
    let odd = weights.iter().find(|n| {
        let layer = n.strip_suffix(".weight").unwrap_or(n);
        layer.parse::<usize>().is_ok_and(|i| i.to_string() != layer)
    });
    if let Some(n) = odd {
        return format!(
            "; its layers are numbered as nn.Sequential never numbers them ({}, …): number them 0, 2, 4, … (0.weight, 0.bias, 2.weight, …)",
            crate::show::one_line(n)
        );
    }
    // `0.0.weight`: a Sequential of Sequentials (numbers all the way down).
    let nested = weights.iter().find(|n| {
        let parts: Vec<&str> = n.split('.').collect();
        parts.len() > 2
            && parts[..parts.len() - 1]
                .iter()
                .all(|p| p.parse::<usize>().is_ok())
    });
    if let Some(n) = nested {
        return format!(
            "; its tensors are named {}, …: Sequentials nested in a Sequential; save one flat nn.Sequential(Linear, ReLU, …, Linear)",
            crate::show::one_line(n)
        );
    }
    // `0.bias` without its weight: a renamed or damaged tensor, not a
    // module before the first Linear. The name that fits no layer, if any.
    if st.tensor("0.bias").is_ok() {
        let mut names = st.names();
        names.sort_unstable();
        let layer_name = |n: &str| {
            n.rsplit_once('.').is_some_and(|(l, kind)| {
                l.parse::<usize>().is_ok() && (kind == "weight" || kind == "bias")
            })
        };
        let state = |n: &str| {
            [MOMENTUM, EXP_AVG, EXP_AVG_SQ]
                .iter()
                .any(|p| n.strip_prefix(p).is_some_and(|r| r.starts_with('.')))
        };
        let stray = names.iter().find(|n| !layer_name(n) && !state(n));
        return match stray {
            Some(n) => format!(
                "; \"0.bias\" is there, and a tensor {:?} that no layer has: renamed or damaged; name it \"0.weight\" (or save the model again)",
                crate::show::one_line(n)
            ),
            None => "; \"0.bias\" is there without it: the file is incomplete or damaged; save the model again".into(),
        };
    }
    // The lowest-numbered `N.weight` (each written as PyTorch writes it:
    // any other was named above).
    let numbered = weights
        .iter()
        .filter_map(|n| n.strip_suffix(".weight")?.parse::<usize>().ok())
        .min();
    if let Some(n) = numbered {
        return format!(
            "; it starts at \"{n}.weight\": a module without weights (nn.Flatten, say) comes before the first Linear; flatten the images outside the model and save a Sequential of Linear and ReLU alone, or rename the tensors {n}, {}, … to 0, 2, …",
            n + 2
        );
    }
    let mut prefixed: Vec<&str> = weights
        .iter()
        .filter_map(|n| n.strip_suffix("0.weight"))
        .filter(|p| p.ends_with('.'))
        .collect();
    prefixed.sort_unstable();
    if let Some(p) = prefixed.first() {
        let p = crate::show::one_line(p);
        return format!(
            "; its tensors are named {p}0.weight, …: a Sequential inside another module; save that Sequential's state_dict, or strip \"{p}\" from the names"
        );
    }
    match weights.first() {
        Some(w) => format!(
            "; its tensors are named for their modules (\"{}\", …): save an nn.Sequential(Linear, ReLU, …, Linear), or rename its layers' tensors 0, 2, 4, … in order",
            crate::show::one_line(w)
        ),
        None => String::new(),
    }
}

/// The way out of a file whose tensors make no chain of linear layers.
const FIX_NOT_MLP: &str = "the file is damaged or holds another kind of network; pass a model written by --save (or a PyTorch nn.Sequential(Linear, ReLU, …, Linear) saved as README shows)";

/// The widths of the network in a file: its layers `0.weight`, `2.weight`,
/// … in order, each taking the previous one's outputs as inputs.
fn chain(st: &SafeTensors, what: &Path) -> Result<Dims> {
    let mut widths: Vec<usize> = Vec::new();
    for l in 0..=MAX_LAYERS {
        let [w, b] = layer_names(l);
        if st.tensor(&w).is_err() {
            if l == 0 {
                bail!(
                    "{}: no tensor \"0.weight\"; expected a simplenn model (tensors 0.weight, 0.bias, 2.weight, 2.bias, …){}",
                    what.display(),
                    first_layer_hint(st)
                );
            }
            break;
        }
        if l == MAX_LAYERS {
            bail!(
                "{}: more than {MAX_LAYERS} linear layers; simplenn trains and reads at most {MAX_LAYERS} (31 hidden layers): pass a model of fewer",
                what.display()
            );
        }
        let t = tensor(st, &w, what)?;
        let (o, i) = match t.shape() {
            [o, i] if *o > 0 && *i > 0 => (*o, *i),
            s => bail!(
                "{}: tensor {w:?} has shape {s:?}, expected [outputs, inputs] as a Linear layer's weight is; {FIX_NOT_MLP}",
                what.display()
            ),
        };
        match widths.last() {
            None => widths.push(i),
            Some(&prev) if prev != i => {
                // (in, out) where Linear keeps (out, in): the first
                // dimension connects, and the bias has the second's length.
                let bias_len = st.tensor(&b).ok().map(|t| t.shape().to_vec());
                let fix = match o == prev && bias_len == Some(vec![i]) {
                    true => format!("if {w:?} is stored (inputs, outputs), transpose it: PyTorch's Linear keeps (outputs, inputs)"),
                    false => FIX_NOT_MLP.to_string(),
                };
                bail!(
                    "{}: tensor {w:?} has shape [{o}, {i}], so takes {i} inputs, but {:?} has {prev} outputs; the layers do not connect; {fix}",
                    what.display(),
                    layer_names(l - 1)[0]
                )
            }
            Some(_) => {}
        }
        widths.push(o);
        if st.tensor(&b).is_err() {
            bail!(
                "{}: tensor {b:?} is missing: every layer of a simplenn model has a bias (a PyTorch Linear(..., bias=False) has none); build the model with bias=True, or add a zero tensor {b:?} of shape [{o}]",
                what.display()
            );
        }
        let bias = tensor(st, &b, what)?;
        if bias.shape() != [o] {
            // [inputs] where [outputs] was expected: the weight is (in, out).
            let transposed = match bias.shape() == [i] && l == 0 {
                true => format!("; if {w:?} is stored (inputs, outputs), transpose it: PyTorch's Linear keeps (outputs, inputs)"),
                false => format!("; {FIX_NOT_MLP}"),
            };
            bail!(
                "{}: tensor {b:?} has shape {:?}, expected [{o}] (the outputs of {w:?}){transposed}",
                what.display(),
                bias.shape()
            );
        }
    }
    let k = widths.pop().expect("at least one layer");
    if k < 2 {
        bail!(
            "{}: the last layer has {k} output; a classifier needs at least two classes; {FIX_NOT_MLP}",
            what.display()
        );
    }
    if k > MAX_CLASSES {
        bail!(
            "{}: the last layer has {k} outputs, more than the {MAX_CLASSES} classes simplenn handles (labels are bytes); pass a model of at most {MAX_CLASSES} outputs",
            what.display()
        );
    }
    let d = widths.remove(0);
    Ok(Dims::new(d, &widths, k))
}

/// Load a model file (see [`from_bytes`]).
pub fn load_model(path: &Path) -> Result<Params> {
    Ok(load_model_image(path)?.0)
}

/// Load a model file, with the `(rows, cols)` of the images it was trained
/// on where the file tells: the shape it records (simplenn records only
/// shapes that are not square; another program may record any), else side × side for a file simplenn wrote (which has recorded every
/// other shape since a2e36ba; a file of a non-square model written by a
/// development build before that is taken for a square one); `None` for a
/// file from elsewhere without the key.
pub fn load_model_image(path: &Path) -> Result<(Params, Option<(usize, usize)>)> {
    let m = load_model_file(path)?;
    Ok((m.params, m.image))
}

/// A model file read for use: its weights, the shape of its images
/// ([`load_model_image`]) and its class names' metadata value (checked by
/// [`classes::for_model`], where a flag may stand in for it).
struct ModelFile {
    pub params: Params,
    pub image: Option<(usize, usize)>,
    pub class_names: Option<String>,
    /// A checkpoint's last whole epoch's training loss (see
    /// [`crate::checkpoint::Checkpoint::last_epoch_loss`]), where it records a sound one.
    pub last_epoch_loss: Option<f64>,
}

/// Load a model (or checkpoint) file for `eval`, `predict` or `serve`:
/// its weights, the shape of its images, and its class names, those of
/// `names_flag` (`--class-names`) where given, else the file's.
pub fn load_named_model(path: &Path, names_flag: Option<&Path>) -> Result<NamedModel> {
    let file = load_model_file(path)?;
    let k = file.params.dims.k();
    let names = classes::for_model(names_flag, file.class_names.as_deref(), k, path)?;
    Ok(NamedModel {
        params: file.params,
        image: file.image,
        names,
        last_epoch_loss: file.last_epoch_loss,
    })
}

/// What [`load_named_model`] gives.
pub struct NamedModel {
    pub params: Params,
    pub image: Option<(usize, usize)>,
    pub names: Option<ClassNames>,
    /// For a checkpoint from past epoch 1: its run's last whole epoch's
    /// training loss, which that run's `--metrics` log records exactly.
    pub last_epoch_loss: Option<f64>,
}

/// Load a model (or checkpoint) file with what it records beside its weights.
fn load_model_file(path: &Path) -> Result<ModelFile> {
    let bytes = read_safetensors(path, "model")?;
    let loaded = from_bytes(&bytes, path, &[])?;
    let dims = &loaded.params.dims;
    // The widths simplenn wrote beside the tensors must be theirs.
    let ours = match loaded.metadata.get("simplenn.hidden") {
        None => false,
        Some(h) if parse_hidden(h).ok().as_deref() == Some(dims.hidden()) => true,
        Some(h) => bail!(
            "{}: its metadata says simplenn.hidden {h:?}, but its tensors are {}: the file is damaged; save the model again",
            path.display(),
            dims.name()
        ),
    };
    // A checkpoint records its class count too.
    if let Some(k) = loaded.metadata.get("simplenn.classes") {
        if k.parse::<usize>().ok() != Some(dims.k()) {
            bail!(
                "{}: its metadata says simplenn.classes {:?}, but its tensors are {}: the file is damaged; save the model again",
                path.display(),
                crate::atomic::cut(k, 60),
                dims.name()
            );
        }
    }
    let square = dims.square_side().filter(|_| ours);
    let recorded = recorded_image(&loaded.metadata, dims.d(), path)?;
    let image = recorded.or(square.map(|side| (side, side)));
    let class_names = loaded.metadata.get(classes::KEY).cloned();
    // Only a use of the model's weights: a damaged value is no reason to
    // refuse them (resuming from the file checks it).
    let last_epoch_loss = loaded
        .metadata
        .get(LAST_LOSS_KEY)
        .and_then(|v| sound_loss(v));
    Ok(ModelFile {
        params: loaded.params,
        image,
        class_names,
        last_epoch_loss,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Init;

    #[test]
    fn a_recorded_image_shape_must_hold_the_inputs() {
        let t = tempfile::tempdir().unwrap();
        let p = Params::init(Dims::mnist(&[4]), Init::He, 1);
        let (good, bad) = (t.path().join("good"), t.path().join("bad"));
        save_model(&good, &p, (14, 56), None).unwrap();
        assert_eq!(load_model_image(&good).unwrap().1, Some((14, 56)));
        // 28 × 29 = 812 pixels for a model of 784 inputs: refused by the
        // save, and damaged metadata where a file has it anyway.
        let e = save_model(&bad, &p, (28, 29), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("image 28 × 29 is not the model's 784 inputs"),
            "{e}"
        );
        assert!(!bad.exists());
        let names = ClassNames::from_metadata("a\nb", 2, &bad).unwrap();
        let e = save_model(&bad, &p, (28, 28), Some(&names))
            .unwrap_err()
            .to_string();
        assert!(e.contains("2 class names for a model of 10 classes"), "{e}");
        // Params' public data cut short of its dims: refused, not a panic.
        let mut short = p.clone();
        short.data.truncate(5);
        let e = save_model(&bad, &short, (28, 28), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Params.data holds 5 numbers, but its dims 784-4-10 have 3190"),
            "{e}"
        );
        assert!(!bad.exists());
        let mut meta = HashMap::new();
        put_image(&mut meta, (28, 29));
        std::fs::write(&bad, to_bytes(&p, &[], meta)).unwrap();
        let e = load_model_image(&bad).err().unwrap().to_string();
        assert!(
            e.contains("simplenn.image 28x29, but its first layer takes 784 inputs")
                && e.contains("damaged"),
            "{e}"
        );
        // A file from elsewhere (no simplenn metadata) does not say what its
        // images were, even with a square number of inputs.
        let foreign = t.path().join("foreign");
        std::fs::write(&foreign, to_bytes(&p, &[], HashMap::new())).unwrap();
        let (q, image) = load_model_image(&foreign).unwrap();
        assert_eq!((q, image), (p, None));
    }

    #[test]
    fn same_weights_same_bytes() {
        let p = Params::init(Dims::mnist(&[4]), Init::He, 1);
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

    /// The tensors start 8-byte aligned, the header padded with spaces to
    /// get there (the format's rule: readers may map the data as floats in
    /// place), whatever length the metadata gives the header.
    #[test]
    fn the_data_starts_8_byte_aligned() {
        let p = Params::init(Dims::mnist(&[4]), Init::He, 1);
        let mut pads = std::collections::BTreeSet::new();
        for n in 0..16 {
            let bytes = to_bytes(&p, &[], [("k".to_string(), "v".repeat(n))]);
            let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
            assert_eq!((8 + len) % 8, 0, "metadata of {n} bytes");
            let header = std::str::from_utf8(&bytes[8..8 + len]).unwrap();
            let json = header.trim_end_matches(' ');
            assert!(json.ends_with('}') && header.len() - json.len() < 8);
            pads.insert(header.len() - json.len());
            assert_eq!(from_bytes(&bytes, Path::new("x"), &[]).unwrap().params, p);
        }
        // Every padding from none to seven was needed once in the 16.
        assert_eq!(pads.len(), 8);
    }

    /// A metadata key that happens to be called `__metadata__`, given
    /// once, is no key given twice.
    #[test]
    fn a_metadata_key_named_metadata_is_read_once() {
        let p = Params::init(Dims::mnist(&[4]), Init::He, 1);
        let meta = [("__metadata__".to_string(), "x".to_string())];
        let back = from_bytes(&to_bytes(&p, &[], meta), Path::new("m"), &[]).unwrap();
        assert_eq!(
            back.metadata.get("__metadata__").map(String::as_str),
            Some("x")
        );
        assert_eq!(back.params, p);
    }

    #[test]
    fn more_classes_than_labels_can_name_is_refused() {
        let p = Params::zeros(Dims::new(4, &[3], MAX_CLASSES + 1));
        let bytes = to_bytes(&p, &[], HashMap::new());
        let e = from_bytes(&bytes, Path::new("m.st"), &[])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("257 outputs, more than the 256 classes"), "{e}");
        let p = Params::zeros(Dims::new(4, &[3], MAX_CLASSES));
        let bytes = to_bytes(&p, &[], HashMap::new());
        assert!(from_bytes(&bytes, Path::new("m.st"), &[]).is_ok());
    }

    /// A file far longer than its header describes (a model with 64 GiB
    /// after its tensors, or 64 GiB of zeros, both sparse) is read only a
    /// byte past what the header describes, or not past the header, and
    /// named for what it is: not a model too large for memory, nor one
    /// read whole before it is refused.
    #[test]
    fn a_long_file_is_read_only_as_far_as_its_header_describes() {
        let p = Params::init(Dims::mnist(&[4]), Init::He, 1);
        let bytes = to_bytes(&p, &[], HashMap::new());
        let t = tempfile::tempdir().unwrap();
        let (padded, zeros) = (t.path().join("padded"), t.path().join("zeros"));
        std::fs::write(&padded, &bytes).unwrap();
        let long = 64 << 30;
        let grown = std::fs::OpenOptions::new()
            .write(true)
            .open(&padded)
            .and_then(|f| f.set_len(long));
        let zeroed = std::fs::File::create(&zeros).and_then(|f| f.set_len(long));
        if let Err(e) = grown.and(zeroed) {
            eprintln!("*** SKIPPED: no sparse file of 64 GiB here ({e})");
            return;
        }
        let read = read_safetensors(&padded, "model").unwrap();
        assert_eq!(read.len(), bytes.len() + 1);
        let e = from_bytes(&read, &padded, &[]).err().unwrap().to_string();
        let want = format!("longer than the {} bytes its header describes", bytes.len());
        assert!(e.contains(&want), "{e}");
        let read = read_safetensors(&zeros, "model").unwrap();
        assert_eq!(read, [0; 8]);
        let e = from_bytes(&read, &zeros, &[]).err().unwrap().to_string();
        assert!(e.contains("not a safetensors file"), "{e}");
    }

    #[test]
    fn errors_name_the_file_and_tensor() {
        let p = Params::init(Dims::mnist(&[4]), Init::He, 1);
        let bytes = to_bytes(&p, &[], HashMap::new());
        let want = bytes.len();
        let refused = |b: &[u8]| {
            from_bytes(b, Path::new("m.st"), &[])
                .err()
                .unwrap()
                .to_string()
        };
        let mut longer = bytes.clone();
        longer.extend([0; 3]);
        for (b, says) in [
            (
                &bytes[..want - 4],
                format!(
                    "m.st: cut short: {} bytes, where its header describes {want}; the file is damaged",
                    want - 4
                ),
            ),
            (
                &longer[..],
                format!("m.st: longer than the {want} bytes its header describes"),
            ),
            (
                &bytes[..20],
                "m.st: cut short inside its header".to_string(),
            ),
            (
                &bytes[..4],
                "m.st: not a safetensors file (4 bytes, fewer than the 8".to_string(),
            ),
            (b"hello", "m.st: not a safetensors file".to_string()),
        ] {
            let e = refused(b);
            assert!(e.starts_with(&says), "{e}");
        }
        // A header that names one tensor twice (its `0.bias` renamed
        // `0.weight`): said as such, not as the bad offset it leads to.
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
        assert!(header.contains("\"0.bias\""), "{header}");
        let mut twice = header.replacen("\"0.bias\"", "\"0.weight\"", 1);
        while !twice.len().is_multiple_of(8) {
            twice.push(' ');
        }
        let mut b = (twice.len() as u64).to_le_bytes().to_vec();
        b.extend(twice.as_bytes());
        b.extend(&bytes[8 + n..]);
        let e = refused(&b);
        assert!(
            e.starts_with("m.st: its header gives tensor \"0.weight\" twice"),
            "{e}"
        );
        // Twice what the crate takes, keeping the last (the same tensor
        // entry twice; a metadata key twice): refused, not read by order.
        let with_header = |text: String, body: &[u8]| {
            let mut text = text;
            while !text.len().is_multiple_of(8) {
                text.push(' ');
            }
            let mut b = (text.len() as u64).to_le_bytes().to_vec();
            b.extend(text.as_bytes());
            b.extend(body);
            b
        };
        let bias: serde_json::Value = serde_json::from_str(header).unwrap();
        let entry = format!("{{\"0.bias\":{},", bias["0.bias"]);
        let b = with_header(header.replacen('{', &entry, 1), &bytes[8 + n..]);
        assert!(SafeTensors::deserialize(&b).is_ok());
        let e = refused(&b);
        assert!(
            e.starts_with("m.st: its header gives tensor \"0.bias\" twice")
                && e.contains("the file is damaged"),
            "{e}"
        );
        let meta = HashMap::from([("simplenn.hidden".to_string(), "4".to_string())]);
        let with_meta = to_bytes(&p, &[], meta);
        let m = u64::from_le_bytes(with_meta[..8].try_into().unwrap()) as usize;
        let text = std::str::from_utf8(&with_meta[8..8 + m]).unwrap();
        assert!(text.contains("\"__metadata__\":{"), "{text}");
        for order in [r#""simplenn.hidden":"999","#, r#""simplenn.hidden":"4","#] {
            let twice = text.replacen(
                "\"__metadata__\":{",
                &format!("\"__metadata__\":{{{order}"),
                1,
            );
            let b = with_header(twice, &with_meta[8 + m..]);
            assert!(SafeTensors::read_metadata(&b).is_ok());
            let e = refused(&b);
            assert!(
                e.starts_with("m.st: its header gives metadata key \"simplenn.hidden\" twice"),
                "{e}"
            );
        }
        assert!(from_bytes(&with_meta, Path::new("m.st"), &[]).is_ok());
        // Offsets that do not fit their tensors: the tensor at fault
        // named (the crate names the one after it: "invalid offset for
        // tensor `0.bias`").
        let edited = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut h: serde_json::Value = serde_json::from_str(header).unwrap();
            edit(&mut h);
            let mut text = serde_json::to_string(&h).unwrap();
            while !text.len().is_multiple_of(8) {
                text.push(' ');
            }
            let mut b = (text.len() as u64).to_le_bytes().to_vec();
            b.extend(text.as_bytes());
            b.extend(&bytes[8 + n..]);
            refused(&b)
        };
        let shift = |by: i64| {
            move |h: &mut serde_json::Value| {
                let o = &mut h["0.bias"]["data_offsets"];
                let at = |i: usize| o[i].as_i64().unwrap() + by;
                *o = serde_json::json!([at(0), at(1)]);
            }
        };
        let e = edited(&|h| {
            let rows = h["0.weight"]["shape"][0].as_u64().unwrap();
            h["0.weight"]["shape"][0] = (rows + 1).into();
        });
        assert!(
            e.starts_with("m.st: tensor \"0.weight\" has shape [")
                && e.contains(" bytes of F32) but its data_offsets give it ")
                && e.ends_with("; the file is damaged; use another copy, or an earlier checkpoint"),
            "{e}"
        );
        let e = edited(&shift(-4));
        assert!(
            e.starts_with("m.st: the data_offsets of tensors \"0.weight\" ([0, ")
                && e.contains(" and \"0.bias\" ([")
                && e.contains("]) overlap; the file is damaged"),
            "{e}"
        );
        let e = edited(&shift(4));
        assert!(
            e.contains("]) leave bytes between them to no tensor; the file is damaged"),
            "{e}"
        );
    }
}

#[cfg(test)]
mod bytes_tests {
    use super::*;
    use crate::model::Init;

    #[test]
    fn round_trip_is_exact_and_stable() {
        let p = Params::init(Dims::mnist(&[3]), Init::He, 1);
        let v = Params::init(p.dims.clone(), Init::Normal(1.0), 2);
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
        let p = Params::init(Dims::mnist(&[3]), Init::He, 1);
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

    /// A file of F32 tensors `(name, shape, value of every element)`.
    fn file_of(tensors: &[(&str, Vec<usize>, f32)]) -> Vec<u8> {
        let data: Vec<Vec<u8>> = tensors
            .iter()
            .map(|(_, shape, v)| v.to_le_bytes().repeat(shape.iter().product()))
            .collect();
        let views: Vec<_> = tensors
            .iter()
            .zip(&data)
            .map(|((name, shape, _), d)| {
                let view =
                    safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), d).unwrap();
                (name.to_string(), view)
            })
            .collect();
        safetensors::serialize(views, None).unwrap()
    }

    #[test]
    fn models_that_cannot_classify_are_refused_by_name() {
        let err = |t: &[(&str, Vec<usize>, f32)]| match from_bytes(&file_of(t), Path::new("m"), &[])
        {
            Ok(_) => String::from("loaded"),
            Err(e) => e.to_string(),
        };
        let good = |b: f32| {
            vec![
                ("0.weight", vec![3, 4], 0.5),
                ("0.bias", vec![3], b),
                ("2.weight", vec![2, 3], 0.5),
                ("2.bias", vec![2], 0.0),
            ]
        };
        assert_eq!(err(&good(0.0)), "loaded");
        // A non-finite weight: every output would be NaN.
        let e = err(&good(f32::INFINITY));
        assert!(
            e.starts_with("m: tensor \"0.bias\" holds NaN or infinite"),
            "{e}"
        );
        assert!(err(&good(f32::NAN)).contains("\"0.bias\" holds NaN"));
        // Finite weights whose outputs could overflow: NaN answers, refused.
        let e = err(&good(3e38));
        assert!(e.contains("could overflow float32 (up to 4.5e38"), "{e}");
        let mut big = good(0.0);
        big[0].2 = 1e15;
        big[2].2 = 1e15;
        let e = err(&big);
        assert!(e.contains("could overflow float32 (up to 1.2e31"), "{e}");
        big[2].2 = 1e13;
        assert_eq!(err(&big), "loaded");
        // nn.Sequential(Linear, ReLU, Dropout, Linear) names its second layer
        // 3.: not silently a one-layer model of 3 classes.
        let mut t = good(0.0);
        t[2].0 = "3.weight";
        t[3].0 = "3.bias";
        let e = err(&t);
        assert!(
            e.contains("tensor \"3.bias\" is not part of the network 4-3"),
            "{e}"
        );
        // A layer of no inputs (or no outputs): refused by its shape, not
        // passed on to a network of width 0.
        for shape in [vec![3, 0], vec![0, 4]] {
            let mut t = good(0.0);
            t[0].1 = shape.clone();
            let e = err(&t);
            assert!(
                e.contains(&format!(
                    "tensor \"0.weight\" has shape {shape:?}, expected [outputs, inputs]"
                )),
                "{e}"
            );
        }
        // A checkpoint's optimiser state is part of it; other prefixes are not.
        let mut t = good(0.0);
        t.push(("momentum.0.bias", vec![3], 0.0));
        t.push(("exp_avg_sq.2.weight", vec![2, 3], 0.0));
        assert_eq!(err(&t), "loaded");
        t.push(("ema.0.bias", vec![3], 0.0));
        assert!(err(&t).contains("\"ema.0.bias\" is not part"));
        // A state tensor of another shape than its parameter's is damage,
        // not set aside unread.
        let mut t = good(0.0);
        t.push(("momentum.0.weight", vec![3, 3], 0.0));
        t.push(("momentum.2.bias", vec![1], 0.0));
        let e = err(&t);
        assert!(
            e.contains("tensor \"momentum.0.weight\" has shape [3, 3], expected [3, 4] (as \"0.weight\"): the file is damaged"),
            "{e}"
        );
        // A layer's weight gone, its bias left: the weight is named.
        let mut t = good(0.0);
        t.remove(2);
        let e = err(&t);
        assert!(
            e.contains("tensor \"2.weight\" is missing (its \"2.bias\" is there)"),
            "{e}"
        );
        // PyTorch files that are no Sequential of Linear and ReLU, each
        // with what made it so and the fix: a Flatten first, a Sequential
        // inside a module, named modules, Linear(bias=False), a weight
        // stored (in, out).
        let renamed = |names: [&'static str; 4]| {
            let mut t = good(0.0);
            for (entry, name) in t.iter_mut().zip(names) {
                entry.0 = name;
            }
            err(&t)
        };
        for (names, says) in [
            (
                ["1.weight", "1.bias", "3.weight", "3.bias"],
                "it starts at \"1.weight\": a module without weights (nn.Flatten, say)",
            ),
            (
                ["net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias"],
                "its tensors are named net.0.weight, …: a Sequential inside another module; save that Sequential's state_dict, or strip \"net.\"",
            ),
            (
                ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"],
                "named for their modules (\"fc1.weight\", …)",
            ),
            (
                ["0.0.weight", "0.0.bias", "0.2.weight", "0.2.bias"],
                "its tensors are named 0.0.weight, …: Sequentials nested in a Sequential; save one flat nn.Sequential(Linear, ReLU, …, Linear)",
            ),
            // The first weight renamed, its bias left: named, not blamed
            // on a module before the first Linear.
            (
                ["0/weight", "0.bias", "2.weight", "2.bias"],
                "; \"0.bias\" is there, and a tensor \"0/weight\" that no layer has: renamed or damaged; name it \"0.weight\"",
            ),
            (
                ["2.weight", "0.bias", "4.weight", "4.bias"],
                "; \"0.bias\" is there without it: the file is incomplete or damaged",
            ),
            // Numbers PyTorch never writes: not read as layer 0 (the line
            // said "it starts at \"0.weight\"" and to rename 0 to 0).
            (
                ["00.weight", "00.bias", "02.weight", "02.bias"],
                "; its layers are numbered as nn.Sequential never numbers them (00.weight, …): number them 0, 2, 4, … (0.weight, 0.bias, 2.weight, …)",
            ),
            (
                ["00.weight", "00.bias", "2.weight", "2.bias"],
                "(00.weight, …): number them 0, 2, 4, …",
            ),
            (
                ["+0.weight", "+0.bias", "2.weight", "2.bias"],
                "(+0.weight, …): number them 0, 2, 4, …",
            ),
        ] {
            let e = renamed(names);
            assert!(e.starts_with("m: no tensor \"0.weight\"") && e.contains(says), "{e}");
        }
        let mut t = good(0.0);
        t.remove(1);
        let e = err(&t);
        assert!(
            e.contains("tensor \"0.bias\" is missing: every layer of a simplenn model has a bias (a PyTorch Linear(..., bias=False) has none)")
                && e.contains("a zero tensor \"0.bias\" of shape [3]"),
            "{e}"
        );
        let mut t = good(0.0);
        // (in 4, out 3) where Linear keeps (out 3, in 4); its bias is [3].
        t[0].1 = vec![4, 3];
        let e = err(&t);
        assert!(
            e.contains("transpose it: PyTorch's Linear keeps (outputs, inputs)"),
            "{e}"
        );
        // The same for a later layer, whose first dimension connects.
        let mut t = good(0.0);
        t[2].1 = vec![3, 2];
        let e = err(&t);
        assert!(
            e.contains("has shape [3, 2], so takes 2 inputs, but \"0.weight\" has 3 outputs")
                && e.contains("transpose it: PyTorch's Linear keeps (outputs, inputs)"),
            "{e}"
        );
        // One output is no classifier.
        let e = err(&[("0.weight", vec![1, 4], 0.5), ("0.bias", vec![1], 0.0)]);
        assert!(
            e.contains("the last layer has 1 output; a classifier needs at least two"),
            "{e}"
        );
    }
}
