//! An image for `predict` (PNG or JPEG): any bytes decode within the limits and are
//! prepared as MNIST's digits were, or give an error; never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The serve page's limits (4096 pixels a side, 64 MiB). `predict` keeps
    // the decoder's defaults (no side limit, 512 MiB), checked against the
    // memory available, which would let each input allocate far more.
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(4096);
    limits.max_image_height = Some(4096);
    limits.max_alloc = Some(64 << 20);
    if let Ok(img) = simplenn::predict::decode_image(data, &limits) {
        let g = simplenn::predict::to_gray(&img);
        let _ = simplenn::predict::to_input(&g, 28, "fuzz.png");
        let _ = simplenn::predict::as_is_input(&g, (28, 28), "fuzz.png");
    }
});
