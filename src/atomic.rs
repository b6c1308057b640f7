//! Files that are never half-written: models, checkpoints and metrics logs
//! go to a temporary file beside their target, are fsync'd, then renamed
//! over it. And the same files read back, from regular files only.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};

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
/// its end), for [`write_guarded`]: `seen` and the words as in
/// [`taken_meanwhile`].
pub struct Guard<'a> {
    pub seen: Option<Option<Stamp>>,
    pub what: &'a str,
    pub goes: &'a str,
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
        if let Some(own) =
            (guard.as_ref()).and_then(|g| taken_meanwhile(path, g.seen, g.what, g.goes))
        {
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
            return write_guarded(&own, bytes, None)
                .map_err(|error| anyhow::Error::new(Redirected { own, error }))
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

/// The file a save to `path` replaces: `path` itself, or, where `path` is a
/// symbolic link, the file at the end of its chain of links (which need not
/// exist yet), so that the rename replaces that file and not the link
/// (`-o /dev/stdout` would otherwise turn `/dev/stdout` into a file).
///
/// A link is resolved once per process, when first asked (a run checks its
/// outputs before it starts): `/dev/fd/3` to a file names `NAME (deleted)`
/// once the first save has replaced that file, and later saves must still
/// go to `NAME`.
pub fn destination(path: &Path) -> PathBuf {
    static RESOLVED: Mutex<Vec<(PathBuf, PathBuf)>> = Mutex::new(Vec::new());
    let mut resolved = RESOLVED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, dest)) = resolved.iter().find(|(p, _)| p == path) {
        return dest.clone();
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

/// Where this run's file for `path` goes when another process has written
/// `path` since this run last saw it (`seen`: its [`Stamp`] then, `None`
/// inside where it did not exist; an outer `None`: never looked): `NAME.PID.EXT`
/// beside it, said on stderr (`what`: "checkpoint path"; `goes`: "checkpoints
/// go"). `None` where `path` is this run's to replace.
pub fn taken_meanwhile(
    path: &Path,
    seen: Option<Option<Stamp>>,
    what: &str,
    goes: &str,
) -> Option<PathBuf> {
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
    let own = path.with_file_name(own);
    // eprint_line: after SIGHUP stderr may be gone, and the file this warns
    // about must still be written.
    crate::error::eprint_line(&format!(
        "simplenn: warning: {} was written by another process during this run (another run with the same {what}?); this run's {goes} to {} instead",
        path.display(),
        own.display()
    ));
    Some(own)
}

/// Whether `path` is the root of a mount (a file bind-mounted onto it);
/// `false` where the kernel cannot tell (statx before Linux 5.8). By path,
/// not by an open file: a file that cannot be read is still replaced.
#[cfg(target_os = "linux")]
fn is_mount_point(path: &Path) -> bool {
    use rustix::fs::{statx, AtFlags, StatxAttributes, StatxFlags, CWD};
    statx(CWD, path, AtFlags::empty(), StatxFlags::BASIC_STATS).is_ok_and(|x| {
        let root = StatxAttributes::MOUNT_ROOT;
        x.stx_attributes_mask.contains(root) && x.stx_attributes.contains(root)
    })
}

/// "immutable" or "append-only" where `file` has that inode attribute
/// (`chattr +i`, `+a`), which stops a rename over it even for root;
/// `None` otherwise, or where the file system keeps no such attributes.
#[cfg(target_os = "linux")]
fn unreplaceable_attribute(file: &File) -> Option<&'static str> {
    use std::os::fd::AsRawFd;
    // linux/fs.h: FS_IMMUTABLE_FL, FS_APPEND_FL.
    const IMMUTABLE: libc::c_int = 0x10;
    const APPEND: libc::c_int = 0x20;
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int of flags to the pointer,
    // which is a live local; the descriptor is open for the call.
    let r = unsafe { libc::ioctl(file.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) };
    match r {
        0 if flags & IMMUTABLE != 0 => Some("immutable"),
        0 if flags & APPEND != 0 => Some("append-only"),
        _ => None,
    }
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

/// What simplenn writes to an output path. A save replaces whatever file
/// is there, so [`check_replaceable`] first makes sure that file is one of
/// this kind (or empty): a slip of the path (`--save train.py`, `plot -o
/// data/mnist/README.md`, `--metrics /dev/fd/3 3>>build.log`) must not
/// turn a source file, a data file or another program's output into ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A safetensors file: models and checkpoints.
    Model,
    /// A `--metrics` log: JSON lines.
    Log,
    /// `augment`'s picture.
    Png,
    /// `plot`'s picture.
    Svg,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Model => "a safetensors file",
            Kind::Log => "a simplenn metrics log (a JSON object with an epoch on each line)",
            Kind::Png => "a PNG picture",
            Kind::Svg => "an SVG picture",
        }
    }

    /// Whether a file of `len` bytes that begins with `head` (its first
    /// bytes, up to [`HEAD`]) is of this kind, or is nothing yet (empty, or
    /// only blanks).
    fn fits(self, head: &[u8], len: u64) -> bool {
        let whole = head.len() as u64 == len;
        let text = head.strip_prefix("\u{feff}".as_bytes()).unwrap_or(head);
        let text = &text[text.iter().take_while(|b| b.is_ascii_whitespace()).count()..];
        if len == 0 || (text.is_empty() && whole) {
            return true;
        }
        match self {
            Kind::Model => safetensors_head(head, len),
            Kind::Log => log_head(text, whole),
            Kind::Png => head.starts_with(b"\x89PNG\r\n\x1a\n"),
            Kind::Svg => svg_head(text, whole),
        }
    }
}

/// Whether `rest`, what follows an element's name, is the rest of a start
/// tag: attributes `name="value"` (or `'value'`), then `>` or `/>`; where
/// the head ends first (`!whole`), as far as it goes.
fn start_tag_rest(mut rest: &[u8], whole: bool) -> bool {
    loop {
        rest = rest.trim_ascii_start();
        match rest.first() {
            None => return !whole,
            Some(b'>') => return true,
            Some(b'/') => return rest.get(1).map_or(!whole, |&b| b == b'>'),
            Some(_) => {}
        }
        let name = rest
            .iter()
            .take_while(|b| !b.is_ascii_whitespace() && !b"=>/".contains(b))
            .count();
        rest = rest[name..].trim_ascii_start();
        match rest.first() {
            None => return !whole,
            Some(b'=') => rest = rest[1..].trim_ascii_start(),
            Some(_) => return false,
        }
        let Some(&quote) = rest.first() else {
            return !whole;
        };
        if quote != b'"' && quote != b'\'' {
            return false;
        }
        match rest[1..].iter().position(|&b| b == quote) {
            Some(end) => rest = &rest[end + 2..],
            None => return !whole,
        }
    }
}

/// Bytes of a file [`check_replaceable`] reads to tell its kind.
const HEAD: u64 = 64 << 10;

/// A safetensors file: an 8-byte little-endian header length that the file
/// holds, then a JSON object (parsed where the head holds all of it).
fn safetensors_head(head: &[u8], len: u64) -> bool {
    let Some(n) = head
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    else {
        return false;
    };
    if n > len.saturating_sub(8) {
        return false;
    }
    let header = &head[8..];
    match header.get(..n as usize) {
        Some(json) => {
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(json).is_ok()
        }
        // Longer than the head: it must at least open an object of names.
        None => {
            let rest = header.get(1..).unwrap_or_default().trim_ascii_start();
            header.first() == Some(&b'{') && rest.first().is_some_and(|&b| b == b'"' || b == b'}')
        }
    }
}

/// A metrics log: every whole line of the head (blank lines aside) a JSON
/// object with an `epoch`, and at least one such line.
fn log_head(text: &[u8], whole: bool) -> bool {
    let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    if !whole {
        // The last line may be cut by the head's end.
        lines.pop();
    }
    let lines: Vec<&[u8]> = lines
        .into_iter()
        .filter(|l| !l.trim_ascii().is_empty())
        .collect();
    !lines.is_empty()
        && lines.iter().all(|l| {
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(l)
                .is_ok_and(|o| o.contains_key("epoch"))
        })
}

/// An SVG: after an XML declaration, comments, processing instructions
/// and a document type, the first element is `svg` (or `PREFIX:svg`); a
/// document type naming `svg` is enough where the head ends before the
/// first element.
fn svg_head(mut text: &[u8], whole: bool) -> bool {
    loop {
        text = text.trim_ascii_start();
        let skip_to = |text: &[u8], end: &[u8]| {
            text.windows(end.len())
                .position(|w| w == end)
                .map(|i| i + end.len())
        };
        let next = if text.starts_with(b"<?") {
            skip_to(text, b"?>")
        } else if text.starts_with(b"<!--") {
            skip_to(text, b"-->")
        } else if text.len() >= 9 && text[..9].eq_ignore_ascii_case(b"<!doctype") {
            let name = text[9..].trim_ascii_start();
            if name.len() >= 3 && name[..3].eq_ignore_ascii_case(b"svg") {
                return true;
            }
            // Past an internal subset (`[ … ]`) where there is one.
            match text.iter().position(|&b| b == b'[' || b == b'>') {
                Some(i) if text[i] == b'[' => skip_to(text, b"]>"),
                Some(i) => Some(i + 1),
                None => None,
            }
        } else if let Some(tag) = text.strip_prefix(b"<") {
            let name_len = tag
                .iter()
                .take_while(|b| !b.is_ascii_whitespace() && **b != b'>' && **b != b'/')
                .count();
            let name = &tag[..name_len];
            let local = name.rsplit(|&b| b == b':').next().unwrap_or(name);
            return local == b"svg" && start_tag_rest(&tag[name_len..], whole);
        } else {
            return false;
        };
        match next {
            Some(i) => text = &text[i..],
            // The head ends inside the prolog: nothing shows it is an SVG.
            None => return false,
        }
    }
}

/// Refuse (with `flag` and the path in the message) to replace a regular
/// file at `path` (through its links) that is not `kind`. A file that
/// cannot be opened is left to the save to report.
pub fn check_replaceable(
    flag: &str,
    path: &Path,
    kind: Kind,
) -> Result<(), crate::error::UsageError> {
    check_replaceable_or(flag, path, kind, "choose another path")
}

/// [`check_replaceable`], with `instead` as the other way out (`choose
/// another path`).
pub fn check_replaceable_or(
    flag: &str,
    path: &Path,
    kind: Kind,
    instead: &str,
) -> Result<(), crate::error::UsageError> {
    let dest = destination(path);
    // Not a regular file (a pipe would block the read): the other checks
    // name it.
    let Some(meta) = fs::metadata(&dest).ok().filter(|m| m.is_file()) else {
        return Ok(());
    };
    let that = match dest == path {
        true => "that file".to_string(),
        false => format!("the file it leads to, {},", dest.display()),
    };
    // A save renames a new file over the old, which its mode does not
    // stop: a file made read-only was made so to be kept.
    if meta.permissions().readonly() {
        return Err(crate::error::UsageError(format!(
            "{flag} {}: {that} is write-protected and the save would replace it; make it writable (chmod u+w) first, or {instead}",
            path.display()
        )));
    }
    // A file bind-mounted over the path (a container's `-v file:path`):
    // renaming onto a mount point fails (EBUSY), after the run.
    #[cfg(target_os = "linux")]
    if is_mount_point(&dest) {
        return Err(crate::error::UsageError(format!(
            "{flag} {}: {that} is a mount point (one file bind-mounted there), which a save cannot replace; mount its directory instead, or {instead}",
            path.display()
        )));
    }
    let Ok(file) = File::open(&dest) else {
        return Ok(());
    };
    // Nor does root's rename replace a file marked immutable or
    // append-only (`chattr +i`): found before the run, not after it.
    #[cfg(target_os = "linux")]
    if let Some(attr) = unreplaceable_attribute(&file) {
        return Err(crate::error::UsageError(format!(
            "{flag} {}: {that} is marked {attr} and no save can replace it; clear the mark (chattr -{}) first, or {instead}",
            path.display(),
            &attr[..1]
        )));
    }
    // The length of what was opened, at least what was read: another
    // process may be changing the file.
    let Ok(len) = file.metadata().map(|m| m.len()) else {
        return Ok(());
    };
    let mut head = Vec::new();
    if file.take(HEAD).read_to_end(&mut head).is_err()
        || kind.fits(&head, len.max(head.len() as u64))
    {
        return Ok(());
    }
    Err(crate::error::UsageError(format!(
        "{flag} {}: {that} is not {} and the save would replace it; move it away first, or {instead}",
        path.display(),
        kind.name()
    )))
}

/// Which of this process's standard output and standard error `path` is
/// (the same file, through any links), if either. A save replaces its file,
/// so what a run reports there after it would go to a file no longer there.
pub fn std_stream(path: &Path) -> Option<&'static str> {
    let is_file = fs::metadata(path).is_ok_and(|m| m.is_file());
    [(StdStream::Output, "output"), (StdStream::Error, "error")]
        .into_iter()
        .find(|&(stream, _)| is_file && is_std_stream(path, stream))
        .map(|(_, name)| name)
}

/// One of this process's three standard streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StdStream {
    Input,
    Output,
    Error,
}

/// Whether `path` (through its links) is the file, pipe or device that
/// this process's `stream` is.
pub fn is_std_stream(path: &Path, stream: StdStream) -> bool {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        use std::os::unix::fs::MetadataExt;
        let Ok(m) = fs::metadata(path) else {
            return false;
        };
        let stat = match stream {
            StdStream::Input => rustix::fs::fstat(std::io::stdin().as_fd()),
            StdStream::Output => rustix::fs::fstat(std::io::stdout().as_fd()),
            StdStream::Error => rustix::fs::fstat(std::io::stderr().as_fd()),
        };
        stat.is_ok_and(|s| s.st_dev == m.dev() && s.st_ino == m.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = (path, stream);
        false
    }
}

/// The directory `path` would be written in, if it exists: checked before
/// a long run, so that a typo fails at once and not after the first epochs.
/// Where `path` names a directory, the error's example file is of the kind
/// its extension says (a path made a directory during a run was a file's).
pub fn check_dir(path: &Path) -> Result<PathBuf> {
    let example = match path.extension().and_then(|e| e.to_str()) {
        Some("jsonl") => "metrics.jsonl",
        Some("svg") => "curve.svg",
        Some("png") => "augment.png",
        _ => "model.safetensors",
    };
    check_dir_named(path, example)
}

/// [`check_dir`], naming `example` (a file name) where `path` names no file.
/// The directory is the one the save writes in: that of the file at the
/// end of `path`'s links ([`destination`]).
pub fn check_dir_named(path: &Path, example: &str) -> Result<PathBuf> {
    let dest = destination(path);
    if fs::symlink_metadata(&dest).is_ok_and(|m| m.file_type().is_symlink()) {
        bail!(
            "cannot save to {}: its symbolic links go round in a loop (or past 40 links); choose another path",
            path.display()
        );
    }
    let dir = dir_of(&dest);
    if !dir.is_dir() {
        let link = if dest == path {
            String::new()
        } else {
            format!(" (a link to {})", dest.display())
        };
        let why = match fs::metadata(&dir) {
            Ok(_) => format!("{} is not a directory; choose another path", dir.display()),
            // A directory too deep for one path (PATH_MAX), or one this
            // user may not look into, exists: "does not exist" would lie.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => format!(
                "directory {} does not exist; create it or choose another path",
                dir.display()
            ),
            Err(e) => match crate::error::path_fault(&e, &dir) {
                Some(why) => format!("directory {}: {why}", dir.display()),
                None => format!(
                    "cannot reach directory {} ({e}); choose another path",
                    dir.display()
                ),
            },
        };
        bail!("cannot save to {}{link}: {why}", path.display());
    }
    // The rename would replace whatever is there: a directory fails only
    // after the run, and a device or pipe (`/dev/null`) would be replaced
    // by a regular file.
    let trailing_slash = path.as_os_str().to_string_lossy().ends_with('/');
    if path.file_name().is_none() || trailing_slash {
        // The path names a directory: the example goes inside it, where the
        // user meant the file to go (not beside it, in `dir`).
        let inside = path.join(example);
        let why = match fs::metadata(path) {
            Ok(_) => format!(
                "not a file path but a directory; name a file in it, e.g. {}",
                inside.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => format!(
                "not a file path (it ends in '/'), and no such directory exists; create it and name a file in it, e.g. {}",
                inside.display()
            ),
            Err(e) => match crate::error::path_fault(&e, path) {
                Some(why) => format!("not a file path, and {why}"),
                None => format!("not a file path; name a file, e.g. {}", inside.display()),
            },
        };
        bail!("cannot save to {}: {why}", path.display());
    }
    // `path` through its links, as the system follows them (a "link" in
    // /proc to a pipe names no file `destination` could reach).
    if let Ok(meta) = fs::metadata(path).or_else(|_| fs::metadata(&dest)) {
        if meta.is_dir() {
            bail!(
                "cannot save to {}: it is a directory; name a file in it, e.g. {}",
                path.display(),
                path.join(example).display()
            );
        }
        if !meta.is_file() {
            bail!(
                "cannot save to {}: it is not a regular file (a device, pipe or socket), which a save would replace; choose a file path",
                path.display()
            );
        }
    }
    // In a sticky directory (/tmp) only a file's owner, the directory's
    // or root may replace it: the rename would fail with a bare EPERM,
    // after the work.
    #[cfg(unix)]
    if let (Ok(file), Ok(parent)) = (fs::metadata(&dest), fs::metadata(&dir)) {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let me = rustix::process::geteuid().as_raw();
        let sticky = parent.permissions().mode() & 0o1000 != 0;
        if sticky && me != 0 && file.uid() != me && parent.uid() != me {
            bail!(
                "cannot save to {}: the file is another user's, in {}, a directory (sticky, as /tmp is) where only a file's owner may replace it; choose another name, or ask its owner to remove it",
                path.display(),
                dir.display()
            );
        }
    }
    // A name the file system cannot hold fails only at the rename, after
    // the work: ask about it now.
    let too_long = |what: &str, name: &Path| {
        anyhow::anyhow!(
            "cannot save to {}: {what} ({} bytes) is too long for the file system; choose a shorter name",
            path.display(),
            name.file_name().map_or(0, |n| n.len()),
        )
    };
    if fs::symlink_metadata(&dest).is_err_and(|e| e.kind() == std::io::ErrorKind::InvalidFilename) {
        return Err(too_long("the name", &dest));
    }
    // Probe with the temporary file a save writes, then remove it.
    let probe = tmp_path(&dir, &dest);
    match TempFile::create_new(tmp_names(&dir, &dest)) {
        // Dropped at once: removed.
        Ok(_) => {}
        // A file system that allows shorter names than most.
        Err(e) if e.kind() == std::io::ErrorKind::InvalidFilename => {
            return Err(too_long("the name of the save's temporary file", &probe))
        }
        // ENOENT in a directory that was there and has been removed (the
        // current one, deleted from another shell): no file can be made
        // in it again.
        #[cfg(unix)]
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && fs::metadata(&dir).is_ok_and(|m| std::os::unix::fs::MetadataExt::nlink(&m) == 0) =>
        {
            bail!(
                "cannot save to {}: the directory {} has been deleted ({e}); choose a path in a directory that exists",
                path.display(),
                dir.display()
            )
        }
        // ENOENT in a directory that is there: one of /proc, /sys or
        // another special file system, which takes no new files.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir.is_dir() => bail!(
            "cannot save to {}: {} takes no new files ({e}: a special file system such as /proc or /sys); choose a directory on a disk",
            path.display(),
            dir.display()
        ),
        // A limit reached (no inodes left, no descriptors) has its own fix.
        Err(e) => bail!(
            "cannot save to {}: cannot write in {} ({e}); {}",
            path.display(),
            dir.display(),
            crate::error::resource_fix(&e).unwrap_or("choose a writable directory")
        ),
    }
    Ok(dir)
}

/// The directory a save to `path` (through its links: [`destination`])
/// writes its temporary file in.
fn dir_of(dest: &Path) -> PathBuf {
    match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Refuse, before the work, a save of at least `need` bytes to `path`
/// whose disk has less room than that for this process (root may also
/// take the blocks a file system keeps back): the save would fail with
/// ENOSPC only after the run. `what` names the file ("the model"). Where
/// the room cannot be told, the save finds out.
pub fn check_room(path: &Path, need: u64, what: &str) -> Result<()> {
    #[cfg(unix)]
    {
        let dir = dir_of(&destination(path));
        if let Ok(st) = rustix::fs::statvfs(&dir) {
            let blocks = match rustix::process::geteuid().is_root() {
                true => st.f_bfree,
                false => st.f_bavail,
            };
            let free = blocks.saturating_mul(st.f_frsize);
            if free < need {
                let (free, need) = crate::show::sizes_apart(free, need);
                bail!(
                    "cannot save to {}: {} has room for {free}, and {what} needs {need} or more; free space on that disk, or choose a path on another one",
                    path.display(),
                    dir.display(),
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (path, need, what);
    Ok(())
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

/// Memory the system can still give this process (Linux: `MemAvailable`),
/// or less where `ulimit -v` leaves less address space than that.
pub fn available_memory() -> Option<u64> {
    let avail = mem_available()?;
    Some(address_space_left().map_or(avail, |left| left.min(avail)))
}

/// The machine's `MemAvailable` (`/proc/meminfo`), in bytes.
fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// " (all that ulimit -v leaves)" where the address space left under the
/// process's `ulimit -v` is what makes [`available_memory`] what it is, so
/// that a refusal says the limit, not the machine, is what is short.
pub fn memory_limit_note() -> &'static str {
    match (address_space_left(), mem_available()) {
        (Some(left), Some(avail)) if left < avail => " (all that ulimit -v leaves)",
        _ => "",
    }
}

/// The soft `RLIMIT_AS` (`ulimit -v`) less the address space already in use
/// (`VmSize`), when a limit is set.
fn address_space_left() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))?;
    // "Max address space   <soft>   <hard>   bytes"; "unlimited" fails to parse.
    let soft: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmSize:"))?;
    let used_kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(soft.saturating_sub(used_kb * 1024))
}

/// `path`, opened to be read whole as a `what` (`model`, `checkpoint`,
/// `metrics`): a file or a pipe (`<(ssh host cat log.jsonl)`), not a
/// directory or a device such as `/dev/zero`, which would be read until
/// memory runs out.
pub fn open_input(path: &Path, what: &str) -> Result<(File, fs::Metadata)> {
    let found = fs::metadata(path);
    if let Some(why) = (found.as_ref().err()).and_then(|e| crate::error::path_fault(e, path)) {
        bail!("cannot read {what} {}: {why}", path.display());
    }
    let meta = match found {
        // `-` stands for standard input only where a command says so (an
        // image for predict, a log for plot), not for a model or checkpoint.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && path == Path::new("-") => bail!(
            "cannot read {what} -: no such file, and - is not standard input here; pass the file's path (or /dev/stdin)"
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "cannot read {what} {}: no such file; check the path",
            path.display()
        ),
        // A directory on the way that this user may not enter.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => bail!(
            "cannot read {what} {}: permission denied on a directory in its path; make the directories readable and searchable (chmod a+rx), or run as a user who may enter them",
            path.display()
        ),
        r => r.with_context(|| format!("cannot read {what} {}", path.display()))?,
    };
    if let Some(why) = not_readable(&meta) {
        bail!(
            "cannot read {what} {}: {why}; pass the {what} file itself",
            path.display()
        );
    }
    let file = match File::open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => bail!(
            "cannot read {what} {}: permission denied; make it readable (chmod a+r), or run as a user who may read it",
            path.display()
        ),
        r => r.with_context(|| format!("cannot read {what} {}", path.display()))?,
    };
    Ok((file, meta))
}

/// The bytes of `path`, a `what` read whole (see [`open_input`]), at most
/// `max` of them: a longer file is refused before it is read, a longer
/// pipe after `max + 1` bytes, rather than read until memory runs out.
pub fn read_input(path: &Path, what: &str, max: u64) -> Result<Vec<u8>> {
    read_input_checked(path, what, max, |_| Ok(()))
}

/// [`read_input`], with `first_line` (its bytes up to and with the line
/// break, or all there are) checked as soon as it is read: a pipe of
/// something else entirely (`yes | simplenn plot -`) is refused at its
/// first line, not after `max` bytes of it have been read and held.
pub fn read_input_checked(
    path: &Path,
    what: &str,
    max: u64,
    first_line: impl FnOnce(&[u8]) -> Result<()>,
) -> Result<Vec<u8>> {
    use std::io::BufRead;
    let (file, meta) = open_input(path, what)?;
    let too_long = || {
        anyhow::anyhow!(
            "cannot read {what} {}: longer than {max} bytes, the most a {what} file can hold; pass the {what} file itself",
            path.display()
        )
    };
    if meta.is_file() && meta.len() > max {
        return Err(too_long());
    }
    let cannot = || format!("cannot read {what} {}", path.display());
    let mut reader = std::io::BufReader::new(file.take(max.saturating_add(1)));
    let mut bytes = Vec::new();
    reader.read_until(b'\n', &mut bytes).with_context(cannot)?;
    if bytes.len() as u64 > max {
        return Err(too_long());
    }
    first_line(&bytes)?;
    reader.read_to_end(&mut bytes).with_context(cannot)?;
    if bytes.len() as u64 > max {
        return Err(too_long());
    }
    Ok(bytes)
}

/// Why an input of this kind is refused: a directory, or a device or socket
/// (a file or a pipe is read).
pub fn not_readable(meta: &fs::Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    #[cfg(unix)]
    let pipe = std::os::unix::fs::FileTypeExt::is_fifo(&t);
    #[cfg(not(unix))]
    let pipe = false;
    if t.is_dir() {
        Some("it is a directory")
    } else if t.is_file() || pipe {
        None
    } else {
        Some("it is a device or socket, not a file")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file another process writes at the path while a guarded save's
    /// bytes are written (after any check made before them) is kept, and
    /// the save goes beside it; the stamp returned is of the file written,
    /// and a later write of another length tells from it even where the
    /// time is set back to the same tick.
    #[test]
    fn a_guarded_save_keeps_a_file_written_while_it_wrote() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("m.jsonl");
        let (_, first) = write_guarded(&path, b"{\"epoch\":1}\n", None).unwrap();
        assert_eq!(stamp(&path), Some(first));
        let other = path.clone();
        let written = guarded_save_while(&path, first, move || {
            fs::write(&other, b"another run's").unwrap()
        });
        let (own, second) = written.unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"another run's");
        let own_name = format!("m.{}.jsonl", std::process::id());
        assert_eq!(own, t.path().join(&own_name));
        assert_eq!(fs::read(&own).unwrap(), b"{\"epoch\":2}\n");
        assert_eq!(stamp(&own), Some(second));
        // Rewritten in place, one byte longer, its time put back.
        let modified = fs::metadata(&own).unwrap().modified().unwrap();
        fs::write(&own, b"{\"epoch\":22}\n").unwrap();
        let f = fs::OpenOptions::new().write(true).open(&own).unwrap();
        f.set_modified(modified).unwrap();
        drop(f);
        assert_ne!(stamp(&own), Some(second));
    }

    /// A guarded save of a log's second epoch to `path`, which this run
    /// last saw as `first`, with `meanwhile` run just before each rename
    /// (what another process does during the save).
    fn guarded_save_while(
        path: &Path,
        first: Stamp,
        meanwhile: impl Fn() + 'static,
    ) -> Result<(PathBuf, Stamp)> {
        BEFORE_RENAME.with(|h| *h.borrow_mut() = Some(Box::new(meanwhile)));
        let guard = Guard {
            seen: Some(Some(first)),
            what: "--metrics",
            goes: "log goes",
        };
        let written = write_guarded(path, b"{\"epoch\":2}\n", Some(guard));
        BEFORE_RENAME.with(|h| *h.borrow_mut() = None);
        written
    }

    /// A save that goes beside its path and fails there too says where it
    /// went ([`Redirected`]), reads as that failure once, and keeps its
    /// causes in the chain (where a limit's fix is found).
    #[test]
    fn a_redirected_save_that_fails_says_where_it_went() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("d");
        fs::create_dir(&dir).unwrap();
        let path = dir.join("m.jsonl");
        let (_, first) = write_guarded(&path, b"{\"epoch\":1}\n", None).unwrap();
        let (other, calls) = (path.clone(), std::cell::Cell::new(0));
        // Another process writes the path during the save; then, during
        // the save beside it, the directory goes.
        let written = guarded_save_while(&path, first, move || {
            calls.set(calls.get() + 1);
            match calls.get() {
                1 => fs::write(&other, b"another run's").unwrap(),
                _ => fs::remove_dir_all(other.parent().unwrap()).unwrap(),
            }
        });
        let e = written.unwrap_err();
        let own = dir.join(format!("m.{}.jsonl", std::process::id()));
        assert_eq!(e.downcast_ref::<Redirected>().map(|r| &r.own), Some(&own));
        let text = format!("{e:#}");
        let says = format!("cannot save to {}: ", own.display());
        assert!(text.starts_with(&says), "{text}");
        assert_eq!(text.matches("cannot save to").count(), 1, "{text}");
        let io = e.chain().find_map(|c| c.downcast_ref::<std::io::Error>());
        assert_eq!(
            io.map(|e| e.kind()),
            Some(std::io::ErrorKind::NotFound),
            "{text}"
        );
    }

    /// What each kind takes for its own: the start of what simplenn writes
    /// there, or nothing yet.
    #[test]
    fn kinds_know_their_own_files() {
        let model = |n: u64, rest: &[u8]| [&n.to_le_bytes()[..], rest].concat();
        let st = model(2, b"{}");
        assert!(Kind::Model.fits(&st, st.len() as u64));
        // A header length past the file's end: not a safetensors file.
        let cut = model(99, b"{}");
        assert!(!Kind::Model.fits(&cut, cut.len() as u64));
        assert!(!Kind::Model.fits(b"# a README that is long enough", 30));
        for kind in [Kind::Model, Kind::Log, Kind::Png, Kind::Svg] {
            assert!(kind.fits(b"", 0), "{kind:?}: empty");
            assert!(kind.fits(b" \n\t", 3), "{kind:?}: blanks");
            // Blanks, then more than the head holds: not known to be blank.
            assert!(!kind.fits(b" \n\t", 5000), "{kind:?}: blanks, then more");
        }
        assert!(Kind::Log.fits(b"\n{\"epoch\":1}", 12));
        assert!(!Kind::Log.fits(b"epoch 1 done", 12));
        assert!(Kind::Png.fits(b"\x89PNG\r\n\x1a\n....", 12));
        assert!(!Kind::Png.fits(b"GIF89a", 6));
        for svg in [
            &b"<svg width=\"10\">"[..],
            b"\xef\xbb\xbf <?xml version=\"1.0\"?><svg>",
            b"<!DOCTYPE svg PUBLIC",
        ] {
            assert!(Kind::Svg.fits(svg, svg.len() as u64), "{svg:?}");
        }
        assert!(!Kind::Svg.fits(b"<!DOCTYPE html>", 15));
        // Files a black-box audit found taken for, or refused as, these kinds.
        let cases: [(Kind, &[u8], bool); 16] = [
            (Kind::Svg, b"<!-- Font Awesome --><svg xmlns=\"http://www.w3.org/2000/svg\"/>", true),
            (Kind::Svg, b"<!---->\n<svg>", true),
            (Kind::Svg, b"<?xml version=\"1.0\"?>\n<!-- c -->\n<!DOCTYPE svg [ <!ENTITY a \"b\"> ]>\n<svg/>", true),
            (Kind::Svg, b"<?xml version=\"1.0\"?><?xml-stylesheet href=\"s.css\"?><svg:svg xmlns:svg=\"x\">", true),
            (Kind::Svg, b"<?xml version=\"1.0\"?>\n<project><modelVersion/></project>", false),
            (Kind::Svg, b"<?xml version=\"1.0\"?><!-- <svg> --><project/>", false),
            (Kind::Svg, b"<svg is a format I like", false),
            (Kind::Svg, b"<svgfoo>", false),
            (Kind::Svg, b"<!DOCTYPE html><html><svg/></html>", false),
            (Kind::Log, b"{\"epoch\":1,\"lr\":0.1}\r\n\r\n{\"epoch\":2}\n", true),
            (Kind::Log, b"{\\rtf1\\ansi hello}", false),
            (Kind::Log, b"{ echo hi; }\n", false),
            (Kind::Log, b"{\n  \"a\": 1\n}\n", false),
            (Kind::Log, b"{\"epoch\":1}\nplain text line\n", false),
            (Kind::Log, b"{\"a\":1}\n", false),
            (Kind::Png, b"\x89PNG\r\n\x1a\n", true),
        ];
        for (kind, text, want) in cases {
            let got = kind.fits(text, text.len() as u64);
            assert_eq!(got, want, "{kind:?}: {}", String::from_utf8_lossy(text));
        }
        let fits = |kind: Kind, text: &[u8]| kind.fits(text, text.len() as u64);
        let st = |header: &[u8]| [&(header.len() as u64).to_le_bytes()[..], header].concat();
        assert!(fits(Kind::Model, &st(br#"{"__metadata__":{"a":"b"}}  "#)));
        assert!(!fits(Kind::Model, &st(b"{not json!")));
    }

    /// A save that no disk has room for is refused, naming the room; one
    /// of nothing passes.
    #[cfg(unix)]
    #[test]
    fn a_save_larger_than_the_disks_room_is_refused_before_the_work() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        check_room(&path, 0, "the model").unwrap();
        let e = check_room(&path, u64::MAX, "the model").unwrap_err();
        let e = e.to_string();
        assert!(
            e.starts_with(&format!("cannot save to {}: ", path.display())),
            "{e}"
        );
        assert!(
            e.contains(" GB, and the model needs 18446744073.7 GB or more; free space"),
            "{e}"
        );
    }

    /// A temporary file is listed for a second Ctrl-C while it exists, and
    /// gone when dropped, unless it was renamed into place.
    #[test]
    fn temporary_files_are_listed_while_they_exist() {
        let dir = tempfile::tempdir().unwrap();
        let listed = |p: &Path| IN_FLIGHT.lock().unwrap().iter().any(|q| q == p);
        let (tmp, target) = (dir.path().join(".m.tmp1"), dir.path().join("m"));
        let (mut f, t) = TempFile::create_new([tmp.clone()]).unwrap();
        f.write_all(b"x").unwrap();
        assert!(listed(&tmp) && tmp.exists());
        drop(t);
        assert!(!listed(&tmp) && !tmp.exists(), "a dropped one is removed");
        let (_, t) = TempFile::create_new([tmp.clone()]).unwrap();
        t.renamed(&target).unwrap();
        assert!(!listed(&tmp) && !tmp.exists() && target.exists());
        // A failed save leaves neither a temporary file nor a listing: the
        // rename of an IDX file onto a non-empty directory fails after its
        // temporary file was written.
        let busy = dir.path().join("d");
        fs::create_dir(&busy).unwrap();
        fs::write(busy.join("f"), b"").unwrap();
        crate::idx::write_idx(&busy, &[1], &[0]).unwrap_err();
        let busy_tmp = tmp_path(dir.path(), &busy);
        assert!(!listed(&busy_tmp) && !busy_tmp.exists());
        fs::remove_dir_all(&busy).unwrap();
        write_atomic(&dir.path().join("sub/m"), b"x").unwrap_err();
        write_atomic(&target, b"y").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"y");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// A writer in another PID namespace (a container sharing the
    /// directory) may have a process id that is dead here, or this
    /// process's own: its file, locked while written, is neither removed
    /// as stale nor truncated by a writer that takes the same name.
    #[cfg(unix)]
    #[test]
    fn another_namespaces_temporary_file_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("m.st");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        // Its writer's id is dead here, but the writer holds it.
        let theirs = dir.path().join(format!(".m.st.tmp{dead}"));
        let (mut f, mut held) = TempFile::create_new([theirs.clone()]).unwrap();
        f.write_all(b"theirs").unwrap();
        assert_eq!(remove_stale(dir.path(), ".m.st.tmp"), 0);
        write_atomic(&target, b"ours").unwrap();
        assert_eq!(fs::read(&theirs).unwrap(), b"theirs");
        // A writer of this process's id elsewhere holds the first name.
        let first = tmp_path(dir.path(), &target);
        fs::write(&first, b"same id").unwrap();
        let (_, mine) = TempFile::create_new(tmp_names(dir.path(), &target)).unwrap();
        assert_eq!(mine.path(), PathBuf::from(format!("{}-1", first.display())));
        assert_eq!(fs::read(&first).unwrap(), b"same id");
        mine.renamed(&target).unwrap();
        // Once its writer is gone (killed: its lock goes with it), the
        // dead id's file is stale.
        held.done = true;
        drop(held);
        drop(f);
        assert!(theirs.exists());
        // A child that another test's thread is starting holds a copy of
        // `f`'s descriptor, and so its lock, until it execs: a moment, but
        // one that failed this 2 runs in 25 of the whole suite.
        let removed = (0..200)
            .map(|_| remove_stale(dir.path(), ".m.st.tmp"))
            .inspect(|&n| {
                if n == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(5))
                }
            })
            .find(|&n| n > 0);
        assert_eq!(removed, Some(1));
        assert!(!theirs.exists() && first.exists());
    }

    /// Temporary files of processes that no longer exist go; this
    /// process's, a live one's (pid 1), and other names stay; and a save or
    /// a decompression clears those left beside its own file.
    #[cfg(unix)]
    #[test]
    fn stale_temporary_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name);
        // A pid no process has now: a child's, once it has been reaped.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let me = std::process::id();
        let names = [
            format!(".m.st.tmp{dead}"),
            format!("train-labels-idx1-ubyte.tmp{dead}-3"),
            format!(".m.st.tmp{me}"),
            ".m.st.tmp1".to_string(),
            format!(".m.st.tmp{dead}.bak"),
            format!(".m.st.tmp1.tmp{dead}"),
        ];
        for n in &names {
            fs::write(at(n), b"x").unwrap();
        }
        assert_eq!(remove_stale(dir.path(), ".m.st.tmp"), 1);
        assert!(!at(&names[0]).exists());
        for n in &names[2..] {
            assert!(at(n).exists(), "{n} was removed");
        }
        // A save removes its own file's leftovers, leaves the
        // decompression's alone, and a decompression removes those.
        let own = at(&format!(".saved.st.tmp{dead}"));
        fs::write(&own, b"x").unwrap();
        write_atomic(&at("saved.st"), b"y").unwrap();
        assert!(!own.exists(), "the save left its own leftover");
        assert!(at(&names[1]).exists());
        let gz = at("train-labels-idx1-ubyte.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&[0, 0, 8, 1, 0, 0, 0, 1, 7]).unwrap();
        fs::write(&gz, enc.finish().unwrap()).unwrap();
        crate::idx::locate(dir.path(), "train-labels-idx1-ubyte", 1).unwrap();
        assert!(!at(&names[1]).exists(), "the decompression left it");
    }

    /// A save through a symbolic link replaces the file at the end of its
    /// links (creating it if need be) and leaves the links as they were;
    /// a link to a device is refused, and a link into a missing directory
    /// is named with where it leads.
    #[cfg(unix)]
    #[test]
    fn saves_follow_symbolic_links() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name);
        let is_link = |p: &Path| fs::symlink_metadata(p).unwrap().file_type().is_symlink();
        fs::create_dir(at("sub")).unwrap();
        // A relative link to a link, in another directory, to a file not yet there.
        symlink("sub/hop", at("link")).unwrap();
        symlink("../m.st", at("sub/hop")).unwrap();
        assert_eq!(destination(&at("link")), at("sub/../m.st"));
        write_atomic(&at("link"), b"one").unwrap();
        write_atomic(&at("link"), b"two").unwrap();
        assert_eq!(fs::read(at("m.st")).unwrap(), b"two");
        assert!(is_link(&at("link")) && is_link(&at("sub/hop")));
        // An absolute link to a device.
        symlink("/dev/null", at("null")).unwrap();
        let e = format!("{:#}", write_atomic(&at("null"), b"x").unwrap_err());
        assert!(e.contains("not a regular file"), "{e}");
        assert!(is_link(&at("null")));
        // A link into a directory that does not exist, and a path through a file.
        symlink("gone/m.st", at("dangling")).unwrap();
        let e = format!("{:#}", check_dir(&at("dangling")).unwrap_err());
        assert!(e.contains("(a link to ") && e.contains("gone/m.st"), "{e}");
        assert!(e.contains("does not exist; create it"), "{e}");
        let e = format!("{:#}", check_dir(&at("m.st/x")).unwrap_err());
        assert!(e.contains("m.st is not a directory"), "{e}");
        // A loop of links is refused, and stays as it was.
        symlink("loop2", at("loop1")).unwrap();
        symlink("loop1", at("loop2")).unwrap();
        let e = format!("{:#}", write_atomic(&at("loop1"), b"x").unwrap_err());
        assert!(e.contains("go round in a loop"), "{e}");
        assert!(is_link(&at("loop1")) && is_link(&at("loop2")));
        fs::remove_file(at("loop1")).unwrap();
        fs::remove_file(at("loop2")).unwrap();
        // Nothing else was left: the five names, the directory, its link.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 5);
        assert_eq!(fs::read_dir(at("sub")).unwrap().count(), 1);
    }

    /// A directory of a special file system that takes no new files
    /// (/proc: ENOENT for a file it does not have) is said to be one, not
    /// as "No such file or directory" in a directory that is there.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_special_file_system_is_said_to_take_no_files() {
        let e = format!(
            "{:#}",
            check_dir(Path::new("/proc/m.safetensors")).unwrap_err()
        );
        assert!(
            e.contains("/proc takes no new files (") && e.ends_with("choose a directory on a disk"),
            "{e}"
        );
    }

    /// A save over an existing file keeps that file's permissions.
    #[cfg(unix)]
    #[test]
    fn a_replaced_file_keeps_its_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.st");
        write_atomic(&path, b"one").unwrap();
        // A mode no umask gives a new file (others may read, the group not).
        fs::set_permissions(&path, fs::Permissions::from_mode(0o604)).unwrap();
        write_atomic(&path, b"two").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!((fs::read(&path).unwrap(), mode), (b"two".to_vec(), 0o604));
    }

    /// A file made read-only is not saved over (a rename would replace it
    /// all the same); a writable one of the right kind is.
    #[cfg(unix)]
    #[test]
    fn a_write_protected_file_is_not_replaced() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.jsonl");
        fs::write(&path, b"").unwrap();
        assert!(check_replaceable("--metrics", &path, Kind::Log).is_ok());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
        let e = check_replaceable("--metrics", &path, Kind::Log)
            .unwrap_err()
            .to_string();
        assert!(e.contains("run.jsonl: that file is write-protected"), "{e}");
        assert!(e.contains("chmod u+w"), "{e}");
    }

    /// A second Ctrl-C removes every temporary file in flight. Run in a
    /// child process (this test binary, this test alone), since
    /// `remove_in_flight` keeps the list locked for good.
    #[test]
    fn remove_in_flight_removes_the_temporary_files() {
        const DIR: &str = "SIMPLENN_TEST_IN_FLIGHT_DIR";
        if let Some(dir) = std::env::var_os(DIR) {
            let tmp = Path::new(&dir).join(".m.tmp1");
            let (_, t) = TempFile::create_new([tmp.clone()]).unwrap();
            // Still listed; never dropped, since its drop would wait for
            // the lock for ever (a failed assert below too).
            std::mem::forget(t);
            assert!(tmp.exists());
            assert_eq!(remove_in_flight(), 1);
            assert!(!tmp.exists(), "left in place");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "atomic::tests::remove_in_flight_removes_the_temporary_files",
                "--test-threads=1",
            ])
            .env(DIR, dir.path())
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&child.stdout);
        assert!(child.status.success(), "{out}");
        assert!(out.contains("1 passed"), "{out}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_path_made_a_directory_is_refused_with_an_example_of_its_kind() {
        // A run's log, picture or model whose path another program made a
        // directory meanwhile: the example is a file of what was written.
        let dir = tempfile::tempdir().unwrap();
        for (name, example) in [
            ("m.jsonl", "metrics.jsonl"),
            ("c.svg", "curve.svg"),
            ("g.png", "augment.png"),
            ("m.safetensors", "model.safetensors"),
            ("noext", "model.safetensors"),
        ] {
            let path = dir.path().join(name);
            fs::create_dir(&path).unwrap();
            let e = format!("{:#}", write_atomic(&path, b"x").unwrap_err());
            let want = format!(
                "it is a directory; name a file in it, e.g. {}",
                path.join(example).display()
            );
            assert!(e.ends_with(&want), "{e}");
            assert_eq!(fs::read_dir(&path).unwrap().count(), 0, "{name}");
        }
    }
}
