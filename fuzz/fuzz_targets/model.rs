//! A model file (`eval`, `predict`, `serve`): any bytes give a model or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = simplenn::modelfile::from_bytes(data, std::path::Path::new("fuzz.safetensors"), &[]);
});
