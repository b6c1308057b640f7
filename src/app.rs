//! The subcommands, wired: each reads its inputs, calls the library and
//! prints. `main` only parses the flags and turns errors into exit codes.

use std::io::Write;

use anyhow::Result;

use crate::atomic;
use crate::checkpoint;
use crate::cli::{self, EvalArgs, PlotArgs, PredictArgs};
use crate::data::{self, Mnist};
use crate::eval::Evaluator;
use crate::predict;
use crate::report::EvalReport;
use crate::train::{self, RunOptions};

/// Errors already printed, one line each: exit non-zero without another line.
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} images gave no prediction")]
pub struct AlreadyReported {
    pub failed: usize,
    pub total: usize,
}

/// `simplenn [train] ...`: train, resuming from a checkpoint when asked.
pub fn train(mut args: cli::Args, out: &mut (dyn Write + Send)) -> Result<train::TrainReport> {
    let serve_port = args.serve;
    let saved = match &args.resume {
        Some(path) => Some(checkpoint::load_checkpoint(path)?),
        None => None,
    };
    args.data = Some(data::resolve_dir(args.data.as_deref())?);
    let (config, plan) = args.into_plan(saved.as_ref().map(|c| &c.shape))?;
    let mnist = Mnist::open_with_classes(&config.data_dir, config.classes)?;
    let config = cli::fit_to_data(&config, mnist.train.len())?;
    let steps_per_epoch = (mnist.train.len() - config.val).div_ceil(config.batch_size) as u64;
    // Fail now, not after the last epoch, if the model cannot be written.
    if let Some(save) = &config.save {
        atomic::check_dir(save)?;
    }
    // Ctrl-C with --save but no checkpoint path: the checkpoint goes beside the model.
    let interrupt_checkpoint = config
        .save
        .as_ref()
        .map(|save| save.with_file_name(cli::DEFAULT_CHECKPOINT));
    let opts = RunOptions {
        resume: saved,
        checkpoint: plan.checkpoint,
        checkpoint_every: plan.checkpoint_every,
        stop_after_steps: plan.stop_after.map(|e| e as u64 * steps_per_epoch),
        metrics: plan.metrics,
        interrupt_checkpoint,
        live: None,
    };
    match serve_port {
        None => train::train_with(&config, &mnist, opts, out),
        Some(port) => crate::serve::train_live(&config, &mnist, opts, port, out),
    }
}

/// `simplenn eval`: the model on the test set, as tables or JSON.
pub fn eval(args: &EvalArgs, out: &mut dyn Write) -> Result<EvalReport> {
    let threads = cli::resolve_threads(args.threads)?;
    let params = checkpoint::load_model(&args.model)?;
    let dir = data::resolve_dir(args.data.as_deref())?;
    let test = Mnist::open_test(&dir)?;
    let dims = &params.dims;
    let (rows, cols) = test.side();
    if test.pixels() != dims.d() {
        anyhow::bail!(
            "{}: the model ({}) takes {} inputs but the images in {} are {rows} × {cols} = {} pixels; evaluate it on data of the size it was trained on",
            args.model.display(),
            dims.name(),
            dims.d(),
            dir.display(),
            test.pixels()
        );
    }
    if let Some(bad) = test.label_at_least(dims.k()) {
        let hint = format!(
            " that the model {} ({}) has; evaluate it on data with the classes it was trained on",
            args.model.display(),
            dims.name()
        );
        return Err(test.bad_label(bad, dims.k(), hint).into());
    }
    let pool = train::thread_pool(threads)?;
    let metrics = pool.install(|| {
        Evaluator::new(&params, train::parts_for(threads)).evaluate(&params, &test, 0..test.len())
    });
    let report = EvalReport::new(&args.model, dims, &dir, &metrics);
    if args.json {
        writeln!(out, "{}", report.to_json())?;
    } else {
        write!(out, "{}", report.to_text())?;
    }
    Ok(report)
}

/// `simplenn predict`: one line (or JSON object) per readable image; one
/// error line on stderr per image that holds no readable digit.
pub fn predict(
    args: &PredictArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Vec<predict::Prediction>> {
    let params = checkpoint::load_model(&args.model)?;
    if let Err(why) = predict::input_side(&params) {
        anyhow::bail!("{}: {why}", args.model.display());
    }
    let mut found = Vec::new();
    let mut failed = 0;
    for path in &args.images {
        match predict::predict_file(&params, path) {
            Ok(p) => {
                if !args.json {
                    writeln!(out, "{}", p.line())?;
                }
                found.push(p);
            }
            Err(e) => {
                failed += 1;
                writeln!(err, "simplenn: error: {e}")?;
            }
        }
    }
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&found)?)?;
    }
    if failed > 0 {
        return Err(AlreadyReported {
            failed,
            total: args.images.len(),
        }
        .into());
    }
    Ok(found)
}

/// `simplenn plot`: the metrics log as an SVG.
pub fn plot(args: &PlotArgs, out: &mut dyn Write) -> Result<()> {
    let n = crate::plot::plot_file(&args.metrics, &args.output)?;
    writeln!(
        out,
        "plotted {} to {}",
        crate::plot::epochs(n),
        args.output.display()
    )?;
    Ok(())
}
