//! Reading a digit from a photo or a drawing: decode (PNG or JPEG), turn it
//! into an MNIST-style 28 × 28 input, and run the network on it.
//!
//! The preprocessing follows how MNIST was made: grayscale; invert when the
//! background is light (MNIST is light ink on black); subtract the
//! background and scale the ink to `[0, 1]`; crop to the ink's bounding
//! box; scale the longer side to 20 px keeping the aspect ratio (with an
//! antialiasing filter); paste into a 28 × 28 field so that the ink's centre
//! of mass lands on pixel (14, 14), where MNIST's digits have theirs.

use std::path::Path;

use image::imageops::FilterType;
use image::{DynamicImage, ImageBuffer, Luma};
use serde::Serialize;

use crate::data::{CLASSES, PIXELS};
use crate::model::Params;

/// Side of the network's input image.
pub const SIDE: usize = 28;
/// Side of the box the digit is scaled into (MNIST: 20).
pub const BOX: usize = 20;
/// Least contrast (of 255) between ink and background for an image to hold a digit.
pub const MIN_CONTRAST: f32 = 40.0;
/// Ink below this fraction of the darkest stroke counts as background (paper
/// texture, JPEG noise).
pub const NOISE_FLOOR: f32 = 0.1;

/// Why an image gave no prediction.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: cannot read the image ({reason}); pass a PNG or JPEG file")]
    Unreadable { path: String, reason: String },
    #[error(
        "{path}: no digit found (the image is blank: ink and background differ by {contrast:.0} of 255); pass an image with one dark-on-light or light-on-dark digit"
    )]
    Blank { path: String, contrast: f32 },
}

/// A grayscale image, luminance in `[0, 255]`, row-major.
#[derive(Clone, Debug)]
pub struct Gray {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<f32>,
}

/// Decode a PNG or JPEG file (by content, not by name) to grayscale.
/// Transparent pixels are laid over the colour opposite to the ink, so a
/// digit drawn on a transparent canvas reads as on paper.
pub fn load_image(path: &Path) -> Result<Gray, ImageError> {
    // Decoder messages can span lines; an error stays one line.
    let unreadable = |reason: String| ImageError::Unreadable {
        path: path.display().to_string(),
        reason: reason.split_whitespace().collect::<Vec<_>>().join(" "),
    };
    let img = image::ImageReader::open(path)
        .map_err(|e| unreadable(e.to_string()))?
        .with_guessed_format()
        .map_err(|e| unreadable(e.to_string()))?
        .decode()
        .map_err(|e| unreadable(e.to_string()))?;
    Ok(to_gray(&img))
}

/// Grayscale of a decoded image (see [`load_image`]).
pub fn to_gray(img: &DynamicImage) -> Gray {
    let la = img.to_luma_alpha8();
    let (w, h) = (la.width() as usize, la.height() as usize);
    let opaque: Vec<f32> = la
        .pixels()
        .filter(|p| p.0[1] >= 128)
        .map(|p| p.0[0] as f32)
        .collect();
    // Lay transparency over the opposite of the opaque pixels' mean shade.
    let under = if opaque.is_empty() || opaque.iter().sum::<f32>() / (opaque.len() as f32) < 128.0 {
        255.0
    } else {
        0.0
    };
    let pixels = la
        .pixels()
        .map(|p| {
            let a = p.0[1] as f32 / 255.0;
            a * p.0[0] as f32 + (1.0 - a) * under
        })
        .collect();
    Gray {
        width: w,
        height: h,
        pixels,
    }
}

/// The median of the outermost ring of pixels: the background's shade.
fn border_median(g: &Gray) -> f32 {
    let (w, h) = (g.width, g.height);
    let mut ring: Vec<f32> = (0..w)
        .flat_map(|x| [g.pixels[x], g.pixels[(h - 1) * w + x]])
        .chain((0..h).flat_map(|y| [g.pixels[y * w], g.pixels[y * w + w - 1]]))
        .collect();
    ring.sort_by(f32::total_cmp);
    ring[ring.len() / 2]
}

/// Turn any grayscale image of one digit into the network's 784 inputs in `[0, 1]`.
/// `what` names the image in errors.
pub fn to_mnist(g: &Gray, what: &str) -> Result<[f32; PIXELS], ImageError> {
    let blank = |contrast: f32| ImageError::Blank {
        path: what.to_string(),
        contrast,
    };
    if g.width == 0 || g.height == 0 {
        return Err(blank(0.0));
    }
    // Ink as light on dark, background at 0.
    let bg = border_median(g);
    let invert = bg > 127.5;
    let ink: Vec<f32> = g
        .pixels
        .iter()
        .map(|&v| {
            let v = if invert { 255.0 - v } else { v };
            let b = if invert { 255.0 - bg } else { bg };
            (v - b).max(0.0)
        })
        .collect();
    let peak = ink.iter().cloned().fold(0.0, f32::max);
    if peak < MIN_CONTRAST {
        return Err(blank(peak));
    }
    let ink: Vec<f32> = ink
        .iter()
        .map(|&v| {
            let v = v / peak;
            if v < NOISE_FLOOR {
                0.0
            } else {
                v
            }
        })
        .collect();
    // Bounding box of the ink.
    let (mut x0, mut y0, mut x1, mut y1) = (g.width, g.height, 0, 0);
    for y in 0..g.height {
        for x in 0..g.width {
            if ink[y * g.width + x] > 0.0 {
                x0 = x0.min(x);
                x1 = x1.max(x);
                y0 = y0.min(y);
                y1 = y1.max(y);
            }
        }
    }
    let (cw, ch) = (x1 - x0 + 1, y1 - y0 + 1);
    let crop: ImageBuffer<Luma<f32>, Vec<f32>> =
        ImageBuffer::from_fn(cw as u32, ch as u32, |x, y| {
            Luma([ink[(y0 + y as usize) * g.width + x0 + x as usize]])
        });
    // Longer side to BOX, keeping the aspect ratio.
    let scale = BOX as f64 / cw.max(ch) as f64;
    let nw = ((cw as f64 * scale).round() as u32).clamp(1, BOX as u32);
    let nh = ((ch as f64 * scale).round() as u32).clamp(1, BOX as u32);
    let small = image::imageops::resize(&crop, nw, nh, FilterType::Triangle);
    // Centre of mass, then the integer shift that puts it at the field's centre.
    let (mut m, mut mx, mut my) = (0f64, 0f64, 0f64);
    for (x, y, p) in small.enumerate_pixels() {
        let v = p.0[0].clamp(0.0, 1.0) as f64;
        m += v;
        mx += v * x as f64;
        my += v * y as f64;
    }
    if m <= 0.0 {
        return Err(blank(peak));
    }
    // MNIST's centres of mass sit at pixel (14, 14) (0-based), not 13.5.
    let centre = (SIDE / 2) as f64;
    let place = |com: f64, len: u32| -> usize {
        let off = (centre - com).round();
        off.clamp(0.0, (SIDE - len as usize) as f64) as usize
    };
    let (ox, oy) = (place(mx / m, nw), place(my / m, nh));
    let mut out = [0f32; PIXELS];
    for (x, y, p) in small.enumerate_pixels() {
        out[(oy + y as usize) * SIDE + ox + x as usize] = p.0[0].clamp(0.0, 1.0);
    }
    Ok(out)
}

/// Softmax probabilities of the ten digits for one input, computed directly
/// from the weights (one image needs no GEMM).
pub fn probabilities(params: &Params, x: &[f32; PIXELS]) -> [f32; CLASSES] {
    let p = params.parts();
    let h = params.dims.h;
    // z1 = x·W1ᵀ + b1 as a sum of W1ᵀ's rows weighted by the pixels.
    let mut hidden = p.b1.to_vec();
    for (&xi, row) in x.iter().zip(p.w1t.chunks_exact(h)) {
        if xi != 0.0 {
            for (z, &w) in hidden.iter_mut().zip(row) {
                *z += xi * w;
            }
        }
    }
    hidden.iter_mut().for_each(|z| *z = z.max(0.0));
    let mut z = [0f32; CLASSES];
    for (c, zc) in z.iter_mut().enumerate() {
        let w = &p.w2[c * h..(c + 1) * h];
        *zc = w.iter().zip(&hidden).map(|(a, b)| a * b).sum::<f32>() + p.b2[c];
    }
    let max = z.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in &mut z {
        *v = (*v - max).exp();
        sum += *v;
    }
    z.map(|v| v / sum)
}

/// One image's answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    pub file: String,
    pub digit: usize,
    pub probability: f32,
    /// The three likeliest digits, likeliest first.
    pub top3: Vec<Guess>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Guess {
    pub digit: usize,
    pub probability: f32,
}

/// Predict the digit in an already preprocessed input.
pub fn predict_input(params: &Params, x: &[f32; PIXELS], file: &str) -> Prediction {
    let probs = probabilities(params, x);
    let mut order: Vec<usize> = (0..CLASSES).collect();
    // Stable: ties keep the lower digit first.
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    let top3: Vec<Guess> = order[..3]
        .iter()
        .map(|&d| Guess {
            digit: d,
            probability: probs[d],
        })
        .collect();
    Prediction {
        file: file.to_string(),
        digit: top3[0].digit,
        probability: top3[0].probability,
        top3,
    }
}

/// Load, preprocess and predict one image file.
pub fn predict_file(params: &Params, path: &Path) -> Result<Prediction, ImageError> {
    let name = path.display().to_string();
    let g = load_image(path)?;
    let x = to_mnist(&g, &name)?;
    Ok(predict_input(params, &x, &name))
}

impl Prediction {
    /// `file: 7  (7 98.1%, 3 1.2%, 9 0.3%)`
    pub fn line(&self) -> String {
        let top: Vec<String> = self
            .top3
            .iter()
            .map(|g| format!("{} {:.1}%", g.digit, 100.0 * g.probability))
            .collect();
        format!("{}: {}  ({})", self.file, self.digit, top.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gray(w: usize, h: usize, f: impl Fn(usize, usize) -> f32) -> Gray {
        Gray {
            width: w,
            height: h,
            pixels: (0..h)
                .flat_map(|y| (0..w).map(move |x| (x, y)))
                .map(|(x, y)| f(x, y))
                .collect(),
        }
    }

    #[test]
    fn blank_and_faint_images_are_refused() {
        for v in [0.0, 128.0, 255.0] {
            let e = to_mnist(&gray(50, 40, |_, _| v), "b.png").unwrap_err();
            assert!(matches!(e, ImageError::Blank { .. }), "{e}");
            assert!(e.to_string().starts_with("b.png: no digit found"));
        }
        // Faint smudge: 20 of 255 on white.
        let e = to_mnist(
            &gray(50, 40, |x, _| if x == 10 { 235.0 } else { 255.0 }),
            "f",
        )
        .unwrap_err();
        assert!(matches!(e, ImageError::Blank { .. }));
    }

    #[test]
    fn a_bar_is_scaled_centred_and_polarity_free() {
        // A dark vertical bar 10 wide, 60 tall, on white, off-centre in 200 × 100.
        let dark = gray(200, 100, |x, y| {
            if (20..30).contains(&x) && (5..65).contains(&y) {
                0.0
            } else {
                255.0
            }
        });
        let light = gray(200, 100, |x, y| 255.0 - dark.pixels[y * 200 + x]);
        let a = to_mnist(&dark, "d").unwrap();
        let b = to_mnist(&light, "l").unwrap();
        assert_eq!(a, b);
        let rows: Vec<usize> = (0..SIDE)
            .filter(|y| a[y * SIDE..(y + 1) * SIDE].iter().any(|&v| v > 0.5))
            .collect();
        let cols: Vec<usize> = (0..SIDE)
            .filter(|&x| (0..SIDE).any(|y| a[y * SIDE + x] > 0.5))
            .collect();
        assert_eq!(rows.len(), BOX);
        assert!((3..=4).contains(&cols.len()), "{cols:?}");
        let cy = rows.iter().sum::<usize>() as f32 / rows.len() as f32;
        let cx = cols.iter().sum::<usize>() as f32 / cols.len() as f32;
        assert!(
            (cy - 13.5).abs() <= 1.0 && (cx - 13.5).abs() <= 1.0,
            "{cx} {cy}"
        );
    }

    #[test]
    fn probabilities_sum_to_one() {
        let params = Params::init(crate::model::Dims::mnist(8), crate::model::Init::He, 3);
        let x = [0.5f32; PIXELS];
        let p = predict_input(&params, &x, "x");
        let sum: f32 = probabilities(&params, &x).iter().sum();
        assert!((sum - 1.0).abs() < 1e-5);
        assert!(
            p.top3[0].probability >= p.top3[1].probability
                && p.top3[1].probability >= p.top3[2].probability
        );
        assert_eq!(p.digit, p.top3[0].digit);
    }
}
