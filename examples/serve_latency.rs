//! Server-side time of one `/api/predict`: decode the pad's PNG (280 × 280,
//! a drawn "7"), prepare it as `predict` does, run the network, build the
//! answer. Median and 90th percentile of 1000, after 50 to warm up. Then
//! the `train --serve` hook's cost: the median of 200 copies of the
//! weights into the page's snapshot, as a training step makes one.
//!
//! `cargo run --release --example serve_latency -- model.safetensors`

use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "model.safetensors".into());
    let params = simplenn::modelfile::load_model(std::path::Path::new(&path))?;
    // A "7": a top bar and a slanted stem, 20 px strokes on white.
    let mut img = image::GrayImage::from_pixel(280, 280, image::Luma([255]));
    let mut line = |(x0, y0): (f32, f32), (x1, y1): (f32, f32)| {
        for s in 0..=400 {
            let t = s as f32 / 400.0;
            let (cx, cy) = (x0 + t * (x1 - x0), y0 + t * (y1 - y0));
            for y in (cy - 10.0) as u32..(cy + 10.0) as u32 {
                for x in (cx - 10.0) as u32..(cx + 10.0) as u32 {
                    img.put_pixel(x, y, image::Luma([0]));
                }
            }
        }
    };
    line((70.0, 50.0), (210.0, 50.0));
    line((210.0, 50.0), (120.0, 240.0));
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    let mut times = Vec::with_capacity(1000);
    let mut digit = 0;
    for i in 0..1050 {
        let t0 = Instant::now();
        let p = simplenn::serve::predict_bytes(
            &params,
            None,
            0,
            "image/png",
            &png,
            simplenn::serve::Prepare::Mnist,
        )
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        let dt = t0.elapsed();
        digit = p.digit;
        if i >= 50 {
            times.push(dt);
        }
    }
    times.sort();
    // The training loop's hook at an update: copy the weights into the snapshot.
    let live = simplenn::live::Live::new();
    live.start(&params, 430, 430 * 20, 20, 0, None);
    let every = simplenn::live::interval(430);
    let mut hook = Vec::with_capacity(200);
    for i in 1..=200u64 {
        let t0 = Instant::now();
        live.step(&params, 1, i * every, 0.0, 0, 1);
        hook.push(t0.elapsed());
    }
    hook.sort();
    println!(
        "train --serve hook: median {:.1} µs per weight copy ({} floats), one every {every} steps",
        hook[100].as_secs_f64() * 1e6,
        params.data.len()
    );
    println!(
        "{} ({}): a drawn 7 ({} bytes of PNG) read as {digit}; server-side time per prediction over 1000: median {:.2} ms, p90 {:.2} ms",
        path,
        params.dims.name(),
        png.len(),
        times[500].as_secs_f64() * 1e3,
        times[900].as_secs_f64() * 1e3
    );
    Ok(())
}
