//! Output paths compared as files: two outputs that are one file, or a
//! file of the data set, are refused before anything is written.

use std::path::{Path, PathBuf};

use crate::error::{NotOnStderr, UsageError};

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
    for (i, (a, pa, ia)) in present.iter().enumerate() {
        if let Some((b, pb, _)) = present[i + 1..].iter().find(|(_, _, ib)| ib == ia) {
            return Err(UsageError(format!(
                "{a} {} and {b} {} are the same file; give each its own path",
                pa.display(),
                pb.display()
            )));
        }
        // Each file of the data set, where a save would land on it
        // (through its links: a data file may be a link elsewhere).
        if let Some((that, dir)) = data_file_where(data, |f| file_identity(f) == *ia) {
            return Err(UsageError(format!(
                "{a} {}: that is {that} in {}; choose another path",
                pa.display(),
                dir.display()
            )));
        }
    }
    Ok(())
}

/// Refuse `-o -` where the shell has sent standard output onto a file of
/// the data set in `data` (`>> data/mnist/train-labels-idx1-ubyte`), as
/// [`check_outputs`] refuses `-o /dev/stdout` there.
pub fn check_stdout_output(flag: &str, data: Option<&Path>) -> Result<(), UsageError> {
    match data_file_where(data, |f| crate::atomic::std_stream(f) == Some("output")) {
        Some((that, dir)) => Err(UsageError(format!(
            "{flag} -: standard output is {that} in {}; redirect it elsewhere, or name a file with {flag}",
            dir.display()
        ))),
        None => Ok(()),
    }
}

/// Refuse a command whose standard output or error the shell has sent onto
/// a file of the data set in `data` (`>> data/mnist/t10k-labels-idx1-ubyte`,
/// or `2>>`): what it prints would be appended to that file, and the next
/// run would find the data set damaged. A usage error naming the stream;
/// [`NotOnStderr`] where standard error is such a file, since the line
/// would be written into it.
pub fn check_std_streams(data: &Path) -> Result<(), anyhow::Error> {
    use crate::atomic::{is_std_stream, StdStream};
    let on = |stream| {
        data_file_where(Some(data), |f| {
            std::fs::metadata(f).is_ok_and(|m| m.is_file()) && is_std_stream(f, stream)
        })
    };
    let line = |name: &str, (that, dir): (&str, PathBuf), fix: &str| {
        format!(
            "standard {name} is {that} in {}, which this command would write into; {fix}",
            dir.display()
        )
    };
    let stdout = on(StdStream::Output);
    if let Some(found) = on(StdStream::Error) {
        return Err(NotOnStderr {
            line: line("error", found, "send it elsewhere, e.g. 2> run.err"),
            stdout_too: stdout.is_some(),
        }
        .into());
    }
    match stdout {
        Some(found) => {
            Err(UsageError(line("output", found, "send it elsewhere, e.g. > run.log")).into())
        }
        None => Ok(()),
    }
}

/// Refuse a command whose standard output or error the shell has sent onto
/// a file it reads (`eval --class-names names.txt >> names.txt`, `eval
/// --model m.safetensors --json >> m.safetensors`): what it prints would
/// be appended to that file, which then no longer reads as it did. Each
/// input is `(what, path)`, `what` naming it as the line does (`--model`,
/// `the image`), `None` where it is not given; where standard error is
/// one, [`NotOnStderr`], as in [`check_std_streams`].
pub fn check_inputs_are_not_streams(inputs: &[(&str, Option<&Path>)]) -> Result<(), anyhow::Error> {
    use crate::atomic::{is_std_stream, StdStream};
    for (what, path) in inputs.iter().filter_map(|&(w, p)| Some((w, p?))) {
        let is = |stream| {
            std::fs::metadata(path).is_ok_and(|m| m.is_file()) && is_std_stream(path, stream)
        };
        let line = |name: &str| {
            format!(
                "standard {name} is {what} {}, the file this command reads; send it elsewhere",
                path.display()
            )
        };
        if is(StdStream::Error) {
            return Err(NotOnStderr {
                line: line("error"),
                stdout_too: is(StdStream::Output),
            }
            .into());
        }
        if is(StdStream::Output) {
            return Err(UsageError(line("output")).into());
        }
    }
    Ok(())
}

/// [`check_std_streams`] on the data directory a command with `--data
/// flag` that reads `needs` would use ([`crate::data::resolve_dir_for`]),
/// called before the command prints anything. A directory that cannot be
/// resolved is left to the command's own error, in its turn.
pub fn check_std_streams_for(flag: Option<&Path>, needs: &[&str]) -> Result<(), anyhow::Error> {
    match crate::data::resolve_dir_for(flag, needs) {
        Ok(dir) => check_std_streams(&dir),
        Err(_) => Ok(()),
    }
}

/// The first file of the data set in `data` (its IDX files, their `.gz`,
/// MD5SUMS, and the copies decompressed into the cache for a read-only or
/// full data directory, with the notes beside them) that `is` takes: what
/// it is, in words, and the data directory.
fn data_file_where(
    data: Option<&Path>,
    is: impl Fn(&Path) -> bool,
) -> Option<(&'static str, PathBuf)> {
    let dir = std::fs::canonicalize(data?).ok()?;
    let data_file = crate::data::FILES
        .iter()
        .flat_map(|f| [f.to_string(), format!("{f}.gz")])
        .chain(["MD5SUMS".to_string()])
        .any(|f| is(&dir.join(f)));
    if data_file {
        return Some(("a file of the data set", dir));
    }
    let cached = crate::idx::cache_dir(&dir).is_some_and(|cache| {
        crate::data::FILES.iter().any(|f| {
            let copy = cache.join(f);
            [crate::idx::stamp_path(&copy), copy].iter().any(|c| is(c))
        })
    });
    match cached {
        true => Some(("simplenn's cached copy of a file of the data set", dir)),
        false => None,
    }
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
