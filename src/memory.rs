//! How much memory this process can still have: what a run, a model load,
//! a batch of predictions and `augment`'s picture check their size against
//! before allocating.

use std::path::{Path, PathBuf};

/// Memory the system can still give this process (Linux: `MemAvailable`),
/// or less where `ulimit -v` leaves less address space than that, or where
/// the memory limit of a cgroup it is in (a container's `--memory`, a
/// systemd unit's `MemoryMax`) leaves less: past that limit the kernel
/// kills the process rather than fail an allocation, so the limit has to
/// be seen before allocating.
pub fn available_memory() -> Option<u64> {
    least().map(|(bytes, _)| bytes)
}

/// " (all that ulimit -v leaves)", or the cgroup's, where that limit, not
/// the machine, is what makes [`available_memory`] what it is, so that a
/// refusal names what is short.
pub fn memory_limit_note() -> &'static str {
    match least() {
        Some((_, Bound::AddressSpace)) => " (all that ulimit -v leaves)",
        Some((_, Bound::Cgroup)) => " (all that the memory limit of this process's cgroup leaves)",
        _ => "",
    }
}

/// ", or raise the limit" where a limit, not the machine, is what makes
/// [`available_memory`] what it is (as [`memory_limit_note`] says), else
/// "": the last of a refusal's ways out, since every other one it names
/// asks for a smaller job.
pub fn limit_fix() -> &'static str {
    match least() {
        Some((_, Bound::AddressSpace | Bound::Cgroup)) => ", or raise the limit",
        _ => "",
    }
}

/// ", or free memory", or [`limit_fix`]'s words where a limit is what
/// leaves too little (freeing memory would not raise it).
pub fn free_or_raise() -> &'static str {
    match limit_fix() {
        "" => ", or free memory",
        raise => raise,
    }
}

/// What set [`available_memory`]'s figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bound {
    Machine,
    AddressSpace,
    Cgroup,
}

/// The least of what the machine, `ulimit -v` and the cgroups leave, and
/// which of them that is; `None` where the machine does not say (no
/// `/proc/meminfo`).
fn least() -> Option<(u64, Bound)> {
    let mut least = (mem_available()?, Bound::Machine);
    let limits = [
        (address_space_left(), Bound::AddressSpace),
        (cgroup_left(Path::new("/")), Bound::Cgroup),
    ];
    for (left, bound) in limits {
        if let Some(left) = left.filter(|&left| left < least.0) {
            least = (left, bound);
        }
    }
    Some(least)
}

/// The machine's `MemAvailable` (`/proc/meminfo`), in bytes.
fn mem_available() -> Option<u64> {
    mem_available_in(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

/// [`mem_available`] from the text of `/proc/meminfo`, whose "kB" are KiB.
fn mem_available_in(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    line.split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()?
        .checked_mul(1024)
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

/// The least memory that any cgroup this process is in leaves it, below
/// the file system root `root` (`/`; a directory laid out like it in
/// tests), for cgroup v2 and v1's memory controller alike: at each level
/// from the process's own cgroup up to the top of the mounted hierarchy
/// (a limit on any ancestor binds too), the limit less what the group
/// uses, not counting its inactive page cache, which the kernel reclaims
/// before it kills (the mapped IDX files' pages are such cache).
/// `None` where no level sets a limit or the files cannot be read.
fn cgroup_left(root: &Path) -> Option<u64> {
    let read = |path: &str| std::fs::read_to_string(root.join(path)).ok();
    let (cgroups, mounts) = (read("proc/self/cgroup")?, read("proc/self/mountinfo")?);
    let mut least: Option<u64> = None;
    // "hierarchy-id:controllers:path"; v2's line has no controllers.
    for line in cgroups.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let v2 = controllers.is_empty();
        if !v2 && !controllers.split(',').any(|c| c == "memory") {
            continue;
        }
        let Some((mount_root, mount_point)) = cgroup_mount(&mounts, v2) else {
            continue;
        };
        let top = root.join(mount_point.trim_start_matches('/'));
        let mut dir = top.join(group_below(path, mount_root));
        loop {
            if let Some(left) = level_left(&dir, v2) {
                least = Some(least.map_or(left, |l| l.min(left)));
            }
            if dir == top || !dir.pop() {
                break;
            }
            // v1 only: a parent with `use_hierarchy` 0 (kernels before 5.11
            // allowed it) charges nothing of its children to itself, so
            // neither its limit nor any above it binds them.
            if !v2 && read_trimmed(&dir.join("memory.use_hierarchy")).as_deref() == Some("0") {
                break;
            }
        }
    }
    least
}

/// The root inside the hierarchy and the mount point of the cgroup file
/// system holding v2 (`cgroup2`) or v1's memory controller, from
/// `/proc/self/mountinfo`.
fn cgroup_mount(mounts: &str, v2: bool) -> Option<(&str, &str)> {
    mounts.lines().find_map(|line| {
        // "id parent dev root mount-point options [optional...] - type source super-options"
        let (head, tail) = line.split_once(" - ")?;
        let head: Vec<&str> = head.split(' ').collect();
        let mut tail = tail.split(' ');
        let (kind, _, options) = (tail.next()?, tail.next()?, tail.next().unwrap_or(""));
        let ours = if v2 {
            kind == "cgroup2"
        } else {
            kind == "cgroup" && options.split(',').any(|o| o == "memory")
        };
        (ours && head.len() >= 5).then(|| (head[3], head[4]))
    })
}

/// The process's cgroup `path` relative to the mounted part of the
/// hierarchy, whose root is `mount_root`: a container that mounts only its
/// own group (`mount_root` is that group) sees it at the mount point; a
/// path outside the mounted part (another namespace's) is taken as the
/// mount point too.
fn group_below(path: &str, mount_root: &str) -> PathBuf {
    let rel = match path.strip_prefix(mount_root.trim_end_matches('/')) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => "",
    };
    let rel = rel.trim_start_matches('/');
    if rel.split('/').any(|part| part == "..") {
        return PathBuf::new();
    }
    PathBuf::from(rel)
}

/// A file's text without the whitespace around it; `None` where it cannot be read.
fn read_trimmed(path: &Path) -> Option<String> {
    Some(std::fs::read_to_string(path).ok()?.trim().to_string())
}

/// What the cgroup at `dir` leaves: its limit less its use without
/// inactive page cache; `None` where it sets no limit (v2's `max`) or its
/// files are missing or unreadable. On v2 the limit is the lower of
/// `memory.max`, past which the kernel kills, and `memory.high`, past
/// which it throttles the group and reclaims its pages over and over (a
/// run there crawls instead of dying: systemd's `MemoryHigh`).
fn level_left(dir: &Path, v2: bool) -> Option<u64> {
    let number = |name: &str| -> Option<u64> { read_trimmed(&dir.join(name))?.parse().ok() };
    let (limit, usage, inactive) = if v2 {
        let limit = number("memory.max")
            .into_iter()
            .chain(number("memory.high"))
            .min();
        (limit, "memory.current", "inactive_file")
    } else {
        (
            number("memory.limit_in_bytes"),
            "memory.usage_in_bytes",
            "total_inactive_file",
        )
    };
    let limit = limit?;
    let usage = number(usage)?;
    let stat = std::fs::read_to_string(dir.join("memory.stat")).unwrap_or_default();
    let cache = stat
        .lines()
        .find_map(|l| {
            l.strip_prefix(inactive)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0);
    Some(limit.saturating_sub(usage.saturating_sub(cache)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/proc/meminfo`'s "kB" are KiB; a line missing or unreadable is no
    /// figure, not 0.
    #[test]
    fn mem_available_reads_kib() {
        let meminfo = "MemTotal:       24000000 kB\nMemFree:  1 kB\nMemAvailable:    1000 kB\n";
        assert_eq!(mem_available_in(meminfo), Some(1_024_000));
        assert_eq!(mem_available_in("MemTotal: 5 kB\n"), None);
        assert_eq!(mem_available_in("MemAvailable: lots kB\n"), None);
        assert!(mem_available().is_some_and(|b| b > 0), "this machine's");
    }

    /// A directory laid out like `/` for [`cgroup_left`]: each
    /// `(path, text)` written below it.
    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = t.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        t
    }

    const V2_MOUNT: &str =
        "20 18 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
    const MB: u64 = 1 << 20;

    #[test]
    fn a_v2_limit_on_an_ancestor_binds_less_its_inactive_cache() {
        let t = tree(&[
            ("proc/self/cgroup", "0::/user.slice/app.service\n"),
            ("proc/self/mountinfo", V2_MOUNT),
            // The top of the hierarchy has no limit files at all.
            ("sys/fs/cgroup/cgroup.procs", ""),
            ("sys/fs/cgroup/user.slice/memory.max", "1048576000\n"),
            ("sys/fs/cgroup/user.slice/memory.current", "629145600\n"),
            (
                "sys/fs/cgroup/user.slice/memory.stat",
                "anon 400\nfile 300\nactive_file 7\ninactive_file 104857600\n",
            ),
            ("sys/fs/cgroup/user.slice/app.service/memory.max", "max\n"),
            (
                "sys/fs/cgroup/user.slice/app.service/memory.current",
                "1000\n",
            ),
        ]);
        // 1000 MiB less (600 − 100) MiB used.
        assert_eq!(cgroup_left(t.path()), Some(500 * MB));
    }

    #[test]
    fn the_tightest_level_binds() {
        let t = tree(&[
            ("proc/self/cgroup", "0::/a/b\n"),
            ("proc/self/mountinfo", V2_MOUNT),
            ("sys/fs/cgroup/a/memory.max", &(900 * MB).to_string()),
            ("sys/fs/cgroup/a/memory.current", &(100 * MB).to_string()),
            ("sys/fs/cgroup/a/b/memory.max", &(300 * MB).to_string()),
            ("sys/fs/cgroup/a/b/memory.current", &(50 * MB).to_string()),
        ]);
        assert_eq!(cgroup_left(t.path()), Some(250 * MB));
        // Over its limit (the cache it counts may be all of it): nothing left.
        std::fs::write(
            t.path().join("sys/fs/cgroup/a/memory.current"),
            (950 * MB).to_string(),
        )
        .unwrap();
        assert_eq!(cgroup_left(t.path()), Some(0));
    }

    #[test]
    fn no_limit_or_unreadable_files_say_nothing() {
        let t = tree(&[
            ("proc/self/cgroup", "0::/a\n"),
            ("proc/self/mountinfo", V2_MOUNT),
            ("sys/fs/cgroup/a/memory.max", "max\n"),
            ("sys/fs/cgroup/a/memory.current", "5\n"),
        ]);
        assert_eq!(cgroup_left(t.path()), None);
        std::fs::write(t.path().join("sys/fs/cgroup/a/memory.max"), "lots\n").unwrap();
        assert_eq!(cgroup_left(t.path()), None);
        // A limit with no usage beside it is not guessed at.
        std::fs::write(t.path().join("sys/fs/cgroup/a/memory.max"), "100\n").unwrap();
        std::fs::remove_file(t.path().join("sys/fs/cgroup/a/memory.current")).unwrap();
        assert_eq!(cgroup_left(t.path()), None);
        // No cgroup files at all (not Linux, no /proc).
        assert_eq!(cgroup_left(tree(&[]).path()), None);
    }

    /// v1 as this hybrid layout has it: one mount per controller, the
    /// memory controller's limit in `memory.limit_in_bytes`, the cache in
    /// the hierarchical `total_inactive_file`; another controller's
    /// hierarchy is passed over, and so is v2's, which holds no memory
    /// controller here.
    #[test]
    fn a_v1_memory_controllers_limit_binds() {
        let mounts = "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
            35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
            41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        let t = tree(&[
            (
                "proc/self/cgroup",
                "9:cpu,cpuacct:/x\n4:memory:/jobs/one\n0::/\n",
            ),
            ("proc/self/mountinfo", mounts),
            ("sys/fs/cgroup/cpu/x/memory.limit_in_bytes", "1\n"),
            ("sys/fs/cgroup/cpu/x/memory.usage_in_bytes", "0\n"),
            (
                "sys/fs/cgroup/memory/memory.limit_in_bytes",
                "9223372036854771712\n",
            ),
            (
                "sys/fs/cgroup/memory/memory.usage_in_bytes",
                &(7000 * MB).to_string(),
            ),
            (
                "sys/fs/cgroup/memory/jobs/memory.limit_in_bytes",
                "9223372036854771712\n",
            ),
            (
                "sys/fs/cgroup/memory/jobs/memory.usage_in_bytes",
                &(200 * MB).to_string(),
            ),
            (
                "sys/fs/cgroup/memory/jobs/one/memory.limit_in_bytes",
                &(400 * MB).to_string(),
            ),
            (
                "sys/fs/cgroup/memory/jobs/one/memory.usage_in_bytes",
                &(150 * MB).to_string(),
            ),
            (
                "sys/fs/cgroup/memory/jobs/one/memory.stat",
                &format!(
                    "cache 9\ninactive_file 1\ntotal_inactive_file {}\n",
                    30 * MB
                ),
            ),
            // v2's hierarchy, without the memory controller here.
            ("sys/fs/cgroup/unified/cgroup.procs", ""),
        ]);
        assert_eq!(cgroup_left(t.path()), Some(280 * MB));
    }

    /// A container that mounts only its own group: the path the process
    /// is in is the mount's root, so the mount point is its group; a path
    /// outside the mounted part is taken as the mount point too.
    #[test]
    fn a_containers_own_group_is_its_mount_point() {
        let t = tree(&[
            ("proc/self/cgroup", "0::/docker/abc\n"),
            (
                "proc/self/mountinfo",
                "700 650 0:26 /docker/abc /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw\n",
            ),
            ("sys/fs/cgroup/memory.max", &(512 * MB).to_string()),
            ("sys/fs/cgroup/memory.current", &(12 * MB).to_string()),
        ]);
        assert_eq!(cgroup_left(t.path()), Some(500 * MB));
        std::fs::write(t.path().join("proc/self/cgroup"), "0::/../other\n").unwrap();
        assert_eq!(cgroup_left(t.path()), Some(500 * MB));
        assert_eq!(group_below("/docker/abcd", "/docker/abc"), PathBuf::new());
        assert_eq!(
            group_below("/docker/abc/x/y", "/docker/abc/"),
            PathBuf::from("x/y")
        );
        assert_eq!(group_below("/a/b", "/"), PathBuf::from("a/b"));
    }

    /// v2's `memory.high` binds as `memory.max` does, the lower of the two.
    #[test]
    fn a_v2_memory_high_binds_too() {
        let t = tree(&[
            ("proc/self/cgroup", "0::/a\n"),
            ("proc/self/mountinfo", V2_MOUNT),
            ("sys/fs/cgroup/a/memory.max", "max\n"),
            ("sys/fs/cgroup/a/memory.high", &(300 * MB).to_string()),
            ("sys/fs/cgroup/a/memory.current", &(100 * MB).to_string()),
        ]);
        assert_eq!(cgroup_left(t.path()), Some(200 * MB));
        std::fs::write(
            t.path().join("sys/fs/cgroup/a/memory.max"),
            (250 * MB).to_string(),
        )
        .unwrap();
        assert_eq!(cgroup_left(t.path()), Some(150 * MB));
        std::fs::write(
            t.path().join("sys/fs/cgroup/a/memory.high"),
            (200 * MB).to_string(),
        )
        .unwrap();
        assert_eq!(cgroup_left(t.path()), Some(100 * MB));
        std::fs::write(t.path().join("sys/fs/cgroup/a/memory.high"), "max\n").unwrap();
        assert_eq!(cgroup_left(t.path()), Some(150 * MB));
    }

    /// v1: a parent whose `use_hierarchy` is 0 charges nothing of its
    /// children to itself, so its limit, and any above it, do not bind
    /// them; with 1 (the only value since Linux 5.11) they do.
    #[test]
    fn a_v1_parent_without_hierarchy_does_not_bind() {
        let mounts = "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n";
        let t = tree(&[
            ("proc/self/cgroup", "4:memory:/jobs/one\n"),
            ("proc/self/mountinfo", mounts),
            (
                "sys/fs/cgroup/memory/memory.limit_in_bytes",
                &(50 * MB).to_string(),
            ),
            ("sys/fs/cgroup/memory/memory.usage_in_bytes", "0\n"),
            ("sys/fs/cgroup/memory/memory.use_hierarchy", "1\n"),
            (
                "sys/fs/cgroup/memory/jobs/memory.limit_in_bytes",
                &(100 * MB).to_string(),
            ),
            ("sys/fs/cgroup/memory/jobs/memory.usage_in_bytes", "0\n"),
            ("sys/fs/cgroup/memory/jobs/memory.use_hierarchy", "0\n"),
            (
                "sys/fs/cgroup/memory/jobs/one/memory.limit_in_bytes",
                &(400 * MB).to_string(),
            ),
            (
                "sys/fs/cgroup/memory/jobs/one/memory.usage_in_bytes",
                &(150 * MB).to_string(),
            ),
        ]);
        assert_eq!(cgroup_left(t.path()), Some(250 * MB));
        std::fs::write(
            t.path()
                .join("sys/fs/cgroup/memory/jobs/memory.use_hierarchy"),
            "1\n",
        )
        .unwrap();
        assert_eq!(cgroup_left(t.path()), Some(50 * MB));
    }
}
