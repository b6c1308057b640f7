//! `simplenn augment`: the picture of what the network is trained on.

mod common;

use simplenn::data::Mnist;

/// The grid's size follows the flags, the first cell of each row is the
/// original image pixel for pixel (each drawn 2 × 2), and the distortions
/// differ from it and from each other.
#[test]
fn grid_shows_originals_beside_their_distortions() {
    let t = tempfile::tempdir().unwrap();
    let dir = common::small_mnist(t.path(), 300, 100);
    let out = t.path().join("grid.png");
    let o = common::simplenn(&[
        "augment",
        "--data",
        dir.to_str().unwrap(),
        "--count",
        "3",
        "--versions",
        "2",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(common::stdout(&o).contains("3 training images"));
    let img = image::open(&out).unwrap().into_luma8();
    // GAP 4 around cells of 2·28 + 4, one extra GAP after the original.
    let cell = 2 * 28 + 4;
    assert_eq!(img.dimensions(), (4 + 3 * cell + 4, 4 + 3 * cell));
    let train = Mnist::open(&dir).unwrap().train;
    let cell_at = |row: u32, col: u32| -> Vec<u8> {
        let x0 = 4 + col * cell + if col > 0 { 4 } else { 0 };
        let y0 = 4 + row * cell;
        (0..28)
            .flat_map(|y| (0..28).map(move |x| (x, y)))
            .map(|(x, y)| img.get_pixel(x0 + 2 * x, y0 + 2 * y).0[0])
            .collect()
    };
    for i in 0..3 {
        assert_eq!(
            cell_at(i, 0),
            train.image(i as usize),
            "row {i}: the original"
        );
        let (a, b) = (cell_at(i, 1), cell_at(i, 2));
        assert!(
            a != train.image(i as usize) && b != a,
            "row {i}: distortions"
        );
    }
}
