//! Class names: read from a text file (`--class-names FILE`), one name a
//! line for classes `0, 1, …, K − 1` in order (or EMNIST's mapping file: a
//! label and its characters' codes a line), and carried in model and
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

/// The longest name, in characters (Unicode code points): names share
/// table columns.
const MAX_NAME: usize = 40;

/// A names file is a few kilobytes at most (256 classes of 40 characters
/// of up to 4 bytes each, with their line ends: about 41 KB).
const MAX_FILE: u64 = 64 * 1024;

/// The names of a model's `K` classes, class `c`'s at index `c`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassNames(Vec<String>);

/// Whose classes a names file must fit, which decides how a misfit can be
/// put right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamedFor {
    /// The data a new run trains on (`--classes` may declare more).
    Data,
    /// The data of a resumed run, whose class count its checkpoint fixed.
    Checkpoint,
    /// A model's (`eval`, `predict`, `serve`).
    Model,
}

/// A names file read and checked, before the data says how many classes
/// it must name ([`NamesFile::for_classes`]): so that a mistyped path or a
/// bad line is reported before a data set is decompressed.
#[derive(Clone, Debug)]
pub struct NamesFile {
    path: std::path::PathBuf,
    names: Listed,
}

/// What a names file holds.
#[derive(Clone, Debug)]
enum Listed {
    /// One name a line, class 0's first.
    Lines(ClassNames),
    /// An EMNIST mapping file (`emnist-letters-mapping.txt`): `LABEL CODE
    /// [CODE…]` a line, each code a character's Unicode number (`1 65 97`:
    /// class 1 is `A/a`), labels in any order, some perhaps missing.
    Mapping(Vec<(usize, String)>),
}

impl NamesFile {
    /// The names in `path`, one a line, each trimmed of spaces and a
    /// Windows `\r`; blank lines at the end are no names (a UTF-8 byte
    /// order mark is skipped). Each name must pass [`ClassNames`]' checks.
    pub fn read(path: &Path) -> Result<Self> {
        use std::io::Read;
        let shown = path.display();
        let (file, meta) = crate::atomic::open_input(path, "--class-names")?;
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
        let text = String::from_utf8(bytes).map_err(|e| {
            // The line of the first byte that is not, counted as the
            // names are.
            let at = e.utf8_error().valid_up_to();
            let line = 1 + e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count();
            anyhow::anyhow!(
                "--class-names {shown}: line {line} is not UTF-8 text; give a text file with one class name a line, in UTF-8"
            )
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        // An old Mac file: one line here, whose CRs would be named as a
        // control character in a name.
        if !text.contains('\n') && text.trim_end_matches('\r').contains('\r') {
            bail!(
                "--class-names {shown}: its lines end in CR alone (an old Mac file), so it reads as one line; save it with LF or CRLF line ends"
            );
        }
        let mut lines: Vec<&str> = text.split('\n').collect();
        // Blank lines at the end (the final newline, an editor's extra
        // ones) name nothing; blank lines between names are errors.
        while lines.last().is_some_and(|l| l.trim().is_empty()) {
            lines.pop();
        }
        // `mapping` would take no lines for a mapping that lists no label,
        // and every class would be `unused C`.
        if lines.is_empty() {
            bail!(
                "--class-names {shown}: no names in it (empty, or only blank lines); give a text file with one class name a line"
            );
        }
        let names = match mapping(&lines) {
            Some(m) => Listed::Mapping(m.map_err(|why| {
                anyhow::anyhow!("--class-names {shown} (an EMNIST mapping): {why}")
            })?),
            None => {
                let names = lines.iter().map(|l| l.trim().to_string()).collect();
                Listed::Lines(
                    ClassNames::checked(names)
                        .map_err(|why| anyhow::anyhow!("--class-names {shown}: {why}"))?,
                )
            }
        };
        Ok(NamesFile {
            path: path.to_owned(),
            names,
        })
    }

    /// The names, for the `k` classes of `what`: exactly `k` of them; from
    /// a mapping file, every label it lists, all below `k`, and `unused C`
    /// for each class `C` it does not list.
    pub fn for_classes(&self, k: usize, what: NamedFor) -> Result<ClassNames> {
        let shown = self.path.display();
        let names = match &self.names {
            Listed::Lines(names) => names,
            Listed::Mapping(m) => {
                let last = m.iter().map(|(label, _)| *label).max().unwrap_or(0);
                if last >= k {
                    let (whose, fix) = match what {
                        NamedFor::Data => (
                            "the data has",
                            format!(
                                "give the mapping of this data set, or --classes {}",
                                last + 1
                            ),
                        ),
                        // Its class count is the checkpoint's: no flag
                        // changes it.
                        NamedFor::Checkpoint => (
                            "the checkpoint's run has",
                            "give the mapping of its data set, or train a new model without --resume".to_string(),
                        ),
                        NamedFor::Model => (
                            "the model has",
                            "give the mapping of the data set it was trained on".to_string(),
                        ),
                    };
                    bail!(
                        "--class-names {shown}: the mapping names labels up to {last}, but {whose} {} (labels 0 to {}); {fix}",
                        classes(k),
                        k.saturating_sub(1),
                    );
                }
                let mut names: Vec<String> = (0..k).map(|c| format!("unused {c}")).collect();
                for (label, name) in m {
                    names[*label] = name.clone();
                }
                // Each listed name was checked as the file was read; an
                // `unused C` could still be one of them.
                return ClassNames::checked_at(names, |i| format!("class {i}")).map_err(|why| {
                    anyhow::anyhow!("--class-names {shown} (an EMNIST mapping): {why}")
                });
            }
        };
        let n = names.len();
        if n != k {
            // More names than the labels make classes: a new run may
            // declare them (as for a mapping past its labels).
            let more = match (what, n > k) {
                (NamedFor::Data, true) => format!(", or --classes {n}"),
                _ => String::new(),
            };
            bail!(
                "--class-names {}: {} for {}; give one name a line, for classes 0 to {} in order ({PLACEHOLDERS}){more}",
                self.path.display(),
                crate::show::count(n, "name"),
                classes(k),
                k.saturating_sub(1)
            );
        }
        Ok(names.clone())
    }
}

/// `lines` as an EMNIST mapping, `(label, name)` each: `None` unless
/// every line is two or more whole numbers (a label, then character
/// codes), when the file is a mapping, and then an error for a fault in
/// it, with its line. A label is below 256 and listed once; its name is
/// its codes' characters, each once, joined by `/` (`65 97`: `A/a`), and
/// must pass a name's checks (a code for a space or a control character
/// would not).
fn mapping(lines: &[&str]) -> Option<Result<Vec<(usize, String)>, String>> {
    // A mapping's words are all whole numbers; one that is, yet no code
    // (`-1`, past 2^64), makes the line a bad mapping line, not a name.
    let integer = |w: &str| {
        let digits = w.strip_prefix('-').unwrap_or(w);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    };
    let words = |l: &&str| l.split_whitespace().count() >= 2;
    if !lines
        .iter()
        .all(|l| words(l) && l.split_whitespace().all(integer))
    {
        return None;
    }
    let mut numbers: Vec<Vec<u64>> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let mut row = Vec::new();
        for w in l.split_whitespace() {
            match w.parse::<u64>() {
                Ok(n) => row.push(n),
                Err(_) => {
                    return Some(Err(format!(
                        "line {}: {w} is no label or character code (labels run 0–255, codes 0–1114111)",
                        i + 1
                    )))
                }
            }
        }
        numbers.push(row);
    }
    let mut out: Vec<(usize, String)> = Vec::new();
    for (i, n) in numbers.iter().enumerate() {
        let line = i + 1;
        let label = n[0];
        // Labels are bytes: 256 classes at most.
        if label > u8::MAX as u64 {
            return Some(Err(format!(
                "line {line}: label {label} is past the 256 classes simplenn handles (labels are bytes); list labels 0–255 only"
            )));
        }
        let label = label as usize;
        if let Some(j) = out.iter().position(|(l, _)| *l == label) {
            return Some(Err(format!(
                "line {line}: label {label} is listed again (first on line {}); list each label once",
                j + 1
            )));
        }
        let mut chars: Vec<char> = Vec::new();
        for &code in &n[1..] {
            match u32::try_from(code).ok().and_then(char::from_u32) {
                None => {
                    return Some(Err(format!(
                        "line {line}: {code} is not a Unicode character's code (codes run 0–1114111, less the surrogates 55296–57343); give each character's decimal code, as EMNIST's mapping files do"
                    )))
                }
                Some(c) if c.is_whitespace() => {
                    return Some(Err(format!(
                        "line {line}: code {code} is a space, which a name cannot show; give the codes of printable characters"
                    )))
                }
                Some(c) if !chars.contains(&c) => chars.push(c),
                Some(_) => {}
            }
        }
        let name: Vec<String> = chars.iter().map(char::to_string).collect();
        out.push((label, name.join("/")));
    }
    let names: Vec<String> = out.iter().map(|(_, n)| n.clone()).collect();
    let at = |i: usize| format!("line {} (label {})", i + 1, out[i].0);
    if let Err(why) = ClassNames::checked_at(names, at) {
        return Some(Err(why));
    }
    Some(Ok(out))
}

/// What to write for classes the labels never use.
const PLACEHOLDERS: &str = "a placeholder such as -, --, … for classes the labels never use";

impl ClassNames {
    /// Names read from `path` for a model of `k` classes ([`NamesFile`]).
    pub fn read(path: &Path, k: usize) -> Result<Self> {
        NamesFile::read(path)?.for_classes(k, NamedFor::Model)
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

    /// Each name checked, line numbers from 1: not empty, no control
    /// character (C0, C1, the line and paragraph separators) and no
    /// text-direction control (they reorder the text printed around
    /// them), something visible, at most [`MAX_NAME`] characters, and no
    /// two alike once the characters that print as nothing are left out.
    fn checked(names: Vec<String>) -> Result<Self, String> {
        Self::checked_at(names, |i| format!("line {} (class {i})", i + 1))
    }

    /// [`ClassNames::checked`], each name found by `at(class)`.
    fn checked_at(names: Vec<String>, at: impl Fn(usize) -> String) -> Result<Self, String> {
        let shown: Vec<String> = names
            .iter()
            .map(|n| n.chars().filter(|&c| !ignorable(c)).collect())
            .collect();
        for (i, n) in names.iter().enumerate() {
            let which = at(i);
            if n.is_empty() {
                return Err(format!(
                    "{which} is empty; name every class ({PLACEHOLDERS})"
                ));
            }
            if let Some(c) = n
                .chars()
                .find(|&c| c.is_control() || crate::show::breaks_text(c))
            {
                return Err(format!("{which} holds {}", unprintable(c)));
            }
            if shown[i].chars().all(|c| c.is_whitespace() || blank(c)) {
                return Err(format!(
                    "{which} shows nothing (only characters that print as blank); name every class visibly ({PLACEHOLDERS})"
                ));
            }
            let len = n.chars().count();
            if len > MAX_NAME {
                return Err(format!(
                    "{which} is {len} characters long (Unicode code points), more than {MAX_NAME}; shorten it"
                ));
            }
            if let Some(j) = shown[..i].iter().position(|m| *m == shown[i]) {
                return Err(format!(
                    "{} and {which} are both named {:?}{}; give each class its own name ({PLACEHOLDERS})",
                    at(j),
                    shown[i],
                    if names[j] != *n { " as printed" } else { "" }
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
}

/// Class `c`'s name in `names`, where a model or a run has names: what
/// the notes on a score take ([`crate::eval::score_note`]).
pub fn name_in(names: Option<&ClassNames>) -> impl Fn(usize) -> Option<String> + '_ {
    move |c| names.and_then(|n| n.name(c)).map(str::to_string)
}

/// What a name's character `c` (a control character or one that
/// [`crate::show::breaks_text`]) is, and the fix.
fn unprintable(c: char) -> String {
    let code = c as u32;
    let what = match c {
        '\t' => "a tab".to_string(),
        '\r' => "a carriage return (CR)".into(),
        '\u{2028}' => "a line separator (U+2028)".into(),
        '\u{2029}' => "a paragraph separator (U+2029)".into(),
        c if c.is_control() => format!("the control character U+{code:04X}"),
        _ => format!("a text-direction control (U+{code:04X})"),
    };
    format!("{what}; write each name as plain text")
}

/// Unicode's `Default_Ignorable_Code_Point` set (Unicode 15): characters
/// that print as nothing (a soft hyphen, zero-width joiners, variation
/// selectors, tags, …). A name may hold them (a joiner is part of some
/// spellings and emoji), but they neither make a name visible nor tell
/// two names apart.
fn ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
            | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
            | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// Visible-width characters that still print as blank: the Braille blank
/// and the Hangul fillers not already ignorable.
fn blank(c: char) -> bool {
    matches!(
        c,
        '\u{2800}' | '\u{3164}' | '\u{FFA0}' | '\u{115F}' | '\u{1160}'
    )
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
            assert_eq!(n.len(), 3);
        }
    }

    /// A file is an EMNIST mapping only where every line is two or more
    /// whole numbers: names that are each two words, each one number, or a
    /// number and a word are names.
    #[test]
    fn only_lines_of_two_or_more_numbers_make_a_mapping() {
        for (text, want) in [
            ("Ankle boot\nRunning shoe\n", ["Ankle boot", "Running shoe"]),
            ("10\n20\n", ["10", "20"]),
            ("7 up\n12 down\n", ["7 up", "12 down"]),
        ] {
            let n = read(text.as_bytes(), 2).unwrap();
            assert_eq!(n.names(), want, "{text:?}");
        }
    }

    #[test]
    fn every_bad_file_is_named_with_its_fix() {
        let cases: [(&[u8], usize, &str); 19] = [
            (
                b"a\nb\n",
                3,
                "2 names for 3 classes; give one name a line, for classes 0 to 2",
            ),
            (b"a\nb\nc\nd\n", 3, "4 names for 3 classes"),
            (b"", 3, "no names in it (empty, or only blank lines)"),
            (b"\n \n\r\n", 3, "no names in it"),
            (b"a\n\nc\n", 3, "line 2 (class 1) is empty"),
            (b"a\nb\n\nc", 4, "line 3 (class 2) is empty"),
            (b"a\nb\tc\nd\n", 3, "line 2 (class 1) holds a tab; write each name as plain text"),
            (b"cat\rdog\rbird\r", 3, ": its lines end in CR alone (an old Mac file), so it reads as one line; save it with LF or CRLF line ends"),
            (b"a\nb\rc\nd\n", 3, "line 2 (class 1) holds a carriage return (CR); write each name as plain text"),
            (b"a\nb\x1b[1m\nc\n", 3, "line 2 (class 1) holds the control character U+001B; write each name as plain text"),
            ("a\nb\u{202e}c\n".as_bytes(), 2, "line 2 (class 1) holds a text-direction control (U+202E); write each name as plain text"),
            ("a\nb\u{2028}c\n".as_bytes(), 2, "line 2 (class 1) holds a line separator (U+2028)"),
            ("a\nb\u{061c}c\n".as_bytes(), 2, "line 2 (class 1) holds a text-direction control (U+061C)"),
            ("a\n\u{00ad}\u{200b}\n".as_bytes(), 2, "line 2 (class 1) shows nothing"),
            ("a\n\u{2800}\n".as_bytes(), 2, "line 2 (class 1) shows nothing"),
            (b"a\nb\na\n", 3, "line 1 (class 0) and line 3 (class 2) are both named \"a\"; give each class its own name (a placeholder such as -, --, …"),
            ("a\na\u{00ad}\n".as_bytes(), 2, "line 1 (class 0) and line 2 (class 1) are both named \"a\" as printed"),
            (&[b'a', b'\n', 0xff, b'\n'], 2, "line 2 is not UTF-8 text"),
            (
                b"a\nbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n",
                2,
                "is 41 characters long (Unicode code points)",
            ),
        ];
        for (text, k, want) in cases {
            let e = read(text, k).unwrap_err().to_string();
            assert!(e.starts_with("--class-names ") && e.contains(want), "{e}");
        }
        // Joiners inside a name that shows something are part of it.
        let n = read(
            "\u{1F468}\u{200D}\u{1F469}\nنمی\u{200C}خواهم\n".as_bytes(),
            2,
        )
        .unwrap();
        assert_eq!(n.name(1), Some("نمی\u{200C}خواهم"));
        // Every line checked before the count is known.
        let f = file(b"a\n\nc\n");
        let e = NamesFile::read(f.path()).unwrap_err().to_string();
        assert!(e.contains("line 2 (class 1) is empty"), "{e}");
        let f = file(b"a\nb\n");
        let names = NamesFile::read(f.path()).unwrap();
        assert_eq!(
            names.for_classes(2, NamedFor::Data).unwrap().names(),
            ["a", "b"]
        );
        let e = names
            .for_classes(3, NamedFor::Data)
            .unwrap_err()
            .to_string();
        assert!(e.contains("2 names for 3 classes"), "{e}");
        assert!(!e.contains("--classes"), "{e}");
        // More names than classes: a new run may declare them, a resumed
        // run or a model may not.
        let e = names
            .for_classes(1, NamedFor::Data)
            .unwrap_err()
            .to_string();
        assert!(e.ends_with(", or --classes 2"), "{e}");
        for what in [NamedFor::Checkpoint, NamedFor::Model] {
            let e = names.for_classes(1, what).unwrap_err().to_string();
            assert!(
                e.contains("2 names for 1 class;") && !e.contains("--classes"),
                "{e}"
            );
        }
        let big = vec![b'a'; MAX_FILE as usize + 1];
        assert!(read(&big, 2)
            .unwrap_err()
            .to_string()
            .contains("more than a names file holds"));
        let e = ClassNames::read(Path::new("/nonexistent/names.txt"), 2).unwrap_err();
        assert!(format!("{e:#}").contains("/nonexistent/names.txt"), "{e:#}");
    }

    /// A names file through a pipe, whose size no metadata tells, is
    /// refused past 64 KiB as a file is: read one byte past the limit, not
    /// cut at it and taken for a shorter list.
    #[cfg(unix)]
    #[test]
    fn a_piped_names_file_past_the_limit_is_refused() {
        let t = tempfile::tempdir().unwrap();
        for (extra, refused) in [(0, false), (1, true)] {
            let fifo = t.path().join(format!("names{extra}.fifo"));
            let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
            // SAFETY: mkfifo(3) on a NUL-terminated path this test owns.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
            // Names of 5 digits and a last one: MAX_FILE bytes in all,
            // then `extra` more.
            let mut text: Vec<u8> = (0..MAX_FILE / 6)
                .flat_map(|i| format!("{i:05}\n").into_bytes())
                .collect();
            text.extend(b"last\n");
            text.truncate(MAX_FILE as usize);
            text.extend(std::iter::repeat_n(b'\n', extra));
            let names_in = (MAX_FILE / 6 + 1) as usize;
            let path = fifo.clone();
            let writer = std::thread::spawn(move || {
                use std::io::Write;
                // The reader may stop before the end: a broken pipe is fine.
                let _ = std::fs::File::create(path).and_then(|mut f| f.write_all(&text));
            });
            let got = NamesFile::read(&fifo);
            // A writer still waiting for a reader (had the read failed
            // before opening) is let go rather than left to hang the test.
            {
                use std::os::unix::fs::OpenOptionsExt;
                let _ = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(&fifo);
            }
            writer.join().unwrap();
            match got {
                Ok(names) => {
                    assert!(!refused, "a byte past the limit was taken");
                    assert_eq!(
                        names
                            .for_classes(names_in, NamedFor::Data)
                            .unwrap()
                            .name(names_in - 1),
                        Some("last")
                    );
                }
                Err(e) => {
                    let e = e.to_string();
                    assert!(refused, "{e}");
                    assert!(
                        e.contains("more than 65536 bytes, more than a names file holds"),
                        "{e}"
                    );
                }
            }
        }
    }

    /// EMNIST's mapping files name classes by character codes; labels
    /// they do not list (letters' 0) are `unused C`.
    #[test]
    fn an_emnist_mapping_names_its_labels() {
        let letters: String = (1..=26u32)
            .map(|l| format!("{l} {} {}\n", 64 + l, 96 + l))
            .collect();
        let f = file(letters.as_bytes());
        let mapping = NamesFile::read(f.path()).unwrap();
        let names = mapping.for_classes(27, NamedFor::Data).unwrap();
        assert_eq!(names.name(0), Some("unused 0"));
        assert_eq!(names.name(1), Some("A/a"));
        assert_eq!(names.name(26), Some("Z/z"));
        // Labels past the classes: the fix depends on whose classes.
        let refused = |k, what| mapping.for_classes(k, what).unwrap_err().to_string();
        let e = refused(26, NamedFor::Data);
        assert!(
            e.contains("the mapping names labels up to 26, but the data has 26 classes (labels 0 to 25); give the mapping of this data set, or --classes 27"),
            "{e}"
        );
        let e = refused(10, NamedFor::Model);
        assert!(
            e.contains("but the model has 10 classes (labels 0 to 9); give the mapping of the data set it was trained on"),
            "{e}"
        );
        // A resumed run's count is its checkpoint's: no --classes to offer.
        let e = refused(10, NamedFor::Checkpoint);
        assert!(
            e.ends_with("but the checkpoint's run has 10 classes (labels 0 to 9); give the mapping of its data set, or train a new model without --resume"),
            "{e}"
        );
        // The largest label a byte holds, 255, is a label; 256 is past.
        let f = file(b"0 48\n255 65\n");
        let names = NamesFile::read(f.path())
            .unwrap()
            .for_classes(256, NamedFor::Data)
            .unwrap();
        assert_eq!((names.name(255), names.name(0)), (Some("A"), Some("0")));
        let e = NamesFile::read(file(b"0 48\n256 65\n").path())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2: label 256 is past the 256 classes"),
            "{e}"
        );
        // One code a line (EMNIST balanced, digits), any order, a code
        // repeated counts once.
        let f = file(b"1 49\n0 48 48\n");
        let names = NamesFile::read(f.path())
            .unwrap()
            .for_classes(2, NamedFor::Data)
            .unwrap();
        assert_eq!(names.names(), ["0", "1"]);
        // A mapping's faults are named with their line as the file is read.
        for (text, want) in [
            (
                &b"0 48\n1 7\n"[..],
                "line 2 (label 1) holds the control character U+0007; write each name as plain text",
            ),
            (b"0 48\n1 9\n", "line 2: code 9 is a space"),
            (
                b"0 48\n0 49\n",
                "line 2: label 0 is listed again (first on line 1)",
            ),
            (
                b"300 48\n",
                "line 1: label 300 is past the 256 classes simplenn handles (labels are bytes); list labels 0–255 only",
            ),
            (
                b"0 48\n1 1114112\n",
                "line 2: 1114112 is not a Unicode character's code (codes run 0–1114111",
            ),
            (b"0 48\n1 -1\n", "line 2: -1 is no label or character code"),
            (
                b"0 48\n1 99999999999999999999\n",
                "line 2: 99999999999999999999 is no label or character code",
            ),
            (
                b"0 65\n1 65 65\n",
                "line 1 (label 0) and line 2 (label 1) are both named \"A\"",
            ),
        ] {
            let e = NamesFile::read(file(text).path()).unwrap_err().to_string();
            assert!(e.contains(&format!("(an EMNIST mapping): {want}")), "{e}");
        }
        // Numbers alone, or lines not all numbers, are names.
        for text in ["10\n20\n", "1 65\nB\n"] {
            let f = file(text.as_bytes());
            let names = NamesFile::read(f.path())
                .unwrap()
                .for_classes(2, NamedFor::Data)
                .unwrap();
            let first = text.lines().next().unwrap();
            assert_eq!(names.name(0), Some(first), "{text:?}");
        }
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
