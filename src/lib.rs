//! simplenn: a fast, deterministic, multi-threaded CPU trainer for the
//! two-layer MNIST network `784 → H → 10` (ReLU, softmax, cross-entropy),
//! with hand-written backprop on `matrixmultiply` GEMMs and one rayon pool.
//!
//! Data flows one way, one module per step:
//! [`idx`] (map + validate) → [`data`] (batches) → [`model`] / [`layers`]
//! (forward, loss, backward, fused SGD update) and [`optim`] (the other
//! optimisers, max-norm) → [`train`] (the loop) → [`eval`] →
//! [`checkpoint`] (safetensors). [`gemm`] and [`idx`] hold the only `unsafe`
//! besides the AVX2 dispatches (and a prefetch) in [`layers`], [`data`] and
//! [`optim`].
//!
//! Using a model: [`report`] (what `eval` prints), [`predict`] (images to
//! inputs), [`metrics`] (the per-epoch log) and [`plot`] (its SVG), wired
//! into subcommands by [`app`] and [`cli`].

pub mod app;
pub mod atomic;
pub mod augment;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod data;
pub mod eval;
pub mod gemm;
pub mod idx;
pub mod layers;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod plot;
pub mod predict;
pub mod report;
pub mod serve;
pub mod train;
