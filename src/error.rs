//! The error kinds that carry a meaning beyond their message: `main` maps
//! them to exit codes. A leaf: every module may return them, none is needed
//! to build them.

/// A bad flag value, or flags that contradict each other or a checkpoint:
/// main prints it and exits with status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A usage error whose line must not go to standard error, because standard
/// error is a file the command must not write into (a file of the data set,
/// `2>> data/mnist/t10k-labels-idx1-ubyte`, or one it reads): main writes
/// the line to standard output instead, unless `stdout_too` (standard
/// output is such a file as well: `>> … 2>&1`), and exits with status 2
/// either way.
#[derive(Debug, thiserror::Error)]
#[error("{line}")]
pub struct NotOnStderr {
    pub line: String,
    pub stdout_too: bool,
}

/// Write `line` and its newline to standard error in one write. `writeln!`
/// on the unbuffered stderr makes two, and a line another thread writes in
/// between (a signal's notice beside an epoch line, with `> log 2>&1`) was
/// seen to land there. A standard error that cannot be written (a terminal
/// that hung up, `2> /dev/full`) costs the line, never the exit status.
/// A line break or other control character in it (a path or a name the
/// line quotes) is written out ([`crate::show::controls_written`]): it
/// could split the line, colour the terminal or turn the text around.
pub fn eprint_line(line: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(as_line(line).as_bytes());
}

/// `line` as [`eprint_line`] writes it: its control characters written
/// out, then one newline.
fn as_line(line: &str) -> String {
    format!("{}\n", crate::show::controls_written(line))
}

/// What an I/O error on `path` means where the path is wrong as written,
/// with the fix, where the OS's own words ("Not a directory (os error
/// 20)") would leave the user to work it out; `None` for any other error.
pub fn path_fault(e: &std::io::Error, path: &std::path::Path) -> Option<String> {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::ELOOP) {
        return Some(
            "its symbolic links go round in a loop (or past 40 links); check them with ls -l"
                .into(),
        );
    }
    match e.kind() {
        std::io::ErrorKind::NotADirectory => {
            Some("its path goes through a file as if it were a directory; check the path".into())
        }
        // ENAMETOOLONG: one name past the file system's limit, or the
        // whole path past the system's.
        std::io::ErrorKind::InvalidFilename => {
            let longest = path.iter().map(|n| n.len()).max().unwrap_or(0);
            Some(match longest > 255 {
                true => format!(
                    "a name in its path is {longest} bytes, longer than file systems allow (255 on most); use a shorter name"
                ),
                false => format!(
                    "its path is {} bytes, longer than the system allows (4096 on Linux); use a shorter one, or run from a directory nearer it",
                    path.as_os_str().len()
                ),
            })
        }
        _ => None,
    }
}

/// The fix where a thread other than the pool's could not start, which
/// fewer `--threads` would not help (`serve` has no such flag).
pub const THREADS_FIX: &str =
    "a limit on threads or memory (ulimit -u, ulimit -v) is too low for this; raise it";

/// The fix for an I/O error that a limit of this process or of the
/// machine caused (memory, threads, open files, file size, disk space or
/// quota), which the OS's words alone ("Cannot allocate memory (os error
/// 12)") do not give; `None` for any other error.
pub fn resource_fix(e: &std::io::Error) -> Option<&'static str> {
    #[cfg(unix)]
    {
        let fix = match e.raw_os_error()? {
            libc::ENOMEM => "the memory limit (ulimit -v) or the machine's free memory is too small for this; raise the limit or free memory",
            libc::EAGAIN => "a limit on threads or memory (ulimit -u, ulimit -v) is too low for this; raise it, or use fewer --threads",
            libc::EMFILE => "this process may open no more files (ulimit -n); raise that limit",
            libc::ENFILE => "the system may open no more files; close some programs, or raise fs.file-max",
            libc::EFBIG => "a file-size limit (ulimit -f) stops the write; raise it, or write elsewhere",
            libc::ENOSPC => "the disk (or its inodes: df -i) is full; free space there, or write elsewhere",
            libc::EDQUOT => "the disk quota is used up; free space in it, or write elsewhere",
            _ => return None,
        };
        Some(fix)
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::{as_line, path_fault};

    /// Each fault from the OS itself, on paths made to have it.
    #[test]
    fn paths_wrong_as_written_are_explained() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let said = |p: &std::path::Path| path_fault(&std::fs::metadata(p).unwrap_err(), p);
        let through = said(&file.join("x")).unwrap();
        assert!(through.contains("goes through a file as if it were a directory"));
        let long_name = said(&t.path().join("a".repeat(300))).unwrap();
        assert!(
            long_name.contains("a name in its path is 300 bytes"),
            "{long_name}"
        );
        let deep = t.path().join(vec!["b".repeat(200); 25].join("/"));
        let long_path = said(&deep).unwrap();
        let bytes = deep.as_os_str().len();
        assert!(
            long_path.contains(&format!("its path is {bytes} bytes")),
            "{long_path}"
        );
        #[cfg(unix)]
        {
            let (a, b) = (t.path().join("a"), t.path().join("b"));
            std::os::unix::fs::symlink(&a, &b).unwrap();
            std::os::unix::fs::symlink(&b, &a).unwrap();
            assert!(said(&a).unwrap().contains("go round in a loop"));
        }
        assert_eq!(said(&t.path().join("missing")), None);
        // Names of 255 bytes (allowed) in a path past 4096 bytes: the
        // path is at fault, not a name.
        let deep = t.path().join(vec!["c".repeat(255); 17].join("/"));
        let why = said(&deep).unwrap();
        let bytes = deep.as_os_str().len();
        assert!(why.contains(&format!("its path is {bytes} bytes")), "{why}");
    }

    /// A line for standard error stays one line: a break or an escape in
    /// what it quotes is written out, and one newline ends it.
    #[test]
    fn a_line_for_standard_error_is_one_line_whatever_it_quotes() {
        assert_eq!(
            as_line("simplenn: error: a\nb\x1b[31m \\n"),
            "simplenn: error: a\\nb\\u{1b}[31m \\n\n"
        );
        assert_eq!(as_line("plain"), "plain\n");
    }
}
