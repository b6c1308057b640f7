//! The preprocessing follows how MNIST was made: grayscale; invert when the
//! ink is darker than the background (MNIST is light ink on black; see
//! `ink_is_darker`); subtract the
//! background (the median shade of the image's edge; in a photo, ink
//! fainter than three times the edge's noise counts as background too) and
//! scale the ink to `[0, 1]`; crop to the ink's bounding box; scale the
//! longer side to 20 px keeping the aspect ratio (with an antialiasing
//! filter); paste into a 28 × 28 field so that the ink's centre
//! of mass lands on pixel (14, 14), where MNIST's digits have theirs. A
//! model of other square images (`side × side` inputs) gets the same
//! preparation scaled to its side: a box of `side · 20/28` pixels, the
//! centre of mass on pixel `(side/2, side/2)`.

use image::imageops::FilterType;
use image::{ImageBuffer, Luma};

use super::{
    Gray, ImageError, BOX, MIN_CONTRAST, MIN_INK_PIXELS, MIN_INK_SHARE, NOISE_FLOOR, NOISE_SPREADS,
    PHOTO_SIDE, SIDE,
};

/// The outermost ring of pixels, background in a picture of one digit (but
/// where the ink touches the edge): its median shade, and, for an image of
/// at least [`PHOTO_SIDE`] pixels a side, its spread about that shade (a
/// robust standard deviation, 1.4826 × the median absolute deviation: a
/// photo's sensor noise and uneven light). Both are medians, so ink on less
/// than half the edge moves neither. A drawing's even background has spread
/// 0; a smaller image may be a tight crop whose edge is half ink, and gets
/// spread 0 too.
pub(super) fn border_stats(g: &Gray) -> (f32, f32) {
    let (w, h) = (g.width, g.height);
    // The ring read in place: top and bottom rows, then the left and right
    // columns (corners twice, each row twice in an image 1 pixel high),
    // 2w + 2h shades. As a copy it would be 8 bytes a pixel of an image
    // 1 pixel high, twice the grayscale itself.
    let len = 2 * (w + h);
    let at = |i: usize| match i < 2 * w {
        true => g.pixels[(i % 2) * (h - 1) * w + i / 2],
        false => g.pixels[((i - 2 * w) / 2) * w + ((i - 2 * w) % 2) * (w - 1)],
    };
    let level = nth_smallest(len, len / 2, at);
    if w < PHOTO_SIDE || h < PHOTO_SIDE {
        return (level, 0.0);
    }
    let spread = 1.4826 * nth_smallest(len, len / 2, |i| (at(i) - level).abs());
    (level, spread)
}

/// The `k`th smallest (from 0) of the `n` values `at(0)`, …, `at(n - 1)`
/// in [`f32::total_cmp`]'s order: what sorting them and taking element `k`
/// gives, found by counting their bit patterns (the top 11 bits, then the
/// next 11 of those with that top, then the last 10), with no copy of them
/// and 16 KiB of counts on the stack.
pub(super) fn nth_smallest(n: usize, k: usize, at: impl Fn(usize) -> f32) -> f32 {
    assert!(k < n, "the {k}th of {n} values");
    // total_cmp's order as unsigned integers: negatives' bits flipped,
    // positives' sign bit set.
    let key = |v: f32| {
        let b = v.to_bits();
        b ^ ((((b as i32) >> 31) as u32) | 0x8000_0000)
    };
    // The bits found so far (`known` of them, from the top), and the rank
    // of the value sought among the values that share them.
    let (mut found, mut known, mut k) = (0u32, 0u32, k);
    for bits in [11, 11, 10] {
        let shift = 32 - known - bits;
        let mut counts = [0usize; 1 << 11];
        for i in 0..n {
            let key = key(at(i));
            if known == 0 || key >> (32 - known) == found >> (32 - known) {
                counts[((key >> shift) & ((1 << bits) - 1)) as usize] += 1;
            }
        }
        let mut digit = 0;
        while k >= counts[digit] {
            k -= counts[digit];
            digit += 1;
        }
        found |= (digit as u32) << shift;
        known += bits;
    }
    f32::from_bits(match found & 0x8000_0000 != 0 {
        true => found ^ 0x8000_0000,
        false => !found,
    })
}

/// Whether the ink is darker than the background `bg` (the border's median
/// shade): on light paper (`bg` above mid grey) it is, on dark it is not,
/// unless nothing on that side of `bg` is [`MIN_CONTRAST`] away from it
/// while at least [`MIN_INK_SHARE`] of the image is, on the other side: a
/// white digit on mid grey, a black one on dark grey. So only an image that
/// would otherwise be refused as blank reads the other way, and never for a
/// few specks of dust or glare; a page whose lighting makes its middle
/// brighter than its edges keeps its dark ink. Also returns the contrast to
/// report if the side chosen holds no digit: the larger of that side's and
/// the other side's (of at least that share of the image).
fn ink_is_darker(g: &Gray, bg: f32) -> (bool, f32, usize) {
    // How many pixels stray how far (whole shades) on each side of `bg`.
    let (mut lighter, mut darker) = ([0usize; 256], [0usize; 256]);
    for &v in &g.pixels {
        let d = v - bg;
        let side = if d >= 0.0 { &mut lighter } else { &mut darker };
        side[(d.abs() as usize).min(255)] += 1;
    }
    // The farthest any pixel strays, and the farthest `share` of them do.
    let share = ((g.pixels.len() as f32 * MIN_INK_SHARE).ceil() as usize).max(1);
    let reach = |h: &[usize; 256], least: usize| {
        let mut n = 0;
        (0..256).rev().find(|&d| {
            n += h[d];
            n >= least
        })
    };
    let far = |h| reach(h, 1).unwrap_or(0) as f32;
    let wide = |h| reach(h, share).unwrap_or(0) as f32;
    let light_paper = bg > 127.5;
    let (usual, other) = match light_paper {
        true => (&darker, &lighter),
        false => (&lighter, &darker),
    };
    if far(usual) < MIN_CONTRAST && wide(other) >= MIN_CONTRAST {
        (!light_paper, far(other), 0)
    } else {
        // Pixels standing out on the other side, too few to read it so.
        let specks = other[MIN_CONTRAST as usize..].iter().sum();
        (light_paper, far(usual).max(wide(other)), specks)
    }
}

/// Turn any grayscale image of one digit into MNIST's 784 inputs in `[0, 1]`.
/// `what` names the image in errors.
pub fn to_mnist(g: &Gray, what: &str) -> Result<Vec<f32>, ImageError> {
    to_input(g, SIDE, what)
}

/// Whether `g` looks saved from a data set of `(rows, cols)` images: of
/// exactly that size, its border dark (a data set's digits are light ink
/// on black). A 28 × 28 drawing of dark ink on white, or a canvas whose
/// ink is in its alpha channel (laid over white), is not: `--as-is` would
/// read its white paper as ink.
pub fn like_a_data_sets(g: &Gray, (rows, cols): (usize, usize)) -> bool {
    (g.width, g.height) == (cols, rows) && border_stats(g).0 < MIN_CONTRAST
}

/// [`to_input`], with an error for an image that looks saved from a data
/// set ([`like_a_data_sets`]) that points at `--as-is`
/// ([`ImageError::NotPreparedAtInputSize`]).
pub fn to_input_or_as_is_hint(g: &Gray, side: usize, what: &str) -> Result<Vec<f32>, ImageError> {
    to_input(g, side, what).map_err(|e| match like_a_data_sets(g, (side, side)) {
        true => ImageError::NotPreparedAtInputSize {
            inner: Box::new(e),
            side,
        },
        false => e,
    })
}

/// Turn any grayscale image of one digit into `side × side` inputs in
/// `[0, 1]`, prepared as MNIST was, scaled to `side`.
pub fn to_input(g: &Gray, side: usize, what: &str) -> Result<Vec<f32>, ImageError> {
    let blank = |contrast: f32| ImageError::Blank {
        path: what.to_string(),
        contrast,
    };
    if g.width == 0 || g.height == 0 {
        return Err(blank(0.0));
    }
    // Ink as light on dark, background at 0.
    let (bg, spread) = border_stats(g);
    let (invert, contrast, other_specks) = ink_is_darker(g, bg);
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
    let specks = |pixels: usize, contrast: f32| ImageError::Specks {
        path: what.to_string(),
        pixels,
        contrast,
    };
    if peak < MIN_CONTRAST {
        return Err(match other_specks {
            0 => blank(contrast),
            n => specks(n, contrast),
        });
    }
    let standing = ink.iter().filter(|&&v| v >= MIN_CONTRAST).count();
    let least = MIN_INK_PIXELS.min(g.pixels.len().div_ceil(20));
    if standing < least {
        let rest = ink
            .iter()
            .filter(|&&v| v < MIN_CONTRAST)
            .fold(0.0, |a: f32, &v| a.max(v));
        return Err(specks(standing, rest));
    }
    // Below the floor is background: a tenth of the darkest stroke (paper
    // texture, JPEG noise), or, in a photo, three times the edge's spread
    // (capped at half the darkest stroke, so the darkest always stays).
    let noise = (NOISE_SPREADS * spread).min(0.5 * peak);
    // In place: a 64-megapixel photo's copy would be another 256 MB.
    let mut ink = ink;
    for v in &mut ink {
        let u = *v / peak;
        *v = if u < NOISE_FLOOR || *v < noise {
            0.0
        } else {
            u
        };
    }
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
    // The box as a view of the ink, not a copy of it.
    let ink: ImageBuffer<Luma<f32>, Vec<f32>> =
        ImageBuffer::from_raw(g.width as u32, g.height as u32, ink).expect("width × height floats");
    let crop = image::imageops::crop_imm(&ink, x0 as u32, y0 as u32, cw as u32, ch as u32);
    // Longer side to the box, keeping the aspect ratio.
    let bx = ((side * BOX) as f64 / SIDE as f64).round().max(1.0) as usize;
    let scale = bx as f64 / cw.max(ch) as f64;
    let nw = ((cw as f64 * scale).round() as u32).clamp(1, bx as u32);
    let nh = ((ch as f64 * scale).round() as u32).clamp(1, bx as u32);
    // `resize` filters the columns first, into a float for each column of
    // the box and row of the result: a box 64 Mpx wide and 1 high would
    // take 256 MB more there. Where that is more than twice what the other
    // order takes, the box is resized turned over its diagonal, in place,
    // and turned back (ordinary boxes keep the order and their results).
    let (cw, ch) = (cw as u32, ch as u32);
    let small = match u64::from(cw) * u64::from(nh) > 2 * u64::from(ch) * u64::from(nw) {
        true => {
            let view = Turned {
                ink: &ink,
                x0: x0 as u32,
                y0: y0 as u32,
                size: (ch, cw),
            };
            let turned = image::imageops::resize(&view, nh, nw, FilterType::Triangle);
            ImageBuffer::from_fn(nw, nh, |x, y| *turned.get_pixel(y, x))
        }
        false => image::imageops::resize(&*crop, nw, nh, FilterType::Triangle),
    };
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
    let centre = (side / 2) as f64;
    let place = |com: f64, len: u32| -> usize {
        let off = (centre - com).round();
        off.clamp(0.0, (side - len as usize) as f64) as usize
    };
    let (ox, oy) = (place(mx / m, nw), place(my / m, nh));
    let mut out = vec![0f32; side * side];
    for (x, y, p) in small.enumerate_pixels() {
        out[(oy + y as usize) * side + ox + x as usize] = p.0[0].clamp(0.0, 1.0);
    }
    Ok(out)
}

/// A box of an image turned over its diagonal (`x` and `y` swapped), read
/// in place: the box `size.1 × size.0` at `(x0, y0)` of `ink` seen as
/// `size.0 × size.1`.
struct Turned<'a> {
    ink: &'a ImageBuffer<Luma<f32>, Vec<f32>>,
    x0: u32,
    y0: u32,
    size: (u32, u32),
}

impl image::GenericImageView for Turned<'_> {
    type Pixel = Luma<f32>;

    fn dimensions(&self) -> (u32, u32) {
        self.size
    }

    fn get_pixel(&self, x: u32, y: u32) -> Luma<f32> {
        *self.ink.get_pixel(self.x0 + y, self.y0 + x)
    }
}
