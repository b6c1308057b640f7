//! `--resume`: a run stopped after epoch k (or inside an epoch) and resumed
//! from its checkpoint ends with the same weights, byte for byte, and
//! reports the same epoch statistics, as a run never stopped, whatever the
//! optimiser; contradicting flags are refused;
//! checkpoints are files of their own that still load as models.

mod common;

use std::path::Path;

use common::*;
use simplenn::train::RunOptions;
use simplenn::{checkpoint, modelfile};

/// A run with [`SMALL_RUN`] and `opt` stopped at the end of epoch 1 and inside
/// epoch 2, then resumed on another thread count, ends with the bytes of
/// the run never stopped.
fn stop_and_resume_is_bit_identical(opt: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(&dir.path().join("data"), 1200, 300);
    let (full, ck, resumed) = (
        dir.path().join("full.safetensors"),
        dir.path().join("ck.safetensors"),
        dir.path().join("resumed.safetensors"),
    );
    let with = |extra: &[&str]| -> Vec<String> {
        SMALL_RUN
            .iter()
            .chain(opt)
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    let run = |flags: Vec<String>, opts| {
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        train(&data, &flags, opts)
    };

    let a = run(
        with(&["--threads", "2", "--save", full.to_str().unwrap()]),
        RunOptions::default(),
    );
    assert!(!a.stopped);
    let steps_per_epoch = 1000 / 50;

    // Stop at the end of epoch 1, and inside epoch 2 (step 27 of 60).
    for stop in [steps_per_epoch, steps_per_epoch + 7] {
        let b = run(
            with(&["--threads", "1", "--no-save"]),
            RunOptions {
                checkpoint: Some(ck.clone()),
                stop_after_steps: Some(stop),
                ..RunOptions::default()
            },
        );
        assert!(b.stopped);
        let saved = checkpoint::load_checkpoint(&ck).unwrap();
        assert_eq!(saved.steps, stop);
        assert_ne!(saved.params, a.params);
        assert_eq!(
            saved.exp_avg_sq.is_some(),
            opt.contains(&"adam") || opt.contains(&"adamw")
        );
        assert_eq!(saved.so_far.is_some(), stop % steps_per_epoch != 0);
        // Resumed and stopped again before a batch (a Ctrl-C at once): the
        // new checkpoint still carries the epoch's sums.
        let ck2 = dir.path().join("ck2.safetensors");
        let again = run(
            with(&["--threads", "2", "--no-save"]),
            RunOptions {
                resume: Some(saved.clone()),
                checkpoint: Some(ck2.clone()),
                stop_after_steps: Some(stop),
                ..RunOptions::default()
            },
        );
        assert!(again.stopped);
        let saved2 = checkpoint::load_checkpoint(&ck2).unwrap();
        assert_eq!((saved2.steps, saved2.so_far), (saved.steps, saved.so_far));
        if stop % steps_per_epoch != 0 {
            // From a checkpoint without the sums (an older version's), a
            // later stop in the same epoch must not write partial ones.
            let older = checkpoint::Checkpoint {
                so_far: None,
                ..saved.clone()
            };
            let again = run(
                with(&["--threads", "2", "--no-save"]),
                RunOptions {
                    resume: Some(older),
                    checkpoint: Some(ck2.clone()),
                    stop_after_steps: Some(stop + 3),
                    ..RunOptions::default()
                },
            );
            assert!(again.stopped);
            let saved3 = checkpoint::load_checkpoint(&ck2).unwrap();
            assert_eq!((saved3.steps, saved3.so_far), (stop + 3, None));
        }
        // Resume on another thread count: the weights must not notice.
        let c = run(
            with(&["--threads", "3", "--save", resumed.to_str().unwrap()]),
            RunOptions {
                resume: Some(saved),
                ..RunOptions::default()
            },
        );
        assert!(!c.stopped);
        assert_eq!(c.params, a.params, "{opt:?}: stop at step {stop}");
        // The epochs it reports are the unbroken run's, the one it resumed
        // inside included (its sums so far came with the checkpoint).
        let first = (stop / steps_per_epoch) as usize + 1;
        let stats = |s: &simplenn::metrics::EpochStats| {
            let val = s.val.as_ref().map(|m| (m.loss.to_bits(), m.correct));
            (
                s.epoch,
                s.train_loss.to_bits(),
                s.train_accuracy.to_bits(),
                val,
            )
        };
        let want: Vec<_> = a
            .epochs
            .iter()
            .filter(|s| s.epoch >= first)
            .map(stats)
            .collect();
        let got: Vec<_> = c.epochs.iter().map(stats).collect();
        assert_eq!(
            got, want,
            "{opt:?}: epoch statistics after stopping at step {stop}"
        );
        assert_eq!(
            std::fs::read(&full).unwrap(),
            std::fs::read(&resumed).unwrap(),
            "{opt:?}: saved model bytes differ after stopping at step {stop}"
        );
    }
}

#[test]
fn resumed_run_is_bit_identical_to_uninterrupted() {
    stop_and_resume_is_bit_identical(&[]);
}

#[test]
fn resumed_adam_is_bit_identical() {
    // Weight decay, max-norm and input dropout ride along.
    stop_and_resume_is_bit_identical(&[
        "--optimizer",
        "adam",
        "--lr",
        "0.003",
        "--weight-decay",
        "0.001",
        "--max-norm",
        "2",
        "--input-dropout",
        "0.1",
    ]);
}

#[test]
fn resumed_batchwise_dropout_is_bit_identical() {
    // The thinned network's masks come from (seed, step), like the others.
    stop_and_resume_is_bit_identical(&["--dropout-mask", "batch", "--dropout", "0.5"]);
}

#[test]
fn resumed_adamw_and_nesterov_are_bit_identical() {
    stop_and_resume_is_bit_identical(&["--optimizer", "adamw", "--no-decay-bias"]);
    stop_and_resume_is_bit_identical(&["--optimizer", "nesterov", "--weight-decay", "0.0005"]);
}

/// The distortions are redrawn from (seed, epoch, image), so a run resumed
/// inside an epoch distorts its remaining images as the unbroken run did.
#[test]
fn resumed_augmented_runs_are_bit_identical() {
    stop_and_resume_is_bit_identical(&["--augment", "elastic"]);
    stop_and_resume_is_bit_identical(&["--augment", "shift:2"]);
}

/// The one error line of a run refused as a usage error (exit status 2).
fn usage_line(o: &std::process::Output, what: &str) -> String {
    assert_eq!(o.status.code(), Some(2), "{what}: {}", stderr(o));
    let err = error_lines(o);
    assert_eq!(err.len(), 1, "{what}: {err:?}");
    err[0].clone()
}

#[test]
fn cli_stop_resume_metrics_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(&dir.path().join("data"), 1200, 300);
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    let (full, ck, resumed, metrics) = (p("full.st"), p("ck.st"), p("resumed.st"), p("m.jsonl"));
    let base: Vec<&str> = ["train", "--data", data.to_str().unwrap()]
        .iter()
        .chain(SMALL_RUN)
        .copied()
        .collect();
    let run = |extra: &[&str]| simplenn(&base.iter().chain(extra).copied().collect::<Vec<_>>());
    // Without the test's flags: what a checkpoint leaves out comes from it.
    let train_on = |dir: &Path, extra: &[&str]| {
        let args = ["train", "--data", dir.to_str().unwrap()];
        simplenn(&args.iter().chain(extra).copied().collect::<Vec<_>>())
    };

    let o = run(&["--save", &full]);
    assert!(o.status.success(), "{}", stderr(&o));

    let o = run(&[
        "--stop-after",
        "1",
        "--checkpoint",
        &ck,
        "--save",
        &resumed,
        "--metrics",
        &metrics,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(&format!(
        "checkpoint saved to {ck}; continue with --resume {ck}"
    )));
    assert!(
        !Path::new(&resumed).exists(),
        "a stopped run saved its unfinished model"
    );
    assert_eq!(
        std::fs::read_to_string(&metrics).unwrap().lines().count(),
        1
    );

    // A flag that contradicts the checkpoint: usage error, one line, nothing written.
    let before = std::fs::read(&ck).unwrap();
    let o = train_on(
        &data,
        &["--resume", &ck, "--hidden", "32", "--save", &resumed],
    );
    let line = usage_line(&o, "--hidden 32");
    assert!(
        line.contains("--hidden 32 (checkpoint: 16) contradicts the checkpoint"),
        "{line}"
    );
    assert_eq!(std::fs::read(&ck).unwrap(), before);
    for (flags, says) in [
        (
            &["--optimizer", "adam"][..],
            "--optimizer adam (checkpoint: sgd) contradicts the checkpoint",
        ),
        (
            &["--weight-decay", "0.1"],
            "--weight-decay 0.1 (checkpoint: 0) contradicts",
        ),
        (&["--max-norm", "3"], "--max-norm 3 (checkpoint: none)"),
        (
            &["--input-dropout", "0.2"],
            "--input-dropout 0.2 (checkpoint: 0)",
        ),
        (
            &["--no-decay-bias"],
            "--no-decay-bias given (checkpoint: not given)",
        ),
        (
            &["--dropout-mask", "batch"],
            "--dropout-mask batch (checkpoint: image)",
        ),
    ] {
        let mut a = vec!["--resume", &ck, "--no-save"];
        a.extend_from_slice(flags);
        let o = train_on(&data, &a);
        let line = usage_line(&o, &format!("{flags:?}"));
        assert!(line.contains(says), "{line}");
    }
    assert_eq!(std::fs::read(&ck).unwrap(), before);

    // --stop-after counts from the run's start: a value the checkpoint has
    // already reached would stop at once, so it is refused with the range.
    let o = train_on(&data, &["--resume", &ck, "--no-save", "--stop-after", "1"]);
    let line = usage_line(&o, "--stop-after 1");
    assert!(
        line.contains("--stop-after 1: ")
            && line.contains("has already trained 1 of the run's")
            && line.contains("; give 2, or leave it out to train to the end"),
        "{line}"
    );
    // One at or past the run's end: no lower bound in the message, which
    // the checkpoint sets (here 2), not 1.
    let o = train_on(&data, &["--resume", &ck, "--no-save", "--stop-after", "3"]);
    let line = usage_line(&o, "--stop-after 3");
    assert!(
        line.contains("--stop-after 3: must be below the run's 3 epochs"),
        "{line}"
    );
    assert_eq!(std::fs::read(&ck).unwrap(), before);
    // A finished run's checkpoint has no epoch left to stop after: not
    // "train to the end", where the end is reached.
    let done = p("done.st");
    let o = run(&["--checkpoint", &done, "--no-save"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = train_on(
        &data,
        &["--resume", &done, "--no-save", "--stop-after", "2"],
    );
    assert_eq!(
        usage_line(&o, "--stop-after 2 after the run's end"),
        format!("simplenn: error: --stop-after 2: {done} has trained all 3 of the run's epochs, so there is none left to stop after; leave --stop-after out to score its test set, or start a new run without --resume to train more")
    );
    // With a model to save, leaving it out saves one too: said so.
    let again = p("again.st");
    let o = train_on(
        &data,
        &["--resume", &done, "--save", &again, "--stop-after", "2"],
    );
    assert!(
        usage_line(&o, "--stop-after 2 with --save")
            .contains("leave --stop-after out to score its test set and save its model, or start"),
        "{}",
        stderr(&o)
    );

    // Other data than the checkpoint's: refused too.
    let other = small_mnist(&dir.path().join("other"), 1300, 300);
    let o = train_on(&other, &["--resume", &ck, "--no-save"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("train_images 1200 vs 1300"),
        "{}",
        stderr(&o)
    );
    // It names where this run's data came from, and the flag to change it.
    assert!(
        stderr(&o).contains(&format!(
            "the data now is {}: pass --data naming the checkpoint's data set",
            other.display()
        )),
        "{}",
        stderr(&o)
    );
    // The same bytes read as 14 × 56 images (the MD5 of the bytes agrees).
    let rect = dir.path().join("rect");
    std::fs::create_dir(&rect).unwrap();
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        if bytes[3] == 3 {
            bytes[8..16].copy_from_slice(&[0, 0, 0, 14, 0, 0, 0, 56]);
        }
        std::fs::write(rect.join(path.file_name().unwrap()), bytes).unwrap();
    }
    let o = train_on(&rect, &["--resume", &ck, "--no-save"]);
    let line = usage_line(&o, "14 x 56 images");
    assert!(
        line.contains("checkpoint vs now: data_image 28x28 vs 14x56)"),
        "{line}"
    );
    // Other data that the checkpoint's flags do not even fit: labels past
    // its 10 classes, fewer images than its batch. The data is named as
    // the difference, not a --classes or --batch-size the checkpoint would
    // then refuse.
    // With as many images as the checkpoint's, the difference is in their
    // bytes (MD5) or their size.
    for (name, n, classes, (rows, cols), says) in [
        ("forty", 200u32, 40u32, (28, 28), "train_images 1200 vs 200"),
        ("few", 20, 10, (28, 28), "train_images 1200 vs 20"),
        ("same count", 1200, 40, (28, 28), "data_md5 "),
        (
            "same count, wide",
            1200,
            40,
            (14, 56),
            "data_image 28x28 vs 14x56",
        ),
    ] {
        let d = dir.path().join(name);
        std::fs::create_dir(&d).unwrap();
        let labels: Vec<u8> = (0..n).map(|i| (i % classes) as u8).collect();
        let images = vec![7u8; n as usize * 784];
        for (file, dims, bytes) in [
            (simplenn::data::TRAIN_IMAGES, vec![n, rows, cols], &images),
            (simplenn::data::TRAIN_LABELS, vec![n], &labels),
            (simplenn::data::TEST_IMAGES, vec![n, rows, cols], &images),
            (simplenn::data::TEST_LABELS, vec![n], &labels),
        ] {
            simplenn::idx::write_idx(&d.join(file), &dims, bytes).unwrap();
        }
        let o = train_on(&d, &["--resume", &ck, "--no-save"]);
        let line = usage_line(&o, name);
        assert!(
            line.contains("cannot resume: this run differs from the checkpoint's")
                && line.contains(says)
                && line.contains("the data now is"),
            "{name}: {line}"
        );
    }

    // The checkpoint's own training data with a test label past its 10
    // classes: the checkpoint, not a flag, set the count, so the way out
    // is its test set or a new run, not a --classes it would refuse.
    let past = dir.path().join("test label past");
    std::fs::create_dir(&past).unwrap();
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        if path.file_name().unwrap() == simplenn::data::TEST_LABELS {
            bytes[8 + 3] = 12;
        }
        std::fs::write(past.join(path.file_name().unwrap()), bytes).unwrap();
    }
    let o = train_on(&past, &["--resume", &ck, "--no-save"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        error_lines(&o),
        [format!(
            "simplenn: error: {}: label 12 at index 3 is not below the 10 classes of the checkpoint's run; resume it with a test set whose labels are all below 10 (the one it started with), or train a new model on this data without --resume",
            past.join(simplenn::data::TEST_LABELS).display()
        )]
    );
    // So with class names whose labels go past them (an EMNIST mapping):
    // the mapping is what to change.
    let names = dir.path().join("thirteen.txt");
    let mapping: String = (0..13).map(|l| format!("{l} {}\n", 65 + l)).collect();
    std::fs::write(&names, mapping).unwrap();
    let o = train_on(
        &data,
        &[
            "--resume",
            &ck,
            "--no-save",
            "--class-names",
            names.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = error_lines(&o);
    assert!(
        err.len() == 1
            && err[0].ends_with("the mapping names labels up to 12, but the checkpoint's run has 10 classes (labels 0 to 9); give the mapping of its data set, or train a new model without --resume"),
        "{err:?}"
    );

    // Checkpoints or metrics into a missing directory fail before the first epoch.
    for flag in ["--checkpoint", "--metrics"] {
        let o = run(&[
            "--checkpoint-every",
            "1",
            flag,
            "/nonexistent/dir/f",
            "--no-save",
        ]);
        assert_eq!(o.status.code(), Some(1), "{flag}");
        assert!(!stdout(&o).contains("epoch 1/3"), "{flag} trained first");
        let err = error_lines(&o);
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(
            err[0].contains("directory /nonexistent/dir does not exist"),
            "{}",
            err[0]
        );
    }

    // A plain model is not a checkpoint.
    let o = train_on(&data, &["--resume", &full, "--no-save"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not a simplenn checkpoint"),
        "{}",
        stderr(&o)
    );

    // Resume with only --resume (flags come from the checkpoint), new thread count.
    // Resumed onto a new log: it says the log will start at epoch 2 (a
    // copy of the checkpoint, which the resumed run goes on writing).
    // (Its name holds an escape and a line break, written out in the note.)
    let (ck2, fresh) = (p("ck2.st"), p("new\u{1b}[31m\n.jsonl"));
    std::fs::copy(&ck, &ck2).unwrap();
    let o = train_on(
        &data,
        &[
            "--resume",
            &ck2,
            "--no-save",
            "--metrics",
            &fresh,
            "--no-progress",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!(
            "note: --metrics {} holds none of the 1 epoch before this resume, so it will start at epoch 2;",
            fresh.replace('\u{1b}', "\\u{1b}").replace('\n', "\\n")
        )),
        "{}",
        stdout(&o)
    );
    let records = simplenn::metrics::read(Path::new(&fresh)).unwrap();
    assert_eq!(records.iter().map(|r| r.epoch).collect::<Vec<_>>(), [2, 3]);
    let o = train_on(
        &data,
        &[
            "--resume",
            &ck,
            "--threads",
            "1",
            "--save",
            &resumed,
            "--metrics",
            &metrics,
            "--checkpoint-every",
            "1",
            "--no-progress",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains("holds none of"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("resuming at epoch 2, step 20 of 60"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        std::fs::read(&full).unwrap(),
        std::fs::read(&resumed).unwrap()
    );
    // The checkpoint went on being written, to the resumed file, and is at the end now.
    let done = checkpoint::load_checkpoint(Path::new(&ck)).unwrap();
    assert_eq!(done.steps, 60);
    // Resuming a finished run says so, and writes the same model again.
    let again = format!("{resumed}.again");
    let unused = p("unused.jsonl");
    let o = train_on(
        &data,
        &[
            "--resume",
            &ck,
            "--save",
            &again,
            "--metrics",
            &unused,
            "--no-progress",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // It trains no epoch, so a new log gets no note of where it starts.
    assert!(!stdout(&o).contains("holds none of"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("the checkpoint's run is complete (step 60 of 60)"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        std::fs::read(&again).unwrap(),
        std::fs::read(&full).unwrap()
    );
    // And a checkpoint loads as a model (eval/predict accept it).
    assert_eq!(modelfile::load_model(Path::new(&ck)).unwrap(), done.params);
    let records = simplenn::metrics::read(Path::new(&metrics)).unwrap();
    assert_eq!(
        records.iter().map(|r| r.epoch).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(records
        .iter()
        .all(|r| r.val_accuracy.is_some() && r.samples_per_sec > 0.0));
}

/// A resumed run keeps what the stopped run did beyond training
/// (`--checkpoint-every`, `--test-every-epoch`) unless told otherwise, and
/// says so: a run resumed after a time limit goes on checkpointing and
/// scoring as before, and still ends with the same bytes.
#[test]
fn a_resumed_run_keeps_its_checkpoints_and_test_scores() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(&dir.path().join("data"), 1200, 300);
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    let (full, ck, resumed) = (p("full.st"), p("ck.st"), p("resumed.st"));
    let d = data.to_str().unwrap();
    let with = |extra: &[&str]| {
        let args: Vec<&str> = ["train", "--data", d]
            .iter()
            .chain(SMALL_RUN)
            .chain(extra)
            .copied()
            .collect();
        simplenn(&args)
    };
    let o = with(&["--save", &full]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = with(&[
        "--stop-after",
        "1",
        "--checkpoint-every",
        "1",
        "--test-every-epoch",
        "--checkpoint",
        &ck,
        "--save",
        &resumed,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let epochs = checkpoint::load_checkpoint(Path::new(&ck))
        .unwrap()
        .shape
        .epochs;
    assert!(epochs > 1);

    // No flag but --resume and --save: its epochs are scored on the test
    // set, and it checkpoints after each, to the file it resumed.
    let o = simplenn(&["train", "--data", d, "--resume", &ck, "--save", &resumed]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("resuming with --checkpoint-every 1 and --test-every-epoch, as the run that wrote the checkpoint had"),
        "{out}"
    );
    assert!(
        out.lines()
            .filter(|l| l.starts_with("epoch"))
            .all(|l| l.contains("test acc")),
        "{out}"
    );
    assert!(
        out.contains(&format!("checkpoint (epoch {epochs}, step")),
        "{out}"
    );
    let last = checkpoint::load_checkpoint(Path::new(&ck)).unwrap();
    assert_eq!(last.steps % last.shape.steps_per_epoch(), 0);
    assert_eq!(last.steps / last.shape.steps_per_epoch(), epochs as u64);
    assert_eq!(
        std::fs::read(&resumed).unwrap(),
        std::fs::read(&full).unwrap()
    );

    // A run stopped after epoch 1 with `first` (checkpointing to `ck`),
    // then resumed with `then`: what the resumed run printed.
    let stop_and_resume = |first: &[&str], ck: &str, then: &[&str]| {
        let stop: &[&str] = &["--stop-after", "1", "--checkpoint", ck, "--no-save"];
        let o = with(&[stop, first].concat());
        assert!(o.status.success(), "{}", stderr(&o));
        let resume: &[&str] = &["train", "--data", d, "--resume", ck, "--no-save"];
        let o = simplenn(&[resume, then].concat());
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };

    // `--checkpoint PATH` alone on the resumed run says where its
    // checkpoints go, not that there is to be one only at the end.
    let (ck2, elsewhere) = (p("ck2.st"), p("elsewhere.st"));
    let out = stop_and_resume(
        &["--checkpoint-every", "1"],
        &ck2,
        &["--checkpoint", &elsewhere],
    );
    assert!(
        out.contains(
            "resuming with --checkpoint-every 1, as the run that wrote the checkpoint had"
        ),
        "{out}"
    );
    assert!(
        out.contains("checkpoint (epoch 2, step") && out.contains(&elsewhere),
        "{out}"
    );

    // `--no-test-every-epoch` turns the kept scoring off.
    let out = stop_and_resume(
        &["--test-every-epoch"],
        &p("ck3.st"),
        &["--no-test-every-epoch"],
    );
    assert!(!out.contains("--test-every-epoch"), "{out}");
    // `--checkpoint PATH` alone was one checkpoint after the last epoch.
    assert!(
        out.contains(
            "resuming with a checkpoint when the run ends, as the run that wrote the checkpoint had"
        ),
        "{out}"
    );
    let epoch_lines: Vec<_> = out.lines().filter(|l| l.starts_with("epoch")).collect();
    assert!(
        !epoch_lines.is_empty() && epoch_lines.iter().all(|l| !l.contains("test acc")),
        "{out}"
    );

    // A resume the run itself refuses (here another run's --metrics log,
    // lr 0.05's) prints nothing of what it would have kept: that line came
    // before the refusal.
    let other = p("other.jsonl");
    let o = with(&["--lr", "0.05", "--no-save", "--metrics", &other]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ck4 = p("ck4.st");
    let o = with(&[
        "--stop-after",
        "1",
        "--checkpoint-every",
        "1",
        "--checkpoint",
        &ck4,
        "--no-save",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = simplenn(&[
        "train",
        "--data",
        d,
        "--resume",
        &ck4,
        "--no-save",
        "--metrics",
        &other,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("another run's log"), "{}", stderr(&o));
    assert!(!stdout(&o).contains("resuming with"), "{}", stdout(&o));
}

/// A run resumed with `--resume` alone, from another directory, saves its
/// model and grows its log where the stopped run would have, not into a
/// `model.safetensors` of the directory it runs in; one stopped with
/// `--no-save` saves nothing.
#[test]
fn a_resumed_run_keeps_its_model_path_and_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(&dir.path().join("data"), 1200, 300);
    let d = data.to_str().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for sub in [&a, &b] {
        std::fs::create_dir(sub).unwrap();
    }
    let run_in = |cwd: &Path, args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_simplenn"))
            .current_dir(cwd)
            .args(["train", "--data", d])
            .args(SMALL_RUN)
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    // Another run's model, where a resume without --save used to write.
    run_in(&b, &["--lr", "0.05"]);
    let other = std::fs::read(b.join("model.safetensors")).unwrap();
    let stop = ["--stop-after", "1", "--checkpoint", "run.ckpt"];
    run_in(
        &a,
        &[&stop[..], &["--save", "mine.st", "--metrics", "run.jsonl"]].concat(),
    );
    assert!(!a.join("mine.st").exists());
    let out = run_in(&b, &["--resume", "../a/run.ckpt"]);
    let a_abs = std::path::absolute(&a).unwrap();
    let (mine, log) = (a_abs.join("mine.st"), a_abs.join("run.jsonl"));
    assert!(
        out.contains(&format!(
            "resuming with --save {}, --metrics {} and",
            mine.display(),
            log.display()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("model saved to {}", mine.display())),
        "{out}"
    );
    assert!(mine.exists());
    let epochs = checkpoint::load_checkpoint(&a.join("run.ckpt"))
        .unwrap()
        .shape
        .epochs;
    let lines = std::fs::read_to_string(&log).unwrap().lines().count();
    assert_eq!(
        lines, epochs,
        "one log line an epoch, before and after the resume"
    );
    assert_eq!(std::fs::read(b.join("model.safetensors")).unwrap(), other);

    // A kept log whose directory is gone names itself and the ways out;
    // --no-metrics is one.
    std::fs::create_dir(a.join("logs")).unwrap();
    run_in(
        &a,
        &[
            &stop[..],
            &["--save", "mine.st", "--metrics", "logs/run.jsonl"],
        ]
        .concat(),
    );
    std::fs::remove_dir_all(a.join("logs")).ok();
    // A resume in b that is refused: its exit status and error.
    let refused = || {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_simplenn"))
            .current_dir(&b)
            .args(["train", "--data", d, "--resume", "../a/run.ckpt"])
            .output()
            .unwrap();
        (o.status.code(), stderr(&o))
    };
    let (code, err) = refused();
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("the stopped run's --metrics log")
            && err.contains("give --metrics PATH for another, or --no-metrics"),
        "{err}"
    );
    let out = run_in(&b, &["--resume", "../a/run.ckpt", "--no-metrics"]);
    assert!(!out.contains("--metrics"), "{out}");

    // A kept path that this run's own outputs would write over: the
    // refusal says which path the command line did not give, and where it
    // came from (it named a --metrics the user had not typed).
    run_in(
        &a,
        &[&stop[..], &["--save", "mine.st", "--metrics", "run.jsonl"]].concat(),
    );
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_simplenn"))
        .current_dir(&b)
        .args(["train", "--data", d, "--resume", "../a/run.ckpt"])
        .args(["--checkpoint", "../a/run.jsonl"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        error_lines(&o),
        [format!(
            "simplenn: error: --checkpoint ../a/run.jsonl and --metrics {log} are the same file; give each its own path (--metrics {log} is the stopped run's, kept from its checkpoint: give --metrics PATH or --no-metrics)",
            log = a_abs.join("run.jsonl").display()
        )]
    );
    // That log written over by another run since the stop: said to be the
    // path the checkpoint recorded, and that its log is gone.
    run_in(&a, &["--lr", "0.05", "--no-save", "--metrics", "run.jsonl"]);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_simplenn"))
        .current_dir(&b)
        .args(["train", "--data", d, "--resume", "../a/run.ckpt"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = error_lines(&o);
    assert!(
        err.len() == 1
            && err[0].starts_with(&format!(
                "simplenn: error: --metrics {} (the stopped run's log, as its checkpoint records): another run's log now (its epoch 1 has train loss ",
                a_abs.join("run.jsonl").display()
            ))
            && err[0].ends_with("; give --metrics a new file, or --no-metrics"),
        "{err:?}"
    );

    // A kept model path that now holds another kind of file is refused
    // saying where the path came from, and the ways out.
    run_in(&a, &[&stop[..], &["--save", "mine.st"]].concat());
    std::fs::write(a.join("mine.st"), "notes\n").unwrap();
    let (code, err) = refused();
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("not a safetensors file")
            && err.contains("kept from its checkpoint; give --save PATH or --no-save"),
        "{err}"
    );
    std::fs::remove_file(a.join("mine.st")).unwrap();

    run_in(&a, &[&stop[..], &["--no-save"]].concat());
    let out = run_in(&b, &["--resume", "../a/run.ckpt"]);
    assert!(out.contains("resuming with --no-save"), "{out}");
    assert!(!out.contains("model saved"), "{out}");
    assert_eq!(std::fs::read(b.join("model.safetensors")).unwrap(), other);
}

/// A stopped run's checkpoint records what the run saw at its --save path;
/// resumed after another process put a model there, the run leaves that
/// model alone and saves beside it, with a warning (it replaced it,
/// unseen). A finished run's last checkpoint, which its own model's save
/// followed, resumes onto that model as before.
#[test]
fn a_resumed_run_keeps_a_model_written_at_its_path_after_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(&dir.path().join("data"), 1200, 300);
    let d = data.to_str().unwrap();
    let run_with = |small: &[&str], args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_simplenn"))
            .current_dir(dir.path())
            .args(["train", "--data", d])
            .args(small)
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        (stdout(&o), stderr(&o))
    };
    let run = |args: &[&str]| run_with(SMALL_RUN, args);
    run(&[
        "--stop-after",
        "1",
        "--checkpoint",
        "run.ckpt",
        "--save",
        "mine.st",
    ]);
    let mine = dir.path().join("mine.st");
    assert!(!mine.exists());
    // Another run's model, saved there after this one stopped.
    run(&["--lr", "0.05", "--save", "mine.st"]);
    let other = std::fs::read(&mine).unwrap();
    let (out, err) = run(&["--resume", "run.ckpt"]);
    assert_eq!(std::fs::read(&mine).unwrap(), other, "{out}");
    assert!(
        err.contains("mine.st was written by another process since the checkpoint this run resumes was written (another run with the same --save path, or an earlier resume of that checkpoint?); this run's model goes to "),
        "{err}"
    );
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("mine.") && n != "mine.st")
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(
        out.contains(&format!(
            "model saved to {}",
            dir.path().join(&aside[0]).display()
        )),
        "{out}"
    );

    // A finished run with a checkpoint each epoch, resumed for more.
    run(&["--checkpoint", "done.ckpt", "--save", "done.st"]);
    let before = std::fs::read(dir.path().join("done.st")).unwrap();
    let (out, err) = run_with(&[], &["--resume", "done.ckpt"]);
    assert!(!err.contains("another process"), "{err}");
    assert!(out.contains("model saved to"), "{out}");
    // Saved at its path again (the same weights: the run had finished).
    assert!(std::fs::read(dir.path().join("done.st")).unwrap() == before);
    assert!(
        out.contains(&format!(
            "model saved to {}",
            dir.path().join("done.st").display()
        )),
        "{out}"
    );
}

/// A log that lacks some of the epochs before the checkpoint (cut by hand,
/// or begun by an earlier resume on a new file) is taken, with a note
/// naming what the run's log will lack.
#[test]
fn a_resumed_log_with_a_gap_says_which_epochs_it_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(&dir.path().join("data"), 600, 100);
    let (log, ck) = (dir.path().join("run.jsonl"), dir.path().join("run.ckpt"));
    let run = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_simplenn"))
            .args(["train", "--data", data.to_str().unwrap(), "--no-progress"])
            .args(["--hidden", "none", "--batch-size", "100", "--val", "100"])
            .args(["--threads", "1", "--no-save"])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    let (l, c) = (log.to_str().unwrap(), ck.to_str().unwrap());
    run(&[
        "--epochs",
        "5",
        "--stop-after",
        "3",
        "--metrics",
        l,
        "--checkpoint",
        c,
    ]);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let epochs_in = |log: &Path| -> Vec<usize> {
        let records = simplenn::metrics::read(log).unwrap();
        records.iter().map(|r| r.epoch).collect()
    };
    let saved = std::fs::read(&ck).unwrap();
    // Epoch 2 cut out: no other log holds it, so the advice is a log of
    // every epoch.
    std::fs::write(&log, [lines[0], lines[2]].join("\n") + "\n").unwrap();
    let out = run(&["--resume", c]);
    assert!(
        out.contains(&format!(
            "note: --metrics {l} holds 2 of the 3 epochs before this resume (not epoch 2), so the run's log will lack it; to keep one log of the whole run, give --metrics a log that holds epochs 1 to 3\n"
        )),
        "{out}"
    );
    assert_eq!(epochs_in(&log), [1, 3, 4, 5]);
    // Epoch 1 cut out, as where a resume began this log in a new file:
    // the advice joins the earlier log before it, and that log is taken.
    std::fs::write(&ck, &saved).unwrap();
    std::fs::write(&log, lines[1..].join("\n") + "\n").unwrap();
    let out = run(&["--resume", c]);
    assert!(
        out.contains(&format!(
            "note: --metrics {l} holds 2 of the 3 epochs before this resume (not epoch 1), so the run's log will lack it; to keep one log of the whole run, put the log of epoch 1 before it (cat EARLIER.jsonl {l} > whole.jsonl) and give --metrics whole.jsonl\n"
        )),
        "{out}"
    );
    assert_eq!(epochs_in(&log), [2, 3, 4, 5]);
    std::fs::write(&ck, &saved).unwrap();
    let (earlier, whole) = (
        dir.path().join("earlier.jsonl"),
        dir.path().join("whole.jsonl"),
    );
    std::fs::write(&earlier, lines[0].to_string() + "\n").unwrap();
    std::fs::write(&log, lines[1..].join("\n") + "\n").unwrap();
    let joined = [
        std::fs::read(&earlier).unwrap(),
        std::fs::read(&log).unwrap(),
    ]
    .concat();
    std::fs::write(&whole, joined).unwrap();
    let out = run(&["--resume", c, "--metrics", whole.to_str().unwrap()]);
    assert!(!out.contains("note: --metrics"), "{out}");
    assert_eq!(epochs_in(&whole), [1, 2, 3, 4, 5]);
    // The checkpoint's own log moved away: the note says it is that log,
    // not to give "the file the stopped run wrote" (this one), and its
    // advice, joining the moved log before it afterwards, makes one log.
    std::fs::write(&ck, &saved).unwrap();
    std::fs::write(&earlier, lines.join("\n") + "\n").unwrap();
    std::fs::remove_file(&log).unwrap();
    let out = run(&["--resume", c]);
    assert!(
        out.contains(&format!(
            "note: --metrics {l}, the log the stopped run wrote, holds none of the 3 epochs before this resume (the file was moved, emptied or deleted since), so it will start at epoch 4; where the earlier log is kept elsewhere, join the two after this run (cat EARLIER.jsonl {l} > whole.jsonl)\n"
        )),
        "{out}"
    );
    let joined = [
        std::fs::read(&earlier).unwrap(),
        std::fs::read(&log).unwrap(),
    ]
    .concat();
    std::fs::write(&whole, joined).unwrap();
    assert_eq!(epochs_in(&whole), [1, 2, 3, 4, 5]);
}

/// `path`'s safetensors header with `simplenn.KEY` set to `value`, the
/// tensors as they were: a checkpoint as another build may have written it.
fn set_metadata(path: &Path, key: &str, value: &str) {
    edit_metadata(path, key, Some(value));
}

/// [`set_metadata`], or with `None` the key removed.
fn edit_metadata(path: &Path, key: &str, value: Option<&str>) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let meta = header["__metadata__"].as_object_mut().unwrap();
    let key = format!("simplenn.{key}");
    match value {
        Some(v) => meta.insert(key, v.into()),
        None => meta.remove(&key),
    };
    let mut text = serde_json::to_vec(&header).unwrap();
    while !text.len().is_multiple_of(8) {
        text.push(b' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(&text);
    out.extend(&bytes[8 + n..]);
    std::fs::write(path, out).unwrap();
}

/// A checkpoint from inside an epoch that lacks the epoch's sums so far
/// (an older build's, or edited) resumes, but its epoch's figures can only
/// cover the batches after the resume: the run says so before it trains,
/// and says nothing of the kind from a checkpoint that has them.
#[test]
fn a_checkpoint_without_its_epochs_sums_says_the_epoch_is_partial() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(&dir.path().join("data"), 1200, 300);
    let ck = dir.path().join("ck.safetensors");
    let flags: Vec<&str> = SMALL_RUN.iter().chain(&["--no-save"]).copied().collect();
    // Step 27 of 60: the seventh batch of epoch 2 (20 an epoch).
    let stopped = train(
        &data,
        &flags,
        RunOptions {
            checkpoint: Some(ck.clone()),
            stop_after_steps: Some(27),
            ..RunOptions::default()
        },
    );
    assert!(stopped.stopped);
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let resume = |file: &Path| {
        simplenn(&[
            "--data",
            &s(&data),
            "--resume",
            &s(file),
            "--no-save",
            "--no-progress",
            "--threads",
            "1",
        ])
    };
    let note = "note: the checkpoint holds no sums of epoch 2's first 7 batches";
    let older = dir.path().join("older.safetensors");
    std::fs::copy(&ck, &older).unwrap();
    edit_metadata(&older, "epoch_so_far", None);
    for (file, says) in [(&ck, false), (&older, true)] {
        let o = resume(file);
        assert!(o.status.success(), "{:?}", error_lines(&o));
        assert_eq!(
            stdout(&o).contains(note),
            says,
            "{}: {}",
            file.display(),
            stdout(&o)
        );
    }
}

/// A checkpoint whose weight decay alone flips the weights every step (lr
/// · wd = 3, which the flags refuse for a new run, as an older build's or
/// an edited file may hold) still resumes; the run that diverges from it
/// names the decay, in a new run.
#[test]
fn a_checkpoint_whose_decay_overshoots_resumes_and_names_the_decay() {
    let t = tempfile::tempdir().unwrap();
    let data = common::small_mnist(&t.path().join("d"), 1_200, 100);
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (data, ck) = (s(&data), s(&t.path().join("ck.safetensors")));
    let common = [
        "--data",
        &data,
        "--val",
        "200",
        "--batch-size",
        "20",
        "--no-progress",
        "--threads",
        "1",
    ];
    let first = [
        "--epochs",
        "3",
        "--stop-after",
        "1",
        "--weight-decay",
        "0.01",
        "--schedule",
        "constant",
    ];
    let o = simplenn(&[&common[..], &first, &["--checkpoint", &ck, "--no-save"]].concat());
    assert!(o.status.success(), "{:?}", error_lines(&o));
    set_metadata(Path::new(&ck), "lr", "1");
    set_metadata(Path::new(&ck), "weight_decay", "3");
    let o = simplenn(&[&common[..], &["--resume", &ck, "--no-save"]].concat());
    assert_eq!(o.status.code(), Some(3), "{:?}", error_lines(&o));
    let e = error_lines(&o).join("\n");
    assert!(
        e.contains("training diverged at step ") && e.ends_with(&format!("; the run resumed from {ck} keeps that checkpoint's flags, so try a lower --weight-decay (now 3: with --lr 1 each step's decay alone overshoots zero) or --lr in a new run, without --resume")),
        "{e}"
    );
}

/// Softmax regression drops no unit: its checkpoint records dropout 0 and
/// resumes under `--dropout 0`, as do those of builds that recorded the
/// flag's default (0.2) there.
#[test]
fn a_network_without_hidden_layers_resumes_with_dropout_0() {
    let t = tempfile::tempdir().unwrap();
    let data = synthetic(&t.path().join("d"), 4, 3, 0, [200, 30]);
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (data, ck) = (s(&data), s(&t.path().join("ck.safetensors")));
    let common = [
        "--data",
        &data,
        "--val",
        "20",
        "--batch-size",
        "20",
        "--no-progress",
    ];
    let o = simplenn(
        &[
            &common[..],
            &["--hidden", "none", "--epochs", "3", "--stop-after", "1"],
            &["--checkpoint", &ck, "--no-save"],
        ]
        .concat(),
    );
    assert!(o.status.success(), "{:?}", error_lines(&o));
    let written = checkpoint::load_checkpoint(Path::new(&ck)).unwrap();
    assert_eq!(written.shape.dropout, 0.0);
    for recorded in ["0", "0.2"] {
        for extra in [&["--dropout", "0"][..], &[]] {
            // A copy each time: a resumed run checkpoints onto its file.
            let copy = t.path().join(format!("ck-{recorded}.safetensors"));
            std::fs::copy(&ck, &copy).unwrap();
            set_metadata(&copy, "dropout", recorded);
            let o = simplenn(
                &[
                    &common[..],
                    &["--resume", &s(&copy), "--stop-after", "2", "--no-save"],
                    extra,
                ]
                .concat(),
            );
            assert!(
                o.status.success(),
                "{recorded} {extra:?}: {:?}",
                error_lines(&o)
            );
        }
    }
}

/// A checkpoint whose momentum is finite but absurd (edited by hand: 1e38
/// for a weight of a pixel no MNIST image lights) trains on to weights past
/// what every command that loads a model refuses, while the loss, which
/// never sees that weight, stays fine: the run stops as diverged (exit
/// status 3) before writing the model or the checkpoint, where it used to
/// save a model that `eval` then refused.
#[test]
fn a_checkpoint_whose_momentum_carries_the_weights_past_the_limit_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let data = small_mnist(&t.path().join("d"), 300, 50);
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (data, ck, model) = (
        s(&data),
        s(&t.path().join("ck.safetensors")),
        t.path().join("m.safetensors"),
    );
    let common = [
        "--data",
        &data,
        "--val",
        "50",
        "--batch-size",
        "50",
        "--hidden",
        "8",
        "--epochs",
        "2",
        "--threads",
        "1",
        "--no-progress",
    ];
    let o = simplenn(
        &[
            &common[..],
            &["--stop-after", "1", "--checkpoint", &ck, "--no-save"],
        ]
        .concat(),
    );
    assert!(o.status.success(), "{:?}", error_lines(&o));
    // momentum.0.weight is (8, 784), unit 0's incoming weights first: its
    // fourth is the top row's fourth pixel, 0 in every MNIST image.
    let mut bytes = std::fs::read(&ck).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    assert_eq!(
        header["momentum.0.weight"]["shape"],
        serde_json::json!([8, 784])
    );
    let at = 8
        + n
        + header["momentum.0.weight"]["data_offsets"][0]
            .as_u64()
            .unwrap() as usize
        + 3 * 4;
    bytes[at..at + 4].copy_from_slice(&1e38f32.to_le_bytes());
    std::fs::write(&ck, &bytes).unwrap();
    let o = simplenn(&[&common[..], &["--resume", &ck, "--save", &s(&model)]].concat());
    assert_eq!(o.status.code(), Some(3), "{:?}", error_lines(&o));
    let lines = error_lines(&o);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("simplenn: error: training diverged at step 5 of epoch 2 (finite weights, but they could make outputs up to ")
            && lines[0].contains(&format!(
                ", past the 1e30 a model file may hold); the run resumed from {ck} keeps that checkpoint's flags, so try a lower --lr (now 0.1) in a new run, without --resume"
            )),
        "{lines:?}"
    );
    assert!(!model.exists(), "a model was saved");
    assert_eq!(
        std::fs::read(&ck).unwrap(),
        bytes,
        "the checkpoint was rewritten"
    );
}
