//! simplenn: a fast, deterministic, multi-threaded CPU trainer for
//! multilayer perceptrons of any depth on MNIST-format data (ReLU, dropout,
//! softmax, cross-entropy), with hand-written backprop on `matrixmultiply`
//! GEMMs and one rayon pool.
//!
//! Data flows one way, one module per step:
//! [`idx`] (map + validate) → [`data`] (batches; [`augment`] distorts them
//! on the way in) → [`model`] / [`layers`]
//! (forward, loss, backward, fused SGD update; [`thin`] trains the
//! thinned network of batchwise dropout) and [`optim`] (the other
//! optimisers, max-norm) → [`train`] (the loop) → [`eval`] →
//! [`checkpoint`] (safetensors). [`gemm`] and [`idx`] hold the only `unsafe`
//! besides the AVX2 dispatches (and a prefetch) in [`layers`], [`data`],
//! [`augment`] and [`optim`], [`augment`]'s AVX2 resampling, which
//! reads its padded image through computed indices, [`atomic`]'s ioctl
//! that reads a file's immutable and append-only marks, and [`signals`]'
//! calls into libc (`sigaction` and `signal`: the query of an inherited
//! disposition, SIGXFSZ ignored, and the SIGBUS handler that names a data
//! file cut short under its map, with the maps it watches published
//! through atomic pointers; the reads of a signal's `siginfo`). The
//! binary's `main.rs` adds its allocator, which ends the process in one
//! line where an allocation fails.
//!
//! Using a model: [`report`] (what `eval` prints; [`classes`] names the
//! classes where a file or a flag does), [`predict`] (images to
//! inputs), [`metrics`] (the per-epoch log), [`plot`] (its SVG) and
//! [`serve`] (the local page; [`live`] is the trainer's window onto it),
//! wired into subcommands by [`app`] and [`cli`]; [`signals`] turns Ctrl-C,
//! SIGTERM and SIGHUP into a clean stop. [`config`] (the run's plain
//! values, which name [`augment`]'s, [`model`]'s and [`optim`]'s kinds)
//! sits above those three and below [`train`], [`cli`] and [`checkpoint`];
//! [`error`], [`hash`] and [`show`] sit below everything.

pub mod app;
pub mod atomic;
pub mod augment;
pub mod checkpoint;
pub mod classes;
pub mod cli;
pub mod config;
pub mod data;
pub mod error;
pub mod eval;
pub mod gemm;
pub mod hash;
pub mod idx;
pub mod layers;
pub mod live;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod plot;
pub mod predict;
pub mod report;
pub mod serve;
pub mod show;
pub mod signals;
pub mod thin;
pub mod train;
