//! Evaluation: forward passes over a range of a data set, in parallel, with
//! results that do not depend on the thread count.

use std::ops::Range;

use rayon::prelude::*;

use crate::data::Dataset;
use crate::model::{forward_eval, Params, Workspace};

/// Rows per evaluation block. Block boundaries are fixed, and block losses
/// are summed in block order, so the reported loss is the same on any pool.
pub const EVAL_BLOCK: usize = 256;

/// Rows of an evaluation's buffers for ranges of `largest` images at most:
/// larger ones are taken [`EVAL_BLOCK`] rows at a time.
pub fn eval_rows(largest: usize) -> usize {
    largest.clamp(1, EVAL_BLOCK)
}

/// Workspaces an evaluation of ranges of `largest` images at most keeps
/// busy in `parts` parallel parts: one a block, at most one a part.
pub fn eval_parts(parts: usize, largest: usize) -> usize {
    parts.min(largest.div_ceil(EVAL_BLOCK)).max(1)
}

/// What guessing scores on the images of `confusion` (`[true][predicted]`):
/// the larger of `1/K` and the most common class's share, where the images
/// hold two classes or more. On a set of one class (a test set of sevens),
/// always guessing that class would score 100 %, which judges every model
/// with an error as no better: there, `1/K`.
fn guess_accuracy(confusion: &[Vec<u64>]) -> f64 {
    let n: u64 = confusion.iter().flatten().sum();
    let sizes = confusion.iter().map(|row| row.iter().sum::<u64>());
    let most = match sizes.clone().filter(|&s| s > 0).count() {
        0 | 1 => 0,
        _ => sizes.max().unwrap_or(0),
    };
    ratio(most, n).max(1.0 / confusion.len().max(1) as f64)
}

/// Why a score of `confusion` (`[true][predicted]`) on `dir`'s test set
/// says little, where the model scores little above what guessing would
/// (within a fifth of the way from guessing to 100 %): most often a model
/// of another data set of the same shape (the default data directory is
/// MNIST's), which nothing in a model file names. `verb` is what to do
/// with it instead (`evaluate`, `serve`). `None` for fewer than 100
/// images, where chance swings widely, and for a perfect score.
pub fn guess_note(confusion: &[Vec<u64>], dir: &std::path::Path, verb: &str) -> Option<String> {
    let n: u64 = confusion.iter().flatten().sum();
    let correct: u64 = (0..confusion.len()).map(|c| confusion[c][c]).sum();
    let (accuracy, guess) = (ratio(correct, n), guess_accuracy(confusion));
    let little = guess + 0.2 * (1.0 - guess);
    (n >= 100 && correct < n && accuracy <= little).then(|| {
        let than = match accuracy <= guess {
            true => "no better than",
            false => "little above",
        };
        format!(
            "accuracy {}% is {than} what guessing scores on these images ({}%): if the model was trained on another data set than {}, {verb} it with --data on that one",
            crate::show::percent(accuracy),
            crate::show::percent(guess),
            crate::show::path(dir)
        )
    })
}

/// The one class a model answered for every image of a test set whose
/// `confusion` (`[true][predicted]`) holds images of two classes or more;
/// `None` where it answered two or more, or the set has fewer classes (a
/// model that learned answers one class there too). Where this is `Some`,
/// [`Evaluator::same_output`] tells whether the model responds to the
/// images at all.
pub fn one_answer(confusion: &[Vec<u64>]) -> Option<usize> {
    let classes = |count: &dyn Fn(usize) -> u64| {
        (0..confusion.len())
            .filter(|&c| count(c) > 0)
            .collect::<Vec<_>>()
    };
    let answers = classes(&|c| confusion.iter().map(|row| row[c]).sum());
    let truths = classes(&|c| confusion[c].iter().sum());
    match answers[..] {
        [only] if truths.len() >= 2 => Some(only),
        _ => None,
    }
}

/// Whether a model gives every image of a set the very same output, and
/// why ([`Evaluator::same_output`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SameOutput {
    /// Some image's output differs from the first's.
    No,
    /// The images differ and the outputs do not: the model responds to
    /// none of them.
    Unresponsive,
    /// The same, from a model with no hidden layer (softmax regression):
    /// its weights on the pixels where the images differ are all 0.
    Unweighted,
    /// Every image is the same, pixel for pixel: any model answers them
    /// all alike, so the set cannot show what one learned.
    SameImages,
}

/// The one class a model answers for every image of a test set of two
/// classes or more ([`one_answer`]) because it gives every image the same
/// output, with why (`same_output()`, [`Evaluator::same_output`], asked
/// only then: it scores the set again).
pub fn unresponsive(
    confusion: &[Vec<u64>],
    same_output: impl FnOnce() -> SameOutput,
) -> Option<(usize, SameOutput)> {
    let only = one_answer(confusion)?;
    match same_output() {
        SameOutput::No => None,
        why => Some((only, why)),
    }
}

/// The start of the notes on a model that answers `class` (as it is to be
/// shown) for every test image because the images are all the same.
pub fn same_images_note(class: &str) -> String {
    format!(
        "every test image is the same, pixel for pixel, so the model answers them all alike, class {class}"
    )
}

/// Class `c` as the notes name it: its number, and its name (on one line)
/// where it has one.
pub fn class_label(c: usize, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{c} ({})", crate::show::one_line(name)),
        None => c.to_string(),
    }
}

/// What `eval` and `serve` say of a model that gives every image of
/// `dir`'s test set the same output, answering `class` (written as it is
/// to be shown), in place of [`guess_note`]: most often a network whose
/// ReLUs all stopped firing in training, which no other data would help,
/// but possibly one of another data set that none of these images reach.
/// `verb` as [`guess_note`]'s.
/// Where the images are all the same (`why`), that is said instead, with
/// the way to a score that means something.
pub fn unresponsive_note(
    class: &str,
    why: SameOutput,
    dir: &std::path::Path,
    verb: &str,
) -> String {
    match why {
        SameOutput::SameImages => format!(
            "{}: these images cannot show what it learned; {verb} it with --data on a data set whose test images differ",
            same_images_note(class)
        ),
        _ => format!(
            "the model gives every test image the same output, answering class {class}: it responds to none of these images; {}; if it was trained on another data set than {}, {verb} it with --data on that one",
            match why {
                SameOutput::Unweighted => "its weights on the pixels where they differ are all 0 (worn away by a --weight-decay, or written so)",
                _ => "most often its ReLUs all stopped firing in training (a learning rate too high for it: train it again with a smaller --lr)",
            },
            crate::show::path(dir)
        ),
    }
}

/// Panics unless `range` lies in `data`, its images have `params`' inputs,
/// `params` is whole and `workspace` was made for its widths.
fn scorable(params: &Params, workspace: &Workspace, data: &Dataset, range: &Range<usize>) {
    params.assert_whole();
    assert!(
        workspace.fits(&params.dims),
        "an Evaluator made for another network than {}: make it with Evaluator::new or for_ranges_of for these Params",
        params.dims.name()
    );
    assert!(range.end <= data.len());
    assert_eq!(
        data.pixels(),
        params.dims.d(),
        "image size is the model's input"
    );
}

/// What `eval` and `serve` say of a model's score on `dir`'s test set,
/// whose confusion matrix is `confusion`: an [`unresponsive_note`] where
/// the model is [`unresponsive`], else a [`guess_note`] where it scores
/// near guessing.
/// `name(c)`: class `c`'s name, where the model or the run has names.
pub fn score_note(
    confusion: &[Vec<u64>],
    same_output: impl FnOnce() -> SameOutput,
    name: &dyn Fn(usize) -> Option<String>,
    dir: &std::path::Path,
    verb: &str,
) -> Option<String> {
    unresponsive(confusion, same_output)
        .map(|(c, why)| unresponsive_note(&class_label(c, name(c).as_deref()), why, dir, verb))
        .or_else(|| guess_note(confusion, dir, verb))
}

/// Loss, accuracy and confusion matrix over a set of images.
#[derive(Clone, Debug, PartialEq)]
pub struct Metrics {
    pub n: usize,
    /// Mean cross-entropy.
    pub loss: f64,
    pub correct: usize,
    /// `confusion[true][predicted]`, `(K, K)`.
    pub confusion: Vec<Vec<u64>>,
}

impl Metrics {
    /// Two classes and an empty confusion matrix: what tests of the
    /// reporting around a score need.
    #[cfg(test)]
    pub(crate) fn scored(n: usize, loss: f64, correct: usize) -> Metrics {
        Metrics {
            n,
            loss,
            correct,
            confusion: vec![vec![0; 2]; 2],
        }
    }

    /// Classes `K`.
    pub fn classes(&self) -> usize {
        self.confusion.len()
    }

    /// Fraction of the images classified correctly; 0 for no images.
    pub fn accuracy(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.correct as f64 / self.n as f64
        }
    }

    /// Of the images predicted as `class`, the fraction that are `class`.
    ///
    /// # Panics
    /// Where `class` is not below the model's `K`.
    pub fn precision(&self, class: usize) -> f64 {
        let predicted: u64 = self.confusion.iter().map(|row| row[class]).sum();
        ratio(self.confusion[class][class], predicted)
    }

    /// Of the images of `class`, the fraction predicted as `class`.
    ///
    /// # Panics
    /// Where `class` is not below the model's `K`.
    pub fn recall(&self, class: usize) -> f64 {
        let actual: u64 = self.confusion[class].iter().sum();
        ratio(self.confusion[class][class], actual)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Evaluation buffers, allocated once per run: one workspace per parallel part.
pub struct Evaluator {
    workspaces: Vec<Workspace>,
    block_loss: Vec<f64>,
}

impl Evaluator {
    /// Buffers to evaluate networks shaped like `params` in `parts`
    /// parallel parts (one workspace of [`EVAL_BLOCK`] rows each).
    pub fn new(params: &Params, parts: usize) -> Self {
        Self::for_ranges_of(params, parts, usize::MAX)
    }

    /// [`Evaluator::new`], for ranges of at most `largest` images: each
    /// workspace holds [`eval_rows`]`(largest)` rows, and there are no
    /// more of them than such a range has blocks ([`eval_parts`]; a few
    /// images of millions of pixels need no room for 256 of them, nor one
    /// workspace a thread). The figures are the same as
    /// [`Evaluator::new`]'s, bit for bit: the blocks and the order their
    /// losses are summed in do not depend on the parts.
    pub fn for_ranges_of(params: &Params, parts: usize, largest: usize) -> Self {
        Evaluator {
            workspaces: (0..eval_parts(parts, largest))
                .map(|_| Workspace::for_eval(&params.dims, eval_rows(largest)))
                .collect(),
            block_loss: Vec::new(),
        }
    }

    /// Evaluate `params` on images `range` of `data`, whose images must
    /// have the model's `D` pixels and whose labels must be below its `K`.
    ///
    /// # Panics
    /// Where they do not, where `range` ends past `data`'s images, where
    /// it holds more images than this evaluator was made for
    /// ([`Evaluator::for_ranges_of`]), where the evaluator was made for
    /// another network's widths, or where `params` is not whole
    /// ([`Params::assert_whole`]).
    pub fn evaluate(&mut self, params: &Params, data: &Dataset, range: Range<usize>) -> Metrics {
        scorable(params, &self.workspaces[0], data, &range);
        let n = range.len();
        let cap = self.workspaces[0].cap;
        assert!(
            n <= cap || cap == EVAL_BLOCK,
            "{n} images on an evaluator made for {cap}"
        );
        let k = params.dims.k();
        let zero = || vec![vec![0u64; k]; k];
        let blocks = n.div_ceil(EVAL_BLOCK);
        self.block_loss.clear();
        self.block_loss.resize(blocks, 0.0);
        let per_part = blocks.div_ceil(self.workspaces.len()).max(1);
        let start = range.start;
        let (correct, confusion) = self
            .workspaces
            .par_iter_mut()
            .zip(self.block_loss.par_chunks_mut(per_part))
            .enumerate()
            .map(|(part, (ws, losses))| {
                let mut conf = zero();
                let mut correct = 0usize;
                for (i, slot) in losses.iter_mut().enumerate() {
                    let lo = start + (part * per_part + i) * EVAL_BLOCK;
                    let hi = (lo + EVAL_BLOCK).min(range.end);
                    let rows = hi - lo;
                    data.gather_range(lo..hi, &mut ws.x, &mut ws.y);
                    forward_eval(params, ws, rows);
                    *slot = ws.loss[..rows].iter().map(|&l| l as f64).sum();
                    for (&y, &p) in ws.y[..rows].iter().zip(&ws.hit[..rows]) {
                        conf[y as usize][p as usize] += 1;
                        correct += (y == p) as usize;
                    }
                }
                (correct, conf)
            })
            .reduce(
                || (0, zero()),
                |(c1, mut m1), (c2, m2)| {
                    for (r1, r2) in m1.iter_mut().zip(&m2) {
                        for (a, b) in r1.iter_mut().zip(r2) {
                            *a += b;
                        }
                    }
                    (c1 + c2, m1)
                },
            );
        let loss_sum: f64 = self.block_loss.iter().sum();
        Metrics {
            n,
            loss: if n == 0 { 0.0 } else { loss_sum / n as f64 },
            correct,
            confusion,
        }
    }

    /// Whether `params` gives every image of `range` of `data` the very
    /// same output (its last layer's products, and so its logits, equal to
    /// the bit): what a network whose hidden units no longer respond to
    /// the image gives, and any network images that are all the same
    /// ([`SameOutput::SameImages`], told first). On this thread; the same
    /// requirements as [`Evaluator::evaluate`].
    pub fn same_output(
        &mut self,
        params: &Params,
        data: &Dataset,
        range: Range<usize>,
    ) -> SameOutput {
        scorable(params, &self.workspaces[0], data, &range);
        if let Some(first) = range.clone().next().map(|i| data.image(i)) {
            if range.clone().all(|i| data.image(i) == first) {
                return SameOutput::SameImages;
            }
        }
        let (k, last) = (params.dims.k(), params.dims.layers() - 1);
        let ws = &mut self.workspaces[0];
        let mut first: Option<Vec<u32>> = None;
        let mut lo = range.start;
        while lo < range.end {
            let hi = (lo + ws.cap).min(range.end);
            data.gather_range(lo..hi, &mut ws.x, &mut ws.y);
            forward_eval(params, ws, hi - lo);
            let out = &ws.act[last][..(hi - lo) * k];
            let first = first.get_or_insert_with(|| out[..k].iter().map(|v| v.to_bits()).collect());
            let same = |row: &[f32]| row.iter().zip(first.iter()).all(|(v, f)| v.to_bits() == *f);
            if !out.chunks(k).all(same) {
                return SameOutput::No;
            }
            lo = hi;
        }
        match params.dims.layers() {
            1 => SameOutput::Unweighted,
            _ => SameOutput::Unresponsive,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Dims;

    /// From 100 images on, a score at guessing's is named as such; below,
    /// where chance swings widely, nothing is said.
    #[test]
    fn a_score_at_guessings_is_named_from_a_hundred_images() {
        let dir = std::path::Path::new("d");
        // Every image called class 0: 50 %, the largest class's share.
        let note = guess_note(&[vec![50, 0], vec![50, 0]], dir, "evaluate").unwrap();
        assert!(
            note.starts_with("accuracy 50.00% is no better than what guessing scores"),
            "{note}"
        );
        assert_eq!(
            guess_note(&[vec![50, 0], vec![49, 0]], dir, "evaluate"),
            None
        );
        // One more right: above guessing, within a fifth of the way to 100 %.
        let note = guess_note(&[vec![50, 0], vec![49, 1]], dir, "evaluate").unwrap();
        assert!(note.contains("% is little above what guessing"), "{note}");
        // A test set of one class (300 sevens, 283 right): guessing is
        // judged as 1/K, not as always seven's 100 %, which would call
        // every model with an error no better.
        let mut sevens = vec![vec![0; 10]; 10];
        sevens[7][7] = 283;
        sevens[7][1] = 17;
        assert_eq!(guess_note(&sevens, dir, "evaluate"), None);
        // ... while one image of another class makes it a set to judge by
        // its largest class.
        sevens[1][7] = 1;
        assert!(guess_note(&sevens, dir, "evaluate").is_some());
        // 28 % of the sevens right: within a fifth of the way from 10 %.
        sevens[1][7] = 0;
        (sevens[7][7], sevens[7][1]) = (84, 216);
        let note = guess_note(&sevens, dir, "evaluate").unwrap();
        assert!(
            note.starts_with(
                "accuracy 28.00% is little above what guessing scores on these images (10.00%)"
            ),
            "{note}"
        );
    }

    /// `n` dark 2 × 2 images in `dir`, pixel 0 lit where `lit(i)`, image
    /// `i` labelled `i % 3`.
    fn lit_images(dir: &std::path::Path, n: usize, lit: impl Fn(usize) -> bool) -> Dataset {
        let (images, labels) = (dir.join("i"), dir.join("l"));
        let pixels: Vec<u8> = (0..n)
            .flat_map(|i| [if lit(i) { 255 } else { 0 }, 0, 0, 0])
            .collect();
        let y: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
        crate::idx::write_idx(&images, &[n as u32, 2, 2], &pixels).unwrap();
        crate::idx::write_idx(&labels, &[n as u32], &y).unwrap();
        Dataset::open(&images, &labels).unwrap()
    }

    /// A model whose answer is always class 0 gives the same output for
    /// every image only where no pixel moves its logits: one lit image,
    /// in the second block of the range, whose logits move by a hair
    /// (not its answer), is told apart.
    #[test]
    fn same_output_compares_every_image_of_the_range() {
        let t = tempfile::tempdir().unwrap();
        let n = EVAL_BLOCK + 9;
        let odd = EVAL_BLOCK + 3;
        let data = lit_images(t.path(), n, |i| i == odd);
        let mut params = Params::zeros(Dims::new(4, &[], 3));
        params.data[12] = 5.0; // bias of class 0: the answer throughout
        let mut e = Evaluator::new(&params, 1);
        assert_eq!(e.same_output(&params, &data, 0..n), SameOutput::Unweighted);
        params.data[2] = 1e-3; // pixel 0 → class 2, by a hair
        let confusion = e.evaluate(&params, &data, 0..n).confusion;
        assert_eq!(one_answer(&confusion), Some(0), "{confusion:?}");
        assert_eq!(e.same_output(&params, &data, 0..n), SameOutput::No);
        assert_eq!(e.same_output(&params, &data, 1..odd + 1), SameOutput::No);
        // Ranges without the lit image: every image the same, told as such
        // whatever the model.
        assert_eq!(
            e.same_output(&params, &data, odd + 1..n),
            SameOutput::SameImages
        );
        assert_eq!(
            e.same_output(&params, &data, 0..odd),
            SameOutput::SameImages
        );
        assert_eq!(
            e.same_output(&params, &data, odd..odd + 1),
            SameOutput::SameImages
        );
    }

    /// `Params` whose fields disagree, or an evaluator made for another
    /// network, panic with a line saying so, not at a slice index deep in
    /// the forward pass.
    #[test]
    #[should_panic(expected = "Params.data holds 100 numbers, but its dims 4-8-3 have 67")]
    fn a_params_cut_short_is_named_as_such() {
        let t = tempfile::tempdir().unwrap();
        let data = lit_images(t.path(), 4, |_| false);
        let mut params = Params::zeros(Dims::new(4, &[8], 3));
        let mut e = Evaluator::new(&params, 1);
        params.data.resize(100, 0.0);
        e.evaluate(&params, &data, 0..4);
    }

    #[test]
    #[should_panic(expected = "an Evaluator made for another network than 4-16-3")]
    fn an_evaluator_of_another_network_is_named_as_such() {
        let t = tempfile::tempdir().unwrap();
        let data = lit_images(t.path(), 4, |_| false);
        let mut e = Evaluator::new(&Params::zeros(Dims::new(4, &[8], 3)), 1);
        e.evaluate(&Params::zeros(Dims::new(4, &[16], 3)), &data, 0..4);
    }

    /// Images that differ where the model's weights are 0: the same
    /// output from a model that responds to none of them, told apart from
    /// images that are all the same.
    #[test]
    fn same_output_tells_an_unresponsive_model_from_same_images() {
        let t = tempfile::tempdir().unwrap();
        let n = 5;
        let data = lit_images(t.path(), n, |i| i == 3);
        let params = Params::zeros(Dims::new(4, &[], 3));
        let mut e = Evaluator::new(&params, 1);
        assert_eq!(e.same_output(&params, &data, 0..n), SameOutput::Unweighted);
        assert_eq!(e.same_output(&params, &data, 0..3), SameOutput::SameImages);
        // With a hidden layer (of units that never fire): unresponsive.
        let hidden = Params::zeros(Dims::new(4, &[2], 3));
        let mut e = Evaluator::new(&hidden, 1);
        assert_eq!(
            e.same_output(&hidden, &data, 0..n),
            SameOutput::Unresponsive
        );
        let dir = std::path::Path::new("d");
        let confusion = vec![vec![3, 0], vec![2, 0]];
        let note = score_note(
            &confusion,
            || SameOutput::SameImages,
            &|_| None,
            dir,
            "evaluate",
        );
        assert_eq!(
            note.unwrap(),
            "every test image is the same, pixel for pixel, so the model answers them all alike, class 0: these images cannot show what it learned; evaluate it with --data on a data set whose test images differ"
        );
        let note = score_note(
            &confusion,
            || SameOutput::Unresponsive,
            &|_| None,
            dir,
            "serve",
        );
        assert!(note
            .unwrap()
            .contains("it responds to none of these images; most often its ReLUs"));
        let note = score_note(
            &confusion,
            || SameOutput::Unweighted,
            &|_| None,
            dir,
            "serve",
        );
        assert!(note.unwrap().contains("it responds to none of these images; its weights on the pixels where they differ are all 0 (worn away by a --weight-decay"));
        assert_eq!(
            score_note(&confusion, || SameOutput::No, &|_| None, dir, "serve"),
            None
        );
    }

    /// A softmax regression on 2 × 2 images whose predictions are known
    /// (class 0, unless pixel 0 is lit: then class 2), evaluated on labels
    /// chosen so that every table entry tells rows from columns.
    #[test]
    fn confusion_rows_are_true_classes_and_columns_predictions() {
        let t = tempfile::tempdir().unwrap();
        let (images, labels) = (t.path().join("i"), t.path().join("l"));
        let lit = [255, 0, 0, 0];
        let dark = [0; 4];
        let pixels: Vec<u8> = [dark, dark, lit, lit, dark].concat();
        crate::idx::write_idx(&images, &[5, 2, 2], &pixels).unwrap();
        crate::idx::write_idx(&labels, &[5], &[0, 1, 1, 2, 1]).unwrap();
        let data = Dataset::open(&images, &labels).unwrap();

        // W_0ᵀ (4, 3) then b (3): class 0 by its bias, class 2 by pixel 0.
        let mut params = Params::zeros(Dims::new(4, &[], 3));
        params.data[2] = 10.0; // pixel 0 → class 2
        params.data[12] = 1.0; // bias of class 0
        for parts in [1, 2] {
            let m = Evaluator::new(&params, parts).evaluate(&params, &data, 0..5);
            // true 0 → 0; true 1 → 0, 2, 0; true 2 → 2.
            assert_eq!(
                m.confusion,
                [[1, 0, 0], [2, 0, 1], [0, 0, 1]],
                "{parts} parts"
            );
            assert_eq!((m.n, m.correct), (5, 2));
            // Of the three predicted 0, one is a 0; of the three 1s, none
            // is predicted 1; of the two predicted 2, one is a 2.
            assert_eq!(m.precision(0), 1.0 / 3.0);
            assert_eq!(m.recall(0), 1.0);
            assert_eq!(m.recall(1), 0.0);
            assert_eq!((m.precision(2), m.recall(2)), (0.5, 1.0));
        }
    }

    /// The loss is the mean over the images of `−log p[y]`, with the output
    /// bias in the logits: here logits `(1, 0, 0)` for a dark image and
    /// `(1, 0, 10)` for a lit one, over more images than one block so
    /// that several parts each hold blocks.
    #[test]
    fn loss_is_the_mean_cross_entropy_with_the_output_bias() {
        let t = tempfile::tempdir().unwrap();
        let n = 3 * EVAL_BLOCK + 17;
        let lit = |i: usize| i % 3 == 2;
        let data = lit_images(t.path(), n, lit);
        let y: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
        let mut params = Params::zeros(Dims::new(4, &[], 3));
        params.data[2] = 10.0; // pixel 0 → class 2
        params.data[12] = 1.0; // bias of class 0
        let e = std::f64::consts::E;
        let (dark, bright) = ((e + 2.0).ln(), (e + 1.0 + 10f64.exp()).ln());
        let nll = |i: usize| {
            let logits = if lit(i) {
                [1.0, 0.0, 10.0]
            } else {
                [1.0, 0.0, 0.0]
            };
            (if lit(i) { bright } else { dark }) - logits[y[i] as usize]
        };
        for (range, parts) in [(0..n, 1), (0..n, 3), (5..n - 2, 2)] {
            let want = range.clone().map(nll).sum::<f64>() / range.len() as f64;
            let m = Evaluator::new(&params, parts).evaluate(&params, &data, range.clone());
            assert!(
                (m.loss - want).abs() < 1e-5,
                "{range:?}, {parts} parts: loss {} vs {want}",
                m.loss
            );
            // Dark images are called 0, lit ones (the 2s) 2: only the 1s are wrong.
            let correct = range.clone().filter(|&i| y[i] != 1).count();
            assert_eq!(m.correct, correct, "{range:?}, {parts} parts");
        }
    }
}
