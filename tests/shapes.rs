//! Networks of any depth on data sets of any shape: the default network
//! still gives the bytes it gave before depth was a flag; tiny data sets
//! that are not MNIST (8 × 8 images of 3 classes, 1 × 1 images, labels
//! numbered from 1) train, evaluate and predict; weights are bit-identical
//! across thread counts at depth 1, 2 and 3; checkpoints keep the widths.

mod common;

use common::{error_lines, simplenn, small_mnist, stdout, synthetic};
use simplenn::data::{Mnist, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use simplenn::idx::write_idx;
use simplenn::predict;
use simplenn::{checkpoint, modelfile};

/// Trains with `flags` on the first 3,000 training and 500 test images
/// (the last 500 training images for validation), at 1 and 2 threads, and
/// checks that the run printed `says` and saved the file whose sha256 is
/// `sha256`.
fn saves_the_pinned_file(flags: &[&str], says: &str, sha256: &str) {
    let t = tempfile::tempdir().unwrap();
    let data = small_mnist(&t.path().join("data"), 3_000, 500);
    for threads in ["1", "2"] {
        let model = t.path().join(format!("m{threads}.safetensors"));
        let mut args = vec!["--data", data.to_str().unwrap(), "--val", "500"];
        args.extend_from_slice(flags);
        args.extend(["--threads", threads, "--no-progress"]);
        args.extend(["--save", model.to_str().unwrap()]);
        let o = simplenn(&args);
        assert!(o.status.success(), "{:?}", error_lines(&o));
        assert!(stdout(&o).contains(says), "{}", stdout(&o));
        assert_eq!(common::sha256(&model), sha256, "--threads {threads}");
    }
}

/// The default recipe (784-256-10, batch 128, lr 0.1 cosine, momentum 0.9,
/// dropout 0.2, seed 1), two epochs on the first 3,000 training and 500 test
/// images, must save exactly the file it saved before networks of any depth
/// existed: this sha256 was taken with the one-hidden-layer trainer
/// (commit b30f152) on the same slice and flags.
#[test]
fn default_network_gives_the_bytes_it_always_gave() {
    saves_the_pinned_file(
        &["--epochs", "2"],
        "model: 784-256-10;",
        "860815e884538398cf06c7f3f5388c3c8e3e95ef70acef58a417f151fffbc33d",
    );
}

/// `--dropout-mask batch` (the thinned network), with Adam, input dropout
/// and max-norm at depth 2, one epoch on the same slice, must keep saving
/// the file it saved when it was added (ninth session): its masks, gather,
/// scatter and summation order are part of what a seed promises.
#[test]
fn batchwise_dropout_gives_the_bytes_it_gave_when_added() {
    saves_the_pinned_file(
        &[
            "--hidden",
            "128,64",
            "--optimizer",
            "adam",
            "--dropout",
            "0.5",
            "--input-dropout",
            "0.2",
            "--dropout-mask",
            "batch",
            "--max-norm",
            "2",
            "--batch-size",
            "256",
            "--epochs",
            "1",
        ],
        "dropout 0.5, input dropout 0.2, one dropout mask per batch,",
        "518a6466b9b49c4c0c99563bf6585e131bd462a29e80c382a55b44598241bc62",
    );
}

#[test]
fn eight_by_eight_images_of_three_classes() {
    let t = tempfile::tempdir().unwrap();
    let data = synthetic(&t.path().join("d"), 8, 3, 0, [600, 90]);
    let model = t.path().join("m.safetensors");
    let ds = data.to_str().unwrap();
    let o = simplenn(&[
        "--data",
        ds,
        "--hidden",
        "16,8",
        "--epochs",
        "3",
        "--val",
        "60",
        "--batch-size",
        "32",
        "--no-progress",
        "--save",
        model.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", error_lines(&o));
    let text = stdout(&o);
    assert!(text.contains("model: 64-16-8-3;"), "{text}");
    assert!(text.contains("test accuracy 100.00% (90 / 90)"), "{text}");
    assert!(!text.contains("note:"), "every class has images: {text}");
    // `--classes 20` for 3 labels: the 17 classes without images are named
    // (the first 8 of them).
    let k20 = t.path().join("k20.safetensors");
    let flags = "--classes 20 --hidden 8 --epochs 1 --val 60 --no-progress";
    let mut args: Vec<&str> = flags.split(' ').collect();
    args.extend(["--data", ds, "--save", k20.to_str().unwrap()]);
    let o = simplenn(&args);
    assert!(o.status.success(), "{:?}", error_lines(&o));
    assert!(
        stdout(&o).contains(
            "note: 17 of the 20 classes have no training images (3, 4, 5, 6, 7, 8, 9, 10, …); the model cannot learn them"
        ),
        "{}",
        stdout(&o)
    );

    // The file is what PyTorch's nn.Sequential(Linear, ReLU, Linear, ReLU, Linear) saves.
    let bytes = std::fs::read(&model).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<(String, Vec<usize>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec()))
        .collect();
    names.sort();
    let want = [
        ("0.bias", vec![16]),
        ("0.weight", vec![16, 64]),
        ("2.bias", vec![8]),
        ("2.weight", vec![8, 16]),
        ("4.bias", vec![3]),
        ("4.weight", vec![3, 8]),
    ];
    let want: Vec<(String, Vec<usize>)> = want
        .iter()
        .map(|(n, s)| (n.to_string(), s.clone()))
        .collect();
    assert_eq!(names, want);

    // eval: the 3-class tables.
    let o = simplenn(&["eval", "--model", model.to_str().unwrap(), "--data", ds]);
    assert!(o.status.success(), "{:?}", error_lines(&o));
    let text = stdout(&o);
    assert!(text.contains("(64-16-8-3)"), "{text}");
    assert!(text.contains("accuracy 100.00% (90 / 90)"), "{text}");
    let matrix: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("true"))
        .collect();
    assert_eq!(matrix.len(), 4, "{text}");
    assert!(
        matrix[2].split_whitespace().eq(["1", "0", "30", "0"]),
        "{text}"
    );

    // predict: an 8 × 8 model answers an 8 × 8 image prepared like MNIST,
    // scaled to side 8 (a box of 8 · 20/28 pixels, the ink's centre of mass
    // on (4, 4)). The stripes the classes are drawn with do not survive that
    // preparation, so which class wins says nothing; what is checked is
    // that the answer is the model's own on the prepared input.
    let png = t.path().join("one.png");
    let img = image::GrayImage::from_fn(8, 8, |x, y| {
        let p = (y * 8 + x) as usize;
        image::Luma([if p % 3 == 1 { 230 } else { 10 }])
    });
    img.save(&png).unwrap();
    let o = simplenn(&[
        "predict",
        "--json",
        "--model",
        model.to_str().unwrap(),
        png.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", error_lines(&o));
    let answer: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let gray = predict::load_image(&png).unwrap();
    let x = predict::to_input(&gray, 8, "one.png").unwrap();
    assert_eq!(x.len(), 64);
    let mass: f32 = x.iter().sum();
    let centre = |coord: fn(usize) -> usize| {
        x.iter()
            .enumerate()
            .map(|(i, v)| coord(i) as f32 * v)
            .sum::<f32>()
            / mass
    };
    let (cy, cx) = (centre(|i| i / 8), centre(|i| i % 8));
    assert!(
        (cy - 4.0).abs() <= 0.5 && (cx - 4.0).abs() <= 0.5,
        "centre of mass ({cy}, {cx})"
    );
    let p = predict::probabilities(&modelfile::load_model(&model).unwrap(), &x);
    // The first of equal maxima, as predict orders ties.
    let best = (0..3).fold(0, |best, c| if p[c] > p[best] { c } else { best });
    assert_eq!(answer[0]["digit"], best, "{answer} against {p:?}");
    let said = answer[0]["probability"].as_f64().unwrap();
    assert!(
        (said - p[best] as f64).abs() < 1e-6,
        "{answer} against {p:?}"
    );
}

/// The note on classes without images names one in the singular, up to
/// eight in a list, and the first eight then "…" past that: labels 0–9
/// (`i·7 mod 10`) counted against 11, 18 and 19 classes.
#[test]
fn classes_without_images_are_named_up_to_eight() {
    let t = tempfile::tempdir().unwrap();
    let train = common::random_dataset(t.path(), 30);
    let note = |k| simplenn::train::unseen_classes(&train, 30, k);
    assert_eq!(note(10), None);
    assert_eq!(
        note(11).unwrap(),
        "note: class 10 of the 11 has no training images; the model cannot learn it"
    );
    assert_eq!(
        note(18).unwrap(),
        "note: 8 of the 18 classes have no training images (10, 11, 12, 13, 14, 15, 16, 17); the model cannot learn them"
    );
    assert_eq!(
        note(19).unwrap(),
        "note: 9 of the 19 classes have no training images (10, 11, 12, 13, 14, 15, 16, 17, …); the model cannot learn them"
    );
    // Only the first `n_train` images count: the first 3 have labels 0, 7, 4.
    assert_eq!(
        simplenn::train::unseen_classes(&train, 3, 10).unwrap(),
        "note: 7 of the 10 classes have no training images (1, 2, 3, 5, 6, 8, 9); the model cannot learn them"
    );
}

/// A 2-epoch run of a small network on the stripes in `d`.
fn stripes_run(d: &str) -> [&str; 12] {
    [
        "--data",
        d,
        "--hidden",
        "16,8",
        "--epochs",
        "2",
        "--val",
        "60",
        "--batch-size",
        "32",
        "--no-progress",
        "--no-save",
    ]
}

#[test]
fn test_every_epoch_says_when_98_and_99_percent_were_first_reached() {
    let t = tempfile::tempdir().unwrap();
    let data = synthetic(&t.path().join("d"), 8, 3, 0, [600, 90]);
    let d = data.to_str().unwrap();
    // A 2-epoch run on the stripes with `extra` flags: what it printed.
    let run = |extra: &[&str]| {
        let o = simplenn(&[&stripes_run(d)[..], extra].concat());
        assert!(o.status.success(), "{:?}", error_lines(&o));
        stdout(&o)
    };
    // These stripes are learnt within the first epoch (90 / 90); at a
    // thousandth of the rate the network stays below chance.
    for (lr, said) in [("0.1", "after epoch 1 ("), ("0.0001", "not reached\n")] {
        let text = run(&["--lr", lr, "--test-every-epoch"]);
        for target in ["98%", "99%"] {
            let line = format!("\ntest accuracy {target}: {said}");
            assert!(text.contains(&line), "lr {lr}: no {line:?} in {text}");
        }
    }
    // Without the flag, no test set is scored per epoch and nothing is said.
    let text = run(&["--lr", "0.1"]);
    assert!(
        !text.contains("test acc ") && !text.contains("98%"),
        "{text}"
    );
    // Stopped after epoch 1 and resumed: epoch 1 is still the first, from
    // the checkpoint's run, and a resumed complete checkpoint says so too.
    let ck = t.path().join("ck.st");
    let ck = ck.to_str().unwrap();
    run(&[
        "--checkpoint",
        ck,
        "--stop-after",
        "1",
        "--test-every-epoch",
    ]);
    for _ in 0..2 {
        let o = simplenn(&["--data", d, "--resume", ck, "--no-save", "--no-progress"]);
        assert!(o.status.success(), "{:?}", error_lines(&o));
        let text = stdout(&o);
        for target in ["98%", "99%"] {
            let line = format!("\ntest accuracy {target}: after epoch 1 (before the resume)\n");
            assert!(text.contains(&line), "no {line:?} in {text}");
        }
    }
}

#[test]
fn milestones_are_the_runs_own_and_a_resumed_run_keeps_them() {
    let t = tempfile::tempdir().unwrap();
    let data = synthetic(&t.path().join("d"), 8, 3, 0, [600, 90]);
    let d = data.to_str().unwrap();
    let base = stripes_run(d);
    let run = |extra: &[&str]| {
        let o = simplenn(&[&base[..], extra].concat());
        assert!(o.status.success(), "{:?}", error_lines(&o));
        stdout(&o)
    };
    let has = |text: &str, lines: &[&str]| {
        for line in lines {
            assert!(
                text.contains(&format!("\n{line}\n")),
                "no {line:?} in {text}"
            );
        }
    };
    // As in the test above: learnt in epoch 1 at lr 0.1, below chance at
    // lr 0.0001; the milestones replace 98 % and 99 %.
    let milestones = ["--test-every-epoch", "--milestones", "99.5,50"];
    let text = run(&[&["--lr", "0.0001"][..], &milestones].concat());
    has(
        &text,
        &[
            "test accuracy 50%: not reached",
            "test accuracy 99.5%: not reached",
        ],
    );
    assert!(!text.contains("98%") && !text.contains("99%"), "{text}");
    // Without --test-every-epoch there is nothing to report them in.
    let o = simplenn(&[&base[..], &["--milestones", "85,90"]].concat());
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        error_lines(&o),
        ["simplenn: error: --milestones 85,90: they are reported only with --test-every-epoch; add it, or leave --milestones out"]
    );
    let o = simplenn(&[&base[..], &["--test-every-epoch", "--milestones", "85,101"]].concat());
    assert_eq!(o.status.code(), Some(2));
    assert!(
        error_lines(&o)[0].contains("101: a test accuracy is a percentage above 0 and at most 100")
    );
    // Stopped after epoch 1: a resumed run keeps the checkpoint's
    // milestones and says so; given others, it reports those, and says
    // why it cannot know what happened to them before the resume.
    let ck = t.path().join("ck.st");
    let copy = t.path().join("copy.st");
    let (ck, copy) = (ck.to_str().unwrap(), copy.to_str().unwrap());
    run(&[&["--checkpoint", ck, "--stop-after", "1"][..], &milestones].concat());
    std::fs::copy(ck, copy).unwrap();
    let resume = |path: &str, extra: &[&str]| {
        let args = [
            &["--data", d, "--resume", path, "--no-save", "--no-progress"][..],
            extra,
        ];
        let o = simplenn(&args.concat());
        assert!(o.status.success(), "{:?}", error_lines(&o));
        stdout(&o)
    };
    // Turned off, nothing of them is kept or said.
    let off = t.path().join("off.st");
    let off = off.to_str().unwrap();
    std::fs::copy(ck, off).unwrap();
    let text = resume(off, &["--no-test-every-epoch"]);
    assert!(
        !text.contains("--milestones") && !text.contains("test accuracy 50%"),
        "{text}"
    );
    let text = resume(ck, &[]);
    assert!(
        text.contains("resuming with a checkpoint when the run ends, --test-every-epoch and --milestones 50,99.5, as the run that wrote the checkpoint had"),
        "{text}"
    );
    has(
        &text,
        &[
            "test accuracy 50%: after epoch 1 (before the resume)",
            "test accuracy 99.5%: after epoch 1 (before the resume)",
        ],
    );
    // 60 % and 99.8 %, which the checkpoint's run did not have: 60 % was
    // reached after epoch 1, since 99.5 % was (by epoch 1, said as after
    // it: there is no earlier epoch); of 99.8 %, above both, nothing is
    // known before the resume.
    let text = resume(copy, &["--milestones", "60,99.8"]);
    assert!(!text.contains("--milestones 50,99.5"), "{text}");
    let unchecked = "not every earlier epoch was checked for it";
    has(
        &text,
        &["test accuracy 60%: after epoch 1 (before the resume)"],
    );
    let line = "test accuracy 99.8%: by epoch 2 (";
    let why = format!("s after the resume; {unchecked})");
    assert!(
        text.lines()
            .any(|l| l.starts_with(line) && l.ends_with(&why)),
        "no {line:?}…{why:?} in {text}"
    );
    // --no-test-every-epoch and --milestones contradict each other.
    let o = simplenn(
        &[
            &base[..],
            &[
                "--resume",
                copy,
                "--no-test-every-epoch",
                "--milestones",
                "85",
            ],
        ]
        .concat(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        error_lines(&o),
        ["simplenn: error: --milestones 85: they are reported only with --test-every-epoch, which --no-test-every-epoch turns off; write --test-every-epoch instead, or leave --milestones out"]
    );
}

#[test]
fn one_pixel_images_and_softmax_regression() {
    let t = tempfile::tempdir().unwrap();
    // 1 × 1 images: class 1 is bright, class 0 dark.
    let data = synthetic(&t.path().join("d"), 1, 2, 0, [400, 100]);
    let m = Mnist::open(&data).unwrap();
    assert_eq!((m.train.pixels(), m.classes), (1, 2));
    let cfg = common::config(&[
        "--data",
        data.to_str().unwrap(),
        "--hidden",
        "none",
        "--epochs",
        "5",
        "--val",
        "50",
        "--batch-size",
        "25",
        "--lr",
        "0.5",
        "--no-progress",
        "--no-save",
    ]);
    let report = simplenn::train::train(&cfg, &m, &mut std::io::sink()).unwrap();
    assert_eq!(report.params.dims.name(), "1-2");
    assert_eq!(report.test.accuracy(), 1.0, "{:?}", report.test);
}

/// 4 × 9 images have 36 pixels, as 6 × 6 ones do: the saved model says
/// which, so `predict` refuses rather than read a square image into it, and
/// a square model's file carries no such note (its bytes are unchanged).
#[test]
fn a_model_of_non_square_images_is_not_taken_for_a_square_one() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("d");
    std::fs::create_dir_all(&data).unwrap();
    for (n, images, labels) in [
        (300u32, TRAIN_IMAGES, TRAIN_LABELS),
        (60, TEST_IMAGES, TEST_LABELS),
    ] {
        let lab: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
        let pix: Vec<u8> = (0..n as usize * 36)
            .map(|p| {
                if (p % 36) / 9 == usize::from(lab[p / 36]) {
                    200
                } else {
                    10
                }
            })
            .collect();
        write_idx(&data.join(images), &[n, 4, 9], &pix).unwrap();
        write_idx(&data.join(labels), &[n], &lab).unwrap();
    }
    // A 1-epoch 36-8-3 model of the data in `data`, saved to `model`.
    let train_to = |data: &std::path::Path, model: &std::path::Path| {
        let o = simplenn(&[
            "--data",
            data.to_str().unwrap(),
            "--hidden",
            "8",
            "--epochs",
            "1",
            "--val",
            "60",
            "--no-progress",
            "--save",
            model.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{:?}", error_lines(&o));
    };
    let model = t.path().join("m.safetensors");
    train_to(&data, &model);
    let png = t.path().join("six.png");
    image::GrayImage::from_pixel(6, 6, image::Luma([255]))
        .save(&png)
        .unwrap();
    let o = simplenn(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        png.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = error_lines(&o);
    assert!(
        err.len() == 1 && err[0].contains("trained on 4 × 9 images"),
        "{err:?}"
    );
    // --as-is prepares nothing: an image of the model's own shape, 9 wide
    // and 4 high, is read (row 1 lit: class 1), and one of another shape
    // is refused naming the shape.
    let band = t.path().join("band.png");
    image::GrayImage::from_fn(9, 4, |_, y| image::Luma([if y == 1 { 200 } else { 10 }]))
        .save(&band)
        .unwrap();
    let as_is = |png: &std::path::Path| {
        simplenn(&[
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--as-is",
            png.to_str().unwrap(),
        ])
    };
    let o = as_is(&band);
    assert!(o.status.success(), "{:?}", error_lines(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with(&format!("{}: 1  (1 ", band.display())),
        "{out}"
    );
    let o = as_is(&png);
    assert_eq!(o.status.code(), Some(1));
    let err = error_lines(&o);
    assert!(
        err.len() == 1
            && err[0].contains("--as-is takes the image's pixels as the model's inputs, images 9 pixels wide and 4 high as it was trained on, but the image is 6 wide and 6 high"),
        "{err:?}"
    );
    // eval on the model's own data still works.
    let o = simplenn(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", error_lines(&o));
    // ... and on 6 × 6 images (36 pixels too) it is refused, as a 6 × 6
    // model is on the 4 × 9 images: the pixels would be laid out wrongly.
    let square = t.path().join("d6");
    std::fs::create_dir_all(&square).unwrap();
    for (name, dims) in [(TEST_IMAGES, [60u32, 6, 6]), (TRAIN_IMAGES, [300, 6, 6])] {
        let n = dims[0] as usize * 36;
        write_idx(&square.join(name), &dims, &vec![7u8; n]).unwrap();
    }
    for (name, n) in [(TEST_LABELS, 60u32), (TRAIN_LABELS, 300)] {
        let lab: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
        write_idx(&square.join(name), &[n], &lab).unwrap();
    }
    let square_model = t.path().join("m6.safetensors");
    train_to(&square, &square_model);
    for (m, d, says) in [
        (&model, &square, "trained on 4 × 9 images but the images in"),
        (
            &square_model,
            &data,
            "trained on 6 × 6 images but the images in",
        ),
    ] {
        let o = simplenn(&[
            "eval",
            "--model",
            m.to_str().unwrap(),
            "--data",
            d.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(1), "{:?}", error_lines(&o));
        let err = error_lines(&o);
        assert!(err.len() == 1 && err[0].contains(says), "{err:?}");
    }
}

#[test]
fn labels_numbered_from_one_with_many_classes() {
    let t = tempfile::tempdir().unwrap();
    // EMNIST letters style: 26 classes labelled 1..=26, so K = 27.
    let data = synthetic(&t.path().join("d"), 6, 26, 1, [1_040, 260]);
    let model = t.path().join("m.safetensors");
    let ds = data.to_str().unwrap();
    let o = simplenn(&[
        "--data",
        ds,
        "--hidden",
        "32",
        "--epochs",
        "8",
        "--val",
        "104",
        "--batch-size",
        "26",
        "--no-progress",
        "--save",
        model.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", error_lines(&o));
    assert!(stdout(&o).contains("model: 36-32-27;"), "{}", stdout(&o));
    // Class 0 has no images: the run says so before it trains.
    assert!(
        stdout(&o)
            .contains("note: class 0 of the 27 has no training images; the model cannot learn it"),
        "{}",
        stdout(&o)
    );
    // More than 20 classes: the per-class table and the most-confused
    // pairs, no 27-column matrix; JSON has it all.
    let o = simplenn(&["eval", "--model", model.to_str().unwrap(), "--data", ds]);
    assert!(o.status.success(), "{:?}", error_lines(&o));
    let text = stdout(&o);
    assert!(!text.contains("confusion matrix"), "{text}");
    assert!(text.contains("most confused (27 classes"), "{text}");
    let class_rows = text
        .lines()
        .skip_while(|l| !l.starts_with("class"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .count();
    assert_eq!(class_rows, 27, "{text}");
    let o = simplenn(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        ds,
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["confusion"].as_array().unwrap().len(), 27);
    assert_eq!(v["classes"][0]["support"], 0, "class 0 is never seen");
}

#[test]
fn weights_are_identical_for_any_thread_count_at_every_depth() {
    let t = tempfile::tempdir().unwrap();
    let dir = small_mnist(&t.path().join("data"), 1_500, 200);
    let mnist = Mnist::open(&dir).unwrap();
    // Batches of 700 (a partial last batch, and batches of two blocks) cut
    // pass 1 by row blocks; 160 units on batches of 32 take it layer by
    // layer (`model::Pass1`), the wide products cut by columns.
    for (hidden, batch) in [
        ("48", "700"),
        ("48,24", "700"),
        ("40,24,16", "700"),
        ("160,40", "32"),
    ] {
        let mut first: Option<Vec<u8>> = None;
        // The work is cut into min(threads, cores) parts: on a 2-core
        // machine 3 and 8 threads run as 2. tests/optim.rs gives the
        // trainer 1 to 8 parts directly.
        for threads in ["1", "2", "3", "8"] {
            let path = t.path().join(format!("m-{hidden}-{threads}.safetensors"));
            let cfg = common::config(&[
                "--data",
                dir.to_str().unwrap(),
                "--hidden",
                hidden,
                "--epochs",
                "2",
                "--val",
                "300",
                "--batch-size",
                batch,
                "--threads",
                threads,
                "--no-progress",
                "--save",
                path.to_str().unwrap(),
            ]);
            simplenn::train::train(&cfg, &mnist, &mut std::io::sink()).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            match &first {
                None => first = Some(bytes),
                Some(f) => assert!(
                    &bytes == f,
                    "--hidden {hidden}: --threads {threads} saved other bytes than --threads 1"
                ),
            }
        }
    }
}

#[test]
fn checkpoints_keep_the_widths_and_resume_refuses_others() {
    let t = tempfile::tempdir().unwrap();
    let dir = small_mnist(&t.path().join("data"), 1_000, 100);
    let ds = dir.to_str().unwrap();
    let ck = t.path().join("ck.safetensors");
    let args = |extra: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "--data",
            ds,
            "--epochs",
            "2",
            "--val",
            "200",
            "--no-progress",
            "--no-save",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        simplenn(&a)
    };
    let o = run(args(&["--hidden", "32,16", "--stop-after", "1"])
        .into_iter()
        .chain(["--checkpoint".to_string(), ck.to_str().unwrap().to_string()])
        .collect());
    assert!(o.status.success(), "{:?}", error_lines(&o));
    let c = checkpoint::load_checkpoint(&ck).unwrap();
    assert_eq!(c.shape.hidden, vec![32, 16]);
    assert_eq!(c.params.dims.name(), "784-32-16-10");

    let o = run(args(&["--hidden", "32"])
        .into_iter()
        .chain(["--resume".to_string(), ck.to_str().unwrap().to_string()])
        .collect());
    assert_eq!(o.status.code(), Some(2));
    let err = error_lines(&o);
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].contains("--hidden 32 (checkpoint: 32,16)"),
        "{}",
        err[0]
    );

    // Leaving --hidden out takes the checkpoint's widths and finishes the run.
    let o = run(args(&[])
        .into_iter()
        .chain(["--resume".to_string(), ck.to_str().unwrap().to_string()])
        .collect());
    assert!(o.status.success(), "{:?}", error_lines(&o));
    assert!(
        stdout(&o).contains("model: 784-32-16-10;"),
        "{}",
        stdout(&o)
    );
}
