//! Decompression to a temporary file renamed into place: refused before
//! writing where the archive cannot fit or is damaged.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use super::locate::read_only;
use super::{modified, parse_header_of_len, promised_len, IdxError, IdxProblem, MAX_INFLATE};

/// Decompress `gz` to `out` through a temporary file in the same directory,
/// renamed into place only when complete, so an interrupted run never leaves
/// a half-written IDX file behind, and only when it is an IDX file of `ndim`
/// dimensions as long as its header says.
pub(super) fn gunzip_atomically(gz: &Path, out: &Path, ndim: u8) -> Result<(), IdxError> {
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
        let unwritable = |source: io::Error| {
            let path = tmp.clone();
            // Its name past the system's limit, where the archive's is not.
            if let Some(why) = crate::error::path_fault(&source, &tmp) {
                return IdxError::BadPath {
                    what: "",
                    path,
                    why,
                };
            }
            let error = match read_only(&source) {
                true => io::Error::new(
                    source.kind(),
                    format!("cannot write the decompressed file ({source}); is the data directory writable?"),
                ),
                false => source,
            };
            IdxError::Io { path, error }
        };
        // Listed while it exists: a second Ctrl-C removes it (atomic/mod.rs).
        let (file, temp) =
            crate::atomic::TempFile::create_new(names.take(100)).map_err(unwritable)?;
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
            // A header that counts no images or labels, or images of no
            // pixels: sound IDX, but nothing a data set can use. Refused
            // before it is put in place, as `Dataset::open` refuses such a
            // file, the archive named.
            (Ok(_), Ok(h)) if h.dims.contains(&0) => {
                let path = gz.to_owned();
                let want = match ndim {
                    3 if h.dims[0] == 0 => return Err(IdxError::Empty { path }),
                    3 => "[N, rows, cols] with rows, cols ≥ 1",
                    _ => "[N] with N ≥ 1 (one label per image)",
                };
                let problem = IdxProblem::BadDims {
                    found: h.dims,
                    want: want.into(),
                };
                return Err(IdxError::Invalid { path, problem });
            }
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
pub(super) fn room_fix(e: &io::Error) -> &'static str {
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

/// The length `gz` decompresses to where that is not `len`, the length of
/// the file beside it taken for its copy: `Some(Ok(n))` for `n` bytes,
/// `Some(Err(()))` for more than `len`; `None` where they agree, or where
/// the archive cannot be read to the end (damaged: the file beside it is
/// used, as it always was). The trailer's length (ISIZE, the last member's
/// length mod 2^32) answers at once for a one-member archive of that file;
/// otherwise the archive is inflated, counting, up to one byte past `len`.
pub(super) fn decompresses_to_other_than(gz: &Path, len: u64) -> Option<Result<u64, ()>> {
    let mut f = File::open(gz).ok()?;
    let mut trailer = [0u8; 4];
    if io::Seek::seek(&mut f, io::SeekFrom::End(-4)).is_ok()
        && f.read_exact(&mut trailer).is_ok()
        && u64::from(u32::from_le_bytes(trailer)) == len % (1 << 32)
    {
        return None;
    }
    io::Seek::rewind(&mut f).ok()?;
    let mut dec = GzMembers::new(io::BufReader::new(f)).take(len.saturating_add(1));
    let n = io::copy(&mut dec, &mut io::sink()).ok()?;
    match n {
        n if n == len => None,
        n if n > len => Some(Err(())),
        n => Some(Ok(n)),
    }
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

/// The fewest bytes of a gzip member that are not deflate data: a 10-byte
/// header and an 8-byte trailer (RFC 1952).
const GZIP_MIN_OVERHEAD: u64 = 18;

/// Bytes an unprivileged writer may still add to the file system of `file`
/// (in `dir`); `None` where that cannot be told (the write then finds out).
pub(super) fn free_bytes(file: &File, dir: &Path) -> Option<u64> {
    #[cfg(test)]
    if let Some(free) = super::tests::FREE.with(|f| f.get()) {
        let only = super::tests::FREE_ONLY_IN.with(|d| d.borrow().clone());
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
