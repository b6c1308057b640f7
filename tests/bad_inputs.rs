//! Every bad input to the real binary: a non-zero exit, one clear line on
//! stderr naming the thing and the fix, never a panic, never a file left
//! half-written.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use simplenn::data::{TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use simplenn::idx::write_idx;

const BIN: &str = env!("CARGO_BIN_EXE_simplenn");

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run_in(cwd: &Path, args: &[&str]) -> Outcome {
    outcome(&command(cwd, args).output().expect("the binary runs"))
}

/// The binary with `args`, run in `cwd`, its decompression cache under it.
fn command(cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(cwd)
        .env("XDG_CACHE_HOME", cwd.join("cache"));
    cmd
}

fn outcome(out: &std::process::Output) -> Outcome {
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The checks every bad input must pass; `needles` must all appear in the error line.
fn assert_refused(o: &Outcome, want_code: i32, needles: &[&str], what: &str) {
    assert_eq!(
        o.code,
        Some(want_code),
        "{what}: exit code; stderr:\n{}",
        o.stderr
    );
    assert!(
        !o.stderr.contains("panicked"),
        "{what}: panicked:\n{}",
        o.stderr
    );
    let lines: Vec<&str> = o
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("warning: this is a debug build"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: want one error line, got:\n{}",
        o.stderr
    );
    assert!(
        lines[0].starts_with("simplenn: error: "),
        "{what}: {}",
        lines[0]
    );
    for n in needles {
        assert!(
            lines[0].contains(n),
            "{what}: {:?} not in {:?}",
            n,
            lines[0]
        );
    }
}

/// No temporary or partial files anywhere under `dir`.
fn assert_no_leftovers(dir: &Path, what: &str) {
    for e in walk(dir) {
        let name = e.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp"), "{what}: left {}", e.display());
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A small but real data set in `root/data`: 1,200 training, 200 test images.
fn data_dir(root: &Path) -> PathBuf {
    let d = root.join("data");
    fs::create_dir_all(&d).unwrap();
    common::small_mnist(&d, 1_200, 200)
}

const FAST: &[&str] = &[
    "--epochs",
    "1",
    "--val",
    "200",
    "--hidden",
    "16",
    "--no-progress",
];

/// `--data data`, the fast settings, then `extra` (whose flags replace the fast ones).
fn train_args<'a>(data: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--data", data];
    let mut fast = FAST.iter();
    while let Some(&flag) = fast.next() {
        let takes_value = flag != "--no-progress";
        let value = if takes_value {
            fast.next().copied()
        } else {
            None
        };
        if !extra.contains(&flag) {
            v.push(flag);
            v.extend(value);
        }
    }
    v.extend_from_slice(extra);
    v
}

/// Damage one data file in a fresh copy and check the refusal.
fn damaged(file: &str, bytes: Vec<u8>, needles: &[&str], what: &str) {
    let t = tempfile::tempdir().unwrap();
    let d = data_dir(t.path());
    fs::write(d.join(file), bytes).unwrap();
    let ds = d.to_str().unwrap();
    let o = run_in(t.path(), &train_args(ds, &["--no-save"]));
    let mut all = vec![file];
    all.extend_from_slice(needles);
    assert_refused(&o, 1, &all, what);
    assert_no_leftovers(t.path(), what);
}

fn header(dims: &[u32]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v
}

#[test]
fn a_good_run_succeeds() {
    // The baseline the failures are measured against.
    let t = tempfile::tempdir().unwrap();
    let d = data_dir(t.path());
    let o = run_in(
        t.path(),
        &train_args(d.to_str().unwrap(), &["--save", "m.safetensors"]),
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(t.path().join("m.safetensors").is_file());
}

#[test]
fn missing_data() {
    let t = tempfile::tempdir().unwrap();
    let o = run_in(t.path(), &train_args("no/such/dir", &["--no-save"]));
    assert_refused(&o, 1, &["no/such/dir", "--data"], "missing data directory");
    let f = t.path().join("afile");
    fs::write(&f, b"x").unwrap();
    let o = run_in(t.path(), &train_args(f.to_str().unwrap(), &["--no-save"]));
    assert_refused(
        &o,
        1,
        &[
            "afile is a file",
            "--data DIR naming a directory with train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte",
        ],
        "data directory is a file",
    );
    // A path through a file: the OS's "Not a directory" explained, for the
    // data directory and for files read by name, with no advice about
    // permissions.
    let through = f.join("x");
    let through = through.to_str().unwrap();
    let o = run_in(t.path(), &train_args(through, &["--no-save"]));
    assert_refused(
        &o,
        1,
        &[&format!("the data directory {through}: its path goes through a file as if it were a directory; check the path")],
        "data directory through a file",
    );
    assert!(!o.stderr.contains("permission"), "{}", o.stderr);
    for args in [
        &["eval", "--model", through][..],
        &["--class-names", through],
        &["--resume", through],
        &["predict", "--model", through, "digit.png"],
    ] {
        let o = run_in(t.path(), args);
        assert_refused(
            &o,
            1,
            &[
                through,
                "its path goes through a file as if it were a directory; check the path",
            ],
            &format!("{args:?}"),
        );
        assert!(!o.stderr.contains("os error"), "{}", o.stderr);
    }
    // An output's directory through a file.
    let d = data_dir(&t.path().join("save-through"));
    let o = run_in(
        t.path(),
        &train_args(d.to_str().unwrap(), &["--save", "afile/sub/m.safetensors"]),
    );
    assert_refused(
        &o,
        1,
        &[
            "cannot save to afile/sub/m.safetensors",
            "its path goes through a file as if it were a directory",
        ],
        "--save through a file",
    );
    // Evaluation reads the test pair alone, and names only it.
    let d = data_dir(t.path());
    let o = run_in(
        t.path(),
        &train_args(d.to_str().unwrap(), &["--save", "m.safetensors"]),
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let o = run_in(t.path(), &["predict", "--model", "m.safetensors", through]);
    assert_refused(
        &o,
        1,
        &[&format!("{through}: cannot read the image: its path goes through a file as if it were a directory; check the path")],
        "predict's image through a file",
    );
    let o = run_in(
        t.path(),
        &["eval", "--model", "m.safetensors", "--data", "no/such/dir"],
    );
    assert_refused(
        &o,
        1,
        &[
            "no/such/dir not found",
            "with t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (or their .gz)",
        ],
        "eval's missing data directory",
    );
    assert!(!o.stderr.contains("train-images"), "{}", o.stderr);
    // One of the data files given as the directory; the directory above
    // the data set's.
    let d = data_dir(t.path());
    let file = d.join(TRAIN_LABELS);
    let o = run_in(
        t.path(),
        &train_args(file.to_str().unwrap(), &["--no-save"]),
    );
    assert_refused(
        &o,
        1,
        &[
            "is a file",
            &format!("the directory that holds it ({})", d.display()),
        ],
        "a data file as the directory",
    );
    let nested = t.path().join("above");
    fs::create_dir(&nested).unwrap();
    fs::rename(&d, nested.join("mnist")).unwrap();
    let o = run_in(
        t.path(),
        &train_args(nested.to_str().unwrap(), &["--no-save"]),
    );
    assert_refused(
        &o,
        1,
        &[&format!("pass --data {}", nested.join("mnist").display())],
        "the directory above the data",
    );
    for name in [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS] {
        let t = tempfile::tempdir().unwrap();
        let d = data_dir(t.path());
        fs::remove_file(d.join(name)).unwrap();
        let o = run_in(t.path(), &train_args(d.to_str().unwrap(), &["--no-save"]));
        assert_refused(&o, 1, &[name, "not found", "--data"], name);
    }
}

#[test]
fn damaged_files() {
    let t = tempfile::tempdir().unwrap();
    let good = fs::read(data_dir(t.path()).join(TRAIN_IMAGES)).unwrap();
    let labels = fs::read(t.path().join("data").join(TRAIN_LABELS)).unwrap();
    damaged(TRAIN_IMAGES, vec![], &["0 bytes"], "empty images");
    damaged(TEST_LABELS, vec![], &["0 bytes"], "empty labels");
    damaged(
        TRAIN_IMAGES,
        good[..10].to_vec(),
        &["header"],
        "truncated in the header",
    );
    damaged(
        TRAIN_IMAGES,
        good[..good.len() - 100].to_vec(),
        &["header promises"],
        "truncated in the body",
    );
    damaged(
        TRAIN_LABELS,
        labels[..labels.len() - 1].to_vec(),
        &["header promises"],
        "truncated labels",
    );
    let mut magic = good.clone();
    magic[2] = 7;
    damaged(TRAIN_IMAGES, magic, &["magic"], "wrong magic");
    let mut signed = good.clone();
    signed[2] = 9;
    damaged(
        TRAIN_IMAGES,
        signed,
        &[
            "an IDX file of signed bytes",
            "convert it to unsigned bytes",
        ],
        "IDX of another element type",
    );
    let mut two_d = header(&[1_200, 784]);
    two_d.extend_from_slice(&good[16..]);
    damaged(
        TRAIN_IMAGES,
        two_d,
        &["2 dimensions"],
        "wrong dimension count",
    );
    let mut huge = header(&[u32::MAX, 28, 28]);
    huge.extend_from_slice(&good[16..]);
    damaged(
        TRAIN_IMAGES,
        huge,
        &["header promises"],
        "header claims 2^32 images",
    );
    damaged(
        TRAIN_IMAGES,
        b"GIF89a not an IDX file, just garbage".to_vec(),
        &["magic"],
        "garbage",
    );
    let mut small = header(&[1_200, 20, 20]);
    small.extend(vec![0; 1_200 * 400]);
    damaged(
        TRAIN_IMAGES,
        small,
        &["20 × 20", "28 × 28", "same size"],
        "train and test images of different sizes",
    );
    // A cut-off copy beside its good .gz (a decompression by hand, stopped
    // half-way): deleting it is the fix, and then the .gz is used.
    let d = data_dir(&t.path().join("beside-gz"));
    let raw = d.join(TRAIN_IMAGES);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &good).unwrap();
    fs::write(d.join(format!("{TRAIN_IMAGES}.gz")), enc.finish().unwrap()).unwrap();
    fs::write(&raw, &good[..good.len() / 2]).unwrap();
    // Written after the archive, as a decompression is: not within the
    // same tick of the clock, which would give it the archive's very time
    // (a copy of another archive of that time, refused as such).
    let gz_time = common::mtime(&d.join(format!("{TRAIN_IMAGES}.gz")));
    common::set_mtime(&raw, gz_time + std::time::Duration::from_secs(1));
    let run = || run_in(t.path(), &train_args(d.to_str().unwrap(), &["--no-save"]));
    assert_refused(
        &run(),
        1,
        &[
            TRAIN_IMAGES,
            "header promises",
            "delete it, and the",
            ".gz beside it is decompressed in its place",
        ],
        "a cut-off copy beside its .gz",
    );
    fs::remove_file(&raw).unwrap();
    assert_eq!(run().code, Some(0));
}

#[test]
fn labels_that_do_not_match() {
    let t = tempfile::tempdir().unwrap();
    let d = data_dir(t.path());
    write_idx(&d.join(TRAIN_LABELS), &[1_100], &vec![1; 1_100]).unwrap();
    let o = run_in(t.path(), &train_args(d.to_str().unwrap(), &["--no-save"]));
    assert_refused(&o, 1, &["1200 images", "1100 labels"], "count mismatch");
    // Classes come from the training labels: a 12 among them makes 13
    // classes, but then `--classes 10` is too few (the flag is wrong: a
    // usage error, exit status 2)...
    let mut labs: Vec<u8> = (0..1_200).map(|i| (i % 10) as u8).collect();
    labs[77] = 12;
    write_idx(&d.join(TRAIN_LABELS), &[1_200], &labs).unwrap();
    let o = run_in(
        t.path(),
        &train_args(d.to_str().unwrap(), &["--no-save", "--classes", "10"]),
    );
    assert_refused(
        &o,
        2,
        &[TRAIN_LABELS, "label 12 at index 77", "--classes 13"],
        "--classes below a training label",
    );
    // ... and a test label above every training label has no class.
    labs[77] = 7;
    write_idx(&d.join(TRAIN_LABELS), &[1_200], &labs).unwrap();
    let mut test_labs: Vec<u8> = (0..200).map(|i| (i % 10) as u8).collect();
    test_labs[150] = 11;
    write_idx(&d.join(TEST_LABELS), &[200], &test_labs).unwrap();
    let o = run_in(t.path(), &train_args(d.to_str().unwrap(), &["--no-save"]));
    assert_refused(
        &o,
        1,
        &[
            TEST_LABELS,
            "label 11 at index 150",
            "go up to 9",
            "--classes 12",
        ],
        "test label above the training labels",
    );
}

/// A data set whose header counts no images: refused by file name, not
/// trained on (training) or scored as 0 of 0 (test).
#[test]
fn empty_files() {
    for (images, labels) in [(TRAIN_IMAGES, TRAIN_LABELS), (TEST_IMAGES, TEST_LABELS)] {
        let t = tempfile::tempdir().unwrap();
        let d = data_dir(t.path());
        write_idx(&d.join(images), &[0, 28, 28], &[]).unwrap();
        write_idx(&d.join(labels), &[0], &[]).unwrap();
        let o = run_in(
            t.path(),
            &train_args(d.to_str().unwrap(), &["--no-save", "--classes", "10"]),
        );
        assert_refused(&o, 1, &[images, "holds no images"], images);
    }
}

#[test]
fn bad_gzip_and_checksum() {
    let t = tempfile::tempdir().unwrap();
    let d = data_dir(t.path());
    fs::remove_file(d.join(TEST_LABELS)).unwrap();
    fs::write(
        d.join(format!("{TEST_LABELS}.gz")),
        b"\x1f\x8b\x08\x00 truncated",
    )
    .unwrap();
    let o = run_in(t.path(), &train_args(d.to_str().unwrap(), &["--no-save"]));
    assert_refused(&o, 1, &[TEST_LABELS, "gzip"], "corrupt .gz");
    assert_no_leftovers(t.path(), "corrupt .gz");
    assert!(!d.join(TEST_LABELS).exists(), "no half-decompressed file");

    let d = data_dir(&t.path().join("second"));
    fs::write(
        d.join("MD5SUMS"),
        format!("{}  {TRAIN_LABELS}\n", "ab".repeat(16)),
    )
    .unwrap();
    let o = run_in(t.path(), &train_args(d.to_str().unwrap(), &["--no-save"]));
    // No .gz beside it: the fix is not to delete the only copy.
    assert_refused(
        &o,
        1,
        &[
            TRAIN_LABELS,
            "MD5",
            "replace it with a good copy, or fix MD5SUMS",
        ],
        "checksum mismatch",
    );
    assert!(d.join(TRAIN_LABELS).is_file());

    // Sums of the archives, as mirrors publish them: a wrong one is
    // refused before decompressing, a right one passes.
    let d = data_dir(&t.path().join("gz-sums"));
    let raw = d.join(TRAIN_LABELS);
    let gz = d.join(format!("{TRAIN_LABELS}.gz"));
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &fs::read(&raw).unwrap()).unwrap();
    let archive = enc.finish().unwrap();
    fs::write(&gz, &archive).unwrap();
    fs::remove_file(&raw).unwrap();
    let sum =
        |hex: &str| fs::write(d.join("MD5SUMS"), format!("{hex}  {TRAIN_LABELS}.gz\n")).unwrap();
    sum(&"ab".repeat(16));
    let run = || run_in(t.path(), &train_args(d.to_str().unwrap(), &["--no-save"]));
    assert_refused(
        &run(),
        1,
        &[
            &format!("{TRAIN_LABELS}.gz"),
            "MD5",
            "the archive is damaged",
        ],
        "archive checksum mismatch",
    );
    assert!(!raw.exists(), "decompressed after all");
    use md5::Digest;
    let right: String = md5::Md5::digest(&archive)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    sum(&right);
    assert_eq!(run().code, Some(0));
    assert!(raw.is_file());

    // MD5SUMS that cannot be read: a directory, bytes that are not text,
    // a device that never ends (read whole, it filled the memory), a pipe
    // (whose open blocked), a file far larger than a list, a link to
    // nothing (it was taken for no list at all, and checked nothing).
    let d = data_dir(&t.path().join("third"));
    let sums = d.join("MD5SUMS");
    let clear = |p: &Path| {
        let _ = fs::remove_dir(p);
        let _ = fs::remove_file(p);
    };
    type Make<'a> = &'a dyn Fn(&Path);
    let cases: [(&str, &str, Make); 6] = [
        ("a directory", "a directory, not a checksum list", &|p| {
            fs::create_dir(p).unwrap()
        }),
        // Read as text with U+FFFD for its bytes: a line in no form.
        ("not text", "line 1 is neither", &|p| {
            fs::write(p, b"\xff\xfe\x00 not text").unwrap()
        }),
        (
            "/dev/zero",
            "not a regular file (a pipe or a device)",
            &|p| std::os::unix::fs::symlink("/dev/zero", p).unwrap(),
        ),
        ("a pipe", "not a regular file (a pipe or a device)", &|p| {
            let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: `c` is a NUL-terminated path that outlives the call.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        }),
        (
            "3 GB",
            "3000000000 bytes, more than a checksum list holds",
            &|p| fs::File::create(p).unwrap().set_len(3_000_000_000).unwrap(),
        ),
        (
            "a link to nothing",
            "a link to a file that does not exist",
            &|p| std::os::unix::fs::symlink("no-such-sums", p).unwrap(),
        ),
    ];
    for (what, why, make) in cases {
        clear(&sums);
        make(&sums);
        let o = run_in(t.path(), &train_args(d.to_str().unwrap(), &["--no-save"]));
        let needles = ["MD5SUMS", why, "fix MD5SUMS"];
        assert_refused(&o, 1, &needles, &format!("MD5SUMS {what}"));
    }
}

/// A run's buffers hold as many rows as its batches and the sets it
/// scores need, not 512 and 256: four training images of 4 million pixels
/// train in 1 GB of address space (the estimate of 512 + 256 rows, 12 GB,
/// refused them, and the buffers took that much address space).
#[test]
fn a_few_huge_images_need_no_room_for_hundreds() {
    let t = tempfile::tempdir().unwrap();
    blank_set(t.path(), 4, 1, 4_000_000);
    let limited = |args: &[&str]| {
        let o = Command::new("sh")
            .args(["-c", "ulimit -v 1000000 && exec \"$0\" \"$@\""])
            .arg(BIN)
            .args(args)
            .current_dir(t.path())
            .env("XDG_CACHE_HOME", t.path().join("cache"))
            .output()
            .unwrap();
        outcome(&o)
    };
    let o = limited(
        &[
            &ONE_IMAGE_STEPS[..],
            &["--threads", "1", "--save", "m.safetensors"],
        ]
        .concat(),
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(o.stdout.contains("test accuracy"), "{}", o.stdout);
    // Scoring the model's one test image needs no room for 256 either.
    let o = limited(&[
        "eval",
        "--model",
        "m.safetensors",
        "--data",
        ".",
        "--threads",
        "1",
    ]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(o.stdout.contains("accuracy"), "{}", o.stdout);
}

/// Under a cgroup's memory limit (a container's `--memory`, a systemd
/// unit's `MemoryMax`) a network that would not fit is refused before
/// anything is allocated, naming the limit: `MemAvailable` is the
/// machine's, and past the limit the kernel kills the run (before the
/// check read the cgroup, 784-8192-8192-10 on MNIST under 400 MiB, run by
/// hand, ended with exit 137 and the kernel's "Memory cgroup out of
/// memory"; this test then failed on the exit status). Needs root and
/// cgroup v1's memory controller at
/// `/sys/fs/cgroup/memory` (the hybrid layout of this project's machines)
/// to make a group; skipped, loudly, elsewhere.
#[cfg(target_os = "linux")]
#[test]
fn a_cgroup_memory_limit_refuses_what_would_not_fit() {
    const TEST: &str = "a_cgroup_memory_limit_refuses_what_would_not_fit";
    let Some(group) = MemoryGroup::new(400 << 20) else {
        common::skipped(
            TEST,
            "no cgroup v1 memory controller this process may make a group in",
        );
        return;
    };
    let t = tempfile::tempdir().unwrap();
    data_dir(t.path());
    let args = train_args("data", &["--hidden", "8192,8192", "--no-save"]);
    // The shell joins the group, then becomes the binary.
    let o = Command::new("sh")
        .args(["-c", "echo $$ > \"$0\" && exec \"$@\""])
        .arg(group.0.join("cgroup.procs"))
        .arg(BIN)
        .args(&args)
        .current_dir(t.path())
        .env("XDG_CACHE_HOME", t.path().join("cache"))
        .output()
        .unwrap();
    assert_refused(
        &outcome(&o),
        2,
        &[
            "--hidden 8192,8192: the network 784-8192-8192-10 needs",
            "of memory available (all that the memory limit of this process's cgroup leaves)",
        ],
        "a network over the cgroup's limit",
    );
}

/// A cgroup v1 memory group, made inside this process's own, with a
/// limit; removed when dropped (its one process has exited by then).
struct MemoryGroup(PathBuf);

impl MemoryGroup {
    fn new(limit: u64) -> Option<Self> {
        let cgroups = fs::read_to_string("/proc/self/cgroup").ok()?;
        let own = cgroups.lines().find_map(|l| l.split_once(":memory:"))?.1;
        let dir = Path::new("/sys/fs/cgroup/memory")
            .join(own.trim_start_matches('/'))
            .join(format!("simplenn-test-{}", std::process::id()));
        fs::create_dir(&dir).ok()?;
        let group = MemoryGroup(dir);
        fs::write(group.0.join("memory.limit_in_bytes"), limit.to_string()).ok()?;
        Some(group)
    }
}

impl Drop for MemoryGroup {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.0);
    }
}

/// Blank images of `rows × cols` pixels in `dir`: `n_train` training
/// images and one test image, labelled 0, 1, 0, 1, ….
fn blank_set(dir: &Path, n_train: usize, rows: u32, cols: u32) {
    for (images, labels, n) in [
        (TRAIN_IMAGES, TRAIN_LABELS, n_train),
        (TEST_IMAGES, TEST_LABELS, 1),
    ] {
        let pixels = vec![0u8; n * (rows * cols) as usize];
        write_idx(&dir.join(images), &[n as u32, rows, cols], &pixels).unwrap();
        let labels_of: Vec<u8> = (0..n).map(|i| (i % 2) as u8).collect();
        write_idx(&dir.join(labels), &[n as u32], &labels_of).unwrap();
    }
}

/// One epoch of softmax regression on a [`blank_set`] in the working
/// directory, one image a step, one validation image.
const ONE_IMAGE_STEPS: [&str; 11] = [
    "--data",
    ".",
    "--hidden",
    "none",
    "--val",
    "1",
    "--batch-size",
    "1",
    "--epochs",
    "1",
    "--no-progress",
];

/// Elastic smoothing holds two Toeplitz matrices, `cols²` and `rows²`
/// floats: images a million pixels long (and two high: one pixel high
/// is no image to distort) would need 4 TB. Training and
/// `augment` refuse with the size before allocating (they aborted with
/// "memory allocation of … failed" and a backtrace); affine, whose buffers
/// grow with the pixels alone, still runs.
#[test]
fn elastic_on_long_thin_images_is_refused_with_its_size() {
    let t = tempfile::tempdir().unwrap();
    blank_set(t.path(), 2, 2, 1_000_000);
    let run = |augment: &str| {
        let flags = ["--augment", augment, "--threads", "2", "--no-save"];
        run_in(t.path(), &[&ONE_IMAGE_STEPS[..], &flags].concat())
    };
    assert_refused(
        &run("elastic"),
        2,
        &[
            // 4000 GB and a GB of scratch a thread (one per core, at most 2).
            "--augment elastic: on images of 2 × 1000000 pixels its buffers need 400",
            "GB of memory available; use --augment affine or shift:N (or none), or smaller images",
        ],
        "elastic training on 2 × 1,000,000 images",
    );
    let o = run("affine");
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let o = run_in(
        t.path(),
        &[
            "augment",
            "--data",
            ".",
            "--count",
            "1",
            "--versions",
            "1",
            "-o",
            "g.png",
        ],
    );
    assert_refused(
        &o,
        2,
        &[
            "augment: distorting and drawing 1 image of 2 × 1000000 pixels (elastic) with 1 distortion each needs 400",
            // Not --count or --versions, both 1 already: they once were.
            "GB of memory available; use --augment affine or shift:N, or point --data at a set of smaller images",
        ],
        "an elastic picture of 2 × 1,000,000 images",
    );
    assert!(!o.stderr.contains("--count"), "{}", o.stderr);
    assert!(!t.path().join("g.png").exists());
}

/// A picture that fits the pixel cap but not the memory left (here a
/// `ulimit -v` of 900 MB): refused before drawing, naming --count and
/// --versions. 1,000 images of noise (which does not compress) of 108 ×
/// 108 with 20 distortions each make a 264 MB picture that took 1.15 GB to
/// draw and encode, where the estimate said 0.3 and let it through to an
/// allocation failure.
#[cfg(target_os = "linux")]
#[test]
fn augment_counts_the_encoders_memory_before_drawing() {
    let t = tempfile::tempdir().unwrap();
    let (n, side) = (1000usize, 108u32);
    let pixels = common::noise(n * (side * side) as usize);
    write_idx(
        &t.path().join(TRAIN_IMAGES),
        &[n as u32, side, side],
        &pixels,
    )
    .unwrap();
    write_idx(&t.path().join(TRAIN_LABELS), &[n as u32], &vec![1; n]).unwrap();
    let script = "ulimit -v 900000 && exec \"$0\" augment --data \"$1\" --count 1000 --versions 20 -o \"$1/g.png\"";
    let o = Command::new("sh")
        .args(["-c", script, env!("CARGO_BIN_EXE_simplenn")])
        .arg(t.path())
        .output()
        .unwrap();
    let err = common::error_lines(&o);
    assert_eq!(o.status.code(), Some(2), "{err:?}");
    assert!(
        err[0].starts_with("simplenn: error: augment: distorting and drawing 1000 images of 108 × 108 pixels (elastic) with 20 distortions each needs ")
            && err[0].contains("(all that ulimit -v leaves); use a smaller --count or --versions")
            && err[0].ends_with(", or raise the limit"),
        "{err:?}"
    );
    assert!(!t.path().join("g.png").exists());
}

/// A network refused for want of memory under `ulimit -v` names raising
/// the limit among the ways out, last; refused for want of the machine's
/// memory, it does not (no limit there to raise).
#[cfg(target_os = "linux")]
#[test]
fn a_network_refused_under_a_limit_names_raising_it() {
    let t = tempfile::tempdir().unwrap();
    blank_set(t.path(), 2, 28, 28);
    let flags =
        "--data . --hidden 60000,60000 --val 0 --batch-size 1 --epochs 1 --threads 1 --no-save";
    let run = |script: &str| {
        let o = Command::new("sh")
            .args(["-c", script, BIN])
            .current_dir(t.path())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{script}: {}", common::stderr(&o));
        let err = common::error_lines(&o);
        assert_eq!(err.len(), 1, "{err:?}");
        err[0].clone()
    };
    // 14.4 GB of weights alone (73 GB with the rest) under a 1 GB limit
    // (below the memory of any machine that runs the tests, so that the
    // limit is what binds, as in the other ulimit tests).
    let line = run(&format!("ulimit -v 1000000 && exec \"$0\" {flags}"));
    assert!(
        line.starts_with(
            "simplenn: error: --hidden 60000,60000: the network 784-60000-60000-2 needs "
        ) && line.contains("(all that ulimit -v leaves); use fewer or narrower hidden layers")
            && line.ends_with(", or raise the limit"),
        "{line}"
    );
    // 1,000,000 × 1,000,000 weights (4 TB) are past any machine's memory:
    // no limit named, none to raise.
    if simplenn::memory::limit_fix().is_empty() {
        let line = run(&format!(
            "exec \"$0\" {}",
            flags.replace("60000,60000", "1000000,1000000")
        ));
        assert!(
            line.contains("GB of memory available; use fewer or narrower hidden layers")
                && !line.contains("raise"),
            "{line}"
        );
    } else {
        common::skipped(
            "a_network_refused_under_a_limit_names_raising_it (its second half)",
            "a limit (a cgroup's) binds here even without ulimit -v",
        );
    }
}

#[test]
fn augment_refuses_pictures_too_large_to_draw() {
    let t = tempfile::tempdir().unwrap();
    let set = |name: &str, n: usize, side: u32| {
        let d = t.path().join(name);
        fs::create_dir(&d).unwrap();
        let pixels = vec![0u8; n * (side * side) as usize];
        write_idx(&d.join(TRAIN_IMAGES), &[n as u32, side, side], &pixels).unwrap();
        write_idx(&d.join(TRAIN_LABELS), &[n as u32], &vec![1; n]).unwrap();
        d.to_str().unwrap().to_owned()
    };
    // A bad -o is refused before the data is opened: a gzipped set is not
    // decompressed first (its files would be left behind by a usage error).
    let gz = set("gz", 2, 8);
    for name in [TRAIN_IMAGES, TRAIN_LABELS] {
        let raw = Path::new(&gz).join(name);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, &fs::read(&raw).unwrap()).unwrap();
        fs::write(
            Path::new(&gz).join(format!("{name}.gz")),
            enc.finish().unwrap(),
        )
        .unwrap();
        fs::remove_file(&raw).unwrap();
    }
    let o = run_in(t.path(), &["augment", "--data", &gz, "-o", "g.svg"]);
    assert_refused(&o, 2, &["-o g.svg: augment writes PNG"], "a .svg picture");
    let left: Vec<_> = fs::read_dir(&gz)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 2, "decompressed before the refusal: {left:?}");
    // One image of 2049 × 2049 pixels is more than augment draws.
    let big = set("big", 1, 2049);
    let o = run_in(
        t.path(),
        &["augment", "--data", &big, "--count", "1", "-o", "g.png"],
    );
    assert_refused(
        &o,
        2,
        &["2049 × 2049 pixels, too large to draw", "smaller images"],
        "one huge image",
    );
    // Sixteen of 1024 × 1024 (drawn at their own size) with twenty
    // distortions each: a picture of ~21,600 × 16,500 pixels, refused
    // before it is allocated.
    let many = set("many", 16, 1024);
    let o = run_in(
        t.path(),
        &[
            "augment",
            "--data",
            &many,
            "--versions",
            "20",
            "-o",
            "g.png",
        ],
    );
    assert_refused(
        &o,
        2,
        &["make a picture of", "smaller --count or --versions"],
        "a huge grid",
    );
    assert!(!t.path().join("g.png").exists());
    let o = run_in(
        t.path(),
        &[
            "augment",
            "--data",
            &many,
            "--count",
            "2",
            "--versions",
            "1",
            "-o",
            "g.png",
        ],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    // Fewer images than the default 16: all of them, unasked; more asked
    // for than there are: refused, in the singular where it is one.
    let two = set("two", 2, 8);
    let o = run_in(t.path(), &["augment", "--data", &two, "-o", "two.png"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let rows = image::open(t.path().join("two.png")).unwrap().height();
    let one = set("one", 1, 8);
    let o = run_in(t.path(), &["augment", "--data", &one, "-o", "one.png"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let row = image::open(t.path().join("one.png")).unwrap().height();
    assert!(rows > row, "two images drew no more rows than one");
    let o = run_in(
        t.path(),
        &["augment", "--data", &one, "--count", "3", "-o", "x.png"],
    );
    assert_refused(
        &o,
        2,
        &[
            "--count 3",
            "has only 1 training image;",
            "--count 1 or fewer",
        ],
        "too many asked",
    );
}

#[test]
fn images_too_large_for_memory_are_blamed_not_the_hidden_layers() {
    // 40,000 × 40,000 images (sparse files: nothing is written but the
    // headers): even softmax regression needs terabytes.
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("huge");
    fs::create_dir(&d).unwrap();
    for (name, dims) in [
        (TRAIN_IMAGES, &[2u32, 40_000, 40_000][..]),
        (TRAIN_LABELS, &[2]),
        (TEST_IMAGES, &[1, 40_000, 40_000]),
        (TEST_LABELS, &[1]),
    ] {
        let head = header(dims);
        let body: u64 = dims.iter().map(|&d| d as u64).product();
        let mut f = fs::File::create(d.join(name)).unwrap();
        std::io::Write::write_all(&mut f, &head).unwrap();
        if name == TRAIN_LABELS {
            std::io::Write::write_all(&mut f, &[0, 1]).unwrap();
        }
        f.set_len(head.len() as u64 + body).unwrap();
    }
    let ds = d.to_str().unwrap();
    for hidden in ["none", "8"] {
        let o = run_in(
            t.path(),
            &[
                "--data",
                ds,
                "--hidden",
                hidden,
                "--val",
                "0",
                "--batch-size",
                "1",
                "--no-save",
            ],
        );
        assert_refused(
            &o,
            2,
            &[
                "the images have 1600000000 pixels each",
                "even with no hidden layer",
                "use smaller images",
            ],
            &format!("--hidden {hidden}"),
        );
    }
}

#[test]
fn data_files_that_are_not_files() {
    let t = tempfile::tempdir().unwrap();
    // A directory by the raw name, and by the .gz name.
    for name in [TRAIN_LABELS.to_string(), format!("{TEST_IMAGES}.gz")] {
        let d = data_dir(&t.path().join(&name));
        let raw = d.join(name.trim_end_matches(".gz"));
        fs::remove_file(&raw).unwrap();
        fs::create_dir(d.join(&name)).unwrap();
        let o = run_in(t.path(), &train_args(d.to_str().unwrap(), &["--no-save"]));
        assert_refused(
            &o,
            1,
            &[&name, "is a directory", "must be regular files"],
            &format!("{name} a directory"),
        );
    }
    // A directory by the raw name with a good .gz beside it: not
    // decompressed onto the directory.
    let d = data_dir(&t.path().join("dir-and-gz"));
    let raw = d.join(TRAIN_LABELS);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &fs::read(&raw).unwrap()).unwrap();
    fs::write(d.join(format!("{TRAIN_LABELS}.gz")), enc.finish().unwrap()).unwrap();
    fs::remove_file(&raw).unwrap();
    fs::create_dir(&raw).unwrap();
    let o = run_in(t.path(), &train_args(d.to_str().unwrap(), &["--no-save"]));
    assert_refused(
        &o,
        1,
        &[TRAIN_LABELS, "is a directory", "remove it"],
        "a directory beside its .gz",
    );
    // A link that leads nowhere.
    let d = data_dir(&t.path().join("link"));
    fs::remove_file(d.join(TEST_LABELS)).unwrap();
    std::os::unix::fs::symlink(d.join("nowhere"), d.join(TEST_LABELS)).unwrap();
    let o = run_in(t.path(), &train_args(d.to_str().unwrap(), &["--no-save"]));
    assert_refused(
        &o,
        1,
        &[TEST_LABELS, "not a regular file", "leads nowhere"],
        "dangling link",
    );
    // A loop of links, said as such.
    fs::remove_file(d.join(TEST_LABELS)).unwrap();
    std::os::unix::fs::symlink(d.join("other"), d.join(TEST_LABELS)).unwrap();
    std::os::unix::fs::symlink(d.join(TEST_LABELS), d.join("other")).unwrap();
    let o = run_in(t.path(), &train_args(d.to_str().unwrap(), &["--no-save"]));
    assert_refused(
        &o,
        1,
        &[TEST_LABELS, "its symbolic links go round in a loop"],
        "a loop of links",
    );
}

#[test]
fn bad_flag_values() {
    let t = tempfile::tempdir().unwrap();
    let d = data_dir(t.path());
    let ds = d.to_str().unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (&["--batch-size", "0"], &["--batch-size"]),
        // Rust's parse errors said "invalid digit found in string".
        (
            &["--stop-after=-1"],
            &[
                "'-1' for '--stop-after",
                "a number below 0, which this flag does not take",
            ],
        ),
        (&["--seed=-5"], &["'-5' for '--seed", "below 0"]),
        (
            &["--seed", "1.5"],
            &["'1.5' for '--seed", "not a whole number"],
        ),
        (&["--lr", "abc"], &["'abc' for '--lr", "not a number"]),
        (
            &["--val", "1199"],
            &[
                "the batch size (128, the default) is larger than the 1 training image",
                "1200 in the file, 1199 held out by --val",
                "pass --batch-size 1 or less, or --val 1072 or less",
            ],
        ),
        (
            &["--stop-after", "1"],
            &["--stop-after 1", "1-epoch run", "--epochs 2 or more"],
        ),
        (
            &["--epochs", "2", "--stop-after", "0"],
            &["--stop-after 0: must be 1, the one epoch before the last of --epochs 2"],
        ),
        (
            &["--epochs", "5", "--stop-after", "5"],
            &["--stop-after 5: must be an epoch before the last, 1 to 4 (--epochs 5)"],
        ),
        (&["--serve", "-1"], &["'-1' for '--serve", "-1 is not a port (0 to 65535)"]),
        // Softmax regression has no hidden units: the flag would do nothing.
        (
            &["--hidden", "none", "--dropout", "0.5"],
            &["--dropout 0.5", "no hidden layer", "--input-dropout 0.5"],
        ),
        (
            &["--hidden", "none", "--dropout-mask", "batch"],
            &["no dropout to draw masks for", "give --input-dropout 0.2"],
        ),
        (
            &["--epochs", "0", "--stop-after", "1"],
            &["--epochs 0: must be between 1 and 1000000, e.g. 20"],
        ),
        (
            &["--batch-size", "5000"],
            &["--batch-size", "1000 training images"],
        ),
        (&["--hidden", "0"], &["--hidden", "between 1 and"]),
        (&["--hidden", "256,,128"], &["--hidden", "width 2 is empty"]),
        (
            &["--hidden", "-3"],
            &["--hidden", "\"-3\" is not a whole number"],
        ),
        (
            &["--hidden", "1e9"],
            &["--hidden", "\"1e9\" is not a whole number"],
        ),
        (&["--hidden", "100000000"], &["--hidden", "between 1 and"]),
        (
            &["--hidden", "1048576,1048576"],
            &["--hidden 1048576,1048576", "GB", "memory available"],
        ),
        (&["--classes", "1"], &["--classes 1", "between 2 and 256"]),
        (&["--classes", "300"], &["--classes 300"]),
        (&["--lr", "-1"], &["--lr"]),
        (&["--lr", "nan"], &["--lr"]),
        (&["--lr", "inf"], &["--lr"]),
        (&["--lr", "abc"], &["--lr"]),
        (&["--threads", "0"], &["--threads"]),
        (&["--threads", "-2"], &["--threads"]),
        (&["--threads", "99999"], &["--threads"]),
        (&["--epochs", "0"], &["--epochs"]),
        (&["--epochs", "-3"], &["--epochs"]),
        (&["--momentum", "1.5"], &["--momentum"]),
        (&["--dropout", "1"], &["--dropout"]),
        (&["--input-dropout", "1"], &["--input-dropout 1", "[0, 1)"]),
        (&["--input-dropout", "-0.1"], &["--input-dropout -0.1"]),
        (
            &["--optimizer", "adam", "--beta1", "1"],
            &["--beta1 1", "[0, 1)"],
        ),
        (
            &["--optimizer", "adam", "--beta2", "1"],
            &["--beta2 1", "[0, 1)"],
        ),
        (
            &["--optimizer", "adam", "--eps", "0"],
            &["--eps 0", "above 0"],
        ),
        (
            &["--optimizer", "adam", "--eps", "-1"],
            &["--eps -1", "above 0"],
        ),
        (&["--beta1", "0.8"], &["--beta1 0.8", "--optimizer adam"]),
        (
            &["--weight-decay", "-1"],
            &["--weight-decay -1", "0 or more"],
        ),
        (
            &["--dropout-mask", "batch", "--dropout", "0"],
            &["--dropout-mask batch", "no dropout", "--dropout 0.5"],
        ),
        (
            &["--dropout-mask", "unit"],
            &["--dropout-mask", "unit", "use one of image, batch"],
        ),
        (&["--max-norm", "0"], &["--max-norm 0", "above 0"]),
        (&["--max-norm", "-1"], &["--max-norm -1", "above 0"]),
        (&["--max-norm", "inf"], &["--max-norm inf", "finite"]),
        (
            &["--optimizer", "adam", "--eps", "inf"],
            &["--eps inf", "finite"],
        ),
        (
            &["--optimizer", "nesterov", "--momentum", "0"],
            &["nesterov", "--momentum 0.9"],
        ),
        (
            &["--optimizer", "adam", "--momentum", "0.5"],
            &["--momentum 0.5", "--beta1"],
        ),
        (
            &["--optimizer", "rmsprop"],
            &[
                "--optimizer",
                "rmsprop",
                "use one of sgd, nesterov, adam, adamw",
            ],
        ),
        (
            &["--preset", "simard"],
            &[
                "--preset",
                "use one of default, seed, simard2003, dropout2014",
            ],
        ),
        (
            &["--val", "1200"],
            &["--val", "1200 images", "--val 120 (a tenth)", "--val 0"],
        ),
        (&["--no-such-flag"], &["--no-such-flag", "see --help"]),
        (&["--epoch", "5"], &["'--epoch'", "did you mean --epochs?"]),
        // A flag cut short: those it begins (clap's nearest spelling was
        // --eps, Adam's alone), all of them, not the nearest.
        (&["--ep", "5"], &["'--ep'", "did you mean --epochs or --eps?"]),
        (
            &["--e", "5"],
            &["did you mean one of the 4 flags that begin --e: --epochs, --eps, --elastic-sigma, --elastic-alpha?"],
        ),
        (
            &["--augment", "wobble"],
            &["--augment wobble", "unknown augmentation", "elastic"],
        ),
        (&["--augment", "shift:0"], &["--augment shift:0", "≥ 1"]),
        (
            &["--augment", "shift:28"],
            &["--augment shift:28", "only 28 × 28 pixels", "shift:2"],
        ),
        (
            &["--elastic-sigma", "-1"],
            &["--elastic-sigma -1", "(0, 64]"],
        ),
        (&["--elastic-alpha", "nan"], &["--elastic-alpha NaN"]),
        (
            &["--augment", "affine", "--elastic-sigma", "3"],
            &[
                "--elastic-sigma",
                "--augment elastic only",
                // Not "add --augment elastic": a second --augment is refused.
                "drop it, or run with --augment elastic instead of --augment affine",
            ],
        ),
    ];
    for (args, needles) in cases {
        let o = run_in(t.path(), &train_args(ds, args));
        assert_refused(&o, 2, needles, &format!("{args:?}"));
    }
    // `simplenn augment`'s own flags.
    let augment: &[(&[&str], &[&str])] = &[
        (
            &["--augment", "none"],
            &["--augment none", "nothing to show"],
        ),
        (&["--augment", "wobble"], &["--augment wobble"]),
        (&["--count", "0"], &["--count 0", "between 1 and 1000"]),
        (
            &["--count", "1001"],
            &["--count 1001", "between 1 and 1000"],
        ),
        (&["--versions", "-1"], &["--versions -1"]),
        (
            &["--versions", "0"],
            &["--versions 0: must be between 1 and 20"],
        ),
        (
            &["--versions", "21"],
            &["--versions 21: must be between 1 and 20"],
        ),
        (
            &["--augment", "shift:30"],
            &["--augment shift:30", "28 × 28"],
        ),
        (
            &["--augment", "affine", "--elastic-alpha", "3"],
            &["--elastic-alpha", "elastic only", "--augment affine"],
        ),
    ];
    for (args, needles) in augment {
        let mut a = vec!["augment", "--data", ds, "-o", "grid.png"];
        a.extend_from_slice(args);
        let o = run_in(t.path(), &a);
        assert_refused(&o, 2, needles, &format!("augment {args:?}"));
    }
    assert_no_leftovers(t.path(), "bad flags");
}

/// The binary run with `$SIMPLENN_DATA` set to `env` (removed when `None`).
fn run_with_data_env(cwd: &Path, args: &[&str], env: Option<&Path>) -> (Outcome, String) {
    let mut cmd = command(cwd, args);
    match env {
        Some(dir) => cmd.env("SIMPLENN_DATA", dir),
        None => cmd.env_remove("SIMPLENN_DATA"),
    };
    let out = cmd.output().expect("the binary runs");
    (
        outcome(&out),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Without `--data`: `$SIMPLENN_DATA` from any directory, else
/// `./data/mnist`, else the source tree's `data/mnist` (issue 10's "found
/// from anywhere"); a `$SIMPLENN_DATA` naming no directory is refused by name.
#[test]
fn data_directory_is_found_from_anywhere() {
    let fast: Vec<&str> = FAST.iter().copied().chain(["--no-save"]).collect();
    let from = |stdout: &str| {
        let line = stdout
            .lines()
            .find(|l| l.starts_with("data: "))
            .unwrap_or("");
        line.split(" images from ").nth(1).unwrap_or("").to_string()
    };
    // $SIMPLENN_DATA, run from an unrelated directory.
    let t = tempfile::tempdir().unwrap();
    let d = data_dir(t.path());
    let elsewhere = tempfile::tempdir().unwrap();
    let (o, out) = run_with_data_env(elsewhere.path(), &fast, Some(&d));
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(from(&out), d.display().to_string(), "{out}");
    // ./data/mnist of the working directory, the variable unset.
    let cwd = tempfile::tempdir().unwrap();
    let local = cwd.path().join("data/mnist");
    fs::create_dir_all(&local).unwrap();
    common::small_mnist(&local, 1_200, 200);
    let (o, out) = run_with_data_env(cwd.path(), &fast, None);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(from(&out), "data/mnist", "{out}");
    // Neither: the source tree's MNIST (softmax regression, one epoch).
    let empty = tempfile::tempdir().unwrap();
    let (o, out) = run_with_data_env(
        empty.path(),
        &[
            "--epochs",
            "1",
            "--hidden",
            "none",
            "--no-save",
            "--no-progress",
        ],
        None,
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    assert_eq!(from(&out), shipped.display().to_string(), "{out}");
    // A variable naming nothing, a file, or a path through a file:
    // refused, naming the variable.
    let file = t.path().join("afile");
    fs::write(&file, b"x").unwrap();
    for (bad, why) in [
        (t.path().join("no/such/dir"), "which does not exist"),
        (file.clone(), "which is not a directory"),
        (
            file.join("below"),
            "where its path goes through a file as if it were a directory; check the path",
        ),
    ] {
        let (o, _) = run_with_data_env(elsewhere.path(), &fast, Some(&bad));
        let shown = bad.display().to_string();
        let says = format!("$SIMPLENN_DATA is {shown}, {why}; point it at a directory");
        assert_refused(&o, 1, &[&says, "--data"], &shown);
    }
    // A ./data/mnist that is there but cannot be looked at (./data a loop
    // of links) or leads nowhere (a link to nothing) is named, not passed
    // over for the source tree's MNIST.
    for (make, says) in [
        (
            (|d: &Path| std::os::unix::fs::symlink("data", d.join("data")).unwrap())
                as fn(&Path),
            "the data directory data/mnist: its symbolic links go round in a loop",
        ),
        (
            |d: &Path| {
                fs::create_dir(d.join("data")).unwrap();
                std::os::unix::fs::symlink("/no/such/place", d.join("data/mnist")).unwrap();
            },
            "the data directory data/mnist: it is a symbolic link to /no/such/place, which does not exist; fix the link, or pass --data DIR",
        ),
    ] {
        let cwd = tempfile::tempdir().unwrap();
        make(cwd.path());
        let (o, out) = run_with_data_env(cwd.path(), &fast, None);
        assert_refused(&o, 1, &[says], says);
        assert!(!out.contains("data: "), "{out}");
    }
    // A loop of links: said as such.
    let (a, b) = (t.path().join("loop-a"), t.path().join("loop-b"));
    std::os::unix::fs::symlink(&a, &b).unwrap();
    std::os::unix::fs::symlink(&b, &a).unwrap();
    let (o, _) = run_with_data_env(elsewhere.path(), &fast, Some(&a));
    let shown = a.display().to_string();
    assert_refused(
        &o,
        1,
        &[
            &format!("$SIMPLENN_DATA is {shown}, where its symbolic links go round in a loop"),
            "--data",
        ],
        "$SIMPLENN_DATA a loop of links",
    );
    // A directory without the files: the missing file, and the variable that
    // named its directory.
    let bare = t.path().join("bare");
    fs::create_dir_all(&bare).unwrap();
    let (o, _) = run_with_data_env(elsewhere.path(), &fast, Some(&bare));
    assert_refused(
        &o,
        1,
        &[
            "train-images-idx3-ubyte not found",
            "point $SIMPLENN_DATA (or --data)",
        ],
        "a bare $SIMPLENN_DATA",
    );
    // `serve` without --data does without a test set when none is found, but
    // not when the variable asked for one.
    let (o, _) = run_with_data_env(
        t.path(),
        &train_args(d.to_str().unwrap(), &["--save", "m.safetensors"]),
        None,
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    // Each command names the files it reads: training all four, eval the
    // test pair, augment the training pair.
    let nowhere = t.path().join("no/such/dir");
    for (args, files) in [
        (fast.to_vec(), "the four MNIST IDX files (or their .gz)"),
        (
            vec!["eval", "--model", "m.safetensors"],
            "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (or their .gz)",
        ),
        (
            vec!["augment", "-o", "x.png"],
            "train-images-idx3-ubyte and train-labels-idx1-ubyte (or their .gz)",
        ),
    ] {
        let (o, _) = run_with_data_env(t.path(), &args, Some(&nowhere));
        let fix = format!("point it at a directory with {files}, unset it, or pass --data DIR");
        assert_refused(&o, 1, &[&fix], &format!("{args:?}"));
    }
    let mut serve = command(
        t.path(),
        &["serve", "--model", "m.safetensors", "--port", "0"],
    )
    .env("SIMPLENN_DATA", t.path().join("no/such/dir"))
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while serve.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            serve.kill().unwrap();
            panic!("serve with a bad $SIMPLENN_DATA started serving");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let o = outcome(&serve.wait_with_output().unwrap());
    assert_refused(&o, 1, &["$SIMPLENN_DATA", "which does not exist"], "serve");
}

/// A subcommand run without an argument it needs names that argument (clap
/// lists them on the lines after its first), still on one line; so do flags
/// put before a subcommand, and a value starting with '-' gets its fix.
#[test]
fn missing_arguments_are_named() {
    let t = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (&["predict"], &["not provided", "--model <PATH>", "<IMAGE>"]),
        (
            &["predict", "--model", "m.safetensors"],
            &["not provided", "<IMAGE>"],
        ),
        (
            &["eval", "--model"],
            &["--model <PATH>", "none was supplied"],
        ),
        // Flags before the subcommand are training's: say where they go.
        (
            &["--data", "d", "--epochs", "2", "eval", "--model", "m"],
            &[
                "'eval' cannot be used with --data <DIR>, --epochs <N>",
                "go after it: simplenn eval [FLAGS]",
            ],
        ),
        // A value that starts with '-' reads as a flag: say how to pass it.
        (
            &["eval", "--model", "-m.safetensors"],
            &["unexpected argument '-m'", "write --model=-m.safetensors"],
        ),
        (
            &["--no-save", "-x"],
            &["unexpected argument '-x'", "see --help"],
        ),
        // Not where the flag would refuse the value so written: a port is
        // a number (it said "write --serve=--bogus").
        (
            &["--no-save", "--serve", "--bogus"],
            &["unexpected argument '--bogus'", "see --help for the flags"],
        ),
        // Another subcommand's flag: say whose (it said "write
        // --serve=--host", which could not work).
        (
            &["--no-save", "--serve", "--host", "::1"],
            &[
                "--host is a flag of simplenn serve, not of training",
                "train --serve listens on 127.0.0.1 only",
            ],
        ),
        // Before clap's guess at a near spelling (it said "did you mean
        // --preset?"), and for short flags too.
        (
            &["--no-save", "--port", "1"],
            &["--port is a flag of simplenn serve, not of training"],
        ),
        (
            &["serve", "--model", "m", "-o", "x"],
            &["-o is a flag of simplenn plot and augment, not of simplenn serve"],
        ),
        (
            &["plot", "m.jsonl", "--data", "d"],
            &["--data is a flag of simplenn train, eval, augment and serve, not of simplenn plot"],
        ),
        (
            &["plot", "--metrics", "m.jsonl"],
            &["--metrics is a flag of simplenn train and serve, not of simplenn plot; give the log itself: simplenn plot LOG.jsonl"],
        ),
        // A value with a dash that its flag refuses however written: the
        // flag's refusal, not `--epochs=-inf`, which fails again.
        (
            &["--epochs", "-inf", "--no-save"],
            &["error: invalid value '-inf' for '--epochs <N>': a number below 0, which this flag does not take; see --help"],
        ),
        // The flag given twice, the second time with a dash: joined, it
        // is refused for that, which is the fault to name.
        (
            &["--epochs", "1", "--epochs", "-inf", "--no-save"],
            &["error: the argument '--epochs <N>' cannot be used multiple times; see --help"],
        ),
        (
            &["--no-save", "--save", "-m.x"],
            &["error: the argument '--no-save' cannot be used with '--save <PATH>'; see --help"],
        ),
        // Refused by the flag's range once parsed, not by clap: that
        // refusal, not `--lr=-1e-5`, which fails again.
        (
            &["--lr", "-1e-5", "--no-save"],
            &["error: --lr -0.00001: must be a number in (0, 100], e.g. 0.1"],
        ),
        (
            &["--seed=-0", "--no-save"],
            &["invalid value '-0' for '--seed <N>': a signed number, where this flag takes a whole number without a sign"],
        ),
        // Another flag's bad value is not this one's refusal.
        (
            &["--save", "-m.x", "--seed", "abc"],
            &["unexpected argument '-m' found; if -m.x is the value of --save, write --save=-m.x"],
        ),
        (
            &["serve", "--model", "m", "--port", "65536"],
            &["invalid value '65536' for '--port <PORT>': 65536 is not a port (0 to 65535)"],
        ),
        // A path given empty is not "none supplied"; one of only spaces
        // (an unset variable between quotes) is no file to write.
        (
            &["eval", "--model", ""],
            &["invalid value '' for '--model <PATH>': empty, where a path goes"],
        ),
        (
            &["--save", " ", "--epochs", "1"],
            &["invalid value ' ' for '--save <PATH>': only spaces, where a path goes (for a file of that name, write ./ before it)"],
        ),
        (
            &["plot", "m.jsonl", "-o", "  "],
            &["invalid value '  ' for '--output <PATH>': only spaces"],
        ),
        // A loose word: a space in a list, a file without its flag.
        (
            &["--hidden", "1024,", "1024", "--no-save"],
            &[
                "unexpected word '1024' among the training flags",
                "--hidden 1024,1024",
            ],
        ),
        (
            &["train", "--hidden", "1024,", "1024"],
            &["unexpected argument '1024'", "a list has no spaces"],
        ),
        (
            &["--no-save", "m.safetensors"],
            &[
                "unexpected word 'm.safetensors'",
                "a file goes after its flag",
            ],
        ),
        (
            &["eval", "m.safetensors"],
            &["'m.safetensors'", "simplenn eval --model m.safetensors"],
        ),
        (
            &["m.safetensors"],
            &[
                "'m.safetensors'",
                "simplenn eval --model m.safetensors (or predict or serve, in eval's place)",
            ],
        ),
        // With its model given, a word is left over, not the model.
        (
            &["eval", "--model", "m.safetensors", "extra"],
            &["simplenn eval reads the one model after --model: remove extra"],
        ),
        (
            &["serve", "--model=m.safetensors", "n.safetensors"],
            &["simplenn serve reads the one model after --model: remove n.safetensors"],
        ),
        (
            &["serve", "m.st"],
            &["'m.st'", "simplenn serve --model m.st"],
        ),
        (
            &["eval", "--data", "d", "model"],
            &["'model'", "simplenn eval --model model"],
        ),
        // Not the training flags' advice after plot and augment.
        (
            &["plot", "a.jsonl", "b.jsonl"],
            &["'b.jsonl'", "plot draws one log at a time"],
        ),
        (
            &["augment", "extra"],
            &["'extra'", "augment takes no loose words, only flags"],
        ),
        // A misspelt subcommand after flags.
        (
            &["--data", "d", "evl", "--model", "m"],
            &[
                "unexpected word 'evl'",
                "did you mean eval? A subcommand goes first",
            ],
        ),
        // Two letters off (swapped) is still near enough to name it.
        (
            &["--data", "d", "plto", "--metrics", "m"],
            &[
                "unexpected word 'plto'",
                "did you mean plot? A subcommand goes first: simplenn plot [FLAGS]",
            ],
        ),
    ];
    for (args, needles) in cases {
        let o = run_in(t.path(), args);
        assert_refused(&o, 2, needles, &format!("{args:?}"));
    }
}

/// A word that is not UTF-8 is refused as any loose word is, on one line,
/// never with a panic (the hints read the command line with `args_os`);
/// a path holding a line break is refused on one line too.
#[test]
fn words_that_are_not_utf8_are_refused() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let t = tempfile::tempdir().unwrap();
    let bad = OsStr::from_bytes(b"m\xff");
    let cases: &[(&[&OsStr], i32, &[&str])] = &[
        (&[bad], 2, &["unrecognized subcommand 'm\u{fffd}'"]),
        (
            &[OsStr::new("eval"), bad],
            2,
            &["simplenn eval --model m\u{fffd}"],
        ),
        (
            &[OsStr::new("serve"), bad],
            2,
            &["simplenn serve --model m\u{fffd}"],
        ),
        (
            &[OsStr::new("--no-save"), bad],
            2,
            &["unexpected word 'm\u{fffd}' among the training flags"],
        ),
        (
            &[OsStr::new("--no-save"), OsStr::from_bytes(b"-m\xff")],
            2,
            &["unexpected argument '-m'", "see --help"],
        ),
        (
            &[OsStr::new("--hidden"), bad],
            2,
            &["the value of --hidden ($'m\\xff') is not UTF-8 text"],
        ),
        (
            &[OsStr::new("--data"), bad],
            1,
            &["data directory m\u{fffd} not found"],
        ),
    ];
    for (args, code, needles) in cases {
        let out = command(t.path(), &[]).args(*args).output().unwrap();
        assert_refused(&outcome(&out), *code, needles, &format!("{args:?}"));
    }
    // Paths holding a line break still make one line, the break written `\n`.
    let newline: &[(&[&str], &[&str])] = &[
        (
            &["--data", "no\nwhere"],
            &["data directory no\\nwhere not found"],
        ),
        (
            &["--no-save", "--metrics", "nodir\n/x.jsonl"],
            &["cannot save to nodir\\n/x.jsonl"],
        ),
    ];
    for (args, needles) in newline {
        let out = command(t.path(), args).output().unwrap();
        assert_refused(&outcome(&out), 1, needles, &format!("{args:?}"));
    }
    // Words clap quotes: one line whatever they hold, a long one shown by
    // its first 60 bytes and its length.
    let nines = "9".repeat(300);
    let ys = "y".repeat(200);
    let xs = "x".repeat(300);
    let flag = format!("--{ys}");
    let words: &[(&[&str], &[&str])] = &[
        (
            &["--lr", "1\n2"],
            &["invalid value '1\\n2' for '--lr <LR>': not a number"],
        ),
        (&["ev\nal"], &["unrecognized subcommand 'ev\\nal'"]),
        (
            &["--epochs", &nines],
            &[&format!(
                "'{}…' (300 bytes) for '--epochs <N>'",
                &nines[..60]
            )],
        ),
        (
            &["--no-save", &ys],
            &[&format!("unexpected word '{}…' (200 bytes)", &ys[..60])],
        ),
        (&[&flag], &[&format!("'--{}…' (202 bytes)", &ys[..58])]),
        // In the hint too, and a value's terminal escapes written out.
        (&["eval", "a\nb"], &["simplenn eval --model a\\nb"]),
        (
            &["eval", &xs],
            &[&format!(
                "a model file goes after --model: simplenn eval --model {}…",
                &xs[..60]
            )],
        ),
        (
            &["--epochs", "\x1b[31mred"],
            &["invalid value '\\u{1b}[31mred' for '--epochs <N>': not a whole number"],
        ),
        (
            &["eval", "\x1b[2Jx"],
            &[
                "unexpected argument '\\u{1b}[2Jx' found",
                "--model \\u{1b}[2Jx",
            ],
        ),
        (&["\x1b[2Jev"], &["unrecognized subcommand '\\u{1b}[2Jev'"]),
        // A reason that repeats a long item keeps the line short too.
        (
            &["--hidden", &format!("16,{nines}")],
            &["a layer of 999999999999… units (300 digits): each width must be between 1 and"],
        ),
        (
            &["--hidden", "16,1x"],
            &["\"1x\" is not a whole number of units"],
        ),
    ];
    for (args, needles) in words {
        let out = command(t.path(), args).output().unwrap();
        let o = outcome(&out);
        assert_refused(&o, 2, needles, &format!("{args:?}"));
        assert!(o.stderr.len() < 400, "{args:?}: {}", o.stderr);
        assert!(!o.stderr.contains('\x1b'), "{args:?}: {}", o.stderr);
    }
    // The program's own name, read with the subcommand's, may not be UTF-8
    // either: a binary installed under such a directory.
    let dir = t.path().join(OsStr::from_bytes(b"bin\xff"));
    fs::create_dir(&dir).unwrap();
    std::os::unix::fs::symlink(BIN, dir.join("simplenn")).unwrap();
    let out = Command::new(dir.join("simplenn"))
        .args(["eval", "m"])
        .current_dir(t.path())
        .output()
        .unwrap();
    assert_refused(
        &outcome(&out),
        2,
        &["simplenn eval --model m"],
        "a program path not UTF-8",
    );
}

#[test]
fn unwritable_save_paths_fail_before_training() {
    let t = tempfile::tempdir().unwrap();
    let d = data_dir(t.path());
    let ds = d.to_str().unwrap();
    let o = run_in(
        t.path(),
        &train_args(ds, &["--save", "missing/dir/m.safetensors"]),
    );
    assert_refused(
        &o,
        1,
        &["missing/dir", "does not exist"],
        "missing output directory",
    );
    assert!(!o.stdout.contains("epoch"), "trained first");

    // A read-only directory: chmod where that binds; as root it does not,
    // so use sysfs, which refuses new files even to root.
    let ro = t.path().join("ro");
    fs::create_dir(&ro).unwrap();
    let mut perm = fs::metadata(&ro).unwrap().permissions();
    perm.set_readonly(true);
    fs::set_permissions(&ro, perm).unwrap();
    let target = if fs::write(ro.join("probe"), b"").is_err() {
        ro.join("m.safetensors")
    } else {
        PathBuf::from("/sys/simplenn-test.safetensors")
    };
    let o = run_in(
        t.path(),
        &train_args(ds, &["--save", target.to_str().unwrap()]),
    );
    assert_refused(&o, 1, &["cannot save to"], "read-only output directory");
    assert!(!target.exists());
    assert_no_leftovers(t.path(), "read-only output directory");
}

#[test]
fn outputs_that_would_clobber_something_are_refused_before_training() {
    let t = tempfile::tempdir().unwrap();
    let d = data_dir(t.path());
    let ds = d.to_str().unwrap();
    fs::create_dir(t.path().join("adir")).unwrap();
    // Where a Ctrl-C would put the checkpoint of a run saving in `bdir`.
    fs::create_dir_all(t.path().join("bdir/checkpoint.safetensors")).unwrap();
    // A device, reached through a link of the test's own: were the check
    // to regress, the save's rename would replace the link, never the
    // machine's /dev/null (as it did once, under a mutation audit as root).
    std::os::unix::fs::symlink("/dev/null", t.path().join("null")).unwrap();
    let data_file = format!("{ds}/{TEST_LABELS}");
    // 256 bytes: one past what most file systems allow a name.
    let long_name = format!("{}.safetensors", "m".repeat(244));
    // Links: one to a file not yet written, one to a file of the data set,
    // and a data file that is itself a link to another name.
    std::os::unix::fs::symlink("x2.safetensors", t.path().join("xlink")).unwrap();
    std::os::unix::fs::symlink(&data_file, t.path().join("alias")).unwrap();
    fs::rename(&data_file, d.join("tl-real")).unwrap();
    std::os::unix::fs::symlink("tl-real", &data_file).unwrap();
    let real_labels = format!("{ds}/tl-real");
    fs::write(t.path().join("afile"), b"").unwrap();
    let cases: &[(&[&str], i32, &[&str])] = &[
        // The same file under two spellings.
        (
            &["--save", "./x.safetensors", "--checkpoint", "x.safetensors"],
            2,
            &["--save ./x.safetensors and --checkpoint x.safetensors are the same file"],
        ),
        (
            &["--save", "out", "--metrics", "out"],
            2,
            &["--save out and --metrics out are the same file"],
        ),
        // One file, through a link.
        (
            &["--save", "x2.safetensors", "--checkpoint", "xlink"],
            2,
            &["--save x2.safetensors and --checkpoint xlink are the same file"],
        ),
        // Where Ctrl-C would write its checkpoint, with no checkpoint
        // flag: a signal would replace the log with the checkpoint.
        (
            &[
                "--save",
                "adir/m.safetensors",
                "--metrics",
                "adir/checkpoint.safetensors",
            ],
            2,
            &["the default --checkpoint adir/checkpoint.safetensors and --metrics adir/checkpoint.safetensors are the same file"],
        ),
        // A file of the data set, by its name, through a link to it, and
        // as the file a data file's link points to.
        (
            &["--no-save", "--metrics", &data_file],
            2,
            &[TEST_LABELS, "a file of the data set"],
        ),
        (
            &["--no-save", "--metrics", "alias"],
            2,
            &["--metrics alias", "a file of the data set"],
        ),
        (
            &["--save", &real_labels],
            2,
            &["tl-real", "a file of the data set"],
        ),
        // Flags that contradict each other.
        (
            &["--no-save", "--save", "kept.safetensors"],
            2,
            &["--no-save", "--save"],
        ),
        // Not a file a save can replace.
        (
            &["--save", "adir"],
            1,
            &["--save: ", "adir: it is a directory; name a file in it, e.g. adir/model.safetensors"],
        ),
        (
            &["--save", "afile/m.safetensors"],
            1,
            &["afile is not a directory"],
        ),
        // A path that names a directory: the example goes inside it.
        (
            &["--save", "adir/"],
            1,
            &["adir/", "not a file path", "e.g. adir/model.safetensors"],
        ),
        (
            &["--no-save", "--metrics", "adir/"],
            1,
            &["--metrics: ", "e.g. adir/metrics.jsonl"],
        ),
        (
            &["--save", "nodir/"],
            1,
            &["no such directory", "create it", "e.g. nodir/model.safetensors"],
        ),
        (
            &["--save", "afile/"],
            1,
            &["afile/", "goes through a file as if it were a directory"],
        ),
        // `x/.` names the directory too (the path's last `.` is no file
        // name), refused before training as `x/` is, not at the save.
        (
            &["--save", "nodir/."],
            1,
            &["(it ends in '/.')", "create it", "e.g. nodir/model.safetensors"],
        ),
        (
            &["--save", "adir/."],
            1,
            &["adir/.: not a file path but a directory", "e.g. adir/model.safetensors"],
        ),
        (
            &["--no-save", "--metrics", "afile/."],
            1,
            &["--metrics: ", "goes through a file as if it were a directory"],
        ),
        (
            &["--no-save", "--checkpoint", "adir"],
            1,
            &["--checkpoint: ", "a directory", "e.g. adir/checkpoint.safetensors"],
        ),
        // No checkpoint is planned, but a stop (Ctrl-C) would write one
        // there, and the run would be lost.
        (
            &["--save", "bdir/m.safetensors"],
            1,
            &["the default --checkpoint, where a stop (Ctrl-C) writes the run's checkpoint (--checkpoint PATH puts it elsewhere): cannot save to bdir/checkpoint.safetensors: it is a directory"],
        ),
        // A checkpoint planned there: named as the default too, not as
        // the --checkpoint flag, which was not given.
        (
            &["--save", "bdir/m.safetensors", "--epochs", "3", "--stop-after", "1"],
            1,
            &["error: the default --checkpoint, where the run's checkpoints go (--checkpoint PATH puts them elsewhere): cannot save to bdir/checkpoint.safetensors: it is a directory"],
        ),
        (
            &["--no-save", "--metrics", "null"],
            1,
            &["--metrics: ", "null", "not a regular file"],
        ),
        // A name the file system cannot hold, refused before the work.
        (
            &["--save", &long_name],
            1,
            &["the name (256 bytes) is too long", "a shorter name"],
        ),
    ];
    for (extra, code, needles) in cases {
        let o = run_in(t.path(), &train_args(ds, extra));
        assert_refused(&o, *code, needles, &format!("{extra:?}"));
        // Epoch lines go to standard output.
        assert!(!o.stdout.contains("epoch"), "{extra:?}: trained first");
    }
    assert!(t.path().join("adir").is_dir());
    assert!(
        fs::symlink_metadata(t.path().join("null"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link to /dev/null is still a link"
    );
    assert_no_leftovers(t.path(), "clobbering outputs");
}

/// simplenn's cached copies of a data set (decompressed there from a
/// read-only or full data directory), and the notes beside them, are
/// refused as outputs, as the data set's own files are: a save there would
/// replace the images the next run reads.
#[test]
fn outputs_may_not_be_the_cached_copies_of_the_data_set() {
    let t = tempfile::tempdir().unwrap();
    let d = data_dir(t.path());
    let ds = d.to_str().unwrap();
    let base = t.path().join("cache");
    let cache = simplenn::idx::cache_dir_under(&base, &d).unwrap();
    fs::create_dir_all(&cache).unwrap();
    let copy = cache.join(simplenn::data::TRAIN_IMAGES);
    fs::copy(d.join(simplenn::data::TRAIN_IMAGES), &copy).unwrap();
    let note = cache.join(format!("{}.source", simplenn::data::TRAIN_LABELS));
    for (flag, path) in [
        ("--save", &copy),
        ("--metrics", &note),
        ("--checkpoint", &copy),
    ] {
        let p = path.to_str().unwrap();
        let mut args = train_args(ds, &[flag, p]);
        if flag != "--save" {
            args.push("--no-save");
        }
        let o = outcome(
            &command(t.path(), &args)
                .env("XDG_CACHE_HOME", &base)
                .output()
                .unwrap(),
        );
        assert_refused(
            &o,
            2,
            &[flag, "simplenn's cached copy of a file of the data set"],
            flag,
        );
    }
    let o = outcome(
        &command(
            t.path(),
            &[
                "augment",
                "--data",
                ds,
                "--count",
                "1",
                "-o",
                copy.to_str().unwrap(),
            ],
        )
        .env("XDG_CACHE_HOME", &base)
        .output()
        .unwrap(),
    );
    assert_refused(&o, 2, &["-o", "cached copy"], "augment -o");
    assert_eq!(
        fs::read(&copy).unwrap(),
        fs::read(d.join(simplenn::data::TRAIN_IMAGES)).unwrap()
    );
}

/// `plot -o` and `augment -o` are checked before any work, as training's
/// outputs are: not the file being read, not a file of the data set, and
/// not another format's extension (which would put SVG text in a `.png`).
#[test]
fn picture_outputs_that_would_clobber_or_mislead_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let d = data_dir(t.path());
    let ds = d.to_str().unwrap();
    let o = run_in(
        t.path(),
        &train_args(ds, &["--no-save", "--epochs", "2", "--metrics", "log"]),
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let log = fs::read(t.path().join("log")).unwrap();
    std::os::unix::fs::symlink("log", t.path().join("loglink")).unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["plot", "log", "-o", "./log"],
            &["-o ./log", "the file plot reads"],
        ),
        (
            &["plot", "loglink", "-o", "log"],
            &["-o log: that is the file plot reads; choose another path, e.g. curve.svg"],
        ),
        // The picture plot draws by default, given as the log: the log is
        // what to change (the path it suggested was the one refused).
        (
            &["plot", "curve.svg"],
            &["-o curve.svg (plot's default): that is the file plot reads; give plot the log a run wrote with --metrics, not a picture it drew (or, for a log of that name, -o another path)"],
        ),
        (
            &["plot", "log", "-o", "curve.png"],
            &["plot writes SVG, not .png", "e.g. curve.svg"],
        ),
        (
            &["augment", "--data", ds, "-o", "grid.svg"],
            &["augment writes PNG, not .svg", "e.g. augment.png"],
        ),
        // Gzipped SVG is another format too.
        (
            &["plot", "log", "-o", "curve.svgz"],
            &["plot writes SVG, not .svgz", "e.g. curve.svg"],
        ),
        (
            &["augment", "--data", ds, "-o", "grid.eps"],
            &["augment writes PNG, not .eps", "e.g. augment.png"],
        ),
        // A file of /proc is judged as the file it is, before its
        // directory, as training's outputs are (`--save /proc/version`).
        (
            &["augment", "--data", ds, "-o", "/proc/version"],
            &["-o /proc/version: that file is on /proc (procfs)"],
        ),
        (
            &[
                "augment",
                "--data",
                ds,
                "-o",
                &format!("{ds}/{TRAIN_IMAGES}"),
            ],
            &["that is a file of the data set"],
        ),
    ];
    for (args, needles) in cases {
        let o = run_in(t.path(), args);
        assert_refused(&o, 2, needles, &format!("{args:?}"));
    }
    assert_eq!(
        fs::read(t.path().join("log")).unwrap(),
        log,
        "the log was overwritten"
    );
    for name in ["curve.png", "grid.svg", "curve.svgz", "grid.eps"] {
        assert!(!t.path().join(name).exists(), "{name} was written");
    }
    let o = run_in(t.path(), &["plot", "log", "-o", "."]);
    assert_refused(
        &o,
        1,
        &["-o: ", "not a file path", "e.g. ./curve.svg"],
        "plot -o .",
    );
    // Named as the flag, as training's outputs are.
    let o = run_in(t.path(), &["augment", "--data", ds, "-o", "nodir/g.png"]);
    assert_refused(
        &o,
        1,
        &["simplenn: error: -o: cannot save to nodir/g.png: directory nodir does not exist; create it or choose another path"],
        "augment -o nodir/g.png",
    );
    // The same commands with good outputs work.
    let o = run_in(t.path(), &["plot", "log", "-o", "curve.svg"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let o = run_in(
        t.path(),
        &["augment", "--data", ds, "--count", "2", "-o", "grid.PNG"],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_no_leftovers(t.path(), "picture outputs");
}

/// A save replaces only a file of its own kind (or an empty one): a slip
/// of the path must not turn a source file, a data set's notes or another
/// program's output into a model, log or picture. `-` is standard output
/// for pictures, standard input for `plot`'s log, and refused for
/// training's outputs (standard output carries the run's report).
#[test]
fn outputs_of_another_kind_are_kept_and_dash_means_the_standard_streams() {
    let t = tempfile::tempdir().unwrap();
    let d = data_dir(t.path());
    let ds = d.to_str().unwrap();
    let at = |name: &str| t.path().join(name);
    let o = run_in(
        t.path(),
        &train_args(ds, &["--save", "m.safetensors", "--metrics", "log"]),
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let notes = b"# notes\nkeep me\n";
    for name in ["notes.md", "build.log", "train.py"] {
        fs::write(at(name), notes).unwrap();
    }
    fs::write(at("empty.safetensors"), b"").unwrap();
    let cases: &[(&[&str], i32, &[&str])] = &[
        (
            &["--save", "notes.md"],
            2,
            &[
                "--save notes.md: that file is not a safetensors file",
                "move it away first",
            ],
        ),
        (
            &["--no-save", "--checkpoint", "train.py"],
            2,
            &["--checkpoint train.py", "not a safetensors file"],
        ),
        (
            &["--no-save", "--metrics", "m.safetensors"],
            2,
            &["--metrics m.safetensors", "not a simplenn metrics log"],
        ),
        (
            &["--save", "-"],
            2,
            &[
                "--save -",
                "not to standard output",
                "e.g. model.safetensors",
            ],
        ),
        (
            &["--no-save", "--metrics", "-"],
            2,
            &["--metrics -", "e.g. metrics.jsonl"],
        ),
    ];
    for (extra, code, needles) in cases {
        let o = run_in(t.path(), &train_args(ds, extra));
        assert_refused(&o, *code, needles, &format!("{extra:?}"));
        // Epoch lines go to standard output.
        assert!(!o.stdout.contains("epoch"), "{extra:?}: trained first");
    }
    let pictures: &[(&[&str], &[&str])] = &[
        (
            &["plot", "log", "-o", "notes.md"],
            &["-o notes.md", "not an SVG picture"],
        ),
        (
            &["plot", "log", "-o", "m.safetensors"],
            &["not an SVG picture"],
        ),
        (
            &["augment", "--data", ds, "-o", "m.safetensors"],
            &["-o m.safetensors", "not a PNG picture"],
        ),
        (
            &["augment", "--data", ds, "-o", "log"],
            &["not a PNG picture"],
        ),
    ];
    for (args, needles) in pictures {
        let o = run_in(t.path(), args);
        assert_refused(&o, 2, needles, &format!("{args:?}"));
    }
    // `plot`'s default data directory is the one a run would use: its
    // files are refused as `augment --data`'s are.
    let o = outcome(
        &command(
            t.path(),
            &["plot", "log", "-o", &format!("{ds}/{TRAIN_LABELS}")],
        )
        .env("SIMPLENN_DATA", &d)
        .output()
        .unwrap(),
    );
    assert_refused(
        &o,
        2,
        &["that is a file of the data set"],
        "plot -o a data file",
    );
    for name in ["notes.md", "build.log", "train.py"] {
        assert_eq!(fs::read(at(name)).unwrap(), notes, "{name} was replaced");
    }
    // Through a descriptor opened for appending to a file that is not a log.
    let bin = env!("CARGO_BIN_EXE_simplenn");
    let args = train_args(ds, &["--no-save", "--metrics", "/dev/fd/3"]).join(" ");
    let o = Command::new("bash")
        .current_dir(t.path())
        .arg("-c")
        .arg(format!("'{bin}' {args} 3>>build.log"))
        .output()
        .unwrap();
    assert_refused(
        &outcome(&o),
        2,
        &[
            "--metrics /dev/fd/3",
            "build.log, is not a simplenn metrics log",
        ],
        "3>>build.log",
    );
    assert_eq!(fs::read(at("build.log")).unwrap(), notes);
    // Files of the same kind, and empty ones, are replaced as before.
    let o = run_in(
        t.path(),
        &train_args(ds, &["--save", "empty.safetensors", "--metrics", "log"]),
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(simplenn::modelfile::load_model(&at("empty.safetensors")).is_ok());
    let o = run_in(t.path(), &["plot", "log", "-o", "curve.svg"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let o = run_in(t.path(), &["plot", "log", "-o", "curve.svg"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let svg = fs::read(at("curve.svg")).unwrap();

    // `-`: the picture on standard output, the summary on standard error;
    // `plot -` reads standard input.
    let o = command(t.path(), &["plot", "log", "-o", "-"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert_eq!(o.stdout, svg, "plot -o - writes what plot -o FILE writes");
    assert!(common::stderr(&o).contains("plotted 1 epoch to standard output"));
    let o = command(t.path(), &["plot", "-", "-o", "-"])
        .stdin(fs::File::open(at("log")).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::stderr(&o));
    let (from_file, from_stdin) = (
        String::from_utf8_lossy(&svg),
        String::from_utf8_lossy(&o.stdout),
    );
    assert_eq!(from_stdin.replace("from stdin", "from log"), from_file);
    let o = command(
        t.path(),
        &["augment", "--data", ds, "--count", "2", "-o", "-"],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", common::stderr(&o));
    let o2 = run_in(
        t.path(),
        &["augment", "--data", ds, "--count", "2", "-o", "g.png"],
    );
    assert_eq!(o2.code, Some(0), "{}", o2.stderr);
    assert_eq!(o.stdout, fs::read(at("g.png")).unwrap());
    let summary = common::stderr(&o);
    assert!(
        summary.starts_with("standard output (368 × 124): 2 training images"),
        "{summary}"
    );
    assert!(!at("-").exists(), "a file named - was written");
    // `-o /dev/stdout`, standard output redirected to a file: written as
    // `-o -` (a save would rename a new file over the redirected one, and
    // the summary, written to the old, would be lost).
    let o = command(t.path(), &["plot", "log", "-o", "/dev/stdout"])
        .stdout(fs::File::create(at("redirected.svg")).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert_eq!(fs::read(at("redirected.svg")).unwrap(), svg);
    assert!(common::stderr(&o).contains("plotted 1 epoch to standard output"));
    // ... but still gets -o's checks: not the log plot reads (`>> log`).
    let before = fs::read(at("log")).unwrap();
    let o = command(t.path(), &["plot", "log", "-o", "/dev/stdout"])
        .stdout(fs::OpenOptions::new().append(true).open(at("log")).unwrap())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", common::stderr(&o));
    assert!(common::stderr(&o).contains("that is the file plot reads"));
    assert_eq!(fs::read(at("log")).unwrap(), before);
    // Nor as `-o -`, from the file or from standard input (`< log >> log`).
    // A hard link to the log is the log.
    fs::hard_link(at("log"), at("log-link")).unwrap();
    for (args, stdin, onto) in [
        (["plot", "log", "-o", "-"], None, "log"),
        (["plot", "-", "-o", "-"], Some(at("log")), "log"),
        (["plot", "log", "-o", "-"], None, "log-link"),
    ] {
        let mut cmd = command(t.path(), &args);
        cmd.stdout(fs::OpenOptions::new().append(true).open(at(onto)).unwrap());
        if let Some(path) = stdin {
            cmd.stdin(fs::File::open(path).unwrap());
        }
        let o = cmd.output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", common::stderr(&o));
        assert!(
            common::stderr(&o).contains("-o -: standard output is the file plot reads"),
            "{args:?}: {}",
            common::stderr(&o)
        );
        assert_eq!(fs::read(at("log")).unwrap(), before, "{args:?}");
    }
    // Nor onto a file of the data set, `augment --data`'s or the one `plot`
    // finds by default (`>> data/mnist/train-images-idx3-ubyte`): as
    // `-o /dev/stdout` is refused there, so is `-o -`.
    for (args, onto) in [
        (vec!["augment", "--data", ds, "-o", "-"], TRAIN_IMAGES),
        (vec!["plot", "log", "-o", "-"], TRAIN_LABELS),
    ] {
        let file = d.join(onto);
        let kept = fs::read(&file).unwrap();
        let o = command(t.path(), &args)
            .env("SIMPLENN_DATA", &d)
            .stdout(fs::OpenOptions::new().append(true).open(&file).unwrap())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", common::stderr(&o));
        assert!(
            common::stderr(&o).contains("-o -: standard output is a file of the data set in "),
            "{args:?}: {}",
            common::stderr(&o)
        );
        assert_eq!(fs::read(&file).unwrap(), kept, "{args:?} wrote into {onto}");
    }
    // A terminal can neither type a log nor show a picture.
    let log = at("log");
    for (args, stdin, needle) in [
        (
            vec!["plot", "-"],
            true,
            "which is a terminal here; pipe or redirect one in",
        ),
        (
            vec!["plot", log.to_str().unwrap(), "-o", "-"],
            false,
            "standard output is a terminal",
        ),
        (
            vec!["augment", "--data", ds, "-o", "-"],
            false,
            "redirect it (`-o - > augment.png`)",
        ),
    ] {
        let o = common::on_terminal(&args, stdin);
        assert_refused(&outcome(&o), 2, &[needle], &format!("{args:?}"));
    }
    // A name a file can have, longer than its temporary file's could be
    // if it kept the whole name.
    let long = format!("{}.png", "g".repeat(246));
    let o = run_in(
        t.path(),
        &["augment", "--data", ds, "--count", "1", "-o", &long],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(at(&long).is_file());
    assert_no_leftovers(t.path(), "outputs of another kind");
}

/// Runs `cmd` with its standard output (`out`) and/or error (`err`)
/// appended onto `file`, which must come through unchanged, with exit
/// status 2; where one stream is the file, the other must hold the line
/// `standard STREAM is THAT; send it elsewhere, e.g. …` (where both are,
/// nothing can be said: the status tells).
fn refused_with_streams_onto(mut cmd: Command, file: &Path, out: bool, err: bool, that: &str) {
    let kept = fs::read(file).unwrap();
    let appended = || fs::OpenOptions::new().append(true).open(file).unwrap();
    if out {
        cmd.stdout(appended());
    }
    if err {
        cmd.stderr(appended());
    }
    let o = outcome(&cmd.output().unwrap());
    let case = format!(
        "{:?} with stdout {out}, stderr {err} onto {}",
        cmd.get_args().collect::<Vec<_>>(),
        file.display()
    );
    assert!(
        fs::read(file).unwrap() == kept,
        "{case}: wrote into the file"
    );
    assert_eq!(o.code, Some(2), "{case}: {}{}", o.stdout, o.stderr);
    let (stream, line, fix) = match (out, err) {
        (true, false) => ("output", &o.stderr, "> run.log"),
        (false, true) => ("error", &o.stdout, "2> run.err"),
        _ => return,
    };
    assert_eq!(
        line.trim_end(),
        format!("simplenn: error: standard {stream} is {that}; send it elsewhere, e.g. {fix}"),
        "{case}"
    );
}

/// Standard output or error sent onto a file of the data set
/// (`>> data/mnist/t10k-labels-idx1-ubyte`): every command that reads the
/// data set, or finds it by default, refuses before it prints anything,
/// and the file is left as it was. Training did exit 0, appending its
/// report to the file, and the next run found the data set damaged.
#[test]
fn standard_streams_onto_a_data_file_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let d = data_dir(t.path());
    let ds = d.to_str().unwrap();
    fs::write(t.path().join("log"), "").unwrap();
    let train = train_args(ds, &["--no-save"]);
    let eval = ["eval", "--data", ds, "--model", "missing.safetensors"];
    let augment = ["augment", "--data", ds, "--count", "1", "-o", "a.png"];
    let serve = ["serve", "--data", ds, "--model", "missing.safetensors"];
    let plot = ["plot", "log", "-o", "c.svg"];
    let predict = ["predict", "--model", "missing.safetensors", "x.png"];
    // (arguments, the file, standard output onto it, standard error onto it)
    let cases: [(&[&str], &str, bool, bool); 8] = [
        (&train, TEST_LABELS, true, false),
        (&train, TRAIN_IMAGES, true, true),
        (&eval, TEST_IMAGES, false, true),
        (&eval, TEST_LABELS, true, true),
        (&augment, TRAIN_LABELS, true, false),
        (&serve, TEST_LABELS, false, true),
        (&plot, TEST_IMAGES, true, false),
        (&predict, TRAIN_LABELS, true, false),
    ];
    let that = format!(
        "a file of the data set in {}, which this command would write into",
        fs::canonicalize(&d).unwrap().display()
    );
    for (args, onto, out, err) in cases {
        let mut cmd = command(t.path(), args);
        cmd.env("SIMPLENN_DATA", &d);
        refused_with_streams_onto(cmd, &d.join(onto), out, err, &that);
    }
    assert_no_leftovers(t.path(), "standard streams onto a data file");
}

/// Standard output or error sent onto a file the command reads (`eval
/// --class-names names.txt >> names.txt`, `--resume ck >> ck`): refused
/// before anything is printed, and the file left as it was. Training and
/// eval appended their report to the class names, a resumed run to its
/// checkpoint, which no longer loaded.
#[test]
fn standard_streams_onto_an_input_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let d = data_dir(t.path());
    let ds = d.to_str().unwrap();
    let at = |name: &str| t.path().join(name);
    for extra in [
        &["--save", "m", "--metrics", "log"][..],
        &["--epochs", "2", "--stop-after", "1", "--no-save"],
    ] {
        let o = run_in(t.path(), &train_args(ds, extra));
        assert_eq!(o.code, Some(0), "{}", o.stderr);
    }
    let names: String = (0..10).map(|i| format!("class {i}\n")).collect();
    fs::write(at("names.txt"), names).unwrap();
    image::GrayImage::from_fn(28, 28, |x, _| image::Luma([(x * 9) as u8]))
        .save(at("digit.png"))
        .unwrap();
    let ck = "checkpoint.safetensors";
    let train = train_args(ds, &["--no-save", "--class-names", "names.txt"]);
    let eval = [
        "eval",
        "--data",
        ds,
        "--model",
        "m",
        "--class-names",
        "names.txt",
    ];
    let resume = ["--data", ds, "--resume", ck];
    let predict = ["predict", "--model", "m", "digit.png"];
    let serve = ["serve", "--data", ds, "--model", "m", "--metrics", "log"];
    let plot = ["plot", "log", "-o", "c.svg"];
    // `-`: standard input redirected from the file (`predict - < digit.png
    // >> digit.png`, `plot - < log 2>> log`).
    let predict_stdin = ["predict", "--model", "m", "-"];
    let plot_stdin = ["plot", "-", "-o", "c.svg"];
    // (arguments, the file, what the line calls it, stdout onto it, stderr onto it)
    let cases: [(&[&str], &str, &str, bool, bool); 10] = [
        (&train, "names.txt", "--class-names", true, false),
        (&eval, "names.txt", "--class-names", true, false),
        (&eval, "m", "--model", false, true),
        (&resume, ck, "--resume", true, false),
        (&predict, "digit.png", "the image", true, false),
        (&serve, "log", "--metrics", true, true),
        (&serve, "m", "--model", true, false),
        (&plot, "log", "the metrics log", false, true),
        (&predict_stdin, "digit.png", "the image", true, false),
        (&plot_stdin, "log", "the metrics log", false, true),
    ];
    for (args, onto, what, out, err) in cases {
        let mut cmd = command(t.path(), args);
        let shown = match args.contains(&"-") {
            true => {
                cmd.stdin(fs::File::open(at(onto)).unwrap());
                "- (standard input)"
            }
            false => onto,
        };
        let that = format!("{what} {shown}, the file this command reads");
        refused_with_streams_onto(cmd, &at(onto), out, err, &that);
    }
    // Standard error on a file of the data set and standard output on an
    // input: the line goes to neither.
    let (names, labels) = (at("names.txt"), d.join(TEST_LABELS));
    let kept = (fs::read(&names).unwrap(), fs::read(&labels).unwrap());
    let append = |f: &Path| fs::OpenOptions::new().append(true).open(f).unwrap();
    let o = command(t.path(), &eval)
        .stdout(append(&names))
        .stderr(append(&labels))
        .status()
        .unwrap();
    assert_eq!(o.code(), Some(2));
    assert!((fs::read(&names).unwrap(), fs::read(&labels).unwrap()) == kept);
}

/// `simplenn … | head`: a reader that has gone is not an error to report;
/// a training run still finishes and saves its model, and `eval` stops.
#[test]
fn a_closed_stdout_is_not_an_error_and_costs_no_model() {
    let t = tempfile::tempdir().unwrap();
    let d = data_dir(t.path());
    let ds = d.to_str().unwrap();
    let closed = || {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        writer
    };
    let out = command(t.path(), &train_args(ds, &["--save", "m.safetensors"]))
        .stdout(closed())
        .output()
        .unwrap();
    let o = outcome(&out);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(!o.stderr.contains("error"), "{}", o.stderr);
    assert!(t.path().join("m.safetensors").is_file(), "no model saved");
    let out = command(
        t.path(),
        &["eval", "--model", "m.safetensors", "--data", ds],
    )
    .stdout(closed())
    .output()
    .unwrap();
    let o = outcome(&out);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(o.stderr.is_empty(), "{}", o.stderr);
}

/// A standard output that fails otherwise (`> log` on a full disk: here
/// `/dev/full`) costs the run's output, not its model: one warning when it
/// happens, the model saved, and exit 1 naming standard output at the end.
/// Other subcommands say the failure was standard output's.
#[cfg(target_os = "linux")]
#[test]
fn a_full_stdout_costs_the_output_not_the_model() {
    let t = tempfile::tempdir().unwrap();
    let d = data_dir(t.path());
    let ds = d.to_str().unwrap();
    let full = || {
        fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let out = command(t.path(), &train_args(ds, &["--save", "m.safetensors"]))
        .stdout(full())
        .output()
        .unwrap();
    let o = outcome(&out);
    assert_eq!(o.code, Some(1), "{}", o.stderr);
    // (A debug build, as `cargo test` makes, says so on a line of its own.)
    let lines: Vec<&str> = o
        .stderr
        .lines()
        .filter(|l| !l.contains("this is a debug build"))
        .collect();
    assert_eq!(lines.len(), 2, "{}", o.stderr);
    assert!(
        lines[0].starts_with("simplenn: warning: cannot write to standard output")
            && lines[0].contains("training goes on"),
        "{}",
        o.stderr
    );
    assert!(
        lines[1].starts_with("simplenn: error: cannot write to standard output")
            && lines[1].contains("training went on and saved what it was asked to save, but"),
        "{}",
        o.stderr
    );
    simplenn::modelfile::load_model(&t.path().join("m.safetensors")).unwrap();
    let out = command(
        t.path(),
        &["eval", "--model", "m.safetensors", "--data", ds],
    )
    .stdout(full())
    .output()
    .unwrap();
    assert_refused(
        &outcome(&out),
        1,
        &["cannot write to standard output: No space left on device"],
        "eval > /dev/full",
    );
}

#[test]
fn a_failed_run_keeps_the_earlier_metrics_log() {
    let t = tempfile::tempdir().unwrap();
    let d = data_dir(t.path());
    let ds = d.to_str().unwrap();
    let o = run_in(
        t.path(),
        &train_args(ds, &["--no-save", "--metrics", "run.jsonl"]),
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let before = fs::read(t.path().join("run.jsonl")).unwrap();
    assert!(!before.is_empty());
    let mut diverging = vec!["--no-save", "--metrics", "run.jsonl"];
    diverging.extend_from_slice(DIVERGES);
    let o = run_in(t.path(), &train_args(ds, &diverging));
    assert_refused(&o, 3, &["diverged"], "diverging run with --metrics");
    assert_eq!(fs::read(t.path().join("run.jsonl")).unwrap(), before);
}

/// Flags that make a run on [`data_dir`]'s data diverge in its first epoch.
const DIVERGES: &[&str] = &["--lr", "90", "--schedule", "constant", "--momentum", "0.99"];

/// The batches' check sees an update's effect only at the next step: the
/// run's last update is checked on training images before anything is
/// written, with or without a validation split.
#[test]
fn a_last_update_that_diverges_is_caught() {
    let t = tempfile::tempdir().unwrap();
    let d = data_dir(t.path());
    let ds = d.to_str().unwrap();
    // Two full-batch epochs: the second's one batch still scores under
    // the batches' limit (~35 nats), and its update sends the loss past it.
    for (val, batch) in [("200", "1000"), ("0", "1200")] {
        let args = [
            "--val",
            val,
            "--batch-size",
            batch,
            "--epochs",
            "2",
            "--lr",
            "100",
            "--schedule",
            "constant",
            "--momentum",
            "0",
            "--save",
            "m.safetensors",
            "--checkpoint",
            "c.safetensors",
        ];
        let o = run_in(t.path(), &train_args(ds, &args));
        assert_refused(
            &o,
            3,
            &[
                "diverged at step 1 of epoch 2 (mean loss ",
                " on the first 256 training images after that step); try a lower --lr (now 100)",
            ],
            &format!("--val {val}"),
        );
        for file in ["m.safetensors", "c.safetensors"] {
            assert!(
                !t.path().join(file).exists(),
                "{file} written (--val {val})"
            );
        }
    }
}

/// Inverted dropout at p = 0.999 multiplies each kept pixel by 1000: a
/// batch's loss can pass the divergence bound from that alone, at any
/// learning rate, and the advice names the rate before --lr (it named only
/// --lr, which no value could help).
#[test]
fn a_divergence_from_extreme_dropout_names_the_dropout() {
    let t = tempfile::tempdir().unwrap();
    let d = data_dir(t.path());
    let args = [
        "--hidden",
        "64",
        "--input-dropout",
        "0.999",
        "--dropout",
        "0",
        "--batch-size",
        "1",
        "--lr",
        "1e-30",
        "--no-save",
    ];
    let o = run_in(t.path(), &train_args(d.to_str().unwrap(), &args));
    assert_refused(
        &o,
        3,
        &["(mean batch loss ", "); try a lower --input-dropout (now 0.999: each kept input pixel is multiplied by 1/(1 − p), about 1000, which alone can make such a loss), or a lower --lr (now 1e-30)"],
        "extreme input dropout",
    );
    // At p = 0.9 (a scale of 10) a divergence is the learning rate's.
    let mut args = DIVERGES.to_vec();
    args.extend_from_slice(&["--dropout", "0.9", "--no-save"]);
    let o = run_in(t.path(), &train_args(d.to_str().unwrap(), &args));
    assert_refused(&o, 3, &["); try a lower --lr (now 90)"], "dropout 0.9");
}

#[test]
fn divergence_stops_with_advice() {
    let t = tempfile::tempdir().unwrap();
    let d = data_dir(t.path());
    let mut args = DIVERGES.to_vec();
    args.extend_from_slice(&["--save", "m.safetensors"]);
    let o = run_in(t.path(), &train_args(d.to_str().unwrap(), &args));
    assert_refused(
        &o,
        3,
        &["diverged", "epoch 1", "step", "lower --lr"],
        "divergence",
    );
    assert!(
        !t.path().join("m.safetensors").exists(),
        "a diverged model is not saved"
    );
    // A weight decay that alone overshoots (lr · wd ≥ 1) is refused before
    // training for the optimisers that scale by 1 − lr·wd (named in short
    // form); adam's L2 term can still diverge, and is named then.
    let o = run_in(
        t.path(),
        &train_args(
            d.to_str().unwrap(),
            &["--no-save", "--weight-decay", "1e30"],
        ),
    );
    assert_refused(
        &o,
        2,
        &["--weight-decay 1e30 with --lr 0.1: sgd scales the weights by 1 − lr·wd"],
        "weight decay",
    );
    let o = run_in(
        t.path(),
        &train_args(
            d.to_str().unwrap(),
            &[
                "--no-save",
                "--optimizer",
                "adamw",
                "--lr",
                "0.01",
                "--weight-decay",
                "200",
            ],
        ),
    );
    assert_refused(
        &o,
        2,
        &["adamw scales the weights by 1 − lr·wd = -1"],
        "adamw",
    );
    let o = run_in(
        t.path(),
        &train_args(d.to_str().unwrap(), &["--no-save", "--no-decay-bias"]),
    );
    assert_refused(
        &o,
        2,
        &["--no-decay-bias: this run has no weight decay"],
        "no decay",
    );
}

#[test]
fn bad_models_for_eval_predict_and_resume() {
    let t = tempfile::tempdir().unwrap();
    let d = data_dir(t.path());
    let ds = d.to_str().unwrap();
    // A real model and checkpoint to damage.
    let o = run_in(
        t.path(),
        &train_args(
            ds,
            &[
                "--save",
                "good.safetensors",
                "--checkpoint",
                "ck.safetensors",
            ],
        ),
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let good = fs::read(t.path().join("good.safetensors")).unwrap();
    let ck = fs::read(t.path().join("ck.safetensors")).unwrap();
    // eval does not print onto the model it reads (`>> model`).
    let at = |name: &str| t.path().join(name);
    fs::copy(at("good.safetensors"), at("m.safetensors")).unwrap();
    let model = fs::read(at("m.safetensors")).unwrap();
    // (Through a hard link: the same file.)
    fs::hard_link(at("m.safetensors"), at("m-link.safetensors")).unwrap();
    let mut cmd = command(
        t.path(),
        &["eval", "--model", "m.safetensors", "--json", "--data", ds],
    );
    cmd.stdout(
        fs::OpenOptions::new()
            .append(true)
            .open(at("m-link.safetensors"))
            .unwrap(),
    );
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", common::stderr(&o));
    assert!(
        common::stderr(&o).contains(
            "standard output is --model m.safetensors, the file this command reads; send it elsewhere"
        ),
        "{}",
        common::stderr(&o)
    );
    assert_eq!(fs::read(at("m.safetensors")).unwrap(), model);
    let mut corrupt = good.clone();
    corrupt[12..20].copy_from_slice(b"@@@@@@@@"); // inside the JSON header
    fs::write(t.path().join("corrupt.safetensors"), &corrupt).unwrap();
    fs::write(t.path().join("cut.safetensors"), &good[..good.len() / 2]).unwrap();
    fs::write(t.path().join("short.safetensors"), &good[..5]).unwrap();
    fs::write(t.path().join("ck-cut.safetensors"), &ck[..ck.len() - 7]).unwrap();
    fs::write(t.path().join("digit.png"), b"\x89PNG\r\n\x1a\n not really").unwrap();
    let wrong = simplenn::modelfile::to_bytes(
        &simplenn::model::Params::zeros(simplenn::model::Dims::new(99, &[4], 10)),
        &[],
        std::collections::BTreeMap::new(),
    );
    fs::write(t.path().join("wrong.safetensors"), wrong).unwrap();
    let five = simplenn::modelfile::to_bytes(
        &simplenn::model::Params::zeros(simplenn::model::Dims::new(784, &[4], 5)),
        &[],
        std::collections::BTreeMap::new(),
    );
    fs::write(t.path().join("five.safetensors"), five).unwrap();

    let cases: &[(&[&str], &[&str])] = &[
        (
            &["eval", "--model", "missing.safetensors", "--data", ds],
            &["missing.safetensors"],
        ),
        (
            &["eval", "--model", "corrupt.safetensors", "--data", ds],
            &["corrupt.safetensors"],
        ),
        (
            &["eval", "--model", "cut.safetensors", "--data", ds],
            &["cut.safetensors"],
        ),
        (
            &["eval", "--model", "short.safetensors", "--data", ds],
            &["short.safetensors"],
        ),
        (
            &["eval", "--model", "wrong.safetensors", "--data", ds],
            &[
                "wrong.safetensors",
                "99-4-10",
                "takes 99 inputs",
                "784 pixels",
            ],
        ),
        (
            &["predict", "--model", "cut.safetensors", "digit.png"],
            &["cut.safetensors"],
        ),
        (
            &["predict", "--model", "wrong.safetensors", "digit.png"],
            &["wrong.safetensors", "99 inputs", "not a square image"],
        ),
        (
            &["eval", "--model", "five.safetensors", "--data", ds],
            &["five.safetensors", "784-4-5", "not below the 5 classes"],
        ),
        (
            &["predict", "--model", "good.safetensors", "digit.png"],
            &["digit.png"],
        ),
        (
            &["predict", "--model", "good.safetensors", "nope.png"],
            &["nope.png"],
        ),
    ];
    for (args, needles) in cases {
        let o = run_in(t.path(), args);
        assert_refused(&o, 1, needles, &format!("{args:?}"));
    }
    // --resume with something that is not a checkpoint of this run.
    for (file, needles) in [
        ("ck-cut.safetensors", &["ck-cut.safetensors"][..]),
        ("corrupt.safetensors", &["corrupt.safetensors"]),
        ("good.safetensors", &["good.safetensors", "checkpoint"]),
        ("missing.safetensors", &["missing.safetensors"]),
    ] {
        let o = run_in(t.path(), &train_args(ds, &["--resume", file, "--no-save"]));
        assert!(
            o.code == Some(1) || o.code == Some(2),
            "--resume {file}: {:?}\n{}",
            o.code,
            o.stderr
        );
        let code = o.code.unwrap();
        assert_refused(&o, code, needles, &format!("--resume {file}"));
    }
    // The model may not overwrite the checkpoint it resumes from.
    let o = run_in(
        t.path(),
        &train_args(
            ds,
            &["--resume", "ck.safetensors", "--save", "./ck.safetensors"],
        ),
    );
    assert_refused(
        &o,
        2,
        &["--save ./ck.safetensors", "the checkpoint --resume reads"],
        "--save over --resume",
    );
    // A device would be read for ever; a pipe is read like a file.
    let o = run_in(
        t.path(),
        &["predict", "--model", "good.safetensors", "/dev/zero"],
    );
    assert_refused(&o, 1, &["/dev/zero", "a device"], "predict on /dev/zero");
    let fifo = t.path().join("log.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) on a NUL-terminated path we own; no memory is shared.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let line = r#"{"epoch":1,"train_loss":0.3,"train_accuracy":0.9,"val_loss":0.2,"val_accuracy":0.95,"lr":0.1,"seconds":1.0,"samples_per_sec":1.0}"#;
    let writer = std::thread::spawn(move || fs::write(&fifo, format!("{line}\n")));
    let o = run_in(t.path(), &["plot", "log.fifo", "-o", "curve.svg"]);
    writer.join().unwrap().unwrap();
    assert_eq!(o.code, Some(0), "plot from a pipe: {}", o.stderr);
    // A checkpoint whose metadata holds a value no run writes is damaged:
    // not blamed on a flag the user never gave.
    let ck_text = ck.clone();
    let key = br#""simplenn.lr":""#;
    let at = ck_text
        .windows(key.len())
        .position(|w| w == key)
        .expect("checkpoint stores its lr")
        + key.len();
    let end = at + ck_text[at..].iter().position(|&b| b == b'"').unwrap();
    assert_eq!(
        &ck_text[at..end],
        b"0.1",
        "the default lr, 3 bytes to overwrite"
    );
    let mut bad_meta = ck_text;
    bad_meta[at..end].copy_from_slice(b"NaN");
    fs::write(t.path().join("bad-meta.safetensors"), bad_meta).unwrap();
    let o = run_in(
        t.path(),
        &train_args(ds, &["--resume", "bad-meta.safetensors", "--no-save"]),
    );
    assert_refused(
        &o,
        1,
        &["bad-meta.safetensors", "metadata is damaged", "--lr NaN"],
        "damaged checkpoint metadata",
    );
    // One that a run of the file's other settings would record otherwise:
    // Adam's β1 on an sgd run, which records the default.
    let key = br#""simplenn.beta1":"0.9""#;
    let at = ck
        .windows(key.len())
        .position(|w| w == key)
        .expect("an sgd checkpoint stores the default beta1")
        + key.len()
        - 4;
    let mut bad_beta = ck.clone();
    bad_beta[at..at + 3].copy_from_slice(b"0.8");
    fs::write(t.path().join("bad-beta.safetensors"), bad_beta).unwrap();
    let o = run_in(
        t.path(),
        &train_args(ds, &["--resume", "bad-beta.safetensors", "--no-save"]),
    );
    assert_refused(
        &o,
        1,
        &[
            "bad-beta.safetensors: checkpoint metadata holds what no run of its settings writes (the file's vs such a run's: beta1 0.8 vs 0.9)",
            "the file is damaged",
        ],
        "an sgd checkpoint with Adam's beta1 changed",
    );
    // Devices are not model files (reading /dev/zero would never end).
    for args in [
        &["eval", "--model", "/dev/zero", "--data", ds][..],
        &["plot", "/dev/zero", "-o", "x.svg"],
    ] {
        let o = run_in(t.path(), args);
        assert_refused(&o, 1, &["/dev/zero", "a device"], &format!("{args:?}"));
    }
    // A checkpoint from another network shape.
    let o = run_in(
        t.path(),
        &train_args(
            ds,
            &["--resume", "ck.safetensors", "--hidden", "8", "--no-save"],
        ),
    );
    assert_refused(
        &o,
        2,
        &["--hidden 8", "checkpoint"],
        "--resume with another --hidden",
    );
    assert_eq!(
        fs::read(t.path().join("ck.safetensors")).unwrap(),
        ck,
        "refused resume left the checkpoint alone"
    );
    assert_no_leftovers(t.path(), "bad models");
}

/// An output that is the run's own standard output or error, through
/// `/dev/stdout` or `/dev/stderr`, is refused: each save would replace the
/// file the report goes to. One through another descriptor (`/dev/fd/3`
/// into a file) is written, and every epoch's save lands in that file,
/// not in a file named `NAME (deleted)` once the first save replaced it.
#[cfg(target_os = "linux")]
#[test]
fn outputs_through_the_processs_own_descriptors() {
    let t = tempfile::tempdir().unwrap();
    let data = data_dir(t.path());
    let data = data.to_str().unwrap();
    let bin = env!("CARGO_BIN_EXE_simplenn");
    let run = |redirect: &str, flags: &str| {
        let args = train_args(data, &["--epochs", "2", "--no-save"]).join(" ");
        Command::new("bash")
            .current_dir(t.path())
            .arg("-c")
            .arg(format!("'{bin}' {args} {flags} {redirect}"))
            .output()
            .unwrap()
    };
    for (redirect, flags, stream) in [
        ("> log", "--metrics /dev/stdout", "standard output"),
        ("2> log", "--metrics /dev/stderr", "standard error"),
        (
            "> log",
            "--checkpoint-every 1 --checkpoint /dev/stdout",
            "standard output",
        ),
    ] {
        let o = run(redirect, flags);
        let log = fs::read_to_string(t.path().join("log")).unwrap();
        assert_eq!(o.status.code(), Some(2), "{flags}: {log}");
        let want = format!("that is {stream}, the file ");
        assert!(
            log.contains(&want) || common::stderr(&o).contains(&want),
            "{flags}: {log}"
        );
    }
    let o = run("3> log", "--metrics /dev/fd/3");
    assert!(o.status.success(), "{}", common::stderr(&o));
    let log = fs::read_to_string(t.path().join("log")).unwrap();
    assert_eq!(log.lines().count(), 2, "{log}");
    let names: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(!names.iter().any(|n| n.contains("deleted")), "{names:?}");
}

/// A usage error with standard error that cannot be written (full, or its
/// reader gone) still exits 2: the line is lost, but not the status (it was
/// a panic, 101, for every error clap found).
#[cfg(target_os = "linux")]
#[test]
fn usage_errors_exit_2_when_standard_error_cannot_be_written() {
    for how in ["full", "gone"] {
        for args in [
            &["--bogus"][..],
            &["--epochs", "abc"],
            &["bogus"],
            &["eval"],
            &["--save", "x", "--no-save"],
        ] {
            let o = common::simplenn_stderr_unwritable(args, how);
            assert_eq!(o.status.code(), Some(2), "{how}: {args:?}");
            assert!(o.stdout.is_empty(), "{how}: {args:?}");
        }
    }
}

/// `--help` to standard output that cannot be written fails, as every
/// other output does; `augment` on images too small to distort does not
/// advise `--augment none`, which it refuses.
#[cfg(target_os = "linux")]
#[test]
fn help_to_a_full_disk_and_augment_on_images_too_small() {
    for flag in ["--help", "--version"] {
        let full = fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_simplenn"))
            .arg(flag)
            .stdout(full)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{flag}");
        // One line, with the fix any other output's line has.
        assert_eq!(
            common::stderr(&o),
            "simplenn: error: cannot write to standard output: No space left on device (os error 28); the disk (or its inodes: df -i) is full; free space there, or write elsewhere\n",
            "{flag}"
        );
    }

    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    for (images, labels) in [(TRAIN_IMAGES, TRAIN_LABELS), (TEST_IMAGES, TEST_LABELS)] {
        write_idx(&d.join(images), &[4, 1, 1], &[0, 80, 160, 240]).unwrap();
        write_idx(&d.join(labels), &[4], &[0, 1, 0, 1]).unwrap();
    }
    let o = common::simplenn(&[
        "augment",
        "--data",
        d.to_str().unwrap(),
        "--augment",
        "affine",
    ]);
    let err = common::stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("push most of a 1-pixel side out of the image: no distortion of these images can be pictured")
            && !err.contains("--augment none"),
        "{err}"
    );
}

/// A data set's decompression that runs out of room while writing (here a
/// file-size limit, `ulimit -f`, as a disk that fills up or runs out of
/// inodes meanwhile would) names the archive, the directory and the fix,
/// not the temporary file already removed nor the directory's
/// permissions; the cache is tried next, and nothing is left behind in
/// either place.
#[cfg(target_os = "linux")]
#[test]
fn decompression_that_runs_out_of_room_says_so_and_tries_the_cache() {
    let t = tempfile::tempdir().unwrap();
    let d = data_dir(t.path());
    for name in simplenn::data::FILES {
        let raw = d.join(name);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, &fs::read(&raw).unwrap()).unwrap();
        fs::write(d.join(format!("{name}.gz")), enc.finish().unwrap()).unwrap();
        fs::remove_file(&raw).unwrap();
    }
    let ds = d.to_str().unwrap();
    let mut cmd = command(t.path(), &train_args(ds, &["--no-save"]));
    file_size_limit(&mut cmd, 100_000);
    let o = outcome(&cmd.output().unwrap());
    let gz = d.join(format!("{}.gz", simplenn::data::TRAIN_IMAGES));
    assert_refused(
        &o,
        1,
        &[
            &format!("{} cannot be decompressed into {}: File too large", gz.display(), d.display()),
            "raise the file-size limit (ulimit -f), or decompress it elsewhere and point --data at that",
        ],
        "a file-size limit",
    );
    assert!(!o.stderr.contains("ubyte.tmp"), "{}", o.stderr);
    assert!(!o.stderr.contains("writable"), "{}", o.stderr);
    // Nothing left of the images, beside their archive or in the cache.
    let left = |dir: &Path| -> Vec<String> {
        fs::read_dir(dir).map_or(vec![], |r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(simplenn::data::TRAIN_IMAGES))
                .collect()
        })
    };
    assert_eq!(left(&d), [format!("{}.gz", simplenn::data::TRAIN_IMAGES)]);
    let cache = simplenn::idx::cache_dir_under(&t.path().join("cache"), &d).unwrap();
    assert_eq!(left(&cache), Vec::<String>::new());
}

/// Run `cmd` under a file-size limit of `bytes` (`ulimit -f`). SIGXFSZ
/// keeps its default action, which kills: simplenn itself must ignore it
/// for a write past the limit to fail with EFBIG.
#[cfg(target_os = "linux")]
fn file_size_limit(cmd: &mut Command, bytes: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit(2) is async-signal-safe, as pre_exec requires, and
    // the closure touches only its own copy of `bytes`.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: libc::RLIM_INFINITY,
            };
            match libc::setrlimit(libc::RLIMIT_FSIZE, &limit) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
}

/// A model whose weights alone pass the file-size limit (`ulimit -f`) is
/// refused before training, in one line naming the limit and the size.
#[cfg(target_os = "linux")]
#[test]
fn a_save_past_the_file_size_limit_is_refused_before_training() {
    let t = tempfile::tempdir().unwrap();
    let d = data_dir(t.path());
    let args = train_args(d.to_str().unwrap(), &["--save", "m.safetensors"]);
    // A checkpoint holds the weights and sgd's momentum: twice as much.
    for (what, flag, limit, need) in [
        ("the model", "--save", "20.0 kB", "50.9 kB"),
        ("a checkpoint", "--checkpoint", "60.0 kB", "101.8 kB"),
    ] {
        let mut args = args.clone();
        if flag == "--checkpoint" {
            args.extend([
                "--checkpoint",
                "c.safetensors",
                "--checkpoint-every",
                "1",
                "--no-save",
            ]);
            args.retain(|&a| a != "--save" && a != "m.safetensors");
        }
        let mut cmd = command(t.path(), &args);
        // 20 kB: less than the 784-16-10 model's 50.9 kB of weights; 60
        // kB: more, but less than a checkpoint's weights and momentum.
        let bytes = if flag == "--save" { 20_000 } else { 60_000 };
        file_size_limit(&mut cmd, bytes);
        let o = outcome(&cmd.output().unwrap());
        assert_refused(
            &o,
            1,
            &[&format!("the file-size limit (ulimit -f) is {limit}, and {what} needs {need} or more; raise the limit")],
            what,
        );
        assert!(!o.stdout.contains("epoch"), "trained:\n{}", o.stdout);
    }
}

/// A model file that passes the file-size limit (`ulimit -f`) only by its
/// header, after the check of its weights' size, is refused at the end in
/// one line naming the limit, not killed by SIGXFSZ mid-write, and leaves
/// no temporary file behind.
#[cfg(target_os = "linux")]
#[test]
fn a_save_past_the_file_size_limit_says_so_and_leaves_nothing() {
    let t = tempfile::tempdir().unwrap();
    let d = data_dir(t.path());
    let mut cmd = command(
        t.path(),
        &train_args(d.to_str().unwrap(), &["--save", "m.safetensors"]),
    );
    // Above the 784-16-10 model's 50,920 bytes of weights, below its file
    // (the header and its metadata come first).
    file_size_limit(&mut cmd, 50_950);
    let o = outcome(&cmd.output().unwrap());
    assert_refused(
        &o,
        1,
        &[
            "cannot save to ",
            "m.safetensors: the file would pass a file-size limit",
            "raise it (ulimit -f)",
        ],
        "a save past the file-size limit",
    );
    let left: Vec<String> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("safetensors"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A run whose model and --metrics log both meet a file-size limit says
/// both in its one error line: the log's failure, said as a warning when
/// it happened, is not lost behind the model's.
#[cfg(target_os = "linux")]
#[test]
fn a_failed_save_also_names_an_incomplete_metrics_log() {
    let t = tempfile::tempdir().unwrap();
    let d = data_dir(t.path());
    let extra = [
        "--hidden",
        "1",
        "--epochs",
        "20",
        "--batch-size",
        "1000",
        "--save",
        "m.safetensors",
        "--metrics",
        "m.jsonl",
    ];
    let mut cmd = command(t.path(), &train_args(d.to_str().unwrap(), &extra));
    // More than the 784-1-10 model's 3,220 bytes of weights (the check
    // before training passes), less than its file of 3.5 kB and than the
    // log's 20 lines (about 4.4 kB), more than its first.
    file_size_limit(&mut cmd, 3_300);
    let o = outcome(&cmd.output().unwrap());
    assert_eq!(o.code, Some(1), "{}", o.stderr);
    let error: Vec<&str> = o.stderr.lines().filter(|l| l.contains("error:")).collect();
    assert_eq!(error.len(), 1, "{}", o.stderr);
    for said in [
        "m.safetensors: the file would pass a file-size limit",
        "(nor is its --metrics log complete: ",
        "m.jsonl holds its epochs up to ",
    ] {
        assert!(error[0].contains(said), "{said:?} not in {}", error[0]);
    }
}

/// `eval > file` that meets a file-size limit (`ulimit -f`) in its last
/// write fails with the limit named, not exit 0 with its table cut short:
/// std holds the unwritten tail for a flush at exit, which drops errors.
#[cfg(target_os = "linux")]
#[test]
fn eval_output_cut_by_a_file_size_limit_is_an_error() {
    let t = tempfile::tempdir().unwrap();
    let d = data_dir(t.path());
    let d = d.to_str().unwrap();
    let trained = run_in(t.path(), &train_args(d, &["--save", "m.safetensors"]));
    assert_eq!(trained.code, Some(0), "{}", trained.stderr);
    let eval = ["eval", "--model", "m.safetensors", "--data", d];
    let whole = run_in(t.path(), &eval);
    assert_eq!(whole.code, Some(0), "{}", whole.stderr);
    // One byte short: every write but the last one's final byte fits.
    let out = t.path().join("out.txt");
    let mut cmd = command(t.path(), &eval);
    cmd.stdout(fs::File::create(&out).unwrap());
    file_size_limit(&mut cmd, whole.stdout.len() as u64 - 1);
    let o = outcome(&cmd.output().unwrap());
    // (A 1-epoch model also gets the note on guessing, before the error.)
    assert_eq!(o.code, Some(1), "{}", o.stderr);
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
    let last = o.stderr.lines().last().unwrap_or("");
    assert_eq!(
        last,
        "simplenn: error: cannot write to standard output: File too large (os error 27); a file-size limit (ulimit -f) stops the write; raise it, or write elsewhere"
    );
    assert_eq!(fs::read(&out).unwrap().len(), whole.stdout.len() - 1);
}

/// A small `RUST_MIN_STACK` in the environment (rayon's pool would take
/// it as its threads' stack size) does not overflow a pool thread's stack.
#[test]
fn a_small_rust_min_stack_does_not_reach_the_pool() {
    let t = tempfile::tempdir().unwrap();
    let d = data_dir(t.path());
    let mut cmd = command(
        t.path(),
        &train_args(d.to_str().unwrap(), &["--no-save", "--threads", "2"]),
    );
    cmd.env("RUST_MIN_STACK", "16384");
    let o = outcome(&cmd.output().unwrap());
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(o.stdout.contains("test accuracy"), "{}", o.stdout);
}

/// A standard output that whoever made the pipe left non-blocking (Node's
/// `child_process`, some CI runners) says EAGAIN while its reader is
/// behind: `plot -o -` waits for room, as on a blocking pipe, instead of
/// failing with "Resource temporarily unavailable" part way.
#[cfg(target_os = "linux")]
#[test]
fn a_non_blocking_stdout_pipe_is_waited_for() {
    use std::io::Read;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let t = tempfile::tempdir().unwrap();
    let d = data_dir(t.path());
    let trained = run_in(
        t.path(),
        &train_args(d.to_str().unwrap(), &["--no-save", "--metrics", "m.jsonl"]),
    );
    assert_eq!(trained.code, Some(0), "{}", trained.stderr);
    let whole = run_in(t.path(), &["plot", "m.jsonl", "-o", "-"]);
    assert_eq!(whole.code, Some(0), "{}", whole.stderr);
    assert!(whole.stdout.len() > 8192, "{} bytes", whole.stdout.len());
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: pipe(2) just opened both, and nothing else owns them.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl(2) on a descriptor this test owns, with integer arguments.
    unsafe {
        libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, 4096);
        let flags = libc::fcntl(w.as_raw_fd(), libc::F_GETFL);
        assert_eq!(
            libc::fcntl(w.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK),
            0
        );
    }
    let mut cmd = command(t.path(), &["plot", "m.jsonl", "-o", "-"]);
    cmd.stdout(w).stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    // The parent's write end closes with `cmd`, so the read ends with the child.
    drop(cmd);
    // A reader that is behind: nothing is read until the pipe is full, so
    // the child's next write meets EAGAIN (its output is twice the pipe).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let mut queued: libc::c_int = 0;
        // SAFETY: FIONREAD writes one c_int, through a pointer to `queued`.
        assert_eq!(
            unsafe { libc::ioctl(r.as_raw_fd(), libc::FIONREAD, &mut queued) },
            0
        );
        if queued >= 4096 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the pipe never filled: {queued} bytes"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // And a moment in which the child waits on the full pipe.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut got = Vec::new();
    fs::File::from(r).read_to_end(&mut got).unwrap();
    let o = outcome(&child.wait_with_output().unwrap());
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(String::from_utf8_lossy(&got), whole.stdout);
}

/// Under a memory limit (`ulimit -v`) too low for the run, whatever fails
/// first (a data file's map, the thread pool, the estimate before
/// training, or an allocation the estimate could not foresee) ends the
/// run with one error line and status 1 or 2: never Rust's "memory
/// allocation of N bytes failed" and an abort. The limits scanned run from
/// one the run fits in down to where the process can no longer start
/// (there the loader or glibc fail in their own words, before or beside
/// simplenn's code, and those runs are not judged); an allocation's own
/// failure must be among what they meet.
#[cfg(target_os = "linux")]
#[test]
fn a_memory_limit_gives_one_line_whatever_runs_out_first() {
    let t = tempfile::tempdir().unwrap();
    let data = common::synthetic(&t.path().join("d"), 4, 3, 0, [300, 50]);
    let run = |kb: u64| {
        let script = format!(
            "ulimit -v {kb} && exec \"$0\" --data \"$1\" --hidden 8 --epochs 1 --val 50 --no-progress --no-save"
        );
        std::process::Command::new("sh")
            .args(["-c", &script, env!("CARGO_BIN_EXE_simplenn")])
            .arg(&data)
            .output()
            .unwrap()
    };
    // Down from where the run fits (a debug build maps more than a
    // release one) in coarse steps, then finely from a little above.
    let mut kb = 512_000;
    while kb > 8_000 && run(kb).status.success() {
        kb -= 8_000;
    }
    kb += 8_000;
    let mut allocation_failed = false;
    while kb > 2_000 {
        let o = run(kb);
        // Without the debug build's warning.
        let err = common::error_lines(&o).join("\n");
        assert!(
            !err.contains("memory allocation of"),
            "ulimit -v {kb}: {err}"
        );
        // A panic of simplenn's code (the runtime's own, before main, when
        // it cannot map a signal stack, is of the runtime's source).
        assert!(!err.contains("panicked at src/"), "ulimit -v {kb}: {err}");
        assert!(
            !err.contains("panicked at vendor/"),
            "ulimit -v {kb}: {err}"
        );
        if !o.status.success() && err.starts_with("simplenn: ") {
            assert!(
                matches!(o.status.code(), Some(1 | 2)),
                "ulimit -v {kb}: {:?}: {err}",
                o.status
            );
            assert_eq!(err.lines().count(), 1, "ulimit -v {kb}: {err}");
            assert!(
                err.starts_with("simplenn: error: "),
                "ulimit -v {kb}: {err}"
            );
            allocation_failed |= err.contains("out of memory: an allocation failed");
        }
        kb -= 500;
    }
    assert!(
        allocation_failed,
        "no limit down to {kb} KB made an allocation fail"
    );
}

/// A `--save` target marked immutable (`chattr +i`), which no rename can
/// replace even for root, is refused before training, exit 2. Skipped
/// (said on stderr) where `chattr` cannot set the mark: not root, or a
/// file system without such attributes.
#[cfg(target_os = "linux")]
#[test]
fn an_immutable_save_target_is_refused_before_training() {
    let t = tempfile::tempdir().unwrap();
    let data = common::synthetic(&t.path().join("d"), 4, 3, 0, [200, 30]);
    let target = t.path().join("m.safetensors");
    fs::write(&target, b"").unwrap();
    let chattr = |mark: &str| {
        Command::new("chattr")
            .arg(mark)
            .arg(&target)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !chattr("+i") {
        common::skipped(
            "an_immutable_save_target_is_refused_before_training",
            "chattr +i is not possible here",
        );
        return;
    }
    let o = common::tiny_run(&data, &target);
    // Cleared before any assertion, or the directory could not be removed.
    assert!(chattr("-i"));
    let err = common::error_lines(&o);
    assert_eq!(o.status.code(), Some(2), "{err:?}");
    assert!(
        err[0].contains("is marked immutable and no save can replace it"),
        "{err:?}"
    );
    assert!(common::stdout(&o).is_empty(), "trained first");
}

/// A `--resume` file marked immutable or append-only, which the run's
/// checkpoints would replace, is refused before training, exit 2, with
/// `--checkpoint` as the way out (it trained to its end and then failed,
/// exit 1). Skipped (said on stderr) where `chattr` cannot set the mark.
#[cfg(target_os = "linux")]
#[test]
fn an_immutable_resume_file_is_refused_before_training() {
    let t = tempfile::tempdir().unwrap();
    let data = common::synthetic(&t.path().join("d"), 4, 3, 0, [200, 30]);
    let ck = t.path().join("ck.safetensors");
    let run = |extra: &[&str]| {
        let mut args = common::tiny_args(&data, &t.path().join("m.safetensors"));
        let epochs = args.iter().position(|a| a == "--epochs").unwrap();
        args[epochs + 1] = "2".into();
        args.extend(extra.iter().map(|s| s.to_string()));
        common::simplenn(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let ck_arg = ck.to_str().unwrap();
    let o = run(&["--stop-after", "1", "--checkpoint", ck_arg]);
    assert!(o.status.success(), "{:?}", common::error_lines(&o));
    let chattr = |mark: &str| {
        Command::new("chattr")
            .arg(mark)
            .arg(&ck)
            .status()
            .is_ok_and(|s| s.success())
    };
    for (mark, name) in [("i", "immutable"), ("a", "append-only")] {
        if !chattr(&format!("+{mark}")) {
            common::skipped(
                "an_immutable_resume_file_is_refused_before_training",
                &format!("chattr +{mark} is not possible here"),
            );
            return;
        }
        let o = run(&["--resume", ck_arg]);
        let elsewhere = run(&["--resume", ck_arg, "--checkpoint", "/dev/null/x"]);
        // Cleared before any assertion, or the directory could not be removed.
        assert!(chattr(&format!("-{mark}")));
        let err = common::error_lines(&o);
        assert_eq!(o.status.code(), Some(2), "{err:?}");
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(
            err[0].contains(&format!("--resume {ck_arg}: that file is marked {name} and no save can replace it; clear the mark (chattr -{mark}) first, or give --checkpoint PATH for this run's checkpoints")),
            "{err:?}"
        );
        assert!(common::stdout(&o).is_empty(), "trained first");
        // With its checkpoints elsewhere, the mark is no matter (here the
        // other place is refused in its own words).
        let err = common::error_lines(&elsewhere);
        assert!(
            err.len() == 1 && err[0].contains("--checkpoint") && !err[0].contains("marked"),
            "{err:?}"
        );
    }
}

/// A file bind-mounted onto the `--save` path (a container's `-v
/// file:path`) cannot be renamed over (EBUSY): refused before training.
/// Skipped where no user and mount namespace can be made (`unshare`
/// missing, or user namespaces turned off).
#[cfg(target_os = "linux")]
#[test]
fn a_bind_mounted_save_target_is_refused_before_training() {
    let t = tempfile::tempdir().unwrap();
    let data = common::synthetic(&t.path().join("d"), 4, 3, 0, [200, 30]);
    let (source, target) = (t.path().join("outside"), t.path().join("m.safetensors"));
    fs::write(&source, b"").unwrap();
    fs::write(&target, b"").unwrap();
    // The mount is made in a mount namespace of its own (`unshare -m`, as
    // a user namespace's root, `-U -r`: no privilege needed), seen only by
    // the run exec'd inside it and gone when it ends. Write-only and, where
    // the tests run as root, owned by `nobody`, whom the namespace does not
    // map (so its root cannot read it either): the check must not lean on
    // opening the file, as it once did.
    use std::os::unix::fs::PermissionsExt;
    let _ = std::os::unix::fs::chown(&source, Some(65534), Some(65534));
    fs::set_permissions(&source, fs::Permissions::from_mode(0o200)).unwrap();
    let script = r#"mount --bind "$1" "$2" || exit 99; shift 2; exec "$@""#;
    let o = Command::new("unshare")
        .args(["-Urm", "sh", "-c", script, "sh"])
        .args([&source, &target])
        .arg(env!("CARGO_BIN_EXE_simplenn"))
        .args(common::tiny_args(&data, &target))
        .output();
    let o = match o {
        Ok(o) if o.status.code() != Some(99) && !common::stderr(&o).starts_with("unshare:") => o,
        _ => {
            common::skipped(
                "a_bind_mounted_save_target_is_refused_before_training",
                "no mount namespace can be made here (unshare -Urm)",
            );
            return;
        }
    };
    let err = common::error_lines(&o);
    assert_eq!(o.status.code(), Some(2), "{err:?}");
    assert!(
        err[0].contains(
            "is a mount point (one file bind-mounted there), which a save cannot replace"
        ),
        "{err:?}"
    );
    assert!(common::stdout(&o).is_empty(), "trained first");
}

/// `simplenn ARGS FILE --data DATA --threads 1` under `ulimit -v KB`.
#[cfg(target_os = "linux")]
fn under_ulimit(kb: u64, args: &[&str], file: &Path, data: &Path) -> std::process::Output {
    let script = format!(
        "ulimit -v {kb} && exec \"$0\" {} \"$1\" --data \"$2\" --threads 1",
        args.join(" ")
    );
    Command::new("sh")
        .args(["-c", &script, BIN])
        .arg(file)
        .arg(data)
        .output()
        .unwrap()
}

/// [`under_ulimit`] at each limit of `kbs`: the limits it succeeded under,
/// and each refusal's limit and error line. A refusal must be one line and
/// exit status 1 (memory short while a model or checkpoint is read or
/// resumed is a run-time failure, whichever estimate says so), or the
/// test fails.
#[cfg(target_os = "linux")]
fn scan_ulimits(
    kbs: impl Iterator<Item = u64>,
    args: &[&str],
    file: &Path,
    data: &Path,
) -> (Vec<u64>, Vec<(u64, String)>) {
    let (mut succeeded, mut refused) = (Vec::new(), Vec::new());
    for kb in kbs {
        let o = under_ulimit(kb, args, file, data);
        if o.status.success() {
            succeeded.push(kb);
            continue;
        }
        let mut err = common::error_lines(&o);
        assert_eq!(err.len(), 1, "ulimit -v {kb}: {err:?}");
        assert_eq!(o.status.code(), Some(1), "ulimit -v {kb}: {err:?}");
        refused.push((kb, err.remove(0)));
    }
    (succeeded, refused)
}

/// A model too large to load in the memory left (`ulimit -v`) is refused
/// before it is read, with the size loading takes (about three times the
/// file: its bytes, then each slab in the file's layout and in the
/// trainer's), not read up to an allocation that fails: at every limit
/// scanned `eval` either answers or says so in one line. (The check used
/// to compare the file's size alone, and a 52 MB model under limits a
/// little above it ran out of memory in the middle of loading.)
#[cfg(target_os = "linux")]
#[test]
fn a_model_too_large_for_the_memory_left_is_refused_before_reading() {
    use simplenn::model::{Dims, Init, Params};
    let t = tempfile::tempdir().unwrap();
    let data = common::small_mnist(&t.path().join("d"), 20, 10);
    let model = t.path().join("wide.safetensors");
    // 784-16384-10: 13.0 M parameters, 52 MB.
    let p = Params::init(Dims::mnist(&[16384]), Init::Normal(1e-3), 1);
    simplenn::modelfile::save_model(&model, &p, (28, 28), None).unwrap();
    let kbs = (100_000..=400_000).step_by(20_000);
    let (answered, refused) = scan_ulimits(kbs, &["eval", "--model"], &model, &data);
    for (kb, err) in &refused {
        assert!(
            err.contains("wide.safetensors: loading its 0.05 GB takes about 0.16 GB of memory, more than the ")
                && err.ends_with(" GB available (all that ulimit -v leaves); raise the limit, or use a smaller model"),
            "ulimit -v {kb}: {err}"
        );
    }
    assert!(
        !refused.is_empty() && !answered.is_empty(),
        "{} refused, {} answered",
        refused.len(),
        answered.len()
    );
}

/// A checkpoint given where a model is asked for (`eval --model`) is
/// counted as what loading it takes, its bytes and its model slab twice,
/// not three times the file (which holds Adam's two slabs too): under
/// limits that three times would refuse, it is evaluated, and where it is
/// refused, the size said is that estimate, in one line.
#[cfg(target_os = "linux")]
#[test]
fn a_checkpoint_as_a_model_is_counted_by_its_model_slab() {
    use simplenn::model::{Dims, Init, Params};
    use simplenn::modelfile::{to_bytes, EXP_AVG, EXP_AVG_SQ};
    let t = tempfile::tempdir().unwrap();
    let data = common::small_mnist(&t.path().join("d"), 20, 10);
    let ck = t.path().join("ck.safetensors");
    // 784-16384-10, 52 MB a slab, three slabs: a 157 MB file.
    let p = Params::init(Dims::mnist(&[16384]), Init::Normal(1e-3), 1);
    let bytes = to_bytes(&p, &[(EXP_AVG, &p), (EXP_AVG_SQ, &p)], []);
    let file_len = bytes.len() as u64;
    std::fs::write(&ck, bytes).unwrap();
    let kbs = (200_000..=440_000).step_by(20_000);
    let (answered, refused) = scan_ulimits(kbs, &["eval", "--model"], &ck, &data);
    for (kb, err) in &refused {
        assert!(
            err.contains(
                "ck.safetensors: loading its 0.16 GB takes about 0.26 GB of memory, more than the "
            ),
            "ulimit -v {kb}: {err}"
        );
    }
    let below_three = answered
        .iter()
        .filter(|&&kb| kb * 1024 < 3 * file_len)
        .count();
    assert!(
        !refused.is_empty() && below_three > 0,
        "{} refused, {below_three} answered under three times the file",
        refused.len()
    );
}

/// `--resume` under every memory limit scanned either resumes or refuses in
/// one line, by what loading the checkpoint takes or by what the run
/// takes, never by an allocation failing half way: the read's estimate
/// (the file, every slab once, the model slab once more) is what loading
/// holds at most. (The model slab was read twice over, the first copy kept
/// while the second was made, and limits a little above the estimate ran
/// out of memory.)
#[cfg(target_os = "linux")]
#[test]
fn resuming_under_a_memory_limit_is_refused_in_one_line_by_its_estimates() {
    let t = tempfile::tempdir().unwrap();
    let data = common::small_mnist(&t.path().join("d"), 200, 20);
    let ck = t.path().join("ck.safetensors");
    // 784-16384-10 with Adam's two slabs: a 156 MB checkpoint.
    let o = common::simplenn(&[
        "--data",
        data.to_str().unwrap(),
        "--hidden",
        "16384",
        "--optimizer",
        "adam",
        "--epochs",
        "1",
        "--val",
        "20",
        "--threads",
        "2",
        "--no-progress",
        "--no-save",
        "--checkpoint",
        ck.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    // Under a high enough limit the run is complete, nothing to train.
    let kbs = (300_000..=600_000).step_by(10_000);
    let args = ["--no-save", "--no-progress", "--resume"];
    let (_, refused) = scan_ulimits(kbs, &args, &ck, &data);
    let (mut read_refused, mut run_refused) = (0, 0);
    for (kb, err) in &refused {
        if err.contains("ck.safetensors: loading its 0.156 GB takes about 0.365 GB of memory")
            || err.contains("ck.safetensors: loading its 0.16 GB takes about 0.36 GB of memory")
        {
            read_refused += 1;
        } else {
            assert!(
                err.contains("resuming: the checkpoint's network 784-16384-10 needs "),
                "ulimit -v {kb}: {err}"
            );
            run_refused += 1;
        }
    }
    assert!(
        read_refused > 0 && run_refused > 0,
        "{read_refused} refused reading, {run_refused} refused running"
    );
}

/// Under an open-file limit (`ulimit -n`) each run trains or fails in one
/// line that names the limit, never blaming the file it could not open:
/// MD5SUMS, the first file a run opens, was said to need fixing.
#[cfg(target_os = "linux")]
#[test]
fn an_open_file_limit_is_named_not_blamed_on_a_file() {
    let t = tempfile::tempdir().unwrap();
    let data = common::small_mnist(&t.path().join("d"), 60, 20);
    fs::write(data.join("MD5SUMS"), "# nothing listed\n").unwrap();
    let (mut trained, mut failed) = (0, Vec::new());
    for n in 3..=16 {
        let script = format!(
            "ulimit -n {n} && exec \"$0\" --data \"$1\" --epochs 1 --val 10 --batch-size 10 --hidden 8 --threads 1 --no-save --no-progress"
        );
        let o = Command::new("sh")
            .args(["-c", &script, BIN])
            .arg(&data)
            .output()
            .unwrap();
        if o.status.success() {
            trained += 1;
            continue;
        }
        // Too few for the loader to start the program (README: it says
        // so in its own words).
        if common::stderr(&o).contains("error while loading shared libraries") {
            continue;
        }
        let err = common::error_lines(&o);
        assert_eq!(err.len(), 1, "ulimit -n {n}: {err:?}");
        assert_eq!(o.status.code(), Some(1), "ulimit -n {n}: {err:?}");
        assert!(
            err[0].contains("(ulimit -n); raise that limit") && !err[0].contains("fix "),
            "ulimit -n {n}: {}",
            err[0]
        );
        failed.push((n, err.into_iter().next().unwrap()));
    }
    assert!(trained > 0, "{failed:?}");
    assert!(
        failed.iter().any(|(_, e)| e.contains("MD5SUMS")),
        "{failed:?}"
    );
}

/// Under a small stack limit (`ulimit -s 64`: 64 KiB) a run on `.gz`
/// data and a `predict` of a PNG work: both aborted with "stack
/// overflow" (status 134), decompressing on a main thread whose stack is
/// the limit's. The command now runs on a thread of its own stack size.
#[cfg(target_os = "linux")]
#[test]
fn a_small_stack_limit_is_not_an_abort() {
    let t = tempfile::tempdir().unwrap();
    let data = common::small_mnist(&t.path().join("d"), 60, 20);
    for name in [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS] {
        let raw = fs::read(data.join(name)).unwrap();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, &raw).unwrap();
        fs::write(data.join(format!("{name}.gz")), enc.finish().unwrap()).unwrap();
        fs::remove_file(data.join(name)).unwrap();
    }
    let img = image::GrayImage::from_fn(28, 28, |x, y| {
        image::Luma([if (11..17).contains(&x) && (5..23).contains(&y) {
            255
        } else {
            0
        }])
    });
    img.save(t.path().join("one.png")).unwrap();
    let limited = |args: &str| {
        let o = Command::new("sh")
            .args(["-c", &format!("ulimit -s 64 && exec \"$0\" {args}"), BIN])
            .current_dir(t.path())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "ulimit -s 64, {args}: {:?} {}",
            o.status,
            common::stderr(&o)
        );
        common::stdout(&o)
    };
    let out = limited("--data d --epochs 1 --val 10 --batch-size 10 --hidden 8 --threads 1 --no-progress --save m.st");
    assert!(out.contains("test accuracy"), "{out}");
    let out = limited("predict --model m.st one.png");
    assert!(out.contains("one.png"), "{out}");
}

/// A flag value that is not UTF-8 is named with its flag, its bytes
/// written as the shell's `$'…'` would take them; clap said only "invalid
/// UTF-8 was detected in one or more arguments".
#[cfg(unix)]
#[test]
fn a_value_that_is_not_utf8_is_named_with_its_flag() {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;
    let arg = |b: &[u8]| OsString::from_vec(b.to_vec());
    for (args, says) in [
        (
            vec![arg(b"--hidden"), arg(b"1\xff")],
            "simplenn: error: the value of --hidden ($'1\\xff') is not UTF-8 text; type it as plain text (see --help)",
        ),
        (
            vec![arg(b"--lr=\x1b\xfe'\\")],
            "simplenn: error: the value of --lr ($'\\x1b\\xfe\\'\\\\') is not UTF-8 text",
        ),
        (
            vec![arg(b"serve"), arg(b"--host"), arg(b"\xff")],
            "simplenn: error: the value of --host ($'\\xff') is not UTF-8 text",
        ),
    ] {
        let o = Command::new(BIN).args(&args).output().unwrap();
        let err = common::error_lines(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err:?}");
        assert!(err.len() == 1 && err[0].starts_with(says), "{args:?}: {err:?}");
    }
}

/// A model this user may not read, or one under a directory it may not
/// enter, and a save where it may not write, are named with the fix for
/// each. Root reads and writes anything, so as root the binary runs as
/// `nobody` (setpriv, from util-linux).
#[cfg(target_os = "linux")]
#[test]
fn files_the_user_may_not_read_or_write_name_the_permission_missing() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let mode = |p: &Path, m: u32| fs::set_permissions(p, fs::Permissions::from_mode(m));
    mode(t.path(), 0o755).unwrap();
    let (shut, open) = (t.path().join("shut"), t.path().join("open"));
    // No one but root may enter `shut`, read either model or write in `open`.
    for (dir, dir_mode) in [(&shut, 0o000), (&open, 0o555)] {
        fs::create_dir(dir).unwrap();
        fs::write(dir.join("m.safetensors"), "x").unwrap();
        mode(&dir.join("m.safetensors"), 0o000).unwrap();
        mode(dir, dir_mode).unwrap();
    }
    let root = rustix::process::geteuid().is_root();
    // A copy `nobody` may run wherever the build is (a clone under /root).
    let bin = t.path().join("simplenn");
    if root {
        fs::copy(BIN, &bin).unwrap();
        mode(&bin, 0o755).unwrap();
    }
    data_dir(t.path());
    // And a save into a directory the user may not write in, refused
    // before training (not as a special file system such as /proc).
    for (args, says) in [
        (
            &["eval", "--model", "shut/m.safetensors"][..],
            "cannot read model shut/m.safetensors: permission denied on a directory in its path; make the directories readable and searchable (chmod a+rx)",
        ),
        (
            &["eval", "--model", "open/m.safetensors"],
            "cannot read model open/m.safetensors: permission denied; make it readable (chmod a+r)",
        ),
        (
            &train_args("data", &["--save", "open/new.safetensors"]),
            "--save: cannot save to open/new.safetensors: cannot write in open (Permission denied (os error 13)); choose a writable directory",
        ),
    ] {
        let mut cmd = match root {
            true => {
                let mut c = Command::new("setpriv");
                c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                    .arg(&bin);
                c
            }
            false => Command::new(BIN),
        };
        cmd.args(args).current_dir(t.path());
        let o = outcome(&cmd.output().expect("the binary runs"));
        assert_refused(&o, 1, &[says], &args.join(" "));
    }
    // So that the temporary directory can be removed by its owner.
    for dir in [&shut, &open] {
        mode(dir, 0o755).unwrap();
    }
}

/// A model read from a pipe whose header describes more than memory holds
/// is refused from the header, before the rest is read (a file's length
/// is known up front; a pipe's only from its header).
#[test]
fn a_piped_model_too_large_for_memory_is_refused_from_its_header() {
    use std::io::Write;
    let t = tempfile::tempdir().unwrap();
    let json = r#"{"0.weight":{"dtype":"F32","shape":[1000000,1000000],"data_offsets":[0,4000000000000]}}"#;
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(json.as_bytes());
    let mut child = command(t.path(), &["eval", "--model", "/dev/stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    // The pipe closes after the header: a reader that went on for the
    // 4 TB it promises would find it cut short instead.
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(&bytes);
    drop(stdin);
    let o = outcome(&child.wait_with_output().unwrap());
    assert_refused(
        &o,
        1,
        &["cannot read model /dev/stdin: loading its 4000.00 GB takes about 12000.00 GB of memory, more than the "],
        "a 4 TB model through a pipe",
    );
}

/// A labels file rewritten in place while a run reads it (`cp` over it):
/// the map shows the new bytes, whose labels were never checked against the
/// class count. The run ends with one line naming the file, status 1, as a
/// file cut short (SIGBUS) does: not an index out of bounds in the loss.
/// The training labels are read by the shuffled gather, the test labels by
/// the per-epoch scoring's ranges.
#[test]
fn a_labels_file_rewritten_during_a_run_is_one_line() {
    use std::io::{BufRead, Seek, Write};
    for (file, extra) in [
        (TRAIN_LABELS, None),
        (TEST_LABELS, Some("--test-every-epoch")),
    ] {
        let t = tempfile::tempdir().unwrap();
        let data = common::synthetic(&t.path().join("d"), 4, 3, 0, [100, 20]);
        let mut args = vec![
            "--data",
            data.to_str().unwrap(),
            "--hidden",
            "4",
            "--batch-size",
            "10",
            "--val",
            "10",
            "--epochs",
            "1000000",
            "--threads",
            "2",
            "--no-save",
            "--no-progress",
        ];
        args.extend(extra);
        let mut child = command(t.path(), &args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Drained on a thread: the run prints an epoch line every few
        // milliseconds until it reads the new labels.
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let drain = std::thread::spawn(move || {
            let mut epochs = 0;
            for line in std::io::BufReader::new(stdout).lines() {
                epochs += line.is_ok_and(|l| l.starts_with("epoch ")) as usize;
                if epochs == 2 {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(std::time::Duration::from_secs(60))
            .expect("the run reaches epoch 2");
        let labels = data.join(file);
        let mut f = fs::OpenOptions::new().write(true).open(&labels).unwrap();
        f.seek(std::io::SeekFrom::Start(8)).unwrap();
        f.write_all(&[200; 20]).unwrap();
        drop(f);
        let out = common::exited_within(
            child,
            60,
            &format!("{file}: the run went on past the rewrite"),
        );
        drain.join().unwrap();
        let lines: Vec<String> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| !l.contains("debug build"))
            .map(str::to_owned)
            .collect();
        assert_eq!(out.status.code(), Some(1), "{file}: {lines:?}");
        assert_eq!(lines.len(), 1, "{file}: {lines:?}");
        let err = &lines[0];
        let want = format!(
            "simplenn: error: {}: the data file changed while simplenn read it (image ",
            labels.display()
        );
        assert!(err.starts_with(&want), "{file}: {err}");
        assert!(
            err.contains("'s label is now 200, above the largest, 2, it held when opened"),
            "{file}: {err}"
        );
    }
}
