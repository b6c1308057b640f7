//! Data sets over mapped IDX files, and the minibatch gather.
//!
//! Nothing here copies a data set: images stay `u8` in the map, and a batch
//! is gathered row by row (by shuffled index) into a reused `f32` buffer,
//! scaled to `[0, 1]` on the way. The network's shape comes from the files:
//! `D = rows × cols` from the image header, `K` = the largest training label
//! + 1 (or `--classes`).

use std::fs;
use std::path::{Path, PathBuf};

use crate::idx::{self, IdxError, IdxFile};

/// Pixels per MNIST image (28 × 28).
pub const MNIST_PIXELS: usize = 784;

/// The four standard file names, as in the MNIST and Fashion-MNIST archives.
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";
/// All four.
pub const FILES: [&str; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];

/// Images and their labels, both mapped and validated.
pub struct Dataset {
    images: IdxFile,
    labels: IdxFile,
    /// The names errors give the two files: the files themselves, or, for
    /// simplenn's cached copies, the `.gz` files the user has (a label's
    /// index is the same in both, and the cache is a path never typed).
    images_named: PathBuf,
    labels_named: PathBuf,
    len: usize,
    /// Image height and width, from the header.
    rows: usize,
    cols: usize,
    /// `rows × cols`: the network's input width `D`.
    pixels: usize,
    /// The largest label (`None` only if there were no images, which
    /// [`Dataset::open`] refuses).
    max_label: Option<u8>,
    min_label: Option<u8>,
}

impl Dataset {
    /// Open an image file (`N × rows × cols`) and a label file (`N`),
    /// checking shapes and counts. Labels are checked against the class
    /// count by [`Dataset::label_at_least`] (see [`Mnist::open_with_classes`]).
    pub fn open(images: &Path, labels: &Path) -> Result<Self, IdxError> {
        let img = IdxFile::open(images, 3)?;
        let lab = IdxFile::open(labels, 1)?;
        let d = img.dims();
        let (rows, cols) = (d[1] as usize, d[2] as usize);
        if rows == 0 || cols == 0 {
            return Err(IdxError::Invalid {
                path: images.to_owned(),
                problem: idx::IdxProblem::BadDims {
                    found: d.to_vec(),
                    want: "[N, rows, cols] with rows, cols ≥ 1".into(),
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
        // An empty file would train on nothing, or score 0 of 0 test images.
        if n_images == 0 {
            return Err(IdxError::Empty {
                path: images.to_owned(),
            });
        }
        Ok(Dataset {
            max_label: lab.data().iter().copied().max(),
            min_label: lab.data().iter().copied().min(),
            images: img,
            labels: lab,
            images_named: images.to_owned(),
            labels_named: labels.to_owned(),
            len: n_images,
            rows,
            cols,
            pixels: rows * cols,
        })
    }

    /// The first label that is not below `classes`, as `(index, label)`.
    pub fn label_at_least(&self, classes: usize) -> Option<(usize, u8)> {
        let labels = self.labels.data();
        let index = labels.iter().position(|&l| l as usize >= classes)?;
        Some((index, labels[index]))
    }

    /// An error for `(index, label)` from [`Dataset::label_at_least`].
    pub fn bad_label(&self, (index, label): (usize, u8), classes: usize, hint: String) -> IdxError {
        IdxError::BadLabel {
            path: self.labels_named.clone(),
            index,
            label,
            classes,
            hint,
        }
    }

    /// The largest label (`None` for an empty set).
    pub fn max_label(&self) -> Option<u8> {
        self.max_label
    }

    /// The smallest label (`None` for an empty set).
    pub fn min_label(&self) -> Option<u8> {
        self.min_label
    }

    /// Pixels per image, `rows × cols`: the input width `D`.
    pub fn pixels(&self) -> usize {
        self.pixels
    }

    /// Image height and width.
    pub fn side(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    pub fn labels_path(&self) -> &Path {
        self.labels.path()
    }

    /// The label file as errors name it: [`Dataset::labels_path`], or for
    /// simplenn's cached copy of a `.gz`, that `.gz`.
    pub fn labels_named(&self) -> &Path {
        &self.labels_named
    }

    /// The image file as errors name it (see [`Dataset::labels_named`]).
    pub fn images_named(&self) -> &Path {
        &self.images_named
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Image `i` as `D` raw bytes, row by row.
    ///
    /// # Panics
    /// Where `i` is not below [`Dataset::len`].
    #[inline]
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images.data()[i * self.pixels..(i + 1) * self.pixels]
    }

    /// Label `i`.
    ///
    /// # Panics
    /// Where `i` is not below [`Dataset::len`].
    ///
    /// Ends the process with one line ([`crate::signals::data_rewritten`])
    /// where the label is above the largest the file held when opened: the
    /// map shows another program's in-place rewrite, and the label was
    /// checked against the class count only at open.
    #[inline]
    pub fn label(&self, i: usize) -> u8 {
        let label = self.labels.data()[i];
        if self.rewritten_to(label) {
            self.rewritten(i, label);
        }
        label
    }

    /// Whether `label`, just read, is above the largest the file held when
    /// opened: only a rewrite under the map makes one.
    #[inline]
    fn rewritten_to(&self, label: u8) -> bool {
        self.max_label.is_some_and(|m| label > m)
    }

    #[cold]
    #[inline(never)]
    fn rewritten(&self, i: usize, label: u8) -> ! {
        crate::signals::data_rewritten(
            self.labels.path(),
            format_args!(
                "image {i}'s label is now {label}, above the largest, {}, it held when opened",
                self.max_label.unwrap_or(0)
            ),
        )
    }

    pub fn images_path(&self) -> &Path {
        self.images.path()
    }

    /// Gather images `range` into `x` and `y` on the calling thread.
    pub fn gather_range(&self, range: std::ops::Range<usize>, x: &mut [f32], y: &mut [u8]) {
        let n = range.len();
        let d = self.pixels;
        let src = &self.images.data()[range.start * d..range.end * d];
        to_unit(src, &mut x[..n * d]);
        let y = &mut y[..n];
        y.copy_from_slice(&self.labels.data()[range.clone()]);
        // As [`Dataset::label`] checks each label it reads.
        if let Some(r) = y.iter().position(|&l| self.rewritten_to(l)) {
            self.rewritten(range.start + r, y[r]);
        }
    }

    /// Gather images `idx` into `x` (`(idx.len(), D)` row-major, scaled to
    /// `[0, 1]`) and their labels into `y`, on the calling thread: the
    /// trainer calls it per row block from inside its parallel pass.
    ///
    /// Shuffled rows are scattered over the file (47 MB for MNIST), so each one starts
    /// with a cache miss; asking for the image `PREFETCH_ROWS` ahead while
    /// converting this one overlaps those misses (`cargo bench --bench step
    /// -- gather` times both ways).
    pub fn gather(&self, idx: &[u32], x: &mut [f32], y: &mut [u8]) {
        const PREFETCH_ROWS: usize = 4;
        let b = idx.len();
        assert!(x.len() >= b * self.pixels && y.len() >= b);
        for &i in &idx[..b.min(PREFETCH_ROWS)] {
            prefetch(self.image(i as usize));
        }
        for (r, ((row, yy), &i)) in x
            .chunks_exact_mut(self.pixels)
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

/// Pixel bytes to `f32` in `[0, 1]`: `x · (1/255)`, the reference
/// recipe's `x / 255` as a product, which for 126 of the 256 bytes differs
/// from the f32 quotient in the last bit (the README's math section says
/// so; every reader of pixels here multiplies, so they agree).
///
/// # Panics
/// Where `src` and `dst` differ in length.
#[inline]
pub fn to_unit(src: &[u8], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len(), "to_unit: one float per byte");
    // AVX2 widens 8 bytes to 8 floats per instruction, SSE2 needs shuffles
    // for 4. The same product either way.
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked on the line above.
        return unsafe { to_unit_avx2(src, dst) };
    }
    to_unit_impl(src, dst)
}

/// The portable loop, compiled for AVX2.
///
/// # Safety
/// The CPU must have AVX2 (`is_x86_feature_detected!("avx2")`).
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

/// MNIST-format training and test sets from one directory, with the
/// network shape they imply.
pub struct Mnist {
    /// The directory the files were opened in.
    pub dir: PathBuf,
    /// The training file, validation split included (its last images).
    pub train: Dataset,
    /// The test file, of the training file's image size.
    pub test: Dataset,
    /// Classes `K`: the largest training label + 1, or as declared.
    pub classes: usize,
}

impl Mnist {
    /// Open the four standard files in `dir` (decompressing `.gz` once where
    /// needed), with `K` = the largest training label + 1.
    pub fn open(dir: &Path) -> Result<Self, IdxError> {
        Self::open_with_classes(dir, None)
    }

    /// [`Mnist::open`], with `classes` declared (`--classes K`) rather than
    /// taken from the training labels. Checks that train and test images
    /// have one size and that every label, train and test, is below `K`.
    pub fn open_with_classes(dir: &Path, classes: Option<usize>) -> Result<Self, IdxError> {
        let train = open_pair(dir, TRAIN_IMAGES, TRAIN_LABELS, NEEDS_ALL)?;
        let test = open_pair(dir, TEST_IMAGES, TEST_LABELS, NEEDS_ALL)?;
        if train.side() != test.side() {
            let ((tr, tc), (er, ec)) = (train.side(), test.side());
            return Err(IdxError::SizeMismatch {
                train: train.images_named().to_owned(),
                train_rows: tr,
                train_cols: tc,
                test: test.images_named().to_owned(),
                test_rows: er,
                test_cols: ec,
            });
        }
        let classes = match classes {
            Some(k) => {
                // The first bad label need not be the largest: suggest the
                // count that holds every label of both files.
                let top = train.max_label().max(test.max_label()).unwrap_or(0);
                for set in [&train, &test] {
                    if let Some(bad) = set.label_at_least(k) {
                        let need = top as usize + 1;
                        let more = if need < 256 { " (or more)" } else { "" };
                        // Without --classes the count comes from the
                        // training labels: a way out only where they hold
                        // the largest label.
                        let default = if train.max_label() == Some(top) {
                            ", or leave --classes out to take the largest training label + 1"
                        } else {
                            ""
                        };
                        let hint = format!("; pass --classes {need}{more}{default}");
                        return Err(set.bad_label(bad, k, hint));
                    }
                }
                k
            }
            None => {
                let top = train.max_label().unwrap_or(0);
                // Labels numbered from 1 are fine (class 0 is never seen),
                // but one label throughout is no classification problem.
                if train.min_label() == Some(top) {
                    return Err(IdxError::OneClass {
                        path: train.labels_named().to_owned(),
                        label: top,
                    });
                }
                let k = top as usize + 1;
                if let Some(bad) = test.label_at_least(k) {
                    let hint = format!(
                        " (the training labels go up to {top}); pass --classes {} to declare every class",
                        test.max_label().unwrap_or(bad.1) as usize + 1
                    );
                    return Err(test.bad_label(bad, k, hint));
                }
                k
            }
        };
        Ok(Mnist {
            dir: dir.to_owned(),
            train,
            test,
            classes,
        })
    }

    /// Open only the test set in `dir` (what evaluation needs).
    pub fn open_test(dir: &Path) -> Result<Dataset, IdxError> {
        open_pair(dir, TEST_IMAGES, TEST_LABELS, NEEDS_TEST)
    }

    /// The training pair of `dir` alone (for `simplenn augment`).
    pub fn open_train(dir: &Path) -> Result<Dataset, IdxError> {
        open_pair(dir, TRAIN_IMAGES, TRAIN_LABELS, NEEDS_TRAIN)
    }
}

/// The data directory: `flag` when given; else `$SIMPLENN_DATA` when set
/// (refused here, naming the variable, when it is not a directory: a user
/// who set it long ago would not know where a bare path came from); else,
/// like other tools, the first that exists of `./data/mnist` and the
/// `data/mnist` of the source tree this binary was built from (so an
/// installed binary run from anywhere still finds the MNIST it ships with).
pub fn resolve_dir(flag: Option<&Path>) -> Result<PathBuf, IdxError> {
    resolve_dir_for(flag, NEEDS_ALL)
}

/// [`resolve_dir`] for a command that reads `needs` ([`NEEDS_ALL`],
/// [`NEEDS_TEST`] or [`NEEDS_TRAIN`]), the files its errors name where no
/// directory is found.
pub fn resolve_dir_for(flag: Option<&Path>, needs: &[&str]) -> Result<PathBuf, IdxError> {
    if let Some(dir) = flag {
        return Ok(dir.to_owned());
    }
    if let Some(env) = std::env::var_os("SIMPLENN_DATA").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(env);
        if !path.is_dir() {
            let why = match fs::metadata(&path) {
                Ok(_) => "which is not a directory".into(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => "which does not exist".into(),
                Err(e) => match crate::error::path_fault(&e, &path) {
                    Some(fault) => format!("where {fault}"),
                    // A directory above it that may not be entered.
                    None => format!(
                        "which cannot be reached ({e}: check the permissions of the directories on its path)"
                    ),
                },
            };
            let files = dir_files(needs);
            return Err(IdxError::EnvDir { path, why, files });
        }
        return Ok(path);
    }
    let candidates = [
        PathBuf::from("data/mnist"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist"),
    ];
    // The first that is there, whatever it is: one that is no directory
    // (a file, a link to nothing) or cannot be looked at (a directory above
    // it that may not be entered, `./data` a loop of links) is named by what
    // opens it, since falling through to the next would train on other data
    // than the one the user set up. Only one not there at all (or under a
    // `data` that is a file) is passed over.
    for dir in &candidates {
        match fs::symlink_metadata(dir) {
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) => {}
            _ => return Ok(dir.clone()),
        }
    }
    // The relative one with the directory it was looked for in: an
    // installed binary run from elsewhere looked there, not in the clone.
    let mut tried: Vec<String> = candidates.iter().map(|d| d.display().to_string()).collect();
    if let Ok(cwd) = std::env::current_dir() {
        tried[0] = format!("{} (in {})", tried[0], cwd.display());
    }
    Err(IdxError::NoDataDir {
        tried: format!("$SIMPLENN_DATA (unset), {}", tried.join(", ")),
        files: dir_files(needs),
    })
}

/// What a data directory must hold for a command that reads `needs`, in
/// words: "the four MNIST IDX files (or their .gz)", or the pair it reads.
fn dir_files(needs: &[&str]) -> String {
    match needs.len() == FILES.len() {
        true => "the four MNIST IDX files (or their .gz)".into(),
        false => name_files(needs),
    }
}

/// The files each reader needs, named in its errors: training reads all
/// four, evaluation (and `serve`'s test set) the test pair, `augment` the
/// training pair.
pub const NEEDS_ALL: &[&str] = &FILES;
/// See [`NEEDS_ALL`].
pub const NEEDS_TEST: &[&str] = &[TEST_IMAGES, TEST_LABELS];
/// See [`NEEDS_ALL`].
pub const NEEDS_TRAIN: &[&str] = &[TRAIN_IMAGES, TRAIN_LABELS];

/// `a and b (or their .gz)`, or `a, b, c, d (or their .gz)`.
fn name_files(files: &[&str]) -> String {
    let list = match files {
        [a, b] => format!("{a} and {b}"),
        _ => files.join(", "),
    };
    format!("{list} (or their .gz)")
}

/// Where files of `needs` are missing from `dir` (by their names and as
/// `.gz`) but others there look like them (EMNIST's
/// `emnist-letters-train-images-idx3-ubyte`, Kaggle's
/// `train-images.idx3-ubyte`, `TRAIN-IMAGES-IDX3-UBYTE.GZ`): the error that
/// names them and the links to make. A file looks like one of `needs` when
/// its name, in lower case, has the same split (`train`; `t10k` or `test`)
/// and the same kind (`images` or `idx3`; `labels` or `idx1`).
fn other_names(dir: &Path, needs: &[&str]) -> Option<IdxError> {
    // Anything by the name, a link that leads nowhere too: that is named
    // as what it is, not as missing.
    let present = |f: &str| {
        [f.to_string(), format!("{f}.gz")]
            .iter()
            .any(|n| fs::symlink_metadata(dir.join(n)).is_ok())
    };
    let missing: Vec<&str> = needs.iter().copied().filter(|f| !present(f)).collect();
    if missing.is_empty() {
        return None;
    }
    let mut names: Vec<String> = fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !needs.iter().any(|f| n == f || *n == format!("{f}.gz")))
        // IDX files and their archives, not a download's `.part` or a `.md5`.
        .filter(|n| {
            let n = n.to_ascii_lowercase();
            n.ends_with("ubyte") || n.ends_with("ubyte.gz")
        })
        .collect();
    names.sort();
    let looks_like = |want: &str, name: &str| {
        let (want, name) = (want.to_ascii_lowercase(), name.to_ascii_lowercase());
        let has = |s: &str, words: &[&str]| words.iter().any(|w| s.contains(w));
        let split = |s: &str| match (has(s, &["train"]), has(s, &["t10k", "test"])) {
            (true, false) => Some("train"),
            (false, true) => Some("test"),
            _ => None,
        };
        let kind = |s: &str| match (has(s, &["images", "idx3"]), has(s, &["labels", "idx1"])) {
            (true, false) => Some("images"),
            (false, true) => Some("labels"),
            _ => None,
        };
        split(&name).is_some()
            && split(&name) == split(&want)
            && kind(&name).is_some()
            && kind(&name) == kind(&want)
    };
    let gz = |n: &str| match n.to_ascii_lowercase().ends_with(".gz") {
        true => ".gz",
        false => "",
    };
    let mut links = Vec::new();
    let mut several = Vec::new();
    // The first name with several candidates, `.gz` where they all are.
    let mut example = None;
    for want in &missing {
        let like: Vec<&String> = names.iter().filter(|n| looks_like(want, n)).collect();
        // A file and its own archive (`gunzip -k`) are one candidate: the
        // file, which needs no decompressing.
        let like: Vec<&String> = like
            .iter()
            .copied()
            .filter(|n| {
                !n.to_ascii_lowercase().ends_with(".gz")
                    || !like
                        .iter()
                        .any(|m| m.len() + 3 == n.len() && n.starts_with(m.as_str()))
            })
            .collect();
        match like[..] {
            [] => return None,
            [one] => links.push(format!(
                "ln -s {} {want}{}",
                crate::show::shell_word(one),
                gz(one)
            )),
            _ => {
                let all_gz = like.iter().all(|n| !gz(n).is_empty());
                example.get_or_insert(format!("{want}{}", if all_gz { ".gz" } else { "" }));
                several.push(format!(
                    "{want}: {}",
                    like.iter()
                        .map(|n| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
    }
    // The error line writes a control character's backslash doubled (see
    // `show::one_line`), which would break bash's `$'…'`, and shows bytes
    // that are not UTF-8 as U+FFFD: no command then.
    let controls = |w: &str| w.chars().any(char::is_control);
    let fix = match several.is_empty() {
        _ if dir.to_str().is_none_or(controls) || names.iter().any(|n| controls(n)) => {
            "simplenn reads the MNIST names; link or rename the files to them".to_string()
        }
        true => format!(
            "simplenn reads the MNIST names; link them (cd {} && {})",
            crate::show::shell_path(dir),
            links.join(" && ")
        ),
        false => format!(
            "several files could be each ({}): link the one you want to each name, e.g. cd {} && ln -s FILE {}",
            several.join("; "),
            crate::show::shell_path(dir),
            example.unwrap_or_default()
        ),
    };
    Some(IdxError::OtherNames {
        path: dir.to_owned(),
        missing: missing.join(", "),
        fix,
    })
}

/// The image and label files `images`, `labels` in `dir`, located and
/// validated; `needs` names every file the command reads, for the errors.
fn open_pair(dir: &Path, images: &str, labels: &str, needs: &[&str]) -> Result<Dataset, IdxError> {
    if dir.is_file() {
        // One of the data files itself: its directory is the fix.
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
        let fix = match (name, parent) {
            (Some(n), parent) if n.contains("-idx") => {
                format!(
                    "the directory that holds it ({})",
                    parent.unwrap_or(Path::new(".")).display()
                )
            }
            _ => format!("a directory with {}", name_files(needs)),
        };
        return Err(IdxError::DirIsFile {
            path: dir.to_owned(),
            dir: fix,
        });
    }
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        // A device or a pipe: it exists, so "not found" would mislead.
        Ok(_) => {
            return Err(IdxError::NotADir {
                path: dir.to_owned(),
                needs: name_files(needs),
            })
        }
        // A link to nothing: named as such, with where it leads (`ls`
        // shows the name, so "not found" would mislead).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(match fs::read_link(dir) {
                Ok(target) => IdxError::BadPath {
                    what: "the data directory ",
                    path: dir.to_owned(),
                    why: format!(
                        "it is a symbolic link to {}, which does not exist; fix the link, or pass --data DIR naming a directory with {}",
                        target.display(),
                        name_files(needs)
                    ),
                },
                Err(_) => IdxError::MissingDir {
                    path: dir.to_owned(),
                    needs: name_files(needs),
                },
            })
        }
        Err(error) => {
            return Err(match crate::error::path_fault(&error, dir) {
                Some(why) => IdxError::BadPath {
                    what: "the data directory ",
                    path: dir.to_owned(),
                    why,
                },
                None => IdxError::Unreadable {
                    path: dir.to_owned(),
                    error,
                },
            })
        }
    }

    // `--data data` where the files are in `data/mnist`: say so.
    let has = |d: &Path| d.join(images).exists() || d.join(format!("{images}.gz")).exists();
    let nested = dir.join("mnist");
    if !has(dir) && has(&nested) {
        return Err(IdxError::Nested {
            path: dir.join(images),
            nested: nested.display().to_string(),
        });
    }
    // EMNIST's, Kaggle's or a user's own names for the same files: say
    // which files look like the missing ones, and how to link them.
    if let Some(e) = other_names(dir, needs) {
        return Err(e);
    }
    // A damaged file that simplenn would decompress again if it were gone:
    // say so.
    // `NAME.gz` beside `path` (`path` a file's, so it has a name).
    let gz_of = |path: &Path| {
        path.with_file_name(format!(
            "{}.gz",
            path.file_name().unwrap_or_default().to_string_lossy()
        ))
    };
    let gz_beside = |path: &Path| path.file_name().is_some() && gz_of(path).is_file();
    let images = idx::locate(dir, images, 3)?;
    let labels = idx::locate(dir, labels, 1)?;
    // A copy decompressed beside its archive keeps the archive's time.
    let copied = |path: &Path| {
        let time = idx::modified(path);
        time.is_some() && time == idx::modified(&gz_of(path))
    };
    // A copy in the cache is named by the `.gz` in `dir` it came from (a
    // copy is read only beside its archive: the copy's own path is named
    // only where that `.gz` went between the read and this).
    let named = |path: &Path| match path.parent() != Some(dir) {
        true => Some(dir.join(gz_of(path).file_name().unwrap_or_default()))
            .filter(|gz| gz.is_file())
            .unwrap_or_else(|| path.to_owned()),
        false => path.to_owned(),
    };
    let mut set = Dataset::open(&images, &labels).map_err(|e| match e {
        // Images of no pixels in simplenn's copy of an archive (in the
        // cache, or beside it with the archive's time): a header that the
        // archive holds too, so no fresh copy mends it. Named as the
        // archive. A raw file newer than its archive is read as it is, and
        // is the one to delete (below).
        IdxError::Invalid {
            path,
            problem: problem @ idx::IdxProblem::BadDims { .. },
        } if !gz_beside(&path) || copied(&path) => {
            let path = match gz_beside(&path) {
                true => gz_of(&path),
                false => named(&path),
            };
            IdxError::Invalid { path, problem }
        }
        IdxError::Invalid { path, problem } if gz_beside(&path) => {
            IdxError::InvalidBesideGz { path, problem }
        }
        IdxError::Invalid { path, problem } if path.parent() != Some(dir) => {
            IdxError::InvalidCached { path, problem }
        }
        IdxError::CountMismatch {
            images,
            n_images,
            labels,
            n_labels,
        } => IdxError::CountMismatch {
            images: named(&images),
            n_images,
            labels: named(&labels),
            n_labels,
        },
        IdxError::Empty { path } => IdxError::Empty { path: named(&path) },
        e => e,
    })?;
    set.images_named = named(&images);
    set.labels_named = named(&labels);
    Ok(set)
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

    /// Images of no pixels (a side of 0) are refused by name, whichever
    /// side is 0.
    #[test]
    fn images_with_a_side_of_zero_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let (images, labels) = (t.path().join("i"), t.path().join("l"));
        idx::write_idx(&labels, &[2], &[0, 1]).unwrap();
        for dims in [[2, 3, 0], [2, 0, 3]] {
            idx::write_idx(&images, &dims, &[]).unwrap();
            let e = Dataset::open(&images, &labels).err().map(|e| e.to_string());
            assert!(
                e.as_deref().is_some_and(|e| e.contains("rows, cols ≥ 1")),
                "{dims:?}: {e:?}"
            );
        }
    }
}
