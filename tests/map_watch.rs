//! Opening a data file and dropping it gives back all it took, the record
//! that lets a SIGBUS name the file included: a counting global allocator
//! follows the bytes held while one data set is opened and dropped
//! thousands of times, as a library user's loop might.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::SeqCst};

struct Counting;

/// Bytes allocated and not yet freed, by anyone in the process.
static HELD: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter has no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size() as isize, SeqCst);
        // SAFETY: forwarded from the caller's contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size() as isize, SeqCst);
        // SAFETY: forwarded from the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HELD.fetch_add(new_size as isize - layout.size() as isize, SeqCst);
        // SAFETY: forwarded from the caller's contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn opening_and_dropping_a_data_set_holds_no_memory_after() {
    let dir = tempfile::tempdir().unwrap();
    drop(common::random_dataset(dir.path(), 20));
    let (images, labels) = (dir.path().join("images"), dir.path().join("labels"));
    let open = || simplenn::data::Dataset::open(&images, &labels).expect("opens");
    // Whatever is made once (a lazily built static) is made here.
    for _ in 0..10 {
        drop(open());
    }
    let before = HELD.load(SeqCst);
    const OPENS: isize = 2_000;
    for _ in 0..OPENS {
        drop(open());
    }
    let grown = HELD.load(SeqCst) - before;
    // Each open maps two files, and each watch's record is some 300
    // bytes: kept, they would hold over a megabyte.
    assert!(
        grown < 4096,
        "{grown} bytes still held after {OPENS} opens and drops of a data set"
    );
}
