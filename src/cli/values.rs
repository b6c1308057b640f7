//! The parsers of flag values that clap's own do not cover: hidden widths,
//! hosts, norms, paths, floats that `f32` must hold exactly, `--augment`.

use std::path::PathBuf;

use crate::augment::Augment;
use crate::error::UsageError;

/// `--hidden`: the hidden widths, input side first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hidden(pub Vec<usize>);

/// Parse `--hidden` (see [`crate::model::parse_hidden`]) for clap.
pub fn parse_hidden(s: &str) -> Result<Hidden, String> {
    crate::model::parse_hidden(s).map(Hidden)
}

/// Parse `serve --host`, refusing a value that cannot name an address
/// before anything is looked up: empty (the resolver's "Name or service
/// not known" would name no flag and exit as a run-time failure), or with
/// spaces or control characters, which no host name or address has.
pub fn parse_host(s: &str) -> Result<String, String> {
    const FIX: &str = "give a name or address of this machine, e.g. 127.0.0.1 (this machine only) or 0.0.0.0 (every network interface)";
    if s.trim().is_empty() {
        return Err(format!("no address; {FIX}"));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "an address has no spaces or control characters; {FIX}"
        ));
    }
    // A URL or `host:port`, as a browser's address bar shows them: the
    // port would be taken for part of the name.
    if let Some((scheme, _)) = s.split_once("://") {
        return Err(format!(
            "a host, not a URL: leave out {scheme}:// (and give a port with --port)"
        ));
    }
    let port = match s.strip_prefix('[') {
        Some(v6) => v6.split_once("]:").map(|(_, p)| p),
        // One colon: an IPv6 address has at least two.
        None => s
            .split_once(':')
            .filter(|(_, p)| !p.contains(':'))
            .map(|(_, p)| p),
    };
    if let Some(port) = port.filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
        let host = &s[..s.len() - port.len() - 1];
        // `[::1]` unquoted is a shell pattern: the address alone.
        let host = host.trim_start_matches('[').trim_end_matches(']');
        return Err(format!(
            "a host without its port: give --host {host} --port {port}"
        ));
    }
    // Four numbers are an IPv4 address, whatever they are (the system's
    // lookup would refuse `999.1.1.1` only at start-up, naming no flag).
    let numbers: Vec<&str> = s.split('.').collect();
    let number = |n: &&str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
    if numbers.len() == 4 && numbers.iter().all(number) && s.parse::<std::net::Ipv4Addr>().is_err()
    {
        return Err(format!(
            "not an IPv4 address: each of its four numbers is 0 to 255, without leading zeros; {FIX}"
        ));
    }
    Ok(s.to_string())
}

/// `--max-norm`'s value: a norm, or `none` (no constraint), which a
/// preset's norm needs to be turned off.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MaxNorm(pub Option<f32>);

/// Parse `--max-norm`: `none`, or a float as [`parse_f32`] reads it.
pub fn parse_max_norm(s: &str) -> Result<MaxNorm, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(MaxNorm(None));
    }
    parse_holds_one(s)
        .map(|c| MaxNorm(Some(c)))
        // Text that is no number at all (not one f32 cannot hold).
        .map_err(|e| match s.parse::<f64>() {
            Err(_) => "not a number or none".into(),
            Ok(_) => e,
        })
}

/// The parser of every path argument: any bytes (a path need not be
/// UTF-8), but neither empty (clap's own "a value is required ... but none
/// was supplied" said a given `''` was missing) nor only spaces (an unset
/// shell variable between quotes, most likely; `./ ` names a file of one
/// space), which used to save a model to a file named ` `.
pub fn path_parser() -> impl clap::builder::TypedValueParser<Value = PathBuf> {
    use clap::builder::TypedValueParser;
    clap::builder::OsStringValueParser::new().try_map(|v| {
        let bytes = v.as_encoded_bytes();
        if bytes.is_empty() {
            return Err("empty, where a path goes");
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(
                "only spaces, where a path goes (for a file of that name, write ./ before it)",
            );
        }
        Ok(PathBuf::from(v))
    })
}

/// Parse a float flag for clap as `f32`, refusing a value that 32-bit
/// floats cannot hold and that would otherwise be judged, and shown, as
/// what it rounds to (`--eps 1e-300` as `--eps 0`, `--beta2 0.99999999999`
/// as `--beta2 1`). Unparseable text keeps Rust's own message, which
/// `main` words for people. For the flags whose range leaves 1 out (the
/// fractions below 1: `--momentum`, `--beta1`, `--beta2`, `--dropout`,
/// `--input-dropout`).
pub fn parse_f32(s: &str) -> Result<f32, String> {
    parse_f32_where(s, false)
}

/// [`parse_f32`] for a flag whose range holds 1 (`--lr`, `--eps`,
/// `--max-norm`, `--elastic-sigma`, `--elastic-alpha`, `--weight-decay`):
/// one that rounds to 1 is 1, which the flag takes, not an error.
pub fn parse_holds_one(s: &str) -> Result<f32, String> {
    parse_f32_where(s, true)
}

/// [`parse_f32`], where a value that rounds to ±1 is refused only where
/// the flag's range leaves 1 out (`one_ok`): rounding a digit past 32 bits'
/// precision is no change of value. A value that rounds to 0 is refused
/// always, 0 or not in the flag's range: `1e-50` is not a way to write 0
/// (`--dropout 1e-50` was silently no dropout), and 0 is written as 0.
fn parse_f32_where(s: &str, one_ok: bool) -> Result<f32, String> {
    let y: f32 = s
        .parse()
        .map_err(|e: std::num::ParseFloatError| e.to_string())?;
    let x: f64 = s
        .parse()
        .map_err(|e: std::num::ParseFloatError| e.to_string())?;
    // `1e-400` is 0 even as an f64: its digits say it was meant otherwise.
    let nonzero = s
        .split(['e', 'E'])
        .next()
        .is_some_and(|m| m.chars().any(|c| ('1'..='9').contains(&c)));
    // `1e400` and 400 digits are infinite even as f64: only `inf` itself
    // is meant to be.
    let spelled_inf = s.to_ascii_lowercase().contains("inf");
    if !y.is_finite() && !y.is_nan() && !spelled_inf {
        // `-1e39` is not "too large": it is too far the other way.
        match y < 0.0 {
            true => Err("too far below 0 for a 32-bit float (the lowest is about -3.4e38)".into()),
            false => Err("too large for a 32-bit float (the largest is about 3.4e38)".into()),
        }
    } else if (x != 0.0 || nonzero) && y == 0.0 {
        Err(
            "too small for a 32-bit float: it would be 0 (the smallest above 0 is about 1.4e-45)"
                .into(),
        )
    } else if x != f64::from(y) && y.abs() == 1.0 && !one_ok {
        Err(format!(
            "it rounds to {y} in 32-bit floating point; give a value further from {y}"
        ))
    } else {
        // `-0` is 0: judged the same, and shown as `0`, not `-0`.
        Ok(y + 0.0)
    }
}

/// `--augment KIND` with the elastic flags given (`None`: not given, so
/// `defaults`), which are refused with any kind but elastic.
pub fn parse_augment(
    kind: &str,
    sigma: Option<f32>,
    alpha: Option<f32>,
    (ds, da): (f32, f32),
) -> Result<Augment, UsageError> {
    // In any case, as every word-valued flag takes its words (`SHIFT:2`);
    // an error still quotes the value as given.
    let (sigma_or, alpha_or) = (sigma.unwrap_or(ds), alpha.unwrap_or(da));
    let aug = Augment::parse(kind, sigma_or, alpha_or).or_else(|e| {
        Augment::parse(&kind.to_ascii_lowercase(), sigma_or, alpha_or).map_err(|_| e)
    })?;
    if !matches!(aug, Augment::Elastic { .. }) && (sigma.is_some() || alpha.is_some()) {
        let flag = if sigma.is_some() {
            "--elastic-sigma"
        } else {
            "--elastic-alpha"
        };
        return Err(UsageError(format!(
            "{flag}: applies to --augment elastic only (this run: --augment {kind}); drop it, or run with --augment elastic instead of --augment {kind}"
        )));
    }
    Ok(aug)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hosts_with_a_port_are_told_apart_from_ipv6_addresses() {
        for ok in [
            "::1",
            "fe80::1",
            "[::1]",
            "127.0.0.1",
            "localhost",
            "::ffff:1.2.3.4",
            "0.0.0.0",
            "255.255.255.255",
            "1.2.3.4.example",
        ] {
            assert_eq!(super::parse_host(ok), Ok(ok.to_string()));
        }
        for (bad, says) in [
            ("localhost:9000", "--host localhost --port 9000"),
            ("[::1]:80", "--host ::1 --port 80"),
            ("https://example.org", "leave out https://"),
            (
                "999.1.1.1",
                "not an IPv4 address: each of its four numbers is 0 to 255",
            ),
            ("10.0.0.256", "not an IPv4 address"),
            ("010.0.0.1", "without leading zeros"),
        ] {
            let e = super::parse_host(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
