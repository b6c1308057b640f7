//! Print the README's performance tables, one per network (784-256-10 and
//! 784-1024-1024-10), from the medians of the last `cargo bench` run
//! (criterion's `target/criterion/*/new/*.json`).
//!
//! ```sh
//! cargo bench && cargo run --release --example perf_table
//! ```
//!
//! An optional argument names the criterion directory (default: the target
//! directory's `criterion`). One column per thread count found among the
//! results (`SIMPLENN_BENCH_THREADS` sets the benches' counts; 1 and 2 by
//! default).
//!
//! criterion keeps each bench's last result until that bench runs again, so
//! the files may come from different `cargo bench` runs, even from another
//! machine: the table ends with how long ago its oldest and newest results
//! were written and on which CPU each was (`benches/common/cpu.rs`), and
//! flags the gather line when it is older than the peak it is printed beside.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use simplenn::model::Dims;

/// The hidden widths of the networks the benches time, one table each:
/// the default 784-256-10 and the deep reference 784-1024-1024-10.
const NETWORKS: [&[usize]; 2] = [&[256], &[1024, 1024]];

struct Results {
    dir: PathBuf,
    /// The thread counts, one column each.
    threads: Vec<usize>,
    /// When the oldest and the newest file read so far were written.
    span: Cell<Option<(SystemTime, SystemTime)>>,
    /// `cpu-history.txt`: which CPU each bench process ran on, and when.
    history: Vec<(Duration, String)>,
    /// Each distinct file read so far, with the CPU that wrote it (`None`:
    /// written before the benches recorded their CPU). Keyed by path: a
    /// file read twice (a median and its throughput) counts once.
    written_by: RefCell<BTreeMap<PathBuf, Option<String>>>,
}

impl Results {
    fn read(&self, path: &Path) -> Option<Value> {
        let text = fs::read_to_string(path).ok()?;
        let value = serde_json::from_str(&text).ok()?;
        if let Some(t) = modified(path) {
            let (lo, hi) = self.span.get().unwrap_or((t, t));
            self.span.set(Some((lo.min(t), hi.max(t))));
            let cpu = cpu::cpu_at(&self.history, t).map(str::to_string);
            self.written_by.borrow_mut().insert(path.to_path_buf(), cpu);
        }
        Some(value)
    }

    /// Where criterion keeps the latest `file` of bench `id`.
    fn latest(&self, id: &str, file: &str) -> PathBuf {
        self.dir.join(id).join("new").join(file)
    }

    fn json(&self, id: &str, file: &str) -> Option<Value> {
        self.read(&self.latest(id, file))
    }

    /// Median ratio written by a bench's paired samples (`step / gemms`,
    /// `1 thread / T threads`).
    fn paired_ratio(&self, id: &str) -> Option<f64> {
        self.read(&self.dir.join(id).join("ratio.json"))?["median_ratio"].as_f64()
    }

    /// When the median of `id` was written.
    fn written(&self, id: &str) -> Option<SystemTime> {
        modified(&self.latest(id, "estimates.json"))
    }

    /// Median time per iteration, in seconds.
    fn median(&self, id: &str) -> Option<f64> {
        let v = self.json(id, "estimates.json")?;
        Some(v["median"]["point_estimate"].as_f64()? * 1e-9)
    }

    /// Throughput per iteration (criterion "elements": FLOP or samples).
    fn elements(&self, id: &str) -> Option<f64> {
        let v = self.json(id, "benchmark.json")?;
        v["throughput"]["Elements"].as_f64()
    }

    /// Elements per second at the median.
    fn rate(&self, id: &str) -> Option<f64> {
        Some(self.elements(id)? / self.median(id)?)
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).ok()?.modified().ok()
}

/// `d` in the largest whole unit that fits: "40 s", "12 min", "17 h", "3 days".
fn span_text(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..120 => format!("{s} s"),
        120..7200 => format!("{} min", s / 60),
        7200..172_800 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

fn fmt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "–".into(), f)
}

#[path = "../benches/common/criterion_dir.rs"]
mod criterion_dir;

#[path = "../benches/common/cpu.rs"]
#[allow(dead_code)] // (`stamp` is the benches')
mod cpu;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(criterion_dir::criterion_dir);
    if !dir.is_dir() {
        eprintln!(
            "perf_table: no criterion results in {}; run `cargo bench` first",
            dir.display()
        );
        std::process::exit(1);
    }
    let r = Results {
        threads: thread_counts(&dir),
        history: cpu::history(&dir),
        dir,
        span: Cell::new(None),
        written_by: RefCell::new(BTreeMap::new()),
    };
    let peak: Vec<Option<f64>> = r
        .threads
        .iter()
        .map(|t| r.rate(&format!("peak/fma/{t}t")))
        .collect();

    // The results may predate this machine: the footer names the CPU
    // that wrote them.
    println!(
        "This machine: {} ({} logical CPUs)",
        cpu::cpu_name(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for hidden in NETWORKS {
        println!();
        table(&r, &Dims::mnist(hidden), &peak);
    }
    let gp = r.median("gather/prefetch_b128");
    let gn = r.median("gather/plain_b128");
    if let (Some(p), Some(n)) = (gp, gn) {
        // The README's commands run the gather group only with a plain
        // `cargo bench`; say so when its result predates the peak's.
        let age = match (r.written("gather/prefetch_b128"), r.written("peak/fma/1t")) {
            (Some(g), Some(pk)) => pk.duration_since(g).ok(),
            _ => None,
        };
        let stale = match age {
            Some(d) if d > Duration::from_secs(3600) => format!(
                " (written {} before the peak results: an earlier `cargo bench` run; \
                 `cargo bench --bench step -- gather/` refreshes it)",
                span_text(d)
            ),
            _ => String::new(),
        };
        println!(
            "\ngather of 128 shuffled images, 1 thread: {:.1} µs with prefetch, {:.1} µs without ({:.1}×){stale}",
            p * 1e6,
            n * 1e6,
            n / p
        );
    }
    if let Some((lo, hi)) = r.span.get() {
        let now = SystemTime::now();
        let ago = |t: SystemTime| span_text(now.duration_since(t).unwrap_or_default());
        println!(
            "\ncriterion results read: written {} ago (oldest) to {} ago (newest)",
            ago(lo),
            ago(hi)
        );
        // Every figure names its CPU: the one each result was written on,
        // which need not be this machine's.
        let here = cpu::cpu_name();
        let mut per_cpu: BTreeMap<Option<&str>, usize> = BTreeMap::new();
        let files = r.written_by.borrow();
        for cpu in files.values() {
            *per_cpu.entry(cpu.as_deref()).or_default() += 1;
        }
        let by: Vec<String> = per_cpu
            .iter()
            .map(|(cpu, n)| match cpu {
                Some(c) if *c == here => format!("{n} on this machine's CPU, {c}"),
                Some(c) => format!("{n} on ANOTHER CPU, {c}"),
                None => format!("{n} before the benches recorded their CPU"),
            })
            .collect();
        println!("result files: {}", by.join("; "));
        if per_cpu.keys().any(|c| *c != Some(here.as_str())) {
            println!(
                "the table mixes in results of another CPU than this machine's ({here}), or of one not recorded: `cargo bench` here rewrites them all"
            );
        }
    }
}

/// What the benches append to a network's ids: nothing for the default
/// 784-256-10, `_h1024-1024` for 784-1024-1024-10 (as `benches/common`).
fn net_tag(dims: &Dims) -> String {
    if dims.hidden() == [256] {
        String::new()
    } else {
        format!("_h{}", dims.hidden_name().replace(',', "-"))
    }
}

/// `(id, what)` of every sgemm bench of `dims`, in the table's order, with
/// the shapes `m×k×n` as the trainer calls them (layers counted from 1).
fn sgemm_rows(dims: &Dims) -> Vec<(String, String)> {
    let layers = dims.layers();
    let input = |i: usize| {
        if i == 1 {
            "x".to_string()
        } else {
            format!("a{}", i - 1)
        }
    };
    let mut rows = Vec::new();
    for i in 1..=layers {
        let (ni, no) = dims.layer(i - 1);
        rows.push((
            format!("z{i}"),
            format!("{}·W{i}ᵀ 128×{ni}×{no}, cut as pass 1 cuts it", input(i)),
        ));
    }
    for i in (2..=layers).rev() {
        let (ni, no) = dims.layer(i - 1);
        rows.push((
            format!("da{}", i - 1),
            format!("dz{i}·W{i} 128×{no}×{ni}, cut as pass 1 cuts it"),
        ));
    }
    for i in (1..=layers).rev() {
        let (ni, no) = dims.layer(i - 1);
        let what = if i == 1 {
            format!("dW1ᵀ = xᵀ·dz1 {ni}×128×{no}, per input range")
        } else {
            let by = if i == layers { "class" } else { "output" };
            format!("dz{i}ᵀ·a{} {no}×128×{ni}, per {by} range", i - 1)
        };
        rows.push((format!("dw{i}"), what));
    }
    for i in 1..=layers {
        let (ni, no) = dims.layer(i - 1);
        rows.push((
            format!("eval_z{i}"),
            format!("eval {}·W{i}ᵀ 256×{ni}×{no} per part", input(i)),
        ));
    }
    rows
}

/// The table of one network: every row whose benches it has.
fn table(r: &Results, dims: &Dims, peak: &[Option<f64>]) {
    let tag = net_tag(dims);
    let gemms = 3 * dims.layers() - 1;
    // The deep network's step is benched at batch 128 only.
    let batches: &[usize] = if tag.is_empty() {
        &[32, 128, 512]
    } else {
        &[128]
    };
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |label: &str, f: &dyn Fn(usize, Option<f64>) -> String| {
        let cells = r.threads.iter().zip(peak).map(|(&t, &p)| f(t, p)).collect();
        rows.push((label.to_string(), cells));
    };
    let gflops = |rate: Option<f64>, peak: Option<f64>| match (rate, peak) {
        (Some(r), Some(p)) => format!("{:.1} ({:.0} %)", r * 1e-9, 100.0 * r / p),
        (Some(r), None) => format!("{:.1}", r * 1e-9),
        _ => "–".into(),
    };

    // `benches/peak.rs` measures the widest FMA the CPU has and names it here.
    let isa = fs::read_to_string(r.dir.join("peak/fma/isa.txt"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "FMA".into());
    row(&format!("{isa} peak, measured (GFLOP/s)"), &|_, p| {
        fmt(p, |v| format!("{:.1}", v * 1e-9))
    });
    if r.threads
        .iter()
        .any(|t| r.rate(&format!("peak/fma256/{t}t")).is_some())
    {
        row("AVX2+FMA peak, measured (GFLOP/s)", &|t, _| {
            fmt(r.rate(&format!("peak/fma256/{t}t")), |v| {
                format!("{:.1}", v * 1e-9)
            })
        });
    }
    row("epoch (55,000 images, batch 128): s", &|t, _| {
        fmt(r.median(&format!("epoch/train{tag}/{t}t")), |v| {
            format!("{v:.3}")
        })
    });
    row("epoch: samples/s", &|t, _| {
        fmt(r.rate(&format!("epoch/train{tag}/{t}t")), |v| {
            format!("{v:.0}")
        })
    });
    row("epoch: GFLOP/s (% of peak)", &|t, p| {
        let flop = dims.train_flop_per_row() as f64;
        gflops(
            r.rate(&format!("epoch/train{tag}/{t}t")).map(|s| s * flop),
            p,
        )
    });
    for b in batches {
        row(
            &format!("step b{b} / bare {gemms} GEMMs (µs / µs = ratio)"),
            &|t, _| {
                let s = r.median(&format!("step/step_b{b}{tag}/{t}t"));
                let g = r.median(&format!("step/gemms_b{b}{tag}/{t}t"));
                match (s, g) {
                    (Some(s), Some(g)) => format!("{:.0} / {:.0} = {:.2}", s * 1e6, g * 1e6, s / g),
                    _ => "–".into(),
                }
            },
        );
    }
    for b in batches {
        row(
            &format!("step b{b} / bare {gemms} GEMMs, paired in each sample (median ratio)"),
            &|t, _| {
                fmt(
                    r.paired_ratio(&format!("step/paired_b{b}{tag}/{t}t")),
                    |v| format!("{v:.2}"),
                )
            },
        );
    }
    row(
        "step b128: speed-up over 1 thread, paired in each sample (median)",
        &|t, _| match t {
            // The baseline, where some count above it was measured.
            1 if r.threads.iter().any(|&u| {
                u > 1
                    && r.paired_ratio(&format!("scaling/paired_b128{tag}/{u}t"))
                        .is_some()
            }) =>
            {
                "1".into()
            }
            1 => "–".into(),
            _ => fmt(
                r.paired_ratio(&format!("scaling/paired_b128{tag}/{t}t")),
                |v| format!("{v:.2}×"),
            ),
        },
    );
    row("step b128: GFLOP/s (% of peak)", &|t, p| {
        gflops(r.rate(&format!("step/step_b128{tag}/{t}t")), p)
    });
    row("eval 10,000 images: ms", &|t, _| {
        fmt(r.median(&format!("epoch/eval10k{tag}/{t}t")), |v| {
            format!("{:.1}", v * 1e3)
        })
    });
    row("eval: GFLOP/s (% of peak)", &|t, p| {
        let flop = dims.eval_flop_per_row() as f64;
        gflops(
            r.rate(&format!("epoch/eval10k{tag}/{t}t"))
                .map(|s| s * flop),
            p,
        )
    });
    for (name, what) in sgemm_rows(dims) {
        row(
            &format!("sgemm {name} ({what}): GFLOP/s (% of peak)"),
            &|t, p| gflops(r.rate(&format!("sgemm/{name}{tag}/{t}t")), p),
        );
    }

    let heads: Vec<String> = r
        .threads
        .iter()
        .map(|&t| format!("{t} thread{}", if t == 1 { "" } else { "s" }))
        .collect();
    println!(
        "| {}, criterion medians | {} |",
        dims.name(),
        heads.join(" | ")
    );
    println!("|---|{}", "---:|".repeat(heads.len()));
    for (label, cells) in &rows {
        println!("| {label} | {} |", cells.join(" | "));
    }
    let epoch = |t: usize| r.median(&format!("epoch/train{tag}/{t}t"));
    if let Some(one) = epoch(1) {
        let ups: Vec<String> = r
            .threads
            .iter()
            .filter(|&&t| t > 1)
            .filter_map(|&t| epoch(t).map(|e| format!("{t} threads vs 1: {:.2}×", one / e)))
            .collect();
        if !ups.is_empty() {
            println!("\n{} epoch speed-up, {}", dims.name(), ups.join(", "));
        }
    }
}

/// The thread counts of the results in `dir`: every `Nt` directory of a
/// bench (`dir/group/bench/Nt`), sorted; 1 and 2 when there is none.
fn thread_counts(dir: &Path) -> Vec<usize> {
    let subdirs = |d: &Path| -> Vec<PathBuf> {
        fs::read_dir(d).map_or_else(
            |_| Vec::new(),
            |it| {
                it.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_dir())
                    .collect()
            },
        )
    };
    let mut threads: Vec<usize> = subdirs(dir)
        .iter()
        .flat_map(|group| subdirs(group))
        .flat_map(|bench| subdirs(&bench))
        .filter_map(|p| p.file_name()?.to_str()?.strip_suffix('t')?.parse().ok())
        .filter(|&t| t >= 1)
        .collect();
    threads.sort_unstable();
    threads.dedup();
    if threads.is_empty() {
        threads = vec![1, 2];
    }
    threads
}
