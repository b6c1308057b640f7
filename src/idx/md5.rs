//! MD5SUMS: the expected sum of a data file, and the sum of a file.

use std::borrow::Cow;
use std::fs;
use std::io::{self, Read};
use std::path::Path;

use super::{open_to_read, IdxError};

/// The longest checksum list read: some ten thousand files' lines.
const MAX_SUMS: u64 = 1 << 20;

/// The MD5 that `dir/MD5SUMS` lists for `name`, if the file and the line
/// exist. Lines are GNU `md5sum`'s (`SUM  NAME`, `SUM *NAME`) or BSD's and
/// `md5sum --tag`'s (`MD5 (NAME) = SUM`), in GNU's escaped form too (see
/// [`md5_line`]), each ended by a newline or, as `md5sum -z` writes them,
/// by a NUL; blank lines and `#` comments are skipped. A line in neither
/// form, or two lines giving one file different sums, make the file an
/// error: a list that cannot be read checks nothing, and passing it
/// silently would claim a check that never happened.
pub(super) fn expected_md5(dir: &Path, name: &str) -> Result<Option<String>, IdxError> {
    let path = dir.join("MD5SUMS");
    let refuse = |kind: io::ErrorKind, why: String| IdxError::Io {
        path: path.clone(),
        error: io::Error::new(kind, format!("{why}; fix MD5SUMS or remove it")),
    };
    // A limit reached (ulimit -n) is not the list's fault: the error keeps
    // its OS code, for the message to name the limit and not the file.
    let unread = |source: io::Error| match crate::error::resource_fix(&source) {
        Some(_) => IdxError::Io {
            path: path.clone(),
            error: source,
        },
        None => refuse(
            source.kind(),
            format!("cannot read the checksums ({source})"),
        ),
    };
    // Looked at before it is opened: a pipe would block the open, and a
    // device (a link to /dev/zero) never ends.
    match fs::metadata(&path) {
        Ok(meta) if meta.is_file() && meta.len() > MAX_SUMS => {
            return Err(refuse(
                io::ErrorKind::InvalidData,
                format!(
                    "{} bytes, more than a checksum list holds (at most {MAX_SUMS})",
                    meta.len()
                ),
            ))
        }
        Ok(meta) if !meta.is_file() => {
            let what = match meta.is_dir() {
                true => "a directory",
                false => "not a regular file (a pipe or a device)",
            };
            return Err(refuse(
                io::ErrorKind::InvalidInput,
                format!("{what}, not a checksum list"),
            ));
        }
        Ok(_) => {}
        // A link that leads nowhere names a list that is not there: not
        // the same as no list (which checks nothing, by choice).
        Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::symlink_metadata(&path) {
            Ok(_) => {
                return Err(refuse(
                    io::ErrorKind::NotFound,
                    "a link to a file that does not exist".into(),
                ))
            }
            Err(_) => return Ok(None),
        },
        Err(source) => return Err(unread(source)),
    }
    let mut bytes = Vec::new();
    let read = fs::File::open(&path).and_then(|f| f.take(MAX_SUMS + 1).read_to_end(&mut bytes));
    match read {
        Ok(n) if n as u64 > MAX_SUMS => {
            return Err(refuse(
                io::ErrorKind::InvalidData,
                format!("more than {MAX_SUMS} bytes, more than a checksum list holds"),
            ))
        }
        Ok(_) => {}
        Err(source) => return Err(unread(source)),
    }
    // A name that is not UTF-8 (another file's, `md5sum *` in a folder
    // holding one) cannot be one of the data files' ASCII names: read with
    // U+FFFD for its bytes, its line is well formed and matches none.
    let text = String::from_utf8_lossy(&bytes);
    let mut found: Option<(usize, String)> = None;
    // `md5sum -z` ends each line with a NUL, leaving newlines in names as
    // they are: a list whose first line ends with one is such a list, and
    // there no line is empty. Elsewhere a NUL makes its line unreadable (see
    // `md5_line`): a list padded with NULs, or one with a `-z` line added,
    // is refused, not read as names that match nothing.
    let nul = text
        .find(['\n', '\0'])
        .is_some_and(|i| text.as_bytes()[i] == 0);
    let lines = match nul {
        true => text.strip_suffix('\0').unwrap_or(&text).split('\0'),
        false => text.split('\n'),
    };
    for (i, line) in lines.enumerate() {
        let line = line.trim();
        if (line.is_empty() && !nul) || line.starts_with('#') {
            continue;
        }
        let bad = |problem: String| IdxError::BadSums {
            path: path.clone(),
            line: i + 1,
            problem,
        };
        let (sum, file) = md5_line(line).ok_or_else(|| {
            bad("is neither `MD5  FILE` (md5sum) nor `MD5 (FILE) = MD5` (md5sum --tag)".into())
        })?;
        if file.strip_prefix("./").unwrap_or(&file) != name {
            continue;
        }
        let sum = sum.to_ascii_lowercase();
        match &found {
            Some((first, s)) if *s != sum => {
                return Err(bad(format!(
                    "gives {name} another MD5 than line {first} does"
                )))
            }
            Some(_) => {}
            None => found = Some((i + 1, sum)),
        }
    }
    Ok(found.map(|(_, sum)| sum))
}

/// `(sum, file)` of one line of a checksum list, in either form
/// [`expected_md5`] reads; `None` for anything else. GNU `md5sum` writes a
/// name holding a backslash, newline or carriage return escaped (`\\`,
/// `\n`, `\r`) on a line that starts with a backslash: read back as the
/// name it stands for.
fn md5_line(line: &str) -> Option<(&str, Cow<'_, str>)> {
    if line.contains('\0') {
        return None;
    }
    let (escaped, line) = match line.strip_prefix('\\') {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let is_md5 = |s: &str| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let (sum, file) = match line.strip_prefix("MD5 (") {
        Some(rest) => {
            let (file, sum) = rest.rsplit_once(") = ")?;
            (sum.trim(), file)
        }
        None => {
            let (sum, file) = line.split_once(char::is_whitespace)?;
            let file = file.trim_start();
            (sum, file.strip_prefix('*').unwrap_or(file))
        }
    };
    if !is_md5(sum) || file.is_empty() {
        return None;
    }
    let file = match escaped {
        true => Cow::Owned(unescape(file)?),
        false => Cow::Borrowed(file),
    };
    Some((sum, file))
}

/// A name as GNU `md5sum` escaped it, back as it was; `None` where a
/// backslash starts none of its escapes.
fn unescape(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '\\' => match chars.next()? {
                '\\' => '\\',
                'n' => '\n',
                'r' => '\r',
                _ => return None,
            },
            c => c,
        });
    }
    Some(out)
}

pub(super) fn md5_file(path: &Path) -> Result<String, IdxError> {
    use md5::{Digest, Md5};
    let io = |source| IdxError::Io {
        path: path.to_owned(),
        error: source,
    };
    let mut f = open_to_read(path)?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GNU's escaped lines give back the names they stand for; a
    /// backslash that starts no escape makes the line unreadable.
    #[test]
    fn escaped_names_read_back_as_written() {
        let sum = "0123456789abcdef0123456789ABCDEF";
        let name = |line: String| md5_line(&line).map(|(s, f)| (s.to_owned(), f.into_owned()));
        let want = Some((sum.to_owned(), "a\\b\nc\rd".to_owned()));
        assert_eq!(name(format!("\\{sum}  a\\\\b\\nc\\rd")), want);
        assert_eq!(name(format!("\\{sum} *a\\\\b\\nc\\rd")), want);
        assert_eq!(name(format!("\\MD5 (a\\\\b\\nc\\rd) = {sum}")), want);
        // Unescaped, a backslash is part of the name.
        assert_eq!(
            name(format!("{sum}  a\\nb")),
            Some((sum.to_owned(), "a\\nb".to_owned()))
        );
        assert_eq!(name(format!("\\{sum}  a\\qb")), None);
        assert_eq!(name(format!("\\{sum}  a\\")), None);
    }
}
