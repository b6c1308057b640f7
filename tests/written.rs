//! Values a run writes out (metrics log, checkpoint metadata, validation
//! range, predict box), each compared with an independent
//! source: tests a mutation audit found missing (each fails on its mutant).
mod common;
use common::*;
use simplenn::checkpoint;
use simplenn::train::RunOptions;

/// [`SMALL_RUN`], saving no model (the runs here call the library, which
/// would write one into the working directory).
fn flags() -> Vec<&'static str> {
    [SMALL_RUN, &["--no-save"]].concat()
}

/// A run of `flags` on a small MNIST slice, checkpointing to a file of its
/// own (`extra` sets its other options); that checkpoint, loaded.
fn checkpointed(flags: &[&str], extra: RunOptions) -> checkpoint::Checkpoint {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(&dir.path().join("data"), 1200, 300);
    let ck = dir.path().join("ck.st");
    let opts = RunOptions {
        checkpoint: Some(ck.clone()),
        ..extra
    };
    train(&data, flags, opts);
    checkpoint::load_checkpoint(&ck).unwrap()
}

/// Options of a run logging to `log`, the others the defaults.
fn logged(log: &std::path::Path) -> RunOptions {
    RunOptions {
        metrics: Some(log.to_owned()),
        ..RunOptions::default()
    }
}

/// The scores of an epoch's record, bit for bit (not its seconds).
fn scores(r: &simplenn::metrics::EpochRecord) -> (usize, u64, Option<u64>) {
    (
        r.epoch,
        r.train_loss.to_bits(),
        r.val_loss.map(f64::to_bits),
    )
}

#[test]
fn resume_mid_epoch_rewrites_later_epochs_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(&dir.path().join("data"), 1200, 300);
    let (ck, log) = (dir.path().join("ck.st"), dir.path().join("m.jsonl"));
    train(
        &data,
        &flags(),
        RunOptions {
            checkpoint: Some(ck.clone()),
            stop_after_steps: Some(27),
            metrics: Some(log.clone()),
            ..RunOptions::default()
        },
    );
    let saved = checkpoint::load_checkpoint(&ck).unwrap();
    let stopped = simplenn::metrics::read(&log).unwrap();
    assert_eq!(stopped.len(), 1, "the checkpoint is inside epoch 2");
    let mut first = None;
    for _ in 0..2 {
        train(
            &data,
            &flags(),
            RunOptions {
                resume: Some(saved.clone()),
                metrics: Some(log.clone()),
                ..RunOptions::default()
            },
        );
        let mut records = simplenn::metrics::read(&log).unwrap();
        let epochs: Vec<usize> = records.iter().map(|r| r.epoch).collect();
        assert_eq!(epochs, [1, 2, 3]);
        assert_eq!(
            records[0], stopped[0],
            "epoch 1 is the stopped run's record"
        );
        let now: Vec<_> = records.iter().map(scores).collect();
        match &first {
            // Epochs 2 and 3 changed in the file: the next resume must
            // write them again, not keep them.
            None => {
                first = Some(now);
                for r in &mut records[1..] {
                    r.train_loss = 1e3;
                }
                std::fs::write(&log, simplenn::metrics::to_jsonl(&records)).unwrap();
            }
            Some(first) => assert_eq!(&now, first),
        }
    }
}

/// A checkpoint keeps its last whole epoch's training loss, bit for bit as
/// the log has it; resumed with another run's log (other widths, same
/// schedule), or with one that stops short of the checkpoint, the run is
/// refused before it trains, and the log is left as it was.
#[test]
fn a_resumed_run_refuses_another_runs_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(&dir.path().join("data"), 1200, 300);
    let (ck, log, other) = (
        dir.path().join("ck.st"),
        dir.path().join("m.jsonl"),
        dir.path().join("other.jsonl"),
    );
    // Two epochs and 7 steps of the third.
    let steps = 2 * 20 + 7;
    train(
        &data,
        &flags(),
        RunOptions {
            checkpoint: Some(ck.clone()),
            stop_after_steps: Some(steps),
            ..logged(&log)
        },
    );
    let saved = checkpoint::load_checkpoint(&ck).unwrap();
    let own = simplenn::metrics::read(&log).unwrap();
    assert_eq!(
        saved.last_epoch_loss.map(f64::to_bits),
        Some(own[1].train_loss.to_bits())
    );
    let mut wider = flags();
    let at = wider.iter().position(|f| *f == "--hidden").unwrap();
    wider[at + 1] = "24";
    train(&data, &wider, logged(&other));
    let short = dir.path().join("short.jsonl");
    std::fs::write(&short, simplenn::metrics::to_jsonl(&own[..1])).unwrap();
    // Only epochs after the checkpoint's: nothing of it would be kept.
    let later = dir.path().join("later.jsonl");
    let others = simplenn::metrics::read(&other).unwrap();
    std::fs::write(&later, simplenn::metrics::to_jsonl(&others[2..])).unwrap();
    let unsure = "cannot tell that this is the run's log";
    for (path, whose, why) in [
        (&other, "another run's log", "its epoch 2 has train loss"),
        (&short, unsure, "it has no epoch 2"),
        (&later, unsure, "it has no epoch 2"),
    ] {
        let before = std::fs::read(path).unwrap();
        let opts = RunOptions {
            resume: Some(saved.clone()),
            ..logged(path)
        };
        let err = try_train(&data, &flags(), opts)
            .err()
            .expect("another run's log was taken");
        let e = format!("{err:#}");
        assert!(e.contains(whose) && e.contains(why), "{e}");
        assert!(err.is::<simplenn::error::UsageError>(), "{e}: not exit 2");
        assert_eq!(std::fs::read(path).unwrap(), before, "the log was changed");
    }
    // A checkpoint from inside epoch 1 has no loss to compare: a log with
    // records is not its run's.
    let early = dir.path().join("early.st");
    let opts = RunOptions {
        checkpoint: Some(early.clone()),
        stop_after_steps: Some(7),
        ..RunOptions::default()
    };
    train(&data, &flags(), opts);
    let opts = RunOptions {
        resume: Some(checkpoint::load_checkpoint(&early).unwrap()),
        ..logged(&other)
    };
    let e = format!(
        "{:#}",
        try_train(&data, &flags(), opts).err().expect("taken")
    );
    assert!(e.contains("from inside epoch 1"), "{e}");
    // Its own log resumes as before.
    train(
        &data,
        &flags(),
        RunOptions {
            resume: Some(saved),
            ..logged(&log)
        },
    );
}

/// Stopped inside epoch 1, a run whose `--metrics` file held another
/// run's log resumes into it (the `--resume` command its stop prints) and
/// replaces it at its first epoch, as the run not stopped does; the
/// stop itself leaves the file as it was.
#[test]
fn a_run_stopped_in_epoch_1_resumes_into_the_log_it_was_to_replace() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(&dir.path().join("data"), 1200, 300);
    let (ck, log, whole) = (
        dir.path().join("ck.st"),
        dir.path().join("m.jsonl"),
        dir.path().join("whole.jsonl"),
    );
    train(&data, &flags(), logged(&whole));
    let logs_scores = |path: &std::path::Path| -> Vec<(usize, u64, Option<u64>)> {
        let records = simplenn::metrics::read(path).unwrap();
        records.iter().map(scores).collect()
    };
    let mut others = simplenn::metrics::read(&whole).unwrap();
    for r in &mut others {
        r.train_loss = 1e3;
    }
    let before = simplenn::metrics::to_jsonl(&others);
    std::fs::write(&log, &before).unwrap();
    let opts = RunOptions {
        checkpoint: Some(ck.clone()),
        stop_after_steps: Some(7),
        ..logged(&log)
    };
    train(&data, &flags(), opts);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), before);
    let opts = RunOptions {
        resume: Some(checkpoint::load_checkpoint(&ck).unwrap()),
        ..logged(&log)
    };
    train(&data, &flags(), opts);
    assert_eq!(logs_scores(&log), logs_scores(&whole));
}

#[test]
fn test_fields_of_the_log_only_with_test_every_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(&dir.path().join("data"), 1200, 300);
    let log = dir.path().join("m.jsonl");
    for every in [false, true] {
        let r = train(
            &data,
            &[
                "--hidden",
                "16",
                "--epochs",
                "2",
                "--val",
                "200",
                "--no-save",
            ],
            RunOptions {
                metrics: Some(log.clone()),
                test_every_epoch: every,
                ..RunOptions::default()
            },
        );
        let recs = simplenn::metrics::read(&log).unwrap();
        let last = recs.last().unwrap();
        if every {
            assert_eq!(last.test_accuracy, Some(r.test.accuracy()));
            assert_eq!(last.test_loss, Some(r.test.loss));
        } else {
            assert!(recs
                .iter()
                .all(|r| r.test_accuracy.is_none() && r.test_loss.is_none()));
        }
        assert_eq!(
            last.val_accuracy,
            r.epochs.last().unwrap().val.as_ref().map(|m| m.accuracy())
        );
    }
}

#[test]
fn epoch_lr_is_the_last_steps() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(&dir.path().join("data"), 1200, 300);
    // 1000 training images, batch 50: 20 steps an epoch, 60 in all.
    let r = train(&data, &flags(), RunOptions::default());
    // The cosine written out here, not taken from the crate: step t of T
    // (from 0) runs at lr·½(1 + cos(πt/T)).
    let want = [19u32, 39, 59]
        .map(|t| 0.1 * 0.5 * (1.0 + (std::f64::consts::PI * f64::from(t) / 60.0).cos()));
    let got: Vec<f32> = r.epochs.iter().map(|e| e.lr).collect();
    assert_eq!(got.len(), 3);
    for (g, w) in got.iter().zip(want) {
        assert!((f64::from(*g) - w).abs() <= 1e-6 * w, "{got:?} vs {want:?}");
    }
}

#[test]
fn checkpoint_records_every_flag_as_given() {
    let flags = [
        "--hidden",
        "16,8",
        "--epochs",
        "3",
        "--batch-size",
        "50",
        "--val",
        "200",
        "--seed",
        "9",
        "--optimizer",
        "adam",
        "--lr",
        "0.002",
        "--beta1",
        "0.8",
        "--beta2",
        "0.99",
        "--eps",
        "1e-6",
        "--weight-decay",
        "0.001",
        "--no-decay-bias",
        "--max-norm",
        "3",
        "--dropout",
        "0.3",
        "--input-dropout",
        "0.1",
        "--dropout-mask",
        "batch",
        "--augment",
        "shift:2",
        "--schedule",
        "constant",
        "--no-save",
    ];
    let stop = RunOptions {
        stop_after_steps: Some(5),
        ..RunOptions::default()
    };
    let s = checkpointed(&flags, stop).shape;
    use simplenn::config::{DropoutMask, Schedule};
    assert_eq!(
        (s.hidden.clone(), s.epochs, s.batch_size, s.val, s.seed),
        (vec![16, 8], 3, 50, 200, 9)
    );
    assert_eq!(
        (s.optimizer, s.lr, s.beta1, s.beta2, s.eps),
        (simplenn::optim::Kind::Adam, 0.002, 0.8, 0.99, 1e-6)
    );
    assert_eq!(
        (s.weight_decay, s.decay_bias, s.max_norm),
        (0.001, false, Some(3.0))
    );
    assert_eq!(
        (s.dropout, s.input_dropout, s.dropout_mask),
        (0.3, 0.1, DropoutMask::Batch)
    );
    assert_eq!(
        (s.augment, s.schedule),
        (simplenn::augment::Augment::Shift(2), Schedule::Constant)
    );
}

#[test]
fn data_identity_sees_labels_and_pixels() {
    use simplenn::data::{Mnist, TRAIN_IMAGES, TRAIN_LABELS};
    let dir = tempfile::tempdir().unwrap();
    let a = small_mnist(&dir.path().join("a"), 300, 50);
    let md5 = |d: &std::path::Path| checkpoint::data_md5(&Mnist::open(d).unwrap().train);
    let base = md5(&a);
    for (file, at) in [(TRAIN_LABELS, 8), (TRAIN_IMAGES, 16 + 300)] {
        let b = small_mnist(&dir.path().join("b"), 300, 50);
        let path = b.join(file);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[at] ^= 1; // a label stays below 10
        std::fs::write(&path, bytes).unwrap();
        assert_ne!(md5(&b), base, "{file} changed, same data_md5");
    }
}

#[test]
fn checkpoint_metadata_that_contradicts_its_tensors_is_refused() {
    use simplenn::model::{Dims, Init, Params};
    let stop = RunOptions {
        stop_after_steps: Some(5),
        ..RunOptions::default()
    };
    let c = checkpointed(&flags(), stop);
    let p = Params::init(Dims::mnist(&[8]), Init::He, 1);
    let state = checkpoint::State {
        velocity: &p,
        exp_avg_sq: None,
    };
    let bytes = checkpoint::checkpoint_bytes(&p, state, &c.shape, 5, (28, 28), None, None);
    let Err(e) = checkpoint::checkpoint_from_bytes(&bytes, std::path::Path::new("c")) else {
        panic!("a checkpoint whose metadata contradicts its tensors was accepted");
    };
    let e = e.to_string();
    assert!(
        e.contains("metadata says hidden 16") && e.contains("damaged"),
        "{e}"
    );
}

#[test]
fn checkpoint_every_also_writes_after_the_last_epoch() {
    // 3 epochs of 20 steps, a checkpoint every 2: the last is after step 60.
    let every = RunOptions {
        checkpoint_every: Some(2),
        ..RunOptions::default()
    };
    assert_eq!(checkpointed(&flags(), every).steps, 60);
}

#[test]
fn validation_is_the_last_val_images_of_the_training_file() {
    use simplenn::eval::Evaluator;
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(&dir.path().join("data"), 1200, 300);
    let r = train(&data, &flags(), RunOptions::default());
    let m = simplenn::data::Mnist::open(&data).unwrap();
    let got = r.epochs.last().unwrap().val.clone().unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let want =
        pool.install(|| Evaluator::new(&r.params, 1).evaluate(&r.params, &m.train, 1000..1200));
    assert_eq!((got.n, got.correct), (want.n, want.correct));
    assert!(
        (got.loss - want.loss).abs() < 1e-9,
        "{} vs {}",
        got.loss,
        want.loss
    );
    // and not the first 200, which the model trained on
    let first = pool.install(|| Evaluator::new(&r.params, 1).evaluate(&r.params, &m.train, 0..200));
    assert!((got.loss - first.loss).abs() > 1e-6);
}

#[test]
fn a_batchwise_step_that_loses_a_layer_keeps_the_mask() {
    use simplenn::gemm::Beta;
    use simplenn::layers::DropMask;
    use simplenn::model::{forward_backward, Dims, Init, Params, PassOpts, Workspace};
    use simplenn::optim::Optimizer;
    use simplenn::thin::Thinned;
    use simplenn::train::{Regularisers, Trainer};
    let dir = tempfile::tempdir().unwrap();
    let data = common::random_dataset(dir.path(), 300);
    let dims = Dims::mnist(&[16, 3]);
    let init = Params::init(dims.clone(), Init::He, 3);
    let idx: Vec<u32> = (0..40).map(|i| (i * 7) as u32).collect();
    let (p, seed, lr) = (0.5f32, 5u64, 0.1f32);
    let s = (0..200u64)
        .find(|&s| !Thinned::new(&dims).draw(DropMask::new(seed, s), p))
        .expect("a step that drops the 3-unit layer");
    let reg = Regularisers {
        dropout: p,
        per_batch: true,
        ..Regularisers::default()
    };
    let mut t = Trainer::with(init.clone(), 1, Optimizer::sgd(0.0), reg, seed);
    t.steps = s;
    t.step(&data, &idx, lr);
    let mut pp = init.clone();
    let mut g = Params::zeros(dims.clone());
    let mut ws = Workspace::new(&dims, idx.len());
    let load =
        |rows: std::ops::Range<usize>, x: &mut [f32], y: &mut [u8]| data.gather(&idx[rows], x, y);
    let opts = PassOpts {
        inv_batch: 1.0 / idx.len() as f32,
        dropout: Some((p, DropMask::new(seed, s).per_batch())),
        input_dropout: None,
        beta: Beta::Overwrite,
        lr: None,
        parts: 1,
        pass1: None,
    };
    forward_backward(&mut pp, &mut ws, idx.len(), &load, &mut g, opts);
    let mut w = init.clone();
    for (w, g) in w.data.iter_mut().zip(&g.data) {
        *w -= lr * g;
    }
    assert_eq!(t.params, w);
}

#[test]
fn predict_box_scales_with_the_side() {
    use simplenn::predict::{to_input, Gray};
    // A dark bar 10 wide, 60 tall on white: its height becomes the box.
    let g = Gray {
        width: 100,
        height: 100,
        pixels: (0..100 * 100)
            .map(|i| {
                if (20..30).contains(&(i % 100)) && (10..70).contains(&(i / 100)) {
                    0.0
                } else {
                    255.0
                }
            })
            .collect(),
        turned: false,
    };
    for (side, bx) in [(8usize, 6usize), (12, 9), (28, 20)] {
        let x = to_input(&g, side, "bar").unwrap();
        let rows = (0..side)
            .filter(|y| x[y * side..(y + 1) * side].iter().any(|&v| v > 0.0))
            .count();
        assert_eq!(rows, bx, "side {side}");
    }
}

#[test]
fn an_update_that_breaks_the_weights_on_an_epochs_last_step_is_caught_before_the_checkpoint() {
    // One step an epoch: its loss is finite (computed before the update),
    // and an lr no flag allows (the CLI stops at 100) makes the weights
    // infinite or NaN, so only the end-of-epoch check can see them.
    let dir = tempfile::tempdir().unwrap();
    let (cfg, mnist) = breaking_run(dir.path(), 200);
    let ck = dir.path().join("ck.st");
    let opts = RunOptions {
        checkpoint: Some(ck.clone()),
        checkpoint_every: Some(1),
        ..RunOptions::default()
    };
    let (d, e) = diverged(&cfg, &mnist, opts);
    assert_eq!((d.epoch, d.step), (1, 1), "{e}");
    assert!(d.loss.is_nan(), "{e}");
    assert!(
        e.starts_with("parameter ") && e.contains("training diverged"),
        "{e}"
    );
    assert!(!ck.exists(), "a checkpoint of broken weights was written");
}

/// Adam's L2 weight decay, huge, overflows `exp_avg_sq` with the weights
/// still finite (and then frozen: `m / √∞ = 0`). The run stops before its
/// checkpoint, naming the entry and the flag, rather than saving a file
/// `--resume` refuses.
#[test]
fn an_optimiser_state_past_f32_stops_the_run_before_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(&dir.path().join("data"), 400, 50);
    let ck = dir.path().join("ck.st");
    let adam = ["--optimizer", "adam", "--weight-decay", "1e30"];
    let all: Vec<&str> = [&["--data", data.to_str().unwrap()], &adam[..], &flags()[..]].concat();
    let cfg = config(&all);
    let mnist = simplenn::data::Mnist::open(&data).unwrap();
    let opts = RunOptions {
        checkpoint: Some(ck.clone()),
        checkpoint_every: Some(1),
        ..RunOptions::default()
    };
    let (d, e) = diverged(&cfg, &mnist, opts);
    assert_eq!(d.measured, simplenn::train::OPTIMISER_STATE, "{e}");
    assert_eq!((d.epoch, d.step), (1, 4), "{e}");
    assert!(e.starts_with("exp_avg_sq entry "), "{e}");
    assert!(
        e.contains("finite weights, but an optimiser state that is not")
            && e.contains("try a lower --weight-decay (now 1e30: adam adds it"),
        "{e}"
    );
    assert!(!ck.exists(), "a checkpoint of broken state was written");
}

/// The line a stopped run ends with names the whole epochs done, not the
/// epoch it stopped inside.
#[test]
fn a_run_stopped_inside_an_epoch_names_the_epochs_done() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(&dir.path().join("data"), 1200, 300);
    let ck = dir.path().join("ck.st");
    let d = data.to_str().unwrap();
    let cfg = config(&[&["--data", d, "--no-progress"], &flags()[..]].concat());
    let mnist = simplenn::data::Mnist::open(&data).unwrap();
    let opts = RunOptions {
        checkpoint: Some(ck.clone()),
        stop_after_steps: Some(27),
        ..RunOptions::default()
    };
    let mut out = Vec::new();
    simplenn::train::train_with(&cfg, &mnist, opts, &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("stopped after step 27 of 60 (epoch 1 done); checkpoint saved to"),
        "{out}"
    );
}

/// The divergence a run with `opts` stops with, and its error line.
fn diverged(
    cfg: &simplenn::config::TrainConfig,
    mnist: &simplenn::data::Mnist,
    opts: RunOptions,
) -> (simplenn::train::Diverged, String) {
    let Err(e) = simplenn::train::train_with(cfg, mnist, opts, &mut Vec::new()) else {
        panic!("weights past f32's range trained on");
    };
    let text = format!("{e:#}");
    match e.downcast::<simplenn::train::Diverged>() {
        Ok(d) => (d, text),
        Err(e) => panic!("not a divergence: {e:#}"),
    }
}

/// A run on `n` images of [`small_mnist`] with batch 200, no validation,
/// constant lr and an lr no flag allows (infinite: the first update makes
/// the weights non-finite); the config and data.
fn breaking_run(
    dir: &std::path::Path,
    n: usize,
) -> (simplenn::config::TrainConfig, simplenn::data::Mnist) {
    let data = small_mnist(&dir.join("data"), n, 50);
    let mut cfg = config(&[
        "--data",
        data.to_str().unwrap(),
        "--no-progress",
        "--hidden",
        "16",
        "--epochs",
        "3",
        "--batch-size",
        "200",
        "--val",
        "0",
        "--schedule",
        "constant",
        "--no-save",
    ]);
    cfg.lr = f32::INFINITY;
    (cfg, simplenn::data::Mnist::open(&data).unwrap())
}

/// Divergence names the step (from 1) whose loss was not finite.
#[test]
fn divergence_inside_an_epoch_names_the_step_from_one() {
    let dir = tempfile::tempdir().unwrap();
    // Two steps an epoch: the first breaks the weights, the second's loss is NaN.
    let (cfg, mnist) = breaking_run(dir.path(), 400);
    let (d, e) = diverged(&cfg, &mnist, RunOptions::default());
    assert_eq!((d.epoch, d.step), (1, 2), "{e}");
}

/// Weights broken by an epoch's last, partial batch are blamed on that
/// batch's step: the epoch's steps rounded up.
#[test]
fn broken_weights_after_a_partial_last_batch_name_its_step() {
    let dir = tempfile::tempdir().unwrap();
    // 250 images at batch 200: steps of 200 and 50. Resumed after the
    // first, so that only the second's update (to infinite weights) runs.
    let (cfg, mnist) = breaking_run(dir.path(), 250);
    let opts = resumed_after_one_step(&cfg, &mnist, 0.0);
    let (d, e) = diverged(&cfg, &mnist, opts);
    assert_eq!((d.epoch, d.step), (1, 2), "{e}");
    assert!(d.loss.is_nan(), "{e}");
}

/// `cfg`'s run resumed after its first step, from its initial weights,
/// every momentum entry `velocity`.
fn resumed_after_one_step(
    cfg: &simplenn::config::TrainConfig,
    mnist: &simplenn::data::Mnist,
    velocity: f32,
) -> RunOptions {
    use simplenn::checkpoint::{Checkpoint, RunShape};
    use simplenn::model::Params;
    let dims = simplenn::train::dims_for(cfg, mnist);
    let mut v = Params::zeros(dims.clone());
    v.data.fill(velocity);
    let resume = Checkpoint {
        params: Params::init(dims, cfg.init, cfg.seed),
        velocity: v,
        exp_avg_sq: None,
        shape: RunShape::of(cfg, mnist),
        steps: 1,
        so_far: None,
        last_epoch_loss: None,
        habits: Default::default(),
    };
    RunOptions {
        resume: Some(resume),
        ..RunOptions::default()
    }
}

/// Weights made infinite by an epoch's last update are caught at that
/// epoch's end, not at the next epoch's first loss: every velocity entry
/// 10 at the largest finite rate sends the weights to −inf (none to NaN,
/// so a check for NaN alone would pass them).
#[test]
fn infinite_weights_at_an_epochs_end_are_caught_there() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cfg, mnist) = breaking_run(dir.path(), 250);
    cfg.lr = f32::MAX;
    let opts = resumed_after_one_step(&cfg, &mnist, 10.0);
    let (d, e) = diverged(&cfg, &mnist, opts);
    assert_eq!((d.epoch, d.step), (1, 2), "{e}");
    assert!(e.starts_with("parameter 0 is -inf: "), "{e}");
}

/// Weights broken at an epoch's end are not blamed on an extreme dropout
/// rate: no batch's loss was measured there, so only the learning rate
/// is named.
#[test]
fn broken_weights_at_an_epochs_end_name_no_dropout_rate() {
    let dir = tempfile::tempdir().unwrap();
    // One step an epoch: its update breaks the weights, and the epoch ends.
    let (mut cfg, mnist) = breaking_run(dir.path(), 200);
    cfg.dropout = 0.995;
    let (d, e) = diverged(&cfg, &mnist, RunOptions::default());
    assert_eq!((d.epoch, d.step), (1, 1), "{e}");
    assert_eq!(d.extreme_dropout, None, "{e}");
    assert!(
        e.contains("try a lower --lr") && !e.contains("--dropout"),
        "{e}"
    );
}

/// `--stop-after` stops at the end of an epoch whose last batch is
/// partial: its steps are the training images over the batch, rounded up.
#[test]
fn stop_after_counts_a_partial_last_batch() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(&dir.path().join("data"), 1200, 300);
    let ck = dir.path().join("ck.st");
    // 1,000 training images at batch 300: 4 steps an epoch, the last of 100.
    let o = simplenn(&[
        "--data",
        data.to_str().unwrap(),
        "--hidden",
        "16",
        "--epochs",
        "3",
        "--batch-size",
        "300",
        "--val",
        "200",
        "--stop-after",
        "1",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--no-save",
        "--no-progress",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("stopped after step 4 of 12 (epoch 1 done)"),
        "{}",
        stdout(&o)
    );
    let c = checkpoint::load_checkpoint(&ck).unwrap();
    assert_eq!((c.steps, c.so_far), (4, None));
}

/// A file name with a line break and an escape sequence, in the lines that
/// report it: written out (`\n`, `\u{1b}`), so that it cannot split the
/// line or recolour the terminal.
#[test]
fn reported_paths_cannot_split_or_colour_a_line() {
    let t = tempfile::tempdir().unwrap();
    let data = synthetic(&t.path().join("d"), 4, 3, 0, [200, 30]);
    let model = t.path().join("x\x1b[31mred\nnext.safetensors");
    let o = tiny_run(&data, &model);
    assert!(o.status.success(), "{:?}", error_lines(&o));
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let eval = simplenn(&["eval", "--model", &s(&model), "--data", &s(&data)]);
    assert!(eval.status.success(), "{:?}", error_lines(&eval));
    for out in [stdout(&o), stdout(&eval)] {
        assert!(!out.contains('\x1b'), "{out}");
        assert!(out.contains("x\\u{1b}[31mred\\nnext.safetensors"), "{out}");
    }
}
