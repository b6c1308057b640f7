//! IDX files (the MNIST container): locate, decompress once, verify, map, validate.
//!
//! An IDX file is a 4-byte magic `00 00 08 NDIM` (`08` = unsigned byte),
//! `NDIM` big-endian u32 dimensions, then the data. Images are 3-D
//! (`N × rows × cols`, MNIST's 28 × 28 or any other size), labels 1-D (`N`). Every header field is checked against
//! the file's real length before anything is sized from it.
//!
//! The files: this one the format (headers checked, files mapped, written),
//! `locate.rs` where a data file's bytes are (the file, or its `.gz`
//! decompressed once, beside it or in the cache), `gunzip.rs` the
//! decompression, `md5.rs` the checksums.

mod gunzip;
mod locate;
mod md5;
#[cfg(test)]
mod tests;

pub use locate::{cache_dir, cache_dir_under, locate, stamp_path};

use gunzip::room_fix;

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;

/// What is wrong with an IDX file (the path is attached by [`IdxError`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdxProblem {
    TooShort {
        len: usize,
        need: usize,
    },
    BadMagic {
        found: [u8; 4],
        want_dims: u8,
    },
    DimCount {
        found: u8,
        want: u8,
    },
    /// An IDX file of another element type than unsigned bytes.
    ElementType {
        code: u8,
    },
    BadDims {
        found: Vec<u32>,
        want: String,
    },
    Length {
        len: usize,
        want: u64,
    },
    /// A `.gz` whose stream goes on past the length its header promises
    /// (decompression stops there rather than fill the disk).
    LongerThanPromised {
        want: u64,
    },
    /// A `.gz` too small to hold the length its header promises: deflate
    /// expands a byte to at most [`MAX_INFLATE`] bytes.
    MoreThanArchiveHolds {
        want: u64,
        gz_len: u64,
    },
}

/// Most bytes one byte of deflate data decodes to (RFC 1951's longest
/// match, 258 bytes, in a quarter of a byte; gzip's headers only lower it).
pub const MAX_INFLATE: u64 = 1032;

impl fmt::Display for IdxProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdxProblem::TooShort { len, need } => write!(
                f,
                "file is {len} bytes, shorter than its {need}-byte header (truncated?)"
            ),
            IdxProblem::BadMagic { found, want_dims } => write!(
                f,
                "wrong magic number {:02x} {:02x} {:02x} {:02x} (want 00 00 08 {want_dims:02x}): not an IDX {} file{}",
                found[0],
                found[1],
                found[2],
                found[3],
                if *want_dims == 1 { "label" } else { "image" },
                // gzip's own magic number, under the raw name.
                if found[..2] == [0x1f, 0x8b] {
                    " but gzip data"
                } else {
                    ""
                }
            ),
            IdxProblem::DimCount { found, want } => write!(
                f,
                "IDX header says {found} dimension{}, expected {want} ({})",
                if *found == 1 { "" } else { "s" },
                if *want == 1 { "labels" } else { "images x rows x columns" }
            ),
            IdxProblem::ElementType { code } => write!(
                f,
                "an IDX file of {}, not of unsigned bytes (type 0x{code:02x}, not 0x08)",
                match code {
                    0x09 => "signed bytes",
                    0x0b => "16-bit integers",
                    0x0c => "32-bit integers",
                    0x0d => "32-bit floats",
                    _ => "64-bit floats",
                }
            ),
            IdxProblem::BadDims { found, want } => {
                write!(f, "dimensions {found:?}, expected {want}")
            }
            IdxProblem::Length { len, want } => write!(
                f,
                "file is {len} bytes but its header promises {} (truncated or padded)",
                Promised(*want)
            ),
            IdxProblem::LongerThanPromised { want } => write!(
                f,
                "it holds more than the {want} bytes its header promises (padded, or the wrong file)"
            ),
            IdxProblem::MoreThanArchiveHolds { want, gz_len } => write!(
                f,
                "its header promises {} bytes, more than a {gz_len}-byte archive can hold (deflate expands at most {MAX_INFLATE} times): truncated, or not an IDX file",
                Promised(*want)
            ),
        }
    }
}

impl IdxProblem {
    /// What to do about a file with this problem: each message states the
    /// problem, then this, so that a fix is said once.
    pub fn fix(&self) -> &'static str {
        match self {
            IdxProblem::ElementType { .. } => {
                "simplenn reads 8-bit pixels and labels: convert it to unsigned bytes"
            }
            IdxProblem::BadMagic { found, .. } if found[..2] == [0x1f, 0x8b] => {
                "add .gz to its name, and simplenn decompresses it"
            }
            IdxProblem::DimCount { want: 1, .. } => {
                "simplenn reads one label per image, a 1-dimensional IDX file: convert it to that, or point --data at the right files"
            }
            IdxProblem::DimCount { .. } => {
                "simplenn reads one 8-bit channel per pixel, images x rows x columns: convert it to that, or point --data at the right files"
            }
            _ => "replace it with a good copy, or point --data at the right files",
        }
    }

    /// [`IdxProblem::fix`] for what a `.gz` decompressed to.
    pub fn archive_fix(&self) -> &'static str {
        match self {
            // An archive of an archive: its name has one .gz for two.
            IdxProblem::BadMagic { found, .. } if found[..2] == [0x1f, 0x8b] => {
                "it holds gzip data inside gzip data: decompress it once (gzip -d), then add .gz to the name of what that gives"
            }
            p => p.fix(),
        }
    }
}

/// A length from [`promised_len`], which saturates: its largest value
/// stands for that or any longer length, and says so.
struct Promised(u64);

impl fmt::Display for Promised {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            u64::MAX => f.write_str("2^64 - 1 or more"),
            n => write!(f, "{n}"),
        }
    }
}

/// An IDX file that could not be used, with its path.
/// `; FIX` where `error` is a limit reached ([`crate::error::resource_fix`]).
fn limit_fix(error: &io::Error) -> String {
    crate::error::resource_fix(error).map_or(String::new(), |f| format!("; {f}"))
}

#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    #[error("{path}: {problem}; {}", problem.fix())]
    Invalid { path: PathBuf, problem: IdxProblem },
    /// [`IdxError::Invalid`], for a file with its `.gz` beside it (an
    /// unfinished or damaged copy of it, most likely).
    #[error(
        "{path}: {problem}; delete it, and the {path}.gz beside it is decompressed in its place"
    )]
    InvalidBesideGz { path: PathBuf, problem: IdxProblem },
    /// [`IdxError::Invalid`], for simplenn's cached copy of a `.gz`.
    #[error("{path}: {problem}; it is simplenn's cached copy of a .gz: delete it, and it is decompressed again")]
    InvalidCached { path: PathBuf, problem: IdxProblem },
    // Not a `source` field: the message carries the I/O error itself, so
    // that `{e}` says it and anyhow's `{e:#}` does not say it twice.
    #[error("{path}: {error}{}", limit_fix(.error))]
    Io { path: PathBuf, error: io::Error },
    #[error("{path} not found (nor {path}.gz); point {flag} at the directory that holds it")]
    Missing {
        path: PathBuf,
        /// `--data`, or `$SIMPLENN_DATA` when that names the directory.
        flag: &'static str,
    },
    #[error("data directory {path} not found; pass --data DIR naming a directory with {needs}")]
    MissingDir {
        path: PathBuf,
        /// The files this command reads, named for the user.
        needs: String,
    },
    #[error("the data directory {path} is not a directory; pass --data DIR naming a directory with {needs}")]
    NotADir {
        path: PathBuf,
        /// The files this command reads, named for the user.
        needs: String,
    },
    /// A path wrong as written: see [`crate::error::path_fault`].
    #[error("{what}{path}: {why}")]
    BadPath {
        /// `the data directory ` or nothing (a data file).
        what: &'static str,
        path: PathBuf,
        why: String,
    },
    /// A file or directory that exists but cannot be read (permissions).
    #[error(
        "{path} cannot be read ({error}); check its permissions, or run as a user who may read it"
    )]
    Unreadable { path: PathBuf, error: io::Error },
    #[error("the data directory {path} is a file; pass --data DIR naming {dir}")]
    DirIsFile { path: PathBuf, dir: String },
    #[error("{path} is a link to {target}, older than {gz} beside it; simplenn decompresses an archive over an older file, but not through a link to a file elsewhere: remove the link to have the archive decompressed in its place, or remove the .gz to use the link")]
    LinkOlderThanArchive {
        path: PathBuf,
        target: PathBuf,
        gz: PathBuf,
    },
    #[error("{path} ({}) has the time of {gz} beside it, as a copy decompressed from it has, but not the length of what it decompresses to ({holds}): the archive was replaced by another of the same time (a link pointed at another split of one download); delete {path} to have the archive decompressed again, or remove the .gz to use the file", crate::show::count(*len as usize, "byte"))]
    NotTheArchives {
        path: PathBuf,
        len: u64,
        holds: String,
        gz: PathBuf,
    },
    #[error("{path} has no {missing} (nor .gz), but has files by other names that look like them: {fix}")]
    OtherNames {
        path: PathBuf,
        missing: String,
        fix: String,
    },
    #[error("{path} not found (nor {path}.gz), but {nested} has it: pass --data {nested}")]
    Nested { path: PathBuf, nested: String },
    #[error("{path} holds no images (its header counts 0); a data set needs at least one image: pass a file that holds some")]
    Empty { path: PathBuf },
    #[error("$SIMPLENN_DATA is {path}, {why}; point it at a directory with {files}, unset it, or pass --data DIR")]
    EnvDir {
        path: PathBuf,
        /// `which is not a directory`, or what is wrong with the path.
        why: String,
        /// The files the command reads, in words.
        files: String,
    },
    #[error("{path} decompresses to no usable IDX file: {problem}; {}", problem.archive_fix())]
    BadArchive { path: PathBuf, problem: IdxProblem },
    #[error("{path}: line {line} {problem}; fix MD5SUMS, or remove it to skip the check")]
    BadSums {
        path: PathBuf,
        line: usize,
        problem: String,
    },
    #[error("{path}: MD5 {found} does not match MD5SUMS ({want}); {fix}")]
    Checksum {
        path: PathBuf,
        found: String,
        want: String,
        /// What to do: decompress the `.gz` again where there is one.
        fix: &'static str,
    },
    #[error("{path} is {what}; the data files must be regular files: remove it, or put the IDX file (or its .gz) in its place")]
    NotAFile { path: PathBuf, what: &'static str },
    /// A folder of the file's name holding the file: a download unpacked
    /// one folder a file (Kaggle's MNIST is laid out so).
    #[error("{path} is a directory holding {name}, as a download that unpacks each file into a folder of its name leaves it; move the file into the folder's place: in {dir}, mv {name} {name}.d && mv {name}.d/{name} {name} && rmdir {name}.d", dir = path.parent().unwrap_or(Path::new(".")).display())]
    FolderOfFile { path: PathBuf, name: String },
    #[error("{path} decompresses to {} (its header says), but {dir} has {} free; make room there, or decompress it onto a disk with room and point --data at that", size(*.want), size(*.free))]
    NoRoom {
        path: PathBuf,
        /// The directory the decompressed file would go in.
        dir: PathBuf,
        want: u64,
        free: u64,
    },
    #[error("{path} decompresses to {} (its header says), but {dir} has {} free, and {cache}; make room there, set XDG_CACHE_HOME to a writable directory with room, or decompress it onto a disk with room and point --data at that", size(*.want), size(*.free))]
    NoRoomNoCache {
        path: PathBuf,
        dir: PathBuf,
        want: u64,
        free: u64,
        /// Why the cache could not take it, as a clause.
        cache: String,
    },
    #[error("{path} decompresses to {} (its header says), but {dir} has {} free and the cache directory {cache} has {}; make room in either, or decompress it onto a disk with room and point --data at that", size(*.want), size(*.free), size(*.cache_free))]
    NoRoomInCacheEither {
        path: PathBuf,
        /// The data directory, and its free space.
        dir: PathBuf,
        free: u64,
        /// The cache directory tried next, and its free space.
        cache: PathBuf,
        cache_free: u64,
        want: u64,
    },
    #[error(
        "{path} cannot be decompressed into {dir}: {error}; {}",
        room_fix(error)
    )]
    NoSpace {
        path: PathBuf,
        /// The directory the decompressed file was being written in.
        dir: PathBuf,
        /// The write's failure: no space or inodes left, a quota, a
        /// file-size limit.
        error: io::Error,
    },
    #[error("{path} cannot be decompressed: {dir} is read-only, and {cache}; set XDG_CACHE_HOME to a writable directory, or decompress the .gz files into a writable directory and pass it as --data")]
    NoPlace {
        path: PathBuf,
        dir: PathBuf,
        /// Why the cache could not take it.
        cache: String,
    },
    #[error("{images} has {n_images} images but {labels} has {n_labels} labels; they must come in pairs: pass the labels written with these images (one may be cut short, or from another data set)")]
    CountMismatch {
        images: PathBuf,
        n_images: usize,
        labels: PathBuf,
        n_labels: usize,
    },
    #[error("{path}: label {label} at index {index} is not below the {classes} classes{hint}")]
    BadLabel {
        path: PathBuf,
        index: usize,
        label: u8,
        classes: usize,
        /// What to do about it, starting with "; ".
        hint: String,
    },
    #[error("{train} holds {train_rows} × {train_cols} images but {test} holds {test_rows} × {test_cols}; train and test images must be the same size: put the train and test files of one data set in the directory")]
    SizeMismatch {
        train: PathBuf,
        train_rows: usize,
        train_cols: usize,
        test: PathBuf,
        test_rows: usize,
        test_cols: usize,
    },
    #[error("no data directory given and none found (tried {tried}); pass --data DIR, or set SIMPLENN_DATA to a directory with {files}")]
    NoDataDir {
        tried: String,
        /// The files the command reads, in words.
        files: String,
    },
    #[error("{path}: every label is {label}, so there is only one class; a classifier needs at least two (pass --classes K to declare more)")]
    OneClass { path: PathBuf, label: u8 },
}

/// The parsed header of an IDX `u8` file: its dimensions and where data begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxHeader {
    pub dims: Vec<u32>,
    pub data_offset: usize,
}

/// Parse and check a header against the whole file `bytes`: magic
/// `00 00 08 ndim`, and the product of the dimensions equal to the bytes that
/// follow. Never allocates more than `ndim` words, never panics.
pub fn parse_header(bytes: &[u8], ndim: u8) -> Result<IdxHeader, IdxProblem> {
    parse_header_of_len(bytes, bytes.len(), ndim)
}

/// [`parse_header`] for a file of `len` bytes that begins with `head` (at
/// least its header, where the file has one): all the checks without the
/// file's body in memory.
fn parse_header_of_len(head: &[u8], len: usize, ndim: u8) -> Result<IdxHeader, IdxProblem> {
    let bytes = head;
    let need = 4 + 4 * ndim as usize;
    if len < 4 || bytes.len() < 4 {
        return Err(IdxProblem::TooShort { len, need });
    }
    let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
    if magic[..3] == [0, 0, 8] && magic[3] != ndim {
        return Err(IdxProblem::DimCount {
            found: magic[3],
            want: ndim,
        });
    }
    if magic[..2] == [0, 0] && matches!(magic[2], 0x09 | 0x0b..=0x0e) {
        return Err(IdxProblem::ElementType { code: magic[2] });
    }
    if magic != [0, 0, 8, ndim] {
        return Err(IdxProblem::BadMagic {
            found: magic,
            want_dims: ndim,
        });
    }
    if len < need || bytes.len() < need {
        return Err(IdxProblem::TooShort { len, need });
    }
    let dims: Vec<u32> = bytes[4..need]
        .chunks_exact(4)
        .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
        .collect();
    // The magic and the header's length were checked above.
    let want = promised_len(bytes, ndim).unwrap_or(u64::MAX);
    if want != len as u64 {
        return Err(IdxProblem::Length { len, want });
    }
    Ok(IdxHeader {
        dims,
        data_offset: need,
    })
}

/// The whole length (header and body) that an IDX header `head` of `ndim`
/// dimensions promises; `None` if `head` is not such a header.
fn promised_len(head: &[u8], ndim: u8) -> Option<u64> {
    let need = 4 + 4 * ndim as usize;
    if head.len() < need || head[..4] != [0, 0, 8, ndim] {
        return None;
    }
    // u64 cannot hold three u32 factors (96 bits): saturate instead, and
    // let the length check reject it.
    let body = head[4..need].chunks_exact(4).fold(1u64, |acc, w| {
        acc.saturating_mul(u32::from_be_bytes([w[0], w[1], w[2], w[3]]) as u64)
    });
    Some((need as u64).saturating_add(body))
}

/// A validated, memory-mapped IDX file.
pub struct IdxFile {
    path: PathBuf,
    /// Names this file in the SIGBUS line; declared before `map` so that
    /// it is dropped (the watch ended) before the map is unmapped.
    _watch: crate::signals::MapWatch,
    map: Mmap,
    header: IdxHeader,
}

impl IdxFile {
    /// Map `path` and validate it as an IDX `u8` file of `ndim` dimensions.
    ///
    /// The file is memory-mapped, not read: it must not be rewritten in
    /// place or truncated by another process while the map lives (replace
    /// it by rename, as simplenn does); a truncation kills the process with
    /// SIGBUS. The same holds for [`crate::data::Dataset::open`] and
    /// [`crate::data::Mnist::open`], which map through here.
    pub fn open(path: &Path, ndim: u8) -> Result<Self, IdxError> {
        let io = |source| IdxError::Io {
            path: path.to_owned(),
            error: source,
        };
        let file = open_to_read(path)?;
        let len = file.metadata().map_err(io)?.len();
        if len == 0 {
            return Err(IdxError::Invalid {
                path: path.to_owned(),
                problem: IdxProblem::TooShort {
                    len: 0,
                    need: 4 + 4 * ndim as usize,
                },
            });
        }
        // SAFETY: the map is read-only but shared (`MAP_SHARED`): another
        // process that rewrites the file in place changes the bytes under it,
        // and one that truncates it makes a read SIGBUS. simplenn itself only
        // ever replaces data files by rename (`gunzip_atomically`,
        // `write_idx`), which leaves this map on the old file. As ripgrep
        // does, we accept the risk from other processes rather than copy
        // 47 MB. No unsafe code forms an address from a mapped byte: labels
        // are checked against K once, at open, and every later use of a
        // label or pixel indexes with bounds checks; a label read past the
        // largest the file held at open ends the process with one line
        // (`Dataset::label`), before any use of it. (Strictly,
        // bytes that change under a `&[u8]` are a data race the compiler
        // does not expect; that too is the risk accepted.)
        let map = unsafe { Mmap::map(&file) }.map_err(|e| match e.raw_os_error() {
            // A file of /sys or another file system that cannot be mapped.
            #[cfg(unix)]
            Some(libc::ENODEV) => io(io::Error::new(
                e.kind(),
                format!("cannot be memory-mapped ({e}: a file of /sys, /proc or another special file system); put an ordinary copy of it in its place"),
            )),
            _ => io(e),
        })?;
        // Watched from the first read of the map on (the header's); a
        // local declared after `map`, so dropped before it on an error.
        let watch = crate::signals::watch_map(&map, path);
        let header = parse_header(&map, ndim).map_err(|problem| IdxError::Invalid {
            path: path.to_owned(),
            problem,
        })?;
        Ok(IdxFile {
            path: path.to_owned(),
            _watch: watch,
            map,
            header,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The header's dimensions (`[N, rows, cols]` for images, `[N]` for
    /// labels); not a network's widths, which are [`crate::model::Dims`].
    pub fn dims(&self) -> &[u32] {
        &self.header.dims
    }

    /// The data after the header.
    pub fn data(&self) -> &[u8] {
        &self.map[self.header.data_offset..]
    }
}

/// Write a `u8` IDX file with the given dimensions (for tests and tools).
/// `data` is written as given, its length unchecked against `dims`, so that
/// tests can write files cut short or too long; more than 255 dimensions,
/// which the header's one byte cannot count, are an error.
///
/// The file is written beside `path` and renamed over it, so a file that an
/// [`IdxFile`] has mapped is replaced, never changed under the map.
pub fn write_idx(path: &Path, dims: &[u32], data: &[u8]) -> io::Result<()> {
    if path.file_name().is_none() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an IDX path needs a file name",
        ));
    }
    let Ok(ndim) = u8::try_from(dims.len()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} dimensions: an IDX header counts at most 255",
                dims.len()
            ),
        ));
    };
    let dir = path.parent().unwrap_or(Path::new(""));
    let (file, temp) = crate::atomic::TempFile::create_new(crate::atomic::tmp_names(dir, path))?;
    let mut w = BufWriter::new(file);
    w.write_all(&[0, 0, 8, ndim])?;
    for d in dims {
        w.write_all(&d.to_be_bytes())?;
    }
    w.write_all(data)?;
    w.into_inner().map_err(|e| e.into_error())?;
    // An error above drops `temp`, which removes the file.
    temp.renamed(path)
}

/// When `path` was last modified, where that can be told.
pub(crate) fn modified(path: &Path) -> Option<std::time::SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// `path` opened for reading; a file this user may not read is named as
/// such, with the fix.
fn open_to_read(path: &Path) -> Result<File, IdxError> {
    File::open(path).map_err(
        |error| match (crate::error::path_fault(&error, path), error.kind()) {
            (Some(why), _) => IdxError::BadPath {
                what: "",
                path: path.to_owned(),
                why,
            },
            (None, io::ErrorKind::PermissionDenied) => IdxError::Unreadable {
                path: path.to_owned(),
                error,
            },
            _ => IdxError::Io {
                path: path.to_owned(),
                error,
            },
        },
    )
}

/// `bytes` for a person: "7.8 MB", "12.40 GB".
fn size(bytes: u64) -> String {
    let b = bytes as f64;
    // 0.0 MB would say nothing of a labels file or of a disk all but full.
    if b < 100e3 {
        crate::show::count(bytes as usize, "byte")
    } else if b < 1e9 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.2} GB", b / 1e9)
    }
}
