//! What a command line that clap refuses is told: one line that names
//! the word at fault, as the line shows it (on one line, cut short where
//! long, control characters written out), and the fix (the values a flag
//! takes, the flag meant, the subcommand a flag belongs to, where a model
//! file goes), instead of clap's several lines and usage block. `main`
//! prints it after `simplenn: error: ` and exits 2.
//!
//! Everything here is a function of clap's error and the command line,
//! passed in (nothing reads the process's own arguments), so the tests
//! below give both.

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};

use crate::cli;

/// The first of `args` that is not UTF-8, said as the value of its flag
/// (`the value of --lr ($'1\xff')`: the flag before it, or before its `=`)
/// or as itself, in the shell's `$'…'` quoting: its bytes that are not
/// text, and control characters, written `\xNN`.
#[cfg(unix)]
fn not_utf8(args: impl Iterator<Item = std::ffi::OsString>) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let args: Vec<_> = args.collect();
    let i = args.iter().position(|a| a.to_str().is_none())?;
    let bytes = args[i].as_bytes();
    let shown = |bytes: &[u8]| {
        let mut out = String::from("$'");
        let hex = |out: &mut String, b: &[u8]| {
            b.iter().for_each(|b| out.push_str(&format!("\\x{b:02x}")))
        };
        for chunk in bytes.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '\\' | '\'' => {
                        out.push('\\');
                        out.push(c);
                    }
                    c if c.is_control() || crate::show::breaks_text(c) => {
                        hex(&mut out, c.encode_utf8(&mut [0; 4]).as_bytes())
                    }
                    c => out.push(c),
                }
            }
            hex(&mut out, chunk.invalid());
        }
        out + "'"
    };
    let flag = |f: &[u8]| String::from_utf8_lossy(f).into_owned();
    Some(match bytes.iter().position(|&b| b == b'=') {
        Some(eq) if bytes.starts_with(b"--") && std::str::from_utf8(&bytes[..eq]).is_ok() => {
            format!(
                "the value of {} ({})",
                flag(&bytes[..eq]),
                shown(&bytes[eq + 1..])
            )
        }
        _ => match i.checked_sub(1).map(|p| args[p].as_bytes()) {
            Some(prev) if prev.starts_with(b"-") && prev.len() > 1 && !prev.contains(&b'=') => {
                format!("the value of {} ({})", flag(prev), shown(bytes))
            }
            _ => format!("the argument {}", shown(bytes)),
        },
    })
}

/// What the command line `args` (the whole of it, the program's name
/// first, as [`std::env::args_os`] gives it), which clap refused with `e`,
/// is told: one line, without the `simplenn: error: ` it is printed
/// after. Clap's own first line without its "error: " prefix (with the
/// names clap lists on the lines after it, for missing or conflicting
/// flags), and the fix, or where to look.
pub fn line(e: &clap::Error, args: &[OsString]) -> String {
    // Clap says only that some argument is not UTF-8: say which.
    #[cfg(unix)]
    if e.kind() == ErrorKind::InvalidUtf8 {
        if let Some(which) = not_utf8(args.iter().skip(1).cloned()) {
            return format!("{which} is not UTF-8 text; type it as plain text (see --help)");
        }
    }
    let mut text = e.to_string();
    // The words clap quotes, as this line shows them: a value with a line
    // break would end the line early, and a file pasted by mistake would
    // fill the screen.
    let words = [
        ContextKind::InvalidValue,
        ContextKind::InvalidArg,
        ContextKind::InvalidSubcommand,
    ];
    for kind in words {
        if let Some(ContextValue::String(w)) = e.get(kind) {
            text = text.replace(&format!("'{w}'"), &shown_word(w));
        }
    }
    let mut first = text
        .lines()
        .next()
        .unwrap_or("bad flags")
        .trim_start_matches("error: ")
        .to_string();
    // Clap's text drops a value's terminal escapes (`$'\e[31mred'` reads
    // 'red'), so no replacement found it: say it from the context instead.
    let said = |kind| match e.get(kind) {
        Some(ContextValue::String(w)) => Some(w.clone()),
        _ => None,
    };
    let value = said(ContextKind::InvalidValue);
    if let (Some(v), Some(arg)) = (&value, said(ContextKind::InvalidArg)) {
        if v.chars().any(char::is_control) && !first.contains(&shown_word(v)) {
            let reason = std::error::Error::source(e).map(|r| format!(": {r}"));
            first = format!(
                "invalid value {} for '{arg}'{}",
                shown_word(v),
                reason.unwrap_or_default()
            );
        }
    }
    let word = match e.kind() {
        ErrorKind::UnknownArgument => {
            said(ContextKind::InvalidArg).map(|w| ("unexpected argument", w, " found"))
        }
        ErrorKind::InvalidSubcommand => {
            said(ContextKind::InvalidSubcommand).map(|w| ("unrecognized subcommand", w, ""))
        }
        _ => None,
    };
    if let Some((what, w, end)) = word {
        if w.chars().any(char::is_control) && !first.contains(&shown_word(&w)) {
            first = format!("{what} {}{end}", shown_word(&w));
        }
    }
    if let Some(ContextValue::Strings(missing)) = e.get(ContextKind::InvalidArg) {
        if e.kind() == ErrorKind::MissingRequiredArgument && !missing.is_empty() {
            first = format!("{first} {}", missing.join(", "));
        }
    }
    // Training is the default subcommand, so clap reads a stray word among
    // its flags (`--hidden 1024, 1024`) as a subcommand's name.
    if let Some(word) = stray_word(e) {
        let fix = match near_subcommand(&word) {
            Some(sub) => {
                format!("did you mean {sub}? A subcommand goes first: simplenn {sub} [FLAGS]")
            }
            None => STRAY_WORD_FIX.to_string(),
        };
        let word = shown_word(&word);
        return format!("unexpected word {word} among the training flags; {fix}");
    }
    first = plain_parse_words(e, first);
    // "the subcommand 'eval' cannot be used with:" and the flags below it.
    if let Some(ContextValue::Strings(others)) = e.get(ContextKind::PriorArg) {
        if e.kind() == ErrorKind::ArgumentConflict && first.ends_with(':') {
            first = format!("{} {}", first.trim_end_matches(':'), others.join(", "));
        }
    }
    let line = match dash_refusal(e, args) {
        Some(refused) => refused,
        None => format!("{first}; {}", usage_hint(e, args)),
    };
    // What is left of a value in a reason or a hint (`simplenn eval
    // --model $'\e[2J'`) must not clear the screen or colour the line.
    let line = crate::show::controls_written(&line);
    short_words(&line)
}

/// `line` with each word (between spaces) of over [`WORD_SHOWN`] + 20
/// bytes cut to its first [`WORD_SHOWN`] and `…`: a value a reason or a
/// hint repeats (`--hidden 16,999…9`) keeps the line short too.
fn short_words(line: &str) -> String {
    let words = line.split(' ').map(|w| match w.len() > WORD_SHOWN + 20 {
        true => format!("{}…", crate::atomic::cut(w, WORD_SHOWN)),
        false => w.to_string(),
    });
    words.collect::<Vec<_>>().join(" ")
}

/// Bytes of a word from the command line that an error line shows.
const WORD_SHOWN: usize = 60;

/// `word` quoted as an error line shows it: on one line
/// ([`crate::show::one_line`]), and by its first [`WORD_SHOWN`] bytes
/// and its length where longer.
fn shown_word(word: &str) -> String {
    let line = crate::show::one_line(word);
    if line.len() <= WORD_SHOWN {
        return format!("'{line}'");
    }
    let start = crate::atomic::cut(&line, WORD_SHOWN);
    format!("'{start}…' ({} bytes)", word.len())
}

/// What to do about a word where a flag goes.
const STRAY_WORD_FIX: &str = "flags take no loose words: a list has no spaces (--hidden 1024,1024), a value with spaces needs quotes, and a file goes after its flag (--save FILE)";

/// The subcommand `word` misspells (at most two letters changed, added or
/// dropped), if any.
fn near_subcommand(word: &str) -> Option<String> {
    let distance = |a: &str, b: &str| {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, &cb) in b.iter().enumerate() {
                let here = (prev + (ca != cb) as usize)
                    .min(row[j] + 1)
                    .min(row[j + 1] + 1);
                prev = row[j + 1];
                row[j + 1] = here;
            }
        }
        row[b.len()]
    };
    <cli::Cli as clap::CommandFactory>::command()
        .get_subcommands()
        // `EVAL` is `eval`, as near as `evl`: no subcommand differs from
        // another by case alone.
        .map(|s| {
            (
                distance(&word.to_lowercase(), s.get_name()),
                s.get_name().to_string(),
            )
        })
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, name)| name)
}

/// The word clap took for a subcommand's name where it names none.
fn stray_word(e: &clap::Error) -> Option<String> {
    let Some(ContextValue::String(word)) = e.get(ContextKind::InvalidSubcommand) else {
        return None;
    };
    let known = <cli::Cli as clap::CommandFactory>::command()
        .get_subcommands()
        .any(|s| s.get_name() == word);
    (e.kind() == ErrorKind::ArgumentConflict && !known).then(|| word.clone())
}

/// `--save -m.x`: clap reads a value that starts with '-' as a flag; how to
/// pass it, where the word before it takes one.
fn dash_value(e: &clap::Error, args: &[OsString]) -> Option<String> {
    dash_fix(e, args)?.ok()
}

/// `--epochs -inf`: a value that starts with '-', which its flag refuses
/// however written; that refusal, worded as any other, is the error
/// (clap's "unexpected argument '-i'" is not).
fn dash_refusal(e: &clap::Error, args: &[OsString]) -> Option<String> {
    let refused = match dash_fix(e, args)?.err()? {
        cli::DashRefusal::Parse(refused) => refused,
        cli::DashRefusal::Range(line) => return Some(line),
    };
    let text = refused.to_string();
    let line = text.lines().next().unwrap_or_default();
    let line = line.strip_prefix("error: ").unwrap_or(line).to_string();
    // A range's line says its fix (`e.g. 0.1`), as the flag's own check
    // says it for `--lr inf`; a parse error's points to the help.
    Some(format!("{}; see --help", plain_parse_words(&refused, line)))
}

/// [`cli::dash_value_fix`] for clap's error `e`.
fn dash_fix(e: &clap::Error, args: &[OsString]) -> Option<Result<String, cli::DashRefusal>> {
    if e.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(bad)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    cli::dash_value_fix(&args, bad)
}

/// `text` (`e`'s message, or part of it) with Rust's parse errors, which
/// name the parser's problem, not the user's (`--seed -5` is "invalid
/// digit found in string"), in people's words.
fn plain_parse_words(e: &clap::Error, mut text: String) -> String {
    if e.kind() != ErrorKind::ValueValidation {
        return text;
    }
    let signed = match e.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(v)) if v.starts_with('-') => v.parse::<f64>().ok(),
        _ => None,
    };
    let digit = match signed {
        Some(x) if x < 0.0 => "a number below 0, which this flag does not take",
        // `-0` (or `-1e-400`): not below 0, but signed.
        Some(0.0) => "a signed number, where this flag takes a whole number without a sign",
        // `-nan`, say.
        _ => "not a whole number",
    };
    for (rust, plain) in [
        ("invalid digit found in string", digit),
        (
            "cannot parse integer from empty string",
            "empty, where a whole number goes",
        ),
        (
            "number too large to fit in target type",
            "too large a number",
        ),
        (
            "number too small to fit in target type",
            "too small a number",
        ),
        ("invalid float literal", "not a number"),
        (
            "cannot parse float from empty string",
            "empty, where a number goes",
        ),
        // A port outside u16 (clap's range, in Rust's notation).
        ("is not in 0..=65535", "is not a port (0 to 65535)"),
    ] {
        text = text.replace(rust, plain);
    }
    // `--lr " 0.1"`, from a script's quoting: the spaces are the problem,
    // not the number (a list flag's spaces after commas are its own).
    if let Some(ContextValue::String(v)) = e.get(ContextKind::InvalidValue) {
        let bare = v.trim();
        // A number once trimmed (`' x1'` is not one, nor `' 1e400'`): the
        // flag may still refuse it, and then says why.
        let number = bare.parse::<f64>().is_ok_and(f64::is_finite);
        let spaced = bare != v && !bare.contains(char::is_whitespace);
        if let (true, Some(at)) = (spaced && number, text.rfind("': ")) {
            text = format!(
                "{}': spaces around a number; write it as '{bare}'",
                &text[..at]
            );
        }
    }
    text
}

/// The subcommand given, from clap's own list (not a copy that could
/// drift): `train` where none is.
fn current_command(args: &[OsString]) -> String {
    let given = args.get(1).and_then(|a| a.to_str());
    <cli::Cli as clap::CommandFactory>::command()
        .get_subcommands()
        .map(|s| s.get_name())
        .find(|&s| s != "help" && given == Some(s))
        .unwrap_or("train")
        .to_string()
}

/// `--serve --host ::1`, `train --port 1`, `plot -o`…: an unknown flag that
/// another subcommand has, named as that one's.
fn other_commands_flag(e: &clap::Error, args: &[OsString]) -> Option<String> {
    if e.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(bad)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let current = current_command(args);
    let current = current.as_str();
    let owners = cli::commands_with_flag(bad, current);
    let flag = bad.split('=').next().unwrap_or(bad);
    let this = match current {
        "train" => "training".to_string(),
        c => format!("simplenn {c}"),
    };
    let owners = match owners.split_last()? {
        (last, []) => format!("simplenn {last}"),
        (last, rest) => format!("simplenn {} and {last}", rest.join(", ")),
    };
    let live = match (current, flag) {
        ("train", "--host") => " (train --serve listens on 127.0.0.1 only; simplenn serve --model FILE --host ADDRESS serves a saved model)",
        // The log is plot's argument itself.
        ("plot", "--metrics") => "; give the log itself: simplenn plot LOG.jsonl",
        // The live page's port is --serve's value.
        ("train", "--port") => "; give training's page its port as --serve PORT (--serve 9000)",
        _ => "",
    };
    Some(format!("{flag} is a flag of {owners}, not of {this}{live}"))
}

/// `plot -- -x.jsonl -o c.svg`: clap reads every word after `--` as a
/// file, a flag this subcommand has included, so the flag is refused as an
/// extra file (and would be misnamed another subcommand's).
fn after_double_dash(e: &clap::Error, args: &[OsString]) -> Option<String> {
    let Some(ContextValue::String(bad)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    // A flag's word (a loose file after `--` keeps its own hints), found
    // after `--` only: one before it is what clap refused.
    let end = args.iter().position(|a| a == "--")?;
    let flag = bad.starts_with('-') && bad != "--";
    let after = args[end + 1..].iter().any(|a| a.to_str() == Some(bad));
    let before = args[..end].iter().any(|a| a.to_str() == Some(bad));
    (e.kind() == ErrorKind::UnknownArgument && flag && after && !before).then(|| {
        format!(
            "every word after -- is read as a file, so {} is not taken as a flag there: put the flags before --",
            shown_word(bad)
        )
    })
}

/// `plot -x.jsonl`: a file whose name starts with '-' is read as a cluster
/// of short flags, and clap names only the first (`-x`): name the file and
/// how to pass it, for the subcommands that take files.
fn dash_file(e: &clap::Error, args: &[OsString]) -> Option<String> {
    let Some(ContextValue::String(bad)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let current = current_command(args);
    let takes_files = matches!(current.as_str(), "plot" | "predict");
    let short = bad.len() == 2 && bad.starts_with('-') && !bad.starts_with("--");
    if e.kind() != ErrorKind::UnknownArgument || !takes_files || !short {
        return None;
    }
    let word = args
        .iter()
        .skip(2)
        .filter_map(|a| a.to_str())
        .find(|a| a.starts_with(bad.as_str()) && a.len() > bad.len())?;
    let shown = crate::show::one_line(word);
    Some(format!(
        "if {shown} is a file, write it ./{shown}, or after -- (simplenn {current} [FLAGS] -- {shown})"
    ))
}

/// The fix for a clap error: the values a flag takes, the flag clap thinks
/// was meant, or where to look.
fn usage_hint(e: &clap::Error, args: &[OsString]) -> String {
    let strings = |kind| match e.get(kind) {
        Some(ContextValue::Strings(v)) if !v.is_empty() => Some(v.clone()),
        Some(ContextValue::String(v)) => Some(vec![v.clone()]),
        _ => None,
    };
    if let Some(values) = strings(ContextKind::ValidValue) {
        return format!("use one of {}", values.join(", "));
    }
    // Before clap's guess at a near spelling (`train --port` is not
    // `--preset`): a flag that another subcommand has.
    // (But `--save -o.x` is first a value that starts with '-'.)
    if let Some(fix) = dash_value(e, args) {
        return fix;
    }
    if let Some(fix) = after_double_dash(e, args).or_else(|| dash_file(e, args)) {
        return fix;
    }
    if let Some(hint) = other_commands_flag(e, args) {
        return hint;
    }
    // A flag cut short (`--ep`) means one it begins, not clap's nearest
    // spelling (`--eps`, Adam's, for `--epochs`): all of them, if few.
    let cut_short = match (e.kind(), strings(ContextKind::InvalidArg)) {
        (ErrorKind::UnknownArgument, Some(bad)) => {
            Some(cli::flags_starting_with(&bad[0], &current_command(args)))
                .filter(|f| !f.is_empty())
        }
        _ => None,
    };
    if let Some(flags) = cut_short.as_ref().filter(|f| f.len() > 3) {
        let bad = strings(ContextKind::InvalidArg)
            .unwrap_or_default()
            .concat();
        let more = if flags.len() > 6 { ", …" } else { "" };
        return format!(
            "did you mean one of the {} flags that begin {bad}: {}{more}? (see --help)",
            flags.len(),
            flags[..flags.len().min(6)].join(", "),
        );
    }
    // A subcommand's exact name refused as one: only `help` reads a second
    // name (`help eval predict`), and subcommands do not nest.
    if let (ErrorKind::InvalidSubcommand, Some(word)) =
        (e.kind(), strings(ContextKind::InvalidSubcommand))
    {
        if near_subcommand(&word[0]).as_deref() == Some(word[0].as_str()) {
            let w = &word[0];
            return format!(
                "help takes one subcommand's name: simplenn help {w}, or simplenn {w} --help"
            );
        }
    }
    // A misspelt subcommand: the nearest by letters changed (`evl` is
    // `eval`), where clap's similarity also offers `help`.
    let nearest = match (e.kind(), strings(ContextKind::InvalidSubcommand)) {
        (ErrorKind::InvalidSubcommand, Some(word)) => near_subcommand(&word[0]).map(|s| vec![s]),
        _ => None,
    };
    let meant = cut_short
        .or_else(|| strings(ContextKind::SuggestedArg))
        .or(nearest)
        .or_else(|| strings(ContextKind::SuggestedSubcommand));
    if let Some(meant) = meant {
        return format!("did you mean {}? (see --help)", meant.join(" or "));
    }
    // `simplenn --data DIR eval …`: the flags were read as training's.
    if let (ErrorKind::ArgumentConflict, Some(sub)) =
        (e.kind(), strings(ContextKind::InvalidSubcommand))
    {
        return format!(
            "a subcommand's flags go after it: simplenn {} [FLAGS]",
            sub.join(" ")
        );
    }
    let sub = args.get(1).and_then(|a| a.to_str());
    // A model already given: a second word is left over, not the model.
    let has_model = args
        .iter()
        .any(|a| a == "--model" || a.to_str().is_some_and(|a| a.starts_with("--model=")));
    // A word where `eval` or `serve` (`sub`) takes its one model file.
    let model_word = |w: &str, sub: &str| {
        match has_model {
        true => format!("simplenn {sub} reads the one model after --model: remove {w}, or give it in --model's place"),
        false => format!("a model file goes after --model: simplenn {sub} --model {w}"),
    }
    };
    // `eval m.safetensors`, `simplenn m.safetensors`: a model file alone.
    let word = strings(ContextKind::InvalidArg).or_else(|| strings(ContextKind::InvalidSubcommand));
    if let Some(model) = word.iter().flatten().find(|w| w.ends_with(".safetensors")) {
        return match sub {
            Some(sub @ ("eval" | "serve")) => model_word(model, sub),
            _ => format!(
                "a model file goes after --model: simplenn eval --model {model} (or predict or serve, in eval's place)"
            ),
        };
    }
    // `train --hidden 1024, 1024`: a word where a flag goes; after eval or
    // serve (`serve m.st`), whose one file is a model, that model's name.
    if let (ErrorKind::UnknownArgument, Some(w)) = (e.kind(), word.iter().flatten().next()) {
        if !w.starts_with('-') {
            return match sub {
                Some(sub @ ("eval" | "serve")) => model_word(w, sub),
                Some("plot") => {
                    "plot draws one log at a time: simplenn plot LOG [-o curve.svg]".into()
                }
                Some("augment") => {
                    "augment takes no loose words, only flags: simplenn augment [--data DIR] [-o augment.png]; see --help".into()
                }
                _ => STRAY_WORD_FIX.to_string(),
            };
        }
    }
    match e.kind() {
        ErrorKind::UnknownArgument | ErrorKind::InvalidSubcommand => {
            "see --help for the flags".into()
        }
        _ => "see --help".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line `simplenn WORDS…` is told (clap must refuse it).
    fn told(words: &[&str]) -> String {
        let args: Vec<OsString> = std::iter::once("simplenn")
            .chain(words.iter().copied())
            .map(OsString::from)
            .collect();
        told_os(&args)
    }

    fn told_os(args: &[OsString]) -> String {
        match <cli::Cli as clap::Parser>::try_parse_from(args) {
            Ok(_) => panic!("clap took {args:?}"),
            Err(e) => line(&e, args),
        }
    }

    #[test]
    fn a_loose_word_among_the_training_flags_is_named_with_the_fix() {
        assert_eq!(
            told(&["--hidden", "1024,", "1024"]),
            format!("unexpected word '1024' among the training flags; {STRAY_WORD_FIX}")
        );
    }

    #[test]
    fn a_file_that_starts_with_a_dash_is_named_with_how_to_pass_it() {
        assert_eq!(
            told(&["plot", "-dx.jsonl"]),
            "unexpected argument '-d' found; if -dx.jsonl is a file, write it ./-dx.jsonl, or after -- (simplenn plot [FLAGS] -- -dx.jsonl)"
        );
        assert_eq!(
            told(&["predict", "--model", "m.safetensors", "-dash.png"]),
            "unexpected argument '-d' found; if -dash.png is a file, write it ./-dash.png, or after -- (simplenn predict [FLAGS] -- -dash.png)"
        );
        // Flags after `--` are files to clap, this subcommand's as any
        // other's: not "a flag of simplenn augment".
        for words in [
            &["plot", "--", "-dx.jsonl", "-o", "c.svg"][..],
            &["plot", "--", "-dx.jsonl", "--output", "c.svg"],
            &["augment", "--", "-o", "x.png"],
            &["eval", "--model", "m.safetensors", "--", "--json"],
        ] {
            let flag = words.iter().rev().find(|w| w.starts_with('-')).unwrap();
            assert_eq!(
                told(words),
                format!("unexpected argument '{flag}' found; every word after -- is read as a file, so '{flag}' is not taken as a flag there: put the flags before --"),
                "{words:?}"
            );
        }
        // Before `--`, a flag of another subcommand is still named as that
        // one's, and loose words after it keep their own hints.
        assert!(told(&["plot", "--json"]).contains("--json is a flag of"));
        assert!(told(&["plot", "--json", "--", "--json"]).contains("--json is a flag of"));
        assert!(
            told(&["plot", "--", "a.jsonl", "b.jsonl"]).contains("plot draws one log at a time")
        );
        assert!(
            told(&["eval", "--model", "m.safetensors", "--", "x.safetensors"])
                .contains("simplenn eval reads the one model after --model")
        );
    }

    #[test]
    fn a_model_file_without_its_flag_is_shown_where_it_goes() {
        assert_eq!(
            told(&["eval", "m.safetensors"]),
            "unexpected argument 'm.safetensors' found; a model file goes after --model: simplenn eval --model m.safetensors"
        );
        assert_eq!(
            told(&["eval", "--model", "a.safetensors", "b.safetensors"]),
            "unexpected argument 'b.safetensors' found; simplenn eval reads the one model after --model: remove b.safetensors, or give it in --model's place"
        );
    }

    #[test]
    fn rusts_parse_errors_are_said_in_peoples_words() {
        assert_eq!(
            told(&["--seed", "-5"]),
            "invalid value '-5' for '--seed <N>': a number below 0, which this flag does not take; see --help"
        );
        assert_eq!(
            told(&["--epochs", "abc"]),
            "invalid value 'abc' for '--epochs <N>': not a whole number; see --help"
        );
        // A range's refusal of a value with a dash ends with its fix, as
        // the same refusal of one without does.
        assert_eq!(
            told(&["--lr", "-1e-5"]),
            "--lr -0.00001: must be a number in (0, 100], e.g. 0.1"
        );
        // Spaces from a script's quoting: named, not "not a number".
        assert_eq!(
            told(&["--lr", " 0.1"]),
            "invalid value ' 0.1' for '--lr <LR>': spaces around a number; write it as '0.1'; see --help"
        );
        assert_eq!(
            told(&["--epochs", "5 "]),
            "invalid value '5 ' for '--epochs <N>': spaces around a number; write it as '5'; see --help"
        );
        // Not a number once trimmed either: said as such.
        assert_eq!(
            told(&["--lr", " x1"]),
            "invalid value ' x1' for '--lr <LR>': not a number; see --help"
        );
    }

    #[test]
    fn the_fix_names_what_was_meant() {
        assert_eq!(
            told(&["--port", "80"]),
            "unexpected argument '--port' found; --port is a flag of simplenn serve, not of training; give training's page its port as --serve PORT (--serve 9000)"
        );
        // Elsewhere, no --serve to offer.
        assert_eq!(
            told(&["eval", "--model", "m", "--port", "80"]),
            "unexpected argument '--port' found; --port is a flag of simplenn serve, not of simplenn eval"
        );
        assert_eq!(
            told(&["--save", "-m.x"]),
            "unexpected argument '-m' found; if -m.x is the value of --save, write --save=-m.x"
        );
        assert_eq!(
            told(&["--optimizer", "sgdd"]),
            "invalid value 'sgdd' for '--optimizer <OPTIMIZER>'; use one of sgd, nesterov, adam, adamw"
        );
        // Not clap's "help or eval".
        assert_eq!(
            told(&["evl", "--model", "m"]),
            "unrecognized subcommand 'evl'; did you mean eval? (see --help)"
        );
        assert_eq!(
            told(&["EVAL", "--model", "m"]),
            "unrecognized subcommand 'EVAL'; did you mean eval? (see --help)"
        );
        // Not "did you mean predict?" for predict itself.
        assert_eq!(
            told(&["help", "eval", "predict"]),
            "unrecognized subcommand 'predict'; help takes one subcommand's name: simplenn help predict, or simplenn predict --help"
        );
    }

    #[test]
    fn a_word_with_control_characters_stays_on_one_harmless_line() {
        let line = told(&["--epochs", "\u{1b}[2J\nrm"]);
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(line.starts_with("invalid value '\\u{1b}[2J"), "{line:?}");
    }

    #[cfg(unix)]
    #[test]
    fn an_argument_that_is_not_utf8_is_named_with_its_flag() {
        use std::os::unix::ffi::OsStringExt;
        let args = [
            OsString::from("simplenn"),
            OsString::from("--lr"),
            OsString::from_vec(b"1\xff".to_vec()),
        ];
        assert_eq!(
            told_os(&args),
            "the value of --lr ($'1\\xff') is not UTF-8 text; type it as plain text (see --help)"
        );
        // `NAME=VALUE` is a flag's value only where NAME is a long flag
        // written in text: otherwise the argument is the previous flag's
        // value, whole, or, with no flag before it, itself.
        let named = |words: &[&[u8]]| {
            not_utf8(words.iter().map(|w| OsString::from_vec(w.to_vec()))).unwrap()
        };
        assert_eq!(named(&[b"--lr=1\xff"]), "the value of --lr ($'1\\xff')");
        assert_eq!(
            named(&[b"--hidden", b"a=\xff"]),
            "the value of --hidden ($'a=\\xff')"
        );
        assert_eq!(
            named(&[b"--hidden", b"--\xff=1"]),
            "the value of --hidden ($'--\\xff=1')"
        );
        assert_eq!(named(&[b"a=\xff"]), "the argument $'a=\\xff'");
        // After a word that is no flag (a subcommand, a path) or a flag
        // given its value with `=`, an argument is itself.
        assert_eq!(named(&[b"eval", b"\xff"]), "the argument $'\\xff'");
        assert_eq!(named(&[b"--lr=1", b"\xff"]), "the argument $'\\xff'");
        assert_eq!(named(&[b"-", b"\xff"]), "the argument $'\\xff'");
    }
}
