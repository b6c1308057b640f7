//! What a refused command line was most likely meant to be: a value that
//! starts with '-', a flag given to the wrong subcommand, a flag's prefix.

use clap::Parser;

use super::flags::{Cli, Command};

/// The fix for a value that starts with '-' (`--save -m.x`, `--hidden -3`),
/// which clap reads as a flag and reports as the unknown argument `bad`:
/// when the word before it in `args` is a long flag that takes a value, say
/// how to pass it (`Ok`), or, where the flag refuses that value anyway
/// (`--epochs -inf`), its refusal (`Err`), which is then what to say.
/// `None` when `bad` was not such a value.
pub fn dash_value_fix(args: &[String], bad: &str) -> Option<Result<String, DashRefusal>> {
    use clap::CommandFactory;
    let cli = Cli::command();
    let takes_value = |flag: &str| {
        let name = flag.strip_prefix("--")?;
        std::iter::once(&cli)
            .chain(cli.get_subcommands())
            .flat_map(|c| c.get_arguments())
            .find(|a| a.get_long() == Some(name))
            .map(|a| a.get_action().takes_values())
    };
    // Whether the flag would take the value written `FLAG=VALUE`: not
    // where clap then refuses the value itself (`--serve --host`: a port is
    // a number), so that the fix offered is one that works.
    // The flag's own refusal of the value so joined, if any (`--epochs
    // -inf`: not a whole number), which then is what to say: a fix that
    // fails again would be no fix.
    let refusal = |i: usize| {
        let mut joined = args.to_vec();
        let value = joined.remove(i + 1);
        joined[i] = format!("{}={value}", joined[i]);
        // The refusal of this flag's value, not of another flag's.
        let flag = args[i].as_str();
        // (A conflict with several flags lists them all.)
        let names_flag = |e: &clap::Error, kind| {
            let is_flag = |a: &String| a.split([' ', '=']).next() == Some(flag);
            match e.get(kind) {
                Some(clap::error::ContextValue::String(a)) => is_flag(a),
                Some(clap::error::ContextValue::Strings(all)) => all.iter().any(is_flag),
                _ => false,
            }
        };
        use clap::error::{ContextKind, ErrorKind};
        match Cli::try_parse_from(&joined) {
            Err(e) => Some(e)
                .filter(|e| match e.kind() {
                    ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
                        names_flag(e, ContextKind::InvalidArg)
                    }
                    // The flag given twice (`--epochs 1 … --epochs -inf`),
                    // or beside one it excludes, on either side: joining
                    // leaves that, the real fault, to say.
                    ErrorKind::ArgumentConflict => {
                        names_flag(e, ContextKind::InvalidArg)
                            || names_flag(e, ContextKind::PriorArg)
                    }
                    _ => false,
                })
                .map(DashRefusal::Parse),
            // Parsed, but a training flag's range may refuse it still
            // (`--lr=-1e-5`): that refusal is the one to show.
            Ok(cli) => match cli.into_command() {
                Command::Train(train) => train
                    .into_plan(None)
                    .err()
                    .filter(|e| e.0.starts_with(&format!("{flag} ")))
                    .map(|e| DashRefusal::Range(e.0)),
                _ => None,
            },
        }
    };
    args.windows(2).enumerate().find_map(|(i, w)| {
        let (flag, value) = (&w[0], &w[1]);
        if !(bad.starts_with('-') && value.starts_with(bad) && takes_value(flag) == Some(true)) {
            return None;
        }
        match refusal(i) {
            None => Some(Ok(format!(
                "if {value} is the value of {flag}, write {flag}={value}"
            ))),
            // A flag where a value goes (`--serve --host`): its own story.
            Some(_) if value.starts_with("--") => None,
            Some(e) => Some(Err(e)),
        }
    })
}

/// Why a value that starts with '-' is refused however it is written:
/// clap's refusal of it, or a training flag's range.
#[derive(Debug)]
pub enum DashRefusal {
    Parse(clap::Error),
    Range(String),
}

/// The subcommands other than `current` (`train` for the flags before no
/// subcommand) that have the long flag `bad` (`--host`, `--host=::1`):
/// where that flag was meant for, when it was given to the wrong one.
pub fn commands_with_flag(bad: &str, current: &str) -> Vec<String> {
    use clap::CommandFactory;
    let bad = bad.split('=').next().unwrap_or(bad);
    // `--host` or `-o` (a short flag alone: `-xyz` is no one's).
    let long = bad.strip_prefix("--");
    let short = match bad.strip_prefix('-').map(|s| s.chars().collect::<Vec<_>>()) {
        Some(c) if long.is_none() && c.len() == 1 => Some(c[0]),
        _ => None,
    };
    if long.is_none() && short.is_none() {
        return Vec::new();
    }
    let has = |a: &clap::Arg| {
        long.is_some_and(|l| a.get_long() == Some(l)) || (short.is_some() && a.get_short() == short)
    };
    Cli::command()
        .get_subcommands()
        .filter(|c| c.get_name() != current && c.get_name() != "help")
        .filter(|c| c.get_arguments().any(has))
        .map(|c| c.get_name().to_string())
        .collect()
}

/// The long flags of subcommand `current` (`train` for training) that
/// begin with `bad`'s name (`--ep`: `--epochs`, `--eps`), in the order
/// `--help` lists them; none for a short flag or an empty name.
pub fn flags_starting_with(bad: &str, current: &str) -> Vec<String> {
    use clap::CommandFactory;
    let bad = bad.split('=').next().unwrap_or(bad);
    let Some(name) = bad.strip_prefix("--").filter(|n| !n.is_empty()) else {
        return Vec::new();
    };
    let command = Cli::command();
    let Some(sub) = command.get_subcommands().find(|c| c.get_name() == current) else {
        return Vec::new();
    };
    sub.get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter_map(|a| a.get_long())
        .filter(|l| l.starts_with(name) && *l != name)
        .map(|l| format!("--{l}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flag given to the wrong subcommand is looked up by its whole
    /// name: `-o` is plot's and augment's, `-oj` (a cluster) and `o` are
    /// no one's, and `--port=80` is serve's.
    #[test]
    fn a_flag_is_placed_by_its_whole_name() {
        let mut o = commands_with_flag("-o", "train");
        o.sort();
        assert_eq!(o, ["augment", "plot"]);
        assert!(commands_with_flag("-oj", "train").is_empty());
        assert!(commands_with_flag("o", "train").is_empty());
        assert_eq!(commands_with_flag("--port=80", "train"), ["serve"]);
        assert!(commands_with_flag("--port", "serve").is_empty());
        assert!(commands_with_flag("--po", "train").is_empty());
    }
}
