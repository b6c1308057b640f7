//! Property tests of the parsers that read untrusted files: the IDX
//! header, the safetensors model, the checkpoint and the metrics log.
//! Random and mutated inputs must never panic, and never make the
//! header, model or checkpoint parser allocate more than the input's size.
//! (The coverage-guided fuzz targets in `fuzz/`, run by hand, go deeper;
//! the checkpoints and logs here are their seeds, files simplenn wrote.)
//!
//! `cargo test` runs a few thousand cases; the long run is
//! `cargo test --release --test parsers_prop -- --ignored` (1,000,000 cases each).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use simplenn::checkpoint::checkpoint_from_bytes;
use simplenn::idx::parse_header;
use simplenn::model::{Dims, Init, Params};
use simplenn::{metrics, modelfile};

/// Counts the bytes live on this thread, and their peak, so parallel tests
/// do not see each other's allocations.
struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: defers every allocation to `System` unchanged; only bookkeeping is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LIVE.try_with(|l| {
            let now = l.get() + layout.size();
            l.set(now);
            let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
        });
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(layout.size())));
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Peak bytes newly allocated (above what was live before) while running `f`.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(|l| l.get());
    PEAK.with(|p| p.set(base));
    let out = f();
    (out, PEAK.with(|p| p.get()) - base)
}

fn idx_file(dims: &[u32], body: usize) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.resize(v.len() + body, 0);
    v
}

/// Inputs for the IDX header: a valid small file, then mutated bytes,
/// overwritten header words (huge counts included) and a truncation.
fn idx_input() -> impl Strategy<Value = (Vec<u8>, u8)> {
    (
        1u32..40,
        prop::collection::vec((0usize..64, any::<u8>()), 0..6),
        prop::option::of((0usize..4, any::<u32>())),
        any::<prop::sample::Index>(),
        any::<bool>(),
        1u8..4,
    )
        .prop_map(|(n, flips, word, cut, truncate, ndim)| {
            let mut f = match ndim {
                1 => idx_file(&[n], n as usize),
                2 => idx_file(&[n, 7], 7 * n as usize),
                _ => idx_file(&[n, 3, 5], 15 * n as usize),
            };
            if let Some((w, v)) = word {
                let at = 4 + 4 * w;
                if at + 4 <= f.len() {
                    f[at..at + 4].copy_from_slice(&v.to_be_bytes());
                }
            }
            for (i, b) in flips {
                if i < f.len() {
                    f[i] = b;
                }
            }
            if truncate {
                f.truncate(cut.index(f.len() + 1));
            }
            (f, ndim)
        })
}

fn check_idx(bytes: &[u8], ndim: u8) -> Result<(), TestCaseError> {
    for want in [ndim, 1, 3] {
        let (res, peak) = peak_during(|| parse_header(bytes, want));
        prop_assert!(
            peak <= bytes.len().max(64),
            "allocated {peak} B for a {} B file",
            bytes.len()
        );
        if let Ok(h) = res {
            let body: u64 = h.dims.iter().map(|&d| d as u64).product();
            prop_assert_eq!(h.data_offset as u64 + body, bytes.len() as u64);
        }
    }
    Ok(())
}

fn model_bytes() -> Vec<u8> {
    let p = Params::init(Dims::new(784, &[2], 10), Init::He, 3);
    let v = Params::zeros(p.dims.clone());
    modelfile::to_bytes(&p, &[("momentum", &v)], BTreeMap::new())
}

/// Checkpoints simplenn wrote (a tiny data set of 2 × 2 images, 3
/// classes): SGD with momentum, 4-3-3 with class names; AdamW, 4-3
/// (`fuzz/seeds/checkpoint/`).
const CHECKPOINTS: [&[u8]; 2] = [
    include_bytes!("../fuzz/seeds/checkpoint/t.ckpt"),
    include_bytes!("../fuzz/seeds/checkpoint/t2.ckpt"),
];

/// Metrics logs simplenn wrote, with and without `--test-every-epoch`
/// (`fuzz/seeds/metrics/`).
const LOGS: [&str; 2] = [
    include_str!("../fuzz/seeds/metrics/log.jsonl"),
    include_str!("../fuzz/seeds/metrics/t2.jsonl"),
];

/// Inputs for the model parser: a valid file with mutated bytes (header
/// bytes most often) and a truncation.
fn model_input() -> impl Strategy<Value = Vec<u8>> {
    safetensors_input(model_bytes())
}

/// A valid safetensors file `base` with mutated bytes (header bytes most
/// often) and a truncation.
fn safetensors_input(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = base.len();
    (
        prop::collection::vec((0usize..len, any::<u8>(), any::<bool>()), 0..8),
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(move |(flips, cut, truncate)| {
            let mut f = base.clone();
            let header_end = 8 + u64::from_le_bytes(f[..8].try_into().unwrap()) as usize;
            for (i, b, in_header) in flips {
                let at = if in_header { i % header_end } else { i };
                f[at] = b;
            }
            if truncate {
                f.truncate(cut.index(f.len() + 1));
            }
            f
        })
}

fn check_model(bytes: &[u8]) -> Result<(), TestCaseError> {
    let (res, peak) =
        peak_during(|| modelfile::from_bytes(bytes, Path::new("fuzz.safetensors"), &["momentum"]));
    // Parsing builds the header's JSON tree and the two slabs it describes:
    // bounded by a small multiple of the input, whatever the header claims.
    prop_assert!(
        peak <= 8 * bytes.len() + 4096,
        "allocated {peak} B for a {} B file",
        bytes.len()
    );
    if let Ok(l) = res {
        prop_assert_eq!(l.params.data.len(), l.params.dims.param_count());
    }
    Ok(())
}

fn check_checkpoint(bytes: &[u8]) -> Result<(), TestCaseError> {
    let (res, peak) = peak_during(|| checkpoint_from_bytes(bytes, Path::new("fuzz.ckpt")));
    // As for a model: the header's JSON tree and the slabs it describes.
    prop_assert!(
        peak <= 8 * bytes.len() + 4096,
        "allocated {peak} B for a {} B file",
        bytes.len()
    );
    if let Ok(c) = res {
        let n = c.params.dims.param_count();
        prop_assert_eq!(c.params.data.len(), n);
        prop_assert_eq!(c.velocity.data.len(), n);
        if let Some(v) = &c.exp_avg_sq {
            prop_assert_eq!(v.data.len(), n);
        }
    }
    Ok(())
}

/// A log simplenn wrote, with bytes changed to characters a JSON line is
/// made of and lines cut or repeated.
fn log_input() -> impl Strategy<Value = String> {
    const PARTS: &[&str] = &[
        "{",
        "}",
        ",",
        ":",
        "\"",
        "\n",
        "0",
        "1",
        "-",
        "e",
        "9",
        ".",
        "null",
        "NaN",
        "1e999",
        "\"epoch\"",
        " ",
        "\u{feff}",
        "\r",
        "é",
    ];
    (
        0..LOGS.len(),
        prop::collection::vec((any::<prop::sample::Index>(), 0..PARTS.len()), 0..6),
        any::<prop::sample::Index>(),
        0..3usize,
    )
        .prop_map(|(which, edits, cut, how)| {
            let mut s = LOGS[which].to_string();
            for (at, part) in edits {
                // One character (or none, at the end) replaced by a part.
                let bounds = char_bounds(&s);
                let k = at.index(bounds.len());
                let (i, j) = (bounds[k], bounds[(k + 1).min(bounds.len() - 1)]);
                s.replace_range(i..j, PARTS[part]);
            }
            let bounds = char_bounds(&s);
            let at = bounds[cut.index(bounds.len())];
            match how {
                0 => s.truncate(at),
                1 => s = format!("{}{}", &s[..at], &s[..]),
                _ => {}
            }
            s
        })
}

/// The byte offsets in `s` where a character starts, and its end: edits
/// and cuts there keep the text UTF-8.
fn char_bounds(s: &str) -> Vec<usize> {
    (0..=s.len()).filter(|&i| s.is_char_boundary(i)).collect()
}

fn check_log(text: &str) -> Result<(), TestCaseError> {
    if let Ok(records) = metrics::parse(text, Path::new("fuzz.jsonl")) {
        // What reads writes back, and reads again as the same records.
        let again = metrics::to_jsonl(&records);
        let back = metrics::parse(&again, Path::new("again.jsonl"));
        prop_assert!(back.is_ok(), "{again:?} does not read back: {back:?}");
        prop_assert_eq!(metrics::to_jsonl(&back.unwrap()), again);
    }
    Ok(())
}

fn run(cases: u32) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner.run(&idx_input(), |(b, n)| check_idx(&b, n)).unwrap();
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner.run(&model_input(), |b| check_model(&b)).unwrap();
    for base in CHECKPOINTS {
        let mut runner = TestRunner::new(Config {
            cases: cases / 2,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&safetensors_input(base.to_vec()), |b| check_checkpoint(&b))
            .unwrap();
    }
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner.run(&log_input(), |t| check_log(&t)).unwrap();
    // Pure noise, too.
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&prop::collection::vec(any::<u8>(), 0..200), |b| {
            check_idx(&b, 3)?;
            check_model(&b)?;
            check_checkpoint(&b)?;
            check_log(&String::from_utf8_lossy(&b))
        })
        .unwrap();
}

#[test]
fn parsers_survive_mutations() {
    run(3_000);
}

#[test]
fn the_valid_inputs_do_parse() {
    // The strategies start from valid files; make sure they are valid.
    assert!(parse_header(&idx_file(&[3, 3, 5], 45), 3).is_ok());
    assert!(modelfile::from_bytes(&model_bytes(), Path::new("m"), &["momentum"]).is_ok());
    for c in CHECKPOINTS {
        let c = checkpoint_from_bytes(c, Path::new("c")).unwrap();
        assert!(c.params.dims.k() == 3 && c.steps > 0);
    }
    assert!(checkpoint_from_bytes(CHECKPOINTS[1], Path::new("c"))
        .unwrap()
        .exp_avg_sq
        .is_some());
    for log in LOGS {
        assert!(!metrics::parse(log, Path::new("l")).unwrap().is_empty());
    }
}

#[test]
#[ignore = "long run: cargo test --release --test parsers_prop -- --ignored"]
fn parsers_survive_a_million_mutations() {
    let t = std::time::Instant::now();
    run(1_000_000);
    eprintln!(
        "1,000,000 cases of each kind passed in {:.0} s",
        t.elapsed().as_secs_f64()
    );
}
