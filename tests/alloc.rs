//! `Trainer::step` allocates nothing once warm: a counting global allocator
//! watches a run of steps inside a 2-thread pool, as the trainer runs them,
//! and every allocation and free in that window is counted, whoever makes
//! it (this crate, rayon, or matrixmultiply, whose packing buffer is kept
//! per thread by the patch in vendor/matrixmultiply).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

use simplenn::augment::{Augment, Augmenter};
use simplenn::model::{Dims, Init, Params};
use simplenn::optim::{Kind, Optimizer};
use simplenn::train::{Regularisers, Trainer};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
/// Allocations and reallocations while counting.
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
/// Deallocations while counting.
static FREES: AtomicUsize = AtomicUsize::new(0);

fn count(counter: &AtomicUsize) {
    if COUNTING.load(SeqCst) {
        counter.fetch_add(1, SeqCst);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter has no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(&ALLOCS);
        // SAFETY: forwarded from the caller's contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(&FREES);
        // SAFETY: forwarded from the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(&ALLOCS);
        // SAFETY: forwarded from the caller's contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn training_steps_do_not_allocate() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::random_dataset(dir.path(), 700);
    let idx: Vec<u32> = (0..700u32).rev().collect();
    // Batch sizes: odd, the default, and one over MAX_BLOCK (two blocks).
    let batches: Vec<&[u32]> = vec![&idx[..37], &idx[100..228], &idx[..700]];
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    // Depth 1 (the default shape) and depth 3 with the default trainer
    // (fused SGD), and a wide layer (`model::Pass1::Layers`); elastic
    // distortion (its per-thread scratch is sized once, by `set_augment`);
    // then every other optimiser, with weight decay,
    // input dropout and max-norm on (the gradient slab and the update pass).
    let elastic = Augment::Elastic {
        sigma: 4.0,
        alpha: 34.0,
    };
    let adam = Optimizer {
        kind: Kind::Adam,
        weight_decay: 0.01,
        ..Optimizer::sgd(0.0)
    };
    let all_on = Regularisers {
        dropout: 0.2,
        input_dropout: 0.2,
        max_norm: Some(2.0),
        per_batch: false,
    };
    let cases = [
        (&[64][..], Augment::None, None),
        (&[64, 48, 32], Augment::None, None),
        // 160 units are over 4× the 37-row batch: pass 1 layer by layer.
        (&[160, 48], Augment::None, None),
        (&[64], elastic, None),
        (&[64], Augment::None, Some(adam)),
        (&[64, 48, 32], elastic, Some(adam)),
        (
            &[64, 32],
            Augment::None,
            Some(Optimizer {
                kind: Kind::Adamw,
                ..adam
            }),
        ),
        (
            &[64],
            Augment::None,
            Some(Optimizer {
                kind: Kind::Nesterov,
                ..Optimizer::sgd(0.9)
            }),
        ),
        (
            &[64],
            Augment::None,
            Some(Optimizer {
                weight_decay: 1e-4,
                ..Optimizer::sgd(0.9)
            }),
        ),
    ];
    // The same regularisers with one dropout mask per batch: every step
    // resizes, gathers and scatters the thinned network; plain SGD then
    // goes through the gradient slab too.
    let batchwise = Regularisers {
        per_batch: true,
        ..all_on
    };
    let thinned = [
        (&[64, 48, 32][..], Augment::None, adam),
        (&[160, 48], elastic, Optimizer::sgd(0.9)),
    ];
    let cases = cases
        .into_iter()
        .map(|(h, a, o)| (h, a, o, all_on))
        .chain(thinned.map(|(h, a, o)| (h, a, Some(o), batchwise)));
    let mut n = 0;
    for (hidden, augment, optimizer, reg) in cases {
        n += 1;
        let params = Params::init(Dims::mnist(hidden), Init::He, 1);
        let mut trainer = match optimizer {
            None => Trainer::new(params, 2, 0.9, 0.2, 1),
            Some(o) => Trainer::with(params, 2, o, reg, 1),
        };
        pool.install(|| {
            trainer.set_augment(Augmenter::new(augment, 28, 28, 1));
            // One step of the smallest batch warms it: from then on no
            // step allocates, whatever its batch or thinned shapes, since
            // the first step sized every pool thread's packing buffer for
            // the largest product (`gemm::reserve_packing`); warming by
            // the batches themselves would hide a thread that first packs
            // a larger block only later.
            trainer.step(&data, batches[0], 0.01);
            COUNTING.store(true, SeqCst);
            for _ in 0..10 {
                for b in &batches {
                    trainer.step(&data, b, 0.01);
                }
            }
            COUNTING.store(false, SeqCst);
        });
    }
    let (allocs, frees) = (ALLOCS.load(SeqCst), FREES.load(SeqCst));
    eprintln!("{n} × 30 warm steps: {allocs} allocations, {frees} frees");
    assert_eq!(
        allocs, 0,
        "heap allocations in {n} × 30 warm training steps"
    );
    assert_eq!(frees, 0, "heap frees in {n} × 30 warm training steps");
}
