//! Data augmentation: every training image distorted afresh, each epoch, on
//! its way into the batch (`--augment elastic|shift:N|affine`).
//!
//! A distortion is a displacement field `(dx, dy)` over the output pixels;
//! output pixel `(x, y)` takes the source image's value at `(x + dx, y + dy)`
//! by bilinear interpolation, zero outside the image. The three kinds differ
//! only in the field:
//!
//! - **elastic** (Simard, Steinkraus & Platt 2003, §2): `dx` and `dy` are
//!   per-pixel uniform noise in `[−1, 1]`, smoothed by a Gaussian of `σ`
//!   pixels and scaled by `α` (the paper's MNIST values: σ = 4, α = 34);
//! - **shift:N**: one whole-pixel translation per image, each way up to `N`;
//! - **affine**: rotation up to ±15°, scale 0.85–1.15, horizontal shear up to
//!   ±0.2, about the image centre.
//!
//! Every random number is a hash of `(seed, epoch, image index, pixel)`, not a
//! draw from a stream: an image's distortion does not depend on which batch,
//! block or thread it lands in, so weights stay bit-identical whatever
//! `--threads` is, and a resumed run redraws exactly what it would have.
//!
//! The Gaussian is the exact sampled kernel `exp(−k²/2σ²)` (normalised), cut
//! at `|k| ≤ ⌊4σ + ½⌋` like `scipy.ndimage.gaussian_filter`'s default, with
//! zero outside the image (`mode="constant"`). It is separable, and each
//! 1-D pass is a product with a fixed Toeplitz matrix (`gw` along rows,
//! `gh` along columns, α folded in), so the fields of
//! 32 images at a time are smoothed by two sgemm calls (`elastic_fields`):
//! for 28 × 28 images about 201 kFLOP an image, small beside the network's
//! ~2.6 MFLOP a training image (784-800-10). `cargo bench --bench step --
//! augment` times a step with and without it.

use std::cell::RefCell;

use crate::data::Dataset;
use crate::error::UsageError;
use crate::gemm::{gemm, Beta, MatMut, MatRef};
use crate::hash::{mix, unit_bits};

/// Rotation bound of `--augment affine`, in degrees.
pub const AFFINE_ROTATE_DEG: f32 = 15.0;
/// Scale range of `--augment affine`: `1 ± this`.
pub const AFFINE_SCALE: f32 = 0.15;
/// Horizontal shear bound of `--augment affine`.
pub const AFFINE_SHEAR: f32 = 0.2;

/// Which distortion, with its parameters. Its [`Augment::name`] is its flag
/// value and its name in checkpoints.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Augment {
    None,
    /// Simard's elastic distortion: Gaussian `sigma`, scale `alpha` (pixels).
    Elastic {
        sigma: f32,
        alpha: f32,
    },
    /// Random whole-pixel translation by up to this many pixels each way.
    Shift(usize),
    /// Random small rotation, scale and shear.
    Affine,
}

/// The paper's σ and α for MNIST (Simard et al. 2003).
pub const ELASTIC_SIGMA: f32 = 4.0;
pub const ELASTIC_ALPHA: f32 = 34.0;

impl Augment {
    /// Parse `--augment` (`none`, `elastic`, `shift:N`, `affine`); elastic
    /// takes `sigma` and `alpha` from their own flags.
    pub fn parse(s: &str, sigma: f32, alpha: f32) -> Result<Self, UsageError> {
        let bad = |why: &str| {
            // A long value is shown by its start: the line stays short.
            let start = crate::atomic::cut(s, 60);
            let more = if start.len() < s.len() { "…" } else { "" };
            UsageError(format!(
                "--augment {start}{more}: {why}; use none, elastic, shift:N (e.g. shift:2) or affine"
            ))
        };
        let aug = match s {
            "none" => Augment::None,
            "elastic" => Augment::Elastic { sigma, alpha },
            "affine" => Augment::Affine,
            _ => match s.strip_prefix("shift:") {
                Some(n) => match n.parse::<usize>() {
                    Ok(n) if n >= 1 => Augment::Shift(n),
                    // All digits, yet no usize: past any image's side.
                    Err(_) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                        return Err(bad("N is larger than any image; shift by fewer pixels than the images' shorter side"))
                    }
                    _ => return Err(bad("N must be a whole number of pixels ≥ 1")),
                },
                None if s == "shift" => return Err(bad("shift needs a size")),
                None => return Err(bad("unknown augmentation")),
            },
        };
        if !(sigma.is_finite() && sigma > 0.0 && sigma <= 64.0) {
            return Err(UsageError(format!(
                "--elastic-sigma {}: must be in (0, 64] pixels, e.g. {ELASTIC_SIGMA} (the paper's value)",
                crate::show::number(sigma)
            )));
        }
        if !(alpha.is_finite() && (0.0..=1000.0).contains(&alpha)) {
            return Err(UsageError(format!(
                "--elastic-alpha {}: must be in [0, 1000] pixels, e.g. {ELASTIC_ALPHA} (the paper's value)",
                crate::show::number(alpha)
            )));
        }
        Ok(aug)
    }

    /// The flag value: `none`, `elastic`, `shift:N`, `affine`.
    pub fn name(&self) -> String {
        match self {
            Augment::None => "none".into(),
            Augment::Elastic { .. } => "elastic".into(),
            Augment::Shift(n) => format!("shift:{n}"),
            Augment::Affine => "affine".into(),
        }
    }

    /// What the header line says: the name, with σ and α for elastic.
    pub fn describe(&self) -> String {
        match self {
            Augment::Elastic { sigma, alpha } => format!(
                "elastic (sigma {}, alpha {})",
                crate::show::number(*sigma),
                crate::show::number(*alpha)
            ),
            a => a.name(),
        }
    }

    /// Check the distortion against the image size (`rows × cols`).
    /// `none`: whether the caller can do without one (training: `--augment
    /// none`), which the advice then offers; `augment`, which pictures
    /// distortions, cannot.
    pub fn check_size(&self, rows: usize, cols: usize, none: bool) -> Result<(), UsageError> {
        let nothing = |m: String| refusal(m, none, "larger");
        // Every distortion moves pixels across both sides (a shift, a
        // rotation, a displacement field): on images one pixel high (or
        // wide) it moves most of them out, and the network would train on
        // blanks (affine on 1 × 5000 images trained to chance).
        if *self != Augment::None && rows.min(cols) == 1 {
            return Err(nothing(format!(
                "--augment {}: the images are only {rows} × {cols} pixels, and every distortion moves pixels across both sides, so it would push most of a 1-pixel side out of the image",
                self.name()
            )));
        }
        self.check_fits(rows, cols, none)
    }

    /// [`Augment::check_size`] without its refusal of images one pixel high
    /// or wide, for a resumed run: an older build trained elastic and
    /// affine distortions of them, and such a run resumes as it was. What
    /// is left is what the distortions cannot compute at all.
    pub fn check_fits(&self, rows: usize, cols: usize, none: bool) -> Result<(), UsageError> {
        let nothing = |m: String| refusal(m, none, "smaller");
        if let Augment::Shift(n) = *self {
            if n >= rows.min(cols) {
                return Err(UsageError(format!(
                    "--augment shift:{n}: the images are only {rows} × {cols} pixels; shift by less than {} (e.g. shift:{})",
                    rows.min(cols),
                    (rows.min(cols) / 10).max(1)
                )));
            }
        }
        if *self != Augment::None
            && (rows >= MAX_SIDE || cols >= MAX_SIDE || (rows + 3) * (cols + 3) > i32::MAX as usize)
        {
            return Err(nothing(format!(
                "--augment {}: the images are {rows} × {cols} pixels, more than distortions handle (sides below {MAX_SIDE}, about 2^31 pixels in all)",
                self.name()
            )));
        }
        Ok(())
    }
}

/// A distortion refused for the images' size: with `--augment none` as the
/// way on where the caller can do without one (`none`), else saying that
/// nothing can be pictured and which images could be (`larger` or
/// `smaller` ones).
fn refusal(m: String, none: bool, images: &str) -> UsageError {
    match none {
        true => UsageError(format!("{m}; use --augment none")),
        false => UsageError(format!(
            "{m}: no distortion of these images can be pictured; picture a data set of {images} images (--data)"
        )),
    }
}

/// Images with a side this long or longer are not distorted: resampling
/// needs every pixel coordinate exact in `f32` (below 2^24) and every
/// padded index in `i32`.
pub const MAX_SIDE: usize = 1 << 24;

/// Distorts images of one size as an [`Augment`] says; shared by every
/// thread of the pool (its per-image scratch is per thread).
#[derive(Clone, Debug)]
pub struct Augmenter {
    aug: Augment,
    rows: usize,
    cols: usize,
    seed: u64,
    /// The smoothing as two Toeplitz matrices (elastic only): along rows,
    /// `gw (w, wp)`, `gw[x][x'] = g(x − x')` for `x' < w` and 0 in the
    /// padding columns; along columns, scaled by `α`, `gh (h, h)`,
    /// `gh[y][y'] = α·g(y − y')`. Zero outside the image is what cutting
    /// the matrices at the image's edge means.
    gw: Vec<f32>,
    gh: Vec<f32>,
    /// Row width of the smoothed fields: `w`, or (elastic) `w` rounded up
    /// to the AVX-512 kernel's 32-column tile when that adds at most a
    /// quarter (28 → 32). The first smoothing product is then one whole
    /// AVX-512 tile wide instead of running the AVX2 kernel over 28
    /// columns; the padding columns hold zeros and no pixel reads them, and
    /// every field value keeps its bits (both kernels round alike).
    wp: usize,
}

/// Images whose elastic fields are smoothed together, by two GEMMs.
const CHUNK: usize = 32;

thread_local! {
    /// A chunk's fields and one padded source image, grown once per thread
    /// (see [`Augmenter::warm`]) and reused for every image after that.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// The smoothed fields' row width for `cols`-pixel rows ([`Augmenter`]'s
/// `wp`): rounded up to the 32-column tile when that adds at most a quarter.
fn padded_width(aug: Augment, cols: usize) -> usize {
    let tile = cols.next_multiple_of(32);
    match aug {
        Augment::Elastic { .. } if 4 * (tile - cols) <= cols => tile,
        _ => cols,
    }
}

/// [`Augmenter::scratch_len`] for `aug` on `rows × cols` images.
fn scratch_floats(aug: Augment, rows: usize, cols: usize) -> usize {
    let images = match aug {
        Augment::Elastic { .. } => CHUNK,
        _ => 1,
    };
    2 * 2 * images * rows * padded_width(aug, cols) + (rows + 3) * (cols + 3)
}

impl Augment {
    /// Bytes an [`Augmenter`] for `rows × cols` images holds when it runs on
    /// `threads` threads: elastic's two smoothing matrices, whose size grows
    /// with the square of each side (`cols · wp + rows²` floats), and each
    /// thread's scratch. Counted before anything is allocated, so that a
    /// distortion that would not fit is refused with its size rather than
    /// aborting the process.
    pub fn bytes(&self, rows: usize, cols: usize, threads: usize) -> u64 {
        if *self == Augment::None {
            return 0;
        }
        let smoothing = match self {
            Augment::Elastic { .. } => {
                cols as u64 * padded_width(*self, cols) as u64 + rows as u64 * rows as u64
            }
            _ => 0,
        };
        let scratch = threads as u64 * scratch_floats(*self, rows, cols) as u64;
        4 * (smoothing + scratch)
    }
}

impl Augmenter {
    /// `aug` for `rows × cols` images; `None` for [`Augment::None`].
    pub fn new(aug: Augment, rows: usize, cols: usize, seed: u64) -> Option<Self> {
        let wp = padded_width(aug, cols);
        let (gw, gh) = match aug {
            Augment::None => return None,
            Augment::Elastic { sigma, alpha } => {
                let g = gaussian(sigma);
                (toeplitz(&g, cols, wp, 1.0), toeplitz(&g, rows, rows, alpha))
            }
            _ => (Vec::new(), Vec::new()),
        };
        Some(Augmenter {
            aug,
            rows,
            cols,
            seed,
            gw,
            gh,
            wp,
        })
    }

    /// Scratch floats: two `(h, CHUNK, 2, wp)` field buffers (elastic; one
    /// image's `(2, h, w)` for the others), and the source padded by one
    /// pixel left/top and two right/bottom.
    fn scratch_len(&self) -> usize {
        scratch_floats(self.aug, self.rows, self.cols)
    }

    /// Grow the scratch of every thread of the current rayon pool, so that
    /// no step allocates it later (call inside the pool).
    pub fn warm(&self) {
        let len = self.scratch_len();
        rayon::broadcast(|_| {
            SCRATCH.with(|s| {
                let mut s = s.borrow_mut();
                if s.len() < len {
                    s.resize(len, 0.0);
                }
            })
        });
    }

    /// Gather images `idx` of `data`, distorted as for `epoch`, into `x`
    /// (`(idx.len(), D)`, scaled to `[0, 1]`) and labels into `y`.
    pub fn gather(&self, data: &Dataset, idx: &[u32], epoch: usize, x: &mut [f32], y: &mut [u8]) {
        let d = self.rows * self.cols;
        for (yy, &i) in y.iter_mut().zip(idx) {
            *yy = data.label(i as usize);
        }
        for (c, out) in idx.chunks(CHUNK).zip(x.chunks_mut(CHUNK * d)) {
            let images = c.iter().map(|&i| (data.image(i as usize), i));
            self.distort_many(images, epoch, out);
        }
    }

    /// Image `index` (raw bytes `src`) as distorted in `epoch`, into `out`
    /// (`rows × cols`, scaled to `[0, 1]`).
    pub fn distort(&self, src: &[u8], epoch: usize, index: u32, out: &mut [f32]) {
        self.distort_many([(src, index)].into_iter(), epoch, out);
    }

    /// Up to [`CHUNK`] images `(raw bytes, index)`, distorted as in `epoch`,
    /// into the rows of `out`.
    fn distort_many<'d>(
        &self,
        images: impl ExactSizeIterator<Item = (&'d [u8], u32)> + Clone,
        epoch: usize,
        out: &mut [f32],
    ) {
        let (h, w) = (self.rows, self.cols);
        let (d, n) = (h * w, images.len());
        assert!(n <= CHUNK && out.len() >= n * d);
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            if s.len() < self.scratch_len() {
                s.resize(self.scratch_len(), 0.0);
            }
            let (fields, padded) = s.split_at_mut(self.scratch_len() - (h + 3) * (w + 3));
            let (f, g) = fields.split_at_mut(fields.len() / 2);
            // (dx, dy) of image c at pixel (y, x): f[((y·n + c)·2 + k)·wp + x]
            // for elastic, f[k·d + y·w + x] for the others.
            let wp = self.wp;
            let rs = match self.aug {
                Augment::Elastic { .. } => {
                    self.elastic_fields(images.clone(), epoch, f, g);
                    n * 2 * wp
                }
                _ => w,
            };
            for (c, ((src, index), out)) in images.zip(out.chunks_exact_mut(d)).enumerate() {
                let (dx, dy) = match self.aug {
                    Augment::Elastic { .. } => (&f[2 * c * wp..], &f[(2 * c + 1) * wp..]),
                    _ => {
                        let (dx, dy) = f[..2 * d].split_at_mut(d);
                        self.analytic_field(image_key(self.seed, epoch, index), dx, dy);
                        (&f[..d], &f[d..2 * d])
                    }
                };
                resample(src, dx, dy, rs, padded, h, w, out);
            }
        })
    }

    /// Simard's fields for `n` images into `f`, laid out `(h, n, 2, wp)`:
    /// uniform noise in `[−1, 1]`, then `α·G_h · (noise · G_w)` by two
    /// GEMMs over all `n` images at once (`g` holds the middle product).
    fn elastic_fields<'d>(
        &self,
        images: impl ExactSizeIterator<Item = (&'d [u8], u32)>,
        epoch: usize,
        f: &mut [f32],
        g: &mut [f32],
    ) {
        let (h, w) = (self.rows, self.cols);
        let n = images.len();
        for (c, (_, index)) in images.enumerate() {
            let key = image_key(self.seed, epoch, index);
            for (k, stream) in [key as u32, (key >> 32) as u32].into_iter().enumerate() {
                for y in 0..h {
                    noise(stream, y * w, &mut f[((y * n + c) * 2 + k) * w..][..w]);
                }
            }
        }
        let (m, wp) = (h * n * 2, self.wp);
        // Along rows: g (h·n·2, wp) = noise (h·n·2, w) · G_w (w, wp) (G_w is
        // symmetric where it is not padding).
        gemm(
            MatRef::new(&f[..m * w], m, w),
            MatRef::new(&self.gw, w, wp),
            Beta::Overwrite,
            MatMut::new(&mut g[..m * wp], m, wp),
        );
        // Along columns: f (h, n·2·wp) = α·G_h (h, h) · g (h, n·2·wp).
        gemm(
            MatRef::new(&self.gh, h, h),
            MatRef::new(&g[..m * wp], h, n * 2 * wp),
            Beta::Overwrite,
            MatMut::new(&mut f[..m * wp], h, n * 2 * wp),
        );
    }

    /// The whole-image fields of shift and affine, for the image with `key`.
    fn analytic_field(&self, key: u64, dx: &mut [f32], dy: &mut [f32]) {
        let (h, w) = (self.rows, self.cols);
        match self.aug {
            Augment::None | Augment::Elastic { .. } => unreachable!("not an analytic field"),
            Augment::Shift(n) => {
                // Content moves by (tx, ty): output (x, y) reads (x − tx, y − ty).
                let span = 2 * n as u64 + 1;
                let tx = (mix(key) % span) as f32 - n as f32;
                let ty = (mix(key ^ 0x5151) % span) as f32 - n as f32;
                dx.fill(-tx);
                dy.fill(-ty);
            }
            Augment::Affine => {
                let u = |salt: u64| (mix(key ^ salt) >> 40) as f32 / (1 << 24) as f32 * 2.0 - 1.0;
                let theta = u(1) * AFFINE_ROTATE_DEG.to_radians();
                let scale = 1.0 + u(2) * AFFINE_SCALE;
                let shear = u(3) * AFFINE_SHEAR;
                // Source point = c + A·(p − c), A = R(θ)·[[1, shear], [0, 1]] / scale.
                let (sin, cos) = theta.sin_cos();
                let a = [
                    cos / scale,
                    (cos * shear - sin) / scale,
                    sin / scale,
                    (sin * shear + cos) / scale,
                ];
                let (cx, cy) = ((w as f32 - 1.0) / 2.0, (h as f32 - 1.0) / 2.0);
                for yy in 0..h {
                    let py = yy as f32 - cy;
                    for xx in 0..w {
                        let px = xx as f32 - cx;
                        dx[yy * w + xx] = cx + a[0] * px + a[1] * py - xx as f32;
                        dy[yy * w + xx] = cy + a[2] * px + a[3] * py - yy as f32;
                    }
                }
            }
        }
    }
}

/// Uniform noise in `[−1, 1]` for pixels `first..first + out.len()` of the
/// stream `key`: `(2u + 1)·2⁻²⁴ − 1` for a 24-bit `u`. Below 0 that is an
/// odd multiple of 2⁻²⁴; from 0 up, `2u + 1` has 25 bits and its conversion
/// to f32 rounds it to a multiple of 4 (ties to even), so the draws are
/// multiples of 2⁻²², two `u` each, with 0 and 1 once each. Over all `u`
/// the mean is still exactly 0: the rounding goes down and up in turn.
fn noise(key: u32, first: usize, out: &mut [f32]) {
    // The hash's 32-bit multiplies vectorise with AVX2 (not with SSE2).
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked on the line above.
        return unsafe { noise_avx2(key, first, out) };
    }
    noise_impl(key, first, out)
}

/// The portable loop, compiled for AVX2.
///
/// # Safety
/// The CPU must have AVX2 (`is_x86_feature_detected!("avx2")`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn noise_avx2(key: u32, first: usize, out: &mut [f32]) {
    noise_impl(key, first, out)
}

#[inline(always)]
fn noise_impl(key: u32, first: usize, out: &mut [f32]) {
    for (j, v) in out.iter_mut().enumerate() {
        *v = (2 * unit_bits(key, first + j) + 1) as f32 * (1.0 / (1 << 24) as f32) - 1.0;
    }
}

/// The `n × cols` matrix `scale·g(|i − j|)` for `j < n` (zero past the
/// kernel's radius, and in the padding columns `j ≥ n`).
fn toeplitz(g: &[f32], n: usize, cols: usize, scale: f32) -> Vec<f32> {
    let mut t = vec![0.0; n * cols];
    for i in 0..n {
        for j in 0..n {
            if let Some(&v) = g.get(i.abs_diff(j)) {
                t[i * cols + j] = scale * v;
            }
        }
    }
    t
}

/// The 64-bit key of image `index` in `epoch`: every random number of its
/// distortion is a hash of this and the pixel.
fn image_key(seed: u64, epoch: usize, index: u32) -> u64 {
    mix(mix(seed ^ 0x4155_474d_454e_5421) ^ ((epoch as u64) << 32 | index as u64))
}

/// The sampled Gaussian of `sigma` for offsets `0..=⌊4σ + ½⌋`, normalised
/// so that the two-sided kernel sums to 1.
pub fn gaussian(sigma: f32) -> Vec<f32> {
    let radius = (4.0 * sigma as f64 + 0.5) as usize;
    let g: Vec<f64> = (0..=radius)
        .map(|k| (-((k * k) as f64) / (2.0 * (sigma as f64).powi(2))).exp())
        .collect();
    let sum = g[0] + 2.0 * g[1..].iter().sum::<f64>();
    g.iter().map(|v| (v / sum) as f32).collect()
}

/// `out[y][x]` = the source at `(x + dx, y + dy)`, bilinear, zero outside;
/// `dx` and `dy` have row stride `rs`.
///
/// The source goes into `padded` (`(h + 3) × (w + 3)`, scaled to `[0, 1]`,
/// origin at `(1, 1)`, zero border); coordinates are clamped to `[−1, w]` ×
/// `[−1, h]`, where every sample is either a true one or reads only the
/// zero border, so no pixel read needs a bounds test of its own. The AVX2
/// path and [`bilinear`] give the same bits for finite displacements (the
/// only kind the fields make); for a NaN one the AVX2 clamp picks the zero
/// border where the scalar one returns NaN.
#[allow(clippy::too_many_arguments)]
fn resample(
    src: &[u8],
    dx: &[f32],
    dy: &[f32],
    rs: usize,
    padded: &mut [f32],
    h: usize,
    w: usize,
    out: &mut [f32],
) {
    let pw = w + 3;
    assert!(src.len() == h * w && out.len() >= h * w && padded.len() >= (h + 3) * pw);
    // What `resample_avx2`'s index arithmetic needs (see `MAX_SIDE`).
    assert!(h < MAX_SIDE && w < MAX_SIDE && (h + 3) * pw <= i32::MAX as usize);
    // Checked: a wrapped product would pass for a short field.
    assert!(h >= 1 && w >= 1);
    let last = (h - 1)
        .checked_mul(rs)
        .and_then(|r| r.checked_add(w - 1))
        .expect("field stride overflows");
    assert!(dx.len() > last && dy.len() > last);
    padded.fill(0.0);
    for (y, row) in src.chunks_exact(w).enumerate() {
        crate::data::to_unit(row, &mut padded[(y + 1) * pw + 1..][..w]);
    }
    let mut x0 = 0;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked on the line above; the
        // slice lengths were asserted above.
        x0 = unsafe { resample_avx2(dx, dy, rs, padded, h, w, out) };
    }
    for y in 0..h {
        for x in x0..w {
            out[y * w + x] = bilinear(padded, pw, h, w, x, y, dx[y * rs + x], dy[y * rs + x]);
        }
    }
}

/// One output pixel of [`resample`]: the arithmetic both paths share.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn bilinear(p: &[f32], pw: usize, h: usize, w: usize, x: usize, y: usize, dx: f32, dy: f32) -> f32 {
    let sx = (x as f32 + dx).clamp(-1.0, w as f32);
    let sy = (y as f32 + dy).clamp(-1.0, h as f32);
    // sx + 1 ≥ 0, so truncation is floor (and needs no libm call).
    let (x0, y0) = ((sx + 1.0) as usize, (sy + 1.0) as usize);
    let (fx, fy) = (sx + 1.0 - x0 as f32, sy + 1.0 - y0 as f32);
    // x0 ∈ [0, w + 1], y0 ∈ [0, h + 1] in padded coordinates.
    let at = y0 * pw + x0;
    let (a, b) = (p[at], p[at + 1]);
    let (c, e) = (p[at + pw], p[at + pw + 1]);
    let top = a + fx * (b - a);
    let bottom = c + fx * (e - c);
    top + fy * (bottom - top)
}

/// The pairs `(u_j, v_j)` of pixels `j = 0..8`, held as `[0 1 4 5]` in
/// `v0` and `[2 3 6 7]` in `v1`, as the vectors `(u_0..u_7, v_0..v_7)`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn split_pairs(
    v0: std::arch::x86_64::__m256i,
    v1: std::arch::x86_64::__m256i,
) -> (std::arch::x86_64::__m256, std::arch::x86_64::__m256) {
    use std::arch::x86_64::*;
    let (v0, v1) = (_mm256_castsi256_ps(v0), _mm256_castsi256_ps(v1));
    // Per 128-bit lane: [v0.0 v0.2 v1.0 v1.2] and [v0.1 v0.3 v1.1 v1.3].
    (
        _mm256_shuffle_ps::<0b10_00_10_00>(v0, v1),
        _mm256_shuffle_ps::<0b11_01_11_01>(v0, v1),
    )
}

/// [`resample`]'s pixels eight at a time, with AVX2 but no gathers (four
/// gathers per eight pixels took 5–6 µs a 28×28 image on the 2-core Xeon,
/// these 8-byte loads 1.8–2.7 µs); returns the
/// first column left to the scalar loop (`w` when none is: for `w ≥ 8` the
/// last eight columns are done as one vector, overlapping the one before,
/// which writes the same values twice). The same operations, in the same
/// order, as [`bilinear`].
///
/// # Safety
/// AVX2 must be available; `padded`, `dx`, `dy` and `out` as [`resample`]
/// asserts.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn resample_avx2(
    dx: &[f32],
    dy: &[f32],
    rs: usize,
    padded: &[f32],
    h: usize,
    w: usize,
    out: &mut [f32],
) -> usize {
    use std::arch::x86_64::*;
    let pw = w + 3;
    if w < 8 {
        return 0;
    }
    let (lo, one) = (_mm256_set1_ps(-1.0), _mm256_set1_ps(1.0));
    let (hx, hy) = (_mm256_set1_ps(w as f32), _mm256_set1_ps(h as f32));
    let pwv = _mm256_set1_epi32(pw as i32);
    let lane = _mm256_setr_ps(0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0);
    let p = padded.as_ptr();
    for y in 0..h {
        let yv = _mm256_set1_ps(y as f32);
        for x in (0..w - 7).step_by(8).chain(std::iter::once(w - 8)) {
            // SAFETY: y·rs + x + 7 < dx.len(), dy.len() and y·w + x + 7 <
            // out.len() (asserted by the caller); every float read is
            // y0·pw + x0 (+1, +pw, +pw + 1) with x0 ≤ w + 1, y0 ≤ h + 1 (w
            // and h below 2^24 are exact in f32, asserted by the caller), so
            // at most (h + 2)·pw + w + 2 = (h + 3)·pw − 1, which fits in i32
            // (asserted too): inside `padded`.
            unsafe {
                let xv = _mm256_add_ps(_mm256_set1_ps(x as f32), lane);
                let ddx = _mm256_loadu_ps(dx.as_ptr().add(y * rs + x));
                let ddy = _mm256_loadu_ps(dy.as_ptr().add(y * rs + x));
                let sx = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(xv, ddx), lo), hx);
                let sy = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(yv, ddy), lo), hy);
                let (sx1, sy1) = (_mm256_add_ps(sx, one), _mm256_add_ps(sy, one));
                let (xi, yi) = (_mm256_cvttps_epi32(sx1), _mm256_cvttps_epi32(sy1));
                let fx = _mm256_sub_ps(sx1, _mm256_cvtepi32_ps(xi));
                let fy = _mm256_sub_ps(sy1, _mm256_cvtepi32_ps(yi));
                let at = _mm256_add_epi32(_mm256_mullo_epi32(yi, pwv), xi);
                let mut idx = [0i32; 8];
                _mm256_storeu_si256(idx.as_mut_ptr().cast(), at);
                // Each pixel's two horizontal neighbours are adjacent floats:
                // one 8-byte load per row instead of two gathered lanes.
                let pair = |j: usize, row: usize| -> i64 {
                    p.add(idx[j] as usize + row).cast::<i64>().read_unaligned()
                };
                let (a, b) = split_pairs(
                    _mm256_setr_epi64x(pair(0, 0), pair(1, 0), pair(4, 0), pair(5, 0)),
                    _mm256_setr_epi64x(pair(2, 0), pair(3, 0), pair(6, 0), pair(7, 0)),
                );
                let (c, e) = split_pairs(
                    _mm256_setr_epi64x(pair(0, pw), pair(1, pw), pair(4, pw), pair(5, pw)),
                    _mm256_setr_epi64x(pair(2, pw), pair(3, pw), pair(6, pw), pair(7, pw)),
                );
                let top = _mm256_add_ps(a, _mm256_mul_ps(fx, _mm256_sub_ps(b, a)));
                let bottom = _mm256_add_ps(c, _mm256_mul_ps(fx, _mm256_sub_ps(e, c)));
                let v = _mm256_add_ps(top, _mm256_mul_ps(fy, _mm256_sub_ps(bottom, top)));
                _mm256_storeu_ps(out.as_mut_ptr().add(y * w + x), v);
            }
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--augment shift:N` moves each image by -N..=N pixels along each
    /// axis, every amount in both directions (a sign or offset slip would
    /// shift every image one way).
    #[test]
    fn shifts_cover_minus_n_to_n_on_each_axis() {
        use std::collections::BTreeSet;
        let (h, w, n) = (6, 5, 2);
        let a = Augmenter::new(Augment::Shift(n), h, w, 7).unwrap();
        let (mut dx, mut dy) = (vec![0.0; h * w], vec![0.0; h * w]);
        let (mut xs, mut ys) = (BTreeSet::new(), BTreeSet::new());
        for key in 0..400u64 {
            a.analytic_field(key, &mut dx, &mut dy);
            assert!(dx.iter().all(|&v| v == dx[0]) && dy.iter().all(|&v| v == dy[0]));
            xs.insert(dx[0] as i32);
            ys.insert(dy[0] as i32);
        }
        let all: BTreeSet<i32> = (-(n as i32)..=n as i32).collect();
        assert_eq!((xs, ys), (all.clone(), all));
    }

    /// Each distortion refuses images of each of `sizes`, saying `says`:
    /// with `--augment none` as the way on where the caller can do without
    /// one, else with a data set of `images` images (`larger`, `smaller`).
    fn refused_for_size(sizes: &[(usize, usize)], says: &str, images: &str) {
        let elastic = Augment::Elastic {
            sigma: ELASTIC_SIGMA,
            alpha: ELASTIC_ALPHA,
        };
        let fix = format!(
            ": no distortion of these images can be pictured; picture a data set of {images} images (--data)"
        );
        for aug in [Augment::Shift(1), Augment::Affine, elastic] {
            for &(rows, cols) in sizes {
                let e = aug.check_size(rows, cols, true).unwrap_err().0;
                assert!(e.contains(says), "{e}");
                assert!(e.ends_with("; use --augment none"), "{e}");
                let e = aug.check_size(rows, cols, false).unwrap_err().0;
                assert!(e.ends_with(&fix), "{e}");
            }
            assert!(aug.check_size(2, 2, true).is_ok(), "{}", aug.name());
        }
    }

    /// Every distortion of images one pixel high or wide is refused, with
    /// `none` as the way on where the caller can do without one; two
    /// pixels are enough.
    #[test]
    fn no_distortion_of_images_with_a_1_pixel_side() {
        refused_for_size(
            &[(1, 1), (1, 1000), (28, 1), (1, 1_000_000)],
            "push most of a 1-pixel side out",
            "larger",
        );
        assert!(Augment::None.check_size(1, 1, true).is_ok());
    }

    /// Images too large to distort are refused with smaller ones as the
    /// way on (the advice once said larger, as for a 1-pixel side).
    #[test]
    fn no_distortion_of_images_past_the_largest_side() {
        refused_for_size(
            &[(2, MAX_SIDE), (MAX_SIDE, 2), (46_341, 46_341)],
            "more than distortions handle",
            "smaller",
        );
    }

    fn digit(h: usize, w: usize) -> Vec<u8> {
        (0..h * w)
            .map(|i| (((i / w) * 7 + (i % w) * 13) % 256) as u8)
            .collect()
    }

    #[test]
    fn parse_names_and_errors() {
        for s in ["none", "elastic", "shift:2", "affine"] {
            assert_eq!(Augment::parse(s, 4.0, 34.0).unwrap().name(), s);
        }
        for (s, says) in [
            ("wobble", "unknown augmentation"),
            ("shift", "needs a size"),
            ("shift:0", "≥ 1"),
            ("shift:-1", "≥ 1"),
        ] {
            let e = Augment::parse(s, 4.0, 34.0).unwrap_err().0;
            assert!(
                e.starts_with(&format!("--augment {s}: ")) && e.contains(says),
                "{e}"
            );
        }
        let e = Augment::parse("elastic", -1.0, 34.0).unwrap_err().0;
        assert!(e.starts_with("--elastic-sigma -1: "), "{e}");
        let e = Augment::parse("elastic", 4.0, f32::NAN).unwrap_err().0;
        assert!(e.starts_with("--elastic-alpha NaN: "), "{e}");
        let e = Augment::Shift(8).check_size(8, 8, true).unwrap_err().0;
        assert!(e.contains("only 8 × 8 pixels"), "{e}");
        assert!(Augment::Shift(7).check_size(8, 8, true).is_ok());
        // A side past 2^24 is not exact in f32: refused, not resampled.
        let e = Augment::Affine
            .check_size(2, MAX_SIDE + 6, true)
            .unwrap_err()
            .0;
        assert!(e.contains("more than distortions handle"), "{e}");
        assert!(Augment::Affine.check_size(2, MAX_SIDE - 1, true).is_ok());
    }

    #[test]
    fn gaussian_is_normalised_and_matches_the_formula() {
        let g = gaussian(4.0);
        assert_eq!(g.len(), 17); // radius ⌊4·4 + ½⌋ = 16, like scipy
        let sum: f64 = g[0] as f64 + 2.0 * g[1..].iter().map(|&v| v as f64).sum::<f64>();
        assert!((sum - 1.0).abs() < 1e-6);
        for k in 1..g.len() {
            let want = (-(k as f64).powi(2) / 32.0).exp();
            assert!(((g[k] / g[0]) as f64 - want).abs() < 1e-6);
        }
        // The radius rounds 4σ to the nearest whole pixel, as scipy's
        // `int(4σ + 0.5)` does: 3.6 → 4, 5.6 → 6, 4.4 → 4.
        for (sigma, taps) in [(0.9, 5), (1.4, 7), (1.1, 5)] {
            assert_eq!(gaussian(sigma).len(), taps, "σ {sigma}");
        }
    }

    /// A thread's scratch is shared by every augmenter that runs on it: a
    /// shift after a chunk of elastic fields must still see a zero border
    /// around its image, giving what it gives on a fresh thread.
    #[test]
    fn scratch_left_by_another_augmenter_does_not_leak_in() {
        let (h, w) = (28, 28);
        let src = digit(h, w);
        let shift = Augmenter::new(Augment::Shift(3), h, w, 7).unwrap();
        let el = Augment::Elastic {
            sigma: 4.0,
            alpha: 34.0,
        };
        let elastic = Augmenter::new(el, h, w, 7).unwrap();
        let shifted = |after_elastic: bool| {
            std::thread::scope(|s| {
                s.spawn(|| {
                    if after_elastic {
                        let images = (0..CHUNK as u32).map(|i| (&src[..], i));
                        let mut out = vec![0.0; CHUNK * h * w];
                        elastic.distort_many(images, 1, &mut out);
                    }
                    (0..8u32)
                        .map(|index| {
                            let mut out = vec![0.0; h * w];
                            shift.distort(&src, 1, index, &mut out);
                            out
                        })
                        .collect::<Vec<_>>()
                })
                .join()
                .unwrap()
            })
        };
        assert_eq!(shifted(true), shifted(false));
    }

    #[test]
    fn shift_moves_the_image_by_whole_pixels() {
        let (h, w) = (10, 12);
        let src = digit(h, w);
        let a = Augmenter::new(Augment::Shift(3), h, w, 7).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for index in 0..600 {
            let mut out = vec![0.0; h * w];
            a.distort(&src, 1, index, &mut out);
            // Find (tx, ty) from the output and check every pixel against it.
            let (tx, ty) = (-3..=3)
                .flat_map(|tx| (-3..=3).map(move |ty| (tx, ty)))
                .find(|&(tx, ty)| {
                    (0..h as isize).all(|y| {
                        (0..w as isize).all(|x| {
                            let (sx, sy) = (x - tx, y - ty);
                            let want =
                                if (0..w as isize).contains(&sx) && (0..h as isize).contains(&sy) {
                                    src[(sy * w as isize + sx) as usize] as f32 * (1.0 / 255.0)
                                } else {
                                    0.0
                                };
                            out[(y * w as isize + x) as usize] == want
                        })
                    })
                })
                .expect("a whole-pixel shift within ±3");
            seen.insert((tx, ty));
        }
        // Each axis drawn on its own, over the whole range (±3 included).
        assert_eq!(seen.len(), 49, "shifts drawn: {seen:?}");
    }

    #[test]
    fn elastic_is_a_function_of_seed_epoch_and_index() {
        let (h, w) = (28, 28);
        let src = digit(h, w);
        let el = Augment::Elastic {
            sigma: 4.0,
            alpha: 34.0,
        };
        let a = Augmenter::new(el, h, w, 1).unwrap();
        let run = |a: &Augmenter, epoch, index| {
            let mut out = vec![0.0; h * w];
            a.distort(&src, epoch, index, &mut out);
            out
        };
        let first = run(&a, 1, 5);
        assert_eq!(first, run(&a, 1, 5));
        // On another thread, the same bits.
        let again = std::thread::scope(|s| s.spawn(|| run(&a, 1, 5)).join().unwrap());
        assert_eq!(first, again);
        assert_ne!(first, run(&a, 2, 5));
        assert_ne!(first, run(&a, 1, 6));
        assert_ne!(first, run(&Augmenter::new(el, h, w, 2).unwrap(), 1, 5));
        // α = 0: no displacement, the plain scaled image.
        let none = Augmenter::new(
            Augment::Elastic {
                sigma: 4.0,
                alpha: 0.0,
            },
            h,
            w,
            1,
        )
        .unwrap();
        let plain: Vec<f32> = src.iter().map(|&v| v as f32 * (1.0 / 255.0)).collect();
        assert_eq!(run(&none, 1, 5), plain);
    }

    /// σ = 4, α = 34 on 28 × 28 moves pixels by about a pixel or two on
    /// average (the paper's "elastic" regime), and never by the whole
    /// image; and the GEMM smoothing is the 2-D Gaussian sum, image by image.
    #[test]
    fn elastic_fields_are_smoothed_noise_of_a_few_pixels() {
        let (h, w, n) = (28, 28, 5);
        let aug = Augment::Elastic {
            sigma: 4.0,
            alpha: 34.0,
        };
        let a = Augmenter::new(aug, h, w, 3).unwrap();
        let src = digit(h, w);
        let (mut sum, mut max, mut count) = (0f64, 0f32, 0);
        for round in 0..40u32 {
            let images = (0..n as u32).map(|c| (&src[..], round * 8 + c));
            let wp = a.wp;
            assert_eq!(wp, 32, "28 columns are padded to one AVX-512 tile");
            let mut f = vec![f32::NAN; h * n * 2 * wp];
            let mut g = f.clone();
            a.elastic_fields(images, 1, &mut f, &mut g);
            for (i, v) in f.chunks_exact(wp).enumerate() {
                let (y, c, k) = (i / (2 * n), i / 2 % n, i % 2);
                assert!(v[w..].iter().all(|&p| p == 0.0), "padding columns");
                for (x, &v) in v[..w].iter().enumerate() {
                    let other = f[((y * n + c) * 2 + 1 - k) * wp + x];
                    if k == 0 {
                        let m = (v * v + other * other).sqrt();
                        (sum, max, count) = (sum + m as f64, max.max(m), count + 1);
                    }
                }
            }
            if round == 0 {
                assert_direct_sum(&a, &f, 4.0, 34.0, n);
            }
        }
        let mean = sum / count as f64;
        assert!((0.5..3.0).contains(&mean), "mean displacement {mean}");
        assert!(max < 10.0, "max displacement {max}");
    }

    /// The fields `f` of the round-0 images (the image of index 2 is
    /// column 2 of `n`) hold α times the direct f64 sum of the sampled
    /// Gaussian of `sigma` over that image's noise, in both fields, at the
    /// corners, the centre and the edges.
    fn assert_direct_sum(a: &Augmenter, f: &[f32], sigma: f32, alpha: f64, n: usize) {
        let (h, w, wp) = (a.rows, a.cols, a.wp);
        // The kernel in f64 from its formula (scipy's radius ⌊4σ + ½⌋,
        // normalised to sum 1), not from `gaussian`.
        let s2 = 2.0 * (sigma as f64).powi(2);
        let r = (4.0 * sigma as f64 + 0.5) as isize;
        let sum: f64 = (-r..=r).map(|k| (-((k * k) as f64) / s2).exp()).sum();
        let g = |k: isize| (-((k * k) as f64) / s2).exp() / sum;
        let key = image_key(3, 1, 2);
        // Both fields: dx from the key's low half, dy from its high half.
        for (k, stream) in [key as u32, (key >> 32) as u32].into_iter().enumerate() {
            let mut raw = vec![0.0; h * w];
            noise(stream, 0, &mut raw);
            for (y, x) in [(0, 0), (13, 14), (27, 3), (5, 27), (27, 27)] {
                let mut want = 0f64;
                for yy in (y as isize - r).max(0)..=(y as isize + r).min(h as isize - 1) {
                    for xx in (x as isize - r).max(0)..=(x as isize + r).min(w as isize - 1) {
                        let weight = g(yy - y as isize) * g(xx - x as isize);
                        want += weight * raw[yy as usize * w + xx as usize] as f64;
                    }
                }
                let got = f[((y * n + 2) * 2 + k) * wp + x] as f64;
                assert!(
                    (got - alpha * want).abs() < 1e-4,
                    "σ {sigma}, field {k} ({y}, {x}): {got} vs {}",
                    alpha * want
                );
            }
        }
    }

    /// `--elastic-sigma` and `--elastic-alpha` reach the fields.
    #[test]
    fn elastic_fields_use_the_given_sigma_and_alpha() {
        let (h, w, n) = (28, 28, 5);
        let src = digit(h, w);
        for (sigma, alpha) in [(2.0, 34.0), (6.0, 20.0)] {
            let a = Augmenter::new(Augment::Elastic { sigma, alpha }, h, w, 3).unwrap();
            let images = (0..n as u32).map(|c| (&src[..], c));
            let mut f = vec![f32::NAN; h * n * 2 * a.wp];
            let mut g = f.clone();
            a.elastic_fields(images, 1, &mut f, &mut g);
            assert_direct_sum(&a, &f, sigma, alpha as f64, n);
        }
    }

    /// The AVX2 resampler gives the scalar one's bits, at odd widths too.
    #[test]
    fn resample_paths_agree() {
        for (h, w) in [(28, 28), (7, 19), (3, 8), (5, 5)] {
            let src = digit(h, w);
            let (dx, dy): (Vec<f32>, Vec<f32>) = (0..h * w)
                .map(|i| {
                    (
                        ((i * 7919) % 23) as f32 * 0.37 - 4.0,
                        ((i * 104729) % 19) as f32 * 0.41 - 3.9,
                    )
                })
                .unzip();
            let mut padded = vec![0.0; (h + 3) * (w + 3)];
            let mut fast = vec![0.0; h * w];
            resample(&src, &dx, &dy, w, &mut padded, h, w, &mut fast);
            let pw = w + 3;
            for y in 0..h {
                for x in 0..w {
                    let want = bilinear(&padded, pw, h, w, x, y, dx[y * w + x], dy[y * w + x]);
                    assert_eq!(
                        fast[y * w + x].to_bits(),
                        want.to_bits(),
                        "{h}x{w} ({y}, {x})"
                    );
                }
            }
            assert!(fast.iter().any(|&v| v > 0.0));
        }
    }

    #[test]
    fn affine_keeps_the_centre_near_its_place() {
        let (h, w) = (29, 29);
        let mut src = vec![0u8; h * w];
        src[14 * w + 14] = 255; // one bright pixel at the centre
        let a = Augmenter::new(Augment::Affine, h, w, 1).unwrap();
        for index in 0..20 {
            let mut out = vec![0.0; h * w];
            a.distort(&src, 1, index, &mut out);
            assert!(out[14 * w + 14] > 0.5, "centre moved in image {index}");
        }
    }

    /// A point 10 pixels above the centre stays within the bounds' reach:
    /// ±15° moves it at most 2.6 pixels, scale ±15 % 1.8, shear 0.2 2.4.
    #[test]
    fn affine_moves_points_by_a_few_pixels() {
        let (h, w) = (29, 29);
        let mut src = vec![0u8; h * w];
        src[4 * w + 14] = 255;
        let a = Augmenter::new(Augment::Affine, h, w, 1).unwrap();
        let mut farthest = 0f32;
        for index in 0..100 {
            let mut out = vec![0.0; h * w];
            a.distort(&src, 1, index, &mut out);
            let (i, &v) = out
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap();
            assert!(v > 0.0, "the point left image {index}");
            let (y, x) = ((i / w) as f32, (i % w) as f32);
            farthest = farthest.max(((y - 4.0).powi(2) + (x - 14.0).powi(2)).sqrt());
        }
        assert!(
            (1.0..=7.0).contains(&farthest),
            "farthest move {farthest} px"
        );
    }

    /// The memory check's figure for a distortion, [`Augment::bytes`], is
    /// what an [`Augmenter`] holds: its smoothing matrices and each thread's
    /// scratch, for square and oblong images (elastic's matrices grow with
    /// the square of each side, so a slip there misjudges large images).
    #[test]
    fn bytes_is_what_an_augmenter_holds() {
        let elastic = Augment::Elastic {
            sigma: ELASTIC_SIGMA,
            alpha: ELASTIC_ALPHA,
        };
        for aug in [Augment::Shift(2), Augment::Affine, elastic] {
            for (rows, cols) in [(28, 28), (7, 40), (33, 9)] {
                let a = Augmenter::new(aug, rows, cols, 1).unwrap();
                for threads in [1, 3] {
                    let floats = a.gw.len() + a.gh.len() + threads * a.scratch_len();
                    let want = 4 * floats as u64;
                    assert_eq!(
                        aug.bytes(rows, cols, threads),
                        want,
                        "{aug:?} {rows}×{cols}"
                    );
                }
            }
        }
        assert_eq!(Augment::None.bytes(28, 28, 2), 0);
    }

    /// Affine's three draws, read back from its fields, span their whole
    /// documented ranges on both sides: it rotates both ways, both grows
    /// and shrinks, and shears both ways (a slip in the draw's `2u − 1`
    /// would make each one-sided or push it past its bound).
    #[test]
    fn affine_draws_span_both_sides_of_each_bound() {
        let (h, w) = (7, 9);
        let a = Augmenter::new(Augment::Affine, h, w, 3).unwrap();
        let (mut dx, mut dy) = (vec![0.0; h * w], vec![0.0; h * w]);
        let (mut lo, mut hi) = ([f32::MAX; 3], [f32::MIN; 3]);
        let mut draws = Vec::new();
        // The source is c + A·(p − c): a field's steps along x and y are
        // A's columns less the identity.
        let at = |f: &[f32], x: usize, y: usize| f[y * w + x];
        for key in 0..400u64 {
            a.analytic_field(key, &mut dx, &mut dy);
            // The centre pixel of an image of odd sides is the one that no
            // rotation, scale or shear moves: the transform is about the
            // centre, not half a pixel off it.
            assert_eq!((at(&dx, w / 2, h / 2), at(&dy, w / 2, h / 2)), (0.0, 0.0));
            let a00 = at(&dx, 1, 0) - at(&dx, 0, 0) + 1.0;
            let a01 = at(&dx, 0, 1) - at(&dx, 0, 0);
            let a10 = at(&dy, 1, 0) - at(&dy, 0, 0);
            let a11 = at(&dy, 0, 1) - at(&dy, 0, 0) + 1.0;
            // A = R(θ)·[[1, shear], [0, 1]] / scale.
            let theta = a10.atan2(a00).to_degrees();
            let scale = 1.0 / a00.hypot(a10);
            let (sin, cos) = theta.to_radians().sin_cos();
            let shear = (cos * a01 + sin * a11) * scale;
            for (i, v) in [theta, scale - 1.0, shear].into_iter().enumerate() {
                lo[i] = lo[i].min(v);
                hi[i] = hi[i].max(v);
            }
            draws.push([theta, scale - 1.0, shear].map(f64::from));
        }
        // Three draws, not one used thrice: over 400 keys independent
        // draws correlate by about ±0.05.
        let corr = |i: usize, j: usize| {
            let n = draws.len() as f64;
            let mean = |k: usize| draws.iter().map(|d| d[k]).sum::<f64>() / n;
            let (mi, mj) = (mean(i), mean(j));
            let cov = |a: usize, ma: f64, b: usize, mb: f64| {
                draws.iter().map(|d| (d[a] - ma) * (d[b] - mb)).sum::<f64>()
            };
            cov(i, mi, j, mj) / (cov(i, mi, i, mi) * cov(j, mj, j, mj)).sqrt()
        };
        for (i, j) in [(0, 1), (0, 2), (1, 2)] {
            assert!(corr(i, j).abs() < 0.25, "draws {i} and {j}: {}", corr(i, j));
        }
        let bounds = [AFFINE_ROTATE_DEG, AFFINE_SCALE, AFFINE_SHEAR];
        for i in 0..3 {
            let b = bounds[i];
            let slack = 1e-3 * b;
            assert!(
                lo[i] >= -b - slack && hi[i] <= b + slack,
                "draw {i}: {lo:?}..{hi:?}"
            );
            assert!(
                lo[i] < -0.9 * b && hi[i] > 0.9 * b,
                "draw {i}: {lo:?}..{hi:?}"
            );
        }
    }
}
