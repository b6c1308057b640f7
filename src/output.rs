//! Standard output as the binary writes it: [`PipeTolerant`] for a
//! training run, which must outlive its reader, and [`Labelled`] for the
//! other subcommands, whose write errors must say whose they are.

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
/// two seconds is dropped, said once on stderr, and the run goes on to
/// its checkpoint.
pub struct PipeTolerant {
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
    /// Standard output, `terminal` if it is one (ask before any write:
    /// [`std::io::IsTerminal`]).
    pub fn new(terminal: bool) -> Self {
        PipeTolerant {
            terminal,
            gone: false,
            failed: None,
            #[cfg(unix)]
            pending: Vec::with_capacity(4096),
        }
    }

    /// The first write error that was not the reader going away, if any:
    /// the output from then on was lost, and the run's exit status says so.
    pub fn into_failure(self) -> Option<std::io::Error> {
        self.failed
    }

    /// A write failed: from now on output is dropped. A reader that went
    /// away is no failure; any other error is said once and kept.
    fn lose(&mut self, e: std::io::Error) {
        let reader_gone =
            e.kind() == std::io::ErrorKind::BrokenPipe || (self.terminal && is_eio(&e));
        if !reader_gone {
            crate::error::eprint_line(&format!(
                "simplenn: warning: cannot write to standard output ({e}); training goes on without its output, and the run will end with exit status 1"
            ));
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
                crate::error::eprint_line(&format!(
                    "simplenn: standard output has taken nothing for {} s since the stop was asked; the run stops without it (what it would have printed is dropped)",
                    STALLED.as_secs()
                ));
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
            if crate::signals::INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
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
pub struct Labelled(pub std::io::Stdout);

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

/// `e`, a failed write to standard output, as its error line says it:
/// `cannot write to standard output: …; ` and the fix (free space there,
/// or write elsewhere).
pub fn labelled(e: std::io::Error) -> std::io::Error {
    let fix = crate::error::resource_fix(&e).unwrap_or("check where it goes, or send it elsewhere");
    std::io::Error::new(
        e.kind(),
        format!("cannot write to standard output: {e}; {fix}"),
    )
}
