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
/// a file it must not write into: a file of the data set in `data`
/// (`simplenn >> data/mnist/t10k-labels-idx1-ubyte`), which the next run
/// would find damaged, or one of `inputs`, the files it reads (`eval
/// --class-names names.txt >> names.txt`), each `(what, path)` with `what`
/// naming it as the line does (`--model`, `the image`), `None` where not
/// given (`/dev/stdin` for `-`: standard input redirected from such a
/// file): what the command prints would be appended to that file. Called
/// before the command prints anything. A usage error naming the stream;
/// where standard error is such a file, [`NotOnStderr`], whose line goes
/// to standard output unless that is such a file too.
pub fn check_std_streams(
    data: Option<&Path>,
    inputs: &[(&str, Option<&Path>)],
) -> Result<(), anyhow::Error> {
    use crate::atomic::{is_std_stream_file as is, StdStream};
    // The file `stream` is, in words, where it is one of these.
    let on = |stream| match data_file_where(data, |f| is(f, stream)) {
        Some((that, dir)) => Some(format!(
            "{that} in {}, which this command would write into",
            dir.display()
        )),
        None => inputs
            .iter()
            .filter_map(|&(what, p)| Some((what, p?)))
            .find(|&(_, p)| is(p, stream))
            .map(|(what, p)| {
                // Standard input, where a redirection made it a file
                // (`plot - < log 2>> log`), as it was typed.
                let shown = match p == Path::new("/dev/stdin") {
                    true => "- (standard input)".to_string(),
                    false => p.display().to_string(),
                };
                format!("{what} {shown}, the file this command reads")
            }),
    };
    let stdout = on(StdStream::Output);
    if let Some(that) = on(StdStream::Error) {
        return Err(NotOnStderr {
            line: format!("standard error is {that}; send it elsewhere, e.g. 2> run.err"),
            stdout_too: stdout.is_some(),
        }
        .into());
    }
    match stdout {
        Some(that) => Err(UsageError(format!(
            "standard output is {that}; send it elsewhere, e.g. > run.log"
        ))
        .into()),
        None => Ok(()),
    }
}

/// [`check_std_streams`] with the data directory that a command given
/// `--data flag` and reading `needs` would use
/// ([`crate::data::resolve_dir_for`]); one that cannot be resolved is left
/// to the command's own error, in its turn.
pub fn check_std_streams_for(
    flag: Option<&Path>,
    needs: &[&str],
    inputs: &[(&str, Option<&Path>)],
) -> Result<(), anyhow::Error> {
    let dir = crate::data::resolve_dir_for(flag, needs).ok();
    check_std_streams(dir.as_deref(), inputs)
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
