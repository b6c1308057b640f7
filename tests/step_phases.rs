//! `examples/step_phases.rs` times a step phase by phase with the public
//! functions `RowPass::by_layer` calls, in its order: a copy of the step,
//! which would time something else once the step changed. Here its step
//! must leave the weights `Trainer::step` leaves, bit for bit.

mod common;

#[allow(dead_code)]
#[path = "../examples/step_phases.rs"]
mod step_phases;

use simplenn::data::Mnist;
use simplenn::model::{Dims, Init, Params, Workspace};
use simplenn::train::Trainer;

#[test]
fn the_timed_phases_are_the_trainers_step() {
    let t = tempfile::tempdir().unwrap();
    let data = Mnist::open(&common::small_mnist(t.path(), 512, 10)).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for hidden in [&[32][..], &[24, 16]] {
        for parts in [1, 2] {
            let dims = Dims::new(784, hidden, 10);
            let mut params = Params::init(dims.clone(), Init::He, 1);
            let mut grads = Params::zeros(dims.clone());
            let mut ws = Workspace::new(&dims, 128);
            // The trainer of the example's settings: momentum 0.9, dropout
            // 0.2, seed 1, lr 0.001.
            let init = Params::init(dims.clone(), Init::He, 1);
            let mut trainer = Trainer::new(init, parts, 0.9, 0.2, 1);
            pool.install(|| {
                for step in 0..3u64 {
                    // Rows out of order, as a shuffled epoch's are.
                    let rows: Vec<u32> = (0..128)
                        .map(|i| (i * 37 + step as u32 * 128) % 512)
                        .collect();
                    let p = (&mut params, &mut grads, &mut ws);
                    step_phases::phased_step(&data.train, &rows, p, parts, step, &mut || {});
                    trainer.step(&data.train, &rows, 0.001);
                }
            });
            let same = params
                .data
                .iter()
                .zip(&trainer.params.data)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "784-{hidden:?}-10, {parts} parts: the weights differ");
        }
    }
}
