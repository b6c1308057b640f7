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
//! [`modelfile`] (safetensors; [`checkpoint`] adds the optimiser's
//! state to resume a run). [`gemm`] and [`idx`] hold the only `unsafe`
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
//! wired into subcommands by [`app`] and [`cli`] ([`usage`] words what
//! the command line gets wrong, [`output`] is standard output as the
//! binary writes it); [`signals`] turns Ctrl-C,
//! SIGTERM and SIGHUP into a clean stop. [`config`] (the run's plain
//! values, which name [`augment`]'s, [`model`]'s and [`optim`]'s kinds)
//! sits above those three and below [`train`], [`cli`] and [`checkpoint`];
//! [`error`], [`hash`] and [`show`] sit below everything.
//!
//! # As a library
//!
//! The binary is a thin layer over this crate, and a program trains as it
//! does by giving it the same flags, checked and resolved as on the
//! command line (a [`config::TrainConfig`] built by hand is checked too,
//! field by field, when training starts). The example uses `clap` (its
//! `Parser` trait) and `anyhow` directly, so a program that copies it adds
//! `clap = "4"` and `anyhow = "1"` to its dependencies:
//!
//! ```no_run
//! use clap::Parser;
//! use simplenn::{cli, data, modelfile, predict, train};
//!
//! # fn main() -> anyhow::Result<()> {
//! let flags = ["simplenn", "--hidden", "128", "--epochs", "3", "--no-save"];
//! let cli::Command::Train(mut args) = cli::Cli::try_parse_from(flags)?.into_command() else {
//!     unreachable!("no subcommand given: training")
//! };
//! // The data directory as the binary finds it: --data, else
//! // $SIMPLENN_DATA, ./data/mnist, or the source tree's copy.
//! args.data = Some(data::resolve_dir(args.data.as_deref())?);
//! let cfg = args.into_config()?;
//! let mnist = data::Mnist::open_with_classes(&cfg.data_dir, cfg.classes)?;
//! let cfg = cli::fit_to_data(&cfg, mnist.train.len(), mnist.train.side(), false)?;
//! // What the binary prints goes to `out` (here nowhere). The run saves its
//! // model where the flags say, as the binary does (model.safetensors by
//! // default; `--no-save` here, since this program saves it itself).
//! let report = train::train(&cfg, &mnist, &mut std::io::sink())?;
//! println!("test accuracy {:.2} %", 100.0 * report.test.accuracy());
//! let image = mnist.train.side(); // (rows, cols), kept in the file for `predict`
//! modelfile::save_model("m.safetensors".as_ref(), &report.params, image, None)?;
//!
//! let model = modelfile::load_model("m.safetensors".as_ref())?;
//! let mut x = vec![0.0; model.dims.d()]; // (D,) pixels in [0, 1]
//! data::to_unit(mnist.test.image(0), &mut x);
//! let guess = predict::predict_input(&model, &x, "test image 0");
//! println!("{} ({:.3})", guess.digit, guess.probability);
//! # Ok(())
//! # }
//! ```

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
pub mod memory;
pub mod metrics;
pub mod model;
pub mod modelfile;
pub mod optim;
pub mod output;
pub mod plot;
pub mod predict;
pub mod report;
pub mod serve;
pub mod show;
pub mod signals;
pub mod thin;
pub mod train;
pub mod usage;
