//! Reading a digit from a photo or a drawing: decode (PNG or JPEG), turn it
//! into an MNIST-style input of the model's size, and run the network on it.
//!
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

use std::path::Path;

use image::imageops::FilterType;
use image::{DynamicImage, ImageBuffer, Luma};
use serde::Serialize;

use crate::classes::ClassNames;
use crate::model::{forward_eval, Params, Workspace};

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
        "{path}: reading this {width} × {height} image takes about {} MB of memory, more than the {} MB available{note}; scale it down (a digit needs only a few hundred pixels a side), or free memory",
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
        "{path}: --as-is takes the image's pixels as the model's {side} × {side} inputs, but the image is {width} wide and {height} high; leave out --as-is to have it prepared{}",
        layout_hint(*width, *height, *side)
    )]
    NotInputSize {
        path: String,
        width: usize,
        height: usize,
        side: usize,
    },
    /// `--as-is` with an image of another size than a model of images that
    /// are not square takes (which no preparation could make).
    #[error(
        "{path}: --as-is takes the image's pixels as the model's inputs, images {cols} pixels wide and {rows} high as it was trained on, but the image is {width} wide and {height} high; give one of that size"
    )]
    NotInputShape {
        path: String,
        width: usize,
        height: usize,
        rows: usize,
        cols: usize,
    },
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

/// Why a model trained on `rows × cols` images cannot take a square one
/// (`None` where they were square, or the file does not say).
pub fn non_square(image: Option<(usize, usize)>) -> Option<String> {
    image.filter(|(rows, cols)| rows != cols).map(|(rows, cols)| {
        format!(
            "the model was trained on {rows} × {cols} images, and only square images can be prepared for it; give an image {cols} pixels wide and {rows} high with --as-is, or use eval on IDX data"
        )
    })
}

/// A grayscale image, luminance in `[0, 255]`, row-major.
#[derive(Clone, Debug)]
pub struct Gray {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<f32>,
}

/// What to do about an image that cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fix {
    /// Not an image of a kind `predict` reads (or none at all).
    Format,
    /// A PNG or JPEG whose data is damaged or cut short.
    Damaged,
    /// A PNG or JPEG of a kind the decoder does not read (an
    /// arithmetic-coded JPEG, say).
    Unsupported,
    /// No file there, or one that cannot be opened.
    Path,
    /// None beyond what the reason says (a path wrong as written).
    Said,
}

impl Fix {
    /// What follows "cannot read the image": the reason, and the fix.
    fn after(self, reason: &str) -> String {
        match self {
            Fix::Said => format!(": {reason}"),
            _ => format!(" ({reason}); {}", self.text()),
        }
    }

    fn text(self) -> &'static str {
        match self {
            Fix::Format => "pass a PNG or JPEG file",
            Fix::Damaged => "the file is damaged or cut short; export or download it again",
            Fix::Unsupported => {
                "that variant of the format is not supported; save the image again as a PNG or a baseline JPEG"
            }
            Fix::Path => "check the path and the file's permissions",
            Fix::Said => "",
        }
    }
}

/// Why [`decode_image`] failed: the decoder's reason, on one line, and
/// what to do ([`Fix::Damaged`] for damaged data, [`Fix::Format`] for a
/// file of an unknown kind or too big).
#[derive(Debug)]
pub struct Undecodable {
    pub reason: String,
    pub fix: Fix,
}

impl std::fmt::Display for Undecodable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

impl Undecodable {
    fn of(e: image::ImageError) -> Self {
        use image::error::UnsupportedErrorKind;
        let reason = readable(&e.to_string());
        let fix = match &e {
            // The decoders report a feature they lack (arithmetic coding,
            // 12-bit JPEG) as a decoding error, in words.
            image::ImageError::Decoding(_)
                if reason.to_ascii_lowercase().contains("not supported")
                    || reason.to_ascii_lowercase().contains("unsupported") =>
            {
                Fix::Unsupported
            }
            image::ImageError::Decoding(_) => Fix::Damaged,
            // Another format altogether (GIF, say) is not a variant.
            image::ImageError::Unsupported(u) => match u.kind() {
                UnsupportedErrorKind::Format(_) => Fix::Format,
                _ => Fix::Unsupported,
            },
            image::ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                Fix::Damaged
            }
            _ => Fix::Format,
        };
        Undecodable { reason, fix }
    }

    fn format(reason: String) -> Self {
        Undecodable {
            reason,
            fix: Fix::Format,
        }
    }
}

/// A decoder's message as one line of words: whitespace runs joined, and the
/// PNG decoder's `ChunkType { type: IDAT, critical: true, … }` named `IDAT`
/// (or `unnamed`, where the type is not four letters: the decoder writes
/// its bytes as `\u{4}`, braces that the search for the end must skip).
fn readable(msg: &str) -> String {
    let mut msg = msg.split_whitespace().collect::<Vec<_>>().join(" ");
    const CHUNK: &str = "ChunkType { type: ";
    while let Some(at) = msg.find(CHUNK) {
        let rest = &msg[at + CHUNK.len()..];
        let Some(name_end) = rest.find(", ") else {
            break;
        };
        let Some(close) = rest[name_end..].find('}').map(|c| name_end + c) else {
            break;
        };
        let name = &rest[..name_end];
        let name = match name.len() == 4 && name.bytes().all(|b| b.is_ascii_alphabetic()) {
            true => name,
            false => "unnamed",
        };
        msg = format!("{}{}{}", &msg[..at], name, &rest[close + 1..]);
    }
    msg
}

/// Decode a PNG or JPEG file (by content, not by name) to grayscale.
/// Transparent pixels are laid over the colour opposite to the ink, so a
/// digit drawn on a transparent canvas reads as on paper, and a card of
/// paper in a transparent margin reads as one page. The file is read
/// once, so a pipe (`<(curl …)`) works as a file does; `-` is standard input.
pub fn load_image(path: &Path) -> Result<Gray, ImageError> {
    // Decoder messages can span lines; an error stays one line.
    let fails = |fix: Fix| {
        move |reason: String| ImageError::Unreadable {
            path: path.display().to_string(),
            reason: readable(&reason),
            fix,
        }
    };
    let unreadable = fails(Fix::Format);
    let bytes = if path == Path::new(STDIN) {
        // `- < somedir`: said as for a directory named (a pipe, a file or
        // a socket is read).
        #[cfg(unix)]
        let stdin_dir = std::os::fd::AsFd::as_fd(&std::io::stdin())
            .try_clone_to_owned()
            .and_then(|fd| std::fs::File::from(fd).metadata())
            .is_ok_and(|m| m.is_dir());
        #[cfg(not(unix))]
        let stdin_dir = false;
        if stdin_dir {
            return Err(unreadable("it is a directory".into()));
        }
        read_capped(std::io::stdin().lock())
    } else {
        // A device would be read until it ends, which may be never.
        if let Some(why) = std::fs::metadata(path)
            .ok()
            .and_then(|m| crate::atomic::not_readable(&m))
        {
            return Err(unreadable(why.into()));
        }
        std::fs::File::open(path)
            .map_err(|e| match crate::error::path_fault(&e, path) {
                // The reason says the fix.
                Some(why) => (Fix::Said, why),
                // Not in the system's words ("(os error 2)").
                None if e.kind() == std::io::ErrorKind::NotFound => {
                    (Fix::Path, "no such file".into())
                }
                None => (Fix::Path, e.to_string()),
            })
            .and_then(read_capped)
    }
    .map_err(|(fix, reason)| fails(fix)(reason))?;
    if bytes.is_empty() {
        return Err(unreadable(match path == Path::new(STDIN) {
            true => "standard input was empty".into(),
            false => "the file is empty".into(),
        }));
    }
    // The header alone gives the size: refuse a huge image before decoding
    // it, with that reason (the default limits would name only memory).
    let bytes = without_color_profile(&bytes);
    let undecodable = |e: Undecodable| fails(e.fix)(e.reason);
    let frame = check_jpeg_frame(&bytes).map_err(undecodable)?;
    let mut header = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| unreadable(e.to_string()))?;
    header.no_limits();
    let of = |e| undecodable(Undecodable::of(e));
    let mut decoder = header.into_decoder().map_err(of)?;
    let (width, height) = image::ImageDecoder::dimensions(&decoder);
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ImageError::TooLarge {
            path: path.display().to_string(),
            width,
            height,
        });
    }
    // Within the pixel cap an image may still need more memory than is
    // left (a limit, a busy machine): said for this image alone, before
    // decoding, rather than an allocation failing and ending the run.
    let orientation = image::ImageDecoder::orientation(&mut decoder).map_err(of)?;
    let need = peak_bytes(
        image::ImageDecoder::total_bytes(&decoder),
        u64::from(width) * u64::from(height),
        orientation,
        frame.map_or(0, |f| f.coefficient_bytes()),
    );
    drop(decoder);
    if let Some(available) = crate::memory::available_memory().filter(|&a| need > a) {
        return Err(ImageError::NoMemory {
            path: path.display().to_string(),
            width,
            height,
            need,
            available,
            note: crate::memory::memory_limit_note(),
        });
    }
    let img = decode_image(&bytes, &image::Limits::default()).map_err(undecodable)?;
    Ok(to_gray(&img))
}

/// Most memory reading an image takes, from its header: `decoded` bytes
/// of pixels as the decoder gives them, `pixels` of them, and, for a
/// progressive JPEG, its `coefficients` ([`JpegFrame::coefficient_bytes`]).
/// The largest of: a quarter turn, which copies the decoded image; the
/// decoded image with its gray and alpha bytes and the f32 grayscale made
/// from them (2 + 4 bytes a pixel); [`to_input`]'s grayscale with its ink
/// (4 + 4); and a progressive JPEG's coefficients with the output (each
/// decode, [`jpeg_decodes_whole`]'s and the image's, holds both). A
/// quarter more for the decoders' own buffers, and 32 MiB for the
/// allocator's (the signal thread's malloc arena, 64 MiB of address space,
/// is reserved before any image is read: see `signals::install`). Measured on
/// 8192 × 8191 images with this check turned off, the least `ulimit -v`
/// that reads them: gray PNG or JPEG 588 MiB, RGB JPEG (baseline or
/// progressive) 652, 16-bit RGBA PNG 970 (peak resident sizes 518, 583
/// and 902 MiB); peak address space of a CMYK JPEG 658 MiB baseline, 782
/// progressive (helper-115's measurement). This counts 672, 752, 1152,
/// and 752 and 912 MiB.
fn peak_bytes(
    decoded: u64,
    pixels: u64,
    orientation: image::metadata::Orientation,
    coefficients: u64,
) -> u64 {
    use image::metadata::Orientation::*;
    let quarter = matches!(
        orientation,
        Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH
    );
    let turned = if quarter { 2 * decoded } else { 0 };
    let most = (turned.max(decoded + 6 * pixels).max(8 * pixels)).max(coefficients + decoded);
    most + most / 4 + (32 << 20)
}

/// Most bytes an image file may have: [`MAX_PIXELS`] of 16-bit RGBA stored
/// raw, and a little for the headers. Past this no image `predict` accepts
/// could be inside, so reading stops.
const MAX_FILE_BYTES: u64 = MAX_PIXELS * 8 + (1 << 20);

/// The image argument that names standard input.
pub const STDIN: &str = "-";

/// The bytes of `file`, at most [`MAX_FILE_BYTES`] of them; only its
/// first few where they begin neither a PNG nor a JPEG (the decoder names
/// what they are from those): `predict - < /dev/zero` or a pipe of some
/// other kind of data would otherwise be read to the cap first.
fn read_capped(mut file: impl std::io::Read) -> Result<Vec<u8>, (Fix, String)> {
    use std::io::Read;
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    const JPEG: &[u8] = b"\xff\xd8\xff";
    let mut bytes = Vec::new();
    let io = |e: std::io::Error| (Fix::Path, e.to_string());
    (&mut file).take(16).read_to_end(&mut bytes).map_err(io)?;
    let begins = |magic: &[u8]| bytes.starts_with(&magic[..magic.len().min(bytes.len())]);
    if !begins(PNG) && !begins(JPEG) {
        return Ok(bytes);
    }
    file.take(MAX_FILE_BYTES + 1 - bytes.len() as u64)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err((
            Fix::Format,
            format!(
                "the file is larger than {} MiB, more than any image predict reads",
                MAX_FILE_BYTES >> 20
            ),
        ));
    }
    Ok(bytes)
}

/// A JPEG's frame header (its SOF segment): the kind of coding, the size,
/// and each component's sampling factors.
struct JpegFrame {
    /// The SOF marker's second byte: 0xC0 baseline … 0xCF.
    marker: u8,
    width: u64,
    height: u64,
    /// (horizontal, vertical) sampling factor of each component.
    sampling: Vec<(u64, u64)>,
}

impl JpegFrame {
    /// The 8 × 8 blocks of each component, at its sampling.
    fn blocks(&self) -> impl Iterator<Item = u64> + '_ {
        let (hmax, vmax) = self
            .sampling
            .iter()
            .fold((1, 1), |(h, v), &(a, b)| (h.max(a), v.max(b)));
        self.sampling.iter().map(move |&(h, v)| {
            let w = (self.width * h).div_ceil(hmax);
            let t = (self.height * v).div_ceil(vmax);
            w.div_ceil(8) * t.div_ceil(8)
        })
    }

    /// What a progressive JPEG's decoder holds besides its output: every
    /// block's 64 coefficients (16 bits each) of every component, the
    /// scans refining them one after another; nothing for a sequential
    /// one, decoded a row of blocks at a time.
    fn coefficient_bytes(&self) -> u64 {
        match self.marker {
            0xc2 => self.blocks().sum::<u64>() * 128,
            _ => 0,
        }
    }
}

/// The frame header of JPEG `bytes`, found by walking the segments before
/// the first scan; `None` where there is none to find (not a JPEG, or one
/// broken before it: the decoders say what is wrong).
fn jpeg_frame(bytes: &[u8]) -> Option<JpegFrame> {
    if !bytes.starts_with(b"\xff\xd8") {
        return None;
    }
    let mut at = 2;
    loop {
        // Fill bytes (0xFF runs) may come before a marker.
        while bytes.get(at) == Some(&0xff) && bytes.get(at + 1) == Some(&0xff) {
            at += 1;
        }
        // Markers that stand alone, with no length (RSTn, TEM).
        if let Some(&[0xff, 0xd0..=0xd7 | 0x01]) = bytes.get(at..at + 2) {
            at += 2;
            continue;
        }
        let (&[0xff, marker], Some(len)) = (
            <&[u8; 2]>::try_from(bytes.get(at..at + 2)?).ok()?,
            bytes.get(at + 2..at + 4),
        ) else {
            return None;
        };
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let body = bytes.get(at + 4..(at + 2 + len).max(at + 4))?;
        match marker {
            // A scan before any frame, or the end: nothing to find.
            0xda | 0xd9 => return None,
            // SOF0–SOF15, less DHT (C4), JPG (C8) and DAC (CC).
            0xc0..=0xcf if !matches!(marker, 0xc4 | 0xc8 | 0xcc) => {
                // Precision, height, width, component count, then three
                // bytes a component: id, sampling factors, table.
                let n = usize::from(*body.get(5)?);
                let sampling = (0..n)
                    .map(|c| {
                        body.get(7 + 3 * c)
                            .map(|&f| (u64::from(f >> 4), u64::from(f & 15)))
                    })
                    .collect::<Option<Vec<_>>>()?;
                return Some(JpegFrame {
                    marker,
                    height: u64::from(u16::from_be_bytes([body[1], body[2]])),
                    width: u64::from(u16::from_be_bytes([body[3], body[4]])),
                    sampling,
                });
            }
            _ => at += 2 + len,
        }
    }
}

/// Refuse from its frame header a JPEG the decoder cannot read (lossless,
/// hierarchical or arithmetic-coded: named as such, not as damage), and
/// one too short to hold its pixels: a Huffman-coded scan spends at least
/// 2 bits on each 8 × 8 block (a DC difference and an end-of-block code),
/// a progressive image at least 1 (its first DC scan), so a file with
/// fewer bytes than that is cut short, whatever end-of-image marker was put
/// back after the cut (the decoders would fill the rest with grey).
/// Returns the frame header, if the bytes are a JPEG that has one.
fn check_jpeg_frame(bytes: &[u8]) -> Result<Option<JpegFrame>, Undecodable> {
    let Some(f) = jpeg_frame(bytes) else {
        return Ok(None);
    };
    let kind = match f.marker {
        0xc0..=0xc2 => None,
        0xc3 => Some("a lossless"),
        0xc5..=0xc7 => Some("a hierarchical"),
        0xcb => Some("a lossless arithmetic-coded"),
        0xcd..=0xcf => Some("a hierarchical arithmetic-coded"),
        _ => Some("an arithmetic-coded"),
    };
    if let Some(kind) = kind {
        return Err(Undecodable {
            reason: format!(
                "{kind} JPEG (SOF{}), which the decoder does not read",
                f.marker - 0xc0
            ),
            fix: Fix::Unsupported,
        });
    }
    // The most blocks any one component has: a lower bound on the scan.
    let blocks = f.blocks().max().unwrap_or(0);
    let bits = if f.marker == 0xc2 { 1 } else { 2 };
    let least = (blocks * bits).div_ceil(8);
    if (bytes.len() as u64) < least {
        return Err(Undecodable {
            reason: format!(
                "the JPEG is cut short: its {} × {} pixels take at least {least} bytes of scan data, and the file has {} bytes in all",
                f.width,
                f.height,
                bytes.len()
            ),
            fix: Fix::Damaged,
        });
    }
    Ok(Some(f))
}

/// Decode PNG or JPEG bytes (by content), upright, within `limits`.
///
/// Two things a plain `image` decode gets wrong for a digit photo: its JPEG
/// decoder fills a truncated or damaged scan with grey and reports nothing,
/// so a cut-off download would be read as some other digit, with
/// confidence; a JPEG must therefore decode whole under the strict mode of
/// the same decoder (`zune-jpeg`). And a phone stores its photos sideways
/// with an EXIF orientation that viewers apply: so is it applied here.
pub fn decode_image(bytes: &[u8], limits: &image::Limits) -> Result<DynamicImage, Undecodable> {
    use image::ImageDecoder;
    let bytes = &without_color_profile(bytes)[..];
    check_jpeg_frame(bytes)?;
    let msg = Undecodable::of;
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Undecodable::format(e.to_string()))?;
    reader.limits(limits.clone());
    let jpeg = reader.format() == Some(image::ImageFormat::Jpeg);
    // Checks the declared size against `limits`.
    let mut decoder = reader.into_decoder().map_err(msg)?;
    let orientation = decoder.orientation().map_err(msg)?;
    let mut budget = limits.clone();
    budget.reserve(decoder.total_bytes()).map_err(msg)?;
    // A quarter turn writes a second image; flips and half turns are in place.
    use image::metadata::Orientation::*;
    if matches!(
        orientation,
        Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH
    ) {
        budget.reserve(decoder.total_bytes()).map_err(msg)?;
    }
    decoder.set_limits(budget).map_err(msg)?;
    if jpeg {
        jpeg_decodes_whole(bytes).map_err(|reason| Undecodable {
            reason,
            fix: Fix::Damaged,
        })?;
    }
    let mut img = DynamicImage::from_decoder(decoder).map_err(msg)?;
    img.apply_orientation(orientation);
    Ok(img)
}

/// PNG `bytes` without their `iCCP` chunks (anything else as it is). The
/// `png` decoder inflates a colour profile whole as it reads the header,
/// whatever its size, before any limit on the image applies: half a
/// megabyte of file can hold 512 MiB of profile (2 GiB in a 2 MB file made
/// `predict` abort on a failed allocation under `ulimit -v`). A digit is
/// read in gray, so the profile is never used: it is dropped unread.
fn without_color_profile(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !bytes.starts_with(SIGNATURE) {
        return bytes.into();
    }
    // Each chunk: length (4 bytes, big-endian), type (4), data, CRC (4).
    let mut chunks = Vec::new();
    let mut at = SIGNATURE.len();
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let Some(end) = (at + 12).checked_add(len).filter(|&e| e <= bytes.len()) else {
            // Cut short: the decoder says so.
            return bytes.into();
        };
        chunks.push((&head[4..8] == b"iCCP", at..end));
        if &head[4..8] == b"IEND" {
            break;
        }
        at = end;
    }
    if !chunks.iter().any(|&(iccp, _)| iccp) {
        return bytes.into();
    }
    let mut kept = SIGNATURE.to_vec();
    for (_, range) in chunks.iter().filter(|(iccp, _)| !iccp) {
        kept.extend_from_slice(&bytes[range.clone()]);
    }
    // Whatever follows IEND, as it was (the decoders ignore it).
    kept.extend_from_slice(&bytes[chunks.last().map_or(bytes.len(), |(_, r)| r.end)..]);
    kept.into()
}

/// Whether a JPEG's every scan decodes, in `zune-jpeg`'s strict mode (which
/// `image` turns off): the data ending early or a marker where none belongs
/// is an error there, not grey pixels. The headers are read leniently, as
/// `image` reads them (padding between segments, which some cameras write,
/// is fine). It decodes the image once more; the caller has checked its size.
fn jpeg_decodes_whole(bytes: &[u8]) -> Result<(), String> {
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;
    // zune's Display is its Debug, which quotes some messages.
    let damaged = |e: zune_jpeg::errors::DecodeErrors| {
        let e = e.to_string();
        format!("the JPEG is truncated or damaged: {}", e.trim_matches('"'))
    };
    let options = DecoderOptions::default()
        .set_strict_mode(false)
        .set_max_width(usize::MAX)
        .set_max_height(usize::MAX);
    let mut d = zune_jpeg::JpegDecoder::new_with_options(
        zune_core::bytestream::ZCursor::new(bytes),
        options,
    );
    d.decode_headers().map_err(damaged)?;
    // Every component's data is decoded either way; one channel out (the
    // luma of YCbCr) keeps the extra buffer a byte a pixel.
    let out = match d.input_colorspace() {
        Some(ColorSpace::YCbCr | ColorSpace::Luma | ColorSpace::LumaA) => ColorSpace::Luma,
        _ => ColorSpace::RGB,
    };
    d.set_options(options.set_strict_mode(true).jpeg_set_out_colorspace(out));
    d.decode().map(drop).map_err(damaged)
}

/// The least share of an image's opaque pixels on the other side of mid
/// grey from the rest for them to be a card of paper with its ink, rather
/// than the ink alone with the odd stray pixel (see [`to_gray`]).
const MIN_PAPER_INK: f64 = 0.02;

/// Grayscale of a decoded image (see [`load_image`]).
pub fn to_gray(img: &DynamicImage) -> Gray {
    let la = img.to_luma_alpha8();
    let (w, h) = (la.width() as usize, la.height() as usize);
    // The opaque pixels' shades, dark (below mid grey) and light.
    let (mut dark, mut light) = ((0usize, 0f64), (0usize, 0f64));
    for p in la.pixels().filter(|p| p.0[1] >= 128) {
        let side = if p.0[0] < 128 { &mut dark } else { &mut light };
        *side = (side.0 + 1, side.1 + f64::from(p.0[0]));
    }
    let (few, many) = if dark.0 < light.0 {
        (dark, light)
    } else {
        (light, dark)
    };
    let under = if many.0 == 0 {
        255.0
    } else if few.0 as f64 >= MIN_PAPER_INK * (few.0 + many.0) as f64 {
        // Opaque pixels of both shades: a card of paper with its ink, in a
        // transparent margin. The margin is more of the paper (the card's
        // shade, the majority's mean): laid over the other shade, the card
        // would read as a block of ink with the digit a hole in it.
        (many.1 / many.0 as f64) as f32
    } else if many.1 / (many.0 as f64) < 128.0 {
        // Opaque pixels of one shade: the ink alone, on a transparent
        // canvas; lay the canvas over the opposite shade.
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

/// The outermost ring of pixels, background in a picture of one digit (but
/// where the ink touches the edge): its median shade, and, for an image of
/// at least [`PHOTO_SIDE`] pixels a side, its spread about that shade (a
/// robust standard deviation, 1.4826 × the median absolute deviation: a
/// photo's sensor noise and uneven light). Both are medians, so ink on less
/// than half the edge moves neither. A drawing's even background has spread
/// 0; a smaller image may be a tight crop whose edge is half ink, and gets
/// spread 0 too.
fn border_stats(g: &Gray) -> (f32, f32) {
    let (w, h) = (g.width, g.height);
    let median = |mut v: Vec<f32>| {
        v.sort_by(f32::total_cmp);
        v[v.len() / 2]
    };
    let ring: Vec<f32> = (0..w)
        .flat_map(|x| [g.pixels[x], g.pixels[(h - 1) * w + x]])
        .chain((0..h).flat_map(|y| [g.pixels[y * w], g.pixels[y * w + w - 1]]))
        .collect();
    let level = median(ring.clone());
    if w < PHOTO_SIDE || h < PHOTO_SIDE {
        return (level, 0.0);
    }
    let spread = 1.4826 * median(ring.iter().map(|v| (v - level).abs()).collect());
    (level, spread)
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

/// [`to_input`], with an error for an image of the model's input size
/// that points at `--as-is` ([`ImageError::NotPreparedAtInputSize`]).
pub fn to_input_or_as_is_hint(g: &Gray, side: usize, what: &str) -> Result<Vec<f32>, ImageError> {
    to_input(g, side, what).map_err(|e| match (g.width, g.height) == (side, side) {
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
    let small = image::imageops::resize(&*crop, nw, nh, FilterType::Triangle);
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

/// The `K` logits (the last layer's outputs) for one input `x (D)`: the
/// evaluation forward pass over one row.
///
/// # Panics
/// Where `x` is not `D` long (the model's `params.dims.d()`).
pub fn logits(params: &Params, x: &[f32]) -> Vec<f32> {
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
    /// The image was exactly the model's side × side (not in the JSON):
    /// most likely saved from a data set, for which `--as-is` is meant.
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
/// Where `x` is not `D` long, as [`logits`].
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
/// each shade divided by 255, as the trainer reads an IDX image's bytes, so
/// that a digit saved from the data set scores as `eval` scores it.
/// Preparing it again would crop, rescale and recentre what is already
/// prepared (and on images that are not digits, change what they show).
///
/// `shape` is the model's `(rows, cols)` ([`input_shape`]): an image `cols`
/// pixels wide and `rows` high, as an IDX file's rows and columns.
pub fn as_is_input(g: &Gray, shape: (usize, usize), what: &str) -> Result<Vec<f32>, ImageError> {
    let (rows, cols) = shape;
    if (g.width, g.height) != (cols, rows) {
        let (path, width, height) = (what.to_string(), g.width, g.height);
        return Err(match rows == cols {
            true => ImageError::NotInputSize {
                path,
                width,
                height,
                side: rows,
            },
            false => ImageError::NotInputShape {
                path,
                width,
                height,
                rows,
                cols,
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
        input_size: (g.width, g.height) == (cols, rows),
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
            assert!(
                e.to_string().contains("less than the 40 a digit needs"),
                "{e}"
            );
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

    /// Ink on either side of any shade of paper is found: a white bar on
    /// mid grey, a black one on dark grey and every other pair give the
    /// input a black bar on white gives. And a page lit brighter in the
    /// middle than at its edges (a phone photo's vignette) keeps its dark
    /// ink, though the paper strays further from the edge's shade in all.
    #[test]
    fn ink_on_any_shade_of_paper_is_found() {
        let bar = |bg: f32, ink: f32| {
            gray(120, 90, move |x, y| {
                if (40..52).contains(&x) && (10..70).contains(&y) {
                    ink
                } else {
                    bg
                }
            })
        };
        let want = to_mnist(&bar(255.0, 0.0), "ref").unwrap();
        for (bg, ink) in [
            (128.0, 255.0),
            (160.0, 255.0),
            (100.0, 0.0),
            (90.0, 10.0),
            (255.0, 128.0),
            (100.0, 160.0),
            (0.0, 255.0),
            (127.0, 80.0),
            (128.0, 200.0),
        ] {
            let got = to_mnist(&bar(bg, ink), "bar");
            assert_eq!(got.ok().as_ref(), Some(&want), "ink {ink} on {bg}");
        }
        // Edges at 150, paper at 200 inside them, the bar at 40.
        let mut lit = bar(200.0, 40.0);
        for (i, v) in lit.pixels.iter_mut().enumerate() {
            let (x, y) = (i % 120, i / 120);
            if !(8..112).contains(&x) || !(8..82).contains(&y) {
                *v = 150.0;
            }
        }
        assert_eq!(to_mnist(&lit, "lit").unwrap(), want);
        // A few specks lighter than grey paper, or darker than dark paper,
        // are no digit; the error gives the farthest contrast of real ink
        // (the faint bar's 30, not the specks').
        let mut specks = bar(200.0, 170.0);
        for i in [5, 130, 2000, 9000] {
            specks.pixels[i] = 255.0;
        }
        let mut dark = bar(60.0, 90.0);
        for i in [5, 130, 2000] {
            dark.pixels[i] = 0.0;
        }
        for (img, contrast, n) in [(&specks, 30.0, 4), (&dark, 30.0, 3)] {
            match to_mnist(img, "s") {
                Err(e @ ImageError::Specks { .. }) => {
                    let ImageError::Specks {
                        contrast: c,
                        pixels,
                        ..
                    } = e
                    else {
                        unreachable!()
                    };
                    assert_eq!((c, pixels), (contrast, n));
                    let text = e.to_string();
                    assert!(
                        text.contains(&format!("only {n} pixels stand 40 or more shades out"))
                            && text.contains("and the rest at most 30"),
                        "{text}"
                    );
                }
                other => panic!("{other:?}"),
            }
        }
        // Specks on the usual side (dark dust on white paper), on a page
        // of nothing else, are no digit either: one, or nine on 300 × 300.
        let page = |dust: &[usize]| {
            let mut g = gray(300, 300, |_, _| 255.0);
            for &i in dust {
                g.pixels[i] = 0.0;
            }
            g
        };
        for dust in [
            &[45_150][..],
            &[
                100, 5_000, 45_150, 45_151, 60_000, 60_001, 60_300, 70_000, 80_000,
            ],
        ] {
            match to_mnist(&page(dust), "dust") {
                Err(ImageError::Specks {
                    pixels, contrast, ..
                }) => {
                    assert_eq!((pixels, contrast), (dust.len(), 0.0))
                }
                other => panic!("{} specks: {other:?}", dust.len()),
            }
        }
        // Ten are enough (a stroke of ten pixels), and in an image of
        // under 200 pixels a twentieth of them, rounded up: a 4-pixel stroke
        // in 8 × 8.
        let ten: Vec<usize> = (0..10).map(|i| 45_000 + i * 300).collect();
        assert!(to_mnist(&page(&ten), "ten").is_ok());
        let small = gray(8, 8, |x, y| {
            if x == 4 && (2..6).contains(&y) {
                0.0
            } else {
                255.0
            }
        });
        assert!(to_input(&small, 8, "small").is_ok());
        // A faint light bar (160) on mid grey (128): 32 of 255, reported so.
        match to_mnist(&bar(128.0, 160.0), "faint") {
            Err(ImageError::Blank { contrast, .. }) => assert_eq!(contrast, 32.0),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn probabilities_sum_to_one() {
        let params = Params::init(crate::model::Dims::mnist(&[8]), crate::model::Init::He, 3);
        let x = [0.5f32; 784];
        let p = predict_input(&params, &x, "x");
        let sum: f32 = probabilities(&params, &x).iter().sum();
        assert!((sum - 1.0).abs() < 1e-5);
        assert!(
            p.top3[0].probability >= p.top3[1].probability
                && p.top3[1].probability >= p.top3[2].probability
        );
        assert_eq!(p.digit, p.top3[0].digit);
    }

    /// The frame walker reads untrusted bytes: every prefix of a real
    /// JPEG and thousands of mutations of its headers give an answer, never
    /// a panic; and the real one, with fill bytes and a standalone marker
    /// before its frame, passes.
    #[test]
    fn the_jpeg_frame_walker_survives_any_header() {
        let img = image::GrayImage::from_fn(40, 24, |x, y| image::Luma([(x * 6 + y) as u8]));
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
            .encode_image(&img)
            .unwrap();
        let f = jpeg_frame(&jpeg).expect("a frame");
        assert_eq!((f.marker, f.width, f.height), (0xc0, 40, 24));
        assert!(check_jpeg_frame(&jpeg).is_ok());
        let odd: Vec<u8> = [&jpeg[..2], &[0xff, 0xff, 0xff, 0xd3][..], &jpeg[2..]].concat();
        assert_eq!(jpeg_frame(&odd).map(|f| f.width), Some(40));
        for n in 0..jpeg.len() {
            let _ = check_jpeg_frame(&jpeg[..n]);
        }
        let head = jpeg.len().min(700);
        let mut x = 0x9e37_79b9u32;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as usize
        };
        for _ in 0..20_000 {
            let mut m = jpeg.clone();
            for _ in 0..1 + next() % 4 {
                let at = 2 + next() % (head - 2);
                m[at] = next() as u8;
            }
            let _ = check_jpeg_frame(&m);
        }
    }

    /// A progressive JPEG's coefficients are counted, all components' (a
    /// CMYK one of 8192 × 8191 peaked at 782 MiB of address space, more
    /// than its RGB output and gray copies alone would say); a sequential
    /// one's are not held whole.
    #[test]
    fn progressive_jpegs_count_their_coefficients() {
        // SOI, then a frame header: 8 bits, 8191 high, 8192 wide, four
        // components sampled 1 × 1.
        let frame = |marker: u8| {
            let mut b = vec![
                0xff, 0xd8, 0xff, marker, 0, 20, 8, 0x1f, 0xff, 0x20, 0x00, 4,
            ];
            for id in 1..=4 {
                b.extend([id, 0x11, 0]);
            }
            jpeg_frame(&b).expect("a frame")
        };
        let blocks = 1024 * 1024;
        assert_eq!(frame(0xc2).coefficient_bytes(), 4 * blocks * 128);
        assert_eq!(frame(0xc0).coefficient_bytes(), 0);
        let pixels = 8192 * 8191;
        let upright = image::metadata::Orientation::NoTransforms;
        let need = peak_bytes(3 * pixels, pixels, upright, frame(0xc2).coefficient_bytes());
        assert!(need > 782 << 20, "{need}");
        assert!(need > peak_bytes(3 * pixels, pixels, upright, 0));
    }

    /// A decoder's "not supported" (an arithmetic-coded JPEG's DAC marker)
    /// is a variant to save again, not damage to download again.
    #[test]
    fn a_feature_the_decoder_lacks_is_not_called_damage() {
        use image::error::{DecodingError, ImageFormatHint};
        let jpeg = ImageFormatHint::Exact(image::ImageFormat::Jpeg);
        let e = |m: &str| {
            Undecodable::of(image::ImageError::Decoding(DecodingError::new(
                jpeg.clone(),
                m.to_string(),
            )))
        };
        assert_eq!(
            e("Error parsing image. header DAC is not supported").fix,
            Fix::Unsupported
        );
        assert_eq!(e("invalid Huffman code").fix, Fix::Damaged);
        assert!(Fix::Unsupported
            .text()
            .contains("save the image again as a PNG"));
    }

    /// The runners-up are ranked by logit where their probabilities are
    /// all 0 in f32: output biases 0, -300, -150, -400, -200 put class 2
    /// second and class 4 third, though both have probability 0.
    #[test]
    fn runners_up_far_behind_keep_the_models_order() {
        let mut params = Params::zeros(crate::model::Dims::new(4, &[], 5));
        let n = params.data.len();
        params.data[n - 5..].copy_from_slice(&[0.0, -300.0, -150.0, -400.0, -200.0]);
        let p = predict_input(&params, &[0.5; 4], "x");
        let digits: Vec<usize> = p.top3.iter().map(|g| g.digit).collect();
        assert_eq!(digits, [0, 2, 4]);
        assert_eq!((p.top3[1].probability, p.top3[2].probability), (0.0, 0.0));
    }

    /// The output layer's biases count: with zero weights they alone set
    /// the probabilities, a softmax of the biases.
    #[test]
    fn probabilities_include_the_output_biases() {
        let mut params = Params::zeros(crate::model::Dims::new(4, &[], 2));
        params.data[8..10].copy_from_slice(&[1.0, 0.0]);
        let p = probabilities(&params, &[0.5; 4]);
        let e = std::f32::consts::E;
        assert!((p[0] - e / (e + 1.0)).abs() < 1e-6, "{p:?}");
        assert!((p[1] - 1.0 / (e + 1.0)).abs() < 1e-6, "{p:?}");
    }
}
