//! Helpers shared by the integration tests: small MNIST-format directories
//! cut from the real data set, written by the tests themselves.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use simplenn::data::{Mnist, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use simplenn::idx::write_idx;

/// The real MNIST shipped in `data/mnist` (decompressed on first use).
pub fn real_mnist() -> Mnist {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    Mnist::open(&dir).expect("the committed MNIST in data/mnist opens")
}

/// Write the first `n_train` training and `n_test` test images of the real
/// data set as a four-file IDX directory under `dir`.
pub fn write_slice(dir: &Path, n_train: usize, n_test: usize) -> PathBuf {
    let m = real_mnist();
    for (set, n, images, labels) in [
        (&m.train, n_train, TRAIN_IMAGES, TRAIN_LABELS),
        (&m.test, n_test, TEST_IMAGES, TEST_LABELS),
    ] {
        let pix: Vec<u8> = (0..n).flat_map(|i| set.image(i).to_vec()).collect();
        let lab: Vec<u8> = (0..n).map(|i| set.label(i)).collect();
        write_idx(&dir.join(images), &[n as u32, 28, 28], &pix).unwrap();
        write_idx(&dir.join(labels), &[n as u32], &lab).unwrap();
    }
    dir.to_owned()
}
