use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use simplenn::cli::{self, Command};
use simplenn::output::{Labelled, PipeTolerant};
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
                // The line, and its fix, as for any other output.
                Err(w) => fail(&simplenn::output::labelled(w).into(), EXIT_FAILURE),
            };
        }
        Err(e) => {
            let args: Vec<_> = std::env::args_os().collect();
            let line = simplenn::usage::line(&e, &args);
            // eprint_line: standard error that cannot be written (`2> /dev/full`)
            // costs the line, not the exit status (eprintln! would panic: 101).
            simplenn::error::eprint_line(&format!("simplenn: error: {line}"));
            return ExitCode::from(EXIT_USAGE);
        }
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
            // A reader that goes away (`| head`) must not cost the model:
            // the run goes on, and what it prints after that is dropped.
            let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
            let mut stdout = PipeTolerant::new(terminal);
            let result = match simplenn::signals::install_handlers() {
                Ok(()) => app::train(args, &mut stdout).map(drop),
                Err(e) => Err(e),
            };
            // The run's own failure first; else the output it lost.
            match (result, stdout.into_failure()) {
                (Ok(()), Some(e)) => Err(anyhow::anyhow!(
                    "cannot write to standard output ({e}): training went on and saved what it was asked to save, but what it printed from then on was lost; {}",
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
    // A stop signal's notice is out before the process ends (one that came
    // as the run ended: "after the last step … runs to its end").
    let _ = simplenn::signals::await_notice();
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
        // Standard error is a file the command must not write into (of the
        // data set, or one it reads): the line goes to standard output,
        // unless that is one too.
        Err(e) if e.is::<simplenn::error::NotOnStderr>() => {
            if let Some(n) = e.downcast_ref::<simplenn::error::NotOnStderr>() {
                if !n.stdout_too {
                    let mut stdout = std::io::stdout();
                    let line = format!("simplenn: error: {}\n", simplenn::show::one_line(&n.line));
                    let _ = stdout
                        .write_all(line.as_bytes())
                        .and_then(|()| stdout.flush());
                }
            }
            ExitCode::from(EXIT_USAGE)
        }
        Err(e) => fail(&e, EXIT_FAILURE),
    }
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
