//! Files read back whole (models, checkpoints, metrics logs), from a
//! regular file or a pipe only, and never more than the most such a file
//! can hold.

use std::fs::{self, File};
use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};

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
