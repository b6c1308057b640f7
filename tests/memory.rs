//! The memory check's estimate ([`simplenn::train::run_bytes`], with the
//! distortion's scratch) bounds what a run really holds: a global
//! allocator that keeps the peak of the bytes live on the heap watches
//! whole runs, in this process, of a network large enough that the
//! estimate's slabs dwarf what it does not count (the thread pool, the
//! GEMM packing buffers, the progress line, the test harness). A run that
//! holds more than it said it would could pass the check and then abort
//! for want of memory; one that holds much less is refused where it would
//! have fit. Then loading a model and a checkpoint, against the estimate
//! that refuses a file too large ([`simplenn::modelfile::load_need`]). One
//! test, so that no other test's allocations share the count.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::SeqCst};
use std::sync::Arc;

use simplenn::checkpoint::load_checkpoint;
use simplenn::live::{Live, PAGE_HANDLERS};
use simplenn::modelfile::{load_named_model, load_need};
use simplenn::train::{dims_for, parts_for, run_bytes, train_with, RunOptions};

struct Peak;

/// Bytes live on the heap now, and the most since the last [`reset`].
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn grew(by: isize) {
    let now = LIVE.fetch_add(by, SeqCst) + by;
    PEAK.fetch_max(now, SeqCst);
}

/// Start a new peak from what is live now; returns that.
fn reset() -> isize {
    let now = LIVE.load(SeqCst);
    PEAK.store(now, SeqCst);
    now
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counters have no effect on the memory handed out.
unsafe impl GlobalAlloc for Peak {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded from the caller's contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded from the caller's contract.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller's contract.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, SeqCst);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded from the caller's contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            grew(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Peak = Peak;

/// What the estimate leaves out, at most: a pool of two threads with their
/// GEMM packing buffers, the data's headers, the run's strings (5 MB
/// measured with `--hidden 16`, where the estimate's slabs are nothing).
const UNCOUNTED: u64 = 8 << 20;

#[test]
fn runs_hold_no_more_than_the_memory_check_counts() {
    let mb = |b: u64| b as f64 / 1e6;
    let dir = tempfile::tempdir().unwrap();
    let n_test = 1000;
    let data = common::small_mnist(&dir.path().join("data"), 600, n_test);
    let save = dir.path().join("model.safetensors");
    let checkpoint = dir.path().join("checkpoint.safetensors");
    let save_to = ["--save", save.to_str().unwrap()];
    let hidden = ["--hidden", "2048,2048", "--epochs", "2", "--val", "100"];
    // (flags, a checkpoint every epoch, train --serve's page)
    let runs: [(&[&str], bool, bool); 7] = [
        (&[], false, false),
        (&[], true, false),
        (&["--optimizer", "adam"], true, false),
        (
            &["--optimizer", "adamw", "--weight-decay", "0.01"],
            false,
            true,
        ),
        (
            &["--dropout", "0.5", "--dropout-mask", "batch"],
            false,
            false,
        ),
        (
            &[
                "--dropout",
                "0.5",
                "--dropout-mask",
                "batch",
                "--optimizer",
                "adam",
            ],
            true,
            false,
        ),
        (
            &["--augment", "elastic", "--batch-size", "500"],
            false,
            false,
        ),
    ];
    for (flags, checkpoints, page) in runs {
        let all = [&["--threads", "2"], &hidden[..], flags, &save_to].concat();
        let (cfg, mnist) = common::fitted_config(&data, &all, false);
        let dims = dims_for(&cfg, &mnist);
        let parts = parts_for(cfg.threads);
        let n_train = mnist.train.len() - cfg.val;
        // The validation set, the test set or the first 256 training images:
        // here the test set is the largest.
        let scored = n_test;
        let steps_per_epoch = n_train.div_ceil(cfg.batch_size) as u64;
        let curve = simplenn::live::curve_bytes(
            steps_per_epoch,
            steps_per_epoch * cfg.epochs as u64,
            cfg.epochs,
        );
        let page_of = page.then_some((n_test, curve));
        let (rows, cols) = mnist.train.side();
        let estimate = run_bytes(&cfg, &dims, parts, (n_train, scored), page_of, checkpoints)
            + cfg.augment.bytes(rows, cols, parts);
        let opts = RunOptions {
            checkpoint: checkpoints.then(|| checkpoint.clone()),
            checkpoint_every: checkpoints.then_some(1),
            live: page.then(|| Arc::new(Live::new())),
            ..RunOptions::default()
        };
        let before = reset();
        let report = train_with(&cfg, &mnist, opts, &mut Vec::new()).unwrap();
        let held = (PEAK.load(SeqCst) - before) as u64;
        drop(report);
        let run = format!(
            "{flags:?}{}{}",
            if checkpoints { " with checkpoints" } else { "" },
            if page { " with the page" } else { "" }
        );
        println!(
            "{run}: held {:.1} MB at the peak, estimate {:.1} MB",
            mb(held),
            mb(estimate)
        );
        assert!(
            held <= estimate + UNCOUNTED,
            "{run}: the run held {:.1} MB, more than the {:.1} MB the memory check counts",
            mb(held),
            mb(estimate)
        );
        // The network's slabs, the estimate's bulk, are really held: all
        // but the page's answering threads' copies of the weights, which
        // no request here makes.
        let unasked = match page {
            true => (PAGE_HANDLERS * 4 * dims.param_count()) as u64,
            false => 0,
        };
        assert!(
            5 * held >= 3 * (estimate - unasked),
            "{run}: the run held {:.1} MB, under three fifths of the {:.1} MB the memory check counts",
            mb(held),
            mb(estimate - unasked)
        );
    }
    // Loading what the runs wrote, as `eval`, `predict`, `serve` and a
    // resumed run do, against the estimate that refuses a file too large:
    // the elastic run's model, and the checkpoint of the last run that
    // wrote them (Adam's, its two moments beside the weights).
    for (path, is_checkpoint) in [(&save, false), (&checkpoint, true)] {
        let bytes = std::fs::read(path).unwrap();
        let head = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let need = load_need(bytes.len() as u64, &bytes[..head], is_checkpoint);
        drop(bytes);
        let before = reset();
        match is_checkpoint {
            true => drop(load_checkpoint(path).unwrap()),
            false => drop(load_named_model(path, None).unwrap()),
        }
        let held = (PEAK.load(SeqCst) - before) as u64;
        let what = path.file_name().unwrap().to_string_lossy();
        println!(
            "loading {what}: held {:.1} MB at the peak, estimate {:.1} MB",
            mb(held),
            mb(need)
        );
        // One thread, no pool: the estimate is the whole of it.
        assert!(
            held.abs_diff(need) <= 1 << 20,
            "loading {what} held {:.1} MB, not the {:.1} MB its estimate counts",
            mb(held),
            mb(need)
        );
    }
}
