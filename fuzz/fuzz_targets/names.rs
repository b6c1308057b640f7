//! A `--class-names` file and a model file's names: a list of names or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use simplenn::classes::{ClassNames, NamedFor, NamesFile};

fuzz_target!(|data: &[u8]| {
    let Some((&k, text)) = data.split_first() else {
        return;
    };
    let k = k as usize;
    let path = std::env::temp_dir().join(format!("simplenn-fuzz-names-{}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    if let Ok(file) = NamesFile::read(&path) {
        for what in [NamedFor::Data, NamedFor::Checkpoint, NamedFor::Model] {
            if let Ok(names) = file.for_classes(k, what) {
                assert_eq!(names.len(), k);
                // What a model file stores reads back as the same names.
                let again = ClassNames::from_metadata(&names.to_metadata(), k, &path)
                    .expect("names simplenn stores read back");
                assert_eq!(again.names(), names.names());
            }
        }
    }
    if let Ok(s) = std::str::from_utf8(text) {
        let _ = ClassNames::from_metadata(s, k, &path);
    }
});
