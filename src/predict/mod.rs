//! Reading a digit from a photo or a drawing: decode (PNG or JPEG), turn it
//! into an MNIST-style input of the model's size, and run the network on it.
//! `decode.rs` reads the file, by its content, into a grayscale image;
//! `prepare.rs` makes that an input as MNIST's digits were made; this file
//! holds what both share (the image, the errors) and runs the network.

use std::path::Path;

use serde::Serialize;

use crate::classes::ClassNames;
use crate::model::{forward_eval, Params, Workspace};

mod decode;
mod prepare;
#[cfg(test)]
mod tests;

pub use decode::{decode_image, load_image, to_gray, Fix, Undecodable, STDIN};
pub use prepare::{like_a_data_sets, to_input, to_input_or_as_is_hint, to_mnist};

/// Side of MNIST's images.
pub const SIDE: usize = 28;
/// Side of the box MNIST's digits are scaled into.
pub const BOX: usize = 20;
/// Least contrast (of 255) between ink and background for an image to hold a digit.
pub const MIN_CONTRAST: f32 = 40.0;
/// Share of an image's pixels that must stand [`MIN_CONTRAST`] out on the
/// unusual side of the paper's shade (lighter than light paper, darker than
/// dark) to be read as ink there: a stroke covers that much, a speck of
/// dust or a glint of glare does not.
pub const MIN_INK_SHARE: f32 = 0.005;
/// Fewest pixels that must stand [`MIN_CONTRAST`] out for an image to hold
/// a digit: a handful of dust specks on a page are not strokes (a 28 × 28
/// MNIST digit's are dozens). Smaller images need a twentieth of
/// their pixels at most.
pub const MIN_INK_PIXELS: usize = 10;
/// Ink below this fraction of the darkest stroke counts as background (paper
/// texture, JPEG noise).
pub const NOISE_FLOOR: f32 = 0.1;
/// Or below this many robust standard deviations of the border's shades
/// (a photo's sensor noise), but never above half the darkest stroke.
pub const NOISE_SPREADS: f32 = 3.0;
/// Images at least this many pixels on both sides may be photos, whose
/// background is noisy or unevenly lit (see `border_stats`).
pub const PHOTO_SIDE: usize = 64;

/// Most pixels `predict` decodes: a 48-megapixel phone photo fits; past
/// this, decoding and the grayscale copy (4 bytes a pixel) would take
/// gigabytes, so a bigger image is refused before it is decoded.
pub const MAX_PIXELS: u64 = 64 << 20;

/// Why an image gave no prediction.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: cannot read the image{}", fix.after(reason))]
    Unreadable {
        path: String,
        reason: String,
        fix: Fix,
    },
    #[error(
        "{path}: the image is {width} × {height} pixels, more than the {:.1} megapixels predict reads; scale it down (a digit needs only a few hundred pixels a side)",
        MAX_PIXELS as f64 / 1e6
    )]
    TooLarge {
        path: String,
        width: u32,
        height: u32,
    },
    #[error(
        "{path}: no digit found: ink and background differ by at most {contrast:.0} of 255, less than the {} a digit needs (the image is blank or too faint); pass an image with one dark-on-light or light-on-dark digit",
        MIN_CONTRAST
    )]
    Blank { path: String, contrast: f32 },
    /// Some pixels stand out, too few to be strokes.
    #[error(
        "{path}: no digit found: only {pixels} pixel{} stand{} {} or more shades out from the background, too few for a digit's strokes (specks or glints), and the rest at most {contrast:.0}; pass an image with one dark-on-light or light-on-dark digit",
        if *pixels == 1 { "" } else { "s" },
        if *pixels == 1 { "s" } else { "" },
        MIN_CONTRAST
    )]
    Specks {
        path: String,
        pixels: usize,
        contrast: f32,
    },
    /// Decoding and preparing it would take more memory than is left.
    #[error(
        "{path}: reading this {width} × {height} image takes about {} MB of memory, more than the {} MB available{note}; scale it down (a digit needs only a few hundred pixels a side){fix}",
        need.div_ceil(1_000_000),
        available / 1_000_000
    )]
    NoMemory {
        path: String,
        width: u32,
        height: u32,
        need: u64,
        available: u64,
        note: &'static str,
        /// How to have more memory: free it, or raise the limit.
        fix: &'static str,
    },
    #[error("{path}: {reason}")]
    Model { path: String, reason: String },
    /// No digit found by the preparation in an image already of the
    /// model's input size: most likely one saved from a data set, whose
    /// pixels `--as-is` reads unchanged (the preparation is for photos and
    /// drawings of digits).
    #[error(
        "{inner}; the image is already {side} × {side}, the model's input size: if it was saved from a data set, --as-is reads its pixels unchanged"
    )]
    NotPreparedAtInputSize { inner: Box<ImageError>, side: usize },
    /// `--as-is` with an image of another size than the model's input.
    #[error(
        "{path}: --as-is takes the image's pixels as the model's {side} × {side} inputs, but the image is {width} wide and {height} high{}; leave out --as-is to have it prepared{}",
        turned_note(*turned, *width, *height),
        layout_hint(*width, *height, *side)
    )]
    NotInputSize {
        path: String,
        width: usize,
        height: usize,
        side: usize,
        turned: bool,
    },
    /// `--as-is` with an image of another size than a model of images that
    /// are not square takes (which no preparation could make).
    #[error(
        "{path}: --as-is takes the image's pixels as the model's inputs, images {cols} {} wide and {rows} high as it was trained on, but the image is {width} wide and {height} high{}; give one of that size",
        pixels_word(*cols),
        turned_note(*turned, *width, *height)
    )]
    NotInputShape {
        path: String,
        width: usize,
        height: usize,
        rows: usize,
        cols: usize,
        turned: bool,
    },
}

/// Where an image was turned upright as it was read, its size in the file
/// too: the size an error names is not the one the user sees there.
fn turned_note(turned: bool, width: usize, height: usize) -> String {
    match turned {
        true => format!(
            " once turned upright as its EXIF orientation says (the file stores it {height} wide and {width} high)"
        ),
        false => String::new(),
    }
}

/// Where an image has as many pixels as a square model's input but another
/// shape: the model may be of such images, saved by a program that does not
/// record its shape (PyTorch's `save_file`), which is then taken for square.
fn layout_hint(width: usize, height: usize, side: usize) -> String {
    match width * height == side * side {
        true => format!(
            ", or, if the model was trained on images {width} wide and {height} high, record that in its file as the metadata simplenn.image = \"{height}x{width}\" (PyTorch: save_file(state_dict, path, metadata={{\"simplenn.image\": \"{height}x{width}\"}}))"
        ),
        false => String::new(),
    }
}

/// The side of a model's square input, or why it has none.
fn input_side(params: &Params) -> Result<usize, String> {
    params.dims.square_side().ok_or_else(|| {
        format!(
            "the model takes {} inputs, which is not a square image (side × side), and its file does not say the images' shape; predict prepares square images only: use eval on IDX data, or record the shape in the file as the metadata simplenn.image = \"ROWSxCOLS\" (as simplenn saves it) and pass images of that shape with --as-is",
            params.dims.d()
        )
    })
}

/// The shape `(rows, cols)` of the images a model takes: those it was
/// trained on where its file records them (`image`: images that were not
/// square), else its square input's; or why it has none.
pub fn input_shape(
    params: &Params,
    image: Option<(usize, usize)>,
) -> Result<(usize, usize), String> {
    match image.filter(|(rows, cols)| rows * cols == params.dims.d()) {
        Some(shape) => Ok(shape),
        None => input_side(params).map(|side| (side, side)),
    }
}

/// "pixel" or "pixels", for `n` of them.
fn pixels_word(n: usize) -> &'static str {
    match n {
        1 => "pixel",
        _ => "pixels",
    }
}

/// Why a model trained on `rows × cols` images cannot take a square one
/// (`None` where they were square, or the file does not say).
pub fn non_square(image: Option<(usize, usize)>) -> Option<String> {
    image.filter(|(rows, cols)| rows != cols).map(|(rows, cols)| {
        format!(
            "the model was trained on {rows} × {cols} images, and only square images can be prepared for it; give an image {cols} {} wide and {rows} high with --as-is, or use eval on IDX data",
            pixels_word(cols)
        )
    })
}

/// A grayscale image, luminance in `[0, 255]`, row-major.
#[derive(Clone, Debug)]
pub struct Gray {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<f32>,
    /// Whether its file stores it a quarter turn from this (an EXIF
    /// orientation, applied as it was read): `height` wide and `width` high.
    pub turned: bool,
}

/// The `K` logits (the last layer's outputs) for one input `x (D)`: the
/// evaluation forward pass over one row.
///
/// # Panics
/// Where `x` is not `D` long (the model's `params.dims.d()`), or
/// `params` is not whole ([`Params::assert_whole`]).
pub fn logits(params: &Params, x: &[f32]) -> Vec<f32> {
    params.assert_whole();
    let dims = &params.dims;
    assert_eq!(x.len(), dims.d(), "one input row");
    let mut ws = Workspace::for_eval(dims, 1);
    ws.x.copy_from_slice(x);
    forward_eval(params, &mut ws, 1);
    let b = params.linear(dims.layers() - 1).b;
    ws.act[dims.layers() - 1]
        .iter()
        .zip(b)
        .map(|(z, b)| z + b)
        .collect()
}

/// Softmax probabilities of the `K` classes for one input `x (D)`.
pub fn probabilities(params: &Params, x: &[f32]) -> Vec<f32> {
    softmax(&logits(params, x))
}

fn softmax(z: &[f32]) -> Vec<f32> {
    let max = z.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = z.iter().map(|v| (v - max).exp()).collect();
    let sum: f32 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
}

/// One image's answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    pub file: String,
    /// The likeliest class (a digit for MNIST's models).
    pub digit: usize,
    /// Its name, where the model or `--class-names` gives names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub probability: f32,
    /// The three likeliest digits, likeliest first.
    pub top3: Vec<Guess>,
    /// The image was exactly the model's side × side, on a dark border
    /// (not in the JSON): most likely saved from a data set, for which
    /// `--as-is` is meant ([`like_a_data_sets`]).
    #[serde(skip)]
    pub input_size: bool,
}

/// One class and its probability (the top few make a prediction's list).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Guess {
    pub digit: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub probability: f32,
}

/// Predict the class of an already preprocessed input `x (D)`, pixels in
/// `[0, 1]` ([`crate::data::to_unit`] for raw bytes); `file` only names
/// it in the answer.
///
/// # Panics
/// Where `x` is not `D` long, or `params` is not whole, as [`logits`].
pub fn predict_input(params: &Params, x: &[f32], file: &str) -> Prediction {
    let z = logits(params, x);
    let probs = softmax(&z);
    let mut order: Vec<usize> = (0..probs.len()).collect();
    // By logit, not probability: classes far behind the first all have
    // probability 0 in f32, yet their order is still the model's. Stable:
    // true ties keep the lower class first.
    order.sort_by(|&a, &b| z[b].total_cmp(&z[a]));
    let top3: Vec<Guess> = order[..3.min(order.len())]
        .iter()
        .map(|&d| Guess {
            digit: d,
            name: None,
            probability: probs[d],
        })
        .collect();
    Prediction {
        file: file.to_string(),
        digit: top3[0].digit,
        name: None,
        probability: top3[0].probability,
        top3,
        input_size: false,
    }
}

/// A `side × side` grayscale image taken as inputs unchanged (`--as-is`):
/// each shade times 1/255, as the trainer reads an IDX image's bytes, so
/// that a digit saved from the data set scores as `eval` scores it.
/// Preparing it again would crop, rescale and recentre what is already
/// prepared (and on images that are not digits, change what they show).
///
/// `shape` is the model's `(rows, cols)` ([`input_shape`]): an image `cols`
/// pixels wide and `rows` high, as an IDX file's rows and columns.
pub fn as_is_input(g: &Gray, shape: (usize, usize), what: &str) -> Result<Vec<f32>, ImageError> {
    let (rows, cols) = shape;
    if (g.width, g.height) != (cols, rows) {
        let (path, width, height, turned) = (what.to_string(), g.width, g.height, g.turned);
        return Err(match rows == cols {
            true => ImageError::NotInputSize {
                path,
                width,
                height,
                side: rows,
                turned,
            },
            false => ImageError::NotInputShape {
                path,
                width,
                height,
                rows,
                cols,
                turned,
            },
        });
    }
    // The shades are whole numbers for 8-bit images; the same product as
    // `data::to_unit`, so the same bits.
    Ok(g.pixels.iter().map(|&p| p * (1.0 / 255.0)).collect())
}

/// Load, preprocess (or, `as_is`, take unchanged: [`as_is_input`]) and
/// predict one image file, for a model trained on `image`-shaped images
/// where its file says ([`input_shape`]; only `as_is` takes images that
/// are not square).
pub fn predict_file(
    params: &Params,
    image: Option<(usize, usize)>,
    path: &Path,
    as_is: bool,
) -> Result<Prediction, ImageError> {
    let name = path.display().to_string();
    let model = |reason| ImageError::Model {
        path: name.clone(),
        reason,
    };
    let (rows, cols) = input_shape(params, image).map_err(model)?;
    if let (false, Some(why)) = (as_is, non_square(Some((rows, cols)))) {
        return Err(model(why));
    }
    let g = load_image(path)?;
    let x = match as_is {
        true => as_is_input(&g, (rows, cols), &name)?,
        false => to_input_or_as_is_hint(&g, rows, &name)?,
    };
    Ok(Prediction {
        input_size: like_a_data_sets(&g, (rows, cols)),
        ..predict_input(params, &x, &name)
    })
}

impl Prediction {
    /// The same answer with each class's name beside its number.
    pub fn with_names(mut self, names: Option<&ClassNames>) -> Self {
        if let Some(n) = names {
            self.name = n.name(self.digit).map(str::to_string);
            for g in &mut self.top3 {
                g.name = n.name(g.digit).map(str::to_string);
            }
        }
        self
    }

    /// `file: 7  (7 98.1%, 3 1.2%, 9 0.3%)` (a share that would round to
    /// 100.0 or 0.0 without being 1 or 0 is `>99.9`, `<0.1`:
    /// [`crate::show::probability`]); with names,
    /// `file: 7 Sneaker  (7 Sneaker 98.1%, 5 Sandal 1.2%, 9 Ankle boot 0.3%)`.
    pub fn line(&self) -> String {
        let class = |c: usize, n: &Option<String>| match n {
            Some(n) => format!("{c} {n}"),
            None => c.to_string(),
        };
        let top: Vec<String> = self
            .top3
            .iter()
            .map(|g| {
                let p = crate::show::probability(g.probability);
                format!("{} {p}%", class(g.digit, &g.name))
            })
            .collect();
        let file = crate::show::one_line(&self.file);
        format!(
            "{file}: {}  ({})",
            class(self.digit, &self.name),
            top.join(", ")
        )
    }
}
