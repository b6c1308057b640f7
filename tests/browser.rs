//! The page in a real browser: headless Chromium driven over WebDriver
//! (Debian's `chromium` and `chromium-driver`, `fantoccini` as the client).
//! One test draws digits on the pad with pointer events and reads the class
//! the page shows, then clicks a confusion cell; another watches the live
//! page's curve gain points while a short training runs; two more serve
//! metrics logs: one of 100,000 epochs (drawn thinned, without a console
//! error), one that gains an epoch while the page is open (at a phone's
//! width, with a long model file name).
//!
//! Without chromium and chromedriver these tests fail, unless
//! `SIMPLENN_SKIP_BROWSER=1` says to skip them (loudly). With
//! `SIMPLENN_SCREENSHOTS=DIR` they save the page as PNG files there, and
//! `SIMPLENN_SCREENSHOT_DATA=DIR` (with `SIMPLENN_SCREENSHOT_MODEL=PATH` and
//! optionally `SIMPLENN_SCREENSHOT_METRICS=PATH`) serves and trains on that
//! data instead of the tests' small slices: `docs/serve-*.png` were taken so.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::http::Child;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// Where a program is on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// Chromium and chromedriver, or `None` when the tests are to be skipped.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|n| which(n));
    let driver = which("chromedriver");
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ if std::env::var("SIMPLENN_SKIP_BROWSER").as_deref() == Ok("1") => {
            // Straight to stderr, past the test harness's capture, which
            // would hide `eprintln!` from a passing test.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\n**************************************************************\n\
                 *** SKIPPED: browser test (SIMPLENN_SKIP_BROWSER=1, and no  ***\n\
                 *** chromium + chromedriver on PATH). The page is untested. ***\n\
                 **************************************************************\n"
            );
            None
        }
        _ => panic!(
            "chromium and chromedriver not found on PATH: install them (Debian: apt-get install -y chromium chromium-driver), or set SIMPLENN_SKIP_BROWSER=1 to skip the browser tests"
        ),
    }
}

/// `simplenn serve` of `model` with the test set in `data`, on `port`.
fn serve_args<'a>(model: &'a Path, data: &'a Path, port: &'a str) -> Vec<&'a str> {
    let (model, data) = (model.to_str().unwrap(), data.to_str().unwrap());
    vec!["serve", "--model", model, "--data", data, "--port", port]
}

/// Open the learning curve's table of figures (its `<summary>`).
async fn click_summary(c: &Client) {
    c.find(Locator::Css("#curve-figures summary"))
        .await
        .expect("the curve's table is offered")
        .click()
        .await
        .unwrap();
}

/// Click the element with id `id`.
async fn click(c: &Client, id: &str) {
    c.find(Locator::Id(id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Wait for the page's confusion matrix of ten classes: 100 cells.
async fn ten_by_ten_matrix(c: &Client) {
    wait_until(
        c,
        "return document.querySelectorAll('#confusion td').length",
        60,
        "the confusion matrix",
        |v| v.as_u64() == Some(100),
    )
    .await;
}

/// The page scrolls no wider than its window.
async fn no_wider_than_the_window(c: &Client) {
    let widths = c
        .execute(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        widths[0].as_u64() <= widths[1].as_u64(),
        "page wider than the window: {widths}"
    );
}

/// Wait for the digits of diagonal cell `class` to be listed; the title.
async fn cell_listed(c: &Client, class: usize) -> Value {
    let want = format!("class {class} read as {class}");
    wait_until(
        c,
        "return document.getElementById('digits-title').textContent",
        30,
        "the cell's digits",
        |v| v.as_str().is_some_and(|s| s.contains(&want)),
    )
    .await
}

/// A "1": one vertical stroke down the pad, point by point.
fn one_stroke() -> Vec<(f32, f32)> {
    (0..=20).map(|i| (140.0, 40.0 + 10.0 * i as f32)).collect()
}

/// A chromedriver child, killed on drop.
struct Driver(std::process::Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A chromedriver on a free port and a WebDriver session on it. The port is
/// chosen before chromedriver binds it, so another process (the other
/// test's server, say) can take it in between, and a just-started driver
/// can reset its first connections: a failed session start is retried on a
/// fresh driver and port, a few times, before the test fails.
async fn open_browser() -> Option<(Driver, Client)> {
    let (chromium, chromedriver) = browser()?;
    let caps = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1700", "--no-first-run", "--disable-extensions"],
        },
        // The console's messages, for `severe_console_messages`.
        "goog:loggingPrefs": { "browser": "ALL" }
    });
    let caps = match caps {
        Value::Object(m) => m,
        _ => unreachable!(),
    };
    let mut last_error = String::new();
    for _ in 0..5 {
        let port = free_port();
        let child = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver(child, port);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let session = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{}", driver.1))
            .await;
        match session {
            Ok(client) => return Some((driver, client)),
            Err(e) => last_error = format!("{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("WebDriver session: 5 attempts failed; the last: {last_error}");
}

/// Evaluate `script` (a function body) until `done` holds of its value.
async fn wait_until(
    c: &Client,
    script: &str,
    secs: u64,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let v = c.execute(script, vec![]).await.expect("script runs");
        if done(&v) {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}: last {v}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The page's console messages of level SEVERE since the last call
/// (uncaught exceptions, failed requests), from chromedriver's log endpoint,
/// which fantoccini has no call for. chromedriver keeps the connection
/// open (whatever `Connection: close` says), so the body is read by its
/// `Content-Length`.
async fn severe_console_messages(c: &Client, driver: &Driver) -> Vec<String> {
    use std::io::{BufRead, BufReader, Read, Write};
    let id = c.session_id().await.unwrap().expect("a session");
    let body = r#"{"type":"browser"}"#;
    let mut s = TcpStream::connect(("127.0.0.1", driver.1)).expect("chromedriver");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST /session/{id}/se/log HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let (mut head, mut length) = (String::new(), 0);
    loop {
        let mut line = String::new();
        r.read_line(&mut line).expect("a header line");
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().expect("a length");
            }
        }
        if line.trim().is_empty() {
            break;
        }
        head.push_str(&line);
    }
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut json = vec![0; length];
    r.read_exact(&mut json).expect("the log");
    let logs: Value = serde_json::from_slice(&json).expect("JSON");
    logs["value"]
        .as_array()
        .expect("a list of log entries")
        .iter()
        .filter(|e| e["level"] == "SEVERE")
        .map(|e| e["message"].to_string())
        .collect()
}

/// The curve's axis labels, each equal to the value at the height it
/// labels: the numbers of the loss axis (left) and of the accuracy axis
/// (right, in %) are each a linear function of their labels' heights. A
/// label rounded off its gridline ("0.22" at 0.225, "98%" at 97.5 %)
/// breaks that.
async fn axis_labels_match_their_heights(c: &Client) {
    let labels = c
        .execute(
            "return [...document.querySelectorAll('#curve text')].filter((t) => t.textContent !== 'epoch').map((t) => [t.getAttribute('text-anchor') || 'start', t.textContent, +t.getAttribute('y')])",
            vec![],
        )
        .await
        .unwrap();
    for (anchor, what) in [("end", "loss"), ("start", "accuracy")] {
        let axis: Vec<(f64, f64)> = labels
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l[0] == anchor)
            .map(|l| {
                let text = l[1].as_str().unwrap().trim_end_matches('%');
                let v: f64 = text.parse().unwrap_or_else(|_| panic!("label {l}"));
                (v, l[2].as_f64().unwrap())
            })
            .collect();
        assert!(axis.len() >= 3, "{what} axis: labels {labels}");
        let ((v0, y0), (v1, y1)) = (axis[0], axis[1]);
        let slope = (v1 - v0) / (y1 - y0);
        for &(v, y) in &axis[2..] {
            let want = v0 + slope * (y - y0);
            assert!(
                (v - want).abs() <= 1e-6 * v0.abs().max(v1.abs()),
                "{what} axis: label {v} at y {y}, where the labels above make it {want}: {labels}"
            );
        }
    }
}

/// `epochs` lines of a metrics log from epoch `first` on: the training
/// loss falls from 1, validation accuracy rises from 0.5, and epoch
/// `spike` (if in range) has a training loss of 3.
fn metrics_lines(first: usize, epochs: usize, total: usize, spike: usize) -> String {
    let mut s = String::new();
    for e in first..first + epochs {
        let f = e as f64 / total as f64;
        let loss = if e == spike { 3.0 } else { 1.0 - 0.9 * f };
        s.push_str(&format!(
            "{{\"epoch\":{e},\"train_loss\":{loss},\"train_accuracy\":{a},\"val_loss\":{v},\"val_accuracy\":{a},\"lr\":0.05,\"seconds\":0.001,\"samples_per_sec\":300000.0}}\n",
            a = 0.5 + 0.49 * f,
            v = 1.1 - 0.9 * f,
        ));
    }
    s
}

/// Draw `points` (pad coordinates, 280 × 280) as one stroke with pointer
/// events of `kind` (`mouse`, `pen` or `touch`).
async fn draw(c: &Client, kind: &str, points: &[(f32, f32)]) {
    let pts: Vec<Value> = points.iter().map(|&(x, y)| json!([x, y])).collect();
    c.execute(
        r#"
        const [pts, kind] = arguments;
        const pad = document.getElementById("pad");
        const r = pad.getBoundingClientRect();
        const fire = (type, p, buttons) => pad.dispatchEvent(new PointerEvent(type, {
            bubbles: true, cancelable: true, pointerId: 7, pointerType: kind, isPrimary: true,
            buttons, pressure: buttons ? 0.5 : 0,
            clientX: r.left + p[0] * r.width / 280, clientY: r.top + p[1] * r.height / 280 }));
        fire("pointerdown", pts[0], 1);
        for (const p of pts.slice(1)) fire("pointermove", p, 1);
        fire("pointerup", pts[pts.length - 1], 0);
        "#,
        vec![Value::Array(pts), json!(kind)],
    )
    .await
    .expect("pointer events");
}

async fn shown_digit(c: &Client, want: &str) -> String {
    let v = wait_until(
        c,
        "return document.getElementById('digit').textContent",
        30,
        &format!("the pad to read {want}"),
        |v| v.as_str() == Some(want),
    )
    .await;
    v.as_str().unwrap_or("").to_string()
}

async fn screenshot(c: &Client, name: &str) {
    if let Some(dir) = std::env::var_os("SIMPLENN_SCREENSHOTS") {
        let png = c.screenshot().await.expect("screenshot");
        std::fs::write(Path::new(&dir).join(name), png).expect("write screenshot");
    }
}

#[tokio::test]
async fn pad_reads_drawn_digits_and_confusion_cells_open() {
    let Some((_driver, c)) = open_browser().await else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let (model, data) = match (
        std::env::var_os("SIMPLENN_SCREENSHOT_MODEL"),
        std::env::var_os("SIMPLENN_SCREENSHOT_DATA"),
    ) {
        (Some(m), Some(d)) => (PathBuf::from(m), PathBuf::from(d)),
        _ => common::small_model(t.path()),
    };
    let metrics = std::env::var("SIMPLENN_SCREENSHOT_METRICS").ok();
    let mut args = serve_args(&model, &data, "0");
    if let Some(m) = &metrics {
        args.extend(["--metrics", m.as_str()]);
    }
    let server = Child::spawn(&args);
    let a: SocketAddr = server.address();
    c.goto(&format!("http://{a}/")).await.expect("page loads");
    wait_until(
        &c,
        "return document.querySelectorAll('#bars .bar').length",
        30,
        "the bars",
        |v| v.as_u64() == Some(10),
    )
    .await;

    // Without --metrics: the note alone, no empty box of a curve above it.
    if metrics.is_none() {
        let curve = c
            .execute(
                "return [getComputedStyle(document.getElementById('curve')).display, document.getElementById('curve-note').textContent]",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(curve[0], json!("none"), "{curve}");
        assert!(
            curve[1].as_str().unwrap().starts_with("no learning curve"),
            "{curve}"
        );
    }

    // A "1": one vertical stroke, drawn point by point.
    draw(&c, "pen", &one_stroke()).await;
    assert_eq!(shown_digit(&c, "1").await, "1");
    // What the model sees has ink.
    let ink = c
        .execute(
            "const s = document.getElementById('sees'); const d = s.getContext('2d').getImageData(0, 0, s.width, s.height).data; let n = 0; for (let i = 0; i < d.length; i += 4) n += d[i] > 0; return [s.width, n];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(ink[0], 28);
    assert!(ink[1].as_u64().unwrap() > 20, "{ink}");
    // Only certainty reads "100.0" and only nothing "0.0", on the bars as
    // in the answer (both written by `percent`).
    let read = c
        .execute(
            "return [0.9996, 1, 0.0004, 0, 0.5, 0.99949, 0.0015, 0.0125].map(percent)",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        read,
        // The last two as `show::probability` writes them too.
        json!([">99.9", "100.0", "<0.1", "0.0", "50.0", "99.9", "0.1", "1.3"])
    );

    // Clear, then a "0".
    click(&c, "clear").await;
    assert_eq!(shown_digit(&c, "–").await, "–");
    draw(&c, "touch", &common::http::zero()).await;
    assert_eq!(shown_digit(&c, "0").await, "0");
    screenshot(&c, "serve-model.png").await;

    // The same "0" as a chosen image (the keyboard's way to an answer):
    // the pad is cleared for it, and the answer read out.
    c.execute(
        r#"
        const bytes = Uint8Array.from(atob(document.getElementById("pad").toDataURL("image/png").split(",")[1]), (ch) => ch.charCodeAt(0));
        document.getElementById("clear").click();
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], "zero.png", { type: "image/png" }));
        const input = document.getElementById("upload");
        input.files = dt.files;
        input.dispatchEvent(new Event("change"));"#,
        vec![],
    )
    .await
    .expect("choose an image");
    assert_eq!(shown_digit(&c, "0").await, "0");
    let said = wait_until(
        &c,
        "return document.getElementById('announce').textContent",
        30,
        "the chosen image's answer read out",
        |v| v.as_str().is_some_and(|s| s.starts_with("reads 0,")),
    )
    .await;
    assert!(said.as_str().unwrap().ends_with("percent"), "{said}");

    // Two pointers at once (a second finger, or a palm resting while a pen
    // writes): the first draws, the second nothing. Strokes used to join
    // the two, across the pad.
    click(&c, "clear").await;
    let stray = c
        .execute(
            r#"
        const pad = document.getElementById("pad");
        const r = pad.getBoundingClientRect();
        const fire = (type, id, p, buttons) => pad.dispatchEvent(new PointerEvent(type, {
            bubbles: true, cancelable: true, pointerId: id, pointerType: "touch",
            isPrimary: id === 7, buttons, pressure: buttons ? 0.5 : 0,
            clientX: r.left + p[0] * r.width / 280, clientY: r.top + p[1] * r.height / 280 }));
        fire("pointerdown", 7, [50, 40], 1);
        fire("pointerdown", 8, [240, 240], 1);
        for (let y = 50; y <= 220; y += 10) {
            fire("pointermove", 7, [50, y], 1);
            fire("pointermove", 8, [240, 241], 1);
        }
        fire("pointerup", 8, [240, 241], 0);
        fire("pointerup", 7, [50, 220], 0);
        const d = pad.getContext("2d").getImageData(0, 0, pad.width, pad.height).data;
        let stray = 0;
        for (let y = 0; y < pad.height; y++)
            for (let x = 100; x < pad.width; x++) stray += d[4 * (y * pad.width + x)] < 128;
        return stray;"#,
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        stray,
        json!(0),
        "dark pixels away from the first pointer's stroke"
    );

    // A tap draws a dot, which is read (canvas draws no line of no length:
    // the pad stayed blank and was sent, and the answer was an error).
    click(&c, "clear").await;
    assert_eq!(shown_digit(&c, "–").await, "–");
    draw(&c, "mouse", &[(140.0, 140.0)]).await;
    let dark = c
        .execute(
            "const d = pad.getContext('2d').getImageData(0, 0, pad.width, pad.height).data; let n = 0; for (let i = 0; i < d.length; i += 4) n += d[i] < 128; return n;",
            vec![],
        )
        .await
        .unwrap();
    // A disc of radius 10: about 314 pixels.
    assert!((250..=380).contains(&dark.as_u64().unwrap()), "{dark}");
    wait_until(
        &c,
        "return document.getElementById('digit').textContent",
        30,
        "an answer to the tap",
        |v| v.as_str().is_some_and(|d| d.parse::<u8>().is_ok()),
    )
    .await;

    // The confusion matrix: 100 cells; clicking one lists that cell's digits.
    ten_by_ten_matrix(&c).await;
    let cell = c
        .find(Locator::Css(
            "#confusion td[data-label='4'][data-predicted='4']",
        ))
        .await
        .unwrap();
    let count: u64 = cell.text().await.unwrap().parse().unwrap_or(0);
    cell.click().await.unwrap();
    let title = cell_listed(&c, 4).await;
    assert!(
        title.as_str().unwrap().contains(&format!("({count})")),
        "{title}"
    );
    let shown = c
        .execute(
            "return document.querySelectorAll('#digits .digit').length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(shown.as_u64().unwrap(), count.min(24));
    // Each listed digit's probability follows the same rule (a well-read
    // 4 is often 0.996 or more: "100%" would claim certainty).
    let said = c
        .execute(
            "return [...document.querySelectorAll('#digits .digit')].map((d) => d.lastChild.textContent)",
            vec![],
        )
        .await
        .unwrap();
    for p in said.as_array().unwrap() {
        let p = p.as_str().unwrap();
        let number = p.trim_start_matches(['>', '<']).trim_end_matches('%');
        assert!(
            p.ends_with('%') && number.split_once('.').is_some_and(|(_, d)| d.len() == 1),
            "a digit's probability reads {p:?}: not `percent`'s form"
        );
    }

    // Paging by keyboard to the last page: the focus moves from "next",
    // disabled there, to "prev" (it used to fall back to the page).
    click(&c, "all-wrong").await;
    // Listed: the button hides once the list is of every misread digit.
    let pages = wait_until(
        &c,
        "return [document.getElementById('all-wrong').hidden, document.getElementById('page').textContent]",
        30,
        "the misread digits' pages",
        |v| v[0] == json!(true) && v[1].as_str().is_some_and(|t| t.starts_with("page 1 of ")),
    )
    .await;
    let pages: u64 = pages[1]
        .as_str()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        pages >= 2,
        "{pages} page(s): too few misread digits to page"
    );
    for page in 2..=pages {
        c.find(Locator::Id("next"))
            .await
            .unwrap()
            .send_keys(&fantoccini::key::Key::Enter.to_string())
            .await
            .unwrap();
        wait_until(
            &c,
            "return document.getElementById('page').textContent",
            30,
            "the next page",
            |v| v.as_str() == Some(&format!("page {page} of {pages}")),
        )
        .await;
    }
    let focus = c
        .execute(
            "return [document.getElementById('next').disabled, document.activeElement.id]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(focus, json!([true, "prev"]));
    c.close().await.unwrap();
}

/// Names from `serve --class-names` label the bars, the answer, the
/// matrix's cells and the listed cell's title.
#[tokio::test]
async fn class_names_label_the_bars_the_answer_and_the_matrix() {
    let Some((_driver, c)) = open_browser().await else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let (model, data) = common::small_model(t.path());
    let names = t.path().join("names.txt");
    let words = [
        "zero",
        // 40 characters and no space: the answer's line breaks it rather
        // than widen a phone's page.
        "one_one_one_one_one_one_one_one_one_one_",
        // Short enough for the names' column (10em) at a phone's width.
        "horizontal bar",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        // The longest name a file may hold: cut on the bars, whole in their titles.
        "nine nine nine nine nine nine nine nine.",
    ];
    std::fs::write(&names, words.join("\n")).unwrap();
    // A log with test figures every epoch, for the curve's test lines.
    let log = t.path().join("metrics.jsonl");
    let o = common::simplenn(&[
        "--data",
        data.to_str().unwrap(),
        "--hidden",
        "16",
        "--epochs",
        "2",
        "--val",
        "500",
        "--threads",
        "1",
        "--no-progress",
        "--no-save",
        "--test-every-epoch",
        "--metrics",
        log.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let mut args = serve_args(&model, &data, "0");
    args.extend(["--class-names", names.to_str().unwrap()]);
    args.extend(["--metrics", log.to_str().unwrap()]);
    let server = Child::spawn(&args);
    let a: SocketAddr = server.address();
    c.goto(&format!("http://{a}/")).await.expect("page loads");
    let labels = wait_until(
        &c,
        "return [...document.querySelectorAll('#bars .label')].map((e) => e.textContent)",
        30,
        "the bars' labels",
        |v| v.as_array().is_some_and(|l| l.len() == 10),
    )
    .await;
    // Each name set apart from the text around it (first-strong isolate
    // ... pop directional isolate), so that a right-to-left name cannot
    // carry the numbers beside it to its side.
    let isolated = |w: &str| format!("\u{2068}{w}\u{2069}");
    let plain = |s: &str| s.replace(['\u{2068}', '\u{2069}'], "");
    let want: Vec<String> = words
        .iter()
        .enumerate()
        .map(|(i, w)| format!("{i} {}", isolated(w)))
        .collect();
    assert_eq!(labels, json!(want));
    let heading = c
        .find(Locator::Id("draw-title"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(heading, "Draw one of its classes");

    // Every line of a --test-every-epoch log is drawn and named, each with
    // a dash pattern of its own (not told apart by colour alone, WCAG
    // 1.4.1), which its legend key shows.
    let keys = wait_until(
        &c,
        "return [...document.querySelectorAll('.legend .key')].filter((k) => !k.hidden).map((k) => k.textContent)",
        30,
        "the curve's legend",
        |v| v.as_array().is_some_and(|l| l.len() > 1),
    )
    .await;
    assert_eq!(
        keys,
        json!([
            "train loss",
            "validation loss",
            "test loss",
            "validation accuracy",
            "test accuracy"
        ])
    );
    let dashes = c
        .execute(
            "const dash = (e) => e.getAttribute('stroke-dasharray') || 'solid'; return [...document.querySelectorAll('#curve polyline')].map((l) => [l.dataset.key, dash(l), dash(document.querySelector('.legend .key.' + l.dataset.key + ' .swatch line')), l.getAttribute('points').split(' ').length])",
            vec![],
        )
        .await
        .unwrap();
    let dashes = dashes.as_array().unwrap();
    assert_eq!(dashes.len(), 5, "{dashes:?}");
    let mut patterns: Vec<&str> = dashes.iter().map(|l| l[1].as_str().unwrap()).collect();
    assert!(
        dashes.iter().all(|l| l[1] == l[2] && l[3] == 2),
        "{dashes:?}"
    );
    patterns.sort();
    patterns.dedup();
    assert_eq!(patterns.len(), 5, "{dashes:?}");
    // The curve in words (WCAG 1.1.1), named as the drawing's description,
    // and every epoch's figures in a table on demand.
    let words_of = c
        .execute(
            "const s = document.getElementById('curve-summary'); return [s.textContent, document.getElementById('curve').getAttribute('aria-describedby')]",
            vec![],
        )
        .await
        .unwrap();
    let said = words_of[0].as_str().unwrap();
    assert!(
        said.starts_with("2 epochs; the last (2): train loss ")
            && said.contains(", validation loss ")
            && said.contains(", test loss ")
            && said.contains(", test accuracy ")
            && said.contains("; best validation accuracy "),
        "{said}"
    );
    assert_eq!(words_of[1], json!("curve-summary"));
    click_summary(&c).await;
    // The table is built when the details open (the toggle event).
    wait_until(
        &c,
        "return [...document.querySelectorAll('#curve-table tr')].map((r) => r.children.length)",
        30,
        "the curve's table: a header and two epochs",
        |v| *v == json!([6, 6, 6]),
    )
    .await;

    draw(&c, "pen", &one_stroke()).await;
    assert_eq!(shown_digit(&c, "1").await, "1");
    let confidence = c
        .find(Locator::Id("confidence"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        plain(&confidence).starts_with(&format!("{} · ", words[1])),
        "{confidence}"
    );

    ten_by_ten_matrix(&c).await;
    let cell = c
        .find(Locator::Css(
            "#confusion td[data-label='4'][data-predicted='4']",
        ))
        .await
        .unwrap();
    let title = cell.attr("title").await.unwrap().unwrap_or_default();
    assert!(
        title.starts_with(&format!(
            "true 4 {}, predicted 4 {}: ",
            isolated("four"),
            isolated("four")
        )),
        "{title}"
    );
    cell.click().await.unwrap();
    wait_until(
        &c,
        "return document.getElementById('digits-title').textContent",
        30,
        "the cell's images, titled with the class's name",
        |v| {
            v.as_str().is_some_and(|s| {
                plain(s).starts_with("Test images of class 4 four read as 4 four (")
            })
        },
    )
    .await;

    // The long name is cut on its bar (its text overflows its box), whole in the title.
    let cut = c
        .execute(
            "const l = document.querySelectorAll('#bars .label')[9]; return [l.scrollWidth > l.clientWidth, l.title];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(cut, json!([true, format!("9 {}", isolated(words[9]))]));

    // At a phone's width (WCAG 1.4.10's 320 CSS pixels) the 40-character
    // names do not widen the page, on the bars nor in the answer; and the
    // shorter names are not cut (the bars' column gives up its width to
    // theirs).
    c.set_window_size(320, 640).await.unwrap();
    c.refresh().await.unwrap();
    ten_by_ten_matrix(&c).await;
    draw(&c, "pen", &one_stroke()).await;
    assert_eq!(shown_digit(&c, "1").await, "1");
    no_wider_than_the_window(&c).await;
    let cut = c
        .execute(
            "return [...document.querySelectorAll('#bars .label')].filter((l) => l.scrollWidth > l.clientWidth).map((l) => l.textContent[0])",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(cut, json!(["1", "9"]), "only the two long names are cut");
    c.close().await.unwrap();
}

#[tokio::test]
async fn live_page_curve_gains_points_while_training() {
    let Some((_driver, c)) = open_browser().await else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let shots = std::env::var("SIMPLENN_SCREENSHOT_DATA").ok();
    let data = common::small_mnist(&t.path().join("data"), 2_000, 200);
    let data = data.to_str().unwrap();
    // Long enough to watch (it is killed once the curve has grown): an
    // epoch here takes milliseconds in a release build, where 300 epochs
    // ended before the page was read.
    let small = [
        "--data",
        data,
        "--epochs",
        "30000",
        "--val",
        "200",
        "--batch-size",
        "32",
        "--hidden",
        "64",
        "--threads",
        "1",
    ];
    let run = Child::spawn(
        &match &shots {
            Some(d) => vec!["--data", d.as_str(), "--threads", "2"],
            None => small.to_vec(),
        }
        .into_iter()
        .chain(["--no-progress", "--no-save", "--serve", "0"])
        .collect::<Vec<_>>(),
    );
    let a = run.address();
    c.goto(&format!("http://{a}/")).await.expect("page loads");
    let points = "return +document.getElementById('curve').dataset.points";
    let first = wait_until(&c, points, 60, "a first curve point", |v| {
        v.as_u64().is_some_and(|n| n > 0)
    })
    .await
    .as_u64()
    .unwrap();
    let more = if shots.is_some() { 60 } else { 5 };
    let later = wait_until(&c, points, 120, "more curve points", |v| {
        v.as_u64().is_some_and(|n| n >= first + more)
    })
    .await;
    assert!(later.as_u64().unwrap() >= first + 5);
    let status = c
        .execute(
            "return document.getElementById('status').textContent",
            vec![],
        )
        .await
        .unwrap();
    assert!(status.as_str().unwrap().contains("epoch"), "{status}");
    // The pad answers from the live weights.
    draw(&c, "mouse", &one_stroke()).await;
    wait_until(
        &c,
        "return document.getElementById('digit').textContent",
        30,
        "a prediction",
        |v| v.as_str().is_some_and(|s| s != "–"),
    )
    .await;
    screenshot(&c, "serve-live.png").await;
    // The run killed mid-training: the page says its server is gone where
    // it is being read (the status line fixed at the window's foot, with
    // room left below the page's end so that it covers nothing), and drops
    // the bar of a run that will not go on.
    drop(run);
    let gone = "const s = document.getElementById('status'); \
                return s.classList.contains('gone') && getComputedStyle(s).position === 'fixed' \
                && document.getElementById('progress').hidden \
                && getComputedStyle(document.body).paddingBottom !== '0px' && s.textContent";
    let said = wait_until(&c, gone, 30, "the page to say its server is gone", |v| {
        v.as_str()
            .is_some_and(|s| s.contains("the server has stopped"))
    })
    .await;
    assert!(said.as_str().unwrap().contains("interrupted"), "{said}");
    // Nothing is left to score the test set with: the note no longer
    // offers the button.
    let note = c
        .execute(
            "return document.getElementById('confusion-note').textContent",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        note.as_str()
            .unwrap()
            .starts_with("the run ended before the test set was scored"),
        "{note}"
    );
    c.close().await.unwrap();
}

/// The page fits a phone's width, its confusion cells open from the
/// keyboard, and an open page whose server is replaced on the same port
/// (another model) reloads at its next request instead of mixing the two.
#[tokio::test]
async fn page_fits_narrow_windows_opens_cells_by_keyboard_and_follows_a_restart() {
    let Some((_driver, c)) = open_browser().await else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let (model, data) = common::small_model(t.path());
    let port = free_port().to_string();
    let serve = |model: &Path| Child::spawn(&serve_args(model, &data, &port));
    let server = serve(&model);
    let a: SocketAddr = server.address();
    c.set_window_size(360, 640).await.unwrap();
    c.goto(&format!("http://{a}/")).await.expect("page loads");
    ten_by_ten_matrix(&c).await;
    no_wider_than_the_window(&c).await;

    // Enter on a focused cell lists its digits.
    let cell = c
        .find(Locator::Css(
            "#confusion td[data-label='7'][data-predicted='7']",
        ))
        .await
        .unwrap();
    c.execute(
        "arguments[0].focus()",
        vec![serde_json::to_value(&cell).unwrap()],
    )
    .await
    .unwrap();
    cell.send_keys(&fantoccini::key::Key::Enter.to_string())
        .await
        .unwrap();
    cell_listed(&c, 7).await;
    // A grid to a screen reader (WCAG 4.1.2): its cells can be acted on,
    // the picked one is said to be selected (and only it), and the list
    // that opened away from the keyboard's focus is read out (4.1.3).
    let told = c
        .execute(
            "const td = document.activeElement; return [td.closest('table').getAttribute('role'), td.getAttribute('role'), td.getAttribute('aria-selected'), document.querySelectorAll('#confusion td[aria-selected]').length, document.getElementById('digits-announce').textContent, document.getElementById('digits-title').textContent, document.getElementById('page').textContent]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        told.as_array().unwrap()[..4],
        [json!("grid"), json!("gridcell"), json!("true"), json!(1)],
        "{told}"
    );
    assert_eq!(
        told[4].as_str().unwrap(),
        format!(
            "{}, {}",
            told[5].as_str().unwrap(),
            told[6].as_str().unwrap()
        ),
        "{told}"
    );
    // Picked and focused: the focus ring shows inside the picked outline.
    let ring = c
        .execute(
            "const td = document.activeElement; return [td.classList.contains('picked'), getComputedStyle(td).boxShadow]",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        ring[0] == json!(true) && ring[1].as_str().is_some_and(|s| s.contains("inset")),
        "{ring}"
    );
    // The arrow keys move between cells: one tab stop for the matrix.
    cell.send_keys(&fantoccini::key::Key::Right.to_string())
        .await
        .unwrap();
    let focused = c
        .execute(
            "const d = document.activeElement.dataset; return [d.label, d.predicted, document.querySelectorAll('#confusion td[tabindex=\"0\"]').length]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(focused, json!(["7", "8", 1]));

    // Another model on the same port: the page's next request reloads it.
    drop(server);
    // Meanwhile a request that gets no answer says the server has stopped
    // at once, not at the page's next check, 30 s on.
    click(&c, "clear").await;
    draw(&c, "mouse", &one_stroke()).await;
    wait_until(
        &c,
        "const s = document.getElementById('status'); return s.classList.contains('gone') && s.textContent",
        5,
        "the status line to say the server has stopped",
        |v| v.as_str() == Some("the server has stopped: start it again to use this page"),
    )
    .await;
    let report = common::train(
        &data,
        &[
            "--hidden",
            "32",
            "--epochs",
            "1",
            "--val",
            "500",
            "--no-save",
        ],
        simplenn::train::RunOptions::default(),
    );
    let other = t.path().join("other.safetensors");
    simplenn::modelfile::save_model(&other, &report.params, (28, 28), None).unwrap();
    let _server = serve(&other);
    c.set_window_size(1280, 1700).await.unwrap();
    click(&c, "clear").await;
    draw(&c, "mouse", &one_stroke()).await;
    wait_until(
        &c,
        "return document.getElementById('model').textContent",
        60,
        "the new model's name",
        |v| v.as_str().is_some_and(|s| s.starts_with("784-32-10")),
    )
    .await;
    c.close().await.unwrap();
}

/// A metrics log of 100,000 epochs (a run of tiny epochs: the README's
/// trains 96,085 in 20 s): the page draws it without an exception (the
/// page used to spread every point into `Math.max`, which overflowed the
/// stack), as a bounded number of SVG elements and points per line, with
/// a one-epoch spike still visible, and axis labels on their gridlines.
#[tokio::test]
async fn a_log_of_100000_epochs_draws_a_thinned_curve() {
    let Some((driver, c)) = open_browser().await else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let (model, data) = common::small_model(t.path());
    let log = t.path().join("long.jsonl");
    let epochs = 100_000;
    std::fs::write(&log, metrics_lines(1, epochs, epochs, 50_000)).unwrap();
    let mut args = serve_args(&model, &data, "0");
    args.extend(["--metrics", log.to_str().unwrap()]);
    let server = Child::spawn(&args);
    let a: SocketAddr = server.address();
    c.goto(&format!("http://{a}/")).await.expect("page loads");
    // Training and validation loss: every epoch's, counted.
    wait_until(
        &c,
        "return +document.getElementById('curve').dataset.points",
        60,
        "the curve's 200,000 points",
        |v| v.as_u64() == Some(2 * epochs as u64),
    )
    .await;
    let drawn = wait_until(
        &c,
        "const s = document.getElementById('curve'); return [s.querySelectorAll('*').length, [...s.querySelectorAll('polyline')].map((l) => l.getAttribute('points').split(' ').map((p) => +p.split(',')[1]))]",
        30,
        "the curve's lines",
        |v| v[1].as_array().is_some_and(|l| l.len() == 3),
    )
    .await;
    assert!(
        drawn[0].as_u64().unwrap() < 200,
        "{} SVG elements: lines of 100,000 points need no dots",
        drawn[0]
    );
    let lines = drawn[1].as_array().unwrap();
    for l in lines {
        let n = l.as_array().unwrap().len();
        assert!((100..=2_000).contains(&n), "a line of {n} points");
    }
    // The spike (loss 3 where the rest is at most 1.1) is the train line's
    // highest point, well above the others: in the top third of the plot.
    let top = lines[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|y| y.as_f64().unwrap())
        .fold(f64::INFINITY, f64::min);
    assert!(
        top < 90.0,
        "the spike is not drawn: the line's top is at y {top}"
    );
    axis_labels_match_their_heights(&c).await;
    let severe = severe_console_messages(&c, &driver).await;
    assert!(severe.is_empty(), "console errors: {severe:?}");
    c.close().await.unwrap();
}

/// `serve --metrics LOG` while a run may still be writing LOG: an epoch
/// appended to the log shows up on the open page within its refresh
/// period (5 s); and at a phone's width a long model file name without a
/// break point wraps rather than widen the page.
#[tokio::test]
async fn an_open_page_follows_a_growing_log_and_a_long_name_fits_a_phone() {
    let Some((driver, c)) = open_browser().await else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let (model, data) = common::small_model(t.path());
    let long = t
        .path()
        .join("mnist_hidden_1024_1024_dropout_0.2_lr_0.001_batch_128_epochs_40_final.safetensors");
    std::fs::copy(&model, &long).unwrap();
    let log = t.path().join("growing.jsonl");
    std::fs::write(&log, metrics_lines(1, 3, 10, 0)).unwrap();
    let mut args = serve_args(&long, &data, "0");
    args.extend(["--metrics", log.to_str().unwrap()]);
    let server = Child::spawn(&args);
    let a: SocketAddr = server.address();
    c.set_window_size(360, 640).await.unwrap();
    c.goto(&format!("http://{a}/")).await.expect("page loads");
    ten_by_ten_matrix(&c).await;
    let points = "return +document.getElementById('curve').dataset.points";
    wait_until(&c, points, 30, "the log's 3 epochs", |v| {
        v.as_u64() == Some(6)
    })
    .await;
    no_wider_than_the_window(&c).await;
    axis_labels_match_their_heights(&c).await;
    // A fourth epoch, written as a run writes its log (a new file renamed
    // over the old one).
    let next = t.path().join("growing.jsonl.new");
    std::fs::write(&next, metrics_lines(1, 4, 10, 0)).unwrap();
    std::fs::rename(&next, &log).unwrap();
    let start = Instant::now();
    wait_until(
        &c,
        points,
        120,
        "the appended epoch on the open page",
        |v| v.as_u64() == Some(8),
    )
    .await;
    let took = start.elapsed();
    // The page waits 5 s between reads, or 20 times its slowest read where
    // that is longer (a busy machine): the epoch shows within the longest
    // wait, plus a read in flight and the read that finds it.
    let ms = |key: &str| {
        let script = format!("return +document.getElementById('curve').dataset.{key}");
        let c = c.clone();
        async move { c.execute(&script, vec![]).await.unwrap().as_f64().unwrap() }
    };
    let (slowest, longest) = (ms("slowestMs").await, ms("longestWaitMs").await);
    assert_eq!(longest, f64::max(5000.0, 20.0 * slowest), "{slowest} ms");
    assert!(
        took < Duration::from_secs_f64(longest / 1000.0 * 1.1 + 5.0),
        "the page took {took:?} to show the new epoch; its longest wait {longest} ms"
    );
    // At a phone's larger text, the axis title "epoch" clears the epoch
    // label above it (4 epochs: "2" is in the middle), which it overlapped
    // by about 3 units.
    let overlap = c
        .execute(
            r#"const texts = [...document.querySelectorAll('#curve text')];
            const title = texts.find((t) => t.textContent === 'epoch').getBBox();
            return texts.filter((t) => /^[0-9.]+$/.test(t.textContent) && t.getAttribute('text-anchor') === 'middle')
                .map((t) => t.getBBox())
                .filter((b) => b.x < title.x + title.width && title.x < b.x + b.width)
                .map((b) => b.y + b.height - title.y);"#,
            vec![],
        )
        .await
        .unwrap();
    let overlap = overlap.as_array().unwrap();
    assert!(
        !overlap.is_empty() && overlap.iter().all(|v| v.as_f64().unwrap() <= 0.0),
        "epoch labels under the axis title reach into it by {overlap:?} units"
    );
    let severe = severe_console_messages(&c, &driver).await;
    assert!(severe.is_empty(), "console errors: {severe:?}");
    c.close().await.unwrap();
}

/// A model of images that are not square (4 × 9) has no pad, and the page
/// says why in its place; a right-to-left class name is set apart from the
/// numbers around it in the list's heading.
#[tokio::test]
async fn a_model_of_oblong_images_says_why_it_has_no_pad() {
    let Some((_driver, c)) = open_browser().await else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let data = common::synthetic_shaped(&t.path().join("data"), (4, 9), 2, 0, [300, 40]);
    let names = t.path().join("names.txt");
    std::fs::write(&names, "שמאל\nימין\n").unwrap();
    let model = t.path().join("m.safetensors");
    let o = common::simplenn(&[
        "--data",
        data.to_str().unwrap(),
        "--hidden",
        "8",
        "--epochs",
        "1",
        "--val",
        "30",
        "--batch-size",
        "30",
        "--threads",
        "1",
        "--no-progress",
        "--class-names",
        names.to_str().unwrap(),
        "--save",
        model.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let server = Child::spawn(&serve_args(&model, &data, "0"));
    let a: SocketAddr = server.address();
    c.goto(&format!("http://{a}/")).await.expect("page loads");
    let note = wait_until(
        &c,
        "const n = document.getElementById('draw-note'); return n.hidden ? '' : n.textContent",
        30,
        "the note in place of the pad",
        |v| v.as_str().is_some_and(|s| !s.is_empty()),
    )
    .await;
    assert!(
        note.as_str()
            .unwrap()
            .contains("this model reads images of 4 × 9")
            && note.as_str().unwrap().contains("predict --as-is"),
        "{note}"
    );
    let pad_hidden = c
        .execute("return document.getElementById('draw-row').hidden", vec![])
        .await
        .unwrap();
    assert_eq!(pad_hidden, json!(true));
    // The list of a cell: the name isolated, so "(N)" stays after it.
    let cell = "#confusion td[data-label='1'][data-predicted='1']";
    wait_until(
        &c,
        &format!("return !!document.querySelector(\"{cell}\")"),
        30,
        "the matrix",
        |v| v == &json!(true),
    )
    .await;
    c.execute(
        "document.querySelector(\"#confusion td[data-label='1'][data-predicted='1']\").click()",
        vec![],
    )
    .await
    .unwrap();
    wait_until(
        &c,
        "return document.getElementById('digits-title').textContent",
        30,
        "the cell's list",
        |v| {
            v.as_str().is_some_and(|s| {
                s.starts_with(
                    "Test images of class 1 \u{2068}ימין\u{2069} read as 1 \u{2068}ימין\u{2069} (",
                )
            })
        },
    )
    .await;
    c.close().await.unwrap();
}

/// A matrix of 30 classes (a box scrolled both ways, its class numbers
/// sticky): a cell the arrow keys move to is scrolled clear of the sticky
/// row and column of class numbers (WCAG 2.4.11), not left under them,
/// which the browser's own scroll of a focused element counts as in view.
#[tokio::test]
async fn a_cell_reached_by_keys_is_not_hidden_under_the_class_numbers() {
    let Some((_driver, c)) = open_browser().await else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let data = common::synthetic(&t.path().join("data"), 8, 30, 0, [300, 90]);
    let model = t.path().join("m.safetensors");
    let o = common::tiny_run(&data, &model);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let server = Child::spawn(&serve_args(&model, &data, "0"));
    let a: SocketAddr = server.address();
    c.set_window_size(640, 480).await.unwrap();
    c.goto(&format!("http://{a}/")).await.expect("page loads");
    wait_until(
        &c,
        "return document.querySelectorAll('#confusion.many td').length",
        30,
        "the 30-class matrix",
        |v| v.as_u64() == Some(900),
    )
    .await;
    c.execute(
        "document.querySelector(\"#confusion td[data-label='0'][data-predicted='0']\").focus()",
        vec![],
    )
    .await
    .unwrap();
    // The focused cell: whether the point at its middle is the cell itself
    // (not a sticky header over it), and its label and column.
    let seen = "const td = document.activeElement; const r = td.getBoundingClientRect(); return [td.dataset.label + ',' + td.dataset.predicted, document.elementFromPoint((r.left + r.right) / 2, (r.top + r.bottom) / 2) === td, document.elementFromPoint(r.left + 1, r.top + 1) === td]";
    use fantoccini::key::Key;
    let key = |k: Key, times: usize| k.to_string().repeat(times);
    let way = [
        (key(Key::Down, 29), "29,0"),
        (key(Key::Right, 29), "29,29"),
        (key(Key::Up, 6), "23,29"),
    ];
    for (keys, at) in way {
        c.active_element()
            .await
            .unwrap()
            .send_keys(&keys)
            .await
            .unwrap();
        let v = c.execute(seen, vec![]).await.unwrap();
        assert_eq!(v, json!([at, true, true]), "{at}");
    }
    // Back left and up, one cell at a time: each in view, clear of the
    // numbers.
    for (k, steps) in [(Key::Left, 29), (Key::Up, 23)] {
        for _ in 0..steps {
            c.active_element()
                .await
                .unwrap()
                .send_keys(&k.to_string())
                .await
                .unwrap();
            let v = c.execute(seen, vec![]).await.unwrap();
            assert!(v[1] == json!(true) && v[2] == json!(true), "{v}");
        }
    }
    let v = c.execute(seen, vec![]).await.unwrap();
    assert_eq!(v[0], json!("0,0"));
    c.close().await.unwrap();
}

/// The misread test images of a model of 1 × 300 images are drawn: each
/// tile's short side is at least 6 CSS pixels (it was rounded to 0).
#[tokio::test]
async fn tiles_of_very_oblong_images_are_drawn() {
    let Some((_driver, c)) = open_browser().await else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let data = common::synthetic_shaped(&t.path().join("data"), (1, 300), 4, 0, [200, 40]);
    let model = t.path().join("m.safetensors");
    let o = common::tiny_run(&data, &model);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let server = Child::spawn(&serve_args(&model, &data, "0"));
    let a: SocketAddr = server.address();
    c.goto(&format!("http://{a}/")).await.expect("page loads");
    let sizes = wait_until(
        &c,
        "return [...document.querySelectorAll('#digits canvas')].map((t) => { const r = t.getBoundingClientRect(); return [r.width, r.height]; })",
        30,
        "the list's tiles",
        |v| v.as_array().is_some_and(|l| !l.is_empty()),
    )
    .await;
    for size in sizes.as_array().unwrap() {
        assert_eq!(size, &json!([56, 6]), "{sizes}");
    }
    c.close().await.unwrap();
}

/// A model file and a data directory whose names hold a direction override
/// (`rlo` U+202E `gnp.exe` shows as "rloexe.png" where it acts): the page writes the
/// character out, `\u{202e}`, as the command line does, in its header and
/// in the matrix's note.
#[tokio::test]
async fn names_with_a_direction_override_are_written_out_on_the_page() {
    let Some((_driver, c)) = open_browser().await else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let (model, data) = common::small_model(t.path());
    let odd_model = t.path().join("mod\u{202e}el.safetensors");
    std::fs::copy(&model, &odd_model).unwrap();
    let odd_data = t.path().join("rlo\u{202e}gnp.exe");
    std::fs::rename(&data, &odd_data).unwrap();
    let server = Child::spawn(&serve_args(&odd_model, &odd_data, "0"));
    let a: SocketAddr = server.address();
    c.goto(&format!("http://{a}/")).await.expect("page loads");
    let note = wait_until(
        &c,
        "return document.getElementById('confusion-note').textContent",
        30,
        "the matrix's note",
        |v| v.as_str().is_some_and(|s| s.contains("of the test set in")),
    )
    .await;
    let header = c
        .execute(
            "return document.getElementById('model').textContent",
            vec![],
        )
        .await
        .unwrap();
    for (what, text) in [("header", &header), ("note", &note)] {
        let text = text.as_str().unwrap();
        assert!(!text.contains('\u{202e}'), "{what}: {text:?}");
        assert!(text.contains("\\u{202e}"), "{what}: {text:?}");
    }
    c.close().await.unwrap();
}
