//! Short trainings on slices of the real MNIST: the run learns, and its
//! weights are bit-for-bit the same for any thread count.

mod common;

use simplenn::augment::Augment;
use simplenn::config::{DropoutMask, Preset, Schedule, TrainConfig};
use simplenn::data::Mnist;
use simplenn::model::Init;
use simplenn::modelfile;
use simplenn::optim;
use simplenn::train;

fn config(dir: &std::path::Path, threads: usize) -> TrainConfig {
    TrainConfig {
        data_dir: dir.to_owned(),
        epochs: 2,
        batch_size: 64,
        hidden: vec![64],
        classes: None,
        lr: 0.1,
        momentum: 0.9,
        schedule: Schedule::Cosine,
        optimizer: optim::Kind::Sgd,
        beta1: optim::BETA1,
        beta2: optim::BETA2,
        eps: optim::EPS,
        weight_decay: 0.0,
        decay_bias: true,
        max_norm: None,
        input_dropout: 0.0,
        dropout: 0.2,
        dropout_mask: DropoutMask::Image,
        augment: Augment::None,
        init: Init::He,
        preset: Preset::Default,
        seed: 7,
        val: 500,
        save: None,
        threads,
        progress: false,
    }
}

/// An epoch's train loss is the mean of its images' losses: with a rate
/// too small to move the weights, the same as scoring the training split
/// with them (a last batch of 40 images, not 64, counts 40, not 64).
#[test]
fn an_epochs_train_loss_is_the_mean_over_its_images() {
    let t = tempfile::tempdir().unwrap();
    let dir = common::small_mnist(t.path(), 1_500, 100);
    let mnist = Mnist::open(&dir).unwrap();
    let cfg = TrainConfig {
        epochs: 1,
        lr: 1e-9,
        momentum: 0.0,
        dropout: 0.0,
        schedule: Schedule::Constant,
        ..config(&dir, 1)
    };
    // 1,000 training images: 15 batches of 64 and one of 40.
    assert_eq!(mnist.train.len() - cfg.val, 1_000);
    let report = train::train(&cfg, &mnist, &mut std::io::sink()).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let p = &report.params;
    let want =
        pool.install(|| simplenn::eval::Evaluator::new(p, 1).evaluate(p, &mnist.train, 0..1_000));
    let got = report.epochs[0].train_loss;
    assert!(
        ((got - want.loss) / want.loss).abs() < 1e-4,
        "train loss {got}, the split scored {}",
        want.loss
    );
}

#[test]
fn weights_are_identical_for_any_thread_count() {
    let t = tempfile::tempdir().unwrap();
    let dir = common::small_mnist(t.path(), 2_500, 500);
    let mnist = Mnist::open(&dir).unwrap();
    let mut saved = Vec::new();
    // The work is cut into min(threads, cores) parts: on a 2-core
    // machine 3 and 8 threads run as 2. tests/optim.rs gives the
    // trainer 1 to 8 parts directly.
    for threads in [1, 2, 3, 8] {
        let mut cfg = config(&dir, threads);
        // Odd batch size and a multi-block batch: partial last batch, block accumulation.
        cfg.batch_size = 700;
        let path = t.path().join(format!("model-{threads}.safetensors"));
        cfg.save = Some(path.clone());
        let report = train::train(&cfg, &mnist, &mut std::io::sink()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let again = modelfile::load_model(&path).unwrap();
        assert_eq!(again, report.params, "saved model reads back as trained");
        saved.push((threads, bytes, report.test.loss));
    }
    let (_, first, loss) = &saved[0];
    for (threads, bytes, l) in &saved[1..] {
        assert!(
            bytes == first,
            "--threads {threads} saved different bytes from --threads 1"
        );
        assert_eq!(
            l.to_bits(),
            loss.to_bits(),
            "--threads {threads} test loss differs"
        );
    }
    // And a rerun reproduces them.
    let report = train::train(&config(&dir, 2), &mnist, &mut std::io::sink()).unwrap();
    let rerun = train::train(&config(&dir, 2), &mnist, &mut std::io::sink()).unwrap();
    assert_eq!(report.params, rerun.params);
}

#[test]
fn a_short_run_learns_digits() {
    let t = tempfile::tempdir().unwrap();
    let dir = common::small_mnist(t.path(), 6_000, 1_000);
    let mnist = Mnist::open(&dir).unwrap();
    let mut out = Vec::new();
    let cfg = TrainConfig {
        epochs: 3,
        hidden: vec![128],
        classes: None,
        ..config(&dir, 2)
    };
    let report = train::train(&cfg, &mnist, &mut out).unwrap();
    let acc = report.test.accuracy();
    // Chance is 10 %; a linear model gets ~85 % here. A backward pass with a
    // wrong sign, a missing layer or a transposed gradient cannot reach 90 %.
    assert!(
        acc > 0.90,
        "test accuracy {acc} after 3 epochs on 5,500 images"
    );
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text.lines().filter(|l| l.starts_with("epoch ")).count(),
        3,
        "{text}"
    );
    assert!(text.contains("test accuracy"), "{text}");
    // Training loss falls epoch over epoch.
    let losses: Vec<f64> = report.epochs.iter().map(|e| e.train_loss).collect();
    assert!(losses.windows(2).all(|w| w[1] < w[0]), "{losses:?}");
    // The steps' count of the digits they got right rises with it, past
    // 85 % by the last epoch (95 % when written).
    let accs: Vec<f64> = report.epochs.iter().map(|e| e.train_accuracy).collect();
    assert!(
        accs[0] < accs[2] && (0.85..1.0).contains(&accs[2]),
        "{accs:?}"
    );
}

/// Augmented runs: every image's distortion is a function of (seed, epoch,
/// index), so the weights are the same for any thread count; and the
/// distortion does change them, differently per kind.
#[test]
fn augmented_weights_are_identical_for_any_thread_count() {
    let t = tempfile::tempdir().unwrap();
    let dir = common::small_mnist(t.path(), 1_200, 200);
    let mnist = Mnist::open(&dir).unwrap();
    let cfg = TrainConfig {
        batch_size: 100,
        ..config(&dir, 2)
    };
    let plain = train::train(&cfg, &mnist, &mut std::io::sink()).unwrap();
    let mut kinds = Vec::new();
    for augment in [
        Augment::Elastic {
            sigma: 4.0,
            alpha: 34.0,
        },
        Augment::Shift(2),
        Augment::Affine,
    ] {
        let runs: Vec<_> = [1, 2, 3]
            .into_iter()
            .map(|threads| {
                let cfg = TrainConfig {
                    augment,
                    // 100 rows a step: blocks of 32 images end mid-batch.
                    batch_size: 100,
                    ..config(&dir, threads)
                };
                train::train(&cfg, &mnist, &mut std::io::sink())
                    .unwrap()
                    .params
            })
            .collect();
        for (threads, p) in [2, 3].into_iter().zip(&runs[1..]) {
            assert!(
                *p == runs[0],
                "{augment:?}: --threads {threads} differs from 1"
            );
        }
        assert!(runs[0] != plain.params, "{augment:?} changed nothing");
        kinds.push(runs.into_iter().next().unwrap());
    }
    assert!(kinds[0] != kinds[1] && kinds[1] != kinds[2] && kinds[0] != kinds[2]);
}

/// `--dropout-mask batch` (the thinned network every step): the same bytes
/// for any thread count at depth 1 and 3, and it learns about as well as
/// per-image masks (a gradient scattered to the wrong units would not).
#[test]
fn batchwise_dropout_is_identical_for_any_thread_count_and_learns() {
    let t = tempfile::tempdir().unwrap();
    let dir = common::small_mnist(t.path(), 6_000, 1_000);
    let mnist = Mnist::open(&dir).unwrap();
    // The narrow deep net is unstable at lr 0.1 with either mask at these
    // sizes (one mask per batch more so): 0.03 there.
    for (hidden, lr) in [(vec![128], 0.1), (vec![96, 64, 48], 0.03)] {
        let cfg = |threads, batch_size, epochs, dropout_mask| TrainConfig {
            epochs,
            hidden: hidden.clone(),
            lr,
            dropout: 0.3,
            // Input dropout in the one-epoch runs that compare thread counts.
            input_dropout: if epochs == 1 { 0.1 } else { 0.0 },
            dropout_mask,
            batch_size,
            ..config(&dir, threads)
        };
        // 700 rows a step: two blocks of the thinned network per step.
        let runs: Vec<_> = [1, 2, 3, 8]
            .into_iter()
            .map(|threads| {
                let cfg = cfg(threads, 700, 1, DropoutMask::Batch);
                train::train(&cfg, &mnist, &mut std::io::sink())
                    .unwrap()
                    .params
            })
            .collect();
        for (threads, p) in [2, 3, 8].into_iter().zip(&runs[1..]) {
            assert!(
                *p == runs[0],
                "{hidden:?}: --threads {threads} differs from 1"
            );
        }
        let acc = |m| {
            let cfg = cfg(2, 64, 3, m);
            train::train(&cfg, &mnist, &mut std::io::sink())
                .unwrap()
                .test
                .accuracy()
        };
        let (batch, image) = (acc(DropoutMask::Batch), acc(DropoutMask::Image));
        assert!(
            batch > image - 0.03 && batch > 0.8,
            "{hidden:?}: test accuracy {batch} with one mask per batch, {image} per image"
        );
    }
}

#[test]
fn the_pool_has_at_most_one_thread_per_core_and_says_so() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for threads in [1, cores, cores + 1, 4 * cores] {
        let pool = train::thread_pool(threads).unwrap();
        assert_eq!(pool.current_num_threads(), threads.min(cores));
        assert_eq!(train::parts_for(threads), threads.min(cores));
    }
    let t = tempfile::tempdir().unwrap();
    let dir = common::small_mnist(t.path(), 700, 100);
    let mnist = Mnist::open(&dir).unwrap();
    let mut cfg = config(&dir, cores + 1);
    cfg.epochs = 1;
    let mut out = Vec::new();
    train::train(&cfg, &mnist, &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    let cut = match cores {
        1 => "work in one part".to_string(),
        _ => format!("work cut into {cores} parts"),
    };
    let want = format!(
        "threads: {} asked, a pool of {cores} (at most one per core), {cut}",
        cores + 1
    );
    assert!(out.contains(&want), "{out}");
}

/// `simplenn` training a 16-unit network on `data` for `epochs` epochs of
/// batch `batch`, one thread, with standard output and error on `tty`.
#[cfg(unix)]
fn train_on_terminal(
    data: &std::path::Path,
    epochs: &str,
    batch: &str,
    tty: &std::fs::File,
) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_simplenn"))
        .args(["--data", data.to_str().unwrap(), "--epochs", epochs])
        .args(["--val", "100", "--batch-size", batch, "--hidden", "16"])
        .args(["--threads", "1", "--no-save"])
        .stdin(std::process::Stdio::null())
        .stdout(tty.try_clone().unwrap())
        .stderr(tty.try_clone().unwrap())
        .spawn()
        .unwrap()
}

/// The progress bar is drawn on a terminal that says how wide it is, and
/// not on one that says 0 columns (a pseudo-terminal nobody sized:
/// `script` under cron), where it would take the width for 79 and each
/// redraw of a longer line would erase a line above it on a wider window.
#[cfg(unix)]
#[test]
fn the_progress_bar_is_drawn_only_on_a_terminal_of_known_width() {
    use std::io::Read;
    let t = tempfile::tempdir().unwrap();
    let data = common::small_mnist(&t.path().join("data"), 2_000, 100);
    for (cols, drawn) in [(0, false), (120, true), (80, true), (50, true)] {
        let (mut window, tty) = common::sized_pty(if cols == 0 { 0 } else { 40 }, cols);
        let mut child = train_on_terminal(&data, "2", "8", &tty);
        drop(tty); // the terminal's last copies are the child's
        let mut seen = Vec::new();
        // Until the child is gone and its terminal with it (EIO).
        let _ = window.read_to_end(&mut seen);
        assert!(child.wait().unwrap().success());
        let seen = String::from_utf8_lossy(&seen);
        assert!(seen.contains("test accuracy"), "{seen}");
        assert_eq!(seen.contains("batches"), drawn, "{cols} columns: {seen}");
        // Each frame of the bar fits on one row (at 80 columns it took 89,
        // and two rows at each redraw); below 70 the message goes.
        let frames: Vec<String> = seen
            .split(['\r', '\n'])
            .filter(|l| l.contains("batches"))
            .map(|l| common::without_escapes(l).trim_end().to_string())
            .collect();
        let widest = frames.iter().map(|f| f.chars().count()).max().unwrap_or(0);
        assert!(widest <= usize::from(cols), "{cols} columns: {frames:?}");
        if cols >= 70 {
            assert!(frames.iter().any(|f| f.contains("samples/s")), "{frames:?}");
        }
    }
}

/// A terminal resized during an epoch gets its new width's bar at the
/// bar's next update, not at the next epoch (until then each redraw of the
/// wider line took two or more rows), and one that stops saying its width
/// (0 columns) loses the bar, in the next epoch too. The bar's message is
/// ASCII, the same width in any locale.
#[cfg(unix)]
#[test]
fn the_progress_bar_follows_a_resized_terminal() {
    use rustix::process::{kill_process, Pid, Signal};
    use std::io::Read;
    let t = tempfile::tempdir().unwrap();
    // Epochs of 9,950 steps: long beside the reader's reaction.
    let data = common::small_mnist(&t.path().join("data"), 20_000, 100);
    let (mut window, tty) = common::sized_pty(40, 120);
    let child = train_on_terminal(&data, "3", "2", &tty);
    // The terminal's last copies are the child's: its end is the reader's.
    drop(tty);
    let pid = Pid::from_raw(child.id() as i32).unwrap();
    // The terminal is resized as soon as the frame that calls for it is
    // read, with the run stopped (SIGSTOP) meanwhile; the epochs are long
    // beside that reaction (a reader late past an epoch's end fails the
    // test, it cannot pass it).
    let reader = std::thread::spawn(move || {
        let resize = |window: &std::fs::File, cols, what: &str, seen: &[u8]| {
            let size = rustix::termios::Winsize {
                ws_row: if cols == 0 { 0 } else { 40 },
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            let seen = String::from_utf8_lossy(seen);
            let due = seen.contains(what);
            if due {
                // (A run already ended: the checks below say so.)
                let _ = kill_process(pid, Signal::STOP);
                rustix::termios::tcsetwinsize(window, size).unwrap();
                let _ = kill_process(pid, Signal::CONT);
            }
            due
        };
        let (mut seen, mut buf, mut stage) = (Vec::new(), [0u8; 4096], 0);
        // Until the child is gone and its terminal with it (EIO).
        while let Ok(n @ 1..) = window.read(&mut buf) {
            seen.extend_from_slice(&buf[..n]);
            // The first frame at 120 columns, with the message (not the
            // epoch's line, which has it too); then 50, and at epoch 2's
            // first frame, no width.
            stage += match stage {
                0 => usize::from(resize(&window, 50, "batches  loss", &seen)),
                1 => usize::from(resize(&window, 0, "epoch 2/3 [", &seen)),
                _ => 0,
            };
        }
        (seen, stage)
    });
    let out = common::exited_within(child, 300, "the run did not end");
    assert!(out.status.success());
    let (seen, stage) = reader.join().unwrap();
    assert_eq!(stage, 2, "{}", String::from_utf8_lossy(&seen));
    let seen = String::from_utf8_lossy(&seen).into_owned();
    assert!(seen.contains("test accuracy"), "{seen}");
    assert!(!seen.contains('·'), "{seen}");
    let pieces: Vec<String> = seen
        .split(['\r', '\n'])
        .map(|l| common::without_escapes(l).trim_end().to_string())
        .collect();
    let at = |line: &str| pieces.iter().position(|p| p.starts_with(line)).unwrap();
    let (end1, end2) = (at("epoch 1/3  train loss"), at("epoch 2/3  train loss"));
    // Epoch 1's last frame: the 50-column layout, without the message.
    let last = pieces[..end1]
        .iter()
        .rev()
        .find(|p| p.contains("batches"))
        .unwrap();
    assert!(
        last.chars().count() <= 50 && !last.contains("samples/s"),
        "{last}"
    );
    // Epoch 2's bar is cleared at its first update after the width goes
    // (it drew on to the epoch's end), and epoch 3 draws none.
    let drawn_to = |p: &String| -> Option<usize> {
        let counts = p
            .split_whitespace()
            .find(|w| w.contains('/') && !w.starts_with("2/3"))?;
        counts.split('/').next()?.parse().ok()
    };
    let last2 = pieces[end1..end2]
        .iter()
        .filter(|p| p.contains("batches"))
        .filter_map(drawn_to)
        .max()
        .unwrap_or(0);
    assert!(last2 < 9_950 / 2, "epoch 2 drawn to step {last2}");
    let later: Vec<_> = pieces[end2..]
        .iter()
        .filter(|p| p.contains("batches"))
        .collect();
    assert!(later.is_empty(), "{later:?}");
}

/// Training `cfg` on `mnist` is refused before the work with a usage
/// error whose line starts `want` (the field and its value).
fn refused_by_field(cfg: &TrainConfig, mnist: &Mnist, want: &str) {
    let Err(e) = train::train(cfg, mnist, &mut std::io::sink()) else {
        panic!("{want}: trained");
    };
    assert!(e.is::<simplenn::error::UsageError>(), "{want}: {e:#}");
    assert!(e.to_string().starts_with(want), "{want}: {e:#}");
}

/// An `Mnist` whose public fields were set by hand, not by
/// `Mnist::open_with_classes`, is refused naming the field: too few
/// classes for its labels and a test set of another image size panicked
/// in the trainer's workers.
#[test]
fn a_hand_built_data_set_with_a_bad_field_is_refused_by_name() {
    let t = tempfile::tempdir().unwrap();
    let dir = common::small_mnist(t.path(), 600, 100);
    let mut cfg = config(&dir, 1);
    cfg.val = 500;
    let refused = |mnist: &Mnist, want: &str| refused_by_field(&cfg, mnist, want);
    let mut mnist = Mnist::open(&dir).unwrap();
    mnist.classes = 5;
    refused(&mnist, "Mnist.classes is 5, but a label is 9");
    mnist.classes = 1;
    refused(&mnist, "Mnist.classes is 1: a model has 2 to 256 classes");
    mnist.classes = 10;
    let (images, labels) = (t.path().join("small-images"), t.path().join("small-labels"));
    simplenn::idx::write_idx(&images, &[3, 14, 14], &[0; 3 * 14 * 14]).unwrap();
    simplenn::idx::write_idx(&labels, &[3], &[0, 1, 2]).unwrap();
    mnist.test = simplenn::data::Dataset::open(&images, &labels).unwrap();
    refused(
        &mnist,
        "Mnist.test holds 14 × 14 images, Mnist.train 28 × 28",
    );
}

/// `RunOptions` a library caller filled in are checked as the flags are,
/// named as fields, before the work: a model and checkpoints written with
/// names for other classes would not load again, and outputs on one file,
/// or on a file of the data set, replaced one another or the data.
#[test]
fn hand_built_run_options_are_refused_by_field() {
    let t = tempfile::tempdir().unwrap();
    let dir = common::small_mnist(t.path(), 600, 100);
    let mnist = Mnist::open(&dir).unwrap();
    let mut cfg = config(&dir, 1);
    cfg.val = 500;
    let data_file = dir.join(simplenn::data::TEST_IMAGES);
    let before = std::fs::read(&data_file).unwrap();
    let refused = |cfg: &TrainConfig, opts: train::RunOptions, want: &str| {
        let Err(e) = train::train_with(cfg, &mnist, opts, &mut std::io::sink()) else {
            panic!("{want}: trained");
        };
        assert!(e.is::<simplenn::error::UsageError>(), "{want}: {e:#}");
        assert!(e.to_string().starts_with(want), "{want}: {e:#}");
    };
    let names_file = t.path().join("names.txt");
    std::fs::write(&names_file, "a\nb\nc\n").unwrap();
    let names = simplenn::classes::ClassNames::read(&names_file, 3).unwrap();
    let opts = train::RunOptions {
        class_names: Some(names),
        ..Default::default()
    };
    refused(
        &cfg,
        opts,
        "RunOptions.class_names holds 3 names, but the run's data has 10 classes",
    );
    let model = t.path().join("m.safetensors");
    let opts = train::RunOptions {
        checkpoint: Some(model.clone()),
        checkpoint_every: Some(1),
        ..Default::default()
    };
    let mut saving = cfg.clone();
    saving.save = Some(model.clone());
    refused(&saving, opts, "TrainConfig.save ");
    let opts = train::RunOptions {
        metrics: Some(t.path().join("./m.safetensors")),
        ..Default::default()
    };
    refused(&saving, opts, "TrainConfig.save ");
    let opts = train::RunOptions {
        metrics: Some(data_file.clone()),
        ..Default::default()
    };
    refused(&cfg, opts, "RunOptions.metrics ");
    saving.save = Some(data_file.clone());
    refused(&saving, Default::default(), "TrainConfig.save ");
    assert_eq!(std::fs::read(&data_file).unwrap(), before);
    assert!(!model.exists());
}

/// A config built by hand (a library caller's) with a value the flags
/// would have refused is one error naming the field: not a panic, a
/// wrapped subtraction, or a divergence blamed on the learning rate.
#[test]
fn a_hand_built_config_with_a_bad_value_is_refused_by_field() {
    let t = tempfile::tempdir().unwrap();
    let dir = common::small_mnist(t.path(), 600, 100);
    let mnist = Mnist::open(&dir).unwrap();
    type Spoil = fn(&mut TrainConfig);
    let cases: [(&str, Spoil); 28] = [
        ("TrainConfig.batch_size is 0", |c| c.batch_size = 0),
        ("TrainConfig.batch_size is 101", |c| c.batch_size = 101),
        ("TrainConfig.hidden[1] is 0", |c| c.hidden = vec![8, 0]),
        ("TrainConfig.hidden has 32 widths: at most 31", |c| {
            c.hidden = vec![4; 32]
        }),
        ("TrainConfig.hidden[0] is 1048577", |c| {
            c.hidden = vec![(1 << 20) + 1]
        }),
        ("TrainConfig.val is 600", |c| c.val = 600),
        ("TrainConfig.eps is inf", |c| c.eps = f32::INFINITY),
        ("TrainConfig.max_norm is inf", |c| {
            c.max_norm = Some(f32::INFINITY)
        }),
        ("TrainConfig.momentum is 0.9 with adam", |c| {
            c.optimizer = optim::Kind::Adam;
            c.momentum = 0.9
        }),
        ("TrainConfig.momentum is 0 with nesterov", |c| {
            c.optimizer = optim::Kind::Nesterov;
            c.momentum = 0.0
        }),
        ("TrainConfig.dropout is 0.2 with no hidden layer", |c| {
            c.hidden = vec![];
            c.dropout = 0.2
        }),
        ("TrainConfig.augment is Shift(0)", |c| {
            c.augment = Augment::Shift(0)
        }),
        (
            "TrainConfig.augment is Elastic { sigma: 0, alpha: 34 }: --elastic-sigma 0",
            |c| {
                c.augment = Augment::Elastic {
                    sigma: 0.0,
                    alpha: 34.0,
                }
            },
        ),
        (
            "TrainConfig.augment is Elastic { sigma: 4, alpha: NaN }: --elastic-alpha NaN",
            |c| {
                c.augment = Augment::Elastic {
                    sigma: 4.0,
                    alpha: f32::NAN,
                }
            },
        ),
        ("TrainConfig.epochs is 0", |c| c.epochs = 0),
        ("TrainConfig.threads is 0", |c| c.threads = 0),
        ("TrainConfig.dropout is 1: must be in [0, 1)", |c| {
            c.dropout = 1.0
        }),
        ("TrainConfig.lr is NaN", |c| c.lr = f32::NAN),
        ("TrainConfig.eps is 0", |c| c.eps = 0.0),
        ("TrainConfig.weight_decay is -1", |c| c.weight_decay = -1.0),
        ("TrainConfig.epochs is 18446744073709551615", |c| {
            c.epochs = usize::MAX
        }),
        ("TrainConfig.epochs is 1000001", |c| {
            c.epochs = simplenn::config::MAX_EPOCHS + 1
        }),
        ("TrainConfig.init is Normal(NaN)", |c| {
            c.init = Init::Normal(f32::NAN)
        }),
        ("TrainConfig.init is Normal(-0.5)", |c| {
            c.init = Init::Normal(-0.5)
        }),
        (
            "TrainConfig.classes is 5, but the data opened has 10",
            |c| c.classes = Some(5),
        ),
        // The decay alone would flip the weights each step (factor −2),
        // or zero them (factor 0), as the flags refuse.
        (
            "TrainConfig.weight_decay is 3 with lr 1: sgd scales the weights by -2 a step",
            |c| {
                c.lr = 1.0;
                c.weight_decay = 3.0;
            },
        ),
        (
            "TrainConfig.weight_decay is 2 with lr 0.5: adamw scales the weights by 0 a step",
            |c| {
                c.optimizer = optim::Kind::Adamw;
                c.momentum = 0.0;
                c.lr = 0.5;
                c.weight_decay = 2.0;
            },
        ),
        ("TrainConfig.dropout_mask is Batch with no dropout", |c| {
            c.dropout = 0.0;
            c.dropout_mask = simplenn::config::DropoutMask::Batch;
        }),
    ];
    for (want, spoil) in cases {
        let mut cfg = config(&dir, 1);
        cfg.val = 500;
        spoil(&mut cfg);
        refused_by_field(&cfg, &mnist, want);
    }
    // A save into a directory that is not there is refused before the
    // work, not when the trained weights have nowhere to go.
    let mut cfg = config(&dir, 1);
    cfg.val = 500;
    cfg.save = Some(t.path().join("missing").join("m.safetensors"));
    let mut out = Vec::new();
    let Err(e) = train::train(&cfg, &mnist, &mut out) else {
        panic!("trained into a missing directory");
    };
    assert!(format!("{e:#}").contains("missing does not exist"), "{e:#}");
    assert!(!String::from_utf8_lossy(&out).contains("epoch"), "trained");
    // Options the flags would refuse, likewise.
    let mut cfg = config(&dir, 1);
    cfg.val = 500;
    let opts = simplenn::train::RunOptions {
        checkpoint: Some(t.path().join("ck.safetensors")),
        checkpoint_every: Some(0),
        ..Default::default()
    };
    let Err(e) = train::train_with(&cfg, &mnist, opts, &mut std::io::sink()) else {
        panic!("trained with checkpoint_every Some(0)");
    };
    assert!(
        e.to_string()
            .starts_with("RunOptions.checkpoint_every is Some(0): give at least 1"),
        "{e:#}"
    );
    // Initial weights so wide that the first batch's loss, before any
    // update, is past the divergence bound: blamed on them, not on the
    // learning rate, which had not acted.
    cfg.init = Init::Normal(10.0);
    let Err(e) = train::train(&cfg, &mnist, &mut std::io::sink()) else {
        panic!("trained with N(0, 10²) weights");
    };
    let e = e.to_string();
    assert!(
        e.starts_with("training diverged at step 1 of epoch 1 (mean batch loss ")
            && e.ends_with("no update had run yet: the initial weights, drawn from N(0, 10²), give that loss; draw them with a smaller σ (TrainConfig.init)"),
        "{e}"
    );
    // The same config, unspoilt, trains.
    let mut cfg = config(&dir, 1);
    cfg.val = 500;
    cfg.epochs = 1;
    assert!(train::train(&cfg, &mnist, &mut std::io::sink()).is_ok());
}

/// An epoch's figures agree with one another: its rate is its images over
/// its training time, so at least its images over `seconds` (which counts
/// validation too); the run's wall clock, read at each epoch's end (the
/// per-epoch test scoring left out), holds every epoch's seconds so far
/// and stays below the time the whole call took.
#[test]
fn an_epochs_rate_and_clocks_agree() {
    let t = tempfile::tempdir().unwrap();
    let dir = common::small_mnist(t.path(), 1200, 300);
    let opts = train::RunOptions {
        test_every_epoch: true,
        ..Default::default()
    };
    let t0 = std::time::Instant::now();
    // No model saved: the library would write one into the working
    // directory, the repository's.
    let flags = [common::SMALL_RUN, &["--no-save"]].concat();
    let report = common::train(&dir, &flags, opts);
    let outer = t0.elapsed().as_secs_f64();
    // 1,200 images less `--val 200`.
    let n_train = 1000.0;
    let mut sum = 0.0;
    assert_eq!(report.epochs.len(), 3);
    for e in &report.epochs {
        assert!(
            e.samples_per_sec * e.seconds >= n_train * (1.0 - 1e-9),
            "epoch {}: {} images/s over {} s",
            e.epoch,
            e.samples_per_sec,
            e.seconds
        );
        sum += e.seconds;
        assert!(
            e.wall_seconds + 1e-9 >= sum && e.wall_seconds <= outer,
            "epoch {}: wall clock {} s, epochs so far {sum} s, the whole call {outer} s",
            e.epoch,
            e.wall_seconds
        );
    }
}

/// A run whose model gives every test image the same output (a one-unit
/// network whose unit died) ends with a note that says so and names the
/// flags (the layer's width first); a run that learns gets none, and so does one whose rate was so
/// high that its answers scatter at chance: its outputs still differ, and
/// nothing proves it learned nothing.
#[test]
fn a_run_that_learned_nothing_says_so() {
    let t = tempfile::tempdir().unwrap();
    let dir = common::small_mnist(t.path(), 1_000, 200);
    let data = dir.to_str().unwrap();
    let run = |flags: &[&str]| {
        let mut args = vec!["--data", data, "--val", "100", "--no-save", "--no-metrics"];
        args.extend(["--no-progress", "--threads", "1"]);
        let o = common::simplenn(&[&args[..], flags].concat());
        assert!(o.status.success(), "{}", common::stderr(&o));
        common::stdout(&o)
    };
    let dead = run(&["--hidden", "1", "--lr", "1", "--epochs", "3"]);
    let note = dead
        .lines()
        .find(|l| l.starts_with("note: the model gives every test image the same output"));
    assert!(
        note.is_some_and(|n| n.ends_with("a hidden layer of only 1 unit often does this (its unit stops firing, for every image), as does a learning rate too high for the network: try a new run with wider hidden layers, or a smaller --lr than 1")),
        "{dead}"
    );
    for flags in [
        &["--lr", "1.5", "--batch-size", "32", "--epochs", "4"][..],
        &["--lr", "1", "--epochs", "10"],
    ] {
        let out = run(flags);
        assert!(
            out.contains("test accuracy") && !out.contains("learned nothing"),
            "{out}"
        );
    }
}
