//! The IDX loader on files the tests write: good files load; every kind of
//! damage is refused with a message naming the file and the problem.

mod common;

use std::fs;
use std::io::Write;
use std::path::Path;

use simplenn::data::{Dataset, Mnist, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use simplenn::idx::write_idx;

fn header(dims: &[u32]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v
}

/// A labels file's bytes: its header, then `l`.
fn labels(l: &[u8]) -> Vec<u8> {
    let mut v = header(&[l.len() as u32]);
    v.extend(l);
    v
}

/// Four good files: 3 training images, 2 test images.
fn good_dir(dir: &Path) {
    let img = |n: usize| (0..n * 784).map(|i| (i % 251) as u8).collect::<Vec<_>>();
    write_idx(&dir.join(TRAIN_IMAGES), &[3, 28, 28], &img(3)).unwrap();
    write_idx(&dir.join(TRAIN_LABELS), &[3], &[1, 2, 9]).unwrap();
    write_idx(&dir.join(TEST_IMAGES), &[2, 28, 28], &img(2)).unwrap();
    write_idx(&dir.join(TEST_LABELS), &[2], &[0, 7]).unwrap();
}

/// One gzip member per part, one after the other (`cat a.gz b.gz`).
fn gzip(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(p).unwrap();
        out.extend(enc.finish().unwrap());
    }
    out
}

fn open_err(dir: &Path) -> String {
    match Mnist::open(dir) {
        Ok(_) => panic!("{} opened", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn good_files_load() {
    let t = tempfile::tempdir().unwrap();
    good_dir(t.path());
    let m = Mnist::open(t.path()).unwrap();
    assert_eq!((m.train.len(), m.test.len()), (3, 2));
    assert!(!m.train.is_empty() && !m.test.is_empty());
    assert_eq!(m.train.label(2), 9);
    assert_eq!(m.train.image(1)[0], (784 % 251) as u8);
}

#[test]
fn missing_directory_and_files() {
    let t = tempfile::tempdir().unwrap();
    let e = open_err(&t.path().join("nope"));
    assert!(e.contains("nope") && e.contains("--data"), "{e}");
    good_dir(t.path());
    fs::remove_file(t.path().join(TEST_LABELS)).unwrap();
    let e = open_err(t.path());
    assert!(e.contains(TEST_LABELS) && e.contains("not found"), "{e}");
}

/// Where a control character is in the directory's name or in a file's,
/// the error cannot give a command to paste (its line shows the character
/// escaped), so it says to link or rename the files instead: either alone
/// is enough.
#[test]
fn no_link_command_where_a_name_has_a_control_character() {
    let t = tempfile::tempdir().unwrap();
    for (dir, other) in [
        ("plain", "my\u{1}train-images-idx3-ubyte"),
        ("ctl\u{1}dir", "emnist-train-images-idx3-ubyte"),
    ] {
        let dir = t.path().join(dir);
        fs::create_dir(&dir).unwrap();
        good_dir(&dir);
        fs::rename(dir.join(TRAIN_IMAGES), dir.join(other)).unwrap();
        let e = open_err(&dir);
        assert!(
            e.ends_with("but has files by other names that look like them: simplenn reads the MNIST names; link or rename the files to them"),
            "{e}"
        );
    }
    // Nor where the directory's name is not UTF-8: the line shows U+FFFD
    // for the byte, and a `cd` to that name would fail.
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let dir = t.path().join(std::ffi::OsStr::from_bytes(b"nu\xffdir"));
        fs::create_dir(&dir).unwrap();
        good_dir(&dir);
        fs::rename(
            dir.join(TRAIN_IMAGES),
            dir.join("emnist-train-images-idx3-ubyte"),
        )
        .unwrap();
        let e = open_err(&dir);
        assert!(
            e.ends_with("but has files by other names that look like them: simplenn reads the MNIST names; link or rename the files to them"),
            "{e}"
        );
    }
}

/// A data set under other names (EMNIST's, Kaggle's, upper case) gets the
/// links to make, and the links it names work; where several files could
/// be one, they are listed.
#[test]
fn files_under_other_names_are_named_with_the_links_to_make() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("my emnist");
    fs::create_dir(&dir).unwrap();
    good_dir(&dir);
    let renamed = [
        (TRAIN_IMAGES, "emnist-letters-train-images-idx3-ubyte"),
        (TRAIN_LABELS, "emnist-letters-train-labels-idx1-ubyte"),
        (TEST_IMAGES, "emnist-letters-test-images-idx3-ubyte.gz"),
        (TEST_LABELS, "T10K-LABELS.IDX1-UBYTE"),
    ];
    for (name, other) in renamed {
        let bytes = fs::read(dir.join(name)).unwrap();
        let bytes = match other.ends_with(".gz") {
            true => gzip(&[&bytes]),
            false => bytes,
        };
        fs::write(dir.join(other), bytes).unwrap();
        fs::remove_file(dir.join(name)).unwrap();
    }
    let e = open_err(&dir);
    let links = "(cd 'DIR' && ln -s emnist-letters-train-images-idx3-ubyte train-images-idx3-ubyte && ln -s emnist-letters-train-labels-idx1-ubyte train-labels-idx1-ubyte && ln -s emnist-letters-test-images-idx3-ubyte.gz t10k-images-idx3-ubyte.gz && ln -s T10K-LABELS.IDX1-UBYTE t10k-labels-idx1-ubyte)";
    let links = links.replace("DIR", &dir.display().to_string());
    assert!(
        e.contains("has no train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (nor .gz), but has files by other names that look like them: simplenn reads the MNIST names; link them ")
            && e.ends_with(&links),
        "{e}"
    );
    let sh = std::process::Command::new("sh")
        .arg("-c")
        .arg(&links[1..links.len() - 1])
        .status()
        .unwrap();
    assert!(sh.success());
    let m = Mnist::open(&dir).unwrap();
    assert_eq!((m.train.len(), m.test.len(), m.test.label(1)), (3, 2, 7));

    // Two splits in one folder, as EMNIST ships them: both are listed.
    let two = t.path().join("two");
    fs::create_dir(&two).unwrap();
    good_dir(&two);
    for split in ["letters", "digits"] {
        fs::copy(
            two.join(TRAIN_IMAGES),
            two.join(format!("emnist-{split}-train-images-idx3-ubyte.gz")),
        )
        .unwrap();
    }
    fs::remove_file(two.join(TRAIN_IMAGES)).unwrap();
    let e = open_err(&two);
    assert!(
        e.contains("several files could be each (train-images-idx3-ubyte: emnist-digits-train-images-idx3-ubyte.gz, emnist-letters-train-images-idx3-ubyte.gz)")
            && e.ends_with("ln -s FILE train-images-idx3-ubyte.gz"),
        "{e}"
    );
    // A file beside its own archive (`gunzip -k`) is one candidate, not
    // two: the link is to the file.
    fs::copy(
        two.join(TRAIN_LABELS),
        two.join("emnist-letters-train-labels-idx1-ubyte"),
    )
    .unwrap();
    fs::write(
        two.join("emnist-letters-train-labels-idx1-ubyte.gz"),
        gzip(&[&fs::read(two.join(TRAIN_LABELS)).unwrap()]),
    )
    .unwrap();
    fs::remove_file(two.join(TRAIN_LABELS)).unwrap();
    let e = open_err(&two);
    assert!(
        e.contains("several files could be each (train-images-idx3-ubyte: emnist-digits-train-images-idx3-ubyte.gz, emnist-letters-train-images-idx3-ubyte.gz): link"),
        "{e}"
    );
    fs::remove_file(two.join("emnist-digits-train-images-idx3-ubyte.gz")).unwrap();
    let e = open_err(&two);
    assert!(
        e.ends_with("link them (cd DIR && ln -s emnist-letters-train-images-idx3-ubyte.gz train-images-idx3-ubyte.gz && ln -s emnist-letters-train-labels-idx1-ubyte train-labels-idx1-ubyte)".replace("DIR", &two.display().to_string()).as_str()),
        "{e}"
    );
    fs::copy(
        two.join("emnist-letters-train-images-idx3-ubyte.gz"),
        two.join("emnist-digits-train-images-idx3-ubyte.gz"),
    )
    .unwrap();
    fs::rename(
        two.join("emnist-letters-train-labels-idx1-ubyte"),
        two.join(TRAIN_LABELS),
    )
    .unwrap();
    fs::remove_file(two.join("emnist-letters-train-labels-idx1-ubyte.gz")).unwrap();
    // Nothing like the missing file: the plain error.
    fs::remove_file(two.join("emnist-digits-train-images-idx3-ubyte.gz")).unwrap();
    fs::remove_file(two.join("emnist-letters-train-images-idx3-ubyte.gz")).unwrap();
    let e = open_err(&two);
    assert!(e.contains("train-images-idx3-ubyte not found"), "{e}");
}

#[test]
fn truncated_files() {
    let t = tempfile::tempdir().unwrap();
    good_dir(t.path());
    let p = t.path().join(TRAIN_IMAGES);
    let bytes = fs::read(&p).unwrap();
    for cut in [0, 3, 10, 16, bytes.len() - 1] {
        fs::write(&p, &bytes[..cut]).unwrap();
        let e = open_err(t.path());
        assert!(e.contains(TRAIN_IMAGES), "cut {cut}: {e}");
        assert!(e.contains("bytes"), "cut {cut}: {e}");
    }
}

#[test]
fn wrong_magic_and_dims() {
    let t = tempfile::tempdir().unwrap();
    good_dir(t.path());
    let p = t.path().join(TRAIN_LABELS);
    // An image file where labels belong.
    let mut f = header(&[3, 28, 28]);
    f.extend(vec![0; 3 * 784]);
    fs::write(&p, &f).unwrap();
    let e = open_err(t.path());
    assert!(
        e.contains(TRAIN_LABELS) && e.contains("3 dimensions"),
        "{e}"
    );
    // Train and test images of different sizes.
    good_dir(t.path());
    write_idx(&t.path().join(TRAIN_IMAGES), &[3, 20, 20], &[0; 1200]).unwrap();
    let e = open_err(t.path());
    assert!(
        e.contains(TRAIN_IMAGES) && e.contains("20 × 20") && e.contains("28 × 28"),
        "{e}"
    );
    // Images of no pixels.
    write_idx(&t.path().join(TRAIN_IMAGES), &[3, 0, 5], &[]).unwrap();
    let e = open_err(t.path());
    assert!(
        e.contains(TRAIN_IMAGES) && e.contains("rows, cols ≥ 1"),
        "{e}"
    );
    // Garbage.
    fs::write(
        t.path().join(TRAIN_IMAGES),
        b"hello, this is not an IDX file at all",
    )
    .unwrap();
    let e = open_err(t.path());
    assert!(e.contains("magic"), "{e}");
    // An IDX file of floats: IDX, but not of the one type read.
    let mut floats = vec![0, 0, 0x0d, 3];
    for d in [3u32, 28, 28] {
        floats.extend(d.to_be_bytes());
    }
    floats.extend(vec![0; 4 * 3 * 784]);
    fs::write(t.path().join(TRAIN_IMAGES), floats).unwrap();
    let e = open_err(t.path());
    assert!(
        e.contains(TRAIN_IMAGES)
            && e.contains(
                "an IDX file of 32-bit floats, not of unsigned bytes (type 0x0d, not 0x08)"
            ),
        "{e}"
    );
}

#[test]
fn huge_header_is_refused_without_allocating() {
    let t = tempfile::tempdir().unwrap();
    good_dir(t.path());
    let mut f = header(&[u32::MAX, 28, 28]);
    f.extend(vec![0; 784]);
    fs::write(t.path().join(TRAIN_IMAGES), &f).unwrap();
    let e = open_err(t.path());
    assert!(e.contains("header promises"), "{e}");
    // Past what a u64 holds the length is not a made-up number.
    let mut f = header(&[u32::MAX, u32::MAX, u32::MAX]);
    f.extend(vec![0; 784]);
    fs::write(t.path().join(TRAIN_IMAGES), &f).unwrap();
    let e = open_err(t.path());
    assert!(
        e.contains("header promises 2^64 - 1 or more (truncated"),
        "{e}"
    );
}

#[test]
fn count_mismatch_and_bad_label() {
    let t = tempfile::tempdir().unwrap();
    good_dir(t.path());
    write_idx(&t.path().join(TRAIN_LABELS), &[2], &[1, 2]).unwrap();
    let e = open_err(t.path());
    assert!(e.contains("3 images") && e.contains("2 labels"), "{e}");
    // Classes are the largest training label + 1 (here 10, from the 9) ...
    write_idx(&t.path().join(TRAIN_LABELS), &[3], &[1, 2, 9]).unwrap();
    assert_eq!(Mnist::open(t.path()).unwrap().classes, 10);
    // ... so a test label of 10 has no class, and the error says what to do.
    write_idx(&t.path().join(TEST_LABELS), &[2], &[0, 10]).unwrap();
    let e = open_err(t.path());
    assert!(
        e.contains(TEST_LABELS) && e.contains("label 10 at index 1") && e.contains("--classes 11"),
        "{e}"
    );
    // Declared classes must cover every label, train and test.
    let declared = |k: usize| match Mnist::open_with_classes(t.path(), Some(k)) {
        Ok(_) => panic!("--classes {k} opened"),
        Err(e) => e.to_string(),
    };
    let e = Mnist::open_with_classes(t.path(), Some(11)).map(|m| m.classes);
    assert_eq!(e.unwrap(), 11);
    let e = declared(5);
    assert!(
        e.contains(TRAIN_LABELS) && e.contains("label 9 at index 2") && e.contains("5 classes"),
        "{e}"
    );
    // The advice covers every label of both files (the test file's 10),
    // not just the first one found too large.
    assert!(e.contains("--classes 11 (or more)"), "{e}");
    write_idx(&t.path().join(TRAIN_LABELS), &[3], &[1, 7, 9]).unwrap();
    let e = declared(5);
    assert!(
        e.contains("label 7 at index 1") && e.contains("--classes 11 (or more)"),
        "{e}"
    );
    // A declared count is checked against the test labels too, when every
    // training label is below it.
    write_idx(&t.path().join(TRAIN_LABELS), &[3], &[1, 2, 3]).unwrap();
    write_idx(&t.path().join(TEST_LABELS), &[2], &[0, 7]).unwrap();
    let e = declared(5);
    assert!(
        e.contains(TEST_LABELS)
            && e.contains("label 7 at index 1")
            && e.contains("--classes 8 (or more)"),
        "{e}"
    );
    // Leaving --classes out would take 4 from the training labels, which
    // the test file's 7 fails too: not offered as a way out.
    assert!(!e.contains("leave --classes out"), "{e}");
    // Where the training labels hold the largest one, it is.
    write_idx(&t.path().join(TEST_LABELS), &[2], &[0, 2]).unwrap();
    let e = declared(3);
    assert!(
        e.contains("--classes 4 (or more), or leave --classes out"),
        "{e}"
    );
    // 256 is the most there can be: no "or more".
    write_idx(&t.path().join(TEST_LABELS), &[2], &[0, 255]).unwrap();
    let e = declared(5);
    assert!(
        e.contains("label 255 at index 1")
            && e.contains("pass --classes 256")
            && !e.contains("or more"),
        "{e}"
    );
    write_idx(&t.path().join(TEST_LABELS), &[2], &[0, 7]).unwrap();
    // One class is no classifier, whatever its number.
    for label in [0, 3] {
        write_idx(&t.path().join(TRAIN_LABELS), &[3], &[label; 3]).unwrap();
        let e = open_err(t.path());
        assert!(
            e.contains("only one class") && e.contains(&format!("every label is {label}")),
            "{e}"
        );
    }
    // Labels numbered from 1 are two classes (and class 0 is never seen).
    write_idx(&t.path().join(TRAIN_LABELS), &[3], &[1, 2, 1]).unwrap();
    write_idx(&t.path().join(TEST_LABELS), &[2], &[2, 1]).unwrap();
    assert_eq!(Mnist::open(t.path()).unwrap().classes, 3);
}

#[test]
fn gz_is_decompressed_once_and_checked() {
    let t = tempfile::tempdir().unwrap();
    good_dir(t.path());
    let raw = t.path().join(TEST_LABELS);
    let bytes = fs::read(&raw).unwrap();
    let gz = t.path().join(format!("{TEST_LABELS}.gz"));
    fs::write(&gz, gzip(&[&bytes])).unwrap();
    fs::remove_file(&raw).unwrap();

    // Right checksum: decompressed next to the .gz, no temporary left over.
    use md5::{Digest, Md5};
    let sum: String = Md5::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    fs::write(t.path().join("MD5SUMS"), format!("{sum}  {TEST_LABELS}\n")).unwrap();
    let m = Mnist::open(t.path()).unwrap();
    assert_eq!(m.test.label(1), 7);
    assert_eq!(fs::read(&raw).unwrap(), bytes);
    let names: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        names.iter().all(|n| !n.to_string_lossy().contains("tmp")),
        "{names:?}"
    );
    // Opened again, the copy (of the archive's time) is read as it is: one
    // made again would be a new file, renamed into place.
    use std::os::unix::fs::MetadataExt;
    let ino = fs::metadata(&raw).unwrap().ino();
    Mnist::open(t.path()).unwrap();
    assert_eq!(fs::metadata(&raw).unwrap().ino(), ino, "decompressed again");

    // `md5sum -b` writes `sum *name`, and some tools upper-case the sum.
    fs::remove_file(&raw).unwrap();
    fs::write(
        t.path().join("MD5SUMS"),
        format!("{}  *{TEST_LABELS}\n", sum.to_uppercase()),
    )
    .unwrap();
    Mnist::open(t.path()).unwrap();
    assert_eq!(fs::read(&raw).unwrap(), bytes);

    // BSD's and `md5sum --tag`'s form, and `./` before the name; lines
    // ended by NULs (`md5sum -z`); GNU's escaped lines, for names with a
    // backslash or a newline (here another file's, and ours, escaped
    // though it needs no escape).
    let other = "0".repeat(32);
    for list in [
        format!("MD5 ({TEST_LABELS}) = {sum}\n"),
        format!("# made by hand\n\n{sum}  ./{TEST_LABELS}\n"),
        format!("{other}  notes.txt\0{sum}  {TEST_LABELS}\0"),
        format!("MD5 ({TEST_LABELS}) = {sum}\0{other}  a\nb\0"),
        format!("\\{other}  a\\\\b\\nc\n\\{sum}  {TEST_LABELS}\n"),
        format!("\\MD5 (a\\\\b) = {other}\n\\MD5 ({TEST_LABELS}) = {sum}\n"),
    ] {
        fs::remove_file(&raw).unwrap();
        fs::write(t.path().join("MD5SUMS"), &list).unwrap();
        Mnist::open(t.path()).unwrap();
        assert_eq!(fs::read(&raw).unwrap(), bytes, "{list}");
    }
    // Another file's name that is not UTF-8 (`md5sum *` beside a Latin-1
    // name): its line is passed over like any other file's, not the list
    // refused; and our own line is still checked.
    for (ours, opens) in [(sum.as_str(), true), (other.as_str(), false)] {
        let mut list = format!("{other}  caf").into_bytes();
        list.extend_from_slice(b"\xe9.txt\n");
        list.extend_from_slice(format!("{ours}  {TEST_LABELS}\n").as_bytes());
        let _ = fs::remove_file(&raw);
        fs::write(t.path().join("MD5SUMS"), &list).unwrap();
        match opens {
            true => assert_eq!(Mnist::open(t.path()).unwrap().test.label(1), 7),
            false => assert!(open_err(t.path()).contains(TEST_LABELS)),
        }
    }
    // A wrong sum on a `./NAME` line (`md5sum ./*`) is this file's, and
    // checked: not a line of another file, passed over.
    let _ = fs::remove_file(&raw);
    fs::write(
        t.path().join("MD5SUMS"),
        format!(
            "{other}  ./{TEST_LABELS}
"
        ),
    )
    .unwrap();
    let e = open_err(t.path());
    assert!(e.contains(TEST_LABELS) && e.contains(&other), "{e}");

    // A list it cannot read, or one that contradicts itself, checks
    // nothing: refused, naming the line.
    for (list, says) in [
        (
            format!("{sum}  {TEST_LABELS}\nnot a checksum line\n"),
            "line 2 is neither",
        ),
        (
            format!("{sum}  {TEST_LABELS}\n{}  {TEST_LABELS}\n", "0".repeat(32)),
            "line 2 gives t10k-labels-idx1-ubyte another MD5 than line 1 does",
        ),
        (
            format!("{}  {TEST_LABELS}\n", "0".repeat(31)),
            "line 1 is neither",
        ),
        (format!("\\{sum}  a\\qb\n"), "line 1 is neither"),
        (
            format!("{sum}  {TEST_LABELS}\0{sum}\0"),
            "line 2 is neither",
        ),
        (
            format!("{sum}  notes.txt\n{sum}  {TEST_LABELS}\0\n"),
            "line 2 is neither",
        ),
        // NULs left at the end, a `md5sum -z` line added to a list, a
        // file of NULs, an empty line among `-z` lines.
        (
            format!("{sum}  notes.txt\n{sum}  {TEST_LABELS}\n\0\0\0\0"),
            "line 3 is neither",
        ),
        (
            format!("{sum}  notes.txt\n{sum}  {TEST_LABELS}\0"),
            "line 2 is neither",
        ),
        ("\0\0\0".to_string(), "line 1 is neither"),
        (format!("{sum}  {TEST_LABELS}\0\0"), "line 2 is neither"),
    ] {
        fs::write(t.path().join("MD5SUMS"), &list).unwrap();
        let e = open_err(t.path());
        assert!(
            e.contains("MD5SUMS: ") && e.contains(says) && e.contains("fix MD5SUMS"),
            "{list}: {e}"
        );
    }

    // Wrong checksum, in any form: refused, and the bad output is not
    // left to be trusted.
    for line in [
        format!("{}  {TEST_LABELS}\n", "0".repeat(32)),
        format!("{} *{TEST_LABELS}\n", "0".repeat(32)),
        format!("MD5 ({TEST_LABELS}) = {}\n", "0".repeat(32)),
        format!("{}  {TEST_LABELS}\0", "0".repeat(32)),
        format!("\\{}  {TEST_LABELS}\n", "0".repeat(32)),
    ] {
        fs::remove_file(&raw).unwrap_or_default();
        fs::write(t.path().join("MD5SUMS"), &line).unwrap();
        let e = open_err(t.path());
        assert!(
            e.contains("MD5")
                && e.contains(TEST_LABELS)
                && e.contains("so the .gz is damaged or another file: replace the .gz"),
            "{line}: {e}"
        );
        assert!(!raw.exists());
    }

    // A corrupt archive.
    fs::write(&gz, b"\x1f\x8b\x08\x00garbage").unwrap();
    let e = open_err(t.path());
    assert!(e.contains("gzip"), "{e}");
    assert!(!raw.exists());
}

#[test]
fn a_replaced_archive_is_decompressed_again() {
    let t = tempfile::tempdir().unwrap();
    good_dir(t.path());
    let raw = t.path().join(TRAIN_LABELS);
    let gz = t.path().join(format!("{TRAIN_LABELS}.gz"));
    fs::remove_file(&raw).unwrap();
    fs::write(&gz, gzip(&[&labels(&[1, 2, 9])])).unwrap();
    assert_eq!(Mnist::open(t.path()).unwrap().train.label(2), 9);
    // What it decompressed has the archive's time, as gzip -d gives it.
    use common::{mtime as time, set_mtime};
    assert_eq!(time(&raw), time(&gz));

    // Another archive, written later: its labels are the ones used.
    let later = time(&gz) + std::time::Duration::from_secs(5);
    fs::write(&gz, gzip(&[&labels(&[9, 2, 1])])).unwrap();
    set_mtime(&gz, later);
    let m = Mnist::open(t.path()).unwrap();
    assert_eq!((m.train.label(0), m.train.label(2)), (9, 1));
    assert_eq!(time(&raw), later);

    // A file newer than the archive (made or edited by hand after it) is
    // the one used, as before.
    write_idx(&raw, &[3], &[4, 5, 9]).unwrap();
    let newer = later + std::time::Duration::from_secs(5);
    set_mtime(&raw, newer);
    assert_eq!(Mnist::open(t.path()).unwrap().train.label(0), 4);

    // An older file there is replaced with its permissions kept (a
    // private file stays private); a link there is not written through (its
    // file may be another data set's): the run is refused, nothing changed.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let older = |p: &Path, by: u64| set_mtime(p, time(&gz) - std::time::Duration::from_secs(by));
    fs::set_permissions(&raw, fs::Permissions::from_mode(0o600)).unwrap();
    older(&raw, 5);
    let m = Mnist::open(t.path()).unwrap();
    assert_eq!((m.train.label(0), mode(&raw)), (9, 0o600));
    let elsewhere = t.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let real = elsewhere.join("labels");
    write_idx(&real, &[3], &[4, 5, 9]).unwrap();
    older(&real, 5);
    fs::remove_file(&raw).unwrap();
    std::os::unix::fs::symlink(&real, &raw).unwrap();
    let e = open_err(t.path());
    assert!(
        e.contains("is a link to")
            && e.contains("remove the link to have the archive decompressed"),
        "{e}"
    );
    assert!(fs::symlink_metadata(&raw).unwrap().file_type().is_symlink());
    assert_eq!(fs::read(&real).unwrap()[8..], [4, 5, 9]);
}

/// A file beside an archive with the archive's very time (a copy
/// decompressed from an archive of that time) that is not as long as what
/// the archive holds is no copy of this one: the archive was replaced by
/// another of the same time (a link pointed at another split of one
/// download). Refused, the file left as it was. One as long is used,
/// whether the archive's trailer says so (one member) or inflating it does
/// (several members, padding); so is a newer file of any length (made by
/// hand), and one MD5SUMS lists (its sum settles it).
#[test]
fn a_copy_not_as_long_as_its_archive_holds_is_refused() {
    let t = tempfile::tempdir().unwrap();
    good_dir(t.path());
    let raw = t.path().join(TRAIN_LABELS);
    let gz = t.path().join(format!("{TRAIN_LABELS}.gz"));
    use common::{mtime as time, set_mtime as set_time};
    // The file: 3 labels, 11 bytes.
    let at = time(&raw);
    let before = fs::read(&raw).unwrap();
    let cases = [
        (gzip(&[&labels(&[1, 2])]), Some("(10 bytes)")),
        (
            gzip(&[&labels(&[1, 2, 9, 4])]),
            Some("(more than 11 bytes)"),
        ),
        (gzip(&[&labels(&[7, 7, 7])]), None),
        (
            gzip(&[&labels(&[7, 7, 7])[..5], &labels(&[7, 7, 7])[5..]]),
            None,
        ),
        (gzip(&[&labels(&[7]), &[9]]), Some("(10 bytes)")),
        ([gzip(&[&labels(&[7, 7, 7])]), vec![0; 8]].concat(), None),
    ];
    for (archive, says) in &cases {
        fs::write(&gz, archive).unwrap();
        set_time(&gz, at);
        match (Mnist::open(t.path()), says) {
            (Ok(m), None) => assert_eq!(m.train.label(2), 9),
            (Err(e), Some(says)) => {
                let e = e.to_string();
                assert!(
                    e.contains(&format!("{} (11 bytes) has the time of", raw.display()))
                        && e.contains(&format!(
                            "but not the length of what it decompresses to {says}"
                        ))
                        && e.contains("to have the archive decompressed again"),
                    "{e}"
                );
            }
            (r, says) => panic!("{says:?}: {:?}", r.map(|_| ()).map_err(|e| e.to_string())),
        }
        assert_eq!(fs::read(&raw).unwrap(), before);
    }
    // Newer than the archive: made by hand, used whatever its length.
    let (short, _) = &cases[0];
    fs::write(&gz, short).unwrap();
    set_time(&gz, at - std::time::Duration::from_secs(60));
    assert_eq!(Mnist::open(t.path()).unwrap().train.label(2), 9);
    // Listed in MD5SUMS, which it matches: its sum settles it.
    set_time(&gz, at);
    assert!(Mnist::open(t.path()).is_err());
    use md5::{Digest, Md5};
    let md5: String = Md5::digest(&before)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    fs::write(t.path().join("MD5SUMS"), format!("{md5}  {TRAIN_LABELS}\n")).unwrap();
    assert_eq!(Mnist::open(t.path()).unwrap().train.label(2), 9);
}

#[test]
fn a_data_directory_that_is_not_one_is_named_as_such() {
    let t = tempfile::tempdir().unwrap();
    // A device exists: "not found" would mislead.
    let e = open_err(Path::new("/dev/null"));
    assert!(
        e.contains("/dev/null is not a directory") && e.contains("pass --data DIR"),
        "{e}"
    );
    let e = open_err(&t.path().join("nope"));
    assert!(e.contains("not found"), "{e}");
}

#[test]
fn gz_of_several_members_loads_and_a_bad_one_leaves_nothing_behind() {
    let t = tempfile::tempdir().unwrap();
    good_dir(t.path());
    let raw = t.path().join(TRAIN_IMAGES);
    let bytes = fs::read(&raw).unwrap();
    let gz = t.path().join(format!("{TRAIN_IMAGES}.gz"));
    fs::remove_file(&raw).unwrap();

    // `cat a.gz b.gz` is one valid gzip file: every member is read.
    let (a, b) = bytes.split_at(1000);
    fs::write(&gz, gzip(&[a, b])).unwrap();
    let m = Mnist::open(t.path()).unwrap();
    assert_eq!(m.train.len(), 3);
    assert_eq!(fs::read(&raw).unwrap(), bytes);

    // Zero padding after the last member (as some tools write), which
    // `gzip -d` warns of and ignores: the file is whole, so it loads.
    fs::remove_file(&raw).unwrap();
    let mut padded = gzip(&[&bytes]);
    padded.extend([0u8; 512]);
    fs::write(&gz, padded).unwrap();
    assert_eq!(Mnist::open(t.path()).unwrap().train.len(), 3);
    assert_eq!(fs::read(&raw).unwrap(), bytes);

    // Other bytes there (a download with a page appended, say) are not
    // the archive its maker wrote: `gzip -d` exits 2 on them, and so the
    // loader refuses them, saying how many there are.
    fs::remove_file(&raw).unwrap();
    let mut tailed = gzip(&[&bytes]);
    tailed.extend(b"\0\0<html>oops</html>");
    fs::write(&gz, tailed).unwrap();
    let e = open_err(t.path());
    assert!(
        e.contains(&format!("{TRAIN_IMAGES}.gz"))
            && e.contains("19 bytes after the end of the compressed data are not gzip data")
            && e.contains("the archive is damaged"),
        "{e}"
    );
    assert!(!raw.exists());

    // A valid archive of a damaged IDX file (no MD5SUMS to catch it): the
    // error names the archive, and no raw file is left to shadow a good
    // archive put in its place.
    fs::write(&gz, gzip(&[a])).unwrap();
    let e = open_err(t.path());
    assert!(
        e.contains(&format!("{TRAIN_IMAGES}.gz")) && e.contains("header promises"),
        "{e}"
    );
    assert!(!raw.exists());
    fs::write(&gz, gzip(&[&bytes])).unwrap();
    assert_eq!(Mnist::open(t.path()).unwrap().train.len(), 3);

    // Archives that inflate to a whole IDX file of the right length but
    // are damaged: a CRC-32 that does not match (in the first member or
    // the last), a trailer cut short. `gzip -t` refuses each; so must the
    // loader, leaving nothing behind.
    let damaged = |archive: Vec<u8>, what: &str| {
        fs::remove_file(&raw).ok();
        fs::write(&gz, archive).unwrap();
        let e = open_err(t.path());
        assert!(
            e.contains(&format!("{TRAIN_IMAGES}.gz")) && e.contains("the archive is damaged"),
            "{what}: {e}"
        );
        assert!(!raw.exists(), "{what}: left behind");
    };
    let flip = |mut g: Vec<u8>, at: usize| {
        g[at] ^= 1;
        g
    };
    let one = gzip(&[&bytes]);
    damaged(flip(one.clone(), one.len() - 8), "a bad CRC");
    let first = gzip(&[a]).len();
    damaged(
        flip(gzip(&[a, b]), first - 8),
        "a bad CRC in the first member",
    );
    let two = gzip(&[a, b]);
    damaged(
        flip(two.clone(), two.len() - 8),
        "a bad CRC in the last member",
    );
    damaged(one[..one.len() - 6].to_vec(), "a cut-short trailer");
}

#[test]
fn gz_of_more_than_its_header_promises_stops_there() {
    let t = tempfile::tempdir().unwrap();
    good_dir(t.path());
    let raw = t.path().join(TRAIN_IMAGES);
    let gz = t.path().join(format!("{TRAIN_IMAGES}.gz"));
    fs::remove_file(&raw).unwrap();
    // A header for 3 images (2,368 bytes in all), then 4 MB of zeros, then
    // bytes that are not gzip. Reading the stream to its end would meet the
    // bad bytes ("bad gzip data"); stopping one byte past the promise
    // never reaches them.
    let mut stream = fs::read(t.path().join(TEST_IMAGES)).unwrap();
    stream[7] = 3; // the image count: 3, as the training labels say
    stream.resize(4 << 20, 0);
    let mut archive = gzip(&[&stream]);
    archive.extend(b"not gzip at all, and long enough to be read as a member header");
    fs::write(&gz, archive).unwrap();
    let e = open_err(t.path());
    assert!(
        e.contains(&format!("{TRAIN_IMAGES}.gz"))
            && e.contains("holds more than the 2368 bytes its header promises"),
        "{e}"
    );
    let left: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(TRAIN_IMAGES) && !n.ends_with(".gz"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn real_mnist_shape() {
    let m = common::mnist();
    assert_eq!((m.train.len(), m.test.len()), (60_000, 10_000));
    // The first training image is a 5, the first test image a 7.
    assert_eq!((m.train.label(0), m.test.label(0)), (5, 7));
    let _: &Dataset = &m.train;
}

/// A data directory whose path the system takes but whose files' paths
/// it does not (past 4,096 bytes with the file's name): the file is named
/// with its path's length, not as missing with "point --data at the
/// directory that holds it", which --data already does.
#[test]
fn a_file_whose_path_is_too_long_is_not_called_missing() {
    let t = tempfile::tempdir().unwrap();
    let mut dir = t.path().to_path_buf();
    while dir.as_os_str().len() + 201 < 4085 {
        dir.push("c".repeat(200));
    }
    dir.push("d".repeat(4085 - dir.as_os_str().len() - 1));
    assert_eq!(dir.as_os_str().len(), 4085);
    fs::create_dir_all(&dir).unwrap();
    let o = common::simplenn(&["--data", dir.to_str().unwrap(), "--epochs", "1"]);
    assert_eq!(o.status.code(), Some(1));
    let path = dir.join(TRAIN_IMAGES);
    assert_eq!(
        common::error_lines(&o),
        [format!(
            "simplenn: error: {}: its path is {} bytes, longer than the system allows (4096 on Linux); use a shorter one, or run from a directory nearer it",
            path.display(),
            path.as_os_str().len()
        )]
    );
    // A directory where the files' names fit and their archives' (3 bytes
    // longer) do not: a file not there is missing, not too long.
    let mut dir = t.path().join("short");
    while dir.as_os_str().len() + 201 < 4070 {
        dir.push("c".repeat(200));
    }
    dir.push("d".repeat(4070 - dir.as_os_str().len() - 1));
    fs::create_dir_all(&dir).unwrap();
    // Written beside, then moved in: a temporary file's name would not fit.
    let beside = t.path().join("beside");
    fs::create_dir(&beside).unwrap();
    good_dir(&beside);
    for name in [TRAIN_LABELS, TEST_IMAGES, TEST_LABELS] {
        fs::rename(beside.join(name), dir.join(name)).unwrap();
    }
    let e = open_err(&dir);
    assert!(
        e.contains(&format!("{TRAIN_IMAGES} not found (nor "))
            && e.ends_with(&format!(
                "{TRAIN_IMAGES}.gz); point --data at the directory that holds it"
            )),
        "{}",
        &e[e.len().saturating_sub(300)..]
    );
}

/// A folder of a data file's name holding the file (a download unpacked
/// one folder a file, as Kaggle's MNIST is): said so, with the commands
/// that move the file into the folder's place, which work; not "remove
/// it", which would delete the file wanted.
#[test]
fn a_folder_holding_its_file_is_told_how_to_move_the_file_up() {
    let t = tempfile::tempdir().unwrap();
    good_dir(t.path());
    let folder = t.path().join(TRAIN_IMAGES);
    let held = t.path().join("held");
    fs::rename(&folder, &held).unwrap();
    fs::create_dir(&folder).unwrap();
    fs::rename(&held, folder.join(TRAIN_IMAGES)).unwrap();
    let e = open_err(t.path());
    let n = TRAIN_IMAGES;
    let mv = format!("mv {n} {n}.d && mv {n}.d/{n} {n} && rmdir {n}.d");
    assert_eq!(
        e,
        format!(
            "{}/{n} is a directory holding {n}, as a download that unpacks each file into a folder of its name leaves it; move the file into the folder's place: in {}, {mv}",
            t.path().display(),
            t.path().display()
        )
    );
    let sh = std::process::Command::new("sh")
        .arg("-c")
        .arg(&mv)
        .current_dir(t.path())
        .status()
        .unwrap();
    assert!(sh.success());
    assert_eq!(Mnist::open(t.path()).unwrap().train.len(), 3);
    // An empty folder of that name is no such download's.
    fs::remove_file(&folder).unwrap();
    fs::create_dir(&folder).unwrap();
    let e = open_err(t.path());
    assert!(e.ends_with("is a directory; the data files must be regular files: remove it, or put the IDX file (or its .gz) in its place"), "{e}");
}

/// A decompression killed outright leaves its temporary file; where
/// another run finished the file, no decompression runs again to sweep
/// it: the next run that reads the file removes it (once its writer's
/// process is gone), and leaves a live process's alone.
#[cfg(unix)]
#[test]
fn a_killed_decompressions_temporary_file_goes_with_the_next_read() {
    let t = tempfile::tempdir().unwrap();
    good_dir(t.path());
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = t.path().join(format!("{TRAIN_IMAGES}.tmp{dead}-0"));
    let live = t
        .path()
        .join(format!("{TRAIN_IMAGES}.tmp{}-0", std::process::id()));
    fs::write(&stale, b"half").unwrap();
    fs::write(&live, b"being written").unwrap();
    Mnist::open(t.path()).unwrap();
    assert!(!stale.exists());
    assert!(live.exists());
}

/// Where a read-only directory's archives are decompressed into the cache,
/// an error about their contents names the `.gz` the user has, not the
/// cached copy (a path in `~/.cache` the user never typed).
#[cfg(unix)]
#[test]
fn faults_in_cached_copies_name_their_archives() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let run = |dir: &Path, args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_simplenn"))
            .arg("--data")
            .arg(dir)
            .args(["--epochs", "1", "--threads", "1", "--no-save"])
            .args(args)
            .env("XDG_CACHE_HOME", &cache)
            .output()
            .unwrap();
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    // Each directory's four files as archives only, the directory then
    // made read-only (until the test ends, pass or fail).
    let mut read_only = common::ReadOnlyDirs::default();
    let mut archived = |name: &str, test_labels: &[u8]| {
        let dir = t.path().join(name);
        fs::create_dir(&dir).unwrap();
        good_dir(&dir);
        write_idx(
            &dir.join(TEST_LABELS),
            &[test_labels.len() as u32],
            test_labels,
        )
        .unwrap();
        match name {
            // Two test images of 0 × 4 pixels: a header the archive holds.
            "nopixels" => write_idx(&dir.join(TEST_IMAGES), &[2, 0, 4], &[]).unwrap(),
            // No training images at all.
            "empty" => {
                write_idx(&dir.join(TRAIN_IMAGES), &[0, 28, 28], &[]).unwrap();
                write_idx(&dir.join(TRAIN_LABELS), &[0], &[]).unwrap();
            }
            // Test images of 4 × 4 pixels beside training images of 28 × 28.
            "sizes" => write_idx(&dir.join(TEST_IMAGES), &[2, 4, 4], &[0; 32]).unwrap(),
            _ => {}
        }
        for f in [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS] {
            let raw = dir.join(f);
            fs::write(
                dir.join(format!("{f}.gz")),
                gzip(&[&fs::read(&raw).unwrap()]),
            )
            .unwrap();
            fs::remove_file(&raw).unwrap();
        }
        read_only.add(&dir);
        dir
    };
    let named = |dir: &Path, f: &str| format!("{}: ", dir.join(format!("{f}.gz")).display());

    // A training label beyond --classes.
    let beyond = archived("labels", &[0, 7]);
    let e = run(&beyond, &["--classes", "5"]);
    assert!(e.contains("into the cache"), "the copies went beside: {e}");
    let e = e.lines().last().unwrap();
    assert!(e.contains(&named(&beyond, TRAIN_LABELS)), "{e}");
    assert!(
        e.contains("label 9 at index 2 is not below the 5 classes"),
        "{e}"
    );
    assert!(!e.contains(cache.to_str().unwrap()), "{e}");
    // Images and labels that do not pair up (2 test images, 3 labels).
    let counts = archived("counts", &[0, 7, 1]);
    let e = run(&counts, &[]);
    assert!(e.contains("into the cache"), "the copies went beside: {e}");
    let e = e.lines().last().unwrap();
    let (images, labels) = (named(&counts, TEST_IMAGES), named(&counts, TEST_LABELS));
    assert!(
        e.contains(&format!(
            "{} has 2 images but {} has 3 labels",
            &images[..images.len() - 2],
            &labels[..labels.len() - 2]
        )),
        "{e}"
    );
    assert!(!e.contains(cache.to_str().unwrap()), "{e}");
    // Images of no pixels: the archive's fault, named as the archive, not
    // the copy with a fix ("delete it") that makes the same copy again.
    let nopixels = archived("nopixels", &[0, 7]);
    let e = run(&nopixels, &[]);
    let e = e.lines().last().unwrap();
    assert!(
        e.starts_with(&format!(
            "simplenn: error: {}dimensions [2, 0, 4]",
            named(&nopixels, TEST_IMAGES)
        )),
        "{e}"
    );
    assert!(!e.contains("delete it"), "{e}");
    // Refused before it was put in place: no copy left in the cache to
    // be refused again (the archive is the fault, and nothing mends it).
    let folder = simplenn::idx::cache_dir_under(&cache, &nopixels).unwrap();
    assert!(!folder.join(TEST_IMAGES).exists(), "{e}");
    assert!(fs::read_dir(&folder).unwrap().all(|f| {
        let name = f.unwrap().file_name();
        !name.to_string_lossy().starts_with(TEST_IMAGES)
    }));
    // No training images; train and test images of different sizes.
    let empty = archived("empty", &[0, 7]);
    let e = run(&empty, &[]);
    let e = e.lines().last().unwrap();
    assert!(
        e.starts_with(&format!(
            "simplenn: error: {} holds no images",
            empty.join(format!("{TRAIN_IMAGES}.gz")).display()
        )),
        "{e}"
    );
    let folder = simplenn::idx::cache_dir_under(&cache, &empty).unwrap();
    assert!(!folder.join(TRAIN_IMAGES).exists(), "{e}");
    let sizes = archived("sizes", &[0, 7]);
    let e = run(&sizes, &[]);
    let e = e.lines().last().unwrap();
    assert!(
        e.contains(&format!(
            "{} holds 28 × 28 images but {} holds 4 × 4",
            sizes.join(format!("{TRAIN_IMAGES}.gz")).display(),
            sizes.join(format!("{TEST_IMAGES}.gz")).display()
        )),
        "{e}"
    );
    assert!(!e.contains(cache.to_str().unwrap()), "{e}");
    // A copy whose archive is gone since is not read: the directory no
    // longer holds that file (a mount point with nothing mounted would
    // be scored on the cache's old copies, silently).
    fs::set_permissions(&beyond, fs::Permissions::from_mode(0o755)).unwrap();
    fs::remove_file(beyond.join(format!("{TRAIN_LABELS}.gz"))).unwrap();
    fs::set_permissions(&beyond, fs::Permissions::from_mode(0o555)).unwrap();
    let e = run(&beyond, &["--classes", "5"]);
    let e = e.lines().last().unwrap();
    assert!(
        e.starts_with(&format!(
            "simplenn: error: {} not found (nor {}.gz)",
            beyond.join(TRAIN_LABELS).display(),
            beyond.join(TRAIN_LABELS).display()
        )),
        "{e}"
    );
}

/// Images of no pixels beside their archive: in simplenn's copy of it (the
/// archive's time), the archive is named, since a fresh copy would hold
/// the same header; in a raw file newer than its archive (read as it is),
/// the raw file is, with the fix of deleting it.
#[test]
fn images_of_no_pixels_beside_an_archive_name_whose_header_it_is() {
    let t = tempfile::tempdir().unwrap();
    good_dir(t.path());
    let raw = t.path().join(TEST_IMAGES);
    let gz = t.path().join(format!("{TEST_IMAGES}.gz"));
    let good = fs::read(&raw).unwrap();
    // An archive of images of 0 × 28 pixels, decompressed by simplenn.
    write_idx(&raw, &[2, 0, 28], &[]).unwrap();
    fs::write(&gz, gzip(&[&fs::read(&raw).unwrap()])).unwrap();
    fs::remove_file(&raw).unwrap();
    let e = open_err(t.path());
    assert!(
        e.starts_with(&format!("{}: dimensions [2, 0, 28]", gz.display()))
            && !e.contains("delete it"),
        "{e}"
    );
    // A good archive, and a raw file of no pixels written after it.
    fs::write(&gz, gzip(&[&good])).unwrap();
    write_idx(&raw, &[2, 0, 28], &[]).unwrap();
    common::set_mtime(
        &raw,
        common::mtime(&gz) + std::time::Duration::from_secs(60),
    );
    let e = open_err(t.path());
    assert!(
        e.starts_with(&format!("{}: dimensions [2, 0, 28]", raw.display()))
            && e.ends_with(&format!(
                "delete it, and the {}.gz beside it is decompressed in its place",
                raw.display()
            )),
        "{e}"
    );
}
