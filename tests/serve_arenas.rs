//! The page's threads have each allocated by the time `serve::start`
//! returns, in a test binary of its own (it counts the threads of this
//! process that allocate): the C library gives a thread its malloc arena
//! (64 MiB of address space, under `ulimit -v`) at its first allocation,
//! and `train --serve` estimates its memory once the page is up. When some
//! of those threads had not yet allocated, the same command under the same
//! limit was refused in one run and trained in the next.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use simplenn::modelfile;
use simplenn::serve::{self, State, HANDLERS};

struct FirstAllocations;

/// Threads that have allocated at least once.
static THREADS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static ALLOCATED: Cell<bool> = const { Cell::new(false) };
}

fn first_on_this_thread() {
    // `try_with`: a thread being torn down has no locals left.
    let _ = ALLOCATED.try_with(|a| {
        if !a.replace(true) {
            THREADS.fetch_add(1, SeqCst);
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// count has no effect on the memory handed out.
unsafe impl GlobalAlloc for FirstAllocations {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        first_on_this_thread();
        // SAFETY: forwarded from the caller's contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        first_on_this_thread();
        // SAFETY: forwarded from the caller's contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: FirstAllocations = FirstAllocations;

/// The threads `start` spawns: the page's answering threads, the server's
/// accept thread and the 4 idle threads of its connection pool.
const SPAWNED: usize = HANDLERS + 1 + 4;

#[test]
fn the_pages_threads_have_allocated_when_start_returns() {
    // `start` waits for its threads: should that wait hang, fail at a
    // deadline rather than hold up the whole test run.
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(120));
        eprintln!("serve::start (or the test around it) has not returned within 120 s");
        std::process::exit(1);
    });
    let t = tempfile::tempdir().unwrap();
    let (model, _) = common::small_model(t.path());
    let (params, image) = modelfile::load_model_image(&model).unwrap();
    let state = Arc::new(State::for_model(params, &model, None, None).with_image(image));
    // Whatever the training above left running has settled.
    std::thread::sleep(Duration::from_millis(300));
    let before = THREADS.load(SeqCst);
    let server = serve::start("127.0.0.1", 0, state).unwrap();
    let started = THREADS.load(SeqCst) - before;
    assert!(
        started >= SPAWNED,
        "{started} threads had allocated when start returned, of the {SPAWNED} it starts"
    );
    // And none first allocates later while the page is idle.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(THREADS.load(SeqCst) - before, started);
    server.stop();
}
