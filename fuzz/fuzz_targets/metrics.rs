//! A metrics log (`plot`, `--resume`): any text gives records or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(records) = simplenn::metrics::parse(&text, std::path::Path::new("fuzz.jsonl")) {
        // What was read writes back, and reads again as the same records.
        let again = simplenn::metrics::to_jsonl(&records);
        let back = simplenn::metrics::parse(&again, std::path::Path::new("again.jsonl"))
            .expect("a log simplenn wrote reads back");
        assert_eq!(back.len(), records.len());
    }
});
