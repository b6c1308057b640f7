//! Helpers shared by the integration tests: small MNIST-format data sets cut
//! from the real one, and small models trained on them in a second or two.
#![allow(dead_code)] // each test file uses its own part

pub mod http;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use simplenn::cli::Cli;
use simplenn::config::TrainConfig;
use simplenn::data::{Mnist, MNIST_PIXELS, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use simplenn::idx::write_idx;
use simplenn::train::{train_with, RunOptions, TrainReport};

/// The real MNIST shipped in `data/mnist`.
pub fn mnist() -> Mnist {
    Mnist::open(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist"))
        .expect("data/mnist opens")
}

/// Flags of the small runs on [`small_mnist`]`(…, 1200, 300)`: three epochs
/// of 784-16-10 with momentum, dropout and the cosine schedule all on.
pub const SMALL_RUN: &[&str] = &[
    "--hidden",
    "16",
    "--epochs",
    "3",
    "--batch-size",
    "50",
    "--val",
    "200",
    "--seed",
    "7",
];

/// Write the first `n_train` training and `n_test` test images of the real
/// MNIST into `dir` (created if needed) as the four standard IDX files.
pub fn small_mnist(dir: &Path, n_train: usize, n_test: usize) -> PathBuf {
    let m = mnist();
    std::fs::create_dir_all(dir).expect("mkdir");
    for (set, n, images, labels) in [
        (&m.train, n_train, TRAIN_IMAGES, TRAIN_LABELS),
        (&m.test, n_test, TEST_IMAGES, TEST_LABELS),
    ] {
        let img: Vec<u8> = (0..n).flat_map(|i| set.image(i).to_vec()).collect();
        let lab: Vec<u8> = (0..n).map(|i| set.label(i)).collect();
        assert_eq!(img.len(), n * MNIST_PIXELS);
        write_idx(&dir.join(images), &[n as u32, 28, 28], &img).expect("write idx");
        write_idx(&dir.join(labels), &[n as u32], &lab).expect("write idx");
    }
    dir.to_owned()
}

/// A config parsed from train flags, as the binary would.
pub fn config(flags: &[&str]) -> TrainConfig {
    use clap::Parser;
    let cli = Cli::try_parse_from(std::iter::once("simplenn").chain(flags.iter().copied()))
        .expect("flags parse");
    match cli.into_command() {
        simplenn::cli::Command::Train(a) => a.into_config().expect("flags valid"),
        c => panic!("not train: {c:?}"),
    }
}

/// Train on `data` with `flags` and `opts`, quietly.
pub fn train(data: &Path, flags: &[&str], opts: RunOptions) -> TrainReport {
    try_train(data, flags, opts).expect("trains")
}

/// [`train`], for a run that may fail (flags and data must be good).
pub fn try_train(data: &Path, flags: &[&str], opts: RunOptions) -> anyhow::Result<TrainReport> {
    let (cfg, mnist) = fitted_config(data, flags, opts.resume.is_some());
    train_with(&cfg, &mnist, opts, &mut Vec::new())
}

/// The config of a quiet run on `data` with `flags`, fitted to the data as
/// the binary fits it (`resumed`: for a run resuming a checkpoint), and
/// the data opened.
pub fn fitted_config(data: &Path, flags: &[&str], resumed: bool) -> (TrainConfig, Mnist) {
    let mut all = vec![
        "--data",
        data.to_str().expect("utf-8 path"),
        "--no-progress",
    ];
    all.extend_from_slice(flags);
    let cfg = config(&all);
    let mnist = Mnist::open(data).expect("small data opens");
    let cfg = simplenn::cli::fit_to_data(&cfg, mnist.train.len(), mnist.train.side(), resumed)
        .expect("fits");
    (cfg, mnist)
}

/// Run the real binary.
pub fn simplenn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simplenn"))
        .args(args)
        .output()
        .expect("binary runs")
}

/// Run the real binary with its standard error sent where it cannot be
/// written: `/dev/full` (`"full"`) or a pipe whose reader is gone
/// (`"gone"`); standard output is captured.
#[cfg(target_os = "linux")]
pub fn simplenn_stderr_unwritable(args: &[&str], how: &str) -> Output {
    use std::os::fd::{FromRawFd, OwnedFd};
    let stderr: std::process::Stdio = match how {
        "full" => std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
            .into(),
        "gone" => {
            let mut fds = [0; 2];
            // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
            assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
            // SAFETY: pipe(2) has just opened both; each is owned once, here.
            let (read, write) =
                unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
            drop(read);
            write.into()
        }
        _ => panic!("{how}: full or gone"),
    };
    Command::new(env!("CARGO_BIN_EXE_simplenn"))
        .args(args)
        .stderr(stderr)
        .output()
        .expect("binary runs")
}

/// One epoch of a 4-unit network on `data` (a [`synthetic`] set of at
/// least 40 training images) by the binary, saving to `save`.
pub fn tiny_run(data: &Path, save: &Path) -> Output {
    let args = tiny_args(data, save);
    simplenn(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The flags of [`tiny_run`].
pub fn tiny_args(data: &Path, save: &Path) -> Vec<String> {
    let (data, save) = (data.to_str().unwrap(), save.to_str().unwrap());
    [
        "--data",
        data,
        "--hidden",
        "4",
        "--epochs",
        "1",
        "--val",
        "20",
        "--batch-size",
        "20",
        "--no-progress",
        "--save",
        save,
    ]
    .map(String::from)
    .to_vec()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The stderr lines that are not the debug-build warning.
pub fn error_lines(o: &Output) -> Vec<String> {
    stderr(o)
        .lines()
        .filter(|l| !l.contains("debug build"))
        .map(str::to_owned)
        .collect()
}

/// A small model (784-64-10, two epochs on 3,000 images) saved in `dir`,
/// and its data directory (500 test images).
pub fn small_model(dir: &Path) -> (PathBuf, PathBuf) {
    let data = small_mnist(&dir.join("data"), 3_000, 500);
    let report = train(
        &data,
        &[
            "--hidden",
            "64",
            "--epochs",
            "2",
            "--val",
            "500",
            "--no-save",
        ],
        RunOptions::default(),
    );
    let path = dir.join("m.safetensors");
    simplenn::modelfile::save_model(&path, &report.params, (28, 28), None).unwrap();
    (path, data)
}

/// SHA-256 of a file, hex.
pub fn sha256(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `len` pseudo-random bytes, the same each time (xorshift32).
pub fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x2545_f491u32;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// A small MNIST-shaped data set of `n` pseudo-random images in `dir`
/// (labels `i·7 mod 10`), opened as one `Dataset`.
pub fn random_dataset(dir: &Path, n: usize) -> simplenn::data::Dataset {
    let pixels = noise(n * MNIST_PIXELS);
    let labels: Vec<u8> = (0..n).map(|i| (i * 7 % 10) as u8).collect();
    let (img, lab) = (dir.join("images"), dir.join("labels"));
    write_idx(&img, &[n as u32, 28, 28], &pixels).unwrap();
    write_idx(&lab, &[n as u32], &labels).unwrap();
    simplenn::data::Dataset::open(&img, &lab).unwrap()
}

/// The binary with `args`, a fresh pseudo-terminal as its standard input
/// (`stdin`) or output (else): what `simplenn predict -` or `plot -o -`
/// typed at a prompt gets. It must end within a minute (a program that
/// waits for a terminal to type a file fails the test, not hangs it).
#[cfg(unix)]
pub fn on_terminal(args: &[&str], stdin: bool) -> Output {
    use std::process::Stdio;
    let (_master, tty) = pty();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_simplenn"));
    cmd.args(args).stderr(Stdio::piped());
    match stdin {
        true => cmd.stdin(tty).stdout(Stdio::piped()),
        false => cmd.stdout(tty).stdin(Stdio::null()),
    };
    let child = cmd.spawn().unwrap();
    exited_within(child, 60, &format!("{args:?} waited on a terminal"))
}

/// `child`'s output once it exits, which it must within `secs` seconds:
/// past them it is killed and the test fails with `what`, not hangs.
pub fn exited_within(mut child: std::process::Child, secs: u64, what: &str) -> Output {
    let t0 = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed().as_secs() >= secs {
            let _ = child.kill();
            panic!("{what}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Directories a test made read-only, made writable again when it ends,
/// pass or fail, so that its temporary directory can still be removed.
#[cfg(unix)]
#[derive(Default)]
pub struct ReadOnlyDirs(Vec<PathBuf>);

#[cfg(unix)]
impl ReadOnlyDirs {
    /// Make `dir` read-only (which binds even root here: see `locate`)
    /// until `self` is dropped.
    pub fn add(&mut self, dir: &Path) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        self.0.push(dir.to_owned());
    }
}

#[cfg(unix)]
impl Drop for ReadOnlyDirs {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        for dir in &self.0 {
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
        }
    }
}

/// `path`'s modification time.
pub fn mtime(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

/// Set `path`'s modification time to `at` (the file is not changed).
pub fn set_mtime(path: &Path, at: std::time::SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(at)
        .unwrap();
}

/// A new pseudo-terminal: its controlling end (the window's side) and the
/// terminal a child is given, opened for reading and writing. The first is
/// opened close-on-exec, so a child holds the terminal's end only: dropping
/// the first is the window closing.
#[cfg(unix)]
pub fn pty() -> (std::fs::File, std::fs::File) {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let tty = std::fs::File::options()
        .read(true)
        .write(true)
        .open(name.to_str().unwrap())
        .unwrap();
    (std::fs::File::from(master), tty)
}

/// A [`pty`] whose window says it is `rows` × `cols` (0 × 0: one nobody
/// sized).
#[cfg(unix)]
pub fn sized_pty(rows: u16, cols: u16) -> (std::fs::File, std::fs::File) {
    let (window, tty) = pty();
    let size = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(&tty, size).unwrap();
    (window, tty)
}

/// A data set of `side × side` images whose class `c` is drawn as stripes
/// (pixel `p` bright where `p % classes == c`, plus noise), labels from
/// `first`.
pub fn synthetic(dir: &Path, side: usize, classes: usize, first: u8, n: [usize; 2]) -> PathBuf {
    synthetic_shaped(dir, (side, side), classes, first, n)
}

/// [`synthetic`], of `rows × cols` images.
pub fn synthetic_shaped(
    dir: &Path,
    (rows, cols): (usize, usize),
    classes: usize,
    first: u8,
    n: [usize; 2],
) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut x = 0x9e37_79b9u32;
    let mut rand = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    for (count, images, labels) in [
        (n[0], TRAIN_IMAGES, TRAIN_LABELS),
        (n[1], TEST_IMAGES, TEST_LABELS),
    ] {
        let mut pix = Vec::with_capacity(count * rows * cols);
        let mut lab = Vec::with_capacity(count);
        for i in 0..count {
            let c = i % classes;
            for p in 0..rows * cols {
                let on = p % classes == c;
                let noise = (rand() >> 26) as u8; // 0..63
                pix.push(if on { 180 + noise } else { noise });
            }
            lab.push(first + c as u8);
        }
        let shape = [count as u32, rows as u32, cols as u32];
        write_idx(&dir.join(images), &shape, &pix).unwrap();
        write_idx(&dir.join(labels), &[count as u32], &lab).unwrap();
    }
    dir.to_owned()
}

/// Say on standard error that `test` checked nothing here, and why:
/// straight to the stream, past the test harness's capture (which shows
/// `eprintln!` only for a test that fails), so a skip is never a quiet "ok".
#[allow(dead_code)]
pub fn skipped(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "*** SKIPPED: {test}: {why} ***");
}

/// `line` without its terminal control sequences (`ESC [ … letter`).
pub fn without_escapes(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
