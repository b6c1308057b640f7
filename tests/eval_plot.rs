//! `simplenn eval` and `simplenn plot` through the real binary.

mod common;

use common::*;
use std::collections::BTreeMap;

use simplenn::model::{Dims, Init, Params};
use simplenn::modelfile;

/// A model that scores what guessing would (here an untrained one, as a
/// model of another data set of the same shape would) gets a note naming
/// the data it was scored on; the report itself is unchanged.
#[test]
fn eval_notes_a_score_near_guessing() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(&dir.path().join("data"), 200, 400);
    let model = dir.path().join("untrained.safetensors");
    let p = Params::init(Dims::mnist(&[8]), Init::He, 1);
    std::fs::write(&model, modelfile::to_bytes(&p, &[], BTreeMap::new())).unwrap();
    let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());
    for json in [false, true] {
        let args = ["eval", "--model", m, "--data", d, "--json"];
        let o = simplenn(&args[..if json { 6 } else { 5 }]);
        assert!(o.status.success(), "{}", stderr(&o));
        let note = stderr(&o);
        assert!(
            note.starts_with("simplenn: note: accuracy ")
                && note.contains(" what guessing scores on these images")
                && note.contains(&format!("another data set than {d}")),
            "{note}"
        );
        assert!(!stdout(&o).contains("guessing"), "{}", stdout(&o));
    }
    // A directory whose name holds a line break, an escape and a direction
    // override: the note names it on one line, those written out.
    let odd = dir.path().join("d\nx\u{1b}[31mred\u{202e}gnp.exe");
    std::fs::rename(&data, &odd).unwrap();
    let o = simplenn(&["eval", "--model", m, "--data", odd.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let note = stderr(&o);
    assert_eq!(note.lines().count(), 1, "{note}");
    assert!(
        note.contains("another data set than ")
            && note.contains("d\\nx\\u{1b}[31mred\\u{202e}gnp.exe, evaluate it"),
        "{note}"
    );
}

#[test]
fn eval_prints_tables_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(&dir.path().join("data"), 1000, 400);
    let model = dir.path().join("m.safetensors");
    let metrics = dir.path().join("m.jsonl");
    let svg = dir.path().join("curve.svg");
    let d = data.to_str().unwrap();
    let o = simplenn(&[
        "--data",
        d,
        "--hidden",
        "16",
        "--epochs",
        "2",
        "--val",
        "100",
        "--save",
        model.to_str().unwrap(),
        "--metrics",
        metrics.to_str().unwrap(),
        "--no-progress",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = model.to_str().unwrap();

    let o = simplenn(&["eval", "--model", m, "--data", d, "--threads", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("guessing"), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("on the test set") && text.contains(": 400 images"),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("accuracy ")), "{text}");
    let table: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("true\\pred"))
        .collect();
    assert_eq!(table.len(), 11, "{text}");
    assert!(
        table.iter().all(|l| l.len() == table[0].len()),
        "ragged table:\n{text}"
    );

    let o = simplenn(&[
        "eval",
        "--model",
        m,
        "--data",
        d,
        "--json",
        "--threads",
        "1",
    ]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let total: u64 = v["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(total, 400);
    assert_eq!(v["images"], 400);
    assert_eq!(v["hidden"], serde_json::json!([16]));
    assert_eq!(v["network"], "784-16-10");
    // The text's accuracy is the JSON's, whatever the thread count.
    let acc = v["accuracy"].as_f64().unwrap();
    assert!(text.contains(&format!("accuracy {:.2}%", 100.0 * acc)));

    // The metrics log of that run, plotted.
    assert_eq!(simplenn::metrics::read(&metrics).unwrap().len(), 2);
    let o = simplenn(&[
        "plot",
        metrics.to_str().unwrap(),
        "-o",
        svg.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = std::fs::read_to_string(&svg).unwrap();
    assert!(s.contains("<svg") && s.contains("<text") && s.contains("validation accuracy"));
}

#[test]
fn eval_refuses_bad_models_and_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(&dir.path().join("data"), 100, 50);
    let d = data.to_str().unwrap();
    let path = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();

    // A model of 100 inputs for 784-pixel images: named with both sizes.
    let mut p = Params::init(Dims::new(100, &[8], 10), Init::He, 1);
    p.data.truncate(p.dims.param_count());
    std::fs::write(
        path("narrow.st"),
        modelfile::to_bytes(&p, &[], BTreeMap::new()),
    )
    .unwrap();
    // Truncated model.
    let good = modelfile::to_bytes(
        &Params::init(Dims::mnist(&[8]), Init::He, 1),
        &[],
        BTreeMap::new(),
    );
    std::fs::write(path("cut.st"), &good[..good.len() - 100]).unwrap();
    std::fs::write(path("text.st"), "hello").unwrap();
    std::fs::write(path("good.st"), &good).unwrap();
    // Nine classes for test labels up to 9: the label 9 (index 7) has none.
    let nine = modelfile::to_bytes(
        &Params::init(Dims::new(784, &[8], 9), Init::He, 1),
        &[],
        BTreeMap::new(),
    );
    std::fs::write(path("nine.st"), &nine).unwrap();

    for (model, data, code, says) in [
        (
            path("narrow.st"),
            d.to_owned(),
            1,
            "the model (100-8-10) takes 100 inputs but the images in",
        ),
        (
            path("cut.st"),
            d.to_owned(),
            1,
            &format!(
                "cut.st: cut short: {} bytes, where its header describes {}; the file is damaged",
                good.len() - 100,
                good.len()
            ),
        ),
        (path("text.st"), d.to_owned(), 1, "not a safetensors file"),
        (path("none.st"), d.to_owned(), 1, "cannot read model"),
        (path("good.st"), path("nodata"), 1, "nodata"),
        (
            path("nine.st"),
            d.to_owned(),
            1,
            "label 9 at index 7 is not below the 9 classes",
        ),
    ] {
        let o = simplenn(&["eval", "--model", &model, "--data", &data]);
        assert_eq!(o.status.code(), Some(code), "{model}: {}", stderr(&o));
        let err = error_lines(&o);
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(
            err[0].starts_with("simplenn: error: ") && err[0].contains(says),
            "{}",
            err[0]
        );
    }
    let o = simplenn(&["eval", "--model", &path("good.st"), "--threads", "100000"]);
    assert_eq!(o.status.code(), Some(2));
}

/// A model read from a pipe is read as long as its header says (and one
/// byte more), not until the stream ends: a stream that never ends, or
/// whose first 8 bytes promise a huge header, is refused at once.
#[test]
fn eval_reads_a_pipe_only_as_far_as_the_header_says() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(&dir.path().join("data"), 100, 50);
    let good = modelfile::to_bytes(
        &Params::init(Dims::mnist(&[8]), Init::He, 1),
        &[],
        BTreeMap::new(),
    );
    let endless = |head: Vec<u8>| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_simplenn"))
            .args(["eval", "--model", "/dev/stdin", "--data"])
            .arg(&data)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // Writes until the reader has gone (a broken pipe), or 1 GB: a
        // reader that read it all would not meet the test's point.
        let writer = std::thread::spawn(move || {
            if stdin.write_all(&head).is_err() {
                return 0;
            }
            let zeros = vec![0u8; 1 << 20];
            (0..1024)
                .take_while(|_| stdin.write_all(&zeros).is_ok())
                .count()
        });
        let o = child.wait_with_output().unwrap();
        let written_mb = writer.join().unwrap();
        (o, written_mb)
    };
    let (o, mb) = endless(good.clone());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "/dev/stdin: longer than the {} bytes its header describes",
            good.len()
        )),
        "{}",
        stderr(&o)
    );
    assert!(mb < 1024, "read the whole stream");
    let (o, mb) = endless(vec![0xff; 8]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not a safetensors file (header too large)"),
        "{}",
        stderr(&o)
    );
    assert!(mb < 1024, "read the whole stream");
}

#[test]
fn plot_refuses_bad_logs() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("m.jsonl");
    std::fs::write(&log, "{\"epoch\": 1}\n").unwrap();
    let out = dir.path().join("c.svg");
    let o = simplenn(&["plot", log.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("m.jsonl line 1: not a simplenn metrics record"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
    let o = simplenn(&["plot", "/nonexistent/m.jsonl"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o)
        .contains("cannot read metrics /nonexistent/m.jsonl: no such file; check the path"));
    // `-` is standard input for plot's log, but not for a model: said so.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_simplenn"))
        .args(["eval", "--model", "-"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot read model -: no such file, and - is not standard input here; pass the file's path (or /dev/stdin)"),
        "{}",
        stderr(&o)
    );

    // Endless text that is no log (`yes | simplenn plot -`) is refused at
    // its first line, not read in whole first (up to the 1 GB limit).
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_simplenn"))
        .args(["plot", "-", "-o", out.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let chunk = b"y\n".repeat(32 * 1024);
        let mut sent = 0u64;
        // Until the reader has gone; past 2 GB the reader read it all.
        while sent < 2 << 30 && stdin.write_all(&chunk).is_ok() {
            sent += chunk.len() as u64;
        }
        sent
    });
    let o = child.wait_with_output().unwrap();
    let sent = writer.join().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("- (standard input) line 1: not a simplenn metrics record"),
        "{}",
        stderr(&o)
    );
    assert!(sent < 64 << 20, "{sent} bytes were read first");
}

/// A model that gives every test image the same output (a one-unit
/// network whose unit died in training) is told so by `eval` and by
/// `serve`, with both ways out, instead of the note on guessing alone.
#[test]
fn a_model_that_responds_to_no_image_is_told_so() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(&dir.path().join("data"), 1_000, 200);
    let model = dir.path().join("dead.safetensors");
    let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());
    let o = simplenn(&[
        "--data",
        d,
        "--val",
        "100",
        "--hidden",
        "1",
        "--lr",
        "1",
        "--epochs",
        "3",
        "--save",
        m,
        "--no-metrics",
        "--no-progress",
        "--threads",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let want = |note: &str, verb: &str| {
        note.contains("the model gives every test image the same output, answering class ")
            && note.contains("train it again with a smaller --lr")
            && note.contains(&format!("another data set than {d}, {verb} it with --data"))
            && !note.contains("guessing")
    };
    let o = simplenn(&["eval", "--model", m, "--data", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    let note = stderr(&o);
    assert!(
        note.starts_with("simplenn: note: ") && want(&note, "evaluate"),
        "{note}"
    );
    let mut child =
        common::http::Child::spawn(&["serve", "--model", m, "--data", d, "--port", "0"]);
    let note = child.wait_for_stderr("simplenn: note: ", 120);
    assert!(want(&note, "serve"), "{note}");
}
