//! An image file, PNG or JPEG (told by its content, not its name), read
//! once (a pipe works as a file does) and decoded within limits, into the
//! grayscale [`Gray`] the preparation starts from; a file that cannot be
//! read gets its reason on one line and the [`Fix`] for it.

use std::path::Path;

use image::DynamicImage;

use super::{Gray, ImageError, MAX_PIXELS};

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
    pub(super) fn after(self, reason: &str) -> String {
        match self {
            Fix::Said => format!(": {reason}"),
            _ => format!(" ({reason}); {}", self.text()),
        }
    }

    pub(super) fn text(self) -> &'static str {
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
    pub(super) fn of(e: image::ImageError) -> Self {
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
    let decoded = image::ImageDecoder::total_bytes(&decoder);
    let need = peak_bytes(
        decoded,
        u64::from(width) * u64::from(height),
        decoded / u64::from(height.max(1)),
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
            fix: crate::memory::free_or_raise(),
        });
    }
    let img = decode_image(&bytes, &image::Limits::default()).map_err(undecodable)?;
    Ok(Gray {
        turned: quarter_turn(orientation),
        ..to_gray(&img)
    })
}

/// Most memory reading an image takes, from its header: `decoded` bytes
/// of pixels as the decoder gives them, `pixels` of them, `row` bytes of
/// them a row, and, for a progressive JPEG, its `coefficients`
/// ([`JpegFrame::coefficient_bytes`]).
/// The largest of: a quarter turn, which copies the decoded image; the
/// decoded image with its gray and alpha bytes and the f32 grayscale made
/// from them (2 + 4 bytes a pixel);
/// [`to_input`](super::prepare::to_input)'s grayscale with its ink
/// (4 + 4); a progressive JPEG's coefficients with the output (each
/// decode, [`jpeg_decodes_whole`]'s and the image's, holds both); and the
/// decoded image with two rows more (a PNG decoder's current and previous
/// rows: the most of all in an image one pixel high). A
/// quarter more for the decoders' own buffers, and 32 MiB for the
/// allocator's (the signal thread's malloc arena, 64 MiB of address space,
/// is reserved before any image is read: see `signals::install`). Measured on
/// 8192 × 8191 images with this check turned off, the least `ulimit -v`
/// that reads them: gray PNG or JPEG 588 MiB, RGB JPEG (baseline or
/// progressive) 652, 16-bit RGBA PNG 970 (peak resident sizes 518, 583
/// and 902 MiB); peak address space of a CMYK JPEG 658 MiB baseline, 782
/// progressive (helper-115's measurement). This counts 672, 752, 1152,
/// and 752 and 912 MiB. Images 67,108,864 × 1 and 1 × 67,108,864: gray
/// PNG 600 MiB either way, 16-bit RGBA PNG 67,108,864 × 1 1613 MiB (its
/// rows); this counts 672, 672 and 1952 MiB.
pub(super) fn peak_bytes(
    decoded: u64,
    pixels: u64,
    row: u64,
    orientation: image::metadata::Orientation,
    coefficients: u64,
) -> u64 {
    let turned = if quarter_turn(orientation) {
        2 * decoded
    } else {
        0
    };
    let most = (turned.max(decoded + 6 * pixels).max(8 * pixels))
        .max(coefficients + decoded)
        .max(decoded + 2 * row);
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
    // In pieces, each only where memory is left for it and for the copy
    // that reading the image makes (a JPEG's bytes are held twice): a file
    // of few pixels and much else (a digit followed by 200 MB, an endless
    // pipe) is refused by name, not left to fail an allocation that ends
    // the whole run, its other images unanswered.
    const PIECE: u64 = 16 << 20;
    loop {
        let want = PIECE.min(MAX_FILE_BYTES + 1 - bytes.len() as u64);
        let read = bytes.len() as u64;
        if read >= 2 * PIECE {
            if let Some(left) = crate::memory::available_memory() {
                // Beside what it holds already: twice the bytes, and room for
                // the allocator.
                let need = 2 * (read + want) + (32 << 20);
                if need > left + bytes.capacity() as u64 {
                    return Err((
                        Fix::Said,
                        format!(
                            "the file runs past {} MB, and holding and decoding it would take more memory than the {} MB left{}; an image of a digit needs far less: pass a smaller file{}",
                            read / 1_000_000,
                            left / 1_000_000,
                            crate::memory::memory_limit_note(),
                            crate::memory::free_or_raise()
                        ),
                    ));
                }
            }
        }
        let n = (&mut file).take(want).read_to_end(&mut bytes).map_err(io)?;
        if n == 0 || bytes.len() as u64 > MAX_FILE_BYTES {
            break;
        }
    }
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
pub(super) struct JpegFrame {
    /// The SOF marker's second byte: 0xC0 baseline … 0xCF.
    pub(super) marker: u8,
    /// Bits a sample: 8, or 12 in extended JPEGs.
    pub(super) precision: u8,
    pub(super) width: u64,
    pub(super) height: u64,
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
    pub(super) fn coefficient_bytes(&self) -> u64 {
        match self.marker {
            0xc2 => self.blocks().sum::<u64>() * 128,
            _ => 0,
        }
    }
}

/// The frame header of JPEG `bytes`, found by walking the segments before
/// the first scan; `None` where there is none to find (not a JPEG, or one
/// broken before it: the decoders say what is wrong).
pub(super) fn jpeg_frame(bytes: &[u8]) -> Option<JpegFrame> {
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
                    precision: *body.first()?,
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
pub(super) fn check_jpeg_frame(bytes: &[u8]) -> Result<Option<JpegFrame>, Undecodable> {
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
    // The extended process's 12 bits a sample, which the decoder does not
    // read (it said "the file is damaged or cut short").
    if f.precision == 12 {
        return Err(Undecodable {
            reason: format!(
                "a 12-bit JPEG (SOF{}), which the decoder does not read (it reads 8 bits a sample)",
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
    if quarter_turn(orientation) {
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

/// Whether `o` turns an image a quarter, swapping its width and height.
fn quarter_turn(o: image::metadata::Orientation) -> bool {
    use image::metadata::Orientation::*;
    matches!(o, Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH)
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

/// The least share of a shade's opaque pixels that touch a transparent
/// one for them to be a fringe (see [`to_gray`]): what anti-aliasing left
/// round ink whose paper was made transparent is a band a pixel or two
/// wide, mostly on the edge, while a card's paper, or its ink (a frame
/// round it too), lies mostly inside it.
const FRINGE_EDGE: f64 = 0.75;

/// Opaque pixels' count, shade sum, count on the edge and sum of squared
/// shades (see [`to_gray`]).
type Side = (usize, f64, usize, f64);

/// The fewer side, then the other (of as many, the lighter first).
fn ordered(sides: [Side; 2]) -> (Side, Side) {
    match sides[0].0 < sides[1].0 {
        true => (sides[0], sides[1]),
        false => (sides[1], sides[0]),
    }
}

/// The most of a card's ink that may touch its transparent margin.
const INK_EDGE: f64 = 0.2;

/// Where the opaque pixels' shades split in two (Otsu's threshold: the
/// split with the most variance between the two), if the two groups'
/// means are at least [`MIN_CONTRAST`](super::MIN_CONTRAST) apart.
fn two_shades(la: &image::GrayAlphaImage) -> Option<u8> {
    let mut hist = [0u64; 256];
    for p in la.pixels().filter(|p| p.0[1] >= 128) {
        hist[usize::from(p.0[0])] += 1;
    }
    let n: u64 = hist.iter().sum();
    let total: f64 = hist
        .iter()
        .enumerate()
        .map(|(v, &c)| v as f64 * c as f64)
        .sum();
    let (mut below, mut below_sum, mut best) = (0u64, 0f64, None);
    for t in 1..256 {
        below += hist[t - 1];
        below_sum += (t - 1) as f64 * hist[t - 1] as f64;
        let above = n - below;
        if below == 0 || above == 0 {
            continue;
        }
        let (m0, m1) = (below_sum / below as f64, (total - below_sum) / above as f64);
        let between = below as f64 * above as f64 * (m1 - m0) * (m1 - m0);
        if best.is_none_or(|(b, _, _)| between > b) {
            best = Some((between, t as u8, m1 - m0));
        }
    }
    best.filter(|&(_, _, apart)| apart >= f64::from(super::MIN_CONTRAST))
        .map(|(_, t, _)| t)
}

/// Grayscale of a decoded image (see [`load_image`]).
pub fn to_gray(img: &DynamicImage) -> Gray {
    let la = img.to_luma_alpha8();
    let (w, h) = (la.width() as usize, la.height() as usize);
    let (shade, opaque) = (
        |i: usize| la.as_raw()[2 * i],
        |i: usize| la.as_raw()[2 * i + 1] >= 128,
    );
    // The opaque pixels' shades split at `split`, darker (side 0) and
    // lighter (side 1): how many, their sum, how many of them touch a
    // transparent pixel (the outline the canvas meets), and their sum of
    // squares.
    let count = |split: u8| {
        let mut sides = [(0usize, 0f64, 0usize, 0f64); 2];
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                if !opaque(i) {
                    continue;
                }
                let v = shade(i);
                let side = &mut sides[usize::from(v >= split)];
                let clear = |j: usize| !opaque(j);
                let outline = (x > 0 && clear(i - 1))
                    || (x + 1 < w && clear(i + 1))
                    || (y > 0 && clear(i - w))
                    || (y + 1 < h && clear(i + w));
                *side = (
                    side.0 + 1,
                    side.1 + f64::from(v),
                    side.2 + usize::from(outline),
                    side.3 + f64::from(v) * f64::from(v),
                );
            }
        }
        sides
    };
    let mean = |side: Side| side.1 / side.0 as f64;
    // The shade opposite the ink's, as paper.
    let opposite = |ink: Side| match mean(ink) < 128.0 {
        true => 255.0,
        false => 0.0,
    };
    // The share of a shade's pixels on the edge of the opaque ones.
    let edge = |side: Side| side.2 as f64 / side.0.max(1) as f64;
    // How far a shade's pixels spread about their mean (standard deviation).
    let spread = |side: Side| {
        (side.3 / side.0 as f64 - mean(side).powi(2))
            .max(0.0)
            .sqrt()
    };
    // What lies under the transparent pixels, given the opaque ones' two
    // sides; `None` where they are one shade.
    let decide = |sides: [Side; 2]| {
        let (few, many) = ordered(sides);
        // Too few of one, or the two less than a digit's contrast apart
        // (grey ink, a pencil's grain across mid grey): one shade.
        let apart = (mean(many) - mean(few)).abs() >= f64::from(super::MIN_CONTRAST);
        if (few.0 as f64) < MIN_PAPER_INK * (few.0 + many.0) as f64 || !apart {
            return None;
        }
        // Where both are as much on the edge (a digit a dozen pixels high,
        // every pixel touching the canvas), the one nearer mid grey, as
        // anti-aliasing's blend of ink and paper is.
        let mid = |side: Side| (mean(side) - 127.5).abs();
        let fringe = match (edge(few), -mid(few)) < (edge(many), -mid(many)) {
            true => (many, few),
            false => (few, many),
        };
        Some(match edge(fringe.0) >= FRINGE_EDGE {
            // One shade mostly on the edge, at least as much as the
            // other: the anti-aliased fringe left round the ink (the other
            // shade) when its paper was made transparent (widened by JPEG
            // round coloured ink). The ink alone, as below.
            true => opposite(fringe.1),
            // The fewer shade more than twice as much on the edge as the
            // other and nearer mid grey, and one of the two spread as a
            // blend of ink and paper is (a standard deviation of at least
            // half a digit's contrast: the fringe's shades, or the ink's
            // with the darker half of the blend; an enlarged digit's fringe
            // may be a single grey): a fringe a few pixels wide, so mostly
            // off the edge (a digit enlarged, or drawn with a soft brush,
            // before its paper was made transparent), round the ink, the
            // majority, which the canvas hardly meets. The ink alone, as
            // above. (A card's paper is its outline, which its ink seldom
            // reaches; a card framed by a line of its ink, grey or black,
            // is paper of one shade and a frame of another.)
            false
                if edge(few) > 2.0 * edge(many)
                    && mid(few) < mid(many)
                    && spread(few).max(spread(many)) >= f64::from(super::MIN_CONTRAST) / 2.0 =>
            {
                opposite(many)
            }
            // A card of paper with its ink, in a transparent margin. The
            // margin is more of the paper (the card's shade, the
            // majority's mean): laid over the other shade, the card would
            // read as a block of ink with the digit a hole in it.
            false => mean(many) as f32,
        })
    };
    let sides = match img.color().has_alpha() {
        true => count(128),
        // Nothing to lay anything under: not counted (a second a photo).
        false => [(0, 0.0, 0, 0.0); 2],
    };
    let (_, many) = ordered(sides);
    let under = if many.0 == 0 {
        255.0
    } else if let Some(under) = decide(sides) {
        under
    } else if let Some((few, many)) = two_shades(&la).map(|split| ordered(count(split))) {
        // All on one side of mid grey, but in two shades far apart: a card
        // of dark paper (red, blue, grey) with black ink inside it (the
        // ink nearly all off the edge, the paper not a band along it); or
        // else the ink alone, its anti-aliased rim the other shade.
        let card = (few.0 as f64) >= MIN_PAPER_INK * (few.0 + many.0) as f64
            && edge(few) <= INK_EDGE
            && edge(many) < FRINGE_EDGE;
        match card {
            true => mean(many) as f32,
            false => opposite(many),
        }
    } else {
        // Opaque pixels of one shade: the ink alone, on a transparent
        // canvas; lay the canvas over the opposite shade.
        opposite(many)
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
        turned: false,
    }
}
