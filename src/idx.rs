//! IDX files (the MNIST container): locate, decompress once, verify, map, validate.
//!
//! An IDX file is a 4-byte magic `00 00 08 NDIM` (`08` = unsigned byte),
//! `NDIM` big-endian u32 dimensions, then the data. Images are 3-D
//! (`N × rows × cols`, MNIST's 28 × 28 or any other size), labels 1-D (`N`). Every header field is checked against
//! the file's real length before anything is sized from it.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
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
    #[error("$SIMPLENN_DATA is {path}, {why}; point it at a directory with the four MNIST IDX files (or their .gz), unset it, or pass --data DIR")]
    EnvDir {
        path: PathBuf,
        /// `which is not a directory`, or what is wrong with the path.
        why: String,
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
    #[error("no data directory given and none found (tried {tried}); pass --data DIR, or set SIMPLENN_DATA to a directory with the four MNIST IDX files")]
    NoDataDir { tried: String },
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
        // label or pixel indexes with bounds checks, so a label changed
        // after that panics rather than reading past a buffer. (Strictly,
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

/// Find `dir/name`, decompressing `dir/name.gz` next to it when only that
/// exists (or, when `dir` is read-only or has no room for it, or is a
/// package's directory under `/usr` but not `/usr/local` or `/usr/src`, into the user's cache
/// directory), and check it against `dir/MD5SUMS` when that lists it. A decompressed file must be an IDX file of `ndim` dimensions
/// whose length its header promises before it is put in place, so a bad
/// archive leaves nothing behind.
pub fn locate(dir: &Path, name: &str, ndim: u8) -> Result<PathBuf, IdxError> {
    let cached = cache_dir(dir).map(|c| c.join(name));
    locate_in(dir, name, ndim, cached, system_dir(dir))
}

/// [`locate`], with the cache's place for `name` given, and whether to try
/// the cache before `dir` (`cache_first`, for a package's directory).
fn locate_in(
    dir: &Path,
    name: &str,
    ndim: u8,
    cached: Option<PathBuf>,
    cache_first: bool,
) -> Result<PathBuf, IdxError> {
    let raw = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    let mut fresh = false;
    // A directory this user may not look inside: its files would otherwise
    // be reported missing.
    if let Err(error) = fs::symlink_metadata(&raw) {
        if error.kind() == io::ErrorKind::PermissionDenied {
            return Err(IdxError::Unreadable {
                path: dir.to_owned(),
                error,
            });
        }
    }
    // Something by either name that is not a file (a directory, a pipe, a
    // link to nowhere) is named as what it is, not as missing; the raw name
    // first, as a .gz would be decompressed onto it.
    let not_a_file = |p: &Path| {
        if fs::symlink_metadata(p).is_err() || p.is_file() {
            return None;
        }
        // A loop of links is said as such.
        let fault = fs::metadata(p)
            .err()
            .and_then(|e| crate::error::path_fault(&e, p));
        Some(match fault {
            Some(why) => IdxError::BadPath {
                what: "",
                path: p.to_owned(),
                why,
            },
            None => IdxError::NotAFile {
                path: p.to_owned(),
                what: if p.is_dir() {
                    "a directory"
                } else {
                    "not a regular file (a pipe, a device, or a link that leads nowhere)"
                },
            },
        })
    };
    if let Some(e) = not_a_file(&raw) {
        return Err(e);
    }
    // A file older than the archive beside it was decompressed from an
    // earlier archive (simplenn gives what it decompresses the archive's
    // time, as gzip -d does): the archive was replaced since, and is
    // decompressed again rather than its old copy used.
    let path = if raw.is_file() && !(gz.is_file() && modified(&gz) > modified(&raw)) {
        raw
    } else if let Some(c) = cached.as_ref().filter(|c| {
        c.is_file() && (!gz.is_file() || stamp_of(&gz) == fs::read_to_string(stamp_path(c)).ok())
    }) {
        c.clone()
    } else if gz.is_file() {
        fresh = true;
        // Before any place to decompress it is tried: a .gz that cannot be
        // read is no read-only directory's fault.
        drop(open_to_read(&gz)?);
        // Mirrors publish the sums of the archives: check one before
        // trusting what it decompresses to.
        if let Some(want) = expected_md5(dir, &format!("{name}.gz"))? {
            let found = md5_file(&gz)?;
            if found != want {
                return Err(IdxError::Checksum {
                    path: gz,
                    found,
                    want,
                    fix: "the archive is damaged or another file: replace it with a good copy, or fix MD5SUMS",
                });
            }
        }
        // A file by the raw name (older than the archive: see above) is
        // replaced with its permissions kept, and said, since it may be no
        // copy of an earlier archive at all. A link there is not written
        // through: its file lies elsewhere (another data set's, say).
        let older = fs::symlink_metadata(&raw).ok();
        if older.as_ref().is_some_and(|m| m.file_type().is_symlink()) {
            return Err(IdxError::LinkOlderThanArchive {
                target: crate::atomic::destination(&raw),
                path: raw,
                gz,
            });
        }
        // A package's directory (`apt-get install dataset-fashion-mnist`)
        // is no place for 50 MB of copies its package manager does not
        // know, even for root, who may write there: the cache first.
        // Why the cache could not take a package's files, which then go
        // beside their archives after all (said: they are the package
        // manager's to know of).
        let mut beside_anyway = None;
        if cache_first && older.is_none() {
            match cached
                .as_ref()
                .map(|c| (c, gunzip_into_cache(&gz, c, ndim)))
            {
                Some((c, Ok(()))) => {
                    cached_note(&gz, c, "a system directory (under /usr)");
                    return finish(dir, name, c.clone(), &gz, true);
                }
                // A cache that cannot take it (not writable, no room): the
                // archive's own directory, as for any other.
                Some((c, Err(IdxError::Io { path, error }))) if path != gz => {
                    beside_anyway = Some(format!(
                        "the cache directory {} cannot be used ({error})",
                        c.parent().unwrap_or(c).display()
                    ));
                }
                Some((c, Err(IdxError::NoRoom { want, free, .. }))) => {
                    let folder = c.parent().unwrap_or(c).display();
                    beside_anyway = Some(format!(
                        "the cache directory {folder} has {} free, {} short of the copy",
                        size(free),
                        size(want - free)
                    ));
                }
                // A bad archive (its read failed, or what it holds) is as
                // bad beside itself.
                Some((_, Err(e))) => return Err(e),
                None => {
                    beside_anyway = Some(NO_CACHE.into());
                }
            }
        }
        // A directory made read-only (`chmod a-w`) is one even for root,
        // whom its mode does not stop: its copies go where a user's would.
        let beside = match write_protected(dir) {
            true => Err(IdxError::Io {
                path: raw.clone(),
                error: io::Error::from(io::ErrorKind::PermissionDenied),
            }),
            false => gunzip_atomically(&gz, &raw, ndim),
        };
        match (beside, cached) {
            (Ok(()), _) => {
                if let Some(why) = &beside_anyway {
                    beside_note(dir, why);
                }
                if older.is_some() {
                    // `let _`: a note that cannot be written costs nothing.
                    let _ = writeln!(
                        io::stderr(),
                        "simplenn: note: {} was older than {} beside it, so the archive was decompressed in its place",
                        raw.display(),
                        gz.display()
                    );
                }
                raw
            }
            (Err(IdxError::Io { error: source, .. }), Some(c)) if read_only(&source) => {
                // A damaged archive is that, not the cache's fault.
                gunzip_into_cache(&gz, &c, ndim).map_err(|e| match archive_fault(&e, &gz) {
                    true => e,
                    false => no_cache(&gz, dir, Some(&c), e),
                })?;
                cached_note(&gz, &c, "read-only");
                c
            }
            (Err(IdxError::Io { error: source, .. }), None) if read_only(&source) => {
                return Err(no_cache(
                    &gz,
                    dir,
                    None,
                    IdxError::Io {
                        path: gz.clone(),
                        error: source,
                    },
                ))
            }
            // The cache may be on another disk; if it has no room either,
            // both shortages are named, and if it fails otherwise (not
            // writable), the data directory's shortage is what to fix.
            (
                Err(IdxError::NoRoom {
                    path,
                    dir,
                    want,
                    free,
                }),
                Some(c),
            ) => match gunzip_into_cache(&gz, &c, ndim) {
                Ok(()) => {
                    cached_note(&gz, &c, "short of room");
                    c
                }
                // A damaged archive, found by decompressing it where
                // there was room: that, not the room, is what to fix.
                Err(e) if archive_fault(&e, &gz) => return Err(e),
                Err(IdxError::NoRoom {
                    dir: cache,
                    free: cache_free,
                    ..
                }) => {
                    return Err(IdxError::NoRoomInCacheEither {
                        path,
                        dir,
                        free,
                        cache,
                        cache_free,
                        want,
                    })
                }
                Err(e) => {
                    let e = match e {
                        IdxError::Io { error, .. } => error.to_string(),
                        e => e.to_string(),
                    };
                    return Err(IdxError::NoRoomNoCache {
                        path,
                        dir,
                        want,
                        free,
                        cache: format!(
                            "the cache directory {} cannot be used either ({e})",
                            c.parent().unwrap_or(&c).display()
                        ),
                    });
                }
            },
            (
                Err(IdxError::NoRoom {
                    path,
                    dir,
                    want,
                    free,
                }),
                None,
            ) => {
                return Err(IdxError::NoRoomNoCache {
                    path,
                    dir,
                    want,
                    free,
                    cache: NO_CACHE.into(),
                })
            }
            // Room ran out while writing (inodes, a quota, a disk filled
            // by something else meanwhile): the cache, as for too little
            // room found before; its own failure leaves this one to fix.
            (Err(e @ IdxError::NoSpace { .. }), Some(c)) => {
                match gunzip_into_cache(&gz, &c, ndim) {
                    Ok(()) => {
                        cached_note(&gz, &c, "short of room");
                        c
                    }
                    Err(cached) if archive_fault(&cached, &gz) => return Err(cached),
                    Err(_) => return Err(e),
                }
            }
            (Err(e), _) => return Err(e),
        }
    } else {
        if let Some(e) = not_a_file(&gz) {
            return Err(e);
        }
        // A directory from $SIMPLENN_DATA was not typed on this command
        // line: name the variable.
        let from_env = std::env::var_os("SIMPLENN_DATA").is_some_and(|v| Path::new(&v) == dir);
        return Err(IdxError::Missing {
            path: raw,
            flag: if from_env {
                "$SIMPLENN_DATA (or --data)"
            } else {
                "--data"
            },
        });
    };
    finish(dir, name, path, &gz, fresh)
}

/// The end of [`locate_in`]: `path` (just decompressed from `gz` when
/// `fresh`) checked against `dir/MD5SUMS` where that lists `name`.
fn finish(
    dir: &Path,
    name: &str,
    path: PathBuf,
    gz: &Path,
    fresh: bool,
) -> Result<PathBuf, IdxError> {
    if let Some(want) = expected_md5(dir, name)? {
        let found = md5_file(&path)?;
        if found != want {
            if fresh {
                // A bad archive: do not leave its output to be trusted next time.
                let _ = fs::remove_file(&path);
            }
            let fix = if fresh {
                "it was just decompressed from the .gz beside it, so the .gz is damaged or another file: replace the .gz with a good copy, or fix MD5SUMS"
            } else if gz.is_file() {
                "delete it to decompress the .gz again, or fix MD5SUMS"
            } else {
                "replace it with a good copy, or fix MD5SUMS"
            };
            return Err(IdxError::Checksum {
                path,
                found,
                want,
                fix,
            });
        }
    }
    Ok(path)
}

/// Whether `dir` lies under `/usr`, where packages put their files (and a
/// data set installed by one, such as Debian's `dataset-fashion-mnist`),
/// but not under `/usr/local`, which is the machine's own (often a user's),
/// nor `/usr/src`, a common working directory in container images (the
/// official Rust image builds in `/usr/src/myapp`).
fn system_dir(dir: &Path) -> bool {
    fs::canonicalize(dir).is_ok_and(|d| {
        d.starts_with("/usr") && !d.starts_with("/usr/local") && !d.starts_with("/usr/src")
    })
}

/// Whether `dir`'s mode lets no one write to it (`chmod a-w`), which root
/// may do all the same.
fn write_protected(dir: &Path) -> bool {
    // On Unix: no write bit set in its mode.
    fs::metadata(dir).is_ok_and(|m| m.permissions().readonly())
}

/// The folders a note was said for in this run.
type Noted = std::sync::Mutex<Vec<PathBuf>>;

/// Whether `folder` is new to `noted` (then recorded): a note is said once
/// a folder and run, however many files it concerns.
fn first_time(noted: &Noted, folder: &Path) -> bool {
    let mut noted = noted.lock().unwrap_or_else(|e| e.into_inner());
    if noted.iter().any(|f| f == folder) {
        return false;
    }
    noted.push(folder.to_owned());
    true
}

/// Said once a directory: a package's `dir` got copies its package
/// manager does not know of, because the cache could not take them.
fn beside_note(dir: &Path, why: &str) {
    static NOTED: Noted = Noted::new(Vec::new());
    if !first_time(&NOTED, dir) {
        return;
    }
    // `let _`: a note that cannot be written costs nothing.
    let _ = writeln!(
        io::stderr(),
        "simplenn: note: {} is a system directory (under /usr), but {why}, so its .gz files are decompressed beside them, and later runs read the copies there: delete them once the cache works",
        dir.display()
    );
}

/// Says, once per cache folder and run, that `gz`'s directory is
/// decompressed into the cache, where, and why: a user would otherwise
/// find 50 MB in `~/.cache` and not know whose.
fn cached_note(gz: &Path, cached: &Path, why: &str) {
    static NOTED: Noted = Noted::new(Vec::new());
    let folder = cached.parent().unwrap_or(cached);
    if !first_time(&NOTED, folder) {
        return;
    }
    // `let _`: a note that cannot be written costs nothing.
    let _ = writeln!(
        io::stderr(),
        "simplenn: note: {} is {why}, so its .gz files are decompressed into the cache, {}, and reused from there until an archive changes; delete that folder to free the space",
        gz.parent().unwrap_or(gz).display(),
        folder.display()
    );
}

/// Decompress `gz` to `cached`, creating the cache directories it needs; a
/// failure leaves none of the directories it created behind, as it leaves
/// no partial file.
fn gunzip_into_cache(gz: &Path, cached: &Path, ndim: u8) -> Result<(), IdxError> {
    let Some(parent) = cached.parent() else {
        return gunzip_atomically(gz, cached, ndim);
    };
    // The missing ancestors, deepest first: what `create_dir_all` makes.
    let missing: Vec<&Path> = parent
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && fs::symlink_metadata(a).is_err())
        .collect();
    // Private to the user, as the XDG base directory spec asks of a
    // cache it creates.
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    let result = builder
        .create(parent)
        .map_err(|source| IdxError::Io {
            path: parent.to_owned(),
            error: source,
        })
        .and_then(|()| gunzip_atomically(gz, cached, ndim));
    if result.is_ok() {
        // Without it (a failed write) the copy is only decompressed again;
        // written whole or not at all, as a disk with room for the copy
        // but not for this line would otherwise leave it empty.
        if let Some(stamp) = stamp_of(gz) {
            let note = stamp_path(cached);
            if crate::atomic::write_atomic(&note, stamp.as_bytes()).is_err() {
                let _ = fs::remove_file(note);
            }
        }
    }
    if result.is_err() {
        for made in missing {
            // Only empty ones go; one that another run filled meanwhile stays.
            let _ = fs::remove_dir(made);
        }
    }
    result
}

/// Whether decompressing `gz` failed for the archive itself (it could not
/// be read, or what it holds is bad), not for the place written to.
fn archive_fault(e: &IdxError, gz: &Path) -> bool {
    match e {
        IdxError::BadArchive { .. } => true,
        IdxError::Io { path, .. } => path == gz,
        _ => false,
    }
}

fn read_only(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
    )
}

/// `$XDG_CACHE_HOME`, else `$HOME/.cache`. As the XDG spec has it, an
/// empty or relative value is no value (it would fill the working
/// directory).
fn cache_base(
    xdg: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    xdg.and_then(absolute)
        .or_else(|| home.and_then(absolute).map(|h| h.join(".cache")))
}

/// What a cached copy records of the archive it came from (length and
/// modification time), so that a replaced archive is decompressed again
/// rather than its old copy used.
fn stamp_of(gz: &Path) -> Option<String> {
    let meta = fs::metadata(gz).ok()?;
    let t = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(format!(
        "{} {}.{:09}\n",
        meta.len(),
        t.as_secs(),
        t.subsec_nanos()
    ))
}

/// Where the stamp of the cached copy `cached` is kept.
pub fn stamp_path(cached: &Path) -> PathBuf {
    cached.with_extension("source")
}

/// The data directory `dir` is read-only, and the cache failed too with
/// `e` (or there is none): say both, and the ways out. Not an I/O error
/// (no room, a bad archive): `e` as it is.
fn no_cache(gz: &Path, dir: &Path, cache: Option<&Path>, e: IdxError) -> IdxError {
    let IdxError::Io { error, .. } = e else {
        return e;
    };
    let cache = match cache.and_then(Path::parent) {
        Some(c) => format!(
            "the cache directory {} cannot be used either ({error})",
            c.display()
        ),
        None => NO_CACHE.into(),
    };
    IdxError::NoPlace {
        path: gz.to_owned(),
        dir: dir.to_owned(),
        cache,
    }
}

/// Why no cache can take a data directory's copies, where there is none.
const NO_CACHE: &str = "there is no cache directory ($XDG_CACHE_HOME and $HOME unset or not absolute paths, or $HOME not an existing directory)";

/// Where files decompressed from a read-only, full or package's `dir` go:
/// `$XDG_CACHE_HOME/simplenn/<hash of dir>/` (or `~/.cache/...`); `None`
/// where there is no cache directory, or `dir` does not exist.
pub fn cache_dir(dir: &Path) -> Option<PathBuf> {
    // A home that does not exist is not made, as `~/.cache` below it would
    // make it (`HOME=/nonexistent` in a service's environment).
    let home = std::env::var_os("HOME").filter(|h| Path::new(h).is_dir());
    let base = cache_base(std::env::var_os("XDG_CACHE_HOME"), home)?;
    cache_dir_under(&base, dir)
}

/// [`cache_dir`] with the cache's base directory given (`$XDG_CACHE_HOME`).
pub fn cache_dir_under(base: &Path, dir: &Path) -> Option<PathBuf> {
    let abs = fs::canonicalize(dir).ok()?;
    // FNV-1a: stable across runs and platforms, unlike std's hasher.
    let hash = abs
        .to_string_lossy()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        });
    Some(base.join("simplenn").join(format!("{hash:016x}")))
}

/// Decompress `gz` to `out` through a temporary file in the same directory,
/// renamed into place only when complete, so an interrupted run never leaves
/// a half-written IDX file behind, and only when it is an IDX file of `ndim`
/// dimensions as long as its header says.
fn gunzip_atomically(gz: &Path, out: &Path, ndim: u8) -> Result<(), IdxError> {
    // Unique per process and call: two loaders racing on one directory each
    // write their own file, and the renames leave one complete copy. A
    // name another process holds (one of the same id in another PID
    // namespace) is passed over for the next number.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let next = || {
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        out.with_extension(format!("tmp{}-{call}", std::process::id()))
    };
    // The first name tried: the one an error names where none is created.
    let mut tmp = next();
    let names = std::iter::once(tmp.clone()).chain(std::iter::repeat_with(next));
    // The directory written in (`.` for a bare name).
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // Those a run killed outright left (they may be tens of megabytes).
    if let Some(prefix) = out.with_extension("tmp").file_name() {
        crate::atomic::remove_stale(dir, &prefix.to_string_lossy());
    }
    let result = (|| -> Result<(), IdxError> {
        let input = File::open(gz).map_err(|source| IdxError::Io {
            path: gz.to_owned(),
            error: source,
        })?;
        let gz_len = input.metadata().map_or(u64::MAX, |m| m.len());
        let mut input = io::BufReader::new(input);
        // An uncompressed IDX file under the archive's name (the reverse of
        // gzip data under the raw name, which the IDX check names): said
        // as such, not as a damaged archive to replace.
        if let Ok(head) = io::BufRead::fill_buf(&mut input) {
            if head.len() >= 4 && head[..3] == [0, 0, 0x08] {
                return Err(IdxError::Io {
                    path: gz.to_owned(),
                    error: io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "not gzip data but an uncompressed IDX file (it begins 00 00 08 {:02x}): remove .gz from its name",
                            head[3]
                        ),
                    ),
                });
            }
        }
        let mut dec = GzMembers::new(input);
        // Listed while it exists: a second Ctrl-C removes it (atomic.rs).
        let (file, temp) = crate::atomic::TempFile::create_new(names.take(100)).map_err(|source| IdxError::Io {
            path: tmp.clone(),
            error: match read_only(&source) {
                true => io::Error::new(
                    source.kind(),
                    format!("cannot write the decompressed file ({source}); is the data directory writable?"),
                ),
                false => source,
            },
        })?;
        tmp = temp.path().to_owned();
        let mut w = BufWriter::new(file);
        // The header comes first: it says how long the file must be, so a
        // small archive of a huge stream (or of the wrong file) is caught
        // after one byte too many rather than after filling the disk.
        let need = 4 + 4 * ndim as u64;
        let mut head = Vec::with_capacity(need as usize);
        let mut copied = (&mut dec)
            .take(need)
            .read_to_end(&mut head)
            .map(|n| n as u64);
        let promised = promised_len(&head, ndim);
        if let Some(want) = promised {
            // Before writing: a damaged header, then a disk without room,
            // are refused now rather than after filling the disk.
            let gz_len = gz_len.saturating_sub(GZIP_MIN_OVERHEAD);
            if want > gz_len.saturating_mul(MAX_INFLATE) {
                return Err(IdxError::BadArchive {
                    path: gz.to_owned(),
                    problem: IdxProblem::MoreThanArchiveHolds {
                        want,
                        gz_len: gz_len + GZIP_MIN_OVERHEAD,
                    },
                });
            }
            if let Some(free) = free_bytes(w.get_ref(), dir).filter(|&free| want > free) {
                return Err(IdxError::NoRoom {
                    path: gz.to_owned(),
                    dir: dir.to_owned(),
                    want,
                    free,
                });
            }
        }
        if let (Ok(_), Some(want)) = (&copied, promised) {
            let body = w.write_all(&head).and_then(|()| {
                io::copy(
                    &mut (&mut dec).take((want - need).saturating_add(1)),
                    &mut w,
                )
            });
            copied = body.map(|n| need + n);
        } else {
            // Not an IDX header (or a short stream): write what there is,
            // for the checks below to name.
            copied = copied.and_then(|n| w.write_all(&head).map(|()| n));
        }
        let file = w.into_inner().map_err(|e| IdxError::Io {
            path: tmp.clone(),
            error: e.into_error(),
        })?;
        // The archive's time, as gzip -d gives it: a copy older than the
        // archive beside it is then one from an archive replaced since.
        if let Some(t) = modified(gz) {
            let _ = file.set_modified(t);
        }
        // A file replaced keeps its permissions (best effort, as a save's).
        if let Ok(old) = fs::metadata(out) {
            let _ = file.set_permissions(old.permissions());
        }
        let written = file.sync_all().and_then(|()| file.metadata());
        let written = written.map_err(|source| IdxError::Io {
            path: tmp.clone(),
            error: source,
        })?;
        let len = usize::try_from(written.len()).unwrap_or(usize::MAX);
        match (copied, parse_header_of_len(&head, len, ndim)) {
            (Ok(_), Ok(_)) => {}
            // A write's failure (the disk filled), not the archive's.
            (Err(source), _) if out_of_room(&source) => {
                return Err(IdxError::Io {
                    path: tmp.clone(),
                    error: source,
                })
            }
            // A checksum that does not match, a cut-short member, or bad
            // deflate data: even where the output came out as long as its
            // header says, some of its bytes are wrong.
            (Err(source), _) => {
                return Err(IdxError::Io {
                    path: gz.to_owned(),
                    error: io::Error::new(
                        source.kind(),
                        format!("bad gzip data ({source}): the archive is damaged; replace it with a good copy"),
                    ),
                })
            }
            (Ok(_), Err(problem)) => {
                // Stopped one byte past the promise: the stream goes on.
                let problem = match promised {
                    Some(want) if written.len() > want => IdxProblem::LongerThanPromised { want },
                    _ => problem,
                };
                return Err(IdxError::BadArchive {
                    path: gz.to_owned(),
                    problem,
                });
            }
        }
        temp.renamed(out).map_err(|source| IdxError::Io {
            path: out.to_owned(),
            error: source,
        })
    })();
    // On an error the temporary file was removed when `temp` dropped. A
    // disk that filled up while writing (or ran out of inodes, or a quota
    // or a file-size limit) is named as such, with the directory, not the
    // temporary file that is gone: the caller may try the cache.
    result.map_err(|e| match e {
        IdxError::Io { error, .. } if out_of_room(&error) => IdxError::NoSpace {
            path: gz.to_owned(),
            dir: dir.to_owned(),
            error,
        },
        e => e,
    })
}

/// What to do about a write that failed for want of room ([`out_of_room`]).
fn room_fix(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::FileTooLarge => "raise the file-size limit (ulimit -f), or decompress it elsewhere and point --data at that",
        _ => "make room there, or decompress it onto a disk with room and point --data at that",
    }
}

/// Whether a write failed for want of room: no space or inodes left
/// (ENOSPC), a quota (EDQUOT), a file-size limit (EFBIG, `ulimit -f`).
/// Reading an archive never fails so.
fn out_of_room(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge
    )
}

/// The members of a gzip file decompressed one after another, as `gzip -d`
/// reads them: `cat a.gz b.gz` is one valid gzip file (RFC 1952). Each
/// member is checked against its trailer's CRC-32 and length when it ends,
/// so a damaged member is an error even where it inflates to the right
/// number of bytes. Zero bytes after the last member (padding some tools
/// write) end the stream, as `gzip -d` ignores them; any other bytes there
/// are an error: `gzip -d` warns of "trailing garbage" and exits 2, and a
/// data set is better refused than trained on from a file that is not what
/// its maker wrote.
struct GzMembers<R: io::BufRead> {
    member: Option<flate2::bufread::GzDecoder<R>>,
}

impl<R: io::BufRead> GzMembers<R> {
    fn new(r: R) -> Self {
        GzMembers {
            member: Some(flate2::bufread::GzDecoder::new(r)),
        }
    }
}

impl<R: io::BufRead> Read for GzMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(member) = &mut self.member {
            let n = member.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // This member ended, its checksum matched: another one follows
            // where the next byte is gzip's first magic byte.
            let Some(ended) = self.member.take() else {
                break;
            };
            let mut r = ended.into_inner();
            if r.fill_buf()?.first() == Some(&0x1f) {
                self.member = Some(flate2::bufread::GzDecoder::new(r));
            } else {
                trailing_zeros(r)?;
            }
        }
        Ok(0)
    }
}

/// Read `r` to its end: Ok where every byte left is zero, else the error
/// that says how many bytes follow the gzip data.
fn trailing_zeros(mut r: impl io::BufRead) -> io::Result<()> {
    let (mut left, mut garbage) = (0u64, false);
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        garbage |= buf.iter().any(|&b| b != 0);
        let n = buf.len();
        left += n as u64;
        r.consume(n);
    }
    if garbage {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{left} byte{} after the end of the compressed data {} not gzip data",
                if left == 1 { "" } else { "s" },
                if left == 1 { "is" } else { "are" }
            ),
        ));
    }
    Ok(())
}

/// When `path` was last modified, where that can be told.
fn modified(path: &Path) -> Option<std::time::SystemTime> {
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

/// The fewest bytes of a gzip member that are not deflate data: a 10-byte
/// header and an 8-byte trailer (RFC 1952).
const GZIP_MIN_OVERHEAD: u64 = 18;

/// Bytes an unprivileged writer may still add to the file system of `file`
/// (in `dir`); `None` where that cannot be told (the write then finds out).
fn free_bytes(file: &File, dir: &Path) -> Option<u64> {
    #[cfg(test)]
    if let Some(free) = tests::FREE.with(|f| f.get()) {
        let only = tests::FREE_ONLY_IN.with(|d| d.borrow().clone());
        if only.is_none_or(|d| d == dir) {
            return Some(free);
        }
    }
    let _ = dir;
    #[cfg(unix)]
    {
        let st = rustix::fs::fstatvfs(file).ok()?;
        Some(st.f_bavail.saturating_mul(st.f_frsize))
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        None
    }
}

/// The longest checksum list read: some ten thousand files' lines.
const MAX_SUMS: u64 = 1 << 20;

/// The MD5 that `dir/MD5SUMS` lists for `name`, if the file and the line
/// exist. Lines are GNU `md5sum`'s (`SUM  NAME`, `SUM *NAME`) or BSD's and
/// `md5sum --tag`'s (`MD5 (NAME) = SUM`); blank lines and `#` comments are
/// skipped. A line in neither form, or two lines giving one file different
/// sums, make the file an error: a list that cannot be read checks nothing,
/// and passing it silently would claim a check that never happened.
fn expected_md5(dir: &Path, name: &str) -> Result<Option<String>, IdxError> {
    let path = dir.join("MD5SUMS");
    let refuse = |kind: io::ErrorKind, why: String| IdxError::Io {
        path: path.clone(),
        error: io::Error::new(kind, format!("{why}; fix MD5SUMS or remove it")),
    };
    // A limit reached (ulimit -n) is not the list's fault: the error keeps
    // its OS code, for the message to name the limit and not the file.
    let unread = |source: io::Error| match crate::error::resource_fix(&source) {
        Some(_) => IdxError::Io {
            path: path.clone(),
            error: source,
        },
        None => refuse(
            source.kind(),
            format!("cannot read the checksums ({source})"),
        ),
    };
    // Looked at before it is opened: a pipe would block the open, and a
    // device (a link to /dev/zero) never ends.
    match fs::metadata(&path) {
        Ok(meta) if meta.is_file() && meta.len() > MAX_SUMS => {
            return Err(refuse(
                io::ErrorKind::InvalidData,
                format!(
                    "{} bytes, more than a checksum list holds (at most {MAX_SUMS})",
                    meta.len()
                ),
            ))
        }
        Ok(meta) if !meta.is_file() => {
            let what = match meta.is_dir() {
                true => "a directory",
                false => "not a regular file (a pipe or a device)",
            };
            return Err(refuse(
                io::ErrorKind::InvalidInput,
                format!("{what}, not a checksum list"),
            ));
        }
        Ok(_) => {}
        // A link that leads nowhere names a list that is not there: not
        // the same as no list (which checks nothing, by choice).
        Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::symlink_metadata(&path) {
            Ok(_) => {
                return Err(refuse(
                    io::ErrorKind::NotFound,
                    "a link to a file that does not exist".into(),
                ))
            }
            Err(_) => return Ok(None),
        },
        Err(source) => return Err(unread(source)),
    }
    let mut text = String::new();
    let read = fs::File::open(&path).and_then(|f| f.take(MAX_SUMS + 1).read_to_string(&mut text));
    match read {
        Ok(n) if n as u64 > MAX_SUMS => {
            return Err(refuse(
                io::ErrorKind::InvalidData,
                format!("more than {MAX_SUMS} bytes, more than a checksum list holds"),
            ))
        }
        Ok(_) => {}
        Err(source) => return Err(unread(source)),
    }
    let mut found: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |problem: String| IdxError::BadSums {
            path: path.clone(),
            line: i + 1,
            problem,
        };
        let (sum, file) = md5_line(line).ok_or_else(|| {
            bad("is neither `MD5  FILE` (md5sum) nor `MD5 (FILE) = MD5` (md5sum --tag)".into())
        })?;
        if file.strip_prefix("./").unwrap_or(file) != name {
            continue;
        }
        let sum = sum.to_ascii_lowercase();
        match &found {
            Some((first, s)) if *s != sum => {
                return Err(bad(format!(
                    "gives {name} another MD5 than line {first} does"
                )))
            }
            Some(_) => {}
            None => found = Some((i + 1, sum)),
        }
    }
    Ok(found.map(|(_, sum)| sum))
}

/// `(sum, file)` of one line of a checksum list, in either form
/// [`expected_md5`] reads; `None` for anything else.
fn md5_line(line: &str) -> Option<(&str, &str)> {
    let is_md5 = |s: &str| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(rest) = line.strip_prefix("MD5 (") {
        let (file, sum) = rest.rsplit_once(") = ")?;
        return is_md5(sum.trim()).then_some((sum.trim(), file));
    }
    let (sum, file) = line.split_once(char::is_whitespace)?;
    let file = file.trim_start();
    let file = file.strip_prefix('*').unwrap_or(file);
    (is_md5(sum) && !file.is_empty()).then_some((sum, file))
}

fn md5_file(path: &Path) -> Result<String, IdxError> {
    use md5::{Digest, Md5};
    let io = |source| IdxError::Io {
        path: path.to_owned(),
        error: source,
    };
    let mut f = open_to_read(path)?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Write a `u8` IDX file with the given dimensions (for tests and tools).
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
    let dir = path.parent().unwrap_or(Path::new(""));
    let (file, temp) = crate::atomic::TempFile::create_new(crate::atomic::tmp_names(dir, path))?;
    let mut w = BufWriter::new(file);
    w.write_all(&[0, 0, 8, dims.len() as u8])?;
    for d in dims {
        w.write_all(&d.to_be_bytes())?;
    }
    w.write_all(data)?;
    w.into_inner().map_err(|e| e.into_error())?;
    // An error above drops `temp`, which removes the file.
    temp.renamed(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A data file's path through a file (reached through the library:
    /// the binary finds the data directory at fault first).
    #[test]
    fn a_path_through_a_file_is_explained() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        let e = IdxFile::open(&f.join("x"), 3).err().unwrap().to_string();
        assert!(
            e.contains("its path goes through a file as if it were a directory"),
            "{e}"
        );
        assert!(!e.contains("os error"), "{e}");
    }

    thread_local! {
        /// The free space `free_bytes` reports on this thread, where set
        /// (for files in `FREE_ONLY_IN` alone, where that is set).
        pub(super) static FREE: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
        pub(super) static FREE_ONLY_IN: std::cell::RefCell<Option<PathBuf>> = const { std::cell::RefCell::new(None) };
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    /// The files in `dir`, by name.
    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// A file of a file system that cannot be memory-mapped (sysfs: ENODEV)
    /// is said to be one, with the fix, not as "No such device" alone.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_that_cannot_be_mapped_says_so() {
        let sysfs = [
            "/sys/kernel/mm/transparent_hugepage/enabled",
            "/sys/power/state",
            "/sys/kernel/profiling",
        ];
        let Some(p) = sysfs.iter().map(Path::new).find(|p| p.is_file()) else {
            // Straight to stderr, past the test harness's capture.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "*** SKIPPED: idx::tests::a_file_that_cannot_be_mapped_says_so: none of {sysfs:?} is here ***"
            );
            return;
        };
        let e = IdxFile::open(p, 1).err().unwrap().to_string();
        assert!(
            e.contains("cannot be memory-mapped (")
                && e.ends_with("put an ordinary copy of it in its place"),
            "{e}"
        );
    }

    /// Packages' directories take the cache first; others do not.
    #[test]
    fn system_dirs_are_under_usr() {
        assert!(system_dir(Path::new("/usr")));
        assert!(system_dir(Path::new("/usr/share/../share")));
        let d = tempfile::tempdir().unwrap();
        assert!(!system_dir(d.path()));
        assert!(!system_dir(Path::new("/nonexistent/usr")));
        for own in ["/usr/local", "/usr/src"] {
            if Path::new(own).is_dir() {
                assert!(!system_dir(Path::new(own)), "{own}");
            }
        }
    }

    /// A temporary tree: `data/x.gz` holding `whole`, a 3 × 4 × 4 IDX file,
    /// and the cache folder it would go to (`cache/simplenn/h`, not made).
    fn archive_beside_cache() -> (tempfile::TempDir, PathBuf, PathBuf, Vec<u8>) {
        let t = tempfile::tempdir().unwrap();
        let (data, cache) = (t.path().join("data"), t.path().join("cache/simplenn/h"));
        fs::create_dir(&data).unwrap();
        let whole = file(&[3, 4, 4], 48);
        fs::write(data.join("x.gz"), gzip(&whole)).unwrap();
        (t, data, cache, whole)
    }

    /// A package's directory (`cache_first`) has its archives decompressed
    /// into the cache, never beside them, and found there next time; beside
    /// them only when the cache cannot be written; a bad archive is its
    /// error, with nothing written anywhere.
    #[test]
    fn a_packages_directory_decompresses_into_the_cache_first() {
        let (t, data, cache, whole) = archive_beside_cache();
        let cached = Some(cache.join("x"));
        let got = locate_in(&data, "x", 3, cached.clone(), true).unwrap();
        assert_eq!(got, cache.join("x"));
        assert_eq!(fs::read(&got).unwrap(), whole);
        assert_eq!(names(&data), ["x.gz"]);
        assert_eq!(locate_in(&data, "x", 3, cached, true).unwrap(), got);
        // A cache that cannot be written: beside the archive after all.
        let blocked = t.path().join("blocked");
        fs::write(&blocked, b"").unwrap();
        fs::write(data.join("w.gz"), gzip(&whole)).unwrap();
        let got = locate_in(&data, "w", 3, Some(blocked.join("h/w")), true).unwrap();
        assert_eq!(got, data.join("w"));
        // A damaged archive: its error, nothing written anywhere.
        fs::write(data.join("v.gz"), &gzip(&whole)[..20]).unwrap();
        let e = locate_in(&data, "v", 3, Some(cache.join("v")), true).unwrap_err();
        assert!(e.to_string().contains("the archive is damaged"), "{e}");
        assert!(!data.join("v").exists() && !cache.join("v").exists());
    }

    /// A data directory made read-only (`chmod 555`) gets no copies even
    /// where the user may write there all the same (root): they go to the
    /// cache, and without one the error says the directory is read-only.
    /// A damaged archive there is its own error, not the cache's (it read
    /// "the cache directory … cannot be used either", whose fix could not
    /// help).
    #[cfg(unix)]
    #[test]
    fn a_write_protected_directory_is_read_only_even_for_root() {
        use std::os::unix::fs::PermissionsExt;
        let (_t, data, cache, whole) = archive_beside_cache();
        let mut bad = gzip(&whole);
        let crc = bad.len() - 8;
        bad[crc] ^= 0xff;
        fs::write(data.join("v.gz"), &bad).unwrap();
        fs::set_permissions(&data, fs::Permissions::from_mode(0o555)).unwrap();
        let got = locate_in(&data, "x", 3, Some(cache.join("x")), false);
        let none = locate_in(&data, "x", 3, None, false).map_err(|e| e.to_string());
        let damaged =
            locate_in(&data, "v", 3, Some(cache.join("v")), false).map_err(|e| e.to_string());
        fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(got.unwrap(), cache.join("x"));
        assert_eq!(fs::read(cache.join("x")).unwrap(), whole);
        assert_eq!(names(&data), ["v.gz", "x.gz"]);
        let e = none.unwrap_err();
        assert!(e.contains("is read-only"), "{e}");
        let e = damaged.unwrap_err();
        assert!(
            e.contains("the archive is damaged") && !e.contains("cache"),
            "{e}"
        );
        assert!(!cache.join("v").exists());
    }

    #[test]
    fn gunzip_refuses_before_writing_what_cannot_fit() {
        let t = tempfile::tempdir().unwrap();
        let (gz, out) = (t.path().join("x.gz"), t.path().join("x"));
        // 3 images of 4 x 4: a 16-byte header and 48 bytes of pixels.
        let whole = file(&[3, 4, 4], 48);
        fs::write(&gz, gzip(&whole)).unwrap();

        FREE.with(|f| f.set(Some(63)));
        let e = gunzip_atomically(&gz, &out, 3).unwrap_err();
        FREE.with(|f| f.set(None));
        assert!(
            matches!(&e, IdxError::NoRoom { want: 64, free: 63, dir, .. } if dir == t.path()),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("decompresses to 64 bytes (its header says), but ")
                && e.to_string().contains("has 63 bytes free; make room there"),
            "{e}"
        );
        assert_eq!(
            (size(7_840_016), size(12_400_000_000)),
            ("7.8 MB".into(), "12.40 GB".into())
        );
        // A labels file, or a disk all but full, in bytes, not "0.0 MB".
        assert_eq!(
            (size(1), size(10_008), size(99_999), size(100_000)),
            (
                "1 byte".into(),
                "10008 bytes".into(),
                "99999 bytes".into(),
                "0.1 MB".into()
            )
        );
        assert_eq!(names(t.path()), ["x.gz"], "nothing written");

        FREE.with(|f| f.set(Some(64)));
        gunzip_atomically(&gz, &out, 3).unwrap();
        FREE.with(|f| f.set(None));
        assert_eq!(fs::read(&out).unwrap(), whole);
        // The real figure, where the system tells it, is some free space.
        #[cfg(unix)]
        assert!(free_bytes(&File::open(&out).unwrap(), t.path()).is_some_and(|b| b > 0));
    }

    #[test]
    fn a_data_directory_without_room_decompresses_into_the_cache() {
        let (t, data, cache, whole) = archive_beside_cache();
        let cached = Some(cache.join("x"));
        let set = |free: Option<u64>, only: Option<&Path>| {
            FREE.with(|f| f.set(free));
            FREE_ONLY_IN.with(|d| *d.borrow_mut() = only.map(Path::to_owned));
        };

        // No room anywhere: both shortages are named, and neither place
        // keeps a byte.
        set(Some(63), None);
        let e = locate_in(&data, "x", 3, cached.clone(), false).unwrap_err();
        set(None, None);
        assert!(
            matches!(&e, IdxError::NoRoomInCacheEither { want: 64, free: 63, dir, cache: c, cache_free: 63, .. }
                if *dir == data && *c == cache),
            "{e}"
        );
        assert!(
            e.to_string().contains(&format!(
                "has 63 bytes free and the cache directory {} has 63 bytes; make room in either",
                cache.display()
            )),
            "{e}"
        );
        assert_eq!(names(&data), ["x.gz"]);
        // Nor a directory: the cache's tree is taken away again.
        assert!(!t.path().join("cache").exists());

        // Room in the cache only: the file goes there, whole.
        set(Some(63), Some(&data));
        let got = locate_in(&data, "x", 3, cached.clone(), false);
        set(None, None);
        assert_eq!(got.unwrap(), cache.join("x"));
        assert_eq!(fs::read(cache.join("x")).unwrap(), whole);
        assert_eq!(names(&data), ["x.gz"]);
        // And is found there next time, with no decompression.
        assert_eq!(
            locate_in(&data, "x", 3, cached.clone(), false).unwrap(),
            cache.join("x")
        );
        // A replaced archive is decompressed again, not its old copy used.
        let other = file(&[2, 4, 4], 32);
        fs::write(data.join("x.gz"), gzip(&other)).unwrap();
        set(Some(10), Some(&data));
        let got = locate_in(&data, "x", 3, cached.clone(), false);
        set(None, None);
        assert_eq!(got.unwrap(), cache.join("x"));
        assert_eq!(fs::read(cache.join("x")).unwrap(), other);
        // Its copy, without the archive, is still what there is.
        fs::remove_file(data.join("x.gz")).unwrap();
        assert_eq!(
            locate_in(&data, "x", 3, cached, false).unwrap(),
            cache.join("x")
        );

        // A cache that cannot be written (here: a file where its directory
        // goes): the data directory's shortage and the cache's failure.
        let blocked = t.path().join("blocked");
        fs::write(&blocked, b"").unwrap();
        fs::write(data.join("w.gz"), gzip(&whole)).unwrap();
        set(Some(63), Some(&data));
        let e = locate_in(&data, "w", 3, Some(blocked.join("h/w")), false).unwrap_err();
        set(None, None);
        assert!(
            matches!(&e, IdxError::NoRoomNoCache { free: 63, dir, .. } if *dir == data),
            "{e}"
        );
        let e = e.to_string();
        assert!(
            e.contains(&format!(
                "has 63 bytes free, and the cache directory {} cannot be used either",
                blocked.join("h").display()
            )),
            "{e}"
        );

        // A damaged archive, found out in the cache that had room, is
        // named as damaged: more room would not help.
        let mut cut = gzip(&whole);
        cut.truncate(cut.len() - 6);
        fs::write(data.join("v.gz"), &cut).unwrap();
        set(Some(63), Some(&data));
        let e = locate_in(&data, "v", 3, Some(cache.join("v")), false).unwrap_err();
        set(None, None);
        assert!(
            matches!(&e, IdxError::Io { path, .. } if *path == data.join("v.gz"))
                && e.to_string()
                    .contains("the archive is damaged; replace it with a good copy"),
            "{e}"
        );
        assert!(!cache.join("v").exists());

        // Without a cache directory ($HOME unset), no room is an error
        // that says there is none.
        let e = locate_in(&data, "y", 3, None, false);
        assert!(matches!(e, Err(IdxError::Missing { .. })), "{e:?}");
        fs::write(data.join("z.gz"), gzip(&whole)).unwrap();
        set(Some(63), None);
        let e = locate_in(&data, "z", 3, None, false).unwrap_err();
        set(None, None);
        assert!(
            matches!(
                &e,
                IdxError::NoRoomNoCache {
                    want: 64,
                    free: 63,
                    ..
                }
            ),
            "{e}"
        );
        let e = e.to_string();
        assert!(
            e.contains("has 63 bytes free, and there is no cache directory"),
            "{e}"
        );
        assert!(e.contains("make room there, set XDG_CACHE_HOME"), "{e}");
    }

    /// The cache's base: `$XDG_CACHE_HOME`, else `$HOME/.cache`, each only
    /// when an absolute path.
    #[test]
    fn the_cache_is_under_an_absolute_xdg_cache_home_or_home() {
        let os = |s: &str| Some(std::ffi::OsString::from(s));
        let base = |x, h| cache_base(x, h).map(|p| p.display().to_string());
        assert_eq!(base(os("/x"), os("/h")), Some("/x".into()));
        assert_eq!(base(os(""), os("/h")), Some("/h/.cache".into()));
        assert_eq!(base(os("rel"), os("/h")), Some("/h/.cache".into()));
        assert_eq!(base(None, os("/h")), Some("/h/.cache".into()));
        assert_eq!(base(os(""), os("")), None);
        assert_eq!(base(None, os("home")), None);
    }

    /// A read-only data directory whose cache fails too, or that has none,
    /// names both and the ways out; other failures pass as they are.
    #[test]
    fn no_place_to_decompress_names_both_places_and_the_fixes() {
        let io = || IdxError::Io {
            path: PathBuf::from("/c/simplenn/h/x.tmp1-0"),
            error: io::Error::new(io::ErrorKind::PermissionDenied, "denied"),
        };
        let (gz, dir) = (Path::new("/d/x.gz"), Path::new("/d"));
        let e = no_cache(gz, dir, Some(Path::new("/c/simplenn/h/x")), io()).to_string();
        assert!(e.starts_with("/d/x.gz cannot be decompressed: /d is read-only, and the cache directory /c/simplenn/h cannot be used either (denied)"), "{e}");
        assert!(
            e.contains("set XDG_CACHE_HOME to a writable directory"),
            "{e}"
        );
        let e = no_cache(gz, dir, None, io()).to_string();
        assert!(e.contains("there is no cache directory"), "{e}");
        let bad = IdxError::Empty {
            path: gz.to_owned(),
        };
        assert!(matches!(
            no_cache(gz, dir, None, bad),
            IdxError::Empty { .. }
        ));
    }

    #[test]
    fn gunzip_refuses_a_header_the_archive_cannot_hold() {
        let t = tempfile::tempdir().unwrap();
        let (gz, out) = (t.path().join("x.gz"), t.path().join("x"));
        // 1000 zero images of 100 x 100: 10 MB of zeros deflate to about
        // 10 KB; cut to 2 KB, the archive cannot hold the header's promise.
        let mut whole = file(&[1000, 100, 100], 0);
        whole.resize(16 + 10_000_000, 0);
        let packed = gzip(&whole);
        let want = 10_000_016u64;
        assert!(
            packed.len() as u64 * MAX_INFLATE >= want,
            "the whole archive could"
        );
        fs::write(&gz, &packed[..2000]).unwrap();
        let e = gunzip_atomically(&gz, &out, 3).unwrap_err();
        assert!(
            matches!(
                &e,
                IdxError::BadArchive {
                    problem: IdxProblem::MoreThanArchiveHolds {
                        want: 10_000_016,
                        gz_len: 2000
                    },
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(names(t.path()), ["x.gz"], "nothing written");
        // Whole, it decompresses.
        fs::write(&gz, &packed).unwrap();
        gunzip_atomically(&gz, &out, 3).unwrap();
        assert_eq!(fs::metadata(&out).unwrap().len(), want);
    }

    /// A raw IDX file under the archive's name is said to be one; a file of
    /// the wrong kind inside an archive gets one fix, its own.
    #[test]
    fn an_archive_that_is_no_archive_or_holds_another_kind_says_what_to_do() {
        let t = tempfile::tempdir().unwrap();
        let (gz, out) = (t.path().join("x.gz"), t.path().join("x"));
        fs::write(&gz, file(&[2, 4, 4], 32)).unwrap();
        let e = gunzip_atomically(&gz, &out, 3).unwrap_err().to_string();
        assert!(
            e.ends_with("not gzip data but an uncompressed IDX file (it begins 00 00 08 03): remove .gz from its name"),
            "{e}"
        );
        fs::write(&gz, gzip(&file(&[2, 4, 4, 3], 96))).unwrap();
        let e = gunzip_atomically(&gz, &out, 3).unwrap_err().to_string();
        assert!(
            e.ends_with("decompresses to no usable IDX file: IDX header says 4 dimensions, expected 3 (images x rows x columns); simplenn reads one 8-bit channel per pixel, images x rows x columns: convert it to that, or point --data at the right files"),
            "{e}"
        );
        let mut floats = file(&[2], 8);
        floats[2] = 0x0d;
        fs::write(&gz, gzip(&floats)).unwrap();
        let e = gunzip_atomically(&gz, &out, 1).unwrap_err().to_string();
        assert!(
            e.ends_with("(type 0x0d, not 0x08); simplenn reads 8-bit pixels and labels: convert it to unsigned bytes"),
            "{e}"
        );
        fs::write(&gz, gzip(&gzip(&file(&[2], 2)))).unwrap();
        let e = gunzip_atomically(&gz, &out, 1).unwrap_err().to_string();
        assert!(
            e.ends_with("but gzip data; it holds gzip data inside gzip data: decompress it once (gzip -d), then add .gz to the name of what that gives"),
            "{e}"
        );
        assert_eq!(names(t.path()), ["x.gz"], "nothing written");
    }

    fn file(dims: &[u32], body: usize) -> Vec<u8> {
        let mut v = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.resize(v.len() + body, 7);
        v
    }

    #[test]
    fn good_header() {
        let f = file(&[2, 3, 4], 24);
        let h = parse_header(&f, 3).unwrap();
        assert_eq!(h.dims, vec![2, 3, 4]);
        assert_eq!(h.data_offset, 16);
    }

    #[test]
    fn rejects_bad_files() {
        assert!(matches!(
            parse_header(&[], 3),
            Err(IdxProblem::TooShort { .. })
        ));
        assert!(matches!(
            parse_header(&file(&[2, 3, 4], 24)[..10], 3),
            Err(IdxProblem::TooShort { .. })
        ));
        assert!(matches!(
            parse_header(&file(&[2, 3, 4], 23), 3),
            Err(IdxProblem::Length { .. })
        ));
        assert!(matches!(
            parse_header(&file(&[5], 5), 3),
            Err(IdxProblem::DimCount { found: 1, want: 3 })
        ));
        let mut f = file(&[5], 5);
        f[2] = 0x0d; // float data
        assert_eq!(
            parse_header(&f, 1),
            Err(IdxProblem::ElementType { code: 0x0d })
        );
        f[2] = 0x0a; // no IDX type
        assert!(matches!(
            parse_header(&f, 1),
            Err(IdxProblem::BadMagic { .. })
        ));
        // A header claiming 2^32-1 cubed must be rejected without allocating.
        assert!(matches!(
            parse_header(&file(&[u32::MAX, u32::MAX, u32::MAX], 3), 3),
            Err(IdxProblem::Length { .. })
        ));
    }
}
