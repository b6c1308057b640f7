//! How numbers are written for people: plain where that is short, in
//! exponent form where plain would run long (`1e30`, not thirty-one digits).

/// The shorter of `v`'s plain and exponent forms (plain on a tie): the
/// given 0.1 as typed, 1e-8 not as 0.00000001.
pub fn shortest(v: f32) -> String {
    let (plain, sci) = (v.to_string(), format!("{v:e}"));
    if sci.len() < plain.len() {
        sci
    } else {
        plain
    }
}

/// `v` plain, as typed for every everyday value (0.1, 0.0005, 34), and in
/// exponent form only where plain runs past 8 characters and that is
/// shorter (1e30, 1e-9).
pub fn number(v: f32) -> String {
    let plain = v.to_string();
    if plain.len() > 8 {
        shortest(v)
    } else {
        plain
    }
}

/// A loss for people: four decimals, or `3.075e27` where plain would run
/// to dozens of digits (a model of another data set, or a broken one).
pub fn loss(v: f64) -> String {
    match v.abs() < 1e6 {
        true => format!("{v:.4}"),
        false => format!("{v:.3e}"),
    }
}

/// A learning rate in an epoch line: four decimals, as the recipes'
/// rates are written (0.1000, 0.0251), but three significant figures in
/// exponent form below 0.01, where four decimals would say little or
/// nothing: Adam's 0.001 decaying reads `9.51e-4`, not `0.0010`,
/// `0.0009`, a cosine's last step `3.34e-9`, not `0.0000`, and `--lr
/// 0.00001` is not `0.0000`.
pub fn rate(v: f32) -> String {
    if v == 0.0 || v.abs() >= 0.01 {
        format!("{v:.4}")
    } else {
        format!("{v:.2e}")
    }
}

/// A probability as a percentage to a tenth, except that only certainty
/// is `100.0` and only nothing at all `0.0`: 0.9996 rounded to `100.0`
/// would say the model is sure, so it is `>99.9` (and 0.0004, `<0.1`).
/// The page writes its percentages by the same rule, and this computes
/// them as the page does, so both say the same of the same answer: from
/// the number JSON carries (`p`'s shortest decimal) read as an f64, times
/// 100, rounded as JavaScript's `toFixed(1)` rounds (an exact tie, 1.25,
/// up; Rust's `{:.1}` would round it to even).
pub fn probability(p: f32) -> String {
    let page = p.to_string().parse::<f64>().unwrap_or(f64::from(p));
    let x = 100.0 * page;
    // A tie at a tenth is a multiple of 0.05 that is exact in binary: an
    // odd number of quarters (×4 and ×10 are exact for these).
    let quarters = 4.0 * x;
    let tenth = if quarters.fract() == 0.0 && quarters % 2.0 == 1.0 {
        let n = (10.0 * x).ceil() as u64;
        format!("{}.{}", n / 10, n % 10)
    } else {
        format!("{x:.1}")
    };
    match tenth.as_str() {
        "100.0" if p < 1.0 => ">99.9".into(),
        "0.0" if p > 0.0 => "<0.1".into(),
        _ => tenth,
    }
}

/// A share as a percentage to a hundredth, except that only all is
/// `100.00` and only none `0.00`: one miss in 30,000 rounded to `100.00`
/// would claim a perfect score, so it is `>99.99` (and one hit, `<0.01`),
/// as [`probability`] does for a tenth. No wider than `100.00`.
pub fn percent(share: f64) -> String {
    let s = format!("{:.2}", 100.0 * share);
    match s.as_str() {
        "100.00" if share < 1.0 => ">99.99".into(),
        "0.00" if share > 0.0 => "<0.01".into(),
        _ => s,
    }
}

/// `text` on one line, as a terminal shows it: a line break in it (a file
/// named `a\nb`) written as `\n` (`\r` for a carriage return, `\t` for a
/// tab), any other control character or one that [`breaks_text`] as
/// `\u{1b}`, and a backslash as `\\`, so that a written `\n` always means
/// a line break, as `ls -b` writes names, and a value cannot move the
/// cursor, colour the line or turn its text around.
pub fn one_line(text: &str) -> String {
    written(text, true)
}

/// `path` as a line that reports it shows it: through [`one_line`], so
/// that a name with a line break or an escape sequence (`--save
/// $'a\nb'`) cannot split the line or recolour the terminal.
pub fn path(path: &std::path::Path) -> String {
    one_line(&path.display().to_string())
}

/// `text` with its line breaks and other control characters written out
/// as [`one_line`] writes them, but its backslashes as they are: for a
/// line parts of which have been through [`one_line`] already.
pub fn controls_written(text: &str) -> String {
    written(text, false)
}

fn written(text: &str, backslashes: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' if backslashes => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || breaks_text(c) => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// Characters that change the text around them rather than show: the
/// line and paragraph separators, and Unicode's `Bidi_Control` set (the
/// direction marks, embeddings, overrides and isolates).
pub fn breaks_text(c: char) -> bool {
    matches!(
        c,
        '\u{2028}' | '\u{2029}' | '\u{061C}' | '\u{200E}' | '\u{200F}'
            | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Decimals to print byte counts in gigabytes with so that `need`, which
/// is more than `avail`, does not read as equal to it ("2.0 GB, more than
/// the 2.0 GB available"): 1, or up to 6 where fewer round them together
/// (a `ulimit -v` of a few megabytes: 0.0032 GB against 0.0031; and 6 for
/// sizes under a kilobyte apart, which still read alike).
pub fn gb_decimals(need: u64, avail: u64) -> usize {
    decimals_apart(need, avail, 1e9)
}

/// Decimals, 1 to 6, that tell byte counts `a` and `b` apart in units of
/// `scale` bytes (6 where none do).
fn decimals_apart(a: u64, b: u64, scale: f64) -> usize {
    let text = |n: u64, d: usize| format!("{:.*}", d, n as f64 / scale);
    (1..6).find(|&d| text(a, d) != text(b, d)).unwrap_or(6)
}

/// Two byte counts, `a` and `b` (the larger), in `b`'s unit (kB, MB or
/// GB), with the decimals that tell them apart: "163.8 kB" against
/// "814.1 kB", not "0.000 GB" against "0.001 GB".
pub fn sizes_apart(a: u64, b: u64) -> (String, String) {
    let (unit, scale) = unit_of(b);
    let d = decimals_apart(a, b, scale);
    let text = |n: u64| format!("{:.*} {unit}", d, n as f64 / scale);
    (text(a), text(b))
}

/// Byte counts said in one unit, the largest's (GB, MB or kB), each with
/// the decimals that tell it from every other count given and from none
/// at all: "0.2 MB (1 thread), which with the network's 58.3 MB is more
/// than the 58.4 MB", not "0.000 GB ... 0.058 GB ... the 0.058 GB".
pub fn sizes_told_apart(sizes: &[u64]) -> Vec<String> {
    let (unit, scale) = unit_of(sizes.iter().copied().max().unwrap_or(0));
    let mut d = 1;
    for (i, &a) in sizes.iter().enumerate() {
        // Each from those after it that differ, and from 0.
        for &b in sizes[i + 1..].iter().chain([&0]) {
            if a != b {
                d = d.max(decimals_apart(a, b, scale));
            }
        }
    }
    sizes
        .iter()
        .map(|&n| format!("{:.*} {unit}", d, n as f64 / scale))
        .collect()
}

/// The unit to say a byte count of up to `most` in, and its bytes.
fn unit_of(most: u64) -> (&'static str, f64) {
    match most {
        n if n >= 1_000_000_000 => ("GB", 1e9),
        n if n >= 1_000_000 => ("MB", 1e6),
        _ => ("kB", 1e3),
    }
}

/// The plural ending for `n` things: `s` unless `n` is 1.
pub fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `n` and `word`, plural where `n` is not 1: `1 image`, `3 images`.
pub fn count(n: usize, word: &str) -> String {
    format!("{n} {word}{}", plural(n))
}

/// Items as a sentence lists them: `a`, `a and b`, `a, b and c`.
pub fn and_list(items: &[String]) -> String {
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// Sorted whole numbers as runs: `0, 27–29, 31`.
pub fn ranges(sorted: &[usize]) -> String {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &n in sorted {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == n => *end = n,
            _ => runs.push((n, n)),
        }
    }
    runs.iter()
        .map(|&(a, b)| match b - a {
            0 => a.to_string(),
            1 => format!("{a}, {b}"),
            _ => format!("{a}–{b}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `word` as a shell would need it typed as an argument: as it is when it
/// holds only letters, digits and `._/-+,:=@%`, else in single quotes (a
/// quote inside written `'"'"'`), or, where it holds a line break or
/// another control character, in bash's `$'…'` with each written `\n` or
/// `\xNN`, so that the line showing it stays one line and the command
/// still names the file; `./` before a word that begins with `-`, so that
/// no command takes it for an option.
pub fn shell_word(word: &str) -> String {
    shell_bytes(word.as_bytes())
}

/// [`shell_word`] for a path, whose bytes need not be UTF-8 (`ck\xff.st`):
/// bytes that are not are written `\xNN` in bash's `$'…'`, where
/// `display()` would show U+FFFD and the command would name another file.
pub fn shell_path(path: &std::path::Path) -> String {
    shell_bytes(path.as_os_str().as_encoded_bytes())
}

fn shell_bytes(bytes: &[u8]) -> String {
    let dashed;
    let bytes = match bytes.starts_with(b"-") {
        true => {
            dashed = [&b"./"[..], bytes].concat();
            &dashed[..]
        }
        false => bytes,
    };
    let chunks = || bytes.utf8_chunks();
    let odd = chunks().any(|c| !c.invalid().is_empty() || c.valid().chars().any(char::is_control));
    if odd {
        let mut quoted = String::from("$'");
        for chunk in chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '\\' => quoted.push_str("\\\\"),
                    '\'' => quoted.push_str("\\'"),
                    '\n' => quoted.push_str("\\n"),
                    '\t' => quoted.push_str("\\t"),
                    c if c.is_ascii_control() => quoted.push_str(&format!("\\x{:02x}", c as u32)),
                    c if c.is_control() => quoted.push_str(&format!("\\u{:04x}", c as u32)),
                    c => quoted.push(c),
                }
            }
            for b in chunk.invalid() {
                quoted.push_str(&format!("\\x{b:02x}"));
            }
        }
        quoted.push('\'');
        return quoted;
    }
    // Valid UTF-8 here: no chunk had an invalid part.
    let word = String::from_utf8_lossy(bytes).into_owned();
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/-+,:=@%".contains(c));
    match plain {
        true => word,
        false => format!("'{}'", word.replace('\'', "'\"'\"'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes in the larger one's unit, with as many decimals as tell them apart.
    #[test]
    fn sizes_are_written_in_the_larger_ones_unit() {
        let t = |free, need| {
            let (f, n) = sizes_apart(free, need);
            format!("{f} / {n}")
        };
        assert_eq!(t(163_840, 814_120), "163.8 kB / 814.1 kB");
        assert_eq!(t(799_990, 800_000), "799.99 kB / 800.00 kB");
        assert_eq!(t(0, 5_300_000), "0.0 MB / 5.3 MB");
        assert_eq!(t(66_800_000_000, 4_401_400_000_000), "66.8 GB / 4401.4 GB");
    }

    /// Several sizes in the largest's unit, each told from the others and
    /// from none (a memory refusal read "0.000 GB" of buffers, and a
    /// network's "0.058 GB" as more than "the 0.058 GB available").
    #[test]
    fn sizes_told_apart_from_each_other_and_from_none() {
        let t = |sizes: &[u64]| sizes_told_apart(sizes).join(" / ");
        assert_eq!(
            t(&[230_000, 58_040_000, 58_090_000]),
            "0.2 MB / 58.0 MB / 58.1 MB"
        );
        assert_eq!(
            t(&[230_000, 58_040_000, 58_049_000]),
            "0.23 MB / 58.04 MB / 58.05 MB"
        );
        assert_eq!(
            t(&[2_000, 58_040_000, 58_049_000]),
            "0.002 MB / 58.040 MB / 58.049 MB"
        );
        assert_eq!(t(&[51_700_000, 38_800_000]), "51.7 MB / 38.8 MB");
        assert_eq!(t(&[1_700_000_000, 100_000_000]), "1.7 GB / 0.1 GB");
        assert_eq!(t(&[1_700_000_000, 40_000_000]), "1.70 GB / 0.04 GB");
        assert_eq!(t(&[800, 800]), "0.8 kB / 0.8 kB");
    }

    /// Only all is 100.00 % and only none 0.00 %.
    #[test]
    fn a_percentage_never_rounds_to_all_or_none() {
        assert_eq!(percent(0.970_8), "97.08");
        assert_eq!(percent(1.0), "100.00");
        assert_eq!(percent(0.0), "0.00");
        assert_eq!(percent(29_999.0 / 30_000.0), ">99.99");
        assert_eq!(percent(1.0 / 30_000.0), "<0.01");
        assert_eq!(percent(0.999_9), "99.99");
        assert_eq!(percent(0.000_1), "0.01");
    }

    #[test]
    fn small_rates_keep_their_figures() {
        assert_eq!(rate(0.1), "0.1000");
        assert_eq!(rate(0.025_1), "0.0251");
        assert_eq!(rate(0.01), "0.0100");
        assert_eq!(rate(0.0), "0.0000");
        assert_eq!(rate(0.001), "1.00e-3");
        assert_eq!(rate(0.000_951_2), "9.51e-4");
        assert_eq!(rate(0.000_01), "1.00e-5");
    }

    /// Four decimals below a million; from a million on (a diverging
    /// run's), exponent form.
    #[test]
    fn losses_past_a_million_are_written_as_exponents() {
        assert_eq!(loss(0.123_456), "0.1235");
        assert_eq!(loss(999_999.0), "999999.0000");
        assert_eq!(loss(1e6), "1.000e6");
        assert_eq!(loss(-1e6), "-1.000e6");
        assert_eq!(loss(3.075e27), "3.075e27");
    }

    #[test]
    fn lists_read_as_sentences() {
        let list =
            |items: &[&str]| and_list(&items.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(list(&[]), "");
        assert_eq!(list(&["a"]), "a");
        assert_eq!(list(&["a", "b"]), "a and b");
        assert_eq!(list(&["a", "b", "c"]), "a, b and c");
    }

    #[test]
    fn sizes_over_a_limit_print_apart_where_three_decimals_can() {
        assert_eq!(gb_decimals(3_000_000_000, 2_000_000_000), 1);
        // 2.04 and 1.96 GB both read "2.0".
        assert_eq!(gb_decimals(2_040_000_000, 1_960_000_000), 2);
        assert_eq!(gb_decimals(2_001_000_000, 2_000_400_000), 3);
        assert_eq!(gb_decimals(3_152_000, 3_098_000), 4);
        // Under a kilobyte apart, six decimals still read alike: the
        // most a size in gigabytes is written with.
        assert_eq!(gb_decimals(2_000_000_001, 2_000_000_000), 6);
    }

    #[test]
    fn runs_of_numbers_are_joined() {
        assert_eq!(ranges(&[0, 27, 28, 29, 31]), "0, 27–29, 31");
        assert_eq!(ranges(&[3, 4]), "3, 4");
        assert_eq!(ranges(&[]), "");
    }

    #[test]
    fn shell_words_are_quoted_only_where_needed() {
        assert_eq!(shell_word("data/emnist-1.gz"), "data/emnist-1.gz");
        assert_eq!(shell_word("my data"), "'my data'");
        assert_eq!(shell_word("it's"), "'it'\"'\"'s'");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_word("-x.gz"), "./-x.gz");
        assert_eq!(shell_word("a\\b"), "'a\\b'");
        // A control character: bash's $'…', each written out.
        assert_eq!(shell_word("e\nmn"), "$'e\\nmn'");
        assert_eq!(
            shell_word("a'b\\c\td\x1b\u{85}"),
            "$'a\\'b\\\\c\\td\\x1b\\u0085'"
        );
    }

    /// Bytes that are not UTF-8, in a path: each written `\xNN`.
    #[cfg(unix)]
    #[test]
    fn a_path_that_is_not_utf8_is_written_byte_by_byte() {
        let path = |b: &[u8]| {
            use std::os::unix::ffi::OsStrExt;
            shell_path(std::path::Path::new(std::ffi::OsStr::from_bytes(b)))
        };
        assert_eq!(path(b"ck\xff.st"), "$'ck\\xff.st'");
        assert_eq!(path(b"-a b\xe9\n'"), "$'./-a b\\xe9\\n\\''");
        assert_eq!(path(b"my data"), "'my data'");
    }

    #[test]
    fn everyday_values_stay_plain_and_extremes_shrink() {
        for (v, want) in [
            (0.1, "0.1"),
            (0.0005, "0.0005"),
            (34.0, "34"),
            (0.0, "0"),
            (0.999, "0.999"),
            (1e30, "1e30"),
            (1e-9, "1e-9"),
            (123456789.0, "123456790"),
        ] {
            assert_eq!(number(v), want, "{v}");
        }
        assert_eq!(shortest(1e-8), "1e-8");
        assert_eq!(shortest(0.1), "0.1");
        assert_eq!(shortest(0.0005), "5e-4");
    }

    #[test]
    fn only_certainty_is_100_percent() {
        for (p, want) in [
            (1.0, "100.0"),
            (0.9996, ">99.9"),
            (0.99949, "99.9"),
            (0.5, "50.0"),
            (0.0004, "<0.1"),
            (0.0, "0.0"),
            // As the page's `(100 * p).toFixed(1)` reads them (node and
            // Chromium agree): 100 × f32 would give 0.2 and 1.0, the exact
            // f32 value 0.7, Rust's rounding of the tie 1.25 1.2.
            (0.0015, "0.1"),
            (0.0105, "1.1"),
            (0.0075, "0.8"),
            (0.0125, "1.3"),
            (0.9975, "99.8"),
        ] {
            assert_eq!(probability(p), want, "{p}");
        }
    }

    #[test]
    fn one_line_keeps_breaks_and_backslashes_apart() {
        assert_eq!(one_line("a\nb"), "a\\nb");
        assert_eq!(one_line("a\\nb"), "a\\\\nb");
        assert_eq!(one_line("c\r"), "c\\r");
        assert_eq!(one_line("plain"), "plain");
        // Nothing that moves the cursor, colours or turns the line.
        assert_eq!(one_line("a\tb\x1b[31mc\x7f"), "a\\tb\\u{1b}[31mc\\u{7f}");
        assert_eq!(one_line("x\u{202e}y\u{2028}z"), "x\\u{202e}y\\u{2028}z");
        assert_eq!(one_line("é日本"), "é日本");
        assert_eq!(controls_written("a\\n\x1bb\n"), "a\\n\\u{1b}b\\n");
    }

    /// Every character of Unicode's `Bidi_Control` set and both separators
    /// are written out, each end of the ranges included: any one of them
    /// left raw could reorder or split the line that quotes it.
    #[test]
    fn every_direction_control_and_separator_is_written_out() {
        let all = [
            0x061C, 0x200E, 0x200F, 0x2028, 0x2029, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066,
            0x2067, 0x2068, 0x2069,
        ];
        for u in all {
            let c = char::from_u32(u).unwrap();
            assert!(breaks_text(c), "{u:x}");
            assert_eq!(one_line(&format!("a{c}b")), format!("a\\u{{{u:x}}}b"));
        }
        // Their neighbours show as they are.
        for u in [
            0x061B, 0x061D, 0x200D, 0x2010, 0x2027, 0x202F, 0x2065, 0x206A,
        ] {
            let c = char::from_u32(u).unwrap();
            assert!(!breaks_text(c), "{u:x}");
        }
    }
}
