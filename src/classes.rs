//! Class names: read from a text file (`--class-names FILE`), one name a
//! line for classes `0, 1, …, K − 1` in order, and carried in model and
//! checkpoint files under one metadata key, so that `eval`, `predict` and
//! `serve` can say "7 Sneaker" where MNIST's digits need only "7".
//!
//! A model without names (every MNIST model, and every file written before
//! names existed) has no key: its bytes are what they were.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// Metadata key of a file's class names, joined by `\n` (a name holds no
/// control character).
pub const KEY: &str = "simplenn.class_names";

/// The longest name, in characters: names share table columns.
pub const MAX_NAME: usize = 40;

/// A names file is a few kilobytes at most (256 classes of 40 characters
/// of up to 4 bytes each, with their line ends: about 41 KB).
const MAX_FILE: u64 = 64 * 1024;

/// The names of a model's `K` classes, class `c`'s at index `c`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassNames(Vec<String>);

impl ClassNames {
    /// Names read from `path`: exactly `k` lines (a last empty line, the
    /// file's final newline, is no name), each trimmed of spaces and a
    /// Windows `\r`; each name non-empty, at most [`MAX_NAME`] characters,
    /// without control characters, and used once.
    pub fn read(path: &Path, k: usize) -> Result<Self> {
        use std::io::Read;
        let shown = path.display();
        let (file, meta) = crate::atomic::open_input(path, "class-names file")?;
        if meta.is_file() && meta.len() > MAX_FILE {
            bail!(
                "--class-names {shown}: {} bytes, more than a names file holds (at most {MAX_FILE}); give a text file with one class name a line",
                meta.len()
            );
        }
        let mut bytes = Vec::new();
        file.take(MAX_FILE + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("cannot read --class-names {shown}"))?;
        if bytes.len() as u64 > MAX_FILE {
            bail!(
                "--class-names {shown}: more than {MAX_FILE} bytes, more than a names file holds; give a text file with one class name a line"
            );
        }
        let text = String::from_utf8(bytes).map_err(|_| {
            anyhow::anyhow!(
                "--class-names {shown}: not UTF-8 text; give a text file with one class name a line"
            )
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let mut lines: Vec<&str> = text.split('\n').collect();
        // Blank lines at the end (the final newline, an editor's extra
        // ones) name nothing; blank lines between names are errors.
        while lines.last().is_some_and(|l| l.trim().is_empty()) {
            lines.pop();
        }
        if lines.len() != k {
            bail!(
                "--class-names {shown}: {} for {}; give one name a line, for classes 0 to {} in order (a placeholder such as - for a class the labels never use)",
                crate::show::count(lines.len(), "name"),
                classes(k),
                k.saturating_sub(1)
            );
        }
        let names = lines.iter().map(|l| l.trim().to_string()).collect();
        Self::checked(names).map_err(|why| anyhow::anyhow!("--class-names {shown}: {why}"))
    }

    /// Names from a file's metadata value, for a model of `k` classes;
    /// anything simplenn would not have written is a damaged file.
    pub fn from_metadata(v: &str, k: usize, what: &Path) -> Result<Self> {
        let names: Vec<String> = v.split('\n').map(str::to_string).collect();
        let damaged = |why: String| {
            anyhow::anyhow!(
                "{}: its metadata {KEY} {why}: the file is damaged",
                what.display()
            )
        };
        if names.len() != k {
            return Err(damaged(format!(
                "has {} for its {}",
                crate::show::count(names.len(), "name"),
                classes(k)
            )));
        }
        if names.iter().any(|n| n.trim() != n) {
            return Err(damaged("has a name with spaces around it".into()));
        }
        Self::checked(names).map_err(|why| damaged(format!("is not a list of names ({why})")))
    }

    /// The value [`KEY`] stores.
    pub fn to_metadata(&self) -> String {
        self.0.join("\n")
    }

    /// Each name checked, line numbers from 1.
    fn checked(names: Vec<String>) -> Result<Self, String> {
        for (i, n) in names.iter().enumerate() {
            let line = i + 1;
            if n.is_empty() {
                return Err(format!(
                    "line {line} (class {i}) is empty; name every class (a placeholder such as - for one the labels never use)"
                ));
            }
            if n.chars().any(|c| c.is_control() || invisible(c)) {
                return Err(format!(
                    "line {line} (class {i}) holds a control or invisible character (a tab, a zero-width space, a direction override?); write each name as plain text"
                ));
            }
            let len = n.chars().count();
            if len > MAX_NAME {
                return Err(format!(
                    "line {line} (class {i}) is {len} characters long, more than {MAX_NAME}; shorten it"
                ));
            }
            if let Some(j) = names[..i].iter().position(|m| m == n) {
                return Err(format!(
                    "classes {j} and {i} are both named {n:?}; give each class its own name"
                ));
            }
        }
        Ok(ClassNames(names))
    }

    /// How many classes are named.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true: a model has two classes or more.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Class `c`'s name; `None` past the last class.
    pub fn name(&self, c: usize) -> Option<&str> {
        self.0.get(c).map(String::as_str)
    }

    /// Every name, class 0's first.
    pub fn names(&self) -> &[String] {
        &self.0
    }

    /// The longest name's width in characters (table columns).
    pub fn width(&self) -> usize {
        self.0.iter().map(|n| n.chars().count()).max().unwrap_or(0)
    }
}

/// Format characters that print as nothing yet change what a terminal
/// or a page shows around them: zero-width spaces and joiners, the
/// direction marks, embeddings, overrides and isolates, the word joiner
/// and invisible operators, and a byte order mark inside the text.
fn invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// `1 class`, `3 classes`.
fn classes(k: usize) -> String {
    format!("{k} class{}", if k == 1 { "" } else { "es" })
}

/// The names for a model of `k` classes in `model`: those of
/// `--class-names FILE` when given, else those the file records, else none.
pub fn for_model(
    flag: Option<&Path>,
    recorded: Option<&str>,
    k: usize,
    model: &Path,
) -> Result<Option<ClassNames>> {
    match (flag, recorded) {
        (Some(path), _) => ClassNames::read(path, k).map(Some),
        (None, Some(v)) => ClassNames::from_metadata(v, k, model)
            .map(Some)
            .map_err(|e| {
                anyhow::anyhow!("{e}; use another copy, or give the names with --class-names FILE")
            }),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, text).unwrap();
        f
    }

    fn read(text: &[u8], k: usize) -> Result<ClassNames> {
        ClassNames::read(file(text).path(), k)
    }

    #[test]
    fn one_name_a_line_with_or_without_a_final_newline() {
        let want = ["T-shirt/top", "Trouser", "Ankle boot"];
        for text in [
            "T-shirt/top\nTrouser\nAnkle boot\n",
            "T-shirt/top\nTrouser\nAnkle boot",
            "\u{feff}T-shirt/top\r\n  Trouser \r\nAnkle boot\r\n",
        ] {
            let n = read(text.as_bytes(), 3).unwrap();
            assert_eq!(n.names(), want, "{text:?}");
            assert_eq!((n.len(), n.width()), (3, 11));
        }
    }

    #[test]
    fn every_bad_file_is_named_with_its_fix() {
        let cases: [(&[u8], usize, &str); 9] = [
            (
                b"a\nb\n",
                3,
                "2 names for 3 classes; give one name a line, for classes 0 to 2",
            ),
            (b"a\nb\nc\nd\n", 3, "4 names for 3 classes"),
            (b"a\n\nc\n", 3, "line 2 (class 1) is empty"),
            (b"a\nb\n\nc", 4, "line 3 (class 2) is empty"),
            (
                b"a\nb\tc\nd\n",
                3,
                "line 2 (class 1) holds a control or invisible character",
            ),
            (
                "a\nb\u{202e}c\n".as_bytes(),
                2,
                "line 2 (class 1) holds a control or invisible",
            ),
            (b"a\nb\na\n", 3, "classes 0 and 2 are both named \"a\""),
            (&[b'a', b'\n', 0xff, b'\n'], 2, "not UTF-8 text"),
            (
                b"a\nbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n",
                2,
                "is 41 characters long",
            ),
        ];
        for (text, k, want) in cases {
            let e = read(text, k).unwrap_err().to_string();
            assert!(e.starts_with("--class-names ") && e.contains(want), "{e}");
        }
        let big = vec![b'a'; MAX_FILE as usize + 1];
        assert!(read(&big, 2)
            .unwrap_err()
            .to_string()
            .contains("more than a names file holds"));
        let e = ClassNames::read(Path::new("/nonexistent/names.txt"), 2).unwrap_err();
        assert!(format!("{e:#}").contains("/nonexistent/names.txt"), "{e:#}");
    }

    #[test]
    fn metadata_round_trips_and_damage_is_named() {
        let n = read("zero\nun\ndeux trois\n".as_bytes(), 3).unwrap();
        let v = n.to_metadata();
        assert_eq!(v, "zero\nun\ndeux trois");
        let m = Path::new("m.safetensors");
        assert_eq!(ClassNames::from_metadata(&v, 3, m).unwrap(), n);
        for (bad, k) in [(v.as_str(), 4), ("a\n\nb", 3), ("a\n b\nc", 3), ("a\na", 2)] {
            let e = ClassNames::from_metadata(bad, k, m)
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("m.safetensors: its metadata simplenn.class_names")
                    && e.contains("damaged"),
                "{e}"
            );
        }
    }

    #[test]
    fn the_flag_comes_before_the_file() {
        let f = file(b"x\ny\n");
        let m = Path::new("m");
        let flag = for_model(Some(f.path()), Some("a\nb"), 2, m)
            .unwrap()
            .unwrap();
        assert_eq!(flag.names(), ["x", "y"]);
        let rec = for_model(None, Some("a\nb"), 2, m).unwrap().unwrap();
        assert_eq!(rec.names(), ["a", "b"]);
        assert_eq!(for_model(None, None, 2, m).unwrap(), None);
    }
}
