//! `simplenn serve` and `train --serve` over plain HTTP: every route and its
//! errors, 200 concurrent predictions, the port already taken, the
//! warning for a non-loopback host, and a run with the page served saving
//! the very bytes of a run without it.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::http::{self, get, post, Child};
use simplenn::modelfile;
use simplenn::serve::{self, State};
use simplenn::train::RunOptions;

fn serve_in_process(model: &Path, data: Option<PathBuf>) -> serve::Server {
    let (params, image) = modelfile::load_model_image(model).unwrap();
    let state = State::for_model(params, model, data, None).with_image(image);
    serve::start("127.0.0.1", 0, Arc::new(state)).unwrap()
}

/// [`serve_in_process`] of a small model without a test set, and the
/// directory that holds the model (kept for the test's length).
fn small_model_served() -> (tempfile::TempDir, serve::Server) {
    let t = tempfile::tempdir().unwrap();
    let (model, _) = common::small_model(t.path());
    let server = serve_in_process(&model, None);
    (t, server)
}

fn test_image_json(data: &Path, i: usize) -> String {
    let test = simplenn::data::Mnist::open_test(data).unwrap();
    let px: Vec<String> = test.image(i).iter().map(|v| v.to_string()).collect();
    format!(
        "{{\"width\":28,\"height\":28,\"pixels\":[{}]}}",
        px.join(",")
    )
}

#[test]
fn every_route_answers_and_errors_are_json() {
    let t = tempfile::tempdir().unwrap();
    let (model, data) = common::small_model(t.path());
    let server = serve_in_process(&model, Some(data.clone()));
    let a = server.addr();

    let page = get(a, "/");
    assert_eq!(page.status, 200);
    assert!(page.content_type.starts_with("text/html"));
    // No answer may be cached (a live page's status, digits and matrix
    // change from one read to the next) or sniffed as another type:
    // pages, data and errors alike.
    for path in [
        "/",
        "/page.js",
        "/api/model",
        "/api/confusion",
        "/api/nowhere",
    ] {
        let head = get(a, path).head.to_ascii_lowercase();
        for line in [
            "\r\ncache-control: no-store",
            "\r\nx-content-type-options: nosniff",
        ] {
            assert!(head.contains(line), "{path}: no {line:?} in {head}");
        }
    }
    assert!(page.text().contains("id=\"pad\""));
    assert!(get(a, "/page.js").text().contains("/api/predict"));
    assert!(get(a, "/page.css").content_type.starts_with("text/css"));

    let m = get(a, "/api/model").json();
    assert_eq!(m["name"], "784-64-10");
    assert_eq!(
        (m["side"].as_u64(), m["classes"].as_u64()),
        (Some(28), Some(10))
    );
    assert_eq!(m["tiles"], 64);
    assert_eq!(m["test"]["images"], 500);

    // A drawn "1" as PNG, and a test image as JSON pixels.
    let p = post(a, "/api/predict", "image/png", &http::one());
    assert_eq!(p.status, 200, "{}", p.text());
    let p = p.json();
    assert_eq!(p["digit"], 1, "{p}");
    assert_eq!(p["input"].as_array().unwrap().len(), 784);
    let sum: f64 = p["probabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert!((sum - 1.0).abs() < 1e-4);
    // The same PNG labelled as JSON (a client's default type): its
    // signature makes it the image it is, with the same answer.
    let mislabelled = post(a, "/api/predict", "application/json", &http::one());
    assert_eq!(mislabelled.status, 200, "{}", mislabelled.text());
    assert_eq!(mislabelled.json()["probabilities"], p["probabilities"]);
    let test = simplenn::data::Mnist::open_test(&data).unwrap();
    let p = post(
        a,
        "/api/predict",
        "application/json",
        test_image_json(&data, 0).as_bytes(),
    );
    assert_eq!(p.status, 200, "{}", p.text());
    assert_eq!(p.json()["digit"], test.label(0) as u64);
    // A body of the largest length read, 65536 bytes (the same JSON, then
    // spaces), is read; one byte more is refused.
    for (len, status) in [(64 * 1024, 200), (64 * 1024 + 1, 413)] {
        let mut body = test_image_json(&data, 0).into_bytes();
        body.resize(len, b' ');
        let p = post(a, "/api/predict", "application/json", &body);
        assert_eq!(p.status, status, "{len} bytes: {}", p.text());
    }

    // The test set: confusion matrix, wrong digits, one cell.
    let c = get(a, "/api/confusion").json();
    let matrix: Vec<Vec<u64>> = serde_json::from_value(c["matrix"].clone()).unwrap();
    assert_eq!(matrix.iter().flatten().sum::<u64>(), 500);
    let correct = c["correct"].as_u64().unwrap();
    let wrong = get(a, "/api/digits?per_page=5").json();
    assert_eq!(wrong["total"].as_u64().unwrap(), 500 - correct);
    let items = wrong["items"].as_array().unwrap();
    assert_eq!(items.len() as u64, (500 - correct).min(5));
    assert!(!items.is_empty(), "the model gets every test digit right");
    for d in items {
        assert_ne!(d["label"], d["predicted"]);
        assert_eq!(d["pixels"].as_array().unwrap().len(), 784);
    }
    // Rows are true classes, columns predictions: every off-diagonal cell
    // is the count of wrong digits with that (label, predicted), which a
    // transposed matrix would not match (the tally is not symmetric).
    let mut tally = vec![vec![0u64; 10]; 10];
    for page in 0.. {
        let p = get(a, &format!("/api/digits?per_page=200&page={page}")).json();
        for d in p["items"].as_array().unwrap() {
            let (l, q) = (
                d["label"].as_u64().unwrap(),
                d["predicted"].as_u64().unwrap(),
            );
            tally[l as usize][q as usize] += 1;
        }
        if page + 1 >= p["pages"].as_u64().unwrap() {
            break;
        }
    }
    for (l, row) in matrix.iter().enumerate() {
        for (q, &n) in row.iter().enumerate() {
            assert_eq!(tally[l][q], if l == q { 0 } else { n }, "cell [{l}][{q}]");
        }
    }
    assert!((0..10).any(|l| (0..10).any(|q| matrix[l][q] != matrix[q][l])));
    let cell = get(a, "/api/digits?label=7&predicted=7&per_page=200").json();
    assert_eq!(cell["total"].as_u64().unwrap(), matrix[7][7]);
    let items = cell["items"].as_array().unwrap();
    assert_eq!(items.len() as u64, matrix[7][7].min(200));
    assert!(items.iter().all(|d| d["label"] == 7 && d["predicted"] == 7));
    let png = get(a, "/api/weights.png");
    assert_eq!((png.status, png.content_type.as_str()), (200, "image/png"));
    assert!(png.body.starts_with(b"\x89PNG"));
    assert_eq!(get(a, "/api/status").json()["live"], false);

    // A 405 names the methods the route takes (HTTP requires `Allow`).
    for (answer, allow) in [
        (get(a, "/api/predict"), "allow: post"),
        (post(a, "/api/model", "", b""), "allow: get, head"),
    ] {
        assert_eq!(answer.status, 405);
        assert!(
            answer.head.to_ascii_lowercase().contains(allow),
            "{}",
            answer.head
        );
    }

    // Errors: 4xx with {"error": ...}, never a dropped connection.
    for (answer, status, says) in [
        (get(a, "/nope"), 404, "no such page"),
        (get(a, "/api/predict"), 405, "use POST"),
        (post(a, "/api/model", "", b""), 405, "use GET"),
        (
            post(a, "/api/predict", "application/json", b"{\"pix"),
            400,
            "malformed JSON",
        ),
        (
            post(a, "/api/predict", "application/json", b" [28, 28, [0]]"),
            400,
            "malformed JSON: not an object; send {\"width\"",
        ),
        (
            post(
                a,
                "/api/predict",
                "application/json",
                br#"{"width":3,"height":3,"pixels":[1,2]}"#,
            ),
            400,
            "wrong size",
        ),
        (
            post(
                a,
                "/api/predict",
                "application/json",
                br#"{"pixels":[0,0,0]}"#,
            ),
            400,
            "28 × 28",
        ),
        (
            post(a, "/api/predict", "image/png", b"not a png"),
            400,
            "cannot read the image",
        ),
        (
            post(a, "/api/predict", "image/png", &http::drawing(&[])),
            422,
            "no digit found",
        ),
        // Blank at the model's own size: pointed at ?as_is=1.
        (
            post(
                a,
                "/api/predict",
                "application/json",
                format!(
                    "{{\"width\":28,\"height\":28,\"pixels\":[{}]}}",
                    vec!["0"; 784].join(",")
                )
                .as_bytes(),
            ),
            422,
            "the image is already 28 × 28, the model's input size: if it was saved from a data set, ?as_is=1 reads its pixels unchanged",
        ),
        (
            post(a, "/api/predict", "image/png", &vec![0u8; 70_000]),
            413,
            "over 65536 bytes",
        ),
        (get(a, "/api/digits?page=x"), 400, "not a whole number"),
        // A value quoted with a direction override or a line break in it
        // is written out, as the command line writes it.
        (
            get(a, "/api/digits?page=x%E2%80%AEy%0Az"),
            400,
            "x\\u{202e}y\\nz",
        ),
        (get(a, "/api/digits?per_page=0"), 400, "per_page"),
        (get(a, "/api/digits?per_page=201"), 400, "per_page"),
        (get(a, "/api/digits?label=10"), 400, "classes 0 to 9"),
        // Past the last page; a version the weights never had.
        (
            get(a, "/api/digits?per_page=200&page=1"),
            400,
            "images has one page: 0",
        ),
        (
            get(a, "/api/digits?label=0&predicted=0&per_page=200&page=1"),
            400,
            "has one page: 0",
        ),
        (
            get(a, "/api/digits?label=7&predicted=1&per_page=1&page=500"),
            400,
            "?page=500: this list of ",
        ),
        (
            get(a, "/api/digits?version=7"),
            400,
            "?version=7: the weights have had no version 7 (now 0)",
        ),
        (get(a, "/api/curve"), 404, "--metrics"),
    ] {
        assert_eq!(answer.status, status, "{}", answer.text());
        let e = answer.json();
        assert!(e["error"].as_str().unwrap().contains(says), "{e}");
    }
    // Not HTTP at all: tiny_http answers 400 (or closes), and the server lives on.
    let _ = std::panic::catch_unwind(|| http::raw(a, b"\x00\x01garbage\r\n\r\n"));
    assert_eq!(get(a, "/api/model").status, 200);
    server.stop();
}

#[test]
fn two_hundred_concurrent_predictions() {
    let t = tempfile::tempdir().unwrap();
    let (model, data) = common::small_model(t.path());
    let server = serve_in_process(&model, Some(data));
    let a: SocketAddr = server.addr();
    let png = Arc::new(http::one());
    let threads: Vec<_> = (0..200)
        .map(|_| {
            let png = png.clone();
            std::thread::spawn(move || post(a, "/api/predict", "image/png", &png))
        })
        .collect();
    let mut micros = Vec::new();
    for th in threads {
        let answer = th.join().expect("client thread");
        assert_eq!(answer.status, 200, "{}", answer.text());
        let j = answer.json();
        assert_eq!(j["digit"], 1);
        micros.push(j["micros"].as_u64().unwrap());
    }
    micros.sort();
    println!(
        "200 concurrent predictions: server-side median {} µs, max {} µs",
        micros[100], micros[199]
    );
    server.stop();
}

/// One prediction from the pad's PNG (decode, prepare, forward), 200 times
/// over, each reading the drawn 1. Its server-side time is printed, not
/// asserted (tests never assert a timing); the README's figure comes from a
/// release build (`cargo run --release --example serve_latency`).
#[test]
fn a_pad_png_reads_as_its_digit() {
    let t = tempfile::tempdir().unwrap();
    let (model, _) = common::small_model(t.path());
    let params = modelfile::load_model(&model).unwrap();
    let png = http::one();
    let mut times: Vec<_> = (0..200)
        .map(|_| {
            let t0 = std::time::Instant::now();
            let p =
                serve::predict_bytes(&params, None, 0, "image/png", &png, serve::Prepare::Mnist)
                    .unwrap();
            assert_eq!(p.digit, 1);
            t0.elapsed()
        })
        .collect();
    times.sort();
    println!("one prediction (a test build): median {:?}", times[100]);
}

#[test]
fn port_in_use_is_one_line_and_exit_1() {
    let t = tempfile::tempdir().unwrap();
    let (model, _) = common::small_model(t.path());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    // Exit 1 and one line, naming the address.
    let cannot_listen = |o: &std::process::Output| {
        assert_eq!(o.status.code(), Some(1));
        let lines = common::error_lines(o);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with(&format!(
                "simplenn: error: cannot listen on 127.0.0.1:{port}: "
            )),
            "{lines:?}"
        );
    };
    let o = common::simplenn(&["serve", "--model", model.to_str().unwrap(), "--port", &port]);
    cannot_listen(&o);
    // And for train --serve, before any training.
    let o = common::simplenn(&["--epochs", "1", "--no-save", "--serve", &port]);
    cannot_listen(&o);
    assert!(!common::stdout(&o).contains("epoch"), "trained first");
    // A run its checks refuse (a network no memory holds) names no page:
    // the address is said with the run's header, after them.
    let o = common::simplenn(&[
        "--epochs",
        "1",
        "--no-save",
        "--hidden",
        "1048576,1048576",
        "--serve",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(2), "{:?}", common::error_lines(&o));
    assert!(
        common::error_lines(&o)[0].contains("more than the"),
        "{:?}",
        common::error_lines(&o)
    );
    assert!(
        !common::stdout(&o).contains("serving the live page"),
        "{}",
        common::stdout(&o)
    );
    // Usage errors stay exit 2.
    let o = common::simplenn(&["serve", "--model", "m", "--port", "70000"]);
    assert_eq!(o.status.code(), Some(2));
    // A --host that names no address is the flag's fault, said before the
    // model is read (`m` does not exist), not the resolver's run-time failure.
    // The one error line of `serve --host host`, which must exit 2.
    let refused = |host: &str| {
        let o = common::simplenn(&["serve", "--model", "m", "--host", host]);
        assert_eq!(o.status.code(), Some(2), "{host:?}");
        let lines = common::error_lines(&o);
        assert_eq!(lines.len(), 1, "{lines:?}");
        lines[0].clone()
    };
    for (host, why) in [
        ("", "no address"),
        (" ", "no address"),
        ("local host", "no spaces or control characters"),
    ] {
        let line = refused(host);
        assert!(line.contains("--host") && line.contains(why), "{line}");
        assert!(line.contains("e.g. 127.0.0.1"), "{line}");
    }
    // A port in --host, or a URL, as an address bar shows them.
    for (host, says) in [
        ("127.0.0.1:9000", "give --host 127.0.0.1 --port 9000"),
        ("[::1]:9000", "give --host ::1 --port 9000"),
        ("http://localhost:8080", "leave out http://"),
    ] {
        let line = refused(host);
        assert!(line.contains(says), "{line}");
    }
    drop(taken);
}

/// Run where the first of the usual places, `./data/mnist`, holds no test
/// set (the source tree's, behind it, is never reached then): the page is
/// served without one.
#[test]
fn a_non_loopback_host_warns_and_serve_needs_no_data() {
    let t = tempfile::tempdir().unwrap();
    let (model, _) = common::small_model(t.path());
    let empty = t.path().join("empty");
    std::fs::create_dir_all(empty.join("data/mnist")).unwrap();
    let mut child = Child::spawn_in(
        &empty,
        &[
            "serve",
            "--model",
            model.to_str().unwrap(),
            "--host",
            "0.0.0.0",
            "--port",
            "0",
        ],
    );
    let line = child.wait_for("http://", 60);
    assert!(line.contains("0.0.0.0:"), "{line}");
    let port: u16 = line
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap();
    let m = get(SocketAddr::from(([127, 0, 0, 1], port)), "/api/model").json();
    assert!(m["test"].is_null(), "{m}");
    assert!(
        m["test_note"]
            .as_str()
            .is_some_and(|n| n.contains("data/mnist")),
        "{m}"
    );
    let _ = child.child.kill();
    let out = child.child.stderr.take().unwrap();
    let text = std::io::read_to_string(out).unwrap();
    assert!(
        text.contains("warning: serving on 0.0.0.0")
            && text.contains("no authentication")
            && text.contains("; pass --host 127.0.0.1 (the default) to keep it on this machine\n"),
        "{text}"
    );
    // On the default host, loopback, no other machine can reach the page:
    // no warning (it is printed before the page's address, so it would be
    // on standard error by the time the address is).
    let mut local = Child::spawn_in(
        &empty,
        &["serve", "--model", model.to_str().unwrap(), "--port", "0"],
    );
    let line = local.wait_for("http://", 60);
    assert!(line.contains("127.0.0.1:"), "{line}");
    let _ = local.child.kill();
    let out = local.child.stderr.take().unwrap();
    let text = std::io::read_to_string(out).unwrap();
    assert!(!text.contains("warning"), "{text}");
}

/// `tests/shapes.rs`'s pinned default run, trained with the page served and
/// polled (status, curve, weights, predictions) all along, saves the same
/// bytes; the curve has points and the status says done.
#[test]
fn train_serve_saves_the_same_bytes() {
    let t = tempfile::tempdir().unwrap();
    let data = common::small_mnist(&t.path().join("data"), 3_000, 500);
    let model = t.path().join("m.safetensors");
    let mut child = Child::spawn(&[
        "--data",
        data.to_str().unwrap(),
        "--epochs",
        "2",
        "--val",
        "500",
        "--threads",
        "2",
        "--no-progress",
        "--save",
        model.to_str().unwrap(),
        "--serve",
        "0",
    ]);
    let a = child.address();
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (png, mut n) = (http::one(), 0);
            while !stop.load(Ordering::Relaxed) {
                for path in ["/api/status", "/api/curve?since=0", "/api/model"] {
                    let s = get(a, path).status;
                    assert!(s == 200 || s == 503, "{path}: {s}");
                }
                let p = post(a, "/api/predict", "image/png", &png);
                assert!(p.status == 200 || p.status == 503, "{}", p.text());
                if n % 5 == 0 {
                    let _ = get(a, "/api/weights.png");
                }
                n += 1;
            }
            n
        })
    };
    child.wait_for("model saved to", 300);
    child.wait_for("training done; the page stays up", 30);
    stop.store(true, Ordering::Relaxed);
    let polls = poller.join().expect("poller");
    assert!(polls > 0);
    let status = get(a, "/api/status").json();
    assert_eq!(status["phase"], "done", "{status}");
    let info = get(a, "/api/model").json();
    assert_eq!(
        (&info["source"], &info["live"]),
        (
            &serde_json::json!("the finished run"),
            &serde_json::json!(true)
        ),
        "{info}"
    );
    let polled = get(a, "/api/status?since=3&epochs_since=1").json();
    assert_eq!(
        polled["new_points"].as_array().unwrap().len() as u64,
        polled["points"].as_u64().unwrap() - 3
    );
    assert_eq!(polled["new_epochs"].as_array().unwrap().len(), 1);
    assert_eq!(get(a, "/api/status?since=-1").status, 400);
    let curve = get(a, "/api/curve").json();
    assert!(curve["points"].as_array().unwrap().len() >= 10, "{curve}");
    assert_eq!(curve["epochs"].as_array().unwrap().len(), 2);
    let confusion = get(a, "/api/confusion").json();
    assert!(confusion["images"] == 500);
    // The digits of weights long replaced: refused, saying which scoring
    // is kept (not that version 0 was ever scored).
    let v = confusion["version"].as_u64().unwrap();
    assert!(v > 0, "{confusion}");
    let old = get(a, "/api/digits?version=0");
    assert_eq!(old.status, 409, "{}", old.text());
    assert_eq!(
        old.json()["error"],
        format!("?version=0: the test set's scoring with those weights is not kept (the last was of version {v}; the weights are now version {v}); GET /api/confusion to score the weights of now, then ask with its version, or leave ?version= out")
    );
    assert_eq!(
        common::sha256(&model),
        "860815e884538398cf06c7f3f5388c3c8e3e95ef70acef58a417f151fffbc33d"
    );
    // A signal after the run closes the page: said so, and the run
    // succeeded.
    #[cfg(unix)]
    {
        let (code, err) = terminate(&mut child);
        assert_eq!(code, Some(0), "{err}");
        assert!(
            err.contains("terminated (SIGTERM): closing the page (training had finished)"),
            "{err}"
        );
        assert!(!err.contains("checkpoint"), "{err}");
    }
}

/// SIGTERM to a `train --serve` child whose run is over: its exit status
/// and its stderr. SIGTERM, since a CI script's `&` job may have SIGINT
/// ignored, which the run keeps ignored.
#[cfg(unix)]
fn terminate(child: &mut Child) -> (Option<i32>, String) {
    use std::io::Read;
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(
        unsafe { libc::kill(child.child.id() as i32, libc::SIGTERM) },
        0
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "train --serve did not stop on SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    if let Some(mut e) = child.child.stderr.take() {
        e.read_to_string(&mut err).unwrap();
    }
    (status.code(), err)
}

/// An open-file limit that leaves no descriptor for one connection beside
/// those the process holds (`ulimit -n 6`, 7) is refused at the start in
/// one line: the server warned of room for one, then let every request
/// hang or be reset.
#[test]
fn a_limit_that_leaves_no_connection_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let (model, data) = common::small_model(t.path());
    for n in [6, 7] {
        let o = std::process::Command::new("bash")
            .args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\"")])
            .arg(env!("CARGO_BIN_EXE_simplenn"))
            .args(["serve", "--model", model.to_str().unwrap()])
            .args(["--data", data.to_str().unwrap(), "--port", "0"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let o = common::exited_within(o, 60, &format!("serve under ulimit -n {n} served on"));
        let err = common::error_lines(&o);
        assert_eq!(o.status.code(), Some(1), "ulimit -n {n}: {err:?}");
        assert_eq!(err.len(), 1, "ulimit -n {n}: {err:?}");
        assert!(
            err[0].contains(&format!(
                "(ulimit -n {n}) leaves no room for a page connection"
            )) && err[0].ends_with("; raise it (ulimit -n 1024)"),
            "{err:?}"
        );
    }
}

/// A run that `--stop-after` ends early is said to have stopped, on the
/// terminal and the page, not to be done: it said "training done", and
/// "the finished run" at epoch 1 of 3.
/// Clients of the page cannot cost a training run its files: under `ulimit
/// -n 100`, 150 connections held open (each takes 3 descriptors) once left
/// the run none, and its checkpoints and model failed to be written (exit
/// 1); the server now serves only as many as leave descriptors spare, the
/// rest waiting in the listen queue.
#[test]
fn held_connections_leave_a_run_descriptors_for_its_files() {
    use std::io::{BufRead, Write};
    let t = tempfile::tempdir().unwrap();
    let data = common::small_mnist(&t.path().join("data"), 3_000, 200);
    let mut child = std::process::Command::new("bash")
        .current_dir(t.path())
        .args(["-c", "ulimit -n 100 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_simplenn"))
        .args([
            "--data",
            data.to_str().unwrap(),
            "--epochs",
            "60",
            "--val",
            "500",
            "--hidden",
            "32",
            "--threads",
            "1",
            "--no-progress",
            "--checkpoint",
            "ck.safetensors",
            "--checkpoint-every",
            "1",
            "--save",
            "m.safetensors",
            "--serve",
            "0",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut out = Vec::new();
    let url = loop {
        let line = lines
            .next()
            .expect("a line with the page's address")
            .unwrap();
        out.push(line.clone());
        if let Some(u) = line.split_whitespace().find(|w| w.starts_with("http://")) {
            break u
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string();
        }
    };
    // (A run that failed may be gone before all are made: the assertion
    // below says why.)
    let held: Vec<std::net::TcpStream> = (0..150)
        .map_while(|_| {
            let mut s = std::net::TcpStream::connect(&url).ok()?;
            s.write_all(b"G").ok()?;
            Some(s)
        })
        .collect();
    for line in lines.by_ref() {
        let line = line.unwrap();
        out.push(line.clone());
        if line.starts_with("training done") {
            break;
        }
    }
    let _ = child.kill();
    let o = child.wait_with_output().unwrap();
    let made = held.len();
    drop(held);
    assert!(
        out.iter().any(|l| l == "model saved to m.safetensors"),
        "{out:?} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    modelfile::load_model(&t.path().join("m.safetensors")).unwrap();
    // Enough held connections to take all 100 descriptors, uncapped: the
    // test proves nothing where fewer could be made.
    assert!(made >= 40, "only {made} connections made");
}

#[test]
fn train_serve_says_a_stop_after_run_stopped() {
    let t = tempfile::tempdir().unwrap();
    let data = common::small_mnist(&t.path().join("data"), 2_000, 300);
    let ck = t.path().join("c.safetensors");
    let mut child = Child::spawn(&[
        "--data",
        data.to_str().unwrap(),
        "--hidden",
        "16",
        "--epochs",
        "3",
        "--stop-after",
        "1",
        "--val",
        "300",
        "--threads",
        "1",
        "--no-progress",
        "--no-save",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--serve",
        "0",
    ]);
    let a = child.address();
    child.wait_for("training stopped (--stop-after); the page stays up", 120);
    let status = get(a, "/api/status").json();
    assert_eq!(
        (&status["phase"], &status["epoch"], &status["epochs_done"]),
        (
            &serde_json::json!("stopped"),
            &serde_json::json!(1),
            &serde_json::json!(1)
        ),
        "{status}"
    );
    assert_eq!(get(a, "/api/model").json()["source"], "the stopped run");
    #[cfg(unix)]
    {
        let (code, err) = terminate(&mut child);
        assert_eq!(code, Some(0), "{err}");
        assert!(
            err.contains("closing the page (training had stopped where --stop-after asked)"),
            "{err}"
        );
    }
}

/// Write train and test IDX files of `rows × cols` images of `classes`
/// classes (class c: a bright band at rows ≡ c mod classes) into `dir`.
fn banded(dir: &Path, rows: usize, cols: usize, classes: usize) -> PathBuf {
    use simplenn::data::{TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
    std::fs::create_dir_all(dir).unwrap();
    for (n, images, labels) in [
        (600, TRAIN_IMAGES, TRAIN_LABELS),
        (90, TEST_IMAGES, TEST_LABELS),
    ] {
        let mut px = Vec::new();
        let mut lab = Vec::new();
        for i in 0..n {
            let c = i % classes;
            for p in 0..rows * cols {
                let on = (p / cols) % classes == c;
                px.push(if on {
                    200 + (i * 7 % 50) as u8
                } else {
                    (i * 13 % 40) as u8
                });
            }
            lab.push(c as u8);
        }
        let dims = [n as u32, rows as u32, cols as u32];
        simplenn::idx::write_idx(&dir.join(images), &dims, &px).unwrap();
        simplenn::idx::write_idx(&dir.join(labels), &[n as u32], &lab).unwrap();
    }
    dir.to_owned()
}

/// A test set the model cannot be scored on, named by `--data`, is refused
/// with what does not fit: images of fewer pixels than the model takes,
/// and a label at the model's class count (labels run from 0 to K − 1),
/// whose file is named as the user gave it (the archive, not simplenn's
/// copy of it in the cache).
#[cfg(unix)]
#[test]
fn test_sets_a_model_cannot_score_are_refused_with_the_misfit() {
    use simplenn::data::{TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
    use std::io::Write;
    let t = tempfile::tempdir().unwrap();
    let mut read_only = common::ReadOnlyDirs::default();
    let data = banded(&t.path().join("d8x8"), 8, 8, 3);
    let flags = ["--hidden", "8", "--epochs", "1", "--val", "60", "--no-save"];
    let report = common::train(&data, &flags, RunOptions::default());
    let model = t.path().join("m8x8.safetensors");
    modelfile::save_model(&model, &report.params, (8, 8), None).unwrap();
    // Refused at once: a serve that started instead would fail the test
    // at the deadline, not hang it.
    let serve = |data: &Path| {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_simplenn"))
            .args(["serve", "--port", "0", "--model"])
            .arg(&model)
            .arg("--data")
            .arg(data)
            .env("XDG_CACHE_HOME", t.path().join("cache"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let o = common::exited_within(child, 60, &format!("serve --data {data:?} was not refused"));
        assert_eq!(o.status.code(), Some(1), "{}", common::stderr(&o));
        common::stderr(&o)
    };
    // 6 × 6 images: 36 pixels, fewer than the model's 64 inputs.
    let e = serve(&banded(&t.path().join("d6x6"), 6, 6, 3));
    assert!(
        e.contains("the model (64-8-3) takes 64 inputs but the test images are 6 × 6"),
        "{e}"
    );
    // Four classes, as archives only in a read-only directory, so that
    // they are read from the cache.
    let four = banded(&t.path().join("four"), 8, 8, 4);
    for f in [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS] {
        let raw = four.join(f);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&std::fs::read(&raw).unwrap()).unwrap();
        std::fs::write(four.join(format!("{f}.gz")), gz.finish().unwrap()).unwrap();
        std::fs::remove_file(&raw).unwrap();
    }
    read_only.add(&four);
    let e = serve(&four);
    let labels = four.join(format!("{TEST_LABELS}.gz"));
    assert!(
        e.contains(&format!(
            "test image 3 in {} has label 3, beyond the model's 3 classes",
            labels.display()
        )),
        "{e}"
    );
}

/// Any depth, any square input size, any class count; a model whose input
/// is not square gets everything but the pad and the tiles, also when its
/// input count is a square number (4 × 9 = 6 × 6: the file says which).
#[test]
fn models_of_other_shapes() {
    let t = tempfile::tempdir().unwrap();
    for (rows, cols, classes, hidden, tiles) in [
        (8, 8, 3, "16,8", Some(16)),
        (12, 12, 4, "none", Some(4)),
        (4, 6, 3, "5,5,5", None),
        (4, 9, 3, "8", None),
    ] {
        let data = banded(
            &t.path().join(format!("d{rows}x{cols}")),
            rows,
            cols,
            classes,
        );
        let flags = [
            "--hidden",
            hidden,
            "--epochs",
            "2",
            "--val",
            "60",
            "--batch-size",
            "32",
            "--no-save",
        ];
        let report = common::train(&data, &flags, RunOptions::default());
        let model = t.path().join(format!("m{rows}x{cols}.safetensors"));
        modelfile::save_model(&model, &report.params, (rows, cols), None).unwrap();
        let server = serve_in_process(&model, Some(data));
        let a = server.addr();
        let m = get(a, "/api/model").json();
        assert_eq!(m["classes"].as_u64(), Some(classes as u64), "{m}");
        assert_eq!(m["inputs"].as_u64(), Some((rows * cols) as u64));
        let c = get(a, "/api/confusion").json();
        assert_eq!(c["matrix"].as_array().unwrap().len(), classes);
        assert_eq!(c["images"], 90);
        let cell = get(a, "/api/digits?label=1&predicted=1").json();
        assert_eq!(
            (cell["rows"].as_u64(), cell["cols"].as_u64()),
            (Some(rows as u64), Some(cols as u64))
        );
        let pixels: Vec<String> = (0..rows * cols)
            .map(|p| {
                if (p / cols) % classes == 1 {
                    "255"
                } else {
                    "0"
                }
                .to_string()
            })
            .collect();
        let body = format!(
            "{{\"width\":{cols},\"height\":{rows},\"pixels\":[{}]}}",
            pixels.join(",")
        );
        let p = post(a, "/api/predict", "application/json", body.as_bytes());
        let as_is = |body: &str| {
            post(
                a,
                "/api/predict?as_is=1",
                "application/json",
                body.as_bytes(),
            )
        };
        // What the model saw, as the pixels were sent.
        let seen = |j: &serde_json::Value| -> Vec<String> {
            let input = j["input"].as_array().unwrap();
            input.iter().map(|v| v.to_string()).collect()
        };
        let png = get(a, "/api/weights.png");
        match tiles {
            Some(n) => {
                assert_eq!(m["side"].as_u64(), Some(rows as u64));
                assert_eq!(m["tiles"].as_u64(), Some(n));
                assert_eq!(p.status, 200, "{}", p.text());
                let j = p.json();
                assert_eq!(j["probabilities"].as_array().unwrap().len(), classes);
                assert_eq!(j["input"].as_array().unwrap().len(), rows * cols);
                // `?as_is=1`: the model sees the pixels sent, unchanged
                // (prepared, the stripes would be cropped and rescaled).
                let p = as_is(&body);
                assert_eq!(p.status, 200, "{}", p.text());
                assert_eq!(seen(&p.json()), pixels);
                let p = post(
                    a,
                    "/api/predict?as_is=yes",
                    "application/json",
                    body.as_bytes(),
                );
                assert_eq!(p.status, 400, "{}", p.text());
                assert!(
                    p.text().contains("?as_is=yes: must be 1 or 0"),
                    "{}",
                    p.text()
                );
                assert_eq!(png.status, 200);
                let img = image::load_from_memory(&png.body).unwrap();
                let per_row = (n as f64).sqrt().ceil() as u32;
                assert_eq!(img.width(), per_row * (rows as u32 + 1) + 1);
            }
            None => {
                assert!(m["side"].is_null() && m["tiles"] == 0, "{m}");
                assert_eq!(p.status, 409, "{}", p.text());
                let error = p.json()["error"].as_str().unwrap().to_string();
                // The file's note names the shape, also where 36 inputs
                // could be 6 × 6 (a file without it: "not a square image").
                let why = format!("trained on {rows} × {cols} images");
                assert!(error.contains(&why), "{error}");
                assert!(error.contains("with ?as_is=1"), "{error}");
                // `?as_is=1` needs no preparation: the pixels as sent, in
                // the shape the model was trained on, read as class 1's
                // stripes are (the model learnt the bands).
                let p = as_is(&body);
                assert_eq!(p.status, 200, "{}", p.text());
                let j = p.json();
                assert_eq!(seen(&j), pixels);
                assert!(j["side"].is_null(), "{j}");
                assert_eq!(j["digit"], 1, "{j}");
                // Width and height left out: the model's shape; the other
                // way round: refused, naming the shape.
                let bare = format!("{{\"pixels\":[{}]}}", pixels.join(","));
                assert_eq!(as_is(&bare).status, 200);
                let turned = format!(
                    "{{\"width\":{rows},\"height\":{cols},\"pixels\":[{}]}}",
                    pixels.join(",")
                );
                let p = as_is(&turned);
                assert_eq!(p.status, 422, "{}", p.text());
                let e = p.json()["error"].as_str().unwrap().to_string();
                let want = format!("?as_is=1 takes the image's pixels as the model's inputs, images {cols} pixels wide and {rows} high as it was trained on, but the image is {rows} wide and {cols} high; give one of that size");
                assert!(e.contains(&want), "{e}");
                assert_eq!(png.status, 404);
                // The tiles' 404 and the model's answer name the shape too.
                let tiles = png.json()["error"].as_str().unwrap().to_string();
                assert!(
                    tiles.contains(&format!("{why}, not square: no weight tiles")),
                    "{tiles}"
                );
                assert_eq!(m["image"], serde_json::json!({"rows": rows, "cols": cols}));
            }
        }
        server.stop();
    }
    // The 4 × 9 model with 6 × 6 test images (36 pixels too): its
    // confusion matrix would be scored on the wrong layout, so 409.
    let model = t.path().join("m4x9.safetensors");
    let square = banded(&t.path().join("d6x6"), 6, 6, 3);
    let server = serve_in_process(&model, Some(square.clone()));
    let c = get(server.addr(), "/api/confusion");
    assert_eq!(c.status, 409, "{}", c.text());
    let error = c.json()["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("trained on 4 × 9 images but the test images are 6 × 6"),
        "{error}"
    );
    server.stop();
    // From the binary: a test set that --data names and the model cannot
    // be scored on is refused, as `eval` refuses it; one only found in the
    // usual places (here the source tree's 28 × 28 MNIST) is set aside
    // with the reason, and the page serves without it.
    let (m, sq) = (model.to_str().unwrap(), square.to_str().unwrap());
    let o = common::simplenn(&["serve", "--model", m, "--data", sq, "--port", "0"]);
    assert_eq!(o.status.code(), Some(1), "{}", common::stderr(&o));
    let e = common::stderr(&o);
    assert!(
        e.contains("cannot serve") && e.contains("the test images are 6 × 6"),
        "{e}"
    );
    let mut child = Child::spawn(&["serve", "--model", m, "--port", "0"]);
    let a = child.address();
    // A note on standard error, naming where the test set was found.
    let note = child.wait_for_stderr("no test data", 60);
    assert!(
        note.starts_with("simplenn: note: no test data: the test set in ")
            && note.contains("data/mnist is set aside: the model (36-8-3) takes 36 inputs but the test images are 28 × 28"),
        "{note}"
    );
    let info = get(a, "/api/model").json();
    assert!(
        info["test_note"].as_str().unwrap().contains("28 × 28"),
        "{info}"
    );
    assert_eq!(get(a, "/api/confusion").status, 404);
    drop(child);
    // The 4 × 9 model in a file that records no shape, as PyTorch's
    // save_file writes it (36 inputs: taken for 6 × 6 alone). Served with
    // 4 × 9 test images, it takes their shape, as eval does (it drew 6 × 6
    // tiles and refused its own images with ?as_is=1); `predict --as-is`,
    // with no data to tell, names the key that records it.
    // The model's tensors alone, without simplenn's metadata.
    let bare = |from: &Path, to: &str| {
        let bytes = std::fs::read(from).unwrap();
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let to = t.path().join(to);
        safetensors::serialize_to_file(file.tensors(), None, &to).unwrap();
        to
    };
    // `serve --model m --data d`'s `/api/model`.
    let served = |m: &Path, d: &str| {
        let d = t.path().join(d);
        let child = Child::spawn(&[
            "serve",
            "--model",
            m.to_str().unwrap(),
            "--data",
            d.to_str().unwrap(),
            "--port",
            "0",
        ]);
        get(child.address(), "/api/model").json()
    };
    let bare4x9 = bare(&model, "bare4x9.safetensors");
    let b = bare4x9.to_str().unwrap();
    let info = served(&bare4x9, "d4x9");
    assert_eq!(
        info["image"],
        serde_json::json!({"rows": 4, "cols": 9}),
        "{info}"
    );
    assert!(info["side"].is_null() && info["tiles"] == 0, "{info}");
    // A square model from elsewhere takes its test set's shape too: the
    // same weights say the same `image` whichever tool wrote them.
    let square = t.path().join("m8x8.safetensors");
    for m in [square.clone(), bare(&square, "bare8x8.safetensors")] {
        let info = served(&m, "d8x8");
        assert_eq!(
            info["image"],
            serde_json::json!({"rows": 8, "cols": 8}),
            "{}: {info}",
            m.display()
        );
    }
    let png = t.path().join("wide.png");
    image::GrayImage::from_pixel(9, 4, image::Luma([200]))
        .save(&png)
        .unwrap();
    let o = common::simplenn(&["predict", "--as-is", "--model", b, png.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        common::stderr(&o).contains("if the model was trained on images 9 wide and 4 high, record that in its file as the metadata simplenn.image = \"4x9\""),
        "{}",
        common::stderr(&o)
    );
    // A model of another 28 × 28 data set on the usual places' MNIST: it
    // scores near guessing there, and says so, as `eval` does.
    let other = banded(&t.path().join("d28x28"), 28, 28, 10);
    let flags = ["--hidden", "8", "--epochs", "1", "--val", "60", "--no-save"];
    let report = common::train(&other, &flags, RunOptions::default());
    let m28 = t.path().join("m28.safetensors");
    modelfile::save_model(&m28, &report.params, (28, 28), None).unwrap();
    let m28 = m28.to_str().unwrap();
    let mut child = Child::spawn(&["serve", "--model", m28, "--port", "0"]);
    let a = child.address();
    let note = child.wait_for_stderr("simplenn: note: ", 120);
    let want = "data/mnist, serve it with --data on that one";
    assert!(note.contains("what guessing scores on these images (11.35%): if the model was trained on another data set than "), "{note}");
    assert!(note.contains(want), "{note}");
    let c = get(a, "/api/confusion").json();
    assert!(c["note"].as_str().is_some_and(|n| n.contains(want)), "{c}");
}

/// A checkpoint knows its run's last epoch's training loss, so `serve`
/// refuses another run's log beside it (as `--resume` does), and takes its
/// own run's.
#[test]
fn a_checkpoint_is_served_with_its_own_runs_log_only() {
    let t = tempfile::tempdir().unwrap();
    let data = common::small_mnist(&t.path().join("d"), 600, 100);
    let path = |name: &str| t.path().join(name).to_str().unwrap().to_string();
    for (seed, log) in [("1", "a.jsonl"), ("2", "b.jsonl")] {
        let o = common::simplenn(&[
            "--data",
            data.to_str().unwrap(),
            "--hidden",
            "8",
            "--epochs",
            "2",
            "--val",
            "100",
            "--seed",
            seed,
            "--no-progress",
            "--checkpoint",
            &path(&format!("ck{seed}.safetensors")),
            "--metrics",
            &path(log),
            "--no-save",
        ]);
        assert!(o.status.success(), "{}", common::stderr(&o));
    }
    let (ck1, data) = (path("ck1.safetensors"), data.to_str().unwrap());
    let serve = |log: &str| -> Vec<String> {
        let args = [
            "serve",
            "--model",
            &ck1,
            "--data",
            data,
            "--metrics",
            &path(log),
        ];
        [&args[..], &["--port", "0"]]
            .concat()
            .iter()
            .map(|a| a.to_string())
            .collect()
    };
    let other = serve("b.jsonl");
    // Refused at once; a server that started instead is killed, and fails
    // the test, rather than hang it.
    let started = std::process::Command::new(env!("CARGO_BIN_EXE_simplenn"))
        .args(&other)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let o = common::exited_within(started, 60, "serve with another run's log served it");
    assert_eq!(o.status.code(), Some(2), "{}", common::stderr(&o));
    let e = common::stderr(&o);
    assert!(
        e.contains("b.jsonl: another run's log (it holds 2 epochs, none with train loss ")
            && e.contains("ck1.safetensors had in its last whole epoch); give --metrics the log that run wrote"),
        "{e}"
    );
    let own = serve("a.jsonl");
    let child = Child::spawn(&own.iter().map(String::as_str).collect::<Vec<_>>());
    let a = child.address();
    let epochs = || {
        get(a, "/api/curve").json()["epochs"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(epochs(), 2);
    // The answer is kept while the log stays as it was (asked again: the
    // same), and read again once it changes: cut to its first epoch in
    // place, then replaced (a rename) by the whole log again.
    assert_eq!(epochs(), 2);
    let whole = std::fs::read_to_string(path("a.jsonl")).unwrap();
    let first = whole.lines().next().unwrap();
    std::fs::write(path("a.jsonl"), format!("{first}\n")).unwrap();
    assert_eq!(epochs(), 1);
    std::fs::write(path("a2.jsonl"), &whole).unwrap();
    std::fs::rename(path("a2.jsonl"), path("a.jsonl")).unwrap();
    assert_eq!(epochs(), 2);
}

/// What the raw socket `a` answers to `request` (status line and body),
/// read until the server closes or `wait` passes.
fn raw(a: SocketAddr, request: &[u8], wait: std::time::Duration) -> String {
    raw_to_end(a, request, wait).0
}

/// [`raw`], and whether the server ended the connection (`Ok`), rather than
/// the read's timeout (`wait`) or a reset ending it.
fn raw_to_end(
    a: SocketAddr,
    request: &[u8],
    wait: std::time::Duration,
) -> (String, std::io::Result<usize>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(a).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let end = s.read_to_end(&mut out);
    (String::from_utf8_lossy(&out).into_owned(), end)
}

/// An upload whose client ends its side before the Content-Length is not
/// taken as whole: 400, whether the library reads the body (1 KiB or less)
/// or simplenn's reader does.
#[test]
fn a_body_cut_short_is_refused() {
    use std::io::{Read, Write};
    let t = tempfile::tempdir().unwrap();
    let (model, data) = common::small_model(t.path());
    let server = serve_in_process(&model, Some(data.clone()));
    let a = server.addr();
    let whole = test_image_json(&data, 0);
    for (sent, said) in [(&whole[..], whole.len() + 5000), (&whole[..16], 26)] {
        let mut s = std::net::TcpStream::connect(a).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .unwrap();
        write!(
            s,
            "POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {said}\r\n\r\n{sent}"
        )
        .unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut answer = String::new();
        let end = s.read_to_string(&mut answer);
        assert!(end.is_ok(), "{end:?}: {answer}");
        assert!(answer.starts_with("HTTP/1.1 400"), "{said}: {answer}");
        let ended = format!(
            "the request body ended after {} of its {said} bytes; send the whole body",
            sent.len()
        );
        assert!(answer.contains(&ended), "{answer}");
    }
}

/// A kept-alive connection left idle after its answer is closed at the
/// socket's read timeout (10 s) with nothing sent: a 408 there, unasked,
/// would be read as the answer to a request the client sent just then.
/// So is one idle after an empty line (the CR LF some clients send after a
/// POST body), which begins no request. One whose next request has begun
/// and stalls still gets its 408.
#[test]
fn an_idle_kept_alive_connection_is_closed_without_an_answer() {
    use std::io::{Read, Write};
    use std::time::Duration;
    let (_t, server) = small_model_served();
    let a = server.addr();
    let request = b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    let run = move |then: &'static [u8]| {
        let mut s = std::net::TcpStream::connect(a).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s.write_all(request).unwrap();
        let mut first = [0u8; 12];
        s.read_exact(&mut first).unwrap();
        assert_eq!(&first, b"HTTP/1.1 200");
        s.write_all(then).unwrap();
        let mut rest = Vec::new();
        let end = s.read_to_end(&mut rest);
        let rest = String::from_utf8_lossy(&rest).into_owned();
        (end, rest)
    };
    let idle = std::thread::spawn(move || run(b""));
    let after_crlf = std::thread::spawn(move || run(b"\r\n"));
    let (end, rest) = run(b"GET /api/status HTTP/1.1\r\nHost: 127.");
    assert!(end.is_ok(), "{end:?}");
    assert!(rest.contains("HTTP/1.1 408"), "{rest}");
    for quiet in [idle, after_crlf] {
        let (end, rest) = quiet.join().unwrap();
        assert!(end.is_ok(), "{end:?}");
        assert!(!rest.contains("HTTP/1.1 408"), "{rest}");
        assert!(
            rest.ends_with('}'),
            "the first answer, whole, and nothing after it: {rest}"
        );
    }
}

/// Requests the HTTP library answers itself get JSON errors too, and none
/// of them holds a thread or grows memory: a header line without end, too
/// many headers, HTTP/2, and clients that stop sending their upload.
#[test]
fn bad_http_gets_json_errors_and_stalled_clients_do_not_freeze_the_page() {
    use std::io::Write;
    use std::time::{Duration, Instant};
    let (_t, server) = small_model_served();
    let a = server.addr();
    let wait = Duration::from_secs(5);

    // A head that trickles in, a byte every 2 s (each read succeeds): cut
    // off 20 s after its first byte with a 408, not held for ever. Runs
    // beside the checks below; joined at the end.
    let trickle = std::thread::spawn(move || {
        use std::io::Read;
        let t0 = Instant::now();
        let mut s = std::net::TcpStream::connect(a).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
        let head = b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
            .iter()
            .chain([b'a'; 40].iter());
        let mut out = Vec::new();
        for b in head {
            if s.write_all(&[*b]).is_err() || s.read_to_end(&mut out).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_secs(2));
        }
        (String::from_utf8_lossy(&out).into_owned(), t0.elapsed())
    });

    let mut long = b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\nX: ".to_vec();
    long.extend(std::iter::repeat_n(b'a', 20 * 1024));
    long.extend(b"\r\n\r\n");
    let many: String = (0..200).map(|i| format!("X-{i}: 1\r\n")).collect();
    let many = format!("GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\n{many}\r\n");
    let big_head: String = (0..9)
        .map(|i| format!("X-{i}: {}\r\n", "a".repeat(8000)))
        .collect();
    let big_head = format!("GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\n{big_head}\r\n");
    // The request line counts: 16,000 bytes of it and 50,000 of headers.
    let line_and_head: String = (0..5)
        .map(|i| format!("X-{i}: {}\r\n", "a".repeat(10_000)))
        .collect();
    let line_and_head = format!(
        "GET /api/model?{} HTTP/1.1\r\nHost: 127.0.0.1\r\n{line_and_head}\r\n",
        "q".repeat(16_000)
    );
    let long_url = format!(
        "GET /api/model?{} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    // The 16 KiB are the line's own bytes, whichever end it has.
    let line_of = |len: usize, end: &str| {
        let mut r =
            b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nX: ".to_vec();
        r.extend(std::iter::repeat_n(b'a', len - 3));
        r.extend(format!("{end}{end}").as_bytes());
        r
    };
    let (longest_crlf, longest_lf) = (line_of(16 * 1024, "\r\n"), line_of(16 * 1024, "\n"));
    let (over_crlf, over_lf) = (line_of(16 * 1024 + 1, "\r\n"), line_of(16 * 1024 + 1, "\n"));
    for (request, status, says) in [
        (&longest_crlf[..], "200", "\"widths\""),
        (&longest_lf[..], "200", "\"widths\""),
        (&over_crlf[..], "400", "header line too long"),
        (&over_lf[..], "400", "header line too long"),
        (&long[..], "400", "header line too long"),
        (long_url.as_bytes(), "414", "request line (its URL) over 16384 bytes"),
        (many.as_bytes(), "400", "too many headers"),
        (
            b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\nno colon\r\n\r\n",
            "400",
            "malformed",
        ),
        (
            b"GET /api/model HTTP/2.0\r\n\r\n",
            "HTTP/1.1 505",
            "HTTP versions 1.0 and 1.1",
        ),
        (
            b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            "411",
            "Content-Length",
        ),
        // The body of a request answered unread is not read as the next
        // request: the connection closes after the one answer (which
        // `raw`'s read to the end needs, well within `wait`).
        (
            b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
            "411",
            "Content-Length",
        ),
        (
            b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n{}",
            "400",
            "Content-Length \\\"abc\\\" is not a number",
        ),
        (
            b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: +2\r\nConnection: close\r\n\r\n{}",
            "400",
            "Content-Length \\\"+2\\\" is not a number",
        ),
        (
            b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\n{}",
            "400",
            "2 different Content-Length headers",
        ),
        // A page on 127.0.0.1 answers only its own names: not a site whose
        // name was made to resolve there (DNS rebinding).
        (
            b"GET /api/model HTTP/1.1\r\nHost: evil.example:8080\r\nConnection: close\r\n\r\n",
            "403",
            "this page answers only requests for localhost or a loopback address; open http://127.0.0.1:",
        ),
        (
            b"GET /api/model HTTP/1.1\r\nHost: LOCALHOST:8080\r\nConnection: close\r\n\r\n",
            "200",
            "\"widths\"",
        ),
        (
            b"GET /api/model HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n",
            "200",
            "\"widths\"",
        ),
        (
            b"GET /api/model HTTP/1.1\r\nHost: localhost.\r\nConnection: close\r\n\r\n",
            "200",
            "\"widths\"",
        ),
        // A port that is not a number is an invalid Host (RFC 9112 3.2:
        // 400), not localhost; an empty one is allowed (RFC 3986 3.2.3).
        (
            b"GET /api/model HTTP/1.1\r\nHost: localhost:abc\r\nConnection: close\r\n\r\n",
            "400",
            "the request's Host header has the port \\\"abc\\\", which is not a port number (0 to 65535); send the page's address",
        ),
        (
            b"GET /api/model HTTP/1.1\r\nHost: localhost:65536\r\nConnection: close\r\n\r\n",
            "400",
            "the request's Host header has the port \\\"65536\\\", which is not a port number (0 to 65535)",
        ),
        (
            b"GET /api/model HTTP/1.1\r\nHost: localhost:\r\nConnection: close\r\n\r\n",
            "200",
            "\"widths\"",
        ),
        // A parameter the route does not read (misspelt) is refused, not
        // dropped: the answer would be another's.
        (
            b"GET /api/digits?lable=4 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            "400",
            "?lable: /api/digits has no such parameter; it takes ?label, ?predicted, ?page, ?per_page and ?version",
        ),
        (
            b"GET /api/model?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            "400",
            "?x: /api/model has no such parameter; it takes none",
        ),
        (
            b"GET /api/status?since=0&epochs_since=0 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            "200",
            "\"live\"",
        ),
        // Two Host headers, which a proxy in front may read either way, and
        // none in HTTP/1.1 (RFC 9112 3.2: 400 for both): the connection's
        // last answer, its body not read as the next request.
        (
            b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
            "400",
            "the request has 2 Host headers; send one",
        ),
        // A value past ASCII (a cookie another local page set, RFC 9110
        // 5.5 obs-text) is no reason to refuse the request; a URL is.
        (
            b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: name=Jos\xc3\xa9\r\nConnection: close\r\n\r\n",
            "200",
            "\"widths\"",
        ),
        (
            b"GET /api/mod\xc3\xa9l HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            "400",
            "the request line holds a byte that is not ASCII; percent-encode the URL",
        ),
        // A method no HTTP names (RFC 9110 9.1: 501), and control
        // characters in the URL: malformed, not a page that is not there.
        (
            b"BREW /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            "501",
            "method BREW: not one this server knows; use GET (POST for /api/predict)",
        ),
        // CONNECT (no proxy here) and the asterisk form, which names the
        // server and is for OPTIONS only.
        (
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            "501",
            "method CONNECT: this server is no proxy; use GET (POST for /api/predict)",
        ),
        (
            b"OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            "405",
            "OPTIONS: this server answers GET and HEAD (POST for /api/predict)",
        ),
        (
            b"GET * HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            "400",
            "the request target * is for OPTIONS only; ask for a page, such as /",
        ),
        (
            b"GET /api/st\0atus HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            "400",
            "the URL holds a control character (such as NUL or DEL); remove it",
        ),
        (
            b"GET /api/status\x7f HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            "400",
            "the URL holds a control character (such as NUL or DEL); remove it",
        ),
        // So with two Origins: the cross-site check would read the first.
        (
            b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://127.0.0.1\r\nOrigin: http://evil.example\r\nContent-Length: 2\r\n\r\n{}",
            "400",
            "the request has 2 Origin headers; send one",
        ),
        (
            b"POST /api/predict HTTP/1.1\r\nContent-Length: 27\r\n\r\nGET /api/model HTTP/1.1\r\n\r\n",
            "400",
            "the request has no Host header (required in HTTP/1.1); send",
        ),
        // The absolute form of a request line, whose host is judged in
        // place of the Host header's.
        (
            b"GET http://127.0.0.1:8080/api/status?since=0 HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
            "200",
            "\"live\"",
        ),
        (
            b"GET http://evil.example/api/model HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            "403",
            "answers only requests for localhost",
        ),
        (
            b"GET http://localhost:1@evil.example/api/model HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            "403",
            "answers only requests for localhost",
        ),
        (
            b"GET /api/model HTTP/1.1\r\nHost: [::1]evil.example\r\nConnection: close\r\n\r\n",
            "403",
            "answers only requests for localhost",
        ),
        // A POST without Content-Length (or Transfer-Encoding), whose body
        // the library would take for empty and then read as the next
        // request ("PNGDATAGET /api/status …", once told to use GET).
        (
            b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n\r\nPNGDATAGET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            "411",
            "send the body with a Content-Length; the request has none",
        ),
        // A page of another site may ask (its browser sends the request,
        // though it shows that page no answer): refused before any work.
        (
            b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nOrigin: http://evil.example\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            "403",
            "/api/predict: requests from pages of other sites (Origin: http://evil.example) are refused; open this page itself",
        ),
        (
            b"GET /api/confusion HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nSec-Fetch-Site: cross-site\r\nConnection: close\r\n\r\n",
            "403",
            "(Sec-Fetch-Site: cross-site)",
        ),
        // A request asking to upgrade the protocol (`curl --http2` on
        // http://) is answered as HTTP/1.1 at once: its body framed by its
        // Content-Length, not read until the read timeout.
        (
            b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}",
            "400",
            "malformed JSON",
        ),
        // An escaped letter names the same route (`/%61pi/` is `/api/`),
        // so it is refused the same, not served past the check.
        (
            b"POST /%61pi/predict HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nOrigin: http://evil.example\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            "403",
            "/api/predict: requests from pages of other sites (Origin: http://evil.example) are refused",
        ),
        (
            b"GET /%61pi/digits?per_page=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nSec-Fetch-Site: cross-site\r\nConnection: close\r\n\r\n",
            "403",
            "/api/digits: requests from pages of other sites (Sec-Fetch-Site: cross-site)",
        ),
        // The same in a request line's absolute form, whose URL names the
        // host and path (its Origin compared with that host, not Host's).
        (
            b"POST http://127.0.0.1:8080/api/predict HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nOrigin: http://evil.example\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            "403",
            "/api/predict: requests from pages of other sites (Origin: http://evil.example) are refused",
        ),
        (
            b"GET HTTP://127.0.0.1:8080/api/model HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nSec-Fetch-Site: cross-site\r\nConnection: close\r\n\r\n",
            "403",
            "/api/model: requests from pages of other sites (Sec-Fetch-Site: cross-site)",
        ),
        (
            b"GET http://127.0.0.1:8080/api/model HTTP/1.1\r\nHost: localhost\r\nOrigin: http://127.0.0.1:8080\r\nConnection: close\r\n\r\n",
            "200",
            "\"widths\"",
        ),
        // Another port of this machine is another site's page too.
        (
            b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nOrigin: http://127.0.0.1:3000\r\nConnection: close\r\n\r\n",
            "403",
            "(Origin: http://127.0.0.1:3000)",
        ),
        // The page's own requests (`Origin: null` from a page under a
        // no-referrer policy, which its browser says is same-origin).
        (
            b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nOrigin: null\r\nSec-Fetch-Site: same-origin\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            "400",
            "malformed JSON",
        ),
        (
            b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nOrigin: http://127.0.0.1:8080\r\nSec-Fetch-Site: same-origin\r\nConnection: close\r\n\r\n",
            "200",
            "\"widths\"",
        ),
        // Lines ended by LF alone are lines (answered at once, not after
        // the read timeout), also beside CR LF ones, where an LF inside a
        // header used to hide the next header in its value; a CR not
        // before an LF is refused.
        (
            b"GET /api/model HTTP/1.1\nHost: 127.0.0.1\nConnection: close\n\n",
            "200",
            "\"widths\"",
        ),
        (
            b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\nConnection: close\r\n\r\n",
            "200",
            "\"widths\"",
        ),
        (
            b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\rX: 1\r\nConnection: close\r\n\r\n",
            "400",
            "a CR not followed by LF in the request head; end each line with CR LF",
        ),
        // A compressed body, which would be read as the image itself.
        (
            b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}",
            "415",
            "Content-Encoding gzip: not accepted; send the body uncompressed",
        ),
        // JSON is told by its first byte that is not white space.
        (
            b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 41\r\nConnection: close\r\n\r\n   {\"width\":1,\"height\":1,\"pixels\":[0]}   ",
            "422",
            "no digit",
        ),
        // A number in the query is digits, as Content-Length is.
        (
            b"GET /api/curve?since=%2B1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            "400",
            "?since=+1: not a whole number",
        ),
        // A version past 1.1 is not spoken here (505), not malformed (400).
        (
            b"GET /api/model HTTP/1.2\r\nHost: 127.0.0.1\r\n\r\n",
            "HTTP/1.1 505",
            "HTTP versions 1.0 and 1.1",
        ),
        // The library's 417 sends the body its Content-Length announces.
        (
            b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: foo\r\n\r\n",
            "417",
            "unsupported Expect header",
        ),
        // Empty lines before a request line are skipped (RFC 9112, 2.2),
        // a few of them: a stream of nothing else is no request line.
        (
            b"\r\n\nGET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            "200",
            "\"widths\"",
        ),
        (
            b"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            "400",
            "malformed request line",
        ),
        // A request line of more than three parts, a version below 1.0
        // (answered `HTTP/0.9 200` once), a folded header line (once a
        // header of its own), a header name that is not a token (empty
        // here), and a head over 64 KiB in all (100 lines of 16 KiB each
        // once held 1.6 MB a connection): each was answered 200.
        (
            b"GET /api/model HTTP/1.1 x\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            "400",
            "malformed request line",
        ),
        (
            b"GET /api/model HTTP/0.9\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            "HTTP/1.1 505",
            "HTTP versions 1.0 and 1.1",
        ),
        (
            b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n X-Folded: 1\r\n\r\n",
            "400",
            "(obsolete line folding); put each header on one line",
        ),
        (
            b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n: 1\r\n\r\n",
            "400",
            "a header name is empty or holds a character a name may not",
        ),
        (
            b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nX-A: a\0b\r\n\r\n",
            "400",
            "a header value holds a NUL byte; remove it",
        ),
        (
            big_head.as_bytes(),
            "HTTP/1.1 431",
            "request head over 65536 bytes; send fewer or shorter headers",
        ),
        (
            line_and_head.as_bytes(),
            "HTTP/1.1 431",
            "request head over 65536 bytes; send fewer or shorter headers",
        ),
        // An escaped letter is the letter (RFC 3986, 6.2.2.2).
        (
            b"GET /api/%6dodel HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            "200",
            "\"widths\"",
        ),
        // The absolute form's port is judged as Host's is.
        (
            b"GET http://localhost:abc/api/model HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            "400",
            "the request's URL has the port \\\"abc\\\", which is not a port number",
        ),
        // And the Host header's, beside a URL in absolute form.
        (
            b"GET http://localhost/api/model HTTP/1.1\r\nHost: 127.0.0.1:abc\r\n\r\n",
            "400",
            "the request's Host header has the port \\\"abc\\\", which is not a port number",
        ),
        // A target that is no path: malformed, not a page not there.
        (
            b"GET ?x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            "400",
            "the request target is no path; ask for a page, such as /",
        ),
        // A second Connection header's close ends the connection too (RFC
        // 9110 5.3): the pipelined request after it is not answered.
        (
            b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\nConnection: close\r\n\r\nGET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            "200",
            "\"widths\"",
        ),
    ] {
        let (answer, end) = raw_to_end(a, request, wait);
        assert!(end.is_ok(), "not ended within {wait:?} ({end:?}): {answer:?}");
        let first = answer.lines().next().unwrap_or_default();
        assert!(first.contains(status), "{first:?}");
        assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer}");
        assert!(
            answer.contains("application/json") && answer.contains(says),
            "{answer}"
        );
    }
    // The library's own error answers to a HEAD carry no body (RFC 9110
    // 9.3.2), as the routes' do not.
    let (answer, _) = raw_to_end(
        a,
        b"HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\nno colon\r\n\r\n",
        wait,
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.ends_with("\r\n\r\n"), "a body: {answer}");
    // The asterisk's 405 names the methods the server answers.
    let (answer, _) = raw_to_end(
        a,
        b"OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        wait,
    );
    assert!(
        answer.contains("\r\nAllow: GET, HEAD, POST\r\n"),
        "{answer}"
    );
    // The CR LF some clients send after a POST body, on a kept-alive
    // connection: the next request is answered, not refused.
    let answer = raw(
        a,
        b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}\r\nGET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        wait,
    );
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 2, "{answer}");
    assert!(answer.contains("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.contains("\"widths\""), "{answer}");

    // More uploads than handler threads, each trickling a byte every 2 s
    // (every read succeeds: only the body's 20 s deadline would end them):
    // each is read on a thread of its own, so the page answers at once,
    // not after the deadline cuts them off (20 s, as it once did).
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..2 * serve::HANDLERS)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(a).unwrap();
            s.write_all(
                b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5000\r\n\r\n",
            )
            .unwrap();
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) && s.write_all(b"1").is_ok() {
                    std::thread::sleep(Duration::from_secs(2));
                }
                s
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    let answer = raw(
        a,
        b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        Duration::from_secs(60),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        drop(c.join().unwrap());
    }

    // `Expect: 100-continue` gets the bare status line (RFC 9110 15.2: no
    // Content-Length in a 1xx), then the answer.
    let body = br#"{"width":1,"height":1,"pixels":[0]}"#;
    let mut request = format!("POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).into_bytes();
    request.extend(body);
    let answer = raw(a, &request, wait);
    assert!(
        answer.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 422 "),
        "{answer:?}"
    );
    // But not to an HTTP/1.0 client (RFC 9110 10.1.1: the server MUST
    // ignore it), nor for an empty body: each got a `100 Continue` once.
    let mut request = format!("POST /api/predict HTTP/1.0\r\nExpect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    request.extend(body);
    let answer = raw(a, &request, wait);
    assert!(answer.starts_with("HTTP/1.0 422 "), "{answer:?}");
    let answer = raw(
        a,
        b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        wait,
    );
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer:?}");

    // The page itself stays open to a link from another site.
    let answer = raw(
        a,
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nSec-Fetch-Site: cross-site\r\nConnection: close\r\n\r\n",
        wait,
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // A body announced far past the limit is refused without reading (or
    // allocating) it, and the server lives on.
    let answer = raw(
        a,
        b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000000000\r\n\r\n",
        wait,
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(get(a, "/api/model").status, 200);

    let (answer, took) = trickle.join().unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "{answer:?} after {took:?}"
    );
    assert!(took < Duration::from_secs(60), "{took:?}");
}

/// An answer after which the server closes its connection says so
/// (`Connection: close`: a refused body, a malformed request, a client that
/// asked), and an HTTP/1.0 client that asked to keep its connection is told
/// it is kept, or it would close it.
#[test]
fn answers_say_whether_their_connection_stays_open() {
    use std::time::Duration;
    let (_t, server) = small_model_served();
    let a = server.addr();
    let wait = Duration::from_secs(5);
    let closes = |request: &[u8], status: &str| {
        let (answer, end) = raw_to_end(a, request, wait);
        assert!(answer.starts_with(status), "{answer}");
        assert!(answer.contains("\r\nConnection: close\r\n"), "{answer}");
        // Closed by the server, not by the read's timeout.
        assert!(end.is_ok(), "not ended within {wait:?} ({end:?}): {answer}");
    };
    closes(
        b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 70000\r\n\r\n",
        "HTTP/1.1 413",
    );
    closes(b"NOT HTTP\r\n\r\n", "HTTP/1.1 400");
    closes(
        b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        "HTTP/1.1 200",
    );
    closes(b"GET /api/model HTTP/1.0\r\n\r\n", "HTTP/1.0 200");

    // Kept: the whole answer comes, and the connection stays open after it.
    let (kept, open) = answer_then_open(
        a,
        b"GET /api/model HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    );
    assert!(kept.starts_with("HTTP/1.0 200"), "{kept}");
    assert!(kept.contains("\r\nConnection: keep-alive\r\n"), "{kept}");
    assert!(open, "closed after: {kept}");
    let (kept, open) = answer_then_open(a, b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert!(kept.starts_with("HTTP/1.1 200"), "{kept}");
    assert!(!kept.contains("Connection:"), "{kept}");
    assert!(open, "closed after: {kept}");
    // (And the check tells: an answer saying close is followed by the end.)
    let (closed, open) = answer_then_open(
        a,
        b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert!(closed.starts_with("HTTP/1.1 200") && !open, "{closed}");
}

/// A client that sent more requests after one whose answer ends the
/// connection still gets that whole answer. Closing a socket with unread
/// bytes makes the kernel reset the connection, which drops what the
/// client has not read yet: the server reads and drops what follows before
/// it closes (a lingering close). The client's small receive buffer keeps
/// most of the answer on the server's side until the client reads.
#[cfg(unix)]
#[test]
fn an_answer_that_ends_its_connection_arrives_whole() {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::time::Duration;
    let (_t, server) = small_model_served();
    let a = server.addr();
    let page = get(a, "/page.js").body;
    assert!(page.len() > 30_000, "{}", page.len());
    let mut request =
        b"GET /page.js HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".to_vec();
    request.extend(b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(200));
    for round in 0..3 {
        let mut s = std::net::TcpStream::connect(a).unwrap();
        let size: libc::c_int = 4096;
        // SAFETY: `s` holds an open socket for the whole call; the value is
        // a c_int that outlives the call, and its size is the one passed.
        let set = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(set, 0, "{}", std::io::Error::last_os_error());
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(&request).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let mut out = Vec::new();
        let end = s.read_to_end(&mut out);
        assert!(
            end.is_ok(),
            "round {round}: {end:?} after {} bytes",
            out.len()
        );
        // One answer, its chunked body whole and page.js's own bytes.
        let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&out[..split]);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
        assert!(
            head.contains("\r\nTransfer-Encoding: chunked\r\n"),
            "{head}"
        );
        let (mut body, mut rest) = (Vec::new(), &out[split..]);
        loop {
            let line = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = std::str::from_utf8(&rest[..line]).unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            rest = &rest[line + 2..];
            if size == 0 {
                assert_eq!(rest, b"\r\n", "round {round}: after the last chunk");
                break;
            }
            body.extend_from_slice(&rest[..size]);
            assert_eq!(&rest[size..size + 2], b"\r\n");
            rest = &rest[size + 2..];
        }
        assert!(
            body == page,
            "round {round}: {} of {} bytes",
            body.len(),
            page.len()
        );
    }
    server.stop();
}

/// Sends `request` and reads its one answer (its head and its
/// Content-Length body, waiting as long as a loaded machine may take),
/// then whether the connection is still open half a second later: a
/// read that times out, not the end of the stream.
fn answer_then_open(a: SocketAddr, request: &[u8]) -> (String, bool) {
    use std::io::{ErrorKind, Read, Write};
    use std::time::Duration;
    let mut s = std::net::TcpStream::connect(a).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let whole = |out: &[u8]| {
        let text = String::from_utf8_lossy(out);
        let Some(end) = text.find("\r\n\r\n") else {
            return false;
        };
        let len = (text[..end].lines())
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .map_or(0, |n| n.trim().parse::<usize>().unwrap());
        out.len() >= end + 4 + len
    };
    while !whole(&out) {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the answer was whole: {out:?}");
        out.extend_from_slice(&buf[..n]);
    }
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let open = match s.read(&mut buf) {
        Ok(0) => false,
        Ok(n) => panic!("more than one answer: {:?}", &buf[..n]),
        Err(e) => {
            assert!(
                matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
                "{e}"
            );
            true
        }
    };
    (String::from_utf8_lossy(&out).into_owned(), open)
}

/// A request body trickled in a byte a second gets one 408 within its
/// deadline, saying `Connection: close`, and then the end of the
/// connection: not, for a short body, a thread held for as long as the
/// bytes keep coming (the HTTP library reads bodies up to 1 KiB itself),
/// nor, for a longer one, a second answer to the rest of the body read as a
/// request.
#[test]
fn trickled_bodies_get_one_408_and_the_end_of_their_connection() {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};
    let (_t, server) = small_model_served();
    let a = server.addr();
    let runs: Vec<_> = [500, 5000]
        .into_iter()
        .map(|length| {
            std::thread::spawn(move || {
                let t0 = Instant::now();
                let mut s = std::net::TcpStream::connect(a).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                let head =
                    format!("POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n\r\n");
                s.write_all(head.as_bytes()).unwrap();
                let stop = Arc::new(AtomicBool::new(false));
                let mut w = s.try_clone().unwrap();
                let writer = {
                    let stop = stop.clone();
                    std::thread::spawn(move || {
                        for _ in 0..60 {
                            if stop.load(Ordering::Relaxed) || w.write_all(b"1").is_err() {
                                break;
                            }
                            std::thread::sleep(Duration::from_secs(1));
                        }
                    })
                };
                let mut out = Vec::new();
                // Ends at the server's close; a reset is an end too.
                let _ = s.read_to_end(&mut out);
                let took = t0.elapsed();
                stop.store(true, Ordering::Relaxed);
                writer.join().unwrap();
                (length, String::from_utf8_lossy(&out).into_owned(), took)
            })
        })
        .collect();
    for run in runs {
        let (length, answer, took) = run.join().unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{length}: {answer}");
        assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{length}: {answer}");
        assert!(
            answer.contains("\r\nConnection: close\r\n"),
            "{length}: {answer}"
        );
        assert!(
            took < Duration::from_secs(40),
            "{length}: {took:?}: {answer}"
        );
    }
}

/// Clients that send many requests at once and read no answer (six, more
/// than the four threads that answer) each hold their own connection's
/// thread, not the page: another client is answered at once while they
/// stay open, and the server ends each of them once an answer cannot be
/// written (the socket's 10 s write timeout). Each of these clients used
/// to hold every answering thread in turn, for as long as it stayed open.
#[cfg(unix)]
#[test]
fn clients_that_read_no_answers_do_not_freeze_the_page() {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let (_t, server) = small_model_served();
    let a = server.addr();
    // 500 answers of page.js (over 30 KB each) are far more than the
    // sockets' buffers hold, so each connection's writes stop.
    let pipelined = b"GET /page.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(500);
    let hogs: Vec<std::net::TcpStream> = (0..6)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(a).unwrap();
            s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
            s.write_all(&pipelined).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    for i in 0..8 {
        let t0 = Instant::now();
        let mut s = std::net::TcpStream::connect(a).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        s.write_all(b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = Vec::new();
        let end = s.read_to_end(&mut out);
        let answer = String::from_utf8_lossy(&out);
        assert!(
            end.is_ok() && answer.starts_with("HTTP/1.1 200"),
            "probe {i}: {end:?} after {:?}: {answer}",
            t0.elapsed()
        );
        assert!(
            t0.elapsed() < Duration::from_secs(4),
            "probe {i} took {:?}",
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Each client unread is dropped by the server: a reset (the requests
    // it sent are not all read) or an end, seen without reading, which
    // would let the answers flow again.
    let deadline = Instant::now() + Duration::from_secs(60);
    let tick = Timespec {
        tv_sec: 0,
        tv_nsec: 200_000_000,
    };
    for (i, hog) in hogs.iter().enumerate() {
        loop {
            let mut fds = [PollFd::new(hog, PollFlags::RDHUP)];
            let _ = poll(&mut fds, Some(&tick));
            let seen = fds[0].revents();
            if seen.intersects(PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "client {i} still connected a minute on ({seen:?})"
            );
        }
    }
    server.stop();
}

/// `serve … | head -1` (a reader that goes away, here one gone before the
/// server starts): the banner cannot be written, and the page is served
/// all the same.
#[cfg(unix)]
#[test]
fn serve_goes_on_when_its_stdout_reader_has_gone() {
    use std::os::fd::{FromRawFd, OwnedFd};
    let t = tempfile::tempdir().unwrap();
    let (model, data) = common::small_model(t.path());
    let mut fds = [0; 2];
    // SAFETY: pipe(2) writes two new descriptors into the array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: each descriptor was just created and is owned once.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    let (mut child, addr) = serve_child(
        &model,
        &data,
        std::process::Stdio::from(write),
        std::process::Stdio::null(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let answer = loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("serve exited ({status}) when its reader went away");
        }
        if std::net::TcpStream::connect(addr).is_ok() {
            break get(addr, "/api/model");
        }
        assert!(std::time::Instant::now() < deadline, "serve never listened");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(answer.status, 200, "{}", answer.text());
}

/// `simplenn serve` of `model` on `data`, on a port that was free a moment
/// ago, and the address it will listen on.
fn serve_child(
    model: &Path,
    data: &Path,
    stdout: std::process::Stdio,
    stderr: std::process::Stdio,
) -> (std::process::Child, SocketAddr) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_simplenn"))
        .args(["serve", "--model", model.to_str().unwrap()])
        .args([
            "--data",
            data.to_str().unwrap(),
            "--port",
            &port.to_string(),
        ])
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .unwrap();
    (child, ([127, 0, 0, 1], port).into())
}

/// A test file cut short under the running server (`truncate`, `cp` over
/// it) makes the next read of its map fault: the process ends with one line
/// saying so and status 1, not a bare "Bus error".
#[test]
fn a_data_file_cut_short_while_served_is_one_line() {
    let t = tempfile::tempdir().unwrap();
    let (model, data) = common::small_model(t.path());
    let (mut child, addr) = serve_child(
        &model,
        &data,
        std::process::Stdio::null(),
        std::process::Stdio::piped(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "serve exited");
        assert!(std::time::Instant::now() < deadline, "serve never listened");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let images = data.join("t10k-images-idx3-ubyte");
    // The header alone is left: every image lies past the file's end.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&images)
        .unwrap()
        .set_len(16)
        .unwrap();
    // The server dies answering (the list's first image is read), so the
    // request's own failure says nothing.
    let _ = std::panic::catch_unwind(|| get(addr, "/api/digits?per_page=1&page=0"));
    let out = common::exited_within(
        child,
        30,
        "serve read no image past the cut (or survived it)",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.lines().last().is_some_and(|l| l.starts_with(&format!(
            "simplenn: error: {}: the data file could not be read through its memory map (SIGBUS: most often another program cut it short",
            images.display()
        ))),
        "{err}"
    );
}

/// The page reads its `--metrics` log again at every request: a pipe, whose
/// lines can be read once (and a FIFO, whose open blocked the start), is
/// refused at the start.
#[test]
fn a_metrics_log_that_is_a_pipe_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let (model, _) = common::small_model(t.path());
    let fifo = t.path().join("log.jsonl");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_simplenn"))
        .args(["serve", "--model", model.to_str().unwrap(), "--port", "0"])
        .arg("--metrics")
        .arg(&fifo)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("log.jsonl: a pipe or a device, not a file; the page reads the log again at every request"),
        "{err}"
    );
}
