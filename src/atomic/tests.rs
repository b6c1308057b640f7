use super::*;

/// A file another process writes at the path while a guarded save's
/// bytes are written (after any check made before them) is kept, and
/// the save goes beside it; the stamp returned is of the file written,
/// and a later write of another length tells from it even where the
/// time is set back to the same tick.
#[test]
fn a_guarded_save_keeps_a_file_written_while_it_wrote() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("m.jsonl");
    let (_, first) = write_guarded(&path, b"{\"epoch\":1}\n", None).unwrap();
    assert_eq!(stamp(&path), Some(first));
    let other = path.clone();
    let written = guarded_save_while(&path, first, move || {
        fs::write(&other, b"another run's").unwrap()
    });
    let (own, second) = written.unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"another run's");
    let own_name = format!("m.{}.jsonl", std::process::id());
    assert_eq!(own, t.path().join(&own_name));
    assert_eq!(fs::read(&own).unwrap(), b"{\"epoch\":2}\n");
    assert_eq!(stamp(&own), Some(second));
    // Rewritten in place, one byte longer, its time put back.
    let modified = fs::metadata(&own).unwrap().modified().unwrap();
    fs::write(&own, b"{\"epoch\":22}\n").unwrap();
    let f = fs::OpenOptions::new().write(true).open(&own).unwrap();
    f.set_modified(modified).unwrap();
    drop(f);
    assert_ne!(stamp(&own), Some(second));
}

/// The guard of a run's model save where the run found no file at its
/// `--save` path.
#[cfg(unix)]
fn new_models_guard() -> Guard<'static> {
    Guard {
        seen: Some(None),
        what: "--save path",
        goes: "model goes",
        from_checkpoint: false,
    }
}

/// A guarded save checks the path and renames onto it under the lock of
/// its directory, which another run's guarded save holds for its own
/// check and rename: a file that run writes meanwhile is seen, not
/// renamed over (two runs whose saves met at one moment each said their
/// model was saved, and one of the two files was lost).
#[cfg(unix)]
#[test]
fn a_guarded_save_waits_for_the_directorys_lock() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("m.safetensors");
    // Another run's save, between its check and its rename.
    let held = lock_dir(&path).expect("a directory lock");
    let (done, finished) = std::sync::mpsc::channel();
    let ours = path.clone();
    let save = std::thread::spawn(move || {
        let written = write_guarded(&ours, b"this run's", Some(new_models_guard()));
        done.send(()).unwrap();
        written.map(|(p, _)| p)
    });
    let waited = finished.recv_timeout(std::time::Duration::from_millis(300));
    assert!(waited.is_err(), "saved while another save held the lock");
    assert!(!path.exists());
    // The other run renames its file into place, then lets go.
    fs::write(&path, b"another run's").unwrap();
    drop(held);
    let own = save.join().unwrap().unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"another run's");
    assert_eq!(
        own,
        t.path()
            .join(format!("m.{}.safetensors", std::process::id()))
    );
    assert_eq!(fs::read(&own).unwrap(), b"this run's");
}

/// A lock that another program holds on the directory for longer than
/// [`LOCK_WAIT`] (`flock DIR cmd`) does not hold a save up for as long:
/// after the wait it goes on unlocked.
#[cfg(unix)]
#[test]
fn a_save_goes_on_unlocked_past_the_wait() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("m.safetensors");
    let _held = lock_dir(&path).expect("a directory lock");
    let start = std::time::Instant::now();
    let (own, _) = write_guarded(&path, b"this run's", Some(new_models_guard())).unwrap();
    assert_eq!(own, path);
    assert_eq!(fs::read(&path).unwrap(), b"this run's");
    // (It did wait for the lock first.)
    assert!(start.elapsed() >= LOCK_WAIT);
}

/// A guarded save of a log's second epoch to `path`, which this run
/// last saw as `first`, with `meanwhile` run just before each rename
/// (what another process does during the save).
fn guarded_save_while(
    path: &Path,
    first: Stamp,
    meanwhile: impl Fn() + 'static,
) -> Result<(PathBuf, Stamp)> {
    BEFORE_RENAME.with(|h| *h.borrow_mut() = Some(Box::new(meanwhile)));
    let guard = Guard {
        seen: Some(Some(first)),
        what: "--metrics",
        goes: "log goes",
        from_checkpoint: false,
    };
    let written = write_guarded(path, b"{\"epoch\":2}\n", Some(guard));
    BEFORE_RENAME.with(|h| *h.borrow_mut() = None);
    written
}

/// A save that goes beside its path and fails there too says where it
/// went ([`Redirected`]), reads as that failure once, and keeps its
/// causes in the chain (where a limit's fix is found).
#[test]
fn a_redirected_save_that_fails_says_where_it_went() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("d");
    fs::create_dir(&dir).unwrap();
    let path = dir.join("m.jsonl");
    let (_, first) = write_guarded(&path, b"{\"epoch\":1}\n", None).unwrap();
    let (other, calls) = (path.clone(), std::cell::Cell::new(0));
    // Another process writes the path during the save; then, during
    // the save beside it, the directory goes.
    let written = guarded_save_while(&path, first, move || {
        calls.set(calls.get() + 1);
        match calls.get() {
            1 => fs::write(&other, b"another run's").unwrap(),
            _ => fs::remove_dir_all(other.parent().unwrap()).unwrap(),
        }
    });
    let e = written.unwrap_err();
    let own = dir.join(format!("m.{}.jsonl", std::process::id()));
    assert_eq!(e.downcast_ref::<Redirected>().map(|r| &r.own), Some(&own));
    let text = format!("{e:#}");
    let says = format!("cannot save to {}: ", own.display());
    assert!(text.starts_with(&says), "{text}");
    assert_eq!(text.matches("cannot save to").count(), 1, "{text}");
    let io = e.chain().find_map(|c| c.downcast_ref::<std::io::Error>());
    assert_eq!(
        io.map(|e| e.kind()),
        Some(std::io::ErrorKind::NotFound),
        "{text}"
    );
}

/// What each kind takes for its own: the start of what simplenn writes
/// there, or nothing yet.
#[test]
fn kinds_know_their_own_files() {
    let model = |n: u64, rest: &[u8]| [&n.to_le_bytes()[..], rest].concat();
    let st = model(2, b"{}");
    assert!(Kind::Model.fits(&st, st.len() as u64));
    // A header length past the file's end: not a safetensors file.
    let cut = model(99, b"{}");
    assert!(!Kind::Model.fits(&cut, cut.len() as u64));
    assert!(!Kind::Model.fits(b"# a README that is long enough", 30));
    for kind in [Kind::Model, Kind::Log, Kind::Png, Kind::Svg] {
        assert!(kind.fits(b"", 0), "{kind:?}: empty");
        assert!(kind.fits(b" \n\t", 3), "{kind:?}: blanks");
        // Blanks, then more than the head holds: not known to be blank.
        assert!(!kind.fits(b" \n\t", 5000), "{kind:?}: blanks, then more");
    }
    assert!(Kind::Log.fits(b"\n{\"epoch\":1}", 12));
    assert!(!Kind::Log.fits(b"epoch 1 done", 12));
    assert!(Kind::Png.fits(b"\x89PNG\r\n\x1a\n....", 12));
    assert!(!Kind::Png.fits(b"GIF89a", 6));
    for svg in [
        &b"<svg width=\"10\">"[..],
        b"\xef\xbb\xbf <?xml version=\"1.0\"?><svg>",
        b"<!DOCTYPE svg PUBLIC",
    ] {
        assert!(Kind::Svg.fits(svg, svg.len() as u64), "{svg:?}");
    }
    assert!(!Kind::Svg.fits(b"<!DOCTYPE html>", 15));
    // Files a black-box audit found taken for, or refused as, these kinds.
    let cases: [(Kind, &[u8], bool); 16] = [
        (
            Kind::Svg,
            b"<!-- Font Awesome --><svg xmlns=\"http://www.w3.org/2000/svg\"/>",
            true,
        ),
        (Kind::Svg, b"<!---->\n<svg>", true),
        (
            Kind::Svg,
            b"<?xml version=\"1.0\"?>\n<!-- c -->\n<!DOCTYPE svg [ <!ENTITY a \"b\"> ]>\n<svg/>",
            true,
        ),
        (
            Kind::Svg,
            b"<?xml version=\"1.0\"?><?xml-stylesheet href=\"s.css\"?><svg:svg xmlns:svg=\"x\">",
            true,
        ),
        (
            Kind::Svg,
            b"<?xml version=\"1.0\"?>\n<project><modelVersion/></project>",
            false,
        ),
        (
            Kind::Svg,
            b"<?xml version=\"1.0\"?><!-- <svg> --><project/>",
            false,
        ),
        (Kind::Svg, b"<svg is a format I like", false),
        (Kind::Svg, b"<svgfoo>", false),
        (Kind::Svg, b"<!DOCTYPE html><html><svg/></html>", false),
        (
            Kind::Log,
            b"{\"epoch\":1,\"lr\":0.1}\r\n\r\n{\"epoch\":2}\n",
            true,
        ),
        (Kind::Log, b"{\\rtf1\\ansi hello}", false),
        (Kind::Log, b"{ echo hi; }\n", false),
        (Kind::Log, b"{\n  \"a\": 1\n}\n", false),
        (Kind::Log, b"{\"epoch\":1}\nplain text line\n", false),
        (Kind::Log, b"{\"a\":1}\n", false),
        (Kind::Png, b"\x89PNG\r\n\x1a\n", true),
    ];
    for (kind, text, want) in cases {
        let got = kind.fits(text, text.len() as u64);
        assert_eq!(got, want, "{kind:?}: {}", String::from_utf8_lossy(text));
    }
    let fits = |kind: Kind, text: &[u8]| kind.fits(text, text.len() as u64);
    let st = |header: &[u8]| [&(header.len() as u64).to_le_bytes()[..], header].concat();
    assert!(fits(Kind::Model, &st(br#"{"__metadata__":{"a":"b"}}  "#)));
    assert!(!fits(Kind::Model, &st(b"{not json!")));
    // A header longer than the head read: it must open an object of names.
    let long = |start: &[u8]| [&100_000u64.to_le_bytes()[..], start].concat();
    for (start, want) in [
        (&br#"{"__metadata__":{"#[..], true),
        (b"{ \"0.weight", true),
        (b"{}", true),
        (b"{x", false),
        (b"[1, 2", false),
    ] {
        let head = long(start);
        let got = Kind::Model.fits(&head, 200_000);
        assert_eq!(got, want, "{}", String::from_utf8_lossy(start));
    }
    // A start tag the head cuts off passes as far as it goes; the same
    // bytes as the whole file are no SVG.
    for cut in [
        &b"<svg width"[..],
        b"<svg width=",
        b"<svg width=\"1",
        b"<svg /",
    ] {
        assert!(
            Kind::Svg.fits(cut, 5000),
            "{}",
            String::from_utf8_lossy(cut)
        );
        let len = cut.len() as u64;
        assert!(
            !Kind::Svg.fits(cut, len),
            "{}",
            String::from_utf8_lossy(cut)
        );
    }
    // A doctype of another name, then the root: past its internal subset
    // (whose `>`s end nothing) where it has one.
    for (text, want) in [
        (&b"<!DOCTYPE x [ <!ENTITY a \"b\"> ]>\n<svg/>"[..], true),
        (b"<!DOCTYPE x>\n<svg/>", true),
        (b"<!DOCTYPE x [ <!ENTITY a \"b\"> ]>\n<html/>", false),
    ] {
        let got = Kind::Svg.fits(text, text.len() as u64);
        assert_eq!(got, want, "{}", String::from_utf8_lossy(text));
    }
}

/// A save that no disk has room for is refused, naming the room; one
/// of nothing passes.
#[cfg(unix)]
#[test]
fn a_save_larger_than_the_disks_room_is_refused_before_the_work() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    check_room(&path, 0, "the model").unwrap();
    let e = check_room(&path, u64::MAX, "the model").unwrap_err();
    let e = e.to_string();
    assert!(
        e.starts_with(&format!("cannot save to {}: ", path.display())),
        "{e}"
    );
    assert!(
        e.contains(" GB, and the model needs 18446744073.7 GB or more; free space"),
        "{e}"
    );
}

/// A temporary file is listed for a second Ctrl-C while it exists, and
/// gone when dropped, unless it was renamed into place.
#[test]
fn temporary_files_are_listed_while_they_exist() {
    let dir = tempfile::tempdir().unwrap();
    let listed = |p: &Path| IN_FLIGHT.lock().unwrap().iter().any(|q| q == p);
    let (tmp, target) = (dir.path().join(".m.tmp1"), dir.path().join("m"));
    let (mut f, t) = TempFile::create_new([tmp.clone()]).unwrap();
    f.write_all(b"x").unwrap();
    assert!(listed(&tmp) && tmp.exists());
    drop(t);
    assert!(!listed(&tmp) && !tmp.exists(), "a dropped one is removed");
    let (_, t) = TempFile::create_new([tmp.clone()]).unwrap();
    t.renamed(&target).unwrap();
    assert!(!listed(&tmp) && !tmp.exists() && target.exists());
    // A failed save leaves neither a temporary file nor a listing: the
    // rename of an IDX file onto a non-empty directory fails after its
    // temporary file was written.
    let busy = dir.path().join("d");
    fs::create_dir(&busy).unwrap();
    fs::write(busy.join("f"), b"").unwrap();
    crate::idx::write_idx(&busy, &[1], &[0]).unwrap_err();
    let busy_tmp = tmp_path(dir.path(), &busy);
    assert!(!listed(&busy_tmp) && !busy_tmp.exists());
    fs::remove_dir_all(&busy).unwrap();
    write_atomic(&dir.path().join("sub/m"), b"x").unwrap_err();
    write_atomic(&target, b"y").unwrap();
    assert_eq!(fs::read(&target).unwrap(), b"y");
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// A writer in another PID namespace (a container sharing the
/// directory) may have a process id that is dead here, or this
/// process's own: its file, locked while written, is neither removed
/// as stale nor truncated by a writer that takes the same name.
#[cfg(unix)]
#[test]
fn another_namespaces_temporary_file_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("m.st");
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    // Its writer's id is dead here, but the writer holds it.
    let theirs = dir.path().join(format!(".m.st.tmp{dead}"));
    let (mut f, mut held) = TempFile::create_new([theirs.clone()]).unwrap();
    f.write_all(b"theirs").unwrap();
    assert_eq!(remove_stale(dir.path(), ".m.st.tmp"), 0);
    write_atomic(&target, b"ours").unwrap();
    assert_eq!(fs::read(&theirs).unwrap(), b"theirs");
    // A writer of this process's id elsewhere holds the first name.
    let first = tmp_path(dir.path(), &target);
    fs::write(&first, b"same id").unwrap();
    let (_, mine) = TempFile::create_new(tmp_names(dir.path(), &target)).unwrap();
    assert_eq!(mine.path(), PathBuf::from(format!("{}-1", first.display())));
    assert_eq!(fs::read(&first).unwrap(), b"same id");
    mine.renamed(&target).unwrap();
    // Once its writer is gone (killed: its lock goes with it), the
    // dead id's file is stale.
    held.done = true;
    drop(held);
    drop(f);
    assert!(theirs.exists());
    // A child that another test's thread is starting holds a copy of
    // `f`'s descriptor, and so its lock, until it execs: a moment, but
    // one that failed this 2 runs in 25 of the whole suite.
    let removed = (0..200)
        .map(|_| remove_stale(dir.path(), ".m.st.tmp"))
        .inspect(|&n| {
            if n == 0 {
                std::thread::sleep(std::time::Duration::from_millis(5))
            }
        })
        .find(|&n| n > 0);
    assert_eq!(removed, Some(1));
    assert!(!theirs.exists() && first.exists());
}

/// Temporary files of processes that no longer exist go; this
/// process's, a live one's (pid 1), and other names stay; and a save or
/// a decompression clears those left beside its own file.
#[cfg(unix)]
#[test]
fn stale_temporary_files_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    // A pid no process has now: a child's, once it has been reaped.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let me = std::process::id();
    let names = [
        format!(".m.st.tmp{dead}"),
        format!("train-labels-idx1-ubyte.tmp{dead}-3"),
        format!(".m.st.tmp{me}"),
        ".m.st.tmp1".to_string(),
        format!(".m.st.tmp{dead}.bak"),
        format!(".m.st.tmp1.tmp{dead}"),
        // Not a name a save makes (`-` then the call's number).
        format!(".m.st.tmp{dead}-x"),
    ];
    for n in &names {
        fs::write(at(n), b"x").unwrap();
    }
    assert_eq!(remove_stale(dir.path(), ".m.st.tmp"), 1);
    assert!(!at(&names[0]).exists());
    for n in &names[2..] {
        assert!(at(n).exists(), "{n} was removed");
    }
    // A save removes its own file's leftovers, leaves the
    // decompression's alone, and a decompression removes those.
    let own = at(&format!(".saved.st.tmp{dead}"));
    fs::write(&own, b"x").unwrap();
    write_atomic(&at("saved.st"), b"y").unwrap();
    assert!(!own.exists(), "the save left its own leftover");
    assert!(at(&names[1]).exists());
    let gz = at("train-labels-idx1-ubyte.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&[0, 0, 8, 1, 0, 0, 0, 1, 7]).unwrap();
    fs::write(&gz, enc.finish().unwrap()).unwrap();
    crate::idx::locate(dir.path(), "train-labels-idx1-ubyte", 1).unwrap();
    assert!(!at(&names[1]).exists(), "the decompression left it");
}

/// A save through a symbolic link replaces the file at the end of its
/// links (creating it if need be) and leaves the links as they were;
/// a link to a device is refused, and a link into a missing directory
/// is named with where it leads.
#[cfg(unix)]
#[test]
fn saves_follow_symbolic_links() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    let is_link = |p: &Path| fs::symlink_metadata(p).unwrap().file_type().is_symlink();
    fs::create_dir(at("sub")).unwrap();
    // A relative link to a link, in another directory, to a file not yet there.
    symlink("sub/hop", at("link")).unwrap();
    symlink("../m.st", at("sub/hop")).unwrap();
    assert_eq!(destination(&at("link")), at("sub/../m.st"));
    write_atomic(&at("link"), b"one").unwrap();
    write_atomic(&at("link"), b"two").unwrap();
    assert_eq!(fs::read(at("m.st")).unwrap(), b"two");
    assert!(is_link(&at("link")) && is_link(&at("sub/hop")));
    // An absolute link to a device.
    symlink("/dev/null", at("null")).unwrap();
    let e = format!("{:#}", write_atomic(&at("null"), b"x").unwrap_err());
    assert!(e.contains("not a regular file"), "{e}");
    assert!(is_link(&at("null")));
    // A link to a FIFO, refused, then replaced by a file: a save to the
    // path writes that file, not the FIFO the link led to when first
    // resolved (it was renamed over: for root, `/dev/zero` turned into a
    // file of the bytes).
    let fifo = std::ffi::CString::new(at("fifo").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: `fifo` is a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    symlink(at("fifo"), at("to-fifo")).unwrap();
    let e = format!("{:#}", write_atomic(&at("to-fifo"), b"x").unwrap_err());
    assert!(e.contains("not a regular file"), "{e}");
    fs::remove_file(at("to-fifo")).unwrap();
    fs::write(at("to-fifo"), b"a file now").unwrap();
    write_atomic(&at("to-fifo"), b"saved").unwrap();
    assert_eq!(fs::read(at("to-fifo")).unwrap(), b"saved");
    let fifo = fs::symlink_metadata(at("fifo")).unwrap().file_type();
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&fifo));
    // A link into a directory that does not exist, and a path through a file.
    symlink("gone/m.st", at("dangling")).unwrap();
    let e = format!("{:#}", check_dir(&at("dangling")).unwrap_err());
    assert!(e.contains("(a link to ") && e.contains("gone/m.st"), "{e}");
    assert!(e.contains("does not exist; create it"), "{e}");
    let e = format!("{:#}", check_dir(&at("m.st/x")).unwrap_err());
    assert!(e.contains("m.st is not a directory"), "{e}");
    // An empty path (a library caller's: the flags refuse it) is said to
    // be one, not to end in '/'.
    let e = format!("{:#}", check_dir(Path::new("")).unwrap_err());
    assert_eq!(
        e,
        "cannot save to an empty path; name a file, e.g. model.safetensors"
    );
    // A loop of links is refused, and stays as it was.
    symlink("loop2", at("loop1")).unwrap();
    symlink("loop1", at("loop2")).unwrap();
    let e = format!("{:#}", write_atomic(&at("loop1"), b"x").unwrap_err());
    assert!(e.contains("go round in a loop"), "{e}");
    assert!(is_link(&at("loop1")) && is_link(&at("loop2")));
    fs::remove_file(at("loop1")).unwrap();
    fs::remove_file(at("loop2")).unwrap();
    // Nothing else was left: the seven names, the directory, its link.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 7);
    assert_eq!(fs::read_dir(at("sub")).unwrap().count(), 1);
}

/// A directory of a special file system that takes no new files
/// (/proc: ENOENT for a file it does not have) is said to be one, not
/// as "No such file or directory" in a directory that is there.
#[cfg(target_os = "linux")]
#[test]
fn a_special_file_system_is_said_to_take_no_files() {
    let e = format!(
        "{:#}",
        check_dir(Path::new("/proc/m.safetensors")).unwrap_err()
    );
    assert!(
        e.contains("/proc takes no new files (") && e.ends_with("choose a directory on a disk"),
        "{e}"
    );
}

/// A save over an existing file keeps that file's permissions.
#[cfg(unix)]
#[test]
fn a_replaced_file_keeps_its_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.st");
    write_atomic(&path, b"one").unwrap();
    // A mode no umask gives a new file (others may read, the group not).
    fs::set_permissions(&path, fs::Permissions::from_mode(0o604)).unwrap();
    write_atomic(&path, b"two").unwrap();
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!((fs::read(&path).unwrap(), mode), (b"two".to_vec(), 0o604));
}

/// A file made read-only is not saved over (a rename would replace it
/// all the same); a writable one of the right kind is.
#[cfg(unix)]
#[test]
fn a_write_protected_file_is_not_replaced() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.jsonl");
    fs::write(&path, b"").unwrap();
    assert!(check_replaceable("--metrics", &path, Kind::Log).is_ok());
    fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
    let e = check_replaceable("--metrics", &path, Kind::Log)
        .unwrap_err()
        .to_string();
    assert!(e.contains("run.jsonl: that file is write-protected"), "{e}");
    assert!(e.contains("chmod u+w"), "{e}");
}

/// A file of /proc is named as one, not as write-protected (chmod cannot
/// change it) nor as another kind of file to move away.
#[cfg(target_os = "linux")]
#[test]
fn a_file_of_proc_is_said_to_be_on_a_special_file_system() {
    for (path, kind) in [
        ("/proc/self/status", Kind::Model),
        ("/proc/self/comm", Kind::Model),
        ("/proc/self/comm", Kind::Log),
    ] {
        let e = check_replaceable("--save", Path::new(path), kind)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!("--save {path}: that file is on /proc (procfs), a special file system where no save can replace a file; choose a path on a disk")
        );
    }
}

/// A second Ctrl-C removes every temporary file in flight. Run in a
/// child process (this test binary, this test alone), since
/// `remove_in_flight` keeps the list locked for good.
#[test]
fn remove_in_flight_removes_the_temporary_files() {
    const DIR: &str = "SIMPLENN_TEST_IN_FLIGHT_DIR";
    if let Some(dir) = std::env::var_os(DIR) {
        let tmp = Path::new(&dir).join(".m.tmp1");
        let (_, t) = TempFile::create_new([tmp.clone()]).unwrap();
        // Still listed; never dropped, since its drop would wait for
        // the lock for ever (a failed assert below too).
        std::mem::forget(t);
        assert!(tmp.exists());
        assert_eq!(remove_in_flight(), 1);
        assert!(!tmp.exists(), "left in place");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "atomic::tests::remove_in_flight_removes_the_temporary_files",
            "--test-threads=1",
        ])
        .env(DIR, dir.path())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&child.stdout);
    assert!(child.status.success(), "{out}");
    assert!(out.contains("1 passed"), "{out}");
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_path_made_a_directory_is_refused_with_an_example_of_its_kind() {
    // A run's log, picture or model whose path another program made a
    // directory meanwhile: the example is a file of what was written.
    let dir = tempfile::tempdir().unwrap();
    for (name, example) in [
        ("m.jsonl", "metrics.jsonl"),
        ("c.svg", "curve.svg"),
        ("g.png", "augment.png"),
        ("m.safetensors", "model.safetensors"),
        ("noext", "model.safetensors"),
    ] {
        let path = dir.path().join(name);
        fs::create_dir(&path).unwrap();
        let e = format!("{:#}", write_atomic(&path, b"x").unwrap_err());
        let want = format!(
            "it is a directory; name a file in it, e.g. {}",
            path.join(example).display()
        );
        assert!(e.ends_with(&want), "{e}");
        assert_eq!(fs::read_dir(&path).unwrap().count(), 0, "{name}");
    }
}
