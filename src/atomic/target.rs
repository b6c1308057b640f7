//! Whether a save to a path can succeed, asked before the work: the
//! directory is there and takes the temporary file, the disk has room, and
//! what the save would replace is a file of its kind (not a source file,
//! a device, a mount point, an immutable file or this process's own
//! standard output).

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::{destination, tmp_names, tmp_path, TempFile};

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
    pub(super) fn fits(self, head: &[u8], len: u64) -> bool {
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
    // A file of /proc or /sys: no rename replaces it, and neither chmod
    // nor moving it away (the fixes below) is possible there.
    #[cfg(target_os = "linux")]
    if let Some(fs_name) = special_file_system(&dest) {
        return Err(crate::error::UsageError(format!(
            "{flag} {}: {that} is on {fs_name}, a special file system where no save can replace a file; choose a path on a disk",
            path.display()
        )));
    }
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
    [(StdStream::Output, "output"), (StdStream::Error, "error")]
        .into_iter()
        .find(|&(stream, _)| is_std_stream_file(path, stream))
        .map(|(_, name)| name)
}

/// Whether `path` is a regular file and this process's `stream` (a
/// terminal or pipe read and written is no file to keep).
pub fn is_std_stream_file(path: &Path, stream: StdStream) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file()) && is_std_stream(path, stream)
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
    // `x/.` names the directory too, though `Path` drops its `.` and
    // takes `x` for the file's name (the rename would then fail).
    let text = path.as_os_str().as_encoded_bytes();
    let ends_in = [&b"/"[..], b"/."]
        .into_iter()
        .find(|end| text.ends_with(end));
    if text.is_empty() {
        bail!("cannot save to an empty path; name a file, e.g. {example}");
    }
    if path.file_name().is_none() || ends_in.is_some() {
        let ends_in = String::from_utf8_lossy(ends_in.unwrap_or(b"/"));
        // The path names a directory: the example goes inside it, where the
        // user meant the file to go (not beside it, in `dir`).
        let inside = path.components().as_path().join(example);
        let why = match fs::metadata(path) {
            Ok(_) => format!(
                "not a file path but a directory; name a file in it, e.g. {}",
                inside.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => format!(
                "not a file path (it ends in '{ends_in}'), and no such directory exists; create it and name a file in it, e.g. {}",
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
    // What the rename replaces is `dest`, whatever `path` is now: never a
    // device or pipe there either (`path` a file now, `dest` a link's old
    // target kept by `destination`).
    if let Ok(meta) = fs::symlink_metadata(&dest) {
        if !meta.is_file() && !meta.is_dir() && !meta.file_type().is_symlink() {
            bail!(
                "cannot save to {}: it would replace {}, which is not a regular file (a device, pipe or socket); choose a file path",
                path.display(),
                dest.display()
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
pub(super) fn dir_of(dest: &Path) -> PathBuf {
    match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Refuse, before the work, a save of at least `need` bytes to `path`
/// whose disk has less room than that for this process (root may also
/// take the blocks a file system keeps back): the save would fail with
/// ENOSPC only after the run; and one past the process's file-size limit,
/// which would fail with EFBIG. `what` names the file ("the model"). Where
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
        // A file-size limit (`ulimit -f`) stops the write wherever it goes.
        let limit = rustix::process::getrlimit(rustix::process::Resource::Fsize).current;
        if let Some(limit) = limit.filter(|&l| l < need) {
            let (limit, need) = crate::show::sizes_apart(limit, need);
            bail!(
                "cannot save to {}: the file-size limit (ulimit -f) is {limit}, and {what} needs {need} or more; raise the limit",
                path.display(),
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, need, what);
    Ok(())
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

/// The name of the kernel's pseudo file system `path` lies on (proc,
/// sysfs, and the like), if it does: their files are the kernel's, made
/// and removed by it alone.
#[cfg(target_os = "linux")]
fn special_file_system(path: &Path) -> Option<&'static str> {
    // linux/magic.h.
    const KNOWN: [(u64, &str); 7] = [
        (0x9fa0, "/proc (procfs)"),
        (0x6265_6572, "sysfs"),
        (0x6462_6720, "debugfs"),
        (0x7472_6163, "tracefs"),
        (0x0027_e0eb, "cgroupfs"),
        (0x6367_7270, "cgroup2fs"),
        (0x7363_6673, "securityfs"),
    ];
    let kind = rustix::fs::statfs(path).ok()?.f_type as u64;
    KNOWN
        .iter()
        .find(|(magic, _)| *magic == kind)
        .map(|(_, n)| *n)
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
