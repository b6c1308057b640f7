//! Files that are never half-written: models, checkpoints and metrics logs
//! go to a temporary file beside their target, are fsync'd, then renamed
//! over it. Before the work, `target.rs` asks whether a save to a path can
//! succeed and may replace what is there; `input.rs` reads the same files
//! back, from regular files and pipes only.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Result;

mod input;
mod target;
#[cfg(test)]
mod tests;

pub use input::{not_readable, open_input, read_input, read_input_checked};
pub use target::{
    check_dir, check_dir_named, check_replaceable, check_replaceable_or, check_room, is_std_stream,
    is_std_stream_file, std_stream, Kind, StdStream,
};

/// The temporary files that exist now: what [`remove_in_flight`] removes
/// when the process must quit at once (a second Ctrl-C, SIGTERM or SIGHUP).
static IN_FLIGHT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Remove every temporary file a save or decompression is writing, and
/// keep any other from being created: call it only right before the
/// process exits (the lock is never given back). Returns how many were
/// removed.
pub fn remove_in_flight() -> usize {
    let guard = IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner());
    let removed = guard.iter().filter(|p| fs::remove_file(p).is_ok()).count();
    std::mem::forget(guard);
    removed
}

/// A temporary file beside the file it will replace: created and listed
/// in the process-wide list of files in flight under one lock, so that [`remove_in_flight`] sees every
/// one that exists; removed when dropped unless [`TempFile::renamed`] moved
/// it into place.
pub struct TempFile {
    path: PathBuf,
    done: bool,
    /// The handle holding the file's lock ([`TempFile::create_new`]).
    lock: Option<File>,
}

impl TempFile {
    /// Create the first of `names` that no file holds yet, as a listed
    /// temporary file, locked (`flock`) until it is renamed or removed.
    /// Never another writer's file: a run in another PID namespace (a
    /// container sharing the directory) may have this process's id, and so
    /// its file's name. The lock keeps [`remove_stale`] from taking the file
    /// for a dead process's, whatever id its name holds.
    pub fn create_new(
        names: impl IntoIterator<Item = PathBuf>,
    ) -> std::io::Result<(File, TempFile)> {
        let mut taken = None;
        for path in names {
            let f = {
                let mut in_flight = IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner());
                match fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                {
                    Ok(f) => {
                        in_flight.push(path.clone());
                        f
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        taken = Some(e);
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            };
            let mut t = TempFile {
                path,
                done: false,
                lock: None,
            };
            // A second handle on the file holds the lock until `t` goes,
            // after the rename, whatever the caller does with `f`.
            let lock = f.try_clone()?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                // Best effort: a file system without locks leaves the
                // process id alone to say whether the writer lives.
                let _ = rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive);
                // A sweep that found the file between its creation and the
                // lock has removed it: another name, and nothing to remove.
                if lock.metadata()?.nlink() == 0 {
                    t.done = true;
                    continue;
                }
            }
            t.lock = Some(lock);
            return Ok((f, t));
        }
        Err(taken.unwrap_or_else(|| std::io::Error::other("no name to create")))
    }

    /// Where the file is, until renamed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rename it over `target`; from then on it is not removed.
    pub fn renamed(mut self, target: &Path) -> std::io::Result<()> {
        fs::rename(&self.path, target)?;
        self.done = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let mut in_flight = IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner());
        if !self.done {
            let _ = fs::remove_file(&self.path);
        }
        in_flight.retain(|p| p != &self.path);
    }
}

/// Remove the temporary files in `dir` that processes killed outright
/// (`kill -9`, the OOM killer, a machine that went down) left there: named
/// `prefix` + the writer's process id (+ `-` and a number), where no
/// process of that id exists now. A live process's, this one's included,
/// stay. Returns how many were removed.
pub fn remove_stale(dir: &Path, prefix: &str) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let (pid, call) = rest.split_once('-').unwrap_or((rest, "0"));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !(digits(pid) && digits(call)) {
            continue;
        }
        if pid.parse().is_ok_and(|pid| !process_exists(pid)) && remove_unlocked(&entry.path()) {
            removed += 1;
        }
    }
    removed
}

/// Remove `path`, a temporary file whose writer's process id no process
/// here has, unless its writer still holds its lock ([`TempFile::create_new`]):
/// one in another PID namespace, whose processes this one cannot see.
fn remove_unlocked(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Neither blocking on a pipe nor following a link under the name.
        let f = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
            .open(path);
        if let Ok(f) = &f {
            let try_lock = rustix::fs::FlockOperation::NonBlockingLockExclusive;
            // Held, if taken, until `f` closes after the removal. A file
            // system without locks (any other error) leaves the id to say.
            if rustix::fs::flock(f, try_lock) == Err(rustix::io::Errno::WOULDBLOCK) {
                return false;
            }
        }
        let removed = fs::remove_file(path).is_ok();
        drop(f);
        removed
    }
    #[cfg(not(unix))]
    {
        fs::remove_file(path).is_ok()
    }
}

/// Whether a process `pid` exists (one of another user's too); where this
/// cannot be told, it does.
fn process_exists(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Some(pid) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            return true;
        };
        rustix::process::test_kill_process(pid) != Err(rustix::io::Errno::SRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Write `bytes` to `path` atomically: a temporary file beside it, fsync, rename.
/// On any failure the temporary file is removed and `path` is untouched.
/// A symbolic link is followed: the file it points to is replaced, and the
/// link stays a link.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_guarded(path, bytes, None).map(|_| ())
}

#[cfg(test)]
thread_local! {
    /// Set by unit tests: what another process does while this thread's
    /// save is written, before its rename.
    static BEFORE_RENAME: std::cell::RefCell<Option<Box<dyn Fn()>>> =
        const { std::cell::RefCell::new(None) };
}

/// What a run last saw at an output path it writes more than once (or at
/// its end), for [`write_guarded`]: `seen` as in [`taken_meanwhile`], and
/// the words of the warning where the file goes beside the path: `what`
/// ("checkpoint path"), `goes` ("checkpoints go"); `from_checkpoint` where
/// `seen` is what the run a checkpoint was taken from saw, not this run.
pub struct Guard<'a> {
    pub seen: Option<Option<Stamp>>,
    pub what: &'a str,
    pub goes: &'a str,
    pub from_checkpoint: bool,
}

/// A [`write_guarded`] save whose bytes went to `own` (`NAME.PID.EXT`),
/// another process having written the path, and failed there too: the
/// caller's next try goes to `own` as well, not to the path again, whose
/// changed file would be warned about once more. Reads as the error it
/// carries, whose causes (an `io::Error` that names a limit's fix) stay
/// in its chain.
#[derive(Debug)]
pub struct Redirected {
    pub own: PathBuf,
    error: anyhow::Error,
}

impl std::fmt::Display for Redirected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.error)
    }
}

impl std::error::Error for Redirected {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

/// [`write_atomic`], where a `guard` says what this run last saw at
/// `path`: that is checked just before the rename, once the bytes are
/// written and synced, and where another process has written the file
/// since, the bytes go to `NAME.PID.EXT` beside it instead, said on stderr
/// ([`taken_meanwhile`]); a check before the bytes were made would leave
/// the time they take to write for another run's file to come and be
/// replaced. Returns where the bytes went and the [`Stamp`] of the file
/// written, read from the file itself before the rename: one read from
/// the path after it would take in a write that another process made
/// there in the meantime as this run's own. Where the bytes went beside
/// the path and failed there, the error is a [`Redirected`].
pub fn write_guarded(path: &Path, bytes: &[u8], guard: Option<Guard>) -> Result<(PathBuf, Stamp)> {
    let dir = check_dir(path)?;
    let dest = destination(path);
    // Once per file and process: a log rewritten every epoch need not list
    // its directory every epoch.
    static SWEPT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let mut swept = SWEPT.lock().unwrap_or_else(|e| e.into_inner());
    if !swept.contains(&dest) {
        remove_stale(&dir, &tmp_prefix(&dest));
        swept.push(dest.clone());
    }
    drop(swept);
    let result = (|| -> std::io::Result<Result<Stamp, PathBuf>> {
        let (mut f, tmp) = TempFile::create_new(tmp_names(&dir, &dest))?;
        // The file replaced keeps its permissions (a model made private
        // stays private), as an editor's save keeps them; set before the
        // bytes go in. Best effort: some file systems refuse chmod.
        if let Ok(old) = fs::metadata(&dest) {
            let _ = f.set_permissions(old.permissions());
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        // A rename keeps the file's identity, time and length.
        let written = stamp_of(&f.metadata()?);
        #[cfg(test)]
        BEFORE_RENAME.with(|hook| hook.borrow().as_ref().map(|h| h()));
        // The check and the rename as one step among guarded saves: two
        // runs whose files were synced at the same moment would otherwise
        // each find the path as it was, and the later rename would take
        // the earlier run's file, both saying it was saved. Held until the
        // closure returns.
        let _locked = guard.as_ref().and_then(|_| lock_dir(&dest));
        if let Some(own) = (guard.as_ref()).and_then(|g| taken_meanwhile(path, g.seen)) {
            // The temporary file goes with `tmp`; `own` may be in another
            // directory (`path` a link to this one).
            return Ok(Err(own));
        }
        tmp.renamed(&dest)?;
        // Make the rename itself durable; not all filesystems allow opening a directory.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(Ok(written))
    })();
    let e = match result {
        Ok(Ok(written)) => return Ok((path.to_owned(), written)),
        Ok(Err(own)) => {
            // Said once the lock is let go: a write to a stderr that
            // blocks (a terminal paused by Ctrl-S, a full pipe) must not
            // hold up another run's save in this directory.
            if let Some(g) = &guard {
                let when = match g.from_checkpoint {
                    false => format!("during this run (another run with the same {}?)", g.what),
                    // Before this run started, maybe: the stopped run's
                    // model, say, saved by an earlier resume of the same
                    // checkpoint.
                    true => format!(
                        "since the checkpoint this run resumes was written (another run with the same {}, or an earlier resume of that checkpoint?)",
                        g.what
                    ),
                };
                crate::error::eprint_line(&format!(
                    "simplenn: warning: {} was written by another process {when}; this run's {} to {} instead",
                    crate::show::path(path),
                    g.goes,
                    crate::show::path(&own)
                ));
            }
            return write_guarded(&own, bytes, None)
                .map_err(|error| anyhow::Error::new(Redirected { own, error }));
        }
        Err(e) => e,
    };
    Err(match e.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => anyhow::anyhow!(
            "cannot save to {}: no room left there ({e}); free space on that disk, or choose a path on another one",
            path.display()
        ),
        std::io::ErrorKind::FileTooLarge => anyhow::anyhow!(
            "cannot save to {}: the file would pass a file-size limit ({e}); raise it (ulimit -f), or choose a path on a file system that takes larger files",
            path.display()
        ),
        _ => anyhow::Error::new(e).context(format!("cannot save to {}", path.display())),
    })
}

/// How long [`lock_dir`] waits for a lock another holds.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The directory holding `dest`, opened and locked (`flock`, exclusive)
/// for as long as the file returned is open: [`write_guarded`]'s saves
/// from any process take it in turn. Best effort: `None` where the
/// directory cannot be opened or locked (a file system without locks), or
/// another has held the lock for [`LOCK_WAIT`], and the save goes on
/// unlocked, as it did before.
fn lock_dir(dest: &Path) -> Option<File> {
    #[cfg(unix)]
    {
        let f = File::open(target::dir_of(dest)).ok()?;
        // Another simplenn holds it for a stat and a rename; a lock some
        // other program holds on the directory (`flock DIR cmd`) may be
        // held for long: after a while, the save goes on unlocked rather
        // than wait on it without a word.
        let try_lock = rustix::fs::FlockOperation::NonBlockingLockExclusive;
        let until = std::time::Instant::now() + LOCK_WAIT;
        loop {
            match rustix::fs::flock(&f, try_lock) {
                Ok(()) => return Some(f),
                Err(rustix::io::Errno::WOULDBLOCK) if std::time::Instant::now() < until => {
                    std::thread::sleep(std::time::Duration::from_millis(5))
                }
                Err(_) => return None,
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = dest;
        None
    }
}

/// The file a save to `path` replaces: `path` itself, or, where `path` is a
/// symbolic link, the file at the end of its chain of links (which need not
/// exist yet), so that the rename replaces that file and not the link
/// (`-o /dev/stdout` would otherwise turn `/dev/stdout` into a file).
///
/// A link is resolved once per process, when first asked (a run checks its
/// outputs before it starts): `/dev/fd/3` to a file names `NAME (deleted)`
/// once the first save has replaced that file, and later saves must still
/// go to `NAME`. So long as `path` is still a link: one replaced since by a
/// file, or removed, is resolved anew (the old target, maybe a device by
/// then, is no longer what a save to `path` means).
pub fn destination(path: &Path) -> PathBuf {
    static RESOLVED: Mutex<Vec<(PathBuf, PathBuf)>> = Mutex::new(Vec::new());
    let mut resolved = RESOLVED.lock().unwrap_or_else(|e| e.into_inner());
    let link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if let Some(at) = resolved.iter().position(|(p, _)| p == path) {
        if link {
            return resolved[at].1.clone();
        }
        resolved.swap_remove(at);
    }
    let dest = follow_links(path);
    if dest != path {
        resolved.push((path.to_owned(), dest.clone()));
    }
    dest
}

/// The end of `path`'s chain of links, now.
fn follow_links(path: &Path) -> PathBuf {
    let mut p = path.to_owned();
    // Past 40 links (Linux's own limit) `p` is still a link, which
    // `check_dir_named` refuses.
    for _ in 0..40 {
        let is_link = fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink());
        let Some(target) = is_link.then(|| fs::read_link(&p).ok()).flatten() else {
            break;
        };
        p = match p.parent() {
            Some(dir) if target.is_relative() => dir.join(target),
            _ => target,
        };
    }
    p
}

/// What a save to `path` would replace, as it is now: that file's identity
/// and modification time (`None` when there is no file). Two stamps differ
/// once anything has replaced or rewritten the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    modified: Option<std::time::SystemTime>,
    /// Beside the time, whose ticks can be coarser than two writes apart.
    len: u64,
}

impl Stamp {
    /// `dev,ino,secs.nanos,len` (`-` for a time the system gave none, or
    /// one before 1970): what a checkpoint records of what its run saw at
    /// an output, read back by [`Stamp::from_value`].
    pub fn to_value(&self) -> String {
        let time = self
            .modified
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or("-".to_string(), |d| {
                format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
            });
        format!("{},{},{time},{}", self.dev, self.ino, self.len)
    }

    /// [`Stamp::to_value`]'s text back; `None` for any other.
    pub fn from_value(v: &str) -> Option<Stamp> {
        let mut it = v.split(',');
        let number =
            |s: Option<&str>| -> Option<u64> { s.filter(|s| !s.starts_with('+'))?.parse().ok() };
        let (dev, ino) = (number(it.next())?, number(it.next())?);
        let modified = match it.next()? {
            "-" => None,
            t => {
                let (secs, nanos) = t.split_once('.')?;
                let nanos = Some(nanos).filter(|n| n.len() == 9);
                let (secs, nanos) = (number(Some(secs))?, number(nanos)?);
                let d = std::time::Duration::new(secs, u32::try_from(nanos).ok()?);
                Some(std::time::UNIX_EPOCH.checked_add(d)?)
            }
        };
        let len = number(it.next())?;
        let stamp = Stamp {
            dev,
            ino,
            modified,
            len,
        };
        // Only the text a run writes: no trailing fields, no other digits.
        (it.next().is_none() && stamp.to_value() == v).then_some(stamp)
    }
}

/// Where this run's file for `path` goes when another process has written
/// `path` since this run last saw it (`seen`: its [`Stamp`] then, `None`
/// inside where it did not exist; an outer `None`: never looked): `NAME.PID.EXT`
/// beside it ([`write_guarded`] says so on stderr, with the [`Guard`]'s
/// words). `None` where `path` is this run's to replace.
pub fn taken_meanwhile(path: &Path, seen: Option<Option<Stamp>>) -> Option<PathBuf> {
    let now = stamp(path);
    if now.is_none() || seen.is_none_or(|seen| seen == now) {
        return None;
    }
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let tail = match path.extension() {
        Some(ext) => format!(".{}.{}", std::process::id(), ext.to_string_lossy()),
        None => format!(".{}", std::process::id()),
    };
    // Within the 255 bytes most file systems allow a name: a name that
    // could be saved to must not lose its file here.
    let own = format!("{}{tail}", cut(&stem, 255usize.saturating_sub(tail.len())));
    Some(path.with_file_name(own))
}

/// The [`Stamp`] of the file a save to `path` replaces ([`destination`]),
/// if any.
pub fn stamp(path: &Path) -> Option<Stamp> {
    Some(stamp_of(&fs::metadata(destination(path)).ok()?))
}

fn stamp_of(m: &fs::Metadata) -> Stamp {
    #[cfg(unix)]
    let (dev, ino) = {
        use std::os::unix::fs::MetadataExt;
        (m.dev(), m.ino())
    };
    // No inode to read: the time and length stand alone.
    #[cfg(not(unix))]
    let (dev, ino) = (0, 0);
    Stamp {
        dev,
        ino,
        modified: m.modified().ok(),
        len: m.len(),
    }
}

/// The temporary file beside `path` (in `dir`) that a save renames over it.
pub(crate) fn tmp_path(dir: &Path, path: &Path) -> PathBuf {
    dir.join(format!("{}{}", tmp_prefix(path), std::process::id()))
}

/// The names a save's temporary file beside `path` may take, in the order
/// tried ([`TempFile::create_new`]): [`tmp_path`], then with `-1` to `-99`
/// after it, where a process of the same id elsewhere (another PID
/// namespace) writes the first.
pub(crate) fn tmp_names(dir: &Path, path: &Path) -> impl Iterator<Item = PathBuf> {
    let first = tmp_path(dir, path);
    (0..100).map(move |k| match k {
        0 => first.clone(),
        k => {
            let mut name = first.clone().into_os_string();
            name.push(format!("-{k}"));
            PathBuf::from(name)
        }
    })
}

/// Bytes of a target's name that its temporary file's name keeps: with
/// the dot, `.tmp`, a process id (10 digits at most) and `-99` it stays
/// within the 255 bytes most file systems allow a name, so that any name
/// a file can have can be saved to.
const TMP_NAME_KEPT: usize = 255 - ".".len() - ".tmp".len() - 10 - "-99".len();

/// `.NAME.tmp`: how the temporary files of saves to `path` begin. NAME is
/// the target's name, cut to [`TMP_NAME_KEPT`] bytes.
fn tmp_prefix(path: &Path) -> String {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    format!(".{}.tmp", cut(&name, TMP_NAME_KEPT))
}

/// The longest start of `s` of at most `max` bytes that ends on a
/// character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
