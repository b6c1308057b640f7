//! `simplenn serve` and `train --serve`: one page and a small JSON API over
//! a model (a file, or the weights of a run in progress).
//!
//! The page (`page.html`, `page.js`, `page.css`, built into the binary)
//! draws everything itself from these routes; every route answers JSON, so
//! `curl` works too (see README, "The page and its API"):
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

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::classes::ClassNames;
use crate::data::{self, Dataset, Mnist};
use crate::eval::EVAL_BLOCK;
use crate::live::Live;
use crate::metrics;
use crate::model::{forward_eval, Params, Workspace};
use crate::predict::{self, Gray};

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
/// Most digits per page of `/api/digits`.
pub const MAX_PER_PAGE: usize = 200;
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
    /// The `/api/curve` answer for the log as it was (by [`log_stamp`]): a
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

/// A 4xx/5xx answer: `{"error": message}`.
#[derive(Debug)]
pub struct HttpError {
    pub status: u16,
    pub message: String,
    /// The methods a 405 names in its `Allow` header, as HTTP requires.
    pub allow: Option<&'static str>,
    /// Whether the answer ends its connection: a request body given up half
    /// read leaves bytes that are no request.
    pub close: bool,
}

fn err(status: u16, message: impl Into<String>) -> HttpError {
    HttpError {
        status,
        message: message.into(),
        allow: None,
        close: false,
    }
}

/// 405 for a route that takes only `allow`.
fn not_allowed(message: impl Into<String>, allow: &'static str) -> HttpError {
    HttpError {
        allow: Some(allow),
        ..err(405, message)
    }
}

/// A successful answer.
pub struct Reply {
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

fn json_reply(v: &impl Serialize) -> Reply {
    Reply {
        content_type: "application/json",
        // Plain numbers and strings: serializing cannot fail.
        body: serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec()),
    }
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
                format!("?version={want}: the test set's scoring with those weights is not kept ({kept}; the weights are now version {now}); score it again"),
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
            test.labels_path().display(),
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
        Some(d) => Mnist::open_test(d).map_err(|e| format!("no test data: {e}")),
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

/// A running server.
pub struct Server {
    http: Arc<tiny_http::Server>,
    stopping: Arc<std::sync::atomic::AtomicBool>,
    addr: SocketAddr,
    handlers: Vec<std::thread::JoinHandle<()>>,
}

impl Server {
    /// The address it listens on (with the real port when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://host:port/`
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Answer requests until the process ends.
    pub fn wait(self) {
        for h in self.handlers {
            let _ = h.join();
        }
    }

    /// Stop listening; the handler threads end.
    pub fn stop(self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        for _ in 0..HANDLERS {
            self.http.unblock();
        }
        for h in self.handlers {
            let _ = h.join();
        }
    }
}

/// Listen on `host:port` (0: any free port) and answer on [`HANDLERS`] threads.
pub fn start(host: &str, port: u16, state: Arc<State>) -> Result<Server> {
    let host = bare_host(host);
    let http = tiny_http::Server::http((host, port)).map_err(|e| {
        use std::io::ErrorKind;
        let kind = e.downcast_ref::<std::io::Error>().map(|e| e.kind());
        // Its accept thread did not start (a bind never says these).
        if let Some(ErrorKind::WouldBlock | ErrorKind::OutOfMemory) = kind {
            return anyhow::anyhow!(
                "cannot start the server's threads: {e}; {}",
                crate::error::THREADS_FIX
            );
        }
        let fix = match kind {
            Some(ErrorKind::AddrInUse) => "choose another port (or stop what uses this one)",
            Some(ErrorKind::PermissionDenied) => {
                "ports below 1024 need privileges; choose a port of 1024 or more"
            }
            // A name that does not resolve, or an address not of this machine.
            _ => "check --host: a name or address of this machine, e.g. 127.0.0.1",
        };
        anyhow::anyhow!("cannot listen on {host}:{port}: {e}; {fix}")
    })?;
    let addr = http
        .server_addr()
        .to_ip()
        .context("the server has no IP address")?;
    let http = Arc::new(http);
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Only a page on a loopback address can tell which names are its own:
    // the loopback ones, and the --host it was given.
    let guard = is_loopback(addr.ip()).then(|| Arc::new((addr, host.to_ascii_lowercase())));
    let handlers = (0..HANDLERS)
        .map(|i| {
            let (http, state, stopping) = (http.clone(), state.clone(), stopping.clone());
            let guard = guard.clone();
            std::thread::Builder::new()
                .name(format!("simplenn-http-{i}"))
                .spawn(move || loop {
                    match http.recv() {
                        // A body may trickle in for up to BODY_DEADLINE (and
                        // a last read's 10 s timeout): it is read on a thread
                        // of its own, so slow uploads hold none of the
                        // threads that answer the page (at most one per
                        // connection: its next request waits for this
                        // answer). Should the thread not start, the
                        // dropped request gets the library's 500.
                        Ok(req) if carries_body(&req) => {
                            let (state, guard) = (state.clone(), guard.clone());
                            let _ = std::thread::Builder::new()
                                .name("simplenn-upload".into())
                                .spawn(move || answer(&state, req, guard.as_deref()));
                        }
                        Ok(req) => answer(&state, req, guard.as_deref()),
                        // A failed accept (e.g. out of file descriptors) is
                        // that connection's loss, not this thread's end.
                        Err(_) if !stopping.load(std::sync::atomic::Ordering::SeqCst) => {
                            std::thread::sleep(std::time::Duration::from_millis(10))
                        }
                        Err(_) => break,
                    }
                })
                .map_err(|e| {
                    anyhow::anyhow!(
                        "cannot start a server thread: {e}; {}",
                        crate::error::THREADS_FIX
                    )
                })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Server {
        http,
        stopping,
        addr,
        handlers,
    })
}

/// `host` without the brackets a URL puts around an IPv6 address (`[::1]`
/// is `::1`), which the system's resolver does not take.
fn bare_host(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Why an API request that a page of another site made is refused (`None`
/// for the page's own, and for those of curl and scripts, which send
/// neither header): its `Origin` is not the origin of the page it asks
/// (`http://` and its `Host`), or the browser marks it `Sec-Fetch-Site:
/// cross-site` or `same-site` (a page on another port of this machine).
/// No answer could be read there (the server sends no CORS headers), but
/// the asking alone would make the server decode images and score the test
/// set for any site the user visits. The page itself (`/`, its assets)
/// stays open to links from anywhere.
fn cross_site(req: &tiny_http::Request) -> Option<String> {
    let header = |name: &'static str| {
        req.headers()
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str().trim().to_ascii_lowercase())
    };
    // A request line in absolute form (`POST http://HOST/api/…`) names the
    // page's host and path itself, as in `host_is_local` and `route`.
    let (host, url) = match absolute_form(req.url()) {
        Some((authority, path)) => (authority.to_ascii_lowercase(), path),
        None => (header("Host").unwrap_or_default(), req.url().to_string()),
    };
    let path = url.split('?').next().unwrap_or_default();
    if !path.starts_with("/api/") {
        return None;
    }
    let refused = |from: &str| {
        format!("{path}: requests from pages of other sites ({from}) are refused; open this page itself and use it there")
    };
    // A browser that says where the request comes from is believed: under
    // a no-referrer policy it sends the page's own POSTs with `Origin:
    // null`, which the check below would refuse.
    match header("Sec-Fetch-Site").as_deref() {
        Some(site @ ("cross-site" | "same-site")) => {
            return Some(refused(&format!("Sec-Fetch-Site: {site}")))
        }
        Some("same-origin" | "none") => return None,
        _ => {}
    }
    let origin = header("Origin")?;
    (origin != format!("http://{host}"))
        .then(|| refused(&format!("Origin: {}", crate::show::one_line(&origin))))
}

/// Whether a request announces a body (of any length, or chunked).
fn carries_body(req: &tiny_http::Request) -> bool {
    req.body_length().is_some_and(|n| n > 0)
        || req
            .headers()
            .iter()
            .any(|h| h.field.equiv("Transfer-Encoding") || h.field.equiv("Content-Length"))
}

/// Whether the address the server listens on only reaches this machine
/// (judged by the address bound, not the name typed: `127.1`, `LOCALHOST`,
/// `::ffff:127.0.0.1` and a host name that resolves to 127.0.0.1 all are).
pub fn is_loopback(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(v6.is_loopback(), |v4| v4.is_loopback()),
        v4 => v4.is_loopback(),
    }
}

/// The warning printed when the page is reachable from other machines.
pub fn exposed_warning(host: &str) -> String {
    format!(
        "simplenn: warning: serving on {host}, reachable from other machines; the page has no authentication, anyone who can reach it can use it and read the test set"
    )
}

/// Whether a request's `Host` header names this machine's loopback
/// (`localhost`, `127.0.0.1`, `[::1]`, with any port) or is `typed`, the
/// `--host` the server was started with: a page on a loopback address
/// answers nothing else, so that a web site whose name was made to resolve
/// to 127.0.0.1 (DNS rebinding) cannot use it from the browser. A request
/// line in absolute form (`GET http://HOST/…`) is judged by its URL's
/// host instead. An HTTP/1.0 request without `Host` is let through (an
/// HTTP/1.1 one is refused before, by [`host_count_error`]).
fn host_is_local(req: &tiny_http::Request, typed: &str) -> bool {
    // A request line in absolute form names its host itself, and the Host
    // header is then ignored (RFC 9112, 3.2.2).
    let host = match absolute_form(req.url()) {
        // User information (`user@host`) is no part of a loopback name,
        // and could hide one behind another: refused below.
        Some((authority, _)) => authority.to_ascii_lowercase(),
        None => {
            let mut hosts = req.headers().iter().filter(|h| h.field.equiv("Host"));
            let (Some(host), None) = (hosts.next(), hosts.next()) else {
                // None (HTTP/1.0), or two, which a proxy may read either
                // way: judged as one that is not ours.
                return req.headers().iter().all(|h| !h.field.equiv("Host"));
            };
            host.value.as_str().trim().to_ascii_lowercase()
        }
    };
    if host.contains('@') {
        return false;
    }
    // Drop a port: after the `]` of an IPv6 literal (nothing else may
    // follow it), or after the only `:`.
    let name = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, "")) => v6,
            Some((v6, port)) if port.starts_with(':') => v6,
            _ => return false,
        },
        None => match host.matches(':').count() {
            1 => host.split(':').next().unwrap_or_default(),
            _ => &host,
        },
    };
    // A fully qualified name may end with a dot.
    let name = name.strip_suffix('.').unwrap_or(name);
    name == "localhost" || name == typed || name.parse::<std::net::IpAddr>().is_ok_and(is_loopback)
}

/// HTTP/1.1 requires one `Host` header in every request (RFC 9112, 3.2:
/// a server "MUST respond with a 400" to a request that lacks it or has
/// more than one); HTTP/1.0 may leave it out. Two could name two hosts,
/// read one way here and another by a proxy in front; so with the headers
/// the cross-site check reads (only the first would be checked).
fn host_count_error(req: &tiny_http::Request) -> Option<HttpError> {
    let count = |name: &'static str| req.headers().iter().filter(|h| h.field.equiv(name)).count();
    let twice = ["Host", "Origin", "Sec-Fetch-Site"]
        .into_iter()
        .map(|name| (name, count(name)))
        .find(|&(_, n)| n > 1);
    let message = match (count("Host"), twice) {
        (_, Some((name, n))) => format!("the request has {n} {name} headers; send one"),
        (0, None) if *req.http_version() >= (1, 1) => {
            "the request has no Host header (required in HTTP/1.1); send the page's address in one (Host: 127.0.0.1:PORT)".to_string()
        }
        _ => return None,
    };
    // What follows the head (a body) is not read: it would be taken for
    // the next request.
    Some(HttpError {
        close: true,
        ..err(400, message)
    })
}

fn answer(
    state: &State,
    mut req: tiny_http::Request,
    guard: Option<&(std::net::SocketAddr, String)>,
) {
    let reply = if let Some(e) = host_count_error(&req) {
        Err(e)
    } else if let Some((addr, _)) = guard.filter(|(_, typed)| !host_is_local(&req, typed)) {
        // The address it listens on (`[::1]:8080` under --host ::1).
        Err(err(
            403,
            format!(
                "this page answers only requests for localhost or a loopback address; open http://{addr}/{}",
                match state.source {
                    Source::Fixed { .. } => " (a page served with --host NAME answers that name too)",
                    // train --serve has no --host.
                    Source::Live(_) => "",
                }
            ),
        ))
    } else if let Some(why) = cross_site(&req) {
        Err(err(403, why))
    } else {
        // A bug in a route must cost one 500, never a server thread.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| route(state, &mut req)))
            .unwrap_or_else(|_| Err(err(500, "internal error")))
    };
    let (status, reply, allow) = match reply {
        Ok(r) => (200, r, None),
        Err(e) => {
            if e.close {
                req.close_connection();
            }
            (
                e.status,
                json_reply(&json!({ "error": e.message })),
                e.allow,
            )
        }
    };
    let header = |k: &str, v: &str| tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).ok();
    let mut resp = tiny_http::Response::from_data(reply.body).with_status_code(status);
    for h in [
        header("Content-Type", reply.content_type),
        header("Cache-Control", "no-store"),
        header("X-Content-Type-Options", "nosniff"),
        header("X-Simplenn-Instance", instance()),
        allow.and_then(|a| header("Allow", a)),
    ]
    .into_iter()
    .flatten()
    {
        resp.add_header(h);
    }
    // The client may have gone: nothing to do about it.
    let _ = req.respond(resp);
}

/// This server's name for itself, different for every process: a page
/// open across a restart on the same port (another model, another run)
/// sees it change on its next request, and reloads.
fn instance() -> &'static str {
    static INSTANCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    INSTANCE.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{}-{nanos}", std::process::id())
    })
}

/// The request's body, at most [`MAX_BODY`] bytes. An error ends the
/// connection: what is left of the body cannot be told from a request.
fn body(req: &mut tiny_http::Request) -> Result<Vec<u8>, HttpError> {
    read_body(req).map_err(|e| HttpError { close: true, ..e })
}

fn read_body(req: &mut tiny_http::Request) -> Result<Vec<u8>, HttpError> {
    let too_big = || {
        err(
            413,
            format!("request body over {MAX_BODY} bytes; send a smaller image"),
        )
    };
    // The library takes the first Content-Length, and none where it is not
    // a number (a body then read as the next request): refuse both.
    let mut lengths = Vec::new();
    for h in req
        .headers()
        .iter()
        .filter(|h| h.field.equiv("Content-Length"))
    {
        let v = h.value.as_str().trim();
        // RFC 9110: 1*DIGIT. Rust's parse also takes a leading '+', which
        // a proxy in front may read differently.
        let digits = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
        match v.parse::<u64>() {
            Ok(n) if digits => lengths.push(n),
            _ => {
                return Err(err(
                    400,
                    format!("Content-Length {v:?} is not a number of bytes; send the body's length in bytes"),
                ))
            }
        }
    }
    lengths.sort_unstable();
    lengths.dedup();
    if lengths.len() > 1 {
        return Err(err(
            400,
            format!(
                "the request has {} different Content-Length headers; send one",
                lengths.len()
            ),
        ));
    }
    if req.body_length().is_some_and(|n| n > MAX_BODY) {
        return Err(too_big());
    }
    // A compressed body would be read as the image or JSON itself.
    if let Some(h) = req.headers().iter().find(|h| {
        h.field.equiv("Content-Encoding")
            && !h.value.as_str().trim().eq_ignore_ascii_case("identity")
    }) {
        return Err(err(
            415,
            format!(
                "Content-Encoding {}: not accepted; send the body uncompressed",
                crate::show::one_line(h.value.as_str().trim())
            ),
        ));
    }
    // A chunked body's size lines are read without bound by the HTTP
    // library; the page (and curl --data-binary) send a Content-Length.
    // Without one (and without Transfer-Encoding) the library takes the
    // body to be empty and would read it as the next request.
    let coded = req
        .headers()
        .iter()
        .any(|h| h.field.equiv("Transfer-Encoding"));
    if req.body_length().is_none() {
        return Err(err(
            411,
            match coded {
                true => "send the body with a Content-Length and no Transfer-Encoding; chunked (or otherwise coded) uploads are not accepted",
                false => "send the body with a Content-Length; the request has none",
            },
        ));
    }
    // However slowly it trickles in, a body gets BODY_DEADLINE to arrive,
    // checked before each read; a read under way may run up to the
    // socket's 10 s timeout past it. (It is read on its upload thread, not
    // one of the threads that answer: see `start`.)
    let deadline = Instant::now() + BODY_DEADLINE;
    let (mut buf, mut piece) = (Vec::new(), [0u8; 8192]);
    let req_len = req.body_length().map(|n| n as u64);
    let reader = req.as_reader();
    loop {
        if Instant::now() > deadline {
            return Err(err(
                408,
                format!(
                    "the request body took over {} s to arrive; send it at once",
                    BODY_DEADLINE.as_secs()
                ),
            ));
        }
        match reader.read(&mut piece) {
            // The client ended its side before the Content-Length: the
            // body is not all there, whatever the part parses as.
            Ok(0) if req_len.is_some_and(|n| (buf.len() as u64) < n) => {
                return Err(err(
                    400,
                    format!(
                        "the request body ended after {} of its {} bytes; send the whole body",
                        buf.len(),
                        req_len.unwrap_or_default()
                    ),
                ))
            }
            Ok(0) => return Ok(buf),
            Ok(n) => {
                buf.extend_from_slice(&piece[..n]);
                if buf.len() > MAX_BODY {
                    return Err(too_big());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(err(
                    408,
                    "the request body stopped arriving; send it at once",
                ));
            }
            Err(e) => return Err(err(400, format!("cannot read the request body: {e}"))),
        }
    }
}

/// The longest a request body may take to arrive.
const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);

/// `?a=1&b=2` as pairs.
/// Names and values are percent-decoded (`%31` is `1`, `+` a space), as a
/// browser or `curl --data-urlencode` may send them.
fn query(url: &str) -> Vec<(String, String)> {
    url.split_once('?')
        .map(|(_, q)| q)
        .unwrap_or("")
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// The byte a `%XX` escape at `b[i]` stands for; `None` where none begins
/// there, or where it is malformed.
fn escaped_byte(b: &[u8], i: usize) -> Option<u8> {
    let hex = |c: u8| (c as char).to_digit(16);
    match b.get(i..i + 3)? {
        [b'%', h, l] => Some((hex(*h)? * 16 + hex(*l)?) as u8),
        _ => None,
    }
}

/// `%XX` escapes and `+` decoded; a malformed escape is kept as it is.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if let Some(c) = escaped_byte(b, i) {
            out.push(c);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A path with the escapes of unreserved characters (letters, digits,
/// `-._~`) decoded: `/api/%6dodel` is `/api/model` (RFC 3986, 6.2.2.2). Any
/// other escape stays, so `%2F` is not a `/` that would name a route.
fn unreserved_decoded(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.contains('%') {
        return path.into();
    }
    let b = path.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match escaped_byte(b, i) {
            Some(c) if c.is_ascii_alphanumeric() || b"-._~".contains(&c) => {
                out.push(c as char);
                i += 3;
                continue;
            }
            _ => {}
        }
        // Whole characters: the path is a `str`, and `%` is ASCII.
        let len = path[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&path[i..i + len]);
        i += len;
    }
    out.into()
}

/// Query parameter `name` as a whole number, or `None` when absent.
fn number(q: &[(String, String)], name: &str) -> Result<Option<usize>, HttpError> {
    if q.iter().filter(|(k, _)| *k == name).count() > 1 {
        return Err(err(
            400,
            format!("?{name} given more than once; give it once"),
        ));
    }
    match q.iter().find(|(k, _)| *k == name) {
        None => Ok(None),
        // Digits only: Rust's parse also takes a leading '+'.
        Some((_, v)) => v
            .parse()
            .ok()
            .filter(|_| v.bytes().all(|b| b.is_ascii_digit()))
            .map(Some)
            .ok_or_else(|| {
                let range = match name {
                    "per_page" => format!("from 1 to {MAX_PER_PAGE}"),
                    "label" | "predicted" => "naming a class: 0, 1, 2, …".to_string(),
                    _ => "0, 1, 2, …".to_string(),
                };
                err(400, format!("?{name}={v}: not a whole number {range}"))
            }),
    }
}

/// `http://HOST[:PORT]/path?q` (a request line's absolute form, which a
/// server must take as well as `/path?q`): its authority, and the rest
/// (`/` where there is none).
fn absolute_form(url: &str) -> Option<(&str, String)> {
    let scheme_end = url.find("://")?;
    let scheme = &url[..scheme_end];
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return None;
    }
    let rest = &url[scheme_end + 3..];
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let path = match path.starts_with('/') {
        true => path.to_string(),
        false => format!("/{path}"),
    };
    Some((authority, path))
}

fn route(state: &State, req: &mut tiny_http::Request) -> Result<Reply, HttpError> {
    use tiny_http::Method::{Get, Head, Post};
    let url = match absolute_form(req.url()) {
        Some((_, path)) => path,
        None => req.url().to_string(),
    };
    // RFC 9110, 9.1: a method the server does not know is a 501, not a 405.
    if let tiny_http::Method::NonStandard(m) = req.method() {
        return Err(HttpError {
            close: true,
            ..err(
                501,
                format!(
                    "method {}: not one this server knows; use GET (POST for /api/predict)",
                    crate::show::one_line(m.as_str())
                ),
            )
        });
    }
    // A control character in the URL (a NUL, DEL) names no page: refused
    // as malformed, not echoed in a 404.
    if url.bytes().any(|b| b.is_ascii_control()) {
        return Err(HttpError {
            close: true,
            ..err(
                400,
                "the URL holds a control character (such as NUL or DEL); remove it",
            )
        });
    }
    let path = unreserved_decoded(url.split('?').next().unwrap_or(""));
    let path = path.as_ref();
    let method = req.method().clone();
    let get = matches!(method, Get | Head);
    let page = |content_type, text: &str| {
        Ok(Reply {
            content_type,
            body: text.as_bytes().to_vec(),
        })
    };
    let q = query(&url);
    match (path, get, method == Post) {
        ("/" | "/index.html", true, _) => page("text/html; charset=utf-8", PAGE_HTML),
        ("/page.js", true, _) => page("text/javascript; charset=utf-8", PAGE_JS),
        ("/page.css", true, _) => page("text/css; charset=utf-8", PAGE_CSS),
        ("/api/model", true, _) => model_info(state),
        ("/api/predict", _, true) => {
            let ctype = req
                .headers()
                .iter()
                .find(|h| h.field.equiv("Content-Type"))
                .map(|h| h.value.as_str().to_ascii_lowercase())
                .unwrap_or_default();
            let prepare = prepare_of(&q)?;
            let bytes = body(req)?;
            predict_route(state, &ctype, &bytes, prepare)
        }
        ("/api/confusion", true, _) => confusion(state),
        ("/api/digits", true, _) => digits(state, &q),
        ("/api/weights.png", true, _) => weights_png(state),
        ("/api/curve", true, _) => curve(state, &q),
        ("/api/status", true, _) => status(state, &q),
        (
            "/" | "/index.html" | "/page.js" | "/page.css" | "/api/model" | "/api/confusion"
            | "/api/digits" | "/api/weights.png" | "/api/curve" | "/api/status",
            _,
            _,
        ) => Err(not_allowed(format!("{path}: use GET"), "GET, HEAD")),
        ("/api/predict", _, _) => Err(not_allowed("/api/predict: use POST with an image", "POST")),
        _ => Err(err(
            404,
            format!("{path}: no such page or route; see / for the page"),
        )),
    }
}

/// Side of the first layer's tiles and how many there are (0 when the input is not square).
fn tiles(params: &Params) -> (Option<usize>, usize) {
    match params.dims.square_side() {
        Some(side) => (Some(side), params.dims.layer(0).1.min(MAX_TILES)),
        None => (None, 0),
    }
}

fn model_info(state: &State) -> Result<Reply, HttpError> {
    let (_, params) = state.params()?;
    let dims = &params.dims;
    // A model trained on rows × cols images with rows ≠ cols has no square tiles.
    let (side, tiles) = match state.image {
        Some((rows, cols)) if rows != cols => (None, 0),
        _ => tiles(&params),
    };
    let (source, live) = match &state.source {
        Source::Fixed { path, .. } => (path.display().to_string(), false),
        Source::Live(live) => {
            let what = match live.lock().phase {
                crate::live::Phase::Done => "the finished run",
                crate::live::Phase::Stopped => "the stopped run",
                _ => "the run in progress",
            };
            (what.to_string(), true)
        }
    };
    let test = match &state.test {
        Ok(t) => {
            json!({ "images": t.len(), "dir": state.test_dir.as_ref().map(|d| d.display().to_string()) })
        }
        Err(_) => serde_json::Value::Null,
    };
    Ok(json_reply(&json!({
        "name": dims.name(),
        "widths": dims.widths(),
        "inputs": dims.d(),
        "classes": dims.k(),
        "class_names": state.class_names.as_ref().map(ClassNames::names),
        "side": side,
        "image": state.image.map(|(rows, cols)| json!({ "rows": rows, "cols": cols })),
        "tiles": tiles,
        "units": dims.layer(0).1,
        "source": source,
        "live": live,
        "test": test,
        "test_note": state.test.as_ref().err(),
        "metrics": state.metrics.as_ref().map(|m| m.display().to_string()),
    })))
}

/// `/api/predict` JSON body: grayscale pixels, row by row, 0 to 255.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PixelsIn {
    width: Option<usize>,
    height: Option<usize>,
    pixels: Vec<f32>,
}

/// What `/api/predict` answers.
#[derive(Serialize)]
pub struct PredictOut {
    /// The likeliest class (a digit for MNIST's models).
    pub digit: usize,
    /// Its name, where the model or `--class-names` gives names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub probability: f32,
    pub probabilities: Vec<f32>,
    /// Side of the prepared input; `None` for a model of images that are
    /// not square.
    pub side: Option<usize>,
    /// The input the model sees, row by row, `side × side` (or the
    /// training images' rows × columns), 0 to 255.
    pub input: Vec<u8>,
    /// Version of the weights used (live runs: grows as training goes).
    pub version: u64,
    /// Server time for this prediction (decode, prepare, forward), µs.
    pub micros: u64,
}

/// Whether a body is taken for JSON pixels (by its type, or its first
/// character), not an image file.
fn is_json(content_type: &str, bytes: &[u8]) -> bool {
    content_type.starts_with("application/json")
        || bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// Decode a request body to grayscale: PNG or JPEG (by content), or JSON pixels.
///
/// JSON pixels without width and height must be exactly the model's
/// `shape`, `(rows, cols)`.
pub fn body_to_gray(
    content_type: &str,
    bytes: &[u8],
    shape: (usize, usize),
) -> Result<Gray, HttpError> {
    let (rows, cols) = shape;
    if is_json(content_type, bytes) {
        const SEND: &str = "send {\"width\": W, \"height\": H, \"pixels\": [W·H numbers 0–255]}";
        // serde reads a struct from an array too (`[28, 28, […]]`), and
        // its errors then name the Rust type: only an object is asked for.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(err(400, format!("malformed JSON: not an object; {SEND}")));
        }
        let p: PixelsIn = serde_json::from_slice(bytes)
            .map_err(|e| err(400, format!("malformed JSON: {e}; {SEND}")))?;
        let n = p.pixels.len();
        let (w, h) = match (p.width, p.height) {
            (Some(w), Some(h)) => (w, h),
            (None, None) if n == rows * cols => (cols, rows),
            (None, None) => {
                return Err(err(
                    400,
                    format!("{n} pixels without width and height: give both, or exactly {cols} × {rows} = {} pixels", rows * cols),
                ))
            }
            _ => return Err(err(400, "give both width and height, or neither")),
        };
        if w == 0 || h == 0 {
            return Err(err(
                400,
                format!("an empty image ({w} × {h}): width and height must be at least 1"),
            ));
        }
        if w > MAX_IMAGE_SIDE as usize || h > MAX_IMAGE_SIDE as usize {
            return Err(err(
                400,
                format!("a {w} × {h} image: send one of at most {MAX_IMAGE_SIDE} × {MAX_IMAGE_SIDE} pixels"),
            ));
        }
        if w.checked_mul(h) != Some(n) {
            return Err(err(
                400,
                format!(
                    "wrong size: {n} pixels for a {w} × {h} image (needs {})",
                    w as u128 * h as u128
                ),
            ));
        }
        if let Some(v) = p.pixels.iter().find(|v| !(0.0..=255.0).contains(*v)) {
            return Err(err(400, format!("pixel value {v}: must be 0 to 255")));
        }
        return Ok(Gray {
            width: w,
            height: h,
            pixels: p.pixels,
        });
    }
    if bytes.is_empty() {
        return Err(err(
            400,
            "empty body; POST a PNG or JPEG image, or JSON pixels",
        ));
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(64 << 20);
    let img = predict::decode_image(bytes, &limits).map_err(|e| {
        err(
            400,
            format!(
                "cannot read the image ({}); POST a PNG or JPEG of at most {MAX_IMAGE_SIDE} × {MAX_IMAGE_SIDE} pixels, or JSON pixels",
                e.reason
            ),
        )
    })?;
    Ok(predict::to_gray(&img))
}

/// How `/api/predict` turns an image into the model's inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prepare {
    /// As `simplenn predict` does ([`predict::to_input`]).
    Mnist,
    /// `?as_is=1`: the pixels unchanged, as `predict --as-is` takes them
    /// ([`predict::as_is_input`]).
    AsIs,
}

/// One prediction: the body decoded, prepared by [`predict::to_input`] (or
/// taken as it is) and scored by [`predict::probabilities`], exactly as
/// `simplenn predict` (`--as-is`) does.
///
/// `image`: the shape of the images the model was trained on, where its
/// file says ([`predict::input_shape`]); only `AsIs` takes images that are
/// not square.
pub fn predict_bytes(
    params: &Params,
    image: Option<(usize, usize)>,
    version: u64,
    content_type: &str,
    bytes: &[u8],
    prepare: Prepare,
) -> Result<PredictOut, HttpError> {
    let t0 = Instant::now();
    let as_is = |why: String| why.replace("--as-is", "?as_is=1");
    let (rows, cols) = predict::input_shape(params, image).map_err(|why| err(409, why))?;
    if let (Prepare::Mnist, Some(why)) = (prepare, predict::non_square(Some((rows, cols)))) {
        return Err(err(409, as_is(why)));
    }
    let gray = body_to_gray(content_type, bytes, (rows, cols))?;
    let x = match prepare {
        Prepare::Mnist => predict::to_input_or_as_is_hint(&gray, rows, "the image"),
        Prepare::AsIs => predict::as_is_input(&gray, (rows, cols), "the image"),
    };
    let x = x.map_err(|e| err(422, as_is(e.to_string())))?;
    let probabilities = predict::probabilities(params, &x);
    let (digit, &probability) =
        probabilities
            .iter()
            .enumerate()
            .fold((0, &f32::NEG_INFINITY), |best, (i, p)| {
                if *p > *best.1 {
                    (i, p)
                } else {
                    best
                }
            });
    Ok(PredictOut {
        digit,
        name: None,
        probability,
        side: (rows == cols).then_some(rows),
        input: x
            .iter()
            .map(|&v| (v * 255.0).round().clamp(0.0, 255.0) as u8)
            .collect(),
        probabilities,
        version,
        micros: t0.elapsed().as_micros() as u64,
    })
}

/// Images decoded at once, whatever the uploads in flight: a small file
/// may hold a large image (a 28 KB PNG of 4096 × 4096 takes some 200 MB to
/// decode and prepare), and each upload has a thread of its own.
const DECODERS: usize = HANDLERS;

/// Turns at something only `cap` may do at once, given in the order they
/// were asked for: an upload that waits is not passed by later ones.
struct Turns {
    /// Tickets given out, tickets whose turn has come, turns held.
    state: std::sync::Mutex<(u64, u64, usize)>,
    /// Signalled when a turn ends or begins (the next ticket may be due).
    changed: std::sync::Condvar,
    cap: usize,
}

/// A turn held: ends when dropped.
struct Turn<'a>(&'a Turns);

impl Turns {
    const fn new(cap: usize) -> Self {
        Turns {
            state: std::sync::Mutex::new((0, 0, 0)),
            changed: std::sync::Condvar::new(),
            cap,
        }
    }

    /// Wait for this caller's turn: after every earlier caller's, and
    /// while fewer than `cap` are held.
    fn take(&self) -> Turn<'_> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let ticket = st.0;
        st.0 += 1;
        while !(st.1 == ticket && st.2 < self.cap) {
            st = self.changed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        st.1 += 1;
        st.2 += 1;
        // The next ticket may be due too (`cap` not reached).
        self.changed.notify_all();
        Turn(self)
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner()).2 -= 1;
        self.0.changed.notify_all();
    }
}

/// Turns at decoding an image: at most [`DECODERS`] at once, the others
/// waiting in arrival order.
static DECODING: Turns = Turns::new(DECODERS);

fn predict_route(
    state: &State,
    ctype: &str,
    bytes: &[u8],
    prepare: Prepare,
) -> Result<Reply, HttpError> {
    // JSON pixels (64 KiB at most) need no turn: a drawing on the page is
    // not kept waiting behind large images.
    let _turn = (!is_json(ctype, bytes)).then(|| DECODING.take());
    let (version, params) = state.params()?;
    let mut out = predict_bytes(&params, state.image, version, ctype, bytes, prepare)?;
    out.name = state
        .class_names
        .as_ref()
        .and_then(|n| n.name(out.digit).map(str::to_string));
    Ok(json_reply(&out))
}

/// `?as_is=1` (or `true`): the pixels unchanged; absent, `0` or `false`:
/// prepared as `simplenn predict` prepares them.
fn prepare_of(q: &[(String, String)]) -> Result<Prepare, HttpError> {
    let values: Vec<&str> = q
        .iter()
        .filter(|(k, _)| k == "as_is")
        .map(|(_, v)| v.as_str())
        .collect();
    match values[..] {
        [] | ["0" | "false"] => Ok(Prepare::Mnist),
        ["1" | "true"] => Ok(Prepare::AsIs),
        [v] => Err(err(
            400,
            format!("?as_is={v}: must be 1 or 0 (true or false)"),
        )),
        _ => Err(err(400, "?as_is given more than once; give it once")),
    }
}

fn confusion(state: &State) -> Result<Reply, HttpError> {
    let (version, e) = state.evaluation()?;
    let n = e.predicted.len();
    Ok(json_reply(&json!({
        "version": version,
        "classes": e.confusion.len(),
        "images": n,
        "correct": e.correct,
        "accuracy": if n == 0 { 0.0 } else { e.correct as f64 / n as f64 },
        "matrix": e.confusion,
        "note": state.guess_note,
    })))
}

/// `?label=&predicted=&page=&per_page=`: the digits of one confusion cell
/// (either filter alone: a row or a column), or without filters every
/// misclassified digit; in test-set order. `&version=`: as the matrix of
/// that version of the weights has them (see [`State::evaluation_of`]).
fn digits(state: &State, q: &[(String, String)]) -> Result<Reply, HttpError> {
    let version = number(q, "version")?.map(|v| v as u64);
    let (version, e) = state.evaluation_of(version)?;
    let test = state.test()?;
    let label = number(q, "label")?;
    let predicted = number(q, "predicted")?;
    let page = number(q, "page")?.unwrap_or(0);
    let per_page = number(q, "per_page")?.unwrap_or(24);
    if per_page == 0 || per_page > MAX_PER_PAGE {
        return Err(err(
            400,
            format!("?per_page={per_page}: must be 1 to {MAX_PER_PAGE}"),
        ));
    }
    let k = e.confusion.len();
    for (name, v) in [("label", label), ("predicted", predicted)] {
        if let Some(v) = v.filter(|&v| v >= k) {
            return Err(err(
                400,
                format!("?{name}={v}: the model has classes 0 to {}", k - 1),
            ));
        }
    }
    let wanted = |i: usize| {
        let (y, p) = (test.label(i) as usize, e.predicted[i] as usize);
        match (label, predicted) {
            (None, None) => y != p,
            (l, pr) => l.is_none_or(|l| l == y) && pr.is_none_or(|pr| pr == p),
        }
    };
    let all: Vec<usize> = (0..e.predicted.len()).filter(|&i| wanted(i)).collect();
    // Page 0 of an empty list is the empty list; past the last page is a
    // mistake the answer should not hide as an empty page.
    let pages = all.len().div_ceil(per_page);
    if page >= pages.max(1) {
        let list = crate::show::count(all.len(), "image");
        let why = match pages {
            0 => "this list is empty: page 0 is its only page".to_string(),
            1 => format!("this list of {list} has one page: 0"),
            n => format!("this list of {list} has {n} pages: 0 to {}", n - 1),
        };
        return Err(err(400, format!("?page={page}: {why}")));
    }
    let (rows, cols) = test.side();
    let items: Vec<_> = all
        .iter()
        .skip(page.saturating_mul(per_page))
        .take(per_page)
        .map(|&i| {
            json!({
                "index": i,
                "label": test.label(i),
                "predicted": e.predicted[i],
                "probability": e.probability[i],
                "pixels": test.image(i),
            })
        })
        .collect();
    Ok(json_reply(&json!({
        "version": version,
        "total": all.len(),
        "page": page,
        "per_page": per_page,
        "pages": pages,
        "rows": rows,
        "cols": cols,
        "items": items,
    })))
}

/// The first layer's weights, one tile per unit (up to [`MAX_TILES`]):
/// red positive, blue negative, each tile scaled by its own largest weight.
pub fn weights_image(params: &Params) -> Option<image::RgbImage> {
    let (side, n) = match tiles(params) {
        (Some(side), n) if n > 0 => (side, n),
        _ => return None,
    };
    let (d, h) = params.dims.layer(0);
    let (w, _) = params.layer_slices(0); // W_0ᵀ (D, n_1)
    let cols = (n as f64).sqrt().ceil() as usize;
    let rows = n.div_ceil(cols);
    let cell = side + 1;
    let mut img = image::RgbImage::from_pixel(
        (cols * cell + 1) as u32,
        (rows * cell + 1) as u32,
        image::Rgb([40, 40, 40]),
    );
    // Unit j's tile: its top left pixel.
    let origin = |j: usize| (1 + (j % cols) * cell, 1 + (j / cols) * cell);
    for j in 0..n {
        let weight = |i: usize| w[i * h + j];
        let max = (0..d).map(|i| weight(i).abs()).fold(1e-12, f32::max);
        let (ox, oy) = origin(j);
        for i in 0..d {
            let t = (weight(i) / max).clamp(-1.0, 1.0);
            let fade = (255.0 * (1.0 - t.abs())) as u8;
            let rgb = if t >= 0.0 {
                [255, fade, fade]
            } else {
                [fade, fade, 255]
            };
            img.put_pixel(
                (ox + i % side) as u32,
                (oy + i / side) as u32,
                image::Rgb(rgb),
            );
        }
    }
    // The grid's slots past the last unit, with their edges, are the
    // page's white: a dark block there read as tiles of something.
    for j in n..rows * cols {
        let (ox, oy) = origin(j);
        for y in oy..oy + cell {
            for x in ox..ox + cell {
                img.put_pixel(x as u32, y as u32, image::Rgb([255, 255, 255]));
            }
        }
    }
    Some(img)
}

fn weights_png(state: &State) -> Result<Reply, HttpError> {
    let (_, params) = state.params()?;
    if let Some((rows, cols)) = state.image.filter(|(r, c)| r != c) {
        return Err(err(
            404,
            format!("the model was trained on {rows} × {cols} images, not square: no weight tiles"),
        ));
    }
    let img = weights_image(&params).ok_or_else(|| {
        err(
            404,
            format!(
                "the model's {} inputs are not a square image: no weight tiles",
                params.dims.d()
            ),
        )
    })?;
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| err(500, format!("cannot encode the tiles: {e}")))?;
    Ok(Reply {
        content_type: "image/png",
        body: png,
    })
}

/// `?since=N`: the live run's points from the N-th on, and every epoch's
/// record; for a model file, the `--metrics` log's epochs.
fn curve(state: &State, q: &[(String, String)]) -> Result<Reply, HttpError> {
    let since = number(q, "since")?.unwrap_or(0);
    match &state.source {
        Source::Live(live) => {
            let s = live.lock();
            Ok(json_reply(&json!({
                "total_points": s.points.len(),
                "points": s.points.get(since..).unwrap_or(&[]),
                "epochs": s.records,
            })))
        }
        Source::Fixed { .. } => {
            let log =
                match &state.metrics {
                    // Replaced by a FIFO since the start, its open would
                    // hold this thread until something wrote to it.
                    Some(path) => match not_a_log_file(path) {
                        Some(why) => {
                            let e = format!("{}: {why}; the log must be a file", path.display());
                            return Err(err(404, e));
                        }
                        None => path,
                    },
                    None => return Err(err(
                        404,
                        "no learning curve: start with --metrics PATH (a log from train --metrics)",
                    )),
                };
            // Held while the log is read: requests that come meanwhile
            // wait for that answer rather than each reading it too.
            let mut cache = state.curve_cache.lock().unwrap_or_else(|e| e.into_inner());
            let stamp = log_stamp(log);
            if let (Some(now), Some((then, body))) = (&stamp, &*cache) {
                if now == then {
                    return Ok(Reply {
                        content_type: "application/json",
                        body: body.clone(),
                    });
                }
            }
            let records = metrics::read(log).map_err(|e| err(404, format!("{e:#}")))?;
            let reply = json_reply(&json!({
                "total_points": 0,
                "points": [],
                "epochs": records,
            }));
            *cache = stamp.map(|s| (s, reply.body.clone()));
            Ok(reply)
        }
    }
}

/// What tells one version of a log file from another: its file (device
/// and inode: a log replaced by a rename is another), length, modification
/// time and change time (nanoseconds; the change time also moves when a
/// tool sets the modification time back, as `cp -p` or `rsync -t` into the
/// file do). `None` where the system says none.
type LogStamp = (u64, u64, u64, std::time::SystemTime, (i64, i64));

fn log_stamp(path: &Path) -> Option<LogStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    let changed = (m.ctime(), m.ctime_nsec());
    Some((m.dev(), m.ino(), m.len(), m.modified().ok()?, changed))
}

/// `?since=N&epochs_since=M`: also the curve points from the N-th on and the
/// epoch records from the M-th on, so the live page polls one route.
fn status(state: &State, q: &[(String, String)]) -> Result<Reply, HttpError> {
    let since = number(q, "since")?;
    let epochs_since = number(q, "epochs_since")?;
    match &state.source {
        Source::Fixed { .. } => Ok(json_reply(&json!({ "live": false, "phase": "done" }))),
        Source::Live(live) => {
            let s = live.lock();
            let step = live.steps().max(s.step);
            // The epoch of the latest step (`s.epoch` is the latest curve
            // point's, up to a tenth of an epoch behind): after an epoch's
            // last step, that epoch until its validation is recorded.
            let (spe, epochs_done) = (s.steps_per_epoch, s.epochs_before + s.records.len());
            let epoch = match spe {
                _ if s.phase == crate::live::Phase::Stopped => epochs_done,
                0 => s.epoch,
                _ => {
                    let whole = (step / spe) as usize;
                    let validating = step.is_multiple_of(spe) && epochs_done < whole;
                    (whole + usize::from(!validating)).clamp(1, s.epochs.max(1))
                }
            };
            let new_points = since.map(|n| s.points.get(n..).unwrap_or(&[]).to_vec());
            let new_epochs = epochs_since.map(|n| s.records.get(n..).unwrap_or(&[]).to_vec());
            Ok(json_reply(&json!({
                "new_points": new_points,
                "new_epochs": new_epochs,
                "live": true,
                "phase": s.phase,
                "step": step,
                "steps_per_epoch": s.steps_per_epoch,
                "total_steps": s.total_steps,
                "epoch": epoch,
                "epochs": s.epochs,
                "epochs_done": epochs_done,
                "version": s.version,
                "points": s.points.len(),
                "test_accuracy": s.test_accuracy,
            })))
        }
    }
}

/// Why `path` cannot be read as a metrics log again and again: no regular
/// file there (a pipe, a device, a directory); `None` for a file, or for
/// nothing there at all (the read says so).
fn not_a_log_file(path: &Path) -> Option<&'static str> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Some("a directory, not a log"),
        Ok(m) if !m.is_file() => Some("a pipe or a device, not a file"),
        _ => None,
    }
}

/// `simplenn serve`: load the model (and the test set and metrics log when
/// there are any), listen, print the address, answer until killed.
pub fn run(args: &crate::cli::ServeArgs, out: &mut dyn std::io::Write) -> Result<()> {
    use std::io::Write as _;
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
            let dir = data::resolve_dir(Some(d))?;
            Mnist::open_test(&dir)?;
            Some(dir)
        }
        None => match data::resolve_dir(None) {
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
            state.test = Err(format!(
                "no test data: the test set in {} is set aside: {why}",
                dir.display()
            ));
        }
    }
    // A file from elsewhere that records no image shape (PyTorch's
    // save_file writes no simplenn.image) takes the shape of the test set it
    // fits, as `eval` does: a model of 4 × 9 images was shown as 6 × 6, its
    // tiles drawn so and its own test images refused by ?as_is=1.
    if let (None, Ok(test), Source::Fixed { params, .. }) =
        (state.image, &state.test, &state.source)
    {
        let (rows, cols) = test.side();
        if rows != cols && rows * cols == params.dims.d() {
            state.image = Some((rows, cols));
        }
    }
    // Scored before the page asks, so that a model scored on another data
    // set than its own (the usual places hold MNIST) is said to be, as
    // `eval` says it.
    if let (Ok(_), Some(dir)) = (&state.test, &state.test_dir) {
        if let Ok((_, e)) = state.evaluation() {
            state.guess_note = crate::eval::guess_note(&e.confusion, dir, "serve");
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
        // `let _` here and below: a standard error that cannot be written
        // costs the line, not the page.
        let _ = writeln!(std::io::stderr(), "{}", exposed_warning(&args.host));
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
        let _ = writeln!(std::io::stderr(), "simplenn: note: {note}");
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
    opts.live = Some(live.clone());
    let state = State::for_run(live, Some(config.data_dir.clone()))
        .with_image(Some(mnist.train.side()))
        .with_names(opts.class_names.clone());
    let server = start("127.0.0.1", port, Arc::new(state))?;
    writeln!(out, "serving the live page on {}", server.url())?;
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
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resumed after 2 of 5 epochs: the status counts them as done, while
    /// the records (what `epochs_since` indexes) start after them.
    #[test]
    fn a_resumed_runs_status_counts_the_checkpoints_epochs() {
        let p = Params::init(
            crate::model::Dims::new(4, &[3], 2),
            crate::model::Init::He,
            1,
        );
        let live = Arc::new(Live::new());
        live.start(&p, 12, 60, 5, 24, None);
        let state = State::for_run(live, None);
        let reply = status(&state, &[]).ok().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(
            (v["epochs_done"].as_u64(), v["epoch"].as_u64()),
            (Some(2), Some(3))
        );
    }

    #[test]
    fn queries() {
        let q = query("/api/digits?label=3&predicted=%35&x&n%61me=a+b&y=%zz%4");
        let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            pairs,
            vec![
                ("label", "3"),
                ("predicted", "5"),
                ("x", ""),
                ("name", "a b"),
                ("y", "%zz%4")
            ]
        );
        assert_eq!(number(&q, "predicted").unwrap(), Some(5));
        assert_eq!(number(&q, "label").unwrap(), Some(3));
        assert_eq!(number(&q, "page").unwrap(), None);
        assert_eq!(number(&q, "x").unwrap_err().status, 400);
        let twice = query("/api/digits?label=4&label=5");
        let e = number(&twice, "label").unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (400, "?label given more than once; give it once")
        );
        let huge = query("/api/digits?label=99999999999999999999");
        assert!(number(&huge, "label")
            .unwrap_err()
            .message
            .contains("not a whole number naming a class"));
    }

    #[test]
    fn escapes_of_unreserved_characters_in_a_path_are_decoded() {
        assert_eq!(unreserved_decoded("/api/%6dodel"), "/api/model");
        assert_eq!(unreserved_decoded("/page%2Ejs"), "/page.js");
        assert_eq!(unreserved_decoded("/api%2Fmodel"), "/api%2Fmodel");
        assert_eq!(unreserved_decoded("/a%20b%zz%4"), "/a%20b%zz%4");
        assert_eq!(unreserved_decoded("/é%41"), "/éA");
    }

    #[test]
    fn json_pixels_are_checked() {
        let bad =
            |body: &str| body_to_gray("application/json", body.as_bytes(), (28, 28)).unwrap_err();
        assert_eq!(bad("{").status, 400);
        assert!(bad(r#"{"width":2,"height":2,"pixels":[1,2,3]}"#)
            .message
            .contains("wrong size"));
        assert!(bad(r#"{"width":0,"height":0,"pixels":[]}"#)
            .message
            .contains("an empty image (0 × 0)"));
        assert_eq!(bad(r#"{"pixels":[1,2,3]}"#).status, 400);
        assert!(bad(r#"{"width":1,"height":1,"pixels":[300]}"#)
            .message
            .contains("0 to 255"));
        let g = body_to_gray("", br#"{"width":2,"height":1,"pixels":[0,255]}"#, (28, 28)).unwrap();
        assert_eq!((g.width, g.height), (2, 1));
        assert_eq!(
            body_to_gray("image/png", b"nope", (28, 28))
                .unwrap_err()
                .status,
            400
        );
    }

    /// JSON pixels are answered while every decoding turn is held (by
    /// large images, here by the test): they take none.
    #[test]
    fn json_pixels_need_no_decoding_turn() {
        let turns: Vec<Turn> = (0..DECODERS).map(|_| DECODING.take()).collect();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let state = State::for_model(bias_model([0.0, 1.0]), Path::new("m"), None, None);
            let body = br#"{"width": 2, "height": 2, "pixels": [0, 0, 0, 0]}"#;
            let r = predict_route(&state, "application/json", body, Prepare::AsIs);
            let _ = tx.send(r.map(|r| r.body));
        });
        // A hang guard, not a timing: without the change the answer waits
        // for a turn this test never gives back before it looks.
        let answer = rx.recv_timeout(std::time::Duration::from_secs(60));
        drop(turns);
        let body = answer.expect("answered without a turn").ok().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["digit"], 1, "{v}");
    }

    /// Turns come in the order they were asked for: four waiting uploads
    /// go before one asked after them, though a turn is free the instant
    /// it asks (a lock that lets the newest caller in can pass a waiting
    /// one for ever).
    #[test]
    fn turns_are_given_in_the_order_asked() {
        use std::time::{Duration, Instant};
        let (turns, order) = (&Turns::new(1), &std::sync::Mutex::new(Vec::new()));
        std::thread::scope(|s| {
            let first = turns.take();
            for i in 0..4 {
                s.spawn(move || {
                    let _turn = turns.take();
                    order.lock().unwrap().push(i);
                });
                // Its ticket taken (a hang guard, not a timing).
                let t0 = Instant::now();
                while turns.state.lock().unwrap().0 < 2 + i as u64 {
                    assert!(t0.elapsed() < Duration::from_secs(60), "thread {i}");
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            drop(first);
            let _last = turns.take();
            order.lock().unwrap().push(4);
        });
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4]);
    }

    /// However many uploads arrive at once, at most [`DECODERS`] images
    /// are decoded at a time.
    #[test]
    fn decoding_takes_turns() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (now, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..4 * DECODERS {
                s.spawn(|| {
                    let _turn = DECODING.take();
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    now.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        // Other tests' predictions may hold turns meanwhile: at most.
        let most = most.load(Ordering::SeqCst);
        assert!((1..=DECODERS).contains(&most), "{most} at once");
    }

    #[test]
    fn bracketed_ipv6_hosts_are_bare() {
        assert_eq!(bare_host("[::1]"), "::1");
        assert_eq!(bare_host("::1"), "::1");
        assert_eq!(bare_host("127.0.0.1"), "127.0.0.1");
        assert_eq!(bare_host("[::1"), "[::1");
    }

    #[test]
    fn loopback_hosts() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        for host in ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ip(host)), "{host}");
        }
        for host in ["0.0.0.0", "::", "192.168.1.2", "::ffff:192.168.1.2"] {
            assert!(!is_loopback(ip(host)), "{host}");
        }
    }

    /// A softmax regression on 2 × 2 inputs with zero weights: its bias
    /// alone picks the class, `bias` as given.
    fn bias_model(bias: [f32; 2]) -> Params {
        let mut p = Params::zeros(crate::model::Dims::new(4, &[], 2));
        p.data[8..10].copy_from_slice(&bias);
        p
    }

    /// Four 2 × 2 test images, every one labelled 1, written as the test set.
    fn four_ones(dir: &Path) {
        crate::idx::write_idx(&dir.join(crate::data::TEST_IMAGES), &[4, 2, 2], &[0; 16]).unwrap();
        crate::idx::write_idx(&dir.join(crate::data::TEST_LABELS), &[4], &[1; 4]).unwrap();
    }

    fn json(r: Result<Reply, HttpError>) -> serde_json::Value {
        serde_json::from_slice(&r.ok().unwrap().body).unwrap()
    }

    /// The live page follows the trainer: weights copied at a step, and the
    /// confusion matrix and digits scored with them, not with a cached older
    /// copy; a digit's probability is its softmax probability; a page of
    /// digits starts `page · per_page` in; `?since=N` skips N points.
    #[test]
    fn a_live_page_scores_the_newest_weights() {
        let t = tempfile::tempdir().unwrap();
        four_ones(t.path());
        let live = Arc::new(Live::new());
        // Ten steps an epoch: a copy (and a point) at every step.
        live.start(&bias_model([1.0, 0.0]), 10, 20, 2, 0, None);
        let state = State::for_run(live.clone(), Some(t.path().to_owned()));
        assert_eq!(state.params().ok().unwrap().1.data[8], 1.0);
        let c = json(confusion(&state));
        assert_eq!(c["matrix"], json!([[0, 0], [4, 0]]));
        // Every image read as 0 with probability e / (e + 1).
        let d = json(digits(&state, &query("?page=1&per_page=3")));
        assert_eq!(d["total"], 4);
        let items = d["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["index"], 3);
        let want = std::f32::consts::E / (std::f32::consts::E + 1.0);
        let got = items[0]["probability"].as_f64().unwrap() as f32;
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        let scored = c["version"].as_u64().unwrap();

        live.step(&bias_model([0.0, 1.0]), 1, 1, 1.0, 1, 4);
        live.step(&bias_model([0.0, 1.0]), 1, 2, 2.0, 2, 8);
        // The digits of the matrix the page shows: of the weights it was
        // scored with, though the run has moved on.
        let d = json(digits(
            &state,
            &query(&format!("?label=1&predicted=0&version={scored}")),
        ));
        assert_eq!(
            (d["total"].as_u64(), d["version"].as_u64()),
            (Some(4), Some(scored))
        );
        let (version, p) = state.params().ok().unwrap();
        assert_eq!((version, p.data[9]), (3, 1.0));
        let c = json(confusion(&state));
        assert_eq!(c["matrix"], json!([[0, 0], [0, 4]]));
        assert_eq!(c["correct"], 4);
        // Scored again since: the old matrix's digits are gone, and said so.
        let old = digits(&state, &query(&format!("?version={scored}")));
        assert_eq!(old.err().map(|e| e.status), Some(409));
        let curve = json(curve(&state, &query("?since=1")));
        assert_eq!(curve["total_points"], 2);
        let points = curve["points"].as_array().unwrap();
        assert_eq!(points.len(), 1);
        assert_eq!(points[0]["step"], 2);
    }

    /// Weight tiles: a positive weight red, a negative one blue.
    #[test]
    fn weight_tiles_are_red_positive_and_blue_negative() {
        let mut p = bias_model([0.0, 0.0]);
        // W_0ᵀ (4, 2): pixel i of unit j at i · 2 + j.
        p.data[0] = 0.5; // pixel 0 of unit 0
        p.data[2] = -0.5; // pixel 1 of unit 0
        let img = weights_image(&p).unwrap();
        // Unit 0's tile starts at (1, 1).
        assert_eq!(img.get_pixel(1, 1).0, [255, 0, 0]);
        assert_eq!(img.get_pixel(2, 1).0, [0, 0, 255]);
        // A zero weight is white.
        assert_eq!(img.get_pixel(1, 2).0, [255, 255, 255]);
    }

    /// A grid slot past the last unit is white to its edges; a tile's own
    /// edges stay dark.
    #[test]
    fn unused_tile_slots_are_blank() {
        // 3 units on 2 × 2 inputs: a 2 × 2 grid of 3 × 3 cells, 7 × 7 pixels.
        let p = Params::zeros(crate::model::Dims::new(4, &[3], 2));
        let img = weights_image(&p).unwrap();
        assert_eq!(img.dimensions(), (7, 7));
        for (x, y) in [(4, 4), (5, 5), (6, 6), (4, 6), (6, 4)] {
            assert_eq!(img.get_pixel(x, y).0, [255, 255, 255], "({x}, {y})");
        }
        // The third tile's right edge and the second's bottom edge.
        for (x, y) in [(3, 5), (5, 3), (0, 0)] {
            assert_eq!(img.get_pixel(x, y).0, [40, 40, 40], "({x}, {y})");
        }
    }

    /// A log that stays as it was is answered from the kept reply, not read
    /// again (a marker put in the cache comes back); any change to it (here
    /// a record appended) reads it again.
    #[test]
    fn an_unchanged_log_is_answered_from_the_cache() {
        let t = tempfile::tempdir().unwrap();
        let log = t.path().join("m.jsonl");
        let line = |epoch: usize| {
            let r = crate::metrics::EpochRecord {
                epoch,
                train_loss: 0.5,
                train_accuracy: 0.9,
                val_loss: None,
                val_accuracy: None,
                test_loss: None,
                test_accuracy: None,
                lr: 0.1,
                seconds: 1.0,
                wall_seconds: None,
                samples_per_sec: 100.0,
            };
            crate::metrics::to_jsonl(&[r])
        };
        std::fs::write(&log, line(1)).unwrap();
        let path = t.path().join("m.safetensors");
        let state = State::for_model(bias_model([0.0, 0.0]), &path, None, Some(log.clone()));
        let epochs = |v: serde_json::Value| v["epochs"].as_array().map(Vec::len);
        assert_eq!(epochs(json(curve(&state, &[]))), Some(1));
        let marker = br#"{"epochs": [], "kept": true}"#.to_vec();
        state.curve_cache.lock().unwrap().as_mut().unwrap().1 = marker.clone();
        assert_eq!(curve(&state, &[]).ok().unwrap().body, marker);
        let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        std::io::Write::write_all(&mut file, line(2).as_bytes()).unwrap();
        drop(file);
        assert_eq!(epochs(json(curve(&state, &[]))), Some(2));
    }
}
