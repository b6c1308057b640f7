//! The routes of `serve`'s JSON API, one function each, behind
//! [`route`]; [`super::http`] has checked the request before it gets here.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::classes::ClassNames;
use crate::metrics;
use crate::model::Params;
use crate::predict::{self, Gray};

use super::http::{
    absolute_form, body, err, json_reply, not_allowed, number, query, unreserved_decoded,
    HttpError, Reply,
};
use super::{
    Source, State, HANDLERS, MAX_IMAGE_SIDE, MAX_PAGE_PIXELS, MAX_PER_PAGE, MAX_TILES,
    MAX_TILE_SIDE, PAGE_CSS, PAGE_HTML, PAGE_JS,
};

pub(super) fn route(state: &State, req: &mut tiny_http::Request) -> Result<Reply, HttpError> {
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
    // CONNECT asks for a tunnel, which a server of pages does not make; its
    // tunnelled bytes may follow at once, so the connection ends here.
    if *req.method() == tiny_http::Method::Connect {
        return Err(HttpError {
            close: true,
            ..err(
                501,
                "method CONNECT: this server is no proxy; use GET (POST for /api/predict)",
            )
        });
    }
    // `*` (RFC 9112 3.2.4) names the server itself, and only for OPTIONS,
    // which no route here answers: 405 with the methods that are.
    if url == "*" {
        return Err(if *req.method() == tiny_http::Method::Options {
            not_allowed(
                "OPTIONS: this server answers GET and HEAD (POST for /api/predict)",
                "GET, HEAD, POST",
            )
        } else {
            err(
                400,
                "the request target * is for OPTIONS only; ask for a page, such as /",
            )
        });
    }
    // A target that is no path (empty, `?x`) names no page: malformed, as
    // RFC 9112 3.2 has it, not a 404.
    if !url.starts_with('/') {
        return Err(HttpError {
            close: true,
            ..err(
                400,
                "the request target is no path; ask for a page, such as /",
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
    // A route's parameters, and no others: a misspelt one (`?as-is=1`,
    // `?lable=4`) would otherwise be dropped, and the answer be another's.
    // The pages take any (a cache-busting `?v=`).
    let takes = |keys: &[&str]| takes_only(path, &q, keys);
    match (path, get, method == Post) {
        ("/" | "/index.html", true, _) => page("text/html; charset=utf-8", PAGE_HTML),
        ("/page.js", true, _) => page("text/javascript; charset=utf-8", PAGE_JS),
        ("/page.css", true, _) => page("text/css; charset=utf-8", PAGE_CSS),
        ("/api/model", true, _) => takes(&[]).and_then(|()| model_info(state)),
        ("/api/predict", _, true) => {
            takes(&["as_is"])?;
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
        ("/api/confusion", true, _) => takes(&[]).and_then(|()| confusion(state)),
        ("/api/digits", true, _) => takes(&["label", "predicted", "page", "per_page", "version"])
            .and_then(|()| digits(state, &q)),
        // `v`: the page's cache-buster, any value.
        ("/api/weights.png", true, _) => takes(&["v"]).and_then(|()| weights_png(state)),
        ("/api/curve", true, _) => takes(&["since"]).and_then(|()| curve(state, &q)),
        ("/api/status", true, _) => {
            takes(&["since", "epochs_since"]).and_then(|()| status(state, &q))
        }
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
        "test_note": state.test.as_ref().err().map(|n| crate::show::controls_written(n)),
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
/// character), not an image file. A PNG or JPEG signature wins over the
/// type: such a body sent as `application/json` (a client's default) is
/// the image it plainly is, not malformed JSON.
fn is_json(content_type: &str, bytes: &[u8]) -> bool {
    let image = bytes.starts_with(b"\x89PNG\r\n\x1a\n") || bytes.starts_with(&[0xff, 0xd8, 0xff]);
    !image
        && (content_type.starts_with("application/json")
            || bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'))
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
    // Per side: MAX_IMAGE_SIDE, or the model's own images' where longer (a
    // model of 1 × 5000 images takes them as `predict --as-is` does). The
    // body's 64 KiB and the decoder's 64 MiB bound what that lets in.
    let side = MAX_IMAGE_SIDE.max(u32::try_from(rows.max(cols)).unwrap_or(u32::MAX));
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
        if w > side as usize || h > side as usize {
            return Err(err(
                400,
                format!("a {w} × {h} image: send one of at most {side} pixels a side"),
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
            turned: false,
        });
    }
    if bytes.is_empty() {
        return Err(err(
            400,
            "empty body; POST a PNG or JPEG image, or JSON pixels",
        ));
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(side);
    limits.max_image_height = Some(side);
    limits.max_alloc = Some(64 << 20);
    let img = predict::decode_image(bytes, &limits).map_err(|e| {
        err(
            400,
            format!(
                "cannot read the image ({}); POST a PNG or JPEG of at most {side} pixels a side, or JSON pixels",
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

/// 400 for the first query parameter of `q` not among `keys`, the ones
/// the route `path` reads, naming them.
fn takes_only(path: &str, q: &[(String, String)], keys: &[&str]) -> Result<(), HttpError> {
    let Some((k, _)) = q.iter().find(|(k, _)| !keys.contains(&k.as_str())) else {
        return Ok(());
    };
    let k: String = crate::show::one_line(k).chars().take(40).collect();
    let known = match keys {
        [] => "it takes none".to_string(),
        _ => format!(
            "it takes {}",
            crate::show::and_list(&keys.iter().map(|k| format!("?{k}")).collect::<Vec<_>>())
        ),
    };
    Err(err(
        400,
        format!("?{k}: {path} has no such parameter; {known}"),
    ))
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
        "note": state.guess_note.as_deref().map(crate::show::controls_written),
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
    // A page holds at most MAX_PAGE_PIXELS pixels (and always one image):
    // 24 test images of 512 × 512 pixels would be 6.3 million numbers.
    let (rows, cols) = test.side();
    let per_page = per_page.min((MAX_PAGE_PIXELS / (rows * cols).max(1)).max(1));
    let pages = all.len().div_ceil(per_page);
    // Page 0 of an empty list is the empty list; past the last page is a
    // mistake the answer should not hide as an empty page.
    if page >= pages.max(1) {
        let list = crate::show::count(all.len(), "image");
        let why = match pages {
            0 => {
                "this list is empty (no pages): ask for page 0, which answers it empty".to_string()
            }
            1 => format!("this list of {list} has one page: 0"),
            n => format!("this list of {list} has {n} pages: 0 to {}", n - 1),
        };
        return Err(err(400, format!("?page={page}: {why}")));
    }
    // Serialized straight from the mapped test file: a `json!` value
    // held some 50 bytes a pixel (four pages of 42 images of 512 × 512
    // took a server's peak from 791 MB to 3.07 GB).
    // Fields in alphabetical order, as every answer but /api/predict's
    // has its keys.
    #[derive(Serialize)]
    struct Item<'a> {
        index: usize,
        label: u8,
        pixels: &'a [u8],
        predicted: u8,
        probability: f32,
    }
    #[derive(Serialize)]
    struct Page<'a> {
        cols: usize,
        items: Vec<Item<'a>>,
        page: usize,
        pages: usize,
        per_page: usize,
        rows: usize,
        total: usize,
        version: u64,
    }
    let items = all
        .iter()
        .skip(page.saturating_mul(per_page))
        .take(per_page)
        .map(|&i| Item {
            index: i,
            label: test.label(i),
            predicted: e.predicted[i],
            probability: e.probability[i],
            pixels: test.image(i),
        })
        .collect();
    Ok(json_reply(&Page {
        version,
        total: all.len(),
        page,
        per_page,
        pages,
        rows,
        cols,
        items,
    }))
}

/// The first layer's weights, one tile per unit (up to [`MAX_TILES`]):
/// red positive, blue negative, each tile scaled by its own largest weight.
/// Inputs of more than [`MAX_TILE_SIDE`] pixels a side are shown shrunk,
/// each tile pixel the mean of a block of `f × f` weights (`f` the
/// smallest factor that fits): 256 tiles of 512 × 512 were a 202 MB PNG.
pub fn weights_image(params: &Params) -> Option<image::RgbImage> {
    let (side, n) = match tiles(params) {
        (Some(side), n) if n > 0 => (side, n),
        _ => return None,
    };
    let (_, h) = params.dims.layer(0);
    let (w, _) = params.layer_slices(0); // W_0ᵀ (D, n_1)
    let f = side.div_ceil(MAX_TILE_SIDE);
    let shown = side.div_ceil(f); // the tiles' side
    let cols = (n as f64).sqrt().ceil() as usize;
    let rows = n.div_ceil(cols);
    let cell = shown + 1;
    let mut img = image::RgbImage::from_pixel(
        (cols * cell + 1) as u32,
        (rows * cell + 1) as u32,
        image::Rgb([40, 40, 40]),
    );
    // Unit j's tile: its top left pixel.
    let origin = |j: usize| (1 + (j % cols) * cell, 1 + (j / cols) * cell);
    // One tile's values, `shown²`, reused (at f = 1 the weights
    // themselves, as before shrinking existed).
    let mut tile = vec![0.0f32; shown * shown];
    for j in 0..n {
        let weight = |i: usize| w[i * h + j];
        for (t, v) in tile.iter_mut().enumerate() {
            let (ty, tx) = (t / shown, t % shown);
            let (ys, xs) = (
                ty * f..((ty + 1) * f).min(side),
                tx * f..((tx + 1) * f).min(side),
            );
            let count = (ys.len() * xs.len()) as f32;
            let sum: f32 = ys
                .flat_map(|y| xs.clone().map(move |x| y * side + x))
                .map(weight)
                .sum();
            *v = sum / count;
        }
        let max = tile.iter().map(|v| v.abs()).fold(1e-12, f32::max);
        let (ox, oy) = origin(j);
        for (i, &v) in tile.iter().enumerate() {
            let t = (v / max).clamp(-1.0, 1.0);
            let fade = (255.0 * (1.0 - t.abs())) as u8;
            let rgb = if t >= 0.0 {
                [255, fade, fade]
            } else {
                [fade, fade, 255]
            };
            img.put_pixel(
                (ox + i % shown) as u32,
                (oy + i / shown) as u32,
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
pub(super) type LogStamp = (u64, u64, u64, std::time::SystemTime, (i64, i64));

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
pub(super) fn not_a_log_file(path: &Path) -> Option<&'static str> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Some("a directory, not a log"),
        Ok(m) if !m.is_file() => Some("a pipe or a device, not a file"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::live::Live;

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

    /// A page of digits holds at most MAX_PAGE_PIXELS pixels, and always
    /// one image: of 1024 × 1024 images, one a page whatever was asked.
    #[test]
    fn a_page_of_large_digits_holds_fewer_of_them() {
        let t = tempfile::tempdir().unwrap();
        let side = 1024;
        let n = 3;
        let pixels = vec![0u8; n * side * side];
        let images = t.path().join(crate::data::TEST_IMAGES);
        crate::idx::write_idx(&images, &[n as u32, side as u32, side as u32], &pixels).unwrap();
        crate::idx::write_idx(&t.path().join(crate::data::TEST_LABELS), &[3], &[1; 3]).unwrap();
        let mut p = Params::zeros(crate::model::Dims::new(side * side, &[], 2));
        let k = p.data.len();
        p.data[k - 2] = 1.0; // every image read as 0
        let state = State::for_model(p, Path::new("m"), Some(t.path().to_owned()), None);
        let r = digits(&state, &query("?per_page=24")).ok().unwrap();
        // Keys in alphabetical order, as every answer but /api/predict's.
        let text = String::from_utf8_lossy(&r.body[..60]).into_owned();
        assert!(
            text.starts_with(r#"{"cols":1024,"items":[{"index":0,"label":1,"pixels":[0,"#),
            "{text}"
        );
        let d = json(digits(&state, &query("?per_page=24")));
        assert_eq!(
            (d["per_page"].as_u64(), d["pages"].as_u64()),
            (Some(1), Some(3))
        );
        assert_eq!(d["items"].as_array().unwrap().len(), 1);
        assert_eq!(
            d["items"][0]["pixels"].as_array().unwrap().len(),
            side * side
        );
    }

    /// JSON pixels and decoded images are capped at MAX_IMAGE_SIDE a side,
    /// or the model's own images' side where longer.
    #[test]
    fn the_side_cap_follows_the_models_images() {
        let body = |w: usize, h: usize| {
            let zeros = vec!["0"; w * h].join(",");
            format!(r#"{{"width":{w},"height":{h},"pixels":[{zeros}]}}"#)
        };
        // At the cap an image is taken, one past it refused, on either axis.
        for (w, h) in [(4096, 1), (1, 4096)] {
            let g = body_to_gray("", body(w, h).as_bytes(), (28, 28)).ok();
            assert_eq!(g.map(|g| (g.width, g.height)), Some((w, h)));
        }
        for (w, h) in [(4097, 1), (1, 4097)] {
            let e = body_to_gray("", body(w, h).as_bytes(), (28, 28)).unwrap_err();
            assert!(
                e.message.contains("at most 4096 pixels a side"),
                "{}",
                e.message
            );
        }
        let g = body_to_gray("", body(5000, 1).as_bytes(), (1, 5000))
            .ok()
            .unwrap();
        assert_eq!((g.width, g.height), (5000, 1));
    }

    /// Inputs of more than MAX_TILE_SIDE pixels a side are tiled shrunk,
    /// each tile pixel the mean of its block of weights.
    #[test]
    fn large_inputs_are_tiled_shrunk() {
        let side = 512; // f = 8: tiles of 64 × 64
        let mut p = Params::zeros(crate::model::Dims::new(side * side, &[2], 2));
        // W_0ᵀ (D, 2): unit 0's weights of the top left 8 × 8 block
        // positive, one pixel of the next block negative.
        for y in 0..8 {
            for x in 0..8 {
                p.data[(y * side + x) * 2] = 1.0;
            }
        }
        p.data[8 * 2] = -4.0; // pixel (0, 8): the next block's mean −1/16
        let img = weights_image(&p).unwrap();
        // Two tiles of 64 + 1 side by side.
        assert_eq!(img.dimensions(), (2 * 65 + 1, 65 + 1));
        assert_eq!(img.get_pixel(1, 1).0, [255, 0, 0]);
        // −1/16 of the largest mean, 1: a faint blue.
        assert_eq!(img.get_pixel(2, 1).0, [239, 239, 255]);
        assert_eq!(img.get_pixel(1, 2).0, [255, 255, 255]);
    }

    /// A block cut short by the input's edge is the mean of the weights it
    /// has: 130 × 130 inputs are shown in tiles of 44 × 44 (f = 3, the last
    /// row and column of blocks one weight deep), and equal weights give a
    /// tile of one colour to its edges.
    #[test]
    fn edge_blocks_are_the_mean_of_their_weights() {
        let side = 130;
        let mut p = Params::zeros(crate::model::Dims::new(side * side, &[1], 2));
        p.data[..side * side].fill(0.5); // W_0ᵀ (D, 1)
        let img = weights_image(&p).unwrap();
        assert_eq!(img.dimensions(), (44 + 2, 44 + 2));
        for (x, y) in [(1, 1), (44, 1), (1, 44), (44, 44)] {
            assert_eq!(img.get_pixel(x, y).0, [255, 0, 0], "({x}, {y})");
        }
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
