//! The error kinds that carry a meaning beyond their message: `main` maps
//! them to exit codes. A leaf: every module may return them, none is needed
//! to build them.

/// A bad flag value, or flags that contradict each other or a checkpoint:
/// main prints it and exits with status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// What an I/O error on a path that is wrong as written means, with the
/// fix, where the OS's own words ("Not a directory (os error 20)") would
/// leave the user to work it out; `None` for any other error.
pub fn path_fault(e: &std::io::Error) -> Option<&'static str> {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::ELOOP) {
        return Some(
            "its symbolic links go round in a loop (or past 40 links); check them with ls -l",
        );
    }
    match e.kind() {
        std::io::ErrorKind::NotADirectory => {
            Some("a part of its path before the last is a file, not a directory; check the path")
        }
        std::io::ErrorKind::InvalidFilename => Some(
            "a name in its path is longer than the file system allows (255 bytes on most); use a shorter name",
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::path_fault;

    /// Each fault from the OS itself, on paths made to have it.
    #[test]
    fn paths_wrong_as_written_are_explained() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let said = |p: &std::path::Path| path_fault(&std::fs::metadata(p).unwrap_err());
        assert!(said(&file.join("x"))
            .unwrap()
            .contains("is a file, not a directory"));
        assert!(said(&t.path().join("a".repeat(300)))
            .unwrap()
            .contains("longer than"));
        #[cfg(unix)]
        {
            let (a, b) = (t.path().join("a"), t.path().join("b"));
            std::os::unix::fs::symlink(&a, &b).unwrap();
            std::os::unix::fs::symlink(&b, &a).unwrap();
            assert!(said(&a).unwrap().contains("go round in a loop"));
        }
        assert_eq!(said(&t.path().join("missing")), None);
    }
}
