use std::process::ExitCode;

use clap::Parser;
use simplenn::cli::{self, Command};
use simplenn::{app, train};

/// Exit statuses (also in README.md).
const EXIT_FAILURE: u8 = 1; // bad data, I/O, anything at run time
const EXIT_USAGE: u8 = 2; // bad flags
const EXIT_DIVERGED: u8 = 3; // loss or weights stopped being finite

fn main() -> ExitCode {
    let command = cli::Cli::parse().into_command(); // exits 2 itself on unparseable flags
    let (mut stdout, mut stderr) = (std::io::stdout(), std::io::stderr());
    let result = match command {
        Command::Train(args) => {
            if cfg!(debug_assertions) {
                eprintln!(
                    "simplenn: warning: this is a debug build, about 30x slower; use `cargo run --release`"
                );
            }
            app::train(args, &mut stdout).map(drop)
        }
        Command::Eval(args) => app::eval(&args, &mut stdout).map(drop),
        Command::Predict(args) => app::predict(&args, &mut stdout, &mut stderr).map(drop),
        Command::Plot(args) => app::plot(&args, &mut stdout),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<app::AlreadyReported>() => ExitCode::from(EXIT_FAILURE),
        Err(e) if e.is::<train::Diverged>() => fail(&e, EXIT_DIVERGED),
        Err(e) if e.is::<cli::UsageError>() => fail(&e, EXIT_USAGE),
        Err(e) => fail(&e, EXIT_FAILURE),
    }
}

fn fail(e: &anyhow::Error, code: u8) -> ExitCode {
    eprintln!("simplenn: error: {e:#}");
    ExitCode::from(code)
}
