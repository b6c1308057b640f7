use super::gunzip::{free_bytes, gunzip_atomically};
use super::locate::{cache_base, locate_in, no_cache, system_dir};
use super::*;
use std::io::Write;

/// A data file's path through a file (reached through the library:
/// the binary finds the data directory at fault first).
#[test]
fn a_path_through_a_file_is_explained() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("f");
    std::fs::write(&f, b"x").unwrap();
    let e = IdxFile::open(&f.join("x"), 3).err().unwrap().to_string();
    assert!(
        e.contains("its path goes through a file as if it were a directory"),
        "{e}"
    );
    assert!(!e.contains("os error"), "{e}");
}

thread_local! {
    /// The free space `free_bytes` reports on this thread, where set
    /// (for files in `FREE_ONLY_IN` alone, where that is set).
    pub(super) static FREE: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
    pub(super) static FREE_ONLY_IN: std::cell::RefCell<Option<PathBuf>> = const { std::cell::RefCell::new(None) };
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// The files in `dir`, by name.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A file of a file system that cannot be memory-mapped (sysfs: ENODEV)
/// is said to be one, with the fix, not as "No such device" alone.
#[cfg(target_os = "linux")]
#[test]
fn a_file_that_cannot_be_mapped_says_so() {
    let sysfs = [
        "/sys/kernel/mm/transparent_hugepage/enabled",
        "/sys/power/state",
        "/sys/kernel/profiling",
    ];
    let Some(p) = sysfs.iter().map(Path::new).find(|p| p.is_file()) else {
        // Straight to stderr, past the test harness's capture.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "*** SKIPPED: idx::tests::a_file_that_cannot_be_mapped_says_so: none of {sysfs:?} is here ***"
        );
        return;
    };
    let e = IdxFile::open(p, 1).err().unwrap().to_string();
    assert!(
        e.contains("cannot be memory-mapped (")
            && e.ends_with("put an ordinary copy of it in its place"),
        "{e}"
    );
}

/// Packages' directories take the cache first; others do not.
#[test]
fn system_dirs_are_under_usr() {
    assert!(system_dir(Path::new("/usr")));
    assert!(system_dir(Path::new("/usr/share/../share")));
    let d = tempfile::tempdir().unwrap();
    assert!(!system_dir(d.path()));
    assert!(!system_dir(Path::new("/nonexistent/usr")));
    for own in ["/usr/local", "/usr/src"] {
        if Path::new(own).is_dir() {
            assert!(!system_dir(Path::new(own)), "{own}");
        }
    }
}

/// A temporary tree: `data/x.gz` holding `whole`, a 3 × 4 × 4 IDX file,
/// and the cache folder it would go to (`cache/simplenn/h`, not made).
fn archive_beside_cache() -> (tempfile::TempDir, PathBuf, PathBuf, Vec<u8>) {
    let t = tempfile::tempdir().unwrap();
    let (data, cache) = (t.path().join("data"), t.path().join("cache/simplenn/h"));
    fs::create_dir(&data).unwrap();
    let whole = file(&[3, 4, 4], 48);
    fs::write(data.join("x.gz"), gzip(&whole)).unwrap();
    (t, data, cache, whole)
}

/// A package's directory (`cache_first`) has its archives decompressed
/// into the cache, never beside them, and found there next time; beside
/// them only when the cache cannot be written; a bad archive is its
/// error, with nothing written anywhere.
#[test]
fn a_packages_directory_decompresses_into_the_cache_first() {
    let (t, data, cache, whole) = archive_beside_cache();
    let cached = Some(cache.join("x"));
    let got = locate_in(&data, "x", 3, cached.clone(), true).unwrap();
    assert_eq!(got, cache.join("x"));
    assert_eq!(fs::read(&got).unwrap(), whole);
    assert_eq!(names(&data), ["x.gz"]);
    assert_eq!(locate_in(&data, "x", 3, cached.clone(), true).unwrap(), got);
    // The archive gone (the directory emptied, or a mount point with
    // nothing mounted): no data set, whatever the cache kept.
    let gz = fs::read(data.join("x.gz")).unwrap();
    fs::remove_file(data.join("x.gz")).unwrap();
    let e = locate_in(&data, "x", 3, cached.clone(), true).unwrap_err();
    assert!(e.to_string().contains("not found"), "{e}");
    fs::write(data.join("x.gz"), gz).unwrap();
    // A cache that cannot be written: beside the archive after all.
    let blocked = t.path().join("blocked");
    fs::write(&blocked, b"").unwrap();
    fs::write(data.join("w.gz"), gzip(&whole)).unwrap();
    let got = locate_in(&data, "w", 3, Some(blocked.join("h/w")), true).unwrap();
    assert_eq!(got, data.join("w"));
    // A damaged archive: its error, nothing written anywhere.
    fs::write(data.join("v.gz"), &gzip(&whole)[..20]).unwrap();
    let e = locate_in(&data, "v", 3, Some(cache.join("v")), true).unwrap_err();
    assert!(e.to_string().contains("the archive is damaged"), "{e}");
    assert!(!data.join("v").exists() && !cache.join("v").exists());
}

/// The stamp beside a cached copy replaced by something that is no stamp
/// (a FIFO, or a link to one, which would block a read forever; a 64 GiB
/// sparse file, which would be read until memory ran out; a link to
/// `/dev/zero` is refused the same way, and not tried here: a writer that
/// followed the link would replace the device, for root): not read, and
/// the copy decompressed again, with a stamp in its place; what a link
/// led to is left as it was.
#[cfg(unix)]
#[test]
fn a_stamp_that_is_no_regular_short_file_is_not_read() {
    let (_t, data, cache, whole) = archive_beside_cache();
    let cached = cache.join("x");
    let stamp = stamp_path(&cached);
    let locate = {
        let (data, cached) = (data.clone(), cached.clone());
        move || {
            // On a thread: a read that blocks fails the test, not hangs it.
            let (data, cached) = (data.clone(), cached.clone());
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx
                    .send(locate_in(&data, "x", 3, Some(cached), true).map_err(|e| e.to_string()));
            });
            rx.recv_timeout(std::time::Duration::from_secs(60))
                .expect("locating the copy did not return within 60 s")
        }
    };
    assert_eq!(locate().unwrap(), cached);
    let good = fs::read_to_string(&stamp).unwrap();
    let fifo = |p: &Path| {
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `c` is a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    };
    let sparse = |p: &Path| fs::File::create(p).and_then(|f| f.set_len(64 << 30));
    let elsewhere = data.join("elsewhere");
    fifo(&elsewhere);
    for kind in ["fifo", "link to a fifo", "sparse"] {
        fs::remove_file(&stamp).unwrap();
        match kind {
            "fifo" => fifo(&stamp),
            "sparse" => {
                if let Err(e) = sparse(&stamp) {
                    eprintln!("*** SKIPPED: no sparse stamp of 64 GiB here ({e})");
                    fs::write(&stamp, &good).unwrap();
                    continue;
                }
            }
            _ => std::os::unix::fs::symlink(&elsewhere, &stamp).unwrap(),
        }
        assert_eq!(locate().unwrap(), cached, "{kind}");
        assert_eq!(fs::read(&cached).unwrap(), whole, "{kind}");
        // Written again, whole; or, where that failed (not written over a
        // FIFO), gone, for the next run to write.
        let now = fs::symlink_metadata(&stamp);
        assert!(
            now.as_ref().map_or(true, |m| m.is_file() && m.len() < 256),
            "{kind}: {now:?}"
        );
        if now.is_err() {
            fs::write(&stamp, &good).unwrap();
        }
        let there = fs::symlink_metadata(&elsewhere).unwrap();
        assert!(
            std::os::unix::fs::FileTypeExt::is_fifo(&there.file_type()),
            "{kind}"
        );
    }
}

/// A data directory made read-only (`chmod 555`) gets no copies even
/// where the user may write there all the same (root): they go to the
/// cache, and without one the error says the directory is read-only.
/// A damaged archive there is its own error, not the cache's (it read
/// "the cache directory … cannot be used either", whose fix could not
/// help).
#[cfg(unix)]
#[test]
fn a_write_protected_directory_is_read_only_even_for_root() {
    use std::os::unix::fs::PermissionsExt;
    let (_t, data, cache, whole) = archive_beside_cache();
    let mut bad = gzip(&whole);
    let crc = bad.len() - 8;
    bad[crc] ^= 0xff;
    fs::write(data.join("v.gz"), &bad).unwrap();
    fs::set_permissions(&data, fs::Permissions::from_mode(0o555)).unwrap();
    let got = locate_in(&data, "x", 3, Some(cache.join("x")), false);
    let none = locate_in(&data, "x", 3, None, false).map_err(|e| e.to_string());
    let damaged = locate_in(&data, "v", 3, Some(cache.join("v")), false).map_err(|e| e.to_string());
    fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(got.unwrap(), cache.join("x"));
    assert_eq!(fs::read(cache.join("x")).unwrap(), whole);
    assert_eq!(names(&data), ["v.gz", "x.gz"]);
    let e = none.unwrap_err();
    assert!(e.contains("is read-only"), "{e}");
    let e = damaged.unwrap_err();
    assert!(
        e.contains("the archive is damaged") && !e.contains("cache"),
        "{e}"
    );
    assert!(!cache.join("v").exists());
}

#[test]
fn gunzip_refuses_before_writing_what_cannot_fit() {
    let t = tempfile::tempdir().unwrap();
    let (gz, out) = (t.path().join("x.gz"), t.path().join("x"));
    // 3 images of 4 x 4: a 16-byte header and 48 bytes of pixels.
    let whole = file(&[3, 4, 4], 48);
    fs::write(&gz, gzip(&whole)).unwrap();

    FREE.with(|f| f.set(Some(63)));
    let e = gunzip_atomically(&gz, &out, 3).unwrap_err();
    FREE.with(|f| f.set(None));
    assert!(
        matches!(&e, IdxError::NoRoom { want: 64, free: 63, dir, .. } if dir == t.path()),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("decompresses to 64 bytes (its header says), but ")
            && e.to_string().contains("has 63 bytes free; make room there"),
        "{e}"
    );
    assert_eq!(
        (size(7_840_016), size(12_400_000_000)),
        ("7.8 MB".into(), "12.40 GB".into())
    );
    // A labels file, or a disk all but full, in bytes, not "0.0 MB".
    assert_eq!(
        (size(1), size(10_008), size(99_999), size(100_000)),
        (
            "1 byte".into(),
            "10008 bytes".into(),
            "99999 bytes".into(),
            "0.1 MB".into()
        )
    );
    assert_eq!(names(t.path()), ["x.gz"], "nothing written");

    FREE.with(|f| f.set(Some(64)));
    gunzip_atomically(&gz, &out, 3).unwrap();
    FREE.with(|f| f.set(None));
    assert_eq!(fs::read(&out).unwrap(), whole);
    // The real figure, where the system tells it, is some free space.
    #[cfg(unix)]
    assert!(free_bytes(&File::open(&out).unwrap(), t.path()).is_some_and(|b| b > 0));
}

#[test]
fn a_data_directory_without_room_decompresses_into_the_cache() {
    let (t, data, cache, whole) = archive_beside_cache();
    let cached = Some(cache.join("x"));
    let set = |free: Option<u64>, only: Option<&Path>| {
        FREE.with(|f| f.set(free));
        FREE_ONLY_IN.with(|d| *d.borrow_mut() = only.map(Path::to_owned));
    };

    // No room anywhere: both shortages are named, and neither place
    // keeps a byte.
    set(Some(63), None);
    let e = locate_in(&data, "x", 3, cached.clone(), false).unwrap_err();
    set(None, None);
    assert!(
        matches!(&e, IdxError::NoRoomInCacheEither { want: 64, free: 63, dir, cache: c, cache_free: 63, .. }
            if *dir == data && *c == cache),
        "{e}"
    );
    assert!(
        e.to_string().contains(&format!(
            "has 63 bytes free and the cache directory {} has 63 bytes; make room in either",
            cache.display()
        )),
        "{e}"
    );
    assert_eq!(names(&data), ["x.gz"]);
    // Nor a directory: the cache's tree is taken away again.
    assert!(!t.path().join("cache").exists());

    // Room in the cache only: the file goes there, whole.
    set(Some(63), Some(&data));
    let got = locate_in(&data, "x", 3, cached.clone(), false);
    set(None, None);
    assert_eq!(got.unwrap(), cache.join("x"));
    assert_eq!(fs::read(cache.join("x")).unwrap(), whole);
    assert_eq!(names(&data), ["x.gz"]);
    // And is found there next time, with no decompression.
    assert_eq!(
        locate_in(&data, "x", 3, cached.clone(), false).unwrap(),
        cache.join("x")
    );
    // A replaced archive is decompressed again, not its old copy used.
    let other = file(&[2, 4, 4], 32);
    fs::write(data.join("x.gz"), gzip(&other)).unwrap();
    set(Some(10), Some(&data));
    let got = locate_in(&data, "x", 3, cached.clone(), false);
    set(None, None);
    assert_eq!(got.unwrap(), cache.join("x"));
    assert_eq!(fs::read(cache.join("x")).unwrap(), other);
    // Its copy, without the archive, is not used: the directory no
    // longer holds the data set (a mount point with nothing mounted).
    fs::remove_file(data.join("x.gz")).unwrap();
    let e = locate_in(&data, "x", 3, cached, false).unwrap_err();
    assert!(e.to_string().contains("not found"), "{e}");

    // A cache that cannot be written (here: a file where its directory
    // goes): the data directory's shortage and the cache's failure.
    let blocked = t.path().join("blocked");
    fs::write(&blocked, b"").unwrap();
    fs::write(data.join("w.gz"), gzip(&whole)).unwrap();
    set(Some(63), Some(&data));
    let e = locate_in(&data, "w", 3, Some(blocked.join("h/w")), false).unwrap_err();
    set(None, None);
    assert!(
        matches!(&e, IdxError::NoRoomNoCache { free: 63, dir, .. } if *dir == data),
        "{e}"
    );
    let e = e.to_string();
    assert!(
        e.contains(&format!(
            "has 63 bytes free, and the cache directory {} cannot be used either",
            blocked.join("h").display()
        )),
        "{e}"
    );

    // A damaged archive, found out in the cache that had room, is
    // named as damaged: more room would not help.
    let mut cut = gzip(&whole);
    cut.truncate(cut.len() - 6);
    fs::write(data.join("v.gz"), &cut).unwrap();
    set(Some(63), Some(&data));
    let e = locate_in(&data, "v", 3, Some(cache.join("v")), false).unwrap_err();
    set(None, None);
    assert!(
        matches!(&e, IdxError::Io { path, .. } if *path == data.join("v.gz"))
            && e.to_string()
                .contains("the archive is damaged; replace it with a good copy"),
        "{e}"
    );
    assert!(!cache.join("v").exists());

    // Without a cache directory ($HOME unset), no room is an error
    // that says there is none.
    let e = locate_in(&data, "y", 3, None, false);
    assert!(matches!(e, Err(IdxError::Missing { .. })), "{e:?}");
    fs::write(data.join("z.gz"), gzip(&whole)).unwrap();
    set(Some(63), None);
    let e = locate_in(&data, "z", 3, None, false).unwrap_err();
    set(None, None);
    assert!(
        matches!(
            &e,
            IdxError::NoRoomNoCache {
                want: 64,
                free: 63,
                ..
            }
        ),
        "{e}"
    );
    let e = e.to_string();
    assert!(
        e.contains("has 63 bytes free, and there is no cache directory"),
        "{e}"
    );
    assert!(e.contains("make room there, set XDG_CACHE_HOME"), "{e}");
}

/// The cache's base: `$XDG_CACHE_HOME`, else `$HOME/.cache`, each only
/// when an absolute path.
#[test]
fn the_cache_is_under_an_absolute_xdg_cache_home_or_home() {
    let os = |s: &str| Some(std::ffi::OsString::from(s));
    let base = |x, h| cache_base(x, h).map(|p| p.display().to_string());
    assert_eq!(base(os("/x"), os("/h")), Some("/x".into()));
    assert_eq!(base(os(""), os("/h")), Some("/h/.cache".into()));
    assert_eq!(base(os("rel"), os("/h")), Some("/h/.cache".into()));
    assert_eq!(base(None, os("/h")), Some("/h/.cache".into()));
    assert_eq!(base(os(""), os("")), None);
    assert_eq!(base(None, os("home")), None);
}

/// One cache folder a data directory: names that differ only in bytes
/// that are not UTF-8 (both U+FFFD, shown lossily) are two folders.
#[cfg(unix)]
#[test]
fn each_data_directory_has_its_own_cache_folder() {
    use std::os::unix::ffi::OsStrExt;
    let t = tempfile::tempdir().unwrap();
    let dir = |b: &[u8]| {
        let d = t.path().join(std::ffi::OsStr::from_bytes(b));
        fs::create_dir(&d).unwrap();
        d
    };
    let (a, b, c) = (dir(b"d\xfe"), dir(b"d\xff"), dir(b"d"));
    let base = t.path().join("cache");
    let folder = |d: &Path| cache_dir_under(&base, d).unwrap();
    assert_ne!(folder(&a), folder(&b));
    assert_ne!(folder(&a), folder(&c));
    // A UTF-8 name's folder is what it always was (FNV-1a of its bytes).
    let fnv = fs::canonicalize(&c)
        .unwrap()
        .to_str()
        .unwrap()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        });
    assert_eq!(
        folder(&c),
        base.join("simplenn").join(format!("{fnv:016x}"))
    );
}

/// A read-only data directory whose cache fails too, or that has none,
/// names both and the ways out; other failures pass as they are.
#[test]
fn no_place_to_decompress_names_both_places_and_the_fixes() {
    let io = || IdxError::Io {
        path: PathBuf::from("/c/simplenn/h/x.tmp1-0"),
        error: io::Error::new(io::ErrorKind::PermissionDenied, "denied"),
    };
    let (gz, dir) = (Path::new("/d/x.gz"), Path::new("/d"));
    let e = no_cache(gz, dir, Some(Path::new("/c/simplenn/h/x")), io()).to_string();
    assert!(e.starts_with("/d/x.gz cannot be decompressed: /d is read-only, and the cache directory /c/simplenn/h cannot be used either (denied)"), "{e}");
    assert!(
        e.contains("set XDG_CACHE_HOME to a writable directory"),
        "{e}"
    );
    let e = no_cache(gz, dir, None, io()).to_string();
    assert!(e.contains("there is no cache directory"), "{e}");
    // A link to nowhere on the way (it read "File exists"), or a file.
    #[cfg(unix)]
    {
        let t = tempfile::tempdir().unwrap();
        // The line for a cache under `base`.
        let under =
            |base: &Path| no_cache(gz, dir, Some(&base.join("simplenn/h/x")), io()).to_string();
        let link = t.path().join(".cache");
        std::os::unix::fs::symlink(t.path().join("gone"), &link).unwrap();
        let e = under(&link);
        assert!(
            e.contains(&format!(
                "cannot be used either: {} is a link to {}, which does not exist: make that directory, or remove the link; set XDG_CACHE_HOME",
                link.display(),
                t.path().join("gone").display()
            )),
            "{e}"
        );
        let file = t.path().join("file");
        fs::write(&file, b"").unwrap();
        let e = under(&file);
        assert!(
            e.contains(&format!(
                "{} is a file, not a directory: move it away",
                file.display()
            )),
            "{e}"
        );
        // A relative link's target is named from the link's directory (so
        // that `mkdir` of it works), a loop as a loop, a link to a file as
        // one.
        fs::create_dir(t.path().join("sub")).unwrap();
        let rel = t.path().join("sub/c");
        std::os::unix::fs::symlink("gone", &rel).unwrap();
        let e = under(&rel);
        let to = t.path().join("sub/gone");
        assert!(
            e.contains(&format!(
                "is a link to {}, which does not exist",
                to.display()
            )),
            "{e}"
        );
        let looped = t.path().join("loop");
        std::os::unix::fs::symlink("loop", &looped).unwrap();
        let e = under(&looped);
        assert!(
            e.contains(&format!(
                "{} is a link whose links go round in a loop: remove it",
                looped.display()
            )),
            "{e}"
        );
        let to_file = t.path().join("to-file");
        std::os::unix::fs::symlink(&file, &to_file).unwrap();
        let e = under(&to_file);
        assert!(
            e.contains("a file, not a directory: remove the link"),
            "{e}"
        );
    }
    let bad = IdxError::Empty {
        path: gz.to_owned(),
    };
    assert!(matches!(
        no_cache(gz, dir, None, bad),
        IdxError::Empty { .. }
    ));
}

#[test]
fn gunzip_refuses_a_header_the_archive_cannot_hold() {
    let t = tempfile::tempdir().unwrap();
    let (gz, out) = (t.path().join("x.gz"), t.path().join("x"));
    // 1000 zero images of 100 x 100: 10 MB of zeros deflate to about
    // 10 KB; cut to 2 KB, the archive cannot hold the header's promise.
    let mut whole = file(&[1000, 100, 100], 0);
    whole.resize(16 + 10_000_000, 0);
    let packed = gzip(&whole);
    let want = 10_000_016u64;
    assert!(
        packed.len() as u64 * MAX_INFLATE >= want,
        "the whole archive could"
    );
    fs::write(&gz, &packed[..2000]).unwrap();
    let e = gunzip_atomically(&gz, &out, 3).unwrap_err();
    assert!(
        matches!(
            &e,
            IdxError::BadArchive {
                problem: IdxProblem::MoreThanArchiveHolds {
                    want: 10_000_016,
                    gz_len: 2000
                },
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(names(t.path()), ["x.gz"], "nothing written");
    // Whole, it decompresses.
    fs::write(&gz, &packed).unwrap();
    gunzip_atomically(&gz, &out, 3).unwrap();
    assert_eq!(fs::metadata(&out).unwrap().len(), want);
}

/// An archive of a sound IDX header that counts nothing to use (no
/// images, images of no pixels, no labels) is refused as `Dataset::open`
/// refuses such a file, the archive named, and nothing put in place.
#[test]
fn an_archive_of_nothing_to_use_leaves_nothing() {
    let t = tempfile::tempdir().unwrap();
    let (gz, out) = (t.path().join("x.gz"), t.path().join("x"));
    for (dims, ndim, says) in [
        (&[0, 28, 28][..], 3, "holds no images"),
        (
            &[2, 0, 4][..],
            3,
            "dimensions [2, 0, 4], expected [N, rows, cols] with rows, cols ≥ 1",
        ),
        (&[0][..], 1, "dimensions [0], expected [N] with N ≥ 1"),
    ] {
        fs::write(&gz, gzip(&file(dims, 0))).unwrap();
        let e = gunzip_atomically(&gz, &out, ndim).unwrap_err().to_string();
        assert!(
            e.starts_with(&gz.display().to_string()) && e.contains(says),
            "{e}"
        );
        assert_eq!(names(t.path()), ["x.gz"], "{dims:?}: nothing written");
    }
}

/// A raw IDX file under the archive's name is said to be one; a file of
/// the wrong kind inside an archive gets one fix, its own.
#[test]
fn an_archive_that_is_no_archive_or_holds_another_kind_says_what_to_do() {
    let t = tempfile::tempdir().unwrap();
    let (gz, out) = (t.path().join("x.gz"), t.path().join("x"));
    fs::write(&gz, file(&[2, 4, 4], 32)).unwrap();
    let e = gunzip_atomically(&gz, &out, 3).unwrap_err().to_string();
    assert!(
        e.ends_with("not gzip data but an uncompressed IDX file (it begins 00 00 08 03): remove .gz from its name"),
        "{e}"
    );
    fs::write(&gz, gzip(&file(&[2, 4, 4, 3], 96))).unwrap();
    let e = gunzip_atomically(&gz, &out, 3).unwrap_err().to_string();
    assert!(
        e.ends_with("decompresses to no usable IDX file: IDX header says 4 dimensions, expected 3 (images x rows x columns); simplenn reads one 8-bit channel per pixel, images x rows x columns: convert it to that, or point --data at the right files"),
        "{e}"
    );
    let mut floats = file(&[2], 8);
    floats[2] = 0x0d;
    fs::write(&gz, gzip(&floats)).unwrap();
    let e = gunzip_atomically(&gz, &out, 1).unwrap_err().to_string();
    assert!(
        e.ends_with("(type 0x0d, not 0x08); simplenn reads 8-bit pixels and labels: convert it to unsigned bytes"),
        "{e}"
    );
    fs::write(&gz, gzip(&gzip(&file(&[2], 2)))).unwrap();
    let e = gunzip_atomically(&gz, &out, 1).unwrap_err().to_string();
    assert!(
        e.ends_with("but gzip data; it holds gzip data inside gzip data: decompress it once (gzip -d), then add .gz to the name of what that gives"),
        "{e}"
    );
    assert_eq!(names(t.path()), ["x.gz"], "nothing written");
}

fn file(dims: &[u32], body: usize) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.resize(v.len() + body, 7);
    v
}

#[test]
fn good_header() {
    let f = file(&[2, 3, 4], 24);
    let h = parse_header(&f, 3).unwrap();
    assert_eq!(h.dims, vec![2, 3, 4]);
    assert_eq!(h.data_offset, 16);
}

#[test]
fn rejects_bad_files() {
    assert!(matches!(
        parse_header(&[], 3),
        Err(IdxProblem::TooShort { .. })
    ));
    assert!(matches!(
        parse_header(&file(&[2, 3, 4], 24)[..10], 3),
        Err(IdxProblem::TooShort { .. })
    ));
    // Four bytes are a whole magic number: a wrong one is named as such, not
    // as a file too short for its header; three are too short for either.
    assert_eq!(
        parse_header(b"PK\x03\x04", 3),
        Err(IdxProblem::BadMagic {
            found: *b"PK\x03\x04",
            want_dims: 3
        })
    );
    assert_eq!(
        parse_header(&[0, 0, 8, 3], 3),
        Err(IdxProblem::TooShort { len: 4, need: 16 })
    );
    assert_eq!(
        parse_header(&[0, 0, 8], 3),
        Err(IdxProblem::TooShort { len: 3, need: 16 })
    );
    assert!(matches!(
        parse_header(&file(&[2, 3, 4], 23), 3),
        Err(IdxProblem::Length { .. })
    ));
    assert!(matches!(
        parse_header(&file(&[5], 5), 3),
        Err(IdxProblem::DimCount { found: 1, want: 3 })
    ));
    let mut f = file(&[5], 5);
    // The IDX types other than unsigned bytes: signed bytes, 16- and
    // 32-bit integers, 32- and 64-bit floats, each named as such.
    for code in [0x09, 0x0b, 0x0c, 0x0d, 0x0e] {
        f[2] = code;
        assert_eq!(parse_header(&f, 1), Err(IdxProblem::ElementType { code }));
    }
    f[2] = 0x0a; // no IDX type
    assert!(matches!(
        parse_header(&f, 1),
        Err(IdxProblem::BadMagic { .. })
    ));
    // A header claiming 2^32-1 cubed must be rejected without allocating.
    assert!(matches!(
        parse_header(&file(&[u32::MAX, u32::MAX, u32::MAX], 3), 3),
        Err(IdxProblem::Length { .. })
    ));
}

/// A file of the wrong magic number: gzip data under a raw name is told to
/// take `.gz`, gzip inside a `.gz` to be decompressed once, anything else
/// to be replaced.
#[test]
fn a_wrong_magic_number_gets_the_fix_for_what_it_is() {
    let bad = |found: [u8; 4]| IdxProblem::BadMagic {
        found,
        want_dims: 3,
    };
    let (gz, other) = (bad([0x1f, 0x8b, 8, 0]), bad(*b"PK\x03\x04"));
    assert_eq!(
        gz.fix(),
        "add .gz to its name, and simplenn decompresses it"
    );
    assert!(gz
        .archive_fix()
        .starts_with("it holds gzip data inside gzip data"));
    let replace = "replace it with a good copy, or point --data at the right files";
    assert_eq!(other.fix(), replace);
    assert_eq!(other.archive_fix(), replace);
}

/// The header counts its dimensions in one byte: 256 of them are refused,
/// and nothing is written (a count of 256 wrapped to 0 before).
#[test]
fn write_idx_refuses_more_dimensions_than_a_header_counts() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("x");
    let e = write_idx(&p, &[1; 256], &[7]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "256 dimensions: an IDX header counts at most 255"
    );
    assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
    write_idx(&p, &[1; 255], &[7]).unwrap();
    assert_eq!(std::fs::read(&p).unwrap()[..4], [0, 0, 8, 255]);
}
