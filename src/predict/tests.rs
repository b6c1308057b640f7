use super::decode::{check_jpeg_frame, jpeg_frame, peak_bytes};
use super::prepare::{border_stats, nth_smallest};
use super::*;

fn gray(w: usize, h: usize, f: impl Fn(usize, usize) -> f32) -> Gray {
    Gray {
        width: w,
        height: h,
        pixels: (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y))
            .collect(),
        turned: false,
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
    let need = peak_bytes(
        3 * pixels,
        pixels,
        3 * 8192,
        upright,
        frame(0xc2).coefficient_bytes(),
    );
    assert!(need > 782 << 20, "{need}");
    assert!(need > peak_bytes(3 * pixels, pixels, 3 * 8192, upright, 0));
}

/// The figures `peak_bytes`'s documentation gives for 8192 × 8191
/// images (MiB, rounded): gray 672, RGB 752, 16-bit RGBA 1152. Turned a
/// quarter, a 16-bit RGBA image's copy (16 bytes a pixel) is the most it
/// holds, 1312; a gray one's copy is less than its grayscale and ink, and
/// its figure stays 672. And for 64 Mpx one pixel high: 16-bit RGBA 1952,
/// its rows counted; gray 672, as one pixel wide.
#[test]
fn peak_bytes_gives_its_documented_figures() {
    use image::metadata::Orientation::{NoTransforms, Rotate270, Rotate90};
    let pixels = 8192 * 8191;
    let mib = |decoded: u64, o| {
        (peak_bytes(decoded * pixels, pixels, decoded * 8192, o, 0) as f64 / (1u64 << 20) as f64)
            .round()
    };
    assert_eq!(mib(1, NoTransforms), 672.0);
    assert_eq!(mib(3, NoTransforms), 752.0);
    assert_eq!(mib(8, NoTransforms), 1152.0);
    assert_eq!(mib(8, Rotate90), 1312.0);
    assert_eq!(mib(8, Rotate270), 1312.0);
    assert_eq!(mib(1, Rotate90), 672.0);
    // One pixel high, a PNG decoder's two rows are the whole image twice.
    let wide = |decoded: u64, row: u64| {
        let pixels = 64 << 20;
        (peak_bytes(decoded * pixels, pixels, row, NoTransforms, 0) >> 20) as f64
    };
    assert_eq!(wide(8, 8 << 26), 1952.0);
    assert_eq!(wide(1, 1 << 26), 672.0);
    assert_eq!(wide(1, 1), 672.0);
}

/// The background's shade is the median of the outermost ring: the top
/// and bottom rows and the left and right columns (corners in both). In a
/// 5 × 3 image of pixels numbered 0 to 14 the ring holds 0–4, 10–14, 0,
/// 5, 10 and 4, 9, 14, whose median (the upper of the middle two) is 9.
#[test]
fn the_background_is_the_median_of_the_outermost_ring() {
    let numbered = gray(5, 3, |x, y| (y * 5 + x) as f32);
    assert_eq!(border_stats(&numbered), (9.0, 0.0));
    // Under PHOTO_SIDE a side: no spread, whatever the edge.
    let noisy = gray(PHOTO_SIDE, PHOTO_SIDE - 1, |x, y| {
        ((x + y) % 2) as f32 * 20.0
    });
    assert_eq!(border_stats(&noisy), (20.0, 0.0));
    // A photo's edge of 100, 110 and 120 in turn: shade 110, spread
    // 1.4826 × 10.
    let three = gray(PHOTO_SIDE, PHOTO_SIDE, |x, y| {
        100.0 + 10.0 * ((x + y) % 3) as f32
    });
    let (level, spread) = border_stats(&three);
    assert_eq!(level, 110.0);
    assert!((spread - 14.826).abs() < 1e-4, "{spread}");
}

/// `nth_smallest` finds what sorting by `total_cmp` puts at each rank:
/// among shades, repeats, and values that share their high 16 bits
/// (1.0 and the next float), both zeros, negatives, infinities and NaNs.
#[test]
fn the_nth_smallest_is_the_sorted_values_nth() {
    let mut v = vec![
        110.0,
        0.0,
        -0.0,
        255.0,
        f32::NAN,
        -f32::NAN,
        1.0,
        f32::from_bits(1.0f32.to_bits() + 1),
        f32::INFINITY,
        f32::NEG_INFINITY,
        -3.5,
        110.0,
        f32::MIN_POSITIVE,
        1e-45,
    ];
    // And 200 shades in no order, with repeats.
    v.extend((0..200).map(|i| ((i * 37) % 101) as f32 * 2.5));
    let mut sorted = v.clone();
    sorted.sort_by(f32::total_cmp);
    for (k, want) in sorted.iter().enumerate() {
        let got = nth_smallest(v.len(), k, |i| v[i]);
        assert_eq!(got.to_bits(), want.to_bits(), "rank {k}");
    }
}

/// In a photo, ink fainter than three times the edge's spread is
/// background: a page of 100, 110 and 120 in turn (spread 14.8) with a
/// bar of 255 and, far from it, a smudge 30 over the paper (above a tenth
/// of the bar's 145, below 3 × 14.8) is prepared as the bar alone is.
#[test]
fn ink_within_a_photos_noise_is_background() {
    let paper = |x: usize, y: usize| 100.0 + 10.0 * ((x + y) % 3) as f32;
    let bar = |x: usize, y: usize| (30..36).contains(&x) && (20..60).contains(&y);
    let smudge = |x: usize, y: usize| (60..64).contains(&x) && (60..64).contains(&y);
    let alone = gray(96, 80, |x, y| if bar(x, y) { 255.0 } else { paper(x, y) });
    let smudged = gray(96, 80, |x, y| match (bar(x, y), smudge(x, y)) {
        (true, _) => 255.0,
        (_, true) => 140.0,
        _ => paper(x, y),
    });
    assert_eq!(
        to_mnist(&smudged, "s").unwrap(),
        to_mnist(&alone, "a").unwrap()
    );
}

/// The ink's centre of mass goes to pixel (14, 14) only as far as its box
/// still fits: a block with a long stroke from it (its mass near the
/// box's left end) has its box against the right edge, whole, nothing
/// wrapped onto the next rows.
#[test]
fn a_box_moved_towards_the_centre_stays_inside() {
    // A 20 × 20 box: a block 4 wide at its left, a stroke 2 high to its
    // right end.
    let g = gray(40, 40, |x, y| {
        let block = (10..14).contains(&x) && (10..30).contains(&y);
        let stroke = (14..30).contains(&x) && (19..21).contains(&y);
        if block || stroke {
            255.0
        } else {
            0.0
        }
    });
    let a = to_mnist(&g, "b").unwrap();
    let cols: Vec<usize> = (0..SIDE)
        .filter(|&x| (0..SIDE).any(|y| a[y * SIDE + x] > 0.0))
        .collect();
    assert_eq!(cols.first(), Some(&(SIDE - BOX)), "{cols:?}");
    assert_eq!(cols.last(), Some(&(SIDE - 1)), "{cols:?}");
    let rows: Vec<usize> = (0..SIDE)
        .filter(|&y| a[y * SIDE..(y + 1) * SIDE].iter().any(|&v| v > 0.0))
        .collect();
    assert_eq!(rows.len(), BOX, "{rows:?}");
}

/// Transparent pixels are laid over the paper: a card's shade where
/// opaque pixels of both shades make a card with its ink (light ink on a
/// black card: black, not white), the shade opposite the ink where one
/// shade alone is opaque (128 is a light shade: black under it) or where
/// the other is a fringe round the ink, mostly on the opaque pixels' edge,
/// and white where nothing is opaque.
#[test]
fn transparent_pixels_take_the_papers_shade() {
    use image::{DynamicImage, ImageBuffer, LumaA};
    let page = |f: fn(u32, u32) -> [u8; 2]| {
        to_gray(&DynamicImage::ImageLumaA8(ImageBuffer::from_fn(
            30,
            30,
            |x, y| LumaA(f(x, y)),
        )))
    };
    // A black card in a margin 5 wide, a white stroke on it.
    let card = page(|x, y| {
        match (
            (5..25).contains(&x) && (5..25).contains(&y),
            (14..16).contains(&x),
        ) {
            (true, true) => [255, 255],
            (true, false) => [0, 255],
            (false, _) => [255, 0],
        }
    });
    assert_eq!(card.pixels[0], 0.0);
    assert_eq!(card.pixels[15 * 30 + 15], 255.0);
    let mid = page(|x, _| {
        if (14..16).contains(&x) {
            [128, 255]
        } else {
            [255, 0]
        }
    });
    assert_eq!((mid.pixels[0], mid.pixels[15]), (0.0, 128.0));
    // Black ink whose white paper was made transparent, its anti-aliased
    // fringe (light, opaque) left beside it: a third of the opaque pixels,
    // all of them on the edge, where a fifth of the ink is. Laid over the
    // fringe's shade, the ink would be the paper.
    let fringed = page(|x, y| {
        let ink = (13..17).contains(&x) && (5..25).contains(&y);
        let fringe = (12..18).contains(&x) && (5..25).contains(&y);
        match (ink, fringe) {
            (true, _) => [0, 255],
            (false, true) => [200, 255],
            _ => [255, 0],
        }
    });
    assert_eq!(fringed.pixels[0], 255.0);
    assert_eq!(fringed.pixels[15 * 30 + 15], 0.0);
    // A card of paper 200 framed by a black line, a black stroke on it:
    // the frame is all of the edge, but the ink lies inside; the margin
    // is the paper's, not white.
    let framed = page(|x, y| {
        let card = (5..25).contains(&x) && (5..25).contains(&y);
        let frame = card && !((6..24).contains(&x) && (6..24).contains(&y));
        let stroke = (14..16).contains(&x) && (8..22).contains(&y);
        match (card, frame || stroke) {
            (true, true) => [0, 255],
            (true, false) => [200, 255],
            (false, _) => [255, 0],
        }
    });
    assert_eq!(framed.pixels[0], 200.0);
    // A card of dark paper (100, as red or blue paper reads in gray) with
    // black ink inside it: all on one side of mid grey, in two shades far
    // apart; the margin is the paper's, not white. Its ink alone, the
    // stroke and its grey anti-aliased edge, is laid over white.
    fn dark(card: bool, x: u32, y: u32) -> [u8; 2] {
        let paper = card && (5..25).contains(&x) && (5..25).contains(&y);
        let stroke = (14..16).contains(&x) && (8..22).contains(&y);
        let rim = (13..17).contains(&x) && (7..23).contains(&y);
        match (stroke, paper || rim) {
            (true, _) => [0, 255],
            (false, true) => [100, 255],
            (false, false) => [255, 0],
        }
    }
    assert_eq!(page(|x, y| dark(true, x, y)).pixels[0], 100.0);
    assert_eq!(page(|x, y| dark(false, x, y)).pixels[0], 255.0);
    // A fringe not all on the edge (JPEG widens it round coloured ink):
    // four fifths of it there, and a tenth of the ink.
    let wide = page(|x, y| {
        let ink = (13..17).contains(&x) && (5..25).contains(&y);
        let grain = x == 14 && (10..20).contains(&y);
        let fringe = (12..18).contains(&x) && (5..25).contains(&y);
        match (ink && !grain, fringe) {
            (true, _) => [0, 255],
            (false, true) => [200, 255],
            _ => [255, 0],
        }
    });
    assert_eq!(wide.pixels[0], 255.0);
    // A digit a pixel wide with its fringe beside it: every pixel on the
    // edge, the ink the fewer; the fringe is the shade nearer mid grey.
    let tiny = page(
        |x, y| match (x, (5..25).contains(&y), (4..26).contains(&y)) {
            (14, true, _) => [0, 255],
            (15, _, true) => [200, 255],
            _ => [255, 0],
        },
    );
    assert_eq!(tiny.pixels[0], 255.0);
    // Grey ink whose grain crosses mid grey (110 and 145, under a digit's
    // contrast apart): one shade, the canvas laid far from it.
    let grey = page(|x, y| match (13..17).contains(&x) && (5..25).contains(&y) {
        true if (x + y) % 3 == 0 => [110, 255],
        true => [145, 255],
        false => [255, 0],
    });
    assert_eq!(grey.pixels[0], 0.0);
    let none = page(|_, _| [0, 0]);
    assert!(
        none.pixels.iter().all(|&v| v == 255.0),
        "{:?}",
        &none.pixels[..4]
    );
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

/// The grayscale of a `w × h` gray-and-alpha image of `f`'s pixels
/// (`[shade, alpha]`), its transparent pixels laid over the paper.
fn laid(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 2]) -> Gray {
    use image::{DynamicImage, ImageBuffer, LumaA};
    to_gray(&DynamicImage::ImageLumaA8(ImageBuffer::from_fn(
        w,
        h,
        |x, y| LumaA(f(x, y)),
    )))
}

/// Which rows and which columns of a prepared `side × side` input hold ink.
fn inked(input: &[f32], side: usize) -> (Vec<usize>, Vec<usize>) {
    let rows = (0..side)
        .filter(|y| input[y * side..(y + 1) * side].iter().any(|&v| v > 0.0))
        .collect();
    let cols = (0..side)
        .filter(|&x| (0..side).any(|y| input[y * side + x] > 0.0))
        .collect();
    (rows, cols)
}

/// A speck exactly [`MIN_CONTRAST`] (40) shades darker than dark paper,
/// beside a faint light smudge, is counted as a speck: the user is told
/// of one pixel standing out, not that the image is blank.
#[test]
fn a_speck_exactly_40_shades_off_the_paper_is_counted() {
    let g = gray(50, 40, |x, y| match (x, y) {
        (10, 10) => 60.0,
        (30, 20) => 130.0,
        _ => 100.0,
    });
    match to_mnist(&g, "speck") {
        Err(ImageError::Specks { pixels, .. }) => assert_eq!(pixels, 1),
        other => panic!("{other:?}"),
    }
}

/// Ink exactly [`MIN_CONTRAST`] (40) shades from the paper is a digit's
/// contrast: a bar of 40 on black is read, not refused as blank.
#[test]
fn ink_exactly_40_shades_from_the_paper_is_read() {
    let g = gray(20, 20, |x, y| {
        if (5..10).contains(&x) && (5..13).contains(&y) {
            40.0
        } else {
            0.0
        }
    });
    assert!(to_mnist(&g, "faint").is_ok());
}

/// In an image of under 200 pixels the least ink is a twentieth of
/// them rounded up: 5 in 9 × 9 (81), so 4 pixels of ink are specks,
/// not a digit read from almost nothing.
#[test]
fn four_pixels_of_ink_in_81_are_too_few() {
    let g = gray(9, 9, |x, y| {
        if x == 4 && (2..6).contains(&y) {
            0.0
        } else {
            255.0
        }
    });
    match to_input(&g, 9, "small") {
        Err(ImageError::Specks { pixels, .. }) => assert_eq!(pixels, 4),
        other => panic!("{other:?}"),
    }
}

/// Ink exactly a tenth of the darkest stroke ([`NOISE_FLOOR`]) is ink,
/// not background: a pixel of 20 beside a bar of 200 widens the box the
/// digit is scaled from, where one of 19 leaves the bar as it is alone.
#[test]
fn ink_of_exactly_a_tenth_of_the_darkest_is_kept() {
    let with = |faint: f32| {
        gray(40, 40, move |x, y| match (x, y) {
            _ if (10..14).contains(&x) && (10..30).contains(&y) => 200.0,
            (30, 20) => faint,
            _ => 0.0,
        })
    };
    let alone = to_mnist(&with(0.0), "alone").unwrap();
    assert_eq!(to_mnist(&with(19.0), "below").unwrap(), alone);
    assert_ne!(to_mnist(&with(20.0), "tenth").unwrap(), alone);
}

/// A model of 8 × 8 inputs gets a box of 8 · 20/28 = 5.7 pixels
/// rounded, 6: a tall bar is scaled to 6 rows, not 5.
#[test]
fn a_box_of_5_7_pixels_is_rounded_to_6() {
    let g = gray(20, 20, |x, y| {
        if (9..11).contains(&x) && (4..16).contains(&y) {
            255.0
        } else {
            0.0
        }
    });
    let (rows, _) = inked(&to_input(&g, 8, "bar").unwrap(), 8);
    assert_eq!(rows.len(), 6, "{rows:?}");
}

/// An ink box 5 pixels wide (its centre of mass on its middle column)
/// has that column on column 14 of 28, MNIST's centre, not 13.
#[test]
fn an_odd_width_box_has_its_middle_on_column_14() {
    let g = gray(40, 40, |x, y| {
        if (10..15).contains(&x) && (10..30).contains(&y) {
            255.0
        } else {
            0.0
        }
    });
    let (_, cols) = inked(&to_mnist(&g, "bar").unwrap(), SIDE);
    assert_eq!(cols, (12..17).collect::<Vec<_>>());
}

/// A box 20 rows high has its centre of mass between rows, at 9.5: the
/// shift of 14 - 9.5 = 4.5 rounds to 5 (rows 5 to 24), as MNIST's was,
/// not down to 4.
#[test]
fn a_shift_of_four_and_a_half_rows_rounds_to_five() {
    let g = gray(40, 40, |x, y| {
        if (10..15).contains(&x) && (10..30).contains(&y) {
            255.0
        } else {
            0.0
        }
    });
    let (rows, _) = inked(&to_mnist(&g, "bar").unwrap(), SIDE);
    assert_eq!(rows, (5..25).collect::<Vec<_>>());
}

/// An alpha of exactly 128 counts as opaque: a white stroke drawn at
/// half opacity on a transparent canvas is the ink, and the canvas is
/// laid over black, not white (which would hide the stroke).
#[test]
fn an_alpha_of_exactly_128_counts_as_opaque() {
    let g = laid(30, 30, |x, y| {
        match (14..16).contains(&x) && (5..25).contains(&y) {
            true => [255, 128],
            false => [0, 0],
        }
    });
    assert_eq!(g.pixels[0], 0.0);
}

/// Ink that is exactly 2 % of the opaque pixels (`MIN_PAPER_INK`) makes
/// a card of paper with its ink: 2 black pixels (one on the card's edge)
/// in a 10 × 10 card of 200 give a margin of the card's shade.
#[test]
fn ink_of_exactly_2_percent_of_a_card_makes_it_a_card() {
    let g = laid(30, 30, |x, y| {
        let card = (10..20).contains(&x) && (10..20).contains(&y);
        match (card, (x, y)) {
            (true, (10, 15) | (15, 15)) => [0, 255],
            (true, _) => [200, 255],
            (false, _) => [0, 0],
        }
    });
    assert_eq!(g.pixels[0], 200.0);
}

/// A shade with exactly three quarters of its pixels on the edge of the
/// opaque ones (`FRINGE_EDGE`) is a fringe round the ink: the margin
/// is laid opposite the ink (white under black), not the ink's shade.
#[test]
fn a_shade_three_quarters_on_the_edge_is_a_fringe() {
    let g = laid(30, 30, |x, y| {
        let opaque = (10..20).contains(&x) && (10..20).contains(&y);
        match (opaque, (x, y)) {
            (true, (10, 13) | (10, 16) | (19, 15) | (15, 15)) => [200, 255],
            (true, _) => [0, 255],
            (false, _) => [0, 0],
        }
    });
    assert_eq!(g.pixels[0], 255.0);
}

/// A fringe three pixels wide round ink that outnumbers it (a digit
/// enlarged before its paper was made transparent): only a third of the
/// fringe touches the canvas (under `FRINGE_EDGE`), but none of the ink
/// does, and the fringe is the shade nearer mid grey, in shades from the
/// paper's toward the ink's (a spread a framed card's two shades lack). The canvas is laid opposite the
/// ink (white under black ink, black under white), not in the ink's
/// shade, which would leave the digit's outline as its ink.
#[test]
fn a_wide_fringe_round_most_of_the_pixels_is_still_a_fringe() {
    // The fringe's rings, outermost first: the nearer the paper, the
    // nearer its shade.
    for (ink, rings, paper) in [(0, [240, 200, 150], 255.0), (255, [15, 60, 110], 0.0)] {
        let g = laid(40, 40, |x, y| {
            // How many pixels inside the band's outer edge (x 9..31, y 3..37).
            let depth = (x as i32 - 9)
                .min(30 - x as i32)
                .min(y as i32 - 3)
                .min(36 - y as i32);
            match depth {
                0..=2 => [rings[depth as usize], 255],
                3.. => [ink, 255],
                _ => [0, 0],
            }
        });
        assert_eq!(g.pixels[0], paper, "ink {ink}, fringe {rings:?}");
    }
    // A white card framed by a grey line, a stroke of the same grey on it:
    // the frame is all of the edge and the paper none, but a frame is of
    // one shade, not a blend; the margin is the paper's, not black.
    for (frame, paper) in [(60, 255), (200, 0)] {
        let g = laid(30, 30, |x, y| {
            let card = (5..25).contains(&x) && (5..25).contains(&y);
            let line = card && !((6..24).contains(&x) && (6..24).contains(&y));
            let stroke = (14..16).contains(&x) && (8..22).contains(&y);
            match (card, line || stroke) {
                (true, true) => [frame, 255],
                (true, false) => [paper, 255],
                (false, _) => [0, 0],
            }
        });
        assert_eq!(
            g.pixels[0],
            f32::from(paper),
            "frame {frame}, paper {paper}"
        );
    }
}

/// Two dark shades whose means are exactly [`MIN_CONTRAST`] apart (a card
/// of 60 with ink of 20) are a card with its ink: the margin is the
/// card's shade, 60.
#[test]
fn dark_shades_exactly_40_apart_are_a_card_and_its_ink() {
    let g = laid(30, 30, |x, y| {
        let card = (5..25).contains(&x) && (5..25).contains(&y);
        let stroke = (13..17).contains(&x) && (8..22).contains(&y);
        match (card, stroke) {
            (_, true) => [20, 255],
            (true, false) => [60, 255],
            _ => [0, 0],
        }
    });
    assert_eq!(g.pixels[0], 60.0);
}

/// A dark card's ink may have up to a fifth of its pixels on the card's
/// edge (`INK_EDGE`): a stroke of 10 pixels, 2 of them touching the
/// margin, leaves the card a card (its margin 100), not ink laid on white.
#[test]
fn ink_a_fifth_on_a_dark_cards_edge_stays_the_cards() {
    let g = laid(30, 30, |x, y| {
        let card = (5..25).contains(&x) && (5..25).contains(&y);
        let stroke = (14..16).contains(&x) && (5..10).contains(&y);
        match (card, stroke) {
            (_, true) => [0, 255],
            (true, false) => [100, 255],
            _ => [0, 0],
        }
    });
    assert_eq!(g.pixels[0], 100.0);
}

/// A PNG chunk type is named only where it is four letters: a shorter
/// name in a decoder's message is no chunk's, and reads `unnamed`.
#[test]
fn only_a_four_letter_chunk_type_is_named() {
    use image::error::{DecodingError, ImageFormatHint};
    let e = |m: &str| {
        Undecodable::of(image::ImageError::Decoding(DecodingError::new(
            ImageFormatHint::Exact(image::ImageFormat::Png),
            m.to_string(),
        )))
        .reason
    };
    let named = e("bad ChunkType { type: IDAT, critical: true } chunk");
    assert!(named.contains("bad IDAT chunk"), "{named}");
    let short = e("bad ChunkType { type: IDA, critical: true } chunk");
    assert!(short.contains("bad unnamed chunk"), "{short}");
}

/// A baseline JPEG of 88 × 88 pixels (121 blocks, 2 bits each at least)
/// needs 242 bits, 30.25 bytes, so 31: a file of 30 bytes is cut short,
/// one of 31 is not refused for its length.
#[test]
fn a_jpeg_a_byte_short_of_its_least_scan_is_cut_short() {
    // SOI, then SOF0: 8 bits, 88 high, 88 wide, one component.
    let head = [
        0xff, 0xd8, 0xff, 0xc0, 0, 11, 8, 0, 88, 0, 88, 1, 1, 0x11, 0,
    ];
    let padded = |n: usize| {
        let mut b = head.to_vec();
        b.resize(n, 0);
        b
    };
    let e = check_jpeg_frame(&padded(30)).err().expect("cut short");
    assert!(e.reason.contains("at least 31 bytes"), "{}", e.reason);
    assert!(check_jpeg_frame(&padded(31)).is_ok());
}
