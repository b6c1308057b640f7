//! The subcommands, wired: each reads its inputs, calls the library and
//! prints. `main` parses the flags, picks the subcommand (`serve` goes to
//! [`crate::serve::run`] directly), and turns errors into exit codes.

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use image::ImageEncoder;

use crate::atomic;
use crate::augment::{Augment, Augmenter, ELASTIC_ALPHA, ELASTIC_SIGMA};
use crate::classes::{NamedFor, NamesFile};
use crate::cli::{self, AugmentArgs, EvalArgs, PlotArgs, PredictArgs, UsageError};
use crate::config::Milestones;
use crate::data::{self, Mnist};
use crate::eval::Evaluator;
use crate::predict;
use crate::report::EvalReport;
use crate::train::{self, RunOptions};
use crate::{checkpoint, modelfile};

/// Errors already printed, one line each: exit non-zero without another line.
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} images gave no prediction")]
pub struct AlreadyReported {
    pub failed: usize,
    pub total: usize,
}

/// `simplenn [train] ...`: train, resuming from a checkpoint when asked.
pub fn train(mut args: cli::Args, out: &mut (dyn Write + Send)) -> Result<train::TrainReport> {
    let inputs = [
        ("--resume", args.resume.as_deref()),
        ("--class-names", args.class_names.as_deref()),
    ];
    cli::check_std_streams_for(args.data.as_deref(), data::NEEDS_ALL, &inputs)?;
    // After that check: with standard error on a data file, even this
    // line would damage it.
    if cfg!(debug_assertions) {
        crate::error::eprint_line(
            "simplenn: warning: this is a debug build, several times slower than release; use `cargo run --release`",
        );
    }
    let serve_port = args.serve;
    let args_resume = args.resume.clone();
    let saved = match &args.resume {
        Some(path) => {
            let saved = checkpoint::load_checkpoint(path)?;
            // The checkpoint's own values, with no flag given: one out of
            // range is a damaged file, not a flag the user passed.
            // (No output is checked here: that is the run's own plan's.)
            let mut none = cli::Args::no_flags();
            none.no_save = true;
            let (cfg, _) = match none.into_plan(Some(&saved.shape)) {
                Ok(planned) => planned,
                Err(e) => bail!(
                    "{}: the checkpoint's metadata is damaged ({e}); use another checkpoint",
                    path.display()
                ),
            };
            // And a run with those values records them as they are: one
            // that comes out otherwise (momentum on an adam run, whose
            // momentum is 0) is a value no run writes.
            let diff = saved.shape.differences(&saved.shape.with_settings(&cfg));
            if !diff.is_empty() {
                bail!(
                    "{}: checkpoint metadata holds what no run of its settings writes (the file's vs such a run's: {}); the file is damaged, use another checkpoint",
                    path.display(),
                    diff.join(", ")
                );
            }
            Some(saved)
        }
        None => None,
    };
    // The names file before the data: a mistyped path should not wait
    // for (or leave behind) a decompressed data set.
    let names_file = args
        .class_names
        .as_deref()
        .map(NamesFile::read)
        .transpose()?;
    args.data = Some(data::resolve_dir(args.data.as_deref())?);
    // `--checkpoint PATH` alone says where, not how often.
    let every_given = args.checkpoint_every.is_some();
    let no_test = args.no_test_every_epoch;
    let milestones_given = args.milestones.clone();
    // What the stopped run did beyond training, and this one was not told
    // otherwise: it does it too, as it would have (its checkpoints going
    // to the --resume file unless --checkpoint says where), and its model
    // and log go where that run's would have, not to a default that may
    // hold another run's.
    let mut kept = Vec::new();
    let mut kept_save = false;
    // The paths taken from the checkpoint, with the flags that say otherwise.
    let mut kept_paths = Vec::new();
    if let Some(habits) = saved.as_ref().map(|s| &s.habits) {
        if let (None, false, Some(save)) = (&args.save, args.no_save, &habits.save) {
            match save {
                Some(path) => {
                    // Not a flag the user typed: say where it came from.
                    atomic::check_replaceable("--save", path, atomic::Kind::Model).map_err(|e| {
                        UsageError(format!(
                            "{} (the stopped run's --save, kept from its checkpoint; give --save PATH or --no-save)",
                            e.0
                        ))
                    })?;
                    args.save = Some(path.clone());
                    kept.push(format!("--save {}", crate::show::shell_path(path)));
                    kept_paths.push(("--save", "--no-save", path.clone()));
                    kept_save = true;
                }
                None => {
                    args.no_save = true;
                    kept.push("--no-save".into());
                }
            }
        }
        if let (None, false, Some(path)) = (&args.metrics, args.no_metrics, &habits.metrics) {
            // Not a flag the user typed: a log that cannot be written is
            // said to be the stopped run's, with the ways out.
            if let Err(e) = atomic::check_dir_named(path, "metrics.jsonl") {
                bail!(
                    "--resume {}: the stopped run's --metrics log {} cannot be written ({e:#}); give --metrics PATH for another, or --no-metrics",
                    args.resume.as_deref().unwrap_or(Path::new("")).display(),
                    path.display()
                );
            }
            atomic::check_replaceable("--metrics", path, atomic::Kind::Log).map_err(|e| {
                UsageError(format!(
                    "{} (the stopped run's --metrics, kept from its checkpoint; give --metrics PATH or --no-metrics)",
                    e.0
                ))
            })?;
            args.metrics = Some(path.clone());
            kept.push(format!("--metrics {}", crate::show::shell_path(path)));
            kept_paths.push(("--metrics", "--no-metrics", path.clone()));
        }
    }
    let (config, mut plan) = args
        .into_plan(saved.as_ref().map(|c| &c.shape))
        .map_err(|e| name_kept(e, &kept_paths))?;
    if let (Some(saved), Some(resume)) = (&saved, &args_resume) {
        if let (false, Some(n)) = (every_given, saved.habits.checkpoint_every) {
            plan.checkpoint_every = Some(n);
            plan.checkpoint.get_or_insert_with(|| resume.clone());
            // `--checkpoint PATH` alone records the run's epochs: one
            // checkpoint, after the last epoch (as `--checkpoint-every N`
            // with N = --epochs, which the message cannot tell from it).
            kept.push(match n == saved.shape.epochs {
                true => "a checkpoint when the run ends".to_string(),
                false => format!("--checkpoint-every {n}"),
            });
        }
        if !plan.test_every_epoch && !no_test && saved.habits.test_every_epoch {
            plan.test_every_epoch = true;
            kept.push("--test-every-epoch".into());
        }
    }
    // The --resume file takes this run's checkpoints (Ctrl-C's too) unless
    // --checkpoint names another: one made read-only is not renamed over,
    // as no other output is.
    if let Some(resume) = &args_resume {
        let written = plan.checkpoint.as_ref().is_none_or(|c| c == resume);
        if written && std::fs::metadata(resume).is_ok_and(|m| m.permissions().readonly()) {
            return Err(UsageError(format!(
                "--resume {}: the file is write-protected, and this run's checkpoints (Ctrl-C's too) would replace it; make it writable (chmod u+w) first, or give --checkpoint PATH for them",
                resume.display()
            ))
            .into());
        }
        // Nor is one marked immutable or append-only, or bind-mounted
        // there: found now, not when the run's first checkpoint fails.
        if written {
            atomic::check_replaceable_or(
                "--resume",
                resume,
                atomic::Kind::Model,
                "give --checkpoint PATH for this run's checkpoints (Ctrl-C's too)",
            )?;
        }
    }
    // Milestones are a habit too, reported only beside --test-every-epoch.
    let milestones = match (milestones_given, &saved) {
        (Some(m), _) if no_test => {
            return Err(UsageError(format!(
                "--milestones {m}: they are reported only with --test-every-epoch, which --no-test-every-epoch turns off; write --test-every-epoch instead, or leave --milestones out"
            ))
            .into());
        }
        (Some(m), _) if !plan.test_every_epoch => {
            return Err(UsageError(format!(
                "--milestones {m}: they are reported only with --test-every-epoch; add it, or leave --milestones out"
            ))
            .into());
        }
        (Some(m), _) => m,
        (None, Some(saved)) => {
            let m = saved.habits.milestones.clone();
            if plan.test_every_epoch && m != Milestones::default() {
                kept.push(format!("--milestones {m}"));
            }
            m
        }
        (None, None) => Milestones::default(),
    };
    let opened = Mnist::open_with_classes(&config.data_dir, config.classes)
        .map_err(anyhow::Error::from)
        .and_then(|mnist| {
            let resumed = saved.is_some();
            let config = cli::fit_to_data(&config, mnist.train.len(), mnist.train.side(), resumed)?;
            Ok((mnist, config))
        });
    let (mnist, config) = match (opened, &saved) {
        (Ok(both), _) => both,
        // Data a checkpoint's flags do not fit (a label past its classes, a
        // batch larger than its images) is most likely other data: say so,
        // as `train` does for data that opens, rather than suggest flags
        // that the checkpoint would then refuse.
        (Err(e), Some(saved)) => {
            let diff = Mnist::open_train(&config.data_dir)
                .map(|train| saved.shape.data_differences(&train))
                .unwrap_or_default();
            if !diff.is_empty() {
                return Err(train::cannot_resume(&diff, &config.data_dir).into());
            }
            // The training data is the run's, so a label past the classes
            // is the test set's: the checkpoint, not a flag, set the count.
            if let Some(crate::idx::IdxError::BadLabel {
                path,
                index,
                label,
                classes,
                ..
            }) = e.downcast_ref::<crate::idx::IdxError>()
            {
                bail!(
                    "{}: label {label} at index {index} is not below the {classes} classes of the checkpoint's run; resume it with a test set whose labels are all below {classes} (the one it started with), or train a new model on this data without --resume",
                    path.display()
                );
            }
            return Err(e);
        }
        // A label past the classes the user gave: the flag is what is wrong.
        (Err(e), None)
            if config.classes.is_some()
                && matches!(
                    e.downcast_ref::<crate::idx::IdxError>(),
                    Some(crate::idx::IdxError::BadLabel { .. })
                ) =>
        {
            return Err(UsageError(e.to_string()).into())
        }
        (Err(e), None) => return Err(e),
    };
    // Names for the data's classes: no weight depends on them, so a
    // resumed run takes new ones as readily as it keeps its own.
    let class_names = match (&names_file, &saved) {
        (Some(file), None) => Some(file.for_classes(mnist.classes, NamedFor::Data)?),
        (Some(file), Some(_)) => Some(file.for_classes(mnist.classes, NamedFor::Checkpoint)?),
        (None, Some(saved)) => match &saved.habits.damaged_names {
            Some(why) => {
                bail!("{why}; use an earlier checkpoint, or give the names with --class-names FILE")
            }
            None => saved.habits.class_names.clone(),
        },
        (None, None) => None,
    };
    if names_file.is_none() && class_names.is_some() {
        kept.push("the same class names".into());
    }
    let steps_per_epoch = (mnist.train.len() - config.val).div_ceil(config.batch_size) as u64;
    // `--stop-after` counts the run's epochs from its start, not the resume.
    // Said only where the checkpoint's epochs are this run's: a checkpoint
    // of another run is refused by `train`, naming the difference (and
    // hashing the data once, there).
    if let (Some(n), Some(saved), Some(path)) = (plan.stop_after, &saved, &args_resume) {
        let same_epochs =
            saved.shape.steps_per_epoch() == steps_per_epoch && saved.shape.epochs == config.epochs;
        if same_epochs && n as u64 * steps_per_epoch <= saved.steps {
            let done = saved.steps / steps_per_epoch;
            // A run already at its end has no epoch left to stop after.
            if done as usize >= config.epochs {
                let and_save = match config.save {
                    Some(_) => " and save its model",
                    None => "",
                };
                return Err(cli::UsageError(format!(
                    "--stop-after {n}: {} has trained all {} of the run's epochs, so there is none left to stop after; leave --stop-after out to score its test set{and_save}, or start a new run without --resume to train more",
                    path.display(),
                    config.epochs
                ))
                .into());
            }
            let (first, last) = (done as usize + 1, config.epochs - 1);
            let fix = match first.cmp(&last) {
                std::cmp::Ordering::Less => format!("give a value from {first} to {last}, or "),
                std::cmp::Ordering::Equal => format!("give {first}, or "),
                std::cmp::Ordering::Greater => String::new(),
            };
            return Err(cli::UsageError(format!(
                "--stop-after {n}: {} has already trained {done} of the run's {} epochs, and --stop-after counts from the run's start; {fix}leave it out to train to the end",
                path.display(),
                config.epochs
            ))
            .into());
        }
    }
    // Fail now, not after the last epoch, if the model cannot be written
    // (the room for it is checked by the run, after its memory).
    if let Some(save) = &config.save {
        atomic::check_dir(save).with_context(|| match kept_save {
            // Not a flag the user typed: say where it came from.
            true => format!(
                "--save {} (the stopped run's, kept from its checkpoint; give --save PATH or --no-save)",
                save.display()
            ),
            false => "--save".to_string(),
        })?;
    }
    // Said once the run is sure to start (by the run, after its own checks):
    // not before an error.
    let resume_note = (!kept.is_empty()).then(|| {
        format!(
            "resuming with {}, as the run that wrote the checkpoint had",
            crate::show::and_list(&kept)
        )
    });
    let opts = RunOptions {
        resume: saved,
        checkpoint: plan.checkpoint,
        checkpoint_every: plan.checkpoint_every,
        stop_after_steps: plan.stop_after.map(|e| e as u64 * steps_per_epoch),
        metrics: plan.metrics,
        interrupt_checkpoint: plan.interrupt_checkpoint,
        checkpoint_named: plan.checkpoint_named,
        test_every_epoch: plan.test_every_epoch,
        milestones,
        live: None,
        class_names,
        resume_note,
    };
    let trained = match serve_port {
        None => train::train_with(&config, &mnist, opts, out),
        Some(port) => crate::serve::train_live(&config, &mnist, opts, port, out),
    };
    // A resumed run that diverges is told to change its flags in a new run.
    trained.map_err(|mut e| {
        if let Some(diverged) = e.downcast_mut::<train::Diverged>() {
            diverged.resumed = args_resume;
        }
        e
    })
}

/// A refusal that names a path the command line did not give, but the
/// checkpoint did (`--metrics run.log` of the stopped run, now the same
/// file as this run's `--checkpoint`), says where it came from and how to
/// choose another.
fn name_kept(e: UsageError, kept: &[(&str, &str, std::path::PathBuf)]) -> UsageError {
    let named = kept
        .iter()
        .find(|(flag, _, path)| e.0.contains(&format!("{flag} {}", path.display())));
    match named {
        Some((flag, off, path)) => UsageError(format!(
            "{} ({flag} {} is the stopped run's, kept from its checkpoint: give {flag} PATH or {off})",
            e.0,
            path.display()
        )),
        None => e,
    }
}

/// `simplenn eval`: the model on the test set, as tables or JSON.
pub fn eval(args: &EvalArgs, out: &mut dyn Write) -> Result<EvalReport> {
    let inputs = [
        ("--model", Some(args.model.as_path())),
        ("--class-names", args.class_names.as_deref()),
    ];
    cli::check_std_streams_for(args.data.as_deref(), data::NEEDS_TEST, &inputs)?;
    let threads = cli::resolve_threads(args.threads)?;
    let modelfile::NamedModel {
        params,
        image,
        names,
        ..
    } = modelfile::load_named_model(&args.model, args.class_names.as_deref())?;
    let dir = data::resolve_dir_for(args.data.as_deref(), data::NEEDS_TEST)?;
    let test = Mnist::open_test(&dir)?;
    let dims = &params.dims;
    let (rows, cols) = test.side();
    if let Some((r, c)) = image.filter(|&shape| test.pixels() == dims.d() && shape != (rows, cols))
    {
        anyhow::bail!(
            "{}: the model was trained on {r} × {c} images but the images in {} are {rows} × {cols} (as many pixels, another layout); evaluate it on data of the shape it was trained on",
            args.model.display(),
            dir.display()
        );
    }
    if test.pixels() != dims.d() {
        anyhow::bail!(
            "{}: the model ({}) takes {} but the images in {} are {rows} × {cols} = {}; evaluate it on data of the size it was trained on",
            args.model.display(),
            dims.name(),
            crate::show::count(dims.d(), "input"),
            dir.display(),
            crate::show::count(test.pixels(), "pixel")
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
    let mut evaluator = Evaluator::for_ranges_of(&params, train::parts_for(threads), test.len());
    let metrics = pool.install(|| evaluator.evaluate(&params, &test, 0..test.len()));
    let report = EvalReport::new(&args.model, dims, &dir, &metrics).with_names(names.as_ref());
    if args.json {
        writeln!(out, "{}", report.to_json())?;
    } else {
        write!(out, "{}", report.to_text())?;
    }
    let name = crate::classes::name_in(names.as_ref());
    let same_output = || pool.install(|| evaluator.same_output(&params, &test, 0..test.len()));
    let note = crate::eval::score_note(&metrics.confusion, same_output, &name, &dir, "evaluate");
    if let Some(note) = note {
        crate::error::eprint_line(&format!("simplenn: note: {note}"));
    }
    Ok(report)
}

/// Whether `path` is this process's standard input (`/dev/stdin`,
/// `/dev/fd/0`, or a path to the file or pipe it is).
fn reads_stdin(path: &Path) -> bool {
    crate::atomic::is_std_stream(path, crate::atomic::StdStream::Input)
}

/// An image `predict --json` could not read: its file, then the error.
#[derive(serde::Serialize)]
struct Failed {
    file: String,
    error: String,
}

/// `simplenn predict`: one line (or JSON object) per readable image; one
/// error line on stderr per image that holds no readable digit.
pub fn predict(
    args: &PredictArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Vec<predict::Prediction>> {
    // Its inputs, and the default data directory, as for `plot`.
    let mut inputs = vec![
        ("--model", Some(args.model.as_path())),
        ("--class-names", args.class_names.as_deref()),
    ];
    // `-` is standard input, whose file (`< x.png >> x.png`) is checked
    // through the path that reads it.
    let files = args
        .images
        .iter()
        .map(|p| match p == Path::new(predict::STDIN) {
            true => Path::new("/dev/stdin"),
            false => p.as_path(),
        });
    inputs.extend(files.map(|p| ("the image", Some(p))));
    cli::check_std_streams_for(None, data::NEEDS_ALL, &inputs)?;
    // Standard input can be read once: a second `-` would read nothing, and
    // so would a path to it (`/dev/stdin`) where it is a pipe (a path to a
    // redirected file opens that file again, from its start).
    let once = !std::fs::metadata("/dev/stdin").is_ok_and(|m| m.is_file());
    let from_stdin: Vec<&Path> = args
        .images
        .iter()
        .map(|p| p.as_path())
        .filter(|p| *p == Path::new(predict::STDIN) || (once && reads_stdin(p)))
        .collect();
    let stdin = from_stdin.len();
    let named = |p: &Path| match p == Path::new(predict::STDIN) {
        true => "`-`".to_string(),
        false => crate::show::shell_word(&p.to_string_lossy()),
    };
    if stdin > 1 {
        return Err(UsageError(format!(
            "{} and {} both read standard input, which holds one image; give the others as files",
            named(from_stdin[0]),
            named(from_stdin[1])
        ))
        .into());
    }
    // `--model /dev/stdin -`: the model would take all there is.
    if stdin == 1 && reads_stdin(&args.model) {
        return Err(UsageError(format!(
            "--model {} and {} both read standard input, which holds one file; give the model or the image as a file",
            args.model.display(),
            named(from_stdin[0])
        ))
        .into());
    }
    // No one types a PNG: a terminal there would wait for ever.
    if stdin == 1 && std::io::stdin().is_terminal() {
        return Err(UsageError(format!(
            "{} reads an image from standard input, which is a terminal here; pipe or redirect one in: simplenn predict --model {} - < digit.png",
            named(from_stdin[0]),
            args.model.display()
        ))
        .into());
    }
    let modelfile::NamedModel {
        params,
        image,
        names,
        ..
    } = modelfile::load_named_model(&args.model, args.class_names.as_deref())?;
    // Checked once, before any image: only --as-is reads images that are
    // not square, and a model must say what shape it takes.
    if let (false, Some(why)) = (args.as_is, predict::non_square(image)) {
        anyhow::bail!("{}: {why}", args.model.display());
    }
    let (rows, cols) = match predict::input_shape(&params, image) {
        Ok(shape) => shape,
        Err(why) => anyhow::bail!("{}: {why}", args.model.display()),
    };
    let mut found = Vec::new();
    // `--json`: one entry per image, in order; an image that failed has
    // its error in place of the digit, so a script sees every file.
    let mut entries = Vec::new();
    let mut failed = 0;
    // A reader gone (`| head -1`) ends the command as one that has all it
    // wanted (exit 0, as main has it), but not after an image that failed
    // and was said to: that image's exit status stands.
    let sent = |written: std::io::Result<()>, failed: usize| -> Result<()> {
        match written {
            Err(e) if failed > 0 && e.kind() == std::io::ErrorKind::BrokenPipe => {
                Err(AlreadyReported {
                    failed,
                    total: args.images.len(),
                }
                .into())
            }
            written => Ok(written?),
        }
    };
    for path in &args.images {
        match predict::predict_file(&params, image, path, args.as_is) {
            Ok(p) => {
                let p = p.with_names(names.as_ref());
                if !args.json {
                    sent(writeln!(out, "{}", p.line()), failed)?;
                }
                entries.push(Ok(found.len()));
                found.push(p);
            }
            Err(e) => {
                failed += 1;
                crate::signals::settle();
                let line = crate::show::one_line(&e.to_string());
                // `let _`: a standard error that cannot be written (full, or
                // its reader gone) costs this line, not the other images'
                // answers nor the exit status.
                let _ = writeln!(err, "simplenn: error: {line}");
                entries.push(Err(Failed {
                    file: path.display().to_string(),
                    error: line,
                }));
            }
        }
    }
    if args.json {
        // Each entry serialized as it is (a Value would widen the f32
        // probabilities to f64 digits).
        #[derive(serde::Serialize)]
        #[serde(untagged)]
        enum Entry<'a> {
            Read(&'a predict::Prediction),
            Failed(&'a Failed),
        }
        let entries: Vec<Entry> = entries
            .iter()
            .map(|e| match e {
                Ok(i) => Entry::Read(&found[*i]),
                Err(f) => Entry::Failed(f),
            })
            .collect();
        sent(
            writeln!(out, "{}", serde_json::to_string(&entries)?),
            failed,
        )?;
    }
    // Images of exactly the input size were most likely saved from a data
    // set, which the preparation (made for photos and drawings of digits)
    // would crop, rescale and recentre again: point at --as-is, once.
    let exact = found.iter().filter(|p| p.input_size).count();
    let first = found.iter().find(|p| p.input_size);
    if let (false, Some(first)) = (args.as_is, first) {
        let (which, them) = match exact {
            1 => (format!("{} is", crate::show::one_line(&first.file)), "it"),
            n => (format!("{n} of the images are"), "them"),
        };
        // --as-is reads every image given as it is: the others, prepared
        // now, would be refused or misread.
        let alone = match exact < args.images.len() {
            true => match exact {
                1 => " (it applies to every image given: give that one alone)",
                _ => " (it applies to every image given: give those alone)",
            },
            false => "",
        };
        // After the answers, and `let _`: a note that cannot be written
        // must not cost the answers (or the JSON) already given.
        let _ = writeln!(
            err,
            "simplenn: note: {which} already {cols} × {rows}, the model's input size, on a dark border; the preparation rescaled and recentred {them} as MNIST's digits were, which suits photos and drawings of digits: for images saved from a data set, --as-is reads the pixels unchanged{alone}"
        );
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

/// Whether standard output is `input`, a regular file (a terminal or pipe
/// read and written is no file), by device and inode: a hard link to it
/// is it.
fn stdout_is_file(input: &Path) -> bool {
    atomic::std_stream(input) == Some("output")
}

/// Where a picture goes: `-o -` is standard output.
fn to_stdout(output: &Path) -> bool {
    output.as_os_str() == "-" || is_stdout(output)
}

/// Whether `path` is the file standard output already is (`-o /dev/stdout`,
/// or the file the shell redirected it to): written as `-o -`, since a save
/// would rename a new file over it and the summary, written to the old one,
/// would be lost.
fn is_stdout(path: &Path) -> bool {
    atomic::is_std_stream(path, atomic::StdStream::Output)
}

/// Refuse `-o PATH` for the picture `cmd` writes (an `ext` file, such as
/// `example`, of `kind`) before any work: another picture format's
/// extension, the file the command reads (`input`), a file of the data set
/// in `data`, a file of another kind, or a place it cannot be written.
/// `-o -` (standard output) is refused where that is a terminal, the file
/// the command reads, or a file of the data set.
fn check_picture_output(
    cmd: &str,
    output: &Path,
    (ext, example, kind): (&str, &str, atomic::Kind),
    input: Option<&Path>,
    data: Option<&Path>,
) -> Result<()> {
    if to_stdout(output) && std::io::stdout().is_terminal() {
        return Err(UsageError(format!(
            "-o {}: standard output is a terminal, where {} would be unreadable; redirect it (`-o - > {example}`) or name a file, e.g. -o {example}",
            output.display(),
            ext.to_uppercase()
        ))
        .into());
    }
    // The file read, as the output (standard output, for `-o -`: the shell
    // may have sent it onto the log, `>> metrics.jsonl`).
    if let Some(input) = input {
        // `< log >> log` too: the input read through standard input.
        let onto_stdout = output.as_os_str() == "-" && stdout_is_file(input);
        if onto_stdout || cli::file_identity(output) == cli::file_identity(input) {
            let what = match onto_stdout {
                false => "that is the file",
                true => "standard output is the file",
            };
            // `plot curve.svg`: the default picture given as the log, most
            // likely an earlier plot's, where a log was meant.
            let (whose, fix) = match output.file_name() == Some(example.as_ref()) {
                true => (
                    format!(" ({cmd}'s default)"),
                    format!("give {cmd} the log a run wrote with --metrics, not a picture it drew (or, for a log of that name, -o another path)"),
                ),
                false => (String::new(), format!("choose another path, e.g. {example}")),
            };
            return Err(UsageError(format!(
                "-o {}{whose}: {what} {cmd} reads; {fix}",
                output.display()
            ))
            .into());
        }
    }
    if output.as_os_str() == "-" {
        // The shell may have sent it onto a file of the data set.
        cli::check_stdout_output("-o", data)?;
        return Ok(());
    }
    // Only another picture or document format's extension is a mistake:
    // `-o curve.lr0.1` is a name, not a format.
    const PICTURES: [&str; 26] = [
        "png", "svg", "jpg", "jpeg", "gif", "webp", "bmp", "tif", "tiff", "pdf", "svgz", "eps",
        "ps", "avif", "ico", "heic", "heif", "jxl", "jp2", "tga", "ppm", "pgm", "pbm", "pnm",
        "qoi", "psd",
    ];
    let other_format = |e: &std::ffi::OsStr| {
        let e = e.to_string_lossy().to_ascii_lowercase();
        e != ext && PICTURES.contains(&e.as_str())
    };
    if let Some(e) = output.extension().filter(|e| other_format(e)) {
        return Err(UsageError(format!(
            "-o {}: {cmd} writes {}, not .{}; name the file .{ext}, e.g. {example}",
            output.display(),
            ext.to_uppercase(),
            e.to_string_lossy()
        ))
        .into());
    }
    cli::check_outputs(&[("-o", Some(&output.to_owned()))], data)?;
    // The file standard output already is: written as `-o -` (no file is
    // replaced), after the checks above.
    if is_stdout(output) {
        return Ok(());
    }
    // Named as the flag, as training's outputs are (`--save: cannot save
    // to ...`), and judged in their order: the file that is there, then
    // its directory (`-o /proc/version` is a file of /proc, exit 2, as
    // `--save /proc/version` is).
    atomic::check_replaceable("-o", output, kind)?;
    atomic::check_dir_named(output, example).context("-o")?;
    Ok(())
}

/// `simplenn plot`: the metrics log as an SVG.
pub fn plot(args: &PlotArgs, out: &mut dyn Write) -> Result<()> {
    // `plot -` reads the log from standard input.
    let stdin = Path::new("/dev/stdin");
    let metrics = match args.metrics.as_os_str() == "-" {
        true => stdin,
        false => args.metrics.as_path(),
    };
    // No one types a log: a terminal there would wait for ever.
    if metrics == stdin && std::io::stdin().is_terminal() {
        return Err(UsageError(
            "`-` reads the metrics log from standard input, which is a terminal here; pipe or redirect one in: simplenn plot - < metrics.jsonl".into(),
        )
        .into());
    }
    let svg = ("svg", "curve.svg", atomic::Kind::Svg);
    // The default data directory, where there is one: a picture must not
    // replace a file of the data set a run would train on.
    let data = data::resolve_dir(None).ok();
    check_picture_output("plot", &args.output, svg, Some(metrics), data.as_deref())?;
    // A log read through `-` is checked through `/dev/stdin`, the file
    // standard input was redirected from (`plot - < log 2>> log`).
    cli::check_std_streams(data.as_deref(), &[("the metrics log", Some(metrics))])?;
    // Errors name `-` as it was typed, not the path that reads it.
    let (text, n) = crate::plot::plot_svg(metrics).map_err(|e| match metrics == stdin {
        true => anyhow::anyhow!(
            "{}",
            format!("{e:#}")
                .replace("--metrics /dev/stdin", "--metrics PATH")
                .replace("/dev/stdin", "- (standard input)")
        ),
        false => e,
    })?;
    if to_stdout(&args.output) {
        out.write_all(text.as_bytes())?;
        out.flush()?;
        // eprint_line: the picture is out, and a note that cannot be written
        // must not fail the command.
        crate::error::eprint_line(&format!(
            "plotted {} to standard output",
            crate::metrics::epochs(n)
        ));
        return Ok(());
    }
    atomic::write_atomic(&args.output, text.as_bytes())?;
    writeln!(
        out,
        "plotted {} to {}",
        crate::metrics::epochs(n),
        crate::show::path(&args.output)
    )?;
    Ok(())
}

/// Pixels of gap between the original and its distortions, and around cells.
const GAP: usize = 4;
/// Largest image `augment` draws (pixels): 2048 × 2048.
const MAX_AUGMENT_IMAGE: usize = 1 << 22;
/// Largest picture `augment` writes (pixels, one byte each): 256 MiB.
const MAX_AUGMENT_GRID: u64 = 1 << 28;

/// `simplenn augment`: the first `--count` training images, each followed
/// by `--versions` of its distortions (epochs 1, 2, …), as one grey PNG,
/// each pixel drawn as a square of 1 to 16 pixels, so that an image's
/// longer side is about 56 pixels where it is smaller than that (2 × 2 for
/// MNIST's 28 × 28).
pub fn augment(args: &AugmentArgs, out: &mut dyn Write) -> Result<()> {
    let bad = |m: String| -> Result<()> { Err(UsageError(m).into()) };
    // `none` is no choice here: the hint names the others.
    let aug = cli::parse_augment(
        &args.augment,
        args.elastic_sigma,
        args.elastic_alpha,
        (ELASTIC_SIGMA, ELASTIC_ALPHA),
    )
    .map_err(|UsageError(m)| UsageError(m.replace("use none, elastic,", "use elastic,")))?;
    if aug == Augment::None {
        return bad("--augment none: nothing to show; use elastic, shift:N or affine".into());
    }
    if !(1..=20).contains(&args.versions) {
        return bad(format!(
            "--versions {}: must be between 1 and 20, e.g. 5",
            args.versions
        ));
    }
    if let Some(n) = args.count.filter(|n| !(1..=1000).contains(n)) {
        return bad(format!("--count {n}: must be between 1 and 1000, e.g. 16"));
    }
    let dir = data::resolve_dir_for(args.data.as_deref(), data::NEEDS_TRAIN)?;
    // Before the data is opened, which may decompress it.
    check_picture_output(
        "augment",
        &args.output,
        ("png", "augment.png", atomic::Kind::Png),
        None,
        Some(&dir),
    )?;
    cli::check_std_streams(Some(&dir), &[])?;
    let train = Mnist::open_train(&dir)?;
    let (rows, cols) = train.side();
    // `none` is refused here: there would be nothing to picture.
    aug.check_size(rows, cols, false)?;
    let versions = args.versions as usize;
    // Without --count, 16 or as many as there are.
    let count = args.count.map_or(16.min(train.len()), |n| n as usize);
    if count > train.len() {
        let has = match train.len() {
            1 => "only 1 training image".to_string(),
            n => format!("only {n} training images"),
        };
        return bad(format!(
            "--count {count}: {} has {has}; use --count {} or fewer",
            dir.display(),
            train.len()
        ));
    }
    // The picture is held in memory whole: refuse one that would not be a
    // sensible PNG before allocating it (or the distortions' buffers).
    if rows * cols > MAX_AUGMENT_IMAGE {
        return bad(format!(
            "augment: the images in {} are {rows} × {cols} pixels, too large to draw (at most {MAX_AUGMENT_IMAGE} pixels an image, e.g. 2048 × 2048); point --data at a set of smaller images",
            dir.display()
        ));
    }
    // Each image pixel drawn `zoom × zoom`, so that the longer side is
    // about 56 pixels (MNIST's 28: twice) and no image is drawn smaller
    // than it is; cells of zoom·cols × zoom·rows pixels, GAP around each,
    // 2·GAP after the original.
    let zoom = (56 / rows.max(cols)).clamp(1, 16);
    let (cw, ch) = (zoom * cols + GAP, zoom * rows + GAP);
    let size = |count: usize, versions: usize| {
        let (width, height) = (GAP + cw * (1 + versions) + GAP, GAP + ch * count);
        (width, height, width as u64 * height as u64)
    };
    let (width, height, grid) = size(count, versions);
    if grid > MAX_AUGMENT_GRID {
        return bad(format!(
            "augment: {count} image{} of {rows} × {cols} with {versions} distortion{} each make a picture of {grid} pixels, more than {MAX_AUGMENT_GRID}; use a smaller --count or --versions",
            crate::show::plural(count),
            crate::show::plural(versions)
        ));
    }
    // Elastic's smoothing matrices grow with the square of each side: a
    // long thin image can need more than the picture (counted before any
    // of it is allocated; one thread distorts). The picture itself is
    // counted six times: once drawn, and up to five more in the PNG
    // encoder's buffers and the file's bytes, which grow by doubling, and
    // where the pixels do not compress, the encoder stores them a second
    // time. (1,000 noise images of 108 × 108 with 20 distortions each, a
    // 264 MB picture: the least `ulimit -v` that draws it is 1,147 MiB.)
    if let Some(avail) = crate::memory::available_memory() {
        let need_for = |grid: u64| aug.bytes(rows, cols, 1) + 6 * grid + 4 * (rows * cols) as u64;
        let need = need_for(grid);
        if need > avail {
            // Only the ways out that can help: fewer images or distortions
            // where there are more than one and one of each would fit.
            let mut ways = Vec::new();
            if need_for(size(1, 1).2) <= avail {
                match (count > 1, versions > 1) {
                    (true, true) => ways.push("a smaller --count or --versions"),
                    (true, false) => ways.push("a smaller --count"),
                    (false, true) => ways.push("a smaller --versions"),
                    (false, false) => {}
                }
            }
            if let Augment::Elastic { .. } = aug {
                ways.push("--augment affine or shift:N");
            }
            let ways = match &ways[..] {
                [] => "point --data at a set of smaller images".to_string(),
                _ => format!(
                    "use {}, or point --data at a set of smaller images",
                    ways.join(", ")
                ),
            };
            return bad(format!(
                "augment: distorting and drawing {count} image{} of {rows} × {cols} pixels ({}) with {versions} distortion{} each needs {:.*} GB, more than the {:.*} GB of memory available{}; {ways}{}",
                crate::show::plural(count),
                aug.name(),
                crate::show::plural(versions),
                crate::show::gb_decimals(need, avail),
                need as f64 / 1e9,
                crate::show::gb_decimals(need, avail),
                avail as f64 / 1e9,
                crate::memory::memory_limit_note(),
                crate::memory::limit_fix()
            ));
        }
    }
    let a = Augmenter::new(aug, rows, cols, args.seed).expect("not none");
    let mut img = vec![64u8; width * height];
    let mut cell = vec![0.0f32; rows * cols];
    for i in 0..count {
        let src = train.image(i);
        for v in 0..=versions {
            if v == 0 {
                crate::data::to_unit(src, &mut cell);
            } else {
                a.distort(src, v, i as u32, &mut cell);
            }
            let x0 = GAP + v * cw + if v > 0 { GAP } else { 0 };
            let y0 = GAP + i * ch;
            for (y, row) in cell.chunks_exact(cols).enumerate() {
                for (x, &p) in row.iter().enumerate() {
                    let g = (p.clamp(0.0, 1.0) * 255.0).round() as u8;
                    for dy in 0..zoom {
                        let at = (y0 + zoom * y + dy) * width + x0 + zoom * x;
                        img[at..at + zoom].fill(g);
                    }
                }
            }
        }
    }
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(
            &img,
            width as u32,
            height as u32,
            image::ExtendedColorType::L8,
        )
        .map_err(|e| anyhow::anyhow!("cannot encode the PNG: {e}"))?;
    // With `-o -` the picture is standard output, and the summary goes to
    // standard error.
    let mut stderr = std::io::stderr();
    let (out, name): (&mut dyn Write, String) = if to_stdout(&args.output) {
        out.write_all(&png)?;
        out.flush()?;
        (&mut stderr, "standard output".into())
    } else {
        atomic::write_atomic(&args.output, &png)?;
        (out, crate::show::path(&args.output))
    };
    let s = crate::show::plural;
    let each = if count == 1 {
        "followed"
    } else {
        "each followed"
    };
    let epochs = match versions {
        1 => "epoch 1".to_string(),
        v => format!("epochs 1–{v}"),
    };
    let said = writeln!(
        out,
        "{name} ({width} × {height}): {count} training image{} from {}, {each} by {versions} {} distortion{} ({epochs}, seed {})",
        s(count),
        crate::show::path(&dir),
        aug.describe(),
        s(versions),
        args.seed
    );
    // On standard error (`-o -`), the summary is a note: the picture is
    // out, and a note that cannot be written must not fail the command.
    match to_stdout(&args.output) {
        true => Ok(()),
        false => Ok(said?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::Metrics;

    /// Scores with `confusion[true][predicted]` as given.
    fn scored(confusion: Vec<Vec<u64>>) -> Metrics {
        let n = confusion.iter().flatten().sum::<u64>() as usize;
        let correct = (0..confusion.len()).map(|c| confusion[c][c]).sum::<u64>() as usize;
        Metrics {
            n,
            loss: 1.0,
            correct,
            confusion,
        }
    }

    /// `eval`'s note for a model whose outputs differ from image to image.
    fn near_guessing(m: &Metrics, dir: &Path) -> Option<String> {
        let note = crate::eval::score_note(
            &m.confusion,
            || crate::eval::SameOutput::No,
            &|_| None,
            dir,
            "evaluate",
        );
        note.map(|n| format!("simplenn: note: {n}"))
    }

    /// Near guessing, for balanced and lopsided test sets: a good model on
    /// an 85/15 set is not, always answering its larger class is; fewer
    /// than 100 images say nothing.
    #[test]
    fn near_guessing_judges_against_the_test_sets_own_guess() {
        let dir = Path::new("d");
        // 10 balanced classes, 9 % right: a model of other data.
        let mut wrong = vec![vec![0u64; 10]; 10];
        for (t, row) in wrong.iter_mut().enumerate() {
            row[t] = 9;
            row[(t + 1) % 10] = 91;
        }
        let note = near_guessing(&scored(wrong), dir).expect("a note");
        assert!(note.starts_with("simplenn: note: accuracy 9.00% is no better than what guessing scores on these images (10.00%)"), "{note}");
        // The same, 95 % right: no note.
        let mut good = vec![vec![0u64; 10]; 10];
        for (t, row) in good.iter_mut().enumerate() {
            row[t] = 95;
            row[(t + 1) % 10] = 5;
        }
        assert_eq!(near_guessing(&scored(good), dir), None);
        // 85/15, 99 % right: no note; always the larger class (85 %): a note.
        assert_eq!(
            near_guessing(&scored(vec![vec![850, 0], vec![10, 140]]), dir),
            None
        );
        // one answer from outputs that differ: the note on guessing
        let note = near_guessing(&scored(vec![vec![850, 0], vec![150, 0]]), dir);
        assert!(note.is_some_and(|n| n.contains("what guessing scores")));
        // Guessing's score is the largest true class's share (rows), not
        // the most predicted one's (columns): three balanced classes, 67 %
        // right while class 0 is predicted 200 times in 300: no note.
        assert_eq!(
            near_guessing(
                &scored(vec![vec![100, 0, 0], vec![50, 50, 0], vec![50, 0, 50]]),
                dir
            ),
            None
        );
        // A test set of one class, all right: guessing scores 100 % too,
        // but the model is no model of other data. All wrong: a note.
        assert_eq!(
            near_guessing(&scored(vec![vec![0, 0], vec![0, 300]]), dir),
            None
        );
        assert!(near_guessing(&scored(vec![vec![0, 0], vec![300, 0]]), dir).is_some());
        // 99 images: too few to judge.
        assert_eq!(
            near_guessing(&scored(vec![vec![0, 50], vec![49, 0]]), dir),
            None
        );
    }
}
