//! A checkpoint file (`--resume`): any bytes give a checkpoint or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = simplenn::checkpoint::checkpoint_from_bytes(data, std::path::Path::new("fuzz.ckpt"));
});
