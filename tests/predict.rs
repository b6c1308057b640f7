//! `predict` on images rendered from real test-set digits at other sizes,
//! polarities, formats and with transparency, against a model trained here
//! in a second; blank and unreadable images give errors, not guesses.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use image::imageops::FilterType;
use image::{GrayImage, ImageBuffer, Luma, Rgb, RgbImage, Rgba, RgbaImage};

use simplenn::data::{to_unit, MNIST_PIXELS};
use simplenn::model::Params;
use simplenn::predict::{self, Fix, ImageError};
use simplenn::train::RunOptions;

/// Test images rendered per variant.
const N: usize = 40;

/// A 784-48-10 model trained on 5000 images for 2 epochs (≈ 90% accurate), saved in `dir`.
fn small_model(dir: &Path) -> (Params, PathBuf) {
    let data = small_mnist(&dir.join("data"), 5000, 100);
    let path = dir.join("model.safetensors");
    let flags = [
        "--hidden",
        "48",
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--val",
        "0",
        "--save",
        path.to_str().unwrap(),
    ];
    let r = train(&data, &flags, RunOptions::default());
    (r.params, path)
}

fn digit(m: &simplenn::data::Mnist, i: usize) -> (GrayImage, u8) {
    let img = GrayImage::from_raw(28, 28, m.test.image(i).to_vec()).unwrap();
    (img, m.test.label(i))
}

fn raw_input(img: &GrayImage) -> [f32; MNIST_PIXELS] {
    let mut x = [0f32; MNIST_PIXELS];
    to_unit(img.as_raw(), &mut x);
    x
}

fn invert(img: &GrayImage) -> GrayImage {
    ImageBuffer::from_fn(img.width(), img.height(), |x, y| {
        Luma([255 - img.get_pixel(x, y).0[0]])
    })
}

/// Paste `img` into a `w × h` canvas of `bg` at `(ox, oy)`.
fn canvas(img: &GrayImage, w: u32, h: u32, ox: u32, oy: u32, bg: u8) -> GrayImage {
    let mut c = GrayImage::from_pixel(w, h, Luma([bg]));
    image::imageops::overlay(&mut c, img, ox as i64, oy as i64);
    c
}

/// Test digit `img` as a photo of blue ink on beige paper: 3× larger, at
/// (100, 40) on a 320 × 240 page, with `light(x, y, channel)` added to the
/// paper's shade.
fn photo(img: &GrayImage, light: impl Fn(u32, u32, u32) -> f32) -> RgbImage {
    let big = image::imageops::resize(img, 84, 84, FilterType::Triangle);
    let (paper, ink) = ([200.0, 190.0, 170.0], [30.0, 40.0, 110.0]);
    ImageBuffer::from_fn(320, 240, |x, y| {
        let a = if (100..184).contains(&x) && (40..124).contains(&y) {
            big.get_pixel(x - 100, y - 40).0[0] as f32 / 255.0
        } else {
            0.0
        };
        let px = |c: usize| {
            let bg = (paper[c] + light(x, y, c as u32)).clamp(0.0, 255.0);
            (bg * (1.0 - a) + ink[c] * a) as u8
        };
        Rgb([px(0), px(1), px(2)])
    })
}

/// Each variant: a name and how to write test image `img` to `path`.
type Render = fn(&GrayImage, &Path) -> PathBuf;

fn variants() -> Vec<(&'static str, Render)> {
    vec![
        // Black ink on white paper, 4× larger, off-centre on a wide page.
        ("dark-on-light-png", |img, dir| {
            let big = image::imageops::resize(img, 112, 112, FilterType::Nearest);
            let p = dir.join("a.png");
            canvas(&invert(&big), 200, 150, 70, 8, 255)
                .save(&p)
                .unwrap();
            p
        }),
        // Light on dark like MNIST, at twice the size, as RGB.
        ("light-on-dark-rgb-png", |img, dir| {
            let big = image::imageops::resize(img, 56, 56, FilterType::Triangle);
            let rgb: RgbImage = ImageBuffer::from_fn(70, 64, |x, y| {
                let v = if (7..63).contains(&x) && (4..60).contains(&y) {
                    big.get_pixel(x - 7, y - 4).0[0]
                } else {
                    0
                };
                Rgb([v, v, v])
            });
            let p = dir.join("b.png");
            rgb.save(&p).unwrap();
            p
        }),
        // A JPEG, dark on grey paper, 3× larger: compression noise and a non-white background.
        ("dark-on-grey-jpeg", |img, dir| {
            let big = image::imageops::resize(img, 84, 84, FilterType::CatmullRom);
            let grey: RgbImage = ImageBuffer::from_fn(100, 100, |x, y| {
                let ink = if (8..92).contains(&x) && (8..92).contains(&y) {
                    big.get_pixel(x - 8, y - 8).0[0] as f32 / 255.0
                } else {
                    0.0
                };
                let v = (210.0 * (1.0 - ink)) as u8;
                Rgb([v, v, v.saturating_add(10)])
            });
            let p = dir.join("c.jpg");
            grey.save(&p).unwrap();
            p
        }),
        // A photo: blue ink on beige paper, 3× larger on a 320 × 240 page,
        // each channel with ±25 of sensor noise.
        ("noisy-photo-png", |img, dir| {
            let p = dir.join("e.png");
            photo(img, |x, y, c| {
                let h = (x * 7919 + y * 104_729 + c * 15_485_863) as u64;
                let h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
                (h % 51) as f32 - 25.0
            })
            .save(&p)
            .unwrap();
            p
        }),
        // Cropped to the ink, no margin (the strokes touch the edge), 6×
        // larger, dark on white: the edge is partly ink.
        ("tight-crop-png", |img, dir| {
            let (mut x0, mut y0, mut x1, mut y1) = (27, 27, 0, 0);
            for (x, y, p) in img.enumerate_pixels() {
                if p.0[0] > 0 {
                    (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
                }
            }
            let (w, h) = (x1 - x0 + 1, y1 - y0 + 1);
            let crop = image::imageops::crop_imm(img, x0, y0, w, h).to_image();
            let big = image::imageops::resize(&crop, 6 * w, 6 * h, FilterType::Triangle);
            let p = dir.join("g.png");
            invert(&big).save(&p).unwrap();
            p
        }),
        // The same page lit from the left: 70 levels brighter there than
        // on the right, no noise.
        ("unevenly-lit-photo-png", |img, dir| {
            let p = dir.join("f.png");
            photo(img, |x, _, _| 35.0 - 70.0 * x as f32 / 319.0)
                .save(&p)
                .unwrap();
            p
        }),
        // Dark ink on an opaque white card, 4× larger, in a transparent
        // margin of 20 pixels whose hidden colour is black: the margin is
        // paper too, not ink around the card.
        ("card-in-transparent-margin-png", |img, dir| {
            let card = image::imageops::resize(&invert(img), 112, 112, FilterType::Triangle);
            let page: RgbaImage = ImageBuffer::from_fn(152, 152, |x, y| {
                match (x.checked_sub(20), y.checked_sub(20)) {
                    (Some(cx), Some(cy)) if cx < 112 && cy < 112 => {
                        let v = card.get_pixel(cx, cy).0[0];
                        Rgba([v, v, v, 255])
                    }
                    _ => Rgba([0, 0, 0, 0]),
                }
            });
            let p = dir.join("h.png");
            page.save(&p).unwrap();
            p
        }),
        // Black ink on a transparent canvas, as drawing programs export.
        ("ink-on-transparent-png", |img, dir| {
            let rgba: RgbaImage =
                ImageBuffer::from_fn(28, 28, |x, y| Rgba([0, 0, 0, img.get_pixel(x, y).0[0]]));
            let big = image::imageops::resize(&rgba, 90, 90, FilterType::Triangle);
            let p = dir.join("d.png");
            big.save(&p).unwrap();
            p
        }),
    ]
}

#[test]
fn original_digits_come_through_preprocessing_nearly_unchanged() {
    let mut total = 0f32;
    let m = mnist();
    for i in 0..N {
        let (img, _) = digit(&m, i);
        let g = predict::to_gray(&image::DynamicImage::ImageLuma8(img.clone()));
        let x = predict::to_mnist(&g, "t").unwrap();
        let raw = raw_input(&img);
        let l1: f32 =
            x.iter().zip(&raw).map(|(a, b)| (a - b).abs()).sum::<f32>() / raw.iter().sum::<f32>();
        total += l1;
    }
    let mean = total / N as f32;
    eprintln!("mean relative L1 change of MNIST digits through preprocessing: {mean:.3}");
    assert!(mean < 0.05, "{mean}");
}

#[test]
fn rendered_digits_are_read_like_the_originals() {
    let dir = tempfile::tempdir().unwrap();
    let (params, _) = small_model(dir.path());
    let m = mnist();
    for (name, render) in variants() {
        let (mut agree, mut right) = (0, 0);
        for i in 0..N {
            let (img, label) = digit(&m, i);
            let want = predict::predict_input(&params, &raw_input(&img), "raw").digit;
            let path = render(&img, dir.path());
            let got = predict::predict_file(&params, None, &path, false)
                .unwrap_or_else(|e| panic!("{name} #{i}: {e}"));
            agree += (got.digit == want) as usize;
            right += (got.digit == label as usize) as usize;
        }
        eprintln!("{name}: agrees with the raw image on {agree}/{N}, right on {right}/{N}");
        assert!(agree >= N * 9 / 10, "{name}: agrees on only {agree}/{N}");
        assert!(right >= N * 8 / 10, "{name}: right on only {right}/{N}");
    }
}

/// A 784-8-10 model, untrained: enough where only errors are checked.
fn untrained() -> Params {
    Params::init(
        simplenn::model::Dims::mnist(&[8]),
        simplenn::model::Init::He,
        1,
    )
}

#[test]
fn blank_and_unreadable_images_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let params = untrained();
    let white = dir.path().join("white.png");
    GrayImage::from_pixel(64, 48, Luma([255]))
        .save(&white)
        .unwrap();
    let text = dir.path().join("note.png");
    std::fs::write(&text, "not an image").unwrap();
    let truncated = dir.path().join("cut.png");
    let (img, _) = digit(&mnist(), 0);
    img.save(&truncated).unwrap();
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let missing = dir.path().join("missing.png");
    assert!(matches!(
        predict::predict_file(&params, None, &white, false),
        Err(ImageError::Blank { .. })
    ));
    // Blank at the model's own size: most likely a data set's image, so
    // the error points at --as-is.
    let own_size = dir.path().join("own_size.png");
    GrayImage::from_pixel(28, 28, Luma([0]))
        .save(&own_size)
        .unwrap();
    let e = predict::predict_file(&params, None, &own_size, false).unwrap_err();
    assert!(
        matches!(&e, ImageError::NotPreparedAtInputSize { inner, side: 28 }
            if matches!(**inner, ImageError::Blank { .. })),
        "{e}"
    );
    assert!(
        e.to_string().ends_with(
            "; the image is already 28 × 28, the model's input size: if it was saved from a data set, --as-is reads its pixels unchanged"
        ),
        "{e}"
    );
    // Blank white at that size is no data set's image (their border is
    // black), which --as-is would read as a page of ink: no pointer there.
    let white_own_size = dir.path().join("white_own_size.png");
    GrayImage::from_pixel(28, 28, Luma([255]))
        .save(&white_own_size)
        .unwrap();
    let e = predict::predict_file(&params, None, &white_own_size, false).unwrap_err();
    assert!(matches!(e, ImageError::Blank { .. }), "{e}");
    // A PNG whose pixel data's checksum (CRC) is wrong.
    let bad_crc = dir.path().join("crc.png");
    let mut png = bytes.clone();
    let idat = png.windows(4).position(|w| w == b"IDAT").unwrap();
    let len = u32::from_be_bytes(png[idat - 4..idat].try_into().unwrap()) as usize;
    png[idat + 4 + len] ^= 0x55;
    std::fs::write(&bad_crc, &png).unwrap();
    // A PNG signature and then bytes: a chunk whose type holds control
    // characters, which the decoder's message writes as `\u{4}`.
    let garbage = dir.path().join("garbage.png");
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend((0..=255u8).cycle().take(1024));
    std::fs::write(&garbage, &png).unwrap();
    // Each error says what to do about it, the decoder's words on one line.
    for (p, fix) in [
        (&text, Fix::Format),
        (&truncated, Fix::Damaged),
        (&bad_crc, Fix::Damaged),
        (&missing, Fix::Path),
        (&garbage, Fix::Damaged),
    ] {
        let e = predict::predict_file(&params, None, p, false).unwrap_err();
        assert!(
            matches!(&e, ImageError::Unreadable { fix: f, .. } if *f == fix),
            "{fix:?}: {e}"
        );
        assert!(e.to_string().starts_with(&p.display().to_string()), "{e}");
        assert!(!e.to_string().contains("ChunkType"), "{e}");
        assert!(!e.to_string().contains("\\u{"), "{e}");
    }
    let e = predict::predict_file(&params, None, &bad_crc, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("CRC error") && e.contains("IDAT"), "{e}");
    assert!(e.ends_with("export or download it again"), "{e}");
    let e = predict::predict_file(&params, None, &missing, false)
        .unwrap_err()
        .to_string();
    // Not in the system's words, "(No such file or directory (os error 2))".
    assert!(
        e.ends_with(
            "cannot read the image (no such file); check the path and the file's permissions"
        ),
        "{e}"
    );
    // PNGs whose headers claim 9000 × 8000 pixels (72 megapixels), and the
    // largest size a PNG can state, with their pixel data cut off: refused
    // for their size, from the header alone (not as out of memory).
    for (w, h) in [(9000, 8000), (i32::MAX as u32, i32::MAX as u32)] {
        let huge = dir.path().join("huge.png");
        std::fs::write(&huge, png_header(w, h)).unwrap();
        let e = predict::predict_file(&params, None, &huge, false).unwrap_err();
        assert!(
            matches!(e, ImageError::TooLarge { width, height, .. } if (width, height) == (w, h)),
            "{e}"
        );
        assert!(e.to_string().contains(&format!("{w} × {h} pixels")), "{e}");
    }
    // Exactly the limit, 8192 × 8192 (67.1 megapixels), is within it: not
    // refused as too large (then found damaged, its pixels cut off, or,
    // where memory is short, more than is left); one row more is.
    let limit = dir.path().join("limit.png");
    std::fs::write(&limit, png_header(8192, 8192)).unwrap();
    let e = predict::predict_file(&params, None, &limit, false).unwrap_err();
    assert!(
        matches!(
            e,
            ImageError::Unreadable {
                fix: Fix::Damaged,
                ..
            } | ImageError::NoMemory { .. }
        ),
        "{e}"
    );
    std::fs::write(&limit, png_header(8192, 8193)).unwrap();
    let e = predict::predict_file(&params, None, &limit, false).unwrap_err();
    assert!(matches!(e, ImageError::TooLarge { .. }), "{e}");
}

/// A JPEG must decode whole: `image`'s own decoder fills a cut-off scan with
/// grey and says nothing, so a half-downloaded photo would be read as some
/// digit. And a photo's EXIF orientation is applied, as viewers apply it.
#[test]
fn jpegs_must_be_whole_and_are_read_upright() {
    use image::{ImageEncoder, ImageFormat};
    let dir = tempfile::tempdir().unwrap();
    let params = untrained();
    // Digit 0 (a 7), dark on a light 100 × 80 page: not square, so a
    // rotation shows in the decoded size.
    let (img, _) = digit(&mnist(), 0);
    let big = image::imageops::resize(&img, 60, 60, FilterType::CatmullRom);
    let page = GrayImage::from_fn(100, 80, |x, y| {
        let ink = if (20..80).contains(&x) && (10..70).contains(&y) {
            big.get_pixel(x - 20, y - 10).0[0]
        } else {
            0
        };
        Luma([255 - ink])
    });
    let jpeg = |img: image::DynamicImage, exif: Option<Vec<u8>>| {
        let mut bytes = Vec::new();
        let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90);
        if let Some(exif) = exif {
            enc.set_exif_metadata(exif).unwrap();
        }
        let (w, h) = (img.width(), img.height());
        enc.write_image(img.as_bytes(), w, h, img.color().into())
            .unwrap();
        bytes
    };
    let upright = jpeg(page.clone().into(), None);

    // Cut at 60 %, grey and colour: `image` alone decodes them (which is
    // why the check exists).
    let rgb = RgbImage::from_fn(100, 80, |x, y| {
        let v = page.get_pixel(x, y).0[0];
        Rgb([v, v.saturating_sub(20), v])
    });
    let colour = jpeg(rgb.into(), None);
    for (name, whole) in [("grey", &upright), ("colour", &colour)] {
        let cut = &whole[..whole.len() * 6 / 10];
        assert!(image::load_from_memory_with_format(cut, ImageFormat::Jpeg).is_ok());
        let cut_path = dir.path().join(format!("cut-{name}.jpg"));
        std::fs::write(&cut_path, cut).unwrap();
        let e = predict::predict_file(&params, None, &cut_path, false).unwrap_err();
        assert!(matches!(e, ImageError::Unreadable { .. }), "{name}: {e}");
        assert!(
            e.to_string().contains("truncated or damaged"),
            "{name}: {e}"
        );
    }
    // Zero bytes between two header segments (some cameras pad them) are
    // not damage: read as `image` reads them.
    assert_eq!(&upright[2..4], &[0xFF, 0xE0], "APP0 after SOI");
    let app0_end = 4 + u16::from_be_bytes([upright[4], upright[5]]) as usize;
    let padded: Vec<u8> = [&upright[..app0_end], &[0; 8], &upright[app0_end..]].concat();
    let padded_path = dir.path().join("padded.jpg");
    std::fs::write(&padded_path, &padded).unwrap();
    let g = predict::load_image(&padded_path).unwrap();
    assert_eq!((g.width, g.height), (100, 80));

    // A kind of JPEG the decoder does not read is named as such, with the
    // fix for it, not as damage; its frame header is the baseline one with
    // the marker changed.
    let sof = upright
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("a baseline frame header");
    for (marker, precision, says) in [
        (0xC3, 8, "a lossless JPEG (SOF3)"),
        (0xC9, 8, "an arithmetic-coded JPEG (SOF9)"),
        (0xC1, 12, "a 12-bit JPEG (SOF1)"),
    ] {
        let mut other = upright.clone();
        other[sof + 1] = marker;
        // The precision, after the segment's length.
        other[sof + 4] = precision;
        let path = dir.path().join(format!("sof{}.jpg", marker - 0xC0));
        std::fs::write(&path, &other).unwrap();
        match predict::load_image(&path) {
            Err(ImageError::Unreadable { reason, fix, .. }) => {
                assert!(reason.starts_with(says), "{reason}");
                assert!(matches!(fix, Fix::Unsupported), "{reason}: {fix:?}");
            }
            r => panic!("SOF{}: {:?}", marker - 0xC0, r.map(|g| g.width)),
        }
    }
    // A frame header of 8192 × 8191 pixels over a scan of a few hundred
    // bytes, and an end-of-image marker: cut short (2 bits a block at the
    // least make 262,144 bytes), refused before any decoding, though the
    // decoders would fill the rest with grey and answer.
    let mut huge = upright.clone();
    huge[sof + 5..sof + 9].copy_from_slice(&[0x1F, 0xFF, 0x20, 0x00]);
    let path = dir.path().join("huge.jpg");
    std::fs::write(&path, &huge).unwrap();
    match predict::load_image(&path) {
        Err(ImageError::Unreadable { reason, fix, .. }) => {
            assert!(
                reason.starts_with("the JPEG is cut short: its 8192 × 8191 pixels take at least 262144 bytes of scan data"),
                "{reason}"
            );
            assert!(matches!(fix, Fix::Damaged), "{reason}: {fix:?}");
        }
        r => panic!("huge header: {:?}", r.map(|g| g.width)),
    }

    // Stored turned a quarter to the left, with EXIF orientation 6 ("turn a
    // quarter to the right to view"): read as the upright page.
    let exif: Vec<u8> = [
        &b"II*\0"[..],            // TIFF, little-endian
        &8u32.to_le_bytes(),      // first IFD at offset 8
        &1u16.to_le_bytes(),      // one entry:
        &0x0112u16.to_le_bytes(), // Orientation,
        &3u16.to_le_bytes(),      // SHORT,
        &1u32.to_le_bytes(),      // one value:
        &[6, 0, 0, 0],            // 6
        &0u32.to_le_bytes(),      // no next IFD
    ]
    .concat();
    let stored = image::imageops::rotate270(&page);
    let turned = dir.path().join("turned.jpg");
    std::fs::write(&turned, jpeg(stored.into(), Some(exif))).unwrap();
    let straight = dir.path().join("straight.jpg");
    std::fs::write(&straight, &upright).unwrap();
    let (a, b) = (
        predict::load_image(&turned).unwrap(),
        predict::load_image(&straight).unwrap(),
    );
    assert_eq!(
        (a.width, a.height),
        (100, 80),
        "EXIF orientation not applied"
    );
    assert!(a.turned && !b.turned);
    // An --as-is size error names the size in the file too: the one the
    // user sees there is not the upright one the model is given.
    let e = predict::as_is_input(&a, (100, 80), "turned.jpg")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "turned.jpg: --as-is takes the image's pixels as the model's inputs, images 80 pixels wide and 100 high as it was trained on, but the image is 100 wide and 80 high once turned upright as its EXIF orientation says (the file stores it 80 wide and 100 high); give one of that size"
    );
    let diff = a
        .pixels
        .iter()
        .zip(&b.pixels)
        .map(|(x, y)| (x - y).abs())
        .sum::<f32>()
        / a.pixels.len() as f32;
    assert!(
        diff < 4.0,
        "mean difference {diff} of 255 from the upright page"
    );
}

/// One PNG chunk: `data`'s length, `kind`, `data`, and the CRC.
fn png_chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
    let mut v = (data.len() as u32).to_be_bytes().to_vec();
    let body: Vec<u8> = kind.iter().chain(data).copied().collect();
    v.extend_from_slice(&body);
    // PNG's chunk CRC is gzip's CRC-32.
    let mut crc = flate2::Crc::new();
    crc.update(&body);
    v.extend_from_slice(&crc.sum().to_be_bytes());
    v
}

/// A PNG's signature, its IHDR chunk (8-bit grayscale `w × h`) and an empty
/// IDAT chunk: what a decoder reads before the pixels.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(png_chunk(b"IHDR", &ihdr));
    png.extend(png_chunk(b"IDAT", &[]));
    png
}

#[test]
fn binary_prints_digits_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (params, model) = small_model(dir.path());
    let model = model.to_str().unwrap();
    let (img, _) = digit(&mnist(), 0); // a 7
    let want = predict::predict_input(&params, &raw_input(&img), "raw").digit;
    let good = variants()[0].1(&img, dir.path());
    let blank = dir.path().join("blank.png");
    GrayImage::from_pixel(30, 30, Luma([0]))
        .save(&blank)
        .unwrap();
    let junk = dir.path().join("junk.jpg");
    std::fs::write(&junk, [0xff, 0xd8, 0xff, 0x00, 1, 2, 3]).unwrap();

    let o = simplenn(&["predict", "--model", model, good.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with(&format!("{}: {want}  ({want} ", good.display())),
        "{out}"
    );
    assert_eq!(out.matches('%').count(), 3, "top-3 probabilities: {out}");

    // The same image through a pipe (`predict … /dev/stdin`, `<(curl …)`,
    // or `-`): read once, so a stream that cannot seek back works as a file
    // does.
    let piped = |arg: &str| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_simplenn"))
            .args(["predict", "--model", model, arg])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let bytes = std::fs::read(&good).unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let feeder = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &bytes));
        let o = child.wait_with_output().unwrap();
        feeder.join().unwrap().unwrap();
        o
    };
    for arg in ["/dev/stdin", "-"] {
        let o = piped(arg);
        assert!(o.status.success(), "{arg}: {}", stderr(&o));
        assert!(
            stdout(&o).starts_with(&format!("{arg}: {want}  ")),
            "{}",
            stdout(&o)
        );
    }
    // Standard input holds one image: a second `-` is refused up front.
    let o = simplenn(&[
        "predict",
        "--model",
        model,
        "-",
        good.to_str().unwrap(),
        "-",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("`-` and `-` both read standard input, which holds one image"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(&o), "");
    // Nor can the model and the image both come from it, nor two images
    // where it is a pipe, whether as `-` or as a path to it (the second
    // reader found the pipe empty and said "the file is empty").
    for (args, needle) in [
        (
            vec!["--model", "/dev/stdin", "-"],
            "--model /dev/stdin and `-` both read standard input, which holds one file",
        ),
        (
            vec!["--model", "/dev/stdin", "/dev/stdin"],
            "--model /dev/stdin and /dev/stdin both read standard input, which holds one file",
        ),
        (
            vec!["--model", model, "/dev/stdin", "-"],
            "/dev/stdin and `-` both read standard input, which holds one image",
        ),
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_simplenn"))
            .arg("predict")
            .args(&args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdin.take());
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    // A file redirected in is opened again by each path to it: the same
    // image twice.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_simplenn"))
        .args(["predict", "--model", model, "/dev/stdin", "/dev/stdin"])
        .stdin(std::fs::File::open(&good).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 2, "{}", stdout(&o));
    // A terminal on standard input would wait for a PNG no one can type.
    #[cfg(unix)]
    {
        let o = on_terminal(&["predict", "--model", model, "-"], true);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("which is a terminal here; pipe or redirect one in"),
            "{}",
            stderr(&o)
        );
    }

    let o = simplenn(&[
        "predict",
        "--model",
        model,
        "--json",
        good.to_str().unwrap(),
        blank.to_str().unwrap(),
        junk.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    // One entry per image, in order: a failed one carries its error.
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3);
    assert_eq!(v[0]["digit"], want);
    assert_eq!(v[0]["top3"].as_array().unwrap().len(), 3);
    // Probabilities as f32 print them (shortest round-trip), not widened
    // to f64's seventeen digits; the failed entries name the file first.
    let p = v[0]["probability"].as_f64().unwrap() as f32;
    assert!(
        stdout(&o).contains(&format!("\"probability\":{p:?}")),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("},{\"file\":"), "{}", stdout(&o));
    for (i, (file, says)) in [(&blank, "no digit found"), (&junk, "cannot read the image")]
        .into_iter()
        .enumerate()
    {
        assert_eq!(v[i + 1]["file"], file.to_str().unwrap());
        assert!(v[i + 1].get("digit").is_none());
        let e = v[i + 1]["error"].as_str().unwrap();
        assert!(e.contains(says), "{e}");
    }
    let err = error_lines(&o);
    assert_eq!(err.len(), 2, "{err:?}");
    assert!(err[0].contains("blank.png: no digit found"), "{}", err[0]);
    assert!(
        err[1].contains("junk.jpg: cannot read the image"),
        "{}",
        err[1]
    );
    assert!(!stderr(&o).contains("panicked"));

    // An empty file, and an empty standard input, are called empty.
    let empty = dir.path().join("empty.png");
    std::fs::write(&empty, b"").unwrap();
    let o = simplenn(&["predict", "--model", model, empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("empty.png: cannot read the image (the file is empty)"),
        "{}",
        stderr(&o)
    );
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_simplenn"))
        .args(["predict", "--model", model, "-"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("-: cannot read the image (standard input was empty)"),
        "{}",
        stderr(&o)
    );
    // A directory as standard input (`- < dir`) is called one, as a
    // directory named is, not "Is a directory (os error 21)".
    #[cfg(unix)]
    {
        let o = predict_stdin(model, dir.path());
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).ends_with(
                "-: cannot read the image (it is a directory); pass a PNG or JPEG file\n"
            ),
            "{}",
            stderr(&o)
        );
    }
    // Standard input that is no image, and endless (`- < /dev/zero`): read
    // only until its first bytes show that, not to the 513 MiB cap.
    #[cfg(unix)]
    {
        let o = predict_stdin(model, Path::new("/dev/zero"));
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains(
                "-: cannot read the image (The image format could not be determined); pass a PNG or JPEG file"
            ),
            "{}",
            stderr(&o)
        );
    }

    // A file name with a line break in it: every result and error stays one
    // line, the break written as `\n`.
    #[cfg(unix)]
    {
        let odd = dir.path().join("seven\nof nine.png");
        std::fs::copy(&good, &odd).unwrap();
        let odd_blank = dir.path().join("blank\nagain.png");
        std::fs::copy(&blank, &odd_blank).unwrap();
        let o = simplenn(&[
            "predict",
            "--model",
            model,
            odd.to_str().unwrap(),
            odd_blank.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(1));
        assert_eq!(stdout(&o).lines().count(), 1, "{}", stdout(&o));
        assert!(
            stdout(&o).contains("seven\\nof nine.png: "),
            "{}",
            stdout(&o)
        );
        let err = error_lines(&o);
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(
            err[0].contains("blank\\nagain.png: no digit found"),
            "{err:?}"
        );
    }

    // A model whose layers do not connect names both tensors.
    let bad = dir.path().join("bad.safetensors");
    let (w0, b0, w2, b2) = (
        vec![0u8; 4 * 16 * 784],
        vec![0u8; 4 * 16],
        vec![0u8; 4 * 10 * 12],
        vec![0u8; 4 * 10],
    );
    let view = |shape: Vec<usize>, data: &'static [u8]| {
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape, data).unwrap()
    };
    let leak = |v: Vec<u8>| -> &'static [u8] { Box::leak(v.into_boxed_slice()) };
    let tensors = vec![
        ("0.weight", view(vec![16, 784], leak(w0))),
        ("0.bias", view(vec![16], leak(b0))),
        ("2.weight", view(vec![10, 12], leak(w2))),
        ("2.bias", view(vec![10], leak(b2))),
    ];
    std::fs::write(&bad, safetensors::serialize(tensors, None).unwrap()).unwrap();
    let o = simplenn(&[
        "predict",
        "--model",
        bad.to_str().unwrap(),
        good.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = error_lines(&o);
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].contains(
            "tensor \"2.weight\" has shape [10, 12], so takes 12 inputs, but \"0.weight\" has 16 outputs; the layers do not connect; the file is damaged or holds another kind of network; pass a model written by --save"
        ),
        "{}",
        err[0]
    );
}

/// [`small_model`] and the test set's first digit as an image file, both
/// in `dir`.
#[cfg(unix)]
fn model_and_digit(dir: &Path) -> (PathBuf, PathBuf) {
    let (_, model) = small_model(dir);
    let (img, _) = digit(&mnist(), 0);
    (model, variants()[0].1(&img, dir))
}

/// Standard error that cannot be written (full, or its reader gone) costs
/// the error lines only: every other image is still answered, the JSON
/// array still comes, and the status is still 1. (With its reader gone,
/// nothing after the first failure was answered, and the status was 0.)
#[cfg(target_os = "linux")]
#[test]
fn an_unwritable_standard_error_costs_only_its_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (model, good) = model_and_digit(dir.path());
    let junk = dir.path().join("junk.jpg");
    std::fs::write(&junk, [0xff, 0xd8, 0xff, 0x00, 1, 2, 3]).unwrap();
    let [model, good, junk] = [&model, &good, &junk].map(|p| p.to_str().unwrap());
    for how in ["full", "gone"] {
        let o = simplenn_stderr_unwritable(&["predict", "--model", model, good, junk, good], how);
        assert_eq!(o.status.code(), Some(1), "{how}");
        let out = stdout(&o);
        let answered = out.lines().filter(|l| l.starts_with(&format!("{good}: ")));
        assert_eq!(answered.count(), 2, "{how}: {out}");

        let o =
            simplenn_stderr_unwritable(&["predict", "--json", "--model", model, junk, good], how);
        assert_eq!(o.status.code(), Some(1), "{how}");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let v = v.as_array().unwrap();
        assert_eq!(v.len(), 2, "{how}: {v:?}");
        assert!(
            v[0]["error"].is_string() && v[1]["digit"].is_number(),
            "{how}: {v:?}"
        );
    }
}

/// `simplenn predict … | head -1`: a reader that has gone ends the command
/// as one with all it wanted (exit 0), unless an image has already failed
/// and said so: then its exit status 1 stands.
#[cfg(unix)]
#[test]
fn a_reader_gone_after_a_failed_image_keeps_exit_status_1() {
    let dir = tempfile::tempdir().unwrap();
    let (model, good) = model_and_digit(dir.path());
    let missing = dir.path().join("missing.png");
    let [model, good, missing] = [&model, &good, &missing].map(|p| p.to_str().unwrap());
    let gone = || {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        writer
    };
    for (json, first, code) in [
        (false, missing, 1),
        (true, missing, 1),
        (false, good, 0),
        (true, good, 0),
    ] {
        let mut args = vec!["predict", "--model", model, first, good, good];
        if json {
            args.insert(1, "--json");
        }
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_simplenn"))
            .args(&args)
            .stdout(gone())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
        let errors = err.lines().filter(|l| l.contains("error")).count();
        assert_eq!(errors, code as usize, "{args:?}: {err}");
    }
}

/// `--as-is`: a digit saved from the data set is scored exactly as `eval`
/// scores it (the same inputs, bit for bit), where preparing it again
/// resamples it; an image of another size than the model's input is
/// refused, with the fix.
#[test]
fn as_is_takes_the_data_sets_own_digits_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let (params, model) = small_model(dir.path());
    let m = mnist();
    let (mut paths, mut wants, mut resampled) = (Vec::new(), Vec::new(), 0);
    for i in 0..N {
        let (img, _) = digit(&m, i);
        let path = dir.path().join(format!("test{i}.png"));
        img.save(&path).unwrap();
        let raw = raw_input(&img);
        let g = predict::load_image(&path).unwrap();
        let x = predict::as_is_input(&g, (28, 28), "t").unwrap();
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&x), bits(&raw), "test image {i}");
        resampled += (predict::to_mnist(&g, "t").unwrap() != x) as usize;
        let want = predict::predict_input(&params, &raw, "raw");
        let got = predict::predict_file(&params, None, &path, true).unwrap();
        assert_eq!(
            (got.digit, got.probability.to_bits()),
            (want.digit, want.probability.to_bits())
        );
        paths.push(path);
        wants.push(want);
    }
    assert!(
        resampled > N / 2,
        "preparing changed only {resampled} of {N}"
    );

    let model = model.to_str().unwrap();
    let mut args = vec!["predict", "--model", model, "--as-is", "--json"];
    args.extend(paths.iter().map(|p| p.to_str().unwrap()));
    let as_is = simplenn(&args);
    assert!(as_is.status.success(), "{}", stderr(&as_is));
    assert!(!stderr(&as_is).contains("note:"), "{}", stderr(&as_is));
    // Without --as-is, images of the input size get one note pointing at it.
    let prepared: Vec<&str> = args.iter().filter(|a| **a != "--as-is").copied().collect();
    let o = simplenn(&prepared);
    assert!(o.status.success(), "{}", stderr(&o));
    let notes: Vec<String> = error_lines(&o);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains(&format!(
            "note: {N} of the images are already 28 × 28, the model's input size, on a dark border;"
        )) && notes[0].ends_with("--as-is reads the pixels unchanged"),
        "{notes:?}"
    );
    // Beside an image of another size, the note says --as-is would take
    // that one as it is too (it refused it, and the note came back when
    // --as-is was left out again).
    let big = image::imageops::resize(
        &image::open(&paths[0]).unwrap().to_luma8(),
        56,
        56,
        image::imageops::FilterType::Triangle,
    );
    let big_path = paths[0].with_file_name("big.png");
    big.save(&big_path).unwrap();
    // A 28 × 28 drawing of dark ink on white: no data set's, no note.
    let mut inverted = image::open(&paths[0]).unwrap().to_luma8();
    image::imageops::invert(&mut inverted);
    let inverted_path = paths[0].with_file_name("inverted.png");
    inverted.save(&inverted_path).unwrap();
    let (first, big_path, inverted_path) = (
        paths[0].to_str().unwrap(),
        big_path.to_str().unwrap(),
        inverted_path.to_str().unwrap(),
    );
    let mixed = simplenn(&["predict", "--model", model, first, big_path]);
    assert!(mixed.status.success(), "{}", stderr(&mixed));
    let notes = error_lines(&mixed);
    assert!(
        notes.len() == 1
            && notes[0].contains(&format!("note: {first} is already 28 × 28"))
            && notes[0].ends_with(
                "--as-is reads the pixels unchanged (it applies to every image given: give that one alone)"
            ),
        "{notes:?}"
    );
    let drawn = simplenn(&["predict", "--model", model, inverted_path, big_path]);
    assert!(drawn.status.success(), "{}", stderr(&drawn));
    assert_eq!(error_lines(&drawn), Vec::<String>::new());
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        v.as_array().unwrap().len(),
        N,
        "the note is not in the JSON"
    );
    let one = paths[0].to_str().unwrap();
    let o = simplenn(&["predict", "--model", model, one]);
    assert!(o.status.success(), "{}", stderr(&o));
    let notes = error_lines(&o);
    assert!(
        notes.len() == 1
            && notes[0].contains(&format!("note: {one} is already 28 × 28"))
            && notes[0].contains("recentred it as"),
        "{notes:?}"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&as_is)).unwrap();
    assert_eq!(v.as_array().unwrap().len(), wants.len());
    for (entry, want) in v.as_array().unwrap().iter().zip(&wants) {
        assert_eq!(entry["digit"], want.digit);
        assert_eq!(
            entry["probability"].as_f64().unwrap() as f32,
            want.probability
        );
    }

    let (img, _) = digit(&m, 0);
    let big = dir.path().join("big.png");
    canvas(&img, 56, 56, 14, 14, 0).save(&big).unwrap();
    let o = simplenn(&[
        "predict",
        "--model",
        model,
        "--as-is",
        big.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = error_lines(&o);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("--as-is takes the image's pixels as the model's 28 × 28 inputs, but the image is 56 wide and 56 high; leave out --as-is"),
        "{e:?}"
    );
}

/// A PNG's colour profile is dropped unread. The `png` decoder inflated an
/// `iCCP` chunk whole while reading the header: 512 MiB of profile (half a
/// megabyte of file) took 530 MB, and under a memory limit `predict`
/// aborted on a failed allocation with a backtrace.
#[test]
fn a_huge_color_profile_is_not_inflated() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let (params, model) = small_model(dir.path());
    let (img, _) = digit(&mnist(), 0);
    let want = predict::predict_input(&params, &raw_input(&img), "raw").digit;
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    // Name, NUL, compression method 0, then zlib data.
    let mut iccp = b"bomb\0\0".to_vec();
    let mut z = flate2::write::ZlibEncoder::new(&mut iccp, flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..512 {
        z.write_all(&zeros).unwrap();
    }
    z.finish().unwrap();
    let chunk = png_chunk(b"iCCP", &iccp);
    // After the signature (8 bytes) and IHDR (25), as iCCP must be.
    png.splice(33..33, chunk);
    let path = dir.path().join("profiled.png");
    std::fs::write(&path, &png).unwrap();
    assert!(png.len() < 1 << 20, "{} bytes", png.len());
    // 400 MB of address space: enough for the binary, not for the profile.
    let o = std::process::Command::new("sh")
        .args(["-c", "ulimit -v 400000 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_simplenn"))
        .args(["predict", "--model", model.to_str().unwrap()])
        .arg(&path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with(&format!("{}: {want}  ", path.display())),
        "{}",
        stdout(&o)
    );
}

/// A small model in `dir`, a 40 × 40 PNG of a test digit beside it, and
/// the digit the model reads it as.
#[cfg(target_os = "linux")]
fn small_digit_png(dir: &Path) -> (Params, PathBuf, PathBuf, usize) {
    let (params, model) = small_model(dir);
    let (img, _) = digit(&mnist(), 0);
    let small = dir.join("small.png");
    canvas(&img, 40, 40, 6, 6, 0).save(&small).unwrap();
    let want = predict::predict_file(&params, None, &small, false)
        .unwrap()
        .digit;
    (params, model, small, want)
}

/// `simplenn predict --model MODEL [--json] FILES…` under `ulimit -v
/// 200000` (about 195 MiB of address space).
#[cfg(target_os = "linux")]
fn predict_under_ulimit_v(model: &Path, json: bool, files: &[&Path]) -> std::process::Output {
    std::process::Command::new("sh")
        .args(["-c", "ulimit -v 200000 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_simplenn"))
        .args(["predict", "--model", model.to_str().unwrap()])
        .args(json.then_some("--json"))
        .args(files)
        .output()
        .unwrap()
}

/// An image whose decoding would not fit in the memory left (here a
/// `ulimit -v`) is refused from its header with a line of its own, and the
/// other images are still answered: an allocation failing mid-decode ended
/// the whole run with one line about training, and no image answered.
#[cfg(target_os = "linux")]
#[test]
fn an_image_too_big_for_the_memory_left_is_refused_alone() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let (_, model, small, want) = small_digit_png(dir.path());
    // 6000 × 6000 gray (36 megapixels, under the 67 that predict reads):
    // some 400 MB to decode and prepare, in a file of a few hundred KB.
    let (w, h) = (6000u32, 6000u32);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut row = vec![0u8; 1 + w as usize];
    for y in 0..h {
        for (x, p) in row[1..].iter_mut().enumerate() {
            let ink = (2000..4000).contains(&y) && (2500..3500).contains(&(x as u32));
            *p = if ink { 20 } else { 245 };
        }
        z.write_all(&row).unwrap();
    }
    let mut png = png_header(w, h);
    // png_header ends with an empty IDAT (12 bytes): put the data in it.
    png.truncate(png.len() - 12);
    png.extend(png_chunk(b"IDAT", &z.finish().unwrap()));
    png.extend(png_chunk(b"IEND", &[]));
    let big = dir.path().join("big.png");
    std::fs::write(&big, &png).unwrap();
    let run = |json: bool| predict_under_ulimit_v(&model, json, &[&big, &small]);
    let o = run(false);
    let err = error_lines(&o);
    assert_eq!(o.status.code(), Some(1), "{err:?}");
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].starts_with(&format!(
            "simplenn: error: {}: reading this 6000 × 6000 image takes about ",
            big.display()
        )) && err[0].contains("MB of memory, more than the ")
            && err[0].contains("(all that ulimit -v leaves); scale it down")
            && err[0].ends_with("a side), or raise the limit"),
        "{err:?}"
    );
    assert!(
        stdout(&o).starts_with(&format!("{}: {want}  ", small.display())),
        "{}",
        stdout(&o)
    );
    let o = run(true);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert!(
        v[0]["error"]
            .as_str()
            .unwrap()
            .contains("reading this 6000 × 6000 image"),
        "{v}"
    );
    assert_eq!(v[1]["digit"], want as u64, "{v}");
}

/// A small image followed by 300 MB (of zeros, which the decoder never
/// reads) is refused by name where memory is short, and the images after
/// it are answered: such a file was read whole, and under `ulimit -v` the
/// failed allocation ended the run with a line naming no file.
#[cfg(target_os = "linux")]
#[test]
fn a_file_too_big_for_the_memory_left_is_refused_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (params, model, small, want) = small_digit_png(dir.path());
    let padded = dir.path().join("padded.png");
    std::fs::copy(&small, &padded).unwrap();
    // Sparse: no disk is taken.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&padded)
        .unwrap();
    f.set_len(300 << 20).unwrap();
    drop(f);
    // Without a limit the padding is read past and the digit found.
    assert_eq!(
        predict::predict_file(&params, None, &padded, false)
            .unwrap()
            .digit,
        want
    );
    let o = predict_under_ulimit_v(&model, false, &[&padded, &small]);
    let err = error_lines(&o);
    assert_eq!(o.status.code(), Some(1), "{err:?}");
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].starts_with(&format!(
            "simplenn: error: {}: cannot read the image: the file runs past ",
            padded.display()
        )) && err[0].ends_with("(all that ulimit -v leaves); an image of a digit needs far less: pass a smaller file, or raise the limit"),
        "{err:?}"
    );
    assert!(
        stdout(&o).starts_with(&format!("{}: {want}  ", small.display())),
        "{}",
        stdout(&o)
    );
}

/// `simplenn predict --model MODEL -` with standard input opened from `input`.
fn predict_stdin(model: &str, input: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_simplenn"))
        .args(["predict", "--model", model, "-"])
        .stdin(std::fs::File::open(input).unwrap())
        .output()
        .unwrap()
}
