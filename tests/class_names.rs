//! `--class-names FILE`: names given at training travel in the model file
//! and its checkpoints (a resumed run keeps them, or takes new ones from
//! the flag), and `eval`, `predict`, `serve` and `train --serve` show them
//! beside the class numbers; a flag on those commands stands in for the
//! file's, also where the file's are damaged; a bad names file is one line
//! and exit 1, before anything is trained or written; an EMNIST mapping
//! file names letters; a model trained without names has no key and
//! prints as before.

mod common;

use std::path::Path;

use common::http::{get, Child};
use common::{error_lines, simplenn, stdout, synthetic};
use simplenn::classes::KEY;

const NAMES: &str = "zero\nun\ndeux trois\n";

/// The string metadata of the safetensors file `path`.
fn metadata(path: &Path) -> std::collections::HashMap<String, String> {
    let bytes = std::fs::read(path).unwrap();
    let (_, st) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    st.metadata().clone().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `eval` of `model` on `data` with `--class-names names`.
fn eval_named(model: &Path, data: &Path, names: &Path) -> std::process::Output {
    let a = [
        "eval",
        "--model",
        s(model),
        "--data",
        s(data),
        "--class-names",
        s(names),
    ];
    simplenn(&a)
}

#[test]
fn names_travel_from_training_to_eval_predict_and_serve() {
    let t = tempfile::tempdir().unwrap();
    let data = synthetic(&t.path().join("d"), 8, 3, 0, [600, 90]);
    let names = t.path().join("names.txt");
    std::fs::write(&names, NAMES).unwrap();
    let (model, ck) = (
        t.path().join("m.safetensors"),
        t.path().join("ck.safetensors"),
    );
    let train = |extra: &[&str]| {
        let mut a = vec!["--data", s(&data), "--hidden", "16", "--epochs", "2"];
        a.extend(["--val", "60", "--batch-size", "32", "--no-progress"]);
        a.extend(["--save", s(&model), "--checkpoint", s(&ck)]);
        a.extend(extra);
        simplenn(&a)
    };

    // A names file that does not fit the data: one line, exit 1, nothing written.
    let two = t.path().join("two.txt");
    std::fs::write(&two, "a\nb\n").unwrap();
    let o = train(&["--class-names", s(&two)]);
    assert_eq!(o.status.code(), Some(1), "{:?}", error_lines(&o));
    let err = error_lines(&o);
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].contains(&format!(
            "--class-names {}: 2 names for 3 classes",
            two.display()
        )),
        "{err:?}"
    );
    assert!(stdout(&o).is_empty() && !model.exists() && !ck.exists());

    // Stopped after one epoch, then resumed without the flag: the
    // checkpoint's names are kept, and said so.
    let o = train(&["--class-names", s(&names), "--stop-after", "1"]);
    assert!(o.status.success(), "{:?}", error_lines(&o));
    let o = train(&["--resume", s(&ck)]);
    assert!(o.status.success(), "{:?}", error_lines(&o));
    assert!(
        stdout(&o).contains("the same class names, as the run that wrote the checkpoint had"),
        "{}",
        stdout(&o)
    );
    assert_eq!(metadata(&model)[KEY], "zero\nun\ndeux trois");

    // eval: the names beside the numbers in the table, and in the JSON.
    let o = simplenn(&["eval", "--model", s(&model), "--data", s(&data)]);
    assert!(o.status.success(), "{:?}", error_lines(&o));
    let text = stdout(&o);
    let rows: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("class"))
        .take(4)
        .collect();
    assert_eq!(
        rows[0], "class  name        precision   recall  images  predicted",
        "{text}"
    );
    assert!(rows[3].starts_with("    2  deux trois  "), "{text}");
    assert!(rows.iter().all(|r| r.len() == rows[0].len()), "{text}");
    let o = simplenn(&["eval", "--json", "--model", s(&model), "--data", s(&data)]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["classes"][1]["name"], "un", "{v}");
    // A flag names them otherwise, for this command only.
    let other = t.path().join("other.txt");
    std::fs::write(&other, "A\nB\nC\n").unwrap();
    let o = simplenn(&[
        "eval",
        "--json",
        "--model",
        s(&model),
        "--data",
        s(&data),
        "--class-names",
        s(&other),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["classes"][2]["name"], "C", "{v}");
    let o = eval_named(&model, &data, &two);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(error_lines(&o).len(), 1, "{:?}", error_lines(&o));

    // predict: each answer's name is its class's.
    let png = t.path().join("one.png");
    let img = image::GrayImage::from_fn(8, 8, |x, y| {
        image::Luma([if (y * 8 + x) % 3 == 1 { 230 } else { 10 }])
    });
    img.save(&png).unwrap();
    let o = simplenn(&["predict", "--json", "--model", s(&model), s(&png)]);
    assert!(o.status.success(), "{:?}", error_lines(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let name = |c: &serde_json::Value| ["zero", "un", "deux trois"][c.as_u64().unwrap() as usize];
    assert_eq!(v[0]["name"], name(&v[0]["digit"]), "{v}");
    for g in v[0]["top3"].as_array().unwrap() {
        assert_eq!(g["name"], name(&g["digit"]), "{v}");
    }
    let o = simplenn(&["predict", "--model", s(&model), s(&png)]);
    let line = stdout(&o);
    let want = format!(
        "{}: {} {}  (",
        png.display(),
        v[0]["digit"],
        name(&v[0]["digit"])
    );
    assert!(line.starts_with(&want), "{line}");
    // A flag names them otherwise here too.
    let other = t.path().join("other.txt");
    let o = simplenn(&[
        "predict",
        "--json",
        "--model",
        s(&model),
        s(&png),
        "--class-names",
        s(&other),
    ]);
    let w: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let upper = ["A", "B", "C"][v[0]["digit"].as_u64().unwrap() as usize];
    assert_eq!(w[0]["name"], upper, "{w}");

    // serve: /api/model lists them, /api/predict names its answer.
    let child = Child::spawn(&[
        "serve",
        "--model",
        s(&model),
        "--data",
        s(&data),
        "--port",
        "0",
    ]);
    let addr = child.address();
    let m = get(addr, "/api/model").json();
    assert_eq!(
        m["class_names"],
        serde_json::json!(["zero", "un", "deux trois"]),
        "{m}"
    );
    let body = std::fs::read(&png).unwrap();
    let p = common::http::post(addr, "/api/predict", "image/png", &body).json();
    assert_eq!(p["name"], name(&p["digit"]), "{p}");
    drop(child);
    // serve's own flag, on the same model.
    let child = Child::spawn(&[
        "serve",
        "--model",
        s(&model),
        "--port",
        "0",
        "--class-names",
        s(&other),
    ]);
    let m = get(child.address(), "/api/model").json();
    assert_eq!(m["class_names"], serde_json::json!(["A", "B", "C"]), "{m}");
    drop(child);

    // Resumed with the flag, a run takes the new names (no weight depends
    // on them), and says nothing of keeping the old ones.
    let o = train(&["--class-names", s(&names), "--stop-after", "1"]);
    assert!(o.status.success(), "{:?}", error_lines(&o));
    let o = train(&["--resume", s(&ck), "--class-names", s(&other)]);
    assert!(o.status.success(), "{:?}", error_lines(&o));
    assert!(!stdout(&o).contains("class names"), "{}", stdout(&o));
    assert_eq!(metadata(&model)[KEY], "A\nB\nC");

    // train --serve: the live page has the run's names.
    let live = t.path().join("live.safetensors");
    let mut a = vec![
        "--data",
        s(&data),
        "--hidden",
        "8",
        "--epochs",
        "1",
        "--val",
        "60",
    ];
    a.extend([
        "--no-progress",
        "--save",
        s(&live),
        "--serve",
        "0",
        "--class-names",
        s(&names),
    ]);
    let child = Child::spawn(&a);
    let addr = child.address();
    child.wait_for("training done", 120);
    let m = get(addr, "/api/model").json();
    assert_eq!(
        m["class_names"],
        serde_json::json!(["zero", "un", "deux trois"]),
        "{m}"
    );
}

/// Names a model file records that do not fit it: `eval` says the file is
/// damaged and how to do without them; with the flag it evaluates.
#[test]
fn damaged_names_are_named_and_the_flag_stands_in() {
    let t = tempfile::tempdir().unwrap();
    let (model, data) = common::small_model(t.path());
    let params = simplenn::modelfile::load_model(&model).unwrap();
    let meta = [(KEY.to_string(), "a\nb".to_string())];
    let bad = t.path().join("bad.safetensors");
    std::fs::write(&bad, simplenn::modelfile::to_bytes(&params, &[], meta)).unwrap();
    let o = simplenn(&["eval", "--model", s(&bad), "--data", s(&data)]);
    assert_eq!(o.status.code(), Some(1));
    let err = error_lines(&o);
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].contains("its metadata simplenn.class_names has 2 names for its 10 classes: the file is damaged; use another copy, or give the names with --class-names FILE"),
        "{err:?}"
    );
    let names = t.path().join("digits.txt");
    std::fs::write(&names, "0\n1\n2\n3\n4\n5\n6\n7\n8\nnine\n").unwrap();
    let o = eval_named(&bad, &data, &names);
    assert!(o.status.success(), "{:?}", error_lines(&o));
    assert!(stdout(&o).contains("\n    9  nine  "), "{}", stdout(&o));
}

#[test]
fn a_model_without_names_prints_as_before() {
    let t = tempfile::tempdir().unwrap();
    // Trained without the flag, by the binary: no key in the file.
    let data = synthetic(&t.path().join("d"), 8, 3, 0, [300, 30]);
    let plain = t.path().join("plain.safetensors");
    let o = simplenn(&[
        "--data",
        s(&data),
        "--hidden",
        "8",
        "--epochs",
        "1",
        "--val",
        "30",
        "--no-progress",
        "--save",
        s(&plain),
    ]);
    assert!(o.status.success(), "{:?}", error_lines(&o));
    assert!(!metadata(&plain).contains_key(KEY));

    let (model, data) = common::small_model(t.path());
    let o = simplenn(&["eval", "--json", "--model", s(&model), "--data", s(&data)]);
    assert!(o.status.success(), "{:?}", error_lines(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["classes"][0].get("name").is_none(), "{v}");
    let o = simplenn(&["eval", "--model", s(&model), "--data", s(&data)]);
    assert!(stdout(&o).contains("\nclass  precision   recall  images  predicted\n"));
    // Names for the ten digits given on the command line alone.
    let names = t.path().join("digits.txt");
    let words = "zero one two three four five six seven eight nine";
    std::fs::write(&names, words.replace(' ', "\n")).unwrap();
    let o = eval_named(&model, &data, &names);
    assert!(o.status.success(), "{:?}", error_lines(&o));
    assert!(stdout(&o).contains("\n    7  seven  "), "{}", stdout(&o));
}

/// A checkpoint whose recorded names are damaged resumes with
/// `--class-names` standing in for them, and without it is refused with
/// both ways out; no weight depends on names.
#[test]
fn a_checkpoint_with_damaged_names_resumes_with_the_flag() {
    let t = tempfile::tempdir().unwrap();
    let data = synthetic(&t.path().join("d"), 8, 3, 0, [300, 30]);
    let names = t.path().join("names.txt");
    std::fs::write(&names, NAMES).unwrap();
    let ck = t.path().join("ck.safetensors");
    let train = |extra: &[&str]| {
        let mut a = vec!["--data", s(&data), "--hidden", "8", "--epochs", "2"];
        a.extend(["--val", "30", "--no-progress", "--no-save"]);
        a.extend(["--checkpoint", s(&ck)]);
        a.extend(extra);
        simplenn(&a)
    };
    let o = train(&["--class-names", s(&names), "--stop-after", "1"]);
    assert!(o.status.success(), "{:?}", error_lines(&o));
    // The same checkpoint with names for two classes, not three.
    let c = simplenn::checkpoint::load_checkpoint(&ck).unwrap();
    let mut meta = metadata(&ck);
    meta.insert(KEY.into(), "a\nb".into());
    let extra = [("momentum", &c.velocity)];
    let damaged = simplenn::modelfile::to_bytes(&c.params, &extra, meta);
    std::fs::write(&ck, damaged).unwrap();
    let o = train(&["--resume", s(&ck)]);
    assert_eq!(o.status.code(), Some(1));
    let err = error_lines(&o);
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].ends_with("has 2 names for its 3 classes: the file is damaged; use an earlier checkpoint, or give the names with --class-names FILE"),
        "{err:?}"
    );
    let o = train(&["--resume", s(&ck), "--class-names", s(&names)]);
    assert!(o.status.success(), "{:?}", error_lines(&o));
}

/// The names file is read before the data: a mistyped path is reported
/// without the data being opened (or decompressed).
#[test]
fn the_names_file_is_read_before_the_data() {
    let t = tempfile::tempdir().unwrap();
    let missing = t.path().join("nmaes.txt");
    let nowhere = t.path().join("no-data");
    let o = simplenn(&["--data", s(&nowhere), "--class-names", s(&missing)]);
    assert_eq!(o.status.code(), Some(1));
    let err = error_lines(&o);
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].contains(&format!(
            "cannot read --class-names {}: no such file",
            missing.display()
        )),
        "{err:?}"
    );
}

/// A names file that blocks (a FIFO opened but never written) holds the
/// run before training starts, where the first signal quits at once.
#[cfg(unix)]
#[test]
fn a_signal_before_training_starts_quits_at_once() {
    use std::os::unix::process::ExitStatusExt;
    let t = tempfile::tempdir().unwrap();
    let fifo = t.path().join("names.fifo");
    let c = std::ffi::CString::new(s(&fifo)).unwrap();
    // SAFETY: mkfifo(3) on a NUL-terminated path this test owns.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let model = t.path().join("m.safetensors");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_simplenn"))
        .args([
            "--epochs",
            "1",
            "--class-names",
            s(&fifo),
            "--save",
            s(&model),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the run has the FIFO open for reading (its handlers installed
    // long before), a writer's non-blocking open succeeds; holding it
    // open, writing nothing, leaves the run blocked reading.
    let writer = {
        use std::os::unix::fs::OpenOptionsExt;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let open = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&fifo);
            match open {
                Ok(w) => break w,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                Err(e) => panic!("the run never opened the names FIFO: {e}"),
            }
        }
    };
    // SAFETY: plain kill(2) on our own child's pid; no memory is involved.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the run did not quit on the first SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let err = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{err}");
    assert!(
        err.contains("terminated (SIGTERM) before training started: quitting at once; nothing was trained or saved"),
        "{err}"
    );
    drop(writer);
}

/// EMNIST letters' own mapping file names a model of labels 1–26: class 0
/// (never a label) is `unused 0`, the others their letters.
#[test]
fn an_emnist_mapping_names_the_letters() {
    let t = tempfile::tempdir().unwrap();
    let data = synthetic(&t.path().join("d"), 6, 26, 1, [1_040, 260]);
    let mapping = t.path().join("emnist-letters-mapping.txt");
    let lines: String = (1..=26u32)
        .map(|l| format!("{l} {} {}\n", 64 + l, 96 + l))
        .collect();
    std::fs::write(&mapping, lines).unwrap();
    let model = t.path().join("letters.safetensors");
    let mut a = vec!["--data", s(&data), "--hidden", "32", "--epochs", "1"];
    a.extend(["--val", "260", "--no-progress", "--save", s(&model)]);
    a.extend(["--class-names", s(&mapping)]);
    let o = simplenn(&a);
    assert!(o.status.success(), "{:?}", error_lines(&o));
    // Its class 0 has no images: nothing to say of its name.
    assert!(!stdout(&o).contains("the names call"), "{}", stdout(&o));
    // The same mapping on letters numbered from 0, with --classes 27 (what
    // the refusal of the mapping offers): every name one class off, and
    // class 0, which the mapping calls unused, has images; said so.
    let from_0 = synthetic(&t.path().join("d0"), 6, 26, 0, [1_040, 260]);
    let mut b = vec!["--data", s(&from_0), "--hidden", "8", "--epochs", "1"];
    b.extend([
        "--val",
        "260",
        "--no-progress",
        "--no-save",
        "--classes",
        "27",
    ]);
    b.extend(["--class-names", s(&mapping)]);
    let shifted = simplenn(&b);
    assert!(shifted.status.success(), "{:?}", error_lines(&shifted));
    assert!(
        stdout(&shifted).lines().any(|l| l == "note: class 0 has 30 training images, but the names call it unused 0; a mapping of another numbering (EMNIST letters' labels start at 1) puts every name on the wrong class: give --class-names the mapping of this data set"),
        "{}",
        stdout(&shifted)
    );
    let o = simplenn(&["eval", "--json", "--model", s(&model), "--data", s(&data)]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 27);
    assert_eq!((names[0], names[1], names[26]), ("unused 0", "A/a", "Z/z"));
}
