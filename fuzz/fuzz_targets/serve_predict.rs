//! A `POST /api/predict` body (PNG, JPEG or JSON pixels) against a small
//! model: an answer or an HTTP error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use simplenn::model::{Dims, Init, Params};
use simplenn::serve::{predict_bytes, Prepare};

fuzz_target!(|data: &[u8]| {
    let Some((&how, body)) = data.split_first() else {
        return;
    };
    thread_local! {
        static MODELS: [(Params, Option<(usize, usize)>); 2] = [
            (Params::init(Dims::new(784, &[16], 10), Init::He, 1), Some((28, 28))),
            // Not square: only `?as_is=1` takes its images.
            (Params::init(Dims::new(12, &[], 3), Init::He, 1), Some((3, 4))),
        ];
    }
    let content_type = match how & 3 {
        0 => "application/json",
        1 => "image/png",
        2 => "image/jpeg",
        _ => "",
    };
    let prepare = match how & 4 {
        0 => Prepare::Mnist,
        _ => Prepare::AsIs,
    };
    MODELS.with(|m| {
        let (params, image) = &m[(how >> 3) as usize & 1];
        if let Ok(out) = predict_bytes(params, *image, 1, content_type, body, prepare) {
            assert!(out.digit < params.dims.k());
        }
    });
});
