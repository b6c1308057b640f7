//! Interruptions with a real child process: Ctrl-C saves a checkpoint and
//! dies of SIGINT (130 to a shell), SIGTERM and SIGHUP do the same (143 and
//! 129; a signal inherited ignored stays ignored), a second signal quits at
//! once while one delivered twice (GNU `timeout`'s way) is one stop, `kill -9` in the middle of writing checkpoints never leaves an
//! unloadable file, a stop's notice on a terminal goes above the progress
//! bar, a terminal that hangs up costs nothing, nor does a
//! reader that stops reading hold a stop, a signal before
//! the first step writes no checkpoint, and the commands that do not train
//! quit at once, leaving no temporary file.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use simplenn::{checkpoint, modelfile};

fn spawn(cwd: &Path, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    spawn_with(cwd, args, |_| {})
}

/// [`spawn`], with the command `configure`d first. The child starts with
/// the three stopping signals at their defaults, whatever this test
/// inherited (a CI script's `&` job ignores SIGINT, `nohup` SIGHUP), since
/// the run keeps a signal it inherited ignored.
fn spawn_with(
    cwd: &Path,
    args: &[&str],
    configure: impl FnOnce(&mut Command),
) -> (Child, mpsc::Receiver<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_simplenn"));
    cmd.args(args)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    stop_signals_at_their_defaults(&mut cmd);
    configure(&mut cmd);
    let mut child = cmd.spawn().expect("binary starts");
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Start `cmd` with the three stopping signals at their defaults.
fn stop_signals_at_their_defaults(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: signal(2) is async-signal-safe, as pre_exec requires.
    unsafe {
        cmd.pre_exec(|| {
            for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::signal(s, libc::SIG_DFL);
            }
            Ok(())
        });
    }
}

/// Wait for a stdout line containing `needle` (the run's own progress).
fn wait_for(rx: &mpsc::Receiver<String>, needle: &str) -> String {
    loop {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(l) if l.contains(needle) => return l,
            Ok(_) => {}
            Err(e) => panic!("no line with {needle:?}: {e}"),
        }
    }
}

fn send(child: &Child, signal: libc::c_int) {
    // SAFETY: plain kill(2) on our own child's pid; no memory is involved.
    let r = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    assert_eq!(r, 0, "kill -{signal} failed");
}

fn sigint(child: &Child) {
    send(child, libc::SIGINT);
}

/// The child's status as a shell reports it (128 + the signal for a death
/// by one), and its stderr.
fn stderr_of(child: Child) -> (Option<i32>, String) {
    let (status, err) = status_of(child);
    (status.code().or(status.signal().map(|s| 128 + s)), err)
}

fn status_of(child: Child) -> (std::process::ExitStatus, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A 5,000-epoch run on small data in `dir` (seconds: far longer than any
/// test waits on it), with `extra` flags, once its second epoch is done:
/// the data directory, the child, its stdout lines.
fn long_run(dir: &Path, extra: &[&str]) -> (std::path::PathBuf, Child, mpsc::Receiver<String>) {
    long_run_with(dir, extra, |_| {})
}

/// [`long_run`], with the command `configure`d first.
fn long_run_with(
    dir: &Path,
    extra: &[&str],
    configure: impl FnOnce(&mut Command),
) -> (std::path::PathBuf, Child, mpsc::Receiver<String>) {
    let data = common::small_mnist(&dir.join("data"), 3_000, 200);
    let mut args = vec![
        "--data",
        data.to_str().unwrap(),
        "--epochs",
        "5000",
        "--val",
        "500",
        "--hidden",
        "32",
        "--no-progress",
    ];
    args.extend_from_slice(extra);
    let (child, rx) = spawn_with(dir, &args, configure);
    wait_for(&rx, "epoch    2/5000");
    (data, child, rx)
}

/// `--resume ck` of a [`long_run`] on `data` in `dir`, saving to `save`.
fn resume(dir: &Path, data: &Path, ck: &str, save: &str) -> (Child, mpsc::Receiver<String>) {
    let data = data.to_str().unwrap();
    let args = [
        "--data",
        data,
        "--resume",
        ck,
        "--save",
        save,
        "--no-progress",
    ];
    spawn(dir, &args)
}

#[test]
fn ctrl_c_saves_a_checkpoint_and_dies_of_sigint() {
    let t = tempfile::tempdir().unwrap();
    let (data, child, _rx) = long_run(t.path(), &["--save", "m.safetensors"]);
    sigint(&child);
    // A death by SIGINT, not an exit(130): bash stops a script only after
    // a child that died of it.
    let (status, err) = status_of(child);
    assert_eq!(
        (status.code(), status.signal()),
        (None, Some(libc::SIGINT)),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let last = err
        .lines()
        .rfind(|l| !l.contains("debug build"))
        .unwrap_or_default()
        .to_string();
    // A stop asked for: `stopped:`, not `error:`.
    assert!(
        last.starts_with("simplenn: stopped: interrupted after step")
            && last.contains("checkpoint saved to"),
        "{err}"
    );
    assert!(last.contains("--resume"), "{err}");
    // The checkpoint sits beside the model, loads, and is past epoch 2;
    // the unfinished model itself was not written.
    let ck = checkpoint::load_checkpoint(&t.path().join("checkpoint.safetensors")).unwrap();
    // 2,500 training images at batch 128: 20 steps an epoch.
    assert!(ck.steps >= 2 * 20, "steps {}", ck.steps);
    assert!(!t.path().join("m.safetensors").exists());
    // And the run continues from it.
    let (child, rx) = resume(t.path(), &data, "checkpoint.safetensors", "m.safetensors");
    let resumed = wait_for(&rx, "resuming at epoch");
    assert!(resumed.contains(&format!("step {}", ck.steps)), "{resumed}");
    let mut child = child;
    child.kill().unwrap();
    let _ = child.wait();
}

/// SIGHUP (the terminal's window closed, the SSH connection dropped) stops
/// the run as Ctrl-C does, with SIGHUP's status; but a run started with
/// SIGHUP ignored (`nohup`) keeps it ignored and trains on.
#[test]
fn sighup_checkpoints_unless_the_run_was_started_ignoring_it() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("hup");
    std::fs::create_dir(&dir).unwrap();
    let (_, child, _rx) = long_run(&dir, &["--save", "m.safetensors"]);
    send(&child, libc::SIGHUP);
    let (code, err) = stderr_of(child);
    assert_eq!(code, Some(129), "{err}");
    assert!(
        err.contains("simplenn: hung up (SIGHUP): finishing this step"),
        "{err}"
    );
    let last = err.lines().next_back().unwrap_or_default();
    assert!(
        last.contains("hung up (SIGHUP) after step") && last.contains("checkpoint saved to"),
        "{err}"
    );
    checkpoint::load_checkpoint(&dir.join("checkpoint.safetensors")).unwrap();

    ignored_signal_trains_on(t.path(), libc::SIGHUP, libc::SIGINT, 130);
}

/// A shell script's `cmd &` starts the job with Ctrl-C ignored, so that
/// Ctrl-C stops the script but not what it left running; and a parent may
/// start a run with SIGTERM ignored. Each stays ignored, and the other
/// signals still stop the run.
#[test]
fn ctrl_c_and_sigterm_inherited_ignored_stay_ignored() {
    let t = tempfile::tempdir().unwrap();
    ignored_signal_trains_on(t.path(), libc::SIGINT, libc::SIGTERM, 143);
    ignored_signal_trains_on(t.path(), libc::SIGTERM, libc::SIGINT, 130);
}

/// Start a long run with `ignored` ignored, send it: still training half a
/// second later; then `stop` stops it with `status`, saying nothing of the
/// ignored signal.
fn ignored_signal_trains_on(parent: &Path, ignored: libc::c_int, stop: libc::c_int, status: i32) {
    use std::os::unix::process::CommandExt;
    let dir = parent.join(format!("ignoring-{ignored}"));
    std::fs::create_dir(&dir).unwrap();
    let (_, mut child, _rx) = long_run_with(&dir, &["--save", "m.safetensors"], |cmd| {
        // SAFETY: signal(2) is async-signal-safe, as pre_exec requires.
        unsafe {
            cmd.pre_exec(move || {
                libc::signal(ignored, libc::SIG_IGN);
                Ok(())
            });
        }
    });
    send(&child, ignored);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "signal {ignored}, inherited ignored, stopped the run"
    );
    send(&child, stop);
    let (code, err) = stderr_of(child);
    assert_eq!(code, Some(status), "{err}");
    // The notice the ignored signal would have printed.
    let name = match ignored {
        libc::SIGHUP => "SIGHUP",
        libc::SIGTERM => "SIGTERM",
        _ => "interrupted:",
    };
    assert!(!err.contains(name), "{err}");
    assert!(dir.join("checkpoint.safetensors").exists(), "{err}");
}

/// SIGTERM (`kill`, `timeout`, a batch system's time limit) stops the run
/// as Ctrl-C does, with the status shells give SIGTERM.
#[test]
fn sigterm_saves_a_checkpoint_and_exits_143() {
    let t = tempfile::tempdir().unwrap();
    let (_, child, _rx) = long_run(t.path(), &["--save", "m.safetensors"]);
    send(&child, libc::SIGTERM);
    let (code, err) = stderr_of(child);
    assert_eq!(code, Some(143), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("simplenn: terminated (SIGTERM): finishing this step"),
        "{err}"
    );
    let last = err.lines().next_back().unwrap_or_default();
    assert!(
        last.contains("terminated by SIGTERM after step")
            && last.contains("checkpoint saved to")
            && last.contains("--resume"),
        "{err}"
    );
    let ck = checkpoint::load_checkpoint(&t.path().join("checkpoint.safetensors")).unwrap();
    assert!(ck.steps >= 2 * 20, "steps {}", ck.steps);
    assert!(!t.path().join("m.safetensors").exists());
}

#[test]
fn ctrl_c_without_a_place_for_a_checkpoint_says_none_was_written() {
    let t = tempfile::tempdir().unwrap();
    let (_, child, _rx) = long_run(t.path(), &["--no-save"]);
    sigint(&child);
    let (code, err) = stderr_of(child);
    assert_eq!(code, Some(130), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // Neither the notice nor the last line may promise a checkpoint.
    assert!(!err.contains("saving a checkpoint"), "{err}");
    let last = err.lines().next_back().unwrap_or_default();
    assert!(
        last.contains("interrupted after step")
            && last.contains("no checkpoint written")
            && last.contains("--checkpoint"),
        "{err}"
    );
    assert!(!t.path().join("checkpoint.safetensors").exists());
}

#[test]
fn a_second_ctrl_c_exits_at_once() {
    a_second_signal_exits_at_once(libc::SIGINT, libc::SIGINT, 130);
}

/// After a SIGTERM, either signal quits at once, with its own status.
#[test]
fn a_signal_after_sigterm_exits_at_once() {
    a_second_signal_exits_at_once(libc::SIGTERM, libc::SIGTERM, 143);
    a_second_signal_exits_at_once(libc::SIGTERM, libc::SIGINT, 130);
}

/// `first` from this process, then `second` from another one (a second
/// request: the same signal again from the same process that soon is the
/// first's echo, as the next test shows).
fn a_second_signal_exits_at_once(first: libc::c_int, second: libc::c_int, status: i32) {
    // Where the step ended and the whole checkpoint was written in the 30
    // ms between the two signals (a fast machine, a step near its end), the
    // first stop was over before the second was sent: not the case this
    // test is about, so it is run again (that stop is
    // `a_stop_delivered_twice_is_one_stop`'s). Told by the checkpoint's
    // time, which a save that waited for the second signal has not before.
    let mut tries = 0;
    let (st, err, t) = loop {
        let (st, err, t, second_at) = signalled_twice(first, second, true);
        let saved = t.path().join("checkpoint.safetensors");
        let over_before =
            std::fs::metadata(&saved).is_ok_and(|m| m.modified().unwrap() < second_at);
        tries += 1;
        match (over_before, tries) {
            (false, _) => break (st, err, t),
            (true, 3) => {
                panic!("three times the first stop was over before the second signal: {err}")
            }
            (true, _) => {
                eprintln!("the first stop was over before the second signal; again: {err}")
            }
        }
    };
    // Dead of the second signal, not exited with its number.
    let died = (st.code(), st.signal().map(|s| 128 + s));
    assert_eq!(died, (None, Some(status)), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // Mid-step, most often, with no file being written: nothing abandoned
    // to speak of. Where the step ended first (on a fast, idle machine),
    // the checkpoint being written is abandoned, and the line says so.
    assert!(
        err.lines().any(|l| l.ends_with(" again: quitting at once")
            || l.ends_with(" again: quitting at once; the file being written was abandoned and its temporary file removed, so the file it would have replaced stays as it was (files written whole before it, a checkpoint among them, are kept)")),
        "{err}"
    );
    assert!(!t.path().join("checkpoint.safetensors").exists(), "{err}");
    // Nor its temporary file (`.checkpoint.safetensors.tmpPID`).
    let left: Vec<String> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?} {err}");
    assert!(
        !err.contains("checkpoint saved"),
        "the second signal must not wait for the save: {err}"
    );
    assert!(!t.path().join("m.safetensors").exists());
}

/// One stop delivered twice is one stop: GNU `timeout` signals the run and
/// then its process group, and a terminal that closes sends SIGHUP from
/// the kernel and again from its shell. The run checkpoints as for one
/// signal, where a second request would have quit at once.
#[test]
fn a_stop_delivered_twice_is_one_stop() {
    for (signal, other, status) in [
        (libc::SIGTERM, false, 143),
        (libc::SIGINT, false, 130),
        (libc::SIGHUP, true, 129),
    ] {
        let (st, err, t, _) = signalled_twice(signal, signal, other);
        let died = (st.code(), st.signal().map(|s| 128 + s));
        assert_eq!(died, (None, Some(status)), "{err}");
        assert!(!err.contains("again:"), "{err}");
        assert!(err.contains("checkpoint saved to"), "{err}");
        checkpoint::load_checkpoint(&t.path().join("checkpoint.safetensors")).unwrap();
    }
}

/// A run inside one long full-batch step (2,500 images through 4,096
/// hidden units: tens of GFLOP), sent `first` by this process and, 30 ms
/// later, `second`, by another process where `other` says so: its status,
/// stderr and directory, and the time just after `second` was sent.
fn signalled_twice(
    first: libc::c_int,
    second: libc::c_int,
    other: bool,
) -> (
    std::process::ExitStatus,
    String,
    tempfile::TempDir,
    std::time::SystemTime,
) {
    let t = tempfile::tempdir().unwrap();
    let data = common::small_mnist(&t.path().join("data"), 2_600, 100);
    let (child, rx) = spawn(
        t.path(),
        &[
            "--data",
            data.to_str().unwrap(),
            "--epochs",
            "50",
            "--val",
            "100",
            "--hidden",
            "4096",
            "--batch-size",
            "2500",
            "--threads",
            "2",
            "--no-progress",
            "--save",
            "m.safetensors",
        ],
    );
    wait_for(&rx, "threads:");
    std::thread::sleep(Duration::from_millis(200));
    send(&child, first);
    std::thread::sleep(Duration::from_millis(30));
    match other {
        // The shell's own `kill`, from the shell's process.
        true => {
            let kill = format!("kill -{second} {}", child.id());
            let st = Command::new("sh").args(["-c", &kill]).status().unwrap();
            assert!(st.success(), "{kill}");
        }
        false => send(&child, second),
    }
    // Once it is sent (a shell's `kill` is sent milliseconds after the
    // fork): a checkpoint written before this was over before it.
    let second_at = std::time::SystemTime::now();
    let (st, err) = status_of(child);
    (st, err, t, second_at)
}

/// The run under GNU `timeout`, which passes a SIGTERM it receives (or
/// its time limit's) to the run and then to the run's process group:
/// one stop, with its checkpoint, and `timeout` dies of it too.
#[test]
fn a_run_under_timeout_checkpoints_when_timeout_is_stopped() {
    let t = tempfile::tempdir().unwrap();
    let data = common::small_mnist(&t.path().join("data"), 3_000, 200);
    let mut cmd = Command::new("timeout");
    cmd.arg("600")
        .arg(env!("CARGO_BIN_EXE_simplenn"))
        .args(["--data", data.to_str().unwrap(), "--epochs", "5000"])
        .args(["--val", "500", "--hidden", "32", "--no-progress"])
        .args(["--save", "m.safetensors"])
        .current_dir(t.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    stop_signals_at_their_defaults(&mut cmd);
    let mut child = cmd.spawn().expect("timeout (GNU coreutils) starts");
    let out = BufReader::new(child.stdout.take().unwrap());
    for line in out.lines().map_while(Result::ok) {
        if line.contains("epoch    2/5000") {
            break;
        }
    }
    send(&child, libc::SIGTERM); // to `timeout`, which passes it on
    let (code, err) = stderr_of(child);
    assert_eq!(code, Some(143), "{err}");
    assert!(!err.contains("again:"), "{err}");
    let last = err.lines().next_back().unwrap_or_default();
    assert!(
        last.contains("terminated by SIGTERM after step") && last.contains("checkpoint saved to"),
        "{err}"
    );
    checkpoint::load_checkpoint(&t.path().join("checkpoint.safetensors")).unwrap();
}

#[test]
fn kill_9_while_saving_leaves_a_loadable_checkpoint() {
    let t = tempfile::tempdir().unwrap();
    let data = common::small_mnist(&t.path().join("data"), 1_100, 100);
    // Big checkpoints (1,024 hidden units: ~6.5 MB each) written every epoch
    // of a tiny data set. Each round waits for one whole checkpoint, then
    // kills the run the moment bytes of its next checkpoint appear in the
    // temporary file: inside a write, where a save in place would leave a
    // truncated file.
    let args = [
        "--data",
        data.to_str().unwrap(),
        "--epochs",
        "10000",
        "--val",
        "100",
        "--hidden",
        "1024",
        "--batch-size",
        "500",
        "--no-progress",
        "--no-save",
        "--checkpoint",
        "ck.safetensors",
        "--checkpoint-every",
        "1",
    ];
    let path = t.path().join("ck.safetensors");
    let mut previous = 0;
    for round in 0..4 {
        let mut run_args = args.to_vec();
        if round > 0 {
            run_args.extend(["--resume", "ck.safetensors"]);
        }
        let (mut child, rx) = spawn(t.path(), &run_args);
        wait_for(&rx, "checkpoint (epoch");
        let tmp = t.path().join(format!(".ck.safetensors.tmp{}", child.id()));
        // Non-empty: a save's directory check creates and removes the same
        // name empty first.
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while !std::fs::metadata(&tmp).is_ok_and(|m| m.len() > 0) {
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: no checkpoint seen being written into its temporary file {}",
                tmp.display()
            );
            // Short enough to land inside a 6.5 MB write, long enough to
            // leave the cores to the run.
            std::thread::sleep(Duration::from_micros(50));
        }
        child.kill().unwrap(); // SIGKILL, inside the write (or just after it)
        let _ = child.wait();
        let ck = checkpoint::load_checkpoint(&path).unwrap_or_else(|e| {
            panic!("round {round}: checkpoint unloadable after kill -9: {e:#}")
        });
        assert!(
            ck.steps > previous,
            "round {round}: no progress ({} after {previous})",
            ck.steps
        );
        previous = ck.steps;
        // The killed write's temporary file stays (nothing runs after
        // SIGKILL); the next round's resume must not mind it.
    }
}

/// A terminal that hangs up mid-run (`simplenn … & disown`, then the window
/// closes) costs nothing: writes to it fail with EIO, and the run goes on
/// quietly, saves its model and exits 0.
#[test]
fn a_terminal_that_hangs_up_costs_nothing() {
    use std::io::Read;
    let t = tempfile::tempdir().unwrap();
    let data = common::small_mnist(&t.path().join("data"), 3_000, 200);
    // A child holding the other end too would never see it hang up: the
    // controlling end is close-on-exec.
    let (mut master, tty) = common::pty();
    // Standard output and error both on the terminal, as in a shell; the
    // child holds the only copies once `Command` is dropped.
    let mut child = Command::new(env!("CARGO_BIN_EXE_simplenn"))
        .args(["--data", data.to_str().unwrap(), "--epochs", "300"])
        .args(["--val", "500", "--hidden", "32", "--save", "m.safetensors"])
        .current_dir(t.path())
        .stdin(Stdio::null())
        .stdout(tty.try_clone().unwrap())
        .stderr(tty)
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("epoch   2/300  train") {
        let mut buf = [0u8; 4096];
        match master.read(&mut buf) {
            Ok(n) if n > 0 => seen.extend_from_slice(&buf[..n]),
            // The run closed the terminal before its second epoch.
            r => panic!("{r:?}: {}", String::from_utf8_lossy(&seen)),
        }
    }
    drop(master); // the hang-up: the terminal's other end is gone
    let t0 = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            panic!("the run did not finish after the hang-up");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "{}", String::from_utf8_lossy(&seen));
    let model = t.path().join("m.safetensors");
    simplenn::modelfile::load_model(&model).expect("the model was saved whole");
}

/// On a terminal where the progress bar is drawn, Ctrl-C's notice goes on
/// a row of its own: the bar is cleared, the line written, the bar drawn
/// again below it, rather than the notice run on from the end of the bar.
/// The run waits for the notice before it stops (`signals::await_notice`):
/// a step that ended between the signal and its notice once cleared the
/// bar for good first (CI saw it).
#[test]
fn a_stop_notice_is_written_above_the_progress_bar() {
    use std::io::Read;
    let t = tempfile::tempdir().unwrap();
    let data = common::small_mnist(&t.path().join("data"), 3_000, 200);
    let (mut window, tty) = common::sized_pty(40, 120);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_simplenn"));
    cmd.args(["--data", data.to_str().unwrap(), "--epochs", "5000"])
        .args(["--val", "500", "--hidden", "32", "--batch-size", "8"])
        .args(["--threads", "1", "--no-save"])
        .current_dir(t.path())
        .stdin(Stdio::null())
        .stdout(tty.try_clone().unwrap())
        .stderr(tty);
    stop_signals_at_their_defaults(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    // The terminal's last copies are the child's.
    drop(cmd);
    // Read without blocking, so that a bar never drawn fails the test
    // after two minutes rather than hang it (the run then killed).
    rustix::fs::fcntl_setfl(&window, rustix::fs::OFlags::NONBLOCK).unwrap();
    let t0 = std::time::Instant::now();
    let mut seen = Vec::new();
    // Read until `done` says so; true where the terminal closed (EIO) or
    // two minutes passed first.
    let mut read = |seen: &mut Vec<u8>, done: &dyn Fn(&[u8]) -> bool| loop {
        if done(seen) {
            return false;
        }
        let mut buf = [0u8; 4096];
        match window.read(&mut buf) {
            Ok(n) if n > 0 => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if t0.elapsed() > Duration::from_secs(120) {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            _ => return true,
        }
    };
    let bar_drawn = |s: &[u8]| String::from_utf8_lossy(s).contains("batches");
    if read(&mut seen, &bar_drawn) {
        let _ = child.kill();
        panic!("no bar: {}", String::from_utf8_lossy(&seen));
    }
    sigint(&child);
    // Until the child is gone and its terminal with it; killed if it is
    // still there (its status then SIGKILL's, and the test fails).
    read(&mut seen, &|_| false);
    let _ = child.kill();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGINT));
    let seen = String::from_utf8_lossy(&seen);
    let notice = "simplenn: interrupted: finishing this step";
    let at = seen.find(notice).unwrap_or_else(|| panic!("{seen}"));
    // What is left on the notice's row before it: the cursor's return to
    // its start, and the bar's erasure.
    let row = seen[..at].rsplit(['\r', '\n']).next().unwrap();
    assert_eq!(common::without_escapes(row), "", "{seen:?}");
    // And the bar comes back after it.
    assert!(seen[at..].contains("batches"), "{seen}");
}

/// With `--save` in another directory and no checkpoint path, Ctrl-C's
/// checkpoint goes beside the model, not into the working directory.
#[test]
fn ctrl_c_puts_its_checkpoint_beside_a_model_in_another_directory() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir(t.path().join("out")).unwrap();
    let (_, child, _rx) = long_run(t.path(), &["--save", "out/m.safetensors"]);
    sigint(&child);
    let (code, err) = stderr_of(child);
    assert_eq!(code, Some(130), "{err}");
    assert!(
        err.contains("checkpoint saved to out/checkpoint.safetensors"),
        "{err}"
    );
    checkpoint::load_checkpoint(&t.path().join("out/checkpoint.safetensors")).unwrap();
    assert!(!t.path().join("checkpoint.safetensors").exists());
}

/// A resumed run's Ctrl-C checkpoint goes to the file it resumed (as a
/// `--stop-after` one does), not beside its `--save` model: the usual
/// `--resume` then continues from the latest state.
#[test]
fn a_resumed_runs_ctrl_c_checkpoint_replaces_the_file_it_resumed() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir(t.path().join("out")).unwrap();
    let (data, child, _rx) = long_run(t.path(), &["--checkpoint", "ck.safetensors"]);
    sigint(&child);
    assert_eq!(stderr_of(child).0, Some(130));
    let first = checkpoint::load_checkpoint(&t.path().join("ck.safetensors")).unwrap();
    let (child, rx) = resume(t.path(), &data, "ck.safetensors", "out/m.safetensors");
    wait_for(&rx, "resuming at epoch");
    wait_for(&rx, "/5000");
    sigint(&child);
    let (code, err) = stderr_of(child);
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("checkpoint saved to ck.safetensors"), "{err}");
    let second = checkpoint::load_checkpoint(&t.path().join("ck.safetensors")).unwrap();
    assert!(
        second.steps > first.steps,
        "{} then {}",
        first.steps,
        second.steps
    );
    assert!(!t.path().join("out/checkpoint.safetensors").exists());
}

/// A `--checkpoint` path is where Ctrl-C's checkpoint goes, even with a
/// `--save` model beside which it would otherwise go.
#[test]
fn ctrl_c_writes_its_checkpoint_to_the_checkpoint_path() {
    let t = tempfile::tempdir().unwrap();
    let (_, child, _rx) = long_run(
        t.path(),
        &["--save", "m.safetensors", "--checkpoint", "ck.safetensors"],
    );
    sigint(&child);
    let (code, err) = stderr_of(child);
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("checkpoint saved to ck.safetensors"), "{err}");
    checkpoint::load_checkpoint(&t.path().join("ck.safetensors")).unwrap();
    assert!(!t.path().join("checkpoint.safetensors").exists());
}

/// A stop asked for before the first step (the flag set in process; the
/// binary's handler quits at once before training starts) writes no
/// checkpoint: it would hold nothing a new run, or the checkpoint resumed,
/// does not. In process, so the flag is set before training starts; no
/// other test in this file trains in this process.
#[test]
fn a_signal_before_the_first_step_writes_no_checkpoint() {
    use simplenn::train::{Interrupted, RunOptions};
    use std::sync::atomic::Ordering;
    let t = tempfile::tempdir().unwrap();
    let data = common::small_mnist(&t.path().join("data"), 600, 100);
    let ck = t.path().join("ck.safetensors");
    let (first, again) = (
        t.path().join("first.safetensors"),
        t.path().join("again.safetensors"),
    );
    let flags = ["--hidden", "8", "--epochs", "2", "--val", "100"];
    let run = |opts| common::try_train(&data, &flags, opts);

    let report = run(RunOptions {
        checkpoint: Some(ck.clone()),
        stop_after_steps: Some(3),
        ..RunOptions::default()
    })
    .unwrap();
    assert!(report.stopped);
    let saved = checkpoint::load_checkpoint(&ck).unwrap();

    simplenn::signals::INTERRUPTED.store(true, Ordering::SeqCst);
    for (resume, path, words) in [
        (None, &first, "after step 0 (0 epochs done); nothing trained yet, so no checkpoint written"),
        (Some(saved), &again, "after step 3 (0 epochs done); no step taken since the checkpoint this run resumed, so none written"),
    ] {
        let e = run(RunOptions {
            resume,
            checkpoint: Some(path.clone()),
            ..RunOptions::default()
        })
        .err()
        .expect("an interrupted run ends in an error");
        assert!(e.is::<Interrupted>(), "{e:#}");
        assert!(e.to_string().contains(words), "{e:#}");
        assert!(!path.exists(), "{} was written", path.display());
    }
}

/// `augment`, `eval`, `predict`, `plot` and `serve` quit at once on a
/// signal, as their default actions would, but first remove the temporary
/// file of what they were writing: here the training images being
/// decompressed from a 150 MB archive (it takes tens of milliseconds at the
/// least), caught as soon as their temporary file appears.
#[test]
fn a_command_that_does_not_train_quits_at_once_leaving_no_temporary_file() {
    use std::io::Write;
    let t = tempfile::tempdir().unwrap();
    let data = common::small_mnist(&t.path().join("data"), 200, 10);
    let raw = data.join(simplenn::data::TRAIN_IMAGES);
    let n = 200_000u32;
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(data.join(format!("{}.gz", simplenn::data::TRAIN_IMAGES))).unwrap(),
        flate2::Compression::fast(),
    );
    let mut head = vec![0, 0, 8, 3];
    for d in [n, 28, 28] {
        head.extend(d.to_be_bytes());
    }
    gz.write_all(&head).unwrap();
    let image: Vec<u8> = (0..784).map(|i| (i % 7 * 30) as u8).collect();
    for _ in 0..n {
        gz.write_all(&image).unwrap();
    }
    gz.finish().unwrap();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    simplenn::idx::write_idx(&data.join(simplenn::data::TRAIN_LABELS), &[n], &labels).unwrap();
    std::fs::remove_file(&raw).unwrap();
    let temporary = || {
        std::fs::read_dir(&data)
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().contains(".tmp"))
    };

    let (mut child, _rx) = spawn(
        t.path(),
        &[
            "augment",
            "--data",
            data.to_str().unwrap(),
            "--count",
            "2",
            "-o",
            "a.png",
        ],
    );
    let start = std::time::Instant::now();
    while !temporary() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no decompression seen"
        );
        // A command that ended first (refused, failed) fails now, not in a minute.
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "ended before decompressing: {status}, {}",
                stderr_of(child).1
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    sigint(&child);
    let (st, err) = status_of(child);
    assert_eq!(
        (st.code(), st.signal()),
        (None, Some(libc::SIGINT)),
        "{err}"
    );
    assert!(
        err.contains(
            "interrupted: the file being written was abandoned and its temporary file removed"
        ),
        "{err}"
    );
    assert!(!temporary() && !raw.exists(), "left behind");
    assert!(!t.path().join("a.png").exists());
}

/// `sleep 9 | simplenn predict --model m -` stopped by Ctrl-C: the pipe's
/// writer dies of the signal too, and the image reads as empty; that is
/// the signal's doing, so the run ends with its status (130) and no
/// error about the image.
#[test]
fn a_signal_that_empties_predicts_input_is_no_image_error() {
    let t = tempfile::tempdir().unwrap();
    let data = common::small_mnist(&t.path().join("data"), 200, 10);
    let d = data.to_str().unwrap();
    let model = t.path().join("m.safetensors");
    let m = model.to_str().unwrap();
    let trained = Command::new(env!("CARGO_BIN_EXE_simplenn"))
        .args([
            "--data",
            d,
            "--hidden",
            "8",
            "--epochs",
            "1",
            "--val",
            "50",
            "--no-progress",
            "--save",
            m,
        ])
        .output()
        .unwrap();
    assert!(trained.status.success());
    for _ in 0..3 {
        let (mut child, _rx) = spawn_with(t.path(), &["predict", "--model", m, "-"], |c| {
            c.stdin(Stdio::piped());
        });
        let stdin = child.stdin.take().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        sigint(&child);
        drop(stdin);
        let (code, err) = stderr_of(child);
        assert_eq!(code, Some(130), "{err}");
        assert!(!err.contains("cannot read the image"), "{err}");
    }
}

/// Two runs in one directory share the default checkpoint path: the one
/// stopped second does not replace the checkpoint the other wrote during
/// its run, but writes its own beside it, names it, and says why.
#[test]
fn a_checkpoint_another_process_wrote_during_the_run_is_not_replaced() {
    let t = tempfile::tempdir().unwrap();
    let (_data, child, _rx) = long_run(t.path(), &["--save", "b.safetensors"]);
    // The other run's checkpoint, written while this one trains.
    let ck = t.path().join("checkpoint.safetensors");
    std::fs::write(&ck, b"the other run's checkpoint").unwrap();
    let pid = child.id();
    sigint(&child);
    let (code, err) = stderr_of(child);
    assert_eq!(code, Some(130), "{err}");
    let own = format!("checkpoint.{pid}.safetensors");
    assert!(
        err.contains("was written by another process during this run")
            && err.contains(&format!("continue with --resume {own}")),
        "{err}"
    );
    assert_eq!(std::fs::read(&ck).unwrap(), b"the other run's checkpoint");
    checkpoint::load_checkpoint(&t.path().join(&own)).unwrap();
}

/// Two runs given the same `--save` and `--metrics`: the one that ends
/// second replaces neither file the other wrote during its run, but
/// writes its own beside each, names it, and says why.
#[test]
fn a_model_or_log_another_process_wrote_during_the_run_is_not_replaced() {
    let t = tempfile::tempdir().unwrap();
    let data = common::small_mnist(&t.path().join("data"), 3_000, 200);
    let args = [
        "--data",
        data.to_str().unwrap(),
        "--epochs",
        "300",
        "--val",
        "500",
        "--hidden",
        "32",
        "--no-progress",
        "--save",
        "m.safetensors",
        "--metrics",
        "m.jsonl",
        "--checkpoint-every",
        "300",
    ];
    let (child, rx) = spawn(t.path(), &args);
    wait_for(&rx, "epoch   2/300");
    // The other run's files, written while this one trains (its 298 epochs
    // left take seconds).
    let (model, log) = (t.path().join("m.safetensors"), t.path().join("m.jsonl"));
    // Under the directory's lock, as another simplenn's save takes it: the
    // run may be rewriting its log at this moment, and a write landing
    // between its check and its rename would be lost unseen (the window
    // such a lock closes).
    let dir = std::fs::File::open(t.path()).unwrap();
    rustix::fs::flock(&dir, rustix::fs::FlockOperation::LockExclusive).unwrap();
    std::fs::write(&model, b"the other run's model").unwrap();
    std::fs::write(&log, b"the other run's log").unwrap();
    drop(dir);
    let pid = child.id();
    let (code, err) = stderr_of(child);
    assert_eq!(code, Some(0), "{err}");
    for (file, what) in [("m.safetensors", "--save path"), ("m.jsonl", "--metrics")] {
        assert!(
            err.contains(&format!("{file} was written by another process during this run (another run with the same {what}?)")),
            "{err}"
        );
    }
    assert_eq!(std::fs::read(&model).unwrap(), b"the other run's model");
    assert_eq!(std::fs::read(&log).unwrap(), b"the other run's log");
    modelfile::load_model(&t.path().join(format!("m.{pid}.safetensors"))).unwrap();
    let own_log = t.path().join(format!("m.{pid}.jsonl"));
    let own = simplenn::metrics::read(&own_log).unwrap();
    assert_eq!(own.len(), 300);
    // The checkpoint names the log and the model the run wrote, which a
    // resume continues and writes again.
    let ck = t.path().join("checkpoint.safetensors");
    let c = checkpoint::load_checkpoint(&ck).unwrap();
    let named = c.habits.metrics.expect("the checkpoint names its log");
    assert_eq!(
        named.canonicalize().unwrap(),
        own_log.canonicalize().unwrap()
    );
    let own_model = t.path().join(format!("m.{pid}.safetensors"));
    let named = c
        .habits
        .save
        .flatten()
        .expect("the checkpoint names its model");
    assert_eq!(
        named.canonicalize().unwrap(),
        own_model.canonicalize().unwrap()
    );
    // So resuming the finished run writes this run's model again, not
    // over the other's.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_simplenn"))
        .current_dir(t.path())
        .args([
            "--data",
            data.to_str().unwrap(),
            "--no-progress",
            "--resume",
        ])
        .arg(&ck)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(&model).unwrap(), b"the other run's model");
    modelfile::load_model(&own_model).unwrap();
}

/// A short run in `dir` (600 training images, 100 of them for
/// validation, and 10,000 test images, whose scoring takes a while) with
/// `extra` flags, sent Ctrl-C once a stdout line holds `line`: its exit
/// status, standard error and stdout lines.
fn ctrl_c_after_line(dir: &Path, extra: &[&str], line: &str) -> (Option<i32>, String, Vec<String>) {
    let data = common::small_mnist(&dir.join("data"), 600, 10_000);
    let mut args = vec![
        "--data",
        data.to_str().unwrap(),
        "--val",
        "100",
        "--no-progress",
    ];
    args.extend_from_slice(extra);
    let (child, rx) = spawn(dir, &args);
    wait_for(&rx, line);
    sigint(&child);
    let (status, err) = stderr_of(child);
    (status, err, rx.iter().collect())
}

/// Ctrl-C after the last step of `train --serve` lets the run score the
/// test set and end, and then closes the page at once: what the run prints
/// must not promise a page that stays up until a Ctrl-C already given. The
/// signal goes as soon as the last epoch's line is read, which is most
/// often before the end of the test set's scoring (10,000 images); where
/// it comes later, the page must have stayed up until it.
#[test]
fn ctrl_c_after_the_last_step_of_train_serve_closes_the_page_at_once() {
    let t = tempfile::tempdir().unwrap();
    let args = ["--epochs", "2", "--no-save", "--serve", "0"];
    let (status, err, out) = ctrl_c_after_line(t.path(), &args, "epoch 2/2");
    let done = out
        .iter()
        .find(|l| l.starts_with("training done"))
        .unwrap_or_else(|| panic!("no 'training done' line: {out:?} {err}"));
    // Where the signal came once the page was up, the page stayed up until
    // it; else the run says it closes the page (the signal's own notice may
    // say either, where the two crossed).
    if done.contains("the page stays up") {
        assert!(!err.contains("after the last step"), "{done} {err}");
        assert!(
            err.contains("closing the page (training had finished)"),
            "{err}"
        );
    } else {
        assert_eq!(
            done, "training done; closing the page: interrupted",
            "{err}"
        );
    }
    assert_eq!(status, Some(0), "{out:?} {err}");
}

/// Ctrl-C after the step `--stop-after` stops at (sent once that epoch's
/// line is read: while the run checkpoints and scores the test set) stops
/// nothing: the run writes `--stop-after`'s checkpoint and ends with 0, and
/// the signal's notice says so. It once promised "finishing this step, then
/// writing a checkpoint" and ran on to 0 without a word, or died of the
/// signal where it came before the run's end began.
#[test]
fn ctrl_c_after_the_stop_after_step_lets_the_run_end_as_stop_after_says() {
    let t = tempfile::tempdir().unwrap();
    let args = [
        "--epochs",
        "3",
        "--stop-after",
        "1",
        "--checkpoint",
        "ck.safetensors",
        "--no-save",
    ];
    let (status, err, out) = ctrl_c_after_line(t.path(), &args, "epoch 1/3");
    assert_eq!(status, Some(0), "{out:?} {err}");
    assert!(
        out.iter().any(|l| l.starts_with(
            "stopped after step 4 of 12 (epoch 1 done); checkpoint saved to ck.safetensors"
        )),
        "{out:?} {err}"
    );
    // The notice, where the signal came before the run ended.
    assert!(!err.contains("finishing this step"), "{err}");
    assert!(!err.contains("stopped: interrupted"), "{err}");
    let notices: Vec<&str> = err.lines().filter(|l| l.contains("interrupted")).collect();
    if !notices.is_empty() {
        assert_eq!(
            notices,
            ["simplenn: interrupted after the last step --stop-after asked for: the run goes on to write its checkpoint and score the test set; Ctrl-C again quits at once"],
            "{err}"
        );
    }
    checkpoint::load_checkpoint(&t.path().join("ck.safetensors")).unwrap();
}

/// A reader that stops reading (a pipe into a stalled `tee`) does not
/// keep SIGTERM from stopping the run: the
/// output that finds no room for 2 s after the signal is dropped, and the
/// run writes its checkpoint and dies of SIGTERM, not blocked for as long
/// as the reader sleeps (for ever, here).
#[test]
fn a_reader_that_stops_reading_does_not_keep_a_stop_from_happening() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    use std::time::Instant;
    let t = tempfile::tempdir().unwrap();
    let data = common::small_mnist(&t.path().join("data"), 300, 100);
    let (reader, writer) = std::io::pipe().unwrap();
    // A pipe of two pages, which `poll` calls full once both hold
    // something: the run's first thirty-odd epoch lines fill it, however
    // slow this build.
    // SAFETY: fcntl(2) on a descriptor this test owns; no memory involved.
    unsafe { libc::fcntl(writer.as_raw_fd(), libc::F_SETPIPE_SZ, 8192) };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_simplenn"));
    cmd.args(["--data", data.to_str().unwrap(), "--epochs", "100000"])
        .args(["--val", "100", "--batch-size", "200", "--hidden", "4"])
        .args(["--no-progress", "--save", "m.safetensors"])
        .current_dir(t.path())
        .stdout(writer)
        .stderr(Stdio::piped());
    // SAFETY: signal(2) is async-signal-safe, as pre_exec requires.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    // Wait for the second page to be started: the run, past its first
    // epochs, is then held on its next line.
    let t0 = Instant::now();
    loop {
        let mut queued: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int through the pointer given.
        unsafe { libc::ioctl(reader.as_raw_fd(), libc::FIONREAD, &mut queued) };
        if queued > 4096 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "{queued} bytes");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended first: {status}, {}", stderr_of(child).1);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    send(&child, libc::SIGTERM);
    // Held for ever before: give it a minute, then fail rather than hang.
    let sent = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if sent.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("still running a minute after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, err) = stderr_of(child);
    assert_eq!(code, Some(143), "{err}");
    assert!(
        err.contains("standard output has taken nothing for 2 s since the stop was asked"),
        "{err}"
    );
    let last = err.lines().next_back().unwrap_or_default();
    assert!(last.contains("checkpoint saved to"), "{err}");
    assert!(checkpoint::load_checkpoint(&t.path().join("checkpoint.safetensors")).is_ok());
    drop(reader);
}
