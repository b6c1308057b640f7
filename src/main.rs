use std::io::Write;
use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::Parser;
use simplenn::cli::{self, Command};
use simplenn::{app, train};

/// The system's allocator, except that an allocation it cannot make ends
/// the process with one error line and exit status 1, not with Rust's
/// "memory allocation of N bytes failed" and an abort (a core, status
/// 134): a memory limit (`ulimit -v`) or a full machine can stop a run
/// that the estimate before training let through, since the estimate
/// cannot see every other mapping the process makes. A temporary file
/// being written is left, as after SIGBUS, for the next save there to
/// remove.
#[cfg(unix)]
struct LineOnFailure;

// SAFETY: every method forwards to `System` with the caller's arguments,
// so `System`'s contract is this allocator's; a null pointer, which is
// the only thing added, never returns.
#[cfg(unix)]
unsafe impl std::alloc::GlobalAlloc for LineOnFailure {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, which is System's.
        failed_if_null(unsafe { std::alloc::System.alloc(layout) })
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        failed_if_null(unsafe { std::alloc::System.alloc_zeroed(layout) })
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator, which is System's.
        failed_if_null(unsafe { std::alloc::System.realloc(ptr, layout, size) })
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` came from this allocator, which is System's.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[cfg(unix)]
#[global_allocator]
static ALLOCATOR: LineOnFailure = LineOnFailure;

/// `ptr`, or the end of the process where it is null. Nothing here may
/// allocate: the message is static, and write(2) and _exit(2) take none.
#[cfg(unix)]
fn failed_if_null(ptr: *mut u8) -> *mut u8 {
    use std::sync::atomic::Ordering::SeqCst;
    if ptr.is_null() {
        // The first thread to fail says so and ends the process; another
        // that fails meanwhile waits for that end rather than say it again.
        // Where `report` has written the run's last line, that line stands.
        match LAST_LINE.compare_exchange(NONE, OOM, SeqCst, SeqCst) {
            Ok(_) => {}
            // SAFETY: _exit(2) ends the process and touches no memory.
            Err(REPORTED) => unsafe { libc::_exit(EXIT_FAILURE as i32) },
            Err(_) => loop {
                // SAFETY: pause(2) only waits; the first thread's _exit ends it.
                unsafe { libc::pause() };
            },
        }
        let msg = OOM_LINES[OOM_LINE.load(std::sync::atomic::Ordering::SeqCst) % OOM_LINES.len()];
        // SAFETY: the line is static and valid for its length; write(2)
        // and _exit(2) touch nothing else of this process's memory.
        unsafe {
            libc::write(2, msg.as_ptr().cast(), msg.len());
            libc::_exit(EXIT_FAILURE as i32);
        }
    }
    ptr
}

/// Who writes the process's last line on stderr: nobody yet, a thread
/// whose allocation failed, or `report` (training's pool may fail an
/// allocation while `main` reports another error: one line, not two
/// interleaved).
static LAST_LINE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(NONE);
const NONE: u8 = 0;
#[cfg(unix)]
const OOM: u8 = 1;
const REPORTED: u8 = 2;

/// The line for a failed allocation, with the way out that fits the
/// command running: [`OOM_LINES`]' index, set once the command is known.
#[cfg(unix)]
static OOM_LINE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[cfg(unix)]
const OOM_LINES: [&[u8]; 4] = [
    // Training (and before a command is known).
    b"simplenn: error: out of memory: an allocation failed (the memory limit, ulimit -v, or the machine's free memory is too small for this run); raise the limit or free memory, or use fewer or narrower --hidden layers, a smaller --batch-size or fewer --threads\n",
    b"simplenn: error: out of memory: an allocation failed (the memory limit, ulimit -v, or the machine's free memory is too small for these images); raise the limit or free memory, or pass smaller images\n",
    b"simplenn: error: out of memory: an allocation failed (the memory limit, ulimit -v, or the machine's free memory is too small for this picture); raise the limit or free memory, or draw fewer images (--count) or distortions (--versions)\n",
    b"simplenn: error: out of memory: an allocation failed (the memory limit, ulimit -v, or the machine's free memory is too small for this command); raise the limit or free memory\n",
];

// Exit statuses (also in README.md).
const EXIT_FAILURE: u8 = 1; // bad data, I/O, anything at run time
const EXIT_USAGE: u8 = 2; // bad flags
const EXIT_DIVERGED: u8 = 3; // loss or weights stopped being finite

/// The stack a command needs at most, many times what any here uses: the
/// usual default `ulimit -s`.
const STACK_BYTES: usize = 8 << 20;

fn main() -> ExitCode {
    // The main thread's stack is `ulimit -s`. Under a small one (64 KiB)
    // decompressing a `.gz` (miniz_oxide builds its 43 KB inflate state on
    // the stack) or decoding a PNG overflowed it and aborted, so there the
    // command runs on a thread of the usual stack, named `main` so that a
    // panic reads the same. Under the usual limit or more, as before, here:
    // the thread's stack would be mapped whole and take 8 MiB of what
    // `ulimit -v` leaves. Where no thread can be started, here too.
    if !main_stack_is_small() {
        return run();
    }
    let spawned = std::thread::Builder::new()
        .name("main".into())
        .stack_size(STACK_BYTES)
        .spawn(run);
    match spawned {
        Ok(thread) => thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        Err(_) => run(),
    }
}

/// Whether `ulimit -s` gives the main thread less than [`STACK_BYTES`].
fn main_stack_is_small() -> bool {
    #[cfg(unix)]
    if let Some(limit) = rustix::process::getrlimit(rustix::process::Resource::Stack).current {
        return limit < STACK_BYTES as u64;
    }
    false
}

fn run() -> ExitCode {
    let command = match cli::Cli::try_parse() {
        Ok(c) => c.into_command(),
        // --help and --version print to stdout and exit 0, unless that
        // cannot be written (`--help > /dev/full`).
        Err(e) if !e.use_stderr() => {
            let written = e.print().and_then(|()| std::io::stdout().flush());
            return match written {
                Ok(()) => ExitCode::SUCCESS,
                Err(w) if w.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(w) => fail(
                    &anyhow::anyhow!("cannot write to standard output: {w}"),
                    EXIT_FAILURE,
                ),
            };
        }
        Err(e) => return usage_error(&e),
    };
    #[cfg(unix)]
    OOM_LINE.store(
        match command {
            Command::Train(_) => 0,
            Command::Predict(_) => 1,
            Command::Augment(_) => 2,
            _ => 3,
        },
        std::sync::atomic::Ordering::SeqCst,
    );
    simplenn::signals::install_bus_handler();
    simplenn::signals::ignore_file_size_signal();
    // The commands that do not train quit at once on a signal, leaving no
    // temporary file behind (training installs its own handlers below).
    if !matches!(command, Command::Train(_)) {
        if let Err(e) = simplenn::signals::install_quit_handlers() {
            return fail(&e, EXIT_FAILURE);
        }
    }
    let mut stderr = std::io::stderr();
    // Every subcommand but training: a failed write says it was stdout's.
    let mut stdout = Labelled(std::io::stdout());
    let result = match command {
        Command::Train(args) => {
            if cfg!(debug_assertions) {
                let _ = writeln!(
                    std::io::stderr(),
                    "simplenn: warning: this is a debug build, several times slower than release; use `cargo run --release`"
                );
            }
            // A reader that goes away (`| head`) must not cost the model:
            // the run goes on, and what it prints after that is dropped.
            let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
            let mut stdout = PipeTolerant::new(terminal);
            let result = match simplenn::signals::install_handlers() {
                Ok(()) => app::train(args, &mut stdout).map(drop),
                Err(e) => Err(e),
            };
            // The run's own failure first; else the output it lost.
            match (result, stdout.failed) {
                (Ok(()), Some(e)) => Err(anyhow::anyhow!(
                    "cannot write to standard output ({e}): training went on to its end and wrote its model and checkpoints as asked, but what it printed from then on was lost; {}",
                    simplenn::error::resource_fix(&e)
                        .unwrap_or("free space there or send the output elsewhere")
                )),
                (result, _) => result,
            }
        }
        Command::Eval(args) => app::eval(&args, &mut stdout).map(drop),
        Command::Predict(args) => app::predict(&args, &mut stdout, &mut stderr).map(drop),
        Command::Plot(args) => app::plot(&args, &mut stdout),
        Command::Augment(args) => app::augment(&args, &mut stdout),
        Command::Serve(args) => simplenn::serve::run(&args, &mut stdout),
    };
    // What std still holds for stdout goes out now, where its failure is
    // seen: the flush at exit drops it (`eval > out` on a full disk, or
    // past `ulimit -f`, would end 0 with its table cut short).
    let result = result.and_then(|()| Ok(std::io::Write::flush(&mut stdout)?));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `simplenn eval … | head`: the reader has all it wanted, as with
        // ripgrep (training never gets here: `PipeTolerant`).
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if e.is::<app::AlreadyReported>() => {
            simplenn::signals::settle();
            ExitCode::from(EXIT_FAILURE)
        }
        Err(e) if e.is::<train::Diverged>() => fail(&e, EXIT_DIVERGED),
        // Ctrl-C, SIGTERM or SIGHUP: a death by that signal, which shells
        // report as 128 + its number (130, 143, 129).
        Err(e) if e.is::<train::Interrupted>() => {
            let signal = e
                .downcast_ref::<train::Interrupted>()
                .map_or(simplenn::signals::SIGINT, |stop| stop.signal);
            // Asked for, not a failure: `stopped:`, with how to go on.
            report("stopped", &e);
            // What the run printed goes out before the process dies.
            let _ = std::io::stdout().flush();
            simplenn::signals::die_of(signal)
        }
        Err(e) if e.is::<cli::UsageError>() => fail(&e, EXIT_USAGE),
        Err(e) => fail(&e, EXIT_FAILURE),
    }
}

/// Standard output for a training run: once the reader has gone (a
/// broken pipe, or a terminal that hung up: `simplenn … & disown` and the
/// window closed), later writes succeed without going anywhere, so that
/// the run still saves its model and checkpoints. Any other failure (a
/// full disk under `> log`) is kept for the end, said once on stderr, and
/// costs the output from then on, not the run.
///
/// And a reader that stops reading (a pipe into a stalled `tee`) must not
/// keep a stop from happening: a blocked write would hold the run before
/// its next step, where it checks for Ctrl-C, SIGTERM or SIGHUP, for as
/// long as the reader sleeps. (Standard error is written as it always was:
/// a terminal paused by Ctrl-S, where both go, still holds a SIGTERM sent
/// from elsewhere until Ctrl-Q; a Ctrl-C typed there restarts its output.) So on
/// Unix the output is written straight to descriptor 1 in pieces no larger
/// than a pipe takes at once, each after `poll` says there is room, and
/// once a stop is asked for, output that finds no room within
/// [`STALLED`] is dropped, said once on stderr, and the run goes on to
/// its checkpoint.
struct PipeTolerant {
    /// Whether standard output was a terminal, where EIO means it hung up
    /// (checked at the start: a hung-up terminal no longer answers as one).
    terminal: bool,
    gone: bool,
    /// The first write error that was not the reader going away.
    failed: Option<std::io::Error>,
    /// Bytes written but not yet sent: up to the end of a line.
    #[cfg(unix)]
    pending: Vec<u8>,
}

/// How long output waits for room once a stop is asked for.
#[cfg(unix)]
const STALLED: std::time::Duration = std::time::Duration::from_secs(2);

/// The most bytes sent in one `write(2)`: POSIX's smallest `PIPE_BUF`, so
/// that a pipe that `poll` calls writable takes them without blocking.
#[cfg(unix)]
const PIECE: usize = 512;

impl PipeTolerant {
    fn new(terminal: bool) -> Self {
        PipeTolerant {
            terminal,
            gone: false,
            failed: None,
            #[cfg(unix)]
            pending: Vec::with_capacity(4096),
        }
    }

    /// A write failed: from now on output is dropped. A reader that went
    /// away is no failure; any other error is said once and kept.
    fn lose(&mut self, e: std::io::Error) {
        let reader_gone =
            e.kind() == std::io::ErrorKind::BrokenPipe || (self.terminal && is_eio(&e));
        if !reader_gone {
            let _ = writeln!(
                std::io::stderr(),
                "simplenn: warning: cannot write to standard output ({e}); training goes on without its output, and the run will end with exit status 1"
            );
            self.failed = Some(e);
        }
        self.gone = true;
    }

    /// Send what is pending up to its last newline (`all`: everything).
    #[cfg(unix)]
    fn send(&mut self, all: bool) {
        use std::os::fd::AsFd;
        let end = match all {
            true => self.pending.len(),
            false => self
                .pending
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1),
        };
        let stdout = std::io::stdout();
        let fd = stdout.as_fd();
        let mut sent = 0;
        while sent < end && !self.gone {
            if !self.room(fd) {
                let _ = writeln!(
                    std::io::stderr(),
                    "simplenn: standard output has taken nothing for {} s since the stop was asked; the run stops without it (what it would have printed is dropped)",
                    STALLED.as_secs()
                );
                self.gone = true;
                break;
            }
            let piece = &self.pending[sent..end.min(sent + PIECE)];
            match rustix::io::write(fd, piece) {
                Ok(n) => sent += n,
                Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
                // Started with descriptor 1 closed (`>&-`): output goes
                // nowhere, silently, as std's `Stdout` has it.
                Err(rustix::io::Errno::BADF) => self.gone = true,
                Err(e) => self.lose(e.into()),
            }
        }
        match self.gone {
            true => self.pending.clear(),
            false => drop(self.pending.drain(..sent)),
        }
    }

    /// Wait until `fd` can take a piece: for as long as it takes, checking
    /// every 100 ms for a stop; once one is asked for, at most [`STALLED`].
    /// False where that ran out.
    #[cfg(unix)]
    fn room(&self, fd: std::os::fd::BorrowedFd<'_>) -> bool {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let tick = Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        let mut since_stop = None;
        loop {
            let mut fds = [PollFd::new(&fd, PollFlags::OUT)];
            match poll(&mut fds, Some(&tick)) {
                // Writable, or an error or hang-up the write will report.
                Ok(n) if n > 0 => return true,
                Err(e) if e != rustix::io::Errno::INTR => return true,
                _ => {}
            }
            if simplenn::signals::INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
                let t0 = *since_stop.get_or_insert_with(std::time::Instant::now);
                if t0.elapsed() >= STALLED {
                    return false;
                }
            }
        }
    }
}

/// EIO: what a write to a terminal that hung up gets.
fn is_eio(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    let eio = Some(rustix::io::Errno::IO.raw_os_error());
    #[cfg(not(unix))]
    let eio = None;
    eio.is_some() && e.raw_os_error() == eio
}

impl std::io::Write for PipeTolerant {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.gone {
            return Ok(buf.len());
        }
        #[cfg(unix)]
        {
            self.pending.extend_from_slice(buf);
            if buf.contains(&b'\n') {
                self.send(false);
            }
        }
        #[cfg(not(unix))]
        if let Err(e) = std::io::stdout().write_all(buf) {
            self.lose(e);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.gone {
            return Ok(());
        }
        #[cfg(unix)]
        self.send(true);
        #[cfg(not(unix))]
        if let Err(e) = std::io::stdout().flush() {
            self.lose(e);
        }
        Ok(())
    }
}

/// Standard output for the other subcommands: its errors say whose they
/// are (a bare "No space left on device" names no file) and the fix,
/// keeping their kind, so that a broken pipe is still recognised.
///
/// A descriptor left non-blocking by whoever made the pipe (Node's
/// `child_process`, some CI runners) says EAGAIN whenever the reader is
/// behind: that is a wait for room, as a blocking pipe would wait, not a
/// failure. std's buffer keeps what it has not sent, so the same bytes
/// are offered again once `poll` says there is room.
struct Labelled(std::io::Stdout);

impl std::io::Write for Labelled {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        loop {
            match self.0.write(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => wait_for_room(&e)?,
                other => return other.map_err(labelled),
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        loop {
            match self.0.flush() {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => wait_for_room(&e)?,
                other => return other.map_err(labelled),
            }
        }
    }
}

/// Block until standard output can take more (a signal ends the process
/// meanwhile: the quit handlers). Where that cannot be waited for, the
/// EAGAIN stands.
fn wait_for_room(e: &std::io::Error) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use rustix::event::{poll, PollFd, PollFlags};
        use std::os::fd::AsFd;
        let _ = e;
        let stdout = std::io::stdout();
        let fd = stdout.as_fd();
        loop {
            let mut fds = [PollFd::new(&fd, PollFlags::OUT)];
            match poll(&mut fds, None) {
                Err(rustix::io::Errno::INTR) => {}
                // Writable, or an error or hang-up the write will report.
                _ => return Ok(()),
            }
        }
    }
    #[cfg(not(unix))]
    Err(labelled(std::io::Error::new(e.kind(), e.to_string())))
}

fn labelled(e: std::io::Error) -> std::io::Error {
    let fix =
        simplenn::error::resource_fix(&e).unwrap_or("check where it goes, or send it elsewhere");
    std::io::Error::new(
        e.kind(),
        format!("cannot write to standard output: {e}; {fix}"),
    )
}

/// Whether `e` came from writing to a pipe whose reader has gone.
fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn fail(e: &anyhow::Error, code: u8) -> ExitCode {
    report("error", e);
    ExitCode::from(code)
}

/// The run's last line on stderr, `simplenn: {what}: ...` (`error`, or
/// `stopped` for a stop asked for).
fn report(what: &str, e: &anyhow::Error) {
    simplenn::signals::settle();
    // One line, whatever a path in it holds (`--data $'a\nb'`).
    let mut text = simplenn::show::one_line(&format!("{e:#}"));
    // A limit reached (`ulimit -v`, `-n`, `-f`, a full disk) where the
    // error's own words give no fix: the limit's.
    let fix = e
        .chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .find_map(simplenn::error::resource_fix);
    if let (Some(fix), false) = (fix, text.contains("; ")) {
        text = format!("{text}; {fix}");
    }
    let line = format!("simplenn: {what}: {text}\n");
    // Nothing is allocated from here: a failed allocation elsewhere now
    // ends the process without a line of its own; one that came first is
    // ending it with its line, which is the one to keep.
    use std::sync::atomic::Ordering::SeqCst;
    if LAST_LINE
        .compare_exchange(NONE, REPORTED, SeqCst, SeqCst)
        .is_err()
    {
        loop {
            std::thread::park();
        }
    }
    // `let _`: with standard error gone (a terminal that hung up), the exit
    // status still tells. One write, so that nothing comes between its parts.
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// The first of `args` that is not UTF-8, said as the value of its flag
/// (`the value of --lr ($'1\xff')`: the flag before it, or before its `=`)
/// or as itself, in the shell's `$'…'` quoting: its bytes that are not
/// text, and control characters, written `\xNN`.
#[cfg(unix)]
fn not_utf8(args: impl Iterator<Item = std::ffi::OsString>) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let args: Vec<_> = args.collect();
    let i = args.iter().position(|a| a.to_str().is_none())?;
    let bytes = args[i].as_bytes();
    let shown = |bytes: &[u8]| {
        let mut out = String::from("$'");
        let hex = |out: &mut String, b: &[u8]| {
            b.iter().for_each(|b| out.push_str(&format!("\\x{b:02x}")))
        };
        for chunk in bytes.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '\\' | '\'' => {
                        out.push('\\');
                        out.push(c);
                    }
                    c if c.is_control() || simplenn::show::breaks_text(c) => {
                        hex(&mut out, c.encode_utf8(&mut [0; 4]).as_bytes())
                    }
                    c => out.push(c),
                }
            }
            hex(&mut out, chunk.invalid());
        }
        out + "'"
    };
    let flag = |f: &[u8]| String::from_utf8_lossy(f).into_owned();
    Some(match bytes.iter().position(|&b| b == b'=') {
        Some(eq) if bytes.starts_with(b"--") && std::str::from_utf8(&bytes[..eq]).is_ok() => {
            format!(
                "the value of {} ({})",
                flag(&bytes[..eq]),
                shown(&bytes[eq + 1..])
            )
        }
        _ => match i.checked_sub(1).map(|p| args[p].as_bytes()) {
            Some(prev) if prev.starts_with(b"-") && prev.len() > 1 && !prev.contains(&b'=') => {
                format!("the value of {} ({})", flag(prev), shown(bytes))
            }
            _ => format!("the argument {}", shown(bytes)),
        },
    })
}

/// A flag clap could not parse, as one line: clap's own first line without
/// its "error: " prefix (with the names clap lists on the lines after it, for
/// missing or conflicting flags), and where to look.
fn usage_error(e: &clap::Error) -> ExitCode {
    // Clap says only that some argument is not UTF-8: say which.
    #[cfg(unix)]
    if e.kind() == ErrorKind::InvalidUtf8 {
        if let Some(which) = not_utf8(std::env::args_os().skip(1)) {
            let _ = writeln!(
                std::io::stderr(),
                "simplenn: error: {which} is not UTF-8 text; type it as plain text (see --help)"
            );
            return ExitCode::from(EXIT_USAGE);
        }
    }
    let mut text = e.to_string();
    // The words clap quotes, as this line shows them: a value with a line
    // break would end the line early, and a file pasted by mistake would
    // fill the screen.
    let words = [
        ContextKind::InvalidValue,
        ContextKind::InvalidArg,
        ContextKind::InvalidSubcommand,
    ];
    for kind in words {
        if let Some(ContextValue::String(w)) = e.get(kind) {
            text = text.replace(&format!("'{w}'"), &shown_word(w));
        }
    }
    let mut first = text
        .lines()
        .next()
        .unwrap_or("bad flags")
        .trim_start_matches("error: ")
        .to_string();
    // Clap's text drops a value's terminal escapes (`$'\e[31mred'` reads
    // 'red'), so no replacement found it: say it from the context instead.
    let said = |kind| match e.get(kind) {
        Some(ContextValue::String(w)) => Some(w.clone()),
        _ => None,
    };
    let value = said(ContextKind::InvalidValue);
    if let (Some(v), Some(arg)) = (&value, said(ContextKind::InvalidArg)) {
        if v.chars().any(char::is_control) && !first.contains(&shown_word(v)) {
            let reason = std::error::Error::source(e).map(|r| format!(": {r}"));
            first = format!(
                "invalid value {} for '{arg}'{}",
                shown_word(v),
                reason.unwrap_or_default()
            );
        }
    }
    let word = match e.kind() {
        ErrorKind::UnknownArgument => {
            said(ContextKind::InvalidArg).map(|w| ("unexpected argument", w, " found"))
        }
        ErrorKind::InvalidSubcommand => {
            said(ContextKind::InvalidSubcommand).map(|w| ("unrecognized subcommand", w, ""))
        }
        _ => None,
    };
    if let Some((what, w, end)) = word {
        if w.chars().any(char::is_control) && !first.contains(&shown_word(&w)) {
            first = format!("{what} {}{end}", shown_word(&w));
        }
    }
    if let Some(ContextValue::Strings(missing)) = e.get(ContextKind::InvalidArg) {
        if e.kind() == ErrorKind::MissingRequiredArgument && !missing.is_empty() {
            first = format!("{first} {}", missing.join(", "));
        }
    }
    // Training is the default subcommand, so clap reads a stray word among
    // its flags (`--hidden 1024, 1024`) as a subcommand's name.
    if let Some(word) = stray_word(e) {
        let fix = match near_subcommand(&word) {
            Some(sub) => {
                format!("did you mean {sub}? A subcommand goes first: simplenn {sub} [FLAGS]")
            }
            None => STRAY_WORD_FIX.to_string(),
        };
        let word = shown_word(&word);
        let _ = writeln!(
            std::io::stderr(),
            "simplenn: error: unexpected word {word} among the training flags; {fix}"
        );
        return ExitCode::from(EXIT_USAGE);
    }
    first = plain_parse_words(e, first);
    // "the subcommand 'eval' cannot be used with:" and the flags below it.
    if let Some(ContextValue::Strings(others)) = e.get(ContextKind::PriorArg) {
        if e.kind() == ErrorKind::ArgumentConflict && first.ends_with(':') {
            first = format!("{} {}", first.trim_end_matches(':'), others.join(", "));
        }
    }
    let line = match dash_refusal(e) {
        Some(refused) => format!("{refused}; see --help"),
        None => format!("{first}; {}", usage_hint(e)),
    };
    // What is left of a value in a reason or a hint (`simplenn eval
    // --model $'\e[2J'`) must not clear the screen or colour the line.
    let line = simplenn::show::controls_written(&line);
    // `let _`: standard error that cannot be written (`2> /dev/full`)
    // costs the line, not the exit status (eprintln! would panic: 101).
    let _ = writeln!(std::io::stderr(), "simplenn: error: {}", short_words(&line));
    ExitCode::from(EXIT_USAGE)
}

/// `line` with each word (between spaces) of over [`WORD_SHOWN`] + 20
/// bytes cut to its first [`WORD_SHOWN`] and `…`: a value a reason or a
/// hint repeats (`--hidden 16,999…9`) keeps the line short too.
fn short_words(line: &str) -> String {
    let words = line.split(' ').map(|w| match w.len() > WORD_SHOWN + 20 {
        true => format!("{}…", simplenn::atomic::cut(w, WORD_SHOWN)),
        false => w.to_string(),
    });
    words.collect::<Vec<_>>().join(" ")
}

/// Bytes of a word from the command line that an error line shows.
const WORD_SHOWN: usize = 60;

/// `word` quoted as an error line shows it: on one line
/// ([`simplenn::show::one_line`]), and by its first [`WORD_SHOWN`] bytes
/// and its length where longer.
fn shown_word(word: &str) -> String {
    let line = simplenn::show::one_line(word);
    if line.len() <= WORD_SHOWN {
        return format!("'{line}'");
    }
    let start = simplenn::atomic::cut(&line, WORD_SHOWN);
    format!("'{start}…' ({} bytes)", word.len())
}

/// What to do about a word where a flag goes.
const STRAY_WORD_FIX: &str = "flags take no loose words: a list has no spaces (--hidden 1024,1024), a value with spaces needs quotes, and a file goes after its flag (--save FILE)";

/// The subcommand `word` misspells (at most two letters changed, added or
/// dropped), if any.
fn near_subcommand(word: &str) -> Option<String> {
    let distance = |a: &str, b: &str| {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, &cb) in b.iter().enumerate() {
                let here = (prev + (ca != cb) as usize)
                    .min(row[j] + 1)
                    .min(row[j + 1] + 1);
                prev = row[j + 1];
                row[j + 1] = here;
            }
        }
        row[b.len()]
    };
    <cli::Cli as clap::CommandFactory>::command()
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .filter(|name| distance(word, name) <= 2)
        .min_by_key(|name| distance(word, name))
}

/// The word clap took for a subcommand's name where it names none.
fn stray_word(e: &clap::Error) -> Option<String> {
    let Some(ContextValue::String(word)) = e.get(ContextKind::InvalidSubcommand) else {
        return None;
    };
    let known = <cli::Cli as clap::CommandFactory>::command()
        .get_subcommands()
        .any(|s| s.get_name() == word);
    (e.kind() == ErrorKind::ArgumentConflict && !known).then(|| word.clone())
}

/// `--save -m.x`: clap reads a value that starts with '-' as a flag; how to
/// pass it, where the word before it takes one.
fn dash_value(e: &clap::Error) -> Option<String> {
    dash_fix(e)?.ok()
}

/// `--epochs -inf`: a value that starts with '-', which its flag refuses
/// however written; that refusal, worded as any other, is the error
/// (clap's "unexpected argument '-i'" is not).
fn dash_refusal(e: &clap::Error) -> Option<String> {
    let refused = match dash_fix(e)?.err()? {
        cli::DashRefusal::Parse(refused) => refused,
        cli::DashRefusal::Range(line) => return Some(line),
    };
    let text = refused.to_string();
    let line = text.lines().next().unwrap_or_default();
    let line = line.strip_prefix("error: ").unwrap_or(line).to_string();
    Some(plain_parse_words(&refused, line))
}

/// [`cli::dash_value_fix`] for clap's error `e`.
fn dash_fix(e: &clap::Error) -> Option<Result<String, cli::DashRefusal>> {
    if e.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(bad)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    cli::dash_value_fix(&args, bad)
}

/// `text` (`e`'s message, or part of it) with Rust's parse errors, which
/// name the parser's problem, not the user's (`--seed -5` is "invalid
/// digit found in string"), in people's words.
fn plain_parse_words(e: &clap::Error, mut text: String) -> String {
    if e.kind() != ErrorKind::ValueValidation {
        return text;
    }
    let signed = match e.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(v)) if v.starts_with('-') => v.parse::<f64>().ok(),
        _ => None,
    };
    let digit = match signed {
        Some(x) if x < 0.0 => "a number below 0, which this flag does not take",
        // `-0` (or `-1e-400`): not below 0, but signed.
        Some(0.0) => "a signed number, where this flag takes a whole number without a sign",
        // `-nan`, say.
        _ => "not a whole number",
    };
    for (rust, plain) in [
        ("invalid digit found in string", digit),
        (
            "cannot parse integer from empty string",
            "empty, where a whole number goes",
        ),
        (
            "number too large to fit in target type",
            "too large a number",
        ),
        (
            "number too small to fit in target type",
            "too small a number",
        ),
        ("invalid float literal", "not a number"),
        (
            "cannot parse float from empty string",
            "empty, where a number goes",
        ),
        // A port outside u16 (clap's range, in Rust's notation).
        ("is not in 0..=65535", "is not a port (0 to 65535)"),
    ] {
        text = text.replace(rust, plain);
    }
    text
}

/// The subcommand given, from clap's own list (not a copy that could
/// drift): `train` where none is.
fn current_command() -> String {
    let first = std::env::args_os().nth(1);
    let given = first.as_ref().and_then(|a| a.to_str());
    <cli::Cli as clap::CommandFactory>::command()
        .get_subcommands()
        .map(|s| s.get_name())
        .find(|&s| s != "help" && given == Some(s))
        .unwrap_or("train")
        .to_string()
}

/// `--serve --host ::1`, `train --port 1`, `plot -o`…: an unknown flag that
/// another subcommand has, named as that one's.
fn other_commands_flag(e: &clap::Error) -> Option<String> {
    if e.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(bad)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let current = current_command();
    let current = current.as_str();
    let owners = cli::commands_with_flag(bad, current);
    let flag = bad.split('=').next().unwrap_or(bad);
    let this = match current {
        "train" => "training".to_string(),
        c => format!("simplenn {c}"),
    };
    let owners = match owners.split_last()? {
        (last, []) => format!("simplenn {last}"),
        (last, rest) => format!("simplenn {} and {last}", rest.join(", ")),
    };
    let live = match (current, flag) {
        ("train", "--host") => " (train --serve listens on 127.0.0.1 only; simplenn serve --model FILE --host ADDRESS serves a saved model)",
        _ => "",
    };
    Some(format!("{flag} is a flag of {owners}, not of {this}{live}"))
}

/// The fix for a clap error: the values a flag takes, the flag clap thinks
/// was meant, or where to look.
fn usage_hint(e: &clap::Error) -> String {
    let strings = |kind| match e.get(kind) {
        Some(ContextValue::Strings(v)) if !v.is_empty() => Some(v.clone()),
        Some(ContextValue::String(v)) => Some(vec![v.clone()]),
        _ => None,
    };
    if let Some(values) = strings(ContextKind::ValidValue) {
        return format!("use one of {}", values.join(", "));
    }
    // Before clap's guess at a near spelling (`train --port` is not
    // `--preset`): a flag that another subcommand has.
    // (But `--save -o.x` is first a value that starts with '-'.)
    if let Some(fix) = dash_value(e) {
        return fix;
    }
    if let Some(hint) = other_commands_flag(e) {
        return hint;
    }
    // A flag cut short (`--ep`) means one it begins, not clap's nearest
    // spelling (`--eps`, Adam's, for `--epochs`): all of them, if few.
    let cut_short = match (e.kind(), strings(ContextKind::InvalidArg)) {
        (ErrorKind::UnknownArgument, Some(bad)) => {
            Some(cli::flags_starting_with(&bad[0], &current_command())).filter(|f| !f.is_empty())
        }
        _ => None,
    };
    if let Some(flags) = cut_short.as_ref().filter(|f| f.len() > 3) {
        let bad = strings(ContextKind::InvalidArg)
            .unwrap_or_default()
            .concat();
        let more = if flags.len() > 6 { ", …" } else { "" };
        return format!(
            "did you mean one of the {} flags that begin {bad}: {}{more}? (see --help)",
            flags.len(),
            flags[..flags.len().min(6)].join(", "),
        );
    }
    let meant = cut_short
        .or_else(|| strings(ContextKind::SuggestedArg))
        .or_else(|| strings(ContextKind::SuggestedSubcommand));
    if let Some(meant) = meant {
        return format!("did you mean {}? (see --help)", meant.join(" or "));
    }
    // `simplenn --data DIR eval …`: the flags were read as training's.
    if let (ErrorKind::ArgumentConflict, Some(sub)) =
        (e.kind(), strings(ContextKind::InvalidSubcommand))
    {
        return format!(
            "a subcommand's flags go after it: simplenn {} [FLAGS]",
            sub.join(" ")
        );
    }
    let sub = std::env::args_os().nth(1);
    let sub = sub.as_ref().and_then(|a| a.to_str());
    // A model already given: a second word is left over, not the model.
    let has_model = std::env::args_os()
        .any(|a| a == "--model" || a.to_str().is_some_and(|a| a.starts_with("--model=")));
    let left_over = |w: &str, sub: &str| {
        format!("simplenn {sub} reads the one model after --model: remove {w}, or give it in --model's place")
    };
    // `eval m.safetensors`, `simplenn m.safetensors`: a model file alone.
    let word = strings(ContextKind::InvalidArg).or_else(|| strings(ContextKind::InvalidSubcommand));
    if let Some(model) = word.iter().flatten().find(|w| w.ends_with(".safetensors")) {
        return match sub {
            Some(sub @ ("eval" | "serve")) if has_model => left_over(model, sub),
            Some(sub @ ("eval" | "serve")) => {
                format!("a model file goes after --model: simplenn {sub} --model {model}")
            }
            _ => format!(
                "a model file goes after --model: simplenn eval --model {model} (or predict or serve, in eval's place)"
            ),
        };
    }
    // `train --hidden 1024, 1024`: a word where a flag goes; after eval or
    // serve (`serve m.st`), whose one file is a model, that model's name.
    if let (ErrorKind::UnknownArgument, Some(w)) = (e.kind(), word.iter().flatten().next()) {
        if !w.starts_with('-') {
            return match sub {
                Some(sub @ ("eval" | "serve")) if has_model => left_over(w, sub),
                Some(sub @ ("eval" | "serve")) => {
                    format!("a model file goes after --model: simplenn {sub} --model {w}")
                }
                Some("plot") => {
                    "plot draws one log at a time: simplenn plot LOG [-o curve.svg]".into()
                }
                Some("augment") => {
                    "augment takes no loose words, only flags: simplenn augment [--data DIR] [-o augment.png]; see --help".into()
                }
                _ => STRAY_WORD_FIX.to_string(),
            };
        }
    }
    match e.kind() {
        ErrorKind::UnknownArgument | ErrorKind::InvalidSubcommand => {
            "see --help for the flags".into()
        }
        _ => "see --help".into(),
    }
}
