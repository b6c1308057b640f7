//! Which CPU wrote the benches' results. criterion keeps each bench's last
//! result until that bench runs again, and a target directory may outlive
//! the machine (a copied checkout, a runner that changes hosts), so each
//! bench process appends one line, `SECONDS.NANOS CPU`, to `cpu-history.txt`
//! beside criterion's results, and `examples/perf_table.rs` names for every
//! result it reads the CPU whose line came last before it was written.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The history's file name, in the criterion directory.
pub const HISTORY: &str = "cpu-history.txt";

/// This machine's CPU as `/proc/cpuinfo` names it, with its family and
/// model numbers where it gives them (a virtual machine's model name is
/// often generic: "Intel(R) Xeon(R) Processor (family 6, model 167)"), else
/// the architecture.
pub fn cpu_name() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |key: &str| {
        info.lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let name = field("model name").unwrap_or_else(|| std::env::consts::ARCH.to_string());
    match (field("cpu family"), field("model")) {
        (Some(f), Some(m)) => format!("{name} (family {f}, model {m})"),
        _ => name,
    }
}

/// Append a line for this moment and this CPU to `dir`'s history. A
/// failure is said and leaves the results unattributed, nothing more.
pub fn stamp(dir: &Path) {
    // To the nanosecond, as file times are: a result written earlier in
    // the same second as a later stamp is still the earlier CPU's.
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let line = format!("{}.{:09} {}\n", t.as_secs(), t.subsec_nanos(), cpu_name());
    let written = std::fs::create_dir_all(dir).and_then(|_| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(HISTORY))?
            .write_all(line.as_bytes())
    });
    if let Err(e) = written {
        eprintln!(
            "cannot record the CPU in {}: {e}",
            dir.join(HISTORY).display()
        );
    }
}

/// The history's lines, `(time since the epoch, CPU)`, in the order
/// written (lines that do not parse are skipped; a line of whole seconds,
/// as earlier benches wrote, reads as that second's start).
pub fn history(dir: &Path) -> Vec<(Duration, String)> {
    let text = std::fs::read_to_string(dir.join(HISTORY)).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (when, cpu) = l.split_once(' ')?;
            let (secs, nanos) = when.split_once('.').unwrap_or((when, "0"));
            let nanos: u32 = nanos.parse().ok().filter(|n| *n < 1_000_000_000)?;
            Some((Duration::new(secs.parse().ok()?, nanos), cpu.to_string()))
        })
        .collect()
}

/// The CPU of a result written at `t`: the last line stamped at or before
/// it (its bench process started then), `None` before the first.
pub fn cpu_at(history: &[(Duration, String)], t: SystemTime) -> Option<&str> {
    let t = t.duration_since(UNIX_EPOCH).ok()?;
    history
        .iter()
        .rev()
        .find(|(s, _)| *s <= t)
        .map(|(_, cpu)| cpu.as_str())
}
