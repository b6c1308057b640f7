//! Ctrl-C, SIGTERM and SIGHUP: the first sets [`INTERRUPTED`], which the
//! training loop reads between steps to checkpoint and stop; a second
//! quits at once (the first's echo, [`echoes`], does not), as does the
//! first before training starts ([`TRAINING`]);
//! the commands that do not train quit at the first
//! ([`install_quit_handlers`]). The handler runs on a thread of its own (signal-hook's
//! iterator; `ctrlc` off unix), never in a signal's context.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicUsize, Ordering};

use anyhow::{Context, Result};

use crate::atomic;

/// Set by the first Ctrl-C, SIGTERM or SIGHUP (see
/// [`install_handlers`]); the training loop checks it between steps.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Set while the signal thread says what a first stop will do: from just
/// before [`INTERRUPTED`] is set until the notice is written. The run acts
/// on [`INTERRUPTED`] at its next step and waits for the notice first
/// ([`await_notice`]): otherwise the run may clear its bar for good, write
/// its checkpoint and print its last line before the notice, or die with
/// the notice never printed.
static NOTICE_PENDING: AtomicBool = AtomicBool::new(false);

/// The longest [`await_notice`] waits. The notice is a plain write to
/// stderr, which a reader that stops reading (or a terminal held by
/// Ctrl-S) can block: the run then goes on after this long, as far as its
/// own next line to stderr, which blocks as it always would have.
const NOTICE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Whether a stop signal has set [`INTERRUPTED`]; where one has, first wait
/// for its notice to be written (at most 3 s, `NOTICE_WAIT`), so that what the
/// run prints as it stops comes after the notice, and what the signal
/// thread set with the flag (which stop it is: [`AFTER_LAST_STEP`],
/// [`PROMISED_CHECKPOINT`]) is settled. The caller acts on this one reading
/// of the flag. Returns at once where no signal set it (or a library
/// caller's stop did).
pub fn await_notice() -> bool {
    // SeqCst, as the stores: the signal thread set NOTICE_PENDING before
    // INTERRUPTED, and a reading of `false` here comes before the flag's
    // store in their one order (see `Run::finish`).
    if !INTERRUPTED.load(Ordering::SeqCst) {
        return false;
    }
    let t0 = std::time::Instant::now();
    while NOTICE_PENDING.load(Ordering::SeqCst) && t0.elapsed() < NOTICE_WAIT {
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    true
}

/// The progress bar being drawn, if any: a signal's notice goes above it
/// ([`indicatif::ProgressBar::suspend`]) rather than into its line, where
/// the bar's next redraw would overwrite it.
static BAR: std::sync::Mutex<Option<indicatif::ProgressBar>> = std::sync::Mutex::new(None);

/// Say which progress bar is on the terminal now.
pub fn drawing(bar: &indicatif::ProgressBar) {
    *BAR.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
}

/// Write `line` to stderr, above the progress bar when one is drawn.
fn notice(line: &str) {
    // eprint_line: a closed stderr (a hung-up terminal) must not stop the exit.
    let write = || {
        crate::error::eprint_line(line);
    };
    let bar = BAR.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match bar {
        Some(bar) if !bar.is_hidden() && !bar.is_finished() => bar.suspend(write),
        _ => write(),
    }
}

/// Set when training begins ([`crate::train::train_with`]). Before it, a
/// run is still reading its inputs (a checkpoint, a names file, a data set
/// being decompressed), which may block (a FIFO no one writes) and leave
/// nothing to checkpoint: the first signal then quits at once, as it does
/// for the commands that do not train. Never cleared: the binary trains
/// once a process (a library caller that trains twice keeps the training
/// behaviour for the second run's setup).
pub static TRAINING: AtomicBool = AtomicBool::new(false);

/// Set once training is over and only the page of `train --serve` is left:
/// a signal then closes the page, and says so, rather than speak of a step
/// and a checkpoint.
pub static RUN_DONE: AtomicBool = AtomicBool::new(false);

/// With [`RUN_DONE`]: the run ended at `--stop-after`, not at its last
/// epoch (its checkpoint is there to resume).
pub static RUN_STOPPED: AtomicBool = AtomicBool::new(false);

/// Set once the run's last step is taken (its last epoch's, or the one
/// `--stop-after` stops at: [`STOP_AFTER_STEP`]): a signal then has no step
/// to finish and stops nothing (the run writes what its last epoch writes,
/// or `--stop-after`'s checkpoint, scores the test set, saves its model and
/// ends), and its notice says so.
pub static LAST_STEP_TAKEN: AtomicBool = AtomicBool::new(false);

/// With [`LAST_STEP_TAKEN`]: that step is where `--stop-after` stops the
/// run, before its last epoch.
pub static STOP_AFTER_STEP: AtomicBool = AtomicBool::new(false);

/// Set where the signal came after [`LAST_STEP_TAKEN`]: its notice said the
/// run goes on to its end, so the run does not stop as interrupted.
pub static AFTER_LAST_STEP: AtomicBool = AtomicBool::new(false);

/// Set where a signal's notice promised a step and a checkpoint: the run,
/// finding its last step already taken, says that it ran to its end.
pub static PROMISED_CHECKPOINT: AtomicBool = AtomicBool::new(false);

/// SIGHUP's number: the terminal went away (its window closed, the SSH
/// connection dropped).
pub const SIGHUP: i32 = 1;
/// SIGINT's number: Ctrl-C.
pub const SIGINT: i32 = 2;
/// SIGTERM's number: `kill`, `timeout`, a batch system's time limit, `docker stop`.
pub const SIGTERM: i32 = 15;
#[cfg(unix)]
const _: () = assert!(
    SIGHUP == signal_hook::consts::SIGHUP
        && SIGINT == signal_hook::consts::SIGINT
        && SIGTERM == signal_hook::consts::SIGTERM
);

/// The signal that set [`INTERRUPTED`]; SIGINT until one has, so that a
/// library caller that sets the flag itself is treated as Ctrl-C.
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(SIGINT);

/// The signal that set [`INTERRUPTED`] (SIGINT if none did).
pub fn stop_signal() -> i32 {
    STOP_SIGNAL.load(Ordering::SeqCst)
}

/// Make Ctrl-C (SIGINT), SIGTERM and SIGHUP stop training cleanly: the
/// first finishes the current step, writes a checkpoint when the run has
/// somewhere to put one, and dies of the signal ([`die_of`]: 130, 143, 129
/// to a shell); a second quits at once, but not the first delivered twice
/// ([`echoes`]). A signal the run was started ignoring stays
/// ignored, as the classic `if (signal(SIGINT, SIG_IGN) != SIG_IGN)` idiom
/// (and Python) have it: `nohup` ignores SIGHUP, and a shell script's `&`
/// job ignores Ctrl-C, so that Ctrl-C in the terminal stops the script but
/// not the run it left in the background.
pub fn install_handlers() -> Result<()> {
    install(on_stop_signal)
}

/// A stopping signal as it arrived: its number, and the process that sent
/// it, where one did (`kill`, `timeout`, a shell); `None` where the kernel
/// did (Ctrl-C typed at the terminal, a terminal that hung up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    /// The signal's number.
    pub signal: i32,
    /// The sending process's id, where a process sent it.
    pub sender: Option<i32>,
}

#[cfg(unix)]
impl Sent {
    fn of(info: &libc::siginfo_t) -> Sent {
        // kill(2), tgkill(2) and sigqueue(3), which fill si_pid; the other
        // codes at or below 0 (a timer's, SIGIO's) put something else at
        // its place, and positive codes are the kernel's own.
        let sent = matches!(
            info.si_code,
            libc::SI_USER | libc::SI_TKILL | libc::SI_QUEUE
        );
        let sender = sent.then(|| {
            // SAFETY: for these codes the kernel filled the `_kill` (or
            // `_rt`, whose pid lies at the same place) member of the union,
            // which `si_pid` reads; `info` is a whole copy.
            unsafe { info.si_pid() }
        });
        Sent {
            signal: info.si_signo,
            sender,
        }
    }
}

/// How long after a signal was handled the same signal again is taken as
/// its echo, not as a second request ([`echoes`]).
pub const ECHO: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether `now`, arriving `after` the handling of the stop `first`, is the
/// same request delivered twice rather than a second one (which quits at
/// once). Programs send one stop twice: GNU `timeout` signals the run and
/// then its whole process group, microseconds apart, and a terminal that
/// closes sends SIGHUP from the kernel and again from the shell that ran
/// the job. So the same signal within [`ECHO`] is an echo where it comes
/// from the same process, and a SIGHUP from any; Ctrl-C typed twice (both
/// from the kernel) is a second request however soon it comes.
pub fn echoes(first: Sent, now: Sent, after: std::time::Duration) -> bool {
    now.signal == first.signal
        && after < ECHO
        && (now.signal == SIGHUP || (now.sender.is_some() && now.sender == first.sender))
}

/// Run `handle` on a thread of its own for each SIGINT, SIGTERM and SIGHUP
/// this process was not started ignoring.
fn install(handle: fn(Sent)) -> Result<()> {
    #[cfg(unix)]
    {
        let wanted = wanted();
        if wanted.is_empty() {
            return Ok(());
        }
        // With each signal's siginfo: who sent it ([`echoes`]).
        let mut signals = signal_hook::iterator::SignalsInfo::<
            signal_hook::iterator::exfiltrator::WithRawSiginfo,
        >::new(wanted)
        .context("cannot install the Ctrl-C, SIGTERM and SIGHUP handlers")?;
        // The handler runs on a thread of its own, not in the signal's
        // context, so it may print and remove files. Its first allocation
        // reserves a malloc arena (64 MiB of address space): made before
        // this returns, so that the memory left, read by the checks that
        // follow (`predict`'s per image), does not depend on whether this
        // thread has run yet.
        let (started, ready) = std::sync::mpsc::sync_channel::<()>(0);
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                drop(std::hint::black_box(Box::new(0u64)));
                let _ = started.send(());
                signals.forever().for_each(|info| handle(Sent::of(&info)))
            })
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot start the signal-handling thread: {e}; {}",
                    crate::error::THREADS_FIX
                )
            })?;
        let _ = ready.recv();
    }
    #[cfg(not(unix))]
    ctrlc::set_handler(move || {
        handle(Sent {
            signal: SIGINT,
            sender: None,
        })
    })
    .context("cannot install the Ctrl-C handler")?;
    Ok(())
}

/// For the commands that do not train (`eval`, `predict`, `plot`,
/// `augment`, `serve`): Ctrl-C, SIGTERM and SIGHUP quit at once, as their
/// default actions would, but first remove the temporary file of whatever
/// is being written (a decompressed data file, a picture), so that no
/// half-written file is left behind. Signals the process was started
/// ignoring stay ignored.
pub fn install_quit_handlers() -> Result<()> {
    #[cfg(unix)]
    for signal in wanted() {
        // Set in the signal's own context, before the handling thread runs.
        signal_hook::flag::register(signal, received().clone())
            .context("cannot install the Ctrl-C, SIGTERM and SIGHUP handlers")?;
    }
    install(quit)
}

/// SIGBUS, where the data files are mapped into memory: another program
/// that cuts one short while simplenn reads it (`truncate`, `cp` over it;
/// simplenn's own writes rename a new file into place, which leaves the
/// map on the old one) makes the next read of a page past the new end
/// fault. Without this the process died with a bare "Bus error"; with it,
/// one line on stderr saying what happened and what to do, then exit
/// status 1. The map is what fails here, so nothing is cleaned up: a
/// temporary file in flight is removed by the next run that writes there.
pub fn install_bus_handler() {
    #[cfg(unix)]
    // SAFETY: `act` is a plain C struct, valid zeroed, that lives through the
    // call; its handler reads atomics and calls only write(2) and _exit(2),
    // both async-signal-safe, on messages that are not freed once it runs.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = on_bus as *const () as libc::sighandler_t;
        act.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut act.sa_mask);
        libc::sigaction(libc::SIGBUS, &act, std::ptr::null_mut());
    }
}

/// The end of the SIGBUS line, after the file it names (or "a data file").
macro_rules! bus_rest {
    () => {
        "could not be read through its memory map (SIGBUS: most often another program cut it short or rewrote it in place, else a disk or network file system error); leave the data files alone while simplenn runs, and run it again\n"
    };
}

/// The SIGBUS line for a fault in no watched map, or where the faulting
/// address is not known.
#[cfg(unix)]
const BUS_ANY: &str = concat!("simplenn: error: a data file ", bus_rest!());

/// One mapped file the SIGBUS handler can name: its address range and the
/// line to write. Published whole, behind one pointer, so that a reader
/// gets a consistent range and line with a single load, whatever other
/// threads start or end watching meanwhile.
struct Watched {
    start: usize,
    end: usize,
    line: Box<[u8]>,
}

/// More than any command maps at once (a data set's four files, the page's
/// test set); a map past these gets the line that names no file. A slot
/// holds a [`Watched`] from `Box::into_raw`, or null.
static MAP_SLOTS: [AtomicPtr<Watched>; 16] = [const { AtomicPtr::new(std::ptr::null_mut()) }; 16];

/// How many readers of [`MAP_SLOTS`] have started and not finished. The
/// SIGBUS handler counts itself in and never out (it ends the process), so
/// from its first fault on no record is freed: whatever it loaded stays
/// valid while it writes.
static SLOT_READERS: AtomicUsize = AtomicUsize::new(0);

/// While alive, a SIGBUS inside `bytes` (a file's memory map) is reported
/// naming `path`; dropped before the map is unmapped.
#[derive(Debug)]
pub struct MapWatch(Option<usize>);

/// Watch `bytes`, the map of `path` (see [`MapWatch`]). The record is freed
/// when the watch ends, unless a reader is in the slots at that moment
/// (only ever a SIGBUS handler, which is about to end the process): then it
/// is left allocated, as that reader may hold it.
pub fn watch_map(bytes: &[u8], path: &std::path::Path) -> MapWatch {
    let start = bytes.as_ptr() as usize;
    let line = format!(
        "simplenn: error: {}: the data file {}",
        crate::show::path(path),
        bus_rest!()
    );
    let watched = Box::into_raw(Box::new(Watched {
        start,
        end: start + bytes.len(),
        line: line.into_bytes().into_boxed_slice(),
    }));
    for (i, slot) in MAP_SLOTS.iter().enumerate() {
        if slot
            .compare_exchange(
                std::ptr::null_mut(),
                watched,
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_ok()
        {
            return MapWatch(Some(i));
        }
    }
    // SAFETY: `watched` came from `Box::into_raw` above and was published
    // in no slot, so nothing else can hold it.
    drop(unsafe { Box::from_raw(watched) });
    MapWatch(None)
}

impl Drop for MapWatch {
    fn drop(&mut self) {
        let Some(i) = self.0 else { return };
        let watched = MAP_SLOTS[i].swap(std::ptr::null_mut(), Ordering::SeqCst);
        // The swap, the load below and a reader's counting in and loading
        // of a slot are all SeqCst, so they fall in one order. If no reader
        // is counted in at the load, one that loaded this slot before the
        // swap has already counted itself out, and one that counts in
        // after the load finds the slot emptied.
        if SLOT_READERS.load(Ordering::SeqCst) == 0 {
            // SAFETY: `watched` came from `Box::into_raw` in `watch_map`,
            // was taken out of its only slot by the swap above, and (see
            // above) no reader can hold it.
            drop(unsafe { Box::from_raw(watched) });
        }
    }
}

/// The line naming the watched map that holds `addr`, if any.
///
/// # Safety
/// The caller must have counted itself into [`SLOT_READERS`] first, and
/// must not use the line after it counts itself out (the `'static` holds
/// only until then).
#[cfg(unix)]
unsafe fn bus_line(addr: usize) -> Option<&'static [u8]> {
    MAP_SLOTS.iter().find_map(|slot| {
        let watched = slot.load(Ordering::SeqCst);
        // SAFETY: a non-null slot holds a pointer from `Box::into_raw` in
        // `watch_map`, which is not freed while the caller is counted in
        // `SLOT_READERS` (this function's contract; see `MapWatch::drop`).
        let w: &'static Watched = unsafe { watched.as_ref() }?;
        (w.start..w.end).contains(&addr).then_some(&*w.line)
    })
}

/// SIGXFSZ, sent to a process whose write passes its file-size limit
/// (`ulimit -f`), kills it by default: no error line, and the temporary
/// file it was writing left behind. Ignored, the write fails with EFBIG
/// instead, which every writer reports (a save, a picture, a decompressed
/// data set: the cache is tried next) and cleans up after.
pub fn ignore_file_size_signal() {
    #[cfg(unix)]
    // SAFETY: signal(2) with SIG_IGN installs no handler and reads no memory.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

#[cfg(unix)]
extern "C" fn on_bus(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t to a handler installed
    // with SA_SIGINFO; for SIGBUS its address is the faulting one.
    #[cfg(target_os = "linux")]
    let addr = unsafe { (*info).si_addr() } as usize;
    #[cfg(not(target_os = "linux"))]
    let addr = {
        let _ = info;
        0
    };
    // Counted in for good: this handler ends the process, so no record it
    // loads is freed under it (see `MapWatch::drop`).
    SLOT_READERS.fetch_add(1, Ordering::SeqCst);
    // SAFETY: counted in just above, and never out.
    let line = unsafe { bus_line(addr) }.unwrap_or(BUS_ANY.as_bytes());
    // SAFETY: write(2) and _exit(2) are async-signal-safe; `line` is
    // static or a record that is never freed once this handler runs.
    unsafe {
        libc::write(2, line.as_ptr().cast(), line.len());
        libc::_exit(1);
    }
}

/// End the process as the SIGBUS handler does, with one line for a data
/// file that another program rewrote in place under its map (a label past
/// the largest the file held when opened): indexing with that label would
/// panic, and training on it would train on other data. Exit status 1, the
/// temporary file in flight left to the next run to remove, as after a
/// SIGBUS. Any thread may call it; the first prints and exits.
#[cold]
#[inline(never)]
pub fn data_rewritten(path: &std::path::Path, what: std::fmt::Arguments) -> ! {
    static ONCE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _first = ONCE.lock();
    notice(&format!(
        "simplenn: error: {}: the data file changed while simplenn read it ({what}: most often another program rewrote it in place); leave the data files alone while simplenn runs, and run it again",
        crate::show::path(path)
    ));
    // Not `process::exit`: its exit handlers may run while other threads
    // still train; the SIGBUS handler's way out does the same.
    #[cfg(unix)]
    // SAFETY: _exit(2) takes no pointer and ends the process at once.
    unsafe {
        libc::_exit(1)
    }
    #[cfg(not(unix))]
    std::process::exit(1)
}

/// Set the moment a signal that [`install_quit_handlers`] handles arrives.
fn received() -> &'static std::sync::Arc<AtomicBool> {
    static RECEIVED: std::sync::OnceLock<std::sync::Arc<AtomicBool>> = std::sync::OnceLock::new();
    RECEIVED.get_or_init(Default::default)
}

/// Call before reporting a failure in a command that does not train: where
/// a signal has arrived, the failure is most likely its doing (`sleep 9 |
/// simplenn predict … -` stopped by Ctrl-C: the pipe's writer died of it
/// too, and the image reads as empty), and the handling thread is about
/// to quit with the signal's status, so wait for it rather than report a
/// failure that is not one. Waits at most two seconds.
pub fn settle() {
    if received().load(Ordering::SeqCst) {
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}

/// End the process as `signal`'s default action would have: a death by
/// that signal, which shells report as 128 + its number (130, 143, 129).
/// Exiting with that number instead would look to a shell running a
/// script as if the command had handled the signal and ended, and the
/// script would go on to its next command after Ctrl-C (bash waits for
/// the child and stops only where the child died of SIGINT).
///
/// It does not flush standard output: the signal thread calls it while the
/// main thread may be blocked writing there (a pipe nobody reads), holding
/// its lock, and waiting for that lock would undo "quit at once".
pub fn die_of(signal: i32) -> ! {
    #[cfg(unix)]
    let _ = signal_hook::low_level::emulate_default_handler(signal);
    std::process::exit(128 + signal)
}

/// Quit at once on `signal`, as a death by it, removing the temporary file
/// being written, if any.
fn quit(Sent { signal, .. }: Sent) {
    if atomic::remove_in_flight() > 0 {
        let (name, _, _) = words(signal);
        crate::error::eprint_line(&format!(
            "simplenn: {name}: the file being written was abandoned and its temporary file removed"
        ));
    }
    die_of(signal);
}

/// The stopping signals this process was not started ignoring.
#[cfg(unix)]
fn wanted() -> Vec<i32> {
    [SIGINT, SIGTERM, SIGHUP]
        .into_iter()
        .filter(|&s| !ignored(s))
        .collect()
}

/// Whether this process was started with `signal` ignored.
#[cfg(unix)]
fn ignored(signal: i32) -> bool {
    // SAFETY: with a null new action, sigaction(2) only writes the current
    // one into `old`, a plain C struct owned here (all zeros is valid).
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

/// How the messages name `signal`: the notice, the last line's opening,
/// and what stops the run at once.
pub fn words(signal: i32) -> (&'static str, &'static str, &'static str) {
    match signal {
        SIGTERM => (
            "terminated (SIGTERM)",
            "terminated by SIGTERM",
            "a second SIGTERM or Ctrl-C",
        ),
        SIGHUP => ("hung up (SIGHUP)", "hung up (SIGHUP)", "a second signal"),
        _ => ("interrupted", "interrupted", "Ctrl-C again"),
    }
}

/// The stop being made, and when its handling ended: what [`echoes`]
/// compares a later signal with.
static FIRST: std::sync::Mutex<Option<(Sent, std::time::Instant)>> = std::sync::Mutex::new(None);

fn on_stop_signal(sent: Sent) {
    let signal = sent.signal;
    let first = *FIRST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((first, at)) = first {
        // Already handled, and said: nothing more to do or say.
        if echoes(first, sent, at.elapsed()) {
            return;
        }
    }
    let (name, _, again) = words(signal);
    if !TRAINING.load(Ordering::SeqCst) {
        let what = match atomic::remove_in_flight() {
            0 => "quitting at once",
            _ => "quitting at once; the file being written was abandoned and its temporary file removed",
        };
        notice(&format!(
            "simplenn: {name} before training started: {what}; nothing was trained or saved"
        ));
        die_of(signal);
    }
    if INTERRUPTED.load(Ordering::SeqCst) {
        // A checkpoint, model or decompressed data file being written is
        // left unfinished: its temporary file goes, and the file it would
        // replace stays as it was.
        let what = match atomic::remove_in_flight() {
            0 => "quitting at once",
            // Not "every file": the log, or a checkpoint, may have been
            // written whole before the one abandoned.
            _ => "quitting at once; the file being written was abandoned and its temporary file removed, so the file it would have replaced stays as it was (files written whole before it, a checkpoint among them, are kept)",
        };
        notice(&format!("simplenn: {name} again: {what}"));
        die_of(signal);
    }
    NOTICE_PENDING.store(true, Ordering::SeqCst);
    STOP_SIGNAL.store(signal, Ordering::SeqCst);
    INTERRUPTED.store(true, Ordering::SeqCst);
    let line = if RUN_DONE.load(Ordering::SeqCst) {
        let had = match RUN_STOPPED.load(Ordering::SeqCst) {
            true => "training had stopped where --stop-after asked",
            false => "training had finished",
        };
        format!("simplenn: {name}: closing the page ({had})")
    } else if LAST_STEP_TAKEN.load(Ordering::SeqCst) {
        AFTER_LAST_STEP.store(true, Ordering::SeqCst);
        match STOP_AFTER_STEP.load(Ordering::SeqCst) {
            true => format!(
                "simplenn: {name} after the last step --stop-after asked for: the run goes on to write its checkpoint and score the test set; {again} quits at once"
            ),
            false => format!(
                "simplenn: {name} after the last step: the run had finished training, so it runs to its end; {again} quits at once"
            ),
        }
    } else {
        PROMISED_CHECKPOINT.store(true, Ordering::SeqCst);
        format!(
            "simplenn: {name}: finishing this step, then writing a checkpoint if the run has somewhere to put one; {again} quits at once"
        )
    };
    notice(&line);
    NOTICE_PENDING.store(false, Ordering::SeqCst);
    // Timed from here: an echo that waited while a slow terminal took the
    // notice is still one.
    *FIRST.lock().unwrap_or_else(|e| e.into_inner()) = Some((sent, std::time::Instant::now()));
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// [`bus_line`] as a reader on an ordinary thread calls it: counted in
    /// for the lookup and the copy, then out.
    fn named(addr: usize) -> Option<String> {
        SLOT_READERS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: counted in just above, and out only after the copy.
        let line = unsafe { bus_line(addr) }.map(|l| String::from_utf8_lossy(l).into_owned());
        SLOT_READERS.fetch_sub(1, Ordering::SeqCst);
        line
    }

    /// The same signal again from the same process, or SIGHUP from any,
    /// within [`ECHO`] is the first's echo; Ctrl-C typed twice, another
    /// signal, another sender or a later one is a second request.
    #[test]
    fn an_echo_is_the_same_signal_from_the_same_sender_soon_after() {
        let ms = std::time::Duration::from_millis;
        let from = |signal, sender| Sent { signal, sender };
        let term = from(SIGTERM, Some(41));
        assert!(echoes(term, term, ms(0)));
        assert!(echoes(term, term, ms(999)));
        assert!(!echoes(term, term, ECHO));
        assert!(!echoes(term, from(SIGTERM, Some(42)), ms(5)));
        assert!(!echoes(term, from(SIGTERM, None), ms(5)));
        assert!(!echoes(term, from(SIGINT, Some(41)), ms(5)));
        // Typed at the terminal: sent by the kernel, no process named.
        let typed = from(SIGINT, None);
        assert!(!echoes(typed, typed, ms(5)));
        // A closing terminal: the kernel's SIGHUP, then its shell's.
        let hup = from(SIGHUP, None);
        assert!(echoes(hup, from(SIGHUP, Some(7)), ms(5)));
        assert!(!echoes(hup, from(SIGHUP, Some(7)), ECHO));
    }

    /// An address names the map that holds it, while its watch lives.
    /// (Other tests may hold slots meanwhile: where none was free, there is
    /// nothing to check.)
    #[test]
    fn a_fault_names_the_watched_map_that_holds_it() {
        let (a, b) = (vec![0u8; 64], vec![0u8; 64]);
        let wa = watch_map(&a, std::path::Path::new("first.idx"));
        let wb = watch_map(&b, std::path::Path::new("second.idx"));
        if wa.0.is_none() || wb.0.is_none() {
            return;
        }
        assert!(named(a.as_ptr() as usize + 10)
            .unwrap()
            .contains(": first.idx: "));
        assert!(named(b.as_ptr() as usize + 63)
            .unwrap()
            .contains(": second.idx: "));
        assert_eq!(named(b.as_ptr() as usize + 64), None);
        drop(wa);
        assert_eq!(named(a.as_ptr() as usize + 10), None);
        drop(wb);
    }

    /// A record that a reader may hold outlives its watch: with a reader
    /// counted in, a slot's record is loaded, its watch ends, and the
    /// record still holds its own line (freed, its memory would most
    /// likely go to the next watch's record and line, of the same sizes).
    #[test]
    fn a_watch_ending_under_a_reader_leaves_its_record() {
        let (a, b) = (vec![0u8; 64], vec![0u8; 64]);
        SLOT_READERS.fetch_add(1, Ordering::SeqCst);
        let held = watch_map(&a, std::path::Path::new("held.idx"));
        if let Some(i) = held.0 {
            let record = MAP_SLOTS[i].load(Ordering::SeqCst);
            drop(held);
            let next = watch_map(&b, std::path::Path::new("next.idx"));
            // SAFETY: loaded from a slot while counted in, as `bus_line`
            // does, and read before counting out.
            let (start, line) = unsafe { ((*record).start, &(*record).line) };
            assert_eq!(start, a.as_ptr() as usize);
            assert!(line.starts_with(b"simplenn: error: held.idx: "));
            drop(next);
        }
        SLOT_READERS.fetch_sub(1, Ordering::SeqCst);
    }

    /// Watches starting and ending on other threads never give a line
    /// that belongs to another map's range (each slot is read with one
    /// load of a whole, immutable record).
    #[test]
    fn a_line_is_never_mixed_with_another_watch() {
        let here = vec![0u8; 16];
        let keep = watch_map(&here, std::path::Path::new("kept.idx"));
        if keep.0.is_none() {
            return;
        }
        let addr = here.as_ptr() as usize;
        let churning = std::sync::atomic::AtomicUsize::new(3);
        std::thread::scope(|s| {
            for t in 0..3 {
                let churning = &churning;
                s.spawn(move || {
                    let other = vec![0u8; 16];
                    let name = format!("churn-{t}.idx");
                    // A record is left allocated when its watch ends
                    // during a lookup: a bounded number.
                    for _ in 0..5_000 {
                        drop(watch_map(&other, std::path::Path::new(&name)));
                    }
                    churning.fetch_sub(1, Ordering::SeqCst);
                });
            }
            while churning.load(Ordering::SeqCst) > 0 {
                let line = named(addr).expect("a watched address");
                assert!(line.starts_with("simplenn: error: kept.idx: "));
            }
        });
        drop(keep);
    }
}
