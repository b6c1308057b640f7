//! Where a data file's raw bytes are: the file itself, or a copy decompressed
//! once from its `.gz`, beside it or in the cache, checked against MD5SUMS.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::gunzip::gunzip_atomically;
use super::md5::{expected_md5, md5_file};
use super::{modified, open_to_read, size, IdxError};

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
pub(super) fn locate_in(
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
    // Nor may a name the system cannot look up (a directory's path just
    // under the limit, the file's past it) be reported missing, with
    // "point --data at the directory that holds it", which it names. (Only
    // the file's: where its name fits and it is not there, an archive's
    // 3 bytes longer that cannot be is no reason to refuse the directory.)
    if let Err(e) = fs::symlink_metadata(&raw) {
        if e.kind() == io::ErrorKind::InvalidFilename {
            return Err(IdxError::BadPath {
                what: "",
                why: crate::error::path_fault(&e, &raw).unwrap_or_default(),
                path: raw,
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
            None if p.is_dir() && p.file_name().is_some_and(|n| p.join(n).is_file()) => {
                IdxError::FolderOfFile {
                    path: p.to_owned(),
                    name: p
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned(),
                }
            }
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
        // A file with the archive's very time is a copy decompressed from
        // an archive of that time; where it is not as long as this one's
        // contents, the archive was replaced by another of the same time
        // (a link pointed at another split of one download). Refused, not
        // decompressed over. A newer file (made or edited by hand) is the
        // one used, as is any file MD5SUMS lists (its sum settles it); one
        // of the same length but other bytes is not noticed.
        let len = fs::metadata(&raw).map_or(0, |m| m.len());
        let copy = gz.is_file()
            && modified(&gz) == modified(&raw)
            && matches!(expected_md5(dir, name), Ok(None));
        if let Some(holds) = copy
            .then(|| super::gunzip::decompresses_to_other_than(&gz, len))
            .flatten()
        {
            return Err(IdxError::NotTheArchives {
                path: raw,
                len,
                // Exact: two lengths a few bytes apart look alike in MB.
                holds: match holds {
                    Ok(n) => crate::show::count(n as usize, "byte"),
                    Err(()) => format!("more than {len} bytes"),
                },
                gz,
            });
        }
        // What a decompression that was killed outright left beside it
        // (tens of megabytes), where another run's decompression finished
        // the file and none will run again to sweep it.
        crate::atomic::remove_stale(dir, &format!("{name}.tmp"));
        raw
    } else if let Some(c) = cached.as_ref().filter(|c| {
        // Only beside the archive it was decompressed from: a directory
        // that no longer holds it (emptied, or a mount point with nothing
        // mounted) has no data set, whatever the cache kept.
        c.is_file() && gz.is_file() && stamp_of(&gz) == read_stamp(c)
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
                    beside_anyway = Some(cache_unusable(c.parent().unwrap_or(c), "", &error));
                }
                Some((c, Err(IdxError::NoRoom { want, free, .. }))) => {
                    let folder = crate::show::path(c.parent().unwrap_or(c));
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
                    // eprint_line: a note that cannot be written costs nothing.
                    crate::error::eprint_line(&format!(
                        "simplenn: note: {} was older than {} beside it, so the archive was decompressed in its place",
                        crate::show::path(&raw),
                        crate::show::path(&gz)
                    ));
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
                        cache: cache_unusable(c.parent().unwrap_or(&c), " either", &e),
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
pub(super) fn system_dir(dir: &Path) -> bool {
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
    // eprint_line: a note that cannot be written costs nothing.
    crate::error::eprint_line(&format!(
        "simplenn: note: {} is a system directory (under /usr), but {why}, so its .gz files are decompressed beside them, and later runs read the copies there: delete them once the cache works",
        crate::show::path(dir)
    ));
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
    // eprint_line: a note that cannot be written costs nothing.
    crate::error::eprint_line(&format!(
        "simplenn: note: {} is {why}, so its .gz files are decompressed into the cache, {}, and reused from there until an archive changes; delete that folder to free the space",
        crate::show::path(gz.parent().unwrap_or(gz)),
        crate::show::path(folder)
    ));
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
        IdxError::Io { path, .. } | IdxError::Invalid { path, .. } | IdxError::Empty { path } => {
            path == gz
        }
        _ => false,
    }
}

pub(super) fn read_only(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
    )
}

/// `$XDG_CACHE_HOME`, else `$HOME/.cache`. As the XDG spec has it, an
/// empty or relative value is no value (it would fill the working
/// directory).
pub(super) fn cache_base(
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

/// The stamp kept beside the cached copy `cached`, where it is one: a
/// regular file of one short line. Anything else put there (a FIFO, which
/// would block the read forever; a link to `/dev/zero` or a huge file,
/// which would be read until memory ran out) is no stamp, and is not read:
/// the copy is then decompressed again, and a stamp written in its place.
fn read_stamp(cached: &Path) -> Option<String> {
    use std::io::Read;
    /// Far more than a stamp's length and time.
    const MAX: u64 = 256;
    let mut open = fs::OpenOptions::new();
    open.read(true);
    // Without blocking on a FIFO (one swapped in after a check by name
    // would block the open itself); what was opened is then checked.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut open, libc::O_NONBLOCK);
    let file = open.open(stamp_path(cached)).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX {
        return None;
    }
    let mut stamp = String::new();
    file.take(MAX).read_to_string(&mut stamp).ok()?;
    Some(stamp)
}

/// Where the stamp of the cached copy `cached` is kept.
pub fn stamp_path(cached: &Path) -> PathBuf {
    cached.with_extension("source")
}

/// The data directory `dir` is read-only, and the cache failed too with
/// `e` (or there is none): say both, and the ways out. Not an I/O error
/// (no room, a bad archive): `e` as it is.
pub(super) fn no_cache(gz: &Path, dir: &Path, cache: Option<&Path>, e: IdxError) -> IdxError {
    let IdxError::Io { error, .. } = e else {
        return e;
    };
    let cache = match cache.and_then(Path::parent) {
        // A link to nowhere, or a file, on the way says more than EEXIST
        // or ENOTDIR, and has a fix of its own.
        Some(c) => cache_unusable(c, " either", &error),
        None => NO_CACHE.into(),
    };
    IdxError::NoPlace {
        path: gz.to_owned(),
        dir: dir.to_owned(),
        cache,
    }
}

/// What on the way to the directory `dir` stops it being made: a link to
/// nowhere (`~/.cache` left pointing at a removed disk), or a file where a
/// directory goes, said with its fix; `None` where neither.
fn blocked_at(dir: &Path) -> Option<String> {
    let mut on_the_way: Vec<&Path> = dir.ancestors().collect();
    on_the_way.reverse();
    for at in on_the_way.into_iter().filter(|a| !a.as_os_str().is_empty()) {
        let Ok(meta) = fs::symlink_metadata(at) else {
            return None;
        };
        let shown = crate::show::path(at);
        if meta.file_type().is_symlink() {
            // Where it leads, from the link's own directory (a relative
            // target is not the working directory's).
            let to = fs::read_link(at).ok()?;
            let to = crate::show::path(&at.parent().unwrap_or(Path::new("")).join(to));
            match fs::metadata(at) {
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                    return Some(format!(
                        "{shown} is a link whose links go round in a loop: remove it"
                    ))
                }
                Err(_) => {
                    return Some(format!(
                        "{shown} is a link to {to}, which does not exist: make that directory, or remove the link"
                    ))
                }
                Ok(m) if !m.is_dir() => {
                    return Some(format!(
                        "{shown} is a link to {to}, a file, not a directory: remove the link"
                    ))
                }
                Ok(_) => continue,
            }
        }
        if !meta.is_dir() {
            return Some(format!("{shown} is a file, not a directory: move it away"));
        }
    }
    None
}

/// Why the cache directory `folder` could not take a copy, as a clause
/// (`either`: "" or " either"): what blocks its way, where something
/// does ([`blocked_at`]), else `error`.
fn cache_unusable(folder: &Path, either: &str, error: &dyn std::fmt::Display) -> String {
    let shown = crate::show::path(folder);
    match blocked_at(folder) {
        Some(why) => format!("the cache directory {shown} cannot be used{either}: {why}"),
        None => format!("the cache directory {shown} cannot be used{either} ({error})"),
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
    // FNV-1a: stable across runs and platforms, unlike std's hasher. Of
    // the path's bytes as they are: names that differ only in bytes that
    // are not UTF-8 are other directories (lossily, both U+FFFD).
    let hash = abs
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3)
        });
    Some(base.join("simplenn").join(format!("{hash:016x}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A note is said once a folder: the first time for each folder, in
    /// any order, and never again for one already noted.
    #[test]
    fn a_note_is_said_once_a_folder() {
        let noted = Noted::new(Vec::new());
        let (a, b) = (Path::new("/a"), Path::new("/b"));
        assert!(first_time(&noted, a));
        assert!(!first_time(&noted, a));
        assert!(first_time(&noted, b));
        assert!(!first_time(&noted, a));
        assert!(!first_time(&noted, b));
    }
}
