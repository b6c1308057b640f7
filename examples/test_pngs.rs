//! The first N test images of a data set as grayscale PNGs, as the IDX file
//! stores them (light ink on black, rows × cols), for trying `predict
//! --as-is` (or the page's `/api/predict?as_is=1`) on images the model was
//! scored on. Prints each file beside its label.
//!
//! `cargo run --release --example test_pngs -- DATA_DIR N OUT_DIR`
//! (DATA_DIR as for `--data`: raw or `.gz`; writes OUT_DIR/test0.png, …)

use std::path::PathBuf;

use anyhow::{bail, Context};

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("test_pngs: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, n, out] = &args[..] else {
        bail!("usage: test_pngs DATA_DIR N OUT_DIR");
    };
    let n: usize = n
        .parse()
        .with_context(|| format!("N {n:?}: not a count of images"))?;
    let test = simplenn::data::Mnist::open_test(&PathBuf::from(dir))?;
    if n > test.len() {
        bail!("N {n}: the test set in {dir} has {} images", test.len());
    }
    let (rows, cols) = test.side();
    let out = PathBuf::from(out);
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    for i in 0..n {
        let img = image::GrayImage::from_raw(cols as u32, rows as u32, test.image(i).to_vec())
            .context("an image's bytes are rows × cols")?;
        let path = out.join(format!("test{i}.png"));
        img.save(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("{}  label {}", path.display(), test.label(i));
    }
    Ok(())
}
