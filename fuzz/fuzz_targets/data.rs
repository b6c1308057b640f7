//! A data directory (`--data`): four IDX files, each raw or gzipped, from
//! the input; they open as a data set or give an error, never a panic.
//!
//! Input: one byte of flags (bit `i`: file `i` is named `.gz`; bit 4:
//! `--classes` from the next byte), then four files, each a little-endian
//! `u16` length and that many bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use simplenn::data::Mnist;

const NAMES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let mut classes = None;
    if flags & 16 != 0 {
        let Some((&k, r)) = rest.split_first() else {
            return;
        };
        classes = Some(k as usize);
        rest = r;
    }
    let dir = std::env::temp_dir().join(format!("simplenn-fuzz-data-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (i, name) in NAMES.iter().enumerate() {
        if rest.len() < 2 {
            break;
        }
        let n = (u16::from_le_bytes([rest[0], rest[1]]) as usize).min(rest.len() - 2);
        let body = &rest[2..2 + n];
        rest = &rest[2 + n..];
        let name = match flags >> i & 1 {
            1 => format!("{name}.gz"),
            _ => name.to_string(),
        };
        std::fs::write(dir.join(name), body).unwrap();
    }
    if let Ok(m) = Mnist::open_with_classes(&dir, classes) {
        for set in [&m.train, &m.test] {
            let n = set.len();
            let mut x = vec![0.0f32; n * set.pixels()];
            let mut y = vec![0u8; n];
            set.gather_range(0..n, &mut x, &mut y);
            assert!(y.iter().all(|&l| (l as usize) < m.classes));
            assert!(x.iter().all(|v| (0.0..=1.0).contains(v)));
        }
    }
});
