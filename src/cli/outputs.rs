//! Output paths compared as files: two outputs that are one file, or a
//! file of the data set, are refused before anything is written.

use std::path::{Path, PathBuf};

use crate::error::UsageError;

/// Refuse outputs that would overwrite one another (compared as files, so
/// `./m` and `m` are one) or a file of the data set in `data`.
pub fn check_outputs(
    outputs: &[(&str, Option<&PathBuf>)],
    data: Option<&Path>,
) -> Result<(), UsageError> {
    let present: Vec<(&str, &PathBuf, PathBuf)> = outputs
        .iter()
        .filter_map(|(flag, p)| p.map(|p| (*flag, p, file_identity(p))))
        .collect();
    let data_dir = data.and_then(|d| std::fs::canonicalize(d).ok());
    // Where copies of a read-only or full data directory's files go.
    let cache = data_dir.as_deref().and_then(crate::idx::cache_dir);
    for (i, (a, pa, ia)) in present.iter().enumerate() {
        if let Some((b, pb, _)) = present[i + 1..].iter().find(|(_, _, ib)| ib == ia) {
            return Err(UsageError(format!(
                "{a} {} and {b} {} are the same file; give each its own path",
                pa.display(),
                pb.display()
            )));
        }
        if let Some(dir) = &data_dir {
            // Each file of the data set, where a save would land on it
            // (through its links: a data file may be a link elsewhere).
            let data_file = crate::data::FILES
                .iter()
                .flat_map(|f| [f.to_string(), format!("{f}.gz")])
                .chain(["MD5SUMS".to_string()])
                .any(|f| file_identity(&dir.join(f)) == *ia);
            if data_file {
                return Err(UsageError(format!(
                    "{a} {}: that is a file of the data set in {}; choose another path",
                    pa.display(),
                    dir.display()
                )));
            }
            // The copies decompressed into the cache (a read-only or full
            // data directory's), and the notes beside them.
            let cached = cache.as_ref().is_some_and(|cache| {
                crate::data::FILES.iter().any(|f| {
                    let copy = cache.join(f);
                    [crate::idx::stamp_path(&copy), copy]
                        .iter()
                        .any(|c| file_identity(c) == *ia)
                })
            });
            if cached {
                return Err(UsageError(format!(
                    "{a} {}: that is simplenn's cached copy of a file of the data set in {}; choose another path",
                    pa.display(),
                    dir.display()
                )));
            }
        }
    }
    Ok(())
}

/// The file a save to `p` would replace, with its directory resolved
/// (links, `.`, `..`), for comparing paths of files that may not exist
/// yet: a link and the file it points to are one file.
pub fn file_identity(p: &Path) -> PathBuf {
    let p = &crate::atomic::destination(p);
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match (std::fs::canonicalize(dir), p.file_name()) {
        (Ok(d), Some(name)) => d.join(name),
        _ => p.to_owned(),
    }
}
