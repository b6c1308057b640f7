//! The training loop's `--serve` hook allocates nothing per step: after
//! `Live::start`, a counting global allocator watches a whole run's worth of
//! `Live::step` calls (weights copied every interval) and `Live::epoch`
//! calls, while another thread reads the snapshot as the server would.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use simplenn::live::Live;
use simplenn::metrics::EpochStats;
use simplenn::model::{Dims, Init, Params};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
/// Allocations and reallocations on the counted thread while counting.
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn count() {
    if COUNTING.load(SeqCst) && COUNTED.with(|c| c.get()) {
        ALLOCS.fetch_add(1, SeqCst);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter has no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded from the caller's contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded from the caller's contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn the_hook_allocates_nothing_per_step() {
    let mut params = Params::init(Dims::mnist(&[64, 32]), Init::He, 1);
    let (spe, epochs) = (430u64, 3usize);
    let live = Arc::new(Live::new());
    live.start(&params, spe, spe * epochs as u64, epochs, 0, None);
    // A reader, as the server: locks the snapshot again and again; the
    // counted loop below waits, after every copy of the weights, until the
    // reader has finished a read since just before that copy, so the reader
    // really runs while the hook is watched.
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (live, stop, reads) = (live.clone(), stop.clone(), reads.clone());
        std::thread::spawn(move || {
            while !stop.load(SeqCst) {
                let s = live.lock();
                std::hint::black_box(s.points.len());
                drop(s);
                reads.fetch_add(1, SeqCst);
                std::thread::yield_now();
            }
        })
    };
    let read_since = |before: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while reads.load(SeqCst) == before {
            assert!(std::time::Instant::now() < deadline, "the reader never ran");
            std::thread::yield_now();
        }
    };
    let stats = |epoch| EpochStats {
        epoch,
        train_loss: 0.1,
        train_accuracy: 0.9,
        val: None,
        test: None,
        lr: 0.1,
        seconds: 1.0,
        wall_seconds: 1.0,
        samples_per_sec: 1.0,
    };
    COUNTED.with(|c| c.set(true));
    COUNTING.store(true, SeqCst);
    // The counter sees this thread's allocations.
    drop(std::hint::black_box(Vec::<u8>::with_capacity(16)));
    assert_eq!(ALLOCS.swap(0, SeqCst), 1);
    let mut step = 0u64;
    for epoch in 1..=epochs {
        for i in 1..=spe {
            step += 1;
            params.data[0] = step as f32;
            let before = reads.load(SeqCst);
            live.step(&params, epoch, step, i as f64, i as usize, 128 * i as usize);
            if i % 43 == 0 {
                read_since(before);
            }
        }
        live.epoch(&stats(epoch));
    }
    COUNTING.store(false, SeqCst);
    COUNTED.with(|c| c.set(false));
    stop.store(true, SeqCst);
    reader.join().unwrap();
    assert_eq!(ALLOCS.load(SeqCst), 0, "allocations in the hook");
    let s = live.lock();
    assert_eq!(s.points.len(), epochs * 10); // every 43 steps (430 = 10 · 43: the epoch ends on one)
    assert_eq!(s.records.len(), epochs);
    assert_eq!(s.params.as_ref().unwrap().data[0], step as f32);
}
