use std::process::ExitCode;

use clap::Parser;
use simplenn::{cli, data::Mnist, train};

/// Exit statuses (also in README.md).
const EXIT_FAILURE: u8 = 1; // bad data, I/O, anything at run time
const EXIT_USAGE: u8 = 2; // bad flags
const EXIT_DIVERGED: u8 = 3; // loss or weights stopped being finite

fn main() -> ExitCode {
    let args = cli::Args::parse(); // exits 2 itself on unparseable flags
    if cfg!(debug_assertions) {
        eprintln!(
            "simplenn: warning: this is a debug build, about 30x slower; use `cargo run --release`"
        );
    }
    let config = match args.into_config() {
        Ok(c) => c,
        Err(e) => return fail(&e.into(), EXIT_USAGE),
    };
    match run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<train::Diverged>() => fail(&e, EXIT_DIVERGED),
        Err(e) if e.is::<cli::UsageError>() => fail(&e, EXIT_USAGE),
        Err(e) => fail(&e, EXIT_FAILURE),
    }
}

fn run(config: &train::TrainConfig) -> anyhow::Result<()> {
    let mnist = Mnist::open(&config.data_dir)?;
    let config = cli::fit_to_data(config, mnist.train.len())?;
    train::train(&config, &mnist, &mut std::io::stdout())?;
    Ok(())
}

fn fail(e: &anyhow::Error, code: u8) -> ExitCode {
    eprintln!("simplenn: error: {e:#}");
    ExitCode::from(code)
}
