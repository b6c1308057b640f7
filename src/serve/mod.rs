//! `simplenn serve` and `train --serve`: one page and a small JSON API over
//! a model (a file, or the weights of a run in progress).
//!
//! The page (`page.html`, `page.js`, `page.css`, built into the binary)
//! draws everything itself from these routes; every route answers JSON, so
//! `curl` works too (see README, "`serve` and `train --serve`: the page", and its "The API"):
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /` | the page |
//! | `GET /api/model` | the network's widths, input side, classes (and their names), what data is loaded |
//! | `POST /api/predict` | a PNG/JPEG, or `{"width","height","pixels"}`: probabilities and the prepared input |
//! | `GET /api/confusion` | the test set's confusion matrix |
//! | `GET /api/digits` | test digits, paged: the misclassified ones, or one confusion cell |
//! | `GET /api/weights.png` | the first layer's weights as tiles |
//! | `GET /api/curve` | the learning curve (`--metrics` log, or the live run's) |
//! | `GET /api/status` | the run's progress (live) |
//!
//! The HTTP server is `tiny_http`: synchronous, a few threads of its own
//! that sleep on sockets, and [`HANDLERS`] threads here that answer. None is
//! a rayon thread, so serving never queues behind (or in front of) the
//! training pool's work; a prediction is one forward pass over one row.
//!
//! Safe by default: it binds 127.0.0.1 unless told otherwise, serves the
//! three built-in assets and nothing from disk, reads at most
//! [`MAX_BODY`] bytes of a request, and answers anything it cannot use with
//! a 4xx and `{"error": "..."}`.
//!
//! Here: the state a server answers from (a model file's, or a live run's)
//! and `serve`'s command; `http.rs` is the server and the checks every request
//! passes, `api.rs` the routes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Result};

use crate::classes::ClassNames;
use crate::data::{self, Dataset, Mnist};
use crate::eval::EVAL_BLOCK;
use crate::live::Live;
use crate::metrics;
use crate::model::{forward_eval, Params, Workspace};

mod api;
mod http;

use api::{not_a_log_file, LogStamp};
use http::err;

pub use api::{body_to_gray, predict_bytes, weights_image, PredictOut, Prepare};
pub use http::{exposed_warning, is_loopback, start, HttpError, Reply, Server};

/// Largest request body read (bytes); a longer one gets 413, and its
/// connection is closed after it (vendor/tiny_http's client.rs has the same
/// number: it tells where the next request would start).
pub const MAX_BODY: usize = 64 * 1024;
/// Threads answering requests.
pub const HANDLERS: usize = crate::live::PAGE_HANDLERS;

/// Connections served at once; more wait in the listen queue, on no
/// thread, until one ends.
pub const MAX_CONNECTIONS: usize = tiny_http::MAX_CONNECTIONS;
/// Most tiles in `/api/weights.png`.
pub const MAX_TILES: usize = 256;
/// Most pixels a side of a tile in `/api/weights.png`: larger inputs are
/// shown shrunk (256 tiles of 64 × 64 make a picture of 1,041 × 1,041).
pub const MAX_TILE_SIDE: usize = 64;
/// Most digits per page of `/api/digits`.
pub const MAX_PER_PAGE: usize = 200;
/// Most pixels per page of `/api/digits` (a page of larger images holds
/// fewer of them, and always one): 200 MNIST digits are 156,800.
pub const MAX_PAGE_PIXELS: usize = 1 << 20;
/// Largest decoded image accepted by `/api/predict`, per side (pixels).
pub const MAX_IMAGE_SIDE: u32 = 4096;

const PAGE_HTML: &str = include_str!("page.html");
const PAGE_JS: &str = include_str!("page.js");
const PAGE_CSS: &str = include_str!("page.css");

/// Where the weights come from.
enum Source {
    /// A model file, loaded once.
    Fixed { params: Arc<Params>, path: PathBuf },
    /// The run in progress.
    Live(Arc<Live>),
}

/// Everything the routes read.
pub struct State {
    source: Source,
    /// The test set, or why there is none.
    test: Result<Dataset, String>,
    test_dir: Option<PathBuf>,
    /// `serve --metrics`: read again at an `/api/curve` when it has changed.
    metrics: Option<PathBuf>,
    /// The `/api/curve` answer for the log as it was (by `api::log_stamp`): a
    /// page polls it every few seconds, and a long log's parsing takes
    /// several times its size and a second of CPU.
    curve_cache: Mutex<Option<(LogStamp, Vec<u8>)>>,
    /// `(rows, cols)` of the images the model was trained on, where known:
    /// test images must have that shape, and when it is not square the
    /// model has no pad, no tiles and no predictions.
    image: Option<(usize, usize)>,
    /// The weights last copied out of a live snapshot, by version.
    params_cache: Mutex<Option<(u64, Arc<Params>)>>,
    /// The test set scored with one version of the weights.
    eval_cache: Mutex<Option<(u64, Arc<Evaluation>)>>,
    /// The classes' names, where the model or `--class-names` gives them.
    class_names: Option<ClassNames>,
    /// Why the test set's score says little about a model file (it scores
    /// near guessing there: most often a model of another data set).
    guess_note: Option<String>,
}

impl State {
    /// `simplenn serve`: a model file, with the test set in `test_dir`
    /// (when any) and a metrics log (when any).
    pub fn for_model(
        params: Params,
        path: &Path,
        test_dir: Option<PathBuf>,
        metrics: Option<PathBuf>,
    ) -> Self {
        let test = open_test(test_dir.as_deref());
        State {
            source: Source::Fixed {
                params: Arc::new(params),
                path: path.to_owned(),
            },
            test,
            test_dir,
            metrics,
            image: None,
            params_cache: Mutex::new(None),
            eval_cache: Mutex::new(None),
            curve_cache: Mutex::new(None),
            class_names: None,
            guess_note: None,
        }
    }

    /// The model was trained on `(rows, cols)` images, where known: uploads
    /// must be square for it, and test images that shape.
    pub fn with_image(mut self, image: Option<(usize, usize)>) -> Self {
        self.image = image;
        self
    }

    /// The classes' names, shown beside their numbers.
    pub fn with_names(mut self, names: Option<ClassNames>) -> Self {
        self.class_names = names;
        self
    }

    /// `train --serve`: the weights of the run that `live` watches.
    pub fn for_run(live: Arc<Live>, test_dir: Option<PathBuf>) -> Self {
        let test = open_test(test_dir.as_deref());
        State {
            source: Source::Live(live),
            test,
            test_dir,
            metrics: None,
            image: None,
            params_cache: Mutex::new(None),
            eval_cache: Mutex::new(None),
            curve_cache: Mutex::new(None),
            class_names: None,
            guess_note: None,
        }
    }

    /// The weights to use now and their version (always 0 for a file).
    pub fn params(&self) -> Result<(u64, Arc<Params>), HttpError> {
        match &self.source {
            Source::Fixed { params, .. } => Ok((0, params.clone())),
            Source::Live(live) => {
                let mut cache = self.params_cache.lock().unwrap_or_else(|e| e.into_inner());
                let (version, _) = live.version();
                if let Some((v, p)) = &*cache {
                    if *v == version {
                        return Ok((*v, p.clone()));
                    }
                }
                // Copy under the snapshot's lock (a memcpy), outside the trainer's way after.
                let snap = live.lock();
                let p = snap.params.as_ref().ok_or_else(|| {
                    err(503, "training has not started yet; try again in a moment")
                })?;
                let fresh = (snap.version, Arc::new(p.clone()));
                drop(snap);
                *cache = Some(fresh.clone());
                Ok(fresh)
            }
        }
    }

    fn test(&self) -> Result<&Dataset, HttpError> {
        self.test.as_ref().map_err(|why| err(404, why.clone()))
    }

    /// The test set scored with weights of version `want`: the scoring
    /// last computed, where it was of those weights (a live run's weights
    /// move on while a page lists the digits of the matrix it showed);
    /// else, where `want` is the current version, scored now; else 409 for
    /// an older version whose scoring is not kept, 400 for a version not
    /// reached yet.
    fn evaluation_of(&self, want: Option<u64>) -> Result<(u64, Arc<Evaluation>), HttpError> {
        let Some(want) = want else {
            return self.evaluation();
        };
        let cache = self.eval_cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((v, e)) = cache.as_ref().filter(|(v, _)| *v == want) {
            return Ok((*v, e.clone()));
        }
        let kept = cache.as_ref().map(|(v, _)| *v);
        drop(cache);
        // Decided before any scoring: only the current weights are scored.
        let stale = |now: u64| {
            let kept = match kept {
                Some(v) => format!("the last was of version {v}"),
                None => "none is kept".into(),
            };
            err(
                409,
                format!("?version={want}: the test set's scoring with those weights is not kept ({kept}; the weights are now version {now}); GET /api/confusion to score the weights of now, then ask with its version, or leave ?version= out"),
            )
        };
        let now = self.version();
        if want > now {
            return Err(err(
                400,
                format!("?version={want}: the weights have had no version {want} (now {now})"),
            ));
        }
        if want < now {
            return Err(stale(now));
        }
        // Scored now, with whatever the weights are by then (a live run
        // steps on meanwhile): the answer holds only if they are `want`.
        let (now, e) = self.evaluation()?;
        if now != want {
            return Err(stale(now));
        }
        Ok((now, e))
    }

    /// The weights' version now (a model file's: 0), without copying them.
    fn version(&self) -> u64 {
        match &self.source {
            Source::Fixed { .. } => 0,
            Source::Live(live) => live.version().0,
        }
    }

    /// The test set scored with the current weights (computed once per
    /// version), and that version.
    fn evaluation(&self) -> Result<(u64, Arc<Evaluation>), HttpError> {
        let (version, params) = self.params()?;
        let test = self.test()?;
        if let Some(why) = misfit(test, &params.dims, self.image) {
            return Err(err(409, why));
        }
        let mut cache = self.eval_cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((v, e)) = &*cache {
            if *v == version {
                return Ok((*v, e.clone()));
            }
        }
        let e = Arc::new(evaluate(&params, test));
        *cache = Some((version, e.clone()));
        Ok((version, e))
    }
}

/// Why a model of `dims`, trained on `image`-shaped images where known,
/// cannot be scored on `test`; `None` when it can.
fn misfit(
    test: &Dataset,
    dims: &crate::model::Dims,
    image: Option<(usize, usize)>,
) -> Option<String> {
    let (r, c) = test.side();
    if test.pixels() != dims.d() {
        return Some(format!(
            "the model ({}) takes {} but the test images are {r} × {c}; serve it with --data of the size it was trained on",
            dims.name(),
            crate::show::count(dims.d(), "input")
        ));
    }
    if let Some((rows, cols)) = image.filter(|&shape| shape != (r, c)) {
        return Some(format!(
            "the model was trained on {rows} × {cols} images but the test images are {r} × {c} (as many pixels, another layout); serve it with --data of the shape it was trained on"
        ));
    }
    test.label_at_least(dims.k()).map(|(i, label)| {
        format!(
            "test image {i} in {} has label {label}, beyond the model's {} classes; serve it with --data of the classes it was trained on",
            test.labels_named().display(),
            dims.k()
        )
    })
}

fn open_test(dir: Option<&Path>) -> Result<Dataset, String> {
    match dir {
        None => Err(
            "no test data: start with --data DIR to see the test digits and the confusion matrix"
                .into(),
        ),
        // Written out as an error line is (a path's backslashes doubled,
        // its control characters spelled): the note goes to standard
        // error and to the page as it is.
        Some(d) => {
            Mnist::open_test(d).map_err(|e| crate::show::one_line(&format!("no test data: {e}")))
        }
    }
}

/// The test set as the model sees it: each image's predicted class and
/// that class's probability.
pub struct Evaluation {
    pub predicted: Vec<u8>,
    pub probability: Vec<f32>,
    /// `confusion[true][predicted]`
    pub confusion: Vec<Vec<u64>>,
    pub correct: usize,
}

/// Score every image of `test` (single-threaded: it runs on a server thread
/// and must leave the training pool's cores alone).
pub fn evaluate(params: &Params, test: &Dataset) -> Evaluation {
    let dims = &params.dims;
    let (k, last) = (dims.k(), dims.layers() - 1);
    let b = params.linear(last).b;
    let n = test.len();
    // A test set of a few huge images needs no room for 256 of them.
    let mut ws = Workspace::for_eval(dims, crate::eval::eval_rows(n));
    let mut e = Evaluation {
        predicted: Vec::with_capacity(n),
        probability: Vec::with_capacity(n),
        confusion: vec![vec![0; k]; k],
        correct: 0,
    };
    for lo in (0..n).step_by(EVAL_BLOCK) {
        let hi = (lo + EVAL_BLOCK).min(n);
        let rows = hi - lo;
        test.gather_range(lo..hi, &mut ws.x, &mut ws.y);
        forward_eval(params, &mut ws, rows);
        for r in 0..rows {
            let p = ws.hit[r] as usize;
            let z = &ws.act[last][r * k..(r + 1) * k];
            let max = z
                .iter()
                .zip(b)
                .map(|(z, b)| z + b)
                .fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = z.iter().zip(b).map(|(z, b)| (z + b - max).exp()).sum();
            e.predicted.push(p as u8);
            e.probability.push((z[p] + b[p] - max).exp() / sum);
            let y = ws.y[r] as usize;
            e.confusion[y][p] += 1;
            e.correct += (y == p) as usize;
        }
    }
    e
}

/// `simplenn serve`: load the model (and the test set and metrics log when
/// there are any), listen, print the address, answer until killed.
pub fn run(args: &crate::cli::ServeArgs, out: &mut dyn std::io::Write) -> Result<()> {
    let inputs = [
        ("--model", Some(args.model.as_path())),
        ("--class-names", args.class_names.as_deref()),
        ("--metrics", args.metrics.as_deref()),
    ];
    crate::cli::check_std_streams_for(args.data.as_deref(), data::NEEDS_TEST, &inputs)?;
    let crate::modelfile::NamedModel {
        params,
        image,
        names,
        last_epoch_loss,
    } = crate::modelfile::load_named_model(&args.model, args.class_names.as_deref())?;
    // --data given: it must open. Left out: the usual places, if any holds
    // the test set; but a $SIMPLENN_DATA that names no directory is an error
    // here too, since the user asked for it.
    let test_dir = match &args.data {
        Some(d) => {
            let dir = data::resolve_dir_for(Some(d), data::NEEDS_TEST)?;
            Mnist::open_test(&dir)?;
            Some(dir)
        }
        None => match data::resolve_dir_for(None, data::NEEDS_TEST) {
            Ok(dir) => Some(dir),
            Err(e @ crate::idx::IdxError::EnvDir { .. }) => return Err(e.into()),
            Err(_) => None,
        },
    };
    if let Some(m) = &args.metrics {
        // Re-read at every request: a pipe (`<(…)`) would give its lines
        // once, and a FIFO would block until something writes to it.
        if let Some(why) = not_a_log_file(m) {
            bail!("--metrics {}: {why}; the page reads the log again at every request, so give a file (from train --metrics)", m.display());
        }
        let records = metrics::read(m)?;
        // A checkpoint knows its run's last epoch's loss, which that run's
        // log records exactly: a log without it is another run's curve.
        if let Some(loss) = last_epoch_loss {
            if !records.iter().any(|r| r.train_loss == loss) {
                return Err(crate::error::UsageError(format!(
                    "--metrics {}: another run's log (it holds {}, none with train loss {loss}, which the run that wrote {} had in its last whole epoch); give --metrics the log that run wrote, or leave it out",
                    m.display(),
                    crate::show::count(records.len(), "epoch"),
                    args.model.display()
                ))
                .into());
            }
        }
    }
    let mut state = State::for_model(params, &args.model, test_dir, args.metrics.clone())
        .with_image(image)
        .with_names(names);
    // A test set the model cannot be scored on: refused where --data named
    // it (as `eval` refuses it), set aside with the reason where it was
    // only found in the usual places; the page works without it.
    if let (Ok(test), Source::Fixed { params, path }) = (&state.test, &state.source) {
        if let Some(why) = misfit(test, &params.dims, state.image) {
            if args.data.is_some() {
                let dir = state.test_dir.as_deref().unwrap_or(Path::new("?"));
                bail!(
                    "cannot serve {} with --data {}: {why}",
                    path.display(),
                    dir.display()
                );
            }
            let dir = state.test_dir.as_deref().unwrap_or(Path::new("?"));
            state.test = Err(crate::show::one_line(&format!(
                "no test data: the test set in {} is set aside: {why}",
                dir.display()
            )));
        }
    }
    // A file from elsewhere that records no image shape (PyTorch's
    // save_file writes no simplenn.image) takes the shape of the test set it
    // fits, as `eval` does: a model of 4 × 9 images was shown as 6 × 6, its
    // tiles drawn so and its own test images refused by ?as_is=1. A square
    // one too, so that the same weights say the same shape whichever tool
    // wrote them (`image` was null for it, 28 × 28 for simplenn's file).
    if let (None, Ok(test), Source::Fixed { params, .. }) =
        (state.image, &state.test, &state.source)
    {
        let (rows, cols) = test.side();
        if rows * cols == params.dims.d() {
            state.image = Some((rows, cols));
        }
    }
    // Scored before the page asks, so that a model scored on another data
    // set than its own (the usual places hold MNIST) is said to be, as
    // `eval` says it.
    if let (Ok(test), Some(dir)) = (&state.test, &state.test_dir) {
        if let Ok((_, e)) = state.evaluation() {
            let name = crate::classes::name_in(state.class_names.as_ref());
            state.guess_note = match &state.source {
                Source::Fixed { params, .. } => {
                    // Buffers for a few rows only, made only if asked: the
                    // page's own scoring holds the test set's.
                    let same_output = || {
                        let mut ev = crate::eval::Evaluator::for_ranges_of(params, 1, 16);
                        ev.same_output(params, test, 0..test.len())
                    };
                    crate::eval::score_note(&e.confusion, same_output, &name, dir, "serve")
                }
                _ => crate::eval::guess_note(&e.confusion, dir, "serve"),
            };
        }
    }
    let note = state
        .test
        .as_ref()
        .err()
        .cloned()
        .or_else(|| state.guess_note.clone());
    let server = start(&args.host, args.port, Arc::new(state))?;
    // Only once it listens: a host it cannot listen on is one error line.
    if !is_loopback(server.addr().ip()) {
        // eprint_line here and below: a standard error that cannot be written
        // costs the line, not the page.
        crate::error::eprint_line(&exposed_warning(&args.host));
    }
    let banner = (|| {
        writeln!(
            out,
            "serving {} on {} (Ctrl-C to stop)",
            crate::show::path(&args.model),
            server.url()
        )?;
        out.flush()
    })();
    if let Some(note) = note {
        crate::error::eprint_line(&format!("simplenn: note: {note}"));
    }
    match banner {
        // `serve … | head -1` took the address, or the reader went away:
        // the page is what matters, and it goes on being served.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        r => r?,
    }
    server.wait();
    Ok(())
}

/// `simplenn train --serve PORT`: serve the live page on 127.0.0.1 while
/// the run trains, then keep serving the final model until Ctrl-C.
pub fn train_live(
    config: &crate::config::TrainConfig,
    mnist: &Mnist,
    mut opts: crate::train::RunOptions,
    port: u16,
    out: &mut (dyn std::io::Write + Send),
) -> Result<crate::train::TrainReport> {
    use std::sync::atomic::Ordering;
    let live = Arc::new(Live::new());
    let live_url = live.clone();
    opts.live = Some(live.clone());
    let state = State::for_run(live, Some(config.data_dir.clone()))
        .with_image(Some(mnist.train.side()))
        .with_names(opts.class_names.clone());
    let server = start("127.0.0.1", port, Arc::new(state))?;
    // Said by the run's header, once its checks have passed.
    live_url.served_at(server.url());
    let report = crate::train::train_with(config, mnist, opts, out)?;
    crate::signals::RUN_STOPPED.store(report.stopped, Ordering::SeqCst);
    crate::signals::RUN_DONE.store(true, Ordering::SeqCst);
    let what = match report.stopped {
        true => "training stopped (--stop-after)",
        false => "training done",
    };
    // A Ctrl-C after the last step let the run finish: the page goes now,
    // not at a second one.
    match crate::signals::INTERRUPTED.load(Ordering::SeqCst) {
        true => {
            let signal = crate::signals::words(crate::signals::stop_signal()).0;
            writeln!(out, "{what}; closing the page: {signal}")?
        }
        false => writeln!(
            out,
            "{what}; the page stays up on {} until Ctrl-C",
            server.url()
        )?,
    }
    out.flush()?;
    while !crate::signals::INTERRUPTED.load(Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = crate::signals::await_notice();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The note for a directory without a test set is one line, its path
    /// written as an error line writes it: backslashes doubled, a line
    /// break spelled (the page and standard error show this text as is).
    #[test]
    fn no_test_data_names_the_directory_as_an_error_line_does() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("a\\b\nc");
        std::fs::create_dir(&dir).unwrap();
        let Err(note) = open_test(Some(&dir)) else {
            panic!("an empty directory gave a test set");
        };
        assert!(note.starts_with("no test data: "), "{note}");
        assert!(!note.contains('\n'), "{note}");
        assert!(note.contains("a\\\\b\\nc"), "{note}");
    }
}
