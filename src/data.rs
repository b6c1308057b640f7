//! Data sets over mapped IDX files, and the minibatch gather.
//!
//! Nothing here copies a data set: images stay `u8` in the map, and a batch
//! is gathered row by row (by shuffled index) into a reused `f32` buffer,
//! scaled to `[0, 1]` on the way.

use std::path::{Path, PathBuf};

use crate::idx::{self, IdxError, IdxFile};

/// Pixels per image (28 × 28): the network's input width `D`.
pub const PIXELS: usize = 784;
/// Number of classes `K`.
pub const CLASSES: usize = 10;

/// The four standard file names, as in the MNIST and Fashion-MNIST archives.
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// Images and their labels, both mapped and validated.
pub struct Dataset {
    images: IdxFile,
    labels: IdxFile,
    len: usize,
}

impl Dataset {
    /// Open an image file and a label file, checking shapes, counts and labels.
    pub fn open(images: &Path, labels: &Path) -> Result<Self, IdxError> {
        let img = IdxFile::open(images, 3)?;
        let lab = IdxFile::open(labels, 1)?;
        let d = img.dims();
        if d[1] != 28 || d[2] != 28 {
            return Err(IdxError::Invalid {
                path: images.to_owned(),
                problem: idx::IdxProblem::BadDims {
                    found: d.to_vec(),
                    want: "[N, 28, 28]".into(),
                },
            });
        }
        let (n_images, n_labels) = (d[0] as usize, lab.dims()[0] as usize);
        if n_images != n_labels {
            return Err(IdxError::CountMismatch {
                images: images.to_owned(),
                n_images,
                labels: labels.to_owned(),
                n_labels,
            });
        }
        if let Some(index) = lab.data().iter().position(|&l| l as usize >= CLASSES) {
            return Err(IdxError::BadLabel {
                path: labels.to_owned(),
                index,
                label: lab.data()[index],
            });
        }
        Ok(Dataset {
            images: img,
            labels: lab,
            len: n_images,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Image `i` as 784 raw bytes.
    #[inline]
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images.data()[i * PIXELS..(i + 1) * PIXELS]
    }

    /// Label `i`, a digit 0–9.
    #[inline]
    pub fn label(&self, i: usize) -> u8 {
        self.labels.data()[i]
    }

    pub fn images_path(&self) -> &Path {
        self.images.path()
    }

    /// Gather images `range` into `x` and `y` on the calling thread.
    pub fn gather_range(&self, range: std::ops::Range<usize>, x: &mut [f32], y: &mut [u8]) {
        let n = range.len();
        let src = &self.images.data()[range.start * PIXELS..range.end * PIXELS];
        to_unit(src, &mut x[..n * PIXELS]);
        y[..n].copy_from_slice(&self.labels.data()[range]);
    }

    /// Gather images `idx` into `x` (`(idx.len(), 784)` row-major, scaled to
    /// `[0, 1]`) and their labels into `y`, on the calling thread: the
    /// trainer calls it per row block from inside its parallel pass.
    ///
    /// Shuffled rows are scattered over the 47 MB file, so each one starts
    /// with a cache miss; asking for the image `PREFETCH_ROWS` ahead while
    /// converting this one overlaps those misses (`cargo bench --bench step
    /// -- gather` times both ways).
    pub fn gather(&self, idx: &[u32], x: &mut [f32], y: &mut [u8]) {
        const PREFETCH_ROWS: usize = 4;
        let b = idx.len();
        assert!(x.len() >= b * PIXELS && y.len() >= b);
        for &i in &idx[..b.min(PREFETCH_ROWS)] {
            prefetch(self.image(i as usize));
        }
        for (r, ((row, yy), &i)) in x
            .chunks_exact_mut(PIXELS)
            .zip(y.iter_mut())
            .zip(idx)
            .enumerate()
        {
            if let Some(&ahead) = idx.get(r + PREFETCH_ROWS) {
                prefetch(self.image(ahead as usize));
            }
            to_unit(self.image(i as usize), row);
            *yy = self.label(i as usize);
        }
    }
}

/// Ask the CPU to start loading every cache line of `bytes` (a hint: it
/// never faults and changes no values). A no-op off x86-64.
#[inline]
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        const LINE: usize = 64;
        let start = bytes.as_ptr() as usize & !(LINE - 1);
        let end = bytes.as_ptr() as usize + bytes.len();
        for line in (start..end).step_by(LINE) {
            // SAFETY: a prefetch is only a hint; it reads nothing into the
            // program, cannot fault, and SSE is part of the x86-64 baseline.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(line as *const i8) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// Pixel bytes to `f32` in `[0, 1]`: `x / 255`, as the reference recipe scales.
#[inline]
pub fn to_unit(src: &[u8], dst: &mut [f32]) {
    // AVX2 widens 8 bytes to 8 floats per instruction, SSE2 needs shuffles
    // for 4. The same product either way.
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked on the line above.
        return unsafe { to_unit_avx2(src, dst) };
    }
    to_unit_impl(src, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn to_unit_avx2(src: &[u8], dst: &mut [f32]) {
    to_unit_impl(src, dst)
}

#[inline(always)]
fn to_unit_impl(src: &[u8], dst: &mut [f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = s as f32 * (1.0 / 255.0);
    }
}

/// MNIST-format training and test sets from one directory.
pub struct Mnist {
    pub dir: PathBuf,
    pub train: Dataset,
    pub test: Dataset,
}

impl Mnist {
    /// Open the four standard files in `dir` (decompressing `.gz` once where needed).
    pub fn open(dir: &Path) -> Result<Self, IdxError> {
        Ok(Mnist {
            dir: dir.to_owned(),
            train: open_pair(dir, TRAIN_IMAGES, TRAIN_LABELS)?,
            test: open_pair(dir, TEST_IMAGES, TEST_LABELS)?,
        })
    }

    /// Open only the test set in `dir` (what evaluation needs).
    pub fn open_test(dir: &Path) -> Result<Dataset, IdxError> {
        open_pair(dir, TEST_IMAGES, TEST_LABELS)
    }
}

/// The image and label files `images`, `labels` in `dir`, located and validated.
fn open_pair(dir: &Path, images: &str, labels: &str) -> Result<Dataset, IdxError> {
    if !dir.is_dir() {
        return Err(IdxError::MissingDir {
            path: dir.to_owned(),
        });
    }
    Dataset::open(&idx::locate(dir, images)?, &idx::locate(dir, labels)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_unit_dispatch_gives_the_portable_bits() {
        let src: Vec<u8> = (0..=255u8).chain(0..=200).collect();
        let (mut fast, mut portable) = (vec![0.0; src.len()], vec![0.0; src.len()]);
        to_unit(&src, &mut fast);
        to_unit_impl(&src, &mut portable);
        assert!(fast
            .iter()
            .zip(&portable)
            .all(|(x, y)| x.to_bits() == y.to_bits()));
        assert_eq!((fast[0], fast[255]), (0.0, 1.0));
    }
}
