//! How much memory this process can still have: what a run, a model load,
//! a batch of predictions and `augment`'s picture check their size against
//! before allocating.

/// Memory the system can still give this process (Linux: `MemAvailable`),
/// or less where `ulimit -v` leaves less address space than that.
pub fn available_memory() -> Option<u64> {
    let avail = mem_available()?;
    Some(address_space_left().map_or(avail, |left| left.min(avail)))
}

/// The machine's `MemAvailable` (`/proc/meminfo`), in bytes.
fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// " (all that ulimit -v leaves)" where the address space left under the
/// process's `ulimit -v` is what makes [`available_memory`] what it is, so
/// that a refusal says the limit, not the machine, is what is short.
pub fn memory_limit_note() -> &'static str {
    match (address_space_left(), mem_available()) {
        (Some(left), Some(avail)) if left < avail => " (all that ulimit -v leaves)",
        _ => "",
    }
}

/// The soft `RLIMIT_AS` (`ulimit -v`) less the address space already in use
/// (`VmSize`), when a limit is set.
fn address_space_left() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))?;
    // "Max address space   <soft>   <hard>   bytes"; "unlimited" fails to parse.
    let soft: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmSize:"))?;
    let used_kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(soft.saturating_sub(used_kb * 1024))
}
