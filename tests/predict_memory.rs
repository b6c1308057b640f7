//! Preparing an image one pixel high or wide takes no more memory than a
//! square one of as many pixels: its grayscale and its ink, 8 bytes a
//! pixel, and nothing of the size of its long side beyond them. A global
//! allocator follows the most bytes held at once.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::SeqCst};

use simplenn::predict::{to_mnist, Gray, SIDE};

struct Peak;

/// Bytes allocated and not yet freed, by anyone in the process, and the
/// most of them since the last reset.
static HELD: AtomicIsize = AtomicIsize::new(0);
static MOST: AtomicIsize = AtomicIsize::new(0);

fn add(bytes: isize) {
    let now = HELD.fetch_add(bytes, SeqCst) + bytes;
    MOST.fetch_max(now, SeqCst);
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counters have no effect on the memory handed out.
unsafe impl GlobalAlloc for Peak {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        // SAFETY: forwarded from the caller's contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        // SAFETY: forwarded from the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded from the caller's contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Peak = Peak;

/// A white strip `len` long with a dark run of uneven shades in its
/// middle quarter, `wide` or tall.
fn strip(len: usize, wide: bool) -> Gray {
    let ink = len / 2 - len / 8..len / 2 + len / 8;
    let pixels = (0..len)
        .map(|i| match ink.contains(&i) {
            true => (i % 97) as f32,
            false => 255.0,
        })
        .collect();
    let (width, height) = if wide { (len, 1) } else { (1, len) };
    Gray {
        width,
        height,
        pixels,
        turned: false,
    }
}

/// The most bytes held at once while `g` is prepared, beyond those held
/// before, and what it gives.
fn prepared(g: &Gray) -> (isize, Vec<f32>) {
    let before = HELD.load(SeqCst);
    MOST.store(before, SeqCst);
    let input = to_mnist(g, "strip").expect("a digit");
    (MOST.load(SeqCst) - before, input)
}

#[test]
fn a_strip_one_pixel_high_or_wide_is_prepared_in_its_inks_room() {
    // Kept in one test: the counters are the process's.
    let len = 1 << 22;
    let image = 4 * len as isize;
    let (wide, across) = prepared(&strip(len, true));
    let (tall, down) = prepared(&strip(len, false));
    // Its ink (as many floats as the image) and a little: the background's
    // median taken from a copy of the edge held 8 bytes a pixel twice over
    // here, and resizing the wide one 4 bytes a pixel more.
    for (held, how) in [(wide, "wide"), (tall, "tall")] {
        assert!(
            held < image + (1 << 20),
            "preparing a {how} strip of {len} pixels held {held} bytes at once"
        );
    }
    // The wide one, resized through a turned view of its box, gives the
    // tall one's input turned over its diagonal.
    let turned: Vec<f32> = (0..SIDE * SIDE)
        .map(|i| down[(i % SIDE) * SIDE + i / SIDE])
        .collect();
    assert_eq!(across, turned);
    assert!(across.iter().any(|&v| v > 0.5));
}
